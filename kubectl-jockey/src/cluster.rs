//! Client setup from kubectl's global flags (`--kubeconfig`, `--context`, `-n/--namespace`,
//! `--as`, `--as-group`), so `kubectl jockey ... --context prod -n team-a --as alice` means what
//! it means to kubectl.

use anyhow::{Context, Result};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use std::path::PathBuf;
use std::time::Duration;

/// The User-Agent of every request to the API server, as kubectl sends its own.
pub const USER_AGENT: &str = concat!("kubectl-jockey/", env!("CARGO_PKG_VERSION"));

#[derive(clap::Args, Debug, Clone, Default)]
pub struct KubeArgs {
    /// Path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config).
    #[arg(long, global = true, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use (default: its current context).
    #[arg(long, global = true, value_name = "NAME")]
    pub context: Option<String>,
    /// The namespace to work in (default: the context's namespace, then `default`).
    #[arg(short = 'n', long, global = true, value_name = "NAMESPACE")]
    pub namespace: Option<String>,
    /// User to impersonate for the command, as kubectl's --as (e.g. a tenant's user, or
    /// system:serviceaccount:NS:NAME): what a tenant may do, checked from an admin's kubeconfig.
    #[arg(long = "as", global = true, value_name = "USER")]
    pub as_user: Option<String>,
    /// Group to impersonate (repeatable), as kubectl's --as-group; needs --as (or a kubeconfig
    /// user that impersonates).
    #[arg(long = "as-group", global = true, value_name = "GROUP")]
    pub as_groups: Vec<String>,
}

/// A connected client plus the namespace the command works in.
pub struct Cluster {
    pub client: Client,
    /// `-n`, else the kubeconfig context's namespace, else `default`.
    pub namespace: String,
}

impl KubeArgs {
    fn options(&self) -> KubeConfigOptions {
        KubeConfigOptions {
            context: self.context.clone(),
            ..Default::default()
        }
    }

    /// Loads the kubeconfig the way kubectl does: `--kubeconfig`, else `$KUBECONFIG`, else
    /// `~/.kube/config`; falls back to the in-cluster service account when there is none.
    pub async fn config(&self) -> Result<Config> {
        let config = match &self.kubeconfig {
            Some(path) => {
                let kc = Kubeconfig::read_from(path).with_context(|| {
                    format!(
                        "reading kubeconfig {}; check the path given to --kubeconfig",
                        path.display()
                    )
                })?;
                Config::from_custom_kubeconfig(kc, &self.options())
                    .await
                    .with_context(|| {
                        format!(
                            "loading kubeconfig {} (context {:?}; check the file with `kubectl \
                             --kubeconfig FILE config get-contexts`)",
                            path.display(),
                            self.context
                        )
                    })?
            }
            None if self.context.is_some() => Config::from_kubeconfig(&self.options())
                .await
                .with_context(|| {
                    format!(
                        "loading context {:?} from the kubeconfig (pick one `kubectl config \
                         get-contexts` lists, or leave --context out)",
                        self.context.as_deref().unwrap_or_default()
                    )
                })?,
            None => Config::infer().await.context(
                "no Kubernetes configuration found; pass --kubeconfig FILE, set KUBECONFIG, \
                 or run inside a cluster",
            )?,
        };
        let mut config = config;
        self.impersonate(&mut config)?;
        // The API server's audit log then tells the plugin's requests from everyone else's.
        config.headers.push((
            http::header::USER_AGENT,
            http::HeaderValue::from_static(USER_AGENT),
        ));
        Ok(config)
    }

    /// `--as` and `--as-group` over the kubeconfig's own `as`/`as-groups`, as kubectl does: the
    /// API server then authorises every request as that user (the kubeconfig's user needs the
    /// `impersonate` verb). Groups without a user are refused, as kubectl refuses them.
    pub fn impersonate(&self, config: &mut Config) -> Result<()> {
        if let Some(user) = &self.as_user {
            config.auth_info.impersonate = Some(user.clone());
        }
        if !self.as_groups.is_empty() {
            config.auth_info.impersonate_groups = Some(self.as_groups.clone());
        }
        if config.auth_info.impersonate_groups.is_some() && config.auth_info.impersonate.is_none() {
            anyhow::bail!(
                "--as-group {:?} without a user to impersonate; add --as USER (the groups are \
                 that user's)",
                self.as_groups.join(",")
            );
        }
        Ok(())
    }

