//! The shape of an Ingress's rules on a shared ALB: every rule names a host, backends are
//! Services, paths are ones the controller can build, and a project adds only as many listener
//! rules (and match values per rule) as the ALB's quotas leave it. Each of these, broken, either
//! reaches other tenants' traffic or makes the controller fail the whole group.

use super::{Context, Verdict, listener_rules};
use crate::alb_annotations::{Condition, Parsed};
use crate::allowlist::Admitted;
use crate::aws_limits::{
    self, MAX_VALUES_PER_CONDITION, MAX_VALUES_PER_RULE, path_pattern_value, path_patterns,
};
use k8s_openapi::api::networking::v1::{HTTPIngressPath, Ingress};

pub(crate) fn check(ctx: &Context, v: &mut Verdict, obj: &Ingress, project: &str, alb: &Admitted) {
    let own_host = format!("{project}.{}", ctx.cfg.deployment_domain);
    let spec = obj.spec.clone().unwrap_or_default();
    for (i, rule) in spec.rules.iter().flatten().enumerate() {
        if let Some(host) = rule.host.as_deref().filter(|h| !h.is_empty())
            && let Err(why) = aws_limits::host_header_value(host)
        {
            v.deny(
                format!("spec.rules[{i}].host"),
                format!("{host:?} {why}"),
                "every host becomes the value of an ALB host condition, which AWS refuses (failing the whole group's deploy) outside its limits",
                format!("use host {own_host}"),
            );
        }
        if rule.host.as_deref().is_none_or(str::is_empty) {
            v.deny(
                format!("spec.rules[{i}].host"),
                "is empty, so the rule would match every host on the shared ALB".into(),
                "every rule names a host",
                format!("set host: {own_host}"),
            );
        }
        for (j, path) in rule.http.iter().flat_map(|h| h.paths.iter()).enumerate() {
            let field = format!("spec.rules[{i}].http.paths[{j}]");
            path_rule(v, &field, path, alb);
        }
    }
    if spec.default_backend.is_some() {
        v.deny(
            "spec.defaultBackend",
            "is set; on a shared ALB it becomes the default action for every tenant".into(),
            "a jockey Ingress routes by host only",
            format!("remove spec.defaultBackend and use a rule for host {own_host}"),
        );
    }

    // The project's share of the ALB's rule quota, over all its Ingresses.
    let this_ns = ctx.namespace;
    let this_name = obj.metadata.name.as_deref().unwrap_or_default();
    let others: usize = ctx
        .index
        .of_project(project)
        .filter(|r| !(r.namespace == this_ns && r.name == this_name))
        .map(|r| r.rules)
        .sum();
    let mine = listener_rules(obj);
    let allowance = ctx.policy.rule_allowance(project);
    if mine + others > allowance {
        v.deny(
            "spec.rules",
            format!(
                "adds {mine} listener rules (host x path){}, more than the {allowance} project {project} may have",
                if others > 0 {
                    format!(" to the {others} its other Ingresses have")
                } else {
                    String::new()
                }
            ),
            "a project's rules are capped so that the projects sharing an ALB stay within its rule quota (past it the controller fails the whole group)",
            "serve the project under one host and path `/` (the agent routes inside), or ask the cluster admin to raise maxRulesPerProject in the webhook policy".into(),
        );
    }
}

fn path_rule(v: &mut Verdict, field: &str, path: &HTTPIngressPath, alb: &Admitted) {
    let Some(service) = path.backend.service.as_ref() else {
        v.deny(
            format!("{field}.backend"),
            "is not a Service backend".into(),
            "the controller can route only to Services, and a resource backend fails the whole group",
            "use backend.service with the project's Service".into(),
        );
        return;
    };
    let p = path.path.as_deref().unwrap_or("/");
    let patterns = match path.path_type.as_str() {
        "Exact" | "Prefix" if p.contains(['*', '?']) => {
            v.deny(
                format!("{field}.path"),
                format!("{p:?} has a wildcard with pathType {}", path.path_type),
                "the controller refuses wildcards in Exact and Prefix paths, failing the whole group",
                "remove the wildcard, or use pathType ImplementationSpecific".into(),
            );
            return;
        }
        "Prefix" if p == "/" => 1,
        "Prefix" => 2,
        _ => 1,
    };
    let regex = matches!(
        alb.get("use-regex-path-match"),
        Some((_, Parsed::Bool(true)))
    ) && path.path_type == "ImplementationSpecific";
    if !regex {
        for pattern in path_patterns(p, &path.path_type) {
            if let Err(why) = path_pattern_value(&pattern) {
                v.deny(
                    format!("{field}.path"),
                    format!("{p:?} becomes the path pattern {pattern:?}, which {why}"),
                    "every path becomes the value of an ALB path condition, which AWS refuses (failing the whole group's deploy) outside its limits",
                    "use a shorter path of letters, digits and _ - . $ / ~ \" ' @ : + & * ?".into(),
                );
                return;
            }
        }
    }
    // The rule's own host and path, and what `conditions.<backend>` adds to the same rule.
    let (mut host_values, mut path_values) = (1, patterns);
    let mut other = Vec::new();
    if let Some((_, Parsed::Conditions(conditions))) =
        alb.get(&format!("conditions.{}", service.name))
    {
        for c in conditions {
            match c {
                Condition::HostHeader {
                    values,
                    regex_values,
                } => host_values += values.len() + regex_values.len(),
                Condition::PathPattern {
                    values,
                    regex_values,
                } => path_values += values.len() + regex_values.len(),
                Condition::HttpHeader {
                    name,
                    values,
                    regex_values,
                } => other.push((
                    format!("http-header {name}"),
                    values.len() + regex_values.len(),
                )),
                Condition::HttpRequestMethod { values } => {
                    other.push(("http-request-method".into(), values.len()))
                }
                Condition::QueryString { values } => {
                    other.push(("query-string".into(), values.len()))
                }
                Condition::SourceIp { values } => other.push(("source-ip".into(), values.len())),
                Condition::Ignored { .. } => {}
            }
        }
    }
    let mut counts = vec![
        ("host-header".to_string(), host_values),
        ("path-pattern".to_string(), path_values),
    ];
    counts.extend(other);
    let total: usize = counts.iter().map(|(_, n)| n).sum();
    let over: Vec<String> = counts
        .iter()
        .filter(|(_, n)| *n > MAX_VALUES_PER_CONDITION)
        .map(|(what, n)| format!("{what} has {n}"))
        .collect();
    if !over.is_empty() || total > MAX_VALUES_PER_RULE {
        v.deny(
            field.to_string(),
            format!(
                "makes a listener rule with {total} match values ({})",
                counts
                    .iter()
                    .map(|(w, n)| format!("{w}: {n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            "an ALB rule holds at most 3 values per condition and 5 in all (a Prefix path counts 2); AWS refuses a bigger one and the deploy of the whole group fails",
            format!(
                "use fewer values in conditions.{} or a path `/`",
                service.name
            ),
        );
    }
}
