//! The Kaniko build, rendered: what a build needs ([`BuildPlan`]), the copy of the instance it
//! reads ([`builder_configmap`]), the built-in Dockerfile ([`python_dockerfile`]) and the Job
//! ([`kaniko_job`]). Pure: running the Job is [`crate::broker`]'s.
//!
//! What never happens here: a credential in a ConfigMap or an image layer. The registry
//! credentials reach Kaniko only as environment variables referencing the build's own Secret of
//! short-lived credentials ([`crate::credentials`]); the bundle was stripped of secret-looking
//! files by the plugin before it got here.

use crate::credentials::{self, BuildCredentials};
use anyhow::{Result, bail};
use jockey_core::build_request::{Admitted, build_labels, request_name};
use jockey_core::image::{
    TEMPLATE_VERSION, dependency_build_name, dependency_context, dependency_tag, image_with_tag,
};
use jockey_core::names::{INSTANCE_TAR_KEY, LABEL_PROJECT};
use jockey_core::{Config, ContentHash, ProjectId};
use k8s_openapi::ByteString;
use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapVolumeSource, Container, EnvVar, EnvVarSource, KeyToPath, PodSpec,
    PodTemplateSpec, ResourceRequirements, SecretKeySelector, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use std::collections::BTreeMap;
use std::time::Duration;

/// Service account the build pods run as (created by `setup-builder`).
pub const BUILDER_SERVICE_ACCOUNT: &str = "jockey-builder";
/// The long-lived keys Secret earlier versions of `setup-builder` stored; no build mounts it
/// any more, and `setup-builder` tells the operator to delete it.
pub const LEGACY_AWS_CREDENTIALS_SECRET: &str = "aws-credentials";
/// Name of the Kaniko container (for logs).
pub const KANIKO_CONTAINER: &str = "kaniko";
/// Marks build Jobs, their pods and their ConfigMaps, so `logs-builder` and `gc` find them.
pub const LABEL_COMPONENT: &str = "app.kubernetes.io/component";
pub const COMPONENT_BUILD: &str = "build";
/// Annotation on the build Job naming the image it pushes.
pub const ANNOTATION_DESTINATION: &str = "jockey.agentops.ai/destination";
/// Where the build pod mounts its ConfigMap.
const WORKSPACE: &str = "/workspace";
/// Key of the built-in Dockerfile in the builder's ConfigMap copy.
const TEMPLATE_DOCKERFILE_KEY: &str = "Dockerfile";
/// Key of the Docker client config telling Kaniko to use the ECR credential helper.
const DOCKER_CONFIG_KEY: &str = "config.json";
/// Finished build Jobs (and, through their owner reference, their ConfigMap copies) are kept
/// this long so that `logs-builder` can still show what happened.
pub const BUILD_TTL_SECONDS: i32 = 3600;

/// The Dockerfile used when the project has none (template [`TEMPLATE_VERSION`]): the base and
/// the project's dependencies, nothing else. Its context is [`dependency_context`] (only
/// `requirements.txt`), so the image is named by its dependency inputs alone
/// ([`jockey_core::image::dependency_tag`]) and a change to the code builds nothing: the pod
/// unpacks the instance's files into `/app` at start (an init container from this same image,
/// see `jockey_core::defaults`). `server.py` listens on `$PORT` (8080) and answers `/health`,
/// which the Deployment's probes and the ALB health check expect. Dependencies are installed only
/// when `requirements.txt` is not empty. Pure.
///
/// [`TEMPLATE_VERSION`]: jockey_core::image::TEMPLATE_VERSION
/// [`dependency_context`]: jockey_core::image::dependency_context
pub fn python_dockerfile(base_image: &str) -> String {
    format!(
        r#"# Built-in template of kubectl-jockey ({version}), used because the project has no Dockerfile:
# the base and the dependencies; the project's files come from its instance at pod start.
FROM {base_image}
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PORT=8080
COPY requirements.txt /opt/jockey/requirements.txt
RUN if [ -s /opt/jockey/requirements.txt ]; then pip install --no-cache-dir -r /opt/jockey/requirements.txt; fi \
 && mkdir -p /app && chmod 0755 /app \
 && useradd --system --uid 10001 --no-create-home agent
WORKDIR /app
USER 10001
EXPOSE 8080
CMD ["python", "server.py"]
"#,
        version = jockey_core::image::TEMPLATE_VERSION
    )
}

