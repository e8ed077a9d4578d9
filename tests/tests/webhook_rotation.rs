//! Certificate rotation of a running `jockey-webhook` while the real API server keeps calling it:
//! serving certificates replaced on disk (as a Secret volume update does), then a CA rotation
//! through a two-CA caBundle; and the webhook renewing a short-lived certificate by itself from
//! its CA. Not one admission may fail; each step is proven taken (the certificate served, the
//! caBundle loaded by the API server, shown by a canary webhook in the same configurations)
//! before the admissions of its phase are counted, and a certificate of the dropped CA is refused
//! at the end.

mod webhook_support;

use anyhow::{Context, Result, bail};
use jockey_core::certs;
use jockey_e2e::{TestNamespace, client};
use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;
use webhook_support::{CA_CN, SCOPE_LABEL, Webhook, ca_bundle, serving_for, write_pair};

async fn wait_served(wh: &Webhook, cas: &[&certs::Pair], pem: &str) -> Result<()> {
    let want = CertificateDer::from_pem_slice(pem.as_bytes())?.to_vec();
    jockey_e2e::wait_for(
        "the new certificate to be served",
        Duration::from_secs(10),
        || async {
            Ok((wh.served_cert(cas).await.ok().as_deref() == Some(want.as_slice())).then_some(()))
        },
    )
    .await
    .with_context(|| wh.log())
}

/// Server-side dry-run creates of a labelled Service, each mutated by /mutate and checked by
/// /validate, back to back on two workers, until [`AdmissionLoop::finish`]. Each admission is
/// counted in the phase of the rotation it ran in (started and answered within it).
struct AdmissionLoop {
    stop: Arc<AtomicBool>,
    phase: Arc<AtomicUsize>,
    ok: Arc<std::sync::Mutex<BTreeMap<usize, usize>>>,
    failures: Arc<Mutex<Vec<String>>>,
    workers: Vec<tokio::task::JoinHandle<()>>,
}

impl AdmissionLoop {
    fn start(client: &kube::Client, ns: &str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let phase = Arc::new(AtomicUsize::new(0));
        let ok = Arc::new(std::sync::Mutex::new(BTreeMap::new()));
        let failures = Arc::new(Mutex::new(Vec::<String>::new()));
        let mut workers = Vec::new();
        for w in 0..2 {
            let services: Api<Service> = Api::namespaced(client.clone(), ns);
            let (stop, phase, ok, failures) =
                (stop.clone(), phase.clone(), ok.clone(), failures.clone());
            workers.push(tokio::spawn(async move {
                let dry = PostParams {
                    dry_run: true,
                    ..Default::default()
                };
                let mut i = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    i += 1;
                    let svc: Service = serde_json::from_value(json!({
                        "metadata": { "name": format!("loop-{w}-{i}"), "labels": { "jockey.agentops.ai/project": "rotation" } },
                        "spec": { "ports": [{ "port": 80 }] }
                    }))
                    .expect("a valid Service");
                    let began = phase.load(Ordering::SeqCst);
                    match services.create(&dry, &svc).await {
                        Ok(s) => {
                            let target = s
                                .spec
                                .and_then(|s| s.ports)
                                .and_then(|p| p.first().and_then(|p| p.target_port.clone()));
                            if target == Some(IntOrString::Int(8080)) {
                                if phase.load(Ordering::SeqCst) == began {
                                    *ok.lock()
                                        .unwrap_or_else(|p| p.into_inner())
                                        .entry(began)
                                        .or_default() += 1;
                                }
                            } else {
                                failures
                                    .lock()
                                    .await
                                    .push(format!("phase {began}: not mutated: {target:?}"));
                            }
                        }
                        Err(e) => failures.lock().await.push(format!("phase {began}: {e}")),
                    }
                }
            }));
        }
        Self {
            stop,
            phase,
            ok,
            failures,
            workers,
        }
    }

    fn total(&self) -> usize {
        self.ok
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .sum()
    }

    fn ok_in(&self, phase: usize) -> usize {
        self.ok
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&phase)
            .copied()
            .unwrap_or(0)
    }

    /// Waits until `n` admissions passed in the current phase (failures are kept for the end).
    async fn wait_admitted(&self, n: usize, what: &str) -> Result<()> {
        let phase = self.phase.load(Ordering::SeqCst);
        jockey_e2e::wait_for(
            &format!("{n} admissions in phase {phase} ({what})"),
            Duration::from_secs(60),
            || async { Ok((self.ok_in(phase) >= n).then_some(())) },
        )
        .await
    }

    /// Starts the next phase now.
    fn advance(&self) {
        self.phase.fetch_add(1, Ordering::SeqCst);
    }

    /// Stops the workers; (admissions passed per phase, those that failed).
    async fn finish(self) -> Result<(BTreeMap<usize, usize>, Vec<String>)> {
        self.stop.store(true, Ordering::SeqCst);
        for w in self.workers {
            w.await?;
        }
        let failures = self.failures.lock().await.clone();
        let ok = self.ok.lock().unwrap_or_else(|p| p.into_inner()).clone();
        Ok((ok, failures))
    }
}

