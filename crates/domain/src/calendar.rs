//! `TradingCalendar`: the XNYS (NYSE) sessions, holidays and early closes, and the New York
//! clock they are defined in.
//!
//! The calendar is rule-based: weekends; New Year's Day (a Saturday New Year is *not* observed
//! on the Friday before, per NYSE Rule 7.2); Martin Luther King Jr. Day (third Monday of
//! January, from 1998); Washington's Birthday (third Monday of February); Good Friday; Memorial
//! Day (last Monday of May); Juneteenth (June 19, from 2022); Independence Day; Labor Day (first
//! Monday of September); Thanksgiving (fourth Thursday of November); Christmas. Fixed-date
//! holidays falling on a Saturday are observed on the Friday before, on a Sunday the Monday
//! after. Special closures are listed in [`SPECIAL_CLOSURES`].
//!
//! Early closes (13:00 ET): July 3 when it is a Monday, Tuesday or Thursday, or a Wednesday
//! from 2013; July 5 when it is a Friday, 1996–2012 (the exchange then shortened the day after
//! the holiday instead); the day after Thanksgiving; December 24 from Monday to Thursday; and
//! the one-off dates in [`SPECIAL_EARLY_CLOSES`].

use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, TimeZone, Timelike, Utc, Weekday};
use chrono_tz::America::New_York;
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::error::DomainError;
use crate::time::{DateRange, NANOS_PER_MINUTE, Timestamp};

/// First year the calendar answers for.
pub const FIRST_YEAR: i32 = 2000;
/// Last year the calendar answers for. Later years follow the same rules; special closures
/// are added as the exchange announces them.
pub const LAST_YEAR: i32 = 2099;

/// Unscheduled full-day closures of the exchange, with the reason.
pub const SPECIAL_CLOSURES: [(i32, u32, u32, &str); 10] = [
    (2001, 9, 11, "September 11 attacks"),
    (2001, 9, 12, "September 11 attacks"),
    (2001, 9, 13, "September 11 attacks"),
    (2001, 9, 14, "September 11 attacks"),
    (2004, 6, 11, "National Day of Mourning for Ronald Reagan"),
    (2007, 1, 2, "National Day of Mourning for Gerald Ford"),
    (2012, 10, 29, "Hurricane Sandy"),
    (2012, 10, 30, "Hurricane Sandy"),
    (
        2018,
        12,
        5,
        "National Day of Mourning for George H. W. Bush",
    ),
    (2025, 1, 9, "National Day of Mourning for Jimmy Carter"),
];

/// Unscheduled early closes (13:00 ET) that no rule produces, with the reason.
pub const SPECIAL_EARLY_CLOSES: [(i32, u32, u32, &str); 1] =
    [(2003, 12, 26, "Friday after Christmas")];

/// Which hours of a session a request or rule is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionKind {
    /// 09:30–16:00 ET (13:00 on early-close days).
    #[default]
    Regular,
    /// 04:00–20:00 ET (17:00 on early-close days).
    Extended,
}

impl SessionKind {
    /// `"regular"` or `"extended"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Regular => "regular",
            Self::Extended => "extended",
        }
    }
}

/// One trading day of the exchange, with its hours as UTC instants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Session {
    /// The session date, in New York.
    pub date: NaiveDate,
    /// Regular open (09:30 ET).
    pub open: Timestamp,
    /// Regular close (16:00 ET, or 13:00 ET on an early close).
    pub close: Timestamp,
    /// Pre-market start (04:00 ET).
    pub extended_open: Timestamp,
    /// After-hours end (20:00 ET, or 17:00 ET on an early close).
    pub extended_close: Timestamp,
    /// Whether the regular session ends at 13:00 ET.
    pub early_close: bool,
}

impl Session {
    /// `[start, end)` of the requested hours.
    pub const fn bounds(&self, kind: SessionKind) -> (Timestamp, Timestamp) {
        match kind {
            SessionKind::Regular => (self.open, self.close),
            SessionKind::Extended => (self.extended_open, self.extended_close),
        }
    }

    /// Whether the one-minute bar starting at `ts` lies inside the requested hours.
    pub fn contains_minute(&self, ts: Timestamp, kind: SessionKind) -> bool {
        let (start, end) = self.bounds(kind);
        start <= ts && ts < end
    }

