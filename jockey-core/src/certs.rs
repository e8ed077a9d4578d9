//! Certificates for the webhook without cert-manager: a private CA and a serving certificate it
//! signs (rcgen). Used by `kubectl jockey install` and the tests; computation only, no I/O.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use time::{Duration, OffsetDateTime};

/// A CA or serving certificate with its key, in PEM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    pub cert_pem: String,
    pub key_pem: String,
    /// Expiry, seconds since the Unix epoch (kept beside the PEM so rotation need not parse it).
    pub not_after: i64,
}

#[derive(Debug, thiserror::Error)]
#[error("{what}: {source}")]
pub struct CertError {
    pub what: String,
    #[source]
    pub source: rcgen::Error,
}

fn err(what: &str) -> impl FnOnce(rcgen::Error) -> CertError + '_ {
    move |source| CertError {
        what: what.to_string(),
        source,
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
    let key = KeyPair::generate().map_err(err("generating the serving key"))?;
    let mut params = CertificateParams::new(names.to_vec())
        .map_err(err("building the serving certificate's names"))?;
    let mut dn = DistinguishedName::new();
    dn.push(
        DnType::CommonName,
        names
            .first()
            .cloned()
            .unwrap_or_else(|| "jockey-webhook".into()),
    );
    params.distinguished_name = dn;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::minutes(5);
    params.not_after = now + Duration::days(days);
    let cert = params
        .signed_by(&key, &issuer)
        .map_err(err("signing the serving certificate"))?;
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
    fn a_bad_ca_key_is_an_error() {
        let mut ca = new_ca("x", 1).unwrap();
        ca.key_pem = "not a key".into();
        let e = issue_serving(&ca, "x", &["a".into()], 1).unwrap_err();
        assert!(e.to_string().contains("reading the CA key"), "{e}");
    }
}
