//! The cluster itself: reachable, new enough for what jockey uses, and running a webhook this
//! plugin understands.
//!
//! Compatible means the same major and minor version: the plugin and the webhook render the same
//! objects from `jockey-core` (defaults, names, the admission policy), and a patch release
//! changes none of them.

use super::CheckResult;

pub const GROUP: &str = "cluster";
pub const REACHABLE: &str = "cluster-reachable";
pub const VERSION: &str = "cluster-version";
pub const VERSIONS_COMPATIBLE: &str = "cluster-versions-compatible";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerVersion {
    pub major: String,
    pub minor: String,
    pub git_version: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterFacts {
    /// The API server's `/version`, or why it could not be read.
    pub server: Result<ServerVersion, String>,
    /// Whether `admissionregistration.k8s.io/v1` serves `validatingadmissionpolicies`.
    pub vap_served: bool,
    /// This plugin's version.
    pub plugin_version: String,
    /// The installed webhook: its image and its `app.kubernetes.io/version` label; `None` when
    /// no webhook Deployment is installed (or with `--pre`).
    pub webhook: Option<WebhookVersion>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookVersion {
    pub image: String,
    pub label: Option<String>,
}

/// `(major, minor)` of `1.2.3`, `v1.2.3-rc.1`, `1.2`.
pub fn major_minor(version: &str) -> Option<(u64, u64)> {
    let v = version.trim().trim_start_matches('v');
    let core = v.split(['-', '+']).next()?;
    let mut parts = core.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// The version an image reference's tag names, if it names one (`repo/x:0.1.0`, `x:v0.1.0`).
pub fn image_tag(image: &str) -> Option<&str> {
    let last = image.rsplit('/').next()?;
    let tag = last.split('@').next()?.split_once(':')?.1;
    Some(tag)
}

pub fn checks(f: &ClusterFacts) -> Vec<CheckResult> {
    let server = match &f.server {
        Ok(s) => s,
        Err(why) => {
            return vec![CheckResult::fail(
                GROUP,
                REACHABLE,
                format!("the API server did not answer: {why}"),
                "check --kubeconfig/--context point at the cluster and that your credentials are \
                 current (`kubectl version`)",
            )];
        }
    };
    let mut out = vec![CheckResult::ok(
        GROUP,
        REACHABLE,
        format!("API server {}", server.git_version),
    )];
    out.push(if f.vap_served {
        CheckResult::ok(
            GROUP,
            VERSION,
            format!(
                "Kubernetes {}.{} serves ValidatingAdmissionPolicy (admissionregistration.k8s.io/v1)",
                server.major, server.minor
            ),
        )
    } else {
        CheckResult::fail(
            GROUP,
            VERSION,
            format!(
                "Kubernetes {} does not serve admissionregistration.k8s.io/v1 \
                 ValidatingAdmissionPolicy, which keeps unlabelled Ingresses out of the shared ALB",
                server.git_version
            ),
            "upgrade the cluster to Kubernetes 1.30 or later (ValidatingAdmissionPolicy is GA \
             there)",
        )
    });
    out.extend(compatibility(&f.plugin_version, f.webhook.as_ref()));
    out
}

fn compatibility(plugin: &str, webhook: Option<&WebhookVersion>) -> Option<CheckResult> {
    let webhook = webhook?;
    let reinstall = format!(
        "run `kubectl jockey install` with this plugin ({plugin}) to bring the webhook to it, or \
         install the plugin of the webhook's version (`kubectl krew install jockey`)"
    );
    let version = webhook
        .label
        .as_deref()
        .filter(|v| major_minor(v).is_some())
        .or_else(|| image_tag(&webhook.image).filter(|t| major_minor(t).is_some()));
    let Some(version) = version else {
        return Some(CheckResult::warn(
            GROUP,
            VERSIONS_COMPATIBLE,
            format!(
                "cannot tell the webhook's version: no app.kubernetes.io/version label and image \
                 {} has no version tag",
                webhook.image
            ),
            reinstall,
        ));
    };
    let same = major_minor(version).is_some() && major_minor(version) == major_minor(plugin);
    Some(if same {
        CheckResult::ok(
            GROUP,
            VERSIONS_COMPATIBLE,
            format!("plugin {plugin} and webhook {version} (same minor version)"),
        )
    } else {
        CheckResult::fail(
            GROUP,
            VERSIONS_COMPATIBLE,
            format!(
                "plugin {plugin} and webhook {version} differ in their minor version: they may \
                 render different objects"
            ),
            reinstall,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Outcome;

    fn facts() -> ClusterFacts {
        ClusterFacts {
            server: Ok(ServerVersion {
                major: "1".into(),
                minor: "37".into(),
                git_version: "v1.37.2".into(),
            }),
            vap_served: true,
            plugin_version: "0.1.0".into(),
            webhook: Some(WebhookVersion {
                image: "reg/jockey-webhook:0.1.3".into(),
                label: None,
            }),
        }
    }

    fn outcome(results: &[CheckResult], id: &str) -> Option<Outcome> {
        results.iter().find(|r| r.id == id).map(|r| r.outcome)
    }

    #[test]
    fn a_current_cluster_with_a_matching_webhook_passes() {
        let r = checks(&facts());
        assert_eq!(r.len(), 3);
        assert!(r.iter().all(|r| r.outcome == Outcome::Ok), "{r:?}");
        assert!(r[0].message.contains("v1.37.2"));
    }

    #[test]
    fn an_unreachable_server_is_the_only_result() {
        let r = checks(&ClusterFacts {
            server: Err("connection refused".into()),
            ..facts()
        });
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].outcome, Outcome::Fail);
        assert!(r[0].message.contains("connection refused"));
        assert!(
            r[0].hint
                .as_deref()
                .unwrap_or_default()
                .contains("--kubeconfig")
        );
    }

    #[test]
    fn no_admission_policy_api_fails() {
        let r = checks(&ClusterFacts {
            vap_served: false,
            ..facts()
        });
        assert_eq!(outcome(&r, VERSION), Some(Outcome::Fail));
        let hint = r[1].hint.clone().unwrap_or_default();
        assert!(hint.contains("1.30"), "{hint}");
    }

    #[test]
    fn versions_compare_by_minor_the_label_before_the_tag() {
        let with = |image: &str, label: Option<&str>| {
            checks(&ClusterFacts {
                webhook: Some(WebhookVersion {
                    image: image.into(),
                    label: label.map(str::to_string),
                }),
                ..facts()
            })
        };
        assert_eq!(
            outcome(&with("x:v0.1.9", None), VERSIONS_COMPATIBLE),
            Some(Outcome::Ok)
        );
        let r = with("reg:5000/x:0.2.0", None);
        assert_eq!(outcome(&r, VERSIONS_COMPATIBLE), Some(Outcome::Fail));
        assert!(
            r[2].hint
                .as_deref()
                .unwrap_or_default()
                .contains("kubectl jockey install")
        );
        // The label wins over a tag that is no version (a test build's content hash).
        assert_eq!(
            outcome(&with("x:e2e-abc", Some("0.1.0")), VERSIONS_COMPATIBLE),
            Some(Outcome::Ok)
        );
        assert_eq!(
            outcome(&with("x:1.1.0", Some("1.0.0")), VERSIONS_COMPATIBLE),
            Some(Outcome::Fail)
        );
        assert_eq!(
            outcome(&with("x@sha256:abc", None), VERSIONS_COMPATIBLE),
            Some(Outcome::Warn)
        );
        // No webhook installed: nothing to compare.
        let r = checks(&ClusterFacts {
            webhook: None,
            ..facts()
        });
        assert_eq!(outcome(&r, VERSIONS_COMPATIBLE), None);
    }

    #[test]
    fn version_parsing() {
        assert_eq!(major_minor("v1.37.2"), Some((1, 37)));
        assert_eq!(major_minor("0.1.0-rc.1+g1"), Some((0, 1)));
        assert_eq!(major_minor("latest"), None);
        assert_eq!(image_tag("reg:5000/jockey/x:0.1.0"), Some("0.1.0"));
        assert_eq!(image_tag("reg:5000/jockey/x"), None);
    }
}
