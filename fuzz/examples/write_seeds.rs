//! Writes the starting corpus `make fuzz` grows from (`fuzz/corpus/*/seed-*`): `make fuzz-seeds`,
//! i.e. `cargo run -p jockey-fuzz --example write_seeds`. Kept as code so the seeds follow the
//! objects jockey renders; a program, not a test, so that no test run reports it skipped.

use jockey_core::defaults::{render_deployment, render_ingress, render_service};
use jockey_core::{ContentHash, ProjectId};
use serde_json::{Value, json};
use std::path::Path;

fn review(kind: (&str, &str, &str), op: &str, object: Value, old: Value, dry: bool) -> Value {
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": { "group": kind.0, "version": kind.1, "kind": kind.2 },
            "resource": { "group": kind.0, "version": kind.1, "resource": "x" },
            "name": object.pointer("/metadata/name").cloned().unwrap_or(json!("")),
            "namespace": "team-a",
            "operation": op,
            "userInfo": { "username": "alice" },
            "object": object,
            "oldObject": old,
            "dryRun": dry
        }
    })
}

fn ns(v: impl serde::Serialize) -> Value {
    let mut v = serde_json::to_value(v).unwrap();
    v["metadata"]["namespace"] = json!("team-a");
    v
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let p = ProjectId::parse("demo")?;
    let h = ContentHash::from_digest(&[0x12; 32]);
    let dep = ("apps", "v1", "Deployment");
    let svc = ("", "v1", "Service");
    let ing = ("networking.k8s.io", "v1", "Ingress");
    let mut hosted = ns(render_ingress(&p));
    hosted["spec"] = json!({ "rules": [{ "host": "www.demo.example", "http": { "paths": [
        { "path": "/", "pathType": "Prefix", "backend": { "service": { "name": "demo", "port": { "number": 80 } } } }
    ] } }] });
    hosted["metadata"]["annotations"] = json!({
        "alb.ingress.kubernetes.io/group.name": "jockey-shared",
        "alb.ingress.kubernetes.io/healthcheck-path": "/health",
        "alb.ingress.kubernetes.io/actions.x": "{\"type\":\"fixed-response\",\"fixedResponseConfig\":{\"statusCode\":\"200\"}}"
    });
    let mut unlabelled = ns(render_service(&p));
    unlabelled["metadata"]["labels"] = json!({});
    let reviews = [
        review(
            dep,
            "CREATE",
            ns(render_deployment(&p, &h)),
            Value::Null,
            false,
        ),
        review(
            dep,
            "UPDATE",
            ns(render_deployment(&p, &h)),
            ns(render_deployment(&p, &h)),
            false,
        ),
        review(svc, "CREATE", ns(render_service(&p)), Value::Null, true),
        review(ing, "CREATE", ns(render_ingress(&p)), Value::Null, false),
        review(ing, "UPDATE", hosted.clone(), ns(render_ingress(&p)), false),
        review(ing, "CREATE", hosted, Value::Null, false),
        review(svc, "UPDATE", unlabelled, ns(render_service(&p)), false),
        review(
            ("", "v1", "Pod"),
            "CREATE",
            json!({"metadata": {"name": "x"}}),
            Value::Null,
            false,
        ),
    ];
    let dir = root.join("admission");
    std::fs::create_dir_all(&dir)?;
    for (i, r) in reviews.iter().enumerate() {
        std::fs::write(dir.join(format!("seed-{i}")), serde_json::to_vec(r)?)?;
    }
    let policies = [
        "",
        "extraHosts:\n  demo: [www.demo.example, \"*.demo.example\"]\n",
        "sharding: {enabled: false}\nmaxRulesPerProject: 3\n",
        "sharding: {enabled: true, capacity: 30}\nmaxRulesPerProject: 3\nruleQuota: 100\n",
        "groupSettings:\n  scheme: internal\n  ssl-redirect: \"\"\n  ssl-policy: ELBSecurityPolicy-TLS13-1-2-2021-06\n  listen-ports: '[{\"HTTPS\": 443}]'\n",
        "{\"extraHosts\": {\"a\": [\"b.example\"]}, \"ruleQuota\": 200}",
        "groupSettings: {load-balancer-attributes: idle_timeout.timeout_seconds=60, tags: a=b}\n",
    ];
    let dir = root.join("policy");
    std::fs::create_dir_all(&dir)?;
    for (i, p) in policies.iter().enumerate() {
        std::fs::write(dir.join(format!("seed-{i}")), p)?;
    }
    // Dotenv files: python-dotenv's syntax, each feature once, and mistakes.
    let dotenvs = [
        "A=1\nexport B = two # comment\nC='single ${A}'\nD=\"double\\n\\\"q\\\" ${B}\"\n",
        "KEY=\"-----BEGIN KEY-----\nabc\n-----END KEY-----\"\nNEXT=${KEY}\n",
        "E=${NOPE:-dflt}\nF=${HOME}\nG=$HOME\nH=${TRICKY}\nI=${A:x}\n",
        "# c\r\n  J=j\r\n\r\nbare\rK=a#b\n'L'=1\nexport=2\n",
        "A=1\nB 2\n",
        "A=\"never closed\nB=2\n",
        "GOOD=1\nBAD-NAME=2\n",
        "A=0123456789abcdef\nA=${A}${A}\nA=${A}${A}\nA=${A}${A}\nA=${A}${A}\n",
    ];
    let dir = root.join("dotenv");
    std::fs::create_dir_all(&dir)?;
    for (i, d) in dotenvs.iter().enumerate() {
        std::fs::write(dir.join(format!("seed-{i}")), d)?;
    }
    // Bundle recipes: op, path (depth, names), arguments; see src/bundle.rs. From seed-8 on, the
    // content check: a write with 0x08 plants one of PLANTS (index, then offset), names 32-36 are
    // secret by name, and op 5 with 0x08 writes `.jockeysecretsok`.
    let recipes: [&[u8]; 16] = [
        b"",
        &[0, 0, 1, 0x10, 0, 2, 1, 0, 3, 0, 5, 0],
        &[2, 1, 1, 0, 0, 2, 1, 1, 0x10, 0x20, 0],
        &[3, 0, 3, 4, 3, 0, 9, 6],
        &[4, 1, 1, 0, 2, 1, 0],
        &[5, 0, 0, 8, b'*', b'.', b'p', b'y', b'\n', b'!', b'a', b'\n'],
        &[7, 0, 3, 0, 7, 0, 4, 1, 20, 0],
        &[0, 2, 31, 31, 31, 0, 1, 0, 0, 23, 0, 1],
        // An AWS key id in server.py: refused.
        &[0x18, 0, 0, 64, 0, 0, 10, 0],
        // A private key in providers/a: refused.
        &[0x18, 1, 1, 3, 100, 0, 2, 0, 0],
        // Placeholders in server.py and a: packaged.
        &[0x18, 0, 0, 32, 0, 8, 0, 0, 0x18, 0, 3, 32, 0, 11, 5, 0],
        // A key in a, which .jockeysecretsok exempts: packaged.
        &[0x18, 0, 3, 32, 0, 1, 0, 0, 0x0d, 0, 0, 2, b'a', b'\n'],
        // A key in a binary file (the filler holds a NUL): not read.
        &[0x28, 0, 3, 200, 0, 3, 50, 0],
        // token.json, secrets.toml, terraform.tfstate, *.tfstate.backup, client_secret*.json:
        // left out by name.
        &[
            0, 0, 32, 10, 0, 0, 0, 33, 10, 0, 0, 0, 34, 10, 0, 0, 0, 35, 10, 0, 0, 0, 36, 10, 0,
        ],
        // A key in a file .jockeyignore leaves out: not read.
        &[0x18, 0, 3, 32, 0, 3, 0, 0, 5, 0, 0, 2, b'a', b'\n'],
        // A key in a and in the link A -> a: refused for both.
        &[0x18, 0, 3, 32, 0, 5, 0, 0, 3, 0, 4, 1],
    ];
    let dir = root.join("bundle");
    std::fs::create_dir_all(&dir)?;
    for (i, r) in recipes.iter().enumerate() {
        std::fs::write(dir.join(format!("seed-{i}")), r)?;
    }
    println!("seeds written under {}", root.display());
    Ok(())
}
