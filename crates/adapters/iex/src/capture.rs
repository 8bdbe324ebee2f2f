//! A streaming reader of packet captures: classic pcap (either byte order, microsecond or
//! nanosecond timestamps) and pcap-ng (SHB, IDB, EPB, SPB and the obsolete Packet Block;
//! `if_tsresol`/`if_tsoffset`; either byte order, switching at each Section Header Block),
//! gzip-compressed or not.
//!
//! Gzip is detected by its magic bytes (`1f 8b`), never by the file name, and decompressed
//! with `flate2::read::MultiGzDecoder` (concatenated members are one stream). The capture is
//! read through one fixed-size [`BufReader`] ([`READ_BUFFER_BYTES`]) and one reusable record
//! buffer, which grows to the largest record seen (at most [`MAX_PACKET_RECORD_BYTES`] for a
//! pcap record, [`MAX_PCAPNG_BLOCK_BYTES`] for a pcap-ng block): memory does not depend on
//! the file's size.
//!
//! Offsets are byte positions in the uncompressed capture stream.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Cursor, Read};
use std::path::Path;

use flate2::read::MultiGzDecoder;

use crate::error::ReadError;

/// Size of the read buffer between the (decompressed) file and the parser.
pub const READ_BUFFER_BYTES: usize = 1 << 20;

/// Largest classic-pcap record accepted; a larger length means a corrupt record header.
pub const MAX_PACKET_RECORD_BYTES: u32 = 262_144;

/// Largest pcap-ng block accepted; a larger length means a corrupt block header.
pub const MAX_PCAPNG_BLOCK_BYTES: u32 = 16 << 20;

/// Link type of Ethernet frames (`LINKTYPE_ETHERNET`).
pub const LINKTYPE_ETHERNET: u16 = 1;

const PCAPNG_SHB: u32 = 0x0A0D_0D0A;
const PCAPNG_IDB: u32 = 1;
const PCAPNG_OPB: u32 = 2;
const PCAPNG_SPB: u32 = 3;
const PCAPNG_EPB: u32 = 6;
const PCAPNG_BYTE_ORDER_MAGIC: u32 = 0x1A2B_3C4D;

/// Which container the stream is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureFormat {
    /// Classic libpcap.
    Pcap {
        /// Whether the file was written big-endian.
        big_endian: bool,
        /// Whether timestamps carry nanoseconds (magic `a1b23c4d`) instead of microseconds.
        nanosecond: bool,
    },
    /// pcap-ng.
    PcapNg,
}

/// One captured frame.
#[derive(Debug, Clone, Copy)]
pub struct Packet<'a> {
    /// Start of the record (pcap) or block (pcap-ng) in the uncompressed stream.
    pub offset: u64,
    /// Capture time in nanoseconds since the Unix epoch, when the record has one (Simple
    /// Packet Blocks have none). Not the market time: bars use the messages' timestamps.
    pub capture_ns: Option<i64>,
    /// The link type of the interface (1 = Ethernet).
    pub linktype: u16,
    /// The captured bytes of the frame.
    pub data: &'a [u8],
}

#[derive(Debug, Clone, Copy)]
struct Interface {
    linktype: u16,
    snaplen: u32,
    /// Timestamp units per second (`if_tsresol`; 1,000,000 by default).
    units_per_sec: u128,
    /// `if_tsoffset`, seconds.
    offset_secs: i64,
}

#[derive(Debug)]
enum State {
    Pcap {
        big_endian: bool,
        nanosecond: bool,
        linktype: u16,
    },
    PcapNg {
        big_endian: bool,
        interfaces: Vec<Interface>,
    },
}

/// Streams the frames of a capture file. See the module documentation.
pub struct CaptureReader {
    file: String,
    src: BufReader<Box<dyn Read + Send>>,
    gzip: bool,
    pos: u64,
    state: State,
    buf: Vec<u8>,
}

impl std::fmt::Debug for CaptureReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaptureReader")
            .field("file", &self.file)
            .field("gzip", &self.gzip)
            .field("pos", &self.pos)
            .field("format", &self.format())
            .finish_non_exhaustive()
    }
}

impl CaptureReader {
    /// Opens a capture file (`.pcap`, `.pcap.gz`, pcap-ng inside either).
    pub fn open(path: &Path) -> Result<Self, ReadError> {
        let name = path.display().to_string();
        let file = File::open(path).map_err(|source| ReadError::Open {
            file: name.clone(),
            source,
        })?;
        Self::new(file, name)
    }

