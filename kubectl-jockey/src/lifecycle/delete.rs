//! `kubectl jockey delete PROJECT`: the project's Ingress, Service, Deployment, instance
//! ConfigMaps and builds, in that order: the Ingress goes first (and is waited for, so the load
//! balancer controller has removed the host's rules) before the backend it routes to.
//!
//! Only objects labelled `jockey.agentops.ai/project: PROJECT` are deleted; a same-named object
//! that is not the project's is left alone and reported (see [`super::ownership`]).

use super::instances::{instance_selector, referenced};
use super::ownership::{LeftAlone, check_owner, project_label};
use crate::cluster::{KubeArgs, api_message, is_not_found};
use anyhow::{Context, Result, bail};
use jockey_core::ProjectId;
use jockey_core::build_request::BuildRequest;
use jockey_core::names::{LABEL_APP, LABEL_PROJECT};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service};
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{DeleteParams, ListParams, Patch, Preconditions, PropagationPolicy};
use kube::runtime::wait::conditions;
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug, Clone)]
pub struct DeleteArgs {
    pub project: String,
    /// How long to wait for the Ingress (before its backend is deleted) and the project's pods
    /// to go away.
    #[arg(long, default_value = "2m", value_parser = crate::duration::parse)]
    pub timeout: Duration,
    /// Return once the deletions are accepted, without waiting for the Ingress or the pods to go.
    #[arg(long)]
    pub no_wait: bool,
}

