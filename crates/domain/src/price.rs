//! `Price`: exact fixed-point with 9 decimal places (the DBN convention).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::DomainError;

/// Raw units per 1.0: prices are integers of 1e-9.
pub const PRICE_SCALE: i64 = 1_000_000_000;

/// A non-negative price as an `i64` count of 1e-9 units: exact, `Eq + Ord + Hash`.
///
/// Conversions from provider floats round to the nearest 1e-9 (never truncate: truncation
/// turns `0.3` into `299_999_999`). Zero is representable, so that validation can flag a
/// stored zero price; negative prices, NaN and infinities are rejected.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Price(i64);

impl Price {
    /// Zero.
    pub const ZERO: Self = Self(0);

    /// From raw 1e-9 units; rejects negative values.
    pub fn from_raw(raw: i64) -> Result<Self, DomainError> {
        if raw < 0 {
            return Err(DomainError::InvalidPrice {
                value: format!("raw {raw}"),
                reason: "a price cannot be negative",
            });
        }
        Ok(Self(raw))
    }

    /// From a float, rounding to the nearest 1e-9.
    pub fn from_f64(value: f64) -> Result<Self, DomainError> {
        let reject = |reason| DomainError::InvalidPrice {
            value: value.to_string(),
            reason,
        };
        if value.is_nan() {
            return Err(reject("a price cannot be NaN"));
        }
        if value.is_infinite() {
            return Err(reject("a price must be finite"));
        }
        if value < 0.0 {
            return Err(reject("a price cannot be negative"));
        }
        // Fast path for every real-world price: below 1e6 the product with 1e9 stays under
        // 2^53 with an error far below half a unit, so adding 0.5 and truncating rounds it
        // exactly (and avoids libm's `round`, which dominates bulk decoding).
        if value < 1e6 {
            #[allow(clippy::cast_possible_truncation)]
            return Ok(Self((value * 1e9 + 0.5) as i64));
        }
        // Split into whole and fractional parts so large prices keep their 1e-9 precision
        // as far as f64 allows, instead of multiplying the whole value by 1e9 first.
        let whole = value.trunc();
        #[allow(clippy::cast_precision_loss)]
        let max_whole = (i64::MAX / PRICE_SCALE) as f64;
        if whole >= max_whole {
            return Err(reject("a price must be below 9,223,372,036"));
        }
        #[allow(clippy::cast_possible_truncation)]
        let whole_units = (whole as i64) * PRICE_SCALE;
        #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
        let frac_units = ((value - whole) * PRICE_SCALE as f64).round() as i64;
        Ok(Self(whole_units + frac_units))
    }

    /// Raw 1e-9 units.
    pub const fn raw(self) -> i64 {
        self.0
    }

    /// As a float (may lose precision above ~9 million; fine for display and Parquet DOUBLE
    /// of real prices, whose round trip is exact after rounding back).
    #[allow(clippy::cast_precision_loss)]
    pub fn to_f64(self) -> f64 {
        let whole = self.0 / PRICE_SCALE;
        let frac = self.0 % PRICE_SCALE;
        whole as f64 + frac as f64 / PRICE_SCALE as f64
    }

    /// Whether the price is above zero.
    pub const fn is_positive(self) -> bool {
        self.0 > 0
    }
}

impl fmt::Display for Price {
    /// Shortest exact decimal: `185.64`, `0.000000001`, `12`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whole = self.0 / PRICE_SCALE;
        let frac = self.0 % PRICE_SCALE;
        if frac == 0 {
            return write!(f, "{whole}");
        }
        let digits = format!("{frac:09}");
        write!(f, "{whole}.{}", digits.trim_end_matches('0'))
    }
}

impl fmt::Debug for Price {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Price({self})")
    }
}

impl FromStr for Price {
    type Err = DomainError;

    /// Exact decimal parsing (`"185.64"`), up to 9 fractional digits.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let reject = |reason| DomainError::InvalidPrice {
            value: text.to_owned(),
            reason,
        };
        let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
        if whole.is_empty() && frac.is_empty() {
            return Err(reject("expected a decimal number such as 185.64"));
        }
        if text.starts_with('-') {
            return Err(reject("a price cannot be negative"));
        }
        let digits_only = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if !digits_only(whole) || !digits_only(frac) {
            return Err(reject("expected a decimal number such as 185.64"));
        }
        if frac.len() > 9 {
            return Err(reject("at most 9 decimal places"));
        }
        let whole_units = if whole.is_empty() {
            0
        } else {
            whole
                .parse::<i64>()
                .ok()
                .and_then(|w| w.checked_mul(PRICE_SCALE))
                .ok_or_else(|| reject("a price must be below 9,223,372,036"))?
        };
        let frac_units = if frac.is_empty() {
            0
        } else {
            // frac has at most 9 digits, so this fits and the padding scales it to 1e-9.
            format!("{frac:0<9}").parse::<i64>().unwrap_or(0)
        };
        whole_units
            .checked_add(frac_units)
            .map(Self)
            .ok_or_else(|| reject("a price must be below 9,223,372,036"))
    }
}

