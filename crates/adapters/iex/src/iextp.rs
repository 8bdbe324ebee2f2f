//! IEX-TP v1 framing: the 40-byte segment header (little-endian), the message blocks that
//! follow it, and sequence tracking.

use std::fmt;

pub use crate::error::{BlockError, SegmentError};

/// Length of the IEX-TP segment header.
pub const HEADER_LEN: usize = 40;

/// Message protocol id of TOPS 1.6 (verified against a real capture).
pub const PROTOCOL_TOPS_1_6: u16 = 0x8003;
/// Message protocol id of TOPS 1.5 (from third-party parsers; unverified).
pub const PROTOCOL_TOPS_1_5: u16 = 0x8002;
/// Message protocol id of DEEP 1.0 (not handled by this adapter).
pub const PROTOCOL_DEEP_1_0: u16 = 0x8004;

/// The TOPS message layout revision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TopsVersion {
    /// TOPS 1.5 (files up to about mid-2017): trade messages are 42 bytes, the last 4
    /// reserved.
    V1_5,
    /// TOPS 1.6 (later files): trade messages are 38 bytes.
    V1_6,
}

impl TopsVersion {
    /// The version text used in file names and the listing (`"1.5"`, `"1.6"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::V1_5 => "1.5",
            Self::V1_6 => "1.6",
        }
    }

    /// The IEX-TP message protocol id of this version.
    pub const fn protocol_id(self) -> u16 {
        match self {
            Self::V1_5 => PROTOCOL_TOPS_1_5,
            Self::V1_6 => PROTOCOL_TOPS_1_6,
        }
    }

    /// The version a message protocol id names, when it is a TOPS one.
    pub const fn from_protocol_id(id: u16) -> Option<Self> {
        match id {
            PROTOCOL_TOPS_1_5 => Some(Self::V1_5),
            PROTOCOL_TOPS_1_6 => Some(Self::V1_6),
            _ => None,
        }
    }

    /// The version named in a HIST file name (`…_TOPS1.6.pcap.gz`), if any.
    pub fn from_file_name(name: &str) -> Option<Self> {
        if name.contains("TOPS1.6") {
            Some(Self::V1_6)
        } else if name.contains("TOPS1.5") {
            Some(Self::V1_5)
        } else {
            None
        }
    }

    /// Length of a Trade Report / Trade Break message in this version.
    pub const fn trade_message_len(self) -> usize {
        match self {
            Self::V1_5 => 42,
            Self::V1_6 => 38,
        }
    }
}

impl fmt::Display for TopsVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TOPS {}", self.as_str())
    }
}

/// A decoded IEX-TP segment header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentHeader {
    /// Message protocol id (`0x8003` = TOPS 1.6).
    pub protocol_id: u16,
    /// Channel id (1 on TOPS).
    pub channel_id: u32,
    /// Session id.
    pub session_id: u32,
    /// Bytes after the header.
    pub payload_len: u16,
    /// Message blocks in the payload (0 = heartbeat).
    pub message_count: u16,
    /// Byte offset of this payload in the session's stream.
    pub stream_offset: i64,
    /// Sequence number of the first message.
    pub first_seq: i64,
    /// Send time, ns since the Unix epoch.
    pub send_time: i64,
}

/// Decodes and checks a segment: version 1, payload length agreeing with the UDP payload.
/// Returns the header and the message bytes.
pub fn parse_segment(segment: &[u8]) -> Result<(SegmentHeader, &[u8]), SegmentError> {
    if segment.len() < HEADER_LEN {
        return Err(SegmentError::Cut { len: segment.len() });
    }
    if segment[0] != 1 {
        return Err(SegmentError::Version {
            version: segment[0],
        });
    }
    let header = SegmentHeader {
        protocol_id: le_u16(segment, 2),
        channel_id: le_u32(segment, 4),
        session_id: le_u32(segment, 8),
        payload_len: le_u16(segment, 12),
        message_count: le_u16(segment, 14),
        stream_offset: le_i64(segment, 16),
        first_seq: le_i64(segment, 24),
        send_time: le_i64(segment, 32),
    };
    let payload = &segment[HEADER_LEN..];
    if usize::from(header.payload_len) != payload.len() {
        return Err(SegmentError::PayloadLength {
            declared: header.payload_len,
            actual: payload.len(),
        });
    }
    if header.message_count == 0 && header.payload_len != 0 {
        return Err(SegmentError::HeartbeatWithPayload {
            payload_len: header.payload_len,
        });
    }
    if header.first_seq < 0 {
        return Err(SegmentError::NegativeSequence {
            first_seq: header.first_seq,
        });
    }
    Ok((header, payload))
}

