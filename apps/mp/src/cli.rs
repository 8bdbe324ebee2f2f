//! The command-line surface (clap derive types only; the work is in `commands`).

// Doc comments here are --help text for users, not rustdoc: no Markdown backticks.
#![allow(clippy::doc_markdown)]

use clap::{Args, Parser, Subcommand, ValueEnum};

/// MarketPipe: ingest, store, aggregate, validate and query 1-minute OHLCV bars.
#[derive(Debug, Parser)]
#[command(name = "mp", version, about, long_about = None, propagate_version = true)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: GlobalArgs,

    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Flags every command takes.
#[derive(Debug, Args)]
pub(crate) struct GlobalArgs {
    /// More log output on stderr (-v debug, -vv trace). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,

    /// Less log output on stderr (-q warnings and errors only, -qq errors only).
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "verbose")]
    pub(crate) quiet: u8,

    /// Log line format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "MP_LOG_FORMAT")]
    pub(crate) log_format: LogFormat,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Print the XNYS trading sessions between two dates, with their hours in New York
    /// time and UTC.
    Calendar(CalendarArgs),
}

/// `mp calendar`.
#[derive(Debug, Args)]
pub(crate) struct CalendarArgs {
    /// First date (YYYY-MM-DD, inclusive).
    #[arg(long)]
    pub(crate) start: String,

    /// Last date (YYYY-MM-DD, inclusive).
    #[arg(long)]
    pub(crate) end: String,

    /// Print JSON (an array of sessions) instead of a table.
    #[arg(long)]
    pub(crate) json: bool,

    /// Also list the weekdays the exchange is closed, with the reason.
    #[arg(long)]
    pub(crate) include_closed: bool,
}
