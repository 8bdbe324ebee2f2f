//! Bars <-> Arrow record batches, and the Parquet file reader.
//!
//! A partition's rows are held as [`Rows`]: the bars plus, per row, an index into a small
//! table of distinct `(provider, feed)` pairs and the `ingested_at` instant, so that neither
//! decoding nor merging allocates per row.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow_array::builder::{Float64Builder, Int64Builder, StringBuilder};
use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type, TimestampNanosecondType};
use arrow_array::{
    Array, ArrayRef, Float64Array, Int64Array, LargeStringArray, PrimitiveArray, RecordBatch,
    StringArray, StringViewArray, TimestampNanosecondArray,
};
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef, TimeUnit};
use marketpipe_domain::{Bar, Price, Symbol, Timestamp};
use marketpipe_ports::error::LakeError;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::statistics::Statistics;
use xxhash_rust::xxh3::Xxh3Default;

use crate::error::{corrupt, corrupt_with, io_error};

/// The time zone written on both timestamp columns.
const UTC: &str = "UTC";

/// Largest record batch decoded at once.
const MAX_READ_BATCH: usize = 1 << 20;

/// The provenance of stored rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Source {
    /// Provider name.
    pub(crate) provider: String,
    /// Provider feed.
    pub(crate) feed: Option<String>,
}

/// One stored row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StoredRow {
    /// The bar.
    pub(crate) bar: Bar,
    /// Index into [`Rows::sources`].
    pub(crate) source: u32,
    /// When the row was ingested (UTC nanoseconds).
    pub(crate) ingested_at: i64,
}

/// A partition's rows with their provenance table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Rows {
    /// The rows.
    pub(crate) rows: Vec<StoredRow>,
    /// Distinct provenances.
    pub(crate) sources: Vec<Source>,
}

impl Rows {
    /// The index of `(provider, feed)` in the table, adding it when new.
    pub(crate) fn intern(&mut self, provider: &str, feed: Option<&str>) -> u32 {
        if let Some(i) = self
            .sources
            .iter()
            .rposition(|s| s.provider == provider && s.feed.as_deref() == feed)
        {
            return index_u32(i);
        }
        self.sources.push(Source {
            provider: provider.to_owned(),
            feed: feed.map(str::to_owned),
        });
        index_u32(self.sources.len() - 1)
    }

    /// The provenance of a row.
    pub(crate) fn source(&self, row: &StoredRow) -> Option<&Source> {
        self.sources.get(row.source as usize)
    }
}

fn index_u32(i: usize) -> u32 {
    // A partition never holds 4 billion distinct providers; saturate rather than panic.
    u32::try_from(i).unwrap_or(u32::MAX)
}

/// Sorts by `key` and keeps the *last* of equal keys (in the original order). Returns
/// whether anything moved or was dropped. Already strictly increasing input is only scanned.
pub(crate) fn sort_dedup_last<T>(items: &mut Vec<T>, key: impl Fn(&T) -> i64) -> bool {
    if items.windows(2).all(|w| key(&w[0]) < key(&w[1])) {
        return false;
    }
    items.sort_by_key(|item| key(item)); // stable: equal keys keep their order
    items.dedup_by(|later, kept| {
        if key(later) == key(kept) {
            std::mem::swap(later, kept);
            true
        } else {
            false
        }
    });
    true
}

/// The lake's Arrow schema (docs/storage.md), in column order.
pub(crate) fn lake_schema() -> SchemaRef {
    let ts = || DataType::Timestamp(TimeUnit::Nanosecond, Some(UTC.into()));
    Arc::new(Schema::new(vec![
        Field::new("symbol", DataType::Utf8, false),
        Field::new("ts", ts(), false),
        Field::new("open", DataType::Float64, false),
        Field::new("high", DataType::Float64, false),
        Field::new("low", DataType::Float64, false),
        Field::new("close", DataType::Float64, false),
        Field::new("volume", DataType::Int64, false),
        Field::new("trade_count", DataType::Int64, true),
        Field::new("vwap", DataType::Float64, true),
        Field::new("provider", DataType::Utf8, false),
        Field::new("feed", DataType::Utf8, true),
        Field::new("ingested_at", ts(), false),
    ]))
}

