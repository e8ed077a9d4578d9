//! The lifecycle commands on the local control plane: `rollback` re-points the Deployment at an
//! earlier instance and its image without a rebuild; `delete` leaves nothing of the project
//! behind; `gc` removes only instance ConfigMaps that nothing references, keeping what a
//! retained ReplicaSet still uses; plus `status`, `list`, `logs-builder` and `completion`.

mod deploy_support;

use anyhow::Result;
use deploy_support::{Env, example_copy, write_version};
use jockey_core::names::{ANNOTATION_INSTANCE, LABEL_PROJECT};
use jockey_e2e::{client, wait_for};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service};
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{DeleteParams, ListParams};
use kube::{Api, Client};
use std::path::Path;
use std::time::Duration;

/// Writes a distinct version of the example into `dir` and deploys it; returns its instance.
fn deploy_version(env: &Env, dir: &Path, project: &str, version: u32) -> Result<String> {
    let run = env.deploy_version(dir, project, version)?;
    let line = run
        .stdout
        .lines()
        .find(|l| l.contains("is available ("))
        .unwrap_or_default();
    let instance = line
        .rsplit('(')
        .next()
        .unwrap_or_default()
        .trim_end_matches(')')
        .to_string();
    anyhow::ensure!(instance.starts_with("instance-"), "{}", run.all());
    Ok(instance)
}

async fn current_instance(client: &Client, ns: &str, project: &str) -> Result<(String, String)> {
    let dep = Api::<Deployment>::namespaced(client.clone(), ns)
        .get(project)
        .await?;
    let instance =
        dep.metadata.annotations.clone().unwrap_or_default()[ANNOTATION_INSTANCE].clone();
    let image = dep.spec.template.spec.unwrap().containers[0]
        .image
        .clone()
        .unwrap_or_default();
    Ok((instance, image))
}

/// A table as `list` prints it: its lines, split into columns.
fn table(out: &str) -> Vec<Vec<&str>> {
    out.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().collect())
        .collect()
}

async fn build_jobs(client: &Client, builder: &str, project: &str) -> Result<usize> {
    Ok(Api::<Job>::namespaced(client.clone(), builder)
        .list(&ListParams::default().labels(&format!("{LABEL_PROJECT}={project}")))
        .await?
        .items
        .len())
}

#[tokio::test]
async fn rollback_repoints_at_the_earlier_instance_without_rebuilding() -> Result<()> {
    let client = client().await?;
    let env = Env::new(&client, "deploy-rollback").await?;
    let ns = env.ns.name.clone();
    let dir = example_copy("rollback")?;
    let v1 = deploy_version(&env, dir.path(), "rb", 1)?;
    let v2 = deploy_version(&env, dir.path(), "rb", 2)?;
    assert_ne!(v1, v2);
    // Two versions of the code with the same dependencies: one build (the built-in template's
    // dependency image); the second deploy built nothing.
    let jobs = build_jobs(&client, &env.builder.name, "rb").await?;
    assert_eq!(jobs, 1);
    let (_, v2_image) = current_instance(&client, &ns, "rb").await?;

    let run = env.jockey(&["rollback", "rb", "--timeout", "60s"])?;
    assert!(run.ok, "{}", run.all());
    let (instance, image) = current_instance(&client, &ns, "rb").await?;
    assert_eq!(instance, v1, "{}", run.all());
    // The instance moved; the image is the same dependency image (only the code changed).
    assert_eq!(image, v2_image, "{}", run.all());
    assert!(jockey_core::image::is_dependency_image(&image), "{image}");
    assert_eq!(
        build_jobs(&client, &env.builder.name, "rb").await?,
        jobs,
        "a rollback never builds"
    );

    // --to goes anywhere known, by hash prefix.
    let to = &v2.trim_start_matches("instance-")[..8];
    let run = env.jockey(&["rollback", "rb", "--to", to, "--timeout", "60s"])?;
    assert!(run.ok, "{}", run.all());
    assert_eq!(current_instance(&client, &ns, "rb").await?.0, v2);

    // An unknown hash is refused and changes nothing.
    let run = env.jockey(&["rollback", "rb", "--to", "ffffffffffff"])?;
    assert!(!run.ok);
    assert!(
        run.stderr.contains("no instance ConfigMap matches"),
        "{}",
        run.all()
    );
    assert_eq!(current_instance(&client, &ns, "rb").await?.0, v2);

    // status and list report the project and its instance.
    let status = env.jockey(&["status", "rb", "-o", "json"])?;
    assert!(status.ok, "{}", status.all());
    let st: serde_json::Value = serde_json::from_str(&status.stdout)?;
    assert_eq!(st["instance"], v2);
    assert_eq!(st["url"], "https://rb.deploy.agentops.ai");
    let v2_hash = v2.trim_start_matches("instance-").to_string();
    let list = env.jockey(&["list"])?;
    assert!(list.ok, "{}", list.all());
    assert_eq!(
        table(&list.stdout),
        vec![
            vec!["PROJECT", "READY", "INSTANCE", "URL"],
            vec!["rb", "1/1", &v2_hash, "https://rb.deploy.agentops.ai"],
        ],
        "{}",
        list.all()
    );
    let all = deploy_support::jockey(&["list", "-A", "-o", "json"], &env.builder.name, &[])?;
    assert!(all.ok, "{}", all.all());
    let items: serde_json::Value = serde_json::from_str(&all.stdout)?;
    assert!(
        items["items"].as_array().is_some_and(|i| i
            .iter()
            .any(|p| p["project"] == "rb" && p["namespace"] == ns)),
        "{}",
        all.stdout
    );
    // Wide adds the image that runs and the address (none: no load balancer controller here).
    let (_, image) = current_instance(&client, &ns, "rb").await?;
    let wide = env.jockey(&["list", "-o", "wide"])?;
    assert!(wide.ok, "{}", wide.all());
    assert_eq!(
        table(&wide.stdout),
        vec![
            vec!["PROJECT", "READY", "INSTANCE", "URL", "IMAGE", "ADDRESS"],
            vec![
                "rb",
                "1/1",
                &v2_hash,
                "https://rb.deploy.agentops.ai",
                &image,
                "-"
            ],
        ],
        "{}",
        wide.all()
    );

    // logs-builder finds the project's one build; KWOK serves no log text, which it says, and
    // as it could not show any log it exits non-zero.
    let logs = deploy_support::jockey(
        &["logs-builder", "-n", &env.builder.name, "--project", "rb"],
        &env.builder.name,
        &[],
    )?;
    assert_eq!(logs.stdout.matches("==> ").count(), 1, "{}", logs.all());
    assert!(logs.stdout.contains("(log unavailable"), "{}", logs.all());
    assert!(!logs.ok, "{}", logs.all());
    let none = deploy_support::jockey(
        &[
            "logs-builder",
            "-n",
            &env.builder.name,
            "--project",
            "nosuch",
        ],
        &env.builder.name,
        &[],
    )?;
    assert!(
        !none.ok && none.stderr.contains("no build pods"),
        "{}",
        none.all()
    );

    // --no-wait returns once applied; the URL is still printed.
    write_version(dir.path(), 9)?;
    let quick = env.jockey(&[
        "deploy",
        &dir.path().to_string_lossy(),
        "--project",
        "rb",
        "--no-wait",
    ])?;
    assert!(quick.ok, "{}", quick.all());
    assert!(quick.stdout.contains("--no-wait"), "{}", quick.all());
    assert!(!quick.stderr.contains("rolled out"), "{}", quick.all());

    env.cleanup().await
}

