//! Outgrowing one ALB on the local control plane: the real `jockey-webhook` (its own instance,
//! with a shared group name unique to this test and the default capacity of 90) places 90
//! projects in the shared group and the 91st in `<group>-2`; an assignment never moves; and
//! `alb-status` / `list-alb-ingresses` show both shards.

mod alb_support;
#[path = "webhook_support/mod.rs"]
mod webhook_support;

use webhook_support::Webhook;

use alb_support::{jockey, json_stdout, text};
use anyhow::{Context, Result, bail};

use jockey_e2e::{TestNamespace, client};
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;
use std::time::{Duration, Instant};

const GROUP_ANNOTATION: &str = "alb.ingress.kubernetes.io/group.name";
const DOMAIN: &str = "shards.example.test";

/// `jockey-webhook` on 127.0.0.1 with this test's group, registered for this test's namespace
/// only; unregistered and stopped on drop.
async fn start_webhook(client: &Client, group: &str, ns: &str) -> Result<Webhook> {
    let mut wh = Webhook::start_with_args(
        "alb-shards",
        None,
        &[
            "--alb-shared-group-name",
            group,
            "--deployment-domain",
            DOMAIN,
        ],
    )
    .await?;
    wh.scope(client, ns, None).await?;
    wh.register(client, ns).await?;
    Ok(wh)
}

fn ingress(project: &str) -> Result<Ingress> {
    Ok(serde_json::from_value(json!({
        "metadata": {"name": format!("ing-{project}"),
                     "labels": {"jockey.agentops.ai/project": project}},
        "spec": {"rules": [{"host": format!("{project}.{DOMAIN}"), "http": {"paths": [{
            "path": "/", "pathType": "Prefix",
            "backend": {"service": {"name": format!("svc-{project}"), "port": {"number": 80}}}}]}}]}
    }))?)
}

fn group(ing: &Ingress) -> String {
    ing.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(GROUP_ANNOTATION))
        .cloned()
        .unwrap_or_default()
}

/// Waits until a server-side dry run of `project`'s Ingress is placed in `want`: the webhook's
/// index is fed by a watch, so it sees the Ingresses just created a moment later.
async fn wait_for_placement(api: &Api<Ingress>, project: &str, want: &str) -> Result<()> {
    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    let start = Instant::now();
    loop {
        let placed = group(&api.create(&dry, &ingress(project)?).await?);
        if placed == want {
            return Ok(());
        }
        // Generous: under a loaded CI machine the watch may lag by seconds.
        if start.elapsed() > Duration::from_secs(90) {
            bail!("{project} is still placed in {placed:?}, not {want:?}, after 90 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn the_91st_project_lands_in_the_second_shard_and_nothing_moves() -> Result<()> {
    let client = client().await?;
    let ns = TestNamespace::create(&client, "alb-shards").await?;
    let base = format!("e2e-shards-{}", std::process::id());
    let shard2 = format!("{base}-2");
    let _webhook = start_webhook(&client, &base, &ns.name).await?;
    let api: Api<Ingress> = Api::namespaced(client.clone(), &ns.name);
    let project = |i: usize| format!("s{}-{i:03}", std::process::id() % 100_000);

    // The webhook is called once the API server has loaded the configuration.
    wait_for_placement(&api, &project(1), &base).await?;
    for i in 1..=90 {
        let created = api
            .create(&PostParams::default(), &ingress(&project(i))?)
            .await?;
        assert_eq!(
            group(&created),
            base,
            "project {i} of 90 goes to the shared group"
        );
    }
    // Once the webhook has seen all 90, the next project opens the second shard.
    wait_for_placement(&api, &project(91), &shard2).await?;
    let created = api
        .create(&PostParams::default(), &ingress(&project(91))?)
        .await?;
    assert_eq!(group(&created), shard2);

    // An update never moves an Ingress: neither a full group nor the new shard's member, even
    // after room frees up in the shared group.
    api.delete(&format!("ing-{}", project(2)), &DeleteParams::default())
        .await?;
    for i in [1, 91] {
        let name = format!("ing-{}", project(i));
        let patched = api
            .patch(
                &name,
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"annotations": {"touched": "yes"}}})),
            )
            .await?;
        let want = if i == 91 { &shard2 } else { &base };
        assert_eq!(&group(&patched), want, "{name} moved");
    }
    // The freed place is reused by the next new project.
    wait_for_placement(&api, &project(92), &base).await?;

    // What the operator sees: both shards, 89 + 1 Ingresses.
    let out = jockey(
        &[
            "alb-status",
            "--no-aws",
            "-o",
            "json",
            "--alb-group",
            &base,
            "--deployment-domain",
            DOMAIN,
        ],
        &[],
    )?;
    let s = json_stdout(&out)?;
    assert_eq!(s["groups"][0]["group"], base.as_str(), "{}", text(&out));
    assert_eq!(s["groups"][0]["ingresses"], 89);
    assert_eq!(s["groups"][0]["target_groups"]["used"], 89);
    assert_eq!(s["groups"][1]["group"], shard2.as_str());
    assert_eq!(s["groups"][1]["shard"], 2);
    assert_eq!(s["groups"][1]["ingresses"], 1);
    let out = jockey(
        &[
            "list-alb-ingresses",
            "-n",
            &ns.name,
            "-o",
            "json",
            "--alb-group",
            &base,
        ],
        &[],
    )?;
    let rows = json_stdout(&out)?;
    let row = rows
        .as_array()
        .context("rows")?
        .iter()
        .find(|r| r["project"] == project(91).as_str())
        .context("project 91 listed")?;
    assert_eq!(row["group"], shard2.as_str());
    assert_eq!(rows.as_array().map(Vec::len), Some(90));

    ns.cleanup().await?;
    Ok(())
}
