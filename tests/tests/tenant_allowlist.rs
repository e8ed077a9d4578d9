//! The tenant boundary by construction (issue 20), attacked through the real API server with the
//! real `jockey-webhook` and the admission policy the API server evaluates itself: backends that
//! are not the project's own, shards a tenant chooses, the domain and the shards' names used
//! from outside the shared groups, admin settings the policy must follow, and project ids a
//! labelled namespace reserves. Each attack was admitted before the allowlist; `SECURITY.md`
//! lists which test proves which defence. The values that make the AWS Load Balancer Controller
//! fail the whole group are in `allowlist_controller.rs`, through the real controller.

mod webhook_support;

use anyhow::{Result, ensure};
use jockey_e2e::{TestNamespace, client, kubectl};
use std::time::Duration;
use webhook_support::{Webhook, apply, get_json, ingress, project, wait_until_refused};

const DOMAIN: &str = "deploy.agentops.ai";

/// Applies `yaml` in `ns`, expects a denial carrying every one of `words`, and that
/// `kind/name` was not stored.
fn assert_denied(ns: &str, yaml: &str, kind: &str, name: &str, words: &[&str]) -> Result<()> {
    let (ok, out) = apply(ns, yaml)?;
    ensure!(!ok, "{kind}/{name} was admitted:\n{out}");
    for w in words {
        ensure!(out.contains(w), "{w:?} not in:\n{out}");
    }
    ensure!(
        get_json(ns, kind, name)?.is_none(),
        "{kind}/{name} was stored although denied"
    );
    Ok(())
}

fn service(name: &str, project: Option<&str>, annotations: &[(&str, &str)], port: u16) -> String {
    let labels = project
        .map(|p| format!("  labels:\n    jockey.agentops.ai/project: {p}\n"))
        .unwrap_or_default();
    let ann = webhook_support::annotations_yaml(annotations);
    format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n{labels}{ann}spec:\n  selector: {{app: x}}\n  ports:\n  - port: {port}\n    targetPort: 8080\n"
    )
}

/// `ingress(..)` routing to `backend:port` instead of the project's own Service.
fn ingress_to(project: &str, name: &str, backend: &str, port: u16) -> String {
    ingress(project, name, &format!("{project}.{DOMAIN}"), &[])
        .replace(&format!("name: svc-{project}"), &format!("name: {backend}"))
        .replace("number: 80", &format!("number: {port}"))
}

fn unlabelled(yaml: &str) -> String {
    let out = yaml.replace("  labels:\n    jockey.agentops.ai/project: x\n", "");
    assert!(!out.contains("jockey.agentops.ai/project"), "{out}");
    out
}

