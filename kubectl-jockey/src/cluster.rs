//! Client setup from kubectl's global flags (`--kubeconfig`, `--context`, `-n/--namespace`), so
//! `kubectl jockey ... --context prod -n team-a` means what it means to kubectl.

use anyhow::{Context, Result};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use std::path::PathBuf;

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
        Ok(config)
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
