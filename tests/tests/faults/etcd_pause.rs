//! etcd paused (SIGSTOP) for a few seconds during an admission burst: the webhook's claims (Lease
//! writes through the API server) stall, yet the webhook does not panic, every review is answered
//! within the API server's webhook timeout (those that need a claim denied once the webhook's 3 s
//! claim timeout passes, each measured), its memory stays bounded, and once etcd runs again
//! (SIGCONT) admissions succeed with the same process.

use crate::SERIAL;
use crate::component::{EtcdPause, alive};
use crate::webhook_support::{Webhook, apiserver_identity, https_post_json, project};
use anyhow::{Context, Result, bail};
use jockey_e2e::{TestNamespace, client};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::Api;
use kube::api::PostParams;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// `VmRSS` and `VmHWM` of `pid`, in KiB.
fn memory_kib(pid: u32) -> Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> Result<u64> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .with_context(|| format!("no {name} in /proc/{pid}/status"))
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

/// A validating review of a new labelled Service: allowing it needs the project's claim, which
/// the webhook records in the API server (and so in etcd).
fn review(ns: &str, project: &str, uid: &str) -> String {
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": { "group": "", "version": "v1", "kind": "Service" },
            "resource": { "group": "", "version": "v1", "resource": "services" },
            "namespace": ns,
            "name": format!("svc-{project}"),
            "operation": "CREATE",
            "userInfo": { "username": "e2e" },
            "object": {
                "apiVersion": "v1", "kind": "Service",
                "metadata": { "name": format!("svc-{project}"), "namespace": ns,
                              "labels": { "jockey.agentops.ai/project": project } },
                "spec": { "type": "ClusterIP", "selector": { "app": project },
                          "ports": [{ "name": "http", "port": 80, "targetPort": 8080 }] }
            },
            "dryRun": false
        }
    })
    .to_string()
}

/// The API server's webhook timeout (`timeoutSeconds: 5`): an answer later than this is never
/// read, and its client sees "context deadline exceeded" instead of the reason.
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(5);
/// The webhook's claim timeout (webhook/src/server.rs `CLAIM_TIMEOUT`), which its denial names.
const CLAIM_TIMEOUT: Duration = Duration::from_secs(3);
/// How far the burst may raise the webhook's peak memory above its idle size (+34 MiB measured
/// for about 900 reviews, half of them held 3 s; a leak of 35 KiB a review fails this bound).
const MEMORY_BOUND_MIB: u64 = 64;

