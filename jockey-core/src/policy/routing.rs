//! Annotations that add rules or change what a rule matches: `conditions.*`, `actions.*`,
//! `transforms.*`, `use-regex-path-match`. A project has them only where the cluster admin
//! granted them ([`crate::allowlist`]); even then they may name only the project's own hosts and
//! the Services of its own namespace ([`super::backends`] checks those Services). Rule order
//! (`group.order`) is nobody's on a project.
//!
//! The attack these rules stop: the controller ORs a `host-header` condition's values into the
//! rule's own host, so `conditions.<svc>: [{"field":"host-header","hostHeaderConfig":{"values":
//! ["victim.example"]}}]` plus `group.order: "-1000"` puts a rule for the victim's host ahead of
//! the victim's own; and a forward to a raw target group ARN or name reaches any target group of
//! the AWS account.

use super::{Context, Verdict};
use crate::alb_annotations::{Action, Condition, Parsed, Reach, TargetRef};
use crate::allowlist::Admitted;
use std::collections::BTreeSet;

/// `hosts` are the Ingress's own (already checked) hosts; `project` its project.
pub(crate) fn check(
    ctx: &Context,
    v: &mut Verdict,
    alb: &Admitted,
    hosts: &BTreeSet<String>,
    project: &str,
) {
    let own_host = format!("{project}.{}", ctx.cfg.deployment_domain);
    let regex_paths = matches!(
        alb.get("use-regex-path-match"),
        Some((_, Parsed::Bool(true)))
    );
    for (entry, parsed) in alb.of_reach(|r| matches!(r, Reach::Routing | Reach::Membership)) {
        let key = &entry.known.key;
        let field = format!("metadata.annotations[{key}]");
        match (entry.known.suffix, parsed) {
            (_, Parsed::Conditions(conditions)) => conditions_rule(
                ctx,
                v,
                &field,
                conditions,
                hosts,
                &own_host,
                regex_paths,
                project,
            ),
            (_, Parsed::Action(action)) => action_rule(v, &field, action, ctx.namespace),
            _ => {}
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn conditions_rule(
    ctx: &Context,
    v: &mut Verdict,
    field: &str,
    conditions: &[Condition],
    hosts: &BTreeSet<String>,
    own_host: &str,
    regex_paths: bool,
    project: &str,
) {
    for c in conditions {
        match c {
            Condition::HostHeader {
                values,
                regex_values,
            } => {
                for value in values {
                    let host = value.to_ascii_lowercase();
                    let mine = hosts.contains(&host)
                        || host == own_host
                        || ctx.policy.extra_host_allowed(project, &host);
                    if !mine {
                        v.deny(
                            field.to_string(),
                            format!("adds a host-header condition for {value:?}, which is not this project's host"),
                            "rules on a shared ALB match only the project's own hosts (a host-header condition is ORed into the rule's host)",
                            format!("remove {value:?} from the condition, or use host {own_host}"),
                        );
                    }
                }
                if !regex_values.is_empty() {
                    v.deny(
                        field.to_string(),
                        format!("adds host-header regexValues {regex_values:?}"),
                        "rules on a shared ALB match only the project's own hosts, which a regular expression cannot be shown to keep to (and regexValues next to the rule's host fails the whole group)",
                        "list the project's own hosts under values instead".into(),
                    );
                }
            }
            // The controller puts the rule's own path patterns and these into one condition and
            // fails the whole group when plain values meet regular expressions there.
            Condition::PathPattern {
                values,
                regex_values,
            } => {
                let (kind, clash) = if regex_paths {
                    ("values", !values.is_empty())
                } else {
                    ("regexValues", !regex_values.is_empty())
                };
                if clash {
                    v.deny(
                        field.to_string(),
                        format!(
                            "adds path-pattern {kind} while the Ingress's paths are {}",
                            if regex_paths {
                                "regular expressions (use-regex-path-match)"
                            } else {
                                "plain patterns"
                            }
                        ),
                        "one rule's path condition is all plain values or all regular expressions, or the controller fails the whole group",
                        format!(
                            "use {} in the condition",
                            if regex_paths { "regexValues" } else { "values" }
                        ),
                    );
                }
            }
            _ => {}
        }
    }
}

fn action_rule(v: &mut Verdict, field: &str, action: &Action, namespace: &str) {
    for target in action.targets() {
        let named = match &target.to {
            TargetRef::Service { .. } => continue,
            TargetRef::TargetGroupArn(arn) => format!("target group ARN {arn:?}"),
            TargetRef::TargetGroupName(name) => format!("target group name {name:?}"),
        };
        v.deny(
            field.to_string(),
            format!("forwards to {named}"),
            "a project forwards only to Services of its own namespace: a target group named by ARN or name can be any tenant's",
            format!(
                "forward to a Service in namespace {namespace} instead (forwardConfig.targetGroups[].serviceName/servicePort)"
            ),
        );
    }
}
