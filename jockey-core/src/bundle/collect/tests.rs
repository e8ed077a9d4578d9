use super::*;
use crate::bundle::tests::{agent_files, tar_listing, write};
use crate::bundle::{SECRET_PATTERNS, bundle_dir};
use std::fs;
use std::time::{Duration, SystemTime};

#[cfg(unix)]
fn chmod(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

fn set_mtime(p: &Path, t: SystemTime) {
    fs::File::options()
        .write(true)
        .open(p)
        .unwrap()
        .set_modified(t)
        .unwrap();
}

/// Spec: same files, any directory, any timestamps, any order of creation, any umask.
#[cfg(unix)]
#[test]
fn hash_is_stable_across_mtime_creation_order_umask_and_location() {
    let t1 = tempfile::tempdir().unwrap();
    let t2 = tempfile::tempdir().unwrap();
    let a = t1.path().join("project");
    let b = t2.path().join("elsewhere").join("copy");
    let files = agent_files();
    for (rel, data) in &files {
        write(&a, rel, data);
    }
    for (rel, data) in files.iter().rev() {
        write(&b, rel, data);
    }
    // Umask 022 versus 077: only group/other bits differ.
    for (rel, _) in &files {
        chmod(&a.join(rel), 0o644);
        chmod(&b.join(rel), 0o600);
        set_mtime(
            &a.join(rel),
            SystemTime::UNIX_EPOCH + Duration::from_secs(1),
        );
        set_mtime(&b.join(rel), SystemTime::now());
    }
    chmod(&a.join("providers"), 0o755);
    chmod(&b.join("providers"), 0o700);
    let ha = bundle_dir(&a).unwrap();
    let hb = bundle_dir(&b).unwrap();
    assert_eq!(ha.hash, hb.hash);
    assert_eq!(ha.tar, hb.tar);
    assert_eq!(ha.hash.configmap_name(), hb.hash.configmap_name());

    // One changed byte: another hash.
    write(&b, "providers/openai.py", b"KEY_ENV = 'OPENAI_API_KEX'\n");
    assert_ne!(bundle_dir(&b).unwrap().hash, ha.hash);
}

#[cfg(unix)]
#[test]
fn owner_execute_bit_is_kept_and_changes_the_hash() {
    let t = tempfile::tempdir().unwrap();
    write(t.path(), "run.sh", b"#!/bin/sh\n");
    chmod(&t.path().join("run.sh"), 0o644);
    let plain = bundle_dir(t.path()).unwrap();
    chmod(&t.path().join("run.sh"), 0o744);
    let exec = bundle_dir(t.path()).unwrap();
    assert_ne!(plain.hash, exec.hash);
    assert_eq!(tar_listing(&exec.tar)[0].1, 0o755);
    assert_eq!(tar_listing(&plain.tar)[0].1, 0o644);
}

#[test]
fn default_ignores_apply_at_any_depth() {
    let t = tempfile::tempdir().unwrap();
    write(t.path(), "server.py", b"s");
    write(t.path(), ".git/config", b"x");
    write(t.path(), "__pycache__/server.cpython-312.pyc", b"x");
    write(t.path(), "providers/__pycache__/a.pyc", b"x");
    write(t.path(), "providers/b.pyc", b"x");
    write(t.path(), ".venv/bin/python", b"x");
    write(t.path(), "web/node_modules/x/index.js", b"x");
    write(t.path(), "web/app.js", b"x");
    let b = bundle_dir(t.path()).unwrap();
    assert_eq!(b.files, vec!["server.py", "web/app.js"]);
    assert!(b.secrets_left_out.is_empty());
}

#[test]
fn jockeyignore_uses_gitignore_syntax_and_can_reinclude() {
    let t = tempfile::tempdir().unwrap();
    write(t.path(), "server.py", b"s");
    write(t.path(), "data/big.csv", b"x");
    write(t.path(), "notes.md", b"x");
    write(t.path(), "keep.pyc", b"x");
    write(t.path(), "providers/tmp.log", b"x");
    write(
        t.path(),
        IGNORE_FILE,
        b"# comment\ndata/\n*.md\n**/*.log\n!keep.pyc\n",
    );
    let b = bundle_dir(t.path()).unwrap();
    assert_eq!(b.files, vec![IGNORE_FILE, "keep.pyc", "server.py"]);
}

#[test]
fn static_matchers_hold_every_pattern() {
    // static_matcher drops a refused pattern silently (it cannot return a user's error):
    // every constant must compile.
    assert_eq!(
        default_ignores().num_ignores(),
        DEFAULT_IGNORES.len() as u64
    );
    assert_eq!(
        secrets::name_matcher().num_ignores(),
        SECRET_PATTERNS.len() as u64
    );
}

#[test]
fn a_later_user_pattern_can_ignore_again_what_it_reincluded() {
    let t = tempfile::tempdir().unwrap();
    write(t.path(), "server.py", b"s");
    write(t.path(), "a.pyc", b"x");
    write(t.path(), "b.pyc", b"x");
    write(t.path(), IGNORE_FILE, b"!*.pyc\nb.pyc\n");
    let b = bundle_dir(t.path()).unwrap();
    assert_eq!(b.files, vec![IGNORE_FILE, "a.pyc", "server.py"]);
}

#[test]
fn bad_jockeyignore_is_refused() {
    let t = tempfile::tempdir().unwrap();
    write(t.path(), "server.py", b"s");
    write(t.path(), IGNORE_FILE, b"{a,b\n");
    let err = bundle_dir(t.path()).unwrap_err();
    assert!(matches!(err, BundleError::BadIgnoreFile { .. }), "{err}");
    assert!(err.to_string().contains(IGNORE_FILE), "{err}");
}

#[test]
fn secrets_are_left_out_and_listed_even_when_reincluded() {
    let t = tempfile::tempdir().unwrap();
    write(t.path(), "server.py", b"s");
    for f in [
        ".env",
        ".env.production",
        "tls/server.pem",
        "id_rsa",
        "id_rsa.pub",
        "credentials.json",
        "providers/.env.local",
    ] {
        write(t.path(), f, b"SECRET=1");
    }
    write(t.path(), "credentials/aws", b"x");
    write(t.path(), IGNORE_FILE, b"!.env\n");
    let b = bundle_dir(t.path()).unwrap();
    assert_eq!(b.files, vec![IGNORE_FILE, "server.py"]);
    assert_eq!(
        b.secrets_left_out,
        vec![
            ".env",
            ".env.production",
            "credentials.json",
            "credentials/",
            "id_rsa",
            "id_rsa.pub",
            "providers/.env.local",
            "tls/server.pem",
        ]
    );
    let tar = String::from_utf8_lossy(&b.tar).to_string();
    assert!(!tar.contains("SECRET=1"));
}

#[test]
fn keys_keystores_and_credential_stores_are_left_out_at_any_depth() {
    let t = tempfile::tempdir().unwrap();
    write(t.path(), "server.py", b"s");
    let secrets = [
        "tls/server.key",
        "certs/client.p12",
        "certs/client.pfx",
        "certs/store.jks",
        "certs/app.keystore",
        "AuthKey_ABC.p8",
        "putty.ppk",
        "id_ed25519",
        "id_ed25519.pub",
        "deploy/id_ecdsa",
        "id_ecdsa_sk",
        "id_dsa",
        ".netrc",
        "_netrc",
        ".pypirc",
        "providers/.npmrc",
        ".git-credentials",
        ".pgpass",
        "kubeconfig",
        "prod.kubeconfig",
        "service-account-prod.json",
        "home/.docker/config.json",
        "client_secret.json",
        "auth/client_secret_123-abc.apps.googleusercontent.com.json",
        "token.json",
        ".streamlit/secrets.toml",
        "terraform.tfstate",
        "infra/prod.tfstate",
        "infra/terraform.tfstate.backup",
        ".ENV",
        "ID_RSA",
        "Token.JSON",
    ];
    for f in secrets {
        write(t.path(), f, b"SECRET=1");
    }
    let dirs = [
        ".ssh/config",
        ".aws/config",
        ".kube/config",
        ".gnupg/pubring.kbx",
    ];
    for f in dirs {
        write(t.path(), f, b"SECRET=1");
    }
    // Look-alikes that are not secrets stay in.
    for f in [
        "keys.py",
        "providers/keyring.py",
        "docker/config.json",
        "service.json",
        "monkey.txt",
        "tokenizer.json",
        "tokens.json",
        "secrets.py",
        ".streamlit/config.toml",
        "client_secret_loader.py",
        "infra/main.tf",
    ] {
        write(t.path(), f, b"kept");
    }
    let b = bundle_dir(t.path()).unwrap();
    assert_eq!(
        b.files,
        vec![
            ".streamlit/config.toml",
            "client_secret_loader.py",
            "docker/config.json",
            "infra/main.tf",
            "keys.py",
            "monkey.txt",
            "providers/keyring.py",
            "secrets.py",
            "server.py",
            "service.json",
            "tokenizer.json",
            "tokens.json",
        ]
    );
    let mut expected: Vec<String> = secrets.iter().map(|s| s.to_string()).collect();
    expected.extend([".ssh/", ".aws/", ".kube/", ".gnupg/"].map(String::from));
    expected.sort();
    assert_eq!(b.secrets_left_out, expected);
    assert!(!String::from_utf8_lossy(&b.tar).contains("SECRET=1"));
}

#[cfg(unix)]
#[test]
fn a_symlink_with_an_innocent_name_pointing_at_a_secret_is_left_out() {
    let t = tempfile::tempdir().unwrap();
    write(t.path(), "server.py", b"s");
    write(t.path(), ".env", b"SECRET=env");
    write(t.path(), ".aws/credentials", b"SECRET=aws");
    write(t.path(), "deploy/id_ed25519", b"SECRET=ssh");
    let link = |target: &str, name: &str| {
        let p = t.path().join(name);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).unwrap();
        }
        std::os::unix::fs::symlink(target, p).unwrap();
    };
    link(".env", "config.txt");
    link("../.aws/credentials", "providers/settings.ini");
    link(".aws", "cloud");
    link("deploy/id_ed25519", "readme.md");
    // A chain: the last hop decides.
    link("config.txt", "notes.txt");
    // An innocent link to an innocent file stays.
    write(t.path(), "shared/prompt.txt", b"kept");
    link("shared/prompt.txt", "prompt.txt");
    let b = bundle_dir(t.path()).unwrap();
    assert_eq!(
        b.files,
        vec!["prompt.txt", "server.py", "shared/prompt.txt"]
    );
    assert_eq!(
        b.secrets_left_out,
        vec![
            ".aws/",
            ".env",
            "cloud -> .aws",
            "config.txt -> .env",
            "deploy/id_ed25519",
            "notes.txt -> .env",
            "providers/settings.ini -> .aws/credentials",
            "readme.md -> deploy/id_ed25519",
        ]
    );
    assert!(!String::from_utf8_lossy(&b.tar).contains("SECRET="));
}

