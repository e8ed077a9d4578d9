//! `kubectl jockey deploy [DIR] --project PROJECT`: package DIR into an instance bundle, build its
//! image (skipped when already built), server-side apply the labelled objects and wait for the
//! rollout.

use crate::build_run;
use crate::cluster::{KubeArgs, apply_params};
use crate::image_record;
use crate::kaniko::BuildPlan;
use crate::output::{OutputFormat, print_structured};
use crate::settings::ConfigArgs;
use anyhow::{Context, Result, bail};
use jockey_core::alb_annotations as alb;
use jockey_core::bundle::{Bundle, bundle_dir, instance_configmap};
use jockey_core::names::{ANNOTATION_CONTENT_SHA256, LABEL_PROJECT};
use jockey_core::policy::Policy;
use jockey_core::runtime::RuntimeSettings;
use jockey_core::{Config, ProjectId, defaults};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Service};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::Patch;
use kube::{Api, Client};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// `--dry-run` as kubectl spells it.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum DryRun {
    /// Write for real.
    None,
    /// Print what would be written; contact no cluster.
    Client,
    /// Ask the API server to validate and default everything; write nothing.
    Server,
}

#[derive(clap::Args, Debug, Clone)]
pub struct DeployArgs {
    /// The project directory (server.py, providers/, requirements.txt, maybe a Dockerfile).
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// The project id: a DNS-1123 label of at most 48 characters, usually a UUID.
    #[arg(long, short = 'p')]
    pub project: String,
    /// `client`: print what would be written, contact no cluster; `server`: the API server
    /// checks everything, nothing is written.
    #[arg(long, value_enum, require_equals = true, num_args = 0..=1,
          default_missing_value = "client", default_value = "none")]
    pub dry_run: DryRun,
    /// Print the objects (applied, or that would be applied) as yaml or json.
    #[arg(short = 'o', long, value_parser = ["yaml", "json"])]
    pub output: Option<String>,
    /// Return once the objects are applied, without waiting for the rollout.
    #[arg(long)]
    pub no_wait: bool,
    /// How long the build and the rollout may take together, e.g. 90s, 5m, 1.5h.
    #[arg(long, default_value = "5m", value_parser = crate::duration::parse)]
    pub timeout: Duration,
    /// Stream the builder's log while the image builds.
    #[arg(long, short = 'f')]
    pub follow: bool,
    #[command(flatten)]
    pub runtime: crate::runtime_args::RuntimeArgs,
    #[command(flatten)]
    pub config: ConfigArgs,
}

impl DeployArgs {
    pub fn output_format(&self) -> Option<OutputFormat> {
        match self.output.as_deref() {
            Some("json") => Some(OutputFormat::Json),
            Some("yaml") => Some(OutputFormat::Yaml),
            _ => None,
        }
    }
}

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
    let mut deployment = defaults::default_deployment(&minimal, cfg)?;
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

/// Prints objects the way kubectl does: YAML documents separated by `---`, or a JSON `List`,
/// without `managedFields` (kubectl hides them too).
pub fn print_objects(objects: &[serde_json::Value], format: OutputFormat) -> Result<()> {
    let objects: Vec<serde_json::Value> = objects
        .iter()
        .map(|o| {
            let mut o = o.clone();
            if let Some(meta) = o.get_mut("metadata").and_then(|m| m.as_object_mut()) {
                meta.remove("managedFields");
            }
            o
        })
        .collect();
    let objects = objects.as_slice();
    match format {
        OutputFormat::Json => print_structured(
            &serde_json::json!({ "apiVersion": "v1", "kind": "List", "items": objects }),
            OutputFormat::Json,
        ),
        _ => {
            let mut out = String::new();
            for (i, o) in objects.iter().enumerate() {
                if i > 0 {
                    out.push_str("---\n");
                }
                out.push_str(&serde_yaml::to_string(o).context("rendering YAML")?);
            }
            print!("{out}");
            Ok(())
        }
    }
}

/// What the API server would keep of an object, for "did anything change": the fields a write
/// could change, without the bookkeeping every read differs in.
pub fn comparable(obj: &serde_json::Value) -> serde_json::Value {
    let mut v = obj.clone();
    if let Some(meta) = v.get_mut("metadata").and_then(|m| m.as_object_mut()) {
        for k in [
            "managedFields",
            "resourceVersion",
            "generation",
            "creationTimestamp",
            "uid",
        ] {
            meta.remove(k);
        }
    }
    if let Some(o) = v.as_object_mut() {
        o.remove("status");
    }
    v
}

