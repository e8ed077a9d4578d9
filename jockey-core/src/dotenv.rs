//! A dotenv reader that agrees with python-dotenv (1.x) on every file python-dotenv reads without
//! a warning: `export` prefixes, `#` comments, single- and double-quoted values that may span
//! lines, python-dotenv's escapes, and `${VAR}` / `${VAR:-default}` interpolation (earlier keys of
//! the file first, then the environment `lookup` gives, then the default).
//!
//! Where python-dotenv only logs "could not parse statement" and skips the line, this reader
//! refuses the whole file with the line and what is wrong: a secret silently dropped would start
//! the server without its key. Pure: text in, pairs out.

use std::collections::BTreeMap;

/// One unreadable statement: its 1-based line and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {cause}")]
pub struct DotenvError {
    pub line: usize,
    pub cause: String,
}

/// What `${...}` references may add to a file's values, all values together: more than a Secret
/// (1 MiB) or a Deployment can hold is a mistake, and without a bound `A=${A}${A}` repeated a few
/// dozen times would exhaust memory before anything could say so.
pub const MAX_EXPANDED_BYTES: usize = 1024 * 1024;

/// `KEY=VALUE` pairs in file order; a key given twice keeps its last value (as python-dotenv).
/// A bare `KEY` without `=` sets nothing, as with python-dotenv's `load_dotenv`.
pub fn parse(
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Vec<(String, String)>, DotenvError> {
    resolve(text, parse_raw(text)?, lookup)
}

/// [`parse`] for a file jockey turns into environment variables (`--env-file`,
/// `--secret-env-file`, `secrets set --from-env-file`): every key must also be a name a shell,
/// Python and the container runtime accept; the error names the line of the first that is not.
pub fn parse_env(
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Vec<(String, String)>, DotenvError> {
    let raw = parse_raw(text)?;
    for s in &raw {
        crate::runtime::check_env_name(&s.key).map_err(|cause| DotenvError {
            line: line_at(text, s.start),
            cause,
        })?;
    }
    resolve(text, raw, lookup)
}

impl DotenvError {
    /// The message for a file: `FILE:LINE: cause; fix ...`, never a value.
    pub fn in_file(&self, file: &str) -> String {
        format!(
            "{file}:{}: {}; fix the file and run again (nothing was written)",
            self.line, self.cause
        )
    }
}

fn resolve(
    text: &str,
    raw: Vec<Statement>,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Vec<(String, String)>, DotenvError> {
    let mut resolved: Vec<(String, String)> = Vec::new();
    // Key -> its slot in `resolved`: files of many thousand keys stay linear.
    let mut slots: BTreeMap<String, usize> = BTreeMap::new();
    let mut budget = MAX_EXPANDED_BYTES;
    for Statement { start, key, value } in raw {
        let Some(value) = value else { continue };
        let value = interpolate(&value, &mut budget, |name| {
            slots
                .get(name)
                .map(|&i| resolved[i].1.clone())
                .or_else(|| lookup(name))
        })
        .ok_or_else(|| DotenvError {
            line: line_at(text, start),
            cause: format!(
                "the ${{...}} references in the value of {key} expand the file's values past \
                 {MAX_EXPANDED_BYTES} bytes, more than a Secret or a Deployment can hold; \
                 reference smaller values"
            ),
        })?;
        match slots.get(&key) {
            Some(&i) => resolved[i].1 = value,
            None => {
                slots.insert(key.clone(), resolved.len());
                resolved.push((key, value));
            }
        }
    }
    Ok(resolved)
}

/// `${NAME}` and `${NAME:-default}`, python-dotenv's POSIX subset; `$NAME` stays literal.
/// `None` once the expansions would use up more than `budget` bytes.
fn interpolate(
    value: &str,
    budget: &mut usize,
    env: impl Fn(&str) -> Option<String>,
) -> Option<String> {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else { break };
        let inner = &after[..end];
        let (name, default) = match inner.find(":-") {
            Some(i) if !inner[..i].contains(':') => (&inner[..i], Some(&inner[i + 2..])),
            _ if inner.contains(':') => {
                // Not a variable in python-dotenv's grammar: kept as written.
                out.push_str(&rest[..start + 2]);
                rest = after;
                continue;
            }
            _ => (inner, None),
        };
        out.push_str(&rest[..start]);
        let expanded = env(name).unwrap_or_else(|| default.unwrap_or("").to_string());
        *budget = budget.checked_sub(expanded.len())?;
        out.push_str(&expanded);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Some(out)
}

/// The 1-based line `pos` is on: `\r\n`, `\n` and a lone `\r` each end a line. Only asked for
/// on an error, so that reading a long file stays linear.
fn line_at(text: &str, pos: usize) -> usize {
    let before = text.as_bytes().get(..pos).unwrap_or(text.as_bytes());
    let mut line = 1;
    let mut i = 0;
    while i < before.len() {
        match before[i] {
            b'\r' if before.get(i + 1) == Some(&b'\n') => {
                line += 1;
                i += 1;
            }
            b'\r' | b'\n' => line += 1,
            _ => {}
        }
        i += 1;
    }
    line
}

/// One `KEY[=VALUE]` statement and where it starts.
struct Statement {
    start: usize,
    key: String,
    value: Option<String>,
}

struct Reader<'a> {
    text: &'a str,
    pos: usize,
}

impl Reader<'_> {
    fn rest(&self) -> &str {
        &self.text[self.pos..]
    }
    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }
    /// Advances over characters while `f` holds; returns them.
    fn take_while(&mut self, f: impl Fn(char) -> bool) -> &str {
        let start = self.pos;
        let len = self
            .rest()
            .char_indices()
            .find(|(_, c)| !f(*c))
            .map(|(i, _)| i)
            .unwrap_or(self.rest().len());
        self.pos += len;
        &self.text[start..self.pos]
    }
    fn skip_blank(&mut self) {
        self.take_while(|c| c != '\r' && c != '\n' && c.is_whitespace());
    }
    /// Consumes the line's end (or the end of the text); false when something else follows.
    fn end_of_line(&mut self) -> bool {
        self.skip_blank();
        let rest = self.rest();
        let n = if rest.starts_with("\r\n") {
            2
        } else if rest.starts_with(['\n', '\r']) {
            1
        } else if rest.is_empty() {
            0
        } else {
            return false;
        };
        self.pos += n;
        true
    }
}

