//! `install` / `uninstall`: the webhook of `manifests/base` and its certificates, without
//! cert-manager.
//!
//! `install` renders the base manifests (embedded in the binary, so the plugin installs the
//! version it was built with), creates a private CA and a serving certificate (rcgen), stores them
//! in Secrets, sets the caBundle of both webhook configurations and server-side applies it all.
//! Run again, it is idempotent: it renews the serving certificate when it is within
//! `--renew-before-days` of expiry (and the CA within a year of its own), always publishing the
//! new CA in the caBundle *before* the webhook starts serving a certificate it signed, and keeping
//! the previous CA there until it expires, so no API server call fails during a rotation. The
//! webhook reloads the mounted Secret by itself, and renews the serving certificate in it from the
//! CA Secret before it expires (`--renew-ca-secret`, `--renew-tls-secret`), so that a forgotten
//! `install` is no outage; its Role may read the CA Secret and update the serving Secret, by
//! name, and nothing else of Secrets.
//!
//! It also installs the `jockey-tenant` ClusterRole ([`jockey_core::tenant`]): what a tenant's
//! commands need in its own namespace, granted per namespace by `kubectl jockey tenant grant`
//! (a RoleBinding). One object for every tenant, kept current by running `install` again.
//!
//! `uninstall` deletes every object `install` made (they carry
//! `app.kubernetes.io/managed-by: kubectl-jockey`), and nothing else; the tenant ClusterRole only
//! once no RoleBinding grants it (it names those).

use crate::cluster::KubeArgs;
use anyhow::{Context, Result, bail};
use jockey_core::Config;
use jockey_core::certs::{self, Pair};
use jockey_core::policy::Policy;
use jockey_core::registration::{Endpoint, Registration};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams,
};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

pub const DEFAULT_NAME: &str = "jockey-webhook";
pub const DEFAULT_NAMESPACE: &str = "jockey-system";
/// The field manager of what install writes (`tenant grant` writes the tenant ClusterRole as
/// install does, so the two never take its fields from each other).
pub const FIELD_MANAGER: &str = "kubectl-jockey-install";
const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
const MANAGED_BY_VALUE: &str = "kubectl-jockey";
// Shared with the webhook, which writes them when it renews the serving certificate itself.
use jockey_core::certs::{ANNOTATION_CA_SHA256, ANNOTATION_NOT_AFTER};
const ANNOTATION_CONFIG_SHA256: &str = "jockey.agentops.ai/config-sha256";
/// A CA lives ten years and is replaced in its last year.
const CA_DAYS: i64 = 3650;
const CA_RENEW_BEFORE_DAYS: i64 = 365;
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
        include_str!("../../manifests/base/namespace.yaml"),
    ),
    ("rbac.yaml", include_str!("../../manifests/base/rbac.yaml")),
    (
        "service.yaml",
        include_str!("../../manifests/base/service.yaml"),
    ),
    // Before the Deployment: the pods never run unprotected.
    (
        "networkpolicy.yaml",
        include_str!("../../manifests/base/networkpolicy.yaml"),
    ),
    ("pdb.yaml", include_str!("../../manifests/base/pdb.yaml")),
    (
        "deployment.yaml",
        include_str!("../../manifests/base/deployment.yaml"),
    ),
];
/// jockey's BuildRequest API: cluster-scoped, installed first (the broker lists requests at start).
const BUILD_REQUEST_CRD: &str = include_str!("../../manifests/base/buildrequest-crd.yaml");
/// The build broker: its identity (cluster-wide, in the builder namespace, on the claims) and its
/// Deployment; `manifests/broker` as kustomize reads it, minus the config generator.
const BROKER: [(&str, &str); 2] = [
    (
        "broker/rbac.yaml",
        include_str!("../../manifests/broker/rbac.yaml"),
    ),
    (
        "broker/deployment.yaml",
        include_str!("../../manifests/broker/deployment.yaml"),
    ),
];
/// The broker's Deployment, ServiceAccount and RBAC.
pub const BROKER_NAME: &str = "jockey-broker";
#[cfg(test)]
const BASE_WEBHOOKS: &str = include_str!("../../manifests/base/webhooks.yaml");
const BASE_POLICY: &str = include_str!("../../manifests/base/policy.yaml");

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FailurePolicy {
    Fail,
    Ignore,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DryRun {
    /// Print the objects (Secrets redacted) and change nothing.
    Client,
    /// Send everything to the API server as a dry run.
    Server,
}

#[derive(clap::Args, Debug, Clone)]
pub struct InstallArgs {
    /// Name of the webhook: its Deployment, Service, Secrets, RBAC and webhook configurations.
    /// The webhook's namespace is -n/--namespace, default jockey-system.
    #[arg(long, default_value = DEFAULT_NAME)]
    pub name: String,
    /// Image of jockey-webhook (default: jockey-webhook:<this plugin's version>).
    #[arg(long)]
    pub image: Option<String>,
    /// Policy file for the webhook (default: manifests/base/policy.yaml); checked before install.
    #[arg(long, value_name = "FILE")]
    pub policy_file: Option<PathBuf>,
    /// Registry of builder images, for `image: jockey:auto`.
    #[arg(long, value_name = "REGISTRY", env = "IMAGE_REGISTRY")]
    pub image_registry: Option<String>,
    /// Repository prefix of builder images under the registry.
    #[arg(long, value_name = "PREFIX", env = "IMAGE_REPOSITORY_PREFIX",
          default_value = jockey_core::config::DEFAULT_IMAGE_REPOSITORY_PREFIX)]
    pub image_repository_prefix: String,
    /// The shared ALB group the webhook places projects in and guards, and the hosts' domain:
    /// the same flags and variables as the ALB commands.
    #[command(flatten)]
    pub group: crate::alb::GroupArgs,
    /// ACM certificate the webhook puts on every Ingress (certificate-arn).
    #[arg(long, value_name = "ARN", env = "ALB_CERTIFICATE_ARN")]
    pub certificate_arn: Option<String>,
    /// Further ALB groups every project may join, comma-separated (the webhook and the API
    /// server's admission policy read this one value from the webhook's ConfigMap).
    #[arg(long, value_name = "GROUPS", env = "ALB_ALLOWED_GROUPS")]
    pub alb_allowed_groups: Option<String>,
    /// Only namespaces with this label are subject to the webhook (repeatable), e.g. to roll it
    /// out namespace by namespace.
    #[arg(long, value_name = "KEY=VALUE")]
    pub namespace_selector: Vec<String>,
    /// What the API server does when the webhook cannot be reached (see manifests/README.md).
    #[arg(long, value_enum, default_value = "fail")]
    pub failure_policy: FailurePolicy,
    /// The CA (PEM) of the client certificate the API server presents to webhooks: the webhook
    /// then reads admission reviews only from it (stored in ConfigMap <name>-client-ca, reloaded
    /// by the webhook when it changes; see manifests/README.md, "Who may call the webhook").
    #[arg(long, value_name = "FILE")]
    pub client_ca_file: Option<PathBuf>,
    /// With --client-ca-file: the API server's certificate's common name or DNS name
    /// (repeatable), for a CA that signs other clients' certificates too.
    #[arg(long = "client-name", value_name = "NAME", requires = "client_ca_file")]
    pub client_names: Vec<String>,
    /// Only these address ranges may reach the webhook pods (repeatable; the NetworkPolicy's
    /// `from`): where the API server connects from (control-plane nodes; on EKS the cluster's
    /// subnets). Default: any source, on the webhook port only.
    #[arg(long, value_name = "CIDR")]
    pub api_server_cidr: Vec<String>,
    /// Renew the serving certificate when it expires within this many days.
    #[arg(long, default_value_t = 30)]
    pub renew_before_days: i64,
    /// Validity of a new serving certificate, in days.
    #[arg(long, default_value_t = 365)]
    pub cert_days: i64,
    /// Wait until the webhook Deployment is available.
    #[arg(long)]
    pub wait: bool,
    /// How long --wait waits, e.g. 90s, 3m (a bare number is seconds).
    #[arg(long, default_value = "3m", value_parser = crate::duration::parse)]
    pub timeout: Duration,
    #[arg(long, value_enum)]
    pub dry_run: Option<DryRun>,
}

