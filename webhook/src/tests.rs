//! The server over real TLS on 127.0.0.1, without a cluster (caches marked synced).

use crate::state::App;
use crate::{server, tls};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use jockey_core::certs::{self, Pair};
use jockey_core::policy::Policy;
use jockey_core::{Config, ContentHash, ProjectId, defaults};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub(crate) const CA_CN: &str = "jockey-test-ca";

pub(crate) struct Server {
    pub(crate) addr: SocketAddr,
    cert: Arc<tls::ReloadingCert>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<()>,
    pub(crate) app: Arc<App>,
    _dir: tempfile::TempDir,
    cert_path: PathBuf,
    key_path: PathBuf,
    /// With [`start_with`] a client CA: its file and the verifier reading it.
    pub(crate) client_ca: Option<(PathBuf, Arc<crate::client_auth::ClientCa>)>,
}

fn serving(ca: &Pair) -> Pair {
    certs::issue_serving(ca, CA_CN, &["localhost".into(), "127.0.0.1".into()], 1).unwrap()
}

fn write_pair(p: &Pair, cert: &Path, key: &Path) {
    std::fs::write(cert, &p.cert_pem).unwrap();
    std::fs::write(key, &p.key_pem).unwrap();
}

async fn start(ca: &Pair) -> Server {
    start_with(ca, None).await
}

/// [`start`], with `client`: the PEM of a client CA (written to a file) and the names
/// `--client-name` would give.
pub(crate) async fn start_with(ca: &Pair, client: Option<(&str, &[&str])>) -> Server {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let cert_path = dir.path().join("tls.crt");
    let key_path = dir.path().join("tls.key");
    write_pair(&serving(ca), &cert_path, &key_path);
    let provider = tls::provider();
    let cert = Arc::new(
        tls::ReloadingCert::new(
            cert_path.clone(),
            key_path.clone(),
            provider.clone(),
            Default::default(),
        )
        .unwrap(),
    );
    let client_ca = client.map(|(pem, _)| {
        let path = dir.path().join("client-ca.crt");
        std::fs::write(&path, pem).unwrap();
        let ca = crate::client_auth::ClientCa::new(path.clone(), provider.clone()).unwrap();
        (path, Arc::new(ca))
    });
    let config = Arc::new(
        tls::server_config(
            cert.clone(),
            provider,
            client_ca.as_ref().map(|(_, ca)| ca.clone()),
        )
        .unwrap(),
    );
    let cfg = Config::from_lookup(|k| (k == "IMAGE_REGISTRY").then(|| "reg.example".into()));
    let required = client.map(|(_, names)| crate::client_auth::Required {
        ca_file: dir.path().join("client-ca.crt"),
        names: names.iter().map(|n| n.to_string()).collect(),
    });
    let app = Arc::new(
        App::new(cfg, Policy::default(), "jockey-system".into(), None).with_callers(required),
    );
    app.mark_synced_for_tests();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let router = server::router(app.clone());
    let done = tokio::spawn(async move {
        server::serve(listener, config, router, async {
            let _ = rx.await;
        })
        .await
    });
    Server {
        addr,
        cert,
        stop: Some(tx),
        done,
        app,
        _dir: dir,
        cert_path,
        key_path,
        client_ca,
    }
}

pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) body: Vec<u8>,
    peer_cert: Vec<u8>,
}

fn client_config(cas: &[&Pair]) -> Arc<rustls::ClientConfig> {
    client_config_as(cas, None)
}

/// A client trusting `cas`, presenting `identity` (certificate and key) when given.
pub(crate) fn client_config_as(
    cas: &[&Pair],
    identity: Option<&Pair>,
) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for ca in cas {
        roots
            .add(CertificateDer::from_pem_slice(ca.cert_pem.as_bytes()).unwrap())
            .unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match identity {
        Some(id) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_slice(id.cert_pem.as_bytes()).unwrap()],
                rustls::pki_types::PrivateKeyDer::from_pem_slice(id.key_pem.as_bytes()).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    Arc::new(config).pipe(no_resumption)
}

/// Without resumption every connection does a full handshake and sees the served certificate.
fn no_resumption(mut c: Arc<rustls::ClientConfig>) -> Arc<rustls::ClientConfig> {
    if let Some(c) = Arc::get_mut(&mut c) {
        c.resumption = rustls::client::Resumption::disabled();
    }
    c
}

