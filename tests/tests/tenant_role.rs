//! The tenant role through the real API server's RBAC: what `kubectl jockey tenant grant` gives
//! a tenant is everything its commands need in its own namespace, and nothing else.
//!
//! Users `tenant-a` and `tenant-b` are granted their own namespaces; the test acts as them by
//! impersonation (the plugin's `--as`, and kube clients with `Impersonate-User`), from the
//! cluster admin's kubeconfig. Real requests must be refused (403) outside a tenant's
//! namespace; `SubjectAccessReview`s only add the whole rule table on top.
//!
//! A tenant's builds go through jockey's build broker (BuildRequests in its own namespace): its
//! `deploy` of new files works with the role alone, here with KWOK playing the build (with a real
//! Kaniko build on the real node: `real_tenant.rs`).

mod deploy_support;

use anyhow::{Context, Result, bail, ensure};
use deploy_support::served_logs::{LogFile, ServedLogs};
use deploy_support::{Env, Run, example_copy, jockey};
use jockey_core::tenant::{TENANT_ROLE, TENANT_RULES};
use jockey_e2e::{TestNamespace, client, kubeconfig_path, kubectl};
use k8s_openapi::api::authorization::v1::SubjectAccessReview;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Secret, ServiceAccount};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::api::rbac::v1::{ClusterRole, RoleBinding};
use kube::api::{DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::discovery::ApiResource;
use kube::{Api, Client, Config};
use serde_json::json;

const TENANT_A: &str = "tenant-a";
const TENANT_B: &str = "tenant-b";

/// A user acting in its namespace through the plugin, as `--as USER -n NAMESPACE`.
struct Tenant<'a> {
    user: &'a str,
    ns: &'a str,
    builder: &'a str,
}

impl Tenant<'_> {
    /// `kubectl-jockey ARGS -n <ns> --as <user>`: the API server authorises every request of the
    /// command as the tenant.
    fn run(&self, args: &[&str]) -> Result<Run> {
        let mut all = args.to_vec();
        all.extend(["-n", self.ns, "--as", self.user]);
        jockey(&all, self.builder, &[])
    }

    /// [`Tenant::run`] that must succeed.
    fn ok(&self, args: &[&str]) -> Result<Run> {
        let run = self.run(args)?;
        ensure!(
            run.ok,
            "{} `{}` failed: {}",
            self.user,
            args.join(" "),
            run.all()
        );
        Ok(run)
    }
}

/// The admin's kubeconfig, impersonating `user` (no groups: only what is bound to the user).
async fn client_as(user: &str) -> Result<Client> {
    let kc = Kubeconfig::read_from(kubeconfig_path())?;
    let mut config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await?;
    config.auth_info.impersonate = Some(user.to_string());
    Ok(Client::try_from(config)?)
}

/// `kubectl jockey tenant grant NS --user USER` as the admin, which must succeed.
fn grant(ns: &str, user: &str, builder: &str) -> Result<Run> {
    let run = jockey(&["tenant", "grant", ns, "--user", user], builder, &[])?;
    ensure!(run.ok, "grant {ns} to {user} failed: {}", run.all());
    Ok(run)
}

fn build_requests() -> ApiResource {
    ApiResource {
        group: "jockey.agentops.ai".into(),
        version: "v1alpha1".into(),
        api_version: "jockey.agentops.ai/v1alpha1".into(),
        kind: "BuildRequest".into(),
        plural: "buildrequests".into(),
    }
}

fn build_request(name: &str) -> Result<DynamicObject> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "jockey.agentops.ai/v1alpha1", "kind": "BuildRequest",
        "metadata": {"name": name},
        "spec": {"project": "p", "instance": "instance-0123456789abcdef"}
    }))?)
}

/// Records a request that was not refused with the API server's 403.
fn refused<T: std::fmt::Debug>(
    what: &str,
    outcome: Result<T, kube::Error>,
    failures: &mut Vec<String>,
) {
    match outcome {
        Err(kube::Error::Api(s)) if s.code == 403 => {}
        other => failures.push(format!("{what}: expected 403, got {other:?}")),
    }
}

