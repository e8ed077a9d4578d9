//! Placement of projects into ALB groups: the shared group `G`, then shards `G-2`, `G-3`, … once
//! a group holds `capacity` projects.
//!
//! Why shards: one ALB has hard quotas (100 rules per listener by default, 25 certificates), and
//! every project adds rules to the shared ALB; past the quota the AWS Load Balancer Controller
//! fails to reconcile the *whole* group. The default capacity of 90 leaves headroom for the
//! handful of concurrent creations two webhook replicas may both place before either sees the
//! other's Ingress in its cache.
//!
//! Invariants (proven through the webhook's placement path by `jockey-core/tests/sharding.rs`):
//! no placement puts a group over capacity, every lower group is full when a new project lands in
//! a shard, and a project that has an assignment keeps it — an existing Ingress never moves,
//! because moving it means new DNS, a new ALB and dropped traffic.

use std::collections::BTreeMap;

pub const DEFAULT_CAPACITY: usize = 90;

/// Name of the `n`th group (1-based): `G` for 1, `G-n` above.
pub fn shard_name(shared: &str, n: usize) -> String {
    if n <= 1 {
        shared.to_string()
    } else {
        format!("{shared}-{n}")
    }
}

/// Whether `group` is the shared group or one of its shards.
pub fn is_shard_of(shared: &str, group: &str) -> bool {
    if group == shared {
        return true;
    }
    group
        .strip_prefix(shared)
        .and_then(|rest| rest.strip_prefix('-'))
        .and_then(|n| {
            (!n.starts_with('0') && n.bytes().all(|b| b.is_ascii_digit()))
                .then(|| n.parse::<usize>().ok())
                .flatten()
        })
        .is_some_and(|n| n >= 2)
}

/// Where a project goes.
///
/// - `existing`: the group the project's other Ingresses already use (from the cache) — kept,
///   whatever the counts, so nothing ever moves.
/// - `projects_in`: number of distinct projects currently placed in a group.
///
/// Otherwise the first group in order `G`, `G-2`, `G-3`, … with room. Filling the lowest group
/// first packs projects densely and reuses room freed by deletions.
pub fn place(
    shared: &str,
    capacity: usize,
    existing: Option<&str>,
    projects_in: impl Fn(&str) -> usize,
) -> String {
    if let Some(group) = existing {
        return group.to_string();
    }
    let capacity = capacity.max(1);
    (1..)
        .map(|n| shard_name(shared, n))
        .find(|g| projects_in(g) < capacity)
        .unwrap_or_else(|| shared.to_string())
}

/// Convenience over a map of counts.
pub fn place_in(
    shared: &str,
    capacity: usize,
    existing: Option<&str>,
    counts: &BTreeMap<String, usize>,
) -> String {
    place(shared, capacity, existing, |g| {
        counts.get(g).copied().unwrap_or(0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn names() {
        assert_eq!(shard_name("alb-deployments", 1), "alb-deployments");
        assert_eq!(shard_name("alb-deployments", 2), "alb-deployments-2");
        assert!(is_shard_of("alb-deployments", "alb-deployments"));
        assert!(is_shard_of("alb-deployments", "alb-deployments-2"));
        assert!(is_shard_of("alb-deployments", "alb-deployments-17"));
        for no in [
            "alb-deployments-1",
            "alb-deployments-0",
            "alb-deployments-02",
            "alb-deployments-x",
            "alb-deployments-",
            "alb-deployments2",
            "other",
            "alb",
        ] {
            assert!(!is_shard_of("alb-deployments", no), "{no}");
        }
    }

    #[test]
    fn fills_lowest_group_first_and_keeps_existing() {
        let mut counts = BTreeMap::new();
        assert_eq!(place_in("g", 2, None, &counts), "g");
        counts.insert("g".to_string(), 2);
        assert_eq!(place_in("g", 2, None, &counts), "g-2");
        counts.insert("g-2".to_string(), 2);
        assert_eq!(place_in("g", 2, None, &counts), "g-3");
        // Room freed in the first group is reused.
        counts.insert("g".to_string(), 1);
        assert_eq!(place_in("g", 2, None, &counts), "g");
        // An existing assignment never moves, even into a full group.
        assert_eq!(place_in("g", 2, Some("g-2"), &counts), "g-2");
        // Capacity 0 is treated as 1 rather than looping forever.
        assert_eq!(place_in("g", 0, None, &BTreeMap::new()), "g");
    }
}
