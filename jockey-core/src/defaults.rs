//! Defaulting of jockey-labelled objects: the one code path that both `kubectl jockey deploy`
//! (rendering what it applies) and `jockey-webhook` (`/mutate`) use, so that a plain
//! `kubectl apply -f` of a labelled manifest ends up exactly as `deploy` would have made it.
//!
//! Each `default_*` is idempotent: defaulting an already defaulted object returns it unchanged,
//! so the webhook's patch ([`patch_between`]) is empty on re-invocation.
//!
//! The rule throughout is "fill what is missing, keep what the user set". The API server defaults
//! many fields *before* mutating admission runs (e.g. `terminationGracePeriodSeconds: 30`,
//! a Service port's `targetPort` = `port`), so where such a server default is indistinguishable
//! from "unset" and would break the contract, it is treated as unset; each case says why.

use crate::image::{InstanceImages, NoRecords, is_dependency_image};
use crate::names::{
    ANNOTATION_HOSTNAME, ANNOTATION_INSTANCE, IMAGE_PLACEHOLDER, LABEL_APP, LABEL_CONTENT_HASH,
    LABEL_DEPLOYMENT, LABEL_HOSTNAME, LABEL_PROJECT, is_label_value, short_hash_of_configmap,
};
use crate::{Config, ContentHash, ProjectId};
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    ConfigMapVolumeSource, Container, ContainerPort, EnvFromSource, HTTPGetAction, Lifecycle,
    LifecycleHandler, PodSpec, PodTemplateSpec, Probe, ResourceRequirements, SecretEnvSource,
    Service, ServicePort, ServiceSpec, SleepAction, Volume, VolumeMount,
};
use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressRule,
    IngressServiceBackend, IngressSpec, ServiceBackendPort,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::BTreeMap;

pub use crate::contract::*;

// ---------------------------------------------------------------------------------------------
// Rendering: the minimal labelled objects `deploy` starts from.
// ---------------------------------------------------------------------------------------------

fn labelled_meta(name: String, project: &ProjectId) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        labels: Some(BTreeMap::from([(
            LABEL_PROJECT.to_string(),
            project.to_string(),
        )])),
        ..Default::default()
    }
}

