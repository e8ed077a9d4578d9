//! Settings the members of one ALB group must agree on, and where they do not: the controller
//! fails the whole group on any of them.

use super::model::{ALB_ANNOTATION_PREFIX, GROUP_WIDE_ANNOTATIONS, annotation, name, namespace};
use jockey_core::defaults::{ALB_TAGS, parse_tags};
use jockey_core::names::{LABEL_DEPLOYMENT, LABEL_HOSTNAME};
use k8s_openapi::api::networking::v1::Ingress;
use std::collections::BTreeMap;

/// Group-wide annotations on which the members of one group disagree: "key: value (ns/a, ...)
/// vs value (ns/b)" per key. Unset counts as a value: the controller's default for it.
pub fn group_conflicts(members: &[&Ingress]) -> Vec<String> {
    let mut out = Vec::new();
    for key in GROUP_WIDE_ANNOTATIONS {
        let full = format!("{ALB_ANNOTATION_PREFIX}{key}");
        let mut values: BTreeMap<Option<&str>, Vec<String>> = BTreeMap::new();
        for ing in members {
            values
                .entry(annotation(ing, &full))
                .or_default()
                .push(format!("{}/{}", namespace(ing), name(ing)));
        }
        if values.len() > 1 {
            let parts: Vec<String> = values
                .iter()
                .map(|(v, who)| {
                    let more = if who.len() > 1 {
                        format!(" and {} more", who.len() - 1)
                    } else {
                        String::new()
                    };
                    format!(
                        "{} ({}{more})",
                        v.map_or("unset".to_string(), |v| format!("{v:?}")),
                        who[0]
                    )
                })
                .collect();
            out.push(format!("{key}: {}", parts.join(" vs ")));
        }
    }
    out
}

/// Tag keys to which the members of one group give different values: the controller merges every
/// Ingress's `tags` into the one ALB and fails the whole group on such a key.
pub fn tag_conflicts(members: &[&Ingress]) -> Vec<String> {
    let mut by_key: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    for ing in members {
        for (k, v) in annotation(ing, ALB_TAGS)
            .map(parse_tags)
            .unwrap_or_default()
        {
            by_key
                .entry(k)
                .or_default()
                .entry(v)
                .or_default()
                .push(format!("{}/{}", namespace(ing), name(ing)));
        }
    }
    by_key
        .into_iter()
        .filter(|(_, values)| values.len() > 1)
        .map(|(key, values)| {
            let parts: Vec<String> = values
                .iter()
                .map(|(v, who)| format!("{key}={v} ({})", who.join(", ")))
                .collect();
            format!("tag {key}: {}", parts.join(" vs "))
        })
        .collect()
}

/// Ingresses that still carry the per-project tags (`deployment`, `hostname`) earlier versions of
/// jockey wrote there; they belong on the Service now.
pub fn legacy_project_tags(members: &[&Ingress]) -> Vec<String> {
    members
        .iter()
        .filter(|ing| {
            annotation(ing, ALB_TAGS)
                .map(parse_tags)
                .unwrap_or_default()
                .iter()
                .any(|(k, _)| k == LABEL_DEPLOYMENT || k == LABEL_HOSTNAME)
        })
        .map(|ing| format!("{}/{}", namespace(ing), name(ing)))
        .collect()
}
