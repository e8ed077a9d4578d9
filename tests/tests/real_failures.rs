//! What goes wrong on a real node makes `deploy` fail with the real reason, well before its
//! `--timeout` (shown by the reason, never by a clock): a Dockerfile step that fails (the Kaniko
//! log's tail), a server that exits on start (a real CrashLoopBackOff), an image the registry no
//! longer has (a real ErrImagePull), and a registry that is down or cannot be reached (Kaniko's
//! own error naming the registry). Nothing is rolled out without its image.
//!
//! These replace the tests that wrote such pod statuses by hand on a node without a kubelet.
//! Skipped (reported as such by tests/summary.sh) where the machine cannot run the real node.

mod real_support;

use anyhow::{Context, Result, ensure};
use jockey_core::names::ANNOTATION_IMAGE;
use jockey_e2e::{client, require_real_node};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::PostParams;
use real_support::deploy_support::Run;
use real_support::{RealEnv, project};

fn not_by_timeout(run: &Run) -> bool {
    !run.all().contains("within --timeout")
}

async fn no_deployment(env: &RealEnv, name: &str) -> Result<bool> {
    Ok(
        Api::<Deployment>::namespaced(env.env.client.clone(), env.ns())
            .get_opt(name)
            .await?
            .is_none(),
    )
}

async fn job_uids(env: &RealEnv, project: &str) -> Result<Vec<String>> {
    Ok(env
        .jobs(project)
        .await?
        .into_iter()
        .filter_map(|j| j.metadata.uid)
        .collect())
}

#[tokio::test]
async fn a_failing_dockerfile_step_fails_the_deploy_with_the_kaniko_log_tail() -> Result<()> {
    let Some(node) = require_real_node() else {
        return Ok(());
    };
    let client = client().await?;
    let env = RealEnv::new(&client, &node, "real-runfail").await?;
    let dir = project(
        "real-runfail",
        &[
            (
                "Dockerfile",
                &format!("FROM {}\nRUN exit 3\n", node.base_image),
            ),
            ("server.py", "print('never built')\n"),
        ],
    )?;
    let run = env.deploy(dir.path(), "runfail", &[])?;
    ensure!(
        !run.ok,
        "a failed build must fail the deploy: {}",
        run.all()
    );
    // Kaniko's own words, from the real build log.
    ensure!(run.stderr.contains("exit status 3"), "{}", run.all());
    ensure!(
        run.stderr.contains("RUN exit 3"),
        "the log tail: {}",
        run.all()
    );
    ensure!(
        run.stderr.contains("logs-builder"),
        "the fix: {}",
        run.all()
    );
    ensure!(not_by_timeout(&run), "failed by the timeout: {}", run.all());
    ensure!(
        no_deployment(&env, "runfail").await?,
        "rolled out without an image"
    );

    // Deploying again retries: the failed Job is replaced by a new build, which fails the same way.
    let before = job_uids(&env, "runfail").await?;
    let again = env.deploy(dir.path(), "runfail", &[])?;
    ensure!(!again.ok, "{}", again.all());
    ensure!(again.stderr.contains("exit status 3"), "{}", again.all());
    let after = job_uids(&env, "runfail").await?;
    ensure!(
        after.len() == 1 && before.len() == 1 && after != before,
        "the failed Job must have been replaced: {before:?} -> {after:?}"
    );
    env.cleanup().await
}

#[tokio::test]
async fn a_server_that_exits_on_start_is_a_real_crashloop_and_fails_the_deploy() -> Result<()> {
    let Some(node) = require_real_node() else {
        return Ok(());
    };
    let client = client().await?;
    let env = RealEnv::new(&client, &node, "real-crash").await?;
    let dir = project(
        "real-crash",
        &[
            (
                "Dockerfile",
                &format!(
                    "FROM {}\nCOPY server.py /srv/\nCMD [\"python3\", \"/srv/server.py\"]\n",
                    node.base_image
                ),
            ),
            (
                "server.py",
                "import sys\nprint('boom: OPENAI_API_KEY is not set', file=sys.stderr)\nsys.exit(1)\n",
            ),
        ],
    )?;
    let run = env.deploy(dir.path(), "crashy", &[])?;
    ensure!(
        !run.ok,
        "a crashing server must fail the deploy: {}",
        run.all()
    );
    ensure!(run.stderr.contains("CrashLoopBackOff"), "{}", run.all());
    ensure!(run.stderr.contains("last exit code 1"), "{}", run.all());
    ensure!(
        run.stderr.contains("kubectl jockey logs crashy"),
        "the fix: {}",
        run.all()
    );
    ensure!(not_by_timeout(&run), "failed by the timeout: {}", run.all());
    // The fix it names works: the server's own output is in its logs.
    let logs = env.jockey(&["logs", "crashy"], &[])?;
    ensure!(
        logs.all().contains("boom: OPENAI_API_KEY is not set"),
        "{}",
        logs.all()
    );
    env.cleanup().await
}

