//! `jockey-webhook dev-certs --dir DIR`: a fresh CA and a serving certificate signed by it, for
//! running the webhook next to a cluster and registering it by URL. The private key is written
//! readable by its owner only (0600), whatever the umask, and replaces an older file atomically
//! so that it is never readable by others, not even for a moment.

use anyhow::{Context, Result};
use std::io::Write;
use std::path::Path;

/// Writes `ca.crt`, `tls.crt` (0644) and `tls.key` (0600) into `dir`, and `ca.key` (0600) when
/// `keep_ca_key`.
pub fn write(dir: &Path, hosts: &[String], days: i64, keep_ca_key: bool) -> Result<()> {
    use jockey_core::certs;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let ca = certs::new_ca("jockey-webhook-dev-ca", days)?;
    let serving = certs::issue_serving(&ca, "jockey-webhook-dev-ca", hosts, days)?;
    write_file(dir, "ca.crt", ca.cert_pem.as_bytes(), 0o644)?;
    write_file(dir, "tls.crt", serving.cert_pem.as_bytes(), 0o644)?;
    write_file(dir, "tls.key", serving.key_pem.as_bytes(), 0o600)?;
    // The CA key is kept only for a webhook that renews its own certificate from it
    // (--renew-ca-key-file); otherwise nothing signs with it again (run dev-certs anew instead).
    if keep_ca_key {
        write_file(dir, "ca.key", ca.key_pem.as_bytes(), 0o600)?;
    }
    println!(
        "wrote {0}/ca.crt, {0}/tls.crt, {0}/tls.key{2} (valid {days} days for {1}; keys \
         readable by their owner only)",
        dir.display(),
        hosts.join(", "),
        if keep_ca_key {
            format!(" and {}/ca.key", dir.display())
        } else {
            String::new()
        }
    );
    Ok(())
}

/// Writes `dir/name` with `mode` through a new file renamed over it: the mode is set when the
/// file is created (so the umask cannot widen what was never narrower), and an existing file
/// with wider permissions is replaced rather than rewritten in place.
fn write_file(dir: &Path, name: &str, content: &[u8], mode: u32) -> Result<()> {
    let path = dir.join(name);
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    let written = (|| -> std::io::Result<()> {
        let mut file = options.open(&tmp)?;
        #[cfg(unix)]
        {
            // The umask may have taken bits away from `mode`; set exactly `mode`.
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(std::fs::Permissions::from_mode(mode))?;
        }
        file.write_all(content)?;
        file.sync_all()?;
        std::fs::rename(&tmp, &path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.with_context(|| format!("writing {}", path.display()))
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn the_key_is_readable_by_its_owner_only_and_the_certificates_by_all() {
        let dir = tempfile::tempdir().unwrap();
        // An older key left world-readable is replaced, not kept with its mode.
        std::fs::write(dir.path().join("tls.key"), "old").unwrap();
        std::fs::set_permissions(
            dir.path().join("tls.key"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        write(dir.path(), &["127.0.0.1".to_string()], 1, false).unwrap();
        assert_eq!(mode(&dir.path().join("tls.key")), 0o600);
        assert_eq!(mode(&dir.path().join("tls.crt")), 0o644);
        assert_eq!(mode(&dir.path().join("ca.crt")), 0o644);
        let key = std::fs::read_to_string(dir.path().join("tls.key")).unwrap();
        assert!(key.contains("PRIVATE KEY"), "{key}");
        // No CA key and no temporary file is left behind.
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        names.sort();
        assert_eq!(names, ["ca.crt", "tls.crt", "tls.key"]);
        // The pair works: the webhook's own loader accepts it.
        let (cert_path, key_path) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
        crate::tls::load_certified_key(
            &std::fs::read(&cert_path).unwrap(),
            &std::fs::read(&key_path).unwrap(),
            &cert_path,
            &key_path,
            &crate::tls::provider(),
            crate::tls::now_unix(),
        )
        .unwrap();
    }

    #[test]
    fn the_ca_key_is_kept_on_request_for_renewal_and_signs_the_certificate() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &["127.0.0.1".to_string()], 1, true).unwrap();
        assert_eq!(mode(&dir.path().join("ca.key")), 0o600);
        let read = |f: &str| std::fs::read_to_string(dir.path().join(f)).unwrap();
        let ca = jockey_core::certs::Pair {
            cert_pem: read("ca.crt"),
            key_pem: read("ca.key"),
            not_after: 0,
        };
        let now = crate::tls::now_unix();
        let current = jockey_core::certs::inspect(&read("tls.crt")).unwrap();
        // The kept key is the CA's own: a renewal from it is signed by the CA.
        let next = jockey_core::certs::renew_serving(&ca, &current, now).unwrap();
        assert!(jockey_core::certs::signed_by(&next.cert_pem, &ca.cert_pem).unwrap());
    }
}
