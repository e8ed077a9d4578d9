//! Claims: a project id belongs to the first namespace that claims it, a host to the first
//! project (in its namespace) that serves it, and the API server itself decides who is first.
//!
//! A claim is a `coordination.k8s.io/v1` Lease in the webhook's namespace, named after what it
//! claims (`project-<id>`, `host-<hash>`), holding the claimant in `spec.holderIdentity`. The
//! validating webhook creates it during admission (never for a dry run: `sideEffects:
//! NoneOnDryRun`); two namespaces that create the same project at the same instant, through one
//! webhook replica or two with separate caches, race on one `create`, and the API server answers
//! the loser with 409 AlreadyExists. A cache of the Leases only speeds up the answer for the
//! common case and for dry runs; it never decides a first claim.
//!
//! A claim is released when nothing of its holder needs it any more (the project's objects are
//! gone from its namespace: `kubectl jockey delete`, or the namespace deleted), after a grace
//! period that covers an admission whose object is not stored yet. Everything here is pure; the
//! webhook does the API calls.

mod evidence;
pub use evidence::{Evidence, Seen};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Label on every claim Lease: `project` or `host`.
pub const LABEL_CLAIM: &str = "jockey.agentops.ai/claim";
/// The claimed host, on a host claim (its name is a hash: hosts may be longer than a label).
pub const ANNOTATION_HOST: &str = "jockey.agentops.ai/host";
/// The claimed project, on a project claim, and the holding project, on a host claim.
pub const ANNOTATION_PROJECT: &str = "jockey.agentops.ai/project";
/// The holder's namespace.
pub const ANNOTATION_NAMESPACE: &str = "jockey.agentops.ai/namespace";
/// The default time a claim younger than which is never released as unused: its object may
/// still be on its way from admission to storage.
pub const RELEASE_GRACE_SECONDS: i64 = 120;
/// How long an admitted object may take from the claim check to storage, with room for clock
/// skew between webhook replicas: the part of the grace a cached claim is never trusted in.
pub const TRUST_MARGIN_SECONDS: i64 = 60;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ClaimKind {
    Project,
    Host,
}

impl ClaimKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ClaimKind::Project => "project",
            ClaimKind::Host => "host",
        }
    }
}

/// Who holds a claim: a namespace, and for a host the project in it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Holder {
    pub namespace: String,
    pub project: String,
}

impl Holder {
    /// `spec.holderIdentity`: `namespace/project`.
    pub fn identity(&self) -> String {
        format!("{}/{}", self.namespace, self.project)
    }

    fn parse(identity: &str) -> Option<Self> {
        let (namespace, project) = identity.split_once('/')?;
        (!namespace.is_empty() && !project.is_empty()).then(|| Self {
            namespace: namespace.to_string(),
            project: project.to_string(),
        })
    }
}

/// One claim: what, and who.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Claim {
    pub kind: ClaimKind,
    /// The project id or the host.
    pub subject: String,
    pub holder: Holder,
}

impl Claim {
    pub fn project(project: &str, namespace: &str) -> Self {
        Self {
            kind: ClaimKind::Project,
            subject: project.to_string(),
            holder: Holder {
                namespace: namespace.to_string(),
                project: project.to_string(),
            },
        }
    }

    pub fn host(host: &str, project: &str, namespace: &str) -> Self {
        Self {
            kind: ClaimKind::Host,
            subject: host.to_ascii_lowercase(),
            holder: Holder {
                namespace: namespace.to_string(),
                project: project.to_string(),
            },
        }
    }

    /// The Lease's name: the claim's identity in the API server, so that two claims of one
    /// subject collide on `create`.
    pub fn lease_name(&self) -> String {
        lease_name(self.kind, &self.subject)
    }

    /// Whether `other` (the live claim of the same subject) is this claimant's: a project claim
    /// is the namespace's, a host claim the project's in that namespace.
    pub fn held_by_same(&self, other: &Claim) -> bool {
        match self.kind {
            ClaimKind::Project => self.holder.namespace == other.holder.namespace,
            ClaimKind::Host => self.holder == other.holder,
        }
    }

