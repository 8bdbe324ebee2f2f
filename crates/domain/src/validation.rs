//! Data-quality rules as pure functions over sorted bars of one symbol. Each rule
//! returns [`Finding`]s: a stable rule id, a severity, the bar's `ts` and a human detail.
//! The rules and their thresholds are listed in docs/validation.md.

use std::fmt;
use std::str::FromStr;

use chrono::Days;
use serde::{Deserialize, Serialize};

use crate::bar::Bar;
use crate::calendar::{Session, SessionKind, TradingCalendar, ny_date, ny_time_hhmm};
use crate::error::DomainError;
use crate::resample::bucket_start;
use crate::symbol::Symbol;
use crate::time::{DateRange, NANOS_PER_MINUTE, Timestamp};
use crate::timeframe::Timeframe;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing; not a defect.
    Info,
    /// Suspicious; may be real market behaviour.
    Warning,
    /// The data is wrong or incomplete.
    Error,
}

impl Severity {
    /// Lower-case name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Error => "error",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The stable identifier of a rule, as written in reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "&'static str", try_from = "String")]
pub enum RuleId {
    /// `high < low`.
    HighBelowLow,
    /// `high < open`.
    HighBelowOpen,
    /// `high < close`.
    HighBelowClose,
    /// `low > open`.
    LowAboveOpen,
    /// `low > close`.
    LowAboveClose,
    /// A price of zero (or below, if a store held one).
    NonPositivePrice,
    /// `ts` is not at the start of a frame bucket.
    MisalignedTs,
    /// The same `ts` twice.
    DuplicateTs,
    /// `ts` lower than the previous bar's.
    UnsortedTs,
    /// A bar outside the session hours the job asked for.
    OutsideSession,
    /// A move from the previous close above the threshold.
    PriceJump,
    /// Volume far above the symbol's typical volume.
    VolumeOutlier,
    /// A long run of bars with zero volume.
    ZeroVolumeRun,
    /// Minutes of a session with no bar.
    MissingMinutes,
    /// A session with no bar at all.
    MissingSession,
    /// Two providers disagree on a bar's close beyond tolerance.
    ProviderDisagreement,
}

impl RuleId {
    /// Every rule.
    pub const ALL: [Self; 16] = [
        Self::HighBelowLow,
        Self::HighBelowOpen,
        Self::HighBelowClose,
        Self::LowAboveOpen,
        Self::LowAboveClose,
        Self::NonPositivePrice,
        Self::MisalignedTs,
        Self::DuplicateTs,
        Self::UnsortedTs,
        Self::OutsideSession,
        Self::PriceJump,
        Self::VolumeOutlier,
        Self::ZeroVolumeRun,
        Self::MissingMinutes,
        Self::MissingSession,
        Self::ProviderDisagreement,
    ];

    /// The id written in reports.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::HighBelowLow => "ohlc_high_below_low",
            Self::HighBelowOpen => "ohlc_high_below_open",
            Self::HighBelowClose => "ohlc_high_below_close",
            Self::LowAboveOpen => "ohlc_low_above_open",
            Self::LowAboveClose => "ohlc_low_above_close",
            Self::NonPositivePrice => "non_positive_price",
            Self::MisalignedTs => "misaligned_ts",
            Self::DuplicateTs => "duplicate_ts",
            Self::UnsortedTs => "unsorted_ts",
            Self::OutsideSession => "outside_session",
            Self::PriceJump => "price_jump",
            Self::VolumeOutlier => "volume_outlier",
            Self::ZeroVolumeRun => "zero_volume_run",
            Self::MissingMinutes => "missing_minutes",
            Self::MissingSession => "missing_session",
            Self::ProviderDisagreement => "provider_disagreement",
        }
    }

    /// The severity the rule reports with.
    pub const fn severity(self) -> Severity {
        match self {
            Self::PriceJump
            | Self::VolumeOutlier
            | Self::ZeroVolumeRun
            | Self::MissingMinutes
            | Self::ProviderDisagreement => Severity::Warning,
            _ => Severity::Error,
        }
    }
}

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<RuleId> for &'static str {
    fn from(r: RuleId) -> Self {
        r.as_str()
    }
}

impl FromStr for RuleId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown validation rule {s:?}"))
    }
}

impl TryFrom<String> for RuleId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

/// One thing a rule found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// The symbol.
    pub symbol: Symbol,
    /// The bar (or, for missing data, the first missing instant).
    pub ts: Timestamp,
    /// Which rule.
    pub rule: RuleId,
    /// How bad.
    pub severity: Severity,
    /// What exactly, for a human.
    pub detail: String,
}

