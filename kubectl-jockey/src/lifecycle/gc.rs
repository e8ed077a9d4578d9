//! `kubectl jockey gc [--keep N] [--dry-run]`: remove instance ConfigMaps that no Deployment or
//! retained ReplicaSet references, beyond the newest N per project. [`collectable`] decides.
//! Only ConfigMaps labelled with a project are candidates; one named like an instance without
//! the label is not jockey's and is reported as left alone.

use super::instances::{Instance, instance_selector, instances_of, is_instance_name, referenced};
use super::ownership::LeftAlone;
use crate::cluster::{KubeArgs, is_not_found};
use anyhow::{Context, Result};
use jockey_core::build_request::BuildRequest;
use jockey_core::names::{LABEL_CONTENT_HASH, LABEL_PROJECT};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{DeleteParams, ListParams, Preconditions};
use kube::{Api, Client};
use std::collections::{BTreeMap, BTreeSet};

#[derive(clap::Args, Debug, Clone)]
pub struct GcArgs {
    /// Instance ConfigMaps to keep per project, newest first, besides those still referenced.
    #[arg(long, default_value_t = 3)]
    pub keep: usize,
    /// Print what would be removed; remove nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Collect in all namespaces.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Never collect an instance younger than this, e.g. 30m, 2h: a deploy may still be
    /// building it (a build may take the deploy's --timeout). Instances of builds still running
    /// are kept whatever their age.
    #[arg(long, default_value = "1h", value_parser = crate::duration::parse)]
    pub min_age: std::time::Duration,
    #[command(flatten)]
    pub config: crate::settings::ConfigArgs,
}

/// What protects an instance besides references: its age, and a build still running for it.
#[derive(Debug, Clone, Default)]
pub struct Grace {
    /// Seconds since the epoch, now.
    pub now: i64,
    pub min_age_seconds: i64,
    /// (project, short hash) of the unfinished build Jobs.
    pub building: BTreeSet<(String, String)>,
}

impl Grace {
    fn protects(&self, i: &Instance) -> bool {
        let created = i
            .created
            .trim_matches('"')
            .parse::<k8s_openapi::jiff::Timestamp>()
            .map(|t| t.as_second());
        // An unreadable creation time protects: gc errs on the side of keeping.
        let young = created
            .ok()
            .is_none_or(|c| self.now - c < self.min_age_seconds);
        let hash = i.name.strip_prefix("instance-").unwrap_or_default();
        young
            || self
                .building
                .contains(&(i.project.clone(), hash.to_string()))
    }
}

/// The instance ConfigMaps `gc` removes: per project, everything that is neither referenced nor
/// among the newest `keep`. Pure.
pub fn collectable(
    instances: &[Instance],
    referenced: &BTreeSet<(String, String)>,
    keep: usize,
    grace: &Grace,
) -> Vec<Instance> {
    let mut by_project: BTreeMap<(String, String), Vec<&Instance>> = BTreeMap::new();
    for i in instances {
        by_project
            .entry((i.namespace.clone(), i.project.clone()))
            .or_default()
            .push(i);
    }
    let mut out = Vec::new();
    for (_, mut list) in by_project {
        list.sort_by(|a, b| (&b.created, b.rv).cmp(&(&a.created, a.rv)));
        for i in list.into_iter().skip(keep) {
            if !referenced.contains(&(i.namespace.clone(), i.name.clone())) && !grace.protects(i) {
                out.push(i.clone());
            }
        }
    }
    out
}

/// (project, short hash) of the namespace's builds that have not finished, from its build
/// requests: their instance is the broker's input until the build is over.
async fn running_builds(client: &Client, ns: &str) -> BTreeSet<(String, String)> {
    let list = match Api::<BuildRequest>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
    {
        Ok(list) => list,
        Err(e) => {
            eprintln!(
                "gc: running builds in namespace {ns} skipped ({}); instances younger than \
                 --min-age are kept all the same",
                crate::cluster::api_message(&e)
            );
            return BTreeSet::new();
        }
    };
    list.items
        .into_iter()
        .filter(|r| !r.phase().is_final())
        .filter_map(|r| {
            let l = r.metadata.labels?;
            Some((
                l.get(LABEL_PROJECT)?.clone(),
                l.get(LABEL_CONTENT_HASH)?.clone(),
            ))
        })
        .collect()
}