#[cfg(unix)]
#[test]
fn a_symlink_to_a_secret_outside_dir_is_left_out_not_offered_to_be_copied_in() {
    let home = tempfile::tempdir().unwrap();
    write(home.path(), ".aws/credentials", b"SECRET=aws");
    let t = tempfile::tempdir().unwrap();
    write(t.path(), "server.py", b"s");
    std::os::unix::fs::symlink(
        home.path().join(".aws/credentials"),
        t.path().join("aws.ini"),
    )
    .unwrap();
    let b = bundle_dir(t.path()).unwrap();
    assert_eq!(b.files, vec!["server.py"]);
    let canonical = fs::canonicalize(home.path().join(".aws/credentials")).unwrap();
    assert_eq!(
        b.secrets_left_out,
        vec![format!("aws.ini -> {}", canonical.display())]
    );
}

#[cfg(unix)]
#[test]
fn the_directory_holding_dir_does_not_make_its_files_secret() {
    // DIR inside a directory named like a secret: its links are judged inside DIR only.
    let t = tempfile::tempdir().unwrap();
    let project = t.path().join("credentials-service/agent");
    write(&project, "server.py", b"s");
    write(&project, "shared/prompt.txt", b"kept");
    std::os::unix::fs::symlink("shared/prompt.txt", project.join("prompt.txt")).unwrap();
    let b = bundle_dir(&project).unwrap();
    assert_eq!(
        b.files,
        vec!["prompt.txt", "server.py", "shared/prompt.txt"]
    );
    assert!(b.secrets_left_out.is_empty());
}

