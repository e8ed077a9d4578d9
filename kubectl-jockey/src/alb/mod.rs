//! The shared-ALB operator commands: `alb-status`, `list-alb-ingresses`, `validate-alb-routing`.
//!
//! [`report`] is the pure core (objects in, rows/summary/checks out); [`fetch`], [`elb`] and
//! [`dns`] are the thin adapters to the Kubernetes API, the ELBv2 API and DNS. The functions
//! here only wire the two together and print.

pub mod address;
pub mod conflicts;
pub mod dns;
pub mod elb;
pub mod fetch;
pub mod health;
pub mod model;
pub mod probe;
pub mod report;
pub mod routes;
pub mod rows;
pub mod status;
#[cfg(test)]
mod test_support;
pub mod validate;
pub mod validate_net;
pub mod watch;

use crate::cluster::KubeArgs;
use crate::output::{self, ListingArgs, OutputFormat};
use anyhow::{Result, bail};
use report::{AwsView, ClusterState, DnsView, Outcome, ProbeResult};
use std::collections::BTreeSet;
use std::net::SocketAddr;

/// AWS flags of the ALB commands. Credentials, region and endpoint otherwise come from the
/// standard AWS configuration (profile, environment, `AWS_ENDPOINT_URL`).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct AwsArgs {
    /// AWS region of the load balancer(s) (default: the AWS profile's).
    #[arg(long, value_name = "REGION", env = "AWS_REGION")]
    pub region: Option<String>,
    /// Check only the cluster: do not read the load balancer through the ELBv2 API even when
    /// AWS credentials are available.
    #[arg(long)]
    pub no_aws: bool,
}

impl AwsArgs {
    async fn view(&self, dns_names: &BTreeSet<String>, groups: &BTreeSet<String>) -> AwsView {
        if self.no_aws {
            return AwsView::Skipped("--no-aws".into());
        }
        match elb::read(self.region.as_deref(), dns_names, groups).await {
            Ok(Ok(snapshot)) => AwsView::Read(snapshot),
            Ok(Err(why)) => AwsView::Skipped(why),
            Err(err) => AwsView::Failed(format!("{err:#}")),
        }
    }
}

/// The two settings the ALB commands use (flag > environment > default), without the build
/// and registry flags of `deploy` that mean nothing here.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct GroupArgs {
    /// The shared ALB group; its shards are GROUP-2, GROUP-3, ...
    #[arg(long, value_name = "GROUP", env = "ALB_SHARED_GROUP_NAME",
          default_value = jockey_core::config::DEFAULT_ALB_SHARED_GROUP_NAME)]
    pub alb_group: String,
    /// Base domain of project hosts.
    #[arg(long, value_name = "DOMAIN", env = "DEPLOYMENT_DOMAIN",
          default_value = jockey_core::config::DEFAULT_DEPLOYMENT_DOMAIN)]
    pub deployment_domain: String,
}

impl GroupArgs {
    fn resolve(&self) -> jockey_core::Config {
        // Through from_lookup, so that these get the same normalisation as everywhere else.
        jockey_core::Config::from_lookup(|key| match key {
            "ALB_SHARED_GROUP_NAME" => Some(self.alb_group.clone()),
            "DEPLOYMENT_DOMAIN" => Some(self.deployment_domain.clone()),
            _ => None,
        })
    }
}

#[derive(clap::Args, Debug, Clone)]
pub struct StatusArgs {
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    /// Label selector of the AWS Load Balancer Controller's pods (any namespace).
    #[arg(long, value_name = "SELECTOR", default_value = fetch::DEFAULT_CONTROLLER_SELECTOR)]
    pub controller_selector: String,
    #[command(flatten)]
    pub aws: AwsArgs,
    #[command(flatten)]
    pub config: GroupArgs,
}

#[derive(clap::Args, Debug, Clone)]
pub struct ListArgs {
    #[command(flatten)]
    pub listing: ListingArgs,
    #[command(flatten)]
    pub config: GroupArgs,
}

#[derive(clap::Args, Debug, Clone)]
pub struct ValidateArgs {
    /// The host to check, e.g. PROJECT.deploy.agentops.ai.
    pub host: String,
    /// Also send `GET https://HOST/health` and expect 200.
    #[arg(long)]
    pub probe: bool,
    /// Resolve through this DNS server (IP[:PORT], e.g. the zone's authoritative server)
    /// instead of the system resolver.
    #[arg(long, value_name = "IP[:PORT]", value_parser = parse_nameserver)]
    pub nameserver: Option<SocketAddr>,
    /// Do not check DNS (e.g. before the records are created).
    #[arg(long)]
    pub no_dns: bool,
    /// Output format: table (default), json or yaml.
    #[arg(short = 'o', long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    #[command(flatten)]
    pub aws: AwsArgs,
    #[command(flatten)]
    pub config: GroupArgs,
}

