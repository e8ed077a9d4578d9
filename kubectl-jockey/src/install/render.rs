//! The objects an install applies, rendered from the embedded manifests and the options: pure
//! (no cluster, no clock, no randomness). Kept apart from `install`'s I/O so that what it
//! applies, and what `check --pre` and `tenant grant` derive from it, is decided and tested in
//! one place without a cluster. The certificate Secrets depend on what the cluster already
//! holds, so they are decided in [`super::certs`].

use super::{DEFAULT_NAME, DEFAULT_NAMESPACE, FailurePolicy, MANAGED_BY, MANAGED_BY_VALUE};
use anyhow::{Context, Result, bail};
use jockey_core::Config;
use jockey_core::registration::{Endpoint, Registration};
use kube::api::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

const ANNOTATION_CONFIG_SHA256: &str = "jockey.agentops.ai/config-sha256";
/// The API server's wait for a webhook answer (see manifests/README.md); `check` compares the
/// installed value with it.
pub(crate) const WEBHOOK_TIMEOUT_SECONDS: i32 = 5;
/// The version label of the Deployments install writes: `check` compares it with the plugin's.
pub(crate) const LABEL_VERSION: &str = "app.kubernetes.io/version";

/// The base manifests, as `kubectl apply -k manifests/` would read them (minus kustomize's
/// generators, which [`render`] does itself).
/// The base's webhook configurations and admission policy are rendered by
/// [`jockey_core::registration`] instead (a test keeps `manifests/base/webhooks.yaml` equal to it).
const BASE: [(&str, &str); 6] = [
    (
        "namespace.yaml",
        include_str!("../../../manifests/base/namespace.yaml"),
    ),
    (
        "rbac.yaml",
        include_str!("../../../manifests/base/rbac.yaml"),
    ),
    (
        "service.yaml",
        include_str!("../../../manifests/base/service.yaml"),
    ),
    // Before the Deployment: the pods never run unprotected.
    (
        "networkpolicy.yaml",
        include_str!("../../../manifests/base/networkpolicy.yaml"),
    ),
    ("pdb.yaml", include_str!("../../../manifests/base/pdb.yaml")),
    (
        "deployment.yaml",
        include_str!("../../../manifests/base/deployment.yaml"),
    ),
];
/// jockey's BuildRequest API: cluster-scoped, installed first (the broker lists requests at start).
const BUILD_REQUEST_CRD: &str = include_str!("../../../manifests/base/buildrequest-crd.yaml");
/// The build broker: its identity (cluster-wide, in the builder namespace, on the claims) and its
/// Deployment; `manifests/broker` as kustomize reads it, minus the config generator.
const BROKER: [(&str, &str); 2] = [
    (
        "broker/rbac.yaml",
        include_str!("../../../manifests/broker/rbac.yaml"),
    ),
    (
        "broker/deployment.yaml",
        include_str!("../../../manifests/broker/deployment.yaml"),
    ),
];
/// The broker's Deployment, ServiceAccount and RBAC.
pub const BROKER_NAME: &str = "jockey-broker";
#[cfg(test)]
const BASE_WEBHOOKS: &str = include_str!("../../../manifests/base/webhooks.yaml");
pub(super) const BASE_POLICY: &str = include_str!("../../../manifests/base/policy.yaml");

/// Everything that shapes the rendered objects.
#[derive(Debug, Clone)]
pub struct Options {
    pub name: String,
    pub namespace: String,
    pub image: String,
    pub config: Config,
    pub policy_yaml: String,
    pub namespace_selector: BTreeMap<String, String>,
    pub failure_policy: FailurePolicy,
    /// The API server's webhook client CA (PEM), and the names its certificate may carry.
    pub client_ca_pem: Option<String>,
    pub client_names: Vec<String>,
    /// The NetworkPolicy's sources; empty: any.
    pub api_server_cidrs: Vec<String>,
}

/// Where the webhook's pods read the client CA.
const CLIENT_CA_DIR: &str = "/etc/jockey-webhook/client-ca";

