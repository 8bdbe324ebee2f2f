//! Time values: `Timestamp` (UTC nanoseconds), `TimeRange` (half-open) and `DateRange`
//! (inclusive exchange-local dates, as users type them).

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::error::DomainError;

/// Nanoseconds in one second.
pub const NANOS_PER_SECOND: i64 = 1_000_000_000;
/// Nanoseconds in one minute.
pub const NANOS_PER_MINUTE: i64 = 60 * NANOS_PER_SECOND;
/// Nanoseconds in one hour.
pub const NANOS_PER_HOUR: i64 = 60 * NANOS_PER_MINUTE;
/// Nanoseconds in one (24-hour) day.
pub const NANOS_PER_DAY: i64 = 24 * NANOS_PER_HOUR;

/// An instant: signed nanoseconds since the Unix epoch, UTC. A bar's `ts` is the *start* of
/// its interval. Signed because Arrow's `TIMESTAMP` is signed.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The Unix epoch.
    pub const EPOCH: Self = Self(0);

    /// From nanoseconds since the epoch.
    pub const fn from_nanos(nanos: i64) -> Self {
        Self(nanos)
    }

    /// Nanoseconds since the epoch.
    pub const fn nanos(self) -> i64 {
        self.0
    }

    /// From whole seconds since the epoch; `None` when out of range.
    pub const fn from_secs(secs: i64) -> Option<Self> {
        match secs.checked_mul(NANOS_PER_SECOND) {
            Some(n) => Some(Self(n)),
            None => None,
        }
    }

    /// From milliseconds since the epoch; `None` when out of range.
    pub const fn from_millis(millis: i64) -> Option<Self> {
        match millis.checked_mul(1_000_000) {
            Some(n) => Some(Self(n)),
            None => None,
        }
    }

    /// From a chrono UTC date-time; fails outside 1677–2262.
    pub fn from_datetime(dt: DateTime<Utc>) -> Result<Self, DomainError> {
        dt.timestamp_nanos_opt()
            .map(Self)
            .ok_or_else(|| DomainError::InvalidTimestamp {
                value: dt.to_rfc3339(),
                reason: "outside the representable years 1677-2262",
            })
    }

    /// As a chrono UTC date-time.
    pub fn to_datetime(self) -> DateTime<Utc> {
        DateTime::from_timestamp_nanos(self.0)
    }

    /// Parses RFC 3339 (`2024-01-02T14:30:00Z`, any offset).
    pub fn parse_rfc3339(text: &str) -> Result<Self, DomainError> {
        let dt = DateTime::parse_from_rfc3339(text).map_err(|_| DomainError::InvalidTimestamp {
            value: text.to_owned(),
            reason: "expected RFC 3339, e.g. 2024-01-02T14:30:00Z",
        })?;
        Self::from_datetime(dt.with_timezone(&Utc))
    }

    /// RFC 3339 in UTC with as many fractional digits as needed (`2024-01-02T14:30:00Z`).
    pub fn to_rfc3339(self) -> String {
        self.to_datetime()
            .to_rfc3339_opts(SecondsFormat::AutoSi, true)
    }

    /// Rounds down to a multiple of `width_nanos` since the epoch (clock alignment).
    /// `width_nanos` must be positive; a non-positive width returns `self`.
    #[must_use]
    pub const fn floor_to(self, width_nanos: i64) -> Self {
        if width_nanos <= 0 {
            return self;
        }
        Self(self.0.div_euclid(width_nanos) * width_nanos)
    }

    /// `self + nanos`, saturating at the representable bounds.
    #[must_use]
    pub const fn saturating_add_nanos(self, nanos: i64) -> Self {
        Self(self.0.saturating_add(nanos))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({})", self.to_rfc3339())
    }
}

/// A half-open interval of instants, `[start, end)`. An empty range (`start == end`) is
/// allowed; a reversed one is not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TimeRange {
    start: Timestamp,
    end: Timestamp,
}

impl TimeRange {
    /// `[start, end)`; rejects `start > end`.
    pub fn new(start: Timestamp, end: Timestamp) -> Result<Self, DomainError> {
        if start > end {
            return Err(DomainError::InvalidRange {
                start: start.to_rfc3339(),
                end: end.to_rfc3339(),
            });
        }
        Ok(Self { start, end })
    }

    /// First instant inside the range.
    pub const fn start(&self) -> Timestamp {
        self.start
    }

    /// First instant after the range.
    pub const fn end(&self) -> Timestamp {
        self.end
    }

    /// Whether `ts` lies inside.
    pub fn contains(&self, ts: Timestamp) -> bool {
        self.start <= ts && ts < self.end
    }

    /// Whether the range holds no instant.
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// The overlap of two ranges, if any.
    pub fn intersect(&self, other: &Self) -> Option<Self> {
        let start = self.start.max(other.start);
        let end = self.end.min(other.end);
        (start < end).then_some(Self { start, end })
    }
}

/// An inclusive range of calendar dates, as users give them (`--start 2024-01-02 --end
/// 2024-06-28`). The dates are exchange-local (New York for XNYS).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DateRange {
    start: NaiveDate,
    end: NaiveDate,
}

impl DateRange {
    /// `[start, end]`; rejects `start > end`.
    pub fn new(start: NaiveDate, end: NaiveDate) -> Result<Self, DomainError> {
        if start > end {
            return Err(DomainError::InvalidRange {
                start: start.to_string(),
                end: end.to_string(),
            });
        }
        Ok(Self { start, end })
    }

