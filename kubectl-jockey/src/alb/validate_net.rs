//! The AWS, DNS and probe checks of `validate-alb-routing`: what the ELBv2 snapshot, the
//! resolver and `GET /health` say about one host.

use super::elb::{ElbSnapshot, TargetGroup};
use super::model::*;
use super::routes::{Forward, listener_label, route_host, target_health};
use super::validate::{Check, DnsView, ProbeResult};
use k8s_openapi::api::networking::v1::Ingress;
use std::collections::BTreeSet;
use std::net::IpAddr;

/// `endpoints`: the Service's ready endpoint addresses, to compare with the registered targets.
pub(super) fn aws_checks(
    checks: &mut Vec<Check>,
    host: &str,
    ing: Option<&Ingress>,
    endpoints: &[String],
    aws: &AwsView,
) {
    const NAMES: [&str; 4] = [
        "load-balancer",
        "listener-rule",
        "target-health",
        "targets-are-endpoints",
    ];
    let snap = match aws {
        AwsView::Read(s) => s,
        AwsView::Skipped(why) => {
            for n in NAMES {
                checks.push(Check::skip(n, format!("AWS not consulted: {why}")));
            }
            return;
        }
        AwsView::Failed(why) => {
            checks.push(Check::fail(
                NAMES[0],
                format!("cannot read the ALB: {why}"),
                "fix the AWS access named above, or pass --no-aws to check only the cluster",
            ));
            for n in &NAMES[1..] {
                checks.push(Check::skip(n, "the ELBv2 API could not be read"));
            }
            return;
        }
    };
    let Some(ing) = ing else {
        for n in NAMES {
            checks.push(Check::skip(n, "no Ingress, so no ALB to look at"));
        }
        return;
    };
    let addrs = addresses(ing);
    let group = group_of(ing).unwrap_or_default();
    let lb = addrs
        .iter()
        .find_map(|a| snap.by_dns_name(a))
        .or_else(|| snap.by_group(group));
    let Some(lb) = lb else {
        checks.push(Check::fail(
            "load-balancer",
            format!(
                "no load balancer {} in this AWS account and region",
                addrs.first().map_or_else(
                    || format!("tagged {}={group}", super::elb::TAG_STACK),
                    |a| format!("with DNS name {a}")
                )
            ),
            "check AWS_REGION / the AWS profile point at the cluster's account, and the \
             controller's events (`kubectl jockey alb-status`)",
        ));
        for n in &NAMES[1..] {
            checks.push(Check::skip(n, "no load balancer found"));
        }
        return;
    };
    if lb.state == "active" {
        checks.push(Check::pass(
            "load-balancer",
            format!("{} ({}) is active, {}", lb.name, lb.dns_name, lb.scheme),
        ));
    } else {
        checks.push(Check::fail(
            "load-balancer",
            format!(
                "{} ({}) is {:?}, not active",
                lb.name, lb.dns_name, lb.state
            ),
            "wait for provisioning to finish, or look at the load balancer in the AWS console",
        ));
    }

    let (matched, forwards) = route_host(lb, host);
    if forwards.is_empty() {
        let listeners = lb
            .listeners
            .iter()
            .map(|l| listener_label(&l.protocol, l.port))
            .collect::<Vec<_>>()
            .join(", ");
        let detail = match matched.first() {
            Some((l, r)) => format!(
                "the rule for {host} on {} (priority {}) does not forward: {:?}",
                listener_label(&l.protocol, l.port),
                r.priority,
                r.action
            ),
            None => format!(
                "no listener rule on {} ({}) matches host {host}",
                lb.name,
                if listeners.is_empty() {
                    "no listeners".to_string()
                } else {
                    listeners
                }
            ),
        };
        checks.push(Check::fail(
            "listener-rule",
            detail,
            "the controller has not (yet) written the Ingress's rule: check its events \
             (`kubectl jockey alb-status`) and that the Ingress host is spelled as requested",
        ));
        for n in &NAMES[2..] {
            checks.push(Check::skip(n, "no rule forwards the host"));
        }
        return;
    }
    checks.push(Check::pass(
        "listener-rule",
        forwards
            .iter()
            .map(|(l, r, tgs)| {
                format!(
                    "{} rule priority {} forwards {host} to {}",
                    listener_label(&l.protocol, l.port),
                    r.priority,
                    tgs.iter()
                        .map(|a| snap.target_group(a).map_or(a.as_str(), |t| t.name.as_str()))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
            .collect::<Vec<_>>()
            .join("; "),
    ));

    let (healthy_parts, bad) = target_health(snap, &forwards);
    if bad.is_empty() {
        checks.push(Check::pass("target-health", healthy_parts.join("; ")));
        checks.push(targets_are_endpoints(snap, &forwards, endpoints));
    } else {
        checks.push(Check::fail(
            "target-health",
            bad.join("; "),
            "the ALB health check is GET /health on port 8080 expecting 200: check the pods \
             answer it (`kubectl jockey logs PROJECT`), that the endpoints above are the \
             registered targets, and that the pods' security group admits the ALB",
        ));
        checks.push(Check::skip(
            "targets-are-endpoints",
            "no healthy target to compare",
        ));
    }
}

/// With `target-type: ip` the targets are pod IPs, registered by the controller from the
/// Service's endpoints. Healthy targets that are none of the current endpoints mean the ALB
/// serves pods that are gone or not this project's: the controller stopped syncing.
fn targets_are_endpoints(
    snap: &ElbSnapshot,
    forwards: &[Forward<'_>],
    endpoints: &[String],
) -> Check {
    const NAME: &str = "targets-are-endpoints";
    let tgs: Vec<&TargetGroup> = forwards
        .iter()
        .flat_map(|(_, _, arns)| arns.iter())
        .filter_map(|a| snap.target_group(a))
        .filter(|t| t.target_type == "ip")
        .collect();
    if tgs.is_empty() {
        return Check::skip(
            NAME,
            "no target group of type ip (instance targets are nodes)",
        );
    }
    if endpoints.is_empty() {
        return Check::skip(NAME, "no ready endpoints to compare with");
    }
    let healthy: Vec<&str> = tgs
        .iter()
        .flat_map(|t| t.targets.iter())
        .filter(|t| t.state == "healthy")
        .map(|t| t.id.as_str())
        .collect();
    let matching = healthy
        .iter()
        .filter(|id| endpoints.iter().any(|e| e == *id))
        .count();
    if matching > 0 {
        Check::pass(
            NAME,
            format!(
                "{matching} of {} healthy target(s) are ready endpoints of the Service",
                healthy.len()
            ),
        )
    } else {
        Check::fail(
            NAME,
            format!(
                "the healthy targets ({}) are none of the Service's ready endpoints ({})",
                healthy.join(", "),
                endpoints.join(", ")
            ),
            "the AWS Load Balancer Controller has not synced the target group: check its \
             pods and logs (`kubectl jockey alb-status`) and the Ingress's TargetGroupBinding",
        )
    }
}

pub(super) fn dns_check(checks: &mut Vec<Check>, host: &str, addrs: &[String], dns: &DnsView) {
    let (answer, albs) = match dns {
        DnsView::Skipped(why) => {
            checks.push(Check::skip("dns", why.clone()));
            return;
        }
        DnsView::Answers { host, albs } => (host, albs),
    };
    if addrs.is_empty() {
        checks.push(Check::skip("dns", "no ALB address to compare with"));
        return;
    }
    let norm = |s: &str| s.trim_end_matches('.').to_ascii_lowercase();
    if let Some(err) = &answer.error
        && answer.ips.is_empty()
        && answer.cnames.is_empty()
    {
        checks.push(Check::fail(
            "dns",
            format!("{host} does not resolve: {err}"),
            format!(
                "create a CNAME (or Route 53 alias) {host} -> {} — `kubectl jockey alb-status` \
                 lists the records each shard needs",
                addrs[0]
            ),
        ));
        return;
    }
    let via_cname = answer
        .cnames
        .iter()
        .find(|c| addrs.iter().any(|a| norm(a) == norm(c)));
    if let Some(c) = via_cname {
        checks.push(Check::pass(
            "dns",
            format!("{host} is a CNAME for the ALB {c}"),
        ));
        return;
    }
    let alb_ips: BTreeSet<IpAddr> = addrs
        .iter()
        .filter_map(|a| albs.get(a))
        .flat_map(|a| a.ips.iter().copied())
        .collect();
    let shared: Vec<IpAddr> = answer
        .ips
        .iter()
        .copied()
        .filter(|ip| alb_ips.contains(ip))
        .collect();
    if !shared.is_empty() {
        checks.push(Check::pass(
            "dns",
            format!(
                "{host} resolves to {} — addresses of the ALB {} (an alias record)",
                shared
                    .iter()
                    .map(|i| i.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                addrs[0]
            ),
        ));
        return;
    }
    let got = answer
        .cnames
        .iter()
        .cloned()
        .chain(answer.ips.iter().map(|i| i.to_string()))
        .collect::<Vec<_>>()
        .join(", ");
    checks.push(Check::fail(
        "dns",
        format!(
            "{host} resolves to {got}, which is not the ALB {}{}",
            addrs[0],
            if alb_ips.is_empty() {
                " (whose own name did not resolve)".to_string()
            } else {
                String::new()
            }
        ),
        format!(
            "point {host} at {} (CNAME or alias); if the project moved to another shard its \
             record must follow — see `kubectl jockey alb-status`",
            addrs[0]
        ),
    ));
}

pub(super) fn probe_check(checks: &mut Vec<Check>, host: &str, probe: &ProbeResult) {
    match probe {
        ProbeResult::NotRequested => {}
        ProbeResult::Status(200) => checks.push(Check::pass(
            "probe",
            format!("GET https://{host}/health answered 200"),
        )),
        ProbeResult::Status(code) => checks.push(Check::fail(
            "probe",
            format!("GET https://{host}/health answered {code}"),
            "502/503/504 mean no healthy target; 404 means the ALB matched no rule; \
             see the checks above and `kubectl jockey logs PROJECT`",
        )),
        ProbeResult::Error(e) => checks.push(Check::fail(
            "probe",
            format!("GET https://{host}/health failed: {e}"),
            "check DNS and the HTTPS listener's certificate covers the host",
        )),
    }
}
