//! The AWS SDK configuration every test uses to talk to a local moto server: the same rustls+ring
//! HTTP client as the plugin (see the workspace Cargo.toml), moto's fixed test credentials and
//! region, and the server's address as the endpoint of every service.

use aws_config::SdkConfig;

pub async fn moto_sdk_config(endpoint: &str) -> SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(
            aws_smithy_http_client::Builder::new()
                .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                    aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
                ))
                .build_https(),
        )
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sts::config::Credentials::new(
            "testing", "testing", None, None, "moto",
        ))
        .endpoint_url(endpoint)
        .load()
        .await
}