    /// Parses two `YYYY-MM-DD` strings.
    pub fn parse(start: &str, end: &str) -> Result<Self, DomainError> {
        Self::new(parse_date(start)?, parse_date(end)?)
    }

    /// First date.
    pub const fn start(&self) -> NaiveDate {
        self.start
    }

    /// Last date (inclusive).
    pub const fn end(&self) -> NaiveDate {
        self.end
    }

    /// Whether `date` lies inside.
    pub fn contains(&self, date: NaiveDate) -> bool {
        self.start <= date && date <= self.end
    }

    /// Every date in the range, in order.
    pub fn days(&self) -> impl Iterator<Item = NaiveDate> + use<> {
        let end = self.end;
        self.start.iter_days().take_while(move |d| *d <= end)
    }

    /// The range cut into calendar months, each clipped to the range: the ingestion work
    /// items of one symbol.
    pub fn months(&self) -> Vec<Self> {
        let mut out = Vec::new();
        let mut start = self.start;
        while start <= self.end {
            let month_end = last_day_of_month(start);
            let end = month_end.min(self.end);
            out.push(Self { start, end });
            match end.succ_opt() {
                Some(next) => start = next,
                None => break,
            }
        }
        out
    }
}

impl fmt::Display for DateRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..={}", self.start, self.end)
    }
}

/// Parses `YYYY-MM-DD`, naming the value in the error.
pub fn parse_date(text: &str) -> Result<NaiveDate, DomainError> {
    NaiveDate::from_str(text.trim()).map_err(|_| DomainError::InvalidDate {
        value: text.to_owned(),
    })
}

/// The last day of `date`'s month.
pub fn last_day_of_month(date: NaiveDate) -> NaiveDate {
    use chrono::Datelike;
    let (y, m) = if date.month() == 12 {
        (date.year() + 1, 1)
    } else {
        (date.year(), date.month() + 1)
    };
    NaiveDate::from_ymd_opt(y, m, 1)
        .and_then(|d| d.pred_opt())
        .unwrap_or(date)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        parse_date(s).unwrap()
    }

    #[test]
    fn timestamp_round_trips_rfc3339() {
        let ts = Timestamp::parse_rfc3339("2024-01-02T14:30:00Z").unwrap();
        assert_eq!(ts.nanos(), 1_704_205_800 * NANOS_PER_SECOND);
        assert_eq!(ts.to_string(), "2024-01-02T14:30:00Z");
        let with_offset = Timestamp::parse_rfc3339("2024-01-02T09:30:00-05:00").unwrap();
        assert_eq!(with_offset, ts);
        assert_eq!(format!("{ts:?}"), "Timestamp(2024-01-02T14:30:00Z)");
        assert!(Timestamp::parse_rfc3339("yesterday").is_err());
        assert_eq!(Timestamp::from_secs(1).unwrap().nanos(), NANOS_PER_SECOND);
        assert_eq!(Timestamp::from_millis(1).unwrap().nanos(), 1_000_000);
        assert!(Timestamp::from_secs(i64::MAX).is_none());
        assert!(Timestamp::from_millis(i64::MAX).is_none());
    }

    #[test]
    fn floor_handles_negative_and_bad_width() {
        assert_eq!(Timestamp::from_nanos(-1).floor_to(10).nanos(), -10);
        assert_eq!(Timestamp::from_nanos(19).floor_to(10).nanos(), 10);
        assert_eq!(Timestamp::from_nanos(19).floor_to(0).nanos(), 19);
        assert_eq!(
            Timestamp::from_nanos(i64::MAX)
                .saturating_add_nanos(1)
                .nanos(),
            i64::MAX
        );
    }

    #[test]
    fn time_range_rejects_reversed() {
        let a = Timestamp::from_nanos(10);
        let b = Timestamp::from_nanos(20);
        let r = TimeRange::new(a, b).unwrap();
        assert!(r.contains(a) && !r.contains(b));
        assert!(!r.is_empty());
        assert!(TimeRange::new(a, a).unwrap().is_empty());
        let err = TimeRange::new(b, a).unwrap_err();
        assert!(matches!(err, DomainError::InvalidRange { .. }));
        assert!(err.to_string().contains("is after end"));
        let other = TimeRange::new(Timestamp::from_nanos(15), Timestamp::from_nanos(30)).unwrap();
        assert_eq!(r.intersect(&other).unwrap().start().nanos(), 15);
        let disjoint = TimeRange::new(b, Timestamp::from_nanos(30)).unwrap();
        assert!(r.intersect(&disjoint).is_none());
    }

    #[test]
    fn date_range_rejects_reversed_and_bad_text() {
        let err = DateRange::parse("2024-02-01", "2024-01-01").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid range: start 2024-02-01 is after end 2024-01-01"
        );
        let err = DateRange::parse("2024-13-01", "2024-01-01").unwrap_err();
        assert!(err.to_string().contains("2024-13-01"));
    }

    #[test]
    fn months_split_and_clip() {
        let r = DateRange::parse("2024-01-15", "2024-03-02").unwrap();
        let months: Vec<String> = r.months().iter().map(ToString::to_string).collect();
        assert_eq!(
            months,
            [
                "2024-01-15..=2024-01-31",
                "2024-02-01..=2024-02-29",
                "2024-03-01..=2024-03-02"
            ]
        );
        assert_eq!(r.days().count(), 48);
        assert!(r.contains(d("2024-02-29")) && !r.contains(d("2024-03-03")));
        let dec = DateRange::parse("2024-12-30", "2025-01-01").unwrap();
        assert_eq!(dec.months().len(), 2);
    }
}
