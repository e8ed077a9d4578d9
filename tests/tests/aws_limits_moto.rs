//! The cluster's moto refuses what AWS refuses. The AWS Load Balancer Controller's tests (and
//! the property test over admitted Ingresses) count "the group reconciles in moto" as evidence
//! that AWS would accept the same calls; that holds only if moto enforces AWS's documented
//! ELBv2 constraints (`tests/cluster/moto_aws_limits.py`, each check citing its documentation).
//! For each constraint on a value jockey's allowlist can admit, this calls the cluster's moto
//! through the real AWS SDK with the limit itself (which must be accepted) and with the value
//! one past it (which must be refused with the error code AWS answers). Every mismatch is
//! collected and reported together. Where the controller's source is absent, the test reports
//! itself SKIPPED (the moto venv comes with the controller).

use anyhow::{Result, bail};
use aws_sdk_elasticloadbalancingv2 as elbv2;
use elbv2::error::{DisplayErrorContext, ProvideErrorMetadata};
use elbv2::operation::create_target_group::builders::CreateTargetGroupFluentBuilder;
use elbv2::types::{
    Action, ActionTypeEnum, Certificate, FixedResponseActionConfig, HostHeaderConditionConfig,
    HttpHeaderConditionConfig, LoadBalancerSchemeEnum, LoadBalancerTypeEnum, Matcher,
    PathPatternConditionConfig, ProtocolEnum, RuleCondition, RulePriorityPair, Tag,
    TargetGroupAttribute, TargetTypeEnum,
};
use jockey_e2e::AlbController;

const TEST: &str = "aws_limits_moto::moto_refuses_what_aws_refuses";

/// What AWS answers a call: it accepts it, or refuses it with this error code.
#[derive(Clone, Copy)]
enum Want {
    Accepted,
    Refused(&'static str),
}
use Want::{Accepted, Refused};
const INVALID: Want = Refused("ValidationError");

struct Probe {
    elb: elbv2::Client,
    vpc: String,
    run: String,
    n: u32,
    /// Target groups made here, deleted at the end.
    tgs: Vec<String>,
    failures: Vec<String>,
    checked: usize,
}

impl Probe {
    fn name(&mut self) -> String {
        self.n += 1;
        format!("lim-{}-{}", self.run, self.n)
    }

    /// Compares moto's answer to AWS's; a mismatch is kept for the report.
    fn record<T, E>(&mut self, what: &str, want: Want, got: Result<T, E>) -> Option<T>
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        self.checked += 1;
        match (want, got) {
            (Accepted, Ok(v)) => Some(v),
            (Accepted, Err(e)) => {
                self.failures.push(format!(
                    "{what}: AWS accepts it, moto refused it: {}",
                    DisplayErrorContext(&e)
                ));
                None
            }
            (Refused(code), Ok(_)) => {
                self.failures.push(format!(
                    "{what}: AWS refuses it with {code}, moto accepted it"
                ));
                None
            }
            (Refused(code), Err(e)) if e.code() == Some(code) => None,
            (Refused(code), Err(e)) => {
                self.failures.push(format!(
                    "{what}: AWS refuses it with {code}, moto answered {}: {}",
                    e.code().unwrap_or("no code"),
                    DisplayErrorContext(&e)
                ));
                None
            }
        }
    }

    /// CreateTargetGroup of an ALB's IP target group (HTTP, port 8080) changed by `f`; its ARN
    /// when moto made it.
    async fn tg(
        &mut self,
        what: &str,
        want: Want,
        f: impl FnOnce(CreateTargetGroupFluentBuilder) -> CreateTargetGroupFluentBuilder,
    ) -> Option<String> {
        let name = self.name();
        let base = self
            .elb
            .create_target_group()
            .name(name)
            .protocol(ProtocolEnum::Http)
            .port(8080)
            .vpc_id(&self.vpc)
            .target_type(TargetTypeEnum::Ip);
        let got = f(base).send().await;
        let arn = got.as_ref().ok().and_then(|o| {
            o.target_groups()
                .first()
                .and_then(|t| t.target_group_arn())
                .map(str::to_string)
        });
        self.tgs.extend(arn.clone());
        self.record(&format!("CreateTargetGroup {what}"), want, got)
            .and(arn)
    }

