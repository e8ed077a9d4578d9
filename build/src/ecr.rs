//! ECR for the broker: create a project's repository when it is missing (with immutable tags,
//! and an existing one with mutable tags made immutable), and tell whether the image tag `<h>`
//! already exists so the build can be skipped: with immutable tags and push credentials that
//! only the broker's builds of that project hold, an existing tag was written by one of them.
//!
//! ECR is the source of truth for "is this image built" when the broker can reach it; without AWS
//! access (or when `IMAGE_REGISTRY` is not an ECR registry) the broker falls back to the
//! `jockey.agentops.ai/image` annotation on the instance ConfigMap, see [`Decision::Unavailable`].

use anyhow::{Context, Result};
use aws_sdk_ecr::Client;
use aws_sdk_ecr::types::{ImageIdentifier, ImageTagMutability};
use jockey_core::{Config, ContentHash, ProjectId};

/// An ECR registry host, `<account>.dkr.ecr.<region>.amazonaws.com` (also `.com.cn` and FIPS
/// hosts `<account>.dkr.ecr-fips.<region>.amazonaws.com`), split into the parts the API needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcrRegistry {
    pub account: String,
    pub region: String,
}

/// Parses `IMAGE_REGISTRY`. None when it is not an ECR registry (a local registry in a dev
/// cluster, Docker Hub, ...): then there is nothing to create or ask, and `deploy` uses the
/// annotation check.
pub fn parse_registry(registry: &str) -> Option<EcrRegistry> {
    let host = registry
        .trim()
        .trim_start_matches("https://")
        .trim_end_matches('/');
    // A registry may carry a port or a path only when it is not ECR.
    if host.contains('/') || host.contains(':') {
        return None;
    }
    let mut parts = host.split('.');
    let account = parts.next()?;
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if parts.next()? != "dkr" {
        return None;
    }
    let service = parts.next()?;
    if service != "ecr" && service != "ecr-fips" {
        return None;
    }
    let region = parts.next()?;
    let rest: Vec<&str> = parts.collect();
    if region.is_empty() || !(rest == ["amazonaws", "com"] || rest == ["amazonaws", "com", "cn"]) {
        return None;
    }
    Some(EcrRegistry {
        account: account.to_string(),
        region: region.to_string(),
    })
}

/// What [`ensure_repository`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repository {
    /// It was there; `mutable` when its tags can be overwritten.
    Existed {
        mutable: bool,
    },
    Created,
}

/// Whether a repository's tags may be overwritten.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tags {
    /// An image repository: a tag `<h>` names one content forever, so a push under an
    /// existing tag (a leaked credential, a confused build) is refused by ECR.
    Immutable,
    /// The layer cache: Kaniko pushes a cache key again once its cache TTL passes, which an
    /// immutable repository refuses; only the project's own build credentials can write it.
    Mutable,
}

/// The warning for an image repository whose tags are mutable, with the fix. Pure.
pub fn mutable_tags_warning(account: &str, name: &str) -> String {
    format!(
        "ECR repository {name} (account {account}) has mutable tags: a push under an existing \
         tag would replace the image a Deployment runs; make them immutable: aws ecr \
         put-image-tag-mutability --registry-id {account} --repository-name {name} \
         --image-tag-mutability IMMUTABLE"
    )
}

