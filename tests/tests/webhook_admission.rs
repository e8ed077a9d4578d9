//! `jockey-webhook` against the real kube-apiserver: a plain `kubectl apply -f` of a labelled
//! manifest is defaulted, re-applying changes nothing, every policy denial comes back from the
//! API server with its message and stores nothing, unlabelled objects are never touched, and a
//! second namespace cannot claim the first one's host.

mod webhook_support;

use anyhow::Result;
use jockey_e2e::{TestNamespace, client, kubectl};
use serde_json::{Value, json};
use std::time::Duration;
use webhook_support::{REGISTRY, Webhook, apply, get_json, ingress, minimal_manifest, project};

const HASH: &str = "0123456789abcdef";
const DOMAIN: &str = "deploy.agentops.ai";

fn rv(v: &Value) -> String {
    v["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

#[tokio::test]
async fn labelled_manifest_gets_every_default_and_reapply_changes_nothing() -> Result<()> {
    let client = client().await?;
    let ns = TestNamespace::create(&client, "wh-defaults").await?;
    let mut wh = Webhook::start("defaults", None).await?;
    wh.scope(&client, &ns.name, None).await?;
    wh.register(&client, &ns.name).await?;

    let p = project("defaults");
    let host = format!("{p}.{DOMAIN}");
    let (ok, out) = apply(&ns.name, &minimal_manifest(&p, HASH))?;
    assert!(ok, "kubectl apply failed:\n{out}\n{}", wh.log());
    // The controllers keep writing the Deployment's status (and so its resourceVersion) until the
    // rollout has settled: wait for the deployment controller's last word (Progressing with
    // NewReplicaSetAvailable, Available, generation observed) and for a quiet second, so that
    // "re-applying changes nothing" is about the apply alone.
    let mut last = String::new();
    let mut quiet = false;
    for _ in 0..180 {
        let d = get_json(&ns.name, "deployment", &p)?.unwrap_or_default();
        let st = &d["status"];
        let cond = |t: &str| {
            st["conditions"]
                .as_array()
                .and_then(|cs| cs.iter().find(|c| c["type"] == t).cloned())
                .unwrap_or_default()
        };
        let settled = st["observedGeneration"] == d["metadata"]["generation"]
            && cond("Available")["status"] == "True"
            && cond("Progressing")["reason"] == "NewReplicaSetAvailable";
        if settled && rv(&d) == last {
            quiet = true;
            break;
        }
        last = if settled { rv(&d) } else { String::new() };
        tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
    }
    // Otherwise "re-applying changes nothing" below would be judged against a moving object.
    assert!(
        quiet,
        "the Deployment did not settle (available, generation observed, one quiet second) in \
         180 s: {}\n{}",
        get_json(&ns.name, "deployment", &p)?.unwrap_or_default()["status"],
        wh.log()
    );

    // Deployment.
    let d = get_json(&ns.name, "deployment", &p)?.expect("deployment stored");
    for meta in [&d["metadata"], &d["spec"]["template"]["metadata"]] {
        assert_eq!(meta["labels"]["deployment"], p.as_str(), "{meta}");
        assert_eq!(meta["labels"]["hostname"], host.as_str(), "{meta}");
        assert_eq!(
            meta["labels"]["jockey.agentops.ai/content-hash"], HASH,
            "{meta}"
        );
    }
    assert_eq!(
        d["spec"]["template"]["metadata"]["labels"]["app"],
        p.as_str()
    );
    assert_eq!(d["spec"]["selector"]["matchLabels"], json!({ "app": p }));
    let pod = &d["spec"]["template"]["spec"];
    assert_eq!(pod["terminationGracePeriodSeconds"], 60);
    assert_eq!(
        pod["volumes"],
        json!([{ "name": "jockey-instance", "configMap": { "name": format!("instance-{HASH}"), "defaultMode": 420 } }])
    );
    let c = &pod["containers"][0];
    assert_eq!(c["image"], format!("{REGISTRY}/hosting/{p}:{HASH}"));
    assert_eq!(
        c["volumeMounts"],
        json!([{ "name": "jockey-instance", "mountPath": "/app/instance", "readOnly": true }])
    );
    assert_eq!(
        c["ports"],
        json!([{ "containerPort": 8080, "name": "http", "protocol": "TCP" }])
    );
    for probe in ["readinessProbe", "livenessProbe"] {
        assert_eq!(c[probe]["httpGet"]["path"], "/health");
        assert_eq!(c[probe]["httpGet"]["port"], 8080);
    }
    assert_eq!(c["lifecycle"]["preStop"]["sleep"]["seconds"], 35);
    assert_eq!(
        c["resources"],
        json!({ "requests": { "cpu": "100m", "memory": "256Mi" }, "limits": { "cpu": "1", "memory": "1Gi" } })
    );

    // Service.
    let s = get_json(&ns.name, "service", &format!("svc-{p}"))?.expect("service stored");
    assert_eq!(s["spec"]["type"], "ClusterIP");
    assert_eq!(s["spec"]["selector"], json!({ "app": p }));
    let port = &s["spec"]["ports"][0];
    assert_eq!(
        (&port["port"], &port["targetPort"], &port["name"]),
        (&json!(80), &json!(8080), &json!("http"))
    );
    // The per-project tags go on the Service: the controller puts them on this project's target
    // group only.
    assert_eq!(
        s["metadata"]["annotations"]["alb.ingress.kubernetes.io/tags"],
        format!("deployment={p},hostname={host}")
    );

    // Ingress.
    let i = get_json(&ns.name, "ingress", &format!("ing-{p}"))?.expect("ingress stored");
    assert_eq!(i["spec"]["ingressClassName"], "alb");
    let a = &i["metadata"]["annotations"];
    for (k, v) in [
        ("scheme", "internet-facing"),
        ("target-type", "ip"),
        ("listen-ports", r#"[{"HTTP": 80}, {"HTTPS": 443}]"#),
        ("ssl-redirect", "443"),
        ("group.name", "alb-deployments"),
        ("healthcheck-path", "/health"),
        ("success-codes", "200"),
        (
            "target-group-attributes",
            "deregistration_delay.timeout_seconds=30",
        ),
    ] {
        assert_eq!(a[format!("alb.ingress.kubernetes.io/{k}")], v, "{k}: {a}");
    }
    // Never on the Ingress: the controller merges Ingress tags group-wide.
    assert!(a.get("alb.ingress.kubernetes.io/tags").is_none(), "{a}");
    assert_eq!(
        i["spec"]["rules"],
        json!([{ "host": host, "http": { "paths": [{ "path": "/", "pathType": "Prefix",
            "backend": { "service": { "name": format!("svc-{p}"), "port": { "number": 80 } } } }] } }])
    );

    // Re-applying the same manifest changes no resourceVersion (the mutation is idempotent, so
    // the API server sees a no-op).
    // The Deployment's status may still move (the controllers own it, and under load they keep
    // writing after the settle loop above): what the apply must not change is what the user and
    // the webhook own — generation, spec, labels and annotations.
    let owned = |d: &Value| {
        json!([
            d["metadata"]["generation"],
            d["spec"],
            d["metadata"]["labels"],
            d["metadata"]["annotations"]
        ])
        .to_string()
    };
    let before = [owned(&d), rv(&s), rv(&i)];
    let (ok, out) = apply(&ns.name, &minimal_manifest(&p, HASH))?;
    assert!(ok, "{out}");
    assert!(out.contains("unchanged"), "{out}");
    let after = [
        owned(&get_json(&ns.name, "deployment", &p)?.expect("deployment")),
        rv(&get_json(&ns.name, "service", &format!("svc-{p}"))?.expect("service")),
        rv(&get_json(&ns.name, "ingress", &format!("ing-{p}"))?.expect("ingress")),
    ];
    assert_eq!(before, after);
    // Server-side apply of the same manifest: also no change. The first takes the fields over
    // for its field manager (only managedFields may change); a second writes nothing at all.
    let ssa = || {
        webhook_support::kubectl_stdin(
            &[
                "apply",
                "--server-side",
                "--force-conflicts",
                "-n",
                &ns.name,
                "-f",
                "-",
            ],
            &minimal_manifest(&p, HASH),
        )
    };
    // The Deployment through the API (kubectl hides managedFields).
    let deployments: kube::Api<k8s_openapi::api::apps::v1::Deployment> =
        kube::Api::namespaced(client.clone(), &ns.name);
    let stored = |dep: Value| -> Result<[Value; 3]> {
        Ok([
            dep,
            get_json(&ns.name, "service", &format!("svc-{p}"))?.expect("service"),
            get_json(&ns.name, "ingress", &format!("ing-{p}"))?.expect("ingress"),
        ])
    };
    let (ok, out) = ssa()?;
    assert!(ok, "{out}");
    let first = stored(serde_json::to_value(deployments.get(&p).await?)?)?;
    // kubectl keeps its last-applied-configuration annotation up to date on a server-side apply
    // (its own bookkeeping, rewritten with `"annotations":{}`); everything else stays.
    let content = |v: &Value| {
        let mut v = v.clone();
        if let Some(a) = v["metadata"]["annotations"].as_object_mut() {
            a.remove("kubectl.kubernetes.io/last-applied-configuration");
        }
        owned(&v)
    };
    assert_eq!(
        first.iter().map(content).collect::<Vec<_>>(),
        [content(&d), content(&s), content(&i)],
        "a server-side apply of the same manifest changed what it owns"
    );
    let (ok, out) = ssa()?;
    assert!(ok, "{out}");
    let second = stored(serde_json::to_value(deployments.get(&p).await?)?)?;
    assert_eq!(
        [rv(&second[1]), rv(&second[2])],
        [rv(&first[1]), rv(&first[2])],
        "a repeated server-side apply wrote the Service or the Ingress"
    );
    // The Deployment's status is the controllers' to move; what it owns and the managedFields
    // entries of its object (each with the time of its manager's last write) stay as they were.
    let object_fields = |d: &Value| -> Vec<Value> {
        d["metadata"]["managedFields"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|m| m["subresource"].as_str().is_none_or(str::is_empty))
            .cloned()
            .collect()
    };
    assert!(
        object_fields(&first[0])
            .iter()
            .any(|m| m["operation"] == "Apply"),
        "no Apply manager after a server-side apply: {}",
        first[0]["metadata"]["managedFields"]
    );
    assert_eq!(
        (object_fields(&second[0]), owned(&second[0])),
        (object_fields(&first[0]), owned(&first[0])),
        "a repeated server-side apply wrote the Deployment"
    );

    // A new instance through a client-side apply that only changes the annotation: the image
    // and the volume follow it.
    let next = "fedcba9876543210";
    let (ok, out) = apply(&ns.name, &minimal_manifest(&p, next))?;
    assert!(ok, "{out}");
    let d2 = get_json(&ns.name, "deployment", &p)?.expect("deployment");
    let pod2 = &d2["spec"]["template"]["spec"];
    assert_eq!(
        pod2["containers"][0]["image"],
        format!("{REGISTRY}/hosting/{p}:{next}")
    );
    assert_eq!(
        pod2["volumes"][0]["configMap"]["name"],
        format!("instance-{next}")
    );

    // An unlabelled object in the same namespace is never touched.
    let plain = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: plain
spec:
  selector:
    matchLabels: {app: plain}
  template:
    metadata:
      labels: {app: plain}
    spec:
      containers:
      - name: web
        image: jockey:auto
"#;
    let (ok, out) = apply(&ns.name, plain)?;
    assert!(ok, "{out}");
    let u = get_json(&ns.name, "deployment", "plain")?.expect("plain stored");
    let uc = &u["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(uc["image"], "jockey:auto");
    assert!(
        uc.get("readinessProbe").is_none() && uc.get("ports").is_none(),
        "{uc}"
    );
    assert!(u["spec"]["template"]["spec"].get("volumes").is_none());
    assert!(u["metadata"]["labels"].get("deployment").is_none());
    assert_eq!(
        u["spec"]["template"]["spec"]["terminationGracePeriodSeconds"],
        30
    );

    drop(wh);
    ns.cleanup().await?;
    Ok(())
}

/// Applies `yaml` expecting a denial that mentions every one of `words`; then checks that
/// `kind/name` was not stored.
fn assert_denied(ns: &str, yaml: &str, kind: &str, name: &str, words: &[&str]) -> Result<()> {
    let (ok, out) = apply(ns, yaml)?;
    assert!(!ok, "expected a denial, kubectl said:\n{out}");
    assert!(out.contains("denied the request"), "{out}");
    for w in words {
        assert!(out.contains(w), "{w:?} missing from:\n{out}");
    }
    assert!(
        get_json(ns, kind, name)?.is_none(),
        "{kind}/{name} was stored"
    );
    Ok(())
}

#[tokio::test]
async fn each_policy_denial_is_returned_with_its_message_and_nothing_is_stored() -> Result<()> {
    let client = client().await?;
    let ns = TestNamespace::create(&client, "wh-deny").await?;
    let claimed = TestNamespace::create(&client, "wh-deny-claimed").await?;
    let legacy = TestNamespace::create(&client, "wh-deny-legacy").await?;
    let mut wh = Webhook::start("deny", Some("groupSettings: {tags: team=blue}\n")).await?;
    wh.scope(&client, &ns.name, None).await?;
    wh.register(&client, &ns.name).await?;
    let p = project("deny");
    let other = project("other");
    let own = format!("{p}.{DOMAIN}");

    // Hosts.
    assert_denied(
        &ns.name,
        &ingress(&p, "ing-evil", "www.evil.example", &[]),
        "ingress",
        "ing-evil",
        &[
            "spec.rules[0].host",
            "outside the deployment domain",
            "rule:",
            "fix:",
            "extraHosts",
        ],
    )?;
    assert_denied(
        &ns.name,
        &ingress(&p, "ing-theirs", &format!("{other}.{DOMAIN}"), &[]),
        "ingress",
        "ing-theirs",
        &["is not project", "own host", &own],
    )?;
    // ALB group and group-wide settings.
    assert_denied(
        &ns.name,
        &ingress(
            &p,
            "ing-group",
            &own,
            &[("alb.ingress.kubernetes.io/group.name", "my-own-alb")],
        ),
        "ingress",
        "ing-group",
        &["group.name", "\"my-own-alb\"", "alb-deployments"],
    )?;
    assert_denied(
        &ns.name,
        &ingress(
            &p,
            "ing-scheme",
            &own,
            &[("alb.ingress.kubernetes.io/scheme", "internal")],
        ),
        "ingress",
        "ing-scheme",
        &[
            "alb.ingress.kubernetes.io/scheme",
            "group's setting is \"internet-facing\"",
        ],
    )?;
    for (key, value) in [
        ("ip-address-type", "dualstack"),
        ("load-balancer-name", "mine"),
        ("ssl-redirect", "8443"),
    ] {
        let name = format!("ing-{key}").replace('.', "-");
        assert_denied(
            &ns.name,
            &ingress(
                &p,
                &name,
                &own,
                &[(&format!("alb.ingress.kubernetes.io/{key}"), value)],
            ),
            "ingress",
            &name,
            &[key, "group"],
        )?;
    }
    // Tags are group-wide: only the admin's (this webhook's policy allows team=blue).
    assert_denied(
        &ns.name,
        &ingress(
            &p,
            "ing-green",
            &own,
            &[("alb.ingress.kubernetes.io/tags", "team=green")],
        ),
        "ingress",
        "ing-green",
        &[
            "alb.ingress.kubernetes.io/tags",
            "group's setting is \"team=blue\"",
        ],
    )?;
    // A member the webhook never saw admitted (in a namespace it does not answer) already says
    // team=red: even the admin's value conflicts with it, and the controller would fail the group.
    let first = ingress(
        &project("red"),
        "ing-red",
        &format!("{}.{DOMAIN}", project("red")),
        &[
            ("alb.ingress.kubernetes.io/tags", "team=red"),
            ("alb.ingress.kubernetes.io/group.name", "alb-deployments"),
        ],
    );
    let (ok, out) = apply(&legacy.name, &first)?;
    assert!(ok, "{out}");
    let q = project("blue");
    let blue = ingress(
        &q,
        "ing-blue",
        &format!("{q}.{DOMAIN}"),
        &[("alb.ingress.kubernetes.io/tags", "team=blue")],
    );
    webhook_support::wait_until_refused(
        "the webhook cache to see ing-red",
        Duration::from_secs(10),
        &ns.name,
        &blue,
        "conflicts with",
    )
    .await?;
    assert_denied(
        &ns.name,
        &blue,
        "ingress",
        "ing-blue",
        &[
            "team=blue conflicts with team=red",
            &format!("{}/ing-red", legacy.name),
        ],
    )?;

    // Services.
    for t in ["LoadBalancer", "NodePort"] {
        let name = format!("svc-{}", t.to_lowercase());
        let yaml = format!(
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  labels:\n    jockey.agentops.ai/project: {p}\nspec:\n  type: {t}\n  ports:\n  - port: 80\n"
        );
        assert_denied(
            &ns.name,
            &yaml,
            "service",
            &name,
            &["spec.type", t, "ClusterIP"],
        )?;
    }

    // A Deployment whose image must be filled but names no instance: the mutation refuses.
    let yaml = format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: noinst\n  labels:\n    jockey.agentops.ai/project: {p}\nspec:\n  selector:\n    matchLabels: {{app: {p}}}\n  template:\n    metadata:\n      labels: {{app: {p}}}\n    spec:\n      containers:\n      - name: server\n        image: jockey:auto\n"
    );
    assert_denied(
        &ns.name,
        &yaml,
        "deployment",
        "noinst",
        &["jockey.agentops.ai/instance", "missing"],
    )?;

    // Changing an object's project label.
    let svc = format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: svc-{p}\n  labels:\n    jockey.agentops.ai/project: {p}\nspec:\n  ports:\n  - port: 80\n"
    );
    let (ok, out) = apply(&ns.name, &svc)?;
    assert!(ok, "{out}");
    let out = kubectl(&[
        "label",
        "service",
        &format!("svc-{p}"),
        "-n",
        &ns.name,
        "--overwrite",
        &format!("jockey.agentops.ai/project={other}"),
    ])?;
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && text.contains("changes the project"),
        "{text}"
    );
    let out = kubectl(&[
        "label",
        "service",
        &format!("svc-{p}"),
        "-n",
        &ns.name,
        "jockey.agentops.ai/project-",
    ])?;
    let text = String::from_utf8_lossy(&out.stderr);
    // Refused twice over: by the webhook (a project label never goes away) and by the API
    // server's admission policy (the Service keeps jockey's ALB tags, which an unlabelled
    // Service in a jockey namespace may not carry); either message may come back first.
    assert!(
        !out.status.success()
            && (text.contains("removes the project label")
                || text.contains("without the jockey.agentops.ai/project label")),
        "{text}"
    );
    let s = get_json(&ns.name, "service", &format!("svc-{p}"))?.expect("service");
    assert_eq!(
        s["metadata"]["labels"]["jockey.agentops.ai/project"],
        p.as_str()
    );

    // A project claimed from a namespace labelled for another project.
    wh.scope(&client, &claimed.name, Some(&other)).await?;
    webhook_support::wait_until_refused(
        "the webhook cache to see the namespace label",
        Duration::from_secs(10),
        &claimed.name,
        &svc,
        "labelled for project",
    )
    .await?;
    assert_denied(
        &claimed.name,
        &svc,
        "service",
        &format!("svc-{p}"),
        &["labelled for project", &other],
    )?;

    // Warnings come back to kubectl.
    let warn = format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: svc-warn\n  labels:\n    jockey.agentops.ai/project: {p}\nspec:\n  selector: {{app: someone-else}}\n  ports:\n  - port: 80\n"
    );
    let (ok, out) = apply(&ns.name, &warn)?;
    assert!(
        ok && out.contains("Warning:") && out.contains("does not select"),
        "{out}"
    );

    drop(wh);
    ns.cleanup().await?;
    claimed.cleanup().await?;
    legacy.cleanup().await?;
    Ok(())
}

