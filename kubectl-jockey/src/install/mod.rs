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
//!
//! This file holds the command line and the calls to the API server; what is applied is
//! rendered, without a cluster, by [`render`](mod@render), and the certificates are decided by
//! [`certs`].

mod certs;
mod render;

pub use render::{BROKER_NAME, tenant_cluster_role};
pub(crate) use render::{LABEL_VERSION, WEBHOOK_TIMEOUT_SECONDS, applied_resources};

use crate::cluster::KubeArgs;
use anyhow::{Context, Result, bail};
pub(crate) use certs::now_unix;
use certs::{b64, ca_secret_object, plan_certificates, tls_secret_object};
use jockey_core::Config;
use jockey_core::policy::Policy;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::{Client, ResourceExt};
use render::{BASE_POLICY, Options, api_resource, parse_cidr, render};
use serde_json::{Value, json};
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
    /// then reads admission reviews only from it (stored in ConfigMap NAME-client-ca, NAME
    /// being --name, and reloaded by the webhook when it changes; see manifests/README.md, "Who
    /// may call the webhook").
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
            jockey_core::certs::inspect(&pem).map_err(|e| {
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
