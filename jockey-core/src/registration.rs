//! How jockey is registered with the API server, rendered in one place so that `kubectl jockey
//! install`, `manifests/base`, the local webhook `make demo` runs and the end-to-end tests all
//! enforce the same boundary:
//!
//! - a MutatingWebhookConfiguration and a ValidatingWebhookConfiguration for labelled
//!   Deployments, Services and Ingresses (the validating one records claims, so it is
//!   `sideEffects: NoneOnDryRun`);
//! - a ValidatingAdmissionPolicy (CEL, evaluated inside the API server: no network hop, no
//!   webhook outage can open it) that denies any Ingress naming a shared ALB group unless it
//!   carries the project label and sits in a namespace the webhook answers. Without it, an
//!   unlabelled Ingress skips both webhooks (their object selector is the label) and joins the
//!   shared ALB with any host or group-wide setting.

use serde_json::{Value, json};

pub const GROUP_ANNOTATION: &str = "alb.ingress.kubernetes.io/group.name";
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
}

impl Registration {
    /// Every object, in apply order.
    pub fn objects(&self) -> Result<Vec<Value>, String> {
        Ok(vec![
            self.mutating(),
            self.validating(),
            self.shared_group_policy()?,
            self.shared_group_binding(),
        ])
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

    /// The CEL test "names a shared group" of `variables.group`.
    fn shared_group_cel(&self) -> String {
        let mut tests = vec![format!(
            "variables.group.matches({})",
            cel_string(&format!(
                "^{}(-([2-9]|[1-9][0-9]+))?$",
                regex_escape(&self.shared_group)
            ))
        )];
        for g in &self.other_groups {
            tests.push(format!("variables.group == {}", cel_string(g)));
        }
        tests.join(" || ")
    }

    pub fn shared_group_policy(&self) -> Result<Value, String> {
        let in_scope = selector_cel(&self.namespace_selector, "variables.nsLabels")?;
        let who = "'Ingress ' + object.metadata.namespace + '/' + (has(object.metadata.name) && object.metadata.name != '' ? object.metadata.name : object.metadata.generateName + '*')";
        Ok(json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicy",
            "metadata": { "name": self.policy_name() },
            "spec": {
                "failurePolicy": "Fail",
                "matchConstraints": {
                    "resourceRules": [{
                        "apiGroups": ["networking.k8s.io"], "apiVersions": ["v1"],
                        "operations": ["CREATE", "UPDATE"], "resources": ["ingresses"]
                    }]
                },
                "variables": [
                    { "name": "group", "expression": format!(
                        "has(object.metadata.annotations) && {0} in object.metadata.annotations ? object.metadata.annotations[{0}] : ''",
                        cel_string(GROUP_ANNOTATION)) },
                    { "name": "shared", "expression": self.shared_group_cel() },
                    { "name": "nsLabels", "expression":
                        "has(namespaceObject.metadata.labels) ? namespaceObject.metadata.labels : {'kubernetes.io/metadata.name': namespaceObject.metadata.name}" },
                ],
                "validations": [
                    {
                        "expression": format!(
                            "!variables.shared || (has(object.metadata.labels) && {} in object.metadata.labels)",
                            cel_string(PROJECT_LABEL)),
                        "messageExpression": format!(
                            "{who} + ' names the shared ALB group ' + variables.group + ' but has no {PROJECT_LABEL} label, so the jockey webhook never sees it (rule: every Ingress of a shared ALB group passes the jockey policy); fix: remove the annotation {GROUP_ANNOTATION}, or deploy the project with kubectl jockey deploy'"),
                        "reason": "Forbidden",
                    },
                    {
                        "expression": format!("!variables.shared || ({in_scope})"),
                        "messageExpression": format!(
                            "{who} + ' names the shared ALB group ' + variables.group + ' in namespace ' + object.metadata.namespace + ', which the jockey webhook does not answer (rule: every Ingress of a shared ALB group passes the jockey policy); fix: deploy it in a namespace the jockey webhook answers'"),
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

/// Escapes RE2 metacharacters.
fn regex_escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
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
