//! `deploy` next to the real `jockey-webhook`: a new project's Ingress goes to the ALB group the
//! webhook places it in (here sharding with capacity 1, so two projects land in two groups), the
//! choice is kept on redeploy, and an unchanged redeploy still writes nothing.

mod deploy_support;
mod webhook_support;

use anyhow::Result;
use deploy_support::{Env, resource_versions};
use jockey_core::sharding::is_shard_of;
use jockey_e2e::{client, repo_root};
use k8s_openapi::api::networking::v1::Ingress;
use kube::Api;
use webhook_support::Webhook;

const GROUP: &str = "alb.ingress.kubernetes.io/group.name";

async fn group_of(api: &Api<Ingress>, project: &str) -> Result<String> {
    let ing = api.get(&format!("ing-{project}")).await?;
    Ok(ing.metadata.annotations.unwrap_or_default()[GROUP].clone())
}

#[tokio::test]
async fn deploy_places_new_ingresses_where_the_webhook_shards_them() -> Result<()> {
    let client = client().await?;
    let env = Env::new(&client, "deploy-webhook").await?;
    let mut wh = Webhook::start(
        "deploy-shards",
        Some("sharding: { enabled: true, capacity: 1 }\n"),
    )
    .await?;
    wh.scope(&client, &env.ns.name, None).await?;
    wh.register(&client, &env.ns.name).await?;
    let example = repo_root()
        .join("examples/agent")
        .to_string_lossy()
        .to_string();
    let ingresses: Api<Ingress> = Api::namespaced(client.clone(), &env.ns.name);

    let a = env.jockey(&[
        "deploy",
        &example,
        "--project",
        "shard-a",
        "--timeout",
        "120s",
    ])?;
    assert!(a.ok, "{}\n{}", a.all(), wh.log());
    let group_a = group_of(&ingresses, "shard-a").await?;
    // shard-b is placed from the webhook's Ingress cache, which follows the API server by a
    // watch: wait until the webhook places a new project elsewhere (a server dry run of a bare
    // labelled Ingress, which the webhook defaults and nothing stores), i.e. it sees shard-a.
    let probe = jockey_core::defaults::render_ingress(&jockey_core::ProjectId::parse("probe")?);
    let dry_run = kube::api::PostParams {
        dry_run: true,
        ..Default::default()
    };
    jockey_e2e::wait_for(
        "the webhook's Ingress cache to hold shard-a",
        std::time::Duration::from_secs(30),
        || {
            let (ingresses, probe, dry_run) = (ingresses.clone(), probe.clone(), dry_run.clone());
            let group_a = group_a.clone();
            async move {
                let placed = ingresses.create(&dry_run, &probe).await?;
                let group = placed
                    .metadata
                    .annotations
                    .unwrap_or_default()
                    .get(GROUP)
                    .cloned()
                    .unwrap_or_default();
                Ok((!group.is_empty() && group != group_a).then_some(()))
            }
        },
    )
    .await?;
    let b = env.jockey(&[
        "deploy",
        &example,
        "--project",
        "shard-b",
        "--timeout",
        "120s",
    ])?;
    assert!(b.ok, "{}\n{}", b.all(), wh.log());
    let group_b = group_of(&ingresses, "shard-b").await?;
    assert!(is_shard_of("alb-deployments", &group_a), "{group_a}");
    assert!(is_shard_of("alb-deployments", &group_b), "{group_b}");
    assert_ne!(group_a, group_b, "capacity 1: two projects, two groups");

    // Redeploying keeps the group and, unchanged, writes nothing even through the webhook.
    let before = resource_versions(&client, &env.ns.name, &env.builder.name).await?;
    let again = env.jockey(&[
        "deploy",
        &example,
        "--project",
        "shard-a",
        "--timeout",
        "120s",
    ])?;
    assert!(again.ok, "{}", again.all());
    assert!(again.stderr.contains("nothing changed"), "{}", again.all());
    assert_eq!(
        before,
        resource_versions(&client, &env.ns.name, &env.builder.name).await?
    );
    assert_eq!(group_of(&ingresses, "shard-a").await?, group_a);

    drop(wh);
    env.cleanup().await
}
