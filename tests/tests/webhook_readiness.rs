//! "`/readyz` fails, and a review is answered 'starting', until the webhook's caches have
//! synced": the real `jockey-webhook` process, whose only way to the API server is a TCP relay
//! the test holds shut. While it is shut the caches cannot list anything: `/readyz` answers 503
//! every time it is asked and a review gets 503 "starting" (the API server's `failurePolicy`
//! then decides, never a decision made on empty caches). Once the relay opens, the caches sync
//! and the same process becomes ready and answers reviews.

use anyhow::{Context, Result, bail, ensure};
use jockey_e2e::{kubeconfig_path, repo_root};
use serde_json::json;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A relay to `upstream` that holds every connection until opened.
async fn held_relay(upstream: String) -> Result<(u16, watch::Sender<bool>)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let (open, opened) = watch::channel(false);
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let (mut opened, upstream) = (opened.clone(), upstream.clone());
            tokio::spawn(async move {
                if opened.wait_for(|o| *o).await.is_err() {
                    return;
                }
                if let Ok(mut server) = TcpStream::connect(&upstream).await {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                }
            });
        }
    });
    Ok((port, open))
}

/// The API server's `host:port` in the local cluster's kubeconfig, and that kubeconfig.
fn upstream() -> Result<(String, String)> {
    let text = std::fs::read_to_string(kubeconfig_path())?;
    let upstream = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("server: https://"))
        .context("no server in the kubeconfig")?
        .trim()
        .to_string();
    Ok((upstream, text))
}

/// `curl` over HTTPS trusting `ca`: (status, body). curl is the oracle, as an operator's probe.
fn curl(port: u16, path: &str, ca: &Path, body: Option<&str>) -> Result<(u16, String)> {
    let mut cmd = Command::new("curl");
    cmd.args(["-s", "--max-time", "10", "-w", "\n%{http_code}", "--cacert"])
        .arg(ca);
    if let Some(b) = body {
        cmd.args(["-H", "content-type: application/json", "--data-binary", b]);
    }
    let out = cmd
        .arg(format!("https://127.0.0.1:{port}{path}"))
        .output()
        .context("running curl")?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (answer, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    Ok((code.trim().parse().unwrap_or(0), answer.to_string()))
}

fn review() -> String {
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "readiness-1",
            "kind": { "group": "", "version": "v1", "kind": "Service" },
            "resource": { "group": "", "version": "v1", "resource": "services" },
            "namespace": "readiness",
            "name": "svc-ready",
            "operation": "CREATE",
            "userInfo": { "username": "e2e" },
            "object": {
                "apiVersion": "v1", "kind": "Service",
                "metadata": { "name": "svc-ready", "namespace": "readiness",
                              "labels": { "jockey.agentops.ai/project": "ready" } },
                "spec": { "selector": { "app": "ready" }, "ports": [{ "port": 80 }] }
            },
            "dryRun": true
        }
    })
    .to_string()
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_fails_and_reviews_are_answered_starting_until_the_caches_sync() -> Result<()> {
    let bin = repo_root().join("target/debug/jockey-webhook");
    ensure!(
        bin.exists(),
        "{} is missing: `cargo build -p jockey-webhook` (tests/e2e.sh builds it)",
        bin.display()
    );
    let dir = std::env::temp_dir().join(format!("jockey-e2e-readiness-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let certs = Command::new(&bin)
        .args(["dev-certs", "--dir"])
        .arg(&dir)
        .output()?;
    ensure!(
        certs.status.success(),
        "dev-certs: {}",
        String::from_utf8_lossy(&certs.stderr)
    );
    let ca = dir.join("ca.crt");

    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        l.local_addr()?.port()
    };
    // The same credentials, the API server reached through the relay (its certificate names
    // 127.0.0.1, so TLS is unchanged end to end).
    let (upstream, text) = upstream()?;
    let (relay_port, open) = held_relay(upstream.clone()).await?;
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        text.replace(
            &format!("server: https://{upstream}"),
            &format!("server: https://127.0.0.1:{relay_port}"),
        ),
    )?;
    let log = dir.join("webhook.log");
    let webhook = Killed(
        Command::new(&bin)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--tls-cert-file")
            .arg(dir.join("tls.crt"))
            .arg("--tls-key-file")
            .arg(dir.join("tls.key"))
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(["--claims-namespace", "jockey-e2e-readiness"])
            .env("IMAGE_REGISTRY", "registry.local:5000")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .context("starting jockey-webhook")?,
    );
    let log_text = || std::fs::read_to_string(&log).unwrap_or_default();

    // Serving (liveness answers) while the caches cannot sync.
    let start = Instant::now();
    while curl(port, "/healthz", &ca, None)?.0 != 200 {
        if start.elapsed() > Duration::from_secs(30) {
            bail!("jockey-webhook did not serve /healthz:\n{}", log_text());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Not ready, every time it is asked, for as long as the relay is shut.
    let held = Instant::now();
    let mut asked = 0;
    while held.elapsed() < Duration::from_secs(5) {
        let (status, body) = curl(port, "/readyz", &ca, None)?;
        ensure!(
            status == 503 && body.contains("not ready"),
            "/readyz answered {status} {body:?} before the caches could sync:\n{}",
            log_text()
        );
        asked += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (status, body) = curl(port, "/validate", &ca, Some(&review()))?;
    ensure!(
        status == 503 && body.contains("starting"),
        "a review before the caches synced was answered {status} {body:?}:\n{}",
        log_text()
    );
    eprintln!("/readyz answered 503 to {asked} probes while the API server was out of reach");

    // The way to the API server opens: the same process syncs and becomes ready.
    open.send(true)?;
    let opened = Instant::now();
    loop {
        let (status, _) = curl(port, "/readyz", &ca, None)?;
        if status == 200 {
            break;
        }
        if opened.elapsed() > Duration::from_secs(60) {
            bail!(
                "not ready 60 s after the API server could be reached:\n{}",
                log_text()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (status, body) = curl(port, "/validate", &ca, Some(&review()))?;
    ensure!(status == 200, "{status} {body}");
    let answer: serde_json::Value = serde_json::from_str(&body)?;
    ensure!(
        answer["response"]["uid"] == "readiness-1" && answer["response"]["allowed"].is_boolean(),
        "{body}"
    );
    ensure!(
        log_text().contains("caches synced; ready"),
        "{}",
        log_text()
    );
    drop(webhook);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
