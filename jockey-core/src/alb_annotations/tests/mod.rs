//! Tests of the annotation knowledge against the controller's own behaviour: its unit tests'
//! cases (pkg/annotations/parser_test.go, pkg/ingress/*_test.go) and what its code does on the
//! values they leave out.

mod json;
mod recorded;
mod routing;
mod scalars;
mod values;

use super::*;

pub(super) fn known(object: Object, suffix: &str) -> Known {
    match classify(object, &format!("{PREFIX}{suffix}")) {
        Some(Ok(k)) => k,
        other => panic!("{suffix} on {object:?} is not known: {other:?}"),
    }
}

/// The parse of `value` for the Ingress annotation `suffix`, which must succeed.
pub(super) fn ok(suffix: &str, value: &str) -> Parsed {
    match known(Object::Ingress, suffix).parse(value) {
        Ok(p) => p,
        Err(e) => panic!("{suffix}={value:?} should be accepted: {e}"),
    }
}

/// The refusal of `value` for the Ingress annotation `suffix`, which must fail with `failure`.
pub(super) fn err(suffix: &str, value: &str, failure: Failure) -> ParseError {
    match known(Object::Ingress, suffix).parse(value) {
        Ok(p) => panic!("{suffix}={value:?} should be refused, parsed as {p:?}"),
        Err(e) => {
            assert_eq!(e.failure, failure, "{suffix}={value:?}: {e}");
            e
        }
    }
}

/// Every Ingress annotation suffix constant of pkg/annotations/constants.go (v3.5.0), and the
/// prefixes the controller builds keys from.
const CONTROLLER_SUFFIXES: &[&str] = &[
    "load-balancer-name",
    "group.name",
    "group.order",
    "tags",
    "ip-address-type",
    "scheme",
    "subnets",
    "customer-owned-ipv4-pool",
    "load-balancer-attributes",
    "wafv2-acl-arn",
    "wafv2-acl-name",
    "waf-acl-id",
    "web-acl-id",
    "shield-advanced-protection",
    "security-groups",
    "listen-ports",
    "ssl-redirect",
    "inbound-cidrs",
    "certificate-arn",
    "ssl-policy",
    "target-type",
    "backend-protocol",
    "backend-protocol-version",
    "target-group-attributes",
    "healthcheck-port",
    "healthcheck-protocol",
    "healthcheck-path",
    "healthcheck-interval-seconds",
    "healthcheck-timeout-seconds",
    "healthy-threshold-count",
    "unhealthy-threshold-count",
    "success-codes",
    "auth-type",
    "auth-idp-cognito",
    "auth-idp-oidc",
    "auth-on-unauthenticated-request",
    "auth-scope",
    "auth-session-cookie",
    "auth-session-timeout",
    "jwt-validation",
    "target-node-labels",
    "manage-backend-security-group-rules",
    "mutual-authentication",
    "security-group-prefix-lists",
    "listener-attributes.HTTPS-443",
    "multi-cluster-target-group",
    "minimum-load-balancer-capacity",
    "ipam-ipv4-pool-id",
    "enable-frontend-nlb",
    "frontend-nlb-scheme",
    "frontend-nlb-subnets",
    "frontend-nlb-security-groups",
    "frontend-nlb-listener-port-mapping",
    "frontend-nlb-eip-allocations",
    "frontend-nlb-healthcheck-port",
    "frontend-nlb-healthcheck-protocol",
    "frontend-nlb-healthcheck-path",
    "frontend-nlb-healthcheck-interval-seconds",
    "frontend-nlb-healthcheck-timeout-seconds",
    "frontend-nlb-healthcheck-healthy-threshold-count",
    "frontend-nlb-healthcheck-unhealthy-threshold-count",
    "frontend-nlb-healthcheck-success-codes",
    "frontend-nlb-attributes",
    "frontend-nlb-tags",
    "use-regex-path-match",
    "target-control-port.svc.80",
    "create-acm-cert",
    "acm-pca-arn",
    "dry-run-plan",
    "actions.ssl-redirect",
    "conditions.svc",
    "transforms.svc",
];

