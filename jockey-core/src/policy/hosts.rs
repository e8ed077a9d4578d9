//! Hosts: a project serves its own `PROJECT.<DEPLOYMENT_DOMAIN>` and the extra hosts the cluster
//! admin gave it, and never a host another project holds (by claim, or by an Ingress that
//! serves it).

use super::{Context, IngressRecord, Verdict, ingress_hosts};
use crate::claims::{Claim, ClaimKind, Standing, standing};
use k8s_openapi::api::networking::v1::Ingress;
use std::collections::BTreeSet;

/// Checks every host of the Ingress; returns them (lowercase, once each).
pub(crate) fn check(
    ctx: &Context,
    v: &mut Verdict,
    obj: &Ingress,
    project: &str,
) -> BTreeSet<String> {
    let cfg = ctx.cfg;
    let own_host = format!("{project}.{}", cfg.deployment_domain);
    let this_ns = ctx.namespace;
    let this_name = obj.metadata.name.as_deref().unwrap_or_default();
    let mut seen = BTreeSet::new();
    for (field, host) in ingress_hosts(obj) {
        if !seen.insert(host.clone()) {
            continue;
        }
        if host != own_host && !ctx.policy.extra_host_allowed(project, &host) {
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
        let want = Claim::host(&host, project, this_ns);
        if let Standing::Taken(other) = standing(&want, ctx.claims.get(ClaimKind::Host, &host)) {
            let h = &other.holder;
            // Name the Ingress that serves it when there is one; the claim holds either way.
            let who = ctx
                .index
                .owners_of(&host)
                .find(|r| r.namespace == h.namespace && r.project.as_deref() == Some(&h.project))
                .map(IngressRecord::describe)
                .unwrap_or_else(|| other.describe_holder());
            v.deny(
                field,
                format!("{host:?} is already served by {who} (its claim)"),
                "a host belongs to one project in one namespace (tenant isolation)",
                format!(
                    "use your own host {own_host}, or have project {} deleted in namespace {} first",
                    h.project, h.namespace
                ),
            );
            continue;
        }
        // Another object (not this one's stored version) in another namespace or of another
        // project; this also covers Ingresses from before claims existed.
        let is_self = |r: &IngressRecord| r.namespace == this_ns && r.name == this_name;
        let same_tenant =
            |r: &IngressRecord| r.namespace == this_ns && r.project.as_deref() == Some(project);
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
    seen
}
