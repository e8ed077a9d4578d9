//! The webhook renews its own serving certificate before it expires, so that a forgotten
//! `kubectl jockey install` never turns into an outage: with failurePolicy Fail, an expired
//! certificate rejects every jockey object in the cluster.
//!
//! Two sources, each the CA that signed the certificate and the place the pods read it from:
//! - in a cluster, the CA Secret `install` made (`<name>-ca`) and the serving Secret the pods
//!   mount (`<name>-tls`): the Secret is updated, the kubelet refreshes the mounted files in every
//!   replica, and the file poller ([`crate::tls::ReloadingCert`]) serves them;
//! - outside a cluster (tests, `make demo`), a CA certificate and key on disk, and the served
//!   files themselves, rewritten atomically.
//!
//! Only a certificate the CA signed is renewed, with the same names and lifetime: rotating the CA
//! stays `install`'s (it publishes the new CA in the caBundle before any certificate it signed is
//! served), and a certificate from elsewhere is left alone. Several replicas may race: the Secret
//! is replaced with the resourceVersion it was read at, so exactly one write wins and the others
//! re-read it, find it renewed and wait for the next window.

use crate::state::App;
use crate::tls;
use anyhow::{Context, Result, anyhow, bail};
use jockey_core::certs::{self, CertInfo, Pair};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::PostParams;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Longest sleep between two looks: another replica, `install` or an operator may replace the
/// certificate meanwhile.
const MAX_CHECK_INTERVAL: Duration = Duration::from_secs(600);
/// Wait after a failed renewal before the next try.
const RETRY_INTERVAL: Duration = Duration::from_secs(30);
/// Field manager of the webhook's writes.
const FIELD_MANAGER: &str = "jockey-webhook";

/// Where the CA and the serving certificate are read and the new one written.
pub enum Source {
    Files {
        cert: PathBuf,
        key: PathBuf,
        ca_cert: PathBuf,
        ca_key: PathBuf,
        /// Shared with the file poller, so it never reads half a pair.
        lock: Arc<Mutex<()>>,
    },
    Secrets {
        api: Box<Api<Secret>>,
        namespace: String,
        ca: String,
        tls: String,
    },
}

pub struct Renewer {
    pub source: Source,
    /// How long before expiry; `None`: [`CertInfo::default_renew_before`].
    pub renew_before: Option<Duration>,
}

/// What one look at the certificate did.
#[derive(Debug, PartialEq, Eq)]
pub enum Pass {
    /// Nothing to do before `at` (Unix seconds).
    NotDue { at: i64 },
    /// A new certificate was written; it expires at `not_after`.
    Renewed { not_after: i64 },
    /// Another replica renewed the Secret first; look again.
    Lost,
}

fn secret_str(s: &Secret, key: &str) -> Option<String> {
    s.data
        .as_ref()?
        .get(key)
        .and_then(|b| String::from_utf8(b.0.clone()).ok())
        .filter(|v| !v.trim().is_empty())
}

impl Renewer {
    fn renew_before_secs(&self) -> Option<i64> {
        self.renew_before
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
    }

    /// What is renewed, for logs.
    pub fn describe(&self) -> String {
        match &self.source {
            Source::Files { cert, ca_cert, .. } => {
                format!("{} from the CA {}", cert.display(), ca_cert.display())
            }
            Source::Secrets {
                namespace, ca, tls, ..
            } => format!("Secret {namespace}/{tls} from the CA in Secret {namespace}/{ca}"),
        }
    }

    /// When `current` is due, or an error when the window would renew its successor again at
    /// once.
    fn due(&self, current: &CertInfo, what: &str, now: i64) -> Result<Option<i64>> {
        let renew_before = self.renew_before_secs();
        if let Some(rb) = renew_before
            && rb >= current.fresh_remaining()
        {
            bail!(
                "--renew-before {} is not shorter than what a renewed {what} would have left ({}s of its {}s lifetime): it would be renewed again at once, without end; set --renew-before shorter, or leave it out (a third of the lifetime)",
                humantime::format_duration(self.renew_before.unwrap_or_default()),
                current.fresh_remaining(),
                current.lifetime()
            );
        }
        Ok((!current.renewal_due(now, renew_before)).then(|| current.renew_at(renew_before)))
    }