/// Everything a build needs, decided before anything is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildPlan {
    pub project: ProjectId,
    pub hash: ContentHash,
    /// The builder namespace.
    pub namespace: String,
    /// Name of the Job and of the ConfigMap copy in the builder namespace: the request's for a
    /// project's own Dockerfile, [`dependency_build_name`] for the built-in template (one build
    /// per dependency image, whichever instances ask for it).
    pub name: String,
    /// The request this plan answers (labels: which request the build belongs to).
    pub request_name: String,
    /// `<h>` for a project's own Dockerfile, `d-<16 hex>` for the built-in template.
    pub tag: String,
    /// `<registry>/<prefix>/PROJECT:<tag>`.
    pub image: String,
    pub cache_repo: String,
    pub kaniko_image: String,
    /// The `FROM` of the built-in Dockerfile (unused when the project has its own).
    pub base_image: String,
    /// Whether the project brings its own Dockerfile; otherwise [`python_dockerfile`].
    pub own_dockerfile: bool,
    /// The built-in template's build context ([`dependency_context`]); empty for a project's own
    /// Dockerfile, whose context is the instance.
    ///
    /// [`dependency_context`]: jockey_core::image::dependency_context
    pub dependency_context: Vec<u8>,
    /// Kaniko authenticates with the ECR credential helper for an ECR registry.
    pub ecr_registry: Option<String>,
    pub aws_region: Option<String>,
    /// Where the Kaniko pod's AWS credentials come from (none for a registry that is not ECR).
    pub credentials: BuildCredentials,
    /// The Job's `activeDeadlineSeconds`: the cluster stops a build that runs too long.
    pub deadline_seconds: i64,
    /// The namespace whose request this build answers.
    pub request_namespace: String,
}

impl BuildPlan {
    /// The build of `admitted`, asked for from `request_namespace`, with the broker's settings.
    pub fn new(cfg: &Config, admitted: &Admitted, request_namespace: &str) -> Result<Self> {
        let project = &admitted.project;
        let Some(registry) = cfg.image_registry.as_deref() else {
            bail!(
                "cannot build the image of {project}: IMAGE_REGISTRY is not set on the build \
                 broker; set it to the registry to push to, e.g. \
                 123456789012.dkr.ecr.us-east-1.amazonaws.com"
            );
        };
        if !admitted.has_dockerfile {
            jockey_core::config::check_base_image(&cfg.base_image)
                .map_err(|e| anyhow::anyhow!("cannot build the image of {project}: {e}"))?;
        }
        let prefix = &cfg.image_repository_prefix;
        let ecr = crate::ecr::parse_registry(registry);
        let request_name = request_name(project, &admitted.hash);
        let (tag, name) = if admitted.has_dockerfile {
            (admitted.hash.short().to_string(), request_name.clone())
        } else {
            let tag = dependency_tag(
                admitted.requirements.as_deref(),
                TEMPLATE_VERSION,
                &cfg.base_image,
            );
            let name = dependency_build_name(project, &tag);
            (tag, name)
        };
        let base_image = (!admitted.has_dockerfile).then_some(cfg.base_image.as_str());
        let timeout = Duration::from_secs(admitted.timeout_seconds);
        let credentials = credentials::plan(
            cfg,
            project,
            ecr.as_ref(),
            &name,
            base_image,
            admitted.has_dockerfile,
            timeout,
        )?;
        // The region of an ECR registry is part of its host name; it wins over AWS_REGION.
        let region = ecr
            .as_ref()
            .map(|e| e.region.clone())
            .or_else(|| cfg.aws_region.clone());
        Ok(Self {
            project: project.clone(),
            hash: admitted.hash.clone(),
            namespace: cfg.builder_namespace.clone(),
            name,
            request_name,
            image: image_with_tag(registry, prefix, project, &tag),
            tag,
            // One cache repository per project, which only that project's build credentials can
            // write: a tenant's layers are never offered to another.
            cache_repo: format!(
                "{}/{}/cache",
                registry.trim_end_matches('/'),
                project.repository(prefix)
            ),
            kaniko_image: cfg.kaniko_image.clone(),
            base_image: cfg.base_image.clone(),
            own_dockerfile: admitted.has_dockerfile,
            dependency_context: if admitted.has_dockerfile {
                Vec::new()
            } else {
                dependency_context(admitted.requirements.as_deref())
            },
            ecr_registry: ecr.is_some().then(|| registry.to_string()),
            aws_region: region,
            credentials,
            deadline_seconds: admitted.timeout_seconds.max(60) as i64,
            request_namespace: request_namespace.to_string(),
        })
    }

