//! One `deploy` of a project at a time: a Lease `jockey-deploy-PROJECT` in the project's
//! namespace, held (and renewed) by the running deploy from before its first write to its end.
//!
//! Why: two deploys of one project with different files each build their own image and apply
//! the Deployment; without an arbiter the last apply wins while the other deploy, still waiting
//! for "its" rollout, reports the winner's rollout as its own success. The API server is the
//! arbiter: a Lease `create` lets exactly one of two racing deploys through, and every later
//! change (take-over, release) is an update carrying the resourceVersion it read.
//!
//! A deploy that finds the Lease held watches it for one lease duration (on its own clock, so
//! clock skew between machines does not matter): if the holder renews or releases it, another
//! deploy is running or just ran alongside, and this one fails with the conflict; if nothing
//! moves, the holder died (SIGKILL, a lost laptop) and the Lease is taken over.

use anyhow::{Context, Result, bail};
use jockey_core::ProjectId;
use jockey_core::names::LABEL_PROJECT;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::PostParams;
use kube::{Api, Client};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How long a Lease nobody renews keeps others out.
pub const LEASE_SECONDS: i32 = 15;
/// How often the holder renews it: several renewals fit in one lease duration, so a restart of
/// the API server (seconds) does not lose it.
const RENEW_EVERY: Duration = Duration::from_secs(5);
/// How often a waiting deploy looks at someone else's Lease.
const LOOK_EVERY: Duration = Duration::from_millis(500);

pub fn lease_name(project: &ProjectId) -> String {
    format!("jockey-deploy-{project}")
}

/// What a deploy does about the Lease it found. Pure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Nobody holds it (released): take it with an update preconditioned on this version.
    Take(String),
    /// Someone holds it; keep watching.
    Watch,
    /// The holder renewed, released or handed it over since we first looked: another deploy is
    /// running, or ran alongside this one.
    Conflict,
    /// Unchanged for a whole lease duration: its holder is gone; take it over.
    TakeOver(String),
}

/// `first`: the resourceVersion seen when the Lease was first found held, and how long ago.
pub fn judge(live: &Lease, first: Option<(&str, Duration)>) -> Step {
    let rv = live.metadata.resource_version.clone().unwrap_or_default();
    let spec = live.spec.clone().unwrap_or_default();
    let held = spec
        .holder_identity
        .as_deref()
        .is_some_and(|h| !h.is_empty());
    match first {
        Some((seen, _)) if seen != rv => Step::Conflict,
        _ if !held => Step::Take(rv),
        Some((_, waited)) => {
            let duration = spec.lease_duration_seconds.unwrap_or(LEASE_SECONDS).max(1) as u64;
            if waited >= Duration::from_secs(duration) {
                Step::TakeOver(rv)
            } else {
                Step::Watch
            }
        }
        None => Step::Watch,
    }
}

fn holder_of(l: &Lease) -> String {
    l.spec
        .as_ref()
        .and_then(|s| s.holder_identity.clone())
        .unwrap_or_default()
}

fn now() -> MicroTime {
    MicroTime(k8s_openapi::jiff::Timestamp::now())
}

fn api_code(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(s) => Some(s.code),
        _ => None,
    }
}

/// The Lease as its holder writes it.
fn held_by(
    project: &ProjectId,
    ns: &str,
    holder: &str,
    acquired: bool,
    rv: Option<String>,
) -> Lease {
    Lease {
        metadata: ObjectMeta {
            name: Some(lease_name(project)),
            namespace: Some(ns.to_string()),
            labels: Some(BTreeMap::from([(
                LABEL_PROJECT.to_string(),
                project.to_string(),
            )])),
            resource_version: rv,
            ..Default::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(holder.to_string()),
            lease_duration_seconds: Some(LEASE_SECONDS),
            acquire_time: acquired.then(now),
            renew_time: Some(now()),
            ..Default::default()
        }),
    }
}

/// The Lease while this deploy runs; [`DeployLock::release`] (or the end of the process) ends it.
pub struct DeployLock {
    check: LockCheck,
    renewer: tokio::task::JoinHandle<()>,
}

/// Asks whether this deploy still holds its Lease.
#[derive(Clone)]
pub struct LockCheck {
    api: Api<Lease>,
    name: String,
    holder: String,
    lost: Arc<AtomicBool>,
}

