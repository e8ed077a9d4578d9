//! Keys checked together: what a target group, a rule or an authentication becomes from all of
//! an Ingress's keys at once, with jockey's defaults and the controller's own defaults filling
//! what the object leaves out. Each value can be fine alone and the combination still be refused
//! by AWS or the controller (a gRPC target group with jockey's HTTP success code 200, a timeout
//! as long as the interval), failing the whole group.

use super::{Admitted, Scope, field};
use crate::alb_annotations::{self as alb, Condition, Parsed, Protocol};
use crate::aws_limits;
use crate::contract;
use crate::verdict::Verdict;
use std::collections::BTreeMap;

/// The controller's defaults (`pkg/ingress/model_builder.go:192-201`).
const CONTROLLER_INTERVAL: i64 = 15;
const CONTROLLER_TIMEOUT: i64 = 5;
/// The controller's health check path and success codes for gRPC target groups.
pub const GRPC_HEALTH_PATH: &str = "/AWS.ALB/healthcheck";
pub const GRPC_SUCCESS_CODES: &str = "12";

pub(super) fn ingress(
    annotations: &BTreeMap<String, String>,
    admitted: &Admitted,
    scope: &Scope,
    v: &mut Verdict,
) {
    let raw = |suffix: &str| annotations.get(&format!("{}{suffix}", alb::PREFIX));
    let int = |suffix: &str, default: i64| match admitted.get(suffix) {
        Some((_, Parsed::Int(n))) => *n,
        _ => default,
    };

    // Timeout against interval (each alone is in range, or the parse refused it).
    let interval = int("healthcheck-interval-seconds", CONTROLLER_INTERVAL);
    let timeout = int("healthcheck-timeout-seconds", CONTROLLER_TIMEOUT);
    if let Err(why) = aws_limits::health_check_timing(interval, timeout) {
        v.deny(
            field(&format!("{}healthcheck-timeout-seconds", alb::PREFIX)),
            why,
            "AWS refuses a target group whose health check timeout is not shorter than its interval, and the deploy of the whole group fails",
            format!("set healthcheck-timeout-seconds below {interval} (or healthcheck-interval-seconds above {timeout})"),
        );
    }

    // The protocol version decides what the matcher and the health check path are.
    let version = raw("backend-protocol-version").map_or("HTTP1", String::as_str);
    let grpc = version == "GRPC";
    let own = |suffix: &str| {
        let key = format!("{}{suffix}", alb::PREFIX);
        contract::own_default(&key, version)
    };
    let codes_from = raw("success-codes")
        .cloned()
        .or_else(|| own("success-codes"));
    if let Some(codes) = codes_from
        && let Err(why) = aws_limits::matcher_codes(&codes, grpc)
    {
        v.deny(
            field(&format!("{}success-codes", alb::PREFIX)),
            format!("{why} for backend-protocol-version {version}"),
            "a target group's matcher is HTTP codes 200..499, or gRPC codes 0..99 with GRPC; AWS refuses the other kind and the deploy of the whole group fails",
            if grpc {
                format!("set success-codes to gRPC codes, e.g. {GRPC_SUCCESS_CODES} (or 0-99)")
            } else {
                "set success-codes to HTTP codes 200..499, e.g. 200".into()
            },
        );
    }
    if grpc {
        let path = raw("healthcheck-path")
            .cloned()
            .or_else(|| own("healthcheck-path"));
        if let Some(p) = path.filter(|p| !is_grpc_method(p)) {
            v.deny(
                field(&format!("{}healthcheck-path", alb::PREFIX)),
                format!("is {p:?} with backend-protocol-version GRPC"),
                "a gRPC health check calls a method: its path is /package.service/method",
                format!("set healthcheck-path to a gRPC method, e.g. {GRPC_HEALTH_PATH}"),
            );
        }
    }
    if version != "HTTP1" {
        let listeners = rule_listeners(scope.group_settings);
        if listeners.contains(&Protocol::Http) {
            v.deny(
                field(&format!("{}backend-protocol-version", alb::PREFIX)),
                format!("is {version} while the group's rules also sit on an HTTP listener"),
                "AWS forwards to HTTP2 and GRPC target groups only from HTTPS listeners, and refuses the rule (failing the whole group's deploy) otherwise",
                "use HTTP1, or ask the cluster admin for ssl-redirect (or HTTPS-only listen-ports) in the group settings".into(),
            );
        }
    }

    // Authentication (granted keys): what the controller needs together.
    let auth = raw("auth-type")
        .map(String::as_str)
        .filter(|t| *t != "none");
    if let Some(kind) = auth {
        let needs = match kind {
            "cognito" => Some("auth-idp-cognito"),
            "oidc" => Some("auth-idp-oidc"),
            _ => None,
        };
        if let Some(needed) = needs
            && admitted.get(needed).is_none()
        {
            v.deny(
                field(&format!("{}auth-type", alb::PREFIX)),
                format!("is {kind} without {needed}"),
                "the controller fails the whole group's model build on an authentication it cannot configure",
                format!("add {needed} (granted with auth-type), or remove auth-type"),
            );
        }
        if raw("jwt-validation").is_some() {
            v.deny(
                field(&format!("{}jwt-validation", alb::PREFIX)),
                format!("is set together with auth-type {kind}"),
                "the controller fails the whole group's model build on authentication and JWT validation on one rule",
                "keep one of auth-type and jwt-validation".into(),
            );
        }
    }

    // Conditions (granted keys): what AWS refuses of a condition that the controller passes on.
    for (entry, parsed) in admitted.of_reach(|r| matches!(r, alb::Reach::Routing)) {
        let Parsed::Conditions(conditions) = parsed else {
            continue;
        };
        for c in conditions {
            if let Condition::HttpHeader { name, .. } = c
                && name.eq_ignore_ascii_case("host")
            {
                v.deny(
                    field(&entry.known.key),
                    "has an http-header condition on the Host header".into(),
                    "AWS refuses an http-header condition on Host (host-header is the condition for it), and the deploy of the whole group fails",
                    "match hosts with the Ingress's own rules (or a host-header condition on the project's hosts)".into(),
                );
            }
        }
    }
}

