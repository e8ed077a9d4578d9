//! One request, one step at a time: refuse it, find its image already built, start its build,
//! or report how its build stands. Each call reads what it needs from the API server, so a
//! restarted broker (or a second one during an upgrade) picks up where the last left off: every
//! write is named by the request, and a second create of the same thing is a no-op.

use super::{Ctx, ownership};
use crate::credentials::{self, BuildCredentials};
use crate::job::{BuildStep, FAILURE_LOG_LINES, build_step, last_lines, termination_summary};
use crate::kaniko::{BuildPlan, KANIKO_CONTAINER, builder_configmap, kaniko_job};
use jockey_core::build_request::{self, Admitted, BuildRequest, Phase};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Event, Pod, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{DeleteParams, ListParams, LogParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// The field manager of everything the broker writes.
pub const MANAGER: &str = "jockey-broker";
/// On the build Job: the uid of the request that started it. A failed Job of an earlier
/// request for the same files is replaced; a succeeded one is reused.
pub const ANNOTATION_REQUEST_UID: &str = "jockey.agentops.ai/request-uid";
/// Instance tars larger than this are not built (a ConfigMap holds at most 1 MiB compressed).
const MAX_TAR_BYTES: u64 = 64 << 20;

#[derive(Debug)]
pub struct Error(String);

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

fn err(e: impl std::fmt::Display) -> Error {
    Error(e.to_string())
}

pub fn error_policy(req: Arc<BuildRequest>, e: &Error, _: Arc<Ctx>) -> Action {
    tracing::warn!(
        request = %format!("{}/{}", req.namespace().unwrap_or_default(), req.name_any()),
        "{e}"
    );
    Action::requeue(Duration::from_secs(5))
}

pub async fn reconcile(req: Arc<BuildRequest>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    if req.phase().is_final() || req.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let ns = req.namespace().unwrap_or_default();
    let only = &ctx.settings.request_namespaces;
    if !only.is_empty() && !only.contains(&ns) {
        return Ok(Action::await_change());
    }
    let client = &ctx.client;
    let requests: Api<BuildRequest> = Api::namespaced(client.clone(), &ns);
    let report = Report {
        api: &requests,
        req: &req,
    };
    let instance = Api::<ConfigMap>::namespaced(client.clone(), &ns)
        .get_opt(&req.spec.instance)
        .await
        .map_err(err)?;
    let admitted = match build_request::check(&req, &ns, instance.as_ref(), MAX_TAR_BYTES) {
        Ok(a) => a,
        Err(why) => return report.done(Phase::Refused, &why, None).await,
    };
    let project = admitted.project.as_str();
    match ownership::check(client, &ctx.settings.claims_namespace, project, &ns).await {
        Ok(()) => {}
        Err(ownership::Denied::Refused(why)) => {
            return report.done(Phase::Refused, &why, None).await;
        }
        Err(ownership::Denied::Failed(why)) => return Err(Error(why)),
    }
    let plan = match BuildPlan::new(&ctx.settings.cfg, &admitted, &ns) {
        Ok(p) => p,
        // The broker's own settings: the tenant cannot fix it, the message says who can.
        Err(e) => return report.done(Phase::Failed, &format!("{e:#}"), None).await,
    };
    // The built-in template's image holds only the dependencies: pushed once, it answers every
    // instance with the same ones (a code-only change builds nothing).
    if let Some(image) = pushed_dependency_image(client, &plan).await? {
        return report
            .done(
                Phase::Succeeded,
                &format!(
                    "image {image} already built (the dependencies are unchanged); nothing to build"
                ),
                Some(&plan),
            )
            .await;
    }
    let jobs: Api<Job> = Api::namespaced(client.clone(), &plan.namespace);
    let Some(job) = jobs.get_opt(&plan.name).await.map_err(err)? else {
        return start(&ctx, &report, &plan, &admitted).await;
    };
    let uid = req.uid().unwrap_or_default();
    let mine = job.annotations().get(ANNOTATION_REQUEST_UID) == Some(&uid);
    let pods = Api::<Pod>::namespaced(client.clone(), &plan.namespace)
        .list(&ListParams::default().labels(&format!("batch.kubernetes.io/job-name={}", plan.name)))
        .await
        .map_err(err)?
        .items;
    let events = Api::<Event>::namespaced(client.clone(), &plan.namespace)
        .list(&ListParams::default().fields(&format!(
            "involvedObject.kind=Job,involvedObject.name={},reason=FailedCreate",
            plan.name
        )))
        .await
        .map_err(err)?
        .items;
    match build_step(Some(&job), &pods, &events) {
        BuildStep::Succeeded => {
            build_over(&ctx, &plan, &ns, &req.name_any(), &pods).await;
            record_dependency_image(client, &plan).await?;
            report
                .done(
                    Phase::Succeeded,
                    &format!("pushed {}", plan.image),
                    Some(&plan),
                )
                .await
        }
        // Asking again after a failure is a new request: the old Job goes, a new one comes.
        BuildStep::Failed(_) if !mine => {
            jobs.delete(&plan.name, &DeleteParams::foreground())
                .await
                .map_err(err)?;
            report
                .progress("removing the previous failed build of these files", &plan)
                .await?;
            Ok(Action::requeue(Duration::from_secs(2)))
        }
        BuildStep::Failed(reason) => {
            build_over(&ctx, &plan, &ns, &req.name_any(), &pods).await;
            let details = failure_details(client, &plan, &pods).await;
            report
                .done(
                    Phase::Failed,
                    &format!(
                        "build Job {}/{} failed: {reason}{details}",
                        plan.namespace, plan.name
                    ),
                    Some(&plan),
                )
                .await
        }
        BuildStep::Running { phase, running_pod } => {
            if let Some(pod) = running_pod {
                ctx.logs.follow(client, &plan, &ns, &req.name_any(), &pod);
            }
            report.progress(&phase, &plan).await?;
            // Events drive the next step; this only covers a missed one.
            Ok(Action::requeue(Duration::from_secs(30)))
        }
    }
}

/// The image may exist already (ECR is asked); otherwise the build's inputs and its Job.
async fn start(
    ctx: &Ctx,
    report: &Report<'_>,
    plan: &BuildPlan,
    admitted: &Admitted,
) -> Result<Action, Error> {
    let client = &ctx.client;
    if plan.ecr_registry.is_some() {
        match crate::ecr::prepare_tag(&ctx.settings.cfg, &plan.project, &plan.tag).await {
            Ok(crate::ecr::Decision::Built { image }) => {
                return report
                    .done(
                        Phase::Succeeded,
                        &format!("image {image} exists in ECR; nothing to build"),
                        Some(plan),
                    )
                    .await;
            }
            Ok(crate::ecr::Decision::Build { .. }) if plan.own_dockerfile => {
                if let Err(e) = ensure_cache_repository(&ctx.settings.cfg, plan).await {
                    return report.done(Phase::Failed, &format!("{e:#}"), None).await;
                }
            }
            // The built-in template builds without Kaniko's layer cache: no cache repository.
            Ok(crate::ecr::Decision::Build { .. }) => {}
            Ok(crate::ecr::Decision::Unavailable(why)) => {
                return report
                    .done(
                        Phase::Failed,
                        &format!(
                            "the build broker cannot reach ECR: {why}; the cluster admin gives \
                             the broker's service account an AWS identity (IRSA / EKS Pod \
                             Identity)"
                        ),
                        None,
                    )
                    .await;
            }
            Err(e) => return report.done(Phase::Failed, &format!("{e:#}"), None).await,
        }
    }
    report.progress("creating the build Job", plan).await?;
    if let Err(e) = create_job(
        client,
        plan,
        admitted,
        &report.req.uid().unwrap_or_default(),
    )
    .await
    {
        remove_credentials(client, plan).await;
        return report.done(Phase::Failed, &format!("{e:#}"), None).await;
    }
    Ok(Action::requeue(Duration::from_secs(30)))
}

/// Writes the build's inputs and its Job: the credentials Secret first (the pod must find it),
/// then the ConfigMap copy, then the Job, which then owns both (its TTL takes them along).
async fn create_job(
    client: &Client,
    plan: &BuildPlan,
    admitted: &Admitted,
    request_uid: &str,
) -> anyhow::Result<()> {
    use anyhow::Context;
    let ns = &plan.namespace;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let jobs: Api<Job> = Api::namespaced(client.clone(), ns);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let apply = PatchParams::apply(MANAGER).force();
    if let BuildCredentials::AssumedRole(a) = &plan.credentials {
        let issued = credentials::issue(a).await?;
        // A Secret of an earlier attempt holds expired or soon-expiring credentials.
        credentials::remove(client, ns, &a.secret).await?;
        let secret = credentials::credentials_secret(a, ns, plan.labels(), &issued);
        secrets
            .create(&PostParams::default(), &secret)
            .await
            .with_context(|| format!("writing Secret {ns}/{}", a.secret))?;
        tracing::info!(
            build = %plan.name,
            role = %issued.assumed_role_arn,
            expires = %issued.expires,
            "build credentials issued"
        );
    }
    let cm = builder_configmap(plan, &admitted.gz);
    cms.patch(&plan.name, &apply, &Patch::Apply(&cm))
        .await
        .with_context(|| format!("writing ConfigMap {ns}/{}", plan.name))?;
    let mut job = kaniko_job(plan);
    job.annotations_mut()
        .insert(ANNOTATION_REQUEST_UID.to_string(), request_uid.to_string());
    let job = match jobs.create(&PostParams::default(), &job).await {
        Ok(j) => j,
        // Another broker (an upgrade's overlap) was first: the same Job.
        Err(kube::Error::Api(s)) if s.code == 409 => jobs.get(&plan.name).await?,
        Err(e) => return Err(e).with_context(|| format!("creating Job {ns}/{}", plan.name)),
    };
    if let Some(uid) = job.metadata.uid {
        let owner = json!({
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

/// On a dependency image's record: what it is (the build Jobs go after an hour, the record
/// stays as long as the builder namespace).
pub const COMPONENT_DEPENDENCY_IMAGE: &str = "dependency-image";

/// The record that a dependency image was pushed: `<build>-ok` in the builder namespace.
fn dependency_record_name(plan: &BuildPlan) -> String {
    format!("{}-ok", plan.name)
}

/// The image, when the broker recorded that it pushed this dependency image (with a registry
/// that is not ECR; ECR itself is asked, in [`start`]).
async fn pushed_dependency_image(
    client: &Client,
    plan: &BuildPlan,
) -> Result<Option<String>, Error> {
    if plan.own_dockerfile || plan.ecr_registry.is_some() {
        return Ok(None);
    }
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &plan.namespace);
    let record = cms
        .get_opt(&dependency_record_name(plan))
        .await
        .map_err(err)?;
    Ok(record
        .and_then(|cm| {
            cm.annotations()
                .get(crate::kaniko::ANNOTATION_DESTINATION)
                .cloned()
        })
        .filter(|image| *image == plan.image))
}

/// Records that the dependency image of `plan` was pushed (see [`pushed_dependency_image`]).
async fn record_dependency_image(client: &Client, plan: &BuildPlan) -> Result<(), Error> {
    if plan.own_dockerfile {
        return Ok(());
    }
    let mut labels = plan.labels();
    labels.insert(
        crate::kaniko::LABEL_COMPONENT.to_string(),
        COMPONENT_DEPENDENCY_IMAGE.to_string(),
    );
    let record = ConfigMap {
        metadata: kube::api::ObjectMeta {
            name: Some(dependency_record_name(plan)),
            namespace: Some(plan.namespace.clone()),
            labels: Some(labels),
            annotations: Some(std::collections::BTreeMap::from([(
                crate::kaniko::ANNOTATION_DESTINATION.to_string(),
                plan.image.clone(),
            )])),
            ..Default::default()
        },
        ..Default::default()
    };
    Api::<ConfigMap>::namespaced(client.clone(), &plan.namespace)
        .patch(
            &dependency_record_name(plan),
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&record),
        )
        .await
        .map_err(err)?;
    Ok(())
}

/// Kaniko pushes its layer cache to `<prefix>/PROJECT/cache`; ECR, unlike most registries,
/// needs that repository to exist first.
async fn ensure_cache_repository(
    cfg: &jockey_core::Config,
    plan: &BuildPlan,
) -> anyhow::Result<()> {
    let Some(ecr) = plan
        .ecr_registry
        .as_deref()
        .and_then(crate::ecr::parse_registry)
    else {
        return Ok(());
    };
    let sdk = crate::aws::sdk_config(Some(&ecr.region)).await;
    let client = aws_sdk_ecr::Client::new(&sdk);
    let name = format!(
        "{}/cache",
        plan.project.repository(&cfg.image_repository_prefix)
    );
    crate::ecr::ensure_repository(&client, &ecr.account, &name, crate::ecr::Tags::Mutable).await?;
    Ok(())
}

/// Short-lived as they are, a build's credentials go as soon as it is over: nothing else is
/// meant to use them. A failure is logged: they expire on their own and go with the Job.
async fn remove_credentials(client: &Client, plan: &BuildPlan) {
    if let BuildCredentials::AssumedRole(a) = &plan.credentials
        && let Err(e) = credentials::remove(client, &plan.namespace, &a.secret).await
    {
        tracing::warn!("{e:#}");
    }
}

/// A build that ended: its log's last lines on the request, its credentials gone.
async fn build_over(ctx: &Ctx, plan: &BuildPlan, ns: &str, request: &str, pods: &[Pod]) {
    let client = &ctx.client;
    ctx.logs
        .finish(client, plan, ns, request, newest_pod(pods).as_deref())
        .await;
    remove_credentials(client, plan).await;
}

/// The name of the build's newest pod.
fn newest_pod(pods: &[Pod]) -> Option<String> {
    pods.iter()
        .max_by_key(|p| p.metadata.creation_timestamp.clone())
        .and_then(|p| p.metadata.name.clone())
}

/// The failed pod's termination summary and the tail of its log, best effort: a build that
/// failed before its pod started has neither.
async fn failure_details(client: &Client, plan: &BuildPlan, pods: &[Pod]) -> String {
    let mut pods = pods.to_vec();
    pods.sort_by_key(|p| p.metadata.creation_timestamp.clone());
    let Some(pod) = pods.last() else {
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
        let api = Api::<Pod>::namespaced(client.clone(), &plan.namespace);
        if let Ok(log) = api.logs(name, &params).await {
            let tail = last_lines(&log, FAILURE_LOG_LINES);
            // The termination message usually is this same tail; say it once.
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

/// Writes a request's status; only what changed, so a watcher sees real progress only.
struct Report<'a> {
    api: &'a Api<BuildRequest>,
    req: &'a BuildRequest,
}

impl Report<'_> {
    async fn write(
        &self,
        phase: Phase,
        message: &str,
        plan: Option<&BuildPlan>,
    ) -> Result<(), Error> {
        let status = self.req.status.clone().unwrap_or_default();
        let image = plan
            .filter(|_| phase == Phase::Succeeded)
            .map(|p| p.image.clone());
        let job = plan.map(|p| format!("{}/{}", p.namespace, p.name));
        if status.phase == phase
            && status.message.as_deref() == Some(message)
            && status.image == image
            && (job.is_none() || status.job == job)
        {
            return Ok(());
        }
        let mut patch = json!({
            "phase": phase,
            "message": message,
            "observedGeneration": self.req.metadata.generation,
        });
        if let Some(image) = image {
            patch["image"] = json!(image);
        }
        if let Some(job) = job {
            patch["job"] = json!(job);
        }
        self.api
            .patch_status(
                &self.req.name_any(),
                &PatchParams::default(),
                &Patch::Merge(json!({ "status": patch })),
            )
            .await
            .map_err(err)?;
        Ok(())
    }

    async fn progress(&self, message: &str, plan: &BuildPlan) -> Result<(), Error> {
        self.write(Phase::Building, message, Some(plan)).await
    }

    async fn done(
        &self,
        phase: Phase,
        message: &str,
        plan: Option<&BuildPlan>,
    ) -> Result<Action, Error> {
        self.write(phase, message, plan).await?;
        let ns = self.req.namespace().unwrap_or_default();
        tracing::info!(request = %format!("{ns}/{}", self.req.name_any()), ?phase, "{message}");
        Ok(Action::await_change())
    }
}
