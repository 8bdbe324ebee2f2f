//! `JobRepository` and `WorkItemRepository`: the `jobs` and `work_items` tables.

use std::str::FromStr;

use async_trait::async_trait;
use marketpipe_domain::{
    DateRange, IngestionJob, JobId, JobKind, JobOwner, JobSpec, JobState, SessionKind, Symbol,
    Timestamp, WorkItem, WorkItemStatus,
};
use marketpipe_ports::{JobRepository, JobSummary, RepositoryError, WorkItemRepository};
use sqlx::error::ErrorKind;
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Sqlite};

use crate::SqliteStore;
use crate::convert::{
    column, corrupt, count_from_i64, count_to_i64, date, map_sqlx, now_nanos, symbol, timestamp,
};

/// Work items per multi-row `INSERT` (9 parameters each, far below SQLite's 32,766).
const ITEMS_PER_INSERT: usize = 500;

/// A work item ready to bind.
struct ItemRow {
    index: i64,
    symbol: String,
    start: String,
    end: String,
    status: &'static str,
    bars_written: i64,
    error: Option<String>,
}

impl ItemRow {
    fn new(item: &WorkItem) -> Result<Self, RepositoryError> {
        Ok(Self {
            index: i64::try_from(item.index).map_err(|_| RepositoryError::Backend {
                message: format!("work item index {} is too large to store", item.index),
                source: None,
            })?,
            symbol: item.symbol.as_str().to_owned(),
            start: item.dates.start().to_string(),
            end: item.dates.end().to_string(),
            status: item.status.as_str(),
            bars_written: count_to_i64("bars_written", item.bars_written)?,
            error: item.error.clone(),
        })
    }
}

fn session_kind(text: &str) -> Result<SessionKind, RepositoryError> {
    match text {
        "regular" => Ok(SessionKind::Regular),
        "extended" => Ok(SessionKind::Extended),
        other => Err(corrupt(format!("unknown session kind {other:?}"))),
    }
}

fn job_id(text: &str) -> Result<JobId, RepositoryError> {
    JobId::new(text).map_err(|e| corrupt(format!("stored job id {text:?} is invalid: {e}")))
}

fn job_state(id: &str, text: &str) -> Result<JobState, RepositoryError> {
    JobState::from_str(text).map_err(|e| corrupt(format!("job {id}: {e}")))
}

fn job_kind(id: &str, text: &str) -> Result<JobKind, RepositoryError> {
    JobKind::from_str(text).map_err(|e| corrupt(format!("job {id}: {e}")))
}

/// The owner columns of a row (all or none are set).
fn owner(id: &str, row: &SqliteRow) -> Result<Option<JobOwner>, RepositoryError> {
    let host: Option<String> = column(row, "owner_host")?;
    let pid: Option<i64> = column(row, "owner_pid")?;
    let started: Option<i64> = column(row, "owner_started_at")?;
    match (host, pid, started) {
        (Some(host), Some(pid), Some(started)) => Ok(Some(JobOwner {
            host,
            pid: u32::try_from(pid).map_err(|_| corrupt(format!("job {id}: owner pid {pid}")))?,
            started_at: Timestamp::from_nanos(started),
        })),
        _ => Ok(None),
    }
}

fn date_range(start: &str, end: &str) -> Result<DateRange, RepositoryError> {
    DateRange::new(date(start)?, date(end)?)
        .map_err(|e| corrupt(format!("stored date range {start}..={end}: {e}")))
}

fn symbols(text: &str) -> Result<Vec<Symbol>, RepositoryError> {
    text.split(',')
        .filter(|s| !s.is_empty())
        .map(symbol)
        .collect()
}

fn item_from_row(job: &str, row: &SqliteRow) -> Result<WorkItem, RepositoryError> {
    let idx: i64 = column(row, "idx")?;
    let status: String = column(row, "status")?;
    Ok(WorkItem {
        index: usize::try_from(idx)
            .map_err(|_| corrupt(format!("job {job}: work item index {idx}")))?,
        symbol: symbol(&column::<String>(row, "symbol")?)?,
        dates: date_range(
            &column::<String>(row, "start_date")?,
            &column::<String>(row, "end_date")?,
        )?,
        status: WorkItemStatus::from_str(&status)
            .map_err(|e| corrupt(format!("job {job} item {idx}: {e}")))?,
        bars_written: count_from_i64("bars_written", column(row, "bars_written")?)?,
        error: column(row, "error")?,
    })
}

