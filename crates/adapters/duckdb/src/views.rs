//! The SQL of the views: one per timeframe, `bars_<tf>`, over the frame's Parquet files.

use std::path::Path;

use marketpipe_domain::{PartitionPeriod, Timeframe};
use marketpipe_ports::layout::frame_glob;

/// The columns of every view, in order, with their DuckDB types (docs/storage.md, plus the
/// Hive partition columns `year` and `month`; `symbol` is the `symbol=` directory).
pub(crate) const COLUMNS: [(&str, &str); 14] = [
    ("symbol", "VARCHAR"),
    ("ts", "TIMESTAMPTZ"),
    ("open", "DOUBLE"),
    ("high", "DOUBLE"),
    ("low", "DOUBLE"),
    ("close", "DOUBLE"),
    ("volume", "BIGINT"),
    ("trade_count", "BIGINT"),
    ("vwap", "DOUBLE"),
    ("provider", "VARCHAR"),
    ("feed", "VARCHAR"),
    ("ingested_at", "TIMESTAMPTZ"),
    ("year", "INTEGER"),
    ("month", "INTEGER"),
];

/// The view of a frame: `bars_1m`, `bars_1d`, …
pub(crate) fn view_name(frame: Timeframe) -> String {
    format!("bars_{}", frame.as_str())
}

/// A SQL string literal (`'` doubled; DuckDB's standard strings know no other escape).
pub(crate) fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// The glob of a frame's data files under the lake root (the layout's
/// [`frame_glob`]). It names every directory level and only files named `part-*.parquet`, so
/// the lock files and the write protocol's temporary files (which start with
/// `.part-0.parquet.` and do not end in `.parquet`) can never match.
pub(crate) fn glob(lake_root: &Path, frame: Timeframe) -> String {
    let root = lake_root.to_string_lossy();
    format!("{}/{}", root.trim_end_matches('/'), frame_glob(frame))
}

/// `CREATE OR REPLACE VIEW` for a frame: over its files when it has some, else an empty
/// relation with the same columns and types.
pub(crate) fn create_view(lake_root: &Path, frame: Timeframe, has_files: bool) -> String {
    let name = view_name(frame);
    if !has_files {
        let columns: Vec<String> = COLUMNS
            .iter()
            .map(|(c, t)| format!("CAST(NULL AS {t}) AS {c}"))
            .collect();
        return format!(
            "CREATE OR REPLACE VIEW {name} AS SELECT {} WHERE false",
            columns.join(", ")
        );
    }
    let (hive_types, month) = match frame.partition_period() {
        PartitionPeriod::Month => (
            "{'year': INTEGER, 'month': INTEGER}",
            "CAST(month AS INTEGER)",
        ),
        // A yearly frame has no month directory: naming one in hive_types is an error.
        PartitionPeriod::Year => ("{'year': INTEGER}", "CAST(NULL AS INTEGER)"),
    };
    // Explicit columns: the Hive parser also finds `frame=` (and any `key=value` directory
    // above the lake), which the views leave out. Casts to the type a column already has
    // are free and keep filter pushdown.
    let columns: Vec<String> = COLUMNS
        .iter()
        .map(|(c, t)| match *c {
            "month" => format!("{month} AS month"),
            _ => format!("CAST({c} AS {t}) AS {c}"),
        })
        .collect();
    format!(
        "CREATE OR REPLACE VIEW {name} AS SELECT {} FROM read_parquet({}, hive_partitioning = true, \
         hive_types = {hive_types})",
        columns.join(", "),
        literal(&glob(lake_root, frame)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_name_every_level() {
        let root = Path::new("/data/lake/");
        assert_eq!(
            glob(root, Timeframe::M1),
            "/data/lake/frame=1m/symbol=*/year=*/month=*/part-*.parquet"
        );
        assert_eq!(
            glob(root, Timeframe::D1),
            "/data/lake/frame=1d/symbol=*/year=*/part-*.parquet"
        );
    }

    #[test]
    fn literals_double_quotes() {
        assert_eq!(literal("/it's/lake"), "'/it''s/lake'");
    }

    #[test]
    fn views_name_all_columns() {
        for frame in Timeframe::ALL {
            for has_files in [false, true] {
                let sql = create_view(Path::new("/l"), frame, has_files);
                assert!(sql.contains(&format!("VIEW bars_{frame} ")), "{sql}");
                for (c, _) in COLUMNS {
                    assert!(sql.contains(&format!(" AS {c}")), "{c} in {sql}");
                }
            }
        }
        let yearly = create_view(Path::new("/l"), Timeframe::H1, true);
        assert!(yearly.contains("{'year': INTEGER}"));
        assert!(!yearly.contains("'month'"));
    }
}
