//! `delete`, `rollback` and `gc` act only on objects labelled `jockey.agentops.ai/project:
//! PROJECT`: a Deployment `api`, Service `svc-api`, Ingress `ing-api` or ConfigMap
//! `instance-<h>` that someone made by hand survives them unchanged (same resourceVersion), and
//! each command names what it left alone. And `delete` removes the Ingress first: while the
//! Ingress still exists, its Service and Deployment are untouched.

mod deploy_support;

use anyhow::{Context, Result};
use deploy_support::{Env, example_copy, jockey_command};
use jockey_core::names::LABEL_PROJECT;
use jockey_e2e::{client, wait_for};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use serde_json::json;
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::time::Duration;

/// An instance-shaped name no deploy in these tests produces.
const FOREIGN_INSTANCE: &str = "instance-0123456789abcdef";

async fn create<K>(client: &Client, ns: &str, value: serde_json::Value) -> Result<K>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + serde::Serialize
        + Debug,
{
    let obj: K = serde_json::from_value(value)?;
    Api::<K>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &obj)
        .await
        .with_context(|| format!("creating {} in {ns}", K::kind(&())))
}

/// Someone's own Deployment named like project `name`, without jockey's label.
fn foreign_deployment(name: &str) -> serde_json::Value {
    json!({
        "metadata": {"name": name, "labels": {"team": "someone-else"}},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "web", "image": "registry.local:5000/theirs:1"}]}
            }
        }
    })
}

fn foreign_service(name: &str, app: &str) -> serde_json::Value {
    json!({
        "metadata": {"name": name},
        "spec": {"selector": {"app": app}, "ports": [{"port": 80, "targetPort": 8080}]}
    })
}

fn foreign_ingress(name: &str, service: &str) -> serde_json::Value {
    json!({
        "metadata": {"name": name},
        "spec": {"rules": [{"host": "theirs.example.com", "http": {"paths": [{
            "path": "/", "pathType": "Prefix",
            "backend": {"service": {"name": service, "port": {"number": 80}}}
        }]}}]}
    })
}

/// Waits until the deployment controller has had its last word on `name` (generation observed,
/// Available, Progressing with NewReplicaSetAvailable) and a second passed without a write, so
/// that a later change of its resourceVersion can only come from the command under test.
async fn settled(client: &Client, ns: &str, name: &str) -> Result<()> {
    let api = Api::<Deployment>::namespaced(client.clone(), ns);
    let mut last = String::new();
    for _ in 0..120 {
        let d = api.get(name).await?;
        let st = d.status.clone().unwrap_or_default();
        let cond = |t: &str| {
            st.conditions
                .iter()
                .flatten()
                .find(|c| c.type_.as_deref() == Some(t))
                .cloned()
        };
        let done = st.observed_generation == d.metadata.generation
            && cond("Available").is_some_and(|c| c.status.as_deref() == Some("True"))
            && cond("Progressing")
                .is_some_and(|c| c.reason.as_deref() == Some("NewReplicaSetAvailable"));
        let rv = d.metadata.resource_version.unwrap_or_default();
        if done && rv == last {
            return Ok(());
        }
        last = if done { rv } else { String::new() };
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    anyhow::bail!("Deployment {ns}/{name} did not settle within 120 s")
}

/// `kind/name -> resourceVersion` of the given objects, read from the API server.
async fn versions(
    client: &Client,
    ns: &str,
    names: &[(&str, &str)],
) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for (kind, name) in names {
        let rv = match *kind {
            "deployment" => {
                Api::<Deployment>::namespaced(client.clone(), ns)
                    .get(name)
                    .await?
                    .metadata
                    .resource_version
            }
            "service" => {
                Api::<Service>::namespaced(client.clone(), ns)
                    .get(name)
                    .await?
                    .metadata
                    .resource_version
            }
            "ingress" => {
                Api::<Ingress>::namespaced(client.clone(), ns)
                    .get(name)
                    .await?
                    .metadata
                    .resource_version
            }
            "configmap" => {
                Api::<ConfigMap>::namespaced(client.clone(), ns)
                    .get(name)
                    .await?
                    .metadata
                    .resource_version
            }
            other => anyhow::bail!("unknown kind {other}"),
        };
        out.insert(format!("{kind}/{name}"), rv.unwrap_or_default());
    }
    Ok(out)
}

