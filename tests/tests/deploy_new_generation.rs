//! `deploy` right after a failed rollout judges only the generation it rolls out: deploying the
//! fix for a crash loop succeeds (the old ReplicaSet's crashing pod is not held against it), and a
//! stale `ProgressDeadlineExceeded` of the previous rollout does not fail the next deploy.

mod deploy_support;

use anyhow::{Result, ensure};
use deploy_support::{Env, NoKubelet, Run, example_copy, play_kubelet, write_version};
use jockey_e2e::{client, wait_for};
use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use serde_json::json;
use std::path::Path;
use std::time::Duration;

fn deploy(env: &Env, dir: &Path, project: &str, extra: &[&str]) -> Result<Run> {
    let mut args = vec![
        "deploy",
        dir.to_str().unwrap_or_default(),
        "--project",
        project,
        "--timeout",
        "120s",
    ];
    args.extend_from_slice(extra);
    env.jockey(&args)
}

fn spawn(env: &Env, dir: &Path, project: &str) -> tokio::task::JoinHandle<Result<Run>> {
    let (ns, builder) = (env.ns.name.clone(), env.builder.name.clone());
    let (dir, project) = (dir.to_string_lossy().to_string(), project.to_string());
    tokio::task::spawn_blocking(move || {
        deploy_support::jockey(
            &[
                "deploy",
                &dir,
                "--project",
                &project,
                "--timeout",
                "120s",
                "-n",
                &ns,
            ],
            &builder,
            &[],
        )
    })
}

#[tokio::test]
async fn deploying_the_fix_after_a_crash_loop_succeeds() -> Result<()> {
    let client = client().await?;
    let env = Env::new(&client, "deploy-fixcrash").await?;
    let dir = example_copy("fixcrash")?;
    write_version(dir.path(), 1)?;
    let pin = NoKubelet::pin(&client, &env.ns.name).await?;
    let crashed = async {
        let run = spawn(&env, dir.path(), "fixme");
        play_kubelet(
            &client,
            &env.ns.name,
            "app=fixme",
            json!({"phase": "Running",
            "containerStatuses": [{
                "name": "server", "image": "x", "imageID": "", "ready": false, "restartCount": 4,
                "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off"}},
                "lastState": {"terminated": {"exitCode": 1, "reason": "Error",
                    "message": "SyntaxError: broken v1"}}}]}),
        )
        .await?;
        let run = run.await??;
        ensure!(
            !run.ok && run.stderr.contains("CrashLoopBackOff"),
            "{}",
            run.all()
        );
        Ok(())
    }
    .await;
    pin.cleanup().await?;
    crashed?;
    // The fix: new files, new pods on a node that runs them. The v1 pod still says
    // CrashLoopBackOff (nothing plays its kubelet any more) while the rollout proceeds.
    write_version(dir.path(), 2)?;
    let run = deploy(&env, dir.path(), "fixme", &[])?;
    ensure!(run.ok, "deploying the fix must succeed: {}", run.all());
    ensure!(
        !run.stderr.contains("SyntaxError"),
        "judged the old crash: {}",
        run.all()
    );
    env.cleanup().await
}

#[tokio::test]
async fn a_stale_progress_deadline_does_not_fail_the_next_deploy() -> Result<()> {
    let client = client().await?;
    let env = Env::new(&client, "deploy-stale-deadline").await?;
    let ns = env.ns.name.clone();
    let dir = example_copy("stale-deadline")?;
    write_version(dir.path(), 1)?;
    let pin = NoKubelet::pin(&client, &ns).await?;
    let timed_out = async {
        // v1's pod never starts (no kubelet): with a 1 s deadline the controller gives up on it.
        let run = deploy(&env, dir.path(), "late", &["--no-wait"])?;
        ensure!(run.ok, "{}", run.all());
        let out = jockey_e2e::kubectl(&[
            "patch",
            "deployment",
            "late",
            "-n",
            &ns,
            "--type=merge",
            "-p",
            r#"{"spec":{"progressDeadlineSeconds":1}}"#,
        ])?;
        ensure!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let deps: Api<Deployment> = Api::namespaced(client.clone(), &ns);
        wait_for("ProgressDeadlineExceeded", Duration::from_secs(60), || {
            let deps = deps.clone();
            async move {
                let d = deps.get("late").await?;
                Ok(d.status
                    .and_then(|s| s.conditions)
                    .unwrap_or_default()
                    .iter()
                    .any(|c| c.reason.as_deref() == Some("ProgressDeadlineExceeded"))
                    .then_some(()))
            }
        })
        .await?;
        // Back to the default deadline; the verdict on v1 stays in the status.
        let out = jockey_e2e::kubectl(&[
            "patch",
            "deployment",
            "late",
            "-n",
            &ns,
            "--type=merge",
            "-p",
            r#"{"spec":{"progressDeadlineSeconds":600}}"#,
        ])?;
        ensure!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        wait_for(
            "the controller to observe the patch",
            Duration::from_secs(30),
            || {
                let deps = deps.clone();
                async move {
                    let d = deps.get("late").await?;
                    let s = d.status.clone().unwrap_or_default();
                    let stale = s
                        .conditions
                        .unwrap_or_default()
                        .iter()
                        .any(|c| c.reason.as_deref() == Some("ProgressDeadlineExceeded"));
                    Ok((s.observed_generation == d.metadata.generation && stale).then_some(()))
                }
            },
        )
        .await?;
        Ok(())
    }
    .await;
    pin.cleanup().await?;
    timed_out?;
    write_version(dir.path(), 2)?;
    let run = deploy(&env, dir.path(), "late", &[])?;
    ensure!(
        run.ok,
        "a stale deadline must not fail the next deploy: {}",
        run.all()
    );
    env.cleanup().await
}
