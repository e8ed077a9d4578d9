//! The Kubernetes adapter of `check`: reads the facts the rules in the sibling modules judge.
//! Every function makes reads only, but for [`dry_run`] (a server-side dry run, which stores
//! nothing) and [`access`] (SelfSubjectAccessReviews, which store nothing either).

use super::Replicas;
use super::builder::BuilderFacts;
use super::cluster::{ServerVersion, WebhookVersion};
use super::pre::{Access, Existing};
use super::webhook::{Configuration, DryRun, Hook, Pdb};
use crate::alb::address::{self, ClassParams};
use anyhow::{Context, Result};
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
    ValidatingWebhookConfiguration,
};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::RoleBinding;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, ListParams, PostParams};
use kube::core::{Selector, SelectorExt};
use kube::{Api, Client, ResourceExt};
use std::collections::BTreeMap;

const MANAGED_BY: &str = "app.kubernetes.io/managed-by";

pub async fn server_version(client: &Client) -> Result<ServerVersion, String> {
    client
        .apiserver_version()
        .await
        .map(|v| ServerVersion {
            major: v.major,
            minor: v.minor,
            git_version: v.git_version,
        })
        .map_err(|e| crate::cluster::api_message(&e))
}

/// Whether admissionregistration.k8s.io/v1 serves ValidatingAdmissionPolicies.
pub async fn vap_served(client: &Client) -> bool {
    client
        .list_api_group_resources("admissionregistration.k8s.io/v1")
        .await
        .is_ok_and(|l| {
            l.resources
                .iter()
                .any(|r| r.name == "validatingadmissionpolicies")
        })
}

async fn deployment(client: &Client, ns: &str, name: &str) -> Result<Option<Deployment>> {
    Api::<Deployment>::namespaced(client.clone(), ns)
        .get_opt(name)
        .await
        .with_context(|| format!("reading deployment {ns}/{name}"))
}

pub async fn webhook_version(
    client: &Client,
    ns: &str,
    name: &str,
) -> Result<Option<WebhookVersion>> {
    Ok(deployment(client, ns, name).await?.map(|d| WebhookVersion {
        image: d
            .spec
            .template
            .spec
            .as_ref()
            .and_then(|s| s.containers.first())
            .and_then(|c| c.image.clone())
            .unwrap_or_default(),
        label: d.labels().get(crate::install::LABEL_VERSION).cloned(),
    }))
}

pub async fn replicas(client: &Client, ns: &str, name: &str) -> Result<Option<Replicas>> {
    Ok(deployment(client, ns, name)
        .await?
        .as_ref()
        .map(Replicas::of))
}

pub async fn pdb(client: &Client, ns: &str, name: &str) -> Result<Option<Pdb>> {
    let p = Api::<PodDisruptionBudget>::namespaced(client.clone(), ns)
        .get_opt(name)
        .await
        .with_context(|| format!("reading poddisruptionbudget {ns}/{name}"))?;
    Ok(p.map(|p| {
        let s = p.status.unwrap_or_default();
        Pdb {
            disruptions_allowed: s.disruptions_allowed.unwrap_or(0),
            current_healthy: s.current_healthy.unwrap_or(0),
            desired_healthy: s.desired_healthy.unwrap_or(0),
        }
    }))
}

pub async fn secret(client: &Client, ns: &str, name: &str) -> Result<Option<Secret>> {
    Api::<Secret>::namespaced(client.clone(), ns)
        .get_opt(name)
        .await
        .with_context(|| format!("reading secret {ns}/{name}"))
}

pub fn secret_text(secret: &Secret, key: &str) -> Option<String> {
    secret
        .data
        .as_ref()?
        .get(key)
        .and_then(|b| String::from_utf8(b.0.clone()).ok())
}

