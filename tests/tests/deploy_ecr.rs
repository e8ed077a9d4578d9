//! `deploy` with an ECR registry (moto standing in for ECR and STS, through `AWS_ENDPOINT_URL`),
//! built by the build broker: the image's repository (immutable tags) is created before the
//! build, and no layer-cache repository for the built-in template (it builds without one); the Kaniko Job is set up for ECR (region, the
//! credential helper's config); and the build's AWS credentials are short-lived ones
//! the broker got from STS AssumeRole, scoped by a session policy to the project's repositories,
//! in a Secret of the build's own that is gone once the build is. The deployer holds no AWS
//! credentials and calls no AWS API: its AWS endpoint is a second moto that must stay untouched.

mod alb_support;
mod deploy_support;

use alb_support::Moto;
use anyhow::{Context, Result};
use aws_sdk_ecr::types::ImageTagMutability;
use deploy_support::{Env, jockey};
use futures::StreamExt;
use jockey_e2e::{client, repo_root};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Api;
use kube::api::ListParams;
use kube::runtime::watcher;
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const ACCOUNT: &str = "123456789012";
const REGISTRY: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
const ROLE: &str = "arn:aws:iam::123456789012:role/jockey-builder";

/// Everything moto holds, as its own API reports it (`GET /moto-api/data.json`).
fn moto_state(moto: &Moto) -> Result<serde_json::Value> {
    let mut stream = TcpStream::connect(("127.0.0.1", moto.port))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        stream,
        "GET /moto-api/data.json HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
        moto.port
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .context("no body from moto-api")?;
    serde_json::from_str(body).with_context(|| format!("moto-api answered {response}"))
}

/// What the watch saw happen to one Secret.
type Seen = Arc<Mutex<Vec<(bool, Secret)>>>;

/// Records every version of every Secret in `ns` the API server sends from now on (`true` for a
/// deletion); returns once the watch is established.
async fn record_secrets(
    client: &kube::Client,
    ns: &str,
) -> Result<(Seen, tokio::task::JoinHandle<()>)> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let api: Api<Secret> = Api::namespaced(client.clone(), ns);
    let sink = seen.clone();
    let (ready, started) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        let mut ready = Some(ready);
        let mut events = watcher(api, watcher::Config::default()).boxed();
        while let Some(Ok(event)) = events.next().await {
            match event {
                watcher::Event::InitDone => {
                    if let Some(r) = ready.take() {
                        let _ = r.send(());
                    }
                }
                watcher::Event::Apply(s) | watcher::Event::InitApply(s) => {
                    if let Ok(mut all) = sink.lock() {
                        all.push((false, s));
                    }
                }
                watcher::Event::Delete(s) => {
                    if let Ok(mut all) = sink.lock() {
                        all.push((true, s));
                    }
                }
                watcher::Event::Init => {}
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(30), started)
        .await
        .context("the Secret watch did not start")??;
    Ok((seen, task))
}