/// Saturating `u64 -> i64` (callers validate first, so saturation never happens).
fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// One record batch of `rows`, built column by column from the rows.
pub(crate) fn encode(rows: &Rows, schema: &SchemaRef) -> Result<RecordBatch, ArrowError> {
    let n = rows.rows.len();
    let symbol_len = rows.rows.first().map_or(0, |r| r.bar.symbol.as_str().len());
    let mut symbol = StringBuilder::with_capacity(n, n * symbol_len);
    let mut ts = Vec::with_capacity(n);
    let mut open = Vec::with_capacity(n);
    let mut high = Vec::with_capacity(n);
    let mut low = Vec::with_capacity(n);
    let mut close = Vec::with_capacity(n);
    let mut volume = Vec::with_capacity(n);
    let mut trade_count = Int64Builder::with_capacity(n);
    let mut vwap = Float64Builder::with_capacity(n);
    let provider_len = rows.sources.iter().map(|s| s.provider.len()).max();
    let mut provider = StringBuilder::with_capacity(n, n * provider_len.unwrap_or(0));
    let feed_len = rows
        .sources
        .iter()
        .filter_map(|s| s.feed.as_ref())
        .map(String::len)
        .max();
    let mut feed = StringBuilder::with_capacity(n, n * feed_len.unwrap_or(0));
    let mut ingested_at = Vec::with_capacity(n);
    for row in &rows.rows {
        let bar = &row.bar;
        symbol.append_value(bar.symbol.as_str());
        ts.push(bar.ts.nanos());
        open.push(bar.open.to_f64());
        high.push(bar.high.to_f64());
        low.push(bar.low.to_f64());
        close.push(bar.close.to_f64());
        volume.push(to_i64(bar.volume));
        trade_count.append_option(bar.trade_count.map(to_i64));
        vwap.append_option(bar.vwap.map(Price::to_f64));
        let source = rows.source(row);
        provider.append_value(source.map_or("", |s| s.provider.as_str()));
        feed.append_option(source.and_then(|s| s.feed.as_deref()));
        ingested_at.push(row.ingested_at);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(symbol.finish()),
        Arc::new(TimestampNanosecondArray::from(ts).with_timezone(UTC)),
        Arc::new(Float64Array::from(open)),
        Arc::new(Float64Array::from(high)),
        Arc::new(Float64Array::from(low)),
        Arc::new(Float64Array::from(close)),
        Arc::new(Int64Array::from(volume)),
        Arc::new(trade_count.finish()),
        Arc::new(vwap.finish()),
        Arc::new(provider.finish()),
        Arc::new(feed.finish()),
        Arc::new(TimestampNanosecondArray::from(ingested_at).with_timezone(UTC)),
    ];
    RecordBatch::try_new(Arc::clone(schema), columns)
}

/// Hex xxh3-128 of the rows' content: symbol, ts, raw prices, volume, trade count, VWAP,
/// provider and feed, never `ingested_at`. Fields are length-prefixed or tagged so that
/// different content cannot produce the same byte stream.
pub(crate) fn content_hash(rows: &Rows) -> String {
    let mut hasher = Xxh3Default::new();
    hasher.update(b"marketpipe-bars-v1\0");
    let mut scratch: Vec<u8> = Vec::with_capacity(256);
    for row in &rows.rows {
        let bar = &row.bar;
        scratch.clear();
        put_str(&mut scratch, bar.symbol.as_str());
        scratch.extend_from_slice(&bar.ts.nanos().to_le_bytes());
        for price in [bar.open, bar.high, bar.low, bar.close] {
            scratch.extend_from_slice(&price.raw().to_le_bytes());
        }
        scratch.extend_from_slice(&bar.volume.to_le_bytes());
        put_opt(&mut scratch, bar.trade_count);
        put_opt(&mut scratch, bar.vwap.map(|p| p.raw().cast_unsigned()));
        let source = rows.source(row);
        put_str(&mut scratch, source.map_or("", |s| s.provider.as_str()));
        match source.and_then(|s| s.feed.as_deref()) {
            Some(feed) => {
                scratch.push(1);
                put_str(&mut scratch, feed);
            }
            None => scratch.push(0),
        }
        hasher.update(&scratch);
    }
    format!("{:032x}", hasher.digest128())
}

