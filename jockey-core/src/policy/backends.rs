//! A project's Ingress routes only to its own Services: labelled with its project, in its
//! namespace, with the port it names. A Service that is not the project's is never validated as
//! the project's, yet the controller reads its `alb.ingress.kubernetes.io/*` annotations and lets
//! them win over the Ingress's; a port the Service lacks, or one missing target of a weighted
//! forward, fails the whole group. And the other way round: a project's Service may not drop a
//! port its Ingresses route to.

use super::{Context, Verdict};
use crate::alb_annotations::ServicePort;
use crate::index::{ServiceLookup, backends};
use k8s_openapi::api::core::v1::{Service, ServiceSpec};
use k8s_openapi::api::networking::v1::Ingress;
use std::collections::BTreeMap;

fn port_words(p: &ServicePort) -> String {
    match p {
        ServicePort::Number(n) => format!("port {n}"),
        ServicePort::Name(n) => format!("port {n:?}"),
    }
}

pub(crate) fn check(ctx: &Context, v: &mut Verdict, obj: &Ingress, project: &str) {
    let ns = ctx.namespace;
    for b in backends(obj) {
        let svc = &b.service;
        match ctx.services.lookup(ns, svc) {
            ServiceLookup::Unknown => v.need_service(svc),
            ServiceLookup::Found(f) if f.project.as_deref() != Some(project) => v.deny(
                format!("backend Service {svc}"),
                match &f.project {
                    Some(p) => format!("Service {ns}/{svc} belongs to project {p}"),
                    None => format!("Service {ns}/{svc} is not labelled for project {project}"),
                },
                "a project's Ingress routes only to Services labelled with its project, in its namespace (the controller reads a backend Service's ALB annotations, and they win over the Ingress's)",
                format!(
                    "route to the project's own Service, or label Service {ns}/{svc} jockey.agentops.ai/project={project} (it is then checked as the project's)"
                ),
            ),
            ServiceLookup::Found(f) if !f.has_port(&b.port) => v.deny(
                format!("backend Service {svc}"),
                format!("Service {ns}/{svc} has no {}", port_words(&b.port)),
                "an Ingress routes only to a port its Service has: the controller fails the whole group otherwise",
                format!("route to a port of Service {svc}, or add the port to it first"),
            ),
            ServiceLookup::Missing if b.required => v.deny(
                format!("backend Service {svc}"),
                format!("Service {ns}/{svc} does not exist, and it is one of several targets of a forward"),
                "every target of a weighted forward exists: the controller fails the whole group on a missing one (a single missing backend becomes a 503)",
                format!("create Service {svc} (labelled for project {project}) first"),
            ),
            _ => {}
        }
    }
}

/// A project's Service keeps every port its project's Ingresses route to, and stays a
/// required target as long as one forwards to it.
pub(crate) fn service_keeps_its_ingresses(
    ctx: &Context,
    v: &mut Verdict,
    obj: &Service,
    project: &str,
) {
    let name = obj.metadata.name.as_deref().unwrap_or_default();
    let facts = crate::index::ServiceFacts::from_service(obj);
    for record in ctx
        .index
        .of_project(project)
        .filter(|r| r.namespace == ctx.namespace)
    {
        for b in record.backends.iter().filter(|b| b.service == name) {
            if !facts.has_port(&b.port) {
                v.deny(
                    "spec.ports",
                    format!("drops {}, which {} routes to", port_words(&b.port), record.describe()),
                    "a Service keeps the ports its Ingresses route to: the controller fails the whole group on a missing one",
                    format!(
                        "keep {} in Service {name}, or change {} first",
                        port_words(&b.port),
                        record.describe()
                    ),
                );
            }
        }
    }
}

/// An IPv6 Service on an ALB that is not dualstack fails the whole group
/// (`model_build_target_group.go:282-285`).
pub(crate) fn ip_families(
    _ctx: &Context,
    v: &mut Verdict,
    spec: &ServiceSpec,
    settings: &BTreeMap<String, String>,
) {
    let dualstack = settings
        .get("ip-address-type")
        .is_some_and(|t| t.starts_with("dualstack"));
    let v6 = spec
        .ip_families
        .iter()
        .flatten()
        .any(|f| f.eq_ignore_ascii_case("IPv6"));
    if v6 && !dualstack {
        v.deny(
            "spec.ipFamilies",
            "includes IPv6 while the shared ALB is not dualstack".into(),
            "the controller fails the whole group on an IPv6 target group behind an IPv4 ALB",
            "use ipFamilies [IPv4] (or leave it out)".into(),
        );
    }
}
