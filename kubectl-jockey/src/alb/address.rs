//! When a deployed project is served by the shared ALB: which controller serves its Ingress,
//! and what the AWS Load Balancer Controller's events and the Ingress's status say after a
//! deploy. Pure: the watching is in `crate::rollout`.
//!
//! The controller reconciles a whole IngressGroup at once and records every outcome
//! (`SuccessfullyReconciled`, `FailedBuildModel`, `FailedDeployModel`) on EVERY member of the
//! group (`controllers/ingress/group_controller.go`, `recordIngressGroupEvent`), so the events of
//! the project's own Ingress are the group's: another project's broken Ingress shows up there.
//! An outcome reported after the deploy's write is its verdict; the state before is the one
//! judgement of [`super::health`], since the last event on an Ingress is often not the last
//! outcome (the recorder drops events past its burst).

use super::health::{self, Failing, Health};
use super::model as report;
use k8s_openapi::api::core::v1::Event;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::core::{Selector, SelectorExt};
use serde::Deserialize;
use std::collections::BTreeMap;

/// `spec.controller` of an IngressClass the AWS Load Balancer Controller serves.
pub const ALB_CONTROLLER: &str = "ingress.k8s.aws/alb";
/// The controller's own parameters object for an IngressClass.
pub const PARAMS_GROUP: &str = "elbv2.k8s.aws";
pub const PARAMS_VERSION: &str = "v1beta1";
pub const PARAMS_KIND: &str = "IngressClassParams";
const DEFAULT_CLASS_ANNOTATION: &str = "ingressclass.kubernetes.io/is-default-class";

/// The part of an `IngressClassParams` that decides whether it applies to a namespace.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClassParams {
    #[serde(default)]
    pub spec: ClassParamsSpec,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClassParamsSpec {
    pub namespace_selector: Option<LabelSelector>,
}

/// Whether an AWS Load Balancer Controller will give the Ingress an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Served {
    Yes,
    /// No controller of class `alb` takes it; why, for the user.
    No(String),
}

/// The IngressClass the controller uses for `ing`: `spec.ingressClassName`, else the one class
/// marked default. `Ok(None)`: no class (and no default). `Err(name)`: the named class does not
/// exist.
pub fn class_of<'a>(
    ing: &Ingress,
    classes: &'a [IngressClass],
) -> Result<Option<&'a IngressClass>, String> {
    let named = ing
        .spec
        .as_ref()
        .and_then(|s| s.ingress_class_name.as_deref());
    let Some(name) = named else {
        let defaults: Vec<&IngressClass> = classes
            .iter()
            .filter(|c| {
                c.metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(DEFAULT_CLASS_ANNOTATION))
                    .is_some_and(|v| v == "true")
            })
            .collect();
        return Ok((defaults.len() == 1).then(|| defaults[0]));
    };
    classes
        .iter()
        .find(|c| c.metadata.name.as_deref() == Some(name))
        .map(Some)
        .ok_or_else(|| name.to_string())
}

/// The name of the `IngressClassParams` a class refers to, when it refers to one.
pub fn params_name(class: &IngressClass) -> Option<&str> {
    let p = class.spec.as_ref()?.parameters.as_ref()?;
    (p.api_group.as_deref() == Some(PARAMS_GROUP) && p.kind == PARAMS_KIND).then_some(&*p.name)
}

