//! One current judgement of an ALB group's health, shared by `deploy`, `alb-status` and
//! `check`. Pure: Ingresses, the AWS Load Balancer Controller's Events and (where AWS is
//! reachable) the ELBv2 snapshot in; a verdict out.
//!
//! Why events alone mislead: the controller records every reconcile outcome on EVERY member of
//! the group (`controllers/ingress/group_controller.go`, `recordIngressGroupEvent`), and
//! client-go's recorder drops events per object and type past a burst of 25 (then one per five
//! minutes: `tools/record/events_cache.go`, `getSpamKey` keys on source, object and type). A
//! long-lived member of a busy group has spent its `Normal` budget, so the success that ends a
//! failure is often never written: the last event on it stays the failure. The rules below
//! decide whether that failure still describes the group:
//!
//! - it names an Ingress (the controller wraps errors as `ingress: NS/NAME: ...`, see
//!   `pkg/ingress/model_build_listener_rules.go`, `model_builder.go`, `group_loader.go`) that
//!   is gone or no longer in the group: not current;
//! - it names a host (`no certificate found for host: H`) no member serves any more (only when
//!   every namespace was read): not current;
//! - the same failure was recorded, at its time or later, on an Ingress that is gone: that
//!   Ingress was a member when it happened and left since, so the group changed: not current;
//! - a member was created, changed (spec or annotations, from `metadata.managedFields`) or
//!   started deleting after it: not current (the same second is not "after": a change and the
//!   reconcile it triggers usually share their second);
//! - a `SuccessfullyReconciled` on any member after it (strictly) clears it.
//!
//! Where the ELBv2 snapshot shows a listener rule forwarding a member's host to that member's
//! target group (the controller tags it `ingress.k8s.aws/resource: NS/INGRESS-SERVICE:PORT`),
//! the host is served, whatever old events say.

use super::elb::{Action, ElbSnapshot, LoadBalancer};
use super::model::{self, FAILURE_REASONS, SUCCESS_REASON};
use k8s_openapi::api::core::v1::Event;
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::jiff::Timestamp;
use serde::Serialize;

/// The tag the controller puts on each target group: the Ingress, Service and port it serves.
pub const TAG_RESOURCE: &str = "ingress.k8s.aws/resource";

/// Which namespaces' Ingresses were read: an Ingress outside them is not known to be gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    All,
    /// Only this namespace (a tenant may list nothing else).
    Namespace(String),
}

impl Scope {
    fn covers(&self, ns: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Namespace(n) => n == ns,
        }
    }
}

/// What the judgement sees.
#[derive(Debug, Clone, Copy)]
pub struct Evidence<'a> {
    /// Every Ingress read (any group); the judgement picks each group's members.
    pub ingresses: &'a [Ingress],
    pub scope: &'a Scope,
    /// Events about Ingresses (others are ignored), as listed.
    pub events: &'a [Event],
    /// The ELBv2 snapshot, when AWS was read.
    pub elb: Option<&'a ElbSnapshot>,
}

/// The group's state, as one verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum Health {
    /// Served: why we know.
    Healthy {
        why: String,
    },
    Failing(Failing),
    /// Neither can be told: why not.
    Unknown {
        why: String,
    },
}

/// A current failure of the group, as the controller reported it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Failing {
    pub reason: String,
    pub message: String,
    /// The member the event is on, `NS/NAME`.
    pub member: String,
    /// RFC 3339; empty when the event carries no time.
    pub at: String,
    /// What the user should do.
    pub fix: String,
}

/// One failure event of the controller on an existing Ingress, judged.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FailureEvent {
    pub namespace: String,
    pub ingress: String,
    pub reason: String,
    pub message: String,
    /// RFC 3339; empty when the event carries no time.
    pub last_seen: String,
    pub count: i32,
    /// Whether it still describes the group (see the module doc).
    pub current: bool,
    /// Why it is not current, when it is not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stale: Option<String>,
}

/// The group key of an Ingress: its `group.name`, or the implicit group of one Ingress
/// (`NS/NAME`; an explicit group name cannot contain `/`).
pub fn group_key(ing: &Ingress) -> String {
    model::group_of(ing)
        .map(str::to_string)
        .unwrap_or_else(|| format!("{}/{}", model::namespace(ing), model::name(ing)))
}

