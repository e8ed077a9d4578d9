//! Every refusal of `deploy` exits non-zero with a message naming the file (or value) and the fix,
//! and leaves the cluster unchanged: no ConfigMap, Deployment or build Job appears.

mod deploy_support;

use anyhow::Result;
use deploy_support::{Env, Scratch, example_copy, resource_versions};
use jockey_e2e::client;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::PostParams;
use std::os::unix::ffi::OsStrExt;
use std::time::Duration;

/// Incompressible bytes, deterministically.
fn noise(n: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

struct Case {
    what: &'static str,
    dir: Scratch,
    project: &'static str,
    /// Every one of these must appear in the error output.
    expect: Vec<&'static str>,
}

fn cases() -> Result<Vec<Case>> {
    let mut out = Vec::new();

    let d = example_copy("refuse-symlink")?;
    std::os::unix::fs::symlink("/etc/hostname", d.path().join("providers/host.txt"))?;
    out.push(Case {
        what: "symlink leading outside DIR",
        dir: d,
        project: "refused",
        expect: vec![
            "providers/host.txt",
            "outside the project directory",
            ".jockeyignore",
        ],
    });

    let d = example_copy("refuse-fifo")?;
    let status = std::process::Command::new("mkfifo")
        .arg(d.path().join("agent.pipe"))
        .status()?;
    anyhow::ensure!(status.success(), "mkfifo failed");
    out.push(Case {
        what: "fifo",
        dir: d,
        project: "refused",
        expect: vec!["agent.pipe", "fifo", ".jockeyignore"],
    });

    let d = example_copy("refuse-utf8")?;
    std::fs::write(
        d.path()
            .join(std::ffi::OsStr::from_bytes(b"notes-\xff.txt")),
        "x",
    )?;
    out.push(Case {
        what: "path that is not UTF-8",
        dir: d,
        project: "refused",
        expect: vec!["notes-", "UTF-8", "rename it"],
    });

    let d = example_copy("refuse-large")?;
    std::fs::create_dir_all(d.path().join("models"))?;
    std::fs::write(d.path().join("models/weights.bin"), noise(1200 * 1024))?;
    out.push(Case {
        what: "bundle over the ConfigMap limit",
        dir: d,
        project: "refused",
        expect: vec!["models/weights.bin", "1 MiB", ".jockeyignore"],
    });

    out.push(Case {
        what: "empty directory",
        dir: Scratch::new("refuse-empty")?,
        project: "refused",
        expect: vec!["no files to package"],
    });

    out.push(Case {
        what: "invalid project",
        dir: example_copy("refuse-project")?,
        project: "Not_A_Label",
        expect: vec!["invalid project id", "DNS-1123"],
    });
    Ok(out)
}

#[tokio::test]
async fn each_refusal_names_file_and_fix_and_writes_nothing() -> Result<()> {
    let client = client().await?;
    let env = Env::new(&client, "deploy-refuse").await?;
    let before = resource_versions(&client, &env.ns.name, &env.builder.name).await?;
    let mut failures = Vec::new();
    for case in cases()? {
        let dir = case.dir.path().to_string_lossy().to_string();
        let run = env.jockey(&["deploy", &dir, "--project", case.project])?;
        if run.ok {
            failures.push(format!("{}: deploy succeeded: {}", case.what, run.all()));
            continue;
        }
        for e in &case.expect {
            if !run.stderr.contains(e) {
                failures.push(format!("{}: {e:?} missing from: {}", case.what, run.stderr));
            }
        }
    }
    // No registry configured: the image cannot be named, so nothing can be deployed.
    let example = example_copy("refuse-registry")?;
    let run = deploy_support::jockey(
        &[
            "deploy",
            &example.path().to_string_lossy(),
            "--project",
            "refused",
            "-n",
            &env.ns.name,
        ],
        &env.builder.name,
        &[("IMAGE_REGISTRY", "")],
    )?;
    if run.ok || !run.stderr.contains("IMAGE_REGISTRY") {
        failures.push(format!("missing IMAGE_REGISTRY: {}", run.all()));
    }
    let after = resource_versions(&client, &env.ns.name, &env.builder.name).await?;
    if before != after {
        failures.push(format!("the cluster changed: {before:?} -> {after:?}"));
    }

    // A hand-made ConfigMap squatting on the instance name is not mistaken for the files.
    let example = example_copy("refuse-squat")?;
    let name = deploy_support::dry_run_configmap_name(example.path(), "refused")?;
    let squat: ConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name}, "data": {"server.py": "print('not yours')"}
    }))?;
    Api::<ConfigMap>::namespaced(client.clone(), &env.ns.name)
        .create(&PostParams::default(), &squat)
        .await?;
    let before = resource_versions(&client, &env.ns.name, &env.builder.name).await?;
    let run = env.jockey(&[
        "deploy",
        &example.path().to_string_lossy(),
        "--project",
        "refused",
    ])?;
    if run.ok || !run.stderr.contains("does not hold these files") {
        failures.push(format!("squatted ConfigMap: {}", run.all()));
    }
    let after = resource_versions(&client, &env.ns.name, &env.builder.name).await?;
    if before != after {
        failures.push(format!("the cluster changed: {before:?} -> {after:?}"));
    }

    // A Deployment of the project's name that jockey did not make is not taken over.
    let foreign: k8s_openapi::api::apps::v1::Deployment =
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "taken"},
            "spec": {"selector": {"matchLabels": {"app": "taken"}}, "template": {
                "metadata": {"labels": {"app": "taken"}},
                "spec": {"containers": [{"name": "c", "image": "someone/else:1"}]}}}
        }))?;
    Api::<k8s_openapi::api::apps::v1::Deployment>::namespaced(client.clone(), &env.ns.name)
        .create(&PostParams::default(), &foreign)
        .await?;
    // Let it settle (KWOK makes it Available), so that only a write by deploy could change it.
    let deployments =
        Api::<k8s_openapi::api::apps::v1::Deployment>::namespaced(client.clone(), &env.ns.name);
    jockey_e2e::wait_for(
        "the foreign Deployment to be available",
        Duration::from_secs(60),
        || {
            let deployments = deployments.clone();
            async move {
                let d = deployments.get("taken").await?;
                let st = d.status.unwrap_or_default();
                Ok((st.available_replicas == Some(1)
                    && st.observed_generation == d.metadata.generation)
                    .then_some(()))
            }
        },
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = resource_versions(&client, &env.ns.name, &env.builder.name).await?;
    let run = env.jockey(&[
        "deploy",
        &example.path().to_string_lossy(),
        "--project",
        "taken",
    ])?;
    if run.ok || !run.stderr.contains("exists but is not project taken's") {
        failures.push(format!("foreign Deployment: {}", run.all()));
    }
    let after = resource_versions(&client, &env.ns.name, &env.builder.name).await?;
    if before != after {
        failures.push(format!("the cluster changed: {before:?} -> {after:?}"));
    }
    env.cleanup().await?;
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    Ok(())
}