/// A second `jockey-webhook` registered beside the one under test, in the same two
/// configurations, for ConfigMaps labelled `canary=mutate` / `canary=validate` only. Its entry
/// carries the same caBundle as the others, so whether the API server can call it with the
/// certificate it serves shows which version of each configuration the API server has loaded.
struct Canary {
    wh: Webhook,
    configmaps: Api<ConfigMap>,
}

impl Canary {
    async fn start(client: &kube::Client, ns: &str) -> Result<Self> {
        Ok(Self {
            wh: Webhook::start("rotate-canary", None).await?,
            configmaps: Api::namespaced(client.clone(), ns),
        })
    }

    fn entry(&self, path: &str, bundle: &str, scope: &Value) -> Value {
        json!({
            "name": format!("canary-{path}.jockey-e2e.io"),
            "clientConfig": { "url": format!("https://127.0.0.1:{}/{path}", self.wh.port), "caBundle": bundle },
            "rules": [{ "apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["configmaps"], "scope": "Namespaced" }],
            "objectSelector": { "matchLabels": { "canary": path } },
            "namespaceSelector": scope,
            "sideEffects": "None",
            "admissionReviewVersions": ["v1"],
            "timeoutSeconds": 5,
            "failurePolicy": "Fail",
        })
    }

    /// Sets `cas` as the caBundle of every entry of `wh`'s configurations, the canary's included,
    /// one write per configuration.
    async fn set_ca_bundle(
        &self,
        client: &kube::Client,
        wh: &Webhook,
        cas: &[&certs::Pair],
    ) -> Result<()> {
        let bundle = ca_bundle(cas);
        let r = wh.registration(&bundle);
        let scope = json!({ "matchLabels": { SCOPE_LABEL: wh.name } });
        let pp = PatchParams::default();
        let mut m = r.mutating()["webhooks"].clone();
        m.as_array_mut()
            .context("webhooks")?
            .push(self.entry("mutate", &bundle, &scope));
        Api::<MutatingWebhookConfiguration>::all(client.clone())
            .patch(&wh.name, &pp, &Patch::Merge(&json!({ "webhooks": m })))
            .await?;
        let mut v = r.validating()["webhooks"].clone();
        v.as_array_mut()
            .context("webhooks")?
            .push(self.entry("validate", &bundle, &scope));
        Api::<ValidatingWebhookConfiguration>::all(client.clone())
            .patch(&wh.name, &pp, &Patch::Merge(&json!({ "webhooks": v })))
            .await?;
        Ok(())
    }

    /// Whether the API server can call the canary through each configuration now:
    /// (mutating, validating); `Err` for an answer that is neither a pass nor a TLS failure.
    async fn reachable(&self) -> Result<(bool, bool)> {
        let dry = PostParams {
            dry_run: true,
            ..Default::default()
        };
        let mut out = [false; 2];
        for (i, path) in ["mutate", "validate"].iter().enumerate() {
            let cm: ConfigMap = serde_json::from_value(json!({
                "metadata": { "name": format!("canary-{path}"), "labels": { "canary": path } }
            }))?;
            out[i] = match self.configmaps.create(&dry, &cm).await {
                Ok(_) => true,
                Err(e) if e.to_string().contains("failed calling webhook") => false,
                Err(e) => bail!("canary {path}: {e}"),
            };
        }
        Ok((out[0], out[1]))
    }

    /// Serves `pair` (signed by one of `cas`) from now on.
    async fn serve(&self, pair: &certs::Pair, cas: &[&certs::Pair]) -> Result<()> {
        write_pair(&self.wh.dir, pair)?;
        wait_served(&self.wh, cas, &pair.cert_pem).await
    }

    /// Waits until both configurations answer `reachable` (the API server loaded the bundle
    /// that makes it so).
    async fn wait(&self, reachable: bool, what: &str) -> Result<()> {
        jockey_e2e::wait_for(what, Duration::from_secs(60), || async {
            let (m, v) = self.reachable().await?;
            Ok((m == reachable && v == reachable).then_some(()))
        })
        .await
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
    const PER_PHASE: usize = 10;
    let client = client().await?;
    let ns = TestNamespace::create(&client, "wh-rotate").await?;
    let mut wh = Webhook::start("rotate", None).await?;
    wh.scope(&client, &ns.name, None).await?;
    wh.register(&client, &ns.name).await?;
    let ca1 = wh.ca.clone();
    let ca2 = certs::new_ca(CA_CN, 2)?;
    let canary = Canary::start(&client, &ns.name).await?;

    // The canary serves a certificate of the next CA, which the first bundle does not trust: its
    // entries are refused until the API server has loaded a bundle with that CA.
    canary.serve(&serving_for(&ca2)?, &[&ca2]).await?;
    canary.set_ca_bundle(&client, &wh, &[&ca1]).await?;
    canary
        .wait(false, "the canary registered and refused (bundle: CA1)")
        .await?;
    // Registered: so the API server calls it, and the refusal is the certificate's. (A canary
    // with a CA1 certificate would pass here.)

    // Each step is proven taken, then starts a phase that must see PER_PHASE admissions pass.
    let admissions = AdmissionLoop::start(&client, &ns.name);
    admissions
        .wait_admitted(PER_PHASE, "CA1, first certificate")
        .await?;
    // Three serving certificates from the same CA, each proven served.
    for n in 2..5 {
        let next = serving_for(&ca1)?;
        write_pair(&wh.dir, &next)?;
        wait_served(&wh, &[&ca1], &next.cert_pem).await?;
        admissions.advance();
        admissions
            .wait_admitted(PER_PHASE, &format!("CA1, certificate {n}"))
            .await?;
    }
    // A CA rotation: trust both; proven loaded when the canary (CA2) passes through both
    // configurations.
    canary.set_ca_bundle(&client, &wh, &[&ca1, &ca2]).await?;
    canary
        .wait(true, "the API server to load the bundle CA1+CA2")
        .await?;
    admissions.advance();
    admissions
        .wait_admitted(PER_PHASE, "bundle CA1+CA2, CA1 certificate")
        .await?;
    // Serve from the new CA.
    let next = serving_for(&ca2)?;
    write_pair(&wh.dir, &next)?;
    wait_served(&wh, &[&ca2], &next.cert_pem).await?;
    admissions.advance();
    admissions
        .wait_admitted(PER_PHASE, "bundle CA1+CA2, CA2 certificate")
        .await?;
    // Drop the old CA; proven loaded when a CA1 certificate on the canary, which passed under
    // the previous bundle, is refused through both configurations.
    canary.serve(&serving_for(&ca1)?, &[&ca1]).await?;
    canary
        .wait(true, "the canary on a CA1 certificate, still trusted")
        .await?;
    canary.set_ca_bundle(&client, &wh, &[&ca2]).await?;
    canary
        .wait(false, "the API server to load the bundle CA2 alone")
        .await?;
    admissions.advance();
    admissions
        .wait_admitted(PER_PHASE, "bundle CA2, CA2 certificate")
        .await?;

    let (ok, failures) = admissions.finish().await?;
    assert!(
        failures.is_empty(),
        "{} admissions failed, e.g. {:?}; passed per phase: {ok:?}\n{}",
        failures.len(),
        failures.first(),
        wh.log()
    );
    for phase in 0..7 {
        assert!(
            ok.get(&phase).copied().unwrap_or(0) >= PER_PHASE,
            "phase {phase}: {ok:?}"
        );
    }

    // The negative control is the canary's last refusal above: a jockey-webhook serving a
    // certificate of the dropped CA, called through both configurations, fails. (It is made on
    // the canary because the API server keeps its TLS connections to the webhook under test: a
    // certificate swapped under an established session is only checked at the next handshake,
    // which a caBundle change forces.)

    // The webhook counted its reloads (4 certificates; a pair caught half-written may add an
    // error that was retried).
    let metrics = wh.metrics(&[&ca2]).await?;
    let reloads = sample(
        &metrics,
        "jockey_webhook_certificate_reloads_total{result=\"ok\"}",
    )
    .unwrap_or(0.0);
    assert!(reloads >= 4.0, "{metrics}");
    eprintln!("admissions per phase {ok:?}, 0 failed, {reloads} certificate reloads");

    drop(canary);
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
                admissions.total(),
                wh.log()
            );
        }
        if let Ok((der, _)) = served(&wh, &ca).await
            && seen.last() != Some(&der)
        {
            seen.push(der);
            admissions.advance();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Admissions against the last certificate too.
    admissions
        .wait_admitted(10, "the last renewed certificate")
        .await?;
    let (per_phase, failures) = admissions.finish().await?;
    let ok: usize = per_phase.values().sum();
    // Served by each certificate in turn (a phase starts when the test sees the new one).
    for phase in 0..seen.len() {
        assert!(
            per_phase.get(&phase).copied().unwrap_or(0) >= 5,
            "phase {phase}: {per_phase:?}"
        );
    }
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
