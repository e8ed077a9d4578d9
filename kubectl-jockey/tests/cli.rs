//! The `kubectl-jockey` binary as a user runs it, with no cluster (`deploy --dry-run=client`
//! contacts none): settings by flag over environment over default, as clap's `env = ...` gives
//! them, and `--timeout` in humantime's forms.

use serde_json::Value;
use std::path::PathBuf;
use std::process::{Command, Output};

const SETTINGS: &[&str] = &[
    "DEPLOYMENT_DOMAIN",
    "ALB_SHARED_GROUP_NAME",
    "BUILDER_NAMESPACE",
    "IMAGE_REGISTRY",
    "IMAGE_REPOSITORY_PREFIX",
    "ALB_CERTIFICATE_ARN",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "KANIKO_IMAGE",
    "BASE_IMAGE",
    "BUILDER_ROLE_ARN",
    "BUILDER_CREDENTIALS",
];

fn example() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/agent")
}

/// The plugin with none of the settings in its environment but `env`.
fn jockey(env: &[(&str, &str)]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kubectl-jockey"));
    for k in SETTINGS {
        c.env_remove(k);
    }
    // No kubeconfig: a client dry run must not need one.
    c.env("KUBECONFIG", "/nonexistent/kubeconfig");
    c.envs(env.iter().copied());
    c
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `deploy --dry-run=client -o json`: the List of objects deploy would write.
fn rendered(env: &[(&str, &str)], flags: &[&str]) -> Vec<Value> {
    let out = jockey(env)
        .arg("deploy")
        .arg(example())
        .args(["-p", "demo", "--dry-run=client", "-o", "json"])
        .args(flags)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    list["items"].as_array().unwrap().clone()
}

fn kind<'a>(items: &'a [Value], kind: &str) -> &'a Value {
    items.iter().find(|o| o["kind"] == kind).unwrap()
}

fn host(items: &[Value]) -> String {
    kind(items, "Ingress")["spec"]["rules"][0]["host"]
        .as_str()
        .unwrap()
        .to_string()
}

fn group(items: &[Value]) -> String {
    kind(items, "Ingress")["metadata"]["annotations"]["alb.ingress.kubernetes.io/group.name"]
        .as_str()
        .unwrap()
        .to_string()
}

fn image(items: &[Value]) -> String {
    kind(items, "Deployment")["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap()
        .to_string()
}

const REGISTRY: (&str, &str) = ("IMAGE_REGISTRY", "env.example");

#[test]
fn flag_beats_environment_beats_default() {
    let defaults = rendered(&[REGISTRY], &[]);
    assert_eq!(host(&defaults), "demo.deploy.agentops.ai");
    assert_eq!(group(&defaults), "alb-deployments");
    assert!(
        image(&defaults).starts_with("env.example/hosting/demo:"),
        "{}",
        image(&defaults)
    );

    let env = [
        REGISTRY,
        ("DEPLOYMENT_DOMAIN", "Env.Example.com"),
        ("ALB_SHARED_GROUP_NAME", "env-group"),
        ("IMAGE_REPOSITORY_PREFIX", "env-prefix"),
    ];
    let from_env = rendered(&env, &[]);
    assert_eq!(
        host(&from_env),
        "demo.env.example.com",
        "normalised as before"
    );
    assert_eq!(group(&from_env), "env-group");
    assert!(image(&from_env).starts_with("env.example/env-prefix/demo:"));

    let from_flags = rendered(
        &env,
        &[
            "--deployment-domain",
            "flag.example.com",
            "--alb-group",
            "flag-group",
            "--image-registry",
            "flag.example",
        ],
    );
    assert_eq!(host(&from_flags), "demo.flag.example.com");
    assert_eq!(group(&from_flags), "flag-group");
    assert!(image(&from_flags).starts_with("flag.example/env-prefix/demo:"));
}

#[test]
fn an_empty_variable_means_the_default() {
    let items = rendered(&[REGISTRY, ("DEPLOYMENT_DOMAIN", "")], &[]);
    assert_eq!(host(&items), "demo.deploy.agentops.ai");
}

#[test]
fn help_names_each_variable() {
    let out = jockey(&[]).args(["deploy", "--help"]).output().unwrap();
    let help = text(&out);
    for var in SETTINGS.iter().filter(|v| **v != "AWS_DEFAULT_REGION") {
        assert!(
            help.contains(&format!("[env: {var}")),
            "{var} missing:\n{help}"
        );
    }
    let out = jockey(&[]).args(["alb-status", "--help"]).output().unwrap();
    for var in ["ALB_SHARED_GROUP_NAME", "DEPLOYMENT_DOMAIN", "AWS_REGION"] {
        assert!(text(&out).contains(&format!("[env: {var}")), "{var}");
    }
}

#[test]
fn timeout_takes_humantime_forms_and_refuses_the_rest_with_the_fix() {
    for ok in ["300ms", "1.5h", "1h 30m", "90", "7d"] {
        rendered(&[REGISTRY], &["--timeout", ok]);
    }
    for (bad, cause) in [
        ("5x", "invalid duration \"5x\""),
        ("8d", "longer than a week"),
        ("99999999999999999h", "longer than a week"),
    ] {
        let out = jockey(&[REGISTRY])
            .arg("deploy")
            .arg(example())
            .args(["-p", "demo", "--dry-run=client", "--timeout", bad])
            .output()
            .unwrap();
        let msg = text(&out);
        assert_eq!(out.status.code(), Some(2), "{bad}: {msg}");
        assert!(
            msg.contains("--timeout") && msg.contains(cause) && msg.contains("5m"),
            "{bad}: {msg}"
        );
    }
}
