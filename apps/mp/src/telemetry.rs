//! Wiring of the metrics around a command: the recorder behind the `metrics` facade, the
//! `--metrics-addr` endpoint, and at the end the command's own figures (outcome, duration),
//! the `--metrics-textfile` file and the history row set (marketpipe-telemetry).

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::Context as _;
use marketpipe_ports::telemetry::{self, Series};
use marketpipe_prometheus::{MetricsRecorder, MetricsServer};
use marketpipe_telemetry::RunLabels;
use std::sync::Arc;

use crate::cli::{Command, GlobalArgs, OhlcvCommand, PruneCommand};
use crate::commands::Context;
use crate::error::{AppError, usage};
use crate::wiring;

/// The job (or validation run) the running command works on, for the history.
static RUN_JOB: Mutex<Option<String>> = Mutex::new(None);
/// Whether the running command's job ended cancelled (Ctrl-C, SIGTERM).
static RUN_CANCELLED: AtomicBool = AtomicBool::new(false);

/// Names the job the command works on (its metrics are kept with it). The first name
/// wins: `mp ingest --validate` keeps its figures with the ingest job, not the validation
/// run that follows it.
pub(crate) fn set_job(id: &impl ToString) {
    if let Ok(mut job) = RUN_JOB.lock()
        && job.is_none()
    {
        *job = Some(id.to_string());
    }
}

/// Marks the command's job cancelled (its outcome is then `cancelled`, not `failed`).
pub(crate) fn set_cancelled() {
    RUN_CANCELLED.store(true, Ordering::Relaxed);
}

/// The commands whose metrics are exported and kept: the ones that do work.
pub(crate) fn command_name(command: &Command) -> Option<&'static str> {
    Some(match command {
        Command::Ingest(_)
        | Command::Ohlcv {
            command: OhlcvCommand::Ingest(_),
        } => "ingest",
        Command::Backfill(_)
        | Command::Ohlcv {
            command: OhlcvCommand::Backfill(_),
        } => "backfill",
        Command::Validate(_)
        | Command::Ohlcv {
            command: OhlcvCommand::Validate(_),
        } => "validate",
        Command::Aggregate(_)
        | Command::Ohlcv {
            command: OhlcvCommand::Aggregate(_),
        } => "aggregate",
        Command::Prune {
            command: PruneCommand::Parquet(_),
        } => "prune",
        _ => return None,
    })
}

/// Whether `flag` was given as an argument (`--flag VALUE` or `--flag=VALUE`), not taken
/// from the environment.
fn on_command_line(flag: &str) -> bool {
    std::env::args_os().skip(1).any(|arg| {
        arg.to_str()
            .is_some_and(|a| a == flag || a.strip_prefix(flag).is_some_and(|r| r.starts_with('=')))
    })
}

/// The metrics of one command's run.
pub(crate) struct Session {
    command: Option<&'static str>,
    recorder: &'static MetricsRecorder,
    server: Option<MetricsServer>,
    textfile: Option<PathBuf>,
    started: Instant,
}

