//! What counts as a secret in a project directory, in one place. The instance files are copied
//! into the shared builder namespace and baked into an image, so a secret that reaches the bundle
//! is readable by anyone who can read the ConfigMap, its builder copy or an image layer.
//!
//! - By name ([`SECRET_PATTERNS`]): files and directories that hold credentials by convention
//!   are left out and listed, never packaged.

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
    super::static_matcher(&CELL, SECRET_PATTERNS, true)
}