    /// Reads a capture from any byte stream; `name` is used in errors.
    pub fn new(
        mut reader: impl Read + Send + 'static,
        name: impl Into<String>,
    ) -> Result<Self, ReadError> {
        let file = name.into();
        let mut head = [0u8; 2];
        let mut got = 0;
        while got < head.len() {
            match reader.read(&mut head[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(ReadError::Io {
                        file,
                        offset: 0,
                        source,
                    });
                }
            }
        }
        let head = head[..got].to_vec();
        let gzip = head == [0x1f, 0x8b];
        let rejoined = Cursor::new(head).chain(reader);
        let inner: Box<dyn Read + Send> = if gzip {
            Box::new(MultiGzDecoder::new(rejoined))
        } else {
            Box::new(rejoined)
        };
        let mut this = Self {
            file,
            src: BufReader::with_capacity(READ_BUFFER_BYTES, inner),
            gzip,
            pos: 0,
            state: State::PcapNg {
                big_endian: false,
                interfaces: Vec::new(),
            },
            buf: Vec::with_capacity(4096),
        };
        this.read_file_header()?;
        Ok(this)
    }

    /// The file name used in errors.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// Whether the file is gzip-compressed.
    pub const fn is_gzip(&self) -> bool {
        self.gzip
    }

    /// Bytes of the uncompressed stream consumed so far.
    pub const fn position(&self) -> u64 {
        self.pos
    }

    /// The container format.
    pub const fn format(&self) -> CaptureFormat {
        match self.state {
            State::Pcap {
                big_endian,
                nanosecond,
                ..
            } => CaptureFormat::Pcap {
                big_endian,
                nanosecond,
            },
            State::PcapNg { .. } => CaptureFormat::PcapNg,
        }
    }

    fn read_file_header(&mut self) -> Result<(), ReadError> {
        let got = self.read_some(4)?;
        if got < 4 {
            return Err(ReadError::NotACapture {
                file: self.file.clone(),
                magic: hex(&self.buf[..got]),
            });
        }
        let magic = [self.buf[0], self.buf[1], self.buf[2], self.buf[3]];
        let (big_endian, nanosecond) = match magic {
            [0x0a, 0x0d, 0x0d, 0x0a] => {
                // pcap-ng: the magic is the first Section Header Block's type.
                self.read_section_header(0)?;
                return Ok(());
            }
            [0xd4, 0xc3, 0xb2, 0xa1] => (false, false),
            [0xa1, 0xb2, 0xc3, 0xd4] => (true, false),
            [0x4d, 0x3c, 0xb2, 0xa1] => (false, true),
            [0xa1, 0xb2, 0x3c, 0x4d] => (true, true),
            _ => {
                return Err(ReadError::NotACapture {
                    file: self.file.clone(),
                    magic: hex(&magic),
                });
            }
        };
        self.read_exact(20, 0, "the 24-byte pcap file header")?;
        let linktype_field = u32_at(&self.buf, 16, big_endian);
        // The upper bits may carry FCS information; the link type is the low 16 bits.
        let linktype = u16::try_from(linktype_field & 0xFFFF).unwrap_or(u16::MAX);
        self.state = State::Pcap {
            big_endian,
            nanosecond,
            linktype,
        };
        Ok(())
    }

