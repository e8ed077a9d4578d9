//! Properties of the admission decision and the bundle, over generated inputs (proptest):
//! mutation settles after one pass, what it produces validation accepts, an unlabelled object is
//! never touched, JSON Patch paths survive any annotation key, and the canonical tar depends on
//! the files alone (not on mtimes, creation order or umask).

use base64::Engine;
use jockey_core::admission::{Endpoint, Env, Handled, Outcome, handle};
use jockey_core::bundle::{self, Bundle, Collected, Entry};
use jockey_core::claims::ClaimIndex;
use jockey_core::defaults::{
    default_deployment, default_ingress, default_service, patch_between, render_deployment,
    render_ingress, render_service,
};
use jockey_core::names::LABEL_PROJECT;
use jockey_core::policy::{IngressIndex, Policy};
use jockey_core::{Config, ContentHash, ProjectId};
use proptest::prelude::*;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::Read;

fn cfg() -> Config {
    Config::from_lookup(|k| (k == "IMAGE_REGISTRY").then(|| "reg.example".to_string()))
}

fn decide(endpoint: Endpoint, body: &Value) -> Handled {
    let cfg = cfg();
    let policy = Policy::default();
    let index = IngressIndex::new();
    let claims = ClaimIndex::new();
    let env = Env {
        cfg: &cfg,
        policy: &policy,
        index: &index,
        claims: &claims,
        namespaces: &jockey_core::index::NamespaceIndex::new(),
        services: &jockey_core::index::NO_SERVICES,
        images: &jockey_core::image::NoRecords,
    };
    handle(endpoint, &serde_json::to_vec(body).unwrap(), &env).expect("a well-formed review")
}

fn review(kind: &str, op: &str, object: &Value, old: Option<&Value>) -> Value {
    let (group, resource) = match kind {
        "Deployment" => ("apps", "deployments"),
        "Service" => ("", "services"),
        _ => ("networking.k8s.io", "ingresses"),
    };
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "0b1c5a4e-0000-4000-8000-000000000001",
            "kind": { "group": group, "version": "v1", "kind": kind },
            "resource": { "group": group, "version": "v1", "resource": resource },
            "name": object["metadata"]["name"],
            "namespace": "team-a",
            "operation": op,
            "userInfo": { "username": "alice" },
            "object": object,
            "oldObject": old,
            "dryRun": false
        }
    })
}

/// The response's patch applied to `object`; `None` when there is no patch.
fn apply(h: &Handled, object: &Value) -> Option<Value> {
    let out: Value = serde_json::from_slice(&h.to_json()).unwrap();
    let patch = out["response"]["patch"].as_str()?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(patch)
        .unwrap();
    let patch: json_patch::Patch = serde_json::from_slice(&bytes).unwrap();
    let mut obj = object.clone();
    json_patch::patch(&mut obj, &patch).expect("the webhook's patch applies to the object");
    Some(obj)
}

fn project() -> impl Strategy<Value = ProjectId> {
    "[a-z][a-z0-9-]{0,14}[a-z0-9]".prop_filter_map("a project id", |s| ProjectId::parse(&s).ok())
}

/// Any annotation key, including the two characters JSON Pointer escapes (`~`, `/`), `~0`/`~1`
/// literally, and non-ASCII; never the ALB prefix, whose keys validation judges on their own.
fn annotation_key() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9.~/_-]{1,24}",
        "example.com/[a-zA-Z0-9~/._-]{1,16}",
        Just("~0~1/~".to_string()),
        Just("a//b".to_string()),
        Just("ü/😀~".to_string()),
        "\\PC{1,12}",
    ]
    .prop_filter("not an ALB annotation", |k| !k.contains("alb.ingress"))
}

fn annotations() -> impl Strategy<Value = BTreeMap<String, String>> {
    prop::collection::btree_map(annotation_key(), "\\PC{0,16}", 0..6)
}

