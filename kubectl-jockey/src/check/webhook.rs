//! The installed webhook: serving, trusted by the API server, with certificates that last, the
//! registration `install` renders, and reached by the API server (a server-side dry run of a
//! labelled object comes back mutated).

use super::{CheckResult, Replicas, days_left};
use jockey_core::certs;

pub const GROUP: &str = "webhook";
pub const REPLICAS: &str = "webhook-replicas";
pub const PDB: &str = "webhook-pdb";
pub const CA_BUNDLE: &str = "webhook-ca-bundle";
pub const CERTIFICATE: &str = "webhook-certificate";
pub const CA: &str = "webhook-ca";
pub const FAILURE_POLICY: &str = "webhook-failure-policy";
pub const ADMISSION_POLICY: &str = "webhook-admission-policy";
pub const DRY_RUN: &str = "webhook-dry-run";

/// A serving certificate with fewer days left is a warning (the webhook renews it 30 days ahead,
/// so one this close has missed its renewal).
pub const WARN_DAYS: i64 = 30;
/// A CA with less than a year left: `install` replaces it then.
pub const CA_WARN_DAYS: i64 = 365;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pdb {
    pub disruptions_allowed: i32,
    pub current_healthy: i32,
    pub desired_healthy: i32,
}

/// One webhook of a configuration, as installed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hook {
    pub name: String,
    /// The caBundle, decoded (PEM); empty when unset.
    pub ca_bundle_pem: String,
    pub failure_policy: Option<String>,
    pub timeout_seconds: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Configuration {
    /// `MutatingWebhookConfiguration` or `ValidatingWebhookConfiguration`.
    pub kind: &'static str,
    /// `None`: not installed.
    pub hooks: Option<Vec<Hook>>,
}

