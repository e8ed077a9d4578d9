//! Instance bundles: the files of a project directory, packed into a canonical tar whose SHA-256
//! names the instance (`instance-<h>`) and its image tag.
//!
//! Two halves, so that everything that decides the hash is pure and testable:
//!
//! - [`collect`] is the only I/O in the core: it walks DIR, applies the default ignores and
//!   `.jockeyignore` (gitignore syntax), leaves out secret-looking files (and lists them; what
//!   counts as a secret is [`secrets`]), follows symlinks that stay inside DIR, and refuses what
//!   cannot be packaged faithfully.
//! - [`Bundle::from_collected`], [`canonical_tar`], [`gzip`] and [`instance_configmap`] turn the
//!   collected entries into bytes and the ConfigMap, with no I/O.
//!
//! Canonical tar (spec "Names"): entries sorted by path, `/`-separated relative paths, mtime 0,
//! uid/gid 0, no user or group names, mode 0644 (0755 where the owner may execute; directories
//! 0755), regular files and directories only. So the same files give the same `<h>` on any
//! machine, in any directory, whatever their timestamps, order of creation or umask.
//!
//! This file holds the types, the refusals and their messages, and the instance ConfigMap; the
//! walk is `bundle/collect.rs`, the tar and gzip `bundle/archive.rs`.

use crate::names::{
    ANNOTATION_CONTENT_SHA256, INSTANCE_TAR_KEY, LABEL_CONTENT_HASH, LABEL_PROJECT,
};
use crate::{ContentHash, ProjectId};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

pub mod secrets;
/// What [`collect`] leaves out by name, what it refuses by content and how a file is exempted
/// from the latter; defined with the rest of what counts as a secret.
pub use secrets::{Finding, SECRET_PATTERNS, SECRETS_OK_FILE};

mod archive;
mod collect;
use archive::digest_and_compress;
pub use archive::{canonical_tar, gzip, gzip_best};
pub use collect::{DEFAULT_IGNORES, collect, collect_within};

/// The ignore file read from the root of DIR (gitignore syntax; `!pattern` re-includes).
pub const IGNORE_FILE: &str = ".jockeyignore";

/// Kubernetes refuses a ConfigMap whose data and binaryData together exceed 1 MiB.
pub const CONFIGMAP_LIMIT_BYTES: usize = 1024 * 1024;

/// Room kept free in the instance ConfigMap so that the builder's copy (which may add a built-in
/// `Dockerfile` key) still fits under [`CONFIGMAP_LIMIT_BYTES`].
pub const BUILD_RESERVE_BYTES: usize = 8 * 1024;

/// Guard against reading a huge tree into memory only to refuse it: raw content beyond this
/// cannot be meant as instance files.
pub const MAX_RAW_BYTES: u64 = 64 * 1024 * 1024;

/// The sizes a bundle may reach. [`Limits::KUBERNETES`] (the default) is what a ConfigMap holds;
/// smaller limits let a test or the fuzzer reach the size refusals with a few bytes of files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The gzip'd tar and its ConfigMap key, in bytes.
    pub compressed: usize,
    /// Raw file content read before refusing the tree unread.
    pub raw: u64,
}

impl Limits {
    pub const KUBERNETES: Limits = Limits {
        compressed: CONFIGMAP_LIMIT_BYTES - BUILD_RESERVE_BYTES,
        raw: MAX_RAW_BYTES,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Self::KUBERNETES
    }
}

/// One collected path: a directory or a regular file with its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Relative to DIR, `/`-separated, no leading `./`, no trailing `/`.
    pub path: String,
    pub kind: EntryKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    Dir,
    File {
        data: Vec<u8>,
        /// Whether the owner may execute it: the only permission bit the tar keeps.
        executable: bool,
    },
}

impl Entry {
    pub fn dir(path: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            kind: EntryKind::Dir,
        }
    }
    pub fn file(path: impl Into<String>, data: impl Into<Vec<u8>>, executable: bool) -> Self {
        Self {
            path: path.into(),
            kind: EntryKind::File {
                data: data.into(),
                executable,
            },
        }
    }
}

/// What [`collect`] found in DIR.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Collected {
    pub entries: Vec<Entry>,
    /// Secret-looking paths left out (relative, `/`-separated; directories end in `/`).
    pub secrets_left_out: Vec<String>,
}

