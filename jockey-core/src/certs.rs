//! Certificates for the webhook without cert-manager: a private CA and a serving certificate it
//! signs (rcgen), and what renewal needs to know of a certificate (x509-parser). Used by
//! `kubectl jockey install`, the webhook's renewal and the tests; computation only, no I/O.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use sha2::{Digest, Sha256};
use std::net::IpAddr;
use time::{Duration, OffsetDateTime};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::pem::Pem;

/// On the serving Secret: its certificate's expiry (Unix seconds), so that `install` can plan
/// without parsing.
pub const ANNOTATION_NOT_AFTER: &str = "jockey.agentops.ai/not-after";
/// On the serving Secret: [`ca_sha256`] of the CA that signed it.
pub const ANNOTATION_CA_SHA256: &str = "jockey.agentops.ai/ca-sha256";
/// New certificates start this long before they are made, for clocks a little behind.
pub const CLOCK_SKEW_SECONDS: i64 = 300;
/// The longest default renewal window (a third of the lifetime otherwise).
pub const MAX_DEFAULT_RENEW_BEFORE_SECONDS: i64 = 30 * 86_400;

/// A CA or serving certificate with its key, in PEM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    pub cert_pem: String,
    pub key_pem: String,
    /// Expiry, seconds since the Unix epoch (kept beside the PEM so rotation need not parse it).
    pub not_after: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what}: {cause}")]
pub struct CertError {
    pub what: String,
    pub cause: String,
}

fn err(what: &str) -> impl FnOnce(rcgen::Error) -> CertError + '_ {
    move |source| CertError {
        what: what.to_string(),
        cause: source.to_string(),
    }
}

fn fail(what: &str, cause: impl std::fmt::Display) -> CertError {
    CertError {
        what: what.to_string(),
        cause: cause.to_string(),
    }
}

