//! # marketpipe-csv
//!
//! The CSV adapter behind the `ValidationReportRepository` port of `marketpipe-ports`
//! (docs/validation.md, Reports): [`CsvReportStore`] keeps each validation report as one file
//! `<data_dir>/reports/<run_id>_<symbol>.csv` with the columns `symbol,ts,rule,severity,detail`,
//! which people open in a spreadsheet or feed to other tools. A save replaces the file
//! atomically (temporary file, fsync, rename, directory fsync), so a reader never sees half a
//! report. Among our crates it depends only on the ports and the domain; the CSV reading and
//! writing (RFC 4180 quoting) is its own, and file work runs on tokio's blocking pool. Report
//! names are validated with [`parse_report_name`] before any path is built from them, so a
//! name can never reach outside the reports directory.
//!
//! A CSV file does not hold the frame, the bars checked or the creation time: reading one back
//! gives the 1m frame, 0 bars checked and the file's modification time. The metadata store
//! keeps the full summary row.

mod files;
mod format;
mod name;

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use marketpipe_domain::{Severity, Timeframe};
use marketpipe_ports::{
    ReportSummary, RepositoryError, ValidationReport, ValidationReportRepository,
};

pub use crate::name::{InvalidReportName, parse_report_name};

/// Validation reports as CSV files in one directory (`<data_dir>/reports`).
#[derive(Debug, Clone)]
pub struct CsvReportStore {
    dir: PathBuf,
}

impl CsvReportStore {
    /// A store over `dir`. No I/O: the directory is created by the first save.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The reports directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file of the report `name` (`<dir>/<name>.csv`). A name that is not
    /// `<job_id>_<SYMBOL>` is `RepositoryError::NotFound`: no such report can exist.
    pub fn path_of(&self, name: &str) -> Result<PathBuf, RepositoryError> {
        parse_report_name(name).map_err(|_| not_found(name))?;
        Ok(self.dir.join(format!("{name}.{}", files::EXTENSION)))
    }
}

fn not_found(name: &str) -> RepositoryError {
    RepositoryError::NotFound {
        entity: "report",
        key: name.to_owned(),
    }
}

/// Runs blocking file work off the async threads.
async fn blocking<T, F>(work: F) -> Result<T, RepositoryError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, RepositoryError> + Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| RepositoryError::Backend {
            message: format!("the report file task did not complete: {e}"),
            source: Some(Box::new(e)),
        })?
}

fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

#[async_trait]
impl ValidationReportRepository for CsvReportStore {
    async fn save(&self, report: &ValidationReport) -> Result<ReportSummary, RepositoryError> {
        let name = report.name();
        let target = self.path_of(&name)?;
        let content = format::render(&report.findings);
        let dir = self.dir.clone();
        let findings = report.findings.len();
        let written = target.clone();
        blocking(move || files::replace(&dir, &target, &name, content.as_bytes())).await?;
        tracing::debug!(path = %written.display(), findings, "validation report written");
        Ok(report.summary())
    }

    async fn list(&self) -> Result<Vec<ReportSummary>, RepositoryError> {
        let dir = self.dir.clone();
        blocking(move || {
            let mut out = Vec::new();
            for listed in files::scan(&dir)? {
                // Gone since the directory was read (removed by hand): not a report any more.
                let Some(read) = files::read(&listed.path)? else {
                    continue;
                };
                let severity = |s| count(read.findings.iter().filter(|f| f.severity == s).count());
                out.push(ReportSummary {
                    errors: severity(Severity::Error),
                    warnings: severity(Severity::Warning),
                    name: listed.name,
                    run_id: listed.run_id,
                    symbol: listed.symbol,
                    bars_checked: 0,
                    created_at: read.modified,
                });
            }
            out.sort_by(|a, b| {
                b.created_at
                    .cmp(&a.created_at)
                    .then_with(|| a.name.cmp(&b.name))
            });
            Ok(out)
        })
        .await
    }

    async fn get(&self, name: &str) -> Result<Option<ValidationReport>, RepositoryError> {
        let (run_id, symbol) = parse_report_name(name).map_err(|_| not_found(name))?;
        let path = self.path_of(name)?;
        let read = blocking(move || files::read(&path)).await?;
        Ok(read.map(|read| ValidationReport {
            run_id,
            symbol,
            frame: Timeframe::M1,
            bars_checked: 0,
            created_at: read.modified,
            findings: read.findings,
        }))
    }
}
