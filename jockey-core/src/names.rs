//! Names, labels and annotations of the contract (README, "The contract").

use std::fmt;

/// Prefix of every jockey label and annotation.
pub const PREFIX: &str = "jockey.agentops.ai/";
/// Label marking every object jockey owns or mutates; the webhook's object selector.
pub const LABEL_PROJECT: &str = "jockey.agentops.ai/project";
/// Annotation on a Deployment naming its instance ConfigMap (`instance-<h>`).
pub const ANNOTATION_INSTANCE: &str = "jockey.agentops.ai/instance";
/// Annotation on an instance ConfigMap carrying the full SHA-256 of the canonical tar.
pub const ANNOTATION_CONTENT_SHA256: &str = "jockey.agentops.ai/content-sha256";
/// Carries the host where it is not a valid label value.
pub const ANNOTATION_HOSTNAME: &str = "jockey.agentops.ai/hostname";
/// Set on an instance ConfigMap once the builder pushed its image: the image reference; several,
/// comma-separated, when projects in one namespace deploy identical files (and so share it).
pub const ANNOTATION_IMAGE: &str = "jockey.agentops.ai/image";
/// Label on objects naming the content hash (short form) they belong to.
pub const LABEL_CONTENT_HASH: &str = "jockey.agentops.ai/content-hash";
/// Pod selector label of a project's Deployment and Service.
pub const LABEL_APP: &str = "app";
/// The design document's routing labels.
pub const LABEL_DEPLOYMENT: &str = "deployment";
pub const LABEL_HOSTNAME: &str = "hostname";
/// An image left as this (or empty) means "the image the builder made for this instance".
pub const IMAGE_PLACEHOLDER: &str = "jockey:auto";
/// Key of the gzip'd tar in an instance ConfigMap's `binaryData`.
pub const INSTANCE_TAR_KEY: &str = "instance.tar.gz";
/// Pod template annotation: SHA-256 of the project's Secret `env-PROJECT` data (never the data),
/// so that a change of a secret value rolls the pods.
pub const ANNOTATION_SECRET_SHA256: &str = "jockey.agentops.ai/secret-sha256";
/// Annotation on Secret `env-PROJECT`: a JSON map from each key to when it last changed (RFC 3339).
pub const ANNOTATION_SECRET_CHANGED: &str = "jockey.agentops.ai/changed";
/// Field manager for server-side apply.
pub const FIELD_MANAGER: &str = "kubectl-jockey";

/// Longest project id: `ing-` plus 48 plus room for suffixes stays within 63.
pub const MAX_PROJECT_LEN: usize = 48;

/// A validated project id: a DNS-1123 label of at most 48 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProjectId(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid project id {value:?}: {reason}; use a DNS-1123 label of at most {MAX_PROJECT_LEN} characters \
     (lowercase letters, digits and '-', starting and ending with a letter or digit), e.g. a UUID"
)]
pub struct InvalidProject {
    pub value: String,
    pub reason: &'static str,
}