fn put_str(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(&(text.len() as u64).to_le_bytes());
    out.extend_from_slice(text.as_bytes());
}

fn put_opt(out: &mut Vec<u8>, value: Option<u64>) {
    match value {
        Some(v) => {
            out.push(1);
            out.extend_from_slice(&v.to_le_bytes());
        }
        None => out.push(0),
    }
}

/// Reads a partition file whose rows must all be of `symbol`, in file order.
/// `Ok(None)` when the file does not exist; `Corrupt` when it cannot be decoded or holds
/// values that are not bars (wrong column types, nulls in required columns, NaN or negative
/// prices, negative volumes, another symbol).
pub(crate) fn read_file(path: &Path, symbol: Symbol) -> Result<Option<Rows>, LakeError> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(path, "cannot open the partition file", e)),
    };
    decode_file(path, file, symbol).map(Some)
}

fn decode_file(path: &Path, file: File, symbol: Symbol) -> Result<Rows, LakeError> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| corrupt_with(path, format!("not a readable Parquet file: {e}"), e))?;
    let columns = Columns::find(builder.schema()).map_err(|m| corrupt(path, m))?;
    let total = builder.metadata().file_metadata().num_rows();
    let batch_size = usize::try_from(total).unwrap_or(0).clamp(1, MAX_READ_BATCH);
    let reader = builder
        .with_batch_size(batch_size)
        .build()
        .map_err(|e| corrupt_with(path, format!("cannot read the row groups: {e}"), e))?;
    let mut rows = Rows {
        rows: Vec::with_capacity(usize::try_from(total).unwrap_or(0)),
        sources: Vec::new(),
    };
    for batch in reader {
        let batch =
            batch.map_err(|e| corrupt_with(path, format!("cannot decode the data: {e}"), e))?;
        columns
            .decode_batch(&batch, symbol, &mut rows)
            .map_err(|m| corrupt(path, m))?;
    }
    Ok(rows)
}

/// The kind of a stored column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Str,
    Timestamp,
    F64,
    I64,
}

impl Kind {
    fn accepts(self, data_type: &DataType) -> bool {
        match self {
            Self::Str => matches!(
                data_type,
                DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
            ),
            // Files written by other tools may spell UTC as "+00:00" (the Parquet
            // isAdjustedToUTC flag without an embedded Arrow schema).
            Self::Timestamp => matches!(
                data_type,
                DataType::Timestamp(TimeUnit::Nanosecond, Some(tz))
                    if matches!(tz.as_ref(), "UTC" | "+00:00" | "Etc/UTC" | "Z")
            ),
            Self::F64 => data_type == &DataType::Float64,
            Self::I64 => data_type == &DataType::Int64,
        }
    }

    const fn expected(self) -> &'static str {
        match self {
            Self::Str => "Utf8",
            Self::Timestamp => "Timestamp(Nanosecond, \"UTC\")",
            Self::F64 => "Float64",
            Self::I64 => "Int64",
        }
    }
}

