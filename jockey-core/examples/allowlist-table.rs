//! Prints the README's table of what may be set on a project's objects (see
//! `jockey_core::allowlist::readme_table`).

fn main() {
    print!("{}", jockey_core::allowlist::readme_table());
}
