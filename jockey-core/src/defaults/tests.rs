use super::*;
use serde_json::{Value, json};

const P: &str = "0b1c2d3e-aaaa-bbbb-cccc-0123456789ab";
const H: &str = "0123456789abcdef";
const REG: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";

fn cfg() -> Config {
    Config::from_lookup(|k| match k {
        "IMAGE_REGISTRY" => Some(REG.to_string()),
        _ => None,
    })
}

fn project() -> ProjectId {
    ProjectId::parse(P).unwrap()
}

fn hash() -> ContentHash {
    ContentHash::parse_full(&format!("{H}{}", "0".repeat(48))).unwrap()
}

fn image(h: &str) -> String {
    format!("{REG}/hosting/{P}:{h}")
}

fn deployment(v: Value) -> Deployment {
    serde_json::from_value(v).unwrap()
}

/// A minimal hand-written labelled Deployment with `containers` as given.
fn manifest(containers: Value) -> Deployment {
    deployment(json!({
        "metadata": {
            "name": P, "namespace": "team-a",
            "labels": { LABEL_PROJECT: P },
            "annotations": { ANNOTATION_INSTANCE: format!("instance-{H}") }
        },
        "spec": {
            "selector": { "matchLabels": { "app": P } },
            "template": {
                "metadata": { "labels": { "app": P } },
                "spec": { "containers": containers }
            }
        }
    }))
}

fn to_json<T: serde::Serialize>(t: &T) -> Value {
    serde_json::to_value(t).unwrap()
}

fn assert_idempotent_deployment(d: &Deployment, c: &Config) -> Deployment {
    let once = default_deployment(d, c).unwrap();
    let twice = default_deployment(&once, c).unwrap();
    assert_eq!(to_json(&once), to_json(&twice));
    assert!(patch_between(&once, &twice).0.is_empty());
    once
}

// --- Deployment ------------------------------------------------------------------------------

#[test]
fn rendered_deployment_gets_every_default() {
    let d = default_deployment(&render_deployment(&project(), &hash()), &cfg()).unwrap();
    let v = to_json(&d);
    let host = format!("{P}.deploy.agentops.ai");
    assert_eq!(v["metadata"]["name"], P);
    assert_eq!(v["metadata"]["labels"][LABEL_PROJECT], P);
    assert_eq!(v["metadata"]["labels"]["deployment"], P);
    assert_eq!(v["metadata"]["labels"]["hostname"], host.as_str());
    assert_eq!(v["metadata"]["labels"][LABEL_CONTENT_HASH], H);
    assert_eq!(v["spec"]["selector"]["matchLabels"], json!({ "app": P }));
    let tmpl = &v["spec"]["template"];
    assert_eq!(tmpl["metadata"]["labels"]["app"], P);
    assert_eq!(tmpl["metadata"]["labels"]["deployment"], P);
    assert_eq!(tmpl["metadata"]["labels"]["hostname"], host.as_str());
    assert_eq!(tmpl["metadata"]["labels"][LABEL_PROJECT], P);
    let pod = &tmpl["spec"];
    assert_eq!(
        pod["volumes"],
        json!([{ "name": INSTANCE_VOLUME, "configMap": { "name": format!("instance-{H}"), "defaultMode": 420 } }])
    );
    assert_eq!(pod["terminationGracePeriodSeconds"], 60);
    let c = &pod["containers"][0];
    assert_eq!(c["name"], CONTAINER_NAME);
    assert_eq!(c["image"], image(H).as_str());
    assert_eq!(
        c["ports"],
        json!([{ "containerPort": 8080, "name": "http", "protocol": "TCP" }])
    );
    assert_eq!(
        c["volumeMounts"],
        json!([{ "name": INSTANCE_VOLUME, "mountPath": "/app/instance", "readOnly": true }])
    );
    for probe in ["readinessProbe", "livenessProbe"] {
        assert_eq!(c[probe]["httpGet"]["path"], "/health", "{probe}");
        assert_eq!(c[probe]["httpGet"]["port"], 8080, "{probe}");
    }
    assert_eq!(c["lifecycle"]["preStop"]["sleep"]["seconds"], 35);
    assert_eq!(
        c["resources"],
        json!({ "requests": { "cpu": "100m", "memory": "256Mi" }, "limits": { "cpu": "1", "memory": "1Gi" } })
    );
}

#[test]
fn image_empty_missing_or_placeholder_is_filled() {
    for img in [
        json!(""),
        json!(null),
        json!("jockey:auto"),
        json!(" jockey:auto "),
    ] {
        let mut c = json!({ "name": "server" });
        if !img.is_null() {
            c["image"] = img.clone();
        }
        let d = assert_idempotent_deployment(&manifest(json!([c])), &cfg());
        let got = &d.spec.template.spec.unwrap().containers[0];
        assert_eq!(got.image.as_deref(), Some(image(H).as_str()), "{img}");
    }
}

#[test]
fn image_without_registry_is_an_error_that_says_so() {
    let d = render_deployment(&project(), &hash());
    let err = default_deployment(&d, &Config::default()).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("IMAGE_REGISTRY"), "{msg}");
    assert!(msg.contains(&format!("Deployment {P}")), "{msg}");
    assert!(msg.contains("server"), "{msg}");
}

#[test]
fn explicit_image_needs_no_registry_and_is_kept() {
    let d = manifest(json!([{ "name": "web", "image": "nginx:1.27" }]));
    let out = assert_idempotent_deployment(&d, &Config::default());
    let pod = out.spec.template.spec.unwrap();
    assert_eq!(pod.containers[0].image.as_deref(), Some("nginx:1.27"));
    // The only container is the app container: it still gets port, probes and the mount.
    assert!(pod.containers[0].readiness_probe.is_some());
    assert_eq!(pod.volumes.unwrap()[0].name, INSTANCE_VOLUME);
}

