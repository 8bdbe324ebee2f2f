//! `SymbolMasterRepository` and `UniverseRepository`: the `symbol_master`,
//! `symbol_snapshots`, `universes` and `universe_entries` tables.

use std::str::FromStr;

use async_trait::async_trait;
use chrono::NaiveDate;
use marketpipe_domain::{
    AssetType, Exchange, FinancialStatus, MasterRow, SecurityRecord, Symbol, Timestamp,
};
use marketpipe_ports::{
    Exclusion, MasterUpdate, RepositoryError, SnapshotInfo, SymbolMasterRepository, UniverseEntry,
    UniverseInfo, UniverseRepository, UniverseSnapshot,
};
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Sqlite};

use crate::SqliteStore;
use crate::convert::{column, corrupt, count_from_i64, count_to_i64, date, map_sqlx, symbol};

/// Rows per multi-row `INSERT` (14 parameters each, far below SQLite's 32,766).
const ROWS_PER_INSERT: usize = 1000;

/// The `symbol_master` columns, in the order rows are inserted (a macro: SQL is static).
macro_rules! master_columns {
    () => {
        "source, symbol, vendor_symbol, name, exchange, asset_type, test_issue, \
         financial_status, round_lot, market_cap, sic_code, source_id, valid_from, valid_to"
    };
}

/// A stored name of a closed list (exchange, asset type, status).
fn named<T: FromStr>(what: &str, text: &str) -> Result<T, RepositoryError>
where
    T::Err: std::fmt::Display,
{
    T::from_str(text).map_err(|e| corrupt(format!("stored {what} {text:?}: {e}")))
}

fn master_row(row: &SqliteRow) -> Result<MasterRow, RepositoryError> {
    let round_lot: Option<i64> = column(row, "round_lot")?;
    Ok(MasterRow {
        source: column(row, "source")?,
        record: SecurityRecord {
            symbol: symbol(&column::<String>(row, "symbol")?)?,
            vendor_symbol: column(row, "vendor_symbol")?,
            name: column(row, "name")?,
            exchange: named::<Exchange>("exchange", &column::<String>(row, "exchange")?)?,
            asset_type: named::<AssetType>("asset type", &column::<String>(row, "asset_type")?)?,
            test_issue: column::<i64>(row, "test_issue")? != 0,
            financial_status: column::<Option<String>>(row, "financial_status")?
                .map(|s| named::<FinancialStatus>("financial status", &s))
                .transpose()?,
            round_lot: round_lot
                .map(|n| u32::try_from(n).map_err(|_| corrupt(format!("stored round lot {n}"))))
                .transpose()?,
            market_cap: column(row, "market_cap")?,
            sic_code: column(row, "sic_code")?,
            source_id: column(row, "source_id")?,
        },
        valid_from: date(&column::<String>(row, "valid_from")?)?,
        valid_to: column::<Option<String>>(row, "valid_to")?
            .map(|d| date(&d))
            .transpose()?,
    })
}

fn snapshot_info(row: &SqliteRow) -> Result<SnapshotInfo, RepositoryError> {
    Ok(SnapshotInfo {
        source: column(row, "source")?,
        as_of: date(&column::<String>(row, "as_of")?)?,
        loaded_at: Timestamp::from_nanos(column(row, "loaded_at")?),
        securities: count_from_i64("securities", column(row, "securities")?)?,
        opened: count_from_i64("opened", column(row, "opened")?)?,
        closed: count_from_i64("closed", column(row, "closed")?)?,
    })
}

