//! The coverage map's rules: what a provider's answer for one (symbol, session) means, and
//! which sessions a backfill must ask for.
//!
//! Every ingest and backfill records, per (provider, feed, symbol, session date, hours) of
//! the 1m frame, one [`SessionCoverage`]: `filled` (every minute of the session came),
//! `partial` (some minutes are missing, with the count), `empty_confirmed` (the provider
//! answered and had no bar: a halt, a listing gap) or `failed` (with the error). A backfill
//! then plans only the sessions whose coverage says to ask ([`needs_fetch`]), merged into
//! as few contiguous date ranges as possible ([`merge_sessions`]).

use std::fmt;
use std::str::FromStr;

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::calendar::{Session, SessionKind};
use crate::error::DomainError;
use crate::job::JobId;
use crate::symbol::Symbol;
use crate::time::{DateRange, Timestamp};

/// What the coverage map knows of one (symbol, session).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CoverageState {
    /// Every minute of the session was delivered.
    Filled,
    /// Some minutes were delivered, not all (`SessionCoverage::missing_minutes` says how
    /// many are missing). Thinly traded symbols have minutes without trades, so this is a
    /// provider's answer, not an error.
    Partial,
    /// The provider answered and had no bar for the session.
    EmptyConfirmed,
    /// Asking failed (`SessionCoverage::error` says why).
    Failed,
}

impl CoverageState {
    /// Every state, in display order.
    pub const ALL: [Self; 4] = [
        Self::Filled,
        Self::Partial,
        Self::EmptyConfirmed,
        Self::Failed,
    ];

    /// The stored name: `filled`, `partial`, `empty_confirmed`, `failed`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Filled => "filled",
            Self::Partial => "partial",
            Self::EmptyConfirmed => "empty_confirmed",
            Self::Failed => "failed",
        }
    }

    /// Whether the provider answered (anything but `failed`).
    pub const fn is_answered(self) -> bool {
        !matches!(self, Self::Failed)
    }
}

impl fmt::Display for CoverageState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CoverageState {
    type Err = DomainError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str() == text)
            .ok_or_else(|| DomainError::InvalidCoverageState {
                value: text.to_owned(),
            })
    }
}

/// The coverage of one (provider, feed, symbol, session date, hours).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionCoverage {
    /// The provider asked.
    pub provider: String,
    /// Its feed, when it has several.
    pub feed: Option<String>,
    /// The symbol.
    pub symbol: Symbol,
    /// The session's New York date.
    pub date: NaiveDate,
    /// The hours asked for (an extended-hours answer covers the regular hours too).
    pub hours: SessionKind,
    /// What the answer was.
    pub state: CoverageState,
    /// 1m bars delivered for the session at those hours.
    pub bars: u32,
    /// 1m bars a complete session has at those hours.
    pub expected: u32,
    /// Why asking failed (`failed` only).
    pub error: Option<String>,
    /// The job that asked.
    pub job_id: Option<JobId>,
    /// When the answer was recorded.
    pub recorded_at: Timestamp,
}

impl SessionCoverage {
    /// The coverage of an answer: `bars` of the session's `expected` minutes came.
    #[allow(clippy::too_many_arguments)] // one field each; a builder would only rename them
    pub fn answered(
        provider: &str,
        feed: Option<&str>,
        symbol: Symbol,
        session: &Session,
        hours: SessionKind,
        bars: u32,
        job_id: Option<JobId>,
        recorded_at: Timestamp,
    ) -> Self {
        let expected = session.minutes(hours);
        Self {
            provider: provider.to_owned(),
            feed: feed.map(str::to_owned),
            symbol,
            date: session.date,
            hours,
            state: classify(bars, expected),
            bars,
            expected,
            error: None,
            job_id,
            recorded_at,
        }
    }

    /// The coverage of a failed request for the session.
    #[allow(clippy::too_many_arguments)] // as `answered`
    pub fn failed(
        provider: &str,
        feed: Option<&str>,
        symbol: Symbol,
        session: &Session,
        hours: SessionKind,
        error: &str,
        job_id: Option<JobId>,
        recorded_at: Timestamp,
    ) -> Self {
        Self {
            provider: provider.to_owned(),
            feed: feed.map(str::to_owned),
            symbol,
            date: session.date,
            hours,
            state: CoverageState::Failed,
            bars: 0,
            expected: session.minutes(hours),
            error: Some(error.to_owned()),
            job_id,
            recorded_at,
        }
    }