fn is_newline(c: char) -> bool {
    c == '\n' || c == '\r'
}

fn parse_raw(text: &str) -> Result<Vec<Statement>, DotenvError> {
    let mut r = Reader { text, pos: 0 };
    let mut out = Vec::new();
    loop {
        r.take_while(char::is_whitespace);
        if r.peek().is_none() {
            return Ok(out);
        }
        let start = r.pos;
        let err = |cause: String| DotenvError {
            line: line_at(text, start),
            cause,
        };
        if r.peek() == Some('#') {
            r.take_while(|c| !is_newline(c));
            r.end_of_line();
            continue;
        }
        // `export` followed by blanks is a prefix; `export=1` is a key.
        let rest = r.rest();
        if let Some(after) = rest.strip_prefix("export")
            && after.starts_with(|c: char| c.is_whitespace() && !is_newline(c))
        {
            r.pos += "export".len();
            r.skip_blank();
        }
        let key = if r.peek() == Some('\'') {
            r.pos += 1;
            let key = r.take_while(|c| c != '\'').to_string();
            if key.is_empty() || r.peek() != Some('\'') {
                return Err(err("a single-quoted key has no closing quote".into()));
            }
            r.pos += 1;
            key
        } else {
            let key = r
                .take_while(|c| c != '=' && c != '#' && !c.is_whitespace())
                .to_string();
            if key.is_empty() {
                return Err(err(
                    "no variable name before '=': write KEY=VALUE".to_string()
                ));
            }
            key
        };
        r.skip_blank();
        let value = if r.peek() == Some('=') {
            r.pos += 1;
            r.skip_blank();
            Some(match r.peek() {
                Some(q @ ('\'' | '"')) => {
                    r.pos += 1;
                    let body_start = r.pos;
                    let mut escaped = false;
                    let mut closed = None;
                    for (i, c) in r.rest().char_indices() {
                        if escaped {
                            escaped = false;
                        } else if c == '\\' {
                            escaped = true;
                        } else if c == q {
                            closed = Some(i);
                            break;
                        }
                    }
                    let Some(len) = closed else {
                        let kind = if q == '"' { "double" } else { "single" };
                        return Err(err(format!(
                            "the {kind}-quoted value of {key} has no closing {q} (a value may \
                             span lines, but must end with the quote it started with)"
                        )));
                    };
                    let body = &text[body_start..body_start + len];
                    r.pos = body_start + len + 1;
                    unescape(body, q == '"')
                }
                None | Some('\n' | '\r') => String::new(),
                Some(_) => {
                    let part = r.take_while(|c| !is_newline(c));
                    strip_comment(part).trim_end().to_string()
                }
            })
        } else {
            None
        };
        // An optional comment, then the end of the line.
        r.skip_blank();
        if r.peek() == Some('#') {
            r.take_while(|c| !is_newline(c));
        }
        if !r.end_of_line() {
            // The text itself is never quoted: it may be (part of) a secret.
            return Err(err(match value {
                Some(_) => format!(
                    "unexpected text after the value of {key}; quote a value that holds \
                     spaces or quotes, or start a comment with ' #'"
                ),
                None => format!("expected KEY=VALUE, found {key} followed by text without '='"),
            }));
        }
        out.push(Statement { start, key, value });
    }
}