/// Whether the AWS Load Balancer Controller serves `ing`, decided as it decides
/// (`pkg/ingress/group_loader.go` classifyIngress, `pkg/ingress/class_loader.go`): the legacy
/// class annotation first, then the IngressClass, its controller, and the namespaceSelector of
/// its IngressClassParams. `params` is the class's `IngressClassParams` when it names one that
/// exists; `namespace_labels` are the labels of the Ingress's namespace.
pub fn served(
    ing: &Ingress,
    classes: &[IngressClass],
    params: Option<&ClassParams>,
    namespace_labels: &BTreeMap<String, String>,
) -> Served {
    let ns = report::namespace(ing);
    let who = format!("Ingress {ns}/{}", report::name(ing));
    if let Some(class) = ing
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(report::ANNOTATION_INGRESS_CLASS))
    {
        return if class == report::ALB_CLASS {
            Served::Yes
        } else {
            Served::No(format!(
                "{who} has {}: {class:?}, not \"alb\": the AWS Load Balancer Controller ignores it",
                report::ANNOTATION_INGRESS_CLASS
            ))
        };
    }
    let class = match class_of(ing, classes) {
        Ok(Some(c)) => c,
        Ok(None) => {
            return Served::No(format!(
                "{who} names no IngressClass and the cluster has no single default one"
            ));
        }
        Err(name) => {
            return Served::No(format!(
                "IngressClass {name} does not exist: no AWS Load Balancer Controller is \
                 installed for it (install the controller, which creates it)"
            ));
        }
    };
    let class_name = class.metadata.name.as_deref().unwrap_or_default();
    let controller = class.spec.as_ref().and_then(|s| s.controller.as_deref());
    if controller != Some(ALB_CONTROLLER) {
        return Served::No(format!(
            "IngressClass {class_name} belongs to controller {}, not the AWS Load Balancer \
             Controller ({ALB_CONTROLLER})",
            controller.unwrap_or("(none)")
        ));
    }
    let Some(params_name) = params_name(class) else {
        return Served::Yes;
    };
    let Some(params) = params else {
        return Served::No(format!(
            "IngressClass {class_name} refers to {PARAMS_KIND} {params_name}, which does not \
             exist: the controller ignores its Ingresses"
        ));
    };
    let Some(selector) = &params.spec.namespace_selector else {
        return Served::Yes;
    };
    match Selector::try_from(selector.clone()) {
        Ok(s) if s.matches(namespace_labels) => Served::Yes,
        Ok(s) => Served::No(format!(
            "{PARAMS_KIND} {params_name} of IngressClass {class_name} serves only namespaces \
             matching {s}, and namespace {ns} does not: the controller ignores {who} (label the \
             namespace, or ask the cluster admin)"
        )),
        Err(e) => Served::No(format!(
            "{PARAMS_KIND} {params_name} has an invalid namespaceSelector ({e}): the controller \
             serves no Ingress of class {class_name}"
        )),
    }
}

/// What the deploy knows while it waits.
#[derive(Debug, Clone, Copy)]
pub struct Watched<'a> {
    pub ingress: Option<&'a Ingress>,
    /// The group's state as the deploy began waiting ([`health::judge`]).
    pub before: &'a Health,
    /// Events created or updated since the deploy's write, in the order the API server
    /// reported them.
    pub since: &'a [Event],
    /// The deploy created the Ingress or its Service, or changed their annotations or spec:
    /// the controller reconciles the group again (it ignores other changes).
    pub changed: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// The ALB serves the Ingress at this address.
    Serving(String),
    /// Still waiting; what for.
    Waiting(String),
    /// The controller cannot reconcile the group.
    Failing(Failing),
}

fn failing(e: &Event, ing: Option<&Ingress>) -> Failing {
    let message = e.message.clone().unwrap_or_default();
    let group = ing.and_then(report::group_of).unwrap_or_default();
    Failing {
        reason: e.reason.clone().unwrap_or_default(),
        fix: health::fix_for(&message, group),
        message,
        member: health::event_ingress(e)
            .map(|(ns, n)| format!("{ns}/{n}"))
            .unwrap_or_default(),
        at: health::event_time(e)
            .map(|t| t.to_string())
            .unwrap_or_default(),
    }
}

