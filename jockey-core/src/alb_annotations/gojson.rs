//! JSON the way the controller's Go code reads it (`encoding/json` into Go structs), so that a
//! value is accepted here exactly when the controller accepts it and means what it means there.
//!
//! `serde_json` differs from Go in ways a tenant can use: Go matches object keys to struct
//! fields case-insensitively (`"Field"` works), applies repeated keys in document order and
//! *merges* a repeated object into the one already decoded (a second `"redirectConfig"` adds to
//! the first instead of replacing it), treats `null` as "leave as is" for strings and numbers,
//! accepts `-0` as an integer and turns lone UTF-16 surrogates into U+FFFD. A policy reading the
//! last duplicate with serde would see a different action than the controller deploys. So the
//! text is parsed here into a document-ordered tree ([`J`]) and decoded by [`GoDecode`], which
//! copies Go's rules.
//!
//! Known difference (stricter, so safe for a policy): nesting deeper than [`MAX_DEPTH`] is
//! refused (Go allows 10000 levels, which only ever matter inside ignored fields).

use std::fmt::Write as _;

/// Deepest nesting accepted. Deep enough for every shape the controller reads; shallow enough
/// that parsing can never exhaust a thread's stack.
pub const MAX_DEPTH: usize = 128;

/// A parsed JSON value. Objects keep their keys in document order, duplicates included; numbers
/// keep their literal text (Go decides integer-ness from the text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum J {
    Null,
    Bool(bool),
    Num(String),
    Str(String),
    Arr(Vec<J>),
    Obj(Vec<(String, J)>),
}

impl J {
    fn kind(&self) -> &'static str {
        match self {
            J::Null => "null",
            J::Bool(_) => "a boolean",
            J::Num(_) => "a number",
            J::Str(_) => "a string",
            J::Arr(_) => "an array",
            J::Obj(_) => "an object",
        }
    }
}

