//! What counts as a secret in a project directory, in one place. The instance files are copied
//! into the shared builder namespace and baked into an image, so a secret that reaches the bundle
//! is readable by anyone who can read the ConfigMap, its builder copy or an image layer.
//!
//! - By name ([`SECRET_PATTERNS`]): files and directories that hold credentials by convention
//!   are left out and listed, never packaged.
//! - By content ([`find_secrets`]): a file that is packaged (after the ignores and the name
//!   filter) and carries a credential of a well-known shape refuses the whole deploy, naming
//!   `path:line` and the kind of secret, never the secret. Leaving such a file out instead would
//!   deploy a server that lacks it; the value belongs in the project's Secret.
//!
//! A match is a placeholder, not a secret, when the part after its well-known marker (after
//! `AKIA`, `sk-proj-`, `ghp_`, the key material after `-----BEGIN ... PRIVATE KEY-----`):
//!
//! - holds a run of eight characters that repeat or count up (`xxxxxxxx`, `00000000`,
//!   `12345678`, `abcdefgh`), or
//! - holds, in any case, one of the words `example`, `sample`, `placeholder`, `redacted`,
//!   `dummy` (AWS documents `AKIAIOSFODNN7EXAMPLE`), or
//! - has neither a capital letter nor a digit (`sk-replace-with-your-key`: words, not a random
//!   string).
//!
//! A real key is random: the chance that one looks like a placeholder by these rules is below
//! one in a hundred thousand. Shapes that need no rule never match: `sk-...` and `sk-xxxxxxxx`
//! are too short, a `-----BEGIN PRIVATE KEY-----` with no key material after it (code that
//! recognises the header) is not a key. What is still a false positive (a test fixture, a
//! published test key) is listed in [`SECRETS_OK_FILE`].

use super::{Entry, EntryKind};
use regex::bytes::Regex;
use std::fmt;
use std::sync::LazyLock;

/// Environment files, keys, keystores and credential stores: never packaged; left out and
/// listed instead, whatever `.jockeyignore` says. gitignore syntax, matched case-insensitively at
/// any depth on a file's or directory's own name (a trailing `/` matches directories only, with
/// everything in them). A symlink is left out when either its own path or the path it resolves
/// to matches, so `config.txt -> .env` does not smuggle the file in under another name.
pub const SECRET_PATTERNS: &[&str] = &[
    // Environment files: `.env`, `.env.local`, `.env.production`, ...
    ".env*",
    // Private keys and keystores.
    "*.pem",
    "*.key",
    "*.p8",
    "*.p12",
    "*.pfx",
    "*.jks",
    "*.keystore",
    "*.ppk",
    // SSH keys (private and public: a public key names its private one) and whole key stores.
    "id_rsa*",
    "id_dsa*",
    "id_ecdsa*",
    "id_ed25519*",
    ".ssh/",
    ".gnupg/",
    // Cloud and cluster credentials.
    "credentials*",
    ".aws/",
    ".kube/",
    "kubeconfig",
    "*.kubeconfig",
    "service-account*.json",
    "**/.docker/config.json",
    // Google's OAuth client (`client_secret_<id>.apps.googleusercontent.com.json` as the console
    // downloads it) and the token its quickstarts write next to it.
    "client_secret*.json",
    "token.json",
    // Streamlit's secrets (`.streamlit/secrets.toml`).
    "secrets.toml",
    // Terraform state holds every resource's attributes in clear, passwords and keys included.
    "*.tfstate",
    "*.tfstate.backup",
    // Package-registry and git tokens, database passwords.
    ".netrc",
    "_netrc",
    ".pypirc",
    ".npmrc",
    ".git-credentials",
    ".pgpass",
];

/// `.ENV` or `ID_RSA` on a case-insensitive file system is the same file.
pub(super) fn name_matcher() -> &'static ignore::gitignore::Gitignore {
    static CELL: std::sync::OnceLock<ignore::gitignore::Gitignore> = std::sync::OnceLock::new();
    super::collect::static_matcher(&CELL, SECRET_PATTERNS, true)
}

