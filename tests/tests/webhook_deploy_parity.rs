//! A plain `kubectl apply -f` of a minimal labelled manifest, defaulted by `jockey-webhook`,
//! stores the same Deployment, Service and Ingress that `kubectl jockey deploy --dry-run=server`
//! produces for the same project and instance (both through the real API server).
//!
//! deploy's side runs in a second namespace the webhook does not answer (its registration
//! selects only the first), so its objects are defaulted by deploy's own rendering and the API
//! server alone: the comparison is webhook against deploy, never the webhook against itself.
//! The webhook's log proves it saw no request from that namespace.
//!
//! Twice: a manifest that leaves replicas and resources out (both paths give the defaults), and
//! one that sets them, against `deploy --replicas --cpu --memory` with the same values (both
//! keep the user's values and default only what is missing).

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

/// The settings a user writes in a manifest, and the deploy flags that say the same.
struct Case {
    tag: &'static str,
    manifest_replicas: Option<&'static str>,
    manifest_resources: Option<&'static str>,
    flags: &'static [&'static str],
    /// (replicas, requests cpu, requests memory, limits cpu, limits memory) both must store.
    expected: (i64, &'static str, &'static str, &'static str, &'static str),
    /// The instance ConfigMap exists in both namespaces and records this built-in-template
    /// dependency image (the broker's answer): both paths run it, with the instance's files
    /// unpacked at pod start.
    dependency_image: Option<&'static str>,
}

const CASES: [Case; 3] = [
    Case {
        tag: "parity",
        manifest_replicas: None,
        manifest_resources: None,
        flags: &[],
        expected: (1, "100m", "256Mi", "1", "1Gi"),
        dependency_image: None,
    },
    Case {
        tag: "parity-set",
        manifest_replicas: Some("3"),
        manifest_resources: Some(
            "        resources:\n          requests: {cpu: 250m, memory: 512Mi}\n          \
             limits: {memory: 512Mi}\n",
        ),
        flags: &["--replicas", "3", "--cpu", "250m", "--memory", "512Mi"],
        expected: (3, "250m", "512Mi", "1", "512Mi"),
        dependency_image: None,
    },
    Case {
        tag: "parity-deps",
        manifest_replicas: None,
        manifest_resources: None,
        flags: &[],
        expected: (1, "100m", "256Mi", "1", "1Gi"),
        dependency_image: Some("d-0123456789abcdef"),
    },
];

fn settings(d: &Value) -> (i64, String, String, String, String) {
    let c = &d["spec"]["template"]["spec"]["containers"][0]["resources"];
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    (
        d["spec"]["replicas"].as_i64().unwrap_or(-1),
        s(&c["requests"]["cpu"]),
        s(&c["requests"]["memory"]),
        s(&c["limits"]["cpu"]),
        s(&c["limits"]["memory"]),
    )
}

#[tokio::test]
async fn kubectl_apply_through_the_webhook_equals_deploy_dry_run_server() -> Result<()> {
    for case in &CASES {
        compare(case).await?;
    }
    Ok(())
}

async fn compare(case: &Case) -> Result<()> {
    let client = client().await?;
    let ns = TestNamespace::create(&client, "wh-parity").await?;
    let mut wh = Webhook::start(case.tag, None).await?;
    wh.scope(&client, &ns.name, None).await?;
    wh.register(&client, &ns.name).await?;
    let p = project(case.tag);
    // Not scoped: the webhook's namespaceSelector does not match it.
    let plain = TestNamespace::create(&client, "wh-parity-plain").await?;

    // deploy's view, from the API server without the webhook, of the example agent.
    let dir = repo_root().join("examples/agent");
    let dry_run = || -> Result<Value> {
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
            .args(case.flags)
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
        serde_json::from_slice(&out.stdout).with_context(|| {
            format!(
                "deploy -o json printed:\n{}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    };
    let mut list = dry_run()?;
    if let Some(tag) = case.dependency_image {
        // The instance as deploy writes it, with the image the broker answered recorded on it,
        // in both namespaces; deploy then reads it as the webhook does.
        let item = list["items"]
            .as_array()
            .and_then(|i| i.iter().find(|i| i["kind"] == "ConfigMap"))
            .cloned()
            .context("no ConfigMap in deploy's output")?;
        let mut cm: k8s_openapi::api::core::v1::ConfigMap = serde_json::from_value(item)?;
        cm.metadata.resource_version = None;
        cm.metadata.uid = None;
        cm.metadata.creation_timestamp = None;
        cm.metadata.managed_fields = None;
        cm.metadata
            .annotations
            .get_or_insert_with(Default::default)
            .insert(
                jockey_core::names::ANNOTATION_IMAGE.to_string(),
                format!("{REGISTRY}/hosting/{p}:{tag}"),
            );
        for n in [&ns.name, &plain.name] {
            cm.metadata.namespace = Some(n.to_string());
            kube::Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(client.clone(), n)
                .create(&Default::default(), &cm)
                .await?;
        }
        list = dry_run()?;
    }
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
    let mut manifest = minimal_manifest(&p, &hash);
    if let Some(r) = case.manifest_replicas {
        manifest = manifest.replacen(
            "spec:\n  selector:",
            &format!("spec:\n  replicas: {r}\n  selector:"),
            1,
        );
    }
    if let Some(res) = case.manifest_resources {
        manifest = manifest.replacen(
            "        image: jockey:auto\n",
            &format!("        image: jockey:auto\n{res}"),
            1,
        );
    }
    let (ok, out) = apply(&ns.name, &manifest)?;
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
    let (r, rc, rm, lc, lm) = case.expected;
    let want = (
        r,
        rc.to_string(),
        rm.to_string(),
        lc.to_string(),
        lm.to_string(),
    );
    let stored = get_json(&ns.name, "deployment", &p)?.context("Deployment not stored")?;
    assert_eq!(
        settings(&stored),
        want,
        "{}: kubectl apply + webhook",
        case.tag
    );
    assert_eq!(
        settings(&by_kind("Deployment")?),
        want,
        "{}: deploy",
        case.tag
    );
    if let Some(tag) = case.dependency_image {
        let pod = &stored["spec"]["template"]["spec"];
        assert_eq!(
            pod["containers"][0]["image"],
            format!("{REGISTRY}/hosting/{p}:{tag}"),
            "{pod}"
        );
        // The agent's own command unpacks the instance (no init container), then runs the
        // template's CMD; a failed unpack reaches the rollout as the log's tail.
        assert!(pod.get("initContainers").is_none(), "{pod}");
        let agent = &pod["containers"][0];
        assert_eq!(
            agent["command"],
            serde_json::json!(["python", "-c", jockey_core::defaults::UNPACK_AND_EXEC]),
            "{pod}"
        );
        assert_eq!(agent["args"], serde_json::json!(["python", "server.py"]));
        assert_eq!(agent["terminationMessagePolicy"], "FallbackToLogsOnError");
    }
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
