//! Packet capture through libpcap (the `pcap` crate): live on an interface,
//! or from a capture file, yielding [`PacketMeta`] for the flow table. The
//! same reader serves the packet-source actor, `daisi flows`, and network
//! training/evaluation, so every path parses packets the same way.

use super::packets::{parse_with_payload, LinkKind, Skip};
use crate::flows::{FinishedFlow, FlowLimits, FlowTable, PacketMeta};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Why a capture could not start.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("cannot read {path} as a pcap file: {source}")]
    File { path: PathBuf, source: pcap::Error },
    #[error("{what}: unsupported link type {linktype} ({name}); supported: Ethernet, Linux cooked (SLL, SLL2), raw IP")]
    LinkType {
        what: String,
        linktype: i32,
        name: String,
    },
    #[error("no network interface named {0:?} (see `ip link`; `any` captures on all)")]
    NoInterface(String),
    #[error("capturing on {interface} needs CAP_NET_RAW (run as root or grant the capability): {source}")]
    Permission {
        interface: String,
        source: pcap::Error,
    },
    #[error("cannot capture on {interface}: {source}")]
    Live {
        interface: String,
        source: pcap::Error,
    },
    #[error("invalid capture filter {filter:?}: {source}")]
    Filter { filter: String, source: pcap::Error },
}

/// Live capture settings (the packet source's config passes them through).
#[derive(Debug, Clone)]
pub struct LiveOptions {
    pub interface: String,
    pub filter: String,
    pub snaplen: i32,
    pub promiscuous: bool,
    pub buffer_bytes: i32,
    /// Kernel block timeout: how long captured packets may wait in the
    /// kernel before they are handed over.
    pub timeout_ms: i32,
}

enum Handle {
    Live(pcap::Capture<pcap::Active>),
    File(pcap::Capture<pcap::Offline>),
}

/// What one read produced: a packet's headers and its transport payload's
/// captured bytes (valid until the next read).
pub enum Next<'a> {
    Packet(Result<(PacketMeta, &'a [u8]), Skip>),
    /// Live capture: no packet is ready now (see [`PacketReader::wait`]).
    Idle,
    /// The file ended.
    End,
    /// A file is truncated or corrupt here (what came before is good), or
    /// a live capture failed (the interface went away...).
    Failed(String),
}

/// An open capture.
pub struct PacketReader {
    handle: Handle,
    link: LinkKind,
}

fn link_of(what: &str, linktype: pcap::Linktype) -> Result<LinkKind, CaptureError> {
    LinkKind::from_pcap(linktype.0).ok_or_else(|| CaptureError::LinkType {
        what: what.to_string(),
        linktype: linktype.0,
        name: linktype.get_name().unwrap_or_else(|_| "unknown".into()),
    })
}

impl PacketReader {
    /// Opens a capture file (pcap or pcapng), nanosecond timestamps.
    pub fn open_file(path: &Path) -> Result<PacketReader, CaptureError> {
        let cap = pcap::Capture::from_file_with_precision(path, pcap::Precision::Nano).map_err(
            |source| CaptureError::File {
                path: path.to_path_buf(),
                source,
            },
        )?;
        let link = link_of(&path.display().to_string(), cap.get_datalink())?;
        Ok(PacketReader {
            handle: Handle::File(cap),
            link,
        })
    }

    /// Opens a live capture; every failure names its cause.
    pub fn open_live(o: &LiveOptions) -> Result<PacketReader, CaptureError> {
        let iface = o.interface.clone();
        if iface != "any" {
            let known = pcap::Device::list()
                .map(|l| l.iter().any(|d| d.name == iface))
                .unwrap_or(true);
            if !known {
                return Err(CaptureError::NoInterface(iface));
            }
        }
        let live = |source| CaptureError::Live {
            interface: iface.clone(),
            source,
        };
        let inactive = pcap::Capture::from_device(iface.as_str())
            .map_err(live)?
            .snaplen(o.snaplen)
            .promisc(o.promiscuous)
            .buffer_size(o.buffer_bytes)
            .timeout(o.timeout_ms)
            .precision(pcap::Precision::Nano);
        let mut cap = inactive.open().map_err(|source| {
            let text = source.to_string();
            if text.contains("ermission") || text.contains("not permitted") {
                CaptureError::Permission {
                    interface: iface.clone(),
                    source,
                }
            } else if text.contains("No such device") || text.contains("doesn't exist") {
                CaptureError::NoInterface(iface.clone())
            } else {
                live(source)
            }
        })?;
        if !o.filter.trim().is_empty() {
            cap.filter(&o.filter, true)
                .map_err(|source| CaptureError::Filter {
                    filter: o.filter.clone(),
                    source,
                })?;
        }
        let link = link_of(&iface, cap.get_datalink())?;
        // Non-blocking reads plus our own poll with a timeout: libpcap's
        // read timeout does not fire while no packet arrives (TPACKET_V3),
        // which would hold a partial batch and a shutdown indefinitely.
        let cap = cap.setnonblock().map_err(live)?;
        Ok(PacketReader {
            handle: Handle::Live(cap),
            link,
        })
    }

    /// Live capture: waits until a packet is ready or `timeout` passes.
    /// Returns at once for files.
    pub fn wait(&self, timeout: std::time::Duration) {
        use std::os::fd::AsRawFd;
        if let Handle::Live(c) = &self.handle {
            let mut fds = [libc::pollfd {
                fd: c.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            }];
            let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
            // SAFETY: one valid pollfd for the duration of the call; the
            // descriptor belongs to the open capture we borrow.
            unsafe { libc::poll(fds.as_mut_ptr(), 1, ms) };
        }
    }

    /// Reads one packet (blocking up to the live timeout).
    pub fn read(&mut self) -> Next<'_> {
        let r = match &mut self.handle {
            Handle::Live(c) => c.next_packet(),
            Handle::File(c) => c.next_packet(),
        };
        match r {
            Ok(p) => {
                // With nanosecond precision the "usec" field holds nanoseconds.
                let ts = p.header.ts.tv_sec.max(0) as u64 * 1_000_000_000
                    + p.header.ts.tv_usec.max(0) as u64;
                // Sizes are the frame's length on the wire, as FlowMeter's.
                Next::Packet(parse_with_payload(self.link, p.data, ts, p.header.len))
            }
            Err(pcap::Error::TimeoutExpired) => Next::Idle,
            Err(pcap::Error::NoMorePackets) => Next::End,
            Err(e) => Next::Failed(e.to_string()),
        }
    }

    /// Kernel-side counts of a live capture: (received, dropped by the
    /// kernel buffer, dropped by the interface).
    pub fn kernel_stats(&mut self) -> Option<(u64, u64, u64)> {
        match &mut self.handle {
            Handle::Live(c) => c
                .stats()
                .ok()
                .map(|s| (s.received as u64, s.dropped as u64, s.if_dropped as u64)),
            Handle::File(_) => None,
        }
    }
}

