//! A build Job that fails and a Deployment whose pods crash (or cannot pull, or cannot be
//! created) make `deploy` exit non-zero with the reason, well before its `--timeout`.
//!
//! KWOK would make every pod succeed, so these tests pin the pods of one namespace to a node
//! without a kubelet and write the failing status themselves (see `deploy_support::NoKubelet`).

mod deploy_support;

use anyhow::{Result, ensure};
use deploy_support::{Env, NoKubelet, play_kubelet};
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
async fn failed_build_exits_non_zero_with_the_job_reason_and_log_tail() -> Result<()> {
    let client = client().await?;
    let env = Env::new(&client, "deploy-buildfail").await?;
    let pin = NoKubelet::pin(&client, &env.builder.name).await?;
    // Checks run inside, so that the cluster-wide policy is removed whatever they find.
    let outcome = async {
    let deploy = spawn_deploy(&env, "broken-build");
    // Kaniko fails the way it does on a bad requirements.txt.
    play_kubelet(
        &client,
        &env.builder.name,
        "app.kubernetes.io/component=build",
        json!({
            "phase": "Failed",
            "containerStatuses": [{
                "name": "kaniko", "image": "gcr.io/kaniko-project/executor", "imageID": "",
                "ready": false, "restartCount": 0,
                "state": {"terminated": {"exitCode": 1, "reason": "Error",
                    "message": "error building image: error building stage: failed to execute command: RUN pip install: exit status 1"}}
            }]
        }),
    )
    .await?;
    let run = deploy.await??;
    ensure!(
        !run.ok,
        "a failed build must fail the deploy: {}",
        run.all()
    );
    ensure!(run.stderr.contains("BackoffLimitExceeded"), "{}", run.all());
    ensure!(run.stderr.contains("exit status 1"), "{}", run.all());
    ensure!(
        run.stderr.contains("logs-builder"),
        "the fix: {}",
        run.all()
    );
    ensure!(not_by_timeout(&run.all()), "failed by the timeout, not the reason: {}", run.all());
    // Nothing was rolled out with a missing image.
    ensure!(
        Api::<Deployment>::namespaced(client.clone(), &env.ns.name)
            .get_opt("broken-build")
            .await?
            .is_none()
    );
    Ok(())
    }
    .await;
    pin.cleanup().await?;
    if outcome.is_ok() {
        // Deploying again retries: the failed Job is replaced, and this time KWOK completes it.
        let failed_uid = job_uid(&client, &env.builder.name).await?;
        let run = spawn_deploy(&env, "broken-build").await??;
        ensure!(run.ok, "the retry must succeed: {}", run.all());
        ensure!(
            job_uid(&client, &env.builder.name).await? != failed_uid,
            "the failed Job must have been replaced"
        );
    }
    env.cleanup().await?;
    outcome
}

async fn job_uid(client: &kube::Client, ns: &str) -> Result<Option<String>> {
    let jobs = Api::<k8s_openapi::api::batch::v1::Job>::namespaced(client.clone(), ns)
        .list(&kube::api::ListParams::default().labels("app.kubernetes.io/component=build"))
        .await?;
    Ok(jobs.items.into_iter().find_map(|j| j.metadata.uid))
}

async fn crashing_rollout(
    tag: &str,
    container_status: serde_json::Value,
    expect: &[&str],
) -> Result<()> {
    let client = client().await?;
    let env = Env::new(&client, tag).await?;
    let pin = NoKubelet::pin(&client, &env.ns.name).await?;
    let outcome = async {
        let deploy = spawn_deploy(&env, "crashy");
        play_kubelet(
            &client,
            &env.ns.name,
            "app=crashy",
            json!({"phase": "Running", "containerStatuses": [container_status]}),
        )
        .await?;
        let run = deploy.await??;
        ensure!(
            !run.ok,
            "a crashing rollout must fail the deploy: {}",
            run.all()
        );
        for e in expect {
            ensure!(run.stderr.contains(e), "expected {e:?} in: {}", run.all());
        }
        ensure!(
            not_by_timeout(&run.all()),
            "failed by the timeout, not the reason: {}",
            run.all()
        );
        Ok(())
    }
    .await;
    pin.cleanup().await?;
    env.cleanup().await?;
    outcome
}

#[tokio::test]
async fn crashing_pods_exit_non_zero_with_the_pod_reason() -> Result<()> {
    crashing_rollout(
        "deploy-crash",
        json!({
            "name": "server", "image": "registry.local:5000/hosting/crashy:x", "imageID": "",
            "ready": false, "restartCount": 3,
            "state": {"waiting": {"reason": "CrashLoopBackOff",
                "message": "back-off 40s restarting failed container=server"}},
            "lastState": {"terminated": {"exitCode": 1, "reason": "Error",
                "message": "ModuleNotFoundError: No module named 'fastapi'"}}
        }),
        &[
            "CrashLoopBackOff",
            "ModuleNotFoundError",
            "kubectl jockey logs crashy",
        ],
    )
    .await
}

#[tokio::test]
async fn unpullable_image_exits_non_zero_with_the_pod_reason() -> Result<()> {
    crashing_rollout(
        "deploy-pull",
        json!({
            "name": "server", "image": "registry.local:5000/hosting/crashy:x", "imageID": "",
            "ready": false, "restartCount": 0,
            "state": {"waiting": {"reason": "ImagePullBackOff",
                "message": "Back-off pulling image \"registry.local:5000/hosting/crashy:x\""}}
        }),
        &["ImagePullBackOff", "Back-off pulling image"],
    )
    .await
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
