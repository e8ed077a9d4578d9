//! What the AWS Load Balancer Controller (v3.5.0, `kubernetes-sigs/aws-load-balancer-controller`)
//! does with every `alb.ingress.kubernetes.io/*` annotation, on an Ingress and on a backend
//! Service: its [`Reach`] in an IngressGroup and its value, parsed exactly as the controller
//! parses it. Pure: [`classify`] a key, then [`parse`] its value. File references below are to
//! the controller's source; `pkg/ingress/` is left out.
//!
//! # The contract of [`parse`]
//!
//! `Ok` when the controller accepts the value, with the value the controller then uses (after
//! its normalisations: Go's case-insensitive JSON keys and repeated-key merging, `servicePort`
//! strings that are 32-bit numbers turned into numbers, `listen-ports` by port). `Err` says which
//! [`Failure`] the value causes: [`Failure::Build`], the controller's model build fails
//! (event `FailedBuildModel`); [`Failure::Deploy`], the build passes but the ELBv2 API refuses
//! what it produced (event `FailedDeployModel`); [`Failure::Dropped`], the Ingress silently leaves
//! its group. Build and Deploy failures stop the reconcile of the WHOLE group: every Ingress
//! that shares the ALB stops getting changes (and a failing target group stops the deploy
//! before the listeners and rules: `pkg/deploy/stack_deployer.go:113-175`). A value is checked
//! the way the controller checks it wherever it reads it, even where that read depends on
//! something else (a `conditions.<service>` nobody routes to, a `frontend-nlb-*` while the
//! frontend NLB is off), so a later change elsewhere cannot turn an accepted value into a
//! failure. Deploy checks cover the documented ELBv2 limits a single value can break (health
//! check ranges, redirect and fixed-response codes, tag sizes, names, CIDRs); checks that need
//! AWS state (does this ARN exist) or the whole group (quotas) are listed below instead.
//!
//! # How one Ingress (or its Service) fails the whole group
//!
//! The lead turns each into a policy rule. "group" means every Ingress with the same
//! `group.name`; each item fails the group's reconcile for everyone until it is fixed.
//!
//! Loading the group (`group_loader.go`; no event at all, the reconcile just errors):
//! - `group.order` not an int32, or outside -1000..1000 (group_loader.go:284-292). Equal orders
//!   are fine (ties go by namespace/name, :298-308).
//! - An Ingress that already holds the group's finalizer whose IngressClass becomes invalid: a
//!   missing class, an IngressClassParams that is missing or whose namespaceSelector does not
//!   match (group_loader.go:149-151, class_loader.go:90-117). Changing `spec.ingressClassName`
//!   on a member to a class that does not exist is enough.
//! - Any Ingress in the cluster without `spec.ingressClassName` while two IngressClasses are
//!   marked default: the error is not `ErrInvalidIngressClass`, so EVERY group fails to load
//!   (class_loader.go:63-64, group_loader.go:163). (Admin-made, but an Ingress triggers it.)
//! - Not failures: an invalid `group.name` takes the Ingress out of the group
//!   (group_loader.go:156-162), a non-matching `kubernetes.io/ingress.class` makes it unmanaged.
//!
//! Building the model (`model_builder.go` and friends; event `FailedBuildModel`):
//! - A deleted member (finalizer still on) whose `load-balancer-attributes` does not parse, or
//!   has `deletion_protection.enabled` not a Go bool or `true`: "cannot delete the ingress"
//!   for as long as it stays (model_builder.go:298-306).
//! - Any malformed value of a key the build reads: each Build `Err` of [`parse`] (parser.go
//!   errors for bool/int/map/JSON; config_types.go validations; enums; ranges).
//! - Group-wide keys that differ between two Ingresses (the [`Reach::Group`] entries, each
//!   [`Known::detail`] names the line): scheme, load-balancer-name, ip-address-type, subnets,
//!   security-groups (order matters), manage-backend-security-group-rules,
//!   customer-owned-ipv4-pool, ipam-ipv4-pool-id, wafv2-acl-arn, wafv2-acl-name, waf-acl-id /
//!   web-acl-id, shield-advanced-protection, minimum-load-balancer-capacity, ssl-redirect,
//!   enable-frontend-nlb and every frontend-nlb-* key; per key of tags,
//!   load-balancer-attributes, listener-attributes.*; per listener port: the protocol from
//!   listen-ports (`[{"HTTP": 443}]` against another's HTTPS 443, model_builder.go:423),
//!   inbound-cidrs, security-group-prefix-lists, ssl-policy, mutual-authentication
//!   (model_builder.go:419-491). `frontend-nlb-attributes` is compared whole and an Ingress
//!   WITHOUT it after one with it also conflicts (model_build_frontend_nlb.go:236).
//! - `ssl-redirect` naming a port that is not an HTTPS listener of the group
//!   (model_builder.go:543-546).
//! - `load-balancer-name` longer than 32 (model_build_load_balancer.go:114).
//! - `spec.defaultBackend` on two Ingresses of the group (model_build_listener.go:86-91); a
//!   defaultBackend (or any path backend) that is a `resource` instead of a service
//!   (enhanced_backend_builder.go:115-116); the defaultBackend also becomes the listener's
//!   default action for every host of the ALB.
//! - A path with pathType Exact or Prefix containing `*` or `?` (model_build_listener_rules.go:267,
//!   :282). Unknown pathTypes cannot pass the API server.
//! - A rule whose host (spec.rules[].host or a host-header `values` condition) meets a
//!   host-header `regexValues` condition, or whose path meets a path-pattern condition of the
//!   other kind, e.g. `use-regex-path-match` paths plus a `values` path condition
//!   (model_build_listener_rules.go:204-209).
//! - A backend port the Service does not have (model_build_target_group.go:35,
//!   pkg/k8s/service_utils.go:25). A backend Service that does not exist is tolerated (fixed
//!   503) only when the action forwards to that ONE service; `actions.*` forwarding to several
//!   services where one is missing fails the group (enhanced_backend_builder.go:280-295). Any
//!   other error reading a Service fails it too.
//! - A `use-annotation` backend without its `actions.<name>`: tolerated by default (fixed 503,
//!   flag `--tolerate-non-existent-backend-action=true`); fails the group when the admin turned
//!   the flag off (enhanced_backend_builder.go:208-213).
//! - Target group settings from the Ingress OR its Service: target-type `instance` on a
//!   ClusterIP Service (model_build_target_group.go:205-209), a named `healthcheck-port` the
//!   Service lacks or that meets a named targetPort with target-type ip (:398-408),
//!   `target-control-port.*` with target-type instance (:199-201), a Service with IPv6 in
//!   `spec.ipFamilies` on an ALB that is not dualstack (:282-285).
//! - `targetGroupName` in `actions.*` that AWS cannot resolve (model_build_actions.go:123-126);
//!   `wafv2-acl-name` AWS cannot find (model_build_load_balancer_addons.go:87); subnets or
//!   security groups AWS cannot resolve (model_build_load_balancer.go:247-254, :314-317);
//!   an mTLS trust store name AWS cannot resolve (model_build_listener.go:443).
//! - On HTTPS listeners: `auth-type: cognito` without `auth-idp-cognito`
//!   (model_build_actions.go:163); `auth-type: oidc` whose Secret is missing or lacks
//!   clientID/clientSecret (:191-206); any auth-type together with `jwt-validation` (:36-39).
//!   The auth-* keys can come from the backend Service.
//! - An HTTPS listen port with no `certificate-arn` (and none from IngressClassParams or
//!   `create-acm-cert`): certificates are discovered for every host of spec.rules and spec.tls,
//!   and ONE host without an issued ACM certificate fails the group: "no certificate found for
//!   host" (model_build_listener.go:164-169, pkg/certs/cert_discovery.go:92). A wildcard
//!   certificate covers one label only (cert_discovery.go:188-200).
//! - `create-acm-cert: true` (EnableCertificateManagement gate) on an Ingress without hosts
//!   (model_build_certificates.go:29-33).
//! - `manage-backend-security-group-rules: true` with `security-groups` while the backend
//!   security group feature is off (model_build_load_balancer.go:322-325).
//! - Tag keys listed in the controller's `--external-managed-tags`, on an Ingress or a Service
//!   (model_build_tags.go:95-101).
//!
//! Deploying (event `FailedDeployModel`; the ELBv2 API refuses; not checkable offline):
//! - Quotas of the shared ALB, which every tenant consumes: listener rules per ALB (100 by
//!   default; every path of every Ingress is one rule on each listener it is on), target groups
//!   per ALB (100), certificates per ALB (25), listeners per ALB (50), tags per resource (50,
//!   user tags plus the controller's), target groups per forward action (5), and condition
//!   values per rule (5): the controller puts the rule's host and the `host-header` values of
//!   `conditions.*` into ONE host condition, the path patterns (two for a Prefix path) and the
//!   `path-pattern` values into ONE path condition, so they add up per rule.
//! - Values AWS rejects that [`parse`] reports as [`Failure::Deploy`], plus ARNs, policy names,
//!   attribute keys that do not exist (`certificate-arn`, `ssl-policy`,
//!   `target-group-attributes`, `load-balancer-attributes`, `listener-attributes.*`), and a
//!   health check timeout not below its interval (two keys together).
//!
//! Not failures, but reach beyond one tenant, which the policy must also stop:
//! - A rule without a host (spec.rules[].host empty) matches every host of the ALB; with a
//!   redirect action, the rule optimizer also DELETES every later rule its conditions cover
//!   (rule_optimizer.go:64-85, :179-181).
//! - The first Ingress in group order (lowest `group.order`, then namespace/name) provides the
//!   default certificate of each HTTPS listener (model_builder.go:403-412), and, with the
//!   IngressPlanAnnotation gate, receives the WHOLE group's model in `dry-run-plan`.
//! - `ssl-redirect` on one Ingress drops the rules of every HTTP listener of the group.
//! - `actions.*` may forward to any target group ARN/name of the account, and a redirect may
//!   send any matched request anywhere.
//! - JSON keys are case-insensitive and a repeated key MERGES into the earlier value (Go's
//!   `encoding/json`), so only a parser like [`parse`] sees what the controller sees.