/// The required columns, their kinds and whether they may hold nulls.
const REQUIRED: [(&str, Kind, bool); 12] = [
    ("symbol", Kind::Str, false),
    ("ts", Kind::Timestamp, false),
    ("open", Kind::F64, false),
    ("high", Kind::F64, false),
    ("low", Kind::F64, false),
    ("close", Kind::F64, false),
    ("volume", Kind::I64, false),
    ("trade_count", Kind::I64, true),
    ("vwap", Kind::F64, true),
    ("provider", Kind::Str, false),
    ("feed", Kind::Str, true),
    ("ingested_at", Kind::Timestamp, false),
];

/// Positions of the required columns in a file's schema (looked up by name, so extra
/// columns and another order are tolerated).
struct Columns([usize; 12]);

impl Columns {
    /// Checks that every required column is present with an accepted type.
    fn find(schema: &Schema) -> Result<Self, String> {
        let mut positions = [0; 12];
        for (slot, (name, kind, _)) in positions.iter_mut().zip(REQUIRED) {
            let (index, field) = schema
                .column_with_name(name)
                .ok_or_else(|| format!("column `{name}` is missing"))?;
            if !kind.accepts(field.data_type()) {
                return Err(format!(
                    "column `{name}` has type {}, expected {}",
                    field.data_type(),
                    kind.expected()
                ));
            }
            *slot = index;
        }
        Ok(Self(positions))
    }

    fn decode_batch(
        &self,
        batch: &RecordBatch,
        symbol: Symbol,
        out: &mut Rows,
    ) -> Result<(), String> {
        let base = out.rows.len();
        let column = |i: usize| batch.column(self.0[i]);
        for (i, (name, _, nullable)) in REQUIRED.iter().enumerate() {
            let array = column(i);
            if !nullable && array.null_count() > 0 {
                let first = (0..array.len()).find(|&r| array.is_null(r)).unwrap_or(0);
                return Err(format!("row {}: column `{name}` is null", base + first));
            }
        }
        let type_error = |i: usize| format!("column `{}` cannot be decoded", REQUIRED[i].0);
        let sym = StrColumn::new(column(0)).ok_or_else(|| type_error(0))?;
        let cols = BarColumns::new(&|i| Some(column(i)))?;
        let provider = StrColumn::new(column(9)).ok_or_else(|| type_error(9))?;
        let feed = StrColumn::new(column(10)).ok_or_else(|| type_error(10))?;
        let ingested = prim::<TimestampNanosecondType>(column(11)).ok_or_else(|| type_error(11))?;

        let expected = symbol.as_str();
        let mut last_source: Option<u32> = None;
        out.rows.reserve(batch.num_rows());
        for i in 0..batch.num_rows() {
            let row = base + i;
            let row_symbol = sym.value(i);
            if row_symbol != expected {
                return Err(format!(
                    "row {row}: symbol `{row_symbol}` is not the partition's `{expected}`"
                ));
            }
            let bar = cols.bar(i, row, symbol)?;
            let row_provider = provider.value(i);
            let row_feed = if feed.is_null(i) {
                None
            } else {
                Some(feed.value(i))
            };
            // Rows of one file nearly always share one provenance: compare with the last
            // one before searching the table.
            let source = match last_source.and_then(|s| out.sources.get(s as usize).map(|x| (s, x)))
            {
                Some((s, x)) if x.provider == row_provider && x.feed.as_deref() == row_feed => s,
                _ => out.intern(row_provider, row_feed),
            };
            last_source = Some(source);
            out.rows.push(StoredRow {
                bar,
                source,
                ingested_at: ingested.value(i),
            });
        }
        Ok(())
    }
}

/// The bar columns (`ts` to `vwap`) of a decoded batch.
struct BarColumns<'a> {
    ts: &'a TimestampNanosecondArray,
    open: &'a Float64Array,
    high: &'a Float64Array,
    low: &'a Float64Array,
    close: &'a Float64Array,
    volume: &'a Int64Array,
    trade_count: &'a Int64Array,
    vwap: &'a Float64Array,
}

