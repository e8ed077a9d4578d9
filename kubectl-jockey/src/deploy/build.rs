//! Step 2 of a deploy: the instance ConfigMap (named by its content, so an existing one is
//! already right) and the image, asked of jockey's build broker unless the ConfigMap recorded
//! it (the broker itself finds an image already in ECR). The project's deploy Lease is taken
//! here, right before the first write (and not at all by a deploy that writes nothing).

use super::changes::Change;
use super::journal::Journal;
use super::package::Packaged;
use crate::build::{image_record, request};
use crate::cluster::apply_params;
use anyhow::{Context, Result, bail};
use jockey_core::names::ANNOTATION_CONTENT_SHA256;
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
    /// The image the instance runs, once known (not in a dry run of new files).
    pub image: Option<String>,
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
    // The image recorded for the project on this instance (the broker's answer: the instance's
    // own `:<h>`, or the built-in template's dependency image `:d-...`), in the registry this
    // plugin knows when it knows one.
    let recorded = live_cm
        .as_ref()
        .and_then(|cm| image_record::recorded_image_of(cm, project))
        .filter(|image| {
            cfg.image_registry
                .as_deref()
                .is_none_or(|r| image.starts_with(&format!("{}/", r.trim_end_matches('/'))))
        });
    let built = recorded.is_some();
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
    let mut image = recorded.clone();
    if o.dry {
        if !built {
            eprintln!("(dry run: the image would be built first)");
        }
    } else if let Some(image) = &recorded {
        eprintln!("image {image} already built; skipping the build");
        if jockey_core::image::is_dependency_image(image) {
            eprintln!("  (the files of {cm_name} are unpacked from the ConfigMap at pod start)");
        }
    } else {
        journal.doing(format!(
            "the build of {project} (BuildRequest {ns}/{}, once created, runs on in the \
             cluster; the next deploy attaches to it or reuses its image); the Deployment was not \
             changed",
            jockey_core::build_request::request_name(project, &bundle.hash)
        ));
        let built = request::build(request::Ask {
            client,
            namespace: ns,
            project,
            hash: &bundle.hash,
            follow: o.follow,
            deadline: o.deadline,
            timeout: o.timeout,
        })
        .await?;
        image_written = image_record::record_image(client, ns, &cm_name, &built).await?;
        journal.done(format!("image {built} ready"));
        image = Some(built);
    }
    Ok(Built {
        configmap: (format!("configmap/{cm_name}"), change),
        printed,
        image_written,
        image,
    })
}