/// `10.0.0.0/16`, `fd00::/8`: an address and a prefix length that fits it.
pub(super) fn parse_cidr(cidr: &str) -> Result<String> {
    let bad = || {
        anyhow::anyhow!(
            "--api-server-cidr {cidr:?} is not an address range; write e.g. 10.0.0.0/16 (the control plane's or, on EKS, the cluster's subnets)"
        )
    };
    let (addr, len) = cidr.split_once('/').ok_or_else(bad)?;
    let addr: std::net::IpAddr = addr.parse().map_err(|_| bad())?;
    let len: u8 = len.parse().map_err(|_| bad())?;
    if len > if addr.is_ipv4() { 32 } else { 128 } {
        return Err(bad());
    }
    Ok(format!("{addr}/{len}"))
}

fn parse_multi_yaml(file: &str, text: &str) -> Result<Vec<Value>> {
    use serde::Deserialize;
    let mut out = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(text) {
        let v = Value::deserialize(doc).with_context(|| format!("parsing embedded {file}"))?;
        if !v.is_null() {
            out.push(v);
        }
    }
    Ok(out)
}

fn sha256_hex(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    hex::encode(h.finalize())
}

/// The webhook's environment, as `manifests/base/config.env` carries it.
fn config_data(cfg: &Config) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("DEPLOYMENT_DOMAIN".into(), cfg.deployment_domain.clone()),
        (
            "ALB_SHARED_GROUP_NAME".into(),
            cfg.alb_shared_group_name.clone(),
        ),
        (
            "ALB_ALLOWED_GROUPS".into(),
            cfg.alb_allowed_groups.join(","),
        ),
        (
            "IMAGE_REPOSITORY_PREFIX".into(),
            cfg.image_repository_prefix.clone(),
        ),
        (
            "IMAGE_REGISTRY".into(),
            cfg.image_registry.clone().unwrap_or_default(),
        ),
        (
            "ALB_CERTIFICATE_ARN".into(),
            cfg.certificate_arn.clone().unwrap_or_default(),
        ),
    ])
}