#[test]
fn placeholder_without_instance_annotation_is_an_error() {
    let mut d = manifest(json!([{ "name": "server", "image": "jockey:auto" }]));
    d.metadata.annotations = None;
    let msg = default_deployment(&d, &cfg()).unwrap_err().to_string();
    assert!(msg.contains(ANNOTATION_INSTANCE), "{msg}");
    assert!(msg.contains("team-a/"), "{msg}");
}

#[test]
fn no_annotation_and_explicit_image_means_no_instance_volume() {
    let mut d = manifest(json!([{ "name": "server", "image": "nginx" }]));
    d.metadata.annotations = None;
    let out = assert_idempotent_deployment(&d, &cfg());
    let pod = out.spec.template.spec.as_ref().unwrap();
    assert!(pod.volumes.as_ref().is_none_or(|v| v.is_empty()));
    assert!(
        pod.containers[0]
            .volume_mounts
            .as_ref()
            .is_none_or(|v| v.is_empty())
    );
    assert!(
        !out.metadata
            .labels
            .unwrap()
            .contains_key(LABEL_CONTENT_HASH)
    );
}

#[test]
fn malformed_instance_annotation_is_an_error() {
    for bad in ["instance-XYZ", "my-files", "instance-0123"] {
        let mut d = manifest(json!([{ "name": "server" }]));
        d.metadata
            .annotations
            .as_mut()
            .unwrap()
            .insert(ANNOTATION_INSTANCE.into(), bad.into());
        let msg = default_deployment(&d, &cfg()).unwrap_err().to_string();
        assert!(msg.contains(bad) && msg.contains("instance-<h>"), "{msg}");
    }
}

#[test]
fn missing_or_bad_project_label_is_an_error() {
    let mut d = manifest(json!([{ "name": "server" }]));
    d.metadata.labels = None;
    let msg = default_deployment(&d, &cfg()).unwrap_err().to_string();
    assert!(
        msg.contains(LABEL_PROJECT) && msg.contains("missing"),
        "{msg}"
    );
    d.metadata.labels = Some(BTreeMap::from([(LABEL_PROJECT.into(), "Bad_Id".into())]));
    let msg = default_deployment(&d, &cfg()).unwrap_err().to_string();
    assert!(msg.contains("DNS-1123"), "{msg}");
}

#[test]
fn stale_builder_image_follows_the_annotation() {
    // Client-side apply of a changed annotation keeps the stored (old) concrete image.
    let old = "fedcba9876543210";
    let d = manifest(json!([{ "name": "server", "image": image(old) }]));
    let out = assert_idempotent_deployment(&d, &cfg());
    let pod = out.spec.template.spec.unwrap();
    assert_eq!(pod.containers[0].image.as_deref(), Some(image(H).as_str()));
    // A builder image under another registry, or a non-hash tag, is a deliberate choice.
    for keep in [
        format!("other.registry/hosting/{P}:{old}"),
        format!("{REG}/hosting/{P}:v1"),
    ] {
        let d = manifest(json!([{ "name": "server", "image": keep }]));
        let out = assert_idempotent_deployment(&d, &cfg());
        let pod = out.spec.template.spec.unwrap();
        assert_eq!(pod.containers[0].image.as_deref(), Some(keep.as_str()));
    }
}

#[test]
fn instance_volume_follows_the_annotation() {
    let d = default_deployment(&render_deployment(&project(), &hash()), &cfg()).unwrap();
    let mut changed = d.clone();
    let next = "aaaaaaaaaaaaaaaa";
    changed
        .metadata
        .annotations
        .as_mut()
        .unwrap()
        .insert(ANNOTATION_INSTANCE.into(), format!("instance-{next}"));
    let out = assert_idempotent_deployment(&changed, &cfg());
    let pod = out.spec.template.spec.as_ref().unwrap();
    let vols = pod.volumes.as_ref().unwrap();
    assert_eq!(vols.len(), 1);
    assert_eq!(
        vols[0].config_map.as_ref().unwrap().name,
        format!("instance-{next}")
    );
    assert_eq!(
        pod.containers[0].image.as_deref(),
        Some(image(next).as_str())
    );
    assert_eq!(
        out.metadata.labels.as_ref().unwrap()[LABEL_CONTENT_HASH],
        next
    );
    let tmpl_labels = out.spec.template.metadata.unwrap().labels.unwrap();
    assert_eq!(tmpl_labels[LABEL_CONTENT_HASH], next);
}

#[test]
fn user_values_are_kept() {
    let c = json!({
        "name": "server",
        "image": "jockey:auto",
        "ports": [{ "containerPort": 8080, "name": "web", "protocol": "TCP" }],
        "readinessProbe": { "tcpSocket": { "port": 8080 } },
        "livenessProbe": { "httpGet": { "path": "/alive", "port": 8080 } },
        "lifecycle": { "preStop": { "exec": { "command": ["/drain"] } } },
        "resources": { "requests": { "cpu": "2", "memory": "4Gi" }, "limits": { "cpu": "4", "memory": "8Gi" } },
        "volumeMounts": [{ "name": "mine", "mountPath": "/app/instance" }]
    });
    let mut d = manifest(json!([c]));
    {
        let spec = &mut d.spec;
        spec.selector =
            serde_json::from_value(json!({ "matchLabels": { "tier": "agent" } })).unwrap();
        let tmeta = spec.template.metadata.as_mut().unwrap();
        tmeta
            .labels
            .as_mut()
            .unwrap()
            .insert("tier".into(), "agent".into());
        tmeta
            .labels
            .as_mut()
            .unwrap()
            .insert("hostname".into(), "custom".into());
        let pod = spec.template.spec.as_mut().unwrap();
        pod.termination_grace_period_seconds = Some(120);
        pod.volumes = Some(vec![
            serde_json::from_value(json!({ "name": "mine", "emptyDir": {} })).unwrap(),
        ]);
    }
    let out = assert_idempotent_deployment(&d, &cfg());
    let spec = out.spec;
    assert_eq!(
        to_json(&spec.selector),
        json!({ "matchLabels": { "tier": "agent" } })
    );
    let tlabels = spec.template.metadata.unwrap().labels.unwrap();
    assert_eq!(tlabels["hostname"], "custom");
    assert_eq!(tlabels["app"], P);
    let pod = spec.template.spec.unwrap();
    assert_eq!(pod.termination_grace_period_seconds, Some(120));
    // The user's volume at /app/instance is theirs; no jockey volume is added beside it.
    assert_eq!(
        to_json(&pod.volumes),
        json!([{ "name": "mine", "emptyDir": {} }])
    );
    let got = to_json(&pod.containers[0]);
    let mut want = c.clone();
    want["image"] = json!(image(H));
    // The project's secret environment is added beside whatever the user set.
    want["envFrom"] = json!([{ "secretRef": { "name": format!("env-{P}"), "optional": true } }]);
    assert_eq!(got, want);
}

