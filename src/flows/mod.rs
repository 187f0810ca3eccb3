//! FlowMeter-compatible flow features, computed as packets arrive.
//!
//! Meanings follow FlowMeter (deepfence), per `../shared/datasets/flowmeter`:
//! times in nanoseconds, sizes in bytes (the captured frame's length),
//! lengths in packets, `fwd` = the direction of the flow's first packet.
//! Standard deviations are population ones. Inter-arrival times (IAT) are
//! gaps between consecutive packets *of the same direction*; the overall IAT
//! statistics run over the forward gaps and the backward gaps together, as
//! FlowMeter's do. Deliberate differences: times keep full nanosecond
//! precision (FlowMeter truncates IAT statistics to microseconds), and the
//! IAT standard deviation includes every gap (FlowMeter's skips the first).
//!
//! Memory per flow is constant: running statistics, no packet arrays.

pub mod app;
pub mod behaviour;
pub mod confirm;

use std::collections::BTreeMap;

/// FlowMeter's feature columns, in its order. The last six are rates: the
/// named column divided by `flowDuration`.
pub const FEATURES: [&str; 39] = [
    "flowDuration",
    "flowLength",
    "fwdFlowLength",
    "bwdFlowLength",
    "packetSizeTotal",
    "packetSizeMean",
    "packetSizeStd",
    "packetSizeMin",
    "packetSizeMax",
    "fwdPacketSizeTotal",
    "bwdPacketSizeTotal",
    "fwdPacketSizeMean",
    "bwdPacketSizeMean",
    "fwdPacketSizeStd",
    "bwdPacketSizeStd",
    "fwdPacketSizeMin",
    "bwdPacketSizeMin",
    "fwdPacketSizeMax",
    "bwdPacketSizeMax",
    "IATMean",
    "IATStd",
    "IATMin",
    "IATMax",
    "fwdIATTotal",
    "bwdIATTotal",
    "fwdIATMean",
    "bwdIATMean",
    "fwdIATStd",
    "bwdIATStd",
    "fwdIATMin",
    "bwdIATMin",
    "fwdIATMax",
    "bwdIATMax",
    "flowLengthPerTime",
    "fwdFlowLengthPerTime",
    "bwdFlowLengthPerTime",
    "packetSizeTotalPerTime",
    "fwdPacketSizeTotalPerTime",
    "bwdPacketSizeTotalPerTime",
];

/// Count, sum, min, max, mean and variance of a stream (Welford).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RunningStats {
    n: u64,
    sum: f64,
    min: f64,
    max: f64,
    mean: f64,
    m2: f64,
}

impl RunningStats {
    pub fn push(&mut self, x: f64) {
        self.n += 1;
        self.sum += x;
        if self.n == 1 {
            self.min = x;
            self.max = x;
        } else {
            self.min = self.min.min(x);
            self.max = self.max.max(x);
        }
        let d = x - self.mean;
        self.mean += d / self.n as f64;
        self.m2 += d * (x - self.mean);
    }

    pub fn merge(&self, other: &RunningStats) -> RunningStats {
        if self.n == 0 {
            return *other;
        }
        if other.n == 0 {
            return *self;
        }
        let n = self.n + other.n;
        let d = other.mean - self.mean;
        RunningStats {
            n,
            sum: self.sum + other.sum,
            min: self.min.min(other.min),
            max: self.max.max(other.max),
            mean: self.mean + d * other.n as f64 / n as f64,
            m2: self.m2 + other.m2 + d * d * self.n as f64 * other.n as f64 / n as f64,
        }
    }

    pub fn count(&self) -> u64 {
        self.n
    }
    pub fn sum(&self) -> f64 {
        self.sum
    }
    /// 0 for an empty stream, like FlowMeter.
    pub fn mean(&self) -> f64 {
        if self.n == 0 {
            0.0
        } else {
            self.mean
        }
    }
    pub fn std(&self) -> f64 {
        if self.n == 0 {
            0.0
        } else {
            (self.m2 / self.n as f64).max(0.0).sqrt()
        }
    }
    pub fn min(&self) -> f64 {
        if self.n == 0 {
            0.0
        } else {
            self.min
        }
    }
    pub fn max(&self) -> f64 {
        if self.n == 0 {
            0.0
        } else {
            self.max
        }
    }
}

/// The running features of one bidirectional flow.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowStats {
    pub first_ns: u64,
    pub last_ns: u64,
    fwd_prev: Option<u64>,
    bwd_prev: Option<u64>,
    size: RunningStats,
    fwd_size: RunningStats,
    bwd_size: RunningStats,
    fwd_iat: RunningStats,
    bwd_iat: RunningStats,
}

