use super::*;

fn opts() -> Options {
    Options {
        name: "jockey-webhook".into(),
        namespace: "jockey-system".into(),
        image: "reg/jockey-webhook:1".into(),
        config: Config::default(),
        policy_yaml: BASE_POLICY.into(),
        namespace_selector: BTreeMap::new(),
        failure_policy: FailurePolicy::Fail,
        client_ca_pem: None,
        client_names: Vec::new(),
        api_server_cidrs: Vec::new(),
    }
}

#[test]
fn manifests_base_webhooks_are_what_install_registers() {
    let manifest = parse_multi_yaml("webhooks.yaml", BASE_WEBHOOKS).unwrap();
    let rendered = registration(&opts(), "").objects().unwrap();
    if manifest != rendered {
        let yaml: Vec<String> = rendered
            .iter()
            .map(|o| serde_yaml::to_string(o).unwrap())
            .collect();
        panic!(
            "manifests/base/webhooks.yaml differs from the rendering; it should read:\n---\n{}",
            yaml.join("---\n")
        );
    }
}

/// The tenant role install applies is the core's rendering (which the manifest is too), one
/// for every install whatever its name.
#[test]
fn install_applies_the_tenant_cluster_role() {
    let mut o = opts();
    o.name = "jw-test".into();
    let objs = render(&o, "").unwrap();
    let role = objs
        .iter()
        .find(|o| o["kind"] == "ClusterRole" && o["metadata"]["name"] == "jockey-tenant")
        .unwrap();
    assert_eq!(
        role["rules"],
        serde_json::to_value(jockey_core::tenant::tenant_cluster_role()).unwrap()["rules"]
    );
    assert_eq!(role["metadata"]["labels"][MANAGED_BY], MANAGED_BY_VALUE);
    assert_eq!(
        role["metadata"]["labels"]["app.kubernetes.io/name"],
        "jockey-tenant"
    );
    assert_eq!(role, &tenant_cluster_role().unwrap());
    assert!(role["metadata"].get("namespace").is_none());
}