/// Creates repository `name` in `account` with `tags` unless it exists; an existing one is
/// left as it is and its mutability reported.
pub async fn ensure_repository(
    client: &Client,
    account: &str,
    name: &str,
    tags: Tags,
) -> Result<Repository> {
    let described = client
        .describe_repositories()
        .registry_id(account)
        .repository_names(name)
        .send()
        .await;
    match described {
        Ok(out) => {
            let mutable = out
                .repositories()
                .first()
                .is_some_and(|r| r.image_tag_mutability() == Some(&ImageTagMutability::Mutable));
            return Ok(Repository::Existed { mutable });
        }
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_repository_not_found_exception()) => {}
        Err(err) => {
            return Err(anyhow::anyhow!(crate::aws::error_chain(&err))).with_context(|| {
                format!(
                    "looking up ECR repository {name} in account {account}; check the AWS \
                     credentials allow ecr:DescribeRepositories"
                )
            });
        }
    }
    let mutability = match tags {
        Tags::Immutable => ImageTagMutability::Immutable,
        Tags::Mutable => ImageTagMutability::Mutable,
    };
    match client
        .create_repository()
        .registry_id(account)
        .repository_name(name)
        .image_tag_mutability(mutability)
        .send()
        .await
    {
        Ok(_) => Ok(Repository::Created),
        // Another deploy created it between our two calls: that is what we wanted.
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_repository_already_exists_exception()) =>
        {
            Ok(Repository::Existed { mutable: false })
        }
        Err(err) => Err(anyhow::anyhow!(crate::aws::error_chain(&err))).with_context(|| {
            format!(
                "creating ECR repository {name} in account {account}; check the AWS \
                 credentials allow ecr:CreateRepository, or create it yourself with \
                 `aws ecr create-repository --repository-name {name} \
                 --image-tag-mutability IMMUTABLE`"
            )
        }),
    }
}

/// Whether `repository:tag` exists. A missing repository means the tag is missing too.
pub async fn image_tag_exists(
    client: &Client,
    account: &str,
    repository: &str,
    tag: &str,
) -> Result<bool> {
    let described = client
        .describe_images()
        .registry_id(account)
        .repository_name(repository)
        .image_ids(ImageIdentifier::builder().image_tag(tag).build())
        .send()
        .await;
    match described {
        Ok(out) => Ok(out
            .image_details()
            .iter()
            .any(|d| d.image_tags().iter().any(|t| t == tag))),
        Err(err)
            if err.as_service_error().is_some_and(|e| {
                e.is_image_not_found_exception() || e.is_repository_not_found_exception()
            }) =>
        {
            Ok(false)
        }
        Err(err) => Err(anyhow::anyhow!(crate::aws::error_chain(&err))).with_context(|| {
            format!(
                "looking up image {repository}:{tag} in ECR account {account}; check the AWS \
                 credentials allow ecr:DescribeImages"
            )
        }),
    }
}

/// Makes an image repository's tags immutable: with mutable tags, whoever could push once could
/// replace the image a Deployment runs under the same tag.
pub async fn make_immutable(client: &Client, account: &str, name: &str) -> Result<()> {
    client
        .put_image_tag_mutability()
        .registry_id(account)
        .repository_name(name)
        .image_tag_mutability(ImageTagMutability::Immutable)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!(crate::aws::error_chain(&e)))
        .with_context(|| {
            format!(
                "{}; the broker could not do it itself (it needs ecr:PutImageTagMutability)",
                mutable_tags_warning(account, name)
            )
        })?;
    tracing::warn!(
        repository = name,
        account,
        "ECR repository had mutable tags; made them immutable"
    );
    Ok(())
}

/// What the broker should do about the image of one instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The tag exists in ECR: skip the build.
    Built { image: String },
    /// The tag is missing (the repository exists now, `created` says whether we made it): build.
    Build { image: String, created: bool },
    /// ECR cannot be asked (why): fall back to the annotation check.
    Unavailable(String),
}

/// The ECR part of `deploy`: make sure the repository exists and ask whether the tag does.
/// Errors from ECR (permissions, network) are returned, not papered over: a deploy that cannot
/// create its repository would fail later in Kaniko with a much worse message.
pub async fn prepare(cfg: &Config, project: &ProjectId, hash: &ContentHash) -> Result<Decision> {
    prepare_tag(cfg, project, hash.short()).await
}

