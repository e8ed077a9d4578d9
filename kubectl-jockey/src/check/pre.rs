//! `check --pre`: what `kubectl jockey install` needs before it runs: no webhook configuration
//! or admission policy of the same name that another tool made, cert-manager's CRDs when asked
//! for, and the RBAC of whoever runs it (a SelfSubjectAccessReview per verb and resource of
//! what install applies). The cluster's version and the ALB controller are the other groups'.

use super::CheckResult;

pub const GROUP: &str = "pre-install";
pub const CONFLICTS: &str = "pre-conflicts";
pub const CERT_MANAGER: &str = "pre-cert-manager";
pub const RBAC: &str = "pre-rbac";

/// The CRDs a cert-manager install serves that jockey's cert-manager mode uses.
pub const CERT_MANAGER_CRDS: &[&str] = &["certificates.cert-manager.io", "issuers.cert-manager.io"];

/// An object of a name install writes that exists already.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Existing {
    pub kind: String,
    pub name: String,
    /// Labelled `app.kubernetes.io/managed-by: kubectl-jockey` (an earlier install).
    pub ours: bool,
}

/// One SelfSubjectAccessReview's question and answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    pub verb: String,
    pub group: String,
    pub resource: String,
    /// `None`: cluster-scoped (or all namespaces).
    pub namespace: Option<String>,
    pub allowed: bool,
}

impl Access {
    pub fn describe(&self) -> String {
        let resource = if self.group.is_empty() {
            self.resource.clone()
        } else {
            format!("{}.{}", self.resource, self.group)
        };
        match &self.namespace {
            Some(ns) => format!("{} {resource} in {ns}", self.verb),
            None => format!("{} {resource}", self.verb),
        }
    }
}

/// Each part, or why it could not be read (someone who may not install may not read either):
/// one unreadable part fails its own check only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreFacts {
    pub existing: Result<Vec<Existing>, String>,
    /// `None`: not asked for (`--cert-manager`); else each CRD and whether it exists.
    pub cert_manager: Option<Result<Vec<(String, bool)>, String>>,
    pub access: Result<Vec<Access>, String>,
}

fn unreadable(id: &'static str, why: &str) -> CheckResult {
    CheckResult::fail(
        GROUP,
        id,
        format!("could not read it: {why}"),
        "run check --pre as the cluster admin who will install",
    )
}

pub fn checks(f: &PreFacts) -> Vec<CheckResult> {
    let mut out = vec![conflicts(f)];
    out.extend(cert_manager(f));
    out.push(rbac(f));
    out
}

fn conflicts(f: &PreFacts) -> CheckResult {
    let existing = match &f.existing {
        Ok(e) => e,
        Err(why) => return unreadable(CONFLICTS, why),
    };
    let foreign: Vec<String> = existing
        .iter()
        .filter(|e| !e.ours)
        .map(|e| format!("{} {}", e.kind, e.name))
        .collect();
    let ours = existing.iter().filter(|e| e.ours).count();
    if foreign.is_empty() {
        CheckResult::ok(
            GROUP,
            CONFLICTS,
            if ours > 0 {
                format!(
                    "{ours} object(s) of an earlier install (install updates them), none of another tool"
                )
            } else {
                "no webhook configuration or admission policy of the same name".to_string()
            },
        )
    } else {
        CheckResult::fail(
            GROUP,
            CONFLICTS,
            format!(
                "{} exist(s) and kubectl-jockey did not make them: install would take them over",
                foreign.join(", ")
            ),
            "install with another --name, or remove what the other tool (e.g. a Helm release) \
             made first",
        )
    }
}

fn cert_manager(f: &PreFacts) -> Option<CheckResult> {
    let crds = match f.cert_manager.as_ref()? {
        Ok(c) => c,
        Err(why) => return Some(unreadable(CERT_MANAGER, why)),
    };
    {
        let missing: Vec<&str> = crds
            .iter()
            .filter(|(_, present)| !present)
            .map(|(n, _)| n.as_str())
            .collect();
        Some(if missing.is_empty() {
            CheckResult::ok(GROUP, CERT_MANAGER, "cert-manager's CRDs are installed")
        } else {
            CheckResult::fail(
                GROUP,
                CERT_MANAGER,
                format!(
                    "CRD(s) {} missing: cert-manager is not installed",
                    missing.join(", ")
                ),
                "install cert-manager first (https://cert-manager.io/docs/installation/), or let \
                 install manage the certificates itself (leave out cert-manager)",
            )
        })
    }
}