trait Pipe: Sized {
    fn pipe<T>(self, f: impl FnOnce(Self) -> T) -> T {
        f(self)
    }
}
impl<T> Pipe for T {}

/// One HTTP/1.1 request over a fresh TLS connection.
pub(crate) async fn call(
    addr: SocketAddr,
    client: Arc<rustls::ClientConfig>,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> anyhow::Result<Reply> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let connector = tokio_rustls::TlsConnector::from(client);
    let tls = connector
        .connect(ServerName::try_from("localhost")?.to_owned(), tcp)
        .await?;
    let peer_cert = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.to_vec())
        .unwrap_or_default();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
    tokio::spawn(conn);
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", "localhost");
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    let resp = sender
        .send_request(req.body(Full::new(Bytes::from(body)))?)
        .await?;
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await?.to_bytes().to_vec();
    Ok(Reply {
        status,
        body,
        peer_cert,
    })
}

pub(crate) fn review_body() -> Vec<u8> {
    let p = ProjectId::parse("demo").unwrap();
    let mut d = serde_json::to_value(defaults::render_deployment(
        &p,
        &ContentHash::from_digest(&[1; 32]),
    ))
    .unwrap();
    d["metadata"]["namespace"] = json!("team-a");
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "u-1",
            "kind": { "group": "apps", "version": "v1", "kind": "Deployment" },
            "resource": { "group": "apps", "version": "v1", "resource": "deployments" },
            "name": "demo", "namespace": "team-a", "operation": "CREATE",
            "userInfo": {}, "object": d
        }
    }))
    .unwrap()
}

#[tokio::test]
async fn serves_admission_health_and_metrics_over_tls() {
    let ca = certs::new_ca(CA_CN, 1).unwrap();
    let mut s = start(&ca).await;
    let client = client_config(&[&ca]);
    let r = call(
        s.addr,
        client.clone(),
        "POST",
        "/mutate",
        Some("application/json"),
        review_body(),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["response"]["uid"], "u-1");
    assert_eq!(v["response"]["allowed"], true);
    assert_eq!(v["response"]["patchType"], "JSONPatch");
    assert!(v["response"]["patch"].is_string());

    let r = call(
        s.addr,
        client.clone(),
        "POST",
        "/validate",
        Some("application/json; charset=utf-8"),
        review_body(),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200);

    for (path, ok) in [("/healthz", "ok"), ("/readyz", "ok")] {
        let r = call(s.addr, client.clone(), "GET", path, None, vec![])
            .await
            .unwrap();
        assert_eq!(
            (r.status, String::from_utf8_lossy(&r.body).trim()),
            (200, ok)
        );
    }
    let r = call(s.addr, client.clone(), "GET", "/metrics", None, vec![])
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&r.body);
    assert!(
        text.contains(r#"jockey_webhook_admission_requests_total{endpoint="mutate",kind="Deployment",operation="CREATE",result="patched"} 1"#),
        "{text}"
    );
    assert!(
        text.contains("jockey_webhook_admission_duration_seconds_bucket"),
        "{text}"
    );
    s.stop.take().unwrap().send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(30), s.done)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn bad_input_gets_400_never_500() {
    let ca = certs::new_ca(CA_CN, 1).unwrap();
    let s = start(&ca).await;
    let client = client_config(&[&ca]);
    let cases: Vec<(Option<&str>, Vec<u8>, &str)> = vec![
        (Some("text/plain"), review_body(), "Content-Type"),
        (None, review_body(), "Content-Type"),
        (Some("application/json"), b"{not json".to_vec(), "not JSON"),
        (
            Some("application/json"),
            br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#.to_vec(),
            "no request",
        ),
        (
            Some("application/json"),
            br#"{"apiVersion":"v1","kind":"Pod"}"#.to_vec(),
            "expected kind AdmissionReview",
        ),
    ];
    for (ct, body, word) in cases {
        for path in ["/mutate", "/validate"] {
            let r = call(s.addr, client.clone(), "POST", path, ct, body.clone())
                .await
                .unwrap();
            let text = String::from_utf8_lossy(&r.body);
            assert_eq!(r.status, 400, "{path} {ct:?}: {text}");
            assert!(text.contains(word), "{text}");
        }
    }
    // Unknown path and wrong method.
    let r = call(s.addr, client.clone(), "GET", "/nope", None, vec![])
        .await
        .unwrap();
    assert_eq!(r.status, 404);
    let r = call(s.addr, client.clone(), "GET", "/mutate", None, vec![])
        .await
        .unwrap();
    assert_eq!(r.status, 405);
}

