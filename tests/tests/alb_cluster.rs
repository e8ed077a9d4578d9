//! `list-alb-ingresses` and `alb-status` on the local control plane: Ingresses in several
//! namespaces are all listed, and the controller's failure events are surfaced. Each test uses
//! its own ALB group name so that Ingresses of other tests never show up in its counts.

mod alb_support;

use alb_support::{controller_pod, jockey, json_stdout, run_id, text};
use anyhow::Result;
use jockey_e2e::{TestNamespace, client};
use k8s_openapi::api::core::v1::Event;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;

async fn create_ingress(
    client: &Client,
    ns: &str,
    name: &str,
    host: &str,
    group: &str,
) -> Result<()> {
    let ing: Ingress = serde_json::from_value(alb_support::ingress(name, host, "svc-x", group))?;
    Api::<Ingress>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &ing)
        .await?;
    Ok(())
}

/// What the AWS Load Balancer Controller writes once it has reconciled an Ingress.
async fn set_address(client: &Client, ns: &str, name: &str, alb: &str) -> Result<()> {
    Api::<Ingress>::namespaced(client.clone(), ns)
        .patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"loadBalancer": {"ingress": [{"hostname": alb}]}}})),
        )
        .await?;
    Ok(())
}

async fn ingress_event(
    client: &Client,
    ns: &str,
    ingress: &str,
    reason: &str,
    message: &str,
    ago_secs: i64, // negative: that many seconds from now
) -> Result<()> {
    let at = k8s_openapi::jiff::Timestamp::now()
        .checked_sub(k8s_openapi::jiff::SignedDuration::from_secs(ago_secs))?
        .to_string();
    let ev: Event = serde_json::from_value(json!({
        "metadata": {"name": format!("{ingress}.{}", reason.to_ascii_lowercase())},
        "involvedObject": {"kind": "Ingress", "apiVersion": "networking.k8s.io/v1",
                           "namespace": ns, "name": ingress},
        "reason": reason,
        "message": message,
        "type": if reason.starts_with("Failed") { "Warning" } else { "Normal" },
        "source": {"component": "ingress"},
        "firstTimestamp": at, "lastTimestamp": at, "count": 1,
    }))?;
    Api::<Event>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &ev)
        .await?;
    Ok(())
}

