//! The certificate decisions of `install`: which CA and serving certificate to keep, renew or
//! make, and the Secrets that store them. Kept apart from the rendering: they depend on the
//! Secrets the cluster already holds, the time and fresh keys, and their rotation rules (the
//! caBundle trusts a new CA before any certificate it signed is served, and the old one through
//! a grace period) are an idea of their own, tested on their own.

use super::{MANAGED_BY, MANAGED_BY_VALUE};
use anyhow::{Context, Result};
use jockey_core::certs::{self, Pair};
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use serde_json::{Value, json};

// Shared with the webhook, which writes them when it renews the serving certificate itself.
use jockey_core::certs::{ANNOTATION_CA_SHA256, ANNOTATION_NOT_AFTER};
/// A CA lives ten years and is replaced in its last year.
const CA_DAYS: i64 = 3650;
const CA_RENEW_BEFORE_DAYS: i64 = 365;

pub(super) fn b64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn unb64_secret(secret: &Secret, key: &str) -> Option<String> {
    secret
        .data
        .as_ref()?
        .get(key)
        .and_then(|b| String::from_utf8(b.0.clone()).ok())
}

fn not_after_of(secret: &Secret) -> Option<i64> {
    secret
        .annotations()
        .get(ANNOTATION_NOT_AFTER)
        .and_then(|v| v.parse().ok())
}

/// The clock certificates are judged by (Unix seconds); `check` reads the same one.
pub(crate) fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// What the certificate step decided.
#[derive(Debug, Clone)]
pub struct CertPlan {
    pub ca: Pair,
    /// CAs the webhook configurations must trust: the current one, and the previous one while a
    /// certificate it signed may still be served.
    pub trusted: Vec<String>,
    pub serving: Pair,
    pub ca_renewed: bool,
    pub serving_renewed: bool,
    /// Until when the previous CA stays in the caBundle (Unix seconds).
    pub previous_until: Option<i64>,
}

/// How long a replaced CA stays trusted: long enough for every pod to have reloaded the new
/// serving certificate (the kubelet refreshes mounted Secrets within minutes).
const PREVIOUS_CA_GRACE_SECONDS: i64 = 7 * 86_400;

/// Decides which certificates to keep or make, given the stored Secrets. Pure but for the
/// randomness of new keys.
pub fn plan_certificates(
    name: &str,
    namespace: &str,
    ca_secret: Option<&Secret>,
    tls_secret: Option<&Secret>,
    now: i64,
    renew_before_days: i64,
    cert_days: i64,
) -> Result<CertPlan> {
    let ca_cn = format!("{name}-ca");
    let existing_ca = ca_secret.and_then(|s| {
        Some(Pair {
            cert_pem: unb64_secret(s, "tls.crt")?,
            key_pem: unb64_secret(s, "tls.key")?,
            not_after: not_after_of(s)?,
        })
    });
    let previous_ca = ca_secret.and_then(|s| unb64_secret(s, "previous.crt"));
    let previous_not_after = ca_secret
        .and_then(|s| {
            s.annotations()
                .get("jockey.agentops.ai/previous-not-after")
                .cloned()
        })
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or(0);
    let (ca, ca_renewed, mut trusted, previous_until) = match existing_ca {
        Some(ca) if !certs::needs_renewal(ca.not_after, now, CA_RENEW_BEFORE_DAYS) => {
            let mut trusted = vec![ca.cert_pem.clone()];
            let mut until = None;
            if let Some(prev) = previous_ca.filter(|_| previous_not_after > now) {
                trusted.push(prev);
                until = Some(previous_not_after);
            }
            (ca, false, trusted, until)
        }
        old => {
            let ca = certs::new_ca(&ca_cn, CA_DAYS)
                .with_context(|| format!("creating the CA of {name}"))?;
            let mut trusted = vec![ca.cert_pem.clone()];
            let mut until = None;
            if let Some(old) = old.filter(|o| o.not_after > now) {
                until = Some(old.not_after.min(now + PREVIOUS_CA_GRACE_SECONDS));
                trusted.push(old.cert_pem);
            }
            (ca, true, trusted, until)
        }
    };
    trusted.dedup();
    let ca_sha = certs::ca_sha256(&ca.cert_pem);
    let existing_serving = tls_secret.and_then(|s| {
        let signed_by_current = s.annotations().get(ANNOTATION_CA_SHA256) == Some(&ca_sha);
        signed_by_current.then_some(())?;
        Some(Pair {
            cert_pem: unb64_secret(s, "tls.crt")?,
            key_pem: unb64_secret(s, "tls.key")?,
            not_after: not_after_of(s)?,
        })
    });
    let (serving, serving_renewed) = match existing_serving {
        Some(s) if !certs::needs_renewal(s.not_after, now, renew_before_days) => (s, false),
        _ => {
            let names = vec![
                format!("{name}.{namespace}.svc"),
                format!("{name}.{namespace}.svc.cluster.local"),
            ];
            let s = certs::issue_serving(&ca, &ca_cn, &names, cert_days)
                .with_context(|| format!("issuing the serving certificate of {name}"))?;
            (s, true)
        }
    };
    Ok(CertPlan {
        ca,
        trusted,
        serving,
        ca_renewed,
        serving_renewed,
        previous_until,
    })
}

pub(super) fn ca_secret_object(name: &str, namespace: &str, plan: &CertPlan) -> Value {
    let mut data = json!({ "tls.crt": b64(&plan.ca.cert_pem), "tls.key": b64(&plan.ca.key_pem) });
    let mut annotations = json!({ ANNOTATION_NOT_AFTER: plan.ca.not_after.to_string() });
    if let (Some(prev), Some(until)) = (plan.trusted.get(1), plan.previous_until) {
        data["previous.crt"] = json!(b64(prev));
        annotations["jockey.agentops.ai/previous-not-after"] = json!(until.to_string());
    }
    json!({
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
        "metadata": {
            "name": format!("{name}-ca"), "namespace": namespace,
            "labels": { MANAGED_BY: MANAGED_BY_VALUE, "app.kubernetes.io/part-of": "jockey" },
            "annotations": annotations
        },
        "data": data
    })
}

pub(super) fn tls_secret_object(name: &str, namespace: &str, plan: &CertPlan) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
        "metadata": {
            "name": format!("{name}-tls"), "namespace": namespace,
            "labels": { MANAGED_BY: MANAGED_BY_VALUE, "app.kubernetes.io/part-of": "jockey" },
            "annotations": {
                ANNOTATION_NOT_AFTER: plan.serving.not_after.to_string(),
                ANNOTATION_CA_SHA256: certs::ca_sha256(&plan.ca.cert_pem),
            }
        },
        "data": {
            "tls.crt": b64(&plan.serving.cert_pem),
            "tls.key": b64(&plan.serving.key_pem),
            "ca.crt": b64(&plan.ca.cert_pem),
        }
    })
}

#[cfg(test)]
#[path = "certs_tests.rs"]
mod tests;
