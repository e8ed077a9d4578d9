//! Prometheus metrics: admission requests by endpoint, kind, operation and result; latency.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub endpoint: String,
    pub kind: String,
    pub operation: String,
    /// allowed, patched, denied, skipped, bad_request, unavailable, internal_error
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointLabels {
    pub endpoint: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: String,
}

fn latency_histogram() -> Histogram {
    // 0.25 ms .. ~4 s: admission decisions are sub-millisecond; the tail shows lock or CPU
    // starvation long before the API server's timeout.
    Histogram::new(exponential_buckets(0.000_25, 2.0, 15))
}

pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub latency: Family<EndpointLabels, Histogram, fn() -> Histogram>,
    pub cert_reloads: Family<ResultLabels, Counter>,
    /// When the served certificate expires (Unix seconds): alert well before it.
    pub cert_expiry: Gauge,
    pub cert_renewals: Family<ResultLabels, Counter>,
    pub indexed_ingresses: Gauge,
    pub claims: Gauge,
    pub claim_results: Family<ClaimLabels, Counter>,
    pub refused_callers: Family<RefusedLabels, Counter>,
    pub client_ca_reloads: Family<ResultLabels, Counter>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RefusedLabels {
    pub endpoint: String,
    /// no_certificate, name_not_allowed
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClaimLabels {
    /// project, host
    pub kind: String,
    /// secured, trusted (the cache showed it held and fresh: no write), lost, failed,
    /// unproven (what the review names does not exist: nothing written), released
    pub result: String,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("jockey_webhook");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency: Family<EndpointLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(latency_histogram);
        let cert_reloads = Family::<ResultLabels, Counter>::default();
        let cert_expiry = Gauge::default();
        let cert_renewals = Family::<ResultLabels, Counter>::default();
        let indexed_ingresses = Gauge::default();
        let claims = Gauge::default();
        let claim_results = Family::<ClaimLabels, Counter>::default();
        let refused_callers = Family::<RefusedLabels, Counter>::default();
        let client_ca_reloads = Family::<ResultLabels, Counter>::default();
        registry.register(
            "admission_requests",
            "Admission requests by endpoint, kind, operation and result",
            requests.clone(),
        );
        registry.register(
            "admission_duration_seconds",
            "Time to answer an admission request",
            latency.clone(),
        );
        registry.register(
            "certificate_reloads",
            "Serving certificate reloads by result (ok, error)",
            cert_reloads.clone(),
        );
        registry.register(
            "certificate_expiry_timestamp_seconds",
            "When the served certificate expires, in seconds since the Unix epoch",
            cert_expiry.clone(),
        );
        registry.register(
            "certificate_renewals",
            "Renewals of the serving certificate by result (ok; conflict: another replica renewed it first; error)",
            cert_renewals.clone(),
        );
        registry.register(
            "indexed_ingresses",
            "Labelled Ingresses in the watch-fed cache",
            indexed_ingresses.clone(),
        );
        registry.register(
            "claims",
            "Project and host claims in the watch-fed cache",
            claims.clone(),
        );
        registry.register(
            "claim_operations",
            "Claims secured, trusted from the cache without a write, lost to another claimant, failed (API error), unproven (the namespace or object the review names does not exist: nothing written) or released, by kind",
            claim_results.clone(),
        );
        registry.register(
            "unauthenticated_reviews",
            "Admission reviews refused unread because the caller is not the API server (--client-ca-file), by endpoint and reason (no_certificate, name_not_allowed)",
            refused_callers.clone(),
        );
        registry.register(
            "client_ca_reloads",
            "Reloads of --client-ca-file by result (ok, error)",
            client_ca_reloads.clone(),
        );
        Self {
            registry,
            requests,
            latency,
            cert_reloads,
            cert_expiry,
            cert_renewals,
            indexed_ingresses,
            claims,
            claim_results,
            refused_callers,
            client_ca_reloads,
        }
    }

    pub fn observe(&self, endpoint: &str, kind: &str, operation: &str, result: &str, seconds: f64) {
        self.requests
            .get_or_create(&RequestLabels {
                endpoint: endpoint.to_string(),
                kind: kind.to_string(),
                operation: operation.to_string(),
                result: result.to_string(),
            })
            .inc();
        self.latency
            .get_or_create(&EndpointLabels {
                endpoint: endpoint.to_string(),
            })
            .observe(seconds);
    }

    pub fn cert_renewal(&self, result: &str) {
        self.cert_renewals
            .get_or_create(&ResultLabels {
                result: result.to_string(),
            })
            .inc();
    }

    pub fn claim(&self, kind: &str, result: &str) {
        self.claim_results
            .get_or_create(&ClaimLabels {
                kind: kind.to_string(),
                result: result.to_string(),
            })
            .inc();
    }

    pub fn refused_caller(&self, endpoint: &str, reason: &str) {
        self.refused_callers
            .get_or_create(&RefusedLabels {
                endpoint: endpoint.to_string(),
                reason: reason.to_string(),
            })
            .inc();
    }

    pub fn claim_released(&self, kind: &str) {
        self.claim(kind, "released");
    }

    /// The Prometheus/OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
