//! Refuses to take over same-named objects that are not this project's.

use anyhow::{Context, Result, bail};
use jockey_core::ProjectId;
use jockey_core::names::LABEL_PROJECT;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::{Api, Client};

/// Refuses, before anything is written, to take over a Deployment, Service or Ingress of the
/// project's names that jockey did not make for this project (no project label, or another's):
/// applying over it would silently replace someone else's workload.
pub async fn refuse_foreign_objects(client: &Client, ns: &str, project: &ProjectId) -> Result<()> {
    fn owner(meta: &ObjectMeta) -> Option<&str> {
        meta.labels.as_ref()?.get(LABEL_PROJECT).map(String::as_str)
    }
    let check = |kind: &str, name: String, meta: Option<ObjectMeta>| -> Result<()> {
        match meta {
            Some(m) if owner(&m) != Some(project.as_str()) => bail!(
                "{kind} {ns}/{name} exists but is not project {project}'s (label {LABEL_PROJECT} \
                 is {:?}); delete it, or deploy under another project id",
                owner(&m)
            ),
            _ => Ok(()),
        }
    };
    let dep = Api::<Deployment>::namespaced(client.clone(), ns)
        .get_opt(&project.deployment_name())
        .await
        .with_context(|| format!("reading Deployment {ns}/{project}"))?;
    check(
        "Deployment",
        project.deployment_name(),
        dep.map(|o| o.metadata),
    )?;
    let svc = Api::<Service>::namespaced(client.clone(), ns)
        .get_opt(&project.service_name())
        .await
        .with_context(|| format!("reading Service {ns}/{}", project.service_name()))?;
    check("Service", project.service_name(), svc.map(|o| o.metadata))?;
    let ing = Api::<Ingress>::namespaced(client.clone(), ns)
        .get_opt(&project.ingress_name())
        .await
        .with_context(|| format!("reading Ingress {ns}/{}", project.ingress_name()))?;
    check("Ingress", project.ingress_name(), ing.map(|o| o.metadata))
}
