//! Every object of `manifests/` is accepted by the real API server (`kubectl apply
//! --dry-run=server -k manifests/`), and so is the cert-manager overlay once cert-manager's CRDs
//! are installed; the overlay also renders with CA injection.

use anyhow::Result;
use jockey_e2e::{kubectl, repo_root};
use std::time::Duration;

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test]
async fn every_manifest_is_accepted_by_a_server_side_dry_run() -> Result<()> {
    let manifests = repo_root().join("manifests");
    let manifests = manifests.to_string_lossy().to_string();
    // A server-side dry run does not create the namespace, so the namespaced objects need it to
    // exist; create it for the test when it is missing (waiting out a previous run's deletion)
    // and remove it again afterwards.
    let phase = || -> Result<Option<String>> {
        let out = kubectl(&[
            "get",
            "namespace",
            "jockey-system",
            "-o",
            "jsonpath={.status.phase}",
        ])?;
        Ok(out
            .status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).to_string()))
    };
    let mut created = false;
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    loop {
        match phase()?.as_deref() {
            Some("Active") => break,
            Some(_) => {}
            None => {
                if kubectl(&["create", "namespace", "jockey-system"])?
                    .status
                    .success()
                {
                    created = true;
                    let _ = kubectl(&["label", "namespace", "jockey-system", "jockey-e2e=true"]);
                }
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "namespace jockey-system did not become usable"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // The broker's Role lives in the builder namespace (`builder` by default), which
    // `setup-builder` or `make demo` creates: made here when no earlier test or demo has.
    let made_builder = !kubectl(&["get", "namespace", "builder"])?.status.success()
        && kubectl(&["create", "namespace", "builder"])?
            .status
            .success();
    if made_builder {
        let _ = kubectl(&["label", "namespace", "builder", "jockey-e2e=true"]);
    }
    let out = kubectl(&["apply", "--dry-run=server", "-k", &manifests])?;
    if made_builder {
        let _ = kubectl(&["delete", "namespace", "builder", "--wait=false"]);
    }
    let all = text(&out);
    // The cert-manager overlay, against cert-manager's real CRDs (installed from its Go module
    // by tests/cluster/build.sh): its Certificate and Issuer must be accepted too.
    let crds = repo_root().join(".cache/crds/cert-manager");
    let crds = crds.to_string_lossy().to_string();
    let installed = kubectl(&["apply", "--server-side", "-f", &crds])?;
    let installed_text = text(&installed);
    // `kubectl wait` fails at once ("accessor error") on a CRD so new the API server has not
    // written its status yet: ask again until it has an answer.
    let mut tries = 0;
    let established = loop {
        let out = kubectl(&[
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd/certificates.cert-manager.io",
            "crd/issuers.cert-manager.io",
        ])?;
        tries += 1;
        if out.status.success() || !text(&out).contains("accessor error") || tries == 30 {
            break out;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let overlay = kubectl(&[
        "apply",
        "--dry-run=server",
        "-k",
        &format!("{manifests}/cert-manager"),
    ])?;
    let overlay_text = text(&overlay);
    if created {
        let _ = kubectl(&["delete", "namespace", "jockey-system", "--wait=false"]);
    }
    assert!(installed.status.success(), "{installed_text}");
    assert!(established.status.success(), "{}", text(&established));
    assert!(overlay.status.success(), "{overlay_text}");
    for object in [
        "certificate.cert-manager.io/jockey-webhook",
        "issuer.cert-manager.io/",
        "mutatingwebhookconfiguration.admissionregistration.k8s.io/jockey-webhook",
        "deployment.apps/jockey-webhook",
    ] {
        assert!(
            overlay_text.contains(object),
            "{object} missing from the overlay's dry run:\n{overlay_text}"
        );
    }
    assert!(out.status.success(), "{all}");
    for object in [
        "namespace/jockey-system",
        "serviceaccount/jockey-webhook",
        "clusterrole.rbac.authorization.k8s.io/jockey-webhook",
        "clusterrolebinding.rbac.authorization.k8s.io/jockey-webhook",
        // The tenant role, which `kubectl jockey tenant grant` binds per namespace.
        "clusterrole.rbac.authorization.k8s.io/jockey-tenant",
        "configmap/jockey-webhook-config-",
        "configmap/jockey-webhook-policy-",
        "service/jockey-webhook",
        "networkpolicy.networking.k8s.io/jockey-webhook",
        "deployment.apps/jockey-webhook",
        "poddisruptionbudget.policy/jockey-webhook",
        "mutatingwebhookconfiguration.admissionregistration.k8s.io/jockey-webhook",
        "validatingwebhookconfiguration.admissionregistration.k8s.io/jockey-webhook",
    ] {
        assert!(all.contains(object), "{object} missing from:\n{all}");
    }
    assert!(!all.contains("PodSecurity"), "{all}");

    // The cert-manager overlay: its base objects are the same; its own objects are
    // cert-manager kinds (CRDs this cluster does not have), so it is checked rendered.
    let out = kubectl(&["kustomize", &format!("{manifests}/cert-manager")])?;
    let rendered = text(&out);
    assert!(out.status.success(), "{rendered}");
    assert_eq!(
        rendered
            .matches("cert-manager.io/inject-ca-from: jockey-system/jockey-webhook")
            .count(),
        2,
        "{rendered}"
    );
    for kind in [
        "kind: Certificate",
        "kind: Issuer",
        "secretName: jockey-webhook-tls",
    ] {
        assert!(rendered.contains(kind), "{kind} missing:\n{rendered}");
    }
    Ok(())
}

/// Admin settings have one source: with kustomize, the admission policy's binding takes the
/// webhook's own configuration ConfigMap (generated from `config.env`, its name hashed) as its
/// parameter, so a changed `ALB_SHARED_GROUP_NAME` or `ALB_ALLOWED_GROUPS` moves the policy too.
#[test]
fn the_admission_policy_reads_the_configmap_config_env_generates() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let copy = tmp.path().join("manifests");
    let status = std::process::Command::new("cp")
        .arg("-r")
        .arg(repo_root().join("manifests"))
        .arg(&copy)
        .status()?;
    assert!(status.success());
    let env = copy.join("base/config.env");
    let text_env = std::fs::read_to_string(&env)?
        .replace(
            "ALB_SHARED_GROUP_NAME=alb-deployments",
            "ALB_SHARED_GROUP_NAME=team-albs",
        )
        .replace("ALB_ALLOWED_GROUPS=", "ALB_ALLOWED_GROUPS=alb-internal");
    assert!(text_env.contains("team-albs") && text_env.contains("alb-internal"));
    std::fs::write(&env, text_env)?;
    let out = kubectl(&["kustomize", &copy.to_string_lossy()])?;
    let rendered = text(&out);
    assert!(out.status.success(), "{rendered}");
    let docs: Vec<serde_json::Value> = rendered
        .split("\n---\n")
        .filter_map(|d| serde_yaml::from_str(d).ok())
        .collect();
    let find = |kind: &str, prefix: &str| {
        docs.iter()
            .find(|d| {
                d["kind"] == kind
                    && d["metadata"]["name"]
                        .as_str()
                        .is_some_and(|n| n.starts_with(prefix))
            })
            .cloned()
            .unwrap_or_default()
    };
    let config = find("ConfigMap", "jockey-webhook-config");
    let binding = find(
        "ValidatingAdmissionPolicyBinding",
        "jockey-webhook-shared-alb",
    );
    assert_eq!(config["data"]["ALB_SHARED_GROUP_NAME"], "team-albs");
    assert_eq!(config["data"]["ALB_ALLOWED_GROUPS"], "alb-internal");
    assert_ne!(
        config["metadata"]["name"], "jockey-webhook-config",
        "no hash suffix"
    );
    assert_eq!(
        binding["spec"]["paramRef"]["name"], config["metadata"]["name"],
        "the binding does not name the generated ConfigMap:\n{rendered}"
    );
    assert_eq!(binding["spec"]["paramRef"]["namespace"], "jockey-system");
    // Nothing of the configuration is written into the policy itself.
    let policy = find("ValidatingAdmissionPolicy", "jockey-webhook-shared-alb");
    let policy_text = policy.to_string();
    assert!(!policy_text.contains("team-albs") && !policy_text.contains("alb-internal"));
    Ok(())
}