#[test]
fn the_secret_environment_is_added_once_and_a_users_envfrom_is_kept() {
    let d = manifest(json!([{ "name": "server", "image": "jockey:auto",
        "envFrom": [{ "configMapRef": { "name": "mine" } }] }]));
    let out = assert_idempotent_deployment(&d, &cfg());
    let c = &out.spec.template.spec.unwrap().containers[0];
    assert_eq!(
        to_json(&c.env_from),
        json!([{ "configMapRef": { "name": "mine" } },
               { "secretRef": { "name": format!("env-{P}"), "optional": true } }])
    );
}

#[test]
fn sidecars_are_left_alone() {
    let d = manifest(json!([
        { "name": "proxy", "image": "envoyproxy/envoy:v1.31" },
        { "name": "server", "image": "jockey:auto" }
    ]));
    let out = assert_idempotent_deployment(&d, &cfg());
    let pod = out.spec.template.spec.unwrap();
    assert_eq!(
        to_json(&pod.containers[0]),
        json!({ "name": "proxy", "image": "envoyproxy/envoy:v1.31" })
    );
    assert!(pod.containers[1].readiness_probe.is_some());
    assert_eq!(pod.containers[1].image.as_deref(), Some(image(H).as_str()));
}

#[test]
fn grace_period_outlasts_the_prestop_pause() {
    // The API server defaults terminationGracePeriodSeconds to 30 before admission.
    let mut d = manifest(json!([{ "name": "server" }]));
    d.spec
        .template
        .spec
        .as_mut()
        .unwrap()
        .termination_grace_period_seconds = Some(30);
    let out = assert_idempotent_deployment(&d, &cfg());
    let g = out
        .spec
        .template
        .spec
        .unwrap()
        .termination_grace_period_seconds
        .unwrap();
    assert!(g > PRESTOP_SLEEP_SECONDS, "{g}");
    // A user's own sleep preStop is honoured and the grace period sized to it.
    let d = manifest(
        json!([{ "name": "server", "lifecycle": { "preStop": { "sleep": { "seconds": 90 } } } }]),
    );
    let out = assert_idempotent_deployment(&d, &cfg());
    let g = out
        .spec
        .template
        .spec
        .unwrap()
        .termination_grace_period_seconds
        .unwrap();
    assert_eq!(g, 90 + SHUTDOWN_BUDGET_SECONDS);
}

#[test]
fn port_8080_is_added_beside_other_ports_and_named_once() {
    let d = manifest(
        json!([{ "name": "server", "ports": [{ "containerPort": 9090, "name": "http" }] }]),
    );
    let out = assert_idempotent_deployment(&d, &cfg());
    let ports = to_json(&out.spec.template.spec.unwrap().containers[0].ports);
    assert_eq!(
        ports,
        json!([{ "containerPort": 9090, "name": "http" }, { "containerPort": 8080, "protocol": "TCP" }])
    );
    let d = manifest(json!([{ "name": "server", "ports": [{ "containerPort": 8080 }] }]));
    let out = assert_idempotent_deployment(&d, &cfg());
    let ports = to_json(&out.spec.template.spec.unwrap().containers[0].ports);
    assert_eq!(ports, json!([{ "containerPort": 8080, "name": "http" }]));
}

#[test]
fn resources_never_request_more_than_the_limit() {
    let cases = [
        // request only, above the default limit: the limit follows the request
        (
            json!({ "requests": { "memory": "2Gi" } }),
            json!({ "requests": { "memory": "2Gi", "cpu": "100m" }, "limits": { "memory": "2Gi", "cpu": "1" } }),
        ),
        // request only, below: default limit
        (
            json!({ "requests": { "cpu": "200m" } }),
            json!({ "requests": { "cpu": "200m", "memory": "256Mi" }, "limits": { "cpu": "1", "memory": "1Gi" } }),
        ),
        // limit only: the API server defaults the request to it
        (
            json!({ "limits": { "memory": "128Mi" } }),
            json!({ "requests": { "cpu": "100m" }, "limits": { "memory": "128Mi", "cpu": "1" } }),
        ),
    ];
    for (given, want) in cases {
        let d = manifest(json!([{ "name": "server", "resources": given }]));
        let out = assert_idempotent_deployment(&d, &cfg());
        let got = to_json(&out.spec.template.spec.unwrap().containers[0].resources);
        assert_eq!(got, want, "{given}");
    }
}

