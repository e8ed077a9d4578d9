//! Who owns which field of a live object, read from its `metadata.managedFields`, and what of
//! jockey's render is left out of a server-side apply so that what users changed survives.
//!
//! The rule (README "What a deploy keeps"): every field of the render that a manager other than
//! jockey owns is that manager's, and the apply leaves it out, so the API server keeps their
//! value; unless this deploy changes that field on purpose (a path in `purposeful`), in which
//! case it stays in the apply and the API server reports a conflict when the values differ.
//!
//! - Managers: jockey's own entries (any operation: `deploy`'s apply, `secrets`' update) are
//!   jockey's. `before-first-apply` is the API server's name for "who owned the fields before
//!   managed fields were tracked": it records no one's intent, so its fields are not kept for it
//!   (and `deploy` takes them, see [`TAKEN_WITHOUT_ASKING`]). Entries of the `status` subresource
//!   never touch what jockey renders and are skipped.
//! - Several managers on one field (a tie, jockey among them or not): any other owner makes it
//!   theirs.
//! - A manager that owns an object but none of its fields (`f:resources: {}`, or a list item's
//!   `.`) owns that it exists, not what is inside: jockey's fields inside are still jockey's. An
//!   owned list (`f:args: {}`) is atomic: the whole list is theirs. A list item whose only owner
//!   of `.` is another manager, and of which jockey keeps nothing but its keys, is theirs too.
//! - List items are matched to `k:{...}` (keyed lists) and `v:...` (sets) by value, so no
//!   schema is needed; a key field the render leaves out (the API server defaults it) matches.
//!
//! Pure: JSON in, JSON out.

pub mod deployment;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;
use serde_json::{Map, Value};

/// Managers whose fields record no one's intent: never kept for them.
pub const TAKEN_WITHOUT_ASKING: [&str; 1] = ["before-first-apply"];

/// A path as FieldsV1 spells its steps: `f:spec`, `k:{"name":"server"}`, `v:"x"`.
pub type Steps = Vec<String>;

/// `["f:a", "f:b"]` from `["a", "b"]`: the common case of a path through maps only.
pub fn field_steps(names: &[&str]) -> Steps {
    names.iter().map(|n| format!("f:{n}")).collect()
}

/// The step of a list item keyed by `name`, as FieldsV1 spells it.
pub fn key_step(field: &str, value: &str) -> String {
    format!("k:{}", serde_json::json!({ field: value }))
}

/// A path as the API server prints it in a conflict (`.spec.template.spec.containers[name=
/// "server"].image`).
pub fn printed(steps: &[String]) -> String {
    steps
        .iter()
        .map(|s| match s.strip_prefix("f:") {
            Some(name) => format!(".{name}"),
            None => ItemStep::parse(s)
                .map(|i| i.segment())
                .unwrap_or_else(|| s.clone()),
        })
        .collect()
}

/// Whether any of `owners` (from [`other_owners`]) owns the field at `steps` (or the whole list or
/// item it is in).
pub fn owned_by_others(owners: &[(String, Value)], steps: &[String]) -> Vec<String> {
    fn owns(set: &Value, steps: &[String]) -> bool {
        let Some((first, rest)) = steps.split_first() else {
            return true;
        };
        match set.get(first) {
            Some(Value::Object(m)) if m.is_empty() => true,
            Some(next) => owns(next, rest),
            None => false,
        }
    }
    let mut out: Vec<String> = owners
        .iter()
        .filter(|(_, set)| owns(set, steps))
        .map(|(m, _)| m.clone())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The value at `steps`, if there is one.
pub fn get<'a>(value: &'a Value, steps: &[String]) -> Option<&'a Value> {
    let Some((first, rest)) = steps.split_first() else {
        return Some(value);
    };
    let next = match first.strip_prefix("f:") {
        Some(name) => value.get(name)?,
        None => {
            let step = ItemStep::parse(first)?;
            value.as_array()?.iter().find(|i| step.matches(i))?
        }
    };
    get(next, rest)
}

