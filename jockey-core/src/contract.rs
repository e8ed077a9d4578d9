//! The values of the contract that both sides fill in and check: the ports, the health path, the
//! ALB annotation keys jockey writes and jockey's own values for a project's target group. A leaf:
//! the rules (policy, allowlist) and the renders (defaults) both read it, so neither imports the
//! other for a constant.

use crate::names::{LABEL_DEPLOYMENT, LABEL_HOSTNAME};
use crate::{Config, ProjectId};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// Port the agent server listens on inside the pod.
pub const CONTAINER_PORT: i32 = 8080;
pub const CONTAINER_PORT_NAME: &str = "http";
/// Port the Service exposes (and the Ingress backend points at).
pub const SERVICE_PORT: i32 = 80;
pub const HEALTH_PATH: &str = "/health";
/// Where the instance ConfigMap is mounted.
pub const INSTANCE_MOUNT_PATH: &str = "/app/instance";
/// Name of the pod volume carrying the instance ConfigMap; prefixed so it cannot collide with a
/// volume the user named `instance`.
pub const INSTANCE_VOLUME: &str = "jockey-instance";
/// Built-in template: the emptyDir the instance's files are unpacked into at pod start, mounted
/// at [`APP_PATH`] by the agent container (the image's working directory).
pub const APP_VOLUME: &str = "jockey-app";
pub const APP_PATH: &str = "/app";
/// Built-in template: the init container that unpacks the instance into [`APP_VOLUME`], from the
/// agent's own image (its Python's `tarfile`).
pub const UNPACK_CONTAINER: &str = "jockey-unpack";
/// What [`UNPACK_CONTAINER`] runs: the instance's tar, as mounted, extracted into the emptyDir
/// (the `data` filter where this Python has it: plain files and directories, no links out).
pub const UNPACK_SCRIPT: &str = "import tarfile\n\
t = tarfile.open('/app/instance/instance.tar.gz')\n\
kw = {'filter': 'data'} if hasattr(tarfile, 'data_filter') else {}\n\
t.extractall('/app', **kw)\n";
/// Built-in template, an agent container without a `command` of its own: the container's own
/// command becomes `python -c UNPACK_AND_EXEC`, which does what [`UNPACK_SCRIPT`] does (the same
/// tar, the same `data` filter, the same emptyDir) and then `exec`s the container's `args`
/// ([`DEFAULT_AGENT_ARGS`] when it has none): no init container, whose exit the kubelet only
/// notices on its next relist (a second of every rollout). A failure to unpack or to start says
/// why on stderr and exits non-zero, so the pod crash-loops with the reason as its termination
/// message. Works with every template image (they all have `python` and the same `/app`), so
/// no [`crate::image::TEMPLATE_VERSION`] bump. Changing this text makes every stored wrapper a
/// "user command" ([`is_unpack_wrapper`] would have to recognise the old one too).
pub const UNPACK_AND_EXEC: &str = concat!(
    "import os, sys, tarfile\n",
    "try:\n",
    "    t = tarfile.open('/app/instance/instance.tar.gz')\n",
    "    kw = {'filter': 'data'} if hasattr(tarfile, 'data_filter') else {}\n",
    "    t.extractall('/app', **kw)\n",
    "except Exception as e:\n",
    "    sys.stderr.write('jockey: cannot unpack the instance /app/instance/instance.tar.gz into /app: %r\\n' % (e,))\n",
    "    sys.exit(1)\n",
    "argv = sys.argv[1:] or ['python', 'server.py']\n",
    "try:\n",
    "    os.execvp(argv[0], argv)\n",
    "except OSError as e:\n",
    "    sys.stderr.write('jockey: cannot run %r: %r\\n' % (argv, e))\n",
    "    sys.exit(127)\n",
);
/// What the built-in template's image runs (its `CMD`, in its `WORKDIR` /app): written into the
/// wrapped container's `args` so the Deployment shows what runs.
pub const DEFAULT_AGENT_ARGS: [&str; 2] = ["python", "server.py"];

/// Whether a container's `command` is jockey's [`UNPACK_AND_EXEC`] wrapper (its first three
/// elements, exactly).
pub fn is_unpack_wrapper(command: &[String]) -> bool {
    matches!(command, [python, c, script, ..] if python == "python" && c == "-c" && script == UNPACK_AND_EXEC)
}
/// Name of the container `render_deployment` creates.
pub const CONTAINER_NAME: &str = "server";
/// The ALB target group's deregistration delay (`target-group-attributes`).
pub const DEREGISTRATION_DELAY_SECONDS: i64 = 30;
/// The preStop pause: the pod keeps serving while the ALB drains it. Longer than the
/// deregistration delay because the load balancer controller only starts deregistering once the
/// endpoint is gone, a few seconds after the pod began terminating.
pub const PRESTOP_SLEEP_SECONDS: i64 = DEREGISTRATION_DELAY_SECONDS + 5;
const _: () = assert!(PRESTOP_SLEEP_SECONDS >= DEREGISTRATION_DELAY_SECONDS);
/// Time the server gets after the preStop pause to finish in-flight requests on SIGTERM.
pub const SHUTDOWN_BUDGET_SECONDS: i64 = 25;
/// Default requests/limits of the agent container. Canonical quantity spellings, so that the
/// API server stores them byte-for-byte and re-defaulting sees no change.
pub const DEFAULT_REQUESTS: [(&str, &str); 2] = [("cpu", "100m"), ("memory", "256Mi")];
pub const DEFAULT_LIMITS: [(&str, &str); 2] = [("cpu", "1"), ("memory", "1Gi")];

