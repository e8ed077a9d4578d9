//! A stand-in kubelet with gates, for deploys whose pods sit on a node without one
//! (`deploy_support::NoKubelet`): while a gate is open it finishes every build pod of the
//! builder namespace (Kaniko exits 0) or makes every server pod of the project Ready; while
//! closed it leaves them pending, so `deploy` is held at that step for as long as the test wants.

use crate::running::{build_succeeded, pods, server_ready};
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

pub struct Gates {
    pub build: Arc<AtomicBool>,
    pub rollout: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Gates {
    pub fn start(client: &Client, builder_ns: &str, ns: &str, project: &str) -> Self {
        let build = Arc::new(AtomicBool::new(false));
        let rollout = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let (b, r, s) = (build.clone(), rollout.clone(), stop.clone());
        let (client, builder_ns, ns) = (client.clone(), builder_ns.to_string(), ns.to_string());
        let (build_sel, app_sel) = (
            format!("jockey.agentops.ai/project={project}"),
            format!("app={project}"),
        );
        let task = tokio::spawn(async move {
            while !s.load(Ordering::SeqCst) {
                for (open, namespace, selector, status) in [
                    (&b, &builder_ns, &build_sel, build_succeeded()),
                    (&r, &ns, &app_sel, server_ready()),
                ] {
                    if !open.load(Ordering::SeqCst) {
                        continue;
                    }
                    let Ok(list) = pods(&client, namespace, selector).await else {
                        continue;
                    };
                    let api: Api<k8s_openapi::api::core::v1::Pod> =
                        Api::namespaced(client.clone(), namespace);
                    for p in list {
                        let phase = p.status.as_ref().and_then(|s| s.phase.clone());
                        let terminating = p.metadata.deletion_timestamp.is_some();
                        if terminating || matches!(phase.as_deref(), Some("Succeeded" | "Running"))
                        {
                            continue;
                        }
                        let Some(name) = p.metadata.name else {
                            continue;
                        };
                        let _ = api
                            .patch_status(
                                &name,
                                &PatchParams::default(),
                                &Patch::Merge(serde_json::json!({ "status": status })),
                            )
                            .await;
                    }
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        Self {
            build,
            rollout,
            stop,
            task,
        }
    }

    pub fn set(&self, build: bool, rollout: bool) {
        self.build.store(build, Ordering::SeqCst);
        self.rollout.store(rollout, Ordering::SeqCst);
    }

    pub async fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.task.await;
    }
}
