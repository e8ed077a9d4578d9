//! `kubectl jockey check [--pre]`: gathers each group's facts ([`super::gather`],
//! [`super::aws`]), judges them (the group modules) and prints the results.

use super::{CheckResult, builder, cluster, controller, gather, pre, shared, webhook};
use crate::alb::report::{AwsView, ClusterState};
use crate::cluster::KubeArgs;
use crate::output::{self, OutputFormat};
use anyhow::{Result, bail};
use jockey_core::policy::Policy;
use kube::Client;
use std::collections::{BTreeMap, BTreeSet};

#[derive(clap::Args, Debug, Clone)]
pub struct CheckArgs {
    /// Check what an installation needs before it exists (the cluster, the AWS Load Balancer
    /// Controller, no conflicting objects) and whether you may install it.
    #[arg(long)]
    pub pre: bool,
    /// Output format: table (the default), json or yaml (a list of {group, id, outcome,
    /// message, hint, docs}).
    #[arg(short = 'o', long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    /// Name the webhook was installed with (-n/--namespace: its namespace, default
    /// jockey-system).
    #[arg(long, default_value = crate::install::DEFAULT_NAME)]
    pub name: String,
    /// Label selector of the AWS Load Balancer Controller's Deployment (any namespace).
    #[arg(long, value_name = "SELECTOR", default_value = crate::alb::fetch::DEFAULT_CONTROLLER_SELECTOR)]
    pub alb_controller_selector: String,
    /// The cluster's VPC: only its subnets count for the ALB (default: every subnet of the
    /// region tagged kubernetes.io/role/elb).
    #[arg(long, value_name = "VPC", env = "ALB_VPC_ID")]
    pub vpc_id: Option<String>,
    /// With --pre: the certificates will be cert-manager's; check its CRDs are installed.
    #[arg(long)]
    pub cert_manager: bool,
    /// Check only the cluster: skip the checks that read AWS (subnets, certificates, the load
    /// balancer's rules) even when AWS credentials are available.
    #[arg(long)]
    pub no_aws: bool,
    /// Settings, as for deploy; where the webhook and broker are installed, their own
    /// (DEPLOYMENT_DOMAIN, ALB_SHARED_GROUP_NAME, ALB_CERTIFICATE_ARN, IMAGE_REGISTRY,
    /// BUILDER_ROLE_ARN and the policy) are what is checked.
    #[command(flatten)]
    pub config: crate::settings::ConfigArgs,
}

/// A group whose facts could not be read: one ✗ saying why.
fn unreadable(group: &'static str, id: &'static str, err: &anyhow::Error) -> Vec<CheckResult> {
    vec![CheckResult::fail(
        group,
        id,
        format!(
            "could not read what this group checks: {}",
            crate::cluster::error_chain(err)
        ),
        "check needs an operator's read access (see `kubectl jockey check --help`)",
    )]
}

/// What the installed webhook enforces, over the plugin's flags and environment.
struct Settings {
    cfg: jockey_core::Config,
    policy: Policy,
    broker: Option<BTreeMap<String, String>>,
}

async fn settings(client: &Client, args: &CheckArgs, ns: &str) -> Result<Settings> {
    let flags = args.config.resolve();
    if args.pre {
        // Nothing is installed yet: the flags are what install will be given.
        return Ok(Settings {
            cfg: flags,
            policy: Policy::default(),
            broker: None,
        });
    }
    let installed = gather::config_map(client, ns, &format!("{}-config", args.name))
        .await?
        .unwrap_or_default();
    let broker = gather::config_map(
        client,
        ns,
        &format!("{}-config", crate::install::BROKER_NAME),
    )
    .await?;
    let pick = |key: &str, flag: Option<String>| {
        installed
            .get(key)
            .filter(|v| !v.trim().is_empty())
            .cloned()
            .or(flag)
    };
    let domain = pick("DEPLOYMENT_DOMAIN", Some(flags.deployment_domain.clone()));
    let group = pick(
        "ALB_SHARED_GROUP_NAME",
        Some(flags.alb_shared_group_name.clone()),
    );
    let arn = pick("ALB_CERTIFICATE_ARN", flags.certificate_arn.clone());
    // The installed values, normalised as the webhook reads them.
    let installed_cfg = jockey_core::Config::from_lookup(|k| match k {
        "DEPLOYMENT_DOMAIN" => domain.clone(),
        "ALB_SHARED_GROUP_NAME" => group.clone(),
        _ => None,
    });
    let cfg = jockey_core::Config {
        deployment_domain: installed_cfg.deployment_domain,
        alb_shared_group_name: installed_cfg.alb_shared_group_name,
        certificate_arn: arn,
        ..flags
    };
    let policy_text = gather::config_map(client, ns, &format!("{}-policy", args.name))
        .await?
        .and_then(|d| d.get("policy.yaml").cloned())
        .unwrap_or_default();
    let policy = Policy::parse(
        &format!("configmap {ns}/{}-policy", args.name),
        &policy_text,
    )?;
    Ok(Settings {
        cfg,
        policy,
        broker,
    })
}

