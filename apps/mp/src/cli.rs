//! The command-line surface (clap derive types only; the work is in `commands`).

// Doc comments here are --help text for users, not rustdoc: no Markdown backticks.
#![allow(clippy::doc_markdown)]

use std::path::PathBuf;

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

    /// Data directory: the lake (DIR/lake) and the metadata database (DIR/marketpipe.db).
    /// Default: the config's data_dir, else ./data.
    #[arg(long, global = true, env = "MP_DATA_DIR", value_name = "DIR")]
    pub(crate) data_dir: Option<PathBuf>,

    /// YAML configuration file (see `mp config init`).
    #[arg(long, global = true, env = "MP_CONFIG", value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,

    /// Serve the metrics at http://ADDR/metrics while the command runs (Prometheus text
    /// format), e.g. 127.0.0.1:9464. For ingest, backfill, aggregate, validate and prune.
    #[arg(long, global = true, env = "MP_METRICS_ADDR", value_name = "ADDR")]
    pub(crate) metrics_addr: Option<std::net::SocketAddr>,

    /// When the command ends, write its metrics to FILE (replaced atomically) for
    /// node_exporter's textfile collector, e.g.
    /// /var/lib/node_exporter/textfile_collector/marketpipe-ingest.prom.
    #[arg(long, global = true, env = "MP_METRICS_TEXTFILE", value_name = "FILE")]
    pub(crate) metrics_textfile: Option<PathBuf>,
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
    /// Ingest 1-minute bars from a provider into the lake (also `mp ohlcv ingest`).
    #[command(alias = "ingest-ohlcv")]
    Ingest(IngestArgs),

    /// Fetch only what the coverage map lacks: the sessions never asked for, failed, changed
    /// in the lake outside mp, or (with --recheck) that the provider had nothing for (also
    /// `mp ohlcv backfill`).
    #[command(alias = "backfill-ohlcv")]
    Backfill(BackfillArgs),

    /// The coverage map: per symbol, sessions expected, filled, partial, empty (the provider
    /// had nothing), failed and missing; as a table, JSON, or an HTML heat map.
    Gaps(GapsArgs),

    /// Check stored bars against the data-quality rules and keep the reports (also
    /// `mp ohlcv validate`).
    #[command(alias = "validate-ohlcv")]
    Validate(ValidateArgs),

    /// Build the 5m, 15m, 1h and 1d frames from the 1m bars, incrementally: only 1m
    /// partitions that changed since their last aggregation are read (also `mp ohlcv
    /// aggregate`).
    #[command(alias = "aggregate-ohlcv")]
    Aggregate(AggregateArgs),

    /// Run one read-only SQL statement over the lake's DuckDB views: bars_1m, bars_5m,
    /// bars_15m, bars_30m, bars_1h, bars_4h and bars_1d, with the columns symbol, ts, open,
    /// high, low, close, volume, trade_count, vwap, provider, feed, ingested_at, year and
    /// month (a frame without data is an empty view). Statements that would write or reach
    /// outside the lake (COPY, CREATE, INSERT, ATTACH, INSTALL, LOAD, SET, PRAGMA, …) are
    /// refused with exit 2.
    Query(QueryArgs),

    /// OHLCV pipeline commands (the same as the top-level ones).
    Ohlcv {
        #[command(subcommand)]
        command: OhlcvCommand,
    },

    /// List and inspect ingestion jobs.
    Jobs {
        #[command(subcommand)]
        command: JobsCommand,
    },

    /// Create or upgrade the metadata database (also done on first use).
    Migrate,

    /// Write an example configuration, or show the resolved one.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },

    /// Print the XNYS trading sessions between two dates, with their hours in New York
    /// time and UTC.
    Calendar(CalendarArgs),

    /// List the market-data providers and their limits, or test one's connection.
    Providers {
        #[command(subcommand)]
        command: ProvidersCommand,
    },

    /// The lake's upkeep: `mp lake upgrade` rewrites partitions still in an older lake
    /// format (docs/storage.md), `mp lake status` counts files per format.
    Lake {
        #[command(subcommand)]
        command: LakeCommand,
    },

    /// Retention: remove what is older than a cut, from the lake (mp prune parquet) or the
    /// metadata database (mp prune sqlite).
    Prune {
        #[command(subcommand)]
        command: PruneCommand,
    },

    /// The symbol master: load a source's list of securities into its history (mp symbols
    /// update), list the securities valid on a date, show one's history.
    Symbols {
        #[command(subcommand)]
        command: SymbolsCommand,
    },

    /// Universes: build one from a filters file, the symbol master and the lake (only what
    /// was known on its as-of date), list them, show one, compare two.
    Universe {
        #[command(subcommand)]
        command: UniverseCommand,
    },

    /// Check the data directory and say what needs attention: exit 0 when every check
    /// passes or only warns, 1 when one fails.
    Health {
        /// Read every row of every partition and compare every file with the manifest
        /// (default: every file's footer, and a sample of 64 partitions against the manifest).
        #[arg(long)]
        full: bool,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },

    /// The metrics history: each command's final figures, kept with its job. Lists the
    /// metrics recorded, or one metric's values (--metric), averaged by bucket (--avg) and
    /// drawn (--plot, --plot-file); `mp metrics serve` exposes the latest run of every
    /// command to Prometheus.
    #[command(args_conflicts_with_subcommands = true)]
    Metrics {
        #[command(subcommand)]
        command: Option<MetricsCommand>,
        #[command(flatten)]
        args: MetricsArgs,
    },

    /// IEX HIST files: download a day's TOPS capture for `--provider iex`.
    Iex {
        #[command(subcommand)]
        command: IexCommand,
    },

    /// Print a shell completion script to stdout (e.g. mp completions bash >
    /// ~/.local/share/bash-completion/completions/mp).
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },

    /// Print the manual page (roff, every command on one page) to stdout (e.g. mp man >
    /// ~/.local/share/man/man1/mp.1).
    Man,
}

