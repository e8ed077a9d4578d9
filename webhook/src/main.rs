//! `jockey-webhook`: the mutating and validating admission webhook for jockey-labelled
//! Deployments, Services and Ingresses. A thin adapter: TLS, HTTP, caches and metrics here; every
//! decision in `jockey_core::admission`.

mod claims;
mod client_auth;
mod dev_certs;
mod metrics;
mod renew;
mod server;
mod state;
mod tls;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use jockey_core::Config;
use jockey_core::policy::Policy;
use state::App;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Admission webhook that defaults and validates jockey-labelled Deployments, Services and
/// Ingresses. Serves POST /mutate and /validate (AdmissionReview admission.k8s.io/v1), GET
/// /healthz, /readyz and /metrics, over TLS only.
#[derive(Parser, Debug)]
#[command(name = "jockey-webhook", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Address to listen on (TLS), e.g. 0.0.0.0:10250 or 127.0.0.1:9443.
    #[arg(long, value_name = "ADDR:PORT")]
    listen: Option<SocketAddr>,
    /// PEM serving certificate (chain); reloaded when it changes.
    #[arg(long, value_name = "FILE")]
    tls_cert_file: Option<PathBuf>,
    /// PEM private key of the serving certificate; reloaded when it changes.
    #[arg(long, value_name = "FILE")]
    tls_key_file: Option<PathBuf>,
    /// The cluster admin's policy (YAML or JSON); without it, the defaults.
    #[arg(long, value_name = "FILE", global = true)]
    policy_file: Option<PathBuf>,
    /// Kubeconfig to watch the cluster with; in a pod, the service account is used.
    #[arg(long, value_name = "FILE", global = true)]
    kubeconfig: Option<PathBuf>,
    /// Base domain of project hosts (default deploy.agentops.ai).
    #[arg(long, env = "DEPLOYMENT_DOMAIN")]
    deployment_domain: Option<String>,
    /// Shared ALB group (default alb-deployments).
    #[arg(long, env = "ALB_SHARED_GROUP_NAME")]
    alb_shared_group_name: Option<String>,
    /// Further ALB groups every project may join, comma-separated (the admission policy in the
    /// API server reads the same setting from the webhook's ConfigMap).
    #[arg(long, env = "ALB_ALLOWED_GROUPS")]
    alb_allowed_groups: Option<String>,
    /// Registry of builder images, needed to fill in `image: jockey:auto`.
    #[arg(long, env = "IMAGE_REGISTRY")]
    image_registry: Option<String>,
    /// Repository prefix of builder images (default hosting).
    #[arg(long, env = "IMAGE_REPOSITORY_PREFIX")]
    image_repository_prefix: Option<String>,
    /// ACM certificate for the ALB's HTTPS listener.
    #[arg(long, env = "ALB_CERTIFICATE_ARN")]
    certificate_arn: Option<String>,
    /// Answer /mutate and /validate only for a caller whose TLS client certificate is signed by
    /// a CA in this PEM file: the API server, given a client certificate for webhooks by
    /// --admission-control-config-file (manifests/README.md). Others get 401 and nothing is
    /// read or recorded; /healthz, /readyz and /metrics need no certificate. Reloaded when it
    /// changes. Leave it out where the API server presents none (EKS: SECURITY.md says what
    /// still holds).
    #[arg(long, env = "JOCKEY_CLIENT_CA_FILE", value_name = "FILE")]
    client_ca_file: Option<PathBuf>,
    /// With --client-ca-file: the client certificate's common name or a DNS name must also be
    /// one of these (repeatable), for a CA that signs other clients' certificates too (e.g. the
    /// cluster's own client CA). A CA of the API server's webhook client certificate alone
    /// needs none.
    #[arg(long = "client-name", value_name = "NAME", requires = "client_ca_file")]
    client_names: Vec<String>,
    /// How often the certificate files are checked for changes.
    #[arg(long, value_name = "SECONDS", default_value_t = 1.0)]
    cert_poll_interval: f64,
    /// Renew the serving certificate from the CA in this Secret (keys tls.crt and tls.key, as
    /// `kubectl jockey install` stores it), writing it into --renew-tls-secret; both in the
    /// webhook's namespace (POD_NAMESPACE, else the kubeconfig's).
    #[arg(
        long,
        value_name = "NAME",
        requires = "renew_tls_secret",
        conflicts_with_all = ["renew_ca_cert_file", "renew_ca_key_file"]
    )]
    renew_ca_secret: Option<String>,
    /// The serving Secret the pods mount (tls.crt, tls.key), updated by the renewal; the
    /// mounted files follow and are reloaded.
    #[arg(long, value_name = "NAME", requires = "renew_ca_secret")]
    renew_tls_secret: Option<String>,
    /// Outside a cluster: renew the serving certificate from this CA certificate (PEM),
    /// rewriting --tls-cert-file and --tls-key-file.
    #[arg(long, value_name = "FILE", requires = "renew_ca_key_file")]
    renew_ca_cert_file: Option<PathBuf>,
    /// The CA's private key (PEM), with --renew-ca-cert-file.
    #[arg(long, value_name = "FILE", requires = "renew_ca_cert_file")]
    renew_ca_key_file: Option<PathBuf>,
    /// Renew this long before the serving certificate expires (e.g. 30d, 12h). Default: a
    /// third of its lifetime, at most 30 days.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    renew_before: Option<Duration>,
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
    /// Run the build broker: answer tenants' BuildRequests with Kaniko builds in the builder
    /// namespace, under this process's own identity (its own Deployment and service account,
    /// see manifests/broker). The registry, images and builder role come from the environment
    /// (IMAGE_REGISTRY, IMAGE_REPOSITORY_PREFIX, KANIKO_IMAGE, BASE_IMAGE, BUILDER_ROLE_ARN,
    /// AWS_REGION), as for the plugin.
    Broker {
        /// The builder namespace (set up by `kubectl jockey setup-builder`).
        #[arg(long, env = "BUILDER_NAMESPACE", default_value = "builder")]
        builder_namespace: String,
        /// Answer only the requests of this namespace (repeatable; default: every namespace).
        #[arg(long = "request-namespace", value_name = "NAMESPACE")]
        request_namespaces: Vec<String>,
        /// Where the claims live (the webhook's namespace; default POD_NAMESPACE, then
        /// jockey-system).
        #[arg(long, env = "JOCKEY_CLAIMS_NAMESPACE", value_name = "NAMESPACE")]
        claims_namespace: Option<String>,
        /// How often builds whose request is gone are removed.
        #[arg(long, value_name = "DURATION", default_value = "1m", value_parser = humantime::parse_duration)]
        sweep_interval: std::time::Duration,
    },
    /// Write a fresh CA and a serving certificate signed by it into DIR (ca.crt, tls.crt,
    /// tls.key; ca.key with --keep-ca-key), for running the webhook next to a cluster and
    /// registering it by URL.
    DevCerts {
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// Names and addresses the certificate is valid for (repeatable).
        #[arg(long = "host", default_values = ["127.0.0.1", "localhost"])]
        hosts: Vec<String>,
        #[arg(long, default_value_t = 30)]
        days: i64,
        /// Also write the CA's key (ca.key, 0600), for --renew-ca-cert-file/--renew-ca-key-file.
        #[arg(long)]
        keep_ca_key: bool,
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
    // Checked like the webhook will check it, so that a registration is never printed for a
    // policy the webhook would refuse.
    load_policy(cli.policy_file.as_ref(), &cfg)?;
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
        other_groups: cfg.alb_allowed_groups.clone(),
        policy_scope: None,
        deployment_domain: cfg.deployment_domain.clone(),
        params: (claims_namespace(cli), format!("{name}-config")),
        render_params: true,
    };
    let items = r.objects().map_err(anyhow::Error::msg)?;
    Ok(serde_json::to_string_pretty(&serde_json::json!({
        "apiVersion": "v1", "kind": "List", "items": items
    }))?)
}

