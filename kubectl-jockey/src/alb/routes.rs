//! How the ALB routes a host, read from the ELBv2 snapshot: the rule that matches it on each
//! listener, where it forwards, and the health of those target groups. Shared by `alb-status`
//! and `validate-alb-routing`.

use super::elb::{Action, ElbSnapshot, LoadBalancer};
use super::model::alb_host_matches;

pub fn listener_label(protocol: &str, port: i32) -> String {
    format!("{protocol}:{port}")
}

pub type Forward<'a> = (
    &'a super::elb::Listener,
    &'a super::elb::Rule,
    &'a Vec<String>,
);

/// The first rule by priority matching `host` on each listener (`matched`), and those of them
/// that forward (`forwards`). HTTP listeners that only redirect (ssl-redirect) have none.
pub fn route_host<'a>(
    lb: &'a LoadBalancer,
    host: &str,
) -> (
    Vec<(&'a super::elb::Listener, &'a super::elb::Rule)>,
    Vec<Forward<'a>>,
) {
    let mut matched = Vec::new();
    for l in &lb.listeners {
        let mut rules: Vec<_> = l
            .rules
            .iter()
            .filter(|r| !r.is_default && r.hosts.iter().any(|h| alb_host_matches(h, host)))
            .collect();
        rules.sort_by_key(|r| r.priority.parse::<u32>().unwrap_or(u32::MAX));
        if let Some(r) = rules.first() {
            matched.push((l, *r));
        }
    }
    let forwards = matched
        .iter()
        .filter_map(|(l, r)| match &r.action {
            Action::Forward { target_groups } => Some((*l, *r, target_groups)),
            _ => None,
        })
        .collect();
    (matched, forwards)
}

/// Per forwarded target group: "name: h/n healthy" when some target is healthy, else what is
/// wrong (no such group, no targets, or each target's state and reason).
pub fn target_health(snap: &ElbSnapshot, forwards: &[Forward<'_>]) -> (Vec<String>, Vec<String>) {
    let mut tg_arns: Vec<&String> = forwards.iter().flat_map(|(_, _, t)| t.iter()).collect();
    tg_arns.sort();
    tg_arns.dedup();
    let mut healthy_parts = Vec::new();
    let mut bad = Vec::new();
    for arn in tg_arns {
        let Some(tg) = snap.target_group(arn) else {
            bad.push(format!("target group {arn} does not exist"));
            continue;
        };
        let healthy = tg.healthy();
        if healthy > 0 {
            healthy_parts.push(format!(
                "{}: {healthy}/{} healthy",
                tg.name,
                tg.targets.len()
            ));
            continue;
        }
        let states = if tg.targets.is_empty() {
            "no targets registered".to_string()
        } else {
            tg.targets
                .iter()
                .map(|t| {
                    let why = match (&t.reason, &t.description) {
                        (Some(r), Some(d)) => format!(" ({r}: {d})"),
                        (Some(r), None) => format!(" ({r})"),
                        _ => String::new(),
                    };
                    format!("{}:{} {}{why}", t.id, t.port, t.state)
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        bad.push(format!(
            "target group {} has no healthy target: {states}",
            tg.name
        ));
    }
    (healthy_parts, bad)
}
