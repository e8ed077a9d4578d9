//! The AWS credentials of one Kaniko build. The build pod runs the tenant's Dockerfile (and its
//! `pip install`) as root, so whatever credentials it holds, tenant code can read: it must never
//! hold long-lived keys, nor anything that can push another project's image.
//!
//! - ECR: the broker, with its own AWS identity (IRSA / EKS Pod Identity on its service account,
//!   never the tenant's), calls STS AssumeRole on `BUILDER_ROLE_ARN` with a session policy that
//!   allows only what a push needs on `<prefix>/PROJECT`, and on its cache repository only for a
//!   build that uses Kaniko's layer cache (a project's own Dockerfile) (plus
//!   `ecr:GetAuthorizationToken`, which has no resource), for 15 minutes or the build's timeout.
//!   The result goes into a per-build Secret owned by the Job, which the broker deletes as soon
//!   as the build ends, whatever the outcome.
//! - `BUILDER_CREDENTIALS=service-account` (the build pod's service account carrying the role
//!   itself) is refused: any `RUN` step could read that role's token and push to every project.
//! - Any other registry (a local one): no AWS credentials.
//!
//! The decisions ([`plan`], [`session_policy`], [`session_name`], [`session_duration`],
//! [`credentials_secret`]) are pure; [`issue`] and [`remove`] are the thin I/O around them.

use crate::ecr::EcrRegistry;
use crate::is_not_found;
use anyhow::{Context, Result, bail};
use jockey_core::{BuilderCredentials, Config, ProjectId};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::DeleteParams;
use kube::{Api, Client};
use std::collections::BTreeMap;
use std::time::Duration;

/// Keys of the per-build Secret, named as the AWS SDKs read them from the environment.
pub const ACCESS_KEY_ID: &str = "AWS_ACCESS_KEY_ID";
pub const SECRET_ACCESS_KEY: &str = "AWS_SECRET_ACCESS_KEY";
pub const SESSION_TOKEN: &str = "AWS_SESSION_TOKEN";
/// Annotations on the per-build Secret: what was asked of STS (no secret in them), for whoever
/// audits a build.
pub const ANNOTATION_ROLE_ARN: &str = "jockey.agentops.ai/role-arn";
pub const ANNOTATION_SESSION_NAME: &str = "jockey.agentops.ai/session-name";
pub const ANNOTATION_SESSION_POLICY: &str = "jockey.agentops.ai/session-policy";
pub const ANNOTATION_EXPIRES: &str = "jockey.agentops.ai/expires";
/// STS limits on DurationSeconds; a role's own maximum may be lower (1 hour by default).
pub const MIN_SESSION_SECONDS: u64 = 900;
pub const MAX_SESSION_SECONDS: u64 = 43_200;
/// What a role accepts unless its owner raised MaxSessionDuration, and the ceiling for a role
/// assumed from an assumed role (role chaining).
pub const DEFAULT_ROLE_MAX_SECONDS: u64 = 3_600;

/// ECR actions a Kaniko push (and its layer cache) needs on a repository: read layers back,
/// upload new ones, write the manifest.
pub const PUSH_ACTIONS: &[&str] = &[
    "ecr:BatchCheckLayerAvailability",
    "ecr:BatchGetImage",
    "ecr:GetDownloadUrlForLayer",
    "ecr:InitiateLayerUpload",
    "ecr:UploadLayerPart",
    "ecr:CompleteLayerUpload",
    "ecr:PutImage",
];
/// What pulling a base image from a private mirror in the same registry needs.
pub const PULL_ACTIONS: &[&str] = &[
    "ecr:BatchCheckLayerAvailability",
    "ecr:BatchGetImage",
    "ecr:GetDownloadUrlForLayer",
];

/// How one build gets its AWS credentials, decided before anything is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildCredentials {
    /// The registry is not ECR: the build pushes without AWS credentials.
    None,
    /// Short-lived credentials from AssumeRole, in the Secret `secret`.
    AssumedRole(AssumeRolePlan),
}

/// One AssumeRole call and where its result goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssumeRolePlan {
    pub role_arn: String,
    pub session_name: String,
    /// The session policy, as the JSON text sent to STS.
    pub policy: String,
    pub duration_seconds: u64,
    /// The ECR registry's region: STS is asked there.
    pub region: String,
    /// The per-build Secret in the builder namespace.
    pub secret: String,
}

