//! How jockey is registered with the API server, rendered in one place so that `kubectl jockey
//! install`, `manifests/base`, the local webhook `make demo` runs and the end-to-end tests all
//! enforce the same boundary:
//!
//! - a MutatingWebhookConfiguration and a ValidatingWebhookConfiguration for labelled
//!   Deployments, Services and Ingresses (the validating one records claims, so it is
//!   `sideEffects: NoneOnDryRun`);
//! - a ValidatingAdmissionPolicy (CEL, evaluated inside the API server: no network hop, no
//!   webhook outage can open it) for what the webhooks never see, because their object selector
//!   is the project label: an Ingress naming a shared ALB group (or holding its finalizer, or a
//!   host of the deployment domain, or the name a shard's ALB will take) must carry the project
//!   label and sit in a namespace the webhook answers; a Service there may carry ALB annotations
//!   only when labelled (the controller reads a backend Service's annotations).
//!
//! The policy reads the shared group, the allowed groups and the domain from its parameter, the
//! webhook's own ConfigMap (`ALB_SHARED_GROUP_NAME`, `ALB_ALLOWED_GROUPS`, `DEPLOYMENT_DOMAIN`,
//! the same keys the webhook's environment comes from): one source, so that changing the
//! configuration cannot leave the real groups open.

use crate::config::{DEFAULT_ALB_SHARED_GROUP_NAME, DEFAULT_DEPLOYMENT_DOMAIN};
use serde_json::{Value, json};

pub const GROUP_ANNOTATION: &str = "alb.ingress.kubernetes.io/group.name";
/// The finalizer the controller puts on every Ingress of an explicit group, followed by the
/// group's name (`pkg/ingress/finalizer.go`): whatever holds it is loaded into that group.
pub const GROUP_FINALIZER: &str = "group.ingress.k8s.aws/";
const PROJECT_LABEL: &str = crate::names::LABEL_PROJECT;

