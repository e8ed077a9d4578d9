//! The ALB group an Ingress is in, and what its members must agree on beyond the admin's
//! settings (which [`crate::allowlist`] holds them to).
//!
//! The AWS Load Balancer Controller builds one ALB from all Ingresses of a group: a member whose
//! class stops being `alb` makes it stop loading the group, and tags are merged from every
//! member into the one ALB, failing the whole group on two values for one key.

use super::{Context, Verdict};
use crate::alb_annotations::Parsed;
use crate::allowlist::Admitted;
use crate::contract::{ALB_GROUP_NAME, ALB_TAGS, ANNOTATION_LEGACY_INGRESS_CLASS, INGRESS_CLASS};
use k8s_openapi::api::networking::v1::Ingress;
use std::collections::BTreeMap;

/// Checks the ingress class and group-wide tags. Returns the group the Ingress names.
pub(crate) fn check(
    ctx: &Context,
    v: &mut Verdict,
    obj: &Ingress,
    alb: &Admitted,
) -> Option<String> {
    let annotations = obj.metadata.annotations.clone().unwrap_or_default();
    let group = annotations.get(ALB_GROUP_NAME).cloned();
    ingress_class(v, obj, &annotations);
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

/// The controller merges every Ingress's tags into the group's ALB and refuses the whole group
/// when two Ingresses give one key different values, whatever the key; members the webhook did
/// not write (older ones, or another admin's) are checked against through the index.
fn tag_conflicts(ctx: &Context, v: &mut Verdict, obj: &Ingress, group: &str, alb: &Admitted) {
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
