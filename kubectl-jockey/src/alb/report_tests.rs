//! Unit tests of the pure ALB report: hand-made objects, every branch of the checks.

use super::*;
use crate::alb::elb::{self, Listener, Rule, Target};
use serde_json::json;

const BASE: &str = "alb-deployments";
const ALB: &str = "k8s-albdeployments-0123456789.us-east-1.elb.amazonaws.com";
const ALB2: &str = "k8s-albdeployments2-9876543210.us-east-1.elb.amazonaws.com";

fn ingress(ns: &str, project: &str, group: Option<&str>, address: Option<&str>) -> Ingress {
    let mut annotations = serde_json::Map::new();
    if let Some(g) = group {
        annotations.insert(ANNOTATION_GROUP.into(), json!(g));
    }
    annotations.insert(
        "alb.ingress.kubernetes.io/scheme".into(),
        json!("internet-facing"),
    );
    annotations.insert(
        ANNOTATION_LISTEN_PORTS.into(),
        json!(r#"[{"HTTP": 80}, {"HTTPS": 443}]"#),
    );
    annotations.insert(ANNOTATION_SSL_REDIRECT.into(), json!("443"));
    let status = match address {
        Some(a) => json!({"loadBalancer": {"ingress": [{"hostname": a}]}}),
        None => json!({}),
    };
    serde_json::from_value(json!({
        "metadata": {
            "name": format!("ing-{project}"), "namespace": ns,
            "labels": {"jockey.agentops.ai/project": project},
            "annotations": annotations,
        },
        "spec": {
            "ingressClassName": "alb",
            "rules": [{
                "host": format!("{project}.deploy.agentops.ai"),
                "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": {
                    "service": {"name": format!("svc-{project}"), "port": {"number": 80}}}}]}
            }]
        },
        "status": status,
    }))
    .unwrap()
}

fn service(ns: &str, project: &str, kind: &str, target_port: serde_json::Value) -> Service {
    serde_json::from_value(json!({
        "metadata": {"name": format!("svc-{project}"), "namespace": ns},
        "spec": {"type": kind, "selector": {"app": project},
                 "ports": [{"port": 80, "targetPort": target_port}]}
    }))
    .unwrap()
}

fn slice(ns: &str, project: &str, endpoints: &[(&str, Option<bool>)]) -> EndpointSlice {
    let eps: Vec<_> = endpoints
        .iter()
        .map(|(ip, ready)| match ready {
            Some(r) => json!({"addresses": [ip], "conditions": {"ready": r}}),
            None => json!({"addresses": [ip]}),
        })
        .collect();
    serde_json::from_value(json!({
        "metadata": {"name": format!("svc-{project}-abc"), "namespace": ns,
                     "labels": {"kubernetes.io/service-name": format!("svc-{project}")}},
        "addressType": "IPv4",
        "endpoints": eps,
    }))
    .unwrap()
}

fn event(ns: &str, ingress: &str, reason: &str, at: &str) -> Event {
    serde_json::from_value(json!({
        "metadata": {"name": format!("{ingress}.{reason}.{at}"), "namespace": ns},
        "involvedObject": {"kind": "Ingress", "name": ingress, "namespace": ns},
        "reason": reason,
        "message": format!("{reason} for {ingress}"),
        "type": if reason == SUCCESS_REASON { "Normal" } else { "Warning" },
        "lastTimestamp": at,
        "count": 2,
    }))
    .unwrap()
}

fn pod(ready: bool) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": "aws-load-balancer-controller-abc", "namespace": "kube-system"},
        "status": {"phase": "Running",
                   "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}],
                   "containerStatuses": [{"name": "c", "ready": ready, "restartCount": 3,
                                          "image": "x", "imageID": "y"}]}
    }))
    .unwrap()
}

/// A healthy cluster: one project p1 in team-a, fully wired.
fn healthy_cluster() -> ClusterState {
    ClusterState {
        ingresses: vec![ingress("team-a", "p1", Some(BASE), Some(ALB))],
        services: vec![service("team-a", "p1", "ClusterIP", json!(8080))],
        endpoint_slices: vec![slice("team-a", "p1", &[("10.0.1.10", Some(true))])],
        events: vec![],
        controller_pods: vec![pod(true)],
    }
}

