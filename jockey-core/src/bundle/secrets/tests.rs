use super::*;

/// Deterministic random characters of `alphabet`. Every key-shaped value of these tests is made
/// at run time from a marker and such characters, so that no secret scanner (this one included)
/// finds one in the repository's source.
fn random(alphabet: &str, n: usize, seed: u64) -> String {
    let a = alphabet.as_bytes();
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let s: String = (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            a[(x % a.len() as u64) as usize] as char
        })
        .collect();
    assert!(
        !is_placeholder(s.as_bytes()),
        "seed {seed} makes a placeholder: {s}"
    );
    s
}

const UPPER: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const LOWER: &str = "abcdefghijklmnopqrstuvwxyz";
const DIGITS: &str = "0123456789";

fn alnum() -> String {
    format!("{UPPER}{LOWER}{DIGITS}")
}
fn urlsafe() -> String {
    format!("{}-_", alnum())
}
fn base64() -> String {
    format!("{}+/", alnum())
}
/// AWS key ids are base32.
const BASE32: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// A PEM block: a header the source never spells whole, and base64 lines of 64.
fn pem(label: &str, headers: &str, seed: u64) -> String {
    let body = random(&base64(), 64 * 4, seed);
    let lines: Vec<&str> = (0..4).map(|i| &body[i * 64..(i + 1) * 64]).collect();
    format!(
        "-----BEGIN {label}-----\n{headers}{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

/// A key-shaped value: (kind, marker, the secret after the marker).
fn samples() -> Vec<(SecretKind, String, String)> {
    use SecretKind::*;
    let k = |kind, marker: &str, value: String| (kind, marker.to_string(), value);
    let digits = |n, seed| random(DIGITS, n, seed);
    vec![
        k(AwsAccessKeyId, "AKIA", random(BASE32, 16, 1)),
        k(AwsAccessKeyId, "ASIA", random(BASE32, 16, 2)),
        k(OpenAiOrAnthropicKey, "sk-", random(&alnum(), 48, 3)),
        k(OpenAiOrAnthropicKey, "sk-proj-", random(&urlsafe(), 156, 4)),
        k(
            OpenAiOrAnthropicKey,
            "sk-ant-",
            format!("api03-{}AA", random(&urlsafe(), 93, 5)),
        ),
        k(
            OpenAiOrAnthropicKey,
            "sk-",
            format!("or-v1-{}", random("0123456789abcdef", 64, 6)),
        ),
        k(GoogleApiKey, "AIza", random(&urlsafe(), 35, 7)),
        k(
            GoogleOauthClientSecret,
            "GOCSPX-",
            random(&urlsafe(), 28, 8),
        ),
        k(GitHubToken, "ghp_", random(&alnum(), 36, 9)),
        k(GitHubToken, "gho_", random(&alnum(), 36, 10)),
        k(GitHubToken, "ghs_", random(&alnum(), 36, 11)),
        k(
            GitHubToken,
            "github_pat_",
            format!("{}_{}", random(&alnum(), 22, 12), random(&alnum(), 59, 13)),
        ),
        k(GitLabToken, "glpat-", random(&urlsafe(), 20, 14)),
        k(
            SlackToken,
            "xoxb-",
            format!(
                "{}-{}-{}",
                digits(12, 15),
                digits(13, 16),
                random(&alnum(), 24, 17)
            ),
        ),
        k(
            SlackToken,
            "xoxp-",
            format!(
                "{}-{}-{}",
                digits(12, 18),
                digits(13, 19),
                random(&alnum(), 32, 20)
            ),
        ),
        k(
            SlackToken,
            "xapp-",
            format!(
                "1-A{}-{}-{}",
                random(BASE32, 10, 21),
                digits(13, 22),
                random(&alnum(), 64, 23)
            ),
        ),
        k(
            SlackWebhook,
            "https://hooks.slack.com/services/",
            format!(
                "T{}/B{}/{}",
                random(BASE32, 8, 24),
                random(BASE32, 10, 25),
                random(&alnum(), 24, 26)
            ),
        ),
        k(StripeLiveKey, "sk_live_", random(&alnum(), 99, 27)),
        k(StripeLiveKey, "rk_live_", random(&alnum(), 24, 28)),
        k(
            HuggingFaceToken,
            "hf_",
            random(&format!("{UPPER}{LOWER}"), 34, 29),
        ),
        k(NpmToken, "npm_", random(&alnum(), 36, 30)),
        k(
            PypiToken,
            "pypi-",
            format!("AgEIcHlwaS5vcmc{}", random(&urlsafe(), 120, 31)),
        ),
        k(
            SendGridKey,
            "SG.",
            format!(
                "{}.{}",
                random(&urlsafe(), 22, 32),
                random(&urlsafe(), 43, 33)
            ),
        ),
        k(GroqKey, "gsk_", random(&alnum(), 52, 34)),
    ]
}

/// What a refusal may show of a finding: never a character of the secret after its marker.
fn assert_shows_no_secret(message: &str, marker: &str, value: &str) {
    let first = value.chars().next().unwrap_or_default();
    assert!(
        !message.contains(&format!("{marker}{first}")),
        "the message shows the secret's start: {message}"
    );
    let value: Vec<char> = value.chars().collect();
    for window in value.windows(6) {
        let w: String = window.iter().collect();
        assert!(!message.contains(&w), "the message shows {w:?}: {message}");
    }
}

#[test]
fn every_rule_compiles() {
    assert_eq!(rules().len(), RULES.len());
}

#[test]
fn each_kind_is_found_on_its_line_and_named_without_its_value() {
    for (kind, marker, value) in samples() {
        let token = format!("{marker}{value}");
        let file = format!("import os\n\nKEY = \"{token}\"  # the key\nprint(KEY)\n");
        let found = find_secrets("server.py", file.as_bytes());
        assert_eq!(
            found,
            vec![Finding {
                path: "server.py".into(),
                line: 3,
                kind,
                marker: marker.clone(),
            }],
            "{token}"
        );
        let shown = found[0].to_string();
        assert!(shown.starts_with("server.py:3: "), "{shown}");
        assert!(shown.contains(kind.describe()), "{shown}");
        assert!(shown.contains(&format!("({marker}...)")), "{shown}");
        assert_shows_no_secret(&shown, &marker, &value);

        // As a whole value, at the end of a file, without a newline: found all the same.
        assert_eq!(find_secrets("k", token.as_bytes()).len(), 1, "{token}");
        // In a dotenv-style line, in YAML, in JSON.
        for wrapped in [
            format!("KEY={token}\n"),
            format!("key: '{token}'\n"),
            format!("{{\"key\": \"{token}\"}}"),
        ] {
            assert_eq!(find_secrets("k", wrapped.as_bytes()).len(), 1, "{wrapped}");
        }
    }
}

#[test]
fn private_keys_of_every_kind_are_found_at_their_begin_line() {
    let rcgen_key = rcgen::KeyPair::generate().unwrap().serialize_pem();
    let openssh = format!(
        // The fixed start of every unencrypted OpenSSH key ("openssh-key-v1", cipher "none"),
        // which holds runs of `A`: the material still counts as a key.
        "-----BEGIN {} PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n{}\n-----END {} PRIVATE KEY-----\n",
        "OPENSSH",
        random(&base64(), 70, 40),
        "OPENSSH"
    );
    let cases = [
        (rcgen_key.clone(), "-----BEGIN PRIVATE KEY-----"),
        (
            pem("RSA PRIVATE KEY", "", 41),
            "-----BEGIN RSA PRIVATE KEY-----",
        ),
        (
            pem("EC PRIVATE KEY", "", 42),
            "-----BEGIN EC PRIVATE KEY-----",
        ),
        (
            pem("DSA PRIVATE KEY", "", 43),
            "-----BEGIN DSA PRIVATE KEY-----",
        ),
        (
            pem("ENCRYPTED PRIVATE KEY", "", 44),
            "-----BEGIN ENCRYPTED PRIVATE KEY-----",
        ),
        (openssh, "-----BEGIN OPENSSH PRIVATE KEY-----"),
        (
            pem(
                "RSA PRIVATE KEY",
                "Proc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,099A685D0E89BFC00ED6036E3B40CDFF\n\n",
                45,
            ),
            "-----BEGIN RSA PRIVATE KEY-----",
        ),
        (
            pem(
                "PGP PRIVATE KEY BLOCK",
                "Version: GnuPG v2\nComment: ci\n\n",
                46,
            ),
            "-----BEGIN PGP PRIVATE KEY BLOCK-----",
        ),
        (
            pem("PRIVATE KEY", "", 47).replace('\n', "\r\n"),
            "-----BEGIN PRIVATE KEY-----",
        ),
    ];
    for (key, marker) in cases {
        let file = format!("# deploy key\n\nKEY = \"\"\"\n{key}\"\"\"\n");
        let found = find_secrets("keys/deploy.py", file.as_bytes());
        assert_eq!(found.len(), 1, "{file}");
        assert_eq!(found[0].kind, SecretKind::PrivateKey);
        assert_eq!(found[0].line, 4, "{file}");
        assert_eq!(found[0].marker, marker);
        let shown = found[0].to_string();
        assert_eq!(shown, format!("keys/deploy.py:4: a private key ({marker})"));
        let material: String = key.lines().nth(1).unwrap_or_default().to_string();
        assert!(!shown.contains(&material[..8]), "{shown}");
    }
    // A Google service account's JSON: the key on one line, its breaks escaped.
    let escaped = rcgen_key.replace('\n', "\\n");
    let json =
        format!("{{\n  \"type\": \"service_account\",\n  \"private_key\": \"{escaped}\"\n}}\n");
    let found = find_secrets("sa.json", json.as_bytes());
    assert_eq!(found.len(), 1, "{json}");
    assert_eq!(found[0].line, 3);
}

#[test]
fn code_that_names_key_headers_and_public_material_is_not_a_key() {
    let begin = |label: &str| format!("-----BEGIN {label}-----");
    let files = [
        // Code recognising a key by its header.
        format!(
            "def kind(pem):\n    if pem.startswith(\"{}\"):\n        return 'rsa'\n    \
             return pem.split(\"{}\")[0]\n",
            begin("RSA PRIVATE KEY"),
            begin("PRIVATE KEY")
        ),
        // Documentation with the material left out.
        format!(
            "{}\n...\n-----END PRIVATE KEY-----\n{}\n<paste your key here>\n",
            begin("PRIVATE KEY"),
            begin("OPENSSH PRIVATE KEY")
        ),
        format!("{}\nMIIEvQIBADANBgkqhkiG9w0...\n", begin("PRIVATE KEY")),
        // A placeholder of the right length.
        format!("{}\n{}\n", begin("PRIVATE KEY"), "X".repeat(64)),
        // Certificates and public keys are not secrets.
        pem("CERTIFICATE", "", 50),
        pem("PUBLIC KEY", "", 51),
        pem("RSA PUBLIC KEY", "", 52),
        pem("PGP PUBLIC KEY BLOCK", "Version: x\n\n", 53),
    ];
    for file in files {
        assert_eq!(find_secrets("f", file.as_bytes()), vec![], "{file}");
    }
}

#[test]
fn placeholders_and_look_alikes_are_not_secrets() {
    let a = |s: &str| s.to_string();
    let files = [
        // AWS's documented example key id and secret key.
        format!("{}{}", "AKIA", "IOSFODNN7EXAMPLE"),
        format!(
            "aws_secret_access_key = {}{}",
            "wJalrXUtnFEMI/K7MDENG/", "bPxRfiCYEXAMPLEKEY"
        ),
        format!("AWS_ACCESS_KEY_ID={}", "AKIA".to_string() + &"X".repeat(16)),
        format!("id = \"{}\"", "AKIA".to_string() + "1234567890ABCDEF"),
        // Too short or too long for an AWS key id; not at a word boundary.
        format!("{}{}", "AKIA", random(BASE32, 15, 60)),
        format!("{}{}", "AKIA", random(BASE32, 17, 61)),
        format!("x{}{}", "AKIA", random(BASE32, 16, 62)),
        // 40 characters of base64 without an AWS name next to them.
        format!("digest = \"{}\"", random(&base64(), 40, 63)),
        format!("secret = \"{}\"", random(&base64(), 40, 64)),
        // `sk-` stand-ins.
        a("OPENAI_API_KEY = 'sk-...'"),
        a("OPENAI_API_KEY = 'sk-xxxxxxxx'"),
        format!("key = 'sk-{}'", "x".repeat(48)),
        format!("key = 'sk-proj-{}'", "X".repeat(48)),
        a("key = 'sk-your-openai-api-key-goes-here'"),
        a("key = 'sk-replace_me_with_the_real_key'"),
        a("key = 'sk-ant-REDACTED-0000000000000000000000000'"),
        a("key = 'sk-abcdefghijklmnopqrstuvwxyz0123'"),
        a("key = 'sk-1234567890abcdef1234567890abcdef'"),
        format!("key = 'sk-{}'", random(&alnum(), 19, 65)),
        // `sk-` inside a word, Stripe test keys, publishable keys.
        format!("task-{}", random(&alnum(), 30, 66)),
        format!("sk_test_{}", random(&alnum(), 24, 67)),
        format!("pk_live_{}", random(&alnum(), 24, 68)),
        // Google, GitHub, Slack stand-ins and near misses.
        format!("AIza{}", "X".repeat(35)),
        format!("AIza{}", random(&urlsafe(), 34, 69)),
        format!("ghp_{}", random(&alnum(), 35, 70)),
        a("GITHUB_TOKEN=ghp_your_github_personal_access_token"),
        format!("github_pat_{}", random(&alnum(), 21, 71)),
        a("SLACK_BOT_TOKEN=xoxb-your-bot-token-here"),
        a("SLACK_BOT_TOKEN=xoxb-..."),
        a("https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"),
        a("https://hooks.slack.com/services/XXX/YYY/ZZZ"),
        // Hugging Face hub functions, not tokens.
        a("from huggingface_hub import hf_hub_download"),
        format!("hf_{}", "abcdefghijklmnopqrstuvwxyzabcdefgh"),
        a("model = 'hf_internal_testing_tiny_random_model_name'"),
    ];
    for file in files {
        assert_eq!(find_secrets("f", file.as_bytes()), vec![], "{file}");
    }
}

#[test]
fn the_placeholder_rule() {
    for stand_in in [
        "xxxxxxxxxxxxxxxxxxxxxxxx",
        "abc123XXXXXXXXdef",
        "AB000000001",
        "A1234567890",
        "Zabcdefghz9",
        "IOSFODNN7EXAMPLE",
        "Your-Sample-Key-1",
        "aPlaceHolder9",
        "REDACTED0",
        "DummyKey1",
        "replace-with-your-key",
        "only_lower_case_words",
    ] {
        assert!(is_placeholder(stand_in.as_bytes()), "{stand_in}");
    }
    for real in [
        // Seven repeats or seven counting characters: still random enough.
        "AB0000000C",
        "x1234567x",
        "abcdefgX",
    ] {
        assert!(!is_placeholder(real.as_bytes()), "{real}");
    }
    // Random keys essentially never look like placeholders.
    for seed in 0..2000 {
        let key = random(&alnum(), 32, 1000 + seed);
        assert!(!is_placeholder(key.as_bytes()), "{key}");
    }
}

#[test]
fn aws_secret_keys_count_only_next_to_their_name() {
    let value = random(&base64(), 40, 80);
    for (line, marker) in [
        (
            format!("aws_secret_access_key = {value}"),
            "aws_secret_access_key",
        ),
        (
            format!("AWS_SECRET_ACCESS_KEY={value}"),
            "AWS_SECRET_ACCESS_KEY",
        ),
        (
            format!("export AWS_SECRET_ACCESS_KEY=\"{value}\""),
            "AWS_SECRET_ACCESS_KEY",
        ),
        (
            format!("  \"SecretAccessKey\": \"{value}\","),
            "SecretAccessKey",
        ),
        (
            format!("os.environ.setdefault(\"AWS_SECRET_KEY\", '{value}')"),
            "AWS_SECRET_KEY",
        ),
        (
            format!("aws-secret-access-key: {value}"),
            "aws-secret-access-key",
        ),
    ] {
        let file = format!("[default]\n{line}\n");
        let found = find_secrets("settings.ini", file.as_bytes());
        assert_eq!(found.len(), 1, "{file}");
        assert_eq!(found[0].kind, SecretKind::AwsSecretAccessKey);
        assert_eq!(found[0].line, 2);
        assert_eq!(found[0].marker, marker);
        let shown = found[0].to_string();
        assert_eq!(
            shown,
            format!("settings.ini:2: an AWS secret access key (the value of {marker})")
        );
        assert_shows_no_secret(&shown, marker, &value);
    }
    // Read from the environment, or 41 characters of base64: not a key in the file.
    for file in [
        "aws_secret_access_key = os.environ[\"AWS_SECRET_ACCESS_KEY\"]\n".to_string(),
        format!("aws_secret_access_key = {}\n", random(&base64(), 41, 81)),
        format!("aws_secret_access_key = \n{value}\n"),
    ] {
        assert_eq!(find_secrets("f", file.as_bytes()), vec![], "{file}");
    }
}

#[test]
fn lines_count_from_one_across_kinds_and_line_endings() {
    let (_, m1, v1) = &samples()[0];
    let (_, m2, v2) = &samples()[2];
    let file = format!(
        "a\r\nb\r\n{m1}{v1}\r\n\r\nx = '{m1}{v1}'; y = '{m2}{v2}'; z = '{m1}{v1}'\n\n{m2}{v2}\n"
    );
    let found = find_secrets("p/config.py", file.as_bytes());
    let lines: Vec<(usize, SecretKind)> = found.iter().map(|f| (f.line, f.kind)).collect();
    assert_eq!(
        lines,
        vec![
            (3, SecretKind::AwsAccessKeyId),
            // The same kind twice on one line is one finding.
            (5, SecretKind::AwsAccessKeyId),
            (5, SecretKind::OpenAiOrAnthropicKey),
            (7, SecretKind::OpenAiOrAnthropicKey),
        ]
    );
    assert!(found.iter().all(|f| f.path == "p/config.py"));
}

#[test]
fn binary_files_are_not_read_and_a_file_of_secrets_is_bounded() {
    let (_, marker, value) = &samples()[0];
    let text = format!("{marker}{value}\n");
    let mut binary = vec![0u8, 1, 2];
    binary.extend_from_slice(text.as_bytes());
    assert!(is_binary(&binary));
    assert_eq!(find_secrets("model.bin", &binary), vec![]);
    // A NUL past the first 8 KiB: text with a stray byte, read like text.
    let mut late = vec![b' '; BINARY_PROBE_BYTES];
    late.push(0);
    late.extend_from_slice(text.as_bytes());
    assert!(!is_binary(&late));
    assert_eq!(find_secrets("notes.txt", &late).len(), 1);
    // Not valid UTF-8 around it: still found.
    let latin1 = [
        b"caf\xe9 = '".as_slice(),
        text.trim_end().as_bytes(),
        b"'\n",
    ]
    .concat();
    assert_eq!(find_secrets("latin1.py", &latin1).len(), 1);

    let many = text.repeat(500);
    let found = find_secrets("keys.txt", many.as_bytes());
    assert_eq!(found.len(), MAX_FINDINGS_PER_FILE);
    assert_eq!(found[0].line, 1);
    assert_eq!(found[MAX_FINDINGS_PER_FILE - 1].line, MAX_FINDINGS_PER_FILE);
}

#[test]
fn scanning_a_megabyte_of_text_is_fast() {
    // Ten times what a ConfigMap can hold compressed; debug builds included.
    let line = "    response = client.chat.completions.create(model=MODEL, messages=messages)\n";
    let text = line.repeat(10 * 1024 * 1024 / line.len());
    let started = std::time::Instant::now();
    assert_eq!(find_secrets("big.py", text.as_bytes()), vec![]);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

// Through `bundle_dir`: what is read, what refuses, and the escape hatch.

use crate::bundle::{BundleError, IGNORE_FILE, bundle_dir};
use std::path::Path;

fn write(root: &Path, rel: &str, data: &[u8]) {
    let p = root.join(rel);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(p, data).unwrap();
}

fn aws_id() -> (String, String) {
    ("AKIA".to_string(), random(BASE32, 16, 90))
}

fn openai_key() -> (String, String) {
    ("sk-proj-".to_string(), random(&urlsafe(), 100, 91))
}

#[test]
fn a_secret_in_a_packaged_file_refuses_the_directory_naming_path_line_kind_and_fix() {
    let t = tempfile::tempdir().unwrap();
    let (m1, v1) = aws_id();
    let (m2, v2) = openai_key();
    write(
        t.path(),
        "server.py",
        b"import os\nprint(os.environ['OPENAI_API_KEY'])\n",
    );
    write(
        t.path(),
        "config.py",
        format!("REGION = 'eu-west-1'\nKEY_ID = '{m1}{v1}'\n").as_bytes(),
    );
    write(
        t.path(),
        "providers/openai.py",
        format!("import openai\n\n\n\nclient = openai.OpenAI(api_key=\"{m2}{v2}\")\n").as_bytes(),
    );
    #[cfg(unix)]
    std::os::unix::fs::symlink("config.py", t.path().join("settings.py")).unwrap();
    let err = bundle_dir(t.path()).unwrap_err();
    let BundleError::SecretFound { findings } = &err else {
        panic!("{err}");
    };
    let at: Vec<String> = findings
        .iter()
        .map(|f| format!("{}:{}", f.path, f.line))
        .collect();
    let mut want = vec!["config.py:2", "providers/openai.py:5"];
    // A link is read as the file it stands for, under its own name.
    if cfg!(unix) {
        want.push("settings.py:2");
    }
    assert_eq!(at, want);
    let msg = err.to_string();
    for part in [
        "config.py:2: an AWS access key id (AKIA...)",
        "providers/openai.py:5: an OpenAI or Anthropic API key (sk-proj-...)",
        "--secret-env-file FILE",
        "kubectl jockey secrets set PROJECT KEY=VALUE",
        "list its file in .jockeysecretsok (gitignore syntax)",
    ] {
        assert!(msg.contains(part), "{part:?} missing from: {msg}");
    }
    assert_shows_no_secret(&msg, &m1, &v1);
    assert_shows_no_secret(&msg, &m2, &v2);
}

#[test]
fn only_what_is_packaged_is_read() {
    let t = tempfile::tempdir().unwrap();
    let (m, v) = aws_id();
    let secret = format!("KEY={m}{v}\n");
    write(t.path(), "server.py", b"print('hi')\n");
    // Left out by name, ignored by default or by .jockeyignore, binary: never read.
    for f in [
        ".env",
        "token.json",
        ".git/config",
        "node_modules/x/index.js",
        "notes/keys.txt",
    ] {
        write(t.path(), f, secret.as_bytes());
    }
    write(t.path(), IGNORE_FILE, b"notes/\n");
    write(
        t.path(),
        "model.bin",
        &[b"\0\x01".as_slice(), secret.as_bytes()].concat(),
    );
    let b = bundle_dir(t.path()).unwrap();
    assert_eq!(b.files, vec![IGNORE_FILE, "model.bin", "server.py"]);
    assert_eq!(b.secrets_left_out, vec![".env", "token.json"]);

    // Reinclude the ignored file and it is read.
    write(t.path(), IGNORE_FILE, b"");
    let err = bundle_dir(t.path()).unwrap_err();
    assert!(
        matches!(&err, BundleError::SecretFound { findings } if findings.len() == 1
            && findings[0].path == "notes/keys.txt"),
        "{err}"
    );
}

#[test]
fn jockeysecretsok_exempts_files_from_the_content_check_only() {
    let t = tempfile::tempdir().unwrap();
    let (m, v) = aws_id();
    let secret = format!("KEY = '{m}{v}'\n");
    write(t.path(), "server.py", b"print('hi')\n");
    write(t.path(), "tests/fixtures/aws.py", secret.as_bytes());
    write(t.path(), "tests/fixtures/keep/aws.py", secret.as_bytes());
    write(t.path(), "docs/setup.md", secret.as_bytes());
    write(t.path(), "token.json", secret.as_bytes());
    write(
        t.path(),
        SECRETS_OK_FILE,
        b"# published test keys\ntests/fixtures/\ndocs/*.md\n# names stay left out\ntoken.json\n",
    );
    let b = bundle_dir(t.path()).unwrap();
    assert_eq!(
        b.files,
        vec![
            SECRETS_OK_FILE,
            "docs/setup.md",
            "server.py",
            "tests/fixtures/aws.py",
            "tests/fixtures/keep/aws.py",
        ]
    );
    assert_eq!(b.secrets_left_out, vec!["token.json"]);

    // gitignore syntax: `!` takes a file back into the check.
    write(
        t.path(),
        SECRETS_OK_FILE,
        b"tests/fixtures/\n!tests/fixtures/keep/\ndocs/*.md\n",
    );
    let err = bundle_dir(t.path()).unwrap_err();
    let BundleError::SecretFound { findings } = &err else {
        panic!("{err}");
    };
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0].path, "tests/fixtures/keep/aws.py");

    // Left out of the bundle by .jockeyignore, it still exempts: like .jockeyignore itself, it
    // is read from DIR, not from the bundle.
    write(t.path(), SECRETS_OK_FILE, b"tests/\ndocs/\n");
    write(t.path(), IGNORE_FILE, b".jockeysecretsok\n");
    let b = bundle_dir(t.path()).unwrap();
    assert!(
        !b.files.iter().any(|f| f == SECRETS_OK_FILE),
        "{:?}",
        b.files
    );

    // Its own content is checked like any packaged file's.
    write(t.path(), IGNORE_FILE, b"");
    write(
        t.path(),
        SECRETS_OK_FILE,
        format!("tests/\ndocs/\n# {m}{v}\n").as_bytes(),
    );
    let err = bundle_dir(t.path()).unwrap_err();
    assert!(
        err.to_string()
            .contains(".jockeysecretsok:3: an AWS access key id"),
        "{err}"
    );

    write(t.path(), SECRETS_OK_FILE, b"{a,b\n");
    let err = bundle_dir(t.path()).unwrap_err();
    assert!(
        matches!(
            err,
            BundleError::BadIgnoreFile {
                file: SECRETS_OK_FILE,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().starts_with(".jockeysecretsok: "), "{err}");
}

#[test]
fn a_refusal_shows_ten_findings_and_counts_the_rest() {
    let t = tempfile::tempdir().unwrap();
    write(t.path(), "server.py", b"print('hi')\n");
    for i in 0..12 {
        let (m, v) = ("ghp_", random(&alnum(), 36, 100 + i));
        write(
            t.path(),
            &format!("tokens/{i:02}.py"),
            format!("T = '{m}{v}'\n").as_bytes(),
        );
    }
    let err = bundle_dir(t.path()).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("tokens/09.py:1: a GitHub token (ghp_...); and 2 more."),
        "{msg}"
    );
    assert!(!msg.contains("tokens/10.py"), "{msg}");
}

#[test]
fn the_example_agent_and_this_crate_hold_no_secret() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    assert!(bundle_dir(&root.join("examples/agent")).is_ok());
    // Source that spells rules and placeholders: none of it reads as a secret.
    for file in [
        "src/bundle/secrets.rs",
        "src/bundle/secrets/tests.rs",
        "src/bundle.rs",
        "src/bundle/collect.rs",
        "src/bundle/collect/tests.rs",
        "src/bundle/archive.rs",
        "src/bundle/tests.rs",
    ] {
        let text = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join(file)).unwrap();
        assert_eq!(find_secrets(file, &text), vec![], "{file}");
    }
}
