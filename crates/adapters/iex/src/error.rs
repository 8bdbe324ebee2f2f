//! Errors of the HIST reader. Every variant names the file; every variant raised while
//! reading names the byte position in the *uncompressed* capture stream, so a damaged
//! download can be inspected with `zcat FILE | tail -c +OFFSET | xxd | head`.

use std::fmt;
use std::io;

use thiserror::Error;

/// Why a capture could not be read (to its end).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The file could not be opened.
    #[error("{file}: cannot open: {source}")]
    Open {
        /// The file.
        file: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// An I/O failure while reading an uncompressed file.
    #[error("{file}: I/O error at byte {offset} of the uncompressed stream: {source}")]
    Io {
        /// The file.
        file: String,
        /// Bytes of the capture read before the failure.
        offset: u64,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The gzip layer failed: the compressed file ends early (a truncated download) or its
    /// data is corrupt.
    #[error("{file}: gzip stream broken at byte {offset} of the uncompressed stream: {reason}")]
    Gzip {
        /// The file.
        file: String,
        /// Bytes of the capture decompressed before the failure.
        offset: u64,
        /// What failed, in words.
        reason: &'static str,
        /// The decompressor's error.
        #[source]
        source: io::Error,
    },
    /// The (uncompressed) capture ends inside a record or block.
    #[error("{file}: truncated at byte {offset} of the uncompressed stream: {what}")]
    Truncated {
        /// The file.
        file: String,
        /// Where the data ends.
        offset: u64,
        /// Which record or block was cut.
        what: String,
    },
    /// A record, block, frame or IEX-TP segment whose framing is impossible (a record
    /// length beyond any real frame, a block trailer that disagrees with its header, an
    /// IEX-TP header with a wrong version or payload length, a message block that overruns
    /// its segment).
    #[error("{file}: corrupt block at byte {offset} of the uncompressed stream: {what}")]
    Corrupt {
        /// The file.
        file: String,
        /// Start of the record or block that is corrupt.
        offset: u64,
        /// What is wrong.
        what: String,
    },
    /// The file is neither pcap nor pcap-ng (after gunzip when gzip-compressed).
    #[error(
        "{file}: not a packet capture (first bytes {magic}); expected pcap or pcap-ng, optionally gzip-compressed"
    )]
    NotACapture {
        /// The file.
        file: String,
        /// The first bytes, in hex.
        magic: String,
    },
    /// Well-formed data this reader does not handle (a non-Ethernet link type, a feed other
    /// than TOPS).
    #[error("{file}: unsupported content at byte {offset} of the uncompressed stream: {what}")]
    Unsupported {
        /// The file.
        file: String,
        /// Where it was found.
        offset: u64,
        /// What it is.
        what: String,
    },
}

impl ReadError {
    /// The file the error is about.
    pub fn file(&self) -> &str {
        match self {
            Self::Open { file, .. }
            | Self::Io { file, .. }
            | Self::Gzip { file, .. }
            | Self::Truncated { file, .. }
            | Self::Corrupt { file, .. }
            | Self::NotACapture { file, .. }
            | Self::Unsupported { file, .. } => file,
        }
    }

    /// The byte position in the uncompressed stream, when the error happened while reading.
    pub const fn offset(&self) -> Option<u64> {
        match self {
            Self::Io { offset, .. }
            | Self::Gzip { offset, .. }
            | Self::Truncated { offset, .. }
            | Self::Corrupt { offset, .. }
            | Self::Unsupported { offset, .. } => Some(*offset),
            Self::Open { .. } | Self::NotACapture { .. } => None,
        }
    }
}

