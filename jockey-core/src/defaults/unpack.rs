//! The built-in template's pod shape: who unpacks the instance's files at pod start, and where
//! (see [`default_unpack`]).

use super::{
    APP_PATH, APP_VOLUME, DEFAULT_AGENT_ARGS, INSTANCE_MOUNT_PATH, INSTANCE_VOLUME,
    UNPACK_AND_EXEC, UNPACK_CONTAINER, UNPACK_SCRIPT, is_unpack_wrapper,
};
use crate::image::is_dependency_image;
use k8s_openapi::api::core::v1::{
    Container, EmptyDirVolumeSource, PodSpec, ResourceRequirements, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use std::collections::BTreeMap;

/// The built-in template's pod shape: an agent container running a dependency image (`:d-...`)
/// gets the instance's files unpacked at pod start into the emptyDir [`APP_VOLUME`], mounted at
/// [`APP_PATH`] (the image's working directory), by the image's own Python (`tarfile`), as the
/// agent's user and with its security context. Any other image (a project's own Dockerfile, whose
/// image holds its files, or a user's image) has none of it: it goes when an instance moves to
/// such an image.
///
/// Who unpacks: when the agent is the only container on a dependency image and has no `command`
/// of its own (the common case), the agent itself: its command becomes jockey's wrapper
/// ([`UNPACK_AND_EXEC`]), which unpacks and then `exec`s its `args` (the image's `CMD`,
/// [`DEFAULT_AGENT_ARGS`], written out when it has none). An init container would cost a second
/// of every rollout: the kubelet notices its exit only on its next relist. When the container
/// has a command of its own, that command runs unchanged and the init container
/// [`UNPACK_CONTAINER`] unpacks first, as before (also when several containers share the files,
/// so none starts before they are there). A pod rendered with the init container by an earlier
/// jockey moves to the wrapper on its next admission.
pub(super) fn default_unpack(pod: &mut PodSpec, apps: &[usize], has_instance: bool) {
    let dependency: Vec<usize> = apps
        .iter()
        .copied()
        .filter(|&i| {
            pod.containers[i]
                .image
                .as_deref()
                .is_some_and(is_dependency_image)
        })
        .collect();
    let Some(&agent) = dependency.first().filter(|_| has_instance) else {
        remove_unpack_container(pod);
        if let Some(volumes) = pod.volumes.as_mut() {
            volumes.retain(|v| v.name != APP_VOLUME);
        }
        for c in &mut pod.containers {
            if let Some(m) = c.volume_mounts.as_mut() {
                m.retain(|m| m.name != APP_VOLUME);
            }
            unwrap_agent(c);
        }
        return;
    };
    let image = pod.containers[agent].image.clone();
    let security_context = pod.containers[agent].security_context.clone();
    let app_mount = || VolumeMount {
        name: APP_VOLUME.to_string(),
        mount_path: APP_PATH.to_string(),
        ..Default::default()
    };
    for &i in &dependency {
        let mounts = pod.containers[i].volume_mounts.get_or_insert_with(Vec::new);
        if !mounts
            .iter()
            .any(|m| m.name == APP_VOLUME || m.mount_path.trim_end_matches('/') == APP_PATH)
        {
            // Before the instance's mount below it (/app/instance), as the kubelet mounts them.
            mounts.insert(0, app_mount());
        }
    }
    let volumes = pod.volumes.get_or_insert_with(Vec::new);
    if !volumes.iter().any(|v| v.name == APP_VOLUME) {
        volumes.push(Volume {
            name: APP_VOLUME.to_string(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Default::default()
        });
    }
    let own_command = pod.containers[agent]
        .command
        .as_deref()
        .is_some_and(|c| !c.is_empty() && !is_unpack_wrapper(c));
    if dependency.len() == 1 && !own_command {
        wrap_agent(&mut pod.containers[agent]);
        remove_unpack_container(pod);
        return;
    }
    for &i in &dependency {
        unwrap_agent(&mut pod.containers[i]);
    }
    let inits = pod.init_containers.get_or_insert_with(Vec::new);
    let unpack = match inits.iter_mut().find(|c| c.name == UNPACK_CONTAINER) {
        Some(c) => c,
        None => {
            inits.insert(
                0,
                Container {
                    name: UNPACK_CONTAINER.to_string(),
                    ..Default::default()
                },
            );
            &mut inits[0]
        }
    };
    // Always jockey's: it follows the agent's image, so the files and the dependencies they were
    // deployed with start together.
    unpack.image = image;
    unpack.command = Some(vec![
        "python".to_string(),
        "-c".to_string(),
        UNPACK_SCRIPT.to_string(),
    ]);
    unpack.args = None;
    unpack.volume_mounts = Some(vec![
        app_mount(),
        VolumeMount {
            name: INSTANCE_VOLUME.to_string(),
            mount_path: INSTANCE_MOUNT_PATH.to_string(),
            read_only: Some(true),
            ..Default::default()
        },
    ]);
    if unpack.security_context.is_none() {
        unpack.security_context = security_context;
    }
    if unpack.resources.is_none() {
        let q = |pairs: &[(&str, &str)]| {
            Some(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), Quantity(v.to_string())))
                    .collect::<BTreeMap<_, _>>(),
            )
        };
        unpack.resources = Some(ResourceRequirements {
            requests: q(&[("cpu", "50m"), ("memory", "64Mi")]),
            limits: q(&[("cpu", "1"), ("memory", "256Mi")]),
            ..Default::default()
        });
    }
}

/// The agent runs [`UNPACK_AND_EXEC`] in front of its `args` (the image's `CMD` when it has none).
fn wrap_agent(c: &mut Container) {
    if !c.command.as_deref().is_some_and(is_unpack_wrapper) {
        c.command = Some(vec![
            "python".to_string(),
            "-c".to_string(),
            UNPACK_AND_EXEC.to_string(),
        ]);
    }
    if c.args.as_ref().is_none_or(|a| a.is_empty()) {
        c.args = Some(DEFAULT_AGENT_ARGS.map(String::from).to_vec());
    }
    // A failed unpack says why on stderr only: let the kubelet take the log's tail as the
    // termination message, which `deploy`'s rollout watcher reports. The API server defaults
    // an unset policy to `File` before admission, so `File` counts as unset (with this policy a
    // message the program writes to the file still wins).
    if matches!(c.termination_message_policy.as_deref(), None | Some("File")) {
        c.termination_message_policy = Some("FallbackToLogsOnError".to_string());
    }
}

/// Undoes [`wrap_agent`] where the wrapper is no longer jockey's to run: the image's own
/// entrypoint comes back, and the `args` jockey wrote for the template's `CMD` go with it (they
/// would override another image's `CMD`).
fn unwrap_agent(c: &mut Container) {
    if !c.command.as_deref().is_some_and(is_unpack_wrapper) {
        return;
    }
    c.command = None;
    if c.args
        .as_ref()
        .is_some_and(|a| a.iter().map(String::as_str).eq(DEFAULT_AGENT_ARGS))
    {
        c.args = None;
    }
}

fn remove_unpack_container(pod: &mut PodSpec) {
    if let Some(inits) = pod.init_containers.as_mut() {
        inits.retain(|c| c.name != UNPACK_CONTAINER);
        if inits.is_empty() {
            pod.init_containers = None;
        }
    }
}
