//! # marketpipe-validation
//!
//! The validation context (docs/validation.md): it applies the domain's data-quality rules to the
//! stored bars of a job, or of symbols × dates, one symbol at a time (memory is bounded by one
//! symbol's range, not by the lake), with thresholds from the configuration and missing
//! minutes and sessions measured against the XNYS calendar. Each symbol's findings become a
//! report saved through the `ValidationReportRepository` port (CSV files and metadata rows in
//! the app); counts are recorded as metrics and the run is announced with
//! `ValidationCompleted` / `ValidationFailed`. It depends only on the ports and the domain.

mod runner;

pub use runner::{
    DEFAULT_CONCURRENCY, SymbolOutcome, ValidationDeps, ValidationError, ValidationRun,
    ValidationTarget, Validator,
};

#[cfg(test)]
mod tests;