#[derive(clap::Args, Debug, Clone)]
pub struct UninstallArgs {
    /// Name the webhook was installed with.
    #[arg(long, default_value = DEFAULT_NAME)]
    pub name: String,
}

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
fn parse_cidr(cidr: &str) -> Result<String> {
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
fn api_resource(obj: &Value) -> Result<(ApiResource, bool)> {
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

fn describe(obj: &Value) -> String {
    format!(
        "{}/{}",
        obj["kind"]
            .as_str()
            .unwrap_or_default()
            .to_ascii_lowercase(),
        obj["metadata"]["name"].as_str().unwrap_or_default()
    )
}

fn dyn_api(client: &Client, obj: &Value) -> Result<Api<DynamicObject>> {
    let (ar, namespaced) = api_resource(obj)?;
    Ok(if namespaced {
        let ns = obj["metadata"]["namespace"].as_str().unwrap_or_default();
        Api::namespaced_with(client.clone(), ns, &ar)
    } else {
        Api::all_with(client.clone(), &ar)
    })
}

fn b64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn unb64_secret(secret: &Secret, key: &str) -> Option<String> {
    secret
        .data
        .as_ref()?
        .get(key)
        .and_then(|b| String::from_utf8(b.0.clone()).ok())
}

fn not_after_of(secret: &Secret) -> Option<i64> {
    secret
        .annotations()
        .get(ANNOTATION_NOT_AFTER)
        .and_then(|v| v.parse().ok())
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// What the certificate step decided.
#[derive(Debug, Clone)]
pub struct CertPlan {
    pub ca: Pair,
    /// CAs the webhook configurations must trust: the current one, and the previous one while a
    /// certificate it signed may still be served.
    pub trusted: Vec<String>,
    pub serving: Pair,
    pub ca_renewed: bool,
    pub serving_renewed: bool,
    /// Until when the previous CA stays in the caBundle (Unix seconds).
    pub previous_until: Option<i64>,
}

/// How long a replaced CA stays trusted: long enough for every pod to have reloaded the new
/// serving certificate (the kubelet refreshes mounted Secrets within minutes).
const PREVIOUS_CA_GRACE_SECONDS: i64 = 7 * 86_400;

/// Decides which certificates to keep or make, given the stored Secrets. Pure but for the
/// randomness of new keys.
pub fn plan_certificates(
    name: &str,
    namespace: &str,
    ca_secret: Option<&Secret>,
    tls_secret: Option<&Secret>,
    now: i64,
    renew_before_days: i64,
    cert_days: i64,
) -> Result<CertPlan> {
    let ca_cn = format!("{name}-ca");
    let existing_ca = ca_secret.and_then(|s| {
        Some(Pair {
            cert_pem: unb64_secret(s, "tls.crt")?,
            key_pem: unb64_secret(s, "tls.key")?,
            not_after: not_after_of(s)?,
        })
    });
    let previous_ca = ca_secret.and_then(|s| unb64_secret(s, "previous.crt"));
    let previous_not_after = ca_secret
        .and_then(|s| {
            s.annotations()
                .get("jockey.agentops.ai/previous-not-after")
                .cloned()
        })
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or(0);
    let (ca, ca_renewed, mut trusted, previous_until) = match existing_ca {
        Some(ca) if !certs::needs_renewal(ca.not_after, now, CA_RENEW_BEFORE_DAYS) => {
            let mut trusted = vec![ca.cert_pem.clone()];
            let mut until = None;
            if let Some(prev) = previous_ca.filter(|_| previous_not_after > now) {
                trusted.push(prev);
                until = Some(previous_not_after);
            }
            (ca, false, trusted, until)
        }
        old => {
            let ca = certs::new_ca(&ca_cn, CA_DAYS)
                .with_context(|| format!("creating the CA of {name}"))?;
            let mut trusted = vec![ca.cert_pem.clone()];
            let mut until = None;
            if let Some(old) = old.filter(|o| o.not_after > now) {
                until = Some(old.not_after.min(now + PREVIOUS_CA_GRACE_SECONDS));
                trusted.push(old.cert_pem);
            }
            (ca, true, trusted, until)
        }
    };
    trusted.dedup();
    let ca_sha = certs::ca_sha256(&ca.cert_pem);
    let existing_serving = tls_secret.and_then(|s| {
        let signed_by_current = s.annotations().get(ANNOTATION_CA_SHA256) == Some(&ca_sha);
        signed_by_current.then_some(())?;
        Some(Pair {
            cert_pem: unb64_secret(s, "tls.crt")?,
            key_pem: unb64_secret(s, "tls.key")?,
            not_after: not_after_of(s)?,
        })
    });
    let (serving, serving_renewed) = match existing_serving {
        Some(s) if !certs::needs_renewal(s.not_after, now, renew_before_days) => (s, false),
        _ => {
            let names = vec![
                format!("{name}.{namespace}.svc"),
                format!("{name}.{namespace}.svc.cluster.local"),
            ];
            let s = certs::issue_serving(&ca, &ca_cn, &names, cert_days)
                .with_context(|| format!("issuing the serving certificate of {name}"))?;
            (s, true)
        }
    };
    Ok(CertPlan {
        ca,
        trusted,
        serving,
        ca_renewed,
        serving_renewed,
        previous_until,
    })
}

fn ca_secret_object(name: &str, namespace: &str, plan: &CertPlan) -> Value {
    let mut data = json!({ "tls.crt": b64(&plan.ca.cert_pem), "tls.key": b64(&plan.ca.key_pem) });
    let mut annotations = json!({ ANNOTATION_NOT_AFTER: plan.ca.not_after.to_string() });
    if let (Some(prev), Some(until)) = (plan.trusted.get(1), plan.previous_until) {
        data["previous.crt"] = json!(b64(prev));
        annotations["jockey.agentops.ai/previous-not-after"] = json!(until.to_string());
    }
    json!({
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
        "metadata": {
            "name": format!("{name}-ca"), "namespace": namespace,
            "labels": { MANAGED_BY: MANAGED_BY_VALUE, "app.kubernetes.io/part-of": "jockey" },
            "annotations": annotations
        },
        "data": data
    })
}

fn tls_secret_object(name: &str, namespace: &str, plan: &CertPlan) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
        "metadata": {
            "name": format!("{name}-tls"), "namespace": namespace,
            "labels": { MANAGED_BY: MANAGED_BY_VALUE, "app.kubernetes.io/part-of": "jockey" },
            "annotations": {
                ANNOTATION_NOT_AFTER: plan.serving.not_after.to_string(),
                ANNOTATION_CA_SHA256: certs::ca_sha256(&plan.ca.cert_pem),
            }
        },
        "data": {
            "tls.crt": b64(&plan.serving.cert_pem),
            "tls.key": b64(&plan.serving.key_pem),
            "ca.crt": b64(&plan.ca.cert_pem),
        }
    })
}

