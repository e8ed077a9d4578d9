//! `helm install` of charts/jockey runs the webhook as real pods on the real node (the project's
//! own `jockey-webhook` build, pushed to the node's registry by tests/cluster/images.sh) with the
//! certificates the chart makes (certificates.mode self), and a plain `kubectl apply` of a
//! labelled Deployment is stored mutated through its Service. Then `helm upgrade` from the
//! previous chart version while a labelled Deployment is applied in a loop: not one request is
//! refused, the pods are replaced, and the certificates are kept.
//!
//! The previous version: no chart has been released yet, so it is this chart packaged as
//! 0.1.0-previous with one difference that rolls the pods (a pod annotation in its default
//! values), installed first; the upgrade is to the working tree's chart.
//!
//! Scoped like real_webhook_install.rs: its own names, a namespace selector only this test's
//! application namespace carries, and none of the cluster-wide objects other tests share (the
//! BuildRequest CRD, the broker's and the tenant's ClusterRoles; helm_chart.rs diffs their
//! rendering). Fails, never skips, without helm; without the real node it fails where the node is
//! required (JOCKEY_REQUIRE_REAL_NODE=1, as `make test` sets) and is reported skipped otherwise.

mod helm_support;
mod webhook_support;

use anyhow::{Context, Result, bail, ensure};
use helm_support::{chart_dir, helm, helm_bin};
use jockey_e2e::{TestNamespace, client, require_real_node, wait_for};
use k8s_openapi::api::core::v1::{Namespace, Pod, Secret};
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams};
use serde_json::json;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use webhook_support::{
    SCOPE_LABEL, apply, get_json, minimal_manifest, webhook_client_ca, webhook_image,
};

const PREVIOUS: &str = "0.1.0-previous";
const PREVIOUS_ANNOTATION: &str = "jockey.agentops.ai/chart";

/// charts/jockey copied (symlinked files read through) as version PREVIOUS, whose pods carry one
/// more annotation, packaged; the archive's path.
fn previous_chart(home: &Path) -> Result<String> {
    let src = chart_dir();
    let dst = home.join("previous/jockey");
    copy_dir(&src, &dst)?;
    let chart_yaml = std::fs::read_to_string(dst.join("Chart.yaml"))?;
    ensure!(
        chart_yaml.contains("\nversion: "),
        "Chart.yaml has no version"
    );
    let chart_yaml = chart_yaml
        .lines()
        .map(|l| {
            if l.starts_with("version: ") {
                format!("version: {PREVIOUS}")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(dst.join("Chart.yaml"), chart_yaml)?;
    let values = std::fs::read_to_string(dst.join("values.yaml"))?;
    ensure!(
        values.contains("\npodAnnotations: {}\n"),
        "values.yaml has no podAnnotations: {{}}"
    );
    std::fs::write(
        dst.join("values.yaml"),
        values.replace(
            "\npodAnnotations: {}\n",
            &format!("\npodAnnotations:\n  {PREVIOUS_ANNOTATION}: previous\n"),
        ),
    )?;
    let out_dir = home.join("previous");
    let (ok, out, err) = helm(
        home,
        &[
            "package",
            &dst.to_string_lossy(),
            "-d",
            &out_dir.to_string_lossy(),
        ],
    )?;
    ensure!(ok, "helm package: {out}{err}");
    let archive = out_dir.join(format!("jockey-{PREVIOUS}.tgz"));
    ensure!(
        archive.exists(),
        "helm package wrote no {}: {out}",
        archive.display()
    );
    Ok(archive.to_string_lossy().into_owned())
}

/// A copy with symbolic links replaced by what they point at.
fn copy_dir(src: &Path, dst: &Path) -> Result<()> {
    std::fs::create_dir_all(dst)?;
    for entry in std::fs::read_dir(src)? {
        let entry = entry?;
        let from = entry.path();
        let to = dst.join(entry.file_name());
        if std::fs::metadata(&from)?.is_dir() {
            copy_dir(&from, &to)?;
        } else {
            std::fs::copy(&from, &to).with_context(|| format!("copying {}", from.display()))?;
        }
    }
    Ok(())
}

/// What went wrong with the webhook pods, for a failed helm command.
fn diagnose(ns: &str) -> String {
    let pods = jockey_e2e::kubectl(&["get", "pods", "-n", ns, "-o", "wide"])
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let events = jockey_e2e::kubectl(&["get", "events", "-n", ns, "--sort-by=.lastTimestamp"])
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    format!("pods:\n{pods}\nevents:\n{events}")
}

/// `helm uninstall` of the release when the test ends before its own uninstall (a failure): the
/// admission policy binding is cluster-wide, and with its parameter's namespace gone it would
/// refuse every Ingress in the cluster.
struct Uninstall<'a> {
    home: &'a Path,
    release: String,
    ns: String,
    armed: bool,
}

impl Drop for Uninstall<'_> {
    fn drop(&mut self) {
        if self.armed {
            let _ = helm(
                self.home,
                &["uninstall", &self.release, "-n", &self.ns, "--wait"],
            );
        }
    }
}

/// A labelled Deployment applied over and over (each apply an UPDATE both webhooks answer) until
/// `stop`; every answer must come back mutated. (attempts, failures).
fn apply_loop(ns: String, project: String, stop: Arc<AtomicBool>) -> (u32, Vec<String>) {
    let hash = "0123456789abcdef";
    let manifest = minimal_manifest(&project, hash);
    let deployment = manifest
        .split("\n---\n")
        .next()
        .unwrap_or_default()
        .to_string();
    let mut attempts = 0;
    let mut failures = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        attempts += 1;
        let yaml = deployment.replace(
            "  annotations:\n",
            &format!("  annotations:\n    jockey-e2e/iteration: \"{attempts}\"\n"),
        );
        match webhook_support::kubectl_stdin(&["apply", "-n", &ns, "-o", "json", "-f", "-"], &yaml)
        {
            Ok((true, out)) => {
                let stored: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
                let image = &stored["spec"]["template"]["spec"]["containers"][0]["image"];
                if image == "jockey:auto" || image.is_null() {
                    failures.push(format!("apply {attempts} was stored unmutated: {image}"));
                }
            }
            Ok((false, out)) => failures.push(format!("apply {attempts} refused: {out}")),
            Err(e) => failures.push(format!("apply {attempts}: {e}")),
        }
    }
    (attempts, failures)
}