/// What the server-side dry run of a labelled Service came back with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DryRun {
    /// Mutated by the webhook, in this namespace.
    Mutated { namespace: String },
    /// Stored as sent: the API server did not call the webhook (or it changed nothing).
    NotMutated { namespace: String },
    /// The API server refused it; its message (e.g. "failed calling webhook ...").
    Refused { namespace: String, message: String },
    /// No namespace the webhook answers exists to try in.
    NoNamespace(String),
    /// Not attempted (e.g. the webhook is not installed).
    NotTried(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookFacts {
    pub name: String,
    pub namespace: String,
    /// The webhook Deployment; `None`: missing.
    pub deployment: Option<Replicas>,
    pub pdb: Option<Pdb>,
    /// `tls.crt` of Secret `<name>-tls`, or why there is none.
    pub serving_pem: Result<String, String>,
    /// The CA certificate: `tls.crt` of Secret `<name>-ca` (self-managed), else `ca.crt` of the
    /// serving Secret (cert-manager).
    pub ca_pem: Option<String>,
    pub mutating: Configuration,
    pub validating: Configuration,
    /// What `install` renders (failurePolicy, timeoutSeconds).
    pub expected_failure_policy: String,
    pub expected_timeout_seconds: i32,
    pub policy_present: bool,
    pub binding_present: bool,
    pub dry_run: DryRun,
    /// Unix seconds.
    pub now: i64,
}

pub fn checks(f: &WebhookFacts) -> Vec<CheckResult> {
    let mut out = vec![replicas(f), pdb(f)];
    out.extend(certificates(f));
    out.push(failure_policy(f));
    out.push(admission_policy(f));
    out.push(dry_run(f));
    out
}

fn describe(f: &WebhookFacts) -> String {
    format!("kubectl -n {} describe deployment {}", f.namespace, f.name)
}

fn replicas(f: &WebhookFacts) -> CheckResult {
    let Some(r) = &f.deployment else {
        return CheckResult::fail(
            GROUP,
            REPLICAS,
            format!("deployment {}/{} does not exist", f.namespace, f.name),
            format!(
                "install the webhook: `kubectl jockey install -n {} --name {}` (or pass the -n and \
                 --name it was installed with)",
                f.namespace, f.name
            ),
        );
    };
    let msg = format!(
        "deployment {}/{}: {}/{} ready, {} available",
        f.namespace, f.name, r.ready, r.desired, r.available
    );
    if r.all_available() {
        CheckResult::ok(GROUP, REPLICAS, msg)
    } else if r.available > 0 {
        CheckResult::warn(
            GROUP,
            REPLICAS,
            msg,
            format!("some replicas are not available: {}", describe(f)),
        )
    } else {
        CheckResult::fail(
            GROUP,
            REPLICAS,
            msg,
            format!(
                "no replica serves, so every labelled object is refused (failurePolicy Fail): {} \
                 and its pods' logs",
                describe(f)
            ),
        )
    }
}

fn pdb(f: &WebhookFacts) -> CheckResult {
    let Some(p) = &f.pdb else {
        return CheckResult::warn(
            GROUP,
            PDB,
            format!("no PodDisruptionBudget {}/{}", f.namespace, f.name),
            "run `kubectl jockey install` again: a node drain may otherwise take every replica",
        );
    };
    let msg = format!(
        "PodDisruptionBudget {}/{}: {} disruption(s) allowed ({} healthy, {} required)",
        f.namespace, f.name, p.disruptions_allowed, p.current_healthy, p.desired_healthy
    );
    if p.disruptions_allowed > 0 {
        CheckResult::ok(GROUP, PDB, msg)
    } else {
        CheckResult::fail(
            GROUP,
            PDB,
            msg,
            format!(
                "a node drain blocks until another replica is healthy: scale the webhook to at \
                 least 2 replicas and make them ready ({})",
                describe(f)
            ),
        )
    }
}

fn pems(bundle: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in bundle.lines() {
        if line.starts_with("-----BEGIN CERTIFICATE-----") {
            current.clear();
        }
        current.push_str(line);
        current.push('\n');
        if line.starts_with("-----END CERTIFICATE-----") {
            out.push(std::mem::take(&mut current));
        }
    }
    out
}

fn certificates(f: &WebhookFacts) -> Vec<CheckResult> {
    let reinstall = format!(
        "run `kubectl jockey install -n {} --name {}` again: it renews the certificates and sets \
         the caBundle (with cert-manager: check its Certificate and CA injector)",
        f.namespace, f.name
    );
    let serving = match &f.serving_pem {
        Ok(pem) => pem,
        Err(why) => {
            return vec![
                CheckResult::fail(GROUP, CA_BUNDLE, why.clone(), reinstall.clone()),
                CheckResult::fail(GROUP, CERTIFICATE, why.clone(), reinstall),
            ];
        }
    };
    let mut out = Vec::new();
    // caBundle of both configurations: one of its CAs signed the serving certificate.
    let mut wrong = Vec::new();
    for c in [&f.mutating, &f.validating] {
        match &c.hooks {
            None => wrong.push(format!("{} {} does not exist", c.kind, f.name)),
            Some(hooks) => {
                for h in hooks {
                    let trusted = pems(&h.ca_bundle_pem)
                        .iter()
                        .any(|ca| certs::signed_by(serving, ca).unwrap_or(false));
                    if !trusted {
                        wrong.push(format!(
                            "the caBundle of {} {} (webhook {}) holds no CA that signed the serving \
                             certificate in Secret {}-tls",
                            c.kind, f.name, h.name, f.name
                        ));
                    }
                }
            }
        }
    }
    out.push(if wrong.is_empty() {
        CheckResult::ok(
            GROUP,
            CA_BUNDLE,
            "both webhook configurations trust the CA that signed the serving certificate",
        )
    } else {
        CheckResult::fail(
            GROUP,
            CA_BUNDLE,
            format!(
                "{}: the API server cannot verify the webhook and refuses every labelled object",
                wrong.join("; ")
            ),
            reinstall.clone(),
        )
    });
    out.push(match certs::inspect(serving) {
        Err(e) => CheckResult::fail(
            GROUP,
            CERTIFICATE,
            format!("Secret {}/{}-tls: {e}", f.namespace, f.name),
            reinstall.clone(),
        ),
        Ok(info) => expiry(
            CERTIFICATE,
            &format!("serving certificate (Secret {}-tls)", f.name),
            info.not_after,
            f.now,
            WARN_DAYS,
            &reinstall,
        ),
    });
    out.push(match f.ca_pem.as_deref().map(certs::inspect) {
        None => CheckResult::warn(
            GROUP,
            CA,
            format!(
                "no CA certificate found (Secret {0}-ca, or ca.crt of Secret {0}-tls)",
                f.name
            ),
            reinstall.clone(),
        ),
        Some(Err(e)) => CheckResult::fail(
            GROUP,
            CA,
            format!("the CA certificate: {e}"),
            reinstall.clone(),
        ),
        Some(Ok(info)) => expiry(
            CA,
            "CA certificate",
            info.not_after,
            f.now,
            CA_WARN_DAYS,
            &reinstall,
        ),
    });
    out
}

fn expiry(
    id: &'static str,
    what: &str,
    not_after: i64,
    now: i64,
    warn_days: i64,
    hint: &str,
) -> CheckResult {
    let days = days_left(not_after, now);
    let until = certs::rfc3339(not_after);
    if now >= not_after {
        CheckResult::fail(
            GROUP,
            id,
            format!("the {what} expired at {until}"),
            hint.to_string(),
        )
    } else if days < warn_days {
        CheckResult::warn(
            GROUP,
            id,
            format!("the {what} expires in {days} day(s) ({until})"),
            hint.to_string(),
        )
    } else {
        CheckResult::ok(
            GROUP,
            id,
            format!("the {what} is valid for {days} more days (until {until})"),
        )
    }
}

fn failure_policy(f: &WebhookFacts) -> CheckResult {
    let mut fails = Vec::new();
    let mut warns = Vec::new();
    for c in [&f.mutating, &f.validating] {
        let Some(hooks) = &c.hooks else {
            fails.push(format!("{} {} does not exist", c.kind, f.name));
            continue;
        };
        for h in hooks {
            match h.failure_policy.as_deref() {
                Some(p) if p == f.expected_failure_policy => {}
                Some("Ignore") => warns.push(format!(
                    "{} is failurePolicy Ignore: while the webhook is down, labelled objects are \
                     admitted without jockey's defaults and checks",
                    h.name
                )),
                other => fails.push(format!(
                    "{} has failurePolicy {}, install renders {}",
                    h.name,
                    other.unwrap_or("(unset)"),
                    f.expected_failure_policy
                )),
            }
            if h.timeout_seconds != Some(f.expected_timeout_seconds) {
                warns.push(format!(
                    "{} has timeoutSeconds {}, install renders {}",
                    h.name,
                    h.timeout_seconds
                        .map_or("(unset)".to_string(), |t| t.to_string()),
                    f.expected_timeout_seconds
                ));
            }
        }
    }
    let hint = format!(
        "run `kubectl jockey install -n {} --name {}` again (add --failure-policy ignore only if \
         you mean it)",
        f.namespace, f.name
    );
    if !fails.is_empty() {
        fails.extend(warns);
        CheckResult::fail(GROUP, FAILURE_POLICY, fails.join("; "), hint)
    } else if !warns.is_empty() {
        CheckResult::warn(GROUP, FAILURE_POLICY, warns.join("; "), hint)
    } else {
        CheckResult::ok(
            GROUP,
            FAILURE_POLICY,
            format!(
                "failurePolicy {}, timeoutSeconds {} as install renders them",
                f.expected_failure_policy, f.expected_timeout_seconds
            ),
        )
    }
}

fn admission_policy(f: &WebhookFacts) -> CheckResult {
    let policy = format!("{}-shared-alb", f.name);
    let missing: Vec<String> = [
        (f.policy_present, "ValidatingAdmissionPolicy"),
        (f.binding_present, "ValidatingAdmissionPolicyBinding"),
    ]
    .iter()
    .filter(|(present, _)| !present)
    .map(|(_, kind)| format!("{kind} {policy}"))
    .collect();
    if missing.is_empty() {
        CheckResult::ok(
            GROUP,
            ADMISSION_POLICY,
            format!("ValidatingAdmissionPolicy {policy} and its binding are installed"),
        )
    } else {
        CheckResult::fail(
            GROUP,
            ADMISSION_POLICY,
            format!(
                "{} missing: an unlabelled Ingress can join the shared ALB group",
                missing.join(" and ")
            ),
            format!(
                "run `kubectl jockey install -n {} --name {}` again",
                f.namespace, f.name
            ),
        )
    }
}

fn dry_run(f: &WebhookFacts) -> CheckResult {
    let port = "the API server must reach the webhook's pods on their port (on EKS the control \
                plane's security group allows 443 and 10250 to nodes by default; open the \
                webhook's port, or see `kubectl get endpointslices -n NAMESPACE`)";
    match &f.dry_run {
        DryRun::Mutated { namespace } => CheckResult::ok(
            GROUP,
            DRY_RUN,
            format!(
                "a server-side dry run of a labelled Service in {namespace} came back mutated: \
                 the API server reaches the webhook"
            ),
        ),
        DryRun::NotMutated { namespace } => CheckResult::fail(
            GROUP,
            DRY_RUN,
            format!(
                "a server-side dry run of a labelled Service in {namespace} came back unchanged: \
                 the API server did not call the webhook"
            ),
            format!(
                "check the namespaceSelector of mutatingwebhookconfiguration {} covers the \
                 namespace and that it is the one install made",
                f.name
            ),
        ),
        DryRun::Refused { namespace, message } => CheckResult::fail(
            GROUP,
            DRY_RUN,
            format!(
                "a server-side dry run of a labelled Service in {namespace} was refused: {message}"
            ),
            port.to_string(),
        ),
        DryRun::NoNamespace(why) => CheckResult::warn(
            GROUP,
            DRY_RUN,
            why.clone(),
            "label a namespace for the webhook (its --namespace-selector) to let check try it",
        ),
        DryRun::NotTried(why) => CheckResult::skip(GROUP, DRY_RUN, why.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Outcome;
    use jockey_core::certs::Pair;

    const DAY: i64 = 86_400;

    struct Certs {
        ca: Pair,
        other_ca: Pair,
        serving: Pair,
    }

    fn certs() -> Certs {
        let ca = certs::new_ca("jockey-webhook-ca", 3650).unwrap();
        let other_ca = certs::new_ca("other-ca", 3650).unwrap();
        let serving = certs::issue_serving(
            &ca,
            "jockey-webhook-ca",
            &["jockey-webhook.x.svc".into()],
            365,
        )
        .unwrap();
        Certs {
            ca,
            other_ca,
            serving,
        }
    }

    fn hook(name: &str, bundle: &str) -> Hook {
        Hook {
            name: name.into(),
            ca_bundle_pem: bundle.into(),
            failure_policy: Some("Fail".into()),
            timeout_seconds: Some(5),
        }
    }

    fn facts(c: &Certs, now: i64) -> WebhookFacts {
        WebhookFacts {
            name: "jockey-webhook".into(),
            namespace: "jockey-system".into(),
            deployment: Some(Replicas {
                desired: 2,
                ready: 2,
                available: 2,
            }),
            pdb: Some(Pdb {
                disruptions_allowed: 1,
                current_healthy: 2,
                desired_healthy: 1,
            }),
            serving_pem: Ok(c.serving.cert_pem.clone()),
            ca_pem: Some(c.ca.cert_pem.clone()),
            mutating: Configuration {
                kind: "MutatingWebhookConfiguration",
                hooks: Some(vec![hook("mutate.jockey.agentops.ai", &c.ca.cert_pem)]),
            },
            validating: Configuration {
                kind: "ValidatingWebhookConfiguration",
                // A previous CA kept in the bundle during a rotation is fine.
                hooks: Some(vec![hook(
                    "validate.jockey.agentops.ai",
                    &format!("{}{}", c.other_ca.cert_pem, c.ca.cert_pem),
                )]),
            },
            expected_failure_policy: "Fail".into(),
            expected_timeout_seconds: 5,
            policy_present: true,
            binding_present: true,
            dry_run: DryRun::Mutated {
                namespace: "default".into(),
            },
            now,
        }
    }

    fn find(r: &[CheckResult], id: &str) -> CheckResult {
        r.iter()
            .find(|r| r.id == id)
            .cloned()
            .unwrap_or_else(|| panic!("no {id} in {r:?}"))
    }

    fn now() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    }

    #[test]
    fn a_healthy_install_passes_every_check() {
        let c = certs();
        let r = checks(&facts(&c, now()));
        assert_eq!(r.len(), 8, "{r:?}");
        for res in &r {
            assert_eq!(res.outcome, Outcome::Ok, "{res:?}");
            assert_eq!(res.hint, None);
        }
    }

    #[test]
    fn replicas_missing_none_or_some_available() {
        let c = certs();
        let mut f = facts(&c, now());
        f.deployment = None;
        let r = find(&checks(&f), REPLICAS);
        assert_eq!(r.outcome, Outcome::Fail);
        assert!(
            r.hint
                .unwrap()
                .contains("kubectl jockey install -n jockey-system")
        );
        f.deployment = Some(Replicas {
            desired: 2,
            ready: 0,
            available: 0,
        });
        let r = find(&checks(&f), REPLICAS);
        assert_eq!(r.outcome, Outcome::Fail);
        assert!(r.message.contains("0/2 ready"), "{}", r.message);
        f.deployment = Some(Replicas {
            desired: 2,
            ready: 1,
            available: 1,
        });
        assert_eq!(find(&checks(&f), REPLICAS).outcome, Outcome::Warn);
    }

    #[test]
    fn a_pdb_that_allows_no_disruption_fails_and_a_missing_one_warns() {
        let c = certs();
        let mut f = facts(&c, now());
        f.pdb = Some(Pdb {
            disruptions_allowed: 0,
            current_healthy: 1,
            desired_healthy: 1,
        });
        let r = find(&checks(&f), PDB);
        assert_eq!(r.outcome, Outcome::Fail);
        assert!(r.hint.unwrap().contains("at least 2 replicas"));
        f.pdb = None;
        assert_eq!(find(&checks(&f), PDB).outcome, Outcome::Warn);
    }

    #[test]
    fn a_ca_bundle_without_the_signing_ca_fails_naming_the_configuration() {
        let c = certs();
        let mut f = facts(&c, now());
        f.mutating.hooks = Some(vec![hook(
            "mutate.jockey.agentops.ai",
            &c.other_ca.cert_pem,
        )]);
        let r = find(&checks(&f), CA_BUNDLE);
        assert_eq!(r.outcome, Outcome::Fail);
        assert!(
            r.message
                .contains("MutatingWebhookConfiguration jockey-webhook")
                && !r.message.contains("Validating"),
            "{}",
            r.message
        );
        f.mutating.hooks = Some(vec![hook("m", "")]);
        assert_eq!(find(&checks(&f), CA_BUNDLE).outcome, Outcome::Fail);
        f.mutating.hooks = None;
        let r = find(&checks(&f), CA_BUNDLE);
        assert!(r.message.contains("does not exist"), "{}", r.message);
        // No serving Secret: both certificate checks fail with why.
        let mut f = facts(&c, now());
        f.serving_pem = Err("Secret jockey-system/jockey-webhook-tls does not exist".into());
        let r = checks(&f);
        assert_eq!(find(&r, CA_BUNDLE).outcome, Outcome::Fail);
        assert_eq!(find(&r, CERTIFICATE).outcome, Outcome::Fail);
        assert!(find(&r, CERTIFICATE).message.contains("does not exist"));
    }

    #[test]
    fn certificate_days_left_warn_under_30_and_fail_once_expired() {
        let c = certs();
        let not_after = certs::inspect(&c.serving.cert_pem).unwrap().not_after;
        let r = find(&checks(&facts(&c, not_after - 31 * DAY)), CERTIFICATE);
        assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
        assert!(r.message.contains("31 more days"), "{}", r.message);
        let r = find(&checks(&facts(&c, not_after - 29 * DAY)), CERTIFICATE);
        assert_eq!(r.outcome, Outcome::Warn);
        assert!(r.message.contains("expires in 29 day(s)"), "{}", r.message);
        let r = find(&checks(&facts(&c, not_after + 1)), CERTIFICATE);
        assert_eq!(r.outcome, Outcome::Fail);
        assert!(r.message.contains("expired"));
        assert!(r.hint.unwrap().contains("install"));
        let mut f = facts(&c, now());
        f.serving_pem = Ok("not a certificate".into());
        assert_eq!(find(&checks(&f), CERTIFICATE).outcome, Outcome::Fail);
    }

    #[test]
    fn the_cas_own_expiry_warns_in_its_last_year() {
        let c = certs();
        let ca_end = certs::inspect(&c.ca.cert_pem).unwrap().not_after;
        let r = find(&checks(&facts(&c, ca_end - 400 * DAY)), CA);
        assert_eq!(r.outcome, Outcome::Ok);
        let r = find(&checks(&facts(&c, ca_end - 100 * DAY)), CA);
        assert_eq!(r.outcome, Outcome::Warn, "{r:?}");
        let r = find(&checks(&facts(&c, ca_end + 1)), CA);
        assert_eq!(r.outcome, Outcome::Fail);
        let mut f = facts(&c, now());
        f.ca_pem = None;
        assert_eq!(find(&checks(&f), CA).outcome, Outcome::Warn);
    }

    #[test]
    fn failure_policy_and_timeout_are_compared_with_what_install_renders() {
        let c = certs();
        let mut f = facts(&c, now());
        if let Some(h) = f.validating.hooks.as_mut() {
            h[0].failure_policy = Some("Ignore".into());
        }
        let r = find(&checks(&f), FAILURE_POLICY);
        assert_eq!(r.outcome, Outcome::Warn);
        assert!(r.message.contains("Ignore"));
        if let Some(h) = f.mutating.hooks.as_mut() {
            h[0].timeout_seconds = Some(30);
        }
        let r = find(&checks(&f), FAILURE_POLICY);
        assert!(r.message.contains("timeoutSeconds 30"), "{}", r.message);
        if let Some(h) = f.mutating.hooks.as_mut() {
            h[0].failure_policy = None;
        }
        assert_eq!(find(&checks(&f), FAILURE_POLICY).outcome, Outcome::Fail);
        // Installed with --failure-policy ignore on purpose: that is what it renders.
        let mut f = facts(&c, now());
        f.expected_failure_policy = "Ignore".into();
        for conf in [&mut f.mutating, &mut f.validating] {
            if let Some(h) = conf.hooks.as_mut() {
                h[0].failure_policy = Some("Ignore".into());
            }
        }
        assert_eq!(find(&checks(&f), FAILURE_POLICY).outcome, Outcome::Ok);
    }

    #[test]
    fn the_admission_policy_and_its_binding_must_both_be_there() {
        let c = certs();
        let mut f = facts(&c, now());
        f.binding_present = false;
        let r = find(&checks(&f), ADMISSION_POLICY);
        assert_eq!(r.outcome, Outcome::Fail);
        assert!(
            r.message
                .starts_with("ValidatingAdmissionPolicyBinding jockey-webhook-shared-alb"),
            "{}",
            r.message
        );
        f.policy_present = false;
        let r = find(&checks(&f), ADMISSION_POLICY);
        assert!(r.message.contains(" and "), "{}", r.message);
    }

    #[test]
    fn the_dry_run_must_come_back_mutated() {
        let c = certs();
        let mut f = facts(&c, now());
        f.dry_run = DryRun::NotMutated {
            namespace: "default".into(),
        };
        assert_eq!(find(&checks(&f), DRY_RUN).outcome, Outcome::Fail);
        f.dry_run = DryRun::Refused {
            namespace: "default".into(),
            message: "failed calling webhook: connection refused".into(),
        };
        let r = find(&checks(&f), DRY_RUN);
        assert_eq!(r.outcome, Outcome::Fail);
        assert!(r.hint.unwrap().contains("10250"));
        f.dry_run = DryRun::NoNamespace("no namespace matches".into());
        assert_eq!(find(&checks(&f), DRY_RUN).outcome, Outcome::Warn);
        f.dry_run = DryRun::NotTried("x".into());
        assert_eq!(find(&checks(&f), DRY_RUN).outcome, Outcome::Skip);
    }

    #[test]
    fn pem_bundles_split_into_certificates() {
        let c = certs();
        let both = format!("{}\n{}", c.ca.cert_pem, c.other_ca.cert_pem);
        let split = pems(&both);
        assert_eq!(split.len(), 2);
        assert!(certs::signed_by(&c.serving.cert_pem, &split[0]).unwrap());
        assert!(pems("garbage").is_empty());
    }
}
