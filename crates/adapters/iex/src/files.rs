//! Where HIST files live locally and what they are called.
//!
//! A day's TOPS file keeps the name the IEX listing gives it,
//! `YYYYMMDD_IEXTP1_TOPS<version>.pcap.gz` (e.g. `20240315_IEXTP1_TOPS1.6.pcap.gz`), directly
//! in the HIST directory. Also accepted: the same name without `.gz` (a file someone
//! gunzipped), TOPS 1.5 files (before mid-2017), and either inside a `YYYYMMDD/` subfolder
//! (the layout of the exchange's storage bucket, `data/feeds/YYYYMMDD/…`, which mirroring
//! tools reproduce). The search order is [`candidates`].

use std::path::{Path, PathBuf};

use chrono::NaiveDate;

use crate::iextp::TopsVersion;

/// Environment variable naming the HIST directory (config key `providers.iex.hist_dir`).
pub const HIST_DIR_ENV: &str = "MP_IEX_HIST_DIR";

/// The listing's file name of a day's TOPS capture.
pub fn file_name(date: NaiveDate, version: TopsVersion, gzip: bool) -> String {
    format!(
        "{}_IEXTP1_TOPS{}.pcap{}",
        date.format("%Y%m%d"),
        version.as_str(),
        if gzip { ".gz" } else { "" }
    )
}

/// The paths tried for `date`, in order: in `dir` then in `dir/YYYYMMDD/`; TOPS 1.6 before
/// 1.5; `.pcap.gz` before `.pcap`.
pub fn candidates(dir: &Path, date: NaiveDate) -> Vec<PathBuf> {
    let sub = dir.join(date.format("%Y%m%d").to_string());
    let mut out = Vec::with_capacity(8);
    for base in [dir, sub.as_path()] {
        for version in [TopsVersion::V1_6, TopsVersion::V1_5] {
            for gzip in [true, false] {
                out.push(base.join(file_name(date, version, gzip)));
            }
        }
    }
    out
}

/// The first existing file of [`candidates`].
pub fn locate(dir: &Path, date: NaiveDate) -> Option<PathBuf> {
    candidates(dir, date).into_iter().find(|p| p.is_file())
}

/// The command that downloads a day's file.
pub fn fetch_command(date: NaiveDate) -> String {
    format!("mp iex fetch --date {}", date.format("%Y-%m-%d"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_order() {
        let d = NaiveDate::from_ymd_opt(2024, 3, 15).unwrap();
        assert_eq!(
            file_name(d, TopsVersion::V1_6, true),
            "20240315_IEXTP1_TOPS1.6.pcap.gz"
        );
        assert_eq!(
            file_name(d, TopsVersion::V1_5, false),
            "20240315_IEXTP1_TOPS1.5.pcap"
        );
        let c = candidates(Path::new("/h"), d);
        assert_eq!(c.len(), 8);
        assert_eq!(c[0], Path::new("/h/20240315_IEXTP1_TOPS1.6.pcap.gz"));
        assert_eq!(c[7], Path::new("/h/20240315/20240315_IEXTP1_TOPS1.5.pcap"));
        assert_eq!(fetch_command(d), "mp iex fetch --date 2024-03-15");
    }
}