    /// Connects (lazily: no request is made until the first API call).
    pub async fn connect(&self) -> Result<Cluster> {
        let config = self.config().await?;
        let namespace = self
            .namespace
            .clone()
            .unwrap_or_else(|| config.default_namespace.clone());
        let client = Client::try_from(config).context("building the Kubernetes client")?;
        Ok(Cluster { client, namespace })
    }

    /// [`KubeArgs::connect`], with a client that retries a request the API server could not
    /// take (connection refused or reset, 429, 503, 504) for about half a minute: `deploy`
    /// waits minutes for its build and rollout, and a restart of the API server meanwhile (an
    /// upgrade, a crash) must not end it. Every request `deploy` retries is safe to repeat: a
    /// read, a server-side apply, a merge patch, or an update carrying its resourceVersion.
    pub async fn connect_retrying(&self) -> Result<Cluster> {
        let config = self.config().await?;
        let namespace = self
            .namespace
            .clone()
            .unwrap_or_else(|| config.default_namespace.clone());
        let client = kube::client::ClientBuilder::try_from(config)
            .context("building the Kubernetes client")?
            .with_layer(&tower::buffer::BufferLayer::new(1024))
            .with_layer(&tower::retry::RetryLayer::new(Reconnect::default()))
            .build();
        Ok(Cluster { client, namespace })
    }

    /// The namespace without contacting any cluster (for `--dry-run=client`): `-n`, else the
    /// kubeconfig's context namespace when a kubeconfig is readable, else `default`.
    pub async fn namespace_offline(&self) -> String {
        if let Some(ns) = &self.namespace {
            return ns.clone();
        }
        match self.config().await {
            Ok(c) => c.default_namespace,
            Err(_) => "default".to_string(),
        }
    }
}

/// The retry policy of [`KubeArgs::connect_retrying`]: up to [`Reconnect::MAX_ATTEMPTS`]
/// retries, 250 ms doubling to 4 s apart (about 30 s in all).
#[derive(Clone, Default)]
pub struct Reconnect {
    attempt: u32,
}

impl Reconnect {
    pub const MAX_ATTEMPTS: u32 = 10;

    /// Whether an outcome is worth another try: no answer at all, or the server asking for one.
    /// Pure.
    pub fn transient(status: Option<http::StatusCode>) -> bool {
        match status {
            None => true,
            Some(s) => matches!(s.as_u16(), 429 | 503 | 504),
        }
    }

    pub fn delay(attempt: u32) -> Duration {
        Duration::from_millis(250u64.saturating_mul(1 << attempt.min(4)))
    }
}

impl<Res>
    tower::retry::Policy<http::Request<kube::client::Body>, http::Response<Res>, tower::BoxError>
    for Reconnect
{
    type Future = tokio::time::Sleep;

    fn retry(
        &mut self,
        _req: &mut http::Request<kube::client::Body>,
        result: &mut Result<http::Response<Res>, tower::BoxError>,
    ) -> Option<Self::Future> {
        let status = result.as_ref().ok().map(|r| r.status());
        if !Self::transient(status) || self.attempt >= Self::MAX_ATTEMPTS {
            return None;
        }
        let delay = Self::delay(self.attempt);
        self.attempt += 1;
        tracing::debug!(
            attempt = self.attempt,
            ?status,
            "API server unavailable; retrying"
        );
        Some(tokio::time::sleep(delay))
    }

    fn clone_request(
        &mut self,
        req: &http::Request<kube::client::Body>,
    ) -> Option<http::Request<kube::client::Body>> {
        // A streaming body cannot be sent twice: such a request is not retried.
        let body = req.body().try_clone()?;
        let mut out = http::Request::builder()
            .method(req.method().clone())
            .uri(req.uri().clone())
            .version(req.version())
            .body(body)
            .ok()?;
        *out.headers_mut() = req.headers().clone();
        *out.extensions_mut() = req.extensions().clone();
        Some(out)
    }
}

