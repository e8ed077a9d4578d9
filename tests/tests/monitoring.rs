//! The alerts and the dashboard (manifests/monitoring) against what really exports the metrics.
//!
//! - `testdata/metrics.txt` is the real jockey-webhook's `/metrics` after a fixed set of reviews
//!   ([`drive`]); [`the_fixture_is_what_the_webhook_exports`] captures it again from the binary
//!   beside the local cluster and fails on any metric, label or bucket that changed
//!   (`JOCKEY_UPDATE_FIXTURES=1` rewrites it). `testdata/alb-controller-metrics.txt` is the same
//!   for the AWS Load Balancer Controller's reconcile metrics (the shared group's alert).
//! - Every metric and label the rules, the promtool tests' input series and the dashboard use
//!   must be in those fixtures, with the same label names ([`only_exported_metrics_are_used`]).
//! - `promtool check rules` and `promtool test rules` (Prometheus's own, built from the Go module
//!   proxy by tests/tools/build.sh) on the PrometheusRule's `spec`, and every dashboard query
//!   parsed by promtool as a recording rule.

mod webhook_support;

use anyhow::{Context, Result, bail};
use jockey_e2e::{AlbController, TestNamespace, client, repo_root, tool_bin_dir, wait_for};
use regex::Regex;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use webhook_support::{Webhook, apiserver_identity, https_post_json, project, webhook_client_ca};

fn monitoring() -> PathBuf {
    repo_root().join("manifests/monitoring")
}

fn promtool() -> Result<PathBuf> {
    let p = tool_bin_dir().join("promtool");
    if !p.exists() {
        bail!(
            "{} is missing: build it with tests/tools/build.sh promtool (`make test` runs it first)",
            p.display()
        );
    }
    Ok(p)
}

/// Runs promtool in `dir`; its output, or an error with it.
fn run_promtool(dir: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new(promtool()?)
        .args(args)
        .current_dir(dir)
        .output()
        .context("running promtool")?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() {
        bail!("promtool {} failed:\n{text}", args.join(" "));
    }
    Ok(text)
}

/// The PrometheusRule's `spec` (its rule groups), as the plain rules file promtool reads.
fn rule_groups() -> Result<serde_yaml::Value> {
    let path = monitoring().join("prometheusrule.yaml");
    let rule: serde_yaml::Value = serde_yaml::from_str(&std::fs::read_to_string(&path)?)
        .with_context(|| format!("parsing {}", path.display()))?;
    assert_eq!(rule["kind"].as_str(), Some("PrometheusRule"));
    assert_eq!(
        rule["apiVersion"].as_str(),
        Some("monitoring.coreos.com/v1")
    );
    Ok(rule["spec"].clone())
}

fn rules() -> Result<Vec<serde_yaml::Value>> {
    let groups = rule_groups()?;
    Ok(groups["groups"]
        .as_sequence()
        .context("spec.groups")?
        .iter()
        .flat_map(|g| g["rules"].as_sequence().cloned().unwrap_or_default())
        .collect())
}

/// Every PromQL `expr` of the dashboard's panels (rows' panels included).
fn dashboard_exprs() -> Result<Vec<(String, String)>> {
    let path = monitoring().join("grafana-dashboard.json");
    let d: Value = serde_json::from_str(&std::fs::read_to_string(&path)?)
        .with_context(|| format!("parsing {}", path.display()))?;
    let mut out = Vec::new();
    fn walk(panels: &Value, out: &mut Vec<(String, String)>) {
        for p in panels.as_array().into_iter().flatten() {
            let title = p["title"].as_str().unwrap_or_default().to_string();
            for t in p["targets"].as_array().into_iter().flatten() {
                if let Some(e) = t["expr"].as_str() {
                    out.push((title.clone(), e.to_string()));
                }
            }
            walk(&p["panels"], out);
        }
    }
    walk(&d["panels"], &mut out);
    Ok(out)
}

