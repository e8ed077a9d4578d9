//! AdmissionReview in, AdmissionReview out, for `/mutate` and `/validate`: the webhook's whole
//! decision, pure, so the server is a thin adapter.
//!
//! Never panics on any input. A body that is not an `admission.k8s.io/v1` AdmissionReview with a
//! request is a [`BadRequest`] (the server answers 400). Anything jockey does not handle — other
//! kinds, subresources, DELETE/CONNECT, unlabelled objects — is allowed unchanged.

use crate::Config;
use crate::claims::{self, Claim, ClaimIndex, ClaimKind};
use crate::defaults::{
    self, default_deployment_update_with, default_ingress_with, default_service, patch_between,
};
use crate::index::{NamespaceIndex, Services};
use crate::names::LABEL_PROJECT;
use crate::policy::{self, Context, IngressIndex, Policy, Verdict, object_name};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube_core::DynamicObject;
use kube_core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

pub const ADMISSION_API_VERSION: &str = "admission.k8s.io/v1";

/// Which endpoint was called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Mutate,
    Validate,
}

impl Endpoint {
    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::Mutate => "mutate",
            Endpoint::Validate => "validate",
        }
    }
}

/// The kinds jockey handles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Deployment,
    Service,
    Ingress,
}

impl Kind {
    fn from_gvk(group: &str, version: &str, kind: &str) -> Option<Self> {
        match (group, version, kind) {
            ("apps", "v1", "Deployment") => Some(Kind::Deployment),
            ("", "v1", "Service") => Some(Kind::Service),
            ("networking.k8s.io", "v1", "Ingress") => Some(Kind::Ingress),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Kind::Deployment => "Deployment",
            Kind::Service => "Service",
            Kind::Ingress => "Ingress",
        }
    }
}

/// What the decision needs besides the request: configuration, policy, the watch-fed indexes
/// and a lookup of the Services an Ingress names (`namespace`, `name`), answering
/// [`ServiceLookup::Unknown`] for one the webhook must read from the API server first.
pub struct Env<'a> {
    pub cfg: &'a Config,
    pub policy: &'a Policy,
    pub index: &'a IngressIndex,
    pub claims: &'a ClaimIndex,
    pub namespaces: &'a NamespaceIndex,
    pub services: &'a dyn Services,
    /// The images recorded on the instance ConfigMaps a Deployment names (read by the webhook
    /// from the API server before deciding, [`instances_named`]).
    pub images: &'a dyn crate::image::InstanceImages,
}

/// The body could not be understood; the server answers 400 with this message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadRequest(pub String);

/// How the request ended, for metrics and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Allowed without change.
    Allowed,
    /// Allowed with a patch.
    Patched,
    Denied,
    /// Not jockey's business (kind, label, operation): allowed unchanged.
    Skipped,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Allowed => "allowed",
            Outcome::Patched => "patched",
            Outcome::Denied => "denied",
            Outcome::Skipped => "skipped",
        }
    }
}

/// The answer: the review to send back, and labels for metrics/logs.
#[derive(Debug, Clone)]
pub struct Handled {
    pub review: AdmissionReview<DynamicObject>,
    /// `Deployment`, `Service`, `Ingress` or the unexpected kind's name.
    pub kind: String,
    /// `CREATE`, `UPDATE`, ...
    pub operation: String,
    pub outcome: Outcome,
    /// `namespace/name` of the object, for logs.
    pub object: String,
    /// The denial message, for logs.
    pub message: Option<String>,
    /// Claims the webhook must hold in the API server before this (allowing) answer stands:
    /// see [`crate::claims`]. Empty for denials, dry runs, mutations and updates whose claims
    /// the cache shows held already.
    pub claims: Vec<Claim>,
    /// Services (namespace, name) the decision needs and [`Env::services`] did not know: the
    /// answer is not final; read them from the API server and decide again with them.
    pub services_needed: Vec<(String, String)>,
    /// What the API server must show before [`Handled::claims`] are written (set with them):
    /// see [`claims::Evidence`].
    pub evidence: Option<claims::Evidence>,
}