    /// The number of one-minute bars a complete session has.
    pub fn minutes(&self, kind: SessionKind) -> u32 {
        let (start, end) = self.bounds(kind);
        u32::try_from((end.nanos() - start.nanos()) / NANOS_PER_MINUTE).unwrap_or(0)
    }
}

/// Why a date is or is not a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "name", rename_all = "snake_case")]
pub enum DayStatus {
    /// A full session.
    Open,
    /// A session that closes at 13:00 ET.
    EarlyClose,
    /// Saturday or Sunday.
    Weekend,
    /// A scheduled holiday (the name).
    Holiday(&'static str),
    /// An unscheduled closure (the reason).
    SpecialClosure(&'static str),
}

/// The XNYS trading calendar. Stateless and cheap to copy: every answer is computed from
/// the rules in this module's documentation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TradingCalendar;

impl TradingCalendar {
    /// The New York Stock Exchange calendar.
    pub const fn xnys() -> Self {
        Self
    }

    /// Exchange code.
    pub const fn code(&self) -> &'static str {
        "XNYS"
    }

    /// The exchange's time zone.
    pub const fn timezone(&self) -> Tz {
        New_York
    }

    fn check_year(date: NaiveDate) -> Result<(), DomainError> {
        if (FIRST_YEAR..=LAST_YEAR).contains(&date.year()) {
            Ok(())
        } else {
            Err(DomainError::CalendarOutOfRange {
                date,
                first: FIRST_YEAR,
                last: LAST_YEAR,
            })
        }
    }

    /// What kind of day `date` is at the exchange.
    pub fn day_status(&self, date: NaiveDate) -> Result<DayStatus, DomainError> {
        Self::check_year(date)?;
        if matches!(date.weekday(), Weekday::Sat | Weekday::Sun) {
            return Ok(DayStatus::Weekend);
        }
        if let Some(reason) = special_closure(date) {
            return Ok(DayStatus::SpecialClosure(reason));
        }
        if let Some(name) = holiday_name(date) {
            return Ok(DayStatus::Holiday(name));
        }
        if is_early_close(date) {
            return Ok(DayStatus::EarlyClose);
        }
        Ok(DayStatus::Open)
    }

    /// Whether the exchange trades on `date`.
    pub fn is_session(&self, date: NaiveDate) -> Result<bool, DomainError> {
        Ok(matches!(
            self.day_status(date)?,
            DayStatus::Open | DayStatus::EarlyClose
        ))
    }

    /// The session on `date`, or `None` when the exchange is closed.
    pub fn session(&self, date: NaiveDate) -> Result<Option<Session>, DomainError> {
        let early_close = match self.day_status(date)? {
            DayStatus::Open => false,
            DayStatus::EarlyClose => true,
            _ => return Ok(None),
        };
        let (close_h, ext_close_h) = if early_close { (13, 17) } else { (16, 20) };
        Ok(Some(Session {
            date,
            open: ny_instant(date, 9, 30),
            close: ny_instant(date, close_h, 0),
            extended_open: ny_instant(date, 4, 0),
            extended_close: ny_instant(date, ext_close_h, 0),
            early_close,
        }))
    }

    /// Every session in `range`, in order.
    pub fn sessions(&self, range: DateRange) -> Result<Vec<Session>, DomainError> {
        Self::check_year(range.start())?;
        Self::check_year(range.end())?;
        let mut out = Vec::new();
        for date in range.days() {
            if let Some(s) = self.session(date)? {
                out.push(s);
            }
        }
        Ok(out)
    }

    /// The first session strictly after `date`.
    pub fn next_session(&self, date: NaiveDate) -> Result<Session, DomainError> {
        let mut d = date;
        loop {
            d = d.succ_opt().ok_or(DomainError::CalendarOutOfRange {
                date,
                first: FIRST_YEAR,
                last: LAST_YEAR,
            })?;
            if let Some(s) = self.session(d)? {
                return Ok(s);
            }
        }
    }

    /// The last session strictly before `date`.
    pub fn previous_session(&self, date: NaiveDate) -> Result<Session, DomainError> {
        let mut d = date;
        loop {
            d = d.pred_opt().ok_or(DomainError::CalendarOutOfRange {
                date,
                first: FIRST_YEAR,
                last: LAST_YEAR,
            })?;
            if let Some(s) = self.session(d)? {
                return Ok(s);
            }
        }
    }

    /// The UTC instant range `[start, end)` covering the New York dates of `range`: from
    /// 00:00 ET on the first date to 00:00 ET after the last.
    pub fn utc_bounds(&self, range: DateRange) -> (Timestamp, Timestamp) {
        let end = range.end().succ_opt().unwrap_or(range.end());
        (ny_instant(range.start(), 0, 0), ny_instant(end, 0, 0))
    }
}

/// The New York date of an instant: the session date a bar belongs to.
pub fn ny_date(ts: Timestamp) -> NaiveDate {
    ts.to_datetime().with_timezone(&New_York).date_naive()
}

/// The UTC offset of New York at `ts`, in nanoseconds (−5 h or −4 h).
pub fn ny_offset_nanos(ts: Timestamp) -> i64 {
    use chrono::Offset;
    let local = ts.to_datetime().with_timezone(&New_York);
    i64::from(local.offset().fix().local_minus_utc()) * 1_000_000_000
}

/// The instant of `hour:minute` New York time on `date`. Exchange hours never fall in a DST
/// gap or overlap (those are at 02:00), so the mapping is unique; midnight is also unique in
/// New York.
pub fn ny_instant(date: NaiveDate, hour: u32, minute: u32) -> Timestamp {
    let time = NaiveTime::from_hms_opt(hour, minute, 0).unwrap_or(NaiveTime::MIN);
    let local = date.and_time(time);
    let utc: DateTime<Utc> = New_York
        .from_local_datetime(&local)
        .earliest()
        .map_or_else(|| local.and_utc(), |dt| dt.with_timezone(&Utc));
    // Dates of the supported years are far inside Timestamp's 1677–2262 range.
    Timestamp::from_nanos(utc.timestamp_nanos_opt().unwrap_or(0))
}

/// `HH:MM` New York time of an instant (for display).
pub fn ny_time_hhmm(ts: Timestamp) -> String {
    let local = ts.to_datetime().with_timezone(&New_York);
    format!("{:02}:{:02}", local.hour(), local.minute())
}

fn special_closure(date: NaiveDate) -> Option<&'static str> {
    SPECIAL_CLOSURES
        .iter()
        .find(|(y, m, d, _)| date.year() == *y && date.month() == *m && date.day() == *d)
        .map(|(.., reason)| *reason)
}

