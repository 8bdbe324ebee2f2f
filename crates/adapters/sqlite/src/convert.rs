//! Error mapping and conversions between domain values and stored columns.

use std::str::FromStr;

use chrono::NaiveDate;
use marketpipe_domain::{Price, Symbol, Timeframe, Timestamp};
use marketpipe_ports::RepositoryError;
use sqlx::Row;
use sqlx::error::ErrorKind;
use sqlx::sqlite::SqliteRow;

/// SQLite's primary result codes that mean "another connection holds a lock".
const SQLITE_BUSY: i64 = 5;
const SQLITE_LOCKED: i64 = 6;
/// SQLite's primary result code for an operating-system I/O failure.
const SQLITE_IOERR: i64 = 10;

/// The primary result code of a database error (SQLite reports extended codes).
fn primary_code(e: &sqlx::Error) -> Option<i64> {
    let db = e.as_database_error()?;
    let code: i64 = db.code()?.parse().ok()?;
    Some(code & 0xff)
}

/// Whether `e` is a locked or busy database.
pub(crate) fn is_busy(e: &sqlx::Error) -> bool {
    matches!(primary_code(e), Some(SQLITE_BUSY | SQLITE_LOCKED))
}

/// Maps a driver error to the port's error; `context` says what was being done.
pub(crate) fn map_sqlx(context: &str, e: sqlx::Error) -> RepositoryError {
    let unavailable = |message: String, e: sqlx::Error| RepositoryError::Unavailable {
        message,
        source: Some(Box::new(e)),
    };
    match &e {
        sqlx::Error::Database(db) => {
            let text = db.message().to_owned();
            match primary_code(&e) {
                Some(SQLITE_BUSY | SQLITE_LOCKED) => {
                    return unavailable(format!("{context}: database is locked ({text})"), e);
                }
                Some(SQLITE_IOERR) => {
                    return unavailable(format!("{context}: I/O error ({text})"), e);
                }
                _ => {}
            }
            if db.kind() == ErrorKind::UniqueViolation {
                return RepositoryError::Conflict {
                    message: format!("{context}: {text}"),
                };
            }
            RepositoryError::Backend {
                message: format!("{context}: {text}"),
                source: Some(Box::new(e)),
            }
        }
        sqlx::Error::PoolTimedOut => unavailable(
            format!("{context}: timed out waiting for a database connection"),
            e,
        ),
        sqlx::Error::PoolClosed => unavailable(format!("{context}: the store is closed"), e),
        sqlx::Error::Io(io) => unavailable(format!("{context}: I/O error: {io}"), e),
        sqlx::Error::WorkerCrashed => {
            unavailable(format!("{context}: the database worker stopped"), e)
        }
        sqlx::Error::ColumnDecode { index, source } => RepositoryError::Corrupt {
            message: format!("{context}: column {index}: {source}"),
        },
        sqlx::Error::Decode(source) => RepositoryError::Corrupt {
            message: format!("{context}: {source}"),
        },
        _ => RepositoryError::Backend {
            message: format!("{context}: {e}"),
            source: Some(Box::new(e)),
        },
    }
}

/// A `Corrupt` error.
pub(crate) fn corrupt(message: String) -> RepositoryError {
    RepositoryError::Corrupt { message }
}

/// A count to store; refuses values above `i64::MAX` instead of wrapping.
pub(crate) fn count_to_i64(what: &str, value: u64) -> Result<i64, RepositoryError> {
    i64::try_from(value).map_err(|_| RepositoryError::Backend {
        message: format!(
            "{what} {value} exceeds the largest storable count ({})",
            i64::MAX
        ),
        source: None,
    })
}

/// A stored count; a negative one is corrupt.
pub(crate) fn count_from_i64(what: &str, value: i64) -> Result<u64, RepositoryError> {
    u64::try_from(value).map_err(|_| corrupt(format!("negative {what} {value}")))
}

/// A column of `row`, with decoding errors named after the column.
pub(crate) fn column<'r, T>(row: &'r SqliteRow, name: &str) -> Result<T, RepositoryError>
where
    T: sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
{
    row.try_get(name)
        .map_err(|e| map_sqlx(&format!("reading column {name}"), e))
}

/// A stored symbol.
pub(crate) fn symbol(text: &str) -> Result<Symbol, RepositoryError> {
    Symbol::new(text).map_err(|e| corrupt(format!("stored symbol {text:?} is invalid: {e}")))
}

/// A stored date (`YYYY-MM-DD`).
pub(crate) fn date(text: &str) -> Result<NaiveDate, RepositoryError> {
    NaiveDate::from_str(text).map_err(|e| corrupt(format!("stored date {text:?} is invalid: {e}")))
}

/// A stored timeframe.
pub(crate) fn timeframe(text: &str) -> Result<Timeframe, RepositoryError> {
    Timeframe::from_str(text).map_err(|e| corrupt(format!("stored frame {text:?}: {e}")))
}

/// A stored price (raw 1e-9 units).
pub(crate) fn price(what: &str, raw: i64) -> Result<Price, RepositoryError> {
    Price::from_raw(raw).map_err(|e| corrupt(format!("stored {what} {raw}: {e}")))
}

/// A stored optional timestamp.
pub(crate) fn timestamp(nanos: Option<i64>) -> Option<Timestamp> {
    nanos.map(Timestamp::from_nanos)
}

/// The current time in nanoseconds, for bookkeeping columns only.
pub(crate) fn now_nanos() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX)
}

/// Strings as a JSON array of strings.
pub(crate) fn json_strings<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    serde_json::Value::Array(
        items
            .into_iter()
            .map(|s| serde_json::Value::String(s.to_owned()))
            .collect(),
    )
    .to_string()
}

/// Labels as a JSON array of `[key, value]` pairs.
pub(crate) fn labels_json(labels: &[(String, String)]) -> String {
    serde_json::Value::Array(
        labels
            .iter()
            .map(|(k, v)| {
                serde_json::Value::Array(vec![
                    serde_json::Value::String(k.clone()),
                    serde_json::Value::String(v.clone()),
                ])
            })
            .collect(),
    )
    .to_string()
}

/// Stored labels.
pub(crate) fn labels(text: &str) -> Result<Vec<(String, String)>, RepositoryError> {
    serde_json::from_str(text).map_err(|e| corrupt(format!("stored labels {text:?}: {e}")))
}
