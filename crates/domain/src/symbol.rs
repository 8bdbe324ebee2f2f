//! `Symbol`: a validated ticker that is safe to use as a path segment.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::DomainError;

/// Longest accepted ticker, in characters.
pub const MAX_SYMBOL_LEN: usize = 21;

/// A validated ticker symbol: 1–21 characters of `A-Z` and `0-9`, with `.` and `-` allowed
/// inside (`BRK.B`, `BF-B`) but never first, last or doubled.
///
/// A symbol becomes a directory name in the lake, so this type is the guard against path
/// traversal: `..`, `/`, `\`, spaces and control characters can never be inside one. It is
/// stored inline (22 bytes, `Copy`) because every bar carries one.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Symbol {
    // Zero-padded, so the derived `Ord` is the lexicographic order of the text.
    bytes: [u8; MAX_SYMBOL_LEN],
    len: u8,
}

impl Symbol {
    /// Validates `value` as a ticker. Lower-case input is rejected rather than folded, so a
    /// typo is reported instead of silently creating a second lake directory.
    pub fn new(value: &str) -> Result<Self, DomainError> {
        let reject = |reason| DomainError::InvalidSymbol {
            value: value.to_owned(),
            reason,
        };
        let raw = value.as_bytes();
        if raw.is_empty() {
            return Err(reject("a symbol cannot be empty"));
        }
        if raw.len() > MAX_SYMBOL_LEN {
            return Err(reject("a symbol has at most 21 characters"));
        }
        for &b in raw {
            match b {
                b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' => {}
                b'a'..=b'z' => return Err(reject("use upper-case letters (e.g. AAPL)")),
                _ => {
                    return Err(reject(
                        "only A-Z, 0-9 and an inner '.' or '-' are allowed (no spaces, '/', '\\')",
                    ));
                }
            }
        }
        let is_sep = |b: u8| b == b'.' || b == b'-';
        if is_sep(raw[0]) || is_sep(raw[raw.len() - 1]) {
            return Err(reject("'.' and '-' may only appear inside a symbol"));
        }
        if raw.windows(2).any(|w| is_sep(w[0]) && is_sep(w[1])) {
            return Err(reject("'.' and '-' cannot be doubled (no '..')"));
        }
        let mut bytes = [0u8; MAX_SYMBOL_LEN];
        bytes[..raw.len()].copy_from_slice(raw);
        Ok(Self {
            bytes,
            // Cannot truncate: the length was checked against MAX_SYMBOL_LEN above.
            len: u8::try_from(raw.len()).unwrap_or(u8::MAX),
        })
    }

    /// The ticker text.
    pub fn as_str(&self) -> &str {
        // Only ASCII bytes are ever stored, so this cannot fail; the fallback keeps the
        // function total without a panic path.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("")
    }

    /// Parses a comma-separated list (`"AAPL, MSFT,BRK.B"`; spaces around commas are
    /// ignored), removing duplicates while keeping the first-seen order. `"A B"` is one
    /// invalid symbol, not two. An empty list is an error.
    pub fn parse_list(text: &str) -> Result<Vec<Self>, DomainError> {
        let mut out: Vec<Self> = Vec::new();
        for part in text.split(',').map(str::trim) {
            if part.is_empty() {
                continue;
            }
            let symbol = Self::new(part)?;
            if !out.contains(&symbol) {
                out.push(symbol);
            }
        }
        if out.is_empty() {
            return Err(DomainError::InvalidSymbol {
                value: text.to_owned(),
                reason: "the symbol list is empty",
            });
        }
        Ok(out)
    }
}

impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Symbol({})", self.as_str())
    }
}

impl FromStr for Symbol {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl AsRef<str> for Symbol {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Serialize for Symbol {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Symbol {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::new(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_real_tickers() {
        for s in ["AAPL", "BRK.B", "BF-B", "A", "X1", "ABCDEFGHIJKLMNOPQRSTU"] {
            assert_eq!(Symbol::new(s).unwrap().as_str(), s);
        }
    }

    #[test]
    fn rejects_path_traversal_and_garbage() {
        let cases = [
            ("../etc", "only A-Z"),
            ("A/B", "only A-Z"),
            ("a b", "upper-case"),
            ("A B", "only A-Z"),
            ("", "empty"),
            ("ABCDEFGHIJKLMNOPQRSTUV", "at most 21"),
            ("A\\B", "only A-Z"),
            ("A..B", "doubled"),
            (".A", "inside"),
            ("A-", "inside"),
            ("A\u{0}", "only A-Z"),
            ("ÄPPL", "only A-Z"),
        ];
        for (input, reason) in cases {
            match Symbol::new(input) {
                Err(DomainError::InvalidSymbol { value, reason: r }) => {
                    assert_eq!(value, input);
                    assert!(r.contains(reason), "{input:?}: {r}");
                }
                other => panic!("{input:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn ordering_is_lexicographic() {
        let mut v: Vec<Symbol> = ["MSFT", "AB", "ABC", "A"]
            .iter()
            .map(|s| Symbol::new(s).unwrap())
            .collect();
        v.sort();
        let names: Vec<&str> = v.iter().map(Symbol::as_str).collect();
        assert_eq!(names, ["A", "AB", "ABC", "MSFT"]);
    }

    #[test]
    fn parse_list_dedups_and_rejects_empty() {
        let v = Symbol::parse_list("AAPL, MSFT ,AAPL,BRK.B").unwrap();
        assert_eq!(v.len(), 3);
        assert!(Symbol::parse_list("A B").is_err());
        assert!(Symbol::parse_list(" , ").is_err());
        assert!(Symbol::parse_list("AAPL,../x").is_err());
    }

    #[test]
    fn serde_round_trip_validates() {
        let s = Symbol::new("BRK.B").unwrap();
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(json, "\"BRK.B\"");
        assert_eq!(serde_json::from_str::<Symbol>(&json).unwrap(), s);
        assert!(serde_json::from_str::<Symbol>("\"../x\"").is_err());
        assert_eq!(format!("{s:?}"), "Symbol(BRK.B)");
        assert_eq!("MSFT".parse::<Symbol>().unwrap().as_ref(), "MSFT");
    }
}
