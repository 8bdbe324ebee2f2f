//! The use cases over an in-memory store: history by date, each filter, ranking, diff.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::NaiveDate;
use marketpipe_domain::{
    AssetType, DailySummary, DateRange, Exchange, FinancialStatus, MasterRow, Price,
    SecurityRecord, Symbol, Timestamp,
};
use marketpipe_ports::{
    DailySummaryRepository, FixedClock, MasterSnapshot, MasterUpdate, ProviderError,
    RepositoryError, SnapshotInfo, SymbolMasterRepository, SymbolMasterSource, UniverseInfo,
    UniverseRepository, UniverseSnapshot,
};

use crate::{
    FilterSpec, UniverseDeps, UniverseError, UniverseSelector, build_universe, diff_universes,
    list_symbols, store_universe, universe_csv, universe_of, update_symbols,
};

#[derive(Debug, Default)]
struct MemStore {
    rows: Mutex<Vec<MasterRow>>,
    snapshots: Mutex<Vec<SnapshotInfo>>,
    universes: Mutex<Vec<UniverseSnapshot>>,
    summaries: Mutex<Vec<DailySummary>>,
}

#[async_trait]
impl SymbolMasterRepository for MemStore {
    async fn snapshots(&self) -> Result<Vec<SnapshotInfo>, RepositoryError> {
        Ok(self.snapshots.lock().unwrap().clone())
    }
    async fn current_rows(&self, source: &str) -> Result<Vec<MasterRow>, RepositoryError> {
        Ok(self
            .rows
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.source == source && r.valid_to.is_none())
            .cloned()
            .collect())
    }
    async fn apply_snapshot(&self, update: &MasterUpdate) -> Result<(), RepositoryError> {
        let mut rows = self.rows.lock().unwrap();
        let as_of = update.info.as_of;
        let source = &update.info.source;
        if update.replaces_day {
            rows.retain(|r| !(r.source == *source && r.valid_from == as_of));
            for r in rows.iter_mut() {
                if r.source == *source && r.valid_to == Some(as_of) {
                    r.valid_to = None;
                }
            }
            self.snapshots
                .lock()
                .unwrap()
                .retain(|s| !(s.source == *source && s.as_of == as_of));
        }
        for symbol in &update.close {
            for r in rows.iter_mut() {
                if r.source == *source && r.record.symbol == *symbol && r.valid_to.is_none() {
                    r.valid_to = Some(as_of);
                }
            }
        }
        for record in &update.open {
            rows.push(MasterRow {
                source: update.info.source.clone(),
                record: record.clone(),
                valid_from: as_of,
                valid_to: None,
            });
        }
        self.snapshots.lock().unwrap().push(update.info.clone());
        Ok(())
    }
    async fn rows_valid_on(&self, date: NaiveDate) -> Result<Vec<MasterRow>, RepositoryError> {
        Ok(self
            .rows
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.valid_on(date))
            .cloned()
            .collect())
    }
    async fn history(&self, symbol: Symbol) -> Result<Vec<MasterRow>, RepositoryError> {
        Ok(self
            .rows
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.record.symbol == symbol)
            .cloned()
            .collect())
    }
}

#[async_trait]
impl UniverseRepository for MemStore {
    async fn save(&self, universe: &UniverseSnapshot) -> Result<(), RepositoryError> {
        let mut all = self.universes.lock().unwrap();
        all.retain(|u| u.as_of != universe.as_of);
        all.push(universe.clone());
        Ok(())
    }
    async fn list(&self) -> Result<Vec<UniverseInfo>, RepositoryError> {
        Ok(self
            .universes
            .lock()
            .unwrap()
            .iter()
            .map(|u| UniverseInfo {
                as_of: u.as_of,
                name: u.name.clone(),
                built_at: u.built_at,
                members: u.members().count() as u64,
                candidates: u.entries.len() as u64,
            })
            .collect())
    }
    async fn get(&self, as_of: NaiveDate) -> Result<Option<UniverseSnapshot>, RepositoryError> {
        Ok(self
            .universes
            .lock()
            .unwrap()
            .iter()
            .find(|u| u.as_of == as_of)
            .cloned())
    }
}

