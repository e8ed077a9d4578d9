//! `kubectl jockey check [--pre]`: is this installation (or this cluster, before one) healthy, in
//! the style of `linkerd check` and `flux check --pre`.
//!
//! The rules are pure, one module per group: [`cluster`], [`webhook`], [`controller`] (the AWS
//! Load Balancer Controller and what it needs of AWS), [`shared`] (the shared ALB's quotas and
//! reconciliation), [`builder`] and [`pre`]. Each takes plain facts and returns
//! [`CheckResult`]s; [`gather`] and [`aws`] are the thin adapters that read the facts from the
//! cluster and AWS, and [`run`] wires them together and prints.

pub mod aws;
pub mod builder;
pub mod cluster;
pub mod controller;
pub mod gather;
pub mod pre;
pub mod run;
pub mod shared;
pub mod webhook;

use serde::Serialize;

/// How one check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// ✓
    Ok,
    /// ‼ works now, needs attention soon (or cannot be told for sure).
    Warn,
    /// ✗ broken: `check` exits 1.
    Fail,
    /// Not checked, and why (e.g. no AWS credentials).
    Skip,
}

impl Outcome {
    pub fn symbol(self) -> &'static str {
        match self {
            Outcome::Ok => "✓",
            Outcome::Warn => "‼",
            Outcome::Fail => "✗",
            Outcome::Skip => "-",
        }
    }
}

/// One line of `check`'s output; `-o json` prints a list of these (a stable shape).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckResult {
    pub group: &'static str,
    /// Unique over all groups; the README section `check-<id>` says how to fix it.
    pub id: &'static str,
    pub outcome: Outcome,
    pub message: String,
    /// What to do, for ✗ and ‼ (null otherwise).
    pub hint: Option<String>,
    /// `README.md#check-<id>`.
    pub docs: String,
}

pub fn docs(id: &str) -> String {
    format!("README.md#check-{id}")
}

impl CheckResult {
    fn new(
        group: &'static str,
        id: &'static str,
        outcome: Outcome,
        message: String,
        hint: Option<String>,
    ) -> Self {
        Self {
            group,
            id,
            outcome,
            message,
            hint,
            docs: docs(id),
        }
    }
    pub fn ok(group: &'static str, id: &'static str, message: impl Into<String>) -> Self {
        Self::new(group, id, Outcome::Ok, message.into(), None)
    }
    pub fn warn(
        group: &'static str,
        id: &'static str,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        Self::new(group, id, Outcome::Warn, message.into(), Some(hint.into()))
    }
    pub fn fail(
        group: &'static str,
        id: &'static str,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        Self::new(group, id, Outcome::Fail, message.into(), Some(hint.into()))
    }
    pub fn skip(group: &'static str, id: &'static str, why: impl Into<String>) -> Self {
        Self::new(group, id, Outcome::Skip, why.into(), None)
    }
}

/// Every check id `check` can report, for the README's "Checking an installation" (a test keeps
/// the two equal).
#[cfg(test)]
pub const ALL_IDS: &[&str] = &[
    cluster::REACHABLE,
    cluster::VERSION,
    cluster::VERSIONS_COMPATIBLE,
    webhook::REPLICAS,
    webhook::PDB,
    webhook::CA_BUNDLE,
    webhook::CERTIFICATE,
    webhook::CA,
    webhook::FAILURE_POLICY,
    webhook::ADMISSION_POLICY,
    webhook::DRY_RUN,
    controller::READY,
    controller::CLASS,
    controller::CLASS_PARAMS,
    controller::SUBNETS,
    controller::CERTIFICATE,
    shared::QUOTAS,
    shared::RECONCILES,
    builder::NAMESPACE,
    builder::SERVICE_ACCOUNT,
    builder::POD_SECURITY,
    builder::LEFTOVER_CREDENTIALS,
    builder::CREDENTIALS,
    builder::BROKER,
    pre::CONFLICTS,
    pre::CERT_MANAGER,
    pre::RBAC,
];

/// Whether `check` fails (exit 1): any ✗.
pub fn failed(results: &[CheckResult]) -> bool {
    results.iter().any(|r| r.outcome == Outcome::Fail)
}

