//! # marketpipe-testkit
//!
//! Dev-only helpers for tests that must not reach the internet: a provider simulator (a real
//! HTTP server on `127.0.0.1:0` speaking the Alpaca, Polygon and Finnhub wire formats and
//! serving the fake generator's bars, with rate limits and switchable faults), a writer of
//! synthetic IEX HIST captures, and a writer of lake format 1 files (the format before
//! issue 13) for the upgrade's tests. Only `[dev-dependencies]` use it.

pub mod hist;
pub mod lake_v1;
pub mod simulator;
