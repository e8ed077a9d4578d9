//! "Admitted implies the shared group still reconciles", shown through the real AWS Load
//! Balancer Controller against the cluster's moto (which enforces AWS's documented limits,
//! `tests/cluster/moto_aws_limits.py`):
//!
//! - each value the webhook used to admit and the controller or AWS refuse fails the whole group
//!   when an Ingress carries it past the webhook, and is refused through the webhook now, while
//!   another project of the group keeps reconciling;
//! - a property test: Ingress variants drawn from the allowlist's own value domains
//!   (`jockey_core::allowlist::samples`: edge values first, then seeded random combinations),
//!   applied through the API server; every variant the webhook admits is reconciled by the real
//!   controller with no FailedBuildModel or FailedDeployModel, in batches (a failing batch is
//!   bisected to the variant that broke it), and every variant it refuses says why.
//!
//! Where the controller's source is absent, the tests report themselves SKIPPED.

#[path = "alb_controller_support/mod.rs"]
mod alb_controller_support;
#[path = "deploy_support/mod.rs"]
mod deploy_support;
#[path = "webhook_support/mod.rs"]
mod webhook_support;

use alb_controller_support::{
    FAILURES, Stage, WAIT, break_the_group, finish, ingress_events, ingress_json, stage, to_action,
    to_service,
};
use anyhow::{Context, Result, bail, ensure};
use jockey_core::allowlist::samples::{self, INGRESS_KEYS};
use jockey_e2e::{repo_root, wait_for};
use k8s_openapi::api::networking::v1::Ingress;
use kube::Api;
use kube::api::{DeleteParams, ListParams, PostParams};
use serde_json::Value;
use std::collections::BTreeSet;

use alb_controller_support::A;

fn example() -> String {
    repo_root()
        .join("examples/agent")
        .to_string_lossy()
        .into_owned()
}

/// The project id [`Stage::project`] gives `name` in a stage tagged `tag` (known before the
/// stage exists, for the webhook's policy).
fn project_of(name: &str, tag: &str) -> String {
    format!("{name}-{tag}-{}", std::process::id() % 100_000)
}

/// One way in: what the bypassing Ingress carries, what the tenant's labelled Ingress carries
/// through the webhook (the same, for the tenant's own names), and the key its denial names.
struct Case {
    what: &'static str,
    bypass: Vec<(String, String)>,
    bypass_backend: Value,
    tenant: Vec<(String, String)>,
    tenant_backend: Value,
    denied_key: &'static str,
}