/// The name of a build's credentials Secret: the build's name plus a suffix (a Secret name may
/// be longer than the 63 characters of a build name).
pub fn secret_name(build_name: &str) -> String {
    format!("{build_name}-aws")
}

/// The AWS partition a region belongs to, for ARNs.
pub fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else if region.starts_with("us-iso-") {
        "aws-iso"
    } else if region.starts_with("us-isob-") {
        "aws-iso-b"
    } else {
        "aws"
    }
}

pub fn repository_arn(ecr: &EcrRegistry, repository: &str) -> String {
    format!(
        "arn:{}:ecr:{}:{}:repository/{repository}",
        partition(&ecr.region),
        ecr.region,
        ecr.account
    )
}

/// `jockey-build-PROJECT`: names the project in CloudTrail and in the assumed-role ARN. A
/// project id is at most 48 characters of `[a-z0-9-]`, so this fits STS's 64 and its alphabet.
pub fn session_name(project: &ProjectId) -> String {
    format!("jockey-build-{project}")
}

/// 15 minutes, or the build's timeout when longer, within STS's limits.
pub fn session_duration(timeout: Duration) -> u64 {
    timeout
        .as_secs()
        .clamp(MIN_SESSION_SECONDS, MAX_SESSION_SECONDS)
}

/// The session policy: the effective permissions are the intersection of this and the role's
/// own, so whatever the role may do, these credentials can push only `repositories` (and read
/// `pull_only`, the base image's mirror). Pure.
pub fn session_policy(
    ecr: &EcrRegistry,
    repositories: &[String],
    pull_only: &[String],
) -> serde_json::Value {
    let arns = |names: &[String]| -> Vec<String> {
        names.iter().map(|n| repository_arn(ecr, n)).collect()
    };
    let mut statements = vec![
        serde_json::json!({
            "Sid": "EcrLogin",
            "Effect": "Allow",
            "Action": "ecr:GetAuthorizationToken",
            "Resource": "*"
        }),
        serde_json::json!({
            "Sid": "PushProjectRepositories",
            "Effect": "Allow",
            "Action": PUSH_ACTIONS,
            "Resource": arns(repositories)
        }),
    ];
    if !pull_only.is_empty() {
        statements.push(serde_json::json!({
            "Sid": "PullBaseImage",
            "Effect": "Allow",
            "Action": PULL_ACTIONS,
            "Resource": arns(pull_only)
        }));
    }
    serde_json::json!({ "Version": "2012-10-17", "Statement": statements })
}

/// The repository of `image` when it is in `registry` (`registry/repo[:tag][@digest]`): a base
/// image mirrored into the same ECR registry, which the build must be allowed to pull.
pub fn repository_in_registry(image: &str, registry: &str) -> Option<String> {
    let rest = image.strip_prefix(registry.trim_end_matches('/'))?;
    let rest = rest.strip_prefix('/')?;
    let without_digest = rest.split('@').next()?;
    let repo = match without_digest.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => repo,
        _ => without_digest,
    };
    (!repo.is_empty()).then(|| repo.to_string())
}

/// Whether `arn` names an IAM role: `arn:<partition>:iam::<12 digits>:role/<path/name>`.
pub fn is_role_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    matches!(parts.as_slice(),
        ["arn", p, "iam", "", account, resource]
            if p.starts_with("aws")
                && account.len() == 12
                && account.bytes().all(|b| b.is_ascii_digit())
                && resource.strip_prefix("role/").is_some_and(|n| !n.is_empty()))
}