#[tokio::test]
async fn bodies_up_to_7_mib_are_read_and_larger_are_refused() {
    let ca = certs::new_ca(CA_CN, 1).unwrap();
    let s = start(&ca).await;
    let client = client_config(&[&ca]);
    // A 7 MiB review: a big annotation on the object.
    let mut v: Value = serde_json::from_slice(&review_body()).unwrap();
    v["request"]["object"]["metadata"]["annotations"]["big"] = json!("x".repeat(7 * 1024 * 1024));
    let body = serde_json::to_vec(&v).unwrap();
    assert!(body.len() > 7 * 1024 * 1024);
    let r = call(
        s.addr,
        client.clone(),
        "POST",
        "/mutate",
        Some("application/json"),
        body,
    )
    .await
    .unwrap();
    assert_eq!(
        r.status,
        200,
        "{}",
        String::from_utf8_lossy(&r.body[..r.body.len().min(300)])
    );
    let huge = vec![b' '; server::MAX_BODY_BYTES + 1];
    let r = call(
        s.addr,
        client,
        "POST",
        "/mutate",
        Some("application/json"),
        huge,
    )
    .await
    .unwrap();
    assert_eq!(r.status, 413);
}

#[tokio::test]
async fn certificate_is_reloaded_without_restart() {
    let ca = certs::new_ca(CA_CN, 1).unwrap();
    let ca2 = certs::new_ca(CA_CN, 1).unwrap();
    let s = start(&ca).await;
    let client = client_config(&[&ca, &ca2]);
    let before = call(s.addr, client.clone(), "GET", "/healthz", None, vec![])
        .await
        .unwrap();
    assert_eq!(before.status, 200);
    // A half-written pair (new certificate, old key) is refused and the old one keeps serving.
    let next = serving(&ca2);
    std::fs::write(&s.cert_path, &next.cert_pem).unwrap();
    let e = s.cert.reload_if_changed().unwrap_err();
    assert!(format!("{e:#}").contains("does not fit"), "{e:#}");
    let still = call(s.addr, client.clone(), "GET", "/healthz", None, vec![])
        .await
        .unwrap();
    assert_eq!(still.peer_cert, before.peer_cert);
    // The complete pair is picked up.
    std::fs::write(&s.key_path, &next.key_pem).unwrap();
    assert_eq!(s.cert.reload_if_changed().unwrap(), tls::Reload::Reloaded);
    assert_eq!(s.cert.reload_if_changed().unwrap(), tls::Reload::Unchanged);
    let after = call(s.addr, client.clone(), "GET", "/healthz", None, vec![])
        .await
        .unwrap();
    assert_eq!(after.status, 200);
    assert_ne!(after.peer_cert, before.peer_cert);
    // A client trusting only the old CA now fails: the new certificate really is served.
    assert!(
        call(
            s.addr,
            client_config(&[&ca]),
            "GET",
            "/healthz",
            None,
            vec![]
        )
        .await
        .is_err()
    );
}

