//! `IexHistProvider`: the `MarketDataProvider` over a directory of HIST files.

use std::path::{Path, PathBuf};
use std::time::Instant;

use async_trait::async_trait;
use chrono::NaiveDate;
use marketpipe_domain::calendar::ny_date;
use marketpipe_domain::{Session, Timeframe, TradingCalendar};
use marketpipe_ports::{
    Adjustment, BarPage, BarRequest, MarketDataProvider, PageCursor, ProviderError, ProviderInfo,
};
use tracing::{info, warn};

use crate::day::{DayRead, ReadOptions, read_day};
use crate::error::ReadError;
use crate::files::{HIST_DIR_ENV, candidates, fetch_command, locate};

/// The registry name.
pub const NAME: &str = "iex";

/// Symbols one request may carry: one file read serves them all, so requests should be
/// large.
pub const MAX_SYMBOLS_PER_REQUEST: usize = 1000;

/// Bars one page may carry: a page is one session date (at most 960 extended-hours
/// minutes) for every requested symbol.
pub const MAX_PAGE_SIZE: usize = MAX_SYMBOLS_PER_REQUEST * 960;

/// The first date of the HIST archive.
pub const HISTORY_START: NaiveDate = match NaiveDate::from_ymd_opt(2016, 12, 12) {
    Some(d) => d,
    None => NaiveDate::MIN,
};

/// What a sequence gap in a file does to a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GapPolicy {
    /// Return the bars and log a warning naming the file, the byte position and the missing
    /// sequence numbers (the default: the published file will not get better by retrying,
    /// and a gap is rare and local).
    #[default]
    Warn,
    /// Fail the page with `ProviderError::Malformed`.
    Fail,
}

/// 1-minute bars built from IEX HIST TOPS files in a local directory. One page is one
/// session date for all requested symbols; the cursor is the next date (`YYYY-MM-DD`).
/// Dates without a session (weekends, holidays) and dates before [`HISTORY_START`] are
/// skipped; a session date without a file is `ProviderError::NotFound` naming the file, the
/// directory and the `mp iex fetch` command. Only Raw adjustment, the `iex` feed (or none)
/// and 1m bars are offered; `page_size` is ignored.
#[derive(Debug, Clone)]
pub struct IexHistProvider {
    hist_dir: PathBuf,
    options: ReadOptions,
    gap_policy: GapPolicy,
    calendar: TradingCalendar,
}

impl IexHistProvider {
    /// A provider reading the files of `hist_dir` (config `providers.iex.hist_dir` or env
    /// `MP_IEX_HIST_DIR`).
    pub fn new(hist_dir: impl Into<PathBuf>) -> Self {
        Self {
            hist_dir: hist_dir.into(),
            options: ReadOptions::default(),
            gap_policy: GapPolicy::default(),
            calendar: TradingCalendar::xnys(),
        }
    }

    /// Sets how files are read (break window, price policy, version hint).
    #[must_use]
    pub const fn with_read_options(mut self, options: ReadOptions) -> Self {
        self.options = options;
        self
    }

    /// Sets what a sequence gap does.
    #[must_use]
    pub const fn with_gap_policy(mut self, policy: GapPolicy) -> Self {
        self.gap_policy = policy;
        self
    }

    /// The HIST directory.
    pub fn hist_dir(&self) -> &Path {
        &self.hist_dir
    }

    /// The first session date in `[from, last]`, if any.
    fn first_session(
        &self,
        from: NaiveDate,
        last: NaiveDate,
    ) -> Result<Option<Session>, ProviderError> {
        let mut d = from.max(HISTORY_START);
        while d <= last {
            if let Some(s) = self
                .calendar
                .session(d)
                .map_err(|e| bad_request(e.to_string()))?
            {
                return Ok(Some(s));
            }
            match d.succ_opt() {
                Some(n) => d = n,
                None => break,
            }
        }
        Ok(None)
    }

