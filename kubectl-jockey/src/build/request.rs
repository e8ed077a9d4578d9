//! Asking the build broker for an image: a `BuildRequest` in the project's own namespace, then
//! its status followed until the broker says it is built, failed or refused. The plugin holds
//! nothing in the builder namespace and no AWS credentials; this is all a tenant does for a build.

use crate::output::Progress;
use crate::watch::Watches;
use anyhow::{Context, Result, bail};
use jockey_core::build_request::{self, BuildRequest, Phase, unseen};
use jockey_core::{ContentHash, ProjectId};
use kube::api::{DeleteParams, PostParams};
use kube::runtime::wait::conditions;
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};
use std::time::{Duration, Instant};

/// A request nobody answered for this long is reported as a broker that is not running.
const BROKER_SILENCE: Duration = Duration::from_secs(20);

pub struct Ask<'a> {
    pub client: &'a Client,
    pub namespace: &'a str,
    pub project: &'a ProjectId,
    pub hash: &'a ContentHash,
    pub follow: bool,
    pub deadline: Instant,
    pub timeout: Duration,
}

/// Asks for the image of the instance and waits for it: the image, or an error with the
/// broker's reason, the log's tail and the fix.
pub async fn build(ask: Ask<'_>) -> Result<String> {
    let Ask {
        client,
        namespace: ns,
        project,
        hash,
        follow,
        deadline,
        timeout,
    } = ask;
    let api: Api<BuildRequest> = Api::namespaced(client.clone(), ns);
    let name = build_request::request_name(project, hash);
    let mut progress = Progress::new(&format!("build {project} ({})", hash.short()));
    match api
        .get_opt(&name)
        .await
        .with_context(|| format!("reading BuildRequest {ns}/{name}"))?
    {
        Some(r) if r.phase() == Phase::Succeeded => {
            if let Some(image) = r.status.and_then(|s| s.image) {
                progress.finish(&format!("already built: {image}"));
                return Ok(image);
            }
            recreate(&api, &name, ns, project, hash, timeout, &mut progress).await?;
        }
        // Asking again after a failure or a refusal is a new request.
        Some(r) if r.phase().is_final() => {
            progress.phase("replacing the previous request, which failed");
            recreate(&api, &name, ns, project, hash, timeout, &mut progress).await?;
        }
        Some(_) => progress.phase("attaching to the running build"),
        None => create(&api, ns, project, hash, timeout).await?,
    }
    follow_request(
        &api, &name, ns, project, follow, deadline, timeout, progress,
    )
    .await
}

async fn create(
    api: &Api<BuildRequest>,
    ns: &str,
    project: &ProjectId,
    hash: &ContentHash,
    timeout: Duration,
) -> Result<()> {
    let req = build_request::request(project, hash, ns, timeout.as_secs());
    match api.create(&PostParams::default(), &req).await {
        Ok(_) => Ok(()),
        // Another deploy of the same files asked first: follow that one.
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => bail!(
            "cannot ask for a build: this cluster has no BuildRequest API ({}.{}), so jockey's \
             build broker is not installed; ask the cluster admin to run `kubectl jockey install` \
             (README, \"Install\")",
            build_request::PLURAL,
            build_request::GROUP
        ),
        Err(kube::Error::Api(s)) if s.code == 403 => bail!(
            "creating BuildRequest {ns}/{} is forbidden: {}; a tenant needs the jockey-tenant \
             role in its namespace (an operator runs `kubectl jockey tenant grant {ns} --user \
             <you>`)",
            req.name_any(),
            s.message
        ),
        Err(e) => Err(e).with_context(|| format!("creating BuildRequest {ns}/{}", req.name_any())),
    }
}

async fn recreate(
    api: &Api<BuildRequest>,
    name: &str,
    ns: &str,
    project: &ProjectId,
    hash: &ContentHash,
    timeout: Duration,
    progress: &mut Progress,
) -> Result<()> {
    let old = api
        .get_opt(name)
        .await
        .with_context(|| format!("reading BuildRequest {ns}/{name}"))?;
    let uid = old.and_then(|r| r.metadata.uid).unwrap_or_default();
    api.delete(name, &DeleteParams::background())
        .await
        .with_context(|| format!("deleting the previous BuildRequest {ns}/{name}"))?;
    // Gone at once (a BuildRequest has no finalizers), but only the API server says when.
    let soon = Instant::now() + Duration::from_secs(30);
    if let Err(t) = crate::watch::until(api.clone(), name, conditions::is_deleted(&uid), soon).await
    {
        bail!(
            "BuildRequest {ns}/{name} is still being deleted{}; try again shortly",
            t.last_error
                .map(|e| format!(" (watching it failed: {e})"))
                .unwrap_or_default()
        );
    }
    progress.phase("asking the build broker");
    create(api, ns, project, hash, timeout).await
}

#[allow(clippy::too_many_arguments)]
async fn follow_request(
    api: &Api<BuildRequest>,
    name: &str,
    ns: &str,
    project: &ProjectId,
    follow: bool,
    deadline: Instant,
    timeout: Duration,
    mut progress: Progress,
) -> Result<String> {
    let mut watches = Watches::default();
    let store = watches.add(
        api.clone(),
        watcher::Config::default().fields(&format!("metadata.name={name}")),
    );
    let printer = progress.line_printer();
    let asked = Instant::now();
    let mut seen = 0u64;
    let logs_hint = format!("kubectl jockey logs-builder {project} -n {ns}");
    loop {
        if watches.listed() {
            let Some(req) = store.state().first().cloned() else {
                bail!(
                    "BuildRequest {ns}/{name} was deleted while deploy waited for it; deploy \
                     again"
                );
            };
            let status = req.status.clone().unwrap_or_default();
            if follow {
                for line in unseen(&status, seen) {
                    printer.println(&format!("  | {line}"));
                }
                seen = status.log_lines;
            }
            let message = status.message.clone().unwrap_or_default();
            match status.phase {
                Phase::Succeeded => {
                    let image = status.image.clone().with_context(|| {
                        format!("BuildRequest {ns}/{name} succeeded without naming its image")
                    })?;
                    progress.finish(&message);
                    return Ok(image);
                }
                Phase::Failed => {
                    drop(progress);
                    bail!(
                        "{message}\nfix the build (see the log above), then deploy again; the \
                         log: {logs_hint}"
                    );
                }
                Phase::Refused => {
                    drop(progress);
                    bail!("the build broker refused BuildRequest {ns}/{name}: {message}");
                }
                Phase::Pending | Phase::Building if req.status.is_none() => {
                    if asked.elapsed() > BROKER_SILENCE {
                        progress.phase(
                            "waiting for the build broker, which has not answered yet (is it \
                             running? an operator checks: kubectl get deploy -A -l \
                             app.kubernetes.io/name=jockey-broker)",
                        );
                    } else {
                        progress.phase("waiting for the build broker");
                    }
                }
                _ => progress.phase(&message),
            }
        }
        let wake = deadline.min(Instant::now() + BROKER_SILENCE);
        if !watches.changed(wake).await && Instant::now() >= deadline {
            drop(progress);
            bail!(
                "the build did not finish within --timeout {}{}; it runs on in the cluster and \
                 the next deploy attaches to it; its log: {logs_hint}",
                crate::duration::show(timeout),
                watches.error_note()
            );
        }
    }
}
