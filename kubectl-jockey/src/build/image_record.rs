//! Which images were built from an instance: the `jockey.agentops.ai/image` annotation on the
//! instance ConfigMap (project namespace), read by `deploy` to skip a build and by `rollback` to
//! find the image of an earlier instance without rebuilding it.

use anyhow::{Context, Result};
use jockey_core::names::ANNOTATION_IMAGE;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};

pub use jockey_core::image::{recorded_image_of, recorded_images};

/// The annotation value listing `image` too, or None when it is already listed. Pure.
pub fn with_image(recorded: &[String], image: &str) -> Option<String> {
    if recorded.iter().any(|i| i == image) {
        return None;
    }
    let mut all = recorded.to_vec();
    all.push(image.to_string());
    Some(all.join(","))
}

/// Records on the instance ConfigMap (project namespace) that its image exists, so the next
/// deploy of the same files skips the build. Metadata stays mutable on an immutable ConfigMap.
/// Writes nothing when the image is already recorded; says whether it wrote.
pub async fn record_image(
    client: &Client,
    namespace: &str,
    cm_name: &str,
    image: &str,
) -> Result<bool> {
    let api = Api::<ConfigMap>::namespaced(client.clone(), namespace);
    let what = || format!("recording the built image on ConfigMap {namespace}/{cm_name}");
    let cm = api.get(cm_name).await.with_context(what)?;
    let Some(value) = with_image(&recorded_images(&cm), image) else {
        return Ok(false);
    };
    // The resourceVersion makes this a compare-and-swap: a concurrent deploy of another project
    // recording its image is not lost (the loser gets a conflict and the user deploys again).
    let patch = serde_json::json!({ "metadata": {
        "resourceVersion": cm.metadata.resource_version,
        "annotations": { ANNOTATION_IMAGE: value } } });
    api.patch(cm_name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .with_context(what)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jockey_core::ProjectId;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use std::collections::BTreeMap;

    #[test]
    fn recorded_images_are_a_list_one_per_project() {
        let cm = |v: &str| ConfigMap {
            metadata: ObjectMeta {
                annotations: Some(BTreeMap::from([(
                    ANNOTATION_IMAGE.to_string(),
                    v.to_string(),
                )])),
                ..Default::default()
            },
            ..Default::default()
        };
        let a = ProjectId::parse("a").unwrap();
        let ab = ProjectId::parse("ab").unwrap();
        let two = cm("r:5000/hosting/a:0123456789abcdef, r:5000/hosting/ab:0123456789abcdef");
        assert_eq!(recorded_images(&two).len(), 2);
        assert_eq!(
            recorded_image_of(&two, &a).as_deref(),
            Some("r:5000/hosting/a:0123456789abcdef")
        );
        assert_eq!(
            recorded_image_of(&two, &ab).as_deref(),
            Some("r:5000/hosting/ab:0123456789abcdef")
        );
        assert_eq!(recorded_image_of(&cm(""), &a), None);
        let list = recorded_images(&two);
        assert_eq!(with_image(&list, "r:5000/hosting/a:0123456789abcdef"), None);
        assert_eq!(
            with_image(&list[..1], "x/c:1").as_deref(),
            Some("r:5000/hosting/a:0123456789abcdef,x/c:1")
        );
    }
}
