use super::*;
use sha2::{Digest, Sha256};
use std::fs;
use std::io::Read;

pub(super) fn write(root: &Path, rel: &str, data: &[u8]) {
    let p = root.join(rel);
    if let Some(parent) = p.parent() {
        fs::create_dir_all(parent).unwrap();
    }
    fs::write(p, data).unwrap();
}

pub(super) fn agent_files() -> Vec<(&'static str, &'static [u8])> {
    vec![
        ("server.py", b"print('hello')\n"),
        ("requirements.txt", b"fastapi\n"),
        ("providers/openai.py", b"KEY_ENV = 'OPENAI_API_KEY'\n"),
        ("providers/__init__.py", b""),
        ("providers/nested/deep.txt", b"deep\n"),
    ]
}

/// The paths and modes stored in a tar, with every header field that must be canonical.
pub(super) fn tar_listing(tar: &[u8]) -> Vec<(String, u32, bool)> {
    let mut archive = tar::Archive::new(tar);
    let mut out = Vec::new();
    for entry in archive.entries().unwrap() {
        let entry = entry.unwrap();
        let h = entry.header();
        assert_eq!(h.mtime().unwrap(), 0);
        assert_eq!(h.uid().unwrap(), 0);
        assert_eq!(h.gid().unwrap(), 0);
        assert!(h.username().unwrap().unwrap_or("").is_empty());
        assert!(h.groupname().unwrap().unwrap_or("").is_empty());
        let is_dir = h.entry_type().is_dir();
        assert!(is_dir || h.entry_type().is_file());
        out.push((
            entry
                .path()
                .unwrap()
                .to_string_lossy()
                .trim_end_matches('/')
                .to_string(),
            h.mode().unwrap(),
            is_dir,
        ));
    }
    out
}

/// Incompressible bytes, deterministically.
fn noise(n: usize, mut seed: u64) -> Vec<u8> {
    (0..n)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect()
}

#[test]
fn oversized_bundle_is_refused_listing_the_largest_files() {
    let t = tempfile::tempdir().unwrap();
    write(t.path(), "server.py", b"s");
    write(t.path(), "model/weights.bin", &noise(900 * 1024, 1));
    write(t.path(), "data/extra.bin", &noise(300 * 1024, 2));
    let err = bundle_dir(t.path()).unwrap_err();
    let BundleError::TooLarge { largest, .. } = &err else {
        panic!("{err}");
    };
    assert_eq!(largest[0].0, "model/weights.bin");
    let msg = err.to_string();
    assert!(msg.contains("model/weights.bin (900.0 KiB)"), "{msg}");
    assert!(msg.contains("data/extra.bin"), "{msg}");
    assert!(msg.contains(IGNORE_FILE), "{msg}");

    // Compressible content of the same size is fine: the limit is on what is stored.
    let u = tempfile::tempdir().unwrap();
    write(u.path(), "server.py", b"s");
    write(u.path(), "big.txt", &vec![b'a'; 2 * 1024 * 1024]);
    assert!(bundle_dir(u.path()).is_ok());
}

#[test]
fn smaller_limits_refuse_at_their_own_sizes_with_the_same_messages() {
    let t = tempfile::tempdir().unwrap();
    write(t.path(), "server.py", b"s");
    write(t.path(), "a.bin", &noise(3000, 3));
    let small = Limits {
        compressed: 2048,
        raw: 1 << 20,
    };
    let err = bundle_dir_within(t.path(), &small).unwrap_err();
    assert!(
        matches!(err, BundleError::TooLarge { limit: 2048, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("a.bin (2.9 KiB)"), "{err}");
    let tiny = Limits {
        compressed: 2048,
        raw: 2000,
    };
    let err = bundle_dir_within(t.path(), &tiny).unwrap_err();
    assert!(
        matches!(err, BundleError::TooLargeRaw { limit: 2000, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("more than 2.0 KiB"), "{err}");
    // The default is Kubernetes' limit, which this tree is far below.
    assert_eq!(
        bundle_dir_within(t.path(), &Limits::default()).unwrap(),
        bundle_dir(t.path()).unwrap()
    );
}

#[test]
fn instance_configmap_is_immutable_labelled_and_carries_the_digest() {
    let t = tempfile::tempdir().unwrap();
    for (rel, data) in agent_files() {
        write(t.path(), rel, data);
    }
    let b = bundle_dir(t.path()).unwrap();
    let project = ProjectId::parse("demo").unwrap();
    let cm = instance_configmap(&project, &b);
    assert_eq!(
        cm.metadata.name.as_deref(),
        Some(format!("instance-{}", b.hash.short()).as_str())
    );
    assert_eq!(cm.immutable, Some(true));
    let labels = cm.metadata.labels.clone().unwrap();
    assert_eq!(labels[LABEL_PROJECT], "demo");
    assert_eq!(labels[LABEL_CONTENT_HASH], b.hash.short());
    assert_eq!(
        cm.metadata.annotations.clone().unwrap()[ANNOTATION_CONTENT_SHA256],
        b.hash.full()
    );
    assert_eq!(
        hex::encode(Sha256::digest(&b.tar)),
        b.hash.full(),
        "the hash is of the uncompressed tar"
    );
    let gz = &cm.binary_data.as_ref().unwrap()[INSTANCE_TAR_KEY].0;
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(gz.as_slice())
        .read_to_end(&mut tar)
        .unwrap();
    assert_eq!(tar, b.tar);
    assert!(cm.data.is_none());
    assert!(!b.has_dockerfile);
}

#[test]
fn dockerfile_is_detected_only_at_the_top() {
    let t = tempfile::tempdir().unwrap();
    write(t.path(), "server.py", b"s");
    write(t.path(), "sub/Dockerfile", b"FROM x");
    assert!(!bundle_dir(t.path()).unwrap().has_dockerfile);
    write(t.path(), "Dockerfile", b"FROM x");
    assert!(bundle_dir(t.path()).unwrap().has_dockerfile);
}

#[test]
fn human_sizes() {
    assert_eq!(human_bytes(100), "100 B");
    assert_eq!(human_bytes(1536), "1.5 KiB");
    assert_eq!(human_bytes(3 * 1024 * 1024), "3.0 MiB");
}