impl Handled {
    /// Turns an allowing answer into the denial for a claim another namespace (or project) won
    /// in the API server: `want` was this request's claim, `live` is the winner's.
    pub fn lose_claim(&mut self, want: &Claim, live: &Claim) {
        let (what, fix) = match want.kind {
            ClaimKind::Project => (
                format!("project {:?}", want.subject),
                format!(
                    "deploy project {} in namespace {}, or use a project id of your own",
                    want.subject, live.holder.namespace
                ),
            ),
            ClaimKind::Host => (
                format!("host {:?}", want.subject),
                format!(
                    "use the project's own host, or have project {} deleted in namespace {} first",
                    live.holder.project, live.holder.namespace
                ),
            ),
        };
        self.deny_with(format!(
            "{} {} denied by jockey policy: {what} already belongs to {} (its claim was recorded first) (rule: a project id belongs to one namespace and a host to one project, whoever claims it first); fix: {fix}",
            self.kind,
            self.object,
            live.describe_holder()
        ));
    }

    /// Turns an allowing answer into a denial because a claim could not be recorded (the API
    /// server failed): safer than admitting an object whose ownership is unknown.
    pub fn fail_claim(&mut self, want: &Claim, cause: &str) {
        self.deny_with(format!(
            "{} {}: jockey-webhook could not record the {} claim of {:?} ({cause}); nothing was admitted; retry, and if it persists check jockey-webhook's log and its permission to create Leases in its namespace",
            self.kind,
            self.object,
            want.kind.as_str(),
            want.subject
        ));
    }

    /// Turns an allowing answer into a denial because what the review names does not exist in
    /// the API server (`cause`, from [`claims::Evidence::judge`]): the review did not come
    /// through the API server, and no claim is recorded for it.
    pub fn refuse_unproven_claim(&mut self, cause: &str) {
        self.deny_with(format!(
            "{} {}: {cause}, so jockey-webhook records no claim for it and admits nothing (rule: claims are recorded only for namespaces and objects that exist in the API server; the API server never sends a review for anything else, so this one did not come through it); fix: create the object through the API server (kubectl apply) in an existing namespace",
            self.kind, self.object
        ));
    }

    fn deny_with(&mut self, msg: String) {
        self.outcome = Outcome::Denied;
        self.message = Some(msg.clone());
        self.claims.clear();
        self.evidence = None;
        if let Some(r) = self.review.response.take() {
            let mut r = r.deny(msg);
            r.result.code = 403;
            r.result.reason = "Forbidden".into();
            self.review.response = Some(r);
        }
    }

    /// The response body. The patch is sent base64-encoded, the encoding Go gives `[]byte`
    /// (kube-core would write an array of numbers, four times the size, and build a JSON value
    /// per byte on the way).
    pub fn to_json(&self) -> Vec<u8> {
        let patch = self.review.response.as_ref().and_then(|r| r.patch.as_ref());
        let Some(bytes) = patch else {
            return serde_json::to_vec(&self.review).unwrap_or_default();
        };
        use base64::Engine;
        let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
        let mut review: AdmissionReview<DynamicObject> = AdmissionReview {
            types: self.review.types.clone(),
            request: None,
            response: self.review.response.clone(),
        };
        if let Some(r) = review.response.as_mut() {
            r.patch = None;
        }
        let mut v = serde_json::to_value(&review).unwrap_or(Value::Null);
        if let Some(r) = v.get_mut("response").and_then(Value::as_object_mut) {
            r.insert("patch".into(), Value::String(encoded));
        }
        serde_json::to_vec(&v).unwrap_or_default()
    }
}

fn operation_str(op: &Operation) -> &'static str {
    match op {
        Operation::Create => "CREATE",
        Operation::Update => "UPDATE",
        Operation::Delete => "DELETE",
        Operation::Connect => "CONNECT",
    }
}

