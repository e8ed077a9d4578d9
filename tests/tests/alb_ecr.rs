//! ECR in `deploy`, against moto (endpoint from `AWS_ENDPOINT_URL`) and the local control plane:
//! the build is skipped when ECR already has the tag `<h>`, and a missing repository is created
//! before anything is built.

mod alb_support;

use alb_support::{Moto, jockey, run_id, text};
use anyhow::{Context, Result};
use aws_sdk_ecr as ecr;
use jockey_e2e::{TestNamespace, client, repo_root};

const ACCOUNT: &str = "123456789012";

fn registry() -> String {
    format!("{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com")
}

/// The content hash `deploy` computes for examples/agent, from a client-side dry run.
fn content_hash(env: &[(&str, &str)]) -> Result<String> {
    let dir = repo_root().join("examples/agent");
    let out = jockey(
        &[
            "deploy",
            &dir.to_string_lossy(),
            "--project",
            "hash-probe",
            "--dry-run=client",
        ],
        env,
    )?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let start = stderr
        .find("instance-")
        .with_context(|| format!("no instance name in\n{}", text(&out)))?
        + "instance-".len();
    Ok(stderr[start..start + 16].to_string())
}

async fn ecr_client(moto: &Moto) -> ecr::Client {
    ecr::Client::new(&moto.sdk_config().await)
}

#[tokio::test]
async fn deploy_skips_the_build_when_ecr_has_the_tag() -> Result<()> {
    let moto = Moto::start()?;
    let client = client().await?;
    let ns = TestNamespace::create(&client, "alb-ecr-skip").await?;
    let project = format!("ecr-skip-{}", run_id());
    let registry = registry();
    let mut env: Vec<(&str, &str)> = Vec::new();
    let moto_env = moto.env();
    env.extend(moto_env.iter().map(|(k, v)| (*k, v.as_str())));
    env.push(("IMAGE_REGISTRY", &registry));
    let hash = content_hash(&env)?;

    // What a finished Kaniko push leaves in ECR.
    let ecr = ecr_client(&moto).await;
    let repo = format!("hosting/{project}");
    ecr.create_repository()
        .repository_name(&repo)
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

    let dir = repo_root().join("examples/agent");
    // A builder namespace that does not exist: any attempt to build would fail.
    let builder = format!("no-builder-{}", run_id());
    let out = jockey(
        &[
            "-n",
            &ns.name,
            "deploy",
            &dir.to_string_lossy(),
            "--project",
            &project,
            "--no-wait",
            "--builder-namespace",
            &builder,
        ],
        &env,
    )?;
    assert!(out.status.success(), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "{registry}/{repo}:{hash} exists in ECR; skipping the build"
        )),
        "{}",
        text(&out)
    );

    ns.cleanup().await?;
    Ok(())
}

#[tokio::test]
async fn deploy_creates_the_missing_repository_before_building() -> Result<()> {
    let moto = Moto::start()?;
    let client = client().await?;
    let ns = TestNamespace::create(&client, "alb-ecr-create").await?;
    let project = format!("ecr-create-{}", run_id());
    let registry = registry();
    let mut env: Vec<(&str, &str)> = Vec::new();
    let moto_env = moto.env();
    env.extend(moto_env.iter().map(|(k, v)| (*k, v.as_str())));
    env.push(("IMAGE_REGISTRY", &registry));

    let ecr = ecr_client(&moto).await;
    let repo = format!("hosting/{project}");
    let before = ecr
        .describe_repositories()
        .repository_names(&repo)
        .send()
        .await;
    assert!(before.is_err(), "the repository must not exist yet");

    // No builder namespace: the deploy stops at the build, after the repository step.
    let builder = format!("no-builder-{}", run_id());
    let dir = repo_root().join("examples/agent");
    let out = jockey(
        &[
            "-n",
            &ns.name,
            "deploy",
            &dir.to_string_lossy(),
            "--project",
            &project,
            "--no-wait",
            "--builder-namespace",
            &builder,
        ],
        &env,
    )?;
    assert!(
        !out.status.success(),
        "without a builder the deploy cannot build: {}",
        text(&out)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&builder),
        "the error names the builder namespace: {}",
        text(&out)
    );
    let after = ecr
        .describe_repositories()
        .repository_names(&repo)
        .send()
        .await
        .with_context(|| format!("repository {repo} was not created\n{}", text(&out)))?;
    assert_eq!(
        after.repositories()[0].repository_uri(),
        Some(format!("{registry}/{repo}").as_str())
    );

    ns.cleanup().await?;
    Ok(())
}
