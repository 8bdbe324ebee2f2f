//! `MetadataRetention`: forgetting finished jobs, metrics and reports older than a cut, then
//! compacting the file.

use async_trait::async_trait;
use marketpipe_domain::Timestamp;
use marketpipe_ports::{MetadataPruned, MetadataRetention, RepositoryError};

use crate::SqliteStore;
use crate::convert::map_sqlx;

/// Finished jobs older than the cut (`?1`); a macro so that the SQL stays `&'static str`.
macro_rules! old_jobs {
    () => {
        "SELECT id FROM jobs WHERE state IN ('completed', 'failed', 'cancelled') \
         AND COALESCE(finished_at, created_at) < ?1"
    };
}

/// Reports older than the cut (`?1`).
macro_rules! old_reports {
    () => {
        "SELECT name FROM validation_reports WHERE created_at < ?1"
    };
}

impl SqliteStore {
    /// Counts what a prune at `before` would remove.
    async fn count_old(&self, before: i64) -> Result<MetadataPruned, RepositoryError> {
        let count = |sql: &'static str| {
            let pool = self.pool.clone();
            async move {
                let n: i64 = sqlx::query_scalar(sql)
                    .bind(before)
                    .fetch_one(&pool)
                    .await
                    .map_err(|e| map_sqlx("counting old metadata", e))?;
                Ok::<u64, RepositoryError>(u64::try_from(n).unwrap_or(0))
            }
        };
        Ok(MetadataPruned {
            jobs: count(concat!("SELECT COUNT(*) FROM (", old_jobs!(), ")")).await?,
            work_items: count(concat!(
                "SELECT COUNT(*) FROM work_items WHERE job_id IN (",
                old_jobs!(),
                ")"
            ))
            .await?,
            metrics: count("SELECT COUNT(*) FROM metrics WHERE at < ?1").await?,
            reports: count(concat!("SELECT COUNT(*) FROM (", old_reports!(), ")")).await?,
            findings: count(concat!(
                "SELECT COUNT(*) FROM validation_findings WHERE name IN (",
                old_reports!(),
                ")"
            ))
            .await?,
            bytes_reclaimed: 0,
        })
    }

    /// The database file's size (0 when it cannot be read).
    fn file_size(&self) -> u64 {
        std::fs::metadata(self.path.as_ref()).map_or(0, |m| m.len())
    }
}

#[async_trait]
impl MetadataRetention for SqliteStore {
    async fn prune_jobs(
        &self,
        before: Timestamp,
        dry_run: bool,
    ) -> Result<MetadataPruned, RepositoryError> {
        let cut = before.nanos();
        let all = self.count_old(cut).await?;
        let pruned = MetadataPruned {
            jobs: all.jobs,
            work_items: all.work_items,
            ..MetadataPruned::default()
        };
        if dry_run {
            return Ok(pruned);
        }
        let _guard = self.write_guard().await;
        sqlx::query(concat!("DELETE FROM jobs WHERE id IN (", old_jobs!(), ")"))
            .bind(cut)
            .execute(&self.pool)
            .await
            .map_err(|e| map_sqlx("removing old jobs", e))?;
        Ok(pruned)
    }

    async fn prune_metadata(
        &self,
        before: Timestamp,
        dry_run: bool,
    ) -> Result<MetadataPruned, RepositoryError> {
        let cut = before.nanos();
        let mut pruned = self.count_old(cut).await?;
        if dry_run {
            return Ok(pruned);
        }
        let size_before = self.file_size();
        {
            let err = |e| map_sqlx("pruning old metadata", e);
            let _guard = self.write_guard().await;
            let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(err)?;
            // Items go with their jobs, counts and findings with their reports (cascades).
            for sql in [
                concat!("DELETE FROM jobs WHERE id IN (", old_jobs!(), ")"),
                "DELETE FROM metrics WHERE at < ?1",
                concat!(
                    "DELETE FROM validation_reports WHERE name IN (",
                    old_reports!(),
                    ")"
                ),
            ] {
                sqlx::query(sql)
                    .bind(cut)
                    .execute(&mut *tx)
                    .await
                    .map_err(err)?;
            }
            tx.commit().await.map_err(err)?;
            // Compaction: VACUUM rewrites the file without the freed pages; the WAL is
            // checkpointed first so that the main file holds everything.
            for sql in [
                "PRAGMA wal_checkpoint(TRUNCATE)",
                "VACUUM",
                "PRAGMA wal_checkpoint(TRUNCATE)",
            ] {
                sqlx::query(sql)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| map_sqlx("compacting the metadata database", e))?;
            }
        }
        pruned.bytes_reclaimed = size_before.saturating_sub(self.file_size());
        tracing::info!(
            jobs = pruned.jobs,
            metrics = pruned.metrics,
            reports = pruned.reports,
            bytes = pruned.bytes_reclaimed,
            "metadata pruned"
        );
        Ok(pruned)
    }
}
