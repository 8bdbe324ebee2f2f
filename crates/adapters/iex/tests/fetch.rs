//! `HistFetcher` against a minimal HTTP server on loopback that plays the listing and the
//! storage bucket: download under the listing's name, no temporary file left, the provider
//! reads the result; present files are not fetched again; non-sessions make no request;
//! unlisted dates, short downloads and non-captures are clear errors.

// `allow-unwrap-in-tests` covers `#[test]` functions only, not this file's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::NaiveDate;
use common::{expected_between, requested, scenario};
use marketpipe_domain::calendar::ny_instant;
use marketpipe_domain::{SessionKind, TimeRange, Timeframe};
use marketpipe_iex::{FetchError, Fetched, HistFetcher, IexHistProvider, TopsVersion};
use marketpipe_ports::{Adjustment, BarRequest, MarketDataProvider};
use marketpipe_provider_kit::DownloadError;
use marketpipe_testkit::hist::{CaptureOptions, build_capture};

struct Server {
    base: String,
    requests: Arc<AtomicUsize>,
}

/// Serves: the 2024-03-15 listing (TOPS 1.6 and DEEP) and its file; 2024-03-19 → 404 Not
/// Found; 2024-03-20 lists a size larger than the body; 2024-03-21 links to a non-capture.
fn serve(capture: Vec<u8>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let requests = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&requests);
    let host = base.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            counter.fetch_add(1, Ordering::SeqCst);
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                head.push(byte[0]);
            }
            let head = String::from_utf8_lossy(&head).into_owned();
            let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
            let link = |date: &str| {
                format!(
                    "{host}/download/storage/v1/b/iex/o/data%2Ffeeds%2F{date}%2F{date}_IEXTP1_TOPS1.6.pcap.gz?generation=1&alt=media"
                )
            };
            let listing = |date: &str, size: usize| {
                format!(
                    r#"[{{"link":"{host}/deep","date":"{date}","feed":"DEEP","version":"1.0","protocol":"IEXTP1","size":"1"}},
                        {{"link":"{}","date":"{date}","feed":"TOPS","version":"1.6","protocol":"IEXTP1","size":"{size}"}}]"#,
                    link(date)
                )
            };
            let (status, body): (&str, Vec<u8>) = match path.as_str() {
                "/api/1.0/hist?date=20240315" => {
                    ("200 OK", listing("20240315", capture.len()).into_bytes())
                }
                "/api/1.0/hist?date=20240320" => (
                    "200 OK",
                    listing("20240320", capture.len() + 10).into_bytes(),
                ),
                "/api/1.0/hist?date=20240321" => ("200 OK", listing("20240321", 5).into_bytes()),
                p if p.contains("%2F20240315_IEXTP1_TOPS1.6")
                    || p.contains("%2F20240320_IEXTP1_TOPS1.6") =>
                {
                    ("200 OK", capture.clone())
                }
                p if p.contains("%2F20240321_IEXTP1_TOPS1.6") => ("200 OK", b"hello".to_vec()),
                _ => ("404 Not Found", b"Not Found".to_vec()),
            };
            let header = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(header.as_bytes());
            let _ = stream.write_all(&body);
        }
    });
    Server { base, requests }
}

fn date(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2024, 3, d).unwrap()
}

