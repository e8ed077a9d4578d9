//! The API-server side of claims (`jockey_core::claims` holds the model): securing the claims an
//! admission needs, and releasing the ones nothing needs any more.
//!
//! Securing is a `create` of the claim's Lease: the API server lets exactly one of two racing
//! creates through and answers the other 409, whichever webhook replica sent it. A claim that
//! exists is re-read: the claimant's own is renewed (an update with its resourceVersion, so a
//! release that raced with it fails instead of deleting a claim just used), anyone else's
//! denies the request.
//!
//! Before any of that, what the review names must exist in the API server (`prove`: the
//! namespace of a CREATE, the object of an UPDATE; `jockey_core::claims::Evidence` decides): a
//! review that did not come through the API server records nothing for what does not exist.

use crate::state::App;
use jockey_core::claims::{self, Claim, Evidence, InUse, Seen, Standing};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Service};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, ListParams, PostParams, Preconditions};
use kube::{Api, Client};
use std::sync::Arc;
use std::time::Duration;

/// How a claim could not be secured.
#[derive(Debug)]
pub enum Lost {
    /// Someone else holds it: their claim.
    Taken(Claim),
    /// The API server did not let us find out.
    Failed(String),
    /// What the review names does not exist in the API server: the cause.
    Unproven(String),
}

fn now() -> MicroTime {
    MicroTime(Timestamp::now())
}

fn api_code(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(s) => Some(s.code),
        _ => None,
    }
}

fn seen<K>(meta: Option<kube::core::PartialObjectMeta<K>>) -> Seen {
    match meta {
        None => Seen::Missing,
        Some(m) => Seen::Present {
            deleting: m.metadata.deletion_timestamp.is_some(),
            project: m
                .metadata
                .labels
                .and_then(|l| l.get(jockey_core::names::LABEL_PROJECT).cloned()),
        },
    }
}

/// What the API server shows of what `evidence` names (one GET of its metadata), judged: `Ok`
/// when the review's claims may be written.
pub async fn prove(leases: &Api<Lease>, evidence: &Evidence) -> Result<(), Lost> {
    let client = Client::from(leases.clone());
    let what = evidence.describe();
    let failed = |e: kube::Error| Lost::Failed(format!("reading {what}: {e}"));
    let seen = match evidence {
        Evidence::Namespace { namespace } => seen(
            Api::<Namespace>::all(client)
                .get_metadata_opt(namespace)
                .await
                .map_err(failed)?,
        ),
        Evidence::Object {
            kind,
            namespace,
            name,
            ..
        } => match kind.as_str() {
            "Deployment" => seen(
                Api::<Deployment>::namespaced(client, namespace)
                    .get_metadata_opt(name)
                    .await
                    .map_err(failed)?,
            ),
            "Service" => seen(
                Api::<Service>::namespaced(client, namespace)
                    .get_metadata_opt(name)
                    .await
                    .map_err(failed)?,
            ),
            "Ingress" => seen(
                Api::<Ingress>::namespaced(client, namespace)
                    .get_metadata_opt(name)
                    .await
                    .map_err(failed)?,
            ),
            other => {
                return Err(Lost::Failed(format!(
                    "{other} is not a kind jockey claims for (a bug in jockey-webhook)"
                )));
            }
        },
    };
    evidence.judge(&seen).map_err(Lost::Unproven)
}

/// Secures every claim, in order; the first one lost ends it. Each comes with whether the cache
/// shows it held by the claimant already (then it is read and renewed first, not created).
pub async fn secure_all(api: &Api<Lease>, wanted: &[(Claim, bool)]) -> Result<(), (Claim, Lost)> {
    for (claim, cached_ours) in wanted {
        secure(api, claim, *cached_ours)
            .await
            .map_err(|l| (claim.clone(), l))?;
    }
    Ok(())
}

