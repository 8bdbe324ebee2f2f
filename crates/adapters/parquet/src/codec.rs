//! Bars <-> Arrow record batches, and the Parquet file reader of both lake formats.
//!
//! Written files are lake format 2 ([`LAKE_FORMAT_VERSION`], docs/storage.md): no `symbol`
//! column (the `symbol=` directory and the file's key-value metadata carry it), `ts` and
//! `ingested_at` as TIMESTAMP(MICROS, UTC), and an `origin` column. Format-1 files (a
//! `symbol` column, nanosecond timestamps, no `origin`) are read as well, until upgraded.
//!
//! A partition's rows are held as [`Rows`]: the bars plus, per row, an index into a small
//! table of distinct `(provider, feed, origin)` triples and the `ingested_at` instant, so
//! that neither decoding nor merging allocates per row.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow_array::builder::{Float64Builder, Int64Builder, StringBuilder};
use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float64Type, Int64Type, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType,
};
use arrow_array::{
    Array, ArrayRef, Float64Array, Int64Array, LargeStringArray, PrimitiveArray, RecordBatch,
    StringArray, StringViewArray, TimestampMicrosecondArray,
};
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef, TimeUnit};
use marketpipe_domain::{Bar, Price, Symbol, Timestamp};
use marketpipe_ports::error::LakeError;
use marketpipe_ports::lake::{BarOrigin, BarSource, LAKE_FORMAT_VERSION, PartitionKey};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::metadata::{KeyValue, ParquetMetaData};
use parquet::file::statistics::Statistics;
use xxhash_rust::xxh3::Xxh3Default;

use crate::error::{corrupt, corrupt_with, io_error};

/// The time zone written on both timestamp columns.
const UTC: &str = "UTC";

/// Largest record batch decoded at once.
const MAX_READ_BATCH: usize = 1 << 20;

/// Key-value metadata keys of written files (all `marketpipe.`-prefixed).
pub(crate) mod meta_keys {
    /// The lake format version (`2`); absent in format-1 files.
    pub(crate) const FORMAT_VERSION: &str = "marketpipe.format_version";
    /// The frame (`1m`).
    pub(crate) const FRAME: &str = "marketpipe.frame";
    /// The symbol (`BRK.B`): the one column a file of the Hive layout does not hold.
    pub(crate) const SYMBOL: &str = "marketpipe.symbol";
    /// The partition's year.
    pub(crate) const YEAR: &str = "marketpipe.year";
    /// The partition's month (monthly frames only).
    pub(crate) const MONTH: &str = "marketpipe.month";
}

/// The key-value metadata that makes one written file self-describing.
pub(crate) fn file_metadata(key: &PartitionKey) -> Vec<KeyValue> {
    let mut kv = vec![
        KeyValue::new(
            meta_keys::FORMAT_VERSION.to_owned(),
            LAKE_FORMAT_VERSION.to_string(),
        ),
        KeyValue::new(meta_keys::FRAME.to_owned(), key.frame.as_str().to_owned()),
        KeyValue::new(meta_keys::SYMBOL.to_owned(), key.symbol.as_str().to_owned()),
        KeyValue::new(meta_keys::YEAR.to_owned(), key.year.to_string()),
    ];
    if let Some(month) = key.month {
        kv.push(KeyValue::new(
            meta_keys::MONTH.to_owned(),
            month.to_string(),
        ));
    }
    kv
}

/// A file's key-value metadata value.
fn metadata_value<'a>(metadata: &'a ParquetMetaData, key: &str) -> Option<&'a str> {
    metadata
        .file_metadata()
        .key_value_metadata()?
        .iter()
        .find(|kv| kv.key == key)?
        .value
        .as_deref()
}

/// The lake format a file records (1 when it records none, as format 1 did not).
pub(crate) fn format_version(metadata: &ParquetMetaData) -> Result<u32, String> {
    match metadata_value(metadata, meta_keys::FORMAT_VERSION) {
        None => Ok(1),
        Some(text) => text
            .trim()
            .parse()
            .map_err(|_| format!("format version {text:?} in the file's metadata is not a number")),
    }
}