#[tokio::test]
async fn a_pair_that_cannot_be_served_is_not_reloaded_and_the_old_one_keeps_serving() {
    let ca = certs::new_ca(CA_CN, 1).unwrap();
    let s = start(&ca).await;
    let client = client_config(&[&ca]);
    let before = call(s.addr, client.clone(), "GET", "/healthz", None, vec![])
        .await
        .unwrap();
    let served = s.cert.served();
    let now = tls::now_unix();
    let names = ["127.0.0.1".to_string()];
    for (pair, why) in [
        (
            certs::issue_serving_between(&ca, &names, now - 7200, now - 3600).unwrap(),
            format!("it expired at {}", certs::rfc3339(now - 3600)),
        ),
        (
            certs::issue_serving_between(&ca, &names, now + 3600, now + 7200).unwrap(),
            format!("it is not valid before {}", certs::rfc3339(now + 3600)),
        ),
    ] {
        write_pair(&pair, &s.cert_path, &s.key_path);
        let e = format!("{:#}", s.cert.reload_if_changed().unwrap_err());
        assert!(e.contains(&why), "{e}");
        assert!(e.contains("kubectl jockey install"), "{e}");
        let still = call(s.addr, client.clone(), "GET", "/healthz", None, vec![])
            .await
            .unwrap();
        assert_eq!(still.peer_cert, before.peer_cert);
        assert_eq!(s.cert.served(), served);
    }
    // A valid pair again is taken, and its expiry is what the server reports.
    let next = certs::issue_serving_between(&ca, &names, now - 60, now + 3600).unwrap();
    write_pair(&next, &s.cert_path, &s.key_path);
    assert_eq!(s.cert.reload_if_changed().unwrap(), tls::Reload::Reloaded);
    assert_eq!(s.cert.served().not_after, now + 3600);
}

#[tokio::test]
async fn the_served_certificate_s_expiry_is_a_metric() {
    let ca = certs::new_ca(CA_CN, 1).unwrap();
    let s = start(&ca).await;
    s.app.metrics.cert_expiry.set(s.cert.served().not_after);
    s.app.metrics.cert_renewal("ok");
    let r = call(
        s.addr,
        client_config(&[&ca]),
        "GET",
        "/metrics",
        None,
        vec![],
    )
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&r.body);
    let line = format!(
        "jockey_webhook_certificate_expiry_timestamp_seconds {}",
        s.cert.served().not_after
    );
    assert!(text.lines().any(|l| l == line), "{line} not in:\n{text}");
    assert!(
        text.contains("jockey_webhook_certificate_renewals_total{result=\"ok\"} 1"),
        "{text}"
    );
}