    /// A target group every later call may use; an error ends the test (nothing else can run).
    async fn fixture(
        &mut self,
        what: &str,
        f: impl FnOnce(CreateTargetGroupFluentBuilder) -> CreateTargetGroupFluentBuilder,
    ) -> Result<String> {
        match self.tg(what, Accepted, f).await {
            Some(arn) => Ok(arn),
            None => bail!("{}", self.failures.join("\n")),
        }
    }

    async fn attrs(&mut self, tg: &str, what: &str, want: Want, pairs: &[(&str, &str)]) {
        let mut call = self
            .elb
            .modify_target_group_attributes()
            .target_group_arn(tg);
        for (k, v) in pairs {
            call = call.attributes(TargetGroupAttribute::builder().key(*k).value(*v).build());
        }
        let got = call.send().await;
        self.record(&format!("ModifyTargetGroupAttributes {what}"), want, got);
    }

    async fn rule(
        &mut self,
        listener: &str,
        priority: i32,
        conditions: Vec<RuleCondition>,
        tg: &str,
        what: &str,
        want: Want,
    ) -> Option<String> {
        let got = self
            .elb
            .create_rule()
            .listener_arn(listener)
            .priority(priority)
            .set_conditions(Some(conditions))
            .actions(forward(tg))
            .send()
            .await;
        let arn = got.as_ref().ok().and_then(|o| {
            o.rules()
                .first()
                .and_then(|r| r.rule_arn())
                .map(str::to_string)
        });
        self.record(&format!("CreateRule {what}"), want, got)
            .and(arn)
    }

    async fn tags(&mut self, arn: &str, what: &str, want: Want, tags: Vec<Tag>) {
        let got = self
            .elb
            .add_tags()
            .resource_arns(arn)
            .set_tags(Some(tags))
            .send()
            .await;
        self.record(&format!("AddTags {what}"), want, got);
    }
}

fn forward(tg: &str) -> Action {
    Action::builder()
        .r#type(ActionTypeEnum::Forward)
        .target_group_arn(tg)
        .build()
}

fn host(values: &[&str]) -> RuleCondition {
    RuleCondition::builder()
        .field("host-header")
        .host_header_config(
            HostHeaderConditionConfig::builder()
                .set_values(Some(values.iter().map(|v| v.to_string()).collect()))
                .build(),
        )
        .build()
}

fn path(values: &[&str]) -> RuleCondition {
    RuleCondition::builder()
        .field("path-pattern")
        .path_pattern_config(
            PathPatternConditionConfig::builder()
                .set_values(Some(values.iter().map(|v| v.to_string()).collect()))
                .build(),
        )
        .build()
}

fn header(name: &str, values: &[&str]) -> RuleCondition {
    RuleCondition::builder()
        .field("http-header")
        .http_header_config(
            HttpHeaderConditionConfig::builder()
                .http_header_name(name)
                .set_values(Some(values.iter().map(|v| v.to_string()).collect()))
                .build(),
        )
        .build()
}

fn tag(key: &str, value: &str) -> Tag {
    Tag::builder().key(key).value(value).build()
}

fn numbered_tags(prefix: &str, n: usize) -> Vec<Tag> {
    (0..n).map(|i| tag(&format!("{prefix}{i}"), "v")).collect()
}

fn http_codes(codes: &str) -> Matcher {
    Matcher::builder().http_code(codes).build()
}

fn grpc_codes(codes: &str) -> Matcher {
    Matcher::builder().grpc_code(codes).build()
}

