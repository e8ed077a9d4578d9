//! "Deletes carry the object's uid as a precondition, so an object replaced meanwhile is not
//! deleted in its place": the project's Service is replaced by another one carrying the project's
//! label (what a concurrent deploy would make) between `delete`'s read and its delete. The
//! replacement happens inside the delete: a validating webhook of the test's own holds the
//! plugin's DELETE of the Service (the API server calls it with the object it is about to
//! delete) until the test has deleted the Service and created the new one; the API server then
//! tries the delete again on the object it finds, and only the uid precondition stops it there.

mod deploy_support;

use anyhow::{Context, Result, bail, ensure};
use deploy_support::{Env, example_copy};
use jockey_core::names::LABEL_PROJECT;
use jockey_e2e::{client, tls, wait_for};
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Service;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::{Notify, mpsc};

/// The label that puts a Service under the test's webhook.
const HELD: &str = "e2e.jockey.agentops.ai/hold-delete";

fn allow(review: &Value) -> Value {
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": { "uid": review["request"]["uid"].clone(), "allowed": true }
    })
}

fn service(name: &str, project: &str) -> Result<Service> {
    Ok(serde_json::from_value(json!({
        "metadata": { "name": name, "labels": { LABEL_PROJECT: project, HELD: "yes" } },
        "spec": { "selector": { "app": project }, "ports": [{ "port": 80, "targetPort": 8080 }] }
    }))?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn delete_leaves_a_service_replaced_between_its_read_and_its_delete() -> Result<()> {
    let client = client().await?;
    let env = Env::new(&client, "del-replaced").await?;
    let ns = env.ns.name.clone();
    let project = "replaced";
    let svc_name = format!("svc-{project}");
    let dir = example_copy("del-replaced")?;
    env.deploy_version(dir.path(), project, 1)?;
    let services: Api<Service> = Api::namespaced(client.clone(), &ns);
    services
        .patch(
            &svc_name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {HELD: "yes"}}})),
        )
        .await?;

    // The webhook: the plugin's DELETE (foreground, as `delete` sends it) is held once, until
    // the test says; every other review is allowed at once.
    let pki = tls::Pki::for_localhost()?;
    let calls = Arc::new(AtomicUsize::new(0));
    let holding = Arc::new(AtomicBool::new(false));
    let release = Arc::new(Notify::new());
    let (held_tx, mut held_rx) = mpsc::unbounded_channel::<String>();
    let (addr, server) = {
        let (calls, holding, release) = (calls.clone(), holding.clone(), release.clone());
        tls::serve_json_async(&pki, move |review: Value| {
            let (calls, holding, release, held_tx) = (
                calls.clone(),
                holding.clone(),
                release.clone(),
                held_tx.clone(),
            );
            async move {
                calls.fetch_add(1, Ordering::SeqCst);
                let request = &review["request"];
                let foreground = request["options"]["propagationPolicy"] == "Foreground";
                if request["operation"] == "DELETE"
                    && foreground
                    && !holding.swap(true, Ordering::SeqCst)
                {
                    let uid = request["oldObject"]["metadata"]["uid"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string();
                    let released = release.notified();
                    let _ = held_tx.send(uid);
                    // Under the webhook's 30 s timeout.
                    let _ = tokio::time::timeout(Duration::from_secs(20), released).await;
                }
                allow(&review)
            }
        })
        .await?
    };
    let name = format!("e2e-hold-delete-{ns}");
    let configs: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    let config: ValidatingWebhookConfiguration = serde_json::from_value(json!({
        "metadata": { "name": name },
        "webhooks": [{
            "name": "hold-delete.e2e.jockey.agentops.ai",
            "clientConfig": { "url": format!("https://{addr}/validate"), "caBundle": pki.ca_bundle() },
            "rules": [{ "apiGroups": [""], "apiVersions": ["v1"], "operations": ["DELETE"],
                        "resources": ["services"] }],
            "namespaceSelector": { "matchLabels": { "kubernetes.io/metadata.name": ns } },
            "objectSelector": { "matchLabels": { HELD: "yes" } },
            "sideEffects": "None",
            "admissionReviewVersions": ["v1"],
            "failurePolicy": "Fail",
            "timeoutSeconds": 30
        }]
    }))?;
    configs.create(&PostParams::default(), &config).await?;
    // The API server picks the configuration up from an informer: probe with server dry-run
    // deletes of a throwaway Service until the webhook is called.
    services
        .create(&PostParams::default(), &service("probe", "probe")?)
        .await?;
    wait_for(
        "the API server to call the test's webhook",
        Duration::from_secs(30),
        || {
            let (services, calls) = (services.clone(), calls.clone());
            async move {
                let before = calls.load(Ordering::SeqCst);
                services
                    .delete("probe", &DeleteParams::default().dry_run())
                    .await?;
                Ok((calls.load(Ordering::SeqCst) > before).then_some(()))
            }
        },
    )
    .await?;

    // `delete` in the background; the test acts once its DELETE of the Service is held.
    let original = services.get(&svc_name).await?;
    let args: Vec<String> = ["delete", project, "--timeout", "60s", "-n", &ns]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let builder = env.builder.name.clone();
    let run = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        deploy_support::jockey(&args, &builder, &[])
    });
    let held_uid = tokio::time::timeout(Duration::from_secs(90), held_rx.recv())
        .await
        .context("the plugin's DELETE of the Service never reached the webhook")?
        .context("the webhook stopped")?;
    ensure!(
        Some(held_uid.as_str()) == original.metadata.uid.as_deref(),
        "held the delete of {held_uid}, not of the Service the plugin read ({:?})",
        original.metadata.uid
    );
    // The replacement: the Service goes (at once: background, no finalizers) and another with
    // the project's label takes its name.
    services
        .delete(&svc_name, &DeleteParams::background())
        .await?;
    wait_for("the Service to be gone", Duration::from_secs(30), || {
        let (services, name) = (services.clone(), svc_name.clone());
        async move { Ok(services.get_opt(&name).await?.is_none().then_some(())) }
    })
    .await?;
    let replacement = services
        .create(&PostParams::default(), &service(&svc_name, project)?)
        .await?;
    release.notify_one();

    let run = run.await??;
    let after = services.get_opt(&svc_name).await?;
    configs.delete(&name, &DeleteParams::default()).await?;
    server.abort();
    let Some(after) = after else {
        bail!(
            "the replacement Service {svc_name} was deleted by `delete`:\n{}",
            run.all()
        );
    };
    ensure!(
        after.metadata.uid == replacement.metadata.uid
            && after.metadata.deletion_timestamp.is_none(),
        "the replacement {:?} is being deleted or was replaced: {:?}\n{}",
        replacement.metadata.uid,
        after.metadata,
        run.all()
    );
    ensure!(
        after.labels().get(LABEL_PROJECT).map(String::as_str) == Some(project),
        "{:?}",
        after.labels()
    );
    // The plugin says so and fails: it could not do what it says.
    ensure!(!run.ok, "delete succeeded:\n{}", run.all());
    ensure!(
        run.stderr.contains(&format!(
            "service {ns}/{svc_name} was replaced while being deleted"
        )),
        "{}",
        run.all()
    );
    env.cleanup().await
}
