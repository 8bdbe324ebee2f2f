//! Building a universe from the master and the daily summaries, reading one back, comparing
//! two, and writing one as CSV.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use chrono::NaiveDate;
use marketpipe_domain::{
    AssetType, DailySummary, DateRange, Exchange, SecurityRecord, Symbol, TradingCalendar,
};
use marketpipe_ports::{Exclusion, UniverseEntry, UniverseInfo, UniverseSnapshot};

use crate::error::UniverseError;
use crate::filters::{AverageFilter, DEFAULT_SESSIONS, FilterSpec, SortKey};
use crate::master::{UniverseDeps, list_symbols, merged_records, primary_source};

/// What the lake's daily summaries say of one symbol up to the as-of date.
#[derive(Debug, Default)]
struct SymbolStats {
    /// The symbol's sessions with bars on or before the as-of date, oldest first.
    sessions: Vec<DailySummary>,
}

impl SymbolStats {
    fn last(&self) -> Option<&DailySummary> {
        self.sessions.last()
    }

    /// The last `n` sessions, when there are that many and all are on or after `since`
    /// (the first of the last `n` XNYS sessions: every one of them has bars).
    fn tail(&self, n: usize, since: Option<NaiveDate>) -> Option<&[DailySummary]> {
        let skip = self.sessions.len().checked_sub(n)?;
        let tail = &self.sessions[skip..];
        match (tail.first(), since) {
            (Some(first), Some(since)) if first.date < since => None,
            _ => Some(tail),
        }
    }

    /// Sessions with bars on or after `since`.
    fn sessions_since(&self, since: Option<NaiveDate>) -> usize {
        self.sessions
            .iter()
            .filter(|s| since.is_none_or(|d| s.date >= d))
            .count()
    }

    fn price(&self) -> Option<f64> {
        self.last().map(|s| s.close.to_f64())
    }

    /// Mean of VWAP × volume (a session without volume counts 0).
    fn avg_dollar_volume(&self, (n, since): (usize, Option<NaiveDate>)) -> Option<f64> {
        let tail = self.tail(n, since)?;
        let total: f64 = tail
            .iter()
            .map(|s| s.vwap.map_or(0.0, |v| v.to_f64() * count(s.volume)))
            .sum();
        Some(total / count(n as u64))
    }

    fn avg_volume(&self, (n, since): (usize, Option<NaiveDate>)) -> Option<f64> {
        let tail = self.tail(n, since)?;
        let total: f64 = tail.iter().map(|s| count(s.volume)).sum();
        Some(total / count(n as u64))
    }
}

/// A share or session count as a float: exact below 2^53, which a session's volume is far
/// from.
#[allow(clippy::cast_precision_loss)]
const fn count(n: u64) -> f64 {
    n as f64
}

/// The windows the filters look at, each the count of sessions and the date of the first of
/// the last that many XNYS sessions on or before the as-of date (`None` where the calendar
/// does not reach: then no bound).
#[derive(Debug, Clone, Copy)]
struct Windows {
    adv: (usize, Option<NaiveDate>),
    vol: (usize, Option<NaiveDate>),
    /// A price older than the last `DEFAULT_SESSIONS` sessions is stale.
    recent: Option<NaiveDate>,
}

impl Windows {
    fn of(spec: &FilterSpec, as_of: NaiveDate) -> Self {
        let adv = spec
            .avg_dollar_volume
            .map_or(DEFAULT_SESSIONS, |a| a.sessions);
        let vol = spec.avg_volume.map_or(DEFAULT_SESSIONS, |a| a.sessions);
        Self {
            adv: (adv, first_of_last_sessions(as_of, adv)),
            vol: (vol, first_of_last_sessions(as_of, vol)),
            recent: first_of_last_sessions(as_of, DEFAULT_SESSIONS),
        }
    }
}

/// The date of the first of the last `n` XNYS sessions on or before `as_of`.
fn first_of_last_sessions(as_of: NaiveDate, n: usize) -> Option<NaiveDate> {
    // Every 7 days hold at least 3 sessions (Thanksgiving and Christmas weeks included).
    let days = i64::try_from(n).ok()?.checked_mul(3)?.checked_add(14)?;
    let start = as_of.checked_sub_signed(chrono::Duration::days(days))?;
    let sessions = TradingCalendar::xnys()
        .sessions(DateRange::new(start, as_of).ok()?)
        .ok()?;
    let skip = sessions.len().checked_sub(n)?;
    sessions.get(skip).map(|s| s.date)
}