#[async_trait]
impl DailySummaryRepository for MemStore {
    async fn upsert(&self, summaries: &[DailySummary]) -> Result<(), RepositoryError> {
        self.summaries.lock().unwrap().extend_from_slice(summaries);
        Ok(())
    }
    async fn list(
        &self,
        symbol: Symbol,
        dates: DateRange,
    ) -> Result<Vec<DailySummary>, RepositoryError> {
        Ok(self
            .summaries
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.symbol == symbol && dates.contains(s.date))
            .copied()
            .collect())
    }
    async fn latest_sessions(
        &self,
        as_of: NaiveDate,
        sessions: usize,
    ) -> Result<Vec<DailySummary>, RepositoryError> {
        let mut all: Vec<DailySummary> = self
            .summaries
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.date <= as_of)
            .copied()
            .collect();
        all.sort_by_key(|s| (s.symbol, std::cmp::Reverse(s.date)));
        let mut out = Vec::new();
        let mut count = 0;
        let mut last: Option<Symbol> = None;
        for s in all {
            if last != Some(s.symbol) {
                count = 0;
                last = Some(s.symbol);
            }
            count += 1;
            if count <= sessions {
                out.push(s);
            }
        }
        Ok(out)
    }
}

#[derive(Debug)]
struct ListSource(Vec<SecurityRecord>);

#[async_trait]
impl SymbolMasterSource for ListSource {
    fn name(&self) -> &'static str {
        "nasdaq-trader"
    }
    // Dated by the tests at will: a source that can list any past day.
    fn point_in_time(&self) -> bool {
        true
    }
    async fn list_securities(
        &self,
        _as_of: Option<NaiveDate>,
    ) -> Result<MasterSnapshot, ProviderError> {
        Ok(MasterSnapshot {
            source: "nasdaq-trader".into(),
            created_on: None,
            securities: self.0.clone(),
            skipped: Vec::new(),
        })
    }
}

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2024, 3, d).unwrap()
}

fn record(symbol: &str, name: &str, exchange: Exchange) -> SecurityRecord {
    SecurityRecord {
        symbol: Symbol::new(symbol).unwrap(),
        vendor_symbol: symbol.into(),
        name: name.into(),
        exchange,
        asset_type: AssetType::Stock,
        test_issue: false,
        financial_status: (exchange == Exchange::Nasdaq).then_some(FinancialStatus::Normal),
        round_lot: Some(100),
        market_cap: None,
        sic_code: None,
        source_id: None,
    }
}

fn deps(store: &Arc<MemStore>) -> UniverseDeps {
    UniverseDeps {
        master: store.clone(),
        universes: store.clone(),
        summaries: store.clone(),
        clock: Arc::new(FixedClock(Timestamp::from_nanos(1_711_000_000_000_000_000))),
    }
}

/// `sessions` sessions ending 2024-03-28 at `close` with `volume` shares at VWAP `close`.
fn sessions(store: &MemStore, symbol: &str, close: f64, volume: u64, sessions: u32) {
    let price = Price::from_f64(close).unwrap();
    let days: Vec<DailySummary> = (0..sessions)
        .map(|i| DailySummary {
            symbol: Symbol::new(symbol).unwrap(),
            date: day(28 - i),
            open: price,
            high: price,
            low: price,
            close: price,
            volume,
            vwap: Some(price),
            bar_count: 390,
            trade_count: None,
        })
        .collect();
    store.summaries.lock().unwrap().extend(days);
}

fn symbols(rows: &[MasterRow]) -> Vec<&str> {
    rows.iter().map(|r| r.record.symbol.as_str()).collect()
}

#[derive(Debug)]
struct TodayOnly;

#[async_trait]
impl SymbolMasterSource for TodayOnly {
    fn name(&self) -> &'static str {
        "alpaca"
    }
    async fn list_securities(
        &self,
        _as_of: Option<NaiveDate>,
    ) -> Result<MasterSnapshot, ProviderError> {
        Ok(MasterSnapshot {
            source: "alpaca".into(),
            created_on: None,
            securities: vec![record("AAPL", "Apple", Exchange::Nasdaq)],
            skipped: Vec::new(),
        })
    }
}

