//! The bad-input catalogue (`tests/bad_inputs/*.yaml`): every case is one wrong input a user or
//! the network can give jockey — CLI flags, project directories, policy files, AdmissionReview
//! bodies — with the class of error it must get, words that name the cause and words that name
//! the fix. The CLI cases run the real plugin against the local cluster, and each one is checked
//! to have written nothing: every object of the test's namespaces and every cluster-scoped object
//! jockey could write keeps its resourceVersion, and no object appears or goes.

mod deploy_support;

use anyhow::{Context, Result, bail};
use deploy_support::{Env, Scratch, copy_tree, jockey};
use jockey_core::Config;
use jockey_core::admission::{Endpoint, Env as AdmissionEnv, Outcome, handle};
use jockey_core::claims::ClaimIndex;
use jockey_core::policy::{IngressIndex, Policy};
use jockey_e2e::{client, repo_root};
use kube::Client;
use kube::api::{Api, DynamicObject, ListParams};
use kube::discovery::ApiResource;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

/// One catalogue entry; see tests/bad_inputs/README.md.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    /// `usage` (clap refuses the command line, exit 2), `refused` (jockey refuses, exit 1),
    /// `bad-request` (the webhook answers 400), `denied` (the webhook answers 403), `policy`
    /// (the policy file is refused), `bundle` (the project directory is refused).
    class: String,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    /// Files written into the project directory (a copy of examples/agent).
    #[serde(default)]
    files: BTreeMap<String, String>,
    /// Incompressible files of the given size in bytes.
    #[serde(default)]
    noise: BTreeMap<String, usize>,
    #[serde(default)]
    symlinks: BTreeMap<String, String>,
    #[serde(default)]
    fifos: Vec<String>,
    /// Paths removed from the copy (everything, with `*`).
    #[serde(default)]
    remove: Vec<String>,
    /// The policy file's text, written to `{policy}`.
    policy: Option<String>,
    /// An AdmissionReview body (sent as is) and the endpoint.
    body: Option<String>,
    endpoint: Option<String>,
    cause: Vec<String>,
    fix: Vec<String>,
}

fn load(file: &str) -> Result<Vec<Case>> {
    let path = repo_root().join("tests/bad_inputs").join(file);
    let text = std::fs::read_to_string(&path).with_context(|| path.display().to_string())?;
    serde_yaml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// Incompressible bytes, deterministically.
fn noise(n: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn project_dir(case: &Case) -> Result<Scratch> {
    let s = Scratch::new("bad-input")?;
    copy_tree(&repo_root().join("examples/agent"), s.path(), false)?;
    for r in &case.remove {
        if r == "*" {
            for e in std::fs::read_dir(s.path())? {
                let p = e?.path();
                if p.is_dir() {
                    std::fs::remove_dir_all(&p)?;
                } else {
                    std::fs::remove_file(&p)?;
                }
            }
            continue;
        }
        let p = s.path().join(r);
        if p.is_dir() {
            std::fs::remove_dir_all(&p)?;
        } else {
            std::fs::remove_file(&p)?;
        }
    }
    let parent = |p: &Path| -> Result<()> {
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d)?;
        }
        Ok(())
    };
    for (path, text) in &case.files {
        let p = s.path().join(path);
        parent(&p)?;
        std::fs::write(&p, text)?;
    }
    for (path, size) in &case.noise {
        let p = s.path().join(path);
        parent(&p)?;
        std::fs::write(&p, noise(*size))?;
    }
    for (path, target) in &case.symlinks {
        let p = s.path().join(path);
        parent(&p)?;
        std::os::unix::fs::symlink(target, &p)?;
    }
    for path in &case.fifos {
        let p = s.path().join(path);
        parent(&p)?;
        let st = std::process::Command::new("mkfifo").arg(&p).status()?;
        anyhow::ensure!(st.success(), "mkfifo {}", p.display());
    }
    Ok(s)
}

