//! `kubectl jockey`: a thin clap dispatcher. Each command group lives in its own module so that
//! a reader finds a behaviour by the command's name:
//!
//! - [`deploy`][]: `deploy` (package, build, apply, wait for rollout); [`runtime_args`]: its
//!   runtime settings flags; [`secrets`]: `secrets set|list|unset`
//! - [`build`]: asking the build broker for an image ([`build::request`]) and which images an
//!   instance was built into ([`build::image_record`]); the build itself is `jockey-build`'s
//! - [`lifecycle`]: `status`, `list`, `logs`, `rollback`, `delete`, `gc`, one module each
//! - [`build::setup_builder`]: `setup-builder`; [`build::logs_builder`]: `logs-builder`
//! - [`tenant`]: `tenant grant|revoke` (who holds the jockey-tenant role in a namespace)
//! - [`cluster`]: client setup from kubectl's `--kubeconfig`, `--context`, `-n`, `--as`
//! - [`output`]: `-o json|yaml|wide`, progress spinners and plain lines

mod alb;
mod build;
mod check;
mod cluster;
mod deploy;
mod deploy_lock;
mod duration;
mod install;
mod lifecycle;
mod output;
mod rollout;
mod runtime_args;
mod secrets;
mod settings;
mod tenant;
mod watch;

use clap::{CommandFactory, Parser, Subcommand};
use std::process::ExitCode;

