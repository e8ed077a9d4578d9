#![no_main]
// cargo fuzz target; the checks live in jockey_fuzz::dotenv so that `make test` replays the corpus
// through exactly the same code on stable.
libfuzzer_sys::fuzz_target!(|data: &[u8]| jockey_fuzz::dotenv::run(data));
