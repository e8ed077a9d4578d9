//! ECR for the build broker, against moto (endpoint from `AWS_ENDPOINT_URL`, given to the broker
//! only: the deployer holds no AWS credentials) and the local control plane: the build is skipped
//! when ECR already has the tag `<h>`, a missing repository is created before anything is built,
//! and an existing one whose tags are mutable is made immutable before a build may push to it.

mod alb_support;
mod deploy_support;

use alb_support::{Moto, jockey, run_id, text};
use anyhow::{Context, Result};
use aws_sdk_ecr as ecr;
use aws_sdk_ecr::types::ImageTagMutability;
use deploy_support::Env;
use jockey_e2e::{client, repo_root};
use k8s_openapi::api::batch::v1::Job;
use kube::Api;
use kube::api::ListParams;

const ACCOUNT: &str = "123456789012";
const ROLE: &str = "arn:aws:iam::123456789012:role/jockey-builder";

fn registry() -> String {
    format!("{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com")
}

async fn ecr_client(moto: &Moto) -> ecr::Client {
    ecr::Client::new(&moto.sdk_config().await)
}

/// A test namespace whose broker reaches moto as ECR and STS.
async fn env_with_ecr(moto: &Moto, tag: &str) -> Result<Env> {
    let client = client().await?;
    let registry = registry();
    let moto_env = moto.env();
    let mut broker: Vec<(&str, &str)> = moto_env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    broker.push(("IMAGE_REGISTRY", &registry));
    broker.push(("BUILDER_ROLE_ARN", ROLE));
    Env::with_broker_env(&client, tag, &broker).await
}

fn deploy(env: &Env, project: &str) -> Result<std::process::Output> {
    let dir = repo_root().join("examples/agent");
    let registry = registry();
    jockey(
        &[
            "-n",
            &env.ns.name,
            "deploy",
            &dir.to_string_lossy(),
            "--project",
            project,
            "--no-wait",
            "--timeout",
            "120s",
        ],
        &[
            ("IMAGE_REGISTRY", registry.as_str()),
            ("BUILDER_NAMESPACE", env.builder.name.as_str()),
        ],
    )
}

async fn build_jobs(env: &Env) -> Result<usize> {
    Ok(
        Api::<Job>::namespaced(env.client.clone(), &env.builder.name)
            .list(&ListParams::default())
            .await?
            .items
            .len(),
    )
}

#[tokio::test]
async fn the_broker_skips_the_build_when_ecr_has_the_tag() -> Result<()> {
    let moto = Moto::start()?;
    let env = env_with_ecr(&moto, "alb-ecr-skip").await?;
    let project = format!("ecr-skip-{}", run_id());
    let registry = registry();
    // examples/agent is on the built-in template: its image is named by its dependencies
    // (requirements.txt, the template's version and the broker's BASE_IMAGE, the default here:
    // the test broker gets none from the machine).
    let requirements = std::fs::read(repo_root().join("examples/agent/requirements.txt"))?;
    let hash = jockey_core::image::dependency_tag(
        Some(&requirements),
        jockey_core::image::TEMPLATE_VERSION,
        jockey_core::config::DEFAULT_BASE_IMAGE,
    );

    // What a finished push of these dependencies leaves in ECR.
    let ecr = ecr_client(&moto).await;
    let repo = format!("hosting/{project}");
    ecr.create_repository()
        .repository_name(&repo)
        .image_tag_mutability(ImageTagMutability::Immutable)
        .send()
        .await?;
    ecr.put_image()
        .repository_name(&repo)
        .image_tag(&hash)
        .image_manifest(
            r#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{},"layers":[]}"#,
        )
        .send()
        .await?;

    let out = deploy(&env, &project)?;
    assert!(
        out.status.success(),
        "{}\nbroker:\n{}",
        text(&out),
        env.broker.log_text()
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "image {registry}/{repo}:{hash} exists in ECR; nothing to build"
        )),
        "{}",
        text(&out)
    );
    assert_eq!(build_jobs(&env).await?, 0, "nothing was built");
    env.cleanup().await
}

#[tokio::test]
async fn the_broker_creates_the_missing_repository_and_makes_a_mutable_one_immutable() -> Result<()>
{
    let moto = Moto::start()?;
    let env = env_with_ecr(&moto, "alb-ecr-create").await?;
    let ecr = ecr_client(&moto).await;
    let registry = registry();

    // A project new to ECR: its repository is created, with immutable tags.
    let project = format!("ecr-create-{}", run_id());
    let repo = format!("hosting/{project}");
    assert!(
        ecr.describe_repositories()
            .repository_names(&repo)
            .send()
            .await
            .is_err(),
        "the repository must not exist yet"
    );
    let out = deploy(&env, &project)?;
    assert!(
        out.status.success(),
        "{}\nbroker:\n{}",
        text(&out),
        env.broker.log_text()
    );
    let after = ecr
        .describe_repositories()
        .repository_names(&repo)
        .send()
        .await
        .with_context(|| format!("repository {repo} was not created\n{}", text(&out)))?;
    let created = &after.repositories()[0];
    assert_eq!(
        created.repository_uri(),
        Some(format!("{registry}/{repo}").as_str())
    );
    assert_eq!(
        created.image_tag_mutability(),
        Some(&ImageTagMutability::Immutable)
    );

    // A repository someone made with mutable tags: a push under an existing tag would replace
    // the image a Deployment runs. The broker makes it immutable before building.
    let old = format!("ecr-old-{}", run_id());
    let old_repo = format!("hosting/{old}");
    ecr.create_repository()
        .repository_name(&old_repo)
        .image_tag_mutability(ImageTagMutability::Mutable)
        .send()
        .await?;
    let out = deploy(&env, &old)?;
    assert!(
        out.status.success(),
        "{}\nbroker:\n{}",
        text(&out),
        env.broker.log_text()
    );
    let now = ecr
        .describe_repositories()
        .repository_names(&old_repo)
        .send()
        .await?;
    assert_eq!(
        now.repositories()[0].image_tag_mutability(),
        Some(&ImageTagMutability::Immutable),
        "{}",
        env.broker.log_text()
    );
    env.cleanup().await
}