pub async fn run(kube: &KubeArgs, args: DeleteArgs) -> Result<()> {
    let project = ProjectId::parse(&args.project)?;
    let cluster = kube.connect().await?;
    let (client, ns) = (&cluster.client, cluster.namespace.as_str());
    let deadline = Instant::now() + args.timeout;
    let mut deleted = 0usize;
    let mut left_alone: Vec<LeftAlone> = Vec::new();

    // 1. The Ingress, waited for: its host stops routing before the backend goes.
    let ingresses: Api<Ingress> = Api::namespaced(client.clone(), ns);
    let kind = "ingress.networking.k8s.io";
    let name = project.ingress_name();
    match delete_if_ours(&ingresses, kind, &name, &project, ns).await? {
        Outcome::Deleted { uid } => {
            println!("{kind}/{name} deleted");
            deleted += 1;
            if !args.no_wait && !wait_deleted(&ingresses, &name, &uid, deadline).await {
                let finalizers = ingresses
                    .get_opt(&name)
                    .await
                    .ok()
                    .flatten()
                    .and_then(|i| i.metadata.finalizers)
                    .unwrap_or_default();
                eprintln!(
                    "warning: {kind}/{name} is still terminating (finalizers: {}); is the load \
                     balancer controller running? deleting its backend anyway",
                    finalizers.join(", ")
                );
            }
        }
        Outcome::LeftAlone(l) => left_alone.push(l),
        Outcome::Absent => {}
    }

    // 2. The Service, 3. the Deployment (foreground: its ReplicaSets and pods go before it).
    let services: Api<Service> = Api::namespaced(client.clone(), ns);
    let name = project.service_name();
    match delete_if_ours(&services, "service", &name, &project, ns).await? {
        Outcome::Deleted { .. } => {
            println!("service/{name} deleted");
            deleted += 1;
        }
        Outcome::LeftAlone(l) => left_alone.push(l),
        Outcome::Absent => {}
    }
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let name = project.deployment_name();
    let deployment_uid =
        match delete_if_ours(&deployments, "deployment.apps", &name, &project, ns).await? {
            Outcome::Deleted { uid } => {
                println!("deployment.apps/{name} deleted");
                deleted += 1;
                Some(uid)
            }
            Outcome::LeftAlone(l) => {
                left_alone.push(l);
                None
            }
            Outcome::Absent => None,
        };

    // 4. The instance ConfigMaps (selected by the project label), unless something else uses them.
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let instances = cms
        .list(&ListParams::default().labels(&instance_selector(Some(&project))))
        .await
        .with_context(|| format!("listing the instance ConfigMaps of {project}"))?;
    let users = instance_users(client, ns, &project).await?;
    for cm in instances.items {
        let name = cm.metadata.name.unwrap_or_default();
        match users.get(&name) {
            Some(User::Project(other)) => {
                // Another project deploys identical files: the shared ConfigMap stays, now
                // labelled as that project's, so nothing labelled with the deleted project is
                // left.
                let relabel =
                    serde_json::json!({ "metadata": { "labels": { LABEL_PROJECT: other } } });
                cms.patch(
                    &name,
                    &kube::api::PatchParams::default(),
                    &Patch::Merge(&relabel),
                )
                .await
                .with_context(|| {
                    format!("handing ConfigMap {ns}/{name} over to project {other}")
                })?;
                println!("configmap/{name} kept: project {other} uses the same files");
            }
            Some(User::Other(object)) => println!(
                "configmap/{name} kept: {object} (not a jockey project) still mounts it; delete \
                 it with kubectl once nothing uses it"
            ),
            None => match cms.delete(&name, &DeleteParams::default()).await {
                Ok(_) => {
                    println!("configmap/{name} deleted");
                    deleted += 1;
                }
                Err(e) if is_not_found(&e) => {}
                Err(e) => {
                    return Err(e).with_context(|| format!("deleting ConfigMap {ns}/{name}"));
                }
            },
        }
    }
    for l in &left_alone {
        println!("{l}");
    }
    if deleted == 0 {
        if left_alone.is_empty() {
            bail!(
                "project {project} has nothing in namespace {ns} (no Deployment, Service, Ingress \
                 or instance ConfigMap); check -n"
            );
        }
        bail!(
            "project {project} has nothing of jockey's in namespace {ns}; left alone: {}",
            left_alone
                .iter()
                .map(|l| l.object.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }

    // 5. Its build requests, in its own namespace; the build broker removes what they started in
    // the builder namespace (which a tenant cannot touch, so a label planted here selects
    // nothing there).
    let requests: Api<BuildRequest> = Api::namespaced(client.clone(), ns);
    let sel = ListParams::default().labels(&format!("{LABEL_PROJECT}={project}"));
    let listed = requests.list(&sel).await;
    if let Err(e) = &listed {
        eprintln!(
            "build requests of {project} skipped ({}); the broker removes their builds once they \
             are gone",
            api_message(e)
        );
    }
    if let Ok(list) = listed {
        for r in list.items {
            let name = r.metadata.name.unwrap_or_default();
            if requests
                .delete(&name, &DeleteParams::background())
                .await
                .is_ok()
            {
                println!("buildrequest.jockey.agentops.ai/{name} deleted");
            }
        }
    }
    if args.no_wait {
        return Ok(());
    }
    let Some(uid) = deployment_uid else {
        println!("project {project} deleted from namespace {ns}");
        return Ok(());
    };
    // The Deployment is removed only once its ReplicaSets and pods are (foreground deletion).
    if wait_deleted(&deployments, &project.deployment_name(), &uid, deadline).await {
        println!("project {project} deleted from namespace {ns}");
        return Ok(());
    }
    let pods = Api::<Pod>::namespaced(client.clone(), ns)
        .list(
            &ListParams::default()
                .labels(&format!("{LABEL_APP}={project},{LABEL_PROJECT}={project}")),
        )
        .await
        .map(|l| l.items.len())
        .unwrap_or_default();
    bail!(
        "project {project}: {pods} pod(s) still terminating after --timeout {}; they go on \
         their own, check with `kubectl get pods -n {ns} -l {LABEL_APP}={project}`",
        crate::duration::show(args.timeout)
    )
}

/// What [`delete_if_ours`] did with one named object.
enum Outcome {
    Absent,
    Deleted { uid: String },
    LeftAlone(LeftAlone),
}

/// Deletes `name` if it carries the project's label (foreground, so dependents go first).
async fn delete_if_ours<K>(
    api: &Api<K>,
    kind: &str,
    name: &str,
    project: &ProjectId,
    ns: &str,
) -> Result<Outcome>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    let Some(obj) = api
        .get_opt(name)
        .await
        .with_context(|| format!("reading {kind} {ns}/{name}"))?
    else {
        return Ok(Outcome::Absent);
    };
    if let Err(left) = check_owner(kind, obj.meta(), project) {
        return Ok(Outcome::LeftAlone(left));
    }
    let uid = obj.meta().uid.clone().unwrap_or_default();
    // The uid precondition: should the object be replaced between the read and the delete (by
    // something that need not be jockey's), the API server refuses instead of deleting that.
    let params = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Foreground),
        preconditions: Some(Preconditions {
            uid: Some(uid.clone()),
            resource_version: None,
        }),
        ..Default::default()
    };
    match api.delete(name, &params).await {
        Ok(_) => Ok(Outcome::Deleted { uid }),
        Err(e) if is_not_found(&e) => Ok(Outcome::Absent),
        Err(kube::Error::Api(status)) if status.code == 409 => bail!(
            "{kind} {ns}/{name} was replaced while being deleted ({}); it was not deleted: run \
             the command again",
            status.message
        ),
        Err(e) => Err(anyhow::anyhow!(api_message(&e)))
            .with_context(|| format!("deleting {kind} {ns}/{name}")),
    }
}