#[tokio::test]
async fn moto_refuses_what_aws_refuses() -> Result<()> {
    let Some(ctl) = AlbController::require(TEST)? else {
        return Ok(());
    };
    if ctl.subnets.len() < 2 {
        bail!(
            "the cluster's moto has {} seeded subnets (alb-seed.py makes one per zone, two \
             zones); restart it with `tests/cluster/alb-controller.sh stop && \
             tests/cluster/alb-controller.sh start`",
            ctl.subnets.len()
        );
    }
    let sdk = jockey_e2e::aws::moto_sdk_config(&ctl.endpoint()).await;
    let mut p = Probe {
        elb: elbv2::Client::new(&sdk),
        vpc: ctl.vpc_id.clone(),
        run: format!("{}", std::process::id() % 100_000),
        n: 0,
        tgs: Vec::new(),
        failures: Vec::new(),
        checked: 0,
    };
    let lb_name = format!("lim-{}", p.run);
    let lb = p
        .elb
        .create_load_balancer()
        .name(&lb_name)
        .set_subnets(Some(ctl.subnets.clone()))
        .r#type(LoadBalancerTypeEnum::Application)
        .scheme(LoadBalancerSchemeEnum::Internal)
        .send()
        .await
        .map_err(|e| {
            anyhow::anyhow!("CreateLoadBalancer {lb_name}: {}", DisplayErrorContext(&e))
        })?;
    let lb_arn = lb
        .load_balancers()
        .first()
        .and_then(|l| l.load_balancer_arn())
        .unwrap_or_default()
        .to_string();
    let result = probe(&mut p, &ctl, &lb_arn).await;
    // Cleanup whatever happened: the load balancer takes its listeners and rules along.
    let _ = p
        .elb
        .delete_load_balancer()
        .load_balancer_arn(&lb_arn)
        .send()
        .await;
    for tg in std::mem::take(&mut p.tgs) {
        let _ = p
            .elb
            .delete_target_group()
            .target_group_arn(tg)
            .send()
            .await;
    }
    result?;
    if !p.failures.is_empty() {
        bail!(
            "{} of {} calls were answered otherwise than AWS answers them (see \
             tests/cluster/moto_aws_limits.py and moto's log, .cluster/alb-controller/moto.log):\n{}",
            p.failures.len(),
            p.checked,
            p.failures.join("\n")
        );
    }
    Ok(())
}

async fn probe(p: &mut Probe, ctl: &AlbController, lb: &str) -> Result<()> {
    health_checks(p).await;
    let (http1, http2, grpc) = (
        p.fixture("HTTP1", |b| b).await?,
        p.fixture("HTTP2", |b| b.protocol_version("HTTP2")).await?,
        p.fixture("GRPC", |b| b.protocol_version("GRPC")).await?,
    );
    modify_target_group(p, &http1, &grpc).await;
    attributes(p, &http1, &http2).await;
    rules(p, ctl, lb, &http1, &http2, &grpc).await?;
    tags(p, lb).await?;
    Ok(())
}

/// CreateTargetGroup's health check members (API_CreateTargetGroup.html, API_Matcher.html).
async fn health_checks(p: &mut Probe) {
    let long_path = format!("/{}", "a".repeat(1023));
    let too_long_path = format!("/{}", "a".repeat(1024));
    p.tg("interval 5 (timeout 2)", Accepted, |b| {
        b.health_check_interval_seconds(5)
            .health_check_timeout_seconds(2)
    })
    .await;
    p.tg("interval 4", INVALID, |b| {
        b.health_check_interval_seconds(4)
            .health_check_timeout_seconds(2)
    })
    .await;
    p.tg("interval 300, timeout 120", Accepted, |b| {
        b.health_check_interval_seconds(300)
            .health_check_timeout_seconds(120)
    })
    .await;
    p.tg("interval 301", INVALID, |b| {
        b.health_check_interval_seconds(301)
    })
    .await;
    p.tg("timeout 1", INVALID, |b| b.health_check_timeout_seconds(1))
        .await;
    p.tg("timeout 121", INVALID, |b| {
        b.health_check_interval_seconds(300)
            .health_check_timeout_seconds(121)
    })
    .await;
    p.tg("timeout 9 < interval 10", Accepted, |b| {
        b.health_check_interval_seconds(10)
            .health_check_timeout_seconds(9)
    })
    .await;
    p.tg("timeout 10 = interval 10", INVALID, |b| {
        b.health_check_interval_seconds(10)
            .health_check_timeout_seconds(10)
    })
    .await;
    for (what, n, want) in [("2", 2, Accepted), ("1", 1, INVALID)] {
        p.tg(&format!("healthy threshold {what}"), want, |b| {
            b.healthy_threshold_count(n)
        })
        .await;
        p.tg(&format!("unhealthy threshold {what}"), want, |b| {
            b.unhealthy_threshold_count(n)
        })
        .await;
    }
    for (what, n, want) in [("10", 10, Accepted), ("11", 11, INVALID)] {
        p.tg(&format!("healthy threshold {what}"), want, |b| {
            b.healthy_threshold_count(n)
        })
        .await;
        p.tg(&format!("unhealthy threshold {what}"), want, |b| {
            b.unhealthy_threshold_count(n)
        })
        .await;
    }
    p.tg("path of 1024 characters", Accepted, |b| {
        b.health_check_path(long_path)
    })
    .await;
    p.tg("path of 1025 characters", INVALID, |b| {
        b.health_check_path(too_long_path)
    })
    .await;
    p.tg("path without a leading '/'", INVALID, |b| {
        b.health_check_path("health")
    })
    .await;
    p.tg("GRPC path /package.service/method", Accepted, |b| {
        b.protocol_version("GRPC")
            .health_check_path("/grpc.health.v1.Health/Check")
    })
    .await;
    p.tg("GRPC path /health (no method)", INVALID, |b| {
        b.protocol_version("GRPC").health_check_path("/health")
    })
    .await;
    for (port, want) in [
        ("traffic-port", Accepted),
        ("1", Accepted),
        ("65535", Accepted),
        ("0", INVALID),
        ("65536", INVALID),
        ("http", INVALID),
    ] {
        p.tg(&format!("health check port {port}"), want, |b| {
            b.health_check_port(port)
        })
        .await;
    }
    p.tg("health check protocol HTTPS", Accepted, |b| {
        b.health_check_protocol(ProtocolEnum::Https)
    })
    .await;
    p.tg("health check protocol TCP", INVALID, |b| {
        b.health_check_protocol(ProtocolEnum::Tcp)
    })
    .await;
    for (codes, want) in [
        ("200", Accepted),
        ("200,202", Accepted),
        ("200-499", Accepted),
        ("199", INVALID),
        ("500", INVALID),
        ("200-500", INVALID),
        ("", INVALID),
        ("2xx", INVALID),
    ] {
        p.tg(&format!("HttpCode {codes:?}"), want, |b| {
            b.matcher(http_codes(codes))
        })
        .await;
    }
    for (codes, want) in [
        ("0", Accepted),
        ("0,1", Accepted),
        ("0-99", Accepted),
        ("100", INVALID),
        ("0-100", INVALID),
    ] {
        p.tg(&format!("GRPC GrpcCode {codes:?}"), want, |b| {
            b.protocol_version("GRPC").matcher(grpc_codes(codes))
        })
        .await;
    }
    p.tg("GRPC with an HttpCode", INVALID, |b| {
        b.protocol_version("GRPC").matcher(http_codes("200"))
    })
    .await;
    p.tg("HTTP1 with a GrpcCode", INVALID, |b| {
        b.matcher(grpc_codes("12"))
    })
    .await;
    p.tg("HTTP2 with a GrpcCode", INVALID, |b| {
        b.protocol_version("HTTP2").matcher(grpc_codes("12"))
    })
    .await;
    p.tg("protocol version HTTP3", INVALID, |b| {
        b.protocol_version("HTTP3")
    })
    .await;
}

