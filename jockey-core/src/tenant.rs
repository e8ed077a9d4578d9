//! What a tenant holds: the `jockey-tenant` ClusterRole (every rule a tenant's `kubectl jockey`
//! commands need in the tenant's own namespace, and nothing else) and the RoleBinding that
//! grants it in one namespace (`kubectl jockey tenant grant NAMESPACE --user U`).
//!
//! Why a ClusterRole bound per namespace (like Kubernetes' own `edit`): one object, installed
//! and upgraded once by `kubectl jockey install` (or `kubectl apply -k manifests/`), serves every
//! tenant; a RoleBinding grants its rules in its own namespace only, so nothing here reaches
//! another tenant's namespace, the builder namespace or anything cluster-scoped. A tenant holds
//! no AWS credentials at all: builds are the build broker's (`buildrequests`).
//!
//! One source: `manifests/base/tenant-role.yaml` is [`cluster_role_yaml`], kept equal by a test.
//! Pure.

use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule, RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use std::collections::BTreeMap;

/// The ClusterRole's name, and the name of the RoleBinding that grants it in a namespace.
pub const TENANT_ROLE: &str = "jockey-tenant";
/// The API group of RBAC and of user and group subjects.
pub const RBAC_GROUP: &str = "rbac.authorization.k8s.io";
/// Where a tenant asks the build broker for a build (`BuildRequest`, namespaced; its status is
/// the broker's alone).
pub const BUILD_REQUEST_GROUP: &str = crate::build_request::GROUP;
pub const BUILD_REQUESTS: &str = crate::build_request::PLURAL;
/// The webhook's default namespace, where the claims live (`install`'s and the webhook's
/// default).
const JOCKEY_SYSTEM: &str = "jockey-system";

/// One rule of the tenant role, with why a tenant command needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TenantRule {
    pub api_group: &'static str,
    pub resources: &'static [&'static str],
    pub verbs: &'static [&'static str],
    pub why: &'static str,
}

/// Every rule of `jockey-tenant`, read off the commands' code (`kubectl-jockey/src`). `create`
/// sits beside `patch` wherever a command server-side applies: an apply that creates the object
/// is authorised as a `create` too.
pub const TENANT_RULES: &[TenantRule] = &[
    TenantRule {
        api_group: "apps",
        resources: &["deployments"],
        verbs: &["get", "list", "watch", "create", "patch", "delete"],
        why: "deploy applies the project's Deployment (server-side apply: patch, and create the \
              first time); rollback and secrets set/unset re-point it; status, list and gc read \
              it; rollouts and delete watch it; delete removes it",
    },
    TenantRule {
        api_group: "apps",
        resources: &["replicasets"],
        verbs: &["list", "watch"],
        why: "a rollout is judged on the newest ReplicaSet (watched); rollback, deploy, delete \
              and gc read the instances earlier revisions ran",
    },
    TenantRule {
        api_group: "",
        resources: &["pods"],
        verbs: &["list", "watch"],
        why: "rollouts watch the new pods to fail fast with their reason; status and logs list \
              them",
    },
    TenantRule {
        api_group: "",
        resources: &["pods/log"],
        verbs: &["get"],
        why: "logs PROJECT reads the server container's log",
    },
    TenantRule {
        api_group: "",
        resources: &["services"],
        verbs: &["get", "create", "patch", "delete"],
        why: "deploy applies svc-PROJECT and reads it back while waiting for the ALB; delete \
              removes it",
    },
    TenantRule {
        api_group: "networking.k8s.io",
        resources: &["ingresses"],
        verbs: &["get", "list", "watch", "create", "patch", "delete"],
        why: "deploy applies ing-PROJECT (a dry run first asks the webhook for its shard) and \
              watches it for the ALB address; status and list read it; delete removes it and \
              waits for it to go",
    },
    TenantRule {
        api_group: "",
        resources: &["configmaps"],
        verbs: &["get", "list", "create", "patch", "delete"],
        why: "the instance ConfigMaps: deploy writes them and records the image on them; \
              rollback, gc and delete list them; gc and delete remove them (delete hands one \
              shared with another project over to it)",
    },
    TenantRule {
        api_group: "",
        resources: &["secrets"],
        verbs: &["get", "create", "update"],
        why: "the project's secret environment env-PROJECT: secrets set/list/unset and deploy \
              --secret-env-file read it by name, create it, and replace it with the version \
              read (never listed)",
    },
    TenantRule {
        api_group: "",
        resources: &["events"],
        verbs: &["list", "watch"],
        why: "status shows recent events; deploy watches the load balancer controller's events \
              on its Ingress",
    },
    TenantRule {
        api_group: "coordination.k8s.io",
        resources: &["leases"],
        verbs: &["get", "create", "update"],
        why: "one deploy of a project at a time: deploy takes, renews and releases the Lease \
              jockey-deploy-PROJECT",
    },
    TenantRule {
        api_group: BUILD_REQUEST_GROUP,
        resources: &[BUILD_REQUESTS],
        verbs: &["get", "list", "watch", "create", "delete"],
        why: "builds are the build broker's: deploy asks for one with a BuildRequest and watches \
              its status (written by the broker only: no buildrequests/status), delete removes \
              them",
    },
];

