//! The build's short-lived AWS credentials (moto standing in for ECR and STS, reached by the build
//! broker only), beyond the successful build `deploy_ecr` covers: the Secret `<build>-aws` is
//! deleted by the broker as soon as the build ends *whatever the outcome* (a failed build, a
//! build that runs past its deadline after `deploy` stopped waiting); and a build timeout past
//! the role's maximum session gets one hour and a warning in the broker's log, from an STS that
//! refuses the longer session as AWS does (a role's
//! MaxSessionDuration, 1 hour by default; moto does not check it, so STS is reached through a
//! relay that answers AWS's refusal and passes everything else to moto).

mod alb_support;
mod deploy_support;

use alb_support::Moto;
use anyhow::{Context, Result, bail, ensure};
use deploy_support::{Env, NoKubelet, Run, jockey, play_kubelet};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use jockey_e2e::{client, repo_root, wait_for};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Secret;
use kube::api::ListParams;
use kube::{Api, Client};
use serde_json::json;
use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;

const REGISTRY: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
const ROLE: &str = "arn:aws:iam::123456789012:role/jockey-builder";
/// What AWS answers an AssumeRole asking for more than the role's MaxSessionDuration.
const TOO_LONG: &str =
    "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.";
/// The role's MaxSessionDuration in the relay: IAM's default.
const ROLE_MAX_SECONDS: u64 = 3600;

/// A test namespace whose broker reaches moto (ECR, and STS unless `extra` says otherwise).
async fn env_with_ecr(
    client: &Client,
    tag: &str,
    moto: &Moto,
    extra: &[(&str, String)],
) -> Result<Env> {
    let mut vars: Vec<(String, String)> = moto
        .env()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    vars.push(("IMAGE_REGISTRY".into(), REGISTRY.into()));
    vars.push(("BUILDER_ROLE_ARN".into(), ROLE.into()));
    vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Env::with_broker_env(client, tag, &vars).await
}

/// `deploy` of the example agent on a blocking thread; the deployer has no AWS settings at all.
fn spawn_deploy(env: &Env, project: &str, timeout: &str) -> tokio::task::JoinHandle<Result<Run>> {
    let args: Vec<String> = [
        "deploy",
        &repo_root().join("examples/agent").to_string_lossy(),
        "--project",
        project,
        "-n",
        &env.ns.name,
        "--timeout",
        timeout,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let builder = env.builder.name.clone();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        jockey(&args, &builder, &[("IMAGE_REGISTRY", REGISTRY)])
    })
}

/// The build Job of `project` once it exists, and its credentials Secret once that exists.
async fn build_and_secret(client: &Client, builder: &str, project: &str) -> Result<(Job, Secret)> {
    let jobs: Api<Job> = Api::namespaced(client.clone(), builder);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), builder);
    let selector = format!("jockey.agentops.ai/project={project}");
    wait_for(
        "the build Job and its credentials Secret",
        Duration::from_secs(120),
        || {
            let (jobs, secrets, selector) = (jobs.clone(), secrets.clone(), selector.clone());
            async move {
                let Some(job) = jobs
                    .list(&ListParams::default().labels(&selector))
                    .await?
                    .items
                    .into_iter()
                    .next()
                else {
                    return Ok(None);
                };
                let name = format!("{}-aws", job.metadata.name.clone().unwrap_or_default());
                Ok(secrets.get_opt(&name).await?.map(|s| (job, s)))
            }
        },
    )
    .await
}

