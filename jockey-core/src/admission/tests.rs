use super::*;
use crate::defaults::{
    default_deployment, default_ingress, render_deployment, render_ingress, render_service,
};
use crate::policy::IngressRecord;
use crate::{ContentHash, ProjectId};
use serde_json::json;

const P: &str = "demo";
const REG: &str = "reg.example";

fn cfg() -> Config {
    Config::from_lookup(|k| (k == "IMAGE_REGISTRY").then(|| REG.to_string()))
}

struct World {
    cfg: Config,
    policy: Policy,
    index: IngressIndex,
    claims: ClaimIndex,
}

impl World {
    fn new() -> Self {
        Self {
            cfg: cfg(),
            policy: Policy::default(),
            index: IngressIndex::new(),
            claims: ClaimIndex::new(),
        }
    }
    fn call(&self, endpoint: Endpoint, body: &Value) -> Result<Handled, BadRequest> {
        let bytes = serde_json::to_vec(body).unwrap();
        self.call_bytes(endpoint, &bytes)
    }
    fn call_bytes(&self, endpoint: Endpoint, body: &[u8]) -> Result<Handled, BadRequest> {
        let env = Env {
            cfg: &self.cfg,
            policy: &self.policy,
            index: &self.index,
            claims: &self.claims,
            namespaces: &crate::index::NamespaceIndex::new(),
            services: &crate::index::NO_SERVICES,
            images: &crate::image::NoRecords,
        };
        handle(endpoint, body, &env)
    }
}

fn gvk(kind: &str) -> Value {
    match kind {
        "Deployment" => json!({ "group": "apps", "version": "v1", "kind": "Deployment" }),
        "Service" => json!({ "group": "", "version": "v1", "kind": "Service" }),
        "Ingress" => json!({ "group": "networking.k8s.io", "version": "v1", "kind": "Ingress" }),
        other => json!({ "group": "", "version": "v1", "kind": other }),
    }
}

fn gvr(kind: &str) -> Value {
    match kind {
        "Deployment" => json!({ "group": "apps", "version": "v1", "resource": "deployments" }),
        "Service" => json!({ "group": "", "version": "v1", "resource": "services" }),
        "Ingress" => {
            json!({ "group": "networking.k8s.io", "version": "v1", "resource": "ingresses" })
        }
        _ => json!({ "group": "", "version": "v1", "resource": "pods" }),
    }
}

fn review(kind: &str, op: &str, object: Value, old: Option<Value>) -> Value {
    let name = object
        .pointer("/metadata/name")
        .cloned()
        .unwrap_or(json!(""));
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": gvk(kind),
            "resource": gvr(kind),
            "name": name,
            "namespace": "team-a",
            "operation": op,
            "userInfo": { "username": "alice" },
            "object": object,
            "oldObject": old,
            "dryRun": false
        }
    })
}

fn project() -> ProjectId {
    ProjectId::parse(P).unwrap()
}

fn hash() -> ContentHash {
    ContentHash::from_digest(&[0x12; 32])
}

fn with_ns<T: serde::Serialize>(t: &T) -> Value {
    let mut v = serde_json::to_value(t).unwrap();
    v["metadata"]["namespace"] = json!("team-a");
    v
}

fn response(h: &Handled) -> Value {
    serde_json::from_slice(&h.to_json()).unwrap()
}

/// Applies the response's patch to `object`.
fn patched(h: &Handled, object: &Value) -> Value {
    let r = response(h);
    let mut obj = object.clone();
    if let Some(p) = r["response"]["patch"].as_str() {
        use base64::Engine;
        let bytes = base64::engine::general_purpose::STANDARD.decode(p).unwrap();
        let patch: json_patch::Patch = serde_json::from_slice(&bytes).unwrap();
        json_patch::patch(&mut obj, &patch).unwrap();
        assert_eq!(r["response"]["patchType"], "JSONPatch");
    }
    obj
}

