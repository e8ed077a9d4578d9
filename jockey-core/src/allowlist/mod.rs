//! What may be written on a project's objects, key by key: an allowlist, not a list of known
//! attacks. On a labelled Ingress or Service, an `alb.ingress.kubernetes.io/*` or
//! `service.beta.kubernetes.io/*` annotation is refused unless [`LISTED`] names it, and a listed
//! key is checked against its value domain, alone and in combination with the object's other keys,
//! jockey's own defaults and the admin's group settings ([`combine`]), against what AWS and the
//! AWS Load Balancer Controller accept. A key the controller starts reading next year is refused
//! until someone lists it here.
//!
//! Who decides a key ([`Who`]): any tenant within its domain; jockey (the tenant may only carry
//! jockey's value); the cluster admin for the whole group (policy `groupSettings`); the cluster
//! admin per project (policy `grants`), checked by the same code as everything else.
//!
//! This layer sits on [`crate::alb_annotations`] (how the controller parses each key) and
//! [`crate::aws_limits`] (what AWS accepts); the policy rules above it use the values it parsed.

mod combine;
pub mod samples;
mod table;
#[cfg(test)]
mod tests;

pub use table::readme_table;

pub use combine::{GRPC_HEALTH_PATH, GRPC_SUCCESS_CODES, rule_listeners};

use crate::alb_annotations::{self as alb, Known, Object, Parsed, Reach};
use crate::verdict::Verdict;
use std::collections::BTreeMap;

/// Annotations the controller reads for a Network Load Balancer Service; jockey's Services are
/// ClusterIP behind the shared ALB, so none of them is a tenant's.
pub const SERVICE_BETA_PREFIX: &str = "service.beta.kubernetes.io/";

/// Who decides a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    /// Any tenant, within the key's domain.
    Tenant,
    /// jockey fills it in; a tenant's object may carry only jockey's value.
    Jockey,
    /// One value for the whole ALB group: the cluster admin's (policy `groupSettings`).
    Admin,
    /// The cluster admin grants it to a project (policy `grants.<project>.annotations`).
    Grant,
    /// Nobody, on a project's object.
    Never,
}

impl Who {
    pub fn words(self) -> &'static str {
        match self {
            Who::Tenant => "any tenant",
            Who::Jockey => "jockey (its own value only)",
            Who::Admin => "the cluster admin, for the whole group (policy groupSettings)",
            Who::Grant => "the cluster admin, per project (policy grants)",
            Who::Never => "nobody",
        }
    }
}

/// One listed key.
#[derive(Debug)]
pub struct Listed {
    /// The key without [`alb::PREFIX`]; a family ends in `.*` (`actions.*`).
    pub key: &'static str,
    pub object: Object,
    pub who: Who,
    /// The values admitted, for messages and the README.
    pub values: &'static str,
    /// Why this domain, and what it is checked together with.
    pub note: &'static str,
}

const ING: Object = Object::Ingress;
const SVC: Object = Object::Service;

macro_rules! listed {
    ($key:literal, $object:expr, $who:expr, $values:literal, $note:literal) => {
        Listed {
            key: $key,
            object: $object,
            who: $who,
            values: $values,
            note: $note,
        }
    };
}