/// The optional file at the root of DIR listing, in gitignore syntax like `.jockeyignore`, the
/// packaged files whose content is not checked for secrets: the escape hatch for a false positive.
/// It exempts nothing from the name filter, and it is an ordinary file of DIR: packaged like
/// `.jockeyignore` unless `.jockeyignore` lists it, and checked like any other.
pub const SECRETS_OK_FILE: &str = ".jockeysecretsok";

/// A NUL byte in the first 8 KiB makes a file binary (git's test), and a binary file is not read
/// for secrets: the shapes below are text, and in binary data they match only by chance.
pub const BINARY_PROBE_BYTES: usize = 8 * 1024;

/// Findings kept per file: every secret of a real file, bounded for a file made of them.
pub const MAX_FINDINGS_PER_FILE: usize = 20;

/// The kinds of secret the content check knows by shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SecretKind {
    PrivateKey,
    AwsAccessKeyId,
    AwsSecretAccessKey,
    OpenAiOrAnthropicKey,
    GoogleApiKey,
    GoogleOauthClientSecret,
    GitHubToken,
    GitLabToken,
    SlackToken,
    SlackWebhook,
    StripeLiveKey,
    HuggingFaceToken,
    NpmToken,
    PypiToken,
    SendGridKey,
    GroqKey,
}

impl SecretKind {
    pub fn describe(self) -> &'static str {
        match self {
            Self::PrivateKey => "a private key",
            Self::AwsAccessKeyId => "an AWS access key id",
            Self::AwsSecretAccessKey => "an AWS secret access key",
            Self::OpenAiOrAnthropicKey => "an OpenAI or Anthropic API key",
            Self::GoogleApiKey => "a Google API key",
            Self::GoogleOauthClientSecret => "a Google OAuth client secret",
            Self::GitHubToken => "a GitHub token",
            Self::GitLabToken => "a GitLab token",
            Self::SlackToken => "a Slack token",
            Self::SlackWebhook => "a Slack webhook URL",
            Self::StripeLiveKey => "a Stripe live key",
            Self::HuggingFaceToken => "a Hugging Face token",
            Self::NpmToken => "an npm token",
            Self::PypiToken => "a PyPI token",
            Self::SendGridKey => "a SendGrid API key",
            Self::GroqKey => "a Groq API key",
        }
    }
}

/// One secret found in a file: where, what kind, and the well-known marker that told (`AKIA`,
/// `sk-proj-`, the `-----BEGIN RSA PRIVATE KEY-----` line, the `aws_secret_access_key` a value
/// was assigned to). Holds none of the secret's own characters, so neither can its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The file's path in the bundle.
    pub path: String,
    /// 1-based, the line the marker starts on.
    pub line: usize,
    pub kind: SecretKind,
    pub marker: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (path, line, kind) = (&self.path, self.line, self.kind.describe());
        match self.kind {
            SecretKind::PrivateKey => write!(f, "{path}:{line}: {kind} ({})", self.marker),
            SecretKind::AwsSecretAccessKey => {
                write!(f, "{path}:{line}: {kind} (the value of {})", self.marker)
            }
            _ => write!(f, "{path}:{line}: {kind} ({}...)", self.marker),
        }
    }
}

