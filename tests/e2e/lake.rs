//! Helpers that look at a lake on disk the way a user's tools would: the Parquet files
//! themselves (read with the `parquet` crate, not through MarketPipe), their names, bytes and
//! modification times.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type, TimestampMicrosecondType};
use arrow_array::{Array as _, RecordBatch};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// The data file name of every partition.
pub(crate) const PART_FILE: &str = "part-0.parquet";

/// The columns of a lake file (lake format 2), in order (docs/storage.md): the symbol is the
/// `symbol=` directory, not a column.
pub(crate) const COLUMNS: [&str; 12] = [
    "ts",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "trade_count",
    "vwap",
    "provider",
    "feed",
    "origin",
    "ingested_at",
];

/// The lake under a data directory.
pub(crate) fn root(data_dir: &Path) -> PathBuf {
    data_dir.join("lake")
}

/// Every file under `dir`, recursively, sorted; empty when `dir` does not exist.
pub(crate) fn all_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries {
            let entry = entry.unwrap();
            let path = entry.path();
            if entry.file_type().unwrap().is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The partition data files (`part-0.parquet`) under `dir`, sorted.
pub(crate) fn part_files(dir: &Path) -> Vec<PathBuf> {
    all_files(dir)
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n == PART_FILE))
        .collect()
}

/// Files whose name contains `.tmp-` (temporary files of the write protocol) under `dir`.
pub(crate) fn temp_files(dir: &Path) -> Vec<PathBuf> {
    all_files(dir)
        .into_iter()
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().contains(".tmp-"))
        })
        .collect()
}

/// The path of a partition's data file.
pub(crate) fn partition_file(data_dir: &Path, symbol: &str, year: i32, month: u32) -> PathBuf {
    root(data_dir)
        .join("frame=1m")
        .join(format!("symbol={symbol}"))
        .join(format!("year={year:04}"))
        .join(format!("month={month}"))
        .join(PART_FILE)
}

/// Part files' modification times and bytes, by path relative to the lake root.
pub(crate) type Snapshot = BTreeMap<PathBuf, (SystemTime, Vec<u8>)>;

/// Each part file's modification time (nanosecond resolution) and bytes, by path relative
/// to the lake root.
pub(crate) fn snapshot(lake_root: &Path) -> Snapshot {
    part_files(lake_root)
        .into_iter()
        .map(|p| {
            let modified = std::fs::metadata(&p).unwrap().modified().unwrap();
            let bytes = std::fs::read(&p).unwrap();
            (
                p.strip_prefix(lake_root).unwrap().to_path_buf(),
                (modified, bytes),
            )
        })
        .collect()
}

/// One stored bar with every column but `ingested_at`, plus the file it is in (relative to
/// the lake root), so that comparing rows also compares where they are stored.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Row {
    pub(crate) symbol: String,
    /// UTC nanoseconds.
    pub(crate) ts: i64,
    pub(crate) file: String,
    pub(crate) open: f64,
    pub(crate) high: f64,
    pub(crate) low: f64,
    pub(crate) close: f64,
    pub(crate) volume: i64,
    pub(crate) trade_count: Option<i64>,
    pub(crate) vwap: Option<f64>,
    pub(crate) provider: String,
    pub(crate) feed: Option<String>,
    /// `provider` or `aggregate:1m`.
    pub(crate) origin: String,
}

impl Row {
    /// Low and high bound open and close, and every price is positive.
    pub(crate) fn is_ohlc_consistent(&self) -> bool {
        self.low > 0.0
            && self.low <= self.open.min(self.close)
            && self.high >= self.open.max(self.close)
            && self.volume >= 0
    }
}

/// The rows of one Parquet file, in file order. Panics if the file is not the lake's schema.
pub(crate) fn read_file(path: &Path, lake_root: &Path) -> Vec<Row> {
    let file = File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .build()
        .unwrap();
    let relative = path
        .strip_prefix(lake_root)
        .unwrap()
        .to_string_lossy()
        .replace('\\', "/");
    let mut rows = Vec::new();
    for batch in reader {
        let batch = batch.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        push_rows(&batch, &relative, &mut rows);
    }
    rows
}

fn push_rows(batch: &RecordBatch, file: &str, rows: &mut Vec<Row>) {
    let names: Vec<&str> = batch
        .schema_ref()
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect();
    assert_eq!(names, COLUMNS, "columns of {file}");
    let col = |name: &str| batch.column_by_name(name).unwrap();
    let symbol = file
        .split('/')
        .find_map(|part| part.strip_prefix("symbol="))
        .unwrap_or_else(|| panic!("{file} is not under a symbol= directory"));
    let ts = col("ts").as_primitive::<TimestampMicrosecondType>();
    let origin = col("origin").as_string::<i32>();
    let f64s = |name| col(name).as_primitive::<Float64Type>().clone();
    let (open, high, low, close, vwap) = (
        f64s("open"),
        f64s("high"),
        f64s("low"),
        f64s("close"),
        f64s("vwap"),
    );
    let volume = col("volume").as_primitive::<Int64Type>();
    let trade_count = col("trade_count").as_primitive::<Int64Type>();
    let provider = col("provider").as_string::<i32>();
    let feed = col("feed").as_string::<i32>();
    let opt_i64 = |a: &arrow_array::Int64Array, i| a.is_valid(i).then(|| a.value(i));
    for i in 0..batch.num_rows() {
        rows.push(Row {
            symbol: symbol.to_owned(),
            ts: ts.value(i) * 1_000,
            file: file.to_owned(),
            open: open.value(i),
            high: high.value(i),
            low: low.value(i),
            close: close.value(i),
            volume: volume.value(i),
            trade_count: opt_i64(trade_count, i),
            vwap: vwap.is_valid(i).then(|| vwap.value(i)),
            provider: provider.value(i).to_owned(),
            feed: feed.is_valid(i).then(|| feed.value(i).to_owned()),
            origin: origin.value(i).to_owned(),
        });
    }
}

