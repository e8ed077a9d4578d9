//! A tenant holds a kubeconfig for its own namespace and nothing else: every tenant command, run
//! as a user bound only to the tenant role in its namespace (`kubectl jockey tenant grant`;
//! impersonated with `--as`) and with no AWS settings at all, works end to end on the real node:
//! `deploy` with a real Kaniko build (asked of a build broker that itself holds only the identity
//! an installation gives it), `status`, `list`, `logs`, `secrets`, `logs-builder` of its own
//! project, a code change (the dependency image serves it: no second build), `rollback`, `gc`
//! and `delete`. Meanwhile the same user is refused
//! everything in the builder namespace.
//!
//! Skipped (reported as such by tests/summary.sh) where the machine cannot run the real node.

mod real_support;

use anyhow::{Result, ensure};
use jockey_e2e::{client, kubectl, require_real_node};
use real_support::deploy_support::{Run, example_copy};
use real_support::{RealEnv, answer, answers_in_a_row};

#[tokio::test]
async fn a_tenant_with_only_the_tenant_role_runs_every_command_with_real_builds() -> Result<()> {
    let Some(node) = require_real_node() else {
        return Ok(());
    };
    let client = client().await?;
    let mut env = RealEnv::new(&client, &node, "real-tenant").await?;
    let settings = node.plugin_env();
    let broker_env: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    env.env.run_broker_as_installed(&broker_env)?;
    let ns = env.ns().to_string();
    let builder = env.builder().to_string();
    let user = format!("tenant-{ns}");

    // The operator grants the role (as admin).
    let grant = env.jockey(&["tenant", "grant", &ns, "--user", &user], &[])?;
    ensure!(grant.ok, "tenant grant: {}", grant.all());
    // Everything below runs as the tenant.
    let tenant = |args: &[&str]| -> Result<Run> {
        let mut all = args.to_vec();
        all.extend(["--as", user.as_str()]);
        env.jockey(&all, &[])
    };
    let project = "real-tenant";
    let dir = example_copy("real-tenant")?;
    // Dependencies of this test's own (a comment is enough): its first deploy really builds,
    // whatever dependency images other tests left in the registry.
    let requirements = dir.path().join("requirements.txt");
    let mut deps = std::fs::read_to_string(&requirements).unwrap_or_default();
    deps.push_str(&format!("# {ns}\n"));
    std::fs::write(&requirements, deps)?;

    let first = tenant(&[
        "deploy",
        &dir.path().to_string_lossy(),
        "--project",
        project,
        "--follow",
        "--timeout",
        real_support::TIMEOUT,
    ])?;
    ensure!(
        first.ok,
        "the tenant's deploy: {}\nbroker:\n{}",
        first.all(),
        env.env.broker.log_text()
    );
    ensure!(
        first.stderr.contains("  | "),
        "--follow printed no build log: {}",
        first.all()
    );
    ensure!(env.jobs(project).await?.len() == 1, "one real build");
    let out = env
        .post(
            project,
            "/run",
            r#"{"provider": "reverse", "input": "tenant"}"#,
        )
        .await?;
    ensure!(answer(&out)? == "tnanet", "{out}");

    for args in [
        vec!["secrets", "set", project, "GREETING=hello"],
        vec!["secrets", "list", project],
        vec!["status", project],
        vec!["list"],
        vec!["logs", project],
        vec!["logs-builder", project],
    ] {
        let run = tenant(&args)?;
        ensure!(run.ok, "{args:?} as the tenant: {}", run.all());
    }
    let logs = tenant(&["logs-builder", project])?;
    ensure!(
        logs.stdout.contains("Succeeded") && logs.stdout.lines().count() > 2,
        "logs-builder shows the build's relayed log: {}",
        logs.all()
    );

    // A code change: the dependency image runs the new instance (no build), then back.
    std::fs::write(
        dir.path().join("providers/echo.py"),
        "NAME = \"echo\"\n\n\ndef run(text: str) -> str:\n    return text + \" (v2)\"\n",
    )?;
    let second = tenant(&[
        "deploy",
        &dir.path().to_string_lossy(),
        "--project",
        project,
        "--timeout",
        real_support::TIMEOUT,
    ])?;
    ensure!(second.ok, "second deploy: {}", second.all());
    ensure!(
        env.jobs(project).await?.len() == 1,
        "a code change built again"
    );
    let echo = r#"{"provider": "echo", "input": "x"}"#;
    answers_in_a_row(&env, project, echo, "x (v2)").await?;
    let back = tenant(&["rollback", project, "--timeout", real_support::TIMEOUT])?;
    ensure!(back.ok, "rollback: {}", back.all());
    ensure!(
        env.jobs(project).await?.len() == 1,
        "rollback built nothing"
    );
    answers_in_a_row(&env, project, echo, "x").await?;
    let gc = tenant(&["gc", "--dry-run"])?;
    ensure!(gc.ok, "gc: {}", gc.all());

    // The same user, in the builder namespace: nothing.
    for args in [
        ["get", "secrets", "-n", &builder],
        ["get", "jobs", "-n", &builder],
        ["get", "pods", "-n", &builder],
    ] {
        let mut all = args.to_vec();
        all.extend(["--as", user.as_str()]);
        let out = kubectl(&all)?;
        ensure!(
            !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("forbidden"),
            "{args:?} as the tenant was not refused: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }

    let gone = tenant(&["delete", project, "--timeout", "120s"])?;
    ensure!(gone.ok, "delete: {}", gone.all());
    env.cleanup().await
}
