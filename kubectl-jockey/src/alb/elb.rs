//! What jockey reads from the ELBv2 API, as plain data: the pure report in [`super::report`]
//! works on this snapshot, and [`fetch`] is the thin adapter that fills it with the AWS SDK.

use anyhow::{Context, Result};
use aws_sdk_elasticloadbalancingv2 as elbv2;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// The tag the AWS Load Balancer Controller puts on the load balancer of an IngressGroup: the
/// group's name (for an explicit `group.name`).
pub const TAG_STACK: &str = "ingress.k8s.aws/stack";

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ElbSnapshot {
    pub load_balancers: Vec<LoadBalancer>,
    pub target_groups: Vec<TargetGroup>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct LoadBalancer {
    pub arn: String,
    pub name: String,
    pub dns_name: String,
    pub state: String,
    pub scheme: String,
    pub tags: BTreeMap<String, String>,
    pub listeners: Vec<Listener>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Listener {
    pub arn: String,
    pub protocol: String,
    pub port: i32,
    pub rules: Vec<Rule>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Rule {
    pub priority: String,
    pub is_default: bool,
    /// Values of the rule's host-header conditions (ALB wildcards `*` and `?` allowed).
    pub hosts: Vec<String>,
    pub paths: Vec<String>,
    pub action: Action,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "kebab-case", tag = "type")]
pub enum Action {
    Forward { target_groups: Vec<String> },
    Redirect { to: String },
    FixedResponse { status: String },
    Other { kind: String },
}

impl Default for Action {
    fn default() -> Self {
        Action::Other {
            kind: "none".into(),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct TargetGroup {
    pub arn: String,
    pub name: String,
    pub protocol: String,
    pub port: i32,
    pub target_type: String,
    pub health_check_path: String,
    pub targets: Vec<Target>,
    /// Its tags; the controller's `ingress.k8s.aws/resource` names the Ingress it serves.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Target {
    pub id: String,
    pub port: i32,
    /// `healthy`, `unhealthy`, `initial`, `unused`, `draining`, `unavailable`.
    pub state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl TargetGroup {
    pub fn healthy(&self) -> usize {
        self.targets.iter().filter(|t| t.state == "healthy").count()
    }
}

impl ElbSnapshot {
    pub fn target_group(&self, arn: &str) -> Option<&TargetGroup> {
        self.target_groups.iter().find(|t| t.arn == arn)
    }

    /// The load balancer behind an Ingress address (its DNS name, case-insensitively).
    pub fn by_dns_name(&self, dns: &str) -> Option<&LoadBalancer> {
        let dns = dns.trim_end_matches('.');
        self.load_balancers
            .iter()
            .find(|lb| lb.dns_name.eq_ignore_ascii_case(dns))
    }

    /// The load balancer the controller made for `group` (its stack tag).
    pub fn by_group(&self, group: &str) -> Option<&LoadBalancer> {
        self.load_balancers
            .iter()
            .find(|lb| lb.tags.get(TAG_STACK).is_some_and(|g| g == group))
    }
}

fn sdk_err<E>(err: elbv2::error::SdkError<E>, what: &str) -> anyhow::Error
where
    E: std::error::Error + Send + Sync + 'static,
{
    anyhow::anyhow!(jockey_build::aws::error_chain(&err)).context(format!(
        "{what} through the ELBv2 API; check the AWS credentials and region \
         (they need elasticloadbalancing:Describe* permissions)"
    ))
}

/// Reads the load balancers that serve `dns_names` or carry a stack tag in `groups`, with their
/// listeners, rules, target groups and target health. Only those: an account may hold hundreds
/// of unrelated load balancers.
pub async fn fetch(
    client: &elbv2::Client,
    dns_names: &BTreeSet<String>,
    groups: &BTreeSet<String>,
) -> Result<ElbSnapshot> {
    let mut all = Vec::new();
    let mut pages = client.describe_load_balancers().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| sdk_err(e, "listing load balancers"))?;
        all.extend(page.load_balancers().iter().cloned());
    }
    // Only ALBs: jockey's groups are Application Load Balancers.
    all.retain(|lb| {
        lb.r#type()
            .is_none_or(|t| *t == elbv2::types::LoadBalancerTypeEnum::Application)
    });

    let mut tags: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let arns: Vec<String> = all
        .iter()
        .filter_map(|lb| lb.load_balancer_arn().map(str::to_string))
        .collect();
    // DescribeTags takes at most 20 resources per call.
    for chunk in arns.chunks(20) {
        let out = client
            .describe_tags()
            .set_resource_arns(Some(chunk.to_vec()))
            .send()
            .await
            .map_err(|e| sdk_err(e, "reading load balancer tags"))?;
        for d in out.tag_descriptions() {
            let map = d
                .tags()
                .iter()
                .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or("").to_string())))
                .collect();
            if let Some(arn) = d.resource_arn() {
                tags.insert(arn.to_string(), map);
            }
        }
    }

    let wanted_dns: BTreeSet<String> = dns_names
        .iter()
        .map(|d| d.trim_end_matches('.').to_ascii_lowercase())
        .collect();
    let mut snapshot = ElbSnapshot::default();
    let mut tg_arns = BTreeSet::new();
    for lb in all {
        let arn = lb.load_balancer_arn().unwrap_or_default().to_string();
        let dns = lb.dns_name().unwrap_or_default().to_string();
        let lb_tags = tags.remove(&arn).unwrap_or_default();
        let by_dns = wanted_dns.contains(&dns.to_ascii_lowercase());
        let by_group = lb_tags.get(TAG_STACK).is_some_and(|g| groups.contains(g));
        if !by_dns && !by_group {
            continue;
        }
        let mut listeners = Vec::new();
        let mut lpages = client
            .describe_listeners()
            .load_balancer_arn(&arn)
            .into_paginator()
            .send();
        while let Some(page) = lpages.next().await {
            let page = page.map_err(|e| sdk_err(e, &format!("listing listeners of {arn}")))?;
            for l in page.listeners() {
                let larn = l.listener_arn().unwrap_or_default().to_string();
                let rules = fetch_rules(client, &larn).await?;
                for r in &rules {
                    if let Action::Forward { target_groups } = &r.action {
                        tg_arns.extend(target_groups.iter().cloned());
                    }
                }
                listeners.push(Listener {
                    arn: larn,
                    protocol: l
                        .protocol()
                        .map(|p| p.as_str().to_string())
                        .unwrap_or_default(),
                    port: l.port().unwrap_or_default(),
                    rules,
                });
            }
        }
        listeners.sort_by_key(|l| l.port);
        // Target groups attached to the load balancer but not (or no longer) referenced by a
        // rule still count against its quota, so read them too.
        let mut tpages = client
            .describe_target_groups()
            .load_balancer_arn(&arn)
            .into_paginator()
            .send();
        while let Some(page) = tpages.next().await {
            let page = page.map_err(|e| sdk_err(e, &format!("listing target groups of {arn}")))?;
            tg_arns.extend(
                page.target_groups()
                    .iter()
                    .filter_map(|t| t.target_group_arn().map(str::to_string)),
            );
        }
        snapshot.load_balancers.push(LoadBalancer {
            arn,
            name: lb.load_balancer_name().unwrap_or_default().to_string(),
            dns_name: dns,
            state: lb
                .state()
                .and_then(|s| s.code())
                .map(|c| c.as_str().to_string())
                .unwrap_or_default(),
            scheme: lb
                .scheme()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
            tags: lb_tags,
            listeners,
        });
    }

    let tg_arns: Vec<String> = tg_arns.into_iter().collect();
    let mut tg_tags: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for chunk in tg_arns.chunks(20) {
        let out = client
            .describe_tags()
            .set_resource_arns(Some(chunk.to_vec()))
            .send()
            .await
            .map_err(|e| sdk_err(e, "reading target group tags"))?;
        for d in out.tag_descriptions() {
            let map = d
                .tags()
                .iter()
                .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or("").to_string())))
                .collect();
            if let Some(arn) = d.resource_arn() {
                tg_tags.insert(arn.to_string(), map);
            }
        }
    }
    // DescribeTargetGroups takes at most 20 ARNs per call... documented limit is higher, but
    // small chunks keep each request well inside every limit.
    for chunk in tg_arns.chunks(20) {
        let out = client
            .describe_target_groups()
            .set_target_group_arns(Some(chunk.to_vec()))
            .send()
            .await
            .map_err(|e| sdk_err(e, "reading target groups"))?;
        for tg in out.target_groups() {
            let arn = tg.target_group_arn().unwrap_or_default().to_string();
            let health = client
                .describe_target_health()
                .target_group_arn(&arn)
                .send()
                .await
                .map_err(|e| sdk_err(e, &format!("reading target health of {arn}")))?;
            let targets = health
                .target_health_descriptions()
                .iter()
                .map(|d| {
                    let th = d.target_health();
                    Target {
                        id: d
                            .target()
                            .and_then(|t| t.id())
                            .map(str::to_string)
                            .unwrap_or_default(),
                        port: d.target().and_then(|t| t.port()).unwrap_or_default(),
                        state: th
                            .and_then(|h| h.state())
                            .map(|s| s.as_str().to_string())
                            .unwrap_or_else(|| "unknown".into()),
                        reason: th.and_then(|h| h.reason()).map(|r| r.as_str().to_string()),
                        description: th.and_then(|h| h.description()).map(str::to_string),
                    }
                })
                .collect();
            snapshot.target_groups.push(TargetGroup {
                name: tg.target_group_name().unwrap_or_default().to_string(),
                protocol: tg
                    .protocol()
                    .map(|p| p.as_str().to_string())
                    .unwrap_or_default(),
                port: tg.port().unwrap_or_default(),
                target_type: tg
                    .target_type()
                    .map(|t| t.as_str().to_string())
                    .unwrap_or_default(),
                health_check_path: tg.health_check_path().unwrap_or_default().to_string(),
                tags: tg_tags.remove(&arn).unwrap_or_default(),
                arn,
                targets,
            });
        }
    }
    Ok(snapshot)
}

