//! The controller's scalar annotation parsers (`pkg/annotations/parser.go` and the Go `strconv`
//! and `net` functions it calls), reproduced exactly: the same text gives the same value or the
//! same refusal.

use std::net::{Ipv4Addr, Ipv6Addr};

/// Go's `strings.TrimSpace` (Unicode white space, which is also what `str::trim` removes).
fn trim(s: &str) -> &str {
    s.trim()
}

/// Go's `strconv.ParseBool`.
pub fn parse_bool(raw: &str) -> Option<bool> {
    match raw {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Go's `strconv.ParseInt(raw, 10, bits)`: an optional sign and ASCII digits, nothing else (no
/// spaces, no underscores), within the signed range of `bits`.
pub fn parse_int(raw: &str, bits: u32) -> Option<i64> {
    let digits = raw.strip_prefix(['+', '-']).unwrap_or(raw);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: i64 = raw.parse().ok()?;
    let max = (1i128 << (bits - 1)) - 1;
    let min = -(1i128 << (bits - 1));
    ((min..=max).contains(&i128::from(n))).then_some(n)
}

/// Kubernetes' `intstr.Parse` (apimachinery v0.36): a 32-bit integer when `strconv.ParseInt`
/// accepts it, else the text stays a name (so `"4294967376"` is a name, not a number).
pub fn intstr_parse(raw: &str) -> Result<i32, ()> {
    parse_int(raw, 32).map(|n| n as i32).ok_or(())
}

/// Kubernetes' `IsValidPortName` (IANA_SVC_NAME): what a Service port name must be, so a name
/// that fails it can never match a port of a Service.
pub fn is_port_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 15
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && s.bytes().any(|b| b.is_ascii_lowercase())
        && !s.starts_with('-')
        && !s.ends_with('-')
        && !s.contains("--")
}

/// `splitCommaSeparatedString`: split on commas, trim, drop empty items.
pub fn split_list(raw: &str) -> Vec<String> {
    raw.split(',')
        .map(trim)
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect()
}

/// `ParseStringMapAnnotation`: `key=value` pairs separated by commas, where `\x` stands for `x`
/// (so `\,` is a comma inside a value) and a comma only separates when some `=` follows it.
/// Returns the pairs in first-appearance order with the last value of a repeated key (a Go map).
pub fn parse_map(raw: &str) -> Result<Vec<(String, String)>, String> {
    let mut out: Vec<(String, String)> = Vec::new();
    for pair in split_key_value_pairs(raw) {
        let Some((k, v)) = pair.split_once('=') else {
            return Err(format!("{pair:?} is not key=value"));
        };
        let (k, v) = (trim(k), trim(v));
        if k.is_empty() {
            return Err(format!("{pair:?} has an empty key"));
        }
        match out.iter_mut().find(|(key, _)| key == k) {
            Some(slot) => slot.1 = v.to_string(),
            None => out.push((k.to_string(), v.to_string())),
        }
    }
    Ok(out)
}

/// `splitKeyValuePairs`, byte for byte.
fn split_key_value_pairs(s: &str) -> Vec<String> {
    let b = s.as_bytes();
    let mut result = Vec::new();
    let mut cur: Vec<u8> = Vec::new();
    let finish = |cur: &[u8]| trim(&String::from_utf8_lossy(cur)).to_string();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            cur.push(b[i + 1]);
            i += 2;
            continue;
        }
        if b[i] == b',' {
            let remaining = trim(&s[i + 1..]);
            if remaining.contains('=') {
                result.push(finish(&cur));
                cur.clear();
            } else if !remaining.is_empty() {
                // Malformed: the rest has no '=' at all; Go stops here with both pieces.
                result.push(finish(&cur));
                result.push(remaining.to_string());
                return result;
            } else {
                cur.push(b',');
            }
        } else {
            cur.push(b[i]);
        }
        i += 1;
    }
    if !cur.is_empty() {
        result.push(finish(&cur));
    }
    result
}

/// Go's `net.ParseCIDR`: an IP without zone, `/`, and decimal prefix bits (leading zeros
/// allowed, no sign) within the address size. Returns whether the address is IPv6 by the
/// controller's rule (the text contains `:`).
pub fn parse_cidr(raw: &str) -> Result<bool, String> {
    let Some((addr, bits)) = raw.split_once('/') else {
        return Err(format!("{raw:?} is not a CIDR (no /prefix)"));
    };
    let max = if addr.parse::<Ipv6Addr>().is_ok() {
        // An IPv4-mapped IPv6 address stays 128 bits wide in Go's netip.
        128
    } else if addr.parse::<Ipv4Addr>().is_ok() {
        32
    } else {
        return Err(format!("{raw:?}: {addr:?} is not an IP address"));
    };
    // Go's dtoi: digits only, at least one, giving up at 0xFFFFFF.
    let mut n: u64 = 0;
    for c in bits.bytes() {
        if !c.is_ascii_digit() || n >= 0xFF_FFFF {
            return Err(format!("{raw:?}: prefix length {bits:?} is not a number"));
        }
        n = n * 10 + u64::from(c - b'0');
    }
    if bits.is_empty() || n >= 0xFF_FFFF {
        return Err(format!("{raw:?}: prefix length {bits:?} is not a number"));
    }
    if n > max {
        return Err(format!("{raw:?}: prefix length {n} is larger than {max}"));
    }
    Ok(raw.contains(':'))
}