#[test]
fn hostname_that_is_no_label_value_goes_to_an_annotation() {
    let long = format!("{}.example.com", "x".repeat(30));
    let c = Config::from_lookup(|k| match k {
        "IMAGE_REGISTRY" => Some(REG.into()),
        "DEPLOYMENT_DOMAIN" => Some(long.clone()),
        _ => None,
    });
    let out = assert_idempotent_deployment(&render_deployment(&project(), &hash()), &c);
    let host = format!("{P}.{long}");
    assert!(host.len() > 63);
    for meta in [&out.metadata, out.spec.template.metadata.as_ref().unwrap()] {
        assert!(!meta.labels.as_ref().unwrap().contains_key("hostname"));
        assert_eq!(
            meta.annotations.as_ref().unwrap()[ANNOTATION_HOSTNAME],
            host
        );
        assert_eq!(meta.labels.as_ref().unwrap()["deployment"], P);
    }
}

#[test]
fn empty_selector_is_filled_and_spec_created() {
    let d = deployment(json!({
        "metadata": { "name": P, "labels": { LABEL_PROJECT: P }, "annotations": { ANNOTATION_INSTANCE: format!("instance-{H}") } },
        "spec": { "selector": {}, "template": { "spec": { "containers": [{ "name": "server" }] } } }
    }));
    let out = assert_idempotent_deployment(&d, &cfg());
    let spec = out.spec;
    assert_eq!(
        to_json(&spec.selector),
        json!({ "matchLabels": { "app": P } })
    );
    assert_eq!(spec.template.metadata.unwrap().labels.unwrap()["app"], P);
}

#[test]
fn deployment_defaulting_is_idempotent_over_many_shapes() {
    let shapes = [
        json!([{ "name": "server" }]),
        json!([{ "name": "a", "image": "busybox" }, { "name": "b", "image": "jockey:auto" }]),
        json!([{ "name": "s", "ports": [{ "containerPort": 8080, "name": "x" }, { "containerPort": 1, "name": "http" }] }]),
        json!([{ "name": "s", "volumeMounts": [{ "name": INSTANCE_VOLUME, "mountPath": "/elsewhere" }] }]),
        json!([{ "name": "s", "resources": { "requests": { "cpu": "bogus" } } }]),
        json!([]),
    ];
    for s in shapes {
        assert_idempotent_deployment(&manifest(s), &cfg());
    }
}

// --- Service ---------------------------------------------------------------------------------

#[test]
fn rendered_service_gets_every_default() {
    let s = default_service(&render_service(&project()), &cfg()).unwrap();
    assert_eq!(
        to_json(&s),
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {
                "name": format!("svc-{P}"), "labels": { LABEL_PROJECT: P },
                "annotations": {
                    "alb.ingress.kubernetes.io/tags": format!("deployment={P},hostname={P}.deploy.agentops.ai"),
                }
            },
            "spec": {
                "type": "ClusterIP",
                "ports": [{ "name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP" }],
                "selector": { "app": P }
            }
        })
    );
    let again = default_service(&s, &cfg()).unwrap();
    assert!(patch_between(&s, &again).0.is_empty());
}

#[test]
fn service_target_port_defaulted_by_the_server_is_corrected() {
    // `ports: [{port: 80}]` arrives at admission as targetPort 80.
    let s: Service = serde_json::from_value(json!({
        "metadata": { "name": "svc", "labels": { LABEL_PROJECT: P } },
        "spec": { "type": "ClusterIP", "ports": [{ "port": 80, "targetPort": 80, "protocol": "TCP" }] }
    }))
    .unwrap();
    let out = default_service(&s, &cfg()).unwrap();
    let v = to_json(&out);
    assert_eq!(
        v["spec"]["ports"],
        json!([{ "name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP" }])
    );
    assert!(
        patch_between(&out, &default_service(&out, &cfg()).unwrap())
            .0
            .is_empty()
    );
}

#[test]
fn service_user_values_kept() {
    let s: Service = serde_json::from_value(json!({
        "metadata": { "name": "svc", "labels": { LABEL_PROJECT: P } },
        "spec": {
            "type": "LoadBalancer",
            "ports": [{ "name": "web", "port": 80, "targetPort": "http" }, { "name": "m", "port": 9090 }],
            "selector": { "tier": "agent" }
        }
    }))
    .unwrap();
    let out = default_service(&s, &cfg()).unwrap();
    // LoadBalancer is refused by validation, not silently rewritten; only the tags are added.
    let mut expected = to_json(&s);
    expected["metadata"]["annotations"] = json!({
        "alb.ingress.kubernetes.io/tags": format!("deployment={P},hostname={P}.deploy.agentops.ai")
    });
    assert_eq!(to_json(&out), expected);
}

#[test]
fn service_tags_keep_the_users_and_add_the_missing_project_keys() {
    let s: Service = serde_json::from_value(json!({
        "metadata": {
            "name": "svc", "labels": { LABEL_PROJECT: P },
            "annotations": { "alb.ingress.kubernetes.io/tags": "team=a, deployment=mine," }
        }
    }))
    .unwrap();
    let out = default_service(&s, &cfg()).unwrap();
    assert_eq!(
        out.metadata.annotations.as_ref().unwrap()[ALB_TAGS],
        format!("team=a, deployment=mine,hostname={P}.deploy.agentops.ai")
    );
    assert!(
        patch_between(&out, &default_service(&out, &cfg()).unwrap())
            .0
            .is_empty()
    );
}

#[test]
fn service_port_80_is_added_beside_others_and_all_are_named() {
    let s: Service = serde_json::from_value(json!({
        "metadata": { "name": "svc", "labels": { LABEL_PROJECT: P } },
        "spec": { "ports": [{ "port": 9090 }] }
    }))
    .unwrap();
    let out = default_service(&s, &cfg()).unwrap();
    assert_eq!(
        to_json(&out)["spec"]["ports"],
        json!([{ "name": "port-9090", "port": 9090 }, { "name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP" }])
    );
    assert!(
        patch_between(&out, &default_service(&out, &cfg()).unwrap())
            .0
            .is_empty()
    );
}