/// Every key jockey lets onto a project's objects besides the group-wide ones (which take the
/// admin's values: [`Who::Admin`], from the controller's own list of group-wide keys).
pub const LISTED: &[Listed] = &[
    // --- a tenant's own target group, on its Ingress -------------------------------------------
    listed!(
        "healthcheck-path",
        ING,
        Who::Tenant,
        "a path of 1..1024 characters starting with /, of letters, digits and -._~!$&'()*+,;=:@%/; with GRPC, /package.service/method",
        "jockey fills /health (gRPC: /AWS.ALB/healthcheck)"
    ),
    listed!(
        "healthcheck-interval-seconds",
        ING,
        Who::Tenant,
        "5..300",
        "must be longer than the timeout (controller default 15)"
    ),
    listed!(
        "healthcheck-timeout-seconds",
        ING,
        Who::Tenant,
        "2..120",
        "must be shorter than the interval (controller default 5)"
    ),
    listed!("healthy-threshold-count", ING, Who::Tenant, "2..10", ""),
    listed!("unhealthy-threshold-count", ING, Who::Tenant, "2..10", ""),
    listed!(
        "success-codes",
        ING,
        Who::Tenant,
        "HTTP codes 200..499 (200, 200,202 or 200-299); with GRPC, gRPC codes 0..99",
        "jockey fills 200 (gRPC: 12); checked against backend-protocol-version"
    ),
    listed!(
        "healthcheck-protocol",
        ING,
        Who::Tenant,
        "HTTP or HTTPS",
        ""
    ),
    listed!(
        "healthcheck-port",
        ING,
        Who::Tenant,
        "traffic-port or 1..65535",
        "a port name is not admitted: it must resolve on the Service, which a later edit of the Service can break"
    ),
    listed!("backend-protocol", ING, Who::Tenant, "HTTP or HTTPS", ""),
    listed!(
        "backend-protocol-version",
        ING,
        Who::Tenant,
        "HTTP1, HTTP2 or GRPC",
        "HTTP2 and GRPC only where the group's rules sit on HTTPS listeners alone (ssl-redirect, or HTTPS listen-ports only)"
    ),
    // --- jockey's ---------------------------------------------------------------------------
    listed!(
        "target-type",
        ING,
        Who::Jockey,
        "ip",
        "jockey's Services are ClusterIP: instance targets need a NodePort and fail the whole group"
    ),
    listed!(
        "group.name",
        ING,
        Who::Jockey,
        "the group jockey places the project in",
        "the shared group or a shard; only the project's current group or the one placement chooses now"
    ),
    listed!(
        "target-group-attributes",
        ING,
        Who::Grant,
        "jockey's deregistration_delay.timeout_seconds=30; granted: the documented ALB ip target group attributes, in combination",
        "an unknown key makes AWS refuse the target group and the whole group's deploy fails"
    ),
    // --- granted per project -------------------------------------------------------------------
    listed!(
        "actions.*",
        ING,
        Who::Grant,
        "forward, redirect or fixed-response actions",
        "forwards only to Services labelled with the project, in its namespace; every target of a weighted forward must exist"
    ),
    listed!(
        "conditions.*",
        ING,
        Who::Grant,
        "rule conditions",
        "host-header values only the project's hosts, no http-header on Host, at most 3 values per condition and 5 per rule"
    ),
    listed!(
        "transforms.*",
        ING,
        Who::Grant,
        "host-header and url rewrites",
        ""
    ),
    listed!(
        "use-regex-path-match",
        ING,
        Who::Grant,
        "true or false",
        "path conditions of a rule are then all regular expressions"
    ),
    listed!(
        "auth-type",
        ING,
        Who::Grant,
        "none, cognito or oidc",
        "cognito needs auth-idp-cognito, oidc needs auth-idp-oidc, and neither goes with jwt-validation"
    ),
    listed!(
        "auth-idp-cognito",
        ING,
        Who::Grant,
        "the controller's JSON object",
        ""
    ),
    listed!(
        "auth-idp-oidc",
        ING,
        Who::Grant,
        "the controller's JSON object",
        ""
    ),
    listed!(
        "auth-on-unauthenticated-request",
        ING,
        Who::Grant,
        "authenticate, allow or deny",
        ""
    ),
    listed!("auth-scope", ING, Who::Grant, "OIDC scopes", ""),
    listed!("auth-session-cookie", ING, Who::Grant, "a cookie name", ""),
    listed!("auth-session-timeout", ING, Who::Grant, "seconds", ""),
    listed!(
        "jwt-validation",
        ING,
        Who::Grant,
        "the controller's JSON object",
        "not with auth-type"
    ),
    listed!(
        "multi-cluster-target-group",
        ING,
        Who::Grant,
        "true or false",
        ""
    ),
    listed!("target-control-port.*", ING, Who::Grant, "a port", ""),
    // --- nobody's ---------------------------------------------------------------------------
    listed!(
        "group.order",
        ING,
        Who::Never,
        "-",
        "the order of rules on a shared ALB is the admin's: an explicit order puts a project's rules ahead of every other tenant's"
    ),
    listed!(
        "target-node-labels",
        ING,
        Who::Never,
        "-",
        "only for instance targets, which jockey does not use"
    ),
    listed!(
        "dry-run-plan",
        ING,
        Who::Never,
        "-",
        "written by the controller, with the whole group's model"
    ),
    // --- a project's Service --------------------------------------------------------------------
    listed!(
        "tags",
        SVC,
        Who::Tenant,
        "at most 40 tags of AWS's characters (key 1..128, value 0..256), no aws: key, no controller key (elbv2.k8s.aws/, ingress.k8s.aws/, service.k8s.aws/)",
        "jockey's deployment and hostname tags keep jockey's values; the controller puts a Service's tags on that project's target group only"
    ),
];

