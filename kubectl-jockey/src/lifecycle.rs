//! The project lifecycle after `deploy`: `status`, `list`, `logs`, `rollback`, `delete`, `gc`.
//! Each command reads the labelled objects jockey wrote; the decisions (which instance to roll
//! back to, which ConfigMaps are garbage) are pure functions with unit tests.

use crate::build::{self, build_selector};
use crate::cluster::{KubeArgs, api_message, apply_params, is_not_found};
use crate::output::{ListingArgs, OutputFormat, print_structured, table};
use crate::settings::ConfigArgs;
use anyhow::{Context, Result, bail};
use futures::{AsyncBufReadExt, StreamExt};
use jockey_core::names::{
    ANNOTATION_CONTENT_SHA256, ANNOTATION_INSTANCE, LABEL_APP, LABEL_CONTENT_HASH, LABEL_PROJECT,
    short_hash_of_configmap,
};
use jockey_core::{ContentHash, ProjectId, defaults};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Event, Pod, PodTemplateSpec, Service};
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{DeleteParams, ListParams, LogParams, Patch};
use kube::{Api, Client};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug, Clone)]
pub struct StatusArgs {
    pub project: String,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    #[command(flatten)]
    pub config: ConfigArgs,
}

#[derive(clap::Args, Debug, Clone)]
pub struct ListArgs {
    #[command(flatten)]
    pub listing: ListingArgs,
    #[command(flatten)]
    pub config: ConfigArgs,
}

#[derive(clap::Args, Debug, Clone)]
pub struct LogsArgs {
    pub project: String,
    /// Keep streaming new log lines.
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Lines of recent log to show per pod.
    #[arg(long, default_value_t = 100)]
    pub tail: i64,
}

#[derive(clap::Args, Debug, Clone)]
pub struct RollbackArgs {
    pub project: String,
    /// The content hash (`<h>`, a unique prefix of it, or `instance-<h>`) to go back to;
    /// default: the instance deployed before the current one.
    #[arg(long, value_name = "HASH")]
    pub to: Option<String>,
    /// Return once the Deployment is re-pointed, without waiting for the rollout.
    #[arg(long)]
    pub no_wait: bool,
    /// How long the rollout may take, e.g. 120s, 5m.
    #[arg(long, default_value = "5m", value_parser = crate::deploy::parse_duration)]
    pub timeout: Duration,
    #[command(flatten)]
    pub config: ConfigArgs,
}

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

#[derive(clap::Args, Debug, Clone)]
pub struct GcArgs {
    /// Instance ConfigMaps to keep per project, newest first, besides those still referenced.
    #[arg(long, default_value_t = 3)]
    pub keep: usize,
    /// Print what would be removed; remove nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Collect in all namespaces.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
}

fn instance_selector(project: Option<&ProjectId>) -> String {
    match project {
        Some(p) => format!("{LABEL_PROJECT}={p},{LABEL_CONTENT_HASH}"),
        None => format!("{LABEL_PROJECT},{LABEL_CONTENT_HASH}"),
    }
}

fn deployment_instance(dep: &Deployment) -> Option<String> {
    dep.metadata
        .annotations
        .as_ref()?
        .get(ANNOTATION_INSTANCE)
        .cloned()
}

fn server_image(dep: &Deployment) -> Option<String> {
    let pod = dep.spec.template.spec.as_ref()?;
    pod.containers
        .iter()
        .find(|c| c.name == defaults::CONTAINER_NAME)
        .or(pod.containers.first())?
        .image
        .clone()
}

// ---------------------------------------------------------------------------------------------
// status and list
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PodSummary {
    pub name: String,
    pub phase: String,
    pub ready: bool,
    pub restarts: i32,
    /// Why it is not ready, when a container says so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct EventSummary {
    pub r#type: String,
    pub reason: String,
    pub object: String,
    pub message: String,
    pub count: i32,
}

/// What `status` and `list` report about one project.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ProjectStatus {
    pub project: String,
    pub namespace: String,
    pub ready: String,
    pub available: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_hash: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    pub url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ingress_address: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pods: Vec<PodSummary>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<EventSummary>,
}