    pub fn labels(&self) -> BTreeMap<String, String> {
        let mut labels = build_labels(
            &self.project,
            &self.hash,
            &self.request_namespace,
            &self.request_name,
        );
        labels.insert(LABEL_COMPONENT.to_string(), COMPONENT_BUILD.to_string());
        labels
    }
}

/// The copy of the instance in the builder namespace, plus what Kaniko needs besides the files:
/// the built-in Dockerfile when the project has none, and a Docker config naming the ECR
/// credential helper (no credential in it). Not immutable: it is a build input that lives as long
/// as its Job, and the template may differ between plugin versions.
pub fn builder_configmap(plan: &BuildPlan, gz: &[u8]) -> ConfigMap {
    let mut data = BTreeMap::new();
    if !plan.own_dockerfile {
        data.insert(
            TEMPLATE_DOCKERFILE_KEY.to_string(),
            python_dockerfile(&plan.base_image),
        );
    }
    if let Some(registry) = &plan.ecr_registry {
        data.insert(
            DOCKER_CONFIG_KEY.to_string(),
            serde_json::json!({ "credHelpers": { registry: "ecr-login" } }).to_string(),
        );
    }
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(plan.name.clone()),
            namespace: Some(plan.namespace.clone()),
            labels: Some(plan.labels()),
            annotations: Some(BTreeMap::from([(
                jockey_core::names::ANNOTATION_CONTENT_SHA256.to_string(),
                plan.hash.full().to_string(),
            )])),
            ..Default::default()
        },
        binary_data: Some(BTreeMap::from([(
            INSTANCE_TAR_KEY.to_string(),
            // The built-in template builds from the dependency inputs alone.
            ByteString(if plan.own_dockerfile {
                gz.to_vec()
            } else {
                plan.dependency_context.clone()
            }),
        )])),
        data: (!data.is_empty()).then_some(data),
        ..Default::default()
    }
}

