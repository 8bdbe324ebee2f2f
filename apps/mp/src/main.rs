//! # mp
//!
//! The outermost ring of MarketPipe: a thin command-line app that parses flags, sets up
//! logging, wires concrete adapters into the contexts and prints results. Results go to
//! stdout, logs to stderr; exit codes are 0 (done), 1 (failed) and 2 (usage).

use std::process::ExitCode;

use clap::Parser;

mod cli;
mod commands;
mod config;
mod error;
mod events;
mod logging;
mod process;
mod progress;
mod telemetry;
mod wiring;

use cli::{
    Cli, Command, ConfigCommand, IexCommand, JobsCommand, LakeCommand, MetricsCommand,
    OhlcvCommand, ProvidersCommand, PruneCommand, SymbolsCommand, UniverseCommand,
};
use commands::Context;
use error::AppError;

/// Loads the configuration and resolves the data directory (no file is created here).
fn context(cli: &Cli) -> Result<(Context, config::Loaded), AppError> {
    let loaded = config::load(cli.global.config.as_deref(), &|k| std::env::var(k).ok())?;
    config::validate(&loaded.config).map_err(error::usage)?;
    let data_dir = wiring::data_dir(cli.global.data_dir.as_deref(), &loaded.config);
    let ctx = Context {
        config: loaded.config.clone(),
        data_dir,
        quiet: cli.global.quiet > 0,
        clock: wiring::clock(&|k| std::env::var(k).ok())?,
    };
    Ok((ctx, loaded))
}

fn runtime() -> Result<tokio::runtime::Runtime, AppError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| AppError::Failed(e.into()))
}

