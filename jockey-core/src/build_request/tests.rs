use super::*;
use crate::bundle::{Bundle, Collected, Entry, instance_configmap};

fn bundle(files: &[(&str, &str)]) -> Bundle {
    Bundle::from_collected(Collected {
        entries: files
            .iter()
            .map(|(p, d)| Entry::file(*p, d.as_bytes().to_vec(), false))
            .collect(),
        ..Default::default()
    })
    .unwrap()
}

fn project() -> ProjectId {
    ProjectId::parse("demo").unwrap()
}

const MAX: u64 = 4 << 20;

#[test]
fn a_request_for_the_projects_own_instance_is_admitted_with_facts_from_the_configmap() {
    let b = bundle(&[("server.py", "print()"), ("Dockerfile", "FROM x")]);
    let cm = instance_configmap(&project(), &b);
    let req = request(&project(), &b.hash, "ns", 120);
    let a = check(&req, "ns", Some(&cm), MAX).unwrap();
    assert_eq!(a.hash, b.hash);
    assert!(a.has_dockerfile);
    assert_eq!(a.gz, b.gz);
    assert_eq!(a.timeout_seconds, 120);
    let plain = bundle(&[("server.py", "print()")]);
    let cm = instance_configmap(&project(), &plain);
    let req = request(&project(), &plain.hash, "ns", 120);
    let a = check(&req, "ns", Some(&cm), MAX).unwrap();
    assert!(!a.has_dockerfile);
    assert_eq!(a.requirements, None);
    // requirements.txt at the top, and only there, is the dependency input.
    let deps = bundle(&[
        ("server.py", "print()"),
        ("requirements.txt", "six==1.17.0\n"),
        ("sub/requirements.txt", "other\n"),
    ]);
    let cm = instance_configmap(&project(), &deps);
    let req = request(&project(), &deps.hash, "ns", 120);
    let a = check(&req, "ns", Some(&cm), MAX).unwrap();
    assert_eq!(a.requirements.as_deref(), Some(b"six==1.17.0\n".as_slice()));
}

#[test]
fn refusals_name_the_object_and_the_fix() {
    let b = bundle(&[("server.py", "print()")]);
    let cm = instance_configmap(&project(), &b);
    let req = request(&project(), &b.hash, "ns", 120);

    let missing = check(&req, "ns", None, MAX).unwrap_err();
    assert!(
        missing.contains("does not exist") && missing.contains("deploy again"),
        "{missing}"
    );

    // Another project of the namespace with the same files shares the instance; its request
    // is named for it.
    let twin = ProjectId::parse("twin").unwrap();
    let shared = request(&twin, &b.hash, "ns", 120);
    assert_eq!(check(&shared, "ns", Some(&cm), MAX).unwrap().project, twin);
    let mut other = req.clone();
    other.spec.project = "Bad_Id".into();
    assert!(check(&other, "ns", Some(&cm), MAX).is_err());

    let mut mutable = cm.clone();
    mutable.immutable = None;
    let e = check(&req, "ns", Some(&mutable), MAX).unwrap_err();
    assert!(e.contains("not immutable"), "{e}");

    // Files swapped under the same name and annotation: the content decides.
    let mut swapped = cm.clone();
    let evil = bundle(&[("server.py", "import os")]);
    swapped.binary_data = instance_configmap(&project(), &evil).binary_data;
    let e = check(&req, "ns", Some(&swapped), MAX).unwrap_err();
    assert!(e.contains("does not hold what its name says"), "{e}");

    let mut renamed = req.clone();
    renamed.metadata.name = Some("demo-build-0000000000000000".into());
    let e = check(&renamed, "ns", Some(&cm), MAX).unwrap_err();
    assert!(e.contains("should be named"), "{e}");

    let mut long = req.clone();
    long.spec.timeout_seconds = Some(MAX_TIMEOUT_SECONDS + 1);
    assert!(
        check(&long, "ns", Some(&cm), MAX)
            .unwrap_err()
            .contains("at most")
    );

    let mut bomb = cm.clone();
    bomb.binary_data =
        instance_configmap(&project(), &bundle(&[("a", &"x".repeat(100_000))])).binary_data;
    let e = check(&req, "ns", Some(&bomb), 1000).unwrap_err();
    assert!(e.contains("inflates past"), "{e}");

    let mut garbage = cm.clone();
    garbage.binary_data = Some(BTreeMap::from([(
        INSTANCE_TAR_KEY.to_string(),
        k8s_openapi::ByteString(b"not gzip".to_vec()),
    )]));
    assert!(
        check(&req, "ns", Some(&garbage), MAX)
            .unwrap_err()
            .contains("not gzip")
    );
}

#[test]
fn request_names_fit_a_label_and_never_collide() {
    let h = ContentHash::from_digest(&[0xab; 32]);
    let long_a = ProjectId::parse(&format!("{}a", "p".repeat(47))).unwrap();
    let long_b = ProjectId::parse(&format!("{}b", "p".repeat(47))).unwrap();
    let (a, b) = (request_name(&long_a, &h), request_name(&long_b, &h));
    assert!(a.len() <= 63 && b.len() <= 63, "{a} {b}");
    assert_ne!(a, b);
    assert_eq!(request_name(&project(), &h), "demo-build-abababababababab");
}

#[test]
fn the_status_log_keeps_the_newest_lines_and_a_follower_sees_each_line_once() {
    let mut s = BuildRequestStatus::default();
    let lines: Vec<String> = (0..100).map(|i| format!("line {i}")).collect();
    append_log(&mut s, &lines[..10]);
    assert_eq!(unseen(&s, 0).len(), 10);
    assert_eq!(unseen(&s, 7), &lines[7..10]);
    append_log(&mut s, &lines[10..]);
    assert_eq!(s.log.len(), STATUS_LOG_LINES);
    assert_eq!(s.log_lines, 100);
    assert_eq!(
        unseen(&s, 10).first(),
        Some(&format!("line {}", 100 - STATUS_LOG_LINES))
    );
    assert_eq!(unseen(&s, 98), &lines[98..]);
    assert!(unseen(&s, 100).is_empty());
    append_log(&mut s, &["x".repeat(10_000)]);
    assert_eq!(s.log.last().map(|l| l.len()), Some(STATUS_LOG_LINE_CHARS));
}

#[test]
fn the_status_round_trips_as_the_api_server_stores_it() {
    let json = serde_json::json!({
        "apiVersion": "jockey.agentops.ai/v1alpha1", "kind": "BuildRequest",
        "metadata": {"name": "demo-build-abababababababab", "namespace": "ns"},
        "spec": {"project": "demo", "instance": "instance-abababababababab"},
        "status": {"phase": "Failed", "message": "m", "logLines": 3, "log": ["a"]}
    });
    let r: BuildRequest = serde_json::from_value(json).unwrap();
    assert_eq!(r.phase(), Phase::Failed);
    assert!(r.phase().is_final());
    assert_eq!(r.spec.timeout_seconds, None);
    assert!(!Phase::Building.is_final());
}
