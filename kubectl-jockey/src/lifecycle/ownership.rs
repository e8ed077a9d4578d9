//! Whose an object is. `delete`, `rollback` and `gc` act only on objects labelled
//! `jockey.agentops.ai/project: PROJECT` (as `deploy` refuses to take over anything else): a
//! Deployment named `api` that someone made by hand is not project `api`'s, whatever its name.
//! Pure.

use jockey_core::ProjectId;
use jockey_core::names::LABEL_PROJECT;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// An object a command found under one of the project's names and did not touch, with why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeftAlone {
    /// `kind/name` as kubectl prints it, e.g. `deployment.apps/api`.
    pub object: String,
    pub why: String,
}

impl std::fmt::Display for LeftAlone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} left alone: {}", self.object, self.why)
    }
}

impl LeftAlone {
    /// An object without the project label: not jockey's, whatever its name.
    pub fn unlabelled(object: String) -> Self {
        Self {
            object,
            why: format!(
                "it has no {LABEL_PROJECT} label, so jockey did not make it; delete it with \
                 kubectl if it should go"
            ),
        }
    }
}

/// The project label's value on an object, if any.
pub fn project_label(meta: &ObjectMeta) -> Option<&str> {
    meta.labels.as_ref()?.get(LABEL_PROJECT).map(String::as_str)
}

/// Ok when the object is `project`'s; otherwise what to report instead of touching it.
/// `kind` is kubectl's `kind.group` (`deployment.apps`, `service`, ...).
pub fn check_owner(kind: &str, meta: &ObjectMeta, project: &ProjectId) -> Result<(), LeftAlone> {
    let object = format!("{kind}/{}", meta.name.as_deref().unwrap_or_default());
    match project_label(meta) {
        Some(p) if p == project.as_str() => Ok(()),
        Some(other) => Err(LeftAlone {
            object,
            why: format!(
                "it belongs to project {other} (label {LABEL_PROJECT}={other}), not to {project}"
            ),
        }),
        None => Err(LeftAlone::unlabelled(object)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn meta(name: &str, label: Option<&str>) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.into()),
            labels: label.map(|l| BTreeMap::from([(LABEL_PROJECT.to_string(), l.to_string())])),
            ..Default::default()
        }
    }

    #[test]
    fn only_the_project_label_makes_an_object_the_projects() {
        let api = ProjectId::parse("api").unwrap();
        assert_eq!(
            check_owner("deployment.apps", &meta("api", Some("api")), &api),
            Ok(())
        );

        let unlabelled = check_owner("deployment.apps", &meta("api", None), &api).unwrap_err();
        assert_eq!(unlabelled.object, "deployment.apps/api");
        let text = unlabelled.to_string();
        assert!(
            text.starts_with("deployment.apps/api left alone: ")
                && text.contains("no jockey.agentops.ai/project label"),
            "{text}"
        );

        let other = check_owner("service", &meta("svc-api", Some("web")), &api).unwrap_err();
        assert_eq!(other.object, "service/svc-api");
        assert!(other.why.contains("project web"), "{}", other.why);

        // A label on another key, or an empty value, is not ownership.
        let mut m = meta("api", None);
        m.labels = Some(BTreeMap::from([("app".to_string(), "api".to_string())]));
        assert!(check_owner("deployment.apps", &m, &api).is_err());
        assert!(check_owner("deployment.apps", &meta("api", Some("")), &api).is_err());
    }
}
