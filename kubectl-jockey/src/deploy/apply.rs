//! Step 3 of a deploy: the Secret (values only there), then the Deployment, Service and Ingress,
//! each written only where the server says something changes, keeping what users changed
//! ([`super::keep`]). Planned by [`prepare`] before the build, so that a conflict, a foreign
//! object or an oversized Secret is refused with nothing written.

use super::changes::Change;
use super::journal::Journal;
use super::keep::{self, Planned, Rules};
use super::package::Packaged;
use super::render::{Rendered, Runtime, place, render};
use anyhow::{Context, Result, bail};
use jockey_core::names::{ANNOTATION_INSTANCE, FIELD_MANAGER, LABEL_APP};
use jockey_core::ownership::deployment::{Intent, changes_instance, instance_fields};
use jockey_core::ownership::{self, printed};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, Service};
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::ListParams;
use kube::{Api, Client};
use std::collections::BTreeMap;

/// The Secret a deploy writes (`--secret-env-file`), if any.
pub struct SecretWrite {
    live: Option<Secret>,
    data: BTreeMap<String, Vec<u8>>,
    times: BTreeMap<String, String>,
    /// Whether the flags changed it.
    pub changed: bool,
}

/// Everything decided before the build.
pub struct Prepared {
    /// The Deployment as read to plan the writes.
    pub live: Option<Deployment>,
    pub rendered: Rendered,
    pub secret: SecretWrite,
    pub objects: [Planned; 3],
}

/// Reads what is live and plans every write with server dry runs; writes nothing.
pub async fn prepare(
    client: &Client,
    ns: &str,
    p: &Packaged,
    force_conflicts: bool,
) -> Result<Prepared> {
    let project = &p.project;
    // Reading namespaces may be forbidden to a tenant (an error here): the writes below tell.
    if let Ok(None) = Api::<Namespace>::all(client.clone()).get_opt(ns).await {
        bail!(
            "namespace {ns} does not exist; create it (`kubectl create namespace {ns}`) or pass \
             -n with an existing one"
        );
    }
    super::foreign::refuse_foreign_objects(client, ns, project).await?;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let live_dep = deployments
        .get_opt(&project.deployment_name())
        .await
        .with_context(|| format!("reading Deployment {ns}/{project}"))?;
    let secret = secret_write(client, ns, p).await?;
    let cm_name = p.bundle.hash.configmap_name();
    let instance = Api::<ConfigMap>::namespaced(client.clone(), ns)
        .get_opt(&cm_name)
        .await
        .with_context(|| format!("reading ConfigMap {ns}/{cm_name}"))?;
    let runtime = Runtime {
        instance,
        settings: p.flags.settings.clone(),
        live: live_dep.clone(),
        secret_sha256: (secret.live.is_some() || secret.changed)
            .then(|| jockey_core::runtime::secret_data_sha256(&secret.data)),
    };
    let ingresses: Api<Ingress> = Api::namespaced(client.clone(), ns);
    let placement = place(&ingresses, project, &p.bundle, &p.cfg, ns).await?;
    let rendered = render(project, &p.bundle, &p.cfg, ns, &placement, &runtime)?;

    // The Deployment: what this deploy changes on purpose, and the instance it runs.
    let live_json = live_dep.as_ref().map(serde_json::to_value).transpose()?;
    let mut ours = serde_json::to_value(&rendered.deployment)?;
    let instance = decide_instance(client, ns, p, live_dep.as_ref(), force_conflicts).await?;
    if let (false, Some(live)) = (instance, &live_json) {
        ownership::pin_to_live(&mut ours, live, &instance_fields());
    }
    let intent = Intent::of(
        &p.flags.settings,
        &rendered.deployment,
        live_dep.as_ref(),
        instance,
        secret.changed,
    );
    let purposeful = intent.purposeful();
    let take: Vec<String> = if instance {
        instance_fields().iter().map(|s| printed(s)).collect()
    } else {
        Vec::new()
    };
    let rules = Rules {
        purposeful: &purposeful,
        take: &take,
        force: force_conflicts,
    };
    let deployment = keep::plan(
        &deployments,
        format!("deployment.apps/{}", project.deployment_name()),
        live_json.as_ref(),
        &ours,
        &rules,
    )
    .await?;

    // The Service and the Ingress: nothing there is changed on purpose; what users set stays.
    let rules = Rules {
        force: force_conflicts,
        ..Default::default()
    };
    let services: Api<Service> = Api::namespaced(client.clone(), ns);
    let live_svc = services
        .get_opt(&project.service_name())
        .await
        .with_context(|| format!("reading Service {ns}/{}", project.service_name()))?;
    let service = keep::plan(
        &services,
        format!("service/{}", project.service_name()),
        live_svc.map(serde_json::to_value).transpose()?.as_ref(),
        &serde_json::to_value(&rendered.service)?,
        &rules,
    )
    .await?;
    let live_ing = ingresses
        .get_opt(&project.ingress_name())
        .await
        .with_context(|| format!("reading Ingress {ns}/{}", project.ingress_name()))?;
    let ingress = keep::plan(
        &ingresses,
        format!("ingress.networking.k8s.io/{}", project.ingress_name()),
        live_ing.map(serde_json::to_value).transpose()?.as_ref(),
        &serde_json::to_value(&rendered.ingress)?,
        &rules,
    )
    .await?;
    let objects = [deployment, service, ingress];
    for line in objects.iter().flat_map(keep::kept_lines) {
        eprintln!("{line}");
    }
    Ok(Prepared {
        live: live_dep,
        rendered,
        secret,
        objects,
    })
}

