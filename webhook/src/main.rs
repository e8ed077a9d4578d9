//! `jockey-webhook`: the mutating and validating admission webhook for jockey-labelled
//! Deployments, Services and Ingresses. A thin adapter: TLS, HTTP, caches and metrics here; every
//! decision in `jockey_core::admission`.

mod claims;
mod metrics;
mod server;
mod state;
mod tls;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use jockey_core::Config;
use jockey_core::policy::Policy;
use state::App;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// Admission webhook that defaults and validates jockey-labelled Deployments, Services and
/// Ingresses. Serves POST /mutate and /validate (AdmissionReview admission.k8s.io/v1), GET
/// /healthz, /readyz and /metrics, over TLS only.
#[derive(Parser, Debug)]
#[command(name = "jockey-webhook", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Address to listen on (TLS), e.g. 0.0.0.0:8443 or 127.0.0.1:9443.
    #[arg(long, value_name = "ADDR:PORT")]
    listen: Option<SocketAddr>,
    /// PEM serving certificate (chain); reloaded when it changes.
    #[arg(long, value_name = "FILE")]
    tls_cert_file: Option<PathBuf>,
    /// PEM private key of the serving certificate; reloaded when it changes.
    #[arg(long, value_name = "FILE")]
    tls_key_file: Option<PathBuf>,
    /// The cluster admin's policy (YAML or JSON); without it, the defaults.
    #[arg(long, value_name = "FILE")]
    policy_file: Option<PathBuf>,
    /// Kubeconfig to watch the cluster with; in a pod, the service account is used.
    #[arg(long, value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
    /// Base domain of project hosts [env: DEPLOYMENT_DOMAIN]
    #[arg(long)]
    deployment_domain: Option<String>,
    /// Shared ALB group [env: ALB_SHARED_GROUP_NAME]
    #[arg(long)]
    alb_shared_group_name: Option<String>,
    /// Registry of builder images [env: IMAGE_REGISTRY]
    #[arg(long)]
    image_registry: Option<String>,
    /// Repository prefix of builder images [env: IMAGE_REPOSITORY_PREFIX]
    #[arg(long)]
    image_repository_prefix: Option<String>,
    /// ACM certificate for the ALB's HTTPS listener [env: ALB_CERTIFICATE_ARN]
    #[arg(long)]
    certificate_arn: Option<String>,
    /// How often the certificate files are checked for changes.
    #[arg(long, value_name = "SECONDS", default_value_t = 1.0)]
    cert_poll_interval: f64,
    /// Namespace where project and host claims are recorded (Leases); every replica and every
    /// webhook of the cluster must use the same one. Default: the pod's namespace, else
    /// jockey-system.
    #[arg(long, env = "JOCKEY_CLAIMS_NAMESPACE", value_name = "NAMESPACE")]
    claims_namespace: Option<String>,
    /// A claim younger than this is never released, whatever its holder has left: it covers an
    /// object between admission and storage.
    #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = humantime::parse_duration)]
    claim_grace: Duration,
    /// How often claims nothing needs any more are looked for (also soon after an Ingress is
    /// deleted).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = humantime::parse_duration)]
    claim_release_interval: Duration,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print the version.
    Version,
    /// Write a fresh CA and a serving certificate signed by it into DIR (ca.crt, tls.crt,
    /// tls.key), for running the webhook next to a cluster and registering it by URL.
    DevCerts {
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// Names and addresses the certificate is valid for (repeatable).
        #[arg(long = "host", default_values = ["127.0.0.1", "localhost"])]
        hosts: Vec<String>,
        #[arg(long, default_value_t = 30)]
        days: i64,
    },
    /// Print (as a JSON List for `kubectl apply -f -`) the objects that register a webhook running
    /// at URL: the mutating and validating webhook configurations and the admission policy that
    /// keeps unlabelled Ingresses out of the shared ALB groups — what `kubectl jockey install`
    /// registers, for a webhook running outside the cluster.
    Registration {
        /// Base URL the API server calls (`/mutate` and `/validate` are appended).
        #[arg(long, value_name = "URL")]
        url: String,
        /// PEM CA that signed the webhook's serving certificate.
        #[arg(long, value_name = "FILE")]
        ca_file: PathBuf,
        /// Name of the configurations (and prefix of the policy's).
        #[arg(long, default_value = "jockey-local")]
        name: String,
        /// Answer only namespaces with this label (repeatable, KEY=VALUE); none: every namespace
        /// but kube-system and the claims namespace.
        #[arg(long = "namespace-label", value_name = "KEY=VALUE")]
        namespace_labels: Vec<String>,
        #[arg(long, default_value_t = 5)]
        timeout_seconds: i32,
    },
}

