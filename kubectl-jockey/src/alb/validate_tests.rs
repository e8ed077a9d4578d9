//! Unit tests of `validate-alb-routing`: every branch of the checks.

use super::*;
use crate::alb::test_support::*;
use serde_json::json;

#[test]
fn a_fully_wired_host_passes_every_check() {
    let checks = run(
        &healthy_cluster(),
        &AwsView::Read(good_snapshot()),
        &good_dns(),
        HOST,
    );
    assert!(!any_failed(&checks), "{checks:#?}");
    let names: Vec<_> = checks.iter().map(|c| c.name).collect();
    assert_eq!(
        names,
        [
            "ingress",
            "address",
            "group-settings",
            "service",
            "endpoints",
            "load-balancer",
            "listener-rule",
            "target-health",
            "targets-are-endpoints",
            "dns"
        ]
    );
    assert!(checks.iter().all(|c| c.outcome == Outcome::Pass));
    assert!(detail(&checks, "listener-rule").contains("HTTPS:443 rule priority 1"));
    assert!(detail(&checks, "target-health").contains("1/1 healthy"));
}

#[test]
fn an_unknown_host_fails_at_the_ingress_and_skips_the_rest() {
    let checks = run(
        &healthy_cluster(),
        &AwsView::Read(good_snapshot()),
        &good_dns(),
        "nope.deploy.agentops.ai",
    );
    assert_eq!(outcome(&checks, "ingress"), Outcome::Fail);
    assert!(
        checks[0]
            .fix
            .as_deref()
            .unwrap()
            .contains("kubectl jockey deploy")
    );
    for n in ["service", "endpoints", "load-balancer", "dns"] {
        assert_eq!(outcome(&checks, n), Outcome::Skip, "{n}");
    }
}

#[test]
fn an_ingress_outside_the_shared_group_fails() {
    let mut cluster = healthy_cluster();
    cluster.ingresses = vec![ingress("team-a", "p1", Some("private"), Some(ALB))];
    let checks = run(&cluster, &AwsView::Skipped("x".into()), &good_dns(), HOST);
    assert_eq!(outcome(&checks, "ingress"), Outcome::Fail);
    assert!(detail(&checks, "ingress").contains("\"private\""));
}

#[test]
fn two_ingresses_for_one_host_fail() {
    let mut cluster = healthy_cluster();
    cluster
        .ingresses
        .push(ingress("team-b", "p1", Some(BASE), Some(ALB)));
    let checks = run(&cluster, &AwsView::Skipped("x".into()), &good_dns(), HOST);
    assert_eq!(outcome(&checks, "ingress"), Outcome::Fail);
    assert!(detail(&checks, "ingress").contains("2 Ingresses claim"));
}

#[test]
fn no_address_or_a_controller_failure_fails_the_address_check() {
    let mut cluster = healthy_cluster();
    cluster.ingresses = vec![ingress("team-a", "p1", Some(BASE), None)];
    let checks = run(&cluster, &AwsView::Skipped("x".into()), &good_dns(), HOST);
    assert_eq!(outcome(&checks, "address"), Outcome::Fail);
    assert_eq!(outcome(&checks, "dns"), Outcome::Skip);

    let mut cluster = healthy_cluster();
    cluster.events = vec![event(
        "team-a",
        "ing-p1",
        "FailedDeployModel",
        "2026-01-01T10:00:00Z",
    )];
    let checks = run(&cluster, &AwsView::Skipped("x".into()), &good_dns(), HOST);
    assert_eq!(outcome(&checks, "address"), Outcome::Fail);
    assert!(detail(&checks, "address").contains("FailedDeployModel"));

    // The controller's certificate failure comes with the certificate fix.
    cluster.events[0].reason = Some("FailedBuildModel".into());
    cluster.events[0].message = Some(
        "Failed build model due to no certificate found for host: p1.deploy.agentops.ai".into(),
    );
    let checks = run(&cluster, &AwsView::Skipped("x".into()), &good_dns(), HOST);
    let fix = checks
        .iter()
        .find(|c| c.name == "address")
        .and_then(|c| c.fix.clone())
        .unwrap_or_default();
    assert!(
        fix.contains("ALB_CERTIFICATE_ARN") && fix.contains("*.deploy.agentops.ai"),
        "{fix}"
    );
}

#[test]
fn conflicting_group_settings_fail_naming_the_other_ingress() {
    let mut cluster = healthy_cluster();
    let other = with_annotation(
        ingress("team-b", "p2", Some(BASE), Some(ALB)),
        "scheme",
        "internal",
    );
    cluster.ingresses.push(other);
    let checks = run(&cluster, &AwsView::Skipped("x".into()), &good_dns(), HOST);
    assert_eq!(outcome(&checks, "group-settings"), Outcome::Fail);
    let d = detail(&checks, "group-settings");
    assert!(
        d.contains("scheme") && d.contains("team-b/ing-p2") && d.contains("internal"),
        "{d}"
    );
}