/// Counts of reading one capture file into flows.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct FlowsSummary {
    pub packets: u64,
    pub flows: u64,
    pub evicted: u64,
    pub skipped: BTreeMap<&'static str, u64>,
    /// Set when the file ended in a read error (truncated or corrupt).
    pub read_error: Option<String>,
    /// Most flows open at once.
    pub peak_open: usize,
    /// TCP stragglers after a FIN/RST close, absorbed (not new flows).
    pub absorbed_packets: u64,
    pub absorbed_bytes: u64,
}

/// Reads a capture file through a flow table, handing each flow to
/// `on_flow` as it ends (and the rest at the end of the file). Memory is
/// bounded by `limits.max_flows`.
pub fn file_flows<E>(
    path: &Path,
    limits: FlowLimits,
    mut on_flow: impl FnMut(FinishedFlow) -> Result<(), E>,
) -> Result<Result<FlowsSummary, E>, CaptureError> {
    let mut reader = PacketReader::open_file(path)?;
    let mut table = FlowTable::new(limits);
    let mut s = FlowsSummary::default();
    let mut done = Vec::new();
    let r = (|| {
        loop {
            match reader.read() {
                Next::Packet(p) => {
                    s.packets += 1;
                    match p {
                        Ok((meta, payload)) => table.packet_with_payload(meta, payload, &mut done),
                        Err(skip) => *s.skipped.entry(skip.name()).or_default() += 1,
                    }
                    s.peak_open = s.peak_open.max(table.len());
                }
                Next::End | Next::Idle => break,
                Next::Failed(e) => {
                    s.read_error = Some(e);
                    break;
                }
            }
            for f in done.drain(..) {
                s.flows += 1;
                on_flow(f)?;
            }
        }
        table.flush(&mut done);
        s.evicted = table.evicted;
        s.absorbed_packets = table.absorbed;
        s.absorbed_bytes = table.absorbed_bytes;
        for f in done.drain(..) {
            s.flows += 1;
            on_flow(f)?;
        }
        Ok(())
    })();
    Ok(r.map(|()| s))
}
