//! What the ALB commands read, and the accessors every part of them shares: the controller's
//! annotations and quotas, the cluster and AWS inputs, an Ingress's group, hosts and address.
//! The floor of `alb/`: it imports none of its siblings.

use super::elb::ElbSnapshot;
use jockey_core::names::LABEL_PROJECT;
use k8s_openapi::api::core::v1::{Event, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::Ingress;

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

pub fn annotation<'a>(ing: &'a Ingress, key: &str) -> Option<&'a str> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alb::test_support::{BASE, HOST};

    #[test]
    fn shard_names() {
        assert_eq!(shard_index(BASE, BASE), Some(1));
        assert_eq!(shard_index("alb-deployments-2", BASE), Some(2));
        assert_eq!(shard_index("alb-deployments-17", BASE), Some(17));
        for other in [
            "alb-deployments-1",
            "alb-deployments-0",
            "alb-deployments-02",
            "alb-deployments-x",
            "alb-deployments2",
            "alb-deployments-",
            "other",
            "alb-deployments-2-3",
        ] {
            assert_eq!(shard_index(other, BASE), None, "{other}");
        }
    }

    #[test]
    fn host_matching() {
        assert!(ingress_host_matches("P1.deploy.agentops.ai", HOST));
        assert!(ingress_host_matches("*.deploy.agentops.ai", HOST));
        assert!(!ingress_host_matches("*.agentops.ai", HOST));
        assert!(!ingress_host_matches("p2.deploy.agentops.ai", HOST));
        assert!(alb_host_matches(
            "p1.deploy.agentops.ai",
            "P1.DEPLOY.agentops.ai."
        ));
        assert!(alb_host_matches("*.deploy.agentops.ai", HOST));
        assert!(alb_host_matches("p?.deploy.agentops.ai", HOST));
        assert!(!alb_host_matches(
            "p?.deploy.agentops.ai",
            "p10.deploy.agentops.ai"
        ));
        assert!(!alb_host_matches("p2.deploy.agentops.ai", HOST));
    }
}
