//! Unit tests of the group judgement: each rule of the module doc, with hand-made Ingresses,
//! events and ELBv2 snapshots.

use super::*;
use crate::alb::elb::{Listener, Rule, TargetGroup};
use serde_json::json;
use std::collections::BTreeMap;

const G: &str = "alb-deployments";

fn t(sec: u32) -> String {
    format!("2026-01-01T00:00:{sec:02}Z")
}

/// A member of `group` in `ns` named `name`, serving `NAME.example.com` from `svc-NAME:80`,
/// created at second `created` (none when `None`), uid `NS-NAME`.
fn ing(ns: &str, name: &str, group: &str, created: Option<u32>) -> Ingress {
    let mut v = json!({
        "metadata": {"name": name, "namespace": ns, "uid": format!("{ns}-{name}"),
                     "annotations": {"alb.ingress.kubernetes.io/group.name": group}},
        "spec": {"ingressClassName": "alb", "rules": [{"host": format!("{name}.example.com"),
            "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": {
                "service": {"name": format!("svc-{name}"), "port": {"number": 80}}}}]}}]},
        "status": {"loadBalancer": {"ingress": [{"hostname": "k8s-alb.elb.amazonaws.com"}]}},
    });
    if let Some(c) = created {
        v["metadata"]["creationTimestamp"] = json!(t(c));
    }
    serde_json::from_value(v).unwrap()
}

/// `ing` with a managedFields entry written at second `at` holding `fields`.
fn written(
    mut i: Ingress,
    at: u32,
    fields: serde_json::Value,
    subresource: Option<&str>,
) -> Ingress {
    let mut entry = json!({"manager": "m", "operation": "Apply", "apiVersion": "networking.k8s.io/v1",
        "time": t(at), "fieldsType": "FieldsV1", "fieldsV1": fields});
    if let Some(s) = subresource {
        entry["subresource"] = json!(s);
    }
    let mut fields = i.metadata.managed_fields.take().unwrap_or_default();
    fields.push(serde_json::from_value(entry).unwrap());
    i.metadata.managed_fields = Some(fields);
    i
}

fn ev(ns: &str, name: &str, reason: &str, message: &str, at: Option<u32>) -> Event {
    let mut v = json!({
        "metadata": {"name": format!("{name}.{reason}.{at:?}"), "namespace": ns},
        "involvedObject": {"kind": "Ingress", "name": name, "namespace": ns,
                           "uid": format!("{ns}-{name}")},
        "reason": reason, "message": message,
        "type": if reason == SUCCESS_REASON { "Normal" } else { "Warning" },
    });
    if let Some(a) = at {
        v["lastTimestamp"] = json!(t(a));
    }
    serde_json::from_value(v).unwrap()
}

fn ok(ns: &str, name: &str, at: Option<u32>) -> Event {
    ev(ns, name, SUCCESS_REASON, "Successfully reconciled", at)
}

fn fail(ns: &str, name: &str, message: &str, at: Option<u32>) -> Event {
    ev(
        ns,
        name,
        "FailedBuildModel",
        &format!("Failed build model due to {message}"),
        at,
    )
}

const GONE: &str = "ingress: x/bypass: services \"svc-missing\" not found";

fn evidence<'a>(ings: &'a [Ingress], events: &'a [Event], scope: &'a Scope) -> Evidence<'a> {
    Evidence {
        ingresses: ings,
        scope,
        events,
        elb: None,
    }
}

/// The one failure event on `ns/name` in `failures`, judged.
fn judged<'a>(f: &'a [FailureEvent], ns: &str, name: &str) -> &'a FailureEvent {
    f.iter()
        .find(|f| f.namespace == ns && f.ingress == name)
        .unwrap_or_else(|| panic!("no failure on {ns}/{name} in {f:#?}"))
}

fn current(ings: &[Ingress], events: &[Event], scope: &Scope) -> Vec<bool> {
    failures(&evidence(ings, events, scope))
        .iter()
        .map(|f| f.current)
        .collect()
}

