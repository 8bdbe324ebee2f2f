//! Ingestion and aggregation progress: a bar on a terminal, plain log lines elsewhere.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use marketpipe_aggregation::{AggregateProgress, AggregationReport};
use marketpipe_domain::{IngestionJob, Symbol, WorkItem, WorkItemStatus};
use marketpipe_ingestion::{IngestProgress, ItemReport};

/// Shows progress on stderr.
pub(crate) enum Progress {
    /// An indicatif bar (stderr is a terminal).
    Bar(ProgressBar),
    /// Plain `info` lines at most every few seconds (pipes, files, journald).
    Lines(Mutex<LineState>),
    /// Nothing (`-q`).
    Silent,
}

/// State of the plain-line progress.
pub(crate) struct LineState {
    total: usize,
    done: usize,
    bars: u64,
    last: Instant,
    started: Instant,
}

impl Progress {
    /// A bar when stderr is a terminal and output is not quiet, plain lines otherwise. Drawing
    /// a bar takes escape sequences, so `NO_COLOR` gets the plain lines too.
    pub(crate) fn new(quiet: bool) -> Self {
        if quiet {
            Self::Silent
        } else if crate::logging::stderr_styled() {
            let bar = ProgressBar::new(0);
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} items {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            Self::Bar(bar)
        } else {
            Self::Lines(Mutex::new(LineState {
                total: 0,
                done: 0,
                bars: 0,
                last: Instant::now(),
                started: Instant::now(),
            }))
        }
    }

    /// Removes the bar before the summary is printed.
    pub(crate) fn finish(&self) {
        if let Self::Bar(bar) = self {
            bar.finish_and_clear();
        }
    }
}

impl IngestProgress for Progress {
    fn started(&self, job: &IngestionJob, pending: usize) {
        match self {
            Self::Bar(bar) => {
                bar.set_length(pending as u64);
                bar.set_message(format!("job {}", job.id()));
            }
            Self::Lines(state) => {
                if let Ok(mut s) = state.lock() {
                    s.total = pending;
                }
                tracing::info!(job = %job.id(), items = pending, "ingesting");
            }
            Self::Silent => {}
        }
    }

    fn item_finished(&self, item: &WorkItem, report: &ItemReport) {
        match self {
            Self::Bar(bar) => {
                bar.inc(1);
                if item.status == WorkItemStatus::Failed {
                    bar.println(format!("failed: {} {}", item.symbol, item.dates));
                }
            }
            Self::Lines(state) => {
                let Ok(mut s) = state.lock() else { return };
                s.done += 1;
                s.bars += report.bars_fetched;
                if s.last.elapsed() >= Duration::from_secs(2) || s.done == s.total {
                    s.last = Instant::now();
                    tracing::info!(
                        items_done = s.done,
                        items_total = s.total,
                        bars = s.bars,
                        elapsed_s = format!("{:.1}", s.started.elapsed().as_secs_f64()),
                        "progress"
                    );
                }
            }
            Self::Silent => {}
        }
    }
}

impl AggregateProgress for Progress {
    fn planned(&self, units: usize, sources: usize) {
        match self {
            Self::Bar(bar) => {
                bar.set_length(units as u64);
                bar.set_message(format!("symbol-years ({sources} 1m partitions)"));
            }
            Self::Lines(state) => {
                if let Ok(mut s) = state.lock() {
                    s.total = units;
                }
                tracing::info!(units, sources, "aggregating");
            }
            Self::Silent => {}
        }
    }

    fn unit_finished(&self, symbol: &Symbol, year: i32, report: &AggregationReport) {
        match self {
            Self::Bar(bar) => {
                bar.inc(1);
                for failure in &report.failures {
                    bar.println(format!("failed: {failure}"));
                }
            }
            Self::Lines(state) => {
                let Ok(mut s) = state.lock() else { return };
                s.done += 1;
                s.bars += report.source_bars;
                for failure in &report.failures {
                    tracing::warn!(%symbol, year, error = %failure.error, "aggregation failed");
                }
                if s.last.elapsed() >= Duration::from_secs(2) || s.done == s.total {
                    s.last = Instant::now();
                    tracing::info!(
                        units_done = s.done,
                        units_total = s.total,
                        bars_read = s.bars,
                        elapsed_s = format!("{:.1}", s.started.elapsed().as_secs_f64()),
                        "progress"
                    );
                }
            }
            Self::Silent => {}
        }
    }
}
