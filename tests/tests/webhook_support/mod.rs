//! Runs the real `jockey-webhook` binary next to the local control plane and registers it by URL
//! (`https://127.0.0.1:PORT/...` with a caBundle), scoped to the test's namespaces.
//!
//! The binary is `$JOCKEY_WEBHOOK_BIN` when set; otherwise the tests run
//! `cargo build -p jockey-webhook` once and use `<target>/debug/jockey-webhook`.
//!
//! Every webhook configuration is named after the test and process, selects only namespaces
//! labelled `jockey-e2e-webhook=<that name>`, and is deleted when the [`Webhook`] is dropped (also
//! on panic), so a dead server never breaks another test.
//!
//! Every webhook runs with `--client-ca-file` (the CA of the client certificate the local API
//! server presents to webhooks, `.cluster/webhook-client/`, written by `tests/cluster/up.sh`), so
//! the whole suite runs with caller authentication on; [`Webhook::start_without_client_ca`] starts
//! one as on EKS, where the API server presents none.

#![allow(dead_code)]

use anyhow::{Context, Result, bail};
use jockey_core::certs::{self, Pair};
use jockey_core::registration::{Endpoint as RegistrationEndpoint, Registration};
use jockey_e2e::{kubeconfig_path, kubectl, repo_root};
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::core::v1::{Namespace, Service};
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use rustls::pki_types::ServerName;
use rustls::pki_types::pem::PemObject;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub const CA_CN: &str = "jockey-e2e-webhook-ca";
pub const REGISTRY: &str = "reg.example.com";
pub const SCOPE_LABEL: &str = "jockey-e2e-webhook";

static BUILD: Mutex<Option<PathBuf>> = Mutex::new(None);

/// Where `tests/cluster/up.sh` keeps the API server's client certificate for webhooks (beside the
/// kubeconfig): `ca.crt`, `client.crt`, `client.key`.
pub fn webhook_client_dir() -> PathBuf {
    kubeconfig_path()
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| repo_root().join(".cluster"))
        .join("webhook-client")
}

/// The CA that signed the API server's client certificate for webhooks: what every webhook the
/// tests start is given as `--client-ca-file`. An error with the fix when the cluster was started
/// without it (by an older up.sh).
pub fn webhook_client_ca() -> Result<PathBuf> {
    let ca = webhook_client_dir().join("ca.crt");
    if !ca.exists() {
        bail!(
            "{} does not exist: the local API server presents no client certificate to webhooks; \
             restart the cluster with tests/cluster/up.sh (it restarts a cluster an older up.sh made)",
            ca.display()
        );
    }
    Ok(ca)
}

/// The API server's client certificate and key for webhooks, for a test that posts a review the
/// way the API server does.
pub fn apiserver_identity() -> Result<Pair> {
    let dir = webhook_client_dir();
    let read = |f: &str| {
        std::fs::read_to_string(dir.join(f))
            .with_context(|| format!("reading {}", dir.join(f).display()))
    };
    Ok(Pair {
        cert_pem: read("client.crt")?,
        key_pem: read("client.key")?,
        not_after: 0,
    })
}

/// The webhook binary: `$JOCKEY_WEBHOOK_BIN`, or built once per test process.
pub fn webhook_bin() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("JOCKEY_WEBHOOK_BIN") {
        return Ok(repo_root().join(p));
    }
    let mut built = BUILD.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(p) = built.as_ref() {
        return Ok(p.clone());
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "-p", "jockey-webhook", "--quiet"])
        .current_dir(repo_root())
        .status()
        .context("running cargo build -p jockey-webhook")?;
    if !status.success() {
        bail!("cargo build -p jockey-webhook failed");
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(|t| repo_root().join(t))
        .unwrap_or_else(|| repo_root().join("target"));
    let bin = target.join("debug/jockey-webhook");
    if !bin.exists() {
        bail!(
            "{} missing after the build; set JOCKEY_WEBHOOK_BIN",
            bin.display()
        );
    }
    *built = Some(bin.clone());
    Ok(bin)
}