    /// "project demo in namespace team-a", for messages.
    pub fn describe_holder(&self) -> String {
        match self.kind {
            ClaimKind::Project => format!("namespace {}", self.holder.namespace),
            ClaimKind::Host => format!(
                "project {} in namespace {}",
                self.holder.project, self.holder.namespace
            ),
        }
    }

    /// The Lease that records this claim, acquired at `now` (RFC 3339 with microseconds).
    pub fn to_lease(&self, namespace: &str, now: MicroTime) -> Lease {
        let mut annotations = BTreeMap::from([
            (
                ANNOTATION_NAMESPACE.to_string(),
                self.holder.namespace.clone(),
            ),
            (ANNOTATION_PROJECT.to_string(), self.holder.project.clone()),
        ]);
        if self.kind == ClaimKind::Host {
            annotations.insert(ANNOTATION_HOST.to_string(), self.subject.clone());
        }
        Lease {
            metadata: ObjectMeta {
                name: Some(self.lease_name()),
                namespace: Some(namespace.to_string()),
                labels: Some(BTreeMap::from([(
                    LABEL_CLAIM.to_string(),
                    self.kind.as_str().to_string(),
                )])),
                annotations: Some(annotations),
                ..Default::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(self.holder.identity()),
                acquire_time: Some(now.clone()),
                renew_time: Some(now),
                ..Default::default()
            }),
        }
    }

    /// The claim a Lease records; `None` for a Lease that is not a well-formed claim.
    pub fn from_lease(lease: &Lease) -> Option<Self> {
        let kind = match lease.metadata.labels.as_ref()?.get(LABEL_CLAIM)?.as_str() {
            "project" => ClaimKind::Project,
            "host" => ClaimKind::Host,
            _ => return None,
        };
        let holder = Holder::parse(lease.spec.as_ref()?.holder_identity.as_deref()?)?;
        let annotations = lease.metadata.annotations.as_ref();
        let subject = match kind {
            ClaimKind::Project => holder.project.clone(),
            ClaimKind::Host => annotations?.get(ANNOTATION_HOST)?.clone(),
        };
        let claim = Self {
            kind,
            subject,
            holder,
        };
        // A Lease whose name does not match its content is not trusted as a claim.
        (lease.metadata.name.as_deref() == Some(claim.lease_name().as_str())).then_some(claim)
    }
}

/// `project-<id>` or `host-<first 32 hex digits of the SHA-256 of the host>`.
pub fn lease_name(kind: ClaimKind, subject: &str) -> String {
    match kind {
        ClaimKind::Project => format!("project-{subject}"),
        ClaimKind::Host => {
            let digest = Sha256::digest(subject.to_ascii_lowercase().as_bytes());
            format!("host-{}", &hex::encode(digest)[..32])
        }
    }
}

/// What a claimant learns from the live claim of its subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    /// Nobody holds it (as far as the caller knows).
    Free,
    /// The claimant holds it already.
    Ours,
    /// Someone else does.
    Taken(Claim),
}

pub fn standing(want: &Claim, live: Option<&Claim>) -> Standing {
    match live {
        None => Standing::Free,
        Some(c) if want.held_by_same(c) => Standing::Ours,
        Some(c) => Standing::Taken(c.clone()),
    }
}

/// The claims the webhook's cache holds, by Lease name.
#[derive(Debug, Default, Clone)]
pub struct ClaimIndex {
    by_name: HashMap<String, (Claim, Option<i64>)>,
}

impl ClaimIndex {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    /// Records a Lease; returns whether it was a claim.
    pub fn upsert(&mut self, lease: &Lease) -> bool {
        let name = lease.metadata.name.clone().unwrap_or_default();
        match Claim::from_lease(lease) {
            Some(c) => {
                self.by_name.insert(name, (c, renewed_at(lease)));
                true
            }
            None => {
                self.by_name.remove(&name);
                false
            }
        }
    }

