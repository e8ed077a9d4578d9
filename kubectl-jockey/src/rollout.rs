//! Waiting for a Deployment's rollout, as `kubectl rollout status` does, but failing fast with
//! the pod's reason when the new pods cannot pull their image, crash, or cannot be created,
//! instead of sitting out the timeout. Waiting for the shared ALB to serve the project comes
//! after, in [`crate::alb::watch`].

use crate::output::Progress;
use crate::watch::Watches;
use anyhow::{Result, bail};
use jockey_core::ProjectId;
use jockey_core::names::LABEL_APP;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::watcher;
use kube::{Api, Client};
use std::collections::BTreeMap;
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
const POD_TEMPLATE_HASH: &str = "pod-template-hash";
/// The API server's default `spec.progressDeadlineSeconds`.
const DEFAULT_PROGRESS_DEADLINE_SECONDS: i32 = 600;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rollout {
    Progressing(String),
    Done,
    Failed(String),
}

/// Judges a rollout from the Deployment, the name of its newest ReplicaSet and that ReplicaSet's
/// pods. Pure.
///
/// Only the generation being rolled out is judged: until the deployment controller has observed
/// it, the conditions, the revision and so the "newest" ReplicaSet are still the previous
/// rollout's (deploying the fix for a crash loop must not fail on the old crash). A
/// `ProgressDeadlineExceeded` is this rollout's only when it names the newest ReplicaSet and
/// the rollout has been waited on for at least `progressDeadlineSeconds` (`waited`): sooner, it
/// is the controller's stale verdict on an earlier rollout, which it keeps (even re-issued under
/// the new ReplicaSet's name when a rollout returns to an existing one) until progress shows.
pub fn judge(
    dep: &Deployment,
    new_rs: Option<&str>,
    new_pods: &[Pod],
    waited: Duration,
) -> Rollout {
    let deadline = Duration::from_secs(
        dep.spec
            .progress_deadline_seconds
            .unwrap_or(DEFAULT_PROGRESS_DEADLINE_SECONDS)
            .max(0) as u64,
    );
    let generation = dep.metadata.generation.unwrap_or(0);
    let status = dep.status.clone().unwrap_or_default();
    if status.observed_generation.unwrap_or(0) < generation {
        return Rollout::Progressing("waiting for the deployment controller".into());
    }
    for c in status.conditions.iter().flatten() {
        let msg = c.message.clone().unwrap_or_default();
        if c.type_.as_deref() == Some("Progressing")
            && c.status.as_deref() == Some("False")
            && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
            && new_rs.is_none_or(|rs| msg.contains(&format!("\"{rs}\"")))
            && waited >= deadline
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

/// The generation being rolled out: the Deployment's newest ReplicaSet (by revision, owned by
/// this Deployment) and that ReplicaSet's pods, among the project's ReplicaSets and pods. Until
/// the deployment controller has observed the Deployment's generation, the revision is still
/// the previous rollout's: no ReplicaSet or pod is judged yet. Pure.
pub fn new_generation(
    dep: &Deployment,
    replica_sets: &[ReplicaSet],
    pods: &[Pod],
) -> (Option<String>, Vec<Pod>) {
    let observed = dep
        .status
        .as_ref()
        .and_then(|s| s.observed_generation)
        .unwrap_or(0)
        >= dep.metadata.generation.unwrap_or(0);
    let revision = dep
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(REVISION_ANNOTATION));
    let (true, Some(revision)) = (observed, revision) else {
        return (None, Vec::new());
    };
    let uid = dep.metadata.uid.as_deref().unwrap_or_default();
    let Some(rs) = replica_sets.iter().find(|rs| {
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
                == Some(revision)
    }) else {
        return (None, Vec::new());
    };
    let hash_label = |labels: Option<&BTreeMap<String, String>>| {
        labels.and_then(|l| l.get(POD_TEMPLATE_HASH)).cloned()
    };
    let Some(hash) = hash_label(rs.metadata.labels.as_ref()) else {
        return (rs.metadata.name.clone(), Vec::new());
    };
    let new_pods = pods
        .iter()
        .filter(|p| hash_label(p.metadata.labels.as_ref()).as_ref() == Some(&hash))
        .cloned()
        .collect();
    (rs.metadata.name.clone(), new_pods)
}

/// When a `ProgressDeadlineExceeded` the controller already reported becomes this rollout's
/// verdict without any object changing (see [`judge`]): the rollout's start plus the
/// Deployment's progress deadline.
fn deadline_recheck(dep: &Deployment, started: Instant) -> Instant {
    let secs = dep
        .spec
        .progress_deadline_seconds
        .unwrap_or(DEFAULT_PROGRESS_DEADLINE_SECONDS)
        .max(0) as u64;
    started + Duration::from_secs(secs)
}

/// Waits until the project's Deployment is rolled out, or fails with the reason and the fix.
/// The Deployment, the project's ReplicaSets and pods are watched (resuming after an API server
/// restart); each change is judged by [`new_generation`] and [`judge`].
pub async fn wait(
    client: &Client,
    ns: &str,
    project: &ProjectId,
    deadline: Instant,
    timeout: Duration,
) -> Result<()> {
    let name = project.deployment_name();
    let selector = format!("{LABEL_APP}={project}");
    let mut progress = Progress::new(&format!("rollout {ns}/{name}"));
    let started = Instant::now();
    let mut watches = Watches::default();
    let deployments = watches.add(
        Api::<Deployment>::namespaced(client.clone(), ns),
        watcher::Config::default().fields(&format!("metadata.name={name}")),
    );
    let replica_sets = watches.add(
        Api::<ReplicaSet>::namespaced(client.clone(), ns),
        watcher::Config::default().labels(&selector),
    );
    let pods = watches.add(
        Api::<Pod>::namespaced(client.clone(), ns),
        watcher::Config::default().labels(&selector),
    );
    let mut recheck = None;
    loop {
        if watches.listed() {
            let Some(dep) = deployments.state().into_iter().next() else {
                drop(progress);
                bail!(
                    "Deployment {ns}/{name} is gone: something deleted it while its rollout was \
                     awaited; deploy again"
                );
            };
            let rss: Vec<ReplicaSet> = replica_sets.state().iter().map(|r| (**r).clone()).collect();
            let all_pods: Vec<Pod> = pods.state().iter().map(|p| (**p).clone()).collect();
            let (rs, new_pods) = new_generation(&dep, &rss, &all_pods);
            match judge(&dep, rs.as_deref(), &new_pods, started.elapsed()) {
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
            recheck = Some(deadline_recheck(&dep, started)).filter(|r| *r > Instant::now());
        }
        let until = recheck.map_or(deadline, |r| r.min(deadline));
        if !watches.changed(until).await && Instant::now() >= deadline {
            drop(progress);
            bail!(
                "Deployment {ns}/{name} did not become available within --timeout {}{}; \
                 `kubectl jockey status {project} -n {ns}` shows why; deploy again with a longer \
                 --timeout if it is just slow",
                crate::duration::show(timeout),
                watches.error_note()
            );
        }
    }
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
        assert_eq!(judge(&dep(ok), None, &[], LONG), Rollout::Done);
        let stale = json!({"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 1});
        assert!(matches!(
            judge(&dep(stale), None, &[], LONG),
            Rollout::Progressing(_)
        ));
        let old = json!({"observedGeneration": 2, "replicas": 2, "updatedReplicas": 1, "availableReplicas": 1});
        assert!(
            matches!(judge(&dep(old), None, &[], LONG), Rollout::Progressing(m) if m.contains("old"))
        );
        let unavailable = json!({"observedGeneration": 2, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 0});
        assert!(matches!(
            judge(&dep(unavailable), None, &[], LONG),
            Rollout::Progressing(_)
        ));
    }

    #[test]
    fn fails_fast_on_deadline_and_replica_failure() {
        let deadline = json!({"observedGeneration": 2, "conditions": [{"type": "Progressing",
            "status": "False", "reason": "ProgressDeadlineExceeded",
            "message": "ReplicaSet \"demo-abc\" has timed out progressing."}]});
        assert!(
            matches!(judge(&dep(deadline), Some("demo-abc"), &[], LONG), Rollout::Failed(m) if m.starts_with("ProgressDeadlineExceeded"))
        );
        let quota = json!({"observedGeneration": 2, "conditions": [{"type": "ReplicaFailure",
            "status": "True", "reason": "FailedCreate",
            "message": "pods \"demo-abc\" is forbidden: exceeded quota"}]});
        assert!(
            matches!(judge(&dep(quota), None, &[], LONG), Rollout::Failed(m) if m.contains("exceeded quota"))
        );
    }

    #[test]
    fn fails_fast_on_crashing_or_unpullable_pods_with_their_reason() {
        let status = json!({"observedGeneration": 2, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 0});
        let crash = pod(
            json!({"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s restarting failed container"}}),
            json!({"terminated": {"exitCode": 1, "reason": "Error", "message": "ModuleNotFoundError: fastapi"}}),
        );
        let Rollout::Failed(m) = judge(&dep(status.clone()), None, &[crash], LONG) else {
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
        let Rollout::Failed(m) = judge(&dep(status.clone()), None, &[pull], LONG) else {
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
            judge(&dep(status), None, &[creating], LONG),
            Rollout::Progressing(_)
        ));
    }

    /// Longer than any progress deadline here: a deadline verdict can be this rollout's.
    const LONG: Duration = Duration::from_secs(3600);

    #[test]
    fn a_deadline_verdict_sooner_than_the_deadline_is_stale() {
        let deadline = json!({"observedGeneration": 2, "conditions": [{"type": "Progressing",
            "status": "False", "reason": "ProgressDeadlineExceeded",
            "message": "ReplicaSet \"demo-new\" has timed out progressing."}]});
        assert!(matches!(
            judge(
                &dep(deadline),
                Some("demo-new"),
                &[],
                Duration::from_secs(5)
            ),
            Rollout::Progressing(_)
        ));
    }

    #[test]
    fn only_the_observed_generation_is_judged() {
        // The controller has not seen generation 2 yet: the old rollout's deadline and crash
        // are not this rollout's.
        let stale = json!({"observedGeneration": 1, "conditions": [{"type": "Progressing",
            "status": "False", "reason": "ProgressDeadlineExceeded",
            "message": "ReplicaSet \"demo-old\" has timed out progressing."}]});
        let crash = pod(
            json!({"waiting": {"reason": "CrashLoopBackOff"}}),
            json!({"terminated": {"exitCode": 1}}),
        );
        assert!(matches!(
            judge(&dep(stale.clone()), Some("demo-old"), &[crash], LONG),
            Rollout::Progressing(_)
        ));
        // Observed, but the deadline names an earlier ReplicaSet than the newest.
        let mut seen = stale;
        seen["observedGeneration"] = json!(2);
        seen["replicas"] = json!(1);
        seen["updatedReplicas"] = json!(1);
        seen["availableReplicas"] = json!(1);
        assert_eq!(
            judge(&dep(seen.clone()), Some("demo-new"), &[], LONG),
            Rollout::Done
        );
        assert!(matches!(
            judge(&dep(seen), Some("demo-old"), &[], LONG),
            Rollout::Failed(_)
        ));
    }

    fn owned_rs(name: &str, revision: &str, hash: &str, owner: &str) -> ReplicaSet {
        serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {"app": "demo", "pod-template-hash": hash},
                "annotations": {"deployment.kubernetes.io/revision": revision},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment",
                    "name": "demo", "uid": owner}]}
        }))
        .unwrap()
    }

    fn hashed_pod(name: &str, hash: &str) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {"app": "demo", "pod-template-hash": hash}}
        }))
        .unwrap()
    }

    fn rolling(generation: i64, observed: i64, revision: &str) -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": "demo", "uid": "dep-uid", "generation": generation,
                "annotations": {"deployment.kubernetes.io/revision": revision}},
            "spec": {"selector": {}, "template": {}},
            "status": {"observedGeneration": observed}
        }))
        .unwrap()
    }

    #[test]
    fn the_new_generation_is_the_newest_owned_replica_set_and_its_pods_only() {
        let rss = [
            owned_rs("demo-old", "1", "old", "dep-uid"),
            owned_rs("demo-new", "2", "new", "dep-uid"),
            // Same revision, another owner (a Deployment of the same name deleted and recreated).
            owned_rs("demo-stray", "2", "stray", "other-uid"),
        ];
        let pods = [
            hashed_pod("demo-old-a", "old"),
            hashed_pod("demo-new-a", "new"),
            hashed_pod("demo-new-b", "new"),
            hashed_pod("demo-stray-a", "stray"),
        ];
        let (rs, new) = new_generation(&rolling(2, 2, "2"), &rss, &pods);
        assert_eq!(rs.as_deref(), Some("demo-new"));
        let names: Vec<_> = new.iter().filter_map(|p| p.metadata.name.clone()).collect();
        assert_eq!(names, ["demo-new-a", "demo-new-b"]);
    }

    #[test]
    fn nothing_is_judged_before_the_controller_observed_the_generation() {
        let rss = [owned_rs("demo-old", "1", "old", "dep-uid")];
        let pods = [hashed_pod("demo-old-a", "old")];
        // Generation 2 not yet observed: revision 1 is the previous rollout's.
        assert_eq!(
            new_generation(&rolling(2, 1, "1"), &rss, &pods),
            (None, Vec::new())
        );
        // Observed, but its ReplicaSet is not created (or not listed) yet.
        assert_eq!(
            new_generation(&rolling(2, 2, "2"), &rss, &pods),
            (None, Vec::new())
        );
    }

    #[test]
    fn a_stale_deadline_is_rechecked_when_the_deadline_has_passed() {
        let started = Instant::now();
        let mut d = rolling(2, 2, "2");
        d.spec.progress_deadline_seconds = Some(30);
        assert_eq!(
            deadline_recheck(&d, started),
            started + Duration::from_secs(30)
        );
        d.spec.progress_deadline_seconds = None;
        assert_eq!(
            deadline_recheck(&d, started),
            started + Duration::from_secs(600)
        );
    }
}
