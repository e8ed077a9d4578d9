//! The build log, relayed to the request: a tenant cannot read pods in the builder namespace, so
//! the broker copies the Kaniko container's log into the request's status as it comes (the
//! newest lines, and how many there were, so `deploy --follow` prints each line once).

use crate::kaniko::{BuildPlan, KANIKO_CONTAINER};
use futures::{AsyncBufReadExt, StreamExt};
use jockey_core::build_request::{BuildRequest, BuildRequestStatus, append_log};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{LogParams, Patch, PatchParams};
use kube::{Api, Client};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::task::JoinHandle;

/// How often new lines are written to the request: often enough to follow, rarely enough to
/// keep the API server's load per build small.
pub const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// The relays running, by request (namespace, name).
#[derive(Default)]
pub struct Relays(Mutex<HashMap<(String, String), JoinHandle<()>>>);

impl Relays {
    /// Starts relaying `pod`'s log to the request unless that is already being done.
    pub fn follow(&self, client: &Client, plan: &BuildPlan, ns: &str, request: &str, pod: &str) {
        let key = (ns.to_string(), request.to_string());
        let Ok(mut relays) = self.0.lock() else {
            return;
        };
        if relays.contains_key(&key) {
            return;
        }
        let pods: Api<Pod> = Api::namespaced(client.clone(), &plan.namespace);
        let requests: Api<BuildRequest> = Api::namespaced(client.clone(), ns);
        let handle = tokio::spawn(relay(pods, pod.to_string(), requests, request.to_string()));
        relays.insert(key, handle);
    }

    /// Waits (briefly) for the relay of a finished build to write its last lines, so that the
    /// final status comes after them. A build too quick to be seen running had no relay: its
    /// log's tail is written to the request now, from the finished pod.
    pub async fn finish(
        &self,
        client: &Client,
        plan: &BuildPlan,
        ns: &str,
        request: &str,
        pod: Option<&str>,
    ) {
        let handle = self
            .0
            .lock()
            .ok()
            .and_then(|mut r| r.remove(&(ns.to_string(), request.to_string())));
        if let Some(mut h) = handle {
            if tokio::time::timeout(Duration::from_secs(3), &mut h)
                .await
                .is_ok()
            {
                return;
            }
            // The log stream has not ended: what it would still write comes from the finished
            // pod instead, before the final status.
            h.abort();
        }
        let Some(pod) = pod else {
            return;
        };
        let params = LogParams {
            container: Some(KANIKO_CONTAINER.to_string()),
            tail_lines: Some(jockey_core::build_request::STATUS_LOG_LINES as i64),
            ..Default::default()
        };
        let pods: Api<Pod> = Api::namespaced(client.clone(), &plan.namespace);
        if let Ok(text) = pods.logs(pod, &params).await {
            let mut status = BuildRequestStatus::default();
            let lines: Vec<String> = text.lines().map(str::to_string).collect();
            append_log(&mut status, &lines);
            let requests: Api<BuildRequest> = Api::namespaced(client.clone(), ns);
            write(&requests, request, &status).await;
        }
    }
}

async fn relay(pods: Api<Pod>, pod: String, requests: Api<BuildRequest>, name: String) {
    let params = LogParams {
        container: Some(KANIKO_CONTAINER.to_string()),
        follow: true,
        ..Default::default()
    };
    let stream = match pods.log_stream(&pod, &params).await {
        Ok(s) => s,
        Err(e) => {
            tracing::debug!("build log of {pod}: {e}");
            return;
        }
    };
    let mut lines = stream.lines();
    let mut status = BuildRequestStatus::default();
    let mut pending: Vec<String> = Vec::new();
    let mut tick = tokio::time::interval(FLUSH_EVERY);
    loop {
        tokio::select! {
            line = lines.next() => match line {
                Some(Ok(l)) => pending.push(l),
                _ => break,
            },
            _ = tick.tick() => {
                if !pending.is_empty() {
                    append_log(&mut status, &std::mem::take(&mut pending));
                    write(&requests, &name, &status).await;
                }
            }
        }
    }
    append_log(&mut status, &pending);
    write(&requests, &name, &status).await;
}

async fn write(requests: &Api<BuildRequest>, name: &str, status: &BuildRequestStatus) {
    let patch = json!({ "status": { "log": status.log, "logLines": status.log_lines } });
    if let Err(e) = requests
        .patch_status(name, &PatchParams::default(), &Patch::Merge(patch))
        .await
    {
        tracing::debug!("writing the build log of {name}: {e}");
    }
}
