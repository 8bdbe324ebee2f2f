//! `IexHistProvider` over a temporary HIST directory: pages per session date, the cursor,
//! weekends, session hours, the missing-file message, damaged files, gap policy.

// `allow-unwrap-in-tests` covers `#[test]` functions only, not this file's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use chrono::NaiveDate;
use common::{MONDAY_SHIFT_SECS, expected_between, requested, scenario, sym};
use marketpipe_domain::calendar::ny_instant;
use marketpipe_domain::{SessionKind, TimeRange, Timeframe};
use marketpipe_iex::{GapPolicy, IexHistProvider, NAME};
use marketpipe_ports::{Adjustment, BarRequest, MarketDataProvider, PageCursor, ProviderError};
use marketpipe_testkit::hist::{CaptureOptions, Container, Fault, Tops, write_capture};

fn date(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2024, 3, d).unwrap()
}

/// New York dates `first..=last` as a UTC range.
fn request(first: u32, last: u32, session: SessionKind) -> BarRequest {
    BarRequest {
        symbols: requested(),
        range: TimeRange::new(
            ny_instant(date(first), 0, 0),
            ny_instant(date(last + 1), 0, 0),
        )
        .unwrap(),
        timeframe: Timeframe::M1,
        session,
        feed: None,
        adjustment: Adjustment::Raw,
        page_size: None,
        cursor: None,
    }
}

/// A HIST directory with Friday 2024-03-15 (TOPS 1.6, gzip, pcap-ng, top level) and Monday
/// 2024-03-18 (TOPS 1.5, plain classic pcap, in a `20240318/` subfolder).
fn hist_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_capture(
        &dir.path().join("20240315_IEXTP1_TOPS1.6.pcap.gz"),
        &scenario(0),
        &CaptureOptions::default(),
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("20240318")).unwrap();
    write_capture(
        &dir.path()
            .join("20240318")
            .join("20240318_IEXTP1_TOPS1.5.pcap"),
        &scenario(MONDAY_SHIFT_SECS),
        &CaptureOptions {
            container: Container::Pcap {
                big_endian: false,
                nanosecond: false,
            },
            tops: Tops::V1_5,
            gzip: false,
            ..CaptureOptions::default()
        },
    )
    .unwrap();
    dir
}

#[tokio::test]
async fn pages_one_session_per_call_skipping_the_weekend() {
    let dir = hist_dir();
    let provider = IexHistProvider::new(dir.path());
    let mut req = request(15, 18, SessionKind::Regular);
    let page = provider.fetch_bars(&req).await.unwrap();
    assert_eq!(page.bars, expected_between(0, (9, 30), (16, 0)));
    assert_eq!(page.next, Some(PageCursor("2024-03-18".into())));
    req.cursor = page.next;
    let page = provider.fetch_bars(&req).await.unwrap();
    assert_eq!(
        page.bars,
        expected_between(MONDAY_SHIFT_SECS, (9, 30), (16, 0))
    );
    assert_eq!(page.next, None);
}

#[tokio::test]
async fn extended_hours_keep_pre_and_post_market_bars() {
    let dir = hist_dir();
    let provider = IexHistProvider::new(dir.path());
    let page = provider
        .fetch_bars(&request(15, 15, SessionKind::Extended))
        .await
        .unwrap();
    assert_eq!(page.bars, common::expected_bars(0));
    assert_eq!(page.next, None);
}

#[tokio::test]
async fn the_range_cuts_inside_a_day() {
    let dir = hist_dir();
    let provider = IexHistProvider::new(dir.path());
    let mut req = request(15, 15, SessionKind::Regular);
    req.range = TimeRange::new(ny_instant(date(15), 9, 31), ny_instant(date(15), 9, 33)).unwrap();
    let page = provider.fetch_bars(&req).await.unwrap();
    assert_eq!(page.bars, expected_between(0, (9, 31), (9, 33)));
    assert_eq!(page.bars.len(), 1);
}

#[tokio::test]
async fn weekend_only_ranges_are_empty_without_error() {
    let dir = hist_dir();
    let provider = IexHistProvider::new(dir.path());
    let page = provider
        .fetch_bars(&request(16, 17, SessionKind::Regular))
        .await
        .unwrap();
    assert!(page.bars.is_empty());
    assert_eq!(page.next, None);
}

#[tokio::test]
async fn a_missing_session_file_names_the_file_the_directory_and_the_fetch_command() {
    let dir = hist_dir();
    let provider = IexHistProvider::new(dir.path());
    let err = provider
        .fetch_bars(&request(19, 19, SessionKind::Regular))
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::NotFound { .. }), "{err}");
    assert!(!err.is_retryable());
    let text = err.to_string();
    assert!(text.contains("20240319_IEXTP1_TOPS1.6.pcap.gz"), "{text}");
    assert!(text.contains(&dir.path().display().to_string()), "{text}");
    assert!(text.contains("mp iex fetch --date 2024-03-19"), "{text}");
    // A multi-day range fails on the first session without a file, after the ones before.
    let mut req = request(18, 19, SessionKind::Regular);
    let page = provider.fetch_bars(&req).await.unwrap();
    assert_eq!(page.next, Some(PageCursor("2024-03-19".into())));
    req.cursor = page.next;
    assert!(provider.fetch_bars(&req).await.is_err());
}