/// Refuses files this version cannot read faithfully: a newer format (rewriting it would
/// drop what it added) or metadata naming another partition's symbol.
fn check_file_metadata(metadata: &ParquetMetaData, symbol: Symbol) -> Result<u32, String> {
    let version = format_version(metadata)?;
    if version > LAKE_FORMAT_VERSION {
        return Err(format!(
            "written in lake format {version}, newer than this mp's format \
             {LAKE_FORMAT_VERSION}: upgrade mp to read it (the file is left as it is)"
        ));
    }
    if let Some(named) = metadata_value(metadata, meta_keys::SYMBOL)
        && named != symbol.as_str()
    {
        return Err(format!(
            "the file's metadata names symbol `{named}`, not the partition's `{symbol}`"
        ));
    }
    Ok(version)
}

/// The provenance of stored rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Source {
    /// Provider name.
    pub(crate) provider: String,
    /// Provider feed.
    pub(crate) feed: Option<String>,
    /// What built the rows.
    pub(crate) origin: BarOrigin,
}

/// One stored row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StoredRow {
    /// The bar.
    pub(crate) bar: Bar,
    /// Index into [`Rows::sources`].
    pub(crate) source: u32,
    /// When the row was ingested (UTC nanoseconds; whole microseconds once written).
    pub(crate) ingested_at: i64,
}

/// A partition's rows with their provenance table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[allow(clippy::struct_field_names)] // `rows.rows` reads as what it is: the rows
pub(crate) struct Rows {
    /// The rows.
    pub(crate) rows: Vec<StoredRow>,
    /// Distinct provenances.
    pub(crate) sources: Vec<Source>,
    /// The lake format of the file the rows were read from (0 when read from no file).
    pub(crate) format_version: u32,
}

