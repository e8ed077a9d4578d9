//! What the API server must show before an admission writes a claim: the defence against
//! AdmissionReviews that did not come through the API server (SECURITY.md, "forged reviews").
//!
//! The webhook's HTTPS endpoint can be reached by anything that reaches its address; where the
//! API server presents no client certificate (EKS), the webhook cannot tell its reviews from a
//! forger's. It can still refuse to record a claim for what does not exist: the API server only
//! ever sends a review for a namespace that exists (a CREATE), or for an object that exists (an
//! UPDATE). A forged review for a namespace that does not exist, or for an object that does not
//! exist, writes nothing — so a claim cannot be made, or kept alive by re-posting it, for
//! something nobody can deploy through the API server.
//!
//! Pure: the webhook reads what an [`Evidence`] names (one GET) and asks [`Evidence::judge`].

/// What must exist in the API server before a review's claims are created or renewed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Evidence {
    /// A CREATE: the namespace exists and is not being deleted. The object itself cannot exist
    /// yet, so its namespace is all the API server can show.
    Namespace { namespace: String },
    /// An UPDATE: the object the review names exists in its namespace, and its stored project
    /// label is the claim's project, or absent (an object joining the project, which a CREATE
    /// in the same namespace could do as well).
    Object {
        /// `Deployment`, `Service` or `Ingress`.
        kind: String,
        namespace: String,
        name: String,
        project: String,
    },
}

/// What the API server shows of what an [`Evidence`] names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    Missing,
    Present {
        /// It has a deletion timestamp.
        deleting: bool,
        /// For an object, its `jockey.agentops.ai/project` label.
        project: Option<String>,
    },
}

impl Evidence {
    /// The evidence a review's claims need: `create` for a CREATE, else an UPDATE of `kind`
    /// `namespace/name` labelled for `project`.
    pub fn for_review(
        create: bool,
        kind: &str,
        namespace: &str,
        name: &str,
        project: &str,
    ) -> Self {
        if create {
            Evidence::Namespace {
                namespace: namespace.to_string(),
            }
        } else {
            Evidence::Object {
                kind: kind.to_string(),
                namespace: namespace.to_string(),
                name: name.to_string(),
                project: project.to_string(),
            }
        }
    }

    /// "namespace team-a", "Deployment team-a/web", for messages.
    pub fn describe(&self) -> String {
        match self {
            Evidence::Namespace { namespace } => format!("namespace {namespace}"),
            Evidence::Object {
                kind,
                namespace,
                name,
                ..
            } => format!("{kind} {namespace}/{name}"),
        }
    }

    /// `Ok` when what the API server shows lets the claims be written; otherwise the cause, for
    /// the denial.
    pub fn judge(&self, seen: &Seen) -> Result<(), String> {
        let what = self.describe();
        match (self, seen) {
            (_, Seen::Missing) => Err(format!("{what} does not exist in the API server")),
            // The API server refuses every CREATE in a namespace being deleted before any
            // webhook is asked.
            (Evidence::Namespace { .. }, Seen::Present { deleting: true, .. }) => {
                Err(format!("{what} is being deleted"))
            }
            (Evidence::Namespace { .. }, Seen::Present { .. }) => Ok(()),
            // An object being deleted still gets UPDATEs (its finalizers removed): it exists.
            (
                Evidence::Object { project, .. },
                Seen::Present {
                    project: stored, ..
                },
            ) => match stored {
                None => Ok(()),
                Some(p) if p == project => Ok(()),
                Some(p) => Err(format!(
                    "{what} is stored with project {p:?}, not {project:?}"
                )),
            },
        }
    }
}
