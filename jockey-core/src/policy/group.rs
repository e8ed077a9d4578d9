//! The ALB group an Ingress joins, and the settings every Ingress of that group shares.
//!
//! The AWS Load Balancer Controller builds one ALB from all Ingresses of a group: a group-wide
//! key (scheme, listen-ports, certificate-arn, tags, ...) either must agree on every Ingress that
//! sets it, or is merged from all of them into the shared ALB and its listeners. Either way one
//! tenant's value is every tenant's value, so a jockey Ingress may carry only the cluster admin's
//! values (policy `groupSettings`), and tags may not contradict another member's.

use super::annotations::{AlbAnnotations, suffix_of};
use super::{Context, Verdict};
use crate::alb_annotations::{self as alb, Parsed};
use crate::defaults::{ALB_GROUP_NAME, ALB_TAGS, ANNOTATION_LEGACY_INGRESS_CLASS, INGRESS_CLASS};
use k8s_openapi::api::networking::v1::Ingress;
use std::collections::BTreeMap;

/// Checks the group annotation, the ingress class and every group-wide setting. Returns the
/// group the Ingress names.
pub(crate) fn check(
    ctx: &Context,
    v: &mut Verdict,
    obj: &Ingress,
    old: Option<&Ingress>,
    alb: &AlbAnnotations,
) -> Option<String> {
    let cfg = ctx.cfg;
    let annotations = obj.metadata.annotations.clone().unwrap_or_default();
    let field = format!("metadata.annotations[{ALB_GROUP_NAME}]");
    let group = annotations.get(ALB_GROUP_NAME).cloned();
    match &group {
        Some(g) if !ctx.policy.group_allowed(cfg, g) => v.deny(
            &field,
            format!("is {g:?}"),
            "jockey Ingresses join the shared ALB group (or a shard or group the cluster admin allows)",
            format!(
                "remove the annotation (the webhook sets it) or set it to {}",
                cfg.alb_shared_group_name
            ),
        ),
        None => v.deny(
            &field,
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

    ingress_class(v, obj, &annotations);
    settings(ctx, v, alb);
    if let Some(g) = &group {
        tag_conflicts(ctx, v, obj, g, alb);
    }
    group
}

/// A member whose class stops being `alb` (or names a class that does not exist) makes the
/// controller fail to load the whole group while the Ingress still holds the group's finalizer.
fn ingress_class(v: &mut Verdict, obj: &Ingress, annotations: &BTreeMap<String, String>) {
    let class_name = obj
        .spec
        .as_ref()
        .and_then(|s| s.ingress_class_name.as_deref());
    let legacy = annotations
        .get(ANNOTATION_LEGACY_INGRESS_CLASS)
        .map(String::as_str);
    for (field, class) in [
        ("spec.ingressClassName".to_string(), class_name),
        (
            format!("metadata.annotations[{ANNOTATION_LEGACY_INGRESS_CLASS}]"),
            legacy,
        ),
    ] {
        if let Some(c) = class.filter(|c| *c != INGRESS_CLASS) {
            v.deny(
                field,
                format!("is {c:?}"),
                "an Ingress of a shared ALB group has the class alb: a member that changes class makes the controller stop loading the whole group",
                format!("set it to {INGRESS_CLASS} (or leave it out: the webhook sets it)"),
            );
        }
    }
}

/// Group-wide keys: only the admin's values.
fn settings(ctx: &Context, v: &mut Verdict, alb: &AlbAnnotations) {
    let allowed = ctx.policy.effective_group_settings(ctx.cfg);
    for (entry, parsed) in alb.of_reach(|r| matches!(r, alb::Reach::Group { .. })) {
        let key = suffix_of(&entry.known.key);
        let merge = matches!(entry.known.reach, alb::Reach::Group { merge: true });
        let field = format!("metadata.annotations[{}]", entry.known.key);
        let expected = allowed
            .get(key)
            .and_then(|value| entry.known.parse(value).ok().map(|p| (value, p)));
        match expected {
            Some((_, admin)) if agrees(parsed, &admin, merge) => {}
            Some((admin_value, _)) => v.deny(
                field,
                format!(
                    "is {:?} but the group's setting is {admin_value:?}",
                    entry.value
                ),
                "group-wide ALB settings are the cluster admin's: every Ingress of a group shares one ALB, and one Ingress that differs stops (or changes) it for every tenant",
                if merge {
                    format!("remove the annotation, or use only entries of {admin_value:?}")
                } else {
                    format!("remove the annotation (the webhook fills it in) or set it to {admin_value:?}")
                },
            ),
            None => v.deny(
                field,
                format!(
                    "sets the group-wide ALB setting {key} to {:?}, which the cluster admin did not choose",
                    entry.value
                ),
                "group-wide ALB settings are the cluster admin's (webhook policy groupSettings), as they act on every tenant of the ALB",
                "remove the annotation, or ask the cluster admin to set it in the webhook policy"
                    .into(),
            ),
        }
    }
}

/// Whether a tenant's value says nothing the admin's does not: equal, or, for a key the
/// controller merges (lists, maps, listen ports), a part of the admin's value.
fn agrees(tenant: &Parsed, admin: &Parsed, merge: bool) -> bool {
    if tenant == admin {
        return true;
    }
    if !merge {
        return false;
    }
    match (tenant, admin) {
        (Parsed::List(t), Parsed::List(a)) => t.iter().all(|x| a.contains(x)),
        (Parsed::Map(t), Parsed::Map(a)) => t.iter().all(|x| a.contains(x)),
        (Parsed::ListenPorts(t), Parsed::ListenPorts(a)) => t.iter().all(|x| a.contains(x)),
        (Parsed::PortMapping(t), Parsed::PortMapping(a)) => t.iter().all(|x| a.contains(x)),
        _ => false,
    }
}

/// The controller merges every Ingress's tags into the group's ALB and refuses the whole group
/// when two Ingresses give one key different values, whatever the key; members the webhook did
/// not write (older ones, or another admin's) are checked against through the index.
fn tag_conflicts(ctx: &Context, v: &mut Verdict, obj: &Ingress, group: &str, alb: &AlbAnnotations) {
    let Some((_, Parsed::Map(mine))) = alb.get("tags") else {
        return;
    };
    let this_ns = ctx.namespace;
    let this_name = obj.metadata.name.as_deref().unwrap_or_default();
    for (k, val) in mine {
        if let Some((other, theirs)) = ctx
            .index
            .in_group(group)
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
                    "tag {k}={val} conflicts with {k}={theirs} on {} in ALB group {group}",
                    other.describe()
                ),
                "a tag key has one value across an ALB group, or the controller fails the whole group",
                format!(
                    "use {k}={theirs}, or put per-project tags on the project's Service (they go on its target group only)"
                ),
            );
        }
    }
}
