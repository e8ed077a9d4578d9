//! `kubectl jockey install` / `uninstall` against the real API server: the webhook of
//! `manifests/base` with a generated CA and serving certificate in Secrets, the caBundle set,
//! renewal near expiry, and a clean removal.
//!
//! The install is scoped so it can never affect another test: its own name, a namespace
//! selector no namespace carries, failurePolicy Ignore, and a shared ALB group of its own (the
//! admission policy it installs applies to every namespace, as in a real install).

mod webhook_support;

use anyhow::{Context, Result};
use base64::Engine;
use jockey_e2e::{TestNamespace, client};
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use serde_json::Value;
use std::sync::Arc;
use webhook_support::{get_json, plugin};

fn secret_field(secret: &Value, key: &str) -> Result<String> {
    let b = secret["data"][key]
        .as_str()
        .with_context(|| format!("secret has no {key}: {secret}"))?;
    Ok(String::from_utf8(
        base64::engine::general_purpose::STANDARD.decode(b)?,
    )?)
}

fn cluster_json(kind: &str, name: &str) -> Result<Option<Value>> {
    let out = jockey_e2e::kubectl(&["get", kind, name, "-o", "json"])?;
    Ok(out
        .status
        .success()
        .then(|| serde_json::from_slice(&out.stdout))
        .transpose()?)
}