/// The `jockey-tenant` ClusterRole. Granting it takes a RoleBinding in the tenant's namespace
/// ([`tenant_binding`]); a ClusterRoleBinding would grant it in every namespace.
pub fn tenant_cluster_role() -> ClusterRole {
    let strings = |v: &[&str]| Some(v.iter().map(|s| s.to_string()).collect());
    ClusterRole {
        metadata: ObjectMeta {
            name: Some(TENANT_ROLE.to_string()),
            ..Default::default()
        },
        rules: Some(
            TENANT_RULES
                .iter()
                .map(|r| PolicyRule {
                    api_groups: strings(&[r.api_group]),
                    resources: strings(r.resources),
                    verbs: r.verbs.iter().map(|s| s.to_string()).collect(),
                    ..Default::default()
                })
                .collect(),
        ),
        ..Default::default()
    }
}

/// The comment atop `manifests/base/tenant-role.yaml`.
const HEADER: &str = "The jockey-tenant ClusterRole: what a tenant's `kubectl jockey` commands need in \
    the tenant's own namespace, and nothing else. Granted per namespace by a RoleBinding (`kubectl \
    jockey tenant grant NAMESPACE --user U`), it reaches nothing outside that namespace: no \
    builder namespace, nothing cluster-scoped, no AWS credentials. Never bind it with a \
    ClusterRoleBinding (that grants it in every namespace). Generated from \
    jockey-core/src/tenant.rs; a unit test keeps the two equal.";

/// `manifests/base/tenant-role.yaml`: [`tenant_cluster_role`] as YAML, each rule under a comment
/// saying why a tenant needs it.
pub fn cluster_role_yaml() -> String {
    let list = |v: &[&str]| {
        serde_json::to_string(v)
            .unwrap_or_default()
            .replace(',', ", ")
    };
    let mut out = String::new();
    for line in wrap(HEADER, 96) {
        out.push_str(&format!("# {line}\n"));
    }
    out.push_str(&format!(
        "apiVersion: {RBAC_GROUP}/v1\nkind: ClusterRole\nmetadata:\n  name: {TENANT_ROLE}\nrules:\n"
    ));
    for r in TENANT_RULES {
        for line in wrap(r.why, 96) {
            out.push_str(&format!("# {line}\n"));
        }
        out.push_str(&format!(
            "- apiGroups: {}\n  resources: {}\n  verbs: {}\n",
            list(&[r.api_group]),
            list(r.resources),
            list(r.verbs)
        ));
    }
    out
}

/// Words of `text` in lines of at most `width` characters (a longer word stands alone).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for word in text.split_whitespace() {
        match lines.last_mut() {
            Some(line) if line.len() + 1 + word.len() <= width => {
                line.push(' ');
                line.push_str(word);
            }
            _ => lines.push(word.to_string()),
        }
    }
    lines
}