/// A project's summary from its Deployment and Ingress. Pure.
pub fn summarize(dep: &Deployment, ingress: Option<&Ingress>, domain: &str) -> ProjectStatus {
    let project = dep
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(LABEL_PROJECT))
        .cloned()
        .or(dep.metadata.name.clone())
        .unwrap_or_default();
    let status = dep.status.clone().unwrap_or_default();
    let want = dep.spec.replicas.unwrap_or(1);
    let ready = status.ready_replicas.unwrap_or(0);
    let available =
        status.conditions.iter().flatten().any(|c| {
            c.type_.as_deref() == Some("Available") && c.status.as_deref() == Some("True")
        });
    let instance = deployment_instance(dep);
    let host = ingress
        .and_then(|i| i.spec.as_ref()?.rules.as_ref()?.first()?.host.clone())
        .unwrap_or_else(|| format!("{project}.{domain}"));
    ProjectStatus {
        namespace: dep.metadata.namespace.clone().unwrap_or_default(),
        ready: format!("{ready}/{want}"),
        available,
        content_hash: instance
            .as_deref()
            .and_then(short_hash_of_configmap)
            .map(str::to_string),
        instance,
        image: server_image(dep),
        url: format!("https://{host}"),
        ingress_address: ingress.and_then(crate::rollout::address_of),
        pods: Vec::new(),
        events: Vec::new(),
        project,
    }
}

pub fn pod_summary(pod: &Pod) -> PodSummary {
    let status = pod.status.clone().unwrap_or_default();
    let statuses = status.container_statuses.clone().unwrap_or_default();
    let reason = statuses.iter().find_map(|cs| {
        let s = cs.state.as_ref()?;
        s.waiting
            .as_ref()
            .and_then(|w| w.reason.clone())
            .or(s.terminated.as_ref().and_then(|t| t.reason.clone()))
    });
    PodSummary {
        name: pod.metadata.name.clone().unwrap_or_default(),
        phase: status.phase.unwrap_or_default(),
        ready: !statuses.is_empty() && statuses.iter().all(|c| c.ready),
        restarts: statuses.iter().map(|c| c.restart_count).sum(),
        reason,
    }
}

pub async fn status(kube: &KubeArgs, args: StatusArgs) -> Result<()> {
    let project = ProjectId::parse(&args.project)?;
    let cfg = args.config.resolve();
    let cluster = kube.connect().await?;
    let (client, ns) = (&cluster.client, cluster.namespace.as_str());
    let dep = Api::<Deployment>::namespaced(client.clone(), ns)
        .get_opt(&project.deployment_name())
        .await
        .with_context(|| format!("reading Deployment {ns}/{project}"))?
        .with_context(|| {
            format!(
                "project {project} has no Deployment in namespace {ns}; deploy it with \
                 `kubectl jockey deploy DIR --project {project} -n {ns}`, or pass the right -n"
            )
        })?;
    let ingress = Api::<Ingress>::namespaced(client.clone(), ns)
        .get_opt(&project.ingress_name())
        .await
        .ok()
        .flatten();
    let mut st = summarize(&dep, ingress.as_ref(), &cfg.deployment_domain);
    let pods = Api::<Pod>::namespaced(client.clone(), ns)
        .list(&ListParams::default().labels(&format!("{LABEL_APP}={project}")))
        .await
        .with_context(|| format!("listing the pods of {project}"))?;
    st.pods = pods.items.iter().map(pod_summary).collect();
    let names: BTreeSet<String> = [
        project.deployment_name(),
        project.service_name(),
        project.ingress_name(),
    ]
    .into_iter()
    .chain(st.pods.iter().map(|p| p.name.clone()))
    .collect();
    let mut events: Vec<Event> = Api::<Event>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default()
        .into_iter()
        .filter(|e| {
            let n = e.involved_object.name.clone().unwrap_or_default();
            names.contains(&n) || n.starts_with(&format!("{project}-"))
        })
        .collect();
    events.sort_by_key(|e| e.last_timestamp.clone().or(e.first_timestamp.clone()));
    st.events = events
        .iter()
        .rev()
        .take(10)
        .rev()
        .map(|e| EventSummary {
            r#type: e.type_.clone().unwrap_or_default(),
            reason: e.reason.clone().unwrap_or_default(),
            object: format!(
                "{}/{}",
                e.involved_object
                    .kind
                    .clone()
                    .unwrap_or_default()
                    .to_lowercase(),
                e.involved_object.name.clone().unwrap_or_default()
            ),
            message: e.message.clone().unwrap_or_default(),
            count: e.count.unwrap_or(1),
        })
        .collect();

    if matches!(args.output, OutputFormat::Json | OutputFormat::Yaml) {
        return print_structured(&st, args.output);
    }
    println!("Project:         {}", st.project);
    println!("Namespace:       {}", st.namespace);
    println!(
        "Deployment:      {} ready{}",
        st.ready,
        if st.available {
            ", available"
        } else {
            ", NOT available"
        }
    );
    println!(
        "Instance:        {}",
        st.instance.as_deref().unwrap_or("(none)")
    );
    println!(
        "Content hash:    {}",
        st.content_hash.as_deref().unwrap_or("(none)")
    );
    println!(
        "Image:           {}",
        st.image.as_deref().unwrap_or("(none)")
    );
    println!("URL:             {}", st.url);
    println!(
        "Ingress address: {}",
        st.ingress_address.as_deref().unwrap_or("(pending)")
    );
    println!("\nPods:");
    let rows: Vec<Vec<String>> = st
        .pods
        .iter()
        .map(|p| {
            vec![
                p.name.clone(),
                p.phase.clone(),
                p.ready.to_string(),
                p.restarts.to_string(),
                p.reason.clone().unwrap_or_default(),
            ]
        })
        .collect();
    print!(
        "{}",
        table(&["NAME", "PHASE", "READY", "RESTARTS", "REASON"], &rows)
    );
    println!("\nRecent events:");
    if st.events.is_empty() {
        println!("(none)");
    } else {
        let rows: Vec<Vec<String>> = st
            .events
            .iter()
            .map(|e| {
                vec![
                    e.r#type.clone(),
                    e.reason.clone(),
                    e.object.clone(),
                    e.message.clone(),
                ]
            })
            .collect();
        print!("{}", table(&["TYPE", "REASON", "OBJECT", "MESSAGE"], &rows));
    }
    Ok(())
}

