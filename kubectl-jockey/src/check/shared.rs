//! The shared ALB: each shard's rules, target groups and certificates against the quotas of one
//! load balancer (counted by [`crate::alb::report::status`], on the load balancer itself when
//! AWS is readable, else estimated from the Ingresses), with headroom, and whether each group
//! reconciles (the one judgement of a group, [`crate::alb::health::judge`]).

use super::CheckResult;
use crate::alb::health::{self, Evidence, Health, Scope};
use crate::alb::report::{self, AwsView, ClusterState, Usage};
use k8s_openapi::api::networking::v1::Ingress;
use std::collections::{BTreeMap, BTreeSet};

pub const GROUP: &str = "shared-alb";
pub const QUOTAS: &str = "shared-alb-quotas";
pub const RECONCILES: &str = "shared-alb-reconciles";

/// A quota used to this fraction (in percent) or more is a warning: a few more projects fill it.
pub const HEADROOM_WARN_PERCENT: usize = 80;
const ANNOTATION_CERTIFICATE_ARN: &str = "alb.ingress.kubernetes.io/certificate-arn";

/// Per load balancer; the policy file carries the account's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quotas {
    pub rules: usize,
    pub target_groups: usize,
    pub certificates: usize,
}

impl Quotas {
    pub fn of(policy: &jockey_core::policy::Policy) -> Self {
        Self {
            rules: policy.rule_quota,
            target_groups: policy.target_group_quota,
            certificates: policy.certificate_quota,
        }
    }
}

#[derive(Debug, Clone)]
pub struct SharedFacts {
    /// Ingresses and their events across all namespaces.
    pub state: ClusterState,
    pub aws: AwsView,
    /// ALB_SHARED_GROUP_NAME and DEPLOYMENT_DOMAIN.
    pub base: String,
    pub domain: String,
    pub quotas: Quotas,
}

/// Certificates a group's listeners carry beyond the default one: the distinct ARNs its
/// Ingresses name, less the first (the default certificate is not counted against the quota).
pub fn certificates_used(members: &[&Ingress]) -> usize {
    let arns: BTreeSet<String> = members
        .iter()
        .filter_map(|i| {
            i.metadata
                .annotations
                .as_ref()?
                .get(ANNOTATION_CERTIFICATE_ARN)
        })
        .flat_map(|v| v.split(',').map(|a| a.trim().to_string()))
        .filter(|a| !a.is_empty())
        .collect();
    arns.len().saturating_sub(1)
}

/// Each shared group's health now, by the one judgement of a group ([`health::judge`]): the
/// members' controller events, weighed against the members' changes and, where AWS was read,
/// the ALB's listener rules. A group without members (the base group is listed even empty) has
/// nothing to reconcile and is left out.
pub fn group_health(f: &SharedFacts, status: &report::Status) -> BTreeMap<String, Health> {
    let evidence = Evidence {
        ingresses: &f.state.ingresses,
        scope: &Scope::All,
        events: &f.state.events,
        elb: match &f.aws {
            AwsView::Read(s) => Some(s),
            _ => None,
        },
    };
    status
        .groups
        .iter()
        .filter(|g| g.ingresses > 0)
        .map(|g| (g.group.clone(), health::judge(&evidence, &g.group)))
        .collect()
}

fn usage_line(what: &str, used: usize, quota: usize, source: &str) -> (String, u8) {
    let level = if quota == 0 || used >= quota {
        2
    } else if used * 100 >= quota * HEADROOM_WARN_PERCENT {
        1
    } else {
        0
    };
    (format!("{what} {used}/{quota} ({source})"), level)
}

pub fn checks(f: &SharedFacts) -> Vec<CheckResult> {
    let status = report::status(&f.state, &f.aws, &f.base, &f.domain);
    vec![quotas(f, &status), reconciles(f, &status)]
}

