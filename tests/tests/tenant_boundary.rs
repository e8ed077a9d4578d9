//! The tenant boundary, attacked through the real API server: each test is a way one tenant could
//! route, squat or break another's traffic on the shared ALB, and proves the denial — by the
//! real `jockey-webhook` and by the ValidatingAdmissionPolicy the API server itself evaluates —
//! and that nothing was stored. `SECURITY.md` lists which test proves which defence.

mod webhook_support;

use anyhow::{Context, Result};
use jockey_e2e::{TestNamespace, client, kubectl, wait_for};
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use serde_json::json;
use std::time::Duration;
use webhook_support::{Webhook, apply, get_json, ingress, minimal_manifest, project};

const DOMAIN: &str = "deploy.agentops.ai";
const HASH: &str = "00112233445566aa";

/// Applies `yaml` in `ns`, expects a denial carrying every one of `words`, and that
/// `kind/name` was not stored.
fn assert_denied(ns: &str, yaml: &str, kind: &str, name: &str, words: &[&str]) -> Result<()> {
    let (ok, out) = apply(ns, yaml)?;
    assert!(!ok, "{kind}/{name} was admitted:\n{out}");
    for w in words {
        assert!(out.contains(w), "{w:?} not in:\n{out}");
    }
    assert!(
        get_json(ns, kind, name)?.is_none(),
        "{kind}/{name} was stored although denied"
    );
    Ok(())
}

/// An Ingress of `project` in the shared group with `annotations`, as YAML (labelled).
fn labelled(project: &str, name: &str, host: &str, annotations: &[(&str, &str)]) -> String {
    ingress(project, name, host, annotations)
}

/// The same without the project label: what a tenant writes to skip the webhooks.
fn unlabelled(name: &str, host: &str, annotations: &[(&str, &str)]) -> String {
    let mut yaml = ingress("x", name, host, annotations);
    yaml = yaml.replace("  labels:\n    jockey.agentops.ai/project: x\n", "");
    assert!(!yaml.contains("jockey.agentops.ai/project"), "{yaml}");
    yaml
}

