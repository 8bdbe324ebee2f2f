//! # marketpipe-nasdaq-trader
//!
//! A `SymbolMasterSource` over the Nasdaq Trader symbol directory: `nasdaqlisted.txt`
//! (Nasdaq listings) and `otherlisted.txt` (NYSE, NYSE American, NYSE Arca, Cboe BZX and IEX
//! listings), read from a local directory or fetched from an HTTP base URL (the public mirror
//! is `https://www.nasdaqtrader.com/dynamic/SymDir/`). The files are pipe-delimited with an
//! exact header line and a `File Creation Time:` trailer; a file without the trailer is a
//! truncated download and is refused. Symbols are put in the domain's normal form
//! (`SecuritySymbol`): `otherlisted.txt` is read from its CQS column (both the old `/` and the
//! new `.` separators), `nasdaqlisted.txt` symbols are kept whole.

mod parse;

use std::fmt;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use chrono::NaiveDate;
use marketpipe_ports::{MasterSnapshot, ProviderError, SymbolMasterSource};
use marketpipe_provider_kit::{HttpClient, HttpClientConfig, SetupError};
use url::Url;

pub use parse::{ListingFile, ParseError, ParsedFile, parse_listing};

/// The source's registry name.
pub const SOURCE_NAME: &str = "nasdaq-trader";

/// The public HTTPS mirror of the symbol directory.
pub const DEFAULT_BASE_URL: &str = "https://www.nasdaqtrader.com/dynamic/SymDir/";

/// Where the two files are read from.
enum Location {
    Dir(PathBuf),
    Http(HttpClient),
}

/// The Nasdaq Trader symbol directory as a symbol-master source.
pub struct NasdaqTraderSource {
    location: Location,
}

impl fmt::Debug for NasdaqTraderSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.location {
            Location::Dir(dir) => f
                .debug_struct("NasdaqTraderSource")
                .field("dir", dir)
                .finish(),
            Location::Http(client) => f
                .debug_struct("NasdaqTraderSource")
                .field("base_url", &client.base_url().path())
                .finish(),
        }
    }
}

impl NasdaqTraderSource {
    /// Reads `nasdaqlisted.txt` and `otherlisted.txt` from `dir`.
    pub fn from_dir(dir: impl Into<PathBuf>) -> Self {
        Self {
            location: Location::Dir(dir.into()),
        }
    }

    /// Fetches the two files from `base_url` (a directory URL; a missing trailing `/` is
    /// added), with provider-kit's retries and timeouts.
    pub fn from_url(mut base_url: Url) -> Result<Self, SetupError> {
        if !base_url.path().ends_with('/') {
            let path = format!("{}/", base_url.path());
            base_url.set_path(&path);
        }
        let client = HttpClient::new(HttpClientConfig::new(SOURCE_NAME, base_url))?;
        Ok(Self {
            location: Location::Http(client),
        })
    }

    /// `from_dir` for a path, `from_url` for an `http://` or `https://` URL.
    pub fn from_location(location: &str) -> Result<Self, SetupError> {
        if location.starts_with("http://") || location.starts_with("https://") {
            let url = Url::parse(location).map_err(|e| SetupError::InvalidBaseUrl {
                provider: SOURCE_NAME.into(),
                setting: "--from".into(),
                value: location.to_owned(),
                reason: e.to_string(),
                example: DEFAULT_BASE_URL.into(),
            })?;
            Self::from_url(url)
        } else {
            Ok(Self::from_dir(location))
        }
    }

    async fn read(&self, file: ListingFile) -> Result<String, ProviderError> {
        match &self.location {
            Location::Dir(dir) => read_local(&dir.join(file.file_name())).await,
            Location::Http(client) => {
                let url = client.endpoint(&[file.file_name()]);
                let response = client.get(url, &[], &|_, _| None).await?;
                String::from_utf8(response.body.to_vec()).map_err(|e| ProviderError::Malformed {
                    provider: SOURCE_NAME.into(),
                    message: format!("{} is not UTF-8 text", file.file_name()),
                    source: Some(Box::new(e)),
                })
            }
        }
    }
}