impl TryFrom<f64> for Price {
    type Error = DomainError;
    fn try_from(value: f64) -> Result<Self, Self::Error> {
        Self::from_f64(value)
    }
}

impl Serialize for Price {
    /// Serialized as the exact decimal string, so JSON never rounds a price.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Price {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Text(String),
            Number(f64),
        }
        match Repr::deserialize(deserializer)? {
            Repr::Text(t) => t.parse().map_err(serde::de::Error::custom),
            Repr::Number(n) => Self::from_f64(n).map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rejects_nan_infinite_negative_huge() {
        for (v, reason) in [
            (f64::NAN, "NaN"),
            (f64::INFINITY, "finite"),
            (f64::NEG_INFINITY, "finite"),
            (-0.01, "negative"),
            (1e12, "below"),
        ] {
            match Price::from_f64(v) {
                Err(DomainError::InvalidPrice { reason: r, .. }) => assert!(r.contains(reason)),
                other => panic!("{v} gave {other:?}"),
            }
        }
        assert!(Price::from_raw(-1).is_err());
        assert_eq!(Price::from_raw(5).unwrap().raw(), 5);
    }

    #[test]
    fn rounds_instead_of_truncating() {
        assert_eq!(Price::from_f64(0.3).unwrap().raw(), 300_000_000);
        assert_eq!(Price::from_f64(185.64).unwrap().raw(), 185_640_000_000);
        assert_eq!(Price::from_f64(1e-10).unwrap().raw(), 0);
        assert_eq!(Price::from_f64(6e-10).unwrap().raw(), 1);
    }

    #[test]
    fn display_and_parse_are_exact() {
        let p: Price = "185.64".parse().unwrap();
        assert_eq!(p.raw(), 185_640_000_000);
        assert_eq!(p.to_string(), "185.64");
        assert_eq!(format!("{p:?}"), "Price(185.64)");
        assert_eq!("12".parse::<Price>().unwrap().to_string(), "12");
        assert_eq!(".5".parse::<Price>().unwrap().to_string(), "0.5");
        assert_eq!("0.000000001".parse::<Price>().unwrap().raw(), 1);
        for bad in ["", ".", "-1", "1.2.3", "abc", "1.0000000001", "99999999999"] {
            assert!(bad.parse::<Price>().is_err(), "{bad:?}");
        }
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(json, "\"185.64\"");
        assert_eq!(serde_json::from_str::<Price>(&json).unwrap(), p);
        assert_eq!(serde_json::from_str::<Price>("185.64").unwrap(), p);
        assert!(serde_json::from_str::<Price>("-1.0").is_err());
        assert_eq!(Price::try_from(1.5).unwrap().to_string(), "1.5");
        assert!(p.is_positive() && !Price::ZERO.is_positive());
    }

    proptest! {
        // Any price on a 1e-9 grid below 100,000 survives f64 and back exactly: this is what makes
        // storing DOUBLE in Parquet safe for real equity prices.
        #[test]
        fn f64_round_trip_is_exact(raw in 0i64..100_000 * PRICE_SCALE) {
            let p = Price::from_raw(raw).unwrap();
            prop_assert_eq!(Price::from_f64(p.to_f64()).unwrap(), p);
        }

        #[test]
        fn fast_path_rounds_to_the_nearest_unit(x in 0.0f64..1e6) {
            let p = Price::from_f64(x).unwrap();
            // The exact distance to the chosen unit is at most half a unit (plus f64 noise).
            #[allow(clippy::cast_precision_loss)]
            let back = p.raw() as f64 / 1e9;
            prop_assert!((back - x).abs() <= 0.5e-9 + x * 2e-16, "{x} -> {p:?}");
        }

        #[test]
        fn text_round_trip_is_exact(raw in 0i64..i64::MAX) {
            let p = Price::from_raw(raw).unwrap();
            prop_assert_eq!(p.to_string().parse::<Price>().unwrap(), p);
        }
    }
}