impl Finding {
    fn new(symbol: Symbol, ts: Timestamp, rule: RuleId, detail: String) -> Self {
        Self {
            symbol,
            ts,
            rule,
            severity: rule.severity(),
            detail,
        }
    }
}

/// Thresholds of the statistical rules (the config's `validation` section).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ValidationThresholds {
    /// A bar whose high or low is further than this percentage from the previous close.
    pub price_jump_pct: f64,
    /// A bar whose robust z-score of log volume exceeds this.
    pub volume_outlier_score: f64,
    /// This many consecutive zero-volume bars or more form a run.
    pub zero_volume_run: u32,
    /// Which hours bars must lie in.
    pub session: SessionKind,
}

impl Default for ValidationThresholds {
    fn default() -> Self {
        Self {
            price_jump_pct: 10.0,
            volume_outlier_score: 8.0,
            zero_volume_run: 30,
            session: SessionKind::Regular,
        }
    }
}

/// Price consistency of each bar: OHLC relations and positive prices.
///
/// A bar whose high is below its low necessarily breaks another relation too (its high is
/// below its open or close, or its low above them); it is reported once, as
/// `ohlc_high_below_low`, the root cause.
pub fn check_prices(bars: &[Bar]) -> Vec<Finding> {
    let mut out = Vec::new();
    for b in bars {
        price_findings(b, &mut out);
    }
    out
}

/// Whether a bar breaks none of the price rules (the common case, checked without
/// formatting anything).
#[inline]
fn prices_consistent(b: &Bar) -> bool {
    b.high >= b.low
        && b.high >= b.open
        && b.high >= b.close
        && b.low <= b.open
        && b.low <= b.close
        && b.low.is_positive()
        && b.open.is_positive()
        && b.high.is_positive()
        && b.close.is_positive()
}

/// The price findings of one bar, appended to `out`.
fn price_findings(b: &Bar, out: &mut Vec<Finding>) {
    if prices_consistent(b) {
        return;
    }
    let mut flag = |rule, detail: String| out.push(Finding::new(b.symbol, b.ts, rule, detail));
    if b.high < b.low {
        flag(
            RuleId::HighBelowLow,
            format!("high {} < low {}", b.high, b.low),
        );
    } else {
        let relations = [
            (
                b.high < b.open,
                RuleId::HighBelowOpen,
                "high",
                b.high,
                "<",
                "open",
                b.open,
            ),
            (
                b.high < b.close,
                RuleId::HighBelowClose,
                "high",
                b.high,
                "<",
                "close",
                b.close,
            ),
            (
                b.low > b.open,
                RuleId::LowAboveOpen,
                "low",
                b.low,
                ">",
                "open",
                b.open,
            ),
            (
                b.low > b.close,
                RuleId::LowAboveClose,
                "low",
                b.low,
                ">",
                "close",
                b.close,
            ),
        ];
        for (broken, rule, left, lv, op, right, rv) in relations {
            if broken {
                flag(rule, format!("{left} {lv} {op} {right} {rv}"));
            }
        }
    }
    let non_positive: Vec<&str> = [
        ("open", b.open),
        ("high", b.high),
        ("low", b.low),
        ("close", b.close),
    ]
    .into_iter()
    .filter(|(_, p)| !p.is_positive())
    .map(|(name, _)| name)
    .collect();
    if !non_positive.is_empty() {
        flag(
            RuleId::NonPositivePrice,
            format!("non-positive {}", non_positive.join(", ")),
        );
    }
}

/// Timestamps: aligned to the frame, strictly increasing, unique.
pub fn check_timestamps(bars: &[Bar], frame: Timeframe) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut prev: Option<Timestamp> = None;
    for b in bars {
        let aligned = bucket_start(frame, b.ts);
        if aligned != b.ts {
            out.push(Finding::new(
                b.symbol,
                b.ts,
                RuleId::MisalignedTs,
                format!("not at the start of a {frame} bucket (expected {aligned})"),
            ));
        }
        if let Some(p) = prev {
            if b.ts == p {
                out.push(Finding::new(
                    b.symbol,
                    b.ts,
                    RuleId::DuplicateTs,
                    "same ts as the previous bar".into(),
                ));
            } else if b.ts < p {
                out.push(Finding::new(
                    b.symbol,
                    b.ts,
                    RuleId::UnsortedTs,
                    format!("earlier than the previous bar at {p}"),
                ));
            }
        }
        prev = Some(prev.map_or(b.ts, |p| p.max(b.ts)));
    }
    out
}