/// The Secret held credentials, and the broker deletes it once the build is over.
async fn credentials_gone(
    client: &Client,
    builder: &str,
    secret: &Secret,
    run: &Run,
) -> Result<()> {
    let data = secret.data.clone().unwrap_or_default();
    ensure!(
        data.contains_key("AWS_SESSION_TOKEN"),
        "not the build's credentials: {:?}",
        data.keys()
    );
    let name = secret.metadata.name.clone().unwrap_or_default();
    let secrets = Api::<Secret>::namespaced(client.clone(), builder);
    // The build's deadline (the Job's activeDeadlineSeconds, at least a minute) ends a build the
    // deployer stopped waiting for; the broker then removes its credentials.
    wait_for(
        &format!("Secret {builder}/{name} to go with its build"),
        Duration::from_secs(150),
        || {
            let (secrets, name) = (secrets.clone(), name.clone());
            async move { Ok(secrets.get_opt(&name).await?.is_none().then_some(())) }
        },
    )
    .await
    .with_context(|| format!("after deploy:\n{}", run.all()))?;
    Ok(())
}

#[tokio::test]
async fn a_failed_build_leaves_no_credentials_secret() -> Result<()> {
    let moto = Moto::start()?;
    let client = client().await?;
    let env = env_with_ecr(&client, "creds-failed", &moto, &[]).await?;
    let pin = NoKubelet::pin(&client, &env.builder.name).await?;
    let outcome = async {
        let deploy = spawn_deploy(&env, "creds-failed", "180s");
        let (_, secret) = build_and_secret(&client, &env.builder.name, "creds-failed").await?;
        play_kubelet(
            &client,
            &env.builder.name,
            "app.kubernetes.io/component=build",
            json!({
                "phase": "Failed",
                "containerStatuses": [{
                    "name": "kaniko", "image": "gcr.io/kaniko-project/executor", "imageID": "",
                    "ready": false, "restartCount": 0,
                    "state": {"terminated": {"exitCode": 1, "reason": "Error",
                        "message": "error building image: exit status 1"}}
                }]
            }),
        )
        .await?;
        let run = deploy.await??;
        ensure!(
            !run.ok,
            "a failed build must fail the deploy: {}",
            run.all()
        );
        ensure!(
            run.stderr.contains("exited with code 1"),
            "not the build's failure: {}",
            run.all()
        );
        credentials_gone(&client, &env.builder.name, &secret, &run).await
    }
    .await;
    pin.cleanup().await?;
    env.cleanup().await?;
    outcome
}

#[tokio::test]
async fn a_build_that_outlives_the_timeout_leaves_no_credentials_secret() -> Result<()> {
    let moto = Moto::start()?;
    let client = client().await?;
    let env = env_with_ecr(&client, "creds-slow", &moto, &[]).await?;
    // The build pod never runs: no kubelet plays it.
    let pin = NoKubelet::pin(&client, &env.builder.name).await?;
    let outcome = async {
        let deploy = spawn_deploy(&env, "creds-slow", "25s");
        let (_, secret) = build_and_secret(&client, &env.builder.name, "creds-slow").await?;
        let run = deploy.await??;
        ensure!(!run.ok, "an unfinished build must fail: {}", run.all());
        ensure!(
            run.stderr.contains("did not finish within --timeout 25s"),
            "{}",
            run.all()
        );
        credentials_gone(&client, &env.builder.name, &secret, &run).await
    }
    .await;
    pin.cleanup().await?;
    env.cleanup().await?;
    outcome
}

/// The DurationSeconds of every AssumeRole the relay saw, and whether it refused it.
type Asked = Arc<Mutex<Vec<(u64, bool)>>>;

/// Passes one request to moto as it came (moto checks no signature) and returns its answer.
fn to_moto(
    moto_port: u16,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> Result<(u16, String, Vec<u8>)> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", moto_port))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut head = format!("{method} {path} HTTP/1.1\r\n");
    for (k, v) in headers {
        if !["connection", "content-length", "transfer-encoding"].contains(&k.as_str()) {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    head.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    ));
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("no end of headers from moto")?;
    let head = String::from_utf8_lossy(&answer[..split]).to_string();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(502);
    let content_type = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-type")
                .then(|| v.trim().to_string())
        })
        .unwrap_or_else(|| "text/xml".into());
    Ok((status, content_type, answer[split + 4..].to_vec()))
}

