//! `kubectl jockey deploy` on the real node: Kaniko really builds the image from the instance tar
//! (with the built-in template, or the project's own Dockerfile, with its layer cache), pushes it
//! to the local registry, the kubelet pulls it, the pod passes its real `/health` readiness probe
//! and the agent answers `POST /run` through the project's Service. A second deploy of the same
//! files builds nothing; a code-only change builds nothing either (the built-in template's image
//! holds the dependencies; the agent's own command unpacks the files from the instance at pod
//! start) and the new code answers; `rollback` brings the old code back without a build; a
//! dependency change builds the new dependency image, and only that.
//!
//! Skipped (reported as such by tests/summary.sh) where the machine cannot run the real node.

mod real_support;

use anyhow::{Context, Result, ensure};
use jockey_e2e::{client, repo_root, require_real_node};
use k8s_openapi::api::core::v1::Pod;
use real_support::deploy_support::example_copy;
use real_support::{
    RealEnv, answer, answers_in_a_row, project, registry_digest, registry_tags, tag_of,
};
use serde_json::Value;

/// The pod really runs the image: on the real node, Ready through its probe, with the digest the
/// registry serves as the image the runtime pulled.
fn check_pod(pod: &Pod, node: &str, image: &str, digest: &str) -> Result<()> {
    let spec = pod.spec.clone().unwrap_or_default();
    ensure!(
        spec.node_name.as_deref() == Some(node),
        "pod on {:?}, not the real node",
        spec.node_name
    );
    let status = pod.status.clone().unwrap_or_default();
    let cs = status
        .container_statuses
        .unwrap_or_default()
        .into_iter()
        .next()
        .context("no container status")?;
    ensure!(cs.ready, "container not ready: {cs:?}");
    // The runtime names a pulled image by any of its tags: the same files built for another
    // project (make demo's) are the same digest, so it is the spec that names the image asked for
    // and the image ID that proves what runs.
    let asked = spec
        .containers
        .first()
        .map(|c| c.image.clone().unwrap_or_default());
    ensure!(asked.as_deref() == Some(image), "{asked:?} != {image}");
    ensure!(
        cs.image_id.ends_with(digest),
        "the runtime's image {} is not the registry's {digest}",
        cs.image_id
    );
    Ok(())
}

/// The server image of the project's pods that are not terminating.
async fn running_images(env: &RealEnv, project: &str) -> Result<Vec<String>> {
    Ok(env
        .pods(project)
        .await?
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter_map(|p| p.spec.as_ref()?.containers[0].image.clone())
        .collect())
}

/// Whether a build log shows Kaniko looking up its layer cache (it says so for each cacheable
/// step, found or not).
fn uses_layer_cache(log: &str) -> bool {
    log.contains("No cached layer found for cmd") || log.contains("Using caching version of cmd")
}

