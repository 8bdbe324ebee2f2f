//! Report names: `<run_id>_<symbol>`, also the file stem, so they are validated like path
//! segments before any path is built from them.

use marketpipe_domain::{JobId, Symbol};
use thiserror::Error;

/// A string that is not a report name `<job_id>_<SYMBOL>`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error(
    "invalid report name {value:?}: {reason}; a report is named `<job_id>_<SYMBOL>` \
     (see `mp validate --list`)"
)]
#[non_exhaustive]
pub struct InvalidReportName {
    /// The name given.
    pub value: String,
    /// What is wrong with it.
    pub reason: String,
}

/// Splits and validates a report name `<run_id>_<symbol>`.
///
/// The split is at the last `_`: a symbol never contains one, a job id may (`job_1_AAPL` is
/// run `job_1`, symbol `AAPL`). The run id must be a valid [`JobId`] and the symbol a valid
/// [`Symbol`], so a name can never hold a path separator, `..` or a file suffix such as `.csv`.
pub fn parse_report_name(name: &str) -> Result<(JobId, Symbol), InvalidReportName> {
    let invalid = |reason: String| InvalidReportName {
        value: name.to_owned(),
        reason,
    };
    let Some((run, symbol)) = name.rsplit_once('_') else {
        return Err(invalid(
            "there is no '_' between the run id and the symbol".into(),
        ));
    };
    if run.is_empty() {
        return Err(invalid("the run id before the last '_' is empty".into()));
    }
    if symbol.is_empty() {
        return Err(invalid("the symbol after the last '_' is empty".into()));
    }
    let run_id = JobId::new(run).map_err(|e| invalid(format!("the run id is invalid: {e}")))?;
    let symbol = Symbol::new(symbol).map_err(|e| invalid(format!("the symbol is invalid: {e}")))?;
    Ok((run_id, symbol))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_job_and_adhoc_names() {
        let (run, symbol) = parse_report_name("20261127T040631Z-2805c3_BRK.B").unwrap();
        assert_eq!(run.as_str(), "20261127T040631Z-2805c3");
        assert_eq!(symbol.as_str(), "BRK.B");
        let (run, symbol) = parse_report_name("job_1_AAPL").unwrap();
        assert_eq!((run.as_str(), symbol.as_str()), ("job_1", "AAPL"));
        let (run, symbol) = parse_report_name("j_BF-B").unwrap();
        assert_eq!((run.as_str(), symbol.as_str()), ("j", "BF-B"));
    }

    #[test]
    fn rejects_paths_suffixes_and_empty_parts() {
        for bad in [
            "../x_AAPL",
            "a/b_AAPL",
            "a\\b_AAPL",
            "job_aapl",
            "job_",
            "_AAPL",
            "job_AAPL.csv",
            "job_AAPL/..",
            "job_..",
            "job AAPL",
            "jobAAPL",
            "",
        ] {
            let err = parse_report_name(bad).unwrap_err();
            assert_eq!(err.value, bad);
            let text = err.to_string();
            assert!(text.contains(&format!("{bad:?}")), "{text}");
            assert!(text.contains("`<job_id>_<SYMBOL>`"), "{text}");
            assert!(text.contains("mp validate --list"), "{text}");
        }
    }

    #[test]
    fn the_reason_says_which_part_is_wrong() {
        let reason = |name| parse_report_name(name).unwrap_err().reason;
        assert!(reason("job_").contains("symbol"));
        assert!(reason("_AAPL").contains("run id"));
        assert!(reason("../x_AAPL").contains("run id"));
        assert!(
            reason("job_aapl").contains("upper-case"),
            "{}",
            reason("job_aapl")
        );
    }
}
