//! Certificate rotation of a running `jockey-webhook` while the real API server keeps calling it:
//! serving certificates replaced on disk (as a Secret volume update does), then a CA rotation
//! through a two-CA caBundle; and the webhook renewing a short-lived certificate by itself from
//! its CA. Not one admission may fail.

mod webhook_support;

use anyhow::{Context, Result, bail};
use jockey_core::certs;
use jockey_e2e::{TestNamespace, client};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::Api;
use kube::api::PostParams;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;
use webhook_support::{CA_CN, Webhook, serving_for, write_pair};

async fn wait_served(wh: &Webhook, cas: &[&certs::Pair], pem: &str) -> Result<()> {
    let want = CertificateDer::from_pem_slice(pem.as_bytes())?.to_vec();
    let start = Instant::now();
    loop {
        if wh.served_cert(cas).await.ok().as_deref() == Some(want.as_slice()) {
            return Ok(());
        }
        if start.elapsed() > Duration::from_secs(10) {
            bail!(
                "the new certificate was not served within 10 s:\n{}",
                wh.log()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Server-side dry-run creates of a labelled Service, each mutated by /mutate and checked by
/// /validate, back to back on two workers, until [`AdmissionLoop::finish`].
struct AdmissionLoop {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicUsize>,
    failures: Arc<Mutex<Vec<String>>>,
    workers: Vec<tokio::task::JoinHandle<()>>,
}

impl AdmissionLoop {
    fn start(client: &kube::Client, ns: &str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicUsize::new(0));
        let failures = Arc::new(Mutex::new(Vec::<String>::new()));
        let mut workers = Vec::new();
        for w in 0..2 {
            let services: Api<Service> = Api::namespaced(client.clone(), ns);
            let (stop, ok, failures) = (stop.clone(), ok.clone(), failures.clone());
            workers.push(tokio::spawn(async move {
                let dry = PostParams {
                    dry_run: true,
                    ..Default::default()
                };
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let svc: Service = serde_json::from_value(json!({
                        "metadata": { "name": format!("loop-{w}-{i}"), "labels": { "jockey.agentops.ai/project": "rotation" } },
                        "spec": { "ports": [{ "port": 80 }] }
                    }))
                    .expect("a valid Service");
                    match services.create(&dry, &svc).await {
                        Ok(s) => {
                            let target = s
                                .spec
                                .and_then(|s| s.ports)
                                .and_then(|p| p.first().and_then(|p| p.target_port.clone()));
                            if target == Some(IntOrString::Int(8080)) {
                                ok.fetch_add(1, Ordering::Relaxed);
                            } else {
                                failures.lock().await.push(format!("not mutated: {target:?}"));
                            }
                        }
                        Err(e) => failures.lock().await.push(e.to_string()),
                    }
                }
            }));
        }
        Self {
            stop,
            ok,
            failures,
            workers,
        }
    }

    fn ok(&self) -> usize {
        self.ok.load(Ordering::Relaxed)
    }

    /// Stops the workers; (admissions that passed, those that failed).
    async fn finish(self) -> Result<(usize, Vec<String>)> {
        self.stop.store(true, Ordering::Relaxed);
        for w in self.workers {
            w.await?;
        }
        let failures = self.failures.lock().await.clone();
        Ok((self.ok.load(Ordering::Relaxed), failures))
    }
}

/// The value of the sample `name` (with its labels, e.g. `x_total{result="ok"}`) in a scrape.
fn sample(metrics: &str, name: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

/// A served certificate (DER) as PEM, for [`certs::inspect`].
fn pem_of(der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap_or_default())
        .collect();
    format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        lines.join("\n")
    )
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

#[tokio::test]
async fn certificate_rotation_during_an_admission_loop_fails_no_request() -> Result<()> {
    let client = client().await?;
    let ns = TestNamespace::create(&client, "wh-rotate").await?;
    let mut wh = Webhook::start("rotate", None).await?;
    wh.scope(&client, &ns.name, None).await?;
    wh.register(&client, &ns.name).await?;
    let ca1 = wh.ca.clone();

    let admissions = AdmissionLoop::start(&client, &ns.name);
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Three serving certificates from the same CA.
    for _ in 0..3 {
        let next = serving_for(&ca1)?;
        write_pair(&wh.dir, &next)?;
        wait_served(&wh, &[&ca1], &next.cert_pem).await?;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    // A CA rotation: trust both, switch the serving certificate to the new CA, drop the old.
    let ca2 = certs::new_ca(CA_CN, 2)?;
    wh.set_ca_bundle(&client, &[&ca1, &ca2]).await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let next = serving_for(&ca2)?;
    write_pair(&wh.dir, &next)?;
    wait_served(&wh, &[&ca2], &next.cert_pem).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    wh.set_ca_bundle(&client, &[&ca2]).await?;
    tokio::time::sleep(Duration::from_secs(3)).await;

    let (ok, failures) = admissions.finish().await?;
    assert!(
        failures.is_empty(),
        "{} of {} admissions failed, e.g. {:?}\n{}",
        failures.len(),
        failures.len() + ok,
        failures.first(),
        wh.log()
    );
    assert!(ok >= 40, "only {ok} admissions ran during the rotations");

    // The webhook counted its reloads (4 certificates; a pair caught half-written may add an
    // error that was retried).
    let metrics = wh.metrics(&[&ca2]).await?;
    let reloads = sample(
        &metrics,
        "jockey_webhook_certificate_reloads_total{result=\"ok\"}",
    )
    .unwrap_or(0.0);
    assert!(reloads >= 4.0, "{metrics}");
    eprintln!("{ok} admissions, 0 failed, {reloads} certificate reloads");

    drop(wh);
    ns.cleanup().await?;
    Ok(())
}

/// The certificate the webhook serves now, read back over TLS trusting only `ca`.
async fn served(wh: &Webhook, ca: &certs::Pair) -> Result<(Vec<u8>, certs::CertInfo)> {
    let der = wh.served_cert(&[ca]).await?;
    let info = certs::inspect(&pem_of(&der))?;
    Ok((der, info))
}

async fn expiry_metric(wh: &Webhook) -> Result<f64> {
    let metrics = wh.metrics(&[&wh.ca]).await?;
    sample(
        &metrics,
        "jockey_webhook_certificate_expiry_timestamp_seconds",
    )
    .with_context(|| format!("no expiry gauge in\n{metrics}"))
}

#[tokio::test]
async fn the_webhook_renews_its_short_lived_certificate_by_itself_during_an_admission_loop()
-> Result<()> {
    let client = client().await?;
    let ns = TestNamespace::create(&client, "wh-renew").await?;
    // Valid two minutes, renewed 100 s before expiry: the first renewal is due about 20 s after
    // start, and each successor (the same 130 s lifetime, started 13 s in the past) about 17 s
    // after it is made.
    let now = now_unix();
    let mut wh = Webhook::start_renewing("renew", now - 10, now + 120, "100s").await?;
    wh.scope(&client, &ns.name, None).await?;
    wh.register(&client, &ns.name).await?;
    let ca = wh.ca.clone();
    let (first_der, first) = served(&wh, &ca).await?;
    assert_eq!(first.not_after, now + 120);
    let first_expiry = expiry_metric(&wh).await?;
    assert_eq!(first_expiry, (now + 120) as f64);

    let admissions = AdmissionLoop::start(&client, &ns.name);
    // Two renewals at least: the successor is renewed in its turn, never at once without end.
    let mut seen = vec![first_der.clone()];
    let start = Instant::now();
    while seen.len() < 3 {
        if start.elapsed() > Duration::from_secs(120) {
            bail!(
                "{} renewal(s) within 120 s, {} admissions meanwhile:\n{}",
                seen.len() - 1,
                admissions.ok(),
                wh.log()
            );
        }
        if let Ok((der, _)) = served(&wh, &ca).await
            && seen.last() != Some(&der)
        {
            seen.push(der);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (ok, failures) = admissions.finish().await?;
    assert!(
        failures.is_empty(),
        "{} of {} admissions failed, e.g. {:?}\n{}",
        failures.len(),
        failures.len() + ok,
        failures.first(),
        wh.log()
    );
    assert!(ok >= 20, "only {ok} admissions ran across the renewals");

    // Each served certificate is new, signed by the CA (the TLS client trusts only it), for the
    // same names, and expires later than the one before.
    let infos: Vec<certs::CertInfo> = seen
        .iter()
        .map(|der| certs::inspect(&pem_of(der)))
        .collect::<Result<_, _>>()?;
    for pair in infos.windows(2) {
        assert!(pair[1].not_after > pair[0].not_after, "{infos:?}");
        assert_eq!(pair[1].names, pair[0].names);
        assert_eq!(pair[1].lifetime(), first.lifetime());
    }
    // What is served is what was written to the files, and the gauge follows it.
    let (der, last) = served(&wh, &ca).await?;
    let on_disk = std::fs::read_to_string(wh.dir.join("tls.crt"))?;
    assert_eq!(certs::inspect(&on_disk)?.not_after, last.not_after);
    assert_eq!(pem_of(&der).trim(), on_disk.trim());
    let expiry = expiry_metric(&wh).await?;
    assert!(expiry > first_expiry, "{expiry} <= {first_expiry}");
    assert_eq!(expiry, last.not_after as f64);
    let metrics = wh.metrics(&[&ca]).await?;
    let renewed = sample(
        &metrics,
        "jockey_webhook_certificate_renewals_total{result=\"ok\"}",
    )
    .unwrap_or(0.0);
    assert!(renewed >= 2.0, "{metrics}");
    assert_eq!(
        sample(
            &metrics,
            "jockey_webhook_certificate_renewals_total{result=\"error\"}"
        ),
        None,
        "{metrics}\n{}",
        wh.log()
    );
    assert!(
        wh.log().contains("serving certificate renewed"),
        "{}",
        wh.log()
    );
    eprintln!("{ok} admissions, 0 failed, {renewed} renewals");

    drop(wh);
    ns.cleanup().await?;
    Ok(())
}

#[tokio::test]
async fn an_expired_certificate_is_renewed_at_start_when_the_webhook_has_its_ca() -> Result<()> {
    // It expired five minutes ago (the webhook was down, say): with the CA at hand the webhook
    // renews it before serving rather than exiting; without, it exits (webhook/tests/cli.rs).
    let now = now_unix();
    let wh = Webhook::start_renewing("renew-expired", now - 600, now - 300, "1m").await?;
    let ca = wh.ca.clone();
    let (_, info) = served(&wh, &ca).await?;
    let after = now_unix();
    info.check_valid(after)
        .map_err(|e| anyhow::anyhow!("served an invalid certificate: {e}"))?;
    assert_eq!(info.lifetime(), 300);
    assert!(info.not_after > after, "{info:?}");
    assert!(
        wh.log().contains("serving certificate renewed at start"),
        "{}",
        wh.log()
    );
    Ok(())
}

fn secret_text(s: &Secret, key: &str) -> String {
    s.data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|b| String::from_utf8_lossy(&b.0).to_string())
        .unwrap_or_default()
}

fn tls_secret(name: &str, pairs: &[(&str, &str)], annotations: &[(&str, String)]) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            annotations: Some(
                annotations
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.clone()))
                    .collect(),
            ),
            ..Default::default()
        },
        type_: Some("kubernetes.io/tls".into()),
        data: Some(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                .collect(),
        ),
        ..Default::default()
    }
}