/// One of the three kinds jockey renders for a project, with extra annotations and labels, as
/// JSON in namespace team-a.
fn labelled_object() -> impl Strategy<Value = (&'static str, Value)> {
    (
        project(),
        prop::sample::select(vec!["Deployment", "Service", "Ingress"]),
        annotations(),
        prop::collection::btree_map("[a-z]{1,8}", "[a-z0-9]{0,8}", 0..3),
        prop::option::of(0i32..5),
        any::<[u8; 32]>(),
    )
        .prop_map(|(p, kind, ann, labels, replicas, digest)| {
            let hash = ContentHash::from_digest(&digest);
            let mut v = match kind {
                "Deployment" => {
                    let mut d = serde_json::to_value(render_deployment(&p, &hash)).unwrap();
                    if let Some(r) = replicas {
                        d["spec"]["replicas"] = json!(r);
                    }
                    d
                }
                "Service" => serde_json::to_value(render_service(&p)).unwrap(),
                _ => serde_json::to_value(render_ingress(&p)).unwrap(),
            };
            v["metadata"]["namespace"] = json!("team-a");
            let meta = v["metadata"].as_object_mut().unwrap();
            let existing = meta
                .entry("annotations")
                .or_insert_with(|| json!({}))
                .as_object_mut()
                .unwrap();
            for (k, val) in ann {
                existing.entry(k).or_insert(json!(val));
            }
            let l = meta["labels"].as_object_mut().unwrap();
            for (k, val) in labels {
                l.entry(k).or_insert(json!(val));
            }
            (kind, v)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The webhook's mutation settles in one pass: its output, sent again (reinvocation, or the
    /// next apply), gets no patch. And the typed defaulting is idempotent on its own.
    #[test]
    fn mutation_is_idempotent((kind, obj) in labelled_object()) {
        let first = decide(Endpoint::Mutate, &review(kind, "CREATE", &obj, None));
        prop_assert_eq!(first.outcome, Outcome::Patched, "{:?}", first.message);
        let once = apply(&first, &obj).unwrap();
        let second = decide(Endpoint::Mutate, &review(kind, "UPDATE", &once, Some(&once)));
        prop_assert_eq!(second.outcome, Outcome::Allowed, "{:?}", second.message);
        prop_assert!(apply(&second, &once).is_none());

        let cfg = cfg();
        match kind {
            "Deployment" => {
                let a = default_deployment(&serde_json::from_value(obj).unwrap(), &cfg).unwrap();
                prop_assert_eq!(default_deployment(&a, &cfg).unwrap(), a);
            }
            "Service" => {
                let a = default_service(&serde_json::from_value(obj).unwrap(), &cfg).unwrap();
                prop_assert_eq!(default_service(&a, &cfg).unwrap(), a);
            }
            _ => {
                let a = default_ingress(&serde_json::from_value(obj).unwrap(), &cfg, "g").unwrap();
                prop_assert_eq!(default_ingress(&a, &cfg, "g").unwrap(), a);
            }
        }
    }

    /// The object the patch produces is one validation accepts, on create and on update.
    #[test]
    fn the_patched_object_passes_validation((kind, obj) in labelled_object()) {
        let mutated = decide(Endpoint::Mutate, &review(kind, "CREATE", &obj, None));
        let after = apply(&mutated, &obj).unwrap();
        for (op, old) in [("CREATE", None), ("UPDATE", Some(&after))] {
            let v = decide(Endpoint::Validate, &review(kind, op, &after, old));
            prop_assert_eq!(v.outcome, Outcome::Allowed, "{} {}: {:?}", kind, op, v.message);
        }
    }

    /// An object with no project label, before or after, is nobody's business: both endpoints
    /// skip it, with no patch, whatever else it carries.
    #[test]
    fn an_unlabelled_object_is_never_touched(
        (kind, obj) in labelled_object(),
        op in prop::sample::select(vec!["CREATE", "UPDATE"]),
    ) {
        let mut obj = obj;
        obj["metadata"]["labels"].as_object_mut().unwrap().remove(LABEL_PROJECT);
        let old = (op == "UPDATE").then(|| obj.clone());
        for endpoint in [Endpoint::Mutate, Endpoint::Validate] {
            let h = decide(endpoint, &review(kind, op, &obj, old.as_ref()));
            prop_assert_eq!(h.outcome, Outcome::Skipped);
            prop_assert!(apply(&h, &obj).is_none());
            prop_assert!(h.claims.is_empty());
        }
    }

    /// patch_between writes a JSON Pointer for every annotation key, whatever it holds: the
    /// patch turns `before` into exactly `after`.
    #[test]
    fn patch_paths_are_escaped_for_every_annotation_key(
        p in project(),
        before in annotations(),
        after in annotations(),
    ) {
        let mut a = render_ingress(&p);
        a.metadata.annotations = Some(before);
        let mut b = render_ingress(&p);
        b.metadata.annotations = Some(after);
        let patch = patch_between(&a, &b);
        let mut v = serde_json::to_value(&a).unwrap();
        json_patch::patch(&mut v, &patch).unwrap();
        prop_assert_eq!(v, serde_json::to_value(&b).unwrap());
    }
}

// ---------------------------------------------------------------------------------------------
// The canonical tar.
// ---------------------------------------------------------------------------------------------

/// Files by path (no path a prefix directory of another), with content and executable bit.
fn tree() -> impl Strategy<Value = BTreeMap<String, (Vec<u8>, bool)>> {
    prop::collection::btree_map(
        "[a-m]{1,6}(/[a-m]{1,6}){0,2}(\\.py)?",
        (prop::collection::vec(any::<u8>(), 0..300), any::<bool>()),
        1..10,
    )
    .prop_map(|mut m| {
        let paths: Vec<String> = m.keys().cloned().collect();
        m.retain(|p, _| !paths.iter().any(|q| q.starts_with(&format!("{p}/"))));
        m
    })
}

/// Writes `files` under a new directory in the given order, with `umask` taken off each mode and
/// the mtime `mtime` seconds after the epoch.
fn write_tree(files: &[(&String, &(Vec<u8>, bool))], umask: u32, mtime: u64) -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(mtime);
    for (path, (data, exec)) in files {
        let full = dir.path().join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(&full, data).unwrap();
        let mode = if *exec { 0o777 } else { 0o666 } & !umask;
        std::fs::set_permissions(&full, std::fs::Permissions::from_mode(mode)).unwrap();
        let f = std::fs::File::options().write(true).open(&full).unwrap();
        f.set_modified(when).unwrap();
    }
    dir
}

fn read_tar(tar: &[u8]) -> BTreeMap<String, (Vec<u8>, bool)> {
    let mut out = BTreeMap::new();
    let mut archive = tar::Archive::new(tar);
    for e in archive.entries().unwrap() {
        let mut e = e.unwrap();
        if !e.header().entry_type().is_file() {
            continue;
        }
        let path = e.path().unwrap().to_string_lossy().to_string();
        let exec = e.header().mode().unwrap() & 0o100 != 0;
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        out.insert(path, (data, exec));
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// The same files give the same tar and hash whatever their mtimes, the order they were
    /// created in and the umask they were written under; the tar reads back to the files.
    #[test]
    fn the_canonical_tar_round_trips_and_ignores_mtime_order_and_umask(
        files in tree(),
        umasks in prop::sample::subsequence(vec![0o002u32, 0o022, 0o027, 0o077], 2),
        mtimes in (0u64..4_000_000_000, 0u64..4_000_000_000),
        seed in any::<u64>(),
    ) {
        let in_order: Vec<_> = files.iter().collect();
        let mut shuffled = in_order.clone();
        // A seeded rotation and reversal: a different creation (and directory) order.
        let n = shuffled.len();
        shuffled.rotate_left((seed as usize) % n);
        if seed & 1 == 1 {
            shuffled.reverse();
        }
        let a = write_tree(&in_order, umasks[0], mtimes.0);
        let b = write_tree(&shuffled, umasks[1], mtimes.1);
        let ba = bundle::bundle_dir(a.path()).unwrap();
        let bb = bundle::bundle_dir(b.path()).unwrap();
        prop_assert_eq!(&ba.hash, &bb.hash);
        prop_assert_eq!(&ba.tar, &bb.tar);
        prop_assert_eq!(&ba.gz, &bb.gz);
        prop_assert_eq!(read_tar(&ba.tar), files.clone());

        // The pure half: the entries in any order pack to the same bundle.
        let mut entries: Vec<Entry> = bundle::collect(a.path()).unwrap().entries;
        let n = entries.len();
        entries.rotate_left((seed as usize >> 8) % n);
        let again = Bundle::from_collected(Collected { entries, secrets_left_out: vec![] }).unwrap();
        prop_assert_eq!(again, ba);
    }
}