/// Decides one AdmissionReview.
///
/// The body is parsed once; the object and old object are moved out of it rather than copied
/// (they are the largest part of a review) and read from there as the typed kinds.
pub fn handle(endpoint: Endpoint, body: &[u8], env: &Env) -> Result<Handled, BadRequest> {
    let mut raw: Value = serde_json::from_slice(body).map_err(|e| {
        BadRequest(format!(
            "the body is not JSON ({e}); send an admission.k8s.io/v1 AdmissionReview"
        ))
    })?;
    let api_version = raw.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let kind = raw.get("kind").and_then(Value::as_str).unwrap_or("");
    if kind != "AdmissionReview" || api_version != ADMISSION_API_VERSION {
        return Err(BadRequest(format!(
            "expected kind AdmissionReview, apiVersion {ADMISSION_API_VERSION}; got kind {kind:?}, apiVersion {api_version:?}; register the webhook with admissionReviewVersions: [v1]"
        )));
    }
    let no_request = || {
        BadRequest(
            "the AdmissionReview has no request; send the review the API server built".into(),
        )
    };
    let malformed = |e: String| {
        BadRequest(format!(
            "the AdmissionReview is malformed: {e}; send the review the API server built"
        ))
    };
    let Some(raw_request) = raw.get_mut("request").filter(|r| !r.is_null()) else {
        return Err(no_request());
    };
    let (raw_object, raw_old) = match raw_request.as_object_mut() {
        Some(m) => (
            m.remove("object").filter(|o| !o.is_null()),
            m.remove("oldObject").filter(|o| !o.is_null()),
        ),
        None => (None, None),
    };
    for (field, o) in [("object", &raw_object), ("oldObject", &raw_old)] {
        if let Some(o) = o {
            object_shape(o).map_err(|e| malformed(format!("request.{field}: {e}")))?;
        }
    }
    let review: AdmissionReview<DynamicObject> =
        serde_json::from_value(raw).map_err(|e| malformed(e.to_string()))?;
    let request: AdmissionRequest<DynamicObject> = review.try_into().map_err(|_| no_request())?;
    Ok(decide(
        endpoint,
        &request,
        raw_object.as_ref(),
        raw_old.as_ref(),
        env,
    ))
}

/// What a Kubernetes object must be for the review to be well-formed (what kube's
/// `DynamicObject` accepts): a JSON object whose `metadata`, when present, is an ObjectMeta.
fn object_shape(o: &Value) -> Result<(), String> {
    let m = o
        .as_object()
        .ok_or_else(|| "is not a JSON object".to_string())?;
    if let Some(meta) = m.get("metadata") {
        ObjectMeta::deserialize(meta).map_err(|e| format!("metadata: {e}"))?;
    }
    Ok(())
}

