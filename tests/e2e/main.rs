//! End-to-end tests: they run the built `mp` binary on real files in temporary directories,
//! with fixed dates, and check what a user sees (stdout, stderr, exit code, files).

mod calendar;
mod cli;

use assert_cmd::Command;

/// The `mp` binary, run in `dir` with a clean logging environment.
pub(crate) fn mp(dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mp"));
    cmd.current_dir(dir)
        .env_remove("RUST_LOG")
        .env_remove("MP_LOG_FORMAT");
    cmd
}