/// Sessions covering the New York dates from a day before `first` to a day after `last`.
fn sessions_around(
    calendar: &TradingCalendar,
    first: Timestamp,
    last: Timestamp,
) -> Result<Vec<Session>, DomainError> {
    let start = ny_date(first);
    let end = ny_date(last);
    let start = start.checked_sub_days(Days::new(1)).unwrap_or(start);
    let end = end.checked_add_days(Days::new(1)).unwrap_or(end);
    calendar.sessions(DateRange::new(start, end)?)
}

/// Bars outside the requested session hours (holidays, weekends, after the close). For
/// frames wider than a minute, a bar counts as inside when its bucket overlaps the hours.
pub fn check_session_hours(
    bars: &[Bar],
    frame: Timeframe,
    calendar: &TradingCalendar,
    kind: SessionKind,
) -> Result<Vec<Finding>, DomainError> {
    let (Some(first), Some(last)) = (
        bars.iter().map(|b| b.ts).min(),
        bars.iter().map(|b| b.ts).max(),
    ) else {
        return Ok(Vec::new());
    };
    let sessions = sessions_around(calendar, first, last)?;
    let bounds: Vec<(Timestamp, Timestamp)> = sessions.iter().map(|s| s.bounds(kind)).collect();
    let width = frame.intraday_nanos();
    let mut out = Vec::new();
    // Bars are normally sorted: walk the sessions with a cursor, and fall back to a binary
    // search only when a bar goes backwards.
    let mut cursor = 0;
    let mut prev = Timestamp::from_nanos(i64::MIN);
    for b in bars {
        if b.ts < prev {
            cursor = 0;
        }
        prev = b.ts;
        let inside = match width {
            None => sessions
                .binary_search_by_key(&ny_date(b.ts), |s| s.date)
                .is_ok(),
            Some(w) => {
                let end = b.ts.saturating_add_nanos(w);
                // The first session whose end is after the bar's start.
                while cursor < bounds.len() && bounds[cursor].1 <= b.ts {
                    cursor += 1;
                }
                bounds.get(cursor).is_some_and(|(open, _)| *open < end)
            }
        };
        if !inside {
            out.push(outside_session_finding(b, calendar, kind)?);
        }
    }
    Ok(out)
}

/// The finding for a bar outside the session hours, saying why.
fn outside_session_finding(
    b: &Bar,
    calendar: &TradingCalendar,
    kind: SessionKind,
) -> Result<Finding, DomainError> {
    let date = ny_date(b.ts);
    let why = match calendar.day_status(date)? {
        crate::calendar::DayStatus::Open | crate::calendar::DayStatus::EarlyClose => {
            format!(
                "{} ET is outside {} hours of {date}",
                ny_time_hhmm(b.ts),
                kind.as_str()
            )
        }
        status => format!("{date} is not a session ({status:?})"),
    };
    Ok(Finding::new(b.symbol, b.ts, RuleId::OutsideSession, why))
}

/// Moves from the previous bar's close to this bar's high or low above `pct` percent.
pub fn check_price_jumps(bars: &[Bar], pct: f64) -> Vec<Finding> {
    let mut out = Vec::new();
    for pair in bars.windows(2) {
        price_jump_finding(&pair[0], &pair[1], pct, &mut out);
    }
    out
}

/// The price-jump finding of `b` after `prev`, if any, appended to `out`.
#[inline]
fn price_jump_finding(prev: &Bar, b: &Bar, pct: f64, out: &mut Vec<Finding>) {
    // A non-positive price is its own finding; a jump to or from it would repeat it.
    if !prev.close.is_positive() || !b.low.is_positive() || !b.high.is_positive() {
        return;
    }
    let pc = prev.close.to_f64();
    let up = (b.high.to_f64() - pc) / pc * 100.0;
    let down = (pc - b.low.to_f64()) / pc * 100.0;
    let jump = up.max(down);
    if jump > pct {
        out.push(Finding::new(
            b.symbol,
            b.ts,
            RuleId::PriceJump,
            format!(
                "{jump:.2}% from previous close {} (threshold {pct}%)",
                prev.close
            ),
        ));
    }
}

/// Bars whose volume is an outlier: a robust z-score (median and MAD) of `ln(1 + volume)`
/// above `score`. The log keeps the opening and closing volume peaks of a normal day from
/// counting as outliers.
pub fn check_volume_outliers(bars: &[Bar], score: f64) -> Vec<Finding> {
    #[allow(clippy::cast_precision_loss)]
    let logs: Vec<f64> = bars.iter().map(|b| (b.volume as f64).ln_1p()).collect();
    let mut out = Vec::new();
    volume_outlier_findings(bars, logs, score, &mut out);
    out
}

