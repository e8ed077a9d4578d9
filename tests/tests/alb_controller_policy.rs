//! The webhook's group-wide rules against the real AWS Load Balancer Controller: for each
//! group-wide annotation the policy checks, one Ingress that bypasses the webhook (in a
//! namespace it does not answer, but the controller serves) makes the controller fail the whole
//! ALB group, and the same annotation on a project's Ingress through the webhook is denied with
//! a message naming it. The values are the ones `jockey_core::alb_annotations` predicts, and
//! its prediction is checked too. Where the controller's source is absent, the tests report
//! themselves SKIPPED.
//!
//! What moto and the local controller cannot show is listed at [`NOT_HERE`].

#[path = "alb_controller_support/mod.rs"]
mod alb_controller_support;
#[path = "deploy_support/mod.rs"]
mod deploy_support;
#[path = "webhook_support/mod.rs"]
mod webhook_support;

use alb_controller_support::{
    FAILURES, Stage, break_the_group, finish, ingress_events, stage, to_service,
};
use anyhow::{Result, bail, ensure};
use jockey_core::alb_annotations::{self, Failure, Object, Reach};
use jockey_e2e::repo_root;

/// A group-wide annotation, a value one Ingress can break the group with, and what the
/// controller then says.
struct Case {
    key: &'static str,
    value: &'static str,
    /// In the controller's event message.
    says: &'static str,
    /// What `alb_annotations::parse` predicts for the value alone: `None` = accepted (the
    /// failure comes from disagreeing with the group), `Some(f)` = refused with `f`.
    predicted: Option<Failure>,
}

/// Group-wide keys (reach `Group` in `jockey_core::alb_annotations`, all of which the policy
/// holds to the admin's values) that one Ingress can break the group with here.
const CASES: &[Case] = &[
    Case {
        key: "scheme",
        value: "internal",
        says: "conflicting scheme",
        predicted: None,
    },
    Case {
        key: "ssl-redirect",
        value: "80",
        says: "conflicting sslRedirect port",
        predicted: None,
    },
    Case {
        key: "ip-address-type",
        value: "ipv5",
        says: "unknown IPAddressType",
        predicted: Some(Failure::Build),
    },
    Case {
        key: "load-balancer-name",
        value: "a-name-longer-than-thirty-two-characters",
        says: "cannot be longer than 32 characters",
        predicted: Some(Failure::Build),
    },
    Case {
        key: "subnets",
        value: "subnet-0000000000000dead",
        says: "failed to list subnets",
        predicted: None,
    },
    Case {
        key: "security-groups",
        value: "sg-0000000000000dead",
        says: "couldn't find all security groups",
        predicted: None,
    },
    Case {
        key: "load-balancer-attributes",
        value: "nonsense",
        says: "failed to parse stringMap annotation",
        predicted: Some(Failure::Build),
    },
    Case {
        key: "shield-advanced-protection",
        value: "maybe",
        says: "failed to parse bool annotation",
        predicted: Some(Failure::Build),
    },
    Case {
        key: "inbound-cidrs",
        value: "not-a-cidr",
        says: "invalid CIDR address",
        predicted: Some(Failure::Build),
    },
    Case {
        key: "ssl-policy",
        value: "NoSuchPolicy",
        says: "SSLPolicyNotFound",
        predicted: None,
    },
    Case {
        key: "tags",
        value: "nonsense",
        says: "failed to parse stringMap annotation",
        predicted: Some(Failure::Build),
    },
    Case {
        key: "listen-ports",
        value: r#"[{"HTTP": 443}]"#,
        says: "conflicting protocol",
        predicted: None,
    },
    Case {
        key: "mutual-authentication",
        value: r#"[{"port": 443, "mode": "bogus"}]"#,
        says: "mutualAuthentication mode value must be among",
        predicted: Some(Failure::Build),
    },
];

/// Group-wide keys that no single Ingress breaks the group with in this setup, and why.
/// (Each still changes the shared ALB for every tenant when valid, which is why the policy
/// denies them.)
pub const NOT_HERE: &[(&str, &str)] = &[
    (
        "manage-backend-security-group-rules",
        "read only together with security-groups",
    ),
    (
        "customer-owned-ipv4-pool",
        "read only for an internal ALB (scheme is the group's)",
    ),
    (
        "wafv2-acl-arn",
        "the local controller runs with --enable-wafv2=false",
    ),
    (
        "waf-acl-id",
        "the local controller runs with --enable-waf=false",
    ),
    (
        "security-group-prefix-lists",
        "moto accepts any prefix list id; AWS refuses an unknown one (FailedDeployModel)",
    ),
    (
        "ipam-ipv4-pool-id",
        "moto does not implement ModifyIpPools (the controller's call hangs in retries)",
    ),
];

