//! `validate-alb-routing` and `alb-status` against a load balancer in a local moto server (the
//! ELBv2 API through the AWS SDK, endpoint from `AWS_ENDPOINT_URL`) and Ingresses on the local
//! control plane, with DNS answered by a tiny test server.
//!
//! moto reports a registered IP target as `healthy` and an instance target whose EC2 instance
//! is stopped as `unused` (`Target.InvalidState`): the test builds its broken target group that
//! way, since moto runs no health checks.

mod alb_support;

use alb_support::{
    DnsServer, Moto, Rec, controller_pod, jockey, json_stdout, run_id, text, xml_value,
};
use anyhow::{Context, Result};
use aws_sdk_elasticloadbalancingv2 as elbv2;
use elbv2::types::{
    Action, ActionTypeEnum, Certificate, FixedResponseActionConfig, HostHeaderConditionConfig,
    LoadBalancerSchemeEnum, LoadBalancerTypeEnum, ProtocolEnum, RedirectActionConfig,
    RedirectActionStatusCodeEnum, RuleCondition, Tag, TargetDescription, TargetTypeEnum,
};
use jockey_e2e::{TestNamespace, client};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;
use std::collections::BTreeMap;

async fn forward_rule(
    elb: &elbv2::Client,
    listener: &str,
    priority: i32,
    host: &str,
    tg: &str,
) -> Result<()> {
    elb.create_rule()
        .listener_arn(listener)
        .priority(priority)
        .conditions(
            RuleCondition::builder()
                .field("host-header")
                .host_header_config(HostHeaderConditionConfig::builder().values(host).build())
                .build(),
        )
        .actions(
            Action::builder()
                .r#type(ActionTypeEnum::Forward)
                .target_group_arn(tg)
                .build(),
        )
        .send()
        .await?;
    Ok(())
}

async fn target_group(
    elb: &elbv2::Client,
    name: &str,
    vpc: &str,
    kind: TargetTypeEnum,
) -> Result<String> {
    let out = elb
        .create_target_group()
        .name(name)
        .protocol(ProtocolEnum::Http)
        .port(8080)
        .vpc_id(vpc)
        .target_type(kind)
        .health_check_path("/health")
        .send()
        .await?;
    Ok(out.target_groups()[0]
        .target_group_arn()
        .unwrap_or_default()
        .to_string())
}

async fn register(elb: &elbv2::Client, tg: &str, id: &str) -> Result<()> {
    elb.register_targets()
        .target_group_arn(tg)
        .targets(TargetDescription::builder().id(id).port(8080).build())
        .send()
        .await?;
    Ok(())
}

/// A project on the cluster: Service 80 -> 8080 with a ready endpoint, and its Ingress in
/// `group` with the ALB's address in its status.
async fn project(
    client: &Client,
    ns: &str,
    p: &str,
    host: &str,
    group: &str,
    alb: &str,
    ip: &str,
) -> Result<()> {
    let (svc, slice) = alb_support::service_and_slice(&format!("svc-{p}"), &[ip]);
    Api::<Service>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &serde_json::from_value(svc)?)
        .await?;
    Api::<EndpointSlice>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &serde_json::from_value(slice)?)
        .await?;
    let ingresses: Api<Ingress> = Api::namespaced(client.clone(), ns);
    let ing = alb_support::ingress(&format!("ing-{p}"), host, &format!("svc-{p}"), group);
    ingresses
        .create(&PostParams::default(), &serde_json::from_value(ing)?)
        .await?;
    ingresses
        .patch_status(
            &format!("ing-{p}"),
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"loadBalancer": {"ingress": [{"hostname": alb}]}}})),
        )
        .await?;
    Ok(())
}

fn line<'a>(stdout: &'a str, check: &str) -> &'a str {
    stdout
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some(check))
        .unwrap_or_default()
}