/// An STS endpoint whose role allows sessions of at most [`ROLE_MAX_SECONDS`]: a longer
/// AssumeRole is refused with AWS's own error; every other request goes to moto.
async fn sts_with_role_maximum(moto_port: u16, asked: Asked) -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let asked = asked.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let asked = asked.clone();
                    async move {
                        let method = req.method().to_string();
                        let path = req.uri().to_string();
                        let headers: Vec<(String, String)> = req
                            .headers()
                            .iter()
                            .map(|(k, v)| {
                                (k.to_string(), v.to_str().unwrap_or_default().to_string())
                            })
                            .collect();
                        let body = req.into_body().collect().await?.to_bytes();
                        let form = String::from_utf8_lossy(&body).to_string();
                        let field = |name: &str| {
                            form.split('&').find_map(|kv| {
                                kv.strip_prefix(&format!("{name}=")).map(str::to_string)
                            })
                        };
                        let reply = if field("Action").as_deref() == Some("AssumeRole") {
                            let seconds: u64 = field("DurationSeconds")
                                .and_then(|s| s.parse().ok())
                                .unwrap_or(3600);
                            let refused = seconds > ROLE_MAX_SECONDS;
                            if let Ok(mut a) = asked.lock() {
                                a.push((seconds, refused));
                            }
                            refused.then(|| {
                                (
                                    400,
                                    "text/xml".to_string(),
                                    format!(
                                        "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\
                                         <Error><Type>Sender</Type><Code>ValidationError</Code>\
                                         <Message>{TOO_LONG}</Message></Error>\
                                         <RequestId>e2e-0000</RequestId></ErrorResponse>"
                                    )
                                    .into_bytes(),
                                )
                            })
                        } else {
                            None
                        };
                        let (status, content_type, bytes) = match reply {
                            Some(r) => r,
                            None => tokio::task::spawn_blocking(move || {
                                to_moto(moto_port, &method, &path, &headers, &body)
                            })
                            .await
                            .ok()
                            .and_then(|r| r.ok())
                            .unwrap_or((
                                502,
                                "text/plain".into(),
                                b"moto unreachable".to_vec(),
                            )),
                        };
                        Ok::<_, hyper::Error>(
                            Response::builder()
                                .status(status)
                                .header("content-type", content_type)
                                .body(Full::new(Bytes::from(bytes)))
                                .unwrap_or_default(),
                        )
                    }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tcp), service)
                    .await;
            });
        }
    });
    Ok(port)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_past_the_roles_maximum_gets_one_hour_credentials_and_a_warning() -> Result<()> {
    let moto = Moto::start()?;
    let client = client().await?;
    let asked: Asked = Arc::new(Mutex::new(Vec::new()));
    let sts = sts_with_role_maximum(moto.port, asked.clone()).await?;
    let env = env_with_ecr(
        &client,
        "creds-hour",
        &moto,
        &[("AWS_ENDPOINT_URL_STS", format!("http://127.0.0.1:{sts}"))],
    )
    .await?;
    let run = spawn_deploy(&env, "creds-hour", "2h").await??;
    let asked = asked.lock().map(|a| a.clone()).unwrap_or_default();
    if !run.ok {
        bail!("deploy failed (AssumeRole calls {asked:?}):\n{}", run.all());
    }
    // Asked for the build's two hours, refused; then for one hour, issued.
    ensure!(
        asked == vec![(7200, true), (3600, false)],
        "AssumeRole calls (DurationSeconds, refused): {asked:?}\n{}",
        run.all()
    );
    let log = env.broker.log_text();
    ensure!(
        log.contains(&format!(
            "role {ROLE} does not allow 7200s sessions; the build gets 1-hour credentials"
        )),
        "the broker's log:\n{log}"
    );
    env.cleanup().await
}