/// The volume-outlier findings of `bars`, given `logs[i] = ln(1 + volume[i])`.
fn volume_outlier_findings(bars: &[Bar], mut logs: Vec<f64>, score: f64, out: &mut Vec<Finding>) {
    if bars.len() < 3 || logs.len() != bars.len() {
        return;
    }
    let median = median_in_place(&mut logs);
    // `logs` is reordered by the selection: recompute each bar's value from its volume
    // below rather than index into it, and reuse the buffer for the deviations.
    for x in &mut logs {
        *x = (*x - median).abs();
    }
    let mad = median_in_place(&mut logs);
    if mad <= f64::EPSILON {
        return;
    }
    // Only a volume near or above this can score above the threshold, so most bars skip the
    // logarithm; the margin keeps rounding from hiding a bar at the boundary.
    let floor = (median + score * mad / 0.6745).exp_m1() * (1.0 - 1e-9);
    for b in bars {
        #[allow(clippy::cast_precision_loss)]
        let v = b.volume as f64;
        if v < floor {
            continue;
        }
        let z = 0.6745 * (v.ln_1p() - median) / mad;
        if z > score {
            out.push(Finding::new(
                b.symbol,
                b.ts,
                RuleId::VolumeOutlier,
                format!(
                    "volume {} has robust score {z:.1} (threshold {score})",
                    b.volume
                ),
            ));
        }
    }
}

fn median_in_place(values: &mut [f64]) -> f64 {
    let mid = values.len() / 2;
    let (_, m, _) = values.select_nth_unstable_by(mid, f64::total_cmp);
    *m
}

/// Runs of at least `min_run` consecutive zero-volume bars, reported at the run's start.
pub fn check_zero_volume_runs(bars: &[Bar], min_run: u32) -> Vec<Finding> {
    let mut out = Vec::new();
    let min_run = usize::try_from(min_run.max(1)).unwrap_or(usize::MAX);
    let mut i = 0;
    while i < bars.len() {
        if bars[i].volume != 0 {
            i += 1;
            continue;
        }
        let start = i;
        while i < bars.len() && bars[i].volume == 0 {
            i += 1;
        }
        let len = i - start;
        if len >= min_run {
            out.push(Finding::new(
                bars[start].symbol,
                bars[start].ts,
                RuleId::ZeroVolumeRun,
                format!(
                    "{len} consecutive zero-volume bars until {}",
                    bars[i - 1].ts
                ),
            ));
        }
    }
    out
}

/// Coverage against the calendar over `dates`: a session with no bar is a missing session;
/// for one-minute bars, each gap inside a session is one missing-minutes finding.
pub fn check_coverage(
    symbol: Symbol,
    bars: &[Bar],
    frame: Timeframe,
    calendar: &TradingCalendar,
    kind: SessionKind,
    dates: DateRange,
) -> Result<Vec<Finding>, DomainError> {
    let mut out = Vec::new();
    for s in calendar.sessions(dates)? {
        let (open, close) = s.bounds(kind);
        // A wider bucket may start before the open (the 09:00 hour holds 09:30).
        let lo = bars.partition_point(|b| b.ts < bucket_start(frame, open));
        let hi = bars.partition_point(|b| b.ts < close);
        if lo >= hi {
            out.push(Finding::new(
                symbol,
                open,
                RuleId::MissingSession,
                format!("no bars for the {} session of {}", kind.as_str(), s.date),
            ));
            continue;
        }
        if frame != Timeframe::M1 {
            continue;
        }
        let mut expected = open;
        for b in &bars[lo..hi] {
            // A misaligned bar counts for the minute it falls in (it is reported by its own
            // rule); gaps are measured in whole minutes.
            let minute = b.ts.floor_to(NANOS_PER_MINUTE);
            if minute > expected {
                push_gap(&mut out, symbol, expected, minute);
            }
            expected = expected.max(minute.saturating_add_nanos(NANOS_PER_MINUTE));
        }
        if expected < close {
            push_gap(&mut out, symbol, expected, close);
        }
    }
    Ok(out)
}

fn push_gap(out: &mut Vec<Finding>, symbol: Symbol, from: Timestamp, to: Timestamp) {
    let minutes = (to.nanos() - from.nanos()) / NANOS_PER_MINUTE;
    let last = to.saturating_add_nanos(-NANOS_PER_MINUTE);
    out.push(Finding::new(
        symbol,
        from,
        RuleId::MissingMinutes,
        format!(
            "{minutes} minute(s) missing, {}-{} ET",
            ny_time_hhmm(from),
            ny_time_hhmm(last)
        ),
    ));
}

