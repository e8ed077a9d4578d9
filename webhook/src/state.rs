//! Shared state: configuration, policy, and the watch-fed caches the policy asks (labelled
//! Ingresses by host/project/group, and the project label of labelled Namespaces).
//!
//! The caches are fed by kube-runtime watchers (list once, then watch; relist on expiry with
//! backoff), so an admission request never LISTs the API server.

use crate::metrics::Metrics;
use futures::StreamExt;
use jockey_core::Config;
use jockey_core::names::LABEL_PROJECT;
use jockey_core::policy::{IngressIndex, IngressRecord, Policy};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::networking::v1::Ingress;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::Notify;

pub struct App {
    pub cfg: Config,
    pub policy: Policy,
    pub index: RwLock<IngressIndex>,
    /// Namespace name -> its `jockey.agentops.ai/project` label.
    pub namespaces: RwLock<HashMap<String, String>>,
    ingresses_synced: AtomicBool,
    namespaces_synced: AtomicBool,
    synced: Notify,
    announced: AtomicBool,
    pub metrics: Metrics,
}

impl App {
    pub fn new(cfg: Config, policy: Policy) -> Self {
        Self {
            cfg,
            policy,
            index: RwLock::new(IngressIndex::new()),
            namespaces: RwLock::new(HashMap::new()),
            ingresses_synced: AtomicBool::new(false),
            namespaces_synced: AtomicBool::new(false),
            synced: Notify::new(),
            announced: AtomicBool::new(false),
            metrics: Metrics::new(),
        }
    }

    /// Ready once both caches completed their first list.
    pub fn is_ready(&self) -> bool {
        self.ingresses_synced.load(Ordering::Acquire)
            && self.namespaces_synced.load(Ordering::Acquire)
    }

    /// Waits up to `timeout` for readiness.
    pub async fn wait_ready(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.synced.notified();
            if self.is_ready() {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.is_ready();
            }
        }
    }

    /// Marks both caches synced without a cluster (tests and `--no-cluster` style runs).
    #[cfg(test)]
    pub fn mark_synced_for_tests(&self) {
        self.ingresses_synced.store(true, Ordering::Release);
        self.namespaces_synced.store(true, Ordering::Release);
        self.synced.notify_waiters();
    }

    /// Wakes waiting requests; logs readiness once (scripts wait for this line).
    fn announce_if_ready(&self) {
        if self.is_ready() && !self.announced.swap(true, Ordering::AcqRel) {
            tracing::info!("caches synced; ready");
        }
        self.synced.notify_waiters();
    }

    fn set_index(&self, index: IngressIndex) {
        let len = index.len();
        *self.index.write().unwrap_or_else(|p| p.into_inner()) = index;
        self.metrics.indexed_ingresses.set(len as i64);
    }

    fn with_index(&self, f: impl FnOnce(&mut IngressIndex)) {
        let mut guard = self.index.write().unwrap_or_else(|p| p.into_inner());
        f(&mut guard);
        self.metrics.indexed_ingresses.set(guard.len() as i64);
    }

    pub fn namespace_project(&self, namespace: &str) -> Option<String> {
        self.namespaces
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(namespace)
            .cloned()
    }
}

fn key_of(i: &Ingress) -> (String, String) {
    (
        i.metadata.namespace.clone().unwrap_or_default(),
        i.metadata.name.clone().unwrap_or_default(),
    )
}

/// Keeps `app.index` in step with the labelled Ingresses of the whole cluster. A (re)list is
/// buffered and swapped in whole at its end, so requests never see a half-listed cache.
pub async fn watch_ingresses(client: Client, app: Arc<App>) {
    let api: Api<Ingress> = Api::all(client);
    let config = watcher::Config::default().labels(LABEL_PROJECT);
    let mut stream = watcher::watcher(api, config).default_backoff().boxed();
    let mut staging: Option<IngressIndex> = None;
    while let Some(event) = stream.next().await {
        match event {
            Ok(Event::Init) => staging = Some(IngressIndex::new()),
            Ok(Event::InitApply(i)) => {
                if let Some(s) = staging.as_mut() {
                    s.upsert(IngressRecord::from_ingress(&i));
                }
            }
            Ok(Event::InitDone) => {
                if let Some(s) = staging.take() {
                    tracing::info!(ingresses = s.len(), "ingress cache synced");
                    app.set_index(s);
                }
                app.ingresses_synced.store(true, Ordering::Release);
                app.announce_if_ready();
            }
            Ok(Event::Apply(i)) => {
                app.with_index(|idx| idx.upsert(IngressRecord::from_ingress(&i)))
            }
            Ok(Event::Delete(i)) => {
                let (ns, name) = key_of(&i);
                app.with_index(|idx| idx.remove(&ns, &name));
            }
            Err(e) => tracing::warn!(error = %e, "ingress watch failed; retrying with backoff"),
        }
    }
}

/// Keeps `app.namespaces` in step with the namespaces labelled for a project.
pub async fn watch_namespaces(client: Client, app: Arc<App>) {
    let api: Api<Namespace> = Api::all(client);
    let config = watcher::Config::default().labels(LABEL_PROJECT);
    let mut stream = watcher::watcher(api, config).default_backoff().boxed();
    let mut staging: Option<HashMap<String, String>> = None;
    let label = |n: &Namespace| {
        n.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(LABEL_PROJECT))
            .cloned()
    };
    while let Some(event) = stream.next().await {
        match event {
            Ok(Event::Init) => staging = Some(HashMap::new()),
            Ok(Event::InitApply(n)) => {
                if let (Some(s), Some(name), Some(p)) =
                    (staging.as_mut(), n.metadata.name.clone(), label(&n))
                {
                    s.insert(name, p);
                }
            }
            Ok(Event::InitDone) => {
                if let Some(s) = staging.take() {
                    *app.namespaces.write().unwrap_or_else(|p| p.into_inner()) = s;
                }
                app.namespaces_synced.store(true, Ordering::Release);
                app.announce_if_ready();
            }
            Ok(Event::Apply(n)) => {
                if let Some(name) = n.metadata.name.clone() {
                    let mut map = app.namespaces.write().unwrap_or_else(|p| p.into_inner());
                    match label(&n) {
                        Some(p) => map.insert(name, p),
                        None => map.remove(&name),
                    };
                }
            }
            Ok(Event::Delete(n)) => {
                if let Some(name) = n.metadata.name.as_deref() {
                    app.namespaces
                        .write()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(name);
                }
            }
            Err(e) => tracing::warn!(error = %e, "namespace watch failed; retrying with backoff"),
        }
    }
}
