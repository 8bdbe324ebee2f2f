//! Synthetic IEX HIST captures for tests and benchmarks.
//!
//! Real HIST files may not be committed (IEX terms), so tests generate their own: a list of
//! [`HistMessage`]s (trade reports, trade breaks, quotes, system events, arbitrary raw
//! messages to be skipped) is packed into IEX-TP v1 segments (up to
//! [`CaptureOptions::messages_per_segment`] messages each, sequence-numbered, with an
//! optional leading heartbeat), wrapped in Ethernet (optionally with stacked VLAN tags) →
//! IPv4 (optionally with header options) → UDP port 10377, and written as classic pcap
//! (either byte order, µs or ns) or pcap-ng (either byte order, any decimal `if_tsresol`,
//! Enhanced or Simple Packet Blocks, optionally with extra blocks to skip and a second
//! section), gzip-compressed or not.
//!
//! Faults ([`Fault`]) inject a sequence gap, a duplicated segment, a corrupt record length,
//! a corrupt IEX-TP header, or truncate the finished file. [`WriteSummary::records`] gives
//! the uncompressed byte offset of every packet record, so a test can check the position an
//! error names.
//!
//! [`build_capture`] writes to memory, [`write_capture`] to a file; [`HistWriter`] streams
//! (for captures of any size: it keeps no per-record state unless
//! [`CaptureOptions::record_index`] is set).
//!
//! ```
//! use marketpipe_testkit::hist::{build_capture, CaptureOptions, HistMessage, TradeSpec};
//! let trades = vec![HistMessage::Trade(TradeSpec::new("AAPL", 1_710_509_400_000_000_000, 1_726_200, 100))];
//! let gzipped = build_capture(&trades, &CaptureOptions::default()).unwrap();
//! assert_eq!(&gzipped.bytes[..2], &[0x1f, 0x8b]); // gzip, by default
//! let plain = CaptureOptions { gzip: false, ..CaptureOptions::default() };
//! let capture = build_capture(&trades, &plain).unwrap();
//! assert_eq!(&capture.bytes[..4], &[0x0a, 0x0d, 0x0d, 0x0a]); // pcap-ng, by default
//! ```

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use flate2::Compression;
use flate2::write::GzEncoder;

/// UDP port of the TOPS feed.
pub const TOPS_UDP_PORT: u16 = 10377;
/// IEX-TP message protocol id of TOPS 1.6.
pub const PROTOCOL_TOPS_1_6: u16 = 0x8003;
/// IEX-TP message protocol id of TOPS 1.5.
pub const PROTOCOL_TOPS_1_5: u16 = 0x8002;

/// Trade sale-condition flags.
pub mod flags {
    /// Intermarket Sweep Order.
    pub const ISO: u8 = 0x80;
    /// Extended hours (Form T).
    pub const EXTENDED_HOURS: u8 = 0x40;
    /// Odd lot.
    pub const ODD_LOT: u8 = 0x20;
    /// Trade-through exempt.
    pub const TRADE_THROUGH_EXEMPT: u8 = 0x10;
    /// Single-price cross (TOPS 1.6).
    pub const SINGLE_PRICE_CROSS: u8 = 0x08;
}

/// The TOPS layout to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Tops {
    /// TOPS 1.5: protocol id 0x8002, trade messages of 42 bytes (4 reserved at the end).
    V1_5,
    /// TOPS 1.6: protocol id 0x8003, trade messages of 38 bytes.
    #[default]
    V1_6,
}

impl Tops {
    /// The IEX-TP message protocol id.
    pub const fn protocol_id(self) -> u16 {
        match self {
            Self::V1_5 => PROTOCOL_TOPS_1_5,
            Self::V1_6 => PROTOCOL_TOPS_1_6,
        }
    }

    /// `"1.5"` or `"1.6"`, as in file names.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::V1_5 => "1.5",
            Self::V1_6 => "1.6",
        }
    }
}

/// The capture container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    /// Classic libpcap.
    Pcap {
        /// Write big-endian (magic `a1 b2 c3 d4` in file order).
        big_endian: bool,
        /// Nanosecond timestamps (magic `a1b23c4d`) instead of microseconds.
        nanosecond: bool,
    },
    /// pcap-ng: SHB, IDB (Ethernet, snaplen 65535, `if_tsresol`), then packet blocks.
    PcapNg {
        /// Write the section big-endian.
        big_endian: bool,
        /// Decimal `if_tsresol` exponent (6 = µs, 9 = ns).
        tsresol: u8,
        /// Simple Packet Blocks instead of Enhanced Packet Blocks.
        simple_packets: bool,
        /// Add blocks a reader must skip (Name Resolution, Interface Statistics, a custom
        /// block) after the IDB, and start a second section (new SHB, opposite byte order,
        /// new IDB with `if_tsresol` 9) before segment 2.
        extra_blocks: bool,
    },
}