/// Records a request that the API server's authorization refused (403) though it should not
/// have: a 404 (the BuildRequest kind before the broker installs it) is authorised.
fn authorised<T: std::fmt::Debug>(
    what: &str,
    outcome: Result<T, kube::Error>,
    failures: &mut Vec<String>,
) {
    if let Err(kube::Error::Api(s)) = &outcome
        && s.code == 403
    {
        failures.push(format!("{what}: refused: {}", s.message));
    }
    if let Err(e) = &outcome
        && !matches!(e, kube::Error::Api(s) if s.code == 404)
    {
        failures.push(format!("{what}: {e}"));
    }
}

/// What the API server's authorizer answers for `user` doing `verb` on `resource` (`res` or
/// `res/sub`) of `group` in `ns` (`""`: cluster-wide).
async fn allowed(
    admin: &Client,
    user: &str,
    verb: &str,
    group: &str,
    resource: &str,
    ns: &str,
) -> Result<bool> {
    let (resource, sub) = resource.split_once('/').unwrap_or((resource, ""));
    let review: SubjectAccessReview = serde_json::from_value(json!({
        "spec": {"user": user, "resourceAttributes": {
            "namespace": ns, "verb": verb, "group": group,
            "resource": resource, "subresource": sub, "name": ""
        }}
    }))?;
    let answer = Api::<SubjectAccessReview>::all(admin.clone())
        .create(&PostParams::default(), &review)
        .await
        .context("creating a SubjectAccessReview")?;
    Ok(answer.status.is_some_and(|s| s.allowed))
}

fn binding_subjects(ns: &str) -> Result<Option<Vec<String>>> {
    let out = kubectl(&["get", "rolebinding", TENANT_ROLE, "-n", ns, "-o", "json"])?;
    if !out.status.success() {
        return Ok(None);
    }
    let b: RoleBinding = serde_json::from_slice(&out.stdout)?;
    Ok(Some(
        b.subjects
            .unwrap_or_default()
            .iter()
            .map(jockey_core::tenant::describe)
            .collect(),
    ))
}

fn can_i(user: &str, verb: &str, resource: &str, ns: &str) -> Result<bool> {
    let out = kubectl(&["auth", "can-i", verb, resource, "-n", ns, "--as", user])?;
    Ok(String::from_utf8_lossy(&out.stdout).trim() == "yes")
}