fn quotas(f: &SharedFacts, status: &report::Status) -> CheckResult {
    let mut lines = Vec::new();
    let mut worst = 0u8;
    for g in &status.groups {
        let members: Vec<&Ingress> = f
            .state
            .ingresses
            .iter()
            .filter(|i| report::group_of(i) == Some(g.group.as_str()))
            .collect();
        let counted =
            |u: &Usage, quota: usize, what: &str| usage_line(what, u.used, quota, u.source);
        let parts = [
            counted(&g.rules, f.quotas.rules, "rules"),
            counted(&g.target_groups, f.quotas.target_groups, "target groups"),
            usage_line(
                "certificates",
                certificates_used(&members),
                f.quotas.certificates,
                "estimate",
            ),
        ];
        worst = worst.max(parts.iter().map(|p| p.1).max().unwrap_or(0));
        lines.push(format!(
            "{}: {}",
            g.group,
            parts
                .iter()
                .map(|p| p.0.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let msg = lines.join("; ");
    let hint = format!(
        "new projects go to the next shard once a group is full (policy sharding.capacity); \
         lower sharding.capacity so that shards fill before the quota, or raise the quota in \
         Service Quotas and then ruleQuota/targetGroupQuota/certificateQuota in the policy \
         (at {HEADROOM_WARN_PERCENT}% a warning, at the quota a failure)"
    );
    match worst {
        0 => CheckResult::ok(GROUP, QUOTAS, msg),
        1 => CheckResult::warn(GROUP, QUOTAS, msg, hint),
        _ => CheckResult::fail(GROUP, QUOTAS, msg, hint),
    }
}

fn reconciles(f: &SharedFacts, status: &report::Status) -> CheckResult {
    let health = group_health(f, status);
    let mut failing = Vec::new();
    let mut fixes = Vec::new();
    let mut unknown = Vec::new();
    for (g, h) in &health {
        match h {
            Health::Healthy { .. } => {}
            Health::Failing(x) => {
                failing.push(format!(
                    "group {g}: {} on Ingress {}: {}",
                    x.reason, x.member, x.message
                ));
                fixes.push(x.fix.clone());
            }
            Health::Unknown { why } => unknown.push(format!("group {g}: {why}")),
        }
    }
    if !failing.is_empty() {
        fixes.push(
            "`kubectl jockey alb-status` lists the failures, `kubectl jockey \
             validate-alb-routing HOST` checks one host"
                .to_string(),
        );
        return CheckResult::fail(GROUP, RECONCILES, failing.join("; "), fixes.join("; "));
    }
    if !unknown.is_empty() {
        return CheckResult::warn(
            GROUP,
            RECONCILES,
            unknown.join("; "),
            "deploy a project to the group (or `kubectl annotate` one of its Ingresses) so that \
             the controller reconciles it again, or run the check with AWS readable so that the \
             ALB's listener rules tell; `kubectl jockey alb-status` shows the group",
        );
    }
    if health.is_empty() {
        return CheckResult::ok(
            GROUP,
            RECONCILES,
            "no Ingress is in a shared group yet: nothing to reconcile",
        );
    }
    CheckResult::ok(
        GROUP,
        RECONCILES,
        format!(
            "{} group(s) reconcile ({})",
            health.len(),
            health.keys().cloned().collect::<Vec<_>>().join(", ")
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Outcome;
    use k8s_openapi::api::core::v1::Event;

    fn ingress(ns: &str, name: &str, group: &str, cert: Option<&str>) -> Ingress {
        let mut annotations = serde_json::json!({ report::ANNOTATION_GROUP: group });
        if let Some(c) = cert {
            annotations[ANNOTATION_CERTIFICATE_ARN] = serde_json::json!(c);
        }
        serde_json::from_value(serde_json::json!({
            "metadata": {"namespace": ns, "name": name, "annotations": annotations,
                         "labels": {"jockey.agentops.ai/project": name}},
            "spec": {"ingressClassName": "alb", "rules": [{"host": format!("{name}.d.example"),
                "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": {"service":
                    {"name": format!("svc-{name}"), "port": {"number": 80}}}}]}}]}
        }))
        .unwrap()
    }

    fn event(ns: &str, ing: &str, reason: &str, at: &str) -> Event {
        serde_json::from_value(serde_json::json!({
            "metadata": {"namespace": ns, "name": format!("{ing}.{reason}")},
            "involvedObject": {"kind": "Ingress", "namespace": ns, "name": ing},
            "reason": reason, "message": format!("{reason} happened"),
            "lastTimestamp": at
        }))
        .unwrap()
    }

    fn facts(ingresses: Vec<Ingress>, quotas: Quotas) -> SharedFacts {
        SharedFacts {
            state: ClusterState {
                ingresses,
                ..Default::default()
            },
            aws: AwsView::Skipped("--no-aws".into()),
            base: "g".into(),
            domain: "d.example".into(),
            quotas,
        }
    }

    const ROOMY: Quotas = Quotas {
        rules: 100,
        target_groups: 100,
        certificates: 25,
    };

    fn find(f: &SharedFacts, id: &str) -> CheckResult {
        checks(f).into_iter().find(|r| r.id == id).unwrap()
    }

    #[test]
    fn groups_with_room_pass_and_show_their_usage() {
        let f = facts(
            vec![
                ingress("a", "p1", "g", None),
                ingress("b", "p2", "g-2", None),
            ],
            ROOMY,
        );
        let r = find(&f, QUOTAS);
        assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
        assert!(
            r.message.contains("g: rules 1/100 (estimate)"),
            "{}",
            r.message
        );
        assert!(r.message.contains("g-2: rules 1/100"), "{}", r.message);
    }

    #[test]
    fn no_member_in_any_group_has_nothing_to_reconcile() {
        let r = find(&facts(vec![], ROOMY), RECONCILES);
        assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
        assert!(r.message.contains("nothing to reconcile"), "{}", r.message);
    }

    #[test]
    fn a_group_without_any_outcome_is_a_warning_and_a_success_makes_it_pass() {
        let mut f = facts(
            vec![
                ingress("a", "p1", "g", None),
                ingress("b", "p2", "g-2", None),
            ],
            ROOMY,
        );
        let r = find(&f, RECONCILES);
        assert_eq!(r.outcome, Outcome::Warn, "{r:?}");
        assert!(
            r.message
                .contains("group g: the controller has recorded no outcome")
                && r.message.contains("group g-2:"),
            "{}",
            r.message
        );
        assert!(r.hint.unwrap().contains("alb-status"));
        f.state.events = vec![
            event("a", "p1", "SuccessfullyReconciled", "2026-01-01T00:00:00Z"),
            event("b", "p2", "SuccessfullyReconciled", "2026-01-01T00:00:00Z"),
        ];
        let r = find(&f, RECONCILES);
        assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
        assert_eq!(r.message, "2 group(s) reconcile (g, g-2)");
    }

    #[test]
    fn a_quota_near_full_warns_and_a_full_one_fails() {
        let two = vec![ingress("a", "p1", "g", None), ingress("a", "p2", "g", None)];
        let r = find(&facts(two.clone(), Quotas { rules: 2, ..ROOMY }), QUOTAS);
        assert_eq!(r.outcome, Outcome::Fail);
        assert!(r.message.contains("rules 2/2"), "{}", r.message);
        assert!(r.hint.unwrap().contains("sharding.capacity"));
        let r = find(
            &facts(
                two.clone(),
                Quotas {
                    target_groups: 2,
                    ..ROOMY
                },
            ),
            QUOTAS,
        );
        assert_eq!(r.outcome, Outcome::Fail, "{r:?}");
        let r = find(&facts(two, Quotas { rules: 3, ..ROOMY }), QUOTAS);
        assert_eq!(r.outcome, Outcome::Ok, "2/3 is under 80%: {r:?}");
        let four: Vec<Ingress> = (0..4)
            .map(|i| ingress("a", &format!("p{i}"), "g", None))
            .collect();
        let r = find(&facts(four, Quotas { rules: 5, ..ROOMY }), QUOTAS);
        assert_eq!(r.outcome, Outcome::Warn, "{r:?}");
    }

    #[test]
    fn certificates_count_distinct_arns_beyond_the_default() {
        let a = ingress("a", "p1", "g", Some("arn:1,arn:2"));
        let b = ingress("a", "p2", "g", Some("arn:2, arn:3"));
        let c = ingress("a", "p3", "g", None);
        assert_eq!(certificates_used(&[&a, &b, &c]), 2);
        assert_eq!(certificates_used(&[&c]), 0);
        let r = find(
            &facts(
                vec![a, b],
                Quotas {
                    certificates: 2,
                    ..ROOMY
                },
            ),
            QUOTAS,
        );
        assert_eq!(r.outcome, Outcome::Fail);
        assert!(r.message.contains("certificates 2/2"), "{}", r.message);
    }

    #[test]
    fn a_current_failure_of_a_member_fails_its_group_and_a_superseded_one_does_not() {
        let mut f = facts(
            vec![
                ingress("a", "p1", "g", None),
                ingress("b", "p2", "g-2", None),
            ],
            ROOMY,
        );
        f.state.events = vec![
            event("a", "p1", "FailedDeployModel", "2026-01-01T00:00:00Z"),
            event("b", "p2", "FailedBuildModel", "2026-01-01T00:00:00Z"),
            event("b", "p2", "SuccessfullyReconciled", "2026-01-01T00:01:00Z"),
            // About an Ingress that is gone: not the group's. (The same failure recorded later
            // on a gone Ingress would mark a/p1's as stale: the group changed since.)
            event("c", "gone", "FailedBuildModel", "2026-01-01T00:02:00Z"),
        ];
        let r = find(&f, RECONCILES);
        assert_eq!(r.outcome, Outcome::Fail);
        assert!(
            r.message
                .starts_with("group g: FailedDeployModel on Ingress a/p1")
                && !r.message.contains("g-2")
                && !r.message.contains("gone"),
            "{}",
            r.message
        );
        let hint = r.hint.unwrap();
        assert!(
            hint.contains("alb-status") && hint.contains("no project in group g gets changes"),
            "{hint}"
        );
    }
}
