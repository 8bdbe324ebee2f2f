//! # marketpipe-ports
//!
//! The second ring of MarketPipe's hexagonal architecture: the async traits through which
//! the contexts (ingestion, aggregation, validation, universe) reach the outside world, and which the
//! adapters (providers, the Parquet lake, SQLite/PostgreSQL, DuckDB) implement. It depends
//! only on `marketpipe-domain` and performs no I/O itself.
//!
//! Every port is `Send + Sync + Debug` and object safe, so the app wires concrete adapters as
//! `Arc<dyn Port>`. Errors are typed enums that tell retryable failures from permanent ones
//! (`is_retryable()`) and carry an adapter's own error only as a boxed source. With the
//! `mocks` feature, each trait has a `mockall` mock (`MockMarketDataProvider`, …) for other
//! crates' tests.

pub mod coverage;
pub mod error;
pub mod events;
pub mod lake;
pub mod layout;
pub mod metadata;
pub mod provider;
pub mod query;
pub mod telemetry;
pub mod universe;

pub use coverage::{CoverageCounts, CoveragePruned, CoverageQuery, CoverageRepository};
pub use error::{BoxError, LakeError, ProviderError, PublishError, QueryError, RepositoryError};
pub use events::{
    Clock, CollectingPublisher, EventPublisher, FixedClock, OwnerProbe, ShiftedClock, SystemClock,
    owner_alive, owner_status,
};
pub use lake::{
    BarBatchStream, BarOrigin, BarQuery, BarSource, BarStore, IntegrityDepth, IntegrityProblem,
    IntegrityReport, LAKE_FORMAT_VERSION, OrphanFile, OrphanKind, PartitionDigest, PartitionInfo,
    PartitionKey, PruneOutcome, SourcedBars, StoredFormat, WriteMeta, WriteOutcome,
};
pub use metadata::{
    DailySummaryRepository, JobRepository, JobSummary, MetadataPruned, MetadataRetention,
    MetricSample, MetricsRepository, PartitionManifest, PartitionRecord, ReportSummary,
    ValidationReport, ValidationReportRepository, WorkItemRepository,
};
pub use provider::{
    Adjustment, BarPage, BarRequest, FetchStats, MarketDataProvider, PageCursor, ProviderInfo,
    RateLimit,
};
pub use query::{Cell, QueryEngine, QueryResult};
pub use telemetry::{MetricDef, MetricKind, Series, SeriesValue};
pub use universe::{
    Exclusion, MasterSnapshot, MasterUpdate, SkippedListing, SnapshotInfo, SymbolMasterRepository,
    SymbolMasterSource, UniverseEntry, UniverseInfo, UniverseRepository, UniverseSnapshot,
};

#[cfg(any(test, feature = "mocks"))]
pub use coverage::MockCoverageRepository;
#[cfg(any(test, feature = "mocks"))]
pub use events::{MockClock, MockEventPublisher, MockOwnerProbe};
#[cfg(any(test, feature = "mocks"))]
pub use lake::MockBarStore;
#[cfg(any(test, feature = "mocks"))]
pub use metadata::{
    MockDailySummaryRepository, MockJobRepository, MockMetadataRetention, MockMetricsRepository,
    MockPartitionManifest, MockValidationReportRepository, MockWorkItemRepository,
};
#[cfg(any(test, feature = "mocks"))]
pub use provider::MockMarketDataProvider;
#[cfg(any(test, feature = "mocks"))]
pub use query::MockQueryEngine;
#[cfg(any(test, feature = "mocks"))]
pub use universe::{MockSymbolMasterRepository, MockSymbolMasterSource, MockUniverseRepository};
