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

use crate::names::{
    ANNOTATION_CONTENT_SHA256, INSTANCE_TAR_KEY, LABEL_CONTENT_HASH, LABEL_PROJECT,
};
use crate::{ContentHash, ProjectId};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

pub mod secrets;
/// What [`collect`] leaves out by name, what it refuses by content and how a file is exempted
/// from the latter; defined with the rest of what counts as a secret.
pub use secrets::{Finding, SECRET_PATTERNS, SECRETS_OK_FILE};

/// The ignore file read from the root of DIR (gitignore syntax; `!pattern` re-includes).
pub const IGNORE_FILE: &str = ".jockeyignore";

/// Never worth packaging: VCS metadata, caches, virtualenvs, dependency trees. Listed before the
/// user's `.jockeyignore`, so a `!pattern` there can bring one back on purpose.
pub const DEFAULT_IGNORES: &[&str] = &[".git/", "__pycache__/", "*.pyc", ".venv/", "node_modules/"];

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

/// The canonical tar of `entries` (which must be sorted by path and unique; see
/// [`Bundle::from_collected`]). Pure and deterministic.
pub fn canonical_tar(entries: &[Entry]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for entry in entries {
        // A fresh GNU header is all zeroes (so no user or group names); GNU long-name records
        // carry paths over 100 bytes, and the tar crate writes those with mtime 0 and uid 0 too.
        let mut header = tar::Header::new_gnu();
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        let result = match &entry.kind {
            EntryKind::Dir => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o755);
                header.set_size(0);
                builder.append_data(&mut header, &entry.path, std::io::empty())
            }
            EntryKind::File { data, executable } => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(if *executable { 0o755 } else { 0o644 });
                header.set_size(data.len() as u64);
                builder.append_data(&mut header, &entry.path, data.as_slice())
            }
        };
        // Writing into a Vec cannot fail; a path the tar format cannot hold (absolute or with
        // `..`) never comes out of `collect`. Dropping such an entry would silently change the
        // bundle, so it is a programming error worth a loud panic in tests.
        if let Err(e) = result {
            debug_assert!(false, "tar entry {}: {e}", entry.path);
        }
    }
    builder.into_inner().unwrap_or_default()
}

/// Gzip with no file name and mtime 0, so the compressed bytes depend only on the tar, at the
/// default level: the hash names the uncompressed tar, and an existing `instance-<h>` is trusted
/// by that hash, never by its bytes, so the level is free; the best level costs several times
/// the time for a few percent of size (bench/README.md, packaging).
pub fn gzip(data: &[u8]) -> Vec<u8> {
    gzip_at(data, flate2::Compression::default())
}

/// [`gzip`] at the best level, for a bundle the default level leaves just over the limit.
pub fn gzip_best(data: &[u8]) -> Vec<u8> {
    gzip_at(data, flate2::Compression::best())
}

/// The tar's SHA-256 and [`compress_within`]; on another thread past a few hundred KiB, the way
/// `tar | gzip | sha256sum` spreads over cores (a thread costs more than hashing a small tar).
fn digest_and_compress(tar: &[u8], limit: usize) -> (Vec<u8>, Result<Vec<u8>, usize>) {
    const PARALLEL_FROM: usize = 256 * 1024;
    if tar.len() < PARALLEL_FROM {
        return (Sha256::digest(tar).to_vec(), compress_within(tar, limit));
    }
    std::thread::scope(|s| {
        let hashing = s.spawn(|| Sha256::digest(tar).to_vec());
        let gz = compress_within(tar, limit);
        // The hashing thread cannot panic on a byte slice; were it to, hash here instead.
        let digest = hashing
            .join()
            .unwrap_or_else(|_| Sha256::digest(tar).to_vec());
        (digest, gz)
    })
}

/// The tar gzip'd in at most `limit` bytes: at the default level, else (near the limit) at the
/// best, so only a bundle too big at every level is refused; `Err` holds the best level's size.
fn compress_within(tar: &[u8], limit: usize) -> Result<Vec<u8>, usize> {
    let gz = gzip(tar);
    if gz.len() <= limit {
        return Ok(gz);
    }
    let gz = gzip_best(tar);
    if gz.len() <= limit {
        Ok(gz)
    } else {
        Err(gz.len())
    }
}