async fn webhook_facts(
    client: &Client,
    args: &CheckArgs,
    ns: &str,
) -> Result<webhook::WebhookFacts> {
    let name = &args.name;
    let tls = gather::secret(client, ns, &format!("{name}-tls")).await?;
    let ca = gather::secret(client, ns, &format!("{name}-ca")).await?;
    let serving_pem = match &tls {
        None => Err(format!(
            "Secret {ns}/{name}-tls (the serving certificate) does not exist"
        )),
        Some(s) => gather::secret_text(s, "tls.crt")
            .ok_or_else(|| format!("Secret {ns}/{name}-tls has no tls.crt")),
    };
    let ca_pem = ca
        .as_ref()
        .and_then(|s| gather::secret_text(s, "tls.crt"))
        .or_else(|| tls.as_ref().and_then(|s| gather::secret_text(s, "ca.crt")));
    let (mutating, validating, selector) = gather::configurations(client, name).await?;
    let (policy_present, binding_present) = gather::admission_policy(client, name).await?;
    let dry_run = gather::dry_run(client, selector.as_ref()).await?;
    // What install renders: Fail unless installed with --failure-policy ignore, which the
    // configurations then say alike.
    let installed_ignore = [&mutating, &validating].iter().all(|c| {
        c.hooks.as_ref().is_some_and(|h| {
            !h.is_empty()
                && h.iter()
                    .all(|h| h.failure_policy.as_deref() == Some("Ignore"))
        })
    });
    Ok(webhook::WebhookFacts {
        name: name.clone(),
        namespace: ns.to_string(),
        deployment: gather::replicas(client, ns, name).await?,
        pdb: gather::pdb(client, ns, name).await?,
        serving_pem,
        ca_pem,
        mutating,
        validating,
        expected_failure_policy: if installed_ignore { "Ignore" } else { "Fail" }.into(),
        expected_timeout_seconds: crate::install::WEBHOOK_TIMEOUT_SECONDS,
        policy_present,
        binding_present,
        dry_run,
        now: crate::install::now_unix(),
    })
}

async fn controller_facts(
    client: &Client,
    args: &CheckArgs,
    s: &Settings,
    sdk: &Result<aws_config::SdkConfig, String>,
) -> Result<controller::ControllerFacts> {
    let (class, params) = gather::alb_class(client).await?;
    let (_, _, webhook_selector) = gather::configurations(client, &args.name).await?;
    let mut hosts = BTreeSet::from([format!("*.{}", s.cfg.deployment_domain)]);
    hosts.extend(s.policy.extra_hosts.values().flatten().cloned());
    Ok(controller::ControllerFacts {
        selector: args.alb_controller_selector.clone(),
        deployments: gather::controller_deployments(client, &args.alb_controller_selector).await?,
        class,
        params,
        namespaces: gather::jockey_namespaces(client, webhook_selector.as_ref()).await?,
        subnets: super::aws::subnets(sdk, args.vpc_id.as_deref()).await,
        certificates: super::aws::certificates(sdk, s.cfg.certificate_arn.as_deref()).await,
        hosts,
        now: crate::install::now_unix(),
    })
}

