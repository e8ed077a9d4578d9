//! Sharding through the webhook's own placement path: every Ingress below is an AdmissionReview
//! answered by `admission::handle` (the mutate endpoint, as the webhook serves it), its patch
//! applied as the API server would, and the stored object fed back into the webhook's Ingress
//! cache (`IngressIndex`, upserted as `webhook/src/state.rs` does from its watch).
//!
//! Proven over a long random history of creates, second Ingresses, re-applies and deletes:
//! - dense packing, exactly: a new project lands in the first group with room, so at every
//!   placement every lower group is full and the chosen one was not;
//! - no group ever holds more than the capacity;
//! - nothing moves: a project's second Ingress joins its group even when that group is full, and
//!   a re-apply that drops the group annotation keeps the old group, including when a new project
//!   would now be placed elsewhere (counted, so the check cannot pass vacuously).

use base64::Engine;
use jockey_core::admission::{Endpoint, Env, Outcome, handle};
use jockey_core::claims::ClaimIndex;
use jockey_core::defaults::{ALB_GROUP_NAME, render_ingress};
use jockey_core::policy::{IngressIndex, IngressRecord, Policy};
use jockey_core::sharding::shard_name;
use jockey_core::{Config, ProjectId};
use k8s_openapi::api::networking::v1::Ingress;
use serde_json::{Value, json};
use std::collections::BTreeMap;

const SHARED: &str = "alb-deployments";
const CAPACITY: usize = 4;

struct World {
    cfg: Config,
    policy: Policy,
    index: IngressIndex,
    claims: ClaimIndex,
}

impl World {
    /// The webhook's answer to `op` on `object`, applied: the Ingress the API server stores.
    fn admit(&self, op: &str, object: &Ingress, old: Option<&Ingress>) -> Ingress {
        self.admit_seeing(&self.index, op, object, old)
    }

    /// [`World::admit`] by a webhook whose cache is `index` (one that lags behind).
    fn admit_seeing(
        &self,
        index: &IngressIndex,
        op: &str,
        object: &Ingress,
        old: Option<&Ingress>,
    ) -> Ingress {
        let object = serde_json::to_value(object).unwrap();
        let body = json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": "2b1f7c1e-0000-4000-8000-000000000001",
                "kind": { "group": "networking.k8s.io", "version": "v1", "kind": "Ingress" },
                "resource": { "group": "networking.k8s.io", "version": "v1", "resource": "ingresses" },
                "name": object["metadata"]["name"],
                "namespace": object["metadata"]["namespace"],
                "operation": op,
                "userInfo": { "username": "alice" },
                "object": object,
                "oldObject": old.map(|o| serde_json::to_value(o).unwrap()),
                "dryRun": false
            }
        });
        let env = Env {
            cfg: &self.cfg,
            policy: &self.policy,
            index,
            claims: &self.claims,
            namespaces: &jockey_core::index::NamespaceIndex::new(),
            services: &jockey_core::index::NO_SERVICES,
            images: &jockey_core::image::NoRecords,
        };
        let handled = handle(Endpoint::Mutate, &serde_json::to_vec(&body).unwrap(), &env)
            .unwrap_or_else(|e| panic!("{op}: bad request {e}"));
        assert_eq!(handled.outcome, Outcome::Patched, "{op}: not defaulted");
        let response: Value = serde_json::from_slice(&handled.to_json()).unwrap();
        let patch = base64::engine::general_purpose::STANDARD
            .decode(response["response"]["patch"].as_str().unwrap())
            .unwrap();
        let patch: json_patch::Patch = serde_json::from_slice(&patch).unwrap();
        let mut stored = object;
        json_patch::patch(&mut stored, &patch).unwrap();
        serde_json::from_value(stored).unwrap()
    }

    /// What the webhook's watch does with a stored Ingress.
    fn stored(&mut self, ing: &Ingress) {
        self.index.upsert(IngressRecord::from_ingress(ing));
    }
}

fn group_of(ing: &Ingress) -> String {
    ing.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(ALB_GROUP_NAME))
        .cloned()
        .expect("a placed Ingress names its group")
}

fn ingress(project: &ProjectId, name: &str) -> Ingress {
    let mut ing = render_ingress(project);
    ing.metadata.name = Some(name.to_string());
    ing.metadata.namespace = Some(format!("team-{project}"));
    ing
}

/// A tiny deterministic generator (same sequence everywhere).
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

/// A project of `live`, picked by `rng` (`live` is not empty).
fn any_live(live: &BTreeMap<String, Vec<Ingress>>, rng: &mut Lcg) -> String {
    let n = rng.next() as usize % live.len();
    live.keys().nth(n).unwrap().clone()
}

