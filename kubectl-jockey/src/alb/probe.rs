//! `validate-alb-routing --probe`: `GET https://HOST/health` the way a user's browser would reach
//! it — system DNS, the machine's trusted CAs, SNI and Host set to HOST — and report the status
//! code. One request, HTTP/1.1, no redirects followed: a redirect is itself worth seeing.

use super::report::ProbeResult;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore, pki_types::ServerName};

const TIMEOUT: Duration = Duration::from_secs(10);

pub async fn probe(host: &str) -> ProbeResult {
    match tokio::time::timeout(TIMEOUT, get_health(host)).await {
        Ok(Ok(code)) => ProbeResult::Status(code),
        Ok(Err(e)) => ProbeResult::Error(e),
        Err(_) => ProbeResult::Error(format!("no answer within {}s", TIMEOUT.as_secs())),
    }
}

fn tls_config() -> Result<ClientConfig, String> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        return Err(
            "no trusted CA certificates on this machine (install ca-certificates)".to_string(),
        );
    }
    // ring, explicitly: the process has more than one rustls provider compiled in.
    ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))
        .map(|b| b.with_root_certificates(roots).with_no_client_auth())
}

async fn get_health(host: &str) -> Result<u16, String> {
    let config = tls_config()?;
    let name = ServerName::try_from(host.to_string())
        .map_err(|e| format!("{host:?} is not a valid TLS server name: {e}"))?;
    let tcp = TcpStream::connect((host, 443))
        .await
        .map_err(|e| format!("connecting to {host}:443: {e}"))?;
    let mut tls = TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS handshake with {host}: {e}"))?;
    let request = format!(
        "GET /health HTTP/1.1\r\nHost: {host}\r\nUser-Agent: kubectl-jockey/{}\r\n\
         Accept: */*\r\nConnection: close\r\n\r\n",
        env!("CARGO_PKG_VERSION")
    );
    tls.write_all(request.as_bytes())
        .await
        .map_err(|e| format!("sending the request to {host}: {e}"))?;
    // The status line is all we need; it comes first and is short.
    let mut head = Vec::new();
    let mut buf = [0u8; 512];
    while !head.windows(2).any(|w| w == b"\r\n") && head.len() < 4096 {
        let n = tls
            .read(&mut buf)
            .await
            .map_err(|e| format!("reading the answer from {host}: {e}"))?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    status_code(&head).ok_or_else(|| {
        format!(
            "{host} did not answer with HTTP: {:?}",
            String::from_utf8_lossy(&head[..head.len().min(80)])
        )
    })
}

/// The code of an HTTP/1.x status line.
pub fn status_code(head: &[u8]) -> Option<u16> {
    let line = head.split(|b| *b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?.trim_end();
    let mut parts = line.split(' ');
    if !parts.next()?.starts_with("HTTP/1.") {
        return None;
    }
    let code = parts.next()?;
    (code.len() == 3).then(|| code.parse().ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines() {
        assert_eq!(status_code(b"HTTP/1.1 200 OK\r\nServer: x\r\n"), Some(200));
        assert_eq!(
            status_code(b"HTTP/1.0 503 Service Unavailable\r\n"),
            Some(503)
        );
        assert_eq!(status_code(b"HTTP/1.1 404\r\n"), Some(404));
        assert_eq!(status_code(b"SSH-2.0-OpenSSH\r\n"), None);
        assert_eq!(status_code(b"HTTP/1.1 20 OK\r\n"), None);
        assert_eq!(status_code(b""), None);
    }
}