fn ca_params(common_name: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn.push(DnType::OrganizationName, "jockey");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

/// A new CA valid from now (minus a little clock skew) for `days`.
pub fn new_ca(common_name: &str, days: i64) -> Result<Pair, CertError> {
    let key = KeyPair::generate().map_err(err("generating the CA key"))?;
    let mut params = ca_params(common_name);
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::minutes(5);
    params.not_after = now + Duration::days(days);
    let cert = params
        .self_signed(&key)
        .map_err(err("self-signing the CA certificate"))?;
    Ok(Pair {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        not_after: params.not_after.unix_timestamp(),
    })
}

/// A serving certificate for `names` (DNS names or IP addresses), signed by `ca` (created by
/// [`new_ca`] with the same `ca_common_name`), valid for `days`.
pub fn issue_serving(
    ca: &Pair,
    ca_common_name: &str,
    names: &[String],
    days: i64,
) -> Result<Pair, CertError> {
    let ca_key = KeyPair::from_pem(&ca.key_pem).map_err(err("reading the CA key"))?;
    let issuer = Issuer::new(ca_params(ca_common_name), ca_key);
    let now = OffsetDateTime::now_utc();
    sign_serving(
        &issuer,
        names,
        now - Duration::minutes(5),
        now + Duration::days(days),
    )
}

/// A serving certificate for `names` valid from `not_before` to `not_after` (Unix seconds),
/// signed by the CA `ca` as its certificate describes it (any CA, not only [`new_ca`]'s). The
/// CA's key must belong to its certificate: a certificate signed by another key would be
/// refused by every client trusting the CA.
pub fn issue_serving_between(
    ca: &Pair,
    names: &[String],
    not_before: i64,
    not_after: i64,
) -> Result<Pair, CertError> {
    let ca_key = KeyPair::from_pem(&ca.key_pem).map_err(err("reading the CA key"))?;
    let ca_der = first_der(&ca.cert_pem).map_err(|e| fail("reading the CA certificate", e))?;
    let (_, ca_cert) = x509_parser::parse_x509_certificate(&ca_der)
        .map_err(|e| fail("reading the CA certificate", e))?;
    if ca_cert.public_key().subject_public_key.data.as_ref() != ca_key.public_key_raw() {
        return Err(fail(
            "checking the CA",
            "its key does not belong to its certificate",
        ));
    }
    let issuer = Issuer::from_ca_cert_pem(&ca.cert_pem, ca_key)
        .map_err(err("reading the CA certificate"))?;
    let at = |t: i64, what: &str| OffsetDateTime::from_unix_timestamp(t).map_err(|e| fail(what, e));
    let pair = sign_serving(
        &issuer,
        names,
        at(not_before, "the start of validity")?,
        at(not_after, "the end of validity")?,
    )?;
    if !signed_by(&pair.cert_pem, &ca.cert_pem)? {
        return Err(fail(
            "checking the new certificate",
            "the CA's signature on it does not verify",
        ));
    }
    Ok(pair)
}

fn sign_serving(
    issuer: &Issuer<'_, KeyPair>,
    names: &[String],
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> Result<Pair, CertError> {
    if names.is_empty() {
        return Err(fail(
            "building the serving certificate's names",
            "no DNS name or IP address to issue it for",
        ));
    }
    if not_after <= not_before {
        return Err(fail(
            "building the serving certificate",
            "it would expire before it starts",
        ));
    }
    let key = KeyPair::generate().map_err(err("generating the serving key"))?;
    let mut params = CertificateParams::new(names.to_vec())
        .map_err(err("building the serving certificate's names"))?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, names[0].clone());
    params.distinguished_name = dn;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.not_before = not_before;
    params.not_after = not_after;
    let cert = params
        .signed_by(&key, issuer)
        .map_err(err("signing the serving certificate"))?;
    Ok(Pair {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        not_after: not_after.unix_timestamp(),
    })
}

/// A client certificate for `common_name` (TLS client authentication only), signed by `ca`
/// (created by [`new_ca`] with the same `ca_common_name`), valid for `days`: what an API server
/// presents to a webhook that requires one (`jockey-webhook --client-ca-file`), for the tests
/// and a local run.
pub fn issue_client(
    ca: &Pair,
    ca_common_name: &str,
    common_name: &str,
    days: i64,
) -> Result<Pair, CertError> {
    let ca_key = KeyPair::from_pem(&ca.key_pem).map_err(err("reading the CA key"))?;
    let issuer = Issuer::new(ca_params(ca_common_name), ca_key);
    let key = KeyPair::generate().map_err(err("generating the client key"))?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    params.distinguished_name = dn;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::minutes(5);
    params.not_after = now + Duration::days(days);
    let cert = params
        .signed_by(&key, &issuer)
        .map_err(err("signing the client certificate"))?;
    Ok(Pair {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        not_after: params.not_after.unix_timestamp(),
    })
}

/// Whether a certificate expiring at `not_after` should be renewed at `now` (both Unix
/// seconds): within `renew_before_days` of its expiry.
pub fn needs_renewal(not_after: i64, now: i64, renew_before_days: i64) -> bool {
    not_after - now < renew_before_days * 86_400
}

/// The SHA-256 (hex) of a CA certificate's PEM, as the serving Secret's
/// [`ANNOTATION_CA_SHA256`] records it.
pub fn ca_sha256(ca_cert_pem: &str) -> String {
    let mut h = Sha256::new();
    h.update(ca_cert_pem.as_bytes());
    // The separator install has always hashed after each part.
    h.update([0]);
    hex::encode(h.finalize())
}

/// What renewal needs to know of a certificate: when it is valid and for which names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// Unix seconds.
    pub not_before: i64,
    pub not_after: i64,
    /// Subject alternative names, DNS names and IP addresses, in the certificate's order.
    pub names: Vec<String>,
}

/// Why a certificate must not be served now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    #[error("it expired at {}", rfc3339(*.0))]
    Expired(i64),
    #[error("it is not valid before {}", rfc3339(*.0))]
    NotYetValid(i64),
}

/// `2026-01-02T03:04:05Z`.
pub fn rfc3339(unix: i64) -> String {
    k8s_openapi::jiff::Timestamp::from_second(unix)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| format!("{unix} (Unix seconds)"))
}