fn is_member(ing: &Ingress, group: &str) -> bool {
    model::is_alb_ingress(ing) && group_key(ing) == group
}

/// When the event last happened; the API has carried this in four places over time.
pub fn event_time(e: &Event) -> Option<Timestamp> {
    e.last_timestamp
        .as_ref()
        .map(|t| t.0)
        .or_else(|| e.event_time.as_ref().map(|t| t.0))
        .or_else(|| e.first_timestamp.as_ref().map(|t| t.0))
        .or_else(|| e.metadata.creation_timestamp.as_ref().map(|t| t.0))
}

/// The Ingress an event is about, `(namespace, name)`.
pub fn event_ingress(e: &Event) -> Option<(String, String)> {
    let o = &e.involved_object;
    if o.kind.as_deref() != Some("Ingress") {
        return None;
    }
    Some((
        o.namespace
            .clone()
            .or_else(|| e.metadata.namespace.clone())
            .unwrap_or_else(|| "default".into()),
        o.name.clone().unwrap_or_default(),
    ))
}

/// `Some(true)` for the controller's success, `Some(false)` for its failures.
pub fn outcome(e: &Event) -> Option<bool> {
    match e.reason.as_deref() {
        Some(SUCCESS_REASON) => Some(true),
        Some(r) if FAILURE_REASONS.contains(&r) => Some(false),
        _ => None,
    }
}

/// Whose an event is, as far as what was read tells.
enum Whose<'a> {
    /// An Ingress that exists now (the same object: uid, where both carry one).
    Existing(&'a Ingress),
    /// In a namespace that was read, and no such Ingress (or another object of that name).
    Gone,
    /// In a namespace that was not read.
    Unseen,
}

fn whose<'a>(ev: &Evidence<'a>, e: &Event) -> Option<Whose<'a>> {
    let (ns, name) = event_ingress(e)?;
    if !ev.scope.covers(&ns) {
        return Some(Whose::Unseen);
    }
    let found = ev
        .ingresses
        .iter()
        .find(|i| model::namespace(i) == ns && model::name(i) == name);
    Some(match found {
        Some(i)
            if i.metadata.uid.is_some()
                && e.involved_object.uid.is_some()
                && i.metadata.uid != e.involved_object.uid =>
        {
            Whose::Gone
        }
        Some(i) => Whose::Existing(i),
        None => Whose::Gone,
    })
}

/// The Ingresses a controller message names: `ingress: NS/NAME` (any case), as its errors wrap
/// them.
pub fn named_ingresses(message: &str) -> Vec<(String, String)> {
    let lower = message.to_ascii_lowercase();
    let mut out = Vec::new();
    let mut rest = lower.as_str();
    while let Some(at) = rest.find("ingress: ") {
        rest = &rest[at + "ingress: ".len()..];
        let token: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '/'))
            .collect();
        let token = token.trim_end_matches('.');
        if let Some((ns, name)) = token.split_once('/')
            && !ns.is_empty()
            && !name.is_empty()
            && !name.contains('/')
        {
            let pair = (ns.to_string(), name.to_string());
            if !out.contains(&pair) {
                out.push(pair);
            }
        }
    }
    out
}