/// Each shape: `m` is the well-known marker (shown), `v` the secret (never shown, and what the
/// placeholder rule judges). Bytes without Unicode (`(?-u)`): a file need not be UTF-8, and `\b`
/// is the ASCII word boundary. Anchored on a marker wherever the format has one, so a random
/// string alone never matches; an AWS secret key has none and needs its variable's name.
const RULES: &[(SecretKind, &str)] = &[
    // PEM and PGP private keys, key material after the header (and any `Proc-Type:`-style
    // header lines, real or `\n`-escaped line breaks, quotes): the header alone is code that
    // recognises keys, not a key.
    (
        SecretKind::PrivateKey,
        r"(?-u)(?P<m>-----BEGIN (?:[A-Z0-9]+ ){0,3}PRIVATE KEY(?: BLOCK)?-----)(?:[^A-Za-z0-9+/=]|[A-Za-z][A-Za-z-]*: [^\r\n]*)*(?P<v>[A-Za-z0-9+/]{40})",
    ),
    (
        SecretKind::AwsAccessKeyId,
        r"(?-u)\b(?P<m>AKIA|ASIA)(?P<v>[A-Z0-9]{16})\b",
    ),
    // 40 characters of base64 are everywhere; next to this name they are an AWS secret key
    // (`aws_secret_access_key = `, `AWS_SECRET_ACCESS_KEY=`, `"SecretAccessKey": "`).
    (
        SecretKind::AwsSecretAccessKey,
        r"(?-u)(?P<m>(?i:aws[_.-]?secret[_.-]?(?:access[_.-]?)?key|secret[_.-]?access[_.-]?key))[^A-Za-z0-9/+\r\n]{1,8}(?P<v>[A-Za-z0-9/+]{40})(?:[^A-Za-z0-9/+=]|\z)",
    ),
    // `sk-...`, `sk-proj-...`, `sk-ant-api03-...`; also DeepSeek's and OpenRouter's `sk-or-`.
    (
        SecretKind::OpenAiOrAnthropicKey,
        r"(?-u)\b(?P<m>sk-(?:proj-|ant-|svcacct-|admin-)?)(?P<v>[A-Za-z0-9_-]{20,})",
    ),
    (
        SecretKind::GoogleApiKey,
        r"(?-u)\b(?P<m>AIza)(?P<v>[0-9A-Za-z_-]{35})(?:[^0-9A-Za-z_-]|\z)",
    ),
    (
        SecretKind::GoogleOauthClientSecret,
        r"(?-u)\b(?P<m>GOCSPX-)(?P<v>[0-9A-Za-z_-]{28})(?:[^0-9A-Za-z_-]|\z)",
    ),
    (
        SecretKind::GitHubToken,
        r"(?-u)\b(?P<m>gh[pousr]_)(?P<v>[A-Za-z0-9]{36})\b",
    ),
    (
        SecretKind::GitHubToken,
        r"(?-u)\b(?P<m>github_pat_)(?P<v>[A-Za-z0-9_]{22,})",
    ),
    (
        SecretKind::GitLabToken,
        r"(?-u)\b(?P<m>glpat-)(?P<v>[0-9A-Za-z_-]{20,})",
    ),
    (
        SecretKind::SlackToken,
        r"(?-u)\b(?P<m>xox[abeoprs]-)(?P<v>[0-9A-Za-z-]{10,})",
    ),
    (
        SecretKind::SlackToken,
        r"(?-u)\b(?P<m>xapp-)(?P<v>[0-9]-[0-9A-Za-z-]{10,})",
    ),
    (
        SecretKind::SlackWebhook,
        r"(?-u)(?P<m>https://hooks\.slack\.com/(?:services|workflows|triggers)/)(?P<v>[0-9A-Za-z_/-]{20,})",
    ),
    (
        SecretKind::StripeLiveKey,
        r"(?-u)\b(?P<m>[sr]k_live_)(?P<v>[0-9A-Za-z]{20,})",
    ),
    (
        SecretKind::HuggingFaceToken,
        r"(?-u)\b(?P<m>hf_)(?P<v>[A-Za-z]{34})\b",
    ),
    (
        SecretKind::NpmToken,
        r"(?-u)\b(?P<m>npm_)(?P<v>[A-Za-z0-9]{36})\b",
    ),
    (
        SecretKind::PypiToken,
        r"(?-u)\b(?P<m>pypi-)(?P<v>AgEIcHlwaS5vcmc[0-9A-Za-z_-]{50,})",
    ),
    (
        SecretKind::SendGridKey,
        r"(?-u)\b(?P<m>SG\.)(?P<v>[0-9A-Za-z_-]{22}\.[0-9A-Za-z_-]{43})(?:[^0-9A-Za-z_-]|\z)",
    ),
    (
        SecretKind::GroqKey,
        r"(?-u)\b(?P<m>gsk_)(?P<v>[A-Za-z0-9]{52})\b",
    ),
];

/// The rules compiled once per process: compiling costs more than scanning a small project.
/// A rule that failed to compile is dropped rather than panicking a deploy; the rules are
/// constants, and `every_rule_compiles` holds them all.
fn rules() -> &'static [(SecretKind, Regex)] {
    static COMPILED: LazyLock<Vec<(SecretKind, Regex)>> = LazyLock::new(|| {
        RULES
            .iter()
            .filter_map(|(kind, pattern)| Regex::new(pattern).ok().map(|re| (*kind, re)))
            .collect()
    });
    &COMPILED
}

