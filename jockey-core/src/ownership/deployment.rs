//! Which fields of the Deployment a `deploy` changes on purpose (so they are applied even when a
//! user owns them), and when a deploy changes the instance. Pure.
//!
//! The instance is one unit of five fields that move together (the annotation, the two
//! `content-hash` labels, the server's image and the instance volume): a deploy whose files
//! differ from what runs takes all five, even from `kubectl set image` or `kubectl rollout
//! undo`. A deploy of files that already ran in this Deployment while a user has moved the
//! instance (an undo) keeps the user's choice: it does not change the instance.

use super::{Steps, field_steps, key_step};
use crate::defaults::{CONTAINER_NAME, INSTANCE_VOLUME};
use crate::names::{ANNOTATION_INSTANCE, ANNOTATION_SECRET_SHA256, LABEL_CONTENT_HASH};
use crate::runtime::RuntimeSettings;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Container;

fn container_steps(rest: &[&str]) -> Steps {
    let mut s = field_steps(&["spec", "template", "spec", "containers"]);
    s.push(key_step("name", CONTAINER_NAME));
    s.extend(field_steps(rest));
    s
}

/// The five fields naming the instance a Deployment runs.
pub fn instance_fields() -> Vec<Steps> {
    let mut volume = field_steps(&["spec", "template", "spec", "volumes"]);
    volume.push(key_step("name", INSTANCE_VOLUME));
    volume.extend(field_steps(&["configMap", "name"]));
    vec![
        field_steps(&["metadata", "annotations", ANNOTATION_INSTANCE]),
        field_steps(&["metadata", "labels", LABEL_CONTENT_HASH]),
        field_steps(&["spec", "template", "metadata", "labels", LABEL_CONTENT_HASH]),
        container_steps(&["image"]),
        volume,
    ]
}

/// What one deploy changes on purpose.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Intent {
    /// The files differ from the instance that runs (see [`changes_instance`]).
    pub instance: bool,
    /// `--replicas`.
    pub replicas: bool,
    /// `--cpu`: the request; the limit too when the flag raised it.
    pub cpu_request: bool,
    pub cpu_limit: bool,
    /// `--memory`: the request and the limit.
    pub memory: bool,
    /// `--env KEY=...` / `--env-file`: the variables named.
    pub env: Vec<String>,
    /// `--secret-env-file` changed the Secret: the pod template's digest of it.
    pub secret_digest: bool,
}

fn limit(c: Option<&Container>, resource: &str) -> Option<String> {
    c?.resources
        .as_ref()?
        .limits
        .as_ref()?
        .get(resource)
        .map(|q| q.0.clone())
}

fn server(d: &Deployment) -> Option<&Container> {
    let pod = d.spec.template.spec.as_ref()?;
    pod.containers.iter().find(|c| c.name == CONTAINER_NAME)
}

impl Intent {
    /// The intent of a deploy with `settings` that rendered `ours` over `live`.
    pub fn of(
        settings: &RuntimeSettings,
        ours: &Deployment,
        live: Option<&Deployment>,
        instance: bool,
        secret_changed: bool,
    ) -> Self {
        let cpu_limit_moved = limit(server(ours), "cpu") != limit(live.and_then(server), "cpu");
        Self {
            instance,
            replicas: settings.replicas.is_some(),
            cpu_request: settings.cpu.is_some(),
            cpu_limit: settings.cpu.is_some() && cpu_limit_moved,
            memory: settings.memory.is_some(),
            env: settings.env.iter().map(|(k, _)| k.clone()).collect(),
            secret_digest: secret_changed,
        }
    }

    /// The paths this deploy applies whoever owns them.
    pub fn purposeful(&self) -> Vec<Steps> {
        let mut out = Vec::new();
        if self.instance {
            out.extend(instance_fields());
        }
        if self.replicas {
            out.push(field_steps(&["spec", "replicas"]));
        }
        if self.cpu_request {
            out.push(container_steps(&["resources", "requests", "cpu"]));
        }
        if self.cpu_limit {
            out.push(container_steps(&["resources", "limits", "cpu"]));
        }
        if self.memory {
            out.push(container_steps(&["resources", "requests", "memory"]));
            out.push(container_steps(&["resources", "limits", "memory"]));
        }
        for name in &self.env {
            let mut s = container_steps(&["env"]);
            s.push(key_step("name", name));
            out.push(s);
        }
        if self.secret_digest {
            out.push(field_steps(&[
                "spec",
                "template",
                "metadata",
                "annotations",
                ANNOTATION_SECRET_SHA256,
            ]));
        }
        out
    }
}

