//! The model `kubectl-jockey` and `jockey-webhook` share, so that the two can never disagree:
//! names and labels ([`names`]), configuration ([`config`]), and (in later modules) instance
//! bundles, object defaulting and ingress policy. Everything here is pure: objects in, objects or
//! JSON patches out.

pub mod admission;
pub mod alb_annotations;
pub mod allowlist;
pub mod aws_limits;
pub mod build_request;
pub mod bundle;
pub mod certs;
pub mod claims;
pub mod config;
pub mod contract;
pub mod defaults;
pub mod dotenv;
pub mod image;
pub mod index;
pub mod names;
pub mod ownership;
pub mod policy;
pub mod registration;
pub mod runtime;
pub mod sharding;
pub mod tenant;
pub mod verdict;

pub use config::{BuilderCredentials, Config};
pub use names::{ContentHash, ProjectId};
