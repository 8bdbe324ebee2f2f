//! `mp completions SHELL` and `mp man`: generated from the clap definitions in `cli`, so
//! they can never drift from the flags `mp` really takes. Neither reads the configuration.

use std::io::Write;

use clap::{Arg, CommandFactory};
use clap_mangen::Man;
use clap_mangen::roff::{Inline, Roff, bold, italic, roman};

use crate::cli::Cli;
use crate::error::AppError;

/// `mp completions SHELL`: the completion script for `shell` on stdout.
pub(crate) fn completions(
    shell: clap_complete::Shell,
    out: &mut dyn Write,
) -> Result<(), AppError> {
    let mut cmd = Cli::command();
    // Into memory first: clap_complete panics when its writer fails (`mp completions fish |
    // head`); a closed stdout is then an ordinary I/O error here.
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, "mp", &mut script);
    out.write_all(&script)?;
    out.flush()?;
    Ok(())
}

/// `mp man`: one roff page for `mp` and every subcommand. `clap_mangen` renders the top
/// command's sections; each subcommand gets a subsection of COMMANDS here, because `mp`
/// installs one page and references to `mp-ingest(1)` pages would lead nowhere.
pub(crate) fn man(out: &mut dyn Write) -> Result<(), AppError> {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    // No date (the page is the same for every build of a version); an explicit empty roff
    // argument keeps the source and manual in their places on the .TH line.
    let page = Man::new(cmd.clone())
        .title("MP")
        .date("\"\"")
        .manual("MarketPipe Manual");
    let mut commands = Roff::new();
    commands.control("SH", ["COMMANDS"]);
    for sub in visible_subcommands(&cmd) {
        command_section(&mut commands, sub);
    }
    trailer(&mut commands);
    let mut first = true;
    let mut part = |render: &dyn Fn(&mut Vec<u8>) -> std::io::Result<()>| {
        let mut buf = Vec::new();
        render(&mut buf)?;
        // Each rendering starts with the same two-line preamble; the page needs it once.
        let body = if first {
            &buf[..]
        } else {
            buf.strip_prefix(PREAMBLE).unwrap_or(&buf)
        };
        first = false;
        out.write_all(body)
    };
    part(&|w| page.render_title(w))?;
    part(&|w| page.render_name_section(w))?;
    part(&|w| page.render_synopsis_section(w))?;
    part(&|w| page.render_description_section(w))?;
    part(&|w| page.render_options_section(w))?;
    part(&|w| commands.to_writer(w))?;
    part(&|w| page.render_version_section(w))?;
    out.flush()?;
    Ok(())
}

/// What `roff` writes before every document (the apostrophe string for groff and others).
const PREAMBLE: &[u8] = b".ie \\n(.g .ds Aq \\(aq\n.el .ds Aq '\n";

fn visible_subcommands(cmd: &clap::Command) -> impl Iterator<Item = &clap::Command> {
    cmd.get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
}

/// One `.SS` per command, depth first: its usage, description and own options (the global
/// ones are under OPTIONS).
fn command_section(roff: &mut Roff, cmd: &clap::Command) {
    let name = cmd.get_bin_name().unwrap_or_else(|| cmd.get_name());
    roff.control("SS", [name]);
    let usage = cmd.clone().render_usage().to_string();
    let usage = usage.strip_prefix("Usage: ").unwrap_or(&usage).to_owned();
    roff.text([bold(usage)]);
    if let Some(about) = cmd.get_long_about().or_else(|| cmd.get_about()) {
        roff.control("PP", []);
        roff.text([roman(about.to_string())]);
    }
    let aliases: Vec<&str> = cmd.get_visible_aliases().collect();
    if !aliases.is_empty() {
        roff.control("PP", []);
        roff.text([roman(format!("Also: {}.", aliases.join(", ")))]);
    }
    for arg in cmd
        .get_arguments()
        .filter(|a| !a.is_hide_set() && !a.is_global_set())
        .filter(|a| !matches!(a.get_id().as_str(), "help" | "version"))
    {
        roff.control("TP", []);
        roff.text(arg_header(arg));
        roff.text([roman(arg_body(arg))]);
    }
    for sub in visible_subcommands(cmd) {
        command_section(roff, sub);
    }
}