fn tg(arn: &str, targets: &[(&str, &str)]) -> TargetGroup {
    TargetGroup {
        arn: arn.into(),
        name: arn.rsplit('/').next().unwrap_or(arn).into(),
        protocol: "HTTP".into(),
        port: 8080,
        target_type: "ip".into(),
        health_check_path: "/health".into(),
        tags: BTreeMap::new(),
        targets: targets
            .iter()
            .map(|(id, state)| Target {
                id: (*id).into(),
                port: 8080,
                state: (*state).into(),
                reason: (*state != "healthy").then(|| "Target.FailedHealthChecks".into()),
                description: None,
            })
            .collect(),
    }
}

fn forward(priority: &str, host: &str, tg: &str) -> Rule {
    Rule {
        priority: priority.into(),
        is_default: false,
        hosts: vec![host.into()],
        paths: vec!["/*".into()],
        action: Action::Forward {
            target_groups: vec![tg.into()],
        },
    }
}

fn default_rule() -> Rule {
    Rule {
        priority: "default".into(),
        is_default: true,
        action: Action::FixedResponse {
            status: "404".into(),
        },
        ..Default::default()
    }
}

fn snapshot(rules: Vec<Rule>, tgs: Vec<TargetGroup>) -> ElbSnapshot {
    ElbSnapshot {
        load_balancers: vec![LoadBalancer {
            arn: "arn:lb".into(),
            name: "k8s-albdeployments".into(),
            dns_name: ALB.into(),
            state: "active".into(),
            scheme: "internet-facing".into(),
            tags: BTreeMap::from([(elb::TAG_STACK.to_string(), BASE.to_string())]),
            listeners: vec![
                Listener {
                    arn: "arn:l80".into(),
                    protocol: "HTTP".into(),
                    port: 80,
                    rules: vec![Rule {
                        action: Action::Redirect {
                            to: "HTTPS:443".into(),
                        },
                        ..default_rule()
                    }],
                },
                Listener {
                    arn: "arn:l443".into(),
                    protocol: "HTTPS".into(),
                    port: 443,
                    rules: rules.into_iter().chain([default_rule()]).collect(),
                },
            ],
        }],
        target_groups: tgs,
    }
}

fn good_snapshot() -> ElbSnapshot {
    snapshot(
        vec![forward("1", "p1.deploy.agentops.ai", "arn:tg/p1")],
        vec![tg("arn:tg/p1", &[("10.0.1.10", "healthy")])],
    )
}

fn good_dns() -> DnsView {
    DnsView::Answers {
        host: DnsAnswer {
            cnames: vec![ALB.into()],
            ips: vec!["192.0.2.10".parse().unwrap()],
            error: None,
        },
        albs: BTreeMap::from([(
            ALB.to_string(),
            DnsAnswer {
                ips: vec!["192.0.2.10".parse().unwrap()],
                ..Default::default()
            },
        )]),
    }
}

fn run(cluster: &ClusterState, aws: &AwsView, dns: &DnsView, host: &str) -> Vec<Check> {
    validate(&ValidateInput {
        host,
        base_group: BASE,
        cluster,
        aws,
        dns,
        probe: &ProbeResult::NotRequested,
    })
}

fn outcome(checks: &[Check], name: &str) -> Outcome {
    checks
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no check {name} in {checks:#?}"))
        .outcome
}

fn detail<'a>(checks: &'a [Check], name: &str) -> &'a str {
    &checks.iter().find(|c| c.name == name).unwrap().detail
}

const HOST: &str = "p1.deploy.agentops.ai";

// --- groups and hosts ------------------------------------------------------------------------

#[test]
fn shard_names() {
    assert_eq!(shard_index(BASE, BASE), Some(1));
    assert_eq!(shard_index("alb-deployments-2", BASE), Some(2));
    assert_eq!(shard_index("alb-deployments-17", BASE), Some(17));
    for other in [
        "alb-deployments-1",
        "alb-deployments-0",
        "alb-deployments-02",
        "alb-deployments-x",
        "alb-deployments2",
        "alb-deployments-",
        "other",
        "alb-deployments-2-3",
    ] {
        assert_eq!(shard_index(other, BASE), None, "{other}");
    }
}

#[test]
fn host_matching() {
    assert!(ingress_host_matches("P1.deploy.agentops.ai", HOST));
    assert!(ingress_host_matches("*.deploy.agentops.ai", HOST));
    assert!(!ingress_host_matches("*.agentops.ai", HOST));
    assert!(!ingress_host_matches("p2.deploy.agentops.ai", HOST));
    assert!(alb_host_matches(
        "p1.deploy.agentops.ai",
        "P1.DEPLOY.agentops.ai."
    ));
    assert!(alb_host_matches("*.deploy.agentops.ai", HOST));
    assert!(alb_host_matches("p?.deploy.agentops.ai", HOST));
    assert!(!alb_host_matches(
        "p?.deploy.agentops.ai",
        "p10.deploy.agentops.ai"
    ));
    assert!(!alb_host_matches("p2.deploy.agentops.ai", HOST));
}

