//! `DailySummaryRepository`: the `daily_summaries` table.

use async_trait::async_trait;
use chrono::NaiveDate;
use marketpipe_domain::{DailySummary, DateRange, Price, Symbol};
use marketpipe_ports::{DailySummaryRepository, RepositoryError};
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Sqlite};

use crate::SqliteStore;
use crate::convert::{
    column, corrupt, count_from_i64, count_to_i64, date, map_sqlx, price, symbol,
};

/// Summaries per multi-row `INSERT` (10 parameters each, far below SQLite's 32,766).
const SUMMARIES_PER_INSERT: usize = 1000;

/// A summary ready to bind.
struct SummaryRow {
    symbol: Symbol,
    date: String,
    open: i64,
    high: i64,
    low: i64,
    close: i64,
    volume: i64,
    vwap: Option<i64>,
    bar_count: i64,
    trade_count: Option<i64>,
}

impl SummaryRow {
    fn new(s: &DailySummary) -> Result<Self, RepositoryError> {
        Ok(Self {
            symbol: s.symbol,
            date: s.date.to_string(),
            open: s.open.raw(),
            high: s.high.raw(),
            low: s.low.raw(),
            close: s.close.raw(),
            volume: count_to_i64("volume", s.volume)?,
            vwap: s.vwap.map(Price::raw),
            bar_count: i64::from(s.bar_count),
            trade_count: s
                .trade_count
                .map(|n| count_to_i64("trade_count", n))
                .transpose()?,
        })
    }
}

fn summary_from_row(symbol: Symbol, row: &SqliteRow) -> Result<DailySummary, RepositoryError> {
    let day = date(&column::<String>(row, "date")?)?;
    let bar_count: i64 = column(row, "bar_count")?;
    Ok(DailySummary {
        symbol,
        date: day,
        open: price("open", column(row, "open")?)?,
        high: price("high", column(row, "high")?)?,
        low: price("low", column(row, "low")?)?,
        close: price("close", column(row, "close")?)?,
        volume: count_from_i64("volume", column(row, "volume")?)?,
        vwap: column::<Option<i64>>(row, "vwap")?
            .map(|raw| price("vwap", raw))
            .transpose()?,
        bar_count: u32::try_from(bar_count)
            .map_err(|_| corrupt(format!("{symbol} {day}: bar_count {bar_count}")))?,
        trade_count: column::<Option<i64>>(row, "trade_count")?
            .map(|n| count_from_i64("trade_count", n))
            .transpose()?,
    })
}

#[async_trait]
impl DailySummaryRepository for SqliteStore {
    async fn upsert(&self, summaries: &[DailySummary]) -> Result<(), RepositoryError> {
        if summaries.is_empty() {
            return Ok(());
        }
        let rows = summaries
            .iter()
            .map(SummaryRow::new)
            .collect::<Result<Vec<_>, _>>()?;
        let context = format!("storing {} daily summaries", rows.len());
        let err = |e| map_sqlx(&context, e);
        let _guard = self.write_guard().await;
        // One statement is atomic by itself; several need a transaction.
        let mut tx = if rows.len() > SUMMARIES_PER_INSERT {
            Some(self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(err)?)
        } else {
            None
        };
        for chunk in rows.chunks(SUMMARIES_PER_INSERT) {
            let mut insert = QueryBuilder::<Sqlite>::new(
                "INSERT INTO daily_summaries (symbol, date, open, high, low, close, volume, \
                 vwap, bar_count, trade_count) ",
            );
            insert.push_values(chunk, |mut values, row| {
                values
                    .push_bind(row.symbol.as_str().to_owned())
                    .push_bind(row.date.clone())
                    .push_bind(row.open)
                    .push_bind(row.high)
                    .push_bind(row.low)
                    .push_bind(row.close)
                    .push_bind(row.volume)
                    .push_bind(row.vwap)
                    .push_bind(row.bar_count)
                    .push_bind(row.trade_count);
            });
            insert.push(
                " ON CONFLICT (symbol, date) DO UPDATE SET open = excluded.open, \
                 high = excluded.high, low = excluded.low, close = excluded.close, \
                 volume = excluded.volume, vwap = excluded.vwap, \
                 bar_count = excluded.bar_count, trade_count = excluded.trade_count",
            );
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

    async fn list(
        &self,
        symbol: Symbol,
        dates: DateRange,
    ) -> Result<Vec<DailySummary>, RepositoryError> {
        let rows = sqlx::query(
            "SELECT date, open, high, low, close, volume, vwap, bar_count, trade_count \
             FROM daily_summaries WHERE symbol = ?1 AND date BETWEEN ?2 AND ?3 ORDER BY date",
        )
        .bind(symbol.as_str())
        .bind(dates.start().to_string())
        .bind(dates.end().to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(|e| map_sqlx(&format!("reading daily summaries of {symbol}"), e))?;
        rows.iter().map(|r| summary_from_row(symbol, r)).collect()
    }

    async fn latest_sessions(
        &self,
        as_of: NaiveDate,
        sessions: usize,
    ) -> Result<Vec<DailySummary>, RepositoryError> {
        let sessions = i64::try_from(sessions).unwrap_or(i64::MAX);
        let rows = sqlx::query(
            "SELECT symbol, date, open, high, low, close, volume, vwap, bar_count, trade_count \
             FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY symbol ORDER BY date DESC) AS back \
                   FROM daily_summaries WHERE date <= ?1) \
             WHERE back <= ?2 ORDER BY symbol, date",
        )
        .bind(as_of.to_string())
        .bind(sessions)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| {
            map_sqlx(
                &format!("reading the last {sessions} daily summaries to {as_of}"),
                e,
            )
        })?;
        rows.iter()
            .map(|r| {
                let symbol = symbol(&column::<String>(r, "symbol")?)?;
                summary_from_row(symbol, r)
            })
            .collect()
    }
}
