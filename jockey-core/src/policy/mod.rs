//! The cluster admin's ingress policy: which hosts and ALB groups a project may use, and the
//! rules that keep one tenant from breaking routing for another on the shared ALB.
//!
//! Pure: the webhook feeds the indexes ([`crate::index`]) and the claims from watches (so a
//! request never LISTs) and looks up the Services an Ingress names; everything else is the object
//! itself. The annotations themselves pass [`crate::allowlist`] first (what a tenant may set, with
//! which values); these rules then decide what needs the rest of the cluster. One module per
//! family: [`ownership`] (project label, claims, reserved ids), [`hosts`], [`rules`] (rule shape
//! and the project's rule cap), [`backends`] (only the project's own Services), [`placement`]
//! (the group is jockey's choice, within its quotas), [`group`] (ingress class, group-wide tags)
//! and [`routing`] (what granted conditions and actions may name).

use crate::Config;
use crate::alb_annotations as alb;
use crate::allowlist;
use crate::claims::ClaimIndex;
use crate::contract::{self, HEALTH_PATH, describe};
use crate::names::LABEL_APP;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

mod backends;
mod file;
mod group;
mod hosts;
mod ownership;
mod placement;
mod routing;
mod rules;

pub use crate::index::*;
pub use crate::verdict::*;
pub use file::*;

/// Everything about the request besides the object.
pub struct Context<'a> {
    pub cfg: &'a Config,
    pub policy: &'a Policy,
    pub index: &'a IngressIndex,
    /// The request's namespace.
    pub namespace: &'a str,
    /// The namespaces labelled for a project.
    pub namespaces: &'a NamespaceIndex,
    /// The project and host claims the webhook has seen (see [`crate::claims`]).
    pub claims: &'a ClaimIndex,
    /// Where the Services an Ingress names are looked up.
    pub services: &'a dyn Services,
}

impl Context<'_> {
    /// What the allowlist needs of the policy for `project`.
    fn scope<'s>(
        &self,
        project: &str,
        settings: &'s std::collections::BTreeMap<String, String>,
        tags: &'s [(String, String)],
    ) -> allowlist::Scope<'s>
    where
        Self: 's,
    {
        allowlist::Scope {
            grants: self.policy.grants_of(project),
            group_settings: settings,
            jockey_tags: tags,
        }
    }
}

pub fn validate_deployment(ctx: &Context, obj: &Deployment, old: Option<&Deployment>) -> Verdict {
    let mut v = Verdict::default();
    let Some(_project) = ownership::check(ctx, &mut v, &obj.metadata, old.map(|o| &o.metadata))
    else {
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
            && s < contract::DEREGISTRATION_DELAY_SECONDS
        {
            v.warn(format!(
                "container {:?}: preStop sleeps {s}s, shorter than the ALB deregistration delay of {}s; requests may fail during rollouts",
                c.name,
                contract::DEREGISTRATION_DELAY_SECONDS
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
    let project = ownership::check(ctx, &mut v, &obj.metadata, old.map(|o| &o.metadata));
    let spec = obj.spec.clone().unwrap_or_default();
    if let Some(p) = &project {
        // The controller reads target group, auth and tags annotations on a backend Service and
        // lets them win over the Ingress's: only the listed ones pass.
        let annotations = obj.metadata.annotations.clone().unwrap_or_default();
        let settings = ctx.policy.effective_group_settings(ctx.cfg);
        let tags = jockey_tags(ctx.cfg, p);
        allowlist::check(
            alb::Object::Service,
            &annotations,
            &ctx.scope(p, &settings, &tags),
            &mut v,
        );
        backends::service_keeps_its_ingresses(ctx, &mut v, obj, p);
        backends::ip_families(ctx, &mut v, &spec, &settings);
    }
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

/// jockey's own tags of a project's Service (spec: `deployment=PROJECT,hostname=<host>`).
fn jockey_tags(cfg: &Config, project: &str) -> Vec<(String, String)> {
    match crate::ProjectId::parse(project) {
        Ok(p) => contract::project_tags(&p, cfg).to_vec(),
        Err(_) => Vec::new(),
    }
}

pub fn validate_ingress(ctx: &Context, obj: &Ingress, old: Option<&Ingress>) -> Verdict {
    let mut v = Verdict::default();
    let Some(project) = ownership::check(ctx, &mut v, &obj.metadata, old.map(|o| &o.metadata))
    else {
        return v;
    };
    let annotations = obj.metadata.annotations.clone().unwrap_or_default();
    let settings = ctx.policy.effective_group_settings(ctx.cfg);
    let alb = allowlist::check(
        alb::Object::Ingress,
        &annotations,
        &ctx.scope(&project, &settings, &[]),
        &mut v,
    );
    let hosts = hosts::check(ctx, &mut v, obj, &project);
    rules::check(ctx, &mut v, obj, &project, &alb);
    let group = group::check(ctx, &mut v, obj, &alb);
    placement::check(ctx, &mut v, obj, old, &project, group.as_deref(), &settings);
    backends::check(ctx, &mut v, obj, &project);
    routing::check(ctx, &mut v, &alb, &hosts, &project);
    if let Some(p) = annotations
        .get(contract::ALB_HEALTHCHECK_PATH)
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