pub(crate) fn options(cluster: &KubeArgs, args: &InstallArgs) -> Result<Options> {
    // The webhook's settings, normalised as the webhook itself will read them.
    let config = Config::from_lookup(|key| match key {
        "IMAGE_REGISTRY" => args.image_registry.clone(),
        "IMAGE_REPOSITORY_PREFIX" => Some(args.image_repository_prefix.clone()),
        "ALB_SHARED_GROUP_NAME" => Some(args.group.alb_group.clone()),
        "DEPLOYMENT_DOMAIN" => Some(args.group.deployment_domain.clone()),
        "ALB_CERTIFICATE_ARN" => args.certificate_arn.clone(),
        "ALB_ALLOWED_GROUPS" => args.alb_allowed_groups.clone(),
        _ => None,
    });
    let policy_yaml = match &args.policy_file {
        Some(p) => std::fs::read_to_string(p)
            .with_context(|| format!("reading --policy-file {}", p.display()))?,
        None => BASE_POLICY.to_string(),
    };
    // Refuse a policy (or settings) the webhook would refuse at start, before anything is written.
    config.check().map_err(anyhow::Error::msg)?;
    Policy::parse("--policy-file", &policy_yaml)?
        .check_with(&config)
        .map_err(|e| anyhow::anyhow!("--policy-file: {e}"))?;
    let mut namespace_selector = BTreeMap::new();
    for sel in &args.namespace_selector {
        let Some((k, v)) = sel.split_once('=') else {
            bail!(
                "--namespace-selector {sel:?}: expected KEY=VALUE, e.g. jockey.agentops.ai/webhook=enabled"
            );
        };
        namespace_selector.insert(k.to_string(), v.to_string());
    }
    jockey_core::ProjectId::parse(&args.name).map_err(|e| anyhow::anyhow!("--name: {e}"))?;
    let client_ca_pem = match &args.client_ca_file {
        Some(p) => {
            let pem = std::fs::read_to_string(p)
                .with_context(|| format!("reading --client-ca-file {}", p.display()))?;
            // Refuse what the webhook would refuse at start.
            certs::inspect(&pem).map_err(|e| {
                anyhow::anyhow!(
                    "--client-ca-file {}: {e}; point it at the PEM CA that signed the API server's webhook client certificate",
                    p.display()
                )
            })?;
            Some(pem)
        }
        None => None,
    };
    let api_server_cidrs = args
        .api_server_cidr
        .iter()
        .map(|c| parse_cidr(c))
        .collect::<Result<Vec<_>>>()?;
    Ok(Options {
        name: args.name.clone(),
        namespace: cluster
            .namespace
            .clone()
            .unwrap_or_else(|| DEFAULT_NAMESPACE.to_string()),
        image: args
            .image
            .clone()
            .unwrap_or_else(|| format!("jockey-webhook:{}", env!("CARGO_PKG_VERSION"))),
        config,
        policy_yaml,
        namespace_selector,
        failure_policy: args.failure_policy,
        client_ca_pem,
        client_names: args.client_names.clone(),
        api_server_cidrs,
    })
}

