//! `MetricsRepository`: the append-only `metrics` table.

use async_trait::async_trait;
use marketpipe_domain::Timestamp;
use marketpipe_ports::{MetricSample, MetricsRepository, RepositoryError};
use sqlx::{QueryBuilder, Sqlite};

use crate::SqliteStore;
use crate::convert::{column, labels, labels_json, map_sqlx};

/// Samples per multi-row `INSERT` (4 parameters each).
const SAMPLES_PER_INSERT: usize = 1000;

#[async_trait]
impl MetricsRepository for SqliteStore {
    async fn record(&self, samples: &[MetricSample]) -> Result<(), RepositoryError> {
        if samples.is_empty() {
            return Ok(());
        }
        let context = format!("recording {} metric samples", samples.len());
        let err = |e| map_sqlx(&context, e);
        let _guard = self.write_guard().await;
        let mut tx = if samples.len() > SAMPLES_PER_INSERT {
            Some(self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(err)?)
        } else {
            None
        };
        for chunk in samples.chunks(SAMPLES_PER_INSERT) {
            let mut insert =
                QueryBuilder::<Sqlite>::new("INSERT INTO metrics (name, labels, value, at) ");
            insert.push_values(chunk, |mut values, sample| {
                values
                    .push_bind(sample.name.clone())
                    .push_bind(labels_json(&sample.labels))
                    // SQLite stores NaN as NULL; reading maps NULL back to NaN.
                    .push_bind((!sample.value.is_nan()).then_some(sample.value))
                    .push_bind(sample.at.nanos());
            });
            let query = insert.build();
            match tx.as_mut() {
                Some(tx) => query.execute(&mut **tx).await,
                None => query.execute(&self.pool).await,
            }
            .map_err(err)?;
        }
        if let Some(tx) = tx {
            tx.commit().await.map_err(err)?;
        }
        Ok(())
    }

    async fn history(
        &self,
        name: &str,
        since: Timestamp,
    ) -> Result<Vec<MetricSample>, RepositoryError> {
        let rows = sqlx::query(
            "SELECT name, labels, value, at FROM metrics WHERE name = ?1 AND at >= ?2 \
             ORDER BY at, id",
        )
        .bind(name)
        .bind(since.nanos())
        .fetch_all(&self.pool)
        .await
        .map_err(|e| map_sqlx(&format!("reading the history of metric {name}"), e))?;
        rows.iter()
            .map(|row| {
                Ok(MetricSample {
                    name: column(row, "name")?,
                    labels: labels(&column::<String>(row, "labels")?)?,
                    value: column::<Option<f64>>(row, "value")?.unwrap_or(f64::NAN),
                    at: Timestamp::from_nanos(column(row, "at")?),
                })
            })
            .collect()
    }

    async fn names(&self) -> Result<Vec<String>, RepositoryError> {
        sqlx::query_scalar("SELECT DISTINCT name FROM metrics ORDER BY name")
            .fetch_all(&self.pool)
            .await
            .map_err(|e| map_sqlx("listing metric names", e))
    }
}
