//! Which bars a request keeps: inside the request's half-open range and inside the
//! requested hours of an XNYS session (regular 09:30–16:00 ET, 13:00 on early closes;
//! extended 04:00–20:00 ET, 17:00 on early closes). Providers send pre- and post-market
//! bars whatever was asked, and bars on days the exchange was closed can occur.

use marketpipe_domain::calendar::ny_date;
use marketpipe_domain::{
    DateRange, DomainError, Session, SessionKind, TimeRange, Timeframe, Timestamp, TradingCalendar,
};
use marketpipe_ports::{BarRequest, ProviderError};

/// The filter of one request: its range and the session bounds of the dates it covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionFilter {
    range: TimeRange,
    /// `[start, end)` of the requested hours of each session in the range, in order.
    bounds: Vec<(Timestamp, Timestamp)>,
}

impl SessionFilter {
    /// The filter for `range` and `kind` on the XNYS calendar. Fails when the range reaches
    /// outside the calendar's years.
    pub fn new(range: TimeRange, kind: SessionKind) -> Result<Self, DomainError> {
        let bounds = if range.is_empty() {
            Vec::new()
        } else {
            let first = ny_date(range.start());
            let last = ny_date(range.end().saturating_add_nanos(-1));
            TradingCalendar::xnys()
                .sessions(DateRange::new(first, last)?)?
                .iter()
                .map(|s| s.bounds(kind))
                .collect()
        };
        Ok(Self { range, bounds })
    }

    /// Whether a bar starting at `ts` is kept.
    pub fn keeps(&self, ts: Timestamp) -> bool {
        if !self.range.contains(ts) {
            return false;
        }
        // The last session starting at or before ts is the only one that can hold it.
        let i = self.bounds.partition_point(|(start, _)| *start <= ts);
        i > 0 && ts < self.bounds[i - 1].1
    }

    /// The range.
    pub const fn range(&self) -> TimeRange {
        self.range
    }
}

/// Checks what every HTTP adapter requires of a request — 1-minute bars, 1 to
/// `max_symbols` symbols, a range inside the calendar's years — and returns its filter.
pub fn prepare_request(
    provider: &str,
    request: &BarRequest,
    max_symbols: usize,
) -> Result<SessionFilter, ProviderError> {
    if request.timeframe != Timeframe::M1 {
        return Err(ProviderError::Unsupported {
            provider: provider.to_owned(),
            what: format!(
                "timeframe {} (MarketPipe ingests 1m bars and aggregates the rest)",
                request.timeframe
            ),
        });
    }
    if request.symbols.is_empty() || request.symbols.len() > max_symbols {
        return Err(ProviderError::BadRequest {
            provider: provider.to_owned(),
            message: format!(
                "a request carries 1 to {max_symbols} symbols, not {}",
                request.symbols.len()
            ),
        });
    }
    SessionFilter::new(request.range, request.session).map_err(|e| ProviderError::BadRequest {
        provider: provider.to_owned(),
        message: e.to_string(),
    })
}

/// The last session that ended at least a day before `now`: a cheap, always-available
/// window for a connection test (free plans refuse the most recent data: Alpaca's SIP
/// within 15 minutes, Polygon's today before the close).
pub fn recent_session(now: Timestamp) -> Result<Session, DomainError> {
    let yesterday = ny_date(now).pred_opt().unwrap_or_else(|| ny_date(now));
    TradingCalendar::xnys().previous_session(yesterday)
}

#[cfg(test)]
mod tests {
    use super::*;
    use marketpipe_domain::calendar::ny_instant;
    use marketpipe_domain::time::NANOS_PER_MINUTE;

    fn ts(s: &str) -> Timestamp {
        Timestamp::parse_rfc3339(s).unwrap()
    }

    #[test]
    fn regular_extended_and_early_close() {
        // 2024-11-29 is the day after Thanksgiving: regular close 13:00, extended 17:00 ET.
        let range = TimeRange::new(ts("2024-11-25T00:00:00Z"), ts("2024-12-03T00:00:00Z")).unwrap();
        let regular = SessionFilter::new(range, SessionKind::Regular).unwrap();
        let extended = SessionFilter::new(range, SessionKind::Extended).unwrap();
        let d = |m, day, h, min| {
            ny_instant(
                chrono::NaiveDate::from_ymd_opt(2024, m, day).unwrap(),
                h,
                min,
            )
        };
        // A normal Monday.
        assert!(!regular.keeps(d(11, 25, 9, 29)));
        assert!(regular.keeps(d(11, 25, 9, 30)));
        assert!(regular.keeps(d(11, 25, 15, 59)));
        assert!(!regular.keeps(d(11, 25, 16, 0)));
        assert!(extended.keeps(d(11, 25, 4, 0)));
        assert!(extended.keeps(d(11, 25, 19, 59)));
        assert!(!extended.keeps(d(11, 25, 20, 0)));
        assert!(!extended.keeps(d(11, 25, 3, 59)));
        // Thanksgiving: closed.
        assert!(!extended.keeps(d(11, 28, 10, 0)));
        // Early close.
        assert!(regular.keeps(d(11, 29, 12, 59)));
        assert!(!regular.keeps(d(11, 29, 13, 0)));
        assert!(extended.keeps(d(11, 29, 16, 59)));
        assert!(!extended.keeps(d(11, 29, 17, 0)));
        // Weekend.
        assert!(!extended.keeps(d(11, 30, 10, 0)));
        // Outside the range.
        let narrow = TimeRange::new(d(11, 25, 10, 0), d(11, 25, 10, 2)).unwrap();
        let f = SessionFilter::new(narrow, SessionKind::Regular).unwrap();
        assert!(!f.keeps(d(11, 25, 9, 59)));
        assert!(f.keeps(d(11, 25, 10, 0)));
        assert!(f.keeps(Timestamp::from_nanos(d(11, 25, 10, 1).nanos())));
        assert!(!f.keeps(Timestamp::from_nanos(
            d(11, 25, 10, 0).nanos() + 2 * NANOS_PER_MINUTE
        )));
        let empty = TimeRange::new(d(11, 25, 10, 0), d(11, 25, 10, 0)).unwrap();
        assert!(
            !SessionFilter::new(empty, SessionKind::Regular)
                .unwrap()
                .keeps(d(11, 25, 10, 0))
        );
    }

    #[test]
    fn recent_session_is_a_past_session() {
        // Monday 2024-12-02 10:00 ET: the last session ended before Sunday is Friday 11-29.
        let s = recent_session(ts("2024-12-02T15:00:00Z")).unwrap();
        assert_eq!(
            s.date,
            chrono::NaiveDate::from_ymd_opt(2024, 11, 29).unwrap()
        );
        let far = TimeRange::new(ts("1990-01-01T00:00:00Z"), ts("1990-02-01T00:00:00Z")).unwrap();
        assert!(SessionFilter::new(far, SessionKind::Regular).is_err());
    }
}
