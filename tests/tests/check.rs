//! `kubectl jockey check` against a real installation: the webhook installed by `kubectl jockey
//! install` as real pods on the real node (as in real_webhook_install.rs), AWS in a moto server of
//! this test's own (subnets, an imported ACM certificate), the real IngressClass `alb` of the local
//! AWS Load Balancer Controller. For each check in turn the test breaks its precondition, sees the
//! check's ✗ (or ‼) with its hint in `check -o json`, repairs it and sees ✓.
//!
//! Everything it breaks is its own: its install's name, namespaces and namespace selector, a
//! builder namespace of its own (`--builder-namespace`), a stand-in controller Deployment under a
//! label only it uses (`--alb-controller-selector`), its own moto (`--vpc-id`, AWS_ENDPOINT_URL).
//! Not broken here, because they are shared with every other test: IngressClass `alb` and its
//! IngressClassParams, cert-manager's CRDs (the pure rules' unit tests cover them). A guard
//! uninstalls and deletes the namespaces when the test ends early.

mod alb_support;
mod webhook_support;

use alb_support::{Moto, jockey, text};
use anyhow::{Context, Result, bail, ensure};
use base64::Engine;
use jockey_core::certs;
use jockey_e2e::{AlbController, TestNamespace, client, kubectl_ok, require_real_node};
use k8s_openapi::api::admissionregistration::v1::ValidatingAdmissionPolicyBinding;
use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use webhook_support::{
    SCOPE_LABEL, apply, get_json, minimal_manifest, plugin, webhook_client_ca, webhook_image,
};

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn unb64(v: &Value) -> Result<String> {
    let s = v.as_str().context("not a string")?;
    Ok(String::from_utf8(
        base64::engine::general_purpose::STANDARD.decode(s)?,
    )?)
}

/// Runs `check` with the test's arguments; (exit code, results, output for messages).
struct Checker {
    args: Vec<String>,
    env: Vec<(String, String)>,
}

struct Run {
    code: Option<i32>,
    results: Vec<Value>,
    text: String,
}

impl Run {
    fn line(&self, id: &str) -> Result<&Value> {
        self.results
            .iter()
            .find(|r| r["id"] == id)
            .with_context(|| format!("no check {id} in\n{}", self.text))
    }
    fn outcome(&self, id: &str) -> String {
        self.line(id)
            .map(|l| l["outcome"].as_str().unwrap_or_default().to_string())
            .unwrap_or_default()
    }
}

impl Checker {
    fn run(&self, extra: &[&str]) -> Result<Run> {
        // A flag in `extra` replaces the same flag's value in the test's arguments.
        let mut args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        for pair in extra.chunks(2) {
            match (args.iter().position(|a| *a == pair[0]), pair.get(1)) {
                (Some(i), Some(v)) if i + 1 < args.len() => args[i + 1] = v,
                _ => args.extend_from_slice(pair),
            }
        }
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let out = jockey(&args, &env)?;
        let results: Vec<Value> = serde_json::from_slice(&out.stdout)
            .with_context(|| format!("check -o json printed no JSON list:\n{}", text(&out)))?;
        Ok(Run {
            code: out.status.code(),
            results,
            text: text(&out),
        })
    }

    /// Runs check until `id` comes out `outcome` (the cluster follows a change within seconds),
    /// then asserts its message and hint contain the given parts.
    async fn expect(&self, id: &str, outcome: &str, message: &str, hint: &str) -> Result<Run> {
        self.expect_with(&[], id, outcome, message, hint).await
    }