/// The minimal labelled objects `deploy` starts from before defaulting: what a user would write
/// by hand in a manifest (project label, instance annotation, `jockey:auto` image).
pub fn render_deployment(project: &ProjectId, instance: &ContentHash) -> Deployment {
    let mut meta = labelled_meta(project.deployment_name(), project);
    meta.annotations = Some(BTreeMap::from([(
        ANNOTATION_INSTANCE.to_string(),
        instance.configmap_name(),
    )]));
    let app = BTreeMap::from([(LABEL_APP.to_string(), project.to_string())]);
    Deployment {
        metadata: meta,
        spec: DeploymentSpec {
            selector: LabelSelector {
                match_labels: Some(app.clone()),
                ..Default::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(app),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![Container {
                        name: CONTAINER_NAME.to_string(),
                        image: Some(IMAGE_PLACEHOLDER.to_string()),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
            },
            ..Default::default()
        },
        status: None,
    }
}

pub fn render_service(project: &ProjectId) -> Service {
    Service {
        metadata: labelled_meta(project.service_name(), project),
        spec: Some(ServiceSpec::default()),
        status: None,
    }
}

pub fn render_ingress(project: &ProjectId) -> Ingress {
    Ingress {
        metadata: labelled_meta(project.ingress_name(), project),
        spec: Some(IngressSpec::default()),
        status: None,
    }
}

// ---------------------------------------------------------------------------------------------
// Shared helpers.
// ---------------------------------------------------------------------------------------------

/// The project an object is labelled with; an error naming the label and the fix otherwise.
pub fn project_of(kind: &str, meta: &ObjectMeta) -> Result<ProjectId, DefaultError> {
    let object = describe(kind, meta);
    let value = meta
        .labels
        .as_ref()
        .and_then(|l| l.get(LABEL_PROJECT))
        .ok_or_else(|| DefaultError {
            object: object.clone(),
            cause: format!("label {LABEL_PROJECT} is missing"),
            fix: format!("label the object with {LABEL_PROJECT}: <project id>"),
        })?;
    ProjectId::parse(value).map_err(|e| DefaultError {
        object,
        cause: format!("label {LABEL_PROJECT}: {e}"),
        fix: format!("set the label {LABEL_PROJECT} to a valid project id"),
    })
}

/// The project's own host and whether it can be a label value.
fn host_of(project: &ProjectId, cfg: &Config) -> String {
    project.host(&cfg.deployment_domain)
}

fn set_if_absent(map: &mut BTreeMap<String, String>, key: &str, value: &str) {
    if !map.contains_key(key) {
        map.insert(key.to_string(), value.to_string());
    }
}

/// Labels `deployment`/`hostname` (or the hostname annotation where the host is not a valid
/// label value) and the project label, on the Deployment or its pod template.
fn routing_metadata(meta: &mut ObjectMeta, project: &ProjectId, host: &str, hash: Option<&str>) {
    let labels = meta.labels.get_or_insert_with(BTreeMap::new);
    set_if_absent(labels, LABEL_PROJECT, project.as_str());
    set_if_absent(labels, LABEL_DEPLOYMENT, project.as_str());
    if is_label_value(host) {
        set_if_absent(labels, LABEL_HOSTNAME, host);
    } else {
        let annotations = meta.annotations.get_or_insert_with(BTreeMap::new);
        set_if_absent(annotations, ANNOTATION_HOSTNAME, host);
    }
    if let Some(h) = hash {
        // Derived from the instance annotation and always kept in step with it: it says which
        // instance the object runs, so `status`/`rollback` can select by it.
        let labels = meta.labels.get_or_insert_with(BTreeMap::new);
        labels.insert(LABEL_CONTENT_HASH.to_string(), h.to_string());
    }
}

// ---------------------------------------------------------------------------------------------
// Deployment.
// ---------------------------------------------------------------------------------------------

/// Whether `image` is (a tag of) the builder's repository for `project`, under any registry:
/// `<anything>/<prefix>/PROJECT:<tag>`.
fn is_builder_image(image: &str, project: &ProjectId, cfg: &Config) -> bool {
    let Some((name, tag)) = image.rsplit_once(':') else {
        return false;
    };
    if tag.contains('/') || image.contains('@') {
        return false;
    }
    let repo = project.repository(&cfg.image_repository_prefix);
    name.strip_suffix(&repo)
        .is_some_and(|registry| registry.ends_with('/') && registry.len() > 1)
}

fn image_needs_filling(image: Option<&str>) -> bool {
    match image.map(str::trim) {
        None | Some("") => true,
        Some(i) => i == IMAGE_PLACEHOLDER,
    }
}

/// Indices of the agent containers: those whose image is to be filled in or is the builder's
/// image for this project; when there is none (a user-supplied image), the first container.
/// Only these get port, probes, preStop, resources and the instance mount, so a sidecar is never
/// given probes on a port it does not serve.
fn app_containers(containers: &[Container], project: &ProjectId, cfg: &Config) -> Vec<usize> {
    let found: Vec<usize> = containers
        .iter()
        .enumerate()
        .filter(|(_, c)| {
            image_needs_filling(c.image.as_deref())
                || c.image
                    .as_deref()
                    .is_some_and(|i| is_builder_image(i, project, cfg))
        })
        .map(|(i, _)| i)
        .collect();
    if found.is_empty() && !containers.is_empty() {
        vec![0]
    } else {
        found
    }
}

/// A Kubernetes quantity as a number (cores, bytes), parsed by `kube_quantity`, for comparing a
/// default with a user's value. `None` for anything the API server refuses (it rejects those
/// itself). Compared as f64: `ParsedQuantity`'s own ordering overflows (a panic) on values as
/// large as a user may write, and this runs on every admission request.
pub fn parse_quantity(q: &str) -> Option<f64> {
    let q = q.trim();
    // kube_quantity reads a suffix without a number ("Mi") as zero and takes an exponent
    // together with a suffix ("1e3Ki"); the API server's grammar has neither.
    let numberless = !q
        .trim_start_matches(['+', '-'])
        .starts_with(|c: char| c.is_ascii_digit() || c == '.');
    let exponent_and_suffix =
        q.contains(['e', 'E']) && q.ends_with(|c: char| c.is_ascii_alphabetic());
    if numberless || exponent_and_suffix {
        return None;
    }
    kube_quantity::ParsedQuantity::try_from(q)
        .ok()?
        .to_bytes_f64()
        .filter(|n| n.is_finite())
}

/// Default requests and limits, per resource, never producing a request above its limit.
fn default_resources(resources: &mut ResourceRequirements) {
    for ((name, request), (_, limit)) in DEFAULT_REQUESTS.iter().zip(DEFAULT_LIMITS.iter()) {
        let user_request = resources
            .requests
            .as_ref()
            .and_then(|r| r.get(*name))
            .cloned();
        let user_limit = resources
            .limits
            .as_ref()
            .and_then(|l| l.get(*name))
            .cloned();
        match (user_request, user_limit) {
            (None, None) => {
                resources
                    .requests
                    .get_or_insert_with(BTreeMap::new)
                    .insert(name.to_string(), Quantity(request.to_string()));
                resources
                    .limits
                    .get_or_insert_with(BTreeMap::new)
                    .insert(name.to_string(), Quantity(limit.to_string()));
            }
            // A limit alone: the API server defaults the request to the limit, so leave it.
            (None, Some(_)) => {}
            (Some(req), None) => {
                // Use the default limit unless the user asked for more than it.
                let value = match (parse_quantity(&req.0), parse_quantity(limit)) {
                    (Some(r), Some(l)) if r > l => req.0.clone(),
                    (Some(_), Some(_)) => limit.to_string(),
                    // Unparsable request: leave it to the API server's validation.
                    _ => continue,
                };
                resources
                    .limits
                    .get_or_insert_with(BTreeMap::new)
                    .insert(name.to_string(), Quantity(value));
            }
            (Some(_), Some(_)) => {}
        }
    }
}

fn default_probe(initial_delay: i32, period: i32, failure_threshold: i32) -> Probe {
    // Every field the API server would default is spelled out, so a rendered object and the
    // stored one are identical.
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(HEALTH_PATH.to_string()),
            port: IntOrString::Int(CONTAINER_PORT),
            scheme: Some("HTTP".to_string()),
            ..Default::default()
        }),
        // 0 is the API server's own default, which it stores as absent.
        initial_delay_seconds: (initial_delay != 0).then_some(initial_delay),
        period_seconds: Some(period),
        timeout_seconds: Some(2),
        success_threshold: Some(1),
        failure_threshold: Some(failure_threshold),
        ..Default::default()
    }
}

