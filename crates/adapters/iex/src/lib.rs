//! # marketpipe-iex
//!
//! The IEX provider, an adapter behind the `MarketDataProvider` port: it builds 1-minute
//! bars from the exchange's free HIST downloads, the day's TOPS feed as a gzip-compressed
//! packet capture, read from a local directory (`providers.iex.hist_dir` /
//! `MP_IEX_HIST_DIR`). No key, no network when reading; `mp iex fetch --date` downloads a
//! day's file. The bars are IEX-only trades (about 2–3 % of US consolidated volume). Among
//! our crates it depends only on the domain, the ports and provider-kit (for the download).
//!
//! The layers, each usable on its own:
//!
//! * [`capture`]: a streaming pcap / pcap-ng reader over gzip or plain files, with a
//!   fixed-size buffer (memory does not grow with the file, which reaches tens of GB
//!   uncompressed);
//! * [`net`]: Ethernet (stacked VLAN tags) → IPv4 → UDP;
//! * [`iextp`]: IEX-TP segments, message blocks and sequence checks (gaps are reported as
//!   [`Gap`]s, duplicates skipped);
//! * [`tops`]: TOPS 1.5/1.6 trade messages and the 8-byte symbol filter;
//! * [`bars`]: the bar builder (which trades set prices, trade breaks, VWAP);
//! * [`day`]: one file → [`DayRead`] (bars, gaps, and the damage that stopped the read,
//!   with the byte position in the uncompressed stream);
//! * [`provider`]: [`IexHistProvider`], one page per session date;
//! * [`fetch`]: [`HistFetcher`] for `mp iex fetch --date`: the listing call, the choice of
//!   the TOPS file, its local name and the atomic download through provider-kit.

pub mod bars;
pub mod capture;
pub mod day;
pub mod error;
pub mod fetch;
pub mod files;
pub mod iextp;
pub mod net;
pub mod provider;
pub mod tops;

pub use bars::{BarBuilder, BuildStats, PricePolicy};
pub use capture::{CaptureFormat, CaptureReader, Packet};
pub use day::{DayRead, ReadOptions, ReadStats, read_capture, read_day};
pub use error::{Gap, ReadError};
pub use fetch::{DEFAULT_BASE_URL, FetchError, Fetched, HistEntry, HistFetcher};
pub use files::HIST_DIR_ENV;
pub use iextp::TopsVersion;
pub use provider::{GapPolicy, IexHistProvider, NAME};