/// Whether a deploy of the files `ours` (`instance-<h>`) changes the instance of a Deployment
/// that runs `live`. When jockey still owns the instance annotation, any difference is a
/// change. When a user moved it (`kubectl rollout undo`, `kubectl set image`, an edited
/// annotation), files that already ran in this Deployment (`history`, from its ReplicaSets)
/// are not a change, so the user's choice survives a deploy of unchanged files; new files are.
/// `force` (`--force-conflicts`) makes any difference a change.
pub fn changes_instance(
    ours: &str,
    live: Option<&str>,
    annotation_is_ours: bool,
    history: &[String],
    force: bool,
) -> bool {
    if live == Some(ours) {
        return false;
    }
    live.is_none() || annotation_is_ours || force || !history.iter().any(|h| h == ours)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::defaults::render_deployment;
    use crate::runtime::apply_settings;
    use crate::{ContentHash, ProjectId};

    #[test]
    fn instance_changes_only_for_new_files_once_a_user_moved_it() {
        let a = "instance-aaaaaaaaaaaaaaaa";
        let b = "instance-bbbbbbbbbbbbbbbb";
        let c = "instance-cccccccccccccccc";
        let history = vec![a.to_string(), b.to_string()];
        // A first deploy, and the same files again.
        assert!(changes_instance(b, None, true, &[], false));
        assert!(!changes_instance(b, Some(b), true, &history, false));
        assert!(!changes_instance(b, Some(b), false, &history, true));
        // jockey still owns the annotation: any other files are a change (even older ones).
        assert!(changes_instance(a, Some(b), true, &history, false));
        // A user undid b -> a: deploying b's files again keeps the undo; new files win.
        assert!(!changes_instance(b, Some(a), false, &history, false));
        assert!(changes_instance(c, Some(a), false, &history, false));
        // --force-conflicts takes the files' instance back.
        assert!(changes_instance(b, Some(a), false, &history, true));
    }

    #[test]
    fn purposeful_paths_follow_the_flags() {
        let none = Intent::default().purposeful();
        assert!(none.is_empty(), "{none:?}");
        let all = Intent {
            instance: true,
            replicas: true,
            cpu_request: true,
            cpu_limit: true,
            memory: true,
            env: vec!["A".into()],
            secret_digest: true,
        }
        .purposeful();
        let printed: Vec<String> = all.iter().map(|s| super::super::printed(s)).collect();
        for want in [
            ".metadata.annotations.jockey.agentops.ai/instance",
            ".metadata.labels.jockey.agentops.ai/content-hash",
            ".spec.template.metadata.labels.jockey.agentops.ai/content-hash",
            ".spec.template.spec.containers[name=\"server\"].image",
            ".spec.template.spec.volumes[name=\"jockey-instance\"].configMap.name",
            ".spec.replicas",
            ".spec.template.spec.containers[name=\"server\"].resources.requests.cpu",
            ".spec.template.spec.containers[name=\"server\"].resources.limits.cpu",
            ".spec.template.spec.containers[name=\"server\"].resources.requests.memory",
            ".spec.template.spec.containers[name=\"server\"].resources.limits.memory",
            ".spec.template.spec.containers[name=\"server\"].env[name=\"A\"]",
            ".spec.template.metadata.annotations.jockey.agentops.ai/secret-sha256",
        ] {
            assert!(
                printed.iter().any(|p| p == want),
                "{want} not in {printed:#?}"
            );
        }
        assert_eq!(printed.len(), 12);
    }

    #[test]
    fn the_cpu_limit_is_purposeful_only_when_the_flag_raised_it() {
        let p = ProjectId::parse("demo").unwrap();
        let h = ContentHash::from_digest(&[1; 32]);
        let mut live = render_deployment(&p, &h);
        apply_settings(&mut live, None, &RuntimeSettings::default(), None);
        let low = RuntimeSettings {
            cpu: Some("500m".into()),
            ..Default::default()
        };
        let mut ours = render_deployment(&p, &h);
        apply_settings(&mut ours, Some(&live), &low, None);
        let i = Intent::of(&low, &ours, Some(&live), false, false);
        assert!(i.cpu_request && !i.cpu_limit, "{i:?}");
        let high = RuntimeSettings {
            cpu: Some("2".into()),
            ..Default::default()
        };
        let mut ours = render_deployment(&p, &h);
        apply_settings(&mut ours, Some(&live), &high, None);
        let i = Intent::of(&high, &ours, Some(&live), true, true);
        assert!(
            i.cpu_request && i.cpu_limit && i.instance && i.secret_digest,
            "{i:?}"
        );
        assert!(!i.replicas && !i.memory && i.env.is_empty());
    }
}
