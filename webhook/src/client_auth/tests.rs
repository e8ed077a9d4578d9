//! Client certificates over real TLS on 127.0.0.1 (the server of `crate::tests`).

use crate::tests::{CA_CN, Reply, call, client_config_as, review_body, start_with};
use jockey_core::certs::{self, Pair};
use serde_json::Value;
use std::net::SocketAddr;

const CLIENT_CA_CN: &str = "jockey-test-client-ca";

async fn post(
    addr: SocketAddr,
    serving_ca: &Pair,
    identity: Option<&Pair>,
    path: &str,
) -> anyhow::Result<Reply> {
    let client = client_config_as(&[serving_ca], identity);
    call(
        addr,
        client,
        "POST",
        path,
        Some("application/json"),
        review_body(),
    )
    .await
}

fn text(r: &Reply) -> String {
    String::from_utf8_lossy(&r.body).to_string()
}

#[tokio::test]
async fn with_a_client_ca_only_its_certificates_may_post_reviews_and_probes_need_none() {
    let ca = certs::new_ca(CA_CN, 1).unwrap();
    let client_ca = certs::new_ca(CLIENT_CA_CN, 1).unwrap();
    let apiserver = certs::issue_client(&client_ca, CLIENT_CA_CN, "kube-apiserver", 1).unwrap();
    let rogue_ca = certs::new_ca(CLIENT_CA_CN, 1).unwrap();
    let rogue = certs::issue_client(&rogue_ca, CLIENT_CA_CN, "kube-apiserver", 1).unwrap();
    let s = start_with(&ca, Some((&client_ca.cert_pem, &[]))).await;

    // No certificate: refused unread, with the cause and the fix.
    for path in ["/mutate", "/validate"] {
        let r = post(s.addr, &ca, None, path).await.unwrap();
        assert_eq!(r.status, 401, "{path}: {}", text(&r));
        let msg = text(&r);
        assert!(
            msg.contains("presented none")
                && msg.contains("--client-ca-file")
                && msg.contains("fix: configure the API server to present one to webhooks")
                && msg.contains("--admission-control-config-file"),
            "{msg}"
        );
    }
    // A certificate of another CA: the handshake fails.
    assert!(
        post(s.addr, &ca, Some(&rogue), "/validate").await.is_err(),
        "a certificate of another CA was accepted"
    );
    // The API server's certificate: answered.
    let r = post(s.addr, &ca, Some(&apiserver), "/mutate")
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", text(&r));
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["response"]["allowed"], true);

    // Probes and Prometheus need no certificate.
    let anonymous = client_config_as(&[&ca], None);
    for path in ["/healthz", "/readyz", "/metrics"] {
        let r = call(s.addr, anonymous.clone(), "GET", path, None, vec![])
            .await
            .unwrap();
        assert_eq!(r.status, 200, "{path}: {}", text(&r));
    }
    let metrics = s.app.metrics.encode();
    for endpoint in ["mutate", "validate"] {
        let line = format!(
            r#"jockey_webhook_unauthenticated_reviews_total{{endpoint="{endpoint}",reason="no_certificate"}} 1"#
        );
        assert!(metrics.contains(&line), "{line} not in\n{metrics}");
    }
    // Refused reviews were not read: the only admission counted is the API server's.
    assert!(
        metrics.contains(r#"jockey_webhook_admission_requests_total{endpoint="mutate",kind="Deployment",operation="CREATE",result="patched"} 1"#),
        "{metrics}"
    );
    assert!(
        !metrics.contains(r#"endpoint="validate",kind="Deployment""#),
        "{metrics}"
    );
}

#[tokio::test]
async fn client_names_narrow_a_shared_ca_to_the_named_certificate() {
    let ca = certs::new_ca(CA_CN, 1).unwrap();
    let client_ca = certs::new_ca(CLIENT_CA_CN, 1).unwrap();
    let apiserver = certs::issue_client(&client_ca, CLIENT_CA_CN, "kube-apiserver", 1).unwrap();
    let kubelet = certs::issue_client(&client_ca, CLIENT_CA_CN, "system:node:a", 1).unwrap();
    let s = start_with(&ca, Some((&client_ca.cert_pem, &["kube-apiserver"]))).await;
    let r = post(s.addr, &ca, Some(&kubelet), "/validate")
        .await
        .unwrap();
    assert_eq!(r.status, 403, "{}", text(&r));
    let msg = text(&r);
    assert!(
        msg.contains(r#"names ["system:node:a"], none of --client-name ["kube-apiserver"]"#)
            && msg.contains("fix:"),
        "{msg}"
    );
    assert!(s.app.metrics.encode().contains(
        r#"jockey_webhook_unauthenticated_reviews_total{endpoint="validate",reason="name_not_allowed"} 1"#
    ));
    let r = post(s.addr, &ca, Some(&apiserver), "/validate")
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", text(&r));
}

#[tokio::test]
async fn a_changed_client_ca_is_trusted_from_the_next_handshake() {
    let ca = certs::new_ca(CA_CN, 1).unwrap();
    let old_ca = certs::new_ca(CLIENT_CA_CN, 1).unwrap();
    let new_ca = certs::new_ca(CLIENT_CA_CN, 1).unwrap();
    let old = certs::issue_client(&old_ca, CLIENT_CA_CN, "kube-apiserver", 1).unwrap();
    let new = certs::issue_client(&new_ca, CLIENT_CA_CN, "kube-apiserver", 1).unwrap();
    let s = start_with(&ca, Some((&old_ca.cert_pem, &[]))).await;
    let (path, verifier) = s.client_ca.as_ref().unwrap();
    assert_eq!(
        post(s.addr, &ca, Some(&old), "/validate")
            .await
            .unwrap()
            .status,
        200
    );
    assert!(post(s.addr, &ca, Some(&new), "/validate").await.is_err());
    assert_eq!(
        verifier.reload_if_changed().unwrap(),
        crate::tls::Reload::Unchanged
    );

    // A broken file keeps the old CA in force.
    std::fs::write(path, "not a certificate").unwrap();
    assert!(verifier.reload_if_changed().is_err());
    assert_eq!(
        post(s.addr, &ca, Some(&old), "/validate")
            .await
            .unwrap()
            .status,
        200
    );

    // Both during a rotation, then the new one alone.
    std::fs::write(path, format!("{}{}", old_ca.cert_pem, new_ca.cert_pem)).unwrap();
    assert_eq!(
        verifier.reload_if_changed().unwrap(),
        crate::tls::Reload::Reloaded
    );
    assert_eq!(
        post(s.addr, &ca, Some(&old), "/validate")
            .await
            .unwrap()
            .status,
        200
    );
    assert_eq!(
        post(s.addr, &ca, Some(&new), "/validate")
            .await
            .unwrap()
            .status,
        200
    );
    std::fs::write(path, &new_ca.cert_pem).unwrap();
    assert_eq!(
        verifier.reload_if_changed().unwrap(),
        crate::tls::Reload::Reloaded
    );
    assert_eq!(
        post(s.addr, &ca, Some(&new), "/validate")
            .await
            .unwrap()
            .status,
        200
    );
    assert!(post(s.addr, &ca, Some(&old), "/validate").await.is_err());
}

#[test]
fn a_client_ca_file_without_a_usable_ca_is_refused_at_start_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("client-ca.crt");
    for (content, words) in [
        ("", "contains no certificate"),
        ("garbage", "contains no certificate"),
    ] {
        std::fs::write(&path, content).unwrap();
        let e = super::ClientCa::new(path.clone(), crate::tls::provider()).unwrap_err();
        let msg = format!("{e:#}");
        assert!(
            msg.contains(&path.display().to_string()) && msg.contains(words),
            "{msg}"
        );
    }
    let missing = dir.path().join("missing.crt");
    let e = super::ClientCa::new(missing.clone(), crate::tls::provider()).unwrap_err();
    assert!(
        format!("{e:#}").contains("reading --client-ca-file"),
        "{e:#}"
    );
}