#[tokio::test]
async fn a_second_namespace_cannot_claim_the_first_ones_host() -> Result<()> {
    let client = client().await?;
    let first = TestNamespace::create(&client, "wh-tenant-a").await?;
    let second = TestNamespace::create(&client, "wh-tenant-b").await?;
    let mut wh = Webhook::start("tenants", Some("extraHosts: {}\n")).await?;
    wh.scope(&client, &first.name, None).await?;
    wh.scope(&client, &second.name, None).await?;
    wh.register(&client, &first.name).await?;
    let a = project("tenant-a");
    let b = project("tenant-b");
    let host_a = format!("{a}.{DOMAIN}");

    let (ok, out) = apply(&first.name, &minimal_manifest(&a, HASH))?;
    assert!(ok, "{out}");
    // Project b, in the second namespace, claiming a's host (policy aside, isolation first).
    let theft = ingress(&b, "ing-theft", &host_a, &[]);
    webhook_support::wait_until_refused(
        "the webhook cache to see the first tenant's Ingress",
        Duration::from_secs(10),
        &second.name,
        &theft,
        "already served by",
    )
    .await?;
    assert_denied(
        &second.name,
        &theft,
        "ingress",
        "ing-theft",
        &[
            "already served by",
            &format!("Ingress {}/ing-{a} of project {a}", first.name),
            "tenant isolation",
        ],
    )?;
    // Using a's project id from the second namespace is no way around it.
    assert_denied(
        &second.name,
        &ingress(&a, "ing-a-copy", &host_a, &[]),
        "ingress",
        "ing-a-copy",
        &[&format!("already belongs to namespace {}", first.name)],
    )?;
    // b's own host in the second namespace is fine.
    let (ok, out) = apply(&second.name, &minimal_manifest(&b, HASH))?;
    assert!(ok, "{out}");

    drop(wh);
    first.cleanup().await?;
    second.cleanup().await?;
    Ok(())
}