fn hook(
    name: &str,
    bundle: Option<&k8s_openapi::ByteString>,
    failure_policy: Option<&String>,
    timeout: Option<i32>,
) -> Hook {
    Hook {
        name: name.to_string(),
        ca_bundle_pem: bundle
            .map(|b| String::from_utf8_lossy(&b.0).to_string())
            .unwrap_or_default(),
        failure_policy: failure_policy.cloned(),
        timeout_seconds: timeout,
    }
}

/// Both webhook configurations, and the namespaceSelector of the mutating one (where a dry run
/// is answered).
pub async fn configurations(
    client: &Client,
    name: &str,
) -> Result<(Configuration, Configuration, Option<LabelSelector>)> {
    let m = Api::<MutatingWebhookConfiguration>::all(client.clone())
        .get_opt(name)
        .await
        .with_context(|| format!("reading mutatingwebhookconfiguration {name}"))?;
    let v = Api::<ValidatingWebhookConfiguration>::all(client.clone())
        .get_opt(name)
        .await
        .with_context(|| format!("reading validatingwebhookconfiguration {name}"))?;
    let selector = m
        .as_ref()
        .and_then(|m| m.webhooks.as_ref()?.first()?.namespace_selector.clone());
    let mutating = Configuration {
        kind: "MutatingWebhookConfiguration",
        hooks: m.map(|m| {
            m.webhooks
                .unwrap_or_default()
                .iter()
                .map(|h| {
                    hook(
                        &h.name,
                        h.client_config.ca_bundle.as_ref(),
                        h.failure_policy.as_ref(),
                        h.timeout_seconds,
                    )
                })
                .collect()
        }),
    };
    let validating = Configuration {
        kind: "ValidatingWebhookConfiguration",
        hooks: v.map(|v| {
            v.webhooks
                .unwrap_or_default()
                .iter()
                .map(|h| {
                    hook(
                        &h.name,
                        h.client_config.ca_bundle.as_ref(),
                        h.failure_policy.as_ref(),
                        h.timeout_seconds,
                    )
                })
                .collect()
        }),
    };
    Ok((mutating, validating, selector))
}

/// Whether the admission policy `<name>-shared-alb` and its binding exist.
pub async fn admission_policy(client: &Client, name: &str) -> Result<(bool, bool)> {
    let policy = format!("{name}-shared-alb");
    let p = Api::<ValidatingAdmissionPolicy>::all(client.clone())
        .get_opt(&policy)
        .await
        .with_context(|| format!("reading validatingadmissionpolicy {policy}"))?;
    let b = Api::<ValidatingAdmissionPolicyBinding>::all(client.clone())
        .get_opt(&policy)
        .await
        .with_context(|| format!("reading validatingadmissionpolicybinding {policy}"))?;
    Ok((p.is_some(), b.is_some()))
}

/// The project the dry run's Service claims: a name no project is likely to have, valid as one.
pub const DRY_RUN_PROJECT: &str = "jockey-check";