fn cases(tenant: &str) -> Vec<Case> {
    let kv = |s: &[(&str, &str)]| -> Vec<(String, String)> {
        s.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let own = format!("svc-{tenant}");
    let host_condition =
        r#"[{"field":"http-header","httpHeaderConfig":{"httpHeaderName":"Host","values":["x"]}}]"#;
    let weighted = |first: &str| {
        format!(
            r#"{{"type":"forward","forwardConfig":{{"targetGroups":[{{"serviceName":"{first}","servicePort":80,"weight":50}},{{"serviceName":"svc-missing","servicePort":80,"weight":50}}]}}}}"#
        )
    };
    vec![
        Case {
            what: "target-type instance on a ClusterIP Service",
            bypass: kv(&[("target-type", "instance")]),
            bypass_backend: to_service("svc-bypass"),
            tenant: kv(&[("target-type", "instance")]),
            tenant_backend: to_service(&own),
            denied_key: "target-type",
        },
        Case {
            what: "GRPC beside jockey's success-codes 200",
            bypass: kv(&[
                ("backend-protocol-version", "GRPC"),
                ("success-codes", "200"),
            ]),
            bypass_backend: to_service("svc-bypass"),
            tenant: kv(&[
                ("backend-protocol-version", "GRPC"),
                ("success-codes", "200"),
            ]),
            tenant_backend: to_service(&own),
            denied_key: "success-codes",
        },
        Case {
            what: "a health check timeout not shorter than the interval",
            bypass: kv(&[("healthcheck-timeout-seconds", "15")]),
            bypass_backend: to_service("svc-bypass"),
            tenant: kv(&[("healthcheck-timeout-seconds", "15")]),
            tenant_backend: to_service(&own),
            denied_key: "healthcheck-timeout-seconds",
        },
        Case {
            what: "an unknown target group attribute",
            bypass: kv(&[("target-group-attributes", "no.such.attribute=1")]),
            bypass_backend: to_service("svc-bypass"),
            tenant: kv(&[("target-group-attributes", "no.such.attribute=1")]),
            tenant_backend: to_service(&own),
            denied_key: "target-group-attributes",
        },
        Case {
            what: "auth-type cognito without auth-idp-cognito",
            bypass: kv(&[("auth-type", "cognito")]),
            bypass_backend: to_service("svc-bypass"),
            tenant: kv(&[("auth-type", "cognito")]),
            tenant_backend: to_service(&own),
            denied_key: "auth-type",
        },
        Case {
            what: "an http-header condition on Host",
            bypass: kv(&[("conditions.svc-bypass", host_condition)]),
            bypass_backend: to_service("svc-bypass"),
            tenant: vec![(format!("conditions.{own}"), host_condition.to_string())],
            tenant_backend: to_service(&own),
            denied_key: "conditions.",
        },
        Case {
            what: "a weighted forward to a Service that does not exist",
            bypass: vec![("actions.split".into(), weighted("svc-bypass"))],
            bypass_backend: to_action("split"),
            tenant: vec![("actions.split".into(), weighted(&own))],
            tenant_backend: to_action("split"),
            denied_key: "svc-missing",
        },
    ]
}

/// Way in 1 of issue 20: values that pass the controller's type checks but that it, or AWS,
/// refuses in combination. Each one, past the webhook, fails the whole group; through the webhook
/// (with the admin's grant of the keys, so the combination itself is what is refused) it is
/// denied; and another project of the group keeps reconciling.
#[tokio::test]
async fn values_the_controller_or_aws_refuse_are_refused_and_the_group_keeps_reconciling()
-> Result<()> {
    let tag = "allow";
    let tenant = project_of("tenant", tag);
    let policy = format!(
        "grants:\n  {tenant}:\n    annotations: [target-group-attributes, auth-type, auth-idp-cognito, \"conditions.*\", \"actions.*\"]\n"
    );
    let test = "allowlist_controller::values_the_controller_or_aws_refuse_are_refused_and_the_group_keeps_reconciling";
    let Some(mut st) = stage(test, tag, Some(&policy)).await? else {
        return Ok(());
    };
    let result = async {
        let tenants = st.namespace("allow-w", true).await?;
        let bypass = st.bypass_namespace("allow-x").await?;
        let victim = st.project("victim");
        st.deploy_ok(&tenants, &victim, &example())?;
        let (ok, out) = webhook_support::apply(
            &tenants,
            &format!(
                "apiVersion: v1\nkind: Service\nmetadata: {{name: svc-{tenant}, labels: {{jockey.agentops.ai/project: {tenant}}}}}\n\
                 spec: {{ports: [{{port: 80, targetPort: 8080}}], selector: {{app: {tenant}}}}}\n"
            ),
        )?;
        ensure!(ok, "creating the tenant's Service: {out}");
        let ingresses: Api<Ingress> = Api::namespaced(st.client.clone(), &tenants);
        let mut report = Vec::new();
        for (i, case) in cases(&tenant).iter().enumerate() {
            let extra: Vec<(&str, &str)> = case
                .bypass
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let said = break_the_group(&st, &bypass, i, &extra, case.bypass_backend.clone())
                .await
                .with_context(|| case.what)?;
            // Through the webhook, for real (not a dry run): stored, it would break the group.
            let extra: Vec<(&str, &str)> = case
                .tenant
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let ing = ingress_json(
                &tenants,
                &format!("ing-{tenant}"),
                &st.host(&tenant),
                &st.group,
                &extra,
                case.tenant_backend.clone(),
            );
            let mut labelled = ing.clone();
            labelled.metadata.labels = Some(
                [("jockey.agentops.ai/project".to_string(), tenant.clone())]
                    .into_iter()
                    .collect(),
            );
            match ingresses.create(&PostParams::default(), &labelled).await {
                Ok(_) => bail!(
                    "the webhook admitted {} (the controller said, past the webhook: {said})",
                    case.what
                ),
                Err(e) => {
                    let e = e.to_string();
                    ensure!(
                        e.contains(case.denied_key) && e.contains("fix:"),
                        "the denial of {} does not name {:?} and its fix: {e}",
                        case.what,
                        case.denied_key
                    );
                    report.push(format!("{}: controller said {said:?}; webhook denied", case.what));
                }
            }
        }
        eprintln!("{}", report.join("\n"));
        // The group reconciles: a new project joins it and gets its address.
        let second = st.project("second");
        st.deploy_ok(&tenants, &second, &example())?;
        let failures_after: Vec<String> = ingress_events(&st.client, &tenants)
            .await?
            .into_iter()
            .filter(|e| {
                e.involved_object.name.as_deref() == Some(format!("ing-{second}").as_str())
                    && e.reason.as_deref().is_some_and(|r| FAILURES.contains(&r))
            })
            .filter_map(|e| e.message)
            .collect();
        ensure!(
            failures_after.is_empty(),
            "the group failed for the second project: {failures_after:#?}"
        );
        Ok(())
    }
    .await;
    finish(st, result).await
}

/// splitmix64: a small seeded generator, so that a failing run is repeated exactly.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// One variant: annotations of the project's Ingress and, maybe, the tags of its Service.
#[derive(Debug, Clone)]
struct Variant {
    ingress: Vec<(&'static str, &'static str)>,
    tags: Option<&'static str>,
}

/// The variants: every sample of every tenant key alone and every Service tags sample (edges
/// first), then random combinations of two to four keys (mostly of values admitted alone, so that
/// what is tried is their combinations), some with Service tags, until `count`.
fn variants(seed: u64, count: usize) -> Vec<Variant> {
    let mut out = Vec::new();
    for key in INGRESS_KEYS {
        for s in samples::ingress(key) {
            out.push(Variant {
                ingress: vec![(key, s.value)],
                tags: None,
            });
        }
    }
    for s in samples::SERVICE_TAGS {
        out.push(Variant {
            ingress: Vec::new(),
            tags: Some(s.value),
        });
    }
    let mut rng = Rng(seed);
    while out.len() < count {
        let n = 2 + rng.below(3);
        let mut keys = BTreeSet::new();
        while keys.len() < n {
            keys.insert(INGRESS_KEYS[rng.below(INGRESS_KEYS.len())]);
        }
        let pick = |rng: &mut Rng, s: &'static [samples::Sample]| {
            let admitted: Vec<&samples::Sample> = s.iter().filter(|x| x.alone).collect();
            if rng.below(5) > 0 && !admitted.is_empty() {
                admitted[rng.below(admitted.len())].value
            } else {
                s[rng.below(s.len())].value
            }
        };
        let ingress = keys
            .into_iter()
            .map(|k| (k, pick(&mut rng, samples::ingress(k))))
            .collect();
        let tags = (rng.below(3) == 0).then(|| pick(&mut rng, samples::SERVICE_TAGS));
        out.push(Variant { ingress, tags });
    }
    out
}

