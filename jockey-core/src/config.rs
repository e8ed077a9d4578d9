//! Configuration shared by plugin and webhook: flag > environment > default. Flags are applied by
//! the binaries on top of [`Config::from_lookup`].

pub const DEFAULT_DEPLOYMENT_DOMAIN: &str = "deploy.agentops.ai";
pub const DEFAULT_ALB_SHARED_GROUP_NAME: &str = "alb-deployments";
pub const DEFAULT_BUILDER_NAMESPACE: &str = "builder";
pub const DEFAULT_IMAGE_REPOSITORY_PREFIX: &str = "hosting";
/// Pinned so a build is reproducible; `:latest` is never used.
pub const DEFAULT_KANIKO_IMAGE: &str = "gcr.io/kaniko-project/executor:v1.23.2";
/// The `FROM` of the built-in Dockerfile: a pinned Python 3.12 slim release, so the same files
/// build on the same base until someone chooses another (a private mirror sets `BASE_IMAGE`).
pub const DEFAULT_BASE_IMAGE: &str = "python:3.12.11-slim-bookworm";

/// Where the Kaniko pod of a build pushing to ECR gets AWS credentials from. Never from keys
/// stored in the cluster: the pod runs the tenant's Dockerfile as root and can read them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum BuilderCredentials {
    /// `assume-role` (default): `deploy` calls STS AssumeRole on `BUILDER_ROLE_ARN` with a
    /// session policy allowing pushes to the project's repositories only, and hands the
    /// short-lived result to the build in a Secret that lives and dies with its Job.
    #[default]
    AssumeRole,
    /// `service-account`: the builder service account carries an IAM role (IRSA or EKS Pod
    /// Identity); the Job gets no Secret and no keys at all.
    ServiceAccount,
    /// Anything else, kept to be refused with the accepted values when a build needs it.
    Invalid(String),
}

