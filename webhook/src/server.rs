//! The HTTPS server: routes, the admission handlers (thin: the decision is
//! `jockey_core::admission::handle`; with `--client-ca-file`, only for the API server: see
//! client_auth.rs), and an accept loop with graceful shutdown that hands each connection's
//! caller to its requests.

use crate::client_auth::Caller;
use crate::state::{App, ServiceView};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::graceful::GracefulShutdown;
use jockey_core::admission::{self, Endpoint, Env};
use jockey_core::index::{ServiceFacts, ServiceLookup};
use k8s_openapi::api::core::v1::Service;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// Largest request body accepted. The API server's own limit for a request is 3 MiB and an
/// AdmissionReview carries the object twice (object and oldObject) plus its envelope, so 8 MiB
/// leaves room for the largest reviews it can send.
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;
/// How long a request waits for the caches' first sync before the webhook answers 503 (and the
/// webhook configuration's failurePolicy decides). Clearly shorter than the webhook timeout
/// (5 s): the API server gives up at its timeout, so a 503 sent later is never read, and the
/// client gets "context deadline exceeded" instead of the reason.
pub const READY_WAIT: Duration = Duration::from_secs(2);
/// How long shutdown waits for in-flight requests.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(25);
/// How long recording an admission's claims may take before the answer is a denial naming the
/// cause. Under the webhook timeout (5 s): when the API server or its etcd stalls, the claim's
/// write hangs, and without this the API server would give up first and its client would read
/// "context deadline exceeded" instead of the reason (and the handler would linger on).
pub const CLAIM_TIMEOUT: Duration = Duration::from_secs(3);
/// How long reading the Services a review names (that the cache does not hold) may take; a
/// review whose Services cannot be read is denied, naming them.
pub const SERVICE_READ_TIMEOUT: Duration = Duration::from_secs(2);
/// A client that does not finish its TLS handshake in this time is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/mutate", post(mutate))
        .route("/validate", post(validate))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(app)
}

async fn readyz(State(app): State<Arc<App>>) -> Response {
    if app.is_ready() {
        (StatusCode::OK, "ok\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: the Ingress and Namespace caches have not synced yet\n",
        )
            .into_response()
    }
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        app.metrics.encode(),
    )
        .into_response()
}

async fn mutate(
    State(app): State<Arc<App>>,
    caller: Option<Extension<Caller>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let caller = caller.map(|Extension(c)| c);
    admit(app, Endpoint::Mutate, caller.as_ref(), headers, body).await
}

async fn validate(
    State(app): State<Arc<App>>,
    caller: Option<Extension<Caller>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let caller = caller.map(|Extension(c)| c);
    admit(app, Endpoint::Validate, caller.as_ref(), headers, body).await
}

fn plain(status: StatusCode, msg: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        msg + "\n",
    )
        .into_response()
}

