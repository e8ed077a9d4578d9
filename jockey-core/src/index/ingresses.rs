//! The labelled Ingresses of the cluster, by host, project and ALB group.

use crate::alb_annotations::{self as alb, Action, Parsed, ServicePort, TargetRef};
use crate::contract::{ALB_GROUP_NAME, ALB_PREFIX, ALB_TAGS, parse_tags};
use crate::names::LABEL_PROJECT;
use k8s_openapi::api::networking::v1::{Ingress, IngressBackend};
use std::collections::{BTreeMap, BTreeSet, HashMap};

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
    /// Paths it adds: one listener rule each on every listener that carries rules (see
    /// [`listener_rules`]).
    pub rules: usize,
    /// The Services it routes to (from its paths and the forwards of its `actions.*`).
    pub backends: Vec<BackendRef>,
}

/// A Service an Ingress routes to, by name in the Ingress's namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendRef {
    pub service: String,
    pub port: ServicePort,
    /// The controller fails the whole group when this Service is missing: it is one of several
    /// targets of a forward (`enhanced_backend_builder.go:280-295`). A path's own backend, or a
    /// forward to one Service, becomes a fixed 503 instead.
    pub required: bool,
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
            rules: listener_rules(ing),
            backends: backends(ing),
        }
    }

    /// The target groups it adds to its ALB: one per Service and port it routes to.
    pub fn target_groups(&self) -> usize {
        self.backends
            .iter()
            .map(|b| (&b.service, &b.port))
            .collect::<BTreeSet<_>>()
            .len()
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

/// The paths an Ingress adds (one listener rule each on every listener carrying rules).
pub fn listener_rules(obj: &Ingress) -> usize {
    obj.spec
        .iter()
        .flat_map(|s| s.rules.iter().flatten())
        .filter_map(|r| r.http.as_ref())
        .map(|h| h.paths.len())
        .sum()
}

/// The port name that sends a path to its `actions.<service name>` annotation instead.
pub const USE_ANNOTATION: &str = "use-annotation";

/// Every Service an Ingress routes to: its paths' (and default) backends, and for a backend whose
/// port is `use-annotation`, the Services its `actions.<name>` forwards to.
pub fn backends(ing: &Ingress) -> Vec<BackendRef> {
    let annotations = ing.metadata.annotations.clone().unwrap_or_default();
    let spec = ing.spec.as_ref();
    let paths = spec
        .into_iter()
        .flat_map(|s| s.rules.iter().flatten())
        .filter_map(|r| r.http.as_ref())
        .flat_map(|h| h.paths.iter().map(|p| &p.backend));
    let default = spec.and_then(|s| s.default_backend.as_ref());
    let mut out = Vec::new();
    for backend in paths.chain(default) {
        out.extend(backend_refs(backend, &annotations));
    }
    out.sort_by(|a, b| (&a.service, port_key(&a.port)).cmp(&(&b.service, port_key(&b.port))));
    out.dedup();
    out
}

fn port_key(p: &ServicePort) -> (i32, &str) {
    match p {
        ServicePort::Number(n) => (*n, ""),
        ServicePort::Name(s) => (-1, s.as_str()),
    }
}

fn backend_refs(
    backend: &IngressBackend,
    annotations: &BTreeMap<String, String>,
) -> Vec<BackendRef> {
    let Some(svc) = backend.service.as_ref() else {
        return Vec::new();
    };
    let port = svc.port.as_ref();
    let by_name = port.and_then(|p| p.name.as_deref());
    if by_name == Some(USE_ANNOTATION) {
        let key = format!("{ALB_PREFIX}actions.{}", svc.name);
        let action = annotations.get(&key).and_then(|value| {
            match alb::classify(alb::Object::Ingress, &key)?
                .ok()?
                .parse(value)
                .ok()?
            {
                Parsed::Action(a) => Some(a),
                _ => None,
            }
        });
        let Some(Action::Forward(forward)) = action else {
            return Vec::new();
        };
        let several = forward.targets.len() > 1;
        return forward
            .targets
            .iter()
            .filter_map(|t| match &t.to {
                TargetRef::Service { name, port } => Some(BackendRef {
                    service: name.clone(),
                    port: port.clone(),
                    required: several,
                }),
                _ => None,
            })
            .collect();
    }
    let port = match (by_name, port.and_then(|p| p.number)) {
        (Some(name), _) => ServicePort::Name(name.to_string()),
        (None, Some(n)) => ServicePort::Number(n),
        (None, None) => return Vec::new(),
    };
    vec![BackendRef {
        service: svc.name.clone(),
        port,
        required: false,
    }]
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
