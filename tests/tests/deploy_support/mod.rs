//! Support for the `deploy` end-to-end tests: the plugin as a child process, scratch project
//! directories, a per-test builder namespace, resourceVersion snapshots, and a "node without a
//! kubelet" that lets a test play the kubelet for the pods it wants to fail.
//!
//! Why the last one: KWOK makes every pod on any node Running and Ready, and every Job pod
//! Succeeded, at once (it manages all nodes). To show `deploy` failing on a crashing pod or a
//! failed build, a test binds the pods of its own namespace (through a MutatingAdmissionPolicy
//! bound to that namespace only) to a node name no Node object has, so KWOK never touches them,
//! and then writes the pod status a real kubelet would write: CrashLoopBackOff, or a Kaniko
//! container that exited 1. (The pod garbage collector removes such orphans after 40 s; the
//! tests are done long before.)

#![allow(dead_code)]

pub mod served_logs;

use anyhow::{Context, Result, bail};
use jockey_e2e::{Broker, TestNamespace, kubeconfig_path, repo_root, wait_for};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use kube::api::{DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::discovery::ApiResource;
use kube::{Api, Client};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Registry name used by every test: nothing is pushed (KWOK fakes the build).
pub const REGISTRY: &str = "registry.local:5000";

/// The outcome of one plugin run.
#[derive(Debug)]
pub struct Run {
    pub ok: bool,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Run {
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

impl From<(Output, Duration)> for Run {
    fn from((out, elapsed): (Output, Duration)) -> Self {
        Run {
            ok: out.status.success(),
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).to_string(),
            elapsed,
        }
    }
}

pub fn jockey_bin() -> Result<PathBuf> {
    let bin = repo_root().join("target/debug/kubectl-jockey");
    if !bin.exists() {
        bail!(
            "{} is missing: run `cargo build -p kubectl-jockey` first (tests/e2e.sh does)",
            bin.display()
        );
    }
    Ok(bin)
}

/// Runs `kubectl-jockey ARGS` against the local cluster with the test's builder namespace and
/// `env` on top; nothing AWS-related leaks in from the developer's machine.
pub fn jockey(args: &[&str], builder_ns: &str, env: &[(&str, &str)]) -> Result<Run> {
    let mut cmd = jockey_command(args, builder_ns, env)?;
    let start = Instant::now();
    let out = cmd
        .output()
        .with_context(|| format!("running kubectl-jockey {args:?}"))?;
    Ok((out, start.elapsed()).into())
}

/// The command [`jockey`] runs, for a test that must watch its output while it runs.
pub fn jockey_command(args: &[&str], builder_ns: &str, env: &[(&str, &str)]) -> Result<Command> {
    let mut cmd = Command::new(jockey_bin()?);
    cmd.args(args);
    for var in [
        "AWS_PROFILE",
        "AWS_ENDPOINT_URL",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_REGION",
        "ALB_SHARED_GROUP_NAME",
        "DEPLOYMENT_DOMAIN",
        "IMAGE_REPOSITORY_PREFIX",
        "KANIKO_IMAGE",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("KUBECONFIG", kubeconfig_path())
        .env("IMAGE_REGISTRY", REGISTRY)
        .env("BUILDER_NAMESPACE", builder_ns)
        // A path that does not exist: the SDK must not read the developer's ~/.aws.
        .env("AWS_CONFIG_FILE", "/nonexistent/jockey-e2e/aws-config")
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/jockey-e2e/aws-credentials",
        )
        .env("AWS_EC2_METADATA_DISABLED", "true");
    for (k, v) in env {
        cmd.env(k, v);
    }
    Ok(cmd)
}

fn start_broker(ns: &[&str], builder: &str, env: &[(&str, &str)]) -> Result<Broker> {
    let mut all = vec![("IMAGE_REGISTRY", REGISTRY)];
    all.extend_from_slice(env);
    Broker::start(ns, builder, builder, &all)
}

/// A scratch directory removed on drop.
pub struct Scratch(pub PathBuf);

static SCRATCH: AtomicU32 = AtomicU32::new(0);

impl Scratch {
    pub fn new(tag: &str) -> Result<Self> {
        let n = SCRATCH.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("jockey-e2e-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        Ok(Self(dir))
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Copies `src` into `dst` (regular files and directories), in `reverse` order if asked, so
/// that two copies differ in creation order.
pub fn copy_tree(src: &Path, dst: &Path, reverse: bool) -> Result<()> {
    std::fs::create_dir_all(dst)?;
    let mut entries: Vec<_> = std::fs::read_dir(src)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    if reverse {
        entries.reverse();
    }
    for e in entries {
        let to = dst.join(e.file_name());
        if e.file_type()?.is_dir() {
            if e.file_name() == "__pycache__" {
                continue;
            }
            copy_tree(&e.path(), &to, reverse)?;
        } else {
            std::fs::copy(e.path(), &to)?;
        }
    }
    Ok(())
}

/// The example agent in a scratch directory.
/// Writes a `providers/version.py` that no other version has, so the next deploy of `dir` makes
/// a new instance.
pub fn write_version(dir: &Path, version: u32) -> Result<()> {
    std::fs::write(
        dir.join("providers/version.py"),
        format!("VERSION = {version}\n"),
    )
    .with_context(|| format!("writing version {version} into {}", dir.display()))
}

pub fn example_copy(tag: &str) -> Result<Scratch> {
    let s = Scratch::new(tag)?;
    copy_tree(&repo_root().join("examples/agent"), s.path(), false)?;
    Ok(s)
}

/// A project namespace, a builder namespace prepared with `setup-builder`, and a build broker
/// answering the project namespace's requests (claims in the builder namespace, so that tests
/// never see each other's).
pub struct Env {
    pub client: Client,
    pub ns: TestNamespace,
    pub builder: TestNamespace,
    pub broker: Broker,
    cleaned: bool,
}

/// A test that panicked never reached [`Env::cleanup`]: its namespaces go anyway.
impl Drop for Env {
    fn drop(&mut self) {
        if !self.cleaned {
            for ns in [&self.ns.name, &self.builder.name] {
                let _ = jockey_e2e::kubectl(&["delete", "namespace", ns, "--wait=false"]);
            }
        }
    }
}

impl Env {
    pub async fn new(client: &Client, tag: &str) -> Result<Self> {
        Self::with_broker_env(client, tag, &[]).await
    }

    /// [`Env::new`] with `env` for the broker on top of the test registry.
    pub async fn with_broker_env(client: &Client, tag: &str, env: &[(&str, &str)]) -> Result<Self> {
        let ns = TestNamespace::create(client, tag).await?;
        let builder = TestNamespace::create(client, &format!("{tag}-b")).await?;
        let run = jockey(&["setup-builder", "-n", &builder.name], &builder.name, &[])?;
        assert!(run.ok, "setup-builder failed: {}", run.all());
        let broker = start_broker(&[&ns.name], &builder.name, env)?;
        Ok(Self {
            client: client.clone(),
            ns,
            builder,
            broker,
            cleaned: false,
        })
    }

    /// Replaces the broker with one that also answers `more` namespaces (a second tenant's),
    /// with `env` on top of the test registry.
    pub fn restart_broker(&mut self, more: &[&str], env: &[(&str, &str)]) -> Result<()> {
        let mut all = vec![self.ns.name.as_str()];
        all.extend_from_slice(more);
        self.broker = start_broker(&all, &self.builder.name, env)?;
        Ok(())
    }

    /// Replaces the broker with one holding only the identity an installation gives it (its
    /// service account and `manifests/broker/rbac.yaml`), with `env` on top of the test registry.
    pub fn run_broker_as_installed(&mut self, env: &[(&str, &str)]) -> Result<()> {
        let identity = jockey_e2e::broker::identity(&self.builder.name, &self.builder.name)?;
        let mut all = vec![("IMAGE_REGISTRY", REGISTRY)];
        all.extend_from_slice(env);
        self.broker = Broker::start_as(
            &identity,
            &[&self.ns.name],
            &self.builder.name,
            &self.builder.name,
            &all,
        )?;
        Ok(())
    }

    /// `kubectl-jockey ARGS -n <ns>`.
    pub fn jockey(&self, args: &[&str]) -> Result<Run> {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["-n", &self.ns.name]);
        jockey(&all, &self.builder.name, &[])
    }

    /// Writes version `version` of the project in `dir` and deploys it, waiting for its rollout.
    pub fn deploy_version(&self, dir: &Path, project: &str, version: u32) -> Result<Run> {
        write_version(dir, version)?;
        let run = self.jockey(&[
            "deploy",
            &dir.to_string_lossy(),
            "--project",
            project,
            "--timeout",
            "120s",
        ])?;
        anyhow::ensure!(run.ok, "deploy {project} v{version} failed: {}", run.all());
        Ok(run)
    }

    pub async fn cleanup(mut self) -> Result<()> {
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        for ns in [&self.ns.name, &self.builder.name] {
            namespaces
                .delete(ns, &DeleteParams::background())
                .await
                .with_context(|| format!("deleting namespace {ns}"))?;
        }
        self.cleaned = true;
        Ok(())
    }
}

/// Every namespaced kind the plugin writes (`kubectl-jockey/src`: the project's objects, its
/// deploy Lease, the build's Job and credentials Secret, `setup-builder`'s service account) and
/// what those writes make (ReplicaSets, pods): what "a redeploy writes nothing" is checked
/// against.
pub const WRITTEN_KINDS: [(&str, &str, &str, &str); 11] = [
    ("apps", "v1", "Deployment", "deployments"),
    ("apps", "v1", "ReplicaSet", "replicasets"),
    ("", "v1", "Service", "services"),
    ("networking.k8s.io", "v1", "Ingress", "ingresses"),
    ("", "v1", "ConfigMap", "configmaps"),
    ("", "v1", "Secret", "secrets"),
    ("", "v1", "Pod", "pods"),
    ("batch", "v1", "Job", "jobs"),
    ("coordination.k8s.io", "v1", "Lease", "leases"),
    ("", "v1", "ServiceAccount", "serviceaccounts"),
    (
        "jockey.agentops.ai",
        "v1alpha1",
        "BuildRequest",
        "buildrequests",
    ),
];

/// `kind/name -> resourceVersion` of every object of [`WRITTEN_KINDS`] in `ns` and `builder_ns`,
/// and of the two namespaces themselves (`setup-builder` labels its own).
pub async fn resource_versions(
    client: &Client,
    ns: &str,
    builder_ns: &str,
) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let kinds = WRITTEN_KINDS;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    for namespace in [ns, builder_ns] {
        let n = namespaces.get(namespace).await?;
        out.insert(
            format!("Namespace/{namespace}"),
            n.metadata.resource_version.unwrap_or_default(),
        );
    }
    for namespace in [ns, builder_ns] {
        for (group, version, kind, plural) in kinds {
            let ar = ApiResource {
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
            let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &ar);
            for o in api.list(&ListParams::default()).await?.items {
                let name = o.metadata.name.clone().unwrap_or_default();
                if name == "kube-root-ca.crt" {
                    continue;
                }
                out.insert(
                    format!("{namespace}/{kind}/{name}"),
                    o.metadata.resource_version.clone().unwrap_or_default(),
                );
            }
        }
    }
    Ok(out)
}

/// Names of the ConfigMaps in `ns` (without the API server's own).
pub async fn configmaps(client: &Client, ns: &str) -> Result<Vec<String>> {
    Ok(Api::<ConfigMap>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter_map(|c| c.metadata.name)
        .filter(|n| n != "kube-root-ca.crt")
        .collect())
}

/// The `instance-<h>` a `--dry-run=client -o json` run of the plugin would write.
pub fn dry_run_configmap_name(dir: &Path, project: &str) -> Result<String> {
    // A kubeconfig that does not exist: a client dry run must not need a cluster.
    let run = jockey(
        &[
            "deploy",
            &dir.to_string_lossy(),
            "--project",
            project,
            "--dry-run=client",
            "-o",
            "json",
        ],
        "builder",
        &[("KUBECONFIG", "/nonexistent/jockey-e2e/kubeconfig")],
    )?;
    if !run.ok {
        bail!("dry run failed: {}", run.all());
    }
    let list: serde_json::Value = serde_json::from_str(&run.stdout)
        .with_context(|| format!("parsing dry-run output: {}", run.stdout))?;
    list["items"]
        .as_array()
        .and_then(|items| items.iter().find(|o| o["kind"] == "ConfigMap"))
        .and_then(|cm| cm["metadata"]["name"].as_str())
        .map(str::to_string)
        .context("no ConfigMap in the dry-run output")
}

// ---------------------------------------------------------------------------------------------
// A node without a kubelet, where the test plays the kubelet.
// ---------------------------------------------------------------------------------------------

pub struct NoKubelet {
    client: Client,
    pub node: String,
    policy: String,
    ns: String,
}

fn map_resource(kind: &str, plural: &str) -> ApiResource {
    ApiResource {
        group: "admissionregistration.k8s.io".into(),
        version: "v1".into(),
        api_version: "admissionregistration.k8s.io/v1".into(),
        kind: kind.into(),
        plural: plural.into(),
    }
}

impl NoKubelet {
    /// Every pod created in `ns` from now on is bound to a node that does not exist, which KWOK
    /// therefore leaves alone.
    pub async fn pin(client: &Client, ns: &str) -> Result<Self> {
        let node = format!("nokubelet-{ns}");
        let policy = format!("e2e-nokubelet-{ns}");
        let policies: Api<DynamicObject> = Api::all_with(
            client.clone(),
            &map_resource("MutatingAdmissionPolicy", "mutatingadmissionpolicies"),
        );
        let p: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "MutatingAdmissionPolicy",
            "metadata": {"name": policy},
            "spec": {
                "matchConstraints": {"resourceRules": [{
                    "apiGroups": [""], "apiVersions": ["v1"],
                    "operations": ["CREATE"], "resources": ["pods"]}]},
                "failurePolicy": "Fail",
                "reinvocationPolicy": "Never",
                "mutations": [{"patchType": "ApplyConfiguration", "applyConfiguration": {
                    "expression": format!("Object{{spec: Object.spec{{nodeName: \"{node}\"}}}}")}}]
            }
        }))?;
        policies
            .create(&PostParams::default(), &p)
            .await
            .context("creating the MutatingAdmissionPolicy")?;
        let bindings: Api<DynamicObject> = Api::all_with(
            client.clone(),
            &map_resource(
                "MutatingAdmissionPolicyBinding",
                "mutatingadmissionpolicybindings",
            ),
        );
        let b: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "MutatingAdmissionPolicyBinding",
            "metadata": {"name": policy},
            "spec": {"policyName": policy, "matchResources": {"namespaceSelector": {
                "matchLabels": {"kubernetes.io/metadata.name": ns}}}}
        }))?;
        bindings
            .create(&PostParams::default(), &b)
            .await
            .context("creating the MutatingAdmissionPolicyBinding")?;
        let me = Self {
            client: client.clone(),
            node: node.clone(),
            policy,
            ns: ns.to_string(),
        };
        // Policies take effect after the API server's informer saw them: probe until a pod lands
        // on the node (server-side dry run, so nothing is left behind).
        me.wait_pinned(true).await?;
        Ok(me)
    }

    /// Waits until new pods in the namespace are (or are no longer) bound to the node.
    async fn wait_pinned(&self, pinned: bool) -> Result<()> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.ns);
        let probe: Pod = serde_json::from_value(json!({
            "metadata": {"name": "nokubelet-probe"},
            "spec": {"containers": [{"name": "c", "image": "probe"}]}
        }))?;
        let what = if pinned {
            "the MutatingAdmissionPolicy to take effect"
        } else {
            "the MutatingAdmissionPolicy to be gone"
        };
        wait_for(what, Duration::from_secs(30), || {
            let (pods, probe, node) = (pods.clone(), probe.clone(), self.node.clone());
            async move {
                let params = PostParams {
                    dry_run: true,
                    ..Default::default()
                };
                let p = pods.create(&params, &probe).await?;
                let on_node = p.spec.and_then(|s| s.node_name) == Some(node);
                Ok((on_node == pinned).then_some(()))
            }
        })
        .await
    }

    pub async fn cleanup(self) -> Result<()> {
        let bindings: Api<DynamicObject> = Api::all_with(
            self.client.clone(),
            &map_resource(
                "MutatingAdmissionPolicyBinding",
                "mutatingadmissionpolicybindings",
            ),
        );
        let _ = bindings
            .delete(&self.policy, &DeleteParams::default())
            .await;
        let policies: Api<DynamicObject> = Api::all_with(
            self.client.clone(),
            &map_resource("MutatingAdmissionPolicy", "mutatingadmissionpolicies"),
        );
        let _ = policies
            .delete(&self.policy, &DeleteParams::default())
            .await;
        // The namespace may be used on (a retry after a failure): wait until pods run normally.
        // The API server refreshes its compiled admission policies about once a second; a short
        // pause after the probe covers a refresh still in flight.
        self.wait_pinned(false).await?;
        tokio::time::sleep(Duration::from_secs(2)).await;
        Ok(())
    }
}

/// Waits for a pod matching `selector` in `ns` and writes `status` for it, as its kubelet would.
pub async fn play_kubelet(
    client: &Client,
    ns: &str,
    selector: &str,
    status: serde_json::Value,
) -> Result<String> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let name = wait_for(
        &format!("a pod {selector} in {ns}"),
        Duration::from_secs(60),
        || {
            let pods = pods.clone();
            let selector = selector.to_string();
            async move {
                let list = pods.list(&ListParams::default().labels(&selector)).await?;
                Ok(list.items.into_iter().find_map(|p| p.metadata.name))
            }
        },
    )
    .await?;
    pods.patch_status(
        &name,
        &PatchParams::default(),
        &Patch::Merge(json!({ "status": status })),
    )
    .await
    .with_context(|| format!("writing the status of pod {ns}/{name}"))?;
    Ok(name)
}
