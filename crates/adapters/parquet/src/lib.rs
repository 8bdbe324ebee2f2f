//! # marketpipe-parquet
//!
//! The adapter behind the `BarStore` port (`marketpipe_ports::lake`): MarketPipe's bar lake
//! as Hive-partitioned Parquet files (docs/storage.md), one file per frame, symbol and month (or
//! year), readable as they are by DuckDB, polars, pandas and Spark. It owns the write
//! protocol that makes ingestion crash-safe and idempotent: an advisory lock per partition
//! across threads and processes, a merge-upsert of the new bars into the stored ones, and a
//! temporary file that is fsynced and renamed over the old one. Among MarketPipe's crates it
//! depends only on `marketpipe-ports` and `marketpipe-domain`; the app wires it in, and the
//! contexts see only the port.
//!
//! Layout under the lake root (`<data_dir>/lake`), as defined in `marketpipe_ports::layout`:
//! `frame=<tf>/symbol=<SYM>/year=<YYYY>/month=<MM>/part-0.parquet` for monthly frames (up to
//! 30m) and `frame=<tf>/symbol=<SYM>/year=<YYYY>/part-0.parquet` for yearly ones (1h and
//! up). Beside each file live its lock file `.part-0.parquet.lock` and, during a write, a
//! temporary `.part-0.parquet.tmp-<pid>-<n>`; both start with a dot and do not end in
//! `.parquet`, so `*.parquet` globs never see them.
//!
//! ```no_run
//! use marketpipe_parquet::{LakeOptions, ParquetLake};
//!
//! let lake = ParquetLake::new("/var/lib/marketpipe/lake", LakeOptions::default());
//! assert!(lake.root().ends_with("lake"));
//! ```

mod codec;
mod error;
mod layout;
mod merge;
mod options;
mod scan;
mod write;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_schema::SchemaRef;
use async_trait::async_trait;
use futures::StreamExt;
use marketpipe_domain::{Bar, Symbol, TimeRange, Timeframe, Timestamp};
use marketpipe_ports::error::LakeError;
use marketpipe_ports::lake::{
    BarBatchStream, BarQuery, BarSource, BarStore, IntegrityDepth, IntegrityProblem,
    IntegrityReport, OrphanFile, OrphanKind, PartitionDigest, PartitionInfo, PartitionKey,
    PruneOutcome, SourcedBars, StoredFormat, WriteMeta, WriteOutcome,
};
use parquet::basic::Encoding;
use parquet::file::metadata::SortingColumn;
use parquet::file::properties::{EnabledStatistics, WriterProperties};

pub use options::{
    ColumnEncodings, LakeCompression, LakeOptions, ParseLakeCompressionError, PriceEncoding,
};

use crate::codec::{
    content_hash, lake_schema, read_bars_file, read_file, read_format_version, sort_dedup_last,
};
use crate::error::worker_failure;
use crate::layout::{partition_bounds, partition_file, stored_file};
use crate::scan::Found;
use crate::write::Purpose;

/// How many partition files are decoded at once by reads and the integrity check.
const READ_AHEAD: usize = 2;

/// The Parquet bar lake: the [`BarStore`] implementation.
///
/// Cheap to clone (the state is shared). All file work runs on Tokio's blocking pool.
#[derive(Clone)]
pub struct ParquetLake {
    inner: Arc<Inner>,
}

struct Inner {
    root: PathBuf,
    options: LakeOptions,
    schema: SchemaRef,
    props: WriterProperties,
}

impl fmt::Debug for ParquetLake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ParquetLake")
            .field("root", &self.inner.root)
            .field("options", &self.inner.options)
            .finish_non_exhaustive()
    }
}

impl ParquetLake {
    /// A lake rooted at `root` (`<data_dir>/lake`). Touches no file: directories are created
    /// by the first write.
    pub fn new(root: impl Into<PathBuf>, options: LakeOptions) -> Self {
        Self {
            inner: Arc::new(Inner {
                root: root.into(),
                options,
                schema: lake_schema(),
                props: writer_properties(options),
            }),
        }
    }

    /// The lake root.
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// The options files are written with.
    pub fn options(&self) -> LakeOptions {
        self.inner.options
    }

    /// Where a partition's data file is written:
    /// `<root>/frame=<tf>/symbol=<SYM>/year=<YYYY>[/month=<M>]/part-0.parquet`.
    pub fn partition_path(&self, key: &PartitionKey) -> PathBuf {
        partition_file(&self.inner.root, key)
    }