impl Rows {
    /// The index of `(provider, feed, origin)` in the table, adding it when new.
    pub(crate) fn intern(&mut self, provider: &str, feed: Option<&str>, origin: BarOrigin) -> u32 {
        if let Some(i) = self.sources.iter().rposition(|s| {
            s.provider == provider && s.feed.as_deref() == feed && s.origin == origin
        }) {
            return index_u32(i);
        }
        self.sources.push(Source {
            provider: provider.to_owned(),
            feed: feed.map(str::to_owned),
            origin,
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

/// The origin format-1 files imply: they wrote `provider = aggregate` on aggregated bars.
fn legacy_origin(provider: &str) -> BarOrigin {
    if provider == BarSource::LEGACY_AGGREGATE {
        BarOrigin::Aggregated(marketpipe_domain::Timeframe::M1)
    } else {
        BarOrigin::Provider
    }
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

/// The Arrow schema of written files (lake format 2, docs/storage.md), in column order.
pub(crate) fn lake_schema() -> SchemaRef {
    let ts = || DataType::Timestamp(TimeUnit::Microsecond, Some(UTC.into()));
    Arc::new(Schema::new(vec![
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
        Field::new("origin", DataType::Utf8, false),
        Field::new("ingested_at", ts(), false),
    ]))
}

/// Nanoseconds per stored microsecond.
const NANOS_PER_MICRO: i64 = 1_000;

/// Saturating `u64 -> i64` (callers validate first, so saturation never happens).
fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// One record batch of `rows`, built column by column from the rows. Bar instants are whole
/// microseconds (the write protocol refuses others); `ingested_at` is truncated to one.
pub(crate) fn encode(rows: &Rows, schema: &SchemaRef) -> Result<RecordBatch, ArrowError> {
    let n = rows.rows.len();
    let mut ts = Vec::with_capacity(n);
    let mut open = Vec::with_capacity(n);
    let mut high = Vec::with_capacity(n);
    let mut low = Vec::with_capacity(n);
    let mut close = Vec::with_capacity(n);
    let mut volume = Vec::with_capacity(n);
    let mut trade_count = Int64Builder::with_capacity(n);
    let mut vwap = Float64Builder::with_capacity(n);
    let mut ingested_at = Vec::with_capacity(n);
    let mut source_of = Vec::with_capacity(n);
    for row in &rows.rows {
        let bar = &row.bar;
        ts.push(bar.ts.nanos().div_euclid(NANOS_PER_MICRO));
        open.push(bar.open.to_f64());
        high.push(bar.high.to_f64());
        low.push(bar.low.to_f64());
        close.push(bar.close.to_f64());
        volume.push(to_i64(bar.volume));
        trade_count.append_option(bar.trade_count.map(to_i64));
        vwap.append_option(bar.vwap.map(Price::to_f64));
        ingested_at.push(row.ingested_at.div_euclid(NANOS_PER_MICRO));
        source_of.push(row.source);
    }
    let (provider, feed, origin) = provenance_columns(rows, &source_of)?;
    let columns: Vec<ArrayRef> = vec![
        Arc::new(TimestampMicrosecondArray::from(ts).with_timezone(UTC)),
        Arc::new(Float64Array::from(open)),
        Arc::new(Float64Array::from(high)),
        Arc::new(Float64Array::from(low)),
        Arc::new(Float64Array::from(close)),
        Arc::new(Int64Array::from(volume)),
        Arc::new(trade_count.finish()),
        Arc::new(vwap.finish()),
        provider,
        feed,
        origin,
        Arc::new(TimestampMicrosecondArray::from(ingested_at).with_timezone(UTC)),
    ];
    RecordBatch::try_new(Arc::clone(schema), columns)
}

/// The `provider`, `feed` and `origin` columns, from the few distinct sources (formatted
/// once each, not per row). Plain strings in Arrow; Parquet dictionary-encodes them.
fn provenance_columns(
    rows: &Rows,
    source_of: &[u32],
) -> Result<(ArrayRef, ArrayRef, ArrayRef), ArrowError> {
    let column = |values: Vec<Option<String>>| -> Result<ArrayRef, ArrowError> {
        let len = values.iter().flatten().map(String::len).max().unwrap_or(0);
        let mut out = StringBuilder::with_capacity(source_of.len(), source_of.len() * len);
        for &s in source_of {
            let value = values.get(s as usize).ok_or_else(|| {
                ArrowError::InvalidArgumentError(format!("row source {s} out of range"))
            })?;
            out.append_option(value.as_deref());
        }
        Ok(Arc::new(out.finish()))
    };
    let provider = column(
        rows.sources
            .iter()
            .map(|s| Some(s.provider.clone()))
            .collect(),
    )?;
    let feed = column(rows.sources.iter().map(|s| s.feed.clone()).collect())?;
    let origin = column(
        rows.sources
            .iter()
            .map(|s| Some(s.origin.to_string()))
            .collect(),
    )?;
    Ok((provider, feed, origin))
}

/// Hex xxh3-128 of the rows' content: ts, raw prices, volume, trade count, VWAP, provider
/// and feed (and the symbol), never `ingested_at`, `origin` or the file's format, so that an
/// upgrade from format 1 keeps every partition's hash. Fields are length-prefixed or tagged
/// so that different content cannot produce the same byte stream.
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

/// Opens a partition file; `Ok(None)` when it does not exist.
fn open(path: &Path) -> Result<Option<File>, LakeError> {
    match File::open(path) {
        Ok(file) => Ok(Some(file)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_error(path, "cannot open the partition file", e)),
    }
}

/// The lake format a partition file is written in; `Ok(None)` when it does not exist.
pub(crate) fn read_format_version(path: &Path) -> Result<Option<u32>, LakeError> {
    let Some(file) = open(path)? else {
        return Ok(None);
    };
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| corrupt_with(path, format!("not a readable Parquet file: {e}"), e))?;
    format_version(builder.metadata())
        .map(Some)
        .map_err(|m| corrupt(path, m))
}

/// Reads only a partition file's footer: it must be a readable Parquet file whose metadata
/// fits `symbol` and a format this build knows. `Ok(None)` when the file does not exist.
pub(crate) fn check_footer(path: &Path, symbol: Symbol) -> Result<Option<u32>, LakeError> {
    let Some(file) = open(path)? else {
        return Ok(None);
    };
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| corrupt_with(path, format!("not a readable Parquet file: {e}"), e))?;
    check_file_metadata(builder.metadata(), symbol)
        .map(Some)
        .map_err(|m| corrupt(path, m))
}

/// Reads a partition file (either format) whose rows must all be of `symbol`, in file
/// order. `Ok(None)` when the file does not exist; `Corrupt` when it cannot be decoded or
/// holds values that are not bars (wrong column types, nulls in required columns, NaN or
/// negative prices, negative volumes, another symbol, a newer format).
pub(crate) fn read_file(path: &Path, symbol: Symbol) -> Result<Option<Rows>, LakeError> {
    let Some(file) = open(path)? else {
        return Ok(None);
    };
    decode_file(path, file, symbol).map(Some)
}

fn decode_file(path: &Path, file: File, symbol: Symbol) -> Result<Rows, LakeError> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| corrupt_with(path, format!("not a readable Parquet file: {e}"), e))?;
    let version = check_file_metadata(builder.metadata(), symbol).map_err(|m| corrupt(path, m))?;
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
        format_version: version,
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
            // Format 1 wrote nanoseconds, format 2 microseconds; files written by other
            // tools may use milliseconds or spell UTC as "+00:00" (the Parquet
            // isAdjustedToUTC flag without an embedded Arrow schema).
            Self::Timestamp => matches!(
                data_type,
                DataType::Timestamp(
                    TimeUnit::Nanosecond | TimeUnit::Microsecond | TimeUnit::Millisecond,
                    Some(tz)
                ) if matches!(tz.as_ref(), "UTC" | "+00:00" | "Etc/UTC" | "Z")
            ),
            Self::F64 => data_type == &DataType::Float64,
            Self::I64 => data_type == &DataType::Int64,
        }
    }

    const fn expected(self) -> &'static str {
        match self {
            Self::Str => "Utf8",
            Self::Timestamp => "Timestamp(Microsecond, \"UTC\")",
            Self::F64 => "Float64",
            Self::I64 => "Int64",
        }
    }
}