/// Creates the claim, or renews it when it is already the claimant's. `cached_ours` (the cache
/// shows it held by the claimant) skips the create that would only answer 409: the live Lease
/// decides either way.
pub async fn secure(api: &Api<Lease>, claim: &Claim, cached_ours: bool) -> Result<(), Lost> {
    let name = claim.lease_name();
    let namespace = api.namespace().unwrap_or_default().to_string();
    // Each round ends in success, a loss, or a change by someone else that the next round sees;
    // a handful of rounds only runs out under a storm of creates and releases of one name.
    for round in 0..8 {
        if !(cached_ours && round == 0) {
            match api
                .create(&PostParams::default(), &claim.to_lease(&namespace, now()))
                .await
            {
                Ok(_) => return Ok(()),
                Err(e) if api_code(&e) == Some(409) => {}
                Err(e) => {
                    return Err(Lost::Failed(format!(
                        "creating Lease {namespace}/{name}: {e}"
                    )));
                }
            }
        }
        let live = match api.get_opt(&name).await {
            Ok(Some(l)) => l,
            // Released between our create and our read: create again.
            Ok(None) => continue,
            Err(e) => {
                return Err(Lost::Failed(format!(
                    "reading Lease {namespace}/{name}: {e}"
                )));
            }
        };
        let Some(held) = Claim::from_lease(&live) else {
            return Err(Lost::Failed(format!(
                "Lease {namespace}/{name} exists but is not a well-formed jockey claim; the cluster admin should delete it"
            )));
        };
        match claims::standing(claim, Some(&held)) {
            Standing::Taken(other) => return Err(Lost::Taken(other)),
            Standing::Free => continue,
            Standing::Ours => {
                let mut renewed = live.clone();
                if let Some(spec) = renewed.spec.as_mut() {
                    spec.renew_time = Some(now());
                }
                match api.replace(&name, &PostParams::default(), &renewed).await {
                    Ok(_) => return Ok(()),
                    // Renewed or released by someone else meanwhile: look again.
                    Err(e) if matches!(api_code(&e), Some(409) | Some(404)) => continue,
                    Err(e) => {
                        return Err(Lost::Failed(format!(
                            "renewing Lease {namespace}/{name}: {e}"
                        )));
                    }
                }
            }
        }
    }
    Err(Lost::Failed(format!(
        "Lease {namespace}/{name} kept changing under contention"
    )))
}

/// Releases, every `interval` and soon after an Ingress goes away, the claims whose holder has
/// nothing left that needs them.
pub async fn release_loop(client: Client, app: Arc<App>, interval: Duration, grace: Duration) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = app.ingress_gone.notified() => {
                // Let the rest of a `delete` (Service, Deployment) land first.
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
        if !app.is_ready() {
            continue;
        }
        if let Err(e) = release_unused(&client, &app, grace).await {
            tracing::warn!(error = %e, "releasing unused claims failed; retrying later");
        }
    }
}

async fn release_unused(client: &Client, app: &App, grace: Duration) -> anyhow::Result<()> {
    let now_s = Timestamp::now().as_second();
    let grace_s = i64::try_from(grace.as_secs()).unwrap_or(i64::MAX);
    let candidates = {
        let in_use = InUse::from_index(&app.index_read());
        let cache = app.claims_read();
        claims::unused(cache.iter(), &in_use, now_s, grace_s)
    };
    let leases: Api<Lease> = Api::namespaced(client.clone(), &app.claims_namespace);
    for claim in candidates {
        let h = &claim.holder;
        if claim.kind == claims::ClaimKind::Project && project_has_objects(client, h).await? {
            continue;
        }
        // Decide on the live Lease: renewed since the cache saw it means in use.
        let name = claim.lease_name();
        let Some(live) = leases.get_opt(&name).await? else {
            continue;
        };
        let young = claims::renewed_at(&live).is_some_and(|t| now_s - t < grace_s);
        if young || Claim::from_lease(&live).as_ref() != Some(&claim) {
            continue;
        }
        let dp = DeleteParams {
            preconditions: Some(Preconditions {
                resource_version: live.metadata.resource_version.clone(),
                uid: live.metadata.uid.clone(),
            }),
            ..Default::default()
        };
        match leases.delete(&name, &dp).await {
            Ok(_) => {
                app.metrics.claim_released(claim.kind.as_str());
                tracing::info!(
                    claim = %name,
                    subject = %claim.subject,
                    holder = %h.identity(),
                    "claim released: nothing of its holder needs it any more"
                );
            }
            Err(e) if matches!(api_code(&e), Some(404) | Some(409)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Whether the holder's namespace still has a labelled Deployment or Service of the project (its
/// Ingresses are in the index already).
async fn project_has_objects(client: &Client, h: &claims::Holder) -> anyhow::Result<bool> {
    let lp = ListParams::default()
        .labels(&format!(
            "{}={}",
            jockey_core::names::LABEL_PROJECT,
            h.project
        ))
        .limit(1);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &h.namespace);
    if !deployments.list_metadata(&lp).await?.items.is_empty() {
        return Ok(true);
    }
    let services: Api<Service> = Api::namespaced(client.clone(), &h.namespace);
    Ok(!services.list_metadata(&lp).await?.items.is_empty())
}