fn default_app_container(c: &mut Container, mount_instance: bool, secret_name: &str) {
    // The project's secret environment (Secret env-PROJECT, `kubectl jockey secrets`); optional,
    // so a project without secrets starts.
    let env_from = c.env_from.get_or_insert_with(Vec::new);
    if !env_from
        .iter()
        .any(|e| e.secret_ref.as_ref().is_some_and(|s| s.name == secret_name))
    {
        env_from.push(EnvFromSource {
            secret_ref: Some(SecretEnvSource {
                name: secret_name.to_string(),
                optional: Some(true),
            }),
            ..Default::default()
        });
    }

    // Port 8080 named http (the name only when no other port already uses it).
    let ports = c.ports.get_or_insert_with(Vec::new);
    let http_taken = ports
        .iter()
        .any(|p| p.name.as_deref() == Some(CONTAINER_PORT_NAME));
    match ports
        .iter_mut()
        .find(|p| p.container_port == CONTAINER_PORT)
    {
        Some(p) => {
            if p.name.is_none() && !http_taken {
                p.name = Some(CONTAINER_PORT_NAME.to_string());
            }
        }
        None => ports.push(ContainerPort {
            container_port: CONTAINER_PORT,
            name: (!http_taken).then(|| CONTAINER_PORT_NAME.to_string()),
            protocol: Some("TCP".to_string()),
            ..Default::default()
        }),
    }

    if c.readiness_probe.is_none() {
        // Ready as soon as the agent listens: probed every second from the start, so a rollout
        // (a code-only change above all) waits for the server, not for the probe's schedule;
        // ten failures in a row (as long as the old 3 x 5 s) before it leaves the Service.
        c.readiness_probe = Some(default_probe(0, 1, 10));
    }
    if c.liveness_probe.is_none() {
        // Generous: an agent server imports heavy libraries at start, and a liveness kill
        // during start-up would loop forever.
        c.liveness_probe = Some(default_probe(15, 10, 6));
    }

    let lifecycle = c.lifecycle.get_or_insert_with(Lifecycle::default);
    if lifecycle.pre_stop.is_none() {
        // The sleep action needs no shell or `sleep` binary in the image (distroless works).
        lifecycle.pre_stop = Some(LifecycleHandler {
            sleep: Some(SleepAction {
                seconds: PRESTOP_SLEEP_SECONDS,
            }),
            ..Default::default()
        });
    }

    default_resources(c.resources.get_or_insert_with(Default::default));

    if mount_instance {
        let mounts = c.volume_mounts.get_or_insert_with(Vec::new);
        if !mounts.iter().any(|m| {
            m.mount_path.trim_end_matches('/') == INSTANCE_MOUNT_PATH || m.name == INSTANCE_VOLUME
        }) {
            mounts.push(VolumeMount {
                name: INSTANCE_VOLUME.to_string(),
                mount_path: INSTANCE_MOUNT_PATH.to_string(),
                read_only: Some(true),
                ..Default::default()
            });
        }
    }
}

