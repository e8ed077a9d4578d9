//! The build request: how a tenant asks jockey's in-cluster side (the build broker) for the image
//! of one instance, and how the broker answers. A `BuildRequest` lives in the tenant's own
//! namespace; the tenant writes its spec (which instance), only the broker writes its status
//! (the `status` subresource, which the tenant Role does not grant). Everything a build touches
//! in shared places (the builder namespace, the registry, AWS) is decided by the broker from its
//! own settings and from the instance ConfigMap the request names: the request says *what* to
//! build, never *how* or *where to*.
//!
//! Pure: the type, its names, and [`check`], which decides whether a request may be built.

use crate::names::{ANNOTATION_CONTENT_SHA256, INSTANCE_TAR_KEY};
use crate::{ContentHash, ProjectId};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::Read;

pub const GROUP: &str = "jockey.agentops.ai";
pub const VERSION: &str = "v1alpha1";
pub const KIND: &str = "BuildRequest";
pub const PLURAL: &str = "buildrequests";
/// On the broker's objects in the builder namespace: the namespace that asked, so that cleanup
/// of one namespace's requests never touches another's builds.
pub const LABEL_REQUEST_NAMESPACE: &str = "jockey.agentops.ai/request-namespace";
/// On the broker's objects: the request's name (a label value: at most 63 characters, which a
/// request name is, see [`request_name`]).
pub const LABEL_REQUEST_NAME: &str = "jockey.agentops.ai/request-name";
/// Log lines a request's status keeps (the newest); the whole log stays with the operator.
pub const STATUS_LOG_LINES: usize = 40;
/// A line longer than this is cut in the status: the object must stay small whatever a build
/// prints.
pub const STATUS_LOG_LINE_CHARS: usize = 400;
/// The broker refuses a build asked to run longer than this.
pub const MAX_TIMEOUT_SECONDS: u64 = 10_800;
/// What a request asks when it says nothing.
pub const DEFAULT_TIMEOUT_SECONDS: u64 = 900;

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BuildRequest {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    pub spec: BuildRequestSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<BuildRequestStatus>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct BuildRequestSpec {
    /// The project whose image is built; the request's namespace must own it.
    pub project: String,
    /// The instance ConfigMap (`instance-<h>`) in the request's namespace.
    pub instance: String,
    /// How long the build may run (the Job's active deadline).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u64>,
}

/// Where a request stands. `Succeeded`, `Failed` and `Refused` are final: asking again is a new
/// request (the client deletes the old one).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Phase {
    #[default]
    Pending,
    Building,
    Succeeded,
    Failed,
    /// The broker will not build it (not this namespace's project, an instance that is not what
    /// it says): nothing was written in shared places.
    Refused,
}