    /// Looks once and renews when due.
    pub async fn pass(&self, now: i64) -> Result<Pass> {
        match &self.source {
            Source::Files {
                cert,
                key,
                ca_cert,
                ca_key,
                lock,
            } => {
                let read = |p: &PathBuf, flag: &str| {
                    std::fs::read_to_string(p)
                        .with_context(|| format!("reading {flag} {}", p.display()))
                };
                let current_pem = {
                    let _guard = lock.lock().unwrap_or_else(|p| p.into_inner());
                    read(cert, "--tls-cert-file")?
                };
                let what = format!("certificate {}", cert.display());
                let current =
                    certs::inspect(&current_pem).map_err(|e| anyhow!("{}: {e}", cert.display()))?;
                if let Some(at) = self.due(&current, &what, now)? {
                    return Ok(Pass::NotDue { at });
                }
                let ca = Pair {
                    cert_pem: read(ca_cert, "--renew-ca-cert-file")?,
                    key_pem: read(ca_key, "--renew-ca-key-file")?,
                    not_after: 0,
                };
                let next = renewed(
                    &ca,
                    &current_pem,
                    &current,
                    now,
                    &what,
                    &format!("the CA {}", ca_cert.display()),
                )?;
                let (cert, key, lock) = (cert.clone(), key.clone(), lock.clone());
                let not_after = next.not_after;
                tokio::task::spawn_blocking(move || {
                    tls::write_pair(&cert, &key, &next.cert_pem, &next.key_pem, &lock)
                })
                .await
                .context("writing the renewed certificate")??;
                Ok(Pass::Renewed { not_after })
            }
            Source::Secrets {
                api,
                namespace,
                ca,
                tls,
            } => {
                let access = "the webhook needs get and update on it and get on the CA Secret (the Role `kubectl jockey install` makes grants exactly these)";
                let mut secret = api
                    .get(tls)
                    .await
                    .with_context(|| format!("reading Secret {namespace}/{tls}; {access}"))?;
                let what = format!("Secret {namespace}/{tls}");
                let current_pem = secret_str(&secret, "tls.crt").with_context(|| {
                    format!("{what} has no tls.crt; rerun `kubectl jockey install`")
                })?;
                let current =
                    certs::inspect(&current_pem).map_err(|e| anyhow!("{what} tls.crt: {e}"))?;
                if let Some(at) = self.due(&current, &what, now)? {
                    return Ok(Pass::NotDue { at });
                }
                let ca_secret = api
                    .get(ca)
                    .await
                    .with_context(|| format!("reading the CA Secret {namespace}/{ca}; {access}"))?;
                let ca_what = format!("the CA in Secret {namespace}/{ca}");
                let ca_pair = Pair {
                    cert_pem: secret_str(&ca_secret, "tls.crt").with_context(|| {
                        format!("{ca_what}: no tls.crt; rerun `kubectl jockey install`")
                    })?,
                    key_pem: secret_str(&ca_secret, "tls.key").with_context(|| {
                        format!("{ca_what}: no tls.key; rerun `kubectl jockey install`")
                    })?,
                    not_after: 0,
                };
                let next = renewed(&ca_pair, &current_pem, &current, now, &what, &ca_what)?;
                let data = secret.data.get_or_insert_with(Default::default);
                for (k, v) in [
                    ("tls.crt", &next.cert_pem),
                    ("tls.key", &next.key_pem),
                    ("ca.crt", &ca_pair.cert_pem),
                ] {
                    data.insert(k.to_string(), ByteString(v.clone().into_bytes()));
                }
                // What `install` plans its next run by: it keeps a certificate it can tell is
                // current and signed by its CA.
                let annotations = secret
                    .metadata
                    .annotations
                    .get_or_insert_with(Default::default);
                annotations.insert(
                    certs::ANNOTATION_NOT_AFTER.to_string(),
                    next.not_after.to_string(),
                );
                annotations.insert(
                    certs::ANNOTATION_CA_SHA256.to_string(),
                    certs::ca_sha256(&ca_pair.cert_pem),
                );
                let pp = PostParams {
                    field_manager: Some(FIELD_MANAGER.to_string()),
                    ..Default::default()
                };
                // `secret` carries the resourceVersion it was read at: a replica that renewed it
                // meanwhile makes this a conflict, never a second new certificate.
                match api.replace(tls, &pp, &secret).await {
                    Ok(_) => Ok(Pass::Renewed {
                        not_after: next.not_after,
                    }),
                    Err(kube::Error::Api(e)) if e.code == 409 => Ok(Pass::Lost),
                    Err(e) => Err(e).with_context(|| format!("updating {what}; {access}")),
                }
            }
        }
    }

