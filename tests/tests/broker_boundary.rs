//! The build broker's side of the tenant boundary, through the real API server: one broker
//! answers two tenants' namespaces; tenant B tries, from its own namespace, what a tenant can
//! write there (BuildRequests, ConfigMaps) against tenant A's project, and A's build, claim and
//! image are unchanged. (What B cannot write at all, the builder namespace and other
//! namespaces, is the tenant Role's: tests/tests/tenant_role.rs.)

mod deploy_support;

use anyhow::{Context, Result, ensure};
use deploy_support::{Env, example_copy, jockey};
use jockey_core::ProjectId;
use jockey_core::build_request::{self, BuildRequest, Phase};
use jockey_core::bundle::{bundle_dir, instance_configmap};
use jockey_core::names::LABEL_PROJECT;
use jockey_e2e::{TestNamespace, client, wait_for};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use std::collections::BTreeMap;
use std::time::Duration;

/// The builder namespace's Jobs: name -> resourceVersion.
async fn jobs(client: &Client, builder: &str) -> Result<BTreeMap<String, String>> {
    Ok(Api::<Job>::namespaced(client.clone(), builder)
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .map(|j| {
            (
                j.metadata.name.unwrap_or_default(),
                j.metadata.resource_version.unwrap_or_default(),
            )
        })
        .collect())
}

/// Waits for the broker's verdict on a request.
async fn verdict(client: &Client, ns: &str, name: &str) -> Result<(Phase, String)> {
    let api: Api<BuildRequest> = Api::namespaced(client.clone(), ns);
    wait_for(
        &format!("the broker's verdict on {ns}/{name}"),
        Duration::from_secs(60),
        || {
            let api = api.clone();
            async move {
                let r = api.get(name).await?;
                Ok(r.status
                    .filter(|s| s.phase.is_final())
                    .map(|s| (s.phase, s.message.unwrap_or_default())))
            }
        },
    )
    .await
}

#[tokio::test]
async fn a_tenant_cannot_build_read_or_remove_another_tenants_project_through_the_broker()
-> Result<()> {
    let client = client().await?;
    let mut env = Env::new(&client, "broker-a").await?;
    let b = TestNamespace::create(&client, "broker-b").await?;
    env.restart_broker(&[&b.name], &[])?;
    let (a_ns, builder) = (env.ns.name.clone(), env.builder.name.clone());

    // Tenant A deploys its project (KWOK plays the build).
    let a_dir = example_copy("broker-a")?;
    env.deploy_version(a_dir.path(), "victim", 1)?;
    let a_jobs = jobs(&client, &builder).await?;
    ensure!(a_jobs.len() == 1, "one build of A: {a_jobs:?}");
    let leases: Api<Lease> = Api::namespaced(client.clone(), &builder);
    let claim = leases.get("project-victim").await?;

    // 1. B deploys its own files as A's project: the broker refuses, nothing is built.
    let b_dir = example_copy("broker-b")?;
    std::fs::write(b_dir.path().join("server.py"), "print('not the victim')\n")?;
    let run = jockey(
        &[
            "deploy",
            &b_dir.path().to_string_lossy(),
            "--project",
            "victim",
            "-n",
            &b.name,
            "--timeout",
            "60s",
        ],
        &builder,
        &[],
    )?;
    ensure!(!run.ok, "B built A's project: {}", run.all());
    ensure!(
        run.stderr.contains("refused") && run.stderr.contains(&format!("namespace {a_ns}")),
        "{}\nbroker:\n{}",
        run.all(),
        env.broker.log_text()
    );

    // 2. A request naming A's instance, which is not in B's namespace: refused.
    let a_bundle = bundle_dir(a_dir.path())?;
    let victim = ProjectId::parse("victim")?;
    let requests: Api<BuildRequest> = Api::namespaced(client.clone(), &b.name);
    let mut direct = build_request::request(&victim, &a_bundle.hash, &b.name, 120);
    direct.metadata.name = Some("direct".into());
    requests.create(&PostParams::default(), &direct).await?;
    let (phase, why) = verdict(&client, &b.name, "direct").await?;
    ensure!(phase == Phase::Refused, "{phase:?} {why}");

    // 3. B's own project, from a ConfigMap that claims A's content but holds B's files: the
    // broker reads the files, not the name.
    let own = ProjectId::parse("b-own")?;
    let b_bundle = bundle_dir(b_dir.path())?;
    let mut forged: ConfigMap = instance_configmap(&own, &b_bundle);
    forged.metadata.name = Some(a_bundle.hash.configmap_name());
    forged.metadata.namespace = Some(b.name.clone());
    forged.metadata.annotations.get_or_insert_default().insert(
        jockey_core::names::ANNOTATION_CONTENT_SHA256.into(),
        a_bundle.hash.full().into(),
    );
    Api::<ConfigMap>::namespaced(client.clone(), &b.name)
        .create(&PostParams::default(), &forged)
        .await?;
    let lie = build_request::request(&own, &a_bundle.hash, &b.name, 120);
    let lie_name = lie.metadata.name.clone().context("named")?;
    requests.create(&PostParams::default(), &lie).await?;
    let (phase, why) = verdict(&client, &b.name, &lie_name).await?;
    ensure!(
        phase == Phase::Refused && why.contains("does not hold what its name says"),
        "{phase:?} {why}"
    );

    // 4. A request's spec cannot be changed once the broker has judged it.
    let edit = requests
        .patch(
            &lie_name,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({ "spec": { "project": "victim" } })),
        )
        .await;
    ensure!(edit.is_err(), "the API server let a request's spec change");

    // 5. `delete` of A's project from B, after planting a ConfigMap labelled for it: nothing of
    // A's goes (a tenant's delete reaches only its own namespace's requests).
    let planted: ConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": { "name": "planted", "labels": { LABEL_PROJECT: "victim" } },
        "data": { "x": "y" }
    }))?;
    Api::<ConfigMap>::namespaced(client.clone(), &b.name)
        .create(&PostParams::default(), &planted)
        .await?;
    let _ = jockey(
        &["delete", "victim", "-n", &b.name, "--no-wait"],
        &builder,
        &[],
    )?;
    // Give the broker's sweep (every 3 s here) time to act, if it were going to.
    tokio::time::sleep(Duration::from_secs(8)).await;

    // A's build, claim and request are as they were; nothing else was built.
    ensure!(
        jobs(&client, &builder).await? == a_jobs,
        "the builder namespace changed: {:?} (before {a_jobs:?})",
        jobs(&client, &builder).await?
    );
    let after = leases.get("project-victim").await?;
    ensure!(
        after.spec.and_then(|s| s.holder_identity) == claim.spec.and_then(|s| s.holder_identity),
        "A's claim changed"
    );
    let a_requests: Api<BuildRequest> = Api::namespaced(client.clone(), &a_ns);
    let a_name = build_request::request_name(&victim, &a_bundle.hash);
    ensure!(
        a_requests.get(&a_name).await?.phase() == Phase::Succeeded,
        "A's build request changed"
    );
    b.cleanup().await?;
    env.cleanup().await
}