pub async fn list(kube: &KubeArgs, args: ListArgs) -> Result<()> {
    let cfg = args.config.resolve();
    let cluster = kube.connect().await?;
    let client = &cluster.client;
    let all = args.listing.all_namespaces;
    let (deps, ings): (Api<Deployment>, Api<Ingress>) = if all {
        (Api::all(client.clone()), Api::all(client.clone()))
    } else {
        (
            Api::namespaced(client.clone(), &cluster.namespace),
            Api::namespaced(client.clone(), &cluster.namespace),
        )
    };
    let lp = ListParams::default().labels(LABEL_PROJECT);
    let deps = deps.list(&lp).await.context("listing Deployments")?.items;
    let ings = ings.list(&lp).await.context("listing Ingresses")?.items;
    let mut rows: Vec<ProjectStatus> = deps
        .iter()
        .map(|d| {
            let ing = ings.iter().find(|i| {
                i.metadata.namespace == d.metadata.namespace
                    && i.metadata
                        .labels
                        .as_ref()
                        .and_then(|l| l.get(LABEL_PROJECT))
                        == d.metadata
                            .labels
                            .as_ref()
                            .and_then(|l| l.get(LABEL_PROJECT))
            });
            summarize(d, ing, &cfg.deployment_domain)
        })
        .collect();
    rows.sort_by(|a, b| (&a.namespace, &a.project).cmp(&(&b.namespace, &b.project)));
    match args.listing.output {
        OutputFormat::Json | OutputFormat::Yaml => {
            print_structured(&serde_json::json!({ "items": rows }), args.listing.output)
        }
        format => {
            if rows.is_empty() {
                eprintln!(
                    "No projects found{}.",
                    if all {
                        String::new()
                    } else {
                        format!(" in namespace {}", cluster.namespace)
                    }
                );
                return Ok(());
            }
            let wide = format == OutputFormat::Wide;
            let mut header = Vec::new();
            if all {
                header.push("NAMESPACE");
            }
            header.extend(["PROJECT", "READY", "INSTANCE", "URL"]);
            if wide {
                header.extend(["IMAGE", "ADDRESS"]);
            }
            let table_rows: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    let mut row = Vec::new();
                    if all {
                        row.push(r.namespace.clone());
                    }
                    row.extend([
                        r.project.clone(),
                        r.ready.clone(),
                        r.content_hash.clone().unwrap_or_else(|| "-".into()),
                        r.url.clone(),
                    ]);
                    if wide {
                        row.push(r.image.clone().unwrap_or_else(|| "-".into()));
                        row.push(r.ingress_address.clone().unwrap_or_else(|| "-".into()));
                    }
                    row
                })
                .collect();
            print!("{}", table(&header, &table_rows));
            Ok(())
        }
    }
}

