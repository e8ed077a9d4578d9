//! The `jockey-webhook` binary as a user starts it: settings by flag over environment over
//! default, and a serving certificate that cannot be served refused at start with the reason and
//! the fix.

use jockey_core::certs;
use std::path::Path;
use std::process::{Command, Output};

fn webhook() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_jockey-webhook"));
    for k in [
        "DEPLOYMENT_DOMAIN",
        "ALB_SHARED_GROUP_NAME",
        "IMAGE_REGISTRY",
        "IMAGE_REPOSITORY_PREFIX",
        "ALB_CERTIFICATE_ARN",
        "POD_NAMESPACE",
        "JOCKEY_CLAIMS_NAMESPACE",
        "JOCKEY_CLIENT_CA_FILE",
        "KUBECONFIG",
    ] {
        c.env_remove(k);
    }
    c
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The shared group the `registration` subcommand's admission policy guards (its parameter).
fn group(dir: &Path, env: Option<&str>, flag: Option<&str>) -> String {
    let ca = dir.join("ca.crt");
    let mut c = webhook();
    if let Some(v) = env {
        c.env("ALB_SHARED_GROUP_NAME", v);
    }
    if let Some(v) = flag {
        c.args(["--alb-shared-group-name", v]);
    }
    let out = c
        .args([
            "registration",
            "--url",
            "https://127.0.0.1:9443",
            "--ca-file",
        ])
        .arg(&ca)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // The admission policy reads the group from its parameter, the ConfigMap rendered with it.
    let params = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["kind"] == "ConfigMap")
        .expect("the admission policy's parameter");
    params["data"]["ALB_SHARED_GROUP_NAME"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn flag_beats_environment_beats_default() {
    let dir = tempfile::tempdir().unwrap();
    let ca = certs::new_ca("c", 1).unwrap();
    std::fs::write(dir.path().join("ca.crt"), &ca.cert_pem).unwrap();
    assert_eq!(group(dir.path(), None, None), "alb-deployments");
    assert_eq!(group(dir.path(), Some("from-env"), None), "from-env");
    assert_eq!(
        group(dir.path(), Some("from-env"), Some("from-flag")),
        "from-flag"
    );
    // An empty variable (`IMAGE_REGISTRY=` in config.env) counts as unset.
    assert_eq!(group(dir.path(), Some(""), None), "alb-deployments");
}

fn start_with(dir: &Path, pair: &certs::Pair) -> Output {
    std::fs::write(dir.join("tls.crt"), &pair.cert_pem).unwrap();
    std::fs::write(dir.join("tls.key"), &pair.key_pem).unwrap();
    webhook()
        .args(["--listen", "127.0.0.1:0", "--tls-cert-file"])
        .arg(dir.join("tls.crt"))
        .arg("--tls-key-file")
        .arg(dir.join("tls.key"))
        // Never reached: the certificate is refused first.
        .args(["--kubeconfig", "/nonexistent/kubeconfig"])
        .output()
        .unwrap()
}

#[test]
fn a_pair_that_cannot_be_served_is_refused_at_start_with_the_reason_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let ca = certs::new_ca("c", 10).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let names = ["127.0.0.1".to_string()];
    let expired = certs::issue_serving_between(&ca, &names, now - 7200, now - 3600).unwrap();
    let out = start_with(dir.path(), &expired);
    let msg = text(&out);
    assert!(!out.status.success(), "{msg}");
    assert!(
        msg.contains(&format!(
            "tls.crt: the serving certificate cannot be served: it expired at {}",
            certs::rfc3339(now - 3600)
        )),
        "{msg}"
    );
    assert!(
        msg.contains("kubectl jockey install") && msg.contains("--renew-ca-secret"),
        "{msg}"
    );
    assert!(!msg.contains("kubeconfig"), "{msg}");

    let early = certs::issue_serving_between(&ca, &names, now + 3600, now + 7200).unwrap();
    let out = start_with(dir.path(), &early);
    let msg = text(&out);
    assert!(!out.status.success(), "{msg}");
    assert!(
        msg.contains(&format!(
            "it is not valid before {}",
            certs::rfc3339(now + 3600)
        )),
        "{msg}"
    );
}

#[test]
fn a_client_ca_file_that_is_no_ca_is_refused_at_start_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let ca = certs::new_ca("c", 10).unwrap();
    let serving = certs::issue_serving(&ca, "c", &["127.0.0.1".into()], 1).unwrap();
    std::fs::write(dir.path().join("tls.crt"), &serving.cert_pem).unwrap();
    std::fs::write(dir.path().join("tls.key"), &serving.key_pem).unwrap();
    std::fs::write(dir.path().join("key-only.pem"), &ca.key_pem).unwrap();
    for (file, env, words) in [
        ("missing.crt", false, "reading --client-ca-file"),
        ("key-only.pem", true, "contains no certificate"),
    ] {
        let path = dir.path().join(file);
        let mut c = webhook();
        c.args(["--listen", "127.0.0.1:0", "--tls-cert-file"])
            .arg(dir.path().join("tls.crt"))
            .arg("--tls-key-file")
            .arg(dir.path().join("tls.key"))
            // Never reached: the client CA is refused first.
            .args(["--kubeconfig", "/nonexistent/kubeconfig"]);
        if env {
            c.env("JOCKEY_CLIENT_CA_FILE", &path);
        } else {
            c.arg("--client-ca-file").arg(&path);
        }
        let out = c.output().unwrap();
        let msg = text(&out);
        assert!(!out.status.success(), "{msg}");
        assert!(
            msg.contains(&path.display().to_string()) && msg.contains(words),
            "{msg}"
        );
        assert!(!msg.contains("kubeconfig"), "{msg}");
    }
    // --client-name narrows a client CA; alone it means nothing.
    let out = webhook()
        .args(["--client-name", "kube-apiserver", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    let msg = text(&out);
    assert!(
        !out.status.success() && msg.contains("--client-ca-file"),
        "{msg}"
    );
}

#[test]
fn renewal_flags_come_in_pairs() {
    for (args, missing) in [
        (&["--renew-ca-secret", "x-ca"][..], "--renew-tls-secret"),
        (
            &["--renew-ca-cert-file", "ca.crt"][..],
            "--renew-ca-key-file",
        ),
    ] {
        let out = webhook().args(args).arg("version").output().unwrap();
        let msg = text(&out);
        assert!(!out.status.success(), "{msg}");
        assert!(msg.contains(missing), "{msg}");
    }
    let out = webhook()
        .args([
            "--renew-ca-secret",
            "a",
            "--renew-tls-secret",
            "b",
            "--renew-ca-cert-file",
            "c",
            "--renew-ca-key-file",
            "d",
            "version",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(text(&out).contains("cannot be used with"), "{}", text(&out));
}