/// [`default_deployment`] for an UPDATE from `old` (the stored object): the instance annotation,
/// the builder image and the instance volume move together, to whichever of them the update
/// changed (`kubectl set image`, `kubectl rollout undo`, an applied annotation). See
/// [`instance`].
pub fn default_deployment_update(
    obj: &Deployment,
    old: Option<&Deployment>,
    cfg: &Config,
) -> Result<Deployment, DefaultError> {
    default_deployment_update_with(obj, old, cfg, &NoRecords)
}

/// [`default_deployment_update`] knowing the images recorded on the instance ConfigMaps.
pub fn default_deployment_update_with(
    obj: &Deployment,
    old: Option<&Deployment>,
    cfg: &Config,
    images: &dyn InstanceImages,
) -> Result<Deployment, DefaultError> {
    let Some(old) = old else {
        return default_deployment_with(obj, cfg, images);
    };
    match instance::moved_to(obj, old, cfg)? {
        Some(hash) => {
            let mut moved = obj.clone();
            moved
                .metadata
                .annotations
                .get_or_insert_with(BTreeMap::new)
                .insert(ANNOTATION_INSTANCE.to_string(), format!("instance-{hash}"));
            default_deployment_with(&moved, cfg, images)
        }
        None => default_deployment_with(obj, cfg, images),
    }
}

/// [`default_deployment_with`] when no image is recorded for any instance: the builder image is
/// the one named by the instance (`:<h>`).
pub fn default_deployment(obj: &Deployment, cfg: &Config) -> Result<Deployment, DefaultError> {
    default_deployment_with(obj, cfg, &NoRecords)
}

