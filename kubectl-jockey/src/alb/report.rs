//! The pure half of the ALB commands: Kubernetes objects, an optional ELBv2 snapshot and DNS
//! answers in; ingress rows, a status summary and routing checks out. No I/O here, so every
//! branch is unit-tested with hand-made objects.

use super::elb::{Action, ElbSnapshot, LoadBalancer, TargetGroup};
use jockey_core::defaults::{ALB_TAGS, parse_tags};
use jockey_core::names::{LABEL_DEPLOYMENT, LABEL_HOSTNAME, LABEL_PROJECT};
use k8s_openapi::api::core::v1::{Event, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

pub const ALB_ANNOTATION_PREFIX: &str = "alb.ingress.kubernetes.io/";
pub const ANNOTATION_GROUP: &str = "alb.ingress.kubernetes.io/group.name";
pub const ANNOTATION_LISTEN_PORTS: &str = "alb.ingress.kubernetes.io/listen-ports";
pub const ANNOTATION_SSL_REDIRECT: &str = "alb.ingress.kubernetes.io/ssl-redirect";
/// The legacy class annotation, still honoured by the controller.
pub const ANNOTATION_INGRESS_CLASS: &str = "kubernetes.io/ingress.class";
pub const ALB_CLASS: &str = "alb";

/// Target groups per Application Load Balancer: a hard AWS quota (not adjustable). One
/// jockey project is one target group, which is why projects are sharded into groups.
pub const QUOTA_TARGET_GROUPS_PER_ALB: usize = 100;
/// Listener rules per ALB, default rules not counted: the default quota (adjustable).
pub const QUOTA_RULES_PER_ALB: usize = 100;
/// Controller events that mean "this Ingress group is not (fully) reconciled".
pub const FAILURE_REASONS: &[&str] = &["FailedBuildModel", "FailedDeployModel"];
/// The controller's event after a successful reconcile; it supersedes earlier failures.
pub const SUCCESS_REASON: &str = "SuccessfullyReconciled";

/// Annotations that configure the load balancer itself rather than one Ingress's rules: every
/// member of a group must agree on them, or the controller refuses the whole group
/// (`FailedBuildModel: conflicting ...`) and no project in it gets updates.
pub const GROUP_WIDE_ANNOTATIONS: &[&str] = &[
    "scheme",
    "ip-address-type",
    "load-balancer-name",
    "security-groups",
    "subnets",
    "customer-owned-ipv4-pool",
    "load-balancer-attributes",
    "wafv2-acl-arn",
    "waf-acl-id",
    "shield-advanced-protection",
    "ssl-policy",
    "inbound-cidrs",
    "ssl-redirect",
];

/// Everything read from the cluster.
#[derive(Debug, Clone, Default)]
pub struct ClusterState {
    pub ingresses: Vec<Ingress>,
    pub services: Vec<Service>,
    pub endpoint_slices: Vec<EndpointSlice>,
    /// Events whose involved object is an Ingress.
    pub events: Vec<Event>,
    /// The AWS Load Balancer Controller's pods.
    pub controller_pods: Vec<Pod>,
}

/// The AWS part of a report: read, not attempted (why), or failed (why).
#[derive(Debug, Clone)]
pub enum AwsView {
    Read(ElbSnapshot),
    Skipped(String),
    Failed(String),
}

// ---------------------------------------------------------------------------------------------
// Groups and ingresses

/// The shard number of `group` in the family of `base`: `base` is 1, `base-N` is N (N >= 2).
/// The placement itself is the webhook's (jockey-core sharding); this only reads it back.
pub fn shard_index(group: &str, base: &str) -> Option<u32> {
    if !jockey_core::sharding::is_shard_of(base, group) {
        return None;
    }
    if group == base {
        return Some(1);
    }
    group.get(base.len() + 1..)?.parse().ok()
}

fn annotation<'a>(ing: &'a Ingress, key: &str) -> Option<&'a str> {
    ing.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .map(String::as_str)
}

pub fn group_of(ing: &Ingress) -> Option<&str> {
    annotation(ing, ANNOTATION_GROUP)
}

/// Whether the AWS Load Balancer Controller handles this Ingress (class `alb`, by field or by
/// the legacy annotation).
pub fn is_alb_ingress(ing: &Ingress) -> bool {
    let class = ing
        .spec
        .as_ref()
        .and_then(|s| s.ingress_class_name.as_deref())
        .or_else(|| annotation(ing, ANNOTATION_INGRESS_CLASS));
    class == Some(ALB_CLASS)
}

/// In one of the shared groups (`base`, `base-2`, ...), whatever its class: an Ingress that
/// claims the group but is not of class `alb` is listed so that the mistake shows.
pub fn in_shared_groups(ing: &Ingress, base: &str) -> bool {
    group_of(ing).is_some_and(|g| shard_index(g, base).is_some())
}

pub fn namespace(ing: &Ingress) -> &str {
    ing.metadata.namespace.as_deref().unwrap_or("default")
}

pub fn name(ing: &Ingress) -> &str {
    ing.metadata.name.as_deref().unwrap_or("")
}

pub fn hosts(ing: &Ingress) -> Vec<String> {
    let mut hosts: Vec<String> = ing
        .spec
        .iter()
        .flat_map(|s| s.rules.iter().flatten())
        .filter_map(|r| r.host.clone())
        .collect();
    hosts.dedup();
    hosts
}