#[tokio::test]
async fn a_source_of_today_only_is_dated_today_and_never_earlier() {
    let store = Arc::new(MemStore::default());
    let deps = deps(&store);
    let err = update_symbols(&deps, &TodayOnly, Some(day(1)), false)
        .await
        .unwrap_err();
    assert!(
        matches!(err, UniverseError::BeforeTheList { .. }) && err.is_bad_input(),
        "{err}"
    );
    let report = update_symbols(&deps, &TodayOnly, None, false)
        .await
        .unwrap();
    assert_eq!(report.as_of, day(21), "today's New York date on the clock");
}

#[tokio::test]
async fn snapshots_open_and_close_rows_so_each_date_lists_its_own_set() {
    let store = Arc::new(MemStore::default());
    let deps = deps(&store);
    let first = ListSource(vec![
        record("AAPL", "Apple Inc.", Exchange::Nasdaq),
        record("OLD", "Old Co", Exchange::Nyse),
        record("FB", "Meta Platforms", Exchange::Nasdaq),
    ]);
    let report = update_symbols(&deps, &first, Some(day(1)), false)
        .await
        .unwrap();
    assert_eq!(report.added.len(), 3);
    let second = ListSource(vec![
        record("AAPL", "Apple Inc.", Exchange::Nasdaq),
        record("FB", "Meta Platforms Inc. (renamed)", Exchange::Nasdaq),
    ]);
    let dry = update_symbols(&deps, &second, Some(day(8)), true)
        .await
        .unwrap();
    assert_eq!(dry.removed, [Symbol::new("OLD").unwrap()]);
    assert_eq!(
        store.snapshots.lock().unwrap().len(),
        1,
        "a dry run writes nothing"
    );
    let report = update_symbols(&deps, &second, Some(day(8)), false)
        .await
        .unwrap();
    assert_eq!(report.changed, [Symbol::new("FB").unwrap()]);
    assert_eq!(report.unchanged, 1);
    assert_eq!(
        symbols(&list_symbols(&deps, day(7), &[]).await.unwrap()),
        ["AAPL", "FB", "OLD"]
    );
    let later = list_symbols(&deps, day(8), &[]).await.unwrap();
    assert_eq!(symbols(&later), ["AAPL", "FB"]);
    assert!(later[1].record.name.contains("renamed"));
    let nyse = list_symbols(&deps, day(7), &[Exchange::Nyse])
        .await
        .unwrap();
    assert_eq!(symbols(&nyse), ["OLD"]);
    let err = list_symbols(&deps, NaiveDate::from_ymd_opt(2024, 2, 1).unwrap(), &[])
        .await
        .unwrap_err();
    assert!(matches!(err, UniverseError::AsOfBeforeSnapshots { .. }) && err.is_bad_input());
    let err = update_symbols(&deps, &second, Some(day(5)), false)
        .await
        .unwrap_err();
    assert!(matches!(err, UniverseError::OutOfOrder { .. }), "{err}");
    let err = update_symbols(&deps, &ListSource(Vec::new()), Some(day(9)), false)
        .await
        .unwrap_err();
    assert!(matches!(err, UniverseError::EmptySnapshot { .. }), "{err}");
}

