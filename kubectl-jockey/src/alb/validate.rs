//! `validate-alb-routing HOST`: the chain DNS → ALB → rule → target group → Service →
//! endpoints for one host, as checks; the cluster half here, the AWS, DNS and probe half in
//! [`super::validate_net`].

use super::health::{self, Evidence, Health, Scope};
use super::model::*;
use super::validate_net::{aws_checks, dns_check, probe_check};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::IpAddr;

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Pass,
    Fail,
    Skip,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Check {
    pub name: &'static str,
    pub outcome: Outcome,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Check {
    pub(super) fn pass(name: &'static str, detail: impl Into<String>) -> Self {
        Self {
            name,
            outcome: Outcome::Pass,
            detail: detail.into(),
            fix: None,
        }
    }
    pub(super) fn fail(
        name: &'static str,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self {
            name,
            outcome: Outcome::Fail,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
    pub(super) fn skip(name: &'static str, detail: impl Into<String>) -> Self {
        Self {
            name,
            outcome: Outcome::Skip,
            detail: detail.into(),
            fix: None,
        }
    }
}

/// What DNS said about one name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DnsAnswer {
    /// The CNAME chain, in order, without trailing dots.
    pub cnames: Vec<String>,
    pub ips: Vec<IpAddr>,
    /// The resolver's error (NXDOMAIN, timeout, ...), when it had no answer.
    pub error: Option<String>,
}

#[derive(Debug, Clone)]
pub enum DnsView {
    Skipped(String),
    /// The host's answer, and each ALB address's.
    Answers {
        host: DnsAnswer,
        albs: BTreeMap<String, DnsAnswer>,
    },
}

/// The result of `GET https://HOST/health`.
#[derive(Debug, Clone)]
pub enum ProbeResult {
    NotRequested,
    Status(u16),
    Error(String),
}

/// The Ingresses (in the shared groups or not) that serve `host`.
pub fn ingresses_for_host<'a>(ingresses: &'a [Ingress], host: &str) -> Vec<&'a Ingress> {
    ingresses
        .iter()
        .filter(|i| hosts(i).iter().any(|h| ingress_host_matches(h, host)))
        .collect()
}

/// The ALB addresses `validate` needs DNS answers for (the adapter resolves them).
pub fn alb_addresses_for_host(ingresses: &[Ingress], host: &str) -> Vec<String> {
    let mut out: Vec<String> = ingresses_for_host(ingresses, host)
        .into_iter()
        .flat_map(addresses)
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The backend (service name, port) the Ingress routes `host` `/` to.
fn backend_for(ing: &Ingress, host: &str) -> Option<(String, Option<i32>, Option<String>)> {
    let spec = ing.spec.as_ref()?;
    let rule_backend = spec
        .rules
        .iter()
        .flatten()
        .filter(|r| {
            r.host
                .as_deref()
                .is_some_and(|h| ingress_host_matches(h, host))
        })
        .filter_map(|r| r.http.as_ref())
        .flat_map(|h| h.paths.iter())
        // `/` is the project's route; otherwise the first path is the best we can say.
        .min_by_key(|p| p.path.as_deref() != Some("/"))
        .map(|p| &p.backend);
    let backend = rule_backend.or(spec.default_backend.as_ref())?;
    let svc = backend.service.as_ref()?;
    let port = svc.port.as_ref();
    Some((
        svc.name.clone(),
        port.and_then(|p| p.number),
        port.and_then(|p| p.name.clone()),
    ))
}

fn slice_service(s: &EndpointSlice) -> Option<&str> {
    s.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get("kubernetes.io/service-name"))
        .map(String::as_str)
}

/// Ready endpoint addresses of a Service. `ready` unset means ready (the API's rule).
pub fn ready_endpoints(slices: &[EndpointSlice], ns: &str, service: &str) -> Vec<String> {
    let mut out: Vec<String> = slices
        .iter()
        .filter(|s| {
            s.metadata.namespace.as_deref() == Some(ns) && slice_service(s) == Some(service)
        })
        .flat_map(|s| s.endpoints.iter().flatten())
        .filter(|e| e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true))
        .flat_map(|e| e.addresses.iter().cloned())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Everything `validate` needs.
pub struct ValidateInput<'a> {
    pub host: &'a str,
    pub base_group: &'a str,
    pub cluster: &'a ClusterState,
    pub aws: &'a AwsView,
    pub dns: &'a DnsView,
    pub probe: &'a ProbeResult,
}

