//! kube-apiserver SIGKILLed and started again (same arguments) twice while `deploy` waits: once
//! during its build, once during its rollout. The build pod and the server pod sit on a node
//! without a kubelet, so the test decides when each finishes: `deploy` must still be running
//! (never report success early) until the test makes the server pod Ready, and then succeed
//! with the Deployment available on its instance.

use crate::SERIAL;
use crate::component::ControlPlane;
use crate::deploy_support::{Env, NoKubelet, dry_run_configmap_name, example_copy, play_kubelet};
use crate::running::{Running, build_succeeded, pods, server_ready};
use anyhow::{Result, ensure};
use jockey_e2e::{client, wait_for};
use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deploy_survives_kube_apiserver_restarts_during_build_and_rollout_and_never_succeeds_early()
-> Result<()> {
    let _serial = SERIAL.lock().await;
    let client = client().await?;
    let env = Env::new(&client, "fault-api").await?;
    let (ns, builder) = (env.ns.name.clone(), env.builder.name.clone());
    let dir = example_copy("fault-api")?;
    let project = "apirs";
    let cm = dry_run_configmap_name(dir.path(), project)?;
    crate::running::service_accounts_ready(&client, &[&ns, &builder]).await?;
    let build_pin = NoKubelet::pin(&client, &builder).await?;
    let pod_pin = NoKubelet::pin(&client, &ns).await?;
    let apiserver = ControlPlane::new()?;

    let mut run = Running::deploy(&env, dir.path(), project, &["--timeout", "300s"])?;
    let job_pods = format!("jockey.agentops.ai/project={project}");
    wait_for("the build pod", Duration::from_secs(120), || {
        let (client, builder, sel) = (client.clone(), builder.clone(), job_pods.clone());
        async move { Ok((!pods(&client, &builder, &sel).await?.is_empty()).then_some(())) }
    })
    .await?;
    tokio::task::block_in_place(|| apiserver.restart_apiserver())?;
    let client = jockey_e2e::client().await?;
    ensure!(
        run.ended()?.is_none(),
        "deploy ended while its build had not finished:\n{}",
        run.output()
    );
    play_kubelet(&client, &builder, &job_pods, build_succeeded()).await?;

    let server_pods = format!("app={project}");
    wait_for("the server pod", Duration::from_secs(120), || {
        let (client, ns, sel) = (client.clone(), ns.clone(), server_pods.clone());
        async move { Ok((!pods(&client, &ns, &sel).await?.is_empty()).then_some(())) }
    })
    .await?;
    tokio::task::block_in_place(|| apiserver.restart_apiserver())?;
    let client = jockey_e2e::client().await?;
    // Give a premature success every chance to show: the pod is not Ready, so `deploy` must
    // still be waiting after a few of its polls.
    tokio::time::sleep(Duration::from_secs(3)).await;
    ensure!(
        run.ended()?.is_none(),
        "deploy ended before its pod was Ready:\n{}",
        run.output()
    );
    play_kubelet(&client, &ns, &server_pods, server_ready()).await?;
    let ended = run.wait(Duration::from_secs(240)).await?;
    // The state at the moment it reported success.
    let dep = Api::<Deployment>::namespaced(client.clone(), &ns)
        .get(project)
        .await?;
    ensure!(ended.status.success(), "deploy failed:\n{}", ended.all());
    ensure!(
        ended.stdout.contains(&format!("is available ({cm})")),
        "{}",
        ended.all()
    );
    let status = dep.status.clone().unwrap_or_default();
    ensure!(
        status.available_replicas.unwrap_or(0) >= 1 && status.updated_replicas.unwrap_or(0) >= 1,
        "deploy reported success but the Deployment is not available: {status:?}"
    );
    let instance = dep
        .metadata
        .annotations
        .unwrap_or_default()
        .get("jockey.agentops.ai/instance")
        .cloned();
    ensure!(instance.as_deref() == Some(cm.as_str()), "{instance:?}");
    drop(apiserver);
    pod_pin.cleanup().await?;
    build_pin.cleanup().await?;
    env.cleanup().await
}
