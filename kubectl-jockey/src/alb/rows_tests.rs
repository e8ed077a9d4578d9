//! Unit tests of the `list-alb-ingresses` rows.

use super::*;
use crate::alb::test_support::*;

#[test]
fn rows_cover_every_namespace_and_only_the_shared_groups() {
    let ingresses = vec![
        ingress("team-b", "p2", Some("alb-deployments-2"), Some(ALB2)),
        ingress("team-a", "p1", Some(BASE), Some(ALB)),
        ingress("team-c", "p3", Some(BASE), None),
        ingress("team-d", "p4", Some("someone-elses-group"), Some(ALB)),
        ingress("team-e", "p5", None, None),
    ];
    let rows = ingress_rows(&ingresses, &[], BASE, &Scope::All);
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
    let rows = ingress_rows(&ingresses, &failed, BASE, &Scope::All);
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
    assert!(ingress_rows(&ingresses, &recovered, BASE, &Scope::All)[0].ready);
}

#[test]
fn a_non_alb_class_in_the_group_is_flagged() {
    let mut ing = ingress("team-a", "p1", Some(BASE), Some(ALB));
    ing.spec.as_mut().unwrap().ingress_class_name = Some("nginx".into());
    let rows = ingress_rows(&[ing], &[], BASE, &Scope::All);
    assert!(!rows[0].ready);
    assert!(rows[0].problem.as_deref().unwrap().contains("not alb"));
}

#[test]
fn a_failure_naming_an_ingress_that_is_gone_leaves_the_row_ready() {
    let ingresses = vec![ingress("team-a", "p1", Some(BASE), Some(ALB))];
    let mut e = event(
        "team-a",
        "ing-p1",
        "FailedBuildModel",
        "2026-01-01T10:00:00Z",
    );
    e.message = Some("Failed build model due to ingress: team-a/bypass: bad".into());
    assert!(ingress_rows(&ingresses, &[e.clone()], BASE, &Scope::All)[0].ready);
    // Listed in one namespace only, a gone Ingress of another is not known to be gone.
    e.message = Some("Failed build model due to ingress: team-x/bypass: bad".into());
    assert!(!ingress_rows(&ingresses, &[e], BASE, &Scope::Namespace("team-a".into()))[0].ready);
}
