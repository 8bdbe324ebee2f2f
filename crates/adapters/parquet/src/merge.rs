//! The upsert merge of new bars into a partition's stored rows.

use std::cmp::Ordering;

use marketpipe_domain::Bar;
use marketpipe_ports::lake::WriteMeta;

use crate::codec::{Rows, StoredRow};

/// The merged partition and what the merge changed.
#[derive(Debug)]
pub(crate) struct Merged {
    /// All rows after the merge, sorted by `ts`, unique `ts`.
    pub(crate) rows: Rows,
    /// New bars whose `ts` was not stored.
    pub(crate) inserted: u64,
    /// New bars that replaced a stored row with different content (bar or provenance).
    pub(crate) updated: u64,
}

/// Merges `bars` (sorted, unique `ts`) into `stored` (sorted, unique `ts`): the new bar wins
/// on equal `ts` and takes `meta`'s provenance. A new bar equal to the stored row in every
/// field, provider, feed and origin keeps the stored row as it is (its `ingested_at` too), so that a
/// re-run changes nothing.
pub(crate) fn merge(mut stored: Rows, bars: &[Bar], meta: &WriteMeta) -> Merged {
    let source = stored.intern(&meta.provider, meta.feed.as_deref(), meta.origin);
    let ingested_at = meta.ingested_at.nanos();
    let new_row = |bar: &Bar| StoredRow {
        bar: *bar,
        source,
        ingested_at,
    };
    let old = std::mem::take(&mut stored.rows);
    if old.is_empty() {
        stored.rows = bars.iter().map(new_row).collect();
        let inserted = stored.rows.len() as u64;
        return Merged {
            rows: stored,
            inserted,
            updated: 0,
        };
    }
    let mut out = Vec::with_capacity(old.len() + bars.len());
    let (mut inserted, mut updated) = (0u64, 0u64);
    let (mut i, mut j) = (0, 0);
    while let (Some(o), Some(b)) = (old.get(i), bars.get(j)) {
        match o.bar.ts.cmp(&b.ts) {
            Ordering::Less => {
                out.push(*o);
                i += 1;
            }
            Ordering::Greater => {
                out.push(new_row(b));
                inserted += 1;
                j += 1;
            }
            Ordering::Equal => {
                if o.bar == *b && o.source == source {
                    out.push(*o);
                } else {
                    out.push(new_row(b));
                    updated += 1;
                }
                i += 1;
                j += 1;
            }
        }
    }
    out.extend_from_slice(old.get(i..).unwrap_or_default());
    let rest = bars.get(j..).unwrap_or_default();
    inserted += rest.len() as u64;
    out.extend(rest.iter().map(new_row));
    stored.rows = out;
    Merged {
        rows: stored,
        inserted,
        updated,
    }
}

#[cfg(test)]
mod tests {
    use marketpipe_domain::{Price, Symbol, Timestamp};

    use super::*;

    fn bar(minute: i64, close: i64) -> Bar {
        let p = Price::from_raw(close).unwrap();
        Bar::new(
            Symbol::new("AAPL").unwrap(),
            Timestamp::from_nanos(1_700_000_000_000_000_000 + minute * 60_000_000_000),
            p,
            p,
            p,
            p,
            1,
        )
    }

    fn meta(provider: &str, at: i64) -> WriteMeta {
        WriteMeta {
            provider: provider.into(),
            feed: None,
            origin: marketpipe_ports::lake::BarOrigin::Provider,
            ingested_at: Timestamp::from_nanos(at),
            job_id: None,
        }
    }

    #[test]
    fn new_bar_wins_and_identical_rows_are_kept() {
        let first = merge(
            Rows::default(),
            &[bar(0, 1), bar(1, 1), bar(3, 1)],
            &meta("a", 1),
        );
        assert_eq!((first.inserted, first.updated), (3, 0));
        let second = merge(
            first.rows,
            &[bar(1, 1), bar(2, 2), bar(3, 5), bar(4, 1)],
            &meta("a", 2),
        );
        assert_eq!((second.inserted, second.updated), (2, 1));
        let rows = &second.rows.rows;
        let ts: Vec<i64> = rows.iter().map(|r| r.bar.ts.nanos()).collect();
        assert!(ts.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(rows.len(), 5);
        assert_eq!(
            rows[1].ingested_at, 1,
            "an identical row keeps its provenance"
        );
        assert_eq!(rows[3].bar.close.raw(), 5);
        assert_eq!(rows[3].ingested_at, 2);
        // Same bars from another provider count as updates.
        let third = merge(second.rows, &[bar(0, 1)], &meta("b", 3));
        assert_eq!((third.inserted, third.updated), (0, 1));
        let source = third.rows.source(&third.rows.rows[0]).unwrap();
        assert_eq!(source.provider, "b");
    }
}
