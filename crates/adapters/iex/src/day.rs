//! Reading one HIST file into bars: capture → frames → IEX-TP segments (sequence-checked)
//! → TOPS trade messages of the requested symbols → [`BarBuilder`].

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use marketpipe_domain::time::NANOS_PER_MINUTE;
use marketpipe_domain::{Bar, Symbol};
use tracing::{debug, warn};

use crate::bars::{BarBuilder, BuildStats, PricePolicy};
use crate::capture::{CaptureReader, LINKTYPE_ETHERNET};
use crate::error::{Gap, ReadError};
use crate::iextp::{Messages, SeqVerdict, SequenceTracker, TopsVersion, parse_segment};
use crate::net::{Frame, udp_payload};
use crate::tops::{
    END_OF_MESSAGES, SYSTEM_EVENT, SymbolFilter, TRADE_BREAK, TRADE_FIELDS_LEN, TRADE_REPORT,
    TradeMessage, symbol_key,
};

/// Gaps logged individually before the reader only counts them.
const GAPS_LOGGED: usize = 20;

/// How to read a day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReadOptions {
    /// The TOPS version to assume when the IEX-TP protocol id is not a known TOPS id;
    /// [`read_day`] takes it from the file name (`TOPS1.6` / `TOPS1.5`) when `None`.
    pub version_hint: Option<TopsVersion>,
    /// See [`BarBuilder::with_break_window`]; `None` (the default) applies every break.
    pub break_window: Option<Duration>,
    /// What minutes without a price-eligible trade become.
    pub price_policy: PricePolicy,
}

/// Counters of one read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReadStats {
    /// Uncompressed bytes read.
    pub bytes: u64,
    /// Frames read.
    pub packets: u64,
    /// Frames that were not IEX-TP (not IPv4/UDP, IPv4 fragments).
    pub other_frames: u64,
    /// IEX-TP segments with messages.
    pub segments: u64,
    /// Heartbeat segments.
    pub heartbeats: u64,
    /// Segments skipped as already seen.
    pub duplicate_segments: u64,
    /// Messages processed (after de-duplication).
    pub messages: u64,
    /// Trade Breaks of the requested symbols.
    pub breaks: u64,
    /// Whether the End of Messages system event was seen (a complete day ends with it).
    pub end_of_messages: bool,
    /// The bar builder's counters.
    pub build: BuildStats,
}

/// The result of reading one file: the bars, the sequence gaps, and the damage that stopped
/// the read early, if any. Bars of minutes that ended before the damage are kept; the
/// minute in which the damage occurred (and any later one) is dropped, as it may be
/// incomplete.
#[derive(Debug)]
pub struct DayRead {
    /// The file.
    pub file: String,
    /// The TOPS version read (`None` when no segment was read).
    pub version: Option<TopsVersion>,
    /// Bars, ordered by requested symbol, then time.
    pub bars: Vec<Bar>,
    /// Sequence gaps (data the file does not contain).
    pub gaps: Vec<Gap>,
    /// What stopped the read before the end of the file.
    pub damage: Option<ReadError>,
    /// Counters.
    pub stats: ReadStats,
}

impl DayRead {
    /// Whether the file was read to its end without gaps.
    pub fn is_clean(&self) -> bool {
        self.damage.is_none() && self.gaps.is_empty()
    }
}

/// Reads a HIST file (`*.pcap.gz` or `*.pcap`; the content decides) for `symbols`. The TOPS
/// version hint comes from the file name unless `options` sets one. `Err` only when the file
/// cannot be opened; every later failure is in [`DayRead::damage`].
pub fn read_day(
    path: &Path,
    symbols: &[Symbol],
    options: &ReadOptions,
) -> Result<DayRead, ReadError> {
    let name = path.display().to_string();
    let mut options = *options;
    if options.version_hint.is_none() {
        options.version_hint = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(TopsVersion::from_file_name);
    }
    let reader = match CaptureReader::open(path) {
        Err(e @ ReadError::Open { .. }) => return Err(e),
        other => other,
    };
    Ok(read_with(reader, name, symbols, &options))
}