/// Column slots, in this order: the bar columns (`ts` … `vwap`, indexes 0–7), then the
/// provenance (`provider`, `feed`, `ingested_at`), then the optional ones.
const TS: usize = 0;
const VWAP: usize = 7;
const PROVIDER: usize = 8;
const FEED: usize = 9;
const INGESTED_AT: usize = 10;

/// The required columns, their kinds and whether they may hold nulls.
const REQUIRED: [(&str, Kind, bool); 11] = [
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

/// Positions of the columns in a file's schema (looked up by name, so extra columns and
/// another order are tolerated): the required ones, and `symbol` (format 1, and foreign
/// files) and `origin` (format 2) when present.
struct Columns {
    required: [usize; 11],
    symbol: Option<usize>,
    origin: Option<usize>,
}

impl Columns {
    /// Checks that every required column is present with an accepted type, and the optional
    /// ones, when present, too.
    fn find(schema: &Schema) -> Result<Self, String> {
        let mut required = [0; 11];
        for (slot, (name, kind, _)) in required.iter_mut().zip(REQUIRED) {
            *slot = find_column(schema, name, kind)?
                .ok_or_else(|| format!("column `{name}` is missing"))?;
        }
        Ok(Self {
            required,
            symbol: find_column(schema, "symbol", Kind::Str)?,
            origin: find_column(schema, "origin", Kind::Str)?,
        })
    }

    fn decode_batch(
        &self,
        batch: &RecordBatch,
        symbol: Symbol,
        out: &mut Rows,
    ) -> Result<(), String> {
        let base = out.rows.len();
        let column = |i: usize| batch.column(self.required[i]);
        for (i, (name, _, nullable)) in REQUIRED.iter().enumerate() {
            check_nulls(column(i), name, *nullable, base)?;
        }
        let optional =
            |index: Option<usize>, name: &str| -> Result<Option<StrColumn<'_>>, String> {
                let Some(index) = index else {
                    return Ok(None);
                };
                let array = batch.column(index);
                check_nulls(array, name, false, base)?;
                StrColumn::new(array)
                    .map(Some)
                    .ok_or_else(|| format!("column `{name}` cannot be decoded"))
            };
        let sym = optional(self.symbol, "symbol")?;
        let origin = optional(self.origin, "origin")?;
        let type_error = |i: usize| format!("column `{}` cannot be decoded", REQUIRED[i].0);
        let cols = BarColumns::new(&|i| Some(column(i)))?;
        let provider = StrColumn::new(column(PROVIDER)).ok_or_else(|| type_error(PROVIDER))?;
        let feed = StrColumn::new(column(FEED)).ok_or_else(|| type_error(FEED))?;
        let ingested = TsColumn::new(column(INGESTED_AT)).ok_or_else(|| type_error(INGESTED_AT))?;

        let expected = symbol.as_str();
        let mut last_source: Option<u32> = None;
        out.rows.reserve(batch.num_rows());
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
            let bar = cols.bar(i, row, symbol)?;
            let row_provider = provider.value(i);
            let row_feed = if feed.is_null(i) {
                None
            } else {
                Some(feed.value(i))
            };
            let row_origin = match &origin {
                Some(column) => {
                    let text = column.value(i);
                    BarOrigin::parse(text)
                        .ok_or_else(|| format!("row {row}: origin `{text}` is not known"))?
                }
                None => legacy_origin(row_provider),
            };
            // Rows of one file nearly always share one provenance: compare with the last
            // one before searching the table.
            let source = match last_source.and_then(|s| out.sources.get(s as usize).map(|x| (s, x)))
            {
                Some((s, x))
                    if x.provider == row_provider
                        && x.feed.as_deref() == row_feed
                        && x.origin == row_origin =>
                {
                    s
                }
                _ => out.intern(row_provider, row_feed, row_origin),
            };
            last_source = Some(source);
            out.rows.push(StoredRow {
                bar,
                source,
                ingested_at: ingested
                    .nanos(i)
                    .ok_or_else(|| format!("row {row}: ingested_at is out of range"))?,
            });
        }
        Ok(())
    }
}