    /// Reads a Section Header Block whose 4-byte type was just read at `offset`.
    fn read_section_header(&mut self, offset: u64) -> Result<(), ReadError> {
        self.read_exact(8, offset, "a pcap-ng Section Header Block")?;
        let len_bytes = [self.buf[0], self.buf[1], self.buf[2], self.buf[3]];
        let bom = [self.buf[4], self.buf[5], self.buf[6], self.buf[7]];
        let big_endian = if u32::from_le_bytes(bom) == PCAPNG_BYTE_ORDER_MAGIC {
            false
        } else if u32::from_be_bytes(bom) == PCAPNG_BYTE_ORDER_MAGIC {
            true
        } else {
            return Err(self.corrupt(
                offset,
                format!(
                    "pcap-ng Section Header Block with byte-order magic {} (expected 1a2b3c4d in either order)",
                    hex(&bom)
                ),
            ));
        };
        let total = if big_endian {
            u32::from_be_bytes(len_bytes)
        } else {
            u32::from_le_bytes(len_bytes)
        };
        if total < 28 || !total.is_multiple_of(4) || total > MAX_PCAPNG_BLOCK_BYTES {
            return Err(self.corrupt(
                offset,
                format!("pcap-ng Section Header Block length {total} (must be 28..={MAX_PCAPNG_BLOCK_BYTES} and a multiple of 4)"),
            ));
        }
        let rest = usize::try_from(total - 12).unwrap_or(usize::MAX);
        self.read_exact(rest, offset, "a pcap-ng Section Header Block")?;
        let trailer = u32_at(&self.buf, rest - 4, big_endian);
        if trailer != total {
            return Err(self.corrupt(
                offset,
                format!("pcap-ng Section Header Block trailer length {trailer} differs from its header length {total}"),
            ));
        }
        let major = u16_at(&self.buf, 0, big_endian);
        if major != 1 {
            return Err(ReadError::Unsupported {
                file: self.file.clone(),
                offset,
                what: format!("pcap-ng major version {major} (only 1 exists)"),
            });
        }
        self.state = State::PcapNg {
            big_endian,
            interfaces: Vec::new(),
        };
        Ok(())
    }

