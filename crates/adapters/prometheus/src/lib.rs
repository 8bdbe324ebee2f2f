//! # marketpipe-prometheus
//!
//! The metrics exporter. The contexts and adapters record through the `metrics` facade; this
//! crate is the recorder behind it: every series kept in memory (atomics, so recording never
//! takes a lock once a series exists), rendered in the Prometheus text exposition format
//! (version 0.0.4) for `GET /metrics` ([`serve`]), for `node_exporter`'s textfile collector
//! ([`write_textfile`], atomically) and as [`Series`] values for the metrics history. Help
//! texts and histogram buckets come from the contract in `marketpipe_ports::telemetry`.

mod recorder;
mod render;
mod server;
mod textfile;

pub use recorder::{MetricsRecorder, install};
pub use render::render;
pub use server::{Exposition, MetricsServer, ServeError, serve};
pub use textfile::{TextfileError, write_textfile};

pub use marketpipe_ports::telemetry::{Series, SeriesValue};
