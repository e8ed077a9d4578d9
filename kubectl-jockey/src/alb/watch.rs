//! Waiting for the shared ALB to serve a project that `deploy` just wrote: the Ingress's address
//! and the AWS Load Balancer Controller's word on that write ([`AddressWatch`]), judged by
//! [`health::judge`] so that a failure which is no longer current does not fail the deploy.

use crate::alb::address::{self, ClassParams, Served, Verdict, Watched};
use crate::alb::health::{self, Evidence, Health, Scope};
use crate::alb::{elb, report};
use crate::output::Progress;
use anyhow::{Context, Result, bail};
use futures::StreamExt;
use jockey_core::ProjectId;
use k8s_openapi::api::core::v1::{Event, Namespace, Service};
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, ListParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

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
}