/// Iterates the message blocks of a payload: `u16` length (little-endian, excluding itself)
/// then the message. Yields `Err` once if a block overruns the payload or bytes are left
/// after the counted blocks.
#[derive(Debug, Clone)]
pub struct Messages<'a> {
    rest: &'a [u8],
    left: u16,
    done: bool,
}

impl<'a> Messages<'a> {
    /// The `count` blocks of `payload`.
    pub const fn new(payload: &'a [u8], count: u16) -> Self {
        Self {
            rest: payload,
            left: count,
            done: false,
        }
    }
}

impl<'a> Iterator for Messages<'a> {
    type Item = Result<&'a [u8], BlockError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if self.left == 0 {
            self.done = true;
            if self.rest.is_empty() {
                return None;
            }
            return Some(Err(BlockError::TrailingBytes {
                left: self.rest.len(),
            }));
        }
        if self.rest.len() < 2 {
            self.done = true;
            return Some(Err(BlockError::LengthCut { counted: self.left }));
        }
        let len = usize::from(le_u16(self.rest, 0));
        if self.rest.len() - 2 < len {
            self.done = true;
            return Some(Err(BlockError::Overrun {
                len,
                left: self.rest.len() - 2,
            }));
        }
        let message = &self.rest[2..2 + len];
        self.rest = &self.rest[2 + len..];
        self.left -= 1;
        Some(Ok(message))
    }
}

/// What to do with a segment, from its sequence numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqVerdict {
    /// In order: process every message.
    InOrder,
    /// Messages `expected..got` are missing; process every message of this segment.
    Gap {
        /// The sequence number that should have come.
        expected: i64,
        /// The one that came.
        got: i64,
    },
    /// Already seen entirely: skip the segment.
    Duplicate,
    /// Partly seen: skip the first `n` messages.
    Overlap(u16),
}

/// Tracks the next expected sequence number of the current IEX-TP session.
#[derive(Debug, Clone, Default)]
pub struct SequenceTracker {
    session: Option<u32>,
    expected: Option<i64>,
}

impl SequenceTracker {
    /// A tracker that has seen nothing.
    pub const fn new() -> Self {
        Self {
            session: None,
            expected: None,
        }
    }

    /// Judges a segment and advances. Heartbeats (no messages) carry the next expected
    /// number, so they reveal a gap too. A new session id restarts the numbering.
    pub fn check(&mut self, header: &SegmentHeader) -> SeqVerdict {
        if self.session != Some(header.session_id) {
            self.session = Some(header.session_id);
            self.expected = None;
        }
        let first = header.first_seq;
        let count = i64::from(header.message_count);
        let end = first.saturating_add(count);
        let Some(expected) = self.expected else {
            self.expected = Some(end);
            return SeqVerdict::InOrder;
        };
        if first == expected {
            self.expected = Some(end);
            SeqVerdict::InOrder
        } else if first > expected {
            self.expected = Some(end);
            SeqVerdict::Gap {
                expected,
                got: first,
            }
        } else if end <= expected {
            SeqVerdict::Duplicate
        } else {
            self.expected = Some(end);
            SeqVerdict::Overlap(u16::try_from(expected - first).unwrap_or(u16::MAX))
        }
    }
}

/// Little-endian `u16` at `at`.
pub(crate) fn le_u16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

