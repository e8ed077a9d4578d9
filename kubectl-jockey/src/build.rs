//! The Kaniko build: rendering the Job (pure: [`BuildPlan`], [`builder_configmap`],
//! [`kaniko_job`]) and running it ([`run_build`]: copy the instance into the builder namespace,
//! create the Job, report its phase, follow its log, judge the outcome).
//!
//! What never happens here: a credential in a ConfigMap or an image layer. The registry
//! credentials reach Kaniko only as environment variables referencing the `aws-credentials`
//! Secret; the bundle was stripped of secret-looking files by the core before it got here.

use crate::cluster::{apply_params, is_not_found};
use crate::output::{LinePrinter, Progress};
use anyhow::{Context, Result, bail};
use futures::{AsyncBufReadExt, StreamExt};
use jockey_core::bundle::{Bundle, instance_labels};
use jockey_core::names::{ANNOTATION_IMAGE, INSTANCE_TAR_KEY, LABEL_PROJECT};
use jockey_core::{Config, ContentHash, ProjectId};
use k8s_openapi::ByteString;
use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapVolumeSource, Container, EnvVar, EnvVarSource, Event, KeyToPath, Namespace,
    Pod, PodSpec, PodTemplateSpec, ResourceRequirements, SecretKeySelector, ServiceAccount, Volume,
    VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{DeleteParams, ListParams, LogParams, Patch, PatchParams};
use kube::{Api, Client};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Service account the build pods run as (created by `setup-builder`).
pub const BUILDER_SERVICE_ACCOUNT: &str = "jockey-builder";
/// Secret in the builder namespace with keys `access-key` and `secret-key`.
pub const AWS_CREDENTIALS_SECRET: &str = "aws-credentials";
pub const AWS_ACCESS_KEY_KEY: &str = "access-key";
pub const AWS_SECRET_KEY_KEY: &str = "secret-key";
/// Present when `setup-builder` found temporary credentials.
pub const AWS_SESSION_TOKEN_KEY: &str = "session-token";
/// Name of the Kaniko container (for logs).
pub const KANIKO_CONTAINER: &str = "kaniko";
/// Marks build Jobs, their pods and their ConfigMaps, so `logs-builder` and `gc` find them.
pub const LABEL_COMPONENT: &str = "app.kubernetes.io/component";
pub const COMPONENT_BUILD: &str = "build";
/// Annotation on the build Job naming the image it pushes.
pub const ANNOTATION_DESTINATION: &str = "jockey.agentops.ai/destination";
/// Where the build pod mounts its ConfigMap.
const WORKSPACE: &str = "/workspace";
/// Key of the built-in Dockerfile in the builder's ConfigMap copy.
const TEMPLATE_DOCKERFILE_KEY: &str = "Dockerfile";
/// Key of the Docker client config telling Kaniko to use the ECR credential helper.
const DOCKER_CONFIG_KEY: &str = "config.json";
/// Finished build Jobs (and, through their owner reference, their ConfigMap copies) are kept
/// this long so that `logs-builder` can still show what happened.
pub const BUILD_TTL_SECONDS: i32 = 3600;
/// Log lines shown when a build fails.
pub const FAILURE_LOG_LINES: usize = 20;

/// The Dockerfile used when the project has none: a plain Python server. `server.py` listens on
/// `$PORT` (8080) and answers `/health`, which the Deployment's probes and the ALB health check
/// expect. Dependencies are installed only when `requirements.txt` exists. `COPY . /app` gives
/// /app the mode of Kaniko's unpacked tar context, 0750 root, which the agent user could not
/// enter (`can't open file '/app/server.py': Permission denied`): it is opened up again.
pub const PYTHON_DOCKERFILE: &str = r#"# Built-in template of kubectl-jockey, used because the project has no Dockerfile.
FROM python:3.12-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PORT=8080
WORKDIR /app
COPY . /app
RUN if [ -f requirements.txt ]; then pip install --no-cache-dir -r requirements.txt; fi \
 && chmod 0755 /app \
 && useradd --system --uid 10001 --no-create-home agent
USER 10001
EXPOSE 8080
CMD ["python", "server.py"]
"#;