    fn missing_file(&self, date: NaiveDate) -> ProviderError {
        let expected = candidates(&self.hist_dir, date)
            .first()
            .and_then(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        ProviderError::NotFound {
            provider: NAME.into(),
            what: format!(
                "no IEX HIST TOPS file for {date}: expected {expected} (or .pcap, TOPS1.5, or inside {}/) in {}; download it with `{}`",
                date.format("%Y%m%d"),
                self.hist_dir.display(),
                fetch_command(date)
            ),
        }
    }

    fn check_request(request: &BarRequest) -> Result<(), ProviderError> {
        if request.timeframe != Timeframe::M1 {
            return Err(ProviderError::Unsupported {
                provider: NAME.into(),
                what: format!("timeframe {} (IEX HIST serves 1m bars)", request.timeframe),
            });
        }
        if request.adjustment != Adjustment::Raw {
            return Err(ProviderError::Unsupported {
                provider: NAME.into(),
                what: format!(
                    "adjustment {:?} (IEX HIST trades are as traded: raw only)",
                    request.adjustment
                ),
            });
        }
        if let Some(feed) = request.feed.as_deref()
            && feed != "iex"
        {
            return Err(ProviderError::Unsupported {
                provider: NAME.into(),
                what: format!("feed {feed} (IEX HIST has the iex feed only)"),
            });
        }
        if request.symbols.is_empty() || request.symbols.len() > MAX_SYMBOLS_PER_REQUEST {
            return Err(bad_request(format!(
                "a request carries 1 to {MAX_SYMBOLS_PER_REQUEST} symbols, not {}",
                request.symbols.len()
            )));
        }
        Ok(())
    }

    fn page_from_read(
        &self,
        request: &BarRequest,
        session: &Session,
        read: DayRead,
    ) -> Result<Vec<marketpipe_domain::Bar>, ProviderError> {
        if let Some(damage) = read.damage {
            let retryable = matches!(damage, ReadError::Io { .. });
            let message = format!(
                "{damage} ({} complete bars read before it); download the file again with `{}`",
                read.bars.len(),
                fetch_command(session.date)
            );
            return Err(if retryable {
                ProviderError::Transient {
                    provider: NAME.into(),
                    message,
                    source: Some(Box::new(damage)),
                }
            } else {
                ProviderError::Malformed {
                    provider: NAME.into(),
                    message,
                    source: Some(Box::new(damage)),
                }
            });
        }
        if let Some(first) = read.gaps.first() {
            let missing: i64 = read.gaps.iter().map(crate::error::Gap::missing).sum();
            if self.gap_policy == GapPolicy::Fail {
                return Err(ProviderError::Malformed {
                    provider: NAME.into(),
                    message: format!(
                        "{first}; {} gaps, {missing} messages missing in total",
                        read.gaps.len()
                    ),
                    source: None,
                });
            }
            warn!(
                file = %read.file,
                gaps = read.gaps.len(),
                missing,
                "the day's bars are built from a file with sequence gaps (first: {first})"
            );
        }
        let (start, end) = session.bounds(request.session);
        Ok(read
            .bars
            .into_iter()
            .filter(|b| start <= b.ts && b.ts < end && request.range.contains(b.ts))
            .collect())
    }
}

fn bad_request(message: String) -> ProviderError {
    ProviderError::BadRequest {
        provider: NAME.into(),
        message,
    }
}

fn parse_cursor(cursor: &PageCursor) -> Result<NaiveDate, ProviderError> {
    NaiveDate::parse_from_str(&cursor.0, "%Y-%m-%d").map_err(|_| {
        bad_request(format!(
            "invalid page cursor {:?} (expected YYYY-MM-DD)",
            cursor.0
        ))
    })
}

#[async_trait]
impl MarketDataProvider for IexHistProvider {
    fn info(&self) -> ProviderInfo {
        ProviderInfo {
            name: NAME.into(),
            display_name: "IEX HIST (exchange TOPS captures, local files)".into(),
            feeds: vec!["iex".into()],
            default_feed: Some("iex".into()),
            max_symbols_per_request: MAX_SYMBOLS_PER_REQUEST,
            max_page_size: MAX_PAGE_SIZE,
            rate_limit: None,
            history_start: Some(HISTORY_START),
            requires_credentials: false,
            supports_extended_hours: true,
            retries_internally: false,
        }
    }

    async fn fetch_bars(&self, request: &BarRequest) -> Result<BarPage, ProviderError> {
        Self::check_request(request)?;
        if request.range.is_empty() {
            return Ok(BarPage::default());
        }
        let first = ny_date(request.range.start());
        let last = ny_date(request.range.end().saturating_add_nanos(-1));
        let from = match &request.cursor {
            Some(c) => parse_cursor(c)?,
            None => first,
        };
        let Some(session) = self.first_session(from, last)? else {
            return Ok(BarPage::default());
        };
        let dir = self.hist_dir.clone();
        let date = session.date;
        let symbols = request.symbols.clone();
        let options = self.options;
        let started = Instant::now();
        let read = tokio::task::spawn_blocking(move || {
            let Some(path) = locate(&dir, date) else {
                return Ok(None);
            };
            read_day(&path, &symbols, &options).map(Some)
        })
        .await
        .map_err(|e| ProviderError::Malformed {
            provider: NAME.into(),
            message: format!("the reader of {date} failed: {e}"),
            source: None,
        })?;
        let read = match read {
            Ok(Some(r)) => r,
            Ok(None) => return Err(self.missing_file(date)),
            Err(ReadError::Open { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                return Err(self.missing_file(date));
            }
            Err(e) => {
                return Err(ProviderError::Transient {
                    provider: NAME.into(),
                    message: e.to_string(),
                    source: Some(Box::new(e)),
                });
            }
        };
        info!(
            file = %read.file,
            bars = read.bars.len(),
            bytes = read.stats.bytes,
            trades = read.stats.build.trades,
            elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            "read IEX HIST day"
        );
        let bars = self.page_from_read(request, &session, read)?;
        let next = match date.succ_opt() {
            Some(n) => self
                .first_session(n, last)?
                .map(|s| PageCursor(s.date.format("%Y-%m-%d").to_string())),
            None => None,
        };
        Ok(BarPage {
            bars,
            next,
            ..BarPage::default()
        })
    }

    async fn test_connection(&self) -> Result<(), ProviderError> {
        if self.hist_dir.is_dir() {
            Ok(())
        } else {
            Err(ProviderError::NotFound {
                provider: NAME.into(),
                what: format!(
                    "HIST directory {} does not exist; set providers.iex.hist_dir or {HIST_DIR_ENV}, then download days with `mp iex fetch --date YYYY-MM-DD`",
                    self.hist_dir.display()
                ),
            })
        }
    }
}
