//! Forged reviews (issue 20, item 4): an AdmissionReview POSTed straight to the webhook's HTTPS
//! port by anyone who reaches it, instead of sent by the API server. Claims come from the API
//! server only: with `--client-ca-file` the webhook reads nothing from a caller without the API
//! server's client certificate; without it (EKS, where the API server presents none) a review
//! for a namespace or object that does not exist writes nothing. Each test also deploys through
//! the real API server to show the legitimate path still works. `SECURITY.md` lists which test
//! proves which defence.

mod webhook_support;

use anyhow::{Context, Result};
use jockey_e2e::{TestNamespace, client, kubectl_ok};
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use serde_json::{Value, json};
use std::time::Duration;
use webhook_support::{
    Webhook, apiserver_identity, apply, https_post_json, minimal_manifest, project,
};

const HASH: &str = "00112233445566cc";

/// A review of `op` (CREATE or UPDATE) of a Service `name` labelled for `project` in `ns`, as
/// the API server would build it.
fn service_review(op: &str, ns: &str, name: &str, project: &str) -> String {
    let object = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": { "name": name, "namespace": ns,
                      "labels": { "jockey.agentops.ai/project": project } },
        "spec": { "type": "ClusterIP", "selector": { "app": project },
                  "ports": [{ "name": "http", "port": 80, "targetPort": 8080 }] }
    });
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": format!("forged-{op}-{name}"),
            "kind": { "group": "", "version": "v1", "kind": "Service" },
            "resource": { "group": "", "version": "v1", "resource": "services" },
            "namespace": ns,
            "name": name,
            "operation": op,
            "userInfo": { "username": "system:serviceaccount:kube-system:generic-garbage-collector" },
            "object": object,
            "oldObject": if op == "UPDATE" { object.clone() } else { Value::Null },
            "dryRun": false
        }
    })
    .to_string()
}

/// POSTs `body` to the webhook's `/validate` as anyone would: without a client certificate.
async fn forge(wh: &Webhook, body: &str) -> Result<(u16, String)> {
    https_post_json(
        wh.port,
        "/validate",
        body,
        &[&wh.ca],
        None,
        Duration::from_secs(10),
    )
    .await
}

