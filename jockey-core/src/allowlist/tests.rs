use super::samples::{self, INGRESS_KEYS, REFUSED};
use super::*;
use crate::contract::{ALB_OWN_DEFAULTS, DEFAULT_GROUP_SETTINGS};

fn settings() -> BTreeMap<String, String> {
    DEFAULT_GROUP_SETTINGS
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// jockey's defaults plus `extra` (keys without the prefix), as the webhook validates them.
fn ingress(extra: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut a: BTreeMap<String, String> = ALB_OWN_DEFAULTS
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    for (k, v) in extra {
        a.insert(format!("{}{k}", alb::PREFIX), v.to_string());
    }
    a
}

fn run(
    object: Object,
    a: &BTreeMap<String, String>,
    grants: &[String],
    s: &BTreeMap<String, String>,
) -> Verdict {
    let tags = [
        ("deployment".to_string(), "demo".to_string()),
        (
            "hostname".to_string(),
            "demo.deploy.agentops.ai".to_string(),
        ),
    ];
    let scope = Scope {
        grants,
        group_settings: s,
        jockey_tags: &tags,
    };
    let mut v = Verdict::default();
    check(object, a, &scope, &mut v);
    v
}

fn verdict(extra: &[(&str, &str)]) -> Verdict {
    run(Object::Ingress, &ingress(extra), &[], &settings())
}

fn denied_key(v: &Verdict, suffix: &str) -> bool {
    let f = format!("metadata.annotations[{}{suffix}]", alb::PREFIX);
    v.denials.iter().any(|d| d.field == f)
}

#[test]
fn every_listed_key_is_one_the_controller_reads_on_that_object() {
    for l in LISTED {
        let probe = l
            .key
            .strip_suffix('*')
            .map_or(l.key.to_string(), |f| format!("{f}x"));
        let key = format!("{}{probe}", alb::PREFIX);
        assert!(
            matches!(alb::classify(l.object, &key), Some(Ok(_))),
            "{} is listed on {:?} but the controller does not read it there",
            l.key,
            l.object
        );
    }
}

#[test]
fn every_key_the_controller_reads_has_one_decider() {
    let mut by_who = BTreeMap::new();
    for (pattern, reach, _) in alb::keys() {
        let probe = pattern
            .replace("<name>", "x")
            .replace("<service>", "x")
            .replace("<PROTOCOL>-<port>", "HTTPS-443")
            .replace("<service>.<port>", "x.80");
        let w = who(Object::Ingress, &probe);
        // Group-wide keys are the admin's whole-group values, and nothing else is.
        assert_eq!(
            w == Who::Admin,
            matches!(reach, Reach::Group { .. }),
            "{pattern}: {w:?} for reach {reach:?}"
        );
        *by_who.entry(format!("{w:?}")).or_insert(0) += 1;
    }
    // A tenant may set a handful; the rest is someone else's.
    assert_eq!(by_who.get("Tenant"), Some(&10), "{by_who:?}");
    // Keys the controller does not read (next year's) are nobody's.
    assert_eq!(who(Object::Ingress, "some-future-key"), Who::Never);
    assert_eq!(who(Object::Service, "healthcheck-path"), Who::Never);
    assert_eq!(who(Object::Service, "tags"), Who::Tenant);
}

#[test]
fn jockeys_own_defaults_pass_with_no_grant() {
    let v = verdict(&[]);
    assert!(v.allowed(), "{:?}", v.message("x"));
    // The gRPC defaults jockey fills in pass too, where the listeners allow gRPC.
    let v = verdict(&[
        ("backend-protocol-version", "GRPC"),
        ("success-codes", GRPC_SUCCESS_CODES),
        ("healthcheck-path", GRPC_HEALTH_PATH),
    ]);
    assert!(v.allowed(), "{:?}", v.message("x"));
}

#[test]
fn each_tenant_sample_alone_is_admitted_exactly_when_its_domain_says() {
    for key in INGRESS_KEYS {
        for sample in samples::ingress(key) {
            // Alone = with the keys it needs to make sense (gRPC codes need GRPC).
            let grpc_codes = key == "success-codes" && ["0", "12", "0-99"].contains(&sample.value);
            let mut extra = vec![(key, sample.value)];
            if grpc_codes {
                extra.push(("backend-protocol-version", "GRPC"));
                extra.push(("healthcheck-path", GRPC_HEALTH_PATH));
            }
            if key == "backend-protocol-version" && sample.value == "GRPC" {
                extra.push(("success-codes", GRPC_SUCCESS_CODES));
                extra.push(("healthcheck-path", GRPC_HEALTH_PATH));
            }
            if key == "healthcheck-timeout-seconds" && sample.alone {
                extra.push(("healthcheck-interval-seconds", "300"));
            }
            if key == "healthcheck-interval-seconds" && sample.value == "5" {
                extra.push(("healthcheck-timeout-seconds", "2"));
            }
            let v = verdict(&extra);
            assert_eq!(
                v.allowed(),
                sample.alone,
                "{key}={:?} with {extra:?}: {:?}",
                sample.value,
                v.message("x")
            );
            if !sample.alone {
                assert!(
                    denied_key(&v, key),
                    "{key}={:?}: {:?}",
                    sample.value,
                    v.message("x")
                );
            }
        }
    }
}

#[test]
fn keys_a_tenant_may_not_set_are_refused_naming_who_decides() {
    for (key, value) in REFUSED {
        let v = verdict(&[(key, value)]);
        assert!(denied_key(&v, key), "{key}={value}: {:?}", v.message("x"));
        let msg = v.message("x").unwrap_or_default();
        assert!(
            msg.contains("cluster admin")
                || msg.contains("no one")
                || msg.contains("does not read")
                || msg.contains("not an annotation"),
            "{key}: {msg}"
        );
    }
}

#[test]
fn combinations_the_controller_or_aws_refuse() {
    // The issue's cases, one by one.
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("target-type", "instance")], "target-type"),
        (&[("backend-protocol-version", "GRPC")], "success-codes"),
        (
            &[
                ("backend-protocol-version", "GRPC"),
                ("success-codes", "12"),
            ],
            "healthcheck-path",
        ),
        (
            &[("healthcheck-timeout-seconds", "15")],
            "healthcheck-timeout-seconds",
        ),
        (
            &[
                ("healthcheck-timeout-seconds", "30"),
                ("healthcheck-interval-seconds", "30"),
            ],
            "healthcheck-timeout-seconds",
        ),
        (
            &[
                ("healthcheck-interval-seconds", "5"),
                ("healthcheck-timeout-seconds", "5"),
            ],
            "healthcheck-timeout-seconds",
        ),
        (&[("success-codes", "12")], "success-codes"),
        (&[("healthcheck-port", "http")], "healthcheck-port"),
    ];
    for (extra, key) in cases {
        let v = verdict(extra);
        assert!(denied_key(&v, key), "{extra:?}: {:?}", v.message("x"));
    }
    // HTTP2 and GRPC need every rule on an HTTPS listener: without ssl-redirect the HTTP
    // listener carries the rules too.
    let mut s = settings();
    s.remove("ssl-redirect");
    let v = run(
        Object::Ingress,
        &ingress(&[("backend-protocol-version", "HTTP2")]),
        &[],
        &s,
    );
    assert!(
        denied_key(&v, "backend-protocol-version"),
        "{:?}",
        v.message("x")
    );
    let v = verdict(&[("backend-protocol-version", "HTTP2")]);
    assert!(v.allowed(), "{:?}", v.message("x"));
}