/// Bars of the same `ts` whose closes differ by more than `tolerance_pct` between two
/// providers' series of one symbol.
pub fn check_provider_agreement(first: &[Bar], second: &[Bar], tolerance_pct: f64) -> Vec<Finding> {
    let mut out = Vec::new();
    let (mut ia, mut ib) = (0, 0);
    while ia < first.len() && ib < second.len() {
        let (a, b) = (&first[ia], &second[ib]);
        match a.ts.cmp(&b.ts) {
            std::cmp::Ordering::Less => ia += 1,
            std::cmp::Ordering::Greater => ib += 1,
            std::cmp::Ordering::Equal => {
                let (close_a, close_b) = (a.close.to_f64(), b.close.to_f64());
                let base = close_a.abs().max(close_b.abs());
                if base > 0.0 {
                    let diff = (close_a - close_b).abs() / base * 100.0;
                    if diff > tolerance_pct {
                        out.push(Finding::new(
                            a.symbol,
                            a.ts,
                            RuleId::ProviderDisagreement,
                            format!("close {} vs {} ({diff:.3}%)", a.close, b.close),
                        ));
                    }
                }
                ia += 1;
                ib += 1;
            }
        }
    }
    out
}

/// Runs every single-provider rule over one symbol's sorted bars, expecting `dates` to be
/// covered. Findings come sorted by `ts`, then rule.
pub fn validate_bars(
    symbol: Symbol,
    bars: &[Bar],
    frame: Timeframe,
    calendar: &TradingCalendar,
    thresholds: &ValidationThresholds,
    dates: DateRange,
) -> Result<Vec<Finding>, DomainError> {
    let mut out = Vec::new();
    // The per-bar rules run in one pass over the bars (they are the bulk of the work on a
    // large lake); each emits exactly what its `check_*` function would, and the final sort
    // makes the order the same too.
    let sorted = fused_pass(bars, frame, calendar, thresholds, &mut out)?;
    if !sorted {
        // Out-of-order bars: the session rule's cursor walk assumes order, so use the
        // rule's own function, which handles any order.
        out.retain(|f| f.rule != RuleId::OutsideSession);
        out.extend(check_session_hours(
            bars,
            frame,
            calendar,
            thresholds.session,
        )?);
    }
    out.extend(check_coverage(
        symbol,
        bars,
        frame,
        calendar,
        thresholds.session,
        dates,
    )?);
    out.sort_by_key(|f| (f.ts, f.rule));
    Ok(out)
}

/// One pass applying the price, timestamp, session-hours (assuming sorted bars), price-jump,
/// zero-volume-run and volume-outlier rules. Returns whether the bars were sorted by `ts`.
fn fused_pass(
    bars: &[Bar],
    frame: Timeframe,
    calendar: &TradingCalendar,
    thresholds: &ValidationThresholds,
    out: &mut Vec<Finding>,
) -> Result<bool, DomainError> {
    let (Some(first), Some(last)) = (bars.first(), bars.last()) else {
        return Ok(true);
    };
    let kind = thresholds.session;
    let sessions = sessions_around(calendar, first.ts.min(last.ts), first.ts.max(last.ts))?;
    let bounds: Vec<(Timestamp, Timestamp)> = sessions.iter().map(|s| s.bounds(kind)).collect();
    let width = frame.intraday_nanos();
    let min_run = usize::try_from(thresholds.zero_volume_run.max(1)).unwrap_or(usize::MAX);
    let mut logs: Vec<f64> = Vec::with_capacity(bars.len());
    let mut sorted = true;
    let mut prev: Option<&Bar> = None;
    let mut latest = first.ts;
    let mut cursor = 0;
    let mut zero_run_start: Option<usize> = None;
    for (i, b) in bars.iter().enumerate() {
        price_findings(b, out);
        // Timestamps: alignment, duplicates, order (against the latest ts seen).
        let aligned = bucket_start(frame, b.ts);
        if aligned != b.ts {
            out.push(Finding::new(
                b.symbol,
                b.ts,
                RuleId::MisalignedTs,
                format!("not at the start of a {frame} bucket (expected {aligned})"),
            ));
        }
        if let Some(p) = prev {
            if b.ts == latest {
                out.push(Finding::new(
                    b.symbol,
                    b.ts,
                    RuleId::DuplicateTs,
                    "same ts as the previous bar".into(),
                ));
            } else if b.ts < latest {
                sorted = false;
                out.push(Finding::new(
                    b.symbol,
                    b.ts,
                    RuleId::UnsortedTs,
                    format!("earlier than the previous bar at {latest}"),
                ));
            }
            price_jump_finding(p, b, thresholds.price_jump_pct, out);
        }
        latest = latest.max(b.ts);
        prev = Some(b);
        // Session hours, with a cursor over the sessions (valid while sorted).
        if sorted {
            let inside = match width {
                None => sessions
                    .binary_search_by_key(&ny_date(b.ts), |s| s.date)
                    .is_ok(),
                Some(w) => {
                    let end = b.ts.saturating_add_nanos(w);
                    while cursor < bounds.len() && bounds[cursor].1 <= b.ts {
                        cursor += 1;
                    }
                    bounds.get(cursor).is_some_and(|(open, _)| *open < end)
                }
            };
            if !inside {
                out.push(outside_session_finding(b, calendar, kind)?);
            }
        }
        // Zero-volume runs.
        if b.volume == 0 {
            zero_run_start.get_or_insert(i);
        } else if let Some(start) = zero_run_start.take() {
            zero_run_finding(bars, start, i, min_run, out);
        }
        #[allow(clippy::cast_precision_loss)]
        logs.push((b.volume as f64).ln_1p());
    }
    if let Some(start) = zero_run_start {
        zero_run_finding(bars, start, bars.len(), min_run, out);
    }
    volume_outlier_findings(bars, logs, thresholds.volume_outlier_score, out);
    Ok(sorted)
}

