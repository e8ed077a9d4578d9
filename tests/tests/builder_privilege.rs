//! The builder's service account, as `kubectl jockey setup-builder` makes it, can do nothing
//! with the API: a Kaniko build runs the tenant's Dockerfile as root, so anything its identity may
//! read (another build's credentials Secret, another tenant's files) a tenant can read. Its files
//! and credentials arrive as volumes the kubelet mounts; no token is mounted at all. And
//! `setup-builder` warns about the `aws-credentials` Secret earlier versions left there (long-lived
//! keys every build could read), naming the fix, and says nothing when there is none.

mod deploy_support;

use anyhow::{Context, Result, ensure};
use deploy_support::{Env, jockey};
use jockey_e2e::{client, kubectl};
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::PostParams;

const SERVICE_ACCOUNT: &str = "jockey-builder";

fn can_i(sa: &str, verb: &str, resource: &str, namespace: &str) -> Result<String> {
    let out = kubectl(&["auth", "can-i", verb, resource, "--as", sa, "-n", namespace])?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[tokio::test]
async fn the_builder_service_account_can_do_nothing_with_the_api() -> Result<()> {
    let client = client().await?;
    let env = Env::new(&client, "builder-priv").await?;
    let builder = env.builder.name.clone();
    let sa = format!("system:serviceaccount:{builder}:{SERVICE_ACCOUNT}");

    // No token in a build pod: the account exists only to name the pods (and carry an IRSA role).
    let out = kubectl(&[
        "get",
        "serviceaccount",
        SERVICE_ACCOUNT,
        "-n",
        &builder,
        "-o",
        "jsonpath={.automountServiceAccountToken}",
    ])?;
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "false");

    for (verb, resource, namespace) in [
        ("get", "secrets", builder.as_str()),
        ("list", "secrets", builder.as_str()),
        ("get", "configmaps", builder.as_str()),
        ("list", "pods", builder.as_str()),
        ("create", "pods", builder.as_str()),
        ("create", "jobs.batch", builder.as_str()),
        ("get", "secrets", env.ns.name.as_str()),
        ("get", "configmaps", env.ns.name.as_str()),
        ("get", "secrets", "kube-system"),
        ("list", "namespaces", ""),
        (
            "create",
            "ingresses.networking.k8s.io",
            env.ns.name.as_str(),
        ),
    ] {
        assert_eq!(
            can_i(&sa, verb, resource, namespace)?,
            "no",
            "kubectl auth can-i {verb} {resource} -n {namespace:?} --as {sa}"
        );
    }

    // The whole list: nothing beyond what every authenticated identity has (reviewing itself,
    // discovery, and the cluster's public trust anchors).
    let out = kubectl(&["auth", "can-i", "--list", "--as", &sa, "-n", &builder])?;
    let listing = String::from_utf8_lossy(&out.stdout).to_string();
    let resources: Vec<&str> = listing
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .filter(|r| !r.starts_with('['))
        .collect();
    assert!(!resources.is_empty(), "no listing: {listing}");
    for r in &resources {
        assert!(
            r.starts_with("selfsubject") || *r == "clustertrustbundles.certificates.k8s.io",
            "the builder may use {r}:\n{listing}"
        );
    }
    env.cleanup().await.context("cleanup")
}

#[tokio::test]
async fn setup_builder_warns_about_a_leftover_aws_credentials_secret() -> Result<()> {
    let client = client().await?;
    let env = Env::new(&client, "builder-legacy").await?;
    let builder = env.builder.name.clone();
    let setup = || jockey(&["setup-builder", "-n", &builder], &builder, &[]);

    // None there (Env::new ran setup-builder once already): no warning.
    let run = setup()?;
    ensure!(run.ok, "{}", run.all());
    ensure!(
        !run.all().contains("aws-credentials"),
        "a warning with no leftover Secret:\n{}",
        run.all()
    );

    // What an earlier version stored: the operator's long-lived keys.
    let legacy: Secret = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "aws-credentials"},
        "stringData": {"AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": "long-lived"}
    }))?;
    Api::<Secret>::namespaced(client.clone(), &builder)
        .create(&PostParams::default(), &legacy)
        .await?;
    let run = setup()?;
    ensure!(run.ok, "a warning, not a failure: {}", run.all());
    for needle in [
        format!("warning: secret {builder}/aws-credentials"),
        "long-lived AWS keys".to_string(),
        format!("kubectl delete secret aws-credentials -n {builder}"),
        "aws iam update-access-key --status Inactive".to_string(),
    ] {
        ensure!(
            run.stderr.contains(&needle),
            "{needle:?} in:\n{}",
            run.all()
        );
    }
    // It warns; it never prints the key, and it leaves the Secret to the operator.
    ensure!(!run.all().contains("AKIAEXAMPLE"), "{}", run.all());
    ensure!(
        Api::<Secret>::namespaced(client.clone(), &builder)
            .get_opt("aws-credentials")
            .await?
            .is_some(),
        "setup-builder deleted the operator's Secret"
    );
    env.cleanup().await
}
