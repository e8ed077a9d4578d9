//! The local control plane is real enough for jockey: KWOK makes pods Ready and Jobs complete,
//! and the real kube-apiserver calls an admission webhook registered by URL and stores its patch.

use anyhow::Result;
use jockey_e2e::{TestNamespace, client, kubectl, tls, wait_for};
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

#[tokio::test]
async fn server_reports_v1_37_2() -> Result<()> {
    let out = kubectl(&["version", "-o", "json"])?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(v["serverVersion"]["gitVersion"], "v1.37.2", "{v}");
    assert_eq!(v["clientVersion"]["gitVersion"], "v1.37.2", "{v}");
    Ok(())
}

#[tokio::test]
async fn deployment_pod_becomes_ready_through_kwok() -> Result<()> {
    let client = client().await?;
    let ns = TestNamespace::create(&client, "smoke-deploy").await?;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns.name);
    let d: Deployment = serde_json::from_value(json!({
        "metadata": { "name": "web" },
        "spec": {
            "replicas": 2,
            "selector": { "matchLabels": { "app": "web" } },
            "template": {
                "metadata": { "labels": { "app": "web" } },
                "spec": { "containers": [{ "name": "web", "image": "registry.local/web:1" }] }
            }
        }
    }))?;
    deployments.create(&PostParams::default(), &d).await?;
    wait_for(
        "deployment web to be Available with 2 ready replicas",
        Duration::from_secs(90),
        || {
            let deployments = deployments.clone();
            async move {
                let d = deployments.get("web").await?;
                let ready = d
                    .status
                    .as_ref()
                    .and_then(|s| s.ready_replicas)
                    .unwrap_or(0);
                Ok((ready == 2).then_some(()))
            }
        },
    )
    .await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns.name);
    let list = pods.list(&ListParams::default().labels("app=web")).await?;
    assert_eq!(list.items.len(), 2);
    for pod in &list.items {
        let status = pod.status.as_ref().expect("pod status");
        assert_eq!(
            status.phase.as_deref(),
            Some("Running"),
            "{}",
            pod.name_any()
        );
        let ready = status
            .conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        assert!(ready, "pod {} is not Ready", pod.name_any());
        assert!(
            pod.spec
                .as_ref()
                .and_then(|s| s.node_name.as_deref())
                .is_some_and(|n| n.starts_with("kwok-node-")),
            "pod {} was not scheduled onto a KWOK node",
            pod.name_any()
        );
    }
    ns.cleanup().await
}

#[tokio::test]
async fn job_runs_to_completion_through_kwok() -> Result<()> {
    let client = client().await?;
    let ns = TestNamespace::create(&client, "smoke-job").await?;
    let jobs: Api<Job> = Api::namespaced(client.clone(), &ns.name);
    let job: Job = serde_json::from_value(json!({
        "metadata": { "name": "once" },
        "spec": {
            "backoffLimit": 0,
            "template": { "spec": {
                "restartPolicy": "Never",
                "containers": [{ "name": "once", "image": "registry.local/once:1" }]
            }}
        }
    }))?;
    jobs.create(&PostParams::default(), &job).await?;
    wait_for("job once to complete", Duration::from_secs(90), || {
        let jobs = jobs.clone();
        async move {
            let j = jobs.get("once").await?;
            let status = j.status.unwrap_or_default();
            let complete = status
                .conditions
                .iter()
                .flatten()
                .any(|c| c.type_ == "Complete" && c.status == "True");
            Ok((complete && status.succeeded == Some(1)).then_some(()))
        }
    })
    .await?;
    ns.cleanup().await
}

#[tokio::test]
async fn apiserver_calls_url_webhook_and_stores_its_patch() -> Result<()> {
    let client = client().await?;
    let ns = TestNamespace::create(&client, "smoke-webhook").await?;
    let pki = tls::Pki::for_localhost()?;
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    let (addr, server) = tls::serve_json(&pki, move |review| {
        seen.fetch_add(1, Ordering::SeqCst);
        let uid = review["request"]["uid"].clone();
        let patch = json!([
            { "op": "add", "path": "/metadata/labels", "value": { "mutated-by": "e2e-webhook" } },
            { "op": "add", "path": "/data/added", "value": "by the webhook" }
        ]);
        use base64::Engine;
        let patch = base64::engine::general_purpose::STANDARD.encode(patch.to_string());
        json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "response": { "uid": uid, "allowed": true, "patchType": "JSONPatch", "patch": patch }
        })
    })
    .await?;

    let name = format!("smoke-{}", ns.name);
    let webhooks: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
    let config: MutatingWebhookConfiguration = serde_json::from_value(json!({
        "metadata": { "name": name },
        "webhooks": [{
            "name": "smoke.e2e.jockey.agentops.ai",
            "clientConfig": { "url": format!("https://{addr}/mutate"), "caBundle": pki.ca_bundle() },
            "rules": [{ "apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["configmaps"] }],
            // Only this test's namespace: a webhook left behind must never break other tests.
            "namespaceSelector": { "matchLabels": { "kubernetes.io/metadata.name": ns.name } },
            "objectSelector": { "matchLabels": { "e2e-mutate": "yes" } },
            "sideEffects": "None",
            "admissionReviewVersions": ["v1"],
            "failurePolicy": "Fail",
            "timeoutSeconds": 5
        }]
    }))?;
    webhooks.create(&PostParams::default(), &config).await?;

    // The apiserver picks up new webhook configurations from an informer; retry until it calls.
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns.name);
    let stored = wait_for(
        "the apiserver to call the webhook",
        Duration::from_secs(30),
        || {
            let configmaps = configmaps.clone();
            let calls = calls.clone();
            async move {
                let attempt = calls.load(Ordering::SeqCst);
                let cm: ConfigMap = serde_json::from_value(json!({
                    "metadata": { "generateName": "probe-", "labels": { "e2e-mutate": "yes" } },
                    "data": { "original": "yes" }
                }))?;
                let created = configmaps.create(&PostParams::default(), &cm).await?;
                let stored = configmaps.get(&created.name_any()).await?;
                let mutated = stored.labels().get("mutated-by").is_some();
                Ok((mutated || calls.load(Ordering::SeqCst) > attempt).then_some(stored))
            }
        },
    )
    .await?;

    assert!(calls.load(Ordering::SeqCst) >= 1);
    // The patch replaced the labels map, so the selector label is gone and the webhook's is there.
    assert_eq!(
        stored.labels().get("mutated-by").map(String::as_str),
        Some("e2e-webhook")
    );
    let data = stored.data.clone().unwrap_or_default();
    assert_eq!(
        data.get("added").map(String::as_str),
        Some("by the webhook")
    );
    assert_eq!(data.get("original").map(String::as_str), Some("yes"));

    webhooks.delete(&name, &DeleteParams::default()).await?;
    server.abort();
    ns.cleanup().await
}
