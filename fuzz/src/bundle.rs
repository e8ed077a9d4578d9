//! Raw bytes as a recipe for a project directory (names, nesting, symlinks, sizes, modes,
//! special files, a `.jockeyignore` and a `.jockeysecretsok`, keys and placeholders planted in
//! file content), then the bundle builder over it.
//!
//! Invariants: never a panic; a refusal names the path and the fix, and a size refusal is past
//! its limit; a refusal for a secret names, for each finding, a text file whose line holds the
//! finding's marker, and never shows a planted secret; an accepted bundle is within its limits,
//! holds only relative, `..`-free paths inside the directory, never a secret-looking file, never
//! a planted key in a text file unless `.jockeysecretsok` exempts files, its hash is the SHA-256
//! of its tar, its gzip holds that tar, and the tar reads back to entries that pack again to the
//! same bytes.
//!
//! Speed is coverage here: the tree lives on a tmpfs when there is one, file contents are a few
//! hundred bytes, and the size refusals are reached through small [`LIMITS`] (the same code
//! paths as Kubernetes' 1 MiB, with kilobytes); the tree is walked and packed once.

use jockey_core::bundle::{self, Bundle, BundleError, Entry, EntryKind, Limits};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

/// Names the recipe picks from: the ones the builder treats specially, and awkward ones.
const NAMES: &[&[u8]] = &[
    b"server.py",
    b"providers",
    b"Dockerfile",
    b"a",
    b"A",
    b".env",
    b".env.local",
    b"ID_RSA",
    b"id_ed25519.pub",
    b"key.pem",
    b".ssh",
    b".aws",
    b"credentials.json",
    b".docker",
    b"config.json",
    b".git",
    b"__pycache__",
    b"x.pyc",
    b"node_modules",
    b".venv",
    b".jockeyignore",
    b"with space",
    b"\xc3\xbc-utf8",
    b"\xff\xfe-not-utf8",
    b"-dash",
    b"...",
    b"#hash",
    b"!bang",
    b"*star",
    b"new\nline",
    b"back\\slash",
    b"averyveryveryveryveryveryveryveryveryveryveryveryveryveryveryveryveryveryveryverylongnamepastonehundredbytes_for_gnu_longname_records",
    b"token.json",
    b"secrets.toml",
    b"terraform.tfstate",
    b"prod.tfstate.backup",
    b"client_secret_1.apps.googleusercontent.com.json",
    b".jockeysecretsok",
];

/// Text planted in a file (`op & 0x08` on a write): a key of each kind the content check knows,
/// or a placeholder of one. `secret` is what must never reach a message and, for a real key,
/// what an accepted bundle must not hold in a text file.
pub struct Plant {
    pub text: String,
    pub secret: String,
    pub real: bool,
}

/// Deterministic key characters: the keys are made at run time, so the repository holds none.
fn key_chars(alphabet: &str, n: usize, seed: u64) -> String {
    let a = alphabet.as_bytes();
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            a[(x % a.len() as u64) as usize] as char
        })
        .collect()
}

pub static PLANTS: LazyLock<Vec<Plant>> = LazyLock::new(|| {
    const ALNUM: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    const BASE32: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let urlsafe = format!("{ALNUM}-_");
    let base64 = format!("{ALNUM}+/");
    let real = |marker: &str, secret: String, before: &str, after: &str| Plant {
        text: format!("{before}{marker}{secret}{after}"),
        secret,
        real: true,
    };
    let placeholder = |text: &str, secret: &str| Plant {
        text: text.to_string(),
        secret: secret.to_string(),
        real: false,
    };
    let material = key_chars(&base64, 128, 7);
    let pem = format!("{}\n{}", &material[..64], &material[64..]);
    vec![
        real("AKIA", key_chars(BASE32, 16, 1), "KEY_ID = '", "'"),
        real(
            "sk-proj-",
            key_chars(&urlsafe, 100, 2),
            "OPENAI_API_KEY = \"",
            "\"",
        ),
        real(
            &format!("-----BEGIN {} PRIVATE KEY-----\n", "RSA"),
            pem,
            "",
            "\n-----END RSA PRIVATE KEY-----",
        ),
        real("ghp_", key_chars(ALNUM, 36, 3), "token: ", ""),
        real("AIza", key_chars(&urlsafe, 35, 4), "{\"key\": \"", "\"}"),
        real(
            "xoxb-",
            format!(
                "{}-{}",
                key_chars("0123456789", 12, 5),
                key_chars(ALNUM, 24, 6)
            ),
            "SLACK=",
            "",
        ),
        real(
            "aws_secret_access_key = ",
            key_chars(&base64, 40, 8),
            "[default]\n",
            "",
        ),
        real(
            "sk_live_",
            key_chars(ALNUM, 24, 9),
            "stripe.api_key = '",
            "'",
        ),
        placeholder("KEY_ID = 'AKIAIOSFODNN7EXAMPLE'", "IOSFODNN7EXAMPLE"),
        placeholder(
            "OPENAI_API_KEY = 'sk-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'",
            "xxxxxxxxxxxxxxxx",
        ),
        placeholder("KEY = '-----BEGIN PRIVATE KEY-----\n...'", "..."),
        placeholder(
            "OPENAI_API_KEY = 'sk-your-openai-api-key-goes-here'",
            "your-openai-api-key",
        ),
    ]
});

