//! A Deployment whose pods cannot be created makes `deploy` exit non-zero with the reason, well
//! before its `--timeout`; a build that cannot finish within it is a failure too; a failed build
//! prints the tail of its log, read from the API server, beside its termination message.
//!
//! A failing build, a crashing server and an unpullable image are proven with real containers on
//! the real node (real_failures.rs); there the kubelet copies the log's tail into the termination
//! message, so the log itself is never needed. The tests here pin the builder namespace's pods to
//! a node without a kubelet (see `deploy_support::NoKubelet`), where they stay Pending or get the
//! status the test writes; the failed build's node is one whose logs KWOK serves
//! (`deploy_support::served_logs`), from a file the test wrote.

mod deploy_support;

use anyhow::{Context, Result, ensure};
use deploy_support::served_logs::{LogFile, OwnNode, ServedLogs};
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

/// Nothing may roll out without its image: no Deployment `name` in `ns`.
async fn no_deployment(client: &kube::Client, ns: &str, name: &str) -> Result<()> {
    let found = Api::<Deployment>::namespaced(client.clone(), ns)
        .get_opt(name)
        .await?;
    ensure!(
        found.is_none(),
        "Deployment {ns}/{name} exists: nothing may roll out without its image"
    );
    Ok(())
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
        no_deployment(&client, &env.ns.name, "slow").await?;
        Ok(())
    }
    .await;
    pin.cleanup().await?;
    env.cleanup().await?;
    outcome
}

#[tokio::test]
async fn a_failed_build_prints_the_tail_of_its_log_besides_its_termination_message() -> Result<()> {
    let client = client().await?;
    let env = Env::new(&client, "deploy-buildfail").await?;
    // A log longer than the tail deploy prints (20 lines), each line unique to this test, the last
    // one the error; none of it in the termination message.
    let token = env.builder.name.clone();
    let lines: Vec<String> = (1..=25)
        .map(|n| match n {
            25 => format!("ERROR: No matching distribution found for nosuchpkg==9 {token}"),
            n => format!("INFO[{n:04}] build step {n:02} {token}"),
        })
        .collect();
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let file = LogFile::new("deploy-buildfail", &refs)?;
    let served = ServedLogs::create(&client, &env.builder.name, &file).await?;
    let pin = NoKubelet::pin(&client, &env.builder.name).await?;
    let node = OwnNode::create(&client, &pin.node).await?;
    let outcome = async {
        let deploy = spawn_deploy(&env, "broken-build");
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
                        "message": "error building image: exit status 1"}}
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
        // The termination message, then the log's tail under its heading.
        ensure!(
            run.stderr.contains(
                "container kaniko exited with code 1 (Error):\nerror building image: exit status 1"
            ),
            "{}",
            run.all()
        );
        let heading = "last 20 lines of the build log:\n";
        let tail = run
            .stderr
            .split_once(heading)
            .map(|(_, t)| t)
            .with_context(|| format!("no log tail printed: {}", run.all()))?;
        let want = lines[5..].join("\n");
        ensure!(
            tail.starts_with(&want),
            "the tail must be the log's last 20 lines, in order:\nwant\n{want}\ngot\n{tail}"
        );
        for early in &lines[..5] {
            ensure!(
                !run.stderr.contains(early.as_str()),
                "{early:?} is not in the last 20 lines: {}",
                run.all()
            );
        }
        ensure!(
            run.stderr.contains("logs-builder"),
            "the fix: {}",
            run.all()
        );
        ensure!(
            not_by_timeout(&run.all()),
            "failed by the timeout, not the reason: {}",
            run.all()
        );
        no_deployment(&client, &env.ns.name, "broken-build").await?;
        Ok(())
    }
    .await;
    pin.cleanup().await?;
    drop(node);
    drop(served);
    env.cleanup().await?;
    outcome
}
