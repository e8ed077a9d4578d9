//! What AWS itself accepts of the values jockey admits, beyond what the AWS Load Balancer
//! Controller checks before calling it ([`crate::alb_annotations`] is the controller): the values
//! of a listener rule's conditions, the target group attributes an Application Load Balancer's IP
//! target group takes, and the per-load-balancer quotas. Each limit cites the AWS documentation
//! it comes from; the local moto (`tests/cluster/moto-server.py`) enforces the same ones, so that
//! "the group reconciled" in a test means what it would on AWS.
//!
//! Pure: values in, `Err(why)` out.

/// "Each rule can include up to ... five match evaluations in total" and "up to three match
/// evaluations per condition" (ELB User Guide, Application Load Balancers, Listener rules,
/// "Condition types").
pub const MAX_VALUES_PER_CONDITION: usize = 3;
pub const MAX_VALUES_PER_RULE: usize = 5;

/// Quotas of one Application Load Balancer (ELB User Guide, "Quotas for your Application Load
/// Balancers"): rules per load balancer (not counting default rules), target groups per load
/// balancer, certificates per load balancer (not counting default certificates). Adjustable in
/// Service Quotas; the policy file carries the account's values.
pub const RULES_PER_ALB: usize = 100;
pub const TARGET_GROUPS_PER_ALB: usize = 100;
pub const CERTIFICATES_PER_ALB: usize = 25;

/// The longest host-header or path-pattern value: "can be up to 128 characters in length"
/// (ELB User Guide, "Host conditions", "Path conditions").
pub const MAX_CONDITION_VALUE: usize = 128;

/// A `host-header` value: "A–Z, a–z, 0–9, - ., * (matches 0 or more characters), ? (matches
/// exactly 1 character)", at most 128 characters (ELB User Guide, "Host conditions").
pub fn host_header_value(host: &str) -> Result<(), String> {
    if host.is_empty() || host.len() > MAX_CONDITION_VALUE {
        return Err(format!(
            "is {} characters; an ALB host condition takes 1 to {MAX_CONDITION_VALUE}",
            host.len()
        ));
    }
    if let Some(c) = host
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '*' | '?')))
    {
        return Err(format!(
            "contains {c:?}; an ALB host condition takes only letters, digits, '-', '.', '*' and '?'"
        ));
    }
    Ok(())
}

/// A `path-pattern` value: "A–Z, a–z, 0–9, _ - . $ / ~ \" ' @ : + & (using &amp;), * (matches 0
/// or more characters), ? (matches exactly 1 character)", at most 128 characters (ELB User Guide,
/// "Path conditions").
pub fn path_pattern_value(path: &str) -> Result<(), String> {
    if path.is_empty() || path.len() > MAX_CONDITION_VALUE {
        return Err(format!(
            "is {} characters as an ALB path pattern; AWS takes 1 to {MAX_CONDITION_VALUE}",
            path.len()
        ));
    }
    if let Some(c) = path.chars().find(|c| {
        !(c.is_ascii_alphanumeric()
            || matches!(
                c,
                '_' | '-' | '.' | '$' | '/' | '~' | '"' | '\'' | '@' | ':' | '+' | '&' | '*' | '?'
            ))
    }) {
        return Err(format!(
            "contains {c:?}; an ALB path pattern takes only letters, digits and _ - . $ / ~ \" ' @ : + & * ?"
        ));
    }
    Ok(())
}

/// The path patterns the controller makes of an Ingress path (`model_build_listener_rules.go`
/// `buildPathPatterns`): Exact is the path itself; Prefix `/` matches everything (`/*`), another
/// Prefix `p` becomes `p` and `p/*`; ImplementationSpecific is taken as written.
pub fn path_patterns(path: &str, path_type: &str) -> Vec<String> {
    match path_type {
        "Prefix" if path == "/" => vec!["/*".to_string()],
        "Prefix" => {
            let p = path.trim_end_matches('/');
            vec![p.to_string(), format!("{p}/*")]
        }
        _ => vec![path.to_string()],
    }
}

/// One documented target group attribute of an ALB target group of type `ip`, and its values
/// (ELB User Guide, "Edit target group attributes"; ELBv2 API reference,
/// `TargetGroupAttribute`).
pub struct TargetGroupAttribute {
    pub key: &'static str,
    pub values: &'static str,
    check: fn(&str) -> bool,
}

fn int_within(v: &str, lo: i64, hi: i64) -> bool {
    !v.is_empty()
        && v.len() <= 10
        && v.bytes().all(|b| b.is_ascii_digit())
        && v.parse::<i64>().is_ok_and(|n| (lo..=hi).contains(&n))
}

