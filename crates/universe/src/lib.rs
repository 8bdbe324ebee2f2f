//! # marketpipe-universe
//!
//! The universe context: which securities exist on a date, and which of them a researcher's
//! filters select. It keeps the **symbol master** with history (one row per source, symbol
//! and attributes, valid from one date to another: SCD type 2), loaded from any
//! `SymbolMasterSource` ([`update_symbols`]); reads **`filters.yml`** ([`FilterSpec`]); and
//! builds **point-in-time universes** ([`build_universe`]) from only what was known on the
//! as-of date: master rows valid then and the daily summaries of sessions up to then (the
//! ones the ingest records for every session it writes to the lake), so that a backtest never
//! looks into the future. Universes are kept in the metadata store, compared
//! ([`diff_universes`]) and written as CSV ([`universe_csv`]). Everything goes through ports;
//! this crate does no I/O of its own.

mod build;
mod error;
mod filters;
mod master;

pub use build::{
    UNIVERSE_CSV_HEADER, UniverseDiff, UniverseSelector, build_universe, diff_universes,
    list_universes, store_universe, universe_csv, universe_of,
};
pub use error::UniverseError;
pub use filters::{
    AverageFilter, Bounds, DEFAULT_SESSIONS, FILTERS_VERSION, FilterError, FilterSpec,
    SectorFilter, SortKey,
};
pub use master::{
    SymbolUpdateReport, UniverseDeps, list_symbols, merged_records, primary_source, symbol_history,
    update_symbols,
};
