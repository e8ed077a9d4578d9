//! Secret-looking files never reach the cluster through `deploy`: a project directory planted
//! with keys, credential stores and symlinks with innocent names pointing at them is deployed for
//! real; `deploy` lists each one as left out, and no planted value is in the instance ConfigMap
//! the API server stores, nor in the builder's copy of it.

mod deploy_support;

use anyhow::{Context, Result};
use deploy_support::{Env, example_copy};
use jockey_core::names::INSTANCE_TAR_KEY;
use jockey_e2e::client;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::ListParams;
use std::io::Read;
use std::path::Path;

const PROJECT: &str = "secret-agent";

/// Every planted file holds this marker plus its name, so a leak says which file leaked.
const MARKER: &str = "PLANTED-SECRET-5f1c";

fn plant(dir: &Path, rel: &str) -> Result<()> {
    let path = dir.join(rel);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&path, format!("{MARKER} {rel}\n"))?;
    Ok(())
}

fn link(dir: &Path, target: &str, name: &str) -> Result<()> {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::os::unix::fs::symlink(target, &path).with_context(|| format!("linking {name}"))
}

/// The uncompressed tar a ConfigMap carries (gzip'd in `binaryData`).
fn tar_of(cm: &ConfigMap) -> Result<Vec<u8>> {
    let gz = &cm
        .binary_data
        .as_ref()
        .and_then(|b| b.get(INSTANCE_TAR_KEY))
        .context("no instance tar in the ConfigMap")?
        .0;
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(gz.as_slice()).read_to_end(&mut tar)?;
    Ok(tar)
}

#[tokio::test]
async fn planted_secrets_and_links_to_them_never_reach_a_configmap() -> Result<()> {
    let client = client().await?;
    let env = Env::new(&client, "deploy-secrets").await?;
    let dir = example_copy("secrets")?;
    let d = dir.path();
    let planted = [
        ".env",
        "tls/server.key",
        "id_ed25519",
        "deploy/id_ecdsa",
        ".netrc",
        ".pypirc",
        "providers/.npmrc",
        "certs/client.p12",
        "certs/client.pfx",
        ".ssh/id_rsa",
        ".aws/credentials",
        ".kube/config",
        ".git-credentials",
        "service-account-prod.json",
        "client_secret_1234-abc.apps.googleusercontent.com.json",
        "token.json",
        ".streamlit/secrets.toml",
        "infra/terraform.tfstate",
        "infra/terraform.tfstate.backup",
    ];
    for f in planted {
        plant(d, f)?;
    }
    link(d, ".env", "config.txt")?;
    link(d, "../.aws/credentials", "providers/settings.ini")?;
    link(d, ".kube", "cluster")?;

    let run = env.jockey(&[
        "deploy",
        &d.to_string_lossy(),
        "--project",
        PROJECT,
        "--timeout",
        "120s",
    ])?;
    assert!(run.ok, "deploy failed: {}", run.all());
    for shown in [
        ".env",
        "tls/server.key",
        "id_ed25519",
        "deploy/id_ecdsa",
        ".netrc",
        ".pypirc",
        "providers/.npmrc",
        "certs/client.p12",
        "certs/client.pfx",
        ".ssh/",
        ".aws/",
        ".kube/",
        ".git-credentials",
        "service-account-prod.json",
        "client_secret_1234-abc.apps.googleusercontent.com.json",
        "token.json",
        ".streamlit/secrets.toml",
        "infra/terraform.tfstate",
        "infra/terraform.tfstate.backup",
        "config.txt -> .env",
        "providers/settings.ini -> .aws/credentials",
        "cluster -> .kube",
    ] {
        assert!(
            run.stderr.contains(shown),
            "deploy must say it left out {shown}: {}",
            run.all()
        );
    }
    assert!(!run.all().contains(MARKER), "{}", run.all());

    // What the API server stores: the instance ConfigMap in the project namespace (the
    // example's files) and the builder's copy (the dependency build's context: requirements.txt
    // only); neither holds a planted file.
    let mut seen = 0;
    for ns in [&env.ns.name, &env.builder.name] {
        let cms = Api::<ConfigMap>::namespaced(client.clone(), ns)
            .list(&ListParams::default().labels(&format!("jockey.agentops.ai/project={PROJECT}")))
            .await?
            .items;
        for cm in &cms {
            let name = cm.metadata.name.clone().unwrap_or_default();
            // The broker's record that a dependency image was pushed holds no files.
            if cm.binary_data.is_none() && ns == &env.builder.name {
                let raw = serde_json::to_string(cm)?;
                assert!(!raw.contains(MARKER), "{ns}/{name} holds a planted secret");
                continue;
            }
            let tar = tar_of(cm)?;
            let text = String::from_utf8_lossy(&tar);
            let expected = if ns == &env.ns.name {
                "server.py"
            } else {
                "requirements.txt"
            };
            assert!(text.contains(expected), "{ns}/{name} lacks {expected}");
            assert!(
                !text.contains(MARKER),
                "{ns}/{name} holds a planted secret: {}",
                text.lines()
                    .find(|l| l.contains(MARKER))
                    .unwrap_or_default()
            );
            let raw = serde_json::to_string(cm)?;
            assert!(!raw.contains(MARKER), "{ns}/{name} holds a planted secret");
            seen += 1;
        }
    }
    assert_eq!(seen, 2, "the instance ConfigMap and the builder's copy");
    env.cleanup().await
}