/// The objects of an install, in apply order, with the given caBundle (base64 PEM). Pure.
pub fn render(o: &Options, ca_bundle_b64: &str) -> Result<Vec<Value>> {
    let mut objects = Vec::new();
    for (file, text) in BASE {
        // The base names everything jockey-webhook in jockey-system; a different name or
        // namespace is a consistent rename (references, selectors, mount paths alike).
        let text = text
            .replace(DEFAULT_NAMESPACE, &o.namespace)
            .replace(DEFAULT_NAME, &o.name);
        objects.extend(parse_multi_yaml(file, &text)?);
    }
    let config = config_data(&o.config);
    let config_hash = sha256_hex(&[
        &serde_json::to_string(&config).unwrap_or_default(),
        &o.policy_yaml,
    ]);
    objects.insert(
        1,
        json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": { "name": format!("{}-config", o.name), "namespace": o.namespace },
            "data": config
        }),
    );
    objects.insert(
        2,
        json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": { "name": format!("{}-policy", o.name), "namespace": o.namespace },
            "data": { "policy.yaml": o.policy_yaml }
        }),
    );
    if let Some(pem) = &o.client_ca_pem {
        objects.insert(
            3,
            json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": { "name": format!("{}-client-ca", o.name), "namespace": o.namespace },
                "data": { "ca.crt": pem }
            }),
        );
    }
    // The tenant role, after the webhook's own RBAC (manifests/base/tenant-role.yaml is the
    // same rendering).
    let after_rbac = objects
        .iter()
        .rposition(|o| o["kind"] == "RoleBinding")
        .map_or(objects.len(), |i| i + 1);
    objects.insert(after_rbac, tenant_cluster_role()?);
    objects.extend(
        registration(o, ca_bundle_b64)
            .objects()
            .map_err(anyhow::Error::msg)?,
    );
    objects.insert(0, serde_yaml::from_str(BUILD_REQUEST_CRD)?);
    for obj in objects.iter_mut() {
        let kind = obj["kind"].as_str().unwrap_or_default().to_string();
        // What kustomize's `namespace:` does for the base.
        if api_resource(obj).is_ok_and(|(_, namespaced)| namespaced) {
            obj["metadata"]["namespace"] = json!(o.namespace);
        }
        label(obj, &o.name);
        if kind == "Role" {
            // The webhook renews its serving certificate itself: read the CA, rewrite the
            // serving Secret, these two by name only.
            if let Some(Value::Array(rules)) = obj.pointer_mut("/rules") {
                rules.push(json!({
                    "apiGroups": [""], "resources": ["secrets"],
                    "resourceNames": [format!("{}-ca", o.name)], "verbs": ["get"]
                }));
                rules.push(json!({
                    "apiGroups": [""], "resources": ["secrets"],
                    "resourceNames": [format!("{}-tls", o.name)], "verbs": ["get", "update"]
                }));
            }
        }
        if kind == "NetworkPolicy" && !o.api_server_cidrs.is_empty() {
            let from: Vec<Value> = o
                .api_server_cidrs
                .iter()
                .map(|c| json!({ "ipBlock": { "cidr": c } }))
                .collect();
            if let Some(rule) = obj.pointer_mut("/spec/ingress/0") {
                rule["from"] = json!(from);
            }
        }
        if kind == "Deployment" {
            if let Some(labels) = obj.pointer_mut("/metadata/labels") {
                labels[LABEL_VERSION] = json!(env!("CARGO_PKG_VERSION"));
            }
            if let Some(c) = obj.pointer_mut("/spec/template/spec/containers/0") {
                c["image"] = json!(o.image);
                // Renewed a third of the lifetime before expiry, at most 30 days: 30 days for
                // the 365-day certificates install issues, the same as its --renew-before-days.
                if let Some(Value::Array(args)) = c.get_mut("args") {
                    args.push(json!(format!("--renew-ca-secret={}-ca", o.name)));
                    args.push(json!(format!("--renew-tls-secret={}-tls", o.name)));
                    if o.client_ca_pem.is_some() {
                        args.push(json!(format!("--client-ca-file={CLIENT_CA_DIR}/ca.crt")));
                        for n in &o.client_names {
                            args.push(json!(format!("--client-name={n}")));
                        }
                    }
                }
                // A ConfigMap volume (not subPath) follows the ConfigMap: a new CA reaches the
                // running pods, which reload it.
                if o.client_ca_pem.is_some()
                    && let Some(Value::Array(mounts)) = c.get_mut("volumeMounts")
                {
                    mounts.push(json!({
                        "name": "client-ca", "mountPath": CLIENT_CA_DIR, "readOnly": true
                    }));
                }
            }
            if o.client_ca_pem.is_some()
                && let Some(Value::Array(volumes)) = obj.pointer_mut("/spec/template/spec/volumes")
            {
                volumes.push(json!({
                    "name": "client-ca",
                    "configMap": { "name": format!("{}-client-ca", o.name) }
                }));
            }
            // Config and policy are read at start: a change rolls the pods.
            if let Some(meta) = obj.pointer_mut("/spec/template/metadata") {
                meta["annotations"] = json!({ ANNOTATION_CONFIG_SHA256: config_hash });
            }
        }
    }
    objects.extend(broker_objects(o)?);
    Ok(objects)
}

