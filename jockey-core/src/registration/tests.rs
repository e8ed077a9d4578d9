use super::*;

fn local() -> Registration {
    Registration {
        name: "jockey-local".into(),
        endpoint: Endpoint::Url("https://127.0.0.1:9443/".into()),
        ca_bundle: "Q0E=".into(),
        namespace_selector: json!({ "matchLabels": { "jockey.agentops.ai/webhook": "local" } }),
        failure_policy: "Fail".into(),
        timeout_seconds: 5,
        shared_group: "alb-deployments".into(),
        other_groups: vec!["alb.internal".into()],
        policy_scope: None,
        deployment_domain: "deploy.agentops.ai".into(),
        params: ("jockey-system".into(), "jockey-local-config".into()),
        render_params: true,
    }
}

#[test]
fn webhooks_select_labelled_objects_and_claim_only_outside_dry_runs() {
    let r = local();
    let m = r.mutating();
    let v = r.validating();
    assert_eq!(
        m["webhooks"][0]["clientConfig"]["url"],
        "https://127.0.0.1:9443/mutate"
    );
    assert_eq!(
        v["webhooks"][0]["clientConfig"]["url"],
        "https://127.0.0.1:9443/validate"
    );
    assert_eq!(v["webhooks"][0]["clientConfig"]["caBundle"], "Q0E=");
    assert_eq!(m["webhooks"][0]["sideEffects"], "None");
    assert_eq!(v["webhooks"][0]["sideEffects"], "NoneOnDryRun");
    assert_eq!(m["webhooks"][0]["reinvocationPolicy"], "IfNeeded");
    assert!(v["webhooks"][0].get("reinvocationPolicy").is_none());
    assert_eq!(
        v["webhooks"][0]["objectSelector"]["matchExpressions"][0]["key"],
        PROJECT_LABEL
    );
    let s = Registration {
        endpoint: Endpoint::Service {
            namespace: "jockey-system".into(),
            name: "jockey-webhook".into(),
            port: 443,
        },
        ca_bundle: String::new(),
        ..local()
    };
    assert_eq!(
        s.validating()["webhooks"][0]["clientConfig"],
        json!({ "service": { "name": "jockey-webhook", "namespace": "jockey-system", "path": "/validate", "port": 443 } })
    );
}

#[test]
fn the_policy_reads_its_groups_and_domain_from_the_webhooks_configmap() {
    let r = Registration {
        shared_group: "custom-group".into(),
        other_groups: vec!["alb.internal".into()],
        deployment_domain: "apps.example.com".into(),
        ..local()
    };
    let p = r.shared_group_policy().unwrap();
    assert_eq!(p["metadata"]["name"], "jockey-local-shared-alb");
    assert_eq!(
        p["spec"]["paramKind"],
        json!({ "apiVersion": "v1", "kind": "ConfigMap" })
    );
    // One source: no configured value is written into the policy itself.
    let text = p.to_string();
    for value in ["custom-group", "alb.internal", "apps.example.com"] {
        assert!(!text.contains(value), "{value} is written into the policy");
    }
    // The parameter carries them, under the keys of the webhook's environment.
    let cm = r.params_configmap();
    assert_eq!(
        cm["metadata"],
        json!({ "name": "jockey-local-config", "namespace": "jockey-system" })
    );
    assert_eq!(cm["data"]["ALB_SHARED_GROUP_NAME"], "custom-group");
    assert_eq!(cm["data"]["ALB_ALLOWED_GROUPS"], "alb.internal");
    assert_eq!(cm["data"]["DEPLOYMENT_DOMAIN"], "apps.example.com");
    // The binding names it, and denies while it is missing.
    let b = r.shared_group_binding();
    assert_eq!(
        b["spec"]["paramRef"],
        json!({ "name": "jockey-local-config", "namespace": "jockey-system", "parameterNotFoundAction": "Deny" })
    );
    // Rendered with the other objects only where the webhook's own ConfigMap is not there.
    assert_eq!(r.objects().unwrap()[0]["kind"], "ConfigMap");
    let installed = Registration {
        render_params: false,
        ..r.clone()
    };
    assert!(
        installed
            .objects()
            .unwrap()
            .iter()
            .all(|o| o["kind"] != "ConfigMap")
    );
    // Every namespace unless a test narrows it.
    assert!(b["spec"].get("matchResources").is_none());
    let scoped = Registration {
        policy_scope: Some(json!({"matchLabels": {"t": "1"}})),
        ..local()
    };
    assert_eq!(
        scoped.shared_group_binding()["spec"]["matchResources"]["namespaceSelector"]["matchLabels"]
            ["t"],
        "1"
    );
}

#[test]
fn the_policy_covers_ingresses_and_services() {
    let p = local().shared_group_policy().unwrap();
    let resources: Vec<&str> = p["spec"]["matchConstraints"]["resourceRules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["resources"][0].as_str().unwrap())
        .collect();
    assert_eq!(resources, ["ingresses", "services"]);
    // Services without ALB annotations never reach it.
    let condition = p["spec"]["matchConditions"][0]["expression"]
        .as_str()
        .unwrap();
    assert!(
        condition.contains("alb.ingress.kubernetes.io/"),
        "{condition}"
    );
    let validations = p["spec"]["validations"].as_array().unwrap();
    assert_eq!(validations.len(), 6);
    for v in validations {
        let e = v["expression"].as_str().unwrap();
        assert!(e.starts_with("request.kind.kind != "), "{e}");
    }
}

#[test]
fn label_selectors_become_cel() {
    let sel = json!({
        "matchLabels": { "a": "x'y" },
        "matchExpressions": [
            { "key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["kube-system", "jockey-system"] },
            { "key": "e", "operator": "Exists" },
            { "key": "d", "operator": "DoesNotExist" },
            { "key": "i", "operator": "In", "values": ["1"] },
        ]
    });
    assert_eq!(
        selector_cel(&sel, "L").unwrap(),
        r"('a' in L && L['a'] == 'x\'y') && (!('kubernetes.io/metadata.name' in L) || !(L['kubernetes.io/metadata.name'] in ['kube-system', 'jockey-system'])) && ('e' in L) && !('d' in L) && ('i' in L && L['i'] in ['1'])"
    );
    assert_eq!(selector_cel(&json!({}), "L").unwrap(), "true");
    assert!(
        selector_cel(
            &json!({"matchExpressions": [{"key": "k", "operator": "Gt"}]}),
            "L"
        )
        .is_err()
    );
}
