//! The cluster admin's ingress policy: which hosts and ALB groups a project may use, and the
//! rules that keep one tenant from breaking routing for another on the shared ALB.
//!
//! Pure: the webhook feeds [`IngressIndex`] and the claims from watches (so a request never
//! LISTs) and passes the namespace's labels in; everything else is the object itself. One module
//! per family of rules: [`ownership`] (project label and claim), [`hosts`], [`rules`] (rule
//! shape and quotas), [`group`] (group membership and group-wide settings), [`routing`]
//! (conditions, actions, rule order) and [`annotations`] (every ALB annotation by its type).

use crate::Config;
use crate::alb_annotations as alb;
use crate::claims::ClaimIndex;
use crate::defaults::{self, HEALTH_PATH, describe};
use crate::names::LABEL_APP;
use annotations::AlbAnnotations;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

mod annotations;
mod file;
mod group;
mod hosts;
mod index;
mod ownership;
mod routing;
mod rules;
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
    /// The project and host claims the webhook has seen (see [`crate::claims`]).
    pub claims: &'a ClaimIndex,
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
    let project = ownership::check(ctx, &mut v, &obj.metadata, old.map(|o| &o.metadata));
    if project.is_some() {
        // The controller reads target group, auth and tags annotations on a backend Service;
        // a malformed one fails the whole group's model build like one on an Ingress.
        let annotations = obj.metadata.annotations.clone().unwrap_or_default();
        AlbAnnotations::check(alb::Object::Service, &annotations, &mut v);
    }
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
    let Some(project) = ownership::check(ctx, &mut v, &obj.metadata, old.map(|o| &o.metadata))
    else {
        return v;
    };
    let annotations = obj.metadata.annotations.clone().unwrap_or_default();
    let alb = AlbAnnotations::check(alb::Object::Ingress, &annotations, &mut v);
    let hosts = hosts::check(ctx, &mut v, obj, &project);
    rules::check(ctx, &mut v, obj, &project, &alb);
    group::check(ctx, &mut v, obj, old, &alb);
    routing::check(ctx, &mut v, &alb, &hosts, &project);
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
