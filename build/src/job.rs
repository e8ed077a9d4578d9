//! How a build Job stands, judged from the Job, its pods and the `FailedCreate` events of Jobs of
//! its name ([`build_step`]), and what a failed one left behind ([`termination_summary`]). Pure:
//! the broker ([`crate::broker`]) reads the objects and writes the verdict on the request.

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Event, Pod};

/// Log lines kept on a request (and shown when a build fails).
pub const FAILURE_LOG_LINES: usize = 20;

/// How a build Job stands, judged from the Job, its pod and its events. Pure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobState {
    Running(String),
    Succeeded,
    Failed(String),
}

pub fn job_state(job: &Job, pods: &[Pod]) -> JobState {
    let status = job.status.clone().unwrap_or_default();
    for c in status.conditions.iter().flatten() {
        if c.status != "True" {
            continue;
        }
        match c.type_.as_str() {
            "Complete" | "SuccessCriteriaMet" => return JobState::Succeeded,
            "Failed" | "FailureTarget" => {
                let reason = c.reason.clone().unwrap_or_else(|| "Failed".into());
                let message = c.message.clone().unwrap_or_default();
                return JobState::Failed(
                    format!("{reason}: {message}")
                        .trim_end_matches(": ")
                        .to_string(),
                );
            }
            _ => {}
        }
    }
    if status.succeeded.unwrap_or(0) > 0 {
        return JobState::Succeeded;
    }
    let Some(pod) = pods.last() else {
        return JobState::Running("waiting for the build pod".into());
    };
    JobState::Running(pod_phase(pod))
}

/// A one-line phase of a build pod for the spinner.
pub fn pod_phase(pod: &Pod) -> String {
    let status = pod.status.clone().unwrap_or_default();
    if let Some(c) = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "PodScheduled" && c.status == "False")
    {
        return format!(
            "waiting for a node ({})",
            c.message
                .clone()
                .unwrap_or_else(|| c.reason.clone().unwrap_or_default())
        );
    }
    for cs in status.container_statuses.iter().flatten() {
        if let Some(w) = cs.state.as_ref().and_then(|s| s.waiting.as_ref()) {
            return format!(
                "starting Kaniko ({})",
                w.reason.clone().unwrap_or_else(|| "waiting".into())
            );
        }
        if cs.state.as_ref().and_then(|s| s.running.as_ref()).is_some() {
            return "building".into();
        }
    }
    match status.phase.as_deref() {
        Some("Pending") | None => "pod pending".into(),
        Some("Running") => "building".into(),
        Some("Succeeded") => "build finished; waiting for the Job to complete".into(),
        Some("Failed") => "build failed; collecting the reason".into(),
        Some(other) => format!("pod {}", other.to_lowercase()),
    }
}

/// Why a build pod cannot start at all (e.g. the Kaniko image cannot be pulled): fail fast.
pub fn pod_blocker(pod: &Pod) -> Option<String> {
    let status = pod.status.as_ref()?;
    for cs in status.container_statuses.iter().flatten() {
        let w = cs.state.as_ref().and_then(|s| s.waiting.as_ref());
        if let Some(w) = w {
            let reason = w.reason.as_deref().unwrap_or("");
            if matches!(
                reason,
                "ImagePullBackOff"
                    | "ErrImagePull"
                    | "InvalidImageName"
                    | "CreateContainerConfigError"
            ) {
                return Some(format!(
                    "{reason}: {} (image {})",
                    w.message.clone().unwrap_or_default(),
                    cs.image
                ));
            }
        }
    }
    None
}

/// What a failed build pod left behind: its container's termination reason and message (which,
/// with `FallbackToLogsOnError`, is the log's tail).
pub fn termination_summary(pod: &Pod) -> Option<String> {
    let status = pod.status.as_ref()?;
    status.container_statuses.iter().flatten().find_map(|cs| {
        let t = cs.state.as_ref()?.terminated.as_ref()?;
        (t.exit_code != 0).then(|| {
            let mut s = format!(
                "container {} exited with code {} ({})",
                cs.name,
                t.exit_code,
                t.reason.clone().unwrap_or_else(|| "Error".into())
            );
            if let Some(m) = t.message.as_deref().filter(|m| !m.trim().is_empty()) {
                s.push_str(":\n");
                s.push_str(m.trim_end());
            }
            s
        })
    })
}

/// The last `n` lines of `text`.
pub fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// What a running build comes to, judged from its Job (`None`: gone), the Job's pods and the
/// `FailedCreate` events of Jobs of its name. Pure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildStep {
    Succeeded,
    Failed(String),
    /// Still going: the phase to show, and the pod whose log `--follow` streams once it runs.
    Running {
        phase: String,
        running_pod: Option<String>,
    },
}

pub fn build_step(job: Option<&Job>, pods: &[Pod], create_failures: &[Event]) -> BuildStep {
    let Some(job) = job else {
        return BuildStep::Failed(
            "the Job was deleted while the deploy waited for it (by someone else, or its TTL)"
                .into(),
        );
    };
    let mut pods = pods.to_vec();
    pods.sort_by_key(|p| p.metadata.creation_timestamp.clone());
    let phase = match job_state(job, &pods) {
        JobState::Succeeded => return BuildStep::Succeeded,
        JobState::Failed(reason) => return BuildStep::Failed(reason),
        JobState::Running(phase) => phase,
    };
    if let Some(pod) = pods.last() {
        if let Some(blocker) = pod_blocker(pod) {
            return BuildStep::Failed(blocker);
        }
        let running = pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
        return BuildStep::Running {
            phase,
            running_pod: pod.metadata.name.clone().filter(|_| running),
        };
    }
    let phase = match create_failure(job, create_failures) {
        Some(msg) => format!("cannot create the build pod: {msg}"),
        None => phase,
    };
    BuildStep::Running {
        phase,
        running_pod: None,
    }
}