async fn shared_facts(
    client: &Client,
    args: &CheckArgs,
    s: &Settings,
) -> Result<shared::SharedFacts> {
    let state = ClusterState {
        ingresses: crate::alb::fetch::ingresses(client, None).await?,
        events: crate::alb::fetch::ingress_events(client, None).await?,
        ..Default::default()
    };
    let base = s.cfg.alb_shared_group_name.clone();
    let dns_names: BTreeSet<String> = state
        .ingresses
        .iter()
        .filter(|i| crate::alb::report::in_shared_groups(i, &base))
        .flat_map(crate::alb::report::addresses)
        .collect();
    let mut groups: BTreeSet<String> = state
        .ingresses
        .iter()
        .filter(|i| crate::alb::report::in_shared_groups(i, &base))
        .filter_map(|i| crate::alb::report::group_of(i).map(str::to_string))
        .collect();
    groups.insert(base.clone());
    let aws = if args.no_aws {
        AwsView::Skipped("--no-aws".into())
    } else {
        match crate::alb::elb::read(args.config.region.as_deref(), &dns_names, &groups).await {
            Ok(Ok(snapshot)) => AwsView::Read(snapshot),
            Ok(Err(why)) => AwsView::Skipped(why),
            Err(err) => AwsView::Failed(format!("{err:#}")),
        }
    };
    Ok(shared::SharedFacts {
        state,
        aws,
        base,
        domain: s.cfg.deployment_domain.clone(),
        quotas: shared::Quotas::of(&s.policy),
    })
}

/// Every check's result, in the order they print.
pub async fn results(kube: &KubeArgs, args: &CheckArgs) -> Result<Vec<CheckResult>> {
    let ns = kube
        .namespace
        .clone()
        .unwrap_or_else(|| crate::install::DEFAULT_NAMESPACE.to_string());
    let client = kube.connect().await?.client;
    let server = gather::server_version(&client).await;
    let reachable = server.is_ok();
    let webhook_version = if reachable && !args.pre {
        gather::webhook_version(&client, &ns, &args.name)
            .await
            .ok()
            .flatten()
    } else {
        None
    };
    let mut out = cluster::checks(&cluster::ClusterFacts {
        server,
        vap_served: reachable && gather::vap_served(&client).await,
        plugin_version: env!("CARGO_PKG_VERSION").to_string(),
        webhook: webhook_version,
    });
    if !reachable {
        return Ok(out);
    }
    let settings = match settings(&client, args, &ns).await {
        Ok(s) => s,
        Err(e) => {
            out.extend(unreadable(webhook::GROUP, webhook::REPLICAS, &e));
            return Ok(out);
        }
    };
    let sdk = super::aws::config(args.config.region.as_deref(), args.no_aws).await;
    if !args.pre {
        out.extend(match webhook_facts(&client, args, &ns).await {
            Ok(f) => webhook::checks(&f),
            Err(e) => unreadable(webhook::GROUP, webhook::REPLICAS, &e),
        });
    }
    out.extend(
        match controller_facts(&client, args, &settings, &sdk).await {
            Ok(f) => controller::checks(&f),
            Err(e) => unreadable(controller::GROUP, controller::READY, &e),
        },
    );
    if args.pre {
        let why = |e: anyhow::Error| crate::cluster::error_chain(&e);
        let facts = pre::PreFacts {
            existing: gather::existing(&client, &args.name).await.map_err(why),
            cert_manager: if args.cert_manager {
                Some(
                    gather::crds(&client, pre::CERT_MANAGER_CRDS)
                        .await
                        .map_err(why),
                )
            } else {
                None
            },
            access: gather::access(&client, &args.name, &ns).await.map_err(why),
        };
        out.extend(pre::checks(&facts));
        return Ok(out);
    }
    out.extend(match shared_facts(&client, args, &settings).await {
        Ok(f) => shared::checks(&f),
        Err(e) => unreadable(shared::GROUP, shared::QUOTAS, &e),
    });
    let builder_ns = settings.cfg.builder_namespace.clone();
    out.extend(
        match gather::builder(
            &client,
            &builder_ns,
            (&ns, crate::install::BROKER_NAME),
            settings.broker.as_ref(),
            &settings.cfg,
        )
        .await
        {
            Ok(f) => builder::checks(&f),
            Err(e) => unreadable(builder::GROUP, builder::NAMESPACE, &e),
        },
    );
    Ok(out)
}

pub async fn run(kube: &KubeArgs, args: CheckArgs) -> Result<()> {
    let results = results(kube, &args).await?;
    match args.output {
        OutputFormat::Json | OutputFormat::Yaml => output::print_structured(&results, args.output)?,
        _ => print!("{}", super::render(&results)),
    }
    if super::failed(&results) {
        let n = results
            .iter()
            .filter(|r| r.outcome == super::Outcome::Fail)
            .count();
        bail!("check found {n} failure(s); each ✗ above says what to do");
    }
    Ok(())
}