fn decide(
    endpoint: Endpoint,
    req: &AdmissionRequest<DynamicObject>,
    raw_object: Option<&Value>,
    raw_old: Option<&Value>,
    env: &Env,
) -> Handled {
    let namespace = req.namespace.clone().unwrap_or_default();
    let mut handled = Handled {
        review: AdmissionResponse::from(req).into_review(),
        kind: req.kind.kind.clone(),
        operation: operation_str(&req.operation).to_string(),
        outcome: Outcome::Skipped,
        object: if namespace.is_empty() {
            req.name.clone()
        } else {
            format!("{namespace}/{}", req.name)
        },
        message: None,
        claims: Vec::new(),
        services_needed: Vec::new(),
        evidence: None,
    };
    let kind = match Kind::from_gvk(&req.kind.group, &req.kind.version, &req.kind.kind) {
        Some(k) => k,
        None => return handled,
    };
    if req.sub_resource.as_deref().is_some_and(|s| !s.is_empty())
        || !matches!(req.operation, Operation::Create | Operation::Update)
    {
        return handled;
    }
    let Some(raw_object) = raw_object else {
        return handled;
    };
    let labelled = |v: Option<&Value>| {
        v.and_then(|o| o.pointer("/metadata/labels"))
            .and_then(|l| l.get(LABEL_PROJECT))
            .is_some()
    };
    // The webhook's object selector matches when either version carries the label; an object
    // that never had it is not jockey's.
    if !labelled(Some(raw_object)) && !labelled(raw_old) {
        return handled;
    }

    let result = match (endpoint, kind) {
        (Endpoint::Mutate, Kind::Deployment) => {
            mutate::<Deployment>(req, raw_object, raw_old, env, kind)
        }
        (Endpoint::Mutate, Kind::Service) => mutate::<Service>(req, raw_object, raw_old, env, kind),
        (Endpoint::Mutate, Kind::Ingress) => mutate::<Ingress>(req, raw_object, raw_old, env, kind),
        (Endpoint::Validate, _) => validate(kind, raw_object, raw_old, &namespace, env),
    };
    let response = handled
        .review
        .response
        .take()
        .unwrap_or_else(|| AdmissionResponse::from(req));
    let response = match result {
        Decision::NeedServices(names) => {
            // Fails closed: an adapter that does not look the Services up and decide again
            // answers with this denial.
            let msg = format!(
                "{} {}: jockey-webhook could not tell whose Service {} is; nothing was admitted; retry",
                kind.as_str(),
                handled.object,
                names.join(", ")
            );
            handled.services_needed = names.into_iter().map(|n| (namespace.clone(), n)).collect();
            handled.outcome = Outcome::Denied;
            handled.message = Some(msg.clone());
            response.deny(msg)
        }
        Decision::Unchanged(warnings) => {
            handled.outcome = Outcome::Allowed;
            if endpoint == Endpoint::Validate && !req.dry_run {
                (handled.claims, handled.evidence) =
                    claims_to_secure(req, kind, raw_object, &namespace, env);
            }
            with_warnings(response, warnings)
        }
        Decision::Patch(patch, warnings) => match response.clone().with_patch(patch) {
            Ok(r) => {
                handled.outcome = Outcome::Patched;
                with_warnings(r, warnings)
            }
            Err(e) => {
                let msg = format!(
                    "{} {}: jockey-webhook could not encode its patch ({e}); this is a bug in jockey-webhook, please report it",
                    kind.as_str(),
                    handled.object
                );
                handled.outcome = Outcome::Denied;
                handled.message = Some(msg.clone());
                response.deny(msg)
            }
        },
        Decision::Deny(msg, warnings) => {
            handled.outcome = Outcome::Denied;
            handled.message = Some(msg.clone());
            let mut r = with_warnings(response, warnings).deny(msg);
            // 403 like the API server's own admission denials (kubectl prints the message).
            r.result.code = 403;
            r.result.reason = "Forbidden".into();
            r
        }
    };
    handled.review = response.into_review();
    handled
}

/// The claims an allowed, non-dry-run request must hold: the project's, and each host of an
/// Ingress. A CREATE always asks the API server (a new object is where two namespaces race); an
/// UPDATE only for claims the cache does not show as held already (projects deployed before
/// claims existed get theirs on their next update). With them, what the API server must show
/// before they are written.
fn claims_to_secure(
    req: &AdmissionRequest<DynamicObject>,
    kind: Kind,
    raw_object: &Value,
    namespace: &str,
    env: &Env,
) -> (Vec<Claim>, Option<claims::Evidence>) {
    let Some(project) = raw_object
        .pointer("/metadata/labels")
        .and_then(|l| l.get(LABEL_PROJECT))
        .and_then(Value::as_str)
    else {
        return (Vec::new(), None);
    };
    let mut wanted = vec![Claim::project(project, namespace)];
    if kind == Kind::Ingress
        && let Ok(ing) = Ingress::deserialize(raw_object)
    {
        let hosts: std::collections::BTreeSet<String> = policy::ingress_hosts(&ing)
            .into_iter()
            .map(|(_, h)| h)
            .collect();
        wanted.extend(hosts.iter().map(|h| Claim::host(h, project, namespace)));
    }
    let always = matches!(req.operation, Operation::Create);
    let wanted: Vec<Claim> = wanted
        .into_iter()
        .filter(|c| {
            always
                || claims::standing(c, env.claims.get(c.kind, &c.subject)) != claims::Standing::Ours
        })
        .collect();
    let evidence = (!wanted.is_empty()).then(|| {
        claims::Evidence::for_review(always, kind.as_str(), namespace, &req.name, project)
    });
    (wanted, evidence)
}

