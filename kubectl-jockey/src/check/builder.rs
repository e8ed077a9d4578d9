//! The builder: the namespace builds run in, its service account and Pod Security level, no
//! long-lived keys left from before the build broker, and what the credentials mode needs
//! (see `jockey_build::credentials`: ECR pushes need BUILDER_ROLE_ARN on the broker).

use super::{CheckResult, Replicas};
use jockey_core::BuilderCredentials;
use std::collections::BTreeMap;

pub const GROUP: &str = "builder";
pub const NAMESPACE: &str = "builder-namespace";
pub const SERVICE_ACCOUNT: &str = "builder-service-account";
pub const POD_SECURITY: &str = "builder-pod-security";
pub const LEFTOVER_CREDENTIALS: &str = "builder-leftover-credentials";
pub const CREDENTIALS: &str = "builder-credentials";
pub const BROKER: &str = "builder-broker";

const ENFORCE: &str = "pod-security.kubernetes.io/enforce";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuilderFacts {
    pub namespace: String,
    /// The namespace's labels; `None`: it does not exist.
    pub namespace_labels: Option<BTreeMap<String, String>>,
    pub service_account: bool,
    /// Secret `aws-credentials` in the builder namespace (from installs before the broker).
    pub leftover_secret: bool,
    /// The broker Deployment (`namespace/name`) and its readiness; `None` when missing.
    pub broker_name: String,
    pub broker: Option<Replicas>,
    /// The broker's settings: IMAGE_REGISTRY, BUILDER_ROLE_ARN (empty = unset).
    pub image_registry: Option<String>,
    pub builder_role_arn: Option<String>,
    /// BUILDER_CREDENTIALS as given to the plugin.
    pub credentials: BuilderCredentials,
}

pub fn checks(f: &BuilderFacts) -> Vec<CheckResult> {
    let setup = format!(
        "run `kubectl jockey setup-builder -n {}` (or `kubectl jockey install`, which applies it)",
        f.namespace
    );
    let mut out = Vec::new();
    let Some(labels) = &f.namespace_labels else {
        out.push(CheckResult::fail(
            GROUP,
            NAMESPACE,
            format!("namespace {} does not exist: no build can run", f.namespace),
            setup,
        ));
        out.push(broker(f));
        out.push(credentials(f));
        return out;
    };
    out.push(CheckResult::ok(
        GROUP,
        NAMESPACE,
        format!("namespace {} exists", f.namespace),
    ));
    out.push(if f.service_account {
        CheckResult::ok(
            GROUP,
            SERVICE_ACCOUNT,
            format!(
                "service account {}/{} exists",
                f.namespace,
                jockey_build::kaniko::BUILDER_SERVICE_ACCOUNT
            ),
        )
    } else {
        CheckResult::fail(
            GROUP,
            SERVICE_ACCOUNT,
            format!(
                "service account {}/{} does not exist: build pods cannot be created",
                f.namespace,
                jockey_build::kaniko::BUILDER_SERVICE_ACCOUNT
            ),
            setup.clone(),
        )
    });
    out.push(pod_security(f, labels.get(ENFORCE).map(String::as_str)));
    out.push(if f.leftover_secret {
        CheckResult::fail(
            GROUP,
            LEFTOVER_CREDENTIALS,
            format!(
                "Secret {}/{} holds long-lived AWS keys from an install before the build broker; \
                 build pods run tenant code, which must never reach them",
                f.namespace,
                jockey_build::kaniko::LEGACY_AWS_CREDENTIALS_SECRET
            ),
            format!(
                "delete it (`kubectl -n {} delete secret {}`) and deactivate the keys in IAM",
                f.namespace,
                jockey_build::kaniko::LEGACY_AWS_CREDENTIALS_SECRET
            ),
        )
    } else {
        CheckResult::ok(
            GROUP,
            LEFTOVER_CREDENTIALS,
            format!(
                "no Secret {} in {}",
                jockey_build::kaniko::LEGACY_AWS_CREDENTIALS_SECRET,
                f.namespace
            ),
        )
    });
    out.push(credentials(f));
    out.push(broker(f));
    out
}