#[test]
fn the_controllers_ways_of_naming_an_ingress_are_read() {
    assert_eq!(
        named_ingresses(
            "Failed build model due to ingress: team-a/ing-p: services \"s\" not found"
        ),
        [("team-a".to_string(), "ing-p".to_string())]
    );
    // group_loader.go: "Ingress: %v" and "for ingress: %v"; several, deduplicated.
    assert_eq!(
        named_ingresses(
            "explicit Ingress group order must be within [-1000:1000], Ingress: a/b, order: \
             1001; failed to load Ingress group order for ingress: c/d.e: x; ingress: a/b"
        ),
        [
            ("a".to_string(), "b".to_string()),
            ("c".to_string(), "d.e".to_string())
        ]
    );
    // A trailing full stop is not part of the name; no namespace, no name.
    assert_eq!(
        named_ingresses("cannot delete the ingress: ns/n."),
        [("ns".to_string(), "n".to_string())]
    );
    assert!(
        named_ingresses("deletion_protection is enabled, cannot delete the ingress: n").is_empty()
    );
    assert!(named_ingresses("conflicting scheme: [internal internet-facing]").is_empty());
}

#[test]
fn a_failure_naming_a_member_that_is_gone_is_not_current() {
    let ings = [ing("t", "a", G, Some(0))];
    let events = [ok("t", "a", Some(1)), fail("t", "a", GONE, Some(5))];
    let f = failures(&evidence(&ings, &events, &Scope::All));
    let a = judged(&f, "t", "a");
    assert!(!a.current);
    assert!(
        a.stale
            .as_deref()
            .unwrap()
            .contains("x/bypass, which no longer exists"),
        "{a:?}"
    );
    // The verdict is not a failure; nor is it healthy: no success is known since.
    match judge(&evidence(&ings, &events, &Scope::All), G) {
        Health::Unknown { why } => assert!(why.contains("no longer exists"), "{why}"),
        other => panic!("{other:?}"),
    }
    // While the named Ingress exists and is a member, the failure stands.
    let with = [ing("t", "a", G, Some(0)), ing("x", "bypass", G, Some(2))];
    assert_eq!(current(&with, &events, &Scope::All), [true]);
    assert!(matches!(
        judge(&evidence(&with, &events, &Scope::All), G),
        Health::Failing(f) if f.member == "t/a" && f.message.contains("svc-missing")
    ));
}

#[test]
fn a_named_ingress_that_left_the_group_or_was_recreated_makes_the_failure_stale() {
    let events = [fail("t", "a", GONE, Some(5))];
    // Still there, but in another group now.
    let moved = [
        ing("t", "a", G, Some(0)),
        ing("x", "bypass", "other", Some(0)),
    ];
    let f = failures(&evidence(&moved, &events, &Scope::All));
    assert!(
        judged(&f, "t", "a")
            .stale
            .as_deref()
            .unwrap()
            .contains("no longer in group")
    );
    // Not of class alb any more: not a member either.
    let mut unclassed = ing("x", "bypass", G, Some(0));
    unclassed.spec.as_mut().unwrap().ingress_class_name = Some("nginx".into());
    assert_eq!(
        current(
            &[ing("t", "a", G, Some(0)), unclassed],
            &events,
            &Scope::All
        ),
        [false]
    );
}

#[test]
fn a_named_ingress_in_a_namespace_that_was_not_read_is_not_known_to_be_gone() {
    let ings = [ing("t", "a", G, Some(0))];
    let events = [fail("t", "a", GONE, Some(5))];
    let tenant = Scope::Namespace("t".into());
    assert_eq!(current(&ings, &events, &tenant), [true]);
    assert!(matches!(
        judge(&evidence(&ings, &events, &tenant), G),
        Health::Failing(_)
    ));
    // Named in the namespace that was read: gone.
    let own = [fail("t", "a", "ingress: t/bypass: bad", Some(5))];
    assert_eq!(current(&ings, &own, &tenant), [false]);
}

