//! `mp validate` (also `mp ohlcv validate`, `mp validate-ohlcv`) and `mp ingest --validate`.

use std::io::Write;
use std::sync::Arc;

use marketpipe_csv::{CsvReportStore, parse_report_name};
use marketpipe_domain::{DateRange, JobId, SessionKind, Severity, Symbol};
use marketpipe_ports::{SystemClock, ValidationReport, ValidationReportRepository};
use marketpipe_sqlite::SqliteStore;
use marketpipe_validation::{
    ValidationDeps, ValidationError, ValidationRun, ValidationTarget, Validator,
};
use serde::Serialize;

use crate::cli::ValidateArgs;
use crate::commands::Context;
use crate::error::{AppError, usage};
use crate::wiring;

/// `<data_dir>/reports`.
pub(crate) fn reports_dir(ctx: &Context) -> std::path::PathBuf {
    ctx.data_dir.join("reports")
}

pub(crate) async fn run(
    ctx: &Context,
    args: &ValidateArgs,
    out: &mut dyn Write,
) -> Result<(), AppError> {
    if let Some(name) = &args.show {
        return show(ctx, name, args.json, out).await;
    }
    if args.list {
        return list(ctx, args.json, out).await;
    }
    if args.json {
        return Err(usage(anyhow::anyhow!(
            "--json goes with --list or --show REPORT"
        )));
    }
    Validator::check_concurrency(args.concurrency).map_err(usage)?;
    // Inputs first: nothing is opened for a bad value.
    let range_target = match (&args.job_id, &args.symbols) {
        (Some(_), _) => None,
        (None, Some(list)) => {
            let symbols = Symbol::parse_list(list).map_err(usage)?;
            let (Some(start), Some(end)) = (&args.start, &args.end) else {
                return Err(usage(anyhow::anyhow!("--symbols needs --start and --end")));
            };
            let dates = DateRange::parse(start, end).map_err(usage)?;
            marketpipe_domain::TradingCalendar::xnys()
                .sessions(dates)
                .map_err(usage)?;
            let session = if args.extended_hours {
                SessionKind::Extended
            } else {
                ctx.config.validation.session
            };
            Some(ValidationTarget::for_range(symbols, dates, session).map_err(usage)?)
        }
        (None, None) => {
            return Err(usage(anyhow::anyhow!(
                "say what to validate: --job-id JOB_ID, or --symbols LIST --start DATE --end DATE (or --list / --show REPORT)"
            )));
        }
    };
    let job_id = args
        .job_id
        .as_deref()
        .map(JobId::new)
        .transpose()
        .map_err(usage)?;
    if job_id.is_some() && !wiring::database_path(&ctx.data_dir).exists() {
        return Err(usage(anyhow::anyhow!(
            "job {} not found: {} has no metadata database (see `mp jobs list`)",
            job_id.as_ref().map(ToString::to_string).unwrap_or_default(),
            ctx.data_dir.display()
        )));
    }
    crate::config::ensure_writable_dir(&ctx.data_dir)?;
    let store = Arc::new(wiring::open_store(&ctx.data_dir).await?);
    let validator = validator(ctx, &store, args.concurrency)?;
    let target = match (job_id, range_target) {
        (Some(id), _) => validator.target_for_job(&id).await.map_err(|e| match e {
            ValidationError::JobNotFound(_) => usage(e),
            other => AppError::Failed(other.into()),
        })?,
        (None, Some(t)) => t,
        (None, None) => return Err(AppError::Failed(anyhow::anyhow!("nothing to validate"))),
    };
    let result = validator.run(&target).await;
    store.close().await;
    let run = result.map_err(|e| match e {
        ValidationError::Domain(_) | ValidationError::BadConcurrency => usage(e),
        other => AppError::Failed(other.into()),
    })?;
    print_run(ctx, &run, out)?;
    outcome(&run, args.strict)
}