mod actions;
mod catalog;
mod conditions;
pub mod gojson;
mod scalar;
mod values;

#[cfg(test)]
mod tests;

pub use actions::{Action, FixedResponse, Forward, Redirect, ServicePort, Target, TargetRef};
pub use conditions::{Condition, Transform, TransformKind, condition_hosts};
pub use values::{CognitoIdp, JwtValidation, ListenPort, MutualAuthentication, OidcIdp, Protocol};

use catalog::Kind;
use gojson::excerpt;
use scalar::{
    intstr_parse, is_port_name, parse_bool, parse_cidr, parse_int, parse_map, split_list,
};

/// Every annotation key of the controller starts with this.
pub const PREFIX: &str = "alb.ingress.kubernetes.io/";

/// Where a setting acts in an IngressGroup (all Ingresses with one `group.name`, one ALB).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reach {
    /// One value for the shared ALB or its listeners. `merge: false`: every Ingress that sets
    /// it must give the same value or the whole group fails. `merge: true`: the values of all
    /// Ingresses are combined (union of ports, certificates; per-key maps that fail on a key
    /// with two values).
    Group { merge: bool },
    /// Which group the Ingress is in and where its rules go in the group (`group.*`).
    Membership,
    /// Adds or changes rules and what they match (`actions.*`, `conditions.*`, ...): may
    /// name only the project's own hosts and services.
    Routing,
    /// Only this Ingress's own rules and target groups.
    Own,
}