/// Reads a capture from any byte stream (gzip or not); `name` is used in errors and gaps.
pub fn read_capture(
    reader: impl Read + Send + 'static,
    name: impl Into<String>,
    symbols: &[Symbol],
    options: &ReadOptions,
) -> DayRead {
    let name = name.into();
    let reader = CaptureReader::new(reader, name.clone());
    read_with(reader, name, symbols, options)
}

fn read_with(
    reader: Result<CaptureReader, ReadError>,
    file: String,
    symbols: &[Symbol],
    options: &ReadOptions,
) -> DayRead {
    let (filter, unusable) = SymbolFilter::new(symbols);
    for s in unusable {
        warn!(file = %file, symbol = %s, "symbol longer than 8 characters cannot appear in TOPS; it gets no bars");
    }
    let mut day = Day {
        file,
        options,
        filter,
        builder: BarBuilder::new(symbols, options.price_policy)
            .with_break_window(options.break_window),
        seq: SequenceTracker::new(),
        version: None,
        gaps: Vec::new(),
        stats: ReadStats::default(),
        last_send_time: None,
    };
    let damage = match reader {
        Ok(mut reader) => {
            let result = day.run(&mut reader);
            day.stats.bytes = reader.position();
            result.err()
        }
        Err(e) => Some(e),
    };
    day.finish(damage)
}

struct Day<'o> {
    file: String,
    options: &'o ReadOptions,
    filter: SymbolFilter,
    builder: BarBuilder,
    seq: SequenceTracker,
    version: Option<TopsVersion>,
    gaps: Vec<Gap>,
    stats: ReadStats,
    last_send_time: Option<i64>,
}

