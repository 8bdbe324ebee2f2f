//! `tracing` set-up: stderr only (stdout is for results), `-v`/`-q`, `RUST_LOG`, text or JSON.

use tracing_subscriber::EnvFilter;

use crate::cli::{GlobalArgs, LogFormat};

/// The filter for the given verbosity: `info` by default, each `-v` one level more, each
/// `-q` one level less. `RUST_LOG`, when set, wins.
pub(crate) fn filter_directive(verbose: u8, quiet: u8) -> &'static str {
    match i16::from(verbose) - i16::from(quiet) {
        i16::MIN..=-3 => "off",
        -2 => "error",
        -1 => "warn",
        0 => "info",
        1 => "debug",
        _ => "trace",
    }
}

/// Whether `NO_COLOR` (its value, if set) asks for plain output: any non-empty value does
/// (<https://no-color.org>).
pub(crate) fn no_color(value: Option<&std::ffi::OsStr>) -> bool {
    value.is_some_and(|v| !v.is_empty())
}

/// Whether stderr may carry escape sequences (colours in logs, the drawn progress bar): it is
/// a terminal and `NO_COLOR` is not set.
pub(crate) fn stderr_styled() -> bool {
    std::io::IsTerminal::is_terminal(&std::io::stderr())
        && !no_color(std::env::var_os("NO_COLOR").as_deref())
}

/// Installs the global subscriber. Safe to call once per process.
pub(crate) fn init(args: &GlobalArgs) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(filter_directive(args.verbose, args.quiet)));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(stderr_styled())
        .with_target(false);
    // A second init (only possible in tests) keeps the first subscriber.
    let _ = match args.log_format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbosity_levels() {
        assert_eq!(filter_directive(0, 0), "info");
        assert_eq!(filter_directive(1, 0), "debug");
        assert_eq!(filter_directive(5, 0), "trace");
        assert_eq!(filter_directive(0, 1), "warn");
        assert_eq!(filter_directive(0, 2), "error");
        assert_eq!(filter_directive(0, 3), "off");
    }

    #[test]
    fn no_color_is_any_non_empty_value() {
        use std::ffi::OsStr;
        assert!(!no_color(None));
        assert!(!no_color(Some(OsStr::new(""))));
        assert!(no_color(Some(OsStr::new("1"))));
        assert!(no_color(Some(OsStr::new("0"))));
        assert!(no_color(Some(OsStr::new("false"))));
    }
}