/// `-q, --quiet`, `--start <START>` or `<SQL>`.
fn arg_header(arg: &Arg) -> Vec<Inline> {
    let names = arg.get_value_names().map_or_else(
        || vec![arg.get_id().as_str().to_uppercase()],
        |names| names.iter().map(ToString::to_string).collect(),
    );
    let values = names
        .iter()
        .map(|n| format!("<{n}>"))
        .collect::<Vec<_>>()
        .join(" ");
    if arg.is_positional() {
        return vec![italic(values)];
    }
    let mut header = Vec::new();
    if let Some(short) = arg.get_short() {
        header.push(bold(format!("-{short}")));
    }
    if let Some(long) = arg.get_long() {
        if !header.is_empty() {
            header.push(roman(", "));
        }
        header.push(bold(format!("--{long}")));
    }
    if takes_values(arg) {
        header.push(roman(" "));
        header.push(italic(values));
    }
    header
}

/// The help text, then the default, the possible values and the environment variable.
fn arg_body(arg: &Arg) -> String {
    let mut body = vec![
        arg.get_long_help()
            .or_else(|| arg.get_help())
            .map(ToString::to_string)
            .unwrap_or_default(),
    ];
    if takes_values(arg) {
        let possible: Vec<String> = arg
            .get_possible_values()
            .iter()
            .filter(|v| !v.is_hide_set())
            .map(|v| v.get_name().to_owned())
            .collect();
        if !possible.is_empty() && !arg.is_hide_possible_values_set() {
            body.push(format!("[possible values: {}]", possible.join(", ")));
        }
        let defaults: Vec<String> = arg
            .get_default_values()
            .iter()
            .map(|v| v.to_string_lossy().into_owned())
            .collect();
        if !defaults.is_empty() && !arg.is_hide_default_value_set() {
            body.push(format!("[default: {}]", defaults.join(",")));
        }
    }
    if let Some(env) = arg.get_env() {
        body.push(format!("[env: {}]", env.to_string_lossy()));
    }
    body.join(" ")
}

fn takes_values(arg: &Arg) -> bool {
    arg.get_num_args().is_some_and(|n| n.takes_values())
}

/// EXIT STATUS and ENVIRONMENT, as in docs/cli.md.
fn trailer(roff: &mut Roff) {
    roff.control("SH", ["EXIT STATUS"]);
    for (code, meaning) in [
        ("0", "Done."),
        (
            "1",
            "Failed: a job that ends failed or cancelled, an I/O failure.",
        ),
        (
            "2",
            "Usage: a bad value, named in the message; nothing was written.",
        ),
    ] {
        roff.control("TP", []);
        roff.text([bold(code)]);
        roff.text([roman(meaning)]);
    }
    roff.control("SH", ["ENVIRONMENT"]);
    for (name, meaning) in [
        ("MP_DATA_DIR", "The data directory (as --data-dir)."),
        ("MP_CONFIG", "The configuration file (as --config)."),
        ("MP_LOG_FORMAT", "text or json (as --log-format)."),
        ("RUST_LOG", "Log filter; overrides -v and -q."),
        (
            "NO_COLOR",
            "Any non-empty value: no colour or other escape sequence in logs and progress.",
        ),
    ] {
        roff.control("TP", []);
        roff.text([bold(name)]);
        roff.text([roman(meaning)]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn man_page() -> String {
        let mut out = Vec::new();
        man(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn man_page_holds_every_command_once() {
        let page = man_page();
        assert!(page.contains("\n.TH MP 1 \"\" \"mp "), "{}", &page[..200]);
        assert_eq!(page.matches(".ds Aq").count(), 2, "one preamble");
        for name in [
            "mp ingest",
            "mp validate",
            "mp aggregate",
            "mp query",
            "mp jobs list",
            "mp jobs show",
            "mp calendar",
            "mp completions",
            "mp man",
        ] {
            assert_eq!(
                page.matches(&format!(".SS \"{name}\"\n")).count(),
                1,
                "{name} in:\n{page}"
            );
        }
        // Global flags only in the top OPTIONS section, not once per command.
        assert_eq!(
            page.matches("specified with the \\fBMP_DATA_DIR\\fR")
                .count(),
            1
        );
        assert!(!page.contains("mp-ingest(1)"));
    }

    #[test]
    fn completions_for_every_shell() {
        for shell in [
            clap_complete::Shell::Bash,
            clap_complete::Shell::Zsh,
            clap_complete::Shell::Fish,
            clap_complete::Shell::PowerShell,
            clap_complete::Shell::Elvish,
        ] {
            let mut out = Vec::new();
            completions(shell, &mut out).unwrap();
            let script = String::from_utf8(out).unwrap();
            assert!(script.contains("ingest"), "{shell}: {script}");
        }
    }
}
