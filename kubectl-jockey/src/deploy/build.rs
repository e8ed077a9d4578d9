//! Step 2 of a deploy: the instance ConfigMap (named by its content, so an existing one is
//! already right) and the image, built unless ECR has the tag or the ConfigMap recorded a
//! finished build. The project's deploy Lease is taken here, right before the first write (and
//! not at all by a deploy that writes nothing).

use super::changes::Change;
use super::journal::Journal;
use super::package::Packaged;
use crate::build_run;
use crate::cluster::apply_params;
use crate::image_record;
use crate::kaniko::BuildPlan;
use anyhow::{Context, Result, bail};
use jockey_core::names::ANNOTATION_CONTENT_SHA256;
use jockey_core::{Config, ProjectId};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::Patch;
use kube::{Api, Client};
use std::time::{Duration, Instant};

/// How the build runs.
pub struct Options<'a> {
    pub dry: bool,
    pub follow: bool,
    pub deadline: Instant,
    pub timeout: Duration,
    /// The Deployment as read to plan the apply: it must not change before the Lease is taken.
    pub read: Option<&'a Deployment>,
    /// Whether the apply step writes anything (the server's dry runs say an object changes, or
    /// the Secret does). When it does not and neither does this step, the deploy takes no Lease:
    /// an unchanged redeploy writes nothing at all.
    pub apply_writes: bool,
}

/// What the build step did.
pub struct Built {
    pub configmap: (String, Change),
    /// The ConfigMap as stored (or as the server would store it).
    pub printed: serde_json::Value,
    /// Whether it wrote anything besides a new ConfigMap (a Job, the image annotation).
    pub image_written: bool,
}

pub async fn build(
    client: &Client,
    ns: &str,
    p: &Packaged,
    configmap: &ConfigMap,
    o: &Options<'_>,
    journal: &Journal,
) -> Result<Built> {
    let (cfg, project, bundle) = (&p.cfg, &p.project, &p.bundle);
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let cm_name = bundle.hash.configmap_name();
    let live_cm = cms
        .get_opt(&cm_name)
        .await
        .with_context(|| format!("reading ConfigMap {ns}/{cm_name}"))?;
    // A build that cannot start must be refused before the ConfigMap is written (nothing is
    // written on bad input). With ECR the image may already be there, so the builder is only
    // required once ECR says so (below).
    let registry_is_ecr = cfg
        .image_registry
        .as_deref()
        .is_some_and(|r| crate::ecr::parse_registry(r).is_some());
    let image = cfg
        .image_registry
        .as_deref()
        .map(|r| project.image(r, &cfg.image_repository_prefix, &bundle.hash));
    let recorded = live_cm
        .as_ref()
        .map(image_record::recorded_images)
        .unwrap_or_default();
    let built = image.as_ref().is_some_and(|i| recorded.contains(i));
    if !o.dry && !built && !registry_is_ecr {
        build_run::check_builder(client, &cfg.builder_namespace).await?;
    }
    // Named by its content, so it is ours only if it says it holds this content; a same-named
    // ConfigMap made by hand would start the pods on the wrong files.
    if let Some(cm) = &live_cm {
        let digest = cm
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(ANNOTATION_CONTENT_SHA256));
        if digest.map(String::as_str) != Some(bundle.hash.full()) {
            bail!(
                "ConfigMap {ns}/{cm_name} exists but does not hold these files (annotation \
                 {ANNOTATION_CONTENT_SHA256} is {digest:?}, expected {}); it was not made by \
                 kubectl jockey: delete or rename it, then deploy again",
                bundle.hash.full()
            );
        }
    }
    // Every refusal is behind; the first write is next, unless nothing is to be written: the
    // ConfigMap exists, it records the image as built, and the apply changes nothing. Then no
    // other deploy can be interfered with, and the Lease (a write of its own) is not taken.
    let writes = live_cm.is_none() || !built || o.apply_writes;
    if !o.dry && writes {
        journal
            .take_lease(client, ns, project, o.deadline, o.read)
            .await?;
    }
    let (change, printed) = match &live_cm {
        Some(cm) => (Change::Unchanged, serde_json::to_value(cm)?),
        None => {
            if !o.dry {
                journal.doing(format!("writing configmap/{cm_name} (nothing else yet)"));
            }
            let applied = cms
                .patch(&cm_name, &apply_params(o.dry), &Patch::Apply(configmap))
                .await
                .with_context(|| format!("writing ConfigMap {ns}/{cm_name}"))?;
            (Change::Created, serde_json::to_value(&applied)?)
        }
    };
    if !o.dry {
        journal.done(format!("configmap/{cm_name} ({change})"));
    }
    let mut image_written = false;
    if o.dry {
        if !built {
            eprintln!("(dry run: the image would be built first)");
        }
    } else if built {
        eprintln!(
            "image {} already built; skipping the build",
            image.as_deref().unwrap_or_default()
        );
    } else {
        match crate::ecr::prepare(cfg, project, &bundle.hash).await? {
            crate::ecr::Decision::Built { image } => {
                eprintln!("image {image} exists in ECR; skipping the build");
                image_written = image_record::record_image(client, ns, &cm_name, &image).await?;
            }
            other => {
                if let crate::ecr::Decision::Unavailable(why) = &other {
                    tracing::debug!("ECR check skipped: {why}");
                }
                build_run::check_builder(client, &cfg.builder_namespace).await?;
                let plan = BuildPlan::new(cfg, project, bundle, o.timeout)?;
                journal.doing(format!(
                    "the build of {} (Job {}/{}, once created, runs on in the cluster; the next \
                     deploy attaches to it or reuses its image); the Deployment was not changed",
                    plan.image, cfg.builder_namespace, plan.name
                ));
                if matches!(other, crate::ecr::Decision::Build { .. }) {
                    ensure_cache_repository(cfg, project).await?;
                }
                build_run::run_build(build_run::BuildRun {
                    client,
                    plan: &plan,
                    bundle,
                    follow: o.follow,
                    deadline: o.deadline,
                    timeout: o.timeout,
                })
                .await?;
                image_record::record_image(client, ns, &cm_name, &plan.image).await?;
                image_written = true;
                journal.done(format!("image {} built", plan.image));
            }
        }
    }
    Ok(Built {
        configmap: (format!("configmap/{cm_name}"), change),
        printed,
        image_written,
    })
}

/// Kaniko pushes its layer cache to `<prefix>/PROJECT/cache`; ECR, unlike most registries,
/// needs that repository to exist first. Called only when ECR is reachable (the image's own
/// repository was just ensured by [`crate::ecr::prepare`]).
async fn ensure_cache_repository(cfg: &Config, project: &ProjectId) -> Result<()> {
    let Some(ecr) = cfg
        .image_registry
        .as_deref()
        .and_then(crate::ecr::parse_registry)
    else {
        return Ok(());
    };
    let sdk = crate::aws::sdk_config(Some(&ecr.region)).await;
    let client = aws_sdk_ecr::Client::new(&sdk);
    let name = format!("{}/cache", project.repository(&cfg.image_repository_prefix));
    crate::ecr::ensure_repository(&client, &ecr.account, &name, crate::ecr::Tags::Mutable).await?;
    Ok(())
}