fn get_mut<'a>(value: &'a mut Value, steps: &[String]) -> Option<&'a mut Value> {
    let Some((first, rest)) = steps.split_first() else {
        return Some(value);
    };
    let next = match first.strip_prefix("f:") {
        Some(name) => value.get_mut(name)?,
        None => {
            let step = ItemStep::parse(first)?;
            value.as_array_mut()?.iter_mut().find(|i| step.matches(i))?
        }
    };
    get_mut(next, rest)
}

/// Sets each of `paths` in `ours` to the live value, where both have one: the fields a deploy
/// must not move (the instance, when the deploy does not change it).
pub fn pin_to_live(ours: &mut Value, live: &Value, paths: &[Steps]) {
    for path in paths {
        if let (Some(l), Some(o)) = (get(live, path), get_mut(ours, path)) {
            *o = l.clone();
        }
    }
}

/// One field of the render that another manager owns.
#[derive(Debug, Clone, PartialEq)]
pub struct Owned {
    /// The path as the API server prints it in a conflict: `.spec.replicas`,
    /// `.spec.template.spec.containers[name="server"].image`.
    pub path: String,
    /// The other managers owning it, sorted.
    pub managers: Vec<String>,
    /// jockey's value.
    pub ours: Value,
    /// The live value, when the live object has one.
    pub live: Option<Value>,
}

impl Owned {
    /// Whether keeping the owner's value differs from what jockey would have set.
    pub fn differs(&self) -> bool {
        self.live.as_ref() != Some(&self.ours)
    }
}

/// The render, with the fields other managers own left out.
#[derive(Debug, Clone, PartialEq)]
pub struct Pruned {
    pub object: Value,
    /// Left out: their owners' values stay.
    pub kept: Vec<Owned>,
    /// Owned by others but changed on purpose by this deploy: still applied (a conflict when the
    /// values differ).
    pub claimed: Vec<Owned>,
}

/// The field sets of every manager but `own` (and [`TAKEN_WITHOUT_ASKING`]), with their names.
pub fn other_owners(entries: &[ManagedFieldsEntry], own: &str) -> Vec<(String, Value)> {
    entries
        .iter()
        .filter(|e| e.subresource.as_deref().is_none_or(|s| s != "status"))
        .filter(|e| e.fields_type.as_deref().is_none_or(|t| t == "FieldsV1"))
        .filter_map(|e| {
            let manager = e.manager.clone().unwrap_or_default();
            if manager == own || TAKEN_WITHOUT_ASKING.contains(&manager.as_str()) {
                return None;
            }
            Some((manager, e.fields_v1.as_ref()?.0.clone()))
        })
        .collect()
}

/// Leaves out of `ours` every field `owners` (from [`other_owners`]) own, except under the
/// `purposeful` paths. `live` is the live object, for the values reported.
pub fn prune(
    ours: &Value,
    live: &Value,
    owners: &[(String, Value)],
    purposeful: &[Steps],
) -> Pruned {
    let mut out = Pruned {
        object: ours.clone(),
        kept: Vec::new(),
        claimed: Vec::new(),
    };
    let owners: Vec<(&str, &Map<String, Value>)> = owners
        .iter()
        .filter_map(|(m, f)| Some((m.as_str(), f.as_object()?)))
        .collect();
    let purposeful: Vec<&[String]> = purposeful.iter().map(Vec::as_slice).collect();
    let mut found = Found {
        kept: Vec::new(),
        claimed: Vec::new(),
    };
    let node = Node {
        live: Some(live),
        owners,
        purposeful,
        path: String::new(),
        whole: false,
    };
    walk_map_children(&mut out.object, &node, &[], &mut found);
    out.kept = found.kept;
    out.claimed = found.claimed;
    out
}

struct Found {
    kept: Vec<Owned>,
    claimed: Vec<Owned>,
}

/// Where the walk is: the live value there, each other manager's set there, the purposeful
/// paths' rest, the printed path, and whether the whole subtree is purposeful.
struct Node<'a> {
    live: Option<&'a Value>,
    owners: Vec<(&'a str, &'a Map<String, Value>)>,
    purposeful: Vec<&'a [String]>,
    path: String,
    whole: bool,
}