impl Phase {
    pub fn is_final(self) -> bool {
        matches!(self, Phase::Succeeded | Phase::Failed | Phase::Refused)
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct BuildRequestStatus {
    pub phase: Phase,
    /// The current step, or why it failed or was refused, with the fix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The image, once built (or found built).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// The build Job in the builder namespace (for the operator).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
    /// The newest lines of the build log, at most [`STATUS_LOG_LINES`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub log: Vec<String>,
    /// How many log lines the build printed so far: a follower prints the lines past what it
    /// has seen.
    #[serde(default)]
    pub log_lines: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

impl k8s_openapi::Resource for BuildRequest {
    const API_VERSION: &'static str = "jockey.agentops.ai/v1alpha1";
    const GROUP: &'static str = GROUP;
    const KIND: &'static str = KIND;
    const VERSION: &'static str = VERSION;
    const URL_PATH_SEGMENT: &'static str = PLURAL;
    type Scope = k8s_openapi::NamespaceResourceScope;
}

impl k8s_openapi::Metadata for BuildRequest {
    type Ty = ObjectMeta;
    fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn metadata_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

impl BuildRequest {
    pub fn phase(&self) -> Phase {
        self.status.as_ref().map(|s| s.phase).unwrap_or_default()
    }
    pub fn name(&self) -> Cow<'_, str> {
        Cow::Borrowed(self.metadata.name.as_deref().unwrap_or_default())
    }
}

/// `<project>-build-<h>`, at most 63 characters (a label value, a Job name): a project id longer
/// than 40 characters is cut and suffixed with a digest of the whole id, so two projects never
/// share a name. The request, its Job and its ConfigMap copy share it.
pub fn request_name(project: &ProjectId, hash: &ContentHash) -> String {
    const MAX_PROJECT_PART: usize = 63 - "-build-".len() - 16;
    format!(
        "{}-build-{}",
        project.name_part(MAX_PROJECT_PART),
        hash.short()
    )
}

/// The request for the image of `instance-<h>` of `project` in `namespace`.
pub fn request(
    project: &ProjectId,
    hash: &ContentHash,
    namespace: &str,
    timeout_seconds: u64,
) -> BuildRequest {
    BuildRequest {
        api_version: <BuildRequest as k8s_openapi::Resource>::API_VERSION.to_string(),
        kind: KIND.to_string(),
        metadata: ObjectMeta {
            name: Some(request_name(project, hash)),
            namespace: Some(namespace.to_string()),
            labels: Some(crate::bundle::instance_labels(project, hash)),
            ..Default::default()
        },
        spec: BuildRequestSpec {
            project: project.to_string(),
            instance: hash.configmap_name(),
            timeout_seconds: Some(timeout_seconds.clamp(60, MAX_TIMEOUT_SECONDS)),
        },
        status: None,
    }
}

/// What the broker builds for an admitted request: facts it established itself from the
/// instance ConfigMap, never taken from the request's word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admitted {
    pub project: ProjectId,
    pub hash: ContentHash,
    /// The gzip'd canonical tar, as stored in the instance ConfigMap.
    pub gz: Vec<u8>,
    /// Whether the project brings its own `Dockerfile` (at the top of the tar).
    pub has_dockerfile: bool,
    /// The top-level `requirements.txt`, when there is one: with the template's version and the
    /// broker's `BASE_IMAGE`, it names a built-in-template project's dependency image
    /// ([`crate::image::dependency_tag`]).
    pub requirements: Option<Vec<u8>>,
    pub timeout_seconds: u64,
}

/// Whether `request` (in `namespace`) may be built from `instance` (the ConfigMap it names, as
/// read from the API server; `None`: missing). The answer is the refusal's message, with the fix.
/// Ownership of the project (the claim) is checked by the caller, which holds the claims. Pure.
pub fn check(
    request: &BuildRequest,
    namespace: &str,
    instance: Option<&ConfigMap>,
    max_tar_bytes: u64,
) -> Result<Admitted, String> {
    let name = request.name();
    let project = ProjectId::parse(&request.spec.project)
        .map_err(|e| format!("BuildRequest {namespace}/{name}: {e}"))?;
    let timeout_seconds = request
        .spec
        .timeout_seconds
        .unwrap_or(DEFAULT_TIMEOUT_SECONDS);
    if timeout_seconds > MAX_TIMEOUT_SECONDS {
        return Err(format!(
            "BuildRequest {namespace}/{name} asks for a {timeout_seconds}s build; the broker \
             allows at most {MAX_TIMEOUT_SECONDS}s: deploy with a shorter --timeout"
        ));
    }
    let Some(cm) = instance else {
        return Err(format!(
            "BuildRequest {namespace}/{name} names ConfigMap {namespace}/{} which does not exist; \
             deploy again (kubectl jockey deploy writes it first)",
            request.spec.instance
        ));
    };
    let cm_name = &request.spec.instance;
    // Any instance of the namespace will do, whichever project wrote it first (projects with
    // the same files share it): the content is checked below, and the claim decides whether
    // this namespace may build the project at all.
    if cm.immutable != Some(true) {
        return Err(format!(
            "ConfigMap {namespace}/{cm_name} is not immutable, so what is built could change \
             after it is checked; delete it and deploy again"
        ));
    }
    let gz = cm
        .binary_data
        .as_ref()
        .and_then(|d| d.get(INSTANCE_TAR_KEY))
        .map(|b| b.0.clone())
        .ok_or_else(|| {
            format!(
                "ConfigMap {namespace}/{cm_name} holds no binaryData[{INSTANCE_TAR_KEY}]; delete \
                 it and deploy again"
            )
        })?;
    let read = read_tar(&gz, max_tar_bytes).map_err(|why| {
        format!("ConfigMap {namespace}/{cm_name}: {why}; delete it and deploy again")
    })?;
    let hash = ContentHash::from_digest(&read.digest);
    let claimed = cm
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(ANNOTATION_CONTENT_SHA256))
        .map(String::as_str);
    // Named by what it holds, or not built: an image tag `<h>` always means these files.
    if claimed != Some(hash.full()) || *cm_name != hash.configmap_name() {
        return Err(format!(
            "ConfigMap {namespace}/{cm_name} does not hold what its name says (its files hash to \
             {}); delete it and deploy again",
            hash.short()
        ));
    }
    let expected = request_name(&project, &hash);
    if name != expected {
        return Err(format!(
            "BuildRequest {namespace}/{name} should be named {expected} for {cm_name}; delete it \
             and deploy again"
        ));
    }
    Ok(Admitted {
        project,
        hash,
        gz,
        has_dockerfile: read.has_dockerfile,
        requirements: read.requirements,
        timeout_seconds,
    })
}

/// What [`read_tar`] found in an instance tar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TarFacts {
    /// The SHA-256 of the (uncompressed) tar.
    pub digest: Vec<u8>,
    /// Whether it holds a top-level `Dockerfile`.
    pub has_dockerfile: bool,
    /// The top-level `requirements.txt`, when there is one.
    pub requirements: Option<Vec<u8>>,
}

