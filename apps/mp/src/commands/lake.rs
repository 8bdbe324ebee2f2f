//! `mp lake upgrade` and `mp lake status`.

use std::io::Write;
use std::sync::Arc;

use marketpipe_lake::{
    FormatCensus, LakeUpgrader, UpgradeDeps, UpgradeProgress, UpgradeReport, census,
};
use marketpipe_ports::{LAKE_FORMAT_VERSION, PartitionKey, WriteOutcome};

use crate::commands::Context;
use crate::error::AppError;
use crate::wiring;

/// `mp lake upgrade [--dry-run]`.
pub(crate) async fn upgrade(
    ctx: &Context,
    dry_run: bool,
    out: &mut dyn Write,
) -> Result<(), AppError> {
    let lake = Arc::new(wiring::lake(&ctx.data_dir, &ctx.config)?);
    if dry_run {
        // Read-only: the metadata database is not even opened.
        let census = census(lake.as_ref()).await.map_err(failed)?;
        return print_plan(out, &census);
    }
    crate::config::ensure_writable_dir(&ctx.data_dir)?;
    let store = Arc::new(wiring::open_store(&ctx.data_dir).await?);
    let upgrader = LakeUpgrader::new(UpgradeDeps {
        lake,
        manifest: store.clone(),
        clock: Arc::clone(&ctx.clock),
    });
    let result = upgrader.run(&Logged).await;
    store.close().await;
    let report = result.map_err(failed)?;
    print_report(out, &report)?;
    if report.failures.is_empty() {
        Ok(())
    } else {
        Err(AppError::Failed(anyhow::anyhow!(
            "{} partitions could not be upgraded (they are left as they were); run `mp lake \
             upgrade` again after fixing them",
            report.failures.len()
        )))
    }
}

/// `mp lake status [--json]`.
pub(crate) async fn status(ctx: &Context, json: bool, out: &mut dyn Write) -> Result<(), AppError> {
    let lake = wiring::lake(&ctx.data_dir, &ctx.config)?;
    let census = census(&lake).await.map_err(failed)?;
    if json {
        let versions: serde_json::Map<String, serde_json::Value> = census
            .files_by_version
            .iter()
            .map(|(v, n)| (v.to_string(), serde_json::Value::from(*n)))
            .collect();
        let value = serde_json::json!({
            "current_format": LAKE_FORMAT_VERSION,
            "files_by_format": versions,
            "outdated_partitions": census.outdated_partitions(),
        });
        serde_json::to_writer_pretty(&mut *out, &value).map_err(|e| AppError::Failed(e.into()))?;
        writeln!(out)?;
        return Ok(());
    }
    writeln!(out, "lake format {LAKE_FORMAT_VERSION} is current")?;
    if census.files() == 0 {
        writeln!(out, "  no partition files")?;
    }
    for (version, files) in &census.files_by_version {
        writeln!(out, "  format {version}: {files} files")?;
    }
    if census.outdated_partitions() > 0 {
        writeln!(
            out,
            "  {} partitions to upgrade: run `mp lake upgrade`",
            census.outdated_partitions()
        )?;
    }
    Ok(())
}

fn failed(e: impl Into<anyhow::Error>) -> AppError {
    AppError::Failed(e.into())
}

/// Logs each upgraded partition (stderr, at info: hidden by `-q`).
struct Logged;

impl UpgradeProgress for Logged {
    fn upgraded(&self, key: &PartitionKey, outcome: &WriteOutcome) {
        tracing::info!(partition = %key, path = %outcome.path, "upgraded");
    }
}

fn print_plan(out: &mut dyn Write, census: &FormatCensus) -> Result<(), AppError> {
    if census.outdated.is_empty() {
        writeln!(
            out,
            "lake upgrade (dry run): nothing to do, all {} partition files are in format {LAKE_FORMAT_VERSION}",
            census.files()
        )?;
        return Ok(());
    }
    writeln!(
        out,
        "lake upgrade (dry run): {} partitions ({} files) would be rewritten in format {LAKE_FORMAT_VERSION}",
        census.outdated_partitions(),
        census.outdated_files()
    )?;
    for file in &census.outdated {
        writeln!(out, "  format {}  {}", file.version, file.path)?;
    }
    Ok(())
}

fn print_report(out: &mut dyn Write, report: &UpgradeReport) -> std::io::Result<()> {
    if report.planned == 0 {
        return writeln!(
            out,
            "lake upgrade: nothing to do, every partition is in format {LAKE_FORMAT_VERSION}"
        );
    }
    writeln!(out, "lake upgrade to format {LAKE_FORMAT_VERSION}")?;
    writeln!(
        out,
        "  upgraded     {} of {} partitions",
        report.upgraded, report.planned
    )?;
    if report.provenance_restored > 0 || report.provenance_unknown > 0 {
        writeln!(
            out,
            "  provenance   {} aggregated bars given their 1m bars' provider, {} without 1m bars kept `aggregate`",
            report.provenance_restored, report.provenance_unknown
        )?;
    }
    for failure in &report.failures {
        writeln!(out, "  failed       {}: {}", failure.key, failure.error)?;
    }
    Ok(())
}