/// The zero-volume-run finding of `bars[start..end]` when it is long enough.
fn zero_run_finding(
    bars: &[Bar],
    start: usize,
    end: usize,
    min_run: usize,
    out: &mut Vec<Finding>,
) {
    let len = end - start;
    if len >= min_run {
        out.push(Finding::new(
            bars[start].symbol,
            bars[start].ts,
            RuleId::ZeroVolumeRun,
            format!(
                "{len} consecutive zero-volume bars until {}",
                bars[end - 1].ts
            ),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::price::Price;

    fn sym() -> Symbol {
        Symbol::new("TEST").unwrap()
    }

    fn p(x: &str) -> Price {
        x.parse().unwrap()
    }

    /// A clean regular session of 2024-01-02 (14:30-21:00 UTC), flat-ish prices.
    fn clean_day() -> Vec<Bar> {
        let open = Timestamp::parse_rfc3339("2024-01-02T14:30:00Z").unwrap();
        (0..390)
            .map(|m| {
                let mut b = Bar::new(
                    sym(),
                    open.saturating_add_nanos(m * NANOS_PER_MINUTE),
                    p("100"),
                    p("100.5"),
                    p("99.5"),
                    p("100.1"),
                    1_000 + u64::try_from(m % 7).unwrap() * 100,
                );
                b.trade_count = Some(10);
                b
            })
            .collect()
    }

    fn day() -> DateRange {
        DateRange::parse("2024-01-02", "2024-01-02").unwrap()
    }

    fn run(bars: &[Bar], dates: DateRange) -> Vec<(RuleId, String)> {
        validate_bars(
            sym(),
            bars,
            Timeframe::M1,
            &TradingCalendar::xnys(),
            &ValidationThresholds::default(),
            dates,
        )
        .unwrap()
        .into_iter()
        .map(|f| (f.rule, f.ts.to_string()))
        .collect()
    }

    #[test]
    fn clean_session_has_no_findings() {
        assert!(run(&clean_day(), day()).is_empty());
    }

    #[test]
    fn each_price_rule_fires_alone() {
        let cases: [(&str, &str, &str, &str, RuleId); 5] = [
            ("100", "99", "99.5", "99.5", RuleId::HighBelowLow),
            ("100", "99.8", "99.5", "99.5", RuleId::HighBelowOpen),
            ("99.5", "99.8", "99.5", "100", RuleId::HighBelowClose),
            ("99.5", "100.5", "99.8", "100", RuleId::LowAboveOpen),
            ("100", "100.5", "99.8", "99.5", RuleId::LowAboveClose),
        ];
        for (o, h, l, c, rule) in cases {
            let mut b = clean_day()[0];
            (b.open, b.high, b.low, b.close) = (p(o), p(h), p(l), p(c));
            let rules: Vec<RuleId> = check_prices(&[b]).iter().map(|f| f.rule).collect();
            assert_eq!(rules, [rule], "each case breaks exactly one relation");
        }
        let mut zero = clean_day()[0];
        zero.low = Price::ZERO;
        let f = check_prices(&[zero]);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].rule, RuleId::NonPositivePrice);
        assert_eq!(f[0].detail, "non-positive low");
        assert_eq!(f[0].severity, Severity::Error);
    }

    #[test]
    fn sequence_rules() {
        let mut bars = clean_day();
        bars[10].ts = bars[10].ts.saturating_add_nanos(30 * 1_000_000_000);
        bars[20].ts = bars[19].ts;
        let f = check_timestamps(&bars, Timeframe::M1);
        let rules: Vec<RuleId> = f.iter().map(|x| x.rule).collect();
        assert_eq!(rules, [RuleId::MisalignedTs, RuleId::DuplicateTs]);
        let swapped = [bars[5], bars[4]];
        assert_eq!(
            check_timestamps(&swapped, Timeframe::M1)[0].rule,
            RuleId::UnsortedTs
        );
    }

    #[test]
    fn session_hours_and_holidays() {
        let cal = TradingCalendar::xnys();
        let mut bars = clean_day();
        let extra = Bar {
            ts: Timestamp::parse_rfc3339("2024-01-02T21:00:00Z").unwrap(),
            ..bars[0]
        };
        bars.push(extra);
        let f = check_session_hours(&bars, Timeframe::M1, &cal, SessionKind::Regular).unwrap();
        assert_eq!(f.len(), 1);
        assert!(
            f[0].detail.contains("16:00 ET is outside regular hours"),
            "{}",
            f[0].detail
        );
        assert!(
            check_session_hours(&bars, Timeframe::M1, &cal, SessionKind::Extended)
                .unwrap()
                .is_empty()
        );
        let holiday = Bar {
            ts: Timestamp::parse_rfc3339("2024-01-01T15:00:00Z").unwrap(),
            ..bars[0]
        };
        let f = check_session_hours(&[holiday], Timeframe::M1, &cal, SessionKind::Regular).unwrap();
        assert!(f[0].detail.contains("New Year"), "{}", f[0].detail);
        // An hourly bar at 09:00 ET overlaps the 09:30 open; a daily bar is dated by session.
        let hourly = Bar {
            ts: Timestamp::parse_rfc3339("2024-01-02T14:00:00Z").unwrap(),
            ..bars[0]
        };
        assert!(
            check_session_hours(&[hourly], Timeframe::H1, &cal, SessionKind::Regular)
                .unwrap()
                .is_empty()
        );
        let daily = Bar {
            ts: Timestamp::parse_rfc3339("2024-01-02T05:00:00Z").unwrap(),
            ..bars[0]
        };
        assert!(
            check_session_hours(&[daily], Timeframe::D1, &cal, SessionKind::Regular)
                .unwrap()
                .is_empty()
        );
        let weekend = Bar {
            ts: Timestamp::parse_rfc3339("2024-01-06T05:00:00Z").unwrap(),
            ..bars[0]
        };
        assert_eq!(
            check_session_hours(&[weekend], Timeframe::D1, &cal, SessionKind::Regular)
                .unwrap()
                .len(),
            1
        );
        assert!(
            check_session_hours(&[], Timeframe::M1, &cal, SessionKind::Regular)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn statistical_rules() {
        let mut bars = clean_day();
        bars[100].high = p("115");
        bars[200].volume = 5_000_000;
        for b in &mut bars[300..340] {
            b.volume = 0;
        }
        let got = run(&bars, day());
        let rules: Vec<RuleId> = got.iter().map(|x| x.0).collect();
        assert_eq!(
            rules,
            [
                RuleId::PriceJump,
                RuleId::VolumeOutlier,
                RuleId::ZeroVolumeRun
            ],
            "{got:?}"
        );
        assert_eq!(got[0].1, bars[100].ts.to_string());
        assert_eq!(got[2].1, bars[300].ts.to_string());
        assert!(check_volume_outliers(&bars[..2], 1.0).is_empty());
        let flat: Vec<Bar> = clean_day()
            .into_iter()
            .map(|b| Bar { volume: 5, ..b })
            .collect();
        assert!(check_volume_outliers(&flat, 1.0).is_empty(), "zero MAD");
    }

    #[test]
    fn coverage_rules() {
        let mut bars = clean_day();
        bars.drain(50..53);
        bars.truncate(bars.len() - 2);
        let dates = DateRange::parse("2024-01-02", "2024-01-03").unwrap();
        let f = validate_bars(
            sym(),
            &bars,
            Timeframe::M1,
            &TradingCalendar::xnys(),
            &ValidationThresholds::default(),
            dates,
        )
        .unwrap();
        let rules: Vec<(RuleId, String)> = f.iter().map(|x| (x.rule, x.detail.clone())).collect();
        assert_eq!(
            rules,
            [
                (
                    RuleId::MissingMinutes,
                    "3 minute(s) missing, 10:20-10:22 ET".to_string()
                ),
                (
                    RuleId::MissingMinutes,
                    "2 minute(s) missing, 15:58-15:59 ET".to_string()
                ),
                (
                    RuleId::MissingSession,
                    "no bars for the regular session of 2024-01-03".to_string()
                ),
            ]
        );
        // Wider frames report missing sessions only.
        let hourly = crate::resample::resample(&bars, Timeframe::H1).unwrap();
        let f = check_coverage(
            sym(),
            &hourly,
            Timeframe::H1,
            &TradingCalendar::xnys(),
            SessionKind::Regular,
            dates,
        )
        .unwrap();
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].rule, RuleId::MissingSession);
        let daily = crate::resample::resample(&bars, Timeframe::D1).unwrap();
        let f = check_coverage(
            sym(),
            &daily,
            Timeframe::D1,
            &TradingCalendar::xnys(),
            SessionKind::Regular,
            dates,
        )
        .unwrap();
        assert_eq!(f.len(), 1);
    }

    #[test]
    fn provider_agreement() {
        let a = clean_day();
        let mut b = clean_day();
        b[5].close = p("101");
        b.remove(7);
        let f = check_provider_agreement(&a, &b, 0.5);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].rule, RuleId::ProviderDisagreement);
        assert_eq!(f[0].severity, Severity::Warning);
    }

    #[test]
    fn rule_ids_round_trip() {
        for r in RuleId::ALL {
            assert_eq!(r.as_str().parse::<RuleId>().unwrap(), r);
            let json = serde_json::to_string(&r).unwrap();
            assert_eq!(serde_json::from_str::<RuleId>(&json).unwrap(), r);
            assert_eq!(r.to_string(), r.as_str());
        }
        assert!("nope".parse::<RuleId>().is_err());
        assert_eq!(Severity::Warning.to_string(), "warning");
        assert!(Severity::Error > Severity::Warning);
    }

    /// The definition `validate_bars` must keep: every rule's own function, concatenated and
    /// sorted by (ts, rule).
    fn rule_by_rule(bars: &[Bar], t: &ValidationThresholds, dates: DateRange) -> Vec<Finding> {
        let cal = TradingCalendar::xnys();
        let mut out = check_prices(bars);
        out.extend(check_timestamps(bars, Timeframe::M1));
        out.extend(check_session_hours(bars, Timeframe::M1, &cal, t.session).unwrap());
        out.extend(check_price_jumps(bars, t.price_jump_pct));
        out.extend(check_volume_outliers(bars, t.volume_outlier_score));
        out.extend(check_zero_volume_runs(bars, t.zero_volume_run));
        out.extend(check_coverage(sym(), bars, Timeframe::M1, &cal, t.session, dates).unwrap());
        out.sort_by_key(|f| (f.ts, f.rule));
        out
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]
        /// The fused pass finds exactly what the rules find one by one, on bars that are
        /// sorted or not, with gaps, duplicates, misaligned stamps, bad prices, zero-volume
        /// runs and volume spikes.
        #[test]
        fn fused_pass_equals_the_rules_one_by_one(
            steps in proptest::collection::vec(
                (0i64..4, 0u8..20, 0i64..3_000, 0u64..6, proptest::bool::ANY, 0u8..30),
                0..400,
            ),
            extended in proptest::bool::ANY,
        ) {
            // 2024-01-02 09:00 ET: before the regular open, so some bars are outside.
            let mut ts = Timestamp::parse_rfc3339("2024-01-02T14:00:00Z").unwrap().nanos();
            let mut bars = Vec::new();
            for (advance, shape, level, volume_kind, misalign, back) in steps {
                ts += advance * NANOS_PER_MINUTE;
                let mut at = ts;
                if misalign { at += 7_000_000_000; }
                if back == 0 { at -= 5 * NANOS_PER_MINUTE; } // out of order now and then
                let raw = |x: i64| Price::from_raw(x.max(0) * 10_000_000).unwrap();
                let base = 10_000 + level;
                let (o, h, l, c) = match shape {
                    0 => (base, base - 5, base + 5, base),      // high below low
                    1 => (base + 9, base + 5, base, base),      // high below open
                    2 => (base, base, base + 1, base - 3),      // low above close
                    3 => (0, base, 0, base),                    // non-positive
                    4 => (base, base * 2, base, base),          // jump
                    _ => (base, base + 10, base - 10, base + 1),
                };
                let volume = match volume_kind { 0 | 1 => 0, 2 => 50_000_000, _ => 1_000 + level.unsigned_abs() % 97 };
                bars.push(Bar::new(sym(), Timestamp::from_nanos(at), raw(o), raw(h), raw(l), raw(c), volume));
            }
            let t = ValidationThresholds {
                zero_volume_run: 3,
                session: if extended { SessionKind::Extended } else { SessionKind::Regular },
                ..ValidationThresholds::default()
            };
            let dates = DateRange::parse("2024-01-02", "2024-01-03").unwrap();
            let fused = validate_bars(sym(), &bars, Timeframe::M1, &TradingCalendar::xnys(), &t, dates).unwrap();
            proptest::prop_assert_eq!(fused, rule_by_rule(&bars, &t, dates));
        }
    }
}