/// Symlink targets: inside, outside, up, absolute, dangling, into secrets, loops.
const TARGETS: &[&str] = &[
    "server.py",
    "a",
    "providers",
    ".",
    "..",
    "../..",
    "/",
    "/etc/hostname",
    "/nonexistent/x",
    "missing",
    ".env",
    ".ssh",
    "../a",
    "a/../server.py",
];

/// Small enough that a few files of the recipe pass them.
pub const LIMITS: Limits = Limits {
    compressed: 2048,
    raw: 16 * 1024,
};

/// Reads the recipe; past its end every read yields 0.
struct Recipe<'a>(&'a [u8]);

impl Recipe<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }
    fn done(&self) -> bool {
        self.0.is_empty()
    }
    /// A relative path of one to three names.
    fn path(&mut self) -> PathBuf {
        let depth = 1 + self.byte() % 3;
        let mut p = PathBuf::new();
        for _ in 0..depth {
            let b = self.byte();
            let name = NAMES[b as usize % NAMES.len()];
            p.push(std::ffi::OsStr::from_bytes(name));
        }
        p
    }
    /// Printable-ish bytes for file content and ignore lines.
    fn text(&mut self, max: usize) -> Vec<u8> {
        let n = self.byte() as usize % (max + 1);
        (0..n).map(|_| self.byte()).collect()
    }
}

/// Deterministic filler, so a size in the recipe costs two bytes, not the content.
fn filler(len: usize, seed: u8, compressible: bool) -> Vec<u8> {
    if compressible {
        return vec![b'a' + seed % 26; len];
    }
    let mut x = u64::from(seed) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn build_tree(root: &Path, recipe: &mut Recipe) {
    // Almost every project has its server; a recipe can still take it away (op 6).
    let _ = std::fs::write(root.join("server.py"), b"print('hi')\n");
    for _ in 0..48 {
        if recipe.done() {
            break;
        }
        let op = recipe.byte();
        let path = root.join(recipe.path());
        if let Some(parent) = path.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        match op % 8 {
            0 | 1 => {
                let size = recipe.u16() as usize % 640;
                let mut data = filler(size, op, op & 0x10 != 0);
                if op & 0x08 != 0 {
                    // On a line of its own somewhere in the filler (binary or text).
                    let plant = &PLANTS[recipe.byte() as usize % PLANTS.len()];
                    let at = recipe.u16() as usize % (data.len() + 1);
                    let text = format!("\n{}\n", plant.text);
                    data.splice(at..at, text.into_bytes());
                }
                let _ = std::fs::write(&path, data);
                set_mode(&path, op);
            }
            2 => {
                let _ = std::fs::create_dir_all(&path);
                set_mode(&path, op | 0x40);
            }
            3 => {
                let t = TARGETS[recipe.byte() as usize % TARGETS.len()];
                let _ = std::os::unix::fs::symlink(t, &path);
            }
            4 => {
                // A symlink to a path of the recipe's own (possibly to itself or an ancestor).
                let t = recipe.path();
                let _ = std::os::unix::fs::symlink(t, &path);
            }
            5 => {
                let file = if op & 0x08 != 0 {
                    bundle::SECRETS_OK_FILE
                } else {
                    bundle::IGNORE_FILE
                };
                let _ = std::fs::write(root.join(file), recipe.text(64));
            }
            6 => {
                let _ = std::fs::remove_file(&path);
                let _ = std::fs::remove_dir_all(&path);
            }
            _ => match recipe.byte() % 4 {
                // A special file: the builder must refuse it (or skip it if ignored).
                0 => {
                    let _ = std::os::unix::net::UnixListener::bind(&path);
                }
                // Big: raw content up to twice the raw limit, around both limits.
                1 => {
                    let size = recipe.u16() as usize % (2 * LIMITS.raw as usize);
                    let _ = std::fs::write(&path, filler(size, op, op & 0x10 != 0));
                }
                // Empty.
                2 => {
                    let _ = std::fs::write(&path, b"");
                }
                // Sparse, past the raw limit: must be refused by size before being read.
                _ => {
                    if let Ok(f) = std::fs::File::create(&path) {
                        let _ = f.set_len(LIMITS.raw + 1 + u64::from(recipe.byte()));
                    }
                }
            },
        }
    }
}

fn set_mode(path: &Path, op: u8) {
    use std::os::unix::fs::PermissionsExt;
    let mode = match op >> 5 {
        0 => 0o644,
        1 => 0o755,
        2 => 0o600,
        3 => 0o700,
        4 => 0o444,
        5 => 0o555,
        6 => 0o4755,
        _ => 0o777,
    };
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode));
}

