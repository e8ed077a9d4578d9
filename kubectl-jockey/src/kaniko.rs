//! The Kaniko build, rendered: what a build needs ([`BuildPlan`]), the copy of the instance it
//! reads ([`builder_configmap`]), the built-in Dockerfile ([`python_dockerfile`]) and the Job
//! ([`kaniko_job`]). Pure: running the Job is [`crate::build_run`]'s.
//!
//! What never happens here: a credential in a ConfigMap or an image layer. The registry
//! credentials reach Kaniko only as environment variables referencing the build's own Secret of
//! short-lived credentials ([`crate::build_credentials`]), or through the service account's IAM
//! role; the bundle was stripped of secret-looking files by the core before it got here.

use crate::build_credentials::{self, BuildCredentials};
use anyhow::{Result, bail};
use jockey_core::bundle::{Bundle, instance_labels};
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
use sha2::{Digest, Sha256};
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

/// The Dockerfile used when the project has none: a plain Python server on `base_image` (the
/// `BASE_IMAGE` setting, checked by [`jockey_core::config::check_base_image`]). `server.py`
/// listens on `$PORT` (8080) and answers `/health`, which the Deployment's probes and the ALB
/// health check expect. Dependencies are installed only when `requirements.txt` exists.
/// `COPY . /app` gives /app the mode of Kaniko's unpacked tar context, 0750 root, which the agent
/// user could not enter (`can't open file '/app/server.py': Permission denied`): it is opened up
/// again. Pure.
pub fn python_dockerfile(base_image: &str) -> String {
    format!(
        r#"# Built-in template of kubectl-jockey, used because the project has no Dockerfile.
FROM {base_image}
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PORT=8080
WORKDIR /app
COPY . /app
RUN if [ -f requirements.txt ]; then pip install --no-cache-dir -r requirements.txt; fi \
 && chmod 0755 /app \
 && useradd --system --uid 10001 --no-create-home agent
USER 10001
EXPOSE 8080
CMD ["python", "server.py"]
"#
    )
}

/// Everything a build needs, decided before anything is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildPlan {
    pub project: ProjectId,
    pub hash: ContentHash,
    /// The builder namespace.
    pub namespace: String,
    /// Name of the Job and of the ConfigMap copy in the builder namespace.
    pub name: String,
    /// `<registry>/<prefix>/PROJECT:<h>`.
    pub image: String,
    pub cache_repo: String,
    pub kaniko_image: String,
    /// The `FROM` of the built-in Dockerfile (unused when the project has its own).
    pub base_image: String,
    /// Whether the project brings its own Dockerfile; otherwise [`python_dockerfile`].
    pub own_dockerfile: bool,
    /// Kaniko authenticates with the ECR credential helper for an ECR registry.
    pub ecr_registry: Option<String>,
    pub aws_region: Option<String>,
    /// Where the Kaniko pod's AWS credentials come from (none for a registry that is not ECR).
    pub credentials: BuildCredentials,
    /// The Job's `activeDeadlineSeconds`: the cluster stops a build the plugin gave up on.
    pub deadline_seconds: i64,
}

impl BuildPlan {
    pub fn new(
        cfg: &Config,
        project: &ProjectId,
        bundle: &Bundle,
        timeout: Duration,
    ) -> Result<Self> {
        let Some(registry) = cfg.image_registry.as_deref() else {
            bail!(
                "cannot build the image of {project}: IMAGE_REGISTRY is not set; set it (or pass \
                 --image-registry) to the registry to push to, e.g. \
                 123456789012.dkr.ecr.us-east-1.amazonaws.com"
            );
        };
        if !bundle.has_dockerfile {
            jockey_core::config::check_base_image(&cfg.base_image)
                .map_err(|e| anyhow::anyhow!("cannot build the image of {project}: {e}"))?;
        }
        let prefix = &cfg.image_repository_prefix;
        let ecr = crate::ecr::parse_registry(registry);
        let name = build_name(project, &bundle.hash);
        let base_image = (!bundle.has_dockerfile).then_some(cfg.base_image.as_str());
        let credentials =
            build_credentials::plan(cfg, project, ecr.as_ref(), &name, base_image, timeout)?;
        // The region of an ECR registry is part of its host name; it wins over AWS_REGION.
        let region = ecr
            .as_ref()
            .map(|e| e.region.clone())
            .or_else(|| cfg.aws_region.clone());
        Ok(Self {
            project: project.clone(),
            hash: bundle.hash.clone(),
            namespace: cfg.builder_namespace.clone(),
            name,
            image: project.image(registry, prefix, &bundle.hash),
            // One cache repository per project: a tenant's layers are never offered to another.
            cache_repo: format!(
                "{}/{}/cache",
                registry.trim_end_matches('/'),
                project.repository(prefix)
            ),
            kaniko_image: cfg.kaniko_image.clone(),
            base_image: cfg.base_image.clone(),
            own_dockerfile: bundle.has_dockerfile,
            ecr_registry: ecr.is_some().then(|| registry.to_string()),
            aws_region: region,
            credentials,
            deadline_seconds: timeout.as_secs().max(60) as i64,
        })
    }