#[tokio::test]
async fn deploy_to_ecr_builds_with_short_lived_project_scoped_credentials() -> Result<()> {
    let moto = Moto::start()?;
    let sentinel = Moto::start()?;
    let client = client().await?;
    let moto_env = moto.env();
    let mut broker_vars: Vec<(&str, &str)> =
        moto_env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    broker_vars.push(("IMAGE_REGISTRY", REGISTRY));
    broker_vars.push(("BUILDER_ROLE_ARN", ROLE));
    let env = Env::with_broker_env(&client, "deploy-ecr", &broker_vars).await?;
    let project = "ecr-agent";
    // Whatever AWS the deployer would reach, if it called any, is the sentinel.
    let sentinel_env = sentinel.env();
    let mut vars: Vec<(&str, &str)> = sentinel_env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    vars.push(("IMAGE_REGISTRY", REGISTRY));
    let example = repo_root()
        .join("examples/agent")
        .to_string_lossy()
        .to_string();
    let deploy_args = [
        "deploy",
        &example,
        "--project",
        project,
        "-n",
        &env.ns.name,
        "--timeout",
        "120s",
    ];

    let (secrets_seen, recorder) = record_secrets(&client, &env.builder.name).await?;
    // The plugin runs on a blocking thread so that the watch keeps receiving meanwhile.
    let (args, builder, owned_vars): (Vec<String>, String, Vec<(String, String)>) = (
        deploy_args.iter().map(|a| a.to_string()).collect(),
        env.builder.name.clone(),
        vars.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    );
    let run = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let vars: Vec<(&str, &str)> = owned_vars
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        jockey(&args, &builder, &vars)
    })
    .await??;
    assert!(run.ok, "{}\nbroker:\n{}", run.all(), env.broker.log_text());

    // The repositories: the image's, with immutable tags; no layer-cache repository, since the
    // built-in template's dependency image is built without Kaniko's cache (a project's own
    // Dockerfile gets one, mutable: Kaniko re-pushes cache keys after its cache TTL).
    let ecr = aws_sdk_ecr::Client::new(&moto.sdk_config().await);
    let repo = format!("hosting/{project}");
    let found = ecr
        .describe_repositories()
        .repository_names(&repo)
        .send()
        .await
        .with_context(|| format!("repository {repo} must exist"))?;
    assert_eq!(
        found.repositories()[0].image_tag_mutability(),
        Some(&ImageTagMutability::Immutable),
        "{repo}"
    );
    let cache = ecr
        .describe_repositories()
        .repository_names(format!("{repo}/cache"))
        .send()
        .await;
    assert!(
        cache
            .as_ref()
            .err()
            .and_then(|e| e.as_service_error())
            .is_some_and(|e| e.is_repository_not_found_exception()),
        "no cache repository for a build without the layer cache: {cache:?}"
    );

    // The Job: ECR set up, and its only credentials are references to its own Secret.
    let jobs = Api::<Job>::namespaced(client.clone(), &env.builder.name)
        .list(&ListParams::default().labels(&format!("jockey.agentops.ai/project={project}")))
        .await?
        .items;
    assert_eq!(jobs.len(), 1);
    let job_name = jobs[0].metadata.name.clone().unwrap_or_default();
    let own_secret = format!("{job_name}-aws");
    let pod = jobs[0].spec.clone().unwrap().template.spec.unwrap();
    let kaniko = &pod.containers[0];
    let args = kaniko.args.clone().unwrap();
    // The built-in template's dependency image is named by its inputs and built once: no
    // layer cache (the cache repository serves projects with their own Dockerfile).
    assert!(args.iter().all(|a| !a.starts_with("--cache")), "{args:?}");
    let env_vars = kaniko.env.clone().unwrap();
    assert!(
        env_vars
            .iter()
            .any(|e| e.name == "AWS_REGION" && e.value.as_deref() == Some("us-east-1"))
    );
    let mut referenced = BTreeSet::new();
    for e in &env_vars {
        if e.name.starts_with("AWS_ACCESS") || e.name.starts_with("AWS_SECRET") {
            assert!(e.value.is_none(), "credentials never inline: {e:?}");
        }
        if let Some(r) = e
            .value_from
            .as_ref()
            .and_then(|v| v.secret_key_ref.as_ref())
        {
            referenced.insert(r.name.clone());
        }
    }
    assert_eq!(referenced, BTreeSet::from([own_secret.clone()]));
    assert!(kaniko.env_from.is_none());
    assert!(pod.volumes.iter().flatten().all(|v| v.secret.is_none()));
    let mounts = kaniko.volume_mounts.clone().unwrap();
    assert!(mounts.iter().any(|m| m.mount_path == "/kaniko/.docker"));
    let copy = Api::<ConfigMap>::namespaced(client.clone(), &env.builder.name)
        .get(&job_name)
        .await?;
    let docker_config = &copy.data.unwrap()["config.json"];
    assert!(docker_config.contains("ecr-login") && docker_config.contains(REGISTRY));

    // The Secret as it existed during the build: owned by the Job, holding credentials that
    // GetCallerIdentity says belong to the assumed builder role, in a session named after the
    // project; and deleted by the time the deploy returned (the watch may deliver that last).
    jockey_e2e::wait_for(
        "the watch to see the build's Secret deleted",
        Duration::from_secs(30),
        || {
            let seen = secrets_seen.clone();
            let name = own_secret.clone();
            async move {
                let all = seen.lock().map(|s| s.clone()).unwrap_or_default();
                Ok(all
                    .iter()
                    .any(|(deleted, s)| *deleted && s.metadata.name.as_deref() == Some(&name))
                    .then_some(()))
            }
        },
    )
    .await?;
    recorder.abort();
    let seen: Vec<Secret> = secrets_seen
        .lock()
        .map(|s| s.iter().map(|(_, s)| s.clone()).collect())
        .unwrap_or_default();
    let secret = seen
        .iter()
        .rfind(|s| s.metadata.name.as_deref() == Some(own_secret.as_str()))
        .with_context(|| format!("Secret {own_secret} was never seen; saw {seen:?}"))?;
    assert!(
        seen.iter()
            .any(|s| s.metadata.name.as_deref() == Some(own_secret.as_str())
                && s.metadata
                    .owner_references
                    .iter()
                    .flatten()
                    .any(|o| o.kind == "Job" && o.name == job_name)),
        "the Secret goes with its Job"
    );
    let data = secret.data.clone().unwrap_or_default();
    let value = |k: &str| {
        data.get(k)
            .map(|b| String::from_utf8_lossy(&b.0).to_string())
            .unwrap_or_default()
    };
    let key_id = value("AWS_ACCESS_KEY_ID");
    assert!(!key_id.is_empty() && key_id != "testing", "{key_id}");
    // Each variable present: with one missing, the checks below would pass vacuously
    // (`contains("")` is always true; the SDK would fall back to other credentials).
    for k in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
    ] {
        assert!(!value(k).is_empty(), "the build's Secret lacks {k}");
    }
    assert_ne!(
        value("AWS_SECRET_ACCESS_KEY"),
        "testing",
        "not moto's static secret"
    );
    assert!(
        !value("AWS_SESSION_TOKEN").is_empty(),
        "short-lived: a session token"
    );
    let sts = aws_sdk_sts::Client::from_conf(
        aws_sdk_sts::config::Builder::from(&moto.sdk_config().await)
            .credentials_provider(aws_sdk_sts::config::Credentials::new(
                key_id.clone(),
                value("AWS_SECRET_ACCESS_KEY"),
                Some(value("AWS_SESSION_TOKEN")),
                None,
                "build-secret",
            ))
            .build(),
    );
    let me = sts.get_caller_identity().send().await?;
    assert_eq!(
        me.arn(),
        Some(
            format!("arn:aws:sts::{ACCOUNT}:assumed-role/jockey-builder/jockey-build-{project}")
                .as_str()
        )
    );

    // What moto recorded of the AssumeRole call: the role, and a session policy naming only
    // the project's repositories (plus the login call, which has no resource).
    let state = moto_state(&moto)?;
    let roles = state["sts"]["AssumedRole"]
        .as_array()
        .context("moto recorded no AssumeRole")?;
    let call = roles
        .iter()
        .find(|r| r["access_key_id"] == key_id.as_str())
        .with_context(|| format!("no AssumeRole issued {key_id}: {roles:?}"))?;
    assert_eq!(call["role_arn"], ROLE);
    assert_eq!(
        call["session_name"],
        format!("jockey-build-{project}").as_str()
    );
    let policy: serde_json::Value = serde_json::from_str(
        call["policy"]
            .as_str()
            .context("AssumeRole was called without a session policy")?,
    )?;
    let mut resources = BTreeSet::new();
    for statement in policy["Statement"].as_array().context("no statements")? {
        assert_eq!(statement["Effect"], "Allow", "{statement}");
        match &statement["Resource"] {
            serde_json::Value::String(r) => {
                assert_eq!(
                    (r.as_str(), &statement["Action"]),
                    ("*", &serde_json::json!("ecr:GetAuthorizationToken")),
                    "only the login call may name every resource"
                );
            }
            serde_json::Value::Array(rs) => {
                resources.extend(rs.iter().filter_map(|r| r.as_str().map(str::to_string)))
            }
            other => panic!("unexpected resource {other}"),
        }
    }
    assert_eq!(
        resources,
        BTreeSet::from([format!(
            "arn:aws:ecr:us-east-1:{ACCOUNT}:repository/hosting/{project}"
        )])
    );

    // The build is over: its credentials are gone, and no other AWS secret exists.
    let secrets = Api::<Secret>::namespaced(client.clone(), &env.builder.name);
    assert!(
        secrets.get_opt(&own_secret).await?.is_none(),
        "{}",
        run.all()
    );
    assert!(
        secrets
            .list(&ListParams::default())
            .await?
            .items
            .iter()
            .all(|s| s
                .data
                .as_ref()
                .is_none_or(|d| !d.contains_key("AWS_ACCESS_KEY_ID"))),
        "no AWS credentials are left in the builder namespace"
    );
    assert!(!run.all().contains(&value("AWS_SECRET_ACCESS_KEY")));

    // Deploying again: the image is known, nothing is built or written, no credentials issued.
    let jobs_api = Api::<Job>::namespaced(client.clone(), &env.builder.name);
    let jobs_before = jobs_api.list(&ListParams::default()).await?.items.len();
    let before =
        deploy_support::resource_versions(&client, &env.ns.name, &env.builder.name).await?;
    let again = jockey(&deploy_args, &env.builder.name, &vars)?;
    assert!(again.ok, "{}", again.all());
    assert!(again.stderr.contains("nothing changed"), "{}", again.all());
    let after_versions =
        deploy_support::resource_versions(&client, &env.ns.name, &env.builder.name).await?;
    assert_eq!(
        before, after_versions,
        "the second deploy wrote to the cluster"
    );
    assert_eq!(
        jobs_api.list(&ListParams::default()).await?.items.len(),
        jobs_before,
        "the second deploy started a build"
    );
    let after = moto_state(&moto)?;
    assert_eq!(
        after["sts"]["AssumedRole"].as_array().map(Vec::len),
        Some(roles.len())
    );
    assert_eq!(roles.len(), 1, "one build, one AssumeRole, by the broker");

    // The deployer never reached AWS: the sentinel holds no repository and issued no role.
    let untouched = moto_state(&sentinel)?;
    assert!(
        untouched["sts"]["AssumedRole"]
            .as_array()
            .is_none_or(Vec::is_empty),
        "the deployer called STS: {}",
        untouched["sts"]
    );
    let sentinel_ecr = aws_sdk_ecr::Client::new(&sentinel.sdk_config().await);
    let repos = sentinel_ecr.describe_repositories().send().await?;
    assert!(
        repos.repositories().is_empty(),
        "the deployer called ECR: {repos:?}"
    );

    env.cleanup().await
}

#[tokio::test]
async fn deploy_to_ecr_without_a_builder_role_is_refused_with_the_fix() -> Result<()> {
    let moto = Moto::start()?;
    let client = client().await?;
    let moto_env = moto.env();
    let mut vars: Vec<(&str, &str)> = moto_env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    vars.push(("IMAGE_REGISTRY", REGISTRY));
    let env = Env::with_broker_env(&client, "deploy-ecr-norole", &vars).await?;
    let vars = [("IMAGE_REGISTRY", REGISTRY)];
    let example = repo_root().join("examples/agent");
    let run = jockey(
        &[
            "deploy",
            &example.to_string_lossy(),
            "--project",
            "ecr-norole",
            "-n",
            &env.ns.name,
            "--timeout",
            "60s",
        ],
        &env.builder.name,
        &vars,
    )?;
    assert!(!run.ok, "{}", run.all());
    assert!(
        run.stderr.contains("BUILDER_ROLE_ARN") && run.stderr.contains("broker"),
        "{}",
        run.all()
    );
    let jobs = Api::<Job>::namespaced(client.clone(), &env.builder.name)
        .list(&ListParams::default())
        .await?;
    assert!(jobs.items.is_empty(), "no build starts without credentials");
    env.cleanup().await
}
