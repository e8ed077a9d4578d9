//! `kubectl jockey secrets set|list|unset PROJECT`: the project's secret environment, kept only
//! in the Secret `env-PROJECT` (labelled with the project), given to the server by `envFrom`.
//! A change rolls the pods: the pod template carries the SHA-256 of the Secret's data (never the
//! data). Values are never printed, logged or put in an error: only key names are.

use crate::cluster::KubeArgs;

use crate::lifecycle::ownership::project_label;
use crate::output::{OutputFormat, print_structured, table};
use anyhow::{Context, Result, bail};
use jockey_core::ProjectId;
use jockey_core::names::{ANNOTATION_SECRET_CHANGED, ANNOTATION_SECRET_SHA256, LABEL_PROJECT};
use jockey_core::runtime::{check_secret_size, parse_assignment, secret_data_sha256};
use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug, Clone)]
pub struct SecretsArgs {
    #[command(subcommand)]
    pub command: SecretsCommand,
}

#[derive(clap::Args, Debug, Clone)]
pub struct WaitArgs {
    /// Return once the Secret is written, without waiting for the pods to roll.
    #[arg(long)]
    pub no_wait: bool,
    /// How long the rollout may take, e.g. 90s, 5m.
    #[arg(long, default_value = "5m", value_parser = crate::duration::parse)]
    pub timeout: Duration,
}

#[derive(clap::Subcommand, Debug, Clone)]
pub enum SecretsCommand {
    /// Set secret environment variables (KEY=VALUE..., and/or --from-env-file FILE) and roll the
    /// pods so they get them.
    Set {
        project: String,
        /// KEY=VALUE pairs. Prefer --from-env-file: a value on the command line may be kept in
        /// the shell's history and is visible in the process list.
        #[arg(value_name = "KEY=VALUE")]
        assignments: Vec<String>,
        /// A dotenv file (python-dotenv syntax) whose pairs are set; `-` reads standard input.
        #[arg(long, value_name = "FILE")]
        from_env_file: Option<PathBuf>,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// List the secret names and when each last changed (never the values).
    List {
        project: String,
        /// Output format.
        #[arg(short = 'o', long, value_enum, default_value_t = OutputFormat::Table)]
        output: OutputFormat,
    },
    /// Remove secret environment variables and roll the pods.
    Unset {
        project: String,
        #[arg(value_name = "KEY", required = true)]
        keys: Vec<String>,
        #[command(flatten)]
        wait: WaitArgs,
    },
}

/// A dotenv file's pairs, with the file and line in any error (never a value). `-` reads
/// standard input, so a value can come from a password manager's pipe instead of a file on disk
/// or the command line (where the shell history and the process list keep it).
pub fn read_env_file(path: &Path, flag: &str) -> Result<Vec<(String, String)>> {
    let text = if path == Path::new("-") {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .with_context(|| format!("cannot read {flag} - (standard input)"))?;
        text
    } else {
        std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {flag} {}", path.display()))?
    };
    jockey_core::dotenv::parse_env(&text, |k| std::env::var(k).ok())
        .map_err(|e| anyhow::anyhow!(e.in_file(&path.display().to_string())))
}

/// The Secret's data, decoded.
pub fn data_of(secret: &Secret) -> BTreeMap<String, Vec<u8>> {
    secret
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.0.clone()))
        .collect()
}

fn changed_of(secret: &Secret) -> BTreeMap<String, String> {
    secret
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(ANNOTATION_SECRET_CHANGED))
        .and_then(|v| serde_json::from_str(v).ok())
        .unwrap_or_default()
}

