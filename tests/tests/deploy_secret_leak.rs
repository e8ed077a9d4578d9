//! A secret value never leaves Secret `env-PROJECT`. Planted values go in through every door
//! (`deploy --secret-env-file`, `secrets set KEY=VALUE`, `secrets set --from-env-file`, a `.env`
//! in DIR, a malformed secret file, a value passed without `=`), then every command's output
//! (`-o yaml|json` included, and the failing ones' errors) and everything the cluster stores
//! except Secrets (every object of every listable kind, events included, the instance tars
//! unpacked, pod logs) are searched for them, plain and base64-encoded.

mod deploy_support;

use anyhow::{Context, Result, ensure};
use base64::Engine;
use deploy_support::{Env, Run, example_copy};
use jockey_core::names::INSTANCE_TAR_KEY;
use jockey_e2e::client;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use kube::api::{DynamicObject, ListParams, LogParams};
use kube::discovery::{Discovery, verbs};
use kube::{Api, Client};
use std::io::Read;

const PROJECT: &str = "leak-check";

/// Distinct per door, so a leak says which door it came through.
fn planted(door: &str) -> String {
    format!("PLANTED{door}{}x", std::process::id())
}

/// Where a planted value occurs in `text`, plain or base64 (both paddings of a substring).
fn leaks(text: &str, values: &[String]) -> Vec<String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut found = Vec::new();
    for v in values {
        let mut forms = vec![v.clone()];
        // base64 of the value at each of the 3 alignments, without the edge characters.
        for pad in 0..3 {
            let enc = b64.encode(format!("{}{v}", "a".repeat(pad)));
            let start = 4 * (pad + 2) / 3 + 1;
            if enc.len() > start + 8 {
                forms.push(enc[start..enc.len() - 4].to_string());
            }
        }
        if forms.iter().any(|f| text.contains(f.as_str())) {
            found.push(v.clone());
        }
    }
    found
}

fn check_output(what: &str, run: &Run, values: &[String]) -> Result<()> {
    let l = leaks(&run.all(), values);
    ensure!(
        l.is_empty(),
        "{what} printed secret value(s) {l:?}:\n{}",
        run.all()
    );
    Ok(())
}

/// Every object the cluster stores except Secrets, as JSON text, plus each instance tar
/// unpacked and each pod's log.
async fn everything_but_secrets(client: &Client) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    let discovery = Discovery::new(client.clone()).run().await?;
    for group in discovery.groups() {
        for (ar, caps) in group.recommended_resources() {
            if !caps.supports_operation(verbs::LIST) || ar.plural == "secrets" {
                continue;
            }
            let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
            let list = api
                .list(&ListParams::default())
                .await
                .with_context(|| format!("listing {}", ar.plural))?;
            for o in list.items {
                out.push((
                    format!(
                        "{} {}/{}",
                        ar.kind,
                        o.metadata.namespace.clone().unwrap_or_default(),
                        o.metadata.name.clone().unwrap_or_default()
                    ),
                    serde_json::to_string(&o)?,
                ));
            }
        }
    }
    for cm in Api::<ConfigMap>::all(client.clone())
        .list(&ListParams::default())
        .await?
        .items
    {
        if let Some(gz) = cm
            .binary_data
            .as_ref()
            .and_then(|b| b.get(INSTANCE_TAR_KEY))
        {
            let mut tar = Vec::new();
            flate2::read::GzDecoder::new(gz.0.as_slice()).read_to_end(&mut tar)?;
            out.push((
                format!("instance tar of {}", cm.metadata.name.unwrap_or_default()),
                String::from_utf8_lossy(&tar).to_string(),
            ));
        }
    }
    for pod in Api::<Pod>::all(client.clone())
        .list(&ListParams::default())
        .await?
        .items
    {
        let (ns, name) = (
            pod.metadata.namespace.clone().unwrap_or_default(),
            pod.metadata.name.clone().unwrap_or_default(),
        );
        for c in pod.spec.iter().flat_map(|s| s.containers.iter()) {
            let params = LogParams {
                container: Some(c.name.clone()),
                ..Default::default()
            };
            // A pod whose node serves no logs answers with an error: nothing stored there.
            if let Ok(log) = Api::<Pod>::namespaced(client.clone(), &ns)
                .logs(&name, &params)
                .await
            {
                out.push((format!("log of pod {ns}/{name} {}", c.name), log));
            }
        }
    }
    Ok(out)
}