fn with_warnings(mut r: AdmissionResponse, warnings: Vec<String>) -> AdmissionResponse {
    if !warnings.is_empty() {
        r.warnings = Some(warnings);
    }
    r
}

enum Decision {
    /// Not decided: these Services of the namespace must be looked up first.
    NeedServices(Vec<String>),
    Unchanged(Vec<String>),
    Patch(json_patch::Patch, Vec<String>),
    Deny(String, Vec<String>),
}

/// Reads the typed kind straight from the parsed object (no copy of it).
fn parse<T: DeserializeOwned>(kind: Kind, v: &Value, what: &str) -> Result<T, Decision> {
    T::deserialize(v).map_err(|e| {
        Decision::Deny(
            format!(
                "{} {what} could not be read as {}: {e}; send a valid object",
                kind.as_str(),
                kind.as_str()
            ),
            Vec::new(),
        )
    })
}

/// Typed access to the three kinds for the generic mutation.
trait Defaultable: Sized + serde::Serialize + DeserializeOwned {
    fn meta(&self) -> &ObjectMeta;
    fn default_with(&self, env: &Env, old: Option<&Self>) -> Result<Self, defaults::DefaultError>;
}

impl Defaultable for Deployment {
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn default_with(&self, env: &Env, old: Option<&Self>) -> Result<Self, defaults::DefaultError> {
        default_deployment_update_with(self, old, env.cfg, env.images)
    }
}

impl Defaultable for Service {
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn default_with(&self, env: &Env, _old: Option<&Self>) -> Result<Self, defaults::DefaultError> {
        default_service(self, env.cfg)
    }
}

impl Defaultable for Ingress {
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn default_with(&self, env: &Env, old: Option<&Self>) -> Result<Self, defaults::DefaultError> {
        // An Ingress keeps the group it has, or had (an apply that drops the annotation must not
        // move it to another ALB); only a new one is placed.
        let group_of = |i: &Ingress| {
            i.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(defaults::ALB_GROUP_NAME))
                .cloned()
        };
        let group = match old.and_then(group_of) {
            Some(g) => g,
            None => {
                let project = self
                    .metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(LABEL_PROJECT))
                    .cloned()
                    .unwrap_or_default();
                env.policy.place(env.cfg, env.index, &project)
            }
        };
        default_ingress_with(
            self,
            env.cfg,
            &group,
            &env.policy.effective_group_settings(env.cfg),
        )
    }
}

fn mutate<T: Defaultable>(
    req: &AdmissionRequest<DynamicObject>,
    raw_object: &Value,
    raw_old: Option<&Value>,
    env: &Env,
    kind: Kind,
) -> Decision {
    let run = || -> Result<Decision, Decision> {
        let obj: T = parse(kind, raw_object, "object")?;
        if obj
            .meta()
            .labels
            .as_ref()
            .and_then(|l| l.get(LABEL_PROJECT))
            .is_none()
        {
            // Label removed on update: validation decides; nothing to default.
            return Ok(Decision::Unchanged(Vec::new()));
        }
        let old: Option<T> = match raw_old {
            Some(v) => Some(parse(kind, v, "oldObject")?),
            None => None,
        };
        // For messages only: the object as the request names it.
        let name_of = |meta: &ObjectMeta| {
            let mut meta_ns = meta.clone();
            if meta_ns.namespace.is_none() {
                meta_ns.namespace = req.namespace.clone();
            }
            if meta_ns.name.is_none() && !req.name.is_empty() {
                meta_ns.name = Some(req.name.clone());
            }
            object_name(kind.as_str(), &meta_ns, "")
        };
        let defaulted = obj.default_with(env, old.as_ref()).map_err(|e| {
            let mut e = e;
            e.object = name_of(obj.meta());
            Decision::Deny(e.to_string(), Vec::new())
        })?;
        let patch = patch_between(&obj, &defaulted);
        if patch.0.is_empty() {
            return Ok(Decision::Unchanged(Vec::new()));
        }
        // The patch is computed between typed round-trips; prove it applies to the object as the
        // API server sent it before answering with it.
        let mut check = raw_object.clone();
        if let Err(e) = json_patch::patch(&mut check, &patch) {
            return Err(Decision::Deny(
                format!(
                    "{}: jockey-webhook computed a patch that does not apply ({e}); this is a bug in jockey-webhook, please report it with the object",
                    name_of(obj.meta())
                ),
                Vec::new(),
            ));
        }
        Ok(Decision::Patch(patch, Vec::new()))
    };
    run().unwrap_or_else(|d| d)
}

