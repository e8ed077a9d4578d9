//! `list-alb-ingresses`: one row per Ingress of the shared groups, with why it is not ready.

use super::health::{self, Evidence, Scope};
use super::model::*;
use k8s_openapi::api::core::v1::Event;
use k8s_openapi::api::networking::v1::Ingress;
use serde::Serialize;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct IngressRow {
    pub namespace: String,
    pub name: String,
    pub project: Option<String>,
    pub hosts: Vec<String>,
    pub group: Option<String>,
    pub address: Option<String>,
    /// Has an ALB address and no current controller failure on it ([`health::failures`]).
    pub ready: bool,
    pub class: Option<String>,
    /// Why it is not ready, when it is not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// `scope`: the namespaces `ingresses` and `events` were read from.
pub fn ingress_rows(
    ingresses: &[Ingress],
    events: &[Event],
    base: &str,
    scope: &Scope,
) -> Vec<IngressRow> {
    let ev = Evidence {
        ingresses,
        scope,
        events,
        elb: None,
    };
    let failures = health::failures(&ev);
    let mut rows: Vec<IngressRow> = ingresses
        .iter()
        .filter(|i| in_shared_groups(i, base))
        .map(|ing| {
            let (ns, n) = (namespace(ing), name(ing));
            let address = addresses(ing).into_iter().next();
            let failure = failures
                .iter()
                .find(|f| f.current && f.namespace == ns && f.ingress == n);
            let problem = if !is_alb_ingress(ing) {
                Some(
                    "ingressClassName is not alb: the AWS Load Balancer Controller ignores it"
                        .into(),
                )
            } else if let Some(f) = failure {
                Some(format!("{}: {}", f.reason, f.message))
            } else if address.is_none() {
                Some("no ALB address yet".into())
            } else {
                None
            };
            IngressRow {
                namespace: ns.to_string(),
                name: n.to_string(),
                project: project_of(ing).map(str::to_string),
                hosts: hosts(ing),
                group: group_of(ing).map(str::to_string),
                ready: problem.is_none(),
                address,
                class: ing
                    .spec
                    .as_ref()
                    .and_then(|s| s.ingress_class_name.clone())
                    .or_else(|| annotation(ing, ANNOTATION_INGRESS_CLASS).map(str::to_string)),
                problem,
            }
        })
        .collect();
    rows.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    rows
}

#[cfg(test)]
#[path = "rows_tests.rs"]
mod tests;
