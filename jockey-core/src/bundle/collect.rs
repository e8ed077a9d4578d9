//! Walking DIR: the default ignores and `.jockeyignore`, secret-looking names left out, symlinks
//! followed inside DIR, and what cannot be packaged refused, each with its fix. The only I/O of
//! the core, kept apart from the types and the packing so that every file-system rule reads in
//! one place and everything after it stays pure.

use super::{
    BundleError, Collected, Entry, EntryKind, IGNORE_FILE, Limits, SECRETS_OK_FILE, largest_files,
    secrets,
};
use std::path::{Path, PathBuf};

/// Never worth packaging: VCS metadata, caches, virtualenvs, dependency trees. Listed before the
/// user's `.jockeyignore`, so a `!pattern` there can bring one back on purpose.
pub const DEFAULT_IGNORES: &[&str] = &[".git/", "__pycache__/", "*.pyc", ".venv/", "node_modules/"];

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
pub(super) fn static_matcher(
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
mod tests;
