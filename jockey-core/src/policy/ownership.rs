//! Who an object belongs to: a valid project label that never changes, and a project id that
//! belongs to one namespace — the one holding its claim, or, before claims existed, the one
//! holding its Ingresses.

use super::{Context, Verdict};
use crate::ProjectId;
use crate::claims::{Claim, ClaimKind, Standing, standing};
use crate::names::LABEL_PROJECT;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

pub(crate) fn project_label(meta: &ObjectMeta) -> Option<&str> {
    meta.labels
        .as_ref()
        .and_then(|l| l.get(LABEL_PROJECT))
        .map(String::as_str)
}

/// Rules every kind shares. Returns the project when the object is labelled with a valid one.
pub(crate) fn check(
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
    if let Some(ns_p) = ctx.namespaces.project_of(ctx.namespace)
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
    // A namespace labelled for a project reserves its id against every other namespace.
    if let Some(reserved) = ctx
        .namespaces
        .labelled_for(project)
        .find(|ns| *ns != ctx.namespace)
    {
        v.deny(
            &field,
            format!("project {project:?} is reserved for namespace {reserved} (labelled {LABEL_PROJECT}={project})"),
            "a namespace labelled for a project reserves that project id (tenant isolation)",
            format!("deploy project {project} in namespace {reserved}, or use a project id of your own"),
        );
        return Some(project.to_string());
    }
    let want = Claim::project(project, ctx.namespace);
    if let Standing::Taken(other) = standing(&want, ctx.claims.get(ClaimKind::Project, project)) {
        v.deny(
            &field,
            format!(
                "project {project:?} already belongs to {} (its claim)",
                other.describe_holder()
            ),
            "a project id belongs to the first namespace that claims it, until the project is deleted there (tenant isolation)",
            format!(
                "deploy project {project} in namespace {}, or use a project id of your own",
                other.holder.namespace
            ),
        );
    } else if let Some(other) = ctx
        .index
        .of_project(project)
        .find(|r| r.namespace != ctx.namespace)
    {
        // Projects deployed before claims existed are held by where their Ingresses are.
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