#[async_trait]
impl SymbolMasterRepository for SqliteStore {
    async fn snapshots(&self) -> Result<Vec<SnapshotInfo>, RepositoryError> {
        let rows = sqlx::query(
            "SELECT source, as_of, loaded_at, securities, opened, closed FROM symbol_snapshots \
             ORDER BY source, as_of",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(|e| map_sqlx("listing symbol master snapshots", e))?;
        rows.iter().map(snapshot_info).collect()
    }

    async fn current_rows(&self, source: &str) -> Result<Vec<MasterRow>, RepositoryError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            master_columns!(),
            " FROM symbol_master WHERE source = ?1 AND valid_to IS NULL ORDER BY symbol"
        ))
        .bind(source)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| map_sqlx(&format!("reading the current symbols of {source}"), e))?;
        rows.iter().map(master_row).collect()
    }

    async fn apply_snapshot(&self, update: &MasterUpdate) -> Result<(), RepositoryError> {
        let info = &update.info;
        let as_of = info.as_of.to_string();
        let context = format!("applying the {} snapshot of {as_of}", info.source);
        let err = |e| map_sqlx(&context, e);
        let _guard = self.write_guard().await;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(err)?;
        if update.replaces_day {
            sqlx::query("DELETE FROM symbol_master WHERE source = ?1 AND valid_from = ?2")
                .bind(&info.source)
                .bind(&as_of)
                .execute(&mut *tx)
                .await
                .map_err(err)?;
            sqlx::query(
                "UPDATE symbol_master SET valid_to = NULL WHERE source = ?1 AND valid_to = ?2",
            )
            .bind(&info.source)
            .bind(&as_of)
            .execute(&mut *tx)
            .await
            .map_err(err)?;
        }
        for symbol in &update.close {
            // A version opened on this very date is replaced, not closed into an empty interval.
            sqlx::query(
                "DELETE FROM symbol_master WHERE source = ?1 AND symbol = ?2 AND valid_to IS NULL \
                 AND valid_from >= ?3",
            )
            .bind(&info.source)
            .bind(symbol.as_str())
            .bind(&as_of)
            .execute(&mut *tx)
            .await
            .map_err(err)?;
            sqlx::query(
                "UPDATE symbol_master SET valid_to = ?3 WHERE source = ?1 AND symbol = ?2 \
                 AND valid_to IS NULL",
            )
            .bind(&info.source)
            .bind(symbol.as_str())
            .bind(&as_of)
            .execute(&mut *tx)
            .await
            .map_err(err)?;
        }
        for chunk in update.open.chunks(ROWS_PER_INSERT) {
            let mut insert = QueryBuilder::<Sqlite>::new(concat!(
                "INSERT INTO symbol_master (",
                master_columns!(),
                ") "
            ));
            insert.push_values(chunk, |mut values, r| {
                let round_lot = r.round_lot.map(i64::from);
                values
                    .push_bind(info.source.clone())
                    .push_bind(r.symbol.as_str().to_owned())
                    .push_bind(r.vendor_symbol.clone())
                    .push_bind(r.name.clone())
                    .push_bind(r.exchange.as_str())
                    .push_bind(r.asset_type.as_str())
                    .push_bind(i64::from(r.test_issue))
                    .push_bind(r.financial_status.map(FinancialStatus::as_str))
                    .push_bind(round_lot)
                    .push_bind(finite(r.market_cap))
                    .push_bind(r.sic_code.clone())
                    .push_bind(r.source_id.clone())
                    .push_bind(as_of.clone())
                    .push_bind(None::<String>);
            });
            insert.build().execute(&mut *tx).await.map_err(err)?;
        }
        sqlx::query(
            "INSERT INTO symbol_snapshots (source, as_of, loaded_at, securities, opened, closed) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (source, as_of) DO UPDATE SET \
             loaded_at = excluded.loaded_at, securities = excluded.securities, \
             opened = excluded.opened, closed = excluded.closed",
        )
        .bind(&info.source)
        .bind(&as_of)
        .bind(info.loaded_at.nanos())
        .bind(count_to_i64("securities", info.securities)?)
        .bind(count_to_i64("opened", info.opened)?)
        .bind(count_to_i64("closed", info.closed)?)
        .execute(&mut *tx)
        .await
        .map_err(err)?;
        tx.commit().await.map_err(err)
    }

    async fn rows_valid_on(&self, day: NaiveDate) -> Result<Vec<MasterRow>, RepositoryError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            master_columns!(),
            " FROM symbol_master WHERE valid_from <= ?1 \
             AND (valid_to IS NULL OR valid_to > ?1) ORDER BY symbol, source"
        ))
        .bind(day.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(|e| map_sqlx(&format!("reading the symbols valid on {day}"), e))?;
        rows.iter().map(master_row).collect()
    }

    async fn history(&self, symbol: Symbol) -> Result<Vec<MasterRow>, RepositoryError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            master_columns!(),
            " FROM symbol_master WHERE symbol = ?1 ORDER BY source, valid_from"
        ))
        .bind(symbol.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(|e| map_sqlx(&format!("reading the history of {symbol}"), e))?;
        rows.iter().map(master_row).collect()
    }
}

fn universe_entry(row: &SqliteRow) -> Result<UniverseEntry, RepositoryError> {
    let rank: Option<i64> = column(row, "rank")?;
    let excluded_by: Option<String> = column(row, "excluded_by")?;
    let reason: Option<String> = column(row, "reason")?;
    Ok(UniverseEntry {
        symbol: symbol(&column::<String>(row, "symbol")?)?,
        name: column(row, "name")?,
        exchange: column::<Option<String>>(row, "exchange")?
            .map(|s| named::<Exchange>("exchange", &s))
            .transpose()?,
        asset_type: column::<Option<String>>(row, "asset_type")?
            .map(|s| named::<AssetType>("asset type", &s))
            .transpose()?,
        price: column(row, "price")?,
        avg_dollar_volume: column(row, "avg_dollar_volume")?,
        avg_volume: column(row, "avg_volume")?,
        market_cap: column(row, "market_cap")?,
        sector: column(row, "sector")?,
        rank: rank
            .map(|n| u32::try_from(n).map_err(|_| corrupt(format!("stored rank {n}"))))
            .transpose()?,
        excluded: excluded_by.map(|filter| Exclusion {
            filter,
            reason: reason.unwrap_or_default(),
        }),
    })
}

