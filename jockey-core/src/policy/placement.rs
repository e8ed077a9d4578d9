//! Which ALB an Ingress joins is jockey's choice, never the tenant's: a tenant that could name a
//! shard would open a new ALB at will (cost, the region's ALB quota) or crowd a full one past its
//! quotas. So `group.name` may only be the project's current group, or the one placement would
//! choose now (or a group the admin allows every project), and whatever the group, the Ingress
//! must fit in it: projects (the shard capacity), listener rules, target groups and certificates
//! against the ALB's quotas, counted over every member the index holds.

use super::{Context, IngressRecord, Verdict};
use crate::allowlist::rule_listeners;
use crate::contract::ALB_GROUP_NAME;
use crate::sharding;
use k8s_openapi::api::networking::v1::Ingress;
use std::collections::{BTreeMap, BTreeSet};

pub(crate) fn check(
    ctx: &Context,
    v: &mut Verdict,
    obj: &Ingress,
    old: Option<&Ingress>,
    project: &str,
    group: Option<&str>,
    settings: &BTreeMap<String, String>,
) {
    let cfg = ctx.cfg;
    let field = format!("metadata.annotations[{ALB_GROUP_NAME}]");
    let Some(group) = group else {
        v.deny(
            &field,
            "is missing, so the Ingress would get an ALB of its own".into(),
            "jockey Ingresses join the shared ALB group",
            format!(
                "set it to {} (the mutating webhook does this when it is registered)",
                cfg.alb_shared_group_name
            ),
        );
        return;
    };
    let this_name = obj.metadata.name.as_deref().unwrap_or_default();
    let is_self = |r: &IngressRecord| r.namespace == ctx.namespace && r.name == this_name;
    let group_of = |i: &Ingress| {
        i.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(ALB_GROUP_NAME))
            .cloned()
    };
    // Where the project is now: its other Ingresses' groups, and this Ingress's stored one.
    let mut current: BTreeSet<String> = ctx
        .index
        .of_project(project)
        .filter(|r| !is_self(r))
        .filter_map(|r| r.group.clone())
        .collect();
    current.extend(old.and_then(group_of));
    current.extend(
        ctx.index
            .get(ctx.namespace, this_name)
            .and_then(|r| r.group.clone()),
    );
    let chosen = ctx.policy.place(cfg, ctx.index, project);
    let shared = &cfg.alb_shared_group_name;
    let shard = sharding::is_shard_of(shared, group);
    let admin_allowed = cfg.alb_allowed_groups.iter().any(|g| g == group);
    if !(current.contains(group) || group == chosen || admin_allowed) {
        let (problem, fix) = if shard || group == shared {
            (
                format!("is {group:?}, but project {project} is placed in {chosen:?}"),
                format!(
                    "remove the annotation (the webhook places the project) or set it to {chosen}"
                ),
            )
        } else {
            (
                format!("is {group:?}, not a group jockey places projects in"),
                format!(
                    "remove the annotation (the webhook places project {project} in {chosen}), or ask the cluster admin to allow the group {group} (ALB_ALLOWED_GROUPS)"
                ),
            )
        };
        v.deny(
            &field,
            problem,
            "the ALB group (shard) of a project is jockey's choice: a tenant naming one would open a new ALB or crowd a full one",
            fix,
        );
        return;
    }
    if let (Some(old_g), Some(new_g)) = (old.and_then(group_of), Some(group))
        && old_g != new_g
    {
        v.warn(format!(
            "{ALB_GROUP_NAME} changes from {old_g:?} to {new_g:?}: the host moves to another ALB and its DNS must follow"
        ));
    }
    fits(ctx, v, obj, project, group, &current, settings, &is_self);
}

/// The group's quotas, whoever named it.
#[allow(clippy::too_many_arguments)]
fn fits(
    ctx: &Context,
    v: &mut Verdict,
    obj: &Ingress,
    project: &str,
    group: &str,
    current: &BTreeSet<String>,
    settings: &BTreeMap<String, String>,
    is_self: &dyn Fn(&IngressRecord) -> bool,
) {
    let field = format!("metadata.annotations[{ALB_GROUP_NAME}]");
    let policy = ctx.policy;
    let shared = &ctx.cfg.alb_shared_group_name;
    let deny = |v: &mut Verdict, problem: String, fix: String| {
        v.deny(
            &field,
            problem,
            "every Ingress of an ALB group fits the ALB's quotas (past one, AWS refuses the controller and the whole group stops reconciling)",
            fix,
        );
    };
    let joining = !current.contains(group);
    if joining
        && policy.sharding.enabled
        && sharding::is_shard_of(shared, group)
        && ctx.index.projects_in_group(group) >= policy.sharding.capacity
    {
        deny(
            v,
            format!(
                "is {group:?}, which holds {} projects, its capacity",
                ctx.index.projects_in_group(group)
            ),
            "remove the annotation: the webhook places a new project in a shard with room".into(),
        );
        return;
    }
    let me = IngressRecord::from_ingress(obj);
    let others: Vec<&IngressRecord> = ctx.index.in_group(group).filter(|r| !is_self(r)).collect();
    let listeners = rule_listeners(settings).len().max(1);
    let rules = (others.iter().map(|r| r.rules).sum::<usize>() + me.rules) * listeners;
    if rules > policy.rule_quota {
        deny(
            v,
            format!(
                "would bring ALB group {group} to {rules} listener rules, past its quota of {}",
                policy.rule_quota
            ),
            format!(
                "serve project {project} with fewer paths, or ask the cluster admin to raise ruleQuota (after raising the quota in AWS)"
            ),
        );
    }
    let target_groups =
        others.iter().map(|r| r.target_groups()).sum::<usize>() + me.target_groups();
    if target_groups > policy.target_group_quota {
        deny(
            v,
            format!(
                "would bring ALB group {group} to {target_groups} target groups, past its quota of {}",
                policy.target_group_quota
            ),
            format!(
                "route project {project} to fewer Services, or ask the cluster admin to raise targetGroupQuota (after raising the quota in AWS)"
            ),
        );
    }
    // Without the admin's certificate-arn the controller discovers one certificate per host,
    // and one wildcard covers every PROJECT.<DEPLOYMENT_DOMAIN>.
    if !settings.contains_key("certificate-arn") {
        let domain = &ctx.cfg.deployment_domain;
        let own_wildcard = |h: &str| {
            h.strip_suffix(domain.as_str())
                .and_then(|head| head.strip_suffix('.'))
                .is_some_and(|label| !label.contains('.'))
        };
        let mut hosts: BTreeSet<&str> = others
            .iter()
            .flat_map(|r| r.hosts.iter().map(String::as_str))
            .chain(me.hosts.iter().map(String::as_str))
            .filter(|h| !own_wildcard(h))
            .collect();
        // The wildcard itself is one certificate.
        let wildcard = 1;
        hosts.retain(|h| !h.is_empty());
        if hosts.len() + wildcard > policy.certificate_quota {
            deny(
                v,
                format!(
                    "would make ALB group {group} discover {} certificates, past its quota of {}",
                    hosts.len() + wildcard,
                    policy.certificate_quota
                ),
                "serve fewer extra hosts on this group, or ask the cluster admin to set certificate-arn in the group settings".into(),
            );
        }
    }
}
