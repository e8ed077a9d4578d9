//! What a deploy did to each object, in kubectl's words, and how the objects are printed.

use crate::output::{OutputFormat, print_structured};
use anyhow::{Context, Result};

/// Prints objects the way kubectl does: YAML documents separated by `---`, or a JSON `List`,
/// without `managedFields` (kubectl hides them too).
pub fn print_objects(objects: &[serde_json::Value], format: OutputFormat) -> Result<()> {
    let objects: Vec<serde_json::Value> = objects
        .iter()
        .map(|o| {
            let mut o = o.clone();
            if let Some(meta) = o.get_mut("metadata").and_then(|m| m.as_object_mut()) {
                meta.remove("managedFields");
            }
            o
        })
        .collect();
    let objects = objects.as_slice();
    match format {
        OutputFormat::Json => print_structured(
            &serde_json::json!({ "apiVersion": "v1", "kind": "List", "items": objects }),
            OutputFormat::Json,
        ),
        _ => {
            let mut out = String::new();
            for (i, o) in objects.iter().enumerate() {
                if i > 0 {
                    out.push_str("---\n");
                }
                out.push_str(&serde_yaml::to_string(o).context("rendering YAML")?);
            }
            print!("{out}");
            Ok(())
        }
    }
}

/// What the API server would keep of an object, for "did anything change": the fields a write
/// could change, without the bookkeeping every read differs in.
pub fn comparable(obj: &serde_json::Value) -> serde_json::Value {
    let mut v = obj.clone();
    if let Some(meta) = v.get_mut("metadata").and_then(|m| m.as_object_mut()) {
        for k in [
            "managedFields",
            "resourceVersion",
            "generation",
            "creationTimestamp",
            "uid",
        ] {
            meta.remove(k);
        }
    }
    if let Some(o) = v.as_object_mut() {
        o.remove("status");
    }
    v
}

/// kubectl's words for what a write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Created,
    Configured,
    Unchanged,
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Change::Created => "created",
            Change::Configured => "configured",
            Change::Unchanged => "unchanged",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparable_ignores_bookkeeping_but_not_content() {
        let live = serde_json::json!({"metadata": {"name": "a", "resourceVersion": "5",
            "managedFields": [{"manager": "x"}], "generation": 3, "uid": "u",
            "creationTimestamp": "t"}, "spec": {"x": 1}, "status": {"y": 2}});
        let would = serde_json::json!({"metadata": {"name": "a", "resourceVersion": "6"},
            "spec": {"x": 1}});
        assert_eq!(comparable(&live), comparable(&would));
        let changed = serde_json::json!({"metadata": {"name": "a"}, "spec": {"x": 2}});
        assert_ne!(comparable(&live), comparable(&changed));
    }
}