/// The same annotation on a project's Ingress through the webhook (server dry run): denied,
/// naming it. Returns the denial.
fn webhook_denies(st: &Stage, ns: &str, key: &str, value: &str) -> Result<String> {
    let project = st.project("tenant");
    let yaml = webhook_support::ingress(
        &project,
        &format!("ing-{project}"),
        &st.host(&project),
        &[(&format!("alb.ingress.kubernetes.io/{key}"), value)],
    );
    let (ok, out) =
        webhook_support::kubectl_stdin(&["apply", "--dry-run=server", "-n", ns, "-f", "-"], &yaml)?;
    ensure!(!ok, "the webhook admitted {key}={value:?}:\n{out}");
    ensure!(
        out.contains(&format!("alb.ingress.kubernetes.io/{key}")),
        "the denial of {key}={value:?} does not name the annotation:\n{out}"
    );
    Ok(out)
}

async fn setup(st: &mut Stage) -> Result<(String, String, String)> {
    let tenants = st.namespace("policy-w", true).await?;
    let bypass = st.bypass_namespace("policy-x").await?;
    let victim = st.project("victim");
    let example = repo_root().join("examples/agent");
    st.deploy_ok(&tenants, &victim, &example.to_string_lossy())?;
    Ok((tenants, bypass, victim))
}

#[tokio::test]
async fn group_wide_settings_the_policy_checks_fail_the_real_controller_and_are_denied()
-> Result<()> {
    let Some(mut st) = stage(
        "alb_controller_policy::group_wide_settings_the_policy_checks_fail_the_real_controller_and_are_denied",
        "policy",
        None,
    )
    .await?
    else {
        return Ok(());
    };
    let result = async {
        let (tenants, bypass, victim) = setup(&mut st).await?;
        let group_wide = |key: &str| -> Result<alb_annotations::Known> {
            match alb_annotations::classify(
                Object::Ingress,
                &format!("alb.ingress.kubernetes.io/{key}"),
            ) {
                Some(Ok(k)) if matches!(k.reach, Reach::Group { .. }) => Ok(k),
                other => bail!("{key} is not a group-wide key of alb_annotations: {other:?}"),
            }
        };
        for (key, _) in NOT_HERE {
            group_wide(key)?;
        }
        let mut disagreements = Vec::new();
        for (i, case) in CASES.iter().enumerate() {
            let known = group_wide(case.key)?;
            let predicted = known.parse(case.value).err().map(|e| e.failure);
            if predicted != case.predicted {
                disagreements.push(format!(
                    "alb_annotations predicts {predicted:?} for {}={:?}, expected {:?}",
                    case.key, case.value, case.predicted
                ));
            }
            let message = break_the_group(
                &st,
                &bypass,
                i,
                &[(case.key, case.value)],
                to_service("svc-bypass"),
            )
            .await?;
            ensure!(
                message.contains(case.says),
                "{}={:?}: the controller said {message:?}, expected {:?}",
                case.key,
                case.value,
                case.says
            );
            webhook_denies(&st, &tenants, case.key, case.value)?;
        }
        ensure!(disagreements.is_empty(), "{disagreements:#?}");
        // The victim's Ingress is a member of the group: it got the group's failures too.
        let victim_failures: Vec<String> = ingress_events(&st.client, &tenants)
            .await?
            .into_iter()
            .filter(|e| {
                e.involved_object.name.as_deref() == Some(format!("ing-{victim}").as_str())
                    && e.reason.as_deref().is_some_and(|r| FAILURES.contains(&r))
            })
            .filter_map(|e| e.message)
            .collect();
        ensure!(
            victim_failures.iter().any(|m| m.contains(CASES[0].says)),
            "project {victim}'s Ingress did not get the group's failure: {victim_failures:#?}"
        );
        // And the group is whole again.
        let redeploy = st.deploy(
            &tenants,
            &victim,
            &repo_root().join("examples/agent").to_string_lossy(),
        )?;
        ensure!(
            redeploy.ok,
            "the group did not recover:\n{}",
            redeploy.all()
        );
        Ok(())
    }
    .await;
    finish(st, result).await
}

/// Not only group-wide keys: a malformed value of a key of one project's own target group fails
/// the model build of the whole group, so the policy checks every annotation by its type.
#[tokio::test]
async fn a_malformed_per_project_key_fails_the_whole_group_and_is_denied() -> Result<()> {
    let Some(mut st) = stage(
        "alb_controller_policy::a_malformed_per_project_key_fails_the_whole_group_and_is_denied",
        "own",
        None,
    )
    .await?
    else {
        return Ok(());
    };
    let result = async {
        let (tenants, bypass, _) = setup(&mut st).await?;
        let cases: &[(&str, &str, &str)] = &[
            // A key of one project's own target group, malformed, still fails everyone's.
            ("healthcheck-interval-seconds", "often", "failed to parse"),
        ];
        let mut admitted = Vec::new();
        for (i, (key, value, says)) in cases.iter().enumerate() {
            let message =
                break_the_group(&st, &bypass, i, &[(key, value)], to_service("svc-bypass")).await?;
            ensure!(
                message.contains(says),
                "{key}: the controller said {message:?}"
            );
            if let Err(e) = webhook_denies(&st, &tenants, key, value) {
                admitted.push(format!("{e:#}"));
            }
        }
        ensure!(admitted.is_empty(), "{admitted:#?}");
        Ok(())
    }
    .await;
    finish(st, result).await
}
