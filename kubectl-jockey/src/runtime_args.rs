//! `deploy`'s runtime settings flags (`--env`, `--env-file`, `--secret-env-file`, `--replicas`,
//! `--cpu`, `--memory`), read and checked before the cluster is contacted: a bad file, name or
//! quantity is refused with nothing written.

use anyhow::{Result, anyhow};
use jockey_core::runtime::{RuntimeSettings, check_quantity, check_secret_size, parse_assignment};
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(clap::Args, Debug, Clone, Default)]
pub struct RuntimeArgs {
    /// Set an environment variable of the server (repeatable). Variables set earlier stay until
    /// changed; use --secret-env-file or `kubectl jockey secrets` for secret values.
    #[arg(long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Set the server's environment variables from a dotenv file (python-dotenv syntax;
    /// repeatable, later files win, --env wins over files).
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_file: Vec<PathBuf>,
    /// Set secret environment variables from a dotenv file: stored only in the Secret
    /// env-PROJECT (as `kubectl jockey secrets set --from-env-file` does).
    #[arg(long, value_name = "FILE")]
    pub secret_env_file: Option<PathBuf>,
    /// Number of pods (default 1; a later deploy without it keeps the current count).
    #[arg(long, value_name = "N", allow_negative_numbers = true,
          value_parser = clap::value_parser!(i32).range(0..))]
    pub replicas: Option<i32>,
    /// CPU request of the server, e.g. 500m or 2 (kept when omitted later).
    #[arg(long, value_name = "QUANTITY", value_parser = quantity)]
    pub cpu: Option<String>,
    /// Memory request of the server, e.g. 512Mi or 2Gi; the memory limit follows it.
    #[arg(long, value_name = "QUANTITY", value_parser = quantity)]
    pub memory: Option<String>,
}

fn quantity(v: &str) -> Result<String, String> {
    check_quantity(v).map(|()| v.trim().to_string())
}

/// The flags, read: plain settings and the secret pairs.
#[derive(Debug, Clone, Default)]
pub struct Resolved {
    pub settings: RuntimeSettings,
    pub secrets: Vec<(String, String)>,
}

impl RuntimeArgs {
    pub fn resolve(&self) -> Result<Resolved> {
        let mut env = Vec::new();
        for f in &self.env_file {
            env.extend(crate::secrets::read_env_file(f, "--env-file")?);
        }
        for a in &self.env {
            env.push(parse_assignment(a).map_err(|e| anyhow!("--env: {e}; nothing was written"))?);
        }
        let secrets = match &self.secret_env_file {
            Some(f) => crate::secrets::read_env_file(f, "--secret-env-file")?,
            None => Vec::new(),
        };
        let data: BTreeMap<String, Vec<u8>> = secrets
            .iter()
            .map(|(k, v)| (k.clone(), v.as_bytes().to_vec()))
            .collect();
        check_secret_size(&data).map_err(|e| {
            anyhow!(
                "--secret-env-file {}: {e}; nothing was written",
                self.secret_env_file
                    .as_deref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            )
        })?;
        Ok(Resolved {
            settings: RuntimeSettings {
                env,
                replicas: self.replicas,
                cpu: self.cpu.clone(),
                memory: self.memory.clone(),
            },
            secrets,
        })
    }
}
