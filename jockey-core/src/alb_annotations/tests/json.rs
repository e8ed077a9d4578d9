//! JSON as Go's encoding/json reads it.

use super::super::gojson::{
    GoDecode, GoMap, GoSlice, IntOrString, J, MAX_DEPTH, go_struct, key_matches, parse, unmarshal,
};

go_struct! { struct Inner {
    "name" => name: String,
    "port" => port: i32,
    "tag" => tag: Option<String>,
} }

go_struct! { struct Outer {
    "items" => items: GoSlice<Inner>,
    "inner" => inner: Option<Inner>,
    "labels" => labels: GoMap<String>,
    "flag" => flag: bool,
    "port" => port: Option<IntOrString>,
} }

fn outer(text: &str) -> Result<Outer, String> {
    unmarshal(text)
}

#[test]
fn syntax_is_strict_json() {
    for bad in [
        "",
        " ",
        "{",
        "[1,]",
        "{\"a\":1,}",
        "01",
        "1.",
        ".5",
        "-",
        "1e",
        "+1",
        "tru",
        "nul",
        "\"a",
        "\"\\x\"",
        "\"\\u12\"",
        "\"\\u+123\"",
        "'a'",
        "{a:1}",
        "[1] [2]",
        "NaN",
        "\"tab\there\"",
        "{\"a\" 1}",
        "[1 2]",
    ] {
        assert!(parse(bad).is_err(), "{bad:?} should be refused");
    }
    for good in [
        "null",
        " true ",
        "\t[\r\n]\n",
        "-0",
        "0.5e-3",
        "1E+2",
        "{\"\":\"\"}",
        "\"\\/\\b\\f\"",
    ] {
        assert!(parse(good).is_ok(), "{good:?} should parse");
    }
}

