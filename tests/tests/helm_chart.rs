//! The Helm chart `charts/jockey` against the two other renderings of the same installation, with
//! the real `helm` (v4, built from the Go module proxy by tests/tools/build.sh):
//!
//! - `helm lint`, and a misspelt value refused by `values.schema.json`;
//! - `helm template` diffed against `manifests/` (kustomize: the base, the broker, the
//!   cert-manager overlay, the monitoring objects) and against `kubectl jockey install
//!   --dry-run=client`, object by object, with defaults and with every option both take;
//! - (helm_chart_install.rs) `helm install` on the real node and `helm upgrade` under load.
//!
//! Which one is the source: `manifests/` (its webhook configurations and admission policy, and
//! the tenant role, are in turn jockey-core's rendering, kept equal by unit tests). The chart reads
//! the generated or verbatim parts through symlinks in charts/jockey/files/ and templates the
//! rest; install embeds manifests/ with include_str!. This test is what fails when they drift.
//!
//! What the comparison leaves out, and why: the bookkeeping labels of a Helm release and
//! install's `managed-by`, the hash kustomize appends to generated ConfigMap names (install and
//! the chart roll the pods by an annotation instead, whose value is left out too), certificate
//! material (Secrets' data and annotations, caBundle: made fresh by each), the policy file's
//! comments (compared parsed), Helm's `resource-policy: keep` on the CRD, and kustomize's
//! `app.kubernetes.io/name: jockey-webhook` on the tenant ClusterRole (install and the chart name
//! it jockey-tenant, whatever the install's name).

use anyhow::{Context, Result, bail, ensure};
use jockey_e2e::{repo_root, tool_bin_dir};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::process::Command;

mod helm_support;
mod webhook_support;

use helm_support::diff::{Key, docs, normalize, same};
use helm_support::{chart_dir, helm_bin};

