//! `CoverageRepository`: the `coverage` table (migration 4).

use std::str::FromStr;

use async_trait::async_trait;
use chrono::NaiveDate;
use marketpipe_domain::{CoverageState, JobId, SessionCoverage, SessionKind, Symbol, Timestamp};
use marketpipe_ports::{CoveragePruned, CoverageQuery, CoverageRepository, RepositoryError};
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Sqlite};

use crate::SqliteStore;
use crate::convert::{column, corrupt, date, map_sqlx, symbol};

/// Entries per multi-row `INSERT` (11 parameters each).
const ENTRIES_PER_INSERT: usize = 500;

/// Symbols per `IN (…)` list.
const SYMBOLS_PER_QUERY: usize = 500;

fn hours(text: &str) -> Result<SessionKind, RepositoryError> {
    match text {
        "regular" => Ok(SessionKind::Regular),
        "extended" => Ok(SessionKind::Extended),
        other => Err(corrupt(format!("coverage: unknown hours {other:?}"))),
    }
}

fn count(what: &str, value: i64) -> Result<u32, RepositoryError> {
    u32::try_from(value).map_err(|_| corrupt(format!("coverage: {what} {value}")))
}

fn entry_from_row(row: &SqliteRow) -> Result<SessionCoverage, RepositoryError> {
    let feed: String = column(row, "feed")?;
    let state: String = column(row, "state")?;
    let job_id: Option<String> = column(row, "job_id")?;
    Ok(SessionCoverage {
        provider: column(row, "provider")?,
        feed: (!feed.is_empty()).then_some(feed),
        symbol: symbol(&column::<String>(row, "symbol")?)?,
        date: date(&column::<String>(row, "date")?)?,
        hours: hours(&column::<String>(row, "hours")?)?,
        state: CoverageState::from_str(&state).map_err(|e| corrupt(format!("coverage: {e}")))?,
        bars: count("bars", column(row, "bars")?)?,
        expected: count("expected", column(row, "expected")?)?,
        error: column(row, "error")?,
        job_id: job_id
            .map(|id| JobId::new(&id).map_err(|e| corrupt(format!("coverage: job id: {e}"))))
            .transpose()?,
        recorded_at: Timestamp::from_nanos(column(row, "recorded_at")?),
    })
}

/// `WHERE` conditions of a query on `coverage`, for `symbols` (a chunk of the query's).
fn push_filter(builder: &mut QueryBuilder<Sqlite>, query: &CoverageQuery, symbols: &[Symbol]) {
    builder.push(" WHERE 1 = 1");
    if let Some(provider) = &query.provider {
        builder.push(" AND provider = ").push_bind(provider.clone());
        builder
            .push(" AND feed = ")
            .push_bind(query.feed.clone().unwrap_or_default());
    }
    if let Some(dates) = query.dates {
        builder
            .push(" AND date >= ")
            .push_bind(dates.start().to_string())
            .push(" AND date <= ")
            .push_bind(dates.end().to_string());
    }
    if !symbols.is_empty() {
        builder.push(" AND symbol IN (");
        let mut list = builder.separated(", ");
        for s in symbols {
            list.push_bind(s.as_str().to_owned());
        }
        builder.push(")");
    }
}

#[async_trait]
impl CoverageRepository for SqliteStore {
    async fn record_coverage(&self, entries: &[SessionCoverage]) -> Result<(), RepositoryError> {
        if entries.is_empty() {
            return Ok(());
        }
        let context = "recording coverage";
        let err = |e| map_sqlx(context, e);
        let _guard = self.write_guard().await;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(err)?;
        for chunk in entries.chunks(ENTRIES_PER_INSERT) {
            let mut insert = QueryBuilder::<Sqlite>::new(
                "INSERT INTO coverage (provider, feed, symbol, date, hours, state, bars, \
                 expected, error, job_id, recorded_at) ",
            );
            insert.push_values(chunk, |mut values, e| {
                values
                    .push_bind(e.provider.clone())
                    .push_bind(e.feed.clone().unwrap_or_default())
                    .push_bind(e.symbol.as_str().to_owned())
                    .push_bind(e.date.to_string())
                    .push_bind(e.hours.as_str())
                    .push_bind(e.state.as_str())
                    .push_bind(i64::from(e.bars))
                    .push_bind(i64::from(e.expected))
                    .push_bind(e.error.clone())
                    .push_bind(e.job_id.as_ref().map(|j| j.as_str().to_owned()))
                    .push_bind(e.recorded_at.nanos());
            });
            // A failure never replaces an answer: the answer's bars are still in the lake.
            insert.push(
                " ON CONFLICT (provider, feed, symbol, date, hours) DO UPDATE SET \
                 state = excluded.state, bars = excluded.bars, expected = excluded.expected, \
                 error = excluded.error, job_id = excluded.job_id, \
                 recorded_at = excluded.recorded_at \
                 WHERE excluded.state <> 'failed' OR coverage.state = 'failed'",
            );
            insert.build().execute(&mut *tx).await.map_err(err)?;
        }
        tx.commit().await.map_err(err)
    }

    async fn coverage(
        &self,
        query: &CoverageQuery,
    ) -> Result<Vec<SessionCoverage>, RepositoryError> {
        let chunks: Vec<&[Symbol]> = if query.symbols.is_empty() {
            vec![&[]]
        } else {
            query.symbols.chunks(SYMBOLS_PER_QUERY).collect()
        };
        let mut out = Vec::new();
        for symbols in chunks {
            let mut select = QueryBuilder::<Sqlite>::new(
                "SELECT provider, feed, symbol, date, hours, state, bars, expected, error, \
                 job_id, recorded_at FROM coverage",
            );
            push_filter(&mut select, query, symbols);
            select.push(" ORDER BY symbol, date, provider, feed, hours");
            let rows = select
                .build()
                .fetch_all(&self.pool)
                .await
                .map_err(|e| map_sqlx("reading coverage", e))?;
            for row in &rows {
                out.push(entry_from_row(row)?);
            }
        }
        out.sort_by(|a, b| {
            (a.symbol, a.date, &a.provider, &a.feed).cmp(&(b.symbol, b.date, &b.provider, &b.feed))
        });
        Ok(out)
    }

    async fn prune_coverage(
        &self,
        symbols: &[Symbol],
        before: NaiveDate,
        dry_run: bool,
    ) -> Result<CoveragePruned, RepositoryError> {
        let chunks: Vec<&[Symbol]> = if symbols.is_empty() {
            vec![&[]]
        } else {
            symbols.chunks(SYMBOLS_PER_QUERY).collect()
        };
        let context = "pruning coverage";
        let _guard = self.write_guard().await;
        let mut entries = 0;
        for chunk in chunks {
            let mut statement = QueryBuilder::<Sqlite>::new(if dry_run {
                "SELECT COUNT(*) FROM coverage"
            } else {
                "DELETE FROM coverage"
            });
            let query = CoverageQuery {
                symbols: chunk.to_vec(),
                ..CoverageQuery::default()
            };
            push_filter(&mut statement, &query, chunk);
            statement.push(" AND date < ").push_bind(before.to_string());
            if dry_run {
                let n: i64 = statement
                    .build_query_scalar()
                    .fetch_one(&self.pool)
                    .await
                    .map_err(|e| map_sqlx(context, e))?;
                entries += u64::try_from(n).unwrap_or(0);
            } else {
                let done = statement
                    .build()
                    .execute(&self.pool)
                    .await
                    .map_err(|e| map_sqlx(context, e))?;
                entries += done.rows_affected();
            }
        }
        Ok(CoveragePruned { entries })
    }
}
