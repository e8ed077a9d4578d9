//! Support for the tests through the real AWS Load Balancer Controller: a stage per test (its
//! own ALB group, its own `jockey-webhook`, namespaces the controller serves, a builder
//! namespace), `kubectl jockey` pointed at the cluster's moto, and what moto holds read back
//! through the AWS SDK. A failing test prints the controller's log lines about its namespaces
//! and group, and the webhook's log.

#![allow(dead_code)]

use crate::deploy_support::{self, Run};
use crate::webhook_support::Webhook;
use anyhow::{Context, Result, bail};
use aws_sdk_elasticloadbalancingv2 as elbv2;
use jockey_e2e::{AlbController, TestNamespace, client, kubectl, wait_for};
use k8s_openapi::api::core::v1::{Event, Namespace};
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

pub const FAILURES: &[&str] = &["FailedBuildModel", "FailedDeployModel"];
/// The prefix of every annotation of the controller.
pub const A: &str = "alb.ingress.kubernetes.io/";
pub const SUCCESS: &str = "SuccessfullyReconciled";
/// The tag the controller puts on an IngressGroup's load balancer: the group's name.
pub const STACK_TAG: &str = "ingress.k8s.aws/stack";
/// Long enough for the controller to make an ALB in moto, far below any real limit.
pub const WAIT: Duration = Duration::from_secs(120);

/// Cleans up after a passing body; a failure carries the controller's and the webhook's logs
/// (and leaves the namespaces to the stage's drop).
pub async fn finish(st: Stage, result: Result<()>) -> Result<()> {
    match result {
        Ok(()) => st.cleanup().await,
        Err(e) => {
            let context = st.context();
            bail!("{e:#}\n{context}")
        }
    }
}

/// One test's share of the cluster.
pub struct Stage {
    pub ctl: AlbController,
    pub client: Client,
    /// This test's shared ALB group (its shards are `<group>-2`, ...).
    pub group: String,
    pub domain: String,
    pub webhook: Webhook,
    pub builder: TestNamespace,
    pub namespaces: Vec<String>,
    /// Answers the builds of [`Stage::namespaces`] (restarted as one is added), claiming where
    /// the webhook claims.
    pub broker: Option<jockey_e2e::Broker>,
    pub elb: elbv2::Client,
    pub run: String,
    pub tag: String,
    cleaned: bool,
}

impl Drop for Stage {
    fn drop(&mut self) {
        if !self.cleaned {
            for ns in self.namespaces.iter().chain([&self.builder.name]) {
                let _ = kubectl(&["delete", "namespace", ns, "--wait=false"]);
            }
        }
    }
}

/// `tag` (a few letters) names the group and namespaces; `policy` is the webhook's policy file.
/// `Ok(None)`: the controller is left out here, and the test has been reported skipped.
pub async fn stage(test: &str, tag: &str, policy: Option<&str>) -> Result<Option<Stage>> {
    stage_in(test, tag, policy, None).await
}

/// [`stage`] with project hosts under `domain` instead of the domain the cluster's ACM
/// certificate covers.
pub async fn stage_in(
    test: &str,
    tag: &str,
    policy: Option<&str>,
    domain: Option<&str>,
) -> Result<Option<Stage>> {
    let Some(ctl) = AlbController::require(test)? else {
        return Ok(None);
    };
    let client = client().await?;
    let run = format!("{}", std::process::id() % 100_000);
    let group = format!("e2e-{tag}-{run}");
    let domain = domain.map_or_else(|| ctl.certificate_domain.clone(), str::to_string);
    let webhook = Webhook::start_with_args(
        &format!("alb-{tag}"),
        policy,
        &[
            "--alb-shared-group-name",
            &group,
            "--deployment-domain",
            &domain,
        ],
    )
    .await?;
    let builder = TestNamespace::create(&client, &format!("{tag}-build")).await?;
    let setup =
        deploy_support::jockey(&["setup-builder", "-n", &builder.name], &builder.name, &[])?;
    if !setup.ok {
        bail!("setup-builder failed: {}", setup.all());
    }
    let sdk = jockey_e2e::aws::moto_sdk_config(&ctl.endpoint()).await;
    Ok(Some(Stage {
        elb: elbv2::Client::new(&sdk),
        ctl,
        client,
        group,
        domain,
        webhook,
        builder,
        namespaces: Vec::new(),
        broker: None,
        run,
        tag: tag.to_string(),
        cleaned: false,
    }))
}

impl Stage {
    /// A project id unique to this run and test (projects are claimed cluster-wide).
    pub fn project(&self, name: &str) -> String {
        format!("{name}-{}-{}", self.tag, self.run)
    }