// ---------------------------------------------------------------------------------------------
// logs
// ---------------------------------------------------------------------------------------------

pub async fn logs(kube: &KubeArgs, args: LogsArgs) -> Result<()> {
    let project = ProjectId::parse(&args.project)?;
    let cluster = kube.connect().await?;
    let ns = cluster.namespace.clone();
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), &ns);
    let mut list = pods
        .list(&ListParams::default().labels(&format!("{LABEL_APP}={project}")))
        .await
        .with_context(|| format!("listing the pods of {project}"))?
        .items;
    if list.is_empty() {
        bail!(
            "project {project} has no pods in namespace {ns}; `kubectl jockey status {project} \
             -n {ns}` shows why"
        );
    }
    list.sort_by_key(|p| p.metadata.name.clone());
    let prefix = list.len() > 1;
    let mut tasks = Vec::new();
    for pod in list {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let container = pod.spec.as_ref().and_then(|s| {
            s.containers
                .iter()
                .find(|c| c.name == defaults::CONTAINER_NAME)
                .or(s.containers.first())
                .map(|c| c.name.clone())
        });
        let params = LogParams {
            container,
            follow: args.follow,
            tail_lines: Some(args.tail),
            ..Default::default()
        };
        let pods = pods.clone();
        tasks.push(tokio::spawn(async move {
            let label = if prefix {
                format!("[{name}] ")
            } else {
                String::new()
            };
            let stream = pods.log_stream(&name, &params).await.map_err(|e| {
                anyhow::anyhow!("reading the log of pod {name}: {}", api_message(&e))
            })?;
            let mut lines = stream.lines();
            while let Some(line) = lines.next().await {
                let line = line.with_context(|| format!("reading the log of pod {name}"))?;
                println!("{label}{line}");
            }
            anyhow::Ok(())
        }));
    }
    let mut failures = Vec::new();
    for t in tasks {
        match t.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failures.push(format!("{e:#}")),
            Err(e) => failures.push(e.to_string()),
        }
    }
    if !failures.is_empty() {
        bail!(
            "{}; the node may not serve logs yet (is the pod running?)",
            failures.join("; ")
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// rollback
// ---------------------------------------------------------------------------------------------

/// An instance ConfigMap as rollback and gc see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub namespace: String,
    pub name: String,
    pub project: String,
    /// RFC 3339 creation time (sorts chronologically, to the second).
    pub created: String,
    /// The resourceVersion, which orders creations within the same second.
    pub rv: u64,
}

fn instances_of(cms: &[ConfigMap]) -> Vec<Instance> {
    cms.iter()
        .filter_map(|cm| {
            let name = cm.metadata.name.clone()?;
            short_hash_of_configmap(&name)?;
            Some(Instance {
                namespace: cm.metadata.namespace.clone().unwrap_or_default(),
                project: cm.metadata.labels.as_ref()?.get(LABEL_PROJECT)?.clone(),
                created: cm
                    .metadata
                    .creation_timestamp
                    .as_ref()
                    .map(|t| serde_json::to_string(t).unwrap_or_default())
                    .unwrap_or_default(),
                rv: cm
                    .metadata
                    .resource_version
                    .as_deref()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0),
                name,
            })
        })
        .collect()
}