/// Item 1: a victim's host stolen with a `conditions.*` host-header condition ahead of its rule
/// (`group.order: -1000`), or its traffic forwarded by target group ARN.
#[tokio::test]
async fn host_theft_through_conditions_actions_and_order_is_denied() -> Result<()> {
    let client = client().await?;
    let victim_ns = TestNamespace::create(&client, "tb-victim").await?;
    let attacker_ns = TestNamespace::create(&client, "tb-attacker").await?;
    let victim = project("victim");
    let attacker = project("attacker");
    // Routing annotations are the admin's to grant (crate::allowlist); granted, they are still
    // held to the project's own hosts and Services.
    let policy =
        format!("grants:\n  {attacker}:\n    annotations: [\"conditions.*\", \"actions.*\"]\n");
    let mut wh = Webhook::start("theft", Some(&policy)).await?;
    wh.scope(&client, &victim_ns.name, None).await?;
    wh.scope(&client, &attacker_ns.name, None).await?;
    wh.register(&client, &victim_ns.name).await?;
    let victim_host = format!("{victim}.{DOMAIN}");
    let own = format!("{attacker}.{DOMAIN}");
    let (ok, out) = apply(&victim_ns.name, &minimal_manifest(&victim, HASH))?;
    assert!(ok, "{out}");

    let svc = format!("svc-{attacker}");
    let steal =
        format!(r#"[{{"field":"host-header","hostHeaderConfig":{{"values":["{victim_host}"]}}}}]"#);
    assert_denied(
        &attacker_ns.name,
        &labelled(
            &attacker,
            "ing-steal",
            &own,
            &[
                (
                    &format!("alb.ingress.kubernetes.io/conditions.{svc}"),
                    &steal,
                ),
                ("alb.ingress.kubernetes.io/group.order", "-1000"),
            ],
        ),
        "ingress",
        "ing-steal",
        &[
            &format!("host-header condition for \"{victim_host}\""),
            "not this project's host",
            "alb.ingress.kubernetes.io/group.order",
            "fix:",
        ],
    )?;
    // Go's JSON matches keys case-insensitively: the controller would read this one too.
    let sneaky =
        format!(r#"[{{"FIELD":"host-header","HostHeaderConfig":{{"VALUES":["{victim_host}"]}}}}]"#);
    assert_denied(
        &attacker_ns.name,
        &labelled(
            &attacker,
            "ing-sneaky",
            &own,
            &[(
                &format!("alb.ingress.kubernetes.io/conditions.{svc}"),
                &sneaky,
            )],
        ),
        "ingress",
        "ing-sneaky",
        &[&victim_host],
    )?;
    assert_denied(
        &attacker_ns.name,
        &labelled(
            &attacker,
            "ing-forward",
            &own,
            &[(
                "alb.ingress.kubernetes.io/actions.fwd",
                r#"{"type":"forward","targetGroupARN":"arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/k8s-victim/0123456789abcdef"}"#,
            )],
        ),
        "ingress",
        "ing-forward",
        &["forwards to target group ARN", "Service in namespace"],
    )?;
    // The attacker's own rule on its own host, with its own conditions, is fine.
    let (ok, out) = apply(
        &attacker_ns.name,
        &labelled(
            &attacker,
            &format!("ing-{attacker}"),
            &own,
            &[(
                &format!("alb.ingress.kubernetes.io/conditions.{svc}"),
                r#"[{"field":"http-header","httpHeaderConfig":{"httpHeaderName":"X-Canary","values":["1"]}}]"#,
            )],
        ),
    )?;
    assert!(ok, "{out}");

    drop(wh);
    victim_ns.cleanup().await?;
    attacker_ns.cleanup().await?;
    Ok(())
}

/// Item 2: an Ingress without the project label skips both webhooks (their object selector);
/// the admission policy the API server evaluates itself stops it joining a shared group, or a
/// labelled one sitting in a namespace the webhook does not answer.
#[tokio::test]
async fn ingresses_the_webhook_does_not_see_cannot_join_a_shared_group() -> Result<()> {
    let client = client().await?;
    let answered = TestNamespace::create(&client, "tb-answered").await?;
    let unanswered = TestNamespace::create(&client, "tb-unanswered").await?;
    // A group of this test's own, so the policy can be bound to every namespace, as an install
    // binds it, without touching other tests.
    // A domain of its own too: the policy keeps the deployment domain's hosts to jockey's
    // projects in every namespace it is bound in, which here is every namespace.
    let group = format!("tb-shared-{}", std::process::id());
    let domain = format!("tb{}.example.com", std::process::id());
    let mut wh = Webhook::start_with_args(
        "unlabelled",
        None,
        &[
            "--alb-shared-group-name",
            &group,
            "--deployment-domain",
            &domain,
        ],
    )
    .await?;
    wh.policy_scope = None;
    wh.scope(&client, &answered.name, None).await?;
    wh.register(&client, &answered.name).await?;
    let victim = project("unl-victim");
    let victim_host = format!("{victim}.{DOMAIN}");
    let shard = format!("{group}-2");

    for (ns, name, yaml, words) in [
        (
            &answered.name,
            "ing-squat",
            unlabelled(
                "ing-squat",
                &victim_host,
                &[("alb.ingress.kubernetes.io/group.name", &group)],
            ),
            vec![
                "has no jockey.agentops.ai/project label",
                "ValidatingAdmissionPolicy",
                "fix:",
            ],
        ),
        (
            &unanswered.name,
            "ing-internal",
            unlabelled(
                "ing-internal",
                "intranet.example.com",
                &[
                    ("alb.ingress.kubernetes.io/group.name", &shard),
                    ("alb.ingress.kubernetes.io/scheme", "internal"),
                ],
            ),
            vec!["has no jockey.agentops.ai/project label", &shard],
        ),
        (
            &unanswered.name,
            "ing-hidden",
            labelled(
                &victim,
                "ing-hidden",
                &victim_host,
                &[("alb.ingress.kubernetes.io/group.name", &group)],
            ),
            vec!["which the jockey webhook does not answer"],
        ),
    ] {
        // The policy is loaded by the API server shortly after it is created.
        webhook_support::wait_until_refused(
            "the admission policy to be in force",
            Duration::from_secs(30),
            ns,
            &yaml,
            "",
        )
        .await?;
        assert_denied(ns, &yaml, "ingress", name, &words)?;
    }
    // An Ingress of another group (the team's own ALB) is not the shared ALB's business.
    let (ok, out) = apply(
        &unanswered.name,
        &unlabelled(
            "ing-own-alb",
            "team.example.com",
            &[("alb.ingress.kubernetes.io/group.name", "team-own-alb")],
        ),
    )?;
    assert!(ok, "{out}");

    drop(wh);
    answered.cleanup().await?;
    unanswered.cleanup().await?;
    Ok(())
}

/// Item 3: values that would make the controller fail the whole group, or eat the ALB's rule
/// quota, never reach it.
#[tokio::test]
async fn settings_that_break_the_whole_group_are_denied() -> Result<()> {
    let client = client().await?;
    let ns = TestNamespace::create(&client, "tb-break").await?;
    let mut wh = Webhook::start("break", None).await?;
    wh.scope(&client, &ns.name, None).await?;
    wh.register(&client, &ns.name).await?;
    let p = project("break");
    let own = format!("{p}.{DOMAIN}");
    for (i, (key, value, words)) in [
        (
            "listen-ports",
            r#"[{"HTTP": 443}]"#,
            vec!["group's setting is"],
        ),
        (
            "certificate-arn",
            "arn:aws:acm:us-east-1:123456789012:certificate/mine",
            vec!["did not choose"],
        ),
        (
            "ssl-policy",
            "ELBSecurityPolicy-2016-08",
            vec!["did not choose"],
        ),
        (
            "load-balancer-attributes",
            "deletion_protection.enabled=true",
            vec!["did not choose"],
        ),
        (
            "healthcheck-interval-seconds",
            "soon",
            vec!["expected", "whole ALB group"],
        ),
        (
            "target-group-attributes",
            "stickiness.enabled",
            vec!["expected", "whole ALB group"],
        ),
        (
            "actions.x",
            "{not json",
            vec!["expected", "whole ALB group"],
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let name = format!("ing-break-{i}");
        assert_denied(
            &ns.name,
            &labelled(
                &p,
                &name,
                &own,
                &[(&format!("alb.ingress.kubernetes.io/{key}"), value)],
            ),
            "ingress",
            &name,
            &[
                &[&*format!("alb.ingress.kubernetes.io/{key}")][..],
                &words[..],
            ]
            .concat(),
        )?;
    }
    // A second path is a second listener rule: over the project's allowance of one.
    let two_paths = labelled(&p, "ing-two-paths", &own, &[]).replace(
        "      paths:\n",
        &format!(
            "      paths:\n      - path: /api\n        pathType: Prefix\n        backend:\n          service:\n            name: svc-{p}\n            port:\n              number: 80\n"
        ),
    );
    assert!(two_paths.contains("/api"), "{two_paths}");
    assert_denied(
        &ns.name,
        &two_paths,
        "ingress",
        "ing-two-paths",
        &["adds 2 listener rules", "maxRulesPerProject"],
    )?;

    drop(wh);
    ns.cleanup().await?;
    Ok(())
}

/// Item 5: a project id and a host are claimed atomically in the API server. Twenty rounds of
/// two namespaces creating the same new project at the same instant, each namespace answered by
/// its own webhook process (so no shared cache can help): exactly one wins every round.
#[tokio::test]
async fn two_namespaces_racing_for_one_new_project_have_exactly_one_winner() -> Result<()> {
    let client = client().await?;
    let ns_a = TestNamespace::create(&client, "tb-race-a").await?;
    let ns_b = TestNamespace::create(&client, "tb-race-b").await?;
    let claims_ns = TestNamespace::create(&client, "tb-race-claims").await?;
    let shared = ["--claims-namespace", claims_ns.name.as_str()];
    let mut wh_a = Webhook::start_with_args("race-a", None, &shared).await?;
    let mut wh_b = Webhook::start_with_args("race-b", None, &shared).await?;
    wh_a.scope(&client, &ns_a.name, None).await?;
    wh_b.scope(&client, &ns_b.name, None).await?;
    wh_a.register(&client, &ns_a.name).await?;
    wh_b.register(&client, &ns_b.name).await?;
    let leases: Api<Lease> = Api::namespaced(client.clone(), &claims_ns.name);

    let mut wins = [0usize; 2];
    for round in 0..20 {
        let p = project(&format!("race{round}"));
        let yaml = minimal_manifest(&p, HASH);
        let (a, b) = tokio::join!(
            tokio::task::spawn_blocking({
                let (ns, y) = (ns_a.name.clone(), yaml.clone());
                move || apply(&ns, &y)
            }),
            tokio::task::spawn_blocking({
                let (ns, y) = (ns_b.name.clone(), yaml.clone());
                move || apply(&ns, &y)
            }),
        );
        let ((ok_a, out_a), (ok_b, out_b)) = (a??, b??);
        // Each apply creates a Deployment, a Service and an Ingress; the winner gets all three.
        let stored = |ns: &str| -> Result<usize> {
            Ok(["deployment", "service", "ingress"]
                .iter()
                .zip([p.clone(), format!("svc-{p}"), format!("ing-{p}")])
                .filter_map(|(k, n)| get_json(ns, k, &n).transpose())
                .collect::<Result<Vec<_>>>()?
                .len())
        };
        let (in_a, in_b) = (stored(&ns_a.name)?, stored(&ns_b.name)?);
        assert!(
            ok_a != ok_b,
            "round {round}: exactly one namespace must win (a: {ok_a}, b: {ok_b})\na: {out_a}\nb: {out_b}"
        );
        let (winner, loser_out, stored_w, stored_l) = if ok_a {
            (&ns_a.name, &out_b, in_a, in_b)
        } else {
            (&ns_b.name, &out_a, in_b, in_a)
        };
        assert_eq!(stored_w, 3, "round {round}: the winner has all its objects");
        assert_eq!(
            stored_l, 0,
            "round {round}: the loser stored nothing:\n{loser_out}"
        );
        assert!(
            loser_out.contains(&format!("already belongs to namespace {winner}")),
            "round {round}: {loser_out}"
        );
        let claim = leases.get(&format!("project-{p}")).await?;
        assert_eq!(
            claim.spec.and_then(|s| s.holder_identity),
            Some(format!("{winner}/{p}")),
            "round {round}"
        );
        wins[usize::from(!ok_a)] += 1;
    }
    eprintln!("wins: namespace a {}, namespace b {}", wins[0], wins[1]);

    drop(wh_a);
    drop(wh_b);
    ns_a.cleanup().await?;
    ns_b.cleanup().await?;
    claims_ns.cleanup().await?;
    Ok(())
}

/// Item 5, the squatting windows: before a project's first Ingress, while its Ingress is being
/// replaced, and until its owner deletes it, another namespace cannot take the project or its
/// host; once the owner deleted it, the claim is released and the id is free again.
#[tokio::test]
async fn a_claim_holds_until_the_owner_deletes_the_project() -> Result<()> {
    let client = client().await?;
    let owner = TestNamespace::create(&client, "tb-owner").await?;
    let squatter = TestNamespace::create(&client, "tb-squatter").await?;
    let mut wh = Webhook::start("squat", None).await?;
    wh.scope(&client, &owner.name, None).await?;
    wh.scope(&client, &squatter.name, None).await?;
    wh.register(&client, &owner.name).await?;
    let leases: Api<Lease> = Api::namespaced(client.clone(), &wh.claims_ns);
    let p = project("squat");
    let host = format!("{p}.{DOMAIN}");

    // Before the first Ingress: the owner created only its Deployment.
    let deployment = minimal_manifest(&p, HASH)
        .split("---")
        .next()
        .context("manifest")?
        .to_string();
    let (ok, out) = apply(&owner.name, &deployment)?;
    assert!(ok, "{out}");
    assert_denied(
        &squatter.name,
        &labelled(&p, &format!("ing-{p}"), &host, &[]),
        "ingress",
        &format!("ing-{p}"),
        &[&format!("already belongs to namespace {}", owner.name)],
    )?;

    // During a redeploy that replaces the Ingress: the host stays the owner's.
    let (ok, out) = apply(&owner.name, &minimal_manifest(&p, HASH))?;
    assert!(ok, "{out}");
    let out = kubectl(&["delete", "ingress", &format!("ing-{p}"), "-n", &owner.name])?;
    assert!(out.status.success());
    let thief = project("thief");
    assert_denied(
        &squatter.name,
        &labelled(&thief, "ing-thief", &host, &[]),
        "ingress",
        "ing-thief",
        &["already served by", &owner.name, "its claim"],
    )?;
    let (ok, out) = apply(&owner.name, &minimal_manifest(&p, HASH))?;
    assert!(ok, "{out}");

    // The owner deletes the project: the claims go, and the id is free.
    for (kind, name) in [
        ("ingress", format!("ing-{p}")),
        ("service", format!("svc-{p}")),
        ("deployment", p.clone()),
    ] {
        let out = kubectl(&["delete", kind, &name, "-n", &owner.name])?;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    wait_for("the claims to be released", Duration::from_secs(60), || {
        let leases = leases.clone();
        let p = p.clone();
        async move {
            let project_gone = leases.get_opt(&format!("project-{p}")).await?.is_none();
            let any_host = leases
                .list(&kube::api::ListParams::default().labels("jockey.agentops.ai/claim=host"))
                .await?
                .items
                .iter()
                .any(|l| {
                    l.metadata
                        .annotations
                        .as_ref()
                        .and_then(|a| a.get("jockey.agentops.ai/host"))
                        == Some(&format!("{p}.{DOMAIN}"))
                });
            Ok((project_gone && !any_host).then_some(()))
        }
    })
    .await
    .with_context(|| wh.log())?;
    let (ok, out) = apply(&squatter.name, &minimal_manifest(&p, HASH))?;
    assert!(ok, "the released id is free again: {out}");
    let claim = leases.get(&format!("project-{p}")).await?;
    assert_eq!(
        claim.spec.and_then(|s| s.holder_identity),
        Some(format!("{}/{p}", squatter.name))
    );

    drop(wh);
    owner.cleanup().await?;
    squatter.cleanup().await?;
    Ok(())
}

/// Item 5, the cost of claims: while a project's claim is fresh in the webhook's cache (renewed
/// well within the release grace), the project's next objects are admitted without writing it
/// again; the claim still holds against another namespace, and a new host is still claimed
/// through the API server.
#[tokio::test]
async fn a_fresh_claim_is_not_written_again_and_still_holds() -> Result<()> {
    let client = client().await?;
    let owner = TestNamespace::create(&client, "tb-fresh").await?;
    let squatter = TestNamespace::create(&client, "tb-fresh-squat").await?;
    // The default grace (2m): the second and third object of a project come within it.
    let mut wh = Webhook::start_with_args("fresh", None, &["--claim-grace", "2m"]).await?;
    wh.scope(&client, &owner.name, None).await?;
    wh.scope(&client, &squatter.name, None).await?;
    wh.register(&client, &owner.name).await?;
    let leases: Api<Lease> = Api::namespaced(client.clone(), &wh.claims_ns);
    let p = project("fresh");
    let docs: Vec<String> = minimal_manifest(&p, HASH)
        .split("---")
        .map(str::to_string)
        .collect();
    let lease_version = |name: String| {
        let leases = leases.clone();
        async move {
            Ok::<_, anyhow::Error>(
                leases
                    .get_opt(&name)
                    .await?
                    .and_then(|l| l.metadata.resource_version),
            )
        }
    };

    let (ok, out) = apply(&owner.name, &docs[0])?;
    assert!(ok, "{out}");
    let first = lease_version(format!("project-{p}"))
        .await?
        .context("the first object claims the project")?;
    // The webhook's cache sees its own claim through its watch.
    let whr = &wh;
    wait_for(
        "the claim in the cache",
        Duration::from_secs(30),
        || async move {
            let metrics = whr.metrics(&[&whr.ca]).await?;
            Ok(metrics.contains("jockey_webhook_claims 1").then_some(()))
        },
    )
    .await
    .with_context(|| wh.log())?;

    // The Service and the Ingress: the project claim is trusted, the new host claimed.
    let (ok, out) = apply(&owner.name, &format!("{}---{}", docs[1], docs[2]))?;
    assert!(ok, "{out}");
    assert_eq!(
        lease_version(format!("project-{p}")).await?.as_deref(),
        Some(first.as_str()),
        "the fresh project claim was written again:\n{}",
        wh.log()
    );
    let hosts = leases
        .list(&kube::api::ListParams::default().labels("jockey.agentops.ai/claim=host"))
        .await?;
    assert!(
        hosts.items.iter().any(|l| {
            l.spec.as_ref().and_then(|s| s.holder_identity.as_deref())
                == Some(format!("{}/{p}", owner.name).as_str())
        }),
        "the Ingress's host is claimed in the API server"
    );
    let metrics = wh.metrics(&[&wh.ca]).await?;
    let trusted = metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix(
                r#"jockey_webhook_claim_operations_total{kind="project",result="trusted"} "#,
            )
        })
        .and_then(|v| v.trim().parse::<f64>().ok());
    assert!(
        trusted.is_some_and(|n| n >= 2.0),
        "the Service and the Ingress trusted the cached claim:\n{metrics}"
    );

    // Trusting the cache did not loosen the claim.
    assert_denied(
        &squatter.name,
        &docs[0],
        "deployment",
        &p,
        &[&format!("already belongs to namespace {}", owner.name)],
    )?;

    drop(wh);
    owner.cleanup().await?;
    squatter.cleanup().await?;
    Ok(())
}

/// Item 4: the per-project tags live on the Service; an Ingress still carrying them from an
/// older jockey loses them at its next write, and `alb-status` names it until then.
#[tokio::test]
async fn per_project_tags_live_on_the_service_and_leave_old_ingresses() -> Result<()> {
    let client = client().await?;
    let ns = TestNamespace::create(&client, "tb-tags").await?;
    let legacy = TestNamespace::create(&client, "tb-tags-legacy").await?;
    let group = format!("tb-tags-{}", std::process::id());
    let mut wh =
        Webhook::start_with_args("tags", None, &["--alb-shared-group-name", &group]).await?;
    wh.scope(&client, &ns.name, None).await?;
    wh.register(&client, &ns.name).await?;
    let p = project("tags");

    // Two projects through the webhook: tags on each Service, none on the Ingresses.
    let q = project("tags2");
    for x in [&p, &q] {
        let (ok, out) = apply(&ns.name, &minimal_manifest(x, HASH))?;
        assert!(ok, "{out}");
        let svc = get_json(&ns.name, "service", &format!("svc-{x}"))?.context("service")?;
        assert_eq!(
            svc["metadata"]["annotations"]["alb.ingress.kubernetes.io/tags"],
            json!(format!("deployment={x},hostname={x}.{DOMAIN}"))
        );
        let ing = get_json(&ns.name, "ingress", &format!("ing-{x}"))?.context("ingress")?;
        assert!(
            ing["metadata"]["annotations"]
                .get("alb.ingress.kubernetes.io/tags")
                .is_none(),
            "{ing}"
        );
    }

    // An Ingress as an older jockey wrote it, before the webhook answered its namespace.
    let r = project("tags-old");
    let old = labelled(
        &r,
        "ing-old",
        &format!("{r}.{DOMAIN}"),
        &[
            ("alb.ingress.kubernetes.io/group.name", &group),
            (
                "alb.ingress.kubernetes.io/tags",
                &format!("deployment={r},hostname={r}.{DOMAIN}"),
            ),
        ],
    );
    let (ok, out) = apply(&legacy.name, &old)?;
    assert!(ok, "{out}");
    let status = webhook_support::plugin(&["alb-status", "--no-aws", "--alb-group", &group])?;
    assert!(
        !status.0,
        "alb-status must fail while an Ingress carries per-project tags"
    );
    assert!(
        status
            .1
            .contains(&format!("Ingress {}/ing-old", legacy.name))
            && status.1.contains("per-project tags"),
        "{}",
        status.1
    );
    // Its next write through the webhook drops exactly jockey's old entries.
    wh.scope(&client, &legacy.name, None).await?;
    let out = kubectl(&[
        "annotate",
        "ingress",
        "ing-old",
        "-n",
        &legacy.name,
        "touched=1",
    ])?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ing = get_json(&legacy.name, "ingress", "ing-old")?.context("ing-old")?;
    assert!(
        ing["metadata"]["annotations"]
            .get("alb.ingress.kubernetes.io/tags")
            .is_none(),
        "{ing}"
    );
    let status = webhook_support::plugin(&["alb-status", "--no-aws", "--alb-group", &group])?;
    assert!(!status.1.contains("per-project tags"), "{}", status.1);

    drop(wh);
    ns.cleanup().await?;
    legacy.cleanup().await?;
    Ok(())
}