impl Default for Container {
    /// pcap-ng, little-endian, µs: what recent HIST files are.
    fn default() -> Self {
        Self::PcapNg {
            big_endian: false,
            tsresol: 6,
            simple_packets: false,
            extra_blocks: false,
        }
    }
}

/// A Trade Report or Trade Break.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TradeSpec {
    /// Symbol (space-padded to 8 bytes; longer text is cut).
    pub symbol: String,
    /// Event time, ns since the Unix epoch.
    pub ts_ns: i64,
    /// Price in 1e-4 dollars (`1_726_200` = $172.62).
    pub price: i64,
    /// Shares.
    pub size: u32,
    /// Sale-condition flags ([`flags`]).
    pub flags: u8,
    /// Trade id.
    pub trade_id: i64,
}

impl TradeSpec {
    /// A regular (flag-free) trade with id 0.
    pub fn new(symbol: &str, ts_ns: i64, price: i64, size: u32) -> Self {
        Self {
            symbol: symbol.to_owned(),
            ts_ns,
            price,
            size,
            flags: 0,
            trade_id: 0,
        }
    }

    /// With these sale-condition flags.
    #[must_use]
    pub const fn with_flags(mut self, flags: u8) -> Self {
        self.flags = flags;
        self
    }

    /// With this trade id.
    #[must_use]
    pub const fn with_id(mut self, trade_id: i64) -> Self {
        self.trade_id = trade_id;
        self
    }
}

/// One TOPS message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HistMessage {
    /// Trade Report (`T`).
    Trade(TradeSpec),
    /// Trade Break (`B`): same layout; `trade_id` names the broken trade, `ts_ns` is the
    /// time of the break.
    Break(TradeSpec),
    /// Quote Update (`Q`, 42 bytes).
    Quote {
        /// Symbol.
        symbol: String,
        /// Event time.
        ts_ns: i64,
        /// Bid price (1e-4).
        bid: i64,
        /// Ask price (1e-4).
        ask: i64,
        /// Bid size.
        bid_size: u32,
        /// Ask size.
        ask_size: u32,
    },
    /// System Event (`S`, 10 bytes), e.g. code `b'C'` = end of messages.
    SystemEvent {
        /// Event code.
        code: u8,
        /// Event time.
        ts_ns: i64,
    },
    /// Any message bytes (an unknown type, a lengthened message, a short one).
    Raw {
        /// Time used for the segment's send time.
        ts_ns: i64,
        /// The message data (type byte first).
        bytes: Vec<u8>,
    },
}

impl HistMessage {
    /// The message's event time.
    pub const fn ts_ns(&self) -> i64 {
        match self {
            Self::Trade(t) | Self::Break(t) => t.ts_ns,
            Self::Quote { ts_ns, .. }
            | Self::SystemEvent { ts_ns, .. }
            | Self::Raw { ts_ns, .. } => *ts_ns,
        }
    }

    /// The message data as TOPS `tops` lays it out (without the block length).
    pub fn encode(&self, tops: Tops) -> Vec<u8> {
        let mut m = Vec::with_capacity(42);
        match self {
            Self::Trade(t) | Self::Break(t) => {
                m.push(if matches!(self, Self::Trade(_)) {
                    b'T'
                } else {
                    b'B'
                });
                m.push(t.flags);
                m.extend_from_slice(&t.ts_ns.to_le_bytes());
                m.extend_from_slice(&symbol_field(&t.symbol));
                m.extend_from_slice(&t.size.to_le_bytes());
                m.extend_from_slice(&t.price.to_le_bytes());
                m.extend_from_slice(&t.trade_id.to_le_bytes());
                if tops == Tops::V1_5 {
                    m.extend_from_slice(&[0; 4]);
                }
            }
            Self::Quote {
                symbol,
                ts_ns,
                bid,
                ask,
                bid_size,
                ask_size,
            } => {
                m.push(b'Q');
                m.push(0);
                m.extend_from_slice(&ts_ns.to_le_bytes());
                m.extend_from_slice(&symbol_field(symbol));
                m.extend_from_slice(&bid_size.to_le_bytes());
                m.extend_from_slice(&bid.to_le_bytes());
                m.extend_from_slice(&ask.to_le_bytes());
                m.extend_from_slice(&ask_size.to_le_bytes());
            }
            Self::SystemEvent { code, ts_ns } => {
                m.push(b'S');
                m.push(*code);
                m.extend_from_slice(&ts_ns.to_le_bytes());
            }
            Self::Raw { bytes, .. } => m.extend_from_slice(bytes),
        }
        m
    }
}

