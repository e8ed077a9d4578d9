//! Raw bytes as the policy file (YAML or JSON) the webhook reads at start.
//!
//! Invariants: never a panic; a refusal names the file, the cause and the fix; an accepted policy
//! answers every question the webhook asks of it.

use jockey_core::Config;
use jockey_core::policy::{IngressIndex, Policy};

pub fn run(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    match Policy::parse("policy.yaml", &text) {
        Err(e) => {
            assert!(!e.cause.is_empty() && !e.fix.is_empty(), "{e:?}");
            let msg = e.to_string();
            assert!(msg.starts_with("policy file policy.yaml: "), "{msg}");
            assert!(msg.contains("; fix: "), "{msg}");
        }
        Ok(policy) => {
            let cfg = Config::default();
            let index = IngressIndex::new();
            let group = policy.place(&cfg, &index, "demo");
            assert!(
                policy.group_allowed(&cfg, &group),
                "placed in {group:?}, which the policy does not allow"
            );
            let _ = policy.effective_group_settings(&cfg);
            assert!(policy.rule_allowance("demo") >= policy.max_rules_per_project);
            for project in policy.extra_hosts.keys() {
                let _ = policy.rule_allowance(project);
            }
        }
    }
}