fn gzip_at(data: &[u8], level: flate2::Compression) -> Vec<u8> {
    let mut encoder = flate2::GzBuilder::new()
        .mtime(0)
        .operating_system(255)
        .write(Vec::with_capacity(data.len() / 4), level);
    // Writes into a Vec cannot fail.
    let _ = encoder.write_all(data);
    encoder.finish().unwrap_or_default()
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

fn largest_files(entries: &[Entry], n: usize) -> Vec<(String, u64)> {
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

/// Walks DIR and collects what goes into the bundle. The only I/O in the core.
///
/// Order of decisions for each path: ignored (default ignores, then `.jockeyignore`) paths are
/// skipped before anything else, so a problem file can always be fixed by ignoring it; then
/// secrets are left out and listed; then anything that cannot be packaged faithfully is refused.
/// Last, the content of what is to be packaged is checked for secrets ([`secrets`]), except the
/// files [`SECRETS_OK_FILE`] lists: one found refuses the whole directory.
pub fn collect(dir: &Path) -> Result<Collected, BundleError> {
    collect_within(dir, &Limits::KUBERNETES)
}

/// [`collect`], refusing raw content past `limits.raw` before reading it.
pub fn collect_within(dir: &Path, limits: &Limits) -> Result<Collected, BundleError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| BundleError::Io { path, source }
    };
    let meta = std::fs::metadata(dir).map_err(io(dir))?;
    if !meta.is_dir() {
        return Err(BundleError::NotADirectory {
            dir: dir.to_path_buf(),
        });
    }
    let root = std::fs::canonicalize(dir).map_err(io(dir))?;
    let exempt_from_content_check = root_patterns(&root, SECRETS_OK_FILE)?;
    let walker = Walker {
        user_ignores: root_patterns(&root, IGNORE_FILE)?,
        root: root.clone(),
        raw_limit: limits.raw,
    };
    let mut out = Collected::default();
    let mut raw = 0u64;
    walker.walk(&root, "", &mut vec![root.clone()], &mut out, &mut raw)?;
    if !out
        .entries
        .iter()
        .any(|e| matches!(e.kind, EntryKind::File { .. }))
    {
        return Err(BundleError::Empty {
            dir: dir.to_path_buf(),
            left_out: out.secrets_left_out,
        });
    }
    // Only what is packaged: an ignored or left-out file cannot leak, and a refusal for one
    // would have no fix worth giving.
    let findings = secrets::scan(&out.entries, exempt_from_content_check.as_ref());
    if !findings.is_empty() {
        return Err(BundleError::SecretFound { findings });
    }
    Ok(out)
}

/// The matchers built from constants, once per process: compiling their globs costs more than
/// walking a small project, and `deploy`, the webhook's tests and the fuzzer bundle many.
/// Rooted at `.`, so a relative path is matched as given.
fn static_matcher(
    cell: &'static std::sync::OnceLock<ignore::gitignore::Gitignore>,
    patterns: &[&str],
    case_insensitive: bool,
) -> &'static ignore::gitignore::Gitignore {
    cell.get_or_init(|| {
        let mut builder = ignore::gitignore::GitignoreBuilder::new(".");
        // The patterns are constants, checked by `static_matchers_hold_every_pattern`: a
        // pattern the builder refused would be a programming error, not a user's.
        let _ = builder.case_insensitive(case_insensitive);
        for pattern in patterns {
            let _ = builder.add_line(None, pattern);
        }
        builder
            .build()
            .unwrap_or_else(|_| ignore::gitignore::Gitignore::empty())
    })
}

fn default_ignores() -> &'static ignore::gitignore::Gitignore {
    static CELL: std::sync::OnceLock<ignore::gitignore::Gitignore> = std::sync::OnceLock::new();
    static_matcher(&CELL, DEFAULT_IGNORES, false)
}

/// The project's `.jockeyignore` or [`SECRETS_OK_FILE`] (`name`), if it has one.
fn root_patterns(
    root: &Path,
    name: &'static str,
) -> Result<Option<ignore::gitignore::Gitignore>, BundleError> {
    let file = root.join(name);
    if !file.is_file() {
        return Ok(None);
    }
    let bad = |e: ignore::Error| BundleError::BadIgnoreFile {
        file: name,
        message: e.to_string(),
    };
    let mut builder = ignore::gitignore::GitignoreBuilder::new(root);
    if let Some(e) = builder.add(&file) {
        return Err(bad(e));
    }
    builder.build().map(Some).map_err(bad)
}

struct Walker {
    root: PathBuf,
    user_ignores: Option<ignore::gitignore::Gitignore>,
    raw_limit: u64,
}

impl Walker {
    /// gitignore's rule, the last matching pattern wins, over the default ignores followed by
    /// the user's file: the user's last match if any, else the defaults'. So `!pattern` in
    /// `.jockeyignore` can bring a default ignore back.
    fn ignored(&self, rel: &Path, is_dir: bool) -> bool {
        if let Some(user) = &self.user_ignores {
            match user.matched(rel, is_dir) {
                ignore::Match::Ignore(_) => return true,
                ignore::Match::Whitelist(_) => return false,
                ignore::Match::None => {}
            }
        }
        default_ignores().matched(rel, is_dir).is_ignore()
    }

    /// Where a symlink resolves to (`target`, canonical), shown as the user would name it, when
    /// that path or one of its directories is secret-looking. Inside DIR it is judged relative
    /// to DIR (so the directory DIR itself lives in does not count); outside DIR, on its whole
    /// path (such a link is refused anyway, but a secret is reported as one, never as "copy
    /// the file into the project").
    fn secret_target(&self, target: &Path, is_dir: bool) -> Option<String> {
        let relative: PathBuf = match target.strip_prefix(&self.root) {
            Ok(inside) => inside.to_path_buf(),
            Err(_) => target
                .components()
                .filter(|c| matches!(c, std::path::Component::Normal(_)))
                .collect(),
        };
        if relative.as_os_str().is_empty() {
            return None;
        }
        secrets::name_matcher()
            .matched_path_or_any_parents(&relative, is_dir)
            .is_ignore()
            .then(|| {
                if target.starts_with(&self.root) {
                    relative.to_string_lossy().replace('\\', "/")
                } else {
                    target.to_string_lossy().to_string()
                }
            })
    }

