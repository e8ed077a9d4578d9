//! The cluster admin's ingress policy: which hosts and ALB groups a project may use, and the
//! rules that keep one tenant from breaking routing for another on the shared ALB.
//!
//! Pure: the webhook feeds [`IngressIndex`] from a watch of labelled Ingresses (so a request
//! never LISTs) and passes the namespace's labels in; everything else is the object itself.

use crate::defaults::{
    self, ALB_GROUP_NAME, ALB_PREFIX, ALB_TAGS, ANNOTATION_LEGACY_INGRESS_CLASS, HEALTH_PATH,
    INGRESS_CLASS, describe, parse_tags,
};
use crate::names::{LABEL_APP, LABEL_DEPLOYMENT, LABEL_PROJECT};
use crate::{Config, ProjectId};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use std::collections::BTreeSet;

mod file;
mod index;
mod verdict;

pub use file::*;
pub use index::*;
pub use verdict::*;

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