/// The Kaniko Job building `plan.image` from the tar in the ConfigMap copy.
pub fn kaniko_job(plan: &BuildPlan) -> Job {
    let dockerfile = if plan.own_dockerfile {
        // Relative: resolved inside the extracted context.
        "Dockerfile".to_string()
    } else {
        format!("{WORKSPACE}/{TEMPLATE_DOCKERFILE_KEY}")
    };
    let mut args = vec![
        format!("--context=tar://{WORKSPACE}/{INSTANCE_TAR_KEY}"),
        format!("--dockerfile={dockerfile}"),
        format!("--destination={}", plan.image),
        "--snapshot-mode=redo".to_string(),
        "--verbosity=info".to_string(),
    ];
    // A project's own Dockerfile is rebuilt for every change of its content: Kaniko's layer
    // cache keeps the steps before the change, and `--reproducible` the digests of unchanged
    // layers. The built-in template's dependency image is named by its inputs and built once
    // per name, so the cache (keyed by the same inputs) can never hit, and `--reproducible`
    // only costs: it re-compresses every layer of the base image on every build (kaniko#1960;
    // measured here: 28 s -> 12 s for a dependency change, bench/README.md).
    if plan.own_dockerfile {
        args.extend([
            "--cache=true".to_string(),
            format!("--cache-repo={}", plan.cache_repo),
            "--reproducible".to_string(),
        ]);
    }
    let mut env = Vec::new();
    if let BuildCredentials::AssumedRole(a) = &plan.credentials {
        // Only this build's Secret, which holds short-lived credentials that can push nothing
        // but this project's repositories; not optional: a build without it would fail later
        // with a worse message.
        for key in [
            credentials::ACCESS_KEY_ID,
            credentials::SECRET_ACCESS_KEY,
            credentials::SESSION_TOKEN,
        ] {
            env.push(EnvVar {
                name: key.to_string(),
                value_from: Some(EnvVarSource {
                    secret_key_ref: Some(SecretKeySelector {
                        name: a.secret.clone(),
                        key: key.to_string(),
                        optional: Some(false),
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            });
        }
    }
    if let Some(region) = &plan.aws_region {
        env.push(EnvVar {
            name: "AWS_REGION".to_string(),
            value: Some(region.clone()),
            ..Default::default()
        });
    }
    let mut items = vec![KeyToPath {
        key: INSTANCE_TAR_KEY.to_string(),
        path: INSTANCE_TAR_KEY.to_string(),
        ..Default::default()
    }];
    if !plan.own_dockerfile {
        items.push(KeyToPath {
            key: TEMPLATE_DOCKERFILE_KEY.to_string(),
            path: TEMPLATE_DOCKERFILE_KEY.to_string(),
            ..Default::default()
        });
    }
    let mut mounts = vec![VolumeMount {
        name: "workspace".to_string(),
        mount_path: WORKSPACE.to_string(),
        read_only: Some(true),
        ..Default::default()
    }];
    let mut volumes = vec![Volume {
        name: "workspace".to_string(),
        config_map: Some(ConfigMapVolumeSource {
            name: plan.name.clone(),
            items: Some(items),
            ..Default::default()
        }),
        ..Default::default()
    }];
    if plan.ecr_registry.is_some() {
        mounts.push(VolumeMount {
            name: "docker-config".to_string(),
            mount_path: "/kaniko/.docker".to_string(),
            read_only: Some(true),
            ..Default::default()
        });
        volumes.push(Volume {
            name: "docker-config".to_string(),
            config_map: Some(ConfigMapVolumeSource {
                name: plan.name.clone(),
                items: Some(vec![KeyToPath {
                    key: DOCKER_CONFIG_KEY.to_string(),
                    path: DOCKER_CONFIG_KEY.to_string(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        });
    }
    let quantities = |pairs: [(&str, &str); 2]| {
        pairs
            .into_iter()
            .map(|(k, v)| (k.to_string(), Quantity(v.to_string())))
            .collect::<BTreeMap<_, _>>()
    };
    let labels = plan.labels();
    Job {
        metadata: ObjectMeta {
            name: Some(plan.name.clone()),
            namespace: Some(plan.namespace.clone()),
            labels: Some(labels.clone()),
            annotations: Some(BTreeMap::from([(
                ANNOTATION_DESTINATION.to_string(),
                plan.image.clone(),
            )])),
            ..Default::default()
        },
        spec: Some(JobSpec {
            // A build that failed once fails again on the same files; retrying only delays the
            // error the user needs to see.
            backoff_limit: Some(0),
            active_deadline_seconds: Some(plan.deadline_seconds),
            ttl_seconds_after_finished: Some(BUILD_TTL_SECONDS),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    restart_policy: Some("Never".to_string()),
                    // The executor image is built for Linux only.
                    node_selector: Some(BTreeMap::from([(
                        "kubernetes.io/os".to_string(),
                        "linux".to_string(),
                    )])),
                    service_account_name: Some(BUILDER_SERVICE_ACCOUNT.to_string()),
                    // Kaniko talks to the registry, never to the API server.
                    automount_service_account_token: Some(false),
                    containers: vec![Container {
                        name: KANIKO_CONTAINER.to_string(),
                        image: Some(plan.kaniko_image.clone()),
                        args: Some(args),
                        env: Some(env),
                        volume_mounts: Some(mounts),
                        // On failure the kubelet copies the log's tail into the termination
                        // message, so the reason survives the pod's logs.
                        termination_message_policy: Some("FallbackToLogsOnError".to_string()),
                        resources: Some(ResourceRequirements {
                            requests: Some(quantities([("cpu", "500m"), ("memory", "1Gi")])),
                            limits: Some(quantities([("cpu", "2"), ("memory", "4Gi")])),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }],
                    volumes: Some(volumes),
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        status: None,
    }
}

/// The label selector of a project's build Jobs and pods.
pub fn build_selector(project: Option<&str>) -> String {
    match project {
        Some(p) => format!("{LABEL_COMPONENT}={COMPONENT_BUILD},{LABEL_PROJECT}={p}"),
        None => format!("{LABEL_COMPONENT}={COMPONENT_BUILD}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jockey_core::build_request::LABEL_REQUEST_NAMESPACE;
    use jockey_core::bundle::{Bundle, Collected, Entry};
    use jockey_core::names::LABEL_CONTENT_HASH;

    fn admitted(p: &ProjectId, b: &Bundle, timeout_seconds: u64) -> Admitted {
        Admitted {
            project: p.clone(),
            hash: b.hash.clone(),
            gz: b.gz.clone(),
            has_dockerfile: b.has_dockerfile,
            requirements: jockey_core::build_request::read_tar(&b.gz, 1 << 20)
                .unwrap()
                .requirements,
            timeout_seconds,
        }
    }

    fn bundle(with_dockerfile: bool) -> Bundle {
        let mut entries = vec![Entry::file("server.py", "print()", false)];
        if with_dockerfile {
            entries.push(Entry::file("Dockerfile", "FROM scratch", false));
        }
        Bundle::from_collected(Collected {
            entries,
            ..Default::default()
        })
        .unwrap()
    }

    fn cfg(registry: &str) -> Config {
        Config::from_lookup(|k| (k == "IMAGE_REGISTRY").then(|| registry.to_string()))
    }

    #[test]
    fn plan_needs_a_registry() {
        let p = ProjectId::parse("demo").unwrap();
        let err = BuildPlan::new(
            &Config::default(),
            &admitted(&p, &bundle(false), 60),
            "tenant",
        )
        .unwrap_err();
        assert!(err.to_string().contains("IMAGE_REGISTRY"), "{err}");
    }

    #[test]
    fn job_builds_from_the_tar_with_destination_cache_and_limits() {
        let p = ProjectId::parse("demo").unwrap();
        let b = bundle(false);
        let plan = BuildPlan::new(
            &cfg("registry.local:5000"),
            &admitted(&p, &b, 300),
            "tenant",
        )
        .unwrap();
        let job = kaniko_job(&plan);
        let spec = job.spec.as_ref().unwrap();
        assert_eq!(spec.backoff_limit, Some(0));
        assert_eq!(spec.active_deadline_seconds, Some(300));
        assert_eq!(spec.ttl_seconds_after_finished, Some(BUILD_TTL_SECONDS));
        let pod = spec.template.spec.as_ref().unwrap();
        let c = &pod.containers[0];
        assert_eq!(
            c.image.as_deref(),
            Some(jockey_core::config::DEFAULT_KANIKO_IMAGE)
        );
        assert!(!c.image.as_deref().unwrap().ends_with(":latest"));
        let args = c.args.clone().unwrap();
        // The built-in template: named by the dependency inputs, one build per dependency image.
        let tag = jockey_core::image::dependency_tag(
            None,
            jockey_core::image::TEMPLATE_VERSION,
            jockey_core::config::DEFAULT_BASE_IMAGE,
        );
        let image = format!("registry.local:5000/hosting/demo:{tag}");
        assert!(args.contains(&format!("--destination={image}")), "{args:?}");
        assert_eq!(plan.image, image);
        assert_eq!(
            job.metadata.name.as_deref(),
            Some(format!("demo-deps-{}", &tag[2..]).as_str())
        );
        assert!(args.contains(&"--context=tar:///workspace/instance.tar.gz".to_string()));
        assert!(args.contains(&"--dockerfile=/workspace/Dockerfile".to_string()));
        // Named by its inputs and built once: neither Kaniko's layer cache nor `--reproducible`
        // (which re-compresses every layer of the base) buys anything but time.
        assert!(
            args.iter()
                .all(|a| !a.starts_with("--cache") && a != "--reproducible"),
            "{args:?}"
        );
        assert!(c.resources.as_ref().unwrap().limits.is_some());
        let labels = job.metadata.labels.clone().unwrap();
        assert_eq!(labels[LABEL_PROJECT], "demo");
        assert_eq!(labels[LABEL_CONTENT_HASH], b.hash.short());
        assert_eq!(labels[LABEL_REQUEST_NAMESPACE], "tenant");
        // The request it answers (the sweep removes builds whose request is gone).
        assert_eq!(
            labels[jockey_core::build_request::LABEL_REQUEST_NAME],
            request_name(&p, &b.hash)
        );
        assert_eq!(
            pod.service_account_name.as_deref(),
            Some(BUILDER_SERVICE_ACCOUNT)
        );

        // A registry that is not ECR: no AWS credentials of any kind.
        assert!(
            !c.env
                .iter()
                .flatten()
                .any(|e| e.name.starts_with("AWS_ACCESS") || e.name.starts_with("AWS_SECRET")),
            "{:?}",
            c.env
        );
        assert_eq!(plan.credentials, BuildCredentials::None);
    }

    const ECR: &str = "123456789012.dkr.ecr.eu-west-1.amazonaws.com";
    const ROLE: &str = "arn:aws:iam::123456789012:role/jockey-builder";

    fn ecr_cfg(extra: &[(&str, &str)]) -> Config {
        let mut vars = vec![("IMAGE_REGISTRY", ECR), ("BUILDER_ROLE_ARN", ROLE)];
        vars.extend_from_slice(extra);
        Config::from_lookup(|k| {
            vars.iter()
                .rev()
                .find(|(key, _)| *key == k)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn an_ecr_build_references_only_its_own_short_lived_credentials_secret() {
        let p = ProjectId::parse("demo").unwrap();
        let plan =
            BuildPlan::new(&ecr_cfg(&[]), &admitted(&p, &bundle(false), 60), "tenant").unwrap();
        let BuildCredentials::AssumedRole(a) = &plan.credentials else {
            panic!("{:?}", plan.credentials)
        };
        assert_eq!(a.secret, format!("{}-aws", plan.name));
        let job = kaniko_job(&plan);
        let pod = job.spec.unwrap().template.spec.unwrap();
        let c = &pod.containers[0];
        let mut secrets = std::collections::BTreeSet::new();
        for e in c.env.iter().flatten() {
            assert!(
                e.value.is_none() || !e.name.starts_with("AWS_S") && e.name != "AWS_ACCESS_KEY_ID",
                "credentials never inline: {e:?}"
            );
            if let Some(r) = e
                .value_from
                .as_ref()
                .and_then(|v| v.secret_key_ref.as_ref())
            {
                secrets.insert(r.name.clone());
                assert_eq!(r.optional, Some(false));
            }
        }
        assert_eq!(
            secrets,
            std::collections::BTreeSet::from([a.secret.clone()])
        );
        let names: Vec<&str> = c.env.iter().flatten().map(|e| e.name.as_str()).collect();
        for key in [
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
        ] {
            assert!(names.contains(&key), "{names:?}");
        }
        assert!(c.env_from.is_none());
        // No volume brings a Secret in either, and the pod holds no API token.
        assert!(pod.volumes.iter().flatten().all(|v| v.secret.is_none()));
        assert_eq!(pod.automount_service_account_token, Some(false));
        assert!(
            !format!("{job:?}", job = kaniko_job(&plan)).contains(LEGACY_AWS_CREDENTIALS_SECRET)
        );
    }

    #[test]
    fn the_builder_role_itself_is_never_given_to_a_build_pod() {
        let p = ProjectId::parse("demo").unwrap();
        let cfg = ecr_cfg(&[("BUILDER_CREDENTIALS", "service-account")]);
        let err = BuildPlan::new(&cfg, &admitted(&p, &bundle(false), 60), "tenant")
            .unwrap_err()
            .to_string();
        assert!(err.contains("no longer supported"), "{err}");
    }

    #[test]
    fn an_ecr_build_without_a_role_is_refused_with_the_fix() {
        let p = ProjectId::parse("demo").unwrap();
        let cfg = Config::from_lookup(|k| (k == "IMAGE_REGISTRY").then(|| ECR.to_string()));
        let err = BuildPlan::new(&cfg, &admitted(&p, &bundle(false), 60), "tenant")
            .unwrap_err()
            .to_string();
        assert!(err.contains("BUILDER_ROLE_ARN"), "{err}");
    }

    #[test]
    fn own_dockerfile_is_used_from_the_context() {
        let p = ProjectId::parse("demo").unwrap();
        let b = bundle(true);
        let plan = BuildPlan::new(&cfg("r.example"), &admitted(&p, &b, 60), "tenant").unwrap();
        let job = kaniko_job(&plan);
        let args = job.spec.unwrap().template.spec.unwrap().containers[0]
            .args
            .clone()
            .unwrap();
        assert!(args.contains(&"--dockerfile=Dockerfile".to_string()));
        // Today's behaviour: Kaniko's layer cache keeps the unchanged steps.
        assert!(args.contains(&"--cache=true".to_string()));
        assert!(args.contains(&"--cache-repo=r.example/hosting/demo/cache".to_string()));
        assert!(args.contains(&"--reproducible".to_string()));
        // Named by the whole content, built from the whole instance, as before.
        assert_eq!(
            plan.image,
            format!("r.example/hosting/demo:{}", b.hash.short())
        );
        assert_eq!(plan.name, request_name(&p, &b.hash));
        let cm = builder_configmap(&plan, &b.gz);
        assert_eq!(cm.binary_data.as_ref().unwrap()[INSTANCE_TAR_KEY].0, b.gz);
        assert!(
            cm.data.is_none(),
            "no template when the project has a Dockerfile"
        );
    }

    #[test]
    fn builder_configmap_holds_the_tar_the_template_and_no_credentials() {
        let p = ProjectId::parse("demo").unwrap();
        let b = bundle(false);
        let plan = BuildPlan::new(&ecr_cfg(&[]), &admitted(&p, &b, 60), "tenant").unwrap();
        assert_eq!(plan.aws_region.as_deref(), Some("eu-west-1"));
        let cm = builder_configmap(&plan, &b.gz);
        // The built-in template builds from requirements.txt alone, never the code.
        assert_eq!(
            cm.binary_data.as_ref().unwrap()[INSTANCE_TAR_KEY].0,
            jockey_core::image::dependency_context(None)
        );
        assert_ne!(cm.binary_data.as_ref().unwrap()[INSTANCE_TAR_KEY].0, b.gz);
        let data = cm.data.clone().unwrap();
        assert_eq!(
            data[TEMPLATE_DOCKERFILE_KEY],
            python_dockerfile(jockey_core::config::DEFAULT_BASE_IMAGE)
        );
        assert!(data[DOCKER_CONFIG_KEY].contains("ecr-login"));
        assert!(!data[DOCKER_CONFIG_KEY].contains("auth"));
        assert_eq!(cm.metadata.namespace.as_deref(), Some("builder"));
    }

    #[test]
    fn template_serves_on_8080_and_installs_requirements_when_present() {
        let d = python_dockerfile("python:3.12.11-slim-bookworm");
        assert!(d.contains("PORT=8080"));
        assert!(d.contains("EXPOSE 8080"));
        assert!(d.contains("if [ -s /opt/jockey/requirements.txt ]"));
        // Only the dependency inputs reach the image: the code comes from the instance.
        assert!(!d.contains("COPY . "), "{d}");
        assert!(d.contains(jockey_core::image::TEMPLATE_VERSION));
        assert!(d.contains("CMD [\"python\", \"server.py\"]"));
        assert!(d.contains("USER 10001"), "the server does not run as root");
        // The agent user can enter /app whatever mode the build context gave it.
        let chmod = d.find("chmod 0755 /app").expect("chmod /app");
        assert!(chmod < d.find("USER 10001").expect("USER"));
        // Continuation lines survive the formatting: every `\` ends its line.
        assert!(d.contains("ENV PYTHONDONTWRITEBYTECODE=1 \\\n    PYTHONUNBUFFERED=1 \\\n"));
    }

    #[test]
    fn template_is_from_the_base_image_setting_and_the_default_is_pinned() {
        let from = |d: &str| {
            d.lines()
                .filter(|l| l.starts_with("FROM "))
                .map(str::to_string)
                .collect::<Vec<_>>()
        };
        let mirror = "mirror.example:5000/library/python:3.12.11-slim-bookworm";
        assert_eq!(
            from(&python_dockerfile(mirror)),
            vec![format!("FROM {mirror}")]
        );
        let p = ProjectId::parse("demo").unwrap();
        let b = bundle(false);
        let plan = BuildPlan::new(&cfg("r.example"), &admitted(&p, &b, 60), "tenant").unwrap();
        let cm = builder_configmap(&plan, &b.gz);
        let default = from(&cm.data.unwrap()[TEMPLATE_DOCKERFILE_KEY]);
        assert_eq!(
            default,
            vec![format!("FROM {}", jockey_core::config::DEFAULT_BASE_IMAGE)]
        );
        assert!(default[0].starts_with("FROM python:3.12.") && !default[0].ends_with(":latest"));

        let with_env = Config::from_lookup(|k| match k {
            "IMAGE_REGISTRY" => Some("r.example".into()),
            "BASE_IMAGE" => Some(mirror.into()),
            _ => None,
        });
        let plan = BuildPlan::new(&with_env, &admitted(&p, &b, 60), "tenant").unwrap();
        let cm = builder_configmap(&plan, &b.gz);
        assert_eq!(
            from(&cm.data.unwrap()[TEMPLATE_DOCKERFILE_KEY]),
            vec![format!("FROM {mirror}")]
        );
    }

    #[test]
    fn an_unpinned_base_image_is_refused_before_the_build_unless_the_project_has_a_dockerfile() {
        let p = ProjectId::parse("demo").unwrap();
        let latest = Config::from_lookup(|k| match k {
            "IMAGE_REGISTRY" => Some("r.example".into()),
            "BASE_IMAGE" => Some("python:latest".into()),
            _ => None,
        });
        let err = BuildPlan::new(&latest, &admitted(&p, &bundle(false), 60), "tenant")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("BASE_IMAGE") && err.contains("latest"),
            "{err}"
        );
        // Its own Dockerfile names its own base: the setting is not used.
        assert!(BuildPlan::new(&latest, &admitted(&p, &bundle(true), 60), "tenant").is_ok());
    }
}