// --- list ------------------------------------------------------------------------------------

#[test]
fn rows_cover_every_namespace_and_only_the_shared_groups() {
    let ingresses = vec![
        ingress("team-b", "p2", Some("alb-deployments-2"), Some(ALB2)),
        ingress("team-a", "p1", Some(BASE), Some(ALB)),
        ingress("team-c", "p3", Some(BASE), None),
        ingress("team-d", "p4", Some("someone-elses-group"), Some(ALB)),
        ingress("team-e", "p5", None, None),
    ];
    let rows = ingress_rows(&ingresses, &[], BASE);
    let names: Vec<_> = rows
        .iter()
        .map(|r| format!("{}/{}", r.namespace, r.name))
        .collect();
    assert_eq!(names, ["team-a/ing-p1", "team-b/ing-p2", "team-c/ing-p3"]);
    assert!(rows[0].ready);
    assert_eq!(rows[0].project.as_deref(), Some("p1"));
    assert_eq!(rows[0].hosts, [HOST]);
    assert_eq!(rows[1].group.as_deref(), Some("alb-deployments-2"));
    assert!(!rows[2].ready);
    assert_eq!(rows[2].problem.as_deref(), Some("no ALB address yet"));
}

#[test]
fn a_current_failure_makes_a_row_not_ready_and_a_later_success_clears_it() {
    let ingresses = vec![ingress("team-a", "p1", Some(BASE), Some(ALB))];
    let failed = [event(
        "team-a",
        "ing-p1",
        "FailedBuildModel",
        "2026-01-01T10:00:00Z",
    )];
    let rows = ingress_rows(&ingresses, &failed, BASE);
    assert!(!rows[0].ready);
    assert!(
        rows[0]
            .problem
            .as_deref()
            .unwrap()
            .contains("FailedBuildModel")
    );

    let recovered = [
        failed[0].clone(),
        event("team-a", "ing-p1", SUCCESS_REASON, "2026-01-01T10:05:00Z"),
    ];
    assert!(ingress_rows(&ingresses, &recovered, BASE)[0].ready);
}

#[test]
fn a_non_alb_class_in_the_group_is_flagged() {
    let mut ing = ingress("team-a", "p1", Some(BASE), Some(ALB));
    ing.spec.as_mut().unwrap().ingress_class_name = Some("nginx".into());
    let rows = ingress_rows(&[ing], &[], BASE);
    assert!(!rows[0].ready);
    assert!(rows[0].problem.as_deref().unwrap().contains("not alb"));
}

// --- events ----------------------------------------------------------------------------------

#[test]
fn failure_events_newest_first_with_state() {
    let events = [
        event("a", "ing-1", "FailedBuildModel", "2026-01-01T10:00:00Z"),
        event("b", "ing-2", "FailedDeployModel", "2026-01-01T11:00:00Z"),
        event("a", "ing-1", SUCCESS_REASON, "2026-01-01T10:30:00Z"),
        event("c", "ing-3", "Sync", "2026-01-01T12:00:00Z"),
    ];
    let f = failure_events(&events);
    assert_eq!(f.len(), 2);
    assert_eq!((f[0].ingress.as_str(), f[0].current), ("ing-2", true));
    assert_eq!((f[1].ingress.as_str(), f[1].current), ("ing-1", false));
    assert_eq!(f[0].count, 2);
    assert_eq!(f[0].last_seen, "2026-01-01T11:00:00Z");
}

#[test]
fn events_about_other_kinds_are_ignored() {
    let mut e = event("a", "x", "FailedBuildModel", "2026-01-01T10:00:00Z");
    e.involved_object.kind = Some("Service".into());
    assert!(failure_events(&[e]).is_empty());
}

// --- status ----------------------------------------------------------------------------------