/// How a build of `project` pushing to `ecr` (None: not ECR) gets credentials, or why it
/// cannot build at all (a missing or malformed setting, with the fix). `layer_cache`: whether
/// the build reads and writes Kaniko's layer cache; a build that does not gets no right on the
/// cache repository. Pure.
pub fn plan(
    cfg: &Config,
    project: &ProjectId,
    ecr: Option<&EcrRegistry>,
    build_name: &str,
    base_image: Option<&str>,
    layer_cache: bool,
    timeout: Duration,
) -> Result<BuildCredentials> {
    let Some(ecr) = ecr else {
        return Ok(BuildCredentials::None);
    };
    match &cfg.builder_credentials {
        BuilderCredentials::ServiceAccount => bail!(
            "BUILDER_CREDENTIALS=service-account gave the build pod the builder role itself, which \
             any RUN step of a tenant's Dockerfile could use to push every project's image; it is \
             no longer supported: give the broker's service account (IRSA / EKS Pod Identity) a \
             role that may assume BUILDER_ROLE_ARN, set BUILDER_ROLE_ARN, and unset \
             BUILDER_CREDENTIALS"
        ),
        BuilderCredentials::Invalid(v) => bail!(
            "BUILDER_CREDENTIALS is {v:?}; unset it (or set `assume-role`): every build gets \
             per-build credentials assumed from BUILDER_ROLE_ARN"
        ),
        BuilderCredentials::AssumeRole => {
            let prefix = &cfg.image_repository_prefix;
            let Some(role_arn) = cfg.builder_role_arn.as_deref() else {
                bail!(
                    "cannot build the image of {project}: IMAGE_REGISTRY is ECR, and each build \
                     gets short-lived credentials assumed from an IAM role, but BUILDER_ROLE_ARN \
                     is not set on the build broker; set it to a role that may push to \
                     {prefix}/* in account {}, which the broker's service account may assume \
                     (IRSA / EKS Pod Identity)",
                    ecr.account
                );
            };
            if !is_role_arn(role_arn) {
                bail!(
                    "BUILDER_ROLE_ARN {role_arn:?} is not an IAM role ARN; expected \
                     arn:aws:iam::<account>:role/<name>"
                );
            }
            let repository = project.repository(prefix);
            let mut repositories = vec![repository.clone()];
            if layer_cache {
                repositories.push(format!("{repository}/cache"));
            }
            let registry = format!("{}.dkr.ecr.{}.amazonaws.com", ecr.account, ecr.region);
            let pull_only: Vec<String> = cfg
                .image_registry
                .iter()
                .chain(std::iter::once(&registry))
                .find_map(|r| base_image.and_then(|b| repository_in_registry(b, r)))
                .filter(|r| !repositories.contains(r))
                .into_iter()
                .collect();
            Ok(BuildCredentials::AssumedRole(AssumeRolePlan {
                role_arn: role_arn.to_string(),
                session_name: session_name(project),
                policy: session_policy(ecr, &repositories, &pull_only).to_string(),
                duration_seconds: session_duration(timeout),
                region: ecr.region.clone(),
                secret: secret_name(build_name),
            }))
        }
    }
}

/// Credentials STS issued for one build.
#[derive(Clone, PartialEq, Eq)]
pub struct Issued {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
    /// RFC 3339.
    pub expires: String,
    /// The assumed-role ARN STS reports (names the session, so the project).
    pub assumed_role_arn: String,
}

/// Never print the secret parts, not even in a debug log.
impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued")
            .field("access_key_id", &self.access_key_id)
            .field("expires", &self.expires)
            .field("assumed_role_arn", &self.assumed_role_arn)
            .finish_non_exhaustive()
    }
}

/// The per-build Secret holding `issued`. Its owner reference to the Job is added once the Job
/// exists; `labels` are the build's. Pure.
pub fn credentials_secret(
    plan: &AssumeRolePlan,
    namespace: &str,
    labels: BTreeMap<String, String>,
    issued: &Issued,
) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(plan.secret.clone()),
            namespace: Some(namespace.to_string()),
            labels: Some(labels),
            annotations: Some(BTreeMap::from([
                (ANNOTATION_ROLE_ARN.to_string(), plan.role_arn.clone()),
                (
                    ANNOTATION_SESSION_NAME.to_string(),
                    plan.session_name.clone(),
                ),
                (ANNOTATION_SESSION_POLICY.to_string(), plan.policy.clone()),
                (ANNOTATION_EXPIRES.to_string(), issued.expires.clone()),
            ])),
            ..Default::default()
        },
        type_: Some("Opaque".to_string()),
        string_data: Some(BTreeMap::from([
            (ACCESS_KEY_ID.to_string(), issued.access_key_id.clone()),
            (
                SECRET_ACCESS_KEY.to_string(),
                issued.secret_access_key.clone(),
            ),
            (SESSION_TOKEN.to_string(), issued.session_token.clone()),
        ])),
        // Credentials are replaced by a new Secret, never edited in place.
        immutable: Some(true),
        ..Default::default()
    }
}