fn universe_info(row: &SqliteRow) -> Result<UniverseInfo, RepositoryError> {
    Ok(UniverseInfo {
        as_of: date(&column::<String>(row, "as_of")?)?,
        name: column(row, "name")?,
        built_at: Timestamp::from_nanos(column(row, "built_at")?),
        members: count_from_i64("members", column(row, "members")?)?,
        candidates: count_from_i64("candidates", column(row, "candidates")?)?,
    })
}

/// A figure to store: NaN and infinities are stored as NULL (unknown).
fn finite(value: Option<f64>) -> Option<f64> {
    value.filter(|v| v.is_finite())
}

#[async_trait]
impl UniverseRepository for SqliteStore {
    async fn save(&self, universe: &UniverseSnapshot) -> Result<(), RepositoryError> {
        let as_of = universe.as_of.to_string();
        let context = format!("storing the universe of {as_of}");
        let err = |e| map_sqlx(&context, e);
        let members = universe.members().count();
        let _guard = self.write_guard().await;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(err)?;
        sqlx::query("DELETE FROM universe_entries WHERE as_of = ?1")
            .bind(&as_of)
            .execute(&mut *tx)
            .await
            .map_err(err)?;
        sqlx::query("DELETE FROM universes WHERE as_of = ?1")
            .bind(&as_of)
            .execute(&mut *tx)
            .await
            .map_err(err)?;
        sqlx::query(
            "INSERT INTO universes (as_of, name, filters, built_at, members, candidates) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .bind(&as_of)
        .bind(&universe.name)
        .bind(&universe.filters)
        .bind(universe.built_at.nanos())
        .bind(count_to_i64("members", members as u64)?)
        .bind(count_to_i64("candidates", universe.entries.len() as u64)?)
        .execute(&mut *tx)
        .await
        .map_err(err)?;
        for chunk in universe.entries.chunks(ROWS_PER_INSERT) {
            let mut insert = QueryBuilder::<Sqlite>::new(
                "INSERT INTO universe_entries (as_of, symbol, name, exchange, asset_type, price, \
                 avg_dollar_volume, avg_volume, market_cap, sector, rank, excluded_by, reason) ",
            );
            insert.push_values(chunk, |mut values, e| {
                values
                    .push_bind(as_of.clone())
                    .push_bind(e.symbol.as_str().to_owned())
                    .push_bind(e.name.clone())
                    .push_bind(e.exchange.map(Exchange::as_str))
                    .push_bind(e.asset_type.map(AssetType::as_str))
                    .push_bind(finite(e.price))
                    .push_bind(finite(e.avg_dollar_volume))
                    .push_bind(finite(e.avg_volume))
                    .push_bind(finite(e.market_cap))
                    .push_bind(e.sector.clone())
                    .push_bind(e.rank.map(i64::from))
                    .push_bind(e.excluded.as_ref().map(|x| x.filter.clone()))
                    .push_bind(e.excluded.as_ref().map(|x| x.reason.clone()));
            });
            insert.build().execute(&mut *tx).await.map_err(err)?;
        }
        tx.commit().await.map_err(err)
    }

    async fn list(&self) -> Result<Vec<UniverseInfo>, RepositoryError> {
        let rows = sqlx::query(
            "SELECT as_of, name, built_at, members, candidates FROM universes ORDER BY as_of",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(|e| map_sqlx("listing universes", e))?;
        rows.iter().map(universe_info).collect()
    }

    async fn get(&self, as_of: NaiveDate) -> Result<Option<UniverseSnapshot>, RepositoryError> {
        let context = format!("reading the universe of {as_of}");
        let head = sqlx::query("SELECT name, filters, built_at FROM universes WHERE as_of = ?1")
            .bind(as_of.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| map_sqlx(&context, e))?;
        let Some(head) = head else {
            return Ok(None);
        };
        let rows = sqlx::query(
            "SELECT symbol, name, exchange, asset_type, price, avg_dollar_volume, avg_volume, \
             market_cap, sector, rank, excluded_by, reason FROM universe_entries \
             WHERE as_of = ?1 ORDER BY rank IS NULL, rank, symbol",
        )
        .bind(as_of.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(|e| map_sqlx(&context, e))?;
        Ok(Some(UniverseSnapshot {
            as_of,
            name: column(&head, "name")?,
            filters: column(&head, "filters")?,
            built_at: Timestamp::from_nanos(column(&head, "built_at")?),
            entries: rows.iter().map(universe_entry).collect::<Result<_, _>>()?,
        }))
    }
}
