//! The objects a deploy writes, rendered through the core code the webhook uses, and where the
//! project's Ingress goes (the cluster's webhook decides, a dry run asks it).

use crate::cluster::apply_params;
use anyhow::{Context, Result};
use jockey_core::alb_annotations as alb;
use jockey_core::bundle::{Bundle, instance_configmap};
use jockey_core::policy::Policy;
use jockey_core::runtime::RuntimeSettings;
use jockey_core::{Config, ProjectId, defaults};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::api::networking::v1::Ingress;
use kube::Api;
use kube::api::Patch;
use std::collections::BTreeMap;

/// The objects `deploy` writes, in the order it writes them.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub configmap: ConfigMap,
    pub deployment: Deployment,
    pub service: Service,
    pub ingress: Ingress,
}

/// Where the project's Ingress goes: its ALB group, and the group-wide settings every Ingress of
/// that group carries (the cluster admin's, as the webhook fills them in).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub group: String,
    pub group_settings: BTreeMap<String, String>,
}

impl Placement {
    /// The shared group with jockey's default settings: what a cluster without the webhook gets.
    pub fn default_for(cfg: &Config) -> Self {
        Self {
            group: cfg.alb_shared_group_name.clone(),
            group_settings: Policy::default().effective_group_settings(cfg),
        }
    }
}

/// The runtime side of a render: the settings asked for, the live Deployment whose settings are
/// kept where none is asked for, and the digest of the project's Secret data.
#[derive(Debug, Clone, Default)]
pub struct Runtime {
    pub settings: RuntimeSettings,
    pub live: Option<Deployment>,
    pub secret_sha256: Option<String>,
    /// The instance ConfigMap as stored, when it exists: the image recorded on it (the build
    /// broker's answer, e.g. the built-in template's dependency image) is the one the Deployment
    /// runs, exactly as the webhook fills it in.
    pub instance: Option<ConfigMap>,
}

/// Renders every object of a deploy through the same core code the webhook uses
/// (`render_*` then `default_*`), so that `deploy` and a labelled `kubectl apply` agree. Pure.
pub fn render(
    project: &ProjectId,
    bundle: &Bundle,
    cfg: &Config,
    namespace: &str,
    placement: &Placement,
    runtime: &Runtime,
) -> Result<Rendered> {
    let mut configmap = instance_configmap(project, bundle);
    configmap.metadata.namespace = Some(namespace.to_string());
    let mut minimal = defaults::render_deployment(project, &bundle.hash);
    jockey_core::runtime::apply_settings(
        &mut minimal,
        runtime.live.as_ref(),
        &runtime.settings,
        runtime.secret_sha256.as_deref(),
    );
    let instances: Vec<ConfigMap> = runtime.instance.iter().cloned().collect();
    let mut deployment = defaults::default_deployment_with(&minimal, cfg, &instances)?;
    deployment.metadata.namespace = Some(namespace.to_string());
    let mut service = defaults::default_service(&defaults::render_service(project), cfg)?;
    service.metadata.namespace = Some(namespace.to_string());
    let mut ingress = defaults::default_ingress_with(
        &defaults::render_ingress(project),
        cfg,
        &placement.group,
        &placement.group_settings,
    )?;
    ingress.metadata.namespace = Some(namespace.to_string());
    Ok(Rendered {
        configmap,
        deployment,
        service,
        ingress,
    })
}