/// Whether `s` is a DNS-1123 label (a namespace name).
pub fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// Whether `s` is a DNS-1123 subdomain (a service account name).
fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns_label)
}

/// The namespace a grant is for, checked: a namespace name, and not one where a tenant must
/// hold nothing (the control plane's, jockey's own, the builder namespace).
pub fn check_tenant_namespace(namespace: &str, builder_namespace: &str) -> Result<(), String> {
    if !is_dns_label(namespace) {
        return Err(format!(
            "NAMESPACE {namespace:?} is not a namespace name (a DNS-1123 label: at most 63 \
             lowercase letters, digits and '-', starting and ending with a letter or digit); \
             pass the tenant's namespace, e.g. team-a"
        ));
    }
    let why = if namespace == builder_namespace {
        Some(
            "it is the builder namespace (BUILDER_NAMESPACE), where builds run with push \
             credentials and a tenant must hold nothing",
        )
    } else if matches!(namespace, "kube-system" | "kube-public" | "kube-node-lease") {
        Some("it is the control plane's")
    } else if namespace == JOCKEY_SYSTEM {
        Some("it is jockey-webhook's, where project and host claims live")
    } else {
        None
    };
    match why {
        Some(why) => Err(format!(
            "refusing to make namespace {namespace} a tenant's: {why}; grant the tenant role in \
             the tenant's own namespace, e.g. team-a"
        )),
        None => Ok(()),
    }
}

/// Who a grant is for, from kubectl's flags: `--user`, `--group`, `--serviceaccount NS:NAME`.
pub fn user_subject(name: &str) -> Result<Subject, String> {
    named("--user", name)?;
    Ok(Subject {
        kind: "User".into(),
        api_group: Some(RBAC_GROUP.into()),
        name: name.into(),
        namespace: None,
    })
}

pub fn group_subject(name: &str) -> Result<Subject, String> {
    named("--group", name)?;
    Ok(Subject {
        kind: "Group".into(),
        api_group: Some(RBAC_GROUP.into()),
        name: name.into(),
        namespace: None,
    })
}

pub fn service_account_subject(arg: &str) -> Result<Subject, String> {
    let Some((namespace, name)) = arg.split_once(':') else {
        return Err(format!(
            "--serviceaccount {arg:?} is not NAMESPACE:NAME; write it as kubectl does, e.g. \
             --serviceaccount team-a:deployer"
        ));
    };
    if !is_dns_label(namespace) || !is_dns_subdomain(name) {
        return Err(format!(
            "--serviceaccount {arg:?}: {namespace:?} is not a namespace name or {name:?} not a \
             service account name (lowercase letters, digits, '-' and '.'); write it as \
             NAMESPACE:NAME, e.g. --serviceaccount team-a:deployer"
        ));
    }
    Ok(Subject {
        kind: "ServiceAccount".into(),
        api_group: Some(String::new()),
        name: name.into(),
        namespace: Some(namespace.into()),
    })
}

/// A user or group name as the API server takes it: anything but empty, whitespace at either
/// end (a quoting slip) or control characters (no HTTP header carries them).
fn named(flag: &str, name: &str) -> Result<(), String> {
    if name.trim().is_empty() || name.trim() != name || name.chars().any(char::is_control) {
        return Err(format!(
            "{flag} {name:?} is not a name the API server authenticates (empty, surrounded by \
             whitespace or holding control characters); pass the name as your authenticator \
             reports it, e.g. {flag} alice@example.com"
        ));
    }
    Ok(())
}

/// `user alice`, `group devs`, `serviceaccount team-a:deployer`.
pub fn describe(s: &Subject) -> String {
    match s.kind.as_str() {
        "ServiceAccount" => format!(
            "serviceaccount {}:{}",
            s.namespace.as_deref().unwrap_or_default(),
            s.name
        ),
        kind => format!("{} {}", kind.to_ascii_lowercase(), s.name),
    }
}