#[test]
fn unlabelled_service_is_an_error() {
    let s: Service =
        serde_json::from_value(json!({ "metadata": { "name": "x", "namespace": "n" } })).unwrap();
    let msg = default_service(&s, &cfg()).unwrap_err().to_string();
    assert!(msg.starts_with("Service n/x:"), "{msg}");
}

// --- Ingress ---------------------------------------------------------------------------------

#[test]
fn rendered_ingress_gets_every_default() {
    let c = Config::from_lookup(|k| match k {
        "ALB_CERTIFICATE_ARN" => Some("arn:aws:acm:us-east-1:1:certificate/x".into()),
        _ => None,
    });
    let i = default_ingress(&render_ingress(&project()), &c, "alb-deployments-2").unwrap();
    let host = format!("{P}.deploy.agentops.ai");
    assert_eq!(
        to_json(&i),
        json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {
                "name": format!("ing-{P}"),
                "labels": { LABEL_PROJECT: P },
                "annotations": {
                    "alb.ingress.kubernetes.io/scheme": "internet-facing",
                    "alb.ingress.kubernetes.io/target-type": "ip",
                    "alb.ingress.kubernetes.io/listen-ports": "[{\"HTTP\": 80}, {\"HTTPS\": 443}]",
                    "alb.ingress.kubernetes.io/ssl-redirect": "443",
                    "alb.ingress.kubernetes.io/group.name": "alb-deployments-2",
                    "alb.ingress.kubernetes.io/healthcheck-path": "/health",
                    "alb.ingress.kubernetes.io/success-codes": "200",
                    "alb.ingress.kubernetes.io/target-group-attributes": "deregistration_delay.timeout_seconds=30",
                    "alb.ingress.kubernetes.io/certificate-arn": "arn:aws:acm:us-east-1:1:certificate/x",
                }
            },
            "spec": {
                "ingressClassName": "alb",
                "rules": [{
                    "host": host,
                    "http": { "paths": [{
                        "path": "/", "pathType": "Prefix",
                        "backend": { "service": { "name": format!("svc-{P}"), "port": { "number": 80 } } }
                    }] }
                }]
            }
        })
    );
    assert!(
        patch_between(&i, &default_ingress(&i, &c, "other").unwrap())
            .0
            .is_empty()
    );
}

#[test]
fn ingress_without_certificate_has_no_certificate_annotation() {
    let i = default_ingress(&render_ingress(&project()), &Config::default(), "g").unwrap();
    assert!(
        !i.metadata
            .annotations
            .unwrap()
            .contains_key(ALB_CERTIFICATE_ARN)
    );
}

#[test]
fn ingress_user_values_kept_and_old_project_tags_dropped() {
    let i: Ingress = serde_json::from_value(json!({
        "metadata": {
            "name": "ing", "labels": { LABEL_PROJECT: P },
            "annotations": {
                "kubernetes.io/ingress.class": "alb",
                "alb.ingress.kubernetes.io/healthcheck-path": "/ready",
                "alb.ingress.kubernetes.io/group.name": "custom",
                "alb.ingress.kubernetes.io/tags": format!("team=a, deployment={P},hostname={P}.deploy.agentops.ai,")
            }
        },
        "spec": { "rules": [{ "host": "x.deploy.agentops.ai" }] }
    }))
    .unwrap();
    let out = default_ingress(&i, &cfg(), "alb-deployments").unwrap();
    let a = out.metadata.annotations.as_ref().unwrap();
    assert_eq!(a[ALB_HEALTHCHECK_PATH], "/ready");
    assert_eq!(a[ALB_GROUP_NAME], "custom");
    // The per-project entries jockey once wrote move to the Service; the user's stay.
    assert_eq!(a[ALB_TAGS], "team=a");
    let spec = out.spec.as_ref().unwrap();
    // The legacy class annotation and ingressClassName together are refused by the API server.
    assert_eq!(spec.ingress_class_name, None);
    assert_eq!(
        to_json(&spec.rules),
        json!([{ "host": "x.deploy.agentops.ai" }])
    );
    assert!(
        patch_between(&out, &default_ingress(&out, &cfg(), "g").unwrap())
            .0
            .is_empty()
    );
}

#[test]
fn ingress_project_tags_of_another_value_are_the_users_and_stay() {
    let i: Ingress = serde_json::from_value(json!({
        "metadata": {
            "name": "ing", "labels": { LABEL_PROJECT: P },
            "annotations": { "alb.ingress.kubernetes.io/tags": "deployment=mine" }
        }
    }))
    .unwrap();
    let out = default_ingress(&i, &cfg(), "g").unwrap();
    assert_eq!(
        out.metadata.annotations.as_ref().unwrap()[ALB_TAGS],
        "deployment=mine"
    );
}

#[test]
fn ingress_with_only_the_old_project_tags_loses_the_annotation() {
    let i: Ingress = serde_json::from_value(json!({
        "metadata": {
            "name": "ing", "labels": { LABEL_PROJECT: P },
            "annotations": {
                "alb.ingress.kubernetes.io/tags": format!("deployment={P},hostname={P}.deploy.agentops.ai")
            }
        }
    }))
    .unwrap();
    let out = default_ingress(&i, &cfg(), "g").unwrap();
    assert!(
        !out.metadata
            .annotations
            .as_ref()
            .unwrap()
            .contains_key(ALB_TAGS)
    );
}

#[test]
fn ingress_with_default_backend_gets_no_rule() {
    let i: Ingress = serde_json::from_value(json!({
        "metadata": { "name": "ing", "labels": { LABEL_PROJECT: P } },
        "spec": { "defaultBackend": { "service": { "name": "s", "port": { "number": 80 } } } }
    }))
    .unwrap();
    let out = default_ingress(&i, &cfg(), "g").unwrap();
    assert!(out.spec.unwrap().rules.is_none());
}

