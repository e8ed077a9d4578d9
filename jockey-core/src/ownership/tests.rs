use super::*;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::FieldsV1;
use serde_json::json;

fn entry(
    manager: &str,
    operation: &str,
    subresource: Option<&str>,
    fields: Value,
) -> ManagedFieldsEntry {
    ManagedFieldsEntry {
        manager: Some(manager.to_string()),
        operation: Some(operation.to_string()),
        subresource: subresource.map(str::to_string),
        fields_type: Some("FieldsV1".to_string()),
        fields_v1: Some(FieldsV1(fields)),
        api_version: Some("apps/v1".to_string()),
        time: None,
    }
}

/// What jockey renders: a server container with resources, env, ports, a volume.
fn ours() -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "p", "annotations": {
            "jockey.agentops.ai/instance": "instance-bbbbbbbbbbbbbbbb",
            "alb.ingress.kubernetes.io/healthcheck-path": "/health"}},
        "spec": {"replicas": 1, "template": {"spec": {
            "containers": [{"name": "server", "image": "r/p:b",
                "args": ["--a"],
                "env": [{"name": "A", "value": "1"}, {"name": "U", "value": "u"}],
                "ports": [{"containerPort": 8080, "name": "http"}],
                "resources": {"limits": {"cpu": "1", "memory": "1Gi"},
                              "requests": {"cpu": "100m", "memory": "256Mi"}}}],
            "volumes": [{"name": "jockey-instance", "configMap": {"name": "instance-b"}}]}}}
    })
}

/// The live object: a user raised the memory limit to 4Gi, a path and an env var.
fn live() -> Value {
    let mut l = ours();
    l["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"] = json!("4Gi");
    l["metadata"]["annotations"]["alb.ingress.kubernetes.io/healthcheck-path"] = json!("/ready");
    l["spec"]["template"]["spec"]["containers"][0]["env"][1]["value"] = json!("mine");
    l
}

fn server_set(inner: Value) -> Value {
    json!({"f:spec": {"f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"server\"}": inner}}}}})
}

fn prune_with(entries: &[ManagedFieldsEntry], purposeful: &[Steps]) -> Pruned {
    prune(
        &ours(),
        &live(),
        &other_owners(entries, "kubectl-jockey"),
        purposeful,
    )
}

fn server(v: &Value) -> &Value {
    &v["spec"]["template"]["spec"]["containers"][0]
}

#[test]
fn a_leaf_another_manager_owns_is_left_out_and_reported_with_both_values() {
    let e = [
        entry(
            "kubectl-jockey",
            "Apply",
            None,
            server_set(json!({".": {}, "f:image": {},
            "f:resources": {"f:limits": {"f:cpu": {}}, "f:requests": {"f:cpu": {}, "f:memory": {}}}})),
        ),
        entry(
            "kubectl-set",
            "Update",
            None,
            server_set(json!({"f:resources": {"f:limits": {"f:memory": {}}}})),
        ),
    ];
    let p = prune_with(&e, &[]);
    let res = &server(&p.object)["resources"];
    assert_eq!(
        res["limits"],
        json!({"cpu": "1"}),
        "only the user's leaf is left out"
    );
    assert_eq!(res["requests"]["memory"], "256Mi");
    assert_eq!(server(&p.object)["image"], "r/p:b");
    assert_eq!(
        p.kept,
        vec![Owned {
            path: ".spec.template.spec.containers[name=\"server\"].resources.limits.memory".into(),
            managers: vec!["kubectl-set".into()],
            ours: json!("1Gi"),
            live: Some(json!("4Gi")),
        }]
    );
    assert!(p.kept[0].differs());
    assert!(p.claimed.is_empty());
}

#[test]
fn without_other_managers_the_render_is_applied_whole() {
    let e = [entry(
        "kubectl-jockey",
        "Apply",
        None,
        json!({"f:spec": {"f:replicas": {}}}),
    )];
    let p = prune_with(&e, &[]);
    assert_eq!(p.object, ours());
    assert!(p.kept.is_empty() && p.claimed.is_empty());
    let p = prune(&ours(), &Value::Null, &[], &[]);
    assert_eq!(p.object, ours(), "a new object");
}

