//! Ports of the symbol master and of universes: where securities come from
//! ([`SymbolMasterSource`]), where their history is kept ([`SymbolMasterRepository`]), and
//! where built universes are kept ([`UniverseRepository`]).

use std::fmt;

use async_trait::async_trait;
use chrono::NaiveDate;
use marketpipe_domain::{AssetType, Exchange, MasterRow, SecurityRecord, Symbol, Timestamp};
use serde::{Deserialize, Serialize};

use crate::error::{ProviderError, RepositoryError};

/// A listing a source served that could not be read as a security (an unknown symbol
/// suffix, say). Never dropped silently: the update reports each one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedListing {
    /// The symbol as the source wrote it.
    pub vendor_symbol: String,
    /// Why it was skipped.
    pub reason: String,
}

/// What a source lists on one day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MasterSnapshot {
    /// The source's registry name (`nasdaq-trader`, `alpaca`, `polygon`).
    pub source: String,
    /// The date the source says the list was made (the Nasdaq Trader files' trailer), when it
    /// says.
    pub created_on: Option<NaiveDate>,
    /// The securities, in the source's order.
    pub securities: Vec<SecurityRecord>,
    /// Listings that were not read.
    pub skipped: Vec<SkippedListing>,
}

/// A source of the symbol master.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait SymbolMasterSource: Send + Sync + fmt::Debug {
    /// The source's registry name.
    fn name(&self) -> &str;

    /// Whether the source can list the securities of a past date (Polygon's `date=`);
    /// otherwise it only has the current list, and a snapshot cannot be dated earlier than
    /// the day that list was made.
    fn point_in_time(&self) -> bool {
        false
    }

    /// The securities listed on `as_of` (the current list when `None`, or when the source
    /// only has the current list, as the Nasdaq Trader files).
    async fn list_securities(
        &self,
        as_of: Option<NaiveDate>,
    ) -> Result<MasterSnapshot, ProviderError>;
}

/// One loaded snapshot of a source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotInfo {
    /// The source.
    pub source: String,
    /// The date it describes.
    pub as_of: NaiveDate,
    /// When it was loaded.
    pub loaded_at: Timestamp,
    /// Securities in it.
    pub securities: u64,
    /// Rows it opened (new or changed securities).
    pub opened: u64,
    /// Rows it closed (securities gone or changed).
    pub closed: u64,
}

/// A snapshot's changes to one source's history, applied together.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MasterUpdate {
    /// The snapshot.
    pub info: SnapshotInfo,
    /// Symbols whose current row ends on `info.as_of` (gone or changed).
    pub close: Vec<Symbol>,
    /// Rows that start on `info.as_of` (new or changed).
    pub open: Vec<SecurityRecord>,
    /// Whether this replaces an earlier load of the same date: that load's rows are undone
    /// first (rows it opened removed, rows it closed reopened), and its counts replaced.
    pub replaces_day: bool,
}

/// The symbol master's history (SCD type 2): one row per source, symbol and attributes, with
/// the dates it was valid.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait SymbolMasterRepository: Send + Sync + fmt::Debug {
    /// Every loaded snapshot, by source and date.
    async fn snapshots(&self) -> Result<Vec<SnapshotInfo>, RepositoryError>;
    /// A source's current rows (no end date).
    async fn current_rows(&self, source: &str) -> Result<Vec<MasterRow>, RepositoryError>;
    /// Applies a snapshot in one transaction: with `replaces_day`, first undoes the earlier
    /// load of the same date (removes the rows it opened, reopens the rows it closed); then
    /// closes the rows of `close` on `as_of`, opens the rows of `open`, and records the
    /// snapshot (replacing the same date's record).
    async fn apply_snapshot(&self, update: &MasterUpdate) -> Result<(), RepositoryError>;
    /// Every source's rows valid on `date`, by symbol.
    async fn rows_valid_on(&self, date: NaiveDate) -> Result<Vec<MasterRow>, RepositoryError>;
    /// Every row of `symbol`, by source and start.
    async fn history(&self, symbol: Symbol) -> Result<Vec<MasterRow>, RepositoryError>;
}

/// Why a candidate is not in a universe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exclusion {
    /// The filter that excluded it (`exchanges`, `price`, `max_symbols`, …).
    pub filter: String,
    /// What it found (`close 3.20 is below 5`, `no bars on or before 2024-06-28`).
    pub reason: String,
}

/// One candidate of a built universe: a member (with its rank) or excluded (with why).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UniverseEntry {
    /// The symbol.
    pub symbol: Symbol,
    /// Its name in the master.
    pub name: Option<String>,
    /// Its exchange in the master.
    pub exchange: Option<Exchange>,
    /// Its asset type in the master.
    pub asset_type: Option<AssetType>,
    /// The last session close on or before the as-of date.
    pub price: Option<f64>,
    /// The mean of the sessions' dollar volume.
    pub avg_dollar_volume: Option<f64>,
    /// The mean of the sessions' volume.
    pub avg_volume: Option<f64>,
    /// The market capitalisation, when a source has it.
    pub market_cap: Option<f64>,
    /// The coarse sector, when a source has it.
    pub sector: Option<String>,
    /// 1 for the first member; `None` when excluded.
    pub rank: Option<u32>,
    /// Why it is not a member; `None` for members.
    pub excluded: Option<Exclusion>,
}

/// A built universe: its members and the candidates it excluded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UniverseSnapshot {
    /// The date it describes (one universe per date).
    pub as_of: NaiveDate,
    /// The filters' name.
    pub name: String,
    /// The filters file as given.
    pub filters: String,
    /// When it was built.
    pub built_at: Timestamp,
    /// Members by rank, then the excluded candidates by symbol.
    pub entries: Vec<UniverseEntry>,
}

impl UniverseSnapshot {
    /// The members, by rank.
    pub fn members(&self) -> impl Iterator<Item = &UniverseEntry> {
        self.entries.iter().filter(|e| e.rank.is_some())
    }

    /// The members' symbols, by rank.
    pub fn member_symbols(&self) -> Vec<Symbol> {
        self.members().map(|e| e.symbol).collect()
    }
}

/// A stored universe, as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UniverseInfo {
    /// The date it describes.
    pub as_of: NaiveDate,
    /// The filters' name.
    pub name: String,
    /// When it was built.
    pub built_at: Timestamp,
    /// Members.
    pub members: u64,
    /// Candidates considered (members and excluded).
    pub candidates: u64,
}

/// Built universes.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait UniverseRepository: Send + Sync + fmt::Debug {
    /// Stores a universe, replacing one of the same date.
    async fn save(&self, universe: &UniverseSnapshot) -> Result<(), RepositoryError>;
    /// Every stored universe, by date.
    async fn list(&self) -> Result<Vec<UniverseInfo>, RepositoryError>;
    /// The universe of `as_of`.
    async fn get(&self, as_of: NaiveDate) -> Result<Option<UniverseSnapshot>, RepositoryError>;
}