/// The object an annotation is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Object {
    Ingress,
    /// A Service used as an Ingress backend: the controller reads target group, auth and
    /// tags annotations there too.
    Service,
}

/// What a value the controller refuses does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Failure {
    /// The controller's model build fails for the whole group (`FailedBuildModel`).
    Build,
    /// The build passes, the ELBv2 API refuses it: the whole group's deploy fails
    /// (`FailedDeployModel`).
    Deploy,
    /// The Ingress silently leaves its group.
    Dropped,
}

impl Failure {
    pub fn consequence(self) -> &'static str {
        match self {
            Failure::Build => "the controller would fail the model build of the whole ALB group",
            Failure::Deploy => {
                "AWS would refuse it and the deploy of the whole ALB group would fail"
            }
            Failure::Dropped => "the controller would silently take the Ingress out of its group",
        }
    }
}

/// A key the controller reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Known {
    /// The full key.
    pub key: String,
    /// The key without the prefix, with `<name>` for families: `actions.<name>`.
    pub suffix: &'static str,
    pub object: Object,
    pub reach: Reach,
    /// The value the controller expects, for messages.
    pub expects: &'static str,
    /// What the controller does with it across the group, with the source line.
    pub detail: &'static str,
    kind: Kind,
}

/// A key under [`PREFIX`] the controller does not read on this object (harmless: nothing uses
/// it; a typo of a real key is the likely cause).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unknown {
    pub key: String,
    pub object: Object,
    pub why: &'static str,
}

/// A value the controller refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: expected {expects}; got `{got}`: {problem} ({})", failure.consequence())]
pub struct ParseError {
    pub key: String,
    pub expects: &'static str,
    /// The value, shortened to one line.
    pub got: String,
    pub problem: String,
    pub failure: Failure,
}

