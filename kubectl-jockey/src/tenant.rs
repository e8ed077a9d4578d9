//! `kubectl jockey tenant grant|revoke NAMESPACE (--user U | --group G | --serviceaccount NS:NAME)...`:
//! who holds the `jockey-tenant` ClusterRole ([`jockey_core::tenant`]) in a namespace.
//!
//! `grant` makes sure the ClusterRole is this plugin's (server-side applied, as `install` applies
//! it, when missing or different) and adds the subjects to the namespace's RoleBinding
//! `jockey-tenant`, keeping those already there; `revoke` removes only the subjects given and
//! deletes the binding once none is left. Every change of an existing binding carries the
//! resourceVersion it was read at, so two grants at once never lose a subject (the loser reads
//! again). Bad input is refused before the cluster is contacted; `--dry-run=client|server` and
//! `-o yaml|json` as `kubectl create rolebinding` has them.

use crate::cluster::{KubeArgs, is_forbidden, is_not_found};
use crate::deploy::DryRun;
use anyhow::{Context, Result, bail};
use jockey_core::tenant::{
    self, TENANT_ROLE, check_tenant_namespace, describe, is_tenant_binding, tenant_binding,
    with_subjects, without_subjects,
};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::{ClusterRole, RoleBinding, Subject};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::{Api, Client};
use serde_json::Value;

#[derive(clap::Args, Debug, Clone)]
pub struct TenantArgs {
    #[command(subcommand)]
    pub command: TenantCommand,
}

#[derive(clap::Subcommand, Debug, Clone)]
pub enum TenantCommand {
    /// Let users, groups or service accounts run jockey's tenant commands in NAMESPACE: binds the
    /// jockey-tenant ClusterRole there (RoleBinding jockey-tenant), adding to the subjects
    /// already bound.
    ///
    /// The ClusterRole (what `deploy`, `status`, `list`, `logs`, `rollback`, `delete`, `gc` and
    /// `secrets` need in their namespace, and nothing else) is applied when it is missing or
    /// older than this plugin's.
    ///
    /// Needs (an operator's): create and update RoleBindings in NAMESPACE, and the
    /// jockey-tenant ClusterRole's permissions (or `bind` on it); writing the ClusterRole needs
    /// cluster-admin (`kubectl jockey install` writes it too).
    Grant(SubjectsArgs),
    /// Take jockey's tenant commands in NAMESPACE away from the given subjects only; the
    /// RoleBinding jockey-tenant goes when none is left.
    ///
    /// Needs (an operator's): update and delete RoleBindings in NAMESPACE.
    Revoke(SubjectsArgs),
}

#[derive(clap::Args, Debug, Clone)]
pub struct SubjectsArgs {
    /// The tenant's namespace.
    #[arg(value_name = "NAMESPACE")]
    pub tenant_namespace: String,
    /// A user (repeatable), as the API server authenticates it.
    #[arg(long = "user", value_name = "USER")]
    pub users: Vec<String>,
    /// A group (repeatable).
    #[arg(long = "group", value_name = "GROUP")]
    pub groups: Vec<String>,
    /// A service account as NAMESPACE:NAME (repeatable), e.g. team-a:deployer.
    #[arg(long = "serviceaccount", value_name = "NAMESPACE:NAME")]
    pub service_accounts: Vec<String>,
    /// `client`: print the RoleBinding, contact no cluster; `server`: the API server checks
    /// everything, nothing is written.
    #[arg(long, value_enum, require_equals = true, num_args = 0..=1,
          default_missing_value = "client", default_value = "none")]
    pub dry_run: DryRun,
    /// Print the RoleBinding (as written, or as it would be) as yaml or json.
    #[arg(short = 'o', long, value_parser = ["yaml", "json"])]
    pub output: Option<String>,
    /// The builder namespace, where no tenant is ever granted anything.
    #[arg(long, value_name = "NAMESPACE", env = "BUILDER_NAMESPACE",
          default_value = jockey_core::config::DEFAULT_BUILDER_NAMESPACE)]
    pub builder_namespace: String,
}

/// A checked grant or revoke: the namespace and the subjects. Built before any cluster contact.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub namespace: String,
    pub subjects: Vec<Subject>,
}