    pub fn remove(&mut self, lease_name: &str) {
        self.by_name.remove(lease_name);
    }

    pub fn get(&self, kind: ClaimKind, subject: &str) -> Option<&Claim> {
        self.by_name.get(&lease_name(kind, subject)).map(|(c, _)| c)
    }

    /// The cached claim of `want`'s subject with its last renewal (Unix seconds).
    pub fn get_renewed(&self, want: &Claim) -> Option<(&Claim, Option<i64>)> {
        self.by_name.get(&want.lease_name()).map(|(c, t)| (c, *t))
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Claim, Option<i64>)> {
        self.by_name.values().map(|(c, t)| (c, *t))
    }
}

impl InUse {
    /// What the Ingresses of the index need.
    pub fn from_index(index: &crate::index::IngressIndex) -> Self {
        let mut out = Self::default();
        for r in index.records() {
            if let Some(p) = &r.project {
                out.projects.insert((r.namespace.clone(), p.clone()));
                for h in &r.hosts {
                    out.hosts
                        .insert((r.namespace.clone(), p.clone(), h.clone()));
                }
            }
        }
        out
    }
}

/// Unix seconds of the Lease's last renewal (or acquisition).
pub fn renewed_at(lease: &Lease) -> Option<i64> {
    let spec = lease.spec.as_ref()?;
    let t = spec.renew_time.as_ref().or(spec.acquire_time.as_ref())?;
    Some(t.0.as_second())
}

/// Whether an admission may rely on the cached claim instead of writing it: the cache shows
/// `want` held by its claimant, renewed less than `grace - TRUST_MARGIN_SECONDS` ago.
///
/// Why that is safe: a claim is deleted only by a release, which reads the live Lease and
/// requires it to be `grace` old; the live Lease is renewed no earlier than the cache saw, so it
/// cannot be released before `TRUST_MARGIN_SECONDS` from `now`, by which time the admitted
/// object is stored (and then keeps the claim in use). Another namespace cannot hold the subject
/// meanwhile: taking it needs the Lease gone first. Only a cluster admin's own delete of the
/// Lease is not covered, for as long as the watch takes to tell the cache. A grace no longer
/// than the margin trusts nothing (every admission writes, as before).
pub fn trusted_without_write(index: &ClaimIndex, want: &Claim, now: i64, grace: i64) -> bool {
    let window = grace.saturating_sub(TRUST_MARGIN_SECONDS);
    match index.get_renewed(want) {
        Some((held, Some(at))) if want.held_by_same(held) => {
            let age = now.saturating_sub(at);
            // A renewal "from the future" (a replica's clock ahead) counts from now.
            age.max(0) < window
        }
        _ => false,
    }
}

/// What exists in the cluster that needs claims: `(namespace, project)` pairs with any labelled
/// Deployment, Service or Ingress, and `(namespace, project, host)` for each host an Ingress
/// serves.
#[derive(Debug, Default, Clone)]
pub struct InUse {
    pub projects: BTreeSet<(String, String)>,
    pub hosts: BTreeSet<(String, String, String)>,
}

/// The claims nothing needs any more and that are at least `grace` seconds old: the ones to
/// release. A claim without a time counts as old.
pub fn unused<'a>(
    claims: impl IntoIterator<Item = (&'a Claim, Option<i64>)>,
    in_use: &InUse,
    now: i64,
    grace: i64,
) -> Vec<Claim> {
    let mut out: Vec<Claim> = claims
        .into_iter()
        .filter(|(_, at)| at.is_none_or(|t| now - t >= grace))
        .filter(|(c, _)| {
            let h = &c.holder;
            match c.kind {
                ClaimKind::Project => !in_use
                    .projects
                    .contains(&(h.namespace.clone(), h.project.clone())),
                ClaimKind::Host => !in_use.hosts.contains(&(
                    h.namespace.clone(),
                    h.project.clone(),
                    c.subject.clone(),
                )),
            }
        })
        .map(|(c, _)| c.clone())
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests;