/// A server-side dry run (`dryRun=All`, nothing stored, no claim recorded) of a labelled Service
/// in a namespace the webhook answers (`default` when it does): the webhook sets its targetPort
/// to the agent server's port, which proves the API server reached it.
pub async fn dry_run(client: &Client, selector: Option<&LabelSelector>) -> Result<DryRun> {
    let Some(selector) = selector else {
        return Ok(DryRun::NotTried(
            "no mutating webhook configuration to send a dry run through".into(),
        ));
    };
    let selector = match Selector::try_from(selector.clone()) {
        Ok(s) => s,
        Err(e) => {
            return Ok(DryRun::NoNamespace(format!(
                "the webhook's namespaceSelector is invalid ({e})"
            )));
        }
    };
    let namespaces = Api::<Namespace>::all(client.clone())
        .list(&ListParams::default())
        .await
        .context("listing namespaces (to find one the webhook answers)")?
        .items;
    let mut matching: Vec<String> = namespaces
        .iter()
        .filter(|n| n.metadata.deletion_timestamp.is_none())
        .filter(|n| selector.matches(n.metadata.labels.as_ref().unwrap_or(&BTreeMap::new())))
        .map(|n| n.name_any())
        .collect();
    matching.sort_by_key(|n| (n != "default", n.clone()));
    let Some(namespace) = matching.into_iter().next() else {
        return Ok(DryRun::NoNamespace(format!(
            "no namespace matches the webhook's namespaceSelector ({selector}): nothing to try a \
             dry run in"
        )));
    };
    let project = DRY_RUN_PROJECT;
    let svc: Service = serde_json::from_value(serde_json::json!({
        "metadata": {
            "name": format!("svc-{project}"),
            "labels": { jockey_core::names::LABEL_PROJECT: project }
        },
        "spec": { "ports": [{ "port": 80 }] }
    }))?;
    let params = PostParams {
        dry_run: true,
        field_manager: Some(jockey_core::names::FIELD_MANAGER.to_string()),
    };
    match Api::<Service>::namespaced(client.clone(), &namespace)
        .create(&params, &svc)
        .await
    {
        Ok(out) => {
            let target = out
                .spec
                .as_ref()
                .and_then(|s| s.ports.as_ref()?.first()?.target_port.clone());
            let mutated = target
                == Some(
                    k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(
                        jockey_core::defaults::CONTAINER_PORT,
                    ),
                );
            Ok(if mutated {
                DryRun::Mutated { namespace }
            } else {
                DryRun::NotMutated { namespace }
            })
        }
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(DryRun::NotTried(format!(
            "Service {namespace}/svc-{project} exists already; delete it to let check try a dry run"
        ))),
        Err(e @ kube::Error::Api(_)) => Ok(DryRun::Refused {
            namespace,
            message: crate::cluster::api_message(&e),
        }),
        Err(e) => Err(e).context("sending the dry run"),
    }
}

/// Deployments matching the controller's selector in any namespace, as `namespace/name`.
pub async fn controller_deployments(
    client: &Client,
    selector: &str,
) -> Result<Vec<(String, Replicas)>> {
    let list = Api::<Deployment>::all(client.clone())
        .list(&ListParams::default().labels(selector))
        .await
        .with_context(|| format!("listing deployments labelled {selector} in all namespaces"))?;
    Ok(list
        .items
        .iter()
        .map(|d| {
            (
                format!("{}/{}", d.namespace().unwrap_or_default(), d.name_any()),
                Replicas::of(d),
            )
        })
        .collect())
}

/// IngressClass `alb` and the IngressClassParams it names (when both exist).
pub async fn alb_class(client: &Client) -> Result<(Option<IngressClass>, Option<ClassParams>)> {
    let class = Api::<IngressClass>::all(client.clone())
        .get_opt(crate::alb::report::ALB_CLASS)
        .await
        .context("reading ingressclass alb")?;
    let Some(name) = class.as_ref().and_then(address::params_name) else {
        return Ok((class, None));
    };
    let gvk = GroupVersionKind::gvk(
        address::PARAMS_GROUP,
        address::PARAMS_VERSION,
        address::PARAMS_KIND,
    );
    let ar = ApiResource::from_gvk_with_plural(&gvk, "ingressclassparams");
    let params = match Api::<DynamicObject>::all_with(client.clone(), &ar)
        .get_opt(name)
        .await
    {
        Ok(p) => p,
        // The CRD itself is missing: as good as no params object.
        Err(e) if crate::cluster::is_not_found(&e) => None,
        Err(e) => return Err(e).with_context(|| format!("reading ingressclassparams {name}")),
    };
    let params = params
        .map(|p| {
            serde_json::from_value::<ClassParams>(serde_json::json!({ "spec": p.data["spec"] }))
        })
        .transpose()
        .with_context(|| format!("reading the spec of ingressclassparams {name}"))?;
    Ok((class, params))
}

