//! The project lifecycle after `deploy`, one module per command: [`status`], [`list`], [`logs`],
//! [`rollback`], [`delete`], [`gc`]. Each reads the labelled objects jockey wrote; the decisions
//! (which instance to roll back to, which ConfigMaps are garbage) are pure functions with unit
//! tests. [`instances`] and [`ownership`] hold what several of them share: `delete`,
//! `rollback` and `gc` touch only objects labelled with the project.

pub mod delete;
pub mod gc;
pub mod instances;
pub mod list;
pub mod logs;
pub mod ownership;
pub mod rollback;
pub mod status;