impl<'a> Node<'a> {
    /// The child reached by `step` (`live_child` found by the caller), printed as `segment`.
    fn child(&self, step: &str, live_child: Option<&'a Value>, segment: &str) -> Node<'a> {
        Node {
            live: live_child,
            owners: self
                .owners
                .iter()
                .filter_map(|(m, set)| Some((*m, set.get(step)?.as_object()?)))
                .collect(),
            purposeful: self
                .purposeful
                .iter()
                .filter(|p| p.first().is_some_and(|f| f == step))
                .map(|p| &p[1..])
                .collect(),
            path: format!("{}{segment}", self.path),
            whole: self.whole,
        }
    }

    fn is_whole(&self) -> bool {
        self.whole || self.purposeful.iter().any(|p| p.is_empty())
    }

    fn managers(&self) -> Vec<String> {
        let mut m: Vec<String> = self.owners.iter().map(|(m, _)| m.to_string()).collect();
        m.sort();
        m.dedup();
        m
    }

    /// Owned as a leaf (a scalar, an atomic list, a set item) by at least one other manager.
    fn leaf_owned(&self) -> bool {
        !self.owners.is_empty()
    }
}

/// Walks the children of an object; `protected` are key fields of a list item, never left out
/// (the API server needs them to find the item).
fn walk_map_children(ours: &mut Value, node: &Node, protected: &[String], found: &mut Found) {
    let Some(map) = ours.as_object_mut() else {
        return;
    };
    let keys: Vec<String> = map.keys().cloned().collect();
    for key in keys {
        let step = format!("f:{key}");
        let live_child = node.live.and_then(|l| l.get(&key));
        let mut child = node.child(&step, live_child, &format!(".{key}"));
        if child.owners.is_empty() {
            continue;
        }
        child.whole = child.is_whole();
        let Some(value) = map.get_mut(&key) else {
            continue;
        };
        if protected.contains(&key) {
            continue;
        }
        let leaf = |c: &Node, v: &Value| Owned {
            path: c.path.clone(),
            managers: c.managers(),
            ours: v.clone(),
            live: c.live.cloned(),
        };
        match value {
            Value::Object(inner) => {
                let was_empty = inner.is_empty();
                // Owning the object itself (`{}` or `.`) is owning that it exists: jockey's fields
                // inside stay jockey's. Only the sets that name fields go further.
                child.owners.retain(|(_, set)| set.keys().any(|k| k != "."));
                if child.owners.is_empty() {
                    continue;
                }
                walk_map_children(value, &child, &[], found);
                if !was_empty && value.as_object().is_some_and(Map::is_empty) {
                    map.remove(&key);
                }
            }
            Value::Array(_) => {
                let atomic = child.owners.iter().any(|(_, set)| set.is_empty());
                if atomic && child.leaf_owned() {
                    let owned = leaf(&child, value);
                    if child.whole {
                        found.claimed.push(owned);
                    } else {
                        found.kept.push(owned);
                        map.remove(&key);
                    }
                    continue;
                }
                let was_empty = value.as_array().is_some_and(Vec::is_empty);
                walk_list(value, &child, found);
                if !was_empty && value.as_array().is_some_and(Vec::is_empty) {
                    map.remove(&key);
                }
            }
            _ => {
                let owned = leaf(&child, value);
                if child.whole {
                    found.claimed.push(owned);
                } else {
                    found.kept.push(owned);
                    map.remove(&key);
                }
            }
        }
    }
}

/// A list's items, each matched to the `k:`/`v:` steps of the sets by value.
fn walk_list(ours: &mut Value, node: &Node, found: &mut Found) {
    let Some(items) = ours.as_array_mut() else {
        return;
    };
    let live_items: Vec<Value> = node
        .live
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut steps: Vec<&String> = node
        .owners
        .iter()
        .flat_map(|(_, set)| set.keys())
        .chain(node.purposeful.iter().filter_map(|p| p.first()))
        .filter(|s| s.starts_with("k:") || s.starts_with("v:"))
        .collect();
    steps.sort();
    steps.dedup();
    let mut remove = Vec::new();
    for (i, item) in items.iter_mut().enumerate() {
        for step in &steps {
            let Some(item_step) = ItemStep::parse(step) else {
                continue;
            };
            if !item_step.matches(item) {
                continue;
            }
            let live_item = live_items.iter().find(|l| item_step.matches(l));
            let mut child = node.child(step, live_item, &item_step.segment());
            child.whole = child.is_whole();
            match &item_step {
                ItemStep::Value(_) => {
                    if child.owners.is_empty() {
                        continue;
                    }
                    let owned = Owned {
                        path: child.path.clone(),
                        managers: child.managers(),
                        ours: item.clone(),
                        live: child.live.cloned(),
                    };
                    if child.whole {
                        found.claimed.push(owned);
                    } else {
                        found.kept.push(owned);
                        remove.push(i);
                    }
                }
                ItemStep::Key(keys) => {
                    if child.owners.is_empty() {
                        continue;
                    }
                    let protected: Vec<String> = keys.keys().cloned().collect();
                    let before = item.as_object().map(Map::len).unwrap_or(0);
                    let others_own_item = child.owners.iter().any(|(_, set)| set.contains_key("."));
                    let purposeful_inside = child.whole || !child.purposeful.is_empty();
                    walk_map_children(item, &child, &protected, found);
                    let only_keys = item
                        .as_object()
                        .is_some_and(|m| m.keys().all(|k| protected.contains(k)));
                    let shrunk = item.as_object().map(Map::len).unwrap_or(0) < before;
                    if only_keys && shrunk && others_own_item && !purposeful_inside {
                        remove.push(i);
                    }
                }
            }
        }
    }
    remove.sort();
    remove.dedup();
    for i in remove.into_iter().rev() {
        items.remove(i);
    }
}

/// A list item's step: `k:{"name":"x"}` or `v:"x"`.
enum ItemStep {
    Key(Map<String, Value>),
    Value(Value),
}

impl ItemStep {
    fn parse(step: &str) -> Option<Self> {
        if let Some(k) = step.strip_prefix("k:") {
            return match serde_json::from_str(k).ok()? {
                Value::Object(m) if !m.is_empty() => Some(Self::Key(m)),
                _ => None,
            };
        }
        step.strip_prefix("v:")
            .and_then(|v| serde_json::from_str(v).ok())
            .map(Self::Value)
    }

