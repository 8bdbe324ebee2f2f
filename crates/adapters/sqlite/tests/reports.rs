//! `ValidationReportRepository` of the SQLite store, against real database files.

// `allow-unwrap-in-tests` covers `#[test]` functions only, not this file's helpers.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use marketpipe_domain::{Finding, JobId, RuleId, Severity, Symbol, Timeframe, Timestamp};
use marketpipe_ports::{RepositoryError, ValidationReport, ValidationReportRepository};
use marketpipe_sqlite::SqliteStore;
use sqlx::sqlite::SqliteConnectOptions;

fn db_path(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("meta").join("marketpipe.db")
}

async fn open(dir: &tempfile::TempDir) -> SqliteStore {
    SqliteStore::open(&db_path(dir)).await.unwrap()
}

/// A second connection pool, to look at and write rows directly.
async fn raw_pool(path: &Path) -> sqlx::SqlitePool {
    sqlx::SqlitePool::connect_with(
        SqliteConnectOptions::new()
            .filename(path)
            .foreign_keys(true),
    )
    .await
    .unwrap()
}

fn finding(symbol: &str, ts: i64, rule: RuleId, detail: &str) -> Finding {
    Finding {
        symbol: Symbol::new(symbol).unwrap(),
        ts: Timestamp::from_nanos(ts),
        rule,
        severity: rule.severity(),
        detail: detail.to_owned(),
    }
}

fn report(run: &str, symbol: &str, created: i64, findings: Vec<Finding>) -> ValidationReport {
    ValidationReport {
        run_id: JobId::new(run).unwrap(),
        symbol: Symbol::new(symbol).unwrap(),
        frame: Timeframe::M1,
        bars_checked: 7_800,
        created_at: Timestamp::from_nanos(created),
        findings,
    }
}

async fn rows_of(pool: &sqlx::SqlitePool, table: &str, name: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT COUNT(*) FROM {table} WHERE name = ?1"
    )))
    .bind(name)
    .fetch_one(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn report_round_trip_keeps_every_field_and_the_finding_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let original = ValidationReport {
        frame: Timeframe::H1,
        bars_checked: 123_456,
        // Findings in the order the rules gave them, not by ts.
        ..report(
            "20261127T040631Z-2805c3",
            "BRK.B",
            1_717_000_000_123_456_789,
            vec![
                finding("BRK.B", 300, RuleId::ZeroVolumeRun, "40 bars, until 15:10"),
                finding(
                    "BRK.B",
                    100,
                    RuleId::DuplicateTs,
                    "said \"twice\"\nand, again",
                ),
                finding("BRK.B", 200, RuleId::PriceJump, ""),
                Finding {
                    severity: Severity::Info,
                    ..finding("BRK.B", -5, RuleId::VolumeOutlier, "ünïcödé 株")
                },
            ],
        )
    };
    let summary = store.save(&original).await.unwrap();
    assert_eq!(summary, original.summary());
    assert_eq!(summary.name, "20261127T040631Z-2805c3_BRK.B");
    assert_eq!((summary.errors, summary.warnings), (1, 2));

    let back = store.get(&summary.name).await.unwrap().unwrap();
    assert_eq!(back, original);
    assert!(store.get("nope_AAPL").await.unwrap().is_none());
    assert!(store.get("../../etc/passwd").await.unwrap().is_none());
    assert_eq!(store.list().await.unwrap(), [summary]);
}