/// Tags jockey lets a tenant put on its target group: AWS allows 50 per resource, and the
/// controller adds its own (`elbv2.k8s.aws/cluster`, `ingress.k8s.aws/stack`, `.../resource`)
/// and the admin's `--default-tags`.
pub const MAX_TENANT_TAGS: usize = 40;
/// Tag keys the controller itself manages on the resources it creates.
pub const CONTROLLER_TAG_PREFIXES: [&str; 3] =
    ["elbv2.k8s.aws/", "ingress.k8s.aws/", "service.k8s.aws/"];

/// The listed entry for `suffix` on `object`.
pub fn listed(object: Object, suffix: &str) -> Option<&'static Listed> {
    LISTED.iter().find(|l| {
        l.object == object
            && match l.key.strip_suffix('*') {
                Some(family) => suffix.len() > family.len() && suffix.starts_with(family),
                None => l.key == suffix,
            }
    })
}

/// Who decides `suffix` on `object`: listed keys as listed, group-wide keys the admin, the rest
/// nobody.
pub fn who(object: Object, suffix: &str) -> Who {
    if let Some(l) = listed(object, suffix) {
        return l.who;
    }
    if object == Object::Ingress
        && let Some(Ok(known)) = alb::classify(object, &format!("{}{suffix}", alb::PREFIX))
        && matches!(known.reach, Reach::Group { .. })
    {
        return Who::Admin;
    }
    Who::Never
}

fn who_on_ingress(suffix: &str) -> Who {
    who(Object::Ingress, suffix)
}

/// Whether `grants` (policy `grants.<project>.annotations`: keys without the prefix, a family
/// as `actions.*`) grant `suffix`.
pub fn granted(grants: &[String], suffix: &str) -> bool {
    grants.iter().any(|g| match g.strip_suffix('*') {
        Some(family) => suffix.starts_with(family) && suffix.len() > family.len(),
        None => g == suffix,
    })
}

/// What the check needs besides the object.
pub struct Scope<'a> {
    /// The project's grants (policy `grants.<project>.annotations`).
    pub grants: &'a [String],
    /// The admin's group-wide settings in force (keys without the prefix).
    pub group_settings: &'a BTreeMap<String, String>,
    /// jockey's own tags for the project's Service (`deployment`, `hostname`).
    pub jockey_tags: &'a [(String, String)],
}

/// One annotation that passed, parsed as the controller parses it.
pub struct Entry {
    pub known: Known,
    pub value: String,
    pub parsed: Parsed,
}

/// The object's ALB annotations that passed the allowlist, parsed.
#[derive(Default)]
pub struct Admitted {
    pub entries: Vec<Entry>,
}

