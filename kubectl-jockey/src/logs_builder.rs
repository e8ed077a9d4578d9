//! `kubectl jockey logs-builder [-f] [--project P]`: the Kaniko logs of the build Jobs. Here the
//! global `-n/--namespace` names the builder namespace (default: `$BUILDER_NAMESPACE`, then
//! `builder`), as in the design document's `jockey logs-builder --namespace custom-builder`.

use crate::cluster::{KubeArgs, api_message};
use crate::kaniko::{KANIKO_CONTAINER, build_selector};
use anyhow::{Context, Result, bail};
use futures::{AsyncBufReadExt, StreamExt};
use jockey_core::Config;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{ListParams, LogParams};

#[derive(clap::Args, Debug, Clone)]
pub struct LogsBuilderArgs {
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
