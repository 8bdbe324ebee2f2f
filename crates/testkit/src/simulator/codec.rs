//! Small codecs of the wire formats: base64 (standard and URL-safe alphabets, for Alpaca's
//! page tokens and Polygon's cursors), percent-decoding of path segments, and the mixer
//! behind Polygon's request ids.

pub(super) const STANDARD_ALPHABET: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
pub(super) const URL_ALPHABET: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

pub(super) fn base64_encode(data: &[u8], alphabet: &[u8; 64], pad: bool) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let symbols = chunk.len() + 1;
        for i in 0..4 {
            if i < symbols {
                let index = (n >> (18 - 6 * i)) & 0x3f;
                out.push(char::from(alphabet[index as usize]));
            } else if pad {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes standard or URL-safe base64, padded or not.
pub(super) fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=');
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for c in text.bytes() {
        let value = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from((acc >> bits) & 0xff).ok()?);
        }
    }
    // A single leftover symbol (6 bits) cannot end a valid encoding.
    if bits >= 6 {
        return None;
    }
    Some(out)
}

/// Decodes `%XX` escapes of a path segment; `None` when malformed or not UTF-8.
pub(super) fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

pub(super) const fn splitmix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_both_alphabets() {
        for text in [
            "",
            "A",
            "AB",
            "ABC",
            "AAPL|M|2024-03-15T13:32:00.000000000Z",
        ] {
            let standard = base64_encode(text.as_bytes(), STANDARD_ALPHABET, true);
            let url_safe = base64_encode(text.as_bytes(), URL_ALPHABET, false);
            assert_eq!(base64_decode(&standard).unwrap(), text.as_bytes());
            assert_eq!(base64_decode(&url_safe).unwrap(), text.as_bytes());
        }
        // The examples of the wire-format docs.
        assert_eq!(
            base64_encode(
                b"AAPL|M|2024-03-15T13:32:00.000000000Z",
                STANDARD_ALPHABET,
                true
            ),
            "QUFQTHxNfDIwMjQtMDMtMTVUMTM6MzI6MDAuMDAwMDAwMDAwWg=="
        );
        assert_eq!(
            base64_encode(b"limit=5000&sort=asc", URL_ALPHABET, false),
            "bGltaXQ9NTAwMCZzb3J0PWFzYw"
        );
        assert!(base64_decode("A").is_none());
        assert!(base64_decode("not base64!").is_none());
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("BRK%2EB").as_deref(), Some("BRK.B"));
        assert_eq!(percent_decode("AAPL").as_deref(), Some("AAPL"));
        assert!(percent_decode("A%2").is_none());
        assert!(percent_decode("A%zz").is_none());
    }
}
