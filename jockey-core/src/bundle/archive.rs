//! The bytes of a bundle: the canonical tar of the collected entries, its gzip and its digest.
//! Kept apart from the walk ([`super::collect`]) so that what decides the instance hash is pure
//! and can be tested and fuzzed without a file system; the compression level is chosen here too,
//! since only a bundle near the ConfigMap limit needs the slower one.

use super::{Entry, EntryKind};
use sha2::{Digest, Sha256};
use std::io::Write as _;

/// The canonical tar of `entries` (which must be sorted by path and unique; see
/// [`super::Bundle::from_collected`]). Pure and deterministic.
pub fn canonical_tar(entries: &[Entry]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for entry in entries {
        // A fresh GNU header is all zeroes (so no user or group names); GNU long-name records
        // carry paths over 100 bytes, and the tar crate writes those with mtime 0 and uid 0 too.
        let mut header = tar::Header::new_gnu();
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        let result = match &entry.kind {
            EntryKind::Dir => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o755);
                header.set_size(0);
                builder.append_data(&mut header, &entry.path, std::io::empty())
            }
            EntryKind::File { data, executable } => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(if *executable { 0o755 } else { 0o644 });
                header.set_size(data.len() as u64);
                builder.append_data(&mut header, &entry.path, data.as_slice())
            }
        };
        // Writing into a Vec cannot fail; a path the tar format cannot hold (absolute or with
        // `..`) never comes out of `collect`. Dropping such an entry would silently change the
        // bundle, so it is a programming error worth a loud panic in tests.
        if let Err(e) = result {
            debug_assert!(false, "tar entry {}: {e}", entry.path);
        }
    }
    builder.into_inner().unwrap_or_default()
}

/// Gzip with no file name and mtime 0, so the compressed bytes depend only on the tar, at the
/// default level: the hash names the uncompressed tar, and an existing `instance-<h>` is trusted
/// by that hash, never by its bytes, so the level is free; the best level costs several times
/// the time for a few percent of size (bench/README.md, packaging).
pub fn gzip(data: &[u8]) -> Vec<u8> {
    gzip_at(data, flate2::Compression::default())
}

/// [`gzip`] at the best level, for a bundle the default level leaves just over the limit.
pub fn gzip_best(data: &[u8]) -> Vec<u8> {
    gzip_at(data, flate2::Compression::best())
}

/// The tar's SHA-256 and [`compress_within`]; on another thread past a few hundred KiB, the way
/// `tar | gzip | sha256sum` spreads over cores (a thread costs more than hashing a small tar).
pub(super) fn digest_and_compress(tar: &[u8], limit: usize) -> (Vec<u8>, Result<Vec<u8>, usize>) {
    const PARALLEL_FROM: usize = 256 * 1024;
    if tar.len() < PARALLEL_FROM {
        return (Sha256::digest(tar).to_vec(), compress_within(tar, limit));
    }
    std::thread::scope(|s| {
        let hashing = s.spawn(|| Sha256::digest(tar).to_vec());
        let gz = compress_within(tar, limit);
        // The hashing thread cannot panic on a byte slice; were it to, hash here instead.
        let digest = hashing
            .join()
            .unwrap_or_else(|_| Sha256::digest(tar).to_vec());
        (digest, gz)
    })
}

/// The tar gzip'd in at most `limit` bytes: at the default level, else (near the limit) at the
/// best, so only a bundle too big at every level is refused; `Err` holds the best level's size.
fn compress_within(tar: &[u8], limit: usize) -> Result<Vec<u8>, usize> {
    let gz = gzip(tar);
    if gz.len() <= limit {
        return Ok(gz);
    }
    let gz = gzip_best(tar);
    if gz.len() <= limit {
        Ok(gz)
    } else {
        Err(gz.len())
    }
}

fn gzip_at(data: &[u8], level: flate2::Compression) -> Vec<u8> {
    let mut encoder = flate2::GzBuilder::new()
        .mtime(0)
        .operating_system(255)
        .write(Vec::with_capacity(data.len() / 4), level);
    // Writes into a Vec cannot fail.
    let _ = encoder.write_all(data);
    encoder.finish().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::tests::tar_listing;
    use crate::bundle::{Bundle, Collected};
    use std::fmt::Write as _;
    use std::io::Read;

    #[test]
    fn canonical_tar_ignores_entry_order() {
        let a = vec![
            Entry::dir("providers"),
            Entry::file("providers/a.py", "a", false),
            Entry::file("server.py", "s", true),
        ];
        let mut b = a.clone();
        b.reverse();
        let ba = Bundle::from_collected(Collected {
            entries: a,
            ..Default::default()
        })
        .unwrap();
        let bb = Bundle::from_collected(Collected {
            entries: b,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(ba.tar, bb.tar);
        assert_eq!(ba.hash, bb.hash);
        assert_eq!(
            tar_listing(&ba.tar),
            vec![
                ("providers".to_string(), 0o755, true),
                ("providers/a.py".to_string(), 0o644, false),
                ("server.py".to_string(), 0o755, false),
            ]
        );
    }

    #[test]
    fn long_paths_survive_and_stay_canonical() {
        let long = format!("providers/{}/x.py", "d".repeat(120));
        let entries = vec![Entry::file(long.clone(), "x", false)];
        let b1 = Bundle::from_collected(Collected {
            entries: entries.clone(),
            ..Default::default()
        })
        .unwrap();
        let b2 = Bundle::from_collected(Collected {
            entries,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(b1.hash, b2.hash);
        assert_eq!(tar_listing(&b1.tar)[0].0, long);
    }

    #[test]
    fn a_bundle_just_over_the_limit_at_the_default_level_is_packed_at_the_best() {
        // Repetitive text, where the best level finds more than the default one.
        let mut text = String::new();
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        while text.len() < 200_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let _ = writeln!(
                text,
                "value_{:x} = call({}, {})",
                seed % 4096,
                seed % 13,
                seed % 97
            );
        }
        let data = text.as_bytes();
        let (default, best) = (gzip(data).len(), gzip_best(data).len());
        assert!(best < default, "best {best} default {default}");
        assert_eq!(compress_within(data, default), Ok(gzip(data)));
        let packed = compress_within(data, best).unwrap();
        assert_eq!(packed, gzip_best(data));
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(packed.as_slice())
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, data);
        assert_eq!(compress_within(data, best - 1), Err(best));
    }

    #[test]
    fn gzip_has_no_name_and_zero_mtime() {
        let gz = gzip(b"hello");
        assert_eq!(&gz[..2], &[0x1f, 0x8b]);
        let flags = gz[3];
        assert_eq!(flags & 0x08, 0, "FNAME must not be set");
        assert_eq!(&gz[4..8], &[0, 0, 0, 0], "MTIME must be 0");
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(gz.as_slice())
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, b"hello");
        assert_eq!(gzip(b"hello"), gz);
    }
}