/// ModifyTargetGroup (API_ModifyTargetGroup.html): the same members, against the target
/// group's current values.
async fn modify_target_group(p: &mut Probe, http1: &str, grpc: &str) {
    let cases: [(&str, Want, i32, i32); 3] = [
        ("interval 300", Accepted, 300, 0),
        ("interval 301", INVALID, 301, 0),
        // The target group's interval is now 300: timeout 120 fits; then interval 120 does not.
        ("timeout 120 below interval 300", Accepted, 0, 120),
    ];
    for (what, want, interval, timeout) in cases {
        let mut call = p.elb.modify_target_group().target_group_arn(http1);
        if interval > 0 {
            call = call.health_check_interval_seconds(interval);
        }
        if timeout > 0 {
            call = call.health_check_timeout_seconds(timeout);
        }
        let got = call.send().await;
        p.record(&format!("ModifyTargetGroup {what}"), want, got);
    }
    let got = p
        .elb
        .modify_target_group()
        .target_group_arn(http1)
        .health_check_interval_seconds(120)
        .send()
        .await;
    p.record(
        "ModifyTargetGroup interval 120 = the current timeout",
        INVALID,
        got,
    );
    let got = p
        .elb
        .modify_target_group()
        .target_group_arn(http1)
        .matcher(grpc_codes("0"))
        .send()
        .await;
    p.record("ModifyTargetGroup HTTP1 to a GrpcCode", INVALID, got);
    let got = p
        .elb
        .modify_target_group()
        .target_group_arn(grpc)
        .matcher(grpc_codes("0-99"))
        .send()
        .await;
    p.record("ModifyTargetGroup GRPC GrpcCode 0-99", Accepted, got);
    // moto used to drop a modified GrpcCode: the controller would see drift forever.
    let kept = p
        .elb
        .describe_target_groups()
        .target_group_arns(grpc)
        .send()
        .await
        .ok()
        .and_then(|o| {
            o.target_groups()
                .first()
                .and_then(|t| t.matcher())
                .and_then(|m| m.grpc_code())
                .map(str::to_string)
        });
    if kept.as_deref() != Some("0-99") {
        p.failures.push(format!(
            "ModifyTargetGroup GrpcCode 0-99: DescribeTargetGroups reports {kept:?}"
        ));
    }
}

