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
    /// Zstandard at its default level (1): the best size for the speed. The default.
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

    /// The Parquet codec with its default level.
    pub(crate) fn to_parquet(self) -> Compression {
        match self {
            Self::Zstd => Compression::ZSTD(ZstdLevel::default()),
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

/// How the lake writes files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LakeOptions {
    /// The codec of written files.
    pub compression: LakeCompression,
    /// Rows per row group at most (a monthly 1m partition, ~8,000 rows, is one row group).
    pub max_row_group_size: usize,
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