#[test]
fn placement_through_the_webhook_packs_densely_never_overfills_and_never_moves() {
    let mut w = World {
        cfg: Config::from_lookup(|k| (k == "IMAGE_REGISTRY").then(|| "reg.example".into())),
        policy: Policy::parse(
            "policy.yaml",
            &format!("sharding: {{enabled: true, capacity: {CAPACITY}}}\n"),
        )
        .unwrap(),
        index: IngressIndex::new(),
        claims: ClaimIndex::new(),
    };
    assert_eq!(w.cfg.alb_shared_group_name, SHARED);
    let mut rng = Lcg(42);
    // project -> its stored Ingresses
    let mut live: BTreeMap<String, Vec<Ingress>> = BTreeMap::new();
    let (mut created, mut deleted, mut seconds_into_full, mut kept_over_fresh) = (0, 0, 0, 0);
    let mut max_groups = 0;
    while created < 1500 {
        let roll = rng.next() % 8;
        if live.is_empty() || roll < 5 {
            // A new project.
            let p = ProjectId::parse(&format!("p{created}")).unwrap();
            created += 1;
            let ing = w.admit("CREATE", &ingress(&p, p.as_str()), None);
            let group = group_of(&ing);
            let n = (1..)
                .find(|&n| shard_name(SHARED, n) == group)
                .filter(|&n| n < 10_000)
                .unwrap_or_else(|| panic!("{group} is not a shard of {SHARED}"));
            for lower in 1..n {
                let g = shard_name(SHARED, lower);
                assert_eq!(
                    w.index.projects_in_group(&g),
                    CAPACITY,
                    "{p} went to {group} while {g} had room"
                );
            }
            assert!(
                w.index.projects_in_group(&group) < CAPACITY,
                "{p} went to full {group}"
            );
            w.stored(&ing);
            live.insert(p.to_string(), vec![ing]);
        } else if roll == 5 {
            // A second Ingress of a live project joins its group, full or not.
            let name = any_live(&live, &mut rng);
            let p = ProjectId::parse(&name).unwrap();
            let group = group_of(&live[&name][0]);
            let full = w.index.projects_in_group(&group) == CAPACITY;
            let n = live[&name].len();
            let ing = w.admit("CREATE", &ingress(&p, &format!("{name}-{n}")), None);
            assert_eq!(group_of(&ing), group, "{name}'s second Ingress moved");
            seconds_into_full += usize::from(full);
            w.stored(&ing);
            live.get_mut(&name).unwrap().push(ing);
        } else if roll == 6 {
            // A re-apply of the rendered Ingress (no group annotation) keeps the stored group,
            // also when the webhook's cache does not show the project's Ingresses yet (a
            // restarted webhook, a lagging watch): then only the old object says where it is.
            let name = any_live(&live, &mut rng);
            let p = ProjectId::parse(&name).unwrap();
            let old = live[&name][0].clone();
            let mut lagging = w.index.clone();
            for i in &live[&name] {
                lagging.remove(&format!("team-{name}"), i.metadata.name.as_deref().unwrap());
            }
            // Where the project would go if it were new now.
            let would = w.policy.place(&w.cfg, &lagging, &name);
            let seen = if rng.next().is_multiple_of(2) {
                &w.index
            } else {
                &lagging
            };
            let ing = w.admit_seeing(seen, "UPDATE", &ingress(&p, p.as_str()), Some(&old));
            assert_eq!(group_of(&ing), group_of(&old), "{name} moved on re-apply");
            kept_over_fresh += usize::from(would != group_of(&old) && std::ptr::eq(seen, &lagging));
            w.stored(&ing);
            live.get_mut(&name).unwrap()[0] = ing;
        } else {
            let name = any_live(&live, &mut rng);
            for i in live.remove(&name).unwrap() {
                w.index
                    .remove(&format!("team-{name}"), i.metadata.name.as_deref().unwrap());
            }
            deleted += 1;
        }
        let mut groups = 0;
        for n in 1..=created / CAPACITY + 2 {
            let g = shard_name(SHARED, n);
            let c = w.index.projects_in_group(&g);
            assert!(c <= CAPACITY, "{g} holds {c} projects");
            groups += usize::from(c > 0);
        }
        max_groups = max_groups.max(groups);
    }
    // The index agrees with what was stored.
    let mut recount: BTreeMap<String, usize> = BTreeMap::new();
    for ings in live.values() {
        *recount.entry(group_of(&ings[0])).or_default() += 1;
    }
    for (g, c) in &recount {
        assert_eq!(w.index.projects_in_group(g), *c, "{g}");
    }
    // The history exercised what it claims.
    assert!(deleted > 100, "deletes: {deleted}");
    assert!(max_groups > 10, "shards used: {max_groups}");
    assert!(
        seconds_into_full > 20,
        "second Ingresses into a full group: {seconds_into_full}"
    );
    assert!(
        kept_over_fresh > 10,
        "re-applies, unseen by the cache, that kept a group a new placement would not pick: \
         {kept_over_fresh}"
    );
}
