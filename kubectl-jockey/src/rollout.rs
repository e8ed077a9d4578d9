//! Waiting for a Deployment's rollout, as `kubectl rollout status` does, but failing fast with
//! the pod's reason when the new pods cannot pull their image, crash, or cannot be created,
//! instead of sitting out the timeout.

use crate::output::Progress;
use anyhow::{Context, Result, bail};
use jockey_core::ProjectId;
use jockey_core::names::LABEL_APP;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::ListParams;
use kube::{Api, Client};
use std::time::{Duration, Instant};

/// Waiting reasons of a container that will not fix themselves.
pub const FATAL_WAITING_REASONS: &[&str] = &[
    "ImagePullBackOff",
    "ErrImagePull",
    "CrashLoopBackOff",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
];

const REVISION_ANNOTATION: &str = "deployment.kubernetes.io/revision";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rollout {
    Progressing(String),
    Done,
    Failed(String),
}

/// Judges a rollout from the Deployment and the pods of its newest ReplicaSet. Pure.
pub fn judge(dep: &Deployment, new_pods: &[Pod]) -> Rollout {
    let generation = dep.metadata.generation.unwrap_or(0);
    let status = dep.status.clone().unwrap_or_default();
    for c in status.conditions.iter().flatten() {
        let msg = c.message.clone().unwrap_or_default();
        if c.type_.as_deref() == Some("Progressing")
            && c.status.as_deref() == Some("False")
            && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
        {
            return Rollout::Failed(format!("ProgressDeadlineExceeded: {msg}"));
        }
        if c.type_.as_deref() == Some("ReplicaFailure") && c.status.as_deref() == Some("True") {
            return Rollout::Failed(format!(
                "ReplicaFailure ({}): {msg}",
                c.reason.clone().unwrap_or_default()
            ));
        }
    }
    for pod in new_pods {
        if let Some(reason) = pod_failure(pod) {
            return Rollout::Failed(reason);
        }
    }
    if status.observed_generation.unwrap_or(0) < generation {
        return Rollout::Progressing("waiting for the deployment controller".into());
    }
    let want = dep.spec.replicas.unwrap_or(1);
    let updated = status.updated_replicas.unwrap_or(0);
    let total = status.replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    if updated < want {
        return Rollout::Progressing(format!("{updated} of {want} new replicas updated"));
    }
    if total > updated {
        return Rollout::Progressing(format!(
            "{} old replicas pending termination",
            total - updated
        ));
    }
    if available < updated {
        return Rollout::Progressing(format!(
            "{available} of {updated} updated replicas available"
        ));
    }
    Rollout::Done
}

/// Why a pod of the new ReplicaSet will not become ready, naming the pod and container.
pub fn pod_failure(pod: &Pod) -> Option<String> {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let status = pod.status.as_ref()?;
    let all = status
        .init_container_statuses
        .iter()
        .flatten()
        .chain(status.container_statuses.iter().flatten());
    for cs in all {
        let Some(w) = cs.state.as_ref().and_then(|s| s.waiting.as_ref()) else {
            continue;
        };
        let reason = w.reason.as_deref().unwrap_or("");
        if !FATAL_WAITING_REASONS.contains(&reason) {
            continue;
        }
        let mut s = format!("pod {name}: container {}: {reason}", cs.name);
        if let Some(m) = w.message.as_deref().filter(|m| !m.is_empty()) {
            s.push_str(&format!(": {m}"));
        }
        if let Some(t) = cs.last_state.as_ref().and_then(|l| l.terminated.as_ref()) {
            s.push_str(&format!(
                " (last exit code {}{})",
                t.exit_code,
                t.reason
                    .as_deref()
                    .map(|r| format!(", {r}"))
                    .unwrap_or_default()
            ));
            if let Some(m) = t.message.as_deref().filter(|m| !m.trim().is_empty()) {
                s.push_str(&format!(":\n{}", m.trim_end()));
            }
        }
        if reason.contains("ImagePull") || reason == "InvalidImageName" {
            s.push_str(&format!("; image {}", cs.image));
        }
        return Some(s);
    }
    if status.phase.as_deref() == Some("Failed") {
        return Some(format!(
            "pod {name} failed: {}",
            status
                .message
                .clone()
                .or(status.reason.clone())
                .unwrap_or_default()
        ));
    }
    None
}

