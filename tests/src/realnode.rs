//! The local cluster's real node (tests/cluster/realnode.sh): whether it runs, the settings it
//! wrote for the plugin, and how a test puts its pods on it.
//!
//! A test that needs real containers starts with
//! `let Some(node) = require_real_node() else { return Ok(()) };`: on a machine that cannot run
//! the node it prints `SKIPPED: <test>: <reason>`, which tests/summary.sh counts as skipped,
//! never as passed. Where the node is required (`JOCKEY_REQUIRE_REAL_NODE=1`, which `.ci/run`
//! sets, or `CI=true`) the skip is a failure instead: a CI machine that cannot run the node is
//! broken, and its tests must not look passed.

use anyhow::{Context, Result};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use serde_json::json;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

/// The real node and the settings `realnode.sh` wrote to `.cluster/env`.
#[derive(Debug, Clone)]
pub struct RealNode {
    /// The Node's name.
    pub name: String,
    /// Key of its `NoSchedule` taint (and of its label, value `true`).
    pub taint_key: String,
    /// The local registry, `host:port`, the same from the host and from pods.
    pub registry: String,
    pub kaniko_image: String,
    pub base_image: String,
}

fn state_dir() -> PathBuf {
    let kubeconfig = crate::kubeconfig_path();
    kubeconfig
        .parent()
        .map(|p| p.to_path_buf())
        .unwrap_or_else(|| crate::repo_root().join(".cluster"))
}

/// The real node, or why the local cluster has none (the reason `realnode.sh` recorded).
pub fn real_node() -> std::result::Result<RealNode, String> {
    let dir = state_dir();
    let status_path = dir.join("realnode.status");
    let status = std::fs::read_to_string(&status_path).map_err(|_| {
        format!(
            "no {}: the cluster was started without the real node; restart it with \
             `make cluster-down && make cluster`",
            status_path.display()
        )
    })?;
    let status = status.trim();
    if status != "ok" {
        return Err(format!("no real node: {status}"));
    }
    let env_path = dir.join("env");
    let text = std::fs::read_to_string(&env_path).map_err(|e| {
        format!(
            "the real node runs but {} is unreadable: {e}",
            env_path.display()
        )
    })?;
    let vars: BTreeMap<&str, &str> = text
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim(), v.trim()))
        .collect();
    let get = |k: &str| {
        vars.get(k)
            .map(|v| v.to_string())
            .ok_or_else(|| format!("{} has no {k}", env_path.display()))
    };
    Ok(RealNode {
        name: get("JOCKEY_REAL_NODE")?,
        taint_key: get("JOCKEY_REAL_NODE_TAINT")?,
        registry: get("IMAGE_REGISTRY")?,
        kaniko_image: get("KANIKO_IMAGE")?,
        base_image: get("BASE_IMAGE")?,
    })
}

/// Prints `SKIPPED: <test>: <reason>` past the test harness's output capture, so that it shows
/// in the log whatever the outcome, where tests/summary.sh counts it.
pub fn skipped(reason: &str) {
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("test");
    let line = format!("SKIPPED: {test}: {reason}\n");
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(line.as_bytes());
    let _ = err.flush();
}

/// Whether a test that cannot have `what` must fail rather than skip: `VAR=1`, or `CI=true`.
/// Returns the setting that requires it, for the failure message.
pub fn required(var: &str) -> Option<String> {
    if std::env::var(var).as_deref() == Ok("1") {
        Some(format!("{var}=1"))
    } else if std::env::var("CI").as_deref() == Ok("true") {
        Some("CI=true".to_string())
    } else {
        None
    }
}

/// The real node, or `None` after reporting the test as skipped with the reason.
/// Panics instead where the node is required ([`required`]: `JOCKEY_REQUIRE_REAL_NODE=1` or
/// `CI=true`).
pub fn require_real_node() -> Option<RealNode> {
    match real_node() {
        Ok(node) => Some(node),
        Err(reason) => {
            if let Some(by) = required("JOCKEY_REQUIRE_REAL_NODE") {
                panic!("the real node is required ({by}) but {reason}");
            }
            skipped(&reason);
            None
        }
    }
}

impl RealNode {
    /// Every pod created in `ns` from now on runs on the real node: the API server's
    /// PodNodeSelector and PodTolerationRestriction admission plugins add the node's selector
    /// and toleration from these namespace annotations, so the plugin's objects stay as a user
    /// would have them.
    pub async fn place(&self, client: &Client, ns: &str) -> Result<()> {
        let tolerations = json!([{
            "key": self.taint_key, "operator": "Exists", "effect": "NoSchedule"
        }])
        .to_string();
        let patch = json!({"metadata": {"annotations": {
            "scheduler.alpha.kubernetes.io/node-selector": format!("{}=true", self.taint_key),
            "scheduler.alpha.kubernetes.io/defaultTolerations": tolerations,
        }}});
        Api::<Namespace>::all(client.clone())
            .patch(ns, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .with_context(|| format!("placing namespace {ns} on the real node"))?;
        Ok(())
    }

    /// The plugin's settings for builds on this cluster.
    pub fn plugin_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("IMAGE_REGISTRY", self.registry.clone()),
            ("KANIKO_IMAGE", self.kaniko_image.clone()),
            ("BASE_IMAGE", self.base_image.clone()),
        ]
    }
}