#[tokio::test]
#[allow(clippy::too_many_lines)] // one candidate list, each filter's exclusion in turn
async fn each_filter_excludes_with_a_reason_and_the_top_n_are_ranked() {
    let store = Arc::new(MemStore::default());
    let deps = deps(&store);
    let mut test_issue = record("ZXZZT", "Test", Exchange::Nasdaq);
    test_issue.test_issue = true;
    let mut etf = record("QQQ", "Invesco QQQ", Exchange::Nasdaq);
    etf.asset_type = AssetType::Etf;
    let source = ListSource(vec![
        record("AAA", "A", Exchange::Nasdaq),
        record("BBB", "B", Exchange::Nyse),
        record("CCC", "C", Exchange::Nasdaq),
        record("DDD", "D", Exchange::NyseArca),
        record("EEE", "E", Exchange::Nasdaq),
        record("FFF", "F", Exchange::Nasdaq),
        test_issue,
        etf,
    ]);
    update_symbols(&deps, &source, Some(day(1)), false)
        .await
        .unwrap();
    sessions(&store, "AAA", 10.0, 2_000_000, 20); // $20 M a day
    sessions(&store, "BBB", 50.0, 1_000_000, 20); // $50 M
    sessions(&store, "CCC", 3.0, 9_000_000, 20); // below $5
    sessions(&store, "DDD", 20.0, 1_000_000, 20); // NYSE Arca
    sessions(&store, "EEE", 30.0, 1_000_000, 5); // too few sessions
    sessions(&store, "QQQ", 400.0, 1_000_000, 20);
    let filters = "config_version: 1\nexchanges: [NASDAQ, NYSE]\nasset_types: [stock]\n\
                   price: {min: 5}\navg_dollar_volume: {min: 10000000, sessions: 20}\n\
                   max_symbols: 2\ninclude: [FFF]\n";
    let spec = FilterSpec::from_yaml(filters).unwrap();
    let universe = build_universe(&deps, &spec, filters, Some(day(28)), None)
        .await
        .unwrap();
    store_universe(&deps, &universe).await.unwrap();
    let members = universe.member_symbols();
    assert_eq!(
        members.iter().map(Symbol::as_str).collect::<Vec<_>>(),
        ["BBB", "FFF"],
        "the best by dollar volume plus the forced-in one"
    );
    let why = |s: &str| {
        universe
            .entries
            .iter()
            .find(|e| e.symbol.as_str() == s)
            .and_then(|e| e.excluded.clone())
            .map(|x| x.filter)
            .unwrap_or_default()
    };
    assert_eq!(why("AAA"), "max_symbols");
    assert_eq!(why("CCC"), "price");
    assert_eq!(why("DDD"), "exchanges");
    assert_eq!(why("EEE"), "avg_dollar_volume");
    assert_eq!(why("QQQ"), "asset_types");
    assert_eq!(why("ZXZZT"), "exclude_test_issues");
    let bbb = universe.members().next().unwrap();
    assert_eq!(bbb.rank, Some(1));
    assert_eq!(bbb.avg_dollar_volume, Some(50_000_000.0));
    let csv = universe_csv(&universe);
    assert!(csv.starts_with(crate::UNIVERSE_CSV_HEADER), "{csv}");
    assert!(
        csv.contains("\nBBB,B,NYSE,stock,50,50000000,1000000,,,1\n"),
        "{csv}"
    );

    // A later universe without the cut: AAA comes in; then the diff says so.
    let wider = "config_version: 1\nprice: {min: 5}\nexclude: [BBB]\n";
    let spec = FilterSpec::from_yaml(wider).unwrap();
    let wide = build_universe(&deps, &spec, wider, Some(day(29)), Some("wide".into()))
        .await
        .unwrap();
    store_universe(&deps, &wide).await.unwrap();
    let diff = diff_universes(
        &deps,
        UniverseSelector::Date(day(28)),
        UniverseSelector::Latest,
    )
    .await
    .unwrap();
    let added: Vec<&str> = diff.added.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(
        added,
        ["AAA", "DDD", "EEE", "QQQ"],
        "EEE ranks last, without 20 sessions"
    );
    assert_eq!(diff.removed.len(), 2);
    assert_eq!(diff.removed[0].1.filter, "exclude");
    assert_eq!(diff.removed[1].0.as_str(), "FFF");
    assert_eq!(diff.removed[1].1.filter, "price");
    let latest = universe_of(&deps, UniverseSelector::Latest).await.unwrap();
    assert_eq!(latest.name, "wide");
    let err = universe_of(&deps, UniverseSelector::Date(day(2)))
        .await
        .unwrap_err();
    assert!(matches!(err, UniverseError::UnknownUniverse(_)), "{err}");
    assert_eq!(
        UniverseSelector::parse("latest"),
        Some(UniverseSelector::Latest)
    );
    assert_eq!(
        UniverseSelector::parse("2024-03-28"),
        Some(UniverseSelector::Date(day(28)))
    );
    assert_eq!(UniverseSelector::parse("yesterday"), None);
}

