//! What the webhook knows of the cluster, kept from watches so that a request never LISTs: the
//! labelled Ingresses ([`IngressIndex`]), the namespaces labelled for a project
//! ([`NamespaceIndex`]) and what a backend Service is ([`ServiceFacts`]). Pure data structures,
//! updated per watch event and queried per request in O(answer) time; the rules above read them.

mod ingresses;
mod namespaces;
mod services;

pub use ingresses::*;
pub use namespaces::*;
pub use services::*;