/// The date on which a fixed-date holiday is observed: Saturday -> Friday, Sunday -> Monday.
fn observed(year: i32, month: u32, day: u32) -> Option<NaiveDate> {
    let d = NaiveDate::from_ymd_opt(year, month, day)?;
    match d.weekday() {
        Weekday::Sat => d.pred_opt(),
        Weekday::Sun => d.succ_opt(),
        _ => Some(d),
    }
}

/// Easter Sunday (Gregorian), by the anonymous Gregorian algorithm (Meeus/Jones/Butcher).
#[allow(clippy::many_single_char_names)] // the algorithm's published variable names
pub fn easter_sunday(year: i32) -> Option<NaiveDate> {
    let a = year % 19;
    let b = year / 100;
    let c = year % 100;
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15) % 30;
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k) % 7;
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    NaiveDate::from_ymd_opt(year, u32::try_from(month).ok()?, u32::try_from(day).ok()?)
}

/// The name of the scheduled holiday on `date` (a weekday), if any.
fn holiday_name(date: NaiveDate) -> Option<&'static str> {
    let (y, m, d, wd) = (date.year(), date.month(), date.day(), date.weekday());
    let is_monday = wd == Weekday::Mon;
    // New Year's Day: Jan 1 on a weekday, or Monday Jan 2 when Jan 1 is a Sunday. A Saturday
    // New Year is not observed on Friday Dec 31 (NYSE Rule 7.2).
    if (m == 1 && d == 1) || (m == 1 && d == 2 && is_monday) {
        return Some("New Year's Day");
    }
    if y >= 1998 && m == 1 && is_monday && (15..=21).contains(&d) {
        return Some("Martin Luther King Jr. Day");
    }
    if m == 2 && is_monday && (15..=21).contains(&d) {
        return Some("Washington's Birthday");
    }
    if easter_sunday(y).and_then(|e| e.checked_sub_days(chrono::Days::new(2))) == Some(date) {
        return Some("Good Friday");
    }
    if m == 5 && is_monday && d >= 25 {
        return Some("Memorial Day");
    }
    if y >= 2022 && observed(y, 6, 19) == Some(date) {
        return Some("Juneteenth National Independence Day");
    }
    if observed(y, 7, 4) == Some(date) {
        return Some("Independence Day");
    }
    if m == 9 && is_monday && d <= 7 {
        return Some("Labor Day");
    }
    if m == 11 && wd == Weekday::Thu && (22..=28).contains(&d) {
        return Some("Thanksgiving Day");
    }
    if observed(y, 12, 25) == Some(date) {
        return Some("Christmas Day");
    }
    None
}