#[tokio::test]
async fn a_damaged_file_is_malformed_naming_file_position_and_refetch() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("20240315_IEXTP1_TOPS1.6.pcap.gz");
    let summary = write_capture(&path, &scenario(0), &CaptureOptions::default()).unwrap();
    let keep = usize::try_from(summary.file_bytes / 2).unwrap();
    write_capture(
        &path,
        &scenario(0),
        &CaptureOptions {
            faults: vec![Fault::TruncateOutput { keep_bytes: keep }],
            ..CaptureOptions::default()
        },
    )
    .unwrap();
    let provider = IexHistProvider::new(dir.path());
    let err = provider
        .fetch_bars(&request(15, 15, SessionKind::Regular))
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Malformed { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains(&path.display().to_string()), "{text}");
    assert!(text.contains("of the uncompressed stream"), "{text}");
    assert!(text.contains("6 complete bars read before it"), "{text}");
    assert!(text.contains("mp iex fetch --date 2024-03-15"), "{text}");
}

#[tokio::test]
async fn gap_policy_warn_returns_bars_fail_refuses() {
    let dir = tempfile::tempdir().unwrap();
    write_capture(
        &dir.path().join("20240315_IEXTP1_TOPS1.6.pcap.gz"),
        &scenario(0),
        &CaptureOptions {
            faults: vec![Fault::SequenceGap {
                before_segment: 4,
                missing: 3,
            }],
            ..CaptureOptions::default()
        },
    )
    .unwrap();
    let req = request(15, 15, SessionKind::Regular);
    let page = IexHistProvider::new(dir.path())
        .fetch_bars(&req)
        .await
        .unwrap();
    assert_eq!(page.bars, expected_between(0, (9, 30), (16, 0)));
    let err = IexHistProvider::new(dir.path())
        .with_gap_policy(GapPolicy::Fail)
        .fetch_bars(&req)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("sequence gap") && err.to_string().contains("3 messages missing"),
        "{err}"
    );
}

#[tokio::test]
async fn info_and_unsupported_requests() {
    let dir = hist_dir();
    let provider = IexHistProvider::new(dir.path());
    let info = provider.info();
    assert_eq!(info.name, NAME);
    assert_eq!(info.name, "iex");
    assert!(!info.requires_credentials && !info.retries_internally);
    assert!(info.rate_limit.is_none());
    assert_eq!(info.max_symbols_per_request, 1000);
    assert_eq!(
        info.history_start,
        Some(NaiveDate::from_ymd_opt(2016, 12, 12).unwrap())
    );
    provider.test_connection().await.unwrap();
    let missing = IexHistProvider::new(dir.path().join("nope"));
    let err = missing.test_connection().await.unwrap_err();
    assert!(err.to_string().contains("MP_IEX_HIST_DIR"), "{err}");

    let mut req = request(15, 15, SessionKind::Regular);
    req.timeframe = Timeframe::M5;
    assert!(matches!(
        provider.fetch_bars(&req).await,
        Err(ProviderError::Unsupported { .. })
    ));
    let mut req = request(15, 15, SessionKind::Regular);
    req.adjustment = Adjustment::Split;
    assert!(matches!(
        provider.fetch_bars(&req).await,
        Err(ProviderError::Unsupported { .. })
    ));
    let mut req = request(15, 15, SessionKind::Regular);
    req.feed = Some("sip".into());
    assert!(matches!(
        provider.fetch_bars(&req).await,
        Err(ProviderError::Unsupported { .. })
    ));
    let mut req = request(15, 15, SessionKind::Regular);
    req.feed = Some("iex".into());
    req.symbols = vec![sym("MSFT")];
    let page = provider.fetch_bars(&req).await.unwrap();
    assert!(page.bars.iter().all(|b| b.symbol == sym("MSFT")) && page.bars.len() == 2);
    let mut req = request(15, 15, SessionKind::Regular);
    req.cursor = Some(PageCursor("yesterday".into()));
    assert!(matches!(
        provider.fetch_bars(&req).await,
        Err(ProviderError::BadRequest { .. })
    ));
    // Dates before the archive starts have no data and are skipped.
    let mut req = request(15, 15, SessionKind::Regular);
    req.range = TimeRange::new(
        ny_instant(NaiveDate::from_ymd_opt(2016, 12, 1).unwrap(), 0, 0),
        ny_instant(NaiveDate::from_ymd_opt(2016, 12, 10).unwrap(), 0, 0),
    )
    .unwrap();
    let page = provider.fetch_bars(&req).await.unwrap();
    assert!(page.bars.is_empty() && page.next.is_none());
}
