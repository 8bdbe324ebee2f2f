//! Fetching a day's TOPS file for `mp iex fetch --date YYYY-MM-DD`: the listing call
//! `GET {base}/api/1.0/hist?date=YYYYMMDD` (no key), the choice of the TOPS entry (1.6
//! before 1.5), the local name ([`crate::files::file_name`]), and the download through
//! provider-kit's `HttpClient` (rate limiter, retries, circuit breaker; streamed to a
//! temporary file in the same directory, then renamed, so the file is absent or complete).
//! [`HistFetcher`] does it all; the pure steps are public for other callers.

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use marketpipe_domain::{DayStatus, TradingCalendar};
use marketpipe_ports::ProviderError;
use marketpipe_provider_kit::{DownloadError, HttpClient, HttpClientConfig};
use serde::Deserialize;
use thiserror::Error;
use tracing::{info, warn};
use url::Url;

use crate::capture::CaptureReader;
use crate::error::ReadError;
use crate::files::{file_name, locate};
use crate::iextp::TopsVersion;
use crate::provider::NAME;

/// The listing host used when none is configured.
pub const DEFAULT_BASE_URL: &str = "https://iextrading.com";

/// A fetch failure.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The listing answer could not be understood.
    #[error("IEX HIST listing {url}: {message}")]
    Listing {
        /// The listing URL.
        url: String,
        /// What was wrong.
        message: String,
    },
    /// The listing has entries for the date but no TOPS 1.6 or 1.5 file.
    #[error("IEX HIST listing for {date} has no TOPS 1.6 or 1.5 file (entries: {entries})")]
    NoTopsFile {
        /// The date.
        date: NaiveDate,
        /// What the listing offered (`FEED version`, comma-separated).
        entries: String,
    },
    /// The date has no session, so IEX publishes no file for it.
    #[error("{date} is not a trading day ({reason}): IEX HIST has no file for it")]
    NotASession {
        /// The date.
        date: NaiveDate,
        /// Why (weekend, the holiday's name, …).
        reason: String,
    },
    /// The listing has no file for the session date (files appear the next day, T+1).
    #[error(
        "IEX HIST lists no file for {date} yet ({url}); files are published the day after the session"
    )]
    NotListed {
        /// The date.
        date: NaiveDate,
        /// The listing URL.
        url: String,
    },
    /// A URL that does not parse (the configured base, or a listing entry's link).
    #[error("invalid URL {url:?}: {message}")]
    BadUrl {
        /// The text.
        url: String,
        /// The parser's message.
        message: String,
    },
    /// The HTTP call failed (after provider-kit's retries).
    #[error(transparent)]
    Http(#[from] ProviderError),
    /// The download failed: the provider or the network (after provider-kit's retries), or
    /// saving the file (a full disk, permissions), which is local and permanent.
    #[error(transparent)]
    Download(#[from] DownloadError),
    /// The download is shorter than the listing's size; the file was removed.
    #[error("{path}: downloaded {got} bytes, the listing says {expected}; removed, try again")]
    ShortDownload {
        /// The file.
        path: String,
        /// The listing's size.
        expected: u64,
        /// Bytes received.
        got: u64,
    },
    /// The download is not a packet capture; the file was removed.
    #[error("the download is not a usable capture (removed): {source}")]
    NotACapture {
        /// What the reader said.
        #[source]
        source: ReadError,
    },
    /// A local file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

impl FetchError {
    /// Whether fetching again may succeed: a provider's or network's transient failure, or a
    /// short download. A local failure (a full disk, a directory in the way) is not: it
    /// says nothing of IEX, and trying again writes to the same place.
    pub const fn is_retryable(&self) -> bool {
        match self {
            Self::Http(e) => e.is_retryable(),
            Self::Download(e) => e.is_retryable(),
            Self::ShortDownload { .. } => true,
            Self::Listing { .. }
            | Self::NoTopsFile { .. }
            | Self::NotASession { .. }
            | Self::NotListed { .. }
            | Self::BadUrl { .. }
            | Self::NotACapture { .. }
            | Self::Io { .. } => false,
        }
    }
}

/// The `size` field: a string in real answers, a number in some.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
enum SizeField {
    Number(u64),
    Text(String),
}

/// One file of the listing.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct HistEntry {
    /// Download URL (a storage URL with a `generation` token: always take it from a fresh
    /// listing, never build it).
    pub link: String,
    /// `YYYYMMDD`.
    #[serde(default)]
    pub date: String,
    /// `TOPS`, `DEEP`, `DPLS`.
    #[serde(default)]
    pub feed: String,
    /// `1.6`, `1.5`, `1.0`.
    #[serde(default)]
    pub version: String,
    /// `IEXTP1`.
    #[serde(default)]
    pub protocol: String,
    #[serde(default)]
    size: Option<SizeField>,
}

impl HistEntry {
    /// Compressed size in bytes, when the listing gives a readable one.
    pub fn size(&self) -> Option<u64> {
        match &self.size {
            Some(SizeField::Number(n)) => Some(*n),
            Some(SizeField::Text(t)) => t.trim().parse().ok(),
            None => None,
        }
    }

    /// The TOPS version of the entry, when it is a TOPS 1.5 or 1.6 file.
    pub fn tops_version(&self) -> Option<TopsVersion> {
        if !self.feed.eq_ignore_ascii_case("TOPS") {
            return None;
        }
        match self.version.trim() {
            "1.6" => Some(TopsVersion::V1_6),
            "1.5" => Some(TopsVersion::V1_5),
            _ => None,
        }
    }
}

/// `{base}/api/1.0/hist?date=YYYYMMDD`.
pub fn listing_url(base: &str, date: NaiveDate) -> String {
    format!(
        "{}/api/1.0/hist?date={}",
        base.trim_end_matches('/'),
        date.format("%Y%m%d")
    )
}

/// Parses a listing answer for `date`. The per-date call answers with an array; the
/// whole-archive form (an object keyed by `YYYYMMDD`) is accepted too. An empty array, an
/// empty body or a `Not Found` body means no session that day: `Ok(vec![])`. Entries of
/// another date are left out.
pub fn parse_listing(body: &str, date: NaiveDate, url: &str) -> Result<Vec<HistEntry>, FetchError> {
    let text = body.trim();
    let key = date.format("%Y%m%d").to_string();
    if text.is_empty()
        || (text.to_ascii_lowercase().contains("not found") && !text.starts_with('['))
    {
        return Ok(Vec::new());
    }
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| FetchError::Listing {
        url: url.to_owned(),
        message: format!("not JSON ({e}): {}", excerpt(text)),
    })?;
    let entries = match value {
        serde_json::Value::Array(_) => value,
        serde_json::Value::Object(mut map) => map
            .remove(&key)
            .unwrap_or(serde_json::Value::Array(Vec::new())),
        _ => {
            return Err(FetchError::Listing {
                url: url.to_owned(),
                message: format!("expected a JSON array of files, got {}", excerpt(text)),
            });
        }
    };
    let entries: Vec<HistEntry> =
        serde_json::from_value(entries).map_err(|e| FetchError::Listing {
            url: url.to_owned(),
            message: format!("unexpected file entry ({e})"),
        })?;
    Ok(entries
        .into_iter()
        .filter(|e| e.date.is_empty() || e.date == key)
        .collect())
}