#[cfg(unix)]
#[test]
fn symlink_inside_is_stored_as_the_file_it_points_to() {
    let t = tempfile::tempdir().unwrap();
    write(t.path(), "server.py", b"s");
    write(t.path(), "shared/config.py", b"c");
    std::os::unix::fs::symlink("shared/config.py", t.path().join("config.py")).unwrap();
    std::os::unix::fs::symlink("shared", t.path().join("alias")).unwrap();
    let b = bundle_dir(t.path()).unwrap();
    assert_eq!(
        b.files,
        vec![
            "alias/config.py",
            "config.py",
            "server.py",
            "shared/config.py"
        ]
    );
    // Stored as regular files, not links.
    assert!(
        tar_listing(&b.tar)
            .iter()
            .all(|(_, mode, _)| *mode == 0o644 || *mode == 0o755)
    );

    // Same bytes as a tree with real copies instead of links.
    let u = tempfile::tempdir().unwrap();
    for f in ["alias/config.py", "config.py", "shared/config.py"] {
        write(u.path(), f, b"c");
    }
    write(u.path(), "server.py", b"s");
    assert_eq!(bundle_dir(u.path()).unwrap().hash, b.hash);
}

#[cfg(unix)]
#[test]
fn symlink_outside_is_refused_naming_file_and_fix() {
    let outside = tempfile::tempdir().unwrap();
    write(outside.path(), "secret.txt", b"x");
    let t = tempfile::tempdir().unwrap();
    write(t.path(), "server.py", b"s");
    fs::create_dir(t.path().join("providers")).unwrap();
    std::os::unix::fs::symlink(
        outside.path().join("secret.txt"),
        t.path().join("providers/link.txt"),
    )
    .unwrap();
    let err = bundle_dir(t.path()).unwrap_err();
    assert!(matches!(err, BundleError::SymlinkOutside { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("providers/link.txt"), "{msg}");
    assert!(msg.contains("outside the project directory"), "{msg}");
    assert!(msg.contains(IGNORE_FILE), "{msg}");

    // Ignoring it is the fix.
    write(t.path(), IGNORE_FILE, b"providers/link.txt\n");
    assert!(bundle_dir(t.path()).is_ok());
}

#[cfg(unix)]
#[test]
fn relative_symlink_escaping_via_dotdot_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let project = t.path().join("p");
    write(&project, "server.py", b"s");
    write(t.path(), "sibling.txt", b"x");
    std::os::unix::fs::symlink("../sibling.txt", project.join("s.txt")).unwrap();
    let err = bundle_dir(&project).unwrap_err();
    assert!(matches!(err, BundleError::SymlinkOutside { .. }), "{err}");
}

#[cfg(unix)]
#[test]
fn broken_symlink_and_loop_are_refused() {
    let t = tempfile::tempdir().unwrap();
    write(t.path(), "server.py", b"s");
    std::os::unix::fs::symlink("missing.py", t.path().join("dangling.py")).unwrap();
    let err = bundle_dir(t.path()).unwrap_err();
    assert!(matches!(err, BundleError::BrokenSymlink { .. }), "{err}");
    assert!(err.to_string().contains("dangling.py"), "{err}");

    let u = tempfile::tempdir().unwrap();
    write(u.path(), "server.py", b"s");
    fs::create_dir(u.path().join("sub")).unwrap();
    std::os::unix::fs::symlink("..", u.path().join("sub/up")).unwrap();
    let err = bundle_dir(u.path()).unwrap_err();
    assert!(matches!(err, BundleError::SymlinkLoop { .. }), "{err}");
    assert!(err.to_string().contains("sub/up"), "{err}");
}

#[cfg(unix)]
#[test]
fn fifo_and_socket_are_refused() {
    let t = tempfile::tempdir().unwrap();
    write(t.path(), "server.py", b"s");
    let status = std::process::Command::new("mkfifo")
        .arg(t.path().join("pipe"))
        .status()
        .unwrap();
    assert!(status.success());
    let err = bundle_dir(t.path()).unwrap_err();
    assert!(
        matches!(err, BundleError::SpecialFile { kind: "fifo", .. }),
        "{err}"
    );
    assert!(err.to_string().contains("pipe"), "{err}");
    fs::remove_file(t.path().join("pipe")).unwrap();

    let _sock = std::os::unix::net::UnixListener::bind(t.path().join("agent.sock")).unwrap();
    let err = bundle_dir(t.path()).unwrap_err();
    assert!(
        matches!(err, BundleError::SpecialFile { kind: "socket", .. }),
        "{err}"
    );
    assert!(err.to_string().contains("agent.sock"), "{err}");

    write(t.path(), IGNORE_FILE, b"*.sock\n");
    assert!(bundle_dir(t.path()).is_ok());
}

#[cfg(target_os = "linux")]
#[test]
fn non_utf8_path_is_refused() {
    use std::os::unix::ffi::OsStrExt;
    let t = tempfile::tempdir().unwrap();
    write(t.path(), "server.py", b"s");
    let name = std::ffi::OsStr::from_bytes(b"bad\xffname.py");
    fs::write(t.path().join(name), b"x").unwrap();
    let err = bundle_dir(t.path()).unwrap_err();
    assert!(matches!(err, BundleError::NonUtf8Path { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("bad"), "{msg}");
    assert!(msg.contains("UTF-8"), "{msg}");
}

#[test]
fn empty_and_missing_directories_are_refused() {
    let t = tempfile::tempdir().unwrap();
    let err = bundle_dir(t.path()).unwrap_err();
    assert!(matches!(err, BundleError::Empty { .. }), "{err}");
    assert!(err.to_string().contains("no files to package"), "{err}");

    // Only ignored files and secrets: still nothing to package, and it says what it left out.
    write(t.path(), "__pycache__/x.pyc", b"x");
    write(t.path(), ".env", b"x");
    write(t.path(), "infra/terraform.tfstate", b"x");
    fs::create_dir(t.path().join("emptydir")).unwrap();
    let err = bundle_dir(t.path()).unwrap_err();
    assert!(matches!(err, BundleError::Empty { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("leaving out secrets: .env, infra/terraform.tfstate)"),
        "{err}"
    );

    let missing = t.path().join("nope");
    let err = bundle_dir(&missing).unwrap_err();
    assert!(matches!(err, BundleError::Io { .. }), "{err}");
    assert!(err.to_string().contains("nope"), "{err}");

    write(t.path(), "file.txt", b"x");
    let err = bundle_dir(&t.path().join("file.txt")).unwrap_err();
    assert!(matches!(err, BundleError::NotADirectory { .. }), "{err}");
}
