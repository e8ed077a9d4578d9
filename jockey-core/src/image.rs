//! What an image is named by (the contract's image row), and the image recorded for an instance.
//!
//! - A project **with its own Dockerfile**: the image holds everything, so it is named by the
//!   instance's content: `<registry>/<prefix>/PROJECT:<h>`.
//! - A project on the **built-in template**: the image holds only `BASE_IMAGE` and the installed
//!   dependencies, so it is named by what it contains, [`dependency_tag`] (`d-` + 16 hex digits of
//!   a hash of `requirements.txt`, [`TEMPLATE_VERSION`] and `BASE_IMAGE`); the project's files come
//!   from the instance ConfigMap at pod start (unpacked by the agent container's own command, or
//!   by the `jockey-unpack` init container when it has a command of its own; see
//!   [`crate::defaults`]). A change to the code alone keeps the tag: nothing is built.
//!
//! Which image an instance runs is recorded on its ConfigMap (annotation
//! [`ANNOTATION_IMAGE`]) by `deploy` once the build broker answered; `deploy`, `rollback` and the
//! webhook read it from there ([`recorded_image_of`]). Pure.

use crate::ProjectId;
use crate::names::ANNOTATION_IMAGE;
use k8s_openapi::api::core::v1::ConfigMap;
use sha2::{Digest, Sha256};

/// The version of the built-in template (its Dockerfile and how the pod unpacks the instance).
/// Part of every dependency tag: a change of the template builds every dependency image anew.
pub const TEMPLATE_VERSION: &str = "python-deps/1";
/// Prefix of a dependency tag.
pub const DEPENDENCY_TAG_PREFIX: &str = "d-";
/// The dependency file the built-in template installs.
pub const REQUIREMENTS_FILE: &str = "requirements.txt";

/// `d-` + the first 16 lowercase hex digits of the SHA-256 over the dependency inputs: the bytes
/// of `requirements.txt` (or a marker saying there is none, so an empty file and no file differ),
/// the template's version and `BASE_IMAGE`, each length-prefixed so no two inputs can run into
/// each other. Nothing else: the project's code never changes it. Pure.
pub fn dependency_tag(
    requirements: Option<&[u8]>,
    template_version: &str,
    base_image: &str,
) -> String {
    let mut h = Sha256::new();
    let mut field = |name: &str, value: Option<&[u8]>| {
        h.update(name.as_bytes());
        match value {
            Some(v) => {
                h.update([1u8]);
                h.update((v.len() as u64).to_be_bytes());
                h.update(v);
            }
            None => h.update([0u8]),
        }
    };
    field("requirements.txt", requirements);
    field("template", Some(template_version.as_bytes()));
    field("base-image", Some(base_image.as_bytes()));
    let digest = hex::encode(h.finalize());
    format!("{DEPENDENCY_TAG_PREFIX}{}", &digest[..16])
}