fn job_from_row(row: &SqliteRow, items: Vec<WorkItem>) -> Result<IngestionJob, RepositoryError> {
    let id: String = column(row, "id")?;
    let state: String = column(row, "state")?;
    let spec = JobSpec {
        provider: column(row, "provider")?,
        feed: column(row, "feed")?,
        symbols: symbols(&column::<String>(row, "symbols")?)?,
        dates: date_range(
            &column::<String>(row, "start_date")?,
            &column::<String>(row, "end_date")?,
        )?,
        session: session_kind(&column::<String>(row, "session")?)?,
    };
    Ok(IngestionJob::restore(
        job_id(&id)?,
        spec,
        job_state(&id, &state)?,
        items,
        Timestamp::from_nanos(column(row, "created_at")?),
        timestamp(column(row, "started_at")?),
        timestamp(column(row, "finished_at")?),
        column(row, "failure")?,
    )
    .with_lifecycle(
        job_kind(&id, &column::<String>(row, "kind")?)?,
        owner(&id, row)?,
        timestamp(column(row, "heartbeat_at")?),
    ))
}

fn summary_from_row(row: &SqliteRow) -> Result<JobSummary, RepositoryError> {
    let id: String = column(row, "id")?;
    let state: String = column(row, "state")?;
    let symbols: String = column(row, "symbols")?;
    let usize_of = |what: &str, n: i64| {
        usize::try_from(n).map_err(|_| corrupt(format!("job {id}: {what} {n}")))
    };
    Ok(JobSummary {
        id: job_id(&id)?,
        provider: column(row, "provider")?,
        state: job_state(&id, &state)?,
        symbols: symbols.split(',').filter(|s| !s.is_empty()).count(),
        items_done: usize_of("items_done", column(row, "items_done")?)?,
        items_total: usize_of("items_total", column(row, "items_total")?)?,
        bars: count_from_i64("bars", column(row, "bars")?)?,
        created_at: Timestamp::from_nanos(column(row, "created_at")?),
        finished_at: timestamp(column(row, "finished_at")?),
        kind: job_kind(&id, &column::<String>(row, "kind")?)?,
        owner: owner(&id, row)?,
        heartbeat_at: timestamp(column(row, "heartbeat_at")?),
    })
}

