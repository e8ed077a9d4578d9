//! `kubectl jockey rollback PROJECT [--to <h>]`: re-point the Deployment at an earlier instance
//! (its ConfigMap and the image built from it); nothing is rebuilt. [`rollback_target`] and
//! [`instance_history`] decide, purely.

use super::instances::{
    Instance, deployment_instance, instance_selector, instances_of, template_refs,
};
use super::ownership::check_owner;
use crate::cluster::KubeArgs;
use crate::deploy::keep;
use crate::settings::ConfigArgs;
use anyhow::{Context, Result, bail};
use jockey_core::names::{
    ANNOTATION_CONTENT_SHA256, ANNOTATION_SECRET_SHA256, LABEL_APP, short_hash_of_configmap,
};
use jockey_core::ownership::deployment::instance_fields;
use jockey_core::ownership::printed;
use jockey_core::{ContentHash, ProjectId, defaults};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::ListParams;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug, Clone)]
pub struct RollbackArgs {
    pub project: String,
    /// The content hash (`<h>`, a unique prefix of it, or `instance-<h>`) to go back to;
    /// default: the instance deployed before the current one.
    #[arg(long, value_name = "HASH")]
    pub to: Option<String>,
    /// Return once the Deployment is re-pointed, without waiting for the rollout.
    #[arg(long)]
    pub no_wait: bool,
    /// How long the rollout may take, e.g. 120s, 5m.
    #[arg(long, default_value = "5m", value_parser = crate::duration::parse)]
    pub timeout: Duration,
    #[command(flatten)]
    pub config: ConfigArgs,
}

/// The instances a Deployment went through, newest revision first, from its ReplicaSets (each
/// keeps the instance annotation and volume of the revision it was made for). Pure.
pub fn instance_history(dep: &Deployment, rss: &[ReplicaSet]) -> Vec<String> {
    let uid = dep.metadata.uid.clone().unwrap_or_default();
    let mut revisions: Vec<(u64, String)> = rss
        .iter()
        .filter(|rs| {
            rs.metadata
                .owner_references
                .iter()
                .flatten()
                .any(|o| o.uid == uid)
        })
        .filter_map(|rs| {
            let revision = rs
                .metadata
                .annotations
                .as_ref()?
                .get("deployment.kubernetes.io/revision")?
                .parse()
                .ok()?;
            let mut refs = BTreeSet::new();
            template_refs(
                "",
                rs.metadata.annotations.as_ref(),
                rs.spec.template.as_ref(),
                &mut refs,
            );
            let instance = refs
                .into_iter()
                .map(|(_, n)| n)
                .find(|n| short_hash_of_configmap(n).is_some())?;
            Some((revision, instance))
        })
        .collect();
    revisions.sort_by_key(|r| std::cmp::Reverse(r.0));
    revisions.into_iter().map(|(_, i)| i).collect()
}