impl Session {
    /// Installs the recorder and starts `--metrics-addr`'s endpoint. The flags are refused
    /// (exit 2) on a command that exports nothing, and a bad address before any work.
    #[allow(clippy::print_stderr)] // the port chosen for 127.0.0.1:0, for the caller
    pub(crate) fn start(global: &GlobalArgs, command: &Command) -> Result<Self, AppError> {
        let name = command_name(command);
        if name.is_none() {
            // On the command line the flags are a mistake; from MP_METRICS_* (an environment
            // file shared by every command of a machine) they simply do not apply.
            if on_command_line("--metrics-addr") || on_command_line("--metrics-textfile") {
                return Err(usage(anyhow::anyhow!(
                    "--metrics-addr and --metrics-textfile apply to ingest, backfill, aggregate, \
                     validate and prune parquet; for the history of cron runs use `mp metrics serve`"
                )));
            }
            return Ok(Self {
                command: None,
                recorder: marketpipe_prometheus::install(),
                server: None,
                textfile: None,
                started: Instant::now(),
            });
        }
        if let Some(file) = &global.metrics_textfile {
            let dir = file
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or_else(|| std::path::Path::new("."));
            if !dir.is_dir() {
                return Err(usage(anyhow::anyhow!(
                    "--metrics-textfile {}: the directory {} does not exist; create it or \
                     name a file in an existing one",
                    file.display(),
                    dir.display()
                )));
            }
        }
        let recorder = marketpipe_prometheus::install();
        let server = match global.metrics_addr {
            Some(addr) => {
                let server = MetricsServer::spawn(addr, Arc::new(recorder))
                    .map_err(|e| usage(anyhow::Error::new(e).context("--metrics-addr")))?;
                if addr.port() == 0 {
                    // Port 0 lets the system choose; the caller learns which one here.
                    eprintln!("mp: serving metrics at http://{}/metrics", server.addr());
                }
                Some(server)
            }
            None => None,
        };
        Ok(Self {
            command: name,
            recorder,
            server,
            textfile: global.metrics_textfile.clone(),
            started: Instant::now(),
        })
    }

    /// Records the command's outcome and duration, writes the textfile and keeps the
    /// figures in the history (when the data directory has a database: a command refused
    /// before it created one leaves nothing behind). A textfile that cannot be written
    /// fails a command that otherwise succeeded.
    pub(crate) fn finish(
        self,
        result: Result<(), AppError>,
        ctx: Option<&Context>,
    ) -> Result<(), AppError> {
        let Some(command) = self.command else {
            return result;
        };
        let outcome = match &result {
            Ok(()) => "success",
            Err(AppError::Usage(_)) => "bad_input",
            Err(AppError::Failed(_)) if RUN_CANCELLED.load(Ordering::Relaxed) => "cancelled",
            Err(AppError::Failed(_)) => "failed",
        };
        metrics::counter!(
            telemetry::JOBS.name,
            telemetry::LABEL_COMMAND => command,
            telemetry::LABEL_OUTCOME => outcome
        )
        .increment(1);
        metrics::gauge!(telemetry::JOB_DURATION.name, telemetry::LABEL_COMMAND => command)
            .set(self.started.elapsed().as_secs_f64());
        if outcome == "success" {
            let now = ctx.map_or_else(
                || marketpipe_domain::Timestamp::from_nanos(0),
                |c| c.clock.now(),
            );
            #[allow(clippy::cast_precision_loss)]
            let unix = now.nanos() as f64 / 1e9;
            metrics::gauge!(telemetry::JOB_LAST_SUCCESS.name, telemetry::LABEL_COMMAND => command)
                .set(unix);
        }
        let series = self.recorder.snapshot();
        // The endpoint stops before the process does; a last scrape may miss the end.
        drop(self.server);
        let mut result = result;
        if let Some(ctx) = ctx {
            keep_in_history(ctx, command, &series);
        }
        if let Some(file) = &self.textfile
            && let Err(e) = marketpipe_prometheus::write_textfile(file, &series)
        {
            tracing::error!(error = %e, "metrics textfile not written");
            if result.is_ok() {
                result = Err(AppError::Failed(e.into()));
            }
        }
        result
    }
}

/// Appends the run's series to the metrics history (a failure is logged: the work is done).
fn keep_in_history(ctx: &Context, command: &str, series: &[Series]) {
    if !wiring::database_path(&ctx.data_dir).exists() {
        return;
    }
    let job = RUN_JOB.lock().ok().and_then(|j| j.clone());
    let run = RunLabels {
        command,
        job: job.as_deref(),
        at: ctx.clock.now(),
    };
    let recorded = (|| -> Result<(), anyhow::Error> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async {
            let store = wiring::open_store(&ctx.data_dir)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let kept = marketpipe_telemetry::record_run(&store, series, run)
                .await
                .context("recording the metrics history");
            store.close().await;
            kept
        })
    })();
    if let Err(e) = recorded {
        tracing::warn!(error = %format!("{e:#}"), "metrics not kept in the history");
    }
}
