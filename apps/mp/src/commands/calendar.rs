//! `mp calendar`: the XNYS sessions between two dates.

use std::io::Write;

use marketpipe_domain::calendar::{DayStatus, ny_time_hhmm};
use marketpipe_domain::{DateRange, Session, TradingCalendar};
use serde::Serialize;

use crate::cli::CalendarArgs;
use crate::error::{AppError, usage};

/// One row of the output: a session, or (with `--include-closed`) a closed weekday.
#[derive(Debug, Serialize)]
struct Row {
    date: String,
    weekday: String,
    status: &'static str,
    reason: Option<&'static str>,
    open_et: Option<String>,
    close_et: Option<String>,
    open_utc: Option<String>,
    close_utc: Option<String>,
    early_close: bool,
}

impl Row {
    fn session(s: &Session) -> Self {
        Self {
            date: s.date.to_string(),
            weekday: s.date.format("%a").to_string(),
            status: if s.early_close { "early_close" } else { "open" },
            reason: None,
            open_et: Some(ny_time_hhmm(s.open)),
            close_et: Some(ny_time_hhmm(s.close)),
            open_utc: Some(s.open.to_rfc3339()),
            close_utc: Some(s.close.to_rfc3339()),
            early_close: s.early_close,
        }
    }
}

pub(crate) fn run(args: &CalendarArgs, out: &mut dyn Write) -> Result<(), AppError> {
    let range = DateRange::parse(&args.start, &args.end).map_err(usage)?;
    let calendar = TradingCalendar::xnys();
    let mut rows = Vec::new();
    let mut sessions = 0usize;
    for date in range.days() {
        match calendar.day_status(date).map_err(usage)? {
            DayStatus::Open | DayStatus::EarlyClose => {
                if let Some(s) = calendar.session(date).map_err(usage)? {
                    rows.push(Row::session(&s));
                    sessions += 1;
                }
            }
            DayStatus::Holiday(reason) | DayStatus::SpecialClosure(reason)
                if args.include_closed =>
            {
                rows.push(Row {
                    date: date.to_string(),
                    weekday: date.format("%a").to_string(),
                    status: "closed",
                    reason: Some(reason),
                    open_et: None,
                    close_et: None,
                    open_utc: None,
                    close_utc: None,
                    early_close: false,
                });
            }
            _ => {}
        }
    }
    tracing::debug!(sessions, start = %range.start(), end = %range.end(), "computed XNYS sessions");
    if args.json {
        serde_json::to_writer_pretty(&mut *out, &rows).map_err(|e| AppError::Failed(e.into()))?;
        writeln!(out)?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<10}  {:<3}  {:>7}  {:>8}  {:<20}  {:<20}  note",
        "date", "day", "open_et", "close_et", "open_utc", "close_utc"
    )?;
    for r in &rows {
        let note = match (r.status, r.reason) {
            ("early_close", _) => "early close".to_owned(),
            (_, Some(reason)) => format!("closed: {reason}"),
            _ => String::new(),
        };
        writeln!(
            out,
            "{:<10}  {:<3}  {:>7}  {:>8}  {:<20}  {:<20}  {}",
            r.date,
            r.weekday,
            r.open_et.as_deref().unwrap_or("-"),
            r.close_et.as_deref().unwrap_or("-"),
            r.open_utc.as_deref().unwrap_or("-"),
            r.close_utc.as_deref().unwrap_or("-"),
            note
        )?;
    }
    writeln!(out, "{sessions} sessions")?;
    Ok(())
}
