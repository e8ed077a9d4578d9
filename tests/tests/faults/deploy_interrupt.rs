//! `deploy` interrupted by SIGINT and by SIGKILL after each of its steps (instance ConfigMap
//! written, build Job created, Deployment applied, waiting for the rollout), each step detected
//! from the cluster (the object appearing), not from the clock. Then the same command again
//! converges. Throughout, every Deployment the API server reports names an instance ConfigMap
//! that exists and an image recorded on it as built. SIGINT says what was left and how to finish.

use crate::SERIAL;
use crate::component::signal;
use crate::deploy_support::{Env, NoKubelet, dry_run_configmap_name, example_copy, write_version};
use crate::kubelet::Gates;
use crate::running::Running;
use anyhow::{Context, Result, bail, ensure};
use futures::StreamExt;
use jockey_core::names::{ANNOTATION_IMAGE, ANNOTATION_INSTANCE};
use jockey_e2e::{client, wait_for};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use kube::api::ListParams;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const PROJECT: &str = "intr";

/// Watches the project's Deployment and, for every version the API server reports, checks that
/// the instance ConfigMap it names exists and records its image as built. Violations collect.
fn watch_invariant(
    client: &Client,
    ns: &str,
) -> (Arc<Mutex<Vec<String>>>, tokio::task::JoinHandle<()>) {
    let bad = Arc::new(Mutex::new(Vec::new()));
    let deps: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let (out, ns) = (bad.clone(), ns.to_string());
    let task = tokio::spawn(async move {
        let mut stream = watcher(deps, watcher::Config::default())
            .default_backoff()
            .applied_objects()
            .boxed();
        while let Some(Ok(dep)) = stream.next().await {
            let rv = dep.metadata.resource_version.clone().unwrap_or_default();
            let instance = crate::running::instance_of(&dep).unwrap_or_default();
            let image = dep
                .spec
                .template
                .spec
                .as_ref()
                .and_then(|p| p.containers.first())
                .and_then(|c| c.image.clone())
                .unwrap_or_default();
            // Instance ConfigMaps are never deleted in this test: reading after the event is
            // reading what existed at it.
            let problem = match cms.get_opt(&instance).await {
                Ok(None) => Some(format!(
                    "names ConfigMap {ns}/{instance}, which does not exist"
                )),
                Ok(Some(cm)) => {
                    let recorded = cm
                        .metadata
                        .annotations
                        .unwrap_or_default()
                        .get(ANNOTATION_IMAGE)
                        .cloned()
                        .unwrap_or_default();
                    (!recorded.split(',').any(|i| i.trim() == image)).then(|| {
                        format!(
                            "runs image {image}, not recorded as built on {instance} ({recorded:?})"
                        )
                    })
                }
                Err(e) => Some(format!("could not read ConfigMap {instance}: {e}")),
            };
            if let Some(p) = problem {
                out.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(format!("Deployment at resourceVersion {rv} {p}"));
            }
        }
    });
    (bad, task)
}

#[derive(Debug, Clone, Copy)]
enum Step {
    ConfigMap,
    Job,
    Deployment,
    Waiting,
}