/// The attributes jockey admits (an admin's grant is still checked against this list): a key
/// AWS adds later, or one of another kind of target group (`lambda.*`, `target_failover.*`),
/// is refused until it is listed here.
pub const TARGET_GROUP_ATTRIBUTES: &[TargetGroupAttribute] = &[
    TargetGroupAttribute {
        key: "deregistration_delay.timeout_seconds",
        values: "0..3600",
        check: |v| int_within(v, 0, 3600),
    },
    TargetGroupAttribute {
        key: "stickiness.enabled",
        values: "true or false",
        check: |v| matches!(v, "true" | "false"),
    },
    TargetGroupAttribute {
        key: "stickiness.type",
        values: "lb_cookie or app_cookie",
        check: |v| matches!(v, "lb_cookie" | "app_cookie"),
    },
    TargetGroupAttribute {
        key: "stickiness.lb_cookie.duration_seconds",
        values: "1..604800",
        check: |v| int_within(v, 1, 604_800),
    },
    TargetGroupAttribute {
        key: "stickiness.app_cookie.duration_seconds",
        values: "1..604800",
        check: |v| int_within(v, 1, 604_800),
    },
    TargetGroupAttribute {
        key: "stickiness.app_cookie.cookie_name",
        // "The following cookie names are reserved and cannot be used: AWSALB, AWSALBAPP, and
        // AWSALBTG" (ELB User Guide, "Sticky sessions", application-based cookies).
        values: "a cookie name of letters, digits, '-' and '_' (not AWSALB, AWSALBAPP, AWSALBTG)",
        check: |v| {
            !v.is_empty()
                && v.len() <= 128
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                && !v.to_ascii_uppercase().starts_with("AWSALB")
        },
    },
    TargetGroupAttribute {
        key: "slow_start.duration_seconds",
        values: "0 (off) or 30..900",
        check: |v| v == "0" || int_within(v, 30, 900),
    },
    TargetGroupAttribute {
        key: "load_balancing.algorithm.type",
        values: "round_robin, least_outstanding_requests or weighted_random",
        check: |v| {
            matches!(
                v,
                "round_robin" | "least_outstanding_requests" | "weighted_random"
            )
        },
    },
    TargetGroupAttribute {
        key: "load_balancing.algorithm.anomaly_mitigation",
        values: "on or off (with weighted_random only)",
        check: |v| matches!(v, "on" | "off"),
    },
    TargetGroupAttribute {
        key: "load_balancing.cross_zone.enabled",
        values: "true, false or use_load_balancer_configuration",
        check: |v| matches!(v, "true" | "false" | "use_load_balancer_configuration"),
    },
];