/// Way in 2: a labelled Ingress whose backend is not its project's own Service. The controller
/// reads a backend Service's ALB annotations and lets them win over the Ingress's, and an
/// unlabelled Service is never checked.
#[tokio::test]
async fn an_ingress_routes_only_to_its_projects_own_services() -> Result<()> {
    let client = client().await?;
    let ns = TestNamespace::create(&client, "ta-backend").await?;
    let mut wh = Webhook::start("backends", None).await?;
    wh.scope(&client, &ns.name, None).await?;
    wh.register(&client, &ns.name).await?;
    let p = project("own");
    let q = project("other");

    // An unlabelled Service in a jockey namespace carries no ALB annotations (the API server's
    // admission policy: the webhooks never see it)...
    wait_until_refused(
        "the admission policy to be in force",
        Duration::from_secs(30),
        &ns.name,
        &service(
            "svc-hidden",
            None,
            &[("alb.ingress.kubernetes.io/target-type", "instance")],
            80,
        ),
        "",
    )
    .await?;
    assert_denied(
        &ns.name,
        &service(
            "svc-hidden",
            None,
            &[("alb.ingress.kubernetes.io/target-type", "instance")],
            80,
        ),
        "service",
        "svc-hidden",
        &[
            "carries alb.ingress.kubernetes.io/ annotations without the jockey.agentops.ai/project label",
            "fix:",
        ],
    )?;
    // ...but one without them may exist; it is still not a project's backend.
    let (ok, out) = apply(&ns.name, &service("svc-plain", None, &[], 80))?;
    ensure!(ok, "{out}");
    assert_denied(
        &ns.name,
        &ingress_to(&p, "ing-plain", "svc-plain", 80),
        "ingress",
        "ing-plain",
        &["svc-plain is not labelled for project", "fix:"],
    )?;
    // Another project's Service.
    let (ok, out) = apply(&ns.name, &service(&format!("svc-{q}"), Some(&q), &[], 80))?;
    ensure!(ok, "{out}");
    assert_denied(
        &ns.name,
        &ingress_to(&p, "ing-other", &format!("svc-{q}"), 80),
        "ingress",
        "ing-other",
        &[&format!("belongs to project {q}")],
    )?;
    // A project's own Service takes only the ALB keys jockey lists there (tags).
    assert_denied(
        &ns.name,
        &service(
            &format!("svc-{p}"),
            Some(&p),
            &[("alb.ingress.kubernetes.io/healthcheck-path", "/x")],
            80,
        ),
        "service",
        &format!("svc-{p}"),
        &[
            "is an ALB setting on the Service",
            "on the project's Ingress",
        ],
    )?;
    let (ok, out) = apply(&ns.name, &service(&format!("svc-{p}"), Some(&p), &[], 80))?;
    ensure!(ok, "{out}");
    // A port the Service lacks fails the whole group.
    assert_denied(
        &ns.name,
        &ingress_to(&p, "ing-port", &format!("svc-{p}"), 81),
        "ingress",
        "ing-port",
        &["has no port 81"],
    )?;
    // The Service with a second port, and the Ingress routing to it.
    let two_ports = service(&format!("svc-{p}"), Some(&p), &[], 80)
        .replace(
            "  ports:\n",
            "  ports:\n  - port: 81\n    targetPort: 8081\n    name: admin\n",
        )
        .replace("  - port: 80\n", "  - port: 80\n    name: http\n");
    let (ok, out) = apply(&ns.name, &two_ports)?;
    ensure!(ok, "{out}");
    let (ok, out) = apply(
        &ns.name,
        &ingress_to(&p, &format!("ing-{p}"), &format!("svc-{p}"), 81),
    )?;
    ensure!(ok, "the project's own backend was refused:\n{out}");
    // And the Service cannot drop the port its Ingress routes to afterwards (port 80, jockey's,
    // the webhook would put back itself).
    webhook_support::wait_until_refused(
        "the webhook to see the Ingress",
        Duration::from_secs(20),
        &ns.name,
        &service(&format!("svc-{p}"), Some(&p), &[], 80),
        "drops port 81",
    )
    .await?;
    let (ok, out) = apply(&ns.name, &service(&format!("svc-{p}"), Some(&p), &[], 80))?;
    ensure!(!ok && out.contains("drops port 81"), "{out}");

    drop(wh);
    ns.cleanup().await?;
    Ok(())
}