    pub fn host(&self, project: &str) -> String {
        format!("{project}.{}", self.domain)
    }

    /// A namespace the controller serves, answered by this test's webhook when `webhook`.
    pub async fn namespace(&mut self, tag: &str, webhook: bool) -> Result<String> {
        let ns = TestNamespace::create(&self.client, tag).await?;
        let name = ns.name.clone();
        self.namespaces.push(name.clone());
        let all: Vec<&str> = self.namespaces.iter().map(String::as_str).collect();
        self.broker = None;
        self.broker = Some(jockey_e2e::Broker::start(
            &all,
            &self.builder.name,
            &self.webhook.claims_ns,
            &[("IMAGE_REGISTRY", deploy_support::REGISTRY)],
        )?);
        self.ctl.serve(&self.client, &name).await?;
        if webhook {
            self.webhook.scope(&self.client, &name, None).await?;
            if !self.webhook_registered() {
                self.webhook.register(&self.client, &name).await?;
            }
        }
        Ok(name)
    }

    /// A namespace the controller serves and jockey's webhook does not answer (what an Ingress
    /// written past jockey looks like), with one Service `svc-bypass` for its backends.
    pub async fn bypass_namespace(&mut self, tag: &str) -> Result<String> {
        let ns = self.namespace(tag, false).await?;
        let (ok, out) = crate::webhook_support::apply(
            &ns,
            "apiVersion: v1\nkind: Service\nmetadata: {name: svc-bypass}\n\
             spec: {ports: [{port: 80, targetPort: 8080}], selector: {app: bypass}}\n",
        )?;
        anyhow::ensure!(ok, "creating svc-bypass in {ns}: {out}");
        Ok(ns)
    }

    fn webhook_registered(&self) -> bool {
        kubectl(&["get", "validatingwebhookconfiguration", &self.webhook.name])
            .map(|o| o.status.success())
            .unwrap_or(false)
    }

    /// The environment `kubectl jockey` runs with: this stage's group and domain, AWS at moto.
    pub fn env(&self) -> Vec<(&str, &str)> {
        let mut env = self.ctl.env();
        env.push(("ALB_SHARED_GROUP_NAME", &self.group));
        env.push(("DEPLOYMENT_DOMAIN", &self.domain));
        env
    }

    /// `kubectl jockey ARGS` with [`Stage::env`].
    pub fn jockey(&self, args: &[&str]) -> Result<Run> {
        deploy_support::jockey(args, &self.builder.name, &self.env())
    }

    /// `kubectl jockey deploy` of `dir` as `project` in `ns`.
    pub fn deploy(&self, ns: &str, project: &str, dir: &str) -> Result<Run> {
        self.jockey(&[
            "deploy",
            dir,
            "--project",
            project,
            "-n",
            ns,
            "--timeout",
            "150s",
        ])
    }

    /// Deploys and insists it worked, returning the address it printed.
    pub fn deploy_ok(&self, ns: &str, project: &str, dir: &str) -> Result<String> {
        let run = self.deploy(ns, project, dir)?;
        if !run.ok {
            bail!("deploy of {project} in {ns} failed:\n{}", run.all());
        }
        run.stdout
            .lines()
            .find_map(|l| l.strip_prefix("Ingress address: "))
            .map(str::to_string)
            .with_context(|| format!("no 'Ingress address:' line in\n{}", run.all()))
    }

    /// The controller's failure events in this stage's namespaces, as `ns/ingress: reason: message`.
    pub async fn failures(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for ns in &self.namespaces {
            for e in ingress_events(&self.client, ns).await? {
                if e.reason.as_deref().is_some_and(|r| FAILURES.contains(&r)) {
                    out.push(format!(
                        "{ns}/{}: {}: {}",
                        e.involved_object.name.unwrap_or_default(),
                        e.reason.unwrap_or_default(),
                        e.message.unwrap_or_default()
                    ));
                }
            }
        }
        Ok(out)
    }

    /// The controller's log about this stage and the webhook's log: what a failure needs.
    pub fn context(&self) -> String {
        let mut needles: Vec<&str> = self.namespaces.iter().map(String::as_str).collect();
        needles.push(&self.group);
        format!(
            "{}\n--- jockey-webhook log ({}) ---\n{}",
            self.ctl.log_excerpt(&needles, 60),
            self.webhook.name,
            tail(&self.webhook.log(), 30)
        )
    }