#[tokio::test]
async fn agent_is_built_pulled_and_answers_and_only_a_dependency_change_rebuilds() -> Result<()> {
    let Some(node) = require_real_node() else {
        return Ok(());
    };
    let client = client().await?;
    let env = RealEnv::new(&client, &node, "real-agent").await?;
    let project_id = "real-agent";
    // The example with a dependency comment of this run's own: its dependency image is built
    // here, whatever earlier runs on this cluster left in the registry under the same project
    // (a dependency image is built without --reproducible, so a rebuilt tag is another digest,
    // and the node would keep the one it pulled before).
    let example_dir = example_copy("real-agent")?;
    let requirements = format!(
        "{}# {}\n",
        std::fs::read_to_string(repo_root().join("examples/agent/requirements.txt"))?,
        env.ns()
    );
    std::fs::write(example_dir.path().join("requirements.txt"), &requirements)?;
    let example = example_dir.path().to_path_buf();

    let run = env.deploy_following(&example, project_id)?;
    ensure!(run.ok, "deploy failed: {}", run.all());
    let jobs = env.jobs(project_id).await?;
    ensure!(jobs.len() == 1, "one build: {jobs:?}");
    // The build's log came with --follow: Kaniko pushed, and never looked for a cached layer.
    ensure!(run.all().contains("Pushing image to"), "{}", run.all());
    ensure!(!uses_layer_cache(&run.all()), "{}", run.all());
    let job = &jobs[0];
    ensure!(
        job.status.as_ref().and_then(|s| s.succeeded) == Some(1),
        "{:?}",
        job.status
    );
    // The built-in template: the build of the dependency image, named by it.
    let job_name = job.metadata.name.clone().unwrap_or_default();
    ensure!(
        job_name.starts_with(&format!("{project_id}-deps-")),
        "{job_name}"
    );

    // The image is in the registry; the pod runs exactly that image, named
    // by the dependencies (`d-...`), with the instance's files unpacked by its init container.
    let pods = env.pods(project_id).await?;
    let pod = pods
        .iter()
        .find(|p| p.metadata.deletion_timestamp.is_none())
        .context("no pod")?;
    let image = pod.spec.clone().unwrap_or_default().containers[0]
        .image
        .clone()
        .unwrap_or_default();
    let d = tag_of(&image).to_string();
    ensure!(jockey_core::image::is_dependency_tag(&d), "{image}");
    ensure!(
        image == format!("{}/hosting/{project_id}:{d}", node.registry),
        "{image}"
    );
    ensure!(
        job_name.ends_with(&d[2..]),
        "{job_name} is not the build of {d}"
    );
    ensure!(
        registry_tags(&node.registry, &format!("hosting/{project_id}"))?.contains(&d),
        "{image} is not in the registry"
    );
    // Named by its inputs and built once: no layer cache (it could never hit).
    ensure!(
        registry_tags(&node.registry, &format!("hosting/{project_id}/cache"))?.is_empty(),
        "the dependency image's build pushed a layer cache"
    );
    let digest = registry_digest(&image)?;
    check_pod(pod, &node.name, &image, &digest)?;
    // The files were unpacked by the agent's own command (jockey's wrapper, then the template's
    // CMD), not by an init container, and it did so on its first start.
    let spec = pod.spec.clone().unwrap_or_default();
    ensure!(spec.init_containers.is_none(), "{:?}", spec.init_containers);
    let agent = spec.containers.first().context("no container")?;
    ensure!(
        agent
            .command
            .as_deref()
            .is_some_and(jockey_core::defaults::is_unpack_wrapper)
            && agent.args.as_deref() == Some(&["python".to_string(), "server.py".to_string()][..]),
        "{:?} {:?}",
        agent.command,
        agent.args
    );
    let started = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|s| s.first())
        .context("no container status")?;
    ensure!(
        started.restart_count == 0 && started.state.as_ref().is_some_and(|s| s.running.is_some()),
        "{started:?}"
    );

    // The agent answers through its Service.
    let out = env
        .post(
            project_id,
            "/run",
            r#"{"provider": "reverse", "input": "jockey"}"#,
        )
        .await?;
    ensure!(answer(&out)? == "yekcoj", "{out}");
    let first_instance = env
        .jockey(&["status", project_id, "-o", "json"], &[])?
        .stdout;

    // The same files again: no build, nothing written.
    let again = env.deploy(&example, project_id, &[])?;
    ensure!(again.ok, "{}", again.all());
    ensure!(
        again.stderr.contains("skipping the build"),
        "{}",
        again.all()
    );
    ensure!(env.jobs(project_id).await?.len() == 1, "a second build ran");

    // A code-only change: a new instance, the same image, no build Job at all (so nothing was
    // downloaded or installed: with --follow, a build's log would be in the output); the new
    // code answers.
    let changed = example_copy("real-agent-changed")?;
    std::fs::write(changed.path().join("requirements.txt"), &requirements)?;
    std::fs::write(
        changed.path().join("providers/echo.py"),
        "NAME = \"echo\"\n\n\ndef run(text: str) -> str:\n    return text + \" (changed)\"\n",
    )?;
    let started = std::time::Instant::now();
    let run = env.deploy_following(changed.path(), project_id)?;
    ensure!(run.ok, "{}", run.all());
    answers_in_a_row(
        &env,
        project_id,
        r#"{"provider": "echo", "input": "hi"}"#,
        "hi (changed)",
    )
    .await?;
    eprintln!(
        "code-only change serving after {:.1}s",
        started.elapsed().as_secs_f64()
    );
    let jobs = env.jobs(project_id).await?;
    ensure!(
        jobs.len() == 1,
        "a code-only change ran a build: {:?}",
        jobs.iter()
            .map(|j| j.metadata.name.clone())
            .collect::<Vec<_>>()
    );
    ensure!(
        !run.all().contains("pip install") && !run.all().contains("Pushing image to"),
        "{}",
        run.all()
    );
    ensure!(
        running_images(&env, project_id)
            .await?
            .iter()
            .all(|i| *i == image),
        "the code-only change changed the image"
    );

    // rollback: the old code again, the same image, no build.
    let back = env.jockey(
        &["rollback", project_id, "--timeout", real_support::TIMEOUT],
        &[],
    )?;
    ensure!(back.ok, "{}", back.all());
    ensure!(back.stderr.contains("nothing built"), "{}", back.all());
    answers_in_a_row(
        &env,
        project_id,
        r#"{"provider": "echo", "input": "hi"}"#,
        "hi",
    )
    .await?;
    ensure!(env.jobs(project_id).await?.len() == 1, "rollback built");
    let status = env
        .jockey(&["status", project_id, "-o", "json"], &[])?
        .stdout;
    let instance = |s: &str| -> Result<String> {
        let v: Value = serde_json::from_str(s).with_context(|| format!("status: {s}"))?;
        Ok(v["instance"].as_str().unwrap_or_default().to_string())
    };
    ensure!(
        instance(&status)? == instance(&first_instance)?,
        "{status} != {first_instance}"
    );

    // A dependency change builds a new image, and only that.
    std::fs::write(
        changed.path().join("requirements.txt"),
        format!("six==1.17.0\n# {}\n", env.ns()),
    )?;
    let run = env.deploy(changed.path(), project_id, &[])?;
    ensure!(run.ok, "{}", run.all());
    let jobs = env.jobs(project_id).await?;
    ensure!(jobs.len() == 2, "one more build: {jobs:?}");
    answers_in_a_row(
        &env,
        project_id,
        r#"{"provider": "echo", "input": "hi"}"#,
        "hi (changed)",
    )
    .await?;
    let images = running_images(&env, project_id).await?;
    let new_image = images
        .iter()
        .find(|i| **i != image)
        .context("no pod of the new image")?;
    let new_tag = tag_of(new_image);
    ensure!(
        jockey_core::image::is_dependency_tag(new_tag) && new_tag != d,
        "{new_image}"
    );
    ensure!(
        registry_tags(&node.registry, &format!("hosting/{project_id}"))?
            .contains(&new_tag.to_string()),
        "{new_image} is not in the registry"
    );

    env.cleanup().await
}

