use super::*;
use crate::ProjectId;
use crate::defaults::{ALB_GROUP_NAME, ALB_PREFIX, ALB_TAGS};
use crate::defaults::{default_ingress, render_ingress};
use crate::names::LABEL_PROJECT;
use k8s_openapi::api::networking::v1::Ingress;
use serde_json::json;
use std::collections::BTreeMap;

const A: &str = "aaaa";
const B: &str = "bbbb";

fn cfg() -> Config {
    Config::default()
}

fn ingress(project: &str, ns: &str, name: &str, hosts: &[&str]) -> Ingress {
    let p = ProjectId::parse(project).unwrap();
    let mut i = default_ingress(&render_ingress(&p), &cfg(), "alb-deployments").unwrap();
    i.metadata.namespace = Some(ns.into());
    i.metadata.name = Some(name.into());
    if !hosts.is_empty() {
        let rules = i.spec.as_mut().unwrap().rules.as_mut().unwrap();
        let template = rules[0].clone();
        *rules = hosts
            .iter()
            .map(|h| {
                let mut r = template.clone();
                r.host = Some(h.to_string());
                r
            })
            .collect();
    }
    i
}

fn own(project: &str) -> String {
    format!("{project}.deploy.agentops.ai")
}

struct World {
    cfg: Config,
    policy: Policy,
    index: IngressIndex,
    claims: ClaimIndex,
    namespaces: NamespaceIndex,
    services: Vec<ServiceFacts>,
}

impl World {
    fn new() -> Self {
        Self {
            cfg: cfg(),
            policy: Policy::default(),
            index: IngressIndex::new(),
            claims: ClaimIndex::new(),
            namespaces: NamespaceIndex::new(),
            services: Vec::new(),
        }
    }
    /// `ns_project`: the namespace's project label, as the world's namespace index has it.
    fn ctx<'a>(&'a self, ns: &'a str, ns_project: Option<&'a str>) -> Context<'a> {
        assert_eq!(
            self.namespaces.project_of(ns),
            ns_project,
            "label the namespace first"
        );
        Context {
            cfg: &self.cfg,
            policy: &self.policy,
            index: &self.index,
            namespace: ns,
            namespaces: &self.namespaces,
            claims: &self.claims,
            services: &self.services,
        }
    }
}

fn denied_fields(v: &Verdict) -> Vec<String> {
    v.denials.iter().map(|d| d.field.clone()).collect()
}

fn assert_denied(v: &Verdict, field: &str, words: &[&str]) {
    let msg = v.message("Ingress x/y").unwrap_or_default();
    assert!(
        v.denials.iter().any(|d| d.field == field),
        "expected a denial of {field}, got {msg:?}"
    );
    for w in words {
        assert!(msg.contains(w), "{w:?} not in {msg:?}");
    }
    assert!(msg.contains("rule:") && msg.contains("fix:"), "{msg}");
}

// --- policy file -----------------------------------------------------------------------------