    /// Every key field the item has equals the step's, and at least one is there (a key field
    /// left out is one the API server defaults, e.g. a port's `protocol`).
    fn matches(&self, item: &Value) -> bool {
        match self {
            Self::Key(keys) => {
                let Some(obj) = item.as_object() else {
                    return false;
                };
                keys.iter().all(|(k, v)| obj.get(k).is_none_or(|o| o == v))
                    && keys.keys().any(|k| obj.contains_key(k))
            }
            Self::Value(v) => item == v,
        }
    }

    /// The step as the API server prints it: `[name="x",port=80]`, `[="x"]`.
    fn segment(&self) -> String {
        match self {
            Self::Key(keys) => {
                let parts: Vec<String> = keys.iter().map(|(k, v)| format!("{k}={v}")).collect();
                format!("[{}]", parts.join(","))
            }
            Self::Value(v) => format!("[={v}]"),
        }
    }
}

/// One field the API server refused to hand over (a 409 on apply): its path as printed and the
/// manager owning it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub path: String,
    pub manager: String,
}

/// The conflicts of a 409's `status.details.causes` (`field`, `message`), each message being
/// `conflict with "MANAGER" using apps/v1` (possibly `... with subresource "scale" ...`).
pub fn conflicts(causes: &[(String, String)]) -> Vec<Conflict> {
    causes
        .iter()
        .filter(|(field, _)| !field.is_empty())
        .map(|(field, message)| Conflict {
            path: field.clone(),
            manager: message
                .split_once("conflict with \"")
                .and_then(|(_, rest)| rest.split_once('"'))
                .map(|(m, _)| m.to_string())
                .unwrap_or_else(|| message.clone()),
        })
        .collect()
}

#[cfg(test)]
mod tests;