impl Admitted {
    /// The parsed value of `suffix` (without the prefix).
    pub fn get(&self, suffix: &str) -> Option<(&Entry, &Parsed)> {
        self.entries
            .iter()
            .find(|e| e.known.key.strip_prefix(alb::PREFIX) == Some(suffix))
            .map(|e| (e, &e.parsed))
    }

    /// The entries of one reach.
    pub fn of_reach<'a>(
        &'a self,
        pick: impl Fn(Reach) -> bool + 'a,
    ) -> impl Iterator<Item = (&'a Entry, &'a Parsed)> + 'a {
        self.entries
            .iter()
            .filter(move |e| pick(e.known.reach))
            .map(|e| (e, &e.parsed))
    }
}

fn field(key: &str) -> String {
    format!("metadata.annotations[{key}]")
}

/// Checks every `alb.ingress.kubernetes.io/*` and `service.beta.kubernetes.io/*` annotation of a
/// project's `object`: listed, decided by someone who may, within its domain, and (on an
/// Ingress) in combination with the rest. Denials go to `v`; what passed is returned for the
/// rules that need the values (routing, group).
pub fn check(
    object: Object,
    annotations: &BTreeMap<String, String>,
    scope: &Scope,
    v: &mut Verdict,
) -> Admitted {
    let mut admitted = Admitted::default();
    for (key, value) in annotations {
        if key.starts_with(SERVICE_BETA_PREFIX) {
            v.deny(
                field(key),
                "is a Network Load Balancer Service annotation".into(),
                "a project's objects carry only the ALB annotations jockey lists (jockey's Services are ClusterIP behind the shared ALB)",
                format!("remove {key}"),
            );
            continue;
        }
        let Some(suffix) = key.strip_prefix(alb::PREFIX) else {
            continue;
        };
        if let Some(entry) = check_key(object, key, suffix, value, scope, v) {
            admitted.entries.push(entry);
        }
    }
    if object == Object::Ingress {
        combine::ingress(annotations, &admitted, scope, v);
    }
    admitted
}

fn check_key(
    object: Object,
    key: &str,
    suffix: &str,
    value: &str,
    scope: &Scope,
    v: &mut Verdict,
) -> Option<Entry> {
    let who = who(object, suffix);
    let known = match alb::classify(object, key) {
        Some(Ok(known)) => known,
        _ => {
            let (problem, fix) = match object {
                Object::Service if alb::classify(Object::Ingress, key).is_some_and(|c| c.is_ok()) => (
                    "is an ALB setting on the Service".to_string(),
                    format!("set {suffix} on the project's Ingress (where jockey checks it with the rest), and remove it here"),
                ),
                _ => (
                    "is not an annotation the AWS Load Balancer Controller reads here (a typo? keys are case-sensitive)".to_string(),
                    format!("remove {key}"),
                ),
            };
            v.deny(
                field(key),
                problem,
                "a project's objects carry only the ALB annotations jockey lists",
                fix,
            );
            return None;
        }
    };
    let parsed = match known.parse(value) {
        Ok(p) => p,
        Err(e) => {
            v.deny(
                field(key),
                format!(
                    "is {:?}: expected {}; {} ({})",
                    e.got,
                    e.expects,
                    e.problem,
                    e.failure.consequence()
                ),
                "every ALB annotation has a value the AWS Load Balancer Controller accepts, as one bad value stops the shared ALB for every tenant",
                format!("correct the value or remove {key}"),
            );
            return None;
        }
    };
    let entry = Entry {
        known,
        value: value.to_string(),
        parsed,
    };
    let ok = match who {
        Who::Tenant => tenant_domain(object, suffix, &entry, scope, v),
        Who::Jockey => jockey_value(suffix, &entry, v),
        Who::Admin => admin_value(suffix, &entry, scope, v),
        Who::Grant => grant(suffix, &entry, scope, v),
        Who::Never if object == Object::Service && who_on_ingress(suffix) != Who::Never => {
            v.deny(
                field(key),
                "is an ALB setting on the Service".into(),
                "a project's Service carries only the ALB annotations jockey lists there (tags): the controller lets a Service's target group and auth keys win over the Ingress's, where jockey checks them with the rest",
                format!("set {suffix} on the project's Ingress, and remove it here"),
            );
            false
        }
        Who::Never => {
            let note = listed(object, suffix).map_or("", |l| l.note);
            v.deny(
                field(key),
                format!("sets {suffix}, which jockey does not let a project set{}", if note.is_empty() { String::new() } else { format!(" ({note})") }),
                "a project's objects carry only the ALB annotations jockey lists; this one no one may set on a project",
                format!("remove {key}"),
            );
            false
        }
    };
    ok.then_some(entry)
}

