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
