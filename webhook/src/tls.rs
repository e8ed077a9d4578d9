//! TLS: rustls with TLS 1.2 and 1.3 only, and a certificate resolver that reloads the serving
//! certificate when its files change.
//!
//! Why a resolver rather than rebuilding the acceptor: every new handshake asks the resolver,
//! so a swap takes effect for the next connection while established connections keep their
//! session. Nothing restarts and no request is dropped. The files are polled (by content, once a
//! second) rather than watched with inotify, because a mounted Secret is updated by swapping a
//! `..data` symlink, which inotify reports unreliably; a poll also survives the files being
//! replaced by a new inode.

use anyhow::{Context, Result, anyhow, bail};
use jockey_core::certs::{self, CertInfo};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

/// The crypto provider: ring, as the workspace's rustls is built with.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Seconds since the Unix epoch.
pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// What to do about a certificate that must not be served.
pub const RENEW_FIX: &str = "renew it: rerun `kubectl jockey install` (it renews the serving certificate), run the webhook with --renew-ca-secret/--renew-tls-secret or --renew-ca-cert-file/--renew-ca-key-file so it renews its own, or for a local run write a new pair with `jockey-webhook dev-certs`";

/// Parses a PEM certificate chain and private key into a key rustls can serve, checking that
/// they belong together and that the certificate is valid at `now`: an expired or not yet valid
/// certificate makes the API server fail every call (with failurePolicy Fail, every jockey
/// object), so it is refused rather than served. Errors name the file and the fix.
pub fn load_certified_key(
    cert_pem: &[u8],
    key_pem: &[u8],
    cert_path: &Path,
    key_path: &Path,
    provider: &CryptoProvider,
    now: i64,
) -> Result<(CertifiedKey, CertInfo)> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| anyhow!("{}: not a PEM certificate chain: {e}", cert_path.display()))?;
    if chain.is_empty() {
        bail!(
            "{}: contains no certificate; point --tls-cert-file at the PEM serving certificate (tls.crt)",
            cert_path.display()
        );
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| {
        anyhow!(
            "{}: not a PEM private key ({e}); point --tls-key-file at the PEM key (tls.key)",
            key_path.display()
        )
    })?;
    let key = CertifiedKey::from_der(chain, key, provider).map_err(|e| {
        anyhow!(
            "{} and {}: the key does not fit the certificate ({e}); write both files from the same Secret",
            cert_path.display(),
            key_path.display()
        )
    })?;
    let info = certs::inspect(&String::from_utf8_lossy(cert_pem))
        .map_err(|e| anyhow!("{}: {e}", cert_path.display()))?;
    info.check_valid(now).map_err(|invalid| {
        anyhow!(
            "{}: the serving certificate cannot be served: {invalid}; {RENEW_FIX}",
            cert_path.display()
        )
    })?;
    Ok((key, info))
}

/// Writes a new pair over `cert_path` and `key_path`, each atomically (a new file renamed over
/// the old, so no reader sees half a file), under `lock`, which [`ReloadingCert`] holds while it
/// reads the two: it never sees the new certificate with the old key.
pub fn write_pair(
    cert_path: &Path,
    key_path: &Path,
    cert_pem: &str,
    key_pem: &str,
    lock: &Mutex<()>,
) -> Result<()> {
    fn write_new(path: &Path, content: &str, mode: u32) -> Result<PathBuf> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut name = path.as_os_str().to_owned();
        name.push(".new");
        let tmp = PathBuf::from(name);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)
            .with_context(|| format!("creating {}", tmp.display()))?;
        f.write_all(content.as_bytes())
            .and_then(|()| f.sync_all())
            .with_context(|| format!("writing {}", tmp.display()))?;
        Ok(tmp)
    }
    let key_tmp = write_new(key_path, key_pem, 0o600)?;
    let cert_tmp = write_new(cert_path, cert_pem, 0o644)?;
    let _guard = lock.lock().unwrap_or_else(|p| p.into_inner());
    std::fs::rename(&key_tmp, key_path)
        .with_context(|| format!("renaming {} to {}", key_tmp.display(), key_path.display()))?;
    std::fs::rename(&cert_tmp, cert_path)
        .with_context(|| format!("renaming {} to {}", cert_tmp.display(), cert_path.display()))?;
    Ok(())
}

/// Serves the current certificate; [`ReloadingCert::reload_if_changed`] swaps it.
#[derive(Debug)]
pub struct ReloadingCert {
    cert_path: PathBuf,
    key_path: PathBuf,
    provider: Arc<CryptoProvider>,
    current: RwLock<Loaded>,
    /// Held while the pair is read, and by [`write_pair`] while it is replaced.
    files: Arc<Mutex<()>>,
}

#[derive(Debug)]
struct Loaded {
    key: Arc<CertifiedKey>,
    info: CertInfo,
    cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
}

/// What a reload attempt did.
#[derive(Debug, PartialEq, Eq)]
pub enum Reload {
    Unchanged,
    Reloaded,
}

