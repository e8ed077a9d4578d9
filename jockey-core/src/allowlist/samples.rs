//! Values to try for every key a tenant may set: the edges of its domain first (the smallest
//! and largest admitted, the first refused on either side), then ordinary ones. The property
//! test that applies admitted variants through the real AWS Load Balancer Controller draws its
//! Ingresses from here, so the domains and the samples cannot drift apart.

/// One value of a key and whether its domain admits it alone (in combination it may still be
/// refused: a timeout that is not shorter than the interval, gRPC codes without GRPC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    pub value: &'static str,
    pub alone: bool,
}

const fn ok(value: &'static str) -> Sample {
    Sample { value, alone: true }
}

const fn no(value: &'static str) -> Sample {
    Sample {
        value,
        alone: false,
    }
}

/// The samples of each tenant key on an Ingress (keys without the prefix), edges first.
const TABLE: &[(&str, &[Sample])] = &[
    (
        "healthcheck-path",
        &[
            ok("/"),
            ok("/health"),
            ok("/AWS.ALB/healthcheck"),
            ok("/a-b_c.d~e/f:g@h"),
            no("health"),
            no("/a b"),
            no("/a#b"),
            no(""),
        ],
    ),
    (
        "healthcheck-interval-seconds",
        &[
            ok("5"),
            ok("300"),
            ok("30"),
            no("4"),
            no("301"),
            no("often"),
        ],
    ),
    (
        "healthcheck-timeout-seconds",
        &[ok("2"), ok("120"), ok("10"), no("1"), no("121"), no("5s")],
    ),
    (
        "healthy-threshold-count",
        &[ok("2"), ok("10"), ok("3"), no("1"), no("11")],
    ),
    (
        "unhealthy-threshold-count",
        &[ok("2"), ok("10"), ok("3"), no("1"), no("11")],
    ),
    (
        "success-codes",
        &[
            ok("200"),
            ok("499"),
            ok("200-299"),
            ok("200,202"),
            ok("0"),
            ok("12"),
            ok("0-99"),
            no("500"),
            no("199"),
            no("299-200"),
            no("ok"),
        ],
    ),
    (
        "healthcheck-protocol",
        &[ok("HTTP"), ok("HTTPS"), no("http"), no("TCP")],
    ),
    (
        "healthcheck-port",
        &[
            ok("traffic-port"),
            ok("1"),
            ok("65535"),
            ok("8080"),
            no("0"),
            no("65536"),
            no("http"),
        ],
    ),
    (
        "backend-protocol",
        &[ok("HTTP"), ok("HTTPS"), no("TCP"), no("https")],
    ),
    (
        "backend-protocol-version",
        &[
            ok("HTTP1"),
            ok("HTTP2"),
            ok("GRPC"),
            no("HTTP3"),
            no("grpc"),
        ],
    ),
    ("target-type", &[ok("ip"), no("instance"), no("pod")]),
];

/// The samples of a tenant key on an Ingress (none for other keys).
pub fn ingress(key: &str) -> &'static [Sample] {
    TABLE
        .iter()
        .find(|(k, _)| *k == key)
        .map_or(&[], |(_, s)| s)
}

/// The tenant keys of an Ingress that [`ingress`] has samples for.
pub const INGRESS_KEYS: [&str; 11] = [
    "healthcheck-path",
    "healthcheck-interval-seconds",
    "healthcheck-timeout-seconds",
    "healthy-threshold-count",
    "unhealthy-threshold-count",
    "success-codes",
    "healthcheck-protocol",
    "healthcheck-port",
    "backend-protocol",
    "backend-protocol-version",
    "target-type",
];

/// Keys a tenant may not set at all, with a value the controller would parse: each is refused.
pub const REFUSED: &[(&str, &str)] = &[
    ("group.order", "-1000"),
    ("target-group-attributes", "stickiness.enabled=true"),
    (
        "conditions.svc",
        r#"[{"field":"http-header","httpHeaderConfig":{"httpHeaderName":"X","values":["1"]}}]"#,
    ),
    (
        "actions.svc",
        r#"{"type":"fixed-response","fixedResponseConfig":{"statusCode":"503"}}"#,
    ),
    ("auth-type", "cognito"),
    ("target-node-labels", "a=b"),
    ("scheme", "internal"),
    ("ssl-policy", "ELBSecurityPolicy-2016-08"),
    ("load-balancer-name", "k8s-mine"),
    ("tags", "team=red"),
    ("made-up-key", "1"),
];

/// Samples of the one key a tenant sets on its Service, `tags` (jockey adds its own
/// `deployment` and `hostname` entries where they are missing).
pub const SERVICE_TAGS: &[Sample] = &[
    ok("team=red"),
    ok("team=red,cost-center=42,owner=a.b@example.com"),
    ok("note=with spaces and _.:/=+-@"),
    ok("empty="),
    no("aws:owner=me"),
    no("ingress.k8s.aws/stack=mine"),
    no("deployment=someone-else"),
    no("bad=semi;colon"),
];