/// Why DIR cannot be packaged. Every message names the file and the fix.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("{}: not a directory; pass the project directory (the one holding server.py)", .dir.display())]
    NotADirectory { dir: PathBuf },
    #[error("{}: {source}; check that it exists and is readable", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `.jockeyignore` or [`SECRETS_OK_FILE`].
    #[error("{file}: {message}; fix the pattern (gitignore syntax)")]
    BadIgnoreFile { file: &'static str, message: String },
    #[error(
        "{path}: the path is not valid UTF-8 and cannot be named in a portable bundle; \
         rename it or add it to {IGNORE_FILE}"
    )]
    NonUtf8Path { path: String },
    #[error(
        "{path}: symlink to {} leads outside the project directory; copy the file into the \
         project, or add {path} to {IGNORE_FILE}", .target.display()
    )]
    SymlinkOutside { path: String, target: PathBuf },
    #[error(
        "{path}: broken symlink ({source}); fix or remove the link, or add it to {IGNORE_FILE}"
    )]
    BrokenSymlink {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path}: symlink loops back to one of its own parent directories; remove the link or \
         add it to {IGNORE_FILE}"
    )]
    SymlinkLoop { path: String },
    #[error(
        "{path}: is a {kind}, which cannot be packaged (only regular files and directories); \
         remove it or add it to {IGNORE_FILE}"
    )]
    SpecialFile { path: String, kind: &'static str },
    #[error(
        "{}: no files to package (after the default ignores, {IGNORE_FILE} and leaving out \
         secrets{}); point deploy at the directory holding server.py",
        .dir.display(), format_left_out(.left_out)
    )]
    Empty { dir: PathBuf, left_out: Vec<String> },
    #[error(
        "what looks like a secret in the files to package: {}. The instance files are readable \
         in the builder namespace and in the image, so none is packaged: move each value out of \
         the file into the project's Secret, read by the server from its environment, with \
         `kubectl jockey deploy DIR --secret-env-file FILE` (a dotenv file such as DIR/.env, \
         which is never packaged) or `kubectl jockey secrets set PROJECT KEY=VALUE`; if one is \
         not a real secret (a test fixture, a documented example), list its file in \
         {SECRETS_OK_FILE} (gitignore syntax) to skip that file's content check",
        format_findings(.findings)
    )]
    SecretFound { findings: Vec<Finding> },
    #[error(
        "the instance bundle is {} compressed, more than the {} a ConfigMap may hold \
         (Kubernetes' 1 MiB limit, less room for the build); largest files: {}; \
         add what the server does not need to {IGNORE_FILE}",
        human_bytes(*.size as u64), human_bytes(*.limit as u64), format_largest(.largest)
    )]
    TooLarge {
        size: usize,
        limit: usize,
        largest: Vec<(String, u64)>,
    },
    #[error(
        "the files to package add up to more than {}, far beyond the 1 MiB a ConfigMap may hold; \
         largest files so far: {}; add what the server does not need to {IGNORE_FILE}",
        human_bytes(*.limit), format_largest(.largest)
    )]
    TooLargeRaw {
        limit: u64,
        largest: Vec<(String, u64)>,
    },
}

/// A packaged instance: the canonical tar, its gzip, its hash, and what was left out.
#[derive(Clone, PartialEq, Eq)]
pub struct Bundle {
    pub hash: ContentHash,
    /// The canonical (uncompressed) tar; `hash` is its SHA-256.
    pub tar: Vec<u8>,
    /// `tar`, gzip'd without file name and with mtime 0: what the ConfigMap carries.
    pub gz: Vec<u8>,
    /// Paths of the packaged regular files, sorted.
    pub files: Vec<String>,
    pub secrets_left_out: Vec<String>,
    /// Whether the project brings its own `Dockerfile` at the top level.
    pub has_dockerfile: bool,
}

/// Sizes instead of bytes: a bundle's Debug output stays readable in test failures and logs.
impl std::fmt::Debug for Bundle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bundle")
            .field("hash", &self.hash.full())
            .field("tar_bytes", &self.tar.len())
            .field("gz_bytes", &self.gz.len())
            .field("files", &self.files)
            .field("secrets_left_out", &self.secrets_left_out)
            .field("has_dockerfile", &self.has_dockerfile)
            .finish()
    }
}

impl Bundle {
    /// Packs collected entries. Pure: same entries in any order give the same bytes.
    pub fn from_collected(collected: Collected) -> Result<Self, BundleError> {
        Self::from_collected_within(collected, &Limits::KUBERNETES)
    }