#[test]
fn status_counts_groups_namespaces_and_dns_records() {
    let mut cluster = healthy_cluster();
    cluster.ingresses = vec![
        ingress("team-a", "p1", Some(BASE), Some(ALB)),
        ingress("team-a", "p2", Some(BASE), Some(ALB)),
        ingress("team-b", "p3", Some(BASE), None),
        ingress("team-c", "p4", Some("alb-deployments-2"), Some(ALB2)),
        ingress("team-d", "p5", Some("unrelated"), Some(ALB)),
    ];
    let s = status(
        &cluster,
        &AwsView::Skipped("no credentials".into()),
        BASE,
        "deploy.agentops.ai",
    );
    assert_eq!(s.groups.len(), 2);
    let g1 = &s.groups[0];
    assert_eq!((g1.group.as_str(), g1.shard), (BASE, 1));
    assert_eq!((g1.ingresses, g1.with_address, g1.ready), (3, 2, 2));
    assert_eq!(g1.alb_dns_names, [ALB]);
    assert_eq!(g1.namespaces["team-a"], 2);
    assert_eq!(g1.target_groups.used, 3);
    assert_eq!(g1.target_groups.source, "estimate");
    // ssl-redirect: only the HTTPS listener carries rules.
    assert_eq!(g1.rules.used, 3);
    assert_eq!(s.groups[1].group, "alb-deployments-2");
    assert_eq!(
        s.namespaces,
        BTreeMap::from([
            ("team-a".to_string(), 2),
            ("team-b".to_string(), 1),
            ("team-c".to_string(), 1)
        ])
    );
    assert_eq!(s.dns_records[0].name, "*.deploy.agentops.ai");
    assert_eq!(s.dns_records[0].value, ALB);
    assert_eq!(s.dns_records[1].name, "p4.deploy.agentops.ai");
    assert_eq!(s.dns_records[1].value, ALB2);
    assert!(s.aws.starts_with("skipped"));
    // The only problem: p3 has no address.
    assert_eq!(s.problems.len(), 1, "{:#?}", s.problems);
    assert!(s.problems[0].contains("team-b/ing-p3"));
}

#[test]
fn status_on_an_empty_cluster_shows_the_base_group() {
    let s = status(
        &ClusterState::default(),
        &AwsView::Skipped("x".into()),
        BASE,
        "d",
    );
    assert_eq!(s.groups.len(), 1);
    assert_eq!(s.groups[0].ingresses, 0);
    assert!(s.problems[0].contains("no AWS Load Balancer Controller pods"));
}

#[test]
fn status_surfaces_controller_failures_and_unready_controller() {
    let mut cluster = healthy_cluster();
    cluster.controller_pods = vec![pod(false)];
    cluster.events = vec![event(
        "team-a",
        "ing-p1",
        "FailedBuildModel",
        "2026-01-01T10:00:00Z",
    )];
    let s = status(&cluster, &AwsView::Skipped("x".into()), BASE, "d");
    assert_eq!(s.failures.len(), 1);
    assert!(
        s.problems
            .iter()
            .any(|p| p.contains("no AWS Load Balancer Controller pod is ready"))
    );
    assert!(
        s.problems
            .iter()
            .any(|p| p.contains("team-a/ing-p1") && p.contains("FailedBuildModel"))
    );
    assert_eq!(s.groups[0].ready, 0);
    assert_eq!(s.controller_pods[0].restarts, 3);
}

#[test]
fn status_finds_a_controller_without_pods_by_its_reconcile_events() {
    let mut cluster = healthy_cluster();
    cluster.controller_pods = vec![];
    cluster.events = vec![event(
        "team-a",
        "ing-p1",
        SUCCESS_REASON,
        "2026-01-01T10:00:00Z",
    )];
    let s = status(&cluster, &AwsView::Skipped("x".into()), BASE, "d");
    assert!(
        !s.problems.iter().any(|p| p.contains("Controller pods")),
        "{:?}",
        s.problems
    );
    assert!(s.problems.is_empty(), "{:?}", s.problems);
    let note = s.controller_note.unwrap_or_default();
    assert!(note.contains("team-a/ing-p1"), "{note}");
    // A later event elsewhere does not hide it.
    cluster
        .events
        .push(event("x", "other", SUCCESS_REASON, "2026-01-01T11:00:00Z"));
    let s = status(&cluster, &AwsView::Skipped("x".into()), BASE, "d");
    assert!(
        s.controller_note
            .is_some_and(|n| n.contains("team-a/ing-p1"))
    );
    // Events about an Ingress outside the shared groups prove nothing about them.
    cluster.events = vec![event("x", "other", SUCCESS_REASON, "2026-01-01T10:00:00Z")];
    let s = status(&cluster, &AwsView::Skipped("x".into()), BASE, "d");
    assert!(s.controller_note.is_none());
    assert!(
        s.problems
            .iter()
            .any(|p| p.contains("no AWS Load Balancer Controller pods"))
    );
}