/// Everything jockey could write, with its resourceVersion: the objects of the test's
/// namespaces, jockey's cluster-scoped objects, and the names of all namespaces.
async fn snapshot(client: &Client, namespaces: &[&str]) -> Result<BTreeMap<String, String>> {
    let ar = |group: &str, version: &str, kind: &str, plural: &str| ApiResource {
        group: group.into(),
        version: version.into(),
        api_version: if group.is_empty() {
            version.to_string()
        } else {
            format!("{group}/{version}")
        },
        kind: kind.into(),
        plural: plural.into(),
    };
    let namespaced = [
        ar("apps", "v1", "Deployment", "deployments"),
        ar("apps", "v1", "ReplicaSet", "replicasets"),
        ar("", "v1", "Service", "services"),
        ar("networking.k8s.io", "v1", "Ingress", "ingresses"),
        ar("", "v1", "ConfigMap", "configmaps"),
        ar("", "v1", "Secret", "secrets"),
        ar("", "v1", "ServiceAccount", "serviceaccounts"),
        ar("", "v1", "Pod", "pods"),
        ar("batch", "v1", "Job", "jobs"),
        ar("rbac.authorization.k8s.io", "v1", "Role", "roles"),
        ar(
            "rbac.authorization.k8s.io",
            "v1",
            "RoleBinding",
            "rolebindings",
        ),
        ar("coordination.k8s.io", "v1", "Lease", "leases"),
    ];
    let cluster = [
        ar("", "v1", "Namespace", "namespaces"),
        ar(
            "admissionregistration.k8s.io",
            "v1",
            "MutatingWebhookConfiguration",
            "mutatingwebhookconfigurations",
        ),
        ar(
            "admissionregistration.k8s.io",
            "v1",
            "ValidatingWebhookConfiguration",
            "validatingwebhookconfigurations",
        ),
        ar(
            "admissionregistration.k8s.io",
            "v1",
            "ValidatingAdmissionPolicy",
            "validatingadmissionpolicies",
        ),
        ar(
            "admissionregistration.k8s.io",
            "v1",
            "ValidatingAdmissionPolicyBinding",
            "validatingadmissionpolicybindings",
        ),
        ar(
            "rbac.authorization.k8s.io",
            "v1",
            "ClusterRole",
            "clusterroles",
        ),
        ar(
            "rbac.authorization.k8s.io",
            "v1",
            "ClusterRoleBinding",
            "clusterrolebindings",
        ),
    ];
    let mut out = BTreeMap::new();
    for ns in namespaces {
        for r in &namespaced {
            let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, r);
            for o in api.list(&ListParams::default()).await?.items {
                let name = o.metadata.name.clone().unwrap_or_default();
                if name == "kube-root-ca.crt" {
                    continue;
                }
                out.insert(
                    format!("{ns}/{}/{name}", r.kind),
                    o.metadata.resource_version.unwrap_or_default(),
                );
            }
        }
    }
    for r in &cluster {
        let api: Api<DynamicObject> = Api::all_with(client.clone(), r);
        for o in api.list(&ListParams::default()).await?.items {
            let name = o.metadata.name.clone().unwrap_or_default();
            // Namespaces: which exist (their status moves while other tests' terminate);
            // the rest: only jockey's, whose versions nothing else touches.
            let version = if r.kind == "Namespace" {
                String::new()
            } else if name.contains("jockey") {
                o.metadata.resource_version.unwrap_or_default()
            } else {
                continue;
            };
            out.insert(format!("{}/{name}", r.kind), version);
        }
    }
    Ok(out)
}

fn check_words(case: &Case, text: &str, failures: &mut Vec<String>) {
    for w in case.cause.iter().chain(&case.fix) {
        if !text.contains(w.as_str()) {
            failures.push(format!("{}: {w:?} is missing from: {text}", case.name));
        }
    }
    if case.cause.is_empty() || case.fix.is_empty() {
        failures.push(format!(
            "{}: the case must name a cause and a fix",
            case.name
        ));
    }
}