/// Whether `tag` is a dependency tag (`d-` + 16 lowercase hex digits).
pub fn is_dependency_tag(tag: &str) -> bool {
    tag.strip_prefix(DEPENDENCY_TAG_PREFIX).is_some_and(|h| {
        h.len() == 16
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// Whether `image` (`<repo>:<tag>`, no digest) carries a dependency tag: an image of the built-in
/// template, which runs the instance's files unpacked at pod start.
pub fn is_dependency_image(image: &str) -> bool {
    !image.contains('@')
        && image
            .rsplit_once(':')
            .is_some_and(|(repo, tag)| !repo.is_empty() && is_dependency_tag(tag))
}

/// The image `<registry>/<prefix>/PROJECT:<tag>`.
pub fn image_with_tag(registry: &str, prefix: &str, project: &ProjectId, tag: &str) -> String {
    format!(
        "{}/{}:{tag}",
        registry.trim_end_matches('/'),
        project.repository(prefix)
    )
}

/// The build context of a dependency image: a gzip'd tar holding only `requirements.txt` (empty
/// when the project has none), so that nothing but the dependency inputs reaches the build and a
/// change to the code can never invalidate it. Canonical like an instance tar (mtime 0, uid/gid
/// 0, mode 0644). Pure.
pub fn dependency_context(requirements: Option<&[u8]>) -> Vec<u8> {
    let bytes = requirements.unwrap_or_default();
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_ustar();
    header.set_size(bytes.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    header.set_entry_type(tar::EntryType::Regular);
    // Writing into memory cannot fail.
    let _ = builder.append_data(&mut header, REQUIREMENTS_FILE, bytes);
    let tar = builder.into_inner().unwrap_or_default();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let _ = std::io::Write::write_all(&mut gz, &tar);
    gz.finish().unwrap_or_default()
}

/// The name of the build of a dependency image, `<project>-deps-<16 hex>` (the tag's digits),
/// at most 60 characters (so `<name>-ok`, the broker's record that it was pushed, fits in 63):
/// two instances with the same dependencies share it, so they share one build. A project id
/// longer than 38 characters is cut and suffixed with a digest of the whole id.
pub fn dependency_build_name(project: &ProjectId, tag: &str) -> String {
    const MAX_PROJECT_PART: usize = 63 - "-deps-".len() - 16 - "-ok".len();
    let part = project.name_part(MAX_PROJECT_PART);
    let digits = tag.strip_prefix(DEPENDENCY_TAG_PREFIX).unwrap_or(tag);
    format!("{part}-deps-{digits}")
}

/// The images recorded on an instance ConfigMap (annotation [`ANNOTATION_IMAGE`], comma
/// separated: projects of one namespace deploying identical files share the ConfigMap, each
/// with its own image).
pub fn recorded_images(cm: &ConfigMap) -> Vec<String> {
    cm.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(ANNOTATION_IMAGE))
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|i| !i.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// The image recorded for `project` on this instance: the one whose last path segment is
/// `PROJECT:<tag>`.
pub fn recorded_image_of(cm: &ConfigMap, project: &ProjectId) -> Option<String> {
    let suffix = format!("/{project}:");
    recorded_images(cm).into_iter().find(|i| {
        i.rsplit_once(':')
            .is_some_and(|(repo, _)| format!("{repo}:").ends_with(&suffix))
    })
}

/// Where defaulting learns the image recorded for an instance ConfigMap of the object's
/// namespace: `deploy` answers from the ConfigMap it just wrote, the webhook from the one it read
/// from the API server. `None`: nothing recorded (or not known), and the image is the one named by
/// the instance (`:<h>`), as for a project with its own Dockerfile.
pub trait InstanceImages {
    fn recorded(&self, configmap: &str, project: &ProjectId) -> Option<String>;
}

/// Nothing recorded anywhere.
pub struct NoRecords;

impl InstanceImages for NoRecords {
    fn recorded(&self, _: &str, _: &ProjectId) -> Option<String> {
        None
    }
}

/// The instance ConfigMaps at hand, as read.
impl InstanceImages for [ConfigMap] {
    fn recorded(&self, configmap: &str, project: &ProjectId) -> Option<String> {
        self.iter()
            .find(|cm| cm.metadata.name.as_deref() == Some(configmap))
            .and_then(|cm| recorded_image_of(cm, project))
    }
}

impl InstanceImages for Vec<ConfigMap> {
    fn recorded(&self, configmap: &str, project: &ProjectId) -> Option<String> {
        self.as_slice().recorded(configmap, project)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use std::collections::BTreeMap;

    const BASE: &str = "python:3.12-slim";

    #[test]
    fn dependency_tag_is_named_by_the_dependency_inputs_only() {
        let reqs = b"requests==2.32.3\n".as_slice();
        let t = dependency_tag(Some(reqs), TEMPLATE_VERSION, BASE);
        assert!(is_dependency_tag(&t), "{t}");
        assert_eq!(t.len(), 2 + 16);
        // Deterministic.
        assert_eq!(t, dependency_tag(Some(reqs), TEMPLATE_VERSION, BASE));
        // Each input changes it.
        let others = [
            dependency_tag(Some(b"requests==2.32.4\n"), TEMPLATE_VERSION, BASE),
            dependency_tag(None, TEMPLATE_VERSION, BASE),
            dependency_tag(Some(b""), TEMPLATE_VERSION, BASE),
            dependency_tag(Some(reqs), "python-deps/2", BASE),
            dependency_tag(Some(reqs), TEMPLATE_VERSION, "python:3.13-slim"),
        ];
        for o in &others {
            assert_ne!(&t, o);
        }
        // No file and an empty file are different inputs; fields cannot run into each other.
        assert_ne!(others[1], others[2]);
        assert_ne!(
            dependency_tag(Some(b"a"), "bc", BASE),
            dependency_tag(Some(b"ab"), "c", BASE)
        );
    }

    #[test]
    fn code_does_not_change_the_dependency_tag() {
        // The tag takes only requirements.txt: two bundles that differ in server.py but share
        // requirements.txt get the same image.
        use crate::bundle::{Bundle, Collected, Entry};
        let bundle = |server: &str| {
            Bundle::from_collected(Collected {
                entries: vec![
                    Entry::file("server.py", server, false),
                    Entry::file("requirements.txt", "six==1.17.0\n", false),
                ],
                ..Default::default()
            })
            .unwrap()
        };
        let (a, b) = (bundle("print(1)"), bundle("print(2)"));
        assert_ne!(a.hash, b.hash);
        let reqs = |bundle: &Bundle| {
            crate::build_request::read_tar(&bundle.gz, 1 << 20)
                .unwrap()
                .requirements
        };
        assert_eq!(reqs(&a), reqs(&b));
        assert_eq!(
            dependency_tag(reqs(&a).as_deref(), TEMPLATE_VERSION, BASE),
            dependency_tag(reqs(&b).as_deref(), TEMPLATE_VERSION, BASE)
        );
    }

    #[test]
    fn dependency_context_holds_requirements_only_and_build_names_fit() {
        use std::io::Read;
        let read = |gz: &[u8]| {
            let mut tar = Vec::new();
            flate2::read::GzDecoder::new(gz)
                .read_to_end(&mut tar)
                .unwrap();
            let mut a = tar::Archive::new(tar.as_slice());
            a.entries()
                .unwrap()
                .map(|e| {
                    let mut e = e.unwrap();
                    let mut body = String::new();
                    e.read_to_string(&mut body).unwrap();
                    (e.path().unwrap().display().to_string(), body)
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(
            read(&dependency_context(Some(b"six\n"))),
            vec![("requirements.txt".to_string(), "six\n".to_string())]
        );
        assert_eq!(
            read(&dependency_context(None)),
            vec![("requirements.txt".to_string(), String::new())]
        );
        assert_eq!(
            dependency_context(Some(b"x")),
            dependency_context(Some(b"x"))
        );
        let tag = dependency_tag(None, TEMPLATE_VERSION, BASE);
        let p = ProjectId::parse("demo").unwrap();
        assert_eq!(
            dependency_build_name(&p, &tag),
            format!("demo-deps-{}", &tag[2..])
        );
        let long = ProjectId::parse(&"a".repeat(48)).unwrap();
        let long2 = ProjectId::parse(&format!("{}b", "a".repeat(47))).unwrap();
        let n = dependency_build_name(&long, &tag);
        assert!(n.len() + 3 <= 63, "{n}");
        assert_ne!(n, dependency_build_name(&long2, &tag));
    }

    #[test]
    fn dependency_images_are_told_apart() {
        assert!(is_dependency_image("r:5000/hosting/p:d-0123456789abcdef"));
        assert!(!is_dependency_image("r:5000/hosting/p:0123456789abcdef"));
        assert!(!is_dependency_image("r:5000/hosting/p:d-0123456789ABCDEF"));
        assert!(!is_dependency_image("r/p@sha256:d-0123456789abcdef"));
        assert!(!is_dependency_image(":d-0123456789abcdef"));
        assert!(!is_dependency_tag("d-0123"));
    }

    #[test]
    fn recorded_images_are_a_list_one_per_project() {
        let cm = |v: &str| ConfigMap {
            metadata: ObjectMeta {
                name: Some("instance-0123456789abcdef".into()),
                annotations: Some(BTreeMap::from([(
                    ANNOTATION_IMAGE.to_string(),
                    v.to_string(),
                )])),
                ..Default::default()
            },
            ..Default::default()
        };
        let a = ProjectId::parse("a").unwrap();
        let ab = ProjectId::parse("ab").unwrap();
        let two = cm("r:5000/hosting/a:d-0123456789abcdef, r:5000/hosting/ab:0123456789abcdef");
        assert_eq!(
            recorded_image_of(&two, &a).as_deref(),
            Some("r:5000/hosting/a:d-0123456789abcdef")
        );
        assert_eq!(
            recorded_image_of(&two, &ab).as_deref(),
            Some("r:5000/hosting/ab:0123456789abcdef")
        );
        let cms = vec![two];
        assert_eq!(
            cms.recorded("instance-0123456789abcdef", &a).as_deref(),
            Some("r:5000/hosting/a:d-0123456789abcdef")
        );
        assert_eq!(cms.recorded("instance-ffffffffffffffff", &a), None);
        assert_eq!(NoRecords.recorded("instance-0123456789abcdef", &a), None);
    }
}
