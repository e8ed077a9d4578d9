//! `validate-alb-routing --probe`: a real `GET https://HOST/health` with certificate
//! verification. HOST is `localhost`, served on 127.0.0.1:443 by a throwaway TLS server whose CA
//! the plugin is told to trust through `SSL_CERT_FILE` (honoured by the platform trust store
//! loader). Port 443 needs root, which the tests and CI run as.

mod alb_support;

use alb_support::{jockey, text};
use anyhow::{Context, Result};
use jockey_e2e::{TestNamespace, client, tls::Pki};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::Ingress;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Answers every request with `status`, over TLS on 127.0.0.1:443.
async fn serve(pki: &Pki, status: Arc<AtomicU16>) -> Result<tokio::task::JoinHandle<()>> {
    let certs =
        CertificateDer::pem_slice_iter(pki.cert_pem.as_bytes()).collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_slice(pki.key_pem.as_bytes())?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(certs, key)?;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:443")
        .await
        .context("binding 127.0.0.1:443 (the probe test needs root and a free port 443)")?;
    Ok(tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let acceptor = acceptor.clone();
            let status = status.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut req = Vec::new();
                let mut buf = [0u8; 1024];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                let code = status.load(Ordering::SeqCst);
                let ok = req.starts_with(b"GET /health HTTP/1.1\r\n")
                    && String::from_utf8_lossy(&req).contains("\r\nHost: localhost\r\n");
                let code = if ok { code } else { 400 };
                let reply = format!(
                    "HTTP/1.1 {code} X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
                );
                let _ = tls.write_all(reply.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    }))
}

fn probe_line(stdout: &[u8]) -> String {
    String::from_utf8_lossy(stdout)
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some("probe"))
        .unwrap_or_default()
        .to_string()
}

async fn scenario(ns: &str, base: &str, ca_file: &str) -> Result<()> {
    let client = client().await?;
    let (svc, slice) = alb_support::service_and_slice("svc-probe", &["10.0.5.5"]);
    Api::<Service>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &serde_json::from_value(svc)?)
        .await?;
    Api::<EndpointSlice>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &serde_json::from_value(slice)?)
        .await?;
    let ingresses: Api<Ingress> = Api::namespaced(client.clone(), ns);
    ingresses
        .create(
            &PostParams::default(),
            &serde_json::from_value(alb_support::ingress(
                "ing-probe",
                "localhost",
                "svc-probe",
                base,
            ))?,
        )
        .await?;
    ingresses
        .patch_status(
            "ing-probe",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"loadBalancer": {"ingress": [
                {"hostname": "k8s-probe-1.us-east-1.elb.amazonaws.com"}]}}})),
        )
        .await?;

    let status = Arc::new(AtomicU16::new(200));
    let pki_server = Pki::for_localhost()?;
    std::fs::write(ca_file, &pki_server.ca_pem)?;
    let server = serve(&pki_server, status.clone()).await?;
    let args = [
        "validate-alb-routing",
        "localhost",
        "--probe",
        "--no-aws",
        "--no-dns",
        "--alb-group",
        base,
    ];
    let trusted = [("SSL_CERT_FILE", ca_file)];

    // 200 from /health with a certificate the machine trusts: the probe passes.
    let out = jockey(&args, &trusted)?;
    anyhow::ensure!(out.status.success(), "{}", text(&out));
    let line = probe_line(&out.stdout);
    anyhow::ensure!(
        line.starts_with("PASS") && line.contains("answered 200"),
        "{}",
        text(&out)
    );

    // 503: the probe fails with the code.
    status.store(503, Ordering::SeqCst);
    let out = jockey(&args, &trusted)?;
    anyhow::ensure!(!out.status.success(), "{}", text(&out));
    let line = probe_line(&out.stdout);
    anyhow::ensure!(
        line.starts_with("FAIL") && line.contains("answered 503"),
        "{}",
        text(&out)
    );

    // A certificate nobody vouches for is refused: verification is on.
    status.store(200, Ordering::SeqCst);
    let other_ca = std::path::Path::new(ca_file).with_extension("other.pem");
    std::fs::write(&other_ca, Pki::for_localhost()?.ca_pem)?;
    let out = jockey(&args, &[("SSL_CERT_FILE", &other_ca.to_string_lossy())])?;
    anyhow::ensure!(!out.status.success(), "{}", text(&out));
    let line = probe_line(&out.stdout);
    anyhow::ensure!(
        line.starts_with("FAIL") && line.contains("TLS handshake"),
        "{}",
        text(&out)
    );

    server.abort();
    Ok(())
}

// Multi-threaded: the TLS server must answer while the test blocks on the plugin process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_gets_health_over_verified_https() -> Result<()> {
    let client = client().await?;
    let ns = TestNamespace::create(&client, "alb-probe").await?;
    let base = format!("e2e-alb-probe-{}", alb_support::run_id());
    let ca_file = std::env::temp_dir().join(format!("{base}-ca.pem"));
    let result = scenario(&ns.name, &base, &ca_file.to_string_lossy()).await;
    // Always clean up: a leftover Ingress for `localhost` would make the next run see two.
    ns.cleanup().await?;
    let _ = std::fs::remove_file(&ca_file);
    result
}