    /// The write context of the protocol.
    fn write_context(inner: &Inner) -> write::WriteContext<'_> {
        write::WriteContext {
            root: &inner.root,
            schema: &inner.schema,
            props: &inner.props,
        }
    }
}

/// The writer properties of `options`: dictionary encoding where values repeat (strings,
/// the ingestion instant), delta encoding for the minute-spaced `ts`, the measured price and
/// count encodings ([`ColumnEncodings`]), row-group and page statistics everywhere, and the
/// sort order (`ts`, column 0) recorded for readers.
fn writer_properties(options: LakeOptions) -> WriterProperties {
    let encodings = options.encodings;
    let mut builder = WriterProperties::builder()
        .set_compression(options.compression.to_parquet(encodings.zstd_level))
        .set_max_row_group_row_count(Some(options.max_row_group_size.max(1)))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_dictionary_enabled(false)
        .set_column_encoding("ts".into(), Encoding::DELTA_BINARY_PACKED)
        .set_sorting_columns(Some(vec![SortingColumn {
            column_idx: 0,
            descending: false,
            nulls_first: false,
        }]));
    for column in ["provider", "feed", "origin", "ingested_at"] {
        builder = builder.set_column_dictionary_enabled(column.into(), true);
    }
    let price_columns = [
        (
            ["open", "high", "low", "close"].as_slice(),
            encodings.prices,
        ),
        (["vwap"].as_slice(), encodings.vwap),
    ];
    for (columns, encoding) in price_columns {
        for column in columns {
            builder = match encoding {
                PriceEncoding::Plain => builder,
                PriceEncoding::ByteStreamSplit => {
                    builder.set_column_encoding((*column).into(), Encoding::BYTE_STREAM_SPLIT)
                }
                PriceEncoding::Dictionary => {
                    builder.set_column_dictionary_enabled((*column).into(), true)
                }
            };
        }
    }
    if encodings.delta_counts {
        for column in ["volume", "trade_count"] {
            builder = builder.set_column_encoding(column.into(), Encoding::DELTA_BINARY_PACKED);
        }
    }
    builder.build()
}

/// Runs blocking lake work on Tokio's blocking pool.
async fn blocking<T, F>(context: PathBuf, work: F) -> Result<T, LakeError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, LakeError> + Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| worker_failure(&context, &e))?
}

/// A partition's bars, sorted by `ts` with unique `ts`; empty when the file does not exist.
fn read_partition_bars(path: &Path, symbol: Symbol) -> Result<Vec<Bar>, LakeError> {
    let Some(mut bars) = read_bars_file(path, symbol)? else {
        return Ok(Vec::new());
    };
    sort_dedup_last(&mut bars, |b| b.ts.nanos());
    Ok(bars)
}

/// Keeps the bars of `range` (`bars` sorted by `ts`).
fn retain_range(bars: &mut Vec<Bar>, range: Option<TimeRange>) {
    if let Some(range) = range {
        let end = bars.partition_point(|b| b.ts < range.end());
        bars.truncate(end);
        let start = bars.partition_point(|b| b.ts < range.start());
        bars.drain(..start);
    }
}

/// Whether any instant of the partition lies in `range`.
fn overlaps(key: &PartitionKey, range: Option<TimeRange>) -> bool {
    let Some(range) = range else {
        return true;
    };
    partition_bounds(key).is_some_and(|(start, end)| range.start() < end && start < range.end())
}

#[async_trait]
impl BarStore for ParquetLake {
    async fn write_partition(
        &self,
        key: &PartitionKey,
        bars: &[Bar],
        meta: &WriteMeta,
    ) -> Result<WriteOutcome, LakeError> {
        let inner = Arc::clone(&self.inner);
        let (key, bars, meta) = (*key, bars.to_vec(), meta.clone());
        blocking(self.partition_path(&key), move || {
            let ctx = Self::write_context(&inner);
            write::write_partition(&ctx, &key, bars, Purpose::Merge(&meta))?.ok_or_else(|| {
                LakeError::InvalidBars {
                    partition: key.to_string(),
                    message: "the merge produced no outcome".to_owned(),
                }
            })
        })
        .await
    }

