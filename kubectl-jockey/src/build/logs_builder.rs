//! `kubectl jockey logs-builder PROJECT [-f]` (a tenant): the build logs of the project's own
//! builds, as the build broker relays them onto its BuildRequests in the project's namespace
//! (`-n`). A tenant can read nothing else: not another project's, not the builder namespace.
//!
//! `kubectl jockey logs-builder [-f] [--project P]` (an operator, who may read pods in the
//! builder namespace): the Kaniko logs of every build Job. Here the global `-n/--namespace`
//! names the builder namespace (default: `$BUILDER_NAMESPACE`, then `builder`), as in the
//! design document's `jockey logs-builder --namespace custom-builder`.

use crate::cluster::{KubeArgs, api_message};
use anyhow::{Context, Result, bail};
use futures::{AsyncBufReadExt, StreamExt, TryStreamExt};
use jockey_build::kaniko::{KANIKO_CONTAINER, build_selector};
use jockey_core::Config;
use jockey_core::build_request::{BuildRequest, Phase, unseen};
use jockey_core::names::LABEL_PROJECT;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{ListParams, LogParams};

#[derive(clap::Args, Debug, Clone)]
pub struct LogsBuilderArgs {
    /// A project of the namespace (-n): its builds, as the build broker reports them; all a
    /// tenant may read. Without it, every build in the builder namespace (an operator's view,
    /// which needs read access to pods and pods/log there).
    pub project_of_namespace: Option<String>,
    /// Keep streaming new log lines of the newest build.
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Only the builds of this project.
    #[arg(long, short = 'p')]
    pub project: Option<String>,
    /// Lines of recent log to show per build.
    #[arg(long, default_value_t = 100)]
    pub tail: i64,
    /// The builder namespace when -n is not given.
    #[arg(long, value_name = "NAMESPACE", env = "BUILDER_NAMESPACE",
          default_value = jockey_core::config::DEFAULT_BUILDER_NAMESPACE)]
    pub builder_namespace: String,
}

/// The builder namespace: `-n`, else --builder-namespace / BUILDER_NAMESPACE, else `builder`.
/// The kubeconfig context's namespace is deliberately not used: it names where projects live,
/// not builds.
fn builder_namespace(kube: &KubeArgs, args: &LogsBuilderArgs) -> String {
    let configured =
        Config::from_lookup(|k| (k == "BUILDER_NAMESPACE").then(|| args.builder_namespace.clone()));
    kube.namespace
        .clone()
        .unwrap_or(configured.builder_namespace)
}

pub async fn run(kube: &KubeArgs, args: LogsBuilderArgs) -> Result<()> {
    if let Some(project) = &args.project_of_namespace {
        return tenant(kube, project, args.follow).await;
    }
    let ns = builder_namespace(kube, &args);
    let client = kube.connect().await?.client;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let selector = build_selector(args.project.as_deref());
    let mut list = pods
        .list(&ListParams::default().labels(&selector))
        .await
        .with_context(|| format!("listing build pods in namespace {ns}"))?
        .items;
    if list.is_empty() {
        bail!(
            "no build pods in namespace {ns}{}; builds are kept for an hour after they finish \
             (is -n the builder namespace?)",
            args.project
                .as_deref()
                .map(|p| format!(" for project {p}"))
                .unwrap_or_default()
        );
    }
    list.sort_by_key(|p| p.metadata.creation_timestamp.clone());
    let last = list.len() - 1;
    let mut unreadable = Vec::new();
    for (i, pod) in list.iter().enumerate() {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let project = pod
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(jockey_core::names::LABEL_PROJECT))
            .cloned()
            .unwrap_or_default();
        let phase = pod
            .status
            .as_ref()
            .and_then(|s| s.phase.clone())
            .unwrap_or_default();
        println!("==> {ns}/{name} (project {project}, {phase}) <==");
        let follow = args.follow && i == last;
        if let Err(e) = print_log(&pods, &name, args.tail, follow).await {
            println!("(log unavailable: {e})");
            unreadable.push(name);
        }
    }
    if unreadable.len() == list.len() {
        bail!(
            "no build log could be read (pods {}); the node may not serve logs (a pod that never \
             started has none): `kubectl jockey deploy` printed the failure reason",
            unreadable.join(", ")
        );
    }
    Ok(())
}

/// A tenant's view: the project's BuildRequests in its namespace, oldest first, each with the
/// log lines the broker relayed; `follow` waits on the newest until it is over.
async fn tenant(kube: &KubeArgs, project: &str, follow: bool) -> Result<()> {
    let cluster = kube.connect().await?;
    let ns = cluster.namespace.clone();
    let api: Api<BuildRequest> = Api::namespaced(cluster.client.clone(), &ns);
    let mut list = api
        .list(&ListParams::default().labels(&format!("{LABEL_PROJECT}={project}")))
        .await
        .with_context(|| format!("listing the BuildRequests of {project} in namespace {ns}"))?
        .items;
    if list.is_empty() {
        bail!(
            "no builds of project {project} in namespace {ns}; `kubectl jockey deploy` asks for              one (is -n the project's namespace?)"
        );
    }
    list.sort_by_key(|r| r.metadata.creation_timestamp.clone());
    let last = list.len() - 1;
    for (i, req) in list.iter().enumerate() {
        let name = req.metadata.name.clone().unwrap_or_default();
        let status = req.status.clone().unwrap_or_default();
        println!("==> {ns}/{name} ({:?}) <==", status.phase);
        if status.log_lines > status.log.len() as u64 {
            println!(
                "(the newest {} of {} lines)",
                status.log.len(),
                status.log_lines
            );
        }
        for line in &status.log {
            println!("{line}");
        }
        if status.phase != Phase::Succeeded
            && let Some(m) = &status.message
        {
            println!("{m}");
        }
        if follow && i == last && !status.phase.is_final() {
            follow_request(&api, &name, status.log_lines).await?;
        }
    }
    Ok(())
}

/// Prints the lines the broker adds to a request until its build is over.
async fn follow_request(api: &Api<BuildRequest>, name: &str, mut seen: u64) -> Result<()> {
    use kube::runtime::{WatchStreamExt, watcher};
    let stream = watcher(
        api.clone(),
        watcher::Config::default().fields(&format!("metadata.name={name}")),
    )
    .applied_objects();
    futures::pin_mut!(stream);
    while let Some(req) = stream.try_next().await? {
        let status = req.status.unwrap_or_default();
        for line in unseen(&status, seen) {
            println!("{line}");
        }
        seen = status.log_lines;
        if status.phase.is_final() {
            if let Some(m) = status.message.filter(|_| status.phase != Phase::Succeeded) {
                println!("{m}");
            }
            break;
        }
    }
    Ok(())
}

/// Prints (or follows) one pod's Kaniko log. An unreadable log is returned as the API server's
/// message, so that the caller can say so and still show the other builds.
async fn print_log(pods: &Api<Pod>, name: &str, tail: i64, follow: bool) -> Result<(), String> {
    let params = LogParams {
        container: Some(KANIKO_CONTAINER.to_string()),
        tail_lines: Some(tail),
        follow,
        ..Default::default()
    };
    if follow {
        let stream = pods
            .log_stream(name, &params)
            .await
            .map_err(|e| api_message(&e))?;
        let mut lines = stream.lines();
        while let Some(Ok(line)) = lines.next().await {
            println!("{line}");
        }
    } else {
        let text = pods
            .logs(name, &params)
            .await
            .map_err(|e| api_message(&e))?;
        print!("{text}");
    }
    Ok(())
}
