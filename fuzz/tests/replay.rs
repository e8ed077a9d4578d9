//! `make test`'s share of the fuzzing: every committed corpus file (what `make fuzz` found
//! interesting) and every reproducer of a past crash goes through its target's entry function
//! on stable. A panic here is a crash libFuzzer would report.

use std::path::Path;

fn inputs(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect(),
        Err(_) => Vec::new(),
    };
    files.sort();
    files
}

fn replay(target: &str, min_corpus: usize) {
    let run = jockey_fuzz::TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .map(|(_, run)| *run)
        .unwrap_or_else(|| panic!("no target {target}"));
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let corpus = inputs(&root.join("corpus").join(target));
    assert!(
        corpus.len() >= min_corpus,
        "fuzz/corpus/{target} holds {} inputs, expected at least {min_corpus}: run `make fuzz` and commit the corpus",
        corpus.len()
    );
    let regressions = inputs(&root.join("regressions").join(target));
    for file in corpus.iter().chain(&regressions) {
        let data = std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let outcome = std::panic::catch_unwind(|| run(&data));
        assert!(
            outcome.is_ok(),
            "{} crashes the {target} target; reproduce with `cargo fuzz run {target} {}`",
            file.display(),
            file.display()
        );
    }
}

#[test]
fn admission_corpus_replays_without_a_crash() {
    replay("admission", 5);
}

#[test]
fn bundle_corpus_replays_without_a_crash() {
    replay("bundle", 5);
}

#[test]
fn dotenv_corpus_replays_without_a_crash() {
    replay("dotenv", 5);
}

#[test]
fn policy_corpus_replays_without_a_crash() {
    replay("policy", 5);
}