    pub fn labels(&self) -> BTreeMap<String, String> {
        let mut labels = instance_labels(&self.project, &self.hash);
        labels.insert(LABEL_COMPONENT.to_string(), COMPONENT_BUILD.to_string());
        labels
    }
}

/// `<project>-build-<h>`, at most 63 characters: a project id longer than 40 characters is cut
/// and suffixed with a digest of the whole id, so two projects never share a build name.
pub fn build_name(project: &ProjectId, hash: &ContentHash) -> String {
    const MAX_PROJECT_PART: usize = 63 - "-build-".len() - 16;
    let p = project.as_str();
    let part = if p.len() <= MAX_PROJECT_PART {
        p.to_string()
    } else {
        let digest = hex::encode(Sha256::digest(p.as_bytes()));
        let keep = MAX_PROJECT_PART - 9;
        format!("{}-{}", p[..keep].trim_end_matches('-'), &digest[..8])
    };
    format!("{part}-build-{}", hash.short())
}

/// The copy of the instance in the builder namespace, plus what Kaniko needs besides the files:
/// the built-in Dockerfile when the project has none, and a Docker config naming the ECR
/// credential helper (no credential in it). Not immutable: it is a build input that lives as long
/// as its Job, and the template may differ between plugin versions.
pub fn builder_configmap(plan: &BuildPlan, bundle: &Bundle) -> ConfigMap {
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
            ByteString(bundle.gz.clone()),
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
    let args = vec![
        format!("--context=tar://{WORKSPACE}/{INSTANCE_TAR_KEY}"),
        format!("--dockerfile={dockerfile}"),
        format!("--destination={}", plan.image),
        "--cache=true".to_string(),
        format!("--cache-repo={}", plan.cache_repo),
        // Same files, same layers: keeps pushes small and digests stable between rebuilds.
        "--reproducible".to_string(),
        "--snapshot-mode=redo".to_string(),
        "--verbosity=info".to_string(),
    ];
    let mut env = Vec::new();
    if let BuildCredentials::AssumedRole(a) = &plan.credentials {
        // Only this build's Secret, which holds short-lived credentials that can push nothing
        // but this project's repositories; not optional: a build without it would fail later
        // with a worse message.
        for key in [
            build_credentials::ACCESS_KEY_ID,
            build_credentials::SECRET_ACCESS_KEY,
            build_credentials::SESSION_TOKEN,
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
    use jockey_core::bundle::{Collected, Entry};
    use jockey_core::names::LABEL_CONTENT_HASH;

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
            &p,
            &bundle(false),
            Duration::from_secs(60),
        )
        .unwrap_err();
        assert!(err.to_string().contains("IMAGE_REGISTRY"), "{err}");
    }

    #[test]
    fn build_names_fit_and_never_collide() {
        let h = ContentHash::from_digest(&[0xab; 32]);
        let short = ProjectId::parse("demo").unwrap();
        assert_eq!(build_name(&short, &h), "demo-build-abababababababab");
        let a = ProjectId::parse(&format!("{}a", "x".repeat(47))).unwrap();
        let b = ProjectId::parse(&format!("{}b", "x".repeat(47))).unwrap();
        let (na, nb) = (build_name(&a, &h), build_name(&b, &h));
        assert!(na.len() <= 63 && nb.len() <= 63, "{na} {nb}");
        assert_ne!(na, nb);
        let uuid = ProjectId::parse("0b6a1c9e-1b2c-4d5e-8f90-123456789abc").unwrap();
        assert_eq!(
            build_name(&uuid, &h),
            "0b6a1c9e-1b2c-4d5e-8f90-123456789abc-build-abababababababab"
        );
    }

    #[test]
    fn job_builds_from_the_tar_with_destination_cache_and_limits() {
        let p = ProjectId::parse("demo").unwrap();
        let b = bundle(false);
        let plan = BuildPlan::new(
            &cfg("registry.local:5000"),
            &p,
            &b,
            Duration::from_secs(300),
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
        let image = format!("registry.local:5000/hosting/demo:{}", b.hash.short());
        assert!(args.contains(&format!("--destination={image}")), "{args:?}");
        assert!(args.contains(&"--context=tar:///workspace/instance.tar.gz".to_string()));
        assert!(args.contains(&"--dockerfile=/workspace/Dockerfile".to_string()));
        assert!(args.contains(&"--cache=true".to_string()));
        assert!(args.contains(&"--cache-repo=registry.local:5000/hosting/demo/cache".to_string()));
        assert!(c.resources.as_ref().unwrap().limits.is_some());
        let labels = job.metadata.labels.clone().unwrap();
        assert_eq!(labels[LABEL_PROJECT], "demo");
        assert_eq!(labels[LABEL_CONTENT_HASH], b.hash.short());
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
            BuildPlan::new(&ecr_cfg(&[]), &p, &bundle(false), Duration::from_secs(60)).unwrap();
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
    fn with_the_service_accounts_role_a_build_gets_no_secret_at_all() {
        let p = ProjectId::parse("demo").unwrap();
        let cfg = ecr_cfg(&[("BUILDER_CREDENTIALS", "service-account")]);
        let plan = BuildPlan::new(&cfg, &p, &bundle(false), Duration::from_secs(60)).unwrap();
        assert_eq!(plan.credentials, BuildCredentials::ServiceAccount);
        let pod = kaniko_job(&plan).spec.unwrap().template.spec.unwrap();
        assert_eq!(
            pod.service_account_name.as_deref(),
            Some(BUILDER_SERVICE_ACCOUNT)
        );
        let env = pod.containers[0].env.clone().unwrap_or_default();
        assert!(env.iter().all(|e| e.value_from.is_none()), "{env:?}");
        assert!(env.iter().any(|e| e.name == "AWS_REGION"));
    }

    #[test]
    fn an_ecr_build_without_a_role_is_refused_with_the_fix() {
        let p = ProjectId::parse("demo").unwrap();
        let cfg = Config::from_lookup(|k| (k == "IMAGE_REGISTRY").then(|| ECR.to_string()));
        let err = BuildPlan::new(&cfg, &p, &bundle(false), Duration::from_secs(60))
            .unwrap_err()
            .to_string();
        assert!(err.contains("BUILDER_ROLE_ARN"), "{err}");
    }

    #[test]
    fn own_dockerfile_is_used_from_the_context() {
        let p = ProjectId::parse("demo").unwrap();
        let b = bundle(true);
        let plan = BuildPlan::new(&cfg("r.example"), &p, &b, Duration::from_secs(60)).unwrap();
        let job = kaniko_job(&plan);
        let args = job.spec.unwrap().template.spec.unwrap().containers[0]
            .args
            .clone()
            .unwrap();
        assert!(args.contains(&"--dockerfile=Dockerfile".to_string()));
        let cm = builder_configmap(&plan, &b);
        assert!(
            cm.data.is_none(),
            "no template when the project has a Dockerfile"
        );
    }

    #[test]
    fn builder_configmap_holds_the_tar_the_template_and_no_credentials() {
        let p = ProjectId::parse("demo").unwrap();
        let b = bundle(false);
        let plan = BuildPlan::new(&ecr_cfg(&[]), &p, &b, Duration::from_secs(60)).unwrap();
        assert_eq!(plan.aws_region.as_deref(), Some("eu-west-1"));
        let cm = builder_configmap(&plan, &b);
        assert_eq!(cm.binary_data.as_ref().unwrap()[INSTANCE_TAR_KEY].0, b.gz);
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
        assert!(d.contains("if [ -f requirements.txt ]"));
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
        let plan = BuildPlan::new(&cfg("r.example"), &p, &b, Duration::from_secs(60)).unwrap();
        let cm = builder_configmap(&plan, &b);
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
        let plan = BuildPlan::new(&with_env, &p, &b, Duration::from_secs(60)).unwrap();
        let cm = builder_configmap(&plan, &b);
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
        let err = BuildPlan::new(&latest, &p, &bundle(false), Duration::from_secs(60))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("BASE_IMAGE") && err.contains("latest"),
            "{err}"
        );
        // Its own Dockerfile names its own base: the setting is not used.
        assert!(BuildPlan::new(&latest, &p, &bundle(true), Duration::from_secs(60)).is_ok());
    }
}