#[tokio::test]
async fn list_and_status_cover_every_namespace() -> Result<()> {
    let client = client().await?;
    let base = format!("e2e-alb-list-{}", run_id());
    let shard2 = format!("{base}-2");
    let alb1 = "k8s-e2ealb-1111111111.us-east-1.elb.amazonaws.com";
    let alb2 = "k8s-e2ealb2-2222222222.us-east-1.elb.amazonaws.com";
    let a = TestNamespace::create(&client, "alb-a").await?;
    let b = TestNamespace::create(&client, "alb-b").await?;
    let c = TestNamespace::create(&client, "alb-c").await?;
    let domain = "e2e.example.test";
    let host = |p: &str| format!("{p}-{}.{domain}", run_id());

    create_ingress(&client, &a.name, "ing-a1", &host("a1"), &base).await?;
    create_ingress(&client, &a.name, "ing-a2", &host("a2"), &base).await?;
    create_ingress(&client, &b.name, "ing-b1", &host("b1"), &shard2).await?;
    create_ingress(&client, &c.name, "ing-c1", &host("c1"), &base).await?;
    // Another team's private group: not jockey's, not listed.
    create_ingress(
        &client,
        &c.name,
        "ing-private",
        &host("private"),
        "private-group",
    )
    .await?;
    set_address(&client, &a.name, "ing-a1", alb1).await?;
    set_address(&client, &a.name, "ing-a2", alb1).await?;
    set_address(&client, &b.name, "ing-b1", alb2).await?;
    let selector = controller_pod(&client, &a.name, &base).await?;
    let flags = ["--alb-group", &base, "--deployment-domain", domain];

    // -A lists all four, across the three namespaces.
    let out = jockey(
        &[&["list-alb-ingresses", "-A", "-o", "json"][..], &flags].concat(),
        &[],
    )?;
    assert!(out.status.success(), "{}", text(&out));
    let rows = json_stdout(&out)?;
    let mut seen: Vec<String> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{}/{}",
                r["namespace"].as_str().unwrap(),
                r["name"].as_str().unwrap()
            )
        })
        .collect();
    seen.sort();
    let mut want = vec![
        format!("{}/ing-a1", a.name),
        format!("{}/ing-a2", a.name),
        format!("{}/ing-b1", b.name),
        format!("{}/ing-c1", c.name),
    ];
    want.sort();
    assert_eq!(seen, want, "{}", text(&out));
    let row = |n: &str| {
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == n)
            .unwrap()
            .clone()
    };
    assert_eq!(row("ing-a1")["address"], alb1);
    assert_eq!(row("ing-a1")["ready"], true);
    assert_eq!(row("ing-b1")["group"], shard2.as_str());
    assert_eq!(row("ing-c1")["ready"], false);

    // -n lists one namespace; the table has the columns the issue names.
    let out = jockey(
        &[&["list-alb-ingresses", "-n", &a.name][..], &flags].concat(),
        &[],
    )?;
    assert!(out.status.success(), "{}", text(&out));
    let table = String::from_utf8_lossy(&out.stdout);
    for col in [
        "NAMESPACE",
        "NAME",
        "PROJECT",
        "HOST",
        "GROUP",
        "ADDRESS",
        "READY",
    ] {
        assert!(table.contains(col), "{table}");
    }
    assert!(
        table.contains("ing-a1") && table.contains("ing-a2") && !table.contains("ing-b1"),
        "{table}"
    );

    // alb-status: both shards, every namespace; ing-c1 without an address is a problem.
    let status_args = [
        &[
            "alb-status",
            "--no-aws",
            "-o",
            "json",
            "--controller-selector",
            &selector,
        ][..],
        &flags,
    ]
    .concat();
    let out = jockey(&status_args, &[])?;
    assert!(
        !out.status.success(),
        "an Ingress without address must fail: {}",
        text(&out)
    );
    let s = json_stdout(&out)?;
    let groups = s["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 2, "{s:#}");
    assert_eq!(groups[0]["group"], base.as_str());
    assert_eq!(groups[0]["ingresses"], 3);
    assert_eq!(groups[0]["with_address"], 2);
    assert_eq!(groups[0]["alb_dns_names"], json!([alb1]));
    assert_eq!(groups[1]["group"], shard2.as_str());
    assert_eq!(groups[1]["shard"], 2);
    assert_eq!(groups[1]["alb_dns_names"], json!([alb2]));
    assert_eq!(s["namespaces"][&a.name], 2);
    assert_eq!(s["namespaces"][&b.name], 1);
    assert_eq!(s["namespaces"][&c.name], 1);
    assert_eq!(s["controller_pods"][0]["ready"], true, "{s:#}");
    let problems = s["problems"].to_string();
    assert!(
        problems.contains(&format!("{}/ing-c1", c.name)),
        "{problems}"
    );
    assert_eq!(s["problems"].as_array().unwrap().len(), 1, "{problems}");
    // The DNS records the operator needs: the wildcard for shard 1, the host for shard 2.
    assert_eq!(s["dns_records"][0]["name"], format!("*.{domain}"));
    assert_eq!(s["dns_records"][0]["value"], alb1);
    assert_eq!(s["dns_records"][1]["name"], host("b1"));
    assert_eq!(s["dns_records"][1]["value"], alb2);

    // Once the controller reconciled ing-c1, the whole picture is clean.
    set_address(&client, &c.name, "ing-c1", alb1).await?;
    let table_args = [
        &["alb-status", "--no-aws", "--controller-selector", &selector][..],
        &flags,
    ]
    .concat();
    let out = jockey(&table_args, &[])?;
    assert!(out.status.success(), "{}", text(&out));
    let table = String::from_utf8_lossy(&out.stdout);
    for needle in [
        &base, &shard2, &a.name, &b.name, &c.name, alb1, alb2, "PROBLEMS",
    ] {
        assert!(table.contains(needle), "{needle} missing in\n{table}");
    }

    for ns in [a, b, c] {
        ns.cleanup().await?;
    }
    Ok(())
}

#[tokio::test]
async fn status_surfaces_a_controller_failure_event() -> Result<()> {
    let client = client().await?;
    let base = format!("e2e-alb-events-{}", run_id());
    let ns = TestNamespace::create(&client, "alb-events").await?;
    let alb = "k8s-e2eevents-3333333333.us-east-1.elb.amazonaws.com";
    let host = format!("bad-{}.e2e.example.test", run_id());
    create_ingress(&client, &ns.name, "ing-bad", &host, &base).await?;
    create_ingress(
        &client,
        &ns.name,
        "ing-good",
        &format!("good-{host}"),
        &base,
    )
    .await?;
    set_address(&client, &ns.name, "ing-bad", alb).await?;
    set_address(&client, &ns.name, "ing-good", alb).await?;
    let selector = controller_pod(&client, &ns.name, &base).await?;
    let message = format!(
        "Failed build model due to ingress: {}/ing-bad: conflicting scheme internal: internet-facing",
        ns.name
    );
    // Now: a failure from before the members existed would not be current (it predates the
    // group's last change); the success below is dated after it (the same second clears nothing).
    ingress_event(
        &client,
        &ns.name,
        "ing-bad",
        "FailedBuildModel",
        &message,
        0,
    )
    .await?;

    let args = [
        "alb-status",
        "--no-aws",
        "--alb-group",
        &base,
        "--controller-selector",
        &selector,
    ];
    let out = jockey(&[&args[..], &["-o", "json"]].concat(), &[])?;
    assert!(
        !out.status.success(),
        "a failure event must fail alb-status: {}",
        text(&out)
    );
    let s = json_stdout(&out)?;
    let failures = s["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 1, "{s:#}");
    assert_eq!(failures[0]["namespace"], ns.name.as_str());
    assert_eq!(failures[0]["ingress"], "ing-bad");
    assert_eq!(failures[0]["reason"], "FailedBuildModel");
    assert_eq!(failures[0]["message"], message.as_str());
    assert_eq!(failures[0]["current"], true);
    assert_eq!(s["groups"][0]["ready"], 1);

    // The table and the error name the Ingress and the reason.
    let out = jockey(&args, &[])?;
    assert!(!out.status.success());
    let all = text(&out);
    assert!(
        all.contains(&format!("{}/ing-bad", ns.name)) && all.contains("FailedBuildModel"),
        "{all}"
    );
    assert!(all.contains("conflicting scheme"), "{all}");

    // list-alb-ingresses marks it not ready, with the reason in -o wide.
    let out = jockey(
        &[
            "list-alb-ingresses",
            "-n",
            &ns.name,
            "-o",
            "wide",
            "--alb-group",
            &base,
        ],
        &[],
    )?;
    assert!(out.status.success(), "{}", text(&out));
    let table = String::from_utf8_lossy(&out.stdout);
    let bad_line = table
        .lines()
        .find(|l| l.contains("ing-bad"))
        .unwrap_or_default();
    assert!(
        bad_line.contains("False") && bad_line.contains("FailedBuildModel"),
        "{table}"
    );

    // A later successful reconcile resolves it.
    ingress_event(
        &client,
        &ns.name,
        "ing-bad",
        "SuccessfullyReconciled",
        "Successfully reconciled",
        -2,
    )
    .await?;
    let out = jockey(&[&args[..], &["-o", "json"]].concat(), &[])?;
    assert!(out.status.success(), "{}", text(&out));
    let s = json_stdout(&out)?;
    assert_eq!(s["failures"][0]["current"], false, "{s:#}");

    ns.cleanup().await?;
    Ok(())
}