impl FlowStats {
    /// A flow starting with a (forward, by definition) packet.
    pub fn new(ts_ns: u64, size: u32) -> FlowStats {
        let mut f = FlowStats {
            first_ns: ts_ns,
            last_ns: ts_ns,
            fwd_prev: None,
            bwd_prev: None,
            size: RunningStats::default(),
            fwd_size: RunningStats::default(),
            bwd_size: RunningStats::default(),
            fwd_iat: RunningStats::default(),
            bwd_iat: RunningStats::default(),
        };
        f.add(ts_ns, size, true);
        f
    }

    /// Adds a packet; `forward` = same direction as the first packet.
    /// A timestamp before the previous one (reordered capture) counts as a
    /// zero gap.
    pub fn add(&mut self, ts_ns: u64, size: u32, forward: bool) {
        let s = size as f64;
        self.size.push(s);
        let (sizes, iats, prev) = if forward {
            (&mut self.fwd_size, &mut self.fwd_iat, &mut self.fwd_prev)
        } else {
            (&mut self.bwd_size, &mut self.bwd_iat, &mut self.bwd_prev)
        };
        sizes.push(s);
        if let Some(p) = *prev {
            iats.push(ts_ns.saturating_sub(p) as f64);
        }
        *prev = Some(ts_ns);
        self.last_ns = self.last_ns.max(ts_ns);
    }

    pub fn packets(&self) -> u64 {
        self.size.count()
    }

    /// The 39 FlowMeter features, in [`FEATURES`] order
    /// (no allocation: the hot path of `daisi flows` and training).
    pub fn feature_values(&self) -> [f64; 39] {
        let iat = self.fwd_iat.merge(&self.bwd_iat);
        let (all, fwd, bwd) = (&self.size, &self.fwd_size, &self.bwd_size);
        let (fi, bi) = (&self.fwd_iat, &self.bwd_iat);
        let duration = (self.last_ns - self.first_ns) as f64;
        let per_time = |v: f64| if duration > 0.0 { v / duration } else { 0.0 };
        [
            duration,
            all.count() as f64,
            fwd.count() as f64,
            bwd.count() as f64,
            all.sum(),
            all.mean(),
            all.std(),
            all.min(),
            all.max(),
            fwd.sum(),
            bwd.sum(),
            fwd.mean(),
            bwd.mean(),
            fwd.std(),
            bwd.std(),
            fwd.min(),
            bwd.min(),
            fwd.max(),
            bwd.max(),
            iat.mean(),
            iat.std(),
            iat.min(),
            iat.max(),
            fi.sum(),
            bi.sum(),
            fi.mean(),
            bi.mean(),
            fi.std(),
            bi.std(),
            fi.min(),
            bi.min(),
            fi.max(),
            bi.max(),
            per_time(all.count() as f64),
            per_time(fwd.count() as f64),
            per_time(bwd.count() as f64),
            per_time(all.sum()),
            per_time(fwd.sum()),
            per_time(bwd.sum()),
        ]
    }