#[tokio::test]
async fn saving_again_replaces_the_report_its_counts_and_findings() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let raw = raw_pool(&db_path(&dir)).await;
    let other = report(
        "job_1",
        "MSFT",
        5,
        vec![finding("MSFT", 1, RuleId::MissingSession, "untouched")],
    );
    store.save(&other).await.unwrap();
    let first = report(
        "job_1",
        "AAPL",
        10,
        vec![
            finding("AAPL", 1, RuleId::HighBelowLow, "first a"),
            finding("AAPL", 2, RuleId::HighBelowLow, "first b"),
            finding("AAPL", 3, RuleId::MissingMinutes, "first c"),
        ],
    );
    store.save(&first).await.unwrap();
    assert_eq!(rows_of(&raw, "validation_findings", "job_1_AAPL").await, 3);

    let second = ValidationReport {
        bars_checked: 1,
        ..report(
            "job_1",
            "AAPL",
            20,
            vec![finding("AAPL", 9, RuleId::UnsortedTs, "second")],
        )
    };
    let summary = store.save(&second).await.unwrap();
    assert_eq!((summary.errors, summary.warnings), (1, 0));
    assert_eq!(store.get("job_1_AAPL").await.unwrap().unwrap(), second);
    assert_eq!(rows_of(&raw, "validation_findings", "job_1_AAPL").await, 1);
    assert_eq!(rows_of(&raw, "validation_counts", "job_1_AAPL").await, 1);
    assert_eq!(rows_of(&raw, "validation_reports", "job_1_AAPL").await, 1);
    assert_eq!(store.get("job_1_MSFT").await.unwrap().unwrap(), other);

    // An empty report replaces too, leaving no counts or findings.
    let empty = report("job_1", "AAPL", 30, vec![]);
    store.save(&empty).await.unwrap();
    assert_eq!(store.get("job_1_AAPL").await.unwrap().unwrap(), empty);
    assert_eq!(rows_of(&raw, "validation_findings", "job_1_AAPL").await, 0);
    assert_eq!(rows_of(&raw, "validation_counts", "job_1_AAPL").await, 0);
    assert_eq!(store.list().await.unwrap().len(), 2);
}

#[tokio::test]
async fn list_is_newest_first_then_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    for (run, symbol, created) in [
        ("job-a", "MSFT", 100),
        ("job-b", "AAPL", 300),
        ("job-a", "AAPL", 100),
        ("adhoc", "BRK.B", 200),
    ] {
        store
            .save(&report(run, symbol, created, vec![]))
            .await
            .unwrap();
    }
    let listed = store.list().await.unwrap();
    let names: Vec<(&str, i64)> = listed
        .iter()
        .map(|s| (s.name.as_str(), s.created_at.nanos()))
        .collect();
    assert_eq!(
        names,
        [
            ("job-b_AAPL", 300),
            ("adhoc_BRK.B", 200),
            ("job-a_AAPL", 100),
            ("job-a_MSFT", 100),
        ]
    );
    assert_eq!(listed[1].run_id.as_str(), "adhoc");
    assert_eq!(listed[1].symbol.as_str(), "BRK.B");
    assert_eq!(listed[1].bars_checked, 7_800);
    // Re-saving moves a report to its new place.
    store
        .save(&report("job-a", "MSFT", 400, vec![]))
        .await
        .unwrap();
    assert_eq!(store.list().await.unwrap()[0].name, "job-a_MSFT");
}

#[tokio::test]
async fn the_counts_table_holds_the_run_summary_per_rule_and_severity() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let mut findings = Vec::new();
    for i in 0..5 {
        findings.push(finding("AAPL", i, RuleId::MissingMinutes, "gap"));
    }
    for i in 0..3 {
        findings.push(finding("AAPL", i, RuleId::DuplicateTs, "dup"));
    }
    findings.push(finding("AAPL", 9, RuleId::PriceJump, "jump"));
    findings.push(Finding {
        severity: Severity::Info,
        ..finding("AAPL", 10, RuleId::PriceJump, "small jump")
    });
    let r = report("job", "AAPL", 1, findings);
    store.save(&r).await.unwrap();

    let raw = raw_pool(&db_path(&dir)).await;
    let counts: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT rule, severity, count FROM validation_counts WHERE name = ?1 \
         ORDER BY rule, severity",
    )
    .bind("job_AAPL")
    .fetch_all(&raw)
    .await
    .unwrap();
    let expected: Vec<(String, String, i64)> = [
        ("duplicate_ts", "error", 3),
        ("missing_minutes", "warning", 5),
        ("price_jump", "info", 1),
        ("price_jump", "warning", 1),
    ]
    .into_iter()
    .map(|(r, s, n)| (r.to_owned(), s.to_owned(), n))
    .collect();
    assert_eq!(counts, expected);
    assert_eq!(r.counts().len(), counts.len());
    let (errors, warnings): (i64, i64) =
        sqlx::query_as("SELECT errors, warnings FROM validation_reports WHERE name = 'job_AAPL'")
            .fetch_one(&raw)
            .await
            .unwrap();
    assert_eq!((errors, warnings), (3, 6));
}