fn run(cmd: &mut Command, what: &str) -> Result<(bool, String, String)> {
    let out = cmd.output().with_context(|| format!("running {what}"))?;
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// `helm template jockey charts/jockey -n NS --set-json K=V ...`: the objects, or helm's error.
fn helm_template(
    ns: &str,
    values: &[(&str, Value)],
) -> Result<std::result::Result<Vec<Value>, String>> {
    let mut cmd = Command::new(helm_bin()?);
    cmd.args(["template", "jockey"])
        .arg(chart_dir())
        .args(["-n", ns]);
    for (k, v) in values {
        cmd.arg("--set-json").arg(format!("{k}={v}"));
    }
    let (ok, out, err) = run(&mut cmd, "helm template")?;
    if !ok {
        return Ok(Err(err));
    }
    Ok(Ok(docs(&out)?))
}

fn kustomize(dir: &str) -> Result<Vec<Value>> {
    let mut cmd = Command::new(tool_bin_dir().join("kubectl"));
    cmd.arg("kustomize").arg(repo_root().join(dir));
    let (ok, out, err) = run(&mut cmd, "kubectl kustomize")?;
    ensure!(ok, "kubectl kustomize {dir}: {err}");
    docs(&out)
}

/// `kubectl jockey install --dry-run=client ARGS` (it reads the namespace and Secrets of the
/// cluster, so the namespace must not exist: then it renders every object, the namespace too).
fn install_dry_run(args: &[&str]) -> Result<Vec<Value>> {
    let mut all = vec!["install", "--dry-run=client"];
    all.extend_from_slice(args);
    let (ok, out) = webhook_support::plugin(&all)?;
    ensure!(ok, "kubectl jockey install --dry-run=client failed: {out}");
    docs(&out)
}

fn file_docs(path: &str) -> Result<Vec<Value>> {
    docs(
        &std::fs::read_to_string(repo_root().join(path))
            .with_context(|| format!("reading {path}"))?,
    )
}

fn k(kind: &str, ns: &str, name: &str) -> Key {
    (kind.into(), ns.into(), name.into())
}

fn chart(ns: &str, values: &[(&str, Value)]) -> Result<BTreeMap<Key, Value>> {
    match helm_template(ns, values)? {
        Ok(objects) => normalize(objects),
        Err(e) => bail!("helm template {values:?} failed: {e}"),
    }
}

#[test]
fn helm_lint_passes_and_a_misspelt_value_is_refused_by_the_schema() -> Result<()> {
    let (ok, out, err) = run(
        Command::new(helm_bin()?)
            .args(["lint", "--strict"])
            .arg(chart_dir()),
        "helm lint",
    )?;
    ensure!(ok, "helm lint --strict charts/jockey failed:\n{out}{err}");
    ensure!(out.contains("0 chart(s) failed"), "{out}");
    // The chart's version and appVersion (the default image tag) are the workspace's, which
    // install's default image and the release archives carry.
    let chart: Value =
        serde_yaml::from_str(&std::fs::read_to_string(chart_dir().join("Chart.yaml"))?)?;
    let version = env!("CARGO_PKG_VERSION");
    ensure!(
        chart["version"] == version && chart["appVersion"] == version,
        "charts/jockey/Chart.yaml has version {} and appVersion {}, the workspace {version}: change them together",
        chart["version"],
        chart["appVersion"]
    );

    // A typo at the top and one level down, a wrong type and a value outside its enum: each
    // fails `helm template` (and so `helm install`) naming the key.
    for (set, needle) in [
        (("replicaCont", json!(3)), "replicaCont"),
        (("certificates", json!({"mod": "self"})), "mod"),
        (("securePort", json!("10250")), "securePort"),
        (("certificates", json!({"mode": "selfsigned"})), "mode"),
        (("failurePolicy", json!("fail")), "failurePolicy"),
    ] {
        match helm_template("jockey-system", std::slice::from_ref(&set))? {
            Ok(_) => bail!("helm template accepted {set:?}: values.schema.json lets it through"),
            Err(e) => ensure!(
                e.contains("schema") && e.contains(needle),
                "{set:?}: helm's error does not name {needle}: {e}"
            ),
        }
    }
    // hostNetwork on the kubelet's port is refused with the rule.
    match helm_template("jockey-system", &[("hostNetwork", json!(true))])? {
        Ok(_) => bail!("hostNetwork with securePort 10250 was accepted"),
        Err(e) => ensure!(e.contains("kubelet's port"), "{e}"),
    }
    ensure!(
        helm_template(
            "jockey-system",
            &[("hostNetwork", json!(true)), ("securePort", json!(10260))]
        )?
        .is_ok(),
        "hostNetwork with securePort 10260 was refused"
    );
    Ok(())
}

/// cert-manager mode is manifests/cert-manager (with the broker and the monitoring objects).
#[test]
fn helm_template_is_what_kustomize_renders_from_manifests() -> Result<()> {
    let ns = "jockey-system";
    let rendered = chart(
        ns,
        &[
            ("namespace.create", json!(true)),
            ("certificates.mode", json!("cert-manager")),
            ("serviceMonitor.enabled", json!(true)),
            ("prometheusRule.enabled", json!(true)),
        ],
    )?;
    let mut manifests = kustomize("manifests/cert-manager")?;
    manifests.extend(kustomize("manifests/broker")?);
    manifests.extend(file_docs("manifests/monitoring/servicemonitor.yaml")?);
    manifests.extend(file_docs("manifests/monitoring/prometheusrule.yaml")?);
    // The builder namespace and its account: install and the chart make them; manifests/ leaves
    // them to `kubectl jockey setup-builder` (compared against install below).
    same(
        "kustomize (manifests/cert-manager, manifests/broker, manifests/monitoring)",
        &rendered,
        &normalize(manifests)?,
        &[
            k("Namespace", "", "builder"),
            k("ServiceAccount", "builder", "jockey-builder"),
        ],
    )?;
    // The self mode: the Secrets the chart makes, the renewal the webhook is given, and nothing
    // of cert-manager.
    let own = chart(ns, &[])?;
    for s in ["jockey-webhook-ca", "jockey-webhook-tls"] {
        ensure!(own.contains_key(&k("Secret", ns, s)), "no Secret {s}");
    }
    ensure!(
        !own.keys()
            .any(|(kind, _, _)| kind == "Certificate" || kind == "Issuer"),
        "cert-manager objects in self mode"
    );
    Ok(())
}

/// self mode is `kubectl jockey install`, with defaults and with every option both take.
#[test]
fn helm_template_is_what_kubectl_jockey_install_renders() -> Result<()> {
    // A namespace that does not exist, so that install renders it too.
    let ns = format!("helm-diff-{}", std::process::id() % 100_000);
    same(
        "kubectl jockey install --dry-run=client",
        &chart(&ns, &[("namespace.create", json!(true))])?,
        &normalize(install_dry_run(&["-n", &ns])?)?,
        &[],
    )?;

    let client_ca = jockey_core::certs::new_ca("helm-diff-client-ca", 1)?;
    let dir = tempfile::tempdir()?;
    let ca_file = dir.path().join("ca.crt");
    std::fs::write(&ca_file, &client_ca.cert_pem)?;
    // What a user sets is merged into the chart's default policy (Helm merges maps), which holds
    // the webhook's own defaults: install is given the merged file.
    let policy =
        "sharding:\n  enabled: true\n  capacity: 10\nextraHosts:\n  helm-app: [www.example.com]\n";
    let merged =
        format!("{policy}groupSettings:\n  scheme: internet-facing\n  ssl-redirect: \"443\"\n");
    let policy_file = dir.path().join("policy.yaml");
    std::fs::write(&policy_file, merged)?;
    let policy_value: Value = serde_yaml::from_str(policy)?;
    let chart_values = [
        ("namespace.create", json!(true)),
        ("fullnameOverride", json!("jw-helm")),
        ("image.repository", json!("reg.example.com/jockey-webhook")),
        ("image.tag", json!("9.9.9")),
        (
            "namespaceSelector",
            json!({"matchLabels": {"team": "a", "jockey": "on"}}),
        ),
        ("failurePolicy", json!("Ignore")),
        ("clientAuth.caBundle", json!(client_ca.cert_pem)),
        ("clientAuth.names", json!(["kube-apiserver", "other"])),
        (
            "networkPolicy.from",
            json!([{"ipBlock": {"cidr": "10.0.0.0/16"}}]),
        ),
        ("config.imageRegistry", json!("reg.example.com")),
        ("config.albAllowedGroups", json!("extra-a,extra-b")),
        ("config.deploymentDomain", json!("apps.example.com")),
        ("policy", policy_value),
    ];
    let ca = ca_file.to_string_lossy();
    let pf = policy_file.to_string_lossy();
    let install_args = [
        "-n",
        &ns,
        "--name",
        "jw-helm",
        "--image",
        "reg.example.com/jockey-webhook:9.9.9",
        "--namespace-selector",
        "team=a",
        "--namespace-selector",
        "jockey=on",
        "--failure-policy",
        "ignore",
        "--client-ca-file",
        &ca,
        "--client-name",
        "kube-apiserver",
        "--client-name",
        "other",
        "--api-server-cidr",
        "10.0.0.0/16",
        "--image-registry",
        "reg.example.com",
        "--alb-allowed-groups",
        "extra-a,extra-b",
        "--deployment-domain",
        "apps.example.com",
        "--policy-file",
        &pf,
    ];
    same(
        "kubectl jockey install --dry-run=client (every option)",
        &chart(&ns, &chart_values)?,
        &normalize(install_dry_run(&install_args)?)?,
        &[],
    )?;
    Ok(())
}

fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> Result<&'a Value> {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .with_context(|| format!("no {kind} {name} rendered"))
}