/// `name -> label names` of every sample in a Prometheus text exposition.
fn samples(text: &str) -> BTreeMap<String, BTreeSet<String>> {
    let label = Regex::new(r#"([a-zA-Z_][a-zA-Z0-9_]*)="(?:[^"\\]|\\.)*""#).expect("regex");
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (name, rest) = line.split_once(['{', ' ']).unwrap_or((line, ""));
        let labels = out.entry(name.to_string()).or_default();
        if line.contains('{') {
            let inside = rest.rsplit_once('}').map(|(l, _)| l).unwrap_or(rest);
            labels.extend(label.captures_iter(inside).map(|c| c[1].to_string()));
        }
    }
    out
}

fn fixtures() -> Result<BTreeMap<String, BTreeSet<String>>> {
    let mut all = BTreeMap::new();
    for f in ["metrics.txt", "alb-controller-metrics.txt"] {
        let path = monitoring().join("testdata").join(f);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        all.extend(samples(&text));
    }
    Ok(all)
}

/// Labels Prometheus adds to every scraped series, and the histogram bucket's.
const SCRAPE_LABELS: [&str; 2] = ["job", "instance"];

/// The metric names a PromQL expression selects, each with the label names it matches on.
fn selectors(expr: &str) -> Vec<(String, BTreeSet<String>)> {
    let sel = Regex::new(
        r"\b(jockey_webhook_[a-z0-9_]+|controller_runtime_reconcile_[a-z_]+|up)\b(\{[^}]*\})?",
    )
    .expect("regex");
    let key = Regex::new(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)").expect("regex");
    sel.captures_iter(expr)
        .map(|c| {
            let keys = c
                .get(2)
                .map(|m| {
                    key.captures_iter(m.as_str())
                        .map(|k| k[1].to_string())
                        .collect()
                })
                .unwrap_or_default();
            (c[1].to_string(), keys)
        })
        .collect()
}