/// The build broker: the builder namespace and its service account (what `setup-builder`
/// applies), the broker's identity and its Deployment (the webhook's image, `broker`), with its
/// settings in a ConfigMap of its own. Pure.
fn broker_objects(o: &Options) -> Result<Vec<Value>> {
    let builder = &o.config.builder_namespace;
    let (ns, sa) = crate::build::setup_builder::builder_objects(builder);
    let mut objects = vec![serde_json::to_value(ns)?, serde_json::to_value(sa)?];
    let settings = BTreeMap::from([
        ("BUILDER_NAMESPACE", builder.clone()),
        (
            "IMAGE_REGISTRY",
            o.config.image_registry.clone().unwrap_or_default(),
        ),
        (
            "IMAGE_REPOSITORY_PREFIX",
            o.config.image_repository_prefix.clone(),
        ),
        (
            "BUILDER_ROLE_ARN",
            o.config.builder_role_arn.clone().unwrap_or_default(),
        ),
        ("KANIKO_IMAGE", o.config.kaniko_image.clone()),
        ("BASE_IMAGE", o.config.base_image.clone()),
    ]);
    let settings_hash = sha256_hex(&[&serde_json::to_string(&settings).unwrap_or_default()]);
    objects.push(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": { "name": format!("{BROKER_NAME}-config"), "namespace": o.namespace },
        "data": settings
    }));
    for (file, text) in BROKER {
        let text = text
            .replace(
                "namespace: jockey-system",
                &format!("namespace: {}", o.namespace),
            )
            .replace("namespace: builder", &format!("namespace: {builder}"));
        objects.extend(parse_multi_yaml(file, &text)?);
    }
    for obj in objects.iter_mut() {
        if let Some(Value::Object(labels)) = obj
            .pointer_mut("/metadata")
            .and_then(|m| m.as_object_mut())
            .map(|m| m.entry("labels").or_insert_with(|| json!({})))
        {
            labels.insert(MANAGED_BY.into(), json!(MANAGED_BY_VALUE));
            labels.insert("app.kubernetes.io/part-of".into(), json!("jockey"));
        }
        if obj["kind"] == "Deployment" {
            if let Some(labels) = obj.pointer_mut("/metadata/labels") {
                labels[LABEL_VERSION] = json!(env!("CARGO_PKG_VERSION"));
            }
            if let Some(c) = obj.pointer_mut("/spec/template/spec/containers/0") {
                c["image"] = json!(o.image);
            }
            // Settings are read at start: a change rolls the broker.
            if let Some(meta) = obj.pointer_mut("/spec/template/metadata") {
                meta["annotations"] = json!({ ANNOTATION_CONFIG_SHA256: settings_hash });
            }
        }
    }
    Ok(objects)
}

/// What kustomize's `labels:` and install add to every object: made by install (so uninstall
/// removes it), part of jockey, named after the install.
fn label(obj: &mut Value, name: &str) {
    let labels = obj
        .pointer_mut("/metadata")
        .and_then(|m| m.as_object_mut())
        .map(|m| m.entry("labels").or_insert_with(|| json!({})));
    if let Some(Value::Object(labels)) = labels {
        labels.insert(MANAGED_BY.into(), json!(MANAGED_BY_VALUE));
        labels.insert("app.kubernetes.io/part-of".into(), json!("jockey"));
        labels
            .entry("app.kubernetes.io/name")
            .or_insert_with(|| json!(name));
    }
}

/// The `jockey-tenant` ClusterRole as install applies it (labelled like the default install),
/// for `tenant grant` to write when it is missing or older than this plugin.
pub fn tenant_cluster_role() -> Result<Value> {
    let mut obj = serde_json::to_value(jockey_core::tenant::tenant_cluster_role())?;
    obj["apiVersion"] = json!("rbac.authorization.k8s.io/v1");
    obj["kind"] = json!("ClusterRole");
    // One object for every install, whatever its --name: its labels do not follow the name, so
    // that installs and grants apply the same.
    label(&mut obj, jockey_core::tenant::TENANT_ROLE);
    Ok(obj)
}