#[test]
fn a_certificate_failure_for_a_host_no_member_serves_is_not_current() {
    let ings = [ing("t", "a", G, Some(0))];
    let gone_host = [fail(
        "t",
        "a",
        "no certificate found for host: b.example.com",
        Some(5),
    )];
    assert_eq!(current(&ings, &gone_host, &Scope::All), [false]);
    // A member still serves the host: current.
    let own_host = [fail(
        "t",
        "a",
        "no certificate found for host: A.example.com",
        Some(5),
    )];
    assert_eq!(current(&ings, &own_host, &Scope::All), [true]);
    // Only one namespace read: another namespace's member may serve it.
    assert_eq!(
        current(&ings, &gone_host, &Scope::Namespace("t".into())),
        [true]
    );
}

#[test]
fn the_same_failure_on_an_ingress_that_is_gone_means_the_group_changed() {
    let ings = [ing("t", "a", G, Some(0))];
    let msg = "conflicting scheme: [internal internet-facing]";
    // Recorded on both in one reconcile (same second), or on the gone one later: stale.
    for gone_at in [5, 7] {
        let events = [
            fail("t", "a", msg, Some(5)),
            fail("x", "bypass", msg, Some(gone_at)),
        ];
        let f = failures(&evidence(&ings, &events, &Scope::All));
        assert_eq!(
            f.len(),
            1,
            "events on gone Ingresses are not listed: {f:#?}"
        );
        assert!(
            f[0].stale
                .as_deref()
                .unwrap()
                .contains("also recorded on Ingress x/bypass"),
            "{f:?}"
        );
    }
    // On the gone one only earlier: it may have left before this failure.
    let earlier = [
        fail("t", "a", msg, Some(5)),
        fail("x", "bypass", msg, Some(4)),
    ];
    assert_eq!(current(&ings, &earlier, &Scope::All), [true]);
    // Another message, a namespace not read, or no time on either: no evidence.
    let other = [
        fail("t", "a", msg, Some(5)),
        fail("x", "bypass", "conflicting tag", Some(6)),
    ];
    assert_eq!(current(&ings, &other, &Scope::All), [true]);
    let unseen = [
        fail("t", "a", msg, Some(5)),
        fail("x", "bypass", msg, Some(6)),
    ];
    assert_eq!(
        current(&ings, &unseen, &Scope::Namespace("t".into())),
        [true]
    );
    let untimed = [fail("t", "a", msg, Some(5)), fail("x", "bypass", msg, None)];
    assert_eq!(current(&ings, &untimed, &Scope::All), [true]);
    let untimed_own = [fail("t", "a", msg, None), fail("x", "bypass", msg, Some(6))];
    assert_eq!(current(&ings, &untimed_own, &Scope::All), [true]);
    // A recreated Ingress of the same name is another object: its predecessor is gone.
    let mut recreated = ing("x", "bypass", G, Some(0));
    recreated.metadata.uid = Some("new-uid".into());
    let events = [
        fail("t", "a", msg, Some(5)),
        fail("x", "bypass", msg, Some(5)),
    ];
    let f = failures(&evidence(
        &[ing("t", "a", G, Some(0)), recreated.clone()],
        &events,
        &Scope::All,
    ));
    assert_eq!(f.len(), 1, "{f:#?}");
    assert!(!f[0].current);
}