/// Checks a `target-group-attributes` map: every key documented for an ALB IP target group, every
/// value in its domain, and the combinations AWS documents: anomaly mitigation only with
/// `weighted_random`, and slow start only with `round_robin` (jockey admits only the combinations
/// the documentation says work).
pub fn target_group_attributes(pairs: &[(String, String)]) -> Result<(), String> {
    for (k, v) in pairs {
        let Some(attr) = TARGET_GROUP_ATTRIBUTES.iter().find(|a| a.key == k) else {
            return Err(format!(
                "{k} is not an attribute of an ALB target group of type ip that jockey admits ({})",
                TARGET_GROUP_ATTRIBUTES
                    .iter()
                    .map(|a| a.key)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        };
        if !(attr.check)(v) {
            return Err(format!("{k}={v}: expected {}", attr.values));
        }
    }
    let get = |key: &str| {
        pairs
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    let algorithm = get("load_balancing.algorithm.type").unwrap_or("round_robin");
    if get("load_balancing.algorithm.anomaly_mitigation") == Some("on")
        && algorithm != "weighted_random"
    {
        return Err(format!(
            "load_balancing.algorithm.anomaly_mitigation=on needs load_balancing.algorithm.type=weighted_random (it is {algorithm})"
        ));
    }
    if get("slow_start.duration_seconds").is_some_and(|v| v != "0") && algorithm != "round_robin" {
        return Err(format!(
            "slow_start.duration_seconds needs load_balancing.algorithm.type=round_robin (it is {algorithm})"
        ));
    }
    Ok(())
}

/// The target group's health check timeout must be shorter than its interval: "The timeout must
/// be smaller than the interval" (ELBv2 API reference, `CreateTargetGroup`,
/// HealthCheckTimeoutSeconds; `ModifyTargetGroup` refuses the same).
pub fn health_check_timing(interval: i64, timeout: i64) -> Result<(), String> {
    if timeout >= interval {
        return Err(format!(
            "the health check timeout ({timeout}s) is not shorter than its interval ({interval}s)"
        ));
    }
    Ok(())
}

/// Matcher codes: HTTP `200..499`, gRPC `0..99`, as `N`, `N,M` or `N-M` (ELBv2 API reference,
/// `Matcher`).
pub fn matcher_codes(raw: &str, grpc: bool) -> Result<(), String> {
    let (lo, hi, what) = if grpc {
        (0, 99, "gRPC codes 0..99")
    } else {
        (200, 499, "HTTP codes 200..499")
    };
    let num = |s: &str| {
        (!s.is_empty() && s.len() <= 3 && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u32>().ok())
            .flatten()
            .filter(|n| (lo..=hi).contains(n))
    };
    let ok = !raw.is_empty()
        && raw.split(',').all(|item| match item.split_once('-') {
            Some((a, b)) => matches!((num(a), num(b)), (Some(a), Some(b)) if a <= b),
            None => num(item).is_some(),
        });
    if ok {
        Ok(())
    } else {
        Err(format!("{raw:?} is not a list or range of {what}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_values_follow_the_documented_characters_and_length() {
        assert!(host_header_value("a.deploy.agentops.ai").is_ok());
        assert!(host_header_value("*.example.com").is_ok());
        assert!(host_header_value(&format!("{}.io", "a".repeat(125))).is_ok());
        assert!(host_header_value(&format!("{}.io", "a".repeat(126))).is_err());
        assert!(host_header_value("a_b.example.com").is_err());
        assert!(host_header_value("").is_err());
    }

    #[test]
    fn path_values_follow_the_documented_characters_and_length() {
        assert!(path_pattern_value("/api/v1/*").is_ok());
        assert!(path_pattern_value(&format!("/{}", "a".repeat(127))).is_ok());
        assert!(path_pattern_value(&format!("/{}", "a".repeat(128))).is_err());
        assert!(path_pattern_value("/a b").is_err());
        assert!(path_pattern_value("/a%20b").is_err());
        assert!(path_pattern_value("/a#b").is_err());
    }

    #[test]
    fn prefix_paths_become_two_patterns() {
        assert_eq!(path_patterns("/", "Prefix"), ["/*"]);
        assert_eq!(path_patterns("/api/", "Prefix"), ["/api", "/api/*"]);
        assert_eq!(path_patterns("/api", "Exact"), ["/api"]);
        assert_eq!(path_patterns("/a*b", "ImplementationSpecific"), ["/a*b"]);
    }

    #[test]
    fn target_group_attributes_are_the_documented_ones_in_combination() {
        let kv = |s: &[(&str, &str)]| {
            s.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<Vec<_>>()
        };
        assert!(
            target_group_attributes(&kv(&[("deregistration_delay.timeout_seconds", "30")])).is_ok()
        );
        assert!(
            target_group_attributes(&kv(&[("deregistration_delay.timeout_seconds", "3600")]))
                .is_ok()
        );
        assert!(
            target_group_attributes(&kv(&[("deregistration_delay.timeout_seconds", "3601")]))
                .is_err()
        );
        assert!(target_group_attributes(&kv(&[("no.such.key", "1")])).is_err());
        assert!(
            target_group_attributes(&kv(&[("lambda.multi_value_headers.enabled", "true")]))
                .is_err()
        );
        assert!(target_group_attributes(&kv(&[("slow_start.duration_seconds", "29")])).is_err());
        assert!(target_group_attributes(&kv(&[("slow_start.duration_seconds", "30")])).is_ok());
        assert!(
            target_group_attributes(&kv(&[
                ("slow_start.duration_seconds", "30"),
                (
                    "load_balancing.algorithm.type",
                    "least_outstanding_requests"
                )
            ]))
            .is_err()
        );
        assert!(
            target_group_attributes(&kv(&[(
                "load_balancing.algorithm.anomaly_mitigation",
                "on"
            )]))
            .is_err()
        );
        assert!(
            target_group_attributes(&kv(&[
                ("load_balancing.algorithm.type", "weighted_random"),
                ("load_balancing.algorithm.anomaly_mitigation", "on")
            ]))
            .is_ok()
        );
        assert!(
            target_group_attributes(&kv(&[("stickiness.app_cookie.cookie_name", "AWSALBAPP")]))
                .is_err()
        );
    }

    #[test]
    fn timing_and_codes() {
        assert!(health_check_timing(15, 5).is_ok());
        assert!(health_check_timing(5, 5).is_err());
        assert!(health_check_timing(5, 6).is_err());
        assert!(matcher_codes("200", false).is_ok());
        assert!(matcher_codes("200-299,404", false).is_ok());
        assert!(matcher_codes("200", true).is_err());
        assert!(matcher_codes("12", true).is_ok());
        assert!(matcher_codes("0-99", true).is_ok());
        assert!(matcher_codes("500", false).is_err());
        assert!(matcher_codes("299-200", false).is_err());
    }
}