#[test]
fn tags_parse() {
    assert_eq!(
        parse_tags(" a=1, b = 2 ,,c"),
        vec![
            ("a".into(), "1".into()),
            ("b".into(), "2".into()),
            ("c".into(), "".into())
        ]
    );
}

// --- misc ------------------------------------------------------------------------------------

#[test]
fn quantities() {
    assert_eq!(parse_quantity("100m"), Some(0.1));
    assert_eq!(parse_quantity("1"), Some(1.0));
    assert_eq!(parse_quantity("1Gi"), Some(1073741824.0));
    assert_eq!(parse_quantity("1G"), Some(1e9));
    assert_eq!(parse_quantity("1.5Ki"), Some(1536.0));
    assert_eq!(parse_quantity("1e3"), Some(1000.0));
    assert_eq!(parse_quantity("bogus"), None);
    assert_eq!(parse_quantity("1Zi"), None);
    assert!(parse_quantity("2Gi") > parse_quantity("1Gi"));
    assert!(parse_quantity("1Gi") > parse_quantity("1G"));
    assert_eq!(parse_quantity(" 512Mi "), Some(536870912.0));
    assert_eq!(parse_quantity("1n"), Some(1e-9));
    assert_eq!(parse_quantity("-1"), Some(-1.0));
    // Forms the library would read but the API server refuses.
    for refused in [
        "Mi", "m", "", "1e3Ki", "2GB", "1.2.3", "5 Gi", "inf", "NaN", "1e",
    ] {
        assert_eq!(parse_quantity(refused), None, "{refused}");
    }
    // Values far beyond any node still compare, without overflowing.
    let huge = parse_quantity("99999999999999999999999Pi");
    assert!(huge > parse_quantity("1Gi"), "{huge:?}");
}

#[test]
fn builder_images() {
    let p = project();
    let c = cfg();
    assert!(is_builder_image(&image(H), &p, &c));
    assert!(is_builder_image(&format!("r.io/hosting/{P}:v1"), &p, &c));
    assert!(!is_builder_image(&format!("hosting/{P}:v1"), &p, &c));
    assert!(!is_builder_image("nginx:1", &p, &c));
    assert!(!is_builder_image(&format!("r.io/hosting/{P}x:v1"), &p, &c));
    assert!(!is_builder_image(
        &format!("r.io/hosting/{P}@sha256:00"),
        &p,
        &c
    ));
    assert!(!is_builder_image(&format!("r.io/hosting/{P}"), &p, &c));
}

#[test]
fn patch_between_describes_the_difference() {
    let before = render_service(&project());
    let after = default_service(&before, &cfg()).unwrap();
    let patch = patch_between(&before, &after);
    let mut v = to_json(&before);
    json_patch::patch(&mut v, &patch).unwrap();
    assert_eq!(v, to_json(&after));
}

// ---------------------------------------------------------------------------------------------
// The built-in template: a dependency image, the files unpacked at pod start.
// ---------------------------------------------------------------------------------------------

const D: &str = "d-fedcba9876543210";
const H2: &str = "1111111111111111";

fn record(h: &str, tag: &str) -> k8s_openapi::api::core::v1::ConfigMap {
    serde_json::from_value(json!({
        "metadata": {
            "name": format!("instance-{h}"),
            "annotations": { crate::names::ANNOTATION_IMAGE: image(tag) }
        }
    }))
    .unwrap()
}

fn pod_of(d: &Deployment) -> &PodSpec {
    d.spec.template.spec.as_ref().unwrap()
}

fn wrapper() -> Vec<String> {
    vec!["python".into(), "-c".into(), UNPACK_AND_EXEC.into()]
}

fn default_args() -> Option<Vec<String>> {
    Some(vec!["python".into(), "server.py".into()])
}

#[test]
fn a_recorded_dependency_image_runs_the_instance_unpacked_by_the_agents_own_command() {
    let records = vec![record(H, D)];
    let minimal = render_deployment(&project(), &hash());
    let d = default_deployment_with(&minimal, &cfg(), &records).unwrap();
    let pod = pod_of(&d);
    let server = &pod.containers[0];
    assert_eq!(server.image.as_deref(), Some(image(D).as_str()));
    // The emptyDir at /app, before the instance's (read-only) mount below it.
    let mounts = server.volume_mounts.as_ref().unwrap();
    assert_eq!(mounts[0].name, APP_VOLUME);
    assert_eq!(mounts[0].mount_path, APP_PATH);
    assert!(
        mounts
            .iter()
            .any(|m| m.name == INSTANCE_VOLUME && m.read_only == Some(true))
    );
    let volumes = pod.volumes.as_ref().unwrap();
    assert!(
        volumes
            .iter()
            .any(|v| v.name == APP_VOLUME && v.empty_dir.is_some())
    );
    assert!(volumes.iter().any(|v| v.name == INSTANCE_VOLUME));
    // No init container: the agent's command unpacks, then runs the template's CMD, spelled out.
    assert!(pod.init_containers.is_none(), "{:?}", pod.init_containers);
    assert_eq!(server.command, Some(wrapper()));
    assert_eq!(server.args, default_args());
    assert_eq!(
        server.termination_message_policy.as_deref(),
        Some("FallbackToLogsOnError")
    );
    // Idempotent: the webhook's re-invocation patches nothing (the wrapper is not wrapped again).
    let again = default_deployment_with(&d, &cfg(), &records).unwrap();
    assert_eq!(to_json(&again), to_json(&d));
    // As stored: the API server defaulted the policy to `File` before admission; same result.
    let mut stored = d.clone();
    stored.spec.template.spec.as_mut().unwrap().containers[0].termination_message_policy =
        Some("File".into());
    let again = default_deployment_with(&stored, &cfg(), &records).unwrap();
    assert_eq!(to_json(&again), to_json(&d));
    // Without a record the instance names the image, and nothing is unpacked.
    let plain = default_deployment(&minimal, &cfg()).unwrap();
    let pp = pod_of(&plain);
    assert_eq!(pp.containers[0].image.as_deref(), Some(image(H).as_str()));
    assert!(pp.init_containers.is_none());
    assert_eq!(pp.containers[0].command, None);
    assert_eq!(pp.containers[0].args, None);
}

