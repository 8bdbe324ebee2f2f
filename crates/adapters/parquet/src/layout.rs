//! The write protocol's file names and a partition's time bounds. The directory layout
//! itself (`frame=<tf>/symbol=<SYM>/year=<YYYY>[/month=<MM>]/part-0.parquet`, its parsing
//! and globs) is defined once in [`marketpipe_ports::layout`], re-exported here for the
//! adapter's modules.

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use marketpipe_domain::calendar::ny_instant;
use marketpipe_domain::{PartitionPeriod, Timestamp};
use marketpipe_ports::lake::PartitionKey;
pub(crate) use marketpipe_ports::layout::{
    PART_FILE, frame_dir, frame_dir_name, is_legacy_month_dir, legacy_partition_file,
    parse_frame_dir, parse_month_dir, parse_partition_dirs, parse_symbol_dir, parse_year_dir,
    partition_dir, partition_file, relative_path, symbol_dir,
};

/// The file a partition's rows are read from: its current location, or format 1's
/// (`month=01`) while the partition has not been moved; the current location when neither
/// exists.
pub(crate) fn stored_file(root: &Path, key: &PartitionKey) -> PathBuf {
    let current = partition_file(root, key);
    if current.is_file() {
        return current;
    }
    legacy_partition_file(root, key)
        .filter(|legacy| legacy.is_file())
        .unwrap_or(current)
}

/// The advisory lock file beside a partition's [`PART_FILE`] (never deleted: deleting lock
/// files races).
pub(crate) const LOCK_FILE: &str = ".part-0.parquet.lock";
/// Prefix of temporary files; a leading dot and no `.parquet` suffix keep them out of
/// `*.parquet` globs.
pub(crate) const TEMP_PREFIX: &str = ".part-0.parquet.tmp-";

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
    use marketpipe_domain::{Symbol, Timeframe};

    use super::*;

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
