//! `alb-status`: per shard group its members, load balancer, quota use and health (one
//! judgement, [`super::health`]); the controller; the DNS records each shard needs; and every
//! problem that needs the operator.

use super::conflicts::{group_conflicts, legacy_project_tags, tag_conflicts};
use super::elb::{Action, ElbSnapshot, LoadBalancer, TargetGroup};
use super::health::{self, Evidence, FailureEvent, Health, Scope};
use super::model::*;
use super::routes::{listener_label, route_host, target_health};
use super::rows::{IngressRow, ingress_rows};
use jockey_core::defaults::ALB_TAGS;
use jockey_core::names::{LABEL_DEPLOYMENT, LABEL_HOSTNAME};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::networking::v1::Ingress;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Usage {
    pub used: usize,
    pub quota: usize,
    /// `ELBv2` when counted on the load balancer, `estimate` when derived from the Ingresses.
    pub source: &'static str,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct HostRoute {
    pub host: String,
    pub listener: String,
    pub priority: String,
    pub target_groups: Vec<String>,
    pub healthy: usize,
    pub targets: usize,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LbStatus {
    pub name: String,
    pub dns_name: String,
    pub state: String,
    pub scheme: String,
    pub listeners: Vec<String>,
    pub routes: Vec<HostRoute>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct GroupStatus {
    pub group: String,
    pub shard: u32,
    pub ingresses: usize,
    pub with_address: usize,
    pub ready: usize,
    pub alb_dns_names: Vec<String>,
    pub namespaces: BTreeMap<String, usize>,
    pub target_groups: Usage,
    pub rules: Usage,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load_balancer: Option<LbStatus>,
    /// The one judgement of the group ([`health::judge`]).
    pub health: Health,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ControllerPod {
    pub namespace: String,
    pub name: String,
    pub phase: String,
    pub ready: bool,
    pub restarts: i32,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DnsRecord {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub value: String,
    pub why: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Status {
    pub groups: Vec<GroupStatus>,
    pub namespaces: BTreeMap<String, usize>,
    pub controller_pods: Vec<ControllerPod>,
    /// How the controller was found when no pod matched its selector.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub controller_note: Option<String>,
    pub failures: Vec<FailureEvent>,
    pub dns_records: Vec<DnsRecord>,
    /// `read`, or why the AWS part is missing.
    pub aws: String,
    /// Everything that needs the operator's attention; the command fails when non-empty.
    pub problems: Vec<String>,
}

fn pod_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// How many listener rules the group's Ingresses need: one per (host, path) per listener,
/// except that with `ssl-redirect` the HTTP listeners only redirect.
fn estimate_rules(members: &[&Ingress]) -> usize {
    members
        .iter()
        .map(|ing| {
            let paths: usize = ing
                .spec
                .iter()
                .flat_map(|s| s.rules.iter().flatten())
                .map(|r| r.http.as_ref().map_or(1, |h| h.paths.len().max(1)))
                .sum();
            let ports = annotation(ing, ANNOTATION_LISTEN_PORTS)
                .and_then(|p| serde_json::from_str::<Vec<BTreeMap<String, u16>>>(p).ok())
                .unwrap_or_else(|| vec![BTreeMap::from([("HTTP".to_string(), 80)])]);
            let listeners = if annotation(ing, ANNOTATION_SSL_REDIRECT).is_some() {
                ports
                    .iter()
                    .filter(|p| !p.contains_key("HTTP"))
                    .count()
                    .max(1)
            } else {
                ports.len().max(1)
            };
            paths * listeners
        })
        .sum()
}

/// Distinct backends (namespace, service, port): the controller makes one target group each.
fn estimate_target_groups(members: &[&Ingress]) -> usize {
    let mut backends = BTreeSet::new();
    for ing in members {
        let spec = ing.spec.iter();
        for s in spec {
            let defaults = s.default_backend.iter();
            let paths = s
                .rules
                .iter()
                .flatten()
                .filter_map(|r| r.http.as_ref())
                .flat_map(|h| h.paths.iter().map(|p| &p.backend));
            for b in defaults.chain(paths) {
                if let Some(svc) = &b.service {
                    let port = svc
                        .port
                        .as_ref()
                        .map(|p| {
                            p.number
                                .map(|n| n.to_string())
                                .or_else(|| p.name.clone())
                                .unwrap_or_default()
                        })
                        .unwrap_or_default();
                    backends.insert((namespace(ing).to_string(), svc.name.clone(), port));
                }
            }
        }
    }
    backends.len()
}

fn lb_status(lb: &LoadBalancer, snap: &ElbSnapshot) -> LbStatus {
    let mut routes = Vec::new();
    for l in &lb.listeners {
        for r in l.rules.iter().filter(|r| !r.is_default) {
            let Action::Forward { target_groups } = &r.action else {
                continue;
            };
            let tgs: Vec<&TargetGroup> = target_groups
                .iter()
                .filter_map(|a| snap.target_group(a))
                .collect();
            for host in &r.hosts {
                routes.push(HostRoute {
                    host: host.clone(),
                    listener: listener_label(&l.protocol, l.port),
                    priority: r.priority.clone(),
                    target_groups: tgs.iter().map(|t| t.name.clone()).collect(),
                    healthy: tgs.iter().map(|t| t.healthy()).sum(),
                    targets: tgs.iter().map(|t| t.targets.len()).sum(),
                });
            }
        }
    }
    routes.sort_by(|a, b| (&a.host, &a.listener).cmp(&(&b.host, &b.listener)));
    LbStatus {
        name: lb.name.clone(),
        dns_name: lb.dns_name.clone(),
        state: lb.state.clone(),
        scheme: lb.scheme.clone(),
        listeners: lb
            .listeners
            .iter()
            .map(|l| listener_label(&l.protocol, l.port))
            .collect(),
        routes,
    }
}

/// Target groups in use on a load balancer: those its rules forward to.
fn lb_target_groups(lb: &LoadBalancer) -> usize {
    lb.listeners
        .iter()
        .flat_map(|l| l.rules.iter())
        .filter_map(|r| match &r.action {
            Action::Forward { target_groups } => Some(target_groups.iter()),
            _ => None,
        })
        .flatten()
        .collect::<BTreeSet<_>>()
        .len()
}

fn lb_rules(lb: &LoadBalancer) -> usize {
    lb.listeners
        .iter()
        .flat_map(|l| l.rules.iter())
        .filter(|r| !r.is_default)
        .count()
}

/// Share of a quota at which `alb-status` reports a problem. Not 90: the webhook fills a shard
/// up to 90 projects by design, and a full shard is healthy. Past 95 the group is either not
/// being sharded (a capacity set too high, Ingresses placed by hand) or carries extra rules.
const WARN_PERCENT: usize = 95;

pub fn status(cluster: &ClusterState, aws: &AwsView, base: &str, domain: &str) -> Status {
    let rows = ingress_rows(&cluster.ingresses, &cluster.events, base, &Scope::All);
    let evidence = Evidence {
        ingresses: &cluster.ingresses,
        scope: &Scope::All,
        events: &cluster.events,
        elb: match aws {
            AwsView::Read(s) => Some(s),
            _ => None,
        },
    };
    // Only failures of the shared groups' Ingresses: other teams' ALBs are not ours to report,
    // and an event about a deleted Ingress outlives the problem it described.
    let failures: Vec<FailureEvent> = health::failures(&evidence)
        .into_iter()
        .filter(|f| {
            rows.iter()
                .any(|r| r.namespace == f.namespace && r.name == f.ingress)
        })
        .collect();
    let mut problems = Vec::new();

    let mut by_group: BTreeMap<(u32, String), Vec<&Ingress>> = BTreeMap::new();
    for ing in cluster
        .ingresses
        .iter()
        .filter(|i| in_shared_groups(i, base))
    {
        if let Some(g) = group_of(ing)
            && let Some(n) = shard_index(g, base)
        {
            by_group.entry((n, g.to_string())).or_default().push(ing);
        }
    }
    // The base group is always shown, even empty, so that a fresh cluster reads as such.
    by_group.entry((1, base.to_string())).or_default();

    let snapshot = match aws {
        AwsView::Read(s) => Some(s),
        AwsView::Failed(why) => {
            problems.push(format!("AWS: {why}"));
            None
        }
        AwsView::Skipped(_) => None,
    };

    let mut groups = Vec::new();
    let mut failing = Vec::new();
    let mut namespaces: BTreeMap<String, usize> = BTreeMap::new();
    for ((shard, group), members) in &by_group {
        let member_rows: Vec<&IngressRow> = rows
            .iter()
            .filter(|r| r.group.as_deref() == Some(group.as_str()))
            .collect();
        let mut ns_counts: BTreeMap<String, usize> = BTreeMap::new();
        for ing in members {
            *ns_counts.entry(namespace(ing).to_string()).or_default() += 1;
            *namespaces.entry(namespace(ing).to_string()).or_default() += 1;
        }
        let dns: BTreeSet<String> = members.iter().flat_map(|i| addresses(i)).collect();
        if dns.len() > 1 {
            problems.push(format!(
                "group {group} has {} different ALB addresses ({}): its Ingresses are not on \
                 one load balancer; check the controller's events below and that they all use \
                 the same group.name",
                dns.len(),
                dns.iter().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
        let lb = snapshot.and_then(|s| {
            dns.iter()
                .find_map(|d| s.by_dns_name(d))
                .or_else(|| s.by_group(group))
        });
        let (target_groups, rules) = match lb {
            Some(lb) => (
                Usage {
                    used: lb_target_groups(lb),
                    quota: QUOTA_TARGET_GROUPS_PER_ALB,
                    source: "ELBv2",
                },
                Usage {
                    used: lb_rules(lb),
                    quota: QUOTA_RULES_PER_ALB,
                    source: "ELBv2",
                },
            ),
            None => (
                Usage {
                    used: estimate_target_groups(members),
                    quota: QUOTA_TARGET_GROUPS_PER_ALB,
                    source: "estimate",
                },
                Usage {
                    used: estimate_rules(members),
                    quota: QUOTA_RULES_PER_ALB,
                    source: "estimate",
                },
            ),
        };
        for (what, u, fix) in [
            (
                "target groups",
                &target_groups,
                "the quota is fixed at 100 per ALB: move new projects to the next shard group \
                 (the webhook does this at its configured capacity)",
            ),
            (
                "listener rules",
                &rules,
                "request a higher 'Rules per Application Load Balancer' quota in Service Quotas, \
                 or lower the shard capacity",
            ),
        ] {
            if u.used * 100 >= u.quota * WARN_PERCENT {
                problems.push(format!(
                    "group {group} uses {} of {} {what} per ALB ({}); {fix}",
                    u.used, u.quota, u.source
                ));
            }
        }
        if let Some(lb) = lb
            && lb.state != "active"
        {
            problems.push(format!(
                "load balancer {} of group {group} is {:?}, not active; see the AWS console or \
                 `aws elbv2 describe-load-balancers --names {}`",
                lb.name, lb.state, lb.name
            ));
        }
        if snapshot.is_some() && lb.is_none() && !members.is_empty() {
            problems.push(format!(
                "group {group}: no load balancer with address {} (or tag {}={group}) in this \
                 AWS account/region; check AWS_REGION and the controller's events",
                if dns.is_empty() {
                    "-".to_string()
                } else {
                    dns.iter().cloned().collect::<Vec<_>>().join(", ")
                },
                super::elb::TAG_STACK
            ));
        }
        for conflict in group_conflicts(members) {
            problems.push(format!(
                "group {group} disagrees on {conflict}; the controller rejects the whole group \
                 while its Ingresses differ — give them the same load-balancer annotations"
            ));
        }
        for conflict in tag_conflicts(members) {
            problems.push(format!(
                "group {group} disagrees on {conflict}; the controller rejects the whole group \
                 (FailedBuildModel: conflicting tag) — give the key one value on every Ingress of \
                 the group, or move per-project tags to the project's Service"
            ));
        }
        for who in legacy_project_tags(members) {
            problems.push(format!(
                "Ingress {who} in group {group} carries per-project tags ({LABEL_DEPLOYMENT}=, \
                 {LABEL_HOSTNAME}=), which fail the group once two projects differ; run \
                 `kubectl jockey deploy` for its project (it moves them to the Service) or remove \
                 them from the Ingress's {ALB_TAGS} annotation"
            ));
        }
        // Every host of the group must have a forwarding rule with a healthy target.
        if let (Some(lb), Some(snap)) = (lb, snapshot) {
            for ing in members.iter() {
                for host in hosts(ing) {
                    let (_, forwards) = route_host(lb, &host);
                    let who = format!("{}/{}", namespace(ing), name(ing));
                    if forwards.is_empty() {
                        problems.push(format!(
                            "host {host} ({who}): no listener rule on {} forwards it; the \
                             controller has not written its rule — check its events and \
                             `kubectl jockey validate-alb-routing {host}`",
                            lb.name
                        ));
                        continue;
                    }
                    let (_, bad) = target_health(snap, &forwards);
                    if !bad.is_empty() {
                        problems.push(format!(
                            "host {host} ({who}): {}; see `kubectl jockey validate-alb-routing \
                             {host}`",
                            bad.join("; ")
                        ));
                    }
                }
            }
        }
        let verdict = health::judge(&evidence, group);
        if let Health::Failing(f) = &verdict {
            failing.push(format!(
                "group {group} fails (the controller's event on Ingress {}): {}: {}; fix: {}",
                f.member, f.reason, f.message, f.fix
            ));
        }
        groups.push(GroupStatus {
            group: group.clone(),
            shard: *shard,
            ingresses: members.len(),
            with_address: member_rows.iter().filter(|r| r.address.is_some()).count(),
            ready: member_rows.iter().filter(|r| r.ready).count(),
            alb_dns_names: dns.into_iter().collect(),
            namespaces: ns_counts,
            target_groups,
            rules,
            load_balancer: lb.map(|lb| lb_status(lb, snapshot.unwrap_or(&ElbSnapshot::default()))),
            health: verdict,
        });
    }

    // DNS: one wildcard for the first shard; a record per host for the others, because a
    // wildcard can only point at one load balancer and a specific record beats a wildcard.
    let mut dns_records = Vec::new();
    let domain = domain.trim_matches('.');
    for g in &groups {
        let Some(alb) = g.alb_dns_names.first() else {
            continue;
        };
        if g.shard == 1 {
            dns_records.push(DnsRecord {
                name: format!("*.{domain}"),
                kind: "CNAME".into(),
                value: alb.clone(),
                why: format!("every project host in group {} (the first shard)", g.group),
            });
        } else {
            for r in rows.iter().filter(|r| r.group.as_deref() == Some(&g.group)) {
                for h in &r.hosts {
                    dns_records.push(DnsRecord {
                        name: h.clone(),
                        kind: "CNAME".into(),
                        value: alb.clone(),
                        why: format!(
                            "{}/{} is in shard {}; this record overrides *.{domain}",
                            r.namespace, r.name, g.group
                        ),
                    });
                }
            }
        }
    }

    let controller_pods: Vec<ControllerPod> = cluster
        .controller_pods
        .iter()
        .map(|p| ControllerPod {
            namespace: p.metadata.namespace.clone().unwrap_or_default(),
            name: p.metadata.name.clone().unwrap_or_default(),
            phase: p
                .status
                .as_ref()
                .and_then(|s| s.phase.clone())
                .unwrap_or_else(|| "Unknown".into()),
            ready: pod_ready(p),
            restarts: p
                .status
                .as_ref()
                .and_then(|s| s.container_statuses.as_ref())
                .map(|c| c.iter().map(|c| c.restart_count).sum())
                .unwrap_or(0),
        })
        .collect();
    // Its reconcile events are the controller's own signature: it runs (outside the cluster,
    // or under other labels) even when no pod matches the selector.
    let member =
        |(ns, n): &(String, String)| rows.iter().any(|r| &r.namespace == ns && &r.name == n);
    let controller_note = if controller_pods.is_empty() {
        cluster
            .events
            .iter()
            .filter(|e| {
                e.reason
                    .as_deref()
                    .is_some_and(|r| r == SUCCESS_REASON || FAILURE_REASONS.contains(&r))
            })
            .filter_map(|e| health::event_ingress(e).map(|k| (health::event_time(e), k)))
            .filter(|(_, k)| member(k))
            .max()
            .map(|(_, k)| k)
            .map(|(ns, n)| {
                format!(
                    "no pod matches the controller selector, but the AWS Load Balancer \
                     Controller reconciles the groups (its events on Ingress {ns}/{n}): it runs \
                     outside the cluster or under other labels (--controller-selector)"
                )
            })
    } else {
        None
    };
    if controller_pods.is_empty() && controller_note.is_none() {
        problems.push(
            "no AWS Load Balancer Controller pods found (label \
             app.kubernetes.io/name=aws-load-balancer-controller): nothing turns Ingresses into \
             ALB rules; install it (e.g. the eks/aws-load-balancer-controller Helm chart) or \
             pass --controller-selector"
                .into(),
        );
    } else if !controller_pods.is_empty() && !controller_pods.iter().any(|p| p.ready) {
        problems.push(
            "no AWS Load Balancer Controller pod is ready; see `kubectl -n kube-system logs \
             -l app.kubernetes.io/name=aws-load-balancer-controller`"
                .into(),
        );
    }
    problems.extend(failing);
    for r in rows
        .iter()
        .filter(|r| !r.ready && r.problem.as_deref() == Some("no ALB address yet"))
    {
        // Listed once per Ingress; the failure events above already cover the others.
        problems.push(format!(
            "Ingress {}/{} has no ALB address yet: the controller has not reconciled it",
            r.namespace, r.name
        ));
    }

    Status {
        groups,
        namespaces,
        controller_pods,
        controller_note,
        failures,
        dns_records,
        aws: match aws {
            AwsView::Read(_) => "read".into(),
            AwsView::Skipped(why) => format!("skipped: {why}"),
            AwsView::Failed(why) => format!("failed: {why}"),
        },
        problems,
    }
}

#[cfg(test)]
#[path = "status_tests.rs"]
mod tests;
