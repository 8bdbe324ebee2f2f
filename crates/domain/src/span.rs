//! Spans of time typed by operators: `30d`, `6w`, `18m`, `5y` (`--lookback`, `--older-than`).

use std::fmt;
use std::str::FromStr;

use chrono::{Days, Months, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::calendar::TradingCalendar;
use crate::error::DomainError;

/// The unit of a [`Span`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SpanUnit {
    /// `d`: days (sessions, for a lookback).
    Days,
    /// `w`: weeks of seven days.
    Weeks,
    /// `m`: calendar months.
    Months,
    /// `y`: calendar years.
    Years,
}

impl SpanUnit {
    const fn suffix(self) -> char {
        match self {
            Self::Days => 'd',
            Self::Weeks => 'w',
            Self::Months => 'm',
            Self::Years => 'y',
        }
    }
}

/// A count of days, weeks, months or years.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Span {
    /// How many units (at least 1).
    pub count: u32,
    /// Which unit.
    pub unit: SpanUnit,
}

impl Span {
    /// The first date still inside the span that ends on `today`: `today` minus the span
    /// (a retention cut: rows before it are old). Months and years clamp to the month's end
    /// (2024-03-31 minus 1m is 2024-02-29).
    pub fn cut_before(self, today: NaiveDate) -> Result<NaiveDate, DomainError> {
        let out_of_range = || DomainError::InvalidDuration {
            value: self.to_string(),
            reason: "reaches before the first representable date",
        };
        match self.unit {
            SpanUnit::Days => today.checked_sub_days(Days::new(u64::from(self.count))),
            SpanUnit::Weeks => today.checked_sub_days(Days::new(7 * u64::from(self.count))),
            SpanUnit::Months => today.checked_sub_months(Months::new(self.count)),
            SpanUnit::Years => self
                .count
                .checked_mul(12)
                .and_then(|m| today.checked_sub_months(Months::new(m))),
        }
        .ok_or_else(out_of_range)
    }

    /// The first date of a lookback that ends on `today`: `Nd` counts N sessions back (today
    /// included when it is one), `w`, `m` and `y` count calendar time ([`Self::cut_before`]
    /// plus one day).
    pub fn lookback_start(
        self,
        today: NaiveDate,
        calendar: &TradingCalendar,
    ) -> Result<NaiveDate, DomainError> {
        if self.unit != SpanUnit::Days {
            let cut = self.cut_before(today)?;
            return Ok(cut.succ_opt().unwrap_or(cut));
        }
        let mut date = if calendar.is_session(today)? {
            today
        } else {
            calendar.previous_session(today)?.date
        };
        for _ in 1..self.count {
            date = calendar.previous_session(date)?.date;
        }
        Ok(date)
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.count, self.unit.suffix())
    }
}

impl FromStr for Span {
    type Err = DomainError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = |reason| DomainError::InvalidDuration {
            value: text.to_owned(),
            reason,
        };
        let trimmed = text.trim();
        let Some(last) = trimmed.chars().last() else {
            return Err(bad("it is empty"));
        };
        let unit = match last.to_ascii_lowercase() {
            'd' => SpanUnit::Days,
            'w' => SpanUnit::Weeks,
            'm' => SpanUnit::Months,
            'y' => SpanUnit::Years,
            _ => return Err(bad("the unit must be d, w, m or y")),
        };
        let digits = &trimmed[..trimmed.len() - last.len_utf8()];
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("the count must be a whole number before the unit"));
        }
        let count: u32 = digits.parse().map_err(|_| bad("the count is too large"))?;
        if count == 0 {
            return Err(bad("the count must be at least 1"));
        }
        Ok(Self { count, unit })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(text: &str) -> NaiveDate {
        crate::time::parse_date(text).unwrap()
    }

    #[test]
    fn spans_parse_print_and_name_bad_values() {
        for text in ["30d", "6w", "18m", "5y"] {
            assert_eq!(text.parse::<Span>().unwrap().to_string(), text);
        }
        assert_eq!("5Y".parse::<Span>().unwrap().unit, SpanUnit::Years);
        for bad in ["", "d", "0d", "5", "5h", "-3d", "1.5y", "99999999999d"] {
            let err = bad.parse::<Span>().unwrap_err().to_string();
            assert!(err.contains(&format!("{bad:?}")), "{err}");
        }
    }

    #[test]
    fn cuts_count_calendar_time_and_clamp_month_ends() {
        let today = d("2024-03-31");
        assert_eq!(
            "1m".parse::<Span>().unwrap().cut_before(today).unwrap(),
            d("2024-02-29")
        );
        assert_eq!(
            "1y".parse::<Span>().unwrap().cut_before(today).unwrap(),
            d("2023-03-31")
        );
        assert_eq!(
            "2w".parse::<Span>().unwrap().cut_before(today).unwrap(),
            d("2024-03-17")
        );
        assert_eq!(
            "18m".parse::<Span>().unwrap().cut_before(today).unwrap(),
            d("2022-09-30")
        );
    }

    #[test]
    fn a_lookback_in_days_counts_sessions() {
        let cal = TradingCalendar::xnys();
        // Friday 2024-03-08 back 5 sessions: Mon 03-04 .. Fri 03-08.
        let five: Span = "5d".parse().unwrap();
        assert_eq!(
            five.lookback_start(d("2024-03-08"), &cal).unwrap(),
            d("2024-03-04")
        );
        // From Sunday 03-10 the same five sessions.
        assert_eq!(
            five.lookback_start(d("2024-03-10"), &cal).unwrap(),
            d("2024-03-04")
        );
        // Across Good Friday 2024-03-29: Mon 04-01 back 3 sessions is Wed 03-27.
        let three: Span = "3d".parse().unwrap();
        assert_eq!(
            three.lookback_start(d("2024-04-01"), &cal).unwrap(),
            d("2024-03-27")
        );
        let one: Span = "1d".parse().unwrap();
        assert_eq!(
            one.lookback_start(d("2024-03-08"), &cal).unwrap(),
            d("2024-03-08")
        );
        let week: Span = "1w".parse().unwrap();
        assert_eq!(
            week.lookback_start(d("2024-03-08"), &cal).unwrap(),
            d("2024-03-02")
        );
    }
}
