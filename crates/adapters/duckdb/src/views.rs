//! The SQL of the views: one per timeframe, `bars_<tf>`, over the frame's Parquet files.

use std::path::Path;

use marketpipe_domain::{PartitionPeriod, Timeframe};
use marketpipe_ports::layout::frame_glob;

/// The columns of every view, in order, with their DuckDB types (docs/storage.md, plus the
/// Hive partition columns `symbol`, `year` and `month`).
pub(crate) const COLUMNS: [(&str, &str); 15] = [
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
    ("origin", "VARCHAR"),
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

/// What a view reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ViewSource {
    /// No file: an empty relation with the view's columns.
    Empty,
    /// The frame's files, all of the current lake format (the lake root's format marker says
    /// so): read as one schema, binding only the first file's footer.
    Current,
    /// The frame's files, possibly of several lake formats (no marker: a lake written before
    /// format 2, or midway through `mp lake upgrade`): read by column name, which binds
    /// every file's footer.
    Mixed,
}

/// `CREATE OR REPLACE VIEW` for a frame over `source`.
pub(crate) fn create_view(lake_root: &Path, frame: Timeframe, source: ViewSource) -> String {
    let name = view_name(frame);
    if source == ViewSource::Empty {
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
            "{'symbol': VARCHAR, 'year': INTEGER, 'month': INTEGER}",
            "CAST(month AS INTEGER)",
        ),
        // A yearly frame has no month directory: naming one in hive_types is an error.
        PartitionPeriod::Year => (
            "{'symbol': VARCHAR, 'year': INTEGER}",
            "CAST(NULL AS INTEGER)",
        ),
    };
    // Explicit columns: the Hive parser also finds `frame=` (and any `key=value` directory
    // above the lake), which the views leave out. Casts to the type a column already has
    // are free and keep filter pushdown. `symbol` is the directory's (lake format 2 files
    // hold none; format 1 files hold the same value); format 1 files have no `origin`, and
    // said `provider = aggregate` on aggregated bars.
    let columns: Vec<String> = COLUMNS
        .iter()
        .map(|(c, t)| match *c {
            "month" => format!("{month} AS month"),
            "origin" => "CAST(COALESCE(origin, CASE WHEN provider = 'aggregate' THEN \
                         'aggregate:1m' ELSE 'provider' END) AS VARCHAR) AS origin"
                .to_owned(),
            _ => format!("CAST({c} AS {t}) AS {c}"),
        })
        .collect();
    let scan = format!(
        "read_parquet({}, hive_partitioning = true, hive_types = {hive_types}{})",
        literal(&glob(lake_root, frame)),
        if source == ViewSource::Mixed {
            ", union_by_name = true"
        } else {
            ""
        }
    );
    // Mixed: until `mp lake upgrade`, format 1 files (a `symbol` column, nanosecond
    // timestamps, no `origin`) sit beside format 2 ones; the empty relation joined by name
    // supplies `origin` when no file has it.
    let from = match source {
        ViewSource::Mixed => format!(
            "(SELECT * FROM {scan} UNION ALL BY NAME SELECT CAST(NULL AS VARCHAR) AS origin \
             WHERE false)"
        ),
        _ => scan,
    };
    format!(
        "CREATE OR REPLACE VIEW {name} AS SELECT {} FROM {from}",
        columns.join(", "),
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
            for source in [ViewSource::Empty, ViewSource::Current, ViewSource::Mixed] {
                let sql = create_view(Path::new("/l"), frame, source);
                assert!(sql.contains(&format!("VIEW bars_{frame} ")), "{sql}");
                for (c, _) in COLUMNS {
                    assert!(sql.contains(&format!(" AS {c}")), "{c} in {sql}");
                }
            }
        }
        let mixed = create_view(Path::new("/l"), Timeframe::M1, ViewSource::Mixed);
        assert!(mixed.contains("union_by_name = true"), "{mixed}");
        let current = create_view(Path::new("/l"), Timeframe::M1, ViewSource::Current);
        assert!(!current.contains("union_by_name"), "{current}");
        let yearly = create_view(Path::new("/l"), Timeframe::H1, ViewSource::Current);
        assert!(yearly.contains("{'symbol': VARCHAR, 'year': INTEGER}"));
        assert!(!yearly.contains("'month'"));
    }
}
