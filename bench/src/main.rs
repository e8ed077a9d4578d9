//! `cargo run --release -p jockey-bench`: times jockey's instance bundling (collect, canonical tar,
//! gzip, SHA-256) against the peer a careful engineer would otherwise script, GNU tar with every
//! canonicalising flag piped through `gzip -n -9` (jockey compresses at the best level too, to fit more into a ConfigMap) and `sha256sum`, on the same tree in the same run.
//! Prints a Markdown table of medians and the ratio jockey / peer (below 1 means jockey is faster).

use anyhow::{Context, Result, bail};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const RUNS: usize = 15;

/// A project tree of `files` Python-like files spread over a few directories, deterministic.
fn make_tree(dir: &Path, files: usize, bytes_each: usize) -> Result<()> {
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..files {
        let sub = dir.join(format!("providers/p{}/m{}", i % 7, i % 3));
        std::fs::create_dir_all(&sub)?;
        let mut body = String::with_capacity(bytes_each);
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
        std::fs::write(sub.join(format!("mod_{i}.py")), body)?;
    }
    std::fs::write(dir.join("server.py"), "print('hello')\n")?;
    Ok(())
}

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

fn time_jockey(dir: &Path) -> Result<Duration> {
    let mut times = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let start = Instant::now();
        let bundle = jockey_core::bundle::bundle_dir(dir)?;
        std::hint::black_box(&bundle);
        times.push(start.elapsed());
    }
    Ok(median(times))
}

fn time_peer(dir: &Path) -> Result<Duration> {
    let script = "tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=gnu \
                  -C \"$1\" -cf - . | tee >(sha256sum >/dev/null) | gzip -n -9 > /dev/null";
    let mut times = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let start = Instant::now();
        let status = Command::new("bash")
            .args(["-c", script, "peer"])
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

fn main() -> Result<()> {
    println!(
        "| tree | jockey bundle (median of {RUNS}) | GNU tar + gzip -n -9 + sha256sum | ratio jockey / peer |"
    );
    println!("|---|---|---|---|");
    for (files, bytes) in [(20, 2_000), (200, 2_000), (400, 4_000)] {
        let tmp = tempfile::tempdir()?;
        make_tree(tmp.path(), files, bytes)?;
        let ours = time_jockey(tmp.path())?;
        let peer = time_peer(tmp.path())?;
        println!(
            "| {files} files x {} KB | {:.2} ms | {:.2} ms | {:.2} |",
            bytes / 1000,
            ours.as_secs_f64() * 1e3,
            peer.as_secs_f64() * 1e3,
            ours.as_secs_f64() / peer.as_secs_f64()
        );
    }
    Ok(())
}
