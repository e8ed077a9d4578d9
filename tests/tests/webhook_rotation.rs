//! Certificate rotation of a running `jockey-webhook` while the real API server keeps calling it:
//! serving certificates replaced on disk (as a Secret volume update does), then a CA rotation
//! through a two-CA caBundle. Not one admission may fail.

mod webhook_support;

use anyhow::{Result, bail};
use jockey_core::certs;
use jockey_e2e::{TestNamespace, client};
use k8s_openapi::api::core::v1::Service;
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

#[tokio::test]
async fn certificate_rotation_during_an_admission_loop_fails_no_request() -> Result<()> {
    let client = client().await?;
    let ns = TestNamespace::create(&client, "wh-rotate").await?;
    let mut wh = Webhook::start("rotate", None).await?;
    wh.scope(&client, &ns.name, None).await?;
    wh.register(&client, &ns.name).await?;
    let ca1 = wh.ca.clone();

    // The loop: server-side dry-run creates of a labelled Service, each mutated by /mutate and
    // checked by /validate, back to back on two workers.
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut workers = Vec::new();
    for w in 0..2 {
        let services: Api<Service> = Api::namespaced(client.clone(), &ns.name);
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

    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await?;
    }
    let failures = failures.lock().await.clone();
    let ok = ok.load(Ordering::Relaxed);
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
    let reloads: f64 = metrics
        .lines()
        .find(|l| l.starts_with("jockey_webhook_certificate_reloads_total{result=\"ok\"}"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    assert!(reloads >= 4.0, "{metrics}");
    eprintln!("{ok} admissions, 0 failed, {reloads} certificate reloads");

    drop(wh);
    ns.cleanup().await?;
    Ok(())
}
