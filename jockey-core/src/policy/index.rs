//! The index of jockey Ingresses the webhook keeps from a watch, so that a request never LISTs.

use crate::defaults::{ALB_GROUP_NAME, ALB_TAGS, parse_tags};
use crate::names::LABEL_PROJECT;
use k8s_openapi::api::networking::v1::Ingress;
use std::collections::{BTreeSet, HashMap};

type Key = (String, String);

/// What validation needs of one labelled Ingress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngressRecord {
    pub namespace: String,
    pub name: String,
    pub project: Option<String>,
    pub hosts: BTreeSet<String>,
    pub group: Option<String>,
    pub tags: Vec<(String, String)>,
    /// Listener rules it adds (see [`super::rules::listener_rules`]).
    pub rules: usize,
}

impl IngressRecord {
    pub fn from_ingress(ing: &Ingress) -> Self {
        let meta = &ing.metadata;
        let annotations = meta.annotations.clone().unwrap_or_default();
        Self {
            namespace: meta.namespace.clone().unwrap_or_default(),
            name: meta.name.clone().unwrap_or_default(),
            project: meta
                .labels
                .as_ref()
                .and_then(|l| l.get(LABEL_PROJECT))
                .cloned(),
            hosts: ingress_hosts(ing).into_iter().map(|(_, h)| h).collect(),
            group: annotations.get(ALB_GROUP_NAME).cloned(),
            tags: annotations
                .get(ALB_TAGS)
                .map(|t| parse_tags(t))
                .unwrap_or_default(),
            rules: super::rules::listener_rules(ing),
        }
    }

    fn key(&self) -> Key {
        (self.namespace.clone(), self.name.clone())
    }

    pub fn describe(&self) -> String {
        let owner = self
            .project
            .as_deref()
            .map(|p| format!(" of project {p}"))
            .unwrap_or_default();
        format!("Ingress {}/{}{owner}", self.namespace, self.name)
    }
}

/// Every host an Ingress serves, with the field it is in.
pub fn ingress_hosts(ing: &Ingress) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let Some(spec) = &ing.spec else {
        return out;
    };
    for (i, rule) in spec.rules.iter().flatten().enumerate() {
        if let Some(h) = rule.host.as_deref().filter(|h| !h.is_empty()) {
            out.push((format!("spec.rules[{i}].host"), h.to_ascii_lowercase()));
        }
    }
    for (i, tls) in spec.tls.iter().flatten().enumerate() {
        for (j, h) in tls.hosts.iter().flatten().enumerate() {
            out.push((format!("spec.tls[{i}].hosts[{j}]"), h.to_ascii_lowercase()));
        }
    }
    out
}

/// Incrementally maintained lookups over the labelled Ingresses of the cluster: host -> owners,
/// project -> its Ingresses, group -> its projects. Updated per watch event; queried per request
/// in O(answer) time.
#[derive(Debug, Default, Clone)]
pub struct IngressIndex {
    records: HashMap<Key, IngressRecord>,
    by_host: HashMap<String, BTreeSet<Key>>,
    by_project: HashMap<String, BTreeSet<Key>>,
    by_group: HashMap<String, BTreeSet<Key>>,
    /// group -> project -> number of that project's Ingresses in the group.
    group_projects: HashMap<String, HashMap<String, usize>>,
}

impl IngressIndex {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn from_ingresses<'a>(ingresses: impl IntoIterator<Item = &'a Ingress>) -> Self {
        let mut index = Self::new();
        for ing in ingresses {
            index.upsert(IngressRecord::from_ingress(ing));
        }
        index
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    pub fn upsert(&mut self, record: IngressRecord) {
        let key = record.key();
        self.remove(&key.0, &key.1);
        for h in &record.hosts {
            self.by_host
                .entry(h.clone())
                .or_default()
                .insert(key.clone());
        }
        if let Some(p) = &record.project {
            self.by_project
                .entry(p.clone())
                .or_default()
                .insert(key.clone());
        }
        if let Some(g) = &record.group {
            self.by_group
                .entry(g.clone())
                .or_default()
                .insert(key.clone());
            if let Some(p) = &record.project {
                *self
                    .group_projects
                    .entry(g.clone())
                    .or_default()
                    .entry(p.clone())
                    .or_default() += 1;
            }
        }
        self.records.insert(key, record);
    }

    pub fn remove(&mut self, namespace: &str, name: &str) {
        let key = (namespace.to_string(), name.to_string());
        let Some(old) = self.records.remove(&key) else {
            return;
        };
        fn drop_key(map: &mut HashMap<String, BTreeSet<Key>>, k: &str, key: &Key) {
            if let Some(set) = map.get_mut(k) {
                set.remove(key);
                if set.is_empty() {
                    map.remove(k);
                }
            }
        }
        for h in &old.hosts {
            drop_key(&mut self.by_host, h, &key);
        }
        if let Some(p) = &old.project {
            drop_key(&mut self.by_project, p, &key);
        }
        if let Some(g) = &old.group {
            drop_key(&mut self.by_group, g, &key);
            if let Some(p) = &old.project
                && let Some(projects) = self.group_projects.get_mut(g)
            {
                if let Some(n) = projects.get_mut(p) {
                    *n -= 1;
                    if *n == 0 {
                        projects.remove(p);
                    }
                }
                if projects.is_empty() {
                    self.group_projects.remove(g);
                }
            }
        }
    }

    /// Every record, in no particular order.
    pub fn records(&self) -> impl Iterator<Item = &IngressRecord> {
        self.records.values()
    }

    pub fn get(&self, namespace: &str, name: &str) -> Option<&IngressRecord> {
        self.records.get(&(namespace.to_string(), name.to_string()))
    }

    /// The Ingresses serving `host`.
    pub fn owners_of<'a>(&'a self, host: &str) -> impl Iterator<Item = &'a IngressRecord> + 'a {
        self.by_host
            .get(host)
            .into_iter()
            .flatten()
            .filter_map(|k| self.records.get(k))
    }

    /// The Ingresses labelled with `project`.
    pub fn of_project<'a>(&'a self, project: &str) -> impl Iterator<Item = &'a IngressRecord> + 'a {
        self.by_project
            .get(project)
            .into_iter()
            .flatten()
            .filter_map(|k| self.records.get(k))
    }

    pub fn in_group<'a>(&'a self, group: &str) -> impl Iterator<Item = &'a IngressRecord> + 'a {
        self.by_group
            .get(group)
            .into_iter()
            .flatten()
            .filter_map(|k| self.records.get(k))
    }

    /// The ALB group the project already uses (the lowest-named, should it use several).
    pub fn group_of_project(&self, project: &str) -> Option<String> {
        self.of_project(project)
            .filter_map(|r| r.group.clone())
            .min()
    }

    pub fn projects_in_group(&self, group: &str) -> usize {
        self.group_projects.get(group).map_or(0, |p| p.len())
    }
}