/// Deploy AI agent servers onto a multi-tenant Kubernetes cluster behind one shared ALB.
#[derive(Parser)]
#[command(name = "kubectl-jockey", bin_name = "kubectl jockey", version, about)]
struct Cli {
    #[command(flatten)]
    cluster: cluster::KubeArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Package DIR, build its image (unless already built), apply it and wait for the rollout.
    Deploy(deploy::DeployArgs),
    /// Set, list or unset a project's secret environment (Secret env-PROJECT); set and unset
    /// roll the pods and wait for them like deploy.
    Secrets(secrets::SecretsArgs),
    /// Show a project's deployment, pods, image, content hash, URL and recent events.
    Status(lifecycle::status::StatusArgs),
    /// List the projects in the namespace (or all namespaces with -A).
    ///
    /// Needs: the jockey-tenant role in the namespace; with -A, list on Deployments and
    /// Ingresses in all namespaces (an operator's).
    List(lifecycle::list::ListArgs),
    /// Print (or follow) the logs of a project's pods.
    Logs(lifecycle::logs::LogsArgs),
    /// Re-point a project at an earlier instance (ConfigMap and image); no rebuild. Only a
    /// Deployment labelled with the project is changed.
    Rollback(lifecycle::rollback::RollbackArgs),
    /// Remove a project's Ingress, Service, Deployment and instance ConfigMaps, in that order;
    /// same-named objects without the project's label are left alone and named.
    Delete(lifecycle::delete::DeleteArgs),
    /// Remove instance ConfigMaps (labelled with a project) no Deployment or retained ReplicaSet
    /// references.
    ///
    /// Needs: the jockey-tenant role in the namespace; with -A, list on ConfigMaps, Deployments
    /// and ReplicaSets and delete on ConfigMaps in all namespaces (an operator's).
    Gc(lifecycle::gc::GcArgs),
    /// Create the builder namespace and its service account (no keys: builds get short-lived,
    /// project-scoped credentials when they start).
    /// `-n/--namespace` names the builder namespace (default: $BUILDER_NAMESPACE or `builder`).
    ///
    /// Needs (an operator's): cluster-admin, or create/patch on the builder Namespace (a
    /// cluster-scoped object) and create/patch on ServiceAccounts and get on Secrets in it.
    SetupBuilder(build::setup_builder::SetupBuilderArgs),
    /// `logs-builder PROJECT`: a project's own builds, as the build broker reports them on its
    /// BuildRequests in the namespace (-n): all a tenant needs.
    /// Without PROJECT, the Kaniko logs of every build Job in the builder namespace, where
    /// `-n/--namespace` names the builder namespace (default: $BUILDER_NAMESPACE or `builder`).
    ///
    /// Needs: with PROJECT, the tenant role; without, an operator's list on Pods and get on
    /// pods/log in the builder namespace (a tenant holds nothing there).
    LogsBuilder(build::logs_builder::LogsBuilderArgs),
    /// The shared ALB across all namespaces: groups, addresses, quota usage, controller pods
    /// and failure events; with AWS credentials also the load balancer, rules and target health.
    ///
    /// Needs (an operator's): list on Ingresses, Events and Pods in all namespaces (e.g. the
    /// built-in `view` ClusterRole bound cluster-wide); for the AWS part, ELBv2 read access.
    AlbStatus(alb::StatusArgs),
    /// List the Ingresses of the shared ALB group(s) (-n N, or -A for all namespaces).
    ///
    /// Needs: list on Ingresses and Events in the namespace (the jockey-tenant role has them);
    /// with -A, in all namespaces (an operator's).
    ListAlbIngresses(alb::ListArgs),
    /// Check every hop from DNS to the pods for HOST; exits non-zero when a check fails.
    ///
    /// Needs (an operator's): list on Ingresses in all namespaces, and on Services,
    /// EndpointSlices and Events in the host's namespace; for the AWS part, ELBv2 read access.
    ValidateAlbRouting(alb::ValidateArgs),
    /// Install jockey-webhook (manifests/base) with a generated CA and serving certificate, the
    /// caBundle set, and the jockey-tenant ClusterRole; run again to renew certificates near
    /// expiry. -n: namespace (jockey-system).
    ///
    /// Needs (an operator's): cluster-admin (it writes ClusterRoles and their bindings, webhook
    /// configurations and admission policies).
    Install(install::InstallArgs),
    /// Check an installation (or with --pre, a cluster before one) like `linkerd check`: the
    /// cluster, the webhook, the AWS Load Balancer Controller and AWS, the shared ALB and the
    /// builder; ✓ / ‼ / ✗ lines, each ✗ and ‼ with a hint and a README section; exits 1 on any ✗.
    /// -n: the webhook's namespace (jockey-system).
    ///
    /// Needs (an operator's): read access cluster-wide (e.g. the built-in `view` ClusterRole bound
    /// cluster-wide, plus get on the webhook's Secrets, webhook configurations, admission policies
    /// and IngressClasses), create on Services in a namespace the webhook answers (a server-side
    /// dry run: nothing is stored); for the AWS part, ec2:DescribeSubnets, acm:ListCertificates,
    /// acm:DescribeCertificate and ELBv2 read access. --pre needs only read access: it asks the
    /// API server what you may do.
    Check(check::run::CheckArgs),
    /// Remove everything `install` made. -n: namespace (jockey-system).
    ///
    /// Needs (an operator's): cluster-admin.
    Uninstall(install::UninstallArgs),
    /// Who may run jockey's tenant commands in a namespace: `grant` or `revoke` the
    /// jockey-tenant role (a RoleBinding of the ClusterRole `install` installs).
    ///
    /// Needs (an operator's): RoleBindings in the tenant's namespace (see each subcommand).
    Tenant(tenant::TenantArgs),
    /// Print a shell completion script, e.g. `kubectl jockey completion bash > ~/.jockey.bash`.
    Completion {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the client version.
    Version,
}

/// What a command needs, for the message of a 403 ([`cluster::needs_role`]).
const TENANT: &str = "the jockey-tenant role in the namespace, which a cluster admin grants \
                      with `kubectl jockey tenant grant NAMESPACE --user USER`";
const CLUSTER_ADMIN: &str = "cluster-admin";

fn needs(command: &Command) -> &'static str {
    match command {
        Command::Deploy(_) => {
            "the jockey-tenant role in the namespace and, for a build (until jockey's build \
             broker runs builds), read and write in the builder namespace (Jobs, Pods and their \
             logs, ConfigMaps, Secrets), which a tenant does not hold"
        }
        Command::List(a) if a.listing.all_namespaces => {
            "list on Deployments and Ingresses in all namespaces, with -A (an operator's role); \
             without -A it lists the namespace, which the jockey-tenant role allows"
        }
        Command::Gc(a) if a.all_namespaces => {
            "list on ConfigMaps, Deployments and ReplicaSets and delete on ConfigMaps in all \
             namespaces, with -A (an operator's role); without -A it collects in the \
             namespace, which the jockey-tenant role allows"
        }
        Command::Secrets(_)
        | Command::Status(_)
        | Command::List(_)
        | Command::Logs(_)
        | Command::Rollback(_)
        | Command::Delete(_)
        | Command::Gc(_) => TENANT,
        Command::ListAlbIngresses(a) if a.listing.all_namespaces => {
            "list on Ingresses and Events in all namespaces, with -A (an operator's role)"
        }
        Command::ListAlbIngresses(_) => TENANT,
        Command::SetupBuilder(_) => {
            "cluster-admin, or create/patch on the builder Namespace and create/patch on \
             ServiceAccounts and get on Secrets in it (an operator's role)"
        }
        Command::LogsBuilder(_) => {
            "list on Pods and get on pods/log in the builder namespace (an operator's role, which \
             a tenant never holds)"
        }
        Command::AlbStatus(_) => {
            "list on Ingresses, Events and Pods in all namespaces (an operator's role, e.g. the \
             built-in view ClusterRole bound cluster-wide)"
        }
        Command::ValidateAlbRouting(_) => {
            "list on Ingresses in all namespaces and on Services, EndpointSlices and Events in \
             the host's namespace (an operator's role)"
        }
        Command::Install(_) | Command::Uninstall(_) => CLUSTER_ADMIN,
        Command::Check(_) => {
            "read access cluster-wide (e.g. the built-in view ClusterRole bound cluster-wide, \
             plus get on the webhook's Secrets and cluster-scoped admission objects) and create \
             on Services in a namespace the webhook answers, for a dry run (an operator's role)"
        }
        Command::Tenant(_) => {
            "create, update and delete on RoleBindings in the tenant's namespace, holding the \
             jockey-tenant ClusterRole's permissions or `bind` on it (an operator's role)"
        }
        // They make no request.
        Command::Completion { .. } | Command::Version => "nothing of the cluster",
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    // A 403 says which role the command needs, whichever call of it was refused.
    let role = needs(&cli.command);
    dispatch(cli)
        .await
        .map_err(|e| cluster::needs_role(e, role))
}

async fn dispatch(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Deploy(args) => deploy::run(&cli.cluster, args).await,
        Command::Secrets(args) => secrets::run(&cli.cluster, args).await,
        Command::Status(args) => lifecycle::status::run(&cli.cluster, args).await,
        Command::List(args) => lifecycle::list::run(&cli.cluster, args).await,
        Command::Logs(args) => lifecycle::logs::run(&cli.cluster, args).await,
        Command::Rollback(args) => lifecycle::rollback::run(&cli.cluster, args).await,
        Command::Delete(args) => lifecycle::delete::run(&cli.cluster, args).await,
        Command::Gc(args) => lifecycle::gc::run(&cli.cluster, args).await,
        Command::SetupBuilder(args) => build::setup_builder::run(&cli.cluster, args).await,
        Command::LogsBuilder(args) => build::logs_builder::run(&cli.cluster, args).await,
        Command::AlbStatus(args) => alb::status(&cli.cluster, args).await,
        Command::ListAlbIngresses(args) => alb::list(&cli.cluster, args).await,
        Command::ValidateAlbRouting(args) => alb::validate(&cli.cluster, args).await,
        Command::Install(args) => install::install(&cli.cluster, args).await,
        Command::Uninstall(args) => install::uninstall(&cli.cluster, args).await,
        Command::Check(args) => check::run::run(&cli.cluster, args).await,
        Command::Tenant(args) => tenant::run(&cli.cluster, args).await,
        Command::Completion { shell } => {
            let mut cmd = Cli::command();
            // kubectl finds plugins by binary name; completions are for `kubectl-jockey`.
            clap_complete::generate(shell, &mut cmd, "kubectl-jockey", &mut std::io::stdout());
            Ok(())
        }
        Command::Version => {
            println!("kubectl-jockey {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            if let Some(i) = err.downcast_ref::<deploy::Interrupted>() {
                eprintln!("{i}");
                return ExitCode::from(130);
            }
            eprintln!("error: {}", cluster::error_chain(&err));
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    /// `install` takes the groups every project may join (they left the policy file) and refuses,
    /// before writing anything, a policy the webhook would refuse at start with those settings.
    #[test]
    fn install_carries_allowed_groups_and_checks_the_policy_with_the_settings() {
        let parse = |args: &[&str]| {
            let cli =
                Cli::try_parse_from(["kubectl-jockey", "install"].iter().chain(args).copied())
                    .unwrap();
            match cli.command {
                Command::Install(a) => install::options(&cli.cluster, &a),
                _ => unreachable!(),
            }
        };
        let o = parse(&["--alb-allowed-groups", "alb-internal, alb-edge"]).unwrap();
        assert_eq!(o.config.alb_allowed_groups, ["alb-internal", "alb-edge"]);
        let dir = tempfile::tempdir().unwrap();
        let policy = dir.path().join("policy.yaml");
        std::fs::write(&policy, "extraHosts:\n  aaaa: ['*.apps.example.com']\n").unwrap();
        let policy = policy.to_string_lossy().to_string();
        assert!(parse(&["--policy-file", &policy]).is_ok());
        let e = parse(&[
            "--policy-file",
            &policy,
            "--deployment-domain",
            "apps.example.com",
        ])
        .err()
        .unwrap()
        .to_string();
        assert!(e.contains("inside the deployment domain"), "{e}");
        let e = parse(&["--alb-allowed-groups", "Not A Group"])
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("ALB_ALLOWED_GROUPS"), "{e}");
    }
}
