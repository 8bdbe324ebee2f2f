//! Lake options: the compression codec and the row-group size of written files.

use std::fmt;
use std::str::FromStr;

use parquet::basic::{BrotliLevel, Compression, GzipLevel, ZstdLevel};
use thiserror::Error;

/// The codec of written Parquet files. Every codec here is readable by DuckDB, polars,
/// pandas (pyarrow) and Spark; `Lz4` writes the standard `LZ4_RAW` codec, not the deprecated
/// Hadoop-framed `LZ4`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum LakeCompression {
    /// Zstandard (level from [`ColumnEncodings::zstd_level`]): the best size for the speed.
    /// The default.
    #[default]
    Zstd,
    /// Snappy.
    Snappy,
    /// LZ4 (raw block format).
    Lz4,
    /// Gzip at level 6.
    Gzip,
    /// Brotli at level 1.
    Brotli,
    /// No compression.
    None,
}

impl LakeCompression {
    /// Every codec, in the order of [`LakeCompression::VALID_NAMES`].
    pub const ALL: [Self; 6] = [
        Self::Zstd,
        Self::Snappy,
        Self::Lz4,
        Self::Gzip,
        Self::Brotli,
        Self::None,
    ];

    /// The accepted names, as listed in parse errors.
    pub const VALID_NAMES: &'static str = "zstd, snappy, lz4, gzip, brotli, none";

    /// The lower-case name (`"zstd"`), as accepted by [`str::parse`].
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Zstd => "zstd",
            Self::Snappy => "snappy",
            Self::Lz4 => "lz4",
            Self::Gzip => "gzip",
            Self::Brotli => "brotli",
            Self::None => "none",
        }
    }

    /// The Parquet codec, zstd at `zstd_level` (its default, 1, when out of range), the
    /// others at their default level.
    pub(crate) fn to_parquet(self, zstd_level: i32) -> Compression {
        match self {
            Self::Zstd => Compression::ZSTD(ZstdLevel::try_new(zstd_level).unwrap_or_default()),
            Self::Snappy => Compression::SNAPPY,
            Self::Lz4 => Compression::LZ4_RAW,
            Self::Gzip => Compression::GZIP(GzipLevel::default()),
            Self::Brotli => Compression::BROTLI(BrotliLevel::default()),
            Self::None => Compression::UNCOMPRESSED,
        }
    }
}

impl fmt::Display for LakeCompression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A compression name that is not one of [`LakeCompression::VALID_NAMES`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unknown lake compression {value:?} (valid: {valid})", valid = LakeCompression::VALID_NAMES)]
pub struct ParseLakeCompressionError {
    /// The rejected text.
    pub value: String,
}

impl FromStr for LakeCompression {
    type Err = ParseLakeCompressionError;

    /// Parses a codec name, ignoring ASCII case (`"zstd"`, `"ZSTD"`).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(text.trim()))
            .ok_or_else(|| ParseLakeCompressionError {
                value: text.to_owned(),
            })
    }
}

/// How the price columns (`open`, `high`, `low`, `close`, `vwap`) are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PriceEncoding {
    /// Eight bytes a value, left to the codec.
    Plain,
    /// Parquet's `BYTE_STREAM_SPLIT`: the doubles' bytes grouped by position, so the codec
    /// sees the sign, exponent and high mantissa bytes (which repeat) together.
    ByteStreamSplit,
    /// A dictionary of the distinct values per column chunk (falls back to plain when the
    /// dictionary grows past Parquet's page limit).
    Dictionary,
}

/// Per-column encoding choices of written files. The defaults are the ones measured best in
/// docs/performance.md ("Lake format 2: bytes per bar"); every choice reads the same in
/// every reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ColumnEncodings {
    /// `open`, `high`, `low`, `close`.
    pub prices: PriceEncoding,
    /// `vwap` (not on the price grid, so it may want another encoding).
    pub vwap: PriceEncoding,
    /// `DELTA_BINARY_PACKED` for `volume` and `trade_count` (else plain).
    pub delta_counts: bool,
    /// The zstd level when the codec is zstd (1–22).
    pub zstd_level: i32,
}

impl Default for ColumnEncodings {
    fn default() -> Self {
        Self {
            prices: PriceEncoding::Dictionary,
            vwap: PriceEncoding::Plain,
            delta_counts: true,
            zstd_level: 1,
        }
    }
}

/// How the lake writes files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LakeOptions {
    /// The codec of written files.
    pub compression: LakeCompression,
    /// Rows per row group at most (a monthly 1m partition, ~8,000 rows, is one row group).
    pub max_row_group_size: usize,
    /// Per-column encodings (tuning; the defaults are measured).
    pub encodings: ColumnEncodings,
}

impl LakeOptions {
    /// The default row-group size: 128 Ki rows.
    pub const DEFAULT_MAX_ROW_GROUP_SIZE: usize = 128 * 1024;
}

impl Default for LakeOptions {
    fn default() -> Self {
        Self {
            compression: LakeCompression::default(),
            max_row_group_size: Self::DEFAULT_MAX_ROW_GROUP_SIZE,
            encodings: ColumnEncodings::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compression_names_round_trip_and_errors_name_the_value() {
        for c in LakeCompression::ALL {
            assert_eq!(c.to_string().parse::<LakeCompression>().unwrap(), c);
        }
        assert_eq!(
            "ZSTD".parse::<LakeCompression>().unwrap(),
            LakeCompression::Zstd
        );
        assert_eq!(LakeCompression::default(), LakeCompression::Zstd);
        let err = "zip".parse::<LakeCompression>().unwrap_err();
        assert_eq!(err.value, "zip");
        let msg = err.to_string();
        assert!(msg.contains("\"zip\""), "{msg}");
        assert!(
            msg.contains("zstd, snappy, lz4, gzip, brotli, none"),
            "{msg}"
        );
        let options = LakeOptions::default();
        assert_eq!(options.compression, LakeCompression::Zstd);
        assert_eq!(options.max_row_group_size, 128 * 1024);
    }
}
