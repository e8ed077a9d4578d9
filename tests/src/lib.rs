//! Support for the end-to-end tests: they run against the local control plane that
//! `make cluster` starts (kube-apiserver, controller-manager and scheduler v1.37.2, etcd, KWOK,
//! and a real node where the machine can run one: [`realnode`]). Nothing here mocks the API
//! server.

pub mod aws;
pub mod broker;
pub mod realnode;
pub mod tls;

pub use broker::Broker;
pub use realnode::{RealNode, require_real_node};

use anyhow::{Context, Result, bail};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{DeleteParams, PostParams};
use kube::{Api, Client, Config, config::KubeConfigOptions, config::Kubeconfig};
use std::collections::BTreeMap;
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

/// [`kubectl`] that must succeed: its stdout and stderr together, or an error naming the
/// command and what it printed.
pub fn kubectl_ok(args: &[&str]) -> Result<String> {
    let out = kubectl(args)?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() {
        anyhow::bail!("kubectl {}: {text}", args.join(" "));
    }
    Ok(text)
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

/// Reports a test as skipped: the line goes straight to the process's stderr, past libtest's
/// output capture, and `tests/summary.sh` counts it as a skip instead of the pass libtest
/// records. `test` names the test (e.g. `alb_controller::three_projects`), `reason` says why
/// and how to run it.
pub fn skip(test: &str, reason: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED: {test}: {reason}");
}

/// The AWS Load Balancer Controller that `tests/cluster/alb-controller.sh` runs beside the local
/// cluster, against its own moto server.
#[derive(Debug, Clone)]
pub struct AlbController {
    /// The AWS settings of its moto server (`.cluster/aws.env`), as a user would export them.
    pub aws_env: Vec<(String, String)>,
    /// Its log file.
    pub log: PathBuf,
    /// The label (key, value) of the namespaces whose Ingresses it serves.
    pub namespace_label: (String, String),
    /// An issued ACM certificate in moto for `*.<certificate_domain>`.
    pub certificate_arn: String,
    pub certificate_domain: String,
    /// The VPC moto was seeded with, and its subnets (one per zone), for tests that make load
    /// balancers of their own.
    pub vpc_id: String,
    pub subnets: Vec<String>,
}

fn env_file(path: &Path) -> Result<Vec<(String, String)>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(text
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect())
}

impl AlbController {
    /// The running controller. `Ok(None)` when the cluster scripts left it out (its source is
    /// absent): the test is then reported skipped with their reason and should return. An
    /// error when it should run and does not, and when it is left out where it is required
    /// (`JOCKEY_REQUIRE_ALB_CONTROLLER=1`, which `.ci/run` sets, or `CI=true`).
    pub fn require(test: &str) -> Result<Option<Self>> {
        let cluster = kubeconfig_path()
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| repo_root().join(".cluster"));
        let state = cluster.join("alb-controller");
        if let Ok(why) = std::fs::read_to_string(state.join("absent")) {
            if let Some(by) = realnode::required("JOCKEY_REQUIRE_ALB_CONTROLLER") {
                bail!(
                    "the AWS Load Balancer Controller is required ({by}) but {}",
                    why.trim()
                );
            }
            skip(test, why.trim());
            return Ok(None);
        }
        let pid = std::fs::read_to_string(state.join("controller.pid")).unwrap_or_default();
        if pid.trim().is_empty() || !Path::new("/proc").join(pid.trim()).exists() {
            bail!(
                "the AWS Load Balancer Controller is not running (no live pid in {}): start the \
                 cluster with `make cluster`, or `tests/cluster/alb-controller.sh start`",
                state.join("controller.pid").display()
            );
        }
        let info: BTreeMap<String, String> =
            env_file(&state.join("info.env"))?.into_iter().collect();
        let get = |k: &str| {
            info.get(k)
                .cloned()
                .with_context(|| format!("{k} missing from {}", state.join("info.env").display()))
        };
        let label = get("ALB_CONTROLLER_NAMESPACE_LABEL")?;
        let (k, v) = label
            .split_once('=')
            .with_context(|| format!("ALB_CONTROLLER_NAMESPACE_LABEL={label} is not key=value"))?;
        // alb-seed.py's output: SUBNET_<zone index>=subnet-...
        let subnets = env_file(&state.join("seed.env"))?
            .into_iter()
            .filter(|(k, _)| k.starts_with("SUBNET_"))
            .map(|(_, v)| v)
            .collect();
        Ok(Some(Self {
            aws_env: env_file(&cluster.join("aws.env"))?,
            log: PathBuf::from(get("ALB_CONTROLLER_LOG")?),
            namespace_label: (k.to_string(), v.to_string()),
            certificate_arn: get("ALB_CERTIFICATE_ARN_WILDCARD")?,
            certificate_domain: get("ALB_CERTIFICATE_DOMAIN")?,
            vpc_id: get("ALB_VPC_ID")?,
            subnets,
        }))
    }

    pub fn endpoint(&self) -> String {
        self.aws_env
            .iter()
            .find(|(k, _)| k == "AWS_ENDPOINT_URL")
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }

    /// The environment pairs as `&str`, for a child process.
    pub fn env(&self) -> Vec<(&str, &str)> {
        self.aws_env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    /// Lets the controller serve the Ingresses of `ns`.
    pub async fn serve(&self, client: &Client, ns: &str) -> Result<()> {
        let (k, v) = &self.namespace_label;
        Api::<Namespace>::all(client.clone())
            .patch(
                ns,
                &kube::api::PatchParams::default(),
                &kube::api::Patch::Merge(&serde_json::json!({"metadata": {"labels": {k: v}}})),
            )
            .await
            .with_context(|| format!("labelling namespace {ns} {k}={v}"))?;
        Ok(())
    }

    /// The controller's log lines that mention any of `needles` (namespaces, groups), the last
    /// `max` of them: what a failing test prints.
    pub fn log_excerpt(&self, needles: &[&str], max: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        // The model dumps run to kilobytes a line; their head says enough.
        let lines: Vec<String> = text
            .lines()
            .filter(|l| needles.iter().any(|n| l.contains(n)))
            .map(|l| match l.char_indices().nth(400) {
                Some((i, _)) => format!("{}…", &l[..i]),
                None => l.to_string(),
            })
            .collect();
        let from = lines.len().saturating_sub(max);
        format!(
            "--- AWS Load Balancer Controller log ({}), last {} lines about {needles:?} ---\n{}",
            self.log.display(),
            lines.len() - from,
            lines[from..].join("\n")
        )
    }
}
