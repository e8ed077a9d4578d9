//! A `deploy` running as a child process whose output is kept in files, so a test can signal
//! it, look at the cluster while it runs, and read what it printed once it ends.

use crate::deploy_support::{Env, Scratch, jockey_command};
use anyhow::{Context, Result};
use jockey_core::names::ANNOTATION_INSTANCE;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use kube::{Api, Client};
use serde_json::json;
use std::path::Path;
use std::process::{Child, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub struct Running {
    child: Child,
    out: Scratch,
}

pub struct Ended {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Ended {
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

impl Running {
    /// `kubectl-jockey deploy DIR --project P -n NS EXTRA...` for `env`.
    pub fn deploy(env: &Env, dir: &Path, project: &str, extra: &[&str]) -> Result<Self> {
        let dir = dir.to_string_lossy().to_string();
        let mut args = vec!["deploy", &dir, "--project", project, "-n", &env.ns.name];
        args.extend(extra);
        let out = Scratch::new("deploy-out")?;
        let child = jockey_command(&args, &env.builder.name, &[])?
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(out.path().join("stdout"))?)
            .stderr(std::fs::File::create(out.path().join("stderr"))?)
            .spawn()
            .context("starting kubectl-jockey deploy")?;
        Ok(Self { child, out })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What it printed so far.
    pub fn output(&self) -> String {
        let read = |f: &str| std::fs::read_to_string(self.out.path().join(f)).unwrap_or_default();
        format!("{}\n{}", read("stdout"), read("stderr"))
    }

    pub fn ended(&mut self) -> Result<Option<Ended>> {
        match self.child.try_wait()? {
            None => Ok(None),
            Some(status) => Ok(Some(self.collect(status))),
        }
    }

    fn collect(&self, status: ExitStatus) -> Ended {
        let read = |f: &str| std::fs::read_to_string(self.out.path().join(f)).unwrap_or_default();
        Ended {
            status,
            stdout: read("stdout"),
            stderr: read("stderr"),
        }
    }

    /// Waits for the end (killing it after `timeout`).
    pub async fn wait(mut self, timeout: Duration) -> Result<Ended> {
        let start = Instant::now();
        loop {
            if let Some(e) = self.ended()? {
                return Ok(e);
            }
            if start.elapsed() > timeout {
                let _ = self.child.kill();
                let status = self.child.wait()?;
                anyhow::bail!(
                    "deploy still running after {timeout:?}; killed ({status}):\n{}",
                    self.output()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The pods of `ns` matching `selector`, by name.
pub async fn pods(client: &Client, ns: &str, selector: &str) -> Result<Vec<Pod>> {
    Ok(Api::<Pod>::namespaced(client.clone(), ns)
        .list(&ListParams::default().labels(selector))
        .await?
        .items)
}

/// A Kaniko container that exited 0: the build pushed its image.
pub fn build_succeeded() -> serde_json::Value {
    json!({"phase": "Succeeded", "containerStatuses": [{
        "name": "kaniko", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
        "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]})
}

/// The server container started and passed its readiness probe.
pub fn server_ready() -> serde_json::Value {
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    json!({"phase": "Running",
        "conditions": [
            {"type": "Initialized", "status": "True", "lastTransitionTime": now},
            {"type": "ContainersReady", "status": "True", "lastTransitionTime": now},
            {"type": "Ready", "status": "True", "lastTransitionTime": now}],
        "containerStatuses": [{
            "name": "server", "image": "x", "imageID": "", "ready": true, "started": true,
            "restartCount": 0, "state": {"running": {"startedAt": now}}}]})
}

/// Waits for the `default` service account the controller-manager adds to a new namespace
/// (pods, even dry-run ones, are refused without it).
pub async fn service_accounts_ready(client: &Client, namespaces: &[&str]) -> Result<()> {
    for ns in namespaces {
        let api: Api<k8s_openapi::api::core::v1::ServiceAccount> =
            Api::namespaced(client.clone(), ns);
        jockey_e2e::wait_for(
            &format!("service account {ns}/default"),
            Duration::from_secs(60),
            || {
                let api = api.clone();
                async move { Ok(api.get_opt("default").await?.map(|_| ())) }
            },
        )
        .await?;
    }
    Ok(())
}

/// The instance ConfigMap a Deployment names (its jockey.agentops.ai/instance annotation).
pub fn instance_of(dep: &Deployment) -> Option<String> {
    dep.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(ANNOTATION_INSTANCE))
        .cloned()
}
