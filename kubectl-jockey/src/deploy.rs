//! `kubectl jockey deploy [DIR] --project PROJECT` in four steps: package DIR into an instance
//! bundle ([`package`]), build its image unless already built ([`build`]), server-side apply the
//! labelled objects keeping what users changed ([`apply`], [`keep`]), and wait for the rollout.
//! One deploy of a project runs at a time, from its first write to its end ([`journal`],
//! [`crate::deploy_lock`]); ctrl-c stops it saying what was done and how to finish.

mod apply;
mod build;
mod changes;
mod foreign;
mod journal;
pub mod keep;
mod package;
mod render;

use changes::{Change, print_objects};
pub use journal::Interrupted;
use journal::Journal;

use crate::cluster::KubeArgs;
use crate::output::OutputFormat;
use crate::settings::ConfigArgs;
use anyhow::Result;
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
    /// Take the fields this deploy sets (its flags, the files' instance) even where another field
    /// manager owns them (`kubectl set`, `kubectl edit`, `kubectl rollout undo`, an autoscaler):
    /// this deploy's values win. Without it such a deploy is refused, naming each field, its
    /// owner and both values; fields the deploy does not set stay the users' either way.
    #[arg(long)]
    pub force_conflicts: bool,
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

pub async fn run(kube: &KubeArgs, args: DeployArgs) -> Result<()> {
    let journal = Journal::default();
    let project = args.project.clone();
    journal::until_interrupted(&project, &journal, deploy(kube, args, &journal)).await
}

async fn deploy(kube: &KubeArgs, args: DeployArgs, journal: &Journal) -> Result<()> {
    let deadline = Instant::now() + args.timeout;
    // 1. Package: every refusal of bad input comes before any cluster contact.
    let packaged = package::package(kube, &args)?;
    if args.dry_run == DryRun::Client {
        return package::print_offline(kube, &args, &packaged).await;
    }
    let cluster = kube.connect_retrying().await?;
    let (client, ns) = (&cluster.client, cluster.namespace.as_str());
    let dry = args.dry_run == DryRun::Server;
    // Every write is planned (dry runs) before the first: a conflict writes nothing.
    let mut prepared = apply::prepare(client, ns, &packaged, args.force_conflicts).await?;

    // 2. Build.
    let options = build::Options {
        dry,
        follow: args.follow,
        deadline,
        timeout: args.timeout,
        read: prepared.live.as_ref(),
        apply_writes: prepared.secret.changed
            || prepared
                .objects
                .iter()
                .any(|o| o.change != Change::Unchanged),
    };
    let built = build::build(
        client,
        ns,
        &packaged,
        &prepared.rendered.configmap,
        &options,
        journal,
    )
    .await?;

    // The image was planned before the broker answered: for the built-in template it is named by
    // the dependencies, which only the broker knows (its BASE_IMAGE). Planned again with the
    // image now recorded on the instance ConfigMap, as the webhook will fill it in.
    let planned_image = prepared
        .rendered
        .deployment
        .spec
        .template
        .spec
        .as_ref()
        .and_then(|p| p.containers.first())
        .and_then(|c| c.image.clone());
    if !dry && built.image.is_some() && built.image != planned_image {
        prepared = apply::prepare(client, ns, &packaged, args.force_conflicts).await?;
    }

    // 3. Apply. The controller's events are watched from before the writes, so that its verdict
    // on them is told apart from older ones.
    let address_watch = if dry || args.no_wait {
        None
    } else {
        Some(crate::alb::watch::AddressWatch::start(client, ns, &packaged.project).await?)
    };
    journal.ensure_held(&packaged.project, ns).await?;
    let applied = apply::apply(client, ns, &packaged, &prepared, dry, journal).await?;
    let mut changes = vec![built.configmap.clone()];
    changes.extend(applied.changes);
    let suffix = if dry { " (server dry run)" } else { "" };
    for (what, change) in &changes {
        eprintln!("{what} {change}{suffix}");
    }
    let format = args.output_format();
    if let Some(format) = format {
        let mut printed = vec![built.printed];
        printed.extend(applied.printed);
        print_objects(&printed, format)?;
    }
    if dry {
        eprintln!("(dry run: the API server accepted everything; nothing was written)");
        return Ok(());
    }
    let cm_name = packaged.bundle.hash.configmap_name();
    if !built.image_written
        && !prepared.secret.changed
        && changes.iter().all(|(_, c)| *c == Change::Unchanged)
    {
        eprintln!("nothing changed: {cm_name} is already deployed; no object was written");
    }

    // 4. Wait.
    wait(
        &cluster,
        &packaged,
        &args,
        deadline,
        address_watch,
        format.is_some(),
        journal,
    )
    .await
}

/// The rollout, then the shared ALB serving it (or the controller's reason why not).
async fn wait(
    cluster: &crate::cluster::Cluster,
    packaged: &package::Packaged,
    args: &DeployArgs,
    deadline: Instant,
    address_watch: Option<crate::alb::watch::AddressWatch>,
    structured: bool,
    journal: &Journal,
) -> Result<()> {
    let (client, ns) = (&cluster.client, cluster.namespace.as_str());
    let project = &packaged.project;
    let instance = packaged.bundle.hash.configmap_name();
    let url = format!("https://{}", project.host(&packaged.cfg.deployment_domain));
    let say = |line: String| {
        // stdout carries -o output when asked for; the URL then goes to stderr.
        if structured {
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
    journal.doing(format!(
        "waiting for the rollout of {instance} (it goes on in the cluster without the plugin)"
    ));
    crate::rollout::wait(client, ns, project, deadline, args.timeout).await?;
    journal.ensure_won(client, ns, project).await?;
    let address = match address_watch {
        Some(watch) => watch.wait(deadline, args.timeout).await?,
        None => None,
    };
    say(format!(
        "deployment {ns}/{project} is available ({instance})"
    ));
    say(format!("URL: {url}"));
    say(match address {
        Some(a) => format!("Ingress address: {a}"),
        None => "Ingress address: none (no AWS Load Balancer Controller serves it; see above)"
            .to_string(),
    });
    Ok(())
}
