//! The lake's directory layout, defined here once for every crate that reads or writes the
//! lake (the Parquet adapter, the DuckDB views, the polars facade):
//!
//! ```text
//! <root>/frame=<tf>/symbol=<SYM>/year=<YYYY>/month=<M>/part-0.parquet    (frames up to 30m)
//! <root>/frame=<tf>/symbol=<SYM>/year=<YYYY>/part-0.parquet              (1h, 4h, 1d)
//! ```
//!
//! Directory names are Hive `name=value` pairs. The year has exactly four digits; the month
//! is written without a leading zero (`month=3`), so that every reader's Hive type inference
//! (DuckDB, polars, pyarrow, Spark) reads it as an integer, as it does the year: DuckDB keeps
//! a value with a leading zero as text. Lake format 1 wrote `month=03`; that spelling is still
//! parsed (as a format-1 location, [`legacy_partition_file`]) until `mp lake upgrade` moves
//! the file. Parsing is as strict as writing, so a stray directory is never taken for a
//! partition. Only path arithmetic here (`std::path`), no file access.

use std::path::{Path, PathBuf};

use marketpipe_domain::{PartitionPeriod, Symbol, Timeframe};

use crate::lake::PartitionKey;

/// The data file of every partition.
pub const PART_FILE: &str = "part-0.parquet";

/// A file at the lake root holding the lake format version (`2`) when every partition file
/// is known to be in it: written with a new lake's first partition and by `mp lake upgrade`
/// once nothing older is left. Readers that need to know whether older files may be present
/// (the DuckDB views) read it; without it they assume they may. It starts with a dot, so the
/// Parquet readers skip it.
pub const FORMAT_MARKER: &str = ".lake-format";

/// The glob of partition data files: it matches [`PART_FILE`] and never the write protocol's
/// lock and temporary files, which start with `.part-0.parquet.` and do not end in `.parquet`.
pub const PART_FILE_GLOB: &str = "part-*.parquet";

/// `frame=1m`.
pub fn frame_dir_name(frame: Timeframe) -> String {
    format!("frame={}", frame.as_str())
}

/// `symbol=BRK.B`.
pub fn symbol_dir_name(symbol: Symbol) -> String {
    format!("symbol={}", symbol.as_str())
}

/// `year=2024` (four digits).
pub fn year_dir_name(year: i32) -> String {
    format!("year={year:04}")
}

/// `month=1` … `month=12` (no leading zero).
pub fn month_dir_name(month: u32) -> String {
    format!("month={month}")
}

/// `month=01` … `month=12`: lake format 1's spelling, read until upgraded, never written.
pub fn legacy_month_dir_name(month: u32) -> String {
    format!("month={month:02}")
}

/// Whether a directory name is a frame directory's (`frame=…`, whatever the value): what
/// tells a lake root (which holds them) from the directory above it or one below.
pub fn is_frame_dir_name(dir_name: &str) -> bool {
    hive_value(dir_name, "frame").is_some()
}

/// The directory names of a partition, from the frame down.
fn dir_names(key: &PartitionKey) -> Vec<String> {
    let mut names = vec![
        frame_dir_name(key.frame),
        symbol_dir_name(key.symbol),
        year_dir_name(key.year),
    ];
    if let Some(m) = key.month {
        names.push(month_dir_name(m));
    }
    names
}

/// The partition's directory, relative to the lake root, `/`-separated.
pub fn relative_dir(key: &PartitionKey) -> String {
    dir_names(key).join("/")
}

/// The partition's file, relative to the lake root, `/`-separated.
pub fn relative_path(key: &PartitionKey) -> String {
    format!("{}/{PART_FILE}", relative_dir(key))
}

/// `<root>/frame=<tf>`.
pub fn frame_dir(root: &Path, frame: Timeframe) -> PathBuf {
    root.join(frame_dir_name(frame))
}

/// `<root>/frame=<tf>/symbol=<SYM>`.
pub fn symbol_dir(root: &Path, frame: Timeframe, symbol: Symbol) -> PathBuf {
    frame_dir(root, frame).join(symbol_dir_name(symbol))
}