/// Everything a build needs, decided before anything is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildPlan {
    pub project: ProjectId,
    pub hash: ContentHash,
    /// The builder namespace.
    pub namespace: String,
    /// Name of the Job and of the ConfigMap copy in the builder namespace.
    pub name: String,
    /// `<registry>/<prefix>/PROJECT:<h>`.
    pub image: String,
    pub cache_repo: String,
    pub kaniko_image: String,
    /// Whether the project brings its own Dockerfile; otherwise [`PYTHON_DOCKERFILE`].
    pub own_dockerfile: bool,
    /// Kaniko authenticates with the ECR credential helper for an ECR registry.
    pub ecr_registry: Option<String>,
    pub aws_region: Option<String>,
    /// The Job's `activeDeadlineSeconds`: the cluster stops a build the plugin gave up on.
    pub deadline_seconds: i64,
}

impl BuildPlan {
    pub fn new(
        cfg: &Config,
        project: &ProjectId,
        bundle: &Bundle,
        timeout: Duration,
    ) -> Result<Self> {
        let Some(registry) = cfg.image_registry.as_deref() else {
            bail!(
                "cannot build the image of {project}: IMAGE_REGISTRY is not set; set it (or pass \
                 --image-registry) to the registry to push to, e.g. \
                 123456789012.dkr.ecr.us-east-1.amazonaws.com"
            );
        };
        let prefix = &cfg.image_repository_prefix;
        let ecr = registry.contains(".dkr.ecr.").then(|| registry.to_string());
        // The region of an ECR registry is part of its host name; it wins over AWS_REGION.
        let region = ecr
            .as_deref()
            .and_then(|r| r.split(".dkr.ecr.").nth(1))
            .and_then(|rest| rest.split('.').next())
            .map(str::to_string)
            .or_else(|| cfg.aws_region.clone());
        Ok(Self {
            project: project.clone(),
            hash: bundle.hash.clone(),
            namespace: cfg.builder_namespace.clone(),
            name: build_name(project, &bundle.hash),
            image: project.image(registry, prefix, &bundle.hash),
            // One cache repository per project: a tenant's layers are never offered to another.
            cache_repo: format!(
                "{}/{}/cache",
                registry.trim_end_matches('/'),
                project.repository(prefix)
            ),
            kaniko_image: cfg.kaniko_image.clone(),
            own_dockerfile: bundle.has_dockerfile,
            ecr_registry: ecr,
            aws_region: region,
            deadline_seconds: timeout.as_secs().max(60) as i64,
        })
    }

    fn labels(&self) -> BTreeMap<String, String> {
        let mut labels = instance_labels(&self.project, &self.hash);
        labels.insert(LABEL_COMPONENT.to_string(), COMPONENT_BUILD.to_string());
        labels
    }
}

/// `<project>-build-<h>`, at most 63 characters: a project id longer than 40 characters is cut
/// and suffixed with a digest of the whole id, so two projects never share a build name.
pub fn build_name(project: &ProjectId, hash: &ContentHash) -> String {
    const MAX_PROJECT_PART: usize = 63 - "-build-".len() - 16;
    let p = project.as_str();
    let part = if p.len() <= MAX_PROJECT_PART {
        p.to_string()
    } else {
        let digest = hex::encode(Sha256::digest(p.as_bytes()));
        let keep = MAX_PROJECT_PART - 9;
        format!("{}-{}", p[..keep].trim_end_matches('-'), &digest[..8])
    };
    format!("{part}-build-{}", hash.short())
}

/// The copy of the instance in the builder namespace, plus what Kaniko needs besides the files:
/// the built-in Dockerfile when the project has none, and a Docker config naming the ECR
/// credential helper (no credential in it). Not immutable: it is a build input that lives as long
/// as its Job, and the template may differ between plugin versions.
pub fn builder_configmap(plan: &BuildPlan, bundle: &Bundle) -> ConfigMap {
    let mut data = BTreeMap::new();
    if !plan.own_dockerfile {
        data.insert(
            TEMPLATE_DOCKERFILE_KEY.to_string(),
            PYTHON_DOCKERFILE.to_string(),
        );
    }
    if let Some(registry) = &plan.ecr_registry {
        data.insert(
            DOCKER_CONFIG_KEY.to_string(),
            serde_json::json!({ "credHelpers": { registry: "ecr-login" } }).to_string(),
        );
    }
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(plan.name.clone()),
            namespace: Some(plan.namespace.clone()),
            labels: Some(plan.labels()),
            annotations: Some(BTreeMap::from([(
                jockey_core::names::ANNOTATION_CONTENT_SHA256.to_string(),
                plan.hash.full().to_string(),
            )])),
            ..Default::default()
        },
        binary_data: Some(BTreeMap::from([(
            INSTANCE_TAR_KEY.to_string(),
            ByteString(bundle.gz.clone()),
        )])),
        data: (!data.is_empty()).then_some(data),
        ..Default::default()
    }
}

