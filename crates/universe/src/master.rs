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
    /// Securities whose exchange code the source gave is not one we know (kept as
    /// `UNKNOWN`, flagged here).
    pub unknown_exchange: Vec<Symbol>,
    /// Whether the snapshot replaced an earlier load of the same date.
    pub replaced_day: bool,
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
    // A source that only has today's list cannot describe an earlier day: dating it earlier
    // would put today's securities into the past (the look-ahead universes exist to avoid).
    let made_on = snapshot.created_on.unwrap_or_else(|| deps.today());
    if let Some(asked) = as_of.filter(|d| *d < made_on && !source.point_in_time()) {
        return Err(UniverseError::BeforeTheList {
            source_name,
            as_of: asked,
            made_on,
        });
    }
    let as_of = as_of.unwrap_or(made_on);
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
    let (mut listed, skipped) = dedupe(snapshot.securities, snapshot.skipped);
    if listed.is_empty() {
        return Err(UniverseError::EmptySnapshot { source_name });
    }
    // Loading a date again replaces its earlier load: compare with what held before it.
    let replaced_day = latest == Some(as_of);
    let base = base_rows(deps, &source_name, as_of, replaced_day).await?;
    let current: HashMap<Symbol, SecurityRecord> = base
        .into_iter()
        .map(|row| (row.record.symbol, row.record))
        .collect();
    carry_over(&mut listed, &current);
    let unknown_exchange: Vec<Symbol> = listed
        .values()
        .filter(|r| r.exchange == Exchange::Unknown)
        .map(|r| r.symbol)
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
        unknown_exchange,
        replaced_day,
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
            replaces_day: replaced_day,
        };
        deps.master.apply_snapshot(&update).await?;
    }
    Ok(report)
}

/// One record per security, in symbol order; a later listing of the same security is set
/// aside with why.
fn dedupe(
    securities: Vec<SecurityRecord>,
    mut skipped: Vec<SkippedListing>,
) -> (BTreeMap<Symbol, SecurityRecord>, Vec<SkippedListing>) {
    let mut listed: BTreeMap<Symbol, SecurityRecord> = BTreeMap::new();
    for record in securities {
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
    (listed, skipped)
}

/// The source's rows a snapshot of `as_of` is compared with: its current rows, or, when the
/// snapshot replaces an earlier load of the same date, the rows as they were before it.
async fn base_rows(
    deps: &UniverseDeps,
    source: &str,
    as_of: NaiveDate,
    replaced_day: bool,
) -> Result<Vec<MasterRow>, UniverseError> {
    if !replaced_day {
        return Ok(deps.master.current_rows(source).await?);
    }
    let before = as_of.pred_opt().unwrap_or(as_of);
    Ok(deps
        .master
        .rows_valid_on(before)
        .await?
        .into_iter()
        .filter(|r| r.source == source && r.valid_to.is_none_or(|to| to >= as_of))
        .collect())
}

/// A figure the source did not report this time (market cap and SIC without Polygon's
/// details) is carried over from the security's current row, not erased.
fn carry_over(
    listed: &mut BTreeMap<Symbol, SecurityRecord>,
    current: &HashMap<Symbol, SecurityRecord>,
) {
    for record in listed.values_mut() {
        if let Some(old) = current.get(&record.symbol) {
            if record.market_cap.is_none() {
                record.market_cap = old.market_cap;
            }
            if record.sic_code.is_none() {
                record.sic_code.clone_from(&old.sic_code);
            }
        }
    }
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

/// The source that says which securities exist on `as_of`: the most trusted one with a
/// snapshot on or before it (the others only add what they know of those securities, so a
/// security one source delisted is not kept alive by another that was loaded earlier).
pub fn primary_source(snapshots: &[SnapshotInfo], as_of: NaiveDate) -> Option<String> {
    snapshots
        .iter()
        .filter(|s| s.as_of <= as_of)
        .map(|s| s.source.as_str())
        .min_by_key(|s| precedence(s))
        .map(str::to_owned)
}

/// One record per security the `primary` source lists among the rows valid on a date: each
/// field from the most trusted source that has it (see the docs' "Several sources"); a test
/// issue in any source is one.
pub fn merged_records(rows: &[MasterRow], primary: &str) -> Vec<SecurityRecord> {
    let mut by_symbol: BTreeMap<Symbol, Vec<&MasterRow>> = BTreeMap::new();
    for row in rows {
        by_symbol.entry(row.record.symbol).or_default().push(row);
    }
    by_symbol
        .into_values()
        .filter(|versions| versions.iter().any(|r| r.source == primary))
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
