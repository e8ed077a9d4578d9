//! Hand-made objects the ALB unit tests share.

#![allow(dead_code)]

pub use super::elb::{
    self, Action, ElbSnapshot, Listener, LoadBalancer, Rule, Target, TargetGroup,
};
pub use super::model::*;
pub use super::validate::*;
pub use k8s_openapi::api::core::v1::{Event, Pod, Service};
pub use k8s_openapi::api::discovery::v1::EndpointSlice;
pub use k8s_openapi::api::networking::v1::Ingress;
use serde_json::json;
pub use std::collections::BTreeMap;

pub const BASE: &str = "alb-deployments";
pub const ALB: &str = "k8s-albdeployments-0123456789.us-east-1.elb.amazonaws.com";
pub const ALB2: &str = "k8s-albdeployments2-9876543210.us-east-1.elb.amazonaws.com";

pub fn ingress(ns: &str, project: &str, group: Option<&str>, address: Option<&str>) -> Ingress {
    let mut annotations = serde_json::Map::new();
    if let Some(g) = group {
        annotations.insert(ANNOTATION_GROUP.into(), json!(g));
    }
    annotations.insert(
        "alb.ingress.kubernetes.io/scheme".into(),
        json!("internet-facing"),
    );
    annotations.insert(
        ANNOTATION_LISTEN_PORTS.into(),
        json!(r#"[{"HTTP": 80}, {"HTTPS": 443}]"#),
    );
    annotations.insert(ANNOTATION_SSL_REDIRECT.into(), json!("443"));
    let status = match address {
        Some(a) => json!({"loadBalancer": {"ingress": [{"hostname": a}]}}),
        None => json!({}),
    };
    serde_json::from_value(json!({
        "metadata": {
            "name": format!("ing-{project}"), "namespace": ns,
            "labels": {"jockey.agentops.ai/project": project},
            "annotations": annotations,
        },
        "spec": {
            "ingressClassName": "alb",
            "rules": [{
                "host": format!("{project}.deploy.agentops.ai"),
                "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": {
                    "service": {"name": format!("svc-{project}"), "port": {"number": 80}}}}]}
            }]
        },
        "status": status,
    }))
    .unwrap()
}

/// `ing` with the ALB annotation `alb.ingress.kubernetes.io/<key>` set to `value`.
pub fn with_annotation(mut ing: Ingress, key: &str, value: &str) -> Ingress {
    ing.metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(format!("alb.ingress.kubernetes.io/{key}"), value.into());
    ing
}

pub fn service(ns: &str, project: &str, kind: &str, target_port: serde_json::Value) -> Service {
    serde_json::from_value(json!({
        "metadata": {"name": format!("svc-{project}"), "namespace": ns},
        "spec": {"type": kind, "selector": {"app": project},
                 "ports": [{"port": 80, "targetPort": target_port}]}
    }))
    .unwrap()
}

pub fn slice(ns: &str, project: &str, endpoints: &[(&str, Option<bool>)]) -> EndpointSlice {
    let eps: Vec<_> = endpoints
        .iter()
        .map(|(ip, ready)| match ready {
            Some(r) => json!({"addresses": [ip], "conditions": {"ready": r}}),
            None => json!({"addresses": [ip]}),
        })
        .collect();
    serde_json::from_value(json!({
        "metadata": {"name": format!("svc-{project}-abc"), "namespace": ns,
                     "labels": {"kubernetes.io/service-name": format!("svc-{project}")}},
        "addressType": "IPv4",
        "endpoints": eps,
    }))
    .unwrap()
}

pub fn event(ns: &str, ingress: &str, reason: &str, at: &str) -> Event {
    serde_json::from_value(json!({
        "metadata": {"name": format!("{ingress}.{reason}.{at}"), "namespace": ns},
        "involvedObject": {"kind": "Ingress", "name": ingress, "namespace": ns},
        "reason": reason,
        "message": format!("{reason} for {ingress}"),
        "type": if reason == SUCCESS_REASON { "Normal" } else { "Warning" },
        "lastTimestamp": at,
        "count": 2,
    }))
    .unwrap()
}

