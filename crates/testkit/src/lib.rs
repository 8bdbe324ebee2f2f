//! # marketpipe-testkit
//!
//! Dev-only helpers for tests that must not reach the internet: a provider simulator (a real
//! HTTP server on `127.0.0.1:0` speaking the Alpaca, Polygon and Finnhub wire formats and
//! serving the fake generator's bars, with rate limits and switchable faults), and a writer of
//! synthetic IEX HIST captures. Only `[dev-dependencies]` use it.

pub mod hist;
pub mod simulator;