/// The fix to suggest for a failed rollout.
fn fix_for(reason: &str, project: &ProjectId, ns: &str) -> String {
    if reason.contains("ImagePull") || reason.contains("InvalidImageName") {
        format!(
            "check that the image exists and the nodes may pull it (IMAGE_REGISTRY, node IAM \
             role); `kubectl jockey status {project} -n {ns}` shows the events"
        )
    } else if reason.contains("CrashLoopBackOff") || reason.contains("failed") {
        format!(
            "the server exits on start: read `kubectl jockey logs {project} -n {ns}`, fix it and \
             deploy again (or `kubectl jockey rollback {project} -n {ns}`)"
        )
    } else {
        format!("`kubectl jockey status {project} -n {ns}` shows the events")
    }
}

/// The pods of the Deployment's newest ReplicaSet (by revision).
async fn new_pods(client: &Client, ns: &str, dep: &Deployment, selector: &str) -> Result<Vec<Pod>> {
    let revision = dep
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(REVISION_ANNOTATION))
        .cloned();
    let Some(revision) = revision else {
        return Ok(Vec::new());
    };
    let uid = dep.metadata.uid.clone().unwrap_or_default();
    let rss = Api::<ReplicaSet>::namespaced(client.clone(), ns)
        .list(&ListParams::default().labels(selector))
        .await
        .context("listing ReplicaSets")?;
    let Some(rs) = rss.items.into_iter().find(|rs| {
        rs.metadata
            .owner_references
            .iter()
            .flatten()
            .any(|o| o.uid == uid)
            && rs
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(REVISION_ANNOTATION))
                == Some(&revision)
    }) else {
        return Ok(Vec::new());
    };
    let Some(hash) = rs
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get("pod-template-hash"))
        .cloned()
    else {
        return Ok(Vec::new());
    };
    Ok(Api::<Pod>::namespaced(client.clone(), ns)
        .list(&ListParams::default().labels(&format!("{selector},pod-template-hash={hash}")))
        .await
        .context("listing pods")?
        .items)
}

