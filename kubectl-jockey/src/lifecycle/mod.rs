//! The project lifecycle after `deploy`, one module per command: [`status`], [`list`], [`logs`],
//! [`rollback`], [`delete`], [`gc`]. Each reads the labelled objects jockey wrote; the decisions
//! (which instance to roll back to, which ConfigMaps are garbage) are pure functions with unit
//! tests. [`instances`] holds what several of them share.

pub mod delete;
pub mod gc;
pub mod instances;
pub mod list;
pub mod logs;
pub mod rollback;
pub mod status;