    async fn read_partition(&self, key: &PartitionKey) -> Result<Vec<Bar>, LakeError> {
        let path = stored_file(&self.inner.root, key);
        let symbol = key.symbol;
        blocking(path.clone(), move || read_partition_bars(&path, symbol)).await
    }

    async fn read_partition_as_stored(&self, key: &PartitionKey) -> Result<Vec<Bar>, LakeError> {
        let path = stored_file(&self.inner.root, key);
        let symbol = key.symbol;
        blocking(path.clone(), move || {
            Ok(read_bars_file(&path, symbol)?.unwrap_or_default())
        })
        .await
    }

    async fn read_partition_sourced(&self, key: &PartitionKey) -> Result<SourcedBars, LakeError> {
        let path = stored_file(&self.inner.root, key);
        let symbol = key.symbol;
        blocking(path.clone(), move || {
            let Some(mut rows) = read_file(&path, symbol)? else {
                return Ok(SourcedBars::default());
            };
            sort_dedup_last(&mut rows.rows, |r| r.bar.ts.nanos());
            Ok(SourcedBars {
                bars: rows.rows.iter().map(|r| r.bar).collect(),
                source_of: rows.rows.iter().map(|r| r.source).collect(),
                sources: rows
                    .sources
                    .into_iter()
                    .map(|s| BarSource {
                        provider: s.provider,
                        feed: s.feed,
                    })
                    .collect(),
            })
        })
        .await
    }

    async fn read_bars(&self, query: &BarQuery) -> Result<BarBatchStream, LakeError> {
        let partitions = self.list_partitions(query.frame, &query.symbols).await?;
        let range = query.range;
        let root = self.inner.root.clone();
        let stream = futures::stream::iter(
            partitions
                .into_iter()
                .filter(move |p| overlaps(&p.key, range)),
        )
        .map(move |info| {
            let path = root.join(&info.path);
            let symbol = info.key.symbol;
            blocking(path.clone(), move || {
                let mut bars = read_partition_bars(&path, symbol)?;
                retain_range(&mut bars, range);
                Ok(bars)
            })
        })
        .buffered(READ_AHEAD)
        .filter(|batch| {
            let keep = !matches!(batch, Ok(bars) if bars.is_empty());
            futures::future::ready(keep)
        });
        Ok(stream.boxed())
    }

    async fn list_partitions(
        &self,
        frame: Timeframe,
        symbols: &[Symbol],
    ) -> Result<Vec<PartitionInfo>, LakeError> {
        let root = self.inner.root.clone();
        let symbols = symbols.to_vec();
        blocking(root.clone(), move || {
            scan::list_partitions(&root, frame, &symbols)
        })
        .await
    }

    async fn check_integrity(
        &self,
        frame: Option<Timeframe>,
        depth: IntegrityDepth,
    ) -> Result<IntegrityReport, LakeError> {
        let root = self.inner.root.clone();
        let found = {
            let root = root.clone();
            blocking(root.clone(), move || scan::inventory(&root, frame)).await?
        };
        let mut report = IntegrityReport::default();
        let mut checks = Vec::new();
        for item in found {
            match item {
                Found::Partition(key, path) => {
                    report.files_checked += 1;
                    checks.push((key, path));
                }
                Found::Misplaced(frame, path) => {
                    report.files_checked += 1;
                    report.problems.push(IntegrityProblem {
                        path: path.display().to_string(),
                        problem: scan::misplaced_problem(frame),
                    });
                }
                Found::StaleTemp(path) => report.problems.push(IntegrityProblem {
                    path: path.display().to_string(),
                    problem: "a leftover temporary file of an interrupted write (the next write \
                              of the partition deletes it; `mp jobs doctor --fix` removes it now)"
                        .to_owned(),
                }),
                Found::OrphanLock(path) => report.problems.push(IntegrityProblem {
                    path: path.display().to_string(),
                    problem: "a lock file beside no data file (`mp jobs doctor --fix` removes it)"
                        .to_owned(),
                }),
            }
        }
        let results: Vec<Result<Option<IntegrityProblem>, LakeError>> =
            futures::stream::iter(checks)
                .map(|(key, path)| {
                    blocking(path.clone(), move || {
                        let problem = match depth {
                            IntegrityDepth::Footer => scan::check_partition_footer(&key, &path),
                            IntegrityDepth::Full => scan::check_partition_file(&key, &path),
                        };
                        Ok(problem.map(|problem| IntegrityProblem {
                            path: path.display().to_string(),
                            problem,
                        }))
                    })
                })
                .buffer_unordered(READ_AHEAD)
                .collect()
                .await;
        for result in results {
            if let Some(problem) = result? {
                report.problems.push(problem);
            }
        }
        report
            .problems
            .extend(scan::legacy_duplicates(&root, frame)?);
        report.problems.sort_by(|a, b| a.path.cmp(&b.path));
        tracing::debug!(
            root = %root.display(),
            files = report.files_checked,
            problems = report.problems.len(),
            "lake integrity checked"
        );
        Ok(report)
    }

