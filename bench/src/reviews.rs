//! The AdmissionReview bodies every webhook under test receives (the same bytes for jockey and
//! each peer), and jockey's own answer to them: the object after its patch, which the peers'
//! answers are checked against so that every webhook is measured doing the same work.

use anyhow::{Context, Result, bail};
use jockey_core::Config;
use jockey_core::admission::{self, Endpoint, Env};
use jockey_core::claims::ClaimIndex;
use jockey_core::defaults::{render_deployment, render_ingress};
use jockey_core::names::{ContentHash, ProjectId};
use jockey_core::policy::{IngressIndex, Policy};
use serde_json::{Value, json};
use std::path::Path;

/// The registry the webhooks fill `jockey:auto` images from (every peer uses the same).
pub const REGISTRY: &str = "registry.local:5000";
pub const NAMESPACE: &str = "bench";

pub fn config() -> Config {
    Config::from_lookup(|k| (k == "IMAGE_REGISTRY").then(|| REGISTRY.to_string()))
}

/// An `admission.k8s.io/v1` review of a CREATE of `object`. Dry-run, so that jockey answers
/// from its caches alone and does not record claims (Leases) through the API server: direct
/// load measures request handling, not etcd writes.
pub fn review(uid: &str, kind: (&str, &str, &str), resource: &str, object: &Value) -> Value {
    let (group, version, k) = kind;
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": group, "version": version, "kind": k},
            "resource": {"group": group, "version": version, "resource": resource},
            "requestKind": {"group": group, "version": version, "kind": k},
            "requestResource": {"group": group, "version": version, "resource": resource},
            "name": object.pointer("/metadata/name").cloned().unwrap_or(Value::Null),
            "namespace": NAMESPACE,
            "operation": "CREATE",
            "userInfo": {"username": "bench", "groups": ["system:authenticated"]},
            "object": object,
            "oldObject": null,
            "dryRun": true,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"}
        }
    })
}

/// A labelled Deployment as `deploy` renders it (project label, instance annotation,
/// `jockey:auto` image) and a labelled Ingress with an empty spec: both need every default.
pub fn objects(project: &str) -> Result<(Value, Value)> {
    let p = ProjectId::parse(project).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let hash = ContentHash::from_digest(&[7u8; 32]);
    let mut d = serde_json::to_value(render_deployment(&p, &hash))?;
    d["apiVersion"] = json!("apps/v1");
    d["kind"] = json!("Deployment");
    d["metadata"]["namespace"] = json!(NAMESPACE);
    let mut i = serde_json::to_value(render_ingress(&p))?;
    i["apiVersion"] = json!("networking.k8s.io/v1");
    i["kind"] = json!("Ingress");
    i["metadata"]["namespace"] = json!(NAMESPACE);
    Ok((d, i))
}

/// Writes `deployment.review.json`, `ingress.review.json` (for the mutating webhooks), beside them
/// jockey's patched objects `*.expected.json`, and `ingress-validate.review.json` (the defaulted
/// Ingress, for the validating webhooks).
pub fn write(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let (d, i) = objects("bench-p0")?;
    let cfg = config();
    let policy = Policy::default();
    let index = IngressIndex::new();
    let claims = ClaimIndex::new();
    let namespaces = jockey_core::index::NamespaceIndex::new();
    let env = Env {
        cfg: &cfg,
        policy: &policy,
        index: &index,
        claims: &claims,
        namespaces: &namespaces,
        services: &jockey_core::index::NO_SERVICES,
        images: &jockey_core::image::NoRecords,
    };
    for (name, kind, resource, obj) in [
        (
            "deployment",
            ("apps", "v1", "Deployment"),
            "deployments",
            &d,
        ),
        (
            "ingress",
            ("networking.k8s.io", "v1", "Ingress"),
            "ingresses",
            &i,
        ),
    ] {
        let body = serde_json::to_vec(&review(
            "0b5e1a2c-0000-4000-8000-000000000001",
            kind,
            resource,
            obj,
        ))?;
        std::fs::write(dir.join(format!("{name}.review.json")), &body)?;
        let h =
            admission::handle(Endpoint::Mutate, &body, &env).map_err(|e| anyhow::anyhow!("{e}"))?;
        let out: Value = serde_json::from_slice(&h.to_json())?;
        let patched =
            apply_answer(obj, &out).with_context(|| format!("jockey's answer to {name}"))?;
        std::fs::write(
            dir.join(format!("{name}.expected.json")),
            serde_json::to_vec_pretty(&patched)?,
        )?;
        if name == "ingress" {
            // What a validating webhook sees: the Ingress after the mutating webhooks, its host
            // set, checked for uniqueness against every cached Ingress.
            let body = review(
                "0b5e1a2c-0000-4000-8000-000000000002",
                kind,
                resource,
                &patched,
            );
            std::fs::write(
                dir.join("ingress-validate.review.json"),
                serde_json::to_vec(&body)?,
            )?;
        }
    }
    Ok(())
}