async fn read_local(path: &Path) -> Result<String, ProviderError> {
    match tokio::fs::read(path).await {
        Ok(bytes) => String::from_utf8(bytes).map_err(|e| ProviderError::Malformed {
            provider: SOURCE_NAME.into(),
            message: format!("{} is not UTF-8 text", path.display()),
            source: Some(Box::new(e)),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(ProviderError::NotFound {
            provider: SOURCE_NAME.into(),
            what: format!(
                "{} (the directory must hold nasdaqlisted.txt and otherlisted.txt)",
                path.display()
            ),
        }),
        Err(e) => Err(ProviderError::Transient {
            provider: SOURCE_NAME.into(),
            message: format!("cannot read {}: {e}", path.display()),
            source: Some(Box::new(e)),
        }),
    }
}

#[async_trait]
impl SymbolMasterSource for NasdaqTraderSource {
    fn name(&self) -> &str {
        SOURCE_NAME
    }

    /// The files list today's securities only; `as_of` is not used here (the caller dates
    /// the snapshot, by default from the files' trailer).
    async fn list_securities(
        &self,
        _as_of: Option<NaiveDate>,
    ) -> Result<MasterSnapshot, ProviderError> {
        let mut securities = Vec::new();
        let mut skipped = Vec::new();
        let mut created_on = None;
        for file in [ListingFile::NasdaqListed, ListingFile::OtherListed] {
            let text = self.read(file).await?;
            let parsed = parse_listing(file, &text).map_err(|e| ProviderError::Malformed {
                provider: SOURCE_NAME.into(),
                message: e.to_string(),
                source: Some(Box::new(e)),
            })?;
            created_on = created_on.max(Some(parsed.created_on));
            securities.extend(parsed.securities);
            skipped.extend(parsed.skipped);
        }
        Ok(MasterSnapshot {
            source: SOURCE_NAME.into(),
            created_on,
            securities,
            skipped,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NASDAQ: &str = "Symbol|Security Name|Market Category|Test Issue|Financial Status|Round Lot Size|ETF|NextShares\n\
AAPL|Apple Inc. - Common Stock|Q|N|N|100|N|N\n\
File Creation Time: 1126202621:31|||||||\n";
    const OTHER: &str = "ACT Symbol|Security Name|Exchange|CQS Symbol|ETF|Round Lot Size|Test Issue|NASDAQ Symbol\r\n\
BRK.B|Berkshire Hathaway Inc. New Common Stock|N|BRK.B|N|100|N|BRK.B\r\n\
File Creation Time: 1127202621:31||||||\r\n";

    #[tokio::test]
    async fn a_directory_gives_both_files_and_the_later_trailer_date() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("nasdaqlisted.txt"), NASDAQ).unwrap();
        std::fs::write(dir.path().join("otherlisted.txt"), OTHER).unwrap();
        let source = NasdaqTraderSource::from_location(dir.path().to_str().unwrap()).unwrap();
        let snapshot = source.list_securities(None).await.unwrap();
        let symbols: Vec<&str> = snapshot
            .securities
            .iter()
            .map(|s| s.symbol.as_str())
            .collect();
        assert_eq!(symbols, ["AAPL", "BRK.B"]);
        assert_eq!(snapshot.created_on, NaiveDate::from_ymd_opt(2026, 11, 27));
        assert!(format!("{source:?}").contains("dir"));
    }

    #[tokio::test]
    async fn a_missing_or_truncated_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("nasdaqlisted.txt"), NASDAQ).unwrap();
        let source = NasdaqTraderSource::from_dir(dir.path());
        let err = source.list_securities(None).await.unwrap_err();
        assert!(matches!(err, ProviderError::NotFound { .. }), "{err}");
        assert!(err.to_string().contains("otherlisted.txt"), "{err}");
        let cut = &OTHER[..OTHER.find("File Creation").unwrap()];
        std::fs::write(dir.path().join("otherlisted.txt"), cut).unwrap();
        let err = source.list_securities(None).await.unwrap_err();
        assert!(matches!(err, ProviderError::Malformed { .. }), "{err}");
        assert!(err.to_string().contains("otherlisted.txt"), "{err}");
        assert!(err.to_string().contains("trailer"), "{err}");
    }

    #[test]
    fn a_url_location_gets_a_trailing_slash() {
        let source = NasdaqTraderSource::from_location("http://127.0.0.1:9/SymDir").unwrap();
        assert!(format!("{source:?}").contains("/SymDir/"), "{source:?}");
        assert!(NasdaqTraderSource::from_location("http://[bad").is_err());
    }
}
