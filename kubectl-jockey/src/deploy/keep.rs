//! Server-side apply that keeps what users changed: the fields other field managers own are
//! left out of jockey's render (see [`jockey_core::ownership`]), the rest is applied without
//! force, and a field this deploy sets on purpose that another manager owns is a conflict,
//! reported with its owner and both values, unless it may be taken without asking (the instance
//! of changed files) or `--force-conflicts` says so. Planned with server dry runs before
//! anything is written, so a conflict writes nothing.

use super::changes::{Change, comparable};
use crate::cluster::{api_message, apply_params_keeping};
use anyhow::{Context, Result, anyhow};
use jockey_core::names::FIELD_MANAGER;
use jockey_core::ownership::{self, Conflict, Owned, Steps, TAKEN_WITHOUT_ASKING};
use kube::Api;
use kube::api::Patch;
use serde_json::Value;

/// What one object's apply will do, decided with a server dry run.
#[derive(Debug, Clone)]
pub struct Planned {
    /// `deployment.apps/NAME`, as kubectl prints it.
    pub what: String,
    pub name: String,
    /// The render, without the fields kept for other managers.
    pub object: Value,
    /// Whether the apply takes conflicting fields (they may all be taken).
    pub force: bool,
    pub change: Change,
    /// The object as the server would store it (or as it is, when unchanged).
    pub result: Value,
    /// Fields left to other managers whose value differs from jockey's.
    pub kept: Vec<Owned>,
}

/// How conflicts are settled.
#[derive(Debug, Clone, Default)]
pub struct Rules<'a> {
    /// The fields this deploy changes on purpose.
    pub purposeful: &'a [Steps],
    /// Printed paths of fields taken from their owner without asking.
    pub take: &'a [String],
    /// `--force-conflicts`.
    pub force: bool,
}

/// Plans the apply of `ours` over `live` (both as JSON) through `api`.
pub async fn plan<K>(
    api: &Api<K>,
    what: String,
    live: Option<&Value>,
    ours: &Value,
    rules: &Rules<'_>,
) -> Result<Planned>
where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    K: serde::Serialize,
{
    let name = ours["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let owners = live
        .and_then(|l| l["metadata"]["managedFields"].as_array())
        .map(|entries| {
            let entries: Vec<_> = entries
                .iter()
                .filter_map(|e| serde_json::from_value(e.clone()).ok())
                .collect();
            ownership::other_owners(&entries, FIELD_MANAGER)
        })
        .unwrap_or_default();
    let pruned = ownership::prune(
        ours,
        live.unwrap_or(&Value::Null),
        &owners,
        rules.purposeful,
    );
    let mut force = rules.force;
    let would = match dry_run(api, &name, &pruned.object, force).await? {
        Ok(would) => would,
        Err(conflicts) => {
            let taken = |c: &Conflict| {
                rules.take.contains(&c.path) || TAKEN_WITHOUT_ASKING.contains(&c.manager.as_str())
            };
            if !conflicts.iter().all(taken) {
                return Err(anyhow!(conflict_message(
                    &what,
                    &conflicts,
                    &pruned.claimed
                )));
            }
            force = true;
            dry_run(api, &name, &pruned.object, true)
                .await?
                .map_err(|c| anyhow!(conflict_message(&what, &c, &pruned.claimed)))?
        }
    };
    let (change, result) = match live {
        None => (Change::Created, would),
        Some(l) if comparable(l) == comparable(&would) => (Change::Unchanged, l.clone()),
        Some(_) => (Change::Configured, would),
    };
    Ok(Planned {
        what,
        name,
        object: pruned.object,
        force,
        change,
        result,
        kept: pruned.kept.into_iter().filter(Owned::differs).collect(),
    })
}

/// A server dry run of the apply: the object as it would be stored, or the conflicts.
async fn dry_run<K>(
    api: &Api<K>,
    name: &str,
    object: &Value,
    force: bool,
) -> Result<std::result::Result<Value, Vec<Conflict>>>
where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    K: serde::Serialize,
{
    match api
        .patch(
            name,
            &apply_params_keeping(true, force),
            &Patch::Apply(object),
        )
        .await
    {
        Ok(would) => Ok(Ok(serde_json::to_value(&would)?)),
        Err(e) => match conflicts_of(&e) {
            Some(c) => Ok(Err(c)),
            None => Err(e).with_context(|| {
                format!(
                    "checking {} {name} with the API server (dry run)",
                    K::kind(&())
                )
            }),
        },
    }
}

/// The conflicts of a 409 the apply got, if it is one.
fn conflicts_of(err: &kube::Error) -> Option<Vec<Conflict>> {
    let kube::Error::Api(status) = err else {
        return None;
    };
    if status.code != 409 {
        return None;
    }
    let causes: Vec<(String, String)> = status
        .details
        .iter()
        .flat_map(|d| d.causes.iter())
        .map(|c| (c.field.clone(), c.message.clone()))
        .collect();
    let c = ownership::conflicts(&causes);
    (!c.is_empty()).then_some(c)
}

/// Writes what was planned (nothing when unchanged); the stored object.
pub async fn write<K>(api: &Api<K>, planned: &Planned) -> Result<Value>
where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    K: serde::Serialize,
{
    if planned.change == Change::Unchanged {
        return Ok(planned.result.clone());
    }
    let applied = api
        .patch(
            &planned.name,
            &apply_params_keeping(false, planned.force),
            &Patch::Apply(&planned.object),
        )
        .await
        .map_err(|e| match conflicts_of(&e) {
            // Someone changed the object while the image was building.
            Some(c) => anyhow!(conflict_message(&planned.what, &c, &[])),
            None => anyhow!("applying {}: {}", planned.what, api_message(&e)),
        })?;
    Ok(serde_json::to_value(&applied)?)
}

fn show(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => format!("{s:?}"),
        Some(v) => v.to_string(),
        None => "(not set)".to_string(),
    }
}