/// A tmpfs when there is one: the target's speed is the file system's.
fn scratch() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir()
        && let Ok(d) = tempfile::Builder::new()
            .prefix("jockey-fuzz")
            .tempdir_in(shm)
    {
        return d;
    }
    tempfile::Builder::new()
        .prefix("jockey-fuzz")
        .tempdir()
        .expect("a temporary directory")
}

fn is_secret_name(name: &str, is_dir: bool) -> bool {
    let n = name.to_ascii_lowercase();
    n.starts_with(".env")
        || n.starts_with("id_rsa")
        || n.starts_with("id_ed25519")
        || n.ends_with(".pem")
        || n.starts_with("credentials")
        || n == "token.json"
        || n == "secrets.toml"
        || n.ends_with(".tfstate")
        || n.ends_with(".tfstate.backup")
        || (n.starts_with("client_secret") && n.ends_with(".json"))
        || (is_dir && (n == ".ssh" || n == ".aws"))
}

/// Git's test, as the content check applies it: a NUL byte in the first 8 KiB.
fn is_binary(data: &[u8]) -> bool {
    data.iter().take(8 * 1024).any(|b| *b == 0)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

pub fn run(data: &[u8]) {
    let dir = scratch();
    let root = dir.path().join("project");
    if std::fs::create_dir(&root).is_err() {
        return;
    }
    build_tree(&root, &mut Recipe(data));
    let collected = bundle::collect_within(&root, &LIMITS);
    if let Ok(c) = &collected {
        let raw: usize = c
            .entries
            .iter()
            .map(|e| match &e.kind {
                EntryKind::File { data, .. } => data.len(),
                EntryKind::Dir => 0,
            })
            .sum();
        assert!(raw as u64 <= LIMITS.raw, "{raw} raw bytes collected");
    }
    match collected.and_then(|c| Bundle::from_collected_within(c, &LIMITS)) {
        Err(e) => check_refusal(&root, &e),
        Ok(b) => check_bundle(&root, &b),
    }
}

fn check_refusal(root: &Path, e: &BundleError) {
    let msg = e.to_string();
    // Every refusal says what to do about it.
    let fix = [
        "add",
        "fix",
        "rename",
        "remove",
        "copy",
        "check",
        "move",
        "point deploy",
        "pass the project",
    ];
    assert!(
        fix.iter().any(|f| msg.contains(f)),
        "a refusal without a fix: {msg}"
    );
    match e {
        BundleError::SecretFound { findings } => {
            assert!(!findings.is_empty(), "a secret refusal without a finding");
            // Not a planted secret, nor its first characters. (Other refusals may quote a bad
            // `.jockeyignore` pattern, whatever the recipe wrote there.)
            for plant in PLANTS.iter().filter(|p| p.real) {
                assert!(
                    !msg.contains(&plant.secret) && !msg.contains(&plant.secret[..8]),
                    "a refusal shows a planted secret: {msg}"
                );
            }
            for f in findings.iter().take(10) {
                assert!(
                    msg.contains(&format!("{}:{}: ", f.path, f.line)),
                    "{}:{} is not named: {msg}",
                    f.path,
                    f.line
                );
                // The file is a text file of DIR whose line holds the marker that told.
                let data = std::fs::read(root.join(&f.path)).expect("a finding's file reads");
                assert!(!is_binary(&data), "{}: binary, yet read", f.path);
                let line = data
                    .split(|b| *b == b'\n')
                    .nth(f.line - 1)
                    .unwrap_or_else(|| panic!("{}:{} is past the end", f.path, f.line));
                assert!(
                    contains(line, f.marker.as_bytes()),
                    "{}:{} does not hold {:?}",
                    f.path,
                    f.line,
                    f.marker
                );
            }
        }
        BundleError::TooLarge {
            size,
            limit,
            largest,
        } => {
            assert!(size > limit, "refused at {size} bytes, within {limit}");
            assert_eq!(*limit, LIMITS.compressed);
            assert!(!largest.is_empty(), "no largest file named: {msg}");
            assert!(
                largest.windows(2).all(|w| w[0].1 >= w[1].1),
                "the largest files are not in size order: {largest:?}"
            );
        }
        BundleError::TooLargeRaw { limit, largest } => {
            assert_eq!(*limit, LIMITS.raw);
            assert!(!largest.is_empty(), "no file named: {msg}");
        }
        _ => {}
    }
}

fn check_bundle(root: &Path, b: &Bundle) {
    // Without an exemption, no planted key is packaged in a text file.
    let exempting = root.join(bundle::SECRETS_OK_FILE).exists();
    assert!(
        b.gz.len() + jockey_core::names::INSTANCE_TAR_KEY.len() <= LIMITS.compressed,
        "accepted at {} bytes",
        b.gz.len()
    );
    assert_eq!(
        b.hash.full(),
        hex::encode(Sha256::digest(&b.tar)),
        "the hash is not the tar's"
    );
    let mut gz = Vec::new();
    flate2::read::GzDecoder::new(b.gz.as_slice())
        .read_to_end(&mut gz)
        .expect("the gzip reads back");
    assert_eq!(gz, b.tar, "the gzip does not hold the tar");
    let mut archive = tar::Archive::new(b.tar.as_slice());
    let mut files = Vec::new();
    let mut entries = Vec::new();
    for entry in archive.entries().expect("the tar reads back") {
        let mut entry = entry.expect("a tar entry reads back");
        let path = entry
            .path()
            .expect("a tar path")
            .to_string_lossy()
            .to_string();
        assert!(!path.starts_with('/'), "absolute path {path:?} in the tar");
        assert!(
            !path.split('/').any(|c| c == ".." || c == "."),
            "path {path:?} leaves or names the directory"
        );
        // Secret-looking names at any depth; `.ssh`, `.aws` only as directories (the patterns
        // `.ssh/`, `.aws/`): a plain file of that name is not a key store.
        let header = entry.header().clone();
        let components: Vec<&str> = path.split('/').collect();
        for (i, component) in components.iter().enumerate() {
            let is_dir = i + 1 < components.len() || header.entry_type().is_dir();
            assert!(
                !is_secret_name(component, is_dir),
                "secret {path:?} was packaged"
            );
        }
        assert_eq!(header.mtime().ok(), Some(0), "{path}: mtime");
        assert_eq!(header.uid().ok(), Some(0), "{path}: uid");
        let mode = header.mode().unwrap_or(0);
        assert!(mode == 0o644 || mode == 0o755, "{path}: mode {mode:o}");
        if header.entry_type().is_file() {
            let mut data = Vec::new();
            entry.read_to_end(&mut data).expect("file data reads back");
            if !exempting && !is_binary(&data) {
                for plant in PLANTS.iter().filter(|p| p.real) {
                    assert!(
                        !contains(&data, plant.text.as_bytes()),
                        "{path}: a planted key was packaged"
                    );
                }
            }
            files.push(path.clone());
            entries.push(Entry::file(path, data, mode == 0o755));
        } else {
            assert!(header.entry_type().is_dir(), "{path}: neither file nor dir");
            entries.push(Entry::dir(path));
        }
    }
    assert_eq!(files, b.files, "the tar's files are not the bundle's list");
    let mut sorted = entries.clone();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    assert_eq!(entries, sorted, "the tar is not in path order");
    // What the tar holds makes the same tar again: its bytes come from the entries alone.
    assert!(
        bundle::canonical_tar(&entries) == b.tar,
        "the tar does not round-trip"
    );
}

#[cfg(test)]
mod tests {
    use super::PLANTS;
    use jockey_core::bundle::secrets::find_secrets;

    /// The recipe's plants do what they are for: each real key is found, no placeholder is.
    #[test]
    fn plants_hit_the_content_check() {
        for plant in PLANTS.iter() {
            let found = find_secrets("f", format!("\n{}\n", plant.text).as_bytes());
            assert_eq!(found.len(), usize::from(plant.real), "{}", plant.text);
            assert!(plant.secret.len() >= 3);
        }
    }
}
