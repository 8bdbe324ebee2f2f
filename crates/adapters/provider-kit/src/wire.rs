//! Wire helpers shared by the adapters: JSON decoding into `Malformed` errors that name the
//! URL path only, error-body text, volumes that may be fractional, and inclusive end bounds.

use std::fmt;

use marketpipe_domain::{Price, Symbol, Timestamp};
use marketpipe_ports::ProviderError;
use serde::Deserialize;
use serde::de::{self, DeserializeOwned, Deserializer, Visitor};
use url::Url;

/// `GET <path>` of a URL: never its query (keys may be there) nor its host.
pub fn describe_request(url: &Url) -> String {
    format!("GET {}", url.path())
}

/// A `Malformed` error naming the provider and the request's path.
pub fn malformed(provider: &str, url: &Url, message: impl fmt::Display) -> ProviderError {
    ProviderError::Malformed {
        provider: provider.to_owned(),
        message: format!("{}: {message}", describe_request(url)),
        source: None,
    }
}

/// Decodes a JSON body; a body that does not parse is `Malformed`, naming the provider, the
/// URL path and the parser's error (e.g. `GET /v2/stocks/bars: EOF while parsing a value at
/// line 1 column 812`). Never retried: the same request would get the same body.
pub fn parse_json<T: DeserializeOwned>(
    provider: &str,
    url: &Url,
    body: &[u8],
) -> Result<T, ProviderError> {
    serde_json::from_slice(body).map_err(|e| ProviderError::Malformed {
        provider: provider.to_owned(),
        message: format!("{}: {e}", describe_request(url)),
        source: Some(Box::new(e)),
    })
}

/// A price from the wire, rounded to 1e-9 ([`Price::from_f64`]); a negative, NaN or infinite
/// value is `Malformed`, naming the field (e.g. `AAPL 2024-03-15T13:30:00Z o`).
pub fn price(
    provider: &str,
    url: &Url,
    field: &dyn fmt::Display,
    value: f64,
) -> Result<Price, ProviderError> {
    Price::from_f64(value).map_err(|e| malformed(provider, url, format_args!("{field}: {e}")))
}

/// Names one field of one bar in a message: `AAPL 2024-03-15T13:30:00Z o`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BarField {
    /// The bar's symbol.
    pub symbol: Symbol,
    /// The bar's start.
    pub ts: Timestamp,
    /// The wire field (`o`, `v`, …).
    pub name: &'static str,
}

impl fmt::Display for BarField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.symbol, self.ts, self.name)
    }
}

/// The most characters of an error body quoted in a message.
const MAX_QUOTE: usize = 300;

/// The human text of an error body: the `message` or `error` field of a JSON object (the
/// shapes Alpaca, Polygon and Finnhub use), else the body itself, trimmed and shortened; an
/// HTML page is described rather than quoted.
pub fn error_text(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct Shape {
        message: Option<String>,
        error: Option<String>,
    }
    if let Some(text) = serde_json::from_slice::<Shape>(body)
        .ok()
        .and_then(|shape| shape.message.or(shape.error))
    {
        return shorten(text.trim());
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return "(empty body)".to_owned();
    }
    if text.starts_with('<') {
        return "(an HTML page)".to_owned();
    }
    shorten(text)
}

fn shorten(text: &str) -> String {
    if text.chars().count() <= MAX_QUOTE {
        return text.to_owned();
    }
    let mut s: String = text.chars().take(MAX_QUOTE).collect();
    s.push('…');
    s
}

/// A volume that is not a whole number of shares.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum VolumeError {
    /// Negative, NaN or infinite.
    #[error("invalid volume {0}")]
    Invalid(f64),
    /// At or beyond 2^64 shares once rounded.
    #[error("volume {0} is out of range")]
    OutOfRange(f64),
}

/// A volume as a provider sends it: a JSON integer, or a double that may be fractional
/// (Polygon's fractional-share prints).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum WireVolume {
    /// An integer.
    Whole(u64),
    /// A double.
    Fractional(f64),
}

impl WireVolume {
    /// Whole shares, and whether rounding changed the value.
    ///
    /// The one rounding rule of MarketPipe: **round to the nearest whole share, ties away
    /// from zero** (`0.5 → 1`, `2.5 → 3`, `9099.618093 → 9100`), as `f64::round` does. A
    /// double with no fractional part is exact and not counted as rounded. Negative, NaN,
    /// infinite or out-of-range values are errors.
    pub fn to_shares(self) -> Result<(u64, bool), VolumeError> {
        match self {
            Self::Whole(v) => Ok((v, false)),
            Self::Fractional(v) => {
                if !v.is_finite() || v < 0.0 {
                    return Err(VolumeError::Invalid(v));
                }
                let rounded = v.round();
                // 2^64 as f64: anything at or above it does not fit.
                if rounded >= 18_446_744_073_709_551_616.0 {
                    return Err(VolumeError::OutOfRange(v));
                }
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let shares = rounded as u64;
                Ok((shares, v.fract() != 0.0))
            }
        }
    }
}