    /// The 39 FlowMeter features by name (see [`FEATURES`]).
    pub fn features(&self) -> BTreeMap<String, f64> {
        FEATURES
            .iter()
            .zip(self.feature_values())
            .map(|(k, v)| (k.to_string(), v))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// fwd 100 B at 0, bwd 60 B at 1 µs, fwd 40 B at 3 µs, bwd 200 B at 6 µs.
    #[test]
    fn features_of_a_known_flow_match_hand_computed_values() {
        let mut f = FlowStats::new(0, 100);
        f.add(1_000, 60, false);
        f.add(3_000, 40, true);
        f.add(6_000, 200, false);
        let x = f.features();
        let expect = [
            ("flowDuration", 6000.0),
            ("flowLength", 4.0),
            ("fwdFlowLength", 2.0),
            ("bwdFlowLength", 2.0),
            ("packetSizeTotal", 400.0),
            ("packetSizeMean", 100.0),
            ("packetSizeStd", 3800f64.sqrt()), // (0² + 40² + 60² + 100²) / 4
            ("packetSizeMin", 40.0),
            ("packetSizeMax", 200.0),
            ("fwdPacketSizeTotal", 140.0),
            ("bwdPacketSizeTotal", 260.0),
            ("fwdPacketSizeMean", 70.0),
            ("bwdPacketSizeMean", 130.0),
            ("fwdPacketSizeStd", 30.0),
            ("bwdPacketSizeStd", 70.0),
            ("fwdPacketSizeMin", 40.0),
            ("bwdPacketSizeMin", 60.0),
            ("fwdPacketSizeMax", 100.0),
            ("bwdPacketSizeMax", 200.0),
            // Gaps: forward 3000, backward 5000.
            ("IATMean", 4000.0),
            ("IATStd", 1000.0),
            ("IATMin", 3000.0),
            ("IATMax", 5000.0),
            ("fwdIATTotal", 3000.0),
            ("bwdIATTotal", 5000.0),
            ("fwdIATMean", 3000.0),
            ("bwdIATMean", 5000.0),
            ("fwdIATStd", 0.0),
            ("bwdIATStd", 0.0),
            ("fwdIATMin", 3000.0),
            ("bwdIATMin", 5000.0),
            ("fwdIATMax", 3000.0),
            ("bwdIATMax", 5000.0),
            ("flowLengthPerTime", 4.0 / 6000.0),
            ("fwdFlowLengthPerTime", 2.0 / 6000.0),
            ("bwdFlowLengthPerTime", 2.0 / 6000.0),
            ("packetSizeTotalPerTime", 400.0 / 6000.0),
            ("fwdPacketSizeTotalPerTime", 140.0 / 6000.0),
            ("bwdPacketSizeTotalPerTime", 260.0 / 6000.0),
        ];
        assert_eq!(expect.len(), FEATURES.len());
        for (k, v) in expect {
            let got = x[k];
            assert!(
                (got - v).abs() < 1e-9 * v.abs().max(1.0),
                "{k}: {got} != {v}"
            );
        }
        // Exactly FlowMeter's columns, nothing missing.
        for k in FEATURES {
            assert!(x.contains_key(k), "{k}");
        }
    }

    proptest::proptest! {
        /// Any flow's features equal those computed the plain way from the
        /// list of its packets (two passes, no running sums).
        #[test]
        fn features_match_a_plain_reference(
            first in 0u64..1_000_000,
            packets in proptest::collection::vec((0u64..5_000_000, 20u32..9000, proptest::bool::ANY), 0..60),
        ) {
            let mut f = FlowStats::new(first, 60);
            let mut ts = first;
            let mut all: Vec<(u64, f64, bool)> = vec![(first, 60.0, true)];
            for (gap, size, fwd) in packets {
                ts += gap;
                f.add(ts, size, fwd);
                all.push((ts, size as f64, fwd));
            }
            let plain = |v: &[f64]| -> (f64, f64, f64, f64, f64) {
                if v.is_empty() {
                    return (0.0, 0.0, 0.0, 0.0, 0.0);
                }
                let n = v.len() as f64;
                let sum: f64 = v.iter().sum();
                let mean = sum / n;
                let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
                let min = v.iter().cloned().fold(f64::INFINITY, f64::min);
                let max = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                (sum, mean, var.sqrt(), min, max)
            };
            let sizes = |d: Option<bool>| -> Vec<f64> {
                all.iter().filter(|p| d.is_none_or(|d| p.2 == d)).map(|p| p.1).collect()
            };
            let gaps = |d: bool| -> Vec<f64> {
                let t: Vec<u64> = all.iter().filter(|p| p.2 == d).map(|p| p.0).collect();
                t.windows(2).map(|w| (w[1] - w[0]) as f64).collect()
            };
            let x = f.features();
            let close = |k: &str, want: f64| {
                let got = x[k];
                assert!((got - want).abs() <= 1e-6 * want.abs().max(1.0), "{k}: {got} != {want}");
            };
            let (sum, mean, std, min, max) = plain(&sizes(None));
            close("flowLength", all.len() as f64);
            close("packetSizeTotal", sum);
            close("packetSizeMean", mean);
            close("packetSizeStd", std);
            close("packetSizeMin", min);
            close("packetSizeMax", max);
            let (fsum, fmean, fstd, _, _) = plain(&sizes(Some(true)));
            close("fwdPacketSizeTotal", fsum);
            close("fwdPacketSizeMean", fmean);
            close("fwdPacketSizeStd", fstd);
            let (bsum, _, bstd, bmin, _) = plain(&sizes(Some(false)));
            close("bwdPacketSizeTotal", bsum);
            close("bwdPacketSizeStd", bstd);
            close("bwdPacketSizeMin", bmin);
            let mut both = gaps(true);
            both.extend(gaps(false));
            let (_, imean, istd, imin, imax) = plain(&both);
            close("IATMean", imean);
            close("IATStd", istd);
            close("IATMin", imin);
            close("IATMax", imax);
            close("fwdIATTotal", plain(&gaps(true)).0);
            close("bwdIATMax", plain(&gaps(false)).4);
            close("flowDuration", (ts - first) as f64);
        }
    }

    #[test]
    fn single_packet_flow_and_empty_directions_are_zero() {
        let x = FlowStats::new(5, 64).features();
        assert_eq!(x["flowDuration"], 0.0);
        assert_eq!(x["bwdPacketSizeMean"], 0.0);
        assert_eq!(x["IATStd"], 0.0);
        assert_eq!(x["flowLengthPerTime"], 0.0, "zero duration gives rate 0");
    }

    #[test]
    fn merged_statistics_equal_direct_ones() {
        let (mut a, mut b, mut all) = (
            RunningStats::default(),
            RunningStats::default(),
            RunningStats::default(),
        );
        for (i, x) in [3.0, 9.0, 1.0, 7.5, 2.0, 11.0, 4.0].into_iter().enumerate() {
            if i % 3 == 0 {
                a.push(x)
            } else {
                b.push(x)
            }
            all.push(x);
        }
        let m = a.merge(&b);
        assert!((m.std() - all.std()).abs() < 1e-12);
        assert!((m.mean() - all.mean()).abs() < 1e-12);
        assert_eq!(
            (m.min(), m.max(), m.count()),
            (all.min(), all.max(), all.count())
        );
    }
}

/// Why a flow ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// FIN seen from both sides.
    Fin,
    /// TCP reset.
    Rst,
    /// No packet for the idle timeout.
    Idle,
    /// Open longer than the active timeout.
    Active,
    /// Evicted early because the table was full.
    Evicted,
    /// Still open when the input ended or the node stopped.
    Flushed,
    /// Not ended: a snapshot of a flow open for one of
    /// [`FlowLimits::report_open_ns`]'s ages (its final record follows
    /// when it ends).
    Open,
}

