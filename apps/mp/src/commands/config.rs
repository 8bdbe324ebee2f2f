//! `mp config init|show`.

use std::io::Write;
use std::path::Path;

use anyhow::Context as _;

use crate::commands::Context;
use crate::config::{EXAMPLE, show};
use crate::error::{AppError, usage};

pub(crate) fn init(
    output: Option<&Path>,
    force: bool,
    out: &mut dyn Write,
) -> Result<(), AppError> {
    let Some(path) = output else {
        out.write_all(EXAMPLE.as_bytes())?;
        return Ok(());
    };
    if path.exists() && !force {
        return Err(usage(anyhow::anyhow!(
            "{} already exists; pass --force to overwrite it",
            path.display()
        )));
    }
    std::fs::write(path, EXAMPLE)
        .with_context(|| format!("cannot write {}", path.display()))
        .map_err(usage)?;
    writeln!(out, "wrote {}", path.display())?;
    Ok(())
}

pub(crate) fn show_resolved(
    ctx: &Context,
    source: Option<&Path>,
    out: &mut dyn Write,
) -> Result<(), AppError> {
    let mut config = ctx.config.clone();
    config.data_dir.clone_from(&ctx.data_dir);
    let text = show(&config).map_err(AppError::Failed)?;
    match source {
        Some(p) => writeln!(out, "# from {} with MP_* overrides", p.display())?,
        None => writeln!(out, "# defaults with MP_* overrides (no --config file)")?,
    }
    out.write_all(text.as_bytes())?;
    Ok(())
}
