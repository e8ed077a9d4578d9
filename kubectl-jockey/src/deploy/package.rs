//! Step 1 of a deploy: read the flags and package DIR into an instance bundle. Every refusal of
//! bad input happens here, before any cluster is contacted: nothing is written.

use super::DeployArgs;
use super::changes::print_objects;
use super::render::{Placement, Runtime, render};
use crate::cluster::KubeArgs;
use crate::output::OutputFormat;
use crate::runtime_args::Resolved;
use anyhow::Result;
use jockey_core::bundle::{Bundle, bundle_dir};
use jockey_core::{Config, ProjectId};

/// What a deploy works from, checked.
pub struct Packaged {
    pub project: ProjectId,
    pub flags: Resolved,
    pub cfg: Config,
    pub bundle: Bundle,
}

pub fn package(kube: &KubeArgs, args: &DeployArgs) -> Result<Packaged> {
    let project = ProjectId::parse(&args.project)?;
    let flags = args.runtime.resolve()?;
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
        eprintln!("{}", dotenv_hint(args, kube.namespace.as_deref()));
    }
    eprintln!(
        "packaged {} file(s) of {} as {} ({} compressed)",
        bundle.files.len(),
        args.dir.display(),
        bundle.hash.configmap_name(),
        jockey_core::bundle::human_bytes(bundle.gz.len() as u64)
    );
    Ok(Packaged {
        project,
        flags,
        cfg,
        bundle,
    })
}

/// `--dry-run=client`: prints what would be written for a project that has nothing live yet.
pub async fn print_offline(kube: &KubeArgs, args: &DeployArgs, p: &Packaged) -> Result<()> {
    let namespace = kube.namespace_offline().await;
    let secret_sha256 = (!p.flags.secrets.is_empty()).then(|| {
        let data = p
            .flags
            .secrets
            .iter()
            .map(|(k, v)| (k.clone(), v.as_bytes().to_vec()))
            .collect();
        jockey_core::runtime::secret_data_sha256(&data)
    });
    let runtime = Runtime {
        settings: p.flags.settings.clone(),
        live: None,
        secret_sha256,
        instance: None,
    };
    let rendered = render(
        &p.project,
        &p.bundle,
        &p.cfg,
        &namespace,
        &Placement::default_for(&p.cfg),
        &runtime,
    )?;
    let objects = vec![
        serde_json::to_value(&rendered.configmap)?,
        serde_json::to_value(&rendered.deployment)?,
        serde_json::to_value(&rendered.service)?,
        serde_json::to_value(&rendered.ingress)?,
    ];
    print_objects(&objects, args.output_format().unwrap_or(OutputFormat::Yaml))?;
    eprintln!("(dry run: nothing was sent to any cluster)");
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
