//! DNS adapter for `validate-alb-routing`: resolves a name into the CNAME chain and addresses
//! the pure check compares with the ALB's, through the system resolver or a given server.

use super::report::DnsAnswer;
use hickory_resolver::TokioResolver;
use hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;
use std::net::SocketAddr;
use std::time::Duration;

/// A resolver: the system's (`/etc/resolv.conf`), or `server` only — e.g. the zone's
/// authoritative server, to check a record before caches and TTLs let the world see it.
pub fn resolver(server: Option<SocketAddr>) -> Result<TokioResolver, String> {
    let mut opts = ResolverOpts::default();
    opts.timeout = Duration::from_secs(3);
    opts.attempts = 2;
    // Names are absolute: never try a search domain of the machine running the check.
    opts.ndots = 0;
    let builder = match server {
        Some(addr) => {
            let mut ns = NameServerConfig::udp_and_tcp(addr.ip());
            for c in &mut ns.connections {
                c.port = addr.port();
            }
            TokioResolver::builder_with_config(
                ResolverConfig::from_name_servers(vec![ns]),
                TokioRuntimeProvider::default(),
            )
        }
        None => TokioResolver::builder_tokio()
            .map_err(|e| format!("reading the system DNS configuration: {e}"))?,
    };
    builder
        .with_options(opts)
        .build()
        .map_err(|e| format!("building the DNS resolver: {e}"))
}

/// Resolves `name` (A and AAAA, following CNAMEs). Failures land in [`DnsAnswer::error`]: a
/// name that does not resolve is a finding, not an error of the command.
pub async fn resolve(resolver: &TokioResolver, name: &str) -> DnsAnswer {
    // The trailing dot makes the name fully qualified: one query, no search list.
    let fqdn = format!("{}.", name.trim_end_matches('.'));
    match resolver.lookup_ip(fqdn.as_str()).await {
        Ok(lookup) => {
            let mut answer = DnsAnswer::default();
            for record in lookup.as_lookup().answers() {
                if let RData::CNAME(target) = &record.data {
                    answer.cnames.push(
                        target
                            .0
                            .to_string()
                            .trim_end_matches('.')
                            .to_ascii_lowercase(),
                    );
                }
            }
            answer.ips = lookup.iter().collect();
            answer.ips.sort();
            answer.ips.dedup();
            answer
        }
        Err(err) => DnsAnswer {
            // The resolver's own text names its internal query structs; say it plainly.
            error: Some(if err.is_nx_domain() {
                "no such name (NXDOMAIN)".to_string()
            } else if err.is_no_records_found() {
                "no A or AAAA record".to_string()
            } else {
                err.to_string()
            }),
            ..Default::default()
        },
    }
}