/// Reads `env-PROJECT`; refuses one that is not the project's (no label, or another's).
pub async fn read(client: &Client, ns: &str, project: &ProjectId) -> Result<Option<Secret>> {
    let name = project.secret_name();
    let secret = Api::<Secret>::namespaced(client.clone(), ns)
        .get_opt(&name)
        .await
        .with_context(|| format!("reading Secret {ns}/{name}"))?;
    if let Some(s) = &secret {
        let owner = project_label(&s.metadata);
        if owner != Some(project.as_str()) {
            bail!(
                "Secret {ns}/{name} exists but is not project {project}'s (label {LABEL_PROJECT} \
                 is {owner:?}); jockey leaves it alone: delete or rename it, then run again"
            );
        }
    }
    Ok(secret)
}

/// The secret data after setting `set` and removing `unset`, with per-key change times, and
/// whether anything changed. Pure.
pub fn merge(
    live: Option<&Secret>,
    set: &[(String, String)],
    unset: &[String],
    now: &str,
) -> (BTreeMap<String, Vec<u8>>, BTreeMap<String, String>, bool) {
    let mut data = live.map(data_of).unwrap_or_default();
    let mut times = live.map(changed_of).unwrap_or_default();
    let mut changed = live.is_none();
    for (k, v) in set {
        if data.get(k) != Some(&v.as_bytes().to_vec()) {
            data.insert(k.clone(), v.as_bytes().to_vec());
            times.insert(k.clone(), now.to_string());
            changed = true;
        }
    }
    for k in unset {
        if data.remove(k).is_some() {
            changed = true;
        }
        times.remove(k);
    }
    times.retain(|k, _| data.contains_key(k));
    (data, times, changed)
}

/// Creates or replaces `env-PROJECT` with `data` (a replace carries the resourceVersion read, so
/// a concurrent change is refused rather than lost).
pub async fn store(
    client: &Client,
    ns: &str,
    project: &ProjectId,
    live: Option<&Secret>,
    data: &BTreeMap<String, Vec<u8>>,
    times: &BTreeMap<String, String>,
) -> Result<()> {
    check_secret_size(data).map_err(|e| {
        anyhow::anyhow!(
            "Secret {ns}/{}: {e}; nothing was written",
            project.secret_name()
        )
    })?;
    let name = project.secret_name();
    let mut secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(ns.to_string()),
            labels: Some(BTreeMap::from([(
                LABEL_PROJECT.to_string(),
                project.to_string(),
            )])),
            annotations: Some(BTreeMap::from([(
                ANNOTATION_SECRET_CHANGED.to_string(),
                serde_json::to_string(times)?,
            )])),
            ..Default::default()
        },
        type_: Some("Opaque".to_string()),
        data: Some(
            data.iter()
                .map(|(k, v)| (k.clone(), ByteString(v.clone())))
                .collect(),
        ),
        ..Default::default()
    };
    let api = Api::<Secret>::namespaced(client.clone(), ns);
    let params = PostParams {
        field_manager: Some(jockey_core::names::FIELD_MANAGER.to_string()),
        ..Default::default()
    };
    match live {
        None => api
            .create(&params, &secret)
            .await
            .map(|_| ())
            .with_context(|| format!("creating Secret {ns}/{name}")),
        Some(l) => {
            secret.metadata.resource_version = l.metadata.resource_version.clone();
            // Keep what others put on it (their labels and annotations).
            for (k, v) in l.metadata.labels.iter().flatten() {
                secret
                    .metadata
                    .labels
                    .get_or_insert_with(BTreeMap::new)
                    .entry(k.clone())
                    .or_insert(v.clone());
            }
            for (k, v) in l.metadata.annotations.iter().flatten() {
                secret
                    .metadata
                    .annotations
                    .get_or_insert_with(BTreeMap::new)
                    .entry(k.clone())
                    .or_insert(v.clone());
            }
            api.replace(&name, &params, &secret)
                .await
                .map(|_| ())
                .with_context(|| {
                    format!("replacing Secret {ns}/{name} (if it changed meanwhile, run again)")
                })
        }
    }
}