/// Verifies `cert_pem` chains to the CAs in `bundle_pem` and is valid for `host`.
fn verify(cert_pem: &str, bundle_pem: &str, host: &str) -> Result<()> {
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_slice_iter(bundle_pem.as_bytes()) {
        roots.add(ca?)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier =
        rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()?;
    let cert = CertificateDer::from_pem_slice(cert_pem.as_bytes())?;
    verifier.verify_server_cert(
        &cert,
        &[],
        &ServerName::try_from(host.to_string())?,
        &[],
        UnixTime::now(),
    )?;
    Ok(())
}

/// Uninstalls when the test ends before its own uninstall (a panic or an early error): an install
/// leaves cluster-scoped objects (an admission policy bound in every namespace among them) that
/// must not outlive a failed test.
struct UninstallUnlessDone {
    ns: String,
    name: String,
    done: bool,
}

impl Drop for UninstallUnlessDone {
    fn drop(&mut self) {
        if !self.done {
            let _ = plugin(&["uninstall", "-n", &self.ns, "--name", &self.name]);
        }
    }
}

#[tokio::test]
async fn install_creates_certificates_sets_the_ca_bundle_renews_and_uninstalls() -> Result<()> {
    let client = client().await?;
    let ns = TestNamespace::create(&client, "wh-install").await?;
    let name = format!("jw-e2e-{}", std::process::id() % 100_000);
    let mut guard = UninstallUnlessDone {
        ns: ns.name.clone(),
        name: name.clone(),
        done: false,
    };
    let scope = format!("jockey-e2e-webhook={name}");
    let group = format!("{name}-alb");
    let client_ca = webhook_support::webhook_client_ca()?;
    let client_ca = client_ca.to_string_lossy().to_string();
    let install = |extra: &[&str]| -> Result<(bool, String)> {
        let mut args = vec![
            "install",
            "-n",
            &ns.name,
            "--name",
            &name,
            "--alb-group",
            &group,
            "--namespace-selector",
            &scope,
            "--failure-policy",
            "ignore",
            "--image",
            "reg.example.com/jockey-webhook:e2e",
            "--image-registry",
            "reg.example.com",
            // Only the API server may post reviews, and only from its address range.
            "--client-ca-file",
            &client_ca,
            "--api-server-cidr",
            "127.0.0.1/32",
        ];
        args.extend_from_slice(extra);
        plugin(&args)
    };

    let (ok, out) = install(&[])?;
    assert!(ok, "{out}");
    assert!(
        out.contains(&format!("secret/{name}-ca created (new CA)")),
        "{out}"
    );
    for (kind, n) in [
        ("deployment", name.clone()),
        ("service", name.clone()),
        ("serviceaccount", name.clone()),
        ("poddisruptionbudget", name.clone()),
        ("configmap", format!("{name}-config")),
        ("configmap", format!("{name}-policy")),
        ("configmap", format!("{name}-client-ca")),
        ("networkpolicy", name.clone()),
    ] {
        let obj = get_json(&ns.name, kind, &n)?.with_context(|| format!("{kind}/{n} missing"))?;
        assert_eq!(
            obj["metadata"]["labels"]["app.kubernetes.io/managed-by"],
            "kubectl-jockey"
        );
    }
    let config = get_json(&ns.name, "configmap", &format!("{name}-config"))?.context("config")?;
    assert_eq!(config["data"]["IMAGE_REGISTRY"], "reg.example.com");
    let stored_ca =
        get_json(&ns.name, "configmap", &format!("{name}-client-ca"))?.context("client CA")?;
    assert_eq!(
        stored_ca["data"]["ca.crt"].as_str(),
        Some(std::fs::read_to_string(&client_ca)?.as_str())
    );
    // The API server accepted the NetworkPolicy: the webhook port, from the given range only.
    let np = get_json(&ns.name, "networkpolicy", &name)?.context("networkpolicy")?;
    assert_eq!(
        np["spec"]["ingress"],
        serde_json::json!([{ "from": [{ "ipBlock": { "cidr": "127.0.0.1/32" } }],
                             "ports": [{ "port": "https", "protocol": "TCP" }] }])
    );
    let d = get_json(&ns.name, "deployment", &name)?.context("deployment")?;
    let pod = &d["spec"]["template"]["spec"];
    assert_eq!(
        pod["containers"][0]["image"],
        "reg.example.com/jockey-webhook:e2e"
    );
    assert_eq!(
        pod["volumes"][0]["secret"]["secretName"],
        format!("{name}-tls")
    );
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["containers"][0]["securityContext"]["readOnlyRootFilesystem"],
        true
    );
    for kind in ["clusterrole", "clusterrolebinding"] {
        assert!(
            cluster_json(kind, &name)?.is_some(),
            "{kind}/{name} missing"
        );
    }
    // The webhook renews its serving certificate itself from the CA Secret; the API server's
    // RBAC lets its service account do exactly that with Secrets, and nothing more.
    let args = pod["containers"][0]["args"].to_string();
    assert!(
        args.contains(&format!("\"--renew-ca-secret={name}-ca\""))
            && args.contains(&format!("\"--renew-tls-secret={name}-tls\""))
            && args.contains("\"--client-ca-file=/etc/jockey-webhook/client-ca/ca.crt\""),
        "{args}"
    );
    let sa = format!("system:serviceaccount:{}:{name}", ns.name);
    for (verb, resource, allowed) in [
        ("get", format!("secret/{name}-ca"), true),
        ("get", format!("secret/{name}-tls"), true),
        ("update", format!("secret/{name}-tls"), true),
        ("update", format!("secret/{name}-ca"), false),
        ("patch", format!("secret/{name}-tls"), false),
        ("get", "secret/someone-else".to_string(), false),
        ("list", "secrets".to_string(), false),
        ("create", "secrets".to_string(), false),
    ] {
        let out = jockey_e2e::kubectl(&[
            "auth", "can-i", verb, &resource, "-n", &ns.name, "--as", &sa,
        ])?;
        let answer = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert_eq!(
            answer,
            if allowed { "yes" } else { "no" },
            "{sa} {verb} {resource}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // The serving certificate: in <name>-tls, signed by the CA in ca.crt, valid for the Service.
    let tls = get_json(&ns.name, "secret", &format!("{name}-tls"))?.context("tls secret")?;
    assert_eq!(tls["type"], "kubernetes.io/tls");
    let cert = secret_field(&tls, "tls.crt")?;
    let ca = secret_field(&tls, "ca.crt")?;
    assert!(secret_field(&tls, "tls.key")?.contains("PRIVATE KEY"));
    verify(&cert, &ca, &format!("{name}.{}.svc", ns.name))?;
    // The caBundle of both configurations is that CA; they point at the Service and are scoped.
    for kind in [
        "mutatingwebhookconfiguration",
        "validatingwebhookconfiguration",
    ] {
        let w = cluster_json(kind, &name)?.with_context(|| format!("{kind}/{name} missing"))?;
        let hook = &w["webhooks"][0];
        let bundle = base64::engine::general_purpose::STANDARD.decode(
            hook["clientConfig"]["caBundle"]
                .as_str()
                .unwrap_or_default(),
        )?;
        assert_eq!(String::from_utf8(bundle)?, ca, "{kind}");
        assert_eq!(hook["clientConfig"]["service"]["name"], name.as_str());
        assert_eq!(
            hook["clientConfig"]["service"]["namespace"],
            ns.name.as_str()
        );
        assert_eq!(
            hook["namespaceSelector"]["matchLabels"]["jockey-e2e-webhook"],
            name.as_str()
        );
        assert_eq!(hook["failurePolicy"], "Ignore");
        // The validating webhook records claims, never on a dry run.
        let side_effects = if kind.starts_with("validating") {
            "NoneOnDryRun"
        } else {
            "None"
        };
        assert_eq!(hook["sideEffects"], side_effects);
    }
    // The admission policy keeps unlabelled Ingresses out of the shared group, everywhere, and
    // the API server enforces it with no webhook running (this install's pods never start).
    let policy = format!("{name}-shared-alb");
    for kind in [
        "validatingadmissionpolicy",
        "validatingadmissionpolicybinding",
    ] {
        let obj =
            cluster_json(kind, &policy)?.with_context(|| format!("{kind}/{policy} missing"))?;
        assert_eq!(
            obj["metadata"]["labels"]["app.kubernetes.io/managed-by"],
            "kubectl-jockey"
        );
    }
    let squat = format!(
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: squat\n  annotations:\n    alb.ingress.kubernetes.io/group.name: {group}-2\nspec:\n  rules:\n  - host: squat.example.com\n"
    );
    webhook_support::wait_until_refused(
        "the installed admission policy to deny an unlabelled Ingress",
        std::time::Duration::from_secs(30),
        &ns.name,
        &squat,
        "has no jockey.agentops.ai/project label",
    )
    .await?;
    // Least privilege: the webhook reads cluster-wide, writes only Leases in its namespace.
    let sa = format!("system:serviceaccount:{}:{name}", ns.name);
    for (verb, resource, namespace, allowed) in [
        (
            "create",
            "leases.coordination.k8s.io",
            ns.name.as_str(),
            true,
        ),
        (
            "delete",
            "leases.coordination.k8s.io",
            ns.name.as_str(),
            true,
        ),
        ("create", "leases.coordination.k8s.io", "default", false),
        ("watch", "ingresses.networking.k8s.io", "default", true),
        ("create", "ingresses.networking.k8s.io", "default", false),
        ("list", "deployments.apps", "default", true),
        ("patch", "deployments.apps", "default", false),
        ("list", "services", "default", true),
        ("delete", "services", "default", false),
        ("get", "secrets", "default", false),
        ("get", "secrets", ns.name.as_str(), false),
        ("list", "namespaces", "", true),
        // What a claim's evidence reads: the namespace of a CREATE, the object of an UPDATE.
        ("get", "namespaces", "", true),
        ("get", "deployments.apps", "default", true),
        ("get", "services", "default", true),
        ("get", "ingresses.networking.k8s.io", "default", true),
        // The image recorded on a Deployment's instance ConfigMap (a named one, metadata only
        // is read); never a listing of a namespace's ConfigMaps, never a write.
        ("get", "configmaps", "default", true),
        ("list", "configmaps", "default", false),
        ("patch", "configmaps", "default", false),
        ("update", "namespaces", "", false),
    ] {
        let mut args = vec!["auth", "can-i", verb, resource, "--as", &sa];
        if !namespace.is_empty() {
            args.extend(["-n", namespace]);
        }
        let out = jockey_e2e::kubectl(&args)?;
        let answer = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert_eq!(
            answer,
            if allowed { "yes" } else { "no" },
            "kubectl auth can-i {verb} {resource} -n {namespace:?} --as {sa}"
        );
    }

    // Run again: nothing to renew.
    let (ok, out) = install(&[])?;
    assert!(ok, "{out}");
    assert!(
        out.contains(&format!("secret/{name}-ca unchanged")),
        "{out}"
    );
    assert!(
        out.contains(&format!("secret/{name}-tls unchanged")),
        "{out}"
    );
    let tls2 = get_json(&ns.name, "secret", &format!("{name}-tls"))?.context("tls secret")?;
    assert_eq!(secret_field(&tls2, "tls.crt")?, cert);

    // A server-side dry run changes nothing either.
    let (ok, out) = install(&["--dry-run", "server", "--renew-before-days", "400"])?;
    assert!(ok && out.contains("(server dry run)"), "{out}");
    let tls3 = get_json(&ns.name, "secret", &format!("{name}-tls"))?.context("tls secret")?;
    assert_eq!(secret_field(&tls3, "tls.crt")?, cert);

    // Near expiry (renew when less than 400 days are left of 365): a new serving certificate
    // from the same CA, still trusted by the caBundle.
    let (ok, out) = install(&["--renew-before-days", "400"])?;
    assert!(ok, "{out}");
    assert!(out.contains(&format!("secret/{name}-tls written")), "{out}");
    let tls4 = get_json(&ns.name, "secret", &format!("{name}-tls"))?.context("tls secret")?;
    let renewed = secret_field(&tls4, "tls.crt")?;
    assert_ne!(renewed, cert);
    assert_eq!(secret_field(&tls4, "ca.crt")?, ca);
    verify(&renewed, &ca, &format!("{name}.{}.svc", ns.name))?;

    // The tenant ClusterRole comes with the install; uninstall leaves it while a tenant holds it.
    let role =
        cluster_json("clusterrole", "jockey-tenant")?.context("clusterrole/jockey-tenant")?;
    assert_eq!(
        role["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "kubectl-jockey"
    );
    let tenant = TestNamespace::create(&client, "wh-install-tenant").await?;
    let (ok, out) = plugin(&["tenant", "grant", &tenant.name, "--user", "someone"])?;
    assert!(ok, "{out}");

    // Uninstall removes everything install made, and leaves the namespace it did not make.
    let (ok, out) = plugin(&["uninstall", "-n", &ns.name, "--name", &name])?;
    assert!(ok, "{out}");
    assert!(
        out.contains(&format!("namespace/{} left alone", ns.name)),
        "{out}"
    );
    let kept = out
        .lines()
        .find(|l| l.starts_with("clusterrole/jockey-tenant left in place"))
        .unwrap_or_default();
    assert!(kept.contains(&tenant.name), "{out}");
    assert!(cluster_json("clusterrole", "jockey-tenant")?.is_some());
    // Once revoked, it goes (unless another namespace, e.g. a test's on its way out, still
    // binds it: then it is left naming that one, never this one).
    let (ok, revoked) = plugin(&["tenant", "revoke", &tenant.name, "--user", "someone"])?;
    assert!(ok, "{revoked}");
    let (ok, again) = plugin(&["uninstall", "-n", &ns.name, "--name", &name])?;
    assert!(ok, "{again}");
    assert!(
        again.contains("clusterrole/jockey-tenant deleted")
            || again
                .lines()
                .any(|l| l.contains("jockey-tenant left in place") && !l.contains(&tenant.name)),
        "{again}"
    );
    tenant.cleanup().await?;
    for (kind, n) in [
        ("deployment", name.clone()),
        ("service", name.clone()),
        ("serviceaccount", name.clone()),
        ("poddisruptionbudget", name.clone()),
        ("configmap", format!("{name}-config")),
        ("configmap", format!("{name}-policy")),
        ("configmap", format!("{name}-client-ca")),
        ("networkpolicy", name.clone()),
        ("secret", format!("{name}-tls")),
        ("secret", format!("{name}-ca")),
    ] {
        assert!(
            get_json(&ns.name, kind, &n)?.is_none(),
            "{kind}/{n} still there"
        );
    }
    for kind in [
        "clusterrole",
        "clusterrolebinding",
        "mutatingwebhookconfiguration",
        "validatingwebhookconfiguration",
    ] {
        assert!(
            cluster_json(kind, &name)?.is_none(),
            "{kind}/{name} still there"
        );
    }
    for kind in [
        "validatingadmissionpolicy",
        "validatingadmissionpolicybinding",
    ] {
        assert!(
            cluster_json(kind, &policy)?.is_none(),
            "{kind}/{policy} still there"
        );
    }
    for kind in ["role", "rolebinding"] {
        assert!(
            get_json(&ns.name, kind, &name)?.is_none(),
            "{kind}/{name} still there"
        );
    }
    let (ok, out) = plugin(&["uninstall", "-n", &ns.name, "--name", &name])?;
    assert!(ok && out.contains("nothing to uninstall"), "{out}");
    guard.done = true;

    ns.cleanup().await?;
    Ok(())
}
