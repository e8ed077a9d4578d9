//! Support for the ALB end-to-end tests: the plugin as a child process, a local moto server, a
//! few EC2 calls moto needs before it accepts a load balancer, and a tiny authoritative DNS
//! server so `validate-alb-routing` can check real DNS answers without the internet.

#![allow(dead_code)]

use anyhow::{Context, Result, bail};
use jockey_e2e::wait_for;
use jockey_e2e::{kubeconfig_path, repo_root};
use k8s_openapi::api::core::v1::Pod;
use kube::api::PostParams;
use kube::{Api, Client};
use serde_json::json;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Runs `kubectl-jockey ARGS` against the local cluster with `env` added.
pub fn jockey(args: &[&str], env: &[(&str, &str)]) -> Result<Output> {
    let bin = repo_root().join("target/debug/kubectl-jockey");
    if !bin.exists() {
        bail!(
            "{} is missing: run `cargo build -p kubectl-jockey` first (tests/e2e.sh does)",
            bin.display()
        );
    }
    let mut cmd = Command::new(&bin);
    cmd.arg("--kubeconfig").arg(kubeconfig_path()).args(args);
    // The tests decide about AWS themselves: nothing from the developer's machine leaks in.
    for var in [
        "AWS_PROFILE",
        "AWS_ENDPOINT_URL",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "ALB_SHARED_GROUP_NAME",
        "DEPLOYMENT_DOMAIN",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("AWS_EC2_METADATA_DISABLED", "true");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output()
        .with_context(|| format!("running {}", bin.display()))
}

/// Stdout and stderr together, for assertions and failure messages.
pub fn text(out: &Output) -> String {
    format!(
        "exit: {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

pub fn json_stdout(out: &Output) -> Result<serde_json::Value> {
    serde_json::from_slice(&out.stdout).with_context(|| format!("parsing JSON from\n{}", text(out)))
}

/// A short id unique to this test process, for names that must not collide with a parallel run.
pub fn run_id() -> String {
    format!("{}", std::process::id() % 100_000)
}

// ---------------------------------------------------------------------------------------------
// moto

pub struct Moto {
    child: Child,
    pub port: u16,
}

impl Moto {
    pub fn start() -> Result<Self> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let program = std::env::var("MOTO_SERVER").unwrap_or_else(|_| "moto_server".into());
        let child = Command::new(&program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| {
                format!(
                    "starting {program}; install it with `pip install 'moto[server]==5.2.1'` \
                     (make deps does)"
                )
            })?;
        let moto = Self { child, port };
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let start = Instant::now();
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if start.elapsed() > Duration::from_secs(30) {
                bail!("moto_server did not listen on {addr} within 30s");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(moto)
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The environment that points the plugin at this moto server, as a user would.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.url()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_REGION", "us-east-1".into()),
        ]
    }

    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        jockey_e2e::aws::moto_sdk_config(&self.url()).await
    }

    /// One call of a JSON-protocol API (e.g. ACM's `CertificateManager.RequestCertificate`),
    /// for the same reason as [`Moto::ec2`]: one call does not justify an SDK crate.
    pub fn json_call(
        &self,
        service: &str,
        target: &str,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value> {
        let body = body.to_string();
        let request = format!(
            "POST / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
             Content-Type: application/x-amz-json-1.1\r\nX-Amz-Target: {target}\r\n\
             Authorization: AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=0\r\n\
             Content-Length: {len}\r\nConnection: close\r\n\r\n{body}",
            port = self.port,
            len = body.len()
        );
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        stream.write_all(request.as_bytes())?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        if !response.starts_with("HTTP/1.1 200") && !response.starts_with("HTTP/1.0 200") {
            bail!("{target} failed: {response}");
        }
        let json = response
            .split_once("\r\n\r\n")
            .map(|(_, b)| b)
            .unwrap_or_default();
        serde_json::from_str(json).with_context(|| format!("{target} answered {response}"))
    }

    /// One EC2 Query API call (form POST). The EC2 SDK crate is too large to compile for the
    /// four calls the tests make; moto does not check signatures, only which service is asked.
    pub fn ec2(&self, params: &[(&str, &str)]) -> Result<String> {
        let body: String = [("Version", "2016-11-15")]
            .iter()
            .chain(params)
            .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let request = format!(
            "POST / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
             Content-Type: application/x-www-form-urlencoded; charset=utf-8\r\n\
             Authorization: AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=0\r\n\
             Content-Length: {len}\r\nConnection: close\r\n\r\n{body}",
            port = self.port,
            len = body.len()
        );
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        stream.write_all(request.as_bytes())?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        if !response.starts_with("HTTP/1.1 200") && !response.starts_with("HTTP/1.0 200") {
            bail!("EC2 {params:?} failed: {response}");
        }
        Ok(response)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The text of the first `<tag>...</tag>` in an XML response.
pub fn xml_value(xml: &str, tag: &str) -> Result<String> {
    let open = format!("<{tag}>");
    let start = xml
        .find(&open)
        .with_context(|| format!("no <{tag}> in {xml}"))?
        + open.len();
    let end = xml[start..]
        .find(&format!("</{tag}>"))
        .with_context(|| format!("no </{tag}> in {xml}"))?;
    Ok(xml[start..start + end].to_string())
}

// ---------------------------------------------------------------------------------------------
// kube objects

/// An Ingress shaped as jockey makes it (not labelled as jockey's, so no admission webhook
/// another test registered gets involved).
pub fn ingress(name: &str, host: &str, service: &str, group: &str) -> serde_json::Value {
    json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": name, "annotations": {
            "alb.ingress.kubernetes.io/group.name": group,
            "alb.ingress.kubernetes.io/scheme": "internet-facing",
            "alb.ingress.kubernetes.io/target-type": "ip",
            "alb.ingress.kubernetes.io/listen-ports": "[{\"HTTP\": 80}, {\"HTTPS\": 443}]",
            "alb.ingress.kubernetes.io/ssl-redirect": "443",
            "alb.ingress.kubernetes.io/healthcheck-path": "/health",
        }},
        "spec": {"ingressClassName": "alb", "rules": [{"host": host, "http": {"paths": [{
            "path": "/", "pathType": "Prefix",
            "backend": {"service": {"name": service, "port": {"number": 80}}}}]}}]}
    })
}

