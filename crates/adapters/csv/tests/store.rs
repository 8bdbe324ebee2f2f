//! The CSV report store against real files in temporary directories.

// `allow-unwrap-in-tests` covers `#[test]` functions only, not this file's helpers.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use marketpipe_csv::{CsvReportStore, parse_report_name};
use marketpipe_domain::{Finding, JobId, RuleId, Severity, Symbol, Timeframe, Timestamp};
use marketpipe_ports::{RepositoryError, ValidationReport, ValidationReportRepository};

fn ts(text: &str) -> Timestamp {
    Timestamp::parse_rfc3339(text).unwrap()
}

fn finding(symbol: &str, rule: RuleId, detail: &str) -> Finding {
    Finding {
        symbol: Symbol::new(symbol).unwrap(),
        ts: ts("2024-01-02T14:31:00Z"),
        rule,
        severity: rule.severity(),
        detail: detail.to_owned(),
    }
}

fn report(run: &str, symbol: &str, findings: Vec<Finding>) -> ValidationReport {
    ValidationReport {
        run_id: JobId::new(run).unwrap(),
        symbol: Symbol::new(symbol).unwrap(),
        frame: Timeframe::M1,
        bars_checked: 390,
        created_at: ts("2024-06-01T00:00:00Z"),
        findings,
    }
}

/// Sets a file's modification time to `secs` after the epoch.
fn set_mtime(path: &Path, secs: u64) {
    let file = fs::File::options().write(true).open(path).unwrap();
    file.set_modified(UNIX_EPOCH + Duration::from_secs(secs))
        .unwrap();
}

fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn mtime_of(path: &Path) -> Timestamp {
    let modified = fs::metadata(path).unwrap().modified().unwrap();
    let nanos = modified.duration_since(UNIX_EPOCH).unwrap().as_nanos();
    Timestamp::from_nanos(i64::try_from(nanos).unwrap())
}

#[tokio::test]
async fn round_trip_keeps_details_with_commas_quotes_and_newlines() {
    let dir = tempfile::tempdir().unwrap();
    let store = CsvReportStore::new(dir.path().join("reports"));
    let findings = vec![
        finding(
            "BRK.B",
            RuleId::MissingMinutes,
            "3 minute(s) missing, 10:20-10:22 ET",
        ),
        finding(
            "BRK.B",
            RuleId::DuplicateTs,
            "said \"twice\", then \"\" again",
        ),
        finding(
            "BRK.B",
            RuleId::PriceJump,
            "line one\nline two\r\nline three,",
        ),
        Finding {
            ts: ts("2024-01-02T14:30:00.123456789Z"),
            severity: Severity::Info,
            ..finding("BRK.B", RuleId::VolumeOutlier, "")
        },
    ];
    let original = report("20261127T040631Z-2805c3", "BRK.B", findings);
    let summary = store.save(&original).await.unwrap();
    assert_eq!(summary, original.summary());
    assert_eq!(summary.name, "20261127T040631Z-2805c3_BRK.B");
    assert_eq!((summary.errors, summary.warnings), (1, 2));

    let path = store.path_of(&summary.name).unwrap();
    assert_eq!(
        path,
        dir.path().join("reports/20261127T040631Z-2805c3_BRK.B.csv")
    );
    let text = fs::read_to_string(&path).unwrap();
    assert!(
        text.starts_with("symbol,ts,rule,severity,detail\n"),
        "{text}"
    );
    assert!(
        text.contains("BRK.B,2024-01-02T14:31:00Z,missing_minutes,warning,\"3 minute(s) missing, 10:20-10:22 ET\"\n"),
        "{text}"
    );

    let back = store.get(&summary.name).await.unwrap().unwrap();
    assert_eq!(back.findings, original.findings);
    assert_eq!(back.run_id, original.run_id);
    assert_eq!(back.symbol, original.symbol);
    // What a CSV file does not hold.
    assert_eq!(back.frame, Timeframe::M1);
    assert_eq!(back.bars_checked, 0);
    assert_eq!(back.created_at, mtime_of(&path));
}

