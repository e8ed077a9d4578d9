//! The builder namespace: `setup-builder` (namespace, service account, `aws-credentials` secret)
//! and `logs-builder`. Here the global `-n/--namespace` names the builder namespace.

use crate::cluster::KubeArgs;
use anyhow::{Result, bail};

#[derive(clap::Args, Debug, Clone)]
pub struct SetupBuilderArgs {
    /// AWS profile to read credentials from (default: $AWS_PROFILE, then `default`).
    #[arg(long)]
    pub profile: Option<String>,
}

#[derive(clap::Args, Debug, Clone)]
pub struct LogsBuilderArgs {
    /// Keep streaming new log lines.
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Only the builds of this project.
    #[arg(long, short = 'p')]
    pub project: Option<String>,
    /// Lines of recent log to show per build.
    #[arg(long, default_value_t = 100)]
    pub tail: i64,
}

pub async fn setup(kube: &KubeArgs, args: SetupBuilderArgs) -> Result<()> {
    let _ = (kube, args);
    bail!("setup-builder: not implemented yet")
}

pub async fn logs(kube: &KubeArgs, args: LogsBuilderArgs) -> Result<()> {
    let _ = (kube, args);
    bail!("logs-builder: not implemented yet")
}