fn rbac(f: &PreFacts) -> CheckResult {
    let access = match &f.access {
        Ok(a) => a,
        Err(why) => return unreadable(RBAC, why),
    };
    let denied: Vec<String> = access
        .iter()
        .filter(|a| !a.allowed)
        .map(Access::describe)
        .collect();
    if denied.is_empty() {
        CheckResult::ok(
            GROUP,
            RBAC,
            format!("you may do all {} things install does", access.len()),
        )
    } else {
        CheckResult::fail(
            GROUP,
            RBAC,
            format!("you may not: {}", denied.join(", ")),
            "install needs cluster-admin (it writes ClusterRoles, their bindings, webhook \
             configurations and admission policies): run it as a cluster admin (--context, --as)",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Outcome;

    fn access(verb: &str, allowed: bool, ns: Option<&str>) -> Access {
        Access {
            verb: verb.into(),
            group: "rbac.authorization.k8s.io".into(),
            resource: "clusterroles".into(),
            namespace: ns.map(str::to_string),
            allowed,
        }
    }

    fn facts() -> PreFacts {
        PreFacts {
            existing: Ok(vec![]),
            cert_manager: None,
            access: Ok(vec![
                access("create", true, None),
                access("patch", true, None),
            ]),
        }
    }

    #[test]
    fn a_clean_cluster_and_an_admin_pass() {
        let r = checks(&facts());
        assert_eq!(r.len(), 2, "no cert-manager line unless asked for");
        assert!(r.iter().all(|r| r.outcome == Outcome::Ok), "{r:?}");
    }

    #[test]
    fn foreign_objects_conflict_and_an_earlier_install_does_not() {
        let mut f = facts();
        f.existing = Ok(vec![Existing {
            kind: "MutatingWebhookConfiguration".into(),
            name: "jockey-webhook".into(),
            ours: true,
        }]);
        let r = checks(&f);
        assert_eq!(r[0].outcome, Outcome::Ok);
        assert!(r[0].message.contains("earlier install"));
        f.existing.as_mut().unwrap().push(Existing {
            kind: "ValidatingWebhookConfiguration".into(),
            name: "jockey-webhook".into(),
            ours: false,
        });
        let r = checks(&f);
        assert_eq!(r[0].outcome, Outcome::Fail);
        assert!(
            r[0].message
                .starts_with("ValidatingWebhookConfiguration jockey-webhook exist"),
            "{}",
            r[0].message
        );
    }

    #[test]
    fn cert_manager_crds_only_when_asked() {
        let mut f = facts();
        f.cert_manager = Some(Ok(vec![
            ("certificates.cert-manager.io".into(), true),
            ("issuers.cert-manager.io".into(), false),
        ]));
        let r = checks(&f);
        assert_eq!(r[1].id, CERT_MANAGER);
        assert_eq!(r[1].outcome, Outcome::Fail);
        assert!(
            r[1].message.contains("issuers.cert-manager.io")
                && !r[1].message.contains("certificates.")
        );
    }

    #[test]
    fn every_denied_access_is_named() {
        let mut f = facts();
        let a = f.access.as_mut().unwrap();
        a.push(access("create", false, Some("jockey-system")));
        a.push(access("escalate", false, None));
        let r = checks(&f);
        let rbac = r.iter().find(|r| r.id == RBAC).unwrap();
        assert_eq!(rbac.outcome, Outcome::Fail);
        assert_eq!(
            rbac.message,
            "you may not: create clusterroles.rbac.authorization.k8s.io in jockey-system, escalate \
             clusterroles.rbac.authorization.k8s.io"
        );
        assert!(
            rbac.hint
                .as_deref()
                .unwrap_or_default()
                .contains("cluster-admin")
        );
    }
}
