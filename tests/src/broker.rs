//! A build broker (`jockey-webhook broker`) for one test: it answers only the BuildRequests of the
//! test's project namespace and builds in the test's builder namespace, so tests running side by
//! side never answer each other's requests. It runs as a child process, as in a cluster it runs
//! as its own Deployment, and is killed when dropped; its log goes to a file whose path a failing
//! test can print.

use crate::{kubeconfig_path, kubectl, repo_root};
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub struct Broker {
    child: Child,
    pub log: PathBuf,
}

/// The variables a broker must not take from the developer's machine.
const SCRUBBED: &[&str] = &[
    "AWS_PROFILE",
    "AWS_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "IMAGE_REPOSITORY_PREFIX",
    "KANIKO_IMAGE",
    "BASE_IMAGE",
    "BUILDER_ROLE_ARN",
    "BUILDER_CREDENTIALS",
];

impl Broker {
    /// Starts a broker for requests of `namespaces`, building in `builder_namespace`, claiming in
    /// `claims_namespace`, with `env` (IMAGE_REGISTRY, KANIKO_IMAGE, AWS_*...).
    pub fn start(
        namespaces: &[&str],
        builder_namespace: &str,
        claims_namespace: &str,
        env: &[(&str, &str)],
    ) -> Result<Self> {
        Self::start_as(
            &kubeconfig_path(),
            namespaces,
            builder_namespace,
            claims_namespace,
            env,
        )
    }

    /// [`Broker::start`] with the identity of `kubeconfig` (see [`identity`]).
    pub fn start_as(
        kubeconfig: &Path,
        namespaces: &[&str],
        builder_namespace: &str,
        claims_namespace: &str,
        env: &[(&str, &str)],
    ) -> Result<Self> {
        let bin = repo_root().join("target/debug/jockey-webhook");
        if !bin.exists() {
            bail!(
                "{} is missing: run `cargo build --workspace --bins` first (tests/e2e.sh does)",
                bin.display()
            );
        }
        let log = std::env::temp_dir().join(format!("jockey-broker-{}.log", namespaces.join("+")));
        let file =
            std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let mut cmd = Command::new(bin);
        cmd.args(["broker", "--kubeconfig"])
            .arg(kubeconfig)
            .args(namespaces.iter().flat_map(|n| ["--request-namespace", n]))
            .args([
                "--builder-namespace",
                builder_namespace,
                "--claims-namespace",
                claims_namespace,
                "--sweep-interval",
                "3s",
            ]);
        for var in SCRUBBED {
            cmd.env_remove(var);
        }
        cmd.env("AWS_CONFIG_FILE", "/nonexistent/jockey-e2e/aws-config")
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                "/nonexistent/jockey-e2e/aws-credentials",
            )
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("RUST_LOG", "info");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .context("starting jockey-webhook broker")?;
        Ok(Self { child, log })
    }

    /// The broker's log so far (for a failing test's message).
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The broker's identity as an installation gives it: the service account `jockey-broker` in
/// `claims_namespace` with the RBAC of `manifests/broker/rbac.yaml` (its namespaces made the
/// test's, its cluster-wide binding named for them), and a kubeconfig holding a token of that
/// service account: a broker started with it can do exactly what an installed one can.
pub fn identity(claims_namespace: &str, builder_namespace: &str) -> Result<PathBuf> {
    let rbac = std::fs::read_to_string(repo_root().join("manifests/broker/rbac.yaml"))?
        .replace(
            "namespace: jockey-system",
            &format!("namespace: {claims_namespace}"),
        )
        .replace(
            "namespace: builder",
            &format!("namespace: {builder_namespace}"),
        );
    // Cluster-scoped objects named for this test: an install's uninstall elsewhere in the
    // cluster removes its own `jockey-broker` ones, never these.
    let rbac = rbac
        .replace(
            "kind: ClusterRole\nmetadata:\n  name: jockey-broker\n",
            &format!("kind: ClusterRole\nmetadata:\n  name: jockey-broker-{claims_namespace}\n"),
        )
        .replace(
            "kind: ClusterRoleBinding\nmetadata:\n  name: jockey-broker\n",
            &format!(
                "kind: ClusterRoleBinding\nmetadata:\n  name: jockey-broker-{claims_namespace}\n"
            ),
        )
        .replace(
            "  kind: ClusterRole\n  name: jockey-broker\n",
            &format!("  kind: ClusterRole\n  name: jockey-broker-{claims_namespace}\n"),
        );
    let file = std::env::temp_dir().join(format!("jockey-broker-rbac-{claims_namespace}.yaml"));
    std::fs::write(&file, rbac)?;
    let out = kubectl(&["apply", "-f", &file.to_string_lossy()])?;
    if !out.status.success() {
        bail!(
            "applying the broker's RBAC: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let token = kubectl(&[
        "create",
        "token",
        "jockey-broker",
        "-n",
        claims_namespace,
        "--duration=2h",
    ])?;
    if !token.status.success() {
        bail!(
            "a token of the broker's service account: {}",
            String::from_utf8_lossy(&token.stderr)
        );
    }
    let token = String::from_utf8_lossy(&token.stdout).trim().to_string();
    let view = |path: &str| -> Result<String> {
        let out = kubectl(&[
            "config",
            "view",
            "--raw",
            "--minify",
            "-o",
            &format!("jsonpath={path}"),
        ])?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    let server = view("{.clusters[0].cluster.server}")?;
    let ca = view("{.clusters[0].cluster.certificate-authority}")?;
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {server}\n    \
         certificate-authority: {ca}\nusers:\n- name: broker\n  user:\n    token: {token}\n\
         contexts:\n- name: broker\n  context:\n    cluster: c\n    user: broker\n\
         current-context: broker\n"
    );
    let path = std::env::temp_dir().join(format!("jockey-broker-{claims_namespace}.kubeconfig"));
    std::fs::write(&path, kubeconfig)?;
    Ok(path)
}
