//! Passwords, kept out of logs and summaries.
//!
//! A [`Secret`] prints as `<redacted>` through both `Debug` and `Display`, so a config (or an
//! error holding one) can be logged whole. The value is reachable only through
//! [`Secret::expose`], which makes every use easy to find.

use std::fmt;

/// A password from the config. `Debug` and `Display` print `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value itself, for the one place that must use it (a MySQL login).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_hide_the_value() {
        let secret = Secret::new("pwd123");
        assert_eq!(format!("{secret:?}"), "<redacted>");
        assert_eq!(format!("{secret}"), "<redacted>");
        assert_eq!(format!("{:?}", Some(secret.clone())), "Some(<redacted>)");
    }

    #[test]
    fn expose_returns_the_value() {
        assert_eq!(Secret::new("pa#ss").expose(), "pa#ss");
    }
}