/// The namespaces jockey projects live in (a tenant grant, or a labelled Ingress) that the
/// webhook answers (`webhook_selector`, its namespaceSelector, when installed: a project lives
/// nowhere else), with their labels.
pub async fn jockey_namespaces(
    client: &Client,
    webhook_selector: Option<&LabelSelector>,
) -> Result<BTreeMap<String, BTreeMap<String, String>>> {
    let selector = webhook_selector
        .map(|s| Selector::try_from(s.clone()))
        .transpose()
        .context("reading the webhook's namespaceSelector")?;
    let mut names = std::collections::BTreeSet::new();
    let bindings = Api::<RoleBinding>::all(client.clone())
        .list(&ListParams::default().fields(&format!(
            "metadata.name={}",
            jockey_core::tenant::TENANT_ROLE
        )))
        .await
        .context("listing the jockey-tenant RoleBindings in all namespaces")?;
    names.extend(
        bindings
            .items
            .iter()
            .filter(|b| jockey_core::tenant::is_tenant_binding(b))
            .filter_map(|b| b.namespace()),
    );
    let ingresses = Api::<Ingress>::all(client.clone())
        .list(&ListParams::default().labels(jockey_core::names::LABEL_PROJECT))
        .await
        .context("listing jockey's Ingresses in all namespaces")?;
    names.extend(ingresses.items.iter().filter_map(|i| i.namespace()));
    let api = Api::<Namespace>::all(client.clone());
    let mut out = BTreeMap::new();
    for n in names {
        if let Some(ns) = api
            .get_opt(&n)
            .await
            .with_context(|| format!("reading namespace {n}"))?
        {
            let labels = ns.metadata.labels.unwrap_or_default();
            if selector.as_ref().is_none_or(|s| s.matches(&labels)) {
                out.insert(n, labels);
            }
        }
    }
    Ok(out)
}

/// A ConfigMap's data, when it exists.
pub async fn config_map(
    client: &Client,
    ns: &str,
    name: &str,
) -> Result<Option<BTreeMap<String, String>>> {
    Ok(Api::<ConfigMap>::namespaced(client.clone(), ns)
        .get_opt(name)
        .await
        .with_context(|| format!("reading configmap {ns}/{name}"))?
        .map(|c| c.data.unwrap_or_default()))
}

/// The builder's facts; `broker` is the broker Deployment's (namespace, name), `settings` the
/// broker's ConfigMap when installed.
pub async fn builder(
    client: &Client,
    namespace: &str,
    broker: (&str, &str),
    settings: Option<&BTreeMap<String, String>>,
    cfg: &jockey_core::Config,
) -> Result<BuilderFacts> {
    let ns = Api::<Namespace>::all(client.clone())
        .get_opt(namespace)
        .await
        .with_context(|| format!("reading namespace {namespace}"))?;
    let (service_account, leftover_secret) = if ns.is_some() {
        let sa = Api::<ServiceAccount>::namespaced(client.clone(), namespace)
            .get_opt(jockey_build::kaniko::BUILDER_SERVICE_ACCOUNT)
            .await
            .with_context(|| format!("reading the builder service account in {namespace}"))?;
        let leftover = secret(
            client,
            namespace,
            jockey_build::kaniko::LEGACY_AWS_CREDENTIALS_SECRET,
        )
        .await?;
        (sa.is_some(), leftover.is_some())
    } else {
        (false, false)
    };
    let setting = |key: &str| settings.and_then(|s| s.get(key)).cloned();
    Ok(BuilderFacts {
        namespace: namespace.to_string(),
        namespace_labels: ns.map(|n| n.metadata.labels.unwrap_or_default()),
        service_account,
        leftover_secret,
        broker_name: format!("{}/{}", broker.0, broker.1),
        broker: replicas(client, broker.0, broker.1).await?,
        // The broker's own settings when it is installed, else the plugin's.
        image_registry: setting("IMAGE_REGISTRY").or_else(|| cfg.image_registry.clone()),
        builder_role_arn: setting("BUILDER_ROLE_ARN").or_else(|| cfg.builder_role_arn.clone()),
        credentials: cfg.builder_credentials.clone(),
    })
}

