//! Builds whose request is gone (the tenant deleted it, or its namespace) are removed with what
//! they own (the instance copy, the credentials). Only the broker's own labels decide which
//! request a build answers: a tenant's objects in its own namespace never select another's.

use super::Ctx;
use crate::kaniko::{COMPONENT_BUILD, LABEL_COMPONENT};
use jockey_core::build_request::{BuildRequest, LABEL_REQUEST_NAME, LABEL_REQUEST_NAMESPACE};
use k8s_openapi::api::batch::v1::Job;
use kube::api::{DeleteParams, ListParams};
use kube::{Api, ResourceExt};
use std::sync::Arc;

pub async fn run(ctx: Arc<Ctx>) {
    let mut tick = tokio::time::interval(ctx.settings.sweep_interval);
    loop {
        tick.tick().await;
        if let Err(e) = once(&ctx).await {
            tracing::warn!("removing builds whose request is gone: {e}");
        }
    }
}

/// One pass; returns how many builds were removed.
pub async fn once(ctx: &Ctx) -> Result<usize, kube::Error> {
    let jobs: Api<Job> = Api::namespaced(ctx.client.clone(), &ctx.settings.cfg.builder_namespace);
    let mut selector = format!("{LABEL_COMPONENT}={COMPONENT_BUILD}");
    if !ctx.settings.request_namespaces.is_empty() {
        selector.push_str(&format!(
            ",{LABEL_REQUEST_NAMESPACE} in ({})",
            ctx.settings.request_namespaces.join(",")
        ));
    }
    let mut removed = 0;
    for job in jobs
        .list(&ListParams::default().labels(&selector))
        .await?
        .items
    {
        let labels = job.labels();
        let (Some(ns), Some(name)) = (
            labels.get(LABEL_REQUEST_NAMESPACE),
            labels.get(LABEL_REQUEST_NAME),
        ) else {
            continue;
        };
        let requests: Api<BuildRequest> = Api::namespaced(ctx.client.clone(), ns);
        if requests.get_opt(name).await?.is_some() {
            continue;
        }
        match jobs
            .delete(&job.name_any(), &DeleteParams::background())
            .await
        {
            Ok(_) => removed += 1,
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(e),
        }
        tracing::info!(job = %job.name_any(), request = %format!("{ns}/{name}"), "request gone; build removed");
    }
    Ok(removed)
}