#[tokio::test]
async fn downloads_names_and_serves_the_provider() {
    let capture = build_capture(&scenario(0), &CaptureOptions::default()).unwrap();
    let server = serve(capture.bytes.clone());
    let dir = tempfile::tempdir().unwrap();
    let fetcher = HistFetcher::new(&server.base, dir.path()).unwrap();

    let outcome = fetcher.fetch(date(15), false).await.unwrap();
    let path = dir.path().join("20240315_IEXTP1_TOPS1.6.pcap.gz");
    assert_eq!(
        outcome,
        Fetched::Downloaded {
            path: path.clone(),
            bytes: capture.bytes.len() as u64,
            version: TopsVersion::V1_6
        }
    );
    assert_eq!(std::fs::read(&path).unwrap(), capture.bytes);
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "no temporary file left: {names:?}");

    // The provider reads what was fetched.
    let provider = IexHistProvider::new(dir.path());
    let request = BarRequest {
        symbols: requested(),
        range: TimeRange::new(ny_instant(date(15), 0, 0), ny_instant(date(16), 0, 0)).unwrap(),
        timeframe: Timeframe::M1,
        session: SessionKind::Regular,
        feed: None,
        adjustment: Adjustment::Raw,
        page_size: None,
        cursor: None,
    };
    let page = provider.fetch_bars(&request).await.unwrap();
    assert_eq!(page.bars, expected_between(0, (9, 30), (16, 0)));

    // Present: no request at all; forced: downloaded again.
    let before = server.requests.load(Ordering::SeqCst);
    assert_eq!(
        fetcher.fetch(date(15), false).await.unwrap(),
        Fetched::AlreadyPresent { path: path.clone() }
    );
    assert_eq!(server.requests.load(Ordering::SeqCst), before);
    assert!(matches!(
        fetcher.fetch(date(15), true).await.unwrap(),
        Fetched::Downloaded { .. }
    ));
}

#[tokio::test]
async fn refusals_and_failures_are_clear() {
    let capture = build_capture(&scenario(0), &CaptureOptions::default()).unwrap();
    let server = serve(capture.bytes);
    let dir = tempfile::tempdir().unwrap();
    let fetcher = HistFetcher::new(&server.base, dir.path()).unwrap();

    // Saturday and Good Friday: refused before any request.
    let err = fetcher.fetch(date(16), false).await.unwrap_err();
    assert!(
        matches!(err, FetchError::NotASession { .. }) && err.to_string().contains("weekend"),
        "{err}"
    );
    let err = fetcher.fetch(date(29), false).await.unwrap_err();
    assert!(err.to_string().contains("Good Friday"), "{err}");
    assert_eq!(server.requests.load(Ordering::SeqCst), 0);

    // A session the listing answers 404 for: not listed (yet).
    let err = fetcher.fetch(date(19), false).await.unwrap_err();
    assert!(matches!(err, FetchError::NotListed { .. }), "{err}");
    assert!(err.to_string().contains("published the day after"), "{err}");

    // Shorter than the listing says: removed.
    let err = fetcher.fetch(date(20), false).await.unwrap_err();
    assert!(matches!(err, FetchError::ShortDownload { .. }), "{err}");
    assert!(!dir.path().join("20240320_IEXTP1_TOPS1.6.pcap.gz").exists());

    // Not a capture: removed.
    let err = fetcher.fetch(date(21), false).await.unwrap_err();
    assert!(matches!(err, FetchError::NotACapture { .. }), "{err}");
    assert!(err.to_string().contains("not a packet capture"), "{err}");
    assert!(!dir.path().join("20240321_IEXTP1_TOPS1.6.pcap.gz").exists());

    assert!(matches!(
        HistFetcher::new("not a url", dir.path()),
        Err(FetchError::BadUrl { .. })
    ));
}

#[tokio::test]
async fn a_local_write_failure_is_permanent_and_not_retried() {
    let capture = build_capture(&scenario(0), &CaptureOptions::default()).unwrap();
    let server = serve(capture.bytes);
    let dir = tempfile::tempdir().unwrap();
    // A directory where the file goes: the download arrives, saving it fails (EISDIR), as a
    // full disk (ENOSPC) would.
    let dest = dir.path().join("20240315_IEXTP1_TOPS1.6.pcap.gz");
    std::fs::create_dir(&dest).unwrap();
    let fetcher = HistFetcher::new(&server.base, dir.path()).unwrap();

    let err = fetcher.fetch(date(15), true).await.unwrap_err();
    match &err {
        FetchError::Download(DownloadError::Local { path, source, .. }) => {
            assert_eq!(path.parent(), Some(dir.path()), "{err}");
            assert!(source.raw_os_error().is_some(), "an OS error: {source:?}");
        }
        other => panic!("expected a local download error, got {other:?}"),
    }
    assert!(!err.is_retryable(), "{err}");
    // The listing and one download: the local failure was not retried.
    assert_eq!(server.requests.load(Ordering::SeqCst), 2);
    // The temporary file is gone; the directory in the way is untouched.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(dest.is_dir());
}
