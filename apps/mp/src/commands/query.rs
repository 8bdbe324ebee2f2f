//! `mp query "<SQL>"`: one read-only statement over the lake's DuckDB views, printed as a
//! table, CSV or JSON.
//!
//! The engine (`marketpipe-duckdb`) sits behind the `query` cargo feature (on by default);
//! without it `mp query` exits 2 saying so. The lake root is `<data_dir>/lake`; a missing
//! lake gives empty views, and nothing is ever created or written.

// Without the `query` feature only the printers remain, unused but still compiled and tested.
#![cfg_attr(not(feature = "query"), allow(dead_code))]

use std::io::Write;

use marketpipe_ports::query::{Cell, QueryResult};

use crate::cli::{QueryArgs, QueryFormat};
use crate::commands::Context;
use crate::error::AppError;

/// Rows a table prints when `--limit` is not given (CSV and JSON print every row).
pub(crate) const DEFAULT_TABLE_LIMIT: usize = 10_000;

/// Runs the statement and prints its result.
#[cfg(feature = "query")]
pub(crate) async fn run(
    ctx: &Context,
    args: &QueryArgs,
    out: &mut dyn Write,
) -> Result<(), AppError> {
    use marketpipe_duckdb::DuckDbEngine;
    use marketpipe_ports::QueryEngine;
    use marketpipe_ports::error::QueryError;

    use crate::error::usage;

    let limit = effective_limit(args.format, args.limit);
    // The same root as the lake adapter's (`wiring::lake`).
    let lake_root = ctx.data_dir.join("lake");
    let engine = DuckDbEngine::open(&lake_root).map_err(|e| AppError::Failed(e.into()))?;
    // The statement's fault (refused, invalid SQL) is a usage error (2); a valid statement
    // that failed over the lake (a corrupt file) or an engine failure has failed (1).
    let result = engine.query(&args.sql, limit).await.map_err(|e| match e {
        QueryError::Refused { .. } | QueryError::Invalid { .. } => usage(e),
        QueryError::Execution { .. } | QueryError::Backend { .. } => AppError::Failed(e.into()),
        other => AppError::Failed(other.into()),
    })?;
    print(&result, args.format, limit, out)
}

/// Without DuckDB compiled in, `mp query` is a usage error.
#[cfg(not(feature = "query"))]
#[allow(clippy::unused_async)]
pub(crate) async fn run(
    _ctx: &Context,
    _args: &QueryArgs,
    _out: &mut dyn Write,
) -> Result<(), AppError> {
    Err(crate::error::usage(anyhow::anyhow!(
        "this mp was built without query support (cargo feature `query`); rebuild with \
         default features to use `mp query`"
    )))
}

/// The row limit for a format: `--limit`, else [`DEFAULT_TABLE_LIMIT`] for a table and none
/// for CSV and JSON.
pub(crate) fn effective_limit(format: QueryFormat, limit: Option<usize>) -> Option<usize> {
    match (limit, format) {
        (Some(n), _) => Some(n),
        (None, QueryFormat::Table) => Some(DEFAULT_TABLE_LIMIT),
        (None, QueryFormat::Csv | QueryFormat::Json) => None,
    }
}

/// Prints a result; a cut CSV or JSON result is reported on stderr (stdout stays valid).
pub(crate) fn print(
    result: &QueryResult,
    format: QueryFormat,
    limit: Option<usize>,
    out: &mut dyn Write,
) -> Result<(), AppError> {
    match format {
        QueryFormat::Table => write_table(result, limit, out)?,
        QueryFormat::Csv => write_csv(result, out)?,
        QueryFormat::Json => write_json(result, out)?,
    }
    if result.truncated && format != QueryFormat::Table {
        tracing::warn!(
            rows = result.rows.len(),
            "the result was truncated at {} rows; use --limit to print more",
            result.rows.len()
        );
    }
    Ok(())
}

/// A cell as table or CSV text (NULL is empty).
fn plain(cell: &Cell) -> String {
    cell.to_string()
}