fn validate(
    kind: Kind,
    raw_object: &Value,
    raw_old: Option<&Value>,
    namespace: &str,
    env: &Env,
) -> Decision {
    let ctx = Context {
        cfg: env.cfg,
        policy: env.policy,
        index: env.index,
        namespace,
        namespaces: env.namespaces,
        claims: env.claims,
        services: env.services,
    };
    fn typed<T: DeserializeOwned>(
        kind: Kind,
        o: &Value,
        old: Option<&Value>,
    ) -> Result<(T, Option<T>), Decision> {
        let obj = parse(kind, o, "object")?;
        let old = match old {
            Some(v) => Some(parse(kind, v, "oldObject")?),
            None => None,
        };
        Ok((obj, old))
    }
    let result = match kind {
        Kind::Deployment => typed::<Deployment>(kind, raw_object, raw_old).map(|(o, old)| {
            (
                policy::validate_deployment(&ctx, &o, old.as_ref()),
                o.metadata,
            )
        }),
        Kind::Service => typed::<Service>(kind, raw_object, raw_old)
            .map(|(o, old)| (policy::validate_service(&ctx, &o, old.as_ref()), o.metadata)),
        Kind::Ingress => typed::<Ingress>(kind, raw_object, raw_old)
            .map(|(o, old)| (policy::validate_ingress(&ctx, &o, old.as_ref()), o.metadata)),
    };
    match result {
        Err(d) => d,
        Ok((verdict, meta)) => verdict_decision(kind, &meta, namespace, verdict),
    }
}

fn verdict_decision(kind: Kind, meta: &ObjectMeta, namespace: &str, v: Verdict) -> Decision {
    if !v.services_needed.is_empty() {
        return Decision::NeedServices(v.services_needed);
    }
    let name = object_name(kind.as_str(), meta, namespace);
    match v.message(&name) {
        Some(msg) => Decision::Deny(msg, v.warnings),
        None => Decision::Unchanged(v.warnings),
    }
}

#[cfg(test)]
mod tests;

/// The namespace and instance ConfigMaps a review of a Deployment names (its annotation and its
/// instance volume, old and new), which the adapter reads before deciding so that defaulting
/// fills in the image recorded on them. Empty for anything else. Never fails: a body it cannot
/// read names nothing (the decision then says what is wrong with it).
pub fn instances_named(body: &[u8]) -> (String, Vec<String>) {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return (String::new(), Vec::new());
    };
    let req = &v["request"];
    if req["kind"]["kind"] != "Deployment" || req["kind"]["group"] != "apps" {
        return (String::new(), Vec::new());
    }
    let ns = req["namespace"].as_str().unwrap_or_default().to_string();
    let mut names = Vec::new();
    for obj in [&req["object"], &req["oldObject"]] {
        let annotation = obj["metadata"]["annotations"][crate::names::ANNOTATION_INSTANCE].as_str();
        let volume = obj["spec"]["template"]["spec"]["volumes"]
            .as_array()
            .and_then(|vs| {
                vs.iter()
                    .find(|v| v["name"] == crate::contract::INSTANCE_VOLUME)
                    .and_then(|v| v["configMap"]["name"].as_str())
            });
        for name in [annotation, volume].into_iter().flatten() {
            if crate::names::short_hash_of_configmap(name).is_some()
                && !names.iter().any(|n| n == name)
            {
                names.push(name.to_string());
            }
        }
    }
    (ns, names)
}
