//! The AWS adapter of `check`: the subnets an ALB can use (EC2) and the certificates that can
//! serve jockey's hosts (ACM), through the official SDK with the standard AWS configuration
//! (`--region`/AWS_REGION, the credential chain, AWS_ENDPOINT_URL), as the ALB commands read it.

use super::controller::{AwsRead, Certificate, ELB_ROLE_TAG, Subnet};
use aws_config::SdkConfig;
use aws_sdk_acm as acm;
use aws_sdk_ec2 as ec2;

/// The SDK configuration, or why AWS is not usable (the AWS checks are then skipped, saying so).
pub async fn config(region: Option<&str>, no_aws: bool) -> Result<SdkConfig, String> {
    if no_aws {
        return Err("--no-aws".into());
    }
    let sdk = jockey_build::aws::sdk_config(region).await;
    jockey_build::aws::available(&sdk).await?;
    Ok(sdk)
}

fn sdk_error(err: &(dyn std::error::Error + 'static), what: &str) -> String {
    format!("{what}: {}", jockey_build::aws::error_chain(err))
}

/// Subnets tagged `kubernetes.io/role/elb` (value `1` or empty, as the controller takes them),
/// in `vpc_id` when given.
pub async fn subnets(
    sdk: &Result<SdkConfig, String>,
    vpc_id: Option<&str>,
) -> AwsRead<Vec<Subnet>> {
    let sdk = match sdk {
        Ok(s) => s,
        Err(why) => return AwsRead::Skipped(why.clone()),
    };
    let client = ec2::Client::new(sdk);
    let mut req = client.describe_subnets().filters(
        ec2::types::Filter::builder()
            .name("tag-key")
            .values(ELB_ROLE_TAG)
            .build(),
    );
    if let Some(vpc) = vpc_id {
        req = req.filters(
            ec2::types::Filter::builder()
                .name("vpc-id")
                .values(vpc)
                .build(),
        );
    }
    let mut out = Vec::new();
    let mut pages = req.into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = match page {
            Ok(p) => p,
            Err(e) => {
                return AwsRead::Failed(sdk_error(&e, "listing subnets (ec2:DescribeSubnets)"));
            }
        };
        for s in page.subnets() {
            let role = s
                .tags()
                .iter()
                .find(|t| t.key() == Some(ELB_ROLE_TAG))
                .and_then(|t| t.value());
            if !matches!(role, Some("1") | Some("")) {
                continue;
            }
            out.push(Subnet {
                id: s.subnet_id().unwrap_or_default().to_string(),
                zone: s.availability_zone().unwrap_or_default().to_string(),
            });
        }
    }
    AwsRead::Read(out)
}

fn certificate(d: &acm::types::CertificateDetail) -> Certificate {
    let mut names: Vec<String> = d.domain_name().into_iter().map(str::to_string).collect();
    for n in d.subject_alternative_names() {
        if !names.contains(n) {
            names.push(n.clone());
        }
    }
    Certificate {
        arn: d.certificate_arn().unwrap_or_default().to_string(),
        status: d
            .status()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        names,
        not_after: d.not_after().map(|t| t.secs()),
    }
}

/// The configured certificate (`arn`), else every certificate of the account and region (the
/// controller can discover one by host when the Ingress names none).
pub async fn certificates(
    sdk: &Result<SdkConfig, String>,
    arn: Option<&str>,
) -> AwsRead<Vec<Certificate>> {
    let sdk = match sdk {
        Ok(s) => s,
        Err(why) => return AwsRead::Skipped(why.clone()),
    };
    let client = acm::Client::new(sdk);
    let arns: Vec<String> = match arn {
        Some(a) => vec![a.to_string()],
        None => {
            let mut arns = Vec::new();
            let mut pages = client.list_certificates().into_paginator().send();
            while let Some(page) = pages.next().await {
                match page {
                    Ok(p) => arns.extend(
                        p.certificate_summary_list()
                            .iter()
                            .filter_map(|c| c.certificate_arn().map(str::to_string)),
                    ),
                    Err(e) => {
                        return AwsRead::Failed(sdk_error(
                            &e,
                            "listing certificates (acm:ListCertificates)",
                        ));
                    }
                }
            }
            arns
        }
    };
    let mut out = Vec::new();
    for a in arns {
        match client
            .describe_certificate()
            .certificate_arn(&a)
            .send()
            .await
        {
            Ok(d) => out.extend(d.certificate().map(certificate)),
            Err(e) => {
                return AwsRead::Failed(sdk_error(
                    &e,
                    &format!("reading certificate {a} (acm:DescribeCertificate)"),
                ));
            }
        }
    }
    AwsRead::Read(out)
}