/// Walks the chain DNS → ALB → rule → target group → Service → endpoints for one host and
/// returns every check, in the order a request travels through them backwards from the
/// Ingress. A check that cannot be evaluated because an earlier one failed is skipped, saying
/// which.
pub fn validate(input: &ValidateInput<'_>) -> Vec<Check> {
    let host = input.host.trim_end_matches('.').to_ascii_lowercase();
    let base = input.base_group;
    let cluster = input.cluster;
    let mut checks = Vec::new();

    // 1. An Ingress serves HOST in a shared group.
    let serving = ingresses_for_host(&cluster.ingresses, &host);
    let in_group: Vec<&Ingress> = serving
        .iter()
        .copied()
        .filter(|i| is_alb_ingress(i) && in_shared_groups(i, base))
        .collect();
    let describe = |i: &Ingress| format!("{}/{}", namespace(i), name(i));
    let ing =
        match (serving.as_slice(), in_group.as_slice()) {
            ([], _) => {
                checks.push(Check::fail(
                    "ingress",
                    format!("no Ingress in any namespace has a rule for host {host}"),
                    format!(
                        "deploy the project (`kubectl jockey deploy --project PROJECT`); project \
                     hosts are PROJECT.<DEPLOYMENT_DOMAIN> — check the spelling of {host}"
                    ),
                ));
                None
            }
            (_, []) => {
                let i = serving[0];
                let why = if !is_alb_ingress(i) {
                    "its ingressClassName is not alb".to_string()
                } else {
                    format!(
                        "its group.name is {:?}, not {base} or one of its shards",
                        group_of(i).unwrap_or("(none)")
                    )
                };
                checks.push(Check::fail(
                    "ingress",
                    format!(
                        "Ingress {} serves {host} but is not in the shared ALB group: {why}",
                        describe(i)
                    ),
                    format!(
                        "set spec.ingressClassName: alb and the annotation {ANNOTATION_GROUP}, or \
                     re-deploy with `kubectl jockey deploy` so the webhook fills them in"
                    ),
                ));
                None
            }
            (_, [one]) => {
                checks.push(Check::pass(
                    "ingress",
                    format!(
                        "Ingress {} serves {host} in group {}",
                        describe(one),
                        group_of(one).unwrap_or_default()
                    ),
                ));
                Some(*one)
            }
            (_, many) => {
                checks.push(Check::fail(
                "ingress",
                format!(
                    "{} Ingresses claim {host}: {}; the ALB routes it to whichever rule has the \
                     lowest priority",
                    many.len(),
                    many.iter().map(|i| describe(i)).collect::<Vec<_>>().join(", ")
                ),
                "delete the stale ones (`kubectl jockey delete PROJECT`) so exactly one remains",
            ));
                many.first().copied()
            }
        };

    let Some(ing) = ing else {
        for name in ["address", "group-settings", "service", "endpoints"] {
            checks.push(Check::skip(name, "no Ingress to check"));
        }
        aws_checks(&mut checks, &host, None, &[], input.aws);
        dns_check(&mut checks, &host, &[], input.dns);
        probe_check(&mut checks, &host, input.probe);
        return checks;
    };
    let ns = namespace(ing);
    let group = group_of(ing).unwrap_or_default();

    // 2. The controller reconciled it: an ALB address, and its group not failing now.
    let evidence = Evidence {
        ingresses: &cluster.ingresses,
        scope: &Scope::All,
        events: &cluster.events,
        elb: match input.aws {
            AwsView::Read(s) => Some(s),
            _ => None,
        },
    };
    let verdict = health::judge(&evidence, &health::group_key(ing));
    let failure = match &verdict {
        Health::Failing(f) => Some(f),
        _ => None,
    };
    let addrs = addresses(ing);
    match (addrs.first(), failure) {
        (_, Some(f)) => checks.push(Check::fail(
            "address",
            format!(
                "the controller fails group {group} (its event on Ingress {}): {}: {}",
                f.member, f.reason, f.message
            ),
            f.fix.clone(),
        )),
        (None, None) => checks.push(Check::fail(
            "address",
            format!("Ingress {} has no ALB address in its status", describe(ing)),
            format!(
                "check that the AWS Load Balancer Controller runs (`kubectl jockey alb-status`) \
                 and read its events: `kubectl describe ingress -n {ns} {}`",
                name(ing)
            ),
        )),
        (Some(a), None) => checks.push(Check::pass("address", format!("ALB address {a}"))),
    }

    // 3. Group-wide settings agree with the rest of the group.
    let others: Vec<&Ingress> = cluster
        .ingresses
        .iter()
        .filter(|o| group_of(o) == Some(group) && !(namespace(o) == ns && name(o) == name(ing)))
        .collect();
    let mut conflicts = Vec::new();
    for key in GROUP_WIDE_ANNOTATIONS {
        let full = format!("{ALB_ANNOTATION_PREFIX}{key}");
        let mine = annotation(ing, &full);
        let mut theirs: BTreeMap<Option<&str>, Vec<String>> = BTreeMap::new();
        for o in &others {
            let v = annotation(o, &full);
            if v != mine {
                theirs.entry(v).or_default().push(describe(o));
            }
        }
        for (v, who) in theirs {
            conflicts.push(format!(
                "{key}: {} here, {} on {}{}",
                mine.map_or("unset".to_string(), |m| format!("{m:?}")),
                v.map_or("unset".to_string(), |m| format!("{m:?}")),
                who[0],
                if who.len() > 1 {
                    format!(" and {} more", who.len() - 1)
                } else {
                    String::new()
                }
            ));
        }
    }
    if conflicts.is_empty() {
        checks.push(Check::pass(
            "group-settings",
            format!(
                "the load-balancer settings agree with the {} other Ingress(es) in group {group}",
                others.len()
            ),
        ));
    } else {
        checks.push(Check::fail(
            "group-settings",
            format!("group {group} disagrees on {}", conflicts.join("; ")),
            "give every Ingress in the group the same load-balancer annotations (re-deploying \
             lets the webhook set jockey's defaults); the controller rejects the whole group \
             while they differ",
        ));
    }

    // 4. The backend Service: exists, ClusterIP, 80 -> 8080.
    let backend = backend_for(ing, &host);
    let service = backend.as_ref().and_then(|(svc, _, _)| {
        cluster.services.iter().find(|s| {
            s.metadata.namespace.as_deref() == Some(ns) && s.metadata.name.as_deref() == Some(svc)
        })
    });
    match (&backend, service) {
        (None, _) => checks.push(Check::fail(
            "service",
            format!(
                "Ingress {} routes {host} to no Service backend",
                describe(ing)
            ),
            "point path / at svc-PROJECT port 80 (re-deploy with `kubectl jockey deploy`)",
        )),
        (Some((svc, _, _)), None) => checks.push(Check::fail(
            "service",
            format!(
                "Service {ns}/{svc}, the backend of {}, does not exist",
                describe(ing)
            ),
            "re-deploy the project (`kubectl jockey deploy`), which applies svc-PROJECT",
        )),
        (Some((svc, number, port_name)), Some(s)) => {
            let spec = s.spec.clone().unwrap_or_default();
            let kind = spec.type_.clone().unwrap_or_else(|| "ClusterIP".into());
            let port = spec.ports.iter().flatten().find(|p| {
                number.is_some_and(|n| p.port == n)
                    || port_name
                        .as_ref()
                        .is_some_and(|n| p.name.as_ref() == Some(n))
            });
            let wanted =
                number.map_or_else(|| port_name.clone().unwrap_or_default(), |n| n.to_string());
            if kind != "ClusterIP" {
                checks.push(Check::fail(
                    "service",
                    format!("Service {ns}/{svc} is {kind}, not ClusterIP"),
                    "jockey's ALB targets pod IPs (target-type ip) through a ClusterIP Service; \
                     set spec.type: ClusterIP",
                ));
            } else if let Some(p) = port {
                match &p.target_port {
                    Some(IntOrString::Int(8080)) => {
                        checks.push(Check::pass(
                            "service",
                            format!(
                                "Service {ns}/{svc} is ClusterIP and maps {} -> 8080",
                                p.port
                            ),
                        ));
                    }
                    Some(IntOrString::String(named)) => {
                        checks.push(Check::pass(
                            "service",
                            format!(
                                "Service {ns}/{svc} is ClusterIP and maps {} -> the named \
                                 container port {named:?}",
                                p.port
                            ),
                        ));
                    }
                    other => {
                        let to = match other {
                            Some(IntOrString::Int(n)) => n.to_string(),
                            _ => format!("{} (targetPort unset)", p.port),
                        };
                        checks.push(Check::fail(
                            "service",
                            format!("Service {ns}/{svc} maps {} -> {to}, not 8080", p.port),
                            "the agent server listens on 8080: set targetPort: 8080",
                        ));
                    }
                }
            } else {
                checks.push(Check::fail(
                    "service",
                    format!(
                        "Service {ns}/{svc} has no port {wanted}, which Ingress {} routes to",
                        describe(ing)
                    ),
                    "give the Service port 80 -> 8080 (re-deploy with `kubectl jockey deploy`)",
                ));
            }
        }
    }

    // 5. Ready endpoints.
    let mut ready_ips = Vec::new();
    match &backend {
        Some((svc, _, _)) if service.is_some() => {
            let ready = ready_endpoints(&cluster.endpoint_slices, ns, svc);
            ready_ips = ready.clone();
            if ready.is_empty() {
                checks.push(Check::fail(
                    "endpoints",
                    format!("Service {ns}/{svc} has no ready endpoints"),
                    "no pod is ready behind it: see `kubectl jockey status PROJECT` (image pull, \
                     crash loop, failing /health) and that the Service selector matches the pods",
                ));
            } else {
                checks.push(Check::pass(
                    "endpoints",
                    format!(
                        "Service {ns}/{svc} has {} ready endpoint(s): {}",
                        ready.len(),
                        ready.join(", ")
                    ),
                ));
            }
        }
        _ => checks.push(Check::skip("endpoints", "no backend Service to check")),
    }

    // 6. AWS: load balancer, listener rule, target health.
    aws_checks(&mut checks, &host, Some(ing), &ready_ips, input.aws);
    // 7. DNS.
    dns_check(&mut checks, &host, &addrs, input.dns);
    // 8. The probe.
    probe_check(&mut checks, &host, input.probe);
    checks
}

pub fn any_failed(checks: &[Check]) -> bool {
    checks.iter().any(|c| c.outcome == Outcome::Fail)
}

#[cfg(test)]
#[path = "validate_tests.rs"]
mod tests;