/// Where the API server reaches the webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// `https://host:port` (`/mutate` and `/validate` are appended).
    Url(String),
    Service {
        namespace: String,
        name: String,
        port: i32,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Registration {
    /// Name of both webhook configurations; the policy and its binding are `<name>-shared-alb`.
    pub name: String,
    pub endpoint: Endpoint,
    /// base64 of the PEM CA bundle; empty when a CA injector fills it (cert-manager).
    pub ca_bundle: String,
    /// The webhooks' namespaceSelector (a LabelSelector).
    pub namespace_selector: Value,
    /// `Fail` or `Ignore`.
    pub failure_policy: String,
    pub timeout_seconds: i32,
    /// `ALB_SHARED_GROUP_NAME`: it and its shards `<name>-2`, `<name>-3`, ... are shared.
    pub shared_group: String,
    /// Further groups jockey projects may join (the policy's `allowedGroups`), shared too.
    pub other_groups: Vec<String>,
    /// Namespaces the admission policy applies in (a LabelSelector); `None`: all of them. Only
    /// tests that share a cluster narrow it.
    pub policy_scope: Option<Value>,
    /// The deployment domain (`DEPLOYMENT_DOMAIN`).
    pub deployment_domain: String,
    /// The ConfigMap the admission policy reads its settings from: `(namespace, name)`.
    pub params: (String, String),
    /// Whether [`Registration::objects`] renders that ConfigMap too (from `shared_group`,
    /// `other_groups` and `deployment_domain`): no where the webhook's own configuration
    /// ConfigMap is the parameter (`install`, `manifests/base`), yes where the webhook runs
    /// beside the cluster (`make demo`, the tests).
    pub render_params: bool,
}

impl Registration {
    /// Every object, in apply order.
    pub fn objects(&self) -> Result<Vec<Value>, String> {
        let mut objects = Vec::new();
        if self.render_params {
            objects.push(self.params_configmap());
        }
        objects.extend([
            self.mutating(),
            self.validating(),
            self.shared_group_policy()?,
            self.shared_group_binding(),
        ]);
        Ok(objects)
    }

    /// The policy's parameter, with the keys of the webhook's environment.
    pub fn params_configmap(&self) -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": { "name": self.params.1, "namespace": self.params.0 },
            "data": {
                "ALB_SHARED_GROUP_NAME": self.shared_group,
                "ALB_ALLOWED_GROUPS": self.other_groups.join(","),
                "DEPLOYMENT_DOMAIN": self.deployment_domain,
            }
        })
    }

    fn client_config(&self, path: &str) -> Value {
        let mut c = match &self.endpoint {
            Endpoint::Url(base) => {
                json!({ "url": format!("{}/{path}", base.trim_end_matches('/')) })
            }
            Endpoint::Service {
                namespace,
                name,
                port,
            } => {
                json!({ "service": { "name": name, "namespace": namespace, "path": format!("/{path}"), "port": port } })
            }
        };
        if !self.ca_bundle.is_empty() {
            c["caBundle"] = json!(self.ca_bundle);
        }
        c
    }

    fn rules() -> Value {
        json!([
            { "apiGroups": ["apps"], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"], "resources": ["deployments"], "scope": "Namespaced" },
            { "apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"], "resources": ["services"], "scope": "Namespaced" },
            { "apiGroups": ["networking.k8s.io"], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"], "resources": ["ingresses"], "scope": "Namespaced" },
        ])
    }

    fn webhook(&self, path: &str, side_effects: &str) -> Value {
        json!({
            "name": format!("{path}.jockey.agentops.ai"),
            "clientConfig": self.client_config(path),
            "rules": Self::rules(),
            "objectSelector": { "matchExpressions": [{ "key": PROJECT_LABEL, "operator": "Exists" }] },
            "namespaceSelector": self.namespace_selector,
            "matchPolicy": "Equivalent",
            "sideEffects": side_effects,
            "admissionReviewVersions": ["v1"],
            "timeoutSeconds": self.timeout_seconds,
            "failurePolicy": self.failure_policy,
        })
    }

    pub fn mutating(&self) -> Value {
        let mut hook = self.webhook("mutate", "None");
        // Defaulting is idempotent, so a second call after another webhook's change settles.
        hook["reinvocationPolicy"] = json!("IfNeeded");
        json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "MutatingWebhookConfiguration",
            "metadata": { "name": self.name },
            "webhooks": [hook],
        })
    }

    pub fn validating(&self) -> Value {
        json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingWebhookConfiguration",
            "metadata": { "name": self.name },
            // Claims (Leases) are written on admission, never on a dry run.
            "webhooks": [self.webhook("validate", "NoneOnDryRun")],
        })
    }

    pub fn policy_name(&self) -> String {
        format!("{}-shared-alb", self.name)
    }

    pub fn shared_group_policy(&self) -> Result<Value, String> {
        let in_scope = selector_cel(&self.namespace_selector, "variables.nsLabels")?;
        let setting = |key: &str, default: &str| {
            format!(
                "has(params.data) && {k} in params.data && params.data[{k}] != '' ? params.data[{k}] : {d}",
                k = cel_string(key),
                d = cel_string(default)
            )
        };
        let kind = |k: &str| format!("request.kind.kind != {}", cel_string(k));
        let who = "object.kind + ' ' + object.metadata.namespace + '/' + (has(object.metadata.name) && object.metadata.name != '' ? object.metadata.name : object.metadata.generateName + '*')";
        let not_in_domain =
            |h: &str| format!("!({h} == variables.domain || {h}.endsWith('.' + variables.domain))");
        let annotation = |key: &str| {
            format!(
                "(has(object.metadata.annotations) && {0} in object.metadata.annotations ? object.metadata.annotations[{0}] : '')",
                cel_string(key)
            )
        };
        Ok(json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicy",
            "metadata": { "name": self.policy_name() },
            "spec": {
                "failurePolicy": "Fail",
                "paramKind": { "apiVersion": "v1", "kind": "ConfigMap" },
                "matchConstraints": {
                    "resourceRules": [
                        {
                            "apiGroups": ["networking.k8s.io"], "apiVersions": ["v1"],
                            "operations": ["CREATE", "UPDATE"], "resources": ["ingresses"]
                        },
                        {
                            "apiGroups": [""], "apiVersions": ["v1"],
                            "operations": ["CREATE", "UPDATE"], "resources": ["services"]
                        }
                    ]
                },
                // Of Services, only those carrying ALB annotations are the policy's business; the
                // rest never reach it (so, were its parameter missing, ordinary Services are not
                // refused with everything else).
                "matchConditions": [{
                    "name": "ingresses-and-alb-services",
                    "expression": "request.kind.kind != 'Service' || (has(object.metadata.annotations) && object.metadata.annotations.exists(k, k.startsWith('alb.ingress.kubernetes.io/')))",
                }],
                "variables": [
                    { "name": "sharedName", "expression": setting("ALB_SHARED_GROUP_NAME", DEFAULT_ALB_SHARED_GROUP_NAME) },
                    { "name": "allowed", "expression": format!(
                        "({}).split(',').map(g, g.trim()).filter(g, g != '')",
                        setting("ALB_ALLOWED_GROUPS", "")) },
                    { "name": "domain", "expression": setting("DEPLOYMENT_DOMAIN", DEFAULT_DEPLOYMENT_DOMAIN) },
                    { "name": "group", "expression": annotation(GROUP_ANNOTATION) },
                    { "name": "shared", "expression": shared_cel("variables.group") },
                    { "name": "labelled", "expression": format!(
                        "has(object.metadata.labels) && {} in object.metadata.labels", cel_string(PROJECT_LABEL)) },
                    { "name": "nsLabels", "expression":
                        "has(namespaceObject.metadata.labels) ? namespaceObject.metadata.labels : {'kubernetes.io/metadata.name': namespaceObject.metadata.name}" },
                    { "name": "inScope", "expression": in_scope },
                    // The name the controller gives a shard's ALB starts with this (k8s- and the
                    // first 17 alphanumerics of the group's name: model_build_load_balancer.go:128-131).
                    { "name": "lbPrefix", "expression":
                        "'k8s-' + (size(variables.sharedName.replace('-', '').replace('.', '')) > 17 ? variables.sharedName.replace('-', '').replace('.', '').substring(0, 17) : variables.sharedName.replace('-', '').replace('.', ''))" },
                ],
                "validations": [
                    {
                        "expression": format!("{} || !variables.shared || variables.labelled", kind("Ingress")),
                        "messageExpression": format!(
                            "{who} + ' names the shared ALB group ' + variables.group + ' but has no {PROJECT_LABEL} label, so the jockey webhook never sees it (rule: every Ingress of a shared ALB group passes the jockey policy); fix: remove the annotation {GROUP_ANNOTATION}, or deploy the project with kubectl jockey deploy'"),
                        "reason": "Forbidden",
                    },
                    {
                        "expression": format!("{} || !variables.shared || variables.inScope", kind("Ingress")),
                        "messageExpression": format!(
                            "{who} + ' names the shared ALB group ' + variables.group + ' in namespace ' + object.metadata.namespace + ', which the jockey webhook does not answer (rule: every Ingress of a shared ALB group passes the jockey policy); fix: deploy it in a namespace the jockey webhook answers'"),
                        "reason": "Forbidden",
                    },
                    {
                        "expression": format!(
                            "{} || (variables.labelled && variables.inScope) || ((!has(object.spec.rules) || object.spec.rules.all(r, !has(r.host) || {})) && (!has(object.spec.tls) || object.spec.tls.all(t, !has(t.hosts) || t.hosts.all(h, {}))))",
                            kind("Ingress"), not_in_domain("r.host"), not_in_domain("h")),
                        "messageExpression": format!(
                            "{who} + ' serves a host under ' + variables.domain + ', whose hosts are jockey projects\\' (rule: hosts of the deployment domain belong to jockey projects, each checked by the jockey webhook); fix: use a host outside ' + variables.domain + ', or deploy the project with kubectl jockey deploy'"),
                        "reason": "Forbidden",
                    },
                    {
                        "expression": format!(
                            "{} || variables.labelled || !has(object.metadata.finalizers) || object.metadata.finalizers.all(f, !f.startsWith({prefix}) || !({}))",
                            kind("Ingress"), shared_cel(&format!("f.substring({})", GROUP_FINALIZER.len())),
                            prefix = cel_string(GROUP_FINALIZER)),
                        "messageExpression": format!(
                            "{who} + ' carries the finalizer of a shared ALB group, which makes the AWS Load Balancer Controller load it into that group (rule: every Ingress of a shared ALB group passes the jockey policy); fix: remove the group.ingress.k8s.aws/ finalizer'"),
                        "reason": "Forbidden",
                    },
                    {
                        "expression": format!(
                            "{} || variables.labelled || !{}.startsWith(variables.lbPrefix)",
                            kind("Ingress"), annotation("alb.ingress.kubernetes.io/load-balancer-name")),
                        "messageExpression": format!(
                            "{who} + ' names its load balancer ' + {} + ', the name a shard of the shared ALB group takes (rule: the names of the shared group\\'s ALBs are jockey\\'s: AWS refuses a second ALB of one name); fix: choose a load-balancer-name that does not start with ' + variables.lbPrefix",
                            annotation("alb.ingress.kubernetes.io/load-balancer-name")),
                        "reason": "Forbidden",
                    },
                    {
                        "expression": format!(
                            "{} || variables.labelled || !variables.inScope || !has(object.metadata.annotations) || !object.metadata.annotations.exists(k, k.startsWith('alb.ingress.kubernetes.io/'))",
                            kind("Service")),
                        "messageExpression": format!(
                            "{who} + ' carries alb.ingress.kubernetes.io/ annotations without the {PROJECT_LABEL} label, in a namespace of jockey projects (rule: the AWS Load Balancer Controller reads a backend Service\\'s ALB annotations, so only a project\\'s labelled Service, checked by the jockey webhook, may carry them); fix: label the Service with its project, or remove those annotations'"),
                        "reason": "Forbidden",
                    },
                ],
            }
        }))
    }

    pub fn shared_group_binding(&self) -> Value {
        let mut spec = json!({
            "policyName": self.policy_name(),
            "validationActions": ["Deny"],
            // Without its settings the policy cannot tell the shared groups: it denies.
            "paramRef": {
                "name": self.params.1,
                "namespace": self.params.0,
                "parameterNotFoundAction": "Deny",
            },
        });
        if let Some(scope) = &self.policy_scope {
            spec["matchResources"] = json!({ "namespaceSelector": scope });
        }
        json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": { "name": self.policy_name() },
            "spec": spec,
        })
    }
}