/// The load balancer DNS names in the Ingress's status (the controller writes the ALB's).
pub fn addresses(ing: &Ingress) -> Vec<String> {
    ing.status
        .iter()
        .filter_map(|s| s.load_balancer.as_ref())
        .flat_map(|lb| lb.ingress.iter().flatten())
        .filter_map(|i| i.hostname.clone().or_else(|| i.ip.clone()))
        .collect()
}

pub fn project_of(ing: &Ingress) -> Option<&str> {
    ing.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(LABEL_PROJECT))
        .map(String::as_str)
}

/// Ingress host matching, case-insensitive: exact, or a `*.` wildcard covering one label.
pub fn ingress_host_matches(pattern: &str, host: &str) -> bool {
    let (pattern, host) = (pattern.to_ascii_lowercase(), host.to_ascii_lowercase());
    match pattern.strip_prefix("*.") {
        Some(suffix) => host
            .split_once('.')
            .is_some_and(|(first, rest)| !first.is_empty() && rest == suffix),
        None => pattern == host,
    }
}

/// ALB host-header condition matching: case-insensitive, `*` any run of characters, `?` one.
pub fn alb_host_matches(pattern: &str, host: &str) -> bool {
    fn glob(p: &[u8], s: &[u8]) -> bool {
        match (p.first(), s.first()) {
            (None, None) => true,
            (Some(b'*'), _) => glob(&p[1..], s) || (!s.is_empty() && glob(p, &s[1..])),
            (Some(b'?'), Some(_)) => glob(&p[1..], &s[1..]),
            (Some(a), Some(b)) => a == b && glob(&p[1..], &s[1..]),
            _ => false,
        }
    }
    glob(
        pattern.to_ascii_lowercase().as_bytes(),
        host.trim_end_matches('.').to_ascii_lowercase().as_bytes(),
    )
}

// ---------------------------------------------------------------------------------------------
// Controller events

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FailureEvent {
    pub namespace: String,
    pub ingress: String,
    pub reason: String,
    pub message: String,
    /// RFC 3339; empty when the event carries no time.
    pub last_seen: String,
    pub count: i32,
    /// False when a later `SuccessfullyReconciled` on the same Ingress superseded it.
    pub current: bool,
}

/// When the event last happened; the API has carried this in four places over time.
fn event_time(e: &Event) -> Option<k8s_openapi::jiff::Timestamp> {
    e.last_timestamp
        .as_ref()
        .map(|t| t.0)
        .or_else(|| e.event_time.as_ref().map(|t| t.0))
        .or_else(|| e.first_timestamp.as_ref().map(|t| t.0))
        .or_else(|| e.metadata.creation_timestamp.as_ref().map(|t| t.0))
}

fn event_ingress(e: &Event) -> Option<(String, String)> {
    let o = &e.involved_object;
    if o.kind.as_deref() != Some("Ingress") {
        return None;
    }
    Some((
        o.namespace
            .clone()
            .or_else(|| e.metadata.namespace.clone())
            .unwrap_or_else(|| "default".into()),
        o.name.clone().unwrap_or_default(),
    ))
}

/// The controller's failure events on Ingresses, newest first.
pub fn failure_events(events: &[Event]) -> Vec<FailureEvent> {
    type Ts = Option<k8s_openapi::jiff::Timestamp>;
    let mut last_success: BTreeMap<(String, String), Ts> = BTreeMap::new();
    for e in events {
        if e.reason.as_deref() == Some(SUCCESS_REASON)
            && let Some(key) = event_ingress(e)
        {
            let t = event_time(e);
            let slot = last_success.entry(key).or_default();
            if t > *slot {
                *slot = t;
            }
        }
    }
    let mut out: Vec<(Ts, FailureEvent)> = events
        .iter()
        .filter(|e| {
            e.reason
                .as_deref()
                .is_some_and(|r| FAILURE_REASONS.contains(&r))
        })
        .filter_map(|e| {
            let (namespace, ingress) = event_ingress(e)?;
            let at = event_time(e);
            // A success at the same second as the failure does not clear it: the failure
            // may be the later of the two, and hiding a failure is the worse mistake.
            let current = last_success
                .get(&(namespace.clone(), ingress.clone()))
                .is_none_or(|s| *s <= at);
            Some((
                at,
                FailureEvent {
                    namespace,
                    ingress,
                    reason: e.reason.clone().unwrap_or_default(),
                    message: e.message.clone().unwrap_or_default(),
                    last_seen: at.map(|t| t.to_string()).unwrap_or_default(),
                    count: e.count.unwrap_or(1),
                    current,
                },
            ))
        })
        .collect();
    out.sort_by(|(ta, a), (tb, b)| {
        tb.cmp(ta)
            .then_with(|| (&a.namespace, &a.ingress).cmp(&(&b.namespace, &b.ingress)))
    });
    out.into_iter().map(|(_, f)| f).collect()
}