/// The secret environment: what is stored, with `--secret-env-file` on top; checked (size) now,
/// written only after the build, right before the Deployment that uses it.
async fn secret_write(client: &Client, ns: &str, p: &Packaged) -> Result<SecretWrite> {
    let live = crate::secrets::read(client, ns, &p.project).await?;
    let (data, times, changed) = crate::secrets::merge(
        live.as_ref(),
        &p.flags.secrets,
        &[],
        &k8s_openapi::jiff::Timestamp::now()
            .strftime("%Y-%m-%dT%H:%M:%SZ")
            .to_string(),
    );
    jockey_core::runtime::check_secret_size(&data).map_err(|e| {
        anyhow::anyhow!(
            "Secret {ns}/{}: {e}; nothing was written",
            p.project.secret_name()
        )
    })?;
    Ok(SecretWrite {
        live,
        data,
        times,
        changed: changed && !p.flags.secrets.is_empty(),
    })
}

/// Whether this deploy moves the Deployment to the files' instance (see
/// [`changes_instance`]); says so when it keeps the one a user chose.
async fn decide_instance(
    client: &Client,
    ns: &str,
    p: &Packaged,
    live: Option<&Deployment>,
    force: bool,
) -> Result<bool> {
    let ours = p.bundle.hash.configmap_name();
    let Some(live) = live else {
        return Ok(true);
    };
    let running = live
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(ANNOTATION_INSTANCE))
        .cloned();
    if running.as_deref() == Some(ours.as_str()) {
        return Ok(false);
    }
    let owners = ownership::other_owners(
        live.metadata.managed_fields.as_deref().unwrap_or_default(),
        FIELD_MANAGER,
    );
    let moved_by = ownership::owned_by_others(&owners, &instance_fields()[0]);
    let history = if moved_by.is_empty() || force {
        Vec::new()
    } else {
        let rss = Api::<ReplicaSet>::namespaced(client.clone(), ns)
            .list(&ListParams::default().labels(&format!("{LABEL_APP}={}", p.project)))
            .await
            .with_context(|| format!("listing the ReplicaSets of {}", p.project))?
            .items;
        crate::lifecycle::rollback::instance_history(live, &rss)
    };
    let changes = changes_instance(
        &ours,
        running.as_deref(),
        moved_by.is_empty(),
        &history,
        force,
    );
    if !changes {
        eprintln!(
            "deployment.apps/{} keeps {} as {} set it (kubectl rollout undo, kubectl set image \
             or an edit); these files are {ours}, which ran before; to run them again, deploy \
             with --force-conflicts",
            p.project.deployment_name(),
            running.as_deref().unwrap_or_default(),
            moved_by.join(", "),
        );
    }
    Ok(changes)
}

/// What the apply step did.
pub struct Applied {
    pub changes: Vec<(String, Change)>,
    pub printed: Vec<serde_json::Value>,
}

/// Writes the Secret and the planned objects (only asks, with `dry`).
pub async fn apply(
    client: &Client,
    ns: &str,
    p: &Packaged,
    prepared: &Prepared,
    dry: bool,
    journal: &Journal,
) -> Result<Applied> {
    let project = &p.project;
    let secret = &prepared.secret;
    let objects = format!(
        "deployment.apps/{}, service/{}, ingress/{}",
        project.deployment_name(),
        project.service_name(),
        project.ingress_name()
    );
    if !dry {
        journal.doing(format!(
            "applying {}{objects} (each is whole: the Deployment names {} and its image, both \
             present)",
            if secret.changed {
                format!("secret/{}, ", project.secret_name())
            } else {
                String::new()
            },
            p.bundle.hash.configmap_name()
        ));
    }
    if secret.changed {
        if dry {
            eprintln!(
                "secret/{} configured (server dry run: not written)",
                project.secret_name()
            );
        } else {
            crate::secrets::store(
                client,
                ns,
                project,
                secret.live.as_ref(),
                &secret.data,
                &secret.times,
            )
            .await?;
            let keys: Vec<&str> = p.flags.secrets.iter().map(|(k, _)| k.as_str()).collect();
            eprintln!(
                "secret/{} configured: set {}",
                project.secret_name(),
                keys.join(", ")
            );
        }
    }
    let [deployment, service, ingress] = &prepared.objects;
    let printed = if dry {
        prepared.objects.iter().map(|o| o.result.clone()).collect()
    } else {
        vec![
            keep::write(
                &Api::<Deployment>::namespaced(client.clone(), ns),
                deployment,
            )
            .await?,
            keep::write(&Api::<Service>::namespaced(client.clone(), ns), service).await?,
            keep::write(&Api::<Ingress>::namespaced(client.clone(), ns), ingress).await?,
        ]
    };
    if !dry {
        // The files' instance, or the one a user chose and this deploy kept.
        let instance = printed
            .first()
            .and_then(|d| d["metadata"]["annotations"][ANNOTATION_INSTANCE].as_str());
        journal.applied(format!("{objects} applied"), instance.map(str::to_string));
    }
    Ok(Applied {
        changes: prepared
            .objects
            .iter()
            .map(|o| (o.what.clone(), o.change))
            .collect(),
        printed,
    })
}