/// Way in 3: a tenant naming a shard opens a new ALB at will; naming a full group crowds it.
#[tokio::test]
async fn a_tenant_never_chooses_its_shard_and_a_full_group_is_full_whoever_names_it() -> Result<()>
{
    let client = client().await?;
    let ns_a = TestNamespace::create(&client, "ta-shard-a").await?;
    let ns_b = TestNamespace::create(&client, "ta-shard-b").await?;
    // A group of this test's own, holding one project.
    let group = format!("ta-shard-{}", std::process::id());
    let mut wh = Webhook::start_with_args(
        "shards",
        Some("sharding: {enabled: true, capacity: 1}\nruleQuota: 100\n"),
        &["--alb-shared-group-name", &group],
    )
    .await?;
    wh.scope(&client, &ns_a.name, None).await?;
    wh.scope(&client, &ns_b.name, None).await?;
    wh.register(&client, &ns_a.name).await?;
    let a = project("sharda");
    let b = project("shardb");
    let own = |p: &str| format!("{p}.{DOMAIN}");
    let named = |p: &str, name: &str, g: &str| {
        ingress(
            p,
            name,
            &own(p),
            &[("alb.ingress.kubernetes.io/group.name", g)],
        )
    };
    let thirty_seventh = format!("{group}-37");
    assert_denied(
        &ns_a.name,
        &named(&a, "ing-37", &thirty_seventh),
        "ingress",
        "ing-37",
        &[
            &format!("is \"{thirty_seventh}\""),
            &format!("placed in \"{group}\""),
            "jockey's choice",
        ],
    )?;
    let (ok, out) = apply(&ns_a.name, &ingress(&a, &format!("ing-{a}"), &own(&a), &[]))?;
    ensure!(ok, "{out}");
    // The shared group is full now: naming it does not get B in.
    wait_until_refused(
        "the webhook to count A in the group",
        Duration::from_secs(20),
        &ns_b.name,
        &named(&b, &format!("ing-{b}"), &group),
        "placed in",
    )
    .await?;
    assert_denied(
        &ns_b.name,
        &named(&b, &format!("ing-{b}"), &group),
        "ingress",
        &format!("ing-{b}"),
        &[&format!("placed in \"{group}-2\"")],
    )?;
    // Placed by jockey, B goes to the next shard.
    let (ok, out) = apply(&ns_b.name, &ingress(&b, &format!("ing-{b}"), &own(&b), &[]))?;
    ensure!(ok, "{out}");
    let stored = get_json(&ns_b.name, "ingress", &format!("ing-{b}"))?.unwrap_or_default();
    ensure!(
        stored["metadata"]["annotations"]["alb.ingress.kubernetes.io/group.name"]
            == format!("{group}-2"),
        "B was not placed in {group}-2: {stored}"
    );

    drop(wh);
    ns_a.cleanup().await?;
    ns_b.cleanup().await?;
    Ok(())
}

