//! `--timeout` and the other duration flags: humantime's forms (`300ms`, `90s`, `5m`, `1.5h`,
//! `1h30m`, `2 days`), a bare number as seconds (what earlier versions and `install --timeout`
//! took), and a cap of one week. Messages are for the terminal: clap puts the flag's name in
//! front of them.

use std::time::Duration;

/// A deadline this far out is a typo, and `Instant::now() + timeout` must not overflow.
pub const MAX: Duration = Duration::from_secs(7 * 24 * 3600);

const EXAMPLES: &str = "use a number with a unit, e.g. 90s, 5m or 1h (also 300ms, 1.5h, 1h30m)";

/// Parses a duration flag (clap `value_parser`).
pub fn parse(value: &str) -> Result<Duration, String> {
    let too_long =
        || format!("duration {value:?} is longer than a week; use a timeout such as 5m or 1h");
    let trimmed = value.trim();
    let parsed = if !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit()) {
        // A number too large for u64 is still just "too long", not a malformed value.
        trimmed
            .parse::<u64>()
            .map(Duration::from_secs)
            .map_err(|_| too_long())?
    } else {
        humantime::parse_duration(trimmed).map_err(|e| match e {
            humantime::DurationError::NumberOverflow => too_long(),
            humantime::DurationError::Empty => format!("invalid duration {value:?}: {EXAMPLES}"),
            other => format!("invalid duration {value:?} ({other}); {EXAMPLES}"),
        })?
    };
    if parsed > MAX {
        return Err(too_long());
    }
    Ok(parsed)
}

/// A duration as the user would write it back, for messages ("--timeout 5m", "1m 30s").
pub fn show(d: Duration) -> String {
    if d.is_zero() {
        return "0s".into();
    }
    humantime::format_duration(d).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn humantime_forms_and_bare_seconds() {
        for (text, want) in [
            ("90", 90_000),
            ("90s", 90_000),
            ("5m", 300_000),
            ("1m30s", 90_000),
            ("1h 30m", 5_400_000),
            ("1h", 3_600_000),
            ("300ms", 300),
            ("1.5h", 5_400_000),
            ("2 days", 172_800_000),
            ("0", 0),
        ] {
            assert_eq!(parse(text), Ok(Duration::from_millis(want)), "{text}");
        }
    }

    #[test]
    fn longer_than_a_week_is_refused_with_the_fix() {
        for huge in [
            "99999999999999999h",
            "18446744073709551615",
            "99999999999999999999999",
            "604801s",
            "99999999999m1s",
            "9999999999999999m",
            "2 weeks",
            "1y",
        ] {
            let e = parse(huge).unwrap_err();
            assert!(
                e.contains("longer than a week") && e.contains("5m"),
                "{huge}: {e}"
            );
        }
        assert_eq!(parse("7d"), Ok(MAX));
    }

    #[test]
    fn malformed_values_name_the_value_and_the_forms() {
        for bad in ["", " ", "5x", "m", "5m3", "-5s", "1.5.2h", "five minutes"] {
            let e = parse(bad).unwrap_err();
            assert!(
                e.starts_with(&format!("invalid duration {bad:?}"))
                    && e.contains("e.g. 90s, 5m or 1h"),
                "{bad:?}: {e}"
            );
        }
        assert!(parse("5x").unwrap_err().contains("unknown time unit \"x\""));
    }

    #[test]
    fn shown_as_written() {
        assert_eq!(show(Duration::from_secs(5)), "5s");
        assert_eq!(show(Duration::from_secs(300)), "5m");
        assert_eq!(show(Duration::from_secs(90)), "1m 30s");
        assert_eq!(show(Duration::from_millis(300)), "300ms");
        assert_eq!(show(Duration::ZERO), "0s");
    }
}