    async fn expect_with(
        &self,
        extra: &[&str],
        id: &str,
        outcome: &str,
        message: &str,
        hint: &str,
    ) -> Result<Run> {
        let start = Instant::now();
        loop {
            let run = self.run(extra)?;
            if run.outcome(id) == outcome {
                let line = run.line(id)?.clone();
                let msg = line["message"].as_str().unwrap_or_default();
                ensure!(
                    msg.contains(message),
                    "{id}: message {msg:?} lacks {message:?}"
                );
                match outcome {
                    "ok" => ensure!(line["hint"].is_null(), "{id}: a hint on ✓: {line}"),
                    _ => {
                        let h = line["hint"].as_str().unwrap_or_default();
                        ensure!(
                            !h.is_empty() && h.contains(hint),
                            "{id}: hint {h:?} lacks {hint:?}"
                        );
                        ensure!(
                            line["docs"] == format!("README.md#check-{id}").as_str(),
                            "{line}"
                        );
                    }
                }
                // Exit 1 exactly when something failed.
                let failed = run.results.iter().any(|r| r["outcome"] == "fail");
                ensure!(
                    run.code == Some(if failed { 1 } else { 0 }),
                    "exit code {:?} with failed={failed}:\n{}",
                    run.code,
                    run.text
                );
                return Ok(run);
            }
            if start.elapsed() > Duration::from_secs(180) {
                bail!(
                    "{id} did not become {outcome} within 180s; last:\n{}",
                    run.line(id).map(|l| l.to_string()).unwrap_or(run.text)
                );
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }
}

/// Uninstalls and deletes the test's namespaces when the test ends before doing so itself.
struct Cleanup {
    system: String,
    name: String,
    namespaces: Vec<String>,
    done: bool,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if !self.done {
            let _ = plugin(&["uninstall", "-n", &self.system, "--name", &self.name]);
            for ns in &self.namespaces {
                let _ = jockey_e2e::kubectl(&["delete", "namespace", ns, "--wait=false"]);
            }
        }
    }
}

fn merge(kind: &str, ns: &str, name: &str, patch: Value) -> Result<()> {
    let p = patch.to_string();
    let mut args = vec!["patch", kind, name, "--type", "merge", "-p", &p];
    if !ns.is_empty() {
        args.extend(["-n", ns]);
    }
    kubectl_ok(&args)?;
    Ok(())
}

fn json_patch(kind: &str, name: &str, patch: Value) -> Result<()> {
    kubectl_ok(&[
        "patch",
        kind,
        name,
        "--type",
        "json",
        "-p",
        &patch.to_string(),
    ])?;
    Ok(())
}

fn scale(ns: &str, deployment: &str, replicas: u32) -> Result<()> {
    kubectl_ok(&[
        "scale",
        "-n",
        ns,
        "deployment",
        deployment,
        &format!("--replicas={replicas}"),
    ])?;
    Ok(())
}

#[tokio::test]
async fn each_check_fails_with_its_hint_when_broken_and_passes_when_repaired() -> Result<()> {
    let Some(node) = require_real_node() else {
        return Ok(());
    };
    let Some(controller) = AlbController::require(
        "check::each_check_fails_with_its_hint_when_broken_and_passes_when_repaired",
    )?
    else {
        return Ok(());
    };
    let client = client().await?;
    let image = webhook_image(&node.registry)?;
    let id = std::process::id() % 100_000;
    let name = format!("jw-check-{id}");
    let system = TestNamespace::create(&client, "ck-sys").await?;
    node.place(&client, &system.name).await?;
    let app = TestNamespace::create(&client, "ck-app").await?;
    let kwok = TestNamespace::create(&client, "ck-kwok").await?;
    let builder = format!("ck-builder-{id}");
    let mut cleanup = Cleanup {
        system: system.name.clone(),
        name: name.clone(),
        namespaces: vec![
            builder.clone(),
            system.name.clone(),
            app.name.clone(),
            kwok.name.clone(),
        ],
        done: false,
    };
    let namespaces = Api::<Namespace>::all(client.clone());
    namespaces
        .patch(
            &app.name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {SCOPE_LABEL: name}}})),
        )
        .await?;

    // AWS of this test alone: a VPC with subnets in two zones and an issued certificate.
    let moto = Moto::start()?;
    let sdk = jockey_e2e::aws::moto_sdk_config(&moto.url()).await;
    let ec2 = aws_sdk_ec2::Client::new(&sdk);
    let vpc = ec2.create_vpc().cidr_block("10.99.0.0/16").send().await?;
    let vpc_id = vpc
        .vpc()
        .and_then(|v| v.vpc_id())
        .context("no VPC id")?
        .to_string();
    let mut subnets = Vec::new();
    for (i, zone) in ["us-east-1a", "us-east-1b"].iter().enumerate() {
        let s = ec2
            .create_subnet()
            .vpc_id(&vpc_id)
            .cidr_block(format!("10.99.{i}.0/24"))
            .availability_zone(*zone)
            .send()
            .await?;
        subnets.push(
            s.subnet()
                .and_then(|s| s.subnet_id())
                .context("no subnet id")?
                .to_string(),
        );
    }
    let tag_elb = |subnet: String| {
        let ec2 = ec2.clone();
        async move {
            ec2.create_tags()
                .resources(subnet)
                .tags(
                    aws_sdk_ec2::types::Tag::builder()
                        .key("kubernetes.io/role/elb")
                        .value("1")
                        .build(),
                )
                .send()
                .await
        }
    };
    tag_elb(subnets[0].clone()).await?;
    let domain = format!("ck{id}.example.com");
    let issuer = certs::new_ca("ck-acm-ca", 400)?;
    let leaf = certs::issue_serving(
        &issuer,
        "ck-acm-ca",
        &[format!("*.{domain}"), domain.clone()],
        200,
    )?;
    let acm = aws_sdk_acm::Client::new(&sdk);
    let imported = acm
        .import_certificate()
        .certificate(aws_sdk_acm::primitives::Blob::new(leaf.cert_pem.as_bytes()))
        .private_key(aws_sdk_acm::primitives::Blob::new(leaf.key_pem.as_bytes()))
        .certificate_chain(aws_sdk_acm::primitives::Blob::new(
            issuer.cert_pem.as_bytes(),
        ))
        .send()
        .await?;
    let cert_arn = imported
        .certificate_arn()
        .context("no certificate ARN")?
        .to_string();

    // The installation, scoped to the app namespace; a builder namespace of its own.
    let scope = format!("{SCOPE_LABEL}={name}");
    let client_ca = webhook_client_ca()?;
    let (ok, out) = plugin(&[
        "install",
        "--client-ca-file",
        &client_ca.to_string_lossy(),
        "-n",
        &system.name,
        "--name",
        &name,
        "--namespace-selector",
        &scope,
        "--alb-group",
        &format!("{name}-alb"),
        "--deployment-domain",
        &domain,
        "--certificate-arn",
        &cert_arn,
        "--image",
        &image,
        "--image-registry",
        &node.registry,
        "--wait",
        "--timeout",
        "300",
    ])?;
    ensure!(ok, "install failed: {out}");
    let (ok, out) = plugin(&["setup-builder", "-n", &builder])?;
    ensure!(ok, "setup-builder failed: {out}");
    // A stand-in for the controller's Deployment, under a label only this test uses.
    let selector = format!("app.kubernetes.io/name=ck-alb-{id}");
    let stand_in = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "controller", "labels": {"app.kubernetes.io/name": format!("ck-alb-{id}")}},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "ck-alb"}},
                 "template": {"metadata": {"labels": {"app": "ck-alb"}},
                              "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}]}}}
    });
    let (ok, out) = apply(&kwok.name, &stand_in.to_string())?;
    ensure!(ok, "{out}");
    // The app namespace is a tenant's.
    let (ok, out) = plugin(&[
        "tenant",
        "grant",
        &app.name,
        "--user",
        &format!("ck-user-{id}"),
    ])?;
    ensure!(ok, "{out}");

    let mut env: Vec<(String, String)> = moto
        .env()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    env.push(("AWS_EC2_METADATA_DISABLED".into(), "true".into()));
    let checker = Checker {
        args: [
            "check",
            "-n",
            &system.name,
            "--name",
            &name,
            "--builder-namespace",
            &builder,
            "--alb-controller-selector",
            &selector,
            "--vpc-id",
            &vpc_id,
            "-o",
            "json",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
        env,
    };

    // ---- cluster
    checker
        .expect("cluster-reachable", "ok", "API server v1.37", "")
        .await?;
    checker
        .expect("cluster-version", "ok", "ValidatingAdmissionPolicy", "")
        .await?;
    checker
        .expect(
            "cluster-versions-compatible",
            "ok",
            "same minor version",
            "",
        )
        .await?;
    let version = env!("CARGO_PKG_VERSION");
    merge(
        "deployment",
        &system.name,
        &name,
        json!({"metadata": {"labels": {"app.kubernetes.io/version": "9.9.0"}}}),
    )?;
    checker
        .expect(
            "cluster-versions-compatible",
            "fail",
            "webhook 9.9.0",
            "kubectl jockey install",
        )
        .await?;
    merge(
        "deployment",
        &system.name,
        &name,
        json!({"metadata": {"labels": {"app.kubernetes.io/version": version}}}),
    )?;
    checker
        .expect("cluster-versions-compatible", "ok", version, "")
        .await?;

    // ---- webhook: replicas, PDB and the dry run through the API server
    checker
        .expect("webhook-replicas", "ok", "2/2 ready", "")
        .await?;
    checker
        .expect("webhook-pdb", "ok", "1 disruption(s) allowed", "")
        .await?;
    checker
        .expect(
            "webhook-dry-run",
            "ok",
            &format!("in {} came back mutated", app.name),
            "",
        )
        .await?;
    scale(&system.name, &name, 1)?;
    checker
        .expect(
            "webhook-pdb",
            "fail",
            "0 disruption(s) allowed",
            "at least 2 replicas",
        )
        .await?;
    scale(&system.name, &name, 0)?;
    checker
        .expect("webhook-replicas", "fail", "0/0 ready", "pods' logs")
        .await?;
    let run = checker
        .expect(
            "webhook-dry-run",
            "fail",
            "was refused",
            "reach the webhook's pods on their port",
        )
        .await?;
    ensure!(run.outcome("webhook-replicas") != "ok", "{}", run.text);
    scale(&system.name, &name, 2)?;
    checker
        .expect("webhook-replicas", "ok", "2/2 ready", "")
        .await?;
    checker.expect("webhook-pdb", "ok", "", "").await?;
    checker
        .expect("webhook-dry-run", "ok", "came back mutated", "")
        .await?;

    // ---- webhook: the caBundle trusts the serving certificate's CA
    checker.expect("webhook-ca-bundle", "ok", "", "").await?;
    let hooks = get_json("", "mutatingwebhookconfiguration", &name)?.context("no configuration")?;
    let bundle = hooks["webhooks"][0]["clientConfig"]["caBundle"].clone();
    let stranger = certs::new_ca("not-the-webhooks-ca", 30)?;
    json_patch(
        "mutatingwebhookconfiguration",
        &name,
        json!([{"op": "replace", "path": "/webhooks/0/clientConfig/caBundle", "value": b64(&stranger.cert_pem)}]),
    )?;
    checker
        .expect(
            "webhook-ca-bundle",
            "fail",
            "MutatingWebhookConfiguration",
            "kubectl jockey install",
        )
        .await?;
    json_patch(
        "mutatingwebhookconfiguration",
        &name,
        json!([{"op": "replace", "path": "/webhooks/0/clientConfig/caBundle", "value": bundle}]),
    )?;
    checker.expect("webhook-ca-bundle", "ok", "", "").await?;

    // ---- webhook: the serving certificate's days left (one signed by the same CA, 10 days)
    checker
        .expect("webhook-certificate", "ok", "more days", "")
        .await?;
    let ca_secret =
        get_json(&system.name, "secret", &format!("{name}-ca"))?.context("no CA Secret")?;
    let tls_secret =
        get_json(&system.name, "secret", &format!("{name}-tls"))?.context("no TLS Secret")?;
    let ca = certs::Pair {
        cert_pem: unb64(&ca_secret["data"]["tls.crt"])?,
        key_pem: unb64(&ca_secret["data"]["tls.key"])?,
        not_after: 0,
    };
    let names = certs::inspect(&unb64(&tls_secret["data"]["tls.crt"])?)?.names;
    let short = certs::issue_serving(&ca, &format!("{name}-ca"), &names, 10)?;
    let tls_name = format!("{name}-tls");
    merge(
        "secret",
        &system.name,
        &tls_name,
        json!({"data": {"tls.crt": b64(&short.cert_pem), "tls.key": b64(&short.key_pem)}}),
    )?;
    checker
        .expect(
            "webhook-certificate",
            "warn",
            "expires in ",
            "kubectl jockey install",
        )
        .await?;
    merge(
        "secret",
        &system.name,
        &tls_name,
        json!({"data": {"tls.crt": tls_secret["data"]["tls.crt"], "tls.key": tls_secret["data"]["tls.key"]}}),
    )?;
    checker
        .expect("webhook-certificate", "ok", "more days", "")
        .await?;

    // ---- webhook: the CA's own expiry (a CA in its last year)
    checker.expect("webhook-ca", "ok", "", "").await?;
    let ca_name = format!("{name}-ca");
    let dying = certs::new_ca(&ca_name, 100)?;
    merge(
        "secret",
        &system.name,
        &ca_name,
        json!({"data": {"tls.crt": b64(&dying.cert_pem)}}),
    )?;
    checker
        .expect("webhook-ca", "warn", "expires in ", "install")
        .await?;
    merge(
        "secret",
        &system.name,
        &ca_name,
        json!({"data": {"tls.crt": ca_secret["data"]["tls.crt"]}}),
    )?;
    checker.expect("webhook-ca", "ok", "", "").await?;

    // ---- webhook: failurePolicy and timeoutSeconds as install renders them
    checker
        .expect(
            "webhook-failure-policy",
            "ok",
            "failurePolicy Fail, timeoutSeconds 5",
            "",
        )
        .await?;
    json_patch(
        "validatingwebhookconfiguration",
        &name,
        json!([{"op": "replace", "path": "/webhooks/0/timeoutSeconds", "value": 7}]),
    )?;
    checker
        .expect(
            "webhook-failure-policy",
            "warn",
            "timeoutSeconds 7, install renders 5",
            "install",
        )
        .await?;
    json_patch(
        "validatingwebhookconfiguration",
        &name,
        json!([{"op": "replace", "path": "/webhooks/0/timeoutSeconds", "value": 5}]),
    )?;
    checker
        .expect("webhook-failure-policy", "ok", "", "")
        .await?;

    // ---- webhook: the admission policy's binding
    checker
        .expect("webhook-admission-policy", "ok", "", "")
        .await?;
    let bindings = Api::<ValidatingAdmissionPolicyBinding>::all(client.clone());
    let policy = format!("{name}-shared-alb");
    let mut binding = bindings.get(&policy).await?;
    bindings.delete(&policy, &DeleteParams::default()).await?;
    checker
        .expect(
            "webhook-admission-policy",
            "fail",
            &format!("ValidatingAdmissionPolicyBinding {policy}"),
            "install",
        )
        .await?;
    binding.metadata.resource_version = None;
    binding.metadata.uid = None;
    binding.metadata.creation_timestamp = None;
    binding.metadata.managed_fields = None;
    bindings.create(&PostParams::default(), &binding).await?;
    checker
        .expect("webhook-admission-policy", "ok", "", "")
        .await?;

    // ---- AWS Load Balancer Controller: its Deployment, the class params' namespaces
    checker
        .expect("alb-controller-ready", "ok", "available", "")
        .await?;
    scale(&kwok.name, "controller", 0)?;
    checker
        .expect("alb-controller-ready", "fail", "not available", "logs")
        .await?;
    scale(&kwok.name, "controller", 1)?;
    checker
        .expect("alb-controller-ready", "ok", "available", "")
        .await?;
    checker
        .expect_with(
            &[
                "--alb-controller-selector",
                "app.kubernetes.io/name=none-such",
            ],
            "alb-controller-ready",
            "fail",
            "no Deployment matches",
            "--alb-controller-selector",
        )
        .await?;
    checker
        .expect("alb-ingress-class", "ok", "ingress.k8s.aws/alb", "")
        .await?;
    checker
        .expect(
            "alb-class-params",
            "fail",
            &format!("namespace {} does not", app.name),
            "label those namespaces",
        )
        .await?;
    let (label_key, label_value) = &controller.namespace_label;
    merge(
        "namespace",
        "",
        &app.name,
        json!({"metadata": {"labels": {label_key: label_value}}}),
    )?;
    checker
        .expect("alb-class-params", "ok", "all 1 namespace(s)", "")
        .await?;
    // Unlabelled again: the Ingress below must not reach the controller (and the shared moto).
    merge(
        "namespace",
        "",
        &app.name,
        json!({"metadata": {"labels": {label_key: null}}}),
    )?;

    // ---- AWS: subnets in two zones, an issued certificate for every host
    checker
        .expect(
            "alb-subnets",
            "fail",
            "span 1 zone(s) (us-east-1a)",
            "kubernetes.io/role/elb",
        )
        .await?;
    tag_elb(subnets[1].clone()).await?;
    checker
        .expect("alb-subnets", "ok", "in 2 zones", "")
        .await?;
    checker
        .expect("alb-certificate", "ok", &format!("cover *.{domain}"), "")
        .await?;
    let policy_cm = format!("{name}-policy");
    let original_policy = get_json(&system.name, "configmap", &policy_cm)?.context("no policy")?;
    let extra = format!("www.shop-{id}.example.org");
    merge(
        "configmap",
        &system.name,
        &policy_cm,
        json!({"data": {"policy.yaml": format!("extraHosts:\n  p{id}: [{extra}]\n")}}),
    )?;
    checker
        .expect(
            "alb-certificate",
            "fail",
            &format!("covers {extra}"),
            "request (and validate) an ACM certificate",
        )
        .await?;
    merge(
        "configmap",
        &system.name,
        &policy_cm,
        json!({"data": original_policy["data"]}),
    )?;
    checker.expect("alb-certificate", "ok", "", "").await?;

    // ---- shared ALB: quotas (with a project in the install's group) and reconciliation
    let project = format!("ck{id}-quota");
    let (ok, out) = apply(&app.name, &minimal_manifest(&project, "0123456789abcdef"))?;
    ensure!(ok, "{out}");
    let group = format!("{name}-alb");
    checker
        .expect(
            "shared-alb-quotas",
            "ok",
            &format!("{group}: rules 1/100"),
            "",
        )
        .await?;
    merge(
        "configmap",
        &system.name,
        &policy_cm,
        json!({"data": {"policy.yaml": "sharding:\n  enabled: true\n  capacity: 1\nruleQuota: 1\n"}}),
    )?;
    checker
        .expect(
            "shared-alb-quotas",
            "fail",
            &format!("{group}: rules 1/1"),
            "sharding.capacity",
        )
        .await?;
    merge(
        "configmap",
        &system.name,
        &policy_cm,
        json!({"data": original_policy["data"]}),
    )?;
    checker.expect("shared-alb-quotas", "ok", "", "").await?;
    // The one judgement of the group (alb::health), from the controller's events on the
    // members: none recorded since the member was made (this cluster's controller does not
    // reconcile the test's group, and the test's own moto holds no ALB for it), so health
    // cannot be told (‼); then a failure (✗), then a later success (✓).
    checker
        .expect(
            "shared-alb-reconciles",
            "warn",
            &format!("group {group}: the controller has recorded no outcome"),
            "alb-status",
        )
        .await?;
    let ingress = format!("ing-{project}");
    let now = k8s_openapi::jiff::Timestamp::now();
    let event = |reason: &str, at: k8s_openapi::jiff::Timestamp| {
        json!({
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": format!("{ingress}.{}", reason.to_ascii_lowercase())},
            "involvedObject": {"kind": "Ingress", "namespace": app.name, "name": ingress, "apiVersion": "networking.k8s.io/v1"},
            "reason": reason, "message": format!("{reason} (check e2e)"), "type": "Warning",
            "source": {"component": "ingress"},
            "firstTimestamp": at.to_string(), "lastTimestamp": at.to_string(), "count": 1
        })
        .to_string()
    };
    let (ok, out) = apply(&app.name, &event("FailedDeployModel", now))?;
    ensure!(ok, "{out}");
    checker
        .expect(
            "shared-alb-reconciles",
            "fail",
            &format!("FailedDeployModel on Ingress {}/{ingress}", app.name),
            "alb-status",
        )
        .await?;
    let later = now + std::time::Duration::from_secs(5);
    let (ok, out) = apply(&app.name, &event("SuccessfullyReconciled", later))?;
    ensure!(ok, "{out}");
    checker
        .expect("shared-alb-reconciles", "ok", "", "")
        .await?;

    // ---- builder
    checker
        .expect("builder-namespace", "ok", &builder, "")
        .await?;
    checker
        .expect_with(
            &["--builder-namespace", &format!("ck-none-{id}")],
            "builder-namespace",
            "fail",
            "does not exist",
            "setup-builder",
        )
        .await?;
    checker
        .expect("builder-service-account", "ok", "", "")
        .await?;
    kubectl_ok(&["delete", "serviceaccount", "-n", &builder, "jockey-builder"])?;
    checker
        .expect(
            "builder-service-account",
            "fail",
            "does not exist",
            "setup-builder",
        )
        .await?;
    let (ok, out) = plugin(&["setup-builder", "-n", &builder])?;
    ensure!(ok, "{out}");
    checker
        .expect("builder-service-account", "ok", "", "")
        .await?;
    checker
        .expect("builder-pod-security", "ok", "baseline", "")
        .await?;
    let psa = "pod-security.kubernetes.io/enforce";
    merge(
        "namespace",
        "",
        &builder,
        json!({"metadata": {"labels": {psa: "restricted"}}}),
    )?;
    checker
        .expect("builder-pod-security", "fail", "restricted", "baseline")
        .await?;
    merge(
        "namespace",
        "",
        &builder,
        json!({"metadata": {"labels": {psa: "baseline"}}}),
    )?;
    checker.expect("builder-pod-security", "ok", "", "").await?;
    checker
        .expect("builder-leftover-credentials", "ok", "", "")
        .await?;
    kubectl_ok(&[
        "create",
        "secret",
        "generic",
        "aws-credentials",
        "-n",
        &builder,
        "--from-literal=AWS_ACCESS_KEY_ID=AKIAEXAMPLE",
    ])?;
    checker
        .expect(
            "builder-leftover-credentials",
            "fail",
            "long-lived AWS keys",
            "delete secret aws-credentials",
        )
        .await?;
    kubectl_ok(&["delete", "secret", "aws-credentials", "-n", &builder])?;
    checker
        .expect("builder-leftover-credentials", "ok", "", "")
        .await?;
    checker
        .expect("builder-credentials", "ok", &node.registry, "")
        .await?;
    let broker_cm = "jockey-broker-config";
    merge(
        "configmap",
        &system.name,
        broker_cm,
        json!({"data": {"IMAGE_REGISTRY": "123456789012.dkr.ecr.us-east-1.amazonaws.com", "BUILDER_ROLE_ARN": ""}}),
    )?;
    checker
        .expect(
            "builder-credentials",
            "fail",
            "BUILDER_ROLE_ARN is not set",
            "BUILDER_ROLE_ARN",
        )
        .await?;
    merge(
        "configmap",
        &system.name,
        broker_cm,
        json!({"data": {"IMAGE_REGISTRY": node.registry}}),
    )?;
    checker.expect("builder-credentials", "ok", "", "").await?;
    checker
        .expect("builder-broker", "ok", "available", "")
        .await?;
    scale(&system.name, "jockey-broker", 0)?;
    checker
        .expect("builder-broker", "fail", "0/0 available", "logs")
        .await?;
    scale(&system.name, "jockey-broker", 1)?;
    checker
        .expect("builder-broker", "ok", "1/1 available", "")
        .await?;

    // Everything repaired: all ✓, exit 0. The project goes first, so that the controller, which
    // serves the app namespace once it is labelled for it, has nothing of this test to build.
    kubectl_ok(&["delete", "ingress", "-n", &app.name, &ingress])?;
    merge(
        "namespace",
        "",
        &app.name,
        json!({"metadata": {"labels": {label_key: label_value}}}),
    )?;
    checker.expect("alb-class-params", "ok", "", "").await?;
    let run = checker.run(&[])?;
    let not_ok: Vec<&Value> = run
        .results
        .iter()
        .filter(|r| r["outcome"] != "ok")
        .collect();
    ensure!(not_ok.is_empty(), "not all ✓ after the repairs: {not_ok:?}");
    ensure!(run.code == Some(0), "{}", run.text);

    // The table: a ✗ line with its hint and README anchor, exit 1.
    scale(&kwok.name, "controller", 0)?;
    checker
        .expect("alb-controller-ready", "fail", "", "")
        .await?;
    let table_args: Vec<&str> = checker
        .args
        .iter()
        .map(String::as_str)
        .take_while(|a| *a != "-o")
        .collect();
    let env: Vec<(&str, &str)> = checker
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let out = jockey(&table_args, &env)?;
    let table = String::from_utf8_lossy(&out.stdout).to_string();
    ensure!(out.status.code() == Some(1), "{}", text(&out));
    ensure!(
        table.contains(
            "aws-load-balancer-controller\n----------------------------\n✗ alb-controller-ready:"
        ) && table.contains("    see: README.md#check-alb-controller-ready")
            && table.contains("✓ webhook-dry-run:")
            && table.contains("Status check results are ✗"),
        "{table}"
    );

    let (ok, out) = plugin(&["uninstall", "-n", &system.name, "--name", &name])?;
    ensure!(ok, "{out}");
    cleanup.done = true;
    kubectl_ok(&["delete", "namespace", &builder, "--wait=false"])?;
    system.cleanup().await?;
    app.cleanup().await?;
    kwok.cleanup().await?;
    Ok(())
}