/// The project's own webhook build as an image in the real node's registry
/// (tests/cluster/images.sh); its reference.
pub fn webhook_image(registry: &str) -> Result<String> {
    let bin = webhook_bin()?;
    let out = Command::new(repo_root().join("tests/cluster/images.sh"))
        .args(["webhook", registry])
        .arg(&bin)
        .output()
        .context("running tests/cluster/images.sh webhook")?;
    if !out.status.success() {
        bail!(
            "images.sh webhook failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// Writes a certificate pair the way a Secret volume update lands: both files renamed into place.
pub fn write_pair(dir: &Path, pair: &Pair) -> Result<()> {
    std::fs::write(dir.join("tls.key.tmp"), &pair.key_pem)?;
    std::fs::write(dir.join("tls.crt.tmp"), &pair.cert_pem)?;
    std::fs::rename(dir.join("tls.key.tmp"), dir.join("tls.key"))?;
    std::fs::rename(dir.join("tls.crt.tmp"), dir.join("tls.crt"))?;
    Ok(())
}

pub fn serving_for(ca: &Pair) -> Result<Pair> {
    Ok(certs::issue_serving(
        ca,
        CA_CN,
        &["127.0.0.1".into(), "localhost".into()],
        2,
    )?)
}

pub fn ca_bundle(cas: &[&Pair]) -> String {
    use base64::Engine;
    let pem: String = cas.iter().map(|c| c.cert_pem.as_str()).collect();
    base64::engine::general_purpose::STANDARD.encode(pem)
}

/// How a started webhook renews its serving certificate by itself.
enum Renewing<'a> {
    /// Serving a certificate valid between these times (Unix seconds), renewed from the CA
    /// files it is given.
    Files {
        not_before: i64,
        not_after: i64,
        renew_before: &'a str,
    },
    /// Renewing Secret `namespace/tls` from the CA in Secret `namespace/ca`.
    Secrets {
        namespace: &'a str,
        ca: &'a str,
        tls: &'a str,
        renew_before: &'a str,
    },
}

/// A running `jockey-webhook` and its registration.
pub struct Webhook {
    pub name: String,
    pub port: u16,
    pub ca: Pair,
    pub dir: PathBuf,
    /// The shared ALB group it guards (its `--alb-shared-group-name`).
    pub group: String,
    /// Its deployment domain (its `--deployment-domain`).
    pub domain: String,
    /// The further groups every project may join (its `--alb-allowed-groups`).
    pub allowed_groups: Vec<String>,
    /// Where it records claims (its `--claims-namespace`); created by [`Webhook::start`].
    pub claims_ns: String,
    /// Namespaces the admission policy for the shared group is bound in: by default the ones
    /// this webhook answers; a test with a group of its own may widen it (`None`: all).
    pub policy_scope: Option<Value>,
    child: Child,
    /// How the child was started (program, arguments, environment), to start it again on the
    /// same port and certificate after a fault test killed it.
    template: Command,
    registered: bool,
    /// Namespaces [`Webhook::scope`] labelled: deleted on drop when the test panicked (a passing
    /// test cleans up its own).
    scoped: Mutex<Vec<String>>,
}

impl Webhook {
    /// Starts the binary on a free port with a fresh CA and waits for `/readyz`.
    pub async fn start(tag: &str, policy_yaml: Option<&str>) -> Result<Self> {
        Self::start_with_args(tag, policy_yaml, &[]).await
    }

    /// [`Webhook::start`] with extra command-line flags (e.g. another shared group or domain).
    pub async fn start_with_args(
        tag: &str,
        policy_yaml: Option<&str>,
        extra_args: &[&str],
    ) -> Result<Self> {
        Self::start_inner(tag, policy_yaml, extra_args, None, true).await
    }

    /// [`Webhook::start`] without `--client-ca-file`: answering anyone who reaches its port, as
    /// on a control plane that presents no client certificate (EKS).
    pub async fn start_without_client_ca(tag: &str) -> Result<Self> {
        Self::start_inner(tag, None, &[], None, false).await
    }

    /// Starts it serving a certificate valid from `not_before` to `not_after` (Unix seconds),
    /// renewing it by itself `renew_before` (humantime) before expiry from the CA, whose
    /// certificate and key it reads from `dir` (`ca.crt`, `ca.key`): the files mode of
    /// `--renew-ca-cert-file`/`--renew-ca-key-file`, as outside a cluster.
    pub async fn start_renewing(
        tag: &str,
        not_before: i64,
        not_after: i64,
        renew_before: &str,
    ) -> Result<Self> {
        let renewing = Renewing::Files {
            not_before,
            not_after,
            renew_before,
        };
        Self::start_inner(tag, None, &[], Some(renewing), true).await
    }

    /// [`Webhook::start_renewing`] with extra command-line flags.
    pub async fn start_renewing_with_args(
        tag: &str,
        not_before: i64,
        not_after: i64,
        renew_before: &str,
        extra_args: &[&str],
    ) -> Result<Self> {
        let renewing = Renewing::Files {
            not_before,
            not_after,
            renew_before,
        };
        Self::start_inner(tag, None, extra_args, Some(renewing), true).await
    }

    /// Starts it renewing the serving certificate in Secret `namespace/tls` from the CA in
    /// Secret `namespace/ca` (the in-cluster mode `kubectl jockey install` sets up), its
    /// namespace given as a pod's (POD_NAMESPACE).
    pub async fn start_renewing_secret(
        tag: &str,
        namespace: &str,
        ca: &str,
        tls: &str,
        renew_before: &str,
    ) -> Result<Self> {
        let renewing = Renewing::Secrets {
            namespace,
            ca,
            tls,
            renew_before,
        };
        Self::start_inner(tag, None, &[], Some(renewing), true).await
    }

    async fn start_inner(
        tag: &str,
        policy_yaml: Option<&str>,
        extra_args: &[&str],
        renewing: Option<Renewing<'_>>,
        client_ca: bool,
    ) -> Result<Self> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let name = format!("jockey-e2e-{tag}-{}", std::process::id());
        let dir = std::env::temp_dir().join(&name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let ca = certs::new_ca(CA_CN, 2)?;
        match renewing {
            None | Some(Renewing::Secrets { .. }) => write_pair(&dir, &serving_for(&ca)?)?,
            Some(Renewing::Files {
                not_before,
                not_after,
                ..
            }) => {
                let names = ["127.0.0.1".to_string(), "localhost".to_string()];
                write_pair(
                    &dir,
                    &certs::issue_serving_between(&ca, &names, not_before, not_after)?,
                )?;
                std::fs::write(dir.join("ca.crt"), &ca.cert_pem)?;
                std::fs::write(dir.join("ca.key"), &ca.key_pem)?;
            }
        }
        let port = free_port()?;
        let flag = |f: &str| {
            extra_args
                .iter()
                .position(|a| *a == f)
                .and_then(|i| extra_args.get(i + 1))
                .map(|v| v.to_string())
        };
        let group = flag("--alb-shared-group-name").unwrap_or_else(|| "alb-deployments".into());
        let domain = flag("--deployment-domain").unwrap_or_else(|| "deploy.agentops.ai".into());
        let allowed_groups: Vec<String> = flag("--alb-allowed-groups")
            .map(|g| g.split(',').map(str::to_string).collect())
            .unwrap_or_default();
        // Claims go to a namespace of the test's own (or one tests racing two webhooks share),
        // released quickly so that a test can watch a release happen.
        let claims_ns = flag("--claims-namespace").unwrap_or_else(|| format!("{name}-claims"));
        let out = kubectl(&["create", "namespace", &claims_ns])?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() && !stderr.contains("AlreadyExists") {
            bail!("creating the claims namespace {claims_ns}: {stderr}");
        }
        let mut cmd = Command::new(webhook_bin()?);
        cmd.arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--tls-cert-file")
            .arg(dir.join("tls.crt"))
            .arg("--tls-key-file")
            .arg(dir.join("tls.key"))
            .arg("--kubeconfig")
            .arg(kubeconfig_path())
            .arg("--cert-poll-interval")
            .arg("0.2")
            .env("IMAGE_REGISTRY", REGISTRY)
            .env_remove("DEPLOYMENT_DOMAIN")
            .env_remove("ALB_SHARED_GROUP_NAME")
            .env_remove("ALB_CERTIFICATE_ARN")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("webhook.log"))?);
        if let Some(p) = policy_yaml {
            std::fs::write(dir.join("policy.yaml"), p)?;
            cmd.arg("--policy-file").arg(dir.join("policy.yaml"));
        }
        if flag("--claims-namespace").is_none() {
            cmd.arg("--claims-namespace").arg(&claims_ns);
        }
        if flag("--claim-grace").is_none() {
            cmd.args(["--claim-grace", "3s", "--claim-release-interval", "1s"]);
        }
        // A test may give its own copy of the client CA (to change the file under the server).
        if client_ca && flag("--client-ca-file").is_none() {
            cmd.arg("--client-ca-file").arg(webhook_client_ca()?);
        }
        match renewing {
            None => {}
            Some(Renewing::Files { renew_before, .. }) => {
                cmd.arg("--renew-ca-cert-file")
                    .arg(dir.join("ca.crt"))
                    .arg("--renew-ca-key-file")
                    .arg(dir.join("ca.key"))
                    .args(["--renew-before", renew_before]);
            }
            Some(Renewing::Secrets {
                namespace,
                ca,
                tls,
                renew_before,
            }) => {
                cmd.env("POD_NAMESPACE", namespace)
                    .args(["--renew-ca-secret", ca, "--renew-tls-secret", tls])
                    .args(["--renew-before", renew_before]);
            }
        }
        cmd.args(extra_args);
        let template = clone_command(&cmd);
        let child = cmd.spawn().context("starting jockey-webhook")?;
        let policy_scope = Some(json!({ "matchLabels": { SCOPE_LABEL: name.clone() } }));
        let mut wh = Self {
            name,
            port,
            ca,
            dir,
            policy_scope,
            group,
            domain,
            allowed_groups,
            claims_ns,
            child,
            template,
            registered: false,
            scoped: Mutex::new(Vec::new()),
        };
        wh.wait_ready().await?;
        Ok(wh)
    }

    /// Waits for `/readyz` to answer 200; fails when the process exits or after 60 s.
    pub async fn wait_ready(&mut self) -> Result<()> {
        let start = Instant::now();
        loop {
            if let Ok((status, _)) = self.get("/readyz", &[&self.ca.clone()]).await
                && status == 200
            {
                return Ok(());
            }
            if let Ok(Some(code)) = self.child.try_wait() {
                bail!("jockey-webhook exited ({code}):\n{}", self.log());
            }
            if start.elapsed() > Duration::from_secs(60) {
                bail!("jockey-webhook not ready after 60 s:\n{}", self.log());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The process id of the running server.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process has exited (and how), without waiting.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// SIGKILLs the server (no graceful shutdown) and reaps it.
    pub fn kill(&mut self) -> Result<()> {
        self.child.kill().context("killing jockey-webhook")?;
        self.child.wait().context("reaping jockey-webhook")?;
        Ok(())
    }

    /// Starts the server again exactly as before (same port, certificate, flags), appending to
    /// the same log, and waits for `/readyz`.
    pub async fn restart(&mut self) -> Result<()> {
        let log = std::fs::OpenOptions::new()
            .append(true)
            .open(self.dir.join("webhook.log"))?;
        self.child = clone_command(&self.template)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("starting jockey-webhook again")?;
        self.wait_ready().await
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("webhook.log")).unwrap_or_default()
    }

    /// `GET path` over TLS trusting `cas`; (status, body). Also returns nothing else: the
    /// served certificate is available from [`Webhook::served_cert`].
    pub async fn get(&self, path: &str, cas: &[&Pair]) -> Result<(u16, String)> {
        let (status, body, _) = https_get(self.port, path, cas).await?;
        Ok((status, body))
    }

    /// DER of the certificate the server presents now.
    pub async fn served_cert(&self, cas: &[&Pair]) -> Result<Vec<u8>> {
        Ok(https_get(self.port, "/healthz", cas).await?.2)
    }

    pub async fn metrics(&self, cas: &[&Pair]) -> Result<String> {
        Ok(self.get("/metrics", cas).await?.1)
    }

    /// Marks configurations named after this webhook, registered by the caller, as to be deleted
    /// on drop (for tests that register their own, narrower configurations).
    pub fn unregister_on_drop(&mut self) {
        self.registered = true;
    }

    /// Registers mutating and validating configurations by URL for namespaces labelled
    /// `jockey-e2e-webhook=<name>`, and waits until the API server calls both.
    pub async fn register(&mut self, client: &Client, probe_ns: &str) -> Result<()> {
        let bundle = ca_bundle(&[&self.ca]);
        let r = self.registration(&bundle);
        let mutating: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
        let validating: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
        self.registered = true;
        mutating
            .create(
                &PostParams::default(),
                &serde_json::from_value(r.mutating())?,
            )
            .await
            .context("creating the MutatingWebhookConfiguration")?;
        validating
            .create(
                &PostParams::default(),
                &serde_json::from_value(r.validating())?,
            )
            .await
            .context("creating the ValidatingWebhookConfiguration")?;
        // The admission policy that keeps unlabelled Ingresses out of the shared groups, bound to
        // this test's namespaces only.
        let policy = json!({ "apiVersion": "v1", "kind": "List", "items": [
            r.params_configmap(),
            r.shared_group_policy().map_err(anyhow::Error::msg)?,
            r.shared_group_binding(),
        ]});
        let (ok, out) = kubectl_stdin(&["apply", "-f", "-"], &policy.to_string())?;
        if !ok {
            bail!("creating the ValidatingAdmissionPolicy: {out}");
        }
        // The API server loads webhook configurations through an informer: probe with server-side
        // dry-runs until a labelled Service comes back mutated and a LoadBalancer one is denied.
        let services: Api<Service> = Api::namespaced(client.clone(), probe_ns);
        let dry = PostParams {
            dry_run: true,
            ..Default::default()
        };
        let start = Instant::now();
        loop {
            let probe: Service = serde_json::from_value(json!({
                "metadata": { "name": "probe", "labels": { "jockey.agentops.ai/project": "probe" } },
                "spec": { "ports": [{ "port": 80 }] }
            }))?;
            let mutated = services
                .create(&dry, &probe)
                .await
                .ok()
                .and_then(|s| s.spec?.ports?.first()?.target_port.clone())
                .is_some_and(|t| {
                    t == k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(8080)
                });
            let mut lb = probe.clone();
            if let Some(spec) = lb.spec.as_mut() {
                spec.type_ = Some("LoadBalancer".into());
            }
            let denied = services
                .create(&dry, &lb)
                .await
                .err()
                .is_some_and(|e| e.to_string().contains("jockey policy"));
            if mutated && denied {
                return Ok(());
            }
            if start.elapsed() > Duration::from_secs(30) {
                bail!(
                    "the API server did not call the webhook within 30 s (mutated {mutated}, denied {denied}):\n{}",
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Points both configurations at `cas` (the caBundle), e.g. during a CA rotation.
    pub async fn set_ca_bundle(&self, client: &Client, cas: &[&Pair]) -> Result<()> {
        let bundle = ca_bundle(cas);
        let r = self.registration(&bundle);
        let (m, v) = (r.mutating(), r.validating());
        let pp = PatchParams::default();
        Api::<MutatingWebhookConfiguration>::all(client.clone())
            .patch(
                &self.name,
                &pp,
                &Patch::Merge(&json!({ "webhooks": m["webhooks"] })),
            )
            .await?;
        Api::<ValidatingWebhookConfiguration>::all(client.clone())
            .patch(
                &self.name,
                &pp,
                &Patch::Merge(&json!({ "webhooks": v["webhooks"] })),
            )
            .await?;
        Ok(())
    }

    /// How this webhook is registered: the same rendering `kubectl jockey install` and the
    /// local webhook use, answering only namespaces labelled for this test.
    pub fn registration(&self, bundle: &str) -> Registration {
        let scope = json!({ "matchLabels": { SCOPE_LABEL: self.name } });
        Registration {
            name: self.name.clone(),
            endpoint: RegistrationEndpoint::Url(format!("https://127.0.0.1:{}", self.port)),
            ca_bundle: bundle.to_string(),
            // Only this test's namespaces: a leftover never touches anything else.
            namespace_selector: scope.clone(),
            // Fail, so that a denial or an unreachable webhook is visible to the test.
            failure_policy: "Fail".into(),
            timeout_seconds: 10,
            shared_group: self.group.clone(),
            other_groups: self.allowed_groups.clone(),
            policy_scope: self.policy_scope.clone(),
            deployment_domain: self.domain.clone(),
            params: (self.claims_ns.clone(), format!("{}-config", self.name)),
            render_params: true,
        }
    }

    /// Labels `ns` so this webhook applies to it (and, optionally, claims it for a project).
    pub async fn scope(&self, client: &Client, ns: &str, project: Option<&str>) -> Result<()> {
        self.scoped
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(ns.to_string());
        let mut labels = json!({ SCOPE_LABEL: self.name });
        if let Some(p) = project {
            labels["jockey.agentops.ai/project"] = json!(p);
        }
        Api::<Namespace>::all(client.clone())
            .patch(
                ns,
                &PatchParams::default(),
                &Patch::Merge(&json!({ "metadata": { "labels": labels } })),
            )
            .await?;
        Ok(())
    }
}

impl Drop for Webhook {
    fn drop(&mut self) {
        if self.registered {
            let policy = format!("{}-shared-alb", self.name);
            for (kind, name) in [
                ("mutatingwebhookconfiguration", &self.name),
                ("validatingwebhookconfiguration", &self.name),
                ("validatingadmissionpolicybinding", &policy),
                ("validatingadmissionpolicy", &policy),
            ] {
                let _ = kubectl(&["delete", kind, name, "--ignore-not-found", "--wait=false"]);
            }
        }
        if self.claims_ns == format!("{}-claims", self.name) {
            let _ = kubectl(&["delete", "namespace", &self.claims_ns, "--wait=false"]);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- jockey-webhook log ({}) ---\n{}", self.name, self.log());
            for ns in self.scoped.lock().unwrap_or_else(|p| p.into_inner()).iter() {
                let _ = kubectl(&["delete", "namespace", ns, "--wait=false"]);
            }
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A copy of `cmd`'s program, arguments, environment and directory (not its stdio).
fn clone_command(cmd: &Command) -> Command {
    let mut c = Command::new(cmd.get_program());
    c.args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    if let Some(d) = cmd.get_current_dir() {
        c.current_dir(d);
    }
    c
}

/// A TLS connection to the server on `port`, trusting `cas`, presenting `identity` (a client
/// certificate and key) when given.
async fn tls_connect(
    port: u16,
    cas: &[&Pair],
    identity: Option<&Pair>,
) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let mut roots = rustls::RootCertStore::empty();
    for ca in cas {
        roots.add(rustls::pki_types::CertificateDer::from_pem_slice(
            ca.cert_pem.as_bytes(),
        )?)?;
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots);
    let mut config = match identity {
        Some(id) => builder.with_client_auth_cert(
            rustls::pki_types::CertificateDer::pem_slice_iter(id.cert_pem.as_bytes())
                .collect::<Result<Vec<_>, _>>()?,
            rustls::pki_types::PrivateKeyDer::from_pem_slice(id.key_pem.as_bytes())?,
        )?,
        None => builder.with_no_client_auth(),
    };
    config.resumption = rustls::client::Resumption::disabled();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("127.0.0.1")?.to_owned(), tcp)
        .await?)
}

/// Reads a whole `connection: close` response: (status, body).
async fn read_response(
    tls: &mut tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
    timeout: Duration,
) -> Result<(u16, String)> {
    let mut buf = Vec::new();
    tokio::time::timeout(timeout, tls.read_to_end(&mut buf)).await??;
    let text = String::from_utf8_lossy(&buf).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

/// A minimal HTTPS GET over a fresh connection: (status, body, served certificate DER).
pub async fn https_get(port: u16, path: &str, cas: &[&Pair]) -> Result<(u16, String, Vec<u8>)> {
    let mut tls = tls_connect(port, cas, None).await?;
    let cert = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.to_vec())
        .unwrap_or_default();
    tls.write_all(
        format!("GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n").as_bytes(),
    )
    .await?;
    let (status, body) = read_response(&mut tls, Duration::from_secs(10)).await?;
    Ok((status, body, cert))
}

/// A JSON POST over a fresh connection, presenting `identity` when given (e.g.
/// [`apiserver_identity`]), answered within `timeout`: (status, body).
pub async fn https_post_json(
    port: u16,
    path: &str,
    json: &str,
    cas: &[&Pair],
    identity: Option<&Pair>,
    timeout: Duration,
) -> Result<(u16, String)> {
    let mut tls = tls_connect(port, cas, identity).await?;
    tls.write_all(
        format!(
            "POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\ncontent-type: \
             application/json\r\ncontent-length: {}\r\n\r\n{json}",
            json.len()
        )
        .as_bytes(),
    )
    .await?;
    read_response(&mut tls, timeout).await
}

/// `kubectl apply -f -` of `yaml` in `ns`; (success, stdout+stderr).
pub fn apply(ns: &str, yaml: &str) -> Result<(bool, String)> {
    kubectl_stdin(&["apply", "-n", ns, "-f", "-"], yaml)
}

/// Waits until a server-side dry run of `yaml` in `ns` is refused with a message containing
/// `needle` ("" for any refusal). The webhook's cache and the API server's admission
/// configuration follow what is stored through watches, so a fresh object or policy is in force
/// only a moment after it is written.
pub async fn wait_until_refused(
    what: &str,
    timeout: Duration,
    ns: &str,
    yaml: &str,
    needle: &str,
) -> Result<()> {
    jockey_e2e::wait_for(what, timeout, || async move {
        let (ok, out) = kubectl_stdin(&["apply", "--dry-run=server", "-n", ns, "-f", "-"], yaml)?;
        Ok((!ok && out.contains(needle)).then_some(()))
    })
    .await
}

pub fn kubectl_stdin(args: &[&str], input: &str) -> Result<(bool, String)> {
    let mut child = Command::new(jockey_e2e::tool_bin_dir().join("kubectl"))
        .arg("--kubeconfig")
        .arg(kubeconfig_path())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("running kubectl")?;
    if let Some(mut stdin) = child.stdin.take() {
        use std::io::Write;
        stdin.write_all(input.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((out.status.success(), text))
}

/// `kubectl get KIND NAME -n NS -o json`, None when it does not exist.
pub fn get_json(ns: &str, kind: &str, name: &str) -> Result<Option<Value>> {
    let out = kubectl(&["get", kind, name, "-n", ns, "-o", "json"])?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        if err.contains("NotFound") || err.contains("not found") {
            return Ok(None);
        }
        bail!("kubectl get {kind} {name}: {err}");
    }
    Ok(Some(serde_json::from_slice(&out.stdout)?))
}

/// A project id unique to this test process.
pub fn project(tag: &str) -> String {
    format!("e2e{}-{tag}", std::process::id() % 100_000)
}

/// The minimal labelled manifest a user writes by hand.
pub fn minimal_manifest(project: &str, instance_hash: &str) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: {project}
  labels:
    jockey.agentops.ai/project: {project}
  annotations:
    jockey.agentops.ai/instance: instance-{instance_hash}
spec:
  selector:
    matchLabels:
      app: {project}
  template:
    metadata:
      labels:
        app: {project}
    spec:
      containers:
      - name: server
        image: jockey:auto
---
apiVersion: v1
kind: Service
metadata:
  name: svc-{project}
  labels:
    jockey.agentops.ai/project: {project}
spec:
  ports:
  - port: 80
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: ing-{project}
  labels:
    jockey.agentops.ai/project: {project}
"#
    )
}

/// `metadata.annotations` as YAML lines (values quoted), or nothing when there are none.
pub fn annotations_yaml(annotations: &[(&str, &str)]) -> String {
    let lines: String = annotations
        .iter()
        .map(|(k, v)| {
            format!(
                "    {k}: {}\n",
                serde_json::to_string(v).unwrap_or_default()
            )
        })
        .collect();
    if lines.is_empty() {
        String::new()
    } else {
        format!("  annotations:\n{lines}")
    }
}

/// A labelled Ingress with `annotations` (YAML map lines) and `host`.
pub fn ingress(project: &str, name: &str, host: &str, annotations: &[(&str, &str)]) -> String {
    let ann = annotations_yaml(annotations);
    format!(
        r#"apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: {name}
  labels:
    jockey.agentops.ai/project: {project}
{ann}spec:
  rules:
  - host: {host}
    http:
      paths:
      - path: /
        pathType: Prefix
        backend:
          service:
            name: svc-{project}
            port:
              number: 80
"#
    )
}

static PLUGIN: Mutex<Option<PathBuf>> = Mutex::new(None);

/// The plugin binary: `$JOCKEY_PLUGIN_BIN`, or `cargo build -p kubectl-jockey` once.
pub fn plugin_bin() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("JOCKEY_PLUGIN_BIN") {
        return Ok(repo_root().join(p));
    }
    let mut built = PLUGIN.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(p) = built.as_ref() {
        return Ok(p.clone());
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "-p", "kubectl-jockey", "--quiet"])
        .current_dir(repo_root())
        .status()
        .context("running cargo build -p kubectl-jockey")?;
    if !status.success() {
        bail!("cargo build -p kubectl-jockey failed");
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(|t| repo_root().join(t))
        .unwrap_or_else(|| repo_root().join("target"));
    let bin = target.join("debug/kubectl-jockey");
    *built = Some(bin.clone());
    Ok(bin)
}

/// Runs `kubectl-jockey ARGS --kubeconfig <local cluster>`; (success, stdout+stderr).
pub fn plugin(args: &[&str]) -> Result<(bool, String)> {
    let out = Command::new(plugin_bin()?)
        .args(args)
        .arg("--kubeconfig")
        .arg(kubeconfig_path())
        .env_remove("IMAGE_REGISTRY")
        .env_remove("DEPLOYMENT_DOMAIN")
        .env_remove("ALB_SHARED_GROUP_NAME")
        .output()
        .context("running kubectl-jockey")?;
    Ok((
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    ))
}
