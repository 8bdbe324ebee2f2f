//! A writer of lake format 1 partition files, exactly as MarketPipe wrote them before lake
//! format 2 (docs/storage.md, "Format versions"): a `symbol` column, `ts` and `ingested_at`
//! as TIMESTAMP(NANOS, UTC), no `origin` column, no key-value metadata, and monthly
//! partitions under `month=01` … `month=12`. Tests use it to build the lakes that
//! `mp lake upgrade` and the readers of both formats must handle.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::{Float64Builder, Int64Builder, StringBuilder};
use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, TimestampNanosecondArray};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use marketpipe_domain::{Bar, Price, Timestamp};
use marketpipe_ports::PartitionKey;
use marketpipe_ports::layout::{PART_FILE, legacy_partition_file, partition_file};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

/// The provider format 1 wrote on aggregated bars.
pub const FORMAT_1_AGGREGATE_PROVIDER: &str = "aggregate";

/// Where format 1 kept `key`'s file under the lake `root`.
pub fn format_1_path(root: &Path, key: &PartitionKey) -> PathBuf {
    legacy_partition_file(root, key).unwrap_or_else(|| partition_file(root, key))
}

/// Writes `bars` (all of `key`'s symbol and period, sorted) as `key`'s format 1 file under
/// the lake `root`, with one provenance for every row. Returns the file's path.
pub fn write_format_1(
    root: &Path,
    key: &PartitionKey,
    bars: &[Bar],
    provider: &str,
    feed: Option<&str>,
    ingested_at: Timestamp,
) -> io::Result<PathBuf> {
    let path = format_1_path(root, key);
    let dir = path.parent().unwrap_or(root);
    fs::create_dir_all(dir)?;
    let ts_type = || DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()));
    let schema = Arc::new(Schema::new(vec![
        Field::new("symbol", DataType::Utf8, false),
        Field::new("ts", ts_type(), false),
        Field::new("open", DataType::Float64, false),
        Field::new("high", DataType::Float64, false),
        Field::new("low", DataType::Float64, false),
        Field::new("close", DataType::Float64, false),
        Field::new("volume", DataType::Int64, false),
        Field::new("trade_count", DataType::Int64, true),
        Field::new("vwap", DataType::Float64, true),
        Field::new("provider", DataType::Utf8, false),
        Field::new("feed", DataType::Utf8, true),
        Field::new("ingested_at", ts_type(), false),
    ]));
    let n = bars.len();
    let mut symbol = StringBuilder::new();
    let mut provider_col = StringBuilder::new();
    let mut feed_col = StringBuilder::new();
    let mut trade_count = Int64Builder::with_capacity(n);
    let mut vwap = Float64Builder::with_capacity(n);
    let to_i64 = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    for bar in bars {
        symbol.append_value(bar.symbol.as_str());
        provider_col.append_value(provider);
        feed_col.append_option(feed);
        trade_count.append_option(bar.trade_count.map(to_i64));
        vwap.append_option(bar.vwap.map(Price::to_f64));
    }
    let prices = |f: fn(&Bar) -> Price| -> ArrayRef {
        Arc::new(Float64Array::from_iter_values(
            bars.iter().map(|b| f(b).to_f64()),
        ))
    };
    let columns: Vec<ArrayRef> = vec![
        Arc::new(symbol.finish()),
        Arc::new(
            TimestampNanosecondArray::from_iter_values(bars.iter().map(|b| b.ts.nanos()))
                .with_timezone("UTC"),
        ),
        prices(|b| b.open),
        prices(|b| b.high),
        prices(|b| b.low),
        prices(|b| b.close),
        Arc::new(Int64Array::from_iter_values(
            bars.iter().map(|b| to_i64(b.volume)),
        )),
        Arc::new(trade_count.finish()),
        Arc::new(vwap.finish()),
        Arc::new(provider_col.finish()),
        Arc::new(feed_col.finish()),
        Arc::new(
            TimestampNanosecondArray::from_iter_values(bars.iter().map(|_| ingested_at.nanos()))
                .with_timezone("UTC"),
        ),
    ];
    let batch = RecordBatch::try_new(Arc::clone(&schema), columns).map_err(io::Error::other)?;
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .build();
    let temp = dir.join(format!(".{PART_FILE}.fixture"));
    let file = fs::File::create(&temp)?;
    let mut writer = ArrowWriter::try_new(file, schema, Some(props)).map_err(io::Error::other)?;
    writer.write(&batch).map_err(io::Error::other)?;
    writer.close().map_err(io::Error::other)?;
    fs::rename(&temp, &path)?;
    Ok(path)
}