#[test]
fn the_wrapper_unpacks_as_the_init_container_did_then_execs_the_args() {
    // The same tar, the same filter, the same target: every line of the init container's script
    // but its import (the wrapper imports more).
    assert!(UNPACK_AND_EXEC.starts_with("import os, sys, tarfile\n"));
    for line in UNPACK_SCRIPT.lines().filter(|l| !l.starts_with("import ")) {
        assert!(
            UNPACK_AND_EXEC.lines().any(|l| l.trim() == line),
            "{line:?} not in the wrapper"
        );
    }
    assert!(UNPACK_AND_EXEC.contains("os.execvp(argv[0], argv)"));
    assert!(UNPACK_AND_EXEC.contains("sys.argv[1:] or ['python', 'server.py']"));
    assert!(is_unpack_wrapper(&wrapper()));
    let mut longer = wrapper();
    longer.push("x".into());
    assert!(is_unpack_wrapper(&longer));
    let mut other = wrapper();
    other[2].push(' ');
    assert!(!is_unpack_wrapper(&other));
    assert!(!is_unpack_wrapper(&wrapper()[..2]));
}

#[test]
fn a_users_args_run_behind_the_wrapper() {
    let records = vec![record(H, D)];
    let m = manifest(json!([{ "name": "server", "image": "jockey:auto",
        "args": ["python", "-m", "agent", "--port", "8080"] }]));
    let d = default_deployment_with(&m, &cfg(), &records).unwrap();
    let c = &pod_of(&d).containers[0];
    assert_eq!(c.command, Some(wrapper()));
    assert_eq!(
        c.args,
        Some(vec![
            "python".into(),
            "-m".into(),
            "agent".into(),
            "--port".into(),
            "8080".into()
        ])
    );
    assert!(pod_of(&d).init_containers.is_none());
    let again = default_deployment_with(&d, &cfg(), &records).unwrap();
    assert_eq!(to_json(&again), to_json(&d));
}

#[test]
fn a_users_own_command_keeps_the_init_container() {
    let records = vec![record(H, D)];
    let m = manifest(json!([{ "name": "server", "image": "jockey:auto",
        "command": ["uvicorn"], "args": ["app:app", "--port", "8080"],
        "securityContext": { "runAsNonRoot": true, "runAsUser": 10001, "readOnlyRootFilesystem": true } }]));
    let d = default_deployment_with(&m, &cfg(), &records).unwrap();
    let pod = pod_of(&d);
    let server = &pod.containers[0];
    // The user's command runs unchanged.
    assert_eq!(server.command, Some(vec!["uvicorn".to_string()]));
    assert_eq!(
        server.args,
        Some(vec!["app:app".into(), "--port".into(), "8080".into()])
    );
    assert_eq!(server.termination_message_policy, None);
    // The init container: the same image, unpacking the instance's tar into /app, as the agent.
    let inits = pod.init_containers.as_ref().unwrap();
    assert_eq!(inits.len(), 1);
    let unpack = &inits[0];
    assert_eq!(unpack.name, UNPACK_CONTAINER);
    assert_eq!(unpack.image, server.image);
    assert_eq!(
        unpack.command,
        Some(vec!["python".into(), "-c".into(), UNPACK_SCRIPT.into()])
    );
    assert_eq!(unpack.args, None);
    let um = unpack.volume_mounts.as_ref().unwrap();
    assert!(
        um.iter()
            .any(|m| m.name == APP_VOLUME && m.mount_path == APP_PATH)
    );
    assert!(
        um.iter()
            .any(|m| m.name == INSTANCE_VOLUME && m.read_only == Some(true))
    );
    assert_eq!(unpack.security_context, server.security_context);
    assert_eq!(
        unpack
            .security_context
            .as_ref()
            .unwrap()
            .read_only_root_filesystem,
        Some(true)
    );
    assert!(
        server.volume_mounts.as_ref().unwrap()[0].name == APP_VOLUME,
        "{server:?}"
    );
    let again = default_deployment_with(&d, &cfg(), &records).unwrap();
    assert_eq!(to_json(&again), to_json(&d));

    // The user sets a command on a wrapped agent: it replaces the wrapper, the init container
    // comes back.
    let wrapped = default_deployment_with(
        &manifest(json!([{ "name": "server", "image": "jockey:auto" }])),
        &cfg(),
        &records,
    )
    .unwrap();
    let mut overridden = wrapped.clone();
    overridden.spec.template.spec.as_mut().unwrap().containers[0].command =
        Some(vec!["uvicorn".into()]);
    let out = default_deployment_with(&overridden, &cfg(), &records).unwrap();
    assert_eq!(
        pod_of(&out).containers[0].command,
        Some(vec!["uvicorn".to_string()])
    );
    assert_eq!(
        pod_of(&out).init_containers.as_ref().unwrap()[0].name,
        UNPACK_CONTAINER
    );
}