#[test]
fn annotations_with_dots_and_slashes_are_one_field_each() {
    let e = [entry(
        "kubectl-annotate",
        "Update",
        None,
        json!({"f:metadata": {"f:annotations": {
        "f:alb.ingress.kubernetes.io/healthcheck-path": {}, "f:mine.example/x": {}}}}),
    )];
    let p = prune_with(&e, &[]);
    assert_eq!(
        p.object["metadata"]["annotations"],
        json!({"jockey.agentops.ai/instance": "instance-bbbbbbbbbbbbbbbb"})
    );
    assert_eq!(p.kept.len(), 1, "{:?}", p.kept);
    assert_eq!(
        p.kept[0].path,
        ".metadata.annotations.alb.ingress.kubernetes.io/healthcheck-path"
    );
    assert_eq!(p.kept[0].live, Some(json!("/ready")));
}

#[test]
fn a_map_emptied_by_pruning_is_left_out_but_one_rendered_empty_stays() {
    let e = [entry(
        "kubectl-annotate",
        "Update",
        None,
        json!({"f:metadata": {"f:annotations": {
        "f:alb.ingress.kubernetes.io/healthcheck-path": {},
        "f:jockey.agentops.ai/instance": {}}}}),
    )];
    let p = prune_with(&e, &[]);
    assert!(
        p.object["metadata"].get("annotations").is_none(),
        "{}",
        p.object["metadata"]
    );
    let mut o = ours();
    o["metadata"]["labels"] = json!({});
    let e = [entry(
        "x",
        "Update",
        None,
        json!({"f:metadata": {"f:labels": {"f:a": {}}}}),
    )];
    let p = prune(&o, &live(), &other_owners(&e, "kubectl-jockey"), &[]);
    assert_eq!(p.object["metadata"]["labels"], json!({}));
}

#[test]
fn keyed_list_items_are_matched_by_their_keys_and_keys_are_never_left_out() {
    let e = [entry(
        "kubectl-set",
        "Update",
        None,
        server_set(json!({
        "f:env": {"k:{\"name\":\"U\"}": {"f:value": {}}, "k:{\"name\":\"Z\"}": {"f:value": {}}}})),
    )];
    let p = prune_with(&e, &[]);
    assert_eq!(
        server(&p.object)["env"],
        json!([{"name": "A", "value": "1"}, {"name": "U"}]),
        "the item stays (jockey co-owns it) with its key only"
    );
    assert_eq!(
        p.kept[0].path,
        ".spec.template.spec.containers[name=\"server\"].env[name=\"U\"].value"
    );
    assert_eq!(p.kept[0].live, Some(json!("mine")));
}

#[test]
fn an_item_another_manager_made_is_left_out_whole() {
    let e = [entry(
        "kubectl-set",
        "Update",
        None,
        server_set(json!({
        "f:env": {"k:{\"name\":\"U\"}": {".": {}, "f:name": {}, "f:value": {}}}})),
    )];
    let p = prune_with(&e, &[]);
    assert_eq!(
        server(&p.object)["env"],
        json!([{"name": "A", "value": "1"}])
    );
}

#[test]
fn a_key_field_the_render_leaves_to_the_server_default_still_matches() {
    let e = [entry(
        "kubectl-edit",
        "Update",
        None,
        server_set(json!({"f:ports": {
        "k:{\"containerPort\":8080,\"protocol\":\"TCP\"}": {"f:name": {}}}})),
    )];
    let p = prune_with(&e, &[]);
    assert_eq!(server(&p.object)["ports"], json!([{"containerPort": 8080}]));
    assert_eq!(
        p.kept[0].path,
        ".spec.template.spec.containers[name=\"server\"].ports[containerPort=8080,protocol=\"TCP\"].name"
    );
    // Another protocol's key does not match an item that names its own.
    let mut o = ours();
    o["spec"]["template"]["spec"]["containers"][0]["ports"][0]["protocol"] = json!("UDP");
    let p = prune(&o, &live(), &other_owners(&e, "kubectl-jockey"), &[]);
    assert_eq!(server(&p.object)["ports"][0]["name"], "http");
    assert!(p.kept.is_empty());
}

