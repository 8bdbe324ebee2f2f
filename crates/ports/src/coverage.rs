//! The coverage-map port: what each provider answered for each (symbol, session) of the 1m
//! frame (see `marketpipe_domain::coverage`), kept by every ingest and backfill.

use std::fmt;

use async_trait::async_trait;
use chrono::NaiveDate;
use marketpipe_domain::{CoverageState, DateRange, SessionCoverage, Symbol};
use serde::{Deserialize, Serialize};

use crate::error::RepositoryError;

/// Which entries to read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CoverageQuery {
    /// Only this provider's entries (`None`: every provider's).
    pub provider: Option<String>,
    /// With `provider`, only this feed's entries (`None` matches entries without a feed).
    pub feed: Option<String>,
    /// Only these symbols (empty: every symbol).
    pub symbols: Vec<Symbol>,
    /// Only sessions in this range (`None`: all).
    pub dates: Option<DateRange>,
}

/// What a retention prune removed from the coverage map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CoveragePruned {
    /// Entries removed.
    pub entries: u64,
}

/// The coverage map.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait CoverageRepository: Send + Sync + fmt::Debug {
    /// Inserts or replaces entries, keyed by (provider, feed, symbol, date, hours). A
    /// `failed` entry never replaces an answered one: the provider's last answer (and the
    /// bars it put in the lake) still stands.
    async fn record_coverage(&self, entries: &[SessionCoverage]) -> Result<(), RepositoryError>;

    /// The entries matching `query`, by symbol, then date, then provider.
    async fn coverage(
        &self,
        query: &CoverageQuery,
    ) -> Result<Vec<SessionCoverage>, RepositoryError>;

    /// Removes the entries of `symbols` (empty: all) for sessions before `before`, or, with
    /// `dry_run`, only counts them.
    async fn prune_coverage(
        &self,
        symbols: &[Symbol],
        before: NaiveDate,
        dry_run: bool,
    ) -> Result<CoveragePruned, RepositoryError>;
}

/// Counts per state, for reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CoverageCounts {
    /// `filled` sessions.
    pub filled: u64,
    /// `partial` sessions.
    pub partial: u64,
    /// `empty_confirmed` sessions.
    pub empty_confirmed: u64,
    /// `failed` sessions.
    pub failed: u64,
}

impl CoverageCounts {
    /// Counts one entry's state.
    pub const fn add(&mut self, state: CoverageState) {
        match state {
            CoverageState::Filled => self.filled += 1,
            CoverageState::Partial => self.partial += 1,
            CoverageState::EmptyConfirmed => self.empty_confirmed += 1,
            CoverageState::Failed => self.failed += 1,
        }
    }

    /// Every counted session.
    pub const fn total(&self) -> u64 {
        self.filled + self.partial + self.empty_confirmed + self.failed
    }
}