/// The 8-byte, left-justified, space-padded symbol field.
pub fn symbol_field(symbol: &str) -> [u8; 8] {
    let mut f = [b' '; 8];
    for (d, s) in f.iter_mut().zip(symbol.bytes()) {
        *d = s;
    }
    f
}

/// A damage to inject. Segment numbers count every IEX-TP segment written, heartbeats
/// included, from 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Skip `missing` sequence numbers before segment `before_segment` (messages lost).
    SequenceGap {
        /// The segment after the gap.
        before_segment: usize,
        /// How many sequence numbers are skipped.
        missing: i64,
    },
    /// Write segment `segment` twice (a retransmission the reader must skip).
    DuplicateSegment {
        /// The segment.
        segment: usize,
    },
    /// Write an impossible length (`0xFFFF_FFF0`) in the pcap record header or pcap-ng
    /// block header carrying segment `segment`.
    CorruptRecordLength {
        /// The segment.
        segment: usize,
    },
    /// Write IEX-TP version `0xEE` in the header of segment `segment`.
    CorruptSegmentHeader {
        /// The segment.
        segment: usize,
    },
    /// Keep only the first `keep_bytes` bytes of the finished file (compressed bytes when
    /// gzip'd). Applied by [`build_capture`] and [`write_capture`]; [`HistWriter::new`]
    /// refuses it.
    TruncateOutput {
        /// Bytes kept.
        keep_bytes: usize,
    },
}

/// How to write a capture.
// Independent switches of a test fixture, not a state machine.
#[allow(clippy::struct_excessive_bools)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureOptions {
    /// pcap or pcap-ng.
    pub container: Container,
    /// TOPS 1.5 or 1.6.
    pub tops: Tops,
    /// Gzip the output.
    pub gzip: bool,
    /// Gzip level (0–9).
    pub gzip_level: u32,
    /// VLAN ids, outermost first: outer tags use TPID 0x88a8, the innermost 0x8100.
    pub vlan_tags: Vec<u16>,
    /// Add 4 bytes of IPv4 header options (IHL 6), so the payload is not at byte 42.
    pub ip_options: bool,
    /// Bytes of Ethernet padding after the IP packet.
    pub frame_padding: usize,
    /// Messages per IEX-TP segment (at least 1).
    pub messages_per_segment: usize,
    /// Start with a heartbeat segment (as real files do).
    pub heartbeat_first: bool,
    /// IEX-TP session id.
    pub session_id: u32,
    /// Sequence number of the first message.
    pub first_seq: i64,
    /// Write this message protocol id instead of the TOPS version's (e.g. DEEP's
    /// `0x8004`, or an unknown id to test version detection by file name).
    pub protocol_id: Option<u16>,
    /// Damage to inject.
    pub faults: Vec<Fault>,
    /// Keep a [`SegmentRecord`] per packet record in the summary.
    pub record_index: bool,
}

impl Default for CaptureOptions {
    fn default() -> Self {
        Self {
            container: Container::default(),
            tops: Tops::V1_6,
            gzip: true,
            gzip_level: 6,
            vlan_tags: Vec::new(),
            ip_options: false,
            frame_padding: 0,
            messages_per_segment: 4,
            heartbeat_first: true,
            session_id: 0x448e_0000,
            first_seq: 1,
            protocol_id: None,
            faults: Vec::new(),
            record_index: true,
        }
    }
}

/// Where one packet record went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentRecord {
    /// Segment number (a duplicate repeats its original's number).
    pub segment: usize,
    /// Offset of the record (pcap) or block (pcap-ng) in the uncompressed stream.
    pub offset: u64,
    /// First sequence number in the segment header.
    pub first_seq: i64,
    /// Messages in the segment.
    pub messages: u16,
    /// Send time in the segment header.
    pub send_time: i64,
}

