//! `deploy`'s runtime settings and `secrets` on the local control plane: the flags land on the
//! Deployment, omitted settings keep their values, an unchanged deploy writes nothing, secrets
//! live only in Secret `env-PROJECT` and a change rolls the pods; bad input is refused with
//! nothing written; a `.env` in DIR gets the exact command to pass it.

mod deploy_support;

use anyhow::{Context, Result, ensure};
use deploy_support::{Env, Run, example_copy, resource_versions};
use jockey_core::names::{ANNOTATION_SECRET_SHA256, LABEL_PROJECT};
use jockey_e2e::client;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Container, Secret};
use kube::{Api, Client};
use std::collections::BTreeMap;
use std::io::Write;
use std::process::Stdio;

async fn deployment(client: &Client, ns: &str, project: &str) -> Result<Deployment> {
    Ok(Api::<Deployment>::namespaced(client.clone(), ns)
        .get(project)
        .await?)
}

fn server(d: &Deployment) -> Container {
    d.spec.template.spec.clone().unwrap_or_default().containers[0].clone()
}

fn env_of(d: &Deployment) -> BTreeMap<String, String> {
    server(d)
        .env
        .unwrap_or_default()
        .into_iter()
        .map(|e| (e.name, e.value.unwrap_or_default()))
        .collect()
}

fn resource(d: &Deployment, kind: &str, name: &str) -> Option<String> {
    let r = server(d).resources?;
    let m = if kind == "requests" {
        r.requests
    } else {
        r.limits
    };
    m?.get(name).map(|q| q.0.clone())
}

fn secret_sha(d: &Deployment) -> Option<String> {
    d.spec
        .template
        .metadata
        .as_ref()?
        .annotations
        .as_ref()?
        .get(ANNOTATION_SECRET_SHA256)
        .cloned()
}

fn ok(run: &Run, what: &str) -> Result<()> {
    ensure!(run.ok, "{what} failed: {}", run.all());
    Ok(())
}

#[tokio::test]
async fn runtime_settings_land_on_the_deployment_and_omitted_ones_are_kept() -> Result<()> {
    let client = client().await?;
    let env = Env::new(&client, "deploy-runtime").await?;
    let ns = env.ns.name.clone();
    let dir = example_copy("runtime")?;
    let d = dir.path().to_string_lossy().to_string();
    let env_file = dir.path().join("plain.env.txt");
    // python-dotenv syntax: export, quotes, a comment, a multi-line value, interpolation.
    std::fs::write(
        &env_file,
        "# settings\nexport MODEL=\"gpt-x\" # the model\nGREETING='hello\nworld'\nURL=${MODEL}/v1\n",
    )?;
    let run = env.jockey(&[
        "deploy",
        &d,
        "--project",
        "rt",
        "--env",
        "A=1",
        "--env-file",
        &env_file.to_string_lossy(),
        "--replicas",
        "2",
        "--cpu",
        "250m",
        "--memory",
        "512Mi",
        "--timeout",
        "120s",
    ])?;
    ok(&run, "first deploy")?;
    let dep = deployment(&client, &ns, "rt").await?;
    let vars = env_of(&dep);
    ensure!(vars["A"] == "1", "{vars:?}");
    ensure!(vars["MODEL"] == "gpt-x", "{vars:?}");
    ensure!(vars["GREETING"] == "hello\nworld", "{vars:?}");
    ensure!(vars["URL"] == "gpt-x/v1", "{vars:?}");
    ensure!(dep.spec.replicas == Some(2));
    ensure!(resource(&dep, "requests", "cpu").as_deref() == Some("250m"));
    ensure!(resource(&dep, "requests", "memory").as_deref() == Some("512Mi"));
    ensure!(
        resource(&dep, "limits", "memory").as_deref() == Some("512Mi"),
        "the memory limit follows the request"
    );
    // The secret environment is wired even before any secret exists (optional).
    let env_from = server(&dep).env_from.unwrap_or_default();
    ensure!(
        env_from
            .iter()
            .any(|e| e.secret_ref.as_ref().is_some_and(|s| s.name == "env-rt")),
        "{env_from:?}"
    );

    // The same deploy without any flag: every setting is kept and nothing is written.
    let before = resource_versions(&client, &ns, &env.builder.name).await?;
    let run = env.jockey(&["deploy", &d, "--project", "rt", "--timeout", "120s"])?;
    ok(&run, "unchanged deploy")?;
    ensure!(run.stderr.contains("nothing changed"), "{}", run.all());
    ensure!(
        resource_versions(&client, &ns, &env.builder.name).await? == before,
        "an unchanged deploy must write nothing"
    );

    // One more variable and a new replica count: the rest stays.
    let run = env.jockey(&[
        "deploy",
        &d,
        "--project",
        "rt",
        "--env",
        "B=2",
        "--replicas",
        "3",
        "--timeout",
        "120s",
    ])?;
    ok(&run, "deploy with --env B=2")?;
    let dep = deployment(&client, &ns, "rt").await?;
    let vars = env_of(&dep);
    ensure!(vars.get("A").map(String::as_str) == Some("1"), "{vars:?}");
    ensure!(vars.get("B").map(String::as_str) == Some("2"), "{vars:?}");
    ensure!(
        vars.get("MODEL").map(String::as_str) == Some("gpt-x"),
        "{vars:?}"
    );
    ensure!(dep.spec.replicas == Some(3));
    ensure!(resource(&dep, "limits", "memory").as_deref() == Some("512Mi"));
    env.cleanup().await
}