    /// Looks again at every renewal time (at least every [`MAX_CHECK_INTERVAL`]) until the
    /// process ends; counts `certificate_renewals{result}` and logs each failure once.
    pub fn spawn(self, app: Arc<App>) {
        tokio::spawn(async move {
            let mut last_error: Option<String> = None;
            loop {
                let now = tls::now_unix();
                let wait = match self.pass(now).await {
                    Ok(Pass::NotDue { at }) => {
                        last_error = None;
                        let secs = u64::try_from((at - now).max(1)).unwrap_or(1);
                        Duration::from_secs(secs).min(MAX_CHECK_INTERVAL)
                    }
                    Ok(Pass::Renewed { not_after }) => {
                        last_error = None;
                        app.metrics.cert_renewal("ok");
                        tracing::info!(
                            renewed = %self.describe(),
                            not_after = %certs::rfc3339(not_after),
                            "serving certificate renewed"
                        );
                        Duration::ZERO
                    }
                    Ok(Pass::Lost) => {
                        app.metrics.cert_renewal("conflict");
                        tracing::info!(
                            renewed = %self.describe(),
                            "another replica renewed the serving certificate first; reading it again"
                        );
                        Duration::ZERO
                    }
                    Err(e) => {
                        let msg = format!("{e:#}");
                        app.metrics.cert_renewal("error");
                        if last_error.as_deref() != Some(msg.as_str()) {
                            tracing::warn!(error = %msg, "serving certificate not renewed; retrying");
                        }
                        last_error = Some(msg);
                        RETRY_INTERVAL
                    }
                };
                tokio::time::sleep(wait).await;
            }
        });
    }
}

