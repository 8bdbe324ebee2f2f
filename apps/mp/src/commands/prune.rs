//! `mp prune parquet` and `mp prune sqlite` (alias `mp prune database`).

use std::io::Write;
use std::sync::Arc;

use chrono::NaiveDate;
use marketpipe_domain::calendar::{ny_date, ny_instant};
use marketpipe_domain::time::parse_date;
use marketpipe_domain::{Span, Symbol, Timeframe};
use marketpipe_lake::{PruneRequest, RetentionDeps, prune_lake};
use marketpipe_ports::MetadataRetention;

use crate::cli::{PruneCut, PruneParquetArgs, PruneSqliteArgs};
use crate::commands::Context;
use crate::error::{AppError, usage};
use crate::wiring;

/// The cut date of `--older-than SPAN` (from today's New York date on the context's clock)
/// or `--before DATE`.
fn cut_date(ctx: &Context, cut: &PruneCut) -> Result<NaiveDate, AppError> {
    match (&cut.older_than, &cut.before) {
        (Some(span), None) => {
            let span: Span = span
                .parse()
                .map_err(|e| usage(anyhow::Error::new(e).context("--older-than")))?;
            span.cut_before(ny_date(ctx.clock.now()))
                .map_err(|e| usage(anyhow::Error::new(e).context("--older-than")))
        }
        (None, Some(date)) => {
            parse_date(date).map_err(|e| usage(anyhow::Error::new(e).context("--before")))
        }
        _ => Err(usage(anyhow::anyhow!(
            "give --older-than SPAN (e.g. 5y) or --before YYYY-MM-DD"
        ))),
    }
}

/// `mp prune parquet (--older-than SPAN | --before DATE) [--frames …] [--symbols …]
/// [--dry-run] [--json]`.
pub(crate) async fn parquet(
    ctx: &Context,
    args: &PruneParquetArgs,
    out: &mut dyn Write,
) -> Result<(), AppError> {
    let before = cut_date(ctx, &args.cut)?;
    let frames = match &args.frames {
        Some(list) => list
            .split(',')
            .map(|f| f.trim().parse::<Timeframe>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| usage(anyhow::Error::new(e).context("--frames")))?,
        None => Vec::new(),
    };
    let symbols = match &args.symbols {
        Some(list) => Symbol::parse_list(list).map_err(usage)?,
        None => Vec::new(),
    };
    let lake = Arc::new(wiring::lake(&ctx.data_dir, &ctx.config)?);
    if !args.dry_run {
        crate::config::ensure_writable_dir(&ctx.data_dir)?;
    }
    let store = Arc::new(wiring::open_store(&ctx.data_dir).await?);
    let deps = RetentionDeps {
        lake,
        manifest: store.clone(),
        coverage: store.clone(),
        clock: Arc::clone(&ctx.clock),
    };
    let request = PruneRequest {
        before,
        frames,
        symbols,
        dry_run: args.dry_run,
    };
    let result = prune_lake(&deps, &request).await;
    store.close().await;
    let report = result.map_err(|e| AppError::Failed(e.into()))?;
    if args.json {
        let value = serde_json::json!({
            "before": before.to_string(),
            "cut": report.cut.map(marketpipe_domain::Timestamp::to_rfc3339),
            "dry_run": args.dry_run,
            "rows_removed": report.rows_removed(),
            "coverage_entries": report.coverage_entries,
            "partitions": report.partitions.iter().map(|p| serde_json::json!({
                "partition": p.key.to_string(),
                "path": p.path,
                "action": if p.removed { "remove" } else { "rewrite" },
                "rows_removed": p.rows_removed,
                "rows_kept": p.rows_kept,
            })).collect::<Vec<_>>(),
        });
        writeln!(out, "{value:#}")?;
        return Ok(());
    }
    let verb = |done: &'static str, would: &'static str| if args.dry_run { would } else { done };
    writeln!(
        out,
        "prune parquet: sessions before {before} ({} ET midnight)",
        ny_instant(before, 0, 0)
    )?;
    for p in &report.partitions {
        if p.removed {
            writeln!(
                out,
                "  {} {}  lake/{} ({} rows)",
                verb("removed  ", "would remove "),
                p.key,
                p.path,
                p.rows_removed
            )?;
        } else {
            writeln!(
                out,
                "  {} {}  lake/{} ({} rows before the cut, {} kept)",
                verb("rewrote  ", "would rewrite"),
                p.key,
                p.path,
                p.rows_removed,
                p.rows_kept
            )?;
        }
    }
    writeln!(
        out,
        "  {} {} rows in {} partitions, {} coverage entries{}",
        verb("removed", "would remove"),
        report.rows_removed(),
        report.partitions.len(),
        report.coverage_entries,
        if args.dry_run {
            "; dry run: nothing changed"
        } else {
            ""
        }
    )?;
    Ok(())
}

/// `mp prune sqlite (--older-than SPAN | --before DATE) [--dry-run] [--json]`.
pub(crate) async fn sqlite(
    ctx: &Context,
    args: &PruneSqliteArgs,
    out: &mut dyn Write,
) -> Result<(), AppError> {
    let before = cut_date(ctx, &args.cut)?;
    if !wiring::database_path(&ctx.data_dir).exists() {
        writeln!(out, "no metadata database in {}", ctx.data_dir.display())?;
        return Ok(());
    }
    let store = wiring::open_store(&ctx.data_dir).await?;
    let result = store
        .prune_metadata(ny_instant(before, 0, 0), args.dry_run)
        .await;
    store.close().await;
    let pruned = result.map_err(|e| AppError::Failed(e.into()))?;
    if args.json {
        let value = serde_json::json!({
            "before": before.to_string(),
            "dry_run": args.dry_run,
            "jobs": pruned.jobs,
            "work_items": pruned.work_items,
            "metrics": pruned.metrics,
            "reports": pruned.reports,
            "findings": pruned.findings,
            "bytes_reclaimed": pruned.bytes_reclaimed,
        });
        writeln!(out, "{value:#}")?;
        return Ok(());
    }
    writeln!(
        out,
        "prune sqlite: before {before}{}",
        if args.dry_run {
            " (dry run: nothing changed)"
        } else {
            ""
        }
    )?;
    writeln!(
        out,
        "  jobs         {} finished ({} work items)",
        pruned.jobs, pruned.work_items
    )?;
    writeln!(out, "  metrics      {} samples", pruned.metrics)?;
    writeln!(
        out,
        "  reports      {} ({} findings)",
        pruned.reports, pruned.findings
    )?;
    if !args.dry_run {
        writeln!(
            out,
            "  compacted    {} bytes reclaimed",
            pruned.bytes_reclaimed
        )?;
    }
    Ok(())
}