impl<'de> Deserialize<'de> for WireVolume {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = WireVolume;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a non-negative number")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<WireVolume, E> {
                Ok(WireVolume::Whole(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<WireVolume, E> {
                u64::try_from(v)
                    .map(WireVolume::Whole)
                    .map_err(|_| E::custom(format!("negative volume {v}")))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<WireVolume, E> {
                Ok(WireVolume::Fractional(v))
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// The last whole second strictly before `end`: the inclusive end bound to send to a
/// provider whose `end`/`to` parameter is inclusive, for a half-open range `[start, end)`
/// of bars that start on whole seconds (every 1-minute bar does). A bar starting at `end`
/// is excluded; one starting a second earlier is included.
pub fn inclusive_end_second(end: Timestamp) -> Timestamp {
    end.saturating_add_nanos(-1)
        .floor_to(marketpipe_domain::time::NANOS_PER_SECOND)
}

/// The last whole millisecond strictly before `end` (Polygon's inclusive `to`, in ms).
pub fn inclusive_end_millis(end: Timestamp) -> i64 {
    end.saturating_add_nanos(-1).nanos().div_euclid(1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volumes() {
        let v: Vec<WireVolume> = serde_json::from_str("[1432211, 512034.5, 3.0, 0.49]").unwrap();
        let shares: Vec<_> = v.into_iter().map(|v| v.to_shares().unwrap()).collect();
        assert_eq!(
            shares,
            [(1_432_211, false), (512_035, true), (3, false), (0, true)]
        );
        assert_eq!(WireVolume::Fractional(2.5).to_shares().unwrap(), (3, true));
        assert_eq!(
            WireVolume::Fractional(9_099.618_093).to_shares().unwrap(),
            (9100, true)
        );
        assert_eq!(
            WireVolume::Fractional(-1.0).to_shares(),
            Err(VolumeError::Invalid(-1.0))
        );
        assert!(matches!(
            WireVolume::Fractional(f64::NAN).to_shares(),
            Err(VolumeError::Invalid(v)) if v.is_nan()
        ));
        let big = WireVolume::Fractional(1e30).to_shares().unwrap_err();
        assert_eq!(big, VolumeError::OutOfRange(1e30));
        assert_eq!(
            big.to_string(),
            "volume 1000000000000000000000000000000 is out of range"
        );
        assert!(serde_json::from_str::<WireVolume>("-3").is_err());
        assert!(serde_json::from_str::<WireVolume>("\"3\"").is_err());
    }

    #[test]
    fn error_texts() {
        assert_eq!(
            error_text(br#"{"code":42210000,"message":"invalid timeframe"}"#),
            "invalid timeframe"
        );
        assert_eq!(
            error_text(br#"{"status":"ERROR","error":"Unknown API Key"}"#),
            "Unknown API Key"
        );
        assert_eq!(error_text(b"  Not Found\n"), "Not Found");
        assert_eq!(
            error_text(b"<html><body>504 Gateway Time-out</body></html>"),
            "(an HTML page)"
        );
        assert_eq!(error_text(b""), "(empty body)");
        assert_eq!(error_text(&[b'x'; 1000]).chars().count(), MAX_QUOTE + 1);
    }

    #[test]
    fn malformed_names_path_only() {
        let url = Url::parse("https://h/v2/x?apiKey=SECRET&a=1").unwrap();
        let err = parse_json::<serde_json::Value>("p", &url, br#"{"a":"#).unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("p: malformed response: GET /v2/x: EOF while parsing"));
        assert!(!text.contains("SECRET") && !text.contains('?'), "{text}");
        assert!(!malformed("p", &url, "x").to_string().contains("SECRET"));
    }

    #[test]
    fn inclusive_ends() {
        let end = Timestamp::parse_rfc3339("2024-03-15T13:33:00Z").unwrap();
        assert_eq!(
            inclusive_end_second(end).to_rfc3339(),
            "2024-03-15T13:32:59Z"
        );
        let odd = Timestamp::parse_rfc3339("2024-03-15T13:33:00.5Z").unwrap();
        assert_eq!(
            inclusive_end_second(odd).to_rfc3339(),
            "2024-03-15T13:33:00Z"
        );
        assert_eq!(inclusive_end_millis(end), 1_710_509_579_999);
    }
}