    async fn list_formats(&self, frame: Option<Timeframe>) -> Result<Vec<StoredFormat>, LakeError> {
        let root = self.inner.root.clone();
        blocking(root.clone(), move || {
            let mut out = Vec::new();
            for item in scan::inventory(&root, frame)? {
                let Found::Partition(key, path) = item else {
                    continue;
                };
                // A file removed since the walk (a concurrent upgrade) is no longer stored.
                let Some(version) = read_format_version(&path)? else {
                    continue;
                };
                out.push(StoredFormat {
                    key,
                    path: scan::relative_to(&root, &path),
                    version,
                });
            }
            out.sort_by(|a, b| (a.key, &a.path).cmp(&(b.key, &b.path)));
            Ok(out)
        })
        .await
    }

    async fn mark_format_current(&self) -> Result<(), LakeError> {
        let root = self.inner.root.clone();
        blocking(root.clone(), move || write::write_format_marker(&root)).await
    }

    async fn clean_orphans(&self, remove: bool) -> Result<Vec<OrphanFile>, LakeError> {
        let root = self.inner.root.clone();
        blocking(root.clone(), move || {
            let mut found: Vec<(PathBuf, OrphanKind)> = scan::inventory(&root, None)?
                .into_iter()
                .filter_map(|item| match item {
                    Found::StaleTemp(path) => Some((path, OrphanKind::Temp)),
                    Found::OrphanLock(path) => Some((path, OrphanKind::Lock)),
                    Found::Partition(..) | Found::Misplaced(..) => None,
                })
                .collect();
            // Temporary files first: removing one takes its partition's lock, which must
            // not bring back a lock file removed before it.
            found.sort_by_key(|(path, kind)| (*kind, path.clone()));
            let mut out = Vec::new();
            for (path, kind) in found {
                if remove && !write::remove_orphan(&path, kind)? {
                    // A writer took the partition since the walk: no longer an orphan.
                    continue;
                }
                out.push(OrphanFile {
                    path: scan::relative_to(&root, &path),
                    kind,
                });
            }
            out.sort();
            Ok(out)
        })
        .await
    }

    async fn partition_digest(
        &self,
        key: &PartitionKey,
    ) -> Result<Option<PartitionDigest>, LakeError> {
        let path = stored_file(&self.inner.root, key);
        let symbol = key.symbol;
        blocking(path.clone(), move || {
            let Some(mut rows) = read_file(&path, symbol)? else {
                return Ok(None);
            };
            let sorted_unique = rows.rows.windows(2).all(|w| w[0].bar.ts < w[1].bar.ts);
            // The hash of the rows as the write protocol keeps them (sorted, unique by ts).
            sort_dedup_last(&mut rows.rows, |r| r.bar.ts.nanos());
            Ok(Some(PartitionDigest {
                rows: rows.rows.len() as u64,
                content_hash: content_hash(&rows),
                sorted_unique,
            }))
        })
        .await
    }

    async fn prune_partition(
        &self,
        key: &PartitionKey,
        cut: Timestamp,
        dry_run: bool,
    ) -> Result<PruneOutcome, LakeError> {
        let inner = Arc::clone(&self.inner);
        let key = *key;
        blocking(self.partition_path(&key), move || {
            let ctx = Self::write_context(&inner);
            write::prune_partition(&ctx, &key, cut, dry_run)
        })
        .await
    }

    async fn upgrade_partition(
        &self,
        key: &PartitionKey,
    ) -> Result<Option<WriteOutcome>, LakeError> {
        let inner = Arc::clone(&self.inner);
        let key = *key;
        blocking(self.partition_path(&key), move || {
            let ctx = Self::write_context(&inner);
            write::write_partition(&ctx, &key, Vec::new(), Purpose::Upgrade)
        })
        .await
    }
}

#[cfg(test)]
mod tests;