fn labelled_service(name: &str, project: &str) -> Result<Service> {
    Ok(serde_json::from_value(json!({
        "metadata": { "name": name, "labels": { "jockey.agentops.ai/project": project } },
        "spec": { "ports": [{ "port": 80 }] }
    }))?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn etcd_paused_during_an_admission_burst_no_panic_bounded_memory_recovers_in_place()
-> Result<()> {
    let _serial = SERIAL.lock().await;
    let client = client().await?;
    let ns = TestNamespace::create(&client, "fault-etcd").await?;
    let mut wh = Webhook::start("fault-etcd", None).await?;
    wh.scope(&client, &ns.name, None).await?;
    wh.register(&client, &ns.name).await?;
    let pid = wh.pid();
    let services: Api<Service> = Api::namespaced(client.clone(), &ns.name);
    let base = project("etcd");
    services
        .create(&PostParams::default(), &labelled_service("before", &base)?)
        .await
        .context("an admission before the pause")?;
    let (rss_before, _) = memory_kib(pid)?;

    // The burst: a new review every 5 ms on a fresh connection, each for a project never seen
    // (so each needs a claim written), whether or not the earlier ones were answered; plus
    // creates through the API server.
    let answered = Arc::new(AtomicUsize::new(0));
    let unanswered = Arc::new(AtomicUsize::new(0));
    // (message, how long the answer took).
    let denied = Arc::new(std::sync::Mutex::new(Vec::<(String, Duration)>::new()));
    let slowest = Arc::new(std::sync::Mutex::new(Duration::ZERO));
    let mut burst = Vec::new();
    let mut pause = EtcdPause::pause()?;
    let paused_at = Instant::now();
    let mut n = 0u32;
    let mut peak_hwm = 0u64;
    // The reviews come as the API server's do: with its client certificate.
    let identity = apiserver_identity()?;
    while paused_at.elapsed() < Duration::from_secs(6) {
        n += 1;
        let (port, ca, ns_name, identity) =
            (wh.port, wh.ca.clone(), ns.name.clone(), identity.clone());
        let (answered, unanswered, denied, slowest) = (
            answered.clone(),
            unanswered.clone(),
            denied.clone(),
            slowest.clone(),
        );
        let body = review(&ns_name, &format!("{base}-b{n}"), &format!("uid-{n}"));
        burst.push(tokio::spawn(async move {
            let sent = Instant::now();
            // Answered within the API server's timeout, or not at all as far as it is concerned.
            match https_post_json(
                port,
                "/validate",
                &body,
                &[&ca],
                Some(&identity),
                WEBHOOK_TIMEOUT,
            )
            .await
            {
                Ok((200, body)) => {
                    let took = sent.elapsed();
                    answered.fetch_add(1, Ordering::SeqCst);
                    {
                        let mut s = slowest.lock().unwrap_or_else(|p| p.into_inner());
                        *s = (*s).max(took);
                    }
                    let review: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                    if review["response"]["allowed"] == false {
                        denied.lock().unwrap_or_else(|p| p.into_inner()).push((
                            review["response"]["status"]["message"]
                                .as_str()
                                .unwrap_or_default()
                                .to_string(),
                            took,
                        ));
                    }
                }
                _ => {
                    unanswered.fetch_add(1, Ordering::SeqCst);
                }
            };
        }));
        if n.is_multiple_of(40) {
            let services = services.clone();
            let svc = labelled_service(&format!("during-{n}"), &format!("{base}-a{n}"))?;
            burst.push(tokio::spawn(async move {
                let _ = services.create(&PostParams::default(), &svc).await;
            }));
            peak_hwm = peak_hwm.max(memory_kib(pid)?.1);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(
        alive(pid),
        "the webhook died while etcd was paused:\n{}",
        wh.log()
    );
    let (_, hwm_paused) = memory_kib(pid)?;
    pause.resume()?;
    for t in burst {
        t.await?;
    }
    let (rss_after, hwm) = memory_kib(pid)?;
    let denied = std::mem::take(&mut *denied.lock().unwrap_or_else(|p| p.into_inner()));
    let slowest = *slowest.lock().unwrap_or_else(|p| p.into_inner());
    let slowest_denial = denied.iter().map(|(_, t)| *t).max().unwrap_or_default();
    let fastest_denial = denied.iter().map(|(_, t)| *t).min().unwrap_or_default();
    eprintln!(
        "{n} reviews sent: {} answered ({} denied: {:?}), {} not; slowest answer {slowest:?}, \
         denials after {fastest_denial:?} to {slowest_denial:?}; VmRSS {rss_before} -> \
         {rss_after} KiB, VmHWM {hwm} KiB (while paused {}, +{} KiB over idle)",
        answered.load(Ordering::SeqCst),
        denied.len(),
        denied.first(),
        unanswered.load(Ordering::SeqCst),
        hwm_paused.max(peak_hwm),
        hwm.saturating_sub(rss_before)
    );

    // Recovery in place: the same process admits (and defaults) a new object.
    let start = Instant::now();
    let stored = loop {
        let name = format!("after-{}", start.elapsed().as_millis());
        match services
            .create(&PostParams::default(), &labelled_service(&name, &base)?)
            .await
        {
            Ok(s) => break s,
            Err(e) if start.elapsed() < Duration::from_secs(60) => {
                eprintln!("not yet: {e}");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => bail!("no admission succeeded within 60 s after SIGCONT: {e}"),
        }
    };
    let target = stored
        .spec
        .and_then(|s| s.ports)
        .and_then(|p| p.first().and_then(|p| p.target_port.clone()));
    assert_eq!(target, Some(IntOrString::Int(8080)), "not defaulted");
    assert_eq!(wh.pid(), pid);
    assert!(wh.exited().is_none(), "the webhook exited:\n{}", wh.log());
    let log = wh.log();
    assert!(!log.contains("panicked"), "the webhook panicked:\n{log}");
    // Every review got an answer within the API server's timeout (none was dropped on the
    // floor, none came too late to be read).
    assert_eq!(
        unanswered.load(Ordering::SeqCst),
        0,
        "reviews without an answer within {WEBHOOK_TIMEOUT:?}:\n{log}"
    );
    // Reviews that needed a claim while etcd stood still were answered in time with a denial
    // naming the claim it could not record (the API server reads a reason, not a timeout);
    // never denied for anything else.
    assert!(
        !denied.is_empty(),
        "no review was denied: the pause was not felt (or claims wait for ever)"
    );
    for (d, _) in &denied {
        assert!(
            d.contains("claim"),
            "a review was denied for another reason: {d}"
        );
        // Denied by the claim timeout (3 s), not by anything slower: the message names it, and
        // the answer came within the API server's own timeout above, so the reason reaches the
        // client. (No bound on the machine's seconds here: the times are reported above.)
        assert!(
            d.contains(&format!(
                "did not answer within {}s",
                CLAIM_TIMEOUT.as_secs()
            )),
            "a stalled review was denied otherwise than by the {CLAIM_TIMEOUT:?} claim timeout: {d}"
        );
    }
    // Bounded: the burst may cost memory for what is in flight, not grow without limit.
    let limit_kib = rss_before + MEMORY_BOUND_MIB * 1024;
    assert!(
        hwm <= limit_kib,
        "VmHWM {hwm} KiB exceeds {limit_kib} KiB (VmRSS before {rss_before} KiB)"
    );
    drop(wh);
    ns.cleanup().await?;
    Ok(())
}