#[test]
fn granted_keys_pass_only_with_the_grant_and_still_in_combination() {
    let grants = vec![
        "target-group-attributes".to_string(),
        "auth-*".to_string(),
        "auth-type".to_string(),
        "auth-idp-cognito".to_string(),
        "jwt-validation".to_string(),
        "conditions.*".to_string(),
    ];
    let a = ingress(&[(
        "target-group-attributes",
        "stickiness.enabled=true,stickiness.type=lb_cookie",
    )]);
    assert!(!run(Object::Ingress, &a, &[], &settings()).allowed());
    assert!(run(Object::Ingress, &a, &grants, &settings()).allowed());
    // Granted, an unknown attribute is still refused (AWS would refuse it).
    let a = ingress(&[("target-group-attributes", "no.such.attribute=1")]);
    let v = run(Object::Ingress, &a, &grants, &settings());
    assert!(
        denied_key(&v, "target-group-attributes"),
        "{:?}",
        v.message("x")
    );
    // cognito without its identity provider fails the group's build.
    let a = ingress(&[("auth-type", "cognito")]);
    let v = run(Object::Ingress, &a, &grants, &settings());
    assert!(denied_key(&v, "auth-type"), "{:?}", v.message("x"));
    // an http-header condition on Host is refused by AWS.
    let a = ingress(&[(
        "conditions.svc",
        r#"[{"field":"http-header","httpHeaderConfig":{"httpHeaderName":"Host","values":["x"]}}]"#,
    )]);
    let v = run(Object::Ingress, &a, &grants, &settings());
    assert!(denied_key(&v, "conditions.svc"), "{:?}", v.message("x"));
    // A grant of a key that is not granted per project does not make it settable.
    assert!(!granted(&["scheme".into()], "scheme") || who(Object::Ingress, "scheme") == Who::Admin);
}

#[test]
fn service_tags_are_the_tenants_within_aws_and_the_controllers_limits() {
    let svc = |tags: &str| BTreeMap::from([(format!("{}tags", alb::PREFIX), tags.to_string())]);
    let ok = run(
        Object::Service,
        &svc("deployment=demo,hostname=demo.deploy.agentops.ai,team=red"),
        &[],
        &settings(),
    );
    assert!(ok.allowed(), "{:?}", ok.message("x"));
    for bad in [
        "deployment=other",
        "ingress.k8s.aws/stack=mine",
        "aws:x=1",
        &(0..41)
            .map(|i| format!("k{i}=v"))
            .collect::<Vec<_>>()
            .join(","),
    ] {
        let v = run(Object::Service, &svc(bad), &[], &settings());
        assert!(!v.allowed(), "{bad}");
    }
    // Anything else on a Service, and NLB annotations anywhere, are refused.
    for (k, v) in [
        (format!("{}healthcheck-path", alb::PREFIX), "/x"),
        (format!("{}auth-type", alb::PREFIX), "none"),
        (
            format!("{SERVICE_BETA_PREFIX}aws-load-balancer-type"),
            "nlb",
        ),
    ] {
        let verdict = run(
            Object::Service,
            &BTreeMap::from([(k.clone(), v.to_string())]),
            &[],
            &settings(),
        );
        assert!(!verdict.allowed(), "{k}");
    }
}

#[test]
fn the_readme_table_is_generated_from_the_list() {
    let table = readme_table();
    for l in LISTED {
        assert!(table.contains(&format!("`{}`", l.key)), "{} missing", l.key);
    }
    let readme = include_str!("../../../README.md");
    assert!(
        readme.contains(&table),
        "README.md's table of settable annotations is not the one crate::allowlist generates; regenerate it with `cargo run -p jockey-core --example allowlist-table` and paste it between the markers"
    );
}