#[test]
fn every_key_the_controller_reads_on_an_ingress_is_known() {
    for suffix in CONTROLLER_SUFFIXES {
        known(Object::Ingress, suffix);
    }
}

#[test]
fn keys_outside_the_prefix_are_not_classified() {
    assert_eq!(
        classify(Object::Ingress, "kubernetes.io/ingress.class"),
        None
    );
    assert_eq!(classify(Object::Ingress, "alb.ingress.kubernetes.io"), None);
    assert_eq!(
        classify(
            Object::Service,
            "service.beta.kubernetes.io/aws-load-balancer-type"
        ),
        None
    );
}

#[test]
fn keys_the_controller_does_not_read_are_unknown() {
    for suffix in [
        "Scheme",
        "scheme ",
        "ssl-redirect-port",
        "actions.",
        "conditions.",
        "healthcheck",
        "certificate-arns",
    ] {
        let key = format!("{PREFIX}{suffix}");
        match classify(Object::Ingress, &key) {
            Some(Err(u)) => assert_eq!(u.key, key),
            other => panic!("{suffix} should be unknown: {other:?}"),
        }
    }
}

#[test]
fn reaches_follow_the_controller() {
    let reach = |s: &str| known(Object::Ingress, s).reach;
    let conflict = Reach::Group { merge: false };
    let merge = Reach::Group { merge: true };
    for s in [
        "scheme",
        "load-balancer-name",
        "ip-address-type",
        "subnets",
        "security-groups",
        "manage-backend-security-group-rules",
        "customer-owned-ipv4-pool",
        "ipam-ipv4-pool-id",
        "wafv2-acl-arn",
        "wafv2-acl-name",
        "waf-acl-id",
        "web-acl-id",
        "shield-advanced-protection",
        "inbound-cidrs",
        "security-group-prefix-lists",
        "ssl-policy",
        "ssl-redirect",
        "mutual-authentication",
        "minimum-load-balancer-capacity",
        "enable-frontend-nlb",
        "frontend-nlb-scheme",
        "frontend-nlb-attributes",
        "frontend-nlb-healthcheck-port",
    ] {
        assert_eq!(reach(s), conflict, "{s}");
    }
    for s in [
        "listen-ports",
        "certificate-arn",
        "tags",
        "load-balancer-attributes",
        "listener-attributes.HTTP-80",
        "frontend-nlb-listener-port-mapping",
        "create-acm-cert",
    ] {
        assert_eq!(reach(s), merge, "{s}");
    }
    for s in ["group.name", "group.order"] {
        assert_eq!(reach(s), Reach::Membership, "{s}");
    }
    for s in [
        "actions.x",
        "conditions.svc-a",
        "transforms.svc-a",
        "use-regex-path-match",
    ] {
        assert_eq!(reach(s), Reach::Routing, "{s}");
    }
    for s in [
        "target-type",
        "backend-protocol",
        "backend-protocol-version",
        "target-group-attributes",
        "healthcheck-port",
        "healthcheck-path",
        "success-codes",
        "auth-type",
        "auth-idp-oidc",
        "jwt-validation",
        "target-control-port.svc.http",
        "multi-cluster-target-group",
    ] {
        assert_eq!(reach(s), Reach::Own, "{s}");
    }
}

#[test]
fn families_name_their_pattern() {
    assert_eq!(
        known(Object::Ingress, "actions.ssl-redirect").suffix,
        "actions.<name>"
    );
    assert_eq!(
        known(Object::Ingress, "conditions.svc-1").suffix,
        "conditions.<service>"
    );
    assert_eq!(
        known(Object::Ingress, "listener-attributes.HTTPS-443").suffix,
        "listener-attributes.<PROTOCOL>-<port>"
    );
    assert_eq!(known(Object::Ingress, "scheme").suffix, "scheme");
}

