//! A real pod behind the shared ALB: `kubectl jockey deploy examples/agent` on the real node in a
//! namespace the real AWS Load Balancer Controller serves. The controller registers the pod's IP
//! in the project's target group and reconciles the network for it, which needs the pod's node
//! as an EC2 instance: the real node's `providerID` (tests/cluster/alb-seed.py gives it one in
//! moto). Without it the controller loops every 15 s on "providerID is not specified for node:
//! realnode" and the binding never settles; here it settles, and the controller's log stays free
//! of that line while the test runs.
//!
//! Needs both the real node and the controller: SKIPPED (or, where they are required, failed)
//! without either.

mod real_support;

use anyhow::{Context, Result, bail, ensure};
use jockey_e2e::{AlbController, client, repo_root, require_real_node, wait_for};
use k8s_openapi::api::core::v1::{Event, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::api::ListParams;
use kube::{Api, Client};
use real_support::{RealEnv, TIMEOUT};
use std::time::Duration;

const TEST: &str = "real_alb::a_real_pod_behind_the_alb_is_registered_and_its_network_settles";
/// What the controller logs when the node of a target pod is no EC2 instance it can resolve.
const NO_PROVIDER_ID: &str = "providerID is not specified for node";

fn lines_with(log: &std::path::Path, needle: &str) -> usize {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(needle))
        .count()
}

/// `(reason, message, last seen)` of the controller's events on the TargetGroupBindings of `ns`.
async fn binding_events(
    client: &Client,
    ns: &str,
) -> Result<Vec<(String, String, Option<Timestamp>)>> {
    Ok(Api::<Event>::namespaced(client.clone(), ns)
        .list(&ListParams::default().fields("involvedObject.kind=TargetGroupBinding"))
        .await?
        .items
        .into_iter()
        .map(|e| {
            let at = e.last_timestamp.map(|t| t.0);
            (
                e.reason.unwrap_or_default(),
                e.message.unwrap_or_default(),
                at,
            )
        })
        .collect())
}

#[tokio::test]
async fn a_real_pod_behind_the_alb_is_registered_and_its_network_settles() -> Result<()> {
    let Some(node) = require_real_node() else {
        return Ok(());
    };
    let Some(ctl) = AlbController::require(TEST)? else {
        return Ok(());
    };
    let client = client().await?;
    let env = RealEnv::new(&client, &node, "real-alb").await?;
    ctl.serve(&client, env.ns()).await?;
    let run_id = std::process::id() % 100_000;
    let project = format!("real-alb-{run_id}");
    let group = format!("e2e-realalb-{run_id}");
    let before = lines_with(&ctl.log, NO_PROVIDER_ID);
    // Only what the controller logs from now on is about this test.
    let log_start = std::fs::metadata(&ctl.log).map(|m| m.len()).unwrap_or(0) as usize;

    let outcome = async {
        let example = repo_root().join("examples/agent");
        let mut vars = ctl.env();
        vars.push(("ALB_SHARED_GROUP_NAME", &group));
        vars.push(("DEPLOYMENT_DOMAIN", &ctl.certificate_domain));
        let dir = example.to_string_lossy();
        let run = env.jockey(
            &["deploy", &dir, "--project", &project, "--timeout", TIMEOUT],
            &vars,
        )?;
        ensure!(run.ok, "deploy failed:\n{}", run.all());
        ensure!(
            run.stdout.contains("Ingress address: "),
            "no ALB address:\n{}",
            run.all()
        );
        let pod_ip = Api::<Pod>::namespaced(client.clone(), env.ns())
            .list(&ListParams::default().labels(&format!("app={project}")))
            .await?
            .items
            .into_iter()
            .find(|p| p.metadata.deletion_timestamp.is_none())
            .and_then(|p| {
                ensure_on(&p, &node.name).ok()?;
                p.status?.pod_ip
            })
            .context("no pod of the project on the real node")?;

        // The controller registers the real pod's IP in the project's target group...
        let registered = wait_for(
            "the controller to register the pod's IP",
            Duration::from_secs(180),
            || {
                let (log, pod_ip) = (ctl.log.clone(), pod_ip.clone());
                async move {
                    let text = std::fs::read(&log).unwrap_or_default();
                    let text = String::from_utf8_lossy(text.get(log_start..).unwrap_or_default());
                    Ok(text
                        .lines()
                        .find(|l| {
                            l.contains("\"registered targets\"")
                                && l.contains(&format!("\"Id\":\"{pod_ip}\""))
                        })
                        .and_then(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                        .and_then(|v| v["ts"].as_str()?.parse::<Timestamp>().ok()))
                }
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}\n{}", ctl.log_excerpt(&[env.ns(), &pod_ip], 20)))?;
        // ...in the reconcile that also reconciled its network (the reconcile says so only when
        // both worked; a node it cannot resolve fails the network part, every 15 s).
        let settled = wait_for(
            "the TargetGroupBinding's successful reconcile of the registered pod",
            Duration::from_secs(120),
            || {
                let (client, ns) = (client.clone(), env.ns().to_string());
                async move {
                    let events = binding_events(&client, &ns).await?;
                    Ok(events
                        .iter()
                        .any(|(reason, _, at)| {
                            reason == "SuccessfullyReconciled"
                                && at.is_some_and(|t| t.as_second() >= registered.as_second())
                        })
                        .then_some(events))
                }
            },
        )
        .await;
        let events = match settled {
            Ok(e) => e,
            Err(e) => bail!(
                "{e}; the binding's events: {:?}\n{}",
                binding_events(&client, env.ns()).await?,
                ctl.log_excerpt(&[env.ns(), NO_PROVIDER_ID], 20)
            ),
        };
        let failures: Vec<_> = events
            .iter()
            .filter(|(reason, _, _)| reason.starts_with("Failed"))
            .collect();
        ensure!(
            failures.is_empty(),
            "the binding failed on the way: {failures:?}"
        );
        // A reconcile loop runs every 15 s when the node cannot be resolved: two of them.
        tokio::time::sleep(Duration::from_secs(31)).await;
        let after = lines_with(&ctl.log, NO_PROVIDER_ID);
        ensure!(
            after == before,
            "the controller logged {} more \"{NO_PROVIDER_ID}\" lines:\n{}",
            after - before,
            ctl.log_excerpt(&[NO_PROVIDER_ID], 5)
        );
        let delete = env.jockey(&["delete", &project, "--timeout", "120s"], &vars)?;
        ensure!(delete.ok, "{}", delete.all());
        Ok(())
    }
    .await;
    env.cleanup().await?;
    outcome
}

fn ensure_on(pod: &Pod, node: &str) -> Result<()> {
    let on = pod.spec.as_ref().and_then(|s| s.node_name.as_deref());
    ensure!(on == Some(node), "pod on {on:?}, not {node}");
    Ok(())
}