/// The wire's name for it (the one conversion between the flow table's
/// type and the wire's).
impl From<EndReason> for crate::messages::FlowEnd {
    fn from(e: EndReason) -> Self {
        use crate::messages::FlowEnd;
        match e {
            EndReason::Fin => FlowEnd::Fin,
            EndReason::Rst => FlowEnd::Rst,
            EndReason::Idle => FlowEnd::Idle,
            EndReason::Active => FlowEnd::Active,
            EndReason::Evicted => FlowEnd::Evicted,
            EndReason::Flushed => FlowEnd::EndOfInput,
            EndReason::Open => FlowEnd::Open,
        }
    }
}

impl EndReason {
    /// Its name in CSV files and on the wire.
    pub fn name(self) -> &'static str {
        match self {
            EndReason::Fin => "fin",
            EndReason::Rst => "rst",
            EndReason::Idle => "idle",
            EndReason::Active => "active",
            EndReason::Evicted => "evicted",
            EndReason::Flushed => "end_of_input",
            EndReason::Open => "open",
        }
    }
}

/// The name of an IP protocol number as FlowMeter writes it (TCP, UDP,
/// ICMP, ICMPv6; other numbers as digits).
pub fn proto_name(p: u8) -> String {
    match p {
        6 => "TCP".into(),
        17 => "UDP".into(),
        1 => "ICMP".into(),
        58 => "ICMPv6".into(),
        n => n.to_string(),
    }
}

/// One side of a flow: address and port.
pub type Endpoint = (std::net::IpAddr, u16);

/// What the flow table needs of a packet (parsed at the capture boundary).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PacketMeta {
    pub ts_ns: u64,
    pub src: Endpoint,
    pub dst: Endpoint,
    /// IP protocol number (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6).
    pub proto: u8,
    /// Captured frame length in bytes.
    pub size: u32,
    pub syn: bool,
    pub fin: bool,
    pub rst: bool,
}

/// A finished flow: its endpoints (src = first packet's sender) and features.
#[derive(Debug, Clone, PartialEq)]
pub struct FinishedFlow {
    pub src: Endpoint,
    pub dst: Endpoint,
    pub proto: u8,
    pub stats: FlowStats,
    pub end: EndReason,
    /// Application metadata, when the table looks at payloads and the flow
    /// carried any.
    pub app: Option<crate::messages::AppMeta>,
}