/// The successor of `current` signed by `ca`, once it is sure `ca` signed `current` (so the
/// caBundle trusts it) and is itself valid.
fn renewed(
    ca: &Pair,
    current_pem: &str,
    current: &CertInfo,
    now: i64,
    what: &str,
    ca_what: &str,
) -> Result<Pair> {
    let ca_info = certs::inspect(&ca.cert_pem).map_err(|e| anyhow!("{ca_what}: {e}"))?;
    ca_info.check_valid(now).map_err(|invalid| {
        anyhow!(
            "{ca_what}: {invalid}; rerun `kubectl jockey install`, which replaces the CA in its last year"
        )
    })?;
    if !certs::signed_by(current_pem, &ca.cert_pem).map_err(|e| anyhow!("{ca_what}: {e}"))? {
        bail!(
            "{what} is not signed by {ca_what}, so a certificate it signs may not be trusted by the webhook configurations' caBundle; left alone: a CA rotation is `kubectl jockey install`'s (rerun it), and a certificate issued elsewhere (cert-manager) is renewed there"
        );
    }
    certs::renew_serving(ca, current, now).map_err(|e| anyhow!("renewing {what}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        vec!["127.0.0.1".into(), "localhost".into()]
    }

    struct Dir {
        _tmp: tempfile::TempDir,
        renewer: Renewer,
        cert: PathBuf,
        ca: Pair,
    }

    fn files(ca: &Pair, serving: &Pair, renew_before: Option<Duration>) -> Dir {
        let tmp = tempfile::tempdir().unwrap();
        let p = |f: &str| tmp.path().join(f);
        std::fs::write(p("tls.crt"), &serving.cert_pem).unwrap();
        std::fs::write(p("tls.key"), &serving.key_pem).unwrap();
        std::fs::write(p("ca.crt"), &ca.cert_pem).unwrap();
        std::fs::write(p("ca.key"), &ca.key_pem).unwrap();
        Dir {
            renewer: Renewer {
                source: Source::Files {
                    cert: p("tls.crt"),
                    key: p("tls.key"),
                    ca_cert: p("ca.crt"),
                    ca_key: p("ca.key"),
                    lock: Arc::new(Mutex::new(())),
                },
                renew_before,
            },
            cert: p("tls.crt"),
            ca: ca.clone(),
            _tmp: tmp,
        }
    }

    #[tokio::test]
    async fn files_are_renewed_inside_the_window_only_and_atomically() {
        let ca = certs::new_ca("c", 10).unwrap();
        let now = tls::now_unix();
        let serving = certs::issue_serving_between(&ca, &names(), now - 10, now + 120).unwrap();
        let d = files(&ca, &serving, Some(Duration::from_secs(60)));
        // 120 s left, renewed 60 s before expiry: not yet.
        assert_eq!(
            d.renewer.pass(now).await.unwrap(),
            Pass::NotDue { at: now + 60 }
        );
        assert_eq!(std::fs::read_to_string(&d.cert).unwrap(), serving.cert_pem);
        // Inside the window: a new pair, same names, signed by the CA, key and cert together.
        let later = now + 61;
        let Pass::Renewed { not_after } = d.renewer.pass(later).await.unwrap() else {
            panic!("not renewed");
        };
        let pem = std::fs::read_to_string(&d.cert).unwrap();
        assert_ne!(pem, serving.cert_pem);
        let info = certs::inspect(&pem).unwrap();
        assert_eq!(info.names, names());
        assert_eq!(info.not_after, not_after);
        assert_eq!(info.lifetime(), 130);
        assert!(certs::signed_by(&pem, &d.ca.cert_pem).unwrap());
        let key = std::fs::read_to_string(d.cert.with_file_name("tls.key")).unwrap();
        tls::load_certified_key(
            pem.as_bytes(),
            key.as_bytes(),
            &d.cert,
            &d.cert,
            &tls::provider(),
            later,
        )
        .expect("the new pair loads");
        // No temporary file is left behind.
        let mut left: Vec<String> = std::fs::read_dir(d.cert.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        left.sort();
        assert_eq!(left, ["ca.crt", "ca.key", "tls.crt", "tls.key"]);
        // And the successor is not due at once.
        assert!(matches!(
            d.renewer.pass(later).await.unwrap(),
            Pass::NotDue { .. }
        ));
    }

    #[tokio::test]
    async fn an_expired_certificate_is_renewed_and_the_default_window_is_a_third() {
        let ca = certs::new_ca("c", 10).unwrap();
        let now = tls::now_unix();
        let expired = certs::issue_serving_between(&ca, &names(), now - 600, now - 300).unwrap();
        let d = files(&ca, &expired, None);
        assert!(matches!(
            d.renewer.pass(now).await.unwrap(),
            Pass::Renewed { .. }
        ));
        let serving = certs::issue_serving_between(&ca, &names(), now, now + 900).unwrap();
        let d = files(&ca, &serving, None);
        assert_eq!(
            d.renewer.pass(now).await.unwrap(),
            Pass::NotDue { at: now + 600 }
        );
    }

    #[tokio::test]
    async fn a_window_as_long_as_the_lifetime_is_refused() {
        let ca = certs::new_ca("c", 10).unwrap();
        let now = tls::now_unix();
        let serving = certs::issue_serving_between(&ca, &names(), now, now + 100).unwrap();
        let d = files(&ca, &serving, Some(Duration::from_secs(95)));
        let e = format!("{:#}", d.renewer.pass(now).await.unwrap_err());
        assert!(
            e.contains("without end") && e.contains("--renew-before 1m 35s"),
            "{e}"
        );
        assert_eq!(std::fs::read_to_string(&d.cert).unwrap(), serving.cert_pem);
    }

    #[tokio::test]
    async fn a_certificate_another_ca_signed_is_left_alone() {
        let ca = certs::new_ca("c", 10).unwrap();
        let other = certs::new_ca("c", 10).unwrap();
        let now = tls::now_unix();
        let serving = certs::issue_serving_between(&other, &names(), now - 600, now + 1).unwrap();
        let d = files(&ca, &serving, None);
        let e = format!("{:#}", d.renewer.pass(now).await.unwrap_err());
        assert!(e.contains("is not signed by the CA"), "{e}");
        assert!(e.contains("kubectl jockey install"), "{e}");
        assert_eq!(std::fs::read_to_string(&d.cert).unwrap(), serving.cert_pem);
    }

    #[tokio::test]
    async fn a_broken_or_expired_ca_is_an_error_that_names_it() {
        let now = tls::now_unix();
        let ca = certs::new_ca("c", 10).unwrap();
        let serving = certs::issue_serving_between(&ca, &names(), now - 600, now + 1).unwrap();
        let broken = Pair {
            key_pem: "not a key".into(),
            ..ca.clone()
        };
        let d = files(&broken, &serving, None);
        let e = format!("{:#}", d.renewer.pass(now).await.unwrap_err());
        assert!(e.contains("reading the CA key"), "{e}");
        // A CA past its end (checked a day after the ten days it lives).
        let d = files(&ca, &serving, None);
        let e = format!("{:#}", d.renewer.pass(now + 11 * 86_400).await.unwrap_err());
        assert!(e.contains("the CA") && e.contains("expired at"), "{e}");
        // A missing CA file names the flag.
        std::fs::remove_file(d.cert.with_file_name("ca.key")).unwrap();
        let e = format!("{:#}", d.renewer.pass(now).await.unwrap_err());
        assert!(e.contains("--renew-ca-key-file"), "{e}");
    }
}
