//! `jockey-bench`: the Rust side of `make bench` (bench/bench.py drives the rest).
//!
//! - `reviews DIR`: the AdmissionReview bodies every webhook under test receives, and jockey's
//!   patched objects the peers' answers are checked against.
//! - `check OBJECT ANSWER EXPECTED`: applies a webhook's answer to the object and compares it with
//!   jockey's result (exit 1 with the difference when they differ).
//! - `decide DIR`: the pure decision alone (`jockey_core::admission::handle` and the answer's
//!   encoding) on the reviews in DIR, in-process: microseconds per review, to tell the decision's
//!   cost from the server's.
//! - `packaging`: times jockey's instance bundling (collect, canonical tar, gzip at the default level,
//!   SHA-256) against the pipeline a careful engineer would script, GNU tar with every
//!   canonicalising flag piped through `gzip -n` (default level and `-9`) and `sha256sum`, on the
//!   same tree in the same run; prints JSON lines (medians).

mod reviews;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A project tree of `files` Python-like files (`bytes_each` each) over a few directories,
/// deterministic.
fn make_tree(dir: &Path, files: usize, bytes_each: usize) -> Result<()> {
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..files {
        let sub = dir.join(format!("providers/p{}/m{}", i % 7, i % 3));
        std::fs::create_dir_all(&sub)?;
        let mut body = String::with_capacity(bytes_each + 64);
        while body.len() < bytes_each {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            body.push_str(&format!(
                "value_{:x} = call({}, {:?})\n",
                seed % 4096,
                i,
                seed % 97
            ));
        }
        body.truncate(bytes_each);
        std::fs::write(sub.join(format!("mod_{i}.py")), body)?;
    }
    std::fs::write(dir.join("server.py"), "print('hello')\n")?;
    Ok(())
}

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

/// jockey's bundle of `dir`, the code `deploy` runs; a tree too big for a ConfigMap (which
/// `deploy` refuses) is bundled within no limit, through the same steps.
fn time_jockey(dir: &Path, runs: usize) -> Result<(Duration, bool)> {
    use jockey_core::bundle::{self, Limits};
    let refused = bundle::bundle_dir(dir).is_err();
    let limits = if refused {
        Limits {
            compressed: usize::MAX,
            raw: u64::MAX,
        }
    } else {
        Limits::KUBERNETES
    };
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        std::hint::black_box(bundle::bundle_dir_within(dir, &limits)?);
        times.push(start.elapsed());
    }
    Ok((median(times), refused))
}

fn time_peer(dir: &Path, gzip_flags: &str, runs: usize) -> Result<Duration> {
    let script = format!(
        "set -o pipefail; tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner \
         -C \"$1\" -c . | gzip -n {gzip_flags} | sha256sum > /dev/null"
    );
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        let status = Command::new("bash")
            .args(["-c", &script, "peer"])
            .arg(dir)
            .status()
            .context("running GNU tar | gzip | sha256sum")?;
        if !status.success() {
            bail!("the peer pipeline failed: {status}");
        }
        times.push(start.elapsed());
    }
    Ok(median(times))
}

fn packaging() -> Result<()> {
    for (label, files, bytes, runs) in [
        ("1 MiB / 1,000 files", 1_000, 1_048, 9),
        ("50 MiB / 10,000 files", 10_000, 5_243, 3),
    ] {
        let tmp = tempfile::tempdir()?;
        make_tree(tmp.path(), files, bytes)?;
        let (ours, refused) = time_jockey(tmp.path(), runs)?;
        for (flags, name) in [
            ("", "tar | gzip -n | sha256sum"),
            ("-9", "tar | gzip -n -9 | sha256sum"),
        ] {
            let peer = time_peer(tmp.path(), flags, runs)?;
            let line = json!({
                "tree": label, "runs": runs,
                "ours_ms": ours.as_secs_f64() * 1e3,
                "peer_ms": peer.as_secs_f64() * 1e3,
                "peer_name": name,
                "refused_by_deploy": refused,
            });
            println!("{line}");
        }
    }
    Ok(())
}

fn read_json(p: &Path) -> Result<Value> {
    let text = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
    serde_json::from_slice(&text).with_context(|| format!("parsing {}", p.display()))
}

fn check(object: &Path, answer: &Path, expected: &Path) -> Result<()> {
    let review = read_json(object)?;
    let obj = review
        .pointer("/request/object")
        .context("the review has no request.object")?;
    let mut got = reviews::apply_answer(obj, &read_json(answer)?)?;
    let mut want = read_json(expected)?;
    // A Go webhook marshals the empty status of its typed object into its patch (the API server
    // drops status on create); that is not a difference in the defaults.
    for v in [&mut got, &mut want] {
        if let Some(m) = v.as_object_mut() {
            m.remove("status");
        }
        // Likewise the zero `spec.strategy` of a typed Deployment (the API server defaults it).
        if let Some(spec) = v.get_mut("spec").and_then(Value::as_object_mut)
            && spec.get("strategy") == Some(&json!({}))
        {
            spec.remove("strategy");
        }
    }
    if got != want {
        bail!(
            "the answer produces a different object than jockey's:\n got: {}\nwant: {}",
            serde_json::to_string(&got)?,
            serde_json::to_string(&want)?
        );
    }
    Ok(())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["reviews", dir] => reviews::write(&PathBuf::from(dir)),
        ["check", object, answer, expected] => {
            check(Path::new(object), Path::new(answer), Path::new(expected))
        }
        ["packaging"] | [] => packaging(),
        ["decide", dir] => reviews::decide(&PathBuf::from(dir)),
        _ => bail!(
            "usage: jockey-bench reviews DIR | check REVIEW ANSWER EXPECTED | decide DIR | packaging"
        ),
    }
}