#[tokio::test]
async fn helm_installs_the_webhook_on_the_real_node_and_upgrades_it_refusing_nothing() -> Result<()>
{
    helm_bin()?;
    let Some(node) = require_real_node() else {
        return Ok(());
    };
    let client = client().await?;
    let image = webhook_image(&node.registry)?;
    let Some((repository, tag)) = image.rsplit_once(':') else {
        bail!("images.sh printed {image}, which has no tag");
    };
    let system = TestNamespace::create(&client, "rn-helmsys").await?;
    node.place(&client, &system.name).await?;
    let app = TestNamespace::create(&client, "rn-helmapp").await?;
    let name = format!("jw-helm-{}", std::process::id() % 100_000);
    Api::<Namespace>::all(client.clone())
        .patch(
            &app.name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {SCOPE_LABEL: name}}})),
        )
        .await?;
    let home = tempfile::tempdir()?;
    let client_ca = std::fs::read_to_string(webhook_client_ca()?)?;
    let values = json!({
        "fullnameOverride": name,
        "image": {"repository": repository, "tag": tag},
        "namespaceSelector": {"matchLabels": {SCOPE_LABEL: name}},
        "config": {"imageRegistry": node.registry},
        // The pods answer only the local API server's client certificate for webhooks.
        "clientAuth": {"caBundle": client_ca},
        "broker": {"enabled": false},
        "tenantRole": {"enabled": false},
        "crds": {"enabled": false},
    });
    let values_file = home.path().join("values.json");
    std::fs::write(&values_file, values.to_string())?;
    let values_file = values_file.to_string_lossy().into_owned();
    let release = name.clone();
    let ns = system.name.clone();

    // Install the previous version.
    let previous = previous_chart(home.path())?;
    let (ok, out, err) = helm(
        home.path(),
        &[
            "install",
            &release,
            &previous,
            "-n",
            &ns,
            "-f",
            &values_file,
            "--wait",
            "--timeout",
            "5m",
        ],
    )?;
    let mut installed = Uninstall {
        home: home.path(),
        release: release.clone(),
        ns: ns.clone(),
        armed: true,
    };
    ensure!(ok, "helm install {previous}: {out}{err}\n{}", diagnose(&ns));

    // Real pods of the project's image, Ready through their HTTPS probes, on the real node.
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let selector = format!("app.kubernetes.io/name={name}");
    let before = pods
        .list(&ListParams::default().labels(&selector))
        .await?
        .items;
    ensure!(before.len() == 2, "{} webhook pods, not 2", before.len());
    for p in &before {
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
        ensure!(
            p.metadata
                .annotations
                .clone()
                .unwrap_or_default()
                .get(PREVIOUS_ANNOTATION)
                == Some(&"previous".to_string()),
            "the previous chart's pod lacks its annotation"
        );
    }
    // The caBundle is the CA the chart made, which signed the served certificate.
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let ca = secrets.get(&format!("{name}-ca")).await?;
    let tls_before = secrets.get(&format!("{name}-tls")).await?;
    let ca_pem = ca
        .data
        .clone()
        .unwrap_or_default()
        .get("tls.crt")
        .cloned()
        .context("no CA")?;
    let hooks = get_json("", "mutatingwebhookconfiguration", &name)?.context("no configuration")?;
    use base64::Engine;
    let bundle = base64::engine::general_purpose::STANDARD.decode(
        hooks["webhooks"][0]["clientConfig"]["caBundle"]
            .as_str()
            .unwrap_or_default(),
    )?;
    ensure!(bundle == ca_pem.0, "the caBundle is not the chart's CA");

    // A plain apply of a labelled manifest with `image: jockey:auto` is stored mutated.
    let project = format!("helm-app-{}", std::process::id() % 100_000);
    let (ok, out) = apply(&app.name, &minimal_manifest(&project, "0123456789abcdef"))?;
    ensure!(ok, "{out}");
    let dep = get_json(&app.name, "deployment", &project)?.context("Deployment not stored")?;
    ensure!(
        dep["spec"]["template"]["spec"]["containers"][0]["image"]
            == format!("{}/hosting/{project}:0123456789abcdef", node.registry).as_str(),
        "the image was not filled in: {dep}"
    );

    // Upgrade to the working tree's chart while the Deployment is applied in a loop.
    let stop = Arc::new(AtomicBool::new(false));
    let looping = {
        let (ns, project, stop) = (app.name.clone(), project.clone(), stop.clone());
        std::thread::spawn(move || apply_loop(ns, project, stop))
    };
    let chart = chart_dir().to_string_lossy().into_owned();
    let upgraded = helm(
        home.path(),
        &[
            "upgrade",
            &release,
            &chart,
            "-n",
            &ns,
            "-f",
            &values_file,
            "--wait",
            "--timeout",
            "5m",
        ],
    );
    // Until every previous pod is gone (helm's wait ends when the new ones are ready; the old
    // ones still drain), then a little longer.
    let old_names: Vec<String> = before
        .iter()
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    let drained = wait_for("the previous pods to go", Duration::from_secs(180), || {
        let (pods, selector, old_names) = (pods.clone(), selector.clone(), old_names.clone());
        async move {
            let now = pods
                .list(&ListParams::default().labels(&selector))
                .await?
                .items;
            let left = now
                .iter()
                .filter(|p| old_names.contains(&p.metadata.name.clone().unwrap_or_default()))
                .count();
            Ok((left == 0).then_some(now))
        }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::SeqCst);
    let (attempts, failures) = looping
        .join()
        .map_err(|_| anyhow::anyhow!("the apply loop panicked"))?;
    let (ok, out, err) = upgraded?;
    ensure!(ok, "helm upgrade: {out}{err}\n{}", diagnose(&ns));
    let after = drained?;
    ensure!(
        failures.is_empty(),
        "{} of {attempts} applies failed during the upgrade:\n{}",
        failures.len(),
        failures.join("\n")
    );
    ensure!(attempts >= 10, "only {attempts} applies during the upgrade");
    // The pods were replaced by the current chart's (without the previous annotation), and the
    // certificates kept: the chart read them back instead of making new ones.
    ensure!(
        after.len() == 2,
        "{} webhook pods after the upgrade",
        after.len()
    );
    for p in &after {
        ensure!(
            !p.metadata
                .annotations
                .clone()
                .unwrap_or_default()
                .contains_key(PREVIOUS_ANNOTATION),
            "pod {:?} is still the previous chart's",
            p.metadata.name
        );
    }
    let tls_after = secrets.get(&format!("{name}-tls")).await?;
    ensure!(
        tls_after.data == tls_before.data,
        "helm upgrade replaced the serving certificate"
    );
    let hooks = get_json("", "mutatingwebhookconfiguration", &name)?.context("no configuration")?;
    let bundle_after = base64::engine::general_purpose::STANDARD.decode(
        hooks["webhooks"][0]["clientConfig"]["caBundle"]
            .as_str()
            .unwrap_or_default(),
    )?;
    ensure!(
        bundle_after == ca_pem.0,
        "helm upgrade changed the caBundle"
    );
    let (ok, history, err) = helm(home.path(), &["history", &release, "-n", &ns, "-o", "json"])?;
    ensure!(ok, "{err}");
    let history: serde_json::Value = serde_json::from_str(&history)?;
    let charts: Vec<&str> = history
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["chart"].as_str())
        .collect();
    ensure!(
        charts
            == [
                format!("jockey-{PREVIOUS}"),
                format!("jockey-{}", env!("CARGO_PKG_VERSION"))
            ],
        "helm history: {history}"
    );
    eprintln!("{attempts} applies during the upgrade, none refused");

    // Uninstall: the webhook configurations go, and the same apply is no longer mutated.
    let (ok, out, err) = helm(home.path(), &["uninstall", &release, "-n", &ns, "--wait"])?;
    ensure!(ok, "helm uninstall: {out}{err}");
    installed.armed = false;
    for kind in [
        "mutatingwebhookconfiguration",
        "validatingwebhookconfiguration",
    ] {
        ensure!(
            get_json("", kind, &name)?.is_none(),
            "{kind}/{name} still there"
        );
    }
    ensure!(
        get_json(
            "",
            "validatingadmissionpolicy",
            &format!("{name}-shared-alb")
        )?
        .is_none(),
        "the admission policy is still there"
    );
    system.cleanup().await?;
    app.cleanup().await?;
    Ok(())
}