/// A failure without the key (inside the parsers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    pub failure: Failure,
    pub problem: String,
}

impl Problem {
    pub fn new(failure: Failure, problem: impl Into<String>) -> Self {
        Self {
            failure,
            problem: problem.into(),
        }
    }

    pub fn build(problem: impl Into<String>) -> Self {
        Self::new(Failure::Build, problem)
    }

    pub fn deploy(problem: impl Into<String>) -> Self {
        Self::new(Failure::Deploy, problem)
    }
}

/// A parsed value: what the controller uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    Str(String),
    Bool(bool),
    Int(i64),
    List(Vec<String>),
    /// `key=value` pairs in first-appearance order, a repeated key holding its last value.
    Map(Vec<(String, String)>),
    ListenPorts(Vec<ListenPort>),
    HealthCheckPort(HealthCheckPort),
    Action(Action),
    Conditions(Vec<Condition>),
    Transforms(Vec<Transform>),
    MutualAuthentication(Vec<MutualAuthentication>),
    JwtValidation(JwtValidation),
    CognitoIdp(CognitoIdp),
    OidcIdp(OidcIdp),
    /// `(NLB port, ALB port)` pairs.
    PortMapping(Vec<(i32, i32)>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthCheckPort {
    TrafficPort,
    Number(i32),
    /// A Service port name, resolved against the backend Service.
    Name(String),
}

/// Every key the controller reads on an Ingress: `(pattern, reach, also read on a Service)`,
/// patterns of families with `<name>` (`actions.<name>`), in the catalog's order.
pub fn keys() -> impl Iterator<Item = (&'static str, Reach, bool)> {
    catalog::ENTRIES
        .iter()
        .map(|e| (e.pattern, e.reach, e.service.is_some()))
}

/// Whether `key` is one of the controller's annotations on `object`: `None` when it is not
/// under [`PREFIX`], `Some(Err)` when the controller does not read it there.
pub fn classify(object: Object, key: &str) -> Option<Result<Known, Unknown>> {
    let suffix = key.strip_prefix(PREFIX)?;
    let unknown = |why| {
        Some(Err(Unknown {
            key: key.to_string(),
            object,
            why,
        }))
    };
    let Some(entry) = catalog::find(suffix) else {
        return unknown(
            "the AWS Load Balancer Controller does not read this key (a typo? keys are case-sensitive)",
        );
    };
    let (reach, detail) = match object {
        Object::Ingress => (entry.reach, entry.detail),
        Object::Service => match entry.service {
            Some(note) => (Reach::Own, note),
            None => {
                return unknown(
                    "the controller reads only target group, auth-*, tags and multi-cluster-target-group annotations on a Service; this one belongs on the Ingress",
                );
            }
        },
    };
    Some(Ok(Known {
        key: key.to_string(),
        suffix: entry.pattern,
        object,
        reach,
        expects: entry.expects,
        detail,
        kind: entry.kind,
    }))
}

impl Known {
    /// See [`parse`].
    pub fn parse(&self, value: &str) -> Result<Parsed, ParseError> {
        parse(self, value)
    }
}

/// Parses `value` as the controller parses the annotation `known` (see the module doc for the
/// contract).
pub fn parse(known: &Known, value: &str) -> Result<Parsed, ParseError> {
    parse_kind(known.kind, value).map_err(|p| ParseError {
        key: known.key.clone(),
        expects: known.expects,
        got: excerpt(value),
        problem: p.problem,
        failure: p.failure,
    })
}

fn int(raw: &str, bits: u32) -> Result<i64, Problem> {
    parse_int(raw, bits).ok_or_else(|| Problem::build(format!("not a {bits}-bit integer")))
}

fn parse_kind(kind: Kind, raw: &str) -> Result<Parsed, Problem> {
    Ok(match kind {
        Kind::Str => Parsed::Str(raw.to_string()),
        Kind::NonEmpty if raw.is_empty() => return Err(Problem::build("cannot be empty")),
        Kind::NonEmpty => Parsed::Str(raw.to_string()),
        Kind::Bool => {
            Parsed::Bool(parse_bool(raw).ok_or_else(|| Problem::build("not a Go boolean"))?)
        }
        Kind::LenientBool => Parsed::Bool(parse_bool(raw).unwrap_or(false)),
        Kind::Int32 => Parsed::Int(int(raw, 32)?),
        Kind::Int64 => Parsed::Int(int(raw, 64)?),
        Kind::Bounded(lo, hi) => {
            let n = int(raw, 32)?;
            if !(lo..=hi).contains(&n) {
                return Err(Problem::deploy(format!("{n} is outside {lo}..{hi}")));
            }
            Parsed::Int(n)
        }
        Kind::OneOf(allowed) if allowed.contains(&raw) => Parsed::Str(raw.to_string()),
        Kind::OneOf(allowed) => {
            return Err(Problem::build(format!(
                "unknown value (exact, case-sensitive): use {}",
                allowed.join(" or ")
            )));
        }
        Kind::List => Parsed::List(split_list(raw)),
        Kind::CertArns => {
            let arns = split_list(raw);
            if let Some(a) = arns.iter().find(|a| !a.starts_with("arn:")) {
                return Err(Problem::deploy(format!("{a:?} is not an ARN")));
            }
            Parsed::List(arns)
        }
        Kind::Cidrs => {
            let cidrs = split_list(raw);
            for c in &cidrs {
                parse_cidr(c).map_err(Problem::build)?;
            }
            Parsed::List(cidrs)
        }
        Kind::Map => Parsed::Map(parse_map(raw).map_err(Problem::build)?),
        Kind::Tags => Parsed::Map(parse_tags(raw)?),
        Kind::LbAttributes => {
            let m = parse_map(raw).map_err(Problem::build)?;
            if let Some((_, v)) = m.iter().find(|(k, _)| k == "deletion_protection.enabled")
                && parse_bool(v).is_none()
            {
                return Err(Problem::build(format!(
                    "deletion_protection.enabled={v:?} is not a Go boolean"
                )));
            }
            Parsed::Map(m)
        }
        Kind::NlbAttributes => {
            let m = parse_map(raw).map_err(Problem::build)?;
            if let Some((_, v)) = m
                .iter()
                .find(|(k, _)| k == "dns_record.client_routing_policy")
                && !matches!(
                    v.as_str(),
                    "availability_zone_affinity"
                        | "partial_availability_zone_affinity"
                        | "any_availability_zone"
                )
            {
                return Err(Problem::build(format!(
                    "invalid dns_record.client_routing_policy {v:?}"
                )));
            }
            Parsed::Map(m)
        }
        Kind::Capacity => Parsed::Map(values::parse_capacity(raw)?),
        Kind::ListenPorts => Parsed::ListenPorts(values::parse_listen_ports(raw)?),
        Kind::SslRedirect => {
            let n = int(raw, 32)?;
            if !(1..=65535).contains(&n) {
                return Err(Problem::build(format!("{n} cannot be a listener port")));
            }
            Parsed::Int(n)
        }
        Kind::GroupName => {
            let ok = raw.len() <= 63
                && raw.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.'
                })
                && raw
                    .bytes()
                    .next()
                    .is_some_and(|b| b.is_ascii_alphanumeric())
                && raw
                    .bytes()
                    .last()
                    .is_some_and(|b| b.is_ascii_alphanumeric());
            if !ok {
                return Err(Problem::new(Failure::Dropped, "not a valid group name"));
            }
            Parsed::Str(raw.to_string())
        }
        Kind::GroupOrder => {
            let n = int(raw, 32)?;
            if !(-1000..=1000).contains(&n) {
                return Err(Problem::build(format!("{n} is outside -1000..1000")));
            }
            Parsed::Int(n)
        }
        Kind::LbName => {
            if raw.len() > 32 {
                return Err(Problem::build("longer than 32 characters"));
            }
            let ok = !raw.is_empty()
                && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !raw.starts_with('-')
                && !raw.ends_with('-')
                && !raw.starts_with("internal-");
            if !ok {
                return Err(Problem::deploy("not a valid load balancer name"));
            }
            Parsed::Str(raw.to_string())
        }
        Kind::HealthCheckPort | Kind::NlbHealthCheckPort => {
            let port = if raw == "traffic-port" {
                HealthCheckPort::TrafficPort
            } else {
                match intstr_parse(raw) {
                    Ok(n) => HealthCheckPort::Number(n),
                    Err(()) if kind == Kind::NlbHealthCheckPort => {
                        return Err(Problem::build(
                            "failed to resolve healthCheckPort: give a number",
                        ));
                    }
                    Err(()) if is_port_name(raw) => HealthCheckPort::Name(raw.to_string()),
                    Err(()) => {
                        return Err(Problem::build(
                            "neither traffic-port, a port number nor a valid port name: no Service port can match",
                        ));
                    }
                }
            };
            if let HealthCheckPort::Number(n) = port
                && !(1..=65535).contains(&n)
            {
                return Err(Problem::deploy(format!("port {n} is outside 1..65535")));
            }
            Parsed::HealthCheckPort(port)
        }
        Kind::HealthCheckPath => {
            if !raw.starts_with('/') || raw.len() > 1024 {
                return Err(Problem::deploy(
                    "must start with / and be at most 1024 characters",
                ));
            }
            Parsed::Str(raw.to_string())
        }
        Kind::SuccessCodes => {
            if !(codes_within(raw, 200, 499) || codes_within(raw, 0, 99)) {
                return Err(Problem::deploy(
                    "not a list or range of HTTP codes 200..499 (or gRPC codes 0..99)",
                ));
            }
            Parsed::Str(raw.to_string())
        }
        Kind::NlbSuccessCodes => {
            if !codes_within(raw, 200, 599) {
                return Err(Problem::deploy(
                    "not a list or range of HTTP codes 200..599",
                ));
            }
            Parsed::Str(raw.to_string())
        }
        Kind::OnUnauthenticated => {
            if !matches!(raw, "authenticate" | "allow" | "deny") {
                return Err(Problem::deploy("AWS accepts authenticate, allow or deny"));
            }
            Parsed::Str(raw.to_string())
        }
        Kind::WafArn => {
            if !(raw.is_empty() || raw == "none" || raw.starts_with("arn:")) {
                return Err(Problem::deploy("not an ARN (or none)"));
            }
            Parsed::Str(raw.to_string())
        }
        Kind::MutualAuthentication => {
            Parsed::MutualAuthentication(values::parse_mutual_authentication(raw)?)
        }
        Kind::JwtValidation => Parsed::JwtValidation(values::parse_jwt_validation(raw)?),
        Kind::CognitoIdp => Parsed::CognitoIdp(values::parse_cognito(raw)?),
        Kind::OidcIdp => Parsed::OidcIdp(values::parse_oidc(raw)?),
        Kind::Action => Parsed::Action(actions::parse_action(raw)?),
        Kind::Conditions => Parsed::Conditions(conditions::parse_conditions(raw)?),
        Kind::Transforms => Parsed::Transforms(conditions::parse_transforms(raw)?),
        Kind::PortMapping => Parsed::PortMapping(values::parse_port_mapping(raw)?),
    })
}