/// A CEL string literal.
fn cel_string(s: &str) -> String {
    let mut out = String::from("'");
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// CEL: whether the string `g` names a shared group: the shared group, one of its shards
/// (`<shared>-2`, `<shared>-3`, ...) or an allowed group, with the names from the parameter.
fn shared_cel(g: &str) -> String {
    format!(
        "({g} == variables.sharedName || ({g}.startsWith(variables.sharedName + '-') && {g}.substring(size(variables.sharedName) + 1).matches('^([2-9]|[1-9][0-9]+)$')) || {g} in variables.allowed)"
    )
}

/// A LabelSelector as a CEL boolean over the label map `labels` (an empty selector: `true`).
pub fn selector_cel(selector: &Value, labels: &str) -> Result<String, String> {
    let mut terms = Vec::new();
    if let Some(m) = selector.get("matchLabels").and_then(Value::as_object) {
        for (k, v) in m {
            let v = v
                .as_str()
                .ok_or_else(|| format!("matchLabels.{k} is not a string"))?;
            terms.push(format!(
                "({0} in {labels} && {labels}[{0}] == {1})",
                cel_string(k),
                cel_string(v)
            ));
        }
    }
    for e in selector
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = e
            .get("key")
            .and_then(Value::as_str)
            .ok_or("a matchExpression has no key")?;
        let k = cel_string(key);
        let values: Vec<String> = e
            .get("values")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(cel_string)
            .collect();
        let list = format!("[{}]", values.join(", "));
        terms.push(match e.get("operator").and_then(Value::as_str) {
            Some("In") => format!("({k} in {labels} && {labels}[{k}] in {list})"),
            Some("NotIn") => format!("(!({k} in {labels}) || !({labels}[{k}] in {list}))"),
            Some("Exists") => format!("({k} in {labels})"),
            Some("DoesNotExist") => format!("!({k} in {labels})"),
            other => return Err(format!("matchExpressions operator {other:?} is not one of In, NotIn, Exists, DoesNotExist")),
        });
    }
    Ok(if terms.is_empty() {
        "true".to_string()
    } else {
        terms.join(" && ")
    })
}

#[cfg(test)]
mod tests;