/// Parses one JSON text (RFC 8259, as Go's scanner does: whitespace is space, tab, CR, LF).
pub fn parse(text: &str) -> Result<J, String> {
    let mut p = Parser {
        s: text.as_bytes(),
        i: 0,
    };
    p.ws();
    let v = p.value(0)?;
    p.ws();
    if p.i != p.s.len() {
        return Err(p.err("invalid character after the JSON value"));
    }
    Ok(v)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn err(&self, what: &str) -> String {
        if self.i >= self.s.len() {
            format!("{what} (unexpected end of JSON input)")
        } else {
            format!("{what} at byte {}", self.i)
        }
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.s.get(self.i) {
            self.i += 1;
        }
    }

    fn eat(&mut self, lit: &str) -> bool {
        if self.s[self.i..].starts_with(lit.as_bytes()) {
            self.i += lit.len();
            true
        } else {
            false
        }
    }

    fn value(&mut self, depth: usize) -> Result<J, String> {
        if depth > MAX_DEPTH {
            return Err(self.err(&format!("JSON nested deeper than {MAX_DEPTH} levels")));
        }
        match self.s.get(self.i) {
            Some(b'{') => self.object(depth),
            Some(b'[') => self.array(depth),
            Some(b'"') => self.string().map(J::Str),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ if self.eat("true") => Ok(J::Bool(true)),
            _ if self.eat("false") => Ok(J::Bool(false)),
            _ if self.eat("null") => Ok(J::Null),
            _ => Err(self.err("invalid character looking for the beginning of a value")),
        }
    }

    fn object(&mut self, depth: usize) -> Result<J, String> {
        self.i += 1;
        let mut pairs = Vec::new();
        self.ws();
        if self.s.get(self.i) == Some(&b'}') {
            self.i += 1;
            return Ok(J::Obj(pairs));
        }
        loop {
            self.ws();
            if self.s.get(self.i) != Some(&b'"') {
                return Err(self.err("expected a string object key"));
            }
            let k = self.string()?;
            self.ws();
            if self.s.get(self.i) != Some(&b':') {
                return Err(self.err("expected ':' after an object key"));
            }
            self.i += 1;
            self.ws();
            let v = self.value(depth + 1)?;
            pairs.push((k, v));
            self.ws();
            match self.s.get(self.i) {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    return Ok(J::Obj(pairs));
                }
                _ => return Err(self.err("expected ',' or '}' in an object")),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<J, String> {
        self.i += 1;
        let mut items = Vec::new();
        self.ws();
        if self.s.get(self.i) == Some(&b']') {
            self.i += 1;
            return Ok(J::Arr(items));
        }
        loop {
            self.ws();
            items.push(self.value(depth + 1)?);
            self.ws();
            match self.s.get(self.i) {
                Some(b',') => self.i += 1,
                Some(b']') => {
                    self.i += 1;
                    return Ok(J::Arr(items));
                }
                _ => return Err(self.err("expected ',' or ']' in an array")),
            }
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while let Some(b'0'..=b'9') = self.s.get(self.i) {
            self.i += 1;
        }
        self.i - start
    }

    fn number(&mut self) -> Result<J, String> {
        let start = self.i;
        if self.s[self.i] == b'-' {
            self.i += 1;
        }
        match self.s.get(self.i) {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(self.err("invalid number")),
        }
        if self.s.get(self.i) == Some(&b'.') {
            self.i += 1;
            if self.digits() == 0 {
                return Err(self.err("invalid number: digits expected after '.'"));
            }
        }
        if let Some(b'e' | b'E') = self.s.get(self.i) {
            self.i += 1;
            if let Some(b'+' | b'-') = self.s.get(self.i) {
                self.i += 1;
            }
            if self.digits() == 0 {
                return Err(self.err("invalid number: digits expected in the exponent"));
            }
        }
        // The slice is ASCII by construction.
        Ok(J::Num(
            String::from_utf8_lossy(&self.s[start..self.i]).into_owned(),
        ))
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let Some(h) = self.s.get(self.i..self.i + 4) else {
            return Err(self.err("invalid \\u escape"));
        };
        let h = std::str::from_utf8(h).map_err(|_| self.err("invalid \\u escape"))?;
        let v = u32::from_str_radix(h, 16).map_err(|_| self.err("invalid \\u escape"))?;
        if !h.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(self.err("invalid \\u escape"));
        }
        self.i += 4;
        Ok(v)
    }

    fn string(&mut self) -> Result<String, String> {
        self.i += 1;
        let mut out = Vec::new();
        loop {
            let Some(&b) = self.s.get(self.i) else {
                return Err(self.err("unterminated string"));
            };
            match b {
                b'"' => {
                    self.i += 1;
                    // Input is &str and escapes push whole chars, so this never replaces.
                    return Ok(String::from_utf8_lossy(&out).into_owned());
                }
                b'\\' => {
                    self.i += 1;
                    let Some(&e) = self.s.get(self.i) else {
                        return Err(self.err("unterminated escape"));
                    };
                    self.i += 1;
                    let c = match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => self.unicode_escape()?,
                        _ => return Err(self.err("invalid escape in string")),
                    };
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
                0..=0x1f => return Err(self.err("control character in string")),
                _ => {
                    out.push(b);
                    self.i += 1;
                }
            }
        }
    }

    /// After `\u`: a code point, a surrogate pair, or (as Go does) U+FFFD for a lone surrogate.
    fn unicode_escape(&mut self) -> Result<char, String> {
        let hi = self.hex4()?;
        if (0xD800..0xDC00).contains(&hi) && self.s[self.i..].starts_with(b"\\u") {
            let save = self.i;
            self.i += 2;
            let lo = self.hex4()?;
            if (0xDC00..0xE000).contains(&lo) {
                let c = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                return Ok(char::from_u32(c).unwrap_or('\u{FFFD}'));
            }
            // Not a low surrogate: the high one is replaced, the next escape read on its own.
            self.i = save;
        }
        Ok(char::from_u32(hi).unwrap_or('\u{FFFD}'))
    }
}

// ---------------------------------------------------------------------------------------------
// Decoding into Go-shaped values.
// ---------------------------------------------------------------------------------------------

/// Decoding a [`J`] into a value the way Go's `encoding/json` decodes into the Go type it
/// mirrors, merging into what is already there (which is what happens on a repeated key).
pub trait GoDecode {
    fn decode(&mut self, v: &J, path: &str) -> Result<(), String>;
}

pub fn type_error(path: &str, want: &str, got: &J) -> String {
    let at = if path.is_empty() { "the value" } else { path };
    format!("{at} must be {want}, not {}", got.kind())
}

pub fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_string()
    } else {
        format!("{path}.{field}")
    }
}

