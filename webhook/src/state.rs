//! Shared state: configuration, policy, and the watch-fed caches the policy asks (labelled
//! Ingresses by host/project/group, the namespaces labelled for a project, the labelled
//! Services, and the claims).
//!
//! The caches are fed by kube-runtime watchers (list once, then watch; relist on expiry with
//! backoff), so an admission request never LISTs the API server.

use crate::metrics::Metrics;
use futures::StreamExt;
use jockey_core::Config;
use jockey_core::claims::{ClaimIndex, LABEL_CLAIM};
use jockey_core::index::{NamespaceIndex, ServiceFacts, ServiceLookup, Services};
use jockey_core::names::LABEL_PROJECT;
use jockey_core::policy::{IngressIndex, IngressRecord, Policy};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Service};
use k8s_openapi::api::networking::v1::Ingress;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard};
use std::time::Duration;
use tokio::sync::Notify;

pub struct App {
    pub cfg: Config,
    pub policy: Policy,
    pub index: RwLock<IngressIndex>,
    /// The namespaces labelled for a project.
    pub namespaces: RwLock<NamespaceIndex>,
    /// The labelled Services, by (namespace, name).
    pub services: RwLock<HashMap<(String, String), ServiceFacts>>,
    /// The project and host claims (Leases in `claims_namespace`).
    pub claims: RwLock<ClaimIndex>,
    /// Where claims are recorded: the webhook's own namespace.
    pub claims_namespace: String,
    /// Where claims are secured during admission; `None` only in unit tests without a cluster.
    pub leases: Option<Api<Lease>>,
    /// Reads the Services a review names that the cache does not hold; `None` only in unit
    /// tests without a cluster (such a review is then denied: the decision fails closed).
    pub client: Option<Client>,
    /// Woken when a labelled Ingress is deleted, so claims are released soon after `delete`.
    pub ingress_gone: Notify,
    /// The release grace (seconds): a claim the cache shows held and renewed well within it is
    /// not written again on admission (`jockey_core::claims::trusted_without_write`).
    pub claim_grace_seconds: i64,
    /// What `/mutate` and `/validate` require of their caller (`--client-ca-file`); `None`:
    /// anyone who reaches the port (then only the claims' evidence guards against forgeries).
    pub callers: Option<crate::client_auth::Required>,
    ingresses_synced: AtomicBool,
    namespaces_synced: AtomicBool,
    services_synced: AtomicBool,
    claims_synced: AtomicBool,
    synced: Notify,
    announced: AtomicBool,
    pub metrics: Metrics,
}

impl App {
    pub fn new(
        cfg: Config,
        policy: Policy,
        claims_namespace: String,
        leases: Option<Api<Lease>>,
    ) -> Self {
        Self {
            cfg,
            policy,
            index: RwLock::new(IngressIndex::new()),
            namespaces: RwLock::new(NamespaceIndex::new()),
            services: RwLock::new(HashMap::new()),
            claims: RwLock::new(ClaimIndex::new()),
            claims_namespace,
            leases,
            client: None,
            ingress_gone: Notify::new(),
            claim_grace_seconds: 0,
            callers: None,
            ingresses_synced: AtomicBool::new(false),
            namespaces_synced: AtomicBool::new(false),
            services_synced: AtomicBool::new(false),
            claims_synced: AtomicBool::new(false),
            synced: Notify::new(),
            announced: AtomicBool::new(false),
            metrics: Metrics::new(),
        }
    }

    /// With the client that reads Services the caches do not hold.
    pub fn with_client(mut self, client: Client) -> Self {
        self.client = Some(client);
        self
    }

    /// With the release grace the claims are released after (see `claim_grace_seconds`).
    pub fn with_claim_grace(mut self, grace: Duration) -> Self {
        self.claim_grace_seconds = i64::try_from(grace.as_secs()).unwrap_or(i64::MAX);
        self
    }

    /// Requiring `required` of the callers of `/mutate` and `/validate`.
    pub fn with_callers(mut self, required: Option<crate::client_auth::Required>) -> Self {
        self.callers = required;
        self
    }

    /// Ready once every cache completed its first list.
    pub fn is_ready(&self) -> bool {
        self.ingresses_synced.load(Ordering::Acquire)
            && self.namespaces_synced.load(Ordering::Acquire)
            && self.services_synced.load(Ordering::Acquire)
            && self.claims_synced.load(Ordering::Acquire)
    }

    pub fn index_read(&self) -> RwLockReadGuard<'_, IngressIndex> {
        self.index.read().unwrap_or_else(|p| p.into_inner())
    }

    pub fn claims_read(&self) -> RwLockReadGuard<'_, ClaimIndex> {
        self.claims.read().unwrap_or_else(|p| p.into_inner())
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
        self.services_synced.store(true, Ordering::Release);
        self.claims_synced.store(true, Ordering::Release);
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

    pub fn namespaces_read(&self) -> RwLockReadGuard<'_, NamespaceIndex> {
        self.namespaces.read().unwrap_or_else(|p| p.into_inner())
    }

    pub fn services_read(&self) -> RwLockReadGuard<'_, HashMap<(String, String), ServiceFacts>> {
        self.services.read().unwrap_or_else(|p| p.into_inner())
    }
}

/// The Services a decision sees: what this request read from the API server (a Service that is
/// not labelled, or one the watch has not delivered yet), then the labelled ones of the cache;
/// anything else is [`ServiceLookup::Unknown`], which the server reads and decides again with.
pub struct ServiceView<'a> {
    pub cache: &'a HashMap<(String, String), ServiceFacts>,
    pub read: &'a [((String, String), ServiceLookup)],
}