fn parse_nameserver(value: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = value.parse::<SocketAddr>() {
        return Ok(addr);
    }
    value
        .parse::<std::net::IpAddr>()
        .map(|ip| SocketAddr::new(ip, 53))
        .map_err(|_| {
            format!(
                "invalid name server {value:?}; use an IP address, e.g. 10.0.0.2 or 127.0.0.1:5353"
            )
        })
}

/// `list-alb-ingresses [-n N | -A]`.
pub async fn list(kube: &KubeArgs, args: ListArgs) -> Result<()> {
    let cfg = args.config.resolve();
    let cluster = kube.connect().await?;
    let ns = (!args.listing.all_namespaces).then_some(cluster.namespace.as_str());
    let ingresses = fetch::ingresses(&cluster.client, ns).await?;
    let events = fetch::ingress_events(&cluster.client, ns).await?;
    // A group spans namespaces: with -n, only that namespace is known whole.
    let scope = ns.map_or(health::Scope::All, |n| {
        health::Scope::Namespace(n.to_string())
    });
    let rows = report::ingress_rows(&ingresses, &events, &cfg.alb_shared_group_name, &scope);
    match args.listing.output {
        OutputFormat::Json | OutputFormat::Yaml => {
            output::print_structured(&rows, args.listing.output)?
        }
        format => {
            if rows.is_empty() {
                eprintln!(
                    "No Ingresses of group {} (or its shards) in {}.",
                    cfg.alb_shared_group_name,
                    ns.map_or("any namespace".to_string(), |n| format!("namespace {n}"))
                );
                return Ok(());
            }
            let wide = format == OutputFormat::Wide;
            let mut header = vec![
                "NAMESPACE",
                "NAME",
                "PROJECT",
                "HOST",
                "GROUP",
                "ADDRESS",
                "READY",
            ];
            if wide {
                header.extend(["CLASS", "PROBLEM"]);
            }
            let table_rows: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    let mut row = vec![
                        r.namespace.clone(),
                        r.name.clone(),
                        r.project.clone().unwrap_or_else(|| "-".into()),
                        if r.hosts.is_empty() {
                            "-".into()
                        } else {
                            r.hosts.join(",")
                        },
                        r.group.clone().unwrap_or_else(|| "-".into()),
                        r.address.clone().unwrap_or_else(|| "-".into()),
                        if r.ready { "True" } else { "False" }.into(),
                    ];
                    if wide {
                        row.push(r.class.clone().unwrap_or_else(|| "-".into()));
                        row.push(r.problem.clone().unwrap_or_else(|| "-".into()));
                    }
                    row
                })
                .collect();
            print!("{}", output::table(&header, &table_rows));
        }
    }
    Ok(())
}

/// `alb-status`: always across all namespaces (a group spans them).
pub async fn status(kube: &KubeArgs, args: StatusArgs) -> Result<()> {
    let cfg = args.config.resolve();
    let cluster = kube.connect().await?;
    let client = &cluster.client;
    let state = ClusterState {
        ingresses: fetch::ingresses(client, None).await?,
        events: fetch::ingress_events(client, None).await?,
        controller_pods: fetch::controller_pods(client, &args.controller_selector).await?,
        ..Default::default()
    };
    let base = &cfg.alb_shared_group_name;
    let members: Vec<_> = state
        .ingresses
        .iter()
        .filter(|i| report::in_shared_groups(i, base))
        .collect();
    let dns_names: BTreeSet<String> = members.iter().flat_map(|i| report::addresses(i)).collect();
    let mut groups: BTreeSet<String> = members
        .iter()
        .filter_map(|i| report::group_of(i).map(str::to_string))
        .collect();
    groups.insert(base.clone());
    let aws = args.aws.view(&dns_names, &groups).await;
    let status = report::status(&state, &aws, base, &cfg.deployment_domain);

    match args.output {
        OutputFormat::Json | OutputFormat::Yaml => output::print_structured(&status, args.output)?,
        format => print_status(&status, format == OutputFormat::Wide),
    }
    if !status.problems.is_empty() {
        bail!(
            "alb-status found {} problem(s), listed under PROBLEMS above",
            status.problems.len()
        );
    }
    Ok(())
}

