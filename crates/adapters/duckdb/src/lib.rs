//! # marketpipe-duckdb
//!
//! The adapter behind the `QueryEngine` port (`marketpipe_ports::query`): SQL over the
//! Parquet lake through an in-process, in-memory DuckDB. It defines one view
//! per timeframe, `bars_1m`, `bars_5m`, `bars_15m`, `bars_30m`, `bars_1h`, `bars_4h` and
//! `bars_1d`, over the frame's files with `read_parquet` and Hive partitioning (so filters
//! on `symbol` and `year` skip whole directories); a frame without files is an empty view
//! with the same columns: `symbol`, `ts` (TIMESTAMPTZ), `open`, `high`, `low`, `close`
//! (DOUBLE), `volume`, `trade_count` (BIGINT), `vwap` (DOUBLE), `provider`, `feed`,
//! `ingested_at` (TIMESTAMPTZ), `year` and `month` (INTEGER; NULL for yearly frames).
//!
//! Only reading statements run, guarded twice: a statement guard that tokenizes the SQL
//! like DuckDB and refuses anything but one reading statement before anything runs
//! ([`QueryError::Refused`](marketpipe_ports::QueryError::Refused)), and DuckDB's own sandbox
//! (`allowed_directories` = the lake, `enable_external_access = false`, no extension
//! autoloading, `lock_configuration = true`), so that even a statement that slipped past the
//! guard could not read or write a file outside the lake or load an extension.
//!
//! DuckDB (bundled C++, the slowest build in the tree) lives in this leaf crate only; the
//! app depends on it behind its `query` feature. Among MarketPipe's crates it depends only on
//! `marketpipe-ports` and `marketpipe-domain`. The design: docs/architecture.md, Query engine.
//!
//! ```no_run
//! use marketpipe_duckdb::DuckDbEngine;
//! use marketpipe_ports::QueryEngine;
//!
//! # async fn run() -> Result<(), marketpipe_ports::QueryError> {
//! let engine = DuckDbEngine::open("data/lake".as_ref())?;
//! let result = engine
//!     .query("SELECT symbol, count(*) FROM bars_1m GROUP BY 1 ORDER BY 1", Some(100))
//!     .await?;
//! println!("{:?} {} rows", result.columns, result.rows.len());
//! # Ok(())
//! # }
//! ```

mod convert;
mod engine;
mod guard;
mod views;

pub use engine::DuckDbEngine;

#[cfg(test)]
mod tests;