/// One candidate while the filters run.
struct Candidate {
    record: Option<SecurityRecord>,
    entry: UniverseEntry,
    forced: bool,
}

// The shorthand of every failing filter's `Some(Exclusion)`.
#[allow(clippy::unnecessary_wraps)]
fn exclusion(filter: &str, reason: impl Into<String>) -> Option<Exclusion> {
    Some(Exclusion {
        filter: filter.to_owned(),
        reason: reason.into(),
    })
}

fn money(value: f64) -> String {
    if value.abs() >= 100.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.4}")
    }
}

/// The first filter a candidate fails, or `None` when it passes them all.
fn first_failure(
    spec: &FilterSpec,
    record: &SecurityRecord,
    entry: &UniverseEntry,
    stats: Option<&SymbolStats>,
    windows: &Windows,
) -> Option<Exclusion> {
    listing_failure(spec, record)
        .or_else(|| lake_failure(spec, record.symbol, entry, stats, windows))
        .or_else(|| master_data_failure(spec, record))
}

/// The filters on what the master says of the listing.
fn listing_failure(spec: &FilterSpec, record: &SecurityRecord) -> Option<Exclusion> {
    let symbol = record.symbol;
    if !spec.exchanges.is_empty() && !spec.exchanges.contains(&record.exchange) {
        return exclusion("exchanges", format!("listed on {}", record.exchange));
    }
    if !spec.asset_types.is_empty() && !spec.asset_types.contains(&record.asset_type) {
        return exclusion("asset_types", format!("a {}", record.asset_type));
    }
    if spec.exclude_test_issues && record.test_issue {
        return exclusion("exclude_test_issues", "a test issue");
    }
    if !spec.financial_status.is_empty() {
        match record.financial_status {
            Some(status) if !spec.financial_status.contains(&status) => {
                return exclusion("financial_status", format!("financial status {status}"));
            }
            // Nasdaq reports a status for each of its listings: one without is unknown.
            None if record.exchange == Exchange::Nasdaq => {
                return exclusion(
                    "financial_status",
                    "a Nasdaq listing whose financial status no source reported",
                );
            }
            _ => {}
        }
    }
    if let Some(pattern) = &spec.symbol_pattern
        && !pattern.is_match(symbol.as_str())
    {
        return exclusion(
            "symbol_pattern",
            format!("{symbol} does not match {pattern}"),
        );
    }
    None
}

/// An average filter, its value for the candidate and the start of its window.
type AverageCheck<'a> = (
    &'static str,
    Option<&'a AverageFilter>,
    Option<f64>,
    Option<NaiveDate>,
);

/// The filters on the sessions in the lake.
fn lake_failure(
    spec: &FilterSpec,
    symbol: Symbol,
    entry: &UniverseEntry,
    stats: Option<&SymbolStats>,
    windows: &Windows,
) -> Option<Exclusion> {
    if let Some(bounds) = &spec.price {
        let last = stats.and_then(SymbolStats::last).map(|s| s.date);
        match entry.price {
            None => {
                return exclusion(
                    "price",
                    format!("no bars in the lake on or before the as-of date for {symbol}"),
                );
            }
            Some(_) if last.zip(windows.recent).is_some_and(|(l, r)| l < r) => {
                return exclusion(
                    "price",
                    format!(
                        "the last bars are of {}, more than {DEFAULT_SESSIONS} sessions before \
                         the as-of date",
                        last.map(|d| d.to_string()).unwrap_or_default()
                    ),
                );
            }
            Some(price) if !bounds.contains(price) => {
                return exclusion(
                    "price",
                    format!("close {} is outside {bounds}", money(price)),
                );
            }
            Some(_) => {}
        }
    }
    let averages: [AverageCheck<'_>; 2] = [
        (
            "avg_dollar_volume",
            spec.avg_dollar_volume.as_ref(),
            entry.avg_dollar_volume,
            windows.adv.1,
        ),
        (
            "avg_volume",
            spec.avg_volume.as_ref(),
            entry.avg_volume,
            windows.vol.1,
        ),
    ];
    for (filter, wanted, value, since) in averages {
        let Some(wanted) = wanted else { continue };
        match value {
            None => {
                let have = stats.map_or(0, |s| s.sessions_since(since));
                return exclusion(
                    filter,
                    format!(
                        "needs bars in each of the last {} sessions to the as-of date, the lake \
                         has {have}",
                        wanted.sessions
                    ),
                );
            }
            Some(v) if !wanted.bounds().contains(v) => {
                return exclusion(
                    filter,
                    format!(
                        "mean {} over {} sessions is outside {}",
                        money(v),
                        wanted.sessions,
                        wanted.bounds()
                    ),
                );
            }
            Some(_) => {}
        }
    }
    None
}

