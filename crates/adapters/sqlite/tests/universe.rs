//! The symbol master's history, universes and the latest daily summaries, against a real
//! database file.

#![allow(clippy::unwrap_used)]

use chrono::NaiveDate;
use marketpipe_domain::{
    AssetType, DailySummary, Exchange, FinancialStatus, Price, SecurityRecord, Symbol, Timestamp,
};
use marketpipe_ports::{
    DailySummaryRepository, Exclusion, MasterUpdate, SnapshotInfo, SymbolMasterRepository,
    UniverseEntry, UniverseRepository, UniverseSnapshot,
};
use marketpipe_sqlite::SqliteStore;

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2024, 3, d).unwrap()
}

fn record(symbol: &str, name: &str) -> SecurityRecord {
    SecurityRecord {
        symbol: Symbol::new(symbol).unwrap(),
        vendor_symbol: symbol.replace('.', "/"),
        name: name.into(),
        exchange: Exchange::Nasdaq,
        asset_type: AssetType::Stock,
        test_issue: false,
        financial_status: Some(FinancialStatus::Deficient),
        round_lot: Some(100),
        market_cap: Some(1.5e9),
        sic_code: Some("3571".into()),
        source_id: Some("id-1".into()),
    }
}

fn update(
    as_of: NaiveDate,
    close: &[&str],
    open: Vec<SecurityRecord>,
    replaces_day: bool,
) -> MasterUpdate {
    MasterUpdate {
        info: SnapshotInfo {
            source: "nasdaq-trader".into(),
            as_of,
            loaded_at: Timestamp::from_nanos(7),
            securities: open.len() as u64,
            opened: open.len() as u64,
            closed: close.len() as u64,
        },
        close: close.iter().map(|s| Symbol::new(s).unwrap()).collect(),
        open,
        replaces_day,
    }
}

#[tokio::test]
async fn snapshots_close_and_open_rows_and_a_day_loaded_twice_keeps_one_version() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("m.db")).await.unwrap();
    store
        .apply_snapshot(&update(
            day(1),
            &[],
            vec![record("AAPL", "Apple"), record("BRK.B", "Berkshire")],
            false,
        ))
        .await
        .unwrap();
    store
        .apply_snapshot(&update(
            day(8),
            &["AAPL"],
            vec![record("AAPL", "Apple Inc.")],
            false,
        ))
        .await
        .unwrap();
    // The same day again, with another name: the row of day 8 is replaced, not closed.
    store
        .apply_snapshot(&update(
            day(8),
            &["AAPL"],
            vec![record("AAPL", "Apple Inc. (again)")],
            true,
        ))
        .await
        .unwrap();
    let history = store.history(Symbol::new("AAPL").unwrap()).await.unwrap();
    assert_eq!(history.len(), 2, "{history:?}");
    assert_eq!(history[0].valid_to, Some(day(8)));
    assert_eq!(history[1].record.name, "Apple Inc. (again)");
    assert_eq!(history[1].valid_to, None);
    let brk = &store.rows_valid_on(day(7)).await.unwrap()[1];
    assert_eq!(
        brk.record,
        record("BRK.B", "Berkshire"),
        "every field round-trips"
    );
    assert_eq!(
        store.rows_valid_on(day(7)).await.unwrap()[0].record.name,
        "Apple"
    );
    assert_eq!(
        store.rows_valid_on(day(8)).await.unwrap()[0].record.name,
        "Apple Inc. (again)"
    );
    assert!(
        store
            .rows_valid_on(NaiveDate::from_ymd_opt(2024, 2, 1).unwrap())
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.current_rows("nasdaq-trader").await.unwrap().len(), 2);
    let snapshots = store.snapshots().await.unwrap();
    assert_eq!(snapshots.len(), 2);
    assert_eq!(snapshots[1].as_of, day(8));
    assert_eq!(
        snapshots[1].closed, 1,
        "the second load of day 8 replaced the first"
    );
}

fn entry(symbol: &str, rank: Option<u32>) -> UniverseEntry {
    UniverseEntry {
        symbol: Symbol::new(symbol).unwrap(),
        name: Some(format!("{symbol} Inc")),
        exchange: Some(Exchange::Nyse),
        asset_type: Some(AssetType::Stock),
        price: Some(12.5),
        avg_dollar_volume: Some(f64::NAN),
        avg_volume: None,
        market_cap: None,
        sector: Some("finance".into()),
        rank,
        excluded: rank.is_none().then(|| Exclusion {
            filter: "price".into(),
            reason: "close 3 is outside >= 5".into(),
        }),
    }
}

#[tokio::test]
async fn universes_are_kept_per_date_and_read_back_members_first() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("m.db")).await.unwrap();
    let universe = UniverseSnapshot {
        as_of: day(28),
        name: "liquid".into(),
        filters: "config_version: 1\n".into(),
        built_at: Timestamp::from_nanos(42),
        entries: vec![
            entry("ZZZ", Some(1)),
            entry("AAA", Some(2)),
            entry("MMM", None),
        ],
    };
    store.save(&universe).await.unwrap();
    store.save(&universe).await.unwrap();
    let back = store.get(day(28)).await.unwrap().unwrap();
    let symbols: Vec<&str> = back.entries.iter().map(|e| e.symbol.as_str()).collect();
    assert_eq!(symbols, ["ZZZ", "AAA", "MMM"]);
    assert_eq!(
        back.entries[0].avg_dollar_volume, None,
        "NaN is stored as unknown"
    );
    assert_eq!(back.entries[2].excluded.as_ref().unwrap().filter, "price");
    assert_eq!(back.filters, "config_version: 1\n");
    let list = UniverseRepository::list(&store).await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!((list[0].members, list[0].candidates), (2, 3));
    assert!(store.get(day(27)).await.unwrap().is_none());
}

#[tokio::test]
async fn latest_sessions_are_each_symbols_last_ones_up_to_the_date() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("m.db")).await.unwrap();
    let price = Price::from_f64(10.0).unwrap();
    let summary = |symbol: &str, d: u32| DailySummary {
        symbol: Symbol::new(symbol).unwrap(),
        date: day(d),
        open: price,
        high: price,
        low: price,
        close: price,
        volume: u64::from(d),
        vwap: Some(price),
        bar_count: 390,
        trade_count: None,
    };
    let all: Vec<DailySummary> = (1..=8)
        .map(|d| summary("AAA", d))
        .chain((1..=2).map(|d| summary("BBB", d)))
        .collect();
    store.upsert(&all).await.unwrap();
    let latest = store.latest_sessions(day(6), 3).await.unwrap();
    let got: Vec<(&str, u64)> = latest
        .iter()
        .map(|s| (s.symbol.as_str(), s.volume))
        .collect();
    assert_eq!(
        got,
        [("AAA", 4), ("AAA", 5), ("AAA", 6), ("BBB", 1), ("BBB", 2)]
    );
}
