//! Ten deploys of one project with ten different sets of files, started together: exactly one
//! wins (the one holding the project's deploy Lease); the nine others fail with a conflict
//! before writing anything; the end state is the winner's, consistent across instance
//! ConfigMap, recorded image, build Job and Deployment; nobody reports success but the winner.
//! The winner's build is held (no kubelet) until the nine have ended, so the runs overlap for
//! certain, whatever the machine's speed.

use crate::SERIAL;
use crate::deploy_support::{Env, NoKubelet, dry_run_configmap_name, example_copy, write_version};
use crate::kubelet::Gates;
use crate::running::Running;
use anyhow::{Result, ensure};
use jockey_core::names::{ANNOTATION_IMAGE, LABEL_PROJECT};
use jockey_e2e::client;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::ListParams;
use std::time::{Duration, Instant};

const PROJECT: &str = "race";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_concurrent_deploys_of_one_project_one_wins_the_others_conflict() -> Result<()> {
    let _serial = SERIAL.lock().await;
    let client = client().await?;
    let env = Env::new(&client, "fault-race").await?;
    let (ns, builder) = (env.ns.name.clone(), env.builder.name.clone());
    crate::running::service_accounts_ready(&client, &[&ns, &builder]).await?;
    let build_pin = NoKubelet::pin(&client, &builder).await?;
    let gates = Gates::start(&client, &builder, &ns, PROJECT);
    let outcome = async {
        let mut dirs = Vec::new();
        let mut cms = Vec::new();
        for i in 0..10 {
            let dir = example_copy(&format!("race{i}"))?;
            write_version(dir.path(), i)?;
            cms.push(dry_run_configmap_name(dir.path(), PROJECT)?);
            dirs.push(dir);
        }
        let mut runs = Vec::new();
        for dir in &dirs {
            runs.push(Some(Running::deploy(
                &env,
                dir.path(),
                PROJECT,
                &["--timeout", "180s"],
            )?));
        }
        // The nine that lose end on their own while the winner's build is held.
        let mut ended = vec![None; 10];
        let start = Instant::now();
        while ended.iter().filter(|e| e.is_some()).count() < 9 {
            for (i, run) in runs.iter_mut().enumerate() {
                if let Some(r) = run.as_mut()
                    && let Some(e) = r.ended()?
                {
                    ended[i] = Some((e.status.success(), e.all()));
                    *run = None;
                }
            }
            ensure!(
                start.elapsed() < Duration::from_secs(120),
                "only {} of the ten deploys ended while one build was held",
                ended.iter().filter(|e| e.is_some()).count()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        for (i, e) in ended.iter().enumerate() {
            if let Some((ok, out)) = e {
                ensure!(
                    !ok,
                    "deploy {i} succeeded while another held the project:\n{out}"
                );
                ensure!(
                    out.contains("conflict: another deploy of project race")
                        && out.contains("nothing was written by this one"),
                    "deploy {i} did not fail with the conflict:\n{out}"
                );
            }
        }
        let winner = runs.iter().position(Option::is_some).unwrap_or_default();
        gates.set(true, true);
        let run = runs[winner].take();
        let won = match run {
            Some(r) => r.wait(Duration::from_secs(240)).await?,
            None => anyhow::bail!("no deploy left running"),
        };
        ensure!(won.status.success(), "the winner failed:\n{}", won.all());
        ensure!(
            won.stdout
                .contains(&format!("is available ({})", cms[winner])),
            "{}",
            won.all()
        );

        // The end state is the winner's, and only the winner wrote.
        let dep = Api::<Deployment>::namespaced(client.clone(), &ns)
            .get(PROJECT)
            .await?;
        let at = crate::running::instance_of(&dep);
        ensure!(
            at.as_deref() == Some(cms[winner].as_str()),
            "Deployment at {at:?}"
        );
        let image = dep
            .spec
            .template
            .spec
            .and_then(|p| p.containers.first().and_then(|c| c.image.clone()))
            .unwrap_or_default();
        // The built-in template's image holds the dependencies (`:d-<hex>`); the winner's
        // instance is what the pod unpacks (checked above).
        ensure!(image.contains(&format!("/{PROJECT}:d-")), "image {image}");
        let live_cms: Vec<ConfigMap> = Api::<ConfigMap>::namespaced(client.clone(), &ns)
            .list(&ListParams::default().labels(&format!("{LABEL_PROJECT}={PROJECT}")))
            .await?
            .items;
        let names: Vec<String> = live_cms
            .iter()
            .filter_map(|c| c.metadata.name.clone())
            .collect();
        ensure!(
            names == vec![cms[winner].clone()],
            "instance ConfigMaps: {names:?}"
        );
        let recorded = live_cms[0]
            .metadata
            .annotations
            .clone()
            .unwrap_or_default()
            .get(ANNOTATION_IMAGE)
            .cloned();
        ensure!(
            recorded.as_deref() == Some(image.as_str()),
            "recorded {recorded:?}, runs {image}"
        );
        let jobs = Api::<Job>::namespaced(client.clone(), &builder)
            .list(&ListParams::default().labels(&format!("{LABEL_PROJECT}={PROJECT}")))
            .await?
            .items;
        ensure!(jobs.len() == 1, "{} build Jobs", jobs.len());
        eprintln!("deploy {winner} won; nine conflicts");
        anyhow::Ok(())
    }
    .await;
    gates.stop().await;
    build_pin.cleanup().await?;
    outcome?;
    env.cleanup().await
}