async fn apply(client: &Client, obj: &Value, dry_run: bool) -> Result<()> {
    let api = dyn_api(client, obj)?;
    let name = obj["metadata"]["name"].as_str().unwrap_or_default();
    let mut pp = PatchParams::apply(FIELD_MANAGER).force();
    pp.dry_run = dry_run;
    api.patch(name, &pp, &Patch::Apply(obj))
        .await
        .with_context(|| format!("applying {}", describe(obj)))?;
    Ok(())
}

pub async fn install(cluster: &KubeArgs, args: InstallArgs) -> Result<()> {
    let o = options(cluster, &args)?;
    let client = cluster.connect().await?.client;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &o.namespace);
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let existing_ns = namespaces.get_opt(&o.namespace).await.with_context(|| {
        format!(
            "reading namespace {}; check access to the cluster",
            o.namespace
        )
    })?;
    let ca_secret = match existing_ns {
        Some(_) => secrets.get_opt(&format!("{}-ca", o.name)).await?,
        None => None,
    };
    let tls_secret = match existing_ns.as_ref() {
        Some(_) => secrets.get_opt(&format!("{}-tls", o.name)).await?,
        None => None,
    };
    let plan = plan_certificates(
        &o.name,
        &o.namespace,
        ca_secret.as_ref(),
        tls_secret.as_ref(),
        now_unix(),
        args.renew_before_days,
        args.cert_days,
    )?;
    let bundle = b64(&plan.trusted.concat());
    let mut objects = render(&o, &bundle)?;
    // A namespace install did not make is left alone (and so never deleted by uninstall).
    if existing_ns
        .is_some_and(|ns| ns.labels().get(MANAGED_BY).map(String::as_str) != Some(MANAGED_BY_VALUE))
    {
        objects.retain(|obj| {
            obj["kind"] != "Namespace" || obj["metadata"]["name"] != o.namespace.as_str()
        });
    }

    if args.dry_run == Some(DryRun::Client) {
        objects.push(ca_secret_object(&o.name, &o.namespace, &plan));
        objects.push(tls_secret_object(&o.name, &o.namespace, &plan));
        for obj in &mut objects {
            if obj["kind"] == "Secret" {
                obj["data"] = json!({ "tls.crt": "<redacted>", "tls.key": "<redacted>" });
            }
            println!("---\n{}", serde_yaml::to_string(obj)?.trim_end());
        }
        return Ok(());
    }
    let dry = args.dry_run == Some(DryRun::Server);
    let suffix = if dry { " (server dry run)" } else { "" };

    // Order matters for a rotation: the CA Secret and the webhook configurations (trusting the
    // new CA) first, the serving certificate the pods pick up last.
    let (first, rest): (Vec<Value>, Vec<Value>) = objects
        .into_iter()
        .partition(|obj| obj["kind"] == "Namespace");
    for obj in &first {
        apply(&client, obj, dry).await?;
        println!("{} applied{suffix}", describe(obj));
    }
    let ca_obj = ca_secret_object(&o.name, &o.namespace, &plan);
    apply(&client, &ca_obj, dry).await?;
    println!(
        "secret/{}-ca {}{suffix}",
        o.name,
        if plan.ca_renewed {
            "created (new CA)"
        } else {
            "unchanged"
        }
    );
    for obj in &rest {
        apply(&client, obj, dry).await?;
        println!("{} applied{suffix}", describe(obj));
    }
    let tls_obj = tls_secret_object(&o.name, &o.namespace, &plan);
    apply(&client, &tls_obj, dry).await?;
    let until = Time(
        k8s_openapi::jiff::Timestamp::from_second(plan.serving.not_after)
            .unwrap_or(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
    );
    println!(
        "secret/{}-tls {} (serving certificate valid until {}){suffix}",
        o.name,
        if plan.serving_renewed {
            "written"
        } else {
            "unchanged"
        },
        until.0
    );
    println!(
        "caBundle of mutatingwebhookconfiguration/{0} and validatingwebhookconfiguration/{0} trusts {1} CA(s){suffix}",
        o.name,
        plan.trusted.len()
    );

    if args.wait && !dry {
        wait_available(&client, &o, args.timeout).await?;
    }
    Ok(())
}