#[test]
fn a_failure_before_the_groups_last_change_is_not_current_but_the_same_second_is() {
    let msg = "conflicting scheme: [internal internet-facing]";
    let events = [fail("t", "a", msg, Some(5))];
    // A member created after it.
    let joined = [ing("t", "a", G, Some(0)), ing("u", "b", G, Some(6))];
    let f = failures(&evidence(&joined, &events, &Scope::All));
    assert!(
        judged(&f, "t", "a")
            .stale
            .as_deref()
            .unwrap()
            .contains("Ingress u/b created"),
        "{f:?}"
    );
    let same = [ing("t", "a", G, Some(0)), ing("u", "b", G, Some(5))];
    assert_eq!(current(&same, &events, &Scope::All), [true]);
    // Spec or annotations written after it.
    let spec = written(
        ing("t", "a", G, Some(0)),
        6,
        json!({"f:spec": {"f:rules": {}}}),
        None,
    );
    assert_eq!(current(&[spec], &events, &Scope::All), [false]);
    let annotated = written(
        ing("t", "a", G, Some(0)),
        6,
        json!({"f:metadata": {"f:annotations": {"f:x": {}}}}),
        None,
    );
    assert_eq!(current(&[annotated], &events, &Scope::All), [false]);
    // Status and finalizer writes (the controller's own) and labels are no change it acts on.
    let status = written(
        ing("t", "a", G, Some(0)),
        6,
        json!({"f:status": {}}),
        Some("status"),
    );
    assert_eq!(current(&[status], &events, &Scope::All), [true]);
    let finalizer = written(
        ing("t", "a", G, Some(0)),
        6,
        json!({"f:metadata": {"f:finalizers": {}, "f:labels": {}}}),
        None,
    );
    assert_eq!(current(&[finalizer], &events, &Scope::All), [true]);
    // A member being deleted.
    let mut leaving = ing("u", "b", G, Some(0));
    leaving.metadata.deletion_timestamp = Some(serde_json::from_value(json!(t(6))).unwrap());
    assert_eq!(
        current(&[ing("t", "a", G, Some(0)), leaving], &events, &Scope::All),
        [false]
    );
    // No times on the members, or none on the failure: nothing predates anything.
    assert_eq!(
        current(&[ing("t", "a", G, None)], &events, &Scope::All),
        [true]
    );
    assert_eq!(
        current(&joined, &[fail("t", "a", msg, None)], &Scope::All),
        [true]
    );
}

#[test]
fn a_later_success_on_any_member_clears_a_failure_but_not_in_the_same_second() {
    let ings = [ing("t", "a", G, Some(0)), ing("u", "b", G, Some(0))];
    let msg = "conflicting scheme: [internal internet-facing]";
    let later = [fail("t", "a", msg, Some(5)), ok("u", "b", Some(6))];
    let f = failures(&evidence(&ings, &later, &Scope::All));
    assert!(
        judged(&f, "t", "a")
            .stale
            .as_deref()
            .unwrap()
            .contains("later SuccessfullyReconciled")
    );
    assert!(matches!(
        judge(&evidence(&ings, &later, &Scope::All), G),
        Health::Healthy { why } if why.contains("succeeded")
    ));
    let same = [fail("t", "a", msg, Some(5)), ok("u", "b", Some(5))];
    assert_eq!(current(&ings, &same, &Scope::All), [true]);
    // A success without a time proves nothing about order.
    let untimed = [fail("t", "a", msg, Some(5)), ok("u", "b", None)];
    assert_eq!(current(&ings, &untimed, &Scope::All), [true]);
    // Nor does another group's success.
    let other_group = [ing("t", "a", G, Some(0)), ing("u", "b", "other", Some(0))];
    assert_eq!(current(&other_group, &later, &Scope::All), [true]);
}