fn print_status(s: &report::Status, wide: bool) {
    println!("GROUPS");
    let rows: Vec<Vec<String>> = s
        .groups
        .iter()
        .map(|g| {
            vec![
                g.group.clone(),
                g.ingresses.to_string(),
                format!("{}/{}", g.with_address, g.ingresses),
                format!("{}/{}", g.ready, g.ingresses),
                match &g.health {
                    health::Health::Healthy { .. } => "healthy",
                    health::Health::Failing(_) => "failing",
                    health::Health::Unknown { .. } => "unknown",
                }
                .into(),
                format!(
                    "{}/{} ({})",
                    g.target_groups.used, g.target_groups.quota, g.target_groups.source
                ),
                format!("{}/{} ({})", g.rules.used, g.rules.quota, g.rules.source),
                if g.alb_dns_names.is_empty() {
                    "-".into()
                } else {
                    g.alb_dns_names.join(",")
                },
            ]
        })
        .collect();
    print!(
        "{}",
        output::table(
            &[
                "GROUP",
                "INGRESSES",
                "ADDRESSED",
                "READY",
                "HEALTH",
                "TARGET-GROUPS",
                "RULES",
                "ALB"
            ],
            &rows
        )
    );

    // Why a group's health is what it is, where that is not plain; failures are listed below.
    for g in &s.groups {
        match &g.health {
            health::Health::Unknown { why } if g.ingresses > 0 => {
                println!("{}: health unknown: {why}", g.group)
            }
            health::Health::Healthy { why } if wide => println!("{}: healthy: {why}", g.group),
            _ => {}
        }
    }

    println!("\nNAMESPACES");
    let rows: Vec<Vec<String>> = s
        .groups
        .iter()
        .flat_map(|g| {
            g.namespaces
                .iter()
                .map(|(ns, n)| vec![ns.clone(), g.group.clone(), n.to_string()])
        })
        .collect();
    if rows.is_empty() {
        println!("(no Ingresses in the shared groups)");
    } else {
        print!(
            "{}",
            output::table(&["NAMESPACE", "GROUP", "INGRESSES"], &rows)
        );
    }

    println!("\nLOAD BALANCERS (ELBv2: {})", s.aws);
    for g in &s.groups {
        if let Some(lb) = &g.load_balancer {
            println!(
                "{}: {} ({}), {}, {}, listeners {}",
                g.group,
                lb.name,
                lb.dns_name,
                lb.state,
                lb.scheme,
                if lb.listeners.is_empty() {
                    "none".to_string()
                } else {
                    lb.listeners.join(", ")
                }
            );
            let rows: Vec<Vec<String>> = lb
                .routes
                .iter()
                .map(|r| {
                    vec![
                        r.host.clone(),
                        r.listener.clone(),
                        r.priority.clone(),
                        r.target_groups.join(","),
                        format!("{}/{}", r.healthy, r.targets),
                    ]
                })
                .collect();
            if !rows.is_empty() && (wide || rows.len() <= 50) {
                print!(
                    "{}",
                    output::table(
                        &["HOST", "LISTENER", "PRIORITY", "TARGET-GROUP", "HEALTHY"],
                        &rows
                    )
                );
            }
        }
    }

    println!("\nCONTROLLER");
    if let Some(note) = &s.controller_note {
        println!("{note}");
    } else if s.controller_pods.is_empty() {
        println!("(no pods)");
    } else {
        let rows: Vec<Vec<String>> = s
            .controller_pods
            .iter()
            .map(|p| {
                vec![
                    p.namespace.clone(),
                    p.name.clone(),
                    p.phase.clone(),
                    if p.ready { "True" } else { "False" }.into(),
                    p.restarts.to_string(),
                ]
            })
            .collect();
        print!(
            "{}",
            output::table(&["NAMESPACE", "POD", "PHASE", "READY", "RESTARTS"], &rows)
        );
    }

    println!("\nCONTROLLER FAILURES");
    if s.failures.is_empty() {
        println!("(none)");
    } else {
        let rows: Vec<Vec<String>> = s
            .failures
            .iter()
            .map(|f| {
                let mut row = vec![
                    format!("{}/{}", f.namespace, f.ingress),
                    f.reason.clone(),
                    if f.current { "current" } else { "not current" }.into(),
                    f.last_seen.clone(),
                    f.message.clone(),
                ];
                if wide {
                    row.push(f.stale.clone().unwrap_or_else(|| "-".into()));
                }
                row
            })
            .collect();
        print!(
            "{}",
            output::table(
                &[
                    "INGRESS",
                    "REASON",
                    "STATE",
                    "LAST-SEEN",
                    "MESSAGE",
                    "WHY-NOT-CURRENT"
                ][..if wide { 6 } else { 5 }],
                &rows
            )
        );
    }

    println!("\nDNS RECORDS NEEDED");
    if s.dns_records.is_empty() {
        println!("(none yet: no group has an ALB address)");
    } else {
        let rows: Vec<Vec<String>> = s
            .dns_records
            .iter()
            .map(|r| {
                vec![
                    r.name.clone(),
                    r.kind.clone(),
                    r.value.clone(),
                    r.why.clone(),
                ]
            })
            .collect();
        print!(
            "{}",
            output::table(&["NAME", "TYPE", "VALUE", "WHY"], &rows)
        );
    }

    println!("\nPROBLEMS");
    if s.problems.is_empty() {
        println!("(none)");
    }
    for p in &s.problems {
        println!("- {p}");
    }
}

