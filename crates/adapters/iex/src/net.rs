//! Ethernet II (with any number of 802.1Q / 802.1ad VLAN tags) → IPv4 (variable header
//! length) → UDP → payload. Network headers are big-endian. Nothing here assumes the payload
//! sits at byte 42.

/// Ethertype of IPv4.
pub const ETHERTYPE_IPV4: u16 = 0x0800;
/// Ethertypes of VLAN tags: 802.1Q, 802.1ad (stacked `QinQ`) and the legacy `QinQ` value.
pub const VLAN_ETHERTYPES: [u16; 3] = [0x8100, 0x88a8, 0x9100];
/// IP protocol number of UDP.
pub const IPPROTO_UDP: u8 = 17;

pub use crate::error::FrameError;

/// What a frame holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A UDP datagram's payload.
    Udp {
        /// Destination port.
        dst_port: u16,
        /// The UDP payload (an IEX-TP segment on the TOPS feed).
        payload: &'a [u8],
    },
    /// Something else (ARP, IPv6, TCP, an IPv4 fragment): not market data, skipped.
    Other(&'static str),
}

/// Decodes an Ethernet frame down to its UDP payload. `Err` names what is impossible in the
/// frame (a header cut short, lengths that disagree).
pub fn udp_payload(frame: &[u8]) -> Result<Frame<'_>, FrameError> {
    if frame.len() < 14 {
        return Err(FrameError::EthernetCut { len: frame.len() });
    }
    let mut ethertype = be16(frame, 12);
    let mut at = 14;
    while VLAN_ETHERTYPES.contains(&ethertype) {
        if frame.len() < at + 4 {
            return Err(FrameError::VlanCut { len: frame.len() });
        }
        ethertype = be16(frame, at + 2);
        at += 4;
    }
    if ethertype != ETHERTYPE_IPV4 {
        return Ok(Frame::Other("not IPv4"));
    }
    let ip = &frame[at..];
    if ip.len() < 20 {
        return Err(FrameError::Ipv4HeaderCut { len: ip.len() });
    }
    if ip[0] >> 4 != 4 {
        return Err(FrameError::IpVersion {
            version: ip[0] >> 4,
        });
    }
    let header_len = usize::from(ip[0] & 0x0F) * 4;
    let total_len = usize::from(be16(ip, 2));
    if header_len < 20 || total_len < header_len {
        return Err(FrameError::Ipv4Lengths {
            header_len,
            total_len,
        });
    }
    if total_len > ip.len() {
        return Err(FrameError::Ipv4Truncated {
            total_len,
            captured: ip.len(),
        });
    }
    if ip[9] != IPPROTO_UDP {
        return Ok(Frame::Other("not UDP"));
    }
    let flags_fragment = be16(ip, 6);
    if flags_fragment & 0x3FFF != 0 {
        // More-fragments set or a non-zero fragment offset: IEX-TP segments fit one frame.
        return Ok(Frame::Other("IPv4 fragment"));
    }
    // Ethernet padding may follow the IP packet: bound by the IP total length.
    let udp = &ip[header_len..total_len];
    if udp.len() < 8 {
        return Err(FrameError::UdpHeaderCut { len: udp.len() });
    }
    let udp_len = usize::from(be16(udp, 4));
    if udp_len < 8 || udp_len > udp.len() {
        return Err(FrameError::UdpLength {
            udp_len,
            available: udp.len(),
        });
    }
    Ok(Frame::Udp {
        dst_port: be16(udp, 2),
        payload: &udp[8..udp_len],
    })
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(tags: &[u16], ihl_words: u8, payload: &[u8], pad: usize) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        for t in tags {
            f.extend_from_slice(&t.to_be_bytes());
            f.extend_from_slice(&[0x03, 0xf5]);
        }
        f.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        let hl = usize::from(ihl_words) * 4;
        let total = hl + 8 + payload.len();
        let mut ip = vec![0u8; hl];
        ip[0] = 0x40 | ihl_words;
        ip[2..4].copy_from_slice(&u16::try_from(total).unwrap().to_be_bytes());
        ip[9] = IPPROTO_UDP;
        f.extend_from_slice(&ip);
        f.extend_from_slice(&10377u16.to_be_bytes());
        f.extend_from_slice(&10377u16.to_be_bytes());
        f.extend_from_slice(&u16::try_from(8 + payload.len()).unwrap().to_be_bytes());
        f.extend_from_slice(&[0, 0]);
        f.extend_from_slice(payload);
        f.extend(std::iter::repeat_n(0u8, pad));
        f
    }

    #[test]
    fn plain_vlan_stacked_and_ip_options() {
        for (tags, ihl) in [(vec![], 5), (vec![0x8100], 5), (vec![0x88a8, 0x8100], 6)] {
            let f = frame(&tags, ihl, b"hello", 7);
            assert_eq!(
                udp_payload(&f).unwrap(),
                Frame::Udp {
                    dst_port: 10377,
                    payload: b"hello"
                }
            );
        }
    }

    #[test]
    fn cut_frames_are_errors_and_others_skipped() {
        let f = frame(&[], 5, b"hello", 0);
        let cut = udp_payload(&f[..f.len() - 2]).unwrap_err();
        assert_eq!(
            cut,
            FrameError::Ipv4Truncated {
                total_len: 33,
                captured: 31
            }
        );
        assert!(cut.to_string().contains("captured"), "{cut}");
        assert_eq!(
            udp_payload(&f[..10]),
            Err(FrameError::EthernetCut { len: 10 })
        );
        let mut arp = f.clone();
        arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
        assert_eq!(udp_payload(&arp).unwrap(), Frame::Other("not IPv4"));
        let mut tcp = f.clone();
        tcp[14 + 9] = 6;
        assert_eq!(udp_payload(&tcp).unwrap(), Frame::Other("not UDP"));
        let mut frag = f;
        frag[14 + 6] = 0x20;
        assert_eq!(udp_payload(&frag).unwrap(), Frame::Other("IPv4 fragment"));
    }
}
