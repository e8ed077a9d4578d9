//! Container logs on the KWOK nodes: a log file KWOK serves for a namespace's pods (through a
//! `ClusterLogs` object), and a node KWOK does not manage whose logs it still serves, for a test
//! that plays the kubelet of its pods and needs their logs too.
//!
//! KWOK fakes the nodes, so there is no container to log anything. Its controller, which the API
//! server asks for a pod's log the way it asks a kubelet, serves one from a file on this host when
//! a `ClusterLogs` object selects the pod (`tests/cluster/up.sh` enables the CRD). Each test writes
//! its own file, in the CRI log format a kubelet reads, and selects only the pods of its own
//! namespace (KWOK's selector matches namespaces and pod names, not labels).

use super::Scratch;
use anyhow::{Context, Result};
use jockey_e2e::kubectl;
use k8s_openapi::api::core::v1::Node;
use kube::api::{DynamicObject, PostParams};
use kube::discovery::ApiResource;
use kube::{Api, Client};
use serde_json::json;
use std::io::Write;
use std::path::PathBuf;

// ---------------------------------------------------------------------------------------------
// A container log file KWOK serves, and the ClusterLogs object that points at it.
// ---------------------------------------------------------------------------------------------

/// A log file in the CRI format (`<time> <stream> <tag> <line>`) that the test appends to.
pub struct LogFile {
    pub path: PathBuf,
    _dir: Scratch,
}

impl LogFile {
    pub fn new(tag: &str, lines: &[&str]) -> Result<Self> {
        let dir = Scratch::new(tag)?;
        let me = Self {
            path: dir.path().join("container.log"),
            _dir: dir,
        };
        std::fs::write(&me.path, "")?;
        for line in lines {
            me.append(line)?;
        }
        Ok(me)
    }

    /// Appends one full line. The timestamp only has to parse: no test asks for `--since`.
    pub fn append(&self, line: &str) -> Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.path)
            .with_context(|| format!("opening {}", self.path.display()))?;
        writeln!(f, "2026-01-01T00:00:00.000000000Z stdout F {line}")?;
        f.flush()?;
        Ok(())
    }
}

fn cluster_logs_resource() -> ApiResource {
    ApiResource {
        group: "kwok.x-k8s.io".into(),
        version: "v1alpha1".into(),
        api_version: "kwok.x-k8s.io/v1alpha1".into(),
        kind: "ClusterLogs".into(),
        plural: "clusterlogs".into(),
    }
}

/// A `ClusterLogs` serving `file` for every container of every pod in `namespace`; deleted on
/// drop.
pub struct ServedLogs {
    name: String,
}

impl ServedLogs {
    pub async fn create(client: &Client, namespace: &str, file: &LogFile) -> Result<Self> {
        let name = format!("e2e-logs-{namespace}");
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &cluster_logs_resource());
        let obj: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "kwok.x-k8s.io/v1alpha1",
            "kind": "ClusterLogs",
            "metadata": {"name": name, "labels": {"jockey-e2e": "true"}},
            "spec": {
                "selector": {"matchNamespaces": [namespace]},
                "logs": [{"logsFile": file.path.to_string_lossy(), "follow": true}]
            }
        }))?;
        api.create(&PostParams::default(), &obj)
            .await
            .with_context(|| {
                format!(
                    "creating ClusterLogs {name}; a cluster without KWOK's Logs CRDs predates \
                     tests/cluster/up.sh serving logs: `make cluster` starts it anew"
                )
            })?;
        Ok(Self { name })
    }
}

impl Drop for ServedLogs {
    fn drop(&mut self) {
        let _ = kubectl(&[
            "delete",
            "clusterlogs.kwok.x-k8s.io",
            &self.name,
            "--ignore-not-found",
            "--wait=false",
        ]);
    }
}

/// A Node object named `name` with the address and kubelet port of KWOK's nodes but without
/// KWOK's annotation: the API server takes its pods' logs from KWOK, and KWOK leaves its pods
/// alone (the test writes their status). Unschedulable, so the scheduler puts nothing else there;
/// a [`super::NoKubelet`] pin binds a namespace's pods to it. Deleted on drop with its pods (no
/// kubelet would ever confirm their graceful deletion).
pub struct OwnNode {
    name: String,
}

impl OwnNode {
    pub async fn create(client: &Client, name: &str) -> Result<Self> {
        let nodes: Api<Node> = Api::all(client.clone());
        let kwok = nodes
            .get("kwok-node-0")
            .await
            .context("reading kwok-node-0 (is the cluster up?)")?;
        let status = kwok.status.unwrap_or_default();
        let port = status
            .daemon_endpoints
            .and_then(|d| d.kubelet_endpoint)
            .map(|e| e.port)
            .context("kwok-node-0 has no kubelet port")?;
        let node: Node = serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {"jockey-e2e": "true"}},
            "spec": {"unschedulable": true},
            "status": {
                "addresses": status.addresses.unwrap_or_default(),
                "daemonEndpoints": {"kubeletEndpoint": {"Port": port}}
            }
        }))?;
        nodes
            .create(&PostParams::default(), &node)
            .await
            .with_context(|| format!("creating Node {name}"))?;
        Ok(Self {
            name: name.to_string(),
        })
    }
}

impl Drop for OwnNode {
    fn drop(&mut self) {
        let on_node = format!("spec.nodeName={}", self.name);
        let _ = kubectl(&[
            "delete",
            "pods",
            "--all-namespaces",
            "--field-selector",
            &on_node,
            "--grace-period=0",
            "--force",
            "--wait=false",
        ]);
        let _ = kubectl(&[
            "delete",
            "node",
            &self.name,
            "--ignore-not-found",
            "--wait=false",
        ]);
    }
}
