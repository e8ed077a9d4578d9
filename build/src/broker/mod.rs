//! The build broker: a kube-runtime controller, run by `jockey-webhook broker` under its own
//! service account, that answers tenants' `BuildRequest`s.
//!
//! For each request it checks, from the API server and never from the request's word, that the
//! instance ConfigMap is the project's own and holds what its name says, and that the request's
//! namespace owns the project (the webhook's claims); then it writes, in the builder namespace,
//! the copy of the instance, the per-build credentials and the Kaniko Job, follows the build,
//! and writes progress, the log's newest lines, the outcome and the image back on the request's
//! status ([`reconcile`]). A tenant holds no access to the builder namespace and no AWS
//! credentials: this is the only way in. Builds whose request is gone are removed ([`sweep`]).

mod logs;
mod ownership;
mod reconcile;
mod sweep;

use crate::kaniko::{COMPONENT_BUILD, LABEL_COMPONENT};
use anyhow::{Context, Result};
use futures::StreamExt;
use jockey_core::Config;
use jockey_core::build_request::{BuildRequest, LABEL_REQUEST_NAME, LABEL_REQUEST_NAMESPACE};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use kube::runtime::controller::Controller;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};
use std::sync::Arc;
use std::time::Duration;

/// What the broker needs to know besides its client.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Registry, repository prefix, Kaniko and base images, builder namespace, builder role.
    pub cfg: Config,
    /// Where the claims live (the webhook's namespace).
    pub claims_namespace: String,
    /// Only requests of these namespaces (a broker per test); empty: every namespace.
    pub request_namespaces: Vec<String>,
    /// How often builds whose request is gone are looked for.
    pub sweep_interval: Duration,
}

/// Shared by every reconcile.
pub struct Ctx {
    pub client: Client,
    pub settings: Settings,
    pub logs: logs::Relays,
}

/// Runs the broker until the process is asked to stop.
pub async fn run(client: Client, settings: Settings) -> Result<()> {
    let requests: Api<BuildRequest> = match settings.request_namespaces.as_slice() {
        [ns] => Api::namespaced(client.clone(), ns),
        _ => Api::all(client.clone()),
    };
    requests
        .list(&ListParams::default().limit(1))
        .await
        .context(
            "listing BuildRequests failed; install the CustomResourceDefinition \
             (kubectl jockey install, or kubectl apply -k manifests) and grant the broker's \
             service account the jockey-broker ClusterRole",
        )?;
    let builder = settings.cfg.builder_namespace.clone();
    let selector = format!("{LABEL_COMPONENT}={COMPONENT_BUILD}");
    let jobs: Api<Job> = Api::namespaced(client.clone(), &builder);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &builder);
    let ctx = Arc::new(Ctx {
        client: client.clone(),
        settings: settings.clone(),
        logs: logs::Relays::default(),
    });
    tokio::spawn(sweep::run(ctx.clone()));
    tracing::info!(
        builder_namespace = %builder,
        request_namespaces = ?settings.request_namespaces,
        "build broker started"
    );
    Controller::new(requests, watcher::Config::default())
        .watches(
            jobs,
            watcher::Config::default().labels(&selector),
            |job: Job| request_of(&job),
        )
        .watches(
            pods,
            watcher::Config::default().labels(&selector),
            |pod: Pod| request_of(&pod),
        )
        .shutdown_on_signal()
        .run(reconcile::reconcile, reconcile::error_policy, ctx)
        .for_each(|outcome| async move {
            if let Err(e) = outcome {
                tracing::debug!("reconcile: {e}");
            }
        })
        .await;
    Ok(())
}

/// The request a build object answers, from the labels the broker put on it.
fn request_of<K: ResourceExt>(obj: &K) -> Option<ObjectRef<BuildRequest>> {
    let labels = obj.labels();
    let ns = labels.get(LABEL_REQUEST_NAMESPACE)?;
    let name = labels.get(LABEL_REQUEST_NAME)?;
    Some(ObjectRef::new(name).within(ns))
}