#[tokio::test]
async fn secrets_live_only_in_their_secret_and_a_change_rolls_the_pods() -> Result<()> {
    let client = client().await?;
    let env = Env::new(&client, "deploy-secrets-cmd").await?;
    let ns = env.ns.name.clone();
    let dir = example_copy("secrets-cmd")?;
    let d = dir.path().to_string_lossy().to_string();
    let secret_file = dir.path().join("../secrets-cmd.env");
    std::fs::write(&secret_file, "API_KEY=\"k-1\"\nexport DB_PASSWORD=p-1\n")?;
    let run = env.jockey(&[
        "deploy",
        &d,
        "--project",
        "sec",
        "--secret-env-file",
        &secret_file.to_string_lossy(),
        "--timeout",
        "120s",
    ])?;
    let _ = std::fs::remove_file(&secret_file);
    ok(&run, "deploy --secret-env-file")?;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let s = secrets.get("env-sec").await?;
    ensure!(
        s.metadata
            .labels
            .clone()
            .unwrap_or_default()
            .get(LABEL_PROJECT)
            .map(String::as_str)
            == Some("sec")
    );
    let data = s.data.clone().unwrap_or_default();
    ensure!(data["API_KEY"].0 == b"k-1" && data["DB_PASSWORD"].0 == b"p-1");
    let dep = deployment(&client, &ns, "sec").await?;
    let sha1 = secret_sha(&dep).context("the pod template carries the secret digest")?;
    ensure!(
        !env_of(&dep).contains_key("API_KEY"),
        "a secret is never a plain env var"
    );
    let gen1 = dep.metadata.generation;

    // Setting a value rolls the pods and waits for them.
    let run = env.jockey(&["secrets", "set", "sec", "API_KEY=k-2", "--timeout", "60s"])?;
    ok(&run, "secrets set")?;
    ensure!(
        run.stderr.contains("rolled out"),
        "waits for the rollout: {}",
        run.all()
    );
    let dep = deployment(&client, &ns, "sec").await?;
    let sha2 = secret_sha(&dep).context("digest")?;
    ensure!(
        sha2 != sha1 && dep.metadata.generation > gen1,
        "a change rolls the pods"
    );
    ensure!(secrets.get("env-sec").await?.data.unwrap_or_default()["API_KEY"].0 == b"k-2");

    // The same value again writes nothing.
    settle(&client, &ns, &env.builder.name).await?;
    let before = resource_versions(&client, &ns, &env.builder.name).await?;
    let run = env.jockey(&["secrets", "set", "sec", "API_KEY=k-2"])?;
    ok(&run, "secrets set (same value)")?;
    ensure!(run.stderr.contains("unchanged"), "{}", run.all());
    ensure!(resource_versions(&client, &ns, &env.builder.name).await? == before);

    // list: names and change times, never values; -o json too.
    let run = env.jockey(&["secrets", "list", "sec"])?;
    ok(&run, "secrets list")?;
    ensure!(run.stdout.contains("API_KEY") && run.stdout.contains("DB_PASSWORD"));
    ensure!(run.stdout.contains("CHANGED"), "{}", run.stdout);
    let run = env.jockey(&["secrets", "list", "sec", "-o", "json"])?;
    ok(&run, "secrets list -o json")?;
    let v: serde_json::Value = serde_json::from_str(&run.stdout)?;
    let names: Vec<&str> = v["keys"]
        .as_array()
        .context("keys")?
        .iter()
        .filter_map(|k| k["name"].as_str())
        .collect();
    ensure!(names == ["API_KEY", "DB_PASSWORD"], "{names:?}");
    ensure!(!run.all().contains("k-2") && !run.all().contains("p-1"));

    // unset with --no-wait: the key is gone, the template moved on, the command returned.
    let run = env.jockey(&["secrets", "unset", "sec", "DB_PASSWORD", "--no-wait"])?;
    ok(&run, "secrets unset")?;
    ensure!(run.stderr.contains("--no-wait"), "{}", run.all());
    ensure!(
        !secrets
            .get("env-sec")
            .await?
            .data
            .unwrap_or_default()
            .contains_key("DB_PASSWORD")
    );
    ensure!(secret_sha(&deployment(&client, &ns, "sec").await?) != Some(sha2));
    // `--from-env-file -` reads the pairs from standard input: a value piped from a password
    // manager is never on the command line, in the shell's history or in the process list.
    let mut cmd = deploy_support::jockey_command(
        &[
            "secrets",
            "set",
            "sec",
            "--from-env-file",
            "-",
            "--no-wait",
            "-n",
            &ns,
        ],
        &env.builder.name,
        &[],
    )?;
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .context("running secrets set --from-env-file -")?;
    child
        .stdin
        .take()
        .context("the child's standard input")?
        .write_all(b"PIPED_KEY='piped-value'\n")?;
    let out = child.wait_with_output()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    ensure!(
        out.status.success(),
        "secrets set --from-env-file -: {text}"
    );
    ensure!(
        !text.contains("piped-value"),
        "the value is never printed: {text}"
    );
    ensure!(
        secrets.get("env-sec").await?.data.unwrap_or_default()["PIPED_KEY"].0 == b"piped-value"
    );
    // Let that rollout finish before taking the "nothing written" snapshot.
    let out = jockey_e2e::kubectl(&[
        "rollout",
        "status",
        "deployment/sec",
        "-n",
        &ns,
        "--timeout=60s",
    ])?;
    ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    settle(&client, &ns, &env.builder.name).await?;
    // Unsetting a key that is not there is an error that writes nothing.
    let before = resource_versions(&client, &ns, &env.builder.name).await?;
    let run = env.jockey(&["secrets", "unset", "sec", "NOT_THERE"])?;
    ensure!(!run.ok && run.stderr.contains("NOT_THERE"), "{}", run.all());
    ensure!(resource_versions(&client, &ns, &env.builder.name).await? == before);

    // A redeploy keeps the secrets and their digest: nothing written.
    let run = env.jockey(&["deploy", &d, "--project", "sec", "--timeout", "120s"])?;
    ok(&run, "redeploy")?;
    ensure!(run.stderr.contains("nothing changed"), "{}", run.all());
    ensure!(resource_versions(&client, &ns, &env.builder.name).await? == before);
    env.cleanup().await
}