/// The host a `no certificate found for host: H` message names.
fn named_host(message: &str) -> Option<String> {
    let rest = message.split("no certificate found for host: ").nth(1)?;
    let host = rest.split([' ', ',', ';', '"']).next()?;
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

/// The latest change of a member the controller reconciles on: created, spec or annotations
/// written (`metadata.managedFields` entries holding `f:spec` or annotations: the status
/// subresource and finalizer writes hold neither), deletion started. What happened, for the user.
fn member_changes(ing: &Ingress) -> Vec<(Timestamp, &'static str)> {
    let m = &ing.metadata;
    let mut out = Vec::new();
    if let Some(t) = &m.creation_timestamp {
        out.push((t.0, "created"));
    }
    if let Some(t) = &m.deletion_timestamp {
        out.push((t.0, "being deleted"));
    }
    for f in m.managed_fields.iter().flatten() {
        let Some(t) = &f.time else { continue };
        let fields = f.fields_v1.as_ref().map(|v| &v.0);
        let touches = fields.is_some_and(|v| {
            v.get("f:spec").is_some()
                || v.get("f:metadata")
                    .and_then(|m| m.get("f:annotations"))
                    .is_some()
        });
        if touches {
            out.push((t.0, "changed"));
        }
    }
    out
}

/// The group's latest change: when, and "Ingress NS/NAME <what>".
fn last_change(members: &[&Ingress]) -> Option<(Timestamp, String)> {
    members
        .iter()
        .flat_map(|i| {
            member_changes(i).into_iter().map(move |(t, what)| {
                (
                    t,
                    format!("Ingress {}/{} {what}", model::namespace(i), model::name(i)),
                )
            })
        })
        .max_by(|a, b| a.0.cmp(&b.0))
}

/// Everything known about one group, gathered once.
struct Group<'a> {
    name: String,
    members: Vec<&'a Ingress>,
    /// The controller's outcomes on the members.
    outcomes: Vec<(bool, Option<Timestamp>, &'a Event)>,
    last_change: Option<(Timestamp, String)>,
}

fn gather<'a>(ev: &Evidence<'a>, group: &str) -> Group<'a> {
    let members: Vec<&Ingress> = ev
        .ingresses
        .iter()
        .filter(|i| is_member(i, group))
        .collect();
    let outcomes = ev
        .events
        .iter()
        .filter_map(|e| {
            let ok = outcome(e)?;
            match whose(ev, e)? {
                Whose::Existing(i) if is_member(i, group) => Some((ok, event_time(e), e)),
                _ => None,
            }
        })
        .collect();
    Group {
        name: group.to_string(),
        last_change: last_change(&members),
        members,
        outcomes,
    }
}

fn show(t: Option<Timestamp>) -> String {
    t.map(|t| t.to_string()).unwrap_or_default()
}

/// Why the failure `e` (on a member of `g`, at `at`) no longer describes the group, or `None`
/// when it still does.
fn stale(ev: &Evidence<'_>, g: &Group<'_>, e: &Event, at: Option<Timestamp>) -> Option<String> {
    let message = e.message.as_deref().unwrap_or_default();
    for (ns, name) in named_ingresses(message) {
        if !ev.scope.covers(&ns) {
            continue;
        }
        let found = ev
            .ingresses
            .iter()
            .find(|i| model::namespace(i) == ns && model::name(i) == name);
        match found {
            None => {
                return Some(format!(
                    "it names Ingress {ns}/{name}, which no longer exists"
                ));
            }
            Some(i) if !is_member(i, &g.name) => {
                return Some(format!(
                    "it names Ingress {ns}/{name}, which is no longer in group {}",
                    g.name
                ));
            }
            Some(_) => {}
        }
    }
    if *ev.scope == Scope::All
        && let Some(host) = named_host(message)
        && !g.members.iter().any(|i| {
            model::hosts(i)
                .iter()
                .any(|h| h.eq_ignore_ascii_case(&host))
        })
    {
        return Some(format!(
            "it names host {host}, which no Ingress of group {} serves any more",
            g.name
        ));
    }
    // The same failure on an Ingress that is gone, at this one's time or later: that Ingress was
    // a member then and has left. (A reconcile after its deletion that failed the same way in
    // the same second is followed by the controller's retries, which record it again later.)
    if let Some(at) = at {
        for other in ev.events {
            if other.reason != e.reason || other.message != e.message {
                continue;
            }
            if !matches!(whose(ev, other), Some(Whose::Gone)) {
                continue;
            }
            if event_time(other).is_some_and(|t| t >= at)
                && let Some((ns, name)) = event_ingress(other)
            {
                return Some(format!(
                    "it was also recorded on Ingress {ns}/{name}, which no longer exists: the \
                     group has changed since"
                ));
            }
        }
    }
    if let (Some(at), Some((changed, what))) = (at, &g.last_change)
        && *changed > at
    {
        return Some(format!(
            "it predates the group's last change ({what} at {changed})"
        ));
    }
    let last_success = g
        .outcomes
        .iter()
        .filter(|(ok, _, _)| *ok)
        .filter_map(|(_, t, _)| *t)
        .max();
    // A success in the same second does not clear it: the failure may be the later of the two,
    // and hiding a failure is the worse mistake.
    if let (Some(at), Some(s)) = (at, last_success)
        && s > at
    {
        return Some(format!("a later {SUCCESS_REASON} at {s} cleared it"));
    }
    None
}