impl<'a> BarColumns<'a> {
    /// The columns, by their index in [`REQUIRED`] (`column` gives the batch's array).
    fn new(column: &dyn Fn(usize) -> Option<&'a ArrayRef>) -> Result<Self, String> {
        let error = |i: usize| format!("column `{}` cannot be decoded", REQUIRED[i].0);
        let get = |i: usize| column(i).ok_or_else(|| error(i));
        Ok(Self {
            ts: prim::<TimestampNanosecondType>(get(1)?).ok_or_else(|| error(1))?,
            open: prim::<Float64Type>(get(2)?).ok_or_else(|| error(2))?,
            high: prim::<Float64Type>(get(3)?).ok_or_else(|| error(3))?,
            low: prim::<Float64Type>(get(4)?).ok_or_else(|| error(4))?,
            close: prim::<Float64Type>(get(5)?).ok_or_else(|| error(5))?,
            volume: prim::<Int64Type>(get(6)?).ok_or_else(|| error(6))?,
            trade_count: prim::<Int64Type>(get(7)?).ok_or_else(|| error(7))?,
            vwap: prim::<Float64Type>(get(8)?).ok_or_else(|| error(8))?,
        })
    }

    /// Row `i` as a bar (`row` numbers it in messages); rejects values that are not a bar.
    #[inline]
    fn bar(&self, i: usize, row: usize, symbol: Symbol) -> Result<Bar, String> {
        let price = |name: &str, value: f64| {
            Price::from_f64(value).map_err(|e| format!("row {row}: {name}: {e}"))
        };
        let volume = self.volume.value(i);
        let volume =
            u64::try_from(volume).map_err(|_| format!("row {row}: volume {volume} is negative"))?;
        let trade_count = if self.trade_count.is_null(i) {
            None
        } else {
            let v = self.trade_count.value(i);
            Some(u64::try_from(v).map_err(|_| format!("row {row}: trade_count {v} is negative"))?)
        };
        let vwap = if self.vwap.is_null(i) {
            None
        } else {
            Some(price("vwap", self.vwap.value(i))?)
        };
        Ok(Bar {
            symbol,
            ts: Timestamp::from_nanos(self.ts.value(i)),
            open: price("open", self.open.value(i))?,
            high: price("high", self.high.value(i))?,
            low: price("low", self.low.value(i))?,
            close: price("close", self.close.value(i))?,
            volume,
            trade_count,
            vwap,
        })
    }
}

/// A partition file's bars as stored (file order, duplicates kept), reading only the bar
/// columns: provenance is not decoded, and the `symbol` column only when the row groups'
/// statistics do not already prove that every row is the partition's symbol. The same
/// checks as [`read_file`] apply to what is decoded. `Ok(None)` when the file does not exist.
pub(crate) fn read_bars_file(path: &Path, symbol: Symbol) -> Result<Option<Vec<Bar>>, LakeError> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(path, "cannot open the partition file", e)),
    };
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| corrupt_with(path, format!("not a readable Parquet file: {e}"), e))?;
    let columns = Columns::find(builder.schema()).map_err(|m| corrupt(path, m))?;
    let symbol_proven = symbol_proven_by_statistics(builder.metadata(), symbol);
    let roots = columns.0[usize::from(symbol_proven)..=8].to_vec();
    let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
    let total = builder.metadata().file_metadata().num_rows();
    let batch_size = usize::try_from(total).unwrap_or(0).clamp(1, MAX_READ_BATCH);
    let reader = builder
        .with_projection(mask)
        .with_batch_size(batch_size)
        .build()
        .map_err(|e| corrupt_with(path, format!("cannot read the row groups: {e}"), e))?;
    let mut bars = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
    for batch in reader {
        let batch =
            batch.map_err(|e| corrupt_with(path, format!("cannot decode the data: {e}"), e))?;
        decode_bars_batch(&batch, symbol, !symbol_proven, &mut bars)
            .map_err(|m| corrupt(path, m))?;
    }
    Ok(Some(bars))
}

