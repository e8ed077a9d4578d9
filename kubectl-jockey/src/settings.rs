//! Configuration flags of the spec's table (flag > environment > default): each flag overrides
//! what [`jockey_core::Config::from_lookup`] read from the environment.

use jockey_core::Config;

#[derive(clap::Args, Debug, Clone, Default)]
pub struct ConfigArgs {
    /// Base domain of project hosts [env: DEPLOYMENT_DOMAIN; default: deploy.agentops.ai].
    #[arg(long, value_name = "DOMAIN")]
    pub deployment_domain: Option<String>,
    /// Registry images are pushed to, e.g. 123456789012.dkr.ecr.us-east-1.amazonaws.com
    /// [env: IMAGE_REGISTRY].
    #[arg(long, value_name = "REGISTRY")]
    pub image_registry: Option<String>,
    /// Repository prefix under the registry [env: IMAGE_REPOSITORY_PREFIX; default: hosting].
    #[arg(long, value_name = "PREFIX")]
    pub image_repository_prefix: Option<String>,
    /// Namespace the Kaniko build Jobs run in [env: BUILDER_NAMESPACE; default: builder].
    #[arg(long, value_name = "NAMESPACE")]
    pub builder_namespace: Option<String>,
    /// The shared ALB group [env: ALB_SHARED_GROUP_NAME; default: alb-deployments].
    #[arg(long, value_name = "GROUP")]
    pub alb_group: Option<String>,
    /// Kaniko executor image (pinned) [env: KANIKO_IMAGE].
    #[arg(long, value_name = "IMAGE")]
    pub kaniko_image: Option<String>,
    /// `FROM` of the built-in Dockerfile, pinned (a private mirror sets it)
    /// [env: BASE_IMAGE; default: python:3.12.11-slim-bookworm].
    #[arg(long, value_name = "IMAGE")]
    pub base_image: Option<String>,
    /// IAM role each build assumes for short-lived ECR push credentials, scoped to the project
    /// [env: BUILDER_ROLE_ARN].
    #[arg(long, value_name = "ARN")]
    pub builder_role_arn: Option<String>,
    /// How builds pushing to ECR get credentials: `assume-role` (per build, from
    /// BUILDER_ROLE_ARN) or `service-account` (IRSA / EKS Pod Identity on the builder service
    /// account) [env: BUILDER_CREDENTIALS; default: assume-role].
    #[arg(long, value_name = "MODE")]
    pub builder_credentials: Option<String>,
}

impl ConfigArgs {
    /// The environment's configuration with these flags on top.
    pub fn resolve(&self) -> Config {
        self.resolve_with(|k| std::env::var(k).ok())
    }

    pub fn resolve_with(&self, lookup: impl Fn(&str) -> Option<String>) -> Config {
        let flags = [
            ("DEPLOYMENT_DOMAIN", &self.deployment_domain),
            ("IMAGE_REGISTRY", &self.image_registry),
            ("IMAGE_REPOSITORY_PREFIX", &self.image_repository_prefix),
            ("BUILDER_NAMESPACE", &self.builder_namespace),
            ("ALB_SHARED_GROUP_NAME", &self.alb_group),
            ("KANIKO_IMAGE", &self.kaniko_image),
            ("BASE_IMAGE", &self.base_image),
            ("BUILDER_ROLE_ARN", &self.builder_role_arn),
            ("BUILDER_CREDENTIALS", &self.builder_credentials),
        ];
        // Going through from_lookup keeps one normalisation (trimming, lowercasing) for both.
        Config::from_lookup(|key| {
            flags
                .iter()
                .find(|(k, v)| *k == key && v.is_some())
                .and_then(|(_, v)| (*v).clone())
                .or_else(|| lookup(key))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_beats_environment_beats_default() {
        let args = ConfigArgs {
            image_registry: Some("flag.example".into()),
            ..Default::default()
        };
        let env = |k: &str| match k {
            "IMAGE_REGISTRY" => Some("env.example".to_string()),
            "DEPLOYMENT_DOMAIN" => Some("env.domain".to_string()),
            _ => None,
        };
        let cfg = args.resolve_with(env);
        assert_eq!(cfg.image_registry.as_deref(), Some("flag.example"));
        assert_eq!(cfg.deployment_domain, "env.domain");
        assert_eq!(cfg.builder_namespace, "builder");
        assert_eq!(cfg.base_image, jockey_core::config::DEFAULT_BASE_IMAGE);
    }

    #[test]
    fn base_image_flag_beats_environment() {
        let env = |k: &str| (k == "BASE_IMAGE").then(|| "env.example/python:3.12-slim".to_string());
        assert_eq!(
            ConfigArgs::default().resolve_with(env).base_image,
            "env.example/python:3.12-slim"
        );
        let args = ConfigArgs {
            base_image: Some("flag.example/python:3.12-slim".into()),
            ..Default::default()
        };
        assert_eq!(
            args.resolve_with(env).base_image,
            "flag.example/python:3.12-slim"
        );
    }
}
