//! `deploy` with an ECR registry (moto standing in for ECR, through `AWS_ENDPOINT_URL`): the
//! image's repository and its layer-cache repository are created before the build, and the
//! Kaniko Job is set up for ECR (cache repository, region, the credential helper's config, the
//! credentials only as Secret references).

mod alb_support;
mod deploy_support;

use alb_support::Moto;
use anyhow::Result;
use deploy_support::{Env, jockey};
use jockey_e2e::{client, repo_root};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::ListParams;

const REGISTRY: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";

#[tokio::test]
async fn deploy_to_ecr_creates_image_and_cache_repositories_and_configures_kaniko() -> Result<()> {
    let moto = Moto::start()?;
    let client = client().await?;
    let env = Env::new(&client, "deploy-ecr").await?;
    let project = "ecr-agent";
    let moto_env = moto.env();
    let mut vars: Vec<(&str, &str)> = moto_env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    vars.push(("IMAGE_REGISTRY", REGISTRY));
    let example = repo_root()
        .join("examples/agent")
        .to_string_lossy()
        .to_string();
    let deploy_args = [
        "deploy",
        &example,
        "--project",
        project,
        "-n",
        &env.ns.name,
        "--timeout",
        "120s",
    ];

    let run = jockey(&deploy_args, &env.builder.name, &vars)?;
    assert!(run.ok, "{}", run.all());

    let ecr = aws_sdk_ecr::Client::new(&moto.sdk_config().await);
    for repo in [
        format!("hosting/{project}"),
        format!("hosting/{project}/cache"),
    ] {
        let found = ecr
            .describe_repositories()
            .repository_names(&repo)
            .send()
            .await;
        assert!(found.is_ok(), "repository {repo} must exist: {found:?}");
    }

    let jobs = Api::<Job>::namespaced(client.clone(), &env.builder.name)
        .list(&ListParams::default().labels(&format!("jockey.agentops.ai/project={project}")))
        .await?
        .items;
    assert_eq!(jobs.len(), 1);
    let pod = jobs[0].spec.clone().unwrap().template.spec.unwrap();
    let kaniko = &pod.containers[0];
    let args = kaniko.args.clone().unwrap();
    assert!(
        args.contains(&format!("--cache-repo={REGISTRY}/hosting/{project}/cache")),
        "{args:?}"
    );
    let env_vars = kaniko.env.clone().unwrap();
    assert!(
        env_vars
            .iter()
            .any(|e| e.name == "AWS_REGION" && e.value.as_deref() == Some("us-east-1"))
    );
    for e in &env_vars {
        if e.name.starts_with("AWS_ACCESS") || e.name.starts_with("AWS_SECRET") {
            assert!(e.value.is_none(), "credentials never inline: {e:?}");
        }
    }
    let mounts = kaniko.volume_mounts.clone().unwrap();
    assert!(mounts.iter().any(|m| m.mount_path == "/kaniko/.docker"));
    let copy = Api::<ConfigMap>::namespaced(client.clone(), &env.builder.name)
        .get(jobs[0].metadata.name.as_deref().unwrap())
        .await?;
    let docker_config = &copy.data.unwrap()["config.json"];
    assert!(docker_config.contains("ecr-login") && docker_config.contains(REGISTRY));

    // Deploying again: the image is known, nothing is built or written.
    let again = jockey(&deploy_args, &env.builder.name, &vars)?;
    assert!(again.ok, "{}", again.all());
    assert!(again.stderr.contains("nothing changed"), "{}", again.all());

    env.cleanup().await
}
