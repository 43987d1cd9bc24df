//! Parsers for the value types of config keys.
//!
//! Each parser takes the value text (already trimmed, never empty) and returns the typed value
//! or, for each offending piece, a [`Bad`] saying what was expected. Lists are split on commas
//! with the whitespace around them removed (`a,b` and `a, b` are the same); a trailing comma is
//! ignored as MMM's Perl `split` ignores it, but an empty item elsewhere is an error. Durations
//! are seconds, whole or fractional (`5`, `1.5`), parsed exactly without going through floats.

use std::net::IpAddr;
use std::str::FromStr;
use std::time::Duration;

/// One offending value (or list item) and what the key takes instead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Bad {
    pub value: String,
    pub expected: String,
}

pub(crate) type Parsed<T> = Result<T, Vec<Bad>>;

fn bad<T>(value: &str, expected: impl Into<String>) -> Parsed<T> {
    Err(vec![Bad {
        value: value.to_string(),
        expected: expected.into(),
    }])
}

/// The items of a comma-separated list.
pub(crate) fn items(text: &str) -> Vec<&str> {
    let mut items: Vec<&str> = text.split(',').map(str::trim).collect();
    while items.last().is_some_and(|item| item.is_empty()) {
        items.pop();
    }
    items
}

/// A list's good items and its bad ones. The good items are kept even when some are bad, so
/// that the cross-checks can still look at them in the same load.
pub(crate) type ListParse<T> = (Vec<T>, Vec<Bad>);

/// Parses every item with `parse`; collects every bad item.
fn list<T>(text: &str, parse: impl Fn(&str) -> Parsed<T>) -> ListParse<T> {
    let mut values = Vec::new();
    let mut bads = Vec::new();
    for item in items(text) {
        match parse(item) {
            Ok(value) => values.push(value),
            Err(mut more) => bads.append(&mut more),
        }
    }
    (values, bads)
}

/// Stores a list's good items in `field` and returns its bad ones as the error.
pub(crate) fn store<T>(field: &mut Vec<T>, (values, bads): ListParse<T>) -> Parsed<()> {
    *field = values;
    if bads.is_empty() {
        Ok(())
    } else {
        Err(bads)
    }
}

/// An IPv4 or IPv6 address.
pub(crate) fn ip(text: &str) -> Parsed<IpAddr> {
    IpAddr::from_str(text).or_else(|_| bad(text, "an IP address"))
}

/// A comma-separated list of IP addresses.
pub(crate) fn ip_list(text: &str) -> ListParse<IpAddr> {
    list(text, ip)
}

/// A name (of a host, role, check, copy method or monitor node).
pub(crate) fn name(text: &str) -> Parsed<String> {
    if text.is_empty() {
        bad(text, "a name")
    } else {
        Ok(text.to_string())
    }
}

/// A comma-separated list of names.
pub(crate) fn name_list(text: &str) -> ListParse<String> {
    list(text, name)
}

/// A TCP port, 1 to 65535.
pub(crate) fn port(text: &str) -> Parsed<u16> {
    let digits = text.bytes().all(|b| b.is_ascii_digit());
    match text.parse::<u16>() {
        Ok(port) if port > 0 && digits => Ok(port),
        _ => bad(text, "a port number (1-65535)"),
    }
}

/// A whole number that fits in `T`.
pub(crate) fn count<T: FromStr>(text: &str) -> Parsed<T> {
    let digits = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    match text.parse::<T>() {
        Ok(value) if digits => Ok(value),
        _ => bad(text, "a whole number"),
    }
}

/// Seconds, whole or with up to nine decimals: `5`, `0.3`, `1.5`.
pub(crate) fn seconds(text: &str) -> Parsed<Duration> {
    const EXPECTED: &str = "a number of seconds (such as 5 or 1.5)";
    let (whole, fraction) = match text.split_once('.') {
        Some((whole, fraction)) => (whole, fraction),
        None => (text, ""),
    };
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let well_formed = !whole.is_empty()
        && digits(whole)
        && digits(fraction)
        && fraction.len() <= 9
        && !(text.contains('.') && fraction.is_empty());
    if !well_formed {
        return bad(text, EXPECTED);
    }
    let Ok(secs) = whole.parse::<u64>() else {
        return bad(text, EXPECTED);
    };
    let mut nanos: u32 = 0;
    for position in 0..9 {
        let digit = fraction
            .as_bytes()
            .get(position)
            .map_or(0, |b| u32::from(b.saturating_sub(b'0')));
        nanos = nanos * 10 + digit;
    }
    Ok(Duration::new(secs, nanos))
}