/// Flow table limits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FlowLimits {
    pub idle_timeout_ns: u64,
    pub active_timeout_ns: u64,
    pub max_flows: usize,
    /// Look at payloads for application metadata, within this budget
    /// (`None`: statistics only).
    pub app: Option<app::Budget>,
    /// A flow still open at each of these ages (ns, in any order) is
    /// reported, as a snapshot ([`EndReason::Open`]), before it ends
    /// (zeros: none).
    pub report_open_ns: [u64; 2],
}

struct Open {
    src: Endpoint,
    dst: Endpoint,
    proto: u8,
    stats: FlowStats,
    fin_fwd: bool,
    fin_bwd: bool,
    app: Option<Box<app::AppState>>,
    /// How many of the report ages it has passed.
    reported: u8,
}

/// Bidirectional flow key (unordered endpoints, protocol).
pub type Key = (Endpoint, Endpoint, u8);

/// How long a TCP flow ended by FIN or RST lingers: its stragglers (the
/// last ACK after both FINs, retransmissions after a reset) are absorbed
/// and counted instead of starting one-packet flows. A SYN always starts a
/// new flow.
pub const CLOSE_LINGER_NS: u64 = 2_000_000_000;
// A TCP flow ended by the idle timeout is remembered too (bounded, no time
// limit): a FIN or RST on its key without a SYN first is its late close (a
// client that read a download from its buffer after the last byte crossed
// the wire), absorbed with the ACKs after it rather than made a flow of
// two control packets. A data packet without FIN or RST still starts a new
// flow (the connection went on after a pause).

/// Bidirectional flows keyed by the unordered 5-tuple.
pub struct FlowTable {
    limits: FlowLimits,
    open: lru::LruCache<Key, Open>,
    /// Recently closed TCP flows and when they closed (bounded).
    closed: lru::LruCache<Key, u64>,
    /// TCP flows ended by the idle timeout (bounded).
    timed_out: lru::LruCache<Key, ()>,
    /// Flows evicted because the table was full.
    pub evicted: u64,
    /// Packets absorbed by a recently closed flow, and their bytes.
    pub absorbed: u64,
    pub absorbed_bytes: u64,
    /// Flows whose payload went on past the metadata budget.
    pub app_cut: u64,
}

/// A flow's key: its 5-tuple, the same whichever way a packet goes.
pub fn flow_key(a: Endpoint, b: Endpoint, proto: u8) -> Key {
    if a <= b {
        (a, b, proto)
    } else {
        (b, a, proto)
    }
}

impl FlowTable {
    pub fn new(limits: FlowLimits) -> FlowTable {
        FlowTable {
            limits,
            open: lru::LruCache::unbounded(),
            closed: lru::LruCache::new(
                std::num::NonZeroUsize::new(limits.max_flows.clamp(1, 65_536)).expect("≥ 1"),
            ),
            timed_out: lru::LruCache::new(
                std::num::NonZeroUsize::new(limits.max_flows.clamp(1, 65_536)).expect("≥ 1"),
            ),
            evicted: 0,
            absorbed: 0,
            absorbed_bytes: 0,
            app_cut: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.open.len()
    }

    /// Memory one open flow takes in the table: its key and state, plus
    /// the LRU's links and the hash table's slot (an estimate from type
    /// sizes; no allocation per flow besides its node).
    pub fn bytes_per_flow() -> usize {
        std::mem::size_of::<(Key, Open)>() + 2 * std::mem::size_of::<usize>() + 16
    }

    /// Whether a flow between `a` and `b` is open.
    pub fn contains(&self, a: Endpoint, b: Endpoint, proto: u8) -> bool {
        self.open.contains(&flow_key(a, b, proto))
    }

    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }

    fn finish(&mut self, o: Open, end: EndReason) -> FinishedFlow {
        let app = o.app.map(|a| a.meta);
        if app.as_ref().is_some_and(|a| a.cut) {
            self.app_cut += 1;
        }
        FinishedFlow {
            src: o.src,
            dst: o.dst,
            proto: o.proto,
            stats: o.stats,
            end,
            app,
        }
    }

    /// Adds a packet without its payload (statistics only).
    pub fn packet(&mut self, p: PacketMeta, out: &mut Vec<FinishedFlow>) {
        self.packet_with_payload(p, &[], out)
    }

