//! `deploy` keeps what users changed with kubectl (the real kubectl, through the real API
//! server's field managers): a raised memory limit, a patched readiness probe, an edited ALB
//! health-check path and added annotations survive a deploy of changed files, which still rolls
//! out its new image; a deploy whose flag sets a field a user owns is refused with the field, its
//! owner, both values and `--force-conflicts`, writing nothing, and `--force-conflicts` takes it;
//! a `kubectl rollout undo` survives a deploy of files that already ran, and new files win;
//! `rollback` moves the instance and keeps a user's limit.

mod deploy_support;

use anyhow::{Context, Result, ensure};
use deploy_support::{Env, Run, example_copy, resource_versions};
use jockey_e2e::kubectl_ok;
use serde_json::Value;
use std::path::Path;

fn ok(run: &Run, what: &str) -> Result<()> {
    ensure!(run.ok, "{what} failed: {}", run.all());
    Ok(())
}

fn get(ns: &str, kind: &str, name: &str) -> Result<Value> {
    let out = kubectl_ok(&["get", kind, name, "-n", ns, "-o", "json"])?;
    serde_json::from_str(&out).with_context(|| format!("kubectl get {kind} {name}: {out}"))
}

/// The instance `deploy` packaged, from its "packaged ... as instance-<h>" line.
fn packaged(run: &Run) -> Result<String> {
    run.stderr
        .split_whitespace()
        .find(|w| w.starts_with("instance-"))
        .map(str::to_string)
        .with_context(|| format!("no instance in deploy's output: {}", run.all()))
}

fn server(d: &Value) -> Value {
    d["spec"]["template"]["spec"]["containers"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == "server"))
        .cloned()
        .unwrap_or_default()
}

/// (annotation, image tag, volume) naming the instance the Deployment runs.
fn running(d: &Value) -> (String, String, String) {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let volume = d["spec"]["template"]["spec"]["volumes"]
        .as_array()
        .and_then(|vs| vs.iter().find(|v| v["name"] == "jockey-instance"))
        .map(|v| s(&v["configMap"]["name"]))
        .unwrap_or_default();
    // An image `:<h>` names its instance; the built-in template's dependency image (`:d-...`)
    // runs whichever instance its init container unpacks: the volume's.
    let tag = s(&server(d)["image"])
        .rsplit_once(':')
        .map(|(_, t)| {
            if jockey_core::image::is_dependency_tag(t) {
                volume.clone()
            } else {
                format!("instance-{t}")
            }
        })
        .unwrap_or_default();
    (
        s(&d["metadata"]["annotations"]["jockey.agentops.ai/instance"]),
        tag,
        volume,
    )
}

fn edit(dir: &Path, line: &str) -> Result<()> {
    let f = dir.join("server.py");
    let mut text = std::fs::read_to_string(&f)?;
    text.push_str(line);
    std::fs::write(&f, text)?;
    Ok(())
}