/// Waits until two snapshots a second apart agree (pods of a finished rollout are still
/// terminating for a moment).
async fn settle(client: &Client, ns: &str, builder: &str) -> Result<()> {
    let mut last = resource_versions(client, ns, builder).await?;
    for _ in 0..30 {
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        let now = resource_versions(client, ns, builder).await?;
        if now == last {
            return Ok(());
        }
        last = now;
    }
    anyhow::bail!("namespace {ns} did not settle")
}

#[tokio::test]
async fn bad_runtime_input_is_refused_with_nothing_written() -> Result<()> {
    let client = client().await?;
    let env = Env::new(&client, "deploy-runtime-bad").await?;
    let ns = env.ns.name.clone();
    let dir = example_copy("runtime-bad")?;
    let d = dir.path().to_string_lossy().to_string();
    ok(
        &env.jockey(&["deploy", &d, "--project", "bad", "--timeout", "120s"])?,
        "first deploy",
    )?;
    let files = jockey_e2e::repo_root().join("target/e2e-runtime-bad");
    std::fs::create_dir_all(&files)?;
    let malformed = files.join("malformed.env");
    std::fs::write(&malformed, "A=1\n# fine\nB \"x\"\nC=3\n")?;
    let unterminated = files.join("unterminated.env");
    std::fs::write(&unterminated, "OK=1\nKEY=\"never closed\nMORE=2\n")?;
    let bad_name = files.join("bad-name.env");
    std::fs::write(&bad_name, "GOOD=1\nBAD-NAME=2\n")?;
    let huge = files.join("huge.env");
    std::fs::write(&huge, format!("BIG={}\n", "x".repeat(1024 * 1024 + 1)))?;
    let (m, u, b, h) = (
        malformed.to_string_lossy().to_string(),
        unterminated.to_string_lossy().to_string(),
        bad_name.to_string_lossy().to_string(),
        huge.to_string_lossy().to_string(),
    );
    // (arguments, what the error must say)
    let cases: Vec<(Vec<&str>, Vec<String>)> = vec![
        (
            vec!["--env-file", &m],
            vec![format!("{m}:3"), "expected KEY=VALUE".into()],
        ),
        (
            vec!["--secret-env-file", &u],
            vec![format!("{u}:2"), "no closing \"".into()],
        ),
        (
            vec!["--secret-env-file", &b],
            vec!["\"BAD-NAME\" is not a valid environment variable name".into()],
        ),
        (
            vec!["--env", "1X=v"],
            vec!["\"1X\" is not a valid environment variable name".into()],
        ),
        (
            vec!["--secret-env-file", &h],
            vec!["1048576-byte limit".into(), "BIG".into()],
        ),
        (
            vec!["--memory", "2GB"],
            vec!["\"2GB\" is not a positive Kubernetes quantity".into()],
        ),
        (
            vec!["--cpu", "lots"],
            vec!["\"lots\" is not a positive Kubernetes quantity".into()],
        ),
        (vec!["--replicas", "-1"], vec!["-1 is not in 0..".into()]),
    ];
    let before = resource_versions(&client, &ns, &env.builder.name).await?;
    for (args, wants) in &cases {
        let mut all = vec!["deploy", d.as_str(), "--project", "bad"];
        all.extend(args.iter().copied());
        let run = env.jockey(&all)?;
        ensure!(!run.ok, "{args:?} must be refused: {}", run.all());
        for want in wants {
            ensure!(
                run.stderr.contains(want.as_str()),
                "{args:?}: want {want:?} in {}",
                run.stderr
            );
        }
        ensure!(
            !run.stderr.contains("xxxxxxxx"),
            "a value is never in an error"
        );
        ensure!(
            resource_versions(&client, &ns, &env.builder.name).await? == before,
            "{args:?} wrote something"
        );
    }
    // The same files through `secrets set`.
    for (args, want) in [
        (
            vec!["secrets", "set", "bad", "--from-env-file", &m],
            format!("{m}:3"),
        ),
        (
            vec!["secrets", "set", "bad", "--from-env-file", &h],
            "1048576-byte limit".to_string(),
        ),
        (
            vec!["secrets", "set", "bad", "no-equals-sign-here"],
            "expected KEY=VALUE".to_string(),
        ),
    ] {
        let run = env.jockey(&args)?;
        ensure!(
            !run.ok && run.stderr.contains(&want),
            "{args:?}: {}",
            run.all()
        );
        ensure!(
            !run.stderr.contains("no-equals-sign-here"),
            "the argument may be a value"
        );
        ensure!(resource_versions(&client, &ns, &env.builder.name).await? == before);
    }
    let _ = std::fs::remove_dir_all(&files);
    env.cleanup().await
}