/// The instance's ConfigMap records an image the registry no longer has (as after a registry
/// was reset or garbage-collected): the build is skipped, and the kubelet's real pull fails.
#[tokio::test]
async fn an_image_missing_from_the_registry_is_a_real_errimagepull() -> Result<()> {
    let Some(node) = require_real_node() else {
        return Ok(());
    };
    let client = client().await?;
    let env = RealEnv::new(&client, &node, "real-pull").await?;
    let dir = project(
        "real-pull",
        &[
            ("Dockerfile", &format!("FROM {}\n", node.base_image)),
            ("server.py", "print('never built')\n"),
        ],
    )?;
    let dry = env.jockey(
        &[
            "deploy",
            &dir.path().to_string_lossy(),
            "--project",
            "gone",
            "--dry-run=client",
            "-o",
            "json",
        ],
        &[],
    )?;
    ensure!(dry.ok, "{}", dry.all());
    let list: serde_json::Value = serde_json::from_str(&dry.stdout)?;
    let mut cm: ConfigMap = serde_json::from_value(
        list["items"]
            .as_array()
            .and_then(|items| items.iter().find(|o| o["kind"] == "ConfigMap"))
            .cloned()
            .context("no ConfigMap in the dry run")?,
    )?;
    let name = cm.metadata.name.clone().context("unnamed ConfigMap")?;
    let h = name.trim_start_matches("instance-");
    let image = format!("{}/hosting/gone:{h}", node.registry);
    cm.metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert(ANNOTATION_IMAGE.to_string(), image.clone());
    cm.metadata.namespace = Some(env.ns().to_string());
    Api::<ConfigMap>::namespaced(client.clone(), env.ns())
        .create(&PostParams::default(), &cm)
        .await?;

    let run = env.deploy(dir.path(), "gone", &[])?;
    ensure!(
        !run.ok,
        "an unpullable image must fail the deploy: {}",
        run.all()
    );
    ensure!(run.stderr.contains("skipping the build"), "{}", run.all());
    ensure!(
        run.stderr.contains("ErrImagePull") || run.stderr.contains("ImagePullBackOff"),
        "{}",
        run.all()
    );
    ensure!(
        run.stderr.contains(&image),
        "names the image: {}",
        run.all()
    );
    ensure!(
        run.stderr.contains("not found"),
        "the registry's answer: {}",
        run.all()
    );
    ensure!(not_by_timeout(&run), "failed by the timeout: {}", run.all());
    env.cleanup().await
}

async fn build_against(registry: &str, tag: &str, expect: &[&str]) -> Result<()> {
    let Some(node) = require_real_node() else {
        return Ok(());
    };
    let client = client().await?;
    let mut env = RealEnv::new(&client, &node, tag).await?;
    let registry = registry.replace("HOST", node.registry.split(':').next().unwrap_or_default());
    // The registry is the build broker's setting: its broker pushes there.
    let settings = node.plugin_env();
    let mut broker_env: Vec<(&str, &str)> =
        settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    broker_env.push(("IMAGE_REGISTRY", registry.as_str()));
    env.env.restart_broker(&[], &broker_env)?;
    let dir = project(
        tag,
        &[
            ("Dockerfile", &format!("FROM {}\n", node.base_image)),
            ("server.py", "print('never pushed')\n"),
        ],
    )?;
    let run = env.deploy(
        dir.path(),
        "nopush",
        &[("IMAGE_REGISTRY", registry.as_str())],
    )?;
    ensure!(!run.ok, "a build that cannot push must fail: {}", run.all());
    ensure!(
        run.stderr.contains(&registry),
        "names the registry: {}",
        run.all()
    );
    for e in expect {
        ensure!(run.stderr.contains(e), "expected {e:?} in: {}", run.all());
    }
    ensure!(not_by_timeout(&run), "failed by the timeout: {}", run.all());
    ensure!(
        no_deployment(&env, "nopush").await?,
        "rolled out without an image"
    );
    env.cleanup().await
}

/// Nothing listens where IMAGE_REGISTRY points (the registry is down).
#[tokio::test]
async fn a_registry_that_is_down_fails_the_build_naming_it() -> Result<()> {
    build_against("HOST:5001", "real-regdown", &["connection refused"]).await
}

/// IMAGE_REGISTRY names a host the build cannot reach (its name does not resolve).
#[tokio::test]
async fn a_registry_the_build_cannot_reach_fails_the_build_naming_it() -> Result<()> {
    build_against(
        "registry.invalid:5000",
        "real-regunreach",
        &["no such host"],
    )
    .await
}