impl Request {
    /// Every refusal of bad input, with the cause and the fix. Pure.
    pub fn new(kube: &KubeArgs, args: &SubjectsArgs, verb: &str) -> Result<Self> {
        let namespace = &args.tenant_namespace;
        if let Some(n) = kube.namespace.as_ref().filter(|n| *n != namespace) {
            bail!(
                "tenant {verb} takes the tenant's namespace as NAMESPACE ({namespace}), and -n \
                 says {n}; leave -n out: `kubectl jockey tenant {verb} {namespace} ...`"
            );
        }
        // The configured builder namespace, normalised as every command reads it.
        let builder = jockey_core::Config::from_lookup(|k| {
            (k == "BUILDER_NAMESPACE").then(|| args.builder_namespace.clone())
        })
        .builder_namespace;
        check_tenant_namespace(namespace, &builder).map_err(anyhow::Error::msg)?;
        let mut subjects = Vec::new();
        for u in &args.users {
            subjects.push(tenant::user_subject(u).map_err(anyhow::Error::msg)?);
        }
        for g in &args.groups {
            subjects.push(tenant::group_subject(g).map_err(anyhow::Error::msg)?);
        }
        for s in &args.service_accounts {
            subjects.push(tenant::service_account_subject(s).map_err(anyhow::Error::msg)?);
        }
        if subjects.is_empty() {
            bail!(
                "tenant {verb} {namespace} names no subject; name at least one with --user \
                 USER, --group GROUP or --serviceaccount NAMESPACE:NAME (each repeatable), e.g. \
                 `kubectl jockey tenant {verb} {namespace} --user alice`; nothing was written"
            );
        }
        // Once each: a subject named twice is one subject.
        let (subjects, _) = with_subjects(&[], &subjects);
        Ok(Self {
            namespace: namespace.clone(),
            subjects,
        })
    }
}

/// Where the lines go: stdout, unless stdout carries `-o` output.
fn say(structured: bool, line: &str) {
    if structured {
        eprintln!("{line}");
    } else {
        println!("{line}");
    }
}

fn print_binding(b: &RoleBinding, output: Option<&str>) -> Result<()> {
    // As kubectl prints objects: without the server's bookkeeping of field owners.
    let mut b = b.clone();
    b.metadata.managed_fields = None;
    let b = &b;
    match output {
        Some("json") => println!("{}", serde_json::to_string_pretty(b)?),
        Some(_) => print!("{}", serde_yaml::to_string(b)?),
        None => {}
    }
    Ok(())
}

/// A RoleBinding as applied: apiVersion and kind, and without what the server keeps itself.
fn applied(b: &RoleBinding, resource_version: Option<String>) -> Result<Value> {
    let mut v = serde_json::to_value(b)?;
    v["apiVersion"] = serde_json::json!("rbac.authorization.k8s.io/v1");
    v["kind"] = serde_json::json!("RoleBinding");
    if let Some(rv) = resource_version {
        // A precondition: the apply fails with a conflict if the binding changed since read.
        v["metadata"]["resourceVersion"] = serde_json::json!(rv);
    }
    Ok(v)
}

const KIND: &str = "rolebinding.rbac.authorization.k8s.io";
/// Attempts of a grant or revoke that lost a race to another change of the binding.
const ATTEMPTS: usize = 5;

fn is_conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}

/// The RoleBinding `jockey-tenant` of `ns`, refused when it binds anything but the tenant role.
async fn read_binding(api: &Api<RoleBinding>, ns: &str) -> Result<Option<RoleBinding>> {
    let live = api
        .get_opt(TENANT_ROLE)
        .await
        .with_context(|| format!("reading RoleBinding {ns}/{TENANT_ROLE}"))?;
    if let Some(b) = &live
        && !is_tenant_binding(b)
    {
        bail!(
            "RoleBinding {ns}/{TENANT_ROLE} binds {} {:?}, not ClusterRole {TENANT_ROLE}, so \
             kubectl jockey did not make it and leaves it alone; rename or delete it \
             (`kubectl delete rolebinding {TENANT_ROLE} -n {ns}`), then run again",
            b.role_ref.kind,
            b.role_ref.name
        );
    }
    Ok(live)
}

/// Makes sure the ClusterRole is this plugin's; one line on what it did.
async fn ensure_cluster_role(client: &Client, dry: bool) -> Result<String> {
    let api: Api<ClusterRole> = Api::all(client.clone());
    let want = crate::install::tenant_cluster_role()?;
    let what = format!("clusterrole.rbac.authorization.k8s.io/{TENANT_ROLE}");
    let live = match api.get_opt(TENANT_ROLE).await {
        Ok(live) => live,
        // Whoever may bind it need not read it: bind it as it is (install keeps it current).
        Err(e) if is_forbidden(&e) => {
            return Ok(format!(
                "{what}: not checked (reading ClusterRoles is forbidden for you; \
                 `kubectl jockey install` keeps it current)"
            ));
        }
        Err(e) => return Err(e).with_context(|| format!("reading ClusterRole {TENANT_ROLE}")),
    };
    let current = live
        .as_ref()
        .is_some_and(|l| serde_json::to_value(&l.rules).ok() == Some(want["rules"].clone()));
    if current {
        return Ok(format!("{what} unchanged"));
    }
    let mut params = PatchParams::apply(crate::install::FIELD_MANAGER).force();
    params.dry_run = dry;
    api.patch(TENANT_ROLE, &params, &Patch::Apply(&want))
        .await
        .map_err(anyhow::Error::new)
        .map_err(|e| {
            crate::cluster::needs_role(
                e,
                "cluster-admin to write the jockey-tenant ClusterRole (missing or older than \
                 this plugin's; `kubectl jockey install` writes it too)",
            )
        })?;
    Ok(format!(
        "{what} {}{}",
        if live.is_some() { "updated" } else { "created" },
        if dry { " (server dry run)" } else { "" }
    ))
}

