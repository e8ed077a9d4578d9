//! Raw bytes as a dotenv file (`--env-file`, `--secret-env-file`, `secrets set --from-env-file`):
//! the python-dotenv compatible parser, then the paths its pairs take.
//!
//! Invariants: never a panic and a bounded result (however the file references itself); an
//! error names a line of the file and, in a file's message, `FILE:LINE:` and the fix; the
//! environment path accepts exactly the files the plain parser reads whose every key is a valid
//! variable name, with the same pairs; the pairs are unique, and each reads back the same when
//! written again quoted (double and single), unquoted where that is possible, or as `--env`'s
//! `KEY=VALUE`; and the values reach the server container's environment unchanged through the
//! Deployment as the API server stores it (JSON).

use jockey_core::ProjectId;
use jockey_core::defaults::render_deployment;
use jockey_core::dotenv::{self, DotenvError, MAX_EXPANDED_BYTES};
use jockey_core::runtime::{RuntimeSettings, apply_settings, check_env_name, parse_assignment};
use jockey_core::{ContentHash, defaults::CONTAINER_NAME};
use k8s_openapi::api::apps::v1::Deployment;
use std::sync::OnceLock;

/// The environment `${VAR}` falls back to: one plain value, one that looks like syntax.
fn lookup(name: &str) -> Option<String> {
    match name {
        "HOME" => Some("/home/agent".into()),
        "TRICKY" => Some("${HOME} $HOME \"q\" 'q' \\ # x\n".into()),
        _ => None,
    }
}

/// Lines as the parser counts them: `\r\n`, `\n` and a lone `\r` each end one.
fn lines(text: &str) -> usize {
    1 + text.matches('\n').count() + text.matches('\r').count() - text.matches("\r\n").count()
}

fn check_error(text: &str, e: &DotenvError) {
    assert!(
        (1..=lines(text)).contains(&e.line),
        "line {} of a {}-line file: {e}",
        e.line,
        lines(text)
    );
    assert!(!e.cause.is_empty(), "an error without a cause");
    let msg = e.in_file("app.env");
    assert!(
        msg.starts_with(&format!("app.env:{}: ", e.line)),
        "the message does not start with FILE:LINE: {msg}"
    );
    assert!(msg.contains("; fix"), "the message names no fix: {msg}");
}

/// Writes a value back in a dotenv file's syntax.
type Quote = fn(&str) -> String;

fn double_quoted(v: &str) -> String {
    format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
}

fn single_quoted(v: &str) -> String {
    format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// A value that reads back as itself when written bare.
fn plain_writable(v: &str) -> bool {
    !v.contains(['#', '\n', '\r'])
        && !v.starts_with(['"', '\''])
        && v.trim() == v
        && !v.starts_with(char::is_whitespace)
}

fn deployment() -> &'static Deployment {
    static DEP: OnceLock<Deployment> = OnceLock::new();
    DEP.get_or_init(|| {
        let project = ProjectId::parse("demo").expect("a valid project name");
        render_deployment(&project, &ContentHash::from_digest(&[7; 32]))
    })
}

pub fn run(data: &[u8]) {
    // A file that is not UTF-8 is refused when read; its lossy decoding still tests the parser.
    let text = String::from_utf8_lossy(data);
    let plain = dotenv::parse(&text, lookup);
    let env = dotenv::parse_env(&text, lookup);
    if let Err(e) = &plain {
        check_error(&text, e);
    }
    if let Err(e) = &env {
        check_error(&text, e);
    }
    let pairs = match (plain, env) {
        (Err(a), Err(b)) => {
            // The names are checked once the whole file is read, before any `${...}`: the same
            // error, or a bad name where the parser's error was one of expansion.
            assert!(
                a == b || b.cause.contains("is not a valid environment variable name"),
                "the two paths refuse the file differently: {a} / {b}"
            );
            return;
        }
        (Ok(_), Err(e)) => {
            assert!(
                e.cause.contains("is not a valid environment variable name"),
                "a file the parser reads is refused for another reason: {e}"
            );
            return;
        }
        (Err(e), Ok(_)) => panic!("the environment path reads a file the parser refuses: {e}"),
        (Ok(a), Ok(b)) => {
            assert_eq!(a, b, "the two paths read different pairs");
            b
        }
    };

    let expanded: usize = pairs.iter().map(|(_, v)| v.len()).sum();
    assert!(
        expanded <= text.len() + MAX_EXPANDED_BYTES,
        "{expanded} bytes of values from a {}-byte file",
        text.len()
    );
    for (i, (k, v)) in pairs.iter().enumerate() {
        check_env_name(k).unwrap_or_else(|e| panic!("accepted key: {e}"));
        assert!(
            pairs[..i].iter().all(|(seen, _)| seen != k),
            "{k} given twice"
        );
        assert_eq!(
            parse_assignment(&format!("{k}={v}")).as_ref(),
            Ok(&(k.clone(), v.clone())),
            "--env {k}=... reads back otherwise"
        );
    }

    // Written again: `${` has no escape in python-dotenv, so those values cannot be written back.
    let writable: Vec<&(String, String)> =
        pairs.iter().filter(|(_, v)| !v.contains("${")).collect();
    let quoting: [(&str, Quote); 2] = [("double", double_quoted), ("single", single_quoted)];
    for (how, quote) in quoting {
        let file: String = writable
            .iter()
            .map(|(k, v)| format!("{k}={}\n", quote(v)))
            .collect();
        let back = dotenv::parse_env(&file, |_| None)
            .unwrap_or_else(|e| panic!("{how}-quoted pairs do not read back: {e}\n{file:?}"));
        let want: Vec<(String, String)> = writable.iter().map(|p| (*p).clone()).collect();
        assert_eq!(
            back, want,
            "{how}-quoted pairs read back otherwise: {file:?}"
        );
    }
    let bare: Vec<(String, String)> = writable
        .iter()
        .filter(|(_, v)| plain_writable(v))
        .map(|p| (*p).clone())
        .collect();
    let file: String = bare.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    assert_eq!(
        dotenv::parse_env(&file, |_| None).as_ref(),
        Ok(&bare),
        "bare pairs read back otherwise: {file:?}"
    );

    // The values on the server container, as the API server stores the Deployment.
    let mut dep = deployment().clone();
    let settings = RuntimeSettings {
        env: pairs.clone(),
        ..Default::default()
    };
    apply_settings(&mut dep, None, &settings, None);
    let json = serde_json::to_vec(&dep).expect("a Deployment serializes");
    let stored: Deployment = serde_json::from_slice(&json).expect("and reads back");
    let container = stored
        .spec
        .template
        .spec
        .and_then(|p| p.containers.into_iter().find(|c| c.name == CONTAINER_NAME))
        .expect("the server container");
    let got: Vec<(String, String)> = container
        .env
        .unwrap_or_default()
        .into_iter()
        .map(|e| (e.name, e.value.unwrap_or_default()))
        .collect();
    assert_eq!(
        got, pairs,
        "the container's environment differs from the file"
    );
}