#[tokio::test]
async fn deploy_keeps_what_users_changed_and_reports_real_conflicts() -> Result<()> {
    let client = jockey_e2e::client().await?;
    let env = Env::new(&client, "deploy-keep").await?;
    let ns = env.ns.name.clone();
    let dir = example_copy("keep")?;
    let d = dir.path().to_string_lossy().to_string();
    let deploy = |extra: &[&str]| {
        let mut args = vec![
            "deploy",
            d.as_str(),
            "--project",
            "keep",
            "--timeout",
            "120s",
        ];
        args.extend_from_slice(extra);
        env.jockey(&args)
    };
    let first = deploy(&[])?;
    ok(&first, "first deploy")?;
    let a = packaged(&first)?;

    // What users change with kubectl, each its own field manager.
    kubectl_ok(&[
        "set",
        "resources",
        "deployment/keep",
        "-n",
        &ns,
        "-c",
        "server",
        "--limits=memory=4Gi",
    ])?;
    kubectl_ok(&[
        "patch",
        "deployment/keep",
        "-n",
        &ns,
        "-p",
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"server",
            "readinessProbe":{"httpGet":{"path":"/ready"}}}]}}}}"#,
    ])?;
    kubectl_ok(&[
        "annotate",
        "deployment/keep",
        "-n",
        &ns,
        "user.example/note=mine",
    ])?;
    kubectl_ok(&[
        "annotate",
        "ingress/ing-keep",
        "-n",
        &ns,
        "user.example/note=mine",
        "alb.ingress.kubernetes.io/healthcheck-path=/ready",
        "--overwrite",
    ])?;

    // A deploy of changed files: the new image rolls out, the users' values stay.
    edit(dir.path(), "\n# second version\n")?;
    let second = deploy(&[])?;
    ok(&second, "deploy of changed files")?;
    let b = packaged(&second)?;
    ensure!(a != b, "the edit changes the instance");
    let dep = get(&ns, "deployment", "keep")?;
    ensure!(
        running(&dep) == (b.clone(), b.clone(), b.clone()),
        "the changed files run: {:?}",
        running(&dep)
    );
    ensure!(
        dep["status"]["updatedReplicas"] == dep["spec"]["replicas"],
        "rolled out: {}",
        dep["status"]
    );
    let s = server(&dep);
    ensure!(
        s["resources"]["limits"]["memory"] == "4Gi",
        "{}",
        s["resources"]
    );
    ensure!(
        s["readinessProbe"]["httpGet"]["path"] == "/ready",
        "the user's probe stays: {}",
        s["readinessProbe"]
    );
    ensure!(dep["metadata"]["annotations"]["user.example/note"] == "mine");
    let ing = get(&ns, "ingress", "ing-keep")?;
    let ann = &ing["metadata"]["annotations"];
    ensure!(ann["user.example/note"] == "mine", "{ann}");
    ensure!(
        ann["alb.ingress.kubernetes.io/healthcheck-path"] == "/ready",
        "the user's health-check path stays: {ann}"
    );
    ensure!(
        second
            .stderr
            .contains("kept .metadata.annotations.alb.ingress.kubernetes.io/healthcheck-path")
            && second.stderr.contains("kubectl-annotate"),
        "deploy says what it kept and for whom: {}",
        second.all()
    );

    // A flag that sets a field a user owns: refused, naming it, nothing written.
    let before = resource_versions(&client, &ns, &env.builder.name).await?;
    let refused = deploy(&["--memory", "2Gi"])?;
    ensure!(!refused.ok, "a conflict must fail: {}", refused.all());
    for want in [
        "resources.limits.memory",
        "\"kubectl-set\"",
        "\"4Gi\"",
        "\"2Gi\"",
        "--force-conflicts",
        "nothing was written",
    ] {
        ensure!(
            refused.stderr.contains(want),
            "{want:?} missing: {}",
            refused.all()
        );
    }
    ensure!(
        resource_versions(&client, &ns, &env.builder.name).await? == before,
        "a refused deploy writes nothing"
    );
    let taken = deploy(&["--memory", "2Gi", "--force-conflicts"])?;
    ok(&taken, "deploy --memory 2Gi --force-conflicts")?;
    let s = server(&get(&ns, "deployment", "keep")?);
    ensure!(
        s["resources"]["limits"]["memory"] == "2Gi",
        "{}",
        s["resources"]
    );
    ensure!(
        s["resources"]["requests"]["memory"] == "2Gi",
        "{}",
        s["resources"]
    );
    ensure!(
        s["readinessProbe"]["httpGet"]["path"] == "/ready",
        "only the flag's fields move"
    );

    // `kubectl rollout undo` back to the first files survives a deploy of the same files...
    kubectl_ok(&[
        "rollout",
        "undo",
        "deployment/keep",
        "-n",
        &ns,
        "--to-revision=1",
    ])?;
    let dep = get(&ns, "deployment", "keep")?;
    ensure!(
        running(&dep) == (a.clone(), a.clone(), a.clone()),
        "the undo ran: {:?}",
        running(&dep)
    );
    let same = deploy(&[])?;
    ok(&same, "deploy of unchanged files after the undo")?;
    ensure!(
        same.stderr.contains(&format!("keeps {a} as kubectl"))
            && same.stderr.contains("ran before"),
        "{}",
        same.all()
    );
    let dep = get(&ns, "deployment", "keep")?;
    ensure!(
        running(&dep) == (a.clone(), a.clone(), a.clone()),
        "the user's undo survives: {:?}",
        running(&dep)
    );
    // ...and new files take the instance back.
    edit(dir.path(), "\n# third version\n")?;
    let third = deploy(&[])?;
    ok(&third, "deploy of new files after the undo")?;
    let c = packaged(&third)?;
    let dep = get(&ns, "deployment", "keep")?;
    ensure!(
        running(&dep) == (c.clone(), c.clone(), c.clone()),
        "new files run: {:?}",
        running(&dep)
    );

    // `rollback` moves the instance and keeps what users changed, like deploy.
    kubectl_ok(&[
        "set",
        "resources",
        "deployment/keep",
        "-n",
        &ns,
        "-c",
        "server",
        "--limits=memory=3Gi",
    ])?;
    let back = env.jockey(&["rollback", "keep", "--timeout", "120s"])?;
    ok(&back, "rollback")?;
    let dep = get(&ns, "deployment", "keep")?;
    ensure!(running(&dep).0 != c, "rolled back: {:?}", running(&dep));
    let (ann, image, volume) = running(&dep);
    ensure!(ann == image && image == volume, "{:?}", running(&dep));
    let s = server(&dep);
    ensure!(
        s["resources"]["limits"]["memory"] == "3Gi",
        "rollback keeps the user's limit: {}",
        s["resources"]
    );
    env.cleanup().await
}