fn pod_security(f: &BuilderFacts, level: Option<&str>) -> CheckResult {
    let hint = format!(
        "`kubectl label namespace {} {ENFORCE}=baseline --overwrite` (Kaniko runs as root, which \
         restricted refuses; baseline still refuses privileged pods and host access)",
        f.namespace
    );
    match level {
        Some("baseline") => CheckResult::ok(
            GROUP,
            POD_SECURITY,
            format!("namespace {} enforces Pod Security baseline", f.namespace),
        ),
        Some("restricted") => CheckResult::fail(
            GROUP,
            POD_SECURITY,
            format!(
                "namespace {} enforces Pod Security restricted: every build pod (Kaniko, as \
                 root) is refused",
                f.namespace
            ),
            hint,
        ),
        other => CheckResult::warn(
            GROUP,
            POD_SECURITY,
            format!(
                "namespace {} enforces Pod Security {}: build pods run tenant code, and nothing \
                 keeps them from being privileged",
                f.namespace,
                other.map_or("(not set: the cluster default)".to_string(), |l| l
                    .to_string())
            ),
            hint,
        ),
    }
}

fn credentials(f: &BuilderFacts) -> CheckResult {
    let registry = f.image_registry.as_deref().filter(|r| !r.is_empty());
    let ecr = registry.and_then(jockey_build::ecr::parse_registry);
    let role = f.builder_role_arn.as_deref().filter(|r| !r.is_empty());
    let broker_fix = format!(
        "set BUILDER_ROLE_ARN in ConfigMap {}-config (or `kubectl jockey install` with it set) to \
         a role that may push to ECR, which the broker's service account may assume (IRSA / EKS \
         Pod Identity)",
        f.broker_name
    );
    match &f.credentials {
        BuilderCredentials::ServiceAccount => {
            return CheckResult::fail(
                GROUP,
                CREDENTIALS,
                "BUILDER_CREDENTIALS=service-account is no longer supported: it gave build pods \
                 the builder role itself",
                format!("unset BUILDER_CREDENTIALS; {broker_fix}"),
            );
        }
        BuilderCredentials::Invalid(v) => {
            return CheckResult::fail(
                GROUP,
                CREDENTIALS,
                format!("BUILDER_CREDENTIALS is {v:?}"),
                "unset it (or set assume-role)",
            );
        }
        BuilderCredentials::AssumeRole => {}
    }
    match (registry, ecr, role) {
        (None, _, _) => CheckResult::warn(
            GROUP,
            CREDENTIALS,
            "IMAGE_REGISTRY is not set on the broker: builds have nowhere to push",
            "set IMAGE_REGISTRY (`kubectl jockey install --image-registry REGISTRY`)",
        ),
        (Some(r), None, _) => CheckResult::ok(
            GROUP,
            CREDENTIALS,
            format!("builds push to {r} without AWS credentials (not an ECR registry)"),
        ),
        (Some(r), Some(_), None) => CheckResult::fail(
            GROUP,
            CREDENTIALS,
            format!("IMAGE_REGISTRY {r} is ECR but BUILDER_ROLE_ARN is not set: every build fails"),
            broker_fix,
        ),
        (Some(_), Some(_), Some(role)) if !jockey_build::credentials::is_role_arn(role) => {
            CheckResult::fail(
                GROUP,
                CREDENTIALS,
                format!("BUILDER_ROLE_ARN {role:?} is not an IAM role ARN"),
                "use arn:aws:iam::<account>:role/<name>",
            )
        }
        (Some(r), Some(_), Some(role)) => CheckResult::ok(
            GROUP,
            CREDENTIALS,
            format!("builds to {r} get short-lived credentials assumed from {role}"),
        ),
    }
}