/// The TOPS entry to download: 1.6 if listed, else 1.5. `Ok(None)` when the listing is
/// empty (no session); an error when it lists other feeds only.
pub fn select_tops(
    entries: &[HistEntry],
    date: NaiveDate,
) -> Result<Option<(&HistEntry, TopsVersion)>, FetchError> {
    if entries.is_empty() {
        return Ok(None);
    }
    for wanted in [TopsVersion::V1_6, TopsVersion::V1_5] {
        if let Some(e) = entries.iter().find(|e| e.tops_version() == Some(wanted)) {
            return Ok(Some((e, wanted)));
        }
    }
    Err(FetchError::NoTopsFile {
        date,
        entries: entries
            .iter()
            .map(|e| format!("{} {}", e.feed, e.version))
            .collect::<Vec<_>>()
            .join(", "),
    })
}

/// Where the entry goes: `hist_dir/YYYYMMDD_IEXTP1_TOPS<v>.pcap.gz`.
pub fn destination(hist_dir: &Path, date: NaiveDate, version: TopsVersion) -> PathBuf {
    hist_dir.join(file_name(date, version, true))
}

/// What [`HistFetcher::fetch`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    /// The file was downloaded.
    Downloaded {
        /// Where it is.
        path: PathBuf,
        /// Its size.
        bytes: u64,
        /// Its TOPS version.
        version: TopsVersion,
    },
    /// A file for the date was already in the HIST directory (nothing downloaded).
    AlreadyPresent {
        /// Where it is.
        path: PathBuf,
    },
}