#[test]
fn owning_a_parent_is_owning_that_it_exists_not_what_is_inside() {
    // `f:resources: {}` (a manager set it empty once), and a container item's `.` alone.
    let e = [entry(
        "kubectl-create",
        "Update",
        None,
        server_set(json!({".": {}, "f:resources": {}})),
    )];
    let p = prune_with(&e, &[]);
    assert_eq!(p.object, ours());
    assert!(p.kept.is_empty());
}

#[test]
fn an_owned_list_without_items_is_atomic_and_left_out_whole() {
    let e = [entry(
        "kubectl-edit",
        "Update",
        None,
        server_set(json!({"f:args": {}})),
    )];
    let p = prune_with(&e, &[]);
    assert!(server(&p.object).get("args").is_none());
    assert_eq!(p.kept[0].ours, json!(["--a"]));
}

#[test]
fn set_items_are_matched_by_value() {
    let mut o = ours();
    o["metadata"]["finalizers"] = json!(["a.example/x", "b.example/y"]);
    let e = [entry(
        "ctl",
        "Update",
        None,
        json!({"f:metadata": {"f:finalizers": {
        "v:\"b.example/y\"": {}}}}),
    )];
    let p = prune(&o, &o, &other_owners(&e, "kubectl-jockey"), &[]);
    assert_eq!(p.object["metadata"]["finalizers"], json!(["a.example/x"]));
    assert_eq!(p.kept[0].path, ".metadata.finalizers[=\"b.example/y\"]");
}

#[test]
fn a_tie_with_jockey_is_still_the_other_managers_field() {
    let set = json!({"f:spec": {"f:replicas": {}}});
    let e = [
        entry("kubectl-jockey", "Apply", None, set.clone()),
        entry("kubectl-scale", "Update", Some("scale"), set.clone()),
        entry("hpa", "Update", None, set),
    ];
    let p = prune_with(&e, &[]);
    assert!(p.object["spec"].get("replicas").is_none());
    assert_eq!(
        p.kept[0].managers,
        vec!["hpa".to_string(), "kubectl-scale".to_string()]
    );
}

#[test]
fn jockeys_own_entries_status_and_before_first_apply_are_not_kept_for_anyone() {
    let set = json!({"f:spec": {"f:replicas": {}}});
    let e = [
        entry("kubectl-jockey", "Update", None, set.clone()),
        entry("kubectl-jockey", "Apply", None, set.clone()),
        entry("before-first-apply", "Update", None, set.clone()),
        entry(
            "kube-controller-manager",
            "Update",
            Some("status"),
            json!({"f:status": {}, "f:spec": {"f:replicas": {}}}),
        ),
    ];
    assert!(other_owners(&e, "kubectl-jockey").is_empty());
    let p = prune_with(&e, &[]);
    assert_eq!(p.object, ours());
}

#[test]
fn purposeful_fields_stay_and_are_reported_as_claimed() {
    let e = [entry(
        "kubectl-set",
        "Update",
        None,
        server_set(json!({
        "f:image": {},
        "f:resources": {"f:limits": {"f:memory": {}}},
        "f:env": {"k:{\"name\":\"U\"}": {".": {}, "f:name": {}, "f:value": {}}}})),
    )];
    let mut env_u = field_steps(&["spec", "template", "spec", "containers"]);
    env_u.push(key_step("name", "server"));
    env_u.push("f:env".into());
    env_u.push(key_step("name", "U"));
    let mut memory = field_steps(&["spec", "template", "spec", "containers"]);
    memory.push(key_step("name", "server"));
    memory.extend(field_steps(&["resources", "limits", "memory"]));
    let p = prune_with(&e, &[env_u, memory]);
    let s = server(&p.object);
    assert_eq!(s["resources"]["limits"]["memory"], "1Gi");
    assert_eq!(s["env"][1], json!({"name": "U", "value": "u"}));
    assert!(
        s.get("image").is_none(),
        "not purposeful: the user's image stays"
    );
    let claimed: Vec<&str> = p.claimed.iter().map(|c| c.path.as_str()).collect();
    assert_eq!(
        claimed,
        vec![
            ".spec.template.spec.containers[name=\"server\"].env[name=\"U\"].value",
            ".spec.template.spec.containers[name=\"server\"].resources.limits.memory",
        ]
    );
    assert_eq!(p.kept.len(), 1);
}