    /// Adds a packet and its transport payload (looked at for metadata
    /// when the table's limits say so); returns the flows that ended
    /// because of it (its own flow on FIN/RST, a timed-out flow it would
    /// have joined, or the least recently seen flow evicted to make room).
    pub fn packet_with_payload(
        &mut self,
        p: PacketMeta,
        payload: &[u8],
        out: &mut Vec<FinishedFlow>,
    ) {
        let look = |o: &mut Open, forward: bool, budget: Option<app::Budget>| {
            if let (Some(b), false) = (budget, payload.is_empty()) {
                let dns = o.proto == 17 && (o.src.1 == 53 || o.dst.1 == 53);
                o.app.get_or_insert_with(Default::default).segment(
                    payload,
                    forward,
                    o.proto == 17,
                    dns,
                    b,
                );
            }
        };
        let budget = self.limits.app;
        let k = flow_key(p.src, p.dst, p.proto);
        if let Some(o) = self.open.peek(&k) {
            let idle = p.ts_ns.saturating_sub(o.stats.last_ns) > self.limits.idle_timeout_ns;
            let active = p.ts_ns.saturating_sub(o.stats.first_ns) > self.limits.active_timeout_ns;
            if idle || active {
                let o = self.open.pop(&k).expect("peeked");
                if idle && o.proto == 6 {
                    self.timed_out.put(k, ());
                }
                out.push(self.finish(
                    o,
                    if idle {
                        EndReason::Idle
                    } else {
                        EndReason::Active
                    },
                ));
            }
        }
        match self.open.get_mut(&k) {
            Some(o) => {
                let forward = p.src == o.src;
                o.stats.add(p.ts_ns, p.size, forward);
                look(o, forward, budget);
                if p.fin {
                    if forward {
                        o.fin_fwd = true
                    } else {
                        o.fin_bwd = true
                    }
                }
                if p.rst || (o.fin_fwd && o.fin_bwd) {
                    let end = if p.rst {
                        EndReason::Rst
                    } else {
                        EndReason::Fin
                    };
                    let o = self.open.pop(&k).expect("present");
                    out.push(self.finish(o, end));
                    self.closed.put(k, p.ts_ns);
                }
            }
            None => {
                if p.proto == 6 && !p.syn && (p.fin || p.rst) && self.timed_out.pop(&k).is_some() {
                    // The late close of a flow the idle timeout ended.
                    self.absorbed += 1;
                    self.absorbed_bytes += p.size as u64;
                    self.closed.put(k, p.ts_ns);
                    return;
                }
                if p.proto == 6 && !p.syn {
                    if let Some(&at) = self.closed.peek(&k) {
                        if p.ts_ns.saturating_sub(at) <= CLOSE_LINGER_NS {
                            self.absorbed += 1;
                            self.absorbed_bytes += p.size as u64;
                            return;
                        }
                    }
                }
                if self.open.len() >= self.limits.max_flows {
                    if let Some((_, o)) = self.open.pop_lru() {
                        self.evicted += 1;
                        out.push(self.finish(o, EndReason::Evicted));
                    }
                }
                // A new flow on this key: its predecessor's linger is over.
                self.closed.pop(&k);
                self.timed_out.pop(&k);
                let mut o = Open {
                    src: p.src,
                    dst: p.dst,
                    proto: p.proto,
                    stats: FlowStats::new(p.ts_ns, p.size),
                    fin_fwd: p.fin,
                    fin_bwd: false,
                    app: None,
                    reported: 0,
                };
                look(&mut o, true, budget);
                if p.rst {
                    out.push(self.finish(o, EndReason::Rst));
                    self.closed.put(k, p.ts_ns);
                } else {
                    self.open.put(k, o);
                }
            }
        }
    }

    /// Ends the flows idle or active for too long at time `now_ns`; then
    /// reports each flow that has reached one of `report_open_ns`'s ages
    /// since its last report.
    pub fn expire(&mut self, now_ns: u64, out: &mut Vec<FinishedFlow>) {
        self.end_expired(now_ns, out);
        let ages = self.limits.report_open_ns;
        if ages.iter().all(|&a| a == 0) {
            return;
        }
        for (_, o) in self.open.iter_mut() {
            let age = now_ns.saturating_sub(o.stats.first_ns);
            let passed = ages.iter().filter(|&&a| a > 0 && age >= a).count() as u8;
            if passed <= o.reported {
                continue;
            }
            o.reported = passed;
            out.push(FinishedFlow {
                src: o.src,
                dst: o.dst,
                proto: o.proto,
                stats: o.stats.clone(),
                end: EndReason::Open,
                app: o.app.as_ref().map(|a| a.meta.clone()),
            });
        }
    }

