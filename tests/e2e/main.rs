//! End-to-end tests: they run the built `mp` binary on real files in temporary directories,
//! with fixed dates, and check what a user sees (stdout, stderr, exit code, files).

// Tests may unwrap (CONTRIBUTING); clippy's allow-unwrap-in-tests covers `#[test]` functions
// only, not the helpers they share.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod aggregate;
mod calendar;
mod cli;
mod config;
mod ingest;
mod interop;
mod lake;
mod library;
mod metrics;
mod operations;
mod providers;
mod query;
mod universe;
mod upgrade;
mod validate;

use assert_cmd::Command;

/// The `mp` binary, run in `dir` with a clean logging environment.
pub(crate) fn mp(dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mp"));
    cmd.current_dir(dir)
        .env_remove("RUST_LOG")
        .env_remove("MP_LOG_FORMAT");
    cmd
}

/// The `mp` binary as a plain process (to spawn, run side by side or kill), in `dir`, with
/// the same clean environment as [`mp`] and its output discarded.
pub(crate) fn mp_process(dir: &std::path::Path) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_mp"));
    cmd.current_dir(dir)
        .env_remove("RUST_LOG")
        .env_remove("MP_LOG_FORMAT")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    cmd
}

/// Runs `mp` with `args` in `dir`, expects exit 0 (printing its output otherwise), returns
/// stdout.
pub(crate) fn run_ok(dir: &std::path::Path, args: &[&str]) -> String {
    let out = mp(dir).args(args).assert().success();
    text(&out.get_output().stdout)
}

/// A command's stdout or stderr as text.
pub(crate) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