/// `mp metrics …`.
#[derive(Debug, Subcommand)]
pub(crate) enum MetricsCommand {
    /// Serve the latest recorded run of every command at http://ADDR/metrics, for a machine
    /// whose commands run from cron (scrape it, or use --metrics-textfile instead). Stops on
    /// Ctrl-C or SIGTERM.
    Serve {
        /// Where to listen.
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9464")]
        addr: std::net::SocketAddr,
    },
}

/// `mp metrics [--list] [--metric NAME …]`.
#[derive(Debug, Args)]
pub(crate) struct MetricsArgs {
    /// List the metrics recorded (the default without --metric).
    #[arg(long, conflicts_with = "metric")]
    pub(crate) list: bool,
    /// One metric's values, one history per label set.
    #[arg(long, value_name = "NAME")]
    pub(crate) metric: Option<String>,
    /// Only values recorded in this span before now: 7d, 2w, 3m (months).
    #[arg(long, value_name = "SPAN", requires = "metric", default_value = "30d")]
    pub(crate) since: String,
    /// Average the values by calendar bucket: 1d, 1w, 1m.
    #[arg(long, value_name = "SPAN", requires = "metric")]
    pub(crate) avg: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
    /// Draw each history as a sparkline in the terminal.
    #[arg(long, requires = "metric")]
    pub(crate) plot: bool,
    /// Draw the histories as an SVG chart into FILE.
    #[arg(long, value_name = "FILE", requires = "metric")]
    pub(crate) plot_file: Option<PathBuf>,
}

/// A symbol-master source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum SymbolSourceName {
    /// The Nasdaq Trader symbol directory (nasdaqlisted.txt and otherlisted.txt).
    NasdaqTrader,
    /// Alpaca's asset list (Trading API GET /v2/assets; the Alpaca key pair).
    Alpaca,
    /// Polygon/Massive reference tickers (GET /v3/reference/tickers; POLYGON_API_KEY).
    Polygon,
}

