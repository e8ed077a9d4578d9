//! `kubectl jockey status PROJECT`: the Deployment, pods, image, content hash, URL and recent
//! events of one project. [`summarize`] (shared with `list`) is pure.

use super::instances::deployment_instance;
use crate::cluster::KubeArgs;
use crate::output::{OutputFormat, print_structured, table};
use crate::settings::ConfigArgs;
use anyhow::{Context, Result};
use jockey_core::names::{LABEL_APP, LABEL_PROJECT, short_hash_of_configmap};
use jockey_core::{ProjectId, defaults};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Event, Pod};
use k8s_openapi::api::networking::v1::Ingress;
use kube::Api;
use kube::api::ListParams;
use serde::Serialize;
use std::collections::BTreeSet;

#[derive(clap::Args, Debug, Clone)]
pub struct StatusArgs {
    pub project: String,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    #[command(flatten)]
    pub config: ConfigArgs,
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
        ingress_address: ingress.and_then(crate::alb::watch::address_of),
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

pub async fn run(kube: &KubeArgs, args: StatusArgs) -> Result<()> {
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
    // An instance and an image are two things: the built-in template's image holds the
    // dependencies only, and the instance's files are unpacked from its ConfigMap at pod start.
    let what = match st.image.as_deref() {
        Some(i) if jockey_core::image::is_dependency_image(i) => {
            " (dependencies; the code comes from the instance at pod start)"
        }
        Some(_) => " (the whole instance, built from its Dockerfile)",
        None => "",
    };
    println!(
        "Image:           {}{what}",
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

#[cfg(test)]
mod tests {
    use super::*;
    use jockey_core::names::ANNOTATION_INSTANCE;
    use serde_json::json;

    const A: &str = "aaaaaaaaaaaaaaaa";

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
