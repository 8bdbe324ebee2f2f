//! The coverage map as a report (`mp gaps`): per symbol and ended session, what the map
//! holds, and the counts per symbol.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use marketpipe_domain::coverage::best_entry;
use marketpipe_domain::{
    CoverageState, DateRange, SessionCoverage, SessionKind, Symbol, Timestamp, TradingCalendar,
};
use marketpipe_ports::{CoverageQuery, CoverageRepository};
use serde::Serialize;

use crate::error::IngestError;

/// What to report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GapsRequest {
    /// Only this provider's answers (`None`: any provider's; the best answer counts).
    pub provider: Option<String>,
    /// With `provider`, its feed.
    pub feed: Option<String>,
    /// The symbols, in the order shown.
    pub symbols: Vec<Symbol>,
    /// The sessions' dates.
    pub dates: DateRange,
    /// The hours the sessions must be covered for.
    pub hours: SessionKind,
}

/// One cell of the map: what is known of a (symbol, session).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CellState {
    /// Every minute came.
    Filled,
    /// Some minutes came.
    Partial,
    /// The provider had nothing.
    EmptyConfirmed,
    /// The last request failed.
    Failed,
    /// Never asked.
    Missing,
}

impl CellState {
    /// Every state, in display order.
    pub const ALL: [Self; 5] = [
        Self::Filled,
        Self::Partial,
        Self::EmptyConfirmed,
        Self::Failed,
        Self::Missing,
    ];

    /// The displayed name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Filled => "filled",
            Self::Partial => "partial",
            Self::EmptyConfirmed => "empty_confirmed",
            Self::Failed => "failed",
            Self::Missing => "missing",
        }
    }

    fn of(entry: Option<&SessionCoverage>) -> Self {
        match entry.map(|e| e.state) {
            None => Self::Missing,
            Some(CoverageState::Filled) => Self::Filled,
            Some(CoverageState::Partial) => Self::Partial,
            Some(CoverageState::EmptyConfirmed) => Self::EmptyConfirmed,
            Some(CoverageState::Failed) => Self::Failed,
        }
    }
}

/// One symbol's row of the map.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SymbolGaps {
    /// The symbol.
    pub symbol: Symbol,
    /// Sessions expected (ended sessions of the range).
    pub expected: usize,
    /// `filled` sessions.
    pub filled: usize,
    /// `partial` sessions.
    pub partial: usize,
    /// `empty_confirmed` sessions.
    pub empty: usize,
    /// `failed` sessions.
    pub failed: usize,
    /// Sessions never asked.
    pub missing: usize,
    /// Minutes missing from partial sessions.
    pub partial_minutes_missing: u64,
    /// One state per session of [`GapsReport::sessions`].
    pub cells: Vec<CellState>,
}

/// The coverage map of a range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GapsReport {
    /// The ended sessions of the range, in order (the columns).
    pub sessions: Vec<NaiveDate>,
    /// Sessions of the range that have not ended yet (not shown).
    pub not_ended: Vec<NaiveDate>,
    /// One row per symbol, in request order.
    pub symbols: Vec<SymbolGaps>,
}

impl GapsReport {
    /// Cells per state over every symbol.
    pub fn totals(&self) -> BTreeMap<&'static str, usize> {
        let mut out = BTreeMap::new();
        for state in CellState::ALL {
            out.insert(state.as_str(), 0);
        }
        for row in &self.symbols {
            for cell in &row.cells {
                *out.entry(cell.as_str()).or_default() += 1;
            }
        }
        out
    }
}

/// The coverage map of `request` at `now` (sessions that have not ended are left out).
pub async fn gaps(
    coverage: &dyn CoverageRepository,
    request: &GapsRequest,
    now: Timestamp,
) -> Result<GapsReport, IngestError> {
    let (ended, not_ended): (Vec<_>, Vec<_>) = TradingCalendar::xnys()
        .sessions(request.dates)?
        .into_iter()
        .partition(|s| s.bounds(request.hours).1 <= now);
    let query = CoverageQuery {
        provider: request.provider.clone(),
        feed: request.feed.clone(),
        symbols: request.symbols.clone(),
        dates: Some(request.dates),
    };
    let by_session = crate::coverage_map::by_session(coverage, &query).await?;
    let symbols = request
        .symbols
        .iter()
        .map(|symbol| {
            let mut row = SymbolGaps {
                symbol: *symbol,
                expected: ended.len(),
                filled: 0,
                partial: 0,
                empty: 0,
                failed: 0,
                missing: 0,
                partial_minutes_missing: 0,
                cells: Vec::with_capacity(ended.len()),
            };
            for session in &ended {
                let entry = best_entry(
                    by_session
                        .get(&(*symbol, session.date))
                        .into_iter()
                        .flatten(),
                    request.hours,
                );
                let cell = CellState::of(entry);
                match cell {
                    CellState::Filled => row.filled += 1,
                    CellState::Partial => {
                        row.partial += 1;
                        row.partial_minutes_missing +=
                            u64::from(entry.map_or(0, SessionCoverage::missing_minutes));
                    }
                    CellState::EmptyConfirmed => row.empty += 1,
                    CellState::Failed => row.failed += 1,
                    CellState::Missing => row.missing += 1,
                }
                row.cells.push(cell);
            }
            row
        })
        .collect();
    Ok(GapsReport {
        sessions: ended.iter().map(|s| s.date).collect(),
        not_ended: not_ended.iter().map(|s| s.date).collect(),
        symbols,
    })
}
