//! The plugin through krew: the archive and manifest `make dist` writes (dist/dist.sh, run here
//! on the binary `tests/e2e.sh` already built) installed by the real krew (sigs.k8s.io/krew from
//! the Go module proxy, built into .cache/bin by tests/tools/build.sh) into a KREW_ROOT of the
//! test's own, then run as `kubectl jockey` through kubectl's own plugin lookup. No cluster is
//! needed: `version` talks to none.

use anyhow::{Context, Result, bail};
use jockey_e2e::{repo_root, tool_bin_dir};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

const VERSION: &str = env!("CARGO_PKG_VERSION");

fn krew_bin() -> Result<PathBuf> {
    let krew = tool_bin_dir().join("krew");
    if !krew.exists() {
        bail!(
            "{} is missing: build it with tests/tools/build.sh krew (`make test` runs it first)",
            krew.display()
        );
    }
    Ok(krew)
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// dist/dist.sh for linux/amd64 into `out`, packaging target/debug/kubectl-jockey.
fn dist(out: &Path) -> Result<PathBuf> {
    let built = repo_root().join("target/debug/kubectl-jockey");
    if !built.exists() {
        bail!(
            "{} is not built: run `cargo build --workspace --bins` (tests/e2e.sh does)",
            built.display()
        );
    }
    let run = Command::new(repo_root().join("dist/dist.sh"))
        .env("DIST_PROFILE", "dev")
        .env("DIST_NO_BUILD", "1")
        .env("DIST_PLATFORMS", "linux/amd64")
        .env("DIST_OUT", out)
        .current_dir(repo_root())
        .output()
        .context("running dist/dist.sh")?;
    if !run.status.success() {
        bail!("dist/dist.sh failed: {}", text(&run));
    }
    Ok(out.join(format!("kubectl-jockey_v{VERSION}_linux_amd64.tar.gz")))
}

/// One `dist` for the tests that only read its output (packing a debug binary takes a while):
/// (the directory's guard, the archive).
static SHARED: Mutex<Option<(tempfile::TempDir, PathBuf)>> = Mutex::new(None);

fn shared_dist() -> Result<(PathBuf, PathBuf)> {
    let mut shared = SHARED.lock().unwrap_or_else(|p| p.into_inner());
    if shared.is_none() {
        let dir = tempfile::tempdir()?;
        let archive = dist(&dir.path().join("dist"))?;
        *shared = Some((dir, archive));
    }
    let (dir, archive) = shared.as_ref().context("dist ran")?;
    Ok((dir.path().join("dist"), archive.clone()))
}

/// A kubectl whose PATH has krew (as the `kubectl-krew` plugin) and `$KREW_ROOT/bin`, and
/// nothing else that could hold a `kubectl-jockey`.
struct Krew {
    root: PathBuf,
    path: String,
}

impl Krew {
    fn new(dir: &Path) -> Result<Self> {
        let shims = dir.join("shims");
        std::fs::create_dir_all(&shims)?;
        std::os::unix::fs::symlink(krew_bin()?, shims.join("kubectl-krew"))?;
        let root = dir.join("krew-root");
        let path = format!(
            "{}:{}:/usr/bin:/bin",
            shims.display(),
            root.join("bin").display()
        );
        Ok(Self { root, path })
    }

    fn kubectl(&self, args: &[&str]) -> Result<Output> {
        Command::new(tool_bin_dir().join("kubectl"))
            .args(args)
            .env_clear()
            .env("PATH", &self.path)
            .env("HOME", self.root.parent().unwrap_or(&self.root))
            .env("KREW_ROOT", &self.root)
            // No release check against GitHub: this machine reaches only package registries.
            .env("KREW_NO_UPGRADE_CHECK", "1")
            .output()
            .context("running kubectl (built by `make cluster`)")
    }

    fn install(&self, manifest: &Path, archive: &Path) -> Result<Output> {
        self.kubectl(&[
            "krew",
            "install",
            &format!("--manifest={}", manifest.display()),
            &format!("--archive={}", archive.display()),
        ])
    }
}

#[test]
fn krew_installs_the_dist_archive_and_kubectl_runs_it_as_a_plugin() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let (out, archive) = shared_dist()?;
    let manifest = out.join("jockey.yaml");
    let sums = std::fs::read_to_string(out.join("SHA256SUMS"))?;
    let yaml = std::fs::read_to_string(&manifest)?;
    let sha = sums.split_whitespace().next().context("empty SHA256SUMS")?;
    assert!(
        yaml.contains(&format!("sha256: {sha}")) && yaml.contains(&format!("version: v{VERSION}")),
        "the manifest names the archive's sha256 {sha} and v{VERSION}:\n{yaml}"
    );

    let krew = Krew::new(tmp.path())?;
    let installed = krew.install(&manifest, &archive)?;
    assert!(
        installed.status.success(),
        "kubectl krew install failed: {}",
        text(&installed)
    );

    let plugins = krew.kubectl(&["plugin", "list"])?;
    let link = krew.root.join("bin/kubectl-jockey");
    assert!(
        text(&plugins).contains(&link.display().to_string()),
        "kubectl plugin list does not show krew's {}: {}",
        link.display(),
        text(&plugins)
    );
    let target = std::fs::read_link(&link)?;
    let store = krew.root.join(format!("store/jockey/v{VERSION}"));
    assert!(
        target.starts_with(&store),
        "{} points at {}, not into {}",
        link.display(),
        target.display(),
        store.display()
    );
    assert!(
        store.join("LICENSE").exists(),
        "LICENSE not installed beside the binary in {}",
        store.display()
    );

    let version = krew.kubectl(&["jockey", "version"])?;
    assert!(
        version.status.success(),
        "kubectl jockey version: {}",
        text(&version)
    );
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        format!("kubectl-jockey {VERSION}")
    );

    // krew's record of the install (`krew list`, `uninstall` and `upgrade` read these, but also
    // want the plugin index, which needs GitHub).
    let receipt = std::fs::read_to_string(krew.root.join("receipts/jockey.yaml"))?;
    assert!(
        receipt.contains(&format!("version: v{VERSION}")) && receipt.contains(sha),
        "krew's receipt does not record v{VERSION} and {sha}:\n{receipt}"
    );
    Ok(())
}