const VARIANTS: usize = 200;

/// A line in `make test`'s output even when the test passes (libtest captures only the print
/// macros): the property's count and seed, as the issue asks them shown.
fn say(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}
const BATCH: usize = 25;

/// Whether every Ingress of `names` in `ns` has its address, and no failure was reported on any
/// Ingress of the namespace since `since` (event count). Returns the failures seen.
async fn settled(st: &Stage, ns: &str, names: &[String]) -> Result<Option<Vec<String>>> {
    let failures: Vec<String> = ingress_events(&st.client, ns)
        .await?
        .into_iter()
        .filter(|e| e.reason.as_deref().is_some_and(|r| FAILURES.contains(&r)))
        .map(|e| {
            format!(
                "{}: {}: {}",
                e.involved_object.name.unwrap_or_default(),
                e.reason.unwrap_or_default(),
                e.message.unwrap_or_default()
            )
        })
        .collect();
    if !failures.is_empty() {
        return Ok(Some(failures));
    }
    let api: Api<Ingress> = Api::namespaced(st.client.clone(), ns);
    for name in names {
        let addressed = api.get_opt(name).await?.is_some_and(|i| {
            i.status
                .and_then(|s| s.load_balancer)
                .and_then(|l| l.ingress)
                .is_some_and(|l| !l.is_empty())
        });
        if !addressed {
            return Ok(None);
        }
    }
    Ok(Some(Vec::new()))
}

/// Applies `batch` (admitted variants, by index) in a fresh namespace, waits for the verdict, and
/// deletes it again (waiting for the controller to let go). Returns the failures.
///
/// Each round names its projects anew: a bisected half retried in the next namespace is another
/// project there, since the first namespace's claim on the old id outlives this test's deletes
/// by the webhook's release grace (the claim rule, not the variant, would refuse it).
async fn try_batch(
    st: &mut Stage,
    round: &mut usize,
    all: &[Variant],
    batch: &[usize],
) -> Result<Vec<String>> {
    *round += 1;
    let ns = st.namespace(&format!("prop{round}"), true).await?;
    let mut names = Vec::new();
    for &i in batch {
        let p = st.project(&format!("v{i}r{round}"));
        apply_variant(st, &ns, &p, &all[i], false)?.map_err(|e| {
            anyhow::anyhow!(
                "variant {i} {:?} was admitted before and is refused now: {e}",
                all[i]
            )
        })?;
        names.push(format!("ing-{p}"));
    }
    let (stage, ns_ref, names_ref): (&Stage, &str, &[String]) = (st, &ns, &names);
    let verdict = wait_for(
        &format!("the controller's verdict on {} variants", batch.len()),
        WAIT * 2,
        move || settled(stage, ns_ref, names_ref),
    )
    .await?;
    let api: Api<Ingress> = Api::namespaced(st.client.clone(), &ns);
    for name in &names {
        let _ = api.delete(name, &DeleteParams::default()).await;
    }
    wait_for(
        &format!("the Ingresses of {ns} to be released"),
        WAIT,
        || {
            let api = api.clone();
            async move {
                Ok(api
                    .list(&ListParams::default())
                    .await?
                    .items
                    .is_empty()
                    .then_some(()))
            }
        },
    )
    .await?;
    Ok(verdict)
}

