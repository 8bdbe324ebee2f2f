//! The `QueryEngine` port: read-only SQL over the lake's views.

use std::fmt;

use async_trait::async_trait;
use marketpipe_domain::Timestamp;
use serde::Serialize;

use crate::error::QueryError;

/// One cell of a result.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Cell {
    /// SQL NULL.
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// Text (and any type rendered as text).
    Text(String),
    /// A UTC instant.
    Timestamp(Timestamp),
}

impl fmt::Display for Cell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Null => Ok(()),
            Self::Bool(b) => write!(f, "{b}"),
            Self::Int(i) => write!(f, "{i}"),
            Self::Float(x) => write!(f, "{x}"),
            Self::Text(t) => f.write_str(t),
            Self::Timestamp(ts) => write!(f, "{ts}"),
        }
    }
}

/// A query's result.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct QueryResult {
    /// Column names.
    pub columns: Vec<String>,
    /// Rows, each as long as `columns`.
    pub rows: Vec<Vec<Cell>>,
    /// Whether rows were cut at the limit.
    pub truncated: bool,
}

/// Runs reading SQL over the lake's views (`bars_1m`, `bars_5m`, …).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait QueryEngine: Send + Sync + fmt::Debug {
    /// Runs one reading statement, returning at most `limit` rows. Writing statements are
    /// refused with [`QueryError::Refused`] before anything runs.
    async fn query(&self, sql: &str, limit: Option<usize>) -> Result<QueryResult, QueryError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_display() {
        let cells = [
            Cell::Null,
            Cell::Bool(true),
            Cell::Int(-3),
            Cell::Float(1.5),
            Cell::Text("AAPL".into()),
            Cell::Timestamp(Timestamp::EPOCH),
        ];
        let text: Vec<String> = cells.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            ["", "true", "-3", "1.5", "AAPL", "1970-01-01T00:00:00Z"]
        );
    }

    #[tokio::test]
    async fn mock_engine() {
        let mut engine = MockQueryEngine::new();
        engine.expect_query().returning(|sql, _| {
            Err(QueryError::Refused {
                statement: sql.to_owned(),
                reason: "writes".into(),
            })
        });
        let engine: std::sync::Arc<dyn QueryEngine> = std::sync::Arc::new(engine);
        assert!(engine.query("COPY x TO 'y'", None).await.is_err());
    }
}