#[test]
fn agreeing_members_of_another_namespace_pass_group_settings() {
    let mut cluster = healthy_cluster();
    cluster
        .ingresses
        .push(ingress("team-b", "p2", Some(BASE), Some(ALB)));
    let checks = run(&cluster, &AwsView::Skipped("x".into()), &good_dns(), HOST);
    assert_eq!(outcome(&checks, "group-settings"), Outcome::Pass);
    assert!(detail(&checks, "group-settings").contains("1 other"));
}

#[test]
fn service_problems() {
    let cases: Vec<(Vec<Service>, &str)> = vec![
        (vec![], "does not exist"),
        (
            vec![service("team-a", "p1", "NodePort", json!(8080))],
            "not ClusterIP",
        ),
        (
            vec![service("team-a", "p1", "ClusterIP", json!(9000))],
            "not 8080",
        ),
        (
            vec![service("other-ns", "p1", "ClusterIP", json!(8080))],
            "does not exist",
        ),
    ];
    for (services, expected) in cases {
        let mut cluster = healthy_cluster();
        cluster.services = services;
        let checks = run(&cluster, &AwsView::Skipped("x".into()), &good_dns(), HOST);
        assert_eq!(outcome(&checks, "service"), Outcome::Fail, "{expected}");
        assert!(detail(&checks, "service").contains(expected), "{checks:#?}");
    }
    // A named target port is accepted (it resolves on the pod).
    let mut cluster = healthy_cluster();
    cluster.services = vec![service("team-a", "p1", "ClusterIP", json!("http"))];
    let checks = run(&cluster, &AwsView::Skipped("x".into()), &good_dns(), HOST);
    assert_eq!(outcome(&checks, "service"), Outcome::Pass);
}

#[test]
fn the_service_port_must_exist() {
    let mut cluster = healthy_cluster();
    let mut svc = service("team-a", "p1", "ClusterIP", json!(8080));
    svc.spec.as_mut().unwrap().ports.as_mut().unwrap()[0].port = 8081;
    cluster.services = vec![svc];
    let checks = run(&cluster, &AwsView::Skipped("x".into()), &good_dns(), HOST);
    assert_eq!(outcome(&checks, "service"), Outcome::Fail);
    assert!(detail(&checks, "service").contains("no port 80"));
}

#[test]
fn endpoints_must_be_ready() {
    let mut cluster = healthy_cluster();
    cluster.endpoint_slices = vec![slice("team-a", "p1", &[("10.0.1.10", Some(false))])];
    let checks = run(&cluster, &AwsView::Skipped("x".into()), &good_dns(), HOST);
    assert_eq!(outcome(&checks, "endpoints"), Outcome::Fail);

    // `ready` unset counts as ready.
    cluster.endpoint_slices = vec![slice(
        "team-a",
        "p1",
        &[("10.0.1.10", None), ("10.0.1.11", Some(false))],
    )];
    let checks = run(&cluster, &AwsView::Skipped("x".into()), &good_dns(), HOST);
    assert_eq!(outcome(&checks, "endpoints"), Outcome::Pass);
    assert!(detail(&checks, "endpoints").contains("1 ready endpoint(s): 10.0.1.10"));
}

#[test]
fn without_aws_the_aws_checks_are_skipped_not_failed() {
    let checks = run(
        &healthy_cluster(),
        &AwsView::Skipped("no credentials".into()),
        &good_dns(),
        HOST,
    );
    assert!(!any_failed(&checks));
    for n in [
        "load-balancer",
        "listener-rule",
        "target-health",
        "targets-are-endpoints",
    ] {
        assert_eq!(outcome(&checks, n), Outcome::Skip);
        assert!(detail(&checks, n).contains("no credentials"));
    }
}

#[test]
fn an_aws_error_fails() {
    let checks = run(
        &healthy_cluster(),
        &AwsView::Failed("AccessDenied".into()),
        &good_dns(),
        HOST,
    );
    assert_eq!(outcome(&checks, "load-balancer"), Outcome::Fail);
    assert!(detail(&checks, "load-balancer").contains("AccessDenied"));
}