/// python-dotenv drops an unquoted value's comment: a `#` after whitespace.
fn strip_comment(part: &str) -> &str {
    let mut prev_ws = false;
    for (i, c) in part.char_indices() {
        if c == '#' && prev_ws {
            return &part[..i];
        }
        prev_ws = c.is_whitespace();
    }
    part
}

/// The escapes python-dotenv decodes: in double quotes `\\ \' \" \a \b \f \n \r \t \v`, in single
/// quotes `\\` and `\'`; any other backslash stays as written.
fn unescape(body: &str, double: bool) -> String {
    let mut out = String::with_capacity(body.len());
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let decoded = match chars.peek().copied() {
            Some(e @ ('\\' | '\'')) => Some(e),
            Some('"') if double => Some('"'),
            Some('a') if double => Some('\x07'),
            Some('b') if double => Some('\x08'),
            Some('f') if double => Some('\x0c'),
            Some('n') if double => Some('\n'),
            Some('r') if double => Some('\r'),
            Some('t') if double => Some('\t'),
            Some('v') if double => Some('\x0b'),
            _ => None,
        };
        match decoded {
            Some(d) => {
                out.push(d);
                chars.next();
            }
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Vec<(String, String)> {
        parse(text, |k| (k == "FROM_ENV").then(|| "envval".to_string())).unwrap()
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    // Each expectation below is what python-dotenv 1.2.2's `dotenv_values` returns for the same
    // text (with FROM_ENV=envval in the environment).

    #[test]
    fn interpolation_as_python_dotenv() {
        let text = "A=1\nB='${A}'\nC=\"${A}\"\nD=${A}\nE=${NOPE:-dflt}\nF=${FROM_ENV}\nG=$A\n";
        assert_eq!(
            read(text),
            pairs(&[
                ("A", "1"),
                ("B", "1"),
                ("C", "1"),
                ("D", "1"),
                ("E", "dflt"),
                ("F", "envval"),
                ("G", "$A"),
            ])
        );
    }

    #[test]
    fn escapes_as_python_dotenv() {
        let text = "A=\"x\\ny\\t\\\"q\\\" \\\\ \\$ \\x\"\nB='a\\'b \\\\ \\n'\n";
        assert_eq!(
            read(text),
            pairs(&[("A", "x\ny\t\"q\" \\ \\$ \\x"), ("B", "a'b \\ \\n")])
        );
    }

    #[test]
    fn multi_line_values() {
        assert_eq!(
            read("A=\"line1\nline2\"\nB='l1\nl2'\n"),
            pairs(&[("A", "line1\nline2"), ("B", "l1\nl2")])
        );
        // A PEM key, the usual multi-line secret.
        let pem = "KEY=\"-----BEGIN KEY-----\nabc\n-----END KEY-----\"\nNEXT=1";
        assert_eq!(
            read(pem),
            pairs(&[
                ("KEY", "-----BEGIN KEY-----\nabc\n-----END KEY-----"),
                ("NEXT", "1")
            ])
        );
    }

    #[test]
    fn export_prefix() {
        assert_eq!(
            read("export A=1\nexport=2\nexport  B = 3 \n"),
            pairs(&[("A", "1"), ("export", "2"), ("B", "3")])
        );
    }

    #[test]
    fn comments_blanks_and_bare_keys() {
        assert_eq!(
            read("# c\nA=a # c\nB=a#b\nC=\"q\" # c\n  D=d\n\nE=\n F\n"),
            pairs(&[("A", "a"), ("B", "a#b"), ("C", "q"), ("D", "d"), ("E", "")])
        );
        assert_eq!(read("A=1\r\nB=2\r\n"), pairs(&[("A", "1"), ("B", "2")]));
        assert_eq!(read("A=1\nA=2\n"), pairs(&[("A", "2")]));
        assert_eq!(read(""), pairs(&[]));
    }

    #[test]
    fn later_keys_see_earlier_ones_before_the_environment() {
        assert_eq!(
            read("FROM_ENV=file\nX=${FROM_ENV}"),
            pairs(&[("FROM_ENV", "file"), ("X", "file")])
        );
    }

    // python-dotenv warns "could not parse statement starting at line N" for each of these and
    // skips it; here each is an error with the line and what is wrong.
    #[test]
    fn malformed_statements_name_their_line_and_cause() {
        let e = parse("A=1\nB 2\nC=3\n", |_| None).unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.cause.contains("expected KEY=VALUE"), "{e}");
        let e = parse("A=\"abc\nB=2\n", |_| None).unwrap_err();
        assert_eq!(e.line, 1);
        assert!(e.cause.contains("no closing \""), "{e}");
        let e = parse("\n\nA='x' y\n", |_| None).unwrap_err();
        assert_eq!(e.line, 3);
        assert!(e.cause.contains("after the value of A"), "{e}");
        let e = parse("=value\n", |_| None).unwrap_err();
        assert!(e.cause.contains("no variable name"), "{e}");
        let e = parse("'KEY=1\n", |_| None).unwrap_err();
        assert!(e.cause.contains("single-quoted key"), "{e}");
    }

    #[test]
    fn an_error_never_quotes_a_value() {
        for text in [
            "TOKEN=\"s3cr3t-value\n",
            "TOKEN=\"a\"s3cr3t-value\n",
            "TOKEN s3cr3t-value\n",
        ] {
            let e = parse(text, |_| None).unwrap_err();
            assert!(!e.to_string().contains("s3cr3t"), "{e}");
        }
    }
    #[test]
    fn env_files_refuse_names_no_environment_accepts_on_their_line() {
        assert_eq!(
            parse_env("A=1\n_b2=2\n", |_| None).unwrap(),
            pairs(&[("A", "1"), ("_b2", "2")])
        );
        for (text, line) in [
            ("A=1\n\nBAD-NAME=2\n", 3),
            ("A=\"x\ny\"\n'sp ace'=1\n", 3),
            ("A=1\r\n1X=2\r\n", 2),
            ("A=1\rb.c=2\r", 2),
        ] {
            let e = parse_env(text, |_| None).unwrap_err();
            assert_eq!(e.line, line, "{text:?}: {e}");
            assert!(
                e.cause.contains("not a valid environment variable name"),
                "{e}"
            );
        }
        // python-dotenv reads these keys; only the environment path refuses them.
        assert!(parse("b.c=1\n", |_| None).is_ok());
        let e = parse_env("A=1\n1X=2\n", |_| None).unwrap_err();
        assert_eq!(
            e.in_file(".env"),
            ".env:2: \"1X\" is not a valid environment variable name: use letters, digits and \
             '_', not starting with a digit (e.g. OPENAI_API_KEY); fix the file and run again \
             (nothing was written)"
        );
    }

    #[test]
    fn expansion_is_bounded_and_names_its_line() {
        // Each line doubles the value: 2^40 bytes without a bound.
        let mut text = String::from("A=0123456789abcdef\n");
        for _ in 0..40 {
            text.push_str("A=${A}${A}\n");
        }
        let e = parse(&text, |_| None).unwrap_err();
        // Lines 2 to 16 expand 16 * (2^16 - 2) bytes in all, just under 1 MiB; line 17 would
        // pass it.
        assert_eq!(e.line, 17, "{e}");
        assert!(e.cause.contains("expand the file's values past"), "{e}");
        // A large literal value is not an expansion: the Secret size check reports it.
        let big = format!("BIG={}\n", "x".repeat(MAX_EXPANDED_BYTES + 1));
        assert_eq!(
            parse(&big, |_| None).unwrap()[0].1.len(),
            MAX_EXPANDED_BYTES + 1
        );
    }

    #[test]
    fn a_long_file_keeps_first_positions_last_values_and_its_line_count() {
        let text: String = (0..50_000)
            .map(|i| format!("K{}=v{i}\n", i % 1000))
            .collect();
        let out = parse(&text, |_| None).unwrap();
        assert_eq!(out.len(), 1000);
        assert_eq!(out[0], ("K0".to_string(), "v49000".to_string()));
        assert_eq!(out[999], ("K999".to_string(), "v49999".to_string()));
        let e = parse(&format!("{text}oops x\n"), |_| None).err();
        assert_eq!(e.map(|e| e.line), Some(50_001));
    }
}
