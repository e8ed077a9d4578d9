//! Every `alb.ingress.kubernetes.io/*` key the controller (v3.5.0) reads on an Ingress, and the
//! ones it also reads on a backend Service, with reach, value type and what happens in a group.
//! Files named in `detail` are under the controller's `pkg/ingress/`.

use super::Reach;

const CONFLICT: Reach = Reach::Group { merge: false };
const MERGE: Reach = Reach::Group { merge: true };
const OWN: Reach = Reach::Own;

/// How a value is parsed (see `parse_kind` in the parent module).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Str,
    NonEmpty,
    Bool,
    /// Parsed with the error ignored: an invalid value counts as `false` (`create-acm-cert`).
    LenientBool,
    Int32,
    Int64,
    OneOf(&'static [&'static str]),
    List,
    CertArns,
    Cidrs,
    Map,
    Tags,
    LbAttributes,
    NlbAttributes,
    Capacity,
    ListenPorts,
    SslRedirect,
    GroupName,
    GroupOrder,
    LbName,
    HealthCheckPort,
    NlbHealthCheckPort,
    HealthCheckPath,
    SuccessCodes,
    NlbSuccessCodes,
    /// An int32 the ELBv2 API accepts only within this range.
    Bounded(i64, i64),
    OnUnauthenticated,
    WafArn,
    MutualAuthentication,
    JwtValidation,
    CognitoIdp,
    OidcIdp,
    Action,
    Conditions,
    Transforms,
    PortMapping,
}

pub struct Entry {
    /// The key after the prefix; for a family (`family: true`) the part before the name.
    pub suffix: &'static str,
    pub family: bool,
    /// Shown for a family, e.g. `actions.<name>`.
    pub pattern: &'static str,
    pub reach: Reach,
    pub kind: Kind,
    pub expects: &'static str,
    /// What the controller does with it across the group, and where.
    pub detail: &'static str,
    /// `Some(note)` when the controller also reads the key on a backend Service.
    pub service: Option<&'static str>,
}

const SVC_TG: &str = "read from the backend Service too; the Service's value wins over the Ingress's for that Service's target group (model_build_target_group.go:164)";
const SVC_AUTH: &str = "read from the backend Service too when a rule forwards to that single Service; the Service's value wins (enhanced_backend_builder.go:305-313)";

macro_rules! e {
    ($suffix:literal, $reach:expr, $kind:expr, $expects:expr, $detail:expr) => {
        e!($suffix, $reach, $kind, $expects, $detail, None)
    };
    ($suffix:literal, $reach:expr, $kind:expr, $expects:expr, $detail:expr, $svc:expr) => {
        Entry {
            suffix: $suffix,
            family: false,
            pattern: $suffix,
            reach: $reach,
            kind: $kind,
            expects: $expects,
            detail: $detail,
            service: $svc,
        }
    };
}

macro_rules! family {
    ($suffix:literal, $pattern:expr, $reach:expr, $kind:expr, $expects:expr, $detail:expr, $svc:expr) => {
        Entry {
            suffix: $suffix,
            family: true,
            pattern: $pattern,
            reach: $reach,
            kind: $kind,
            expects: $expects,
            detail: $detail,
            service: $svc,
        }
    };
}

const BOOL: &str = "a Go boolean: true/false/True/False/TRUE/FALSE/t/f/T/F/1/0";
const LIST: &str = "a comma-separated list";
const MAP: &str = "comma-separated key=value pairs (\\, escapes a comma)";
const HTTP_HTTPS: &[&str] = &["HTTP", "HTTPS"];
const SCHEMES: &[&str] = &["internet-facing", "internal"];