/// The SHA-256 of the tar inside `gz`, whether it holds a top-level `Dockerfile` and its
/// top-level `requirements.txt`, reading at most `max` bytes of tar (a small gzip can inflate to
/// anything).
pub fn read_tar(gz: &[u8], max: u64) -> Result<TarFacts, String> {
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(gz)
        .take(max + 1)
        .read_to_end(&mut tar)
        .map_err(|e| format!("{INSTANCE_TAR_KEY} is not gzip: {e}"))?;
    if tar.len() as u64 > max {
        return Err(format!("{INSTANCE_TAR_KEY} inflates past {max} bytes"));
    }
    let mut has_dockerfile = false;
    let mut requirements = None;
    let mut archive = tar::Archive::new(tar.as_slice());
    let entries = archive
        .entries()
        .map_err(|e| format!("{INSTANCE_TAR_KEY} is not a tar: {e}"))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("{INSTANCE_TAR_KEY} is not a tar: {e}"))?;
        let path = entry
            .path()
            .map_err(|e| format!("{INSTANCE_TAR_KEY} holds a bad path: {e}"))?
            .into_owned();
        if !entry.header().entry_type().is_file() {
            continue;
        }
        if path.as_os_str() == "Dockerfile" {
            has_dockerfile = true;
        }
        if path.as_os_str() == crate::image::REQUIREMENTS_FILE {
            let mut bytes = Vec::new();
            entry
                .read_to_end(&mut bytes)
                .map_err(|e| format!("{INSTANCE_TAR_KEY} is not a tar: {e}"))?;
            requirements = Some(bytes);
        }
    }
    Ok(TarFacts {
        digest: Sha256::digest(&tar).to_vec(),
        has_dockerfile,
        requirements,
    })
}

/// The labels of everything the broker writes for `request` in the builder namespace.
pub fn build_labels(
    project: &ProjectId,
    hash: &ContentHash,
    namespace: &str,
    request_name: &str,
) -> BTreeMap<String, String> {
    let mut labels = crate::bundle::instance_labels(project, hash);
    labels.insert(LABEL_REQUEST_NAMESPACE.to_string(), namespace.to_string());
    labels.insert(LABEL_REQUEST_NAME.to_string(), request_name.to_string());
    labels
}

/// Appends `lines` to a status log: keeps the newest [`STATUS_LOG_LINES`], cuts long lines,
/// counts every line. Pure.
pub fn append_log(status: &mut BuildRequestStatus, lines: &[String]) {
    for line in lines {
        let cut: String = line.chars().take(STATUS_LOG_LINE_CHARS).collect();
        status.log.push(cut);
        status.log_lines += 1;
    }
    let excess = status.log.len().saturating_sub(STATUS_LOG_LINES);
    status.log.drain(..excess);
}

/// The lines of `status` a follower that has printed `seen` lines has not printed yet. Pure.
pub fn unseen(status: &BuildRequestStatus, seen: u64) -> &[String] {
    let first_kept = status.log_lines.saturating_sub(status.log.len() as u64);
    let skip = seen.saturating_sub(first_kept).min(status.log.len() as u64) as usize;
    &status.log[skip..]
}

#[cfg(test)]
mod tests;