impl Services for ServiceView<'_> {
    fn lookup(&self, namespace: &str, name: &str) -> ServiceLookup {
        if let Some((_, l)) = self
            .read
            .iter()
            .find(|((ns, n), _)| ns == namespace && n == name)
        {
            return l.clone();
        }
        match self.cache.get(&(namespace.to_string(), name.to_string())) {
            Some(f) => ServiceLookup::Found(f.clone()),
            None => ServiceLookup::Unknown,
        }
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
                app.ingress_gone.notify_one();
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
    let mut staging: Option<NamespaceIndex> = None;
    let label = |n: &Namespace| {
        n.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(LABEL_PROJECT))
            .cloned()
    };
    let write = |app: &App, f: &mut dyn FnMut(&mut NamespaceIndex)| {
        f(&mut app.namespaces.write().unwrap_or_else(|p| p.into_inner()));
    };
    while let Some(event) = stream.next().await {
        match event {
            Ok(Event::Init) => staging = Some(NamespaceIndex::new()),
            Ok(Event::InitApply(n)) => {
                if let (Some(s), Some(name)) = (staging.as_mut(), n.metadata.name.as_deref()) {
                    s.set(name, label(&n).as_deref());
                }
            }
            Ok(Event::InitDone) => {
                if let Some(s) = staging.take() {
                    let mut fresh = Some(s);
                    write(&app, &mut |idx| {
                        if let Some(s) = fresh.take() {
                            *idx = s;
                        }
                    });
                }
                app.namespaces_synced.store(true, Ordering::Release);
                app.announce_if_ready();
            }
            Ok(Event::Apply(n)) => {
                if let Some(name) = n.metadata.name.as_deref() {
                    let project = label(&n);
                    write(&app, &mut |idx| idx.set(name, project.as_deref()));
                }
            }
            Ok(Event::Delete(n)) => {
                if let Some(name) = n.metadata.name.as_deref() {
                    write(&app, &mut |idx| idx.set(name, None));
                }
            }
            Err(e) => tracing::warn!(error = %e, "namespace watch failed; retrying with backoff"),
        }
    }
}

/// Keeps `app.services` in step with the labelled Services of the whole cluster: what an
/// Ingress's backends are is then answered from memory, and only a Service that is not labelled
/// (or not delivered yet) is read from the API server during a review.
pub async fn watch_services(client: Client, app: Arc<App>) {
    let api: Api<Service> = Api::all(client);
    let config = watcher::Config::default().labels(LABEL_PROJECT);
    let mut stream = watcher::watcher(api, config).default_backoff().boxed();
    let mut staging: Option<HashMap<(String, String), ServiceFacts>> = None;
    let key = |f: &ServiceFacts| (f.namespace.clone(), f.name.clone());
    while let Some(event) = stream.next().await {
        match event {
            Ok(Event::Init) => staging = Some(HashMap::new()),
            Ok(Event::InitApply(s)) => {
                if let Some(st) = staging.as_mut() {
                    let f = ServiceFacts::from_service(&s);
                    st.insert(key(&f), f);
                }
            }
            Ok(Event::InitDone) => {
                if let Some(st) = staging.take() {
                    *app.services.write().unwrap_or_else(|p| p.into_inner()) = st;
                }
                app.services_synced.store(true, Ordering::Release);
                app.announce_if_ready();
            }
            Ok(Event::Apply(s)) => {
                let f = ServiceFacts::from_service(&s);
                app.services
                    .write()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(key(&f), f);
            }
            Ok(Event::Delete(s)) => {
                let f = ServiceFacts::from_service(&s);
                app.services
                    .write()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&key(&f));
            }
            Err(e) => tracing::warn!(error = %e, "service watch failed; retrying with backoff"),
        }
    }
}

/// Keeps `app.claims` in step with the claim Leases of the claims namespace.
pub async fn watch_claims(client: Client, app: Arc<App>) {
    let api: Api<Lease> = Api::namespaced(client, &app.claims_namespace);
    let config = watcher::Config::default().labels(LABEL_CLAIM);
    let mut stream = watcher::watcher(api, config).default_backoff().boxed();
    let mut staging: Option<ClaimIndex> = None;
    let set = |app: &App, f: &mut dyn FnMut(&mut ClaimIndex)| {
        let mut guard = app.claims.write().unwrap_or_else(|p| p.into_inner());
        f(&mut guard);
        app.metrics.claims.set(guard.len() as i64);
    };
    while let Some(event) = stream.next().await {
        match event {
            Ok(Event::Init) => staging = Some(ClaimIndex::new()),
            Ok(Event::InitApply(l)) => {
                if let Some(s) = staging.as_mut() {
                    s.upsert(&l);
                }
            }
            Ok(Event::InitDone) => {
                if let Some(s) = staging.take() {
                    tracing::info!(claims = s.len(), "claim cache synced");
                    let mut fresh = Some(s);
                    set(&app, &mut |c| {
                        if let Some(s) = fresh.take() {
                            *c = s;
                        }
                    });
                }
                app.claims_synced.store(true, Ordering::Release);
                app.announce_if_ready();
            }
            Ok(Event::Apply(l)) => set(&app, &mut |c| {
                c.upsert(&l);
            }),
            Ok(Event::Delete(l)) => {
                let name = l.metadata.name.clone().unwrap_or_default();
                set(&app, &mut |c| c.remove(&name));
            }
            Err(e) => tracing::warn!(error = %e, "claim watch failed; retrying with backoff"),
        }
    }
}
