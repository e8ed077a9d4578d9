//! Raw bytes into the webhook's whole decision (decode, mutate or validate, encode), on both
//! endpoints, against a world with a policy, indexed Ingresses and claims.
//!
//! Invariants: never a panic; a refused body is a 400 with a message; an answer is an
//! AdmissionReview echoing the request's uid, and a patch in it is base64 JSON Patch that applies
//! to the object the request carried (the API server would otherwise fail the request).

use base64::Engine;
use jockey_core::admission::{Endpoint, Env, Outcome, handle};
use jockey_core::claims::{Claim, ClaimIndex};
use jockey_core::defaults::{default_ingress, render_ingress};
use jockey_core::policy::{IngressIndex, Policy};
use jockey_core::{Config, ProjectId};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use serde_json::Value;
use std::sync::OnceLock;

struct World {
    cfg: Config,
    policy: Policy,
    index: IngressIndex,
    claims: ClaimIndex,
}

/// One world for every input: building it costs more than a decision.
fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let cfg = Config::from_lookup(|k| match k {
            "IMAGE_REGISTRY" => Some("reg.example".into()),
            "DEPLOYMENT_DOMAIN" => Some("agents.example".into()),
            _ => None,
        });
        let policy = Policy::parse(
            "fuzz-policy.yaml",
            "extraHosts:\n  demo: [www.demo.example, \"*.demo.example\"]\nsharding: {enabled: true, capacity: 2}\nmaxRulesPerProject: 2\n",
        )
        .unwrap_or_default();
        // Other tenants already placed, so that host, claim and sharding rules have something to
        // refuse.
        let mut ingresses = Vec::new();
        for (i, name) in ["other", "taken", "www"].iter().enumerate() {
            let Ok(p) = ProjectId::parse(name) else {
                continue;
            };
            let mut ing = render_ingress(&p);
            ing.metadata.namespace = Some(format!("team-{i}"));
            if let Ok(d) = default_ingress(&ing, &cfg, "jockey-shared") {
                ingresses.push(d);
            }
        }
        let index = IngressIndex::from_ingresses(&ingresses);
        let mut claims = ClaimIndex::new();
        for r in index.records() {
            let Some(project) = &r.project else { continue };
            let mut held = vec![Claim::project(project, &r.namespace)];
            held.extend(r.hosts.iter().map(|h| Claim::host(h, project, &r.namespace)));
            for claim in held {
                claims.upsert(&claim.to_lease("jockey-system", MicroTime(Timestamp::UNIX_EPOCH)));
            }
        }
        World {
            cfg,
            policy,
            index,
            claims,
        }
    })
}

pub fn run(data: &[u8]) {
    let w = world();
    let env = Env {
        cfg: &w.cfg,
        policy: &w.policy,
        index: &w.index,
        claims: &w.claims,
        namespaces: &jockey_core::index::NamespaceIndex::from_pairs([
            ("team-a", "demo"),
            ("team-0", "other"),
        ]),
        services: &jockey_core::index::NO_SERVICES,
        images: &jockey_core::image::NoRecords,
    };
    for endpoint in [Endpoint::Mutate, Endpoint::Validate] {
        let handled = match handle(endpoint, data, &env) {
            Ok(h) => h,
            Err(bad) => {
                assert!(!bad.0.is_empty(), "a 400 without a message");
                continue;
            }
        };
        let body = handled.to_json();
        let out: Value = serde_json::from_slice(&body).expect("the response body is JSON");
        assert_eq!(out["kind"], "AdmissionReview", "{out}");
        assert_eq!(out["apiVersion"], "admission.k8s.io/v1", "{out}");
        let request: Value = serde_json::from_slice(data).expect("an answered body was JSON");
        assert_eq!(
            out["response"]["uid"], request["request"]["uid"],
            "the uid is not echoed"
        );
        let allowed = out["response"]["allowed"].as_bool();
        match handled.outcome {
            Outcome::Denied => {
                assert_eq!(allowed, Some(false), "{out}");
                let msg = out["response"]["status"]["message"].as_str().unwrap_or("");
                assert!(!msg.is_empty(), "a denial without a message: {out}");
            }
            _ => assert_eq!(allowed, Some(true), "{out}"),
        }
        let patch = out["response"]["patch"].as_str();
        assert_eq!(
            patch.is_some(),
            handled.outcome == Outcome::Patched,
            "patch and outcome disagree: {out}"
        );
        if let Some(patch) = patch {
            assert_eq!(endpoint, Endpoint::Mutate, "validate returned a patch");
            assert_eq!(out["response"]["patchType"], "JSONPatch");
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(patch)
                .expect("the patch is base64");
            let patch: json_patch::Patch =
                serde_json::from_slice(&bytes).expect("the patch is a JSON Patch");
            let mut object = request["request"]["object"].clone();
            if let Err(e) = json_patch::patch(&mut object, &patch) {
                panic!(
                    "the patch does not apply to the request's object: {e}\npatch: {}",
                    String::from_utf8_lossy(&bytes)
                );
            }
        }
    }
}
