//! The symbol master: loading a source's snapshot into the history, and reading it back as
//! of a date.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::NaiveDate;
use marketpipe_domain::calendar::ny_date;
use marketpipe_domain::{Exchange, MasterRow, SecurityRecord, Symbol};
use marketpipe_ports::{
    Clock, DailySummaryRepository, MasterUpdate, SkippedListing, SnapshotInfo,
    SymbolMasterRepository, SymbolMasterSource, UniverseRepository,
};

use crate::error::UniverseError;

/// What the context's use cases reach the outside through.
#[derive(Debug, Clone)]
pub struct UniverseDeps {
    /// The symbol master's history.
    pub master: Arc<dyn SymbolMasterRepository>,
    /// Built universes.
    pub universes: Arc<dyn UniverseRepository>,
    /// The daily summaries of the lake's sessions.
    pub summaries: Arc<dyn DailySummaryRepository>,
    /// Now (the default as-of date is today's New York date).
    pub clock: Arc<dyn Clock>,
}

impl UniverseDeps {
    /// Today's New York date.
    pub fn today(&self) -> NaiveDate {
        ny_date(self.clock.now())
    }
}

/// What loading a snapshot did (or, in a dry run, would do).
#[derive(Debug, Clone, PartialEq)]
pub struct SymbolUpdateReport {
    /// The source.
    pub source: String,
    /// The date the snapshot was loaded as.
    pub as_of: NaiveDate,
    /// Securities in the snapshot (after duplicates were set aside).
    pub securities: usize,
    /// Securities not in the history before.
    pub added: Vec<Symbol>,
    /// Securities whose attributes changed (old row closed, new one opened).
    pub changed: Vec<Symbol>,
    /// Securities that are gone (their row closed).
    pub removed: Vec<Symbol>,
    /// Securities as they were.
    pub unchanged: usize,
    /// Listings the source served that were not loaded, with why.
    pub skipped: Vec<SkippedListing>,
    /// Whether nothing was written.
    pub dry_run: bool,
}

/// Loads `source`'s list as a snapshot of `as_of` (default: the date the source gives, else
/// today's New York date): rows of securities that are new or changed open on `as_of`, rows
/// of securities that changed or disappeared close on it. Snapshots of one source are loaded
/// in date order; loading the same date again replaces what that date opened. With
/// `dry_run`, nothing is written.
pub async fn update_symbols(
    deps: &UniverseDeps,
    source: &dyn SymbolMasterSource,
    as_of: Option<NaiveDate>,
    dry_run: bool,
) -> Result<SymbolUpdateReport, UniverseError> {
    let source_name = source.name().to_owned();
    let snapshot = source.list_securities(as_of).await?;
    let as_of = as_of
        .or(snapshot.created_on)
        .unwrap_or_else(|| deps.today());
    let latest = deps
        .master
        .snapshots()
        .await?
        .into_iter()
        .filter(|s| s.source == source_name)
        .map(|s| s.as_of)
        .max();
    if let Some(latest) = latest.filter(|latest| as_of < *latest) {
        return Err(UniverseError::OutOfOrder {
            source_name,
            as_of,
            latest,
        });
    }
    let mut skipped = snapshot.skipped;
    let mut listed: BTreeMap<Symbol, SecurityRecord> = BTreeMap::new();
    for record in snapshot.securities {
        if let Some(first) = listed.get(&record.symbol) {
            skipped.push(SkippedListing {
                vendor_symbol: record.vendor_symbol.clone(),
                reason: format!(
                    "the same security as {} listed before it",
                    first.vendor_symbol
                ),
            });
            continue;
        }
        listed.insert(record.symbol, record);
    }
    if listed.is_empty() {
        return Err(UniverseError::EmptySnapshot { source_name });
    }
    let current: HashMap<Symbol, SecurityRecord> = deps
        .master
        .current_rows(&source_name)
        .await?
        .into_iter()
        .map(|row| (row.record.symbol, row.record))
        .collect();
    let mut report = SymbolUpdateReport {
        source: source_name.clone(),
        as_of,
        securities: listed.len(),
        added: Vec::new(),
        changed: Vec::new(),
        removed: Vec::new(),
        unchanged: 0,
        skipped,
        dry_run,
    };
    let mut open = Vec::new();
    for (symbol, record) in &listed {
        match current.get(symbol) {
            None => {
                report.added.push(*symbol);
                open.push(record.clone());
            }
            Some(old) if !old.same_attributes(record) => {
                report.changed.push(*symbol);
                open.push(record.clone());
            }
            Some(_) => report.unchanged += 1,
        }
    }
    report.removed = current
        .keys()
        .filter(|s| !listed.contains_key(s))
        .copied()
        .collect();
    report.removed.sort();
    if !dry_run {
        let close: Vec<Symbol> = report
            .changed
            .iter()
            .chain(&report.removed)
            .copied()
            .collect();
        let update = MasterUpdate {
            info: SnapshotInfo {
                source: source_name,
                as_of,
                loaded_at: deps.clock.now(),
                securities: report.securities as u64,
                opened: open.len() as u64,
                closed: close.len() as u64,
            },
            close,
            open,
        };
        deps.master.apply_snapshot(&update).await?;
    }
    Ok(report)
}

