//! Kubernetes adapter of the ALB commands: reads what [`super::report`] works on. Lists are
//! whole (no watch): these commands show one consistent moment.

use anyhow::{Context, Result};
use k8s_openapi::api::core::v1::{Event, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::ListParams;
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use std::fmt::Debug;

/// The label the AWS Load Balancer Controller's Helm chart and manifests put on its pods.
pub const DEFAULT_CONTROLLER_SELECTOR: &str = "app.kubernetes.io/name=aws-load-balancer-controller";

fn where_(ns: Option<&str>) -> String {
    ns.map_or_else(
        || "all namespaces".to_string(),
        |n| format!("namespace {n}"),
    )
}

async fn list<K>(
    client: &Client,
    ns: Option<&str>,
    params: &ListParams,
    what: &str,
) -> Result<Vec<K>>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope> + Clone + DeserializeOwned + Debug,
    K::DynamicType: Default,
{
    let api: Api<K> = match ns {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let list = api.list(params).await.with_context(|| {
        format!(
            "listing {what} in {}; this needs `list` permission on {what} there (ask the \
             cluster admin, or check --context/--kubeconfig point at the right cluster)",
            where_(ns)
        )
    })?;
    Ok(list.items)
}

pub async fn ingresses(client: &Client, ns: Option<&str>) -> Result<Vec<Ingress>> {
    list(client, ns, &ListParams::default(), "ingresses").await
}

/// Events about Ingresses (where the AWS Load Balancer Controller reports its failures).
pub async fn ingress_events(client: &Client, ns: Option<&str>) -> Result<Vec<Event>> {
    let params = ListParams::default().fields("involvedObject.kind=Ingress");
    list(client, ns, &params, "events").await
}

pub async fn services(client: &Client, ns: &str) -> Result<Vec<Service>> {
    list(client, Some(ns), &ListParams::default(), "services").await
}

pub async fn endpoint_slices(client: &Client, ns: &str) -> Result<Vec<EndpointSlice>> {
    list(client, Some(ns), &ListParams::default(), "endpointslices").await
}

pub async fn controller_pods(client: &Client, selector: &str) -> Result<Vec<Pod>> {
    let params = ListParams::default().labels(selector);
    list(client, None, &params, "pods").await
}
