//! Configuration flags of the spec's table: clap gives flag > environment (`env = ...`, shown
//! as `[env: ...]` in `--help`) > default, and [`jockey_core::Config::from_lookup`] normalises
//! the result (trimming, lowercasing, empty = unset) the same way for the webhook.

use jockey_core::Config;
use jockey_core::config::{
    DEFAULT_ALB_SHARED_GROUP_NAME, DEFAULT_BASE_IMAGE, DEFAULT_BUILDER_NAMESPACE,
    DEFAULT_DEPLOYMENT_DOMAIN, DEFAULT_IMAGE_REPOSITORY_PREFIX, DEFAULT_KANIKO_IMAGE,
};

#[derive(clap::Args, Debug, Clone, Default)]
pub struct ConfigArgs {
    /// Base domain of project hosts.
    #[arg(long, value_name = "DOMAIN", env = "DEPLOYMENT_DOMAIN",
          default_value = DEFAULT_DEPLOYMENT_DOMAIN)]
    pub deployment_domain: String,
    /// Registry images are pushed to, e.g. 123456789012.dkr.ecr.us-east-1.amazonaws.com
    /// (a build needs it).
    #[arg(long, value_name = "REGISTRY", env = "IMAGE_REGISTRY")]
    pub image_registry: Option<String>,
    /// Repository prefix under the registry.
    #[arg(long, value_name = "PREFIX", env = "IMAGE_REPOSITORY_PREFIX",
          default_value = DEFAULT_IMAGE_REPOSITORY_PREFIX)]
    pub image_repository_prefix: String,
    /// Namespace the Kaniko build Jobs run in.
    #[arg(long, value_name = "NAMESPACE", env = "BUILDER_NAMESPACE",
          default_value = DEFAULT_BUILDER_NAMESPACE)]
    pub builder_namespace: String,
    /// The shared ALB group.
    #[arg(long, value_name = "GROUP", env = "ALB_SHARED_GROUP_NAME",
          default_value = DEFAULT_ALB_SHARED_GROUP_NAME)]
    pub alb_group: String,
    /// ACM certificate for the ALB's HTTPS listener (the Ingress's certificate-arn).
    #[arg(long, value_name = "ARN", env = "ALB_CERTIFICATE_ARN")]
    pub certificate_arn: Option<String>,
    /// AWS region, where the registry's host name does not say it (default: the AWS profile's;
    /// AWS_DEFAULT_REGION is read too).
    #[arg(long, value_name = "REGION", env = "AWS_REGION")]
    pub region: Option<String>,
    /// Kaniko executor image (pinned).
    #[arg(long, value_name = "IMAGE", env = "KANIKO_IMAGE", default_value = DEFAULT_KANIKO_IMAGE)]
    pub kaniko_image: String,
    /// `FROM` of the built-in Dockerfile, pinned (a private mirror sets it).
    #[arg(long, value_name = "IMAGE", env = "BASE_IMAGE", default_value = DEFAULT_BASE_IMAGE)]
    pub base_image: String,
    /// IAM role each build assumes for short-lived ECR push credentials, scoped to the project.
    #[arg(long, value_name = "ARN", env = "BUILDER_ROLE_ARN")]
    pub builder_role_arn: Option<String>,
    /// How builds pushing to ECR get credentials: `assume-role` (per build, from
    /// BUILDER_ROLE_ARN) or `service-account` (IRSA / EKS Pod Identity on the builder service
    /// account).
    #[arg(
        long,
        value_name = "MODE",
        env = "BUILDER_CREDENTIALS",
        default_value = "assume-role"
    )]
    pub builder_credentials: String,
}

impl ConfigArgs {
    /// The configuration these flags (and, through clap, the environment) give.
    pub fn resolve(&self) -> Config {
        // The AWS CLI's older name for the region: clap's `env` takes one variable per flag.
        let default_region = std::env::var("AWS_DEFAULT_REGION").ok();
        self.resolve_with(default_region)
    }

    /// Pure: `aws_default_region` is AWS_DEFAULT_REGION, used when no region was given.
    pub fn resolve_with(&self, aws_default_region: Option<String>) -> Config {
        let some = |v: &String| Some(v.clone());
        // Going through from_lookup keeps one normalisation (trimming, lowercasing, empty =
        // unset) for the plugin and the webhook.
        Config::from_lookup(|key| match key {
            "DEPLOYMENT_DOMAIN" => some(&self.deployment_domain),
            "IMAGE_REGISTRY" => self.image_registry.clone(),
            "IMAGE_REPOSITORY_PREFIX" => some(&self.image_repository_prefix),
            "BUILDER_NAMESPACE" => some(&self.builder_namespace),
            "ALB_SHARED_GROUP_NAME" => some(&self.alb_group),
            "ALB_CERTIFICATE_ARN" => self.certificate_arn.clone(),
            "AWS_REGION" => self.region.clone(),
            "AWS_DEFAULT_REGION" => aws_default_region.clone(),
            "KANIKO_IMAGE" => some(&self.kaniko_image),
            "BASE_IMAGE" => some(&self.base_image),
            "BUILDER_ROLE_ARN" => self.builder_role_arn.clone(),
            "BUILDER_CREDENTIALS" => some(&self.builder_credentials),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        config: ConfigArgs,
    }

    // Whatever the test process's environment holds, a flag wins (clap's precedence); the
    // environment and default sides run the real binary in kubectl-jockey/tests/cli.rs.
    #[test]
    fn flags_win_and_are_normalised_like_the_environment() {
        let cli = Cli::try_parse_from([
            "t",
            "--image-registry",
            "flag.example/",
            "--deployment-domain",
            "Apps.Example.com.",
            "--base-image",
            "flag.example/python:3.12-slim",
            "--builder-credentials",
            " Service-Account ",
            "--region",
            "eu-west-1",
            "--certificate-arn",
            "arn:aws:acm:us-east-1:1:certificate/c",
        ])
        .unwrap();
        let cfg = cli.config.resolve_with(Some("us-east-2".into()));
        assert_eq!(cfg.image_registry.as_deref(), Some("flag.example"));
        assert_eq!(cfg.deployment_domain, "apps.example.com");
        assert_eq!(cfg.base_image, "flag.example/python:3.12-slim");
        assert_eq!(
            cfg.builder_credentials,
            jockey_core::BuilderCredentials::ServiceAccount
        );
        assert_eq!(cfg.aws_region.as_deref(), Some("eu-west-1"));
        assert_eq!(
            cfg.certificate_arn.as_deref(),
            Some("arn:aws:acm:us-east-1:1:certificate/c")
        );
    }

    #[test]
    fn empty_values_mean_the_default_and_the_older_region_name_is_a_fallback() {
        let cfg = ConfigArgs::default().resolve_with(Some("us-east-2".into()));
        assert_eq!(
            cfg,
            Config {
                aws_region: Some("us-east-2".into()),
                ..Config::default()
            }
        );
    }
}
