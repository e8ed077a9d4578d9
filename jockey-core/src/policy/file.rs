//! The policy file: the cluster admin's choices (extra hosts, allowed groups, sharding, group-wide
//! ALB settings), parsed and checked once at start.

use crate::alb_annotations as alb;
use crate::contract::ALB_PREFIX;
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
/// sharding: { enabled: true, capacity: 90 }
/// maxRulesPerProject: 1       # listener rules one project may add (+1 per extraHosts entry)
/// ruleQuota: 100              # the ALB's quotas: rules, target groups and certificates per
/// targetGroupQuota: 100       # load balancer (raise them here after raising them in AWS)
/// certificateQuota: 25
/// grants:                     # ALB annotations a project may set beyond the tenant's own
///   my-project:               # (crate::allowlist: keys without the prefix, families as x.*)
///     annotations: [target-group-attributes, "conditions.*"]
/// groupSettings:              # group-wide ALB annotations, without the prefix; these three are
///   scheme: internet-facing   # the defaults, merged under what the admin writes ("" removes one)
///   ssl-redirect: "443"
///   listen-ports: '[{"HTTP": 80}, {"HTTPS": 443}]'
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Policy {
    pub extra_hosts: BTreeMap<String, Vec<String>>,
    /// Moved to the configuration (`ALB_ALLOWED_GROUPS`), which the API server's admission
    /// policy reads too; a non-empty list here is refused with that fix.
    #[serde(skip_serializing)]
    pub allowed_groups: Vec<String>,
    pub sharding: Sharding,
    /// The values of the group-wide ALB settings (every key whose reach is a whole group: see
    /// [`crate::alb_annotations::Reach::Group`]). The webhook fills them in; a tenant may leave
    /// one out (the controller takes the value from the Ingresses that set it) but may not set a
    /// different value, nor set a group-wide key the admin did not list.
    pub group_settings: BTreeMap<String, String>,
    /// Listener rules (host x path) one project may add to the shared ALB, over all its
    /// Ingresses; each extraHosts entry of the project allows one more. Together with the shard
    /// capacity this keeps a group under the ALB's rule quota.
    pub max_rules_per_project: usize,
    /// The ALB quota "rules per Application Load Balancer" (100 unless raised in Service Quotas).
    pub rule_quota: usize,
    /// The ALB quota "target groups per Application Load Balancer".
    pub target_group_quota: usize,
    /// The ALB quota "certificates per Application Load Balancer" (default certificate aside).
    pub certificate_quota: usize,
    /// What the cluster admin grants a project beyond what any tenant may set.
    pub grants: BTreeMap<String, Grant>,
}

/// The cluster admin's grant to one project.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Grant {
    /// ALB annotation keys without the prefix (`target-group-attributes`, `conditions.*`): each a
    /// key [`crate::allowlist`] lists as granted per project.
    pub annotations: Vec<String>,
}