impl CertInfo {
    pub fn lifetime(&self) -> i64 {
        self.not_after - self.not_before
    }

    /// How long before expiry a certificate is renewed when nobody says: a third of its
    /// lifetime (as cert-manager does), at most 30 days.
    pub fn default_renew_before(&self) -> i64 {
        (self.lifetime() / 3).clamp(0, MAX_DEFAULT_RENEW_BEFORE_SECONDS)
    }

    /// When to renew (Unix seconds): `renew_before` (seconds, default
    /// [`CertInfo::default_renew_before`]) ahead of expiry.
    pub fn renew_at(&self, renew_before: Option<i64>) -> i64 {
        self.not_after - renew_before.unwrap_or_else(|| self.default_renew_before())
    }

    /// How far a successor starts in the past, for clocks a little behind:
    /// [`CLOCK_SKEW_SECONDS`], or a tenth of a short lifetime.
    pub fn renewal_skew(&self) -> i64 {
        CLOCK_SKEW_SECONDS.min(self.lifetime() / 10).max(0)
    }

    /// How long a successor ([`renew_serving`]) has left when it is made: a renewal window this
    /// long or longer would renew it again at once, without end.
    pub fn fresh_remaining(&self) -> i64 {
        self.lifetime() - self.renewal_skew()
    }

    /// Whether it should be renewed at `now`: inside the renewal window, or not valid at all.
    pub fn renewal_due(&self, now: i64, renew_before: Option<i64>) -> bool {
        now >= self.renew_at(renew_before) || self.check_valid(now).is_err()
    }

    /// Whether it may be served at `now`.
    pub fn check_valid(&self, now: i64) -> Result<(), Invalid> {
        if now >= self.not_after {
            Err(Invalid::Expired(self.not_after))
        } else if now < self.not_before {
            Err(Invalid::NotYetValid(self.not_before))
        } else {
            Ok(())
        }
    }
}

fn first_der(pem: &str) -> Result<Vec<u8>, String> {
    match Pem::iter_from_buffer(pem.as_bytes()).next() {
        Some(Ok(p)) if p.label == "CERTIFICATE" => Ok(p.contents),
        Some(Ok(p)) => Err(format!(
            "the first PEM block is {:?}, not CERTIFICATE",
            p.label
        )),
        Some(Err(e)) => Err(format!("not PEM ({e})")),
        None => Err("no PEM certificate in it".to_string()),
    }
}

fn parse(der: &[u8]) -> Result<X509Certificate<'_>, String> {
    x509_parser::parse_x509_certificate(der)
        .map(|(_, c)| c)
        .map_err(|e| format!("not an X.509 certificate ({e})"))
}

/// Validity and names of the first certificate of a PEM chain (the serving one).
pub fn inspect(cert_pem: &str) -> Result<CertInfo, CertError> {
    let what = "reading the certificate";
    let der = first_der(cert_pem).map_err(|e| fail(what, e))?;
    let cert = parse(&der).map_err(|e| fail(what, e))?;
    let validity = cert.validity();
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            match n {
                GeneralName::DNSName(d) => names.push(d.to_string()),
                GeneralName::IPAddress(b) => {
                    let ip = match b.len() {
                        4 => <[u8; 4]>::try_from(*b).ok().map(IpAddr::from),
                        16 => <[u8; 16]>::try_from(*b).ok().map(IpAddr::from),
                        _ => None,
                    };
                    names.extend(ip.map(|ip| ip.to_string()));
                }
                _ => {}
            }
        }
    }
    Ok(CertInfo {
        not_before: validity.not_before.timestamp(),
        not_after: validity.not_after.timestamp(),
        names,
    })
}

/// The names a client certificate (DER) identifies its holder by: the subject's common names,
/// then its DNS subject alternative names. Empty for what is not a certificate.
pub fn client_names(der: &[u8]) -> Vec<String> {
    let Ok(cert) = parse(der) else {
        return Vec::new();
    };
    let mut names: Vec<String> = cert
        .subject()
        .iter_common_name()
        .filter_map(|cn| cn.as_str().ok().map(str::to_string))
        .collect();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            if let GeneralName::DNSName(d) = n {
                names.push(d.to_string());
            }
        }
    }
    names
}

