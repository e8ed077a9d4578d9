//! What `rollback`, `delete` and `gc` share: the instance ConfigMaps of a project and the pod
//! templates that still reference them. Pure.

use jockey_core::ProjectId;
use jockey_core::names::{
    ANNOTATION_INSTANCE, LABEL_CONTENT_HASH, LABEL_PROJECT, short_hash_of_configmap,
};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{ConfigMap, PodTemplateSpec};
use std::collections::{BTreeMap, BTreeSet};

/// The label selector of a project's instance ConfigMaps (of every project's, with None).
pub fn instance_selector(project: Option<&ProjectId>) -> String {
    match project {
        Some(p) => format!("{LABEL_PROJECT}={p},{LABEL_CONTENT_HASH}"),
        None => format!("{LABEL_PROJECT},{LABEL_CONTENT_HASH}"),
    }
}

/// The `instance-<h>` a Deployment's annotation names.
pub fn deployment_instance(dep: &Deployment) -> Option<String> {
    dep.metadata
        .annotations
        .as_ref()?
        .get(ANNOTATION_INSTANCE)
        .cloned()
}

/// An instance ConfigMap as rollback and gc see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub namespace: String,
    pub name: String,
    pub project: String,
    /// RFC 3339 creation time (sorts chronologically, to the second).
    pub created: String,
    /// The resourceVersion, which orders creations within the same second.
    pub rv: u64,
    /// Deletes carry it as a precondition, so a ConfigMap replaced since it was listed is not
    /// deleted in its place.
    pub uid: Option<String>,
}

/// Whether a ConfigMap's name has the form of an instance, `instance-<16 hex>`.
pub fn is_instance_name(name: &str) -> bool {
    short_hash_of_configmap(name).is_some()
}

/// The instance ConfigMaps among `cms`: named `instance-<h>` and labelled with a project.
pub fn instances_of(cms: &[ConfigMap]) -> Vec<Instance> {
    cms.iter()
        .filter_map(|cm| {
            let name = cm.metadata.name.clone()?;
            short_hash_of_configmap(&name)?;
            Some(Instance {
                namespace: cm.metadata.namespace.clone().unwrap_or_default(),
                project: cm.metadata.labels.as_ref()?.get(LABEL_PROJECT)?.clone(),
                created: cm
                    .metadata
                    .creation_timestamp
                    .as_ref()
                    .map(|t| serde_json::to_string(t).unwrap_or_default())
                    .unwrap_or_default(),
                rv: cm
                    .metadata
                    .resource_version
                    .as_deref()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0),
                uid: cm.metadata.uid.clone(),
                name,
            })
        })
        .collect()
}

/// Instance ConfigMaps referenced by a pod template: the instance annotation (Deployments and
/// the ReplicaSets that copy it) and ConfigMap volumes.
pub fn template_refs(
    ns: &str,
    annotations: Option<&BTreeMap<String, String>>,
    template: Option<&PodTemplateSpec>,
    out: &mut BTreeSet<(String, String)>,
) {
    if let Some(name) = annotations.and_then(|a| a.get(ANNOTATION_INSTANCE)) {
        out.insert((ns.to_string(), name.clone()));
    }
    let volumes = template
        .and_then(|t| t.spec.as_ref())
        .and_then(|s| s.volumes.as_ref());
    for v in volumes.into_iter().flatten() {
        if let Some(cm) = &v.config_map {
            out.insert((ns.to_string(), cm.name.clone()));
        }
    }
}

/// Every (namespace, ConfigMap) a Deployment or a retained ReplicaSet still references. Pure.
pub fn referenced(deps: &[Deployment], rss: &[ReplicaSet]) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for d in deps {
        let ns = d.metadata.namespace.clone().unwrap_or_default();
        template_refs(
            &ns,
            d.metadata.annotations.as_ref(),
            Some(&d.spec.template),
            &mut out,
        );
    }
    for rs in rss {
        let ns = rs.metadata.namespace.clone().unwrap_or_default();
        template_refs(
            &ns,
            rs.metadata.annotations.as_ref(),
            rs.spec.template.as_ref(),
            &mut out,
        );
    }
    out
}

/// An instance as the tests of `rollback` and `gc` write it.
#[cfg(test)]
pub fn test_instance(hash: &str, project: &str, created: &str) -> Instance {
    Instance {
        namespace: "ns".into(),
        name: format!("instance-{hash}"),
        project: project.into(),
        created: created.into(),
        rv: 0,
        uid: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const A: &str = "aaaaaaaaaaaaaaaa";
    const C: &str = "cccccccccccccccc";

    #[test]
    fn references_come_from_annotations_and_volumes_of_deployments_and_replicasets() {
        let dep: Deployment = serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "ns",
                "annotations": {ANNOTATION_INSTANCE: format!("instance-{C}")}},
            "spec": {"selector": {}, "template": {}}
        }))
        .unwrap();
        let rs: ReplicaSet = serde_json::from_value(json!({
            "metadata": {"name": "p-1", "namespace": "ns"},
            "spec": {"selector": {}, "template": {"spec": {"containers": [],
                "volumes": [{"name": "jockey-instance", "configMap": {"name": format!("instance-{A}")}}]}}}
        }))
        .unwrap();
        let refs = referenced(&[dep], &[rs]);
        assert!(refs.contains(&("ns".into(), format!("instance-{C}"))));
        assert!(refs.contains(&("ns".into(), format!("instance-{A}"))));
    }
}