/// Waits until the cluster shows that `deploy` finished `step` for instance `cm`.
async fn reached(client: &Client, env: &Env, step: Step, cm: &str) -> Result<()> {
    let hash = cm.trim_start_matches("instance-").to_string();
    let (ns, builder) = (env.ns.name.clone(), env.builder.name.clone());
    wait_for(&format!("step {step:?} of {cm}"), Duration::from_secs(120), || {
        let (client, ns, builder, hash, cm) =
            (client.clone(), ns.clone(), builder.clone(), hash.clone(), cm.to_string());
        async move {
            let dep_at = || async {
                let d = Api::<Deployment>::namespaced(client.clone(), &ns)
                    .get_opt(PROJECT)
                    .await?;
                anyhow::Ok(d.is_some_and(|d| {
                    d.metadata.annotations.unwrap_or_default().get(ANNOTATION_INSTANCE)
                        == Some(&cm)
                }))
            };
            let done = match step {
                Step::ConfigMap => Api::<ConfigMap>::namespaced(client.clone(), &ns)
                    .get_opt(&cm)
                    .await?
                    .is_some(),
                Step::Job => !Api::<Job>::namespaced(client.clone(), &builder)
                    .list(&ListParams::default().labels(&format!(
                        "jockey.agentops.ai/project={PROJECT},jockey.agentops.ai/content-hash={hash}"
                    )))
                    .await?
                    .items
                    .is_empty(),
                Step::Deployment => dep_at().await?,
                // Service and Ingress are applied after the Deployment: with both there, deploy
                // is past its writes and waits for the rollout.
                Step::Waiting => {
                    dep_at().await?
                        && Api::<Service>::namespaced(client.clone(), &ns)
                            .get_opt(&format!("svc-{PROJECT}"))
                            .await?
                            .is_some()
                }
            };
            Ok(done.then_some(()))
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deploy_interrupted_after_each_step_converges_on_the_next_run() -> Result<()> {
    let _serial = SERIAL.lock().await;
    let client = client().await?;
    let env = Env::new(&client, "fault-intr").await?;
    let (ns, builder) = (env.ns.name.clone(), env.builder.name.clone());
    crate::running::service_accounts_ready(&client, &[&ns, &builder]).await?;
    let build_pin = NoKubelet::pin(&client, &builder).await?;
    let pod_pin = NoKubelet::pin(&client, &ns).await?;
    let gates = Gates::start(&client, &builder, &ns, PROJECT);
    let (violations, watch) = watch_invariant(&client, &ns);
    let dir = example_copy("fault-intr")?;
    let outcome = async {
        let mut version = 0;
        for step in [Step::ConfigMap, Step::Job, Step::Deployment, Step::Waiting] {
            for sig in ["INT", "KILL"] {
                version += 1;
                write_version(dir.path(), version)?;
                // New dependencies too: each version is a build of its own to interrupt (a
                // code-only change builds nothing).
                std::fs::write(
                    dir.path().join("requirements.txt"),
                    format!("# version {version}\n"),
                )?;
                let cm = dry_run_configmap_name(dir.path(), PROJECT)?;
                // Held at the build for the first two steps, at the rollout for the others.
                let past_build = matches!(step, Step::Deployment | Step::Waiting);
                gates.set(past_build, false);
                let run = Running::deploy(&env, dir.path(), PROJECT, &["--timeout", "180s"])?;
                reached(&client, &env, step, &cm).await?;
                signal(run.pid(), sig)?;
                let ended = run.wait(Duration::from_secs(60)).await?;
                let what = format!("SIG{sig} after {step:?} ({cm})");
                ensure!(
                    !ended.status.success(),
                    "{what}: deploy reported success:\n{}",
                    ended.all()
                );
                if sig == "INT" {
                    eprintln!("{what}: deploy said:\n{}", ended.stderr);
                    ensure!(
                        ended.status.code() == Some(130),
                        "{what}: exit {:?}:\n{}",
                        ended.status,
                        ended.all()
                    );
                    for needle in [
                        "interrupted: the deploy of intr stopped before it finished",
                        &format!("done: configmap/{cm}"),
                        "left unfinished:",
                        "to finish, run the same command again",
                        "kubectl jockey deploy",
                    ] {
                        ensure!(
                            ended.stderr.contains(needle),
                            "{what}: no {needle:?} in:\n{}",
                            ended.all()
                        );
                    }
                }
                // The same command again, nothing held back: it converges on these files.
                gates.set(true, true);
                let again = Running::deploy(&env, dir.path(), PROJECT, &["--timeout", "180s"])?
                    .wait(Duration::from_secs(240))
                    .await?;
                ensure!(
                    again.status.success(),
                    "{what}, then again: failed:\n{}",
                    again.all()
                );
                ensure!(
                    again.stdout.contains(&format!("is available ({cm})")),
                    "{what}, then again:\n{}",
                    again.all()
                );
                if sig == "INT" {
                    ensure!(
                        !again.stderr.contains("is held by"),
                        "{what}: ctrl-c did not release the deploy's Lease:\n{}",
                        again.all()
                    );
                }
                let dep = Api::<Deployment>::namespaced(client.clone(), &ns)
                    .get(PROJECT)
                    .await?;
                let at = crate::running::instance_of(&dep);
                ensure!(
                    at.as_deref() == Some(cm.as_str()),
                    "{what}: Deployment at {at:?}"
                );
                eprintln!("{what}: stopped, then converged");
            }
        }
        anyhow::Ok(())
    }
    .await;
    gates.stop().await;
    // The watch saw the last writes before it is stopped.
    tokio::time::sleep(Duration::from_secs(1)).await;
    watch.abort();
    let violations = violations.lock().unwrap_or_else(|p| p.into_inner()).clone();
    pod_pin.cleanup().await?;
    build_pin.cleanup().await?;
    outcome?;
    if !violations.is_empty() {
        bail!(
            "a Deployment pointed at something missing:\n{}",
            violations.join("\n")
        );
    }
    env.cleanup().await.context("cleanup")
}
