//! TOPS messages: the Trade Report (`T`) and Trade Break (`B`) layouts, the sale-condition
//! flags, and the symbol filter that lets unrequested symbols cost one 8-byte comparison.
//!
//! TOPS 1.5 and 1.6 share the first 38 bytes of a trade message (1.5 appends 4 reserved
//! bytes), and the spec lets IEX lengthen messages by appending fields, so one decoder reads
//! the known fields by offset and ignores trailing bytes; a trade message shorter than 38
//! bytes is corrupt. Every other message type is skipped by its block length.

use marketpipe_domain::Symbol;

use crate::iextp::{le_i64, le_u32};

/// Type byte of a Trade Report.
pub const TRADE_REPORT: u8 = b'T';
/// Type byte of a Trade Break.
pub const TRADE_BREAK: u8 = b'B';
/// Type byte of a System Event.
pub const SYSTEM_EVENT: u8 = b'S';
/// System Event code: end of messages (the last message of a day).
pub const END_OF_MESSAGES: u8 = b'C';
/// The fields of a trade message this reader needs end at this byte.
pub const TRADE_FIELDS_LEN: usize = 38;

/// Sale condition: Intermarket Sweep Order.
pub const FLAG_ISO: u8 = 0x80;
/// Sale condition: extended-hours trade (Form T), outside 09:30–16:00 ET.
pub const FLAG_EXTENDED_HOURS: u8 = 0x40;
/// Sale condition: odd lot (less than one round lot).
pub const FLAG_ODD_LOT: u8 = 0x20;
/// Sale condition: trade-through exempt (Rule 611).
pub const FLAG_TRADE_THROUGH_EXEMPT: u8 = 0x10;
/// Sale condition: single-price cross (TOPS 1.6 only).
pub const FLAG_SINGLE_PRICE_CROSS: u8 = 0x08;

/// Whether a trade with these sale-condition flags may set open, high, low and close: per
/// the TOPS specification, last-sale and high/low eligibility both require that the trade
/// is neither an extended-hours (Form T) nor an odd-lot trade. Every trade counts for volume.
pub const fn is_price_eligible(flags: u8) -> bool {
    flags & (FLAG_EXTENDED_HOURS | FLAG_ODD_LOT) == 0
}

/// A Trade Report or Trade Break, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TradeMessage {
    /// Sale condition flags.
    pub flags: u8,
    /// Event time, ns since the Unix epoch (UTC).
    pub timestamp: i64,
    /// Shares.
    pub size: u32,
    /// Price in 1e-4 dollars.
    pub price: i64,
    /// IEX trade id (a break names the trade it cancels).
    pub trade_id: i64,
}

impl TradeMessage {
    /// Decodes the fields after the symbol; `message` must hold at least
    /// [`TRADE_FIELDS_LEN`] bytes (checked by the caller).
    pub fn decode(message: &[u8]) -> Self {
        Self {
            flags: message[1],
            timestamp: le_i64(message, 2),
            size: le_u32(message, 18),
            price: le_i64(message, 22),
            trade_id: le_i64(message, 30),
        }
    }
}

/// The 8-byte, space-padded symbol field of a message as one integer.
pub fn symbol_key(message: &[u8]) -> u64 {
    let mut k = [0u8; 8];
    k.copy_from_slice(&message[10..18]);
    u64::from_le_bytes(k)
}

/// The key of a symbol as TOPS writes it (left-justified, space-padded to 8 bytes), or
/// `None` when the symbol is longer than 8 characters and so cannot appear in TOPS.
pub fn key_of(symbol: &Symbol) -> Option<u64> {
    let text = symbol.as_str().as_bytes();
    if text.len() > 8 {
        return None;
    }
    let mut k = [b' '; 8];
    k[..text.len()].copy_from_slice(text);
    Some(u64::from_le_bytes(k))
}

/// The requested symbols as 8-byte keys. Lookup is a linear scan for up to 16 symbols and a
/// binary search above.
#[derive(Debug, Clone, Default)]
pub struct SymbolFilter {
    /// (key, index into the requested list), sorted by key when large.
    keys: Vec<(u64, usize)>,
    sorted: bool,
}

impl SymbolFilter {
    /// A filter for `symbols`; symbols longer than 8 characters are left out (returned in
    /// the second element).
    pub fn new(symbols: &[Symbol]) -> (Self, Vec<Symbol>) {
        let mut keys = Vec::with_capacity(symbols.len());
        let mut unusable = Vec::new();
        for (i, s) in symbols.iter().enumerate() {
            match key_of(s) {
                Some(k) if !keys.iter().any(|(x, _)| *x == k) => keys.push((k, i)),
                Some(_) => {}
                None => unusable.push(*s),
            }
        }
        let sorted = keys.len() > 16;
        if sorted {
            keys.sort_unstable();
        }
        (Self { keys, sorted }, unusable)
    }

    /// The index of the requested symbol with this key.
    #[inline]
    pub fn get(&self, key: u64) -> Option<usize> {
        if self.sorted {
            self.keys
                .binary_search_by_key(&key, |(k, _)| *k)
                .ok()
                .map(|i| self.keys[i].1)
        } else {
            self.keys.iter().find(|(k, _)| *k == key).map(|(_, i)| *i)
        }
    }

    /// Whether no symbol can match.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_the_worked_example() {
        let m: Vec<u8> = "54 00 15 3d 53 9b 3c f3 bc 17 41 41 50 4c 20 20 20 20 64 00 00 00 f8 56 1a 00 00 00 00 00 87 d6 12 00 00 00 00 00"
            .split_whitespace()
            .map(|h| u8::from_str_radix(h, 16).unwrap())
            .collect();
        let t = TradeMessage::decode(&m);
        assert_eq!(t.flags, 0);
        assert_eq!(t.size, 100);
        assert_eq!(t.price, 1_726_200);
        assert_eq!(t.trade_id, 1_234_567);
        // 2024-03-15T13:30:00.123456789Z
        assert_eq!(t.timestamp, 1_710_509_400_123_456_789);
        let aapl = Symbol::new("AAPL").unwrap();
        assert_eq!(key_of(&aapl), Some(symbol_key(&m)));
    }

    #[test]
    fn filter_small_and_large() {
        let few: Vec<Symbol> = ["AAPL", "MSFT", "BRK.B"]
            .iter()
            .map(|s| Symbol::new(s).unwrap())
            .collect();
        let (f, bad) = SymbolFilter::new(&few);
        assert!(bad.is_empty());
        assert_eq!(f.get(key_of(&few[2]).unwrap()), Some(2));
        assert_eq!(f.get(key_of(&Symbol::new("AAP").unwrap()).unwrap()), None);
        let many: Vec<Symbol> = (0..40)
            .map(|i| Symbol::new(&format!("S{i}")).unwrap())
            .collect();
        let (f, _) = SymbolFilter::new(&many);
        for (i, s) in many.iter().enumerate() {
            assert_eq!(f.get(key_of(s).unwrap()), Some(i));
        }
        let (f, bad) = SymbolFilter::new(&[Symbol::new("ABCDEFGHIJ").unwrap()]);
        assert!(f.is_empty() && bad.len() == 1);
    }

    #[test]
    fn eligibility() {
        assert!(is_price_eligible(0));
        assert!(is_price_eligible(
            FLAG_ISO | FLAG_TRADE_THROUGH_EXEMPT | FLAG_SINGLE_PRICE_CROSS
        ));
        assert!(!is_price_eligible(FLAG_ODD_LOT));
        assert!(!is_price_eligible(FLAG_EXTENDED_HOURS));
    }
}