/// Where the project's Ingress goes, as the cluster's jockey-webhook decides it: the server is
/// asked with a dry run of the Ingress without a group and without group-wide settings, and the
/// webhook's answer (an existing Ingress keeps its group; a new one may be sharded over `G-2`,
/// `G-3`, …; the settings are the admin's policy) is then written explicitly. Without a webhook
/// the dry run comes back without them: an existing Ingress keeps its group, a new one goes to
/// the shared group, with jockey's default settings.
pub async fn place(
    ingresses: &Api<Ingress>,
    project: &ProjectId,
    bundle: &Bundle,
    cfg: &Config,
    ns: &str,
) -> Result<Placement> {
    let group_of = |i: &Ingress| {
        i.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(defaults::ALB_GROUP_NAME))
            .filter(|g| !g.is_empty())
            .cloned()
    };
    let name = project.ingress_name();
    let live = ingresses
        .get_opt(&name)
        .await
        .with_context(|| format!("reading Ingress {ns}/{name}"))?;
    let fallback = Placement::default_for(cfg);
    let mut probe = render(project, bundle, cfg, ns, &fallback, &Runtime::default())?.ingress;
    if let Some(a) = probe.metadata.annotations.as_mut() {
        a.retain(|k, _| !is_group_level(k));
    }
    let placed = ingresses
        .patch(&name, &apply_params(true), &Patch::Apply(&probe))
        .await
        .with_context(|| {
            format!("asking the API server where Ingress {ns}/{name} goes (dry run)")
        })?;
    let Some(group) = group_of(&placed) else {
        // No webhook answered: keep what the Ingress has, or jockey's defaults.
        return Ok(Placement {
            group: live.as_ref().and_then(group_of).unwrap_or(fallback.group),
            group_settings: fallback.group_settings,
        });
    };
    let group_settings = placed
        .metadata
        .annotations
        .iter()
        .flatten()
        .filter(|(k, _)| is_group_level(k) && k.as_str() != defaults::ALB_GROUP_NAME)
        .filter_map(|(k, v)| Some((k.strip_prefix(alb::PREFIX)?.to_string(), v.clone())))
        .collect();
    Ok(Placement {
        group,
        group_settings,
    })
}

/// A group-wide ALB annotation (or the group itself): the webhook's to fill in.
fn is_group_level(key: &str) -> bool {
    matches!(
        alb::classify(alb::Object::Ingress, key),
        Some(Ok(k)) if matches!(k.reach, alb::Reach::Group { .. }) || k.suffix == "group.name"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    use jockey_core::bundle::{Collected, Entry};
    use jockey_core::names::{ANNOTATION_INSTANCE, LABEL_PROJECT};

    fn bundle() -> Bundle {
        Bundle::from_collected(Collected {
            entries: vec![Entry::file("server.py", "print()", false)],
            ..Default::default()
        })
        .unwrap()
    }

    #[test]
    fn render_goes_through_the_core_defaults_with_names_namespace_and_instance() {
        let cfg = Config::from_lookup(|k| (k == "IMAGE_REGISTRY").then(|| "r.example".to_string()));
        let p = ProjectId::parse("demo").unwrap();
        let b = bundle();
        let r = render(
            &p,
            &b,
            &cfg,
            "team-a",
            &Placement::default_for(&cfg),
            &Runtime::default(),
        )
        .unwrap();
        let cm_name = b.hash.configmap_name();
        assert_eq!(r.configmap.metadata.name.as_deref(), Some(cm_name.as_str()));
        for ns in [
            &r.configmap.metadata.namespace,
            &r.deployment.metadata.namespace,
            &r.service.metadata.namespace,
            &r.ingress.metadata.namespace,
        ] {
            assert_eq!(ns.as_deref(), Some("team-a"));
        }
        let annotations = r.deployment.metadata.annotations.clone().unwrap();
        assert_eq!(annotations[ANNOTATION_INSTANCE], cm_name);
        assert_eq!(
            r.deployment.metadata.labels.clone().unwrap()[LABEL_PROJECT],
            "demo"
        );
        let image = r.deployment.spec.template.spec.clone().unwrap().containers[0]
            .image
            .clone();
        assert_eq!(
            image,
            Some(format!("r.example/hosting/demo:{}", b.hash.short()))
        );
        // Exactly what the webhook would make of the same minimal objects.
        let again = defaults::default_deployment(&r.deployment, &cfg).unwrap();
        assert_eq!(again.spec, r.deployment.spec, "defaulting is idempotent");
        assert_eq!(r.service.metadata.name.as_deref(), Some("svc-demo"));
        assert_eq!(r.ingress.metadata.name.as_deref(), Some("ing-demo"));
        let group = &r.ingress.metadata.annotations.clone().unwrap()[defaults::ALB_GROUP_NAME];
        assert_eq!(group, "alb-deployments");
    }

    #[test]
    fn render_without_a_registry_is_refused_with_the_fix() {
        let err = render(
            &ProjectId::parse("demo").unwrap(),
            &bundle(),
            &Config::default(),
            "ns",
            &Placement::default_for(&Config::default()),
            &Runtime::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("IMAGE_REGISTRY"), "{err}");
    }
}