// ---------------------------------------------------------------------------------------------
// list-alb-ingresses

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct IngressRow {
    pub namespace: String,
    pub name: String,
    pub project: Option<String>,
    pub hosts: Vec<String>,
    pub group: Option<String>,
    pub address: Option<String>,
    /// Has an ALB address and no current controller failure.
    pub ready: bool,
    pub class: Option<String>,
    /// Why it is not ready, when it is not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

pub fn ingress_rows(ingresses: &[Ingress], events: &[Event], base: &str) -> Vec<IngressRow> {
    let failures = failure_events(events);
    let mut rows: Vec<IngressRow> = ingresses
        .iter()
        .filter(|i| in_shared_groups(i, base))
        .map(|ing| {
            let (ns, n) = (namespace(ing), name(ing));
            let address = addresses(ing).into_iter().next();
            let failure = failures
                .iter()
                .find(|f| f.current && f.namespace == ns && f.ingress == n);
            let problem = if !is_alb_ingress(ing) {
                Some(
                    "ingressClassName is not alb: the AWS Load Balancer Controller ignores it"
                        .into(),
                )
            } else if let Some(f) = failure {
                Some(format!("{}: {}", f.reason, f.message))
            } else if address.is_none() {
                Some("no ALB address yet".into())
            } else {
                None
            };
            IngressRow {
                namespace: ns.to_string(),
                name: n.to_string(),
                project: project_of(ing).map(str::to_string),
                hosts: hosts(ing),
                group: group_of(ing).map(str::to_string),
                ready: problem.is_none(),
                address,
                class: ing
                    .spec
                    .as_ref()
                    .and_then(|s| s.ingress_class_name.clone())
                    .or_else(|| annotation(ing, ANNOTATION_INGRESS_CLASS).map(str::to_string)),
                problem,
            }
        })
        .collect();
    rows.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    rows
}

// ---------------------------------------------------------------------------------------------
// alb-status

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

fn listener_label(protocol: &str, port: i32) -> String {
    format!("{protocol}:{port}")
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

/// Group-wide annotations on which the members of one group disagree: "key: value (ns/a, ...)
/// vs value (ns/b)" per key. Unset counts as a value: the controller's default for it.
pub fn group_conflicts(members: &[&Ingress]) -> Vec<String> {
    let mut out = Vec::new();
    for key in GROUP_WIDE_ANNOTATIONS {
        let full = format!("{ALB_ANNOTATION_PREFIX}{key}");
        let mut values: BTreeMap<Option<&str>, Vec<String>> = BTreeMap::new();
        for ing in members {
            values
                .entry(annotation(ing, &full))
                .or_default()
                .push(format!("{}/{}", namespace(ing), name(ing)));
        }
        if values.len() > 1 {
            let parts: Vec<String> = values
                .iter()
                .map(|(v, who)| {
                    let more = if who.len() > 1 {
                        format!(" and {} more", who.len() - 1)
                    } else {
                        String::new()
                    };
                    format!(
                        "{} ({}{more})",
                        v.map_or("unset".to_string(), |v| format!("{v:?}")),
                        who[0]
                    )
                })
                .collect();
            out.push(format!("{key}: {}", parts.join(" vs ")));
        }
    }
    out
}

/// Tag keys to which the members of one group give different values: the controller merges every
/// Ingress's `tags` into the one ALB and fails the whole group on such a key.
pub fn tag_conflicts(members: &[&Ingress]) -> Vec<String> {
    let mut by_key: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    for ing in members {
        for (k, v) in annotation(ing, ALB_TAGS)
            .map(parse_tags)
            .unwrap_or_default()
        {
            by_key
                .entry(k)
                .or_default()
                .entry(v)
                .or_default()
                .push(format!("{}/{}", namespace(ing), name(ing)));
        }
    }
    by_key
        .into_iter()
        .filter(|(_, values)| values.len() > 1)
        .map(|(key, values)| {
            let parts: Vec<String> = values
                .iter()
                .map(|(v, who)| format!("{key}={v} ({})", who.join(", ")))
                .collect();
            format!("tag {key}: {}", parts.join(" vs "))
        })
        .collect()
}

/// Ingresses that still carry the per-project tags (`deployment`, `hostname`) earlier versions of
/// jockey wrote there; they belong on the Service now.
pub fn legacy_project_tags(members: &[&Ingress]) -> Vec<String> {
    members
        .iter()
        .filter(|ing| {
            annotation(ing, ALB_TAGS)
                .map(parse_tags)
                .unwrap_or_default()
                .iter()
                .any(|(k, _)| k == LABEL_DEPLOYMENT || k == LABEL_HOSTNAME)
        })
        .map(|ing| format!("{}/{}", namespace(ing), name(ing)))
        .collect()
}

/// Share of a quota at which `alb-status` reports a problem. Not 90: the webhook fills a shard
/// up to 90 projects by design, and a full shard is healthy. Past 95 the group is either not
/// being sharded (a capacity set too high, Ingresses placed by hand) or carries extra rules.
const WARN_PERCENT: usize = 95;

pub fn status(cluster: &ClusterState, aws: &AwsView, base: &str, domain: &str) -> Status {
    let rows = ingress_rows(&cluster.ingresses, &cluster.events, base);
    // Only failures of the shared groups' Ingresses: other teams' ALBs are not ours to report,
    // and an event about a deleted Ingress outlives the problem it described.
    let failures: Vec<FailureEvent> = failure_events(&cluster.events)
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
            .filter_map(|e| event_ingress(e).map(|k| (event_time(e), k)))
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
    for f in failures.iter().filter(|f| f.current) {
        let group = rows
            .iter()
            .find(|r| r.namespace == f.namespace && r.name == f.ingress)
            .and_then(|r| r.group.clone())
            .unwrap_or_default();
        problems.push(format!(
            "Ingress {}/{}: {}: {}; fix: {}",
            f.namespace,
            f.ingress,
            f.reason,
            f.message,
            super::address::fix_for(&f.message, &group)
        ));
    }
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

// ---------------------------------------------------------------------------------------------
// validate-alb-routing

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Pass,
    Fail,
    Skip,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Check {
    pub name: &'static str,
    pub outcome: Outcome,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Check {
    fn pass(name: &'static str, detail: impl Into<String>) -> Self {
        Self {
            name,
            outcome: Outcome::Pass,
            detail: detail.into(),
            fix: None,
        }
    }
    fn fail(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            name,
            outcome: Outcome::Fail,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
    fn skip(name: &'static str, detail: impl Into<String>) -> Self {
        Self {
            name,
            outcome: Outcome::Skip,
            detail: detail.into(),
            fix: None,
        }
    }
}

/// What DNS said about one name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DnsAnswer {
    /// The CNAME chain, in order, without trailing dots.
    pub cnames: Vec<String>,
    pub ips: Vec<IpAddr>,
    /// The resolver's error (NXDOMAIN, timeout, ...), when it had no answer.
    pub error: Option<String>,
}

#[derive(Debug, Clone)]
pub enum DnsView {
    Skipped(String),
    /// The host's answer, and each ALB address's.
    Answers {
        host: DnsAnswer,
        albs: BTreeMap<String, DnsAnswer>,
    },
}

/// The result of `GET https://HOST/health`.
#[derive(Debug, Clone)]
pub enum ProbeResult {
    NotRequested,
    Status(u16),
    Error(String),
}

/// The Ingresses (in the shared groups or not) that serve `host`.
pub fn ingresses_for_host<'a>(ingresses: &'a [Ingress], host: &str) -> Vec<&'a Ingress> {
    ingresses
        .iter()
        .filter(|i| hosts(i).iter().any(|h| ingress_host_matches(h, host)))
        .collect()
}

/// The ALB addresses `validate` needs DNS answers for (the adapter resolves them).
pub fn alb_addresses_for_host(ingresses: &[Ingress], host: &str) -> Vec<String> {
    let mut out: Vec<String> = ingresses_for_host(ingresses, host)
        .into_iter()
        .flat_map(addresses)
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The backend (service name, port) the Ingress routes `host` `/` to.
fn backend_for(ing: &Ingress, host: &str) -> Option<(String, Option<i32>, Option<String>)> {
    let spec = ing.spec.as_ref()?;
    let rule_backend = spec
        .rules
        .iter()
        .flatten()
        .filter(|r| {
            r.host
                .as_deref()
                .is_some_and(|h| ingress_host_matches(h, host))
        })
        .filter_map(|r| r.http.as_ref())
        .flat_map(|h| h.paths.iter())
        // `/` is the project's route; otherwise the first path is the best we can say.
        .min_by_key(|p| p.path.as_deref() != Some("/"))
        .map(|p| &p.backend);
    let backend = rule_backend.or(spec.default_backend.as_ref())?;
    let svc = backend.service.as_ref()?;
    let port = svc.port.as_ref();
    Some((
        svc.name.clone(),
        port.and_then(|p| p.number),
        port.and_then(|p| p.name.clone()),
    ))
}

fn slice_service(s: &EndpointSlice) -> Option<&str> {
    s.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get("kubernetes.io/service-name"))
        .map(String::as_str)
}

/// Ready endpoint addresses of a Service. `ready` unset means ready (the API's rule).
pub fn ready_endpoints(slices: &[EndpointSlice], ns: &str, service: &str) -> Vec<String> {
    let mut out: Vec<String> = slices
        .iter()
        .filter(|s| {
            s.metadata.namespace.as_deref() == Some(ns) && slice_service(s) == Some(service)
        })
        .flat_map(|s| s.endpoints.iter().flatten())
        .filter(|e| e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true))
        .flat_map(|e| e.addresses.iter().cloned())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Everything `validate` needs.
pub struct ValidateInput<'a> {
    pub host: &'a str,
    pub base_group: &'a str,
    pub cluster: &'a ClusterState,
    pub aws: &'a AwsView,
    pub dns: &'a DnsView,
    pub probe: &'a ProbeResult,
}

/// Walks the chain DNS → ALB → rule → target group → Service → endpoints for one host and
/// returns every check, in the order a request travels through them backwards from the
/// Ingress. A check that cannot be evaluated because an earlier one failed is skipped, saying
/// which.
pub fn validate(input: &ValidateInput<'_>) -> Vec<Check> {
    let host = input.host.trim_end_matches('.').to_ascii_lowercase();
    let base = input.base_group;
    let cluster = input.cluster;
    let mut checks = Vec::new();

    // 1. An Ingress serves HOST in a shared group.
    let serving = ingresses_for_host(&cluster.ingresses, &host);
    let in_group: Vec<&Ingress> = serving
        .iter()
        .copied()
        .filter(|i| is_alb_ingress(i) && in_shared_groups(i, base))
        .collect();
    let describe = |i: &Ingress| format!("{}/{}", namespace(i), name(i));
    let ing =
        match (serving.as_slice(), in_group.as_slice()) {
            ([], _) => {
                checks.push(Check::fail(
                    "ingress",
                    format!("no Ingress in any namespace has a rule for host {host}"),
                    format!(
                        "deploy the project (`kubectl jockey deploy --project PROJECT`); project \
                     hosts are PROJECT.<DEPLOYMENT_DOMAIN> — check the spelling of {host}"
                    ),
                ));
                None
            }
            (_, []) => {
                let i = serving[0];
                let why = if !is_alb_ingress(i) {
                    "its ingressClassName is not alb".to_string()
                } else {
                    format!(
                        "its group.name is {:?}, not {base} or one of its shards",
                        group_of(i).unwrap_or("(none)")
                    )
                };
                checks.push(Check::fail(
                    "ingress",
                    format!(
                        "Ingress {} serves {host} but is not in the shared ALB group: {why}",
                        describe(i)
                    ),
                    format!(
                        "set spec.ingressClassName: alb and the annotation {ANNOTATION_GROUP}, or \
                     re-deploy with `kubectl jockey deploy` so the webhook fills them in"
                    ),
                ));
                None
            }
            (_, [one]) => {
                checks.push(Check::pass(
                    "ingress",
                    format!(
                        "Ingress {} serves {host} in group {}",
                        describe(one),
                        group_of(one).unwrap_or_default()
                    ),
                ));
                Some(*one)
            }
            (_, many) => {
                checks.push(Check::fail(
                "ingress",
                format!(
                    "{} Ingresses claim {host}: {}; the ALB routes it to whichever rule has the \
                     lowest priority",
                    many.len(),
                    many.iter().map(|i| describe(i)).collect::<Vec<_>>().join(", ")
                ),
                "delete the stale ones (`kubectl jockey delete PROJECT`) so exactly one remains",
            ));
                many.first().copied()
            }
        };

    let Some(ing) = ing else {
        for name in ["address", "group-settings", "service", "endpoints"] {
            checks.push(Check::skip(name, "no Ingress to check"));
        }
        aws_checks(&mut checks, &host, None, &[], input.aws);
        dns_check(&mut checks, &host, &[], input.dns);
        probe_check(&mut checks, &host, input.probe);
        return checks;
    };
    let ns = namespace(ing);
    let group = group_of(ing).unwrap_or_default();

    // 2. The controller reconciled it: an ALB address, no current failure.
    let failures = failure_events(&cluster.events);
    let failure = failures
        .iter()
        .find(|f| f.current && f.namespace == ns && f.ingress == name(ing));
    let addrs = addresses(ing);
    match (addrs.first(), failure) {
        (_, Some(f)) => checks.push(Check::fail(
            "address",
            format!(
                "the controller failed on {}: {}: {}",
                describe(ing),
                f.reason,
                f.message
            ),
            super::address::fix_for(&f.message, group),
        )),
        (None, None) => checks.push(Check::fail(
            "address",
            format!("Ingress {} has no ALB address in its status", describe(ing)),
            format!(
                "check that the AWS Load Balancer Controller runs (`kubectl jockey alb-status`) \
                 and read its events: `kubectl describe ingress -n {ns} {}`",
                name(ing)
            ),
        )),
        (Some(a), None) => checks.push(Check::pass("address", format!("ALB address {a}"))),
    }

    // 3. Group-wide settings agree with the rest of the group.
    let others: Vec<&Ingress> = cluster
        .ingresses
        .iter()
        .filter(|o| group_of(o) == Some(group) && !(namespace(o) == ns && name(o) == name(ing)))
        .collect();
    let mut conflicts = Vec::new();
    for key in GROUP_WIDE_ANNOTATIONS {
        let full = format!("{ALB_ANNOTATION_PREFIX}{key}");
        let mine = annotation(ing, &full);
        let mut theirs: BTreeMap<Option<&str>, Vec<String>> = BTreeMap::new();
        for o in &others {
            let v = annotation(o, &full);
            if v != mine {
                theirs.entry(v).or_default().push(describe(o));
            }
        }
        for (v, who) in theirs {
            conflicts.push(format!(
                "{key}: {} here, {} on {}{}",
                mine.map_or("unset".to_string(), |m| format!("{m:?}")),
                v.map_or("unset".to_string(), |m| format!("{m:?}")),
                who[0],
                if who.len() > 1 {
                    format!(" and {} more", who.len() - 1)
                } else {
                    String::new()
                }
            ));
        }
    }
    if conflicts.is_empty() {
        checks.push(Check::pass(
            "group-settings",
            format!(
                "the load-balancer settings agree with the {} other Ingress(es) in group {group}",
                others.len()
            ),
        ));
    } else {
        checks.push(Check::fail(
            "group-settings",
            format!("group {group} disagrees on {}", conflicts.join("; ")),
            "give every Ingress in the group the same load-balancer annotations (re-deploying \
             lets the webhook set jockey's defaults); the controller rejects the whole group \
             while they differ",
        ));
    }

    // 4. The backend Service: exists, ClusterIP, 80 -> 8080.
    let backend = backend_for(ing, &host);
    let service = backend.as_ref().and_then(|(svc, _, _)| {
        cluster.services.iter().find(|s| {
            s.metadata.namespace.as_deref() == Some(ns) && s.metadata.name.as_deref() == Some(svc)
        })
    });
    match (&backend, service) {
        (None, _) => checks.push(Check::fail(
            "service",
            format!(
                "Ingress {} routes {host} to no Service backend",
                describe(ing)
            ),
            "point path / at svc-PROJECT port 80 (re-deploy with `kubectl jockey deploy`)",
        )),
        (Some((svc, _, _)), None) => checks.push(Check::fail(
            "service",
            format!(
                "Service {ns}/{svc}, the backend of {}, does not exist",
                describe(ing)
            ),
            "re-deploy the project (`kubectl jockey deploy`), which applies svc-PROJECT",
        )),
        (Some((svc, number, port_name)), Some(s)) => {
            let spec = s.spec.clone().unwrap_or_default();
            let kind = spec.type_.clone().unwrap_or_else(|| "ClusterIP".into());
            let port = spec.ports.iter().flatten().find(|p| {
                number.is_some_and(|n| p.port == n)
                    || port_name
                        .as_ref()
                        .is_some_and(|n| p.name.as_ref() == Some(n))
            });
            let wanted =
                number.map_or_else(|| port_name.clone().unwrap_or_default(), |n| n.to_string());
            if kind != "ClusterIP" {
                checks.push(Check::fail(
                    "service",
                    format!("Service {ns}/{svc} is {kind}, not ClusterIP"),
                    "jockey's ALB targets pod IPs (target-type ip) through a ClusterIP Service; \
                     set spec.type: ClusterIP",
                ));
            } else if let Some(p) = port {
                match &p.target_port {
                    Some(IntOrString::Int(8080)) => {
                        checks.push(Check::pass(
                            "service",
                            format!(
                                "Service {ns}/{svc} is ClusterIP and maps {} -> 8080",
                                p.port
                            ),
                        ));
                    }
                    Some(IntOrString::String(named)) => {
                        checks.push(Check::pass(
                            "service",
                            format!(
                                "Service {ns}/{svc} is ClusterIP and maps {} -> the named \
                                 container port {named:?}",
                                p.port
                            ),
                        ));
                    }
                    other => {
                        let to = match other {
                            Some(IntOrString::Int(n)) => n.to_string(),
                            _ => format!("{} (targetPort unset)", p.port),
                        };
                        checks.push(Check::fail(
                            "service",
                            format!("Service {ns}/{svc} maps {} -> {to}, not 8080", p.port),
                            "the agent server listens on 8080: set targetPort: 8080",
                        ));
                    }
                }
            } else {
                checks.push(Check::fail(
                    "service",
                    format!(
                        "Service {ns}/{svc} has no port {wanted}, which Ingress {} routes to",
                        describe(ing)
                    ),
                    "give the Service port 80 -> 8080 (re-deploy with `kubectl jockey deploy`)",
                ));
            }
        }
    }

    // 5. Ready endpoints.
    let mut ready_ips = Vec::new();
    match &backend {
        Some((svc, _, _)) if service.is_some() => {
            let ready = ready_endpoints(&cluster.endpoint_slices, ns, svc);
            ready_ips = ready.clone();
            if ready.is_empty() {
                checks.push(Check::fail(
                    "endpoints",
                    format!("Service {ns}/{svc} has no ready endpoints"),
                    "no pod is ready behind it: see `kubectl jockey status PROJECT` (image pull, \
                     crash loop, failing /health) and that the Service selector matches the pods",
                ));
            } else {
                checks.push(Check::pass(
                    "endpoints",
                    format!(
                        "Service {ns}/{svc} has {} ready endpoint(s): {}",
                        ready.len(),
                        ready.join(", ")
                    ),
                ));
            }
        }
        _ => checks.push(Check::skip("endpoints", "no backend Service to check")),
    }

    // 6. AWS: load balancer, listener rule, target health.
    aws_checks(&mut checks, &host, Some(ing), &ready_ips, input.aws);
    // 7. DNS.
    dns_check(&mut checks, &host, &addrs, input.dns);
    // 8. The probe.
    probe_check(&mut checks, &host, input.probe);
    checks
}

/// `endpoints`: the Service's ready endpoint addresses, to compare with the registered targets.
fn aws_checks(
    checks: &mut Vec<Check>,
    host: &str,
    ing: Option<&Ingress>,
    endpoints: &[String],
    aws: &AwsView,
) {
    const NAMES: [&str; 4] = [
        "load-balancer",
        "listener-rule",
        "target-health",
        "targets-are-endpoints",
    ];
    let snap = match aws {
        AwsView::Read(s) => s,
        AwsView::Skipped(why) => {
            for n in NAMES {
                checks.push(Check::skip(n, format!("AWS not consulted: {why}")));
            }
            return;
        }
        AwsView::Failed(why) => {
            checks.push(Check::fail(
                NAMES[0],
                format!("cannot read the ALB: {why}"),
                "fix the AWS access named above, or pass --no-aws to check only the cluster",
            ));
            for n in &NAMES[1..] {
                checks.push(Check::skip(n, "the ELBv2 API could not be read"));
            }
            return;
        }
    };
    let Some(ing) = ing else {
        for n in NAMES {
            checks.push(Check::skip(n, "no Ingress, so no ALB to look at"));
        }
        return;
    };
    let addrs = addresses(ing);
    let group = group_of(ing).unwrap_or_default();
    let lb = addrs
        .iter()
        .find_map(|a| snap.by_dns_name(a))
        .or_else(|| snap.by_group(group));
    let Some(lb) = lb else {
        checks.push(Check::fail(
            "load-balancer",
            format!(
                "no load balancer {} in this AWS account and region",
                addrs.first().map_or_else(
                    || format!("tagged {}={group}", super::elb::TAG_STACK),
                    |a| format!("with DNS name {a}")
                )
            ),
            "check AWS_REGION / the AWS profile point at the cluster's account, and the \
             controller's events (`kubectl jockey alb-status`)",
        ));
        for n in &NAMES[1..] {
            checks.push(Check::skip(n, "no load balancer found"));
        }
        return;
    };
    if lb.state == "active" {
        checks.push(Check::pass(
            "load-balancer",
            format!("{} ({}) is active, {}", lb.name, lb.dns_name, lb.scheme),
        ));
    } else {
        checks.push(Check::fail(
            "load-balancer",
            format!(
                "{} ({}) is {:?}, not active",
                lb.name, lb.dns_name, lb.state
            ),
            "wait for provisioning to finish, or look at the load balancer in the AWS console",
        ));
    }

    let (matched, forwards) = route_host(lb, host);
    if forwards.is_empty() {
        let listeners = lb
            .listeners
            .iter()
            .map(|l| listener_label(&l.protocol, l.port))
            .collect::<Vec<_>>()
            .join(", ");
        let detail = match matched.first() {
            Some((l, r)) => format!(
                "the rule for {host} on {} (priority {}) does not forward: {:?}",
                listener_label(&l.protocol, l.port),
                r.priority,
                r.action
            ),
            None => format!(
                "no listener rule on {} ({}) matches host {host}",
                lb.name,
                if listeners.is_empty() {
                    "no listeners".to_string()
                } else {
                    listeners
                }
            ),
        };
        checks.push(Check::fail(
            "listener-rule",
            detail,
            "the controller has not (yet) written the Ingress's rule: check its events \
             (`kubectl jockey alb-status`) and that the Ingress host is spelled as requested",
        ));
        for n in &NAMES[2..] {
            checks.push(Check::skip(n, "no rule forwards the host"));
        }
        return;
    }
    checks.push(Check::pass(
        "listener-rule",
        forwards
            .iter()
            .map(|(l, r, tgs)| {
                format!(
                    "{} rule priority {} forwards {host} to {}",
                    listener_label(&l.protocol, l.port),
                    r.priority,
                    tgs.iter()
                        .map(|a| snap.target_group(a).map_or(a.as_str(), |t| t.name.as_str()))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
            .collect::<Vec<_>>()
            .join("; "),
    ));

    let (healthy_parts, bad) = target_health(snap, &forwards);
    if bad.is_empty() {
        checks.push(Check::pass("target-health", healthy_parts.join("; ")));
        checks.push(targets_are_endpoints(snap, &forwards, endpoints));
    } else {
        checks.push(Check::fail(
            "target-health",
            bad.join("; "),
            "the ALB health check is GET /health on port 8080 expecting 200: check the pods \
             answer it (`kubectl jockey logs PROJECT`), that the endpoints above are the \
             registered targets, and that the pods' security group admits the ALB",
        ));
        checks.push(Check::skip(
            "targets-are-endpoints",
            "no healthy target to compare",
        ));
    }
}

/// With `target-type: ip` the targets are pod IPs, registered by the controller from the
/// Service's endpoints. Healthy targets that are none of the current endpoints mean the ALB
/// serves pods that are gone or not this project's: the controller stopped syncing.
fn targets_are_endpoints(
    snap: &ElbSnapshot,
    forwards: &[Forward<'_>],
    endpoints: &[String],
) -> Check {
    const NAME: &str = "targets-are-endpoints";
    let tgs: Vec<&TargetGroup> = forwards
        .iter()
        .flat_map(|(_, _, arns)| arns.iter())
        .filter_map(|a| snap.target_group(a))
        .filter(|t| t.target_type == "ip")
        .collect();
    if tgs.is_empty() {
        return Check::skip(
            NAME,
            "no target group of type ip (instance targets are nodes)",
        );
    }
    if endpoints.is_empty() {
        return Check::skip(NAME, "no ready endpoints to compare with");
    }
    let healthy: Vec<&str> = tgs
        .iter()
        .flat_map(|t| t.targets.iter())
        .filter(|t| t.state == "healthy")
        .map(|t| t.id.as_str())
        .collect();
    let matching = healthy
        .iter()
        .filter(|id| endpoints.iter().any(|e| e == *id))
        .count();
    if matching > 0 {
        Check::pass(
            NAME,
            format!(
                "{matching} of {} healthy target(s) are ready endpoints of the Service",
                healthy.len()
            ),
        )
    } else {
        Check::fail(
            NAME,
            format!(
                "the healthy targets ({}) are none of the Service's ready endpoints ({})",
                healthy.join(", "),
                endpoints.join(", ")
            ),
            "the AWS Load Balancer Controller has not synced the target group: check its \
             pods and logs (`kubectl jockey alb-status`) and the Ingress's TargetGroupBinding",
        )
    }
}

type Forward<'a> = (
    &'a super::elb::Listener,
    &'a super::elb::Rule,
    &'a Vec<String>,
);

/// The first rule by priority matching `host` on each listener (`matched`), and those of them
/// that forward (`forwards`). HTTP listeners that only redirect (ssl-redirect) have none.
fn route_host<'a>(
    lb: &'a LoadBalancer,
    host: &str,
) -> (
    Vec<(&'a super::elb::Listener, &'a super::elb::Rule)>,
    Vec<Forward<'a>>,
) {
    let mut matched = Vec::new();
    for l in &lb.listeners {
        let mut rules: Vec<_> = l
            .rules
            .iter()
            .filter(|r| !r.is_default && r.hosts.iter().any(|h| alb_host_matches(h, host)))
            .collect();
        rules.sort_by_key(|r| r.priority.parse::<u32>().unwrap_or(u32::MAX));
        if let Some(r) = rules.first() {
            matched.push((l, *r));
        }
    }
    let forwards = matched
        .iter()
        .filter_map(|(l, r)| match &r.action {
            Action::Forward { target_groups } => Some((*l, *r, target_groups)),
            _ => None,
        })
        .collect();
    (matched, forwards)
}

/// Per forwarded target group: "name: h/n healthy" when some target is healthy, else what is
/// wrong (no such group, no targets, or each target's state and reason).
fn target_health(snap: &ElbSnapshot, forwards: &[Forward<'_>]) -> (Vec<String>, Vec<String>) {
    let mut tg_arns: Vec<&String> = forwards.iter().flat_map(|(_, _, t)| t.iter()).collect();
    tg_arns.sort();
    tg_arns.dedup();
    let mut healthy_parts = Vec::new();
    let mut bad = Vec::new();
    for arn in tg_arns {
        let Some(tg) = snap.target_group(arn) else {
            bad.push(format!("target group {arn} does not exist"));
            continue;
        };
        let healthy = tg.healthy();
        if healthy > 0 {
            healthy_parts.push(format!(
                "{}: {healthy}/{} healthy",
                tg.name,
                tg.targets.len()
            ));
            continue;
        }
        let states = if tg.targets.is_empty() {
            "no targets registered".to_string()
        } else {
            tg.targets
                .iter()
                .map(|t| {
                    let why = match (&t.reason, &t.description) {
                        (Some(r), Some(d)) => format!(" ({r}: {d})"),
                        (Some(r), None) => format!(" ({r})"),
                        _ => String::new(),
                    };
                    format!("{}:{} {}{why}", t.id, t.port, t.state)
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        bad.push(format!(
            "target group {} has no healthy target: {states}",
            tg.name
        ));
    }
    (healthy_parts, bad)
}

fn dns_check(checks: &mut Vec<Check>, host: &str, addrs: &[String], dns: &DnsView) {
    let (answer, albs) = match dns {
        DnsView::Skipped(why) => {
            checks.push(Check::skip("dns", why.clone()));
            return;
        }
        DnsView::Answers { host, albs } => (host, albs),
    };
    if addrs.is_empty() {
        checks.push(Check::skip("dns", "no ALB address to compare with"));
        return;
    }
    let norm = |s: &str| s.trim_end_matches('.').to_ascii_lowercase();
    if let Some(err) = &answer.error
        && answer.ips.is_empty()
        && answer.cnames.is_empty()
    {
        checks.push(Check::fail(
            "dns",
            format!("{host} does not resolve: {err}"),
            format!(
                "create a CNAME (or Route 53 alias) {host} -> {} — `kubectl jockey alb-status` \
                 lists the records each shard needs",
                addrs[0]
            ),
        ));
        return;
    }
    let via_cname = answer
        .cnames
        .iter()
        .find(|c| addrs.iter().any(|a| norm(a) == norm(c)));
    if let Some(c) = via_cname {
        checks.push(Check::pass(
            "dns",
            format!("{host} is a CNAME for the ALB {c}"),
        ));
        return;
    }
    let alb_ips: BTreeSet<IpAddr> = addrs
        .iter()
        .filter_map(|a| albs.get(a))
        .flat_map(|a| a.ips.iter().copied())
        .collect();
    let shared: Vec<IpAddr> = answer
        .ips
        .iter()
        .copied()
        .filter(|ip| alb_ips.contains(ip))
        .collect();
    if !shared.is_empty() {
        checks.push(Check::pass(
            "dns",
            format!(
                "{host} resolves to {} — addresses of the ALB {} (an alias record)",
                shared
                    .iter()
                    .map(|i| i.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                addrs[0]
            ),
        ));
        return;
    }
    let got = answer
        .cnames
        .iter()
        .cloned()
        .chain(answer.ips.iter().map(|i| i.to_string()))
        .collect::<Vec<_>>()
        .join(", ");
    checks.push(Check::fail(
        "dns",
        format!(
            "{host} resolves to {got}, which is not the ALB {}{}",
            addrs[0],
            if alb_ips.is_empty() {
                " (whose own name did not resolve)".to_string()
            } else {
                String::new()
            }
        ),
        format!(
            "point {host} at {} (CNAME or alias); if the project moved to another shard its \
             record must follow — see `kubectl jockey alb-status`",
            addrs[0]
        ),
    ));
}

fn probe_check(checks: &mut Vec<Check>, host: &str, probe: &ProbeResult) {
    match probe {
        ProbeResult::NotRequested => {}
        ProbeResult::Status(200) => checks.push(Check::pass(
            "probe",
            format!("GET https://{host}/health answered 200"),
        )),
        ProbeResult::Status(code) => checks.push(Check::fail(
            "probe",
            format!("GET https://{host}/health answered {code}"),
            "502/503/504 mean no healthy target; 404 means the ALB matched no rule; \
             see the checks above and `kubectl jockey logs PROJECT`",
        )),
        ProbeResult::Error(e) => checks.push(Check::fail(
            "probe",
            format!("GET https://{host}/health failed: {e}"),
            "check DNS and the HTTPS listener's certificate covers the host",
        )),
    }
}

pub fn any_failed(checks: &[Check]) -> bool {
    checks.iter().any(|c| c.outcome == Outcome::Fail)
}

#[cfg(test)]
#[path = "report_tests.rs"]
mod tests;