/// Ingress class of the AWS Load Balancer Controller.
pub const INGRESS_CLASS: &str = "alb";
/// The legacy class annotation; the API server refuses an Ingress that has it and
/// `spec.ingressClassName`, so when a user set it the class field is left alone.
pub const ANNOTATION_LEGACY_INGRESS_CLASS: &str = "kubernetes.io/ingress.class";
pub const ALB_PREFIX: &str = "alb.ingress.kubernetes.io/";
pub const ALB_SCHEME: &str = "alb.ingress.kubernetes.io/scheme";
pub const ALB_TARGET_TYPE: &str = "alb.ingress.kubernetes.io/target-type";
pub const ALB_LISTEN_PORTS: &str = "alb.ingress.kubernetes.io/listen-ports";
pub const ALB_SSL_REDIRECT: &str = "alb.ingress.kubernetes.io/ssl-redirect";
pub const ALB_GROUP_NAME: &str = "alb.ingress.kubernetes.io/group.name";
pub const ALB_HEALTHCHECK_PATH: &str = "alb.ingress.kubernetes.io/healthcheck-path";
pub const ALB_SUCCESS_CODES: &str = "alb.ingress.kubernetes.io/success-codes";
pub const ALB_TARGET_GROUP_ATTRIBUTES: &str = "alb.ingress.kubernetes.io/target-group-attributes";
pub const ALB_TAGS: &str = "alb.ingress.kubernetes.io/tags";
pub const ALB_CERTIFICATE_ARN: &str = "alb.ingress.kubernetes.io/certificate-arn";
pub const ALB_IP_ADDRESS_TYPE: &str = "alb.ingress.kubernetes.io/ip-address-type";
pub const ALB_LOAD_BALANCER_NAME: &str = "alb.ingress.kubernetes.io/load-balancer-name";

/// The spec's ALB annotations that act on the project's own target group and rules. The
/// group-wide ones (scheme, listen-ports, ssl-redirect, certificate) come from the admin's group
/// settings ([`DEFAULT_GROUP_SETTINGS`] under the policy's), so that every Ingress of a group
/// carries the admin's values.
pub const ALB_OWN_DEFAULTS: [(&str, &str); 4] = [
    (ALB_TARGET_TYPE, "ip"),
    (ALB_HEALTHCHECK_PATH, HEALTH_PATH),
    (ALB_SUCCESS_CODES, "200"),
    (
        ALB_TARGET_GROUP_ATTRIBUTES,
        "deregistration_delay.timeout_seconds=30",
    ),
];

pub const ALB_BACKEND_PROTOCOL_VERSION: &str = "alb.ingress.kubernetes.io/backend-protocol-version";

/// jockey's value for `key` on a project's Ingress whose `backend-protocol-version` is
/// `version`: a gRPC target group is health-checked by calling a method and matches gRPC codes,
/// so it gets the controller's gRPC defaults rather than jockey's HTTP ones.
pub fn own_default(key: &str, version: &str) -> Option<String> {
    match (key, version) {
        (ALB_HEALTHCHECK_PATH, "GRPC") => Some("/AWS.ALB/healthcheck".into()),
        (ALB_SUCCESS_CODES, "GRPC") => Some("12".into()),
        _ => ALB_OWN_DEFAULTS
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.to_string()),
    }
}

/// jockey's group-wide defaults (spec "Ingress defaults"), under the admin's `groupSettings`
/// (keys without the prefix).
pub const DEFAULT_GROUP_SETTINGS: [(&str, &str); 3] = [
    ("scheme", "internet-facing"),
    ("ssl-redirect", "443"),
    ("listen-ports", r#"[{"HTTP": 80}, {"HTTPS": 443}]"#),
];

/// `Kind namespace/name` for messages (`generateName` when there is no name yet).
pub fn describe(kind: &str, meta: &ObjectMeta) -> String {
    let name = meta
        .name
        .clone()
        .or_else(|| meta.generate_name.as_ref().map(|g| format!("{g}*")))
        .unwrap_or_else(|| "<unnamed>".to_string());
    match &meta.namespace {
        Some(ns) if !ns.is_empty() => format!("{kind} {ns}/{name}"),
        _ => format!("{kind} {name}"),
    }
}

/// Parses the `tags` stringMap `k1=v1,k2=v2` (blank entries ignored).
pub fn parse_tags(value: &str) -> Vec<(String, String)> {
    value
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(|e| match e.split_once('=') {
            Some((k, v)) => (k.trim().to_string(), v.trim().to_string()),
            None => (e.to_string(), String::new()),
        })
        .collect()
}

/// The jockey tags of the spec for `project`: `deployment=PROJECT`, `hostname=HOST`.
pub fn project_tags(project: &ProjectId, cfg: &Config) -> [(String, String); 2] {
    [
        (LABEL_DEPLOYMENT.to_string(), project.to_string()),
        (
            LABEL_HOSTNAME.to_string(),
            project.host(&cfg.deployment_domain),
        ),
    ]
}