/// Aligned columns under a header, numbers to the right, `NULL` for nulls; multi-line
/// values (EXPLAIN plans) take several lines. Then the row count, and a note when the rows
/// were cut at the limit.
fn write_table(
    result: &QueryResult,
    limit: Option<usize>,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let rendered: Vec<Vec<Vec<String>>> = result
        .rows
        .iter()
        .map(|row| {
            row.iter()
                .map(|cell| match cell {
                    Cell::Null => vec!["NULL".to_owned()],
                    other => plain(other).lines().map(str::to_owned).collect(),
                })
                .collect()
        })
        .collect();
    let width = |s: &str| s.chars().count();
    let mut widths: Vec<usize> = result.columns.iter().map(|c| width(c)).collect();
    for row in &rendered {
        for (w, lines) in widths.iter_mut().zip(row) {
            for line in lines {
                *w = (*w).max(width(line));
            }
        }
    }
    // Right-align a column when all its values are numbers.
    let numeric: Vec<bool> = (0..result.columns.len())
        .map(|i| {
            result
                .rows
                .iter()
                .all(|r| matches!(r.get(i), Some(Cell::Int(_) | Cell::Float(_) | Cell::Null)))
        })
        .collect();
    let line = |cells: &[&str]| -> String {
        let parts: Vec<String> = cells
            .iter()
            .zip(&widths)
            .zip(&numeric)
            .map(|((c, &w), &right)| {
                if right {
                    format!("{c:>w$}")
                } else {
                    format!("{c:<w$}")
                }
            })
            .collect();
        parts.join("  ").trim_end().to_owned()
    };
    let header: Vec<&str> = result.columns.iter().map(String::as_str).collect();
    writeln!(out, "{}", line(&header))?;
    let rules: Vec<String> = widths.iter().map(|&w| "-".repeat(w)).collect();
    let rules: Vec<&str> = rules.iter().map(String::as_str).collect();
    writeln!(out, "{}", line(&rules))?;
    for row in &rendered {
        let height = row.iter().map(Vec::len).max().unwrap_or(1).max(1);
        for k in 0..height {
            let cells: Vec<&str> = row
                .iter()
                .map(|lines| lines.get(k).map_or("", String::as_str))
                .collect();
            writeln!(out, "{}", line(&cells))?;
        }
    }
    let n = result.rows.len();
    writeln!(out, "({n} row{})", if n == 1 { "" } else { "s" })?;
    if result.truncated {
        let at = limit.unwrap_or(n);
        writeln!(out, "(truncated at {at} rows; use --limit to print more)")?;
    }
    Ok(())
}

/// One CSV field, quoted when it holds a comma, a quote or a line break (RFC 4180).
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

/// A header line (always, even without rows), then one line per row; NULL is an empty field.
fn write_csv(result: &QueryResult, out: &mut dyn Write) -> std::io::Result<()> {
    let header: Vec<String> = result.columns.iter().map(|c| csv_field(c)).collect();
    writeln!(out, "{}", header.join(","))?;
    for row in &result.rows {
        let fields: Vec<String> = row.iter().map(|c| csv_field(&plain(c))).collect();
        writeln!(out, "{}", fields.join(","))?;
    }
    Ok(())
}

/// A cell as a JSON value: numbers, booleans, strings, null; timestamps as RFC 3339 strings;
/// a float that is not finite as null.
fn json_value(cell: &Cell) -> serde_json::Value {
    use serde_json::Value;
    match cell {
        Cell::Null => Value::Null,
        Cell::Bool(b) => Value::Bool(*b),
        Cell::Int(i) => Value::from(*i),
        Cell::Float(x) => serde_json::Number::from_f64(*x).map_or(Value::Null, Value::Number),
        Cell::Text(t) => Value::String(t.clone()),
        Cell::Timestamp(ts) => Value::String(ts.to_rfc3339()),
    }
}