/// Label names in `by (...)`, `on (...)`, `ignoring (...)` and `without (...)` clauses.
fn grouping_labels(expr: &str) -> BTreeSet<String> {
    let clause = Regex::new(r"\b(?:by|on|ignoring|without)\s*\(([^)]*)\)").expect("regex");
    clause
        .captures_iter(expr)
        .flat_map(|c| {
            c[1].split(',')
                .map(|l| l.trim().to_string())
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The checks of one expression against the fixtures; each problem as a line.
fn check_expr(
    what: &str,
    expr: &str,
    exported: &BTreeMap<String, BTreeSet<String>>,
    problems: &mut Vec<String>,
) {
    let used = selectors(expr);
    let mut known: BTreeSet<String> = SCRAPE_LABELS.iter().map(|s| s.to_string()).collect();
    known.insert("le".into());
    for (name, keys) in &used {
        if name == "up" {
            continue;
        }
        let Some(labels) = exported.get(name) else {
            problems.push(format!(
                "{what}: {name} is not exported (not in the fixtures)"
            ));
            continue;
        };
        known.extend(labels.iter().cloned());
        for k in keys {
            if !labels.contains(k) && !SCRAPE_LABELS.contains(&k.as_str()) {
                problems.push(format!(
                    "{what}: {name} has no label {k} (it has {labels:?})"
                ));
            }
        }
    }
    if used.is_empty() {
        problems.push(format!("{what}: selects no exported metric: {expr}"));
    }
    for l in grouping_labels(expr) {
        if !known.contains(&l) {
            problems.push(format!(
                "{what}: groups by {l}, which none of its metrics has"
            ));
        }
    }
}

#[test]
fn only_exported_metrics_are_used() -> Result<()> {
    let exported = fixtures()?;
    let mut problems = Vec::new();
    for r in rules()? {
        let name = r["alert"].as_str().or(r["record"].as_str()).unwrap_or("?");
        let expr = r["expr"].as_str().context("a rule without expr")?;
        check_expr(&format!("rule {name}"), expr, &exported, &mut problems);
    }
    let exprs = dashboard_exprs()?;
    assert!(
        exprs.len() >= 8,
        "the dashboard has {} queries",
        exprs.len()
    );
    for (title, expr) in &exprs {
        check_expr(&format!("panel {title:?}"), expr, &exported, &mut problems);
    }
    // The promtool tests' input series have the exported label names exactly (plus job and
    // instance, which the scrape adds): the alerts are tested on series shaped like the real ones.
    let tests: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(monitoring().join("tests.yaml"))?)?;
    let mut series = 0;
    for t in tests["tests"].as_sequence().context("tests")? {
        for s in t["input_series"].as_sequence().into_iter().flatten() {
            let text = s["series"].as_str().context("series")?;
            series += 1;
            let shape = samples(&format!("{text} 0"));
            for (name, labels) in shape {
                if name == "up" {
                    continue;
                }
                let Some(want) = exported.get(&name) else {
                    problems.push(format!("tests.yaml: {name} is not exported"));
                    continue;
                };
                let got: BTreeSet<String> = labels
                    .into_iter()
                    .filter(|l| !SCRAPE_LABELS.contains(&l.as_str()))
                    .collect();
                if &got != want {
                    problems.push(format!(
                        "tests.yaml: {text} has labels {got:?}, the exported {name} has {want:?}"
                    ));
                }
            }
        }
    }
    assert!(series > 20, "tests.yaml has {series} input series");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    Ok(())
}

/// `promtool check rules` and `promtool test rules` on the PrometheusRule's groups; each alert
/// has a case where it fires and one where it does not.
#[test]
fn alert_rules_pass_promtool() -> Result<()> {
    let dir = tempfile::tempdir()?;
    std::fs::write(
        dir.path().join("rules.yaml"),
        serde_yaml::to_string(&rule_groups()?)?,
    )?;
    std::fs::copy(
        monitoring().join("tests.yaml"),
        dir.path().join("tests.yaml"),
    )?;
    let checked = run_promtool(dir.path(), &["check", "rules", "rules.yaml"])?;
    assert!(checked.contains("SUCCESS"), "{checked}");
    let tested = run_promtool(dir.path(), &["test", "rules", "tests.yaml"])?;
    assert!(tested.contains("SUCCESS"), "{tested}");

    let tests: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(monitoring().join("tests.yaml"))?)?;
    let mut fired = BTreeSet::new();
    let mut quiet = BTreeSet::new();
    for t in tests["tests"].as_sequence().context("tests")? {
        for a in t["alert_rule_test"].as_sequence().into_iter().flatten() {
            let name = a["alertname"].as_str().unwrap_or_default().to_string();
            match a["exp_alerts"].as_sequence() {
                Some(e) if !e.is_empty() => fired.insert(name),
                _ => quiet.insert(name),
            };
        }
    }
    let mut missing = Vec::new();
    for r in rules()? {
        if let Some(name) = r["alert"].as_str() {
            if !fired.contains(name) {
                missing.push(format!("{name}: no case where it fires"));
            }
            if !quiet.contains(name) {
                missing.push(format!("{name}: no case where it stays quiet"));
            }
        }
    }
    assert!(missing.is_empty(), "tests.yaml: {}", missing.join("; "));
    Ok(())
}

/// promtool parses every dashboard query, each made a recording rule (Grafana's
/// `$__rate_interval` replaced by the 5m a scrape interval of 30 s gives).
#[test]
fn dashboard_queries_parse() -> Result<()> {
    let exprs = dashboard_exprs()?;
    let rules: Vec<serde_yaml::Value> = exprs
        .iter()
        .enumerate()
        .map(|(i, (_, e))| {
            serde_yaml::to_value(json!({
                "record": format!("dashboard:query:{i}"),
                "expr": e.replace("$__rate_interval", "5m"),
            }))
        })
        .collect::<Result<_, _>>()?;
    let file =
        serde_yaml::to_value(json!({ "groups": [{ "name": "dashboard", "rules": rules }] }))?;
    let dir = tempfile::tempdir()?;
    std::fs::write(
        dir.path().join("dashboard.yaml"),
        serde_yaml::to_string(&file)?,
    )?;
    let checked = run_promtool(dir.path(), &["check", "rules", "dashboard.yaml"])?;
    assert!(
        checked.contains(&format!("SUCCESS: {} rules found", exprs.len())),
        "{checked}"
    );
    Ok(())
}

/// The same sample lines, values left out (counts, latencies and times vary; names, labels and
/// buckets must not).
fn shape(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = text
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            if l.starts_with('#') {
                l.to_string()
            } else {
                l.rsplit_once(' ').map(|(s, _)| s).unwrap_or(l).to_string()
            }
        })
        .collect();
    lines.sort();
    lines
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// A review of a labelled object `kind` in `ns`, as the API server builds it.
fn review(kind: &str, resource: &str, group: &str, ns: &str, object: Value) -> String {
    let version = if group.is_empty() {
        "v1".to_string()
    } else {
        format!("{group}/v1")
    };
    let mut object = object;
    object["apiVersion"] = json!(version);
    object["kind"] = json!(kind);
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": format!("metrics-{kind}-{ns}"),
            "kind": { "group": group, "version": "v1", "kind": kind },
            "resource": { "group": group, "version": "v1", "resource": resource },
            "namespace": ns,
            "name": object["metadata"]["name"],
            "operation": "CREATE",
            "userInfo": { "username": "kubernetes-admin" },
            "object": object,
            "oldObject": null,
            "dryRun": false
        }
    })
    .to_string()
}

