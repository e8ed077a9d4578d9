//! Running a Kaniko build for `deploy` ([`run_build`]): check the builder namespace, copy the
//! instance into it, create the Job rendered by [`crate::kaniko`], report its phase, follow its
//! log, and judge the outcome (pure: [`job_state`], [`pod_blocker`], [`termination_summary`]).

use crate::build_credentials::{self, BuildCredentials};
use crate::cluster::{apply_params, is_not_found};
use crate::kaniko::{
    BUILDER_SERVICE_ACCOUNT, BuildPlan, KANIKO_CONTAINER, builder_configmap, kaniko_job,
};
use crate::output::{LinePrinter, Progress};
use crate::watch::Watches;
use anyhow::{Context, Result, bail};
use futures::{AsyncBufReadExt, StreamExt};
use jockey_core::bundle::Bundle;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Event, Namespace, Pod, Secret, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{DeleteParams, ListParams, LogParams, Patch, PatchParams, PostParams};
use kube::runtime::wait::conditions;
use kube::runtime::watcher;
use kube::{Api, Client};
use std::time::{Duration, Instant};

/// Log lines shown when a build fails.
pub const FAILURE_LOG_LINES: usize = 20;

/// Refuses early, with the fix, when the builder namespace or its service account is missing:
/// otherwise the Job would sit there unable to create its pod.
pub async fn check_builder(client: &Client, namespace: &str) -> Result<()> {
    let fix = format!(
        "run `kubectl jockey setup-builder -n {namespace}` (or point BUILDER_NAMESPACE at a \
         prepared namespace)"
    );
    match Api::<Namespace>::all(client.clone()).get(namespace).await {
        Ok(_) => {}
        Err(e) if is_not_found(&e) => bail!("builder namespace {namespace} does not exist; {fix}"),
        Err(e) => return Err(e).with_context(|| format!("reading namespace {namespace}")),
    }
    match Api::<ServiceAccount>::namespaced(client.clone(), namespace)
        .get(BUILDER_SERVICE_ACCOUNT)
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if is_not_found(&e) => {
            bail!("service account {namespace}/{BUILDER_SERVICE_ACCOUNT} does not exist; {fix}")
        }
        Err(e) => Err(e).with_context(|| {
            format!("reading service account {namespace}/{BUILDER_SERVICE_ACCOUNT}")
        }),
    }
}

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