#[tokio::test]
async fn two_replicas_renew_the_serving_secret_once_through_the_api_server() -> Result<()> {
    let client = client().await?;
    let ns = TestNamespace::create(&client, "wh-renew-secret").await?;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns.name);
    // What `kubectl jockey install` stores: the CA, and a serving certificate it signed, here
    // valid two minutes and renewed 100 s before expiry (due about 20 s from now).
    let ca = certs::new_ca(CA_CN, 2)?;
    let now = now_unix();
    let names = vec!["127.0.0.1".to_string(), "localhost".to_string()];
    let serving = certs::issue_serving_between(&ca, &names, now - 10, now + 120)?;
    let pp = PostParams::default();
    secrets
        .create(
            &pp,
            &tls_secret(
                "jw-ca",
                &[("tls.crt", &ca.cert_pem), ("tls.key", &ca.key_pem)],
                &[],
            ),
        )
        .await?;
    secrets
        .create(
            &pp,
            &tls_secret(
                "jw-tls",
                &[
                    ("tls.crt", &serving.cert_pem),
                    ("tls.key", &serving.key_pem),
                    ("ca.crt", &ca.cert_pem),
                ],
                &[
                    (certs::ANNOTATION_NOT_AFTER, (now + 120).to_string()),
                    (certs::ANNOTATION_CA_SHA256, certs::ca_sha256(&ca.cert_pem)),
                ],
            ),
        )
        .await?;
    // Two replicas, both due at the same moment.
    let a = Webhook::start_renewing_secret("renew-a", &ns.name, "jw-ca", "jw-tls", "100s").await?;
    let b = Webhook::start_renewing_secret("renew-b", &ns.name, "jw-ca", "jw-tls", "100s").await?;

    let renewed = jockey_e2e::wait_for(
        "the serving Secret renewed",
        Duration::from_secs(90),
        || async {
            let s = secrets.get("jw-tls").await?;
            Ok((secret_text(&s, "tls.crt") != serving.cert_pem).then_some(s))
        },
    )
    .await
    .with_context(|| format!("{}\n{}", a.log(), b.log()))?;
    // Both replicas have looked again by now; still the one successor (a second write would
    // have needed the resourceVersion the first one replaced).
    tokio::time::sleep(Duration::from_secs(5)).await;
    let s = secrets.get("jw-tls").await?;
    assert_eq!(
        secret_text(&s, "tls.crt"),
        secret_text(&renewed, "tls.crt"),
        "renewed twice:\n{}\n{}",
        a.log(),
        b.log()
    );
    let pem = secret_text(&s, "tls.crt");
    let info = certs::inspect(&pem)?;
    assert!(certs::signed_by(&pem, &ca.cert_pem)?);
    assert_eq!(info.names, names);
    assert_eq!(info.lifetime(), 130);
    assert!(info.not_after > now + 120, "{info:?}");
    assert_ne!(secret_text(&s, "tls.key"), serving.key_pem);
    assert_eq!(secret_text(&s, "ca.crt"), ca.cert_pem);
    // What the next `install` plans by: the new expiry, the same CA.
    let ann = s.metadata.annotations.clone().unwrap_or_default();
    assert_eq!(
        ann.get(certs::ANNOTATION_NOT_AFTER),
        Some(&info.not_after.to_string())
    );
    assert_eq!(
        ann.get(certs::ANNOTATION_CA_SHA256),
        Some(&certs::ca_sha256(&ca.cert_pem))
    );
    let managers: Vec<String> = s
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| m.manager)
        .collect();
    assert!(
        managers.iter().any(|m| m == "jockey-webhook"),
        "{managers:?}"
    );
    // Exactly one renewal between the two, none failed.
    let mut ok = 0.0;
    for wh in [&a, &b] {
        let metrics = wh.metrics(&[&wh.ca]).await?;
        ok += sample(
            &metrics,
            "jockey_webhook_certificate_renewals_total{result=\"ok\"}",
        )
        .unwrap_or(0.0);
        assert_eq!(
            sample(
                &metrics,
                "jockey_webhook_certificate_renewals_total{result=\"error\"}"
            ),
            None,
            "{metrics}\n{}",
            wh.log()
        );
    }
    assert_eq!(ok, 1.0, "{}\n{}", a.log(), b.log());

    drop(a);
    drop(b);
    ns.cleanup().await?;
    Ok(())
}