/// `validate-alb-routing HOST`.
pub async fn validate(kube: &KubeArgs, args: ValidateArgs) -> Result<()> {
    let cfg = args.config.resolve();
    let host = args.host.trim().trim_end_matches('.').to_ascii_lowercase();
    if host.is_empty() {
        bail!(
            "validate-alb-routing needs a host, e.g. PROJECT.{}",
            cfg.deployment_domain
        );
    }
    let cluster = kube.connect().await?;
    let client = &cluster.client;
    let ingresses = fetch::ingresses(client, None).await?;
    let serving = report::ingresses_for_host(&ingresses, &host);
    // Services, slices and events only where the host's Ingress lives.
    let namespaces: BTreeSet<String> = serving
        .iter()
        .map(|i| report::namespace(i).to_string())
        .collect();
    let mut state = ClusterState {
        ingresses: ingresses.clone(),
        ..Default::default()
    };
    for ns in &namespaces {
        state.services.extend(fetch::services(client, ns).await?);
        state
            .endpoint_slices
            .extend(fetch::endpoint_slices(client, ns).await?);
        state
            .events
            .extend(fetch::ingress_events(client, Some(ns)).await?);
    }

    let addrs = report::alb_addresses_for_host(&ingresses, &host);
    let groups: BTreeSet<String> = serving
        .iter()
        .filter_map(|i| report::group_of(i).map(str::to_string))
        .collect();
    let aws = if serving.is_empty() {
        AwsView::Skipped("no Ingress serves the host".into())
    } else {
        args.aws
            .view(&addrs.iter().cloned().collect(), &groups)
            .await
    };

    let dns = if args.no_dns {
        DnsView::Skipped("--no-dns".into())
    } else {
        match dns::resolver(args.nameserver) {
            Err(why) => DnsView::Skipped(why),
            Ok(resolver) => {
                let host_answer = dns::resolve(&resolver, &host).await;
                let mut albs = std::collections::BTreeMap::new();
                for a in &addrs {
                    albs.insert(a.clone(), dns::resolve(&resolver, a).await);
                }
                DnsView::Answers {
                    host: host_answer,
                    albs,
                }
            }
        }
    };

    let probe = if args.probe {
        probe::probe(&host).await
    } else {
        ProbeResult::NotRequested
    };

    let checks = report::validate(&report::ValidateInput {
        host: &host,
        base_group: &cfg.alb_shared_group_name,
        cluster: &state,
        aws: &aws,
        dns: &dns,
        probe: &probe,
    });

    match args.output {
        OutputFormat::Json | OutputFormat::Yaml => output::print_structured(&checks, args.output)?,
        _ => {
            let width = checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
            for c in &checks {
                let tag = match c.outcome {
                    Outcome::Pass => "PASS",
                    Outcome::Fail => "FAIL",
                    Outcome::Skip => "SKIP",
                };
                println!("{tag}  {:<width$}  {}", c.name, c.detail);
                if let Some(fix) = &c.fix {
                    println!("      {:<width$}  fix: {fix}", "");
                }
            }
        }
    }
    if !report::any_failed(&checks) {
        let skipped = checks.iter().filter(|c| c.outcome == Outcome::Skip).count();
        eprintln!(
            "routing for {host}: all {} evaluated checks passed{}",
            checks.len() - skipped,
            if skipped > 0 {
                format!(" ({skipped} skipped)")
            } else {
                String::new()
            }
        );
        return Ok(());
    }
    let failed: Vec<&str> = checks
        .iter()
        .filter(|c| c.outcome == Outcome::Fail)
        .map(|c| c.name)
        .collect();
    bail!(
        "routing for {host} is broken: {} check(s) failed ({}); see the fixes above",
        failed.len(),
        failed.join(", ")
    )
}
