//! The webhook keeps what users changed on a running Deployment, through the real API server and
//! the real deployment controller: `kubectl set image` to another instance's builder image moves
//! the instance annotation and volume with it, `kubectl rollout undo` brings all three back, and
//! an apply that changes only the annotation (a client-side apply of a manifest whose image is
//! `jockey:auto`) still rolls the new instance out.

mod webhook_support;

use anyhow::Result;
use jockey_e2e::{TestNamespace, client, kubectl, kubectl_ok, wait_for};
use serde_json::Value;
use std::time::Duration;
use webhook_support::{REGISTRY, Webhook, apply, get_json, minimal_manifest, project};

const H1: &str = "1111111111111111";
const H2: &str = "2222222222222222";
const H3: &str = "3333333333333333";

/// The instance each of the three places names: (annotation, image of `server`, volume).
fn places(d: &Value) -> (String, String, String) {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let pod = &d["spec"]["template"]["spec"];
    let image = pod["containers"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == "server"))
        .map(|c| s(&c["image"]))
        .unwrap_or_default();
    let volume = pod["volumes"]
        .as_array()
        .and_then(|vs| vs.iter().find(|v| v["name"] == "jockey-instance"))
        .map(|v| s(&v["configMap"]["name"]))
        .unwrap_or_default();
    (
        s(&d["metadata"]["annotations"]["jockey.agentops.ai/instance"]),
        image,
        volume,
    )
}

fn expected(p: &str, h: &str) -> (String, String, String) {
    (
        format!("instance-{h}"),
        format!("{REGISTRY}/hosting/{p}:{h}"),
        format!("instance-{h}"),
    )
}

fn deployment(ns: &str, p: &str) -> Result<Value> {
    get_json(ns, "deployment", p)?.ok_or_else(|| anyhow::anyhow!("Deployment {ns}/{p} is gone"))
}

/// Waits until the deployment controller recorded a rollout of the template that names `h`:
/// a revision newer than `after` whose ReplicaSet runs the builder image of `h`. Returns it.
async fn rolled_out(ns: &str, p: &str, h: &str, after: u64) -> Result<u64> {
    let image = expected(p, h).1;
    wait_for(
        &format!("a rollout of {image} after revision {after}"),
        Duration::from_secs(60),
        || async {
            let d = deployment(ns, p)?;
            let revision: u64 = d["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
                .as_str()
                .and_then(|r| r.parse().ok())
                .unwrap_or(0);
            if revision <= after || places(&d).1 != image {
                return Ok(None);
            }
            let out = kubectl_ok(&["get", "replicaset", "-n", ns, "-o", "json"])?;
            let sets: Value = serde_json::from_str(&out)?;
            let found = sets["items"].as_array().is_some_and(|items| {
                items.iter().any(|rs| {
                    rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
                        == Value::String(revision.to_string())
                        && places(rs).1 == image
                })
            });
            Ok(found.then_some(revision))
        },
    )
    .await
}

#[tokio::test]
async fn set_image_rollout_undo_and_an_annotation_only_apply_move_all_three_together() -> Result<()>
{
    let client = client().await?;
    let ns = TestNamespace::create(&client, "wh-user-changes").await?;
    let mut wh = Webhook::start("user-changes", None).await?;
    wh.scope(&client, &ns.name, None).await?;
    wh.register(&client, &ns.name).await?;
    let p = project("moves");
    let ns_name = ns.name.as_str();

    let (ok, out) = apply(ns_name, &minimal_manifest(&p, H1))?;
    assert!(ok, "{out}\n{}", wh.log());
    assert_eq!(places(&deployment(ns_name, &p)?), expected(&p, H1));
    let r1 = rolled_out(ns_name, &p, H1, 0).await?;

    // `kubectl set image` to another instance's builder image: the annotation and the volume
    // follow the image instead of reverting it.
    let image2 = expected(&p, H2).1;
    kubectl_ok(&[
        "set",
        "image",
        "-n",
        ns_name,
        &format!("deployment/{p}"),
        &format!("server={image2}"),
    ])?;
    assert_eq!(
        places(&deployment(ns_name, &p)?),
        expected(&p, H2),
        "{}",
        wh.log()
    );
    let r2 = rolled_out(ns_name, &p, H2, r1).await?;

    // `kubectl rollout undo`: the first template and its annotations come back, all three
    // naming the first instance again.
    kubectl_ok(&["rollout", "undo", "-n", ns_name, &format!("deployment/{p}")])?;
    assert_eq!(
        places(&deployment(ns_name, &p)?),
        expected(&p, H1),
        "{}",
        wh.log()
    );
    let r3 = rolled_out(ns_name, &p, H1, r2).await?;

    // A client-side apply of the manifest with a new annotation: kubectl sends only the
    // annotation (the image is still `jockey:auto` in the manifest, as last applied); the image
    // and volume move with it and the new instance rolls out.
    let (ok, out) = apply(ns_name, &minimal_manifest(&p, H3))?;
    assert!(ok, "{out}\n{}", wh.log());
    assert_eq!(
        places(&deployment(ns_name, &p)?),
        expected(&p, H3),
        "{}",
        wh.log()
    );
    rolled_out(ns_name, &p, H3, r3).await?;

    // Two places changed to different instances at once: refused, naming both, nothing stored.
    let patch = format!(
        r#"{{"metadata":{{"annotations":{{"jockey.agentops.ai/instance":"instance-{H1}"}}}},"spec":{{"template":{{"spec":{{"containers":[{{"name":"server","image":"{}"}}]}}}}}}}}"#,
        expected(&p, H2).1
    );
    let out = kubectl(&[
        "patch",
        "deployment",
        &p,
        "-n",
        ns_name,
        "--type=strategic",
        "-p",
        &patch,
    ])?;
    let msg = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "a contradictory change was stored");
    assert!(
        msg.contains("two different instances")
            && msg.contains(&format!("instance-{H1}"))
            && msg.contains(&format!(":{H2}")),
        "{msg}"
    );
    assert_eq!(places(&deployment(ns_name, &p)?), expected(&p, H3));

    drop(wh);
    ns.cleanup().await?;
    Ok(())
}