impl ReloadingCert {
    /// Loads the files once; failing here stops the server at start with the reason.
    pub fn new(
        cert_path: PathBuf,
        key_path: PathBuf,
        provider: Arc<CryptoProvider>,
        files: Arc<Mutex<()>>,
    ) -> Result<Self> {
        let (cert_pem, key_pem) = {
            let _guard = files.lock().unwrap_or_else(|p| p.into_inner());
            let cert_pem = std::fs::read(&cert_path)
                .with_context(|| format!("reading --tls-cert-file {}", cert_path.display()))?;
            let key_pem = std::fs::read(&key_path)
                .with_context(|| format!("reading --tls-key-file {}", key_path.display()))?;
            (cert_pem, key_pem)
        };
        let (key, info) = load_certified_key(
            &cert_pem,
            &key_pem,
            &cert_path,
            &key_path,
            &provider,
            now_unix(),
        )?;
        Ok(Self {
            cert_path,
            key_path,
            provider,
            current: RwLock::new(Loaded {
                key: Arc::new(key),
                info,
                cert_pem,
                key_pem,
            }),
            files,
        })
    }

    /// Validity and names of the certificate being served.
    pub fn served(&self) -> CertInfo {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .info
            .clone()
    }

    /// Re-reads the files; swaps the certificate when they changed and form a valid pair. A
    /// half-written pair (certificate updated, key not yet) fails the check and is retried on
    /// the next poll while the old certificate keeps serving.
    pub fn reload_if_changed(&self) -> Result<Reload> {
        let (cert_pem, key_pem) = {
            let _guard = self.files.lock().unwrap_or_else(|p| p.into_inner());
            let cert_pem = std::fs::read(&self.cert_path)
                .with_context(|| format!("reading {}", self.cert_path.display()))?;
            let key_pem = std::fs::read(&self.key_path)
                .with_context(|| format!("reading {}", self.key_path.display()))?;
            (cert_pem, key_pem)
        };
        {
            let cur = self.current.read().unwrap_or_else(|p| p.into_inner());
            if cur.cert_pem == cert_pem && cur.key_pem == key_pem {
                return Ok(Reload::Unchanged);
            }
        }
        let (key, info) = load_certified_key(
            &cert_pem,
            &key_pem,
            &self.cert_path,
            &self.key_path,
            &self.provider,
            now_unix(),
        )?;
        let mut cur = self.current.write().unwrap_or_else(|p| p.into_inner());
        *cur = Loaded {
            key: Arc::new(key),
            info,
            cert_pem,
            key_pem,
        };
        Ok(Reload::Reloaded)
    }

    /// Polls the files every `interval` until the process ends.
    pub fn spawn_watch(
        self: Arc<Self>,
        interval: Duration,
        on_reload: impl Fn(bool) + Send + 'static,
    ) {
        let path = self.cert_path.display().to_string();
        spawn_reloader(
            interval,
            move || self.reload_if_changed(),
            Labels {
                reloaded: "serving certificate reloaded",
                kept: "serving certificate not reloaded; still serving the previous one",
                failed: "certificate reload task failed",
                path,
            },
            on_reload,
        );
    }
}

/// What a reloader logs, with the file it watches.
pub struct Labels {
    pub reloaded: &'static str,
    pub kept: &'static str,
    pub failed: &'static str,
    pub path: String,
}

/// Calls `reload` (on the blocking pool: it reads files) every `interval` until the process
/// ends; logs a reload, and a persisting problem once rather than every tick, and tells
/// `on_reload` each outcome that matters (true: reloaded, false: a new problem).
pub fn spawn_reloader(
    interval: Duration,
    reload: impl Fn() -> Result<Reload> + Send + Sync + 'static,
    labels: Labels,
    on_reload: impl Fn(bool) + Send + 'static,
) {
    let reload = Arc::new(reload);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_error: Option<String> = None;
        loop {
            tick.tick().await;
            let r = reload.clone();
            match tokio::task::spawn_blocking(move || r()).await {
                Ok(Ok(Reload::Reloaded)) => {
                    tracing::info!(file = %labels.path, "{}", labels.reloaded);
                    last_error = None;
                    on_reload(true);
                }
                Ok(Ok(Reload::Unchanged)) => last_error = None,
                Ok(Err(e)) => {
                    let msg = format!("{e:#}");
                    if last_error.as_deref() != Some(msg.as_str()) {
                        tracing::warn!(error = %msg, "{}", labels.kept);
                        on_reload(false);
                    }
                    last_error = Some(msg);
                }
                Err(e) => tracing::error!(error = %e, "{}", labels.failed),
            }
        }
    });
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .key
                .clone(),
        )
    }
}

/// The server's TLS configuration: TLS 1.3 and 1.2 only, ALPN h2 and http/1.1. Client
/// certificates are asked for, and verified when presented, only with a client CA
/// (`--client-ca-file`: see client_auth.rs); without one the API server authenticates us, not
/// the other way round.
pub fn server_config(
    resolver: Arc<ReloadingCert>,
    provider: Arc<CryptoProvider>,
    client_ca: Option<Arc<crate::client_auth::ClientCa>>,
) -> Result<rustls::ServerConfig> {
    let builder = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .context("building the TLS configuration")?;
    let builder = match client_ca {
        Some(ca) => builder.with_client_cert_verifier(ca),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}