/// Judges the wait. A reconcile outcome reported after the write decides (the latest one:
/// the API server's order, no clocks compared). Without one: a deploy that changed what the
/// controller reads waits for it; one that changed nothing is judged by the group's state before
/// (failing only on a current failure).
pub fn judge(w: &Watched<'_>) -> Verdict {
    let address = w
        .ingress
        .and_then(|i| report::addresses(i).into_iter().next());
    let latest = w
        .since
        .iter()
        .rev()
        .find_map(|e| health::outcome(e).map(|ok| (ok, e)));
    match latest {
        Some((false, e)) => return Verdict::Failing(failing(e, w.ingress)),
        Some((true, _)) => {
            return match address {
                Some(a) => Verdict::Serving(a),
                None => {
                    Verdict::Waiting("reconciled; waiting for the address in its status".into())
                }
            };
        }
        None => {}
    }
    if w.ingress.is_none() {
        return Verdict::Waiting("waiting for the Ingress".into());
    }
    if w.changed {
        return Verdict::Waiting(
            "waiting for the AWS Load Balancer Controller to reconcile the group".into(),
        );
    }
    if let Health::Failing(f) = w.before {
        return Verdict::Failing(f.clone());
    }
    match address {
        Some(a) => Verdict::Serving(a),
        None => Verdict::Waiting("waiting for the ALB address".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ing(class: Option<&str>, annotations: serde_json::Value, address: Option<&str>) -> Ingress {
        let mut v = json!({
            "metadata": {"name": "ing-p", "namespace": "team", "annotations": annotations},
            "spec": {"rules": [{"host": "p.example.com"}]},
        });
        if let Some(c) = class {
            v["spec"]["ingressClassName"] = json!(c);
        }
        if let Some(a) = address {
            v["status"] = json!({"loadBalancer": {"ingress": [{"hostname": a}]}});
        }
        serde_json::from_value(v).unwrap()
    }

    fn class(name: &str, controller: &str, params: Option<&str>, default: bool) -> IngressClass {
        let mut v = json!({"metadata": {"name": name}, "spec": {"controller": controller}});
        if default {
            v["metadata"]["annotations"] = json!({DEFAULT_CLASS_ANNOTATION: "true"});
        }
        if let Some(p) = params {
            v["spec"]["parameters"] =
                json!({"apiGroup": PARAMS_GROUP, "kind": PARAMS_KIND, "name": p});
        }
        serde_json::from_value(v).unwrap()
    }

    fn params(selector: serde_json::Value) -> ClassParams {
        serde_json::from_value(json!({"spec": {"namespaceSelector": selector}})).unwrap()
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn event(reason: &str, message: &str, at: &str) -> Event {
        serde_json::from_value(json!({
            "metadata": {"name": format!("ing-p.{reason}{at}"), "namespace": "team"},
            "involvedObject": {"kind": "Ingress", "name": "ing-p", "namespace": "team"},
            "reason": reason, "message": message, "lastTimestamp": at,
        }))
        .unwrap()
    }

    #[test]
    fn served_follows_the_controllers_class_rules() {
        let alb = class("alb", ALB_CONTROLLER, None, false);
        let none = BTreeMap::new();
        assert_eq!(
            served(
                &ing(Some("alb"), json!({}), None),
                std::slice::from_ref(&alb),
                None,
                &none
            ),
            Served::Yes
        );
        // The legacy annotation wins over the field, as in the controller.
        let legacy = ing(
            Some("nginx"),
            json!({"kubernetes.io/ingress.class": "alb"}),
            None,
        );
        assert_eq!(served(&legacy, &[], None, &none), Served::Yes);
        let other = ing(
            Some("alb"),
            json!({"kubernetes.io/ingress.class": "nginx"}),
            None,
        );
        assert!(
            matches!(served(&other, std::slice::from_ref(&alb), None, &none), Served::No(m) if m.contains("nginx"))
        );
        // A missing class: nothing serves it.
        let Served::No(m) = served(&ing(Some("alb"), json!({}), None), &[], None, &none) else {
            panic!()
        };
        assert!(m.contains("IngressClass alb does not exist"), "{m}");
        // A class of another controller.
        let nginx = class("alb", "k8s.io/ingress-nginx", None, false);
        assert!(
            matches!(served(&ing(Some("alb"), json!({}), None), &[nginx], None, &none), Served::No(m) if m.contains("k8s.io/ingress-nginx"))
        );
        // No class: the single default class decides; two defaults or none: not served.
        let default_alb = class("alb", ALB_CONTROLLER, None, true);
        assert_eq!(
            served(
                &ing(None, json!({}), None),
                std::slice::from_ref(&default_alb),
                None,
                &none
            ),
            Served::Yes
        );
        let default_b = class("b", ALB_CONTROLLER, None, true);
        assert!(matches!(
            served(
                &ing(None, json!({}), None),
                &[default_alb, default_b],
                None,
                &none
            ),
            Served::No(_)
        ));
    }

    #[test]
    fn served_applies_the_namespace_selector_of_the_class_params() {
        let alb = class("alb", ALB_CONTROLLER, Some("alb"), false);
        let i = ing(Some("alb"), json!({}), None);
        let p = params(json!({"matchLabels": {"alb": "on"}}));
        assert_eq!(
            served(
                &i,
                std::slice::from_ref(&alb),
                Some(&p),
                &labels(&[("alb", "on")])
            ),
            Served::Yes
        );
        let Served::No(m) = served(
            &i,
            std::slice::from_ref(&alb),
            Some(&p),
            &labels(&[("alb", "off")]),
        ) else {
            panic!()
        };
        assert!(m.contains("namespace team does not"), "{m}");
        let exprs = params(
            json!({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["legacy"]}]}),
        );
        assert_eq!(
            served(&i, std::slice::from_ref(&alb), Some(&exprs), &none()),
            Served::Yes
        );
        assert!(matches!(
            served(
                &i,
                std::slice::from_ref(&alb),
                Some(&exprs),
                &labels(&[("tier", "legacy")])
            ),
            Served::No(_)
        ));
        // Params without a selector serve every namespace; missing params serve none.
        assert_eq!(
            served(
                &i,
                std::slice::from_ref(&alb),
                Some(&ClassParams::default()),
                &none()
            ),
            Served::Yes
        );
        assert!(
            matches!(served(&i, &[alb], None, &none()), Served::No(m) if m.contains("does not exist"))
        );
    }

    fn none() -> BTreeMap<String, String> {
        BTreeMap::new()
    }

    const ADDR: &str = "k8s-alb-1.elb.amazonaws.com";

    fn healthy() -> Health {
        Health::Healthy { why: "ok".into() }
    }

    fn group_failing() -> Health {
        Health::Failing(Failing {
            reason: "FailedBuildModel".into(),
            message: "Failed build model due to no certificate found for host: p.example.com"
                .into(),
            member: "team/ing-p".into(),
            at: "2026-01-01T00:01:00Z".into(),
            fix: "request one".into(),
        })
    }

    fn watched<'a>(
        ingress: Option<&'a Ingress>,
        before: &'a Health,
        since: &'a [Event],
        changed: bool,
    ) -> Watched<'a> {
        Watched {
            ingress,
            before,
            since,
            changed,
        }
    }

    #[test]
    fn a_failure_reported_after_the_write_fails_the_wait_even_with_an_old_address() {
        let i = ing(Some("alb"), json!({}), Some(ADDR));
        let since = [event(
            "FailedBuildModel",
            "Failed build model due to conflicting tag deployment: a | b",
            "2026-01-01T00:00:05Z",
        )];
        let Verdict::Failing(f) = judge(&watched(Some(&i), &healthy(), &since, true)) else {
            panic!()
        };
        assert_eq!(
            (f.reason.as_str(), f.message.as_str(), f.member.as_str()),
            (
                "FailedBuildModel",
                "Failed build model due to conflicting tag deployment: a | b",
                "team/ing-p"
            )
        );
        assert!(f.fix.contains("disagree"), "{f:?}");
    }

    #[test]
    fn the_latest_outcome_after_the_write_decides_by_arrival_not_clock() {
        let i = ing(Some("alb"), json!({}), Some(ADDR));
        // A success that arrived after a failure wins even if its clock reads earlier.
        let since = [
            event(
                "FailedDeployModel",
                "Failed deploy model due to throttling",
                "2026-01-01T00:00:09Z",
            ),
            event(
                "SuccessfullyReconciled",
                "Successfully reconciled",
                "2026-01-01T00:00:08Z",
            ),
        ];
        let before = group_failing();
        assert_eq!(
            judge(&watched(Some(&i), &before, &since, true)),
            Verdict::Serving(ADDR.into())
        );
        // Success without an address yet: keep waiting.
        let bare = ing(Some("alb"), json!({}), None);
        assert!(matches!(
            judge(&watched(Some(&bare), &before, &since, true)),
            Verdict::Waiting(_)
        ));
    }

    #[test]
    fn a_change_waits_for_the_reconcile_even_when_an_address_is_there() {
        let i = ing(Some("alb"), json!({}), Some(ADDR));
        assert!(matches!(
            judge(&watched(Some(&i), &healthy(), &[], true)),
            Verdict::Waiting(m) if m.contains("reconcile")
        ));
        // Unchanged: the address and a group not failing are enough.
        assert_eq!(
            judge(&watched(Some(&i), &healthy(), &[], false)),
            Verdict::Serving(ADDR.into())
        );
    }

    #[test]
    fn an_unchanged_deploy_reports_the_groups_current_failure_only() {
        let i = ing(Some("alb"), json!({}), Some(ADDR));
        let before = group_failing();
        assert_eq!(
            judge(&watched(Some(&i), &before, &[], false)),
            Verdict::Failing(match group_failing() {
                Health::Failing(f) => f,
                _ => unreachable!(),
            })
        );
        // A group whose last failure is not current (its Ingress is gone, say) and whose
        // success was never recorded: unknown, so the address decides.
        let unknown = Health::Unknown {
            why: "its last failure is not current".into(),
        };
        assert_eq!(
            judge(&watched(Some(&i), &unknown, &[], false)),
            Verdict::Serving(ADDR.into())
        );
        // No Ingress yet, or no address yet: waiting.
        assert!(matches!(
            judge(&watched(None, &healthy(), &[], false)),
            Verdict::Waiting(_)
        ));
        let bare = ing(Some("alb"), json!({}), None);
        assert!(matches!(
            judge(&watched(Some(&bare), &unknown, &[], false)),
            Verdict::Waiting(_)
        ));
    }
}