pub async fn run(kube: &KubeArgs, args: TenantArgs) -> Result<()> {
    match args.command {
        TenantCommand::Grant(a) => grant(kube, a).await,
        TenantCommand::Revoke(a) => revoke(kube, a).await,
    }
}

async fn grant(kube: &KubeArgs, args: SubjectsArgs) -> Result<()> {
    let req = Request::new(kube, &args, "grant")?;
    let structured = args.output.is_some();
    let ns = req.namespace.as_str();
    if args.dry_run == DryRun::Client {
        let b = tenant_binding(ns, req.subjects.clone());
        say(
            structured,
            &format!(
                "{KIND}/{TENANT_ROLE} configured in namespace {ns} (dry run: the subjects \
                 already bound there are kept by a real grant)"
            ),
        );
        return print_binding(&b, args.output.as_deref());
    }
    let dry = args.dry_run == DryRun::Server;
    let suffix = if dry { " (server dry run)" } else { "" };
    let client = kube.connect().await?.client;
    // A RoleBinding in a namespace that does not exist is the API server's 404 about the
    // namespace; say it plainly. (Whoever may not read namespaces goes on: the write tells.)
    if let Ok(None) = Api::<Namespace>::all(client.clone()).get_opt(ns).await {
        bail!(
            "namespace {ns} does not exist; create the tenant's namespace first (`kubectl create \
             namespace {ns}`), then grant; nothing was written"
        );
    }
    say(structured, &ensure_cluster_role(&client, dry).await?);
    let api: Api<RoleBinding> = Api::namespaced(client.clone(), ns);
    for attempt in 1..=ATTEMPTS {
        let live = read_binding(&api, ns).await?;
        let existing = live
            .as_ref()
            .and_then(|b| b.subjects.clone())
            .unwrap_or_default();
        let (subjects, added) = with_subjects(&existing, &req.subjects);
        let binding = tenant_binding(ns, subjects);
        if live.is_some() && added.is_empty() {
            say(
                structured,
                &format!(
                    "{KIND}/{TENANT_ROLE} unchanged in namespace {ns}: {} already bound",
                    names(&req.subjects)
                ),
            );
            return print_binding(live.as_ref().unwrap_or(&binding), args.output.as_deref());
        }
        let written = match &live {
            // Created, not applied: two first grants at once must not both "create" it, the
            // second replacing the first's subjects. The loser gets 409 and adds to it.
            None => {
                let params = PostParams {
                    dry_run: dry,
                    field_manager: Some(jockey_core::names::FIELD_MANAGER.to_string()),
                };
                api.create(&params, &binding).await
            }
            Some(l) => {
                let params = crate::cluster::apply_params(dry);
                let obj = applied(&binding, l.metadata.resource_version.clone())?;
                api.patch(TENANT_ROLE, &params, &Patch::Apply(&obj)).await
            }
        };
        match written {
            Ok(b) => {
                say(
                    structured,
                    &format!(
                        "{KIND}/{TENANT_ROLE} {} in namespace {ns}: {} may now run jockey's \
                         tenant commands there{suffix}",
                        if live.is_some() {
                            "configured"
                        } else {
                            "created"
                        },
                        names(&added)
                    ),
                );
                return print_binding(&b, args.output.as_deref());
            }
            Err(e) if is_conflict(&e) && attempt < ATTEMPTS => continue,
            Err(e) => {
                return Err(e).with_context(|| format!("writing RoleBinding {ns}/{TENANT_ROLE}"));
            }
        }
    }
    bail!(
        "RoleBinding {ns}/{TENANT_ROLE} kept changing while this grant ran ({ATTEMPTS} tries); \
         run it again"
    )
}