#[test]
fn two_containers_on_the_dependency_image_keep_the_init_container() {
    // They share the unpacked files: neither may start before they are all there.
    let records = vec![record(H, D)];
    let m = manifest(json!([
        { "name": "server", "image": "jockey:auto" },
        { "name": "worker", "image": "jockey:auto", "args": ["python", "worker.py"] }
    ]));
    let d = default_deployment_with(&m, &cfg(), &records).unwrap();
    let pod = pod_of(&d);
    assert_eq!(
        pod.init_containers.as_ref().unwrap()[0].name,
        UNPACK_CONTAINER
    );
    for c in &pod.containers {
        assert_eq!(c.command, None, "{}", c.name);
        assert_eq!(c.volume_mounts.as_ref().unwrap()[0].name, APP_VOLUME);
    }
    let again = default_deployment_with(&d, &cfg(), &records).unwrap();
    assert_eq!(to_json(&again), to_json(&d));
}

#[test]
fn a_pod_rendered_with_the_init_container_moves_to_the_wrapper() {
    // What an earlier jockey stored: the init container, the agent without a command.
    let records = vec![record(H, D)];
    let now =
        default_deployment_with(&render_deployment(&project(), &hash()), &cfg(), &records).unwrap();
    let mut before = now.clone();
    let pod = before.spec.template.spec.as_mut().unwrap();
    let agent = &mut pod.containers[0];
    agent.command = None;
    agent.args = None;
    agent.termination_message_policy = Some("File".into());
    pod.init_containers = Some(vec![Container {
        name: UNPACK_CONTAINER.into(),
        image: agent.image.clone(),
        command: Some(vec!["python".into(), "-c".into(), UNPACK_SCRIPT.into()]),
        volume_mounts: Some(vec![
            VolumeMount {
                name: APP_VOLUME.into(),
                mount_path: APP_PATH.into(),
                ..Default::default()
            },
            VolumeMount {
                name: INSTANCE_VOLUME.into(),
                mount_path: INSTANCE_MOUNT_PATH.into(),
                read_only: Some(true),
                ..Default::default()
            },
        ]),
        ..Default::default()
    }]);
    let out =
        default_deployment_update_with(&before, Some(&before.clone()), &cfg(), &records).unwrap();
    assert_eq!(to_json(&out), to_json(&now));
    // A user's init container of its own stays.
    let mut theirs = before.clone();
    let inits = theirs
        .spec
        .template
        .spec
        .as_mut()
        .unwrap()
        .init_containers
        .as_mut()
        .unwrap();
    inits.push(Container {
        name: "migrate".into(),
        image: Some("busybox".into()),
        ..Default::default()
    });
    let out = default_deployment_with(&theirs, &cfg(), &records).unwrap();
    let names: Vec<_> = pod_of(&out)
        .init_containers
        .iter()
        .flatten()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(names, ["migrate"]);
    assert_eq!(pod_of(&out).containers[0].command, Some(wrapper()));
}

#[test]
fn moving_the_instance_moves_image_and_shape_together() {
    // Code-only change: a new instance recording the same dependency image; the annotation moved
    // (a client-side apply leaves the image as stored): everything follows.
    let records = vec![
        record(H, D),
        record(H2, D),
        record("2222222222222222", "2222222222222222"),
    ];
    let d =
        default_deployment_with(&render_deployment(&project(), &hash()), &cfg(), &records).unwrap();
    let mut moved = d.clone();
    moved
        .metadata
        .annotations
        .as_mut()
        .unwrap()
        .insert(ANNOTATION_INSTANCE.to_string(), format!("instance-{H2}"));
    let out = default_deployment_update_with(&moved, Some(&d), &cfg(), &records).unwrap();
    let pod = pod_of(&out);
    assert_eq!(pod.containers[0].image.as_deref(), Some(image(D).as_str()));
    let cm = |p: &PodSpec| {
        p.volumes
            .as_ref()
            .unwrap()
            .iter()
            .find(|v| v.name == INSTANCE_VOLUME)
            .unwrap()
            .config_map
            .clone()
            .unwrap()
            .name
    };
    assert_eq!(cm(pod), format!("instance-{H2}"));
    assert_eq!(pod.containers[0].command, Some(wrapper()));
    // To an instance with its own Dockerfile (recorded `:<h>`): the stale dependency image is
    // replaced, and the unpacking goes: the image's own entrypoint and CMD run.
    let mut own = out.clone();
    own.metadata.annotations.as_mut().unwrap().insert(
        ANNOTATION_INSTANCE.to_string(),
        "instance-2222222222222222".to_string(),
    );
    let out = default_deployment_update_with(&own, Some(&own.clone()), &cfg(), &records).unwrap();
    let pod = pod_of(&out);
    assert_eq!(
        pod.containers[0].image.as_deref(),
        Some(image("2222222222222222").as_str())
    );
    assert!(pod.init_containers.is_none());
    assert_eq!(pod.containers[0].command, None);
    assert_eq!(pod.containers[0].args, None);
    assert!(
        !pod.volumes
            .as_ref()
            .unwrap()
            .iter()
            .any(|v| v.name == APP_VOLUME)
    );
    assert!(
        !pod.containers[0]
            .volume_mounts
            .as_ref()
            .unwrap()
            .iter()
            .any(|m| m.name == APP_VOLUME)
    );
    // `kubectl rollout undo` restores the old template (volume instance-H): the annotation
    // follows it, and so does the shape.
    let undo = {
        let mut u = d.clone();
        u.metadata.annotations.as_mut().unwrap().insert(
            ANNOTATION_INSTANCE.to_string(),
            "instance-2222222222222222".to_string(),
        );
        u
    };
    let out = default_deployment_update_with(&undo, Some(&out), &cfg(), &records).unwrap();
    assert_eq!(
        out.metadata.annotations.as_ref().unwrap()[ANNOTATION_INSTANCE],
        format!("instance-{H}")
    );
    assert_eq!(
        pod_of(&out).containers[0].image.as_deref(),
        Some(image(D).as_str())
    );
    assert_eq!(pod_of(&out).containers[0].command, Some(wrapper()));
    assert_eq!(pod_of(&out).containers[0].args, default_args());
    assert_eq!(to_json(&out), to_json(&d));
}