#[test]
fn status_gives_the_certificate_fix_for_a_missing_certificate() {
    let mut cluster = healthy_cluster();
    let mut e = event(
        "team-a",
        "ing-p1",
        "FailedBuildModel",
        "2026-01-01T10:00:00Z",
    );
    e.message = Some(
        "Failed build model due to ingress: team-a/ing-p1: no certificate found for host: \
         p1.deploy.agentops.ai"
            .into(),
    );
    cluster.events = vec![e];
    let s = status(&cluster, &AwsView::Skipped("x".into()), BASE, "d");
    let p = s
        .problems
        .iter()
        .find(|p| p.contains("team-a/ing-p1"))
        .cloned()
        .unwrap_or_default();
    assert!(p.contains("no certificate found for host"), "{p}");
    assert!(
        p.contains("ALB_CERTIFICATE_ARN") && p.contains("*.deploy.agentops.ai"),
        "{p}"
    );
    assert!(p.contains(BASE), "{p}");
}

#[test]
fn status_with_elbv2_counts_real_usage_and_routes() {
    let s = status(
        &healthy_cluster(),
        &AwsView::Read(good_snapshot()),
        BASE,
        "d",
    );
    assert!(s.problems.is_empty(), "{:#?}", s.problems);
    let g = &s.groups[0];
    assert_eq!((g.target_groups.used, g.target_groups.source), (1, "ELBv2"));
    assert_eq!(g.rules.used, 1);
    let lb = g.load_balancer.as_ref().unwrap();
    assert_eq!(lb.listeners, ["HTTP:80", "HTTPS:443"]);
    assert_eq!(lb.routes.len(), 1);
    assert_eq!((lb.routes[0].healthy, lb.routes[0].targets), (1, 1));
}

#[test]
fn status_warns_near_the_target_group_quota_and_on_inactive_or_missing_albs() {
    let mut cluster = healthy_cluster();
    cluster.ingresses = (0..95)
        .map(|i| ingress("t", &format!("p{i}"), Some(BASE), Some(ALB)))
        .collect();
    let s = status(&cluster, &AwsView::Skipped("x".into()), BASE, "d");
    assert!(
        s.problems
            .iter()
            .any(|p| p.contains("95 of 100 target groups"))
    );

    let mut snap = good_snapshot();
    snap.load_balancers[0].state = "provisioning".into();
    let s = status(&healthy_cluster(), &AwsView::Read(snap), BASE, "d");
    assert!(s.problems.iter().any(|p| p.contains("not active")));

    let s = status(
        &healthy_cluster(),
        &AwsView::Read(ElbSnapshot::default()),
        BASE,
        "d",
    );
    assert!(
        s.problems
            .iter()
            .any(|p| p.contains("no load balancer with address"))
    );

    let s = status(
        &healthy_cluster(),
        &AwsView::Failed("AccessDenied".into()),
        BASE,
        "d",
    );
    assert!(s.problems.iter().any(|p| p.contains("AccessDenied")));
}

#[test]
fn status_flags_a_group_split_across_two_albs() {
    let mut cluster = healthy_cluster();
    cluster
        .ingresses
        .push(ingress("team-b", "p2", Some(BASE), Some(ALB2)));
    let s = status(&cluster, &AwsView::Skipped("x".into()), BASE, "d");
    assert!(
        s.problems
            .iter()
            .any(|p| p.contains("2 different ALB addresses"))
    );
}

// --- validate --------------------------------------------------------------------------------

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
    let mut other = ingress("team-b", "p2", Some(BASE), Some(ALB));
    other
        .metadata
        .annotations
        .as_mut()
        .unwrap()
        .insert("alb.ingress.kubernetes.io/scheme".into(), "internal".into());
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
fn status_with_elbv2_names_hosts_without_a_rule_or_a_healthy_target() {
    let mut cluster = healthy_cluster();
    cluster.ingresses = vec![
        ingress("team-a", "p1", Some(BASE), Some(ALB)),
        ingress("team-b", "p2", Some(BASE), Some(ALB)),
        ingress("team-c", "p3", Some(BASE), Some(ALB)),
    ];
    let snap = snapshot(
        vec![
            forward("1", HOST, "arn:tg/p1"),
            forward("2", "p2.deploy.agentops.ai", "arn:tg/p2"),
        ],
        vec![
            tg("arn:tg/p1", &[("10.0.1.10", "healthy")]),
            tg("arn:tg/p2", &[("i-0abc", "unused")]),
        ],
    );
    let s = status(&cluster, &AwsView::Read(snap), BASE, "d");
    assert_eq!(s.problems.len(), 2, "{:#?}", s.problems);
    assert!(s.problems[0].contains("p2.deploy.agentops.ai (team-b/ing-p2)"));
    assert!(s.problems[0].contains("i-0abc:8080 unused"));
    assert!(s.problems[1].contains("p3.deploy.agentops.ai (team-c/ing-p3): no listener rule"));
    assert!(!s.problems.iter().any(|p| p.contains("p1.")));
}