/// The values neither kustomize nor install has land where they say (the diffs above cover the
/// rest).
#[test]
fn the_charts_own_values_reach_the_objects() -> Result<()> {
    let ns = "jockey-system";
    let objects = match helm_template(
        ns,
        &[
            ("replicaCount", json!(3)),
            (
                "podDisruptionBudget",
                json!({"minAvailable": null, "maxUnavailable": 1}),
            ),
            (
                "updateStrategy",
                json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}),
            ),
            ("nodeSelector", json!({"pool": "system"})),
            (
                "tolerations",
                json!([{"key": "system", "operator": "Exists", "effect": "NoSchedule"}]),
            ),
            ("affinity", json!({})),
            ("topologySpreadConstraints", json!([])),
            ("priorityClassName", json!("system-cluster-critical")),
            ("podAnnotations", json!({"a": "b"})),
            ("hostNetwork", json!(true)),
            ("securePort", json!(10260)),
            ("resources", json!({"requests": {"cpu": "10m"}})),
            ("imagePullSecrets", json!([{"name": "pull"}])),
            ("networkPolicy.enabled", json!(false)),
            (
                "serviceMonitor",
                json!({"enabled": true, "interval": "10s", "labels": {"release": "prom"}}),
            ),
            (
                "prometheusRule",
                json!({"enabled": true, "labels": {"release": "prom"}}),
            ),
            (
                "grafanaDashboard",
                json!({"enabled": true, "namespace": "grafana", "labels": {"dash": "yes"}}),
            ),
            ("broker.enabled", json!(false)),
            ("tenantRole.enabled", json!(false)),
            ("crds.enabled", json!(false)),
        ],
    )? {
        Ok(o) => o,
        Err(e) => bail!("helm template failed: {e}"),
    };
    let d = find(&objects, "Deployment", "jockey-webhook")?;
    let spec = &d["spec"]["template"]["spec"];
    let c = &spec["containers"][0];
    ensure!(d["spec"]["replicas"] == 3, "{d}");
    ensure!(
        d["spec"]["strategy"]["rollingUpdate"] == json!({"maxUnavailable": 1, "maxSurge": 0}),
        "{d}"
    );
    ensure!(spec["nodeSelector"] == json!({"pool": "system"}), "{spec}");
    ensure!(spec["tolerations"][0]["key"] == "system", "{spec}");
    ensure!(
        spec.get("affinity").is_none() && spec.get("topologySpreadConstraints").is_none(),
        "{spec}"
    );
    ensure!(
        spec["priorityClassName"] == "system-cluster-critical",
        "{spec}"
    );
    ensure!(
        spec["hostNetwork"] == true && spec["dnsPolicy"] == "ClusterFirstWithHostNet",
        "{spec}"
    );
    ensure!(
        spec["imagePullSecrets"] == json!([{"name": "pull"}]),
        "{spec}"
    );
    ensure!(
        d["spec"]["template"]["metadata"]["annotations"]["a"] == "b",
        "{d}"
    );
    ensure!(c["args"][0] == "--listen=0.0.0.0:10260", "{c}");
    ensure!(c["ports"][0]["containerPort"] == 10260, "{c}");
    ensure!(c["resources"]["requests"]["cpu"] == "10m", "{c}");
    let pdb = find(&objects, "PodDisruptionBudget", "jockey-webhook")?;
    ensure!(
        pdb["spec"]["maxUnavailable"] == 1 && pdb["spec"].get("minAvailable").is_none(),
        "{pdb}"
    );
    let sm = find(&objects, "ServiceMonitor", "jockey-webhook")?;
    ensure!(
        sm["metadata"]["labels"]["release"] == "prom"
            && sm["spec"]["endpoints"][0]["interval"] == "10s",
        "{sm}"
    );
    let rule = find(&objects, "PrometheusRule", "jockey-webhook")?;
    ensure!(rule["metadata"]["labels"]["release"] == "prom", "{rule}");
    // The dashboard is manifests/monitoring's, unchanged, where the sidecar looks for it.
    let dash = find(&objects, "ConfigMap", "jockey-webhook-dashboard")?;
    ensure!(
        dash["metadata"]["namespace"] == "grafana" && dash["metadata"]["labels"]["dash"] == "yes",
        "{dash}"
    );
    let embedded: Value = serde_json::from_str(
        dash["data"]["jockey-webhook.json"]
            .as_str()
            .context("no dashboard in the ConfigMap")?,
    )?;
    let source: Value = serde_json::from_str(&std::fs::read_to_string(
        repo_root().join("manifests/monitoring/grafana-dashboard.json"),
    )?)?;
    ensure!(
        embedded == source,
        "the chart's dashboard differs from manifests/monitoring"
    );
    for (kind, name) in [
        ("NetworkPolicy", "jockey-webhook"),
        ("Deployment", "jockey-broker"),
        ("ClusterRole", "jockey-tenant"),
        (
            "CustomResourceDefinition",
            "buildrequests.jockey.agentops.ai",
        ),
        ("Namespace", ns),
    ] {
        ensure!(
            find(&objects, kind, name).is_err(),
            "{kind} {name} rendered though disabled"
        );
    }
    // A config or policy change rolls the pods: the pod template's hash follows them.
    let hash = |values: &[(&str, Value)]| -> Result<Value> {
        let objects = match helm_template(ns, values)? {
            Ok(o) => o,
            Err(e) => bail!("helm template failed: {e}"),
        };
        Ok(find(&objects, "Deployment", "jockey-webhook")?["spec"]["template"]["metadata"]
            ["annotations"]["jockey.agentops.ai/config-sha256"]
            .clone())
    };
    let base = hash(&[])?;
    ensure!(base.is_string(), "no config hash: {base}");
    ensure!(hash(&[])? == base, "the hash is not stable");
    ensure!(
        hash(&[("config.deploymentDomain", json!("x.example.com"))])? != base,
        "a setting did not change it"
    );
    ensure!(
        hash(&[("policy.sharding.capacity", json!(5))])? != base,
        "the policy did not change it"
    );
    Ok(())
}