/// The API server's 403 in an error's chain, if that is what it is.
pub fn forbidden(err: &anyhow::Error) -> Option<&kube::core::Status> {
    err.chain()
        .find_map(|c| match c.downcast_ref::<kube::Error>() {
            Some(kube::Error::Api(status)) if status.code == 403 => Some(&**status),
            _ => None,
        })
}

/// Whether a kube error is the API server's 403.
pub fn is_forbidden(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(status) if status.code == 403)
}

/// A 403 turned into what to do about it: the API server's refusal (which names the user and
/// what was refused), then the role the command needs and who gives it. Other errors pass
/// unchanged.
pub fn needs_role(err: anyhow::Error, role: &str) -> anyhow::Error {
    if forbidden(&err).is_none() {
        return err;
    }
    anyhow::anyhow!(
        "{}; this command needs {role}. Ask your cluster admin for it, or run it as an operator \
         (--context, --as)",
        error_chain(&err)
    )
}

/// Whether a kube error is the API server's 404.
pub fn is_not_found(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(status) if status.code == 404)
}

/// A kube error in one line: the API server's own message when it sent one (instead of the
/// whole Status structure), the error otherwise.
pub fn api_message(err: &kube::Error) -> String {
    match err {
        kube::Error::Api(status) if !status.message.is_empty() => {
            format!("{} ({})", status.message, status.reason)
        }
        other => other.to_string(),
    }
}

/// An error and its causes on one line (object, cause, fix), like anyhow's `{:#}`, but with
/// the API server's own message for a kube error instead of the whole Status structure.
pub fn error_chain(err: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in err.chain() {
        let text = match cause.downcast_ref::<kube::Error>() {
            Some(k) => api_message(k),
            None => cause.to_string(),
        };
        // kube's errors repeat their source in their own text; keep each message once.
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        if cause.downcast_ref::<kube::Error>().is_some() {
            break;
        }
    }
    parts.join(": ")
}

/// Server-side apply parameters of the objects only jockey writes (instance ConfigMaps, the
/// builder's objects, `rollback`'s instance move): `force`, as `kubectl apply --server-side
/// --force-conflicts` would, since no one else has a say in them.
pub fn apply_params(dry_run: bool) -> kube::api::PatchParams {
    apply_params_keeping(dry_run, true)
}