impl Day<'_> {
    fn run(&mut self, reader: &mut CaptureReader) -> Result<(), ReadError> {
        while let Some(packet) = reader.next_packet()? {
            self.stats.packets += 1;
            let offset = packet.offset;
            if packet.linktype != LINKTYPE_ETHERNET {
                return Err(ReadError::Unsupported {
                    file: self.file.clone(),
                    offset,
                    what: format!("link type {} (only Ethernet, 1, is read)", packet.linktype),
                });
            }
            match udp_payload(packet.data).map_err(|what| self.corrupt(offset, &what))? {
                Frame::Udp { payload, .. } => self.segment(offset, payload)?,
                Frame::Other(_) => self.stats.other_frames += 1,
            }
        }
        Ok(())
    }

    fn corrupt(&self, offset: u64, what: &dyn std::fmt::Display) -> ReadError {
        ReadError::Corrupt {
            file: self.file.clone(),
            offset,
            what: what.to_string(),
        }
    }

    fn segment(&mut self, offset: u64, segment: &[u8]) -> Result<(), ReadError> {
        let (header, payload) =
            parse_segment(segment).map_err(|what| self.corrupt(offset, &what))?;
        self.set_version(offset, header.protocol_id)?;
        let skip = match self.seq.check(&header) {
            SeqVerdict::InOrder => 0,
            SeqVerdict::Duplicate => {
                self.stats.duplicate_segments += 1;
                return Ok(());
            }
            SeqVerdict::Overlap(n) => {
                self.stats.duplicate_segments += 1;
                n
            }
            SeqVerdict::Gap { expected, got } => {
                let gap = Gap {
                    file: self.file.clone(),
                    offset,
                    expected,
                    got,
                };
                if self.gaps.len() < GAPS_LOGGED {
                    warn!(file = %gap.file, offset, expected, got, "{gap}; bars near this point may miss trades");
                }
                self.gaps.push(gap);
                0
            }
        };
        self.last_send_time = Some(header.send_time);
        if header.message_count == 0 {
            self.stats.heartbeats += 1;
        } else {
            self.stats.segments += 1;
            for (k, message) in Messages::new(payload, header.message_count).enumerate() {
                let message = message.map_err(|what| self.corrupt(offset, &what))?;
                if k < usize::from(skip) {
                    continue;
                }
                self.stats.messages += 1;
                self.message(offset, message)?;
            }
        }
        // The clock moves only once the segment's messages are in: a minute is never
        // finalised under trades of the segment that announced its end.
        self.builder.advance(header.send_time);
        Ok(())
    }

    #[inline]
    fn message(&mut self, offset: u64, m: &[u8]) -> Result<(), ReadError> {
        let Some(&kind) = m.first() else {
            return Ok(());
        };
        match kind {
            TRADE_REPORT | TRADE_BREAK => {
                if m.len() < TRADE_FIELDS_LEN {
                    return Err(self.corrupt(
                        offset,
                        &format_args!(
                            "TOPS {} message of {} bytes, shorter than its {TRADE_FIELDS_LEN}-byte layout",
                            if kind == TRADE_REPORT { "Trade Report" } else { "Trade Break" },
                            m.len()
                        ),
                    ));
                }
                let Some(index) = self.filter.get(symbol_key(m)) else {
                    return Ok(());
                };
                let trade = TradeMessage::decode(m);
                if kind == TRADE_REPORT {
                    self.builder.trade(index, &trade);
                } else {
                    self.stats.breaks += 1;
                    if !self.builder.trade_break(index, &trade) {
                        warn!(
                            file = %self.file,
                            offset,
                            trade_id = trade.trade_id,
                            "trade break for a trade that is not held (not reported, or older than the break window); not applied"
                        );
                    }
                }
            }
            SYSTEM_EVENT if m.get(1) == Some(&END_OF_MESSAGES) => self.stats.end_of_messages = true,
            _ => {}
        }
        Ok(())
    }

    fn set_version(&mut self, offset: u64, protocol_id: u16) -> Result<(), ReadError> {
        let version = match (
            TopsVersion::from_protocol_id(protocol_id),
            self.options.version_hint,
        ) {
            (Some(v), hint) => {
                if hint.is_some_and(|h| h != v) && self.version.is_none() {
                    warn!(file = %self.file, "the file name says {:?} but the IEX-TP protocol id {protocol_id:#06x} says {v}; using {v}", hint);
                }
                v
            }
            (None, Some(hint)) => {
                if self.version.is_none() {
                    warn!(file = %self.file, "unknown IEX-TP message protocol id {protocol_id:#06x}; decoding as {hint} (from the file name)");
                }
                hint
            }
            (None, None) => {
                return Err(ReadError::Unsupported {
                    file: self.file.clone(),
                    offset,
                    what: format!(
                        "IEX-TP message protocol id {protocol_id:#06x} is not TOPS (0x8003 = TOPS 1.6, 0x8002 = TOPS 1.5)"
                    ),
                });
            }
        };
        if self.version.is_some_and(|v| v != version) {
            warn!(file = %self.file, offset, "TOPS version changes mid-file to {version}");
        }
        self.version = Some(version);
        Ok(())
    }

    fn finish(self, damage: Option<ReadError>) -> DayRead {
        let cutoff = damage.as_ref().map(|_| {
            self.last_send_time.map_or(i64::MIN, |t| {
                t.div_euclid(NANOS_PER_MINUTE) * NANOS_PER_MINUTE
            })
        });
        let (bars, build) = self.builder.finish(cutoff);
        let mut stats = self.stats;
        stats.build = build;
        if let Some(e) = &damage {
            warn!(file = %self.file, bars = bars.len(), "{e}; keeping the bars of the minutes before the damage");
        } else if !stats.end_of_messages && stats.segments > 0 {
            debug!(file = %self.file, "no End of Messages system event: the capture may end early");
        }
        if self.gaps.len() > GAPS_LOGGED {
            warn!(file = %self.file, gaps = self.gaps.len(), "sequence gaps (only the first {GAPS_LOGGED} were logged)");
        }
        if build.unmatched_breaks > 0 || build.invalid_trades > 0 || build.late_trades > 0 {
            warn!(
                file = %self.file,
                unmatched_breaks = build.unmatched_breaks,
                invalid_trades = build.invalid_trades,
                late_trades = build.late_trades,
                "trades or breaks not applied"
            );
        }
        DayRead {
            file: self.file,
            version: self.version,
            bars,
            gaps: self.gaps,
            damage,
            stats,
        }
    }
}
