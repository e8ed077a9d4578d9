//! The cluster admin's ingress policy: which hosts and ALB groups a project may use, and the
//! rules that keep one tenant from breaking routing for another on the shared ALB.
//!
//! Pure: the webhook feeds [`IngressIndex`] from a watch of labelled Ingresses (so a request
//! never LISTs) and passes the namespace's labels in; everything else is the object itself.

use crate::defaults::{
    self, ALB_GROUP_NAME, ALB_PREFIX, ALB_TAGS, ANNOTATION_LEGACY_INGRESS_CLASS, HEALTH_PATH,
    INGRESS_CLASS, describe, parse_tags,
};
use crate::names::{LABEL_APP, LABEL_DEPLOYMENT, LABEL_HOSTNAME, LABEL_PROJECT};
use crate::sharding;
use crate::{Config, ProjectId};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};

// ---------------------------------------------------------------------------------------------
// The policy file.
// ---------------------------------------------------------------------------------------------

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

    fn extra_host_allowed(&self, project: &str, host: &str) -> bool {
        self.extra_hosts
            .get(project)
            .is_some_and(|hosts| hosts.iter().any(|p| host_matches(p, host)))
    }
}

fn is_host_pattern(h: &str) -> bool {
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
fn host_matches(pattern: &str, host: &str) -> bool {
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

// ---------------------------------------------------------------------------------------------
// The index of jockey Ingresses.
// ---------------------------------------------------------------------------------------------

type Key = (String, String);

/// What validation needs of one labelled Ingress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngressRecord {
    pub namespace: String,
    pub name: String,
    pub project: Option<String>,
    pub hosts: BTreeSet<String>,
    pub group: Option<String>,
    pub tags: Vec<(String, String)>,
}

impl IngressRecord {
    pub fn from_ingress(ing: &Ingress) -> Self {
        let meta = &ing.metadata;
        let annotations = meta.annotations.clone().unwrap_or_default();
        Self {
            namespace: meta.namespace.clone().unwrap_or_default(),
            name: meta.name.clone().unwrap_or_default(),
            project: meta
                .labels
                .as_ref()
                .and_then(|l| l.get(LABEL_PROJECT))
                .cloned(),
            hosts: ingress_hosts(ing).into_iter().map(|(_, h)| h).collect(),
            group: annotations.get(ALB_GROUP_NAME).cloned(),
            tags: annotations
                .get(ALB_TAGS)
                .map(|t| parse_tags(t))
                .unwrap_or_default(),
        }
    }

    fn key(&self) -> Key {
        (self.namespace.clone(), self.name.clone())
    }

    pub fn describe(&self) -> String {
        let owner = self
            .project
            .as_deref()
            .map(|p| format!(" of project {p}"))
            .unwrap_or_default();
        format!("Ingress {}/{}{owner}", self.namespace, self.name)
    }
}

/// Every host an Ingress serves, with the field it is in.
pub fn ingress_hosts(ing: &Ingress) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let Some(spec) = &ing.spec else {
        return out;
    };
    for (i, rule) in spec.rules.iter().flatten().enumerate() {
        if let Some(h) = rule.host.as_deref().filter(|h| !h.is_empty()) {
            out.push((format!("spec.rules[{i}].host"), h.to_ascii_lowercase()));
        }
    }
    for (i, tls) in spec.tls.iter().flatten().enumerate() {
        for (j, h) in tls.hosts.iter().flatten().enumerate() {
            out.push((format!("spec.tls[{i}].hosts[{j}]"), h.to_ascii_lowercase()));
        }
    }
    out
}

/// Incrementally maintained lookups over the labelled Ingresses of the cluster: host -> owners,
/// project -> its Ingresses, group -> its projects. Updated per watch event; queried per request
/// in O(answer) time.
#[derive(Debug, Default, Clone)]
pub struct IngressIndex {
    records: HashMap<Key, IngressRecord>,
    by_host: HashMap<String, BTreeSet<Key>>,
    by_project: HashMap<String, BTreeSet<Key>>,
    by_group: HashMap<String, BTreeSet<Key>>,
    /// group -> project -> number of that project's Ingresses in the group.
    group_projects: HashMap<String, HashMap<String, usize>>,
}

