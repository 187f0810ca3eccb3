//! Packet headers → [`PacketMeta`] for the flow table: the network-side
//! kernel/wire boundary. Parsing is etherparse's (lax, so that frames cut
//! by the snap length keep their headers); link types: Ethernet
//! (with VLAN tags), Linux cooked SLL and SLL2 (what capture on `any`
//! gives), raw IPv4/IPv6. Anything else is skipped with a reason, so it can
//! be counted.

use crate::flows::PacketMeta;
use etherparse::err::Layer;
use etherparse::{EtherType, IpNumber, LaxNetSlice, LaxSlicedPacket, TransportSlice};

/// Link-layer framing of captured packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkKind {
    Ethernet,
    LinuxSll,
    LinuxSll2,
    RawIp,
}

impl LinkKind {
    /// From a pcap link-type number; `None` for unsupported ones.
    pub fn from_pcap(linktype: i32) -> Option<LinkKind> {
        match linktype {
            1 => Some(LinkKind::Ethernet),
            113 => Some(LinkKind::LinuxSll),
            276 => Some(LinkKind::LinuxSll2),
            12 | 14 | 101 | 228 | 229 => Some(LinkKind::RawIp),
            _ => None,
        }
    }
}

/// Why a packet does not feed a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Skip {
    /// Headers cut short or invalid.
    Malformed,
    /// Not IPv4/IPv6 (ARP, ...).
    NotIp,
    /// An IP fragment (ports unknown).
    Fragment,
    /// IP, but not TCP, UDP or ICMP.
    OtherProtocol,
}

impl Skip {
    pub const ALL: [Skip; 4] = [
        Skip::Malformed,
        Skip::NotIp,
        Skip::Fragment,
        Skip::OtherProtocol,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Skip::Malformed => "malformed",
            Skip::NotIp => "not_ip",
            Skip::Fragment => "fragment",
            Skip::OtherProtocol => "other_protocol",
        }
    }
}

/// Lengths of the Linux SLL and SLL2 headers, and where their protocol
/// (EtherType) field sits.
const SLL_HEADER: usize = 16;
const SLL2_HEADER: usize = 20;

/// Parses one captured frame. Lax: a frame cut short by the snap length
/// still yields its headers (sizes come from the capture header, not the
/// bytes kept).
pub fn parse(link: LinkKind, data: &[u8], ts_ns: u64, size: u32) -> Result<PacketMeta, Skip> {
    parse_with_payload(link, data, ts_ns, size).map(|(meta, _)| meta)
}

/// [`parse`], and the transport payload's captured bytes (empty for ICMP,
/// and past the snap length).
pub fn parse_with_payload(
    link: LinkKind,
    data: &[u8],
    ts_ns: u64,
    size: u32,
) -> Result<(PacketMeta, &[u8]), Skip> {
    let ether_type = |at: usize, header: usize| -> Result<LaxSlicedPacket<'_>, Skip> {
        if data.len() < header {
            return Err(Skip::Malformed);
        }
        let t = EtherType(u16::from_be_bytes([data[at], data[at + 1]]));
        Ok(LaxSlicedPacket::from_ether_type(t, &data[header..]))
    };
    let sliced = match link {
        LinkKind::Ethernet => LaxSlicedPacket::from_ethernet(data).map_err(|_| Skip::Malformed)?,
        LinkKind::LinuxSll => ether_type(14, SLL_HEADER)?,
        LinkKind::LinuxSll2 => ether_type(0, SLL2_HEADER)?,
        LinkKind::RawIp => LaxSlicedPacket::from_ip(data).map_err(|_| Skip::Malformed)?,
    };
    let (src_ip, dst_ip, proto, fragmented): (std::net::IpAddr, std::net::IpAddr, IpNumber, bool) =
        match &sliced.net {
            Some(LaxNetSlice::Ipv4(ip)) => (
                ip.header().source_addr().into(),
                ip.header().destination_addr().into(),
                ip.payload().ip_number,
                ip.is_payload_fragmented(),
            ),
            Some(LaxNetSlice::Ipv6(ip)) => (
                ip.header().source_addr().into(),
                ip.header().destination_addr().into(),
                ip.payload().ip_number,
                ip.is_payload_fragmented(),
            ),
            // An IP header that did not parse is malformed; no IP header
            // at all (ARP, other EtherTypes) is not IP.
            _ if sliced.stop_err.as_ref().is_some_and(|(_, layer)| {
                matches!(layer, Layer::Ipv4Header | Layer::Ipv6Header)
            }) =>
            {
                return Err(Skip::Malformed)
            }
            _ => return Err(Skip::NotIp),
        };
    if fragmented {
        return Err(Skip::Fragment);
    }
    let (sport, dport, syn, fin, rst, payload) = match &sliced.transport {
        Some(TransportSlice::Tcp(t)) => (
            t.source_port(),
            t.destination_port(),
            t.syn(),
            t.fin(),
            t.rst(),
            t.payload(),
        ),
        Some(TransportSlice::Udp(u)) => (
            u.source_port(),
            u.destination_port(),
            false,
            false,
            false,
            u.payload(),
        ),
        Some(TransportSlice::Icmpv4(_)) | Some(TransportSlice::Icmpv6(_)) => {
            (0, 0, false, false, false, &[][..])
        }
        // TCP/UDP/ICMP whose header was cut short or is invalid.
        None if matches!(
            proto,
            IpNumber::TCP | IpNumber::UDP | IpNumber::ICMP | IpNumber::IPV6_ICMP
        ) =>
        {
            return Err(Skip::Malformed)
        }
        _ => return Err(Skip::OtherProtocol),
    };
    Ok((
        PacketMeta {
            ts_ns,
            src: (src_ip, sport),
            dst: (dst_ip, dport),
            proto: proto.0,
            size,
            syn,
            fin,
            rst,
        },
        payload,
    ))
}