/// The instances a Deployment went through, newest revision first, from its ReplicaSets (each
/// keeps the instance annotation and volume of the revision it was made for). Pure.
pub fn instance_history(dep: &Deployment, rss: &[ReplicaSet]) -> Vec<String> {
    let uid = dep.metadata.uid.clone().unwrap_or_default();
    let mut revisions: Vec<(u64, String)> = rss
        .iter()
        .filter(|rs| {
            rs.metadata
                .owner_references
                .iter()
                .flatten()
                .any(|o| o.uid == uid)
        })
        .filter_map(|rs| {
            let revision = rs
                .metadata
                .annotations
                .as_ref()?
                .get("deployment.kubernetes.io/revision")?
                .parse()
                .ok()?;
            let mut refs = BTreeSet::new();
            template_refs(
                "",
                rs.metadata.annotations.as_ref(),
                rs.spec.template.as_ref(),
                &mut refs,
            );
            let instance = refs
                .into_iter()
                .map(|(_, n)| n)
                .find(|n| short_hash_of_configmap(n).is_some())?;
            Some((revision, instance))
        })
        .collect();
    revisions.sort_by_key(|r| std::cmp::Reverse(r.0));
    revisions.into_iter().map(|(_, i)| i).collect()
}

/// Which instance `rollback` goes to: `--to` (a hash, unique prefix or ConfigMap name), else
/// the instance of the Deployment's previous revision that differs from the current one, else
/// the newest instance created before the current one. Pure.
pub fn rollback_target(
    instances: &[Instance],
    history: &[String],
    current: Option<&str>,
    to: Option<&str>,
) -> Result<String, String> {
    if to.is_none()
        && let Some(previous) = history
            .iter()
            .find(|h| Some(h.as_str()) != current && instances.iter().any(|i| &i.name == *h))
    {
        return Ok(previous.clone());
    }
    let mut sorted: Vec<&Instance> = instances.iter().collect();
    sorted.sort_by(|a, b| (&a.created, a.rv).cmp(&(&b.created, b.rv)));
    if let Some(to) = to {
        let want = to
            .trim()
            .trim_start_matches("instance-")
            .to_ascii_lowercase();
        if want.is_empty() {
            return Err(
                "--to is empty; pass a content hash as `kubectl jockey status` shows it".into(),
            );
        }
        let matches: Vec<&&Instance> = sorted
            .iter()
            .filter(|i| i.name["instance-".len()..].starts_with(&want))
            .collect();
        return match matches.as_slice() {
            [one] => Ok(one.name.clone()),
            [] => Err(format!(
                "no instance ConfigMap matches {to:?}; available: {}",
                list_names(&sorted)
            )),
            many => Err(format!(
                "{to:?} matches {} instances ({}); give more digits",
                many.len(),
                many.iter()
                    .map(|i| i.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        };
    }
    let position = current.and_then(|c| sorted.iter().position(|i| i.name == c));
    let candidate = match position {
        Some(p) if p > 0 => Some(sorted[p - 1]),
        Some(_) => None,
        None => sorted
            .iter()
            .rev()
            .find(|i| Some(i.name.as_str()) != current)
            .copied(),
    };
    candidate.map(|i| i.name.clone()).ok_or_else(|| {
        format!(
            "there is no earlier instance to roll back to (instances: {}); deploy the files you \
             want instead",
            list_names(&sorted)
        )
    })
}

fn list_names(sorted: &[&Instance]) -> String {
    if sorted.is_empty() {
        "none".into()
    } else {
        sorted
            .iter()
            .map(|i| i.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

pub async fn rollback(kube: &KubeArgs, args: RollbackArgs) -> Result<()> {
    let project = ProjectId::parse(&args.project)?;
    let cfg = args.config.resolve();
    let cluster = kube.connect().await?;
    let (client, ns) = (&cluster.client, cluster.namespace.as_str());
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let dep = deployments
        .get_opt(&project.deployment_name())
        .await
        .with_context(|| format!("reading Deployment {ns}/{project}"))?
        .with_context(|| {
            format!("project {project} has no Deployment in namespace {ns}; nothing to roll back")
        })?;
    let current = deployment_instance(&dep);
    let all = cms
        .list(&ListParams::default().labels(&instance_selector(Some(&project))))
        .await
        .with_context(|| format!("listing the instance ConfigMaps of {project}"))?
        .items;
    let rss = Api::<ReplicaSet>::namespaced(client.clone(), ns)
        .list(&ListParams::default().labels(&format!("{LABEL_APP}={project}")))
        .await
        .with_context(|| format!("listing the ReplicaSets of {project}"))?
        .items;
    let history = instance_history(&dep, &rss);
    // Identical files in two projects share one `instance-<h>`, labelled with the project that
    // made it first: the project's own history counts as its instances too.
    let mut all = all;
    for name in &history {
        if !all.iter().any(|c| c.metadata.name.as_ref() == Some(name))
            && let Some(cm) = cms
                .get_opt(name)
                .await
                .with_context(|| format!("reading ConfigMap {ns}/{name}"))?
        {
            all.push(cm);
        }
    }
    let target_name = rollback_target(
        &instances_of(&all),
        &history,
        current.as_deref(),
        args.to.as_deref(),
    )
    .map_err(|e| anyhow::anyhow!("cannot roll back {ns}/{project}: {e}"))?;
    let target = all
        .iter()
        .find(|c| c.metadata.name.as_deref() == Some(target_name.as_str()))
        .context("the chosen instance ConfigMap vanished")?;
    let hash = target
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(ANNOTATION_CONTENT_SHA256))
        .and_then(|h| ContentHash::parse_full(h))
        .with_context(|| {
            format!(
                "ConfigMap {ns}/{target_name} lacks a valid {ANNOTATION_CONTENT_SHA256} \
                 annotation; it was not written by jockey, so it cannot be rolled back to"
            )
        })?;
    // The image that instance was built into; no rebuild.
    let image = match build::recorded_image_of(target, &project) {
        Some(i) => i,
        None => bail!(
            "instance {target_name} has no built image recorded (its build never finished); \
             deploy its files again instead"
        ),
    };
    let mut rendered = defaults::render_deployment(&project, &hash);
    if let Some(pod) = rendered.spec.template.spec.as_mut() {
        for c in &mut pod.containers {
            c.image = Some(image.clone());
        }
    }
    let mut deployment = defaults::default_deployment(&rendered, &cfg)?;
    deployment.metadata.namespace = Some(ns.to_string());
    deployments
        .patch(
            &project.deployment_name(),
            &apply_params(false),
            &Patch::Apply(&deployment),
        )
        .await
        .with_context(|| format!("re-pointing Deployment {ns}/{project} at {target_name}"))?;
    eprintln!(
        "deployment.apps/{project} rolled back: {} -> {target_name} (image {image})",
        current.as_deref().unwrap_or("(none)")
    );
    if args.no_wait {
        return Ok(());
    }
    let deadline = Instant::now() + args.timeout;
    crate::rollout::wait(client, ns, &project, deadline, args.timeout).await?;
    println!("deployment {ns}/{project} is available ({target_name})");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// delete
// ---------------------------------------------------------------------------------------------

pub async fn delete(kube: &KubeArgs, args: DeleteArgs) -> Result<()> {
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

// ---------------------------------------------------------------------------------------------
// gc
// ---------------------------------------------------------------------------------------------

/// Instance ConfigMaps referenced by a pod template: the instance annotation (Deployments and
/// the ReplicaSets that copy it) and ConfigMap volumes.
fn template_refs(
    ns: &str,
    annotations: Option<&BTreeMap<String, String>>,
    template: Option<&PodTemplateSpec>,
    out: &mut BTreeSet<(String, String)>,
) {
    if let Some(name) = annotations.and_then(|a| a.get(ANNOTATION_INSTANCE)) {
        out.insert((ns.to_string(), name.clone()));
    }
    let volumes = template
        .and_then(|t| t.spec.as_ref())
        .and_then(|s| s.volumes.as_ref());
    for v in volumes.into_iter().flatten() {
        if let Some(cm) = &v.config_map {
            out.insert((ns.to_string(), cm.name.clone()));
        }
    }
}

/// Every (namespace, ConfigMap) a Deployment or a retained ReplicaSet still references. Pure.
pub fn referenced(deps: &[Deployment], rss: &[ReplicaSet]) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for d in deps {
        let ns = d.metadata.namespace.clone().unwrap_or_default();
        template_refs(
            &ns,
            d.metadata.annotations.as_ref(),
            Some(&d.spec.template),
            &mut out,
        );
    }
    for rs in rss {
        let ns = rs.metadata.namespace.clone().unwrap_or_default();
        template_refs(
            &ns,
            rs.metadata.annotations.as_ref(),
            rs.spec.template.as_ref(),
            &mut out,
        );
    }
    out
}

/// The instance ConfigMaps `gc` removes: per project, everything that is neither referenced nor
/// among the newest `keep`. Pure.
pub fn collectable(
    instances: &[Instance],
    referenced: &BTreeSet<(String, String)>,
    keep: usize,
) -> Vec<Instance> {
    let mut by_project: BTreeMap<(String, String), Vec<&Instance>> = BTreeMap::new();
    for i in instances {
        by_project
            .entry((i.namespace.clone(), i.project.clone()))
            .or_default()
            .push(i);
    }
    let mut out = Vec::new();
    for (_, mut list) in by_project {
        list.sort_by(|a, b| (&b.created, b.rv).cmp(&(&a.created, a.rv)));
        for i in list.into_iter().skip(keep) {
            if !referenced.contains(&(i.namespace.clone(), i.name.clone())) {
                out.push(i.clone());
            }
        }
    }
    out
}

pub async fn gc(kube: &KubeArgs, args: GcArgs) -> Result<()> {
    let cluster = kube.connect().await?;
    let client: &Client = &cluster.client;
    let ns = cluster.namespace.as_str();
    let (cms, deps, rss): (Api<ConfigMap>, Api<Deployment>, Api<ReplicaSet>) =
        if args.all_namespaces {
            (
                Api::all(client.clone()),
                Api::all(client.clone()),
                Api::all(client.clone()),
            )
        } else {
            (
                Api::namespaced(client.clone(), ns),
                Api::namespaced(client.clone(), ns),
                Api::namespaced(client.clone(), ns),
            )
        };
    let instances = instances_of(
        &cms.list(&ListParams::default().labels(&instance_selector(None)))
            .await
            .context("listing instance ConfigMaps")?
            .items,
    );
    let deps = deps
        .list(&ListParams::default())
        .await
        .context("listing Deployments")?
        .items;
    let rss = rss
        .list(&ListParams::default())
        .await
        .context("listing ReplicaSets")?
        .items;
    let refs = referenced(&deps, &rss);
    let garbage = collectable(&instances, &refs, args.keep);
    for i in &garbage {
        if args.dry_run {
            println!(
                "configmap/{} would be deleted (namespace {}, project {}; unreferenced, older than the newest {})",
                i.name, i.namespace, i.project, args.keep
            );
        } else {
            match Api::<ConfigMap>::namespaced(client.clone(), &i.namespace)
                .delete(&i.name, &DeleteParams::default())
                .await
            {
                Ok(_) => println!(
                    "configmap/{} deleted (namespace {}, project {})",
                    i.name, i.namespace, i.project
                ),
                Err(e) if is_not_found(&e) => {}
                Err(e) => {
                    return Err(e)
                        .with_context(|| format!("deleting ConfigMap {}/{}", i.namespace, i.name));
                }
            }
        }
    }
    eprintln!(
        "gc: {} of {} instance ConfigMap(s) {}; {} kept (referenced or among the newest {} per project)",
        garbage.len(),
        instances.len(),
        if args.dry_run {
            "would be deleted"
        } else {
            "deleted"
        },
        instances.len() - garbage.len(),
        args.keep
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn inst(name: &str, project: &str, created: &str) -> Instance {
        Instance {
            namespace: "ns".into(),
            name: format!("instance-{name}"),
            project: project.into(),
            created: created.into(),
            rv: 0,
        }
    }

    const A: &str = "aaaaaaaaaaaaaaaa";
    const B: &str = "bbbbbbbbbbbbbbbb";
    const C: &str = "cccccccccccccccc";

    #[test]
    fn rollback_goes_to_the_previous_instance_by_default() {
        let list = vec![inst(A, "p", "1"), inst(B, "p", "2"), inst(C, "p", "3")];
        let cur = format!("instance-{C}");
        assert_eq!(
            rollback_target(&list, &[], Some(&cur), None),
            Ok(format!("instance-{B}"))
        );
        let cur = format!("instance-{B}");
        assert_eq!(
            rollback_target(&list, &[], Some(&cur), None),
            Ok(format!("instance-{A}"))
        );
        let cur = format!("instance-{A}");
        assert!(
            rollback_target(&list, &[], Some(&cur), None)
                .unwrap_err()
                .contains("no earlier")
        );
    }

    #[test]
    fn rollback_prefers_the_deployment_history_over_creation_order() {
        // C was created last but B was deployed before the current A (a rollback happened).
        let list = vec![inst(A, "p", "1"), inst(B, "p", "2"), inst(C, "p", "3")];
        let history = vec![
            format!("instance-{A}"),
            format!("instance-{B}"),
            format!("instance-{C}"),
        ];
        let cur = format!("instance-{A}");
        assert_eq!(
            rollback_target(&list, &history, Some(&cur), None),
            Ok(format!("instance-{B}"))
        );
    }

    #[test]
    fn rollback_to_accepts_hash_prefix_and_name() {
        let list = vec![inst(A, "p", "1"), inst(B, "p", "2")];
        assert_eq!(
            rollback_target(&list, &[], None, Some("aaaa")),
            Ok(format!("instance-{A}"))
        );
        assert_eq!(
            rollback_target(&list, &[], None, Some(&format!("instance-{B}"))),
            Ok(format!("instance-{B}"))
        );
        let err = rollback_target(&list, &[], None, Some("ffff")).unwrap_err();
        assert!(
            err.contains("no instance ConfigMap matches") && err.contains(A),
            "{err}"
        );
        let ab = vec![
            inst("abcd000000000000", "p", "1"),
            inst("abcd111111111111", "p", "2"),
        ];
        assert!(
            rollback_target(&ab, &[], None, Some("abcd"))
                .unwrap_err()
                .contains("give more digits")
        );
    }

    #[test]
    fn gc_keeps_the_newest_and_everything_referenced() {
        let list = vec![
            inst(A, "p", "1"),
            inst(B, "p", "2"),
            inst(C, "p", "3"),
            inst(A, "q", "1"),
        ];
        let none = BTreeSet::new();
        let g = collectable(&list, &none, 1);
        let names: Vec<_> = g
            .iter()
            .map(|i| (i.project.as_str(), i.name.as_str()))
            .collect();
        assert_eq!(
            names,
            vec![
                ("p", format!("instance-{B}").as_str()),
                ("p", format!("instance-{A}").as_str())
            ]
        );
        let refs = BTreeSet::from([("ns".to_string(), format!("instance-{A}"))]);
        let g = collectable(&list, &refs, 1);
        assert_eq!(g.len(), 1);
        assert_eq!(g[0].name, format!("instance-{B}"));
        assert!(collectable(&list, &none, 3).is_empty());
    }

    #[test]
    fn references_come_from_annotations_and_volumes_of_deployments_and_replicasets() {
        let dep: Deployment = serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "ns",
                "annotations": {ANNOTATION_INSTANCE: format!("instance-{C}")}},
            "spec": {"selector": {}, "template": {}}
        }))
        .unwrap();
        let rs: ReplicaSet = serde_json::from_value(json!({
            "metadata": {"name": "p-1", "namespace": "ns"},
            "spec": {"selector": {}, "template": {"spec": {"containers": [],
                "volumes": [{"name": "jockey-instance", "configMap": {"name": format!("instance-{A}")}}]}}}
        }))
        .unwrap();
        let refs = referenced(&[dep], &[rs]);
        assert!(refs.contains(&("ns".into(), format!("instance-{C}"))));
        assert!(refs.contains(&("ns".into(), format!("instance-{A}"))));
    }

    #[test]
    fn summary_reports_instance_hash_image_and_url() {
        let dep: Deployment = serde_json::from_value(json!({
            "metadata": {"name": "demo", "namespace": "ns",
                "labels": {LABEL_PROJECT: "demo"},
                "annotations": {ANNOTATION_INSTANCE: format!("instance-{A}")}},
            "spec": {"replicas": 1, "selector": {}, "template": {"spec": {"containers": [
                {"name": "server", "image": format!("r/hosting/demo:{A}")}]}}},
            "status": {"readyReplicas": 1, "conditions": [{"type": "Available", "status": "True"}]}
        }))
        .unwrap();
        let s = summarize(&dep, None, "deploy.example");
        assert_eq!(s.ready, "1/1");
        assert!(s.available);
        assert_eq!(s.content_hash.as_deref(), Some(A));
        assert_eq!(s.url, "https://demo.deploy.example");
        assert_eq!(
            s.image.as_deref(),
            Some(format!("r/hosting/demo:{A}").as_str())
        );
    }
}