/// The refusal of a deploy that would take fields other managers own.
pub fn conflict_message(what: &str, conflicts: &[Conflict], claimed: &[Owned]) -> String {
    let lines: Vec<String> = conflicts
        .iter()
        .map(|c| match claimed.iter().find(|o| o.path == c.path) {
            Some(o) => format!(
                "  {}: {} set by {:?}; this deploy sets {}",
                c.path,
                show(o.live.as_ref()),
                c.manager,
                show(Some(&o.ours))
            ),
            None => format!("  {}: owned by {:?}", c.path, c.manager),
        })
        .collect();
    format!(
        "{what}: this deploy sets {} field(s) another field manager owns, so nothing was \
         written:\n{}\nrerun with --force-conflicts to take them (this deploy's values win), or \
         leave out the flags that set them to keep the other values",
        conflicts.len(),
        lines.join("\n")
    )
}

/// One line per field kept for another manager, for the user to see what was not reset.
pub fn kept_lines(planned: &Planned) -> Vec<String> {
    planned
        .kept
        .iter()
        .map(|o| {
            format!(
                "{}: kept {} = {} (set by {}; jockey's value is {})",
                planned.what,
                o.path,
                show(o.live.as_ref()),
                o.managers.join(", "),
                show(Some(&o.ours))
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_conflict_names_the_field_its_owner_both_values_and_the_flag() {
        let c = vec![Conflict {
            path: ".spec.x".into(),
            manager: "kubectl-set".into(),
        }];
        let claimed = vec![Owned {
            path: ".spec.x".into(),
            managers: vec!["kubectl-set".into()],
            ours: json!("2Gi"),
            live: Some(json!("4Gi")),
        }];
        let m = conflict_message("deployment.apps/p", &c, &claimed);
        for want in [
            "deployment.apps/p",
            ".spec.x: \"4Gi\" set by \"kubectl-set\"; this deploy sets \"2Gi\"",
            "--force-conflicts",
            "nothing was written",
        ] {
            assert!(m.contains(want), "{want} not in {m}");
        }
        let m = conflict_message("x", &c, &[]);
        assert!(m.contains(".spec.x: owned by \"kubectl-set\""), "{m}");
    }
}
