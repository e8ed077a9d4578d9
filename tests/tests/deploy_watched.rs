//! "The build and the rollout are watched (kube's watcher, not polled)": what a `deploy` asks of
//! the API server, read from the API server's audit log (tests/cluster/audit-policy.yaml), the
//! plugin's requests told apart by its User-Agent. The build pod and the server pod sit on a node
//! without a kubelet, so the test decides how long each wait lasts: during two waits of
//! [`QUIET`] each the plugin may renew its deploy Lease and nothing else; it must not GET or LIST
//! anything (a poll at any interval shorter than the wait shows), and it must hold watches on its
//! BuildRequest (the build broker reports the build there) and on the Deployment, its ReplicaSets
//! and pods. It asks nothing at all in the builder namespace: that is the broker's.

mod deploy_support;
#[allow(dead_code)]
#[path = "faults/running.rs"]
mod running;

use anyhow::{Context, Result, ensure};
use deploy_support::{Env, NoKubelet, example_copy, play_kubelet};
use jockey_e2e::{client, kubeconfig_path, wait_for};
use k8s_openapi::jiff::Timestamp;
use running::{Running, build_succeeded, pods, server_ready, service_accounts_ready};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// How long each wait lasts with nothing to see.
const QUIET: Duration = Duration::from_secs(12);
/// What the plugin sends as its User-Agent (kubectl-jockey/src/cluster.rs).
const AGENT: &str = "kubectl-jockey/";

/// The API server's audit log and the older file it rotated to (`audit-log-maxbackup=1`).
fn audit_logs() -> Vec<PathBuf> {
    let name = std::env::var("JOCKEY_CLUSTER_NAME").unwrap_or_else(|_| "jockey".into());
    let dir = kubeconfig_path()
        .parent()
        .map(|p| p.join(format!("kwok/clusters/{name}/logs")))
        .unwrap_or_default();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("audit") && n.ends_with(".log"))
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// One request the plugin made, from its audit event.
#[derive(Debug, Clone)]
struct Request {
    verb: String,
    resource: String,
    namespace: String,
    at: Timestamp,
    uri: String,
}

/// The plugin's requests about `namespaces` received at or after `since`.
fn plugin_requests(namespaces: &[&str], since: Timestamp) -> Result<Vec<Request>> {
    let files = audit_logs();
    ensure!(
        files.iter().any(|f| f.ends_with("audit.log")),
        "no audit log in {:?}: the cluster predates tests/cluster/audit-policy.yaml; restart it \
         (`make cluster-down && make cluster`)",
        kubeconfig_path().parent()
    );
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).with_context(|| format!("reading {f:?}"))?;
        for line in text.lines() {
            if !line.contains(AGENT) {
                continue;
            }
            let Ok(e) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            // A watch is logged when its response starts and again when it ends; a request once.
            let stage = e["stage"].as_str().unwrap_or_default();
            let verb = e["verb"].as_str().unwrap_or_default().to_string();
            let wanted = if verb == "watch" {
                stage == "ResponseStarted"
            } else {
                stage == "ResponseComplete"
            };
            let ns = e["objectRef"]["namespace"].as_str().unwrap_or_default();
            if !wanted
                || !e["userAgent"]
                    .as_str()
                    .unwrap_or_default()
                    .starts_with(AGENT)
                || !namespaces.contains(&ns)
            {
                continue;
            }
            let at: Timestamp = e["requestReceivedTimestamp"]
                .as_str()
                .unwrap_or_default()
                .parse()
                .with_context(|| format!("a time in {line}"))?;
            if at < since {
                continue;
            }
            out.push(Request {
                verb,
                resource: e["objectRef"]["resource"]
                    .as_str()
                    .unwrap_or_default()
                    .into(),
                namespace: ns.into(),
                at,
                uri: e["requestURI"].as_str().unwrap_or_default().into(),
            });
        }
    }
    Ok(out)
}

/// The requests outside the Lease's renewal received in `[from, to)`.
fn during(requests: &[Request], from: Timestamp, to: Timestamp) -> Vec<&Request> {
    requests
        .iter()
        .filter(|r| r.at >= from && r.at < to && r.resource != "leases")
        .collect()
}

