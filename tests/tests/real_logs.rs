//! `deploy --follow` and `logs-builder` on the real node: the lines printed are Kaniko's own,
//! from a build that really runs, and `--follow` prints them while it runs (before the
//! Deployment exists: deploy applies it only after the build). Replaces a test that wrote the
//! build pod's status itself on a node without a kubelet.

mod real_support;

use anyhow::{Context, Result, ensure};
use jockey_e2e::{client, require_real_node};
use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use real_support::deploy_support::{example_copy, jockey, jockey_command};
use real_support::{RealEnv, TIMEOUT};
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;

#[tokio::test]
async fn follow_prints_the_real_build_log_while_it_runs_and_logs_builder_keeps_it() -> Result<()> {
    let Some(node) = require_real_node() else {
        return Ok(());
    };
    let client = client().await?;
    let env = RealEnv::new(&client, &node, "real-logs").await?;
    let project = "chatty";
    let marker = format!("jockey-build-marker-{}", env.builder());
    // The example agent with a Dockerfile of its own whose one RUN step prints the marker.
    let dir = example_copy("real-logs")?;
    std::fs::write(
        dir.path().join("Dockerfile"),
        format!(
            "FROM {}\nWORKDIR /app\nCOPY . /app\nRUN echo {marker} && chmod 0755 /app\n\
             USER 10001\nENV PORT=8080\nCMD [\"python3\", \"server.py\"]\n",
            node.base_image
        ),
    )?;

    let settings = node.plugin_env();
    let vars: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let dir_arg = dir.path().to_string_lossy().to_string();
    let mut cmd = jockey_command(
        &[
            "deploy",
            &dir_arg,
            "--project",
            project,
            "--follow",
            "--timeout",
            TIMEOUT,
            "-n",
            env.ns(),
        ],
        env.builder(),
        &vars,
    )?;
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting kubectl-jockey deploy --follow")?;
    let stderr = child.stderr.take().context("stderr")?;
    let (tx, rx) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });

    // The marker arrives through --follow while the build runs: the Deployment is not there yet.
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), env.ns());
    let mut seen = Vec::new();
    let mut deployment_when_seen = None;
    while let Ok(line) = rx.recv() {
        let is_marker = line.contains(&marker) && line.contains("| ");
        seen.push(line);
        if is_marker {
            deployment_when_seen = Some(deployments.get_opt(project).await?.is_some());
            break;
        }
    }
    seen.extend(rx.iter());
    let status = child.wait()?;
    let _ = reader.join();
    let out = seen.join("\n");
    ensure!(status.success(), "deploy --follow failed:\n{out}");
    ensure!(
        deployment_when_seen == Some(false),
        "the build log must be printed while the build runs, before the Deployment is applied \
         (marker seen: {}, Deployment existed then: {deployment_when_seen:?}):\n{out}",
        deployment_when_seen.is_some()
    );
    // Kaniko's own lines, not only the Dockerfile's output.
    ensure!(
        seen.iter()
            .any(|l| l.contains("| ") && l.contains("RUN echo")),
        "Kaniko's log lines are printed as such:\n{out}"
    );

    // After the build: logs-builder --project prints the same build's log.
    let logs = jockey(
        &["logs-builder", "-n", env.builder(), "--project", project],
        env.builder(),
        &vars,
    )?;
    ensure!(logs.ok, "logs-builder failed: {}", logs.all());
    ensure!(
        logs.stdout.contains(&marker),
        "logs-builder must print the build's output {marker:?}: {}",
        logs.all()
    );
    env.cleanup().await
}