#[tokio::test]
async fn twenty_thousand_findings_save_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let findings: Vec<Finding> = (0..20_000)
        .map(|i| {
            let rule = if i % 3 == 0 {
                RuleId::MissingMinutes
            } else {
                RuleId::OutsideSession
            };
            finding(
                "SPY",
                1_704_205_800_000_000_000 + i * 60_000_000_000,
                rule,
                &format!("finding #{i}, with a comma"),
            )
        })
        .collect();
    let big = report("big", "SPY", 1, findings);
    let summary = store.save(&big).await.unwrap();
    assert_eq!((summary.errors, summary.warnings), (13_333, 6_667));
    let back = store.get("big_SPY").await.unwrap().unwrap();
    assert_eq!(back.findings.len(), 20_000);
    assert_eq!(back, big);
    // And replacing it with another large one.
    let smaller = report("big", "SPY", 2, big.findings[..15_000].to_vec());
    store.save(&smaller).await.unwrap();
    let raw = raw_pool(&db_path(&dir)).await;
    assert_eq!(
        rows_of(&raw, "validation_findings", "big_SPY").await,
        15_000
    );
}

#[tokio::test]
async fn a_finding_of_another_symbol_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let r = report(
        "job",
        "AAPL",
        1,
        vec![
            finding("AAPL", 1, RuleId::DuplicateTs, "ok"),
            finding("MSFT", 2, RuleId::DuplicateTs, "wrong symbol"),
        ],
    );
    let err = store.save(&r).await.unwrap_err();
    assert!(
        matches!(&err, RepositoryError::Backend { message, .. } if message.contains("MSFT")),
        "{err:?}"
    );
    assert!(store.list().await.unwrap().is_empty());
}

#[tokio::test]
async fn corrupt_report_rows_are_reported_with_their_value() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let raw = raw_pool(&db_path(&dir)).await;
    store
        .save(&report(
            "job",
            "AAPL",
            1,
            vec![finding("AAPL", 1, RuleId::DuplicateTs, "x")],
        ))
        .await
        .unwrap();
    let corrupt = |err: RepositoryError, value: &str| {
        assert!(
            matches!(&err, RepositoryError::Corrupt { message } if message.contains(value)),
            "{value}: {err:?}"
        );
        assert!(!err.is_retryable());
    };

    let set = |sql: &'static str| {
        let raw = raw.clone();
        async move { sqlx::query(sql).execute(&raw).await.unwrap() }
    };
    set("UPDATE validation_findings SET rule = 'bogus_rule'").await;
    corrupt(store.get("job_AAPL").await.unwrap_err(), "bogus_rule");
    set("UPDATE validation_findings SET rule = 'duplicate_ts', severity = 'fatal'").await;
    corrupt(store.get("job_AAPL").await.unwrap_err(), "fatal");
    set("UPDATE validation_findings SET severity = 'error'").await;
    set("UPDATE validation_reports SET frame = '7m'").await;
    corrupt(store.get("job_AAPL").await.unwrap_err(), "7m");
    set("UPDATE validation_reports SET frame = '1m', errors = -3").await;
    corrupt(store.list().await.unwrap_err(), "-3");
    set("UPDATE validation_reports SET errors = 1, run_id = '../etc'").await;
    corrupt(store.list().await.unwrap_err(), "../etc");
    corrupt(store.get("job_AAPL").await.unwrap_err(), "../etc");
    set("UPDATE validation_reports SET run_id = 'job', symbol = 'aapl'").await;
    corrupt(store.list().await.unwrap_err(), "aapl");
    set("UPDATE validation_reports SET symbol = 'AAPL'").await;
    assert_eq!(store.list().await.unwrap().len(), 1);
}