#[tokio::test]
async fn delete_rollback_and_gc_leave_unlabelled_same_named_objects_alone() -> Result<()> {
    let client = client().await?;
    let env = Env::new(&client, "foreign").await?;
    let ns = env.ns.name.clone();
    let dir = example_copy("foreign")?;

    // Project `api` was deployed twice (so rollback has an instance to go to, with its image),
    // then its Deployment, Service and Ingress were replaced by someone else's of the same
    // names: the instance ConfigMaps are jockey's, the rest is not.
    env.deploy_version(dir.path(), "api", 1)?;
    env.deploy_version(dir.path(), "api", 2)?;
    let propagation = DeleteParams::foreground();
    Api::<Ingress>::namespaced(client.clone(), &ns)
        .delete("ing-api", &propagation)
        .await?;
    Api::<Service>::namespaced(client.clone(), &ns)
        .delete("svc-api", &propagation)
        .await?;
    Api::<Deployment>::namespaced(client.clone(), &ns)
        .delete("api", &propagation)
        .await?;
    wait_for(
        "project api's Deployment to be gone",
        Duration::from_secs(60),
        || {
            let api = Api::<Deployment>::namespaced(client.clone(), &ns);
            async move { Ok(api.get_opt("api").await?.is_none().then_some(())) }
        },
    )
    .await?;
    create::<Deployment>(&client, &ns, foreign_deployment("api")).await?;
    create::<Service>(&client, &ns, foreign_service("svc-api", "api")).await?;
    create::<Ingress>(&client, &ns, foreign_ingress("ing-api", "svc-api")).await?;
    create::<ConfigMap>(
        &client,
        &ns,
        json!({"metadata": {"name": FOREIGN_INSTANCE}, "data": {"theirs": "1"}}),
    )
    .await?;
    let foreign = [
        ("deployment", "api"),
        ("service", "svc-api"),
        ("ingress", "ing-api"),
        ("configmap", FOREIGN_INSTANCE),
    ];
    settled(&client, &ns, "api").await?;
    let before = versions(&client, &ns, &foreign).await?;

    // rollback: refuses to re-point someone else's Deployment, and says why.
    let run = env.jockey(&["rollback", "api", "--timeout", "30s"])?;
    assert!(!run.ok, "rollback must refuse: {}", run.all());
    assert!(
        run.all().contains("deployment.apps/api left alone")
            && run.all().contains("no jockey.agentops.ai/project label"),
        "{}",
        run.all()
    );
    assert_eq!(versions(&client, &ns, &foreign).await?, before, "rollback");

    // gc: collects jockey's unreferenced instances, never the unlabelled look-alike.
    let run = env.jockey(&["gc", "--keep", "0", "--min-age", "0s"])?;
    assert!(run.ok, "{}", run.all());
    assert!(
        run.stdout
            .contains(&format!("configmap/{FOREIGN_INSTANCE} left alone")),
        "{}",
        run.all()
    );
    assert_eq!(versions(&client, &ns, &foreign).await?, before, "gc");

    // delete: removes what is left of jockey's (nothing here: gc took the instances) and none
    // of the rest; with nothing of jockey's to delete it fails, naming what it left alone.
    let run = env.jockey(&["delete", "api", "--timeout", "30s"])?;
    assert!(!run.ok, "{}", run.all());
    for object in [
        "ingress.networking.k8s.io/ing-api left alone",
        "service/svc-api left alone",
        "deployment.apps/api left alone",
    ] {
        assert!(run.all().contains(object), "{object}: {}", run.all());
    }
    assert!(run.stderr.contains("nothing of jockey's"), "{}", run.all());
    assert_eq!(versions(&client, &ns, &foreign).await?, before, "delete");
    env.cleanup().await
}

#[tokio::test]
async fn delete_removes_the_projects_objects_and_leaves_a_replaced_service_alone() -> Result<()> {
    let client = client().await?;
    let env = Env::new(&client, "foreign-mixed").await?;
    let ns = env.ns.name.clone();
    let dir = example_copy("foreign-mixed")?;
    env.deploy_version(dir.path(), "mixed", 1)?;
    // Someone replaced the project's Service with their own.
    let services = Api::<Service>::namespaced(client.clone(), &ns);
    services
        .delete("svc-mixed", &DeleteParams::default())
        .await?;
    wait_for("svc-mixed to be gone", Duration::from_secs(30), || {
        let services = services.clone();
        async move { Ok(services.get_opt("svc-mixed").await?.is_none().then_some(())) }
    })
    .await?;
    create::<Service>(&client, &ns, foreign_service("svc-mixed", "theirs")).await?;
    let before = versions(&client, &ns, &[("service", "svc-mixed")]).await?;

    let run = env.jockey(&["delete", "mixed", "--timeout", "60s"])?;
    assert!(run.ok, "{}", run.all());
    assert!(
        run.stdout.contains("service/svc-mixed left alone"),
        "{}",
        run.all()
    );
    for gone in [
        "ingress.networking.k8s.io/ing-mixed deleted",
        "deployment.apps/mixed deleted",
    ] {
        assert!(run.stdout.contains(gone), "{gone}: {}", run.all());
    }
    assert!(
        Api::<Deployment>::namespaced(client.clone(), &ns)
            .get_opt("mixed")
            .await?
            .is_none()
    );
    assert!(
        Api::<Ingress>::namespaced(client.clone(), &ns)
            .get_opt("ing-mixed")
            .await?
            .is_none()
    );
    assert_eq!(
        versions(&client, &ns, &[("service", "svc-mixed")]).await?,
        before
    );
    env.cleanup().await
}