/// Downloads days' TOPS files into a HIST directory.
#[derive(Debug, Clone)]
pub struct HistFetcher {
    client: HttpClient,
    base: String,
    hist_dir: PathBuf,
    calendar: TradingCalendar,
}

impl HistFetcher {
    /// A fetcher for the listing at `base_url` ([`DEFAULT_BASE_URL`] unless configured)
    /// with provider-kit's default client settings (no rate limit, 5 retries, 30 s connect
    /// and read timeouts).
    pub fn new(base_url: &str, hist_dir: impl Into<PathBuf>) -> Result<Self, FetchError> {
        let url = Url::parse(base_url).map_err(|e| FetchError::BadUrl {
            url: base_url.to_owned(),
            message: e.to_string(),
        })?;
        let client =
            HttpClient::new(HttpClientConfig::new(NAME, url)).map_err(|e| FetchError::BadUrl {
                url: base_url.to_owned(),
                message: e.to_string(),
            })?;
        Ok(Self::with_client(client, hist_dir))
    }

    /// A fetcher using `client` (its base URL is the listing host).
    pub fn with_client(client: HttpClient, hist_dir: impl Into<PathBuf>) -> Self {
        Self {
            base: client.base_url().as_str().to_owned(),
            client,
            hist_dir: hist_dir.into(),
            calendar: TradingCalendar::xnys(),
        }
    }

    /// Downloads `date`'s TOPS file into the HIST directory under the listing's name,
    /// unless a file for the date is already there (`force` downloads anyway, replacing
    /// it). Refuses dates without a session before any request.
    pub async fn fetch(&self, date: NaiveDate, force: bool) -> Result<Fetched, FetchError> {
        let status = self
            .calendar
            .day_status(date)
            .map_err(|e| FetchError::NotASession {
                date,
                reason: e.to_string(),
            })?;
        let reason = match status {
            DayStatus::Open | DayStatus::EarlyClose => None,
            DayStatus::Weekend => Some("weekend".to_owned()),
            DayStatus::Holiday(name) | DayStatus::SpecialClosure(name) => Some(name.to_owned()),
        };
        if let Some(reason) = reason {
            return Err(FetchError::NotASession { date, reason });
        }
        if !force && let Some(path) = locate(&self.hist_dir, date) {
            return Ok(Fetched::AlreadyPresent { path });
        }
        let listing = listing_url(&self.base, date);
        let url = Url::parse(&listing).map_err(|e| FetchError::BadUrl {
            url: listing.clone(),
            message: e.to_string(),
        })?;
        let body = match self.client.get(url, &[], &|_, _| None).await {
            Ok(response) => String::from_utf8_lossy(&response.body).into_owned(),
            // The per-date call answers 404 for a date it has nothing for.
            Err(ProviderError::NotFound { .. }) => String::new(),
            Err(e) => return Err(e.into()),
        };
        let entries = parse_listing(&body, date, &listing)?;
        let Some((entry, version)) = select_tops(&entries, date)? else {
            return Err(FetchError::NotListed { date, url: listing });
        };
        let link = Url::parse(&entry.link).map_err(|e| FetchError::BadUrl {
            url: entry.link.clone(),
            message: e.to_string(),
        })?;
        let dest = destination(&self.hist_dir, date, version);
        info!(date = %date, file = %dest.display(), size = ?entry.size(), "downloading IEX HIST TOPS file");
        let bytes = self.client.download_to_file(link, &dest).await?;
        if let Some(expected) = entry.size() {
            if bytes < expected {
                remove(&dest);
                return Err(FetchError::ShortDownload {
                    path: dest.display().to_string(),
                    expected,
                    got: bytes,
                });
            }
            if bytes != expected {
                warn!(file = %dest.display(), bytes, expected, "download larger than the listing's size (decompressed in transit?)");
            }
        }
        // The first bytes must be a capture (gzip'd or not); the rest is checked on reading.
        let check = dest.clone();
        let opened = tokio::task::spawn_blocking(move || CaptureReader::open(&check).map(|_| ()))
            .await
            .unwrap_or(Ok(()));
        if let Err(source) = opened {
            remove(&dest);
            return Err(FetchError::NotACapture { source });
        }
        Ok(Fetched::Downloaded {
            path: dest,
            bytes,
            version,
        })
    }
}