#[rustfmt::skip]
pub static ENTRIES: &[Entry] = &[
    // --- one load balancer per group: every Ingress that sets it must agree -----------------
    e!("scheme", CONFLICT, Kind::OneOf(SCHEMES), "internet-facing or internal",
        "one per ALB; two different values fail the whole group (model_build_load_balancer.go:155)"),
    e!("load-balancer-name", CONFLICT, Kind::LbName, "an ALB name: at most 32 letters, digits or hyphens, not starting or ending with a hyphen, not starting with internal-",
        "one per ALB; different values fail the whole group (model_build_load_balancer.go:119)"),
    e!("ip-address-type", CONFLICT, Kind::OneOf(&["ipv4", "dualstack", "dualstack-without-public-ipv4"]), "ipv4, dualstack or dualstack-without-public-ipv4",
        "one per ALB; different values fail the whole group (model_build_load_balancer.go:187)"),
    e!("subnets", CONFLICT, Kind::List, "a comma-separated list of subnet IDs or Name tags",
        "one set per ALB (order ignored); different sets, or subnets AWS cannot resolve, fail the whole group (model_build_load_balancer.go:243)"),
    e!("security-groups", CONFLICT, Kind::List, "a comma-separated list of security group IDs or Name tags",
        "one list per ALB (order matters); different lists, or groups AWS cannot resolve, fail the whole group (model_build_load_balancer.go:353)"),
    e!("manage-backend-security-group-rules", CONFLICT, Kind::Bool, BOOL,
        "one per ALB; different values fail the whole group (model_builder.go:595)"),
    e!("customer-owned-ipv4-pool", CONFLICT, Kind::NonEmpty, "a non-empty customer-owned IPv4 pool ID",
        "one per ALB; empty or different values fail the whole group (model_build_load_balancer.go:367, :377)"),
    e!("ipam-ipv4-pool-id", CONFLICT, Kind::Str, "an IPAM pool ID (empty means unset)",
        "one per ALB; different values fail the whole group (model_build_ipam.go:23)"),
    e!("load-balancer-attributes", MERGE, Kind::LbAttributes, MAP,
        "merged per attribute into the ALB; two Ingresses giving one attribute different values fail the whole group (model_build_load_balancer_attributes.go:37); deletion_protection.enabled=true on a deleted Ingress fails the group until removed (model_builder.go:298-306)"),
    e!("minimum-load-balancer-capacity", CONFLICT, Kind::Capacity, "CapacityUnits=<int32>",
        "one per ALB; different values fail the whole group (model_build_load_balancer_capacity_reservation.go:56)"),
    e!("tags", MERGE, Kind::Tags, MAP,
        "merged per key onto the ALB, its listeners and security group; one key with two values fails the whole group (model_build_tags.go:22); keys in --external-managed-tags fail it too (model_build_tags.go:97)",
        Some( "on a Service: that Service's target group only, the Service's value winning per key (model_build_tags.go:55-75)" )),
    e!("wafv2-acl-arn", CONFLICT, Kind::WafArn, "a WAFv2 web ACL ARN, or none",
        "one per ALB; different values fail the whole group (model_build_load_balancer_addons.go:71)"),
    e!("wafv2-acl-name", CONFLICT, Kind::Str, "a WAFv2 web ACL name, or none",
        "one per ALB and it overrides every wafv2-acl-arn of the group; different values, or a name AWS cannot find, fail the whole group (model_build_load_balancer_addons.go:77, :87)"),
    e!("waf-acl-id", CONFLICT, Kind::Str, "a WAF classic web ACL ID, or none",
        "one per ALB; different values fail the whole group (model_build_load_balancer_addons.go:122)"),
    e!("web-acl-id", CONFLICT, Kind::Str, "a WAF classic web ACL ID, or none (deprecated spelling of waf-acl-id)",
        "read when waf-acl-id is absent; different values fail the whole group (model_build_load_balancer_addons.go:122)"),
    e!("shield-advanced-protection", CONFLICT, Kind::Bool, BOOL,
        "one per ALB; different values fail the whole group (model_build_load_balancer_addons.go:157)"),
    // --- listeners: merged per port ------------------------------------------------------
    e!("listen-ports", MERGE, Kind::ListenPorts, "a JSON list of {\"HTTP\"|\"HTTPS\": port 1..65535}, e.g. [{\"HTTP\": 80}, {\"HTTPS\": 443}]",
        "the group's listeners are the union of every Ingress's ports; one port with two protocols fails the whole group (model_builder.go:423)"),
    e!("certificate-arn", MERGE, Kind::CertArns, "a comma-separated list of ACM certificate ARNs",
        "added to every HTTPS listener of the Ingress; the first Ingress in group order that has one sets the listener's default certificate (model_builder.go:403-480); without it, HTTPS hosts need a discoverable ACM certificate or the group fails (cert_discovery.go:92)"),
    e!("ssl-policy", CONFLICT, Kind::Str, "an ELB security policy name, e.g. ELBSecurityPolicy-TLS13-1-2-2021-06",
        "one per HTTPS port; different values fail the whole group (model_builder.go:456)"),
    e!("ssl-redirect", CONFLICT, Kind::SslRedirect, "an HTTPS listen port (1..65535)",
        "one per ALB: turns EVERY HTTP listener of the group into a redirect and drops its rules (model_build_listener_rules.go:20); different values, or a port that is not an HTTPS listener of the group, fail the whole group (model_builder.go:539-546)"),
    e!("inbound-cidrs", CONFLICT, Kind::Cidrs, "a comma-separated list of CIDRs",
        "one set per listener port; different sets fail the whole group (model_builder.go:435), an invalid CIDR fails it too (model_build_listener.go:291)"),
    e!("security-group-prefix-lists", CONFLICT, Kind::List, "a comma-separated list of managed prefix list IDs",
        "one set per listener port; different sets fail the whole group (model_builder.go:446)"),
    e!("mutual-authentication", CONFLICT, Kind::MutualAuthentication, "a JSON list of {\"port\": 443, \"mode\": \"off\"|\"passthrough\"|\"verify\", \"trustStore\": ARN or name (verify only), \"ignoreClientCertificateExpiry\": bool (verify only), \"advertiseTrustStoreCaNames\": \"on\"|\"off\" (verify only)}",
        "one per HTTPS port; different settings fail the whole group (model_builder.go:486); a trust store name AWS cannot resolve fails it too (model_build_listener.go:443)"),
    family!("listener-attributes.", "listener-attributes.<PROTOCOL>-<port>", MERGE, Kind::Map, MAP,
        "merged per attribute into the listener PROTOCOL-port; one attribute with two values fails the whole group (model_build_listener.go:488)",
        None),
    e!("create-acm-cert", MERGE, Kind::LenientBool, BOOL,
        "with the EnableCertificateManagement gate: requests an ACM certificate for the Ingress's hosts and adds it to the shared HTTPS listener; no host fails the whole group (model_build_certificates.go:32); an invalid value counts as false (model_builder.go:322)"),
    e!("acm-pca-arn", MERGE, Kind::Str, "an ACM private CA ARN",
        "the CA of the certificate create-acm-cert requests (model_build_certificates.go:99)"),
    // --- frontend NLB: read only when enable-frontend-nlb is true in the group -------------
    e!("enable-frontend-nlb", CONFLICT, Kind::Bool, BOOL,
        "one per group; different values fail the whole group (model_build_frontend_nlb.go:84)"),
    e!("frontend-nlb-scheme", CONFLICT, Kind::OneOf(SCHEMES), "internet-facing or internal",
        "one per group; different values fail the whole group (model_build_frontend_nlb.go:855)"),
    e!("frontend-nlb-subnets", CONFLICT, Kind::List, LIST,
        "one set per group; different sets fail the whole group (model_build_frontend_nlb.go:115)"),
    e!("frontend-nlb-security-groups", CONFLICT, Kind::List, LIST,
        "one list per group; different lists fail the whole group (model_build_frontend_nlb.go:369)"),
    e!("frontend-nlb-eip-allocations", CONFLICT, Kind::List, LIST,
        "one set per group, internet-facing only, as many as subnets; anything else fails the whole group (model_build_frontend_nlb.go:145-186)"),
    e!("frontend-nlb-attributes", CONFLICT, Kind::NlbAttributes, MAP,
        "one map per group, compared whole: once an Ingress sets it, every later Ingress of the group must set the same map or the whole group fails (model_build_frontend_nlb.go:236)"),
    e!("frontend-nlb-tags", CONFLICT, Kind::Tags, MAP,
        "one map per group among the Ingresses that set it; different maps fail the whole group (model_build_frontend_nlb.go:906)"),
    e!("frontend-nlb-listener-port-mapping", MERGE, Kind::PortMapping, "comma-separated nlbPort=albPort pairs of 32-bit integers",
        "merged per NLB port; one NLB port mapped to two ALB ports fails the whole group (model_build_frontend_nlb.go:582)"),
    e!("frontend-nlb-healthcheck-port", CONFLICT, Kind::NlbHealthCheckPort, "traffic-port or a port number",
        "one per NLB listener; different values fail the whole group (model_build_frontend_nlb.go:879)"),
    e!("frontend-nlb-healthcheck-protocol", CONFLICT, Kind::OneOf(HTTP_HTTPS), "HTTP or HTTPS",
        "one per NLB listener; different values fail the whole group (model_build_frontend_nlb.go:552)"),
    e!("frontend-nlb-healthcheck-path", CONFLICT, Kind::HealthCheckPath, "a path starting with /",
        "one per NLB listener; different values fail the whole group (model_build_frontend_nlb.go:879)"),
    e!("frontend-nlb-healthcheck-interval-seconds", CONFLICT, Kind::Bounded(5, 300), "an integer 5..300",
        "one per NLB listener; different values fail the whole group (model_build_frontend_nlb.go:879)"),
    e!("frontend-nlb-healthcheck-timeout-seconds", CONFLICT, Kind::Bounded(2, 120), "an integer 2..120",
        "one per NLB listener; different values fail the whole group (model_build_frontend_nlb.go:879)"),
    e!("frontend-nlb-healthcheck-healthy-threshold-count", CONFLICT, Kind::Bounded(2, 10), "an integer 2..10",
        "one per NLB listener; different values fail the whole group (model_build_frontend_nlb.go:879)"),
    e!("frontend-nlb-healthcheck-unhealthy-threshold-count", CONFLICT, Kind::Bounded(2, 10), "an integer 2..10",
        "one per NLB listener; different values fail the whole group (model_build_frontend_nlb.go:879)"),
    e!("frontend-nlb-healthcheck-success-codes", CONFLICT, Kind::NlbSuccessCodes, "HTTP codes 200..599: 200, 200,202 or 200-299",
        "one per NLB listener; different values fail the whole group (model_build_frontend_nlb.go:879)"),
    // --- membership ------------------------------------------------------------------------
    e!("group.name", Reach::Membership, Kind::GroupName, "a group name: lower-case letters, digits, '-' and '.', starting and ending alphanumeric, at most 63 characters",
        "puts the Ingress on the group's shared ALB; an invalid name silently takes the Ingress out of every group (group_loader.go:156-162)"),
    e!("group.order", Reach::Membership, Kind::GroupOrder, "an integer -1000..1000",
        "orders this Ingress's rules against every other Ingress of the group (lower first); a non-integer or out-of-range value fails the whole group (group_loader.go:284-292)"),
    // --- routing -------------------------------------------------------------------------------
    family!("actions.", "actions.<name>", Reach::Routing, Kind::Action, "a JSON action: {\"type\": \"forward\"|\"redirect\"|\"fixed-response\", ...} (forwardConfig.targetGroups of {serviceName, servicePort, weight} or {targetGroupARN|targetGroupName, weight}; redirectConfig {host, path, port, protocol, query, statusCode}; fixedResponseConfig {contentType, messageBody, statusCode})",
        "the action of every path whose backend is service <name> with port name use-annotation; a forward may name any target group ARN of the account (enhanced_backend_builder.go:201-219)",
        None),
    family!("conditions.", "conditions.<service>", Reach::Routing, Kind::Conditions, "a JSON list of rule conditions {\"field\": \"host-header\"|\"path-pattern\"|\"http-header\"|\"http-request-method\"|\"query-string\"|\"source-ip\", \"<field>Config\": {...}}",
        "extra conditions on every rule whose backend is <service>; host-header values are ADDED to the rule's host, so they can match any host (model_build_listener_rules.go:152-199)",
        None),
    family!("transforms.", "transforms.<service>", Reach::Routing, Kind::Transforms, "a JSON list of {\"type\": \"host-header-rewrite\"|\"url-rewrite\", \"<type>Config\": {\"rewrites\": [{\"regex\", \"replace\"}]}}",
        "rewrites requests of every rule whose backend is <service> (enhanced_backend_builder.go:185-198)",
        None),
    e!("use-regex-path-match", Reach::Routing, Kind::Bool, BOOL,
        "makes ImplementationSpecific paths regular expressions (model_build_listener_rules.go:255-258)"),
    // --- this Ingress's own rules and target groups ---------------------------------------------
    e!("target-type", OWN, Kind::OneOf(&["instance", "ip"]), "instance or ip",
        "this Ingress's target groups (model_build_target_group.go:255-272); instance with a ClusterIP Service fails the whole group (model_build_target_group.go:205-209)",
        Some(SVC_TG)),
    e!("backend-protocol", OWN, Kind::OneOf(HTTP_HTTPS), "HTTP or HTTPS",
        "this Ingress's target groups (model_build_target_group.go:318-329)",
        Some(SVC_TG)),
    e!("backend-protocol-version", OWN, Kind::OneOf(&["HTTP1", "HTTP2", "GRPC"]), "HTTP1, HTTP2 or GRPC",
        "this Ingress's target groups (model_build_target_group.go:331-344)",
        Some(SVC_TG)),
    e!("target-group-attributes", OWN, Kind::Map, MAP,
        "this Ingress's target groups; keys and values are checked by AWS when deployed (model_build_target_group.go:492-505)",
        Some(SVC_TG)),
    e!("healthcheck-port", OWN, Kind::HealthCheckPort, "traffic-port, a port number or a Service port name",
        "this Ingress's target groups; a port name the Service lacks fails the whole group (model_build_target_group.go:398-408)",
        Some(SVC_TG)),
    e!("healthcheck-protocol", OWN, Kind::OneOf(HTTP_HTTPS), "HTTP or HTTPS",
        "this Ingress's target groups (model_build_target_group.go:411-422)",
        Some(SVC_TG)),
    e!("healthcheck-path", OWN, Kind::HealthCheckPath, "a path starting with /",
        "this Ingress's target groups (model_build_target_group.go:424-434)",
        Some(SVC_TG)),
    e!("healthcheck-interval-seconds", OWN, Kind::Bounded(5, 300), "an integer 5..300",
        "this Ingress's target groups (model_build_target_group.go:456-463)",
        Some(SVC_TG)),
    e!("healthcheck-timeout-seconds", OWN, Kind::Bounded(2, 120), "an integer 2..120",
        "this Ingress's target groups (model_build_target_group.go:465-472)",
        Some(SVC_TG)),
    e!("healthy-threshold-count", OWN, Kind::Bounded(2, 10), "an integer 2..10",
        "this Ingress's target groups (model_build_target_group.go:474-481)",
        Some(SVC_TG)),
    e!("unhealthy-threshold-count", OWN, Kind::Bounded(2, 10), "an integer 2..10",
        "this Ingress's target groups (model_build_target_group.go:483-490)",
        Some(SVC_TG)),
    e!("success-codes", OWN, Kind::SuccessCodes, "HTTP codes 200..499 (or gRPC codes 0..99): 200, 200,202 or 200-299",
        "this Ingress's target groups (model_build_target_group.go:436-454)",
        Some(SVC_TG)),
    e!("target-node-labels", OWN, Kind::Map, MAP,
        "node selector of this Ingress's instance-type target groups (model_build_target_group.go:523-539)",
        Some(SVC_TG)),
    e!("multi-cluster-target-group", OWN, Kind::Bool, BOOL,
        "this Ingress's target group bindings (model_build_target_group.go:541-563)",
        Some( "read from the backend Service too; true on either enables it (model_build_target_group.go:541-551)" )),
    family!("target-control-port.", "target-control-port.<service>.<port>", OWN, Kind::Int32, "a 32-bit integer port",
        "the target control port of that Service port's target group; with target-type instance it fails the whole group (model_build_target_group.go:199-201)",
        Some(SVC_TG)),
    e!("auth-type", OWN, Kind::OneOf(&["none", "cognito", "oidc"]), "none, cognito or oidc",
        "authentication before this Ingress's HTTPS rules; cognito without auth-idp-cognito, oidc without its Secret, or any auth together with jwt-validation fail the whole group (model_build_actions.go:36-39, :163, :191-206)",
        Some(SVC_AUTH)),
    e!("auth-idp-cognito", OWN, Kind::CognitoIdp, "a JSON object {\"userPoolARN\", \"userPoolClientID\", \"userPoolDomain\", \"authenticationRequestExtraParams\": {...}}",
        "used with auth-type cognito (auth_config_builder.go:96-106)",
        Some(SVC_AUTH)),
    e!("auth-idp-oidc", OWN, Kind::OidcIdp, "a JSON object {\"issuer\", \"authorizationEndpoint\", \"tokenEndpoint\", \"userInfoEndpoint\", \"secretName\", \"authenticationRequestExtraParams\": {...}}",
        "used with auth-type oidc; secretName is a Secret in the Ingress's namespace with clientID and clientSecret (auth_config_builder.go:108-118)",
        Some(SVC_AUTH)),
    e!("auth-on-unauthenticated-request", OWN, Kind::OnUnauthenticated, "authenticate, allow or deny",
        "used with auth-type (auth_config_builder.go:120-124)",
        Some(SVC_AUTH)),
    e!("auth-scope", OWN, Kind::Str, "space-separated OIDC scopes",
        "used with auth-type (auth_config_builder.go:126-130)",
        Some(SVC_AUTH)),
    e!("auth-session-cookie", OWN, Kind::Str, "a cookie name",
        "used with auth-type (auth_config_builder.go:132-136)",
        Some(SVC_AUTH)),
    e!("auth-session-timeout", OWN, Kind::Int64, "a 64-bit integer of seconds",
        "used with auth-type (auth_config_builder.go:138-144)",
        Some(SVC_AUTH)),
    e!("jwt-validation", OWN, Kind::JwtValidation, "a JSON object {\"jwksEndpoint\", \"issuer\", \"additionalClaims\": [{\"format\": \"single-string\"|\"string-array\"|\"space-separated-values\", \"name\", \"values\": [...]}]}",
        "JWT validation before this Ingress's HTTPS rules (enhanced_backend_builder.go:319-351)"),
    e!("dry-run-plan", OWN, Kind::Str, "nothing: the controller writes it",
        "written (with the WHOLE group's model) onto the group's first Ingress when the IngressPlanAnnotation gate is on, cleared otherwise; never read (controllers/ingress/group_controller.go:237-258)"),
];

/// The entry for `suffix` (the key without the prefix), exact keys before families.
pub fn find(suffix: &str) -> Option<&'static Entry> {
    ENTRIES
        .iter()
        .find(|e| !e.family && e.suffix == suffix)
        .or_else(|| {
            ENTRIES
                .iter()
                .find(|e| e.family && suffix.len() > e.suffix.len() && suffix.starts_with(e.suffix))
        })
}
