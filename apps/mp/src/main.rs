//! # mp
//!
//! The outermost ring of MarketPipe: a thin command-line app that parses flags, sets up
//! logging, wires concrete adapters into the contexts and prints results. Results go to
//! stdout, logs to stderr; exit codes are 0 (done), 1 (failed) and 2 (usage).

use std::process::ExitCode;

use clap::Parser;

mod cli;
mod commands;
mod error;
mod logging;

use cli::{Cli, Command};
use error::AppError;

fn run(cli: &Cli) -> Result<(), AppError> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match &cli.command {
        Command::Calendar(args) => commands::calendar::run(args, &mut out),
    }
}

fn main() -> ExitCode {
    // clap exits by itself: 0 for --help/--version, 2 for usage errors.
    let cli = Cli::parse();
    logging::init(&cli.global);
    match run(&cli) {
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