#[tokio::test]
async fn validate_and_status_read_the_alb_from_moto() -> Result<()> {
    let moto = Moto::start()?;
    let env_owned = moto.env();
    let client = client().await?;
    let ns = TestNamespace::create(&client, "alb-moto").await?;
    let run = run_id();
    let base = format!("e2e-alb-moto-{run}");
    let host = |p: &str| format!("{p}-{run}.moto.example.test");

    // EC2 prerequisites moto checks: a VPC, two subnets, and an instance (stopped below).
    let vpc = xml_value(
        &moto.ec2(&[("Action", "CreateVpc"), ("CidrBlock", "10.0.0.0/16")])?,
        "vpcId",
    )?;
    let mut subnets = Vec::new();
    for (cidr, az) in [("10.0.1.0/24", "us-east-1a"), ("10.0.2.0/24", "us-east-1b")] {
        let out = moto.ec2(&[
            ("Action", "CreateSubnet"),
            ("VpcId", &vpc),
            ("CidrBlock", cidr),
            ("AvailabilityZone", az),
        ])?;
        subnets.push(xml_value(&out, "subnetId")?);
    }
    let instance = xml_value(
        &moto.ec2(&[
            ("Action", "RunInstances"),
            ("ImageId", "ami-12345678"),
            ("MinCount", "1"),
            ("MaxCount", "1"),
            ("SubnetId", &subnets[0]),
        ])?,
        "instanceId",
    )?;

    // The shared ALB as the controller would have made it.
    let elb = elbv2::Client::new(&moto.sdk_config().await);
    let lb = elb
        .create_load_balancer()
        .name(format!("k8s-e2emoto-{run}"))
        .set_subnets(Some(subnets.clone()))
        .scheme(LoadBalancerSchemeEnum::InternetFacing)
        .r#type(LoadBalancerTypeEnum::Application)
        .tags(
            Tag::builder()
                .key("ingress.k8s.aws/stack")
                .value(&base)
                .build(),
        )
        .send()
        .await?;
    let lb = &lb.load_balancers()[0];
    let lb_arn = lb.load_balancer_arn().unwrap_or_default().to_string();
    let alb = lb.dns_name().unwrap_or_default().to_string();
    let tg_p1 = target_group(&elb, &format!("k8s-p1-{run}"), &vpc, TargetTypeEnum::Ip).await?;
    register(&elb, &tg_p1, "10.0.1.10").await?;
    let tg_p2 = target_group(
        &elb,
        &format!("k8s-p2-{run}"),
        &vpc,
        TargetTypeEnum::Instance,
    )
    .await?;
    register(&elb, &tg_p2, &instance).await?;
    // Registered while running (ELBv2 refuses stopped instances), then stopped: what a node
    // that went away looks like.
    moto.ec2(&[("Action", "StopInstances"), ("InstanceId.1", &instance)])?;
    let tg_p3 = target_group(&elb, &format!("k8s-p3-{run}"), &vpc, TargetTypeEnum::Ip).await?;
    register(&elb, &tg_p3, "10.0.1.30").await?;
    // As jockey's Ingress defaults make it (listen-ports HTTP 80 + HTTPS 443, ssl-redirect):
    // HTTP only redirects; the host rules are on HTTPS, whose certificate comes from ACM.
    let cert = moto.json_call(
        "acm",
        "CertificateManager.RequestCertificate",
        &json!({"DomainName": format!("*.{run}.moto.example.test")}),
    )?;
    let cert_arn = cert["CertificateArn"]
        .as_str()
        .context("ACM returned no CertificateArn")?
        .to_string();
    elb.create_listener()
        .load_balancer_arn(&lb_arn)
        .protocol(ProtocolEnum::Http)
        .port(80)
        .default_actions(
            Action::builder()
                .r#type(ActionTypeEnum::Redirect)
                .redirect_config(
                    RedirectActionConfig::builder()
                        .protocol("HTTPS")
                        .port("443")
                        .status_code(RedirectActionStatusCodeEnum::Http301)
                        .build(),
                )
                .build(),
        )
        .send()
        .await?;
    let listener = elb
        .create_listener()
        .load_balancer_arn(&lb_arn)
        .protocol(ProtocolEnum::Https)
        .port(443)
        .certificates(Certificate::builder().certificate_arn(&cert_arn).build())
        .default_actions(
            Action::builder()
                .r#type(ActionTypeEnum::FixedResponse)
                .fixed_response_config(
                    FixedResponseActionConfig::builder()
                        .status_code("404")
                        .content_type("text/plain")
                        .build(),
                )
                .build(),
        )
        .send()
        .await?;
    let listener = listener.listeners()[0]
        .listener_arn()
        .unwrap_or_default()
        .to_string();
    forward_rule(&elb, &listener, 1, &host("p1"), &tg_p1).await?;
    forward_rule(&elb, &listener, 2, &host("p2"), &tg_p2).await?;
    // p3 gets no rule (yet).

    // DNS: every host is a CNAME for the ALB, which has an address.
    let mut records = BTreeMap::new();
    for p in ["p1", "p2", "p3"] {
        records.insert(host(p), Rec::Cname(alb.clone()));
    }
    records.insert(alb.to_ascii_lowercase(), Rec::A("192.0.2.10".parse()?));
    let dns = DnsServer::start(records)?;
    let nameserver = dns.addr.to_string();

    let selector = controller_pod(&client, &ns.name, &base).await?;
    project(
        &client,
        &ns.name,
        "p1",
        &host("p1"),
        &base,
        &alb,
        "10.0.1.10",
    )
    .await?;

    let env: Vec<(&str, &str)> = env_owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let validate = |h: String| {
        let env = env.clone();
        let nameserver = nameserver.clone();
        let base = base.clone();
        move || {
            jockey(
                &[
                    "validate-alb-routing",
                    &h,
                    "--alb-group",
                    &base,
                    "--nameserver",
                    &nameserver,
                ],
                &env,
            )
        }
    };
    let status_args = [
        "alb-status",
        "-o",
        "json",
        "--alb-group",
        &base,
        "--controller-selector",
        &selector,
    ];

    // 1. The correct host passes every check, AWS ones included.
    let out = validate(host("p1"))()?;
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    for check in [
        "ingress",
        "address",
        "group-settings",
        "service",
        "endpoints",
        "load-balancer",
        "listener-rule",
        "target-health",
        "targets-are-endpoints",
        "dns",
    ] {
        assert!(
            line(&stdout, check).starts_with("PASS"),
            "{check}:\n{stdout}"
        );
    }
    assert!(
        line(&stdout, "listener-rule").contains("HTTPS:443 rule priority 1"),
        "{stdout}"
    );
    assert!(
        line(&stdout, "target-health").contains("1/1 healthy"),
        "{stdout}"
    );
    assert!(
        line(&stdout, "dns").contains(&alb.to_ascii_lowercase()),
        "{stdout}"
    );
    // The same checks as JSON, for scripts.
    let out = jockey(
        &[
            "validate-alb-routing",
            &host("p1"),
            "--alb-group",
            &base,
            "--nameserver",
            &nameserver,
            "-o",
            "json",
        ],
        &env,
    )?;
    assert!(out.status.success(), "{}", text(&out));
    let checks = json_stdout(&out)?;
    let checks = checks.as_array().expect("an array of checks");
    assert_eq!(checks.len(), 10, "{checks:#?}");
    assert!(checks.iter().all(|c| c["outcome"] == "pass"), "{checks:#?}");
    assert_eq!(checks[6]["name"], "listener-rule");

    // alb-status reads the same ALB back and finds nothing wrong with the group.
    let out = jockey(&status_args, &env)?;
    assert!(out.status.success(), "{}", text(&out));
    let s = json_stdout(&out)?;
    let g = &s["groups"][0];
    assert_eq!(g["load_balancer"]["dns_name"], alb.as_str(), "{s:#}");
    assert_eq!(g["load_balancer"]["state"], "active");
    assert_eq!(
        g["load_balancer"]["listeners"],
        json!(["HTTP:80", "HTTPS:443"])
    );
    assert_eq!(g["target_groups"]["source"], "ELBv2");
    assert_eq!(g["rules"]["used"], 2);
    let routes = g["load_balancer"]["routes"].as_array().unwrap();
    let p1 = routes
        .iter()
        .find(|r| r["host"] == host("p1").as_str())
        .unwrap();
    assert_eq!(
        (p1["healthy"].as_u64(), p1["targets"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(s["aws"], "read");

    // 2. Target health wrong: p2's only target is a stopped instance.
    project(
        &client,
        &ns.name,
        "p2",
        &host("p2"),
        &base,
        &alb,
        "10.0.1.20",
    )
    .await?;
    let out = validate(host("p2"))()?;
    assert!(!out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        line(&stdout, "listener-rule").starts_with("PASS"),
        "{stdout}"
    );
    let th = line(&stdout, "target-health");
    assert!(
        th.starts_with("FAIL") && th.contains("unused") && th.contains("Target.InvalidState"),
        "{stdout}"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("target-health"),
        "{}",
        text(&out)
    );

    // 3. Rule missing: nothing on the listener matches p3.
    project(
        &client,
        &ns.name,
        "p3",
        &host("p3"),
        &base,
        &alb,
        "10.0.1.30",
    )
    .await?;
    let out = validate(host("p3"))()?;
    assert!(!out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let lr = line(&stdout, "listener-rule");
    assert!(
        lr.starts_with("FAIL") && lr.contains("no listener rule") && lr.contains(&host("p3")),
        "{stdout}"
    );
    assert!(
        line(&stdout, "target-health").starts_with("SKIP"),
        "{stdout}"
    );

    // alb-status now fails, naming both broken hosts and what is wrong with each.
    let out = jockey(&status_args, &env)?;
    assert!(!out.status.success(), "{}", text(&out));
    let problems = json_stdout(&out)?["problems"].to_string();
    assert!(
        problems.contains(&host("p2")) && problems.contains("no healthy target"),
        "{problems}"
    );
    assert!(
        problems.contains(&host("p3")) && problems.contains("no listener rule"),
        "{problems}"
    );
    assert!(!problems.contains(&host("p1")), "{problems}");

    // 4. Once the rule exists, p3 passes.
    forward_rule(&elb, &listener, 3, &host("p3"), &tg_p3).await?;
    let out = validate(host("p3"))()?;
    assert!(out.status.success(), "{}", text(&out));

    // A host nobody serves fails at the first check.
    let out = validate(host("nobody"))()?;
    assert!(!out.status.success());
    assert!(line(&String::from_utf8_lossy(&out.stdout), "ingress").starts_with("FAIL"));

    ns.cleanup().await?;
    Ok(())
}