/// The filters on figures only some sources of the master have.
fn master_data_failure(spec: &FilterSpec, record: &SecurityRecord) -> Option<Exclusion> {
    if let Some(bounds) = &spec.market_cap {
        match record.market_cap {
            None => {
                return exclusion(
                    "market_cap",
                    "no market cap in the symbol master (load a source that has it: polygon)",
                );
            }
            Some(cap) if !bounds.contains(cap) => {
                return exclusion(
                    "market_cap",
                    format!("market cap {} is outside {bounds}", money(cap)),
                );
            }
            Some(_) => {}
        }
    }
    if let Some(sectors) = &spec.sectors
        && (!sectors.include.is_empty() || !sectors.exclude.is_empty())
    {
        let Some(sector) = record.sector() else {
            return exclusion(
                "sectors",
                "no sector in the symbol master (load a source that has it: polygon)",
            );
        };
        if !sectors.include.is_empty() && !sectors.include.iter().any(|s| s == sector) {
            return exclusion("sectors", format!("sector {sector} is not included"));
        }
        if sectors.exclude.iter().any(|s| s == sector) {
            return exclusion("sectors", format!("sector {sector} is excluded"));
        }
    }
    None
}

fn sort_value(key: SortKey, entry: &UniverseEntry) -> Option<f64> {
    match key {
        SortKey::AvgDollarVolume => entry.avg_dollar_volume,
        SortKey::AvgVolume => entry.avg_volume,
        SortKey::Price => entry.price,
        SortKey::MarketCap => entry.market_cap,
        SortKey::Symbol => Some(0.0),
    }
}

/// Descending by the key, then by symbol; a candidate without the key last.
fn rank_order(key: SortKey, a: &UniverseEntry, b: &UniverseEntry) -> Ordering {
    let by_value = match (sort_value(key, a), sort_value(key, b)) {
        (Some(x), Some(y)) => y.total_cmp(&x),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    };
    by_value.then_with(|| a.symbol.cmp(&b.symbol))
}

/// Builds the universe of `as_of` (default: today's New York date) from the master rows
/// valid then (the securities the primary source lists: see [`primary_source`]) and the
/// sessions up to then, and returns it; [`store_universe`] keeps it. `filters` is the file's text, kept with the universe; `name` overrides its
/// name.
pub async fn build_universe(
    deps: &UniverseDeps,
    spec: &FilterSpec,
    filters: &str,
    as_of: Option<NaiveDate>,
    name: Option<String>,
) -> Result<UniverseSnapshot, UniverseError> {
    let as_of = as_of.unwrap_or_else(|| deps.today());
    let rows = list_symbols(deps, as_of, &[]).await?;
    let snapshots = deps.master.snapshots().await?;
    let primary = primary_source(&snapshots, as_of).unwrap_or_default();
    let records = merged_records(&rows, &primary);
    let windows = Windows::of(spec, as_of);
    let sessions = spec.sessions_needed();
    let mut stats: HashMap<Symbol, SymbolStats> = HashMap::new();
    for summary in deps.summaries.latest_sessions(as_of, sessions).await? {
        stats
            .entry(summary.symbol)
            .or_default()
            .sessions
            .push(summary);
    }
    for s in stats.values_mut() {
        s.sessions.sort_by_key(|d| d.date);
    }
    let candidates = judge(spec, records, &stats, &windows);
    let entries = rank(spec, candidates);
    let universe = UniverseSnapshot {
        as_of,
        name: name.unwrap_or_else(|| spec.name.clone()),
        filters: filters.to_owned(),
        built_at: deps.clock.now(),
        entries,
    };
    Ok(universe)
}

/// Keeps a built universe (replacing one of the same date).
pub async fn store_universe(
    deps: &UniverseDeps,
    universe: &UniverseSnapshot,
) -> Result<(), UniverseError> {
    Ok(deps.universes.save(universe).await?)
}