async fn fetch_rules(client: &elbv2::Client, listener_arn: &str) -> Result<Vec<Rule>> {
    let mut rules = Vec::new();
    let mut marker: Option<String> = None;
    // DescribeRules has no paginator in the SDK; it pages with Marker/NextMarker.
    loop {
        let out = client
            .describe_rules()
            .listener_arn(listener_arn)
            .set_marker(marker.clone())
            .send()
            .await
            .map_err(|e| sdk_err(e, &format!("listing rules of listener {listener_arn}")))?;
        for r in out.rules() {
            let mut hosts = Vec::new();
            let mut paths = Vec::new();
            for c in r.conditions() {
                match c.field() {
                    Some("host-header") => {
                        if let Some(cfg) = c.host_header_config() {
                            hosts.extend(cfg.values().iter().cloned());
                        }
                        // The older flat form of a condition.
                        hosts.extend(c.values().iter().cloned());
                    }
                    Some("path-pattern") => {
                        if let Some(cfg) = c.path_pattern_config() {
                            paths.extend(cfg.values().iter().cloned());
                        }
                        paths.extend(c.values().iter().cloned());
                    }
                    _ => {}
                }
            }
            hosts.sort();
            hosts.dedup();
            paths.sort();
            paths.dedup();
            rules.push(Rule {
                priority: r.priority().unwrap_or_default().to_string(),
                is_default: r.is_default().unwrap_or(false),
                hosts,
                paths,
                action: action_of(r.actions()),
            });
        }
        match out.next_marker() {
            Some(m) if !m.is_empty() => marker = Some(m.to_string()),
            _ => break,
        }
    }
    Ok(rules)
}