/// A JSON array of objects, one per row, keys in column order, one row per line.
fn write_json(result: &QueryResult, out: &mut dyn Write) -> std::io::Result<()> {
    if result.rows.is_empty() {
        return writeln!(out, "[]");
    }
    let keys: Vec<String> = result
        .columns
        .iter()
        .map(|c| serde_json::Value::String(c.clone()).to_string())
        .collect();
    writeln!(out, "[")?;
    for (i, row) in result.rows.iter().enumerate() {
        let members: Vec<String> = keys
            .iter()
            .zip(row)
            .map(|(k, cell)| format!("{k}:{}", json_value(cell)))
            .collect();
        let comma = if i + 1 < result.rows.len() { "," } else { "" };
        writeln!(out, "  {{{}}}{comma}", members.join(","))?;
    }
    writeln!(out, "]")
}

#[cfg(test)]
mod tests {
    use marketpipe_domain::Timestamp;

    use super::*;

    fn sample(truncated: bool) -> QueryResult {
        QueryResult {
            columns: vec!["symbol".into(), "n".into(), "note".into(), "ts".into()],
            rows: vec![
                vec![
                    Cell::Text("AAPL".into()),
                    Cell::Int(23_010),
                    Cell::Text("a, \"quoted\"\nline".into()),
                    Cell::Timestamp(Timestamp::parse_rfc3339("2024-01-02T14:30:00Z").unwrap()),
                ],
                vec![
                    Cell::Text("BRK.B".into()),
                    Cell::Float(1.5),
                    Cell::Null,
                    Cell::Null,
                ],
            ],
            truncated,
        }
    }

    fn render(result: &QueryResult, format: QueryFormat, limit: Option<usize>) -> String {
        let mut out = Vec::new();
        print(result, format, limit, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn limits_per_format() {
        assert_eq!(effective_limit(QueryFormat::Table, None), Some(10_000));
        assert_eq!(effective_limit(QueryFormat::Csv, None), None);
        assert_eq!(effective_limit(QueryFormat::Json, Some(5)), Some(5));
    }

    #[test]
    fn table_aligns_and_counts() {
        let text = render(&sample(false), QueryFormat::Table, Some(10));
        let expected = "\
symbol      n  note         ts
------  -----  -----------  --------------------
AAPL    23010  a, \"quoted\"  2024-01-02T14:30:00Z
               line
BRK.B     1.5  NULL         NULL
(2 rows)
";
        assert_eq!(text, expected);
        let cut = render(&sample(true), QueryFormat::Table, Some(2));
        assert!(cut.ends_with("(2 rows)\n(truncated at 2 rows; use --limit to print more)\n"));
        let empty = QueryResult {
            columns: vec!["a".into()],
            ..QueryResult::default()
        };
        assert_eq!(render(&empty, QueryFormat::Table, None), "a\n-\n(0 rows)\n");
    }

    #[test]
    fn csv_quotes_by_rfc_4180() {
        let text = render(&sample(false), QueryFormat::Csv, None);
        assert_eq!(
            text,
            "symbol,n,note,ts\nAAPL,23010,\"a, \"\"quoted\"\"\nline\",2024-01-02T14:30:00Z\nBRK.B,1.5,,\n"
        );
        let empty = QueryResult {
            columns: vec!["a b".into(), "c,d".into()],
            ..QueryResult::default()
        };
        assert_eq!(render(&empty, QueryFormat::Csv, None), "a b,\"c,d\"\n");
    }

    #[test]
    fn json_is_an_array_of_objects() {
        let text = render(&sample(false), QueryFormat::Json, None);
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            value,
            serde_json::json!([
                {"symbol": "AAPL", "n": 23010, "note": "a, \"quoted\"\nline", "ts": "2024-01-02T14:30:00Z"},
                {"symbol": "BRK.B", "n": 1.5, "note": null, "ts": null},
            ])
        );
        // Keys keep the column order.
        assert!(text.contains("{\"symbol\":\"AAPL\",\"n\":23010,"));
        let empty = QueryResult::default();
        assert_eq!(render(&empty, QueryFormat::Json, None), "[]\n");
        let nan = QueryResult {
            columns: vec!["x".into()],
            rows: vec![vec![Cell::Float(f64::NAN)]],
            truncated: false,
        };
        assert_eq!(
            render(&nan, QueryFormat::Json, None),
            "[\n  {\"x\":null}\n]\n"
        );
    }
}
