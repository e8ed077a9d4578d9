//! What the rules need to know of a Service an Ingress routes to: whose it is, its type and its
//! ports. The webhook keeps the labelled Services from a watch and reads any other one (an
//! unlabelled Service, or one the watch has not delivered yet) from the API server when an
//! Ingress names it.

use crate::alb_annotations::ServicePort;
use crate::names::LABEL_PROJECT;
use k8s_openapi::api::core::v1::Service;

/// One port of a Service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortFacts {
    pub name: Option<String>,
    pub port: i32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceFacts {
    pub namespace: String,
    pub name: String,
    /// Its `jockey.agentops.ai/project` label.
    pub project: Option<String>,
    /// `spec.type`; `None` is ClusterIP.
    pub type_: Option<String>,
    pub ports: Vec<PortFacts>,
}

impl ServiceFacts {
    pub fn from_service(svc: &Service) -> Self {
        let meta = &svc.metadata;
        let spec = svc.spec.as_ref();
        Self {
            namespace: meta.namespace.clone().unwrap_or_default(),
            name: meta.name.clone().unwrap_or_default(),
            project: meta
                .labels
                .as_ref()
                .and_then(|l| l.get(LABEL_PROJECT))
                .cloned(),
            type_: spec.and_then(|s| s.type_.clone()),
            ports: spec
                .and_then(|s| s.ports.as_ref())
                .into_iter()
                .flatten()
                .map(|p| PortFacts {
                    name: p.name.clone(),
                    port: p.port,
                })
                .collect(),
        }
    }

    /// Whether the Service has the port an Ingress backend names (by number or by name).
    pub fn has_port(&self, port: &ServicePort) -> bool {
        self.ports.iter().any(|p| match port {
            ServicePort::Number(n) => p.port == *n,
            ServicePort::Name(name) => p.name.as_deref() == Some(name.as_str()),
        })
    }
}

/// Where the rules look Services up: the webhook's cache (with what it read from the API server
/// for this request), a closure, or a plain list in tests.
pub trait Services {
    fn lookup(&self, namespace: &str, name: &str) -> ServiceLookup;
}

impl<F: Fn(&str, &str) -> ServiceLookup> Services for F {
    fn lookup(&self, namespace: &str, name: &str) -> ServiceLookup {
        self(namespace, name)
    }
}

/// No Service at all (tests and tools that route nowhere but to the default backends).
pub static NO_SERVICES: Vec<ServiceFacts> = Vec::new();

/// Every Service listed; anything else is missing.
impl Services for Vec<ServiceFacts> {
    fn lookup(&self, namespace: &str, name: &str) -> ServiceLookup {
        self.iter()
            .find(|s| s.namespace == namespace && s.name == name)
            .map_or(ServiceLookup::Missing, |f| ServiceLookup::Found(f.clone()))
    }
}

/// What the webhook knows of a Service named by an Ingress in the request's namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceLookup {
    /// It exists, as described.
    Found(ServiceFacts),
    /// The API server says it does not exist.
    Missing,
    /// Not in the cache: the webhook must ask the API server before deciding.
    Unknown,
}