/// `mp symbols …`.
#[derive(Debug, Subcommand)]
pub(crate) enum SymbolsCommand {
    /// Load the source's current list as a snapshot: securities that are new or changed get a
    /// row valid from the as-of date, the rows of securities that changed or disappeared end
    /// on it. Snapshots of a source are loaded in date order.
    Update {
        /// The source.
        #[arg(long, value_enum)]
        source: SymbolSourceName,
        /// nasdaq-trader: where the files are, a directory or an http(s) base URL. Default:
        /// Nasdaq's public mirror, www.nasdaqtrader.com/dynamic/SymDir/ over HTTPS. (Alpaca
        /// and Polygon use their providers' base URLs and credentials.)
        #[arg(long, value_name = "DIR_OR_URL")]
        from: Option<String>,
        /// polygon: also ask each ticker's details for its market cap and SIC code (one
        /// request per ticker).
        #[arg(long)]
        details: bool,
        /// The date the snapshot describes (YYYY-MM-DD). Default: the date the files say they
        /// were made, else today's New York date.
        #[arg(long, value_name = "YYYY-MM-DD")]
        as_of: Option<String>,
        /// Say what would change and write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// The securities valid on a date, one row per source.
    List {
        /// The date (YYYY-MM-DD). Default: today's New York date.
        #[arg(long, value_name = "YYYY-MM-DD")]
        as_of: Option<String>,
        /// Only these exchanges, comma-separated (NASDAQ, NYSE, NYSE_AMERICAN, NYSE_ARCA,
        /// CBOE_BZX, IEX, OTC).
        #[arg(long, value_name = "LIST")]
        exchange: Option<String>,
        /// Print a JSON array.
        #[arg(long)]
        json: bool,
    },
    /// One security's history: every version of it in every source, with its dates.
    Show {
        /// The symbol (BRK.B, BRK/B and BRK-B are the same).
        symbol: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `mp universe …`.
#[derive(Debug, Subcommand)]
pub(crate) enum UniverseCommand {
    /// Select the securities of the symbol master valid on the as-of date that pass the
    /// filters file (docs/universe.md), from the sessions up to that date; write
    /// DATA_DIR/universe/universe-YYYY-MM-DD.csv and keep the universe (one per date: a
    /// rebuild replaces it).
    Build {
        /// The filters file (filters.yml).
        #[arg(long, value_name = "FILE")]
        filters: PathBuf,
        /// The as-of date (YYYY-MM-DD). Default: today's New York date.
        #[arg(long, value_name = "YYYY-MM-DD")]
        as_of: Option<String>,
        /// The universe's name. Default: the filters file's name.
        #[arg(long)]
        name: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// The universes built, by date.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// One universe's members by rank (with --all, also every excluded candidate and why).
    Show {
        /// Its as-of date (YYYY-MM-DD), or latest.
        #[arg(value_name = "DATE|latest")]
        which: String,
        /// Also list the excluded candidates with the filter that excluded each.
        #[arg(long)]
        all: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// What changed between two universes: members added, and members removed with the
    /// reason the later universe left each out.
    Diff {
        /// The earlier universe's date, or latest.
        #[arg(value_name = "A")]
        from: String,
        /// The later universe's date, or latest.
        #[arg(value_name = "B")]
        to: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `mp lake …`.
#[derive(Debug, Subcommand)]
pub(crate) enum LakeCommand {
    /// Rewrite every partition still in an older lake format in the current one, by the
    /// crash-safe write protocol: safe to kill and run again; a lake already current is left
    /// untouched. Aggregated partitions of format 1 get back the provider and feed of their
    /// 1m bars.
    Upgrade {
        /// Print what would be rewritten and write nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Count the lake's partition files per format version.
    Status {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// `mp prune …`.
#[derive(Debug, Subcommand)]
pub(crate) enum PruneCommand {
    /// Remove the bars of sessions before the cut from every frame (or --frames): whole
    /// partition files before it are deleted, files that straddle it are rewritten by the
    /// write protocol; the manifest and the coverage map follow. Rows on or after the cut
    /// are kept exactly as they are.
    Parquet(PruneParquetArgs),
    /// Remove finished jobs (with their work items), metric samples and validation reports
    /// (with their findings) older than the cut, then compact the database file (also
    /// `mp prune database`).
    #[command(alias = "database")]
    Sqlite(PruneSqliteArgs),
}

/// The cut of a prune: an age or a date.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub(crate) struct PruneCut {
    /// Age of the cut from today's New York date: 30d, 6w, 18m, 5y (days, weeks, months,
    /// years).
    #[arg(long, value_name = "SPAN")]
    pub(crate) older_than: Option<String>,
    /// The cut itself: sessions before this New York date go (YYYY-MM-DD).
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub(crate) before: Option<String>,
}

/// `mp prune parquet`.
#[derive(Debug, Args)]
pub(crate) struct PruneParquetArgs {
    #[command(flatten)]
    pub(crate) cut: PruneCut,
    /// Only these frames, comma-separated (1m, 5m, 15m, 30m, 1h, 4h, 1d). Default: all.
    #[arg(long, value_name = "LIST")]
    pub(crate) frames: Option<String>,
    /// Only these symbols, comma-separated. Default: all.
    #[arg(long, value_name = "LIST")]
    pub(crate) symbols: Option<String>,
    /// List what would go and change nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

/// `mp prune sqlite`.
#[derive(Debug, Args)]
pub(crate) struct PruneSqliteArgs {
    #[command(flatten)]
    pub(crate) cut: PruneCut,
    /// Count what would go and change nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

/// `mp providers …`.
#[derive(Debug, Subcommand)]
pub(crate) enum ProvidersCommand {
    /// Name, feeds, rate limit, page size, symbols per request, and whether credentials are
    /// set (never their value).
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Make one cheap real request to prove the credentials and the connection.
    Test {
        /// The provider (see `mp providers list`).
        name: String,
    },
}

/// `mp iex …`.
#[derive(Debug, Subcommand)]
pub(crate) enum IexCommand {
    /// Download one trading day's TOPS file into the HIST directory (providers.iex.hist_dir,
    /// MP_IEX_HIST_DIR, default DATA_DIR/iex-hist) through IEX's listing.
    Fetch {
        /// The trading date, YYYY-MM-DD.
        #[arg(long, value_name = "YYYY-MM-DD")]
        date: String,
        /// Download again even when the file is already there.
        #[arg(long)]
        force: bool,
    },
}

/// `mp ohlcv …`.
#[derive(Debug, Subcommand)]
pub(crate) enum OhlcvCommand {
    /// Ingest 1-minute bars from a provider into the lake.
    Ingest(IngestArgs),
    /// Fetch only the sessions the coverage map lacks.
    Backfill(BackfillArgs),
    /// Check stored bars against the data-quality rules.
    Validate(ValidateArgs),
    /// Build the aggregated frames from the 1m bars.
    Aggregate(AggregateArgs),
}

/// `mp aggregate`.
#[derive(Debug, Args)]
pub(crate) struct AggregateArgs {
    /// Target frames, comma-separated, among 5m, 15m, 30m, 1h, 4h, 1d.
    #[arg(long, value_name = "LIST", default_value = "5m,15m,1h,1d")]
    pub(crate) frames: String,

    /// Only these symbols, comma-separated. Default: every symbol in the lake.
    #[arg(long, value_name = "LIST")]
    pub(crate) symbols: Option<String>,

    /// Only 1m partitions (months) that overlap the session dates from this one on
    /// (YYYY-MM-DD, inclusive; needs --end).
    #[arg(long, requires = "end")]
    pub(crate) start: Option<String>,

    /// ... up to this one (YYYY-MM-DD, inclusive; needs --start).
    #[arg(long, requires = "start")]
    pub(crate) end: Option<String>,

    /// Rebuild every selected partition, changed or not, including 1m files the metadata
    /// database does not know.
    #[arg(long)]
    pub(crate) full: bool,

    /// Symbol-years aggregated at once. Each holds one 1m partition in memory; more than the
    /// cores pays because every file written is fsynced (the waits overlap).
    #[arg(long, value_name = "N", default_value_t = marketpipe_aggregation::DEFAULT_CONCURRENCY)]
    pub(crate) concurrency: usize,
}

/// `mp query`.
#[derive(Debug, Args)]
pub(crate) struct QueryArgs {
    /// One reading statement: SELECT, WITH, VALUES, TABLE, FROM, DESCRIBE, SHOW, SUMMARIZE,
    /// PIVOT or EXPLAIN (ANALYZE) (DuckDB SQL; quote it for the shell).
    #[arg(value_name = "SQL")]
    pub(crate) sql: String,

    /// Output format: an aligned table, CSV (RFC 4180, header line always) or a JSON array
    /// of objects (timestamps as RFC 3339 strings).
    #[arg(long, value_enum, default_value_t = QueryFormat::Table)]
    pub(crate) format: QueryFormat,

    /// Print at most N rows. Default: 10000 for table, every row for csv and json.
    #[arg(long, value_name = "N")]
    pub(crate) limit: Option<usize>,
}

/// How `mp query` prints its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum QueryFormat {
    /// Aligned columns with a header and a row count.
    Table,
    /// Comma-separated values with a header line.
    Csv,
    /// A JSON array with one object per row.
    Json,
}

/// `mp validate`.
#[derive(Debug, Args)]
#[allow(clippy::struct_excessive_bools)] // clap flags, each its own switch
pub(crate) struct ValidateArgs {
    /// Validate the bars of this ingestion job (its symbols, dates and hours).
    #[arg(long, value_name = "JOB_ID", conflicts_with_all = ["symbols", "start", "end", "list", "show"])]
    pub(crate) job_id: Option<String>,

    /// Symbols, comma-separated (with --start and --end).
    #[arg(long, value_name = "LIST", requires_all = ["start", "end"])]
    pub(crate) symbols: Option<String>,

    /// First session date, New York (YYYY-MM-DD, inclusive).
    #[arg(long, requires = "symbols")]
    pub(crate) start: Option<String>,

    /// Last session date, New York (YYYY-MM-DD, inclusive).
    #[arg(long, requires = "symbols")]
    pub(crate) end: Option<String>,

    /// Bars must lie in extended hours (04:00-20:00 ET) rather than regular hours. Default:
    /// the config's validation.session.
    #[arg(long)]
    pub(crate) extended_hours: bool,

    /// List the stored reports.
    #[arg(long, conflicts_with_all = ["symbols", "show"])]
    pub(crate) list: bool,

    /// Print one report (a name from --list, e.g. 20261127T040631Z-2805c3_AAPL).
    #[arg(long, value_name = "REPORT", conflicts_with = "symbols")]
    pub(crate) show: Option<String>,

    /// Exit 1 when any error-severity finding exists.
    #[arg(long)]
    pub(crate) strict: bool,

    /// With --list or --show: print JSON (an array of reports, or one report with its
    /// findings) instead of a table.
    #[arg(long)]
    pub(crate) json: bool,

    /// Symbols validated at once (reading, checking and saving overlap).
    #[arg(long, value_name = "N", default_value_t = marketpipe_validation::DEFAULT_CONCURRENCY)]
    pub(crate) concurrency: usize,
}

/// `mp ingest`.
#[derive(Debug, Args)]
pub(crate) struct IngestArgs {
    /// Provider name (fake, …). Default: the config's ingest.provider, else fake.
    #[arg(long)]
    pub(crate) provider: Option<String>,

    /// Symbols, comma-separated (AAPL,MSFT,BRK.B).
    #[arg(long, value_name = "LIST", required_unless_present_any = ["symbols_file", "resume", "universe"])]
    pub(crate) symbols: Option<String>,

    /// A file of symbols: one or more per line, comma- or space-separated; '#' starts a
    /// comment.
    #[arg(long, value_name = "FILE")]
    pub(crate) symbols_file: Option<PathBuf>,

    /// Take the symbols from a built universe: its as-of date (YYYY-MM-DD) or latest (see
    /// `mp universe list`).
    #[arg(long, value_name = "DATE|latest", conflicts_with_all = ["symbols", "symbols_file"])]
    pub(crate) universe: Option<String>,

    /// First session date, New York (YYYY-MM-DD, inclusive).
    #[arg(long, required_unless_present = "resume")]
    pub(crate) start: Option<String>,

    /// Last session date, New York (YYYY-MM-DD, inclusive).
    #[arg(long, required_unless_present = "resume")]
    pub(crate) end: Option<String>,

    /// Batches in flight at once (a batch is one request stream: work items of one month,
    /// up to the provider's symbols per request). Default: the config's
    /// ingest.concurrency, else 4.
    #[arg(long, value_name = "N")]
    pub(crate) concurrency: Option<usize>,

    /// Keep extended hours (04:00-20:00 ET) instead of regular hours (09:30-16:00 ET).
    #[arg(long)]
    pub(crate) extended_hours: bool,

    /// Provider feed, for providers with several.
    #[arg(long)]
    pub(crate) feed: Option<String>,

    /// Validate the job's bars when it has run (see `mp validate`).
    #[arg(long)]
    pub(crate) validate: bool,

    /// Aggregate the changed partitions to 5m, 15m, 1h and 1d when the job has completed
    /// (see `mp aggregate`).
    #[arg(long)]
    pub(crate) aggregate: bool,

    /// Continue a failed, cancelled or interrupted job from its checkpoints.
    #[arg(long, value_name = "JOB_ID", conflicts_with_all = ["symbols", "symbols_file", "universe", "start", "end", "provider", "extended_hours", "feed"])]
    pub(crate) resume: Option<String>,
}

/// `mp backfill`.
#[derive(Debug, Args)]
#[allow(clippy::struct_excessive_bools)] // clap flags, each its own switch
pub(crate) struct BackfillArgs {
    /// Provider name (fake, …). Default: the config's ingest.provider, else fake.
    #[arg(long)]
    pub(crate) provider: Option<String>,

    /// Provider feed, for providers with several. Default: the provider's.
    #[arg(long)]
    pub(crate) feed: Option<String>,

    /// Symbols, comma-separated (AAPL,MSFT,BRK.B).
    #[arg(long, value_name = "LIST", required_unless_present_any = ["symbols_file", "universe"])]
    pub(crate) symbols: Option<String>,

    /// A file of symbols: one or more per line, comma- or space-separated; '#' starts a
    /// comment.
    #[arg(long, value_name = "FILE")]
    pub(crate) symbols_file: Option<PathBuf>,

    /// Take the symbols from a built universe: its as-of date (YYYY-MM-DD) or latest (see
    /// `mp universe list`).
    #[arg(long, value_name = "DATE|latest", conflicts_with_all = ["symbols", "symbols_file"])]
    pub(crate) universe: Option<String>,

    /// First session date, New York (YYYY-MM-DD, inclusive; with --end).
    #[arg(
        long,
        requires = "end",
        conflicts_with = "lookback",
        required_unless_present = "lookback"
    )]
    pub(crate) start: Option<String>,

    /// Last session date, New York (YYYY-MM-DD, inclusive; with --start).
    #[arg(long, requires = "start", conflicts_with = "lookback")]
    pub(crate) end: Option<String>,

    /// The sessions up to today's New York date: 5d is the last five sessions (today
    /// included when it is one); 2w, 6m, 1y count calendar time. Sessions that have not
    /// ended are not asked.
    #[arg(long, value_name = "SPAN")]
    pub(crate) lookback: Option<String>,

    /// Ask again for sessions the provider had nothing (empty_confirmed) or not everything
    /// (partial) for.
    #[arg(long)]
    pub(crate) recheck: bool,

    /// Print the plan (the sessions and requests) and fetch nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,

    /// Keep extended hours (04:00-20:00 ET) instead of regular hours (09:30-16:00 ET).
    #[arg(long)]
    pub(crate) extended_hours: bool,

    /// Batches in flight at once. Default: the config's ingest.concurrency, else 4.
    #[arg(long, value_name = "N")]
    pub(crate) concurrency: Option<usize>,

    /// Print JSON (the plan, and with a run what each session's answer was).
    #[arg(long)]
    pub(crate) json: bool,
}

/// `mp gaps`.
#[derive(Debug, Args)]
pub(crate) struct GapsArgs {
    /// Symbols, comma-separated.
    #[arg(long, value_name = "LIST", required_unless_present = "symbols_file")]
    pub(crate) symbols: Option<String>,
    /// A file of symbols (as for mp ingest).
    #[arg(long, value_name = "FILE")]
    pub(crate) symbols_file: Option<PathBuf>,
    /// First session date, New York (YYYY-MM-DD, inclusive).
    #[arg(long)]
    pub(crate) start: String,
    /// Last session date, New York (YYYY-MM-DD, inclusive).
    #[arg(long)]
    pub(crate) end: String,
    /// Only this provider's answers. Default: any provider's (the best answer counts).
    #[arg(long)]
    pub(crate) provider: Option<String>,
    /// With --provider, its feed.
    #[arg(long, requires = "provider")]
    pub(crate) feed: Option<String>,
    /// Sessions must be covered for extended hours (04:00-20:00 ET).
    #[arg(long)]
    pub(crate) extended_hours: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
    /// Also write the map as one self-contained HTML page (a heat map of symbols x sessions).
    #[arg(long, value_name = "FILE")]
    pub(crate) html: Option<PathBuf>,
}

/// `mp jobs …`.
#[derive(Debug, Subcommand)]
pub(crate) enum JobsCommand {
    /// The newest jobs first.
    List {
        /// How many jobs.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// One job with its work items.
    Show {
        /// The job id (from `mp jobs list`).
        job_id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Stop a running job: its owner on this host is asked to stop (SIGTERM; it finishes the
    /// work items in flight), then the job is marked cancelled. Finished items are kept, and
    /// `mp ingest --resume JOB_ID` continues it.
    Kill {
        /// The job id (from `mp jobs list`).
        job_id: String,
        /// Seconds to wait for the owner to stop.
        #[arg(long, value_name = "SECS", default_value_t = 30)]
        timeout: u64,
    },
    /// Remove jobs that finished (completed, failed or cancelled) before a cut, with their
    /// work items.
    Cleanup {
        /// Age of the cut: 30d, 6w, 18m, 5y (days, weeks, months, years).
        #[arg(long, value_name = "SPAN", default_value = "30d")]
        older_than: String,
        /// List what would go and change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Find interrupted jobs (running, owner gone) and orphaned temporary and lock files;
    /// exit 1 while any is left.
    Doctor {
        /// Mark the interrupted jobs failed (resumable) and remove the orphaned files.
        #[arg(long)]
        fix: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `mp config …`.
#[derive(Debug, Subcommand)]
pub(crate) enum ConfigCommand {
    /// Print a commented example configuration (config_version: 1), or write it to a file.
    Init {
        /// Write to this file instead of stdout.
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Print the resolved configuration (file, MP_* environment, flags), secrets masked.
    Show,
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
