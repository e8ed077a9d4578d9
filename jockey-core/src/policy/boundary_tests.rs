//! The tenant boundary, rule family by rule family: each test is an attack (or a mistake) that
//! would reach another tenant's traffic or stop the shared ALB, and the denial that stops it.

use super::*;
use crate::claims::Claim;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;

fn with(mut i: Ingress, key: &str, value: &str) -> Ingress {
    i.metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert(format!("{ALB_PREFIX}{key}"), value.to_string());
    i
}

fn field(key: &str) -> String {
    format!("metadata.annotations[{ALB_PREFIX}{key}]")
}

fn check(w: &World, i: &Ingress) -> Verdict {
    validate_ingress(&w.ctx("ns-a", None), i, None)
}

/// A world whose admin granted project A every key granted per project, so that what the
/// routing rules check of a granted key shows.
fn granted() -> World {
    let mut w = World::new();
    let keys = [
        "conditions.*",
        "actions.*",
        "transforms.*",
        "use-regex-path-match",
        "target-group-attributes",
    ];
    w.policy.grants.insert(
        A.into(),
        Grant {
            annotations: keys.iter().map(|k| k.to_string()).collect(),
        },
    );
    w
}

// --- routing: conditions, actions, order ---------------------------------------------------

#[test]
fn a_host_header_condition_naming_another_projects_host_is_denied() {
    let w = granted();
    let svc = format!("svc-{A}");
    let victim = own(B);
    let i = with(
        with(
            ingress(A, "ns-a", "i", &[]),
            &format!("conditions.{svc}"),
            &format!(r#"[{{"field":"host-header","hostHeaderConfig":{{"values":["{victim}"]}}}}]"#),
        ),
        "group.order",
        "-1000",
    );
    let v = check(&w, &i);
    assert_denied(
        &v,
        &field(&format!("conditions.{svc}")),
        &[&victim, "not this project's host"],
    );
    assert_denied(&v, &field("group.order"), &["group.order", "admin"]);
    // Go's JSON reads keys case-insensitively: the same theft spelled differently.
    let i = with(
        ingress(A, "ns-a", "i", &[]),
        &format!("conditions.{svc}"),
        &format!(r#"[{{"Field":"host-header","HostHeaderConfig":{{"Values":["{victim}"]}}}}]"#),
    );
    assert_denied(
        &check(&w, &i),
        &field(&format!("conditions.{svc}")),
        &[&victim],
    );
    // Regular expressions cannot be shown to stay on the project's hosts.
    let i = with(
        ingress(A, "ns-a", "i", &[]),
        &format!("conditions.{svc}"),
        r#"[{"field":"host-header","hostHeaderConfig":{"regexValues":[".*"]}}]"#,
    );
    assert_denied(
        &check(&w, &i),
        &field(&format!("conditions.{svc}")),
        &["regexValues"],
    );
}

#[test]
fn conditions_on_the_projects_own_host_and_other_fields_are_allowed() {
    let w = granted();
    let svc = format!("svc-{A}");
    let i = with(
        ingress(A, "ns-a", "i", &[]),
        &format!("conditions.{svc}"),
        &format!(
            r#"[{{"field":"host-header","hostHeaderConfig":{{"values":["{}"]}}}},{{"field":"http-header","httpHeaderConfig":{{"httpHeaderName":"X-Beta","values":["1"]}}}}]"#,
            own(A)
        ),
    );
    let v = check(&w, &i);
    assert!(v.allowed(), "{:?}", v.message("x"));
}

#[test]
fn forwarding_to_a_target_group_by_arn_or_name_is_denied() {
    let w = granted();
    for action in [
        r#"{"type":"forward","targetGroupARN":"arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/victim/0123456789abcdef"}"#,
        r#"{"type":"forward","forwardConfig":{"targetGroups":[{"serviceName":"svc-aaaa","servicePort":80,"weight":1},{"targetGroupName":"victim-tg","weight":99}]}}"#,
    ] {
        let i = with(ingress(A, "ns-a", "i", &[]), "actions.steal", action);
        assert_denied(
            &check(&w, &i),
            &field("actions.steal"),
            &["forwards to target group", "Service in namespace ns-a"],
        );
    }
    // Forwarding to Services of its own namespace, fixed responses and redirects are its own.
    for action in [
        r#"{"type":"forward","forwardConfig":{"targetGroups":[{"serviceName":"svc-aaaa","servicePort":80,"weight":90},{"serviceName":"svc-aaaa-canary","servicePort":80,"weight":10}]}}"#,
        r#"{"type":"fixed-response","fixedResponseConfig":{"contentType":"text/plain","statusCode":"503","messageBody":"down"}}"#,
        r#"{"type":"redirect","redirectConfig":{"protocol":"HTTPS","port":"443","statusCode":"HTTP_301"}}"#,
    ] {
        let i = with(ingress(A, "ns-a", "i", &[]), "actions.mine", action);
        let v = check(&w, &i);
        assert!(v.allowed(), "{action}: {:?}", v.message("x"));
    }
}

#[test]
fn path_conditions_of_the_other_kind_than_the_paths_are_denied() {
    let w = granted();
    let svc = format!("svc-{A}");
    let i = with(
        ingress(A, "ns-a", "i", &[]),
        &format!("conditions.{svc}"),
        r#"[{"field":"path-pattern","pathPatternConfig":{"regexValues":["^/a"]}}]"#,
    );
    assert_denied(
        &check(&w, &i),
        &field(&format!("conditions.{svc}")),
        &["regexValues", "plain patterns"],
    );
    let i = with(
        with(
            ingress(A, "ns-a", "i", &[]),
            &format!("conditions.{svc}"),
            r#"[{"field":"path-pattern","pathPatternConfig":{"values":["/a"]}}]"#,
        ),
        "use-regex-path-match",
        "true",
    );
    assert_denied(
        &check(&w, &i),
        &field(&format!("conditions.{svc}")),
        &["values", "use-regex-path-match"],
    );
}

// --- group-wide settings -------------------------------------------------------------------

#[test]
fn every_group_wide_setting_takes_only_the_admins_value() {
    let w = World::new();
    for (key, value, word) in [
        ("listen-ports", r#"[{"HTTP": 443}]"#, "group's setting is"),
        ("listen-ports", r#"[{"HTTPS": 8443}]"#, "group's setting is"),
        (
            "certificate-arn",
            "arn:aws:acm:us-east-1:1:certificate/mine",
            "did not choose",
        ),
        ("ssl-policy", "ELBSecurityPolicy-2016-08", "did not choose"),
        ("inbound-cidrs", "10.0.0.0/8", "did not choose"),
        (
            "load-balancer-attributes",
            "deletion_protection.enabled=true",
            "did not choose",
        ),
        ("tags", "team=red", "did not choose"),
        ("wafv2-acl-arn", "none", "did not choose"),
        ("security-groups", "sg-1", "did not choose"),
        (
            "listener-attributes.HTTPS-443",
            "routing.http.response.server.enabled=false",
            "did not choose",
        ),
        (
            "scheme",
            "internal",
            "group's setting is \"internet-facing\"",
        ),
    ] {
        let i = with(ingress(A, "ns-a", "i", &[]), key, value);
        assert_denied(&check(&w, &i), &field(key), &[word]);
    }
}

#[test]
fn admin_values_and_parts_of_merged_ones_are_allowed() {
    let mut w = World::new();
    w.policy
        .group_settings
        .insert("tags".into(), "env=prod,team=platform".into());
    w.policy.group_settings.insert(
        "certificate-arn".into(),
        "arn:aws:acm:us-east-1:1:certificate/a,arn:aws:acm:us-east-1:1:certificate/b".into(),
    );
    for (key, value) in [
        // The same listeners, spelled otherwise.
        ("listen-ports", r#"[{"HTTPS":443},{"HTTP":80}]"#),
        ("listen-ports", r#"[{"HTTPS": 443}]"#),
        ("tags", "env=prod"),
        ("certificate-arn", "arn:aws:acm:us-east-1:1:certificate/b"),
        ("scheme", "internet-facing"),
    ] {
        let i = with(ingress(A, "ns-a", "i", &[]), key, value);
        let v = check(&w, &i);
        assert!(v.allowed(), "{key}={value}: {:?}", v.message("x"));
    }
    // A tag the admin set otherwise, or one of a key of its own, is not a part.
    for value in ["env=dev", "env=prod,owner=me"] {
        let i = with(ingress(A, "ns-a", "i", &[]), "tags", value);
        assert_denied(&check(&w, &i), &field("tags"), &["group's setting is"]);
    }
}

// --- annotation types ----------------------------------------------------------------------

#[test]
fn a_malformed_value_of_any_alb_annotation_is_denied_naming_what_the_controller_expects() {
    let w = World::new();
    for (key, value) in [
        ("healthcheck-interval-seconds", "often"),
        ("healthcheck-interval-seconds", "1"),
        ("success-codes", "600"),
        ("target-type", "pod"),
        ("actions.x", "{not json"),
        ("conditions.x", r#"[{"field":"host-header"}]"#),
        (
            "target-group-attributes",
            "deregistration_delay.timeout_seconds",
        ),
        ("backend-protocol", "TCP"),
    ] {
        let i = with(ingress(A, "ns-a", "i", &[]), key, value);
        let v = check(&w, &i);
        assert_denied(&v, &field(key), &["expected", "whole ALB group"]);
    }
    let i = with(ingress(A, "ns-a", "i", &[]), "group.name", "Not A Group");
    assert_denied(
        &check(&w, &i),
        &field("group.name"),
        &["expected", "take the Ingress out of its group"],
    );
}

#[test]
fn malformed_alb_annotations_on_a_service_are_denied_too() {
    let w = World::new();
    let mut s = service(None);
    s.metadata.annotations = Some(BTreeMap::from([(
        format!("{ALB_PREFIX}healthcheck-timeout-seconds"),
        "forever".to_string(),
    )]));
    let v = validate_service(&w.ctx("ns-a", None), &s, None);
    assert_denied(&v, &field("healthcheck-timeout-seconds"), &["expected"]);
    // The per-project tags belong here and pass.
    s.metadata.annotations = Some(BTreeMap::from([(
        ALB_TAGS.to_string(),
        format!("deployment={A},hostname={}", own(A)),
    )]));
    assert!(validate_service(&w.ctx("ns-a", None), &s, None).allowed());
    // Any other ALB key on a Service is refused: only tags are listed there.
    s.metadata.annotations = Some(BTreeMap::from([(
        format!("{ALB_PREFIX}scheme"),
        "internal".to_string(),
    )]));
    let v = validate_service(&w.ctx("ns-a", None), &s, None);
    assert_denied(&v, &field("scheme"), &["on the project's Ingress"]);
}

// --- rule shape ----------------------------------------------------------------------------

#[test]
fn paths_the_controller_cannot_build_are_denied() {
    let w = World::new();
    let mut i = ingress(A, "ns-a", "i", &[]);
    let path = &mut i.spec.as_mut().unwrap().rules.as_mut().unwrap()[0]
        .http
        .as_mut()
        .unwrap()
        .paths[0];
    path.path = Some("/api/*".into());
    assert_denied(
        &check(&w, &i),
        "spec.rules[0].http.paths[0].path",
        &["wildcard", "whole group"],
    );

    let mut i = ingress(A, "ns-a", "i", &[]);
    let backend = &mut i.spec.as_mut().unwrap().rules.as_mut().unwrap()[0]
        .http
        .as_mut()
        .unwrap()
        .paths[0]
        .backend;
    backend.service = None;
    backend.resource = Some(Default::default());
    assert_denied(
        &check(&w, &i),
        "spec.rules[0].http.paths[0].backend",
        &["not a Service backend"],
    );
}

#[test]
fn a_rule_with_more_match_values_than_aws_allows_is_denied() {
    let w = granted();
    let svc = format!("svc-{A}");
    // host 1 + path "/" 1 + 4 header values = 6 > 5, and 4 > 3 in one condition.
    let i = with(
        ingress(A, "ns-a", "i", &[]),
        &format!("conditions.{svc}"),
        r#"[{"field":"http-header","httpHeaderConfig":{"httpHeaderName":"X","values":["a","b","c","d"]}}]"#,
    );
    assert_denied(
        &check(&w, &i),
        "spec.rules[0].http.paths[0]",
        &["6 match values", "http-header X: 4"],
    );
}

// --- claims ----------------------------------------------------------------------------------

fn claimed(w: &mut World, claim: Claim) {
    let lease = claim.to_lease(
        "jockey-system",
        MicroTime(Timestamp::from_second(0).unwrap()),
    );
    w.claims.upsert(&lease);
}

#[test]
fn a_project_claimed_by_another_namespace_is_denied_for_every_kind() {
    let mut w = World::new();
    claimed(&mut w, Claim::project(A, "ns-b"));
    let field = format!("metadata.labels[{LABEL_PROJECT}]");
    let v = check(&w, &ingress(A, "ns-a", "i", &[]));
    assert_denied(
        &v,
        &field,
        &["already belongs to namespace ns-b", "its claim"],
    );
    let v = validate_service(&w.ctx("ns-a", None), &service(None), None);
    assert_denied(&v, &field, &["already belongs to namespace ns-b"]);
    // From its own namespace it is the owner's.
    assert!(validate_ingress(&w.ctx("ns-b", None), &ingress(A, "ns-b", "i", &[]), None).allowed());
}

#[test]
fn a_host_claimed_by_another_project_is_denied_even_with_no_ingress_left() {
    let mut w = World::new();
    w.policy
        .extra_hosts
        .insert(A.into(), vec!["shop.example.com".into()]);
    w.policy
        .extra_hosts
        .insert(B.into(), vec!["shop.example.com".into()]);
    // B's Ingress is gone (during a redeploy, say) but its claim stands.
    claimed(&mut w, Claim::host("shop.example.com", B, "ns-b"));
    let i = ingress(A, "ns-a", "i", &["shop.example.com"]);
    assert_denied(
        &check(&w, &i),
        "spec.rules[0].host",
        &["already served by project bbbb in namespace ns-b"],
    );
    // Another project of the SAME namespace may not take it either.
    claimed(&mut w, Claim::host("shop.example.com", B, "ns-a"));
    assert_denied(
        &check(&w, &i),
        "spec.rules[0].host",
        &["already served by project bbbb in namespace ns-a"],
    );
}