async fn admit(
    app: Arc<App>,
    endpoint: Endpoint,
    caller: Option<&Caller>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let start = Instant::now();
    let ep = endpoint.as_str();
    // Before anything of the request is read: a caller that is not the API server learns
    // nothing and changes nothing.
    if let Some(required) = app.callers.as_ref()
        && let Err(refusal) = required.check(caller)
    {
        app.metrics.refused_caller(ep, refusal.reason());
        tracing::warn!(
            endpoint = ep,
            peer = %caller.map(|c| c.addr.to_string()).unwrap_or_default(),
            reason = refusal.reason(),
            "refused an admission review from a caller that is not the API server"
        );
        let status = match refusal {
            crate::client_auth::Refusal::NoCertificate => StatusCode::UNAUTHORIZED,
            crate::client_auth::Refusal::NameNotAllowed(_) => StatusCode::FORBIDDEN,
        };
        return plain(status, required.message(&refusal));
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let is_json = content_type
        .split(';')
        .next()
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        app.metrics
            .observe(ep, "", "", "bad_request", start.elapsed().as_secs_f64());
        tracing::warn!(endpoint = ep, content_type, "rejected: wrong content type");
        return plain(
            StatusCode::BAD_REQUEST,
            format!(
                "Content-Type is {content_type:?}; POST an admission.k8s.io/v1 AdmissionReview as application/json"
            ),
        );
    }
    if !app.wait_ready(READY_WAIT).await {
        app.metrics
            .observe(ep, "", "", "unavailable", start.elapsed().as_secs_f64());
        return plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "jockey-webhook is starting: its Ingress cache has not synced with the API server yet; retry".into(),
        );
    }
    // The decision is pure and fast; it runs under the caches' read locks. A panic would be a
    // bug: it is caught and answered as 500 rather than dropping the connection.
    // The instance ConfigMaps a Deployment names, read first: defaulting fills in the image
    // recorded on them (for the built-in template, the dependency image). One that cannot be
    // read counts as recording nothing.
    let instances = read_instances(&app, &body).await;
    let decide = |read: &[((String, String), ServiceLookup)]| {
        std::panic::catch_unwind(AssertUnwindSafe(|| {
            let index = app.index_read();
            let claims = app.claims_read();
            let namespaces = app.namespaces_read();
            let cache = app.services_read();
            let services = ServiceView {
                cache: &cache,
                read,
            };
            let env = Env {
                cfg: &app.cfg,
                policy: &app.policy,
                index: &index,
                claims: &claims,
                namespaces: &namespaces,
                services: &services,
                images: &instances,
            };
            admission::handle(endpoint, &body, &env)
        }))
    };
    let mut decided = decide(&[]);
    // Services the cache does not hold (not labelled, or not delivered by the watch yet) are
    // read once from the API server, and the review decided again with them; if they cannot be
    // read, the first answer (a denial naming them) stands.
    if let Ok(Ok(h)) = &decided
        && !h.services_needed.is_empty()
        && let Some(read) = read_services(&app, &h.services_needed).await
    {
        decided = decide(&read);
    }
    let decided = match decided {
        Ok(Ok(mut h)) => {
            secure_claims(&app, &mut h).await;
            Ok(Ok(h))
        }
        other => other,
    };
    let seconds = start.elapsed().as_secs_f64();
    match decided {
        Ok(Ok(h)) => {
            app.metrics
                .observe(ep, &h.kind, &h.operation, h.outcome.as_str(), seconds);
            tracing::info!(
                endpoint = ep,
                kind = %h.kind,
                operation = %h.operation,
                object = %h.object,
                result = h.outcome.as_str(),
                reason = h.message.as_deref().unwrap_or(""),
                latency_ms = seconds * 1000.0,
                "admission"
            );
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                h.to_json(),
            )
                .into_response()
        }
        Ok(Err(bad)) => {
            app.metrics.observe(ep, "", "", "bad_request", seconds);
            tracing::warn!(endpoint = ep, error = %bad, "rejected: bad request");
            plain(StatusCode::BAD_REQUEST, bad.0)
        }
        Err(_) => {
            app.metrics.observe(ep, "", "", "internal_error", seconds);
            tracing::error!(endpoint = ep, "admission decision panicked; this is a bug");
            plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "jockey-webhook failed internally; this is a bug, please report it with the object"
                    .into(),
            )
        }
    }
}

/// Reads the named Services from the API server (`None` when it cannot answer in time).
async fn read_instances(app: &App, body: &[u8]) -> Vec<k8s_openapi::api::core::v1::ConfigMap> {
    let (ns, names) = admission::instances_named(body);
    let Some(client) = app
        .client
        .as_ref()
        .filter(|_| !names.is_empty() && !ns.is_empty())
    else {
        return Vec::new();
    };
    let api: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
        kube::Api::namespaced(client.clone(), &ns);
    let read = async {
        let mut out = Vec::new();
        for name in &names {
            match api.get_metadata_opt(name).await {
                Ok(Some(m)) => out.push(k8s_openapi::api::core::v1::ConfigMap {
                    metadata: m.metadata,
                    ..Default::default()
                }),
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(configmap = %format!("{ns}/{name}"), error = %e, "could not read an instance ConfigMap a review names");
                }
            }
        }
        out
    };
    tokio::time::timeout(SERVICE_READ_TIMEOUT, read)
        .await
        .unwrap_or_default()
}

async fn read_services(
    app: &App,
    wanted: &[(String, String)],
) -> Option<Vec<((String, String), ServiceLookup)>> {
    let client = app.client.as_ref()?;
    let read = async {
        let mut out = Vec::with_capacity(wanted.len());
        for (ns, name) in wanted {
            let api: kube::Api<Service> = kube::Api::namespaced(client.clone(), ns);
            let lookup = match api.get_opt(name).await {
                Ok(Some(svc)) => ServiceLookup::Found(ServiceFacts::from_service(&svc)),
                Ok(None) => ServiceLookup::Missing,
                Err(e) => {
                    tracing::warn!(service = %format!("{ns}/{name}"), error = %e, "could not read a Service a review names");
                    return None;
                }
            };
            out.push(((ns.clone(), name.clone()), lookup));
        }
        Some(out)
    };
    tokio::time::timeout(SERVICE_READ_TIMEOUT, read)
        .await
        .ok()
        .flatten()
}