/// A namespace that dropped out of the snapshot between runs is another test's, finishing.
fn differences(before: &BTreeMap<String, String>, after: &BTreeMap<String, String>) -> Vec<String> {
    let mut out = Vec::new();
    for (k, v) in after {
        match before.get(k) {
            None => out.push(format!("{k} appeared")),
            Some(b) if b != v => out.push(format!("{k} changed ({b} -> {v})")),
            _ => {}
        }
    }
    for k in before.keys() {
        if !after.contains_key(k) && !k.starts_with("Namespace/") {
            out.push(format!("{k} went away"));
        }
    }
    out
}

/// One catalogue at a time: a sibling's namespaces appearing would read as a write.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn run_cli_catalogue(file: &str, min: usize) -> Result<usize> {
    let _serial = SERIAL.lock().await;
    let cases = load(file)?;
    anyhow::ensure!(cases.len() >= min, "{file}: {} cases", cases.len());
    let client = client().await?;
    let env = Env::new(&client, "bad-inputs").await?;
    let scratch = Scratch::new("bad-input-policy")?;
    let mut failures = Vec::new();
    for case in &cases {
        let dir = project_dir(case)?;
        let policy = scratch.path().join(format!("{}.yaml", case.name));
        if let Some(p) = &case.policy {
            std::fs::write(&policy, p)?;
        }
        let args: Vec<String> = case
            .args
            .iter()
            .map(|a| {
                a.replace("{dir}", &dir.path().to_string_lossy())
                    .replace("{ns}", &env.ns.name)
                    .replace("{builder}", &env.builder.name)
                    .replace("{policy}", &policy.to_string_lossy())
            })
            .collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let vars: Vec<(&str, &str)> = case
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let before = snapshot(&client, &[&env.ns.name, &env.builder.name]).await?;
        let run = jockey(&args, &env.builder.name, &vars)?;
        let after = snapshot(&client, &[&env.ns.name, &env.builder.name]).await?;
        let want = match case.class.as_str() {
            "usage" => 2,
            "refused" | "bundle" | "policy" => 1,
            other => bail!("{}: class {other} is not a CLI class", case.name),
        };
        if run.code != Some(want) {
            failures.push(format!(
                "{}: exit {:?}, expected {want} ({}): {}",
                case.name,
                run.code,
                case.class,
                run.all()
            ));
        }
        if run.stderr.contains("panicked") {
            failures.push(format!("{}: panicked: {}", case.name, run.stderr));
        }
        check_words(case, &run.stderr, &mut failures);
        let diff = differences(&before, &after);
        if !diff.is_empty() {
            failures.push(format!("{}: wrote to the cluster: {diff:?}", case.name));
        }
    }
    env.cleanup().await?;
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    Ok(cases.len())
}

#[tokio::test]
async fn cli_flags_are_refused_with_cause_and_fix_and_nothing_written() -> Result<()> {
    run_cli_catalogue("cli.yaml", 20).await.map(drop)
}

#[tokio::test]
async fn project_directories_are_refused_with_cause_and_fix_and_nothing_written() -> Result<()> {
    run_cli_catalogue("bundles.yaml", 12).await.map(drop)
}

#[tokio::test]
async fn policy_files_are_refused_by_install_with_cause_and_fix_and_nothing_written() -> Result<()>
{
    // The same files also go through the parser the webhook starts with.
    for case in load("policy.yaml")? {
        let text = case.policy.clone().unwrap_or_default();
        match Policy::parse("policy.yaml", &text) {
            Ok(_) => panic!("{}: the webhook's parser accepts it", case.name),
            Err(e) => {
                let mut failures = Vec::new();
                check_words(&case, &e.to_string(), &mut failures);
                assert!(failures.is_empty(), "{}", failures.join("\n"));
            }
        }
    }
    run_cli_catalogue("policy.yaml", 12).await.map(drop)
}