/// jockey's group-wide defaults (spec "Ingress defaults"), under the admin's groupSettings.
pub fn default_group_settings() -> BTreeMap<String, String> {
    crate::contract::DEFAULT_GROUP_SETTINGS
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub const DEFAULT_MAX_RULES_PER_PROJECT: usize = 1;
pub const DEFAULT_RULE_QUOTA: usize = crate::aws_limits::RULES_PER_ALB;

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
            group_settings: default_group_settings(),
            max_rules_per_project: DEFAULT_MAX_RULES_PER_PROJECT,
            rule_quota: DEFAULT_RULE_QUOTA,
            target_group_quota: crate::aws_limits::TARGET_GROUPS_PER_ALB,
            certificate_quota: crate::aws_limits::CERTIFICATES_PER_ALB,
            grants: BTreeMap::new(),
        }
    }
}

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
        let mut policy: Policy = if text.trim().is_empty() {
            Policy::default()
        } else {
            serde_yaml::from_str(text).map_err(|e| {
                err(
                    e.to_string(),
                    "write the fields extraHosts, sharding {enabled, capacity}, maxRulesPerProject, ruleQuota, targetGroupQuota, certificateQuota, groupSettings and grants (see manifests/README.md)",
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
        if !policy.allowed_groups.is_empty() {
            return Err(err(
                format!(
                    "allowedGroups {:?} is no longer read here",
                    policy.allowed_groups
                ),
                "set ALB_ALLOWED_GROUPS (comma-separated; --alb-allowed-groups) in the webhook's configuration instead (manifests/base/config.env), which the API server's admission policy reads too, and remove allowedGroups",
            ));
        }
        overlapping_extra_hosts(&policy.extra_hosts).map_err(|(cause, fix)| err(cause, fix))?;
        for (project, grant) in &policy.grants {
            ProjectId::parse(project)
                .map_err(|e| err(format!("grants: {e}"), "key grants by project id"))?;
            for key in &grant.annotations {
                check_grant(key).map_err(|cause| {
                    err(
                        format!("grants.{project}.annotations: {cause}"),
                        "grant only the keys jockey lists as granted per project (README, \"What a tenant may set\"), without the alb.ingress.kubernetes.io/ prefix",
                    )
                })?;
            }
        }
        if policy.sharding.enabled && policy.sharding.capacity == 0 {
            return Err(err(
                "sharding.capacity is 0".into(),
                "set sharding.capacity to the number of projects one ALB may hold (default 90)",
            ));
        }
        for (key, value) in default_group_settings() {
            policy.group_settings.entry(key).or_insert(value);
        }
        // An empty value takes a default out: nobody sets that key.
        policy.group_settings.retain(|_, v| !v.is_empty());
        for (key, value) in &policy.group_settings {
            if key.starts_with(ALB_PREFIX) {
                return Err(err(
                    format!("groupSettings key {key:?} carries the annotation prefix"),
                    "write keys without alb.ingress.kubernetes.io/, e.g. scheme",
                ));
            }
            let full = format!("{}{key}", alb::PREFIX);
            match alb::classify(alb::Object::Ingress, &full) {
                Some(Ok(known)) if matches!(known.reach, alb::Reach::Group { .. }) => {
                    known.parse(value).map_err(|e| {
                        err(
                            format!("groupSettings.{key}: {e}"),
                            "give the value the AWS Load Balancer Controller expects",
                        )
                    })?;
                }
                Some(Ok(known)) => {
                    return Err(err(
                        format!(
                            "groupSettings.{key} is not a group-wide setting (it acts on {})",
                            reach_words(known.reach)
                        ),
                        "list only group-wide ALB settings (scheme, listen-ports, ssl-policy, ...); per-project values are the tenants' own",
                    ));
                }
                _ => {
                    return Err(err(
                        format!(
                            "groupSettings.{key}: the AWS Load Balancer Controller has no such Ingress annotation"
                        ),
                        "check the spelling against the controller's annotation list",
                    ));
                }
            }
        }
        if policy.max_rules_per_project == 0 {
            return Err(err(
                "maxRulesPerProject is 0, so no project could serve its host".into(),
                "set maxRulesPerProject to 1 or more",
            ));
        }
        if policy.sharding.enabled
            && policy
                .sharding
                .capacity
                .saturating_mul(policy.max_rules_per_project)
                > policy.rule_quota
        {
            return Err(err(
                format!(
                    "sharding.capacity {} x maxRulesPerProject {} is more than ruleQuota {}: a full group would pass the ALB's rule quota and the controller would fail the whole group",
                    policy.sharding.capacity, policy.max_rules_per_project, policy.rule_quota
                ),
                "lower sharding.capacity or maxRulesPerProject, or raise ruleQuota after raising the quota in AWS Service Quotas",
            ));
        }
        Ok(policy)
    }

    /// Whether `group` may be used: the shared group, its shards (when sharding), or listed.
    pub fn group_allowed(&self, cfg: &Config, group: &str) -> bool {
        group == cfg.alb_shared_group_name
            || (self.sharding.enabled && sharding::is_shard_of(&cfg.alb_shared_group_name, group))
            || cfg.alb_allowed_groups.iter().any(|g| g == group)
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

    /// The group-wide settings in force: the policy's, plus the configured certificate.
    pub fn effective_group_settings(&self, cfg: &Config) -> BTreeMap<String, String> {
        let mut settings = self.group_settings.clone();
        if let Some(arn) = cfg.certificate_arn.as_deref().filter(|a| !a.is_empty()) {
            settings
                .entry("certificate-arn".to_string())
                .or_insert_with(|| arn.to_string());
        }
        settings
    }

    /// How many listener rules `project` may have in all.
    pub fn rule_allowance(&self, project: &str) -> usize {
        self.max_rules_per_project + self.extra_hosts.get(project).map_or(0, Vec::len)
    }

    /// The annotation keys granted to `project`.
    pub fn grants_of(&self, project: &str) -> &[String] {
        self.grants
            .get(project)
            .map_or(&[][..], |g| g.annotations.as_slice())
    }

    /// The checks that need the configuration: an extra host inside the deployment domain could
    /// be another project's own host (every `PROJECT.<DEPLOYMENT_DOMAIN>` is its project's).
    pub fn check_with(&self, cfg: &Config) -> Result<(), String> {
        let domain = &cfg.deployment_domain;
        for (project, hosts) in &self.extra_hosts {
            for h in hosts {
                let name = h.strip_prefix("*.").unwrap_or(h);
                if name == domain || name.ends_with(&format!(".{domain}")) {
                    return Err(format!(
                        "extraHosts.{project}: {h:?} is inside the deployment domain {domain}, where every PROJECT.{domain} is its own project's; give the project hosts of its own domain (its own host {project}.{domain} needs no entry)"
                    ));
                }
            }
        }
        Ok(())
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

/// "the whole group", "this Ingress's own rules", ... for messages.
pub(crate) fn reach_words(reach: alb::Reach) -> &'static str {
    match reach {
        alb::Reach::Group { merge: false } => {
            "the whole ALB group, one value for every Ingress of it"
        }
        alb::Reach::Group { merge: true } => "the whole ALB group, merged from every Ingress of it",
        alb::Reach::Membership => "which group the Ingress joins and where its rules go in it",
        alb::Reach::Routing => "which requests this Ingress's rules match and where they go",
        alb::Reach::Own => "this Ingress's own rules and target groups",
    }
}

/// A key may be granted only when the allowlist lists it as granted per project.
fn check_grant(key: &str) -> Result<(), String> {
    if key.starts_with(ALB_PREFIX) {
        return Err(format!("{key:?} carries the annotation prefix"));
    }
    let probe = key
        .strip_suffix('*')
        .map_or(key.to_string(), |f| format!("{f}x"));
    match crate::allowlist::who(alb::Object::Ingress, &probe) {
        crate::allowlist::Who::Grant => Ok(()),
        who => Err(format!(
            "{key:?} is not a key granted per project (it is decided by {})",
            who.words()
        )),
    }
}

/// Two projects' extra hosts may never match one host: both would be admitted for it, and the
/// first to claim it would hold it against the other for good.
fn overlapping_extra_hosts(
    extra: &BTreeMap<String, Vec<String>>,
) -> Result<(), (String, &'static str)> {
    let all: Vec<(&str, &str)> = extra
        .iter()
        .flat_map(|(p, hosts)| hosts.iter().map(move |h| (p.as_str(), h.as_str())))
        .collect();
    for (i, (pa, a)) in all.iter().enumerate() {
        for (pb, b) in &all[i + 1..] {
            if pa != pb && patterns_overlap(a, b) {
                return Err((
                    format!(
                        "extraHosts: {a:?} of project {pa} and {b:?} of project {pb} match the same hosts"
                    ),
                    "give each host (or one-label wildcard) to one project",
                ));
            }
        }
    }
    Ok(())
}

/// Whether two host patterns (names or one-label `*.` wildcards) can match one host: equal, or a
/// wildcard covering the other name (two different wildcards cover one label each of different
/// suffixes, so never the same host).
pub(crate) fn patterns_overlap(a: &str, b: &str) -> bool {
    host_matches(a, b) || host_matches(b, a)
}