/// Waits until the project's Deployment is rolled out, or fails with the reason and the fix.
pub async fn wait(
    client: &Client,
    ns: &str,
    project: &ProjectId,
    deadline: Instant,
    timeout: Duration,
) -> Result<()> {
    let name = project.deployment_name();
    let api: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let selector = format!("{LABEL_APP}={project}");
    let mut progress = Progress::new(&format!("rollout {ns}/{name}"));
    loop {
        let dep = api
            .get(&name)
            .await
            .with_context(|| format!("reading Deployment {ns}/{name}"))?;
        let pods = new_pods(client, ns, &dep, &selector).await?;
        match judge(&dep, &pods) {
            Rollout::Done => {
                progress.finish("rolled out");
                return Ok(());
            }
            Rollout::Failed(reason) => {
                drop(progress);
                bail!(
                    "Deployment {ns}/{name} cannot roll out: {reason}\n{}",
                    fix_for(&reason, project, ns)
                );
            }
            Rollout::Progressing(phase) => progress.phase(&phase),
        }
        if Instant::now() >= deadline {
            drop(progress);
            bail!(
                "Deployment {ns}/{name} did not become available within --timeout {}s; \
                 `kubectl jockey status {project} -n {ns}` shows why; deploy again with a longer \
                 --timeout if it is just slow",
                timeout.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The load balancer's address of an Ingress, once the controller reported one.
pub async fn ingress_address(api: &Api<Ingress>, name: &str) -> Option<String> {
    let ing = api.get_opt(name).await.ok()??;
    address_of(&ing)
}

pub fn address_of(ing: &Ingress) -> Option<String> {
    ing.status
        .as_ref()?
        .load_balancer
        .as_ref()?
        .ingress
        .as_ref()?
        .iter()
        .find_map(|i| i.hostname.clone().or(i.ip.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn dep(status: serde_json::Value) -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": "demo", "generation": 2},
            "spec": {"replicas": 1, "selector": {}, "template": {}},
            "status": status
        }))
        .unwrap()
    }

    fn pod(state: serde_json::Value, last: serde_json::Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "demo-abc"},
            "status": {"phase": "Running", "containerStatuses": [{
                "name": "server", "image": "r/hosting/demo:0123456789abcdef", "imageID": "",
                "ready": false, "restartCount": 3, "state": state, "lastState": last
            }]}
        }))
        .unwrap()
    }

    #[test]
    fn done_only_when_the_new_replicas_are_available_and_old_ones_gone() {
        let ok = json!({"observedGeneration": 2, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 1});
        assert_eq!(judge(&dep(ok), &[]), Rollout::Done);
        let stale = json!({"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 1});
        assert!(matches!(judge(&dep(stale), &[]), Rollout::Progressing(_)));
        let old = json!({"observedGeneration": 2, "replicas": 2, "updatedReplicas": 1, "availableReplicas": 1});
        assert!(matches!(judge(&dep(old), &[]), Rollout::Progressing(m) if m.contains("old")));
        let unavailable = json!({"observedGeneration": 2, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 0});
        assert!(matches!(
            judge(&dep(unavailable), &[]),
            Rollout::Progressing(_)
        ));
    }

    #[test]
    fn fails_fast_on_deadline_and_replica_failure() {
        let deadline = json!({"observedGeneration": 2, "conditions": [{"type": "Progressing",
            "status": "False", "reason": "ProgressDeadlineExceeded",
            "message": "ReplicaSet \"demo-abc\" has timed out progressing."}]});
        assert!(
            matches!(judge(&dep(deadline), &[]), Rollout::Failed(m) if m.starts_with("ProgressDeadlineExceeded"))
        );
        let quota = json!({"observedGeneration": 2, "conditions": [{"type": "ReplicaFailure",
            "status": "True", "reason": "FailedCreate",
            "message": "pods \"demo-abc\" is forbidden: exceeded quota"}]});
        assert!(
            matches!(judge(&dep(quota), &[]), Rollout::Failed(m) if m.contains("exceeded quota"))
        );
    }

    #[test]
    fn fails_fast_on_crashing_or_unpullable_pods_with_their_reason() {
        let status = json!({"observedGeneration": 2, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 0});
        let crash = pod(
            json!({"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s restarting failed container"}}),
            json!({"terminated": {"exitCode": 1, "reason": "Error", "message": "ModuleNotFoundError: fastapi"}}),
        );
        let Rollout::Failed(m) = judge(&dep(status.clone()), &[crash]) else {
            panic!()
        };
        assert!(
            m.contains("pod demo-abc: container server: CrashLoopBackOff"),
            "{m}"
        );
        assert!(m.contains("last exit code 1, Error"), "{m}");
        assert!(m.contains("ModuleNotFoundError"), "{m}");

        let pull = pod(
            json!({"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling"}}),
            json!({}),
        );
        let Rollout::Failed(m) = judge(&dep(status.clone()), &[pull]) else {
            panic!()
        };
        assert!(
            m.contains("ImagePullBackOff") && m.contains("image r/hosting/demo"),
            "{m}"
        );

        let creating = pod(
            json!({"waiting": {"reason": "ContainerCreating"}}),
            json!({}),
        );
        assert!(matches!(
            judge(&dep(status), &[creating]),
            Rollout::Progressing(_)
        ));
    }
}