/// The namespaces whose RoleBinding `jockey-tenant` binds the tenant ClusterRole: uninstall
/// leaves the ClusterRole to them rather than cut every tenant off (or another install's; the
/// ClusterRole is one for all). Best effort: none when they cannot be listed.
async fn tenant_bindings(client: &Client) -> Vec<String> {
    use k8s_openapi::api::rbac::v1::RoleBinding;
    let name = jockey_core::tenant::TENANT_ROLE;
    let Ok(list) = Api::<RoleBinding>::all(client.clone())
        .list(&kube::api::ListParams::default().fields(&format!("metadata.name={name}")))
        .await
    else {
        return Vec::new();
    };
    list.items
        .iter()
        .filter(|b| {
            jockey_core::tenant::is_tenant_binding(b) && b.metadata.deletion_timestamp.is_none()
        })
        .filter_map(|b| b.metadata.namespace.clone())
        .collect()
}

/// Replicas wanted and available, when every wanted replica is available. Pure.
fn available(d: &k8s_openapi::api::apps::v1::Deployment) -> Option<(i32, i32)> {
    let want = d.spec.replicas.unwrap_or(1);
    let available = d
        .status
        .as_ref()
        .and_then(|s| s.available_replicas)
        .unwrap_or(0);
    (available >= want).then_some((available, want))
}

/// `--wait`: watches the webhook Deployment until its replicas are available.
async fn wait_available(client: &Client, o: &Options, timeout: Duration) -> Result<()> {
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::namespaced(client.clone(), &o.namespace);
    let ready =
        |d: Option<&k8s_openapi::api::apps::v1::Deployment>| d.and_then(available).is_some();
    let deadline = std::time::Instant::now() + timeout;
    let waited = crate::watch::until(deployments.clone(), &o.name, ready, deadline).await;
    if let Ok(Some(d)) = &waited
        && let Some((available, want)) = available(d)
    {
        println!("deployment/{} available ({available}/{want})", o.name);
        return Ok(());
    }
    let (available, want) = match deployments.get_opt(&o.name).await? {
        Some(d) => (
            d.status.and_then(|s| s.available_replicas).unwrap_or(0),
            d.spec.replicas.unwrap_or(1),
        ),
        None => (0, 1),
    };
    bail!(
        "deployment {}/{}: {available}/{want} replicas available after --timeout {}; check \
         `kubectl -n {} describe deployment {}` (image pullable? Secret {}-tls mounted?)",
        o.namespace,
        o.name,
        crate::duration::show(timeout),
        o.namespace,
        o.name,
        o.name
    )
}

