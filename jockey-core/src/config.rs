//! Configuration shared by plugin and webhook: flag > environment > default. Flags are applied by
//! the binaries on top of [`Config::from_lookup`].

pub const DEFAULT_DEPLOYMENT_DOMAIN: &str = "deploy.agentops.ai";
pub const DEFAULT_ALB_SHARED_GROUP_NAME: &str = "alb-deployments";
pub const DEFAULT_BUILDER_NAMESPACE: &str = "builder";
pub const DEFAULT_IMAGE_REPOSITORY_PREFIX: &str = "hosting";
/// Pinned so a build is reproducible; `:latest` is never used.
pub const DEFAULT_KANIKO_IMAGE: &str = "gcr.io/kaniko-project/executor:v1.23.2";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub deployment_domain: String,
    pub alb_shared_group_name: String,
    pub builder_namespace: String,
    /// None until configured: a build needs it.
    pub image_registry: Option<String>,
    pub image_repository_prefix: String,
    pub aws_region: Option<String>,
    pub kaniko_image: String,
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
            builder_namespace: get("BUILDER_NAMESPACE")
                .unwrap_or_else(|| DEFAULT_BUILDER_NAMESPACE.into()),
            image_registry: get("IMAGE_REGISTRY").map(|r| r.trim_end_matches('/').to_string()),
            image_repository_prefix: get("IMAGE_REPOSITORY_PREFIX")
                .unwrap_or_else(|| DEFAULT_IMAGE_REPOSITORY_PREFIX.into()),
            aws_region: get("AWS_REGION").or_else(|| get("AWS_DEFAULT_REGION")),
            kaniko_image: get("KANIKO_IMAGE").unwrap_or_else(|| DEFAULT_KANIKO_IMAGE.into()),
            certificate_arn: get("ALB_CERTIFICATE_ARN"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
