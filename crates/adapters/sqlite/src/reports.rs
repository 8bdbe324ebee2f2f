//! `ValidationReportRepository`: the `validation_reports`, `validation_counts` and
//! `validation_findings` tables.

use std::str::FromStr;

use async_trait::async_trait;
use marketpipe_domain::{Finding, JobId, RuleId, Severity, Symbol, Timestamp};
use marketpipe_ports::{
    ReportSummary, RepositoryError, ValidationReport, ValidationReportRepository,
};
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Sqlite};

use crate::SqliteStore;
use crate::convert::{column, corrupt, count_from_i64, count_to_i64, map_sqlx, symbol, timeframe};

/// Findings per multi-row `INSERT` (6 parameters each, far below SQLite's 32,766).
const FINDINGS_PER_INSERT: usize = 1000;

/// A stored run id.
fn run_id(name: &str, text: &str) -> Result<JobId, RepositoryError> {
    JobId::new(text).map_err(|e| corrupt(format!("report {name}: run id {text:?}: {e}")))
}

/// A stored rule id.
fn rule(name: &str, text: &str) -> Result<RuleId, RepositoryError> {
    RuleId::from_str(text).map_err(|e| corrupt(format!("report {name}: {e}")))
}

/// A stored severity (`Severity::as_str`).
fn severity(name: &str, text: &str) -> Result<Severity, RepositoryError> {
    [Severity::Info, Severity::Warning, Severity::Error]
        .into_iter()
        .find(|s| s.as_str() == text)
        .ok_or_else(|| corrupt(format!("report {name}: unknown severity {text:?}")))
}

fn summary_from_row(row: &SqliteRow) -> Result<ReportSummary, RepositoryError> {
    let name: String = column(row, "name")?;
    Ok(ReportSummary {
        run_id: run_id(&name, &column::<String>(row, "run_id")?)?,
        symbol: symbol(&column::<String>(row, "symbol")?)?,
        bars_checked: count_from_i64("bars_checked", column(row, "bars_checked")?)?,
        errors: count_from_i64("errors", column(row, "errors")?)?,
        warnings: count_from_i64("warnings", column(row, "warnings")?)?,
        created_at: Timestamp::from_nanos(column(row, "created_at")?),
        name,
    })
}

fn finding_from_row(
    name: &str,
    report_symbol: Symbol,
    row: &SqliteRow,
) -> Result<Finding, RepositoryError> {
    Ok(Finding {
        symbol: report_symbol,
        ts: Timestamp::from_nanos(column(row, "ts")?),
        rule: rule(name, &column::<String>(row, "rule")?)?,
        severity: severity(name, &column::<String>(row, "severity")?)?,
        detail: column(row, "detail")?,
    })
}