/// ModifyTargetGroupAttributes on an ALB's IP target groups (API_TargetGroupAttribute.html).
async fn attributes(p: &mut Probe, http1: &str, http2: &str) {
    let single: &[(&str, &str, Want)] = &[
        ("deregistration_delay.timeout_seconds", "0", Accepted),
        ("deregistration_delay.timeout_seconds", "3600", Accepted),
        ("deregistration_delay.timeout_seconds", "3601", INVALID),
        ("deregistration_delay.timeout_seconds", "-1", INVALID),
        ("stickiness.enabled", "true", Accepted),
        ("stickiness.enabled", "yes", INVALID),
        ("stickiness.type", "lb_cookie", Accepted),
        ("stickiness.type", "source_ip_dest_ip", INVALID),
        ("stickiness.lb_cookie.duration_seconds", "1", Accepted),
        ("stickiness.lb_cookie.duration_seconds", "604800", Accepted),
        ("stickiness.lb_cookie.duration_seconds", "0", INVALID),
        ("stickiness.lb_cookie.duration_seconds", "604801", INVALID),
        ("stickiness.app_cookie.duration_seconds", "604800", Accepted),
        ("stickiness.app_cookie.duration_seconds", "604801", INVALID),
        ("stickiness.app_cookie.cookie_name", "session", Accepted),
        ("stickiness.app_cookie.cookie_name", "AWSALBAPP-1", INVALID),
        ("slow_start.duration_seconds", "30", Accepted),
        ("slow_start.duration_seconds", "900", Accepted),
        ("slow_start.duration_seconds", "0", Accepted),
        ("slow_start.duration_seconds", "29", INVALID),
        ("slow_start.duration_seconds", "901", INVALID),
        ("load_balancing.algorithm.type", "weighted_random", Accepted),
        ("load_balancing.algorithm.type", "random", INVALID),
        (
            "load_balancing.algorithm.anomaly_mitigation",
            "on",
            Accepted,
        ),
        (
            "load_balancing.algorithm.anomaly_mitigation",
            "yes",
            INVALID,
        ),
        (
            "load_balancing.cross_zone.enabled",
            "use_load_balancer_configuration",
            Accepted,
        ),
        ("load_balancing.cross_zone.enabled", "maybe", INVALID),
        (
            "target_group_health.dns_failover.minimum_healthy_targets.count",
            "off",
            Accepted,
        ),
        (
            "target_group_health.dns_failover.minimum_healthy_targets.count",
            "1",
            Accepted,
        ),
        (
            "target_group_health.dns_failover.minimum_healthy_targets.count",
            "0",
            INVALID,
        ),
        (
            "target_group_health.dns_failover.minimum_healthy_targets.percentage",
            "100",
            Accepted,
        ),
        (
            "target_group_health.dns_failover.minimum_healthy_targets.percentage",
            "101",
            INVALID,
        ),
        (
            "target_group_health.unhealthy_state_routing.minimum_healthy_targets.count",
            "1",
            Accepted,
        ),
        (
            "target_group_health.unhealthy_state_routing.minimum_healthy_targets.count",
            "off",
            INVALID,
        ),
        (
            "target_group_health.unhealthy_state_routing.minimum_healthy_targets.percentage",
            "off",
            Accepted,
        ),
        (
            "target_group_health.unhealthy_state_routing.minimum_healthy_targets.percentage",
            "0",
            INVALID,
        ),
        // Keys AWS does not know, or knows only for other kinds of load balancer or target.
        ("no_such.attribute", "true", INVALID),
        ("preserve_client_ip.enabled", "true", INVALID),
        ("proxy_protocol_v2.enabled", "true", INVALID),
        (
            "target_health_state.unhealthy.connection_termination.enabled",
            "false",
            INVALID,
        ),
        ("lambda.multi_value_headers.enabled", "true", INVALID),
        ("target_failover.on_deregistration", "rebalance", INVALID),
        // HTTP2-only attributes on an HTTP1 target group.
        (
            "waf.http2.traffic_inspection_behavior",
            "inspect_immediately",
            Refused("InvalidConfigurationRequest"),
        ),
        (
            "routing.http2.rst_stream_error_forwarding.enabled",
            "true",
            Refused("InvalidConfigurationRequest"),
        ),
    ];
    for &(key, value, want) in single {
        p.attrs(http1, &format!("{key}={value}"), want, &[(key, value)])
            .await;
    }
    // The algorithm is weighted_random now: back to round_robin with anomaly mitigation off.
    p.attrs(
        http1,
        "round_robin, anomaly mitigation off",
        Accepted,
        &[
            ("load_balancing.algorithm.type", "round_robin"),
            ("load_balancing.algorithm.anomaly_mitigation", "off"),
        ],
    )
    .await;
    p.attrs(
        http1,
        "anomaly mitigation on with round_robin",
        Refused("InvalidConfigurationRequest"),
        &[("load_balancing.algorithm.anomaly_mitigation", "on")],
    )
    .await;
    p.attrs(
        http1,
        "least_outstanding_requests with slow start 0",
        Accepted,
        &[
            ("slow_start.duration_seconds", "0"),
            (
                "load_balancing.algorithm.type",
                "least_outstanding_requests",
            ),
        ],
    )
    .await;
    p.attrs(
        http1,
        "slow start 30 with least_outstanding_requests",
        Refused("InvalidConfigurationRequest"),
        &[("slow_start.duration_seconds", "30")],
    )
    .await;
    // http1 has a cookie name by now; http2 has none.
    p.attrs(
        http2,
        "app_cookie stickiness without a cookie name",
        Refused("InvalidConfigurationRequest"),
        &[("stickiness.type", "app_cookie")],
    )
    .await;
    p.attrs(
        http2,
        "HTTP2 waf.http2.traffic_inspection_behavior",
        Accepted,
        &[(
            "waf.http2.traffic_inspection_behavior",
            "inspect_after_sufficient_data",
        )],
    )
    .await;
    p.attrs(
        http2,
        "HTTP2 waf.http2.traffic_inspection_behavior=later",
        INVALID,
        &[("waf.http2.traffic_inspection_behavior", "later")],
    )
    .await;
}

