//! `kubectl jockey deploy examples/agent` on the local control plane: the Kaniko Job is created
//! with the right destination and completes (KWOK), the Deployment becomes Available, the URL is
//! printed and the exit status is 0; an immediate second deploy changes no resourceVersion;
//! changing one file creates one new ConfigMap and rolls the Deployment; `--dry-run=server`
//! writes nothing.

mod deploy_support;

use anyhow::Result;
use deploy_support::{Env, configmaps, example_copy, resource_versions};
use jockey_core::names::{ANNOTATION_IMAGE, ANNOTATION_INSTANCE, LABEL_PROJECT};
use jockey_e2e::{client, repo_root};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::ListParams;

const PROJECT: &str = "demo-agent";

fn instance_of(dep: &Deployment) -> String {
    dep.metadata.annotations.clone().unwrap_or_default()[ANNOTATION_INSTANCE].clone()
}

#[tokio::test]
async fn deploy_builds_applies_rolls_out_and_an_unchanged_redeploy_writes_nothing() -> Result<()> {
    let client = client().await?;
    let env = Env::new(&client, "deploy-agent").await?;
    let ns = env.ns.name.clone();
    let example = repo_root().join("examples/agent");
    let example = example.to_string_lossy();

    let run = env.jockey(&[
        "deploy",
        &example,
        "--project",
        PROJECT,
        "--timeout",
        "120s",
    ])?;
    assert!(run.ok, "deploy failed: {}", run.all());
    assert!(
        run.stdout
            .contains(&format!("URL: https://{PROJECT}.deploy.agentops.ai")),
        "{}",
        run.all()
    );

    // The build: one Job in the builder namespace, pushing to the project's repository with the
    // dependency tag, completed.
    let jobs = Api::<Job>::namespaced(client.clone(), &env.builder.name)
        .list(&ListParams::default().labels(&format!("{LABEL_PROJECT}={PROJECT}")))
        .await?
        .items;
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let dep = deployments.get(PROJECT).await?;
    let instance = instance_of(&dep);
    let hash = instance.trim_start_matches("instance-").to_string();
    let args = jobs[0]
        .spec
        .clone()
        .unwrap()
        .template
        .spec
        .unwrap()
        .containers[0]
        .args
        .clone()
        .unwrap();
    // The built-in template: the image holds the dependencies and is named by them (`d-...`);
    // the files come from the instance at pod start.
    let image = dep.spec.template.spec.clone().unwrap().containers[0]
        .image
        .clone()
        .unwrap_or_default();
    let (repo, tag) = image.rsplit_once(':').unwrap_or_default();
    assert_eq!(repo, format!("registry.local:5000/hosting/{PROJECT}"));
    assert!(jockey_core::image::is_dependency_tag(tag), "{image}");
    assert_eq!(hash.len(), 16, "{instance}");
    assert!(args.contains(&format!("--destination={image}")), "{args:?}");
    let job_status = jobs[0].status.clone().unwrap_or_default();
    assert!(job_status.succeeded.unwrap_or(0) >= 1, "{job_status:?}");

    // The Deployment is Available and runs the built image; the ConfigMap recorded it.
    let available = dep
        .status
        .clone()
        .unwrap_or_default()
        .conditions
        .unwrap_or_default()
        .iter()
        .any(|c| c.type_.as_deref() == Some("Available") && c.status.as_deref() == Some("True"));
    assert!(available, "{:?}", dep.status);
    let containers = dep.spec.template.spec.clone().unwrap().containers;
    assert_eq!(containers[0].image.as_deref(), Some(image.as_str()));
    let cm = Api::<ConfigMap>::namespaced(client.clone(), &ns)
        .get(&instance)
        .await?;
    assert_eq!(cm.immutable, Some(true));
    assert_eq!(
        cm.metadata.annotations.clone().unwrap_or_default()[ANNOTATION_IMAGE],
        image
    );

    // An immediate second deploy: nothing written, and it says so.
    let before = resource_versions(&client, &ns, &env.builder.name).await?;
    let again = env.jockey(&[
        "deploy",
        &example,
        "--project",
        PROJECT,
        "--timeout",
        "120s",
    ])?;
    assert!(again.ok, "{}", again.all());
    assert!(again.stderr.contains("nothing changed"), "{}", again.all());
    assert!(
        again.stderr.contains("skipping the build"),
        "{}",
        again.all()
    );
    let after = resource_versions(&client, &ns, &env.builder.name).await?;
    assert_eq!(
        before, after,
        "an unchanged redeploy must not write anything"
    );

    // `setup-builder` again is idempotent: it succeeds and changes nothing.
    let setup = deploy_support::jockey(
        &["setup-builder", "-n", &env.builder.name],
        &env.builder.name,
        &[],
    )?;
    assert!(setup.ok, "{}", setup.all());
    assert_eq!(
        after,
        resource_versions(&client, &ns, &env.builder.name).await?
    );

    // One changed file: one new ConfigMap, the Deployment rolls to it. A secret-looking file in
    // the directory is left out and listed.
    let changed = example_copy("agent-changed")?;
    std::fs::write(
        changed.path().join("providers/echo.py"),
        "NAME = \"echo\"\n\n\ndef run(text: str) -> str:\n    return text + \"!\"\n",
    )?;
    std::fs::write(changed.path().join(".env"), "OPENAI_API_KEY=sk-test\n")?;
    let dir = changed.path().to_string_lossy().to_string();

    // --dry-run=server first: the API server is asked, nothing is written.
    let before = resource_versions(&client, &ns, &env.builder.name).await?;
    let dry = env.jockey(&["deploy", &dir, "--project", PROJECT, "--dry-run=server"])?;
    assert!(dry.ok, "{}", dry.all());
    assert!(dry.stderr.contains("server dry run"), "{}", dry.all());
    assert_eq!(
        before,
        resource_versions(&client, &ns, &env.builder.name).await?,
        "--dry-run=server must write nothing"
    );

    let cms_before = configmaps(&client, &ns).await?;
    let run = env.jockey(&["deploy", &dir, "--project", PROJECT, "--timeout", "120s"])?;
    assert!(run.ok, "{}", run.all());
    // Listed as left out, with the exact commands that pass its values as secrets instead.
    let env_file = changed.path().join(".env");
    let env_file = env_file.to_string_lossy();
    for line in [
        "left out 1 secret-looking path(s), never packaged: .env ".to_string(),
        format!("{env_file} was left out of the instance"),
        format!(
            "  kubectl jockey deploy {dir} --project {PROJECT} -n {ns} --secret-env-file {env_file}\n"
        ),
        format!("  kubectl jockey secrets set {PROJECT} -n {ns} --from-env-file {env_file}"),
    ] {
        assert!(
            run.stderr.contains(&line),
            "{line:?} is not in what deploy printed:\n{}",
            run.all()
        );
    }
    let cms_after = configmaps(&client, &ns).await?;
    assert_eq!(
        cms_after.len(),
        cms_before.len() + 1,
        "{cms_before:?} -> {cms_after:?}"
    );
    let rolled = deployments.get(PROJECT).await?;
    let new_instance = instance_of(&rolled);
    assert_ne!(new_instance, instance);
    assert!(cms_after.contains(&new_instance));
    assert!(rolled.metadata.generation > dep.metadata.generation);
    // The secret never reached the cluster.
    let new_cm = Api::<ConfigMap>::namespaced(client.clone(), &ns)
        .get(&new_instance)
        .await?;
    let gz = &new_cm.binary_data.unwrap()["instance.tar.gz"].0;
    let tar = gunzip(gz)?;
    assert!(String::from_utf8_lossy(&tar).contains("return text + \"!\""));
    assert!(!String::from_utf8_lossy(&tar).contains("sk-test"));

    // `status` names the instance that runs (its address, which only a load balancer
    // controller gives, is shown against the real one in alb_controller.rs).
    let status = env.jockey(&["status", PROJECT, "-o", "json"])?;
    assert!(status.ok, "{}", status.all());
    let st: serde_json::Value = serde_json::from_str(&status.stdout)?;
    assert_eq!(st["instance"], new_instance);

    env.cleanup().await
}

/// `gzip -dc`: the tests crate has no gzip library, and the system tool is a fine oracle.
fn gunzip(gz: &[u8]) -> Result<Vec<u8>> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new("gzip")
        .arg("-dc")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .ok_or_else(|| anyhow::anyhow!("gzip stdin"))?
        .write_all(gz)?;
    let out = child.wait_with_output()?;
    anyhow::ensure!(out.status.success(), "gzip -dc failed");
    Ok(out.stdout)
}
