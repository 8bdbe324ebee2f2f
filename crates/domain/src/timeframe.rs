//! `Timeframe`: the bar widths MarketPipe stores and aggregates to.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::DomainError;
use crate::time::{NANOS_PER_HOUR, NANOS_PER_MINUTE};

/// A bar width. Intraday frames bucket by the clock; `D1` buckets by exchange session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Timeframe {
    /// One minute: what providers deliver and ingestion stores.
    M1,
    /// Five minutes.
    M5,
    /// Fifteen minutes.
    M15,
    /// Thirty minutes.
    M30,
    /// One hour.
    H1,
    /// Four hours, aligned to the New York clock (00:00, 04:00, … ET).
    H4,
    /// One exchange session (the New York date), not a UTC day.
    D1,
}

/// How a frame's partitions are cut in the lake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PartitionPeriod {
    /// `year=YYYY/month=MM` directories.
    Month,
    /// `year=YYYY` directories.
    Year,
}

impl Timeframe {
    /// Every timeframe, finest first.
    pub const ALL: [Self; 7] = [
        Self::M1,
        Self::M5,
        Self::M15,
        Self::M30,
        Self::H1,
        Self::H4,
        Self::D1,
    ];

    /// The frames `mp aggregate` builds when none are named.
    pub const DEFAULT_AGGREGATES: [Self; 4] = [Self::M5, Self::M15, Self::H1, Self::D1];

    /// The short name used in flags, the lake (`frame=5m`) and views (`bars_5m`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::M1 => "1m",
            Self::M5 => "5m",
            Self::M15 => "15m",
            Self::M30 => "30m",
            Self::H1 => "1h",
            Self::H4 => "4h",
            Self::D1 => "1d",
        }
    }

    /// Width in nanoseconds for intraday frames; `None` for `D1`, whose length varies
    /// (early closes, DST).
    pub const fn intraday_nanos(self) -> Option<i64> {
        match self {
            Self::M1 => Some(NANOS_PER_MINUTE),
            Self::M5 => Some(5 * NANOS_PER_MINUTE),
            Self::M15 => Some(15 * NANOS_PER_MINUTE),
            Self::M30 => Some(30 * NANOS_PER_MINUTE),
            Self::H1 => Some(NANOS_PER_HOUR),
            Self::H4 => Some(4 * NANOS_PER_HOUR),
            Self::D1 => None,
        }
    }

    /// Whether the frame is shorter than a session.
    pub const fn is_intraday(self) -> bool {
        !matches!(self, Self::D1)
    }

    /// How the lake partitions this frame: by month up to 30m, by year from 1h.
    pub const fn partition_period(self) -> PartitionPeriod {
        match self {
            Self::M1 | Self::M5 | Self::M15 | Self::M30 => PartitionPeriod::Month,
            Self::H1 | Self::H4 | Self::D1 => PartitionPeriod::Year,
        }
    }

    /// Parses a comma-separated list (`"5m,15m,1h,1d"`), deduplicated, in the given order.
    pub fn parse_list(text: &str) -> Result<Vec<Self>, DomainError> {
        let mut out = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let tf: Self = part.parse()?;
            if !out.contains(&tf) {
                out.push(tf);
            }
        }
        if out.is_empty() {
            return Err(DomainError::InvalidTimeframe {
                value: text.to_owned(),
            });
        }
        Ok(out)
    }
}

impl fmt::Display for Timeframe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Timeframe {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        Self::ALL
            .into_iter()
            .find(|tf| tf.as_str() == lower)
            .or(match lower.as_str() {
                "1min" => Some(Self::M1),
                "5min" => Some(Self::M5),
                "15min" => Some(Self::M15),
                "30min" => Some(Self::M30),
                "60m" => Some(Self::H1),
                "1day" | "d" => Some(Self::D1),
                _ => None,
            })
            .ok_or_else(|| DomainError::InvalidTimeframe {
                value: s.to_owned(),
            })
    }
}

impl Serialize for Timeframe {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Timeframe {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_display_round_trip() {
        for tf in Timeframe::ALL {
            assert_eq!(tf.as_str().parse::<Timeframe>().unwrap(), tf);
            assert_eq!(tf.to_string(), tf.as_str());
            let json = serde_json::to_string(&tf).unwrap();
            assert_eq!(serde_json::from_str::<Timeframe>(&json).unwrap(), tf);
        }
        assert_eq!("5MIN".parse::<Timeframe>().unwrap(), Timeframe::M5);
        assert_eq!("60m".parse::<Timeframe>().unwrap(), Timeframe::H1);
        let err = "7m".parse::<Timeframe>().unwrap_err();
        assert!(err.to_string().contains("\"7m\""));
        assert!(serde_json::from_str::<Timeframe>("\"2h\"").is_err());
    }

    #[test]
    fn lists_and_properties() {
        assert_eq!(
            Timeframe::parse_list("5m, 15m,5m,1d").unwrap(),
            [Timeframe::M5, Timeframe::M15, Timeframe::D1]
        );
        assert!(Timeframe::parse_list(" , ").is_err());
        assert!(Timeframe::parse_list("5m,2h").is_err());
        assert_eq!(Timeframe::H4.intraday_nanos(), Some(4 * NANOS_PER_HOUR));
        assert_eq!(Timeframe::D1.intraday_nanos(), None);
        assert!(Timeframe::M30.is_intraday() && !Timeframe::D1.is_intraday());
        assert_eq!(Timeframe::M15.partition_period(), PartitionPeriod::Month);
        assert_eq!(Timeframe::H1.partition_period(), PartitionPeriod::Year);
    }
}