/// What was written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteSummary {
    /// Bytes of the uncompressed capture.
    pub uncompressed_bytes: u64,
    /// Bytes of the file (compressed when gzip'd; before any truncation).
    pub file_bytes: u64,
    /// Segments written (heartbeats included, duplicates not).
    pub segments: usize,
    /// Messages written.
    pub messages: u64,
    /// One entry per packet record, when [`CaptureOptions::record_index`] is set.
    pub records: Vec<SegmentRecord>,
}

impl WriteSummary {
    /// The record of segment `segment` (its first copy).
    pub fn record_of(&self, segment: usize) -> Option<&SegmentRecord> {
        self.records.iter().find(|r| r.segment == segment)
    }
}

/// A capture in memory.
#[derive(Debug, Clone)]
pub struct Capture {
    /// The file's bytes (after truncation, if asked).
    pub bytes: Vec<u8>,
    /// What was written.
    pub summary: WriteSummary,
}

/// Writes `messages` as a capture in memory.
pub fn build_capture(messages: &[HistMessage], options: &CaptureOptions) -> io::Result<Capture> {
    let mut streaming = options.clone();
    streaming
        .faults
        .retain(|f| !matches!(f, Fault::TruncateOutput { .. }));
    let mut w = HistWriter::new(Vec::new(), streaming)?;
    for m in messages {
        w.push(m)?;
    }
    let (mut bytes, summary) = w.finish()?;
    for f in &options.faults {
        if let Fault::TruncateOutput { keep_bytes } = f {
            bytes.truncate(*keep_bytes);
        }
    }
    Ok(Capture { bytes, summary })
}

/// Writes `messages` as a capture file at `path`.
pub fn write_capture(
    path: &Path,
    messages: &[HistMessage],
    options: &CaptureOptions,
) -> io::Result<WriteSummary> {
    let capture = build_capture(messages, options)?;
    std::fs::write(path, &capture.bytes)?;
    Ok(capture.summary)
}

enum Sink<W: Write> {
    Plain(W),
    // Boxed: the encoder's state is large next to a plain writer.
    Gzip(Box<GzEncoder<W>>),
}

impl<W: Write> Sink<W> {
    fn write_all(&mut self, b: &[u8]) -> io::Result<()> {
        match self {
            Self::Plain(w) => w.write_all(b),
            Self::Gzip(w) => w.write_all(b),
        }
    }
}

/// Counts bytes reaching the inner writer (the file size).
struct Counting<W> {
    inner: W,
    count: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A streaming capture writer. Push messages; they are packed into segments as they come.
pub struct HistWriter<W: Write> {
    sink: Sink<Counting<W>>,
    options: CaptureOptions,
    big_endian: bool,
    pos: u64,
    next_seq: i64,
    stream_offset: i64,
    segment: usize,
    last_send: i64,
    pending: Vec<u8>,
    pending_count: u16,
    pending_max_ts: i64,
    started: bool,
    summary: WriteSummary,
    frame: Vec<u8>,
}

impl<W: Write> std::fmt::Debug for HistWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HistWriter")
            .field("pos", &self.pos)
            .field("segment", &self.segment)
            .finish_non_exhaustive()
    }
}

