//! Object-by-object comparison of two renderings of an installation (helm_chart.rs): what is
//! left out of it, and why, is in helm_chart.rs's module doc.

use anyhow::{Context, Result, bail, ensure};
use serde_json::{Value, json};
use std::collections::BTreeMap;

pub fn docs(text: &str) -> Result<Vec<Value>> {
    use serde::Deserialize;
    let mut out = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(text) {
        let v = Value::deserialize(doc).context("parsing rendered YAML")?;
        if !v.is_null() {
            out.push(v);
        }
    }
    Ok(out)
}

pub type Key = (String, String, String);

fn key(o: &Value) -> Key {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    (
        s(&o["kind"]),
        s(&o["metadata"]["namespace"]),
        s(&o["metadata"]["name"]),
    )
}

fn remove(v: &mut Value, pointer: &str, field: &str) {
    if let Some(Value::Object(m)) = v.pointer_mut(pointer) {
        m.remove(field);
    }
}

/// Every string equal to a generated ConfigMap's hashed name becomes the unhashed one.
fn unhash(v: &mut Value, hashed: &BTreeMap<String, String>) {
    match v {
        Value::String(s) => {
            if let Some(base) = hashed.get(s.as_str()) {
                *s = base.clone();
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| unhash(x, hashed)),
        Value::Object(m) => m.values_mut().for_each(|x| unhash(x, hashed)),
        _ => {}
    }
}

/// The objects keyed by (kind, namespace, name), with what the module doc lists left out.
pub fn normalize(objects: Vec<Value>) -> Result<BTreeMap<Key, Value>> {
    // kustomize's configMapGenerator names end in -<10 characters of hash>.
    let hashed: BTreeMap<String, String> = objects
        .iter()
        .filter(|o| o["kind"] == "ConfigMap")
        .filter_map(|o| o["metadata"]["name"].as_str())
        .filter_map(|n| {
            let (base, hash) = n.rsplit_once('-')?;
            (hash.len() == 10
                && hash
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
                && ["config", "policy"].iter().any(|s| base.ends_with(s)))
            .then(|| (n.to_string(), base.to_string()))
        })
        .collect();
    let defaults = jockey_core::Config::from_lookup(|_| None);
    let mut out = BTreeMap::new();
    for mut o in objects {
        unhash(&mut o, &hashed);
        // kustomize's `namespace:` also lands on kinds it does not know to be cluster-scoped;
        // the API server drops it there.
        if o["kind"] == "ValidatingAdmissionPolicy"
            || o["kind"] == "ValidatingAdmissionPolicyBinding"
        {
            remove(&mut o, "/metadata", "namespace");
        }
        let kind = o["kind"].as_str().unwrap_or_default().to_string();
        let name = o["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if let Some(Value::Object(labels)) = o.pointer_mut("/metadata/labels") {
            for l in [
                "app.kubernetes.io/managed-by",
                "helm.sh/chart",
                "app.kubernetes.io/instance",
                "app.kubernetes.io/version",
            ] {
                labels.remove(l);
            }
            if kind == "ClusterRole" && name == "jockey-tenant" {
                labels.remove("app.kubernetes.io/name");
            }
        }
        remove(&mut o, "/metadata/annotations", "helm.sh/resource-policy");
        remove(
            &mut o,
            "/spec/template/metadata/annotations",
            "jockey.agentops.ai/config-sha256",
        );
        for p in [
            "/metadata/annotations",
            "/spec/template/metadata/annotations",
        ] {
            if o.pointer(p)
                .is_some_and(|a| a.as_object().is_some_and(|m| m.is_empty()))
            {
                let (parent, field) = p.rsplit_once('/').unwrap_or_default();
                remove(&mut o, parent, field);
            }
        }
        match kind.as_str() {
            "Secret" => {
                remove(&mut o, "", "data");
                remove(&mut o, "/metadata", "annotations");
            }
            "MutatingWebhookConfiguration" | "ValidatingWebhookConfiguration" => {
                if let Some(Value::Array(hooks)) = o.get_mut("webhooks") {
                    for h in hooks {
                        remove(h, "/clientConfig", "caBundle");
                    }
                }
            }
            "ConfigMap" => {
                if let Some(Value::String(text)) = o.pointer("/data/policy.yaml").cloned() {
                    let parsed: Value = serde_yaml::from_str(&text)
                        .with_context(|| format!("parsing policy.yaml of ConfigMap {name}"))?;
                    o["data"]["policy.yaml"] = parsed;
                }
                // The broker's pinned images: empty in broker.env means the default install writes.
                for (k, default) in [
                    ("KANIKO_IMAGE", &defaults.kaniko_image),
                    ("BASE_IMAGE", &defaults.base_image),
                ] {
                    if let Some(v) = o.pointer_mut(&format!("/data/{k}"))
                        && v == ""
                    {
                        *v = json!(default);
                    }
                }
            }
            _ => {}
        }
        let k = key(&o);
        if out.insert(k.clone(), o).is_some() {
            bail!("{k:?} rendered twice");
        }
    }
    Ok(out)
}

/// The first place two values differ, as a JSON pointer with both sides.
fn first_difference(a: &Value, b: &Value, at: String) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for k in x.keys().chain(y.keys()) {
                let p = format!("{at}/{k}");
                match (x.get(k), y.get(k)) {
                    (Some(l), Some(r)) => {
                        if let Some(d) = first_difference(l, r, p) {
                            return Some(d);
                        }
                    }
                    (l, r) => return Some(format!("{p}: {l:?} vs {r:?}")),
                }
            }
            None
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (l, r))| first_difference(l, r, format!("{at}/{i}"))),
        _ => (a != b).then(|| format!("{at}: {a} vs {b}")),
    }
}

/// Fails naming every object one side has and the other lacks, and the first difference of
/// each object both have; `only_left` lists what the chart may render beyond the other side.
pub fn same(
    what: &str,
    chart: &BTreeMap<Key, Value>,
    other: &BTreeMap<Key, Value>,
    only_chart: &[Key],
) -> Result<()> {
    let mut problems = Vec::new();
    for (k, v) in chart {
        match other.get(k) {
            Some(o) => {
                if let Some(d) = first_difference(v, o, String::new()) {
                    problems.push(format!("{k:?} differs at {d} (chart vs {what})"));
                }
            }
            None if only_chart.contains(k) => {}
            None => problems.push(format!("{k:?} is rendered by the chart, not by {what}")),
        }
    }
    for k in other.keys().filter(|k| !chart.contains_key(*k)) {
        problems.push(format!("{k:?} is rendered by {what}, not by the chart"));
    }
    ensure!(
        problems.is_empty(),
        "charts/jockey and {what} have drifted apart:\n  {}",
        problems.join("\n  ")
    );
    Ok(())
}