fn watches(requests: &[Request], namespace: &str, resource: &str) -> usize {
    requests
        .iter()
        .filter(|r| r.verb == "watch" && r.namespace == namespace && r.resource == resource)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_deploy_watches_its_build_and_rollout_and_polls_nothing_while_it_waits() -> Result<()> {
    let client = client().await?;
    let env = Env::new(&client, "watched").await?;
    let (ns, builder) = (env.ns.name.clone(), env.builder.name.clone());
    let dir = example_copy("watched")?;
    let project = "watched";
    service_accounts_ready(&client, &[&ns, &builder]).await?;
    let build_pin = NoKubelet::pin(&client, &builder).await?;
    let pod_pin = NoKubelet::pin(&client, &ns).await?;

    let start = Timestamp::now();
    let mut run = Running::deploy(&env, dir.path(), project, &["--timeout", "300s"])?;
    let job_pods = format!("jockey.agentops.ai/project={project}");
    wait_for("the build pod", Duration::from_secs(120), || {
        let (client, builder, sel) = (client.clone(), builder.clone(), job_pods.clone());
        async move { Ok((!pods(&client, &builder, &sel).await?.is_empty()).then_some(())) }
    })
    .await?;
    // A second for the plugin to see the pod and settle into its wait.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let build_quiet = Timestamp::now();
    tokio::time::sleep(QUIET).await;
    let build_done = Timestamp::now();
    ensure!(
        run.ended()?.is_none(),
        "deploy ended while its build had not finished:\n{}",
        run.output()
    );
    play_kubelet(&client, &builder, &job_pods, build_succeeded()).await?;

    let server_pods = format!("app={project}");
    wait_for("the server pod", Duration::from_secs(120), || {
        let (client, ns, sel) = (client.clone(), ns.clone(), server_pods.clone());
        async move { Ok((!pods(&client, &ns, &sel).await?.is_empty()).then_some(())) }
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rollout_quiet = Timestamp::now();
    tokio::time::sleep(QUIET).await;
    let rollout_done = Timestamp::now();
    ensure!(
        run.ended()?.is_none(),
        "deploy ended before its pod was Ready:\n{}",
        run.output()
    );
    play_kubelet(&client, &ns, &server_pods, server_ready()).await?;
    let ended = run.wait(Duration::from_secs(240)).await?;
    ensure!(ended.status.success(), "deploy failed:\n{}", ended.all());

    let requests = plugin_requests(&[&ns, &builder], start)?;
    let mut by_verb: BTreeMap<(String, String), usize> = BTreeMap::new();
    for r in &requests {
        *by_verb
            .entry((r.verb.clone(), r.resource.clone()))
            .or_default() += 1;
    }
    let table: Vec<String> = by_verb
        .iter()
        .map(|((verb, resource), n)| format!("{verb:>6} {resource:<12} {n}"))
        .collect();
    eprintln!(
        "the deploy's requests by verb and resource:\n{}",
        table.join("\n")
    );
    ensure!(
        !requests.is_empty(),
        "no request of the plugin in the audit log"
    );

    // Nothing in the builder namespace: a tenant holds no access there.
    let in_builder: Vec<String> = requests
        .iter()
        .filter(|r| r.uri.contains(&format!("/namespaces/{builder}/")))
        .map(|r| format!("{} {}", r.verb, r.uri))
        .collect();
    ensure!(
        in_builder.is_empty(),
        "the plugin asked the builder namespace:\n{}",
        in_builder.join("\n")
    );
    // Watched: the build's request, the Deployment, its ReplicaSets and pods.
    for (namespace, resource) in [
        (&ns, "buildrequests"),
        (&ns, "deployments"),
        (&ns, "replicasets"),
        (&ns, "pods"),
    ] {
        ensure!(
            watches(&requests, namespace, resource) >= 1,
            "no watch of {resource} in {namespace}; requests by verb:\n{}",
            table.join("\n")
        );
    }
    // Not polled: while nothing changed, no GET, no LIST, nothing but the Lease's renewal (and
    // no watch started again: the ones running held).
    for (what, from, to) in [
        ("its build", build_quiet, build_done),
        ("its rollout", rollout_quiet, rollout_done),
    ] {
        let asked: Vec<String> = during(&requests, from, to)
            .iter()
            .map(|r| format!("{} {} {}", r.at, r.verb, r.uri))
            .collect();
        ensure!(
            asked.is_empty(),
            "while {what} made no progress for {QUIET:?} the plugin asked the API server:\n{}",
            asked.join("\n")
        );
    }

    pod_pin.cleanup().await?;
    build_pin.cleanup().await?;
    env.cleanup().await
}