#[derive(Debug)]
struct NamedSource(&'static str, Vec<SecurityRecord>);

#[async_trait]
impl SymbolMasterSource for NamedSource {
    fn name(&self) -> &str {
        self.0
    }
    fn point_in_time(&self) -> bool {
        true
    }
    async fn list_securities(
        &self,
        _as_of: Option<NaiveDate>,
    ) -> Result<MasterSnapshot, ProviderError> {
        Ok(MasterSnapshot {
            source: self.0.into(),
            created_on: None,
            securities: self.1.clone(),
            skipped: Vec::new(),
        })
    }
}

#[tokio::test]
async fn a_day_loaded_again_replaces_its_load_and_the_primary_source_decides_existence() {
    let store = Arc::new(MemStore::default());
    let deps = deps(&store);
    let nasdaq = |symbols: &[&str]| {
        ListSource(
            symbols
                .iter()
                .map(|s| record(s, s, Exchange::Nasdaq))
                .collect(),
        )
    };
    update_symbols(&deps, &nasdaq(&["AAA", "BBB"]), Some(day(1)), false)
        .await
        .unwrap();
    update_symbols(&deps, &nasdaq(&["AAA"]), Some(day(8)), false)
        .await
        .unwrap();
    // Day 8 again, with BBB back: as if the first load of day 8 never happened.
    let again = update_symbols(&deps, &nasdaq(&["AAA", "BBB"]), Some(day(8)), false)
        .await
        .unwrap();
    assert!(again.replaced_day);
    assert!(
        again.added.is_empty() && again.removed.is_empty(),
        "{again:?}"
    );
    let bbb = store.history(Symbol::new("BBB").unwrap()).await.unwrap();
    assert_eq!(bbb.len(), 1, "one unbroken row: {bbb:?}");
    assert_eq!(bbb[0].valid_to, None);

    // Another source knows CCC, and still lists BBB after the primary drops it.
    let mut polygon_aaa = record("AAA", "AAA", Exchange::Nasdaq);
    polygon_aaa.market_cap = Some(2e9);
    polygon_aaa.financial_status = None;
    let polygon = NamedSource(
        "polygon",
        vec![
            polygon_aaa,
            record("BBB", "BBB", Exchange::Nasdaq),
            record("CCC", "CCC", Exchange::Nasdaq),
        ],
    );
    update_symbols(&deps, &polygon, Some(day(8)), false)
        .await
        .unwrap();
    update_symbols(&deps, &nasdaq(&["AAA"]), Some(day(15)), false)
        .await
        .unwrap();
    let text = "config_version: 1\nmarket_cap: {min: 1}\nsort_by: market_cap\n";
    let spec = FilterSpec::from_yaml(text).unwrap();
    let universe = build_universe(&deps, &spec, text, Some(day(15)), None)
        .await
        .unwrap();
    let candidates: Vec<&str> = universe.entries.iter().map(|e| e.symbol.as_str()).collect();
    assert_eq!(
        candidates,
        ["AAA"],
        "nasdaq-trader says which exist on day 15"
    );
    assert_eq!(
        universe.entries[0].market_cap,
        Some(2e9),
        "merged from polygon"
    );

    // A Polygon load without the market cap keeps it.
    let polygon_again = NamedSource("polygon", vec![record("AAA", "AAA", Exchange::Nasdaq)]);
    let report = update_symbols(&deps, &polygon_again, Some(day(16)), false)
        .await
        .unwrap();
    let aaa = store.history(Symbol::new("AAA").unwrap()).await.unwrap();
    let current = aaa
        .iter()
        .find(|r| r.source == "polygon" && r.valid_to.is_none())
        .unwrap();
    assert_eq!(current.record.market_cap, Some(2e9), "{report:?}");
}

#[tokio::test]
#[allow(clippy::too_many_lines)] // one master, each missing-data rule in turn
async fn stale_prices_missing_sessions_unknown_statuses_and_includes_beyond_the_cut() {
    let store = Arc::new(MemStore::default());
    let deps = deps(&store);
    let mut unknown = record("UNK", "Unknown status", Exchange::Nasdaq);
    unknown.financial_status = None;
    let source = ListSource(vec![
        record("AAA", "A", Exchange::Nasdaq),
        record("OLD", "Old", Exchange::Nyse),
        unknown,
        record("XXX", "X", Exchange::Nyse),
        record("YYY", "Y", Exchange::Nyse),
    ]);
    update_symbols(
        &deps,
        &source,
        Some(NaiveDate::from_ymd_opt(2024, 1, 2).unwrap()),
        false,
    )
    .await
    .unwrap();
    sessions(&store, "AAA", 10.0, 1_000, 20);
    sessions(&store, "UNK", 10.0, 1_000, 20);
    // OLD's bars end five weeks before the as-of date.
    let price = Price::from_f64(9.0).unwrap();
    store.summaries.lock().unwrap().push(DailySummary {
        symbol: Symbol::new("OLD").unwrap(),
        date: NaiveDate::from_ymd_opt(2024, 2, 20).unwrap(),
        open: price,
        high: price,
        low: price,
        close: price,
        volume: 5,
        vwap: Some(price),
        bar_count: 390,
        trade_count: None,
    });
    let text = "config_version: 1\nprice: {min: 1}\nfinancial_status: [normal]\n\
                include: [XXX, YYY]\nmax_symbols: 1\n";
    let spec = FilterSpec::from_yaml(text).unwrap();
    let universe = build_universe(&deps, &spec, text, Some(day(28)), None)
        .await
        .unwrap();
    let members: Vec<&str> = universe.members().map(|e| e.symbol.as_str()).collect();
    assert_eq!(
        members,
        ["XXX", "YYY"],
        "included symbols stay even beyond max_symbols"
    );
    let why = |s: &str| {
        let e = universe
            .entries
            .iter()
            .find(|e| e.symbol.as_str() == s)
            .unwrap();
        e.excluded.clone().unwrap()
    };
    assert_eq!(why("OLD").filter, "price");
    assert!(why("OLD").reason.contains("2024-02-20"), "{:?}", why("OLD"));
    assert_eq!(why("UNK").filter, "financial_status");
    assert_eq!(why("AAA").filter, "max_symbols");
    // XXX has bars on the last 21 sessions but 2024-03-27: not every one of the last 20.
    let range = DateRange::new(NaiveDate::from_ymd_opt(2024, 2, 1).unwrap(), day(28)).unwrap();
    let all = marketpipe_domain::TradingCalendar::xnys()
        .sessions(range)
        .unwrap();
    let gap: Vec<DailySummary> = all[all.len() - 21..]
        .iter()
        .filter(|s| s.date != day(27))
        .map(|s| DailySummary {
            symbol: Symbol::new("XXX").unwrap(),
            date: s.date,
            open: price,
            high: price,
            low: price,
            close: price,
            volume: 5,
            vwap: Some(price),
            bar_count: 390,
            trade_count: None,
        })
        .collect();
    assert_eq!(gap.len(), 20);
    store.summaries.lock().unwrap().extend(gap);
    let text = "config_version: 1\navg_volume: {min: 1, sessions: 20}\n";
    let spec = FilterSpec::from_yaml(text).unwrap();
    let universe = build_universe(&deps, &spec, text, Some(day(28)), None)
        .await
        .unwrap();
    let xxx = universe
        .entries
        .iter()
        .find(|e| e.symbol.as_str() == "XXX")
        .unwrap();
    assert_eq!(
        xxx.excluded.as_ref().unwrap().filter,
        "avg_volume",
        "{xxx:?}"
    );
    assert!(
        xxx.excluded
            .as_ref()
            .unwrap()
            .reason
            .contains("the lake has 19"),
        "{xxx:?}"
    );
    let text = "config_version: 1\navg_volume: {min: 1, sessions: 5}\n";
    let spec = FilterSpec::from_yaml(text).unwrap();
    let universe = build_universe(&deps, &spec, text, Some(day(28)), None)
        .await
        .unwrap();
    let members: Vec<&str> = universe.members().map(|e| e.symbol.as_str()).collect();
    assert_eq!(
        members,
        ["AAA", "UNK"],
        "XXX lacks 2024-03-27, one of the last 5"
    );
}