    fn end_expired(&mut self, now_ns: u64, out: &mut Vec<FinishedFlow>) {
        // Every open flow is checked (active timeouts do not follow the
        // least-recently-seen order).
        let keys: Vec<_> = self
            .open
            .iter()
            .filter(|(_, o)| {
                now_ns.saturating_sub(o.stats.last_ns) > self.limits.idle_timeout_ns
                    || now_ns.saturating_sub(o.stats.first_ns) > self.limits.active_timeout_ns
            })
            .map(|(k, _)| *k)
            .collect();
        for k in keys {
            if let Some(o) = self.open.pop(&k) {
                let idle = now_ns.saturating_sub(o.stats.last_ns) > self.limits.idle_timeout_ns;
                if idle && o.proto == 6 {
                    self.timed_out.put(k, ());
                }
                out.push(self.finish(
                    o,
                    if idle {
                        EndReason::Idle
                    } else {
                        EndReason::Active
                    },
                ));
            }
        }
    }

    /// Ends every open flow (end of input, shutdown).
    pub fn flush(&mut self, out: &mut Vec<FinishedFlow>) {
        while let Some((_, o)) = self.open.pop_lru() {
            out.push(self.finish(o, EndReason::Flushed));
        }
    }
}

#[cfg(test)]
mod table_tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr};

    const LIMITS: FlowLimits = FlowLimits {
        idle_timeout_ns: 1_000_000_000,
        active_timeout_ns: 10_000_000_000,
        max_flows: 2,
        app: None,
        report_open_ns: [0, 0],
    };

    fn ep(last: u8, port: u16) -> Endpoint {
        (IpAddr::V4(Ipv4Addr::new(10, 0, 0, last)), port)
    }

    fn pkt(ts_ns: u64, src: Endpoint, dst: Endpoint, fin: bool, rst: bool) -> PacketMeta {
        PacketMeta {
            ts_ns,
            src,
            dst,
            proto: 6,
            size: 60,
            syn: false,
            fin,
            rst,
        }
    }

    fn syn(ts_ns: u64, src: Endpoint, dst: Endpoint) -> PacketMeta {
        PacketMeta {
            syn: true,
            ..pkt(ts_ns, src, dst, false, false)
        }
    }

    /// With `report_open_ns`, a flow open that long is reported at each
    /// age once, then ends as usual; without, nothing before its end.
    #[test]
    fn a_long_open_flow_is_reported_at_each_age_before_it_ends() {
        let (c, s) = (ep(1, 40000), ep(2, 80));
        for report in [[0, 0], [1_200_000_000, 3_000_000_000]] {
            let mut t = FlowTable::new(FlowLimits {
                report_open_ns: report,
                ..LIMITS
            });
            let mut out = vec![];
            t.packet(syn(0, c, s), &mut out);
            for i in 1..=8u64 {
                t.packet(pkt(i * 500_000_000, c, s, false, false), &mut out);
                t.expire(i * 500_000_000 + 1, &mut out);
            }
            let ends: Vec<EndReason> = out.iter().map(|f| f.end).collect();
            if report[0] == 0 {
                assert!(ends.is_empty(), "{ends:?}");
            } else {
                assert_eq!(ends, [EndReason::Open, EndReason::Open], "once per age");
                assert_eq!(out[0].stats.first_ns, 0);
                assert_eq!(out[0].stats.last_ns, 1_500_000_000);
                assert_eq!(out[1].stats.last_ns, 3_000_000_000);
            }
            t.packet(pkt(5_000_000_000, c, s, false, true), &mut out);
            assert_eq!(out.last().map(|f| f.end), Some(EndReason::Rst));
            assert_eq!(out.last().unwrap().stats.packets(), 10);
        }
    }

    #[test]
    fn stragglers_after_a_close_are_absorbed_but_a_syn_starts_anew() {
        let (c, s) = (ep(1, 40000), ep(2, 80));
        let mut t = FlowTable::new(LIMITS);
        let mut out = vec![];
        t.packet(syn(0, c, s), &mut out);
        t.packet(pkt(10, c, s, true, false), &mut out);
        t.packet(pkt(20, s, c, true, false), &mut out);
        assert_eq!(out.len(), 1);
        // The last ACK: absorbed, no one-packet flow.
        t.packet(pkt(30, c, s, false, false), &mut out);
        assert!(t.is_empty());
        assert_eq!(t.absorbed, 1);
        // After the linger, or with a SYN, a new flow begins.
        t.packet(syn(40, c, s), &mut out);
        assert_eq!(t.len(), 1);
        let mut t = FlowTable::new(LIMITS);
        t.packet(pkt(0, c, s, false, true), &mut out);
        t.packet(pkt(CLOSE_LINGER_NS + 1, c, s, false, false), &mut out);
        assert_eq!((t.len(), t.absorbed), (1, 0));
    }

    #[test]
    fn the_late_close_of_a_timed_out_flow_is_absorbed_and_new_data_is_a_flow() {
        let (c, s) = (ep(1, 40000), ep(2, 80));
        let idle = LIMITS.idle_timeout_ns;
        for by_tick in [false, true] {
            let mut t = FlowTable::new(LIMITS);
            let mut out = vec![];
            t.packet(syn(0, c, s), &mut out);
            t.packet(pkt(10, s, c, false, false), &mut out);
            if by_tick {
                t.expire(10 + idle + 1, &mut out);
            }
            // The close after the pause: FIN, FIN, last ACK, all absorbed.
            t.packet(pkt(20 + 2 * idle, c, s, true, false), &mut out);
            t.packet(pkt(21 + 2 * idle, s, c, true, false), &mut out);
            t.packet(pkt(22 + 2 * idle, c, s, false, false), &mut out);
            assert_eq!(out.len(), 1, "by_tick {by_tick}: {out:?}");
            assert_eq!(out[0].end, EndReason::Idle);
            assert!(t.is_empty());
            assert_eq!(t.absorbed, 3);
        }
        // Data after a pause (no FIN): the connection went on, a new flow.
        let mut t = FlowTable::new(LIMITS);
        let mut out = vec![];
        t.packet(syn(0, c, s), &mut out);
        t.packet(pkt(2 * idle, c, s, false, false), &mut out);
        assert_eq!((out.len(), t.len(), t.absorbed), (1, 1, 0));
    }

    #[test]
    fn fin_from_both_sides_ends_the_flow_with_its_direction() {
        let (c, s) = (ep(1, 40000), ep(2, 80));
        let mut t = FlowTable::new(LIMITS);
        let mut out = vec![];
        t.packet(pkt(0, c, s, false, false), &mut out);
        t.packet(pkt(10, s, c, false, false), &mut out);
        t.packet(pkt(20, c, s, true, false), &mut out);
        assert!(out.is_empty());
        t.packet(pkt(30, s, c, true, false), &mut out);
        assert_eq!(out.len(), 1);
        let f = &out[0];
        assert_eq!((f.src, f.dst, f.end), (c, s, EndReason::Fin));
        assert_eq!(f.stats.features()["fwdFlowLength"], 2.0);
        assert!(t.is_empty());
    }

    #[test]
    fn rst_idle_and_active_timeouts_end_flows() {
        let (a, b) = (ep(1, 1), ep(2, 2));
        let mut t = FlowTable::new(LIMITS);
        let mut out = vec![];
        t.packet(pkt(0, a, b, false, false), &mut out);
        t.packet(pkt(5, b, a, false, true), &mut out);
        assert_eq!(out.pop().map(|f| f.end), Some(EndReason::Rst));
        // Idle: the next packet after 2 s starts a new flow.
        t.packet(syn(0, a, b), &mut out);
        t.packet(pkt(2_000_000_000, a, b, false, false), &mut out);
        assert_eq!(out.pop().map(|f| f.end), Some(EndReason::Idle));
        assert_eq!(t.len(), 1);
        // Active: packets every 0.5 s for 11 s.
        let mut t = FlowTable::new(LIMITS);
        for i in 0..23u64 {
            t.packet(pkt(i * 500_000_000, a, b, false, false), &mut out);
        }
        assert_eq!(out.iter().filter(|f| f.end == EndReason::Active).count(), 1);
        // Expiry on a timer.
        let mut out = vec![];
        t.expire(100_000_000_000, &mut out);
        assert_eq!(out.pop().map(|f| f.end), Some(EndReason::Idle));
        assert!(t.is_empty());
    }

    #[test]
    fn a_full_table_evicts_the_least_recent_flow_and_counts_it() {
        let mut t = FlowTable::new(LIMITS);
        let mut out = vec![];
        t.packet(pkt(0, ep(1, 1), ep(9, 9), false, false), &mut out);
        t.packet(pkt(1, ep(2, 2), ep(9, 9), false, false), &mut out);
        t.packet(pkt(2, ep(3, 3), ep(9, 9), false, false), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].src, out[0].end), (ep(1, 1), EndReason::Evicted));
        assert_eq!((t.len(), t.evicted), (2, 1));
        t.flush(&mut out);
        assert_eq!(
            out.iter().filter(|f| f.end == EndReason::Flushed).count(),
            2
        );
    }
}