impl IngressIndex {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn from_ingresses<'a>(ingresses: impl IntoIterator<Item = &'a Ingress>) -> Self {
        let mut index = Self::new();
        for ing in ingresses {
            index.upsert(IngressRecord::from_ingress(ing));
        }
        index
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    pub fn upsert(&mut self, record: IngressRecord) {
        let key = record.key();
        self.remove(&key.0, &key.1);
        for h in &record.hosts {
            self.by_host
                .entry(h.clone())
                .or_default()
                .insert(key.clone());
        }
        if let Some(p) = &record.project {
            self.by_project
                .entry(p.clone())
                .or_default()
                .insert(key.clone());
        }
        if let Some(g) = &record.group {
            self.by_group
                .entry(g.clone())
                .or_default()
                .insert(key.clone());
            if let Some(p) = &record.project {
                *self
                    .group_projects
                    .entry(g.clone())
                    .or_default()
                    .entry(p.clone())
                    .or_default() += 1;
            }
        }
        self.records.insert(key, record);
    }

    pub fn remove(&mut self, namespace: &str, name: &str) {
        let key = (namespace.to_string(), name.to_string());
        let Some(old) = self.records.remove(&key) else {
            return;
        };
        fn drop_key(map: &mut HashMap<String, BTreeSet<Key>>, k: &str, key: &Key) {
            if let Some(set) = map.get_mut(k) {
                set.remove(key);
                if set.is_empty() {
                    map.remove(k);
                }
            }
        }
        for h in &old.hosts {
            drop_key(&mut self.by_host, h, &key);
        }
        if let Some(p) = &old.project {
            drop_key(&mut self.by_project, p, &key);
        }
        if let Some(g) = &old.group {
            drop_key(&mut self.by_group, g, &key);
            if let Some(p) = &old.project
                && let Some(projects) = self.group_projects.get_mut(g)
            {
                if let Some(n) = projects.get_mut(p) {
                    *n -= 1;
                    if *n == 0 {
                        projects.remove(p);
                    }
                }
                if projects.is_empty() {
                    self.group_projects.remove(g);
                }
            }
        }
    }

    pub fn get(&self, namespace: &str, name: &str) -> Option<&IngressRecord> {
        self.records.get(&(namespace.to_string(), name.to_string()))
    }

    /// The Ingresses serving `host`.
    pub fn owners_of<'a>(&'a self, host: &str) -> impl Iterator<Item = &'a IngressRecord> + 'a {
        self.by_host
            .get(host)
            .into_iter()
            .flatten()
            .filter_map(|k| self.records.get(k))
    }

    /// The Ingresses labelled with `project`.
    pub fn of_project<'a>(&'a self, project: &str) -> impl Iterator<Item = &'a IngressRecord> + 'a {
        self.by_project
            .get(project)
            .into_iter()
            .flatten()
            .filter_map(|k| self.records.get(k))
    }

    pub fn in_group<'a>(&'a self, group: &str) -> impl Iterator<Item = &'a IngressRecord> + 'a {
        self.by_group
            .get(group)
            .into_iter()
            .flatten()
            .filter_map(|k| self.records.get(k))
    }

    /// The ALB group the project already uses (the lowest-named, should it use several).
    pub fn group_of_project(&self, project: &str) -> Option<String> {
        self.of_project(project)
            .filter_map(|r| r.group.clone())
            .min()
    }

    pub fn projects_in_group(&self, group: &str) -> usize {
        self.group_projects.get(group).map_or(0, |p| p.len())
    }
}

// ---------------------------------------------------------------------------------------------
// Validation.
// ---------------------------------------------------------------------------------------------

/// The outcome of validating one object.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Verdict {
    pub denials: Vec<Denial>,
    pub warnings: Vec<String>,
}

/// One broken rule: the field, what is wrong, the rule and the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    pub field: String,
    pub problem: String,
    pub rule: String,
    pub fix: String,
}

impl Verdict {
    pub fn allowed(&self) -> bool {
        self.denials.is_empty()
    }

    /// The message returned to the user: every denial, each naming field, rule and fix.
    pub fn message(&self, object: &str) -> Option<String> {
        if self.denials.is_empty() {
            return None;
        }
        let lines: Vec<String> = self
            .denials
            .iter()
            .map(|d| {
                format!(
                    "{}: {} (rule: {}); fix: {}",
                    d.field, d.problem, d.rule, d.fix
                )
            })
            .collect();
        Some(format!(
            "{object} denied by jockey policy: {}",
            lines.join("; and ")
        ))
    }