#[test]
fn policy_parses_yaml_and_json_and_defaults() {
    let p = Policy::parse(
        "policy.yaml",
        "extraHosts:\n  aaaa: [www.example.com, '*.c.example.com']\nsharding: {capacity: 10}\n",
    )
    .unwrap();
    assert_eq!(p.extra_hosts[A].len(), 2);
    assert_eq!(p.sharding.capacity, 10);
    assert!(p.sharding.enabled);
    // Fields left out keep their defaults.
    assert_eq!(p.group_settings, Policy::default().group_settings);
    // Groups every project may join are configuration now (ALB_ALLOWED_GROUPS), which the API
    // server's admission policy reads too: the old field is refused with that fix.
    let e = Policy::parse("p.json", r#"{"allowedGroups": ["x"]}"#).unwrap_err();
    assert!(e.to_string().contains("ALB_ALLOWED_GROUPS"), "{e}");
    assert_eq!(Policy::parse("empty", "  \n").unwrap(), Policy::default());
    assert_eq!(
        Policy::default().group_settings["scheme"],
        "internet-facing"
    );
}

#[test]
fn admin_group_settings_are_merged_over_the_defaults() {
    let p = Policy::parse(
        "p",
        "groupSettings: {scheme: internal, ssl-redirect: '', ssl-policy: ELBSecurityPolicy-TLS13-1-2-2021-06}\nmaxRulesPerProject: 2\nsharding: {capacity: 50}\n",
    )
    .unwrap();
    assert_eq!(p.group_settings["scheme"], "internal");
    assert_eq!(
        p.group_settings["ssl-policy"],
        "ELBSecurityPolicy-TLS13-1-2-2021-06"
    );
    // Kept from the defaults, and removed by an empty value.
    assert_eq!(
        p.group_settings["listen-ports"],
        r#"[{"HTTP": 80}, {"HTTPS": 443}]"#
    );
    assert!(!p.group_settings.contains_key("ssl-redirect"));
    assert_eq!(p.rule_allowance("x"), 2);
    // The configured certificate is a group setting too.
    let cfg = Config::from_lookup(|k| {
        (k == "ALB_CERTIFICATE_ARN").then(|| "arn:aws:acm:us-east-1:1:certificate/c".into())
    });
    assert_eq!(
        p.effective_group_settings(&cfg)["certificate-arn"],
        "arn:aws:acm:us-east-1:1:certificate/c"
    );
}

#[test]
fn bad_policies_are_refused_with_the_fix() {
    for (text, word) in [
        ("extraHost: {}", "unknown field"),
        ("extraHosts: {BAD: [a.b]}", "DNS-1123"),
        ("extraHosts: {aaaa: ['Bad Host']}", "not a DNS name"),
        ("sharding: {capacity: 0}", "capacity"),
        (
            "groupSettings: {alb.ingress.kubernetes.io/scheme: x}",
            "prefix",
        ),
        ("[1, 2", "policy file p"),
        (
            "groupSettings: {healthcheck-path: /x}",
            "not a group-wide setting",
        ),
        (
            "groupSettings: {sheme: internal}",
            "no such Ingress annotation",
        ),
        (
            "groupSettings: {listen-ports: '[{\"HTTP\": 0}]'}",
            "groupSettings.listen-ports",
        ),
        ("maxRulesPerProject: 0", "maxRulesPerProject"),
        ("maxRulesPerProject: 2", "ruleQuota"),
    ] {
        let e = Policy::parse("p", text).unwrap_err().to_string();
        assert!(e.contains(word) && e.contains("fix"), "{text}: {e}");
    }
}

#[test]
fn host_patterns() {
    assert!(host_matches("a.example.com", "a.example.com"));
    assert!(host_matches("*.example.com", "x.example.com"));
    assert!(!host_matches("*.example.com", "x.y.example.com"));
    assert!(!host_matches("*.example.com", "example.com"));
    assert!(!host_matches("*.example.com", "xexample.com"));
    assert!(host_matches("*.example.com", "*.example.com"));
    assert!(!host_matches("a.example.com", "*.example.com"));
}

// --- index -----------------------------------------------------------------------------------

#[test]
fn index_tracks_upserts_and_removals() {
    let mut idx = IngressIndex::new();
    let a = ingress(A, "ns-a", "ing-a", &[]);
    idx.upsert(IngressRecord::from_ingress(&a));
    assert_eq!(idx.owners_of(&own(A)).count(), 1);
    assert_eq!(idx.group_of_project(A).as_deref(), Some("alb-deployments"));
    assert_eq!(idx.projects_in_group("alb-deployments"), 1);
    // A second Ingress of the same project does not count the project twice.
    let a2 = ingress(A, "ns-a", "ing-a2", &["x.deploy.agentops.ai"]);
    idx.upsert(IngressRecord::from_ingress(&a2));
    assert_eq!(idx.projects_in_group("alb-deployments"), 1);
    // Updating an Ingress moves its host.
    let a_moved = ingress(A, "ns-a", "ing-a", &["y.deploy.agentops.ai"]);
    idx.upsert(IngressRecord::from_ingress(&a_moved));
    assert_eq!(idx.owners_of(&own(A)).count(), 0);
    assert_eq!(idx.owners_of("y.deploy.agentops.ai").count(), 1);
    idx.remove("ns-a", "ing-a");
    idx.remove("ns-a", "ing-a2");
    idx.remove("ns-a", "never-existed");
    assert!(idx.is_empty());
    assert_eq!(idx.projects_in_group("alb-deployments"), 0);
    assert_eq!(idx.group_of_project(A), None);
    assert_eq!(idx.owners_of("y.deploy.agentops.ai").count(), 0);
}

#[test]
fn placement_uses_the_index() {
    let mut w = World::new();
    w.policy.sharding.capacity = 2;
    for (i, p) in ["p1", "p2"].iter().enumerate() {
        w.index.upsert(IngressRecord::from_ingress(&ingress(
            p,
            "ns",
            &format!("i{i}"),
            &[],
        )));
    }
    assert_eq!(w.policy.place(&w.cfg, &w.index, "p3"), "alb-deployments-2");
    assert_eq!(w.policy.place(&w.cfg, &w.index, "p1"), "alb-deployments");
    w.policy.sharding.enabled = false;
    assert_eq!(w.policy.place(&w.cfg, &w.index, "p3"), "alb-deployments");
}

// --- Ingress rules ---------------------------------------------------------------------------

#[test]
fn own_host_in_own_namespace_is_allowed() {
    let w = World::new();
    let v = validate_ingress(
        &w.ctx("ns-a", None),
        &ingress(A, "ns-a", "ing-a", &[]),
        None,
    );
    assert!(v.allowed(), "{:?}", v.message("x"));
    assert!(v.warnings.is_empty(), "{:?}", v.warnings);
}

#[test]
fn host_outside_the_domain_is_denied() {
    let w = World::new();
    let v = validate_ingress(
        &w.ctx("ns-a", None),
        &ingress(A, "ns-a", "i", &["evil.com"]),
        None,
    );
    assert_denied(
        &v,
        "spec.rules[0].host",
        &["outside the deployment domain", "extraHosts.aaaa"],
    );
}

#[test]
fn another_projects_host_in_the_domain_is_denied() {
    let w = World::new();
    let v = validate_ingress(
        &w.ctx("ns-a", None),
        &ingress(A, "ns-a", "i", &[&own(B)]),
        None,
    );
    assert_denied(
        &v,
        "spec.rules[0].host",
        &[
            "not project aaaa's own host",
            "use host aaaa.deploy.agentops.ai",
        ],
    );
}

#[test]
fn extra_hosts_from_the_policy_are_allowed() {
    let mut w = World::new();
    w.policy.extra_hosts.insert(
        A.into(),
        vec!["www.example.com".into(), "*.shop.example.com".into()],
    );
    let i = ingress(
        A,
        "ns-a",
        "i",
        &["www.example.com", "eu.shop.example.com", &own(A)],
    );
    assert!(validate_ingress(&w.ctx("ns-a", None), &i, None).allowed());
    // Not for another project.
    let i = ingress(B, "ns-b", "i", &["www.example.com"]);
    assert!(!validate_ingress(&w.ctx("ns-b", None), &i, None).allowed());
}

#[test]
fn tls_hosts_are_checked_too() {
    let w = World::new();
    let mut i = ingress(A, "ns-a", "i", &[]);
    i.spec.as_mut().unwrap().tls = Some(vec![
        serde_json::from_value(json!({ "hosts": ["x.other.com"] })).unwrap(),
    ]);
    assert_denied(
        &validate_ingress(&w.ctx("ns-a", None), &i, None),
        "spec.tls[0].hosts[0]",
        &["x.other.com"],
    );
}

#[test]
fn a_host_served_by_another_namespace_is_denied() {
    let mut w = World::new();
    w.policy.extra_hosts.insert(B.into(), vec![own(A)]);
    w.index.upsert(IngressRecord::from_ingress(&ingress(
        A,
        "ns-a",
        "ing-a",
        &[],
    )));
    // Even when the policy allowed the host for B: tenant isolation comes first.
    let v = validate_ingress(
        &w.ctx("ns-b", None),
        &ingress(B, "ns-b", "ing-b", &[&own(A)]),
        None,
    );
    assert_denied(
        &v,
        "spec.rules[0].host",
        &["already served by Ingress ns-a/ing-a of project aaaa"],
    );
    // Claiming A's project id from another namespace is no way around it.
    let v = validate_ingress(
        &w.ctx("ns-b", None),
        &ingress(A, "ns-b", "ing-x", &[]),
        None,
    );
    assert!(denied_fields(&v).contains(&"spec.rules[0].host".to_string()));
    assert_denied(
        &v,
        &format!("metadata.labels[{LABEL_PROJECT}]"),
        &["already belongs to namespace ns-a"],
    );
}

#[test]
fn same_project_same_namespace_may_share_its_host_and_update_itself() {
    let mut w = World::new();
    let a = ingress(A, "ns-a", "ing-a", &[]);
    w.index.upsert(IngressRecord::from_ingress(&a));
    assert!(validate_ingress(&w.ctx("ns-a", None), &a, Some(&a)).allowed());
    let a2 = ingress(A, "ns-a", "ing-a-api", &[]);
    // A second Ingress is a second listener rule: within the project's allowance only.
    w.policy.max_rules_per_project = 2;
    assert!(validate_ingress(&w.ctx("ns-a", None), &a2, None).allowed());
}

#[test]
fn a_project_adds_no_more_listener_rules_than_its_allowance() {
    let mut w = World::new();
    let a = ingress(A, "ns-a", "ing-a", &[]);
    w.index.upsert(IngressRecord::from_ingress(&a));
    // Updating the one Ingress is within the default allowance of one rule.
    assert!(validate_ingress(&w.ctx("ns-a", None), &a, Some(&a)).allowed());
    // A second Ingress of the project is one rule too many.
    let a2 = ingress(A, "ns-a", "ing-a-api", &[]);
    let v = validate_ingress(&w.ctx("ns-a", None), &a2, None);
    assert_denied(
        &v,
        "spec.rules",
        &[
            "adds 1 listener rules",
            "the 1 its other Ingresses have",
            "maxRulesPerProject",
        ],
    );
    // So is a second path on the first.
    let mut two_paths = a.clone();
    let rule = &mut two_paths.spec.as_mut().unwrap().rules.as_mut().unwrap()[0];
    let extra = rule.http.as_ref().unwrap().paths[0].clone();
    let mut extra = extra;
    extra.path = Some("/api".into());
    rule.http.as_mut().unwrap().paths.push(extra);
    let v = validate_ingress(&w.ctx("ns-a", None), &two_paths, Some(&a));
    assert_denied(
        &v,
        "spec.rules",
        &["adds 2 listener rules", "than the 1 project aaaa may have"],
    );
    // Each extra host the admin grants brings one more rule with it.
    w.policy
        .extra_hosts
        .insert(A.into(), vec!["www.example.com".into()]);
    assert!(validate_ingress(&w.ctx("ns-a", None), &two_paths, Some(&a)).allowed());
}

#[test]
fn hostless_rules_and_default_backends_are_denied() {
    let w = World::new();
    let mut i = ingress(A, "ns-a", "i", &[]);
    i.spec.as_mut().unwrap().rules.as_mut().unwrap()[0].host = None;
    assert_denied(
        &validate_ingress(&w.ctx("ns-a", None), &i, None),
        "spec.rules[0].host",
        &["every host"],
    );
    let mut i = ingress(A, "ns-a", "i", &[]);
    i.spec.as_mut().unwrap().default_backend = Some(
        serde_json::from_value(json!({ "service": { "name": "s", "port": { "number": 80 } } }))
            .unwrap(),
    );
    assert_denied(
        &validate_ingress(&w.ctx("ns-a", None), &i, None),
        "spec.defaultBackend",
        &["every tenant"],
    );
}

#[test]
fn the_group_is_placements_choice_and_listed_groups_are_allowed() {
    let mut w = World::new();
    let field = format!("metadata.annotations[{ALB_GROUP_NAME}]");
    let with_group = |g: Option<&str>| {
        let mut i = ingress(A, "ns-a", "i", &[]);
        let a = i.metadata.annotations.as_mut().unwrap();
        match g {
            Some(g) => a.insert(ALB_GROUP_NAME.into(), g.into()),
            None => a.remove(ALB_GROUP_NAME),
        };
        i
    };
    let v = validate_ingress(&w.ctx("ns-a", None), &with_group(Some("my-own-alb")), None);
    assert_denied(&v, &field, &["\"my-own-alb\"", "jockey's choice"]);
    let v = validate_ingress(&w.ctx("ns-a", None), &with_group(None), None);
    assert_denied(&v, &field, &["missing"]);
    // A shard the tenant picks (a new ALB) is refused: placement chooses the shared group.
    let v = validate_ingress(
        &w.ctx("ns-a", None),
        &with_group(Some("alb-deployments-37")),
        None,
    );
    assert_denied(
        &v,
        &field,
        &["placed in \"alb-deployments\"", "jockey's choice"],
    );
    assert!(
        validate_ingress(
            &w.ctx("ns-a", None),
            &with_group(Some("alb-deployments")),
            None
        )
        .allowed()
    );
    // An Ingress already in a shard keeps it.
    let old = with_group(Some("alb-deployments-3"));
    assert!(
        validate_ingress(
            &w.ctx("ns-a", None),
            &with_group(Some("alb-deployments-3")),
            Some(&old)
        )
        .allowed()
    );
    w.cfg.alb_allowed_groups.push("my-own-alb".into());
    assert!(
        validate_ingress(&w.ctx("ns-a", None), &with_group(Some("my-own-alb")), None).allowed()
    );
}

#[test]
fn a_full_group_is_refused_whoever_named_it() {
    let mut w = World::new();
    w.policy.sharding.capacity = 2;
    w.policy.rule_quota = 10;
    for p in ["p1", "p2"] {
        w.index.upsert(IngressRecord::from_ingress(&ingress(
            p,
            &format!("ns-{p}"),
            "i",
            &[],
        )));
    }
    // Placement now chooses the next shard; the full shared group is refused even by name.
    let v = validate_ingress(&w.ctx("ns-a", None), &ingress(A, "ns-a", "i", &[]), None);
    assert_denied(
        &v,
        &format!("metadata.annotations[{ALB_GROUP_NAME}]"),
        &["placed in \"alb-deployments-2\""],
    );
    // A project already in the group may add to it within the quotas: rules per ALB.
    let mut many = ingress("p1", "ns-p1", "more", &[]);
    let template = many.spec.as_ref().unwrap().rules.as_ref().unwrap()[0].clone();
    many.spec.as_mut().unwrap().rules = Some(
        (0..9)
            .map(|n| {
                let mut r = template.clone();
                r.host = Some(format!("h{n}.example.com"));
                r
            })
            .collect(),
    );
    w.policy.extra_hosts.insert(
        "p1".into(),
        (0..9).map(|n| format!("h{n}.example.com")).collect(),
    );
    let v = validate_ingress(&w.ctx("ns-p1", None), &many, None);
    assert_denied(
        &v,
        &format!("metadata.annotations[{ALB_GROUP_NAME}]"),
        &["11 listener rules", "quota of 10"],
    );
}

#[test]
fn group_wide_settings_must_agree() {
    let w = World::new();
    for (key, value, word) in [
        (
            "scheme",
            "internal",
            "group's setting is \"internet-facing\"",
        ),
        ("ssl-redirect", "8443", "group's setting is \"443\""),
        (
            "ip-address-type",
            "dualstack",
            "group-wide ALB setting ip-address-type",
        ),
        (
            "load-balancer-name",
            "mine",
            "group-wide ALB setting load-balancer-name",
        ),
    ] {
        let mut i = ingress(A, "ns-a", "i", &[]);
        let full = format!("{ALB_PREFIX}{key}");
        i.metadata
            .annotations
            .as_mut()
            .unwrap()
            .insert(full.clone(), value.into());
        let v = validate_ingress(&w.ctx("ns-a", None), &i, None);
        assert_denied(&v, &format!("metadata.annotations[{full}]"), &[word]);
    }
}

#[test]
fn conflicting_tag_keys_in_a_group_are_denied() {
    let mut w = World::new();
    // An older member (admitted before the admin chose team=blue) carries team=red.
    let mut a = ingress(A, "ns-a", "ing-a", &[]);
    let tags = format!("deployment={A},hostname={},team=red", own(A));
    a.metadata
        .annotations
        .as_mut()
        .unwrap()
        .insert(ALB_TAGS.into(), tags);
    w.index.upsert(IngressRecord::from_ingress(&a));
    w.policy
        .group_settings
        .insert("tags".into(), "team=blue".into());
    let mut b = ingress(B, "ns-b", "ing-b", &[]);
    b.metadata
        .annotations
        .as_mut()
        .unwrap()
        .insert(ALB_TAGS.into(), "team=blue".into());
    let v = validate_ingress(&w.ctx("ns-b", None), &b, None);
    assert_denied(
        &v,
        &format!("metadata.annotations[{ALB_TAGS}]"),
        &["team=blue conflicts with team=red", "ns-a/ing-a"],
    );
    // Per-project tags are not the admin's: refused on an Ingress whatever the others carry.
    b.metadata
        .annotations
        .as_mut()
        .unwrap()
        .insert(ALB_TAGS.into(), format!("deployment={B}"));
    let v = validate_ingress(&w.ctx("ns-b", None), &b, None);
    assert_denied(
        &v,
        &format!("metadata.annotations[{ALB_TAGS}]"),
        &["group's setting is"],
    );
    // Without tags of its own, nothing conflicts.
    let b = ingress(B, "ns-b", "ing-b", &[]);
    assert!(validate_ingress(&w.ctx("ns-b", None), &b, None).allowed());
}

#[test]
fn project_label_changes_are_denied() {
    let w = World::new();
    let old = ingress(A, "ns-a", "i", &[]);
    let mut new = old.clone();
    new.metadata
        .labels
        .as_mut()
        .unwrap()
        .insert(LABEL_PROJECT.into(), B.into());
    let v = validate_ingress(&w.ctx("ns-a", None), &new, Some(&old));
    assert_denied(
        &v,
        &format!("metadata.labels[{LABEL_PROJECT}]"),
        &["from \"aaaa\" to \"bbbb\""],
    );
    let mut removed = old.clone();
    removed.metadata.labels = None;
    let v = validate_ingress(&w.ctx("ns-a", None), &removed, Some(&old));
    assert_denied(
        &v,
        &format!("metadata.labels[{LABEL_PROJECT}]"),
        &["removes the project label"],
    );
}

#[test]
fn a_namespace_labelled_for_another_project_is_denied() {
    let mut w = World::new();
    w.namespaces.set("ns-a", Some(B));
    let v = validate_ingress(&w.ctx("ns-a", Some(B)), &ingress(A, "ns-a", "i", &[]), None);
    assert_denied(
        &v,
        &format!("metadata.labels[{LABEL_PROJECT}]"),
        &["labelled for project \"bbbb\""],
    );
    w.namespaces.set("ns-a", Some(A));
    assert!(
        validate_ingress(&w.ctx("ns-a", Some(A)), &ingress(A, "ns-a", "i", &[]), None).allowed()
    );
}

#[test]
fn invalid_project_label_is_denied() {
    let w = World::new();
    let mut i = ingress(A, "ns-a", "i", &[]);
    i.metadata
        .labels
        .as_mut()
        .unwrap()
        .insert(LABEL_PROJECT.into(), "Not_Valid".into());
    let v = validate_ingress(&w.ctx("ns-a", None), &i, None);
    assert_denied(
        &v,
        &format!("metadata.labels[{LABEL_PROJECT}]"),
        &["DNS-1123"],
    );
}

#[test]
fn a_typo_of_a_key_is_refused_and_soft_problems_are_warnings() {
    let w = World::new();
    let mut i = ingress(A, "ns-a", "i", &[]);
    let a = i.metadata.annotations.as_mut().unwrap();
    a.insert(crate::contract::ALB_HEALTHCHECK_PATH.into(), "/ping".into());
    let v = validate_ingress(&w.ctx("ns-a", None), &i, None);
    assert!(v.allowed(), "{:?}", v.message("x"));
    assert_eq!(
        v.warnings,
        ["health check path \"/ping\" differs from /health, which the pods' probes use"]
    );
    let a = i.metadata.annotations.as_mut().unwrap();
    a.insert(format!("{ALB_PREFIX}helthcheck-path"), "/x".into());
    let v = validate_ingress(&w.ctx("ns-a", None), &i, None);
    assert_denied(
        &v,
        &format!("metadata.annotations[{ALB_PREFIX}helthcheck-path]"),
        &["not an annotation the AWS Load Balancer Controller reads"],
    );
}

#[test]
fn a_class_other_than_alb_is_denied_as_it_stops_the_group() {
    let w = World::new();
    let mut i = ingress(A, "ns-a", "i", &[]);
    i.spec.as_mut().unwrap().ingress_class_name = Some("nginx".into());
    let v = validate_ingress(&w.ctx("ns-a", None), &i, None);
    assert_denied(&v, "spec.ingressClassName", &["\"nginx\"", "whole group"]);
}

// --- Service and Deployment ------------------------------------------------------------------

fn service(kind: Option<&str>) -> Service {
    let mut s: Service = serde_json::from_value(json!({
        "metadata": { "name": "svc-aaaa", "namespace": "ns-a", "labels": { LABEL_PROJECT: A } },
        "spec": { "selector": { "app": A } }
    }))
    .unwrap();
    s.spec.as_mut().unwrap().type_ = kind.map(String::from);
    s
}

#[test]
fn load_balancer_and_node_port_services_are_denied() {
    let w = World::new();
    for t in ["LoadBalancer", "NodePort"] {
        let v = validate_service(&w.ctx("ns-a", None), &service(Some(t)), None);
        let msg = v.message("Service ns-a/svc-aaaa").unwrap();
        assert!(
            msg.contains("spec.type") && msg.contains(t) && msg.contains("ClusterIP"),
            "{msg}"
        );
    }
    for t in [None, Some("ClusterIP")] {
        assert!(validate_service(&w.ctx("ns-a", None), &service(t), None).allowed());
    }
}

#[test]
fn service_selector_mismatch_warns() {
    let w = World::new();
    let mut s = service(None);
    s.spec.as_mut().unwrap().selector = Some(BTreeMap::from([("app".into(), "other".into())]));
    let v = validate_service(&w.ctx("ns-a", None), &s, None);
    assert!(v.allowed(), "{:?}", v.message("x"));
    assert_eq!(
        v.warnings,
        [format!(
            "spec.selector does not select app: {A}; the Service may not reach the project's pods"
        )]
    );
    // Selecting the project's pods: no warning.
    let mut good = service(None);
    good.spec.as_mut().unwrap().selector = Some(BTreeMap::from([("app".into(), A.into())]));
    assert_eq!(
        validate_service(&w.ctx("ns-a", None), &good, None).warnings,
        Vec::<String>::new()
    );
}

#[test]
fn deployment_rules() {
    let mut w = World::new();
    let d: Deployment = serde_json::from_value(json!({
        "metadata": { "name": A, "namespace": "ns-a", "labels": { LABEL_PROJECT: A } },
        "spec": { "selector": {}, "template": { "spec": { "containers": [
            { "name": "s", "image": "x:latest", "lifecycle": { "preStop": { "sleep": { "seconds": 5 } } } }
        ] } } }
    }))
    .unwrap();
    let v = validate_deployment(&w.ctx("ns-a", None), &d, None);
    assert!(v.allowed());
    assert_eq!(
        v.warnings,
        [
            "container \"s\": preStop sleeps 5s, shorter than the ALB deregistration delay of 30s; \
             requests may fail during rollouts",
            "container \"s\": image \"x:latest\" uses :latest, which does not pin what runs",
        ]
    );
    let mut moved = d.clone();
    moved
        .metadata
        .labels
        .as_mut()
        .unwrap()
        .insert(LABEL_PROJECT.into(), B.into());
    assert!(!validate_deployment(&w.ctx("ns-a", None), &moved, Some(&d)).allowed());
    w.namespaces.set("ns-a", Some(B));
    assert!(!validate_deployment(&w.ctx("ns-a", Some(B)), &d, None).allowed());
    w.namespaces.set("ns-a", None);
    w.index.upsert(IngressRecord::from_ingress(&ingress(
        A,
        "ns-other",
        "i",
        &[],
    )));
    assert!(!validate_deployment(&w.ctx("ns-a", None), &d, None).allowed());
}

#[test]
fn message_names_object_field_rule_and_fix() {
    let w = World::new();
    let v = validate_service(&w.ctx("ns-a", None), &service(Some("NodePort")), None);
    let msg = v.message("Service ns-a/svc-aaaa").unwrap();
    assert!(
        msg.starts_with(
            "Service ns-a/svc-aaaa denied by jockey policy: spec.type: is NodePort (rule: "
        ),
        "{msg}"
    );
    assert!(msg.contains("; fix: set spec.type: ClusterIP"), "{msg}");
}

#[cfg(test)]
#[path = "boundary_tests.rs"]
mod boundary_tests;

#[test]
fn the_policy_file_refuses_overlapping_extra_hosts_and_hosts_inside_the_domain() {
    for (text, words) in [
        (
            "extraHosts:\n  aaaa: ['*.shop.example.com']\n  bbbb: [a.shop.example.com]\n",
            "match the same hosts",
        ),
        (
            "extraHosts:\n  aaaa: [www.example.com]\n  bbbb: [www.example.com]\n",
            "match the same hosts",
        ),
    ] {
        let e = Policy::parse("p.yaml", text).unwrap_err();
        assert!(e.to_string().contains(words), "{e}");
    }
    // Different one-label wildcards never share a host; one project may list overlapping ones.
    let ok = Policy::parse(
        "p.yaml",
        "extraHosts:\n  aaaa: ['*.a.example.com', '*.example.com']\n  bbbb: ['*.b.example.com']\n",
    );
    assert!(ok.is_ok(), "{ok:?}");
    // Inside the deployment domain every PROJECT.<domain> is its own project's.
    let p = Policy::parse("p.yaml", "extraHosts:\n  aaaa: ['*.deploy.agentops.ai']\n").unwrap();
    let e = p.check_with(&cfg()).unwrap_err();
    assert!(e.contains("inside the deployment domain"), "{e}");
    let p = Policy::parse("p.yaml", "extraHosts:\n  aaaa: [bbbb.deploy.agentops.ai]\n").unwrap();
    assert!(p.check_with(&cfg()).is_err());
    assert!(Policy::default().check_with(&cfg()).is_ok());
}

#[test]
fn grants_name_only_keys_granted_per_project() {
    let p = Policy::parse(
        "p.yaml",
        "grants:\n  aaaa:\n    annotations: [target-group-attributes, 'conditions.*', auth-type]\n",
    )
    .unwrap();
    assert_eq!(p.grants_of(A).len(), 3);
    assert!(p.grants_of(B).is_empty());
    for (key, words) in [
        ("scheme", "for the whole group"),
        ("group.order", "nobody"),
        ("healthcheck-path", "any tenant"),
        ("alb.ingress.kubernetes.io/actions.*", "prefix"),
        ("made-up", "nobody"),
    ] {
        let e = Policy::parse(
            "p.yaml",
            &format!("grants:\n  aaaa:\n    annotations: ['{key}']\n"),
        )
        .unwrap_err();
        assert!(e.to_string().contains(words), "{key}: {e}");
    }
}