#[test]
fn paths_print_and_resolve_like_the_api_servers() {
    let mut steps = field_steps(&["spec", "template", "spec", "volumes"]);
    steps.push(key_step("name", "jockey-instance"));
    steps.extend(field_steps(&["configMap", "name"]));
    assert_eq!(
        printed(&steps),
        ".spec.template.spec.volumes[name=\"jockey-instance\"].configMap.name"
    );
    assert_eq!(get(&ours(), &steps), Some(&json!("instance-b")));
    assert_eq!(get(&ours(), &field_steps(&["spec", "nope"])), None);
    let mut o = ours();
    let mut l = ours();
    l["spec"]["template"]["spec"]["volumes"][0]["configMap"]["name"] = json!("instance-a");
    pin_to_live(
        &mut o,
        &l,
        &[steps.clone(), field_steps(&["spec", "absent"])],
    );
    assert_eq!(get(&o, &steps), Some(&json!("instance-a")));
    assert!(o["spec"].get("absent").is_none());
}

#[test]
fn conflicts_name_the_field_and_its_manager() {
    let causes = vec![
        (
            ".spec.template.spec.containers[name=\"server\"].resources.limits.memory".to_string(),
            "conflict with \"kubectl-set\" using apps/v1".to_string(),
        ),
        (
            ".spec.replicas".to_string(),
            "conflict with \"hpa\" with subresource \"scale\" using apps/v1".to_string(),
        ),
        (String::new(), "not a field".to_string()),
        (".x".to_string(), "something else".to_string()),
    ];
    let c = conflicts(&causes);
    assert_eq!(c.len(), 3);
    assert_eq!(c[0].manager, "kubectl-set");
    assert_eq!(c[1].manager, "hpa");
    assert_eq!(c[2].manager, "something else");
}

#[test]
fn malformed_field_sets_are_ignored_not_fatal() {
    let e = [
        entry("a", "Update", None, json!("not an object")),
        entry(
            "b",
            "Update",
            None,
            json!({"f:spec": {"k:{not json": {}, "f:replicas": "x"}}),
        ),
        entry(
            "c",
            "Update",
            None,
            json!({"f:spec": {"f:template": {"f:spec": {"f:containers": {
            "k:{}": {"f:image": {}}, "k:[1]": {}, "v:": {}}}}}}),
        ),
    ];
    let p = prune_with(&e, &[]);
    assert_eq!(p.object, ours());
}

#[test]
fn owners_of_one_field_are_found_through_list_keys() {
    let e = [
        entry(
            "kubectl-rollout",
            "Update",
            None,
            json!({"f:metadata": {"f:annotations": {
            "f:jockey.agentops.ai/instance": {}}}}),
        ),
        entry(
            "kubectl-edit",
            "Update",
            None,
            server_set(json!({"f:args": {}})),
        ),
    ];
    let owners = other_owners(&e, "kubectl-jockey");
    let ann = field_steps(&["metadata", "annotations", "jockey.agentops.ai/instance"]);
    assert_eq!(
        owned_by_others(&owners, &ann),
        vec!["kubectl-rollout".to_string()]
    );
    let mut arg = field_steps(&["spec", "template", "spec", "containers"]);
    arg.push(key_step("name", "server"));
    arg.push("f:args".into());
    arg.push("v:\"--a\"".into());
    assert_eq!(
        owned_by_others(&owners, &arg),
        vec!["kubectl-edit".to_string()],
        "atomic list"
    );
    assert!(owned_by_others(&owners, &field_steps(&["metadata", "labels"])).is_empty());
}