const HOLD: &str = "e2e.jockey.agentops.ai/hold";

async fn set_finalizers<K>(api: &Api<K>, name: &str, finalizers: &[&str]) -> Result<()>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": finalizers}})),
    )
    .await
    .with_context(|| format!("setting the finalizers of {name}"))?;
    Ok(())
}

/// Releases the test's finalizers whatever happens, so a failed run cannot leave its namespace
/// stuck in Terminating.
struct Release(String);

impl Drop for Release {
    fn drop(&mut self) {
        for object in ["ingress/ing-ordered", "service/svc-ordered"] {
            let _ = jockey_e2e::kubectl(&[
                "-n",
                &self.0,
                "patch",
                object,
                "--type=merge",
                "-p",
                r#"{"metadata":{"finalizers":[]}}"#,
            ]);
        }
    }
}

fn terminating<K: Resource>(obj: &Option<K>) -> bool {
    obj.as_ref()
        .is_some_and(|o| o.meta().deletion_timestamp.is_some())
}

#[tokio::test]
async fn delete_takes_the_ingress_down_before_its_backend() -> Result<()> {
    let client = client().await?;
    let env = Env::new(&client, "delete-order").await?;
    let ns = env.ns.name.clone();
    let dir = example_copy("delete-order")?;
    env.deploy_version(dir.path(), "ordered", 1)?;
    let ingresses = Api::<Ingress>::namespaced(client.clone(), &ns);
    let services = Api::<Service>::namespaced(client.clone(), &ns);
    let deployments = Api::<Deployment>::namespaced(client.clone(), &ns);
    // The finalizers stand in for the load balancer controller removing the host's rules (the
    // Ingress) and keep the Service visible once its deletion starts.
    let _release = Release(ns.clone());
    set_finalizers(&ingresses, "ing-ordered", &[HOLD]).await?;
    set_finalizers(&services, "svc-ordered", &[HOLD]).await?;

    let mut cmd = jockey_command(
        &["delete", "ordered", "-n", &ns, "--timeout", "120s"],
        &env.builder.name,
        &[],
    )?;
    let child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;

    wait_for(
        "the Ingress to be terminating",
        Duration::from_secs(60),
        || {
            let ingresses = ingresses.clone();
            async move { Ok(terminating(&ingresses.get_opt("ing-ordered").await?).then_some(())) }
        },
    )
    .await?;
    // While the Ingress still routes, its backend is whole.
    let service = services.get_opt("svc-ordered").await?;
    assert!(
        service.is_some() && !terminating(&service),
        "the Service was deleted while its Ingress still existed"
    );
    let deployment = deployments.get_opt("ordered").await?;
    assert!(
        deployment.is_some() && !terminating(&deployment),
        "the Deployment was deleted while its Ingress still existed"
    );

    // The Ingress goes (the controller would have removed the rules): now the backend follows.
    set_finalizers(&ingresses, "ing-ordered", &[]).await?;
    wait_for(
        "the Service to be terminating",
        Duration::from_secs(60),
        || {
            let services = services.clone();
            async move { Ok(terminating(&services.get_opt("svc-ordered").await?).then_some(())) }
        },
    )
    .await?;
    set_finalizers(&services, "svc-ordered", &[]).await?;
    let out = tokio::task::spawn_blocking(move || child.wait_with_output()).await??;
    let all = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{all}");
    let order: Vec<usize> = [
        "ingress.networking.k8s.io/ing-ordered deleted",
        "service/svc-ordered deleted",
        "deployment.apps/ordered deleted",
    ]
    .iter()
    .map(|line| all.find(line).unwrap_or(usize::MAX))
    .collect();
    assert!(
        order[0] < order[1] && order[1] < order[2] && order[2] < usize::MAX,
        "{all}"
    );
    assert!(
        Api::<ConfigMap>::namespaced(client.clone(), &ns)
            .list(&kube::api::ListParams::default().labels(&format!("{LABEL_PROJECT}=ordered")))
            .await?
            .items
            .is_empty()
    );
    env.cleanup().await
}