/// Whether `date` (a session) closes at 13:00 ET.
fn is_early_close(date: NaiveDate) -> bool {
    let (y, m, d, wd) = (date.year(), date.month(), date.day(), date.weekday());
    if SPECIAL_EARLY_CLOSES
        .iter()
        .any(|(sy, sm, sd, _)| (*sy, *sm, *sd) == (y, m, d))
    {
        return true;
    }
    match (m, d) {
        (7, 3) => {
            matches!(wd, Weekday::Mon | Weekday::Tue | Weekday::Thu)
                || (wd == Weekday::Wed && y >= 2013)
        }
        (7, 5) => wd == Weekday::Fri && (1996..=2012).contains(&y),
        (11, 23..=29) => wd == Weekday::Fri,
        (12, 24) => matches!(
            wd,
            Weekday::Mon | Weekday::Tue | Weekday::Wed | Weekday::Thu
        ),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::parse_date;

    fn d(s: &str) -> NaiveDate {
        parse_date(s).unwrap()
    }

    fn cal() -> TradingCalendar {
        TradingCalendar::xnys()
    }

    #[test]
    fn year_2024_has_252_sessions_and_three_early_closes() {
        let sessions = cal()
            .sessions(DateRange::parse("2024-01-01", "2024-12-31").unwrap())
            .unwrap();
        assert_eq!(sessions.len(), 252);
        let early: Vec<String> = sessions
            .iter()
            .filter(|s| s.early_close)
            .map(|s| s.date.to_string())
            .collect();
        assert_eq!(early, ["2024-07-03", "2024-11-29", "2024-12-24"]);
        assert!(!sessions.iter().any(|s| s.date == d("2024-03-29")));
    }

    #[test]
    fn session_counts_per_year_match_the_exchange() {
        // Published NYSE session counts.
        for (year, expected) in [
            (2000, 252),
            (2001, 248),
            (2004, 252),
            (2007, 251),
            (2012, 250),
            (2018, 251),
            (2022, 251),
            (2023, 250),
            (2025, 250),
            (2026, 251),
        ] {
            let range = DateRange::new(
                NaiveDate::from_ymd_opt(year, 1, 1).unwrap(),
                NaiveDate::from_ymd_opt(year, 12, 31).unwrap(),
            )
            .unwrap();
            assert_eq!(cal().sessions(range).unwrap().len(), expected, "{year}");
        }
    }

    #[test]
    fn observed_day_shifts() {
        let c = cal();
        // New Year's on Saturday (2022-01-01): Friday 2021-12-31 trades.
        assert!(c.is_session(d("2021-12-31")).unwrap());
        // New Year's on Sunday (2023-01-01): observed Monday 2023-01-02.
        assert_eq!(
            c.day_status(d("2023-01-02")).unwrap(),
            DayStatus::Holiday("New Year's Day")
        );
        // Juneteenth on Sunday 2022 -> Monday 06-20; on Saturday 2027 -> Friday 06-18.
        assert!(!c.is_session(d("2022-06-20")).unwrap());
        assert!(!c.is_session(d("2027-06-18")).unwrap());
        // Juneteenth did not close the exchange before 2022.
        assert!(c.is_session(d("2021-06-18")).unwrap());
        // Independence Day on Saturday 2020 -> Friday 07-03 closed (not an early close).
        assert_eq!(
            c.day_status(d("2020-07-03")).unwrap(),
            DayStatus::Holiday("Independence Day")
        );
        // Christmas on Saturday 2021 -> Friday 12-24 closed.
        assert!(!c.is_session(d("2021-12-24")).unwrap());
        // Christmas on Sunday 2022 -> Monday 12-26 closed.
        assert!(!c.is_session(d("2022-12-26")).unwrap());
    }

    #[test]
    fn early_close_rules() {
        let c = cal();
        let early = |s| c.day_status(d(s)).unwrap() == DayStatus::EarlyClose;
        assert!(early("2019-07-03")); // Wednesday, after 2013
        assert!(!early("2002-07-03")); // Wednesday, before 2013 ...
        assert!(early("2002-07-05")); // ... the Friday after was short instead
        assert!(!early("2019-07-05"));
        assert!(early("2023-11-24"));
        assert!(early("2025-12-24"));
        assert!(!early("2023-12-22"));
        let s = c.session(d("2024-11-29")).unwrap().unwrap();
        assert_eq!(ny_time_hhmm(s.close), "13:00");
        assert_eq!(ny_time_hhmm(s.extended_close), "17:00");
        assert_eq!(s.minutes(SessionKind::Regular), 210);
        assert_eq!(s.minutes(SessionKind::Extended), 780);
    }

    #[test]
    fn special_closures_and_good_friday() {
        let c = cal();
        for (y, m, dd, reason) in SPECIAL_CLOSURES {
            let date = NaiveDate::from_ymd_opt(y, m, dd).unwrap();
            assert_eq!(
                c.day_status(date).unwrap(),
                DayStatus::SpecialClosure(reason)
            );
        }
        assert_eq!(easter_sunday(2024), Some(d("2024-03-31")));
        assert_eq!(easter_sunday(2000), Some(d("2000-04-23")));
        assert_eq!(easter_sunday(2038), Some(d("2038-04-25")));
        assert_eq!(
            c.day_status(d("2024-03-29")).unwrap(),
            DayStatus::Holiday("Good Friday")
        );
        assert_eq!(c.day_status(d("2024-03-30")).unwrap(), DayStatus::Weekend);
    }

    #[test]
    fn hours_in_utc_follow_dst() {
        let c = cal();
        let winter = c.session(d("2024-01-02")).unwrap().unwrap();
        assert_eq!(winter.open.to_string(), "2024-01-02T14:30:00Z");
        assert_eq!(winter.close.to_string(), "2024-01-02T21:00:00Z");
        assert_eq!(winter.minutes(SessionKind::Regular), 390);
        let summer = c.session(d("2024-07-01")).unwrap().unwrap();
        assert_eq!(summer.open.to_string(), "2024-07-01T13:30:00Z");
        assert_eq!(summer.extended_open.to_string(), "2024-07-01T08:00:00Z");
        assert!(summer.contains_minute(summer.open, SessionKind::Regular));
        assert!(!summer.contains_minute(summer.close, SessionKind::Regular));
        assert!(summer.contains_minute(summer.extended_open, SessionKind::Extended));
        assert_eq!(ny_offset_nanos(summer.open), -4 * 3_600 * 1_000_000_000);
        assert_eq!(ny_offset_nanos(winter.open), -5 * 3_600 * 1_000_000_000);
        // 20:00 ET in winter is 01:00 UTC the next day, still the same session date.
        assert_eq!(
            ny_date(winter.extended_close.saturating_add_nanos(-1)),
            winter.date
        );
        let (start, end) = c.utc_bounds(DateRange::parse("2024-01-02", "2024-01-02").unwrap());
        assert_eq!(start.to_string(), "2024-01-02T05:00:00Z");
        assert_eq!(end.to_string(), "2024-01-03T05:00:00Z");
    }

    #[test]
    fn navigation_and_bounds() {
        let c = cal();
        assert_eq!(
            c.next_session(d("2024-03-28")).unwrap().date,
            d("2024-04-01")
        );
        assert_eq!(
            c.previous_session(d("2024-01-02")).unwrap().date,
            d("2023-12-29")
        );
        let err = c.is_session(d("1999-12-31")).unwrap_err();
        assert!(err.to_string().contains("1999-12-31"));
        assert!(
            c.sessions(DateRange::parse("2099-12-01", "2100-01-05").unwrap())
                .is_err()
        );
        assert_eq!(c.code(), "XNYS");
        assert_eq!(c.timezone(), New_York);
        assert_eq!(SessionKind::Extended.as_str(), "extended");
    }
}