/// cert-manager mode is not installed by a test (the local cluster runs no cert-manager), but
/// every object it renders is accepted by the real API server, against cert-manager's real CRDs
/// (as webhook_manifests.rs checks manifests/cert-manager).
#[tokio::test]
async fn the_cert_manager_mode_is_accepted_by_a_server_side_dry_run() -> Result<()> {
    let client = jockey_e2e::client().await?;
    let crds = repo_root().join(".cache/crds/cert-manager");
    ensure!(
        crds.exists(),
        "{} is missing: tests/cluster/build.sh installs cert-manager's CRDs there",
        crds.display()
    );
    let out = jockey_e2e::kubectl(&["apply", "--server-side", "-f", &crds.to_string_lossy()])?;
    ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    jockey_e2e::wait_for(
        "cert-manager's CRDs to be established",
        std::time::Duration::from_secs(60),
        || async {
            let out = jockey_e2e::kubectl(&[
                "wait",
                "--for=condition=Established",
                "--timeout=5s",
                "crd/certificates.cert-manager.io",
                "crd/issuers.cert-manager.io",
            ])?;
            Ok(out.status.success().then_some(()))
        },
    )
    .await?;
    let ns = jockey_e2e::TestNamespace::create(&client, "helm-cm").await?;
    let objects = match helm_template(
        &ns.name,
        &[
            ("certificates.mode", json!("cert-manager")),
            ("fullnameOverride", json!("jw-helm-cm")),
            // The builder namespace must exist for a dry run of the broker's Role there.
            ("broker.builderNamespace", json!(ns.name)),
            ("broker.createBuilderNamespace", json!(false)),
        ],
    )? {
        Ok(o) => o,
        Err(e) => bail!("helm template failed: {e}"),
    };
    let yaml: Vec<String> = objects
        .iter()
        .map(serde_yaml::to_string)
        .collect::<std::result::Result<_, _>>()?;
    let (ok, out) = webhook_support::kubectl_stdin(
        &["apply", "--dry-run=server", "-f", "-"],
        &yaml.join("---\n"),
    )?;
    ns.cleanup().await?;
    ensure!(
        ok,
        "the API server refused the chart's cert-manager mode:\n{out}"
    );
    for object in [
        "certificate.cert-manager.io/jw-helm-cm created (server dry run)",
        "issuer.cert-manager.io/jw-helm-cm-ca created (server dry run)",
        "mutatingwebhookconfiguration.admissionregistration.k8s.io/jw-helm-cm created (server dry run)",
        "validatingadmissionpolicy.admissionregistration.k8s.io/jw-helm-cm-shared-alb",
        "deployment.apps/jw-helm-cm created (server dry run)",
    ] {
        ensure!(
            out.contains(object),
            "{object} missing from the dry run:\n{out}"
        );
    }
    Ok(())
}