/// Words that mark a documented stand-in; five letters or more, so that a random key holds one
/// by chance far less often than once in a hundred thousand.
const PLACEHOLDER_WORDS: &[&[u8]] = &[b"example", b"sample", b"placeholder", b"redacted", b"dummy"];

/// Repeating or counting characters that make a stand-in (`xxxxxxxx`, `12345678`).
const PLACEHOLDER_RUN: usize = 8;

/// The placeholder rule of the module documentation, on the part after the marker.
pub fn is_placeholder(value: &[u8]) -> bool {
    if !value
        .iter()
        .any(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    {
        return true;
    }
    let lower = value.to_ascii_lowercase();
    if PLACEHOLDER_WORDS
        .iter()
        .any(|w| lower.windows(w.len()).any(|x| x == *w))
    {
        return true;
    }
    let (mut same, mut counting) = (1, 1);
    for pair in value.windows(2) {
        same = if pair[1] == pair[0] { same + 1 } else { 1 };
        counting = if pair[0].is_ascii_alphanumeric() && pair[1] == pair[0].wrapping_add(1) {
            counting + 1
        } else {
            1
        };
        if same >= PLACEHOLDER_RUN || counting >= PLACEHOLDER_RUN {
            return true;
        }
    }
    false
}

/// Git's test: a NUL byte in the first [`BINARY_PROBE_BYTES`].
pub fn is_binary(bytes: &[u8]) -> bool {
    bytes[..bytes.len().min(BINARY_PROBE_BYTES)].contains(&0)
}

/// The secrets in one file's content, in line order, at most one per line and kind and at most
/// [`MAX_FINDINGS_PER_FILE`]. Pure: `path` only names the file in the findings. A binary file
/// has none.
pub fn find_secrets(path: &str, bytes: &[u8]) -> Vec<Finding> {
    if is_binary(bytes) {
        return Vec::new();
    }
    let mut hits: Vec<(usize, SecretKind, String)> = Vec::new();
    for (kind, re) in rules() {
        let mut per_rule = 0;
        for caps in re.captures_iter(bytes) {
            let (Some(marker), Some(value)) = (caps.name("m"), caps.name("v")) else {
                continue;
            };
            if is_placeholder(value.as_bytes()) {
                continue;
            }
            hits.push((
                marker.start(),
                *kind,
                String::from_utf8_lossy(marker.as_bytes()).into_owned(),
            ));
            per_rule += 1;
            if per_rule == MAX_FINDINGS_PER_FILE {
                break;
            }
        }
    }
    hits.sort_by_key(|(offset, kind, _)| (*offset, *kind));
    let mut findings: Vec<Finding> = Vec::new();
    let (mut line, mut counted_to) = (1, 0);
    for (offset, kind, marker) in hits {
        line += bytes[counted_to..offset]
            .iter()
            .filter(|b| **b == b'\n')
            .count();
        counted_to = offset;
        if findings.iter().any(|f| f.line == line && f.kind == kind) {
            continue;
        }
        findings.push(Finding {
            path: path.to_string(),
            line,
            kind,
            marker,
        });
    }
    findings.truncate(MAX_FINDINGS_PER_FILE);
    findings
}

/// The findings of every packaged file that `exempt` ([`SECRETS_OK_FILE`]) does not list, in
/// path order.
pub(super) fn scan(
    entries: &[Entry],
    exempt: Option<&ignore::gitignore::Gitignore>,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    for entry in entries {
        let EntryKind::File { data, .. } = &entry.kind else {
            continue;
        };
        // Entry paths are relative (the matcher asserts so): `collect` makes no other kind.
        if exempt.is_some_and(|m| {
            m.matched_path_or_any_parents(&entry.path, false)
                .is_ignore()
        }) {
            continue;
        }
        findings.extend(find_secrets(&entry.path, data));
    }
    findings.sort_by(|a, b| (&a.path, a.line).cmp(&(&b.path, b.line)));
    findings
}

#[cfg(test)]
mod tests;
