//! Namespaces labelled `jockey.agentops.ai/project`: a namespace labelled for a project holds only
//! that project's objects, and reserves the project id against every other namespace.

use std::collections::{BTreeSet, HashMap};

/// Namespace -> the project it is labelled for, and the reverse.
#[derive(Debug, Default, Clone)]
pub struct NamespaceIndex {
    project_of: HashMap<String, String>,
    reserved: HashMap<String, BTreeSet<String>>,
}

impl NamespaceIndex {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut index = Self::new();
        for (ns, project) in pairs {
            index.set(ns, Some(project));
        }
        index
    }

    pub fn len(&self) -> usize {
        self.project_of.len()
    }

    pub fn is_empty(&self) -> bool {
        self.project_of.is_empty()
    }

    /// Records `namespace`'s label (`None`: unlabelled or deleted).
    pub fn set(&mut self, namespace: &str, project: Option<&str>) {
        if let Some(old) = self.project_of.remove(namespace)
            && let Some(set) = self.reserved.get_mut(&old)
        {
            set.remove(namespace);
            if set.is_empty() {
                self.reserved.remove(&old);
            }
        }
        if let Some(p) = project {
            self.project_of.insert(namespace.to_string(), p.to_string());
            self.reserved
                .entry(p.to_string())
                .or_default()
                .insert(namespace.to_string());
        }
    }

    /// The project `namespace` is labelled for.
    pub fn project_of(&self, namespace: &str) -> Option<&str> {
        self.project_of.get(namespace).map(String::as_str)
    }

    /// The namespaces labelled for `project`, in name order.
    pub fn labelled_for<'a>(&'a self, project: &str) -> impl Iterator<Item = &'a str> + 'a {
        self.reserved
            .get(project)
            .into_iter()
            .flatten()
            .map(String::as_str)
    }
}
