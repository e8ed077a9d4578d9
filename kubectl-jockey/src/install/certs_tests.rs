use super::*;
use k8s_openapi::ByteString;

fn secret_from(v: Value) -> Secret {
    // Secret data in objects is base64 of the value; Secret's ByteString holds raw bytes.
    let mut s: Secret = serde_json::from_value(json!({ "metadata": v["metadata"] })).unwrap();
    let data = v["data"].as_object().unwrap();
    s.data = Some(
        data.iter()
            .map(|(k, b)| {
                use base64::Engine;
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(b.as_str().unwrap())
                    .unwrap();
                (k.clone(), ByteString(raw))
            })
            .collect(),
    );
    s
}

#[test]
fn certificates_are_kept_renewed_and_rotated() {
    let now = now_unix();
    // First install: a CA and a serving certificate.
    let p1 = plan_certificates("jw", "ns", None, None, now, 30, 365).unwrap();
    assert!(p1.ca_renewed && p1.serving_renewed);
    assert_eq!(p1.trusted, vec![p1.ca.cert_pem.clone()]);
    let ca_s = secret_from(ca_secret_object("jw", "ns", &p1));
    let tls_s = secret_from(tls_secret_object("jw", "ns", &p1));
    // Second install: nothing changes.
    let p2 = plan_certificates("jw", "ns", Some(&ca_s), Some(&tls_s), now, 30, 365).unwrap();
    assert!(!p2.ca_renewed && !p2.serving_renewed);
    assert_eq!(p2.serving, p1.serving);
    // Near expiry of the serving certificate: renewed by the same CA.
    let later = now + 340 * 86_400;
    let p3 = plan_certificates("jw", "ns", Some(&ca_s), Some(&tls_s), later, 30, 365).unwrap();
    assert!(!p3.ca_renewed && p3.serving_renewed);
    assert_eq!(p3.ca, p1.ca);
    assert_ne!(p3.serving.cert_pem, p1.serving.cert_pem);
    // In the CA's last year: a new CA, trusted beside the old one; a new serving certificate.
    let late = now + (CA_DAYS - 100) * 86_400;
    let p4 = plan_certificates("jw", "ns", Some(&ca_s), Some(&tls_s), late, 30, 365).unwrap();
    assert!(p4.ca_renewed && p4.serving_renewed);
    assert_eq!(
        p4.trusted,
        vec![p4.ca.cert_pem.clone(), p1.ca.cert_pem.clone()]
    );
    // The old CA stays trusted through the grace period, then is dropped.
    // (Expiries as if the new certificates had been made at `late`.)
    let mut ca_s4 = secret_from(ca_secret_object("jw", "ns", &p4));
    let mut tls_s4 = secret_from(tls_secret_object("jw", "ns", &p4));
    ca_s4.annotations_mut().insert(
        ANNOTATION_NOT_AFTER.into(),
        (late + CA_DAYS * 86_400).to_string(),
    );
    tls_s4.annotations_mut().insert(
        ANNOTATION_NOT_AFTER.into(),
        (late + 365 * 86_400).to_string(),
    );
    let p4b = plan_certificates(
        "jw",
        "ns",
        Some(&ca_s4),
        Some(&tls_s4),
        late + 86_400,
        30,
        365,
    )
    .unwrap();
    assert_eq!(p4b.trusted.len(), 2);
    assert!(!p4b.ca_renewed && !p4b.serving_renewed);
    let gone = late + PREVIOUS_CA_GRACE_SECONDS + 1;
    let p4c = plan_certificates("jw", "ns", Some(&ca_s4), Some(&tls_s4), gone, 30, 365).unwrap();
    assert_eq!(p4c.trusted, vec![p4.ca.cert_pem.clone()]);
    // A serving Secret signed by another CA is replaced.
    let other = plan_certificates("jw", "ns", None, None, now, 30, 365).unwrap();
    let other_tls = secret_from(tls_secret_object("jw", "ns", &other));
    let p5 = plan_certificates("jw", "ns", Some(&ca_s), Some(&other_tls), now, 30, 365).unwrap();
    assert!(p5.serving_renewed && !p5.ca_renewed);
}
