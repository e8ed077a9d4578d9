//! Unit tests of the `alb-status` summary.

use super::*;
use crate::alb::health::{self, Health};
use crate::alb::test_support::*;

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
fn status_names_group_wide_conflicts() {
    let mut cluster = healthy_cluster();
    let other = with_annotation(
        ingress("team-b", "p2", Some(BASE), Some(ALB)),
        "scheme",
        "internal",
    );
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

#[test]
fn status_judges_each_group_once_and_a_failure_naming_a_gone_ingress_is_no_problem() {
    let mut cluster = healthy_cluster();
    let mut e = event(
        "team-a",
        "ing-p1",
        "FailedBuildModel",
        "2026-01-01T10:00:00Z",
    );
    e.message = Some(
        "Failed build model due to ingress: team-x/bypass: services \"svc-x\" not found".into(),
    );
    cluster.events = vec![
        event("team-a", "ing-p1", SUCCESS_REASON, "2026-01-01T09:00:00Z"),
        e,
    ];
    let s = status(&cluster, &AwsView::Skipped("x".into()), BASE, "d");
    assert!(s.problems.is_empty(), "{:#?}", s.problems);
    assert_eq!(s.failures.len(), 1);
    assert!(!s.failures[0].current);
    assert!(
        s.failures[0]
            .stale
            .as_deref()
            .is_some_and(|w| w.contains("team-x/bypass, which no longer exists")),
        "{:?}",
        s.failures[0]
    );
    assert!(matches!(&s.groups[0].health, Health::Unknown { why } if why.contains("not current")));
    assert_eq!(s.groups[0].ready, 1);
    // With the ALB's rule for the host to the project's target group: healthy.
    let mut snap = good_snapshot();
    snap.target_groups[0].tags = BTreeMap::from([(
        health::TAG_RESOURCE.to_string(),
        "team-a/ing-p1-svc-p1:80".to_string(),
    )]);
    let s = status(&cluster, &AwsView::Read(snap), BASE, "d");
    assert!(matches!(&s.groups[0].health, Health::Healthy { why } if why.contains("rule 1")));
    // While the named Ingress exists in the group, the group fails, once, naming the member
    // the event is on and the fix.
    cluster
        .ingresses
        .push(ingress("team-x", "bypass", Some(BASE), Some(ALB)));
    cluster.ingresses[1].metadata.name = Some("bypass".into());
    let s = status(&cluster, &AwsView::Skipped("x".into()), BASE, "d");
    let failing: Vec<&String> = s.problems.iter().filter(|p| p.contains("fails")).collect();
    assert_eq!(failing.len(), 1, "{:#?}", s.problems);
    assert!(
        failing[0].contains(&format!("group {BASE} fails"))
            && failing[0].contains("Ingress team-a/ing-p1")
            && failing[0].contains("fix:"),
        "{}",
        failing[0]
    );
    assert!(matches!(&s.groups[0].health, Health::Failing(f) if f.member == "team-a/ing-p1"));
}
