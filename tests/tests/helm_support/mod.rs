//! The real `helm` (v4, built from the Go module proxy into .cache/bin by tests/tools/build.sh)
//! and the chart under test, charts/jockey.

#![allow(dead_code)]

pub mod diff;

use anyhow::{Context, Result, bail};
use jockey_e2e::{kubeconfig_path, repo_root, tool_bin_dir};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The real helm, or a failure with the fix (never a skip: `make test` builds it).
pub fn helm_bin() -> Result<PathBuf> {
    let helm = tool_bin_dir().join("helm");
    if !helm.exists() {
        bail!(
            "{} is missing: build it with tests/tools/build.sh helm (`make test` and `make tools` run it)",
            helm.display()
        );
    }
    Ok(helm)
}

pub fn chart_dir() -> PathBuf {
    repo_root().join("charts/jockey")
}

/// `helm ARGS` against the local cluster, its cache, configuration and data under `home` (never
/// the user's); (success, stdout, stderr).
pub fn helm(home: &Path, args: &[&str]) -> Result<(bool, String, String)> {
    let out = Command::new(helm_bin()?)
        .args(args)
        .arg("--kubeconfig")
        .arg(kubeconfig_path())
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_DATA_HOME", home.join("data"))
        .output()
        .with_context(|| format!("running helm {}", args.join(" ")))?;
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}