#[tokio::test]
async fn delete_leaves_nothing_of_the_project_behind() -> Result<()> {
    let client = client().await?;
    let env = Env::new(&client, "deploy-delete").await?;
    let ns = env.ns.name.clone();
    let dir = example_copy("delete")?;
    deploy_version(&env, dir.path(), "gone", 1)?;
    let shared = deploy_version(&env, dir.path(), "gone", 2)?;
    // A second project in the namespace must survive.
    deploy_version(&env, dir.path(), "stays", 3)?;
    // A third deploys the very files of `gone` v2: both use one `instance-<h>`.
    assert_eq!(deploy_version(&env, dir.path(), "twin", 2)?, shared);

    let run = env.jockey(&["delete", "gone", "--timeout", "60s"])?;
    assert!(run.ok, "{}", run.all());

    let sel = ListParams::default().labels(&format!("{LABEL_PROJECT}=gone"));
    let app = ListParams::default().labels("app=gone");
    wait_for(
        "the project's objects to be gone",
        Duration::from_secs(60),
        || {
            let (client, ns, sel, app) = (client.clone(), ns.clone(), sel.clone(), app.clone());
            async move {
                let left = Api::<Deployment>::namespaced(client.clone(), &ns)
                    .list(&sel)
                    .await?
                    .items
                    .len()
                    + Api::<ReplicaSet>::namespaced(client.clone(), &ns)
                        .list(&app)
                        .await?
                        .items
                        .len()
                    + Api::<Pod>::namespaced(client.clone(), &ns)
                        .list(&app)
                        .await?
                        .items
                        .len()
                    + Api::<Service>::namespaced(client.clone(), &ns)
                        .list(&sel)
                        .await?
                        .items
                        .len()
                    + Api::<Ingress>::namespaced(client.clone(), &ns)
                        .list(&sel)
                        .await?
                        .items
                        .len()
                    + Api::<ConfigMap>::namespaced(client.clone(), &ns)
                        .list(&sel)
                        .await?
                        .items
                        .len();
                Ok((left == 0).then_some(()))
            }
        },
    )
    .await?;
    // Its builds go too: the broker removes the builds of requests that are gone.
    jockey_e2e::wait_for(
        "the broker to remove the deleted project's builds",
        Duration::from_secs(60),
        || {
            let (client, builder) = (client.clone(), env.builder.name.clone());
            async move { Ok((build_jobs(&client, &builder, "gone").await? == 0).then_some(())) }
        },
    )
    .await?;
    // The other projects are untouched; the shared instance stays, handed over to `twin`.
    assert!(current_instance(&client, &ns, "stays").await.is_ok());
    assert_eq!(current_instance(&client, &ns, "twin").await?.0, shared);
    let kept = Api::<ConfigMap>::namespaced(client.clone(), &ns)
        .get(&shared)
        .await?;
    assert_eq!(
        kept.metadata.labels.unwrap_or_default()[LABEL_PROJECT],
        "twin"
    );
    assert!(
        run.stdout.contains(&format!("{shared} kept")),
        "{}",
        run.all()
    );
    // A redeploy of `twin` finds its image recorded and writes nothing.
    let again = env.jockey(&["deploy", &dir.path().to_string_lossy(), "--project", "twin"])?;
    assert!(again.stderr.contains("nothing changed"), "{}", again.all());

    // Deleting what is not there says so and fails.
    let again = env.jockey(&["delete", "gone"])?;
    assert!(!again.ok);
    assert!(
        again.stderr.contains("has nothing in namespace"),
        "{}",
        again.all()
    );
    env.cleanup().await
}

