//! Which instance a Deployment runs after an update. Three places name it: the annotation
//! `jockey.agentops.ai/instance`, the builder image `<registry>/<prefix>/PROJECT:<h>` of its
//! agent containers, and the instance volume's ConfigMap. They must always agree, and users move
//! them with different tools: `kubectl jockey deploy` and a client-side `kubectl apply` change the
//! annotation (the image stays `jockey:auto` in the manifest, so apply does not send it);
//! `kubectl set image` changes only the image; `kubectl rollout undo` restores an old template
//! (and, with kubectl, the old annotations). Whichever place the update changed decides, and the
//! others follow; two places changed to different instances are refused rather than guessed.

use super::{DefaultError, app_containers, describe, project_of};
use crate::names::{ANNOTATION_INSTANCE, short_hash_of_configmap};
use crate::{Config, ProjectId};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::PodSpec;

/// The short hash of `image` when it is this project's builder image under the configured
/// registry (`<registry>/<prefix>/PROJECT:<16 hex>`); builder images elsewhere, and other tags,
/// are a user's deliberate choice and name no instance.
pub(super) fn builder_hash<'a>(
    image: &'a str,
    project: &ProjectId,
    cfg: &Config,
) -> Option<&'a str> {
    let registry = cfg.image_registry.as_deref()?;
    let ours = format!(
        "{}/{}:",
        registry.trim_end_matches('/'),
        project.repository(&cfg.image_repository_prefix)
    );
    image.strip_prefix(&ours).filter(|tag| {
        tag.len() == 16
            && tag
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

fn annotation_hash(d: &Deployment) -> Option<&str> {
    d.metadata
        .annotations
        .as_ref()?
        .get(ANNOTATION_INSTANCE)
        .and_then(|cm| short_hash_of_configmap(cm))
}

fn pod(d: &Deployment) -> Option<&PodSpec> {
    d.spec.template.spec.as_ref()
}

fn volume_hash(d: &Deployment) -> Option<&str> {
    pod(d)?
        .volumes
        .as_ref()?
        .iter()
        .find(|v| v.name == super::INSTANCE_VOLUME)?
        .config_map
        .as_ref()
        .and_then(|cm| short_hash_of_configmap(&cm.name))
}

/// One place that names an instance, as changed by an update.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Place {
    Annotation,
    Image(String),
    Volume,
}

impl Place {
    fn describe(&self, hash: &str) -> String {
        match self {
            Place::Annotation => format!("annotation {ANNOTATION_INSTANCE} says instance-{hash}"),
            Place::Image(c) => format!("the image of container {c:?} is the builder's :{hash}"),
            Place::Volume => format!(
                "volume {:?} mounts ConfigMap instance-{hash}",
                super::INSTANCE_VOLUME
            ),
        }
    }
}

/// The places `new` changed from `old`, each with the instance it names now.
fn changed_places(
    new: &Deployment,
    old: &Deployment,
    project: &ProjectId,
    cfg: &Config,
) -> Vec<(Place, String)> {
    let mut changed = Vec::new();
    if let Some(h) = annotation_hash(new)
        && annotation_hash(old) != Some(h)
    {
        changed.push((Place::Annotation, h.to_string()));
    }
    let old_containers = pod(old)
        .map(|p| p.containers.as_slice())
        .unwrap_or_default();
    if let Some(p) = pod(new) {
        for &i in &app_containers(&p.containers, project, cfg) {
            let c = &p.containers[i];
            let Some(h) = c
                .image
                .as_deref()
                .and_then(|img| builder_hash(img, project, cfg))
            else {
                continue;
            };
            // A container the old object did not have is compared with the instance it ran.
            let before = match old_containers.iter().find(|o| o.name == c.name) {
                Some(o) => o
                    .image
                    .as_deref()
                    .and_then(|img| builder_hash(img, project, cfg)),
                None => annotation_hash(old),
            };
            if before != Some(h) {
                changed.push((Place::Image(c.name.clone()), h.to_string()));
            }
        }
    }
    if let Some(h) = volume_hash(new)
        && volume_hash(old) != Some(h)
    {
        changed.push((Place::Volume, h.to_string()));
    }
    changed
}

/// The instance an UPDATE from `old` to `new` moved the Deployment to, when the annotation must
/// follow a changed image or volume: `Some(hash)`. `None` when the annotation already decides (it
/// was the place that changed, or nothing that names an instance changed). An error when the
/// update changed two places to different instances.
pub(super) fn moved_to(
    new: &Deployment,
    old: &Deployment,
    cfg: &Config,
) -> Result<Option<String>, DefaultError> {
    // An object without a valid project label is refused by the defaulting that follows.
    let Ok(project) = project_of("Deployment", &new.metadata) else {
        return Ok(None);
    };
    // Nor is a malformed annotation overwritten: the defaulting refuses it with its own message.
    let annotation = new
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(ANNOTATION_INSTANCE));
    if annotation.is_some_and(|cm| short_hash_of_configmap(cm).is_none()) {
        return Ok(None);
    }
    let changed = changed_places(new, old, &project, cfg);
    let Some((_, first)) = changed.first() else {
        return Ok(None);
    };
    if let Some((place, other)) = changed.iter().find(|(_, h)| h != first) {
        let (first_place, _) = &changed[0];
        return Err(DefaultError {
            object: describe("Deployment", &new.metadata),
            cause: format!(
                "this change names two different instances: {}, but {}",
                first_place.describe(first),
                place.describe(other)
            ),
            fix: format!(
                "change only one of them (the annotation {ANNOTATION_INSTANCE}, the builder image, or the instance volume) and jockey moves the others with it, or set them all to the same instance"
            ),
        });
    }
    if changed.iter().any(|(p, _)| *p == Place::Annotation) {
        return Ok(None);
    }
    Ok(Some(first.clone()))
}

#[cfg(test)]
mod tests;