/// The position of a column with an accepted type; `None` when absent.
fn find_column(schema: &Schema, name: &str, kind: Kind) -> Result<Option<usize>, String> {
    let Some((index, field)) = schema.column_with_name(name) else {
        return Ok(None);
    };
    if !kind.accepts(field.data_type()) {
        return Err(format!(
            "column `{name}` has type {}, expected {}",
            field.data_type(),
            kind.expected()
        ));
    }
    Ok(Some(index))
}

/// Refuses nulls in a column that may not hold them (`base` numbers the rows).
fn check_nulls(array: &ArrayRef, name: &str, nullable: bool, base: usize) -> Result<(), String> {
    if !nullable && array.null_count() > 0 {
        let first = (0..array.len()).find(|&r| array.is_null(r)).unwrap_or(0);
        return Err(format!("row {}: column `{name}` is null", base + first));
    }
    Ok(())
}

/// A timestamp column in any unit the reader accepts, read as nanoseconds.
enum TsColumn<'a> {
    Nanos(&'a PrimitiveArray<TimestampNanosecondType>),
    Micros(&'a PrimitiveArray<TimestampMicrosecondType>),
    Millis(&'a PrimitiveArray<TimestampMillisecondType>),
}

impl<'a> TsColumn<'a> {
    fn new(array: &'a ArrayRef) -> Option<Self> {
        if let Some(a) = prim::<TimestampMicrosecondType>(array) {
            return Some(Self::Micros(a));
        }
        if let Some(a) = prim::<TimestampNanosecondType>(array) {
            return Some(Self::Nanos(a));
        }
        prim::<TimestampMillisecondType>(array).map(Self::Millis)
    }

    /// Row `i` in nanoseconds since the epoch; `None` when it does not fit.
    #[inline]
    fn nanos(&self, i: usize) -> Option<i64> {
        match self {
            Self::Nanos(a) => Some(a.value(i)),
            Self::Micros(a) => a.value(i).checked_mul(NANOS_PER_MICRO),
            Self::Millis(a) => a.value(i).checked_mul(1_000_000),
        }
    }
}

/// The bar columns (`ts` to `vwap`) of a decoded batch.
struct BarColumns<'a> {
    ts: TsColumn<'a>,
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
            ts: TsColumn::new(get(TS)?).ok_or_else(|| error(TS))?,
            open: prim::<Float64Type>(get(1)?).ok_or_else(|| error(1))?,
            high: prim::<Float64Type>(get(2)?).ok_or_else(|| error(2))?,
            low: prim::<Float64Type>(get(3)?).ok_or_else(|| error(3))?,
            close: prim::<Float64Type>(get(4)?).ok_or_else(|| error(4))?,
            volume: prim::<Int64Type>(get(5)?).ok_or_else(|| error(5))?,
            trade_count: prim::<Int64Type>(get(6)?).ok_or_else(|| error(6))?,
            vwap: prim::<Float64Type>(get(VWAP)?).ok_or_else(|| error(VWAP))?,
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
        let ts = self
            .ts
            .nanos(i)
            .ok_or_else(|| format!("row {row}: ts is out of range"))?;
        Ok(Bar {
            symbol,
            ts: Timestamp::from_nanos(ts),
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
/// columns: provenance is not decoded, and a `symbol` column (format 1) only when the row
/// groups' statistics do not already prove that every row is the partition's symbol. The
/// same checks as [`read_file`] apply to what is decoded. `Ok(None)` when the file does not
/// exist.
pub(crate) fn read_bars_file(path: &Path, symbol: Symbol) -> Result<Option<Vec<Bar>>, LakeError> {
    let Some(file) = open(path)? else {
        return Ok(None);
    };
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| corrupt_with(path, format!("not a readable Parquet file: {e}"), e))?;
    check_file_metadata(builder.metadata(), symbol).map_err(|m| corrupt(path, m))?;
    let columns = Columns::find(builder.schema()).map_err(|m| corrupt(path, m))?;
    let check_symbol =
        columns.symbol.is_some() && !symbol_proven_by_statistics(builder.metadata(), symbol);
    let mut roots = columns.required[TS..=VWAP].to_vec();
    if check_symbol {
        roots.extend(columns.symbol);
    }
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
        decode_bars_batch(&batch, symbol, check_symbol, &mut bars).map_err(|m| corrupt(path, m))?;
    }
    Ok(Some(bars))
}

/// Whether every row group's statistics say the `symbol` column holds only `symbol` (exact
/// min and max equal to it, no nulls). Files without statistics are decoded instead.
fn symbol_proven_by_statistics(metadata: &ParquetMetaData, symbol: Symbol) -> bool {
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
    let by_name = |name: &str| -> Option<&ArrayRef> {
        let (index, _) = schema.column_with_name(name)?;
        Some(batch.column(index))
    };
    let column = |i: usize| by_name(REQUIRED[i].0);
    for (i, (name, _, nullable)) in REQUIRED.iter().enumerate().take(VWAP + 1) {
        let array = column(i).ok_or_else(|| format!("column `{name}` is missing"))?;
        check_nulls(array, name, *nullable, base)?;
    }
    let cols = BarColumns::new(&column)?;
    let sym = if check_symbol {
        let array = by_name("symbol").ok_or_else(|| "column `symbol` is missing".to_owned())?;
        check_nulls(array, "symbol", false, base)?;
        Some(StrColumn::new(array).ok_or_else(|| "column `symbol` cannot be decoded".to_owned())?)
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