/// Validates the job just ingested (`mp ingest --validate`).
pub(crate) async fn after_ingest(
    ctx: &Context,
    store: &Arc<SqliteStore>,
    job_id: &JobId,
    out: &mut dyn Write,
) -> Result<(), AppError> {
    let validator = validator(ctx, store, marketpipe_validation::DEFAULT_CONCURRENCY)?;
    let target = validator
        .target_for_job(job_id)
        .await
        .map_err(|e| AppError::Failed(e.into()))?;
    let run = validator
        .run(&target)
        .await
        .map_err(|e| AppError::Failed(e.into()))?;
    writeln!(out)?;
    print_run(ctx, &run, out)?;
    outcome(&run, false)
}

fn validator(
    ctx: &Context,
    store: &Arc<SqliteStore>,
    concurrency: usize,
) -> Result<Validator, AppError> {
    let lake = Arc::new(wiring::lake(&ctx.data_dir, &ctx.config)?);
    let csv: Arc<dyn ValidationReportRepository> = Arc::new(CsvReportStore::new(reports_dir(ctx)));
    let deps = ValidationDeps {
        lake,
        // The CSV file is the user's report; the metadata rows keep the run summary.
        reports: vec![csv, store.clone()],
        jobs: store.clone(),
        events: Arc::new(crate::events::LogPublisher),
        clock: Arc::new(SystemClock),
    };
    Ok(Validator::new(deps, ctx.config.validation, concurrency))
}

fn outcome(run: &ValidationRun, strict: bool) -> Result<(), AppError> {
    crate::telemetry::set_job(&run.run_id);
    let failures: Vec<String> = run
        .failures()
        .map(|s| format!("{}: {}", s.symbol, s.error.as_deref().unwrap_or("")))
        .collect();
    if !failures.is_empty() {
        return Err(AppError::Failed(anyhow::anyhow!(
            "{} symbol(s) could not be validated: {}",
            failures.len(),
            failures.join("; ")
        )));
    }
    let errors = run.count(Severity::Error);
    if strict && errors > 0 {
        return Err(AppError::Failed(anyhow::anyhow!(
            "--strict: {errors} error-severity finding(s) in run {}",
            run.run_id
        )));
    }
    Ok(())
}

fn print_run(ctx: &Context, run: &ValidationRun, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(
        out,
        "validation {}: {} symbols, {} bars, {} errors, {} warnings ({:.2} s, {:.0} bars/s)",
        run.run_id,
        run.symbols.len(),
        run.bars,
        run.count(Severity::Error),
        run.count(Severity::Warning),
        run.elapsed.as_secs_f64(),
        run.bars_per_second()
    )?;
    writeln!(
        out,
        "{:<10}  {:>9}  {:>7}  {:>8}  report",
        "symbol", "bars", "errors", "warnings"
    )?;
    for s in &run.symbols {
        match (&s.report, &s.error) {
            (Some(r), None) => writeln!(
                out,
                "{:<10}  {:>9}  {:>7}  {:>8}  {}",
                s.symbol.as_str(),
                s.bars,
                r.errors,
                r.warnings,
                reports_dir(ctx).join(format!("{}.csv", r.name)).display()
            )?,
            (_, error) => writeln!(
                out,
                "{:<10}  {:>9}  {:>7}  {:>8}  not validated: {}",
                s.symbol.as_str(),
                s.bars,
                "-",
                "-",
                error.as_deref().unwrap_or("")
            )?,
        }
    }
    if !run.counts.is_empty() {
        writeln!(out)?;
        writeln!(out, "{:<24}  {:<8}  {:>8}", "rule", "severity", "findings")?;
        for ((rule, severity), n) in &run.counts {
            writeln!(
                out,
                "{:<24}  {:<8}  {:>8}",
                rule.as_str(),
                severity.as_str(),
                n
            )?;
        }
    }
    Ok(())
}

/// One report of `mp validate --list --json`.
#[derive(Debug, Serialize)]
struct ReportRow<'a> {
    name: &'a str,
    run_id: &'a str,
    symbol: &'a str,
    bars_checked: u64,
    errors: u64,
    warnings: u64,
    created_at: String,
}

