//! Waiting for a Deployment's rollout, as `kubectl rollout status` does, but failing fast with
//! the pod's reason when the new pods cannot pull their image, crash, or cannot be created,
//! instead of sitting out the timeout; then for the shared ALB to serve the project
//! ([`AddressWatch`]), failing with the AWS Load Balancer Controller's own message.

use crate::alb::address::{self, ClassParams, Served, Verdict, Watched};
use crate::alb::health::{self, Evidence, Health, Scope};
use crate::alb::{elb, report};
use crate::output::Progress;
use crate::watch::Watches;
use anyhow::{Context, Result, bail};
use futures::StreamExt;
use jockey_core::ProjectId;
use jockey_core::names::LABEL_APP;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Event, Namespace, Pod, Service};
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, ListParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// Waiting reasons of a container that will not fix themselves.
pub const FATAL_WAITING_REASONS: &[&str] = &[
    "ImagePullBackOff",
    "ErrImagePull",
    "CrashLoopBackOff",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
];

const REVISION_ANNOTATION: &str = "deployment.kubernetes.io/revision";
const POD_TEMPLATE_HASH: &str = "pod-template-hash";
/// The API server's default `spec.progressDeadlineSeconds`.
const DEFAULT_PROGRESS_DEADLINE_SECONDS: i32 = 600;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rollout {
    Progressing(String),
    Done,
    Failed(String),
}

/// Judges a rollout from the Deployment, the name of its newest ReplicaSet and that ReplicaSet's
/// pods. Pure.
///
/// Only the generation being rolled out is judged: until the deployment controller has observed
/// it, the conditions, the revision and so the "newest" ReplicaSet are still the previous
/// rollout's (deploying the fix for a crash loop must not fail on the old crash). A
/// `ProgressDeadlineExceeded` is this rollout's only when it names the newest ReplicaSet and
/// the rollout has been waited on for at least `progressDeadlineSeconds` (`waited`): sooner, it
/// is the controller's stale verdict on an earlier rollout, which it keeps (even re-issued under
/// the new ReplicaSet's name when a rollout returns to an existing one) until progress shows.
pub fn judge(
    dep: &Deployment,
    new_rs: Option<&str>,
    new_pods: &[Pod],
    waited: Duration,
) -> Rollout {
    let deadline = Duration::from_secs(
        dep.spec
            .progress_deadline_seconds
            .unwrap_or(DEFAULT_PROGRESS_DEADLINE_SECONDS)
            .max(0) as u64,
    );
    let generation = dep.metadata.generation.unwrap_or(0);
    let status = dep.status.clone().unwrap_or_default();
    if status.observed_generation.unwrap_or(0) < generation {
        return Rollout::Progressing("waiting for the deployment controller".into());
    }
    for c in status.conditions.iter().flatten() {
        let msg = c.message.clone().unwrap_or_default();
        if c.type_.as_deref() == Some("Progressing")
            && c.status.as_deref() == Some("False")
            && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
            && new_rs.is_none_or(|rs| msg.contains(&format!("\"{rs}\"")))
            && waited >= deadline
        {
            return Rollout::Failed(format!("ProgressDeadlineExceeded: {msg}"));
        }
        if c.type_.as_deref() == Some("ReplicaFailure") && c.status.as_deref() == Some("True") {
            return Rollout::Failed(format!(
                "ReplicaFailure ({}): {msg}",
                c.reason.clone().unwrap_or_default()
            ));
        }
    }
    for pod in new_pods {
        if let Some(reason) = pod_failure(pod) {
            return Rollout::Failed(reason);
        }
    }
    let want = dep.spec.replicas.unwrap_or(1);
    let updated = status.updated_replicas.unwrap_or(0);
    let total = status.replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    if updated < want {
        return Rollout::Progressing(format!("{updated} of {want} new replicas updated"));
    }
    if total > updated {
        return Rollout::Progressing(format!(
            "{} old replicas pending termination",
            total - updated
        ));
    }
    if available < updated {
        return Rollout::Progressing(format!(
            "{available} of {updated} updated replicas available"
        ));
    }
    Rollout::Done
}