fn conflict(project: &ProjectId, ns: &str, live: &Lease) -> anyhow::Error {
    let renewed = live
        .spec
        .as_ref()
        .and_then(|s| s.renew_time.as_ref())
        .map(|t| t.0.to_string())
        .unwrap_or_else(|| "unknown".into());
    anyhow::anyhow!(
        "conflict: another deploy of project {project} is running in namespace {ns} (Lease \
         {ns}/{} held by {:?}, renewed {renewed}); nothing was written by this one. Only one \
         deploy of a project runs at a time: wait for the other to finish (`kubectl jockey \
         status {project} -n {ns}` shows what it deployed), then deploy again if yours should \
         replace it",
        lease_name(project),
        holder_of(live)
    )
}

/// Takes the project's Lease, or fails with the conflict when another deploy holds it.
pub async fn acquire(
    client: &Client,
    ns: &str,
    project: &ProjectId,
    deadline: Instant,
) -> Result<DeployLock> {
    let api: Api<Lease> = Api::namespaced(client.clone(), ns);
    let name = lease_name(project);
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown-host".into());
    let holder = format!(
        "kubectl-jockey/{host}/{}/{}",
        std::process::id(),
        k8s_openapi::jiff::Timestamp::now().as_nanosecond()
    );
    let rbac = || {
        format!(
            "deploy needs get, create and update on leases.coordination.k8s.io in namespace {ns} \
             (one Lease per project keeps concurrent deploys apart); ask the cluster admin"
        )
    };
    let mut first: Option<(String, Instant)> = None;
    let mut told = false;
    let taken = loop {
        let Some(live) = api
            .get_opt(&name)
            .await
            .with_context(|| format!("reading Lease {ns}/{name}; {}", rbac()))?
        else {
            if first.is_some() {
                // Released and deleted since we looked: someone ran alongside us.
                bail!(
                    "conflict: another deploy of project {project} finished in namespace {ns} \
                     while this one waited for it; nothing was written by this one: deploy \
                     again if yours should replace it"
                );
            }
            match api
                .create(
                    &PostParams::default(),
                    &held_by(project, ns, &holder, true, None),
                )
                .await
            {
                Ok(l) => break l,
                Err(e) if api_code(&e) == Some(409) => continue,
                Err(e) => {
                    return Err(e)
                        .with_context(|| format!("creating Lease {ns}/{name}; {}", rbac()));
                }
            }
        };
        if holder_of(&live) == holder {
            // Our create landed though its answer was lost (and the retry was told 409).
            break live;
        }
        let seen = first.as_ref().map(|(rv, at)| (rv.as_str(), at.elapsed()));
        let rv = match judge(&live, seen) {
            Step::Conflict => return Err(conflict(project, ns, &live)),
            Step::Take(rv) => rv,
            Step::TakeOver(rv) => {
                eprintln!(
                    "Lease {ns}/{name} of {:?} was not renewed for {LEASE_SECONDS}s: that deploy \
                     is gone; taking it over",
                    holder_of(&live)
                );
                rv
            }
            Step::Watch => {
                if first.is_none() {
                    first = Some((
                        live.metadata.resource_version.clone().unwrap_or_default(),
                        Instant::now(),
                    ));
                }
                if !told {
                    eprintln!(
                        "Lease {ns}/{name} is held by {:?}: waiting up to {LEASE_SECONDS}s to see \
                         whether that deploy is still running",
                        holder_of(&live)
                    );
                    told = true;
                }
                if Instant::now() >= deadline {
                    return Err(conflict(project, ns, &live));
                }
                tokio::time::sleep(LOOK_EVERY).await;
                continue;
            }
        };
        match api
            .replace(
                &name,
                &PostParams::default(),
                &held_by(project, ns, &holder, true, Some(rv)),
            )
            .await
        {
            Ok(l) => break l,
            Err(e) if api_code(&e) == Some(409) => {
                let live = api.get_opt(&name).await.ok().flatten();
                return Err(match live {
                    Some(l) => conflict(project, ns, &l),
                    None => anyhow::anyhow!(
                        "conflict: another deploy of project {project} took Lease {ns}/{name} \
                         first; nothing was written by this one: wait for it to finish (`kubectl jockey \
                         status {project} -n {ns}` shows what it deployed), then deploy again if \
                         yours should replace it"
                    ),
                });
            }
            Err(e) => {
                return Err(e).with_context(|| format!("taking Lease {ns}/{name}; {}", rbac()));
            }
        }
    };
    let lost = Arc::new(AtomicBool::new(false));
    let renewer = tokio::spawn(renew(
        api.clone(),
        project.clone(),
        ns.to_string(),
        holder.clone(),
        taken.metadata.resource_version.clone(),
        lost.clone(),
    ));
    Ok(DeployLock {
        check: LockCheck {
            api,
            name,
            holder,
            lost,
        },
        renewer,
    })
}