#[async_trait]
impl ValidationReportRepository for SqliteStore {
    async fn save(&self, report: &ValidationReport) -> Result<ReportSummary, RepositoryError> {
        let summary = report.summary();
        let name = summary.name.as_str();
        // The findings table has no symbol column: a finding's symbol is the report's.
        if let Some((i, other)) = report
            .findings
            .iter()
            .enumerate()
            .find(|(_, f)| f.symbol != report.symbol)
        {
            return Err(RepositoryError::Backend {
                message: format!(
                    "report {name}: finding {i} is for {}, but a report holds the findings of \
                     one symbol ({})",
                    other.symbol, report.symbol
                ),
                source: None,
            });
        }
        let counts = report
            .counts()
            .into_iter()
            .map(|(rule, severity, n)| Ok((rule, severity, count_to_i64("count", n)?)))
            .collect::<Result<Vec<_>, RepositoryError>>()?;
        let bars_checked = count_to_i64("bars_checked", summary.bars_checked)?;
        let errors = count_to_i64("errors", summary.errors)?;
        let warnings = count_to_i64("warnings", summary.warnings)?;
        let context = format!(
            "saving validation report {name} ({} findings)",
            report.findings.len()
        );
        let err = |e| map_sqlx(&context, e);

        let _guard = self.write_guard().await;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(err)?;
        sqlx::query("DELETE FROM validation_reports WHERE name = ?1")
            .bind(name)
            .execute(&mut *tx)
            .await
            .map_err(err)?;
        sqlx::query(
            "INSERT INTO validation_reports (name, run_id, symbol, frame, bars_checked, \
             errors, warnings, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )
        .bind(name)
        .bind(report.run_id.as_str())
        .bind(report.symbol.as_str())
        .bind(report.frame.as_str())
        .bind(bars_checked)
        .bind(errors)
        .bind(warnings)
        .bind(report.created_at.nanos())
        .execute(&mut *tx)
        .await
        .map_err(err)?;
        if !counts.is_empty() {
            let mut insert = QueryBuilder::<Sqlite>::new(
                "INSERT INTO validation_counts (name, rule, severity, count) ",
            );
            insert.push_values(&counts, |mut values, (rule, severity, n)| {
                values
                    .push_bind(name)
                    .push_bind(rule.as_str())
                    .push_bind(severity.as_str())
                    .push_bind(*n);
            });
            insert.build().execute(&mut *tx).await.map_err(err)?;
        }
        for (chunk_index, chunk) in report.findings.chunks(FINDINGS_PER_INSERT).enumerate() {
            let first = chunk_index * FINDINGS_PER_INSERT;
            let mut insert = QueryBuilder::<Sqlite>::new(
                "INSERT INTO validation_findings (name, seq, ts, rule, severity, detail) ",
            );
            let mut seq = i64::try_from(first).unwrap_or(i64::MAX);
            insert.push_values(chunk, |mut values, f| {
                values
                    .push_bind(name)
                    .push_bind(seq)
                    .push_bind(f.ts.nanos())
                    .push_bind(f.rule.as_str())
                    .push_bind(f.severity.as_str())
                    .push_bind(f.detail.as_str());
                seq = seq.saturating_add(1);
            });
            insert.build().execute(&mut *tx).await.map_err(err)?;
        }
        tx.commit().await.map_err(err)?;
        Ok(summary)
    }

    async fn list(&self) -> Result<Vec<ReportSummary>, RepositoryError> {
        let rows = sqlx::query(
            "SELECT name, run_id, symbol, bars_checked, errors, warnings, created_at \
             FROM validation_reports ORDER BY created_at DESC, name",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(|e| map_sqlx("listing validation reports", e))?;
        rows.iter().map(summary_from_row).collect()
    }

    async fn get(&self, name: &str) -> Result<Option<ValidationReport>, RepositoryError> {
        let context = format!("reading validation report {name}");
        let err = |e| map_sqlx(&context, e);
        // One read transaction: the summary row and the findings from the same snapshot.
        let mut tx = self.pool.begin().await.map_err(err)?;
        let Some(row) = sqlx::query(
            "SELECT name, run_id, symbol, frame, bars_checked, created_at \
             FROM validation_reports WHERE name = ?1",
        )
        .bind(name)
        .fetch_optional(&mut *tx)
        .await
        .map_err(err)?
        else {
            tx.commit().await.map_err(err)?;
            return Ok(None);
        };
        let finding_rows = sqlx::query(
            "SELECT ts, rule, severity, detail FROM validation_findings \
             WHERE name = ?1 ORDER BY seq",
        )
        .bind(name)
        .fetch_all(&mut *tx)
        .await
        .map_err(err)?;
        tx.commit().await.map_err(err)?;
        let report_symbol = symbol(&column::<String>(&row, "symbol")?)?;
        let findings = finding_rows
            .iter()
            .map(|r| finding_from_row(name, report_symbol, r))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(ValidationReport {
            run_id: run_id(name, &column::<String>(&row, "run_id")?)?,
            symbol: report_symbol,
            frame: timeframe(&column::<String>(&row, "frame")?)?,
            bars_checked: count_from_i64("bars_checked", column(&row, "bars_checked")?)?,
            created_at: Timestamp::from_nanos(column(&row, "created_at")?),
            findings,
        }))
    }
}