/// What makes two subjects the same one (the API server fills `apiGroup` in for users and
/// groups, and leaves it empty for service accounts).
fn key(s: &Subject) -> (&str, &str, &str) {
    (
        s.kind.as_str(),
        s.name.as_str(),
        s.namespace.as_deref().unwrap_or_default(),
    )
}

/// `existing` with every subject of `add` it lacks appended (in order, once each); the ones
/// appended.
pub fn with_subjects(existing: &[Subject], add: &[Subject]) -> (Vec<Subject>, Vec<Subject>) {
    let mut out = existing.to_vec();
    let mut added = Vec::new();
    for s in add {
        if !out.iter().any(|o| key(o) == key(s)) {
            out.push(s.clone());
            added.push(s.clone());
        }
    }
    (out, added)
}

/// `existing` without the subjects of `remove`; the ones removed, and those of `remove` it did
/// not hold.
pub fn without_subjects(
    existing: &[Subject],
    remove: &[Subject],
) -> (Vec<Subject>, Vec<Subject>, Vec<Subject>) {
    let gone = |s: &Subject| remove.iter().any(|r| key(r) == key(s));
    let kept = existing.iter().filter(|s| !gone(s)).cloned().collect();
    let removed: Vec<Subject> = existing.iter().filter(|s| gone(s)).cloned().collect();
    let absent = remove
        .iter()
        .filter(|r| !existing.iter().any(|s| key(s) == key(r)))
        .cloned()
        .collect();
    (kept, removed, absent)
}

/// The RoleBinding `jockey-tenant` in `namespace`: `subjects` hold [`tenant_cluster_role`]
/// there, and only there.
pub fn tenant_binding(namespace: &str, subjects: Vec<Subject>) -> RoleBinding {
    RoleBinding {
        metadata: ObjectMeta {
            name: Some(TENANT_ROLE.to_string()),
            namespace: Some(namespace.to_string()),
            labels: Some(BTreeMap::from([
                (
                    "app.kubernetes.io/managed-by".to_string(),
                    "kubectl-jockey".to_string(),
                ),
                (
                    "app.kubernetes.io/part-of".to_string(),
                    "jockey".to_string(),
                ),
            ])),
            ..Default::default()
        },
        role_ref: RoleRef {
            api_group: Some(RBAC_GROUP.into()),
            kind: "ClusterRole".into(),
            name: TENANT_ROLE.into(),
        },
        subjects: Some(subjects),
    }
}