    fn deny(&mut self, field: impl Into<String>, problem: String, rule: &str, fix: String) {
        self.denials.push(Denial {
            field: field.into(),
            problem,
            rule: rule.to_string(),
            fix,
        });
    }

    fn warn(&mut self, w: String) {
        self.warnings.push(w);
    }
}

/// Everything about the request besides the object.
pub struct Context<'a> {
    pub cfg: &'a Config,
    pub policy: &'a Policy,
    pub index: &'a IngressIndex,
    /// The request's namespace.
    pub namespace: &'a str,
    /// The value of the namespace's `jockey.agentops.ai/project` label, if it has one.
    pub namespace_project: Option<&'a str>,
}

fn project_label(meta: &ObjectMeta) -> Option<&str> {
    meta.labels
        .as_ref()
        .and_then(|l| l.get(LABEL_PROJECT))
        .map(String::as_str)
}

/// Rules every kind shares: a valid, unchanged project label, claimed from the right namespace.
/// Returns the project when the object is labelled with a valid one.
fn common_rules(
    ctx: &Context,
    v: &mut Verdict,
    meta: &ObjectMeta,
    old: Option<&ObjectMeta>,
) -> Option<String> {
    let new_project = project_label(meta);
    let old_project = old.and_then(project_label);
    let field = format!("metadata.labels[{LABEL_PROJECT}]");
    if let Some(old_p) = old_project
        && new_project != Some(old_p)
    {
        v.deny(
            &field,
            match new_project {
                Some(p) => format!("changes the project from {old_p:?} to {p:?}"),
                None => format!("removes the project label (was {old_p:?})"),
            },
            "an object's project never changes",
            format!(
                "keep {LABEL_PROJECT}: {old_p}; to move the workload, delete this object and create one for the new project"
            ),
        );
    }
    let project = new_project?;
    if let Err(e) = ProjectId::parse(project) {
        v.deny(
            &field,
            e.to_string(),
            "a project id is a DNS-1123 label of at most 48 characters",
            "use the project's id, e.g. its UUID".into(),
        );
        return None;
    }
    if let Some(ns_p) = ctx.namespace_project
        && ns_p != project
    {
        v.deny(
            &field,
            format!(
                "claims project {project:?} from namespace {} which is labelled for project {ns_p:?}",
                ctx.namespace
            ),
            "a namespace labelled for a project holds only that project's objects",
            format!("use {LABEL_PROJECT}: {ns_p} here, or deploy project {project} in its own namespace"),
        );
    }
    // A project lives in one namespace: its Ingresses elsewhere show where.
    if let Some(other) = ctx
        .index
        .of_project(project)
        .find(|r| r.namespace != ctx.namespace)
    {
        v.deny(
            &field,
            format!(
                "project {project:?} already belongs to namespace {} ({})",
                other.namespace,
                other.describe()
            ),
            "a project is deployed from one namespace (tenant isolation)",
            format!(
                "deploy project {project} in namespace {}, or use a project id of your own",
                other.namespace
            ),
        );
    }
    Some(project.to_string())
}

pub fn validate_deployment(ctx: &Context, obj: &Deployment, old: Option<&Deployment>) -> Verdict {
    let mut v = Verdict::default();
    let Some(_project) = common_rules(ctx, &mut v, &obj.metadata, old.map(|o| &o.metadata)) else {
        return v;
    };
    let containers = obj
        .spec
        .template
        .spec
        .as_ref()
        .map(|p| p.containers.as_slice())
        .unwrap_or_default();
    for c in containers {
        let sleep = c
            .lifecycle
            .as_ref()
            .and_then(|l| l.pre_stop.as_ref())
            .and_then(|p| p.sleep.as_ref())
            .map(|s| s.seconds);
        if let Some(s) = sleep
            && s < defaults::DEREGISTRATION_DELAY_SECONDS
        {
            v.warn(format!(
                "container {:?}: preStop sleeps {s}s, shorter than the ALB deregistration delay of {}s; requests may fail during rollouts",
                c.name,
                defaults::DEREGISTRATION_DELAY_SECONDS
            ));
        }
        if c.image.as_deref().is_some_and(|i| i.ends_with(":latest")) {
            v.warn(format!(
                "container {:?}: image {:?} uses :latest, which does not pin what runs",
                c.name,
                c.image.as_deref().unwrap_or_default()
            ));
        }
    }
    v
}