#[test]
fn events_of_other_groups_and_kinds_do_not_count() {
    let ings = [ing("t", "a", G, Some(0)), ing("u", "b", "other", Some(0))];
    let events = [
        ok("t", "a", Some(1)),
        fail("u", "b", "conflicting scheme: [a b]", Some(5)),
    ];
    // The other group's failure is listed, judged against its own group, and current there.
    let f = failures(&evidence(&ings, &events, &Scope::All));
    assert!(judged(&f, "u", "b").current);
    assert!(matches!(
        judge(&evidence(&ings, &events, &Scope::All), G),
        Health::Healthy { .. }
    ));
    assert!(matches!(
        judge(&evidence(&ings, &events, &Scope::All), "other"),
        Health::Failing(_)
    ));
    // Not an Ingress, or not the controller's reason.
    let mut svc = fail("t", "a", "conflicting scheme", Some(5));
    svc.involved_object.kind = Some("Service".into());
    let other_reason = ev(
        "t",
        "a",
        "FailedLoadGroupID",
        "invalid ingress class",
        Some(6),
    );
    assert!(failures(&evidence(&ings, &[svc, other_reason], &Scope::All)).is_empty());
}

#[test]
fn failures_are_listed_newest_first_with_their_state() {
    let ings = [ing("t", "a", G, Some(0)), ing("t", "b", G, Some(0))];
    let events = [
        fail("t", "a", "old", Some(1)),
        ok("t", "a", Some(2)),
        fail("t", "b", "new", Some(3)),
        fail("t", "b", "untimed", None),
    ];
    let f = failures(&evidence(&ings, &events, &Scope::All));
    let seen: Vec<(&str, bool)> = f.iter().map(|f| (f.message.as_str(), f.current)).collect();
    assert_eq!(
        seen,
        [
            ("Failed build model due to new", true),
            ("Failed build model due to old", false),
            ("Failed build model due to untimed", true),
        ]
    );
    assert_eq!(f[0].last_seen, t(3));
    assert_eq!(f[2].last_seen, "");
}

#[test]
fn the_verdict_is_the_newest_current_failure_with_its_member_and_fix() {
    let ings = [ing("t", "a", G, Some(0)), ing("u", "b", G, Some(0))];
    let events = [
        fail(
            "t",
            "a",
            "no certificate found for host: a.example.com",
            Some(4),
        ),
        fail("u", "b", "conflicting scheme: [x y]", Some(6)),
    ];
    let Health::Failing(f) = judge(&evidence(&ings, &events, &Scope::All), G) else {
        panic!()
    };
    assert_eq!((f.member.as_str(), f.at.as_str()), ("u/b", t(6).as_str()));
    assert!(f.fix.contains("disagree") && f.fix.contains(G), "{f:?}");
}

#[test]
fn without_a_success_since_the_last_change_the_verdict_is_unknown() {
    // Nothing recorded at all (events expire after an hour).
    let ings = [ing("t", "a", G, Some(0))];
    assert!(matches!(
        judge(&evidence(&ings, &[], &Scope::All), G),
        Health::Unknown { why } if why.contains("no outcome")
    ));
    // A success older than a member's arrival.
    let joined = [ing("t", "a", G, Some(0)), ing("u", "b", G, Some(9))];
    assert!(matches!(
        judge(&evidence(&joined, &[ok("t", "a", Some(3))], &Scope::All), G),
        Health::Unknown { why } if why.contains("Ingress u/b created")
    ));
    // A success in the same second as the change counts as after it.
    assert!(matches!(
        judge(&evidence(&joined, &[ok("u", "b", Some(9))], &Scope::All), G),
        Health::Healthy { .. }
    ));
    // A success and no change information at all.
    assert!(matches!(
        judge(
            &evidence(
                &[ing("t", "a", G, None)],
                &[ok("t", "a", Some(3))],
                &Scope::All
            ),
            G
        ),
        Health::Healthy { .. }
    ));
    // No member.
    assert!(matches!(
        judge(&evidence(&ings, &[], &Scope::All), "empty"),
        Health::Unknown { why } if why.contains("no Ingress")
    ));
}