fn broker(f: &BuilderFacts) -> CheckResult {
    match &f.broker {
        None => CheckResult::fail(
            GROUP,
            BROKER,
            format!("deployment {} does not exist: no build runs", f.broker_name),
            "run `kubectl jockey install`, which installs the build broker",
        ),
        Some(r) if r.all_available() => CheckResult::ok(
            GROUP,
            BROKER,
            format!(
                "deployment {}: {}/{} available",
                f.broker_name, r.available, r.desired
            ),
        ),
        Some(r) => CheckResult::fail(
            GROUP,
            BROKER,
            format!(
                "deployment {}: {}/{} available: builds wait",
                f.broker_name, r.available, r.desired
            ),
            format!(
                "see `kubectl describe deployment` and the logs of {}",
                f.broker_name
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Outcome;

    fn facts() -> BuilderFacts {
        BuilderFacts {
            namespace: "builder".into(),
            namespace_labels: Some(BTreeMap::from([(
                ENFORCE.to_string(),
                "baseline".to_string(),
            )])),
            service_account: true,
            leftover_secret: false,
            broker_name: "jockey-system/jockey-broker".into(),
            broker: Some(Replicas {
                desired: 1,
                ready: 1,
                available: 1,
            }),
            image_registry: Some("123456789012.dkr.ecr.us-east-1.amazonaws.com".into()),
            builder_role_arn: Some("arn:aws:iam::123456789012:role/jockey-builder".into()),
            credentials: BuilderCredentials::AssumeRole,
        }
    }

    fn find(f: &BuilderFacts, id: &str) -> CheckResult {
        checks(f)
            .into_iter()
            .find(|r| r.id == id)
            .unwrap_or_else(|| panic!("no {id}"))
    }

    #[test]
    fn a_complete_builder_passes() {
        let r = checks(&facts());
        assert_eq!(r.len(), 6);
        assert!(r.iter().all(|r| r.outcome == Outcome::Ok), "{r:?}");
    }

    #[test]
    fn a_missing_namespace_fails_with_setup_builder() {
        let mut f = facts();
        f.namespace_labels = None;
        let r = checks(&f);
        assert_eq!(r.len(), 3);
        assert_eq!(r[0].outcome, Outcome::Fail);
        assert!(
            r[0].hint
                .as_deref()
                .unwrap_or_default()
                .contains("setup-builder -n builder")
        );
    }

    #[test]
    fn service_account_and_leftover_keys() {
        let mut f = facts();
        f.service_account = false;
        assert_eq!(find(&f, SERVICE_ACCOUNT).outcome, Outcome::Fail);
        f.leftover_secret = true;
        let r = find(&f, LEFTOVER_CREDENTIALS);
        assert_eq!(r.outcome, Outcome::Fail);
        assert!(r.hint.unwrap().contains("delete secret aws-credentials"));
    }

    #[test]
    fn pod_security_baseline_passes_restricted_fails_and_others_warn() {
        let with = |level: Option<&str>| {
            let mut f = facts();
            f.namespace_labels = Some(
                level
                    .map(|l| (ENFORCE.to_string(), l.to_string()))
                    .into_iter()
                    .collect(),
            );
            find(&f, POD_SECURITY).outcome
        };
        assert_eq!(with(Some("baseline")), Outcome::Ok);
        assert_eq!(with(Some("restricted")), Outcome::Fail);
        assert_eq!(with(Some("privileged")), Outcome::Warn);
        assert_eq!(with(None), Outcome::Warn);
    }

    #[test]
    fn credentials_follow_the_registry_and_the_role() {
        let mut f = facts();
        f.builder_role_arn = None;
        let r = find(&f, CREDENTIALS);
        assert_eq!(r.outcome, Outcome::Fail);
        assert!(r.hint.unwrap().contains("BUILDER_ROLE_ARN"));
        f.builder_role_arn = Some("arn:aws:iam::1:user/x".into());
        assert_eq!(find(&f, CREDENTIALS).outcome, Outcome::Fail);
        f.image_registry = Some("10.0.0.1:5000".into());
        assert_eq!(find(&f, CREDENTIALS).outcome, Outcome::Ok);
        f.image_registry = None;
        assert_eq!(find(&f, CREDENTIALS).outcome, Outcome::Warn);
        let mut f = facts();
        f.credentials = BuilderCredentials::ServiceAccount;
        assert_eq!(find(&f, CREDENTIALS).outcome, Outcome::Fail);
        f.credentials = BuilderCredentials::Invalid("x".into());
        assert_eq!(find(&f, CREDENTIALS).outcome, Outcome::Fail);
    }

    #[test]
    fn the_broker_must_be_available() {
        let mut f = facts();
        f.broker = Some(Replicas {
            desired: 1,
            ready: 0,
            available: 0,
        });
        assert_eq!(find(&f, BROKER).outcome, Outcome::Fail);
        f.broker = None;
        assert!(
            find(&f, BROKER)
                .hint
                .unwrap()
                .contains("kubectl jockey install")
        );
    }
}