#[test]
fn status_reports_failures_of_the_shared_groups_only() {
    let mut cluster = healthy_cluster();
    cluster
        .ingresses
        .push(ingress("team-x", "px", Some("private"), Some(ALB)));
    cluster.events = vec![
        event(
            "team-x",
            "ing-px",
            "FailedBuildModel",
            "2026-01-01T10:00:00Z",
        ),
        event(
            "gone",
            "ing-deleted",
            "FailedDeployModel",
            "2026-01-01T10:00:00Z",
        ),
    ];
    let s = status(&cluster, &AwsView::Skipped("x".into()), BASE, "d");
    assert!(s.failures.is_empty(), "{:#?}", s.failures);
    assert!(s.problems.is_empty(), "{:#?}", s.problems);
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

#[test]
fn status_names_group_wide_conflicts() {
    let mut cluster = healthy_cluster();
    let mut other = ingress("team-b", "p2", Some(BASE), Some(ALB));
    other
        .metadata
        .annotations
        .as_mut()
        .unwrap()
        .insert("alb.ingress.kubernetes.io/scheme".into(), "internal".into());
    cluster.ingresses.push(other);
    cluster
        .ingresses
        .push(ingress("team-c", "p3", Some(BASE), Some(ALB)));
    let s = status(&cluster, &AwsView::Skipped("x".into()), BASE, "d");
    assert_eq!(s.problems.len(), 1, "{:#?}", s.problems);
    let p = &s.problems[0];
    assert!(
        p.contains(
            "scheme: \"internal\" (team-b/ing-p2) vs \"internet-facing\" (team-a/ing-p1 and 1 more)"
        ),
        "{p}"
    );
}

#[test]
fn a_shard_filled_to_the_default_capacity_is_healthy() {
    let mut cluster = healthy_cluster();
    cluster.ingresses = (0..90)
        .map(|i| ingress("t", &format!("p{i}"), Some(BASE), Some(ALB)))
        .collect();
    let s = status(&cluster, &AwsView::Skipped("x".into()), BASE, "d");
    assert!(s.problems.is_empty(), "{:#?}", s.problems);
    assert_eq!(s.groups[0].target_groups.used, 90);
}

fn with_tags(mut ing: Ingress, tags: &str) -> Ingress {
    ing.metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert(ALB_TAGS.into(), tags.into());
    ing
}

#[test]
fn status_names_a_tag_key_two_members_disagree_on() {
    let mut cluster = healthy_cluster();
    cluster.ingresses.push(with_tags(
        ingress("team-b", "p2", Some(BASE), Some(ALB)),
        "team=blue",
    ));
    cluster.ingresses.push(with_tags(
        ingress("team-c", "p3", Some(BASE), Some(ALB)),
        "team=red,env=prod",
    ));
    let s = status(&cluster, &AwsView::Skipped("x".into()), BASE, "d");
    assert_eq!(s.problems.len(), 1, "{:#?}", s.problems);
    let p = &s.problems[0];
    assert!(
        p.contains("tag team: team=blue (team-b/ing-p2) vs team=red (team-c/ing-p3)"),
        "{p}"
    );
}

#[test]
fn status_names_every_ingress_still_carrying_per_project_tags() {
    let mut cluster = healthy_cluster();
    cluster.ingresses.push(with_tags(
        ingress("team-b", "p2", Some(BASE), Some(ALB)),
        "deployment=p2,hostname=p2.deploy.agentops.ai",
    ));
    let s = status(&cluster, &AwsView::Skipped("x".into()), BASE, "d");
    assert_eq!(s.problems.len(), 1, "{:#?}", s.problems);
    let p = &s.problems[0];
    assert!(
        p.contains("Ingress team-b/ing-p2") && p.contains("kubectl jockey deploy"),
        "{p}"
    );
}