    /// Deletes every Ingress of the stage and waits until the controller has let them go
    /// (its finalizer: rules and target groups removed from moto), then the namespaces.
    pub async fn cleanup(mut self) -> Result<()> {
        for ns in &self.namespaces {
            let api: Api<Ingress> = Api::namespaced(self.client.clone(), ns);
            for ing in api.list(&ListParams::default()).await?.items {
                let name = ing.metadata.name.unwrap_or_default();
                let _ = api.delete(&name, &DeleteParams::default()).await;
            }
        }
        for ns in self.namespaces.clone() {
            let api: Api<Ingress> = Api::namespaced(self.client.clone(), &ns);
            wait_for(
                &format!("the controller to release the Ingresses of {ns}"),
                WAIT,
                || {
                    let api = api.clone();
                    async move {
                        Ok(api
                            .list(&ListParams::default())
                            .await?
                            .items
                            .is_empty()
                            .then_some(()))
                    }
                },
            )
            .await
            .with_context(|| self.context())?;
        }
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        for ns in self.namespaces.iter().chain([&self.builder.name]) {
            namespaces
                .delete(ns, &DeleteParams::background())
                .await
                .with_context(|| format!("deleting namespace {ns}"))?;
        }
        self.cleaned = true;
        Ok(())
    }

    /// The ALBs of this stage's group and its shards, as moto holds them.
    pub async fn albs(&self) -> Result<Vec<Alb>> {
        read_albs(&self.elb, |stack| {
            stack == self.group
                || stack
                    .strip_prefix(&format!("{}-", self.group))
                    .is_some_and(|n| n.parse::<u32>().is_ok())
        })
        .await
    }