#[test]
fn a_service_carries_only_target_group_auth_and_tag_keys() {
    for s in [
        "target-type",
        "backend-protocol",
        "backend-protocol-version",
        "target-group-attributes",
        "healthcheck-port",
        "healthcheck-protocol",
        "healthcheck-path",
        "healthcheck-interval-seconds",
        "healthcheck-timeout-seconds",
        "healthy-threshold-count",
        "unhealthy-threshold-count",
        "success-codes",
        "target-node-labels",
        "target-control-port.svc.80",
        "multi-cluster-target-group",
        "tags",
        "auth-type",
        "auth-idp-cognito",
        "auth-idp-oidc",
        "auth-on-unauthenticated-request",
        "auth-scope",
        "auth-session-cookie",
        "auth-session-timeout",
    ] {
        let k = known(Object::Service, s);
        assert_eq!(k.reach, Reach::Own, "{s}");
        assert_eq!(k.object, Object::Service);
    }
    for s in [
        "scheme",
        "listen-ports",
        "certificate-arn",
        "group.name",
        "group.order",
        "actions.x",
        "conditions.svc",
        "transforms.svc",
        "use-regex-path-match",
        "jwt-validation",
        "ssl-redirect",
        "load-balancer-attributes",
        "frontend-nlb-healthcheck-port",
    ] {
        assert!(
            matches!(
                classify(Object::Service, &format!("{PREFIX}{s}")),
                Some(Err(_))
            ),
            "{s} is not read on a Service"
        );
    }
    // The Service's tags go on its target group only: a tenant's own business.
    assert_eq!(
        known(Object::Ingress, "tags").reach,
        Reach::Group { merge: true }
    );
}

#[test]
fn a_service_value_is_parsed_like_the_ingress_one() {
    let k = known(Object::Service, "healthcheck-interval-seconds");
    assert_eq!(k.parse("15"), Ok(Parsed::Int(15)));
    assert_eq!(k.parse("x").map_err(|e| e.failure), Err(Failure::Build));
}

