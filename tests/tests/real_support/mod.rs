//! Support for the tests that run real containers on the local cluster's real node
//! (tests/cluster/realnode.sh): a project and a builder namespace placed on the node, the plugin
//! with the node's registry, Kaniko and base images, the registry's contents through `crane`,
//! and HTTP requests to a project through its Service's cluster IP (the host routes the Service
//! range to the node, where kube-proxy forwards it to the pods).

#![allow(dead_code)]

#[path = "../deploy_support/mod.rs"]
pub mod deploy_support;

use anyhow::{Context, Result, bail};
use deploy_support::{Env, Run, Scratch};
use jockey_e2e::{RealNode, tool_bin_dir};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::ListParams;
use kube::{Api, Client};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// A generous bound for one real build plus a rollout on a busy two-core machine; the tests
/// judge outcomes, never durations.
pub const TIMEOUT: &str = "600s";

/// A project namespace and a builder namespace whose pods run on the real node.
pub struct RealEnv {
    pub node: RealNode,
    pub env: Env,
}

impl RealEnv {
    pub async fn new(client: &Client, node: &RealNode, tag: &str) -> Result<Self> {
        let settings = node.plugin_env();
        let broker_env: Vec<(&str, &str)> =
            settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let env = Env::with_broker_env(client, tag, &broker_env).await?;
        node.place(client, &env.ns.name).await?;
        node.place(client, &env.builder.name).await?;
        Ok(Self {
            node: node.clone(),
            env,
        })
    }

    pub fn ns(&self) -> &str {
        &self.env.ns.name
    }

    pub fn builder(&self) -> &str {
        &self.env.builder.name
    }

    /// `kubectl-jockey ARGS -n <ns>` with the node's registry, Kaniko and base images, and
    /// `extra` on top.
    pub fn jockey(&self, args: &[&str], extra: &[(&str, &str)]) -> Result<Run> {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["-n", self.ns()]);
        let settings = self.node.plugin_env();
        let mut env: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
        env.extend_from_slice(extra);
        deploy_support::jockey(&all, self.builder(), &env)
    }

    /// `deploy DIR --project PROJECT --timeout TIMEOUT`.
    pub fn deploy(&self, dir: &Path, project: &str, extra: &[(&str, &str)]) -> Result<Run> {
        let dir = dir.to_string_lossy();
        self.jockey(
            &["deploy", &dir, "--project", project, "--timeout", TIMEOUT],
            extra,
        )
    }

    /// `deploy DIR --project PROJECT --timeout TIMEOUT --follow`: the output carries the build's
    /// log, when a build runs.
    pub fn deploy_following(&self, dir: &Path, project: &str) -> Result<Run> {
        let dir = dir.to_string_lossy();
        self.jockey(
            &[
                "deploy",
                &dir,
                "--project",
                project,
                "--timeout",
                TIMEOUT,
                "--follow",
            ],
            &[],
        )
    }

    /// The build Jobs of `project` in the builder namespace.
    pub async fn jobs(&self, project: &str) -> Result<Vec<Job>> {
        Ok(
            Api::<Job>::namespaced(self.env.client.clone(), self.builder())
                .list(
                    &ListParams::default()
                        .labels(&format!("{}={project}", jockey_core::names::LABEL_PROJECT)),
                )
                .await?
                .items,
        )
    }

    /// The running pods of `project`.
    pub async fn pods(&self, project: &str) -> Result<Vec<Pod>> {
        Ok(Api::<Pod>::namespaced(self.env.client.clone(), self.ns())
            .list(&ListParams::default().labels(&format!("app={project}")))
            .await?
            .items)
    }

    /// POSTs `body` to `path` on the project's Service (port 80) until it answers 200, and
    /// returns the answer. The first tries may precede kube-proxy's rules for new endpoints.
    pub async fn post(&self, project: &str, path: &str, body: &str) -> Result<String> {
        let svc = Api::<Service>::namespaced(self.env.client.clone(), self.ns())
            .get(&format!("svc-{project}"))
            .await
            .with_context(|| format!("reading Service svc-{project}"))?;
        let ip = svc
            .spec
            .and_then(|s| s.cluster_ip)
            .filter(|ip| !ip.is_empty() && ip != "None")
            .with_context(|| format!("Service svc-{project} has no cluster IP"))?;
        let url = format!("http://{ip}:80{path}");
        let mut last = String::new();
        for _ in 0..120 {
            let (code, text) = curl_post(&url, body)?;
            if code == 200 {
                return Ok(text);
            }
            last = format!("HTTP {code}: {text}");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        bail!("no answer from {url} through Service svc-{project}; last: {last}")
    }

    pub async fn cleanup(self) -> Result<()> {
        self.env.cleanup().await
    }
}

/// `curl -d BODY URL`: (status, body). curl is the oracle here, as a user would use it.
pub fn curl_post(url: &str, body: &str) -> Result<(u16, String)> {
    let out = Command::new("curl")
        .args([
            "-s",
            "--max-time",
            "10",
            "-w",
            "\n%{http_code}",
            "-d",
            body,
            url,
        ])
        .output()
        .context("running curl")?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (answer, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    Ok((code.trim().parse().unwrap_or(0), answer.to_string()))
}

/// Tags of `repo` in the registry (`crane ls`); empty when the repository does not exist.
pub fn registry_tags(registry: &str, repo: &str) -> Result<Vec<String>> {
    let out = Command::new(tool_bin_dir().join("crane"))
        .args(["ls", "--insecure", &format!("{registry}/{repo}")])
        .output()
        .context("running crane ls (built by tests/cluster/build-node.sh)")?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        if err.contains("NAME_UNKNOWN") || err.contains("404") {
            return Ok(Vec::new());
        }
        bail!("crane ls {registry}/{repo}: {err}");
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect())
}

/// The digest the registry serves for `image` (`crane digest`).
pub fn registry_digest(image: &str) -> Result<String> {
    let out = Command::new(tool_bin_dir().join("crane"))
        .args(["digest", "--insecure", image])
        .output()
        .context("running crane digest")?;
    if !out.status.success() {
        bail!(
            "crane digest {image}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// A scratch project: `files` are (relative path, contents).
pub fn project(tag: &str, files: &[(&str, &str)]) -> Result<Scratch> {
    let dir = Scratch::new(tag)?;
    for (path, text) in files {
        let p = dir.path().join(path);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(p, text)?;
    }
    Ok(dir)
}

/// The tag part (`<h>`) of an image reference.
pub fn tag_of(image: &str) -> &str {
    image.rsplit(':').next().unwrap_or(image)
}

/// The `output` of an agent's JSON answer.
pub fn answer(text: &str) -> Result<String> {
    let v: serde_json::Value =
        serde_json::from_str(text).with_context(|| format!("not JSON: {text}"))?;
    v["output"]
        .as_str()
        .map(str::to_string)
        .with_context(|| format!("no output in {text}"))
}

/// Asks `POST /run` until `want` answers five times in a row (an old pod may still answer
/// while the rollout finishes); the last answer otherwise.
pub async fn answers_in_a_row(env: &RealEnv, project: &str, body: &str, want: &str) -> Result<()> {
    let mut in_a_row = 0;
    let mut last = String::new();
    for _ in 0..240 {
        let out = env.post(project, "/run", body).await?;
        if answer(&out)? == want {
            in_a_row += 1;
            if in_a_row == 5 {
                return Ok(());
            }
        } else {
            in_a_row = 0;
            last = out;
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
    }
    anyhow::bail!("{want:?} never answered five times in a row; last: {last}")
}