/// The objects of `name` install would write that exist already (webhook configurations,
/// admission policy and binding), and whether an earlier install made them.
pub async fn existing(client: &Client, name: &str) -> Result<Vec<Existing>> {
    let mut out = Vec::new();
    let ours = |labels: &BTreeMap<String, String>| {
        labels.get(MANAGED_BY).map(String::as_str) == Some("kubectl-jockey")
    };
    let policy = format!("{name}-shared-alb");
    if let Some(o) = Api::<MutatingWebhookConfiguration>::all(client.clone())
        .get_opt(name)
        .await?
    {
        out.push(Existing {
            kind: "MutatingWebhookConfiguration".into(),
            name: name.into(),
            ours: ours(o.labels()),
        });
    }
    if let Some(o) = Api::<ValidatingWebhookConfiguration>::all(client.clone())
        .get_opt(name)
        .await?
    {
        out.push(Existing {
            kind: "ValidatingWebhookConfiguration".into(),
            name: name.into(),
            ours: ours(o.labels()),
        });
    }
    if let Some(o) = Api::<ValidatingAdmissionPolicy>::all(client.clone())
        .get_opt(&policy)
        .await?
    {
        out.push(Existing {
            kind: "ValidatingAdmissionPolicy".into(),
            name: policy.clone(),
            ours: ours(o.labels()),
        });
    }
    if let Some(o) = Api::<ValidatingAdmissionPolicyBinding>::all(client.clone())
        .get_opt(&policy)
        .await?
    {
        out.push(Existing {
            kind: "ValidatingAdmissionPolicyBinding".into(),
            name: policy,
            ours: ours(o.labels()),
        });
    }
    Ok(out)
}

pub async fn crds(client: &Client, names: &[&str]) -> Result<Vec<(String, bool)>> {
    let api = Api::<CustomResourceDefinition>::all(client.clone());
    let mut out = Vec::new();
    for n in names {
        let present = api
            .get_opt(n)
            .await
            .with_context(|| format!("reading customresourcedefinition {n}"))?
            .is_some();
        out.push((n.to_string(), present));
    }
    Ok(out)
}

/// Asks the API server, one SelfSubjectAccessReview each, whether the caller may create and
/// patch every kind of object install writes (and escalate and bind ClusterRoles, which granting
/// the tenant role's permissions takes).
pub async fn access(client: &Client, name: &str, namespace: &str) -> Result<Vec<Access>> {
    let api = Api::<SelfSubjectAccessReview>::all(client.clone());
    let mut questions: Vec<(String, String, String, Option<String>)> = Vec::new();
    for (group, resource, ns) in crate::install::applied_resources(name, namespace)? {
        for verb in ["create", "patch"] {
            questions.push((verb.into(), group.clone(), resource.clone(), ns.clone()));
        }
    }
    for verb in ["escalate", "bind"] {
        questions.push((
            verb.into(),
            "rbac.authorization.k8s.io".into(),
            "clusterroles".into(),
            None,
        ));
    }
    let mut out = Vec::new();
    for (verb, group, resource, ns) in questions {
        let review = SelfSubjectAccessReview {
            spec: SelfSubjectAccessReviewSpec {
                resource_attributes: Some(ResourceAttributes {
                    verb: Some(verb.clone()),
                    group: Some(group.clone()),
                    resource: Some(resource.clone()),
                    namespace: ns.clone(),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let answer = api
            .create(&PostParams::default(), &review)
            .await
            .with_context(|| format!("asking the API server whether you may {verb} {resource}"))?;
        out.push(Access {
            verb,
            group,
            resource,
            namespace: ns,
            allowed: answer.status.is_some_and(|s| s.allowed),
        });
    }
    Ok(out)
}