    /// Minutes of the session the answer lacked (0 when filled).
    pub const fn missing_minutes(&self) -> u32 {
        self.expected.saturating_sub(self.bars)
    }

    /// Whether this entry answers for `hours`: an extended-hours answer covers a
    /// regular-hours question, not the other way round.
    pub fn covers(&self, hours: SessionKind) -> bool {
        self.hours == hours || self.hours == SessionKind::Extended
    }
}

/// The state of an answer with `bars` of `expected` minutes.
pub const fn classify(bars: u32, expected: u32) -> CoverageState {
    if bars == 0 {
        CoverageState::EmptyConfirmed
    } else if bars >= expected {
        CoverageState::Filled
    } else {
        CoverageState::Partial
    }
}

/// Why a backfill asks for a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FetchReason {
    /// The coverage map has nothing for it.
    Missing,
    /// The last attempt failed.
    Failed,
    /// The answer was recorded before the session ended (it may have grown since).
    Unfinished,
    /// The lake holds fewer bars of it than the answer delivered: its file is gone or was
    /// changed outside `mp`.
    LakeChanged,
    /// `--recheck`: the provider had nothing (or not everything) last time; ask again.
    Recheck,
}

impl FetchReason {
    /// The displayed name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Failed => "failed",
            Self::Unfinished => "unfinished",
            Self::LakeChanged => "lake_changed",
            Self::Recheck => "recheck",
        }
    }
}

impl fmt::Display for FetchReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a backfill asks for `session` at `hours`, given the best coverage entry the map
/// has for it (`None`: nothing), how many of its bars the lake still holds (`None`: not
/// checked, the lake's file agrees with the manifest), and whether `--recheck` was given.
/// `None` means the answer stands and nothing is asked.
pub fn needs_fetch(
    session: &Session,
    hours: SessionKind,
    entry: Option<&SessionCoverage>,
    lake_bars: Option<u32>,
    recheck: bool,
) -> Option<FetchReason> {
    let Some(entry) = entry else {
        return Some(FetchReason::Missing);
    };
    let (_, end) = session.bounds(entry.hours);
    match entry.state {
        CoverageState::Failed => Some(FetchReason::Failed),
        _ if entry.recorded_at < end => Some(FetchReason::Unfinished),
        CoverageState::Filled | CoverageState::Partial
            if lake_bars.is_some_and(|held| held < entry.bars.min(session.minutes(hours))) =>
        {
            Some(FetchReason::LakeChanged)
        }
        CoverageState::EmptyConfirmed | CoverageState::Partial if recheck => {
            Some(FetchReason::Recheck)
        }
        _ => None,
    }
}

/// The best of several entries for one session at `hours`: one that covers the hours,
/// answered before failed, the newest first.
pub fn best_entry<'a>(
    entries: impl IntoIterator<Item = &'a SessionCoverage>,
    hours: SessionKind,
) -> Option<&'a SessionCoverage> {
    entries
        .into_iter()
        .filter(|e| e.covers(hours))
        .max_by_key(|e| (e.state.is_answered(), e.recorded_at))
}

/// Merges `wanted` sessions (a subset of `sessions`, both in date order) into date ranges:
/// consecutive sessions of one calendar month become one range, so that a provider is asked
/// once per run of missing sessions (the weekends and holidays between them hold no bars).
pub fn merge_sessions(sessions: &[Session], wanted: &[NaiveDate]) -> Vec<DateRange> {
    let mut ranges = Vec::new();
    let mut run: Option<(NaiveDate, NaiveDate)> = None;
    let mut wanted = wanted.iter().peekable();
    for session in sessions {
        let date = session.date;
        let is_wanted = wanted.peek().is_some_and(|w| **w == date);
        if is_wanted {
            wanted.next();
        }
        run = match (run, is_wanted) {
            (Some((start, end)), true) if same_month(start, date) => Some((start, date.max(end))),
            (Some((start, end)), true) => {
                push_range(&mut ranges, start, end);
                Some((date, date))
            }
            (None, true) => Some((date, date)),
            (Some((start, end)), false) => {
                push_range(&mut ranges, start, end);
                None
            }
            (None, false) => None,
        };
    }
    if let Some((start, end)) = run {
        push_range(&mut ranges, start, end);
    }
    ranges
}

fn same_month(a: NaiveDate, b: NaiveDate) -> bool {
    a.year() == b.year() && a.month() == b.month()
}