/// Every failure event of the controller on an Ingress that exists now, judged against that
/// Ingress's group; newest first.
pub fn failures(ev: &Evidence<'_>) -> Vec<FailureEvent> {
    let mut groups: Vec<Group<'_>> = Vec::new();
    let mut out: Vec<(Option<Timestamp>, FailureEvent)> = Vec::new();
    for e in ev.events {
        if outcome(e) != Some(false) {
            continue;
        }
        let Some(Whose::Existing(ing)) = whose(ev, e) else {
            continue;
        };
        let key = group_key(ing);
        let idx = match groups.iter().position(|g| g.name == key) {
            Some(i) => i,
            None => {
                groups.push(gather(ev, &key));
                groups.len() - 1
            }
        };
        let at = event_time(e);
        let why = if is_member(ing, &key) {
            stale(ev, &groups[idx], e, at)
        } else {
            Some("its Ingress is not of class alb any more".into())
        };
        out.push((
            at,
            FailureEvent {
                namespace: model::namespace(ing).to_string(),
                ingress: model::name(ing).to_string(),
                reason: e.reason.clone().unwrap_or_default(),
                message: e.message.clone().unwrap_or_default(),
                last_seen: show(at),
                count: e.count.unwrap_or(1),
                current: why.is_none(),
                stale: why,
            },
        ));
    }
    out.sort_by(|(ta, a), (tb, b)| {
        tb.cmp(ta)
            .then_with(|| (&a.namespace, &a.ingress).cmp(&(&b.namespace, &b.ingress)))
    });
    out.into_iter().map(|(_, f)| f).collect()
}

/// The target group resource tag the controller gives each backend of `ing`.
fn resource_ids(ing: &Ingress) -> Vec<String> {
    let (ns, name) = (model::namespace(ing), model::name(ing));
    let Some(spec) = &ing.spec else {
        return Vec::new();
    };
    let paths = spec
        .rules
        .iter()
        .flatten()
        .filter_map(|r| r.http.as_ref())
        .flat_map(|h| h.paths.iter().map(|p| &p.backend));
    spec.default_backend
        .iter()
        .chain(paths)
        .filter_map(|b| b.service.as_ref())
        .filter_map(|s| {
            let port = s.port.as_ref()?;
            let port = port
                .number
                .map(|n| n.to_string())
                .or_else(|| port.name.clone())?;
            Some(format!("{ns}/{name}-{}:{port}", s.name))
        })
        .collect()
}

/// The load balancer of `group` in the snapshot: by a member's address, else by stack tag.
fn load_balancer<'s>(
    snap: &'s ElbSnapshot,
    members: &[&Ingress],
    group: &str,
) -> Option<&'s LoadBalancer> {
    members
        .iter()
        .flat_map(|i| model::addresses(i))
        .find_map(|a| snap.by_dns_name(&a))
        .or_else(|| snap.by_group(group))
}

/// The ALB's own evidence that `ing` is served: a listener rule for each of its hosts forwarding
/// to its target group. `None`: no snapshot, no load balancer for its group, or a host without
/// such a rule.
pub fn served_by_alb(ev: &Evidence<'_>, ing: &Ingress) -> Option<String> {
    let snap = ev.elb?;
    let group = group_key(ing);
    let lb = load_balancer(snap, &[ing], &group)?;
    let ids = resource_ids(ing);
    let hosts = model::hosts(ing);
    if hosts.is_empty() || ids.is_empty() {
        return None;
    }
    let mut seen = Vec::new();
    for host in &hosts {
        let rule = lb.listeners.iter().find_map(|l| {
            l.rules.iter().find(|r| {
                !r.is_default
                    && r.hosts.iter().any(|h| model::alb_host_matches(h, host))
                    && matches!(&r.action, Action::Forward { target_groups } if target_groups
                        .iter()
                        .filter_map(|a| snap.target_group(a))
                        .any(|t| t.tags.get(TAG_RESOURCE).is_some_and(|v| ids.contains(v))))
            })
        })?;
        seen.push(format!("{host} (rule {})", rule.priority));
    }
    Some(format!(
        "load balancer {} forwards {} to the target group of Ingress {}/{}",
        lb.name,
        seen.join(", "),
        model::namespace(ing),
        model::name(ing)
    ))
}

