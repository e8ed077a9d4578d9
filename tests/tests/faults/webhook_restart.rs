//! The webhook SIGKILLed and started again while labelled Services are created through the real
//! API server: every create either comes back stored and fully defaulted, or is refused (the
//! registration's failurePolicy is Fail); no object is ever stored without the defaults.

use crate::SERIAL;
use crate::webhook_support::{REGISTRY, Webhook, project};
use anyhow::{Result, bail};
use jockey_core::Config;
use jockey_core::defaults::default_service;
use jockey_e2e::{TestNamespace, client};
use k8s_openapi::api::core::v1::Service;
use kube::Api;
use kube::api::{ListParams, PostParams};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the test submits: the minimal labelled Service a user writes.
fn submitted(name: &str, project: &str) -> Result<Service> {
    Ok(serde_json::from_value(json!({
        "metadata": { "name": name, "labels": { "jockey.agentops.ai/project": project } },
        "spec": { "ports": [{ "port": 80 }] }
    }))?)
}

#[derive(Default)]
struct Outcomes {
    stored: Vec<String>,
    refused: Vec<(String, String)>,
}

impl Outcomes {
    fn counts(&self) -> (usize, usize) {
        (self.stored.len(), self.refused.len())
    }
}

/// Waits until `done(stored, refused)` holds, or fails naming `what` after 60 s.
async fn until(
    outcomes: &Mutex<Outcomes>,
    what: &str,
    done: impl Fn(usize, usize) -> bool,
) -> Result<()> {
    let start = Instant::now();
    loop {
        let (s, r) = outcomes.lock().unwrap_or_else(|p| p.into_inner()).counts();
        if done(s, r) {
            return Ok(());
        }
        if start.elapsed() > Duration::from_secs(60) {
            bail!("timed out waiting for {what} (stored {s}, refused {r})");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn webhook_killed_and_restarted_under_a_create_loop_never_lets_an_unmutated_object_in()
-> Result<()> {
    let _serial = SERIAL.lock().await;
    let client = client().await?;
    let ns = TestNamespace::create(&client, "fault-wh").await?;
    let mut wh = Webhook::start("fault-wh", None).await?;
    wh.scope(&client, &ns.name, None).await?;
    wh.register(&client, &ns.name).await?;
    let p = project("whkill");
    let services: Api<Service> = Api::namespaced(client.clone(), &ns.name);

    // Two writers create Services one after another until told to stop, recording each answer.
    let outcomes = Arc::new(Mutex::new(Outcomes::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..2 {
        let (services, outcomes, stop, p) =
            (services.clone(), outcomes.clone(), stop.clone(), p.clone());
        writers.push(tokio::spawn(async move {
            let mut i = 0u32;
            while !stop.load(Ordering::SeqCst) {
                let name = format!("s{w}-{i}");
                i += 1;
                let svc = submitted(&name, &p)?;
                let answer = services.create(&PostParams::default(), &svc).await;
                let mut o = outcomes.lock().unwrap_or_else(|p| p.into_inner());
                match answer {
                    Ok(_) => o.stored.push(name),
                    Err(e) => o.refused.push((name, e.to_string())),
                }
            }
            anyhow::Ok(())
        }));
    }

    until(&outcomes, "creates through the webhook", |s, _| s >= 5).await?;
    wh.kill()?;
    let (stored_before, refused_before) =
        outcomes.lock().unwrap_or_else(|p| p.into_inner()).counts();
    until(&outcomes, "refusals while the webhook is down", |_, r| {
        r >= refused_before + 4
    })
    .await?;
    wh.restart().await?;
    let (stored_down, _) = outcomes.lock().unwrap_or_else(|p| p.into_inner()).counts();
    until(&outcomes, "creates after the restart", |s, _| {
        s >= stored_down + 5
    })
    .await?;
    stop.store(true, Ordering::SeqCst);
    for w in writers {
        w.await??;
    }

    let o = std::mem::take(&mut *outcomes.lock().unwrap_or_else(|p| p.into_inner()));
    eprintln!(
        "stored {} (of which {stored_before} before the kill), refused {}",
        o.stored.len(),
        o.refused.len()
    );
    assert!(!o.stored.is_empty() && !o.refused.is_empty());
    // Every refusal is the failurePolicy at work (the API server could not call the webhook),
    // never something else going wrong.
    for (name, msg) in &o.refused {
        assert!(
            msg.contains("failed calling webhook"),
            "Service {name} was refused for another reason: {msg}"
        );
    }

    let cfg = Config::from_lookup(|k| (k == "IMAGE_REGISTRY").then(|| REGISTRY.to_string()));
    let live: BTreeMap<String, Service> = services
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter_map(|s| Some((s.metadata.name.clone()?, s)))
        .collect();
    for name in &o.stored {
        assert!(
            live.contains_key(name),
            "Service {name} was accepted but is not stored"
        );
    }
    for (name, msg) in &o.refused {
        assert!(
            !live.contains_key(name),
            "Service {name} was refused ({msg}) yet stored"
        );
    }
    // Stored means fully defaulted: what the webhook's own defaulting makes of the submission.
    for (name, svc) in &live {
        let want = default_service(&submitted(name, &p)?, &cfg)?;
        let got_spec = svc.spec.clone().unwrap_or_default();
        let want_spec = want.spec.clone().unwrap_or_default();
        let ports = |s: &k8s_openapi::api::core::v1::ServiceSpec| {
            s.ports
                .iter()
                .flatten()
                .map(|p| (p.name.clone(), p.port, p.target_port.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(ports(&got_spec), ports(&want_spec), "Service {name}: ports");
        assert_eq!(
            got_spec.selector, want_spec.selector,
            "Service {name}: selector"
        );
        assert_eq!(got_spec.type_, want_spec.type_, "Service {name}: type");
        let tags = "alb.ingress.kubernetes.io/tags";
        let got_tags = svc.metadata.annotations.as_ref().and_then(|a| a.get(tags));
        let want_tags = want.metadata.annotations.as_ref().and_then(|a| a.get(tags));
        assert!(want_tags.is_some());
        assert_eq!(got_tags, want_tags, "Service {name}: {tags}");
    }
    assert!(
        wh.exited().is_none(),
        "the restarted webhook exited:\n{}",
        wh.log()
    );
    drop(wh);
    ns.cleanup().await?;
    Ok(())
}