#[test]
fn strings_decode_escapes_and_lone_surrogates_like_go() {
    assert_eq!(parse(r#""\u0041\n\"""#), Ok(J::Str("A\n\"".into())));
    assert_eq!(parse(r#""\ud83d\ude00""#), Ok(J::Str("😀".into())));
    assert_eq!(parse(r#""\ud83dx""#), Ok(J::Str("\u{FFFD}x".into())));
    assert_eq!(parse(r#""\ude00""#), Ok(J::Str("\u{FFFD}".into())));
    assert_eq!(parse(r#""\ud83d\u0041""#), Ok(J::Str("\u{FFFD}A".into())));
    assert_eq!(parse("\"ü\""), Ok(J::Str("ü".into())));
}

#[test]
fn nesting_is_bounded_without_exhausting_the_stack() {
    let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
    assert!(parse(&ok).is_ok());
    let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 2), "]".repeat(MAX_DEPTH + 2));
    assert!(parse(&deep).unwrap_err().contains("nested"));
    // A tenant's worst case: the API server's 256 KiB of annotations, all brackets.
    assert!(parse(&"[".repeat(256 * 1024)).is_err());
    assert!(parse(&"{\"a\":".repeat(50_000)).is_err());
}

#[test]
fn keys_match_fields_case_insensitively_as_go_equal_fold() {
    assert!(key_matches("statusCode", "StatusCode"));
    assert!(key_matches("statusCode", "STATUSCODE"));
    assert!(key_matches("statusCode", "\u{17F}tatusCode"));
    assert!(key_matches("key", "\u{212A}ey"));
    assert!(!key_matches("statusCode", "status_code"));
    assert!(!key_matches("issuer", "ißuer"));
    assert!(!key_matches("name", "names"));
    let o = outer(r#"{"NAME":"x","Inner":{"Name":"a","PORT":8},"FLAG":true}"#).unwrap();
    assert_eq!(o.inner.unwrap().port, 8);
    assert!(o.flag);
}

#[test]
fn unknown_keys_are_ignored_and_wrong_types_refused() {
    let o = outer(r#"{"extra":{"deep":[1,2,{"x":null}]},"flag":false}"#).unwrap();
    assert!(!o.flag);
    for bad in [
        r#"{"flag":"true"}"#,
        r#"{"flag":1}"#,
        r#"{"inner":{"port":"80"}}"#,
        r#"{"inner":{"port":1.0}}"#,
        r#"{"inner":{"port":1e2}}"#,
        r#"{"inner":{"port":2147483648}}"#,
        r#"{"inner":{"name":5}}"#,
        r#"{"items":{}}"#,
        r#"{"labels":[]}"#,
        r#"{"labels":{"a":1}}"#,
        r#"{"port":true}"#,
        r#"{"port":{}}"#,
        "[]",
        "\"x\"",
    ] {
        assert!(outer(bad).is_err(), "{bad} should be refused");
    }
    assert_eq!(
        outer(r#"{"inner":{"port":-0}}"#)
            .unwrap()
            .inner
            .unwrap()
            .port,
        0
    );
    assert_eq!(outer("null").unwrap(), Outer::default());
}

#[test]
fn null_leaves_scalars_and_clears_pointers_slices_and_maps() {
    let o = outer(r#"{"inner":{"name":"a","name":null,"tag":"t","tag":null}}"#).unwrap();
    let inner = o.inner.unwrap();
    assert_eq!(inner.name, "a");
    assert_eq!(inner.tag, None);
    let o = outer(r#"{"inner":{"name":"a"},"inner":null}"#).unwrap();
    assert_eq!(o.inner, None);
    let o = outer(r#"{"labels":{"a":"1"},"labels":null}"#).unwrap();
    assert_eq!(o.labels.entries(), &[] as &[(String, String)]);
    let o = outer(r#"{"labels":{"a":null}}"#).unwrap();
    assert_eq!(o.labels.entries(), &[("a".to_string(), String::new())]);
    let o = outer(r#"{"port":80,"port":null}"#).unwrap();
    assert_eq!(o.port, None);
}

#[test]
fn repeated_keys_merge_like_go() {
    // A second object is decoded into the first, not instead of it.
    let o = outer(r#"{"inner":{"name":"a","port":1},"inner":{"port":2}}"#).unwrap();
    assert_eq!(
        o.inner.as_ref().map(|i| (i.name.as_str(), i.port)),
        Some(("a", 2))
    );
    // Maps gain keys.
    let o = outer(r#"{"labels":{"a":"1"},"labels":{"b":"2","a":"3"}}"#).unwrap();
    assert_eq!(
        o.labels.entries(),
        &[
            ("a".to_string(), "3".to_string()),
            ("b".to_string(), "2".to_string())
        ]
    );
    // Slice elements are decoded into the elements already there...
    let o =
        outer(r#"{"items":[{"name":"a","port":1},{"name":"b"}],"items":[{"port":9}]}"#).unwrap();
    let items: Vec<_> = o
        .items
        .items()
        .iter()
        .map(|i| (i.name.clone(), i.port))
        .collect();
    assert_eq!(items, [("a".to_string(), 9)]);
    // ...including those a shorter decode left beyond the length (Go reuses the backing array).
    let o = outer(r#"{"items":[{"name":"a"},{"name":"b"}],"items":[{}],"items":[{},{"port":5}]}"#)
        .unwrap();
    let items: Vec<_> = o
        .items
        .items()
        .iter()
        .map(|i| (i.name.clone(), i.port))
        .collect();
    assert_eq!(items, [("a".to_string(), 0), ("b".to_string(), 5)]);
    // An empty array or null starts afresh.
    let o = outer(r#"{"items":[{"name":"a"}],"items":[],"items":[{"port":1}]}"#).unwrap();
    assert_eq!(o.items.items()[0].name, "");
    // Case-folded duplicates are the same field, applied in document order.
    let o = outer(r#"{"flag":true,"FLAG":false}"#).unwrap();
    assert!(!o.flag);
}

#[test]
fn int_or_string_follows_its_unmarshal_json() {
    assert_eq!(
        outer(r#"{"port":"http"}"#).unwrap().port,
        Some(IntOrString::Str("http".into()))
    );
    assert_eq!(
        outer(r#"{"port":"80"}"#).unwrap().port,
        Some(IntOrString::Str("80".into()))
    );
    assert_eq!(
        outer(r#"{"port":80}"#).unwrap().port,
        Some(IntOrString::Int(80))
    );
    assert!(outer(r#"{"port":80.5}"#).is_err());
}

#[test]
fn decode_errors_say_where() {
    let e = outer(r#"{"inner":{"port":"x"}}"#).unwrap_err();
    assert!(e.contains("inner.port"), "{e}");
    let e = outer(r#"{"items":[{},{"name":1}]}"#).unwrap_err();
    assert!(e.contains("items[1].name"), "{e}");
    let mut n = 0i32;
    assert!(n.decode(&J::Bool(true), "").is_err());
}