/// The narrower domains of tenant keys (the controller's parse has already passed).
fn tenant_domain(object: Object, suffix: &str, e: &Entry, scope: &Scope, v: &mut Verdict) -> bool {
    let key = &e.known.key;
    let mut refuse = |problem: String, fix: String| {
        v.deny(
            field(key),
            problem,
            "a tenant sets a listed ALB annotation only within its domain",
            fix,
        );
        false
    };
    match (object, suffix, &e.parsed) {
        (Object::Ingress, "healthcheck-path", _) => {
            let ok = e.value.starts_with('/')
                && e.value.len() <= 1024
                && e.value
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@%/".contains(&b));
            if ok {
                true
            } else {
                refuse(
                    format!(
                        "is {:?}: a health check path is 1..1024 characters starting with /, of letters, digits and -._~!$&'()*+,;=:@%/",
                        e.value
                    ),
                    format!("use a plain path such as /health in {key}"),
                )
            }
        }
        (
            Object::Ingress,
            "healthcheck-port",
            Parsed::HealthCheckPort(alb::HealthCheckPort::Name(n)),
        ) => refuse(
            format!("names the Service port {n:?}"),
            format!("use traffic-port or the port number in {key}"),
        ),
        (Object::Service, "tags", Parsed::Map(tags)) => service_tags(key, tags, scope, v),
        _ => true,
    }
}

fn service_tags(key: &str, tags: &[(String, String)], scope: &Scope, v: &mut Verdict) -> bool {
    let mut ok = true;
    if tags.len() > MAX_TENANT_TAGS {
        v.deny(
            field(key),
            format!("has {} tags", tags.len()),
            "a target group holds 50 tags, and the controller and the admin add their own: a project sets at most 40",
            "keep at most 40 tags".into(),
        );
        ok = false;
    }
    if let Some((k, _)) = tags
        .iter()
        .find(|(k, _)| CONTROLLER_TAG_PREFIXES.iter().any(|p| k.starts_with(p)))
    {
        v.deny(
            field(key),
            format!("sets the tag {k:?}, a key the AWS Load Balancer Controller manages"),
            "the controller's own tags identify what it manages; a project does not set them",
            format!("remove the tag {k}"),
        );
        ok = false;
    }
    for (jk, jv) in scope.jockey_tags {
        if let Some((_, theirs)) = tags.iter().find(|(k, _)| k == jk)
            && theirs != jv
        {
            v.deny(
                field(key),
                format!("sets the tag {jk}={theirs}, but jockey's value is {jv}"),
                "the deployment and hostname tags are jockey's (they say which project a target group serves)",
                format!("remove the tag {jk} (jockey fills it in) or set it to {jv}"),
            );
            ok = false;
        }
    }
    ok
}

/// jockey's own values.
fn jockey_value(suffix: &str, e: &Entry, v: &mut Verdict) -> bool {
    // group.name is placement's: checked by the policy against the index (it needs the groups).
    if suffix == "target-type" && e.value != "ip" {
        v.deny(
            field(&e.known.key),
            format!("is {:?}", e.value),
            "jockey's Services are ClusterIP and its target groups take pod IPs: instance targets need a NodePort, and the controller fails the whole group on a ClusterIP Service",
            format!("remove {} (the webhook sets ip)", e.known.key),
        );
        return false;
    }
    true
}

