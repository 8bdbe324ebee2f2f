//! Reading the coverage map grouped by session, as the backfill plan and the gaps report
//! both need it.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use marketpipe_domain::{SessionCoverage, Symbol};
use marketpipe_ports::{CoverageQuery, CoverageRepository};

use crate::error::IngestError;

/// Every entry of `query`, grouped by (symbol, session date).
pub(crate) async fn by_session(
    coverage: &dyn CoverageRepository,
    query: &CoverageQuery,
) -> Result<BTreeMap<(Symbol, NaiveDate), Vec<SessionCoverage>>, IngestError> {
    let mut grouped: BTreeMap<(Symbol, NaiveDate), Vec<SessionCoverage>> = BTreeMap::new();
    for entry in coverage.coverage(query).await? {
        grouped
            .entry((entry.symbol, entry.date))
            .or_default()
            .push(entry);
    }
    Ok(grouped)
}
