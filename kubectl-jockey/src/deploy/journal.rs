//! What a running deploy has done and holds: its steps, for the message ctrl-c prints (what was
//! done, what was left, the command to finish), and the project's deploy Lease
//! ([`crate::deploy_lock`]), which [`until_interrupted`] releases however the deploy ends.

use crate::deploy_lock::{self, DeployLock, LockCheck};
use anyhow::{Context, Result, bail};
use jockey_core::ProjectId;
use jockey_core::names::ANNOTATION_INSTANCE;
use k8s_openapi::api::apps::v1::Deployment;
use kube::{Api, Client};
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

#[derive(Default)]
struct State {
    lock: Option<DeployLock>,
    /// The instance the Deployment names after this deploy's apply.
    applied: Option<String>,
    done: Vec<String>,
    doing: Option<String>,
}

/// Shared between the deploy and [`until_interrupted`], which outlives the deploy's future.
#[derive(Clone, Default)]
pub struct Journal(Arc<Mutex<State>>);

impl Journal {
    fn state(&self) -> MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A step that writes to the cluster has started.
    pub fn doing(&self, what: String) {
        self.state().doing = Some(what);
    }

    /// The step under way (if any) is finished, as `what`.
    pub fn done(&self, what: String) {
        let mut s = self.state();
        s.done.push(what);
        s.doing = None;
    }

    /// The apply step is finished, its Deployment naming `instance`.
    pub fn applied(&self, what: String, instance: Option<String>) {
        self.state().applied = instance;
        self.done(what);
    }

    /// Takes the project's Lease (see [`deploy_lock`]), right before the deploy's first write:
    /// every refusal is behind, so bad input still writes nothing, not even the Lease. `read` is
    /// the Deployment as the deploy read it to plan its writes; a deploy that ran in between
    /// (and released the Lease) makes that plan stale, which is the conflict.
    pub async fn take_lease(
        &self,
        client: &Client,
        ns: &str,
        project: &ProjectId,
        deadline: Instant,
        read: Option<&Deployment>,
    ) -> Result<()> {
        let lock = deploy_lock::acquire(client, ns, project, deadline).await?;
        // Held from here, so that the Lease is released even when the check below fails.
        self.state().lock = Some(lock);
        let now = Api::<Deployment>::namespaced(client.clone(), ns)
            .get_opt(&project.deployment_name())
            .await
            .with_context(|| format!("reading Deployment {ns}/{project}"))?;
        if mark(now.as_ref()) != mark(read) {
            bail!(
                "conflict: Deployment {ns}/{project} changed while this deploy prepared (another \
                 deploy, a rollback or a kubectl edit); nothing was written by this one: deploy \
                 again"
            );
        }
        Ok(())
    }

    /// Fails with the conflict when another deploy took the Lease over (this one stalled for a
    /// whole lease duration). Nothing to check without a Lease (a server dry run takes none).
    pub async fn ensure_held(&self, project: &ProjectId, ns: &str) -> Result<()> {
        let check: Option<LockCheck> = self.state().lock.as_ref().map(DeployLock::checker);
        match check {
            Some(check) => check.ensure_held(project, ns).await,
            None => Ok(()),
        }
    }

    /// Before success is reported: what rolled out must be what this deploy applied (the
    /// files' instance, or the one a user chose and it kept). Another writer (a rollback, a
    /// kubectl apply, a deploy that took a stale Lease over) would otherwise have its rollout
    /// reported as this one's.
    pub async fn ensure_won(&self, client: &Client, ns: &str, project: &ProjectId) -> Result<()> {
        self.ensure_held(project, ns).await?;
        let applied = self.state().applied.clone();
        let now = Api::<Deployment>::namespaced(client.clone(), ns)
            .get(&project.deployment_name())
            .await
            .with_context(|| format!("reading Deployment {ns}/{project}"))?;
        let at = instance_of(&now);
        if at != applied {
            bail!(
                "conflict: Deployment {ns}/{project} was changed while this deploy waited for its \
                 rollout: it now names {}, not {} (a rollback, a kubectl apply or another \
                 deploy); this deploy did not win. Deploy again if yours should replace it",
                at.as_deref().unwrap_or("no instance"),
                applied.as_deref().unwrap_or("no instance")
            );
        }
        Ok(())
    }
}