fn dev_certs(dir: &std::path::Path, hosts: &[String], days: i64) -> Result<()> {
    use jockey_core::certs;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let ca = certs::new_ca("jockey-webhook-dev-ca", days)?;
    let serving = certs::issue_serving(&ca, "jockey-webhook-dev-ca", hosts, days)?;
    for (file, content) in [
        ("ca.crt", &ca.cert_pem),
        ("tls.key", &serving.key_pem),
        ("tls.crt", &serving.cert_pem),
    ] {
        let path = dir.join(file);
        std::fs::write(&path, content).with_context(|| format!("writing {}", path.display()))?;
    }
    println!(
        "wrote {0}/ca.crt, {0}/tls.crt and {0}/tls.key (valid {days} days for {1})",
        dir.display(),
        hosts.join(", ")
    );
    Ok(())
}

fn registration(
    cli: &Cli,
    url: &str,
    ca_file: &std::path::Path,
    name: &str,
    namespace_labels: &[String],
    timeout_seconds: i32,
) -> Result<String> {
    use base64::Engine;
    use jockey_core::registration::{Endpoint, Registration};
    let ca = std::fs::read(ca_file)
        .with_context(|| format!("reading --ca-file {}", ca_file.display()))?;
    let mut labels = serde_json::Map::new();
    for kv in namespace_labels {
        let (k, v) = kv.split_once('=').with_context(|| {
            format!("--namespace-label {kv:?} is not KEY=VALUE; write e.g. jockey.agentops.ai/webhook=local")
        })?;
        labels.insert(k.to_string(), serde_json::json!(v));
    }
    let cfg = config(cli);
    let policy = load_policy(cli.policy_file.as_ref())?;
    let namespace_selector = if labels.is_empty() {
        let claims_ns = claims_namespace(cli);
        serde_json::json!({ "matchExpressions": [{
            "key": "kubernetes.io/metadata.name", "operator": "NotIn",
            "values": ["kube-system", claims_ns]
        }] })
    } else {
        serde_json::json!({ "matchLabels": labels })
    };
    let r = Registration {
        name: name.to_string(),
        endpoint: Endpoint::Url(url.to_string()),
        ca_bundle: base64::engine::general_purpose::STANDARD.encode(ca),
        namespace_selector,
        failure_policy: "Fail".into(),
        timeout_seconds,
        shared_group: cfg.alb_shared_group_name.clone(),
        other_groups: policy.allowed_groups.clone(),
        policy_scope: None,
    };
    let items = r.objects().map_err(anyhow::Error::msg)?;
    Ok(serde_json::to_string_pretty(&serde_json::json!({
        "apiVersion": "v1", "kind": "List", "items": items
    }))?)
}

fn load_policy(path: Option<&PathBuf>) -> Result<Policy> {
    Ok(match path {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading --policy-file {}", path.display()))?;
            Policy::parse(&path.display().to_string(), &text)?
        }
        None => Policy::default(),
    })
}

