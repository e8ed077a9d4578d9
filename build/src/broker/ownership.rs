//! Whether the namespace that asks for a build owns the project: the same claims the webhook
//! holds (a Lease `project-<id>` in the claims namespace, created by whoever is first, decided
//! by the API server), and the same reservation (a namespace labelled for a project reserves it).
//! A first build of a new project claims it the way the webhook's first admission would.

use jockey_core::claims::{Claim, Standing, standing};
use jockey_core::names::LABEL_PROJECT;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{ListParams, PostParams};
use kube::{Api, Client};

/// Why a namespace may not build a project.
pub enum Denied {
    /// Someone else's: the message, with the fix.
    Refused(String),
    /// The API server did not let us find out: try again.
    Failed(String),
}

pub async fn check(
    client: &Client,
    claims_namespace: &str,
    project: &str,
    namespace: &str,
) -> Result<(), Denied> {
    let reserving = Api::<Namespace>::all(client.clone())
        .list_metadata(&ListParams::default().labels(&format!("{LABEL_PROJECT}={project}")))
        .await
        .map_err(|e| Denied::Failed(format!("listing namespaces labelled for {project}: {e}")))?;
    if let Some(other) = reserving
        .items
        .iter()
        .filter_map(|n| n.metadata.name.as_deref())
        .find(|n| *n != namespace)
    {
        return Err(Denied::Refused(format!(
            "project {project} is reserved by namespace {other} (labelled {LABEL_PROJECT}={project}); \
             a namespace builds only its own projects: choose another project id"
        )));
    }
    let leases: Api<Lease> = Api::namespaced(client.clone(), claims_namespace);
    let want = Claim::project(project, namespace);
    for _ in 0..4 {
        let live = leases
            .get_opt(&want.lease_name())
            .await
            .map_err(|e| Denied::Failed(format!("reading the claim of {project}: {e}")))?;
        let held = live.as_ref().and_then(Claim::from_lease);
        if live.is_some() && held.is_none() {
            return Err(Denied::Failed(format!(
                "Lease {claims_namespace}/{} is not a well-formed jockey claim; the cluster admin \
                 should delete it",
                want.lease_name()
            )));
        }
        match standing(&want, held.as_ref()) {
            Standing::Ours => return Ok(()),
            Standing::Taken(other) => {
                return Err(Denied::Refused(format!(
                    "project {project} belongs to {}; a namespace builds only its own projects: \
                     choose another project id",
                    other.describe_holder()
                )));
            }
            Standing::Free => {
                let now = MicroTime(k8s_openapi::jiff::Timestamp::now());
                match leases
                    .create(
                        &PostParams::default(),
                        &want.to_lease(claims_namespace, now),
                    )
                    .await
                {
                    Ok(_) => return Ok(()),
                    // Someone was first: look at who.
                    Err(kube::Error::Api(s)) if s.code == 409 => continue,
                    Err(e) => {
                        return Err(Denied::Failed(format!("claiming project {project}: {e}")));
                    }
                }
            }
        }
    }
    Err(Denied::Failed(format!(
        "the claim of {project} kept changing; try again"
    )))
}
