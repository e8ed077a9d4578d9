//! `kubectl jockey list [-A]`: the projects of a namespace (or all), one line each.

use super::status::{ProjectStatus, summarize};
use crate::cluster::KubeArgs;
use crate::output::{ListingArgs, OutputFormat, print_structured, table};
use crate::settings::ConfigArgs;
use anyhow::{Context, Result};
use jockey_core::names::LABEL_PROJECT;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::networking::v1::Ingress;
use kube::Api;
use kube::api::ListParams;

#[derive(clap::Args, Debug, Clone)]
pub struct ListArgs {
    #[command(flatten)]
    pub listing: ListingArgs,
    #[command(flatten)]
    pub config: ConfigArgs,
}

pub async fn run(kube: &KubeArgs, args: ListArgs) -> Result<()> {
    let cfg = args.config.resolve();
    let cluster = kube.connect().await?;
    let client = &cluster.client;
    let all = args.listing.all_namespaces;
    let (deps, ings): (Api<Deployment>, Api<Ingress>) = if all {
        (Api::all(client.clone()), Api::all(client.clone()))
    } else {
        (
            Api::namespaced(client.clone(), &cluster.namespace),
            Api::namespaced(client.clone(), &cluster.namespace),
        )
    };
    let lp = ListParams::default().labels(LABEL_PROJECT);
    let deps = deps.list(&lp).await.context("listing Deployments")?.items;
    let ings = ings.list(&lp).await.context("listing Ingresses")?.items;
    let mut rows: Vec<ProjectStatus> = deps
        .iter()
        .map(|d| {
            let ing = ings.iter().find(|i| {
                i.metadata.namespace == d.metadata.namespace
                    && i.metadata
                        .labels
                        .as_ref()
                        .and_then(|l| l.get(LABEL_PROJECT))
                        == d.metadata
                            .labels
                            .as_ref()
                            .and_then(|l| l.get(LABEL_PROJECT))
            });
            summarize(d, ing, &cfg.deployment_domain)
        })
        .collect();
    rows.sort_by(|a, b| (&a.namespace, &a.project).cmp(&(&b.namespace, &b.project)));
    match args.listing.output {
        OutputFormat::Json | OutputFormat::Yaml => {
            print_structured(&serde_json::json!({ "items": rows }), args.listing.output)
        }
        format => {
            if rows.is_empty() {
                eprintln!(
                    "No projects found{}.",
                    if all {
                        String::new()
                    } else {
                        format!(" in namespace {}", cluster.namespace)
                    }
                );
                return Ok(());
            }
            let wide = format == OutputFormat::Wide;
            let mut header = Vec::new();
            if all {
                header.push("NAMESPACE");
            }
            header.extend(["PROJECT", "READY", "INSTANCE", "URL"]);
            if wide {
                header.extend(["IMAGE", "ADDRESS"]);
            }
            let table_rows: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    let mut row = Vec::new();
                    if all {
                        row.push(r.namespace.clone());
                    }
                    row.extend([
                        r.project.clone(),
                        r.ready.clone(),
                        r.content_hash.clone().unwrap_or_else(|| "-".into()),
                        r.url.clone(),
                    ]);
                    if wide {
                        row.push(r.image.clone().unwrap_or_else(|| "-".into()));
                        row.push(r.ingress_address.clone().unwrap_or_else(|| "-".into()));
                    }
                    row
                })
                .collect();
            print!("{}", table(&header, &table_rows));
            Ok(())
        }
    }
}