/// Renews the Lease every [`RENEW_EVERY`], each update carrying the version it last wrote: a
/// failed call (the API server restarting) is retried at the next tick; a 409 means someone took
/// the Lease over, which [`DeployLock::ensure_held`] then reports.
async fn renew(
    api: Api<Lease>,
    project: ProjectId,
    ns: String,
    holder: String,
    mut rv: Option<String>,
    lost: Arc<AtomicBool>,
) {
    let name = lease_name(&project);
    loop {
        tokio::time::sleep(RENEW_EVERY).await;
        let mut lease = held_by(&project, &ns, &holder, false, rv.clone());
        if let Ok(Some(live)) = api.get_opt(&name).await {
            if holder_of(&live) != holder {
                lost.store(true, Ordering::SeqCst);
                return;
            }
            // Keep the acquire time; only the renewal moves.
            if let (Some(s), Some(l)) = (lease.spec.as_mut(), live.spec.as_ref()) {
                s.acquire_time = l.acquire_time.clone();
            }
            lease.metadata.resource_version = live.metadata.resource_version.clone();
        }
        match api.replace(&name, &PostParams::default(), &lease).await {
            Ok(l) => rv = l.metadata.resource_version,
            Err(e) if api_code(&e) == Some(409) => {}
            Err(e) => tracing::debug!("renewing Lease {ns}/{name}: {e}"),
        }
    }
}

impl LockCheck {
    /// Fails with the conflict when another deploy took the Lease over (this one stalled for a
    /// whole lease duration); called before each write and before reporting success.
    pub async fn ensure_held(&self, project: &ProjectId, ns: &str) -> Result<()> {
        let live = self
            .api
            .get_opt(&self.name)
            .await
            .with_context(|| format!("reading Lease {ns}/{}", self.name))?;
        match live {
            Some(l) if holder_of(&l) == self.holder && !self.lost.load(Ordering::SeqCst) => Ok(()),
            Some(l) => Err(conflict(project, ns, &l)),
            None => bail!(
                "conflict: Lease {ns}/{} of this deploy was deleted while it ran; another deploy \
                 of project {project} may have run: deploy again",
                self.name
            ),
        }
    }
}

impl DeployLock {
    pub fn checker(&self) -> LockCheck {
        self.check.clone()
    }

    /// Lets the next deploy start at once: the Lease stays, without a holder (an update with
    /// the version read, so a Lease someone else took over is left to them).
    pub async fn release(self) {
        self.renewer.abort();
        let this = self.check;
        let Ok(Some(mut live)) = this.api.get_opt(&this.name).await else {
            return;
        };
        if holder_of(&live) != this.holder {
            return;
        }
        if let Some(spec) = live.spec.as_mut() {
            spec.holder_identity = None;
            spec.renew_time = Some(now());
        }
        let _ = this
            .api
            .replace(&this.name, &PostParams::default(), &live)
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(holder: Option<&str>, rv: &str) -> Lease {
        Lease {
            metadata: ObjectMeta {
                resource_version: Some(rv.into()),
                ..Default::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: holder.map(str::to_string),
                lease_duration_seconds: Some(15),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn a_released_lease_is_taken_at_once() {
        assert_eq!(judge(&lease(None, "7"), None), Step::Take("7".into()));
        assert_eq!(judge(&lease(Some(""), "7"), None), Step::Take("7".into()));
    }

    #[test]
    fn a_held_lease_is_watched_for_one_duration_then_taken_over() {
        let l = lease(Some("other"), "7");
        assert_eq!(judge(&l, None), Step::Watch);
        assert_eq!(judge(&l, Some(("7", Duration::from_secs(14)))), Step::Watch);
        assert_eq!(
            judge(&l, Some(("7", Duration::from_secs(15)))),
            Step::TakeOver("7".into())
        );
    }

    #[test]
    fn any_change_while_watching_is_a_conflict() {
        // Renewed by its holder, released, or taken by a third deploy: all mean another deploy
        // ran alongside this one.
        for l in [
            lease(Some("other"), "8"),
            lease(None, "8"),
            lease(Some("third"), "8"),
        ] {
            assert_eq!(
                judge(&l, Some(("7", Duration::from_secs(1)))),
                Step::Conflict
            );
            assert_eq!(
                judge(&l, Some(("7", Duration::from_secs(60)))),
                Step::Conflict
            );
        }
    }
}