/// A selector-less ClusterIP Service 80 -> 8080 and an EndpointSlice with ready `ips`: the
/// shape the ALB targets, without depending on pods.
pub fn service_and_slice(service: &str, ips: &[&str]) -> (serde_json::Value, serde_json::Value) {
    let svc = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": service},
        "spec": {"type": "ClusterIP", "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}
    });
    let slice = json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": format!("{service}-manual"),
                     "labels": {"kubernetes.io/service-name": service}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        "endpoints": ips.iter().map(|ip| json!({"addresses": [ip], "conditions": {"ready": true}})).collect::<Vec<_>>(),
    });
    (svc, slice)
}

// ---------------------------------------------------------------------------------------------
// DNS

/// A UDP DNS server on 127.0.0.1 answering A queries from `records` (name -> CNAME target or
/// IPv4 address), following CNAMEs; everything else is NXDOMAIN. Stops when dropped.
pub struct DnsServer {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

#[derive(Clone, Debug)]
pub enum Rec {
    Cname(String),
    A(Ipv4Addr),
}

impl DnsServer {
    pub fn start(records: BTreeMap<String, Rec>) -> Result<Self> {
        let socket = UdpSocket::bind("127.0.0.1:0")?;
        socket.set_read_timeout(Some(Duration::from_millis(100)))?;
        let addr = socket.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            while !flag.load(Ordering::Relaxed) {
                let Ok((n, peer)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                if let Some(reply) = answer(&buf[..n], &records) {
                    let _ = socket.send_to(&reply, peer);
                }
            }
        });
        Ok(Self { addr, stop })
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn encode_name(name: &str, out: &mut Vec<u8>) {
    for label in name.trim_end_matches('.').split('.') {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
}

fn answer(query: &[u8], records: &BTreeMap<String, Rec>) -> Option<Vec<u8>> {
    if query.len() < 12 {
        return None;
    }
    // Question: labels, then QTYPE and QCLASS.
    let mut i = 12;
    let mut labels = Vec::new();
    loop {
        let len = *query.get(i)? as usize;
        i += 1;
        if len == 0 {
            break;
        }
        labels.push(String::from_utf8_lossy(query.get(i..i + len)?).to_ascii_lowercase());
        i += len;
    }
    let qtype = u16::from_be_bytes([*query.get(i)?, *query.get(i + 1)?]);
    let question = query.get(12..i + 4)?;
    let mut name = labels.join(".");

    let mut answers: Vec<Vec<u8>> = Vec::new();
    let mut known = false;
    for _ in 0..8 {
        match records.get(&name) {
            Some(Rec::Cname(target)) => {
                known = true;
                let mut rr = Vec::new();
                encode_name(&name, &mut rr);
                let mut rdata = Vec::new();
                encode_name(target, &mut rdata);
                rr.extend_from_slice(&5u16.to_be_bytes()); // CNAME
                rr.extend_from_slice(&1u16.to_be_bytes()); // IN
                rr.extend_from_slice(&60u32.to_be_bytes());
                rr.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
                rr.extend_from_slice(&rdata);
                answers.push(rr);
                name = target.to_ascii_lowercase();
            }
            Some(Rec::A(ip)) => {
                known = true;
                if qtype == 1 {
                    let mut rr = Vec::new();
                    encode_name(&name, &mut rr);
                    rr.extend_from_slice(&1u16.to_be_bytes()); // A
                    rr.extend_from_slice(&1u16.to_be_bytes());
                    rr.extend_from_slice(&60u32.to_be_bytes());
                    rr.extend_from_slice(&4u16.to_be_bytes());
                    rr.extend_from_slice(&ip.octets());
                    answers.push(rr);
                }
                break;
            }
            None => break,
        }
    }
    let rcode: u8 = if known { 0 } else { 3 };
    let mut out = Vec::new();
    out.extend_from_slice(&query[0..2]); // id
    out.push(0x84 | (query[2] & 0x01)); // QR, AA, RD copied
    out.push(0x80 | rcode); // RA, rcode
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&(answers.len() as u16).to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes());
    out.extend_from_slice(question);
    for a in answers {
        out.extend_from_slice(&a);
    }
    Some(out)
}

/// A stand-in for the controller's pod (KWOK makes it Running and Ready), found through a
/// selector unique to the test.
pub async fn controller_pod(client: &Client, ns: &str, marker: &str) -> Result<String> {
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "aws-load-balancer-controller-0", "labels": {
            "app.kubernetes.io/name": "aws-load-balancer-controller", "e2e-alb": marker}},
        "spec": {"containers": [{"name": "controller",
                                  "image": "public.ecr.aws/eks/aws-load-balancer-controller:v2.13.0"}]}
    }))?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    pods.create(&PostParams::default(), &pod).await?;
    wait_for(
        "the controller stand-in pod to be Ready",
        Duration::from_secs(90),
        || {
            let pods = pods.clone();
            async move {
                let p = pods.get("aws-load-balancer-controller-0").await?;
                let ready = p
                    .status
                    .and_then(|s| s.conditions)
                    .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
                Ok(ready.then_some(()))
            }
        },
    )
    .await?;
    Ok(format!(
        "app.kubernetes.io/name=aws-load-balancer-controller,e2e-alb={marker}"
    ))
}