/// A fraction in `[0, 0.5)`, such as `0.01`.
pub(crate) fn drift_fraction(text: &str) -> Parsed<f64> {
    const EXPECTED: &str = "a fraction from 0 up to (not including) 0.5, such as 0.01";
    let plain = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    match text.parse::<f64>() {
        Ok(value) if plain && value.is_finite() && (0.0..0.5).contains(&value) => Ok(value),
        _ => bad(text, EXPECTED),
    }
}

/// A boolean, spelled as MMM accepts it (case-insensitively).
pub(crate) fn boolean(text: &str) -> Parsed<bool> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "on" | "yes" | "1" => Ok(true),
        "false" | "off" | "no" | "0" => Ok(false),
        _ => bad(text, "a boolean (true, on, yes or 1; false, off, no or 0)"),
    }
}

/// One of a fixed set of words, matched exactly (MMM compares with `eq`).
pub(crate) fn one_of<T: Copy>(text: &str, choices: &[(&str, T)]) -> Parsed<T> {
    match choices.iter().find(|(word, _)| *word == text) {
        Some((_, value)) => Ok(*value),
        None => {
            let words: Vec<String> = choices.iter().map(|(w, _)| format!("'{w}'")).collect();
            bad(text, format!("one of {}", words.join(", ")))
        }
    }
}

/// Formats a duration as seconds, as the config writes it: `5 s`, `1.5 s`, `0.3 s`.
pub fn format_seconds(duration: Duration) -> String {
    let secs = duration.as_secs();
    let nanos = duration.subsec_nanos();
    if nanos == 0 {
        return format!("{secs} s");
    }
    let fraction = format!("{nanos:09}");
    format!("{secs}.{} s", fraction.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_accept_whole_and_fractional_values_exactly() {
        assert_eq!(seconds("5"), Ok(Duration::from_secs(5)));
        assert_eq!(seconds("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(seconds("0.3"), Ok(Duration::from_millis(300)));
        assert_eq!(seconds("0.000000001"), Ok(Duration::from_nanos(1)));
        assert_eq!(seconds("86400"), Ok(Duration::from_secs(86400)));
    }

    #[test]
    fn seconds_refuse_other_spellings() {
        for text in [
            "",
            "-1",
            "1.",
            ".5",
            "1e3",
            "5s",
            "1.2.3",
            "0.0000000001",
            "NaN",
            "99999999999999999999",
        ] {
            assert!(seconds(text).is_err(), "{text}");
        }
    }

    #[test]
    fn lists_split_on_commas_with_or_without_spaces() {
        assert_eq!(items("a,b"), vec!["a", "b"]);
        assert_eq!(items("a, b ,c"), vec!["a", "b", "c"]);
        assert_eq!(items("a, b,"), vec!["a", "b"]);
        assert_eq!(items(",a"), vec!["", "a"]);
    }

    #[test]
    fn every_bad_list_item_is_reported() {
        let (good, bad) = ip_list("10.0.0.1, 10.0.0.300, x");
        let values: Vec<String> = bad.into_iter().map(|b| b.value).collect();
        assert_eq!(values, vec!["10.0.0.300", "x"]);
        assert_eq!(good, vec![IpAddr::from([10, 0, 0, 1])]);
    }

    #[test]
    fn booleans_accept_mmm_spellings_in_any_case() {
        for text in ["true", "ON", "Yes", "1"] {
            assert_eq!(boolean(text), Ok(true), "{text}");
        }
        for text in ["false", "Off", "NO", "0"] {
            assert_eq!(boolean(text), Ok(false), "{text}");
        }
        assert!(boolean("2").is_err());
    }

    #[test]
    fn ports_must_be_between_1_and_65535() {
        assert_eq!(port("9988"), Ok(9988));
        assert!(port("0").is_err());
        assert!(port("65536").is_err());
        assert!(port("+80").is_err());
    }

    #[test]
    fn counts_are_plain_digits() {
        assert_eq!(count::<u32>("3"), Ok(3));
        assert!(count::<u32>("+3").is_err());
        assert!(count::<u32>("3.0").is_err());
        assert!(count::<u32>("4294967296").is_err());
    }

    #[test]
    fn drift_is_a_fraction_below_one_half() {
        assert_eq!(drift_fraction("0.01"), Ok(0.01));
        assert_eq!(drift_fraction("0"), Ok(0.0));
        assert!(drift_fraction("0.5").is_err());
        assert!(drift_fraction("-0.1").is_err());
        assert!(drift_fraction("inf").is_err());
    }

    #[test]
    fn durations_format_as_seconds() {
        assert_eq!(format_seconds(Duration::from_secs(5)), "5 s");
        assert_eq!(format_seconds(Duration::from_millis(1500)), "1.5 s");
        assert_eq!(format_seconds(Duration::from_millis(300)), "0.3 s");
    }
}