pub async fn run(kube: &KubeArgs, args: GcArgs) -> Result<()> {
    let cluster = kube.connect().await?;
    let client: &Client = &cluster.client;
    let ns = cluster.namespace.as_str();
    let (cms, deps, rss): (Api<ConfigMap>, Api<Deployment>, Api<ReplicaSet>) =
        if args.all_namespaces {
            (
                Api::all(client.clone()),
                Api::all(client.clone()),
                Api::all(client.clone()),
            )
        } else {
            (
                Api::namespaced(client.clone(), ns),
                Api::namespaced(client.clone(), ns),
                Api::namespaced(client.clone(), ns),
            )
        };
    let instances = instances_of(
        &cms.list(&ListParams::default().labels(&instance_selector(None)))
            .await
            .context("listing instance ConfigMaps")?
            .items,
    );
    let deps = deps
        .list(&ListParams::default())
        .await
        .context("listing Deployments")?
        .items;
    let rss = rss
        .list(&ListParams::default())
        .await
        .context("listing ReplicaSets")?
        .items;
    // Named like instances but without the project label: not jockey's, never collected.
    let unlabelled = cms
        .list_metadata(&ListParams::default().labels(&format!("!{LABEL_PROJECT}")))
        .await
        .context("listing unlabelled ConfigMaps")?
        .items;
    for cm in &unlabelled {
        let name = cm.metadata.name.clone().unwrap_or_default();
        if is_instance_name(&name) {
            let left = LeftAlone::unlabelled(format!("configmap/{name}"));
            println!(
                "{} (namespace {})",
                left,
                cm.metadata.namespace.as_deref().unwrap_or_default()
            );
        }
    }
    let refs = referenced(&deps, &rss);
    let grace = Grace {
        now: k8s_openapi::jiff::Timestamp::now().as_second(),
        min_age_seconds: args.min_age.as_secs() as i64,
        building: running_builds(client, ns).await,
    };
    let garbage = collectable(&instances, &refs, args.keep, &grace);
    for i in &garbage {
        if args.dry_run {
            println!(
                "configmap/{} would be deleted (namespace {}, project {}; unreferenced, older than the newest {})",
                i.name, i.namespace, i.project, args.keep
            );
        } else {
            match Api::<ConfigMap>::namespaced(client.clone(), &i.namespace)
                .delete(
                    &i.name,
                    &DeleteParams {
                        preconditions: Some(Preconditions {
                            uid: i.uid.clone(),
                            resource_version: None,
                        }),
                        ..Default::default()
                    },
                )
                .await
            {
                Ok(_) => println!(
                    "configmap/{} deleted (namespace {}, project {})",
                    i.name, i.namespace, i.project
                ),
                Err(e) if is_not_found(&e) => {}
                Err(e) => {
                    return Err(e)
                        .with_context(|| format!("deleting ConfigMap {}/{}", i.namespace, i.name));
                }
            }
        }
    }
    eprintln!(
        "gc: {} of {} instance ConfigMap(s) {}; {} kept (referenced or among the newest {} per project)",
        garbage.len(),
        instances.len(),
        if args.dry_run {
            "would be deleted"
        } else {
            "deleted"
        },
        instances.len() - garbage.len(),
        args.keep
    );
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
    fn gc_keeps_the_newest_and_everything_referenced() {
        let list = vec![
            inst(A, "p", "\"2020-01-01T00:00:01Z\""),
            inst(B, "p", "\"2020-01-01T00:00:02Z\""),
            inst(C, "p", "\"2020-01-01T00:00:03Z\""),
            inst(A, "q", "\"2020-01-01T00:00:01Z\""),
        ];
        let none = BTreeSet::new();
        let g = collectable(&list, &none, 1, &old());
        let names: Vec<_> = g
            .iter()
            .map(|i| (i.project.as_str(), i.name.as_str()))
            .collect();
        assert_eq!(
            names,
            vec![
                ("p", format!("instance-{B}").as_str()),
                ("p", format!("instance-{A}").as_str())
            ]
        );
        let refs = BTreeSet::from([("ns".to_string(), format!("instance-{A}"))]);
        let g = collectable(&list, &refs, 1, &old());
        assert_eq!(g.len(), 1);
        assert_eq!(g[0].name, format!("instance-{B}"));
        assert!(collectable(&list, &none, 3, &old()).is_empty());
    }

    /// Long after every test instance was made.
    fn old() -> Grace {
        Grace {
            now: 4_000_000_000,
            min_age_seconds: 3600,
            building: BTreeSet::new(),
        }
    }

    #[test]
    fn young_instances_and_running_builds_are_never_collected() {
        let t = "\"2026-01-01T00:00:00Z\"";
        let list = vec![inst(A, "p", t), inst(B, "p", t)];
        let none = BTreeSet::new();
        let created = 1_767_225_600; // 2026-01-01T00:00:00Z
        let young = Grace {
            now: created + 600,
            min_age_seconds: 3600,
            building: BTreeSet::new(),
        };
        assert!(collectable(&list, &none, 0, &young).is_empty());
        let aged = Grace {
            now: created + 7200,
            ..young.clone()
        };
        assert_eq!(collectable(&list, &none, 0, &aged).len(), 2);
        let building = Grace {
            building: BTreeSet::from([("p".to_string(), A.to_string())]),
            ..aged
        };
        let g = collectable(&list, &none, 0, &building);
        assert_eq!(g.len(), 1);
        assert_eq!(g[0].name, format!("instance-{B}"));
        let unreadable = vec![inst(C, "p", "garbage")];
        assert!(collectable(&unreadable, &none, 0, &old()).is_empty());
    }
}