impl BuilderCredentials {
    pub fn parse(value: &str) -> Self {
        match value.trim().to_ascii_lowercase().as_str() {
            "assume-role" => Self::AssumeRole,
            "service-account" | "irsa" | "pod-identity" => Self::ServiceAccount,
            _ => Self::Invalid(value.trim().to_string()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub deployment_domain: String,
    pub alb_shared_group_name: String,
    /// Further ALB groups every project may join (`ALB_ALLOWED_GROUPS`, comma-separated): the
    /// webhook and the API server's admission policy read this one value.
    pub alb_allowed_groups: Vec<String>,
    pub builder_namespace: String,
    /// None until configured: a build needs it.
    pub image_registry: Option<String>,
    pub image_repository_prefix: String,
    pub aws_region: Option<String>,
    pub kaniko_image: String,
    /// The `FROM` of the built-in Dockerfile; checked by [`check_base_image`] before a build.
    pub base_image: String,
    /// IAM role each build's short-lived ECR credentials are assumed from (`BUILDER_ROLE_ARN`).
    pub builder_role_arn: Option<String>,
    /// How a build pushing to ECR gets its credentials (`BUILDER_CREDENTIALS`).
    pub builder_credentials: BuilderCredentials,
    /// `alb.ingress.kubernetes.io/certificate-arn` for every Ingress, where configured.
    pub certificate_arn: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self::from_lookup(|_| None)
    }
}

impl Config {
    /// Reads each variable through `lookup` (the environment, in the binaries); empty values
    /// count as unset so that `FOO= cmd` falls back to the default.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let get = |k: &str| lookup(k).filter(|v| !v.trim().is_empty());
        Self {
            deployment_domain: get("DEPLOYMENT_DOMAIN")
                .unwrap_or_else(|| DEFAULT_DEPLOYMENT_DOMAIN.into())
                .trim_matches('.')
                .to_ascii_lowercase(),
            alb_shared_group_name: get("ALB_SHARED_GROUP_NAME")
                .unwrap_or_else(|| DEFAULT_ALB_SHARED_GROUP_NAME.into()),
            alb_allowed_groups: get("ALB_ALLOWED_GROUPS")
                .map(|v| {
                    v.split(',')
                        .map(str::trim)
                        .filter(|g| !g.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
            builder_namespace: get("BUILDER_NAMESPACE")
                .unwrap_or_else(|| DEFAULT_BUILDER_NAMESPACE.into()),
            image_registry: get("IMAGE_REGISTRY").map(|r| r.trim_end_matches('/').to_string()),
            image_repository_prefix: get("IMAGE_REPOSITORY_PREFIX")
                .unwrap_or_else(|| DEFAULT_IMAGE_REPOSITORY_PREFIX.into()),
            aws_region: get("AWS_REGION").or_else(|| get("AWS_DEFAULT_REGION")),
            kaniko_image: get("KANIKO_IMAGE").unwrap_or_else(|| DEFAULT_KANIKO_IMAGE.into()),
            builder_role_arn: get("BUILDER_ROLE_ARN").map(|v| v.trim().to_string()),
            builder_credentials: get("BUILDER_CREDENTIALS")
                .map(|v| BuilderCredentials::parse(&v))
                .unwrap_or_default(),
            base_image: get("BASE_IMAGE")
                .map(|v| v.trim().to_string())
                .unwrap_or_else(|| DEFAULT_BASE_IMAGE.into()),
            certificate_arn: get("ALB_CERTIFICATE_ARN"),
        }
    }
}

impl Config {
    /// Refuses settings that would only fail half-way, after something was written: a domain
    /// the API server refuses as an Ingress host, a registry or repository prefix no image
    /// reference can hold, an ALB group or builder namespace Kubernetes cannot name. Every
    /// message names the variable, its flag and the fix. Pure.
    pub fn check(&self) -> Result<(), String> {
        let label = |s: &str| {
            !s.is_empty()
                && s.len() <= 63
                && s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !s.starts_with('-')
                && !s.ends_with('-')
        };
        let subdomain = |s: &str| s.len() <= 253 && s.split('.').all(label);
        if !subdomain(&self.deployment_domain) {
            return Err(format!(
                "DEPLOYMENT_DOMAIN {:?} is not a DNS name (lowercase letters, digits, '-' and '.'); set DEPLOYMENT_DOMAIN (or --deployment-domain) to a domain such as deploy.example.com",
                self.deployment_domain
            ));
        }
        if self.alb_shared_group_name.len() > 63 || !subdomain(&self.alb_shared_group_name) {
            return Err(format!(
                "ALB_SHARED_GROUP_NAME {:?} is not an ALB group name (at most 63 lowercase letters, digits, '-' and '.'); set ALB_SHARED_GROUP_NAME (or --alb-group) to one such as alb-deployments",
                self.alb_shared_group_name
            ));
        }
        if let Some(g) = self
            .alb_allowed_groups
            .iter()
            .find(|g| g.len() > 63 || !subdomain(g) || **g == self.alb_shared_group_name)
        {
            return Err(format!(
                "ALB_ALLOWED_GROUPS names {g:?}, which is not an ALB group name other than ALB_SHARED_GROUP_NAME (at most 63 lowercase letters, digits, '-' and '.'); list other groups only, comma-separated, e.g. alb-internal"
            ));
        }
        if !label(&self.builder_namespace) {
            return Err(format!(
                "BUILDER_NAMESPACE {:?} is not a namespace name (a DNS-1123 label); set BUILDER_NAMESPACE (or --builder-namespace) to the namespace setup-builder prepared, e.g. builder",
                self.builder_namespace
            ));
        }
        let path_ok = |s: &str| {
            s.split('/').all(|c| {
                !c.is_empty()
                    && c.bytes().all(|b| {
                        b.is_ascii_lowercase()
                            || b.is_ascii_digit()
                            || matches!(b, b'.' | b'_' | b'-')
                    })
            })
        };
        if !path_ok(&self.image_repository_prefix) {
            return Err(format!(
                "IMAGE_REPOSITORY_PREFIX {:?} is not a repository path (lowercase letters, digits, '.', '_', '-', separated by '/'); set IMAGE_REPOSITORY_PREFIX (or --image-repository-prefix) to one such as hosting",
                self.image_repository_prefix
            ));
        }
        if let Some(registry) = &self.image_registry {
            let (host, path) = registry.split_once('/').unwrap_or((registry, ""));
            let host_ok = !host.is_empty()
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':'));
            if !host_ok || (!path.is_empty() && !path_ok(path)) {
                return Err(format!(
                    "IMAGE_REGISTRY {registry:?} is not a registry host (HOST[:PORT][/PATH], no scheme, no spaces); set IMAGE_REGISTRY (or --image-registry) to one such as 123456789012.dkr.ecr.us-east-1.amazonaws.com or registry.local:5000"
                ));
            }
        }
        if self.kaniko_image.is_empty()
            || self
                .kaniko_image
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(format!(
                "KANIKO_IMAGE {:?} is not one image reference; set KANIKO_IMAGE (or --kaniko-image) to a Kaniko executor image, or unset it for the default",
                self.kaniko_image
            ));
        }
        Ok(())
    }
}

/// Refuses a `BASE_IMAGE` that would not build the same base every time or would not be one
/// `FROM` line: empty, containing whitespace or control characters (a newline would add
/// instructions to the Dockerfile), without a tag or digest, or tagged `latest`. Pure.
pub fn check_base_image(image: &str) -> Result<(), String> {
    let fix = "set BASE_IMAGE (or --base-image) to a pinned image such as \
               python:3.12.11-slim-bookworm or python@sha256:<digest>";
    if image.is_empty() {
        return Err(format!("BASE_IMAGE is empty; {fix}"));
    }
    if image.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "BASE_IMAGE {image:?} contains whitespace or a control character; it must be one \
             image reference; {fix}"
        ));
    }
    if let Some((_, digest)) = image.split_once('@') {
        let hex = digest.strip_prefix("sha256:").unwrap_or("");
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!(
                "BASE_IMAGE {image:?} has a malformed digest (expected sha256: and 64 hex \
                 digits); {fix}"
            ));
        }
        return Ok(());
    }
    // The tag follows the last ':' after the last '/' (a registry host may carry a port).
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once(':') {
        None => Err(format!(
            "BASE_IMAGE {image:?} has no tag, which means `latest`: a base that changes under \
             the same files; {fix}"
        )),
        Some((_, "latest")) => Err(format!(
            "BASE_IMAGE {image:?} is tagged `latest`, a base that changes under the same files; \
             {fix}"
        )),
        Some((_, "")) => Err(format!("BASE_IMAGE {image:?} has an empty tag; {fix}")),
        Some(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_pass_the_check_and_each_bad_setting_is_named() {
        assert_eq!(Config::default().check(), Ok(()));
        let with = |k: &'static str, v: &'static str| {
            Config::from_lookup(move |key| (key == k).then(|| v.to_string()))
        };
        assert_eq!(
            with("IMAGE_REGISTRY", "registry.local:5000/team").check(),
            Ok(())
        );
        for (var, value) in [
            ("DEPLOYMENT_DOMAIN", "bad domain"),
            ("DEPLOYMENT_DOMAIN", "Under_Score.example"),
            ("ALB_SHARED_GROUP_NAME", "Bad Group"),
            ("BUILDER_NAMESPACE", "Bad_NS"),
            ("IMAGE_REPOSITORY_PREFIX", "UP/x"),
            ("IMAGE_REPOSITORY_PREFIX", "a//b"),
            ("IMAGE_REGISTRY", "https://reg.example"),
            ("IMAGE_REGISTRY", "reg example"),
            ("KANIKO_IMAGE", "kaniko\nRUN x"),
        ] {
            let e = with(var, value).check().unwrap_err();
            assert!(
                e.starts_with(var) && e.contains("; set "),
                "{var}={value}: {e}"
            );
        }
    }
    use std::collections::HashMap;

    #[test]
    fn defaults() {
        let c = Config::default();
        assert_eq!(c.deployment_domain, "deploy.agentops.ai");
        assert_eq!(c.alb_shared_group_name, "alb-deployments");
        assert_eq!(c.builder_namespace, "builder");
        assert_eq!(c.image_registry, None);
        assert_eq!(c.image_repository_prefix, "hosting");
        assert!(!c.kaniko_image.ends_with(":latest"));
        assert!(c.base_image.starts_with("python:3.12."), "{}", c.base_image);
        assert!(c.base_image.contains("-slim"), "{}", c.base_image);
        assert_eq!(check_base_image(&c.base_image), Ok(()));
    }

    #[test]
    fn builder_credentials_settings() {
        let c = Config::default();
        assert_eq!(c.builder_credentials, BuilderCredentials::AssumeRole);
        assert_eq!(c.builder_role_arn, None);
        let env: HashMap<&str, &str> = [
            ("BUILDER_CREDENTIALS", " Service-Account "),
            (
                "BUILDER_ROLE_ARN",
                "arn:aws:iam::123456789012:role/jockey-builder ",
            ),
        ]
        .into();
        let c = Config::from_lookup(|k| env.get(k).map(|v| v.to_string()));
        assert_eq!(c.builder_credentials, BuilderCredentials::ServiceAccount);
        assert_eq!(
            c.builder_role_arn.as_deref(),
            Some("arn:aws:iam::123456789012:role/jockey-builder")
        );
        assert_eq!(
            BuilderCredentials::parse("keys"),
            BuilderCredentials::Invalid("keys".into())
        );
        assert_eq!(
            BuilderCredentials::parse("irsa"),
            BuilderCredentials::ServiceAccount
        );
    }

    #[test]
    fn base_image_from_the_environment() {
        let c = Config::from_lookup(|k| {
            (k == "BASE_IMAGE").then(|| " mirror.example:5000/python:3.12-slim ".to_string())
        });
        assert_eq!(c.base_image, "mirror.example:5000/python:3.12-slim");
    }

    #[test]
    fn base_image_must_be_pinned_and_one_reference() {
        let digest = format!("python@sha256:{}", "a".repeat(64));
        for ok in [
            "python:3.12.11-slim-bookworm",
            "mirror.example:5000/library/python:3.12-slim",
            digest.as_str(),
        ] {
            assert_eq!(check_base_image(ok), Ok(()), "{ok}");
        }
        for (bad, why) in [
            ("", "empty"),
            ("python", "no tag"),
            ("mirror.example:5000/python", "no tag"),
            ("python:latest", "latest"),
            ("python:", "empty tag"),
            ("python:3.12\nRUN curl evil", "whitespace"),
            ("python:3.12 AS x", "whitespace"),
            ("python@sha256:abc", "malformed digest"),
        ] {
            let err = check_base_image(bad).unwrap_err();
            assert!(
                err.contains(why) && err.contains("BASE_IMAGE"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn environment_overrides_and_empty_is_unset() {
        let env: HashMap<&str, &str> = [
            ("DEPLOYMENT_DOMAIN", "Apps.Example.com."),
            ("IMAGE_REGISTRY", "1.dkr.ecr.us-east-1.amazonaws.com/"),
            ("BUILDER_NAMESPACE", ""),
        ]
        .into();
        let c = Config::from_lookup(|k| env.get(k).map(|v| v.to_string()));
        assert_eq!(c.deployment_domain, "apps.example.com");
        assert_eq!(
            c.image_registry.as_deref(),
            Some("1.dkr.ecr.us-east-1.amazonaws.com")
        );
        assert_eq!(c.builder_namespace, "builder");
    }
}
