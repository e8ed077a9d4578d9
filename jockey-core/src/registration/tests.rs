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
fn the_policy_names_the_group_its_shards_and_the_allowed_groups() {
    let r = local();
    let p = r.shared_group_policy().unwrap();
    let shared = p["spec"]["variables"][1]["expression"].as_str().unwrap();
    assert_eq!(
        shared,
        r"variables.group.matches('^alb-deployments(-([2-9]|[1-9][0-9]+))?$') || variables.group == 'alb.internal'"
    );
    assert_eq!(p["metadata"]["name"], "jockey-local-shared-alb");
    let in_scope = p["spec"]["validations"][1]["expression"].as_str().unwrap();
    assert_eq!(
        in_scope,
        "!variables.shared || (('jockey.agentops.ai/webhook' in variables.nsLabels && variables.nsLabels['jockey.agentops.ai/webhook'] == 'local'))"
    );
    // Every namespace unless a test narrows it.
    assert!(
        r.shared_group_binding()["spec"]
            .get("matchResources")
            .is_none()
    );
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
fn group_names_are_escaped_in_the_regex() {
    let r = Registration {
        shared_group: "a.b".into(),
        other_groups: vec![],
        ..local()
    };
    let p = r.shared_group_policy().unwrap();
    assert_eq!(
        p["spec"]["variables"][1]["expression"],
        r"variables.group.matches('^a\\.b(-([2-9]|[1-9][0-9]+))?$')"
    );
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