/// The partition's directory under `root`.
pub fn partition_dir(root: &Path, key: &PartitionKey) -> PathBuf {
    let mut dir = root.to_path_buf();
    dir.extend(dir_names(key));
    dir
}

/// The partition's data file under `root`.
pub fn partition_file(root: &Path, key: &PartitionKey) -> PathBuf {
    partition_dir(root, key).join(PART_FILE)
}

/// Where lake format 1 kept a monthly partition's file (`month=01`); `None` for yearly
/// frames, whose location did not change.
pub fn legacy_partition_file(root: &Path, key: &PartitionKey) -> Option<PathBuf> {
    let month = key.month?;
    let mut dir = symbol_dir(root, key.frame, key.symbol);
    dir.push(year_dir_name(key.year));
    dir.push(legacy_month_dir_name(month));
    Some(dir.join(PART_FILE))
}

/// The glob of a frame's data files relative to the lake root, naming every directory level:
/// `frame=1m/symbol=*/year=*/month=*/part-*.parquet`, `frame=1d/symbol=*/year=*/part-*.parquet`.
pub fn frame_glob(frame: Timeframe) -> String {
    let month = match frame.partition_period() {
        PartitionPeriod::Month => "/month=*",
        PartitionPeriod::Year => "",
    };
    format!(
        "{}/symbol=*/year=*{month}/{PART_FILE_GLOB}",
        frame_dir_name(frame)
    )
}

/// The value of a `name=value` directory name whose name is `name`.
fn hive_value<'a>(dir_name: &'a str, name: &str) -> Option<&'a str> {
    dir_name.strip_prefix(name)?.strip_prefix('=')
}

/// `frame=1m` -> `M1`.
pub fn parse_frame_dir(dir_name: &str) -> Option<Timeframe> {
    let value = hive_value(dir_name, "frame")?;
    Timeframe::ALL.into_iter().find(|f| f.as_str() == value)
}

/// `symbol=BRK.B` -> the symbol.
pub fn parse_symbol_dir(dir_name: &str) -> Option<Symbol> {
    Symbol::new(hive_value(dir_name, "symbol")?).ok()
}