/// Every stored universe, by date.
pub async fn list_universes(deps: &UniverseDeps) -> Result<Vec<UniverseInfo>, UniverseError> {
    Ok(deps.universes.list().await?)
}

/// Every candidate (the master's securities and the included symbols) with its figures and
/// the filter it fails, if any.
fn judge(
    spec: &FilterSpec,
    records: Vec<SecurityRecord>,
    stats: &HashMap<Symbol, SymbolStats>,
    windows: &Windows,
) -> Vec<Candidate> {
    let mut candidates: BTreeMap<Symbol, Candidate> = BTreeMap::new();
    for record in records {
        candidates.insert(
            record.symbol,
            Candidate {
                entry: entry_of(
                    Some(&record),
                    record.symbol,
                    stats.get(&record.symbol),
                    windows,
                ),
                record: Some(record),
                forced: false,
            },
        );
    }
    for symbol in &spec.include {
        candidates
            .entry(*symbol)
            .or_insert_with(|| Candidate {
                record: None,
                entry: entry_of(None, *symbol, stats.get(symbol), windows),
                forced: false,
            })
            .forced = true;
    }
    for candidate in candidates.values_mut() {
        let symbol = candidate.entry.symbol;
        candidate.entry.excluded = if spec.exclude.contains(&symbol) {
            exclusion("exclude", "listed under exclude")
        } else if candidate.forced {
            None
        } else if let Some(record) = &candidate.record {
            first_failure(spec, record, &candidate.entry, stats.get(&symbol), windows)
        } else {
            exclusion("master", "not in the symbol master on the as-of date")
        };
    }
    candidates.into_values().collect()
}

/// Members by rank, then the excluded candidates by symbol.
fn rank(spec: &FilterSpec, candidates: Vec<Candidate>) -> Vec<UniverseEntry> {
    let (mut passed, mut excluded): (Vec<Candidate>, Vec<Candidate>) = candidates
        .into_iter()
        .partition(|c| c.entry.excluded.is_none());
    passed.sort_by(|a, b| {
        b.forced
            .cmp(&a.forced)
            .then_with(|| rank_order(spec.sort_by, &a.entry, &b.entry))
    });
    let limit = spec.max_symbols.unwrap_or(usize::MAX);
    let forced = passed.iter().filter(|c| c.forced).count();
    let mut members: Vec<UniverseEntry> = Vec::new();
    for (index, mut candidate) in passed.into_iter().enumerate() {
        if index >= limit.max(forced) {
            candidate.entry.excluded = exclusion(
                "max_symbols",
                format!(
                    "ranked {} by {}, below the top {limit}",
                    index + 1,
                    spec.sort_by.as_str()
                ),
            );
            excluded.push(candidate);
        } else {
            members.push(candidate.entry);
        }
    }
    // Members by rank (the order of the sort key, forced-in ones included in it).
    members.sort_by(|a, b| rank_order(spec.sort_by, a, b));
    for (rank, member) in members.iter_mut().enumerate() {
        member.rank = Some(u32::try_from(rank + 1).unwrap_or(u32::MAX));
    }
    excluded.sort_by_key(|c| c.entry.symbol);
    let mut entries = members;
    entries.extend(excluded.into_iter().map(|c| c.entry));
    entries
}

fn entry_of(
    record: Option<&SecurityRecord>,
    symbol: Symbol,
    stats: Option<&SymbolStats>,
    windows: &Windows,
) -> UniverseEntry {
    UniverseEntry {
        symbol,
        name: record.map(|r| r.name.clone()),
        exchange: record.map(|r| r.exchange),
        asset_type: record.map(|r| r.asset_type),
        price: stats.and_then(SymbolStats::price),
        avg_dollar_volume: stats.and_then(|s| s.avg_dollar_volume(windows.adv)),
        avg_volume: stats.and_then(|s| s.avg_volume(windows.vol)),
        market_cap: record.and_then(|r| r.market_cap),
        sector: record.and_then(|r| r.sector().map(str::to_owned)),
        rank: None,
        excluded: None,
    }
}

/// Which stored universe: one date's, or the latest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UniverseSelector {
    /// The universe of this as-of date.
    Date(NaiveDate),
    /// The one with the latest as-of date.
    Latest,
}

