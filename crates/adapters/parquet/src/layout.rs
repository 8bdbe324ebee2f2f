//! The Hive-style directory layout: `frame=<tf>/symbol=<SYM>/year=<YYYY>[/month=<MM>]/part-0.parquet`.

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use marketpipe_domain::calendar::ny_instant;
use marketpipe_domain::{PartitionPeriod, Symbol, Timeframe, Timestamp};
use marketpipe_ports::lake::PartitionKey;

/// The data file of every partition.
pub(crate) const PART_FILE: &str = "part-0.parquet";
/// The advisory lock file beside it (never deleted: deleting lock files races).
pub(crate) const LOCK_FILE: &str = ".part-0.parquet.lock";
/// Prefix of temporary files; a leading dot and no `.parquet` suffix keep them out of
/// `*.parquet` globs.
pub(crate) const TEMP_PREFIX: &str = ".part-0.parquet.tmp-";

/// The partition's file, relative to the lake root, `/`-separated.
pub(crate) fn relative_path(key: &PartitionKey) -> String {
    format!("{}/{PART_FILE}", relative_dir(key))
}

/// The partition's directory, relative to the lake root, `/`-separated.
pub(crate) fn relative_dir(key: &PartitionKey) -> String {
    match key.month {
        Some(m) => format!(
            "frame={}/symbol={}/year={:04}/month={m:02}",
            key.frame.as_str(),
            key.symbol,
            key.year
        ),
        None => format!(
            "frame={}/symbol={}/year={:04}",
            key.frame.as_str(),
            key.symbol,
            key.year
        ),
    }
}

/// The partition's directory under `root`.
pub(crate) fn partition_dir(root: &Path, key: &PartitionKey) -> PathBuf {
    let mut dir = root.join(format!("frame={}", key.frame.as_str()));
    dir.push(format!("symbol={}", key.symbol));
    dir.push(format!("year={:04}", key.year));
    if let Some(m) = key.month {
        dir.push(format!("month={m:02}"));
    }
    dir
}

/// The value of a `name=value` directory name whose name is `name`.
fn hive_value<'a>(dir_name: &'a str, name: &str) -> Option<&'a str> {
    dir_name.strip_prefix(name)?.strip_prefix('=')
}

/// `frame=1m` -> `M1`.
pub(crate) fn parse_frame_dir(dir_name: &str) -> Option<Timeframe> {
    let value = hive_value(dir_name, "frame")?;
    Timeframe::ALL.into_iter().find(|f| f.as_str() == value)
}

/// `symbol=BRK.B` -> the symbol.
pub(crate) fn parse_symbol_dir(dir_name: &str) -> Option<Symbol> {
    Symbol::new(hive_value(dir_name, "symbol")?).ok()
}

/// `year=2024` -> 2024 (exactly four digits, as written).
pub(crate) fn parse_year_dir(dir_name: &str) -> Option<i32> {
    let value = hive_value(dir_name, "year")?;
    if value.len() != 4 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

/// `month=01` -> 1 (exactly two digits, 01–12, as written).
pub(crate) fn parse_month_dir(dir_name: &str) -> Option<u32> {
    let value = hive_value(dir_name, "month")?;
    if value.len() != 2 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok().filter(|m| (1..=12).contains(m))
}

/// The partition of a file given the directory names between the frame directory and the
/// file (`["symbol=AAPL", "year=2024", "month=01"]`), when they are a valid partition of
/// `frame`.
pub(crate) fn parse_partition_dirs(frame: Timeframe, dirs: &[&str]) -> Option<PartitionKey> {
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

/// Whether the key's period matches its frame (a month for monthly frames, none for yearly).
pub(crate) fn key_period_matches_frame(key: &PartitionKey) -> bool {
    match key.frame.partition_period() {
        PartitionPeriod::Month => key.month.is_some(),
        PartitionPeriod::Year => key.month.is_none(),
    }
}

/// The UTC instants `[start, end)` of the partition's New York session dates: a bar belongs
/// to the partition exactly when its `ts` lies inside (midnight always exists, once, in New
/// York, so the date of `ts` is inside the period iff `ts` is). `None` for an impossible key.
pub(crate) fn partition_bounds(key: &PartitionKey) -> Option<(Timestamp, Timestamp)> {
    if !key_period_matches_frame(key) {
        return None;
    }
    let dates = key.dates()?;
    let after: NaiveDate = dates.end().succ_opt()?;
    Some((ny_instant(dates.start(), 0, 0), ny_instant(after, 0, 0)))
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
        assert_eq!(parse_month_dir("month=01"), Some(1));
        assert_eq!(parse_month_dir("month=1"), None);
        assert_eq!(parse_month_dir("month=13"), None);
        assert_eq!(parse_month_dir("month=00"), None);
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
    }

    #[test]
    fn bounds_agree_with_for_bar_at_the_edges() {
        let sym = Symbol::new("AAPL").unwrap();
        let jan = PartitionKey {
            frame: Timeframe::M1,
            symbol: sym,
            year: 2024,
            month: Some(1),
        };
        let (start, end) = partition_bounds(&jan).unwrap();
        // 2024-01-01 00:00 ET = 05:00 UTC; 2024-02-01 00:00 ET = 05:00 UTC.
        assert_eq!(
            start,
            Timestamp::parse_rfc3339("2024-01-01T05:00:00Z").unwrap()
        );
        assert_eq!(
            end,
            Timestamp::parse_rfc3339("2024-02-01T05:00:00Z").unwrap()
        );
        for ts in [
            start,
            end,
            start.saturating_add_nanos(-1),
            end.saturating_add_nanos(-1),
        ] {
            let inside = start <= ts && ts < end;
            assert_eq!(PartitionKey::for_bar(Timeframe::M1, sym, ts) == jan, inside);
        }
        assert!(partition_bounds(&PartitionKey { month: None, ..jan }).is_none());
        assert!(
            partition_bounds(&PartitionKey {
                month: Some(13),
                ..jan
            })
            .is_none()
        );
    }
}
