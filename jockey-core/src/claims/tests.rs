use super::*;
use k8s_openapi::jiff::Timestamp;

fn at(secs: i64) -> MicroTime {
    MicroTime(Timestamp::from_second(secs).unwrap())
}

#[test]
fn a_claim_round_trips_through_its_lease() {
    for claim in [
        Claim::project("demo", "team-a"),
        Claim::host("Demo.Deploy.AgentOps.ai", "demo", "team-a"),
        Claim::host("*.shop.example.com", "demo", "team-a"),
    ] {
        let lease = claim.to_lease("jockey-system", at(1_000));
        assert_eq!(lease.metadata.namespace.as_deref(), Some("jockey-system"));
        assert_eq!(Claim::from_lease(&lease), Some(claim.clone()));
        assert_eq!(renewed_at(&lease), Some(1_000));
    }
}

#[test]
fn lease_names_are_valid_object_names_and_distinct() {
    let p = Claim::project("0b6a1c9e-aaaa-bbbb-cccc-0123456789ab", "ns").lease_name();
    assert_eq!(p, "project-0b6a1c9e-aaaa-bbbb-cccc-0123456789ab");
    let long_host = format!("{}.example.com", "a".repeat(63));
    for host in ["a.example.com", "*.example.com", long_host.as_str()] {
        let n = Claim::host(host, "p", "ns").lease_name();
        assert!(n.starts_with("host-") && n.len() == 37, "{n}");
        assert!(
            n.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        );
    }
    // Case does not make a second claim of one host.
    assert_eq!(
        Claim::host("A.Example.com", "p", "ns").lease_name(),
        Claim::host("a.example.com", "q", "other").lease_name()
    );
    assert_ne!(
        lease_name(ClaimKind::Host, "wildcard.example.com"),
        lease_name(ClaimKind::Host, "*.example.com")
    );
}

#[test]
fn a_lease_whose_name_does_not_match_its_claim_is_not_a_claim() {
    let mut lease = Claim::project("demo", "team-a").to_lease("jockey-system", at(0));
    lease.metadata.name = Some("project-other".into());
    assert_eq!(Claim::from_lease(&lease), None);
    let mut lease = Claim::host("a.example.com", "demo", "ns").to_lease("x", at(0));
    lease
        .metadata
        .annotations
        .as_mut()
        .unwrap()
        .insert(ANNOTATION_HOST.into(), "b.example.com".into());
    assert_eq!(Claim::from_lease(&lease), None);
    let mut lease = Claim::project("demo", "ns").to_lease("x", at(0));
    lease.spec.as_mut().unwrap().holder_identity = Some("no-slash".into());
    assert_eq!(Claim::from_lease(&lease), None);
}

#[test]
fn standing_tells_a_project_by_namespace_and_a_host_by_project() {
    let mine = Claim::project("demo", "team-a");
    assert_eq!(standing(&mine, None), Standing::Free);
    assert_eq!(standing(&mine, Some(&mine)), Standing::Ours);
    let theirs = Claim::project("demo", "team-b");
    assert_eq!(
        standing(&mine, Some(&theirs)),
        Standing::Taken(theirs.clone())
    );

    let host = Claim::host("h.example.com", "demo", "team-a");
    assert_eq!(standing(&host, Some(&host)), Standing::Ours);
    // Same namespace, another project: not ours — a host belongs to one project.
    let other_project = Claim::host("h.example.com", "other", "team-a");
    assert_eq!(
        standing(&host, Some(&other_project)),
        Standing::Taken(other_project)
    );
}

#[test]
fn the_index_follows_leases() {
    let mut index = ClaimIndex::new();
    let claim = Claim::host("h.example.com", "demo", "team-a");
    let lease = claim.to_lease("jockey-system", at(5));
    assert!(index.upsert(&lease));
    assert_eq!(index.get(ClaimKind::Host, "H.example.com"), Some(&claim));
    assert_eq!(index.get(ClaimKind::Project, "demo"), None);
    index.remove(&claim.lease_name());
    assert!(index.is_empty());
    // A Lease that stops being a well-formed claim leaves the index.
    assert!(index.upsert(&lease));
    let mut broken = lease.clone();
    broken.spec = None;
    assert!(!index.upsert(&broken));
    assert!(index.is_empty());
}

#[test]
fn unused_claims_are_released_only_after_the_grace_period() {
    let project = Claim::project("demo", "team-a");
    let host = Claim::host("demo.example.com", "demo", "team-a");
    let other = Claim::project("busy", "team-b");
    let mut in_use = InUse::default();
    in_use
        .projects
        .insert(("team-b".to_string(), "busy".to_string()));
    let now = 10_000;
    let old = Some(now - RELEASE_GRACE_SECONDS);
    let young = Some(now - RELEASE_GRACE_SECONDS + 1);

    let claims = [(&project, old), (&host, old), (&other, old)];
    assert_eq!(
        unused(claims, &in_use, now, RELEASE_GRACE_SECONDS),
        vec![project.clone(), host.clone()]
    );
    // Just claimed: its object may not be stored yet.
    assert_eq!(
        unused([(&project, young)], &in_use, now, RELEASE_GRACE_SECONDS),
        vec![]
    );
    // No time at all counts as old.
    assert_eq!(
        unused([(&project, None)], &in_use, now, RELEASE_GRACE_SECONDS),
        vec![project.clone()]
    );

    // The project's objects in ANOTHER namespace do not keep team-a's claim.
    in_use
        .projects
        .insert(("team-c".to_string(), "demo".to_string()));
    assert_eq!(
        unused([(&project, old)], &in_use, now, RELEASE_GRACE_SECONDS),
        vec![project.clone()]
    );
    // Its own do.
    in_use
        .projects
        .insert(("team-a".to_string(), "demo".to_string()));
    assert_eq!(
        unused([(&project, old)], &in_use, now, RELEASE_GRACE_SECONDS),
        vec![]
    );
    // A host is kept only by an Ingress of the holding project serving it.
    in_use.hosts.insert((
        "team-a".to_string(),
        "other".to_string(),
        "demo.example.com".to_string(),
    ));
    assert_eq!(
        unused([(&host, old)], &in_use, now, RELEASE_GRACE_SECONDS),
        vec![host.clone()]
    );
    in_use.hosts.insert((
        "team-a".to_string(),
        "demo".to_string(),
        "demo.example.com".to_string(),
    ));
    assert_eq!(
        unused([(&host, old)], &in_use, now, RELEASE_GRACE_SECONDS),
        vec![]
    );
}