impl ProjectId {
    pub fn parse(value: &str) -> Result<Self, InvalidProject> {
        let fail = |reason| {
            Err(InvalidProject {
                value: value.to_string(),
                reason,
            })
        };
        if value.is_empty() {
            return fail("it is empty");
        }
        if value.len() > MAX_PROJECT_LEN {
            return fail("it is longer than 48 characters");
        }
        if !value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return fail("it may only contain lowercase letters, digits and '-'");
        }
        if value.starts_with('-') || value.ends_with('-') {
            return fail("it must start and end with a letter or digit");
        }
        Ok(Self(value.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn deployment_name(&self) -> String {
        self.0.clone()
    }
    pub fn service_name(&self) -> String {
        format!("svc-{}", self.0)
    }
    pub fn ingress_name(&self) -> String {
        format!("ing-{}", self.0)
    }
    /// The Secret holding the project's secret environment (`envFrom`).
    pub fn secret_name(&self) -> String {
        format!("env-{}", self.0)
    }
    /// The id as the first part of a name of at most `max` characters: cut, and suffixed with a
    /// digest of the whole id, when longer, so that two projects never share a name.
    pub fn name_part(&self, max: usize) -> String {
        use sha2::{Digest, Sha256};
        let p = self.0.as_str();
        if p.len() <= max {
            return p.to_string();
        }
        let digest = hex::encode(Sha256::digest(p.as_bytes()));
        let keep = max.saturating_sub(9);
        format!("{}-{}", p[..keep].trim_end_matches('-'), &digest[..8])
    }
    /// The project's own host under `domain`.
    pub fn host(&self, domain: &str) -> String {
        format!("{}.{}", self.0, domain)
    }
    /// `<registry>/<prefix>/PROJECT` without tag (the ECR repository path is `<prefix>/PROJECT`).
    pub fn repository(&self, prefix: &str) -> String {
        if prefix.is_empty() {
            self.0.clone()
        } else {
            format!("{}/{}", prefix.trim_matches('/'), self.0)
        }
    }
    pub fn image(&self, registry: &str, prefix: &str, hash: &ContentHash) -> String {
        format!(
            "{}/{}:{}",
            registry.trim_end_matches('/'),
            self.repository(prefix),
            hash.short()
        )
    }
}

impl fmt::Display for ProjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The SHA-256 of a canonical instance tar, as 64 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContentHash(String);

impl ContentHash {
    pub fn from_digest(digest: &[u8]) -> Self {
        Self(hex::encode(digest))
    }
    /// Accepts the full 64-digit digest.
    pub fn parse_full(value: &str) -> Option<Self> {
        (value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| Self(value.to_ascii_lowercase()))
    }
    pub fn full(&self) -> &str {
        &self.0
    }
    /// First 16 hex digits: the `<h>` of the spec, used in names and image tags.
    pub fn short(&self) -> &str {
        &self.0[..16]
    }
    pub fn configmap_name(&self) -> String {
        instance_configmap_name(self.short())
    }
}

pub fn instance_configmap_name(short: &str) -> String {
    format!("instance-{short}")
}

/// The `<h>` of an instance ConfigMap name, when it is one.
pub fn short_hash_of_configmap(name: &str) -> Option<&str> {
    let h = name.strip_prefix("instance-")?;
    (h.len() == 16
        && h.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
    .then_some(h)
}

/// Whether `value` may stand as a Kubernetes label value (at most 63 characters, alphanumerics
/// with `-`, `_`, `.` inside).
pub fn is_label_value(value: &str) -> bool {
    value.is_empty()
        || (value.len() <= 63
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            && value.as_bytes()[0].is_ascii_alphanumeric()
            && value.as_bytes()[value.len() - 1].is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_ids() {
        assert!(ProjectId::parse("0b1c2d3e-aaaa-bbbb-cccc-0123456789ab").is_ok());
        assert!(ProjectId::parse("a").is_ok());
        assert!(ProjectId::parse(&"a".repeat(48)).is_ok());
        for bad in ["", "-a", "a-", "A", "a_b", "a.b", "é", &"a".repeat(49)] {
            let err = ProjectId::parse(bad).unwrap_err();
            assert!(err.to_string().contains("DNS-1123"), "{err}");
        }
    }

    #[test]
    fn derived_names_fit_in_63() {
        let p = ProjectId::parse(&"a".repeat(48)).unwrap();
        assert!(p.ingress_name().len() <= 63);
        assert!(p.service_name().len() <= 63);
        assert_eq!(p.ingress_name(), format!("ing-{}", "a".repeat(48)));
    }

    #[test]
    fn image_reference() {
        let p = ProjectId::parse("demo").unwrap();
        let h = ContentHash::from_digest(&[0xab; 32]);
        assert_eq!(h.short(), "abababababababab");
        assert_eq!(h.configmap_name(), "instance-abababababababab");
        assert_eq!(
            p.image("reg.example/", "hosting", &h),
            "reg.example/hosting/demo:abababababababab"
        );
        assert_eq!(p.image("r", "", &h), "r/demo:abababababababab");
    }

    #[test]
    fn configmap_names() {
        assert_eq!(
            short_hash_of_configmap("instance-0123456789abcdef"),
            Some("0123456789abcdef")
        );
        assert_eq!(short_hash_of_configmap("instance-0123"), None);
        assert_eq!(short_hash_of_configmap("instance-0123456789ABCDEF"), None);
        assert_eq!(short_hash_of_configmap("other"), None);
    }

    #[test]
    fn label_values() {
        assert!(is_label_value("demo.deploy.agentops.ai"));
        assert!(!is_label_value(&"a".repeat(64)));
        assert!(!is_label_value("-a"));
        assert!(!is_label_value("a b"));
    }
}