impl<W: Write> HistWriter<W> {
    /// A writer to `out`; writes the file header now.
    pub fn new(out: W, options: CaptureOptions) -> io::Result<Self> {
        if options
            .faults
            .iter()
            .any(|f| matches!(f, Fault::TruncateOutput { .. }))
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "Fault::TruncateOutput is applied by build_capture/write_capture, not by the streaming writer",
            ));
        }
        let counting = Counting {
            inner: out,
            count: 0,
        };
        let sink = if options.gzip {
            Sink::Gzip(Box::new(GzEncoder::new(
                counting,
                Compression::new(options.gzip_level.min(9)),
            )))
        } else {
            Sink::Plain(counting)
        };
        let big_endian = match options.container {
            Container::Pcap { big_endian, .. } | Container::PcapNg { big_endian, .. } => big_endian,
        };
        let mut w = Self {
            sink,
            next_seq: options.first_seq,
            big_endian,
            options,
            pos: 0,
            stream_offset: 0,
            segment: 0,
            last_send: i64::MIN,
            pending: Vec::with_capacity(2048),
            pending_count: 0,
            pending_max_ts: i64::MIN,
            started: false,
            summary: WriteSummary::default(),
            frame: Vec::with_capacity(2048),
        };
        w.write_file_header()?;
        Ok(w)
    }

    fn emit(&mut self, b: &[u8]) -> io::Result<()> {
        self.pos += b.len() as u64;
        self.sink.write_all(b)
    }

    fn u16b(&self, v: u16) -> [u8; 2] {
        if self.big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }

    fn u32b(&self, v: u32) -> [u8; 4] {
        if self.big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }

    fn write_file_header(&mut self) -> io::Result<()> {
        match self.options.container {
            Container::Pcap { nanosecond, .. } => {
                let magic: u32 = if nanosecond { 0xa1b2_3c4d } else { 0xa1b2_c3d4 };
                let mut h = Vec::with_capacity(24);
                h.extend_from_slice(&self.u32b(magic));
                h.extend_from_slice(&self.u16b(2));
                h.extend_from_slice(&self.u16b(4));
                h.extend_from_slice(&self.u32b(0)); // thiszone
                h.extend_from_slice(&self.u32b(0)); // sigfigs
                h.extend_from_slice(&self.u32b(65_535)); // snaplen
                h.extend_from_slice(&self.u32b(1)); // Ethernet
                self.emit(&h)
            }
            Container::PcapNg {
                tsresol,
                extra_blocks,
                ..
            } => {
                self.write_section(tsresol)?;
                if extra_blocks {
                    self.write_skippable_blocks()?;
                }
                Ok(())
            }
        }
    }

    /// A pcap-ng block of `block_type` with `body` (padded to 4 bytes).
    fn block(&self, block_type: u32, body: &[u8]) -> Vec<u8> {
        let padded = body.len().div_ceil(4) * 4;
        let total = u32::try_from(12 + padded).unwrap_or(u32::MAX);
        let mut b = Vec::with_capacity(12 + padded);
        b.extend_from_slice(&self.u32b(block_type));
        b.extend_from_slice(&self.u32b(total));
        b.extend_from_slice(body);
        b.resize(8 + padded, 0);
        b.extend_from_slice(&self.u32b(total));
        b
    }

    fn write_section(&mut self, tsresol: u8) -> io::Result<()> {
        let mut shb = Vec::new();
        shb.extend_from_slice(&self.u32b(0x1A2B_3C4D));
        shb.extend_from_slice(&self.u16b(1));
        shb.extend_from_slice(&self.u16b(0));
        let section_len: i64 = -1;
        shb.extend_from_slice(&if self.big_endian {
            section_len.to_be_bytes()
        } else {
            section_len.to_le_bytes()
        });
        let comment = b"File created by merging: synthetic marketpipe-testkit capture";
        shb.extend_from_slice(&self.u16b(1));
        shb.extend_from_slice(&self.u16b(u16::try_from(comment.len()).unwrap_or(0)));
        shb.extend_from_slice(comment);
        shb.resize(shb.len().div_ceil(4) * 4, 0);
        shb.extend_from_slice(&[0, 0, 0, 0]); // opt_endofopt
        let block = self.block(0x0A0D_0D0A, &shb);
        self.emit(&block)?;
        let mut idb = Vec::new();
        idb.extend_from_slice(&self.u16b(1)); // Ethernet
        idb.extend_from_slice(&self.u16b(0));
        idb.extend_from_slice(&self.u32b(65_535));
        idb.extend_from_slice(&self.u16b(2)); // if_name
        idb.extend_from_slice(&self.u16b(4));
        idb.extend_from_slice(b"eth1");
        idb.extend_from_slice(&self.u16b(9)); // if_tsresol
        idb.extend_from_slice(&self.u16b(1));
        idb.extend_from_slice(&[tsresol, 0, 0, 0]);
        idb.extend_from_slice(&[0, 0, 0, 0]);
        let block = self.block(1, &idb);
        self.emit(&block)
    }

    fn write_skippable_blocks(&mut self) -> io::Result<()> {
        // Name Resolution Block with only the end record.
        let nrb = self.block(4, &[0, 0, 0, 0]);
        self.emit(&nrb)?;
        // Interface Statistics Block: interface 0, timestamp 0, no options.
        let mut isb = Vec::new();
        isb.extend_from_slice(&self.u32b(0));
        isb.extend_from_slice(&self.u32b(0));
        isb.extend_from_slice(&self.u32b(0));
        let isb = self.block(5, &isb);
        self.emit(&isb)?;
        // A custom block (PEN 0 and a few bytes).
        let custom = self.block(0x0000_0BAD, &[0, 0, 0, 0, 1, 2, 3]);
        self.emit(&custom)
    }

    /// Bytes of the uncompressed capture written so far (pending messages excluded).
    pub const fn uncompressed_bytes(&self) -> u64 {
        self.pos
    }

    /// Adds a message; a full segment is written out.
    pub fn push(&mut self, message: &HistMessage) -> io::Result<()> {
        if !self.started {
            self.started = true;
            if self.options.heartbeat_first {
                self.heartbeat(message.ts_ns().saturating_sub(1_000_000_000))?;
            }
        }
        let data = message.encode(self.options.tops);
        if self.pending.len() + data.len() + 2 > 60_000 {
            self.flush_segment()?;
        }
        let len = u16::try_from(data.len()).unwrap_or(u16::MAX);
        self.pending.extend_from_slice(&len.to_le_bytes());
        self.pending.extend_from_slice(&data);
        self.pending_count += 1;
        self.pending_max_ts = self.pending_max_ts.max(message.ts_ns());
        self.summary.messages += 1;
        if usize::from(self.pending_count) >= self.options.messages_per_segment.max(1) {
            self.flush_segment()?;
        }
        Ok(())
    }

    /// Writes a heartbeat segment (no messages) sent at `send_time`, after the pending
    /// messages.
    pub fn heartbeat(&mut self, send_time: i64) -> io::Result<()> {
        self.flush_segment()?;
        self.write_segment(&[], 0, send_time)
    }

    /// Writes the pending messages as a segment.
    pub fn flush_segment(&mut self) -> io::Result<()> {
        if self.pending_count == 0 {
            return Ok(());
        }
        let payload = std::mem::take(&mut self.pending);
        let count = self.pending_count;
        let send = self.pending_max_ts.saturating_add(20_000);
        self.pending_count = 0;
        self.pending_max_ts = i64::MIN;
        let result = self.write_segment(&payload, count, send);
        self.pending = payload;
        self.pending.clear();
        result
    }

    fn has_fault(&self, pred: impl Fn(&Fault) -> bool) -> bool {
        self.options.faults.iter().any(pred)
    }

    fn write_segment(&mut self, payload: &[u8], count: u16, send_time: i64) -> io::Result<()> {
        let n = self.segment;
        self.segment += 1;
        self.summary.segments += 1;
        if let Container::PcapNg {
            extra_blocks: true, ..
        } = self.options.container
            && n == 2
        {
            // A second section, in the other byte order, with ns timestamps.
            self.big_endian = !self.big_endian;
            self.write_section(9)?;
        }
        for f in &self.options.faults {
            if let Fault::SequenceGap {
                before_segment,
                missing,
            } = f
                && *before_segment == n
            {
                self.next_seq += missing;
            }
        }
        let send_time = send_time.max(self.last_send);
        self.last_send = send_time;
        let first_seq = self.next_seq;
        self.next_seq += i64::from(count);
        let mut seg = Vec::with_capacity(40 + payload.len());
        seg.push(
            if self.has_fault(|f| *f == Fault::CorruptSegmentHeader { segment: n }) {
                0xEE
            } else {
                1
            },
        );
        seg.push(0);
        let protocol = self
            .options
            .protocol_id
            .unwrap_or_else(|| self.options.tops.protocol_id());
        seg.extend_from_slice(&protocol.to_le_bytes());
        seg.extend_from_slice(&1u32.to_le_bytes());
        seg.extend_from_slice(&self.options.session_id.to_le_bytes());
        seg.extend_from_slice(
            &u16::try_from(payload.len())
                .unwrap_or(u16::MAX)
                .to_le_bytes(),
        );
        seg.extend_from_slice(&count.to_le_bytes());
        seg.extend_from_slice(&self.stream_offset.to_le_bytes());
        seg.extend_from_slice(&first_seq.to_le_bytes());
        seg.extend_from_slice(&send_time.to_le_bytes());
        seg.extend_from_slice(payload);
        self.stream_offset += i64::try_from(payload.len()).unwrap_or(0);
        self.build_frame(&seg);
        let corrupt_len = self.has_fault(|f| *f == Fault::CorruptRecordLength { segment: n });
        let copies = if self.has_fault(|f| *f == Fault::DuplicateSegment { segment: n }) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            if self.options.record_index {
                self.summary.records.push(SegmentRecord {
                    segment: n,
                    offset: self.pos,
                    first_seq,
                    messages: count,
                    send_time,
                });
            }
            self.write_record(send_time, corrupt_len)?;
        }
        Ok(())
    }

    /// Ethernet / VLAN / IPv4 / UDP around `segment`, into `self.frame`.
    fn build_frame(&mut self, segment: &[u8]) {
        let f = &mut self.frame;
        f.clear();
        f.extend_from_slice(&[0x01, 0x00, 0x5e, 0x57, 0x15, 0x04]); // 233.215.21.4 multicast MAC
        f.extend_from_slice(&[0x02, 0x00, 0x00, 0x00, 0x00, 0x01]);
        let tags = &self.options.vlan_tags;
        for (i, vid) in tags.iter().enumerate() {
            let tpid: u16 = if i + 1 == tags.len() { 0x8100 } else { 0x88a8 };
            f.extend_from_slice(&tpid.to_be_bytes());
            f.extend_from_slice(&(vid & 0x0FFF).to_be_bytes());
        }
        f.extend_from_slice(&0x0800u16.to_be_bytes());
        let ihl: u8 = if self.options.ip_options { 6 } else { 5 };
        let ip_start = f.len();
        let total = usize::from(ihl) * 4 + 8 + segment.len();
        let total16 = u16::try_from(total).unwrap_or(u16::MAX);
        f.push(0x40 | ihl);
        f.push(0);
        f.extend_from_slice(&total16.to_be_bytes());
        f.extend_from_slice(&[0, 0, 0x40, 0]); // id, DF
        f.push(64);
        f.push(17);
        f.extend_from_slice(&[0, 0]); // checksum, filled below
        f.extend_from_slice(&[10, 0, 0, 1]);
        f.extend_from_slice(&[233, 215, 21, 4]);
        if self.options.ip_options {
            f.extend_from_slice(&[1, 1, 1, 0]); // NOP NOP NOP EOL
        }
        let checksum = ipv4_checksum(&f[ip_start..]);
        f[ip_start + 10..ip_start + 12].copy_from_slice(&checksum.to_be_bytes());
        f.extend_from_slice(&TOPS_UDP_PORT.to_be_bytes());
        f.extend_from_slice(&TOPS_UDP_PORT.to_be_bytes());
        f.extend_from_slice(
            &u16::try_from(8 + segment.len())
                .unwrap_or(u16::MAX)
                .to_be_bytes(),
        );
        f.extend_from_slice(&[0, 0]);
        f.extend_from_slice(segment);
        f.resize(f.len() + self.options.frame_padding, 0);
    }

    fn write_record(&mut self, send_time: i64, corrupt_len: bool) -> io::Result<()> {
        let frame = std::mem::take(&mut self.frame);
        let len = u32::try_from(frame.len()).unwrap_or(u32::MAX);
        let result = match self.options.container {
            Container::Pcap { nanosecond, .. } => {
                let secs = u32::try_from(send_time.div_euclid(1_000_000_000)).unwrap_or(0);
                let sub = send_time.rem_euclid(1_000_000_000);
                let frac = u32::try_from(if nanosecond { sub } else { sub / 1_000 }).unwrap_or(0);
                let mut h = Vec::with_capacity(16);
                h.extend_from_slice(&self.u32b(secs));
                h.extend_from_slice(&self.u32b(frac));
                h.extend_from_slice(&self.u32b(if corrupt_len { 0xFFFF_FFF0 } else { len }));
                h.extend_from_slice(&self.u32b(len));
                self.emit(&h).and_then(|()| self.emit(&frame))
            }
            Container::PcapNg {
                simple_packets,
                tsresol,
                extra_blocks,
                ..
            } => {
                let resol = if extra_blocks && self.segment > 2 {
                    9
                } else {
                    tsresol
                };
                let mut body = Vec::with_capacity(frame.len() + 20);
                if simple_packets {
                    body.extend_from_slice(&self.u32b(len));
                    body.extend_from_slice(&frame);
                    let mut b = self.block(3, &body);
                    if corrupt_len {
                        b[4..8].copy_from_slice(&self.u32b(0xFFFF_FFF0));
                    }
                    self.emit(&b)
                } else {
                    let units = scale_time(send_time, resol);
                    body.extend_from_slice(&self.u32b(0));
                    body.extend_from_slice(&self.u32b(u32::try_from(units >> 32).unwrap_or(0)));
                    body.extend_from_slice(
                        &self.u32b(u32::try_from(units & 0xFFFF_FFFF).unwrap_or(0)),
                    );
                    body.extend_from_slice(&self.u32b(len));
                    body.extend_from_slice(&self.u32b(len));
                    body.extend_from_slice(&frame);
                    let mut b = self.block(6, &body);
                    if corrupt_len {
                        b[4..8].copy_from_slice(&self.u32b(0xFFFF_FFF0));
                    }
                    self.emit(&b)
                }
            }
        };
        self.frame = frame;
        result
    }

    /// Writes the pending messages and finishes the stream; returns the inner writer and
    /// the summary.
    pub fn finish(mut self) -> io::Result<(W, WriteSummary)> {
        self.flush_segment()?;
        self.summary.uncompressed_bytes = self.pos;
        let mut counting = match self.sink {
            Sink::Plain(w) => w,
            Sink::Gzip(g) => (*g).finish()?,
        };
        counting.flush()?;
        self.summary.file_bytes = counting.count;
        Ok((counting.inner, self.summary))
    }
}