/// The answer's `response.allowed` and `response.status.message`.
fn answer(body: &str) -> Result<(bool, String)> {
    let v: Value = serde_json::from_str(body).with_context(|| format!("not a review: {body}"))?;
    Ok((
        v["response"]["allowed"].as_bool().unwrap_or(false),
        v["response"]["status"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    ))
}

/// The holder of project `p`'s claim, if there is one.
async fn claim_holder(leases: &Api<Lease>, p: &str) -> Result<Option<String>> {
    Ok(leases
        .get_opt(&format!("project-{p}"))
        .await?
        .map(|l| l.spec.and_then(|s| s.holder_identity).unwrap_or_default()))
}

/// (a) With `--client-ca-file` (every webhook of the suite runs so): a review POSTed without the
/// API server's client certificate — for a namespace that does not exist, or for one that does —
/// is refused unread (401, the cause and the fix), writes no claim, and the real owner then
/// deploys the project through the API server.
#[tokio::test]
async fn a_review_without_the_api_servers_certificate_is_refused_and_writes_nothing() -> Result<()>
{
    let client = client().await?;
    let owner = TestNamespace::create(&client, "fr-owner").await?;
    let attacker = TestNamespace::create(&client, "fr-attacker").await?;
    let mut wh = Webhook::start("forged-mtls", None).await?;
    wh.scope(&client, &owner.name, None).await?;
    // The API server's own reviews pass: register() waits for it to mutate and deny dry runs.
    wh.register(&client, &owner.name).await?;
    let leases: Api<Lease> = Api::namespaced(client.clone(), &wh.claims_ns);
    let p = project("mtls");
    let ghost = format!("fr-ghost-{}", std::process::id() % 100_000);

    for ns in [ghost.as_str(), attacker.name.as_str()] {
        for path in ["/validate", "/mutate"] {
            let body = service_review("CREATE", ns, &format!("svc-{p}"), &p);
            let (status, text) = https_post_json(
                wh.port,
                path,
                &body,
                &[&wh.ca],
                None,
                Duration::from_secs(10),
            )
            .await?;
            assert_eq!(status, 401, "{path} in {ns} answered {status}: {text}");
            assert!(
                text.contains("presented none") && text.contains("fix:"),
                "{path}: {text}"
            );
        }
        assert_eq!(
            claim_holder(&leases, &p).await?,
            None,
            "a review for namespace {ns} without a client certificate wrote project {p}'s claim"
        );
    }
    // A certificate of another CA does not get through the handshake.
    let rogue_ca = jockey_core::certs::new_ca("rogue", 1)?;
    let rogue =
        jockey_core::certs::issue_client(&rogue_ca, "rogue", "kube-apiserver-webhook-client", 1)?;
    let body = service_review("CREATE", &attacker.name, &format!("svc-{p}"), &p);
    let forged = https_post_json(
        wh.port,
        "/validate",
        &body,
        &[&wh.ca],
        Some(&rogue),
        Duration::from_secs(10),
    )
    .await;
    assert!(
        !matches!(forged, Ok((200, _))),
        "a certificate of another CA was answered: {forged:?}"
    );
    assert_eq!(claim_holder(&leases, &p).await?, None);
    let metrics = wh.metrics(&[&wh.ca]).await?;
    assert!(
        metrics.contains(
            r#"jockey_webhook_unauthenticated_reviews_total{endpoint="validate",reason="no_certificate"} 2"#
        ),
        "{metrics}"
    );

    // The real owner, through the API server.
    let (ok, out) = apply(&owner.name, &minimal_manifest(&p, HASH))?;
    assert!(ok, "the owner's deploy was refused:\n{out}\n{}", wh.log());
    assert_eq!(
        claim_holder(&leases, &p).await?,
        Some(format!("{}/{p}", owner.name))
    );

    drop(wh);
    owner.cleanup().await?;
    attacker.cleanup().await?;
    Ok(())
}

/// (b) Without `--client-ca-file` (EKS: the API server presents no client certificate, so the
/// webhook cannot tell who posts): a forged CREATE for a namespace that does not exist, and a
/// forged UPDATE of an object that does not exist or belongs to another project, write no claim
/// and are denied naming the cause; a forged UPDATE does not renew the owner's claim; the
/// owner's deploys through the API server still work.
#[tokio::test]
async fn without_client_certificates_forged_reviews_write_nothing_for_what_does_not_exist()
-> Result<()> {
    let client = client().await?;
    let owner = TestNamespace::create(&client, "fr-eks-owner").await?;
    let mut wh = Webhook::start_without_client_ca("forged-eks").await?;
    wh.scope(&client, &owner.name, None).await?;
    wh.register(&client, &owner.name).await?;
    let leases: Api<Lease> = Api::namespaced(client.clone(), &wh.claims_ns);
    let ghost = format!("fr-eks-ghost-{}", std::process::id() % 100_000);

    // A project nobody deployed yet, forged into a namespace that does not exist.
    let squatted = project("eks-squat");
    let (status, body) = forge(
        &wh,
        &service_review("CREATE", &ghost, &format!("svc-{squatted}"), &squatted),
    )
    .await?;
    assert_eq!(status, 200, "{body}");
    let (allowed, msg) = answer(&body)?;
    assert!(
        !allowed,
        "a CREATE in a namespace that does not exist was admitted"
    );
    assert!(
        msg.contains(&format!(
            "namespace {ghost} does not exist in the API server"
        )) && msg.contains("records no claim")
            && msg.contains("fix:"),
        "{msg}"
    );
    assert_eq!(
        claim_holder(&leases, &squatted).await?,
        None,
        "a forged CREATE for namespace {ghost}, which does not exist, wrote a claim"
    );

    // The owner deploys its project through the API server.
    let p = project("eks");
    let (ok, out) = apply(&owner.name, &minimal_manifest(&p, HASH))?;
    assert!(ok, "the owner's deploy was refused:\n{out}\n{}", wh.log());
    let name = format!("project-{p}");
    let before = leases.get(&name).await?;
    assert_eq!(
        before.spec.as_ref().and_then(|s| s.holder_identity.clone()),
        Some(format!("{}/{p}", owner.name))
    );

    // Forged UPDATEs in the owner's namespace, which exists: of a Service that does not exist,
    // for a project nobody deployed, and for the owner's project; of the owner's own Service
    // relabelled for another project.
    let fresh = project("eks-fresh");
    let cases = [
        (
            format!("svc-missing-{fresh}"),
            fresh.clone(),
            "does not exist in the API server",
        ),
        (format!("svc-{p}"), fresh.clone(), "is stored with project"),
    ];
    for (svc, claimed, cause) in &cases {
        let (status, body) =
            forge(&wh, &service_review("UPDATE", &owner.name, svc, claimed)).await?;
        assert_eq!(status, 200, "{body}");
        let (allowed, msg) = answer(&body)?;
        assert!(!allowed, "the UPDATE of {svc} for {claimed} was admitted");
        assert!(msg.contains(cause) && msg.contains("fix:"), "{svc}: {msg}");
    }
    assert_eq!(
        claim_holder(&leases, &fresh).await?,
        None,
        "a forged UPDATE of an object that does not exist (or belongs to another project) wrote a claim"
    );
    let (status, body) = forge(
        &wh,
        &service_review("UPDATE", &owner.name, &format!("svc-missing-{p}"), &p),
    )
    .await?;
    assert_eq!(status, 200, "{body}");
    let after = leases.get(&name).await?;
    assert_eq!(
        (
            after.metadata.resource_version.clone(),
            after.spec.as_ref().and_then(|s| s.renew_time.clone())
        ),
        (
            before.metadata.resource_version.clone(),
            before.spec.as_ref().and_then(|s| s.renew_time.clone())
        ),
        "a forged UPDATE of a Service that does not exist renewed the owner's claim"
    );

    // Through the API server nothing changed for the owner: an update of its project and a
    // project of its own in its namespace are admitted.
    kubectl_ok(&[
        "annotate",
        "service",
        &format!("svc-{p}"),
        "-n",
        &owner.name,
        "e2e.jockey.agentops.ai/touched=1",
    ])
    .with_context(|| format!("the owner's update was refused:\n{}", wh.log()))?;
    let (ok, out) = apply(&owner.name, &minimal_manifest(&squatted, HASH))?;
    assert!(
        ok,
        "the owner could not take a free id:\n{out}\n{}",
        wh.log()
    );
    assert_eq!(
        claim_holder(&leases, &squatted).await?,
        Some(format!("{}/{squatted}", owner.name))
    );

    drop(wh);
    owner.cleanup().await?;
    Ok(())
}

/// With `--client-ca-file`, the API server's own client certificate is what the webhook reads
/// reviews from; a review it could have sent, posted with that certificate for a namespace that
/// does not exist, is still refused by the second layer (nothing is written).
#[tokio::test]
async fn the_api_servers_certificate_is_answered_and_the_evidence_check_still_applies() -> Result<()>
{
    let client = client().await?;
    let wh = Webhook::start("forged-both", None).await?;
    let leases: Api<Lease> = Api::namespaced(client.clone(), &wh.claims_ns);
    let p = project("both");
    let ghost = format!("fr-both-ghost-{}", std::process::id() % 100_000);
    let identity = apiserver_identity()?;
    let (status, body) = https_post_json(
        wh.port,
        "/validate",
        &service_review("CREATE", &ghost, &format!("svc-{p}"), &p),
        &[&wh.ca],
        Some(&identity),
        Duration::from_secs(10),
    )
    .await?;
    assert_eq!(status, 200, "{body}");
    let (allowed, msg) = answer(&body)?;
    assert!(
        !allowed && msg.contains("does not exist in the API server"),
        "{msg}"
    );
    assert_eq!(claim_holder(&leases, &p).await?, None);
    drop(wh);
    Ok(())
}