/// Refuses a date before the first loaded snapshot (nothing is known then).
async fn check_known(deps: &UniverseDeps, as_of: NaiveDate) -> Result<(), UniverseError> {
    let first = deps
        .master
        .snapshots()
        .await?
        .into_iter()
        .map(|s| s.as_of)
        .min();
    match first {
        Some(first) if first <= as_of => Ok(()),
        first => Err(UniverseError::AsOfBeforeSnapshots { as_of, first }),
    }
}

/// Every source's rows valid on `as_of` (only `exchanges`, when given), by symbol and
/// source. A date before the first snapshot is refused.
pub async fn list_symbols(
    deps: &UniverseDeps,
    as_of: NaiveDate,
    exchanges: &[Exchange],
) -> Result<Vec<MasterRow>, UniverseError> {
    check_known(deps, as_of).await?;
    let mut rows = deps.master.rows_valid_on(as_of).await?;
    if !exchanges.is_empty() {
        rows.retain(|r| exchanges.contains(&r.record.exchange));
    }
    rows.sort_by(|a, b| (a.record.symbol, &a.source).cmp(&(b.record.symbol, &b.source)));
    Ok(rows)
}

/// Every row of `symbol` in every source, by source and date.
pub async fn symbol_history(
    deps: &UniverseDeps,
    symbol: Symbol,
) -> Result<Vec<MasterRow>, UniverseError> {
    Ok(deps.master.history(symbol).await?)
}

/// How much a source is trusted for a field several sources describe: the exchanges' own
/// directory first, then Polygon (market cap, SIC), then Alpaca, then any other by name.
fn precedence(source: &str) -> (u8, &str) {
    match source {
        "nasdaq-trader" => (0, source),
        "polygon" => (1, source),
        "alpaca" => (2, source),
        other => (3, other),
    }
}

/// One record per symbol from the rows valid on a date: each field from the most trusted
/// source that has it (see the docs' "Several sources"); a test issue in any source is one.
pub fn merged_records(rows: &[MasterRow]) -> Vec<SecurityRecord> {
    let mut by_symbol: BTreeMap<Symbol, Vec<&MasterRow>> = BTreeMap::new();
    for row in rows {
        by_symbol.entry(row.record.symbol).or_default().push(row);
    }
    by_symbol
        .into_values()
        .filter_map(|mut versions| {
            versions.sort_by(|a, b| precedence(&a.source).cmp(&precedence(&b.source)));
            let mut merged = versions.first()?.record.clone();
            for other in versions.iter().skip(1).map(|r| &r.record) {
                if merged.exchange == Exchange::Unknown {
                    merged.exchange = other.exchange;
                }
                merged.test_issue |= other.test_issue;
                merged.financial_status = merged.financial_status.or(other.financial_status);
                merged.round_lot = merged.round_lot.or(other.round_lot);
                merged.market_cap = merged.market_cap.or(other.market_cap);
                if merged.sic_code.is_none() {
                    merged.sic_code.clone_from(&other.sic_code);
                }
                if merged.source_id.is_none() {
                    merged.source_id.clone_from(&other.source_id);
                }
            }
            Some(merged)
        })
        .collect()
}