/// The latest `FailedCreate` message of this Job (not of an earlier Job of the same name): why
/// its controller cannot create the pod (quota, pod security, a missing service account).
fn create_failure(job: &Job, events: &[Event]) -> Option<String> {
    let uid = job.metadata.uid.as_deref()?;
    events
        .iter()
        .filter(|e| {
            e.reason.as_deref() == Some("FailedCreate")
                && e.involved_object.uid.as_deref() == Some(uid)
        })
        .max_by_key(|e| {
            e.last_timestamp.clone().or(e
                .event_time
                .clone()
                .map(|t| k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(t.0)))
        })
        .and_then(|e| e.message.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job_with(conditions: serde_json::Value) -> Job {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "j"},
            "status": {"conditions": conditions}
        }))
        .unwrap()
    }

    #[test]
    fn job_states() {
        assert_eq!(
            job_state(
                &job_with(serde_json::json!([{"type": "Complete", "status": "True"}])),
                &[]
            ),
            JobState::Succeeded
        );
        assert_eq!(
            job_state(
                &job_with(serde_json::json!([{"type": "Failed", "status": "True",
                    "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"}])),
                &[]
            ),
            JobState::Failed(
                "BackoffLimitExceeded: Job has reached the specified backoff limit".into()
            )
        );
        assert!(matches!(
            job_state(&job_with(serde_json::json!([])), &[]),
            JobState::Running(_)
        ));
    }

    #[test]
    fn pod_reasons() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p"},
            "status": {"phase": "Failed", "containerStatuses": [{
                "name": "kaniko", "image": "k", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"terminated": {"exitCode": 1, "reason": "Error",
                    "message": "error building image: RUN pip install failed"}}
            }]}
        }))
        .unwrap();
        let s = termination_summary(&pod).unwrap();
        assert!(s.contains("exited with code 1"), "{s}");
        assert!(s.contains("RUN pip install failed"), "{s}");

        let pulling: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p"},
            "status": {"phase": "Pending", "containerStatuses": [{
                "name": "kaniko", "image": "gcr.io/x", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"waiting": {"reason": "ImagePullBackOff", "message": "back-off"}}
            }]}
        }))
        .unwrap();
        assert!(pod_blocker(&pulling).unwrap().contains("ImagePullBackOff"));
        assert_eq!(last_lines("a\nb\nc", 2), "b\nc");
    }

    fn job(uid: &str, conditions: serde_json::Value) -> Job {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "j", "uid": uid},
            "status": {"conditions": conditions}
        }))
        .unwrap()
    }

    fn build_pod(name: &str, created: &str, phase: &str, waiting: Option<&str>) -> Pod {
        let state = match waiting {
            Some(reason) => serde_json::json!({"waiting": {"reason": reason, "message": "m"}}),
            None => serde_json::json!({"running": {}}),
        };
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "creationTimestamp": created},
            "status": {"phase": phase, "containerStatuses": [{
                "name": "kaniko", "image": "k", "imageID": "", "ready": false,
                "restartCount": 0, "state": state}]}
        }))
        .unwrap()
    }

    fn failed_create(job_uid: &str, at: &str, message: &str) -> Event {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": format!("e-{at}")},
            "involvedObject": {"kind": "Job", "name": "j", "uid": job_uid},
            "reason": "FailedCreate", "message": message, "lastTimestamp": at
        }))
        .unwrap()
    }

    #[test]
    fn build_steps_from_job_pods_and_events() {
        let running = job("u1", serde_json::json!([]));
        assert_eq!(
            build_step(None, &[], &[]),
            BuildStep::Failed(
                "the Job was deleted while the deploy waited for it (by someone else, or its TTL)"
                    .into()
            )
        );
        let done = job(
            "u1",
            serde_json::json!([{"type": "Complete", "status": "True"}]),
        );
        assert_eq!(build_step(Some(&done), &[], &[]), BuildStep::Succeeded);

        // The newest pod is judged, whatever the order of the store.
        let old = build_pod(
            "p-old",
            "2026-01-01T00:00:00Z",
            "Pending",
            Some("ErrImagePull"),
        );
        let new = build_pod("p-new", "2026-01-01T00:01:00Z", "Running", None);
        assert_eq!(
            build_step(Some(&running), &[new.clone(), old.clone()], &[]),
            BuildStep::Running {
                phase: "building".into(),
                running_pod: Some("p-new".into())
            }
        );
        let BuildStep::Failed(reason) = build_step(
            Some(&running),
            &[build_pod(
                "p",
                "2026-01-01T00:00:00Z",
                "Pending",
                Some("ImagePullBackOff"),
            )],
            &[],
        ) else {
            panic!()
        };
        assert!(reason.contains("ImagePullBackOff"), "{reason}");
    }

    #[test]
    fn only_this_jobs_create_failures_count() {
        let running = job("u2", serde_json::json!([]));
        let events = [
            failed_create(
                "u1",
                "2026-01-01T00:05:00Z",
                "from the previous Job of this name",
            ),
            failed_create("u2", "2026-01-01T00:01:00Z", "older"),
            failed_create("u2", "2026-01-01T00:02:00Z", "exceeded quota"),
        ];
        assert_eq!(
            build_step(Some(&running), &[], &events),
            BuildStep::Running {
                phase: "cannot create the build pod: exceeded quota".into(),
                running_pod: None
            }
        );
    }
}