/// `mp validate --show REPORT --json`: the report with its findings.
#[derive(Debug, Serialize)]
struct ReportView<'a> {
    name: String,
    run_id: &'a str,
    symbol: &'a str,
    frame: &'static str,
    bars_checked: u64,
    created_at: String,
    errors: usize,
    warnings: usize,
    findings: Vec<FindingView<'a>>,
}

/// One finding of [`ReportView`].
#[derive(Debug, Serialize)]
struct FindingView<'a> {
    ts: String,
    rule: &'static str,
    severity: &'static str,
    detail: &'a str,
}

impl<'a> ReportView<'a> {
    fn new(r: &'a ValidationReport) -> Self {
        let count = |severity| r.findings.iter().filter(|f| f.severity == severity).count();
        Self {
            name: r.name(),
            run_id: r.run_id.as_str(),
            symbol: r.symbol.as_str(),
            frame: r.frame.as_str(),
            bars_checked: r.bars_checked,
            created_at: r.created_at.to_rfc3339(),
            errors: count(Severity::Error),
            warnings: count(Severity::Warning),
            findings: r
                .findings
                .iter()
                .map(|f| FindingView {
                    ts: f.ts.to_rfc3339(),
                    rule: f.rule.as_str(),
                    severity: f.severity.as_str(),
                    detail: &f.detail,
                })
                .collect(),
        }
    }
}

fn write_json(out: &mut dyn Write, value: &impl Serialize) -> Result<(), AppError> {
    serde_json::to_writer_pretty(&mut *out, value).map_err(|e| AppError::Failed(e.into()))?;
    writeln!(out)?;
    Ok(())
}

async fn list(ctx: &Context, json: bool, out: &mut dyn Write) -> Result<(), AppError> {
    if !wiring::database_path(&ctx.data_dir).exists() {
        if json {
            writeln!(out, "[]")?;
        } else {
            writeln!(out, "no reports yet in {}", ctx.data_dir.display())?;
        }
        return Ok(());
    }
    let store = wiring::open_store(&ctx.data_dir).await?;
    let reports = ValidationReportRepository::list(&store)
        .await
        .map_err(|e| AppError::Failed(e.into()));
    store.close().await;
    let reports = reports?;
    if json {
        let rows: Vec<ReportRow<'_>> = reports
            .iter()
            .map(|r| ReportRow {
                name: &r.name,
                run_id: r.run_id.as_str(),
                symbol: r.symbol.as_str(),
                bars_checked: r.bars_checked,
                errors: r.errors,
                warnings: r.warnings,
                created_at: r.created_at.to_rfc3339(),
            })
            .collect();
        return write_json(out, &rows);
    }
    writeln!(
        out,
        "{:<40}  {:>9}  {:>7}  {:>8}  {:<20}",
        "report", "bars", "errors", "warnings", "created"
    )?;
    for r in reports {
        writeln!(
            out,
            "{:<40}  {:>9}  {:>7}  {:>8}  {:<20}",
            r.name,
            r.bars_checked,
            r.errors,
            r.warnings,
            r.created_at.to_datetime().format("%Y-%m-%dT%H:%M:%SZ")
        )?;
    }
    Ok(())
}

async fn show(ctx: &Context, name: &str, json: bool, out: &mut dyn Write) -> Result<(), AppError> {
    parse_report_name(name).map_err(usage)?;
    let csv = CsvReportStore::new(reports_dir(ctx));
    let report = csv
        .get(name)
        .await
        .map_err(|e| AppError::Failed(e.into()))?
        .ok_or_else(|| {
            usage(anyhow::anyhow!(
                "report {name} not found in {} (see `mp validate --list`)",
                reports_dir(ctx).display()
            ))
        })?;
    if json {
        return write_json(out, &ReportView::new(&report));
    }
    writeln!(
        out,
        "report {} ({} findings)",
        report.name(),
        report.findings.len()
    )?;
    writeln!(
        out,
        "{:<20}  {:<24}  {:<8}  detail",
        "ts", "rule", "severity"
    )?;
    for f in &report.findings {
        writeln!(
            out,
            "{:<20}  {:<24}  {:<8}  {}",
            f.ts,
            f.rule.as_str(),
            f.severity.as_str(),
            f.detail
        )?;
    }
    Ok(())
}