/// krew checks the archive against the manifest's sha256: an archive changed after `make dist`
/// is refused and nothing is installed.
#[test]
fn krew_refuses_an_archive_the_manifest_does_not_name() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let (out, made) = shared_dist()?;
    let sums = std::fs::read_to_string(out.join("SHA256SUMS"))?;
    let named = sums.split_whitespace().next().context("empty SHA256SUMS")?;
    let archive = tmp.path().join(made.file_name().context("archive name")?);
    let mut bytes = std::fs::read(&made)?;
    // A gzip member may be followed by more: the archive still unpacks, but its sha256 changed.
    bytes.extend_from_slice(&[
        0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ]);
    std::fs::write(&archive, bytes)?;
    let krew = Krew::new(tmp.path())?;
    let installed = krew.install(&out.join("jockey.yaml"), &archive)?;
    let said = text(&installed);
    assert!(
        !installed.status.success(),
        "krew installed a changed archive: {said}"
    );
    assert!(
        said.contains("checksum does not match") && said.contains(named),
        "krew's refusal does not name the manifest's sha256 {named}: {said}"
    );
    assert!(!krew.root.join("bin/kubectl-jockey").exists());
    Ok(())
}

/// Two `make dist` runs of the same binary write the same archive (sorted entries, owner 0:0,
/// the last commit's mtime, gzip without a timestamp), so a release can be rebuilt and checked.
#[test]
fn dist_archives_are_reproducible() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let (out, archive) = shared_dist()?;
    let a = std::fs::read_to_string(out.join("SHA256SUMS"))?;
    let b = std::fs::read_to_string(dist(&tmp.path().join("b"))?.with_file_name("SHA256SUMS"))?;
    assert_eq!(a, b);
    let listing = Command::new("tar").arg("-tvzf").arg(&archive).output()?;
    let listing = String::from_utf8_lossy(&listing.stdout).to_string();
    let names: Vec<&str> = listing
        .lines()
        .filter_map(|l| l.split_whitespace().last())
        .collect();
    assert_eq!(names, ["LICENSE", "kubectl-jockey"], "{listing}");
    assert!(
        listing.lines().all(|l| l.contains(" 0/0 ")),
        "entries not owned by 0/0:\n{listing}"
    );
    Ok(())
}