/// The webhook's decision (what its server runs for every body) on bad AdmissionReviews: a 400
/// or a 403 with cause and fix, and no claim to record — the only thing the webhook writes.
#[test]
fn admission_reviews_are_refused_with_cause_and_fix_and_nothing_to_record() -> Result<()> {
    let cases = load("admission.yaml")?;
    assert!(cases.len() >= 12, "{} cases", cases.len());
    let cfg = Config::from_lookup(|k| (k == "IMAGE_REGISTRY").then(|| "reg.example".to_string()));
    let policy = Policy::default();
    let index = IngressIndex::new();
    let claims = ClaimIndex::new();
    let env = AdmissionEnv {
        cfg: &cfg,
        policy: &policy,
        index: &index,
        claims: &claims,
        namespaces: &jockey_core::index::NamespaceIndex::new(),
        services: &jockey_core::index::NO_SERVICES,
        images: &jockey_core::image::NoRecords,
    };
    let mut failures = Vec::new();
    for case in &cases {
        let endpoint = match case.endpoint.as_deref() {
            Some("validate") => Endpoint::Validate,
            _ => Endpoint::Mutate,
        };
        let body = case.body.as_deref().unwrap_or("");
        let result = handle(endpoint, body.as_bytes(), &env);
        let text = match (&result, case.class.as_str()) {
            (Err(bad), "bad-request") => bad.0.clone(),
            (Ok(h), "denied") if h.outcome == Outcome::Denied => {
                let out: serde_json::Value = serde_json::from_slice(&h.to_json())?;
                if out["response"]["status"]["code"] != 403 {
                    failures.push(format!("{}: not a 403: {out}", case.name));
                }
                if !h.claims.is_empty() {
                    failures.push(format!("{}: a denial asks for claims", case.name));
                }
                out["response"]["status"]["message"]
                    .as_str()
                    .unwrap_or("")
                    .to_string()
            }
            (r, class) => {
                failures.push(format!(
                    "{}: expected {class}, got {:?}",
                    case.name,
                    r.as_ref().map(|h| (h.outcome, h.message.clone()))
                ));
                continue;
            }
        };
        check_words(case, &text, &mut failures);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    Ok(())
}

/// The files the tests above run, each by its runner.
const CATALOGUE: [&str; 4] = ["cli.yaml", "bundles.yaml", "policy.yaml", "admission.yaml"];

/// The catalogue is what the README says it is: every file in `tests/bad_inputs/` is one the
/// tests above run, case names are unique, and the counts are the README's ("103 cases (50
/// command lines, 20 project directories, 17 policy files, 16 AdmissionReviews)").
#[test]
fn the_catalogue_is_what_the_readme_says_and_every_file_runs() -> Result<()> {
    let dir = repo_root().join("tests/bad_inputs");
    let mut files: Vec<String> = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n != "README.md")
        .collect();
    files.sort();
    let mut run: Vec<String> = CATALOGUE.iter().map(|f| f.to_string()).collect();
    run.sort();
    assert_eq!(
        files,
        run,
        "files in {} that no test runs (or gone)",
        dir.display()
    );

    let mut counts = Vec::new();
    let mut names = std::collections::BTreeSet::new();
    for f in CATALOGUE {
        let cases = load(f)?;
        for c in &cases {
            assert!(
                names.insert(c.name.clone()),
                "case {} appears twice",
                c.name
            );
        }
        counts.push(cases.len());
    }
    let readme = std::fs::read_to_string(repo_root().join("README.md"))?;
    let at = readme
        .find("is the bad-input catalogue: ")
        .context("the README no longer describes the catalogue")?;
    let numbers: Vec<usize> = readme[at..]
        .split(')')
        .next()
        .unwrap_or_default()
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|w| w.parse().ok())
        .collect();
    let total: usize = counts.iter().sum();
    let mut want = vec![total];
    want.extend(&counts);
    assert_eq!(
        numbers, want,
        "the README says (total, command lines, project directories, policy files, \
         AdmissionReviews) = {numbers:?}; the catalogue holds {want:?}"
    );
    Ok(())
}