/// Calls STS AssumeRole for one build, with the caller's own AWS credentials (the standard
/// chain, as the AWS CLI finds them).
pub async fn issue(plan: &AssumeRolePlan) -> Result<Issued> {
    let sdk = crate::aws::sdk_config(Some(&plan.region)).await;
    if let Err(why) = crate::aws::available(&sdk).await {
        bail!(
            "cannot get short-lived build credentials from role {}: {why}",
            plan.role_arn
        );
    }
    let sts = aws_sdk_sts::Client::new(&sdk);
    let ask = |seconds: u64| {
        sts.assume_role()
            .role_arn(&plan.role_arn)
            .role_session_name(&plan.session_name)
            .policy(&plan.policy)
            .duration_seconds(seconds as i32)
            .send()
    };
    let mut seconds = plan.duration_seconds;
    let mut answer = ask(seconds).await;
    // A role whose MaxSessionDuration is below the build's timeout refuses the longer session;
    // an hour is what every role accepts.
    if seconds > DEFAULT_ROLE_MAX_SECONDS
        && let Err(e) = &answer
        && crate::aws::error_chain(e).contains("DurationSeconds")
    {
        tracing::warn!(
            "role {} does not allow {seconds}s sessions; the build gets 1-hour credentials \
             (raise the role's MaxSessionDuration for longer builds)",
            plan.role_arn
        );
        seconds = DEFAULT_ROLE_MAX_SECONDS;
        answer = ask(seconds).await;
    }
    let out = answer.map_err(|e| {
        anyhow::anyhow!(
            "STS AssumeRole on {} failed: {}; check that the broker's AWS identity may \
             assume it (sts:AssumeRole in its trust policy) and that the role may push to ECR",
            plan.role_arn,
            crate::aws::error_chain(&e)
        )
    })?;
    let creds = out
        .credentials()
        .context("STS AssumeRole answered without credentials")?;
    Ok(Issued {
        access_key_id: creds.access_key_id().to_string(),
        secret_access_key: creds.secret_access_key().to_string(),
        session_token: creds.session_token().to_string(),
        expires: creds
            .expiration()
            .fmt(aws_sdk_sts::primitives::DateTimeFormat::DateTime)
            .unwrap_or_default(),
        assumed_role_arn: out
            .assumed_role_user()
            .map(|u| u.arn().to_string())
            .unwrap_or_default(),
    })
}