/// Server-side apply parameters of `deploy`'s Deployment, Service and Ingress: without force, so
/// a field another manager owns is a conflict (the API server's 409), not silently taken back;
/// `force` only where `deploy` decided to take the conflicting fields.
pub fn apply_params_keeping(dry_run: bool, force: bool) -> kube::api::PatchParams {
    let mut params = kube::api::PatchParams::apply(jockey_core::names::FIELD_MANAGER);
    params.force = force;
    params.dry_run = dry_run;
    params
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconnect_retries_only_what_did_not_reach_an_answer_and_backs_off() {
        assert!(Reconnect::transient(None));
        for code in [429, 503, 504] {
            assert!(Reconnect::transient(http::StatusCode::from_u16(code).ok()));
        }
        for code in [200, 400, 403, 404, 409, 422, 500] {
            assert!(
                !Reconnect::transient(http::StatusCode::from_u16(code).ok()),
                "{code}"
            );
        }
        let total: Duration = (0..Reconnect::MAX_ATTEMPTS).map(Reconnect::delay).sum();
        assert_eq!(Reconnect::delay(0), Duration::from_millis(250));
        assert_eq!(Reconnect::delay(9), Duration::from_secs(4));
        assert!(
            total >= Duration::from_secs(25) && total <= Duration::from_secs(40),
            "{total:?}"
        );
    }

    fn kubeconfig(dir: &std::path::Path, user_extra: &str) -> PathBuf {
        let path = dir.join("kubeconfig");
        std::fs::write(
            &path,
            format!(
                "apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters:\n- name: k\n  \
                 cluster:\n    server: https://127.0.0.1:6443\ncontexts:\n- name: c\n  context:\n    \
                 cluster: k\n    user: u\n    namespace: team-a\nusers:\n- name: u\n  user:\n    \
                 token: t\n{user_extra}"
            ),
        )
        .unwrap();
        path
    }

    /// `--as` and `--as-group` land in the client's configuration (kube turns them into the
    /// Impersonate-User and Impersonate-Group headers), over the kubeconfig's own.
    #[tokio::test]
    async fn impersonation_flags_land_in_the_config() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            kube: KubeArgs,
        }
        let dir = tempfile::tempdir().unwrap();
        let path = kubeconfig(dir.path(), "    as: from-kubeconfig\n");
        let p = path.to_string_lossy().to_string();
        let parse = |args: &[&str]| {
            Cli::try_parse_from(["t", "--kubeconfig", &p].iter().chain(args).copied())
                .unwrap()
                .kube
        };
        let c = parse(&["--as", "tenant-a", "--as-group", "g1", "--as-group", "g2"])
            .config()
            .await
            .unwrap();
        assert_eq!(c.auth_info.impersonate.as_deref(), Some("tenant-a"));
        assert_eq!(
            c.auth_info.impersonate_groups,
            Some(vec!["g1".to_string(), "g2".to_string()])
        );
        assert_eq!(c.default_namespace, "team-a");
        // Without the flags, the kubeconfig's own impersonation stays.
        let c = parse(&[]).config().await.unwrap();
        assert_eq!(c.auth_info.impersonate.as_deref(), Some("from-kubeconfig"));
        assert_eq!(c.auth_info.impersonate_groups, None);
        // Groups need a user.
        let plain = kubeconfig(dir.path(), "");
        let args = KubeArgs {
            kubeconfig: Some(plain),
            as_groups: vec!["g1".into()],
            ..Default::default()
        };
        let e = format!("{:#}", args.config().await.unwrap_err());
        assert!(
            e.contains("--as-group") && e.contains("add --as USER"),
            "{e}"
        );
        let args = KubeArgs {
            as_user: Some("system:serviceaccount:team-a:ci".into()),
            ..args
        };
        let c = args.config().await.unwrap();
        assert_eq!(
            c.auth_info.impersonate.as_deref(),
            Some("system:serviceaccount:team-a:ci")
        );
    }

    #[test]
    fn a_403_says_which_role_the_command_needs_and_other_errors_pass() {
        let status: kube::core::Status = serde_json::from_value(serde_json::json!({
            "status": "Failure", "code": 403, "reason": "Forbidden",
            "message": "pods is forbidden: User \"tenant-b\" cannot list resource \"pods\" in API group \"\" in the namespace \"builder\""
        }))
        .unwrap();
        let err = anyhow::Error::new(kube::Error::Api(Box::new(status)))
            .context("listing build pods in namespace builder");
        assert!(forbidden(&err).is_some());
        let e = needs_role(err, "list on pods in the builder namespace").to_string();
        assert!(
            e.starts_with(
                "listing build pods in namespace builder: pods is forbidden: User \"tenant-b\""
            ) && e.contains("this command needs list on pods in the builder namespace")
                && e.contains("Ask your cluster admin"),
            "{e}"
        );
        let other = anyhow::anyhow!("no such thing");
        assert_eq!(needs_role(other, "x").to_string(), "no such thing");
    }

    #[test]
    fn error_chain_shows_the_api_servers_message_once() {
        let status: kube::core::Status = serde_json::from_value(serde_json::json!({
            "status": "Failure", "code": 404, "reason": "NotFound",
            "message": "namespaces \"x\" not found"
        }))
        .unwrap();
        let err = anyhow::Error::new(kube::Error::Api(Box::new(status)))
            .context("writing ConfigMap x/instance-0123456789abcdef");
        assert_eq!(
            error_chain(&err),
            "writing ConfigMap x/instance-0123456789abcdef: namespaces \"x\" not found (NotFound)"
        );
        assert!(is_not_found(err.downcast_ref::<kube::Error>().unwrap()));
    }
}
