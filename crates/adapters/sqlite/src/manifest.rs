//! `PartitionManifest`: the `partitions` and `aggregation_marks` tables.

use async_trait::async_trait;
use marketpipe_domain::{JobId, Symbol, Timeframe, Timestamp};
use marketpipe_ports::{PartitionKey, PartitionManifest, PartitionRecord, RepositoryError};
use sqlx::sqlite::SqliteRow;

use crate::SqliteStore;
use crate::convert::{
    column, corrupt, count_from_i64, count_to_i64, json_strings, map_sqlx, symbol, timeframe,
    timestamp,
};

/// `SELECT` of a `PartitionRecord`'s columns from `partitions p`, then the rest of the query
/// (a macro so that the SQL stays a `&'static str`).
macro_rules! select_records {
    ($($rest:literal),+ $(,)?) => {
        concat!(
            "SELECT p.frame, p.symbol, p.year, p.month, p.path, p.rows, p.min_ts, p.max_ts, \
             p.content_hash, p.job_id, p.written_at, p.format_version FROM partitions p ",
            $($rest),+
        )
    };
}

/// The stored month: 1–12, or 0 for a yearly frame's partition.
fn month_column(key: &PartitionKey) -> i64 {
    key.month.map_or(0, i64::from)
}

fn record_from_row(row: &SqliteRow) -> Result<PartitionRecord, RepositoryError> {
    let year: i64 = column(row, "year")?;
    let month: i64 = column(row, "month")?;
    let job_id: Option<String> = column(row, "job_id")?;
    let key = PartitionKey {
        frame: timeframe(&column::<String>(row, "frame")?)?,
        symbol: symbol(&column::<String>(row, "symbol")?)?,
        year: i32::try_from(year).map_err(|_| corrupt(format!("partition year {year}")))?,
        month: match month {
            0 => None,
            1..=12 => u32::try_from(month).ok(),
            _ => return Err(corrupt(format!("partition month {month}"))),
        },
    };
    Ok(PartitionRecord {
        key,
        path: column(row, "path")?,
        rows: count_from_i64("rows", column(row, "rows")?)?,
        min_ts: timestamp(column(row, "min_ts")?),
        max_ts: timestamp(column(row, "max_ts")?),
        content_hash: column(row, "content_hash")?,
        job_id: job_id
            .map(|id| {
                JobId::new(&id).map_err(|e| corrupt(format!("partition {key}: job id {id:?}: {e}")))
            })
            .transpose()?,
        written_at: Timestamp::from_nanos(column(row, "written_at")?),
        format_version: {
            let version: i64 = column(row, "format_version")?;
            u32::try_from(version)
                .map_err(|_| corrupt(format!("partition {key}: format version {version}")))?
        },
    })
}

#[async_trait]
impl PartitionManifest for SqliteStore {
    async fn record(&self, record: &PartitionRecord) -> Result<(), RepositoryError> {
        let key = &record.key;
        let rows = count_to_i64("rows", record.rows)?;
        let _guard = self.write_guard().await;
        sqlx::query(
            "INSERT INTO partitions (frame, symbol, year, month, path, rows, min_ts, max_ts, \
             content_hash, job_id, written_at, format_version) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) \
             ON CONFLICT (frame, symbol, year, month) DO UPDATE SET path = excluded.path, \
             rows = excluded.rows, min_ts = excluded.min_ts, max_ts = excluded.max_ts, \
             content_hash = excluded.content_hash, job_id = excluded.job_id, \
             written_at = excluded.written_at, format_version = excluded.format_version",
        )
        .bind(key.frame.as_str())
        .bind(key.symbol.as_str())
        .bind(i64::from(key.year))
        .bind(month_column(key))
        .bind(&record.path)
        .bind(rows)
        .bind(record.min_ts.map(Timestamp::nanos))
        .bind(record.max_ts.map(Timestamp::nanos))
        .bind(&record.content_hash)
        .bind(record.job_id.as_ref().map(JobId::as_str))
        .bind(record.written_at.nanos())
        .bind(i64::from(record.format_version))
        .execute(&self.pool)
        .await
        .map_err(|e| map_sqlx(&format!("recording partition {key}"), e))?;
        Ok(())
    }