/// Applies a variant as project `p`'s Service and Ingress through the API server (a server dry
/// run when `dry`). `Ok(Ok(()))`: admitted; `Ok(Err(message))`: refused.
fn apply_variant(
    st: &Stage,
    ns: &str,
    p: &str,
    variant: &Variant,
    dry: bool,
) -> Result<std::result::Result<(), String>> {
    let annotations: Vec<(String, &str)> = variant
        .ingress
        .iter()
        .map(|(k, v)| (format!("{A}{k}"), *v))
        .collect();
    let refs: Vec<(&str, &str)> = annotations.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    let tags = variant
        .tags
        .map(|t| {
            format!(
                "  annotations:\n    {A}tags: {}\n",
                serde_json::to_string(t).unwrap_or_default()
            )
        })
        .unwrap_or_default();
    let yaml = format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: svc-{p}\n  labels:\n    jockey.agentops.ai/project: {p}\n{tags}\
         spec:\n  ports:\n  - port: 80\n    targetPort: 8080\n  selector:\n    app: {p}\n---\n{}",
        webhook_support::ingress(p, &format!("ing-{p}"), &st.host(p), &refs)
    );
    let mut args = vec!["apply", "-n", ns, "-f", "-"];
    if dry {
        args.insert(1, "--dry-run=server");
    }
    let (ok, out) = webhook_support::kubectl_stdin(&args, &yaml)?;
    Ok(if ok { Ok(()) } else { Err(out) })
}

/// The property: admitted implies the group reconciles; refused says why.
#[tokio::test]
async fn every_variant_the_webhook_admits_reconciles_and_every_refusal_says_why() -> Result<()> {
    let test = "allowlist_controller::every_variant_the_webhook_admits_reconciles_and_every_refusal_says_why";
    let Some(mut st) = stage(test, "prop", None).await? else {
        return Ok(());
    };
    let seed: u64 = std::env::var("JOCKEY_PROPERTY_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_261_206);
    let all = variants(seed, VARIANTS);
    say(&format!(
        "admitted => reconciles: {} variants (seed {seed}; JOCKEY_PROPERTY_SEED repeats a run)",
        all.len()
    ));
    let result = async {
        // First the webhook's verdict on each, by server dry run (nothing stored).
        let ns = st.namespace("prop-dry", true).await?;
        let mut admitted = Vec::new();
        let mut unexplained = Vec::new();
        for (i, v) in all.iter().enumerate() {
            let p = st.project(&format!("v{i}"));
            match apply_variant(&st, &ns, &p, v, true)? {
                Ok(()) => admitted.push(i),
                Err(out) if out.contains(A) && out.contains("fix:") => {}
                Err(out) => unexplained.push(format!("{v:?}: {out}")),
            }
        }
        say(&format!(
            "admitted => reconciles: the webhook admitted {} of {} variants and refused {} (each naming its key and fix)",
            admitted.len(),
            all.len(),
            all.len() - admitted.len()
        ));
        ensure!(
            unexplained.is_empty(),
            "refusals that do not say why: {unexplained:#?}"
        );
        ensure!(
            admitted.len() >= 50,
            "only {} variants admitted",
            admitted.len()
        );
        // Then the admitted ones through the real controller, a batch at a time; a batch that
        // fails is bisected to the variants that break the group.
        let mut round = 0;
        let mut culprits = Vec::new();
        let mut pending: Vec<Vec<usize>> = admitted.chunks(BATCH).map(<[usize]>::to_vec).collect();
        while let Some(batch) = pending.pop() {
            let failures = try_batch(&mut st, &mut round, &all, &batch).await?;
            if failures.is_empty() {
                continue;
            }
            say(&format!(
                "admitted => reconciles: a batch of {} failed, bisecting: {failures:?}",
                batch.len()
            ));
            if batch.len() == 1 {
                culprits.push(format!("{:?}: {failures:#?}", all[batch[0]]));
                continue;
            }
            let (a, b) = batch.split_at(batch.len() / 2);
            pending.push(a.to_vec());
            pending.push(b.to_vec());
        }
        ensure!(
            culprits.is_empty(),
            "admitted variants the controller or AWS refused (the group failed): {culprits:#?}"
        );
        say(&format!(
            "admitted => reconciles: all {} admitted variants reconciled through the real controller in {round} batches",
            admitted.len()
        ));
        Ok(())
    }
    .await;
    finish(st, result).await
}