/// Points the Deployment's pod template at the Secret's new digest (a rollout), if the project
/// has a Deployment; returns whether it was changed.
async fn roll(client: &Client, ns: &str, project: &ProjectId, sha: &str) -> Result<bool> {
    let name = project.deployment_name();
    let api = Api::<Deployment>::namespaced(client.clone(), ns);
    let Some(dep) = api
        .get_opt(&name)
        .await
        .with_context(|| format!("reading Deployment {ns}/{name}"))?
    else {
        eprintln!(
            "no Deployment {ns}/{name} yet: `kubectl jockey deploy` starts it with these secrets"
        );
        return Ok(false);
    };
    let owner = project_label(&dep.metadata);
    if owner != Some(project.as_str()) {
        bail!(
            "Deployment {ns}/{name} is not project {project}'s (label {LABEL_PROJECT} is \
             {owner:?}); the Secret was written but no pods were rolled"
        );
    }
    let current = dep
        .spec
        .template
        .metadata
        .as_ref()
        .and_then(|m| m.annotations.as_ref())
        .and_then(|a| a.get(ANNOTATION_SECRET_SHA256));
    if current.map(String::as_str) == Some(sha) {
        return Ok(false);
    }
    let patch = serde_json::json!({"spec": {"template": {"metadata": {"annotations": {
        ANNOTATION_SECRET_SHA256: sha }}}}});
    let params = PatchParams {
        field_manager: Some(jockey_core::names::FIELD_MANAGER.to_string()),
        ..Default::default()
    };
    api.patch(&name, &params, &Patch::Merge(&patch))
        .await
        .with_context(|| format!("rolling Deployment {ns}/{name} onto the new secrets"))?;
    Ok(true)
}

fn now() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

pub async fn run(kube: &KubeArgs, args: SecretsArgs) -> Result<()> {
    match args.command {
        SecretsCommand::Set {
            project,
            assignments,
            from_env_file,
            wait,
        } => {
            // Everything is checked before the cluster is contacted.
            let project = ProjectId::parse(&project)?;
            let mut set = Vec::new();
            if let Some(f) = &from_env_file {
                set.extend(read_env_file(f, "--from-env-file")?);
            }
            for a in &assignments {
                set.push(parse_assignment(a).map_err(|e| {
                    anyhow::anyhow!("secrets set {project}: {e}; nothing was written")
                })?);
            }
            if set.is_empty() {
                bail!(
                    "secrets set {project}: nothing to set; pass KEY=VALUE arguments or \
                     --from-env-file FILE"
                );
            }
            change(kube, &project, &set, &[], wait).await
        }
        SecretsCommand::Unset {
            project,
            keys,
            wait,
        } => {
            let project = ProjectId::parse(&project)?;
            for k in &keys {
                jockey_core::runtime::check_env_name(k)
                    .map_err(|e| anyhow::anyhow!("secrets unset {project}: {e}"))?;
            }
            change(kube, &project, &[], &keys, wait).await
        }
        SecretsCommand::List { project, output } => {
            let project = ProjectId::parse(&project)?;
            let cluster = kube.connect().await?;
            let ns = cluster.namespace.as_str();
            let secret = read(&cluster.client, ns, &project).await?;
            let times = secret.as_ref().map(changed_of).unwrap_or_default();
            let keys: Vec<(String, String)> = secret
                .as_ref()
                .map(data_of)
                .unwrap_or_default()
                .into_keys()
                .map(|k| {
                    let t = times.get(&k).cloned().unwrap_or_default();
                    (k, t)
                })
                .collect();
            match output {
                OutputFormat::Json | OutputFormat::Yaml => {
                    let items: Vec<serde_json::Value> = keys
                        .iter()
                        .map(|(k, t)| serde_json::json!({"name": k, "changed": t}))
                        .collect();
                    print_structured(
                        &serde_json::json!({"project": project.as_str(), "namespace": ns,
                            "secret": project.secret_name(), "keys": items}),
                        output,
                    )
                }
                _ => {
                    if keys.is_empty() {
                        eprintln!("project {project} has no secrets in namespace {ns}");
                        return Ok(());
                    }
                    let rows: Vec<Vec<String>> = keys
                        .into_iter()
                        .map(|(k, t)| vec![k, if t.is_empty() { "-".into() } else { t }])
                        .collect();
                    print!("{}", table(&["NAME", "CHANGED"], &rows));
                    Ok(())
                }
            }
        }
    }
}

