//! `gc --keep 0` never collects the instance a running deploy is still building: not while its
//! build Job runs (whatever `--min-age`), and not while it is younger than `--min-age` (shown
//! once the build is over, so that only its age protects it). Each protection is shown alone,
//! and the same `gc` collects the instance once neither holds.

mod deploy_support;

use anyhow::{Result, ensure};
use deploy_support::{Env, NoKubelet, configmaps, example_copy};
use jockey_e2e::{client, wait_for};
use std::time::Duration;

#[tokio::test]
async fn gc_keep_zero_never_collects_a_running_deploys_instance() -> Result<()> {
    let client = client().await?;
    let env = Env::new(&client, "gc-grace").await?;
    let ns = env.ns.name.clone();
    let dir = example_copy("gc-grace")?;
    // The build pod never starts: the deploy stays in its build.
    let pin = NoKubelet::pin(&client, &env.builder.name).await?;
    let outcome = async {
        let (d, builder, ns2) = (
            dir.path().to_string_lossy().to_string(),
            env.builder.name.clone(),
            ns.clone(),
        );
        let deploy = tokio::task::spawn_blocking(move || {
            deploy_support::jockey(
                &[
                    "deploy",
                    &d,
                    "--project",
                    "building",
                    "--timeout",
                    "25s",
                    "-n",
                    &ns2,
                ],
                &builder,
                &[],
            )
        });
        let instance = wait_for("the instance ConfigMap", Duration::from_secs(30), || {
            let (client, ns) = (client.clone(), ns.clone());
            async move {
                Ok(configmaps(&client, &ns)
                    .await?
                    .into_iter()
                    .find(|n| n.starts_with("instance-")))
            }
        })
        .await?;
        // Unreferenced (no Deployment yet), but its build is running.
        let run = env.jockey(&["gc", "--keep", "0", "--min-age", "0s"])?;
        ensure!(run.ok, "{}", run.all());
        ensure!(
            configmaps(&client, &ns).await?.contains(&instance),
            "collected while building: {}",
            run.all()
        );
        let run = deploy.await??;
        ensure!(!run.ok, "the build never ran: {}", run.all());
        Ok(instance)
    }
    .await;
    pin.cleanup().await?;
    let instance = outcome?;
    // Control: once its build is over (its request gone: the broker removes the build), an
    // old-enough unreferenced instance is collected.
    let requests = jockey_e2e::kubectl(&[
        "delete",
        "buildrequests.jockey.agentops.ai",
        "--all",
        "-n",
        &env.ns.name,
        "--wait=true",
    ])?;
    ensure!(requests.status.success());
    let left = jockey_e2e::kubectl_ok(&[
        "get",
        "buildrequests.jockey.agentops.ai",
        "-n",
        &env.ns.name,
        "-o",
        "name",
    ])?;
    ensure!(left.trim().is_empty(), "build requests left: {left}");
    // Only its age protects it now: the default --min-age (1h) keeps it, and a --min-age it is
    // older than does not.
    let run = env.jockey(&["gc", "--keep", "0"])?;
    ensure!(run.ok, "{}", run.all());
    ensure!(
        configmaps(&client, &ns).await?.contains(&instance),
        "collected while younger than the default --min-age: {}",
        run.all()
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let run = env.jockey(&["gc", "--keep", "0", "--min-age", "2h"])?;
    ensure!(run.ok, "{}", run.all());
    ensure!(
        configmaps(&client, &ns).await?.contains(&instance),
        "collected while younger than --min-age 2h: {}",
        run.all()
    );
    let run = env.jockey(&["gc", "--keep", "0", "--min-age", "1s"])?;
    ensure!(run.ok, "{}", run.all());
    ensure!(
        !configmaps(&client, &ns).await?.contains(&instance),
        "an unreferenced instance older than --min-age 1s, its build over, was kept: {}",
        run.all()
    );
    env.cleanup().await
}
