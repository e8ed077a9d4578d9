//! AWS SDK configuration shared by the ALB and ECR commands.
//!
//! Everything comes from the SDK's standard sources so that jockey behaves like the AWS CLI on
//! the same machine: the region (`--region`, else `AWS_REGION`, else the profile), the standard
//! credential chain (environment, shared config/credentials files, SSO, web identity, container
//! and instance metadata) and the endpoint override `AWS_ENDPOINT_URL` /
//! `AWS_ENDPOINT_URL_<SERVICE>` (how the tests point jockey at a local moto server).

use aws_config::{BehaviorVersion, Region, SdkConfig};
use std::time::Duration;

/// Loads the SDK configuration. `region` overrides the environment and profile.
pub async fn sdk_config(region: Option<&str>) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(https_client())
        // A missing or unreachable endpoint must not hang a status command for the SDK's
        // default timeouts; these are generous for the few small calls jockey makes.
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_timeout(Duration::from_secs(30))
                .build(),
        );
    if let Some(region) = region.filter(|r| !r.trim().is_empty()) {
        loader = loader.region(Region::new(region.trim().to_string()));
    }
    loader.load().await
}

/// The SDK's HTTPS client on rustls with the ring provider, chosen explicitly: kube uses ring
/// too, and a second provider (the SDK's default aws-lc-rs) would leave rustls without a
/// process-wide default, which makes every kube client panic.
pub fn https_client() -> aws_sdk_ecr::config::SharedHttpClient {
    use aws_smithy_http_client::tls;
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https()
}

/// Whether AWS is usable at all: credentials and a region are configured. Commands whose AWS
/// part is optional (`alb-status`, `validate-alb-routing`, the ECR check in `deploy`) skip it,
/// saying so, when this is false, instead of failing on a laptop without AWS access.
pub async fn available(config: &SdkConfig) -> Result<(), String> {
    if config.region().is_none() {
        return Err("no AWS region configured (set AWS_REGION or pass --region)".into());
    }
    let Some(provider) = config.credentials_provider() else {
        return Err("no AWS credentials provider configured".into());
    };
    use aws_sdk_ecr::config::ProvideCredentials as _;
    match provider.provide_credentials().await {
        Ok(_) => Ok(()),
        Err(err) => Err(format!(
            "no AWS credentials found ({}); configure them as for the AWS CLI \
             (AWS_PROFILE, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, SSO or an instance role)",
            error_chain(&err)
        )),
    }
}

/// Renders an error with its sources, which is where the SDK puts the actual cause.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}