/// Whether `ca_cert_pem`'s key signed the first certificate of `cert_pem`.
pub fn signed_by(cert_pem: &str, ca_cert_pem: &str) -> Result<bool, CertError> {
    let der = first_der(cert_pem).map_err(|e| fail("reading the certificate", e))?;
    let cert = parse(&der).map_err(|e| fail("reading the certificate", e))?;
    let ca_der = first_der(ca_cert_pem).map_err(|e| fail("reading the CA certificate", e))?;
    let ca = parse(&ca_der).map_err(|e| fail("reading the CA certificate", e))?;
    Ok(cert.issuer() == ca.subject() && cert.verify_signature(Some(ca.public_key())).is_ok())
}

/// The successor of the serving certificate `current`: the same names and the same lifetime,
/// starting at `now` (less [`CertInfo::renewal_skew`]), signed by `ca`.
pub fn renew_serving(ca: &Pair, current: &CertInfo, now: i64) -> Result<Pair, CertError> {
    let not_before = now - current.renewal_skew();
    issue_serving_between(
        ca,
        &current.names,
        not_before,
        not_before + current.lifetime(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ca_signs_a_serving_certificate() {
        let ca = new_ca("jockey-webhook-ca", 3650).unwrap();
        assert!(ca.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(ca.key_pem.contains("PRIVATE KEY"));
        let names = vec![
            "jockey-webhook.jockey-system.svc".to_string(),
            "127.0.0.1".to_string(),
        ];
        let s = issue_serving(&ca, "jockey-webhook-ca", &names, 365).unwrap();
        assert!(s.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        let now = OffsetDateTime::now_utc().unix_timestamp();
        assert!(s.not_after > now + 364 * 86_400);
        assert!(!needs_renewal(s.not_after, now, 30));
        assert!(needs_renewal(s.not_after, now + 340 * 86_400, 30));
        assert_ne!(s.key_pem, ca.key_pem);
    }

    #[test]
    fn a_client_certificate_names_its_holder_and_is_signed_by_the_ca() {
        let ca = new_ca("client-ca", 10).unwrap();
        let c = issue_client(&ca, "client-ca", "kube-apiserver-webhook-client", 2).unwrap();
        assert!(signed_by(&c.cert_pem, &ca.cert_pem).unwrap());
        let der = first_der(&c.cert_pem).unwrap();
        assert_eq!(client_names(&der), vec!["kube-apiserver-webhook-client"]);
        // A serving certificate's names: its common name, then its DNS names.
        let s = issue_serving(&ca, "client-ca", &names(), 2).unwrap();
        assert_eq!(
            client_names(&first_der(&s.cert_pem).unwrap()),
            vec![
                "jockey-webhook.jockey-system.svc",
                "jockey-webhook.jockey-system.svc"
            ]
        );
        assert!(client_names(b"not a certificate").is_empty());
    }

    fn now() -> i64 {
        OffsetDateTime::now_utc().unix_timestamp()
    }

    fn names() -> Vec<String> {
        vec![
            "jockey-webhook.jockey-system.svc".into(),
            "127.0.0.1".into(),
        ]
    }

    #[test]
    fn inspect_reads_validity_and_names() {
        let ca = new_ca("c", 10).unwrap();
        let s = issue_serving(&ca, "c", &names(), 3).unwrap();
        let info = inspect(&s.cert_pem).unwrap();
        assert_eq!(info.not_after, s.not_after);
        assert_eq!(info.names, names());
        let t = now();
        assert!(
            info.not_before <= t - 200 && info.not_before > t - 400,
            "{info:?}"
        );
        // A chain: the first certificate is the serving one.
        let chain = format!("{}{}", s.cert_pem, ca.cert_pem);
        assert_eq!(inspect(&chain).unwrap(), info);
    }

    #[test]
    fn inspect_refuses_what_is_no_certificate_without_panicking() {
        let ca = new_ca("c", 1).unwrap();
        let cert = ca.cert_pem.clone();
        let truncated = format!("{}\n-----END CERTIFICATE-----\n", &cert[..cert.len() / 2]);
        let garbled = cert.replace('A', "B");
        for bad in [
            "",
            "garbage",
            &ca.key_pem,
            &truncated,
            &garbled,
            "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n",
        ] {
            let e = inspect(bad).unwrap_err();
            assert!(
                e.to_string().starts_with("reading the certificate: "),
                "{e}"
            );
            assert!(
                signed_by(bad, &ca.cert_pem).is_err() || !signed_by(bad, &ca.cert_pem).unwrap()
            );
        }
        assert!(
            inspect(&ca.key_pem)
                .unwrap_err()
                .to_string()
                .contains("not CERTIFICATE")
        );
    }

    #[test]
    fn validity_is_checked_at_both_ends_with_the_time_in_the_message() {
        let info = CertInfo {
            not_before: 1_000_000,
            not_after: 2_000_000,
            names: names(),
        };
        assert_eq!(info.check_valid(1_000_000), Ok(()));
        assert_eq!(info.check_valid(1_999_999), Ok(()));
        let expired = info.check_valid(2_000_000).unwrap_err();
        assert_eq!(expired, Invalid::Expired(2_000_000));
        assert_eq!(expired.to_string(), "it expired at 1970-01-24T03:33:20Z");
        let early = info.check_valid(999_999).unwrap_err();
        assert_eq!(
            early.to_string(),
            "it is not valid before 1970-01-12T13:46:40Z"
        );
    }

    #[test]
    fn default_renewal_window_is_a_third_of_the_lifetime_at_most_30_days() {
        let info = |lifetime: i64| CertInfo {
            not_before: 0,
            not_after: lifetime,
            names: names(),
        };
        assert_eq!(info(90 * 60).default_renew_before(), 30 * 60);
        assert_eq!(info(90 * 86_400).default_renew_before(), 30 * 86_400);
        assert_eq!(info(365 * 86_400).default_renew_before(), 30 * 86_400);
        assert_eq!(info(365 * 86_400).renew_at(None), 335 * 86_400);
        assert_eq!(info(600).renew_at(Some(550)), 50);
        // A window longer than the lifetime: renew at once.
        assert!(info(600).renew_at(Some(6000)) < 0);
        // Due inside the window, and whenever it cannot be served.
        let i = CertInfo {
            not_before: 1000,
            not_after: 2000,
            names: names(),
        };
        assert!(!i.renewal_due(1500, Some(400)));
        assert!(i.renewal_due(1600, Some(400)));
        assert!(i.renewal_due(999, Some(400)));
        assert!(i.renewal_due(2000, Some(0)));
        assert!(!i.renewal_due(1666, None));
        assert!(i.renewal_due(1667, None));
    }

    #[test]
    fn renewal_keeps_names_and_lifetime_and_is_signed_by_the_ca() {
        let ca = new_ca("jockey-webhook-ca", 10).unwrap();
        let t = now();
        let first = issue_serving_between(&ca, &names(), t - 60, t + 120).unwrap();
        let info = inspect(&first.cert_pem).unwrap();
        assert_eq!((info.not_before, info.not_after), (t - 60, t + 120));
        let later = t + 100;
        let next = renew_serving(&ca, &info, later).unwrap();
        let next_info = inspect(&next.cert_pem).unwrap();
        assert_eq!(next_info.names, info.names);
        assert_eq!(next_info.lifetime(), info.lifetime());
        // A short lifetime starts a tenth of it in the past, a long one five minutes.
        assert_eq!(next_info.not_before, later - 18);
        assert_eq!(info.fresh_remaining(), 162);
        assert_eq!(next_info.not_after, later + 162);
        assert_eq!(next.not_after, next_info.not_after);
        assert_ne!(next.key_pem, first.key_pem);
        assert!(signed_by(&next.cert_pem, &ca.cert_pem).unwrap());
        assert!(signed_by(&first.cert_pem, &ca.cert_pem).unwrap());
        // Not by another CA (same name, other key), nor by itself.
        let other = new_ca("jockey-webhook-ca", 10).unwrap();
        assert!(!signed_by(&next.cert_pem, &other.cert_pem).unwrap());
        assert!(!signed_by(&next.cert_pem, &next.cert_pem).unwrap());
        // The same from install's way of issuing.
        let s = issue_serving(&ca, "jockey-webhook-ca", &names(), 365).unwrap();
        assert!(signed_by(&s.cert_pem, &ca.cert_pem).unwrap());
        let r = renew_serving(&ca, &inspect(&s.cert_pem).unwrap(), t).unwrap();
        let r_info = inspect(&r.cert_pem).unwrap();
        assert_eq!(r_info.not_before, t - CLOCK_SKEW_SECONDS);
        assert!(r.not_after >= t + 365 * 86_400 - 1, "{}", r.not_after);
    }

    /// The pair charts/jockey makes at install (certificates.mode self: Helm's genCAWithKey with
    /// an Ed25519 key in PKCS#8, a serving certificate with an ECDSA key in SEC1), captured from
    /// `helm template`: the webhook's renewal reads that CA and issues the successor.
    #[test]
    fn the_helm_charts_ca_renews_its_serving_certificate() {
        let ca = Pair {
            cert_pem: include_str!("certs_testdata/helm-ca.crt").into(),
            key_pem: include_str!("certs_testdata/helm-ca.key").into(),
            not_after: 0,
        };
        let serving = include_str!("certs_testdata/helm-serving.crt");
        assert!(signed_by(serving, &ca.cert_pem).unwrap());
        let info = inspect(serving).unwrap();
        assert_eq!(
            info.names,
            [
                "jockey-webhook.jockey-system.svc",
                "jockey-webhook.jockey-system.svc.cluster.local"
            ]
        );
        let next = renew_serving(&ca, &info, now()).unwrap();
        assert!(signed_by(&next.cert_pem, &ca.cert_pem).unwrap());
        assert_eq!(inspect(&next.cert_pem).unwrap().names, info.names);
        assert_eq!(inspect(&next.cert_pem).unwrap().lifetime(), info.lifetime());
    }

    #[test]
    fn renewal_refuses_a_ca_whose_key_is_not_its_own_and_empty_names() {
        let ca = new_ca("c", 10).unwrap();
        let other = new_ca("c", 10).unwrap();
        let mixed = Pair {
            cert_pem: ca.cert_pem.clone(),
            key_pem: other.key_pem.clone(),
            not_after: ca.not_after,
        };
        let t = now();
        let e = issue_serving_between(&mixed, &names(), t, t + 60).unwrap_err();
        assert_eq!(
            e.to_string(),
            "checking the CA: its key does not belong to its certificate"
        );
        let e = issue_serving_between(&ca, &[], t, t + 60).unwrap_err();
        assert!(e.to_string().contains("no DNS name or IP address"), "{e}");
        let e = issue_serving_between(&ca, &names(), t, t).unwrap_err();
        assert!(e.to_string().contains("expire before it starts"), "{e}");
        let bad_ca = Pair {
            cert_pem: "nope".into(),
            ..ca.clone()
        };
        let e = issue_serving_between(&bad_ca, &names(), t, t + 60).unwrap_err();
        assert!(
            e.to_string().starts_with("reading the CA certificate"),
            "{e}"
        );
    }

    #[test]
    fn ca_fingerprint_is_install_s() {
        // sha256("abc" + NUL), the formula install has always written.
        assert_eq!(
            ca_sha256("abc"),
            "dc1114cd074914bd872cc1f9a23ec910ea2203bc79779ab2e17da25782a624fc"
        );
    }

    #[test]
    fn a_bad_ca_key_is_an_error() {
        let mut ca = new_ca("x", 1).unwrap();
        ca.key_pem = "not a key".into();
        let e = issue_serving(&ca, "x", &["a".into()], 1).unwrap_err();
        assert!(e.to_string().contains("reading the CA key"), "{e}");
    }
}
