//! Support for the end-to-end tests: they run against the local control plane that
//! `make cluster` starts (kube-apiserver, controller-manager and scheduler v1.37.2, etcd, KWOK,
//! and a real node where the machine can run one: [`realnode`]). Nothing here mocks the API
//! server.

pub mod realnode;
pub mod tls;

pub use realnode::{RealNode, require_real_node};

use anyhow::{Context, Result, bail};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{DeleteParams, PostParams};
use kube::{Api, Client, Config, config::KubeConfigOptions, config::Kubeconfig};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// Kubeconfig of the local cluster: `$JOCKEY_KUBECONFIG`, else `.cluster/kubeconfig`.
pub fn kubeconfig_path() -> PathBuf {
    // Tests run with tests/ as their directory, so a relative path is taken from the repo root.
    std::env::var_os("JOCKEY_KUBECONFIG")
        .map(|p| repo_root().join(p))
        .unwrap_or_else(|| repo_root().join(".cluster/kubeconfig"))
}

/// Directory of the binaries the cluster scripts built (kubectl, kwok, ...).
pub fn tool_bin_dir() -> PathBuf {
    repo_root().join(".cache/bin")
}

/// A client for the local cluster. Fails with the fix when the cluster is not running.
pub async fn client() -> Result<Client> {
    let path = kubeconfig_path();
    if !path.exists() {
        bail!(
            "no local cluster: {} does not exist; start it with `make cluster` (or run `make test`)",
            path.display()
        );
    }
    let kc = Kubeconfig::read_from(&path).with_context(|| format!("reading {}", path.display()))?;
    let config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await?;
    Ok(Client::try_from(config)?)
}

/// Runs the real kubectl against the local cluster.
pub fn kubectl(args: &[&str]) -> Result<Output> {
    let out = Command::new(tool_bin_dir().join("kubectl"))
        .arg("--kubeconfig")
        .arg(kubeconfig_path())
        .args(args)
        .output()
        .context("running kubectl (build it with `make cluster`)")?;
    Ok(out)
}

/// A fresh namespace named after the test, deleted by [`TestNamespace::cleanup`].
pub struct TestNamespace {
    pub name: String,
    client: Client,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

impl TestNamespace {
    pub async fn create(client: &Client, prefix: &str) -> Result<Self> {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let name = format!("{prefix}-{}-{n}", std::process::id() % 100_000);
        let ns: Namespace = serde_json::from_value(serde_json::json!({
            "metadata": { "name": name, "labels": { "jockey-e2e": "true" } }
        }))?;
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .with_context(|| format!("creating namespace {name}"))?;
        Ok(Self {
            name,
            client: client.clone(),
        })
    }

    pub async fn cleanup(self) -> Result<()> {
        Api::<Namespace>::all(self.client)
            .delete(&self.name, &DeleteParams::background())
            .await?;
        Ok(())
    }
}

/// Polls `check` until it returns `Some`, or fails after `timeout` naming `what`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await? {
            return Ok(v);
        }
        if start.elapsed() > timeout {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