#[test]
fn a_fresh_claim_of_the_claimant_is_trusted_without_a_write() {
    let mut index = ClaimIndex::new();
    let ours = Claim::project("demo", "team-a");
    index.upsert(&ours.to_lease("jockey-system", at(1_000)));
    let grace = RELEASE_GRACE_SECONDS;
    let window = grace - TRUST_MARGIN_SECONDS;
    assert!(trusted_without_write(&index, &ours, 1_000, grace));
    assert!(trusted_without_write(
        &index,
        &ours,
        1_000 + window - 1,
        grace
    ));
    // Old enough that a release could delete it before the object is stored: write.
    assert!(!trusted_without_write(&index, &ours, 1_000 + window, grace));
    assert!(!trusted_without_write(&index, &ours, 1_000 + grace, grace));
    // A renewal stamped ahead of this clock is as fresh as now, not fresher.
    assert!(trusted_without_write(&index, &ours, 900, grace));
    // A grace no longer than the margin trusts nothing.
    assert!(!trusted_without_write(
        &index,
        &ours,
        1_000,
        TRUST_MARGIN_SECONDS
    ));
    assert!(!trusted_without_write(&index, &ours, 1_000, 3));
}

#[test]
fn only_the_claimants_own_claim_is_trusted() {
    let mut index = ClaimIndex::new();
    index.upsert(&Claim::project("demo", "team-a").to_lease("x", at(1_000)));
    index.upsert(&Claim::host("demo.example.com", "demo", "team-a").to_lease("x", at(1_000)));
    let grace = RELEASE_GRACE_SECONDS;
    // Another namespace's claim of the project, another project's claim of the host.
    assert!(!trusted_without_write(
        &index,
        &Claim::project("demo", "team-b"),
        1_000,
        grace
    ));
    assert!(!trusted_without_write(
        &index,
        &Claim::host("demo.example.com", "other", "team-a"),
        1_000,
        grace
    ));
    assert!(trusted_without_write(
        &index,
        &Claim::host("Demo.Example.com", "demo", "team-a"),
        1_000,
        grace
    ));
    // Not cached at all: a first claim is always written.
    assert!(!trusted_without_write(
        &index,
        &Claim::project("new", "team-a"),
        1_000,
        grace
    ));
    // A cached claim without a time is not known to be fresh.
    let mut lease = Claim::project("old", "team-a").to_lease("x", at(1_000));
    let spec = lease.spec.as_mut().unwrap();
    spec.renew_time = None;
    spec.acquire_time = None;
    index.upsert(&lease);
    assert!(!trusted_without_write(
        &index,
        &Claim::project("old", "team-a"),
        1_000,
        grace
    ));
}

#[test]
fn a_create_needs_its_namespace_and_an_update_its_object_labelled_for_the_project() {
    let create = Evidence::for_review(true, "Service", "team-a", "svc", "demo");
    assert_eq!(
        create,
        Evidence::Namespace {
            namespace: "team-a".into()
        }
    );
    let present = |project: Option<&str>| Seen::Present {
        deleting: false,
        project: project.map(str::to_string),
    };
    assert_eq!(create.judge(&present(None)), Ok(()));
    assert_eq!(
        create.judge(&Seen::Missing),
        Err("namespace team-a does not exist in the API server".into())
    );
    assert_eq!(
        create.judge(&Seen::Present {
            deleting: true,
            project: None
        }),
        Err("namespace team-a is being deleted".into())
    );

    let update = Evidence::for_review(false, "Deployment", "team-a", "web", "demo");
    assert_eq!(update.describe(), "Deployment team-a/web");
    assert_eq!(update.judge(&present(Some("demo"))), Ok(()));
    // Joining the project: the stored object has no project yet.
    assert_eq!(update.judge(&present(None)), Ok(()));
    // Being deleted, it still exists (its finalizers are removed by UPDATEs).
    assert_eq!(
        update.judge(&Seen::Present {
            deleting: true,
            project: Some("demo".into())
        }),
        Ok(())
    );
    assert_eq!(
        update.judge(&Seen::Missing),
        Err("Deployment team-a/web does not exist in the API server".into())
    );
    assert_eq!(
        update.judge(&present(Some("other"))),
        Err("Deployment team-a/web is stored with project \"other\", not \"demo\"".into())
    );
}