async fn change(
    kube: &KubeArgs,
    project: &ProjectId,
    set: &[(String, String)],
    unset: &[String],
    wait: WaitArgs,
) -> Result<()> {
    let deadline = Instant::now() + wait.timeout;
    let cluster = kube.connect().await?;
    let (client, ns) = (&cluster.client, cluster.namespace.as_str());
    let live = read(client, ns, project).await?;
    let present = live.as_ref().map(data_of).unwrap_or_default();
    let missing: Vec<&String> = unset.iter().filter(|k| !present.contains_key(*k)).collect();
    if !missing.is_empty() {
        let names: Vec<&str> = missing.iter().map(|s| s.as_str()).collect();
        bail!(
            "secrets unset {project}: {} not set in Secret {ns}/{}; `kubectl jockey secrets list \
             {project} -n {ns}` shows the names (nothing was written)",
            names.join(", "),
            project.secret_name()
        );
    }
    let (data, times, changed) = merge(live.as_ref(), set, unset, &now());
    let name = project.secret_name();
    if changed {
        store(client, ns, project, live.as_ref(), &data, &times).await?;
        let what: Vec<&str> = set
            .iter()
            .map(|(k, _)| k.as_str())
            .chain(unset.iter().map(String::as_str))
            .collect();
        let verb = if unset.is_empty() { "set" } else { "unset" };
        eprintln!("secret/{name} configured: {verb} {}", what.join(", "));
    } else {
        eprintln!("secret/{name} unchanged: the values are already set; nothing was written");
    }
    let rolled = roll(client, ns, project, &secret_data_sha256(&data)).await?;
    if !rolled {
        return Ok(());
    }
    eprintln!("deployment.apps/{} rolling onto the new secrets", project);
    if wait.no_wait {
        eprintln!("(not waiting for the rollout: --no-wait)");
        return Ok(());
    }
    crate::rollout::wait(client, ns, project, deadline, wait.timeout).await?;
    eprintln!("deployment {ns}/{project} is available with the new secrets");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(data: &[(&str, &str)], times: &[(&str, &str)]) -> Secret {
        let times: BTreeMap<&str, &str> = times.iter().copied().collect();
        Secret {
            metadata: kube::api::ObjectMeta {
                annotations: Some(BTreeMap::from([(
                    ANNOTATION_SECRET_CHANGED.to_string(),
                    serde_json::to_string(&times).unwrap(),
                )])),
                ..Default::default()
            },
            data: Some(
                data.iter()
                    .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                    .collect(),
            ),
            ..Default::default()
        }
    }

    #[test]
    fn merge_stamps_only_changed_keys_and_reports_no_change() {
        let live = secret(&[("A", "1"), ("B", "2")], &[("A", "t0"), ("B", "t0")]);
        let (data, times, changed) = merge(
            Some(&live),
            &[("A".into(), "1".into()), ("C".into(), "3".into())],
            &[],
            "t1",
        );
        assert!(changed);
        assert_eq!(data["C"], b"3");
        assert_eq!(times["A"], "t0", "unchanged value keeps its time");
        assert_eq!(times["C"], "t1");
        let (_, _, changed) = merge(Some(&live), &[("A".into(), "1".into())], &[], "t1");
        assert!(!changed, "setting the same value writes nothing");
        let (data, times, changed) = merge(Some(&live), &[], &["B".into()], "t1");
        assert!(changed && !data.contains_key("B") && !times.contains_key("B"));
        let (_, _, changed) = merge(None, &[("A".into(), "1".into())], &[], "t1");
        assert!(changed);
    }
}
