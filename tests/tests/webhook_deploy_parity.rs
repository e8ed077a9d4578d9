//! A plain `kubectl apply -f` of a minimal labelled manifest, defaulted by `jockey-webhook`,
//! stores the same Deployment, Service and Ingress that `kubectl jockey deploy --dry-run=server`
//! produces for the same project and instance (both through the real API server).
//!
//! deploy's side runs in a second namespace the webhook does not answer (its registration
//! selects only the first), so its objects are defaulted by deploy's own rendering and the API
//! server alone: the comparison is webhook against deploy, never the webhook against itself.
//! The webhook's log proves it saw no request from that namespace.

mod webhook_support;

use anyhow::{Context, Result};
use jockey_e2e::{TestNamespace, client, repo_root};
use serde_json::Value;
use webhook_support::{REGISTRY, Webhook, apply, get_json, minimal_manifest, project};

/// What both paths decide: spec, labels, and annotations other than kubectl's bookkeeping.
fn comparable(v: &Value) -> Value {
    let mut annotations = v["metadata"]["annotations"].clone();
    if let Some(a) = annotations.as_object_mut() {
        a.remove("kubectl.kubernetes.io/last-applied-configuration");
        a.remove("deployment.kubernetes.io/revision");
        if a.is_empty() {
            annotations = Value::Null;
        }
    }
    serde_json::json!({
        "kind": v["kind"],
        "name": v["metadata"]["name"],
        "labels": v["metadata"]["labels"],
        "annotations": annotations,
        "spec": v["spec"],
    })
}

#[tokio::test]
async fn kubectl_apply_through_the_webhook_equals_deploy_dry_run_server() -> Result<()> {
    let client = client().await?;
    let ns = TestNamespace::create(&client, "wh-parity").await?;
    let mut wh = Webhook::start("parity", None).await?;
    wh.scope(&client, &ns.name, None).await?;
    wh.register(&client, &ns.name).await?;
    let p = project("parity");
    // Not scoped: the webhook's namespaceSelector does not match it.
    let plain = TestNamespace::create(&client, "wh-parity-plain").await?;

    // deploy's view, from the API server without the webhook, of the example agent.
    let dir = repo_root().join("examples/agent");
    let out = std::process::Command::new(webhook_support::plugin_bin()?)
        .args(["deploy"])
        .arg(&dir)
        .args([
            "--project",
            &p,
            "-n",
            &plain.name,
            "--dry-run=server",
            "-o",
            "json",
        ])
        .arg("--kubeconfig")
        .arg(jockey_e2e::kubeconfig_path())
        .env("IMAGE_REGISTRY", REGISTRY)
        .env_remove("DEPLOYMENT_DOMAIN")
        .env_remove("ALB_SHARED_GROUP_NAME")
        .env_remove("IMAGE_REPOSITORY_PREFIX")
        .output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "deploy --dry-run=server failed:\n{stderr}\n{}",
        wh.log()
    );
    let list: Value = serde_json::from_slice(&out.stdout).with_context(|| {
        format!(
            "deploy -o json printed:\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    })?;
    let items = list["items"].as_array().context("a List")?;
    let by_kind = |kind: &str| {
        items
            .iter()
            .find(|i| i["kind"] == kind)
            .cloned()
            .with_context(|| format!("no {kind} in deploy's output"))
    };
    let cm = by_kind("ConfigMap")?;
    let hash = cm["metadata"]["name"]
        .as_str()
        .and_then(|n| n.strip_prefix("instance-"))
        .context("instance ConfigMap name")?
        .to_string();

    // The hand-written manifest for the same project and instance, through the webhook.
    let (ok, out) = apply(&ns.name, &minimal_manifest(&p, &hash))?;
    assert!(ok, "{out}\n{}", wh.log());
    // The webhook answered the apply and never deploy's dry run.
    let log = wh.log();
    assert!(
        log.contains(&format!("{}/{p}", ns.name)),
        "the webhook's log shows no request for the applied Deployment:\n{log}"
    );
    assert!(
        !log.contains(&plain.name),
        "the webhook saw deploy's dry run in {}, so the comparison would be with itself:\n{log}",
        plain.name
    );
    for (kind, name) in [
        ("Deployment", p.clone()),
        ("Service", format!("svc-{p}")),
        ("Ingress", format!("ing-{p}")),
    ] {
        let from_deploy = comparable(&by_kind(kind)?);
        let stored = comparable(
            &get_json(&ns.name, &kind.to_ascii_lowercase(), &name)?
                .with_context(|| format!("{kind} {name} not stored"))?,
        );
        // The Service's clusterIP(s) are allocated per request; everything else must agree.
        let strip = |mut v: Value| {
            if let Some(spec) = v["spec"].as_object_mut() {
                spec.remove("clusterIP");
                spec.remove("clusterIPs");
            }
            v
        };
        assert_eq!(
            strip(stored),
            strip(from_deploy),
            "{kind} {name}: kubectl apply + webhook differs from deploy --dry-run=server"
        );
    }
    drop(wh);
    ns.cleanup().await?;
    plain.cleanup().await?;
    Ok(())
}