#[allow(clippy::too_many_lines)] // one arm per command: the map from flags to commands
fn run(cli: &Cli) -> Result<(), AppError> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match &cli.command {
        // Generated from the clap definitions alone: no configuration is read.
        Command::Completions { shell } => commands::shell::completions(*shell, &mut out),
        Command::Man => commands::shell::man(&mut out),
        Command::Calendar(args) => commands::calendar::run(args, &mut out),
        Command::Config {
            command: ConfigCommand::Init { output, force },
        } => commands::config::init(output.as_deref(), *force, &mut out),
        Command::Config {
            command: ConfigCommand::Show,
        } => {
            let (ctx, loaded) = context(cli)?;
            commands::config::show_resolved(&ctx, loaded.source.as_deref(), &mut out)
        }
        Command::Ingest(args)
        | Command::Ohlcv {
            command: OhlcvCommand::Ingest(args),
        } => {
            let (ctx, _) = context(cli)?;
            runtime()?.block_on(commands::ingest::run(&ctx, args, &mut out))
        }
        Command::Backfill(args)
        | Command::Ohlcv {
            command: OhlcvCommand::Backfill(args),
        } => {
            let (ctx, _) = context(cli)?;
            runtime()?.block_on(commands::backfill::run(&ctx, args, &mut out))
        }
        Command::Gaps(args) => {
            let (ctx, _) = context(cli)?;
            runtime()?.block_on(commands::gaps::run(&ctx, args, &mut out))
        }
        Command::Validate(args)
        | Command::Ohlcv {
            command: OhlcvCommand::Validate(args),
        } => {
            let (ctx, _) = context(cli)?;
            runtime()?.block_on(commands::validate::run(&ctx, args, &mut out))
        }
        Command::Aggregate(args)
        | Command::Ohlcv {
            command: OhlcvCommand::Aggregate(args),
        } => {
            let (ctx, _) = context(cli)?;
            runtime()?.block_on(commands::aggregate::run(&ctx, args, &mut out))
        }
        Command::Query(args) => {
            let (ctx, _) = context(cli)?;
            runtime()?.block_on(commands::query::run(&ctx, args, &mut out))
        }
        Command::Providers { command } => {
            let (ctx, _) = context(cli)?;
            match command {
                ProvidersCommand::List { json } => commands::providers::list(&ctx, *json, &mut out),
                ProvidersCommand::Test { name } => {
                    runtime()?.block_on(commands::providers::test(&ctx, name, &mut out))
                }
            }
        }
        Command::Lake { command } => {
            let (ctx, _) = context(cli)?;
            let rt = runtime()?;
            match command {
                LakeCommand::Upgrade { dry_run } => {
                    rt.block_on(commands::lake::upgrade(&ctx, *dry_run, &mut out))
                }
                LakeCommand::Status { json } => {
                    rt.block_on(commands::lake::status(&ctx, *json, &mut out))
                }
            }
        }
        Command::Prune { command } => {
            let (ctx, _) = context(cli)?;
            let rt = runtime()?;
            match command {
                PruneCommand::Parquet(args) => {
                    rt.block_on(commands::prune::parquet(&ctx, args, &mut out))
                }
                PruneCommand::Sqlite(args) => {
                    rt.block_on(commands::prune::sqlite(&ctx, args, &mut out))
                }
            }
        }
        Command::Health { full, json } => match context(cli) {
            Ok((ctx, loaded)) => runtime()?.block_on(commands::health::run(
                &ctx,
                loaded.source.as_deref(),
                *full,
                *json,
                &mut out,
            )),
            // A configuration that does not load is the one thing health has to say.
            Err(e) => commands::health::config_failed(&e, *json, &mut out),
        },
        Command::Metrics { command, args } => {
            let (ctx, _) = context(cli)?;
            match command {
                Some(MetricsCommand::Serve { addr }) => {
                    runtime()?.block_on(commands::metrics::serve(&ctx, *addr, &mut out))
                }
                None => runtime()?.block_on(commands::metrics::run(&ctx, args, &mut out)),
            }
        }
        Command::Iex {
            command: IexCommand::Fetch { date, force },
        } => {
            let (ctx, _) = context(cli)?;
            runtime()?.block_on(commands::providers::iex_fetch(&ctx, date, *force, &mut out))
        }
        Command::Jobs { command } => {
            let (ctx, _) = context(cli)?;
            let rt = runtime()?;
            match command {
                JobsCommand::List { limit, json } => {
                    rt.block_on(commands::jobs::list(&ctx, *limit, *json, &mut out))
                }
                JobsCommand::Show { job_id, json } => {
                    rt.block_on(commands::jobs::show(&ctx, job_id, *json, &mut out))
                }
                JobsCommand::Kill { job_id, timeout } => rt.block_on(commands::jobs::kill(
                    &ctx,
                    job_id,
                    std::time::Duration::from_secs(*timeout),
                    &mut out,
                )),
                JobsCommand::Cleanup {
                    older_than,
                    dry_run,
                } => rt.block_on(commands::jobs::cleanup(
                    &ctx, older_than, *dry_run, &mut out,
                )),
                JobsCommand::Doctor { fix, json } => {
                    rt.block_on(commands::jobs::doctor(&ctx, *fix, *json, &mut out))
                }
            }
        }
        Command::Symbols { command } => {
            let (ctx, _) = context(cli)?;
            let rt = runtime()?;
            match command {
                SymbolsCommand::Update {
                    source,
                    from,
                    details,
                    as_of,
                    dry_run,
                    json,
                } => rt.block_on(commands::symbols::update(
                    &ctx,
                    *source,
                    from.as_deref(),
                    *details,
                    as_of.as_deref(),
                    *dry_run,
                    *json,
                    &mut out,
                )),
                SymbolsCommand::List {
                    as_of,
                    exchange,
                    json,
                } => rt.block_on(commands::symbols::list(
                    &ctx,
                    as_of.as_deref(),
                    exchange.as_deref(),
                    *json,
                    &mut out,
                )),
                SymbolsCommand::Show { symbol, json } => {
                    rt.block_on(commands::symbols::show(&ctx, symbol, *json, &mut out))
                }
            }
        }
        Command::Universe { command } => {
            let (ctx, _) = context(cli)?;
            let rt = runtime()?;
            match command {
                UniverseCommand::Build {
                    filters,
                    as_of,
                    name,
                    json,
                } => rt.block_on(commands::universe::build(
                    &ctx,
                    filters,
                    as_of.as_deref(),
                    name.clone(),
                    *json,
                    &mut out,
                )),
                UniverseCommand::List { json } => {
                    rt.block_on(commands::universe::list(&ctx, *json, &mut out))
                }
                UniverseCommand::Show { which, all, json } => {
                    rt.block_on(commands::universe::show(&ctx, which, *all, *json, &mut out))
                }
                UniverseCommand::Diff { from, to, json } => {
                    rt.block_on(commands::universe::diff(&ctx, from, to, *json, &mut out))
                }
            }
        }
        Command::Migrate => {
            let (ctx, _) = context(cli)?;
            runtime()?.block_on(commands::migrate::run(&ctx, &mut out))
        }
    }
}

fn main() -> ExitCode {
    // clap exits by itself: 0 for --help/--version, 2 for usage errors.
    let cli = Cli::parse();
    logging::init(&cli.global);
    let result = match telemetry::Session::start(&cli.global, &cli.command) {
        Ok(session) => {
            let result = run(&cli);
            // The history needs the data directory; a config that did not load has none.
            let ctx = context(&cli).ok().map(|(ctx, _)| ctx);
            session.finish(result, ctx.as_ref())
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if error::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::debug!(error = ?e, "command failed");
            // The one place the app talks to the user about a failure.
            #[allow(clippy::print_stderr)]
            {
                eprintln!("error: {e}");
            }
            ExitCode::from(e.exit_code())
        }
    }
}