/// Listener rules (API_CreateRule.html, ALB rule-condition-types.html) and the protocol
/// versions an HTTP listener may forward to (ALB load-balancer-target-groups.html).
async fn rules(
    p: &mut Probe,
    ctl: &AlbController,
    lb: &str,
    http1: &str,
    http2: &str,
    grpc: &str,
) -> Result<()> {
    let mut listeners = Vec::new();
    for (protocol, port) in [(ProtocolEnum::Https, 443), (ProtocolEnum::Http, 80)] {
        let mut call = p
            .elb
            .create_listener()
            .load_balancer_arn(lb)
            .protocol(protocol.clone())
            .port(port)
            .default_actions(
                Action::builder()
                    .r#type(ActionTypeEnum::FixedResponse)
                    .fixed_response_config(
                        FixedResponseActionConfig::builder()
                            .status_code("404")
                            .build(),
                    )
                    .build(),
            );
        if protocol == ProtocolEnum::Https {
            call = call.certificates(
                Certificate::builder()
                    .certificate_arn(&ctl.certificate_arn)
                    .build(),
            );
        }
        let out = call
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("CreateListener {port}: {}", DisplayErrorContext(&e)))?;
        listeners.push(
            out.listeners()
                .first()
                .and_then(|l| l.listener_arn())
                .unwrap_or_default()
                .to_string(),
        );
    }
    let (https, http) = (listeners[0].as_str(), listeners[1].as_str());
    let a = "a.example.com";
    let host_128 = format!("{}.example.com", "a".repeat(128 - 12));
    let host_129 = format!("{}.example.com", "a".repeat(129 - 12));
    let path_128 = format!("/{}", "p".repeat(127));
    let path_129 = format!("/{}", "p".repeat(128));
    let name_40 = format!("X-{}", "h".repeat(38));
    let name_41 = format!("X-{}", "h".repeat(39));
    let mut prio = 100;
    let mut next = || {
        prio += 1;
        prio
    };

    p.rule(https, 1, vec![host(&[a])], http1, "priority 1", Accepted)
        .await;
    p.rule(https, 0, vec![host(&[a])], http1, "priority 0", INVALID)
        .await;
    let last = p
        .rule(
            https,
            50000,
            vec![host(&[a])],
            http1,
            "priority 50000",
            Accepted,
        )
        .await;
    p.rule(
        https,
        50001,
        vec![host(&[a])],
        http1,
        "priority 50001",
        INVALID,
    )
    .await;
    let cases: Vec<(&str, Vec<RuleCondition>, Want)> = vec![
        (
            "5 condition values (host 1, path 3, header 1)",
            vec![host(&[a]), path(&["/a", "/b", "/c"]), header("X-A", &["1"])],
            Accepted,
        ),
        (
            "6 condition values (host 2, path 3, header 1)",
            vec![
                host(&[a, "b.example.com"]),
                path(&["/a", "/b", "/c"]),
                header("X-A", &["1"]),
            ],
            INVALID,
        ),
        (
            "3 values in one condition",
            vec![host(&[a]), path(&["/a", "/b", "/c"])],
            Accepted,
        ),
        (
            "4 values in one condition",
            vec![path(&["/a", "/b", "/c", "/d"])],
            INVALID,
        ),
        (
            "two host-header conditions",
            vec![host(&[a]), host(&["b.example.com"])],
            INVALID,
        ),
        (
            "two path-pattern conditions",
            vec![path(&["/a"]), path(&["/b"])],
            INVALID,
        ),
        ("host of 128 characters", vec![host(&[&host_128])], Accepted),
        ("host of 129 characters", vec![host(&[&host_129])], INVALID),
        (
            "host *.example.com and ?.example.org",
            vec![host(&["*.example.com", "?.example.org"])],
            Accepted,
        ),
        ("host with '_'", vec![host(&["a_b.example.com"])], INVALID),
        ("host without '.'", vec![host(&["localhost"])], INVALID),
        (
            "host with a digit after the last '.'",
            vec![host(&["example.c0m"])],
            INVALID,
        ),
        ("host ''", vec![host(&[""])], INVALID),
        ("path of 128 characters", vec![path(&[&path_128])], Accepted),
        ("path of 129 characters", vec![path(&[&path_129])], INVALID),
        (
            "path of every allowed character",
            vec![path(&["/aZ09_-.$/~\"'@:+&*?"])],
            Accepted,
        ),
        ("path with '%'", vec![path(&["/a%20b"])], INVALID),
        ("path with ' '", vec![path(&["/a b"])], INVALID),
        (
            "5 wildcards",
            vec![host(&["*.example.com"]), path(&["/*/*/??"])],
            Accepted,
        ),
        (
            "6 wildcards",
            vec![host(&["*.example.com"]), path(&["/*/*/???"])],
            INVALID,
        ),
        (
            "http-header of a 40-character name",
            vec![header(&name_40, &["1"])],
            Accepted,
        ),
        (
            "http-header of a 41-character name",
            vec![header(&name_41, &["1"])],
            INVALID,
        ),
        ("http-header Host", vec![header("Host", &[a])], INVALID),
        ("http-header host", vec![header("host", &[a])], INVALID),
        (
            "http-header name with ':'",
            vec![header("X:A", &["1"])],
            INVALID,
        ),
        (
            "http-header value of 128 characters",
            vec![header("X-A", &[&"v".repeat(128)])],
            Accepted,
        ),
        (
            "http-header value of 129 characters",
            vec![header("X-A", &[&"v".repeat(129)])],
            INVALID,
        ),
    ];
    for (what, conditions, want) in cases {
        let priority = next();
        p.rule(https, priority, conditions, http1, what, want).await;
    }
    // Forwarding by protocol version: an HTTPS listener to any, an HTTP listener only to HTTP1.
    for (listener, lname, tg, version, want) in [
        (https, "HTTPS", http2, "HTTP2", Accepted),
        (https, "HTTPS", grpc, "GRPC", Accepted),
        (http, "HTTP", http1, "HTTP1", Accepted),
        (
            http,
            "HTTP",
            http2,
            "HTTP2",
            Refused("InvalidLoadBalancerAction"),
        ),
        (
            http,
            "HTTP",
            grpc,
            "GRPC",
            Refused("InvalidLoadBalancerAction"),
        ),
    ] {
        let priority = next();
        p.rule(
            listener,
            priority,
            vec![host(&[a])],
            tg,
            &format!("{lname} listener forwarding to {version}"),
            want,
        )
        .await;
    }
    let on_http = p
        .rule(
            http,
            next(),
            vec![host(&[a])],
            http1,
            "HTTP to HTTP1, to modify",
            Accepted,
        )
        .await;
    if let Some(rule) = on_http {
        for (tg, version, want) in [
            (grpc, "GRPC", Refused("InvalidLoadBalancerAction")),
            (http1, "HTTP1", Accepted),
        ] {
            let got = p
                .elb
                .modify_rule()
                .rule_arn(&rule)
                .actions(forward(tg))
                .send()
                .await;
            p.record(&format!("ModifyRule HTTP listener to {version}"), want, got);
        }
        let got = p
            .elb
            .modify_rule()
            .rule_arn(&rule)
            .conditions(header("Host", &[a]))
            .send()
            .await;
        p.record("ModifyRule to an http-header Host condition", INVALID, got);
    }
    for (tg, version, want) in [
        (http2, "HTTP2", Refused("InvalidLoadBalancerAction")),
        (http1, "HTTP1", Accepted),
    ] {
        let got = p
            .elb
            .modify_listener()
            .listener_arn(http)
            .default_actions(forward(tg))
            .send()
            .await;
        p.record(
            &format!("ModifyListener HTTP default action to {version}"),
            want,
            got,
        );
    }
    if let Some(rule) = last {
        for (priority, want) in [(50001, INVALID), (49999, Accepted)] {
            let got = p
                .elb
                .set_rule_priorities()
                .rule_priorities(
                    RulePriorityPair::builder()
                        .rule_arn(&rule)
                        .priority(priority)
                        .build(),
                )
                .send()
                .await;
            p.record(&format!("SetRulePriorities {priority}"), want, got);
        }
    }
    Ok(())
}

