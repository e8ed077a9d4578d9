//! The AWS Load Balancer Controller and what it needs of AWS: running, owning IngressClass `alb`,
//! serving the namespaces jockey projects live in (its IngressClassParams' namespaceSelector,
//! decided by [`crate::alb::address::served`], as the controller decides it), public subnets in
//! two zones, and an issued certificate for every host jockey admits.

use super::{CheckResult, Replicas, days_left};
use crate::alb::address::{self, ClassParams, Served};
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use std::collections::{BTreeMap, BTreeSet};

pub const GROUP: &str = "aws-load-balancer-controller";
pub const READY: &str = "alb-controller-ready";
pub const CLASS: &str = "alb-ingress-class";
pub const CLASS_PARAMS: &str = "alb-class-params";
pub const SUBNETS: &str = "alb-subnets";
pub const CERTIFICATE: &str = "alb-certificate";

/// The subnet tag the controller discovers internet-facing ALB subnets by.
pub const ELB_ROLE_TAG: &str = "kubernetes.io/role/elb";
/// A certificate with fewer days left is a warning (ACM renews its own 60 days ahead).
pub const CERT_WARN_DAYS: i64 = 30;

/// Something read from AWS: the value, or why it was not read (no credentials: skipped) or
/// could not be (an API error: failed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AwsRead<T> {
    Read(T),
    Skipped(String),
    Failed(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subnet {
    pub id: String,
    pub zone: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    pub arn: String,
    /// `ISSUED`, `PENDING_VALIDATION`, `EXPIRED`, ...
    pub status: String,
    /// Domain name and subject alternative names.
    pub names: Vec<String>,
    /// Unix seconds.
    pub not_after: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct ControllerFacts {
    /// The label selector the controller's Deployment was looked up by, and what matched it.
    pub selector: String,
    pub deployments: Vec<(String, Replicas)>,
    /// IngressClass `alb`, when it exists.
    pub class: Option<IngressClass>,
    /// The IngressClassParams the class names, when it exists.
    pub params: Option<ClassParams>,
    /// Namespaces jockey projects live in (tenant grants, labelled Ingresses) and their labels.
    pub namespaces: BTreeMap<String, BTreeMap<String, String>>,
    /// Subnets tagged [`ELB_ROLE_TAG`] (in `--vpc-id` when given).
    pub subnets: AwsRead<Vec<Subnet>>,
    /// The configured certificate (ALB_CERTIFICATE_ARN), else every certificate of the account.
    pub certificates: AwsRead<Vec<Certificate>>,
    /// Hosts an ALB certificate must cover: `*.DEPLOYMENT_DOMAIN` and every `extraHosts` entry.
    pub hosts: BTreeSet<String>,
    pub now: i64,
}

pub fn checks(f: &ControllerFacts) -> Vec<CheckResult> {
    vec![
        ready(f),
        class(f),
        class_params(f),
        subnets(f),
        certificate(f),
    ]
}

fn ready(f: &ControllerFacts) -> CheckResult {
    let hint = format!(
        "install the AWS Load Balancer Controller (the eks/aws-load-balancer-controller Helm \
         chart), or pass --alb-controller-selector with its pods' labels (now {})",
        f.selector
    );
    if f.deployments.is_empty() {
        return CheckResult::fail(
            GROUP,
            READY,
            format!("no Deployment matches {} in any namespace", f.selector),
            hint,
        );
    }
    let ready: Vec<&String> = f
        .deployments
        .iter()
        .filter(|(_, r)| r.all_available())
        .map(|(n, _)| n)
        .collect();
    let all: Vec<String> = f
        .deployments
        .iter()
        .map(|(n, r)| format!("{n} {}/{}", r.available, r.desired))
        .collect();
    if ready.is_empty() {
        CheckResult::fail(
            GROUP,
            READY,
            format!(
                "deployment {} not available: no Ingress becomes an ALB rule",
                all.join(", ")
            ),
            "see `kubectl -n kube-system logs deploy/aws-load-balancer-controller` (or the \
             namespace it runs in) and its pods' events",
        )
    } else {
        CheckResult::ok(
            GROUP,
            READY,
            format!("deployment {} available", all.join(", ")),
        )
    }
}

fn class(f: &ControllerFacts) -> CheckResult {
    let Some(class) = &f.class else {
        return CheckResult::fail(
            GROUP,
            CLASS,
            "IngressClass alb does not exist: jockey's Ingresses name it",
            "install the AWS Load Balancer Controller, whose chart creates IngressClass alb \
             (createIngressClassResource=true)",
        );
    };
    let controller = class.spec.as_ref().and_then(|s| s.controller.as_deref());
    if controller == Some(address::ALB_CONTROLLER) {
        CheckResult::ok(
            GROUP,
            CLASS,
            format!("IngressClass alb belongs to {}", address::ALB_CONTROLLER),
        )
    } else {
        CheckResult::fail(
            GROUP,
            CLASS,
            format!(
                "IngressClass alb belongs to {}, not {}: no ALB is made for jockey's Ingresses",
                controller.unwrap_or("(no controller)"),
                address::ALB_CONTROLLER
            ),
            format!(
                "delete IngressClass alb and let the AWS Load Balancer Controller's chart \
                 recreate it with spec.controller {}",
                address::ALB_CONTROLLER
            ),
        )
    }
}

/// An Ingress of class `alb` in `ns`, to ask [`address::served`] what the controller would do.
fn probe(ns: &str) -> Ingress {
    let mut ing = Ingress::default();
    ing.metadata.namespace = Some(ns.to_string());
    ing.metadata.name = Some("jockey-check".to_string());
    ing.spec = Some(k8s_openapi::api::networking::v1::IngressSpec {
        ingress_class_name: Some(crate::alb::report::ALB_CLASS.to_string()),
        ..Default::default()
    });
    ing
}

fn class_params(f: &ControllerFacts) -> CheckResult {
    let Some(class) = &f.class else {
        return CheckResult::skip(GROUP, CLASS_PARAMS, "no IngressClass alb");
    };
    if f.namespaces.is_empty() {
        return CheckResult::ok(
            GROUP,
            CLASS_PARAMS,
            "no namespace holds jockey projects yet (no tenant grant, no labelled Ingress)",
        );
    }
    let classes = std::slice::from_ref(class);
    let refused: Vec<String> = f
        .namespaces
        .iter()
        .filter_map(|(ns, labels)| {
            match address::served(&probe(ns), classes, f.params.as_ref(), labels) {
                Served::Yes => None,
                Served::No(why) => Some(why),
            }
        })
        .collect();
    if refused.is_empty() {
        CheckResult::ok(
            GROUP,
            CLASS_PARAMS,
            format!(
                "the controller serves all {} namespace(s) with jockey projects",
                f.namespaces.len()
            ),
        )
    } else {
        CheckResult::fail(
            GROUP,
            CLASS_PARAMS,
            refused.join("; "),
            "label those namespaces to match the IngressClassParams' namespaceSelector (or widen \
             the selector): `kubectl get ingressclassparams -o yaml`",
        )
    }
}

fn subnets(f: &ControllerFacts) -> CheckResult {
    let subnets = match &f.subnets {
        AwsRead::Read(s) => s,
        AwsRead::Skipped(why) => return CheckResult::skip(GROUP, SUBNETS, why.clone()),
        AwsRead::Failed(why) => {
            return CheckResult::fail(
                GROUP,
                SUBNETS,
                why.clone(),
                "check the AWS credentials and region; check needs ec2:DescribeSubnets",
            );
        }
    };
    let zones: BTreeSet<&str> = subnets.iter().map(|s| s.zone.as_str()).collect();
    let zone_list = zones.iter().copied().collect::<Vec<_>>().join(", ");
    if zones.len() >= 2 {
        CheckResult::ok(
            GROUP,
            SUBNETS,
            format!(
                "{} subnet(s) tagged {ELB_ROLE_TAG} in {} zones ({zone_list})",
                subnets.len(),
                zones.len()
            ),
        )
    } else {
        CheckResult::fail(
            GROUP,
            SUBNETS,
            format!(
                "subnets tagged {ELB_ROLE_TAG} span {} zone(s){}: an ALB needs two",
                zones.len(),
                if zone_list.is_empty() {
                    String::new()
                } else {
                    format!(" ({zone_list})")
                }
            ),
            format!(
                "tag a public subnet in another availability zone {ELB_ROLE_TAG}=1 \
                 (`aws ec2 create-tags --resources SUBNET --tags Key={ELB_ROLE_TAG},Value=1`)"
            ),
        )
    }
}

/// Whether a certificate name covers `host`: equal, or a one-label wildcard over it (as TLS
/// matches: `*.a.b` covers `x.a.b` and the wildcard `*.a.b` itself, not `a.b` nor `y.x.a.b`).
pub fn covers(name: &str, host: &str) -> bool {
    let (name, host) = (name.to_ascii_lowercase(), host.to_ascii_lowercase());
    if name == host {
        return true;
    }
    match (name.strip_prefix("*."), host.split_once('.')) {
        (Some(rest), Some((label, host_rest))) => {
            !label.is_empty() && label != "*" && rest == host_rest
        }
        _ => false,
    }
}

fn certificate(f: &ControllerFacts) -> CheckResult {
    let certificates = match &f.certificates {
        AwsRead::Read(c) => c,
        AwsRead::Skipped(why) => return CheckResult::skip(GROUP, CERTIFICATE, why.clone()),
        AwsRead::Failed(why) => {
            return CheckResult::fail(
                GROUP,
                CERTIFICATE,
                why.clone(),
                "check the AWS credentials and region; check needs acm:ListCertificates and \
                 acm:DescribeCertificate",
            );
        }
    };
    let issued: Vec<&Certificate> = certificates
        .iter()
        .filter(|c| c.status == "ISSUED" && c.not_after.is_none_or(|t| t > f.now))
        .collect();
    let uncovered: Vec<&String> = f
        .hosts
        .iter()
        .filter(|h| !issued.iter().any(|c| c.names.iter().any(|n| covers(n, h))))
        .collect();
    let hosts = f.hosts.iter().cloned().collect::<Vec<_>>().join(", ");
    if !uncovered.is_empty() {
        let seen: Vec<String> = certificates
            .iter()
            .map(|c| format!("{} ({}, {})", c.arn, c.status, c.names.join(" ")))
            .collect();
        return CheckResult::fail(
            GROUP,
            CERTIFICATE,
            format!(
                "no issued ACM certificate covers {}{}",
                uncovered
                    .iter()
                    .map(|h| h.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                if seen.is_empty() {
                    " (no certificate found)".to_string()
                } else {
                    format!("; found {}", seen.join("; "))
                }
            ),
            "request (and validate) an ACM certificate for those names and set \
             ALB_CERTIFICATE_ARN to it, or remove the extraHosts entries from the policy",
        );
    }
    // The certificates that serve these hosts: the soonest expiry among them counts.
    let used: Vec<&&Certificate> = issued
        .iter()
        .filter(|c| f.hosts.iter().any(|h| c.names.iter().any(|n| covers(n, h))))
        .collect();
    let soonest = used
        .iter()
        .filter_map(|c| c.not_after.map(|t| (t, c.arn.as_str())))
        .min();
    match soonest {
        Some((t, arn)) if days_left(t, f.now) < CERT_WARN_DAYS => CheckResult::warn(
            GROUP,
            CERTIFICATE,
            format!(
                "certificate {arn} expires in {} day(s)",
                days_left(t, f.now)
            ),
            "check ACM's renewal of it (DNS validation records still in place?) or replace it",
        ),
        Some((t, arn)) => CheckResult::ok(
            GROUP,
            CERTIFICATE,
            format!(
                "issued certificate(s) cover {hosts}; {arn} has {} days left",
                days_left(t, f.now)
            ),
        ),
        None => CheckResult::ok(
            GROUP,
            CERTIFICATE,
            format!("issued certificate(s) cover {hosts}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Outcome;

    const DAY: i64 = 86_400;
    const NOW: i64 = 1_800_000_000;

    fn class(controller: &str, params: Option<&str>) -> IngressClass {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "alb"},
            "spec": {
                "controller": controller,
                "parameters": params.map(|p| serde_json::json!({
                    "apiGroup": "elbv2.k8s.aws", "kind": "IngressClassParams", "name": p
                }))
            }
        }))
        .unwrap()
    }

    fn params(label: (&str, &str)) -> ClassParams {
        serde_json::from_value(serde_json::json!({
            "spec": {"namespaceSelector": {"matchLabels": {label.0: label.1}}}
        }))
        .unwrap()
    }

    fn facts() -> ControllerFacts {
        ControllerFacts {
            selector: "app.kubernetes.io/name=aws-load-balancer-controller".into(),
            deployments: vec![(
                "kube-system/aws-load-balancer-controller".into(),
                Replicas {
                    desired: 2,
                    ready: 2,
                    available: 2,
                },
            )],
            class: Some(class(address::ALB_CONTROLLER, Some("alb"))),
            params: Some(params(("alb", "yes"))),
            namespaces: BTreeMap::from([(
                "team-a".to_string(),
                BTreeMap::from([("alb".to_string(), "yes".to_string())]),
            )]),
            subnets: AwsRead::Read(vec![
                Subnet {
                    id: "subnet-a".into(),
                    zone: "us-east-1a".into(),
                },
                Subnet {
                    id: "subnet-b".into(),
                    zone: "us-east-1b".into(),
                },
            ]),
            certificates: AwsRead::Read(vec![Certificate {
                arn: "arn:c1".into(),
                status: "ISSUED".into(),
                names: vec!["deploy.example.com".into(), "*.deploy.example.com".into()],
                not_after: Some(NOW + 90 * DAY),
            }]),
            hosts: BTreeSet::from(["*.deploy.example.com".to_string()]),
            now: NOW,
        }
    }

    fn find(f: &ControllerFacts, id: &str) -> CheckResult {
        checks(f).into_iter().find(|r| r.id == id).unwrap()
    }

    #[test]
    fn a_healthy_controller_passes() {
        for r in checks(&facts()) {
            assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
        }
        assert!(find(&facts(), CERTIFICATE).message.contains("90 days left"));
    }

    #[test]
    fn the_controller_must_have_an_available_deployment() {
        let mut f = facts();
        f.deployments.clear();
        let r = find(&f, READY);
        assert_eq!(r.outcome, Outcome::Fail);
        assert!(r.hint.unwrap().contains("--alb-controller-selector"));
        f.deployments = vec![(
            "kube-system/c".into(),
            Replicas {
                desired: 1,
                ready: 0,
                available: 0,
            },
        )];
        assert_eq!(find(&f, READY).outcome, Outcome::Fail);
    }

    #[test]
    fn the_class_must_exist_and_belong_to_the_controller() {
        let mut f = facts();
        f.class = Some(class("example.com/other", None));
        let r = find(&f, CLASS);
        assert_eq!(r.outcome, Outcome::Fail);
        assert!(r.message.contains("example.com/other"));
        f.class = None;
        assert_eq!(find(&f, CLASS).outcome, Outcome::Fail);
        assert_eq!(find(&f, CLASS_PARAMS).outcome, Outcome::Skip);
    }

    #[test]
    fn the_params_selector_must_cover_every_jockey_namespace() {
        let mut f = facts();
        f.namespaces.insert("team-b".into(), BTreeMap::new());
        let r = find(&f, CLASS_PARAMS);
        assert_eq!(r.outcome, Outcome::Fail);
        assert!(
            r.message.contains("team-b") && !r.message.contains("team-a"),
            "{}",
            r.message
        );
        // The class names params that do not exist: nothing is served.
        f.params = None;
        assert_eq!(find(&f, CLASS_PARAMS).outcome, Outcome::Fail);
        // No params at all on the class: every namespace is served.
        f.class = Some(class(address::ALB_CONTROLLER, None));
        assert_eq!(find(&f, CLASS_PARAMS).outcome, Outcome::Ok);
        f.namespaces.clear();
        assert_eq!(find(&f, CLASS_PARAMS).outcome, Outcome::Ok);
    }

    #[test]
    fn subnets_must_span_two_zones() {
        let mut f = facts();
        f.subnets = AwsRead::Read(vec![
            Subnet {
                id: "a".into(),
                zone: "z1".into(),
            },
            Subnet {
                id: "b".into(),
                zone: "z1".into(),
            },
        ]);
        let r = find(&f, SUBNETS);
        assert_eq!(r.outcome, Outcome::Fail);
        assert!(r.message.contains("1 zone(s) (z1)"), "{}", r.message);
        assert!(r.hint.unwrap().contains(ELB_ROLE_TAG));
        f.subnets = AwsRead::Read(vec![]);
        assert_eq!(find(&f, SUBNETS).outcome, Outcome::Fail);
        f.subnets = AwsRead::Skipped("no AWS credentials".into());
        assert_eq!(find(&f, SUBNETS).outcome, Outcome::Skip);
        f.subnets = AwsRead::Failed("AccessDenied".into());
        assert_eq!(find(&f, SUBNETS).outcome, Outcome::Fail);
    }

    #[test]
    fn the_certificate_must_be_issued_cover_every_host_and_last() {
        let mut f = facts();
        f.hosts.insert("www.shop.example".into());
        let r = find(&f, CERTIFICATE);
        assert_eq!(r.outcome, Outcome::Fail);
        assert!(
            r.message.contains("covers www.shop.example") && r.message.contains("arn:c1"),
            "{}",
            r.message
        );
        let mut f = facts();
        if let AwsRead::Read(c) = &mut f.certificates {
            c[0].status = "PENDING_VALIDATION".into();
        }
        assert_eq!(find(&f, CERTIFICATE).outcome, Outcome::Fail);
        let mut f = facts();
        f.now = NOW + 70 * DAY;
        let r = find(&f, CERTIFICATE);
        assert_eq!(r.outcome, Outcome::Warn);
        assert!(r.message.contains("20 day(s)"), "{}", r.message);
        f.now = NOW + 91 * DAY;
        assert_eq!(find(&f, CERTIFICATE).outcome, Outcome::Fail);
        f.certificates = AwsRead::Skipped("no credentials".into());
        assert_eq!(find(&f, CERTIFICATE).outcome, Outcome::Skip);
    }

    #[test]
    fn wildcards_cover_one_label() {
        assert!(covers("*.a.b", "x.a.b"));
        assert!(covers("*.A.b", "*.a.b"));
        assert!(covers("x.a.b", "X.a.b"));
        assert!(!covers("*.a.b", "a.b"));
        assert!(!covers("*.a.b", "y.x.a.b"));
        assert!(!covers("x.a.b", "*.a.b"));
    }
}
