//! The domain's one error type.

use chrono::NaiveDate;
use thiserror::Error;

/// Why a value, a transition or a computation was rejected by the domain.
///
/// Every variant carries the offending value so that a user-facing message can name it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DomainError {
    /// A ticker symbol that is not 1–21 characters of `A-Z`, `0-9`, inner `.` or `-`.
    #[error("invalid symbol {value:?}: {reason}")]
    InvalidSymbol {
        /// The rejected input, as given.
        value: String,
        /// What rule it broke.
        reason: &'static str,
    },
    /// A price that is NaN, infinite, negative or too large for 9-decimal fixed point.
    #[error("invalid price {value}: {reason}")]
    InvalidPrice {
        /// The rejected input, rendered as text.
        value: String,
        /// What rule it broke.
        reason: &'static str,
    },
    /// A range whose start lies after its end.
    #[error("invalid range: start {start} is after end {end}")]
    InvalidRange {
        /// The start, rendered as text.
        start: String,
        /// The end, rendered as text.
        end: String,
    },
    /// A timeframe string that is not one of 1m, 5m, 15m, 30m, 1h, 4h, 1d.
    #[error("invalid timeframe {value:?}: expected one of 1m, 5m, 15m, 30m, 1h, 4h, 1d")]
    InvalidTimeframe {
        /// The rejected input.
        value: String,
    },
    /// A timestamp that cannot be represented (out of the i64-nanosecond range).
    #[error("invalid timestamp {value:?}: {reason}")]
    InvalidTimestamp {
        /// The rejected input.
        value: String,
        /// What rule it broke.
        reason: &'static str,
    },
    /// A date that is not `YYYY-MM-DD`.
    #[error("invalid date {value:?}: expected YYYY-MM-DD, e.g. 2024-01-02")]
    InvalidDate {
        /// The rejected input.
        value: String,
    },
    /// A date outside the years the trading calendar knows.
    #[error("date {date} is outside the XNYS calendar's supported years {first}-{last}")]
    CalendarOutOfRange {
        /// The date asked for.
        date: NaiveDate,
        /// First supported year.
        first: i32,
        /// Last supported year.
        last: i32,
    },
    /// A job identifier that is empty, too long or not made of `[A-Za-z0-9_-]`.
    #[error("invalid job id {value:?}: use 1-64 characters of letters, digits, '-' or '_'")]
    InvalidJobId {
        /// The rejected input.
        value: String,
    },
    /// A state-machine transition that the current state does not allow.
    #[error("job {job_id}: cannot {action} a job that is {state}")]
    InvalidTransition {
        /// The job.
        job_id: String,
        /// Its current state.
        state: &'static str,
        /// What was attempted.
        action: &'static str,
    },
    /// A work item index that the job does not have.
    #[error("job {job_id} has no work item {index}")]
    UnknownWorkItem {
        /// The job.
        job_id: String,
        /// The index asked for.
        index: usize,
    },
    /// A bar that an aggregate or service cannot accept (wrong symbol, order, session).
    #[error("bar {symbol} at {ts} rejected: {reason}")]
    BarRejected {
        /// The bar's symbol.
        symbol: String,
        /// The bar's timestamp (RFC 3339).
        ts: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A coverage state name that is not one of the four.
    #[error(
        "unknown coverage state {value:?}: expected filled, partial, empty_confirmed or failed"
    )]
    InvalidCoverageState {
        /// The rejected input.
        value: String,
    },
    /// A duration that is not a count followed by d, w, m or y.
    #[error("invalid duration {value:?}: {reason} (e.g. 30d, 6w, 18m, 5y)")]
    InvalidDuration {
        /// The rejected input.
        value: String,
        /// What rule it broke.
        reason: &'static str,
    },
    /// A vendor's spelling of a security's symbol that its convention does not define.
    #[error("cannot read {convention} symbol {value:?}: {reason}")]
    InvalidVendorSymbol {
        /// The vendor text.
        value: String,
        /// The convention it was read in (`CQS`, `ACT`, `SEC`, …).
        convention: &'static str,
        /// What rule it broke.
        reason: &'static str,
    },
    /// A name that is not one of a closed list (an exchange, an asset type, a status).
    #[error("unknown {what} {value:?}: expected one of {expected}")]
    UnknownName {
        /// What kind of name.
        what: &'static str,
        /// The rejected input.
        value: String,
        /// The accepted names.
        expected: &'static str,
    },
    /// An operation that needs at least one bar got none.
    #[error("{what} needs at least one bar")]
    NoBars {
        /// The operation.
        what: &'static str,
    },
}

/// Result alias for domain operations.
pub type Result<T, E = DomainError> = std::result::Result<T, E>;