#[test]
fn response_echoes_uid_and_version() {
    let w = World::new();
    let h = w
        .call(
            Endpoint::Mutate,
            &review(
                "Pod",
                "CREATE",
                json!({ "metadata": { "name": "p" } }),
                None,
            ),
        )
        .unwrap();
    let r = response(&h);
    assert_eq!(r["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(r["kind"], "AdmissionReview");
    assert_eq!(r["response"]["uid"], "705ab4f5-6393-11e8-b7cc-42010a800002");
    assert_eq!(r["response"]["allowed"], true);
    assert!(r["response"].get("patch").is_none());
    assert_eq!(h.outcome, Outcome::Skipped);
    assert_eq!(h.kind, "Pod");
}

#[test]
fn bad_bodies_are_bad_requests() {
    let w = World::new();
    for (body, word) in [
        (&b"not json"[..], "not JSON"),
        (&b""[..], "not JSON"),
        (&b"[]"[..], "expected kind AdmissionReview"),
        (
            br#"{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1beta1","request":{}}"#,
            "v1beta1",
        ),
        (
            br#"{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1"}"#,
            "no request",
        ),
        (
            br#"{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":null}"#,
            "no request",
        ),
        (
            br#"{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":{"uid":5}}"#,
            "malformed",
        ),
    ] {
        for e in [Endpoint::Mutate, Endpoint::Validate] {
            let err = w.call_bytes(e, body).unwrap_err();
            assert!(
                err.0.contains(word),
                "{}: {err}",
                String::from_utf8_lossy(body)
            );
        }
    }
}

#[test]
fn unlabelled_objects_are_untouched() {
    let w = World::new();
    let mut d = with_ns(&render_deployment(&project(), &hash()));
    d["metadata"]["labels"] = json!({ "app": "x" });
    for e in [Endpoint::Mutate, Endpoint::Validate] {
        let h = w
            .call(e, &review("Deployment", "CREATE", d.clone(), None))
            .unwrap();
        assert_eq!(h.outcome, Outcome::Skipped);
        assert!(response(&h)["response"].get("patch").is_none());
        assert_eq!(response(&h)["response"]["allowed"], true);
    }
}

#[test]
fn deployment_is_defaulted_and_the_patch_settles() {
    let w = World::new();
    let d = with_ns(&render_deployment(&project(), &hash()));
    let h = w
        .call(
            Endpoint::Mutate,
            &review("Deployment", "CREATE", d.clone(), None),
        )
        .unwrap();
    assert_eq!(h.outcome, Outcome::Patched, "{:?}", h.message);
    let after = patched(&h, &d);
    let want = default_deployment(&serde_json::from_value(d.clone()).unwrap(), &w.cfg).unwrap();
    assert_eq!(after, serde_json::to_value(&want).unwrap());
    assert_eq!(
        after["spec"]["template"]["spec"]["containers"][0]["image"],
        format!("{REG}/hosting/{P}:{}", hash().short())
    );
    // Re-invocation (reinvocationPolicy IfNeeded) and re-apply: no patch.
    let h2 = w
        .call(
            Endpoint::Mutate,
            &review("Deployment", "UPDATE", after.clone(), Some(after.clone())),
        )
        .unwrap();
    assert_eq!(h2.outcome, Outcome::Allowed);
    assert!(response(&h2)["response"].get("patch").is_none());
}

#[test]
fn an_update_that_sets_the_image_moves_the_instance_annotation() {
    // `kubectl set image` to another instance's builder image: the stored object is the old one.
    let w = World::new();
    let old =
        with_ns(&default_deployment(&render_deployment(&project(), &hash()), &w.cfg).unwrap());
    let next = "fedcba9876543210";
    let mut new = old.clone();
    new["spec"]["template"]["spec"]["containers"][0]["image"] =
        json!(format!("{REG}/hosting/{P}:{next}"));
    let h = w
        .call(
            Endpoint::Mutate,
            &review("Deployment", "UPDATE", new.clone(), Some(old.clone())),
        )
        .unwrap();
    assert_eq!(h.outcome, Outcome::Patched, "{:?}", h.message);
    let after = patched(&h, &new);
    assert_eq!(
        after["metadata"]["annotations"]["jockey.agentops.ai/instance"],
        format!("instance-{next}")
    );
    assert_eq!(
        after["spec"]["template"]["spec"]["volumes"][0]["configMap"]["name"],
        format!("instance-{next}")
    );
    // Two places set to two instances: denied with both named.
    let mut both = new.clone();
    both["metadata"]["annotations"]["jockey.agentops.ai/instance"] =
        json!("instance-aaaaaaaaaaaaaaaa");
    let h = w
        .call(
            Endpoint::Mutate,
            &review("Deployment", "UPDATE", both, Some(old)),
        )
        .unwrap();
    assert_eq!(h.outcome, Outcome::Denied);
    let msg = h.message.unwrap_or_default();
    assert!(
        msg.starts_with(&format!(
            "Deployment team-a/{P}: this change names two different instances"
        )),
        "{msg}"
    );
    assert!(
        msg.contains("instance-aaaaaaaaaaaaaaaa") && msg.contains(next),
        "{msg}"
    );
}

#[test]
fn patch_applies_to_objects_with_fields_the_types_do_not_know() {
    let w = World::new();
    let mut d = with_ns(&render_deployment(&project(), &hash()));
    d["spec"]["template"]["spec"]["someFutureField"] = json!({ "x": 1 });
    d["metadata"]["creationTimestamp"] = Value::Null;
    let h = w
        .call(
            Endpoint::Mutate,
            &review("Deployment", "CREATE", d.clone(), None),
        )
        .unwrap();
    assert_eq!(h.outcome, Outcome::Patched);
    let after = patched(&h, &d);
    assert_eq!(
        after["spec"]["template"]["spec"]["someFutureField"],
        json!({ "x": 1 })
    );
}

#[test]
fn defaulting_errors_deny_with_the_message() {
    let w = World {
        cfg: Config::default(),
        ..World::new()
    };
    let d = with_ns(&render_deployment(&project(), &hash()));
    let h = w
        .call(Endpoint::Mutate, &review("Deployment", "CREATE", d, None))
        .unwrap();
    assert_eq!(h.outcome, Outcome::Denied);
    let r = response(&h);
    assert_eq!(r["response"]["allowed"], false);
    let msg = r["response"]["status"]["message"].as_str().unwrap();
    assert!(
        msg.contains("Deployment team-a/demo") && msg.contains("IMAGE_REGISTRY"),
        "{msg}"
    );
    assert_eq!(r["response"]["status"]["code"], 403);
}

#[test]
fn service_and_ingress_are_defaulted() {
    let w = World::new();
    let s = with_ns(&render_service(&project()));
    let h = w
        .call(
            Endpoint::Mutate,
            &review("Service", "CREATE", s.clone(), None),
        )
        .unwrap();
    let after = patched(&h, &s);
    assert_eq!(after["spec"]["ports"][0]["targetPort"], 8080);
    let i = with_ns(&render_ingress(&project()));
    let h = w
        .call(
            Endpoint::Mutate,
            &review("Ingress", "CREATE", i.clone(), None),
        )
        .unwrap();
    let after = patched(&h, &i);
    assert_eq!(after["spec"]["ingressClassName"], "alb");
    assert_eq!(
        after["metadata"]["annotations"][defaults::ALB_GROUP_NAME],
        "alb-deployments"
    );
    assert_eq!(after["spec"]["rules"][0]["host"], "demo.deploy.agentops.ai");
    // And the defaulted Ingress passes validation.
    let h = w
        .call(
            Endpoint::Validate,
            &review("Ingress", "CREATE", after, None),
        )
        .unwrap();
    assert_eq!(h.outcome, Outcome::Allowed, "{:?}", h.message);
}

#[test]
fn ingress_group_comes_from_sharding_and_never_moves() {
    let mut w = World::new();
    w.policy.sharding.capacity = 1;
    let other = {
        let p = ProjectId::parse("other").unwrap();
        let mut i = default_ingress(&render_ingress(&p), &w.cfg, "alb-deployments").unwrap();
        i.metadata.namespace = Some("team-b".into());
        i
    };
    w.index.upsert(IngressRecord::from_ingress(&other));
    let i = with_ns(&render_ingress(&project()));
    let h = w
        .call(
            Endpoint::Mutate,
            &review("Ingress", "CREATE", i.clone(), None),
        )
        .unwrap();
    let after = patched(&h, &i);
    assert_eq!(
        after["metadata"]["annotations"][defaults::ALB_GROUP_NAME],
        "alb-deployments-2"
    );
    // An update whose new version lost the annotation keeps the old group, even though the
    // first group now has room.
    w.index.remove("team-b", "ing-other");
    let h = w
        .call(
            Endpoint::Mutate,
            &review("Ingress", "UPDATE", i.clone(), Some(after.clone())),
        )
        .unwrap();
    let again = patched(&h, &i);
    assert_eq!(
        again["metadata"]["annotations"][defaults::ALB_GROUP_NAME],
        "alb-deployments-2"
    );
}

#[test]
fn validation_denies_with_403_and_message() {
    let w = World::new();
    let mut s = with_ns(&render_service(&project()));
    s["spec"]["type"] = json!("LoadBalancer");
    let h = w
        .call(Endpoint::Validate, &review("Service", "CREATE", s, None))
        .unwrap();
    assert_eq!(h.outcome, Outcome::Denied);
    let r = response(&h);
    assert_eq!(r["response"]["allowed"], false);
    assert_eq!(r["response"]["status"]["code"], 403);
    let msg = r["response"]["status"]["message"].as_str().unwrap();
    assert!(
        msg.starts_with("Service team-a/svc-demo denied by jockey policy: spec.type"),
        "{msg}"
    );
}

#[test]
fn label_removal_on_update_is_validated_but_not_mutated() {
    let w = World::new();
    let old = with_ns(&render_service(&project()));
    let mut new = old.clone();
    new["metadata"]["labels"] = json!({});
    let h = w
        .call(
            Endpoint::Mutate,
            &review("Service", "UPDATE", new.clone(), Some(old.clone())),
        )
        .unwrap();
    assert_eq!(h.outcome, Outcome::Allowed);
    let h = w
        .call(
            Endpoint::Validate,
            &review("Service", "UPDATE", new, Some(old)),
        )
        .unwrap();
    assert_eq!(h.outcome, Outcome::Denied);
}

#[test]
fn warnings_are_returned() {
    let w = World::new();
    let mut s = with_ns(&default_service(&render_service(&project()), &w.cfg).unwrap());
    s["spec"]["selector"] = json!({ "app": "someone-else" });
    let h = w
        .call(Endpoint::Validate, &review("Service", "CREATE", s, None))
        .unwrap();
    assert_eq!(h.outcome, Outcome::Allowed);
    assert_eq!(
        response(&h)["response"]["warnings"],
        json!([format!(
            "spec.selector does not select app: {P}; the Service may not reach the project's pods"
        )])
    );
}

#[test]
fn deletes_subresources_and_objectless_requests_are_skipped() {
    let w = World::new();
    let d = with_ns(&render_deployment(&project(), &hash()));
    let h = w
        .call(
            Endpoint::Validate,
            &review("Deployment", "DELETE", Value::Null, Some(d.clone())),
        )
        .unwrap();
    assert_eq!(h.outcome, Outcome::Skipped);
    let mut r = review("Deployment", "UPDATE", d.clone(), Some(d));
    r["request"]["subResource"] = json!("scale");
    assert_eq!(
        w.call(Endpoint::Mutate, &r).unwrap().outcome,
        Outcome::Skipped
    );
}

#[test]
fn a_known_kind_with_an_unreadable_object_is_denied_not_a_panic() {
    let w = World::new();
    let d = json!({ "metadata": { "name": "x", "labels": { LABEL_PROJECT: P } }, "spec": { "replicas": "many" } });
    for e in [Endpoint::Mutate, Endpoint::Validate] {
        let h = w
            .call(e, &review("Deployment", "CREATE", d.clone(), None))
            .unwrap();
        assert_eq!(h.outcome, Outcome::Denied);
        assert!(
            h.message
                .unwrap()
                .contains("could not be read as Deployment")
        );
    }
}

/// A deterministic generator for the fuzz tests.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

/// Every JSON pointer in `v`.
fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    out.push(at.clone());
    match v {
        Value::Object(m) => {
            for (k, c) in m {
                pointers(
                    c,
                    format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")),
                    out,
                );
            }
        }
        Value::Array(a) => {
            for (i, c) in a.iter().enumerate() {
                pointers(c, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// What every answer to any input must be, whatever the input: a refusal (400) that says what
/// to send, or a review echoing the request's uid whose outcome, `allowed`, message and patch
/// agree, the patch (from `/mutate` only) applying to the request's object. Returns the outcome
/// (`None` for a 400).
fn answer_holds(
    endpoint: Endpoint,
    input: &[u8],
    answer: Result<Handled, BadRequest>,
) -> Option<Outcome> {
    let shown = || String::from_utf8_lossy(&input[..input.len().min(300)]).to_string();
    let handled = match answer {
        Err(bad) => {
            assert!(
                bad.0.contains("AdmissionReview") || bad.0.contains("request"),
                "a 400 that does not say what to send: {:?} for {}",
                bad.0,
                shown()
            );
            return None;
        }
        Ok(h) => h,
    };
    let out: Value = serde_json::from_slice(&handled.to_json()).expect("the answer is JSON");
    assert_eq!(out["kind"], "AdmissionReview", "{out}");
    assert_eq!(out["apiVersion"], "admission.k8s.io/v1", "{out}");
    let request: Value = serde_json::from_slice(input).expect("an answered body was JSON");
    assert_eq!(
        out["response"]["uid"],
        request["request"]["uid"],
        "the uid is not echoed for {}",
        shown()
    );
    let allowed = out["response"]["allowed"].as_bool();
    if handled.outcome == Outcome::Denied {
        assert_eq!(allowed, Some(false), "{out}");
        let msg = out["response"]["status"]["message"].as_str().unwrap_or("");
        assert!(!msg.is_empty(), "a denial without a message: {out}");
    } else {
        assert_eq!(allowed, Some(true), "{out}");
    }
    let patch = out["response"]["patch"].as_str();
    assert_eq!(
        patch.is_some(),
        handled.outcome == Outcome::Patched,
        "patch and outcome disagree: {out}"
    );
    if let Some(patch) = patch {
        assert_eq!(
            endpoint,
            Endpoint::Mutate,
            "/validate returned a patch: {out}"
        );
        use base64::Engine;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(patch)
            .expect("the patch is base64");
        let patch: json_patch::Patch =
            serde_json::from_slice(&bytes).expect("the patch is a JSON Patch");
        let mut object = request["request"]["object"].clone();
        json_patch::patch(&mut object, &patch).unwrap_or_else(|e| {
            panic!(
                "the patch does not apply to the request's object: {e}\n{}",
                String::from_utf8_lossy(&bytes)
            )
        });
    }
    Some(handled.outcome)
}

#[test]
fn every_answer_to_a_damaged_review_is_well_formed() {
    let w = World::new();
    let samples = [
        review(
            "Deployment",
            "CREATE",
            with_ns(&render_deployment(&project(), &hash())),
            None,
        ),
        review(
            "Service",
            "CREATE",
            with_ns(&render_service(&project())),
            None,
        ),
        review(
            "Ingress",
            "UPDATE",
            with_ns(&render_ingress(&project())),
            Some(with_ns(&render_ingress(&project()))),
        ),
    ];
    let replacements = [
        Value::Null,
        json!(0),
        json!(-1),
        json!(1e300),
        json!(""),
        json!("jockey:auto"),
        json!([]),
        json!({}),
        json!([null]),
        json!({ LABEL_PROJECT: "x" }),
        json!(true),
    ];
    // How many answers of each kind were checked: the damage must reach every branch (a 400,
    // each outcome), or the checks above would hold vacuously.
    let mut seen: std::collections::BTreeMap<&str, usize> = Default::default();
    let mut check = |e: Endpoint, bytes: &[u8]| {
        let kind = match answer_holds(e, bytes, w.call_bytes(e, bytes)) {
            None => "400",
            Some(o) => o.as_str(),
        };
        *seen.entry(kind).or_default() += 1;
    };
    for sample in &samples {
        // Every node replaced by every kind of value.
        let mut ptrs = Vec::new();
        pointers(sample, String::new(), &mut ptrs);
        for p in ptrs.iter().filter(|p| !p.is_empty()) {
            for r in &replacements {
                let mut v = sample.clone();
                if let Some(slot) = v.pointer_mut(p) {
                    *slot = r.clone();
                }
                let bytes = serde_json::to_vec(&v).unwrap();
                for e in [Endpoint::Mutate, Endpoint::Validate] {
                    check(e, &bytes);
                }
            }
        }
        // Every truncation and random byte flips.
        let bytes = serde_json::to_vec(sample).unwrap();
        for n in 0..bytes.len() {
            check(Endpoint::Mutate, &bytes[..n]);
        }
        let mut rng = Lcg(7);
        for _ in 0..2000 {
            let mut b = bytes.clone();
            for _ in 0..(1 + rng.next() % 4) {
                let i = (rng.next() as usize) % b.len();
                b[i] = (rng.next() % 256) as u8;
            }
            check(Endpoint::Validate, &b);
            check(Endpoint::Mutate, &b);
        }
    }
    for kind in ["400", "allowed", "patched", "denied", "skipped"] {
        assert!(
            seen.get(kind).copied().unwrap_or(0) > 0,
            "no {kind} answer among {seen:?}"
        );
    }
    // Deeply nested input hits serde_json's recursion limit, not the stack.
    let deep = "[".repeat(100_000);
    assert!(w.call_bytes(Endpoint::Mutate, deep.as_bytes()).is_err());
}

#[test]
fn decisions_hold_with_ten_thousand_indexed_ingresses() {
    let mut w = World::new();
    for i in 0..10_000 {
        let p = ProjectId::parse(&format!("p{i}")).unwrap();
        let mut ing = default_ingress(&render_ingress(&p), &w.cfg, "alb-deployments").unwrap();
        ing.metadata.namespace = Some(format!("ns-{i}"));
        w.index.upsert(IngressRecord::from_ingress(&ing));
    }
    // The shared group is far past its capacity: a new project goes to the shard placement
    // chooses.
    let group = w.policy.place(&w.cfg, &w.index, P);
    assert_eq!(group, "alb-deployments-2");
    let i = with_ns(&default_ingress(&render_ingress(&project()), &w.cfg, &group).unwrap());
    let body = serde_json::to_vec(&review("Ingress", "CREATE", i, None)).unwrap();
    for _ in 0..20 {
        let h = w.call_bytes(Endpoint::Validate, &body).unwrap();
        assert_eq!(h.outcome, Outcome::Allowed, "{:?}", h.message);
        let h = w.call_bytes(Endpoint::Mutate, &body).unwrap();
        assert_eq!(h.outcome, Outcome::Allowed, "{:?}", h.message);
    }
}

// --- claims --------------------------------------------------------------------------------

fn validated_ingress(w: &World, op: &str, dry_run: bool) -> Handled {
    let ing =
        with_ns(&default_ingress(&render_ingress(&project()), &w.cfg, "alb-deployments").unwrap());
    let mut r = review(
        "Ingress",
        op,
        ing.clone(),
        (op == "UPDATE").then(|| ing.clone()),
    );
    r["request"]["dryRun"] = json!(dry_run);
    w.call(Endpoint::Validate, &r).unwrap()
}

#[test]
fn an_allowed_create_asks_for_its_project_and_host_claims() {
    let w = World::new();
    let h = validated_ingress(&w, "CREATE", false);
    assert_eq!(h.outcome, Outcome::Allowed);
    let host = format!("{P}.deploy.agentops.ai");
    assert_eq!(
        h.claims,
        vec![
            crate::claims::Claim::project(P, "team-a"),
            crate::claims::Claim::host(&host, P, "team-a")
        ]
    );
    // A dry run has no side effects: nothing is claimed.
    assert!(validated_ingress(&w, "CREATE", true).claims.is_empty());
    // Mutation never claims.
    let ing = with_ns(&render_ingress(&project()));
    let h = w
        .call(Endpoint::Mutate, &review("Ingress", "CREATE", ing, None))
        .unwrap();
    assert!(h.claims.is_empty());
}

#[test]
fn an_update_asks_only_for_claims_the_cache_does_not_show_held() {
    let mut w = World::new();
    let host = format!("{P}.deploy.agentops.ai");
    // Nothing cached (a project from before claims): both.
    assert_eq!(validated_ingress(&w, "UPDATE", false).claims.len(), 2);
    for claim in [
        crate::claims::Claim::project(P, "team-a"),
        crate::claims::Claim::host(&host, P, "team-a"),
    ] {
        let lease = claim.to_lease(
            "jockey-system",
            k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(
                k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
            ),
        );
        w.claims.upsert(&lease);
    }
    assert!(validated_ingress(&w, "UPDATE", false).claims.is_empty());
    // A create still goes to the API server: the cache may be behind a release.
    assert_eq!(validated_ingress(&w, "CREATE", false).claims.len(), 2);
}

#[test]
fn losing_a_claim_turns_the_answer_into_a_denial_naming_the_winner() {
    let w = World::new();
    let mut h = validated_ingress(&w, "CREATE", false);
    let want = h.claims[0].clone();
    let live = crate::claims::Claim::project(P, "team-b");
    h.lose_claim(&want, &live);
    assert_eq!(h.outcome, Outcome::Denied);
    assert!(h.claims.is_empty());
    let r = response(&h);
    assert_eq!(r["response"]["allowed"], false);
    assert_eq!(r["response"]["status"]["code"], 403);
    let msg = r["response"]["status"]["message"].as_str().unwrap();
    assert!(
        msg.contains(&format!(
            "project \"{P}\" already belongs to namespace team-b"
        )) && msg.contains("fix: deploy project"),
        "{msg}"
    );
    let mut h = validated_ingress(&w, "CREATE", false);
    let want = h.claims[1].clone();
    h.fail_claim(&want, "the server is down");
    let r = response(&h);
    let msg = r["response"]["status"]["message"].as_str().unwrap();
    assert!(
        msg.contains("could not record the host claim") && msg.contains("the server is down"),
        "{msg}"
    );
}

#[test]
fn claims_come_with_what_the_api_server_must_show_before_they_are_written() {
    use crate::claims::Evidence;
    let mut w = World::new();
    let name = format!("ing-{P}");
    // A CREATE: the namespace; an UPDATE: the object the review names, labelled for the project.
    let h = validated_ingress(&w, "CREATE", false);
    assert_eq!(
        h.evidence,
        Some(Evidence::Namespace {
            namespace: "team-a".into()
        })
    );
    let h = validated_ingress(&w, "UPDATE", false);
    assert_eq!(
        h.evidence,
        Some(Evidence::Object {
            kind: "Ingress".into(),
            namespace: "team-a".into(),
            name: name.clone(),
            project: P.into(),
        })
    );
    // Nothing to write, nothing to show: a dry run, or an update whose claims the cache holds.
    assert_eq!(validated_ingress(&w, "CREATE", true).evidence, None);
    let host = format!("{P}.deploy.agentops.ai");
    for claim in [
        crate::claims::Claim::project(P, "team-a"),
        crate::claims::Claim::host(&host, P, "team-a"),
    ] {
        let at = k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(
            k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
        );
        w.claims.upsert(&claim.to_lease("jockey-system", at));
    }
    assert_eq!(validated_ingress(&w, "UPDATE", false).evidence, None);
    // Refused for want of it: a denial naming the cause and the fix, and nothing left to write.
    let mut h = validated_ingress(&w, "CREATE", false);
    h.refuse_unproven_claim("namespace team-a does not exist in the API server");
    assert_eq!(h.outcome, Outcome::Denied);
    assert!(h.claims.is_empty() && h.evidence.is_none());
    let r = response(&h);
    assert_eq!(r["response"]["allowed"], false);
    assert_eq!(r["response"]["status"]["code"], 403);
    let msg = r["response"]["status"]["message"].as_str().unwrap();
    assert!(
        msg.starts_with(&format!(
            "Ingress team-a/{name}: namespace team-a does not exist in the API server, so jockey-webhook records no claim"
        )) && msg.contains("fix: create the object through the API server"),
        "{msg}"
    );
}
