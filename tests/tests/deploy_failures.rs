//! A Deployment whose pods cannot be created makes `deploy` exit non-zero with the reason, well
//! before its `--timeout`; a build that cannot finish within it is a failure too.
//!
//! A failing build, a crashing server and an unpullable image are proven with real containers on
//! the real node (real_failures.rs). The slow build here pins the builder namespace's pods to a
//! node without a kubelet (see `deploy_support::NoKubelet`), where they stay Pending.

mod deploy_support;

use anyhow::{Result, ensure};
use deploy_support::{Env, NoKubelet};
use jockey_e2e::{client, repo_root};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ResourceQuota;
use kube::Api;
use kube::api::PostParams;
use serde_json::json;

const TIMEOUT: &str = "180s";
/// "Well before its timeout" is shown without a clock: the failure must come from recognising
/// the reason, never from the timeout's own message.
fn not_by_timeout(run_output: &str) -> bool {
    !run_output.contains("within --timeout")
}

fn example() -> String {
    repo_root()
        .join("examples/agent")
        .to_string_lossy()
        .to_string()
}

/// Runs `deploy` on a blocking thread while the test plays the kubelet.
fn spawn_deploy(env: &Env, project: &str) -> tokio::task::JoinHandle<Result<deploy_support::Run>> {
    let (ns, builder) = (env.ns.name.clone(), env.builder.name.clone());
    let project = project.to_string();
    tokio::task::spawn_blocking(move || {
        deploy_support::jockey(
            &[
                "deploy",
                &example(),
                "--project",
                &project,
                "--timeout",
                TIMEOUT,
                "-n",
                &ns,
            ],
            &builder,
            &[],
        )
    })
}

#[tokio::test]
async fn replica_failure_exits_non_zero_with_the_reason() -> Result<()> {
    let client = client().await?;
    let env = Env::new(&client, "deploy-quota").await?;
    let quota: ResourceQuota = serde_json::from_value(json!({
        "metadata": {"name": "no-pods"},
        "spec": {"hard": {"pods": "0"}}
    }))?;
    Api::<ResourceQuota>::namespaced(client.clone(), &env.ns.name)
        .create(&PostParams::default(), &quota)
        .await?;
    let run = spawn_deploy(&env, "no-room").await??;
    assert!(!run.ok, "{}", run.all());
    assert!(run.stderr.contains("ReplicaFailure"), "{}", run.all());
    assert!(run.stderr.contains("exceeded quota"), "{}", run.all());
    assert!(
        not_by_timeout(&run.all()),
        "failed by the timeout, not the reason: {}",
        run.all()
    );
    env.cleanup().await
}

#[tokio::test]
async fn a_build_that_outlives_the_timeout_is_a_failure() -> Result<()> {
    let client = client().await?;
    let env = Env::new(&client, "deploy-slowbuild").await?;
    // The build pod never starts (no kubelet plays it): the build cannot finish.
    let pin = NoKubelet::pin(&client, &env.builder.name).await?;
    let outcome = async {
        let run = env.jockey(&["deploy", &example(), "--project", "slow", "--timeout", "5s"])?;
        ensure!(!run.ok, "an unfinished build must fail: {}", run.all());
        ensure!(
            run.stderr.contains("did not finish within --timeout 5s"),
            "{}",
            run.all()
        );
        ensure!(
            Api::<Deployment>::namespaced(client.clone(), &env.ns.name)
                .get_opt("slow")
                .await?
                .is_none(),
            "nothing may roll out without its image"
        );
        Ok(())
    }
    .await;
    pin.cleanup().await?;
    env.cleanup().await?;
    outcome
}