/// Deletes a webhook configuration the test made, also when it fails.
struct DeleteConfiguration(String);

impl Drop for DeleteConfiguration {
    fn drop(&mut self) {
        let _ = jockey_e2e::kubectl(&[
            "delete",
            "mutatingwebhookconfiguration",
            &self.0,
            "--ignore-not-found",
        ]);
    }
}

#[tokio::test]
async fn pre_checks_conflicts_cert_manager_and_the_callers_rbac() -> Result<()> {
    let name = format!("jw-pre-{}", std::process::id() % 100_000);
    let base = [
        "check",
        "--pre",
        "--no-aws",
        "-n",
        "ck-pre-system",
        "--name",
        &name,
        "-o",
        "json",
    ];
    let run = |extra: &[&str]| -> Result<(Option<i32>, Vec<Value>, String)> {
        let args: Vec<&str> = base.iter().chain(extra).copied().collect();
        let out = jockey(&args, &[])?;
        let results: Vec<Value> = serde_json::from_slice(&out.stdout)
            .with_context(|| format!("no JSON list:\n{}", text(&out)))?;
        Ok((out.status.code(), results, text(&out)))
    };
    let find = |results: &[Value], id: &str| -> Result<Value> {
        results
            .iter()
            .find(|r| r["id"] == id)
            .cloned()
            .with_context(|| format!("no {id} in {results:?}"))
    };

    // An admin may install, and nothing conflicts; no cert-manager line unless asked for.
    let (_, results, out) = run(&[])?;
    ensure!(find(&results, "pre-rbac")?["outcome"] == "ok", "{out}");
    ensure!(find(&results, "pre-conflicts")?["outcome"] == "ok", "{out}");
    ensure!(find(&results, "pre-cert-manager").is_err(), "{out}");
    ensure!(
        find(&results, "cluster-version")?["outcome"] == "ok",
        "{out}"
    );
    ensure!(
        find(&results, "webhook-replicas").is_err(),
        "--pre checks no installed webhook: {out}"
    );

    // Someone without cluster-admin may not, and is told what is missing.
    let (code, results, out) = run(&["--as", "ck-nobody"])?;
    let rbac = find(&results, "pre-rbac")?;
    ensure!(rbac["outcome"] == "fail", "{out}");
    let msg = rbac["message"].as_str().unwrap_or_default();
    ensure!(
        msg.contains("create clusterroles.rbac.authorization.k8s.io")
            && msg.contains("create mutatingwebhookconfigurations.admissionregistration.k8s.io")
            && msg.contains("in ck-pre-system"),
        "{msg}"
    );
    ensure!(
        rbac["hint"]
            .as_str()
            .unwrap_or_default()
            .contains("cluster-admin"),
        "{rbac}"
    );
    ensure!(code == Some(1), "{out}");

    // A webhook configuration of the same name that another tool made conflicts.
    let _guard = DeleteConfiguration(name.clone());
    let (ok, out) = webhook_support::kubectl_stdin(
        &["create", "-f", "-"],
        &json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
                "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "Helm"}}})
        .to_string(),
    )?;
    ensure!(ok, "{out}");
    let (_, results, out) = run(&[])?;
    let conflicts = find(&results, "pre-conflicts")?;
    ensure!(conflicts["outcome"] == "fail", "{out}");
    ensure!(
        conflicts["message"]
            .as_str()
            .unwrap_or_default()
            .contains(&format!("MutatingWebhookConfiguration {name}")),
        "{conflicts}"
    );
    ensure!(
        conflicts["hint"]
            .as_str()
            .unwrap_or_default()
            .contains("--name"),
        "{conflicts}"
    );
    kubectl_ok(&["delete", "mutatingwebhookconfiguration", &name])?;
    let (_, results, out) = run(&[])?;
    ensure!(find(&results, "pre-conflicts")?["outcome"] == "ok", "{out}");

    // cert-manager, when asked for: the local cluster has none.
    let (_, results, out) = run(&["--cert-manager"])?;
    let cm = find(&results, "pre-cert-manager")?;
    ensure!(
        cm["outcome"] == "fail"
            && cm["message"]
                .as_str()
                .unwrap_or_default()
                .contains("certificates.cert-manager.io")
            && cm["hint"]
                .as_str()
                .unwrap_or_default()
                .contains("install cert-manager"),
        "{out}"
    );
    Ok(())
}