/// Whether every row group's statistics say the `symbol` column holds only `symbol` (exact
/// min and max equal to it, no nulls). Files without statistics are decoded instead.
fn symbol_proven_by_statistics(
    metadata: &parquet::file::metadata::ParquetMetaData,
    symbol: Symbol,
) -> bool {
    let schema = metadata.file_metadata().schema_descr();
    let Some(leaf) = (0..schema.num_columns()).find(|&i| {
        let column = schema.column(i);
        column.path().parts().len() == 1 && column.name() == "symbol"
    }) else {
        return false;
    };
    let expected = symbol.as_str().as_bytes();
    metadata.row_groups().iter().all(|rg| {
        let Some(Statistics::ByteArray(stats)) = rg.column(leaf).statistics() else {
            return false;
        };
        stats.null_count_opt() == Some(0)
            && stats.min_is_exact()
            && stats.max_is_exact()
            && stats.min_opt().is_some_and(|v| v.data() == expected)
            && stats.max_opt().is_some_and(|v| v.data() == expected)
    })
}

/// Decodes a projected batch (bar columns, and `symbol` when `check_symbol`) into `out`.
fn decode_bars_batch(
    batch: &RecordBatch,
    symbol: Symbol,
    check_symbol: bool,
    out: &mut Vec<Bar>,
) -> Result<(), String> {
    let base = out.len();
    let schema = batch.schema();
    let column = |i: usize| -> Option<&ArrayRef> {
        let (index, _) = schema.column_with_name(REQUIRED[i].0)?;
        Some(batch.column(index))
    };
    for (i, (name, _, nullable)) in REQUIRED.iter().enumerate().take(9) {
        if i == 0 && !check_symbol {
            continue;
        }
        let array = column(i).ok_or_else(|| format!("column `{name}` is missing"))?;
        if !nullable && array.null_count() > 0 {
            let first = (0..array.len()).find(|&r| array.is_null(r)).unwrap_or(0);
            return Err(format!("row {}: column `{name}` is null", base + first));
        }
    }
    let cols = BarColumns::new(&column)?;
    let sym = if check_symbol {
        Some(
            column(0)
                .and_then(StrColumn::new)
                .ok_or_else(|| "column `symbol` cannot be decoded".to_owned())?,
        )
    } else {
        None
    };
    let expected = symbol.as_str();
    out.reserve(batch.num_rows());
    for i in 0..batch.num_rows() {
        let row = base + i;
        if let Some(sym) = &sym {
            let row_symbol = sym.value(i);
            if row_symbol != expected {
                return Err(format!(
                    "row {row}: symbol `{row_symbol}` is not the partition's `{expected}`"
                ));
            }
        }
        out.push(cols.bar(i, row, symbol)?);
    }
    Ok(())
}

fn prim<T: arrow_array::ArrowPrimitiveType>(array: &ArrayRef) -> Option<&PrimitiveArray<T>> {
    array.as_primitive_opt::<T>()
}

/// A string column of any of Arrow's string layouts.
enum StrColumn<'a> {
    Utf8(&'a StringArray),
    Large(&'a LargeStringArray),
    View(&'a StringViewArray),
}

impl<'a> StrColumn<'a> {
    fn new(array: &'a ArrayRef) -> Option<Self> {
        if let Some(a) = array.as_string_opt::<i32>() {
            return Some(Self::Utf8(a));
        }
        if let Some(a) = array.as_string_opt::<i64>() {
            return Some(Self::Large(a));
        }
        array.as_string_view_opt().map(Self::View)
    }

    fn value(&self, i: usize) -> &'a str {
        match self {
            Self::Utf8(a) => a.value(i),
            Self::Large(a) => a.value(i),
            Self::View(a) => a.value(i),
        }
    }

    fn is_null(&self, i: usize) -> bool {
        match self {
            Self::Utf8(a) => a.is_null(i),
            Self::Large(a) => a.is_null(i),
            Self::View(a) => a.is_null(i),
        }
    }
}
