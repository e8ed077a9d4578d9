//! The policy file: the cluster admin's choices (extra hosts, allowed groups, sharding, group-wide
//! ALB settings), parsed and checked once at start.

use crate::defaults::ALB_PREFIX;
use crate::names::{LABEL_DEPLOYMENT, LABEL_HOSTNAME};
use crate::policy::IngressIndex;
use crate::sharding;
use crate::{Config, ProjectId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The policy file (YAML or JSON), mounted from a ConfigMap. Every field is optional:
///
/// ```yaml
/// extraHosts:                 # hosts a project may serve besides PROJECT.<DEPLOYMENT_DOMAIN>
///   my-project: ["www.example.com", "*.customer.example.com"]
/// allowedGroups: [alb-internal]   # ALB groups besides the shared group and its shards
/// sharding: { enabled: true, capacity: 90 }
/// groupSettings:              # group-wide ("exclusive") ALB annotations, without the prefix
///   scheme: internet-facing
///   ssl-redirect: "443"
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Policy {
    pub extra_hosts: BTreeMap<String, Vec<String>>,
    pub allowed_groups: Vec<String>,
    pub sharding: Sharding,
    /// Expected values of the group-wide ALB settings. A tenant may leave one out (the AWS Load
    /// Balancer Controller merges "exclusive" settings when only some Ingresses set them) but
    /// may not set a different value, nor set one the admin did not list.
    pub group_settings: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Sharding {
    pub enabled: bool,
    pub capacity: usize,
}

impl Default for Sharding {
    fn default() -> Self {
        Self {
            enabled: true,
            capacity: sharding::DEFAULT_CAPACITY,
        }
    }
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            extra_hosts: BTreeMap::new(),
            allowed_groups: Vec::new(),
            sharding: Sharding::default(),
            group_settings: BTreeMap::from([
                ("scheme".to_string(), "internet-facing".to_string()),
                ("ssl-redirect".to_string(), "443".to_string()),
            ]),
        }
    }
}

/// The AWS Load Balancer Controller's "exclusive" Ingress annotations: one value per ALB group.
/// One Ingress that disagrees stops the controller reconciling the whole shared ALB.
pub const EXCLUSIVE_SETTINGS: [&str; 17] = [
    "scheme",
    "ssl-redirect",
    "ip-address-type",
    "load-balancer-name",
    "subnets",
    "security-groups",
    "manage-backend-security-group-rules",
    "customer-owned-ipv4-pool",
    "load-balancer-attributes",
    "wafv2-acl-arn",
    "waf-acl-id",
    "shield-advanced-protection",
    "inbound-cidrs",
    "security-group-prefix-lists",
    "ssl-policy",
    "mutual-authentication",
    "ipam-ipv4-pool-id",
];

/// Tag keys that are per project by design (the spec's `deployment`/`hostname`), so differing
/// values across a group are expected rather than a conflict.
pub const PER_PROJECT_TAG_KEYS: [&str; 2] = [LABEL_DEPLOYMENT, LABEL_HOSTNAME];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("policy file {source_name}: {cause}; fix: {fix}")]
pub struct PolicyError {
    pub source_name: String,
    pub cause: String,
    pub fix: String,
}

impl Policy {
    /// Parses a policy file (YAML, of which JSON is a subset) and checks it.
    pub fn parse(source_name: &str, text: &str) -> Result<Self, PolicyError> {
        let err = |cause: String, fix: &str| PolicyError {
            source_name: source_name.to_string(),
            cause,
            fix: fix.to_string(),
        };
        let policy: Policy = if text.trim().is_empty() {
            Policy::default()
        } else {
            serde_yaml::from_str(text).map_err(|e| {
                err(
                    e.to_string(),
                    "write the fields extraHosts, allowedGroups, sharding {enabled, capacity} and groupSettings (see manifests/README.md)",
                )
            })?
        };
        for (project, hosts) in &policy.extra_hosts {
            ProjectId::parse(project)
                .map_err(|e| err(format!("extraHosts: {e}"), "key extraHosts by project id"))?;
            for h in hosts {
                if !is_host_pattern(h) {
                    return Err(err(
                        format!("extraHosts.{project}: {h:?} is not a DNS name or *.wildcard"),
                        "list lowercase DNS names, optionally starting with '*.'",
                    ));
                }
            }
        }
        if policy.sharding.enabled && policy.sharding.capacity == 0 {
            return Err(err(
                "sharding.capacity is 0".into(),
                "set sharding.capacity to the number of projects one ALB may hold (default 90)",
            ));
        }
        for key in policy.group_settings.keys() {
            if key.starts_with(ALB_PREFIX) {
                return Err(err(
                    format!("groupSettings key {key:?} carries the annotation prefix"),
                    "write keys without alb.ingress.kubernetes.io/, e.g. scheme",
                ));
            }
        }
        Ok(policy)
    }

    /// Whether `group` may be used: the shared group, its shards (when sharding), or listed.
    pub fn group_allowed(&self, cfg: &Config, group: &str) -> bool {
        group == cfg.alb_shared_group_name
            || (self.sharding.enabled && sharding::is_shard_of(&cfg.alb_shared_group_name, group))
            || self.allowed_groups.iter().any(|g| g == group)
    }

    /// The group a project's new Ingress goes to.
    pub fn place(&self, cfg: &Config, index: &IngressIndex, project: &str) -> String {
        let shared = &cfg.alb_shared_group_name;
        if !self.sharding.enabled {
            return shared.clone();
        }
        let existing = index.group_of_project(project);
        sharding::place(shared, self.sharding.capacity, existing.as_deref(), |g| {
            index.projects_in_group(g)
        })
    }

    pub(crate) fn extra_host_allowed(&self, project: &str, host: &str) -> bool {
        self.extra_hosts
            .get(project)
            .is_some_and(|hosts| hosts.iter().any(|p| host_matches(p, host)))
    }
}

pub(crate) fn is_host_pattern(h: &str) -> bool {
    let name = h.strip_prefix("*.").unwrap_or(h);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// `pattern` is a host or `*.suffix` (one label, as in Ingress host wildcards). A wildcard host
/// in an Ingress only matches a wildcard pattern written the same way.
pub(crate) fn host_matches(pattern: &str, host: &str) -> bool {
    if pattern == host {
        return true;
    }
    match pattern.strip_prefix("*.") {
        Some(suffix) => host
            .strip_suffix(suffix)
            .and_then(|head| head.strip_suffix('.'))
            .is_some_and(|label| !label.is_empty() && !label.contains('.') && label != "*"),
        None => false,
    }
}