/// The Kaniko Job building `plan.image` from the tar in the ConfigMap copy.
pub fn kaniko_job(plan: &BuildPlan) -> Job {
    let dockerfile = if plan.own_dockerfile {
        // Relative: resolved inside the extracted context.
        "Dockerfile".to_string()
    } else {
        format!("{WORKSPACE}/{TEMPLATE_DOCKERFILE_KEY}")
    };
    let args = vec![
        format!("--context=tar://{WORKSPACE}/{INSTANCE_TAR_KEY}"),
        format!("--dockerfile={dockerfile}"),
        format!("--destination={}", plan.image),
        "--cache=true".to_string(),
        format!("--cache-repo={}", plan.cache_repo),
        // Same files, same layers: keeps pushes small and digests stable between rebuilds.
        "--reproducible".to_string(),
        "--snapshot-mode=redo".to_string(),
        "--verbosity=info".to_string(),
    ];
    let secret_env = |name: &str, key: &str| EnvVar {
        name: name.to_string(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: AWS_CREDENTIALS_SECRET.to_string(),
                key: key.to_string(),
                // A registry that needs no credentials (a local one) builds without the Secret.
                optional: Some(true),
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut env = vec![
        secret_env("AWS_ACCESS_KEY_ID", AWS_ACCESS_KEY_KEY),
        secret_env("AWS_SECRET_ACCESS_KEY", AWS_SECRET_KEY_KEY),
        secret_env("AWS_SESSION_TOKEN", AWS_SESSION_TOKEN_KEY),
    ];
    if let Some(region) = &plan.aws_region {
        env.push(EnvVar {
            name: "AWS_REGION".to_string(),
            value: Some(region.clone()),
            ..Default::default()
        });
    }
    let mut items = vec![KeyToPath {
        key: INSTANCE_TAR_KEY.to_string(),
        path: INSTANCE_TAR_KEY.to_string(),
        ..Default::default()
    }];
    if !plan.own_dockerfile {
        items.push(KeyToPath {
            key: TEMPLATE_DOCKERFILE_KEY.to_string(),
            path: TEMPLATE_DOCKERFILE_KEY.to_string(),
            ..Default::default()
        });
    }
    let mut mounts = vec![VolumeMount {
        name: "workspace".to_string(),
        mount_path: WORKSPACE.to_string(),
        read_only: Some(true),
        ..Default::default()
    }];
    let mut volumes = vec![Volume {
        name: "workspace".to_string(),
        config_map: Some(ConfigMapVolumeSource {
            name: plan.name.clone(),
            items: Some(items),
            ..Default::default()
        }),
        ..Default::default()
    }];
    if plan.ecr_registry.is_some() {
        mounts.push(VolumeMount {
            name: "docker-config".to_string(),
            mount_path: "/kaniko/.docker".to_string(),
            read_only: Some(true),
            ..Default::default()
        });
        volumes.push(Volume {
            name: "docker-config".to_string(),
            config_map: Some(ConfigMapVolumeSource {
                name: plan.name.clone(),
                items: Some(vec![KeyToPath {
                    key: DOCKER_CONFIG_KEY.to_string(),
                    path: DOCKER_CONFIG_KEY.to_string(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        });
    }
    let quantities = |pairs: [(&str, &str); 2]| {
        pairs
            .into_iter()
            .map(|(k, v)| (k.to_string(), Quantity(v.to_string())))
            .collect::<BTreeMap<_, _>>()
    };
    let labels = plan.labels();
    Job {
        metadata: ObjectMeta {
            name: Some(plan.name.clone()),
            namespace: Some(plan.namespace.clone()),
            labels: Some(labels.clone()),
            annotations: Some(BTreeMap::from([(
                ANNOTATION_DESTINATION.to_string(),
                plan.image.clone(),
            )])),
            ..Default::default()
        },
        spec: Some(JobSpec {
            // A build that failed once fails again on the same files; retrying only delays the
            // error the user needs to see.
            backoff_limit: Some(0),
            active_deadline_seconds: Some(plan.deadline_seconds),
            ttl_seconds_after_finished: Some(BUILD_TTL_SECONDS),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    restart_policy: Some("Never".to_string()),
                    // The executor image is built for Linux only.
                    node_selector: Some(BTreeMap::from([(
                        "kubernetes.io/os".to_string(),
                        "linux".to_string(),
                    )])),
                    service_account_name: Some(BUILDER_SERVICE_ACCOUNT.to_string()),
                    // Kaniko talks to the registry, never to the API server.
                    automount_service_account_token: Some(false),
                    containers: vec![Container {
                        name: KANIKO_CONTAINER.to_string(),
                        image: Some(plan.kaniko_image.clone()),
                        args: Some(args),
                        env: Some(env),
                        volume_mounts: Some(mounts),
                        // On failure the kubelet copies the log's tail into the termination
                        // message, so the reason survives the pod's logs.
                        termination_message_policy: Some("FallbackToLogsOnError".to_string()),
                        resources: Some(ResourceRequirements {
                            requests: Some(quantities([("cpu", "500m"), ("memory", "1Gi")])),
                            limits: Some(quantities([("cpu", "2"), ("memory", "4Gi")])),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }],
                    volumes: Some(volumes),
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        status: None,
    }
}

/// The images built from an instance ConfigMap's files, from its image annotation. Usually one;
/// several when projects in one namespace deploy identical files: they share `instance-<h>`
/// (its name is its content) but each has its own image, so the annotation lists them,
/// comma-separated.
pub fn recorded_images(cm: &ConfigMap) -> Vec<String> {
    cm.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(ANNOTATION_IMAGE))
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|i| !i.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// The image `project` built from this instance, when one is recorded: the one whose last path
/// segment is `PROJECT:<tag>`.
pub fn recorded_image_of(cm: &ConfigMap, project: &ProjectId) -> Option<String> {
    let suffix = format!("/{project}:");
    recorded_images(cm).into_iter().find(|i| {
        i.rsplit_once(':')
            .is_some_and(|(repo, _)| format!("{repo}:").ends_with(&suffix))
    })
}

/// The annotation value listing `image` too, or None when it is already listed. Pure.
pub fn with_image(recorded: &[String], image: &str) -> Option<String> {
    if recorded.iter().any(|i| i == image) {
        return None;
    }
    let mut all = recorded.to_vec();
    all.push(image.to_string());
    Some(all.join(","))
}

// ---------------------------------------------------------------------------------------------
// Running a build.
// ---------------------------------------------------------------------------------------------

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
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
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
                wait_gone(&jobs, &plan.name, deadline).await?;
                create_job(&cms, &jobs, plan, bundle).await?;
            }
            JobState::Running(_) => progress.phase("attaching to the running build"),
        },
        None => {
            progress.phase("creating the build Job");
            create_job(&cms, &jobs, plan, bundle).await?;
        }
    }

    let selector = format!("batch.kubernetes.io/job-name={}", plan.name);
    let mut streaming: Option<tokio::task::JoinHandle<()>> = None;
    let outcome = loop {
        let job = jobs
            .get(&plan.name)
            .await
            .with_context(|| format!("reading Job {ns}/{}", plan.name))?;
        let mut job_pods = pods
            .list(&ListParams::default().labels(&selector))
            .await
            .with_context(|| format!("listing the pods of Job {ns}/{}", plan.name))?
            .items;
        job_pods.sort_by_key(|p| p.metadata.creation_timestamp.clone());
        match job_state(&job, &job_pods) {
            JobState::Succeeded => break Ok(()),
            JobState::Failed(reason) => break Err(reason),
            JobState::Running(phase) => {
                if let Some(pod) = job_pods.last() {
                    if let Some(blocker) = pod_blocker(pod) {
                        break Err(blocker);
                    }
                    let running =
                        pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
                    if follow
                        && running
                        && streaming.is_none()
                        && let Some(name) = pod.metadata.name.clone()
                    {
                        streaming = Some(tokio::spawn(stream_log(
                            pods.clone(),
                            name,
                            progress.line_printer(),
                        )));
                    }
                } else if let Some(msg) = job_create_failure(client, ns, &plan.name).await {
                    progress.phase(&format!("cannot create the build pod: {msg}"));
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    if Instant::now() >= deadline {
                        break Err(format!("the build pod could not be created: {msg}"));
                    }
                    continue;
                }
                progress.phase(&phase);
            }
        }
        if Instant::now() >= deadline {
            break Err(format!(
                "the build did not finish within --timeout {}s",
                timeout.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
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

async fn create_job(
    cms: &Api<ConfigMap>,
    jobs: &Api<Job>,
    plan: &BuildPlan,
    bundle: &Bundle,
) -> Result<()> {
    let ns = &plan.namespace;
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
    // The ConfigMap copy goes away with its Job (whose TTL removes it after BUILD_TTL_SECONDS).
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
    }
    Ok(())
}

async fn wait_gone(jobs: &Api<Job>, name: &str, deadline: Instant) -> Result<()> {
    while jobs.get_opt(name).await?.is_some() {
        if Instant::now() >= deadline {
            bail!("the previous failed build Job {name} is still being deleted; try again shortly");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    Ok(())
}

/// The latest `FailedCreate` event of the Job: why its controller cannot create the pod
/// (quota, pod security, a missing service account).
async fn job_create_failure(client: &Client, ns: &str, job: &str) -> Option<String> {
    let events: Api<Event> = Api::namespaced(client.clone(), ns);
    let list = events
        .list(&ListParams::default().fields(&format!(
            "involvedObject.kind=Job,involvedObject.name={job},reason=FailedCreate"
        )))
        .await
        .ok()?;
    list.items
        .into_iter()
        .max_by_key(|e| {
            e.last_timestamp.clone().or(e
                .event_time
                .clone()
                .map(|t| k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(t.0)))
        })
        .and_then(|e| e.message)
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

/// The label selector of a project's build Jobs and pods.
pub fn build_selector(project: Option<&str>) -> String {
    match project {
        Some(p) => format!("{LABEL_COMPONENT}={COMPONENT_BUILD},{LABEL_PROJECT}={p}"),
        None => format!("{LABEL_COMPONENT}={COMPONENT_BUILD}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jockey_core::bundle::{Collected, Entry};
    use jockey_core::names::LABEL_CONTENT_HASH;

    fn bundle(with_dockerfile: bool) -> Bundle {
        let mut entries = vec![Entry::file("server.py", "print()", false)];
        if with_dockerfile {
            entries.push(Entry::file("Dockerfile", "FROM scratch", false));
        }
        Bundle::from_collected(Collected {
            entries,
            ..Default::default()
        })
        .unwrap()
    }

    fn cfg(registry: &str) -> Config {
        Config::from_lookup(|k| (k == "IMAGE_REGISTRY").then(|| registry.to_string()))
    }

    #[test]
    fn plan_needs_a_registry() {
        let p = ProjectId::parse("demo").unwrap();
        let err = BuildPlan::new(
            &Config::default(),
            &p,
            &bundle(false),
            Duration::from_secs(60),
        )
        .unwrap_err();
        assert!(err.to_string().contains("IMAGE_REGISTRY"), "{err}");
    }

    #[test]
    fn build_names_fit_and_never_collide() {
        let h = ContentHash::from_digest(&[0xab; 32]);
        let short = ProjectId::parse("demo").unwrap();
        assert_eq!(build_name(&short, &h), "demo-build-abababababababab");
        let a = ProjectId::parse(&format!("{}a", "x".repeat(47))).unwrap();
        let b = ProjectId::parse(&format!("{}b", "x".repeat(47))).unwrap();
        let (na, nb) = (build_name(&a, &h), build_name(&b, &h));
        assert!(na.len() <= 63 && nb.len() <= 63, "{na} {nb}");
        assert_ne!(na, nb);
        let uuid = ProjectId::parse("0b6a1c9e-1b2c-4d5e-8f90-123456789abc").unwrap();
        assert_eq!(
            build_name(&uuid, &h),
            "0b6a1c9e-1b2c-4d5e-8f90-123456789abc-build-abababababababab"
        );
    }

    #[test]
    fn job_builds_from_the_tar_with_destination_cache_and_limits() {
        let p = ProjectId::parse("demo").unwrap();
        let b = bundle(false);
        let plan = BuildPlan::new(
            &cfg("registry.local:5000"),
            &p,
            &b,
            Duration::from_secs(300),
        )
        .unwrap();
        let job = kaniko_job(&plan);
        let spec = job.spec.as_ref().unwrap();
        assert_eq!(spec.backoff_limit, Some(0));
        assert_eq!(spec.active_deadline_seconds, Some(300));
        assert_eq!(spec.ttl_seconds_after_finished, Some(BUILD_TTL_SECONDS));
        let pod = spec.template.spec.as_ref().unwrap();
        let c = &pod.containers[0];
        assert_eq!(
            c.image.as_deref(),
            Some(jockey_core::config::DEFAULT_KANIKO_IMAGE)
        );
        assert!(!c.image.as_deref().unwrap().ends_with(":latest"));
        let args = c.args.clone().unwrap();
        let image = format!("registry.local:5000/hosting/demo:{}", b.hash.short());
        assert!(args.contains(&format!("--destination={image}")), "{args:?}");
        assert!(args.contains(&"--context=tar:///workspace/instance.tar.gz".to_string()));
        assert!(args.contains(&"--dockerfile=/workspace/Dockerfile".to_string()));
        assert!(args.contains(&"--cache=true".to_string()));
        assert!(args.contains(&"--cache-repo=registry.local:5000/hosting/demo/cache".to_string()));
        assert!(c.resources.as_ref().unwrap().limits.is_some());
        let labels = job.metadata.labels.clone().unwrap();
        assert_eq!(labels[LABEL_PROJECT], "demo");
        assert_eq!(labels[LABEL_CONTENT_HASH], b.hash.short());
        assert_eq!(
            pod.service_account_name.as_deref(),
            Some(BUILDER_SERVICE_ACCOUNT)
        );

        // Credentials only as references to the Secret, never as values.
        for e in c.env.iter().flatten() {
            if e.name.starts_with("AWS_ACCESS") || e.name.starts_with("AWS_SECRET") {
                assert!(e.value.is_none());
                let r = e
                    .value_from
                    .as_ref()
                    .unwrap()
                    .secret_key_ref
                    .as_ref()
                    .unwrap();
                assert_eq!(r.name, AWS_CREDENTIALS_SECRET);
            }
        }
    }

    #[test]
    fn own_dockerfile_is_used_from_the_context() {
        let p = ProjectId::parse("demo").unwrap();
        let b = bundle(true);
        let plan = BuildPlan::new(&cfg("r.example"), &p, &b, Duration::from_secs(60)).unwrap();
        let job = kaniko_job(&plan);
        let args = job.spec.unwrap().template.spec.unwrap().containers[0]
            .args
            .clone()
            .unwrap();
        assert!(args.contains(&"--dockerfile=Dockerfile".to_string()));
        let cm = builder_configmap(&plan, &b);
        assert!(
            cm.data.is_none(),
            "no template when the project has a Dockerfile"
        );
    }

    #[test]
    fn builder_configmap_holds_the_tar_the_template_and_no_credentials() {
        let p = ProjectId::parse("demo").unwrap();
        let b = bundle(false);
        let plan = BuildPlan::new(
            &cfg("123456789012.dkr.ecr.eu-west-1.amazonaws.com"),
            &p,
            &b,
            Duration::from_secs(60),
        )
        .unwrap();
        assert_eq!(plan.aws_region.as_deref(), Some("eu-west-1"));
        let cm = builder_configmap(&plan, &b);
        assert_eq!(cm.binary_data.as_ref().unwrap()[INSTANCE_TAR_KEY].0, b.gz);
        let data = cm.data.clone().unwrap();
        assert_eq!(data[TEMPLATE_DOCKERFILE_KEY], PYTHON_DOCKERFILE);
        assert!(data[DOCKER_CONFIG_KEY].contains("ecr-login"));
        assert!(!data[DOCKER_CONFIG_KEY].contains("auth"));
        assert_eq!(cm.metadata.namespace.as_deref(), Some("builder"));
    }

    #[test]
    fn template_serves_on_8080_and_installs_requirements_when_present() {
        assert!(PYTHON_DOCKERFILE.contains("PORT=8080"));
        assert!(PYTHON_DOCKERFILE.contains("EXPOSE 8080"));
        assert!(PYTHON_DOCKERFILE.contains("if [ -f requirements.txt ]"));
        assert!(PYTHON_DOCKERFILE.contains("server.py"));
        // The agent user (USER 10001) can enter /app whatever mode the build context gave it.
        let chmod = PYTHON_DOCKERFILE
            .find("chmod 0755 /app")
            .expect("chmod /app");
        assert!(chmod < PYTHON_DOCKERFILE.find("USER 10001").expect("USER"));
        assert!(!PYTHON_DOCKERFILE.contains(":latest"));
    }

    fn job_with(conditions: serde_json::Value) -> Job {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "j"},
            "status": {"conditions": conditions}
        }))
        .unwrap()
    }

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
}
