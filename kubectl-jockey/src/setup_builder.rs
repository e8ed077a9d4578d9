//! `kubectl jockey setup-builder`: the builder namespace, its service account and the
//! `aws-credentials` secret. Here the global `-n/--namespace` names the builder namespace
//! (default: `$BUILDER_NAMESPACE`, then `builder`).

use crate::cluster::{KubeArgs, apply_params};
use crate::kaniko::{
    AWS_ACCESS_KEY_KEY, AWS_CREDENTIALS_SECRET, AWS_SECRET_KEY_KEY, AWS_SESSION_TOKEN_KEY,
    BUILDER_SERVICE_ACCOUNT,
};
use anyhow::{Context, Result};
use aws_sdk_ecr::config::ProvideCredentials;
use k8s_openapi::api::core::v1::{Namespace, Secret, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::Patch;
use std::collections::BTreeMap;

#[derive(clap::Args, Debug, Clone)]
pub struct SetupBuilderArgs {
    /// AWS profile to read credentials from (default: the standard chain: environment,
    /// $AWS_PROFILE in ~/.aws, SSO, web identity, instance metadata).
    #[arg(long)]
    pub profile: Option<String>,
    /// Do not create the `aws-credentials` secret: for a registry that needs no credentials
    /// (a local one), or when the nodes' IAM role may push to ECR.
    #[arg(long)]
    pub no_aws_credentials: bool,
    #[command(flatten)]
    pub config: crate::settings::ConfigArgs,
}

fn managed_labels() -> BTreeMap<String, String> {
    BTreeMap::from([(
        "app.kubernetes.io/managed-by".to_string(),
        "kubectl-jockey".to_string(),
    )])
}

/// The objects `setup-builder` applies. Pure; the secret only when credentials were found.
pub fn builder_objects(
    namespace: &str,
    credentials: Option<(String, String, Option<String>)>,
) -> (Namespace, ServiceAccount, Option<Secret>) {
    let meta = |name: &str, ns: Option<&str>| ObjectMeta {
        name: Some(name.to_string()),
        namespace: ns.map(str::to_string),
        labels: Some(managed_labels()),
        ..Default::default()
    };
    let mut ns_meta = meta(namespace, None);
    // Kaniko runs as root (it unpacks image layers with their owners): a cluster whose default
    // Pod Security level is `restricted` would refuse every build pod. `baseline` allows root
    // but no privileged containers, host namespaces or host paths.
    ns_meta.labels.get_or_insert_with(BTreeMap::new).insert(
        "pod-security.kubernetes.io/enforce".to_string(),
        "baseline".to_string(),
    );
    let namespace_obj = Namespace {
        metadata: ns_meta,
        ..Default::default()
    };
    let sa = ServiceAccount {
        metadata: meta(BUILDER_SERVICE_ACCOUNT, Some(namespace)),
        // Kaniko needs no API access; no token is mounted.
        automount_service_account_token: Some(false),
        ..Default::default()
    };
    let secret = credentials.map(|(access, secret, token)| {
        let mut data = BTreeMap::from([
            (AWS_ACCESS_KEY_KEY.to_string(), access),
            (AWS_SECRET_KEY_KEY.to_string(), secret),
        ]);
        if let Some(t) = token {
            data.insert(AWS_SESSION_TOKEN_KEY.to_string(), t);
        }
        Secret {
            metadata: meta(AWS_CREDENTIALS_SECRET, Some(namespace)),
            type_: Some("Opaque".to_string()),
            string_data: Some(data),
            ..Default::default()
        }
    });
    (namespace_obj, sa, secret)
}

/// Credentials from the standard AWS sources, as the AWS CLI would find them.
async fn aws_credentials(profile: Option<&str>) -> Result<(String, String, Option<String>)> {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(crate::aws::https_client());
    if let Some(p) = profile {
        loader = loader.profile_name(p);
    }
    let sdk = loader.load().await;
    let provider = sdk.credentials_provider().context(
        "no AWS credential provider is configured; configure credentials (aws configure, \
         AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE), or pass --no-aws-credentials",
    )?;
    let creds = provider.provide_credentials().await.map_err(|e| {
        anyhow::anyhow!(
            "no AWS credentials found ({}); configure them (aws configure, \
             AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE), or pass \
             --no-aws-credentials for a registry that needs none",
            crate::aws::error_chain(&e)
        )
    })?;
    Ok((
        creds.access_key_id().to_string(),
        creds.secret_access_key().to_string(),
        creds.session_token().map(str::to_string),
    ))
}

pub async fn run(kube: &KubeArgs, args: SetupBuilderArgs) -> Result<()> {
    let ns = kube
        .namespace
        .clone()
        .unwrap_or_else(|| args.config.resolve().builder_namespace);
    // Credentials first: failing to find them must not leave a half-prepared namespace behind.
    // They are for pushing to ECR; with a registry that is not ECR (a local one), missing
    // credentials are expected and said so, not an error.
    let registry = args.config.resolve().image_registry;
    let needs_aws = registry
        .as_deref()
        .is_none_or(|r| crate::ecr::parse_registry(r).is_some());
    let credentials = if args.no_aws_credentials {
        None
    } else {
        match aws_credentials(args.profile.as_deref()).await {
            Ok(c) => Some(c),
            Err(e) if needs_aws => return Err(e),
            Err(_) => {
                eprintln!(
                    "no AWS credentials found; IMAGE_REGISTRY {} is not ECR, so builds push \
                     without them",
                    registry.as_deref().unwrap_or_default()
                );
                None
            }
        }
    };
    let client = kube.connect().await?.client;
    let (namespace, sa, secret) = builder_objects(&ns, credentials);
    Api::<Namespace>::all(client.clone())
        .patch(&ns, &apply_params(false), &Patch::Apply(&namespace))
        .await
        .with_context(|| format!("applying namespace {ns}"))?;
    println!("namespace/{ns} ready");
    Api::<ServiceAccount>::namespaced(client.clone(), &ns)
        .patch(
            BUILDER_SERVICE_ACCOUNT,
            &apply_params(false),
            &Patch::Apply(&sa),
        )
        .await
        .with_context(|| format!("applying service account {ns}/{BUILDER_SERVICE_ACCOUNT}"))?;
    println!("serviceaccount/{BUILDER_SERVICE_ACCOUNT} ready");
    match secret {
        Some(secret) => {
            Api::<Secret>::namespaced(client.clone(), &ns)
                .patch(
                    AWS_CREDENTIALS_SECRET,
                    &apply_params(false),
                    &Patch::Apply(&secret),
                )
                .await
                .with_context(|| format!("applying secret {ns}/{AWS_CREDENTIALS_SECRET}"))?;
            println!(
                "secret/{AWS_CREDENTIALS_SECRET} ready (keys {AWS_ACCESS_KEY_KEY}, {AWS_SECRET_KEY_KEY})"
            );
        }
        None => {
            println!("secret/{AWS_CREDENTIALS_SECRET} not created: builds push without credentials")
        }
    }
    println!("builder namespace {ns} is ready for `kubectl jockey deploy`");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_are_labelled_and_the_secret_has_the_documented_keys() {
        let (ns, sa, secret) = builder_objects(
            "builder",
            Some(("AKIA".into(), "s3cret".into(), Some("tok".into()))),
        );
        assert_eq!(ns.metadata.name.as_deref(), Some("builder"));
        assert_eq!(
            ns.metadata.labels.clone().unwrap()["pod-security.kubernetes.io/enforce"],
            "baseline"
        );
        assert_eq!(sa.metadata.name.as_deref(), Some(BUILDER_SERVICE_ACCOUNT));
        assert_eq!(sa.automount_service_account_token, Some(false));
        let secret = secret.unwrap();
        let data = secret.string_data.unwrap();
        assert_eq!(data["access-key"], "AKIA");
        assert_eq!(data["secret-key"], "s3cret");
        assert_eq!(data["session-token"], "tok");
        assert!(builder_objects("b", None).2.is_none());
    }
}
