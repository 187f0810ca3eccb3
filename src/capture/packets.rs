//! Packet headers → [`PacketMeta`] for the flow table: the network-side
//! kernel/wire boundary. Parsing is etherparse's; link types: Ethernet
//! (with VLAN tags), Linux cooked SLL and SLL2 (what capture on `any`
//! gives), raw IPv4/IPv6. Anything else is skipped with a reason, so it can
//! be counted.

use crate::flows::PacketMeta;
use etherparse::{NetSlice, SlicedPacket, TransportSlice};

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
    pub fn name(self) -> &'static str {
        match self {
            Skip::Malformed => "malformed",
            Skip::NotIp => "not_ip",
            Skip::Fragment => "fragment",
            Skip::OtherProtocol => "other_protocol",
        }
    }
}

/// Length of the Linux SLL2 header; its first two bytes are the protocol.
const SLL2_HEADER: usize = 20;

/// Parses one captured frame.
pub fn parse(link: LinkKind, data: &[u8], ts_ns: u64, size: u32) -> Result<PacketMeta, Skip> {
    let sliced = match link {
        LinkKind::Ethernet => SlicedPacket::from_ethernet(data),
        LinkKind::LinuxSll => SlicedPacket::from_linux_sll(data),
        LinkKind::LinuxSll2 => {
            if data.len() < SLL2_HEADER {
                return Err(Skip::Malformed);
            }
            match u16::from_be_bytes([data[0], data[1]]) {
                0x0800 | 0x86dd => SlicedPacket::from_ip(&data[SLL2_HEADER..]),
                _ => return Err(Skip::NotIp),
            }
        }
        LinkKind::RawIp => SlicedPacket::from_ip(data),
    }
    .map_err(|_| Skip::Malformed)?;
    let (src_ip, dst_ip, proto, fragmented): (std::net::IpAddr, std::net::IpAddr, u8, bool) =
        match &sliced.net {
            Some(NetSlice::Ipv4(ip)) => (
                ip.header().source_addr().into(),
                ip.header().destination_addr().into(),
                ip.payload_ip_number().0,
                ip.is_payload_fragmented(),
            ),
            Some(NetSlice::Ipv6(ip)) => (
                ip.header().source_addr().into(),
                ip.header().destination_addr().into(),
                ip.payload().ip_number.0,
                ip.is_payload_fragmented(),
            ),
            _ => return Err(Skip::NotIp),
        };
    if fragmented {
        return Err(Skip::Fragment);
    }
    let (sport, dport, syn, fin, rst) = match &sliced.transport {
        Some(TransportSlice::Tcp(t)) => (
            t.source_port(),
            t.destination_port(),
            t.syn(),
            t.fin(),
            t.rst(),
        ),
        Some(TransportSlice::Udp(u)) => {
            (u.source_port(), u.destination_port(), false, false, false)
        }
        Some(TransportSlice::Icmpv4(_)) | Some(TransportSlice::Icmpv6(_)) => {
            (0, 0, false, false, false)
        }
        _ => return Err(Skip::OtherProtocol),
    };
    Ok(PacketMeta {
        ts_ns,
        src: (src_ip, sport),
        dst: (dst_ip, dport),
        proto,
        size,
        syn,
        fin,
        rst,
    })
}