/// Go's `strconv.ParseInt(text, 10, 64)` on a JSON number literal, then the overflow check of
/// the target's size: `1.0`, `1e2` and out-of-range numbers are type errors, `-0` is 0.
fn int_in(path: &str, v: &J, min: i64, max: i64, ty: &str) -> Result<Option<i64>, String> {
    match v {
        J::Null => Ok(None),
        J::Num(text) => match text.parse::<i64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
            _ => Err(format!(
                "{}: {text} is not {ty}",
                if path.is_empty() { "the value" } else { path }
            )),
        },
        other => Err(type_error(path, &format!("{ty} (a JSON number)"), other)),
    }
}

impl GoDecode for i32 {
    fn decode(&mut self, v: &J, path: &str) -> Result<(), String> {
        if let Some(n) = int_in(
            path,
            v,
            i32::MIN.into(),
            i32::MAX.into(),
            "a 32-bit integer",
        )? {
            *self = n as i32;
        }
        Ok(())
    }
}

impl GoDecode for String {
    fn decode(&mut self, v: &J, path: &str) -> Result<(), String> {
        match v {
            // Go leaves a string untouched on null.
            J::Null => Ok(()),
            J::Str(s) => {
                self.clone_from(s);
                Ok(())
            }
            other => Err(type_error(path, "a string", other)),
        }
    }
}

impl GoDecode for bool {
    fn decode(&mut self, v: &J, path: &str) -> Result<(), String> {
        match v {
            J::Null => Ok(()),
            J::Bool(b) => {
                *self = *b;
                Ok(())
            }
            other => Err(type_error(path, "true or false", other)),
        }
    }
}

/// A Go pointer (`*T`): null makes it nil; anything else is decoded into the existing value,
/// allocated first when nil.
impl<T: GoDecode + Default> GoDecode for Option<T> {
    fn decode(&mut self, v: &J, path: &str) -> Result<(), String> {
        if *v == J::Null {
            *self = None;
            return Ok(());
        }
        self.get_or_insert_with(T::default).decode(v, path)
    }
}

/// A Go slice. Go decodes element `i` into whatever sits at index `i` of the backing array,
/// including elements a shorter earlier decode left beyond the length, so those are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoSlice<T> {
    backing: Vec<T>,
    len: usize,
}

impl<T> Default for GoSlice<T> {
    fn default() -> Self {
        Self {
            backing: Vec::new(),
            len: 0,
        }
    }
}