/// `tenant grant` adds subjects to the namespace's RoleBinding and `tenant revoke` removes only
/// those named, the binding going with the last; two grants at once lose neither subject; the
/// ClusterRole is the core's rendering; dry runs write nothing; a RoleBinding of that name that
/// jockey did not make is left alone.
#[tokio::test]
async fn grant_and_revoke_bind_only_the_subjects_named() -> Result<()> {
    let client = client().await?;
    let ns = TestNamespace::create(&client, "tnt-grant").await?;
    let other = TestNamespace::create(&client, "tnt-foreign").await?;
    let outcome = async {
        let n = ns.name.as_str();
        let b = "builder";
        let run = grant(n, "u1", b)?;
        ensure!(
            run.stdout.contains(&format!(
                "rolebinding.rbac.authorization.k8s.io/{TENANT_ROLE} created"
            )),
            "{}",
            run.all()
        );
        // The ClusterRole the binding names is the core's rendering (and the manifest's).
        let role = Api::<ClusterRole>::all(client.clone())
            .get(TENANT_ROLE)
            .await?;
        ensure!(
            serde_json::to_value(&role.rules)?
                == serde_json::to_value(jockey_core::tenant::tenant_cluster_role().rules)?,
            "ClusterRole {TENANT_ROLE}: {:?}",
            role.rules
        );
        ensure!(can_i("u1", "create", "deployments.apps", n)?);
        ensure!(!can_i("u2", "create", "deployments.apps", n)?);

        let run = jockey(
            &[
                "tenant",
                "grant",
                n,
                "--user",
                "u2",
                "--group",
                "g1",
                "--serviceaccount",
                &format!("{n}:ci"),
                "--user",
                "u1",
            ],
            b,
            &[],
        )?;
        ensure!(run.ok && run.stdout.contains("configured"), "{}", run.all());
        let all = [
            "user u1".to_string(),
            "user u2".into(),
            "group g1".into(),
            format!("serviceaccount {n}:ci"),
        ];
        ensure!(binding_subjects(n)? == Some(all.to_vec()));
        let run = grant(n, "u1", b)?;
        ensure!(run.stdout.contains("unchanged"), "{}", run.all());

        // Dry runs: the server's writes nothing, the client's contacts no cluster.
        let before = kubectl(&["get", "rolebinding", TENANT_ROLE, "-n", n, "-o", "json"])?.stdout;
        let run = jockey(
            &[
                "tenant",
                "grant",
                n,
                "--user",
                "u9",
                "--dry-run=server",
                "-o",
                "json",
            ],
            b,
            &[],
        )?;
        ensure!(run.ok && run.stdout.contains("\"u9\""), "{}", run.all());
        ensure!(
            kubectl(&["get", "rolebinding", TENANT_ROLE, "-n", n, "-o", "json"])?.stdout == before,
            "a server dry run changed the binding"
        );
        let run = jockey(
            &[
                "tenant",
                "grant",
                n,
                "--user",
                "u9",
                "--dry-run=client",
                "-o",
                "yaml",
            ],
            b,
            &[("KUBECONFIG", "/nonexistent/jockey-e2e/kubeconfig")],
        )?;
        ensure!(
            run.ok && run.stdout.contains("kind: RoleBinding") && run.stdout.contains("name: u9"),
            "{}",
            run.all()
        );

        // Revoke removes only the subjects named; a subject not bound is said to be.
        let run = jockey(
            &["tenant", "revoke", n, "--user", "u2", "--user", "nobody"],
            b,
            &[],
        )?;
        ensure!(
            run.ok && run.stdout.contains("user nobody not bound"),
            "{}",
            run.all()
        );
        ensure!(
            binding_subjects(n)?
                == Some(vec![
                    "user u1".to_string(),
                    "group g1".into(),
                    format!("serviceaccount {n}:ci")
                ])
        );
        ensure!(!can_i("u2", "create", "deployments.apps", n)?);
        ensure!(can_i("u1", "create", "deployments.apps", n)?);
        let sa = format!("{n}:ci");
        let run = jockey(
            &[
                "tenant",
                "revoke",
                n,
                "--user",
                "u1",
                "--group",
                "g1",
                "--serviceaccount",
                &sa,
            ],
            b,
            &[],
        )?;
        ensure!(run.ok && run.stdout.contains("deleted"), "{}", run.all());
        ensure!(
            binding_subjects(n)?.is_none(),
            "the binding outlived its last subject"
        );
        ensure!(!can_i("u1", "create", "deployments.apps", n)?);
        let run = jockey(&["tenant", "revoke", n, "--user", "u1"], b, &[])?;
        ensure!(
            run.ok && run.stdout.contains("nothing to revoke"),
            "{}",
            run.all()
        );

        // Two first grants at once: the API server lets one create the binding, the other adds
        // to it.
        let spawn = |user: &str| {
            deploy_support::jockey_command(&["tenant", "grant", n, "--user", user], b, &[])
                .and_then(|mut c| Ok(c.output()?))
        };
        let (x, y) = std::thread::scope(|s| {
            let x = s.spawn(|| spawn("racer-x"));
            let y = s.spawn(|| spawn("racer-y"));
            (x.join(), y.join())
        });
        let (x, y) = (
            x.map_err(|_| anyhow::anyhow!("grant thread panicked"))??,
            y.map_err(|_| anyhow::anyhow!("grant thread panicked"))??,
        );
        ensure!(x.status.success() && y.status.success(), "{x:?} {y:?}");
        let mut subjects = binding_subjects(n)?.unwrap_or_default();
        subjects.sort();
        ensure!(
            subjects == ["user racer-x", "user racer-y"],
            "racing grants: {subjects:?}"
        );

        // Someone else's RoleBinding of that name is never taken over.
        let o = other.name.as_str();
        jockey_e2e::kubectl_ok(&[
            "create",
            "rolebinding",
            TENANT_ROLE,
            "-n",
            o,
            "--clusterrole",
            "view",
            "--user",
            "someone",
        ])?;
        let before = kubectl(&["get", "rolebinding", TENANT_ROLE, "-n", o, "-o", "json"])?.stdout;
        let run = jockey(&["tenant", "grant", o, "--user", "u1"], b, &[])?;
        ensure!(
            !run.ok && run.stderr.contains("kubectl jockey did not make it"),
            "{}",
            run.all()
        );
        ensure!(
            kubectl(&["get", "rolebinding", TENANT_ROLE, "-n", o, "-o", "json"])?.stdout == before
        );
        let run = jockey(
            &["tenant", "grant", "tnt-no-such-namespace", "--user", "u1"],
            b,
            &[],
        )?;
        ensure!(
            !run.ok
                && run
                    .stderr
                    .contains("namespace tnt-no-such-namespace does not exist"),
            "{}",
            run.all()
        );
        Ok(())
    }
    .await;
    ns.cleanup().await?;
    other.cleanup().await?;
    outcome
}

