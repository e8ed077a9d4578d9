//! The pure half of the ALB commands: Kubernetes objects, an optional ELBv2 snapshot and DNS
//! answers in; ingress rows, a status summary and routing checks out. No I/O, so every branch
//! is unit-tested with hand-made objects. One module per idea, each below the commands:
//!
//! - [`model`]: inputs, constants and Ingress accessors (the floor);
//! - [`health`]: the controller's events and the one judgement of a group's health;
//! - [`routes`]: how the ALB routes a host (ELBv2 snapshot);
//! - [`conflicts`]: group-wide settings members disagree on;
//! - [`rows`] (`list-alb-ingresses`), [`status`] (`alb-status`), [`validate`] and
//!   [`validate_net`] (`validate-alb-routing`).
//!
//! This module only gathers their public names, so callers (`check`, the commands in
//! [`super`]) keep one path whichever module holds a name; some are for them alone.
#![allow(unused_imports)]

pub use super::conflicts::{group_conflicts, legacy_project_tags, tag_conflicts};
pub use super::health::{FailureEvent, fix_for};
pub use super::model::*;
pub use super::rows::{IngressRow, ingress_rows};
pub use super::status::{
    ControllerPod, DnsRecord, GroupStatus, HostRoute, LbStatus, Status, Usage, status,
};
pub use super::validate::{
    Check, DnsAnswer, DnsView, Outcome, ProbeResult, ValidateInput, alb_addresses_for_host,
    any_failed, ingresses_for_host, ready_endpoints, validate,
};
