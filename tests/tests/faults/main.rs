//! Faults on the local cluster (issue 13): the webhook killed mid-stream, kube-apiserver
//! restarted under a waiting `deploy`, `deploy` interrupted after each step, concurrent deploys
//! of one project, etcd paused during an admission burst. Each proves that nothing is lost or
//! half-written and that the cluster is left healthy.
//!
//! These tests stop shared components of the cluster, so they run one at a time ([`SERIAL`]),
//! and, being one test binary, never beside another binary's tests (cargo runs test binaries one
//! after another). Each puts back what it stopped through a guard that also runs on panic.

#[path = "../deploy_support/mod.rs"]
mod deploy_support;
#[path = "../webhook_support/mod.rs"]
mod webhook_support;

mod apiserver_restart;
mod component;
mod concurrent_deploys;
mod deploy_interrupt;
mod etcd_pause;
mod kubelet;
mod running;
mod webhook_restart;

/// One fault at a time: a test must not see another's restart.
pub static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