    /// The next frame, or `None` at the end of the capture.
    pub fn next_packet(&mut self) -> Result<Option<Packet<'_>>, ReadError> {
        match self.state {
            State::Pcap {
                big_endian,
                nanosecond,
                linktype,
            } => self.next_pcap(big_endian, nanosecond, linktype),
            State::PcapNg { .. } => self.next_pcapng(),
        }
    }

    fn next_pcap(
        &mut self,
        big_endian: bool,
        nanosecond: bool,
        linktype: u16,
    ) -> Result<Option<Packet<'_>>, ReadError> {
        let offset = self.pos;
        if self.at_eof()? {
            return Ok(None);
        }
        self.read_exact(16, offset, "a pcap record header")?;
        let secs = i64::from(u32_at(&self.buf, 0, big_endian));
        let frac = i64::from(u32_at(&self.buf, 4, big_endian));
        let incl = u32_at(&self.buf, 8, big_endian);
        let orig = u32_at(&self.buf, 12, big_endian);
        if incl > MAX_PACKET_RECORD_BYTES {
            return Err(self.corrupt(
                offset,
                format!(
                    "pcap record length {incl} exceeds the {MAX_PACKET_RECORD_BYTES}-byte maximum"
                ),
            ));
        }
        if incl > orig {
            return Err(self.corrupt(
                offset,
                format!("pcap record captured length {incl} exceeds its original length {orig}"),
            ));
        }
        let len = usize::try_from(incl).unwrap_or(usize::MAX);
        self.read_exact(len, offset, "a pcap record")?;
        let capture_ns = secs * 1_000_000_000 + if nanosecond { frac } else { frac * 1_000 };
        Ok(Some(Packet {
            offset,
            capture_ns: Some(capture_ns),
            linktype,
            data: &self.buf[..len],
        }))
    }

    fn next_pcapng(&mut self) -> Result<Option<Packet<'_>>, ReadError> {
        loop {
            let offset = self.pos;
            if self.at_eof()? {
                return Ok(None);
            }
            self.read_exact(4, offset, "a pcap-ng block header")?;
            let type_bytes = [self.buf[0], self.buf[1], self.buf[2], self.buf[3]];
            if u32::from_le_bytes(type_bytes) == PCAPNG_SHB {
                self.read_section_header(offset)?;
                continue;
            }
            let big_endian = match &self.state {
                State::PcapNg { big_endian, .. } => *big_endian,
                State::Pcap { .. } => false,
            };
            let block_type = u32_at(&type_bytes, 0, big_endian);
            self.read_exact(4, offset, "a pcap-ng block header")?;
            let total = u32_at(&self.buf, 0, big_endian);
            if total < 12 || !total.is_multiple_of(4) || total > MAX_PCAPNG_BLOCK_BYTES {
                return Err(self.corrupt(
                    offset,
                    format!(
                        "pcap-ng block of type {block_type:#x} with length {total} (must be 12..={MAX_PCAPNG_BLOCK_BYTES} and a multiple of 4)"
                    ),
                ));
            }
            let rest = usize::try_from(total - 8).unwrap_or(usize::MAX);
            self.read_exact(rest, offset, "a pcap-ng block")?;
            let body_len = rest - 4;
            let trailer = u32_at(&self.buf, body_len, big_endian);
            if trailer != total {
                return Err(self.corrupt(
                    offset,
                    format!(
                        "pcap-ng block of type {block_type:#x}: trailer length {trailer} differs from its header length {total}"
                    ),
                ));
            }
            match block_type {
                PCAPNG_IDB => self.read_interface(offset, body_len, big_endian)?,
                PCAPNG_EPB | PCAPNG_OPB => {
                    return self.packet_block(offset, block_type, body_len, big_endian);
                }
                PCAPNG_SPB => return self.simple_packet(offset, body_len, big_endian),
                // Name Resolution, Interface Statistics, Decryption Secrets, custom blocks…
                _ => {}
            }
        }
    }

    fn read_interface(
        &mut self,
        offset: u64,
        body_len: usize,
        big_endian: bool,
    ) -> Result<(), ReadError> {
        if body_len < 8 {
            return Err(self.corrupt(
                offset,
                format!(
                    "pcap-ng Interface Description Block body of {body_len} bytes (at least 8)"
                ),
            ));
        }
        let linktype = u16_at(&self.buf, 0, big_endian);
        let snaplen = u32_at(&self.buf, 4, big_endian);
        let mut iface = Interface {
            linktype,
            snaplen,
            units_per_sec: 1_000_000,
            offset_secs: 0,
        };
        // Options: code u16, length u16, value padded to 4 bytes; code 0 ends the list.
        let mut at = 8;
        while at + 4 <= body_len {
            let code = u16_at(&self.buf, at, big_endian);
            let len = usize::from(u16_at(&self.buf, at + 2, big_endian));
            at += 4;
            if code == 0 {
                break;
            }
            if at + len > body_len {
                return Err(self.corrupt(
                    offset,
                    format!("pcap-ng Interface Description Block option {code} of {len} bytes overruns the block"),
                ));
            }
            match (code, len) {
                (9, 1) => {
                    let v = self.buf[at];
                    let exp = u32::from(v & 0x7F);
                    let units = if v & 0x80 == 0 {
                        10u128.checked_pow(exp)
                    } else {
                        2u128.checked_pow(exp)
                    };
                    iface.units_per_sec = match units {
                        Some(u) if u > 0 && exp <= 30 => u,
                        _ => {
                            return Err(ReadError::Unsupported {
                                file: self.file.clone(),
                                offset,
                                what: format!("pcap-ng if_tsresol {v:#04x}"),
                            });
                        }
                    };
                }
                (14, 8) => {
                    let raw = u64_at(&self.buf, at, big_endian);
                    iface.offset_secs = i64::from_ne_bytes(raw.to_ne_bytes());
                }
                _ => {}
            }
            at += len.div_ceil(4) * 4;
        }
        if let State::PcapNg { interfaces, .. } = &mut self.state {
            interfaces.push(iface);
        }
        Ok(())
    }

    fn interface(&self, offset: u64, id: u32) -> Result<Interface, ReadError> {
        let found = match &self.state {
            State::PcapNg { interfaces, .. } => usize::try_from(id)
                .ok()
                .and_then(|i| interfaces.get(i))
                .copied(),
            State::Pcap { .. } => None,
        };
        found.ok_or_else(|| {
            self.corrupt(
                offset,
                format!("pcap-ng packet on interface {id}, which no Interface Description Block declared"),
            )
        })
    }

    fn packet_block(
        &mut self,
        offset: u64,
        block_type: u32,
        body_len: usize,
        big_endian: bool,
    ) -> Result<Option<Packet<'_>>, ReadError> {
        if body_len < 20 {
            return Err(self.corrupt(
                offset,
                format!("pcap-ng packet block body of {body_len} bytes (at least 20)"),
            ));
        }
        let id = if block_type == PCAPNG_OPB {
            u32::from(u16_at(&self.buf, 0, big_endian))
        } else {
            u32_at(&self.buf, 0, big_endian)
        };
        let iface = self.interface(offset, id)?;
        let ts = (u64::from(u32_at(&self.buf, 4, big_endian)) << 32)
            | u64::from(u32_at(&self.buf, 8, big_endian));
        let captured = u32_at(&self.buf, 12, big_endian);
        let len = usize::try_from(captured).unwrap_or(usize::MAX);
        if len > body_len - 20 {
            return Err(self.corrupt(
                offset,
                format!("pcap-ng packet block captured length {captured} overruns its {body_len}-byte body"),
            ));
        }
        let nanos = u128::from(ts) * 1_000_000_000 / iface.units_per_sec;
        let capture_ns = i64::try_from(nanos)
            .ok()
            .map(|n| n.saturating_add(iface.offset_secs.saturating_mul(1_000_000_000)));
        Ok(Some(Packet {
            offset,
            capture_ns,
            linktype: iface.linktype,
            data: &self.buf[20..20 + len],
        }))
    }

    fn simple_packet(
        &mut self,
        offset: u64,
        body_len: usize,
        big_endian: bool,
    ) -> Result<Option<Packet<'_>>, ReadError> {
        if body_len < 4 {
            return Err(self.corrupt(
                offset,
                format!("pcap-ng Simple Packet Block body of {body_len} bytes (at least 4)"),
            ));
        }
        let iface = self.interface(offset, 0)?;
        let original = u32_at(&self.buf, 0, big_endian);
        let snap = if iface.snaplen == 0 {
            u32::MAX
        } else {
            iface.snaplen
        };
        let len = usize::try_from(original.min(snap)).unwrap_or(usize::MAX);
        if len > body_len - 4 {
            return Err(self.corrupt(
                offset,
                format!("pcap-ng Simple Packet Block of original length {original} overruns its {body_len}-byte body"),
            ));
        }
        Ok(Some(Packet {
            offset,
            capture_ns: None,
            linktype: iface.linktype,
            data: &self.buf[4..4 + len],
        }))
    }

    fn corrupt(&self, offset: u64, what: String) -> ReadError {
        ReadError::Corrupt {
            file: self.file.clone(),
            offset,
            what,
        }
    }

    fn io_error(&self, offset: u64, source: io::Error) -> ReadError {
        if self.gzip {
            let reason = if source.kind() == io::ErrorKind::UnexpectedEof {
                "the compressed file ends early (a truncated download?)"
            } else {
                "the compressed data is corrupt"
            };
            ReadError::Gzip {
                file: self.file.clone(),
                offset,
                reason,
                source,
            }
        } else {
            ReadError::Io {
                file: self.file.clone(),
                offset,
                source,
            }
        }
    }

    fn at_eof(&mut self) -> Result<bool, ReadError> {
        loop {
            match self.src.fill_buf() {
                Ok(b) => return Ok(b.is_empty()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.io_error(self.pos, e)),
            }
        }
    }

    /// Reads up to `n` bytes into the start of the record buffer; returns how many came.
    fn read_some(&mut self, n: usize) -> Result<usize, ReadError> {
        if self.buf.len() < n {
            self.buf.resize(n, 0);
        }
        let mut got = 0;
        while got < n {
            match self.src.read(&mut self.buf[got..n]) {
                Ok(0) => break,
                Ok(k) => got += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.pos += got as u64;
                    return Err(self.io_error(self.pos, e));
                }
            }
        }
        self.pos += got as u64;
        Ok(got)
    }

    /// Reads exactly `n` bytes into the start of the record buffer, or reports where the
    /// data ends (`what` starting at `record_offset`).
    fn read_exact(&mut self, n: usize, record_offset: u64, what: &str) -> Result<(), ReadError> {
        let got = self.read_some(n)?;
        if got < n {
            return Err(ReadError::Truncated {
                file: self.file.clone(),
                offset: self.pos,
                what: format!(
                    "the stream ends inside {what} starting at byte {record_offset} ({got} of {n} bytes present)"
                ),
            });
        }
        Ok(())
    }
}

fn hex(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "(none: the file is empty)".to_owned();
    }
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn u16_at(buf: &[u8], at: usize, big_endian: bool) -> u16 {
    let b = [buf[at], buf[at + 1]];
    if big_endian {
        u16::from_be_bytes(b)
    } else {
        u16::from_le_bytes(b)
    }
}

fn u32_at(buf: &[u8], at: usize, big_endian: bool) -> u32 {
    let b = [buf[at], buf[at + 1], buf[at + 2], buf[at + 3]];
    if big_endian {
        u32::from_be_bytes(b)
    } else {
        u32::from_le_bytes(b)
    }
}

fn u64_at(buf: &[u8], at: usize, big_endian: bool) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&buf[at..at + 8]);
    if big_endian {
        u64::from_be_bytes(b)
    } else {
        u64::from_le_bytes(b)
    }
}