/// kubectl's words for what a write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Created,
    Configured,
    Unchanged,
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Change::Created => "created",
            Change::Configured => "configured",
            Change::Unchanged => "unchanged",
        })
    }
}

/// Server-side applies `obj` unless the server says the result would equal what is live:
/// a redeploy of unchanged files must not bump any resourceVersion. With `dry_run`, only asks.
async fn apply_if_changed<K>(
    api: &Api<K>,
    obj: &K,
    dry_run: bool,
) -> Result<(Change, serde_json::Value)>
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + serde::Serialize
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let name = obj.meta().name.clone().unwrap_or_default();
    let what = format!(
        "{} {}/{name}",
        K::kind(&()),
        obj.meta().namespace.clone().unwrap_or_default()
    );
    let live = api
        .get_opt(&name)
        .await
        .with_context(|| format!("reading {what}"))?;
    let would = api
        .patch(&name, &apply_params(true), &Patch::Apply(obj))
        .await
        .with_context(|| format!("checking {what} with the API server (dry run)"))?;
    let would_json = serde_json::to_value(&would)?;
    let change = match &live {
        None => Change::Created,
        Some(live) if comparable(&serde_json::to_value(live)?) == comparable(&would_json) => {
            return Ok((Change::Unchanged, serde_json::to_value(live)?));
        }
        Some(_) => Change::Configured,
    };
    if dry_run {
        return Ok((change, would_json));
    }
    let applied = api
        .patch(&name, &apply_params(false), &Patch::Apply(obj))
        .await
        .with_context(|| format!("applying {what}"))?;
    Ok((change, serde_json::to_value(&applied)?))
}