    /// `ancestors` holds the canonical paths of the directories being walked, to refuse a
    /// symlink that points back up (which would otherwise recurse forever).
    fn walk(
        &self,
        dir: &Path,
        rel_dir: &str,
        ancestors: &mut Vec<PathBuf>,
        out: &mut Collected,
        raw: &mut u64,
    ) -> Result<(), BundleError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| BundleError::Io { path, source }
        };
        let mut children: Vec<_> = std::fs::read_dir(dir)
            .map_err(io(dir))?
            .collect::<Result<_, _>>()
            .map_err(io(dir))?;
        // Walk in name order so that the first refusal reported is the same on every machine.
        children.sort_by_key(|c| c.file_name());
        for child in children {
            let full = child.path();
            let name = child.file_name();
            let rel_os: PathBuf = Path::new(rel_dir).join(&name);
            let lstat = std::fs::symlink_metadata(&full).map_err(io(&full))?;
            let is_link = lstat.file_type().is_symlink();
            // A symlink is judged by what it points to; a broken one counts as a file so that
            // ignore patterns for files still apply to it.
            let followed = if is_link {
                std::fs::metadata(&full)
            } else {
                Ok(lstat.clone())
            };
            let is_dir = followed.as_ref().map(|m| m.is_dir()).unwrap_or(false);

            if self.ignored(&rel_os, is_dir) {
                continue;
            }
            let display = rel_os.to_string_lossy().replace('\\', "/");
            if secrets::name_matcher().matched(&rel_os, is_dir).is_ignore() {
                out.secrets_left_out.push(if is_dir {
                    format!("{display}/")
                } else {
                    display
                });
                continue;
            }
            let Some(name) = name.to_str() else {
                return Err(BundleError::NonUtf8Path { path: display });
            };
            let rel = if rel_dir.is_empty() {
                name.to_string()
            } else {
                format!("{rel_dir}/{name}")
            };

            let meta = if is_link {
                let target = match std::fs::canonicalize(&full) {
                    Ok(t) => t,
                    Err(source) => return Err(BundleError::BrokenSymlink { path: rel, source }),
                };
                if let Some(shown) = self.secret_target(&target, is_dir) {
                    out.secrets_left_out.push(format!("{rel} -> {shown}"));
                    continue;
                }
                if !target.starts_with(&self.root) {
                    return Err(BundleError::SymlinkOutside { path: rel, target });
                }
                followed.map_err(|source| BundleError::BrokenSymlink {
                    path: rel.clone(),
                    source,
                })?
            } else {
                lstat
            };

            if meta.is_dir() {
                let canonical = std::fs::canonicalize(&full).map_err(io(&full))?;
                if ancestors.contains(&canonical) {
                    return Err(BundleError::SymlinkLoop { path: rel });
                }
                out.entries.push(Entry::dir(rel.clone()));
                ancestors.push(canonical);
                self.walk(&full, &rel, ancestors, out, raw)?;
                ancestors.pop();
            } else if meta.is_file() {
                *raw += meta.len();
                if *raw > self.raw_limit {
                    let mut largest = largest_files(&out.entries, 4);
                    largest.insert(0, (rel, meta.len()));
                    return Err(BundleError::TooLargeRaw {
                        limit: self.raw_limit,
                        largest,
                    });
                }
                let data = std::fs::read(&full).map_err(io(&full))?;
                out.entries
                    .push(Entry::file(rel, data, owner_may_execute(&meta)));
            } else {
                return Err(BundleError::SpecialFile {
                    path: rel,
                    kind: special_kind(&meta),
                });
            }
        }
        Ok(())
    }
}

#[cfg(unix)]
fn owner_may_execute(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o100 != 0
}

#[cfg(not(unix))]
fn owner_may_execute(_meta: &std::fs::Metadata) -> bool {
    false
}

#[cfg(unix)]
fn special_kind(meta: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_fifo() {
        "fifo"
    } else if t.is_socket() {
        "socket"
    } else if t.is_block_device() {
        "block device"
    } else if t.is_char_device() {
        "character device"
    } else {
        "special file"
    }
}