#[tokio::test]
async fn background_watch_reloads_within_the_poll_interval() {
    let ca = certs::new_ca(CA_CN, 1).unwrap();
    let s = start(&ca).await;
    s.cert
        .clone()
        .spawn_watch(Duration::from_millis(100), |_| {});
    let next = serving(&ca);
    // Written as a Secret volume update would: new files renamed into place.
    let tmp_cert = s.cert_path.with_file_name("tls.crt.new");
    let tmp_key = s.key_path.with_file_name("tls.key.new");
    write_pair(&next, &tmp_cert, &tmp_key);
    std::fs::rename(&tmp_key, &s.key_path).unwrap();
    std::fs::rename(&tmp_cert, &s.cert_path).unwrap();
    let want = CertificateDer::from_pem_slice(next.cert_pem.as_bytes())
        .unwrap()
        .to_vec();
    let client = client_config(&[&ca]);
    let mut ok = false;
    for _ in 0..50 {
        let r = call(s.addr, client.clone(), "GET", "/healthz", None, vec![])
            .await
            .unwrap();
        if r.peer_cert == want {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ok, "the new certificate was not served within 2.5 s");
    let _ = &s.app;
}

/// A ClientHello as a TLS 1.0 (`minor` 1) or 1.1 (`minor` 2) client sends it: that version in
/// the record and the hello, no supported_versions extension, ECDHE suites with AES-GCM and
/// CBC, and the curves and signature algorithms a 1.2 server would need.
fn legacy_client_hello(minor: u8) -> Vec<u8> {
    let mut body = vec![0x03, minor];
    body.extend([0x42u8; 32]); // random
    body.push(0); // no session id
    let suites: [u16; 6] = [0xc02b, 0xc02f, 0xc009, 0xc013, 0xc00a, 0xc014];
    body.extend(((suites.len() * 2) as u16).to_be_bytes());
    for c in suites {
        body.extend(c.to_be_bytes());
    }
    body.extend([1, 0]); // null compression
    let mut ext = Vec::new();
    // supported_groups: x25519, secp256r1.
    ext.extend([0x00, 0x0a, 0x00, 0x06, 0x00, 0x04, 0x00, 0x1d, 0x00, 0x17]);
    // ec_point_formats: uncompressed.
    ext.extend([0x00, 0x0b, 0x00, 0x02, 0x01, 0x00]);
    // signature_algorithms: ecdsa_secp256r1_sha256, rsa_pss_rsae_sha256, rsa_pkcs1_sha256.
    ext.extend([
        0x00, 0x0d, 0x00, 0x08, 0x00, 0x06, 0x04, 0x03, 0x08, 0x04, 0x04, 0x01,
    ]);
    body.extend((ext.len() as u16).to_be_bytes());
    body.extend(ext);
    let mut hs = vec![0x01, 0];
    hs.extend((body.len() as u16).to_be_bytes());
    hs.extend(body);
    let mut record = vec![0x16, 0x03, minor];
    record.extend((hs.len() as u16).to_be_bytes());
    record.extend(hs);
    record
}

#[tokio::test]
async fn only_tls_12_and_13_are_offered() {
    let ca = certs::new_ca(CA_CN, 1).unwrap();
    let s = start(&ca).await;
    for version in [&rustls::version::TLS12, &rustls::version::TLS13] {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(ca.cert_pem.as_bytes()).unwrap())
            .unwrap();
        let client = Arc::new(
            rustls::ClientConfig::builder_with_provider(tls::provider())
                .with_protocol_versions(&[version])
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth(),
        )
        .pipe(no_resumption);
        let r = call(s.addr, client, "GET", "/healthz", None, vec![])
            .await
            .unwrap();
        assert_eq!(r.status, 200);
    }
    // TLS 1.0 and 1.1 (which no rustls client can offer): a raw ClientHello of each version,
    // with suites the server would accept at 1.2, is answered by a fatal protocol_version alert
    // and never by a ServerHello.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    for (name, minor) in [("TLS 1.0", 1u8), ("TLS 1.1", 2u8)] {
        let mut tcp = tokio::net::TcpStream::connect(s.addr).await.unwrap();
        tcp.write_all(&legacy_client_hello(minor)).await.unwrap();
        let mut reply = vec![0u8; 16];
        let n = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut reply))
            .await
            .unwrap()
            .unwrap_or(0);
        let reply = &reply[..n];
        assert!(n >= 7, "{name}: no alert, got {reply:?}");
        assert_eq!(reply[0], 0x15, "{name}: not an alert record: {reply:?}");
        assert_eq!(reply[5], 2, "{name}: the alert is not fatal: {reply:?}");
        assert_eq!(reply[6], 70, "{name}: not protocol_version: {reply:?}");
    }
    // The control: the same hello as TLS 1.2 gets a ServerHello, so the alerts above are for
    // the version and not for a malformed hello.
    let mut tcp = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    tcp.write_all(&legacy_client_hello(3)).await.unwrap();
    let mut reply = vec![0u8; 6];
    tokio::time::timeout(Duration::from_secs(5), tcp.read_exact(&mut reply))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((reply[0], reply[5]), (0x16, 0x02), "TLS 1.2: {reply:?}");
    // Plain HTTP on the TLS port gets no HTTP answer.
    let mut tcp = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    assert!(!String::from_utf8_lossy(&buf[..n]).contains("200 OK"));
}

#[tokio::test]
async fn shutdown_finishes_in_flight_requests() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let ca = certs::new_ca(CA_CN, 1).unwrap();
    let mut s = start(&ca).await;
    let client = client_config(&[&ca]);
    let tcp = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(client.clone())
        .connect(ServerName::try_from("localhost").unwrap().to_owned(), tcp)
        .await
        .unwrap();
    // A request whose body is still arriving when shutdown begins: in flight.
    let body = review_body();
    let (first, rest) = body.split_at(body.len() / 2);
    let head = format!(
        "POST /mutate HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    tls.write_all(head.as_bytes()).await.unwrap();
    tls.write_all(first).await.unwrap();
    tls.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    s.stop.take().unwrap().send(()).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // New connections are refused while the in-flight request is still being served.
    assert!(
        call(s.addr, client.clone(), "GET", "/healthz", None, vec![])
            .await
            .is_err()
    );
    tls.write_all(rest).await.unwrap();
    tls.flush().await.unwrap();
    let mut response = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut response)).await;
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("\"uid\":\"u-1\""), "{text}");
    tokio::time::timeout(Duration::from_secs(30), s.done)
        .await
        .unwrap()
        .unwrap();
}
