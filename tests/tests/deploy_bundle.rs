//! Instance bundles through the real binary: the same files give the same `instance-<h>` whatever
//! their mtimes, creation order and permissions (umask), one changed byte gives another, and a
//! client dry run needs no cluster at all (the kubeconfig it is given does not exist).

mod deploy_support;

use anyhow::Result;
use deploy_support::{Scratch, copy_tree, dry_run_configmap_name};
use jockey_e2e::repo_root;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

/// What a umask of 077 and a different clock would have produced: owner-only permissions and
/// other modification times, on every file and directory.
fn roughen(dir: &Path, mtime: SystemTime) -> Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            roughen(&path, mtime)?;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700))?;
        } else {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
            std::fs::File::options()
                .write(true)
                .open(&path)?
                .set_modified(mtime)?;
        }
    }
    Ok(())
}

#[test]
fn same_files_same_configmap_name_one_byte_another() -> Result<()> {
    let src = repo_root().join("examples/agent");
    let a = Scratch::new("hash-a")?;
    let b = Scratch::new("hash-b")?;
    copy_tree(&src, a.path(), false)?;
    copy_tree(&src, &b.path().join("nested/elsewhere"), true)?;
    let b_dir = b.path().join("nested/elsewhere");
    roughen(
        &b_dir,
        SystemTime::UNIX_EPOCH + Duration::from_secs(86_400 * 365),
    )?;

    // A third copy made by `cp` under a real umask of 077, every timestamp then set to 2001.
    let c = Scratch::new("hash-c")?;
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(
            r#"umask 077 && cp -R "$1" "$2/copy" && find "$2/copy" -exec touch -d @978307200 {} +"#,
        )
        .arg("sh")
        .arg(a.path())
        .arg(c.path())
        .status()?;
    assert!(status.success());
    let c_dir = c.path().join("copy");

    let name_a = dry_run_configmap_name(a.path(), "hash-demo")?;
    let name_b = dry_run_configmap_name(&b_dir, "hash-demo")?;
    let name_c = dry_run_configmap_name(&c_dir, "hash-demo")?;
    assert!(name_a.starts_with("instance-") && name_a.len() == "instance-".len() + 16);
    assert_eq!(
        name_a, name_b,
        "same files must give the same instance name"
    );
    assert_eq!(name_a, name_c, "umask and timestamps must not matter");

    let server = b_dir.join("server.py");
    let mut bytes = std::fs::read(&server)?;
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    std::fs::write(&server, bytes)?;
    let name_changed = dry_run_configmap_name(&b_dir, "hash-demo")?;
    assert_ne!(
        name_a, name_changed,
        "one changed byte must give another name"
    );
    Ok(())
}

#[test]
fn client_dry_run_prints_every_object_as_yaml_without_a_cluster() -> Result<()> {
    let run = deploy_support::jockey(
        &[
            "deploy",
            &repo_root().join("examples/agent").to_string_lossy(),
            "--project",
            "yaml-demo",
            "--dry-run=client",
            "-o",
            "yaml",
            "-n",
            "team-a",
        ],
        "builder",
        &[("KUBECONFIG", "/nonexistent/jockey-e2e/kubeconfig")],
    )?;
    assert!(run.ok, "{}", run.all());
    for kind in ["ConfigMap", "Deployment", "Service", "Ingress"] {
        assert!(
            run.stdout.contains(&format!("kind: {kind}")),
            "{kind}: {}",
            run.stdout
        );
    }
    assert!(run.stdout.contains("namespace: team-a"));
    assert!(run.stdout.contains("host: yaml-demo.deploy.agentops.ai"));
    assert!(
        run.stdout
            .contains("image: registry.local:5000/hosting/yaml-demo:")
    );
    assert!(run.stderr.contains("nothing was sent"), "{}", run.stderr);
    Ok(())
}