impl UniverseSelector {
    /// `latest` or a `YYYY-MM-DD` date; `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        if text.eq_ignore_ascii_case("latest") {
            return Some(Self::Latest);
        }
        NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
            .ok()
            .map(Self::Date)
    }
}

/// A stored universe.
pub async fn universe_of(
    deps: &UniverseDeps,
    selector: UniverseSelector,
) -> Result<UniverseSnapshot, UniverseError> {
    let as_of = match selector {
        UniverseSelector::Date(date) => date,
        UniverseSelector::Latest => deps
            .universes
            .list()
            .await?
            .into_iter()
            .map(|u| u.as_of)
            .max()
            .ok_or(UniverseError::NoUniverse)?,
    };
    deps.universes
        .get(as_of)
        .await?
        .ok_or(UniverseError::UnknownUniverse(as_of))
}

/// What changed from one universe to another.
#[derive(Debug, Clone, PartialEq)]
pub struct UniverseDiff {
    /// The earlier universe's date.
    pub from: NaiveDate,
    /// The later universe's date.
    pub to: NaiveDate,
    /// Members of `to` that were not members of `from`, with their rank in `to`.
    pub added: Vec<(Symbol, Option<u32>)>,
    /// Members of `from` that are not members of `to`, with why `to` left them out.
    pub removed: Vec<(Symbol, Exclusion)>,
    /// Members of both.
    pub kept: usize,
}

/// Compares two stored universes.
pub async fn diff_universes(
    deps: &UniverseDeps,
    from: UniverseSelector,
    to: UniverseSelector,
) -> Result<UniverseDiff, UniverseError> {
    let a = universe_of(deps, from).await?;
    let b = universe_of(deps, to).await?;
    let in_a: HashMap<Symbol, &UniverseEntry> = a.members().map(|e| (e.symbol, e)).collect();
    let in_b: HashMap<Symbol, &UniverseEntry> = b.entries.iter().map(|e| (e.symbol, e)).collect();
    let mut added: Vec<(Symbol, Option<u32>)> = b
        .members()
        .filter(|e| !in_a.contains_key(&e.symbol))
        .map(|e| (e.symbol, e.rank))
        .collect();
    added.sort_by_key(|(s, _)| *s);
    let mut removed: Vec<(Symbol, Exclusion)> = Vec::new();
    let mut kept = 0;
    for symbol in in_a.keys() {
        match in_b.get(symbol) {
            Some(entry) if entry.rank.is_some() => kept += 1,
            Some(entry) => removed.push((
                *symbol,
                entry.excluded.clone().unwrap_or(Exclusion {
                    filter: "unknown".into(),
                    reason: "not a member".into(),
                }),
            )),
            None => removed.push((
                *symbol,
                Exclusion {
                    filter: "master".into(),
                    reason: format!("not in the symbol master on {}", b.as_of),
                },
            )),
        }
    }
    removed.sort_by_key(|(s, _)| *s);
    Ok(UniverseDiff {
        from: a.as_of,
        to: b.as_of,
        added,
        removed,
        kept,
    })
}

/// The header of the universe CSV file.
pub const UNIVERSE_CSV_HEADER: &str =
    "symbol,name,exchange,asset_type,price,avg_dollar_volume,avg_volume,market_cap,sector,rank";

fn csv_text(value: &str) -> String {
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_owned()
    }
}

fn csv_number(value: Option<f64>) -> String {
    value.map(|v| format!("{v}")).unwrap_or_default()
}

/// The members of `universe` as CSV (header [`UNIVERSE_CSV_HEADER`], one row per member by
/// rank; unknown values empty).
pub fn universe_csv(universe: &UniverseSnapshot) -> String {
    let mut out = String::from(UNIVERSE_CSV_HEADER);
    out.push('\n');
    for e in universe.members() {
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{}",
            e.symbol,
            csv_text(e.name.as_deref().unwrap_or("")),
            e.exchange.map_or("", Exchange::as_str),
            e.asset_type.map_or("", AssetType::as_str),
            csv_number(e.price),
            csv_number(e.avg_dollar_volume),
            csv_number(e.avg_volume),
            csv_number(e.market_cap),
            csv_text(e.sector.as_deref().unwrap_or("")),
            e.rank.map(|r| r.to_string()).unwrap_or_default(),
        );
    }
    out
}

#[cfg(test)]
mod tests;
