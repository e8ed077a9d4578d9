//! `kubectl jockey install --image <local registry>/jockey/jockey-webhook:<tag>` runs the webhook
//! as real pods on the real node (the image is the project's own `jockey-webhook` build, made by
//! tests/cluster/images.sh); the API server calls it through its Service, so a plain
//! `kubectl apply` of a labelled manifest is stored mutated; `kubectl jockey uninstall` removes
//! everything, the pods stop, and the same apply is no longer mutated. The pods run with
//! `--client-ca-file` (the local API server's webhook client CA): the API server's reviews reach
//! them through the Service with its client certificate, and the kubelet's probes without one.
//!
//! Scoped like webhook_install.rs: its own name and a namespace selector only this test's
//! application namespace carries. Skipped (reported as such) without the real node.

mod webhook_support;

use anyhow::{Context, Result, ensure};
use jockey_e2e::{TestNamespace, client, require_real_node, wait_for};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams};
use std::time::Duration;
use webhook_support::{
    SCOPE_LABEL, apply, get_json, minimal_manifest, plugin, webhook_client_ca, webhook_image,
};

#[tokio::test]
async fn install_runs_the_webhook_on_the_real_node_and_apply_is_mutated_through_its_service()
-> Result<()> {
    let Some(node) = require_real_node() else {
        return Ok(());
    };
    let client = client().await?;
    let image = webhook_image(&node.registry)?;
    let system = TestNamespace::create(&client, "rn-whsys").await?;
    node.place(&client, &system.name).await?;
    let app = TestNamespace::create(&client, "rn-whapp").await?;
    let name = format!("jw-real-{}", std::process::id() % 100_000);
    let scope = format!("{SCOPE_LABEL}={name}");
    Api::<Namespace>::all(client.clone())
        .patch(
            &app.name,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"metadata": {"labels": {SCOPE_LABEL: name}}})),
        )
        .await?;

    // The pods answer only the API server (its client certificate for webhooks); the kubelet's
    // HTTPS probes get through without one.
    let client_ca = webhook_client_ca()?;
    let (ok, out) = plugin(&[
        "install",
        "--client-ca-file",
        &client_ca.to_string_lossy(),
        "-n",
        &system.name,
        "--name",
        &name,
        "--namespace-selector",
        &scope,
        "--image",
        &image,
        "--image-registry",
        &node.registry,
        "--wait",
        "--timeout",
        "300",
    ])?;
    ensure!(ok, "install failed: {out}");

    // Real pods of the project's image, Ready through their HTTPS probes, on the real node.
    let pods: Api<Pod> = Api::namespaced(client.clone(), &system.name);
    let selector = format!("app.kubernetes.io/name={name}");
    let selector = selector.as_str();
    let running = pods
        .list(&ListParams::default().labels(selector))
        .await?
        .items;
    ensure!(!running.is_empty(), "no webhook pod");
    for p in &running {
        let spec = p.spec.clone().unwrap_or_default();
        ensure!(
            spec.node_name.as_deref() == Some(node.name.as_str()),
            "{:?}",
            spec.node_name
        );
        let cs = p
            .status
            .clone()
            .unwrap_or_default()
            .container_statuses
            .unwrap_or_default();
        ensure!(cs.iter().all(|c| c.ready && c.image == image), "{cs:?}");
    }
    // The API server reaches it by its Service, not by a URL.
    let hooks = get_json("", "mutatingwebhookconfiguration", &name)?.context("no configuration")?;
    ensure!(
        hooks["webhooks"][0]["clientConfig"]["service"]["name"] == name.as_str()
            && hooks["webhooks"][0]["clientConfig"]["url"].is_null(),
        "{hooks}"
    );

    // A plain apply of a labelled manifest with `image: jockey:auto` is stored mutated.
    let project = "real-webhook-app";
    let hash = "0123456789abcdef";
    let (ok, out) = apply(&app.name, &minimal_manifest(project, hash))?;
    ensure!(ok, "{out}");
    let dep = get_json(&app.name, "deployment", project)?.context("Deployment not stored")?;
    ensure!(
        dep["spec"]["template"]["spec"]["containers"][0]["image"]
            == format!("{}/hosting/{project}:{hash}", node.registry).as_str(),
        "the image was not filled in: {dep}"
    );
    let svc = get_json(&app.name, "service", &format!("svc-{project}"))?.context("no Service")?;
    ensure!(svc["spec"]["ports"][0]["targetPort"] == 8080, "{svc}");
    let ing = get_json(&app.name, "ingress", &format!("ing-{project}"))?.context("no Ingress")?;
    ensure!(ing["spec"]["ingressClassName"] == "alb", "{ing}");
    // The pods required the API server's client certificate, and its reviews carried it.
    let mut answered = 0;
    for p in &running {
        let pod = p.metadata.name.clone().unwrap_or_default();
        let log = jockey_e2e::kubectl_ok(&["logs", "-n", &system.name, &pod])?;
        ensure!(
            log.contains("admission reviews only from callers with a client certificate"),
            "{pod} does not require a client certificate:\n{log}"
        );
        ensure!(
            !log.contains("refused an admission review"),
            "{pod} refused the API server:\n{log}"
        );
        answered += log.matches("\"message\":\"admission\"").count();
    }
    ensure!(answered > 0, "no pod logged an admission");

    // Uninstall: the objects go, the pods stop, and the API server no longer calls it.
    let (ok, out) = plugin(&["uninstall", "-n", &system.name, "--name", &name])?;
    ensure!(ok, "{out}");
    for kind in [
        "mutatingwebhookconfiguration",
        "validatingwebhookconfiguration",
    ] {
        ensure!(
            get_json("", kind, &name)?.is_none(),
            "{kind}/{name} still there"
        );
    }
    for (kind, n) in [
        ("deployment", name.clone()),
        ("service", name.clone()),
        ("secret", format!("{name}-tls")),
    ] {
        ensure!(
            get_json(&system.name, kind, &n)?.is_none(),
            "{kind}/{n} still there"
        );
    }
    wait_for("the webhook pods to stop", Duration::from_secs(120), || {
        let pods = pods.clone();
        async move {
            let left = pods
                .list(&ListParams::default().labels(selector))
                .await?
                .items;
            Ok(left.is_empty().then_some(()))
        }
    })
    .await?;
    // The Deployment alone: without the webhook, the bare Ingress would be invalid.
    let other = "real-webhook-after";
    let manifest = minimal_manifest(other, hash);
    let deployment = manifest.split("\n---\n").next().unwrap_or_default();
    let (ok, out) = apply(&app.name, deployment)?;
    ensure!(ok, "{out}");
    let dep = get_json(&app.name, "deployment", other)?.context("Deployment not stored")?;
    ensure!(
        dep["spec"]["template"]["spec"]["containers"][0]["image"] == "jockey:auto",
        "mutated after uninstall: {dep}"
    );

    system.cleanup().await?;
    app.cleanup().await?;
    Ok(())
}