/// Why a pod of the new ReplicaSet will not become ready, naming the pod and container.
pub fn pod_failure(pod: &Pod) -> Option<String> {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let status = pod.status.as_ref()?;
    let all = status
        .init_container_statuses
        .iter()
        .flatten()
        .chain(status.container_statuses.iter().flatten());
    for cs in all {
        let Some(w) = cs.state.as_ref().and_then(|s| s.waiting.as_ref()) else {
            continue;
        };
        let reason = w.reason.as_deref().unwrap_or("");
        if !FATAL_WAITING_REASONS.contains(&reason) {
            continue;
        }
        let mut s = format!("pod {name}: container {}: {reason}", cs.name);
        if let Some(m) = w.message.as_deref().filter(|m| !m.is_empty()) {
            s.push_str(&format!(": {m}"));
        }
        if let Some(t) = cs.last_state.as_ref().and_then(|l| l.terminated.as_ref()) {
            s.push_str(&format!(
                " (last exit code {}{})",
                t.exit_code,
                t.reason
                    .as_deref()
                    .map(|r| format!(", {r}"))
                    .unwrap_or_default()
            ));
            if let Some(m) = t.message.as_deref().filter(|m| !m.trim().is_empty()) {
                s.push_str(&format!(":\n{}", m.trim_end()));
            }
        }
        if reason.contains("ImagePull") || reason == "InvalidImageName" {
            s.push_str(&format!("; image {}", cs.image));
        }
        return Some(s);
    }
    if status.phase.as_deref() == Some("Failed") {
        return Some(format!(
            "pod {name} failed: {}",
            status
                .message
                .clone()
                .or(status.reason.clone())
                .unwrap_or_default()
        ));
    }
    None
}

/// The fix to suggest for a failed rollout.
fn fix_for(reason: &str, project: &ProjectId, ns: &str) -> String {
    if reason.contains("ImagePull") || reason.contains("InvalidImageName") {
        format!(
            "check that the image exists and the nodes may pull it (IMAGE_REGISTRY, node IAM \
             role); `kubectl jockey status {project} -n {ns}` shows the events"
        )
    } else if reason.contains("CrashLoopBackOff") || reason.contains("failed") {
        format!(
            "the server exits on start: read `kubectl jockey logs {project} -n {ns}`, fix it and \
             deploy again (or `kubectl jockey rollback {project} -n {ns}`)"
        )
    } else {
        format!("`kubectl jockey status {project} -n {ns}` shows the events")
    }
}

/// The generation being rolled out: the Deployment's newest ReplicaSet (by revision, owned by
/// this Deployment) and that ReplicaSet's pods, among the project's ReplicaSets and pods. Until
/// the deployment controller has observed the Deployment's generation, the revision is still
/// the previous rollout's: no ReplicaSet or pod is judged yet. Pure.
pub fn new_generation(
    dep: &Deployment,
    replica_sets: &[ReplicaSet],
    pods: &[Pod],
) -> (Option<String>, Vec<Pod>) {
    let observed = dep
        .status
        .as_ref()
        .and_then(|s| s.observed_generation)
        .unwrap_or(0)
        >= dep.metadata.generation.unwrap_or(0);
    let revision = dep
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(REVISION_ANNOTATION));
    let (true, Some(revision)) = (observed, revision) else {
        return (None, Vec::new());
    };
    let uid = dep.metadata.uid.as_deref().unwrap_or_default();
    let Some(rs) = replica_sets.iter().find(|rs| {
        rs.metadata
            .owner_references
            .iter()
            .flatten()
            .any(|o| o.uid == uid)
            && rs
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(REVISION_ANNOTATION))
                == Some(revision)
    }) else {
        return (None, Vec::new());
    };
    let hash_label = |labels: Option<&BTreeMap<String, String>>| {
        labels.and_then(|l| l.get(POD_TEMPLATE_HASH)).cloned()
    };
    let Some(hash) = hash_label(rs.metadata.labels.as_ref()) else {
        return (rs.metadata.name.clone(), Vec::new());
    };
    let new_pods = pods
        .iter()
        .filter(|p| hash_label(p.metadata.labels.as_ref()).as_ref() == Some(&hash))
        .cloned()
        .collect();
    (rs.metadata.name.clone(), new_pods)
}

/// When a `ProgressDeadlineExceeded` the controller already reported becomes this rollout's
/// verdict without any object changing (see [`judge`]): the rollout's start plus the
/// Deployment's progress deadline.
fn deadline_recheck(dep: &Deployment, started: Instant) -> Instant {
    let secs = dep
        .spec
        .progress_deadline_seconds
        .unwrap_or(DEFAULT_PROGRESS_DEADLINE_SECONDS)
        .max(0) as u64;
    started + Duration::from_secs(secs)
}

