//! `kubectl jockey setup-builder`: the builder namespace and its service account. Here the global
//! `-n/--namespace` names the builder namespace (default: `$BUILDER_NAMESPACE`, then `builder`).
//!
//! No AWS keys are stored: a build that pushes to ECR gets short-lived credentials scoped to its
//! project when `deploy` starts it ([`crate::build_credentials`]), or the service account's IAM
//! role (IRSA / EKS Pod Identity). An `aws-credentials` Secret left by an earlier version holds
//! long-lived keys no build uses any more; `setup-builder` says so and how to remove it.

use crate::cluster::{KubeArgs, apply_params};
use crate::kaniko::{BUILDER_SERVICE_ACCOUNT, LEGACY_AWS_CREDENTIALS_SECRET};
use anyhow::{Context, Result, bail};
use jockey_core::{BuilderCredentials, Config};
use k8s_openapi::api::core::v1::{Namespace, Secret, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::Patch;
use std::collections::BTreeMap;

/// The annotation through which IRSA gives a service account's pods an IAM role.
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

/// The objects `setup-builder` applies. With `BUILDER_CREDENTIALS=service-account` and a role,
/// the service account carries IRSA's role annotation. Pure.
pub fn builder_objects(namespace: &str, cfg: &Config) -> (Namespace, ServiceAccount) {
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
    let mut sa_meta = meta(BUILDER_SERVICE_ACCOUNT, Some(namespace));
    if cfg.builder_credentials == BuilderCredentials::ServiceAccount
        && let Some(role) = &cfg.builder_role_arn
    {
        sa_meta.annotations = Some(BTreeMap::from([(
            IRSA_ROLE_ANNOTATION.to_string(),
            role.clone(),
        )]));
    }
    let sa = ServiceAccount {
        metadata: sa_meta,
        // Kaniko needs no API access; no token is mounted (IRSA and EKS Pod Identity inject
        // their own, audience-bound token for STS).
        automount_service_account_token: Some(false),
        ..Default::default()
    };
    (namespace_obj, sa)
}

/// One line on where builds get their AWS credentials under `cfg`. Pure.
pub fn credentials_model(namespace: &str, cfg: &Config) -> String {
    let ecr = cfg
        .image_registry
        .as_deref()
        .and_then(crate::ecr::parse_registry);
    let prefix = &cfg.image_repository_prefix;
    match (&ecr, &cfg.builder_credentials) {
        (None, _) if cfg.image_registry.is_some() => format!(
            "builds push to {} without AWS credentials (not an ECR registry)",
            cfg.image_registry.as_deref().unwrap_or_default()
        ),
        (_, BuilderCredentials::Invalid(v)) => format!(
            "BUILDER_CREDENTIALS is {v:?}: builds to ECR will be refused; use assume-role or \
             service-account"
        ),
        (_, BuilderCredentials::ServiceAccount) => match &cfg.builder_role_arn {
            Some(role) => format!(
                "builds use the IAM role of serviceaccount {namespace}/{BUILDER_SERVICE_ACCOUNT} \
                 ({IRSA_ROLE_ANNOTATION}: {role}); with EKS Pod Identity instead, associate it: \
                 aws eks create-pod-identity-association --cluster-name <cluster> --namespace \
                 {namespace} --service-account {BUILDER_SERVICE_ACCOUNT} --role-arn {role}; \
                 that role may push to {prefix}/* for every project"
            ),
            None => format!(
                "builds use the IAM role of serviceaccount {namespace}/{BUILDER_SERVICE_ACCOUNT}: \
                 annotate it ({IRSA_ROLE_ANNOTATION}, or set BUILDER_ROLE_ARN and run \
                 setup-builder again) or create an EKS Pod Identity association for it"
            ),
        },
        (_, BuilderCredentials::AssumeRole) => match &cfg.builder_role_arn {
            Some(role) => format!(
                "each build to ECR gets short-lived credentials from {role}, limited to its own \
                 project's repositories ({prefix}/PROJECT and its cache), in a Secret deleted \
                 with the build; whoever deploys needs sts:AssumeRole on that role"
            ),
            None => "builds to ECR need BUILDER_ROLE_ARN (a role each build's short-lived, \
                     project-scoped credentials are assumed from), or \
                     BUILDER_CREDENTIALS=service-account"
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
        bail!("BUILDER_CREDENTIALS is {v:?}; use `assume-role` or `service-account`");
    }
    if let Some(role) = &cfg.builder_role_arn
        && !crate::build_credentials::is_role_arn(role)
    {
        bail!(
            "BUILDER_ROLE_ARN {role:?} is not an IAM role ARN; expected \
             arn:aws:iam::<account>:role/<name>"
        );
    }
    let client = kube.connect().await?.client;
    let (namespace, sa) = builder_objects(&ns, &cfg);
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
    println!("{}", credentials_model(&ns, &cfg));
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
    println!("builder namespace {ns} is ready for `kubectl jockey deploy`");
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
        let (ns, sa) = builder_objects("builder", &cfg(&[("BUILDER_ROLE_ARN", ROLE)]));
        assert_eq!(ns.metadata.name.as_deref(), Some("builder"));
        assert_eq!(
            ns.metadata.labels.clone().unwrap()["pod-security.kubernetes.io/enforce"],
            "baseline"
        );
        assert_eq!(sa.metadata.name.as_deref(), Some(BUILDER_SERVICE_ACCOUNT));
        assert_eq!(sa.automount_service_account_token, Some(false));
        // assume-role: the role is assumed per build, the service account carries nothing.
        assert_eq!(sa.metadata.annotations, None);
        assert!(sa.secrets.is_none() && sa.image_pull_secrets.is_none());
    }

    #[test]
    fn with_the_service_account_mode_it_carries_the_irsa_role() {
        let c = cfg(&[
            ("BUILDER_ROLE_ARN", ROLE),
            ("BUILDER_CREDENTIALS", "service-account"),
        ]);
        let (_, sa) = builder_objects("builder", &c);
        assert_eq!(sa.metadata.annotations.unwrap()[IRSA_ROLE_ANNOTATION], ROLE);
    }

    #[test]
    fn the_credentials_model_is_said_in_one_line() {
        let ecr = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
        let local = credentials_model("b", &cfg(&[("IMAGE_REGISTRY", "registry.local:5000")]));
        assert!(local.contains("without AWS credentials"), "{local}");
        let missing = credentials_model("b", &cfg(&[("IMAGE_REGISTRY", ecr)]));
        assert!(missing.contains("BUILDER_ROLE_ARN"), "{missing}");
        let assumed = credentials_model(
            "b",
            &cfg(&[("IMAGE_REGISTRY", ecr), ("BUILDER_ROLE_ARN", ROLE)]),
        );
        assert!(
            assumed.contains("short-lived") && assumed.contains("hosting/PROJECT"),
            "{assumed}"
        );
        let sa = credentials_model(
            "b",
            &cfg(&[
                ("IMAGE_REGISTRY", ecr),
                ("BUILDER_ROLE_ARN", ROLE),
                ("BUILDER_CREDENTIALS", "service-account"),
            ]),
        );
        assert!(
            sa.contains(IRSA_ROLE_ANNOTATION) && sa.contains("create-pod-identity-association"),
            "{sa}"
        );
    }
}