fn snapshot(rules: &[(&str, &str)], tgs: &[(&str, &str)]) -> ElbSnapshot {
    ElbSnapshot {
        load_balancers: vec![crate::alb::elb::LoadBalancer {
            name: "k8s-alb".into(),
            dns_name: "k8s-alb.elb.amazonaws.com".into(),
            state: "active".into(),
            listeners: vec![Listener {
                protocol: "HTTPS".into(),
                port: 443,
                rules: rules
                    .iter()
                    .enumerate()
                    .map(|(i, (host, tg))| Rule {
                        priority: (i + 1).to_string(),
                        hosts: vec![(*host).into()],
                        action: Action::Forward {
                            target_groups: vec![(*tg).into()],
                        },
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
        target_groups: tgs
            .iter()
            .map(|(arn, resource)| TargetGroup {
                arn: (*arn).into(),
                tags: BTreeMap::from([(TAG_RESOURCE.to_string(), (*resource).to_string())]),
                ..Default::default()
            })
            .collect(),
    }
}

#[test]
fn the_albs_rules_show_a_host_served_whatever_old_events_say() {
    let ings = [ing("t", "a", G, Some(0)), ing("u", "b", G, Some(9))];
    // A stale failure and no success since the change: unknown by events...
    let events = [ok("t", "a", Some(3)), fail("t", "a", GONE, Some(5))];
    let snap = snapshot(
        &[("a.example.com", "arn:a"), ("b.example.com", "arn:b")],
        &[("arn:a", "t/a-svc-a:80"), ("arn:b", "u/b-svc-b:80")],
    );
    let mut e = evidence(&ings, &events, &Scope::All);
    assert!(matches!(judge(&e, G), Health::Unknown { .. }));
    // ...healthy by the ALB's rules.
    e.elb = Some(&snap);
    match judge(&e, G) {
        Health::Healthy { why } => assert!(
            why.contains("a.example.com (rule 1)") && why.contains("Ingress u/b"),
            "{why}"
        ),
        other => panic!("{other:?}"),
    }
    assert!(served_by_alb(&e, &ings[0]).is_some());
    // A current failure still fails the group: the rules may be from before it.
    let failing = [fail("u", "b", "conflicting scheme: [x y]", Some(10))];
    let mut e2 = evidence(&ings, &failing, &Scope::All);
    e2.elb = Some(&snap);
    assert!(matches!(judge(&e2, G), Health::Failing(_)));
    // A rule to another Ingress's target group, a missing host, or no tag: no evidence.
    let wrong = snapshot(
        &[("a.example.com", "arn:b"), ("b.example.com", "arn:b")],
        &[("arn:b", "u/b-svc-b:80")],
    );
    e.elb = Some(&wrong);
    assert!(served_by_alb(&e, &ings[0]).is_none());
    assert!(matches!(judge(&e, G), Health::Unknown { .. }));
    let one = snapshot(&[("a.example.com", "arn:a")], &[("arn:a", "t/a-svc-a:80")]);
    e.elb = Some(&one);
    assert!(served_by_alb(&e, &ings[0]).is_some());
    assert!(served_by_alb(&e, &ings[1]).is_none());
    assert!(matches!(judge(&e, G), Health::Unknown { .. }));
    let mut untagged = one.clone();
    untagged.target_groups[0].tags.clear();
    e.elb = Some(&untagged);
    assert!(served_by_alb(&e, &ings[0]).is_none());
}

#[test]
fn fixes_name_the_certificate_and_the_conflict() {
    let f = fix_for(
        "Failed build model due to no certificate found for host: p.deploy.example.com",
        "alb-deployments",
    );
    assert!(f.contains("covers p.deploy.example.com"), "{f}");
    assert!(f.contains("*.deploy.example.com"), "{f}");
    assert!(f.contains("ALB_CERTIFICATE_ARN"), "{f}");
    let f = fix_for(
        "Failed build model due to conflicting scheme: [internal internet-facing]",
        "g",
    );
    assert!(f.contains("alb-status") && f.contains("group g"), "{f}");
    let f = fix_for("Failed deploy model due to AccessDenied", "g");
    assert!(f.contains("alb-status"), "{f}");
}