/// `N`, `N,M,...` or `N-M` items, every number within `lo..=hi` (the ELBv2 matcher syntax).
fn codes_within(raw: &str, lo: u32, hi: u32) -> bool {
    let num = |s: &str| {
        (!s.is_empty() && s.len() <= 3 && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u32>().ok())
            .flatten()
            .filter(|n| (lo..=hi).contains(n))
    };
    !raw.is_empty()
        && raw.split(',').all(|item| match item.split_once('-') {
            Some((a, b)) => matches!((num(a), num(b)), (Some(a), Some(b)) if a <= b),
            None => num(item).is_some(),
        })
}

/// Tags: the map syntax, then what ELBv2 accepts of a tag (1..128 characters of key, up to 256
/// of value, no `aws:` key prefix, letters, digits, spaces and `_.:/=+-@`).
fn parse_tags(raw: &str) -> Result<Vec<(String, String)>, Problem> {
    let tags = parse_map(raw).map_err(Problem::build)?;
    // \p{L}\p{Z}\p{N}: letters, digits and Unicode spaces, not control characters.
    let allowed = |s: &str| {
        s.chars().all(|c| {
            c.is_alphanumeric() || (c.is_whitespace() && !c.is_control()) || "_.:/=+-@".contains(c)
        })
    };
    for (k, v) in &tags {
        if k.chars().count() > 128 || v.chars().count() > 256 {
            return Err(Problem::deploy(format!(
                "tag {k:?} is too long (key 128, value 256)"
            )));
        }
        if k.to_ascii_lowercase().starts_with("aws:") {
            return Err(Problem::deploy(format!(
                "tag key {k:?}: the aws: prefix is reserved"
            )));
        }
        if !allowed(k) || !allowed(v) {
            return Err(Problem::deploy(format!(
                "tag {k:?}: only letters, digits, spaces and _.:/=+-@ are allowed"
            )));
        }
    }
    if tags.len() > 50 {
        return Err(Problem::deploy("more than 50 tags"));
    }
    Ok(tags)
}