/// Way in 5 and "the domain and the shard names are jockey's": the admission policy reads the
/// shared group, the allowed groups and the domain from the webhook's configuration, so a changed
/// setting moves it too; an Ingress outside the shared groups (unlabelled, any class) may not
/// serve a host of the domain, hold a shared group's finalizer or take a shard's ALB name.
#[tokio::test]
async fn the_admission_policy_follows_the_configuration_and_keeps_the_domain_and_names()
-> Result<()> {
    let client = client().await?;
    let ns = TestNamespace::create(&client, "ta-policy").await?;
    let group = format!("ta-custom-{}", std::process::id());
    let domain = format!("apps{}.example.com", std::process::id());
    let mut wh = Webhook::start_with_args(
        "drift",
        None,
        &[
            "--alb-shared-group-name",
            &group,
            "--deployment-domain",
            &domain,
            "--alb-allowed-groups",
            "ta-internal",
        ],
    )
    .await?;
    wh.scope(&client, &ns.name, None).await?;
    wh.register(&client, &ns.name).await?;
    let plain = |name: &str, host: &str, annotations: &[(&str, &str)]| {
        unlabelled(&ingress("x", name, host, annotations))
    };
    let g = "alb.ingress.kubernetes.io/group.name";
    wait_until_refused(
        "the admission policy to be in force",
        Duration::from_secs(30),
        &ns.name,
        &plain("ing-probe", "probe.example.org", &[(g, &group)]),
        "",
    )
    .await?;
    let under_domain = format!("serves a host under {domain}");
    for (name, yaml, words) in [
        (
            "ing-shared",
            plain("ing-shared", "a.example.org", &[(g, &group)]),
            vec!["names the shared ALB group"],
        ),
        (
            "ing-shard",
            plain("ing-shard", "a.example.org", &[(g, &format!("{group}-12"))]),
            vec!["names the shared ALB group"],
        ),
        (
            "ing-allowed",
            plain("ing-allowed", "a.example.org", &[(g, "ta-internal")]),
            vec!["names the shared ALB group"],
        ),
        (
            "ing-domain",
            plain("ing-domain", &format!("victim.{domain}"), &[])
                .replace("  rules:", "  ingressClassName: nginx\n  rules:"),
            vec![under_domain.as_str()],
        ),
        (
            "ing-lbname",
            plain(
                "ing-lbname",
                "b.example.org",
                &[
                    (g, "team-own"),
                    (
                        "alb.ingress.kubernetes.io/load-balancer-name",
                        &format!("k8s-{}-0123456789", group.replace('-', "")),
                    ),
                ],
            ),
            vec!["the name a shard of the shared ALB group takes"],
        ),
    ] {
        assert_denied(&ns.name, &yaml, "ingress", name, &words)?;
    }
    // A shared group's finalizer makes the controller load the Ingress into that group.
    let with_finalizer = plain("ing-final", "c.example.org", &[(g, "team-own")]).replace(
        "metadata:\n",
        &format!("metadata:\n  finalizers: [\"group.ingress.k8s.aws/{group}-3\"]\n"),
    );
    let denied = assert_denied(
        &ns.name,
        &with_finalizer,
        "ingress",
        "ing-final",
        &["carries the finalizer of a shared ALB group"],
    );
    if denied.is_err() {
        // Stored, nothing would ever remove the finalizer and the namespace would not go away.
        let _ = kubectl(&[
            "patch",
            "ingress",
            "ing-final",
            "-n",
            &ns.name,
            "--type=merge",
            "-p",
            r#"{"metadata":{"finalizers":null}}"#,
        ]);
    }
    denied?;
    // What is not shared under this configuration is not the policy's business: the default
    // group name, a host outside the domain.
    let (ok, out) = apply(
        &ns.name,
        &plain("ing-other", "d.example.org", &[(g, "alb-deployments")]),
    )?;
    ensure!(
        ok,
        "the policy still names alb-deployments literally:\n{out}"
    );
    // The admin changes the shared group: the policy follows its parameter.
    let moved = format!("{group}-moved");
    kubectl(&[
        "patch",
        "configmap",
        &format!("{}-config", wh.name),
        "-n",
        &wh.claims_ns,
        "--type=merge",
        "-p",
        &format!(r#"{{"data":{{"ALB_SHARED_GROUP_NAME":"{moved}"}}}}"#),
    ])?;
    wait_until_refused(
        "the policy to follow its parameter",
        Duration::from_secs(30),
        &ns.name,
        &plain("ing-moved", "e.example.org", &[(g, &moved)]),
        "names the shared ALB group",
    )
    .await?;

    drop(wh);
    ns.cleanup().await?;
    Ok(())
}

/// A namespace labelled for a project reserves the id: no other namespace may claim it, even
/// before anything of the project exists.
#[tokio::test]
async fn a_namespace_labelled_for_a_project_reserves_its_id() -> Result<()> {
    let client = client().await?;
    let owner = TestNamespace::create(&client, "ta-owner").await?;
    let other = TestNamespace::create(&client, "ta-squat").await?;
    let mut wh = Webhook::start("reserve", None).await?;
    let p = project("reserved");
    wh.scope(&client, &owner.name, Some(&p)).await?;
    wh.scope(&client, &other.name, None).await?;
    // The registration probe is a Service of another project: not in the reserved namespace.
    wh.register(&client, &other.name).await?;
    let yaml = service(&format!("svc-{p}"), Some(&p), &[], 80);
    wait_until_refused(
        "the webhook to see the namespace label",
        Duration::from_secs(20),
        &other.name,
        &yaml,
        "reserved",
    )
    .await?;
    assert_denied(
        &other.name,
        &yaml,
        "service",
        &format!("svc-{p}"),
        &[&format!("is reserved for namespace {}", owner.name), "fix:"],
    )?;
    let (ok, out) = apply(&owner.name, &yaml)?;
    ensure!(ok, "{out}");
    drop(wh);
    owner.cleanup().await?;
    other.cleanup().await?;
    Ok(())
}