/// Where the project's Ingress goes, as the cluster's jockey-webhook decides it: the server is
/// asked with a dry run of the Ingress without a group and without group-wide settings, and the
/// webhook's answer (an existing Ingress keeps its group; a new one may be sharded over `G-2`,
/// `G-3`, …; the settings are the admin's policy) is then written explicitly. Without a webhook
/// the dry run comes back without them: an existing Ingress keeps its group, a new one goes to
/// the shared group, with jockey's default settings.
async fn place(
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

/// Refuses, before anything is written, to take over a Deployment, Service or Ingress of the
/// project's names that jockey did not make for this project (no project label, or another's):
/// applying over it would silently replace someone else's workload.
async fn refuse_foreign_objects(client: &Client, ns: &str, project: &ProjectId) -> Result<()> {
    fn owner(meta: &ObjectMeta) -> Option<&str> {
        meta.labels.as_ref()?.get(LABEL_PROJECT).map(String::as_str)
    }
    let check = |kind: &str, name: String, meta: Option<ObjectMeta>| -> Result<()> {
        match meta {
            Some(m) if owner(&m) != Some(project.as_str()) => bail!(
                "{kind} {ns}/{name} exists but is not project {project}'s (label {LABEL_PROJECT} \
                 is {:?}); delete it, or deploy under another project id",
                owner(&m)
            ),
            _ => Ok(()),
        }
    };
    let dep = Api::<Deployment>::namespaced(client.clone(), ns)
        .get_opt(&project.deployment_name())
        .await
        .with_context(|| format!("reading Deployment {ns}/{project}"))?;
    check(
        "Deployment",
        project.deployment_name(),
        dep.map(|o| o.metadata),
    )?;
    let svc = Api::<Service>::namespaced(client.clone(), ns)
        .get_opt(&project.service_name())
        .await
        .with_context(|| format!("reading Service {ns}/{}", project.service_name()))?;
    check("Service", project.service_name(), svc.map(|o| o.metadata))?;
    let ing = Api::<Ingress>::namespaced(client.clone(), ns)
        .get_opt(&project.ingress_name())
        .await
        .with_context(|| format!("reading Ingress {ns}/{}", project.ingress_name()))?;
    check("Ingress", project.ingress_name(), ing.map(|o| o.metadata))
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

/// What to run to pass a `.env` the bundle left out: the exact commands for this project.
fn dotenv_hint(args: &DeployArgs, namespace: Option<&str>) -> String {
    let file = args.dir.join(".env");
    let ns = namespace.map(|n| format!(" -n {n}")).unwrap_or_default();
    format!(
        "{} was left out of the instance (secret values are never packaged); to give its values \
         to the server as secrets, deploy with\n  kubectl jockey deploy {} --project {}{ns} \
         --secret-env-file {}\nor set them once with\n  kubectl jockey secrets set {}{ns} \
         --from-env-file {}",
        file.display(),
        args.dir.display(),
        args.project,
        file.display(),
        args.project,
        file.display()
    )
}

pub async fn run(kube: &KubeArgs, args: DeployArgs) -> Result<()> {
    let started = Instant::now();
    let deadline = started + args.timeout;
    // Every refusal comes before any cluster contact: nothing is written on bad input.
    let project = ProjectId::parse(&args.project)?;
    let runtime_flags = args.runtime.resolve()?;
    let cfg = args.config.resolve();
    cfg.check()
        .map_err(|e| anyhow::anyhow!("cannot deploy {project}: {e}"))?;
    let bundle = bundle_dir(&args.dir)
        .map_err(|e| anyhow::anyhow!("cannot package {}: {e}", args.dir.display()))?;
    if !bundle.has_dockerfile {
        jockey_core::config::check_base_image(&cfg.base_image)
            .map_err(|e| anyhow::anyhow!("cannot deploy {project}: {e}"))?;
    }
    if !bundle.secrets_left_out.is_empty() {
        eprintln!(
            "left out {} secret-looking path(s), never packaged: {} (pass secrets to the server \
             as Kubernetes Secrets, not files)",
            bundle.secrets_left_out.len(),
            bundle.secrets_left_out.join(", ")
        );
    }
    if bundle.secrets_left_out.iter().any(|p| p == ".env") && args.runtime.secret_env_file.is_none()
    {
        eprintln!("{}", dotenv_hint(&args, kube.namespace.as_deref()));
    }
    eprintln!(
        "packaged {} file(s) of {} as {} ({} compressed)",
        bundle.files.len(),
        args.dir.display(),
        bundle.hash.configmap_name(),
        jockey_core::bundle::human_bytes(bundle.gz.len() as u64)
    );
    let format = args.output_format();

    if args.dry_run == DryRun::Client {
        let namespace = kube.namespace_offline().await;
        let secret_sha256 = (!runtime_flags.secrets.is_empty()).then(|| {
            let data = runtime_flags
                .secrets
                .iter()
                .map(|(k, v)| (k.clone(), v.as_bytes().to_vec()))
                .collect();
            jockey_core::runtime::secret_data_sha256(&data)
        });
        let runtime = Runtime {
            settings: runtime_flags.settings.clone(),
            live: None,
            secret_sha256,
        };
        let rendered = render(
            &project,
            &bundle,
            &cfg,
            &namespace,
            &Placement::default_for(&cfg),
            &runtime,
        )?;
        let objects = vec![
            serde_json::to_value(&rendered.configmap)?,
            serde_json::to_value(&rendered.deployment)?,
            serde_json::to_value(&rendered.service)?,
            serde_json::to_value(&rendered.ingress)?,
        ];
        print_objects(&objects, format.unwrap_or(OutputFormat::Yaml))?;
        eprintln!("(dry run: nothing was sent to any cluster)");
        return Ok(());
    }

    let cluster = kube.connect().await?;
    let client = &cluster.client;
    let ns = cluster.namespace.as_str();
    let dry = args.dry_run == DryRun::Server;
    // Reading namespaces may be forbidden to a tenant (an error here): the writes below tell.
    if let Ok(None) = Api::<Namespace>::all(client.clone()).get_opt(ns).await {
        bail!(
            "namespace {ns} does not exist; create it (`kubectl create namespace {ns}`) or pass \
             -n with an existing one"
        );
    }
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let ingresses: Api<Ingress> = Api::namespaced(client.clone(), ns);

    refuse_foreign_objects(client, ns, &project).await?;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let live_dep = deployments
        .get_opt(&project.deployment_name())
        .await
        .with_context(|| format!("reading Deployment {ns}/{project}"))?;
    // The secret environment: what is stored, with --secret-env-file on top; checked (size) now,
    // written only after the build, right before the Deployment that uses it.
    let live_secret = crate::secrets::read(client, ns, &project).await?;
    let (secret_data, secret_times, secret_changed) = crate::secrets::merge(
        live_secret.as_ref(),
        &runtime_flags.secrets,
        &[],
        &k8s_openapi::jiff::Timestamp::now()
            .strftime("%Y-%m-%dT%H:%M:%SZ")
            .to_string(),
    );
    let secret_changed = secret_changed && !runtime_flags.secrets.is_empty();
    jockey_core::runtime::check_secret_size(&secret_data).map_err(|e| {
        anyhow::anyhow!(
            "Secret {ns}/{}: {e}; nothing was written",
            project.secret_name()
        )
    })?;
    let has_secret = live_secret.is_some() || !runtime_flags.secrets.is_empty();
    let runtime = Runtime {
        settings: runtime_flags.settings.clone(),
        live: live_dep.clone(),
        secret_sha256: has_secret.then(|| jockey_core::runtime::secret_data_sha256(&secret_data)),
    };
    let placement = place(&ingresses, &project, &bundle, &cfg, ns).await?;
    let rendered = render(&project, &bundle, &cfg, ns, &placement, &runtime)?;
    let cm_name = bundle.hash.configmap_name();

    // 1. The instance ConfigMap: named by its content, so an existing one is already right.
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
    let already_recorded = live_cm.as_ref().is_some_and(|cm| {
        cfg.image_registry.as_deref().is_some_and(|r| {
            image_record::recorded_images(cm).contains(&project.image(
                r,
                &cfg.image_repository_prefix,
                &bundle.hash,
            ))
        })
    });
    if !dry && !already_recorded && !registry_is_ecr {
        build_run::check_builder(client, &cfg.builder_namespace).await?;
    }
    let mut changes: Vec<(String, Change)> = Vec::new();
    let mut printed: Vec<serde_json::Value> = Vec::new();
    let cm_change = match &live_cm {
        Some(cm) => {
            // Named by its content, so it is ours only if it says it holds this content; a
            // same-named ConfigMap made by hand would start the pods on the wrong files.
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
            printed.push(serde_json::to_value(cm)?);
            Change::Unchanged
        }
        None => {
            let applied = cms
                .patch(
                    &cm_name,
                    &apply_params(dry),
                    &Patch::Apply(&rendered.configmap),
                )
                .await
                .with_context(|| format!("writing ConfigMap {ns}/{cm_name}"))?;
            printed.push(serde_json::to_value(&applied)?);
            Change::Created
        }
    };
    changes.push((format!("configmap/{cm_name}"), cm_change));

    // 2. The image: skipped when ECR has the tag or the ConfigMap recorded a finished build.
    let image = cfg
        .image_registry
        .as_deref()
        .map(|r| project.image(r, &cfg.image_repository_prefix, &bundle.hash));
    let recorded = live_cm
        .as_ref()
        .map(image_record::recorded_images)
        .unwrap_or_default();
    let built = image.as_ref().is_some_and(|i| recorded.contains(i));
    // Whether the build step wrote anything (a Job, the image annotation).
    let mut image_written = false;
    if dry {
        if !built {
            eprintln!("(dry run: the image would be built first)");
        }
    } else if built {
        eprintln!(
            "image {} already built; skipping the build",
            image.as_deref().unwrap_or_default()
        );
    } else {
        let ecr_decision = crate::ecr::prepare(&cfg, &project, &bundle.hash).await?;
        match ecr_decision {
            crate::ecr::Decision::Built { image } => {
                eprintln!("image {image} exists in ECR; skipping the build");
                image_written = image_record::record_image(client, ns, &cm_name, &image).await?;
            }
            other => {
                if let crate::ecr::Decision::Unavailable(why) = &other {
                    tracing::debug!("ECR check skipped: {why}");
                }
                build_run::check_builder(client, &cfg.builder_namespace).await?;
                let plan = BuildPlan::new(&cfg, &project, &bundle, args.timeout)?;
                if matches!(other, crate::ecr::Decision::Build { .. }) {
                    ensure_cache_repository(&cfg, &project).await?;
                }
                build_run::run_build(build_run::BuildRun {
                    client,
                    plan: &plan,
                    bundle: &bundle,
                    follow: args.follow,
                    deadline,
                    timeout: args.timeout,
                })
                .await?;
                image_record::record_image(client, ns, &cm_name, &plan.image).await?;
                image_written = true;
            }
        }
    }

    // 3. The Secret (values only there), then Deployment, Service, Ingress: written only where
    // the server says something changes.
    if secret_changed {
        if dry {
            eprintln!(
                "secret/{} configured (server dry run: not written)",
                project.secret_name()
            );
        } else {
            crate::secrets::store(
                client,
                ns,
                &project,
                live_secret.as_ref(),
                &secret_data,
                &secret_times,
            )
            .await?;
            let keys: Vec<&str> = runtime_flags
                .secrets
                .iter()
                .map(|(k, _)| k.as_str())
                .collect();
            eprintln!(
                "secret/{} configured: set {}",
                project.secret_name(),
                keys.join(", ")
            );
        }
    }
    // The Deployment, Service and Ingress are written only where the server says something
    // changes.
    // The controller's events are watched from before the writes, so that its verdict on them
    // is told apart from older ones.
    let address_watch = if dry || args.no_wait {
        None
    } else {
        Some(crate::rollout::AddressWatch::start(client, ns, &project).await?)
    };
    let services: Api<Service> = Api::namespaced(client.clone(), ns);
    let (c, v) = apply_if_changed(&deployments, &rendered.deployment, dry).await?;
    changes.push((format!("deployment.apps/{}", project.deployment_name()), c));
    printed.push(v);
    let (c, v) = apply_if_changed(&services, &rendered.service, dry).await?;
    changes.push((format!("service/{}", project.service_name()), c));
    printed.push(v);
    let (c, v) = apply_if_changed(&ingresses, &rendered.ingress, dry).await?;
    changes.push((
        format!("ingress.networking.k8s.io/{}", project.ingress_name()),
        c,
    ));
    printed.push(v);

    let suffix = if dry { " (server dry run)" } else { "" };
    for (what, change) in &changes {
        eprintln!("{what} {change}{suffix}");
    }
    if let Some(format) = format {
        print_objects(&printed, format)?;
    }
    if dry {
        eprintln!("(dry run: the API server accepted everything; nothing was written)");
        return Ok(());
    }
    if !image_written && !secret_changed && changes.iter().all(|(_, c)| *c == Change::Unchanged) {
        eprintln!("nothing changed: {cm_name} is already deployed; no object was written");
    }

    // 4. The rollout.
    let url = format!("https://{}", project.host(&cfg.deployment_domain));
    let say = |line: String| {
        // stdout carries -o output when asked for; the URL then goes to stderr.
        if format.is_some() {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    };
    if args.no_wait {
        say(format!(
            "URL: {url} (not waiting for the rollout: --no-wait)"
        ));
        return Ok(());
    }
    crate::rollout::wait(client, ns, &project, deadline, args.timeout).await?;
    // 5. The shared ALB serves it (or the controller's reason why not).
    let address = match address_watch {
        Some(watch) => watch.wait(deadline, args.timeout).await?,
        None => None,
    };
    say(format!(
        "deployment {ns}/{project} is available ({cm_name})"
    ));
    say(format!("URL: {url}"));
    say(match address {
        Some(a) => format!("Ingress address: {a}"),
        None => "Ingress address: none (no AWS Load Balancer Controller serves it; see above)"
            .to_string(),
    });
    Ok(())
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

    #[test]
    fn comparable_ignores_bookkeeping_but_not_content() {
        let live = serde_json::json!({"metadata": {"name": "a", "resourceVersion": "5",
            "managedFields": [{"manager": "x"}], "generation": 3, "uid": "u",
            "creationTimestamp": "t"}, "spec": {"x": 1}, "status": {"y": 2}});
        let would = serde_json::json!({"metadata": {"name": "a", "resourceVersion": "6"},
            "spec": {"x": 1}});
        assert_eq!(comparable(&live), comparable(&would));
        let changed = serde_json::json!({"metadata": {"name": "a"}, "spec": {"x": 2}});
        assert_ne!(comparable(&live), comparable(&changed));
    }
}