/// Whether an existing RoleBinding named `jockey-tenant` is one [`tenant_binding`] made (its
/// role reference cannot change, so one naming anything else is someone else's).
pub fn is_tenant_binding(b: &RoleBinding) -> bool {
    b.role_ref.kind == "ClusterRole" && b.role_ref.name == TENANT_ROLE
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The manifest is the rendering: regenerate it with the text this prints.
    #[test]
    fn manifests_base_tenant_role_is_the_rendering() {
        let manifest = include_str!("../../manifests/base/tenant-role.yaml");
        let rendered = cluster_role_yaml();
        assert!(
            manifest == rendered,
            "manifests/base/tenant-role.yaml differs from the rendering; it should read:\n{rendered}"
        );
        // And the text is the object.
        let parsed: serde_json::Value = serde_yaml::from_str(&rendered).unwrap();
        assert_eq!(parsed, serde_json::to_value(tenant_cluster_role()).unwrap());
    }

    /// The boundary: nothing of the builder's kinds, nothing cluster-scoped, no wildcard, no
    /// way to grant itself more, and never the broker's status.
    #[test]
    fn the_role_holds_only_the_tenants_own_kinds() {
        let role = tenant_cluster_role();
        let rules = role.rules.unwrap();
        for r in &rules {
            let resources = r.resources.clone().unwrap();
            for res in &resources {
                assert!(
                    !matches!(
                        res.as_str(),
                        "*" | "jobs"
                            | "serviceaccounts"
                            | "serviceaccounts/token"
                            | "namespaces"
                            | "nodes"
                            | "roles"
                            | "rolebindings"
                            | "clusterroles"
                            | "clusterrolebindings"
                            | "pods/exec"
                            | "pods/attach"
                            | "pods/portforward"
                            | "buildrequests/status"
                    ),
                    "{res}"
                );
            }
            assert!(r.resource_names.is_none() && r.non_resource_urls.is_none());
            for v in &r.verbs {
                assert!(
                    !matches!(v.as_str(), "*" | "escalate" | "bind" | "impersonate"),
                    "{v}"
                );
            }
            // Secrets are read by name, never listed or watched.
            if resources == ["secrets"] {
                assert_eq!(r.verbs, ["get", "create", "update"]);
            }
        }
        let build = rules
            .iter()
            .find(|r| r.resources.as_deref() == Some(&["buildrequests".to_string()][..]))
            .unwrap();
        assert_eq!(
            build.api_groups.as_deref(),
            Some(&["jockey.agentops.ai".to_string()][..])
        );
        assert_eq!(build.verbs, ["get", "list", "watch", "create", "delete"]);
        for r in TENANT_RULES {
            assert!(!r.why.is_empty());
        }
    }

    #[test]
    fn subjects_are_kubectls_and_bad_ones_say_how_to_write_them() {
        let sa = service_account_subject("team-a:deployer").unwrap();
        assert_eq!(sa.kind, "ServiceAccount");
        assert_eq!(sa.namespace.as_deref(), Some("team-a"));
        assert_eq!(describe(&sa), "serviceaccount team-a:deployer");
        assert_eq!(describe(&user_subject("alice").unwrap()), "user alice");
        assert_eq!(
            user_subject("system:serviceaccount:a:b").unwrap().api_group,
            Some(RBAC_GROUP.to_string())
        );
        for bad in ["robot", ":x", "a:", "Team:x", "a:B_c"] {
            let e = service_account_subject(bad).unwrap_err();
            assert!(e.contains("NAMESPACE:NAME") && e.contains("e.g."), "{e}");
        }
        for bad in ["", " alice", "a\nb"] {
            let e = user_subject(bad).unwrap_err();
            assert!(e.contains("--user") && e.contains("e.g."), "{e}");
            assert!(group_subject(bad).unwrap_err().contains("--group"));
        }
    }

    #[test]
    fn a_grant_adds_and_a_revoke_removes_only_the_subjects_named() {
        let (a, b, c) = (
            user_subject("a").unwrap(),
            group_subject("b").unwrap(),
            service_account_subject("ns:c").unwrap(),
        );
        // The API server may store a user's apiGroup as given; a service account's empty.
        let mut stored_c = c.clone();
        stored_c.api_group = None;
        let (all, added) = with_subjects(&[a.clone(), stored_c.clone()], &[b.clone(), c.clone()]);
        assert_eq!(all, [a.clone(), stored_c.clone(), b.clone()]);
        assert_eq!(added, std::slice::from_ref(&b));
        let (kept, removed, absent) =
            without_subjects(&all, &[c.clone(), user_subject("z").unwrap()]);
        assert_eq!(kept, [a.clone(), b.clone()]);
        assert_eq!(removed, [stored_c]);
        assert_eq!(absent, [user_subject("z").unwrap()]);
        let binding = tenant_binding("team-a", kept);
        assert!(is_tenant_binding(&binding));
        assert_eq!(binding.metadata.namespace.as_deref(), Some("team-a"));
        assert_eq!(binding.role_ref.kind, "ClusterRole");
    }

    #[test]
    fn a_tenant_namespace_is_a_namespace_of_its_own() {
        assert!(check_tenant_namespace("team-a", "builder").is_ok());
        for (ns, want) in [
            ("Team_A", "is not a namespace name"),
            ("", "is not a namespace name"),
            ("builder", "the builder namespace"),
            ("kube-system", "control plane"),
            ("jockey-system", "claims"),
        ] {
            let e = check_tenant_namespace(ns, "builder").unwrap_err();
            assert!(e.contains(want) && e.contains("e.g. team-a"), "{e}");
        }
    }
}