/// Fills in the instance volume, builder image, routing labels, port, probes, preStop and
/// resources. Values the user set on purpose are kept. The builder image is the one recorded on
/// the instance ConfigMap for this project (`images`), else the one its content names
/// (`<registry>/<prefix>/PROJECT:<h>`); a dependency image (the built-in template, `:d-...`)
/// gets the files of the instance unpacked at pod start ([`default_unpack`]).
pub fn default_deployment_with(
    obj: &Deployment,
    cfg: &Config,
    images: &dyn InstanceImages,
) -> Result<Deployment, DefaultError> {
    let kind = "Deployment";
    let object = describe(kind, &obj.metadata);
    let project = project_of(kind, &obj.metadata)?;
    let host = host_of(&project, cfg);
    let mut out = obj.clone();

    // The instance, from the annotation; a malformed value is an error (not silently ignored),
    // because the pod would otherwise start without its files.
    let instance_cm = obj
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(ANNOTATION_INSTANCE))
        .cloned();
    let hash = match &instance_cm {
        Some(cm) => Some(
            short_hash_of_configmap(cm)
                .ok_or_else(|| DefaultError {
                    object: object.clone(),
                    cause: format!(
                        "annotation {ANNOTATION_INSTANCE} is {cm:?}, not the name of an instance ConfigMap"
                    ),
                    fix: format!(
                        "set {ANNOTATION_INSTANCE} to instance-<h> (16 lowercase hex digits), as `kubectl jockey deploy` prints it"
                    ),
                })?
                .to_string(),
        ),
        None => None,
    };

    routing_metadata(&mut out.metadata, &project, &host, hash.as_deref());

    let spec = &mut out.spec;
    let app = BTreeMap::from([(LABEL_APP.to_string(), project.to_string())]);
    // The selector is immutable once created, so only an empty one is filled.
    let selector_empty = spec
        .selector
        .match_labels
        .as_ref()
        .is_none_or(|m| m.is_empty())
        && spec
            .selector
            .match_expressions
            .as_ref()
            .is_none_or(|e| e.is_empty());
    if selector_empty {
        spec.selector.match_labels = Some(app.clone());
    }

    let template_meta = spec.template.metadata.get_or_insert_with(Default::default);
    set_if_absent(
        template_meta.labels.get_or_insert_with(BTreeMap::new),
        LABEL_APP,
        project.as_str(),
    );
    routing_metadata(template_meta, &project, &host, hash.as_deref());

    let pod = spec.template.spec.get_or_insert_with(Default::default);
    let apps = app_containers(&pod.containers, &project, cfg);

    // Images: fill the empty/placeholder ones; re-point a builder image of this project to the
    // annotated instance (on an update, [`default_deployment_update`] has first moved the
    // annotation to whichever of the three places the user changed).
    // The image the annotated instance runs: recorded on its ConfigMap (the build broker's
    // answer), else named by its content.
    let wanted = hash.as_ref().and_then(|h| {
        images
            .recorded(&crate::names::instance_configmap_name(h), &project)
            .filter(|i| is_builder_image(i, &project, cfg))
            .or_else(|| {
                cfg.image_registry.as_ref().map(|registry| {
                    format!(
                        "{}/{}:{h}",
                        registry.trim_end_matches('/'),
                        project.repository(&cfg.image_repository_prefix)
                    )
                })
            })
    });
    for &i in &apps {
        let c = &mut pod.containers[i];
        let needs_fill = image_needs_filling(c.image.as_deref());
        // A builder image of this project that is not the instance's: jockey's own choice from
        // an earlier instance (an apply that moved only the annotation leaves it behind).
        let stale_builder = match (&hash, c.image.as_deref(), &wanted) {
            (Some(h), Some(image), Some(w)) => {
                image != w
                    && (instance::builder_hash(image, &project, cfg).is_some_and(|tag| tag != h)
                        || (is_dependency_image(image) && is_builder_image(image, &project, cfg)))
            }
            _ => false,
        };
        if !(needs_fill || stale_builder) {
            continue;
        }
        if hash.is_none() {
            return Err(DefaultError {
                object: format!("{object} container {:?}", c.name),
                cause: format!(
                    "the image is {:?} (\"the builder's image\") but annotation {ANNOTATION_INSTANCE} is missing, so there is no instance to take it from",
                    c.image.as_deref().unwrap_or("")
                ),
                fix: format!(
                    "add the annotation {ANNOTATION_INSTANCE}: instance-<h> (as `kubectl jockey deploy` prints it), or set the container's image explicitly"
                ),
            });
        }
        let Some(image) = &wanted else {
            return Err(DefaultError {
                object: format!("{object} container {:?}", c.name),
                cause: format!(
                    "the image is {:?} and must be filled with the builder's image, but IMAGE_REGISTRY is not configured",
                    c.image.as_deref().unwrap_or("")
                ),
                fix: "set IMAGE_REGISTRY (e.g. 123456789012.dkr.ecr.us-east-1.amazonaws.com) in the environment of kubectl-jockey and jockey-webhook, or set the container's image explicitly".to_string(),
            });
        };
        c.image = Some(image.clone());
    }

    let instance_for_mount = instance_cm.as_deref().filter(|_| hash.is_some());
    for &i in &apps {
        default_app_container(
            &mut pod.containers[i],
            instance_for_mount.is_some(),
            &project.secret_name(),
        );
    }

    // The instance volume: ours (by name) follows the annotation; a user's volume mounted at the
    // path instead is left alone.
    if let Some(cm) = instance_for_mount {
        let volumes = pod.volumes.get_or_insert_with(Vec::new);
        match volumes.iter_mut().find(|v| v.name == INSTANCE_VOLUME) {
            Some(v) => {
                if let Some(src) = v.config_map.as_mut() {
                    src.name = cm.to_string();
                }
            }
            None => {
                let mounted = pod
                    .containers
                    .iter()
                    .flat_map(|c| c.volume_mounts.iter().flatten())
                    .any(|m| m.name == INSTANCE_VOLUME);
                if mounted {
                    volumes.push(Volume {
                        name: INSTANCE_VOLUME.to_string(),
                        config_map: Some(ConfigMapVolumeSource {
                            name: cm.to_string(),
                            // The API server's default, spelled out for identical renderings.
                            default_mode: Some(0o644),
                            ..Default::default()
                        }),
                        ..Default::default()
                    });
                }
            }
        }
    }

    unpack::default_unpack(pod, &apps, instance_for_mount.is_some());

    // terminationGracePeriodSeconds must outlast the preStop pause plus a shutdown budget, or the
    // kubelet kills the server mid-drain. The API server defaults it to 30 before admission, so
    // "unset" cannot be told apart from 30: raise anything shorter than needed.
    let longest_sleep = apps
        .iter()
        .filter_map(|&i| {
            pod.containers[i]
                .lifecycle
                .as_ref()?
                .pre_stop
                .as_ref()?
                .sleep
                .as_ref()
                .map(|s| s.seconds)
        })
        .max();
    if let Some(sleep) = longest_sleep {
        let needed = sleep + SHUTDOWN_BUDGET_SECONDS;
        if pod
            .termination_grace_period_seconds
            .is_none_or(|g| g < needed)
        {
            pod.termination_grace_period_seconds = Some(needed);
        }
    }

    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Service.