/// Little-endian `u32` at `at`.
pub(crate) fn le_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Little-endian `i64` at `at`.
pub(crate) fn le_i64(b: &[u8], at: usize) -> i64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    i64::from_le_bytes(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worked example of iex.md B6: header, block length, AAPL trade.
    const EXAMPLE: &str = "01 00 03 80 01 00 00 00 00 00 8e 44 28 00 01 00 40 e2 01 00 00 00 00 00 e9 03 00 00 00 00 00 00 35 8b 53 9b 3c f3 bc 17 \
        26 00 54 00 15 3d 53 9b 3c f3 bc 17 41 41 50 4c 20 20 20 20 64 00 00 00 f8 56 1a 00 00 00 00 00 87 d6 12 00 00 00 00 00";

    fn bytes(hex: &str) -> Vec<u8> {
        hex.split_whitespace()
            .map(|h| u8::from_str_radix(h, 16).unwrap())
            .collect()
    }

    #[test]
    fn worked_example_header_and_block() {
        let seg = bytes(EXAMPLE);
        let (h, payload) = parse_segment(&seg).unwrap();
        assert_eq!(h.protocol_id, PROTOCOL_TOPS_1_6);
        assert_eq!(h.channel_id, 1);
        assert_eq!(h.session_id, 0x448e_0000);
        assert_eq!((h.payload_len, h.message_count), (40, 1));
        assert_eq!((h.stream_offset, h.first_seq), (123_456, 1001));
        let msgs: Vec<_> = Messages::new(payload, 1).collect::<Result<_, _>>().unwrap();
        assert_eq!(msgs.len(), 1);
        assert_eq!(msgs[0].len(), 38);
        assert_eq!(msgs[0][0], b'T');
        assert_eq!(le_i64(msgs[0], 2) + 20_000, h.send_time);
    }

    #[test]
    fn bad_headers_and_blocks() {
        let seg = bytes(EXAMPLE);
        let cut = parse_segment(&seg[..39]).unwrap_err();
        assert_eq!(cut, SegmentError::Cut { len: 39 });
        assert!(cut.to_string().contains("40-byte"), "{cut}");
        let mut v = seg.clone();
        v[0] = 2;
        assert_eq!(
            parse_segment(&v).unwrap_err(),
            SegmentError::Version { version: 2 }
        );
        let short = parse_segment(&seg[..seg.len() - 1]).unwrap_err();
        assert_eq!(
            short,
            SegmentError::PayloadLength {
                declared: 40,
                actual: 39
            }
        );
        assert!(short.to_string().contains("payload length 40"), "{short}");
        let (_, payload) = parse_segment(&seg).unwrap();
        let r: Result<Vec<_>, _> = Messages::new(payload, 2).collect();
        assert_eq!(r.unwrap_err(), BlockError::LengthCut { counted: 1 });
        let r: Result<Vec<_>, _> = Messages::new(&payload[..30], 1).collect();
        assert_eq!(r.unwrap_err(), BlockError::Overrun { len: 38, left: 28 });
        let r: Result<Vec<_>, _> = Messages::new(payload, 0).collect();
        let trailing = r.unwrap_err();
        assert_eq!(trailing, BlockError::TrailingBytes { left: 40 });
        assert!(trailing.to_string().contains("left"), "{trailing}");
    }

    #[test]
    fn sequence_verdicts() {
        let h = |first, count| SegmentHeader {
            protocol_id: PROTOCOL_TOPS_1_6,
            channel_id: 1,
            session_id: 7,
            payload_len: 0,
            message_count: count,
            stream_offset: 0,
            first_seq: first,
            send_time: 0,
        };
        let mut t = SequenceTracker::new();
        assert_eq!(t.check(&h(1, 0)), SeqVerdict::InOrder);
        assert_eq!(t.check(&h(1, 3)), SeqVerdict::InOrder);
        assert_eq!(t.check(&h(4, 2)), SeqVerdict::InOrder);
        assert_eq!(t.check(&h(4, 2)), SeqVerdict::Duplicate);
        assert_eq!(t.check(&h(5, 3)), SeqVerdict::Overlap(1));
        assert_eq!(
            t.check(&h(10, 1)),
            SeqVerdict::Gap {
                expected: 8,
                got: 10
            }
        );
        assert_eq!(t.check(&h(11, 0)), SeqVerdict::InOrder);
        assert_eq!(
            t.check(&h(13, 0)),
            SeqVerdict::Gap {
                expected: 11,
                got: 13
            }
        );
        let mut other = h(1, 1);
        other.session_id = 8;
        assert_eq!(t.check(&other), SeqVerdict::InOrder);
    }
}