fn remove(path: &Path) {
    if let Err(e) = std::fs::remove_file(path) {
        warn!(file = %path.display(), "could not remove a bad download: {e}");
    }
}

fn excerpt(text: &str) -> String {
    let cut: String = text.chars().take(120).collect();
    if cut.len() < text.len() {
        format!("{cut}…")
    } else {
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LISTING: &str = r#"[
      {"link":"https://www.googleapis.com/download/storage/v1/b/iex/o/data%2Ffeeds%2F20240315%2F20240315_IEXTP1_DEEP1.0.pcap.gz?generation=1710554012345678&alt=media",
       "date":"20240315","feed":"DEEP","version":"1.0","protocol":"IEXTP1","size":"9876543210"},
      {"link":"https://www.googleapis.com/download/storage/v1/b/iex/o/data%2Ffeeds%2F20240315%2F20240315_IEXTP1_TOPS1.6.pcap.gz?generation=1710553921000000&alt=media",
       "date":"20240315","feed":"TOPS","version":"1.6","protocol":"IEXTP1","size":3123456789}
    ]"#;

    fn d() -> NaiveDate {
        NaiveDate::from_ymd_opt(2024, 3, 15).unwrap()
    }

    #[test]
    fn picks_tops_1_6_and_names_it() {
        let entries = parse_listing(LISTING, d(), "u").unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].size(), Some(9_876_543_210));
        assert_eq!(entries[1].size(), Some(3_123_456_789));
        let (e, v) = select_tops(&entries, d()).unwrap().unwrap();
        assert_eq!(v, TopsVersion::V1_6);
        assert!(e.link.contains("TOPS1.6"));
        let dest = destination(Path::new("/hist"), d(), v);
        assert_eq!(dest, Path::new("/hist/20240315_IEXTP1_TOPS1.6.pcap.gz"));
        assert_eq!(
            listing_url("https://iextrading.com/", d()),
            "https://iextrading.com/api/1.0/hist?date=20240315"
        );
    }

    #[test]
    fn prefers_1_6_over_1_5_and_takes_1_5_alone() {
        let body = r#"[{"link":"a","date":"20240315","feed":"TOPS","version":"1.5","protocol":"IEXTP1","size":"1"},
                       {"link":"b","date":"20240315","feed":"TOPS","version":"1.6","protocol":"IEXTP1","size":"1"}]"#;
        let entries = parse_listing(body, d(), "u").unwrap();
        assert_eq!(select_tops(&entries, d()).unwrap().unwrap().0.link, "b");
        let (e, v) = select_tops(&entries[..1], d()).unwrap().unwrap();
        assert_eq!((e.link.as_str(), v), ("a", TopsVersion::V1_5));
    }

    #[test]
    fn no_session_forms_and_errors() {
        for body in ["[]", "", "Not Found", r#"{"20240314":[]}"#] {
            let entries = parse_listing(body, d(), "u").unwrap();
            assert!(select_tops(&entries, d()).unwrap().is_none(), "{body}");
        }
        let whole = format!(r#"{{"20240315":{LISTING}}}"#);
        assert_eq!(parse_listing(&whole, d(), "u").unwrap().len(), 2);
        let deep_only = r#"[{"link":"a","date":"20240315","feed":"DEEP","version":"1.0","protocol":"IEXTP1","size":"1"}]"#;
        let err = select_tops(&parse_listing(deep_only, d(), "u").unwrap(), d()).unwrap_err();
        assert!(err.to_string().contains("DEEP 1.0"), "{err}");
        let err = parse_listing("<html>oops</html>", d(), "https://x/api").unwrap_err();
        assert!(err.to_string().contains("https://x/api") && err.to_string().contains("not JSON"));
        assert!(parse_listing("42", d(), "u").is_err());
    }
}