/// Tags on target groups and load balancers (API_Tag.html, API_AddTags.html, ALB
/// target-group-tags.html).
async fn tags(p: &mut Probe, lb: &str) -> Result<()> {
    p.tg("with 50 tags", Accepted, |b| {
        b.set_tags(Some(numbered_tags("k", 50)))
    })
    .await;
    p.tg("with 51 tags", Refused("TooManyTags"), |b| {
        b.set_tags(Some(numbered_tags("k", 51)))
    })
    .await;
    let tg = p.fixture("for tags", |b| b.tags(tag("first", "1"))).await?;
    p.tags(&tg, "9 more (10 in all)", Accepted, numbered_tags("k", 9))
        .await;
    // moto used to refuse a tag past the 10th.
    p.tags(&tg, "an 11th", Accepted, numbered_tags("eleventh", 1))
        .await;
    p.tags(&tg, "39 more (50 in all)", Accepted, numbered_tags("m", 39))
        .await;
    p.tags(
        &tg,
        "a 51st",
        Refused("TooManyTags"),
        vec![tag("one-more", "")],
    )
    .await;
    p.tags(
        &tg,
        "a new value for a key it has",
        Accepted,
        vec![tag("k0", "new")],
    )
    .await;
    let tg = p.fixture("for tag texts", |b| b).await?;
    let cases: Vec<(&str, Tag, Want)> = vec![
        (
            "key of 128 characters",
            tag(&"k".repeat(128), "v"),
            Accepted,
        ),
        ("key of 129 characters", tag(&"k".repeat(129), "v"), INVALID),
        ("empty key", tag("", "v"), INVALID),
        (
            "value of 256 characters",
            tag("long", &"v".repeat(256)),
            Accepted,
        ),
        (
            "value of 257 characters",
            tag("long", &"v".repeat(257)),
            INVALID,
        ),
        ("empty value", tag("empty", ""), Accepted),
        (
            "key of letters, numbers, spaces and _.:/=+-@",
            tag("Ключ 1_.:/=+-@", "v"),
            Accepted,
        ),
        ("key with '#'", tag("a#b", "v"), INVALID),
        ("value with '*'", tag("star", "a*b"), INVALID),
        (
            "key with the reserved prefix aws:",
            tag("aws:owner", "v"),
            INVALID,
        ),
        (
            "key with the reserved prefix AWS:",
            tag("AWS:owner", "v"),
            INVALID,
        ),
    ];
    for (what, t, want) in cases {
        p.tags(&tg, what, want, vec![t]).await;
    }
    p.tags(
        &tg,
        "the same key twice",
        Refused("DuplicateTagKeys"),
        vec![tag("twice", "1"), tag("twice", "2")],
    )
    .await;
    p.tags(
        lb,
        "load balancer, 50 tags",
        Accepted,
        numbered_tags("k", 50),
    )
    .await;
    p.tags(
        lb,
        "load balancer, a 51st",
        Refused("TooManyTags"),
        vec![tag("one-more", "v")],
    )
    .await;
    Ok(())
}