/// Records the claims an allowing answer needs in the API server (the race between two
/// namespaces is decided there, not in any cache); a claim lost or not recordable turns the
/// answer into a denial. A claim the cache shows held by this claimant and freshly renewed is
/// not written again (see `jockey_core::claims::trusted_without_write`): the second and third
/// object of a project cost no Lease write on the admission path.
async fn secure_claims(app: &App, h: &mut admission::Handled) {
    if h.claims.is_empty() {
        return;
    }
    let Some(leases) = app.leases.as_ref() else {
        return;
    };
    let now = k8s_openapi::jiff::Timestamp::now().as_second();
    let mut wanted = Vec::with_capacity(h.claims.len());
    {
        let cache = app.claims_read();
        for c in &h.claims {
            if jockey_core::claims::trusted_without_write(&cache, c, now, app.claim_grace_seconds) {
                app.metrics.claim(c.kind.as_str(), "trusted");
            } else {
                let ours = cache
                    .get(c.kind, &c.subject)
                    .is_some_and(|held| c.held_by_same(held));
                wanted.push((c.clone(), ours));
            }
        }
    }
    let Some(first) = wanted.first().map(|(c, _)| c.clone()) else {
        return;
    };
    // What the review names must exist before anything is written (jockey_core::claims::
    // Evidence): one GET, inside the same time limit as the writes.
    let evidence = h.evidence.clone();
    let prove_then_write = async {
        let Some(evidence) = evidence else {
            let cause =
                "the review's claims came without what proves them (a bug in jockey-webhook)";
            return Err((first.clone(), crate::claims::Lost::Failed(cause.into())));
        };
        crate::claims::prove(leases, &evidence)
            .await
            .map_err(|lost| (first.clone(), lost))?;
        crate::claims::secure_all(leases, &wanted).await
    };
    let secured = match tokio::time::timeout(CLAIM_TIMEOUT, prove_then_write).await {
        Ok(r) => r,
        Err(_) => {
            let cause = format!(
                "the API server did not answer within {}s",
                CLAIM_TIMEOUT.as_secs()
            );
            Err((first, crate::claims::Lost::Failed(cause)))
        }
    };
    match secured {
        Ok(()) => {
            for (c, _) in &wanted {
                app.metrics.claim(c.kind.as_str(), "secured");
            }
        }
        Err((want, crate::claims::Lost::Taken(live))) => {
            app.metrics.claim(want.kind.as_str(), "lost");
            h.lose_claim(&want, &live);
        }
        Err((want, crate::claims::Lost::Unproven(cause))) => {
            app.metrics.claim(want.kind.as_str(), "unproven");
            tracing::warn!(
                claim = %want.lease_name(),
                %cause,
                "refused to record a claim for what does not exist: the review did not come through the API server"
            );
            h.refuse_unproven_claim(&cause);
        }
        Err((want, crate::claims::Lost::Failed(cause))) => {
            app.metrics.claim(want.kind.as_str(), "failed");
            tracing::warn!(claim = %want.lease_name(), %cause, "could not record a claim");
            h.fail_claim(&want, &cause);
        }
    }
}

/// Accepts TLS connections until `shutdown` resolves, then stops accepting and waits (up to
/// [`DRAIN_TIMEOUT`]) for in-flight requests to finish.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    router: Router,
    shutdown: impl Future<Output = ()>,
) {
    let acceptor = TlsAcceptor::from(tls);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (tcp, peer) = match accepted {
                    Ok(x) => x,
                    Err(e) => {
                        // E.g. out of file descriptors: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = tcp.set_nodelay(true);
                let acceptor = acceptor.clone();
                let router = router.clone();
                let watcher = graceful.watcher();
                tokio::spawn(async move {
                    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "TLS handshake timed out");
                            return;
                        }
                    };
                    // Every request of the connection carries what its handshake showed of the
                    // caller, for the admission routes to check (client_auth.rs).
                    let caller = Caller::of(peer, tls.get_ref().1.peer_certificates());
                    let service = hyper::service::service_fn(move |mut req: axum::http::Request<hyper::body::Incoming>| {
                        req.extensions_mut().insert(caller.clone());
                        // A Router is always ready: no poll_ready needed before call.
                        tower::Service::call(&mut router.clone(), req)
                    });
                    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                    let conn = builder.serve_connection(TokioIo::new(tls), service);
                    if let Err(e) = watcher.watch(conn).await {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                });
            }
            _ = &mut shutdown => break,
        }
    }
    drop(listener);
    tracing::info!("shutting down: no new connections; finishing in-flight requests");
    tokio::select! {
        _ = graceful.shutdown() => tracing::info!("all connections closed"),
        _ = tokio::time::sleep(DRAIN_TIMEOUT) => tracing::warn!("drain timeout; closing the remaining connections"),
    }
}