    /// [`Bundle::from_collected`] refusing a bundle past `limits.compressed`.
    pub fn from_collected_within(
        collected: Collected,
        limits: &Limits,
    ) -> Result<Self, BundleError> {
        let Collected {
            mut entries,
            mut secrets_left_out,
        } = collected;
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        entries.dedup_by(|a, b| a.path == b.path);
        secrets_left_out.sort();
        let files: Vec<String> = entries
            .iter()
            .filter(|e| matches!(e.kind, EntryKind::File { .. }))
            .map(|e| e.path.clone())
            .collect();
        let tar = canonical_tar(&entries);
        let limit = limits.compressed;
        let (digest, gz) = digest_and_compress(&tar, limit.saturating_sub(INSTANCE_TAR_KEY.len()));
        let gz = match gz {
            Ok(gz) => gz,
            Err(size) => {
                return Err(BundleError::TooLarge {
                    size: size + INSTANCE_TAR_KEY.len(),
                    limit,
                    largest: largest_files(&entries, 5),
                });
            }
        };
        Ok(Self {
            hash: ContentHash::from_digest(&digest),
            has_dockerfile: files.iter().any(|f| f == "Dockerfile"),
            tar,
            gz,
            files,
            secrets_left_out,
        })
    }
}

/// Collects DIR and packs it: [`collect`] then [`Bundle::from_collected`].
pub fn bundle_dir(dir: &Path) -> Result<Bundle, BundleError> {
    bundle_dir_within(dir, &Limits::KUBERNETES)
}

/// [`bundle_dir`] within other size limits.
pub fn bundle_dir_within(dir: &Path, limits: &Limits) -> Result<Bundle, BundleError> {
    Bundle::from_collected_within(collect_within(dir, limits)?, limits)
}

/// The immutable, labelled instance ConfigMap `instance-<h>` holding the gzip'd tar. Its
/// namespace is left for the caller (the project namespace, or the builder namespace's copy).
pub fn instance_configmap(project: &ProjectId, bundle: &Bundle) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(bundle.hash.configmap_name()),
            labels: Some(instance_labels(project, &bundle.hash)),
            annotations: Some(BTreeMap::from([(
                ANNOTATION_CONTENT_SHA256.to_string(),
                bundle.hash.full().to_string(),
            )])),
            ..Default::default()
        },
        binary_data: Some(BTreeMap::from([(
            INSTANCE_TAR_KEY.to_string(),
            ByteString(bundle.gz.clone()),
        )])),
        immutable: Some(true),
        ..Default::default()
    }
}

/// Labels of an instance ConfigMap: the project and the short content hash.
pub fn instance_labels(project: &ProjectId, hash: &ContentHash) -> BTreeMap<String, String> {
    BTreeMap::from([
        (LABEL_PROJECT.to_string(), project.to_string()),
        (LABEL_CONTENT_HASH.to_string(), hash.short().to_string()),
        (
            "app.kubernetes.io/managed-by".to_string(),
            "kubectl-jockey".to_string(),
        ),
    ])
}

pub(super) fn largest_files(entries: &[Entry], n: usize) -> Vec<(String, u64)> {
    let mut sizes: Vec<(String, u64)> = entries
        .iter()
        .filter_map(|e| match &e.kind {
            EntryKind::File { data, .. } => Some((e.path.clone(), data.len() as u64)),
            EntryKind::Dir => None,
        })
        .collect();
    sizes.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    sizes.truncate(n);
    sizes
}

/// `: .env, id_rsa` after "leaving out secrets", so an empty bundle says what was left out.
fn format_left_out(left_out: &[String]) -> String {
    if left_out.is_empty() {
        String::new()
    } else {
        format!(": {}", left_out.join(", "))
    }
}

/// Findings shown in a refusal: enough to fix a project in one pass, not a screenful.
const FINDINGS_SHOWN: usize = 10;

fn format_findings(findings: &[Finding]) -> String {
    let mut out = String::new();
    for (i, finding) in findings.iter().take(FINDINGS_SHOWN).enumerate() {
        if i > 0 {
            out.push_str("; ");
        }
        let _ = write!(out, "{finding}");
    }
    if findings.len() > FINDINGS_SHOWN {
        let _ = write!(out, "; and {} more", findings.len() - FINDINGS_SHOWN);
    }
    out
}

fn format_largest(largest: &[(String, u64)]) -> String {
    let mut out = String::new();
    for (i, (path, size)) in largest.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let _ = write!(out, "{path} ({})", human_bytes(*size));
    }
    out
}

/// `1.5 MiB`, `12.0 KiB`, `100 B`.
pub fn human_bytes(n: u64) -> String {
    const KIB: f64 = 1024.0;
    let f = n as f64;
    if f >= KIB * KIB {
        format!("{:.1} MiB", f / (KIB * KIB))
    } else if f >= KIB {
        format!("{:.1} KiB", f / KIB)
    } else {
        format!("{n} B")
    }
}

#[cfg(test)]
mod tests;