/// `year=2024` -> 2024 (exactly four digits, as written).
pub fn parse_year_dir(dir_name: &str) -> Option<i32> {
    let value = hive_value(dir_name, "year")?;
    if value.len() != 4 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

/// `month=1` -> 1, and format 1's `month=01` -> 1: 1–12 without a leading zero, or exactly
/// two digits 01–12 (see [`is_legacy_month_dir`]).
pub fn parse_month_dir(dir_name: &str) -> Option<u32> {
    let value = hive_value(dir_name, "month")?;
    let canonical = !value.starts_with('0') && (1..=2).contains(&value.len());
    let legacy = value.len() == 2 && value.starts_with('0');
    if !(canonical || legacy) || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok().filter(|m| (1..=12).contains(m))
}

/// Whether a month directory is spelled as lake format 1 wrote it (`month=01` … `month=09`;
/// `month=10` … `month=12` are the same in both formats).
pub fn is_legacy_month_dir(dir_name: &str) -> bool {
    hive_value(dir_name, "month").is_some_and(|v| v.len() == 2 && v.starts_with('0'))
        && parse_month_dir(dir_name).is_some()
}

/// The partition of a file given the directory names between the frame directory and the
/// file (`["symbol=AAPL", "year=2024", "month=01"]`), when they are a valid partition of
/// `frame`.
pub fn parse_partition_dirs(frame: Timeframe, dirs: &[&str]) -> Option<PartitionKey> {
    let (symbol, year, month) = match (frame.partition_period(), dirs) {
        (PartitionPeriod::Month, [s, y, m]) => (
            parse_symbol_dir(s)?,
            parse_year_dir(y)?,
            Some(parse_month_dir(m)?),
        ),
        (PartitionPeriod::Year, [s, y]) => (parse_symbol_dir(s)?, parse_year_dir(y)?, None),
        _ => return None,
    };
    Some(PartitionKey {
        frame,
        symbol,
        year,
        month,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hive_names_parse_strictly() {
        assert_eq!(parse_frame_dir("frame=15m"), Some(Timeframe::M15));
        assert_eq!(parse_frame_dir("frame=2m"), None);
        assert_eq!(parse_frame_dir("frames=1m"), None);
        assert_eq!(parse_symbol_dir("symbol=BRK.B").unwrap().as_str(), "BRK.B");
        assert_eq!(parse_symbol_dir("symbol=aapl"), None);
        assert_eq!(parse_symbol_dir("symbol=.."), None);
        assert_eq!(parse_year_dir("year=2024"), Some(2024));
        assert_eq!(parse_year_dir("year=24"), None);
        assert_eq!(parse_year_dir("year=+024"), None);
        assert_eq!(parse_month_dir("month=1"), Some(1));
        assert_eq!(parse_month_dir("month=12"), Some(12));
        assert_eq!(parse_month_dir("month=01"), Some(1));
        assert!(is_legacy_month_dir("month=01") && is_legacy_month_dir("month=09"));
        assert!(!is_legacy_month_dir("month=1") && !is_legacy_month_dir("month=10"));
        assert!(!is_legacy_month_dir("month=00"));
        for bad in [
            "month=13",
            "month=00",
            "month=0",
            "month=001",
            "month=+1",
            "month=",
        ] {
            assert_eq!(parse_month_dir(bad), None, "{bad}");
        }
        assert!(parse_partition_dirs(Timeframe::M1, &["symbol=A", "year=2024"]).is_none());
        assert!(
            parse_partition_dirs(Timeframe::D1, &["symbol=A", "year=2024", "month=01"]).is_none()
        );
        let key =
            parse_partition_dirs(Timeframe::M5, &["symbol=A", "year=2024", "month=12"]).unwrap();
        assert_eq!(
            relative_path(&key),
            "frame=5m/symbol=A/year=2024/month=12/part-0.parquet"
        );
        let march = PartitionKey {
            month: Some(3),
            ..key
        };
        assert_eq!(
            relative_path(&march),
            "frame=5m/symbol=A/year=2024/month=3/part-0.parquet"
        );
        assert_eq!(
            legacy_partition_file(Path::new("/l"), &march).unwrap(),
            Path::new("/l/frame=5m/symbol=A/year=2024/month=03/part-0.parquet")
        );
        let daily = PartitionKey {
            frame: Timeframe::D1,
            month: None,
            ..key
        };
        assert!(legacy_partition_file(Path::new("/l"), &daily).is_none());
        assert!(is_frame_dir_name("frame=1m") && is_frame_dir_name("frame=x"));
        assert!(!is_frame_dir_name("frames=1m") && !is_frame_dir_name("lake"));
    }

    #[test]
    fn written_names_parse_back() {
        let symbol = Symbol::new("BRK.B").unwrap();
        for frame in Timeframe::ALL {
            let month = match frame.partition_period() {
                PartitionPeriod::Month => Some(3),
                PartitionPeriod::Year => None,
            };
            let key = PartitionKey {
                frame,
                symbol,
                year: 987,
                month,
            };
            let dirs = relative_dir(&key);
            let names: Vec<&str> = dirs.split('/').collect();
            assert_eq!(parse_frame_dir(names[0]), Some(frame));
            assert_eq!(parse_partition_dirs(frame, &names[1..]), Some(key));
            let root = Path::new("/data/lake");
            assert_eq!(
                partition_file(root, &key),
                root.join(relative_path(&key)),
                "{key}"
            );
            assert!(partition_dir(root, &key).starts_with(symbol_dir(root, frame, symbol)));
        }
        let yearly = PartitionKey {
            frame: Timeframe::D1,
            symbol,
            year: 2024,
            month: None,
        };
        assert_eq!(
            relative_path(&yearly),
            "frame=1d/symbol=BRK.B/year=2024/part-0.parquet"
        );
        assert_eq!(
            partition_dir(Path::new("/l"), &yearly),
            Path::new("/l/frame=1d/symbol=BRK.B/year=2024")
        );
    }

    #[test]
    fn globs_name_every_level() {
        assert_eq!(
            frame_glob(Timeframe::M1),
            "frame=1m/symbol=*/year=*/month=*/part-*.parquet"
        );
        assert_eq!(
            frame_glob(Timeframe::D1),
            "frame=1d/symbol=*/year=*/part-*.parquet"
        );
    }
}