pub fn validate_service(ctx: &Context, obj: &Service, old: Option<&Service>) -> Verdict {
    let mut v = Verdict::default();
    let project = common_rules(ctx, &mut v, &obj.metadata, old.map(|o| &o.metadata));
    let spec = obj.spec.clone().unwrap_or_default();
    if let Some(t @ ("LoadBalancer" | "NodePort")) = spec.type_.as_deref() {
        v.deny(
            "spec.type",
            format!("is {t}"),
            "jockey Services are ClusterIP; traffic enters through the shared ALB only",
            "set spec.type: ClusterIP (or leave it out) and expose the project through its Ingress"
                .into(),
        );
    }
    if let Some(p) = project
        && spec
            .selector
            .as_ref()
            .is_some_and(|s| s.get(LABEL_APP) != Some(&p))
    {
        v.warn(format!(
            "spec.selector does not select {LABEL_APP}: {p}; the Service may not reach the project's pods"
        ));
    }
    v
}

pub fn validate_ingress(ctx: &Context, obj: &Ingress, old: Option<&Ingress>) -> Verdict {
    let mut v = Verdict::default();
    let Some(project) = common_rules(ctx, &mut v, &obj.metadata, old.map(|o| &o.metadata)) else {
        return v;
    };
    let cfg = ctx.cfg;
    let own_host = format!("{project}.{}", cfg.deployment_domain);
    let this_ns = ctx.namespace;
    let this_name = obj.metadata.name.as_deref().unwrap_or_default();
    let spec = obj.spec.clone().unwrap_or_default();

    // Hosts: the project's own, or what the admin allowed it; never one another tenant serves.
    let mut seen = BTreeSet::new();
    for (field, host) in ingress_hosts(obj) {
        if !seen.insert(host.clone()) {
            continue;
        }
        if host != own_host && !ctx.policy.extra_host_allowed(&project, &host) {
            let inside = host
                .strip_suffix(&cfg.deployment_domain)
                .is_some_and(|h| h.ends_with('.'));
            let problem = if inside {
                format!("{host:?} is not project {project}'s own host {own_host:?}")
            } else {
                format!(
                    "{host:?} is outside the deployment domain {:?}",
                    cfg.deployment_domain
                )
            };
            v.deny(
                field.clone(),
                problem,
                "a project serves only PROJECT.<DEPLOYMENT_DOMAIN> and the extra hosts the cluster admin allowed it",
                format!(
                    "use host {own_host}, or ask the cluster admin to add {host} under extraHosts.{project} in the webhook policy"
                ),
            );
        }
        // Another object (not this one's stored version) that is in another namespace or of
        // another project.
        let is_self = |r: &IngressRecord| r.namespace == this_ns && r.name == this_name;
        let same_tenant = |r: &IngressRecord| {
            r.namespace == this_ns && r.project.as_deref() == Some(project.as_str())
        };
        if let Some(other) = ctx
            .index
            .owners_of(&host)
            .find(|r| !is_self(r) && !same_tenant(r))
        {
            v.deny(
                field,
                format!("{host:?} is already served by {}", other.describe()),
                "a host belongs to one project in one namespace (tenant isolation)",
                format!(
                    "use your own host {own_host}, or have {} removed first",
                    other.describe()
                ),
            );
        }
    }
    for (i, rule) in spec.rules.iter().flatten().enumerate() {
        if rule.host.as_deref().is_none_or(str::is_empty) {
            v.deny(
                format!("spec.rules[{i}].host"),
                "is empty, so the rule would match every host on the shared ALB".into(),
                "every rule names a host",
                format!("set host: {own_host}"),
            );
        }
    }
    if spec.default_backend.is_some() {
        v.deny(
            "spec.defaultBackend",
            "is set; on a shared ALB it becomes the default action for every tenant".into(),
            "a jockey Ingress routes by host only",
            format!("remove spec.defaultBackend and use a rule for host {own_host}"),
        );
    }

    // The ALB group.
    let annotations = obj.metadata.annotations.clone().unwrap_or_default();
    let group = annotations.get(ALB_GROUP_NAME).cloned();
    match &group {
        Some(g) if !ctx.policy.group_allowed(cfg, g) => v.deny(
            format!("metadata.annotations[{ALB_GROUP_NAME}]"),
            format!("is {g:?}"),
            "jockey Ingresses join the shared ALB group (or a shard or group the cluster admin allows)",
            format!(
                "remove the annotation (the webhook sets it) or set it to {}",
                cfg.alb_shared_group_name
            ),
        ),
        None => v.deny(
            format!("metadata.annotations[{ALB_GROUP_NAME}]"),
            "is missing, so the Ingress would get an ALB of its own".into(),
            "jockey Ingresses join the shared ALB group",
            format!(
                "set it to {} (the mutating webhook does this when it is registered)",
                cfg.alb_shared_group_name
            ),
        ),
        _ => {}
    }
    if let (Some(new_g), Some(old_g)) = (
        group.as_deref(),
        old.and_then(|o| o.metadata.annotations.as_ref())
            .and_then(|a| a.get(ALB_GROUP_NAME)),
    ) && new_g != old_g
    {
        v.warn(format!(
            "{ALB_GROUP_NAME} changes from {old_g:?} to {new_g:?}: the host moves to another ALB and its DNS must follow"
        ));
    }

    // Group-wide settings.
    for key in EXCLUSIVE_SETTINGS {
        let full = format!("{ALB_PREFIX}{key}");
        let Some(value) = annotations.get(&full) else {
            continue;
        };
        match ctx.policy.group_settings.get(key) {
            Some(expected) if expected == value => {}
            Some(expected) => v.deny(
                format!("metadata.annotations[{full}]"),
                format!("is {value:?} but the group's setting is {expected:?}"),
                "group-wide ALB settings are the same on every Ingress of the group, or one Ingress stops the load balancer controller reconciling the whole ALB",
                format!("set it to {expected:?} or remove it"),
            ),
            None => v.deny(
                format!("metadata.annotations[{full}]"),
                format!("sets the group-wide ALB setting {key} to {value:?}"),
                "group-wide ALB settings are chosen by the cluster admin (policy groupSettings), as they apply to every tenant of the ALB",
                "remove the annotation, or ask the cluster admin to set it in the webhook policy".into(),
            ),
        }
    }

    // Tags: a key another Ingress of the group sets to a different value makes the controller
    // refuse the whole group. The per-project keys of the spec are exempt by design.
    if let (Some(g), Some(tags)) = (&group, annotations.get(ALB_TAGS)) {
        let mine = parse_tags(tags);
        for (k, val) in &mine {
            if PER_PROJECT_TAG_KEYS.contains(&k.as_str()) {
                continue;
            }
            if let Some((other, theirs)) = ctx
                .index
                .in_group(g)
                .filter(|r| !(r.namespace == this_ns && r.name == this_name))
                .find_map(|r| {
                    r.tags
                        .iter()
                        .find(|(ok, ov)| ok == k && ov != val)
                        .map(|(_, ov)| (r, ov.clone()))
                })
            {
                v.deny(
                    format!("metadata.annotations[{ALB_TAGS}]"),
                    format!(
                        "tag {k}={val} conflicts with {k}={theirs} on {} in ALB group {g}",
                        other.describe()
                    ),
                    "a tag key has one value across an ALB group",
                    format!("use {k}={theirs}, or a tag key of your own"),
                );
            }
        }
        if let Some((_, d)) = mine.iter().find(|(k, _)| k == LABEL_DEPLOYMENT)
            && d != &project
        {
            v.warn(format!(
                "tag deployment={d} does not name the project {project}"
            ));
        }
    }

    // Soft problems.
    let class = spec.ingress_class_name.as_deref().or_else(|| {
        annotations
            .get(ANNOTATION_LEGACY_INGRESS_CLASS)
            .map(String::as_str)
    });
    if class.is_some_and(|c| c != INGRESS_CLASS) {
        v.warn(format!(
            "ingress class {:?} is not {INGRESS_CLASS:?}: the shared ALB will not serve this Ingress",
            class.unwrap_or_default()
        ));
    }
    if let Some(p) = annotations
        .get(defaults::ALB_HEALTHCHECK_PATH)
        .filter(|p| p.as_str() != HEALTH_PATH)
    {
        v.warn(format!(
            "health check path {p:?} differs from {HEALTH_PATH}, which the pods' probes use"
        ));
    }
    v
}

/// `Kind namespace/name` of an object, for messages.
pub fn object_name(kind: &str, meta: &ObjectMeta, namespace: &str) -> String {
    let mut meta = meta.clone();
    if meta.namespace.as_deref().is_none_or(str::is_empty) && !namespace.is_empty() {
        meta.namespace = Some(namespace.to_string());
    }
    describe(kind, &meta)
}

#[cfg(test)]
mod tests;
