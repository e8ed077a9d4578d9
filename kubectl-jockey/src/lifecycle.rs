//! The project lifecycle after `deploy`: `status`, `list`, `logs`, `rollback`, `delete`, `gc`.

use crate::cluster::KubeArgs;
use crate::output::{ListingArgs, OutputFormat};
use anyhow::{Result, bail};

#[derive(clap::Args, Debug, Clone)]
pub struct StatusArgs {
    pub project: String,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

#[derive(clap::Args, Debug, Clone)]
pub struct ListArgs {
    #[command(flatten)]
    pub listing: ListingArgs,
}

#[derive(clap::Args, Debug, Clone)]
pub struct LogsArgs {
    pub project: String,
    /// Keep streaming new log lines.
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Lines of recent log to show per pod.
    #[arg(long, default_value_t = 100)]
    pub tail: i64,
}

#[derive(clap::Args, Debug, Clone)]
pub struct RollbackArgs {
    pub project: String,
    /// The content hash (`<h>`, or `instance-<h>`) to go back to; default: the previous one.
    #[arg(long, value_name = "HASH")]
    pub to: Option<String>,
}

#[derive(clap::Args, Debug, Clone)]
pub struct DeleteArgs {
    pub project: String,
}

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
}

pub async fn status(kube: &KubeArgs, args: StatusArgs) -> Result<()> {
    let _ = (kube, args);
    bail!("status: not implemented yet")
}
pub async fn list(kube: &KubeArgs, args: ListArgs) -> Result<()> {
    let _ = (kube, args);
    bail!("list: not implemented yet")
}
pub async fn logs(kube: &KubeArgs, args: LogsArgs) -> Result<()> {
    let _ = (kube, args);
    bail!("logs: not implemented yet")
}
pub async fn rollback(kube: &KubeArgs, args: RollbackArgs) -> Result<()> {
    let _ = (kube, args);
    bail!("rollback: not implemented yet")
}
pub async fn delete(kube: &KubeArgs, args: DeleteArgs) -> Result<()> {
    let _ = (kube, args);
    bail!("delete: not implemented yet")
}
pub async fn gc(kube: &KubeArgs, args: GcArgs) -> Result<()> {
    let _ = (kube, args);
    bail!("gc: not implemented yet")
}