#[test]
fn a_missing_or_inactive_load_balancer_fails() {
    let checks = run(
        &healthy_cluster(),
        &AwsView::Read(ElbSnapshot::default()),
        &good_dns(),
        HOST,
    );
    assert_eq!(outcome(&checks, "load-balancer"), Outcome::Fail);
    assert!(detail(&checks, "load-balancer").contains(ALB));
    assert_eq!(outcome(&checks, "listener-rule"), Outcome::Skip);

    let mut snap = good_snapshot();
    snap.load_balancers[0].state = "failed".into();
    let checks = run(&healthy_cluster(), &AwsView::Read(snap), &good_dns(), HOST);
    assert_eq!(outcome(&checks, "load-balancer"), Outcome::Fail);
}

#[test]
fn the_load_balancer_is_found_by_group_tag_when_the_address_differs() {
    let mut snap = good_snapshot();
    snap.load_balancers[0].dns_name = "renamed.elb.amazonaws.com".into();
    let checks = run(&healthy_cluster(), &AwsView::Read(snap), &good_dns(), HOST);
    assert_eq!(outcome(&checks, "load-balancer"), Outcome::Pass);
}

#[test]
fn a_missing_host_rule_fails_naming_the_listeners() {
    let snap = snapshot(
        vec![forward("1", "p2.deploy.agentops.ai", "arn:tg/p2")],
        vec![tg("arn:tg/p2", &[("10.0.1.12", "healthy")])],
    );
    let checks = run(&healthy_cluster(), &AwsView::Read(snap), &good_dns(), HOST);
    assert_eq!(outcome(&checks, "listener-rule"), Outcome::Fail);
    let d = detail(&checks, "listener-rule");
    assert!(
        d.contains("no listener rule") && d.contains("HTTPS:443"),
        "{d}"
    );
    assert_eq!(outcome(&checks, "target-health"), Outcome::Skip);
}

#[test]
fn a_host_rule_that_does_not_forward_fails() {
    let mut rule = forward("1", HOST, "arn:tg/p1");
    rule.action = Action::FixedResponse {
        status: "503".into(),
    };
    let snap = snapshot(vec![rule], vec![]);
    let checks = run(&healthy_cluster(), &AwsView::Read(snap), &good_dns(), HOST);
    assert_eq!(outcome(&checks, "listener-rule"), Outcome::Fail);
    assert!(detail(&checks, "listener-rule").contains("does not forward"));
}

#[test]
fn the_lowest_priority_matching_rule_wins() {
    let mut wildcard = forward("5", "*.deploy.agentops.ai", "arn:tg/catchall");
    wildcard.action = Action::FixedResponse {
        status: "404".into(),
    };
    let snap = snapshot(
        vec![wildcard, forward("2", HOST, "arn:tg/p1")],
        vec![tg("arn:tg/p1", &[("10.0.1.10", "healthy")])],
    );
    let checks = run(&healthy_cluster(), &AwsView::Read(snap), &good_dns(), HOST);
    assert_eq!(outcome(&checks, "listener-rule"), Outcome::Pass);
    assert!(detail(&checks, "listener-rule").contains("priority 2"));
}

#[test]
fn unhealthy_or_missing_targets_fail_with_their_states() {
    let snap = snapshot(
        vec![forward("1", HOST, "arn:tg/p1")],
        vec![tg(
            "arn:tg/p1",
            &[("10.0.1.10", "unhealthy"), ("10.0.1.11", "draining")],
        )],
    );
    let checks = run(&healthy_cluster(), &AwsView::Read(snap), &good_dns(), HOST);
    assert_eq!(outcome(&checks, "target-health"), Outcome::Fail);
    let d = detail(&checks, "target-health");
    assert!(
        d.contains("10.0.1.10:8080 unhealthy (Target.FailedHealthChecks)"),
        "{d}"
    );

    let snap = snapshot(
        vec![forward("1", HOST, "arn:tg/p1")],
        vec![tg("arn:tg/p1", &[])],
    );
    let checks = run(&healthy_cluster(), &AwsView::Read(snap), &good_dns(), HOST);
    assert!(detail(&checks, "target-health").contains("no targets registered"));

    let snap = snapshot(vec![forward("1", HOST, "arn:tg/gone")], vec![]);
    let checks = run(&healthy_cluster(), &AwsView::Read(snap), &good_dns(), HOST);
    assert!(detail(&checks, "target-health").contains("does not exist"));
}

#[test]
fn one_healthy_target_is_enough() {
    let snap = snapshot(
        vec![forward("1", HOST, "arn:tg/p1")],
        vec![tg(
            "arn:tg/p1",
            &[("10.0.1.10", "unhealthy"), ("10.0.1.11", "healthy")],
        )],
    );
    let checks = run(&healthy_cluster(), &AwsView::Read(snap), &good_dns(), HOST);
    assert_eq!(outcome(&checks, "target-health"), Outcome::Pass);
    assert!(detail(&checks, "target-health").contains("1/2 healthy"));
}