fn push_range(ranges: &mut Vec<DateRange>, start: NaiveDate, end: NaiveDate) {
    if let Ok(range) = DateRange::new(start, end) {
        ranges.push(range);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TradingCalendar;

    fn d(text: &str) -> NaiveDate {
        crate::time::parse_date(text).unwrap()
    }

    fn sessions(start: &str, end: &str) -> Vec<Session> {
        TradingCalendar::xnys()
            .sessions(DateRange::new(d(start), d(end)).unwrap())
            .unwrap()
    }

    fn entry(session: &Session, bars: u32, recorded_at: Timestamp) -> SessionCoverage {
        SessionCoverage::answered(
            "fake",
            None,
            Symbol::new("IBM").unwrap(),
            session,
            SessionKind::Regular,
            bars,
            None,
            recorded_at,
        )
    }

    #[test]
    fn states_round_trip_and_classify_answers() {
        for state in CoverageState::ALL {
            assert_eq!(state.as_str().parse::<CoverageState>().unwrap(), state);
        }
        let err = "done".parse::<CoverageState>().unwrap_err();
        assert!(err.to_string().contains("\"done\""), "{err}");
        assert_eq!(classify(0, 390), CoverageState::EmptyConfirmed);
        assert_eq!(classify(389, 390), CoverageState::Partial);
        assert_eq!(classify(390, 390), CoverageState::Filled);
        let s = sessions("2024-03-04", "2024-03-04")[0];
        let partial = entry(&s, 380, s.close);
        assert_eq!(
            (partial.state, partial.missing_minutes()),
            (CoverageState::Partial, 10)
        );
    }

    #[test]
    fn a_backfill_asks_only_for_what_the_map_does_not_answer() {
        let s = sessions("2024-03-04", "2024-03-04")[0];
        let after = s.close;
        let h = SessionKind::Regular;
        assert_eq!(
            needs_fetch(&s, h, None, None, false),
            Some(FetchReason::Missing)
        );
        let filled = entry(&s, 390, after);
        assert_eq!(needs_fetch(&s, h, Some(&filled), None, false), None);
        assert_eq!(needs_fetch(&s, h, Some(&filled), Some(390), true), None);
        assert_eq!(
            needs_fetch(&s, h, Some(&filled), Some(0), false),
            Some(FetchReason::LakeChanged)
        );
        let empty = entry(&s, 0, after);
        assert_eq!(empty.state, CoverageState::EmptyConfirmed);
        assert_eq!(needs_fetch(&s, h, Some(&empty), Some(0), false), None);
        assert_eq!(
            needs_fetch(&s, h, Some(&empty), None, true),
            Some(FetchReason::Recheck)
        );
        let early = entry(&s, 100, s.open);
        assert_eq!(
            needs_fetch(&s, h, Some(&early), None, false),
            Some(FetchReason::Unfinished)
        );
        let failed =
            SessionCoverage::failed("fake", None, filled.symbol, &s, h, "503", None, after);
        assert_eq!(
            needs_fetch(&s, h, Some(&failed), None, false),
            Some(FetchReason::Failed)
        );
        // An answer beats a newer failure; an extended answer covers regular hours.
        let newer_failure = SessionCoverage {
            recorded_at: Timestamp::from_nanos(after.nanos() + 1),
            ..failed
        };
        assert_eq!(
            best_entry([&filled, &newer_failure], h).map(|e| e.state),
            Some(CoverageState::Filled)
        );
        let extended = SessionCoverage {
            hours: SessionKind::Extended,
            ..filled.clone()
        };
        assert!(extended.covers(SessionKind::Regular));
        assert!(!filled.covers(SessionKind::Extended));
        assert!(best_entry([&filled], SessionKind::Extended).is_none());
    }

    #[test]
    fn missing_sessions_merge_into_runs_within_a_month() {
        // 2024-02-26 .. 2024-03-08: Feb 26-29, Mar 1, Mar 4-8.
        let all = sessions("2024-02-26", "2024-03-08");
        let wanted = [
            d("2024-02-27"),
            d("2024-02-28"),
            d("2024-02-29"),
            d("2024-03-01"),
            d("2024-03-04"),
            d("2024-03-07"),
        ];
        let ranges: Vec<String> = merge_sessions(&all, &wanted)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            ranges,
            [
                "2024-02-27..=2024-02-29",
                "2024-03-01..=2024-03-04",
                "2024-03-07..=2024-03-07"
            ]
        );
        assert!(merge_sessions(&all, &[]).is_empty());
    }
}