/// An Ethernet frame whose headers are impossible (cut short, lengths that disagree).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum FrameError {
    /// Shorter than an Ethernet header.
    #[error("Ethernet frame of {len} bytes (at least 14)")]
    EthernetCut {
        /// The frame's length.
        len: usize,
    },
    /// A VLAN tag that the frame ends inside.
    #[error("VLAN tag cut short in a {len}-byte frame")]
    VlanCut {
        /// The frame's length.
        len: usize,
    },
    /// Shorter than an IPv4 header.
    #[error("IPv4 header cut short ({len} bytes)")]
    Ipv4HeaderCut {
        /// Bytes after the Ethernet header.
        len: usize,
    },
    /// The IPv4 ethertype with another IP version in the header.
    #[error("IPv4 ethertype but IP version {version}")]
    IpVersion {
        /// The header's version.
        version: u8,
    },
    /// A header length below 20 or above the total length.
    #[error("IPv4 header length {header_len} and total length {total_len} are inconsistent")]
    Ipv4Lengths {
        /// The header length, bytes.
        header_len: usize,
        /// The total length, bytes.
        total_len: usize,
    },
    /// A packet longer than what was captured.
    #[error("IPv4 packet of {total_len} bytes but only {captured} captured")]
    Ipv4Truncated {
        /// The packet's total length.
        total_len: usize,
        /// Bytes captured.
        captured: usize,
    },
    /// Shorter than a UDP header.
    #[error("UDP header cut short ({len} bytes)")]
    UdpHeaderCut {
        /// Bytes of the IP payload.
        len: usize,
    },
    /// A UDP length below 8 or beyond the IP payload.
    #[error("UDP length {udp_len} does not fit the {available}-byte IP payload")]
    UdpLength {
        /// The UDP header's length.
        udp_len: usize,
        /// Bytes of the IP payload.
        available: usize,
    },
}

/// An IEX-TP segment header that is impossible or disagrees with its UDP payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SegmentError {
    /// Shorter than the 40-byte header.
    #[error("IEX-TP segment of {len} bytes, shorter than the 40-byte header")]
    Cut {
        /// The segment's length.
        len: usize,
    },
    /// A header version other than 1.
    #[error("IEX-TP header version {version} (expected 1)")]
    Version {
        /// The version byte.
        version: u8,
    },
    /// A payload length other than the bytes after the header.
    #[error(
        "IEX-TP payload length {declared} but the UDP payload carries {actual} bytes after the header"
    )]
    PayloadLength {
        /// The header's payload length.
        declared: u16,
        /// Bytes after the header.
        actual: usize,
    },
    /// A heartbeat (no messages) with a payload.
    #[error("IEX-TP segment with 0 messages but a {payload_len}-byte payload")]
    HeartbeatWithPayload {
        /// The header's payload length.
        payload_len: u16,
    },
    /// A negative first sequence number.
    #[error("IEX-TP first sequence number {first_seq}")]
    NegativeSequence {
        /// The header's first sequence number.
        first_seq: i64,
    },
}

/// IEX-TP message blocks that do not fill their payload exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum BlockError {
    /// Bytes after the counted blocks.
    #[error("{left} bytes left in the IEX-TP payload after its counted message blocks")]
    TrailingBytes {
        /// Bytes left over.
        left: usize,
    },
    /// The payload ends where a block length should be.
    #[error("IEX-TP payload ends before message block length ({counted} messages still counted)")]
    LengthCut {
        /// Messages the header still counts.
        counted: u16,
    },
    /// A block longer than the rest of the payload.
    #[error("IEX-TP message block of {len} bytes overruns the payload ({left} bytes left)")]
    Overrun {
        /// The block's length.
        len: usize,
        /// Bytes left in the payload.
        left: usize,
    },
}

/// A break in IEX-TP sequence numbers: messages `expected..got` never arrived, so the bars
/// of the minutes around `offset` may miss trades. Reported, not fatal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gap {
    /// The file.
    pub file: String,
    /// Start of the record (pcap) or block (pcap-ng) holding the segment after the gap, in
    /// the uncompressed stream.
    pub offset: u64,
    /// The sequence number that should have come next.
    pub expected: i64,
    /// The sequence number that came.
    pub got: i64,
}

impl Gap {
    /// How many messages are missing.
    pub const fn missing(&self) -> i64 {
        self.got.saturating_sub(self.expected)
    }
}

impl fmt::Display for Gap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: IEX-TP sequence gap at byte {} of the uncompressed stream: expected message {}, got {} ({} messages missing)",
            self.file,
            self.offset,
            self.expected,
            self.got,
            self.missing()
        )
    }
}