/// Which instance `rollback` goes to: `--to` (a hash, unique prefix or ConfigMap name), else
/// the instance of the Deployment's previous revision that differs from the current one, else
/// the newest instance created before the current one. Pure.
pub fn rollback_target(
    instances: &[Instance],
    history: &[String],
    current: Option<&str>,
    to: Option<&str>,
) -> Result<String, String> {
    if to.is_none()
        && let Some(previous) = history
            .iter()
            .find(|h| Some(h.as_str()) != current && instances.iter().any(|i| &i.name == *h))
    {
        return Ok(previous.clone());
    }
    let mut sorted: Vec<&Instance> = instances.iter().collect();
    sorted.sort_by(|a, b| (&a.created, a.rv).cmp(&(&b.created, b.rv)));
    if let Some(to) = to {
        let want = to
            .trim()
            .trim_start_matches("instance-")
            .to_ascii_lowercase();
        if want.is_empty() {
            return Err(
                "--to is empty; pass a content hash as `kubectl jockey status` shows it".into(),
            );
        }
        let matches: Vec<&&Instance> = sorted
            .iter()
            .filter(|i| i.name["instance-".len()..].starts_with(&want))
            .collect();
        return match matches.as_slice() {
            [one] => Ok(one.name.clone()),
            [] => Err(format!(
                "no instance ConfigMap matches {to:?}; available: {}",
                list_names(&sorted)
            )),
            many => Err(format!(
                "{to:?} matches {} instances ({}); give more digits",
                many.len(),
                many.iter()
                    .map(|i| i.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        };
    }
    let position = current.and_then(|c| sorted.iter().position(|i| i.name == c));
    let candidate = match position {
        Some(p) if p > 0 => Some(sorted[p - 1]),
        Some(_) => None,
        None => sorted
            .iter()
            .rev()
            .find(|i| Some(i.name.as_str()) != current)
            .copied(),
    };
    candidate.map(|i| i.name.clone()).ok_or_else(|| {
        format!(
            "there is no earlier instance to roll back to (instances: {}); deploy the files you \
             want instead",
            list_names(&sorted)
        )
    })
}

fn list_names(sorted: &[&Instance]) -> String {
    if sorted.is_empty() {
        "none".into()
    } else {
        sorted
            .iter()
            .map(|i| i.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

pub async fn run(kube: &KubeArgs, args: RollbackArgs) -> Result<()> {
    let project = ProjectId::parse(&args.project)?;
    let cfg = args.config.resolve();
    let cluster = kube.connect().await?;
    let (client, ns) = (&cluster.client, cluster.namespace.as_str());
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let dep = deployments
        .get_opt(&project.deployment_name())
        .await
        .with_context(|| format!("reading Deployment {ns}/{project}"))?
        .with_context(|| {
            format!(
                "project {project} has no Deployment in namespace {ns}; nothing to roll back \
                 (pass -n with the project's namespace, or deploy it first with `kubectl jockey \
                 deploy DIR --project {project}`)"
            )
        })?;
    // A same-named Deployment that is not the project's is never re-pointed.
    if let Err(left) = check_owner("deployment.apps", &dep.metadata, &project) {
        println!("{left}");
        bail!("cannot roll back {ns}/{project}: {}", left.why);
    }
    let current = deployment_instance(&dep);
    let all = cms
        .list(&ListParams::default().labels(&instance_selector(Some(&project))))
        .await
        .with_context(|| format!("listing the instance ConfigMaps of {project}"))?
        .items;
    let rss = Api::<ReplicaSet>::namespaced(client.clone(), ns)
        .list(&ListParams::default().labels(&format!("{LABEL_APP}={project}")))
        .await
        .with_context(|| format!("listing the ReplicaSets of {project}"))?
        .items;
    let history = instance_history(&dep, &rss);
    // Identical files in two projects share one `instance-<h>`, labelled with the project that
    // made it first: the project's own history counts as its instances too.
    let mut all = all;
    for name in &history {
        if !all.iter().any(|c| c.metadata.name.as_ref() == Some(name))
            && let Some(cm) = cms
                .get_opt(name)
                .await
                .with_context(|| format!("reading ConfigMap {ns}/{name}"))?
        {
            all.push(cm);
        }
    }
    let target_name = rollback_target(
        &instances_of(&all),
        &history,
        current.as_deref(),
        args.to.as_deref(),
    )
    .map_err(|e| anyhow::anyhow!("cannot roll back {ns}/{project}: {e}"))?;
    let target = all
        .iter()
        .find(|c| c.metadata.name.as_deref() == Some(target_name.as_str()))
        .context("the chosen instance ConfigMap vanished")?;
    let hash = target
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(ANNOTATION_CONTENT_SHA256))
        .and_then(|h| ContentHash::parse_full(h))
        .with_context(|| {
            format!(
                "ConfigMap {ns}/{target_name} lacks a valid {ANNOTATION_CONTENT_SHA256} \
                 annotation; it was not written by jockey, so it cannot be rolled back to"
            )
        })?;
    // The image that instance was built into; no rebuild.
    let image = match crate::build::image_record::recorded_image_of(target, &project) {
        Some(i) => i,
        None => bail!(
            "instance {target_name} has no built image recorded (its build never finished); \
             deploy its files again instead"
        ),
    };
    let mut rendered = defaults::render_deployment(&project, &hash);
    // The runtime settings (replicas, resources, env, the Secret's digest) stay as they are.
    let secret_sha = dep
        .spec
        .template
        .metadata
        .as_ref()
        .and_then(|m| m.annotations.as_ref())
        .and_then(|a| a.get(ANNOTATION_SECRET_SHA256))
        .cloned();
    jockey_core::runtime::apply_settings(
        &mut rendered,
        Some(&dep),
        &Default::default(),
        secret_sha.as_deref(),
    );
    if let Some(pod) = rendered.spec.template.spec.as_mut() {
        for c in &mut pod.containers {
            c.image = Some(image.clone());
        }
    }
    // The same defaulting as the webhook's, knowing the record: a dependency image (the
    // built-in template) gets that instance's files unpacked at pod start.
    let mut deployment = defaults::default_deployment_with(&rendered, &cfg, &vec![target.clone()])?;
    deployment.metadata.namespace = Some(ns.to_string());
    // The uid makes the apply fail, rather than write, should the Deployment have been
    // replaced by another one since it was checked above.
    deployment.metadata.uid = dep.metadata.uid.clone();
    // The instance is what a rollback changes, whoever moved it last; everything else users
    // changed with kubectl stays theirs, as with `deploy`.
    let instance = instance_fields();
    let take: Vec<String> = instance.iter().map(|s| printed(s)).collect();
    let planned = keep::plan(
        &deployments,
        format!("deployment.apps/{}", project.deployment_name()),
        Some(&serde_json::to_value(&dep)?),
        &serde_json::to_value(&deployment)?,
        &keep::Rules {
            purposeful: &instance,
            take: &take,
            force: false,
        },
    )
    .await
    .with_context(|| format!("re-pointing Deployment {ns}/{project} at {target_name}"))?;
    keep::write(&deployments, &planned)
        .await
        .with_context(|| format!("re-pointing Deployment {ns}/{project} at {target_name}"))?;
    let files = if jockey_core::image::is_dependency_image(&image) {
        format!("; its files from {target_name} at pod start")
    } else {
        String::new()
    };
    eprintln!(
        "deployment.apps/{project} rolled back: {} -> {target_name} (image {image}{files}; \
         nothing built)",
        current.as_deref().unwrap_or("(none)")
    );
    if args.no_wait {
        return Ok(());
    }
    let deadline = Instant::now() + args.timeout;
    crate::rollout::wait(client, ns, &project, deadline, args.timeout).await?;
    println!("deployment {ns}/{project} is available ({target_name})");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::instances::test_instance as inst;
    use super::*;

    const A: &str = "aaaaaaaaaaaaaaaa";
    const B: &str = "bbbbbbbbbbbbbbbb";
    const C: &str = "cccccccccccccccc";

    #[test]
    fn rollback_goes_to_the_previous_instance_by_default() {
        let list = vec![inst(A, "p", "1"), inst(B, "p", "2"), inst(C, "p", "3")];
        let cur = format!("instance-{C}");
        assert_eq!(
            rollback_target(&list, &[], Some(&cur), None),
            Ok(format!("instance-{B}"))
        );
        let cur = format!("instance-{B}");
        assert_eq!(
            rollback_target(&list, &[], Some(&cur), None),
            Ok(format!("instance-{A}"))
        );
        let cur = format!("instance-{A}");
        assert!(
            rollback_target(&list, &[], Some(&cur), None)
                .unwrap_err()
                .contains("no earlier")
        );
    }

    #[test]
    fn rollback_prefers_the_deployment_history_over_creation_order() {
        // C was created last but B was deployed before the current A (a rollback happened).
        let list = vec![inst(A, "p", "1"), inst(B, "p", "2"), inst(C, "p", "3")];
        let history = vec![
            format!("instance-{A}"),
            format!("instance-{B}"),
            format!("instance-{C}"),
        ];
        let cur = format!("instance-{A}");
        assert_eq!(
            rollback_target(&list, &history, Some(&cur), None),
            Ok(format!("instance-{B}"))
        );
    }

    #[test]
    fn rollback_to_accepts_hash_prefix_and_name() {
        let list = vec![inst(A, "p", "1"), inst(B, "p", "2")];
        assert_eq!(
            rollback_target(&list, &[], None, Some("aaaa")),
            Ok(format!("instance-{A}"))
        );
        assert_eq!(
            rollback_target(&list, &[], None, Some(&format!("instance-{B}"))),
            Ok(format!("instance-{B}"))
        );
        let err = rollback_target(&list, &[], None, Some("ffff")).unwrap_err();
        assert!(
            err.contains("no instance ConfigMap matches") && err.contains(A),
            "{err}"
        );
        let ab = vec![
            inst("abcd000000000000", "p", "1"),
            inst("abcd111111111111", "p", "2"),
        ];
        assert!(
            rollback_target(&ab, &[], None, Some("abcd"))
                .unwrap_err()
                .contains("give more digits")
        );
    }
}