/// Every row of every part file under the lake of `data_dir`, sorted by (symbol, ts, file).
pub(crate) fn read_lake(data_dir: &Path) -> Vec<Row> {
    let lake_root = root(data_dir);
    let mut rows: Vec<Row> = part_files(&lake_root)
        .iter()
        .flat_map(|p| read_file(p, &lake_root))
        .collect();
    rows.sort_by(|a, b| (&a.symbol, a.ts, &a.file).cmp(&(&b.symbol, b.ts, &b.file)));
    rows
}

/// Asserts that two lakes hold the same rows (all columns but `ingested_at`, and the same
/// files), naming the first difference instead of printing hundreds of thousands of rows.
pub(crate) fn assert_same_rows(actual: &[Row], expected: &[Row], what: &str) {
    if let Some(i) = (0..actual.len().min(expected.len())).find(|&i| actual[i] != expected[i]) {
        panic!(
            "{what}: row {i} differs (of {} vs {} rows):\n  actual   {:?}\n  expected {:?}",
            actual.len(),
            expected.len(),
            actual[i],
            expected[i]
        );
    }
    assert_eq!(
        actual.len(),
        expected.len(),
        "{what}: one lake has extra rows (first extra: {:?})",
        actual.get(expected.len()).or(expected.get(actual.len()))
    );
}

/// Asserts that the lakes of two data directories hold the same part files and rows.
pub(crate) fn assert_same_lake(actual_data_dir: &Path, expected_data_dir: &Path, what: &str) {
    let relative = |d: &Path| -> Vec<PathBuf> {
        let r = root(d);
        part_files(&r)
            .into_iter()
            .map(|p| p.strip_prefix(&r).unwrap().to_path_buf())
            .collect()
    };
    assert_eq!(
        relative(actual_data_dir),
        relative(expected_data_dir),
        "{what}: part files"
    );
    assert_same_rows(
        &read_lake(actual_data_dir),
        &read_lake(expected_data_dir),
        what,
    );
}

/// What another tool does to a file: rewrites `path` in place without the rows whose `ts`
/// (UTC nanoseconds) lies in `[from, to)`, keeping the schema and key-value metadata, with
/// the `parquet` crate and no MarketPipe code (so the manifest no longer matches it).
pub(crate) fn remove_rows_outside_mp(path: &Path, from: i64, to: i64) -> usize {
    use parquet::arrow::ArrowWriter;
    use parquet::file::properties::WriterProperties;
    let file = File::open(path).unwrap();
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
    let metadata = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .cloned()
        .unwrap_or_default();
    let schema = builder.schema().clone();
    let mut kept = Vec::new();
    let mut removed = 0;
    for batch in builder.build().unwrap() {
        let batch = batch.unwrap();
        let ts = batch
            .column_by_name("ts")
            .unwrap()
            .as_primitive::<TimestampMicrosecondType>()
            .clone();
        // Rows are sorted by ts: the removed ones are one run.
        let inside = |i: usize| (from..to).contains(&(ts.value(i) * 1_000));
        let first = (0..batch.num_rows()).find(|i| inside(*i));
        let Some(first) = first else {
            kept.push(batch);
            continue;
        };
        let end = (first..batch.num_rows())
            .find(|i| !inside(*i))
            .unwrap_or(batch.num_rows());
        removed += end - first;
        kept.push(batch.slice(0, first));
        kept.push(batch.slice(end, batch.num_rows() - end));
    }
    let out = File::create(path).unwrap();
    let mut writer = ArrowWriter::try_new(out, schema, Some(WriterProperties::default())).unwrap();
    for kv in metadata {
        writer.append_key_value_metadata(kv);
    }
    for batch in &kept {
        writer.write(batch).unwrap();
    }
    writer.close().unwrap();
    removed
}

/// Another tool rewrites `path` with its record batches in reverse order (the same rows, no
/// longer sorted by `ts`), keeping the schema and key-value metadata.
pub(crate) fn unsort_rows_outside_mp(path: &Path) {
    use parquet::arrow::ArrowWriter;
    use parquet::file::properties::WriterProperties;
    let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap())
        .unwrap()
        .with_batch_size(256);
    let metadata = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .cloned()
        .unwrap_or_default();
    let schema = builder.schema().clone();
    let mut batches: Vec<RecordBatch> = builder.build().unwrap().map(Result::unwrap).collect();
    assert!(batches.len() > 1, "enough rows to reorder");
    batches.reverse();
    let out = File::create(path).unwrap();
    let mut writer = ArrowWriter::try_new(out, schema, Some(WriterProperties::default())).unwrap();
    for kv in metadata {
        writer.append_key_value_metadata(kv);
    }
    for batch in &batches {
        writer.write(batch).unwrap();
    }
    writer.close().unwrap();
}