/// Times the decision alone on each review of `dir`, as the webhook makes it (parse, decide,
/// encode), with an index of 10,000 Ingresses for the validating review.
pub fn decide(dir: &Path) -> Result<()> {
    use jockey_core::policy::IngressRecord;
    use std::time::Instant;
    let cfg = config();
    let policy = Policy::default();
    let mut index = IngressIndex::new();
    for i in 0..10_000 {
        let (_, ing) = objects(&format!("s{i}"))?;
        let body = serde_json::to_vec(&review(
            "u",
            ("networking.k8s.io", "v1", "Ingress"),
            "ingresses",
            &ing,
        ))?;
        let empty = IngressIndex::new();
        let claims = ClaimIndex::new();
        let namespaces = jockey_core::index::NamespaceIndex::new();
        let env = Env {
            cfg: &cfg,
            policy: &policy,
            index: &empty,
            claims: &claims,
            namespaces: &namespaces,
            services: &jockey_core::index::NO_SERVICES,
            images: &jockey_core::image::NoRecords,
        };
        let h =
            admission::handle(Endpoint::Mutate, &body, &env).map_err(|e| anyhow::anyhow!("{e}"))?;
        let out: Value = serde_json::from_slice(&h.to_json())?;
        let patched: k8s_openapi::api::networking::v1::Ingress =
            serde_json::from_value(apply_answer(&ing, &out)?)?;
        index.upsert(IngressRecord::from_ingress(&patched));
    }
    let claims = ClaimIndex::new();
    let namespaces = jockey_core::index::NamespaceIndex::new();
    let env = Env {
        cfg: &cfg,
        policy: &policy,
        index: &index,
        claims: &claims,
        namespaces: &namespaces,
        services: &jockey_core::index::NO_SERVICES,
        images: &jockey_core::image::NoRecords,
    };
    for (file, ep) in [
        ("deployment.review.json", Endpoint::Mutate),
        ("ingress.review.json", Endpoint::Mutate),
        ("ingress-validate.review.json", Endpoint::Validate),
    ] {
        let body = std::fs::read(dir.join(file))?;
        let n = 20_000;
        let start = Instant::now();
        let cpu0 = thread_cpu_seconds();
        for _ in 0..n {
            let h = admission::handle(ep, &body, &env).map_err(|e| anyhow::anyhow!("{e}"))?;
            std::hint::black_box(h.to_json());
        }
        let us = start.elapsed().as_secs_f64() * 1e6 / f64::from(n);
        // On a shared machine the wall time includes waiting for the core; the CPU time does not.
        let cpu_us = thread_cpu_seconds()
            .zip(cpu0)
            .map(|(b, a)| (b - a) * 1e6 / f64::from(n));
        println!(
            "{{\"review\": \"{file}\", \"endpoint\": \"{}\", \"us_per_review\": {us:.2}, \"cpu_us_per_review\": {}}}",
            ep.as_str(),
            cpu_us.map_or("null".to_string(), |c| format!("{c:.2}"))
        );
    }
    Ok(())
}

/// This thread's CPU time (user + system) from /proc, in seconds (USER_HZ is 100 on Linux).
fn thread_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

/// The object after a mutating answer's (base64 JSON) patch; the answer must allow.
pub fn apply_answer(object: &Value, answer: &Value) -> Result<Value> {
    use base64::Engine;
    let resp = answer
        .get("response")
        .context("no response in the answer")?;
    if resp.get("allowed") != Some(&Value::Bool(true)) {
        bail!("the answer does not allow: {resp}");
    }
    let mut out = object.clone();
    if let Some(p) = resp.get("patch").and_then(Value::as_str) {
        let bytes = base64::engine::general_purpose::STANDARD.decode(p)?;
        let patch: json_patch::Patch = serde_json::from_slice(&bytes)?;
        json_patch::patch(&mut out, &patch)?;
    }
    Ok(out)
}