/// Whether the object `name` with `uid` is gone before `deadline`.
async fn wait_deleted<K>(api: &Api<K>, name: &str, uid: &str, deadline: Instant) -> bool
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + 'static,
{
    crate::watch::until(api.clone(), name, conditions::is_deleted(uid), deadline)
        .await
        .is_ok()
}

/// Who besides the project uses one of its instance ConfigMaps.
#[derive(Debug, Clone, PartialEq, Eq)]
enum User {
    /// Another jockey project deploys identical files: the ConfigMap is handed over to it.
    Project(String),
    /// Something that is not a jockey project mounts it (`kind/name`): it is kept as it is.
    Other(String),
}

/// Instance ConfigMaps that Deployments and ReplicaSets in `ns` other than the project's own
/// reference. A jockey project wins over anything else, so the ConfigMap can be handed over.
async fn instance_users(
    client: &Client,
    ns: &str,
    project: &ProjectId,
) -> Result<BTreeMap<String, User>> {
    let mut out: BTreeMap<String, User> = BTreeMap::new();
    let mut add = |name: String, user: User| {
        let replace = matches!(
            (out.get(&name), &user),
            (None, _) | (Some(User::Other(_)), User::Project(_))
        );
        if replace {
            out.insert(name, user);
        }
    };
    let user_of = |meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
                   kind: &str|
     -> Option<User> {
        match project_label(meta) {
            Some(p) if p == project.as_str() => None,
            Some(p) => Some(User::Project(p.to_string())),
            None => Some(User::Other(format!(
                "{kind}/{}",
                meta.name.as_deref().unwrap_or_default()
            ))),
        }
    };
    let deps = Api::<Deployment>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
        .context("listing Deployments")?
        .items;
    for d in &deps {
        let Some(user) = user_of(&d.metadata, "deployment.apps") else {
            continue;
        };
        for (_, name) in referenced(std::slice::from_ref(d), &[]) {
            add(name, user.clone());
        }
    }
    let rss = Api::<ReplicaSet>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
        .context("listing ReplicaSets")?
        .items;
    for r in &rss {
        let Some(user) = user_of(&r.metadata, "replicaset.apps") else {
            continue;
        };
        for (_, name) in referenced(&[], std::slice::from_ref(r)) {
            add(name, user.clone());
        }
    }
    Ok(out)
}
