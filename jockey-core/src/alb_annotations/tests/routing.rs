//! actions.*, conditions.*, transforms.*: the cases of enhanced_backend_builder_test.go and
//! model_build_listener_rules_test.go, and what config_types.go validates.

use super::*;

fn action(value: &str) -> Action {
    match ok("actions.x", value) {
        Parsed::Action(a) => a,
        other => panic!("{other:?}"),
    }
}

fn conditions(value: &str) -> Vec<Condition> {
    match ok("conditions.svc", value) {
        Parsed::Conditions(c) => c,
        other => panic!("{other:?}"),
    }
}

fn svc(name: &str, port: ServicePort, weight: Option<i32>) -> Target {
    Target {
        to: TargetRef::Service {
            name: name.into(),
            port,
        },
        weight,
    }
}

#[test]
fn forward_to_services() {
    let a = action(
        r#"{"type":"forward","forwardConfig":{"targetGroups":[{"serviceName":"svc-1","servicePort":"http"}]}}"#,
    );
    assert_eq!(a.kind(), "forward");
    assert_eq!(
        a.targets(),
        [svc("svc-1", ServicePort::Name("http".into()), None)]
    );
    // String ports that are numbers become numbers (normalizeServicePortForBackwardsCompatibility).
    let a = action(
        r#"{"type":"forward","forwardConfig":{"targetGroups":[{"serviceName":"s","servicePort":"80","weight":10},{"serviceName":"t","servicePort":8080,"weight":90}],"targetGroupStickinessConfig":{"enabled":true,"durationSeconds":60}}}"#,
    );
    assert_eq!(
        a.targets(),
        [
            svc("s", ServicePort::Number(80), Some(10)),
            svc("t", ServicePort::Number(8080), Some(90))
        ]
    );
    assert_eq!(
        a,
        Action::Forward(Forward {
            targets: a.targets().to_vec(),
            stickiness: Some((Some(true), Some(60)))
        })
    );
    // intstr.Parse is ParseInt(32): "+80" and "080" are 80; a number beyond int32 stays a
    // name, which no Service port can have.
    let a = action(
        r#"{"type":"forward","forwardConfig":{"targetGroups":[{"serviceName":"s","servicePort":"+080","weight":1},{"serviceName":"s","servicePort":"grpc-web","weight":1}]}}"#,
    );
    assert_eq!(
        a.targets(),
        [
            svc("s", ServicePort::Number(80), Some(1)),
            svc("s", ServicePort::Name("grpc-web".into()), Some(1))
        ]
    );
    err(
        "actions.x",
        r#"{"type":"forward","forwardConfig":{"targetGroups":[{"serviceName":"s","servicePort":"4294967376"}]}}"#,
        Failure::Build,
    );
}