#[async_trait]
impl JobRepository for SqliteStore {
    async fn create(&self, job: &IngestionJob) -> Result<(), RepositoryError> {
        let id = job.id().as_str();
        let spec = job.spec();
        let symbols = spec
            .symbols
            .iter()
            .map(Symbol::as_str)
            .collect::<Vec<_>>()
            .join(",");
        let items = job
            .items()
            .iter()
            .map(ItemRow::new)
            .collect::<Result<Vec<_>, _>>()?;
        let updated_at = now_nanos();
        let context = format!("creating job {id}");
        let err = |e| map_sqlx(&context, e);

        let _guard = self.write_guard().await;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(err)?;
        sqlx::query(
            "INSERT INTO jobs (id, provider, feed, symbols, start_date, end_date, session, \
             state, created_at, started_at, finished_at, failure, kind) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        )
        .bind(id)
        .bind(&spec.provider)
        .bind(spec.feed.as_deref())
        .bind(&symbols)
        .bind(spec.dates.start().to_string())
        .bind(spec.dates.end().to_string())
        .bind(spec.session.as_str())
        .bind(job.state().as_str())
        .bind(job.created_at().nanos())
        .bind(job.started_at().map(Timestamp::nanos))
        .bind(job.finished_at().map(Timestamp::nanos))
        .bind(job.failure())
        .bind(job.kind().as_str())
        .execute(&mut *tx)
        .await
        .map_err(|e| match err(e) {
            RepositoryError::Conflict { .. } => RepositoryError::Conflict {
                message: format!("job {id} already exists"),
            },
            other => other,
        })?;
        for chunk in items.chunks(ITEMS_PER_INSERT) {
            let mut insert = QueryBuilder::<Sqlite>::new(
                "INSERT INTO work_items (job_id, idx, symbol, start_date, end_date, status, \
                 bars_written, error, updated_at) ",
            );
            insert.push_values(chunk, |mut values, item| {
                values
                    .push_bind(id.to_owned())
                    .push_bind(item.index)
                    .push_bind(item.symbol.clone())
                    .push_bind(item.start.clone())
                    .push_bind(item.end.clone())
                    .push_bind(item.status)
                    .push_bind(item.bars_written)
                    .push_bind(item.error.clone())
                    .push_bind(updated_at);
            });
            insert.build().execute(&mut *tx).await.map_err(err)?;
        }
        tx.commit().await.map_err(err)
    }

    async fn save_state(&self, job: &IngestionJob) -> Result<(), RepositoryError> {
        let id = job.id().as_str();
        let _guard = self.write_guard().await;
        let owner = job.owner();
        let done = sqlx::query(
            "UPDATE jobs SET state = ?1, started_at = ?2, finished_at = ?3, failure = ?4, \
             owner_host = ?5, owner_pid = ?6, owner_started_at = ?7, heartbeat_at = ?8 \
             WHERE id = ?9",
        )
        .bind(job.state().as_str())
        .bind(job.started_at().map(Timestamp::nanos))
        .bind(job.finished_at().map(Timestamp::nanos))
        .bind(job.failure())
        .bind(owner.map(|o| o.host.clone()))
        .bind(owner.map(|o| i64::from(o.pid)))
        .bind(owner.map(|o| o.started_at.nanos()))
        .bind(job.heartbeat_at().map(Timestamp::nanos))
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(|e| map_sqlx(&format!("saving the state of job {id}"), e))?;
        if done.rows_affected() == 0 {
            return Err(RepositoryError::NotFound {
                entity: "job",
                key: id.to_owned(),
            });
        }
        Ok(())
    }

    async fn heartbeat(&self, id: &JobId, at: Timestamp) -> Result<(), RepositoryError> {
        let id = id.as_str();
        let _guard = self.write_guard().await;
        sqlx::query("UPDATE jobs SET heartbeat_at = ?1 WHERE id = ?2 AND state = 'running'")
            .bind(at.nanos())
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(|e| map_sqlx(&format!("recording the heartbeat of job {id}"), e))?;
        Ok(())
    }

    async fn get(&self, id: &JobId) -> Result<Option<IngestionJob>, RepositoryError> {
        let id = id.as_str();
        let context = format!("reading job {id}");
        let err = |e| map_sqlx(&context, e);
        // One read transaction: the job and its items from the same snapshot.
        let mut tx = self.pool.begin().await.map_err(err)?;
        let Some(row) = sqlx::query(
            "SELECT id, provider, feed, symbols, start_date, end_date, session, state, \
             created_at, started_at, finished_at, failure, kind, owner_host, owner_pid, \
             owner_started_at, heartbeat_at FROM jobs WHERE id = ?1",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(err)?
        else {
            tx.commit().await.map_err(err)?;
            return Ok(None);
        };
        let item_rows = sqlx::query(
            "SELECT idx, symbol, start_date, end_date, status, bars_written, error \
             FROM work_items WHERE job_id = ?1 ORDER BY idx",
        )
        .bind(id)
        .fetch_all(&mut *tx)
        .await
        .map_err(err)?;
        tx.commit().await.map_err(err)?;
        let items = item_rows
            .iter()
            .map(|r| item_from_row(id, r))
            .collect::<Result<Vec<_>, _>>()?;
        job_from_row(&row, items).map(Some)
    }

    async fn list(&self, limit: usize) -> Result<Vec<JobSummary>, RepositoryError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = sqlx::query(
            "WITH recent AS ( \
                 SELECT id, provider, state, symbols, created_at, finished_at, kind, \
                 owner_host, owner_pid, owner_started_at, heartbeat_at FROM jobs \
                 ORDER BY created_at DESC, id DESC LIMIT ?1) \
             SELECT r.id, r.provider, r.state, r.symbols, r.created_at, r.finished_at, \
                 r.kind, r.owner_host, r.owner_pid, r.owner_started_at, r.heartbeat_at, \
                 COUNT(w.idx) AS items_total, \
                 COALESCE(SUM(w.status = 'done'), 0) AS items_done, \
                 COALESCE(SUM(w.bars_written), 0) AS bars \
             FROM recent r LEFT JOIN work_items w ON w.job_id = r.id \
             GROUP BY r.id \
             ORDER BY r.created_at DESC, r.id DESC",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| map_sqlx("listing jobs", e))?;
        rows.iter().map(summary_from_row).collect()
    }
}

#[async_trait]
impl WorkItemRepository for SqliteStore {
    async fn save_item(&self, job: &JobId, item: &WorkItem) -> Result<(), RepositoryError> {
        let id = job.as_str();
        let row = ItemRow::new(item)?;
        let _guard = self.write_guard().await;
        sqlx::query(
            "INSERT INTO work_items (job_id, idx, symbol, start_date, end_date, status, \
             bars_written, error, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
             ON CONFLICT (job_id, idx) DO UPDATE SET status = excluded.status, \
             bars_written = excluded.bars_written, error = excluded.error, \
             updated_at = excluded.updated_at",
        )
        .bind(id)
        .bind(row.index)
        .bind(row.symbol)
        .bind(row.start)
        .bind(row.end)
        .bind(row.status)
        .bind(row.bars_written)
        .bind(row.error)
        .bind(now_nanos())
        .execute(&self.pool)
        .await
        .map_err(|e| {
            let missing_job = e
                .as_database_error()
                .is_some_and(|db| db.kind() == ErrorKind::ForeignKeyViolation);
            if missing_job {
                RepositoryError::NotFound {
                    entity: "job",
                    key: id.to_owned(),
                }
            } else {
                map_sqlx(&format!("saving item {} of job {id}", item.index), e)
            }
        })?;
        Ok(())
    }

    async fn items(&self, job: &JobId) -> Result<Vec<WorkItem>, RepositoryError> {
        let id = job.as_str();
        let rows = sqlx::query(
            "SELECT idx, symbol, start_date, end_date, status, bars_written, error \
             FROM work_items WHERE job_id = ?1 ORDER BY idx",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| map_sqlx(&format!("reading the items of job {id}"), e))?;
        rows.iter().map(|r| item_from_row(id, r)).collect()
    }
}