/// `/package.service/method`.
fn is_grpc_method(path: &str) -> bool {
    let mut parts = path.split('/');
    let ok = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
    };
    parts.next() == Some("")
        && parts.next().is_some_and(ok)
        && parts.next().is_some_and(ok)
        && parts.next().is_none()
}

/// The protocols of the listeners that carry the group's rules: the group's listen ports (the
/// controller's default is HTTP 80), without the HTTP ones when ssl-redirect turns them into
/// redirects.
pub fn rule_listeners(group_settings: &BTreeMap<String, String>) -> Vec<Protocol> {
    let ports = group_settings.get("listen-ports").and_then(|raw| {
        alb::classify(
            alb::Object::Ingress,
            &format!("{}listen-ports", alb::PREFIX),
        )?
        .ok()?
        .parse(raw)
        .ok()
    });
    let mut protocols: Vec<Protocol> = match ports {
        Some(Parsed::ListenPorts(p)) => p.iter().map(|l| l.protocol).collect(),
        _ => vec![Protocol::Http],
    };
    if group_settings.contains_key("ssl-redirect") {
        protocols.retain(|p| *p == Protocol::Https);
    }
    protocols.dedup();
    protocols
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_methods() {
        assert!(is_grpc_method("/AWS.ALB/healthcheck"));
        assert!(is_grpc_method("/grpc.health.v1.Health/Check"));
        assert!(!is_grpc_method("/health"));
        assert!(!is_grpc_method("/a/b/c"));
        assert!(!is_grpc_method("a/b"));
    }

    #[test]
    fn ssl_redirect_leaves_only_https_listeners_with_rules() {
        let mut s: BTreeMap<String, String> = contract::DEFAULT_GROUP_SETTINGS
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(rule_listeners(&s), [Protocol::Https]);
        s.remove("ssl-redirect");
        assert_eq!(rule_listeners(&s), [Protocol::Http, Protocol::Https]);
        s.remove("listen-ports");
        assert_eq!(rule_listeners(&s), [Protocol::Http]);
    }
}