/// The fixed set of requests behind testdata/metrics.txt, each of a project of its own so that
/// no answer depends on how soon the webhook's cache saw an earlier claim: a Deployment mutated
/// (patched) and validated (allowed, its claim secured), a Service in a namespace that does not
/// exist (denied, its claim unproven: nothing written), a body that is not a review
/// (bad_request), and a review from a caller without the API server's certificate
/// (unauthenticated).
async fn drive(wh: &Webhook, ns: &str) -> Result<()> {
    let me = apiserver_identity()?;
    let p = project("metrics");
    let id = jockey_core::ProjectId::parse(&p)?;
    let mut object = serde_json::to_value(jockey_core::defaults::render_deployment(
        &id,
        &jockey_core::ContentHash::from_digest(&[1; 32]),
    ))?;
    object["metadata"]["namespace"] = json!(ns);
    let deployment = review("Deployment", "deployments", "apps", ns, object);
    let ghost_project = project("metrics-ghost");
    let ghost = format!("metrics-ghost-{}", std::process::id() % 100_000);
    let service = review(
        "Service",
        "services",
        "",
        &ghost,
        json!({
            "metadata": { "name": ghost_project, "namespace": ghost,
                          "labels": { "jockey.agentops.ai/project": ghost_project } },
            "spec": { "type": "ClusterIP", "selector": { "app": ghost_project },
                      "ports": [{ "name": "http", "port": 80, "targetPort": 8080 }] }
        }),
    );
    let post = |path: &'static str, body: String, identity: bool| {
        let me = me.clone();
        async move {
            https_post_json(
                wh.port,
                path,
                &body,
                &[&wh.ca],
                identity.then_some(&me),
                Duration::from_secs(10),
            )
            .await
        }
    };
    let want = [
        (
            post("/mutate", deployment.clone(), true).await?,
            "\"patch\"",
        ),
        (
            post("/validate", deployment.clone(), true).await?,
            "\"allowed\":true",
        ),
        (post("/validate", service, true).await?, "\"allowed\":false"),
    ];
    for ((status, body), needle) in &want {
        assert_eq!(*status, 200, "{body}");
        assert!(body.contains(needle), "{needle} not in {body}");
    }
    let (status, body) = post("/validate", "{".into(), true).await?;
    assert_eq!(status, 400, "{body}");
    let (status, body) = post("/validate", deployment, false).await?;
    assert_eq!(status, 401, "{body}");
    Ok(())
}