pub async fn uninstall(cluster: &KubeArgs, args: UninstallArgs) -> Result<()> {
    let namespace = cluster
        .namespace
        .clone()
        .unwrap_or_else(|| DEFAULT_NAMESPACE.to_string());
    let client = cluster.connect().await?.client;
    let o = Options {
        name: args.name.clone(),
        namespace: namespace.clone(),
        image: String::new(),
        config: Config::default(),
        policy_yaml: String::new(),
        namespace_selector: BTreeMap::new(),
        failure_policy: FailurePolicy::Fail,
        // Rendered so that its ConfigMap is removed too, when an install made one.
        client_ca_pem: Some(String::new()),
        client_names: Vec::new(),
        api_server_cidrs: Vec::new(),
    };
    let mut objects = render(&o, "")?;
    for suffix in ["tls", "ca"] {
        objects.push(json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": { "name": format!("{}-{suffix}", args.name), "namespace": namespace }
        }));
    }
    // Kept: the BuildRequest API (deleting it would delete every tenant's requests) and the
    // builder namespace with its service account (`setup-builder`'s, and the builds' history).
    let builder = o.config.builder_namespace.clone();
    objects.retain(|obj| {
        let (kind, name) = (obj["kind"].as_str(), obj["metadata"]["name"].as_str());
        !(kind == Some("CustomResourceDefinition")
            || (kind == Some("Namespace") && name == Some(builder.as_str()))
            || (kind == Some("ServiceAccount")
                && name == Some(jockey_build::kaniko::BUILDER_SERVICE_ACCOUNT)))
    });
    // The webhook configurations first (so nothing calls a webhook being removed), the
    // namespace last.
    objects.sort_by_key(|o| match o["kind"].as_str() {
        Some(
            "MutatingWebhookConfiguration"
            | "ValidatingWebhookConfiguration"
            | "ValidatingAdmissionPolicyBinding"
            | "ValidatingAdmissionPolicy",
        ) => 0,
        Some("Namespace") => 2,
        _ => 1,
    });
    let mut removed = 0;
    for obj in &objects {
        let api = dyn_api(&client, obj)?;
        let name = obj["metadata"]["name"].as_str().unwrap_or_default();
        let Some(live) = api
            .get_opt(name)
            .await
            .with_context(|| format!("reading {}", describe(obj)))?
        else {
            continue;
        };
        if live.labels().get(MANAGED_BY).map(String::as_str) != Some(MANAGED_BY_VALUE) {
            println!(
                "{} left alone: not made by kubectl jockey install",
                describe(obj)
            );
            continue;
        }
        if obj["kind"] == "ClusterRole" && name == jockey_core::tenant::TENANT_ROLE {
            let bound = tenant_bindings(&client).await;
            if !bound.is_empty() {
                println!(
                    "{} left in place: RoleBinding {name} in {} still grants it to tenants (and \
                     another install may share it); `kubectl jockey tenant revoke NAMESPACE ...` \
                     each, then uninstall again, or delete it with kubectl",
                    describe(obj),
                    bound.join(", ")
                );
                continue;
            }
        }
        api.delete(name, &DeleteParams::background())
            .await
            .with_context(|| format!("deleting {}", describe(obj)))?;
        println!("{} deleted", describe(obj));
        removed += 1;
    }
    if removed == 0 {
        println!(
            "nothing to uninstall: no {} in {namespace} made by kubectl jockey install",
            args.name
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;

    fn opts() -> Options {
        Options {
            name: "jockey-webhook".into(),
            namespace: "jockey-system".into(),
            image: "reg/jockey-webhook:1".into(),
            config: Config::default(),
            policy_yaml: BASE_POLICY.into(),
            namespace_selector: BTreeMap::new(),
            failure_policy: FailurePolicy::Fail,
            client_ca_pem: None,
            client_names: Vec::new(),
            api_server_cidrs: Vec::new(),
        }
    }

    #[test]
    fn manifests_base_webhooks_are_what_install_registers() {
        let manifest = parse_multi_yaml("webhooks.yaml", BASE_WEBHOOKS).unwrap();
        let rendered = registration(&opts(), "").objects().unwrap();
        if manifest != rendered {
            let yaml: Vec<String> = rendered
                .iter()
                .map(|o| serde_yaml::to_string(o).unwrap())
                .collect();
            panic!(
                "manifests/base/webhooks.yaml differs from the rendering; it should read:\n---\n{}",
                yaml.join("---\n")
            );
        }
    }

    /// The tenant role install applies is the core's rendering (which the manifest is too), one
    /// for every install whatever its name.
    #[test]
    fn install_applies_the_tenant_cluster_role() {
        let mut o = opts();
        o.name = "jw-test".into();
        let objs = render(&o, "").unwrap();
        let role = objs
            .iter()
            .find(|o| o["kind"] == "ClusterRole" && o["metadata"]["name"] == "jockey-tenant")
            .unwrap();
        assert_eq!(
            role["rules"],
            serde_json::to_value(jockey_core::tenant::tenant_cluster_role()).unwrap()["rules"]
        );
        assert_eq!(role["metadata"]["labels"][MANAGED_BY], MANAGED_BY_VALUE);
        assert_eq!(
            role["metadata"]["labels"]["app.kubernetes.io/name"],
            "jockey-tenant"
        );
        assert_eq!(role, &tenant_cluster_role().unwrap());
        assert!(role["metadata"].get("namespace").is_none());
    }

    #[test]
    fn renders_the_base_with_ca_bundle_image_and_labels() {
        let objs = render(&opts(), "Q0E=").unwrap();
        let kinds: Vec<&str> = objs.iter().map(|o| o["kind"].as_str().unwrap()).collect();
        assert_eq!(
            kinds,
            [
                "CustomResourceDefinition",
                "Namespace",
                "ConfigMap",
                "ConfigMap",
                "ServiceAccount",
                "ClusterRole",
                "ClusterRoleBinding",
                "Role",
                "RoleBinding",
                "ClusterRole",
                "Service",
                "NetworkPolicy",
                "PodDisruptionBudget",
                "Deployment",
                "MutatingWebhookConfiguration",
                "ValidatingWebhookConfiguration",
                "ValidatingAdmissionPolicy",
                "ValidatingAdmissionPolicyBinding",
                // The build broker: the builder namespace and its account, the broker's
                // settings, identity (cluster, builder namespace, claims) and Deployment.
                "Namespace",
                "ServiceAccount",
                "ConfigMap",
                "ServiceAccount",
                "ClusterRole",
                "ClusterRoleBinding",
                "Role",
                "RoleBinding",
                "Role",
                "RoleBinding",
                "Deployment"
            ]
        );
        let broker = objs
            .iter()
            .find(|o| o["kind"] == "Deployment" && o["metadata"]["name"] == BROKER_NAME)
            .unwrap();
        let bc = &broker["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(bc["image"], "reg/jockey-webhook:1");
        assert_eq!(bc["args"], json!(["broker"]));
        assert_eq!(
            broker["spec"]["template"]["spec"]["serviceAccountName"],
            BROKER_NAME
        );
        for o in &objs {
            assert_eq!(o["metadata"]["labels"][MANAGED_BY], MANAGED_BY_VALUE, "{o}");
            api_resource(o).unwrap();
        }
        let d = objs.iter().find(|o| o["kind"] == "Deployment").unwrap();
        let c = &d["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(c["image"], "reg/jockey-webhook:1");
        let args: Vec<&str> = c["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        assert!(
            args.contains(&"--renew-ca-secret=jockey-webhook-ca"),
            "{args:?}"
        );
        assert!(
            args.contains(&"--renew-tls-secret=jockey-webhook-tls"),
            "{args:?}"
        );
        // Secrets: the CA read, the serving Secret read and updated, both by name only.
        let role = objs.iter().find(|o| o["kind"] == "Role").unwrap();
        let secret_rules: Vec<&Value> = role["rules"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["resources"] == json!(["secrets"]))
            .collect();
        assert_eq!(
            secret_rules,
            [
                &json!({ "apiGroups": [""], "resources": ["secrets"], "resourceNames": ["jockey-webhook-ca"], "verbs": ["get"] }),
                &json!({ "apiGroups": [""], "resources": ["secrets"], "resourceNames": ["jockey-webhook-tls"], "verbs": ["get", "update"] }),
            ]
        );
        assert!(
            d["spec"]["template"]["metadata"]["annotations"][ANNOTATION_CONFIG_SHA256].is_string()
        );
        for w in objs.iter().filter(|o| {
            o["kind"]
                .as_str()
                .unwrap()
                .ends_with("WebhookConfiguration")
        }) {
            assert_eq!(w["webhooks"][0]["clientConfig"]["caBundle"], "Q0E=");
            assert_eq!(w["webhooks"][0]["failurePolicy"], "Fail");
        }
    }

    #[test]
    fn the_network_policy_opens_only_the_webhook_port_and_narrows_to_the_api_server() {
        let objs = render(&opts(), "").unwrap();
        let np = objs.iter().find(|o| o["kind"] == "NetworkPolicy").unwrap();
        let d = objs.iter().find(|o| o["kind"] == "Deployment").unwrap();
        // It selects the webhook's pods, for ingress, on the container's named port only.
        assert_eq!(
            np["spec"]["podSelector"]["matchLabels"],
            d["spec"]["template"]["metadata"]["labels"]
        );
        assert_eq!(np["spec"]["policyTypes"], json!(["Ingress"]));
        assert_eq!(
            np["spec"]["ingress"],
            json!([{ "ports": [{ "port": "https", "protocol": "TCP" }] }])
        );
        assert_eq!(
            d["spec"]["template"]["spec"]["containers"][0]["ports"],
            json!([{ "name": "https", "containerPort": 10250, "protocol": "TCP" }])
        );
        let mut o = opts();
        o.api_server_cidrs = vec!["10.0.0.0/16".into(), "fd00::/8".into()];
        let objs = render(&o, "").unwrap();
        let np = objs.iter().find(|o| o["kind"] == "NetworkPolicy").unwrap();
        assert_eq!(
            np["spec"]["ingress"][0]["from"],
            json!([{ "ipBlock": { "cidr": "10.0.0.0/16" } }, { "ipBlock": { "cidr": "fd00::/8" } }])
        );
        assert_eq!(parse_cidr("10.0.0.0/16").unwrap(), "10.0.0.0/16");
        for bad in [
            "10.0.0.0",
            "10.0.0.0/33",
            "fd00::/129",
            "ten/8",
            "10.0.0.0/x",
            "",
        ] {
            let e = parse_cidr(bad).unwrap_err().to_string();
            assert!(
                e.contains("is not an address range") && e.contains("e.g."),
                "{e}"
            );
        }
    }

    #[test]
    fn a_client_ca_is_stored_mounted_and_required_of_callers() {
        let mut o = opts();
        let ca = jockey_core::certs::new_ca("client-ca", 1).unwrap();
        o.client_ca_pem = Some(ca.cert_pem.clone());
        o.client_names = vec!["kube-apiserver".into()];
        let objs = render(&o, "").unwrap();
        let cm = objs
            .iter()
            .find(|o| o["metadata"]["name"] == "jockey-webhook-client-ca")
            .unwrap();
        assert_eq!(cm["kind"], "ConfigMap");
        assert_eq!(cm["data"]["ca.crt"], ca.cert_pem);
        let d = objs.iter().find(|o| o["kind"] == "Deployment").unwrap();
        let c = &d["spec"]["template"]["spec"]["containers"][0];
        let args: Vec<&str> = c["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        assert!(
            args.contains(&"--client-ca-file=/etc/jockey-webhook/client-ca/ca.crt")
                && args.contains(&"--client-name=kube-apiserver"),
            "{args:?}"
        );
        assert!(
            c["volumeMounts"].as_array().unwrap().contains(
                &json!({ "name": "client-ca", "mountPath": "/etc/jockey-webhook/client-ca", "readOnly": true })
            )
        );
        assert!(
            d["spec"]["template"]["spec"]["volumes"]
                .as_array()
                .unwrap()
                .contains(&json!({ "name": "client-ca", "configMap": { "name": "jockey-webhook-client-ca" } }))
        );
        // Without one, none of it.
        let text = serde_json::to_string(&render(&opts(), "").unwrap()).unwrap();
        assert!(!text.contains("client-ca"), "{text}");
    }

    #[test]
    fn renaming_is_consistent() {
        let mut o = opts();
        o.name = "jw-test".into();
        o.namespace = "team-x".into();
        o.namespace_selector = BTreeMap::from([("k".into(), "v".into())]);
        o.failure_policy = FailurePolicy::Ignore;
        o.image = "reg/img:1".into();
        o.policy_yaml = "{}".into();
        let objs = render(&o, "").unwrap();
        let text = serde_json::to_string(&objs).unwrap();
        assert!(
            !text.contains("jockey-system") && !text.contains("jockey-webhook"),
            "{text}"
        );
        let w = objs
            .iter()
            .find(|o| o["kind"] == "MutatingWebhookConfiguration")
            .unwrap();
        assert_eq!(w["metadata"]["name"], "jw-test");
        assert_eq!(
            w["webhooks"][0]["clientConfig"]["service"]["namespace"],
            "team-x"
        );
        assert_eq!(
            w["webhooks"][0]["namespaceSelector"]["matchLabels"],
            json!({ "k": "v" })
        );
        assert_eq!(w["webhooks"][0]["failurePolicy"], "Ignore");
        for obj in &objs {
            let namespaced = api_resource(obj).unwrap().1;
            // The broker's rights and the build pods' account live in the builder namespace.
            let in_builder = obj["metadata"]["namespace"] == "builder";
            assert_eq!(
                obj["metadata"]["namespace"] == "team-x" || in_builder,
                namespaced,
                "{obj}"
            );
        }
        let d = objs.iter().find(|o| o["kind"] == "Deployment").unwrap();
        let vols = &d["spec"]["template"]["spec"]["volumes"];
        assert_eq!(vols[0]["secret"]["secretName"], "jw-test-tls");
        assert_eq!(vols[1]["configMap"]["name"], "jw-test-policy");
    }

    fn secret_from(v: Value) -> Secret {
        // Secret data in objects is base64 of the value; Secret's ByteString holds raw bytes.
        let mut s: Secret = serde_json::from_value(json!({ "metadata": v["metadata"] })).unwrap();
        let data = v["data"].as_object().unwrap();
        s.data = Some(
            data.iter()
                .map(|(k, b)| {
                    use base64::Engine;
                    let raw = base64::engine::general_purpose::STANDARD
                        .decode(b.as_str().unwrap())
                        .unwrap();
                    (k.clone(), ByteString(raw))
                })
                .collect(),
        );
        s
    }

    #[test]
    fn certificates_are_kept_renewed_and_rotated() {
        let now = now_unix();
        // First install: a CA and a serving certificate.
        let p1 = plan_certificates("jw", "ns", None, None, now, 30, 365).unwrap();
        assert!(p1.ca_renewed && p1.serving_renewed);
        assert_eq!(p1.trusted, vec![p1.ca.cert_pem.clone()]);
        let ca_s = secret_from(ca_secret_object("jw", "ns", &p1));
        let tls_s = secret_from(tls_secret_object("jw", "ns", &p1));
        // Second install: nothing changes.
        let p2 = plan_certificates("jw", "ns", Some(&ca_s), Some(&tls_s), now, 30, 365).unwrap();
        assert!(!p2.ca_renewed && !p2.serving_renewed);
        assert_eq!(p2.serving, p1.serving);
        // Near expiry of the serving certificate: renewed by the same CA.
        let later = now + 340 * 86_400;
        let p3 = plan_certificates("jw", "ns", Some(&ca_s), Some(&tls_s), later, 30, 365).unwrap();
        assert!(!p3.ca_renewed && p3.serving_renewed);
        assert_eq!(p3.ca, p1.ca);
        assert_ne!(p3.serving.cert_pem, p1.serving.cert_pem);
        // In the CA's last year: a new CA, trusted beside the old one; a new serving certificate.
        let late = now + (CA_DAYS - 100) * 86_400;
        let p4 = plan_certificates("jw", "ns", Some(&ca_s), Some(&tls_s), late, 30, 365).unwrap();
        assert!(p4.ca_renewed && p4.serving_renewed);
        assert_eq!(
            p4.trusted,
            vec![p4.ca.cert_pem.clone(), p1.ca.cert_pem.clone()]
        );
        // The old CA stays trusted through the grace period, then is dropped.
        // (Expiries as if the new certificates had been made at `late`.)
        let mut ca_s4 = secret_from(ca_secret_object("jw", "ns", &p4));
        let mut tls_s4 = secret_from(tls_secret_object("jw", "ns", &p4));
        ca_s4.annotations_mut().insert(
            ANNOTATION_NOT_AFTER.into(),
            (late + CA_DAYS * 86_400).to_string(),
        );
        tls_s4.annotations_mut().insert(
            ANNOTATION_NOT_AFTER.into(),
            (late + 365 * 86_400).to_string(),
        );
        let p4b = plan_certificates(
            "jw",
            "ns",
            Some(&ca_s4),
            Some(&tls_s4),
            late + 86_400,
            30,
            365,
        )
        .unwrap();
        assert_eq!(p4b.trusted.len(), 2);
        assert!(!p4b.ca_renewed && !p4b.serving_renewed);
        let gone = late + PREVIOUS_CA_GRACE_SECONDS + 1;
        let p4c =
            plan_certificates("jw", "ns", Some(&ca_s4), Some(&tls_s4), gone, 30, 365).unwrap();
        assert_eq!(p4c.trusted, vec![p4.ca.cert_pem.clone()]);
        // A serving Secret signed by another CA is replaced.
        let other = plan_certificates("jw", "ns", None, None, now, 30, 365).unwrap();
        let other_tls = secret_from(tls_secret_object("jw", "ns", &other));
        let p5 =
            plan_certificates("jw", "ns", Some(&ca_s), Some(&other_tls), now, 30, 365).unwrap();
        assert!(p5.serving_renewed && !p5.ca_renewed);
    }
}