/// Waits until the project's Deployment is rolled out, or fails with the reason and the fix.
/// The Deployment, the project's ReplicaSets and pods are watched (resuming after an API server
/// restart); each change is judged by [`new_generation`] and [`judge`].
pub async fn wait(
    client: &Client,
    ns: &str,
    project: &ProjectId,
    deadline: Instant,
    timeout: Duration,
) -> Result<()> {
    let name = project.deployment_name();
    let selector = format!("{LABEL_APP}={project}");
    let mut progress = Progress::new(&format!("rollout {ns}/{name}"));
    let started = Instant::now();
    let mut watches = Watches::default();
    let deployments = watches.add(
        Api::<Deployment>::namespaced(client.clone(), ns),
        watcher::Config::default().fields(&format!("metadata.name={name}")),
    );
    let replica_sets = watches.add(
        Api::<ReplicaSet>::namespaced(client.clone(), ns),
        watcher::Config::default().labels(&selector),
    );
    let pods = watches.add(
        Api::<Pod>::namespaced(client.clone(), ns),
        watcher::Config::default().labels(&selector),
    );
    let mut recheck = None;
    loop {
        if watches.listed() {
            let Some(dep) = deployments.state().into_iter().next() else {
                drop(progress);
                bail!(
                    "Deployment {ns}/{name} is gone: something deleted it while its rollout was \
                     awaited; deploy again"
                );
            };
            let rss: Vec<ReplicaSet> = replica_sets.state().iter().map(|r| (**r).clone()).collect();
            let all_pods: Vec<Pod> = pods.state().iter().map(|p| (**p).clone()).collect();
            let (rs, new_pods) = new_generation(&dep, &rss, &all_pods);
            match judge(&dep, rs.as_deref(), &new_pods, started.elapsed()) {
                Rollout::Done => {
                    progress.finish("rolled out");
                    return Ok(());
                }
                Rollout::Failed(reason) => {
                    drop(progress);
                    bail!(
                        "Deployment {ns}/{name} cannot roll out: {reason}\n{}",
                        fix_for(&reason, project, ns)
                    );
                }
                Rollout::Progressing(phase) => progress.phase(&phase),
            }
            recheck = Some(deadline_recheck(&dep, started)).filter(|r| *r > Instant::now());
        }
        let until = recheck.map_or(deadline, |r| r.min(deadline));
        if !watches.changed(until).await && Instant::now() >= deadline {
            drop(progress);
            bail!(
                "Deployment {ns}/{name} did not become available within --timeout {}{}; \
                 `kubectl jockey status {project} -n {ns}` shows why; deploy again with a longer \
                 --timeout if it is just slow",
                crate::duration::show(timeout),
                watches.error_note()
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Waiting for the shared ALB: the Ingress's address and the AWS Load Balancer Controller's word.

/// The controller's events about one Ingress as the API server reports them: those that existed
/// when the watch started (`before`), then every event created or updated since, in order.
#[derive(Default)]
struct EventLog {
    before: Vec<Event>,
    since: Vec<Event>,
    /// resourceVersion last seen per event uid: a re-list after a lost watch repeats events
    /// that are not new.
    seen: BTreeMap<String, String>,
    listed: bool,
    error: Option<String>,
}

impl EventLog {
    fn record(&mut self, e: Event, initial: bool) {
        let uid = e.metadata.uid.clone().unwrap_or_default();
        let rv = e.metadata.resource_version.clone().unwrap_or_default();
        if self.seen.get(&uid) == Some(&rv) {
            return;
        }
        self.seen.insert(uid, rv);
        if initial && !self.listed {
            self.before.push(e);
        } else {
            self.since.push(e);
        }
    }
}

/// Started before a deploy writes the project's Ingress and Service, so that the controller's
/// verdict on that write is told apart from earlier ones without comparing clocks; then
/// [`AddressWatch::wait`] waits for the ALB to serve the Ingress, or fails with the
/// controller's message.
pub struct AddressWatch {
    client: Client,
    ns: String,
    ingress: String,
    service: String,
    before_ingress: Option<Ingress>,
    before_service: Option<Service>,
    log: Arc<Mutex<EventLog>>,
    changed: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for AddressWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A cluster-scoped read that says whether a load balancer controller serves the Ingress failed
/// (a tenant may read nothing cluster-scoped): the check is skipped, and said to be, and the
/// deploy waits for the controller's word on the Ingress (its events, which the namespace holds)
/// for [`CONTROLLER_SILENCE`], then for the address as if one served it.
fn unchecked(what: &str, err: &kube::Error) -> Option<Served> {
    eprintln!(
        "whether a load balancer controller serves the Ingress was not checked ({what} not \
         readable: {}); waiting for the controller's word on it",
        crate::cluster::api_message(err)
    );
    None
}

/// The AWS Load Balancer Controller's word that it does not serve an Ingress (its class's
/// IngressClassParams select other namespaces, or the class is not its own): `FailedLoadGroupID`
/// with an invalid ingress class. Pure.
fn not_served(e: &Event) -> Option<String> {
    let message = e.message.as_deref()?;
    (e.reason.as_deref() == Some("FailedLoadGroupID") && message.contains("invalid ingress class"))
        .then(|| message.to_string())
}

/// How long a deploy that could not check whether a controller serves its Ingress waits for the
/// controller's first event on it before concluding that none does (for now).
const CONTROLLER_SILENCE: Duration = Duration::from_secs(30);

/// What a Service or Ingress shows the controller: it reconciles on changes to these only.
fn reconciled_part<K: serde::Serialize>(obj: Option<&K>) -> Option<serde_json::Value> {
    let v = serde_json::to_value(obj?).ok()?;
    Some(serde_json::json!([v["metadata"]["annotations"], v["spec"]]))
}

impl AddressWatch {
    pub async fn start(client: &Client, ns: &str, project: &ProjectId) -> Result<Self> {
        let ingress = project.ingress_name();
        let service = project.service_name();
        let before_ingress = Api::<Ingress>::namespaced(client.clone(), ns)
            .get_opt(&ingress)
            .await
            .with_context(|| format!("reading Ingress {ns}/{ingress}"))?;
        let before_service = Api::<Service>::namespaced(client.clone(), ns)
            .get_opt(&service)
            .await
            .with_context(|| format!("reading Service {ns}/{service}"))?;
        let log = Arc::new(Mutex::new(EventLog::default()));
        let changed = Arc::new(Notify::new());
        let events: Api<Event> = Api::namespaced(client.clone(), ns);
        let cfg = watcher::Config::default().fields(&format!(
            "involvedObject.kind=Ingress,involvedObject.name={ingress}"
        ));
        let task = {
            let (log, changed) = (log.clone(), changed.clone());
            tokio::spawn(async move {
                let mut stream = watcher(events, cfg).default_backoff().boxed();
                while let Some(item) = stream.next().await {
                    {
                        let Ok(mut log) = log.lock() else { return };
                        match item {
                            Ok(watcher::Event::InitApply(e)) => log.record(e, true),
                            Ok(watcher::Event::InitDone) => log.listed = true,
                            Ok(watcher::Event::Apply(e)) => log.record(e, false),
                            Ok(_) => {}
                            Err(err) => log.error = Some(err.to_string()),
                        }
                    }
                    changed.notify_one();
                }
            })
        };
        let watch = Self {
            client: client.clone(),
            ns: ns.to_string(),
            ingress,
            service,
            before_ingress,
            before_service,
            log,
            changed,
            task,
        };
        // The first listing is the "before"; without it every old event would look new. A
        // namespace whose events cannot be listed is waited on by the address alone.
        loop {
            let notified = watch.changed.notified();
            {
                let log = watch.lock();
                if log.listed || log.error.is_some() {
                    break;
                }
            }
            notified.await;
        }
        Ok(watch)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, EventLog> {
        // A panic in the watch task cannot leave the log half-written (each step is one push),
        // so a poisoned lock still holds usable data.
        self.log.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether an AWS Load Balancer Controller serves the Ingress; `None` when the reads that
    /// tell failed (a tenant may not read cluster-scoped classes).
    async fn served(&self, ing: &Ingress) -> Option<Served> {
        let classes = match Api::<IngressClass>::all(self.client.clone())
            .list(&ListParams::default())
            .await
        {
            Ok(l) => l.items,
            Err(err) => return unchecked("IngressClasses are", &err),
        };
        let params = match address::class_of(ing, &classes) {
            Ok(Some(class)) => match address::params_name(class) {
                Some(name) => {
                    let gvk = GroupVersionKind::gvk(
                        address::PARAMS_GROUP,
                        address::PARAMS_VERSION,
                        address::PARAMS_KIND,
                    );
                    let ar = ApiResource::from_gvk_with_plural(&gvk, "ingressclassparams");
                    match Api::<DynamicObject>::all_with(self.client.clone(), &ar)
                        .get_opt(name)
                        .await
                    {
                        Ok(Some(obj)) => serde_json::to_value(&obj)
                            .ok()
                            .and_then(|v| serde_json::from_value::<ClassParams>(v).ok()),
                        Ok(None) => None,
                        Err(err) => {
                            return unchecked(&format!("IngressClassParams {name} is"), &err);
                        }
                    }
                }
                None => None,
            },
            _ => None,
        };
        let labels = match Api::<Namespace>::all(self.client.clone())
            .get_opt(&self.ns)
            .await
        {
            Ok(Some(n)) => n.metadata.labels.unwrap_or_default(),
            Ok(None) => BTreeMap::new(),
            Err(err) => return unchecked(&format!("namespace {} is", self.ns), &err),
        };
        Some(address::served(ing, &classes, params.as_ref(), &labels))
    }

    /// The group's state as the wait begins ([`health::judge`]): from the group's members and
    /// their events in every namespace where they can be listed (else the project's), and the
    /// ELBv2 API where AWS credentials are configured. Nothing here fails the deploy: what
    /// cannot be read is left out, and the judgement says what it could not tell.
    ///
    /// A failure that names what this user cannot read (another tenant's namespace) stays
    /// current for the judgement; then the ALB's own rules decide: a rule forwarding the host to
    /// the project's target group ([`health::served_by_alb`]) serves it, whatever that event says.
    async fn group_state(&self, ing: &Ingress) -> Health {
        let client = &self.client;
        let ns = self.ns.as_str();
        let (ingresses, scope) = match Api::<Ingress>::all(client.clone())
            .list(&ListParams::default())
            .await
        {
            Ok(l) => (l.items, Scope::All),
            Err(_) => match Api::<Ingress>::namespaced(client.clone(), ns)
                .list(&ListParams::default())
                .await
            {
                Ok(l) => (l.items, Scope::Namespace(ns.to_string())),
                // Only the Ingress itself: no namespace is known whole, so nothing is "gone".
                Err(_) => (vec![ing.clone()], Scope::Namespace(String::new())),
            },
        };
        let by_kind = ListParams::default().fields("involvedObject.kind=Ingress");
        let events = match Api::<Event>::all(client.clone()).list(&by_kind).await {
            Ok(l) => l.items,
            Err(_) => match Api::<Event>::namespaced(client.clone(), ns)
                .list(&by_kind)
                .await
            {
                Ok(l) => l.items,
                Err(_) => {
                    let log = self.lock();
                    log.before.iter().chain(&log.since).cloned().collect()
                }
            },
        };
        let group = health::group_key(ing);
        let snapshot = read_elb(ing, &group).await;
        let evidence = Evidence {
            ingresses: &ingresses,
            scope: &scope,
            events: &events,
            elb: snapshot.as_ref(),
        };
        // Said when the last word on the project's own Ingress is a failure that no longer
        // holds: read alone, it would have failed this deploy.
        let own = (ns, report::name(ing));
        if let Some(f) = health::failures(&evidence)
            .into_iter()
            .find(|f| (f.namespace.as_str(), f.ingress.as_str()) == own)
            && let Some(stale) = &f.stale
            // A failure a recorded success cleared reads as history on its own.
            && !stale.contains(report::SUCCESS_REASON)
        {
            eprintln!(
                "the controller's last failure on Ingress {ns}/{} ({}) is not current: {stale}",
                f.ingress, f.reason
            );
        }
        let verdict = health::judge(&evidence, &group);
        match (&verdict, &scope, health::served_by_alb(&evidence, ing)) {
            (Health::Failing(f), Scope::Namespace(_), Some(served)) => Health::Unknown {
                why: format!(
                    "its last recorded failure ({}: {}) could not be judged from namespace {ns} \
                     alone; the ALB serves the project: {served}",
                    f.reason, f.message
                ),
            },
            _ => verdict,
        }
    }

    /// Waits until the ALB serves the Ingress (its address, and a successful reconcile when the
    /// deploy changed what the controller reads). `Ok(None)`: no controller serves it (said on
    /// stderr); `Err`: the controller failed the group, or `deadline` passed.
    pub async fn wait(self, deadline: Instant, timeout: Duration) -> Result<Option<String>> {
        let (ns, name) = (self.ns.clone(), self.ingress.clone());
        let ingresses: Api<Ingress> = Api::namespaced(self.client.clone(), &ns);
        let Some(current) = ingresses
            .get_opt(&name)
            .await
            .with_context(|| format!("reading Ingress {ns}/{name}"))?
        else {
            bail!(
                "Ingress {ns}/{name} is gone: something deleted it during the deploy; deploy again"
            );
        };
        let served = self.served(&current).await;
        if let Some(Served::No(why)) = &served {
            eprintln!("Ingress {ns}/{name} gets no ALB address: {why}");
            return Ok(None);
        }
        // Unchecked: a controller that serves the Ingress says so on it within moments.
        let silence_ends = served
            .is_none()
            .then(|| Instant::now() + CONTROLLER_SILENCE);
        let group = report::group_of(&current).unwrap_or_default().to_string();
        let service = Api::<Service>::namespaced(self.client.clone(), &ns)
            .get_opt(&self.service)
            .await
            .with_context(|| format!("reading Service {ns}/{}", self.service))?;
        let changed = reconciled_part(self.before_ingress.as_ref())
            != reconciled_part(Some(&current))
            || reconciled_part(self.before_service.as_ref()) != reconciled_part(service.as_ref());

        let before = self.group_state(&current).await;
        let mut ingress = Some(current);
        let cfg = watcher::Config::default().fields(&format!("metadata.name={name}"));
        let mut updates = watcher(ingresses, cfg).default_backoff().boxed();
        let mut progress = Progress::new(&format!("ALB for {ns}/{name}"));
        loop {
            let notified = self.changed.notified();
            let verdict = {
                let log = self.lock();
                address::judge(&Watched {
                    ingress: ingress.as_ref(),
                    before: &before,
                    since: &log.since,
                    changed,
                })
            };
            match verdict {
                Verdict::Serving(a) => {
                    progress.finish(&format!("served at {a}"));
                    return Ok(Some(a));
                }
                Verdict::Failing(f) => {
                    drop(progress);
                    bail!(
                        "the AWS Load Balancer Controller cannot serve Ingress {ns}/{name}: it \
                         fails ALB group {group} (its event on Ingress {}): {}: {}\n{}",
                        f.member,
                        f.reason,
                        f.message,
                        f.fix
                    );
                }
                Verdict::Waiting(phase) => progress.phase(&phase),
            }
            if silence_ends.is_some() {
                // Unchecked, the controller's own word decides: it tells an Ingress of a class or
                // namespace it does not serve so, on the Ingress.
                let log = self.lock();
                if let Some(why) = log.before.iter().chain(&log.since).find_map(not_served) {
                    drop(progress);
                    eprintln!("Ingress {ns}/{name} gets no ALB address: the controller says {why}");
                    return Ok(None);
                }
            }
            if let Some(end) = silence_ends
                && Instant::now() >= end
            {
                let log = self.lock();
                if log.before.is_empty() && log.since.is_empty() && log.error.is_none() {
                    drop(progress);
                    eprintln!(
                        "Ingress {ns}/{name} gets no ALB address for now: no load balancer \
                         controller has said a word about it within {}s (and whether one serves \
                         namespace {ns} could not be checked); `kubectl jockey status` shows the \
                         address once it comes",
                        CONTROLLER_SILENCE.as_secs()
                    );
                    return Ok(None);
                }
            }
            let wake = match silence_ends {
                Some(end) if Instant::now() < end => deadline.min(end),
                _ => deadline,
            };
            tokio::select! {
                _ = notified => {}
                update = updates.next() => match update {
                    Some(Ok(watcher::Event::Apply(i) | watcher::Event::InitApply(i))) => ingress = Some(i),
                    Some(Ok(watcher::Event::Delete(_))) => ingress = None,
                    _ => {}
                },
                _ = tokio::time::sleep_until(wake.into()), if wake < deadline => {}
                _ = tokio::time::sleep_until(deadline.into()) => {
                    drop(progress);
                    let log = self.lock();
                    let mut why = String::new();
                    match &before {
                        Health::Failing(f) => why.push_str(&format!(
                            "; its last word on the group was {}: {}", f.reason, f.message
                        )),
                        Health::Unknown { why: unknown } => why.push_str(&format!("; {unknown}")),
                        Health::Healthy { .. } => {}
                    }
                    if let Some(err) = &log.error {
                        why.push_str(&format!("; its events could not be watched: {err}"));
                    }
                    bail!(
                        "Ingress {ns}/{name} got no ALB address within --timeout {}: the AWS Load \
                         Balancer Controller has not reconciled group {group}{why}\n`kubectl jockey \
                         alb-status` shows the group and the controller; deploy again with a longer \
                         --timeout if it is just slow (the Deployment is rolled out)",
                        crate::duration::show(timeout)
                    );
                }
            }
        }
    }
}

/// How long a deploy spends on reading the ALB for evidence before doing without it.
const ELB_READ_TIMEOUT: Duration = Duration::from_secs(20);

/// The ELBv2 snapshot of the Ingress's load balancer, where AWS credentials are configured and
/// the read succeeds in time; otherwise none (the judgement then rests on the events).
async fn read_elb(ing: &Ingress, group: &str) -> Option<elb::ElbSnapshot> {
    let dns: std::collections::BTreeSet<String> = report::addresses(ing).into_iter().collect();
    let groups = std::collections::BTreeSet::from([group.to_string()]);
    let read = async {
        let client = elb::client(None).await.ok()?;
        elb::fetch(&client, &dns, &groups).await.ok()
    };
    tokio::time::timeout(ELB_READ_TIMEOUT, read)
        .await
        .ok()
        .flatten()
}

pub fn address_of(ing: &Ingress) -> Option<String> {
    ing.status
        .as_ref()?
        .load_balancer
        .as_ref()?
        .ingress
        .as_ref()?
        .iter()
        .find_map(|i| i.hostname.clone().or(i.ip.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_controllers_refusal_of_a_namespace_is_read_from_its_event() {
        let event = |reason: &str, message: &str| -> Event {
            serde_json::from_value(json!({
                "metadata": {"name": "e"}, "involvedObject": {"kind": "Ingress"},
                "reason": reason, "message": message
            }))
            .unwrap()
        };
        let refused = event(
            "FailedLoadGroupID",
            "failed load groupID due to invalid ingress class: namespaceSelector of \
             IngressClassParams alb mismatch",
        );
        assert!(not_served(&refused).unwrap().contains("namespaceSelector"));
        assert_eq!(
            not_served(&event("FailedBuildModel", "invalid ingress class")),
            None
        );
        assert_eq!(not_served(&event("SuccessfullyReconciled", "ok")), None);
    }

    fn dep(status: serde_json::Value) -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": "demo", "generation": 2},
            "spec": {"replicas": 1, "selector": {}, "template": {}},
            "status": status
        }))
        .unwrap()
    }

    fn pod(state: serde_json::Value, last: serde_json::Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "demo-abc"},
            "status": {"phase": "Running", "containerStatuses": [{
                "name": "server", "image": "r/hosting/demo:0123456789abcdef", "imageID": "",
                "ready": false, "restartCount": 3, "state": state, "lastState": last
            }]}
        }))
        .unwrap()
    }

    #[test]
    fn done_only_when_the_new_replicas_are_available_and_old_ones_gone() {
        let ok = json!({"observedGeneration": 2, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 1});
        assert_eq!(judge(&dep(ok), None, &[], LONG), Rollout::Done);
        let stale = json!({"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 1});
        assert!(matches!(
            judge(&dep(stale), None, &[], LONG),
            Rollout::Progressing(_)
        ));
        let old = json!({"observedGeneration": 2, "replicas": 2, "updatedReplicas": 1, "availableReplicas": 1});
        assert!(
            matches!(judge(&dep(old), None, &[], LONG), Rollout::Progressing(m) if m.contains("old"))
        );
        let unavailable = json!({"observedGeneration": 2, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 0});
        assert!(matches!(
            judge(&dep(unavailable), None, &[], LONG),
            Rollout::Progressing(_)
        ));
    }

    #[test]
    fn fails_fast_on_deadline_and_replica_failure() {
        let deadline = json!({"observedGeneration": 2, "conditions": [{"type": "Progressing",
            "status": "False", "reason": "ProgressDeadlineExceeded",
            "message": "ReplicaSet \"demo-abc\" has timed out progressing."}]});
        assert!(
            matches!(judge(&dep(deadline), Some("demo-abc"), &[], LONG), Rollout::Failed(m) if m.starts_with("ProgressDeadlineExceeded"))
        );
        let quota = json!({"observedGeneration": 2, "conditions": [{"type": "ReplicaFailure",
            "status": "True", "reason": "FailedCreate",
            "message": "pods \"demo-abc\" is forbidden: exceeded quota"}]});
        assert!(
            matches!(judge(&dep(quota), None, &[], LONG), Rollout::Failed(m) if m.contains("exceeded quota"))
        );
    }

    #[test]
    fn fails_fast_on_crashing_or_unpullable_pods_with_their_reason() {
        let status = json!({"observedGeneration": 2, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 0});
        let crash = pod(
            json!({"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s restarting failed container"}}),
            json!({"terminated": {"exitCode": 1, "reason": "Error", "message": "ModuleNotFoundError: fastapi"}}),
        );
        let Rollout::Failed(m) = judge(&dep(status.clone()), None, &[crash], LONG) else {
            panic!()
        };
        assert!(
            m.contains("pod demo-abc: container server: CrashLoopBackOff"),
            "{m}"
        );
        assert!(m.contains("last exit code 1, Error"), "{m}");
        assert!(m.contains("ModuleNotFoundError"), "{m}");

        let pull = pod(
            json!({"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling"}}),
            json!({}),
        );
        let Rollout::Failed(m) = judge(&dep(status.clone()), None, &[pull], LONG) else {
            panic!()
        };
        assert!(
            m.contains("ImagePullBackOff") && m.contains("image r/hosting/demo"),
            "{m}"
        );

        let creating = pod(
            json!({"waiting": {"reason": "ContainerCreating"}}),
            json!({}),
        );
        assert!(matches!(
            judge(&dep(status), None, &[creating], LONG),
            Rollout::Progressing(_)
        ));
    }

    /// Longer than any progress deadline here: a deadline verdict can be this rollout's.
    const LONG: Duration = Duration::from_secs(3600);

    #[test]
    fn a_deadline_verdict_sooner_than_the_deadline_is_stale() {
        let deadline = json!({"observedGeneration": 2, "conditions": [{"type": "Progressing",
            "status": "False", "reason": "ProgressDeadlineExceeded",
            "message": "ReplicaSet \"demo-new\" has timed out progressing."}]});
        assert!(matches!(
            judge(
                &dep(deadline),
                Some("demo-new"),
                &[],
                Duration::from_secs(5)
            ),
            Rollout::Progressing(_)
        ));
    }

    #[test]
    fn only_the_observed_generation_is_judged() {
        // The controller has not seen generation 2 yet: the old rollout's deadline and crash
        // are not this rollout's.
        let stale = json!({"observedGeneration": 1, "conditions": [{"type": "Progressing",
            "status": "False", "reason": "ProgressDeadlineExceeded",
            "message": "ReplicaSet \"demo-old\" has timed out progressing."}]});
        let crash = pod(
            json!({"waiting": {"reason": "CrashLoopBackOff"}}),
            json!({"terminated": {"exitCode": 1}}),
        );
        assert!(matches!(
            judge(&dep(stale.clone()), Some("demo-old"), &[crash], LONG),
            Rollout::Progressing(_)
        ));
        // Observed, but the deadline names an earlier ReplicaSet than the newest.
        let mut seen = stale;
        seen["observedGeneration"] = json!(2);
        seen["replicas"] = json!(1);
        seen["updatedReplicas"] = json!(1);
        seen["availableReplicas"] = json!(1);
        assert_eq!(
            judge(&dep(seen.clone()), Some("demo-new"), &[], LONG),
            Rollout::Done
        );
        assert!(matches!(
            judge(&dep(seen), Some("demo-old"), &[], LONG),
            Rollout::Failed(_)
        ));
    }

    fn owned_rs(name: &str, revision: &str, hash: &str, owner: &str) -> ReplicaSet {
        serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {"app": "demo", "pod-template-hash": hash},
                "annotations": {"deployment.kubernetes.io/revision": revision},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment",
                    "name": "demo", "uid": owner}]}
        }))
        .unwrap()
    }

    fn hashed_pod(name: &str, hash: &str) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {"app": "demo", "pod-template-hash": hash}}
        }))
        .unwrap()
    }

    fn rolling(generation: i64, observed: i64, revision: &str) -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": "demo", "uid": "dep-uid", "generation": generation,
                "annotations": {"deployment.kubernetes.io/revision": revision}},
            "spec": {"selector": {}, "template": {}},
            "status": {"observedGeneration": observed}
        }))
        .unwrap()
    }

    #[test]
    fn the_new_generation_is_the_newest_owned_replica_set_and_its_pods_only() {
        let rss = [
            owned_rs("demo-old", "1", "old", "dep-uid"),
            owned_rs("demo-new", "2", "new", "dep-uid"),
            // Same revision, another owner (a Deployment of the same name deleted and recreated).
            owned_rs("demo-stray", "2", "stray", "other-uid"),
        ];
        let pods = [
            hashed_pod("demo-old-a", "old"),
            hashed_pod("demo-new-a", "new"),
            hashed_pod("demo-new-b", "new"),
            hashed_pod("demo-stray-a", "stray"),
        ];
        let (rs, new) = new_generation(&rolling(2, 2, "2"), &rss, &pods);
        assert_eq!(rs.as_deref(), Some("demo-new"));
        let names: Vec<_> = new.iter().filter_map(|p| p.metadata.name.clone()).collect();
        assert_eq!(names, ["demo-new-a", "demo-new-b"]);
    }

    #[test]
    fn nothing_is_judged_before_the_controller_observed_the_generation() {
        let rss = [owned_rs("demo-old", "1", "old", "dep-uid")];
        let pods = [hashed_pod("demo-old-a", "old")];
        // Generation 2 not yet observed: revision 1 is the previous rollout's.
        assert_eq!(
            new_generation(&rolling(2, 1, "1"), &rss, &pods),
            (None, Vec::new())
        );
        // Observed, but its ReplicaSet is not created (or not listed) yet.
        assert_eq!(
            new_generation(&rolling(2, 2, "2"), &rss, &pods),
            (None, Vec::new())
        );
    }

    #[test]
    fn a_stale_deadline_is_rechecked_when_the_deadline_has_passed() {
        let started = Instant::now();
        let mut d = rolling(2, 2, "2");
        d.spec.progress_deadline_seconds = Some(30);
        assert_eq!(
            deadline_recheck(&d, started),
            started + Duration::from_secs(30)
        );
        d.spec.progress_deadline_seconds = None;
        assert_eq!(
            deadline_recheck(&d, started),
            started + Duration::from_secs(600)
        );
    }
}