/// The real binary, started renewing a certificate that is due (renewal ok, then the renewed
/// files reloaded), [`drive`]n, then its `/metrics` compared with testdata/metrics.txt.
#[tokio::test]
async fn the_fixture_is_what_the_webhook_exports() -> Result<()> {
    let client = client().await?;
    let ns = TestNamespace::create(&client, "metrics").await?;
    let now = now_unix();
    // No claim released while the test runs (the harness's 3 s grace would release the
    // Service's claim at a moment of its own): the captured series are the same every time.
    // Its own copy of the client CA, made unreadable at the end (a failed reload: the old CA
    // kept).
    let dir = tempfile::tempdir()?;
    let client_ca = dir.path().join("client-ca.crt");
    std::fs::copy(webhook_client_ca()?, &client_ca)?;
    let client_ca_arg = client_ca.display().to_string();
    let wh = Webhook::start_renewing_with_args(
        "metrics",
        now - 3000,
        now + 600,
        "20m",
        &[
            "--claim-grace",
            "1h",
            "--claim-release-interval",
            "1h",
            "--client-ca-file",
            &client_ca_arg,
        ],
    )
    .await?;
    let ca = wh.ca.clone();
    // Renewed at once (due: 10 of its 60 minutes left, renewed 20 minutes before expiry) and
    // the new pair reloaded.
    let renewed = wait_for(
        "the certificate renewed and reloaded",
        Duration::from_secs(30),
        || async {
            let m = wh.metrics(&[&ca]).await?;
            Ok((m.contains(r#"certificate_renewals_total{result="ok"}"#)
                && m.contains(r#"certificate_reloads_total{result="ok"}"#))
            .then_some(()))
        },
    )
    .await;
    if let Err(e) = renewed {
        let m = wh.metrics(&[&ca]).await.unwrap_or_default();
        bail!("{e}\n/metrics:\n{m}\nlog:\n{}", wh.log());
    }
    drive(&wh, &ns.name).await?;
    std::fs::write(&client_ca, "not a certificate\n")?;
    wait_for(
        "the client CA reload refused",
        Duration::from_secs(30),
        || async {
            let m = wh.metrics(&[&ca]).await?;
            Ok(m.contains(r#"client_ca_reloads_total{result="error"}"#)
                .then_some(()))
        },
    )
    .await?;
    let got = wh.metrics(&[&ca]).await?;
    let path = monitoring().join("testdata/metrics.txt");
    if std::env::var("JOCKEY_UPDATE_FIXTURES").as_deref() == Ok("1") {
        std::fs::write(&path, &got)?;
    }
    let want = std::fs::read_to_string(&path)?;
    let (got_shape, want_shape) = (shape(&got), shape(&want));
    let added: Vec<_> = got_shape
        .iter()
        .filter(|l| !want_shape.contains(l))
        .collect();
    let gone: Vec<_> = want_shape
        .iter()
        .filter(|l| !got_shape.contains(l))
        .collect();
    assert!(
        added.is_empty() && gone.is_empty(),
        "jockey-webhook's /metrics no longer matches {} (update the alerts, the dashboard and \
         tests.yaml, then rerun with JOCKEY_UPDATE_FIXTURES=1):\nexported now, not in the \
         fixture:\n{added:#?}\nin the fixture, no longer exported:\n{gone:#?}",
        path.display()
    );
    ns.cleanup().await?;
    Ok(())
}

/// The metrics families of testdata/alb-controller-metrics.txt, with their label names, are
/// still what the cluster's real AWS Load Balancer Controller exports.
#[tokio::test]
async fn the_alb_controller_fixture_is_what_the_controller_exports() -> Result<()> {
    let test = "monitoring::the_alb_controller_fixture_is_what_the_controller_exports";
    let Some(controller) = AlbController::require(test)? else {
        return Ok(());
    };
    let pid_file = controller.log.with_file_name("controller.pid");
    let pid = std::fs::read_to_string(&pid_file)?;
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", pid.trim()))?;
    let args: Vec<String> = cmdline
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).to_string())
        .collect();
    let addr = args
        .iter()
        .position(|a| a == "--metrics-bind-addr")
        .and_then(|i| args.get(i + 1))
        .context("the controller runs without --metrics-bind-addr")?;
    let got = Command::new("curl")
        .args(["-sf", &format!("http://{addr}/metrics")])
        .output()?;
    assert!(got.status.success(), "GET http://{addr}/metrics failed");
    let got = samples(&String::from_utf8_lossy(&got.stdout));
    let path = monitoring().join("testdata/alb-controller-metrics.txt");
    let want = samples(&std::fs::read_to_string(&path)?);
    for (name, labels) in &want {
        assert_eq!(
            got.get(name),
            Some(labels),
            "the controller's {name} is not as in {}",
            path.display()
        );
    }
    Ok(())
}
