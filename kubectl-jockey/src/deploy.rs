//! `kubectl jockey deploy [DIR] --project PROJECT`: package DIR into an instance bundle, build its
//! image (skipped when already built), server-side apply the labelled objects and wait for the
//! rollout.

use crate::cluster::KubeArgs;
use crate::output::OutputFormat;
use crate::settings::ConfigArgs;
use anyhow::{Result, bail};
use std::path::PathBuf;
use std::time::Duration;

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
    /// How long the build and the rollout may take together, e.g. 300s, 5m.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Stream the builder's log while the image builds.
    #[arg(long, short = 'f')]
    pub follow: bool,
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

/// Parses kubectl-style durations: `90`, `90s`, `5m`, `1h`, `1m30s`.
pub fn parse_duration(value: &str) -> Result<Duration, String> {
    let bad = || {
        format!("invalid duration {value:?}; use a number with a unit, e.g. 90s, 5m or 1h")
    };
    if value.is_empty() {
        return Err(bad());
    }
    if let Ok(secs) = value.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let mut total = 0u64;
    let mut number = String::new();
    for c in value.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let n: u64 = number.parse().map_err(|_| bad())?;
        number.clear();
        total += match c {
            's' => n,
            'm' => n * 60,
            'h' => n * 3600,
            _ => return Err(bad()),
        };
    }
    if !number.is_empty() {
        return Err(bad());
    }
    Ok(Duration::from_secs(total))
}

pub async fn run(kube: &KubeArgs, args: DeployArgs) -> Result<()> {
    let _ = (kube, args);
    bail!("deploy: not implemented yet")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        for bad in ["", "5x", "m", "5m3"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