#[test]
fn forward_to_target_groups_of_any_owner() {
    let arn = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/other/abc";
    let a = action(&format!(r#"{{"type":"forward","targetGroupARN":"{arn}"}}"#));
    assert_eq!(
        a.targets(),
        [Target {
            to: TargetRef::TargetGroupArn(arn.into()),
            weight: None
        }]
    );
    let a = action(r#"{"type":"forward","targetGroupName":"tg-of-someone"}"#);
    assert_eq!(
        a.targets()[0].to,
        TargetRef::TargetGroupName("tg-of-someone".into())
    );
    // Both given: the ARN is used (model_build_actions.go:120).
    let a = action(&format!(
        r#"{{"type":"forward","forwardConfig":{{"targetGroups":[{{"targetGroupARN":"{arn}","targetGroupName":"n"}}]}}}}"#
    ));
    assert_eq!(a.targets()[0].to, TargetRef::TargetGroupArn(arn.into()));
}

#[test]
fn redirect_and_fixed_response() {
    // The documented ssl-redirect action, with Go's case-insensitive keys.
    let a = action(
        r#"{"Type": "redirect", "RedirectConfig": { "Protocol": "HTTPS", "Port": "443", "StatusCode": "HTTP_301"}}"#,
    );
    assert_eq!(
        a,
        Action::Redirect(Redirect {
            host: None,
            path: None,
            port: Some("443".into()),
            protocol: Some("HTTPS".into()),
            query: None,
            status_code: "HTTP_301".into()
        })
    );
    assert!(a.targets().is_empty());
    let a = action(
        r##"{"type":"redirect","redirectConfig":{"host":"victim.example.com","path":"/#{path}","port":"#{port}","protocol":"#{protocol}","statusCode":"HTTP_302"}}"##,
    );
    assert!(matches!(&a, Action::Redirect(r) if r.host.as_deref() == Some("victim.example.com")));
    let a = action(
        r#"{"type":"fixed-response","fixedResponseConfig":{"contentType":"text/plain","statusCode":"503","messageBody":"down"}}"#,
    );
    assert_eq!(a.kind(), "fixed-response");
    // A config of another type is ignored, as the controller ignores it.
    let a = action(
        r#"{"type":"fixed-response","fixedResponseConfig":{"statusCode":"404"},"forwardConfig":{"targetGroups":[{"serviceName":"x","servicePort":1}]}}"#,
    );
    assert!(a.targets().is_empty());
}

#[test]
fn actions_the_controller_refuses() {
    for bad in [
        "",
        "null",
        "{}",
        "[]",
        r#"{"type":"forward"}"#,
        r#"{"type":"Forward","targetGroupARN":"arn:x"}"#,
        r#"{"type":"authenticate-oidc"}"#,
        r#"{"type":"forward","targetGroupARN":"arn:x","forwardConfig":{"targetGroups":[]}}"#,
        r#"{"type":"forward","forwardConfig":{"targetGroups":[{"servicePort":80}]}}"#,
        r#"{"type":"forward","forwardConfig":{"targetGroups":[{"serviceName":"s","targetGroupARN":"arn:x","servicePort":80}]}}"#,
        r#"{"type":"forward","forwardConfig":{"targetGroups":[{"serviceName":"s"}]}}"#,
        r#"{"type":"forward","forwardConfig":{"targetGroups":[{"serviceName":"s","servicePort":null}]}}"#,
        r#"{"type":"forward","forwardConfig":{"targetGroups":[{"serviceName":"s","servicePort":80},{"serviceName":"t","servicePort":80,"weight":1}]}}"#,
        r#"{"type":"forward","forwardConfig":{"targetGroups":[{"serviceName":"s","servicePort":true}]}}"#,
        r#"{"type":"forward","forwardConfig":{"targetGroups":[{"serviceName":"s","servicePort":0}]}}"#,
        r#"{"type":"forward","forwardConfig":{"targetGroups":[{"serviceName":"s","servicePort":"70000"}]}}"#,
        r#"{"type":"forward","forwardConfig":{"targetGroups":[{"serviceName":"s","servicePort":"HTTP"}]}}"#,
        r#"{"type":"forward","forwardConfig":{"targetGroups":[{"serviceName":"s","servicePort":""}]}}"#,
        r#"{"type":"forward","forwardConfig":{"targetGroups":[{"serviceName":"s","servicePort":80,"weight":"1"}]}}"#,
        r#"{"type":"forward","targetGroupName":""}"#,
        r#"{"type":"redirect"}"#,
        r#"{"type":"redirect","redirectConfig":{"host":"x"}}"#,
        r#"{"type":"fixed-response","fixedResponseConfig":{"messageBody":"x"}}"#,
        r#"{"type":"fixed-response"}"#,
        r#"{"type":"forward","forwardConfig":{"targetGroups":[{"serviceName":"s","servicePort":80}]}"#,
    ] {
        err("actions.x", bad, Failure::Build);
    }
}

#[test]
fn actions_aws_refuses() {
    for bad in [
        r#"{"type":"redirect","redirectConfig":{"statusCode":"HTTP_307"}}"#,
        r#"{"type":"redirect","redirectConfig":{"protocol":"https","statusCode":"HTTP_301"}}"#,
        r#"{"type":"redirect","redirectConfig":{"port":"0","statusCode":"HTTP_301"}}"#,
        r#"{"type":"fixed-response","fixedResponseConfig":{"statusCode":"302"}}"#,
        r#"{"type":"fixed-response","fixedResponseConfig":{"statusCode":"200","contentType":"text/xml"}}"#,
        r#"{"type":"forward","forwardConfig":{"targetGroups":[]}}"#,
        r#"{"type":"forward","targetGroupARN":""}"#,
        r#"{"type":"forward","forwardConfig":{"targetGroups":[{"serviceName":"s","servicePort":80,"weight":1000}]}}"#,
    ] {
        err("actions.x", bad, Failure::Deploy);
    }
    let six: Vec<String> = (0..6)
        .map(|i| format!(r#"{{"serviceName":"s{i}","servicePort":80,"weight":1}}"#))
        .collect();
    err(
        "actions.x",
        &format!(
            r#"{{"type":"forward","forwardConfig":{{"targetGroups":[{}]}}}}"#,
            six.join(",")
        ),
        Failure::Deploy,
    );
    // Build problems are reported before deploy ones, as the controller meets them first.
    err(
        "actions.x",
        r#"{"type":"forward","forwardConfig":{"targetGroups":[{"serviceName":"s","servicePort":80,"weight":5000},{"serviceName":"t"}]}}"#,
        Failure::Build,
    );
}

#[test]
fn a_repeated_key_cannot_hide_a_target() {
    // Go merges the second forwardConfig into the first: the service stays.
    let a = action(
        r#"{"type":"forward","forwardConfig":{"targetGroups":[{"serviceName":"victim","servicePort":80}]},"forwardConfig":{"targetGroups":[{"weight":1}]}}"#,
    );
    assert_eq!(
        a.targets(),
        [svc("victim", ServicePort::Number(80), Some(1))]
    );
    let a = action(
        r#"{"type":"redirect","redirectConfig":{"host":"evil.example","statusCode":"HTTP_301"},"RedirectConfig":{"path":"/x"}}"#,
    );
    assert!(
        matches!(&a, Action::Redirect(r) if r.host.as_deref() == Some("evil.example") && r.path.as_deref() == Some("/x"))
    );
}

#[test]
fn conditions_accepted() {
    let c = conditions(
        r#"[{"field":"http-header","httpHeaderConfig":{"httpHeaderName": "HeaderName", "values":["HeaderValue1", "HeaderValue2"]}}]"#,
    );
    assert_eq!(
        c,
        [Condition::HttpHeader {
            name: "HeaderName".into(),
            values: vec!["HeaderValue1".into(), "HeaderValue2".into()],
            regex_values: vec![]
        }]
    );
    conditions(
        r#"[{"field":"http-header","httpHeaderConfig":{"httpHeaderName": "HeaderName", "regexValues":["^HeaderValue[12]$"]}}]"#,
    );
    conditions(
        r#"[{"field":"path-pattern","pathPatternConfig":{"regexValues":["^\/anno\/.+$"]}}]"#,
    );
    conditions(
        r#"[{"field":"http-request-method","httpRequestMethodConfig":{"values":["GET", "HEAD"]}}]"#,
    );
    conditions(
        r#"[{"field":"query-string","queryStringConfig":{"values":[{"key":"paramA","value":"valueA1"},{"value":"valueB"}]}}]"#,
    );
    conditions(
        r#"[{"Field":"http-request-method","HttpRequestMethodConfig":{"Values":["GET", "HEAD"]}}]"#,
    );
    // Go leaves an unknown field unvalidated and the rule builder drops it.
    assert_eq!(
        conditions(r#"[{"field":"sni"}]"#),
        [Condition::Ignored {
            field: "sni".into()
        }]
    );
    assert_eq!(conditions("null"), []);
    assert_eq!(conditions("[]"), []);
}

#[test]
fn condition_hosts_are_every_host_header_value() {
    let c = conditions(
        r#"[{"field":"host-header","hostHeaderConfig":{"values":["anno.example.com"]}},{"Field":"host-header","HostHeaderConfig":{"Values":["victim.deploy.agentops.ai"]}},{"field":"host-header","hostHeaderConfig":{"regexValues":["^.+\\.example\\.com$"]}},{"field":"path-pattern","pathPatternConfig":{"values":["/x"]}}]"#,
    );
    let (values, regex) = condition_hosts(&c);
    assert_eq!(values, ["anno.example.com", "victim.deploy.agentops.ai"]);
    assert_eq!(regex, ["^.+\\.example\\.com$"]);
    // A host in a config the field does not select is ignored by the controller too.
    let c = conditions(
        r#"[{"field":"path-pattern","pathPatternConfig":{"values":["/x"]},"hostHeaderConfig":{"values":["victim"]}}]"#,
    );
    assert_eq!(condition_hosts(&c), (vec![], vec![]));
}

#[test]
fn conditions_refused() {
    for bad in [
        r#"[{"field":"host-header","hostHeaderConfig":{"values":["example.com"],"regexValues":["^example\\.com$"]}}]"#,
        r#"[{"field":"host-header","hostHeaderConfig":{}}]"#,
        r#"[{"field":"host-header"}]"#,
        r#"[{"field":"host-header","hostHeaderConfig":null}]"#,
        r#"[{"field":"http-header","httpHeaderConfig":{"httpHeaderName":"HeaderName","values":["HeaderValue1","HeaderValue2"],"regexValues":["^HeaderValue[12]$"]}}]"#,
        r#"[{"field":"http-header","httpHeaderConfig":{"httpHeaderName":"HeaderName"}}]"#,
        r#"[{"field":"path-pattern","pathPatternConfig":{"values":["/mypath"],"regexValues":["^/mypath$"]}}]"#,
        r#"[{"field":"path-pattern","pathPatternConfig":{}}]"#,
        r#"[{"field":"http-request-method","httpRequestMethodConfig":{"values":[]}}]"#,
        r#"[{"field":"query-string","queryStringConfig":{"values":[{"key":"k"}]}}]"#,
        r#"[{"field":"query-string","queryStringConfig":{"values":[]}}]"#,
        r#"[{"field":"source-ip","sourceIPConfig":{}}]"#,
        r#"{"field":"host-header","hostHeaderConfig":{"values":["a"]}}"#,
        r#"[{"field":"host-header","hostHeaderConfig":{"values":"a"}}]"#,
        "[",
    ] {
        err("conditions.svc", bad, Failure::Build);
    }
    // Build problems of a later condition come before deploy problems of an earlier one.
    err(
        "conditions.svc",
        r#"[{"field":"source-ip","sourceIPConfig":{"values":["x"]}},{"field":"host-header"}]"#,
        Failure::Build,
    );
    err(
        "conditions.svc",
        r#"[{"field":"http-request-method","httpRequestMethodConfig":{"values":["GET"]}},{"field":"http-request-method","httpRequestMethodConfig":{"values":["POST"]}}]"#,
        Failure::Deploy,
    );
    err(
        "conditions.svc",
        r#"[{"field":"http-header","httpHeaderConfig":{"values":["v"]}}]"#,
        Failure::Deploy,
    );
}

#[test]
fn transforms() {
    let t = match ok(
        "transforms.svc-1",
        r#"[{"type":"url-rewrite","urlRewriteConfig":{"rewrites":[{"regex":"/path1/(.*)","replace":"/newpath1/$1"}]}}]"#,
    ) {
        Parsed::Transforms(t) => t,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        t,
        [Transform {
            kind: TransformKind::UrlRewrite,
            rewrites: vec![("/path1/(.*)".into(), "/newpath1/$1".into())]
        }]
    );
    ok(
        "transforms.svc-1",
        r#"[{"type":"host-header-rewrite","hostHeaderRewriteConfig":{"rewrites":[{"regex":"^a\\.example\\.com$","replace":"b.example.com"}]}}]"#,
    );
    ok("transforms.svc-1", "null");
    for bad in [
        r#"[{"type":"path-rewrite","urlRewriteConfig":{"rewrites":[{"regex":"a","replace":"b"}]}}]"#,
        r#"[{"type":"url-rewrite"}]"#,
        r#"[{"type":"url-rewrite","hostHeaderRewriteConfig":{"rewrites":[{"regex":"a","replace":"b"}]}}]"#,
        r#"[{"type":"host-header-rewrite","hostHeaderRewriteConfig":{"rewrites":[]}}]"#,
        r#"[{"type":"url-rewrite","urlRewriteConfig":{}}]"#,
    ] {
        err("transforms.svc-1", bad, Failure::Build);
    }
}