/// The one verdict on `group` (an explicit `group.name`, or `NS/NAME` for an Ingress alone).
pub fn judge(ev: &Evidence<'_>, group: &str) -> Health {
    let g = gather(ev, group);
    if g.members.is_empty() {
        return Health::Unknown {
            why: format!("no Ingress of class alb is in group {group}"),
        };
    }
    let judged: Vec<(Option<Timestamp>, &Event, Option<String>)> = g
        .outcomes
        .iter()
        .filter(|(ok, _, _)| !ok)
        .map(|(_, at, e)| (*at, *e, stale(ev, &g, e, *at)))
        .collect();
    if let Some((at, e, _)) = judged
        .iter()
        .filter(|(_, _, why)| why.is_none())
        .max_by(|a, b| a.0.cmp(&b.0))
    {
        let message = e.message.clone().unwrap_or_default();
        let member = event_ingress(e)
            .map(|(ns, n)| format!("{ns}/{n}"))
            .unwrap_or_default();
        let named = model::group_of(g.members[0]).unwrap_or(group);
        return Health::Failing(Failing {
            reason: e.reason.clone().unwrap_or_default(),
            fix: fix_for(&message, named),
            message,
            member,
            at: show(*at),
        });
    }
    let served: Vec<String> = g
        .members
        .iter()
        .map_while(|i| served_by_alb(ev, i))
        .collect();
    if served.len() == g.members.len() {
        return Health::Healthy {
            why: format!(
                "the ALB's listener rules serve every member: {}",
                served.join("; ")
            ),
        };
    }
    // By events, healthy when the latest outcome is a success (a failure in the same second
    // may be the later one) and no member changed after it.
    let latest = |want: bool| {
        g.outcomes
            .iter()
            .filter(|(ok, _, _)| *ok == want)
            .filter_map(|(_, t, _)| *t)
            .max()
    };
    if let Some(s) = latest(true)
        && latest(false).is_none_or(|f| s > f)
        && g.last_change.as_ref().is_none_or(|(c, _)| s >= *c)
    {
        return Health::Healthy {
            why: format!("the controller's last reconcile of the group succeeded at {s}"),
        };
    }
    let mut why = match &g.last_change {
        Some((c, what)) => format!(
            "the controller has recorded no outcome for group {group} since its last change \
             ({what} at {c})"
        ),
        None => format!("the controller has recorded no outcome for group {group}"),
    };
    if let Some((_, e, Some(stale))) = judged.iter().max_by(|a, b| a.0.cmp(&b.0)) {
        why.push_str(&format!(
            "; its last failure ({}) is not current: {stale}",
            e.reason.as_deref().unwrap_or_default()
        ));
    }
    why.push_str(
        " (its events are rate-limited per Ingress and expire after an hour; the ALB's \
         listener rules tell where AWS can be read)",
    );
    Health::Unknown { why }
}

/// What the user should do about a controller failure. The controller's messages are stable
/// strings of its source; the generic fix covers the rest.
pub fn fix_for(message: &str, group: &str) -> String {
    if let Some(host) = message
        .split("no certificate found for host: ")
        .nth(1)
        .map(|rest| rest.split([' ', ',', ';', '"']).next().unwrap_or_default())
    {
        let parent = host.split_once('.').map_or(host, |(_, p)| p);
        return format!(
            "no ACM certificate in the ALB's account and region covers {host}: request (or \
             import) one for *.{parent} there — the controller finds it by name — or set \
             ALB_CERTIFICATE_ARN to the ARN of a certificate that covers it (for jockey-webhook \
             and kubectl jockey) and deploy again; until then no project in group {group} gets \
             changes"
        );
    }
    if message.contains("conflicting") {
        return format!(
            "the Ingresses of group {group} disagree on a setting of the whole ALB: `kubectl \
             jockey alb-status` names them; give them one value (a project's Ingress may carry \
             only the cluster admin's) — until then no project in the group gets changes"
        );
    }
    format!(
        "fix what the message names (`kubectl jockey alb-status` lists the group's failures); \
         until then no project in group {group} gets changes"
    )
}

#[cfg(test)]
#[path = "health_tests.rs"]
mod tests;