/// Opens `path` for a streaming write (buffered).
pub fn create_writer(
    path: &Path,
    options: CaptureOptions,
) -> io::Result<HistWriter<BufWriter<File>>> {
    HistWriter::new(
        BufWriter::with_capacity(1 << 20, File::create(path)?),
        options,
    )
}

/// `ns` (since the epoch) in units of `10^-resol` seconds.
fn scale_time(ns: i64, resol: u8) -> u64 {
    let ns = u128::try_from(ns.max(0)).unwrap_or(0);
    let units = match resol {
        9 => ns,
        r if r < 9 => ns / 10u128.pow(9 - u32::from(r)),
        r => ns * 10u128.pow(u32::from(r.min(19)) - 9),
    };
    u64::try_from(units).unwrap_or(u64::MAX)
}

fn ipv4_checksum(header: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for pair in header.chunks(2) {
        let word = u16::from_be_bytes([pair[0], pair.get(1).copied().unwrap_or(0)]);
        sum += u32::from(word);
    }
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    !u16::try_from(sum).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worked_example_trade_bytes() {
        let t =
            TradeSpec::new("AAPL", 1_710_509_400_123_456_789, 1_726_200, 100).with_id(1_234_567);
        let hex: Vec<String> = HistMessage::Trade(t.clone())
            .encode(Tops::V1_6)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            hex.join(" "),
            "54 00 15 3d 53 9b 3c f3 bc 17 41 41 50 4c 20 20 20 20 64 00 00 00 f8 56 1a 00 00 00 00 00 87 d6 12 00 00 00 00 00"
        );
        assert_eq!(HistMessage::Trade(t).encode(Tops::V1_5).len(), 42);
    }

    #[test]
    fn records_are_indexed_and_faults_applied() {
        let msgs: Vec<HistMessage> = (0..10)
            .map(|i| {
                HistMessage::Trade(TradeSpec::new("A", 1_000_000_000_000 + i, 10_000, 1).with_id(i))
            })
            .collect();
        let opts = CaptureOptions {
            container: Container::Pcap {
                big_endian: false,
                nanosecond: false,
            },
            gzip: false,
            messages_per_segment: 3,
            faults: vec![
                Fault::SequenceGap {
                    before_segment: 2,
                    missing: 5,
                },
                Fault::DuplicateSegment { segment: 3 },
            ],
            ..CaptureOptions::default()
        };
        let c = build_capture(&msgs, &opts).unwrap();
        // heartbeat + 4 segments (3+3+3+1) + 1 duplicate record
        assert_eq!(c.summary.segments, 5);
        assert_eq!(c.summary.records.len(), 6);
        assert_eq!(c.summary.records[0].offset, 24);
        let seqs: Vec<i64> = c.summary.records.iter().map(|r| r.first_seq).collect();
        assert_eq!(seqs, vec![1, 1, 9, 12, 12, 15]);
        assert_eq!(c.summary.uncompressed_bytes, c.bytes.len() as u64);
        let cut = build_capture(
            &msgs,
            &CaptureOptions {
                faults: vec![Fault::TruncateOutput { keep_bytes: 100 }],
                ..opts
            },
        )
        .unwrap();
        assert_eq!(cut.bytes.len(), 100);
    }

    #[test]
    fn checksum_and_time_scaling() {
        // RFC 1071 example header.
        let h = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0, 0, 0xc0, 0xa8, 0x00,
            0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(ipv4_checksum(&h), 0xb861);
        assert_eq!(scale_time(1_500_000_123, 6), 1_500_000);
        assert_eq!(scale_time(1_500_000_123, 9), 1_500_000_123);
    }
}