#[tokio::test]
async fn gc_keeps_what_a_replicaset_references_and_removes_the_rest() -> Result<()> {
    let client = client().await?;
    let env = Env::new(&client, "deploy-gc").await?;
    let ns = env.ns.name.clone();
    let dir = example_copy("gc")?;
    let v1 = deploy_version(&env, dir.path(), "collect", 1)?;
    let v2 = deploy_version(&env, dir.path(), "collect", 2)?;
    let v3 = deploy_version(&env, dir.path(), "collect", 3)?;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let names = |list: Vec<ConfigMap>| -> Vec<String> {
        let mut v: Vec<String> = list.into_iter().filter_map(|c| c.metadata.name).collect();
        v.sort();
        v
    };
    let sel = ListParams::default().labels(&format!("{LABEL_PROJECT}=collect"));

    // Every instance is referenced (v3 by the Deployment, v1 and v2 by retained ReplicaSets).
    let run = env.jockey(&["gc", "--keep", "0", "--min-age", "0s"])?;
    assert!(run.ok, "{}", run.all());
    assert_eq!(names(cms.list(&sel).await?.items).len(), 3, "{}", run.all());

    // Once v1's ReplicaSet is gone (as revisionHistoryLimit would prune it), v1 is garbage.
    let rss: Api<ReplicaSet> = Api::namespaced(client.clone(), &ns);
    for rs in rss
        .list(&ListParams::default().labels("app=collect"))
        .await?
        .items
    {
        let annotations = rs.metadata.annotations.clone().unwrap_or_default();
        if annotations.get(ANNOTATION_INSTANCE) == Some(&v1) {
            rss.delete(
                rs.metadata.name.as_deref().unwrap_or_default(),
                &DeleteParams::background(),
            )
            .await?;
        }
    }
    let dry = env.jockey(&["gc", "--keep", "0", "--dry-run", "--min-age", "0s"])?;
    assert!(dry.ok, "{}", dry.all());
    assert!(
        dry.stdout.contains(&format!("{v1} would be deleted")),
        "{}",
        dry.all()
    );
    assert!(
        !dry.stdout.contains(&v2) && !dry.stdout.contains(&v3),
        "{}",
        dry.all()
    );
    assert_eq!(
        names(cms.list(&sel).await?.items).len(),
        3,
        "a dry run deletes nothing"
    );
    // Across all namespaces (-A) the same instance is found, named with its namespace.
    let all = deploy_support::jockey(
        &["gc", "-A", "--keep", "0", "--dry-run", "--min-age", "0s"],
        &env.builder.name,
        &[],
    )?;
    assert!(all.ok, "{}", all.all());
    assert!(
        all.stdout.contains(&format!(
            "{v1} would be deleted (namespace {ns}, project collect"
        )),
        "{}",
        all.all()
    );
    assert!(
        !all.stdout.contains(&format!("{v2} would")),
        "{}",
        all.all()
    );

    // --keep 1 keeps the newest (v3); v1 is neither among the newest nor referenced: removed.
    let run = env.jockey(&["gc", "--keep", "1", "--min-age", "0s"])?;
    assert!(run.ok, "{}", run.all());
    let mut expected = vec![v2.clone(), v3.clone()];
    expected.sort();
    assert_eq!(
        names(cms.list(&sel).await?.items),
        expected,
        "{}",
        run.all()
    );

    env.cleanup().await
}

#[test]
fn completion_scripts_name_the_commands() -> Result<()> {
    for shell in ["bash", "zsh", "fish"] {
        let run = deploy_support::jockey(&["completion", shell], "builder", &[])?;
        assert!(run.ok, "{shell}: {}", run.all());
        assert!(run.stdout.contains("kubectl-jockey"), "{shell}");
        assert!(run.stdout.contains("rollback"), "{shell}");
    }
    let bad = deploy_support::jockey(&["completion", "cmd.exe"], "builder", &[])?;
    assert!(!bad.ok);
    Ok(())
}