/// A project with its own Dockerfile: its requirements come from PyPI through the node's route
/// to the Internet, and its server answers.
#[tokio::test]
async fn own_dockerfile_builds_with_pip_from_pypi_and_serves() -> Result<()> {
    let Some(node) = require_real_node() else {
        return Ok(());
    };
    let client = client().await?;
    let env = RealEnv::new(&client, &node, "real-own").await?;
    let dockerfile = format!(
        "FROM {}\n\
         WORKDIR /srv\n\
         COPY requirements.txt .\n\
         RUN pip install --no-cache-dir -r requirements.txt\n\
         COPY server.py .\n\
         USER 10001\n\
         CMD [\"python3\", \"server.py\"]\n",
        node.base_image
    );
    let server = r#"import json, six
from http.server import BaseHTTPRequestHandler, HTTPServer

class H(BaseHTTPRequestHandler):
    def _send(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self._send(200, {"status": "ok"})

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        text = json.loads(self.rfile.read(n) or b"{}").get("input", "")
        self._send(200, {"output": "own:%s:six-%s" % (text, six.__version__)})

HTTPServer(("0.0.0.0", 8080), H).serve_forever()
"#;
    let dir = project(
        "real-own",
        &[
            ("Dockerfile", &dockerfile),
            ("requirements.txt", "six==1.17.0\n"),
            ("server.py", server),
        ],
    )?;
    let run = env.deploy_following(dir.path(), "real-own")?;
    ensure!(run.ok, "deploy failed: {}", run.all());
    let out = env.post("real-own", "/run", r#"{"input": "x"}"#).await?;
    ensure!(answer(&out)? == "own:x:six-1.17.0", "{out}");
    // A project's own Dockerfile is rebuilt for every change: Kaniko's layer cache keeps the
    // steps before it. This build looked its steps up (the log says so) and either pushed them
    // or, where an earlier run on this registry did, used them; either way the cache holds them.
    let log = run.all();
    ensure!(
        uses_layer_cache(&log),
        "Kaniko did not use its layer cache: {log}"
    );
    ensure!(
        log.contains("to cache now") || log.contains("Using caching version of cmd"),
        "the layer cache was neither written nor read: {log}"
    );
    ensure!(
        !registry_tags(&node.registry, "hosting/real-own/cache")?.is_empty(),
        "Kaniko pushed no layer cache for a project's own Dockerfile"
    );
    env.cleanup().await
}