/// What identifies a version of the Deployment for [`Journal::take_lease`]: a delete and
/// re-create, a change of its spec, or a move of its instance.
fn mark(d: Option<&Deployment>) -> Option<(Option<String>, Option<i64>, Option<String>)> {
    d.map(|d| {
        (
            d.metadata.uid.clone(),
            d.metadata.generation,
            instance_of(d),
        )
    })
}

fn instance_of(d: &Deployment) -> Option<String> {
    d.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(ANNOTATION_INSTANCE).cloned())
}

/// A deploy stopped by ctrl-c (SIGINT); `main` exits 130 for it, as a shell does.
#[derive(Debug)]
pub struct Interrupted(pub String);

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Interrupted {}

/// Runs the deploy until it ends or ctrl-c stops it, then releases its Lease: the deploy's future
/// is gone by then (no write can follow), so the next deploy may start at once.
pub async fn until_interrupted(
    project: &str,
    journal: &Journal,
    work: impl Future<Output = Result<()>>,
) -> Result<()> {
    let outcome = tokio::select! {
        r = work => r,
        _ = tokio::signal::ctrl_c() => {
            let message = interrupted_message(&journal.state(), project, &command_line());
            Err(anyhow::Error::new(Interrupted(message)))
        }
    };
    let lock = journal.state().lock.take();
    if let Some(lock) = lock {
        let _ = tokio::time::timeout(Duration::from_secs(5), lock.release()).await;
    }
    outcome
}

/// The command line as typed, to run again.
fn command_line() -> String {
    let args: Vec<String> = std::env::args().skip(1).collect();
    format!("kubectl jockey {}", shell_words(&args))
}

/// Arguments quoted for a POSIX shell where they need it. Pure.
fn shell_words(args: &[String]) -> String {
    args.iter()
        .map(|a| {
            if !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c))
            {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// What ctrl-c left behind, and how to finish. Pure.
fn interrupted_message(state: &State, project: &str, command: &str) -> String {
    let mut out = format!("interrupted: the deploy of {project} stopped before it finished.\n");
    if state.done.is_empty() && state.doing.is_none() {
        out.push_str("  nothing was written to the cluster.\n");
    }
    for d in &state.done {
        out.push_str(&format!("  done: {d}\n"));
    }
    if let Some(d) = &state.doing {
        out.push_str(&format!("  left unfinished: {d}\n"));
    }
    out.push_str(&format!(
        "  objects written stay consistent (a Deployment only ever names an instance and an \
         image that exist).\nto finish, run the same command again; it reuses what is done:\n  \
         {command}"
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_to_finish_is_quoted_for_a_shell() {
        let args: Vec<String> = ["deploy", "my dir", "-p", "demo", "--secret-env-file=it's"]
            .map(String::from)
            .to_vec();
        assert_eq!(
            shell_words(&args),
            r#"deploy 'my dir' -p demo '--secret-env-file=it'\''s'"#
        );
        assert_eq!(shell_words(&[String::new()]), "''");
    }

    #[test]
    fn ctrl_c_says_what_was_done_what_was_left_and_how_to_finish() {
        let nothing = interrupted_message(&State::default(), "demo", "kubectl jockey deploy");
        assert!(nothing.contains("the deploy of demo stopped"), "{nothing}");
        assert!(nothing.contains("nothing was written"), "{nothing}");
        assert!(nothing.ends_with("kubectl jockey deploy"), "{nothing}");

        let state = State {
            lock: None,
            applied: None,
            done: vec!["configmap/instance-abc (created)".into()],
            doing: Some("the build of img".into()),
        };
        let some = interrupted_message(&state, "demo", "kubectl jockey deploy -p demo");
        assert!(
            some.contains("  done: configmap/instance-abc (created)\n"),
            "{some}"
        );
        assert!(
            some.contains("  left unfinished: the build of img\n"),
            "{some}"
        );
        assert!(!some.contains("nothing was written"), "{some}");
        assert!(
            some.contains("run the same command again") && some.ends_with("-p demo"),
            "{some}"
        );
    }
}