#[tokio::test]
async fn saving_again_replaces_the_file_and_leaves_no_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = CsvReportStore::new(dir.path());
    let first = report(
        "job_1",
        "AAPL",
        vec![
            finding("AAPL", RuleId::HighBelowLow, "first run a"),
            finding("AAPL", RuleId::HighBelowOpen, "first run b"),
            finding("AAPL", RuleId::ZeroVolumeRun, "first run c"),
        ],
    );
    store.save(&first).await.unwrap();
    let second = report(
        "job_1",
        "AAPL",
        vec![finding("AAPL", RuleId::MisalignedTs, "second run")],
    );
    let summary = store.save(&second).await.unwrap();
    assert_eq!((summary.errors, summary.warnings), (1, 0));

    assert_eq!(file_names(dir.path()), ["job_1_AAPL.csv"]);
    let text = fs::read_to_string(dir.path().join("job_1_AAPL.csv")).unwrap();
    assert!(!text.contains("first run"), "{text}");
    assert_eq!(text.lines().count(), 2, "{text}");
    let back = store.get("job_1_AAPL").await.unwrap().unwrap();
    assert_eq!(back.findings, second.findings);
    // An empty report is a header only, and replaces too.
    store.save(&report("job_1", "AAPL", vec![])).await.unwrap();
    assert_eq!(
        fs::read_to_string(dir.path().join("job_1_AAPL.csv")).unwrap(),
        "symbol,ts,rule,severity,detail\n"
    );
    assert!(
        store
            .get("job_1_AAPL")
            .await
            .unwrap()
            .unwrap()
            .findings
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_saves_of_one_name_leave_one_whole_report() {
    let dir = tempfile::tempdir().unwrap();
    let store = CsvReportStore::new(dir.path());
    let reports: Vec<ValidationReport> = (0..8)
        .map(|i| {
            let detail = format!("writer {i}");
            report(
                "race",
                "MSFT",
                (0..200)
                    .map(|_| finding("MSFT", RuleId::PriceJump, &detail))
                    .collect(),
            )
        })
        .collect();
    let mut tasks = Vec::new();
    for r in reports.clone() {
        let store = store.clone();
        tasks.push(tokio::spawn(async move { store.save(&r).await }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(file_names(dir.path()), ["race_MSFT.csv"]);
    let back = store.get("race_MSFT").await.unwrap().unwrap();
    assert!(
        reports.iter().any(|r| r.findings == back.findings),
        "a mix of writers"
    );
}

#[tokio::test]
async fn list_is_newest_first_then_by_name_with_counts_from_the_files() {
    let dir = tempfile::tempdir().unwrap();
    let store = CsvReportStore::new(dir.path());
    let errors_and_warnings = vec![
        finding("AAPL", RuleId::DuplicateTs, "e1"),
        finding("AAPL", RuleId::UnsortedTs, "e2"),
        finding("AAPL", RuleId::PriceJump, "w1"),
        Finding {
            severity: Severity::Info,
            ..finding("AAPL", RuleId::VolumeOutlier, "not counted")
        },
    ];
    store
        .save(&report("job-a", "AAPL", errors_and_warnings))
        .await
        .unwrap();
    store
        .save(&report(
            "job-b",
            "MSFT",
            vec![finding("MSFT", RuleId::MissingMinutes, "w")],
        ))
        .await
        .unwrap();
    store.save(&report("job-c", "BRK.B", vec![])).await.unwrap();
    set_mtime(&dir.path().join("job-a_AAPL.csv"), 1_700_000_000);
    set_mtime(&dir.path().join("job-b_MSFT.csv"), 1_700_000_100);
    set_mtime(&dir.path().join("job-c_BRK.B.csv"), 1_700_000_000);
    // Files that are not reports: ignored.
    for other in [
        ".job-d_AAPL.csv.tmp-123-0",
        "notes.txt",
        "job_aapl.csv",
        "no-underscore.csv",
        "job-e_AAPL.CSV",
        "job-f_AAPL.csv.bak",
    ] {
        fs::write(dir.path().join(other), "garbage \" , \n").unwrap();
    }
    fs::create_dir(dir.path().join("sub_DIR")).unwrap();

    let listed = store.list().await.unwrap();
    let rows: Vec<(&str, u64, u64, u64, i64)> = listed
        .iter()
        .map(|s| {
            (
                s.name.as_str(),
                s.errors,
                s.warnings,
                s.bars_checked,
                s.created_at.nanos() / 1_000_000_000,
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("job-b_MSFT", 0, 1, 0, 1_700_000_100),
            ("job-a_AAPL", 2, 1, 0, 1_700_000_000),
            ("job-c_BRK.B", 0, 0, 0, 1_700_000_000),
        ]
    );
    assert_eq!(listed[1].run_id.as_str(), "job-a");
    assert_eq!(listed[1].symbol.as_str(), "AAPL");
}

#[tokio::test]
async fn a_missing_directory_lists_nothing_and_missing_reports_are_none() {
    let dir = tempfile::tempdir().unwrap();
    let store = CsvReportStore::new(dir.path().join("never").join("created"));
    assert!(store.list().await.unwrap().is_empty());
    assert!(store.get("job_AAPL").await.unwrap().is_none());
    assert!(!store.dir().exists(), "reading creates nothing");
    // The first save creates the directory.
    store.save(&report("job", "AAPL", vec![])).await.unwrap();
    assert!(store.get("job_AAPL").await.unwrap().is_some());
    assert!(store.get("job_MSFT").await.unwrap().is_none());
}

#[tokio::test]
async fn names_that_are_not_report_names_are_not_found() {
    let dir = tempfile::tempdir().unwrap();
    // A file a bad name would point at, outside the store's directory.
    fs::write(
        dir.path().join("x_AAPL.csv"),
        "symbol,ts,rule,severity,detail\n",
    )
    .unwrap();
    let store = CsvReportStore::new(dir.path().join("reports"));
    for bad in [
        "../x_AAPL",
        "a/b_AAPL",
        "job_aapl",
        "job_",
        "_AAPL",
        "job_AAPL.csv",
        "",
    ] {
        let err = store.get(bad).await.unwrap_err();
        assert!(
            matches!(&err, RepositoryError::NotFound { entity: "report", key } if key == bad),
            "{bad:?}: {err:?}"
        );
        assert!(matches!(
            store.path_of(bad),
            Err(RepositoryError::NotFound { .. })
        ));
        assert!(parse_report_name(bad).is_err());
    }
}

#[tokio::test]
async fn a_corrupt_row_is_reported_with_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let store = CsvReportStore::new(dir.path());
    let path = dir.path().join("job_AAPL.csv");
    fs::write(
        &path,
        "symbol,ts,rule,severity,detail\n\
         AAPL,2024-01-02T14:30:00Z,price_jump,warning,\"two\nlines\"\n\
         AAPL,2024-01-02T14:31:00Z,no_such_rule,error,x\n",
    )
    .unwrap();
    let err = store.get("job_AAPL").await.unwrap_err();
    let RepositoryError::Corrupt { message } = &err else {
        panic!("{err:?}");
    };
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("line 4"), "{message}");
    assert!(message.contains("no_such_rule"), "{message}");
    assert!(!err.is_retryable());
    // Listing reads the files for their counts, so it reports the same file.
    let err = store.list().await.unwrap_err();
    assert!(err.to_string().contains("line 4"), "{err}");

    fs::write(&path, b"symbol,ts,rule,severity,detail\nAAPL,\xff\n").unwrap();
    let err = store.get("job_AAPL").await.unwrap_err();
    assert!(
        matches!(&err, RepositoryError::Corrupt { message } if message.contains("line 2") && message.contains("UTF-8")),
        "{err:?}"
    );
    fs::write(&path, "").unwrap();
    let err = store.get("job_AAPL").await.unwrap_err();
    assert!(
        matches!(&err, RepositoryError::Corrupt { message } if message.contains("header")),
        "{err:?}"
    );
}

#[tokio::test]
async fn io_failures_are_backend_errors_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    fs::write(&file, "x").unwrap();
    // The reports "directory" is a file: nothing can be created under it.
    let store = CsvReportStore::new(&file);
    let err = store
        .save(&report("job", "AAPL", vec![]))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, RepositoryError::Backend { message, .. } if message.contains("a-file")),
        "{err:?}"
    );
    assert!(!err.is_retryable());
    let err = store.list().await.unwrap_err();
    assert!(err.to_string().contains("a-file"), "{err}");
    // A directory where a report file should be.
    let store = CsvReportStore::new(dir.path());
    fs::create_dir(dir.path().join("job_AAPL.csv")).unwrap();
    let err = store.get("job_AAPL").await.unwrap_err();
    assert!(err.to_string().contains("job_AAPL.csv"), "{err}");
    let err = store
        .save(&report("job", "AAPL", vec![]))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("job_AAPL.csv"), "{err}");
    assert_eq!(
        file_names(dir.path()),
        ["a-file", "job_AAPL.csv"],
        "temporary file removed"
    );
}