fn load_policy(path: Option<&PathBuf>, cfg: &Config) -> Result<Policy> {
    let policy = match path {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading --policy-file {}", path.display()))?;
            Policy::parse(&path.display().to_string(), &text)?
        }
        None => Policy::default(),
    };
    policy.check_with(cfg).map_err(|e| {
        anyhow::anyhow!(
            "policy file {}: {e}",
            path.map_or("(defaults)".into(), |p| p.display().to_string())
        )
    })?;
    Ok(policy)
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
        Some(Command::Broker {
            builder_namespace,
            request_namespaces,
            claims_namespace,
            sweep_interval,
        }) => {
            init_logging();
            let _ = rustls::crypto::ring::default_provider().install_default();
            let settings = jockey_build::broker::Settings {
                cfg: Config::from_lookup(|k| match k {
                    "BUILDER_NAMESPACE" => Some(builder_namespace.clone()),
                    _ => std::env::var(k).ok().filter(|v| !v.is_empty()),
                }),
                claims_namespace: claims_namespace.clone().unwrap_or_else(|| {
                    std::env::var("POD_NAMESPACE")
                        .ok()
                        .filter(|n| !n.is_empty())
                        .unwrap_or_else(|| "jockey-system".to_string())
                }),
                request_namespaces: request_namespaces.clone(),
                sweep_interval: *sweep_interval,
            };
            let outcome = tokio::runtime::Runtime::new()
                .context("starting the async runtime")
                .and_then(|rt| {
                    rt.block_on(async {
                        let client = kube_client(cli.kubeconfig.as_ref()).await?;
                        jockey_build::broker::run(client, settings).await
                    })
                });
            return match outcome {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("jockey-webhook broker: {e:#}");
                    ExitCode::FAILURE
                }
            };
        }
        Some(Command::DevCerts {
            dir,
            hosts,
            days,
            keep_ca_key,
        }) => {
            return match dev_certs::write(dir, hosts, *days, *keep_ca_key) {
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

/// flag > environment (clap reads both) > default (`Config`'s).
fn config(cli: &Cli) -> Config {
    Config::from_lookup(|k| match k {
        "DEPLOYMENT_DOMAIN" => cli.deployment_domain.clone(),
        "ALB_SHARED_GROUP_NAME" => cli.alb_shared_group_name.clone(),
        "ALB_ALLOWED_GROUPS" => cli.alb_allowed_groups.clone(),
        "IMAGE_REGISTRY" => cli.image_registry.clone(),
        "IMAGE_REPOSITORY_PREFIX" => cli.image_repository_prefix.clone(),
        "ALB_CERTIFICATE_ARN" => cli.certificate_arn.clone(),
        // Settings only the plugin uses.
        _ => None,
    })
}

/// The renewal the flags ask for, if any.
fn renewer(cli: &Cli, client: &kube::Client, files: Arc<Mutex<()>>) -> Option<renew::Renewer> {
    let source = match (
        &cli.renew_ca_secret,
        &cli.renew_tls_secret,
        &cli.renew_ca_cert_file,
        &cli.renew_ca_key_file,
    ) {
        (Some(ca), Some(tls), _, _) => {
            let namespace = std::env::var("POD_NAMESPACE")
                .ok()
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| client.default_namespace().to_string());
            renew::Source::Secrets {
                api: Box::new(kube::Api::namespaced(client.clone(), &namespace)),
                namespace,
                ca: ca.clone(),
                tls: tls.clone(),
            }
        }
        (_, _, Some(ca_cert), Some(ca_key)) => renew::Source::Files {
            cert: cli.tls_cert_file.clone()?,
            key: cli.tls_key_file.clone()?,
            ca_cert: ca_cert.clone(),
            ca_key: ca_key.clone(),
            lock: files,
        },
        _ => return None,
    };
    Some(renew::Renewer {
        source,
        renew_before: cli.renew_before,
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
        .context("--listen ADDR:PORT is required (e.g. --listen 0.0.0.0:10250)")?;
    let cert_file = cli
        .tls_cert_file
        .clone()
        .context("--tls-cert-file FILE is required: the webhook serves TLS only")?;
    let key_file = cli
        .tls_key_file
        .clone()
        .context("--tls-key-file FILE is required: the webhook serves TLS only")?;
    let cfg = config(&cli);
    let policy = load_policy(cli.policy_file.as_ref(), &cfg)?;

    let provider = tls::provider();
    let files = Arc::new(Mutex::new(()));
    let load = || {
        tls::ReloadingCert::new(
            cert_file.clone(),
            key_file.clone(),
            provider.clone(),
            files.clone(),
        )
    };
    let loaded = load();
    let renewal_asked = cli.renew_ca_secret.is_some() || cli.renew_ca_cert_file.is_some();
    if !renewal_asked {
        // Refused before anything else is tried: the reason and the fix are in the error.
        loaded.as_ref().map_err(|e| anyhow::anyhow!("{e:#}"))?;
    }
    // Refused before the cluster is tried, like the serving pair.
    let client_ca = match &cli.client_ca_file {
        Some(path) => Some(Arc::new(client_auth::ClientCa::new(
            path.clone(),
            provider.clone(),
        )?)),
        None => None,
    };
    let client = kube_client(cli.kubeconfig.as_ref()).await?;
    let renewer = renewer(&cli, &client, files.clone());
    let cert = match (loaded, &renewer) {
        (Ok(cert), _) => cert,
        (Err(e), None) => return Err(e),
        // A pair that cannot be served (expired while the webhook was down, say) is renewed
        // now when the webhook can, rather than waiting for someone to notice the crash loop.
        (Err(e), Some(r)) => match r.pass(tls::now_unix()).await {
            Ok(renew::Pass::Renewed { .. }) => match &r.source {
                renew::Source::Files { .. } => {
                    tracing::info!(renewed = %r.describe(), "serving certificate renewed at start");
                    load()?
                }
                renew::Source::Secrets { .. } => bail!(
                    "{e:#}\nrenewed {}: the kubelet updates the mounted files within a minute or two, and the restarted webhook serves them",
                    r.describe()
                ),
            },
            Ok(_) => return Err(e),
            Err(renew_error) => {
                bail!("{e:#}\nrenewing it failed too: {renew_error:#}");
            }
        },
    };
    let cert = Arc::new(cert);
    let tls_config = Arc::new(tls::server_config(
        cert.clone(),
        provider,
        client_ca.clone(),
    )?);

    let claims_namespace = claims_namespace(&cli);
    let leases = kube::Api::namespaced(client.clone(), &claims_namespace);
    let app = Arc::new(
        App::new(cfg.clone(), policy, claims_namespace.clone(), Some(leases))
            .with_claim_grace(cli.claim_grace)
            .with_client(client.clone())
            .with_callers(client_ca.as_ref().map(|ca| client_auth::Required {
                ca_file: ca.path().to_path_buf(),
                names: cli.client_names.clone(),
            })),
    );
    tokio::spawn(state::watch_ingresses(client.clone(), app.clone()));
    tokio::spawn(state::watch_namespaces(client.clone(), app.clone()));
    tokio::spawn(state::watch_services(client.clone(), app.clone()));
    tokio::spawn(state::watch_claims(client.clone(), app.clone()));
    tokio::spawn(claims::release_loop(
        client,
        app.clone(),
        cli.claim_release_interval.max(Duration::from_secs(1)),
        cli.claim_grace,
    ));
    app.metrics.cert_expiry.set(cert.served().not_after);
    {
        let app = app.clone();
        let served = cert.clone();
        let interval = Duration::from_secs_f64(cli.cert_poll_interval.clamp(0.05, 3600.0));
        cert.clone().spawn_watch(interval, move |ok| {
            let result = if ok { "ok" } else { "error" };
            app.metrics
                .cert_reloads
                .get_or_create(&metrics::ResultLabels {
                    result: result.into(),
                })
                .inc();
            if ok {
                app.metrics.cert_expiry.set(served.served().not_after);
            }
        });
    }
    match &client_ca {
        Some(ca) => {
            tracing::info!(
                client_ca = %ca.path().display(),
                client_names = ?cli.client_names,
                "admission reviews only from callers with a client certificate signed by the client CA"
            );
            let app = app.clone();
            let interval = Duration::from_secs_f64(cli.cert_poll_interval.clamp(0.05, 3600.0));
            ca.clone().spawn_watch(interval, move |ok| {
                let result = if ok { "ok" } else { "error" };
                app.metrics
                    .client_ca_reloads
                    .get_or_create(&metrics::ResultLabels {
                        result: result.into(),
                    })
                    .inc();
            });
        }
        None => tracing::warn!(
            "admission reviews from any caller that reaches the port (no --client-ca-file): claims are recorded only for namespaces and objects that exist; restrict who reaches it with the NetworkPolicy (manifests/README.md)"
        ),
    }
    match renewer {
        Some(r) => {
            tracing::info!(
                renews = %r.describe(),
                renew_before = %r.renew_before.map(|d| humantime::format_duration(d).to_string()).unwrap_or_else(|| "a third of the lifetime, at most 30 days".into()),
                "serving certificate renewal on"
            );
            r.spawn(app.clone());
        }
        None => tracing::info!(
            not_after = %jockey_core::certs::rfc3339(cert.served().not_after),
            "serving certificate renewal off: renewed by whoever wrote it (kubectl jockey install, cert-manager)"
        ),
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