/// [`prepare`] for any tag of the project's repository (a dependency image's `d-...`).
pub async fn prepare_tag(cfg: &Config, project: &ProjectId, tag: &str) -> Result<Decision> {
    let Some(registry) = cfg.image_registry.as_deref() else {
        return Ok(Decision::Unavailable(
            "IMAGE_REGISTRY is not set (set it to your ECR registry, e.g. \
             123456789012.dkr.ecr.us-east-1.amazonaws.com)"
                .into(),
        ));
    };
    let Some(ecr) = parse_registry(registry) else {
        return Ok(Decision::Unavailable(format!(
            "IMAGE_REGISTRY {registry} is not an ECR registry"
        )));
    };
    // The repository lives in the registry's region, whatever AWS_REGION says.
    let sdk = crate::aws::sdk_config(Some(&ecr.region)).await;
    if let Err(why) = crate::aws::available(&sdk).await {
        return Ok(Decision::Unavailable(why));
    }
    let client = Client::new(&sdk);
    let repository = project.repository(&cfg.image_repository_prefix);
    let image =
        jockey_core::image::image_with_tag(registry, &cfg.image_repository_prefix, project, tag);
    decide(&client, &ecr.account, &repository, tag, image).await
}

/// [`prepare`] once the client exists: repository first (so the build can push), then the tag.
pub async fn decide(
    client: &Client,
    account: &str,
    repository: &str,
    tag: &str,
    image: String,
) -> Result<Decision> {
    let created = match ensure_repository(client, account, repository, Tags::Immutable).await? {
        Repository::Created => true,
        Repository::Existed { mutable } => {
            if mutable {
                make_immutable(client, account, repository).await?;
            }
            false
        }
    };
    // A repository we just created holds no image: no need to ask.
    if !created && image_tag_exists(client, account, repository, tag).await? {
        return Ok(Decision::Built { image });
    }
    Ok(Decision::Build { image, created })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An existing image repository with mutable tags is made immutable before a build may push
    /// to it; the cache repository is created mutable on purpose.
    #[tokio::test]
    async fn an_existing_mutable_repository_is_made_immutable() {
        let moto = crate::moto::Moto::start();
        let client = Client::from_conf(
            aws_sdk_ecr::config::Builder::from(&moto.sdk_config().await)
                .endpoint_url(moto.url())
                .build(),
        );
        let account = "123456789012";
        client
            .create_repository()
            .repository_name("hosting/old")
            .image_tag_mutability(ImageTagMutability::Mutable)
            .send()
            .await
            .unwrap();
        assert_eq!(
            ensure_repository(&client, account, "hosting/old", Tags::Immutable)
                .await
                .unwrap(),
            Repository::Existed { mutable: true }
        );
        let d = decide(&client, account, "hosting/old", "abc", "i:abc".into())
            .await
            .unwrap();
        assert_eq!(
            d,
            Decision::Build {
                image: "i:abc".into(),
                created: false
            }
        );
        let old = client
            .describe_repositories()
            .repository_names("hosting/old")
            .send()
            .await
            .unwrap();
        assert_eq!(
            old.repositories()[0].image_tag_mutability(),
            Some(&ImageTagMutability::Immutable)
        );
        let w = mutable_tags_warning(account, "hosting/old");
        assert!(
            w.contains("hosting/old") && w.contains("--image-tag-mutability IMMUTABLE"),
            "{w}"
        );
        // The cache repository stays mutable on purpose.
        assert_eq!(
            ensure_repository(&client, account, "hosting/old/cache", Tags::Mutable)
                .await
                .unwrap(),
            Repository::Created
        );
        let cache = client
            .describe_repositories()
            .repository_names("hosting/old/cache")
            .send()
            .await
            .unwrap();
        assert_eq!(
            cache.repositories()[0].image_tag_mutability(),
            Some(&ImageTagMutability::Mutable)
        );
    }

    #[test]
    fn parses_ecr_registries_only() {
        assert_eq!(
            parse_registry("123456789012.dkr.ecr.us-east-1.amazonaws.com"),
            Some(EcrRegistry {
                account: "123456789012".into(),
                region: "us-east-1".into()
            })
        );
        assert_eq!(
            parse_registry("https://123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com/"),
            Some(EcrRegistry {
                account: "123456789012".into(),
                region: "us-gov-west-1".into()
            })
        );
        assert_eq!(
            parse_registry("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn").map(|r| r.region),
            Some("cn-north-1".into())
        );
        for other in [
            "",
            "localhost:5000",
            "registry.example.com",
            "docker.io",
            "12345.dkr.ecr.us-east-1.amazonaws.com",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com:443",
            "123456789012.dkr.ecr.us-east-1.example.com",
            "123456789012.dkr.ecr..amazonaws.com",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/extra",
        ] {
            assert_eq!(parse_registry(other), None, "{other}");
        }
    }

    /// Against a local moto server: the repository is created once, then found; the tag is
    /// missing until an image is pushed under it, and then the build is skipped.
    #[tokio::test]
    async fn repository_and_tag_against_moto() {
        let moto = crate::moto::Moto::start();
        let client = Client::from_conf(
            aws_sdk_ecr::config::Builder::from(&moto.sdk_config().await)
                .endpoint_url(moto.url())
                .build(),
        );
        let account = "123456789012";
        let repo = "hosting/0b6a1c9e-ecr-test";
        let image = format!("{account}.dkr.ecr.us-east-1.amazonaws.com/{repo}:0123456789abcdef");

        assert!(
            !image_tag_exists(&client, account, repo, "0123456789abcdef")
                .await
                .unwrap()
        );
        assert_eq!(
            decide(&client, account, repo, "0123456789abcdef", image.clone())
                .await
                .unwrap(),
            Decision::Build {
                image: image.clone(),
                created: true
            }
        );
        assert_eq!(
            ensure_repository(&client, account, repo, Tags::Immutable)
                .await
                .unwrap(),
            Repository::Existed { mutable: false }
        );
        // Created with immutable tags: a second push under the same tag is refused.
        let described = client
            .describe_repositories()
            .registry_id(account)
            .repository_names(repo)
            .send()
            .await
            .unwrap();
        assert_eq!(
            described.repositories()[0].image_tag_mutability(),
            Some(&ImageTagMutability::Immutable)
        );
        assert_eq!(
            decide(&client, account, repo, "0123456789abcdef", image.clone())
                .await
                .unwrap(),
            Decision::Build {
                image: image.clone(),
                created: false
            }
        );

        // What the Kaniko push does, as far as ECR's API is concerned.
        let manifest = r#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{},"layers":[]}"#;
        client
            .put_image()
            .registry_id(account)
            .repository_name(repo)
            .image_manifest(manifest)
            .image_tag("0123456789abcdef")
            .send()
            .await
            .unwrap();
        assert!(
            image_tag_exists(&client, account, repo, "0123456789abcdef")
                .await
                .unwrap()
        );
        let overwrite = client
            .put_image()
            .registry_id(account)
            .repository_name(repo)
            // Other content (moto digests a manifest by its layers) under the same tag.
            .image_manifest(manifest.replace(
                "\"layers\":[]",
                &format!(
                    "\"layers\":[{{\"mediaType\":\"application/vnd.docker.image.rootfs.diff.tar.gzip\",\"size\":1,\"digest\":\"sha256:{}\"}}]",
                    "b".repeat(64)
                ),
            ))
            .image_tag("0123456789abcdef")
            .send()
            .await;
        assert!(
            overwrite
                .as_ref()
                .err()
                .and_then(|e| e.as_service_error())
                // AWS answers ImageTagAlreadyExists; moto 5.2 ImageAlreadyExists.
                .is_some_and(|e| e.is_image_tag_already_exists_exception()
                    || e.is_image_already_exists_exception()),
            "an immutable tag is never overwritten: {overwrite:?}"
        );
        let still = client
            .batch_get_image()
            .registry_id(account)
            .repository_name(repo)
            .image_ids(
                ImageIdentifier::builder()
                    .image_tag("0123456789abcdef")
                    .build(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(
            still.images()[0].image_manifest(),
            Some(manifest),
            "the tag still names the first image"
        );
        assert!(
            !image_tag_exists(&client, account, repo, "fedcba9876543210")
                .await
                .unwrap()
        );
        assert_eq!(
            decide(&client, account, repo, "0123456789abcdef", image.clone())
                .await
                .unwrap(),
            Decision::Built { image }
        );
    }
}