#[test]
fn dns_passes_by_alias_addresses_and_fails_when_missing_or_elsewhere() {
    let aws = AwsView::Skipped("x".into());
    // Alias (A records) to the ALB's addresses.
    let alias = DnsView::Answers {
        host: DnsAnswer {
            ips: vec!["192.0.2.10".parse().unwrap()],
            ..Default::default()
        },
        albs: BTreeMap::from([(
            ALB.to_string(),
            DnsAnswer {
                ips: vec!["192.0.2.10".parse().unwrap(), "192.0.2.11".parse().unwrap()],
                ..Default::default()
            },
        )]),
    };
    let checks = run(&healthy_cluster(), &aws, &alias, HOST);
    assert_eq!(outcome(&checks, "dns"), Outcome::Pass);
    assert!(detail(&checks, "dns").contains("alias"));

    let nx = DnsView::Answers {
        host: DnsAnswer {
            error: Some("no record found".into()),
            ..Default::default()
        },
        albs: BTreeMap::new(),
    };
    let checks = run(&healthy_cluster(), &aws, &nx, HOST);
    assert_eq!(outcome(&checks, "dns"), Outcome::Fail);
    assert!(
        checks
            .iter()
            .find(|c| c.name == "dns")
            .unwrap()
            .fix
            .as_deref()
            .unwrap()
            .contains(ALB)
    );

    let elsewhere = DnsView::Answers {
        host: DnsAnswer {
            cnames: vec!["old-alb.elb.amazonaws.com".into()],
            ips: vec!["198.51.100.7".parse().unwrap()],
            error: None,
        },
        albs: BTreeMap::new(),
    };
    let checks = run(&healthy_cluster(), &aws, &elsewhere, HOST);
    assert_eq!(outcome(&checks, "dns"), Outcome::Fail);
    assert!(detail(&checks, "dns").contains("old-alb.elb.amazonaws.com"));

    let checks = run(
        &healthy_cluster(),
        &aws,
        &DnsView::Skipped("--no-dns".into()),
        HOST,
    );
    assert_eq!(outcome(&checks, "dns"), Outcome::Skip);
}

#[test]
fn the_probe_result_is_a_check_only_when_requested() {
    let cluster = healthy_cluster();
    let aws = AwsView::Skipped("x".into());
    let dns = DnsView::Skipped("x".into());
    let input = |probe| ValidateInput {
        host: HOST,
        base_group: BASE,
        cluster: &cluster,
        aws: &aws,
        dns: &dns,
        probe,
    };
    assert!(
        !validate(&input(&ProbeResult::NotRequested))
            .iter()
            .any(|c| c.name == "probe")
    );
    let ok = validate(&input(&ProbeResult::Status(200)));
    assert_eq!(outcome(&ok, "probe"), Outcome::Pass);
    let bad = validate(&input(&ProbeResult::Status(503)));
    assert_eq!(outcome(&bad, "probe"), Outcome::Fail);
    let err = validate(&input(&ProbeResult::Error("timeout".into())));
    assert_eq!(outcome(&err, "probe"), Outcome::Fail);
}

#[test]
fn healthy_targets_must_be_the_services_endpoints() {
    // The endpoint is 10.0.1.10; the only healthy target is a pod that is gone.
    let snap = snapshot(
        vec![forward("1", HOST, "arn:tg/p1")],
        vec![tg("arn:tg/p1", &[("10.0.9.99", "healthy")])],
    );
    let checks = run(&healthy_cluster(), &AwsView::Read(snap), &good_dns(), HOST);
    assert_eq!(outcome(&checks, "target-health"), Outcome::Pass);
    assert_eq!(outcome(&checks, "targets-are-endpoints"), Outcome::Fail);
    assert!(detail(&checks, "targets-are-endpoints").contains("10.0.9.99"));

    // Instance targets are nodes, not endpoints: nothing to compare.
    let mut instance = tg("arn:tg/p1", &[("i-0abc", "healthy")]);
    instance.target_type = "instance".into();
    let snap = snapshot(vec![forward("1", HOST, "arn:tg/p1")], vec![instance]);
    let checks = run(&healthy_cluster(), &AwsView::Read(snap), &good_dns(), HOST);
    assert_eq!(outcome(&checks, "targets-are-endpoints"), Outcome::Skip);

    // Without ready endpoints the endpoints check already failed; this one has nothing to say.
    let mut cluster = healthy_cluster();
    cluster.endpoint_slices.clear();
    let checks = run(&cluster, &AwsView::Read(good_snapshot()), &good_dns(), HOST);
    assert_eq!(outcome(&checks, "targets-are-endpoints"), Outcome::Skip);
}
