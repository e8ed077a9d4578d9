//! `kubectl jockey logs PROJECT [-f]`: the server container's log of each pod of the project.

use crate::cluster::{KubeArgs, api_message};
use anyhow::{Context, Result, bail};
use futures::{AsyncBufReadExt, StreamExt};
use jockey_core::names::LABEL_APP;
use jockey_core::{ProjectId, defaults};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{ListParams, LogParams};

#[derive(clap::Args, Debug, Clone)]
pub struct LogsArgs {
    pub project: String,
    /// Keep streaming new log lines.
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Lines of recent log to show per pod.
    #[arg(long, default_value_t = 100)]
    pub tail: i64,
}

pub async fn run(kube: &KubeArgs, args: LogsArgs) -> Result<()> {
    let project = ProjectId::parse(&args.project)?;
    let cluster = kube.connect().await?;
    let ns = cluster.namespace.clone();
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), &ns);
    let mut list = pods
        .list(&ListParams::default().labels(&format!("{LABEL_APP}={project}")))
        .await
        .with_context(|| format!("listing the pods of {project}"))?
        .items;
    if list.is_empty() {
        bail!(
            "project {project} has no pods in namespace {ns}; `kubectl jockey status {project} \
             -n {ns}` shows why"
        );
    }
    list.sort_by_key(|p| p.metadata.name.clone());
    let prefix = list.len() > 1;
    let mut tasks = Vec::new();
    for pod in list {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let container = pod.spec.as_ref().and_then(|s| {
            s.containers
                .iter()
                .find(|c| c.name == defaults::CONTAINER_NAME)
                .or(s.containers.first())
                .map(|c| c.name.clone())
        });
        let params = LogParams {
            container,
            follow: args.follow,
            tail_lines: Some(args.tail),
            ..Default::default()
        };
        let pods = pods.clone();
        tasks.push(tokio::spawn(async move {
            let label = if prefix {
                format!("[{name}] ")
            } else {
                String::new()
            };
            let stream = pods.log_stream(&name, &params).await.map_err(|e| {
                // A 403 stays the API server's error, so that it is told as a missing role.
                if crate::cluster::is_forbidden(&e) {
                    anyhow::Error::new(e).context(format!("reading the log of pod {name}"))
                } else {
                    anyhow::anyhow!("reading the log of pod {name}: {}", api_message(&e))
                }
            })?;
            let mut lines = stream.lines();
            while let Some(line) = lines.next().await {
                let line = line.with_context(|| format!("reading the log of pod {name}"))?;
                println!("{label}{line}");
            }
            anyhow::Ok(())
        }));
    }
    let mut failures = Vec::new();
    for t in tasks {
        match t.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) if crate::cluster::forbidden(&e).is_some() => return Err(e),
            Ok(Err(e)) => failures.push(format!("{e:#}")),
            Err(e) => failures.push(e.to_string()),
        }
    }
    if !failures.is_empty() {
        bail!(
            "{}; the node may not serve logs yet (is the pod running?)",
            failures.join("; ")
        );
    }
    Ok(())
}