#[test]
fn the_error_names_the_key_what_is_expected_what_was_given_and_the_consequence() {
    let e = err("listen-ports", r#"[{"HTTP": 0}]"#, Failure::Build);
    let text = e.to_string();
    assert!(
        text.starts_with(&format!("{PREFIX}listen-ports: expected a JSON list of")),
        "{text}"
    );
    assert!(text.contains(r#"got `[{"HTTP": 0}]`"#), "{text}");
    assert!(
        text.contains("listen port must be within [1, 65535]: 0"),
        "{text}"
    );
    assert!(text.contains("whole ALB group"), "{text}");
    let long = "x".repeat(500);
    let e = err("scheme", &long, Failure::Build);
    assert!(e.got.chars().count() <= 121, "{}", e.got);
    let e = err("scheme", "internal\nx", Failure::Build);
    assert!(!e.got.contains('\n'));
}

#[test]
fn enumerations_are_exact_and_case_sensitive() {
    for (s, good, bad) in [
        (
            "scheme",
            &["internet-facing", "internal"][..],
            &["Internal", "", "public"][..],
        ),
        (
            "ip-address-type",
            &["ipv4", "dualstack", "dualstack-without-public-ipv4"],
            &["IPv4", "ipv6"],
        ),
        ("target-type", &["instance", "ip"], &["IP", "alb", ""]),
        ("backend-protocol", &["HTTP", "HTTPS"], &["http", "GRPC"]),
        (
            "backend-protocol-version",
            &["HTTP1", "HTTP2", "GRPC"],
            &["http2", "HTTP3"],
        ),
        ("healthcheck-protocol", &["HTTP", "HTTPS"], &["TCP"]),
        ("auth-type", &["none", "cognito", "oidc"], &["OIDC", ""]),
        ("frontend-nlb-scheme", &["internal"], &["private"]),
    ] {
        for v in good {
            assert_eq!(ok(s, v), Parsed::Str(v.to_string()), "{s}={v}");
        }
        for v in bad {
            err(s, v, Failure::Build);
        }
    }
}

#[test]
fn group_membership_values() {
    assert_eq!(
        ok("group.name", "alb-deployments"),
        Parsed::Str("alb-deployments".into())
    );
    ok("group.name", "a");
    ok("group.name", "team.a-2");
    ok("group.name", &"a".repeat(63));
    // Invalid names do not fail the group: the Ingress just leaves it (group_loader.go:156).
    for bad in ["", "Alb", "-a", "a-", "a_b", "a b", &"a".repeat(64)] {
        err("group.name", bad, Failure::Dropped);
    }
    assert_eq!(ok("group.order", "-1000"), Parsed::Int(-1000));
    assert_eq!(ok("group.order", "+1000"), Parsed::Int(1000));
    assert_eq!(ok("group.order", "0"), Parsed::Int(0));
    for bad in ["1001", "-1001", "1.5", " 1", "", "2147483648", "ten"] {
        err("group.order", bad, Failure::Build);
    }
}

#[test]
fn every_key_answers_any_value_with_a_parse_or_a_refusal_naming_it() {
    // Deterministic junk built from JSON and map fragments, fed to every key's parser: each
    // answers (the webhook never panics on a request), the same way every time, and a refusal
    // names the key, what it expects and the value on one line, with a reason.
    const PIECES: &[&str] = &[
        "[",
        "]",
        "{",
        "}",
        "\"",
        ":",
        ",",
        "=",
        "\\",
        "\\u",
        "d83d",
        "null",
        "true",
        "-0",
        "1e9",
        "80",
        "\"HTTP\"",
        "\"type\"",
        "\"forward\"",
        "a",
        " ",
        "\u{0}",
        "é",
        "😀",
        "\"targetGroups\"",
        "\"field\"",
        "\"host-header\"",
        "/",
        "%",
    ];
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) as usize
    };
    let keys: Vec<Known> = CONTROLLER_SUFFIXES
        .iter()
        .map(|s| known(Object::Ingress, s))
        .collect();
    // (accepted, refused) per key.
    let mut answers = vec![(0usize, 0usize); keys.len()];
    for _ in 0..3000 {
        let len = next() % 24;
        let value: String = (0..len).map(|_| PIECES[next() % PIECES.len()]).collect();
        for (k, counts) in keys.iter().zip(answers.iter_mut()) {
            let first = k.parse(&value);
            assert_eq!(first, k.parse(&value), "{} = {value:?}: two answers", k.key);
            match first {
                Ok(_) => counts.0 += 1,
                Err(e) => {
                    counts.1 += 1;
                    assert_eq!(e.key, k.key, "{value:?}");
                    assert_eq!(e.expects, k.expects, "{value:?}");
                    assert!(
                        !e.problem.trim().is_empty(),
                        "{}: no reason for {value:?}",
                        k.key
                    );
                    assert_eq!(e.got, excerpt(&value), "{}: {value:?}", k.key);
                    assert!(
                        !e.got.contains(|c: char| c.is_control()),
                        "{}: the value is not on one line: {:?}",
                        k.key,
                        e.got
                    );
                    let shown = e.to_string();
                    assert!(
                        shown.starts_with(&format!("{}: expected {}", k.key, k.expects))
                            && shown.contains(e.failure.consequence()),
                        "{shown}"
                    );
                }
            }
        }
    }
    // The junk reaches both answers: overall more refusals than parses, and every key with a
    // typed value (integers, booleans, enums, lists, maps, JSON) refuses some of it. Free-text
    // keys (names, ids, ARNs) may accept all of it.
    let refused: usize = answers.iter().map(|(_, r)| r).sum();
    let accepted: usize = answers.iter().map(|(a, _)| a).sum();
    assert!(refused > accepted, "accepted {accepted}, refused {refused}");
    assert!(accepted > 0, "nothing accepted");
    for typed in [
        "group.order",
        "scheme",
        "ip-address-type",
        "listen-ports",
        "ssl-redirect",
        "target-type",
        "backend-protocol",
        "healthcheck-port",
        "healthcheck-interval-seconds",
        "success-codes",
        "tags",
        "load-balancer-attributes",
        "target-group-attributes",
        "auth-idp-oidc",
    ] {
        let i = CONTROLLER_SUFFIXES
            .iter()
            .position(|s| *s == typed)
            .unwrap_or_else(|| panic!("{typed} is not a controller suffix"));
        assert!(
            answers[i].1 > 0,
            "{typed} accepted every value: {:?}",
            answers[i]
        );
    }
}