#[test]
fn renders_the_base_with_ca_bundle_image_and_labels() {
    let objs = render(&opts(), "Q0E=").unwrap();
    let kinds: Vec<&str> = objs.iter().map(|o| o["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "CustomResourceDefinition",
            "Namespace",
            "ConfigMap",
            "ConfigMap",
            "ServiceAccount",
            "ClusterRole",
            "ClusterRoleBinding",
            "Role",
            "RoleBinding",
            "ClusterRole",
            "Service",
            "NetworkPolicy",
            "PodDisruptionBudget",
            "Deployment",
            "MutatingWebhookConfiguration",
            "ValidatingWebhookConfiguration",
            "ValidatingAdmissionPolicy",
            "ValidatingAdmissionPolicyBinding",
            // The build broker: the builder namespace and its account, the broker's
            // settings, identity (cluster, builder namespace, claims) and Deployment.
            "Namespace",
            "ServiceAccount",
            "ConfigMap",
            "ServiceAccount",
            "ClusterRole",
            "ClusterRoleBinding",
            "Role",
            "RoleBinding",
            "Role",
            "RoleBinding",
            "Deployment"
        ]
    );
    let broker = objs
        .iter()
        .find(|o| o["kind"] == "Deployment" && o["metadata"]["name"] == BROKER_NAME)
        .unwrap();
    let bc = &broker["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(bc["image"], "reg/jockey-webhook:1");
    assert_eq!(bc["args"], json!(["broker"]));
    assert_eq!(
        broker["spec"]["template"]["spec"]["serviceAccountName"],
        BROKER_NAME
    );
    for o in &objs {
        assert_eq!(o["metadata"]["labels"][MANAGED_BY], MANAGED_BY_VALUE, "{o}");
        api_resource(o).unwrap();
    }
    let d = objs.iter().find(|o| o["kind"] == "Deployment").unwrap();
    let c = &d["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["image"], "reg/jockey-webhook:1");
    let args: Vec<&str> = c["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(
        args.contains(&"--renew-ca-secret=jockey-webhook-ca"),
        "{args:?}"
    );
    assert!(
        args.contains(&"--renew-tls-secret=jockey-webhook-tls"),
        "{args:?}"
    );
    // Secrets: the CA read, the serving Secret read and updated, both by name only.
    let role = objs.iter().find(|o| o["kind"] == "Role").unwrap();
    let secret_rules: Vec<&Value> = role["rules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["resources"] == json!(["secrets"]))
        .collect();
    assert_eq!(
        secret_rules,
        [
            &json!({ "apiGroups": [""], "resources": ["secrets"], "resourceNames": ["jockey-webhook-ca"], "verbs": ["get"] }),
            &json!({ "apiGroups": [""], "resources": ["secrets"], "resourceNames": ["jockey-webhook-tls"], "verbs": ["get", "update"] }),
        ]
    );
    assert!(d["spec"]["template"]["metadata"]["annotations"][ANNOTATION_CONFIG_SHA256].is_string());
    for w in objs.iter().filter(|o| {
        o["kind"]
            .as_str()
            .unwrap()
            .ends_with("WebhookConfiguration")
    }) {
        assert_eq!(w["webhooks"][0]["clientConfig"]["caBundle"], "Q0E=");
        assert_eq!(w["webhooks"][0]["failurePolicy"], "Fail");
    }
}

#[test]
fn the_network_policy_opens_only_the_webhook_port_and_narrows_to_the_api_server() {
    let objs = render(&opts(), "").unwrap();
    let np = objs.iter().find(|o| o["kind"] == "NetworkPolicy").unwrap();
    let d = objs.iter().find(|o| o["kind"] == "Deployment").unwrap();
    // It selects the webhook's pods, for ingress, on the container's named port only.
    assert_eq!(
        np["spec"]["podSelector"]["matchLabels"],
        d["spec"]["template"]["metadata"]["labels"]
    );
    assert_eq!(np["spec"]["policyTypes"], json!(["Ingress"]));
    assert_eq!(
        np["spec"]["ingress"],
        json!([{ "ports": [{ "port": "https", "protocol": "TCP" }] }])
    );
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["ports"],
        json!([{ "name": "https", "containerPort": 10250, "protocol": "TCP" }])
    );
    let mut o = opts();
    o.api_server_cidrs = vec!["10.0.0.0/16".into(), "fd00::/8".into()];
    let objs = render(&o, "").unwrap();
    let np = objs.iter().find(|o| o["kind"] == "NetworkPolicy").unwrap();
    assert_eq!(
        np["spec"]["ingress"][0]["from"],
        json!([{ "ipBlock": { "cidr": "10.0.0.0/16" } }, { "ipBlock": { "cidr": "fd00::/8" } }])
    );
    assert_eq!(parse_cidr("10.0.0.0/16").unwrap(), "10.0.0.0/16");
    for bad in [
        "10.0.0.0",
        "10.0.0.0/33",
        "fd00::/129",
        "ten/8",
        "10.0.0.0/x",
        "",
    ] {
        let e = parse_cidr(bad).unwrap_err().to_string();
        assert!(
            e.contains("is not an address range") && e.contains("e.g."),
            "{e}"
        );
    }
}

#[test]
fn a_client_ca_is_stored_mounted_and_required_of_callers() {
    let mut o = opts();
    let ca = jockey_core::certs::new_ca("client-ca", 1).unwrap();
    o.client_ca_pem = Some(ca.cert_pem.clone());
    o.client_names = vec!["kube-apiserver".into()];
    let objs = render(&o, "").unwrap();
    let cm = objs
        .iter()
        .find(|o| o["metadata"]["name"] == "jockey-webhook-client-ca")
        .unwrap();
    assert_eq!(cm["kind"], "ConfigMap");
    assert_eq!(cm["data"]["ca.crt"], ca.cert_pem);
    let d = objs.iter().find(|o| o["kind"] == "Deployment").unwrap();
    let c = &d["spec"]["template"]["spec"]["containers"][0];
    let args: Vec<&str> = c["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(
        args.contains(&"--client-ca-file=/etc/jockey-webhook/client-ca/ca.crt")
            && args.contains(&"--client-name=kube-apiserver"),
        "{args:?}"
    );
    assert!(
        c["volumeMounts"].as_array().unwrap().contains(
            &json!({ "name": "client-ca", "mountPath": "/etc/jockey-webhook/client-ca", "readOnly": true })
        )
    );
    assert!(
        d["spec"]["template"]["spec"]["volumes"]
            .as_array()
            .unwrap()
            .contains(
                &json!({ "name": "client-ca", "configMap": { "name": "jockey-webhook-client-ca" } })
            )
    );
    // Without one, none of it.
    let text = serde_json::to_string(&render(&opts(), "").unwrap()).unwrap();
    assert!(!text.contains("client-ca"), "{text}");
}

#[test]
fn renaming_is_consistent() {
    let mut o = opts();
    o.name = "jw-test".into();
    o.namespace = "team-x".into();
    o.namespace_selector = BTreeMap::from([("k".into(), "v".into())]);
    o.failure_policy = FailurePolicy::Ignore;
    o.image = "reg/img:1".into();
    o.policy_yaml = "{}".into();
    let objs = render(&o, "").unwrap();
    let text = serde_json::to_string(&objs).unwrap();
    assert!(
        !text.contains("jockey-system") && !text.contains("jockey-webhook"),
        "{text}"
    );
    let w = objs
        .iter()
        .find(|o| o["kind"] == "MutatingWebhookConfiguration")
        .unwrap();
    assert_eq!(w["metadata"]["name"], "jw-test");
    assert_eq!(
        w["webhooks"][0]["clientConfig"]["service"]["namespace"],
        "team-x"
    );
    assert_eq!(
        w["webhooks"][0]["namespaceSelector"]["matchLabels"],
        json!({ "k": "v" })
    );
    assert_eq!(w["webhooks"][0]["failurePolicy"], "Ignore");
    for obj in &objs {
        let namespaced = api_resource(obj).unwrap().1;
        // The broker's rights and the build pods' account live in the builder namespace.
        let in_builder = obj["metadata"]["namespace"] == "builder";
        assert_eq!(
            obj["metadata"]["namespace"] == "team-x" || in_builder,
            namespaced,
            "{obj}"
        );
    }
    let d = objs.iter().find(|o| o["kind"] == "Deployment").unwrap();
    let vols = &d["spec"]["template"]["spec"]["volumes"];
    assert_eq!(vols[0]["secret"]["secretName"], "jw-test-tls");
    assert_eq!(vols[1]["configMap"]["name"], "jw-test-policy");
}