/// The human rendering: one block per group, in order of first appearance, ✗ and ‼ lines with
/// their hint and docs anchor, and a closing verdict.
pub fn render(results: &[CheckResult]) -> String {
    let mut groups: Vec<&str> = Vec::new();
    for r in results {
        if !groups.contains(&r.group) {
            groups.push(r.group);
        }
    }
    let mut out = String::new();
    for g in groups {
        out.push_str(g);
        out.push('\n');
        out.push_str(&"-".repeat(g.chars().count()));
        out.push('\n');
        for r in results.iter().filter(|r| r.group == g) {
            out.push_str(&format!("{} {}: {}\n", r.outcome.symbol(), r.id, r.message));
            if let Some(hint) = &r.hint {
                out.push_str(&format!("    hint: {hint}\n    see: {}\n", r.docs));
            }
        }
        out.push('\n');
    }
    let count = |o| results.iter().filter(|r| r.outcome == o).count();
    let (fails, warns) = (count(Outcome::Fail), count(Outcome::Warn));
    out.push_str(&if fails > 0 {
        format!("Status check results are ✗ ({fails} failed, {warns} warning(s))\n")
    } else if warns > 0 {
        format!("Status check results are ‼ ({warns} warning(s))\n")
    } else {
        "Status check results are ✓\n".to_string()
    });
    out
}

/// Days (rounded down) from `now` to `not_after`, both Unix seconds; negative once past.
pub fn days_left(not_after: i64, now: i64) -> i64 {
    (not_after - now).div_euclid(86_400)
}

/// Readiness of a Deployment, as the rules need it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Replicas {
    pub desired: i32,
    pub ready: i32,
    pub available: i32,
}

impl Replicas {
    pub fn of(d: &k8s_openapi::api::apps::v1::Deployment) -> Self {
        let status = d.status.clone().unwrap_or_default();
        Self {
            desired: d.spec.replicas.unwrap_or(1),
            ready: status.ready_replicas.unwrap_or(0),
            available: status.available_replicas.unwrap_or(0),
        }
    }
    pub fn all_available(&self) -> bool {
        self.desired > 0 && self.available >= self.desired
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendering_groups_lines_with_hints_and_a_verdict() {
        let results = vec![
            CheckResult::ok("cluster", "cluster-reachable", "API server v1.37.2"),
            CheckResult::fail(
                "webhook",
                "webhook-replicas",
                "0/2 ready",
                "kubectl -n x describe deploy",
            ),
            CheckResult::warn("cluster", "cluster-version", "old", "upgrade"),
        ];
        let text = render(&results);
        assert_eq!(
            text,
            "cluster\n-------\n✓ cluster-reachable: API server v1.37.2\n‼ cluster-version: old\n    \
             hint: upgrade\n    see: README.md#check-cluster-version\n\nwebhook\n-------\n✗ \
             webhook-replicas: 0/2 ready\n    hint: kubectl -n x describe deploy\n    see: \
             README.md#check-webhook-replicas\n\nStatus check results are ✗ (1 failed, 1 \
             warning(s))\n"
        );
        assert!(failed(&results));
        assert!(!failed(&results[..1]));
        assert!(render(&results[..1]).ends_with("results are ✓\n"));
        assert!(render(&results[2..]).ends_with("results are ‼ (1 warning(s))\n"));
    }

    #[test]
    fn json_shape_is_stable() {
        let v = serde_json::to_value(CheckResult::fail("g", "cluster-version", "m", "h")).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"group": "g", "id": "cluster-version", "outcome": "fail",
                "message": "m", "hint": "h", "docs": "README.md#check-cluster-version"})
        );
        let v = serde_json::to_value(CheckResult::ok("g", "cluster-version", "m")).unwrap();
        assert_eq!(v["hint"], serde_json::Value::Null);
        assert_eq!(v["outcome"], "ok");
    }

    /// Every id has its README section, and the README lists no id `check` does not know.
    #[test]
    fn readme_documents_every_check_id() {
        let readme = include_str!("../../../README.md");
        for id in ALL_IDS {
            assert!(
                readme.contains(&format!("#### check-{id}\n")),
                "README.md has no section `#### check-{id}`"
            );
        }
        let listed = readme.matches("#### check-").count();
        assert_eq!(
            listed,
            ALL_IDS.len(),
            "README lists check ids check does not know"
        );
        let mut ids = ALL_IDS.to_vec();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), ALL_IDS.len(), "duplicate check ids");
    }

    #[test]
    fn days_left_rounds_down_and_goes_negative() {
        assert_eq!(days_left(86_400 * 10, 0), 10);
        assert_eq!(days_left(86_400 * 10 - 1, 0), 9);
        assert_eq!(days_left(0, 1), -1);
    }
}
