//! The XNYS calendar against an independent reference: every session from 2000 to 2035 and
//! its close, as computed by the `exchange_calendars` Python package (see the data file's
//! header). Any holiday, observed-day shift, early close or special closure that differs
//! shows up here as a named date.

use std::collections::HashSet;

use marketpipe_domain::calendar::ny_time_hhmm;
use marketpipe_domain::{DateRange, TradingCalendar};

#[test]
fn sessions_2000_to_2035_match_exchange_calendars() {
    let reference: HashSet<(String, String)> = include_str!("data/xnys_sessions_2000_2035.csv")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (date, close) = l.split_once(',').unwrap();
            (date.to_owned(), close.to_owned())
        })
        .collect();
    let ours: HashSet<(String, String)> = TradingCalendar::xnys()
        .sessions(DateRange::parse("2000-01-01", "2035-12-31").unwrap())
        .unwrap()
        .into_iter()
        .map(|s| (s.date.to_string(), ny_time_hhmm(s.close)))
        .collect();
    let mut missing: Vec<_> = reference.difference(&ours).collect();
    let mut extra: Vec<_> = ours.difference(&reference).collect();
    missing.sort();
    extra.sort();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:?}\nextra {extra:?}"
    );
    assert_eq!(ours.len(), 9049);
    assert_eq!(
        ours.iter().filter(|(_, close)| close == "13:00").count(),
        79
    );
}