/// Everything outside a tenant's own namespace is refused to it by the API server: the builder
/// namespace (its Secrets, Jobs, ConfigMaps, pods), another tenant's namespace (BuildRequests,
/// ConfigMaps, Secrets, Deployments), what is not a tenant command's in its own (Jobs, RBAC,
/// ServiceAccounts, listing Secrets, the broker's `buildrequests/status`) and everything
/// cluster-scoped. The plugin's commands, run as that tenant, say which role they need.
#[tokio::test]
async fn a_tenant_is_refused_everything_outside_its_namespace() -> Result<()> {
    let admin = client().await?;
    // The builder namespace, prepared with `setup-builder` by the admin, and tenant-a's.
    let env = Env::new(&admin, "tnt-wall-a").await?;
    let ns_b = TestNamespace::create(&admin, "tnt-wall-b").await?;
    let outcome = async {
        let (a, bns, builder) = (
            env.ns.name.as_str(),
            ns_b.name.as_str(),
            env.builder.name.as_str(),
        );
        grant(a, TENANT_A, builder)?;
        grant(bns, TENANT_B, builder)?;
        // Objects of the admin's in the builder namespace that a tenant must not touch.
        let cm: ConfigMap = serde_json::from_value(json!({
            "metadata": {"name": "build-settings"}, "data": {"k": "v"}
        }))?;
        Api::<ConfigMap>::namespaced(admin.clone(), builder)
            .create(&PostParams::default(), &cm)
            .await?;
        let secret: Secret = serde_json::from_value(json!({
            "metadata": {"name": "push-credentials"}, "stringData": {"token": "s3cr3t"}
        }))?;
        Api::<Secret>::namespaced(admin.clone(), builder)
            .create(&PostParams::default(), &secret)
            .await?;

        let b = client_as(TENANT_B).await?;
        let pp = PostParams::default();
        let mut failures = Vec::new();
        let job: Job = serde_json::from_value(json!({
            "metadata": {"name": "mine"},
            "spec": {"template": {"spec": {"restartPolicy": "Never",
                "containers": [{"name": "c", "image": "registry.local:5000/x:1"}]}}}
        }))?;
        let some_cm: ConfigMap =
            serde_json::from_value(json!({"metadata": {"name": "planted"}, "data": {"k": "v"}}))?;
        let some_secret: Secret =
            serde_json::from_value(json!({"metadata": {"name": "planted"}}))?;

        // The builder namespace.
        let secrets = Api::<Secret>::namespaced(b.clone(), builder);
        refused("list Secrets in the builder namespace", secrets.list(&ListParams::default()).await, &mut failures);
        refused("get a Secret in the builder namespace", secrets.get("push-credentials").await, &mut failures);
        refused(
            "create a Job in the builder namespace",
            Api::<Job>::namespaced(b.clone(), builder).create(&pp, &job).await,
            &mut failures,
        );
        refused(
            "patch a ConfigMap in the builder namespace",
            Api::<ConfigMap>::namespaced(b.clone(), builder)
                .patch("build-settings", &PatchParams::default(), &Patch::Merge(json!({"data": {"k": "mine"}})))
                .await,
            &mut failures,
        );
        refused(
            "list pods in the builder namespace",
            Api::<Pod>::namespaced(b.clone(), builder).list(&ListParams::default()).await,
            &mut failures,
        );
        refused(
            "get the builder's service account",
            Api::<ServiceAccount>::namespaced(b.clone(), builder).get("jockey-builder").await,
            &mut failures,
        );
        // Another tenant's namespace.
        refused(
            "create a BuildRequest in tenant-a's namespace",
            Api::<DynamicObject>::namespaced_with(b.clone(), a, &build_requests())
                .create(&pp, &build_request("theirs")?)
                .await,
            &mut failures,
        );
        refused(
            "create a ConfigMap in tenant-a's namespace",
            Api::<ConfigMap>::namespaced(b.clone(), a).create(&pp, &some_cm).await,
            &mut failures,
        );
        refused(
            "create a Secret in tenant-a's namespace",
            Api::<Secret>::namespaced(b.clone(), a).create(&pp, &some_secret).await,
            &mut failures,
        );
        refused(
            "list Ingresses in tenant-a's namespace",
            Api::<Ingress>::namespaced(b.clone(), a).list(&ListParams::default()).await,
            &mut failures,
        );
        refused(
            "get a Deployment in tenant-a's namespace",
            Api::<k8s_openapi::api::apps::v1::Deployment>::namespaced(b.clone(), a).get("p").await,
            &mut failures,
        );
        // What no tenant command needs, in its own namespace.
        refused(
            "create a Job in its own namespace",
            Api::<Job>::namespaced(b.clone(), bns).create(&pp, &job).await,
            &mut failures,
        );
        refused(
            "list Secrets in its own namespace",
            Api::<Secret>::namespaced(b.clone(), bns).list(&ListParams::default()).await,
            &mut failures,
        );
        let rb: RoleBinding = serde_json::from_value(json!({
            "metadata": {"name": "more"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "admin"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": TENANT_B}]
        }))?;
        refused(
            "create a RoleBinding in its own namespace",
            Api::<RoleBinding>::namespaced(b.clone(), bns).create(&pp, &rb).await,
            &mut failures,
        );
        let sa: ServiceAccount = serde_json::from_value(json!({"metadata": {"name": "robot"}}))?;
        refused(
            "create a ServiceAccount in its own namespace",
            Api::<ServiceAccount>::namespaced(b.clone(), bns).create(&pp, &sa).await,
            &mut failures,
        );
        refused(
            "write buildrequests/status in its own namespace",
            Api::<DynamicObject>::namespaced_with(b.clone(), bns, &build_requests())
                .patch_status("mine", &PatchParams::default(), &Patch::Merge(json!({"status": {"phase": "Succeeded"}})))
                .await,
            &mut failures,
        );
        // Cluster-scoped: nothing, and nothing of all namespaces.
        refused(
            "list namespaces",
            Api::<Namespace>::all(b.clone()).list(&ListParams::default()).await,
            &mut failures,
        );
        refused(
            "list Ingresses in all namespaces",
            Api::<Ingress>::all(b.clone()).list(&ListParams::default()).await,
            &mut failures,
        );
        refused(
            "list ClusterRoles",
            Api::<ClusterRole>::all(b.clone()).list(&ListParams::default()).await,
            &mut failures,
        );
        // The same client is let through in its own namespace: the refusals above are RBAC's.
        authorised(
            "create a ConfigMap in its own namespace",
            Api::<ConfigMap>::namespaced(b.clone(), bns).create(&pp, &some_cm).await,
            &mut failures,
        );
        authorised(
            "create a BuildRequest in its own namespace",
            Api::<DynamicObject>::namespaced_with(b.clone(), bns, &build_requests())
                .create(&pp, &build_request("mine")?)
                .await,
            &mut failures,
        );
        let a_client = client_as(TENANT_A).await?;
        authorised(
            "tenant-a creates a BuildRequest in its own namespace",
            Api::<DynamicObject>::namespaced_with(a_client.clone(), a, &build_requests())
                .create(&pp, &build_request("mine")?)
                .await,
            &mut failures,
        );
        refused(
            "tenant-a reads a Secret in the builder namespace",
            Api::<Secret>::namespaced(a_client, builder).get("push-credentials").await,
            &mut failures,
        );

        // The whole rule table, by the authorizer: every verb of every rule in the tenant's own
        // namespace, none in another's, in the builder namespace or cluster-wide.
        for rule in TENANT_RULES {
            for resource in rule.resources {
                for verb in rule.verbs {
                    for (user, ns, want) in [
                        (TENANT_A, a, true),
                        (TENANT_B, a, false),
                        (TENANT_A, builder, false),
                        (TENANT_A, "", false),
                    ] {
                        let got = allowed(&admin, user, verb, rule.api_group, resource, ns).await?;
                        if got != want {
                            failures.push(format!(
                                "SubjectAccessReview: {user} {verb} {}/{resource} in {ns:?}: \
                                 allowed {got}, expected {want}",
                                rule.api_group
                            ));
                        }
                    }
                }
            }
        }
        for (verb, group, resource) in [
            ("create", "", "pods/exec"),
            ("create", "", "pods/portforward"),
            ("update", "jockey.agentops.ai", "buildrequests/status"),
            ("patch", "jockey.agentops.ai", "buildrequests/status"),
            ("create", "batch", "jobs"),
            ("list", "", "secrets"),
            ("create", "", "serviceaccounts/token"),
            ("impersonate", "", "users"),
        ] {
            if allowed(&admin, TENANT_A, verb, group, resource, a).await? {
                failures.push(format!("SubjectAccessReview: {TENANT_A} may {verb} {group}/{resource} in its own namespace"));
            }
        }

        // The plugin, as tenant-b, where tenant-b holds nothing: refused, naming the role.
        let tenant_b = Tenant { user: TENANT_B, ns: a, builder };
        for (args, needs) in [
            (vec!["status", "p"], "this command needs the jockey-tenant role in the namespace"),
            (vec!["secrets", "list", "p"], "this command needs the jockey-tenant role"),
        ] {
            let run = tenant_b.run(&args)?;
            if run.ok || !run.stderr.contains(needs) || !run.stderr.contains("User \"tenant-b\"") {
                failures.push(format!("{args:?} as tenant-b in tenant-a's namespace: {}", run.all()));
            }
        }
        let own_b = Tenant { user: TENANT_B, ns: bns, builder };
        for (args, needs) in [
            (vec!["list", "-A"], "with -A (an operator's role)"),
            (vec!["gc", "-A", "--dry-run"], "with -A (an operator's role)"),
            (vec!["logs-builder", "--project", "p", "--builder-namespace", builder], "in the builder namespace (an operator's role"),
            (vec!["alb-status", "--no-aws"], "in all namespaces (an operator's role"),
            (vec!["tenant", "grant", bns, "--user", "friend"], "RoleBindings in the tenant's namespace"),
        ] {
            // logs-builder reads -n as the builder namespace; the others the tenant's own.
            let run = if args[0] == "logs-builder" {
                let mut all = args.clone();
                all.extend(["-n", builder, "--as", TENANT_B]);
                jockey(&all, builder, &[])?
            } else {
                own_b.run(&args)?
            };
            if run.ok || !run.stderr.contains(needs) {
                failures.push(format!("{args:?} as tenant-b: {}", run.all()));
            }
        }
        ensure!(failures.is_empty(), "{} failure(s):\n{}", failures.len(), failures.join("\n"));
        Ok(())
    }
    .await;
    ns_b.cleanup().await?;
    env.cleanup().await?;
    outcome
}

/// A tenant runs the tenant commands on a project the admin deployed into its namespace:
/// `status`, `list`, `logs`, `secrets set/list/unset`, a `deploy` that needs no build, `rollback`,
/// `gc` and `delete`, with the jockey-tenant role alone (what they would read in the builder
/// namespace is skipped, and said to be); a deploy that needs a build is refused naming the role.
#[tokio::test]
async fn a_tenant_runs_the_tenant_commands_on_its_project() -> Result<()> {
    let admin = client().await?;
    let env = Env::new(&admin, "tnt-cmds").await?;
    let token = env.ns.name.clone();
    let line = format!("agent answering for {token}");
    let file = LogFile::new("tnt-cmds", &[&line])?;
    let served = ServedLogs::create(&admin, &env.ns.name, &file).await?;
    let dir = example_copy("tnt-cmds")?;
    let outcome = async {
        let (ns, builder) = (env.ns.name.as_str(), env.builder.name.as_str());
        grant(ns, TENANT_A, builder)?;
        // Deployed by the admin (the build needs the builder namespace until the broker lands),
        // twice, so that there is an instance to roll back to.
        env.deploy_version(dir.path(), "p", 1)?;
        env.deploy_version(dir.path(), "p", 2)?;
        let tenant = Tenant {
            user: TENANT_A,
            ns,
            builder,
        };

        let run = tenant.ok(&["status", "p"])?;
        ensure!(run.stdout.contains("Project:         p"), "{}", run.all());
        let run = tenant.ok(&["list"])?;
        ensure!(
            run.stdout.lines().any(|l| l.starts_with("p ")),
            "{}",
            run.all()
        );
        let run = tenant.ok(&["logs", "p"])?;
        ensure!(run.stdout.contains(&line), "{}", run.all());
        let run = tenant.ok(&["list-alb-ingresses"])?;
        ensure!(
            run.all().contains("ing-p") || run.all().contains("No Ingresses"),
            "{}",
            run.all()
        );

        tenant.ok(&[
            "secrets",
            "set",
            "p",
            "API_KEY=tenant-set",
            "--timeout",
            "120s",
        ])?;
        let run = tenant.ok(&["secrets", "list", "p"])?;
        ensure!(run.stdout.contains("API_KEY"), "{}", run.all());
        tenant.ok(&["secrets", "unset", "p", "API_KEY", "--timeout", "120s"])?;
        let run = tenant.ok(&["secrets", "list", "p"])?;
        ensure!(!run.stdout.contains("API_KEY"), "{}", run.all());

        // deploy without a build: files whose image is built (v2, the admin's) with a runtime
        // setting needs nothing outside the namespace. (--no-wait: the tenant cannot read the
        // IngressClasses that say no controller serves this namespace, so it would wait for an
        // address.)
        let path = dir.path().to_string_lossy().to_string();
        let run = tenant.ok(&[
            "deploy",
            &path,
            "--project",
            "p",
            "--replicas",
            "2",
            "--no-wait",
        ])?;
        ensure!(
            run.stderr.contains("already built; skipping the build"),
            "{}",
            run.all()
        );
        let replicas = Api::<k8s_openapi::api::apps::v1::Deployment>::namespaced(admin.clone(), ns)
            .get("p")
            .await?
            .spec
            .replicas;
        ensure!(
            replicas == Some(2),
            "replicas {replicas:?} after the tenant's deploy"
        );
        // New files: asked of the broker, with the role alone.
        deploy_support::write_version(dir.path(), 3)?;
        let run = tenant.ok(&[
            "deploy",
            &path,
            "--project",
            "p",
            "--timeout",
            "60s",
            "--no-wait",
        ])?;
        // Answered by the broker (the dependency image, already built, runs the new code).
        ensure!(
            run.stderr.contains("build p (") && run.stderr.contains("already built"),
            "{}",
            run.all()
        );
        let run = tenant.ok(&["logs-builder", "p"])?;
        ensure!(run.stdout.contains("Succeeded"), "{}", run.all());

        let run = tenant.ok(&["rollback", "p", "--timeout", "120s"])?;
        ensure!(run.all().contains("instance-"), "{}", run.all());

        let run = tenant.ok(&["gc", "--dry-run"])?;
        ensure!(!run.stderr.contains("skipped"), "{}", run.all());
        tenant.ok(&["gc", "--keep", "1", "--min-age", "0s"])?;

        let run = tenant.ok(&["delete", "p"])?;
        ensure!(
            run.stdout.contains("buildrequest.jockey.agentops.ai/"),
            "{}",
            run.all()
        );
        ensure!(run.stdout.contains("project p deleted"), "{}", run.all());
        let left = Api::<k8s_openapi::api::apps::v1::Deployment>::namespaced(admin.clone(), ns)
            .get_opt("p")
            .await?;
        if left.is_some() {
            bail!("deployment p is still there after the tenant's delete");
        }
        Ok(())
    }
    .await;
    drop(served);
    env.cleanup().await?;
    outcome
}
