//! Who may send admission reviews. With `--client-ca-file`, `/mutate` and `/validate` answer only
//! a caller whose TLS client certificate chains to that CA (and, with `--client-name`, names one
//! of those names): the API server, configured to present a certificate to webhooks
//! (`--admission-control-config-file`, manifests/README.md). Anyone else who reaches the port —
//! any pod, on a cluster without a NetworkPolicy — could otherwise post a review and have the
//! webhook record a claim for it (SECURITY.md, "forged reviews").
//!
//! The TLS layer asks for a certificate but does not require one (`allow_unauthenticated`), so
//! that kubelet probes and Prometheus reach `/healthz`, `/readyz` and `/metrics` without one; a
//! certificate that is presented must verify, or the handshake fails. Each connection carries
//! what its handshake showed ([`Caller`]) to the handlers, and the admission handlers check it
//! ([`Required::check`]) before reading the body.
//!
//! The CA file is polled like the serving certificate (tls.rs) and a changed CA is used for the
//! next handshake: rotating the API server's client CA needs no restart (publish a bundle with
//! both CAs first, then switch the API server's certificate, then drop the old CA).

use crate::tls::Reload;
use anyhow::{Context, Result, anyhow, bail};
use rustls::DistinguishedName;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// The client CA of `--client-ca-file`, reloaded when the file changes: the TLS layer's verifier.
#[derive(Debug)]
pub struct ClientCa {
    path: PathBuf,
    provider: Arc<CryptoProvider>,
    current: RwLock<(Arc<dyn ClientCertVerifier>, Vec<u8>)>,
}

/// A verifier trusting the CA certificates in `pem`, that lets a client without a certificate
/// through the handshake.
fn verifier(
    pem: &[u8],
    path: &Path,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(|e| anyhow!("{}: not a PEM certificate bundle: {e}", path.display()))?;
    if certs.is_empty() {
        bail!(
            "{}: contains no certificate; point --client-ca-file at the PEM CA that signed the API server's webhook client certificate",
            path.display()
        );
    }
    let mut roots = rustls::RootCertStore::empty();
    for c in certs {
        roots.add(c).map_err(|e| {
            anyhow!(
                "{}: a certificate in it is not a usable CA: {e}",
                path.display()
            )
        })?;
    }
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .allow_unauthenticated()
        .build()
        .map_err(|e| {
            anyhow!(
                "{}: cannot verify client certificates with it: {e}",
                path.display()
            )
        })
}

impl ClientCa {
    /// Loads the file once; failing here stops the server at start with the reason.
    pub fn new(path: PathBuf, provider: Arc<CryptoProvider>) -> Result<Self> {
        let pem = std::fs::read(&path)
            .with_context(|| format!("reading --client-ca-file {}", path.display()))?;
        let v = verifier(&pem, &path, &provider)?;
        Ok(Self {
            path,
            provider,
            current: RwLock::new((v, pem)),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn verifier(&self) -> Arc<dyn ClientCertVerifier> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .0
            .clone()
    }

    /// Re-reads the file; swaps the CA when it changed and is usable. A broken file keeps the
    /// previous CA in force.
    pub fn reload_if_changed(&self) -> Result<Reload> {
        let pem = std::fs::read(&self.path)
            .with_context(|| format!("reading {}", self.path.display()))?;
        if self.current.read().unwrap_or_else(|p| p.into_inner()).1 == pem {
            return Ok(Reload::Unchanged);
        }
        let v = verifier(&pem, &self.path, &self.provider)?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = (v, pem);
        Ok(Reload::Reloaded)
    }

    /// Polls the file every `interval` until the process ends.
    pub fn spawn_watch(
        self: Arc<Self>,
        interval: Duration,
        on_reload: impl Fn(bool) + Send + 'static,
    ) {
        let path = self.path.display().to_string();
        crate::tls::spawn_reloader(
            interval,
            move || self.reload_if_changed(),
            crate::tls::Labels {
                reloaded: "client CA reloaded",
                kept: "client CA not reloaded; still trusting the previous one",
                failed: "client CA reload task failed",
                path,
            },
            on_reload,
        );
    }
}

impl ClientCertVerifier for ClientCa {
    fn offer_client_auth(&self) -> bool {
        true
    }

    /// Optional: probes and Prometheus come without a certificate; the admission routes check.
    fn client_auth_mandatory(&self) -> bool {
        false
    }

    /// No hints: they would have to outlive a reload. An empty list lets the client send the
    /// certificate it has (Go's TLS client, the API server's, does exactly that).
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.verifier()
            .verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verifier().verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verifier().verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.verifier().supported_verify_schemes()
    }
}

/// The caller of one connection, as its TLS handshake showed it; a request extension.
#[derive(Debug, Clone)]
pub struct Caller {
    pub addr: SocketAddr,
    /// The names of the client certificate it presented (verified by the handshake: a
    /// certificate that does not chain to the client CA ends the handshake), or `None`.
    pub names: Option<Vec<String>>,
}

impl Caller {
    pub fn of(addr: SocketAddr, peer_certificates: Option<&[CertificateDer<'_>]>) -> Self {
        Self {
            addr,
            names: peer_certificates
                .and_then(|chain| chain.first())
                .map(|leaf| jockey_core::certs::client_names(leaf.as_ref())),
        }
    }
}

/// What `/mutate` and `/validate` require of their caller (`--client-ca-file`, `--client-name`).
#[derive(Debug, Clone)]
pub struct Required {
    pub ca_file: PathBuf,
    /// When not empty, the certificate's common name or a DNS name must be one of these.
    pub names: Vec<String>,
}

/// Why a caller is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    NoCertificate,
    /// Its certificate's names, none of them allowed.
    NameNotAllowed(Vec<String>),
}

impl Refusal {
    /// The metric label.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::NoCertificate => "no_certificate",
            Refusal::NameNotAllowed(_) => "name_not_allowed",
        }
    }
}

impl Required {
    pub fn check(&self, caller: Option<&Caller>) -> Result<(), Refusal> {
        let Some(names) = caller.and_then(|c| c.names.as_ref()) else {
            return Err(Refusal::NoCertificate);
        };
        if self.names.is_empty() || names.iter().any(|n| self.names.contains(n)) {
            Ok(())
        } else {
            Err(Refusal::NameNotAllowed(names.clone()))
        }
    }

    /// The answer's body: the cause and the fix.
    pub fn message(&self, refusal: &Refusal) -> String {
        let ca = self.ca_file.display();
        match refusal {
            Refusal::NoCertificate => format!(
                "jockey-webhook reads admission reviews only from the API server, which must present a TLS client certificate signed by the CA in --client-ca-file {ca}; this connection presented none, so the review was not read and nothing was recorded; fix: configure the API server to present one to webhooks (--admission-control-config-file with a WebhookAdmissionConfiguration whose kubeConfigFile has a user \"*\" with client-certificate and client-key signed by that CA; see manifests/README.md), or, where the API server presents none (EKS), run jockey-webhook without --client-ca-file"
            ),
            Refusal::NameNotAllowed(names) => format!(
                "jockey-webhook reads admission reviews only from the API server; this connection's client certificate is signed by the CA in --client-ca-file {ca} but names {names:?}, none of --client-name {:?}, so the review was not read and nothing was recorded; fix: have the API server present its webhook client certificate, or add its name with --client-name",
                self.names
            ),
        }
    }
}

#[cfg(test)]
mod tests;
