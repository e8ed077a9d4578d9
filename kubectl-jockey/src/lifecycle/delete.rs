//! `kubectl jockey delete PROJECT`: the project's Ingress, Service, Deployment, instance
//! ConfigMaps and builds.

use super::instances::{instance_selector, referenced};
use crate::cluster::{KubeArgs, is_not_found};
use crate::kaniko::build_selector;
use crate::settings::ConfigArgs;
use anyhow::{Context, Result, bail};
use jockey_core::ProjectId;
use jockey_core::names::{LABEL_APP, LABEL_PROJECT};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service};
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{DeleteParams, ListParams, Patch};
use kube::{Api, Client};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug, Clone)]
pub struct DeleteArgs {
    pub project: String,
    /// How long to wait for the project's pods to go away.
    #[arg(long, default_value = "2m", value_parser = crate::deploy::parse_duration)]
    pub timeout: Duration,
    /// Return once the deletions are accepted, without waiting for the pods to go.
    #[arg(long)]
    pub no_wait: bool,
    #[command(flatten)]
    pub config: ConfigArgs,
}

pub async fn run(kube: &KubeArgs, args: DeleteArgs) -> Result<()> {
    let project = ProjectId::parse(&args.project)?;
    let cfg = args.config.resolve();
    let cluster = kube.connect().await?;
    let (client, ns) = (&cluster.client, cluster.namespace.as_str());
    let mut deleted = Vec::new();
    // Foreground: the ReplicaSets and pods go before the Deployment does, so "gone" means gone.
    let dp = DeleteParams::foreground();
    macro_rules! delete_named {
        ($ty:ty, $name:expr, $kind:expr) => {{
            let api: Api<$ty> = Api::namespaced(client.clone(), ns);
            match api.delete(&$name, &dp).await {
                Ok(_) => deleted.push(format!("{}/{}", $kind, $name)),
                Err(e) if is_not_found(&e) => {}
                Err(e) => {
                    return Err(e).with_context(|| format!("deleting {} {ns}/{}", $kind, $name));
                }
            }
        }};
    }
    delete_named!(Ingress, project.ingress_name(), "ingress.networking.k8s.io");
    delete_named!(Service, project.service_name(), "service");
    delete_named!(Deployment, project.deployment_name(), "deployment.apps");
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let instances = cms
        .list(&ListParams::default().labels(&instance_selector(Some(&project))))
        .await
        .with_context(|| format!("listing the instance ConfigMaps of {project}"))?;
    let used_by_others = referenced_by_other_projects(client, ns, &project).await?;
    for cm in instances.items {
        let name = cm.metadata.name.unwrap_or_default();
        if let Some(other) = used_by_others.get(&name) {
            // Another project deploys identical files: the shared ConfigMap stays, now labelled
            // as that project's, so nothing labelled with the deleted project is left.
            let relabel = serde_json::json!({ "metadata": { "labels": { LABEL_PROJECT: other } } });
            cms.patch(
                &name,
                &kube::api::PatchParams::default(),
                &Patch::Merge(&relabel),
            )
            .await
            .with_context(|| format!("handing ConfigMap {ns}/{name} over to project {other}"))?;
            println!("configmap/{name} kept: project {other} uses the same files");
            continue;
        }
        match cms.delete(&name, &DeleteParams::default()).await {
            Ok(_) => deleted.push(format!("configmap/{name}")),
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(e).with_context(|| format!("deleting ConfigMap {ns}/{name}")),
        }
    }
    if deleted.is_empty() {
        bail!(
            "project {project} has nothing in namespace {ns} (no Deployment, Service, Ingress or \
             instance ConfigMap); check -n"
        );
    }
    for d in &deleted {
        println!("{d} deleted");
    }
    // Its builds in the builder namespace: best effort, as the user may not read that namespace.
    let bns = cfg.builder_namespace.as_str();
    let jobs: Api<Job> = Api::namespaced(client.clone(), bns);
    let sel = ListParams::default().labels(&build_selector(Some(project.as_str())));
    if let Ok(list) = jobs.list(&sel).await {
        for job in list.items {
            let name = job.metadata.name.unwrap_or_default();
            if jobs
                .delete(&name, &DeleteParams::background())
                .await
                .is_ok()
            {
                println!("job.batch/{name} deleted (namespace {bns})");
            }
        }
    }
    let bcms: Api<ConfigMap> = Api::namespaced(client.clone(), bns);
    if let Ok(list) = bcms.list(&sel).await {
        for cm in list.items {
            let name = cm.metadata.name.unwrap_or_default();
            let _ = bcms.delete(&name, &DeleteParams::default()).await;
        }
    }
    if args.no_wait {
        return Ok(());
    }
    let deadline = Instant::now() + args.timeout;
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let deps: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let pod_sel = ListParams::default().labels(&format!("{LABEL_APP}={project}"));
    loop {
        let dep_left = deps.get_opt(&project.deployment_name()).await?.is_some();
        let pods_left = pods.list(&pod_sel).await?.items.len();
        if !dep_left && pods_left == 0 {
            println!("project {project} deleted from namespace {ns}");
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!(
                "project {project}: {pods_left} pod(s) still terminating after --timeout {}s; \
                 they go on their own, check with `kubectl get pods -n {ns} -l {LABEL_APP}={project}`",
                args.timeout.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Instance ConfigMaps the Deployments and ReplicaSets of other projects in `ns` reference, each
/// with (one of) the projects using it.
async fn referenced_by_other_projects(
    client: &Client,
    ns: &str,
    project: &ProjectId,
) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let deps = Api::<Deployment>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
        .context("listing Deployments")?
        .items;
    for d in &deps {
        let Some(other) = d.metadata.name.clone().filter(|n| n != project.as_str()) else {
            continue;
        };
        for (_, name) in referenced(std::slice::from_ref(d), &[]) {
            out.insert(name, other.clone());
        }
    }
    let rss = Api::<ReplicaSet>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
        .context("listing ReplicaSets")?
        .items;
    for r in &rss {
        let Some(other) = r
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(LABEL_APP))
            .filter(|a| a.as_str() != project.as_str())
            .cloned()
        else {
            continue;
        };
        for (_, name) in referenced(&[], std::slice::from_ref(r)) {
            out.entry(name).or_insert_with(|| other.clone());
        }
    }
    Ok(out)
}