#[tokio::test]
async fn planted_secret_values_appear_nowhere_but_their_secret() -> Result<()> {
    let client = client().await?;
    let env = Env::new(&client, "deploy-leak").await?;
    let ns = env.ns.name.clone();
    let dir = example_copy("leak")?;
    let d = dir.path().to_string_lossy().to_string();
    let files = jockey_e2e::repo_root().join(format!("target/e2e-leak-{}", std::process::id()));
    std::fs::create_dir_all(&files)?;

    let (v_file, v_multi, v_arg, v_from, v_dotenv, v_bad, v_noeq) = (
        planted("FILE"),
        planted("MULTI"),
        planted("ARG"),
        planted("FROMFILE"),
        planted("DOTENV"),
        planted("BADFILE"),
        planted("NOEQ"),
    );
    let values = vec![
        v_file.clone(),
        v_multi.clone(),
        v_arg.clone(),
        v_from.clone(),
        v_dotenv.clone(),
        v_bad.clone(),
        v_noeq.clone(),
    ];
    let secret_file = files.join("secret.env");
    std::fs::write(
        &secret_file,
        format!("API_KEY={v_file}\nPEM=\"-----BEGIN-----\n{v_multi}\n-----END-----\"\n"),
    )?;
    let from_file = files.join("from.env");
    std::fs::write(&from_file, format!("export DB_PASSWORD='{v_from}'\n"))?;
    let bad_file = files.join("bad.env");
    std::fs::write(
        &bad_file,
        format!("OK=1\nTOKEN=\"{v_bad}\nX=1\nOTHER {v_bad}\n"),
    )?;
    std::fs::write(dir.path().join(".env"), format!("DOTENV_KEY={v_dotenv}\n"))?;
    let (sf, ff, bf) = (
        secret_file.to_string_lossy().to_string(),
        from_file.to_string_lossy().to_string(),
        bad_file.to_string_lossy().to_string(),
    );

    // Every door, and every command that shows something of the project.
    let mut runs: Vec<(String, Run)> = Vec::new();
    // `Some(ok)`: the run must succeed (or fail); `None`: either (what matters is its output).
    let mut run = |args: Vec<&str>, must_succeed: Option<bool>| -> Result<()> {
        let r = env.jockey(&args)?;
        if let Some(want) = must_succeed {
            ensure!(
                r.ok == want,
                "{args:?}: expected success={want}: {}",
                r.all()
            );
        }
        runs.push((format!("{args:?}"), r));
        Ok(())
    };
    // Every output of deploy, applied and dry.
    for output in [
        &["-o", "yaml", "--timeout", "120s"][..],
        &["-o", "json", "--timeout", "120s"],
        &["--dry-run=server", "-o", "json"],
        &["--dry-run=client", "-o", "yaml"],
    ] {
        let mut args: Vec<&str> =
            vec!["deploy", &d, "--project", PROJECT, "--secret-env-file", &sf];
        args.extend_from_slice(output);
        run(args, Some(true))?;
    }
    let arg = format!("ARG_KEY={v_arg}");
    run(
        vec!["secrets", "set", PROJECT, &arg, "--timeout", "60s"],
        Some(true),
    )?;
    run(
        vec![
            "secrets",
            "set",
            PROJECT,
            "--from-env-file",
            &ff,
            "--timeout",
            "60s",
        ],
        Some(true),
    )?;
    run(
        vec!["secrets", "set", PROJECT, "--from-env-file", &bf],
        Some(false),
    )?;
    run(
        vec!["deploy", &d, "--project", PROJECT, "--secret-env-file", &bf],
        Some(false),
    )?;
    run(vec!["secrets", "set", PROJECT, &v_noeq], Some(false))?;
    run(
        vec!["deploy", &d, "--project", PROJECT, "--env", &v_noeq],
        Some(false),
    )?;
    for format in ["table", "json", "yaml"] {
        run(vec!["secrets", "list", PROJECT, "-o", format], Some(true))?;
    }
    run(vec!["status", PROJECT], Some(true))?;
    run(vec!["status", PROJECT, "-o", "json"], Some(true))?;
    run(vec!["list", "-o", "yaml"], Some(true))?;
    run(vec!["list", "-o", "wide"], Some(true))?;
    run(vec!["logs", PROJECT], None)?;
    let builder = env.builder.name.clone();
    run(vec!["logs-builder", "-n", &builder], None)?;
    run(
        vec!["secrets", "unset", PROJECT, "ARG_KEY", "--timeout", "60s"],
        Some(true),
    )?;

    // The doors worked: the values are in the Secret (so a clean search means something).
    let secret = Api::<Secret>::namespaced(client.clone(), &ns)
        .get(&format!("env-{PROJECT}"))
        .await?;
    let data = secret.data.unwrap_or_default();
    ensure!(data["API_KEY"].0 == v_file.as_bytes());
    ensure!(String::from_utf8_lossy(&data["PEM"].0).contains(&v_multi));
    ensure!(data["DB_PASSWORD"].0 == v_from.as_bytes());
    ensure!(!data.contains_key("ARG_KEY"), "unset");

    for (what, r) in &runs {
        check_output(what, r, &values)?;
    }
    // A control: a value stored (base64, in binaryData) outside any Secret must be found.
    let control = planted("CONTROL");
    let cm: ConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "leak-control"},
        "binaryData": {"x": base64::engine::general_purpose::STANDARD.encode(format!("..{control}.."))}
    }))?;
    Api::<ConfigMap>::namespaced(client.clone(), &ns)
        .create(&Default::default(), &cm)
        .await?;
    let stored = everything_but_secrets(&client).await?;
    ensure!(
        stored
            .iter()
            .any(|(_, text)| !leaks(text, std::slice::from_ref(&control)).is_empty()),
        "the search must find a planted value stored outside a Secret"
    );
    ensure!(
        stored.iter().any(|(what, _)| what.starts_with("Event ")),
        "the search covers events"
    );
    for (what, text) in &stored {
        let l = leaks(text, &values);
        ensure!(l.is_empty(), "{what} holds secret value(s) {l:?}");
    }
    let _ = std::fs::remove_dir_all(&files);
    env.cleanup().await
}

#[test]
fn the_leak_search_finds_base64_forms() {
    let v = vec!["PLANTEDxyz123456".to_string()];
    let b64 = base64::engine::general_purpose::STANDARD;
    for prefix in ["", "a", "ab", "abc"] {
        let enc = b64.encode(format!("{prefix}{}tail", v[0]));
        assert_eq!(leaks(&enc, &v), v, "{prefix:?}");
    }
    assert!(leaks("nothing here", &v).is_empty());
}