    async fn get(&self, key: &PartitionKey) -> Result<Option<PartitionRecord>, RepositoryError> {
        let row = sqlx::query(select_records!(
            "WHERE p.frame = ?1 AND p.symbol = ?2 AND p.year = ?3 AND p.month = ?4"
        ))
        .bind(key.frame.as_str())
        .bind(key.symbol.as_str())
        .bind(i64::from(key.year))
        .bind(month_column(key))
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| map_sqlx(&format!("reading partition {key}"), e))?;
        row.as_ref().map(record_from_row).transpose()
    }

    async fn remove(&self, key: &PartitionKey) -> Result<(), RepositoryError> {
        let context = format!("forgetting partition {key}");
        let err = |e| map_sqlx(&context, e);
        let _guard = self.write_guard().await;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(err)?;
        for sql in [
            "DELETE FROM partitions WHERE frame = ?1 AND symbol = ?2 AND year = ?3 AND month = ?4",
            "DELETE FROM aggregation_marks WHERE source_frame = ?1 AND symbol = ?2 AND year = ?3 \
             AND month = ?4",
        ] {
            sqlx::query(sql)
                .bind(key.frame.as_str())
                .bind(key.symbol.as_str())
                .bind(i64::from(key.year))
                .bind(month_column(key))
                .execute(&mut *tx)
                .await
                .map_err(err)?;
        }
        tx.commit().await.map_err(err)
    }

    async fn list(
        &self,
        frame: Timeframe,
        symbols: &[Symbol],
    ) -> Result<Vec<PartitionRecord>, RepositoryError> {
        // Text order of symbols is `Symbol`'s order, and month 0 (yearly) sorts first like
        // `None`: the SQL order is `PartitionKey`'s order within one frame.
        let query = if symbols.is_empty() {
            sqlx::query(select_records!(
                "WHERE p.frame = ?1 ORDER BY p.symbol, p.year, p.month"
            ))
            .bind(frame.as_str())
        } else {
            sqlx::query(select_records!(
                "WHERE p.frame = ?1 AND p.symbol IN (SELECT value FROM json_each(?2)) \
                 ORDER BY p.symbol, p.year, p.month"
            ))
            .bind(frame.as_str())
            .bind(json_strings(symbols.iter().map(Symbol::as_str)))
        };
        let rows = query
            .fetch_all(&self.pool)
            .await
            .map_err(|e| map_sqlx(&format!("listing {frame} partitions"), e))?;
        rows.iter().map(record_from_row).collect()
    }

    async fn stale_for(&self, target: Timeframe) -> Result<Vec<PartitionRecord>, RepositoryError> {
        let rows = sqlx::query(select_records!(
            "WHERE p.frame = ?1 AND NOT EXISTS ( \
                 SELECT 1 FROM aggregation_marks m \
                 WHERE m.source_frame = p.frame AND m.symbol = p.symbol AND m.year = p.year \
                 AND m.month = p.month AND m.target_frame = ?2 \
                 AND m.content_hash = p.content_hash) \
             ORDER BY p.symbol, p.year, p.month"
        ))
        .bind(Timeframe::M1.as_str())
        .bind(target.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(|e| map_sqlx(&format!("finding partitions stale for {target}"), e))?;
        rows.iter().map(record_from_row).collect()
    }

    async fn mark_aggregated(
        &self,
        source: &PartitionKey,
        target: Timeframe,
        content_hash: &str,
    ) -> Result<(), RepositoryError> {
        let _guard = self.write_guard().await;
        sqlx::query(
            "INSERT INTO aggregation_marks (source_frame, symbol, year, month, target_frame, \
             content_hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
             ON CONFLICT (source_frame, symbol, year, month, target_frame) \
             DO UPDATE SET content_hash = excluded.content_hash",
        )
        .bind(source.frame.as_str())
        .bind(source.symbol.as_str())
        .bind(i64::from(source.year))
        .bind(month_column(source))
        .bind(target.as_str())
        .bind(content_hash)
        .execute(&self.pool)
        .await
        .map_err(|e| map_sqlx(&format!("marking {source} aggregated to {target}"), e))?;
        Ok(())
    }
}
