//! A throwaway PKI and HTTPS server for tests that need the real kube-apiserver to call back into
//! a process on 127.0.0.1 (admission webhooks registered by URL with a caBundle).

use anyhow::{Context, Result};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::pem::PemObject;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A CA and a serving certificate for `127.0.0.1` and `localhost`, all PEM.
pub struct Pki {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

impl Pki {
    pub fn for_localhost() -> Result<Self> {
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "jockey-e2e-ca");
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;
        let key = KeyPair::generate()?;
        let params = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".into()])?;
        let cert = params.signed_by(&key, &ca)?;
        Ok(Self {
            ca_pem: ca.pem(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// The CA as a Kubernetes `caBundle` value (base64 of the PEM).
    pub fn ca_bundle(&self) -> String {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(&self.ca_pem)
    }

    fn server_config(&self) -> Result<rustls::ServerConfig> {
        let certs = rustls_pemfile_certs(&self.cert_pem)?;
        let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes())
            .context("parsing test key")?;
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
        Ok(config)
    }
}

fn rustls_pemfile_certs(pem: &str) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>> {
    rustls::pki_types::CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .context("parsing test certificate")
}

/// Serves HTTPS on 127.0.0.1 (a free port): every POST body is parsed as JSON and answered with
/// `handler`'s JSON. Returns the address; the server stops when the handle is aborted or dropped
/// with the runtime.
pub async fn serve_json<F>(pki: &Pki, handler: F) -> Result<(SocketAddr, JoinHandle<()>)>
where
    F: Fn(serde_json::Value) -> serde_json::Value + Send + Sync + 'static,
{
    serve_json_async(pki, move |v| std::future::ready(handler(v))).await
}

/// [`serve_json`] with an answer that may take its time (a webhook that holds a request until
/// the test has done something meanwhile).
pub async fn serve_json_async<F, Fut>(pki: &Pki, handler: F) -> Result<(SocketAddr, JoinHandle<()>)>
where
    F: Fn(serde_json::Value) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = serde_json::Value> + Send + 'static,
{
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(pki.server_config()?));
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let handler = Arc::new(handler);
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let acceptor = acceptor.clone();
            let handler = handler.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let handler = handler.clone();
                    async move {
                        let body = req.into_body().collect().await?.to_bytes();
                        let reply = match serde_json::from_slice(&body) {
                            Ok(v) => handler(v).await,
                            Err(e) => serde_json::json!({ "error": e.to_string() }),
                        };
                        let bytes = serde_json::to_vec(&reply).unwrap_or_default();
                        Ok::<_, hyper::Error>(
                            Response::builder()
                                .header("content-type", "application/json")
                                .body(Full::new(Bytes::from(bytes)))
                                .unwrap_or_default(),
                        )
                    }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    Ok((addr, task))
}
