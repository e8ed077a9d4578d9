//! `kubectl jockey setup-builder`: the builder namespace and its service account. Here the global
//! `-n/--namespace` names the builder namespace (default: `$BUILDER_NAMESPACE`, then `builder`).
//!
//! An operator's command (it writes a namespace and a service account: cluster-admin, or a role
//! that may). No AWS keys are stored: a build that pushes to ECR gets short-lived credentials
//! scoped to its project from the build broker ([`jockey_build::credentials`]); the build pods'
//! service account carries no role. An `aws-credentials` Secret left by an earlier version holds
//! long-lived keys no build uses any more; `setup-builder` says so and how to remove it.

use crate::cluster::{KubeArgs, apply_params};
use anyhow::{Context, Result, bail};
use jockey_build::kaniko::{BUILDER_SERVICE_ACCOUNT, LEGACY_AWS_CREDENTIALS_SECRET};
use jockey_core::{BuilderCredentials, Config};
use k8s_openapi::api::core::v1::{Namespace, Secret, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::Patch;
use std::collections::BTreeMap;

/// The annotation through which IRSA gives a service account's pods an IAM role: never on the
/// build pods' service account (any `RUN` step could use the role), on the broker's.
pub const IRSA_ROLE_ANNOTATION: &str = "eks.amazonaws.com/role-arn";

#[derive(clap::Args, Debug, Clone)]
pub struct SetupBuilderArgs {
    #[command(flatten)]
    pub config: crate::settings::ConfigArgs,
}

fn managed_labels() -> BTreeMap<String, String> {
    BTreeMap::from([(
        "app.kubernetes.io/managed-by".to_string(),
        "kubectl-jockey".to_string(),
    )])
}

/// The objects `setup-builder` applies. Pure.
pub fn builder_objects(namespace: &str) -> (Namespace, ServiceAccount) {
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
        // Kaniko needs no API access and no AWS identity of its own: no token is mounted.
        automount_service_account_token: Some(false),
        ..Default::default()
    };
    (namespace_obj, sa)
}

/// One line on where builds get their AWS credentials under `cfg`. Pure.
pub fn credentials_model(cfg: &Config) -> String {
    let ecr = cfg
        .image_registry
        .as_deref()
        .and_then(jockey_build::ecr::parse_registry);
    let prefix = &cfg.image_repository_prefix;
    match (&ecr, &cfg.builder_credentials) {
        (None, _) if cfg.image_registry.is_some() => format!(
            "builds push to {} without AWS credentials (not an ECR registry)",
            cfg.image_registry.as_deref().unwrap_or_default()
        ),
        (_, BuilderCredentials::Invalid(v)) => {
            format!("BUILDER_CREDENTIALS is {v:?}: builds to ECR will be refused; unset it")
        }
        (_, BuilderCredentials::ServiceAccount) => format!(
            "BUILDER_CREDENTIALS=service-account is no longer supported (it gave build pods the \
             builder role itself): unset it, set BUILDER_ROLE_ARN, and give the broker's service \
             account a role ({IRSA_ROLE_ANNOTATION}) that may assume it"
        ),
        (_, BuilderCredentials::AssumeRole) => match &cfg.builder_role_arn {
            Some(role) => format!(
                "each build to ECR gets short-lived credentials from {role}, limited to its own \
                 project's repositories ({prefix}/PROJECT and its cache), in a Secret deleted \
                 with the build; the build broker's service account (not the tenants) needs \
                 sts:AssumeRole on that role"
            ),
            None => "builds to ECR need BUILDER_ROLE_ARN on the build broker (a role each \
                     build's short-lived, project-scoped credentials are assumed from)"
                .to_string(),
        },
    }
}

pub async fn run(kube: &KubeArgs, args: SetupBuilderArgs) -> Result<()> {
    let cfg = args.config.resolve();
    let ns = kube
        .namespace
        .clone()
        .unwrap_or_else(|| cfg.builder_namespace.clone());
    if let BuilderCredentials::Invalid(v) = &cfg.builder_credentials {
        bail!("BUILDER_CREDENTIALS is {v:?}; unset it (builds always use BUILDER_ROLE_ARN)");
    }
    if let Some(role) = &cfg.builder_role_arn
        && !jockey_build::credentials::is_role_arn(role)
    {
        bail!(
            "BUILDER_ROLE_ARN {role:?} is not an IAM role ARN; expected \
             arn:aws:iam::<account>:role/<name>"
        );
    }
    let client = kube.connect().await?.client;
    let (namespace, sa) = builder_objects(&ns);
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
    println!("{}", credentials_model(&cfg));
    // Reading Secrets may be forbidden to whoever runs this: then there is nothing to say.
    if let Ok(Some(_)) = Api::<Secret>::namespaced(client.clone(), &ns)
        .get_opt(LEGACY_AWS_CREDENTIALS_SECRET)
        .await
    {
        eprintln!(
            "warning: secret {ns}/{LEGACY_AWS_CREDENTIALS_SECRET}, made by an earlier \
             setup-builder, holds long-lived AWS keys that no build uses any more; delete it \
             (`kubectl delete secret {LEGACY_AWS_CREDENTIALS_SECRET} -n {ns}`) and deactivate \
             its access key in IAM (`aws iam update-access-key --status Inactive \
             --access-key-id <id>`): any build that ran with it could have read it"
        );
    }
    println!(
        "builder namespace {ns} is ready for the build broker (jockey-webhook broker \
         --builder-namespace {ns})"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROLE: &str = "arn:aws:iam::123456789012:role/jockey-builder";

    fn cfg(vars: &[(&str, &str)]) -> Config {
        let vars: BTreeMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| vars.get(k).cloned())
    }

    #[test]
    fn objects_are_labelled_and_carry_no_credentials() {
        let (ns, sa) = builder_objects("builder");
        assert_eq!(ns.metadata.name.as_deref(), Some("builder"));
        assert_eq!(
            ns.metadata.labels.clone().unwrap()["pod-security.kubernetes.io/enforce"],
            "baseline"
        );
        assert_eq!(sa.metadata.name.as_deref(), Some(BUILDER_SERVICE_ACCOUNT));
        assert_eq!(sa.automount_service_account_token, Some(false));
        // The role is assumed per build by the broker: the build pods' account carries none.
        assert_eq!(sa.metadata.annotations, None);
        assert!(sa.secrets.is_none() && sa.image_pull_secrets.is_none());
    }

    #[test]
    fn the_credentials_model_is_said_in_one_line() {
        let ecr = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
        let local = credentials_model(&cfg(&[("IMAGE_REGISTRY", "registry.local:5000")]));
        assert!(local.contains("without AWS credentials"), "{local}");
        let missing = credentials_model(&cfg(&[("IMAGE_REGISTRY", ecr)]));
        assert!(missing.contains("BUILDER_ROLE_ARN"), "{missing}");
        let assumed =
            credentials_model(&cfg(&[("IMAGE_REGISTRY", ecr), ("BUILDER_ROLE_ARN", ROLE)]));
        assert!(
            assumed.contains("short-lived") && assumed.contains("hosting/PROJECT"),
            "{assumed}"
        );
        let sa = credentials_model(&cfg(&[
            ("IMAGE_REGISTRY", ecr),
            ("BUILDER_ROLE_ARN", ROLE),
            ("BUILDER_CREDENTIALS", "service-account"),
        ]));
        assert!(sa.contains("no longer supported"), "{sa}");
    }
}
