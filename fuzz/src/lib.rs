//! The fuzz targets' entry functions. Each `run` takes raw bytes, drives one piece of jockey that
//! reads untrusted input, and panics only when an invariant breaks: libFuzzer (`make fuzz`)
//! reports that panic as a crash, and `tests/replay.rs` (`make test`) runs every committed corpus
//! file through the same function on stable.

pub mod admission;
pub mod bundle;
pub mod dotenv;
pub mod policy;

/// A target's entry function.
pub type Target = fn(&[u8]);

/// The targets, by the name of their `fuzz_targets/*.rs` and `corpus/*` directory.
pub const TARGETS: &[(&str, Target)] = &[
    ("admission", admission::run),
    ("bundle", bundle::run),
    ("dotenv", dotenv::run),
    ("policy", policy::run),
];