/// Why a build did not finish within `timeout`: its Job's last `FailedCreate` when no pod ever
/// came, else the timeout itself. Pure.
pub fn timed_out(
    job: Option<&Job>,
    pods: &[Pod],
    create_failures: &[Event],
    timeout: Duration,
) -> String {
    match job.and_then(|j| create_failure(j, create_failures)) {
        Some(msg) if pods.is_empty() => format!("the build pod could not be created: {msg}"),
        _ => format!(
            "the build did not finish within --timeout {}",
            crate::duration::show(timeout)
        ),
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

/// Everything a running build needs besides the plan.
pub struct BuildRun<'a> {
    pub client: &'a Client,
    pub plan: &'a BuildPlan,
    pub bundle: &'a Bundle,
    pub follow: bool,
    pub deadline: Instant,
    pub timeout: Duration,
}

/// Runs the build to its end: Ok once the image is pushed, an error with the reason, the log's
/// tail and the fix otherwise (including when `deadline` passes first).
pub async fn run_build(run: BuildRun<'_>) -> Result<()> {
    let (client, plan) = (run.client, run.plan);
    let outcome = drive(run).await;
    if let BuildCredentials::AssumedRole(a) = &plan.credentials {
        // Short-lived as they are, the build's credentials go as soon as it is over, whatever
        // the outcome: nothing else is meant to use them.
        if let Err(e) = build_credentials::remove(client, &plan.namespace, &a.secret).await {
            eprintln!(
                "warning: {e:#}; the credentials expire on their own and the Secret goes with \
                 its Job"
            );
        }
    }
    outcome
}

/// [`run_build`] without the credentials cleanup.
async fn drive(run: BuildRun<'_>) -> Result<()> {
    let BuildRun {
        client,
        plan,
        bundle,
        follow,
        deadline,
        timeout,
    } = run;
    let ns = plan.namespace.as_str();
    let jobs: Api<Job> = Api::namespaced(client.clone(), ns);
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let mut progress = Progress::new(&format!("build {}", plan.image));

    // A previous Job of the same files: reuse a success, attach to a running one, replace a
    // failure (the user is asking to try again).
    match jobs
        .get_opt(&plan.name)
        .await
        .with_context(|| format!("reading Job {ns}/{}", plan.name))?
    {
        Some(job) => match job_state(&job, &[]) {
            JobState::Succeeded => {
                progress.finish(&format!("already built by Job {ns}/{}", plan.name));
                return Ok(());
            }
            JobState::Failed(_) => {
                progress.phase("removing the previous failed build");
                jobs.delete(&plan.name, &DeleteParams::foreground())
                    .await
                    .with_context(|| format!("deleting the failed Job {ns}/{}", plan.name))?;
                let uid = job.metadata.uid.clone().unwrap_or_default();
                wait_gone(&jobs, &plan.name, &uid, deadline).await?;
                create_job(client, plan, bundle, &progress).await?;
            }
            JobState::Running(_) => progress.phase("attaching to the running build"),
        },
        None => {
            progress.phase("creating the build Job");
            create_job(client, plan, bundle, &progress).await?;
        }
    }

    let selector = format!("batch.kubernetes.io/job-name={}", plan.name);
    let mut watches = Watches::default();
    let job_store = watches.add(
        jobs.clone(),
        watcher::Config::default().fields(&format!("metadata.name={}", plan.name)),
    );
    let pod_store = watches.add(pods.clone(), watcher::Config::default().labels(&selector));
    let event_store = watches.add(
        Api::<Event>::namespaced(client.clone(), ns),
        watcher::Config::default().fields(&format!(
            "involvedObject.kind=Job,involvedObject.name={},reason=FailedCreate",
            plan.name
        )),
    );
    let read = || {
        let job = job_store.state().first().map(|j| (**j).clone());
        let job_pods: Vec<Pod> = pod_store.state().iter().map(|p| (**p).clone()).collect();
        let events: Vec<Event> = event_store.state().iter().map(|e| (**e).clone()).collect();
        (job, job_pods, events)
    };
    let mut streaming: Option<tokio::task::JoinHandle<()>> = None;
    let outcome = loop {
        if watches.listed() {
            let (job, job_pods, events) = read();
            match build_step(job.as_ref(), &job_pods, &events) {
                BuildStep::Succeeded => break Ok(()),
                BuildStep::Failed(reason) => break Err(reason),
                BuildStep::Running { phase, running_pod } => {
                    if follow
                        && streaming.is_none()
                        && let Some(name) = running_pod
                    {
                        streaming = Some(tokio::spawn(stream_log(
                            pods.clone(),
                            name,
                            progress.line_printer(),
                        )));
                    }
                    progress.phase(&phase);
                }
            }
        }
        if !watches.changed(deadline).await {
            let (job, job_pods, events) = read();
            break Err(format!(
                "{}{}",
                timed_out(job.as_ref(), &job_pods, &events, timeout),
                watches.error_note()
            ));
        }
    };
    if let Some(handle) = streaming {
        // Give the log stream a moment to print the final lines of a finished build.
        let _ = tokio::time::timeout(Duration::from_secs(2), handle).await;
    }
    match outcome {
        Ok(()) => {
            progress.finish(&format!("pushed {}", plan.image));
            Ok(())
        }
        Err(reason) => {
            drop(progress);
            let details = failure_details(&pods, &selector).await;
            bail!(
                "build Job {ns}/{} failed: {reason}{details}\nfix the build (see the log above), \
                 then deploy again; the full log: kubectl jockey logs-builder -n {ns} --project {}",
                plan.name,
                plan.project
            )
        }
    }
}

/// Writes the build's inputs and its Job: the credentials Secret first (the pod must find it),
/// then the ConfigMap copy, then the Job, which then owns both.
async fn create_job(
    client: &Client,
    plan: &BuildPlan,
    bundle: &Bundle,
    progress: &Progress,
) -> Result<()> {
    let ns = &plan.namespace;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let jobs: Api<Job> = Api::namespaced(client.clone(), ns);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    if let BuildCredentials::AssumedRole(a) = &plan.credentials {
        let issued = build_credentials::issue(a).await?;
        // A Secret of an earlier attempt holds expired or soon-expiring credentials.
        build_credentials::remove(client, ns, &a.secret).await?;
        let secret = build_credentials::credentials_secret(a, ns, plan.labels(), &issued);
        secrets
            .create(&PostParams::default(), &secret)
            .await
            .with_context(|| format!("writing Secret {ns}/{}", a.secret))?;
        progress.line_printer().println(&format!(
            "  build credentials: {} until {} (push to {} only)",
            issued.assumed_role_arn,
            issued.expires,
            plan.image
                .rsplit_once(':')
                .map(|(r, _)| r)
                .unwrap_or_default()
        ));
    }
    let cm = builder_configmap(plan, bundle);
    cms.patch(&plan.name, &apply_params(false), &Patch::Apply(&cm))
        .await
        .with_context(|| format!("writing ConfigMap {ns}/{}", plan.name))?;
    let job = jobs
        .patch(
            &plan.name,
            &apply_params(false),
            &Patch::Apply(&kaniko_job(plan)),
        )
        .await
        .with_context(|| format!("creating Job {ns}/{}", plan.name))?;
    // The ConfigMap copy and the credentials go away with their Job (whose TTL removes it after
    // BUILD_TTL_SECONDS), should the plugin not get to delete them itself.
    if let Some(uid) = job.metadata.uid {
        let owner = serde_json::json!({
            "metadata": { "ownerReferences": [OwnerReference {
                api_version: "batch/v1".into(),
                kind: "Job".into(),
                name: plan.name.clone(),
                uid,
                ..Default::default()
            }]}
        });
        cms.patch(&plan.name, &PatchParams::default(), &Patch::Merge(&owner))
            .await
            .with_context(|| format!("setting the owner of ConfigMap {ns}/{}", plan.name))?;
        if let BuildCredentials::AssumedRole(a) = &plan.credentials {
            secrets
                .patch(&a.secret, &PatchParams::default(), &Patch::Merge(&owner))
                .await
                .with_context(|| format!("setting the owner of Secret {ns}/{}", a.secret))?;
        }
    }
    Ok(())
}

/// Waits until the failed Job `uid` is gone (foreground deletion: its pods first).
async fn wait_gone(jobs: &Api<Job>, name: &str, uid: &str, deadline: Instant) -> Result<()> {
    match crate::watch::until(jobs.clone(), name, conditions::is_deleted(uid), deadline).await {
        Ok(_) => Ok(()),
        Err(t) => bail!(
            "the previous failed build Job {name} is still being deleted{}; try again shortly",
            t.last_error
                .map(|e| format!(" (watching it failed: {e})"))
                .unwrap_or_default()
        ),
    }
}

/// The failed pod's termination summary and the tail of its log, best effort: a build that
/// failed before its pod started has neither.
async fn failure_details(pods: &Api<Pod>, selector: &str) -> String {
    let Ok(list) = pods.list(&ListParams::default().labels(selector)).await else {
        return String::new();
    };
    let Some(pod) = list.items.last() else {
        return String::new();
    };
    let mut out = String::new();
    let summary = termination_summary(pod);
    if let Some(s) = &summary {
        out.push('\n');
        out.push_str(s);
    }
    if let Some(name) = &pod.metadata.name {
        let params = LogParams {
            container: Some(KANIKO_CONTAINER.to_string()),
            tail_lines: Some(FAILURE_LOG_LINES as i64),
            ..Default::default()
        };
        if let Ok(log) = pods.logs(name, &params).await {
            let tail = last_lines(&log, FAILURE_LOG_LINES);
            // The termination message usually is this same tail; print it once.
            if !tail.trim().is_empty()
                && !summary.as_deref().is_some_and(|s| s.contains(tail.trim()))
            {
                out.push_str(&format!(
                    "\nlast {FAILURE_LOG_LINES} lines of the build log:\n{tail}"
                ));
            }
        }
    }
    out
}

/// `--follow`: copies the Kaniko log to stderr, line by line, until the container ends.
async fn stream_log(pods: Api<Pod>, name: String, printer: LinePrinter) {
    let params = LogParams {
        container: Some(KANIKO_CONTAINER.to_string()),
        follow: true,
        ..Default::default()
    };
    match pods.log_stream(&name, &params).await {
        Ok(stream) => {
            let mut lines = stream.lines();
            while let Some(Ok(line)) = lines.next().await {
                printer.println(&format!("  | {line}"));
            }
        }
        Err(e) => printer.println(&format!("  | (build log unavailable: {e})")),
    }
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
        let t = Duration::from_secs(90);
        assert_eq!(
            timed_out(Some(&running), &[], &events, t),
            "the build pod could not be created: exceeded quota"
        );
        assert_eq!(
            timed_out(Some(&running), &[], &events[..1], t),
            "the build did not finish within --timeout 1m 30s"
        );
    }
}