#[cfg(not(unix))]
fn special_kind(_meta: &std::fs::Metadata) -> &'static str {
    "special file"
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::io::Read;
    use std::time::{Duration, SystemTime};

    fn write(root: &Path, rel: &str, data: &[u8]) {
        let p = root.join(rel);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).unwrap();
        }
        fs::write(p, data).unwrap();
    }

    #[cfg(unix)]
    fn chmod(p: &Path, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
    }

    fn set_mtime(p: &Path, t: SystemTime) {
        fs::File::options()
            .write(true)
            .open(p)
            .unwrap()
            .set_modified(t)
            .unwrap();
    }

    fn agent_files() -> Vec<(&'static str, &'static [u8])> {
        vec![
            ("server.py", b"print('hello')\n"),
            ("requirements.txt", b"fastapi\n"),
            ("providers/openai.py", b"KEY_ENV = 'OPENAI_API_KEY'\n"),
            ("providers/__init__.py", b""),
            ("providers/nested/deep.txt", b"deep\n"),
        ]
    }

    /// The paths and modes stored in a tar, with every header field that must be canonical.
    fn tar_listing(tar: &[u8]) -> Vec<(String, u32, bool)> {
        let mut archive = tar::Archive::new(tar);
        let mut out = Vec::new();
        for entry in archive.entries().unwrap() {
            let entry = entry.unwrap();
            let h = entry.header();
            assert_eq!(h.mtime().unwrap(), 0);
            assert_eq!(h.uid().unwrap(), 0);
            assert_eq!(h.gid().unwrap(), 0);
            assert!(h.username().unwrap().unwrap_or("").is_empty());
            assert!(h.groupname().unwrap().unwrap_or("").is_empty());
            let is_dir = h.entry_type().is_dir();
            assert!(is_dir || h.entry_type().is_file());
            out.push((
                entry
                    .path()
                    .unwrap()
                    .to_string_lossy()
                    .trim_end_matches('/')
                    .to_string(),
                h.mode().unwrap(),
                is_dir,
            ));
        }
        out
    }

    #[test]
    fn canonical_tar_ignores_entry_order() {
        let a = vec![
            Entry::dir("providers"),
            Entry::file("providers/a.py", "a", false),
            Entry::file("server.py", "s", true),
        ];
        let mut b = a.clone();
        b.reverse();
        let ba = Bundle::from_collected(Collected {
            entries: a,
            ..Default::default()
        })
        .unwrap();
        let bb = Bundle::from_collected(Collected {
            entries: b,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(ba.tar, bb.tar);
        assert_eq!(ba.hash, bb.hash);
        assert_eq!(
            tar_listing(&ba.tar),
            vec![
                ("providers".to_string(), 0o755, true),
                ("providers/a.py".to_string(), 0o644, false),
                ("server.py".to_string(), 0o755, false),
            ]
        );
    }

    #[test]
    fn long_paths_survive_and_stay_canonical() {
        let long = format!("providers/{}/x.py", "d".repeat(120));
        let entries = vec![Entry::file(long.clone(), "x", false)];
        let b1 = Bundle::from_collected(Collected {
            entries: entries.clone(),
            ..Default::default()
        })
        .unwrap();
        let b2 = Bundle::from_collected(Collected {
            entries,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(b1.hash, b2.hash);
        assert_eq!(tar_listing(&b1.tar)[0].0, long);
    }

    #[test]
    fn a_bundle_just_over_the_limit_at_the_default_level_is_packed_at_the_best() {
        // Repetitive text, where the best level finds more than the default one.
        let mut text = String::new();
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        while text.len() < 200_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let _ = writeln!(
                text,
                "value_{:x} = call({}, {})",
                seed % 4096,
                seed % 13,
                seed % 97
            );
        }
        let data = text.as_bytes();
        let (default, best) = (gzip(data).len(), gzip_best(data).len());
        assert!(best < default, "best {best} default {default}");
        assert_eq!(compress_within(data, default), Ok(gzip(data)));
        let packed = compress_within(data, best).unwrap();
        assert_eq!(packed, gzip_best(data));
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(packed.as_slice())
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, data);
        assert_eq!(compress_within(data, best - 1), Err(best));
    }

    #[test]
    fn gzip_has_no_name_and_zero_mtime() {
        let gz = gzip(b"hello");
        assert_eq!(&gz[..2], &[0x1f, 0x8b]);
        let flags = gz[3];
        assert_eq!(flags & 0x08, 0, "FNAME must not be set");
        assert_eq!(&gz[4..8], &[0, 0, 0, 0], "MTIME must be 0");
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(gz.as_slice())
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, b"hello");
        assert_eq!(gzip(b"hello"), gz);
    }

    /// Spec: same files, any directory, any timestamps, any order of creation, any umask.
    #[cfg(unix)]
    #[test]
    fn hash_is_stable_across_mtime_creation_order_umask_and_location() {
        let t1 = tempfile::tempdir().unwrap();
        let t2 = tempfile::tempdir().unwrap();
        let a = t1.path().join("project");
        let b = t2.path().join("elsewhere").join("copy");
        let files = agent_files();
        for (rel, data) in &files {
            write(&a, rel, data);
        }
        for (rel, data) in files.iter().rev() {
            write(&b, rel, data);
        }
        // Umask 022 versus 077: only group/other bits differ.
        for (rel, _) in &files {
            chmod(&a.join(rel), 0o644);
            chmod(&b.join(rel), 0o600);
            set_mtime(
                &a.join(rel),
                SystemTime::UNIX_EPOCH + Duration::from_secs(1),
            );
            set_mtime(&b.join(rel), SystemTime::now());
        }
        chmod(&a.join("providers"), 0o755);
        chmod(&b.join("providers"), 0o700);
        let ha = bundle_dir(&a).unwrap();
        let hb = bundle_dir(&b).unwrap();
        assert_eq!(ha.hash, hb.hash);
        assert_eq!(ha.tar, hb.tar);
        assert_eq!(ha.hash.configmap_name(), hb.hash.configmap_name());

        // One changed byte: another hash.
        write(&b, "providers/openai.py", b"KEY_ENV = 'OPENAI_API_KEX'\n");
        assert_ne!(bundle_dir(&b).unwrap().hash, ha.hash);
    }

    #[cfg(unix)]
    #[test]
    fn owner_execute_bit_is_kept_and_changes_the_hash() {
        let t = tempfile::tempdir().unwrap();
        write(t.path(), "run.sh", b"#!/bin/sh\n");
        chmod(&t.path().join("run.sh"), 0o644);
        let plain = bundle_dir(t.path()).unwrap();
        chmod(&t.path().join("run.sh"), 0o744);
        let exec = bundle_dir(t.path()).unwrap();
        assert_ne!(plain.hash, exec.hash);
        assert_eq!(tar_listing(&exec.tar)[0].1, 0o755);
        assert_eq!(tar_listing(&plain.tar)[0].1, 0o644);
    }

    #[test]
    fn default_ignores_apply_at_any_depth() {
        let t = tempfile::tempdir().unwrap();
        write(t.path(), "server.py", b"s");
        write(t.path(), ".git/config", b"x");
        write(t.path(), "__pycache__/server.cpython-312.pyc", b"x");
        write(t.path(), "providers/__pycache__/a.pyc", b"x");
        write(t.path(), "providers/b.pyc", b"x");
        write(t.path(), ".venv/bin/python", b"x");
        write(t.path(), "web/node_modules/x/index.js", b"x");
        write(t.path(), "web/app.js", b"x");
        let b = bundle_dir(t.path()).unwrap();
        assert_eq!(b.files, vec!["server.py", "web/app.js"]);
        assert!(b.secrets_left_out.is_empty());
    }

    #[test]
    fn jockeyignore_uses_gitignore_syntax_and_can_reinclude() {
        let t = tempfile::tempdir().unwrap();
        write(t.path(), "server.py", b"s");
        write(t.path(), "data/big.csv", b"x");
        write(t.path(), "notes.md", b"x");
        write(t.path(), "keep.pyc", b"x");
        write(t.path(), "providers/tmp.log", b"x");
        write(
            t.path(),
            IGNORE_FILE,
            b"# comment\ndata/\n*.md\n**/*.log\n!keep.pyc\n",
        );
        let b = bundle_dir(t.path()).unwrap();
        assert_eq!(b.files, vec![IGNORE_FILE, "keep.pyc", "server.py"]);
    }

    #[test]
    fn static_matchers_hold_every_pattern() {
        // static_matcher drops a refused pattern silently (it cannot return a user's error):
        // every constant must compile.
        assert_eq!(
            default_ignores().num_ignores(),
            DEFAULT_IGNORES.len() as u64
        );
        assert_eq!(
            secrets::name_matcher().num_ignores(),
            SECRET_PATTERNS.len() as u64
        );
    }

    #[test]
    fn a_later_user_pattern_can_ignore_again_what_it_reincluded() {
        let t = tempfile::tempdir().unwrap();
        write(t.path(), "server.py", b"s");
        write(t.path(), "a.pyc", b"x");
        write(t.path(), "b.pyc", b"x");
        write(t.path(), IGNORE_FILE, b"!*.pyc\nb.pyc\n");
        let b = bundle_dir(t.path()).unwrap();
        assert_eq!(b.files, vec![IGNORE_FILE, "a.pyc", "server.py"]);
    }

    #[test]
    fn bad_jockeyignore_is_refused() {
        let t = tempfile::tempdir().unwrap();
        write(t.path(), "server.py", b"s");
        write(t.path(), IGNORE_FILE, b"{a,b\n");
        let err = bundle_dir(t.path()).unwrap_err();
        assert!(matches!(err, BundleError::BadIgnoreFile { .. }), "{err}");
        assert!(err.to_string().contains(IGNORE_FILE), "{err}");
    }

    #[test]
    fn secrets_are_left_out_and_listed_even_when_reincluded() {
        let t = tempfile::tempdir().unwrap();
        write(t.path(), "server.py", b"s");
        for f in [
            ".env",
            ".env.production",
            "tls/server.pem",
            "id_rsa",
            "id_rsa.pub",
            "credentials.json",
            "providers/.env.local",
        ] {
            write(t.path(), f, b"SECRET=1");
        }
        write(t.path(), "credentials/aws", b"x");
        write(t.path(), IGNORE_FILE, b"!.env\n");
        let b = bundle_dir(t.path()).unwrap();
        assert_eq!(b.files, vec![IGNORE_FILE, "server.py"]);
        assert_eq!(
            b.secrets_left_out,
            vec![
                ".env",
                ".env.production",
                "credentials.json",
                "credentials/",
                "id_rsa",
                "id_rsa.pub",
                "providers/.env.local",
                "tls/server.pem",
            ]
        );
        let tar = String::from_utf8_lossy(&b.tar).to_string();
        assert!(!tar.contains("SECRET=1"));
    }

    #[test]
    fn keys_keystores_and_credential_stores_are_left_out_at_any_depth() {
        let t = tempfile::tempdir().unwrap();
        write(t.path(), "server.py", b"s");
        let secrets = [
            "tls/server.key",
            "certs/client.p12",
            "certs/client.pfx",
            "certs/store.jks",
            "certs/app.keystore",
            "AuthKey_ABC.p8",
            "putty.ppk",
            "id_ed25519",
            "id_ed25519.pub",
            "deploy/id_ecdsa",
            "id_ecdsa_sk",
            "id_dsa",
            ".netrc",
            "_netrc",
            ".pypirc",
            "providers/.npmrc",
            ".git-credentials",
            ".pgpass",
            "kubeconfig",
            "prod.kubeconfig",
            "service-account-prod.json",
            "home/.docker/config.json",
            "client_secret.json",
            "auth/client_secret_123-abc.apps.googleusercontent.com.json",
            "token.json",
            ".streamlit/secrets.toml",
            "terraform.tfstate",
            "infra/prod.tfstate",
            "infra/terraform.tfstate.backup",
            ".ENV",
            "ID_RSA",
            "Token.JSON",
        ];
        for f in secrets {
            write(t.path(), f, b"SECRET=1");
        }
        let dirs = [
            ".ssh/config",
            ".aws/config",
            ".kube/config",
            ".gnupg/pubring.kbx",
        ];
        for f in dirs {
            write(t.path(), f, b"SECRET=1");
        }
        // Look-alikes that are not secrets stay in.
        for f in [
            "keys.py",
            "providers/keyring.py",
            "docker/config.json",
            "service.json",
            "monkey.txt",
            "tokenizer.json",
            "tokens.json",
            "secrets.py",
            ".streamlit/config.toml",
            "client_secret_loader.py",
            "infra/main.tf",
        ] {
            write(t.path(), f, b"kept");
        }
        let b = bundle_dir(t.path()).unwrap();
        assert_eq!(
            b.files,
            vec![
                ".streamlit/config.toml",
                "client_secret_loader.py",
                "docker/config.json",
                "infra/main.tf",
                "keys.py",
                "monkey.txt",
                "providers/keyring.py",
                "secrets.py",
                "server.py",
                "service.json",
                "tokenizer.json",
                "tokens.json",
            ]
        );
        let mut expected: Vec<String> = secrets.iter().map(|s| s.to_string()).collect();
        expected.extend([".ssh/", ".aws/", ".kube/", ".gnupg/"].map(String::from));
        expected.sort();
        assert_eq!(b.secrets_left_out, expected);
        assert!(!String::from_utf8_lossy(&b.tar).contains("SECRET=1"));
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_with_an_innocent_name_pointing_at_a_secret_is_left_out() {
        let t = tempfile::tempdir().unwrap();
        write(t.path(), "server.py", b"s");
        write(t.path(), ".env", b"SECRET=env");
        write(t.path(), ".aws/credentials", b"SECRET=aws");
        write(t.path(), "deploy/id_ed25519", b"SECRET=ssh");
        let link = |target: &str, name: &str| {
            let p = t.path().join(name);
            if let Some(parent) = p.parent() {
                fs::create_dir_all(parent).unwrap();
            }
            std::os::unix::fs::symlink(target, p).unwrap();
        };
        link(".env", "config.txt");
        link("../.aws/credentials", "providers/settings.ini");
        link(".aws", "cloud");
        link("deploy/id_ed25519", "readme.md");
        // A chain: the last hop decides.
        link("config.txt", "notes.txt");
        // An innocent link to an innocent file stays.
        write(t.path(), "shared/prompt.txt", b"kept");
        link("shared/prompt.txt", "prompt.txt");
        let b = bundle_dir(t.path()).unwrap();
        assert_eq!(
            b.files,
            vec!["prompt.txt", "server.py", "shared/prompt.txt"]
        );
        assert_eq!(
            b.secrets_left_out,
            vec![
                ".aws/",
                ".env",
                "cloud -> .aws",
                "config.txt -> .env",
                "deploy/id_ed25519",
                "notes.txt -> .env",
                "providers/settings.ini -> .aws/credentials",
                "readme.md -> deploy/id_ed25519",
            ]
        );
        assert!(!String::from_utf8_lossy(&b.tar).contains("SECRET="));
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_to_a_secret_outside_dir_is_left_out_not_offered_to_be_copied_in() {
        let home = tempfile::tempdir().unwrap();
        write(home.path(), ".aws/credentials", b"SECRET=aws");
        let t = tempfile::tempdir().unwrap();
        write(t.path(), "server.py", b"s");
        std::os::unix::fs::symlink(
            home.path().join(".aws/credentials"),
            t.path().join("aws.ini"),
        )
        .unwrap();
        let b = bundle_dir(t.path()).unwrap();
        assert_eq!(b.files, vec!["server.py"]);
        let canonical = fs::canonicalize(home.path().join(".aws/credentials")).unwrap();
        assert_eq!(
            b.secrets_left_out,
            vec![format!("aws.ini -> {}", canonical.display())]
        );
    }

    #[cfg(unix)]
    #[test]
    fn the_directory_holding_dir_does_not_make_its_files_secret() {
        // DIR inside a directory named like a secret: its links are judged inside DIR only.
        let t = tempfile::tempdir().unwrap();
        let project = t.path().join("credentials-service/agent");
        write(&project, "server.py", b"s");
        write(&project, "shared/prompt.txt", b"kept");
        std::os::unix::fs::symlink("shared/prompt.txt", project.join("prompt.txt")).unwrap();
        let b = bundle_dir(&project).unwrap();
        assert_eq!(
            b.files,
            vec!["prompt.txt", "server.py", "shared/prompt.txt"]
        );
        assert!(b.secrets_left_out.is_empty());
    }

    #[cfg(unix)]
    #[test]
    fn symlink_inside_is_stored_as_the_file_it_points_to() {
        let t = tempfile::tempdir().unwrap();
        write(t.path(), "server.py", b"s");
        write(t.path(), "shared/config.py", b"c");
        std::os::unix::fs::symlink("shared/config.py", t.path().join("config.py")).unwrap();
        std::os::unix::fs::symlink("shared", t.path().join("alias")).unwrap();
        let b = bundle_dir(t.path()).unwrap();
        assert_eq!(
            b.files,
            vec![
                "alias/config.py",
                "config.py",
                "server.py",
                "shared/config.py"
            ]
        );
        // Stored as regular files, not links.
        assert!(
            tar_listing(&b.tar)
                .iter()
                .all(|(_, mode, _)| *mode == 0o644 || *mode == 0o755)
        );

        // Same bytes as a tree with real copies instead of links.
        let u = tempfile::tempdir().unwrap();
        for f in ["alias/config.py", "config.py", "shared/config.py"] {
            write(u.path(), f, b"c");
        }
        write(u.path(), "server.py", b"s");
        assert_eq!(bundle_dir(u.path()).unwrap().hash, b.hash);
    }

    #[cfg(unix)]
    #[test]
    fn symlink_outside_is_refused_naming_file_and_fix() {
        let outside = tempfile::tempdir().unwrap();
        write(outside.path(), "secret.txt", b"x");
        let t = tempfile::tempdir().unwrap();
        write(t.path(), "server.py", b"s");
        fs::create_dir(t.path().join("providers")).unwrap();
        std::os::unix::fs::symlink(
            outside.path().join("secret.txt"),
            t.path().join("providers/link.txt"),
        )
        .unwrap();
        let err = bundle_dir(t.path()).unwrap_err();
        assert!(matches!(err, BundleError::SymlinkOutside { .. }), "{err}");
        let msg = err.to_string();
        assert!(msg.contains("providers/link.txt"), "{msg}");
        assert!(msg.contains("outside the project directory"), "{msg}");
        assert!(msg.contains(IGNORE_FILE), "{msg}");

        // Ignoring it is the fix.
        write(t.path(), IGNORE_FILE, b"providers/link.txt\n");
        assert!(bundle_dir(t.path()).is_ok());
    }

    #[cfg(unix)]
    #[test]
    fn relative_symlink_escaping_via_dotdot_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let project = t.path().join("p");
        write(&project, "server.py", b"s");
        write(t.path(), "sibling.txt", b"x");
        std::os::unix::fs::symlink("../sibling.txt", project.join("s.txt")).unwrap();
        let err = bundle_dir(&project).unwrap_err();
        assert!(matches!(err, BundleError::SymlinkOutside { .. }), "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn broken_symlink_and_loop_are_refused() {
        let t = tempfile::tempdir().unwrap();
        write(t.path(), "server.py", b"s");
        std::os::unix::fs::symlink("missing.py", t.path().join("dangling.py")).unwrap();
        let err = bundle_dir(t.path()).unwrap_err();
        assert!(matches!(err, BundleError::BrokenSymlink { .. }), "{err}");
        assert!(err.to_string().contains("dangling.py"), "{err}");

        let u = tempfile::tempdir().unwrap();
        write(u.path(), "server.py", b"s");
        fs::create_dir(u.path().join("sub")).unwrap();
        std::os::unix::fs::symlink("..", u.path().join("sub/up")).unwrap();
        let err = bundle_dir(u.path()).unwrap_err();
        assert!(matches!(err, BundleError::SymlinkLoop { .. }), "{err}");
        assert!(err.to_string().contains("sub/up"), "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn fifo_and_socket_are_refused() {
        let t = tempfile::tempdir().unwrap();
        write(t.path(), "server.py", b"s");
        let status = std::process::Command::new("mkfifo")
            .arg(t.path().join("pipe"))
            .status()
            .unwrap();
        assert!(status.success());
        let err = bundle_dir(t.path()).unwrap_err();
        assert!(
            matches!(err, BundleError::SpecialFile { kind: "fifo", .. }),
            "{err}"
        );
        assert!(err.to_string().contains("pipe"), "{err}");
        fs::remove_file(t.path().join("pipe")).unwrap();

        let _sock = std::os::unix::net::UnixListener::bind(t.path().join("agent.sock")).unwrap();
        let err = bundle_dir(t.path()).unwrap_err();
        assert!(
            matches!(err, BundleError::SpecialFile { kind: "socket", .. }),
            "{err}"
        );
        assert!(err.to_string().contains("agent.sock"), "{err}");

        write(t.path(), IGNORE_FILE, b"*.sock\n");
        assert!(bundle_dir(t.path()).is_ok());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn non_utf8_path_is_refused() {
        use std::os::unix::ffi::OsStrExt;
        let t = tempfile::tempdir().unwrap();
        write(t.path(), "server.py", b"s");
        let name = std::ffi::OsStr::from_bytes(b"bad\xffname.py");
        fs::write(t.path().join(name), b"x").unwrap();
        let err = bundle_dir(t.path()).unwrap_err();
        assert!(matches!(err, BundleError::NonUtf8Path { .. }), "{err}");
        let msg = err.to_string();
        assert!(msg.contains("bad"), "{msg}");
        assert!(msg.contains("UTF-8"), "{msg}");
    }

    /// Incompressible bytes, deterministically.
    fn noise(n: usize, mut seed: u64) -> Vec<u8> {
        (0..n)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect()
    }

    #[test]
    fn oversized_bundle_is_refused_listing_the_largest_files() {
        let t = tempfile::tempdir().unwrap();
        write(t.path(), "server.py", b"s");
        write(t.path(), "model/weights.bin", &noise(900 * 1024, 1));
        write(t.path(), "data/extra.bin", &noise(300 * 1024, 2));
        let err = bundle_dir(t.path()).unwrap_err();
        let BundleError::TooLarge { largest, .. } = &err else {
            panic!("{err}");
        };
        assert_eq!(largest[0].0, "model/weights.bin");
        let msg = err.to_string();
        assert!(msg.contains("model/weights.bin (900.0 KiB)"), "{msg}");
        assert!(msg.contains("data/extra.bin"), "{msg}");
        assert!(msg.contains(IGNORE_FILE), "{msg}");

        // Compressible content of the same size is fine: the limit is on what is stored.
        let u = tempfile::tempdir().unwrap();
        write(u.path(), "server.py", b"s");
        write(u.path(), "big.txt", &vec![b'a'; 2 * 1024 * 1024]);
        assert!(bundle_dir(u.path()).is_ok());
    }

    #[test]
    fn smaller_limits_refuse_at_their_own_sizes_with_the_same_messages() {
        let t = tempfile::tempdir().unwrap();
        write(t.path(), "server.py", b"s");
        write(t.path(), "a.bin", &noise(3000, 3));
        let small = Limits {
            compressed: 2048,
            raw: 1 << 20,
        };
        let err = bundle_dir_within(t.path(), &small).unwrap_err();
        assert!(
            matches!(err, BundleError::TooLarge { limit: 2048, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("a.bin (2.9 KiB)"), "{err}");
        let tiny = Limits {
            compressed: 2048,
            raw: 2000,
        };
        let err = bundle_dir_within(t.path(), &tiny).unwrap_err();
        assert!(
            matches!(err, BundleError::TooLargeRaw { limit: 2000, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("more than 2.0 KiB"), "{err}");
        // The default is Kubernetes' limit, which this tree is far below.
        assert_eq!(
            bundle_dir_within(t.path(), &Limits::default()).unwrap(),
            bundle_dir(t.path()).unwrap()
        );
    }

    #[test]
    fn empty_and_missing_directories_are_refused() {
        let t = tempfile::tempdir().unwrap();
        let err = bundle_dir(t.path()).unwrap_err();
        assert!(matches!(err, BundleError::Empty { .. }), "{err}");
        assert!(err.to_string().contains("no files to package"), "{err}");

        // Only ignored files and secrets: still nothing to package, and it says what it left out.
        write(t.path(), "__pycache__/x.pyc", b"x");
        write(t.path(), ".env", b"x");
        write(t.path(), "infra/terraform.tfstate", b"x");
        fs::create_dir(t.path().join("emptydir")).unwrap();
        let err = bundle_dir(t.path()).unwrap_err();
        assert!(matches!(err, BundleError::Empty { .. }), "{err}");
        assert!(
            err.to_string()
                .contains("leaving out secrets: .env, infra/terraform.tfstate)"),
            "{err}"
        );

        let missing = t.path().join("nope");
        let err = bundle_dir(&missing).unwrap_err();
        assert!(matches!(err, BundleError::Io { .. }), "{err}");
        assert!(err.to_string().contains("nope"), "{err}");

        write(t.path(), "file.txt", b"x");
        let err = bundle_dir(&t.path().join("file.txt")).unwrap_err();
        assert!(matches!(err, BundleError::NotADirectory { .. }), "{err}");
    }

    #[test]
    fn instance_configmap_is_immutable_labelled_and_carries_the_digest() {
        let t = tempfile::tempdir().unwrap();
        for (rel, data) in agent_files() {
            write(t.path(), rel, data);
        }
        let b = bundle_dir(t.path()).unwrap();
        let project = ProjectId::parse("demo").unwrap();
        let cm = instance_configmap(&project, &b);
        assert_eq!(
            cm.metadata.name.as_deref(),
            Some(format!("instance-{}", b.hash.short()).as_str())
        );
        assert_eq!(cm.immutable, Some(true));
        let labels = cm.metadata.labels.clone().unwrap();
        assert_eq!(labels[LABEL_PROJECT], "demo");
        assert_eq!(labels[LABEL_CONTENT_HASH], b.hash.short());
        assert_eq!(
            cm.metadata.annotations.clone().unwrap()[ANNOTATION_CONTENT_SHA256],
            b.hash.full()
        );
        assert_eq!(
            hex::encode(Sha256::digest(&b.tar)),
            b.hash.full(),
            "the hash is of the uncompressed tar"
        );
        let gz = &cm.binary_data.as_ref().unwrap()[INSTANCE_TAR_KEY].0;
        let mut tar = Vec::new();
        flate2::read::GzDecoder::new(gz.as_slice())
            .read_to_end(&mut tar)
            .unwrap();
        assert_eq!(tar, b.tar);
        assert!(cm.data.is_none());
        assert!(!b.has_dockerfile);
    }

    #[test]
    fn dockerfile_is_detected_only_at_the_top() {
        let t = tempfile::tempdir().unwrap();
        write(t.path(), "server.py", b"s");
        write(t.path(), "sub/Dockerfile", b"FROM x");
        assert!(!bundle_dir(t.path()).unwrap().has_dockerfile);
        write(t.path(), "Dockerfile", b"FROM x");
        assert!(bundle_dir(t.path()).unwrap().has_dockerfile);
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human_bytes(100), "100 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 * 1024 * 1024), "3.0 MiB");
    }
}