/// The rule's final action (authentication actions come first and are not what routes).
fn action_of(actions: &[elbv2::types::Action]) -> Action {
    use elbv2::types::ActionTypeEnum as T;
    let Some(a) = actions
        .iter()
        .max_by_key(|a| a.order().unwrap_or(i32::MAX))
        .or_else(|| actions.last())
    else {
        return Action::default();
    };
    match a.r#type() {
        Some(T::Forward) => {
            let mut tgs: Vec<String> = a
                .forward_config()
                .map(|f| {
                    f.target_groups()
                        .iter()
                        .filter_map(|t| t.target_group_arn().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            if let Some(arn) = a.target_group_arn() {
                tgs.push(arn.to_string());
            }
            tgs.sort();
            tgs.dedup();
            Action::Forward { target_groups: tgs }
        }
        Some(T::Redirect) => {
            let to = a
                .redirect_config()
                .map(|r| {
                    format!(
                        "{}:{}",
                        r.protocol().unwrap_or("#{protocol}"),
                        r.port().unwrap_or("#{port}")
                    )
                })
                .unwrap_or_default();
            Action::Redirect { to }
        }
        Some(T::FixedResponse) => Action::FixedResponse {
            status: a
                .fixed_response_config()
                .and_then(|f| f.status_code())
                .map(str::to_string)
                .unwrap_or_default(),
        },
        other => Action::Other {
            kind: other.map(|t| t.as_str().to_string()).unwrap_or_default(),
        },
    }
}

/// An ELBv2 client from the standard AWS configuration, or why there is none.
pub async fn client(region: Option<&str>) -> Result<elbv2::Client, String> {
    let sdk = jockey_build::aws::sdk_config(region).await;
    jockey_build::aws::available(&sdk).await?;
    Ok(elbv2::Client::new(&sdk))
}

/// Reads the snapshot, turning "no AWS access" into `Ok(Err(why))` (the AWS checks are then
/// skipped, saying why) and an API failure into `Err` (they fail).
pub async fn read(
    region: Option<&str>,
    dns_names: &BTreeSet<String>,
    groups: &BTreeSet<String>,
) -> Result<Result<ElbSnapshot, String>> {
    let client = match client(region).await {
        Ok(c) => c,
        Err(why) => return Ok(Err(why)),
    };
    let snapshot = fetch(&client, dns_names, groups)
        .await
        .context("reading the shared ALB(s)")?;
    Ok(Ok(snapshot))
}