pub fn pod(ready: bool) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": "aws-load-balancer-controller-abc", "namespace": "kube-system"},
        "status": {"phase": "Running",
                   "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}],
                   "containerStatuses": [{"name": "c", "ready": ready, "restartCount": 3,
                                          "image": "x", "imageID": "y"}]}
    }))
    .unwrap()
}

/// A healthy cluster: one project p1 in team-a, fully wired.
pub fn healthy_cluster() -> ClusterState {
    ClusterState {
        ingresses: vec![ingress("team-a", "p1", Some(BASE), Some(ALB))],
        services: vec![service("team-a", "p1", "ClusterIP", json!(8080))],
        endpoint_slices: vec![slice("team-a", "p1", &[("10.0.1.10", Some(true))])],
        events: vec![],
        controller_pods: vec![pod(true)],
    }
}

pub fn tg(arn: &str, targets: &[(&str, &str)]) -> TargetGroup {
    TargetGroup {
        arn: arn.into(),
        name: arn.rsplit('/').next().unwrap_or(arn).into(),
        protocol: "HTTP".into(),
        port: 8080,
        target_type: "ip".into(),
        health_check_path: "/health".into(),
        tags: BTreeMap::new(),
        targets: targets
            .iter()
            .map(|(id, state)| Target {
                id: (*id).into(),
                port: 8080,
                state: (*state).into(),
                reason: (*state != "healthy").then(|| "Target.FailedHealthChecks".into()),
                description: None,
            })
            .collect(),
    }
}

pub fn forward(priority: &str, host: &str, tg: &str) -> Rule {
    Rule {
        priority: priority.into(),
        is_default: false,
        hosts: vec![host.into()],
        paths: vec!["/*".into()],
        action: Action::Forward {
            target_groups: vec![tg.into()],
        },
    }
}

pub fn default_rule() -> Rule {
    Rule {
        priority: "default".into(),
        is_default: true,
        action: Action::FixedResponse {
            status: "404".into(),
        },
        ..Default::default()
    }
}

pub fn snapshot(rules: Vec<Rule>, tgs: Vec<TargetGroup>) -> ElbSnapshot {
    ElbSnapshot {
        load_balancers: vec![LoadBalancer {
            arn: "arn:lb".into(),
            name: "k8s-albdeployments".into(),
            dns_name: ALB.into(),
            state: "active".into(),
            scheme: "internet-facing".into(),
            tags: BTreeMap::from([(elb::TAG_STACK.to_string(), BASE.to_string())]),
            listeners: vec![
                Listener {
                    arn: "arn:l80".into(),
                    protocol: "HTTP".into(),
                    port: 80,
                    rules: vec![Rule {
                        action: Action::Redirect {
                            to: "HTTPS:443".into(),
                        },
                        ..default_rule()
                    }],
                },
                Listener {
                    arn: "arn:l443".into(),
                    protocol: "HTTPS".into(),
                    port: 443,
                    rules: rules.into_iter().chain([default_rule()]).collect(),
                },
            ],
        }],
        target_groups: tgs,
    }
}

pub fn good_snapshot() -> ElbSnapshot {
    snapshot(
        vec![forward("1", "p1.deploy.agentops.ai", "arn:tg/p1")],
        vec![tg("arn:tg/p1", &[("10.0.1.10", "healthy")])],
    )
}

pub fn good_dns() -> DnsView {
    DnsView::Answers {
        host: DnsAnswer {
            cnames: vec![ALB.into()],
            ips: vec!["192.0.2.10".parse().unwrap()],
            error: None,
        },
        albs: BTreeMap::from([(
            ALB.to_string(),
            DnsAnswer {
                ips: vec!["192.0.2.10".parse().unwrap()],
                ..Default::default()
            },
        )]),
    }
}

pub fn run(cluster: &ClusterState, aws: &AwsView, dns: &DnsView, host: &str) -> Vec<Check> {
    validate(&ValidateInput {
        host,
        base_group: BASE,
        cluster,
        aws,
        dns,
        probe: &ProbeResult::NotRequested,
    })
}

pub fn outcome(checks: &[Check], name: &str) -> Outcome {
    checks
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no check {name} in {checks:#?}"))
        .outcome
}

pub fn detail<'a>(checks: &'a [Check], name: &str) -> &'a str {
    &checks.iter().find(|c| c.name == name).unwrap().detail
}

pub const HOST: &str = "p1.deploy.agentops.ai";