/// The webhooks (reached through the Service, trusting `ca_bundle_b64`) and the admission policy
/// that keeps unlabelled Ingresses out of the shared groups.
fn registration(o: &Options, ca_bundle_b64: &str) -> Registration {
    let namespace_selector = if o.namespace_selector.is_empty() {
        json!({ "matchExpressions": [{
            "key": "kubernetes.io/metadata.name", "operator": "NotIn",
            "values": ["kube-system", o.namespace]
        }] })
    } else {
        json!({ "matchLabels": o.namespace_selector })
    };
    Registration {
        name: o.name.clone(),
        endpoint: Endpoint::Service {
            namespace: o.namespace.clone(),
            name: o.name.clone(),
            port: 443,
        },
        ca_bundle: ca_bundle_b64.to_string(),
        namespace_selector,
        failure_policy: match o.failure_policy {
            FailurePolicy::Fail => "Fail",
            FailurePolicy::Ignore => "Ignore",
        }
        .to_string(),
        timeout_seconds: WEBHOOK_TIMEOUT_SECONDS,
        shared_group: o.config.alb_shared_group_name.clone(),
        other_groups: o.config.alb_allowed_groups.clone(),
        policy_scope: None,
        deployment_domain: o.config.deployment_domain.clone(),
        // The policy reads the webhook's own configuration ConfigMap (rendered above).
        params: (o.namespace.clone(), format!("{}-config", o.name)),
        render_params: false,
    }
}

/// What an install of `name` in `namespace` writes, as (API group, resource, namespace) with
/// `None` for cluster-scoped ones: what `check --pre` asks the API server whether its user may
/// create and patch. Rendered, so that it follows what install applies.
pub(crate) fn applied_resources(
    name: &str,
    namespace: &str,
) -> Result<std::collections::BTreeSet<(String, String, Option<String>)>> {
    let o = Options {
        name: name.to_string(),
        namespace: namespace.to_string(),
        image: String::new(),
        config: Config::default(),
        policy_yaml: BASE_POLICY.to_string(),
        namespace_selector: BTreeMap::new(),
        failure_policy: FailurePolicy::Fail,
        client_ca_pem: None,
        client_names: Vec::new(),
        api_server_cidrs: Vec::new(),
    };
    let mut out = std::collections::BTreeSet::new();
    // The two certificate Secrets are applied beside the rendered objects.
    out.insert((
        String::new(),
        "secrets".to_string(),
        Some(namespace.to_string()),
    ));
    for obj in render(&o, "")? {
        let (ar, namespaced) = api_resource(&obj)?;
        let ns = namespaced
            .then(|| obj["metadata"]["namespace"].as_str().map(str::to_string))
            .flatten();
        out.insert((ar.group, ar.plural, ns));
    }
    Ok(out)
}

/// Kind -> (group, version, plural, namespaced) for the kinds an install contains.
pub(super) fn api_resource(obj: &Value) -> Result<(ApiResource, bool)> {
    let api_version = obj["apiVersion"].as_str().unwrap_or_default();
    let kind = obj["kind"].as_str().unwrap_or_default();
    let (group, version) = match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    };
    let (plural, namespaced) = match kind {
        "Namespace" => ("namespaces", false),
        "ServiceAccount" => ("serviceaccounts", true),
        "ClusterRole" => ("clusterroles", false),
        "ClusterRoleBinding" => ("clusterrolebindings", false),
        "Role" => ("roles", true),
        "RoleBinding" => ("rolebindings", true),
        "ValidatingAdmissionPolicy" => ("validatingadmissionpolicies", false),
        "ValidatingAdmissionPolicyBinding" => ("validatingadmissionpolicybindings", false),
        "ConfigMap" => ("configmaps", true),
        "Secret" => ("secrets", true),
        "Service" => ("services", true),
        "Deployment" => ("deployments", true),
        "PodDisruptionBudget" => ("poddisruptionbudgets", true),
        "NetworkPolicy" => ("networkpolicies", true),
        "MutatingWebhookConfiguration" => ("mutatingwebhookconfigurations", false),
        "ValidatingWebhookConfiguration" => ("validatingwebhookconfigurations", false),
        "CustomResourceDefinition" => ("customresourcedefinitions", false),
        other => bail!("install does not know kind {other}; this is a bug in kubectl-jockey"),
    };
    let gvk = GroupVersionKind::gvk(group, version, kind);
    Ok((ApiResource::from_gvk_with_plural(&gvk, plural), namespaced))
}

#[cfg(test)]
#[path = "render_tests.rs"]
mod tests;