/// Group-wide keys: a tenant's object may carry the admin's value (or, for a key the controller
/// merges, a part of it).
fn admin_value(suffix: &str, e: &Entry, scope: &Scope, v: &mut Verdict) -> bool {
    let merge = matches!(e.known.reach, Reach::Group { merge: true });
    let key = &e.known.key;
    let admin = scope
        .group_settings
        .get(suffix)
        .and_then(|value| e.known.parse(value).ok().map(|p| (value, p)));
    match admin {
        Some((_, a)) if agrees(&e.parsed, &a, merge) => true,
        Some((admin_value, _)) => {
            v.deny(
                field(key),
                format!("is {:?} but the group's setting is {admin_value:?}", e.value),
                "group-wide ALB settings are the cluster admin's: every Ingress of a group shares one ALB, and one Ingress that differs stops (or changes) it for every tenant",
                if merge {
                    format!("remove the annotation, or use only entries of {admin_value:?}")
                } else {
                    format!("remove the annotation (the webhook fills it in) or set it to {admin_value:?}")
                },
            );
            false
        }
        None => {
            v.deny(
                field(key),
                format!("sets the group-wide ALB setting {suffix} to {:?}, which the cluster admin did not choose", e.value),
                "group-wide ALB settings are the cluster admin's (webhook policy groupSettings), as they act on every tenant of the ALB",
                "remove the annotation, or ask the cluster admin to set it in the webhook policy's groupSettings".into(),
            );
            false
        }
    }
}

/// Whether a tenant's value says nothing the admin's does not: equal, or, for a key the
/// controller merges (lists, maps, listen ports), a part of the admin's value.
fn agrees(tenant: &Parsed, admin: &Parsed, merge: bool) -> bool {
    if tenant == admin {
        return true;
    }
    if !merge {
        return false;
    }
    match (tenant, admin) {
        (Parsed::List(t), Parsed::List(a)) => t.iter().all(|x| a.contains(x)),
        (Parsed::Map(t), Parsed::Map(a)) => t.iter().all(|x| a.contains(x)),
        (Parsed::ListenPorts(t), Parsed::ListenPorts(a)) => t.iter().all(|x| a.contains(x)),
        (Parsed::PortMapping(t), Parsed::PortMapping(a)) => t.iter().all(|x| a.contains(x)),
        _ => false,
    }
}

/// Granted keys: jockey's own value of `target-group-attributes` needs no grant; anything else
/// does, and is then checked like everything else (the domain of the key and [`combine`]).
fn grant(suffix: &str, e: &Entry, scope: &Scope, v: &mut Verdict) -> bool {
    let key = &e.known.key;
    let jockeys = crate::contract::ALB_OWN_DEFAULTS
        .iter()
        .any(|(k, val)| k == key && *val == e.value);
    if !jockeys && !granted(scope.grants, suffix) {
        let family = listed(Object::Ingress, suffix).map_or(suffix, |l| l.key);
        v.deny(
            field(key),
            format!("sets {suffix}, which the cluster admin has not granted this project"),
            "a project sets only the ALB annotations any tenant may; the others are granted per project by the cluster admin",
            format!("remove {key}, or ask the cluster admin to add {family:?} under grants.<project>.annotations in the webhook policy"),
        );
        return false;
    }
    if let ("target-group-attributes", Parsed::Map(pairs)) = (suffix, &e.parsed)
        && let Err(why) = crate::aws_limits::target_group_attributes(pairs)
    {
        v.deny(
            field(key),
            why,
            "AWS refuses an attribute it does not document for the target group, and the deploy of the whole group fails",
            "use only the attributes and values AWS documents for an ALB target group of type ip".into(),
        );
        return false;
    }
    true
}