#[tokio::test]
async fn a_dotenv_in_dir_is_left_out_and_the_printed_command_passes_it_as_secrets() -> Result<()> {
    let client = client().await?;
    let env = Env::new(&client, "deploy-dotenv").await?;
    let ns = env.ns.name.clone();
    let dir = example_copy("dotenv")?;
    let d = dir.path().to_string_lossy().to_string();
    std::fs::write(dir.path().join(".env"), "OPENAI_API_KEY=sk-test-1\n")?;
    let run = env.jockey(&["deploy", &d, "--project", "dot", "--timeout", "120s"])?;
    ok(&run, "deploy")?;
    let dotenv = dir.path().join(".env").to_string_lossy().to_string();
    let want_deploy =
        format!("kubectl jockey deploy {d} --project dot -n {ns} --secret-env-file {dotenv}");
    let want_set = format!("kubectl jockey secrets set dot -n {ns} --from-env-file {dotenv}");
    ensure!(run.stderr.contains(&want_deploy), "{}", run.stderr);
    ensure!(run.stderr.contains(&want_set), "{}", run.stderr);
    ensure!(!run.all().contains("sk-test-1"));
    // Running the printed command as printed does what it says.
    let line = run
        .stderr
        .lines()
        .find(|l| l.contains("kubectl jockey secrets set"))
        .context("the printed command")?;
    let words: Vec<&str> = line.split_whitespace().skip(2).collect();
    let run = deploy_support::jockey(&words, &env.builder.name, &[])?;
    ok(&run, "the printed secrets set")?;
    let s = Api::<Secret>::namespaced(client.clone(), &ns)
        .get("env-dot")
        .await?;
    ensure!(s.data.unwrap_or_default()["OPENAI_API_KEY"].0 == b"sk-test-1");
    env.cleanup().await
}