async fn revoke(kube: &KubeArgs, args: SubjectsArgs) -> Result<()> {
    let req = Request::new(kube, &args, "revoke")?;
    let structured = args.output.is_some();
    let ns = req.namespace.as_str();
    if args.dry_run == DryRun::Client {
        say(
            structured,
            &format!(
                "{KIND}/{TENANT_ROLE} in namespace {ns}: {} would be removed (dry run: what is \
                 bound there was not read)",
                names(&req.subjects)
            ),
        );
        return Ok(());
    }
    let dry = args.dry_run == DryRun::Server;
    let suffix = if dry { " (server dry run)" } else { "" };
    let client = kube.connect().await?.client;
    let api: Api<RoleBinding> = Api::namespaced(client.clone(), ns);
    for attempt in 1..=ATTEMPTS {
        let Some(live) = read_binding(&api, ns).await? else {
            say(
                structured,
                &format!(
                    "nothing to revoke: namespace {ns} has no RoleBinding {TENANT_ROLE}, so no \
                     one holds jockey's tenant role there"
                ),
            );
            return Ok(());
        };
        let existing = live.subjects.clone().unwrap_or_default();
        let (kept, removed, absent) = without_subjects(&existing, &req.subjects);
        if !absent.is_empty() {
            say(
                structured,
                &format!(
                    "{} not bound in namespace {ns}; nothing to remove for them",
                    names(&absent)
                ),
            );
        }
        if removed.is_empty() {
            say(
                structured,
                &format!("{KIND}/{TENANT_ROLE} unchanged in namespace {ns}"),
            );
            return print_binding(&live, args.output.as_deref());
        }
        let rv = live.metadata.resource_version.clone();
        let written = if kept.is_empty() {
            // The last subject: the binding goes, unless it changed since it was read.
            let params = DeleteParams {
                dry_run: dry,
                preconditions: Some(Preconditions {
                    uid: None,
                    resource_version: rv,
                }),
                ..Default::default()
            };
            api.delete(TENANT_ROLE, &params).await.map(|_| None)
        } else {
            let obj = applied(&tenant_binding(ns, kept), rv)?;
            api.patch(
                TENANT_ROLE,
                &crate::cluster::apply_params(dry),
                &Patch::Apply(&obj),
            )
            .await
            .map(Some)
        };
        match written {
            Ok(b) => {
                say(
                    structured,
                    &format!(
                        "{KIND}/{TENANT_ROLE} {} in namespace {ns}: {} may no longer run \
                         jockey's tenant commands there{suffix}",
                        if b.is_some() { "configured" } else { "deleted" },
                        names(&removed)
                    ),
                );
                return match b {
                    Some(b) => print_binding(&b, args.output.as_deref()),
                    None => Ok(()),
                };
            }
            Err(e) if (is_conflict(&e) || is_not_found(&e)) && attempt < ATTEMPTS => continue,
            Err(e) => {
                return Err(e).with_context(|| format!("writing RoleBinding {ns}/{TENANT_ROLE}"));
            }
        }
    }
    bail!(
        "RoleBinding {ns}/{TENANT_ROLE} kept changing while this revoke ran ({ATTEMPTS} tries); \
         run it again"
    )
}

fn names(subjects: &[Subject]) -> String {
    subjects.iter().map(describe).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        kube: KubeArgs,
        #[command(subcommand)]
        tenant: TenantCommand,
    }

    fn request(args: &[&str]) -> Result<Request> {
        let cli = Cli::try_parse_from(["t"].iter().chain(args).copied())?;
        let TenantCommand::Grant(a) = &cli.tenant else {
            unreachable!()
        };
        Request::new(&cli.kube, a, "grant")
    }

    #[test]
    fn a_grant_names_a_tenant_namespace_and_subjects_each_once() {
        let r = request(&[
            "grant",
            "team-a",
            "--user",
            "alice",
            "--group",
            "devs",
            "--serviceaccount",
            "team-a:ci",
            "--user",
            "alice",
            "--builder-namespace",
            "builds",
        ])
        .unwrap();
        assert_eq!(r.namespace, "team-a");
        let d: Vec<String> = r.subjects.iter().map(describe).collect();
        assert_eq!(d, ["user alice", "group devs", "serviceaccount team-a:ci"]);
        // -n may say the same namespace.
        assert!(request(&["-n", "team-a", "grant", "team-a", "--user", "a"]).is_ok());
    }

    #[test]
    fn bad_grants_are_refused_with_cause_and_fix() {
        for (args, want) in [
            (vec!["grant", "team-a"], "names no subject"),
            (
                vec!["grant", "Team_A", "--user", "a"],
                "is not a namespace name",
            ),
            (
                vec!["grant", "team-a", "--serviceaccount", "ci"],
                "is not NAMESPACE:NAME",
            ),
            (
                vec![
                    "grant",
                    "builder",
                    "--user",
                    "a",
                    "--builder-namespace",
                    "builder",
                ],
                "the builder namespace",
            ),
            (vec!["grant", "kube-system", "--user", "a"], "control plane"),
            (
                vec!["-n", "team-b", "grant", "team-a", "--user", "a"],
                "leave -n out",
            ),
        ] {
            let e = format!("{:#}", request(&args).unwrap_err());
            assert!(e.contains(want), "{args:?}: {e}");
        }
    }
}