// ---------------------------------------------------------------------------------------------

pub fn default_service(obj: &Service, cfg: &Config) -> Result<Service, DefaultError> {
    let project = project_of("Service", &obj.metadata)?;
    let mut out = obj.clone();
    // The controller puts a backend Service's tags on that project's target group only, so the
    // per-project tags live here (on an Ingress they would be merged across the whole group).
    let annotations = out.metadata.annotations.get_or_insert_with(BTreeMap::new);
    add_project_tags(annotations, &project, cfg);
    let spec = out.spec.get_or_insert_with(Default::default);
    // LoadBalancer/NodePort are left for validation to refuse with a message, not rewritten.
    if spec.type_.is_none() {
        spec.type_ = Some("ClusterIP".to_string());
    }
    let ports = spec.ports.get_or_insert_with(Vec::new);
    let single_port = ports.len() == 1;
    match ports.iter_mut().find(|p| p.port == SERVICE_PORT) {
        Some(p) => {
            // The API server defaults an omitted targetPort to the port itself (80), which is
            // never what an agent server listens on: treat 80 as unset.
            if p.target_port.is_none() || p.target_port == Some(IntOrString::Int(SERVICE_PORT)) {
                p.target_port = Some(IntOrString::Int(CONTAINER_PORT));
            }
            if p.name.is_none() && single_port {
                p.name = Some(CONTAINER_PORT_NAME.to_string());
            }
        }
        None => {
            let taken = ports
                .iter()
                .any(|p| p.name.as_deref() == Some(CONTAINER_PORT_NAME));
            ports.push(ServicePort {
                name: (!taken).then(|| CONTAINER_PORT_NAME.to_string()),
                port: SERVICE_PORT,
                target_port: Some(IntOrString::Int(CONTAINER_PORT)),
                protocol: Some("TCP".to_string()),
                ..Default::default()
            });
            // A multi-port Service needs every port named.
            if ports.len() > 1 && ports.iter().any(|p| p.name.is_none()) {
                for p in ports.iter_mut().filter(|p| p.name.is_none()) {
                    p.name = Some(format!("port-{}", p.port));
                }
            }
        }
    }
    let selector_empty = spec.selector.as_ref().is_none_or(|s| s.is_empty());
    if selector_empty {
        spec.selector = Some(BTreeMap::from([(
            LABEL_APP.to_string(),
            project.to_string(),
        )]));
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Ingress.
// ---------------------------------------------------------------------------------------------

/// Adds the per-project tags to a Service's `tags` annotation where their keys are missing; the
/// user's entries (a different value for one of these keys included) are kept as written.
fn add_project_tags(annotations: &mut BTreeMap<String, String>, project: &ProjectId, cfg: &Config) {
    let existing = annotations.get(ALB_TAGS).map(String::as_str).unwrap_or("");
    let tags = parse_tags(existing);
    let missing: Vec<String> = project_tags(project, cfg)
        .into_iter()
        .filter(|(key, _)| !tags.iter().any(|(k, _)| k == key))
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    if missing.is_empty() {
        return;
    }
    let base = existing.trim().trim_end_matches(',');
    let value = if base.is_empty() {
        missing.join(",")
    } else {
        format!("{base},{}", missing.join(","))
    };
    annotations.insert(ALB_TAGS.to_string(), value);
}

/// Removes the entries jockey itself once wrote on an Ingress (`deployment=PROJECT`,
/// `hostname=HOST` with exactly this project's values), and the annotation when nothing is left.
/// Anything else in it is the user's and stays.
fn drop_project_tags(
    annotations: &mut BTreeMap<String, String>,
    project: &ProjectId,
    cfg: &Config,
) {
    let Some(existing) = annotations.get(ALB_TAGS) else {
        return;
    };
    let ours = project_tags(project, cfg);
    let tags = parse_tags(existing);
    if !tags.iter().any(|t| ours.contains(t)) {
        return;
    }
    let kept: Vec<String> = tags
        .into_iter()
        .filter(|t| !ours.contains(t))
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    if kept.is_empty() {
        annotations.remove(ALB_TAGS);
    } else {
        annotations.insert(ALB_TAGS.to_string(), kept.join(","));
    }
}

/// The default host rule `PROJECT.<domain>` `/` Prefix -> `svc-PROJECT:80`.
pub fn default_rule(project: &ProjectId, cfg: &Config) -> IngressRule {
    IngressRule {
        host: Some(host_of(project, cfg)),
        http: Some(HTTPIngressRuleValue {
            paths: vec![HTTPIngressPath {
                path: Some("/".to_string()),
                path_type: "Prefix".to_string(),
                backend: IngressBackend {
                    service: Some(IngressServiceBackend {
                        name: project.service_name(),
                        port: Some(ServiceBackendPort {
                            number: Some(SERVICE_PORT),
                            name: None,
                        }),
                    }),
                    resource: None,
                },
            }],
        }),
    }
}

/// [`default_ingress_with`] the default policy's group settings.
pub fn default_ingress(obj: &Ingress, cfg: &Config, group: &str) -> Result<Ingress, DefaultError> {
    let settings = crate::policy::Policy::default().effective_group_settings(cfg);
    default_ingress_with(obj, cfg, group, &settings)
}

/// `group` is the ALB group the project is placed in (the shared group or a shard);
/// `group_settings` the group-wide annotations in force (keys without the prefix).
pub fn default_ingress_with(
    obj: &Ingress,
    cfg: &Config,
    group: &str,
    group_settings: &BTreeMap<String, String>,
) -> Result<Ingress, DefaultError> {
    let project = project_of("Ingress", &obj.metadata)?;
    let mut out = obj.clone();
    let annotations = out.metadata.annotations.get_or_insert_with(BTreeMap::new);
    let legacy_class = annotations.contains_key(ANNOTATION_LEGACY_INGRESS_CLASS);
    for (k, v) in group_settings {
        set_if_absent(annotations, &format!("{ALB_PREFIX}{k}"), v);
    }
    let version = annotations
        .get(ALB_BACKEND_PROTOCOL_VERSION)
        .cloned()
        .unwrap_or_default();
    for (k, _) in ALB_OWN_DEFAULTS {
        if let Some(v) = own_default(k, &version) {
            set_if_absent(annotations, k, &v);
        }
    }
    set_if_absent(annotations, ALB_GROUP_NAME, group);
    // Migration: earlier versions put the per-project tags on the Ingress, where the controller
    // merges them group-wide and fails the whole group on the second project. They now live on the
    // Service; jockey's own entries (exactly this project's values) are dropped from the Ingress.
    drop_project_tags(annotations, &project, cfg);

    let spec = out.spec.get_or_insert_with(Default::default);
    if spec.ingress_class_name.is_none() && !legacy_class {
        spec.ingress_class_name = Some(INGRESS_CLASS.to_string());
    }
    let no_rules = spec.rules.as_ref().is_none_or(|r| r.is_empty());
    if no_rules && spec.default_backend.is_none() {
        spec.rules = Some(vec![default_rule(&project, cfg)]);
    }
    Ok(out)
}

/// JSON patch turning `before` into `after`.
pub fn patch_between<T: serde::Serialize>(before: &T, after: &T) -> json_patch::Patch {
    let before = serde_json::to_value(before).unwrap_or_default();
    let after = serde_json::to_value(after).unwrap_or_default();
    json_patch::diff(&before, &after)
}

/// Why an object cannot be defaulted; names the object, the field and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{object}: {cause}; {fix}")]
pub struct DefaultError {
    pub object: String,
    pub cause: String,
    pub fix: String,
}

mod instance;
mod unpack;

#[cfg(test)]
mod tests;