impl<T> GoSlice<T> {
    pub fn items(&self) -> &[T] {
        &self.backing[..self.len]
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl<T: GoDecode + Default> GoDecode for GoSlice<T> {
    fn decode(&mut self, v: &J, path: &str) -> Result<(), String> {
        match v {
            J::Null => {
                *self = Self::default();
                Ok(())
            }
            J::Arr(elems) => {
                for (i, e) in elems.iter().enumerate() {
                    if i >= self.backing.len() {
                        self.backing.push(T::default());
                    }
                    self.len = self.len.max(i + 1);
                    self.backing[i].decode(e, &format!("{path}[{i}]"))?;
                }
                if elems.is_empty() {
                    *self = Self::default();
                } else {
                    self.len = elems.len();
                }
                Ok(())
            }
            other => Err(type_error(path, "an array", other)),
        }
    }
}

/// A Go `map[string]V`: null makes it nil; an object adds its keys to the existing map, each
/// value decoded into a fresh zero value (so `{"a": null}` stores the zero value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoMap<V>(pub Option<Vec<(String, V)>>);

impl<V> Default for GoMap<V> {
    fn default() -> Self {
        Self(None)
    }
}

impl<V> GoMap<V> {
    pub fn entries(&self) -> &[(String, V)] {
        self.0.as_deref().unwrap_or_default()
    }
}

impl<V: GoDecode + Default> GoDecode for GoMap<V> {
    fn decode(&mut self, v: &J, path: &str) -> Result<(), String> {
        match v {
            J::Null => {
                self.0 = None;
                Ok(())
            }
            J::Obj(pairs) => {
                let map = self.0.get_or_insert_with(Vec::new);
                for (k, val) in pairs {
                    let mut elem = V::default();
                    elem.decode(val, &join(path, k))?;
                    match map.iter_mut().find(|(key, _)| key == k) {
                        Some(slot) => slot.1 = elem,
                        None => map.push((k.clone(), elem)),
                    }
                }
                Ok(())
            }
            other => Err(type_error(path, "an object", other)),
        }
    }
}

/// Kubernetes' `intstr.IntOrString` (its own `UnmarshalJSON`): a JSON string is a name, anything
/// else must be a 32-bit integer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IntOrString {
    Int(i32),
    Str(String),
}

impl Default for IntOrString {
    fn default() -> Self {
        IntOrString::Int(0)
    }
}

impl GoDecode for IntOrString {
    fn decode(&mut self, v: &J, path: &str) -> Result<(), String> {
        match v {
            J::Str(s) => *self = IntOrString::Str(s.clone()),
            other => {
                let mut n = match self {
                    IntOrString::Int(n) => *n,
                    IntOrString::Str(_) => 0,
                };
                n.decode(other, path)?;
                *self = IntOrString::Int(n);
            }
        }
        Ok(())
    }
}

/// Go's case-insensitive key match (`bytes.EqualFold`) against an ASCII field name: besides
/// ASCII case, the Kelvin sign folds to `k` and the long s to `s`.
pub fn key_matches(field: &str, key: &str) -> bool {
    let mut k = key.chars();
    for f in field.chars() {
        let Some(c) = k.next() else { return false };
        let same = c.eq_ignore_ascii_case(&f)
            || (f.eq_ignore_ascii_case(&'k') && c == '\u{212A}')
            || (f.eq_ignore_ascii_case(&'s') && c == '\u{17F}');
        if !same {
            return false;
        }
    }
    k.next().is_none()
}

/// Declares a struct mirroring a Go struct of the controller, with its JSON field names, and
/// its [`GoDecode`]: keys matched case-insensitively in document order, unknown keys ignored,
/// null ignored, anything but an object or null refused.
macro_rules! go_struct {
    ($(#[$m:meta])* $vis:vis struct $name:ident { $($json:literal => $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Default, PartialEq, Eq)]
        $vis struct $name { $(pub $field: $ty),* }

        impl $crate::alb_annotations::gojson::GoDecode for $name {
            fn decode(
                &mut self,
                v: &$crate::alb_annotations::gojson::J,
                path: &str,
            ) -> Result<(), String> {
                use $crate::alb_annotations::gojson::{J, join, key_matches, type_error};
                let pairs = match v {
                    J::Null => return Ok(()),
                    J::Obj(pairs) => pairs,
                    other => return Err(type_error(path, "an object", other)),
                };
                for (key, val) in pairs {
                    $(
                        if key_matches($json, key) {
                            self.$field.decode(val, &join(path, $json))?;
                            continue;
                        }
                    )*
                }
                Ok(())
            }
        }
    };
}
pub(crate) use go_struct;

/// Parses `text` as JSON and decodes it into a fresh `T`, as `json.Unmarshal(text, &t)` does.
pub fn unmarshal<T: GoDecode + Default>(text: &str) -> Result<T, String> {
    let j = parse(text)?;
    let mut t = T::default();
    t.decode(&j, "")?;
    Ok(t)
}

/// A short, single-line rendering of a value for error messages.
pub fn excerpt(value: &str) -> String {
    const MAX: usize = 120;
    let mut out = String::new();
    for (n, c) in value.chars().enumerate() {
        if n == MAX {
            out.push('…');
            break;
        }
        if c.is_control() {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}