fn claims_namespace(cli: &Cli) -> String {
    cli.claims_namespace
        .clone()
        .or_else(|| {
            std::env::var("POD_NAMESPACE")
                .ok()
                .filter(|n| !n.is_empty())
        })
        .unwrap_or_else(|| "jockey-system".to_string())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match &cli.command {
        Some(Command::Version) => {
            println!("jockey-webhook {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Some(Command::Registration {
            url,
            ca_file,
            name,
            namespace_labels,
            timeout_seconds,
        }) => {
            return match registration(&cli, url, ca_file, name, namespace_labels, *timeout_seconds)
            {
                Ok(text) => {
                    println!("{text}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("jockey-webhook registration: {e:#}");
                    ExitCode::FAILURE
                }
            };
        }
        Some(Command::DevCerts { dir, hosts, days }) => {
            return match dev_certs(dir, hosts, *days) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("jockey-webhook dev-certs: {e:#}");
                    ExitCode::FAILURE
                }
            };
        }
        None => {}
    }
    init_logging();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("jockey-webhook: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "jockey-webhook stopped");
            eprintln!("jockey-webhook: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// flag > environment > default.
fn config(cli: &Cli) -> Config {
    let flags: Vec<(&str, Option<&String>)> = vec![
        ("DEPLOYMENT_DOMAIN", cli.deployment_domain.as_ref()),
        ("ALB_SHARED_GROUP_NAME", cli.alb_shared_group_name.as_ref()),
        ("IMAGE_REGISTRY", cli.image_registry.as_ref()),
        (
            "IMAGE_REPOSITORY_PREFIX",
            cli.image_repository_prefix.as_ref(),
        ),
        ("ALB_CERTIFICATE_ARN", cli.certificate_arn.as_ref()),
    ];
    Config::from_lookup(|k| {
        flags
            .iter()
            .find(|(name, _)| *name == k)
            .and_then(|(_, v)| v.cloned())
            .or_else(|| std::env::var(k).ok())
    })
}

async fn kube_client(kubeconfig: Option<&PathBuf>) -> Result<kube::Client> {
    let config = match kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("reading --kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await
                .with_context(|| format!("loading --kubeconfig {}", path.display()))?
        }
        None => kube::Config::infer().await.context(
            "finding the cluster: no in-cluster service account and no kubeconfig; pass --kubeconfig FILE",
        )?,
    };
    kube::Client::try_from(config).context("building the Kubernetes client")
}

async fn run(cli: Cli) -> Result<()> {
    // Several rustls providers may be compiled in across the dependency tree; pin ring for the
    // Kubernetes client (the server passes its provider explicitly).
    let _ = rustls::crypto::ring::default_provider().install_default();

    let listen = cli
        .listen
        .context("--listen ADDR:PORT is required (e.g. --listen 0.0.0.0:8443)")?;
    let cert_file = cli
        .tls_cert_file
        .clone()
        .context("--tls-cert-file FILE is required: the webhook serves TLS only")?;
    let key_file = cli
        .tls_key_file
        .clone()
        .context("--tls-key-file FILE is required: the webhook serves TLS only")?;
    let cfg = config(&cli);
    let policy = load_policy(cli.policy_file.as_ref())?;

    let provider = tls::provider();
    let cert = Arc::new(tls::ReloadingCert::new(
        cert_file,
        key_file,
        provider.clone(),
    )?);
    let tls_config = Arc::new(tls::server_config(cert.clone(), provider)?);
    let client = kube_client(cli.kubeconfig.as_ref()).await?;

    let claims_namespace = claims_namespace(&cli);
    let leases = kube::Api::namespaced(client.clone(), &claims_namespace);
    let app = Arc::new(App::new(
        cfg.clone(),
        policy,
        claims_namespace.clone(),
        Some(leases),
    ));
    tokio::spawn(state::watch_ingresses(client.clone(), app.clone()));
    tokio::spawn(state::watch_namespaces(client.clone(), app.clone()));
    tokio::spawn(state::watch_claims(client.clone(), app.clone()));
    tokio::spawn(claims::release_loop(
        client,
        app.clone(),
        cli.claim_release_interval.max(Duration::from_secs(1)),
        cli.claim_grace,
    ));
    {
        let app = app.clone();
        let interval = Duration::from_secs_f64(cli.cert_poll_interval.clamp(0.05, 3600.0));
        cert.clone().spawn_watch(interval, move |ok| {
            let result = if ok { "ok" } else { "error" };
            app.metrics
                .cert_reloads
                .get_or_create(&metrics::ResultLabels {
                    result: result.into(),
                })
                .inc();
        });
    }

    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    tracing::info!(
        %listen,
        domain = %cfg.deployment_domain,
        group = %cfg.alb_shared_group_name,
        registry = cfg.image_registry.as_deref().unwrap_or(""),
        claims_namespace = %claims_namespace,
        "jockey-webhook serving"
    );
    server::serve(listener, tls_config, server::router(app), shutdown_signal()).await;
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
    tracing::info!("shutdown signal received");
}

#[cfg(test)]
mod tests;
