//! # marketpipe-domain
//!
//! The innermost ring of MarketPipe's hexagonal architecture: value objects (`Symbol`,
//! `Timestamp`, `Price`, `Timeframe`, ranges), entities and aggregates (`Bar`,
//! `IngestionJob`, `SymbolBarsAggregate`), domain events, the XNYS `TradingCalendar`, and the
//! pure domain services (`resample`, `vwap`, `daily_summary`, validation rules, the coverage
//! map's rules, the symbol master's normal form for symbols). It depends
//! on no other MarketPipe crate and performs no I/O: no files, no network, no async runtime,
//! no clock reads (callers pass `now`). Every other crate builds on these types.
//!
//! ```
//! use marketpipe_domain::{DateRange, TradingCalendar};
//!
//! let year = DateRange::parse("2024-01-01", "2024-12-31")?;
//! let sessions = TradingCalendar::xnys().sessions(year)?;
//! assert_eq!(sessions.len(), 252);
//! # Ok::<(), marketpipe_domain::DomainError>(())
//! ```

pub mod aggregate;
pub mod bar;
pub mod calendar;
pub mod coverage;
pub mod error;
pub mod events;
pub mod job;
pub mod price;
pub mod resample;
pub mod retry;
pub mod security;
pub mod span;
pub mod symbol;
pub mod time;
pub mod timeframe;
pub mod validation;

pub use aggregate::{DailySummary, SymbolBarsAggregate, VwapAccumulator, daily_summary, vwap};
pub use bar::Bar;
pub use calendar::{DayStatus, Session, SessionKind, TradingCalendar};
pub use coverage::{CoverageState, FetchReason, SessionCoverage};
pub use error::DomainError;
pub use events::DomainEvent;
pub use job::{
    IngestionJob, JobId, JobKind, JobOwner, JobSpec, JobState, JobStatus, WorkItem, WorkItemStatus,
};
pub use price::{PRICE_SCALE, Price};
pub use resample::{Resampler, bucket_start, resample};
pub use retry::RetryPolicy;
pub use security::{
    AssetType, Exchange, FinancialStatus, MasterRow, SecurityRecord, SecuritySymbol,
    SymbolConvention, SymbolSuffix, sector_of_sic,
};
pub use span::{Span, SpanUnit};
pub use symbol::Symbol;
pub use time::{DateRange, TimeRange, Timestamp};
pub use timeframe::{PartitionPeriod, Timeframe};
pub use validation::{Finding, RuleId, Severity, ValidationThresholds};