/// Deletes a build's credentials Secret; a missing one is fine.
pub async fn remove(client: &Client, namespace: &str, name: &str) -> Result<()> {
    match Api::<Secret>::namespaced(client.clone(), namespace)
        .delete(name, &DeleteParams::default())
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(e).with_context(|| format!("deleting Secret {namespace}/{name}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ecr() -> EcrRegistry {
        EcrRegistry {
            account: "123456789012".into(),
            region: "eu-west-1".into(),
        }
    }

    fn cfg(vars: &[(&str, &str)]) -> Config {
        let vars: BTreeMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| vars.get(k).cloned())
    }

    const ROLE: &str = "arn:aws:iam::123456789012:role/jockey-builder";

    /// The plan of a build from the built-in template when `base` is given (no layer cache), of
    /// a project's own Dockerfile otherwise (with it), as the broker asks.
    fn assumed(c: &Config, project: &str, base: Option<&str>) -> AssumeRolePlan {
        let p = ProjectId::parse(project).unwrap();
        let cache = base.is_none();
        match plan(
            c,
            &p,
            Some(&ecr()),
            "b",
            base,
            cache,
            Duration::from_secs(300),
        )
        .unwrap()
        {
            BuildCredentials::AssumedRole(a) => a,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_session_policy_names_only_the_projects_repositories() {
        let c = cfg(&[("BUILDER_ROLE_ARN", ROLE)]);
        let a = assumed(&c, "demo", None);
        let policy: serde_json::Value = serde_json::from_str(&a.policy).unwrap();
        let statements = policy["Statement"].as_array().unwrap();
        assert_eq!(statements.len(), 2, "{policy}");
        // The login call has no resource: the only `*`.
        assert_eq!(statements[0]["Action"], "ecr:GetAuthorizationToken");
        assert_eq!(statements[0]["Resource"], "*");
        let push = &statements[1];
        assert_eq!(push["Effect"], "Allow");
        assert_eq!(
            push["Resource"],
            serde_json::json!([
                "arn:aws:ecr:eu-west-1:123456789012:repository/hosting/demo",
                "arn:aws:ecr:eu-west-1:123456789012:repository/hosting/demo/cache"
            ])
        );
        let actions: Vec<&str> = push["Action"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        assert!(actions.contains(&"ecr:PutImage") && actions.contains(&"ecr:UploadLayerPart"));
        // Nothing that deletes, retags policy-wise, or reaches beyond ECR.
        for a in &actions {
            assert!(a.starts_with("ecr:"), "{a}");
            assert!(
                !a.contains("Delete") && !a.contains("Policy") && !a.contains("Create"),
                "{a}"
            );
        }
        assert!(!a.policy.contains("*\"]") && !a.policy.contains("repository/*"));
        // Another project's policy names its own repositories and not these.
        let b = assumed(&c, "demo-2", None);
        assert!(b.policy.contains("repository/hosting/demo-2\""));
        assert!(!b.policy.contains("repository/hosting/demo\""));
    }

    #[test]
    fn a_build_without_the_layer_cache_gets_no_right_on_the_cache_repository() {
        let c = cfg(&[("BUILDER_ROLE_ARN", ROLE)]);
        let a = assumed(&c, "demo", Some("python:3.12.11-slim-bookworm"));
        let policy: serde_json::Value = serde_json::from_str(&a.policy).unwrap();
        assert_eq!(
            policy["Statement"][1]["Resource"],
            serde_json::json!(["arn:aws:ecr:eu-west-1:123456789012:repository/hosting/demo"])
        );
        assert!(!a.policy.contains("/cache"), "{}", a.policy);
    }

    #[test]
    fn a_base_image_mirrored_in_the_registry_may_be_pulled_not_pushed() {
        let c = cfg(&[
            ("BUILDER_ROLE_ARN", ROLE),
            (
                "IMAGE_REGISTRY",
                "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
            ),
        ]);
        let base = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/mirror/python:3.12-slim";
        let a = assumed(&c, "demo", Some(base));
        let policy: serde_json::Value = serde_json::from_str(&a.policy).unwrap();
        let pull = &policy["Statement"][2];
        assert_eq!(
            pull["Resource"],
            serde_json::json!(["arn:aws:ecr:eu-west-1:123456789012:repository/mirror/python"])
        );
        assert!(
            !pull["Action"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a == "ecr:PutImage")
        );
        // A public base image needs no statement.
        let a = assumed(&c, "demo", Some("python:3.12.11-slim-bookworm"));
        let policy: serde_json::Value = serde_json::from_str(&a.policy).unwrap();
        assert_eq!(policy["Statement"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn repositories_of_images_in_a_registry() {
        let r = "123456789012.dkr.ecr.eu-west-1.amazonaws.com";
        assert_eq!(
            repository_in_registry(&format!("{r}/mirror/python:3.12"), r).as_deref(),
            Some("mirror/python")
        );
        assert_eq!(
            repository_in_registry(&format!("{r}/python@sha256:{}", "a".repeat(64)), r).as_deref(),
            Some("python")
        );
        assert_eq!(repository_in_registry("python:3.12", r), None);
        assert_eq!(
            repository_in_registry(&format!("{r}.evil.example/python:3.12"), r),
            None
        );
    }

    #[test]
    fn session_name_duration_and_partition() {
        let long = ProjectId::parse(&"a".repeat(48)).unwrap();
        let name = session_name(&long);
        assert!(name.len() <= 64, "{name}");
        assert!(name.ends_with(long.as_str()));
        assert_eq!(session_duration(Duration::from_secs(60)), 900);
        assert_eq!(session_duration(Duration::from_secs(1800)), 1800);
        assert_eq!(session_duration(Duration::from_secs(100_000)), 43_200);
        assert_eq!(partition("cn-north-1"), "aws-cn");
        assert_eq!(partition("us-gov-west-1"), "aws-us-gov");
        assert_eq!(partition("us-east-1"), "aws");
    }

    #[test]
    fn settings_decide_the_credentials_and_bad_ones_say_the_fix() {
        let p = ProjectId::parse("demo").unwrap();
        let t = Duration::from_secs(300);
        // Not ECR: nothing, whatever the settings.
        assert_eq!(
            plan(&cfg(&[]), &p, None, "b", None, true, t).unwrap(),
            BuildCredentials::None
        );
        let sa = cfg(&[("BUILDER_CREDENTIALS", "service-account")]);
        let err = plan(&sa, &p, Some(&ecr()), "b", None, true, t)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("no longer supported") && err.contains("broker"),
            "{err}"
        );
        let err = plan(&cfg(&[]), &p, Some(&ecr()), "b", None, true, t)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("BUILDER_ROLE_ARN") && err.contains("broker"),
            "{err}"
        );
        let bad = cfg(&[("BUILDER_ROLE_ARN", "arn:aws:iam::123456789012:user/me")]);
        assert!(
            plan(&bad, &p, Some(&ecr()), "b", None, true, t)
                .unwrap_err()
                .to_string()
                .contains("not an IAM role ARN")
        );
        let invalid = cfg(&[("BUILDER_CREDENTIALS", "static-keys")]);
        assert!(
            plan(&invalid, &p, Some(&ecr()), "b", None, true, t)
                .unwrap_err()
                .to_string()
                .contains("static-keys")
        );
        let ok = cfg(&[("BUILDER_ROLE_ARN", ROLE)]);
        let a = assumed(&ok, "demo", None);
        assert_eq!(a.role_arn, ROLE);
        assert_eq!(a.session_name, "jockey-build-demo");
        assert_eq!(a.secret, "b-aws");
        assert_eq!(a.region, "eu-west-1");
        assert_eq!(a.duration_seconds, 900);
    }

    #[test]
    fn role_arns() {
        assert!(is_role_arn(ROLE));
        assert!(is_role_arn(
            "arn:aws-cn:iam::123456789012:role/path/jockey-builder"
        ));
        for bad in [
            "",
            "jockey-builder",
            "arn:aws:iam::123456789012:role/",
            "arn:aws:iam::12345:role/x",
            "arn:aws:sts::123456789012:assumed-role/x/y",
            "arn:aws:iam::123456789012:user/x",
        ] {
            assert!(!is_role_arn(bad), "{bad}");
        }
    }

    #[test]
    fn the_secret_holds_the_keys_and_records_what_was_asked_never_printing_them() {
        let c = cfg(&[("BUILDER_ROLE_ARN", ROLE)]);
        let a = assumed(&c, "demo", None);
        let issued = Issued {
            access_key_id: "ASIAEXAMPLE".into(),
            secret_access_key: "s3cret".into(),
            session_token: "t0ken".into(),
            expires: "2030-01-01T00:00:00Z".into(),
            assumed_role_arn: "arn:aws:sts::123456789012:assumed-role/jockey-builder/x".into(),
        };
        let s = credentials_secret(&a, "builder", BTreeMap::new(), &issued);
        let data = s.string_data.clone().unwrap();
        assert_eq!(data[ACCESS_KEY_ID], "ASIAEXAMPLE");
        assert_eq!(data[SECRET_ACCESS_KEY], "s3cret");
        assert_eq!(data[SESSION_TOKEN], "t0ken");
        assert_eq!(s.metadata.name.as_deref(), Some("b-aws"));
        assert_eq!(s.immutable, Some(true));
        let annotations = s.metadata.annotations.clone().unwrap();
        assert_eq!(annotations[ANNOTATION_SESSION_POLICY], a.policy);
        assert!(
            !annotations
                .values()
                .any(|v| v.contains("s3cret") || v.contains("t0ken"))
        );
        let shown = format!("{issued:?}");
        assert!(
            !shown.contains("s3cret") && !shown.contains("t0ken"),
            "{shown}"
        );
    }
}