    /// Waits until `check` holds for what moto holds; fails with the last state seen.
    pub async fn wait_albs<F>(&self, what: &str, check: F) -> Result<Vec<Alb>>
    where
        F: Fn(&[Alb]) -> bool,
    {
        let start = std::time::Instant::now();
        loop {
            let albs = self.albs().await?;
            if check(&albs) {
                return Ok(albs);
            }
            if start.elapsed() > WAIT {
                bail!(
                    "timed out after {WAIT:?} waiting for {what}; moto holds {albs:#?}\n{}",
                    self.context()
                );
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

pub async fn ingress_events(client: &Client, ns: &str) -> Result<Vec<Event>> {
    Ok(Api::<Event>::namespaced(client.clone(), ns)
        .list(&ListParams::default().fields("involvedObject.kind=Ingress"))
        .await
        .with_context(|| format!("listing events in {ns}"))?
        .items)
}

// ---------------------------------------------------------------------------------------------
// moto, read back

#[derive(Debug, Clone)]
pub struct Alb {
    pub name: String,
    pub dns: String,
    pub scheme: String,
    pub stack: String,
    pub listeners: Vec<AlbListener>,
    pub target_groups: Vec<Tg>,
}

#[derive(Debug, Clone)]
pub struct AlbListener {
    pub protocol: String,
    pub port: i32,
    pub rules: Vec<AlbRule>,
}

#[derive(Debug, Clone)]
pub struct AlbRule {
    pub priority: String,
    pub hosts: Vec<String>,
    /// Target group ARNs of a forward action.
    pub forward: Vec<String>,
    /// `protocol:port` of a redirect action.
    pub redirect: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Tg {
    pub arn: String,
    pub name: String,
    pub tags: BTreeMap<String, String>,
    pub health_check_path: String,
    pub matcher: String,
    pub target_type: String,
    pub attributes: BTreeMap<String, String>,
    /// (target id, state)
    pub targets: Vec<(String, String)>,
}

impl Alb {
    pub fn listener(&self, port: i32) -> Option<&AlbListener> {
        self.listeners.iter().find(|l| l.port == port)
    }

    /// The rules of the HTTPS listener that match `host`.
    pub fn rules_for(&self, host: &str) -> Vec<&AlbRule> {
        self.listener(443)
            .map(|l| {
                l.rules
                    .iter()
                    .filter(|r| r.hosts.iter().any(|h| h == host))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn tg(&self, arn: &str) -> Option<&Tg> {
        self.target_groups.iter().find(|t| t.arn == arn)
    }

    /// The target groups tagged for `project` (the tags jockey puts on its Service).
    pub fn tgs_of(&self, project: &str) -> Vec<&Tg> {
        self.target_groups
            .iter()
            .filter(|t| t.tags.get("deployment").is_some_and(|d| d == project))
            .collect()
    }
}

fn sdk<E: std::error::Error + Send + Sync + 'static>(
    what: &'static str,
) -> impl FnOnce(elbv2::error::SdkError<E>) -> anyhow::Error {
    move |e| anyhow::anyhow!("{what}: {}", elbv2::error::DisplayErrorContext(e))
}

pub async fn read_albs(elb: &elbv2::Client, want: impl Fn(&str) -> bool) -> Result<Vec<Alb>> {
    let lbs = elb
        .describe_load_balancers()
        .send()
        .await
        .map_err(sdk("DescribeLoadBalancers"))?;
    let mut out = Vec::new();
    for lb in lbs.load_balancers() {
        let arn = lb.load_balancer_arn().unwrap_or_default();
        let tags = tags_of(elb, arn).await?;
        let Some(stack) = tags.get(STACK_TAG).filter(|s| want(s)).cloned() else {
            continue;
        };
        let mut listeners = Vec::new();
        let ls = elb
            .describe_listeners()
            .load_balancer_arn(arn)
            .send()
            .await
            .map_err(sdk("DescribeListeners"))?;
        for l in ls.listeners() {
            let rs = elb
                .describe_rules()
                .listener_arn(l.listener_arn().unwrap_or_default())
                .send()
                .await
                .map_err(sdk("DescribeRules"))?;
            let rules = rs
                .rules()
                .iter()
                .map(|r| {
                    let mut hosts: Vec<String> = Vec::new();
                    for c in r.conditions() {
                        if c.field() == Some("host-header") {
                            if let Some(cfg) = c.host_header_config() {
                                hosts.extend(cfg.values().iter().cloned());
                            }
                            hosts.extend(c.values().iter().cloned());
                        }
                    }
                    hosts.sort();
                    hosts.dedup();
                    let mut forward = Vec::new();
                    let mut redirect = None;
                    for a in r.actions() {
                        if let Some(f) = a.forward_config() {
                            forward.extend(
                                f.target_groups()
                                    .iter()
                                    .filter_map(|t| t.target_group_arn().map(str::to_string)),
                            );
                        }
                        if let Some(t) = a.target_group_arn() {
                            forward.push(t.to_string());
                        }
                        if let Some(rc) = a.redirect_config() {
                            redirect = Some(format!(
                                "{}:{}",
                                rc.protocol().unwrap_or_default(),
                                rc.port().unwrap_or_default()
                            ));
                        }
                    }
                    forward.sort();
                    forward.dedup();
                    AlbRule {
                        priority: r.priority().unwrap_or_default().to_string(),
                        hosts,
                        forward,
                        redirect,
                    }
                })
                .collect();
            listeners.push(AlbListener {
                protocol: l
                    .protocol()
                    .map(|p| p.as_str().to_string())
                    .unwrap_or_default(),
                port: l.port().unwrap_or_default(),
                rules,
            });
        }
        let mut target_groups = Vec::new();
        let tgs = elb
            .describe_target_groups()
            .load_balancer_arn(arn)
            .send()
            .await
            .map_err(sdk("DescribeTargetGroups"))?;
        for t in tgs.target_groups() {
            let tarn = t.target_group_arn().unwrap_or_default().to_string();
            let attrs = elb
                .describe_target_group_attributes()
                .target_group_arn(&tarn)
                .send()
                .await
                .map_err(sdk("DescribeTargetGroupAttributes"))?;
            let health = elb
                .describe_target_health()
                .target_group_arn(&tarn)
                .send()
                .await
                .map_err(sdk("DescribeTargetHealth"))?;
            target_groups.push(Tg {
                tags: tags_of(elb, &tarn).await?,
                name: t.target_group_name().unwrap_or_default().to_string(),
                health_check_path: t.health_check_path().unwrap_or_default().to_string(),
                matcher: t
                    .matcher()
                    .and_then(|m| m.http_code())
                    .unwrap_or_default()
                    .to_string(),
                target_type: t
                    .target_type()
                    .map(|x| x.as_str().to_string())
                    .unwrap_or_default(),
                attributes: attrs
                    .attributes()
                    .iter()
                    .filter_map(|a| Some((a.key()?.to_string(), a.value()?.to_string())))
                    .collect(),
                targets: health
                    .target_health_descriptions()
                    .iter()
                    .map(|d| {
                        (
                            d.target()
                                .and_then(|t| t.id())
                                .unwrap_or_default()
                                .to_string(),
                            d.target_health()
                                .and_then(|h| h.state())
                                .map(|s| s.as_str().to_string())
                                .unwrap_or_default(),
                        )
                    })
                    .collect(),
                arn: tarn,
            });
        }
        out.push(Alb {
            name: lb.load_balancer_name().unwrap_or_default().to_string(),
            dns: lb.dns_name().unwrap_or_default().to_string(),
            scheme: lb
                .scheme()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
            stack,
            listeners,
            target_groups,
        });
    }
    out.sort_by(|a, b| a.stack.cmp(&b.stack));
    Ok(out)
}

async fn tags_of(elb: &elbv2::Client, arn: &str) -> Result<BTreeMap<String, String>> {
    let out = elb
        .describe_tags()
        .resource_arns(arn)
        .send()
        .await
        .map_err(sdk("DescribeTags"))?;
    Ok(out
        .tag_descriptions()
        .iter()
        .flat_map(|d| d.tags())
        .filter_map(|t| {
            Some((
                t.key()?.to_string(),
                t.value().unwrap_or_default().to_string(),
            ))
        })
        .collect())
}

/// The hosts every rule of the HTTPS listener matches, for assertions.
pub fn https_hosts(alb: &Alb) -> BTreeSet<String> {
    alb.listener(443)
        .map(|l| l.rules.iter().flat_map(|r| r.hosts.clone()).collect())
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Breaking the group on purpose, past the webhook

/// An Ingress as jockey's defaults make it, in `group`, routing `host` to `backend` (a JSON
/// IngressBackend), with `extra` annotations (keys without the prefix).
pub fn ingress_json(
    ns: &str,
    name: &str,
    host: &str,
    group: &str,
    extra: &[(&str, &str)],
    backend: Value,
) -> Ingress {
    let mut annotations = serde_json::Map::new();
    for (k, v) in [
        ("group.name", group),
        ("scheme", "internet-facing"),
        ("target-type", "ip"),
        ("listen-ports", r#"[{"HTTP": 80}, {"HTTPS": 443}]"#),
        ("ssl-redirect", "443"),
        ("healthcheck-path", "/health"),
    ]
    .into_iter()
    .chain(extra.iter().copied())
    {
        annotations.insert(format!("{A}{k}"), json!(v));
    }
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": ns, "annotations": annotations},
        "spec": {"ingressClassName": "alb", "rules": [{"host": host, "http": {"paths": [{
            "path": "/", "pathType": "Prefix", "backend": backend}]}}]}
    }))
    .unwrap_or_default()
}

pub fn to_service(name: &str) -> Value {
    json!({"service": {"name": name, "port": {"number": 80}}})
}

pub fn to_action(name: &str) -> Value {
    json!({"service": {"name": name, "port": {"name": "use-annotation"}}})
}

/// Creates an Ingress of the stage's group in `ns` (a namespace the webhook does not answer, so
/// nothing checks it) carrying `extra` and routing to `backend`, waits for the controller's
/// verdict on the group (recorded on every member, this one included), then takes the values off
/// again and deletes it, so the group recovers for what comes next. Returns the controller's
/// message.
pub async fn break_the_group(
    st: &Stage,
    ns: &str,
    i: usize,
    extra: &[(&str, &str)],
    backend: Value,
) -> Result<String> {
    let name = format!("bypass-{i}");
    let api: Api<Ingress> = Api::namespaced(st.client.clone(), ns);
    let ing = ingress_json(
        ns,
        &name,
        &st.host(&st.project(&format!("bypass{i}"))),
        &st.group,
        extra,
        backend,
    );
    api.create(&PostParams::default(), &ing)
        .await
        .with_context(|| format!("creating Ingress {ns}/{name}"))?;
    let message = wait_for(
        &format!("a controller failure on Ingress {ns}/{name}"),
        WAIT,
        || {
            let (client, ns, name) = (st.client.clone(), ns.to_string(), name.clone());
            async move {
                Ok(ingress_events(&client, &ns)
                    .await?
                    .into_iter()
                    .find(|e| {
                        e.involved_object.name.as_deref() == Some(name.as_str())
                            && e.reason.as_deref().is_some_and(|r| FAILURES.contains(&r))
                    })
                    .map(|e| {
                        format!(
                            "{}: {}",
                            e.reason.unwrap_or_default(),
                            e.message.unwrap_or_default()
                        )
                    }))
            }
        },
    )
    .await?;
    let mut remove = serde_json::Map::new();
    for (k, _) in extra {
        remove.insert(format!("{A}{k}"), Value::Null);
    }
    api.patch(
        &name,
        &PatchParams::default(),
        &Patch::Merge(&json!({"metadata": {"annotations": remove}})),
    )
    .await?;
    api.delete(&name, &DeleteParams::default()).await?;
    wait_for(&format!("Ingress {ns}/{name} to be released"), WAIT, || {
        let api = api.clone();
        let name = name.clone();
        async move { Ok(api.get_opt(&name).await?.is_none().then_some(())) }
    })
    .await?;
    Ok(message)
}
