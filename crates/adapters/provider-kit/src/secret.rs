//! `Secret`: a credential that never prints itself.

use std::fmt;

/// A credential (API key, secret key, bearer token). `Debug` and `Display` print `***` — not
/// the value, not its length — so a secret can sit inside any struct that derives `Debug`
/// and reach no log line or error message. Only [`Secret::expose`] gives the value, and the
/// HTTP client is its only caller outside tests.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a credential.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The credential itself, for a request header. Never format it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the credential is the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_in_debug_and_display() {
        let s = Secret::new("PKSECRETVALUE");
        assert_eq!(format!("{s:?}"), "***");
        assert_eq!(format!("{s}"), "***");
        assert_eq!(format!("{:?}", Some(s.clone())), "Some(***)");
        assert_eq!(s.expose(), "PKSECRETVALUE");
        assert!(!s.is_empty());
        // The length is not visible either.
        assert_eq!(format!("{:?}", Secret::new("x")), format!("{s:?}"));
    }
}
