//! Flow merge: packets become bidirectional flows at the edge.
//!
//! Holds the bounded flow table (`crate::flows::FlowTable`). A flow is
//! finished on TCP FIN from both sides or RST (as its packet arrives), on
//! the idle or active timeout (checked every `tick`), or early when the
//! table is full (`flow_merge.evicted`); finished flows leave at once, as a
//! `FlowBatch` of `FlowRecord`s (the wire type, converted here), so a flow
//! can be scored the moment it ends.
//!
//! Clock: live capture expires flows by the wall clock; a capture file by
//! its own packet times (else a file read at full speed would look idle).

use crate::actors::network::packet_source::PacketSourceKind;
use crate::actors::network::packet_source::Packets;
use crate::actors::runtime::mailbox::{Edge, MailboxConfig};
use crate::actors::runtime::supervision::{fail, Restarts};
use crate::actors::runtime::{
    drained_after, now_ns, on_start, Drain, DrainReply, NodeActor, NodeInfo,
};
use crate::actors::transport::Publish;
use crate::capture::sockets::{Owner, SocketOwners};
use crate::config::validate::{ConfigError, Validate};
use crate::flows::{flow_key, EndReason, FinishedFlow, FlowLimits, FlowTable, Key, PacketMeta};
use crate::messages::{FlowBatch, FlowRecord, Payload};
use crate::metrics::{Counter, Gauge};
use actix::prelude::*;
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// `[flow_merge]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FlowMergeConfig {
    /// A flow with no packet for this long has ended (UDP, ICMP, and TCP
    /// without FIN/RST end only this way).
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// A flow open this long is ended, and a new one begins.
    #[serde(with = "humantime_serde")]
    pub active_timeout: Duration,
    /// Flows held at once; when full, the least recently seen one is ended
    /// early and counted (flow_merge.evicted).
    pub max_flows: usize,
    /// How often timeouts are checked.
    #[serde(with = "humantime_serde")]
    pub tick: Duration,
    /// Most flows in one message.
    pub max_batch: usize,
    /// Live capture: attribute each new TCP/UDP flow to the local process
    /// owning its socket (from /proc), so flow records carry pid and
    /// executable. Only sockets in daisi's own network namespace are seen.
    pub attribute: bool,
    /// Most attribution lookups per second (each reads /proc/net tables;
    /// beyond this, flows go unattributed and are counted).
    pub attribute_per_second: u32,
    /// Payload bytes each flow's application metadata may look at (HTTP,
    /// TLS, SSH, DNS; `flows::app`); 0: none. A flow going on past it is
    /// counted (`flow_merge.app_cut`). Needs `packet_source.payload_bytes`.
    pub app_bytes: usize,
    /// A flow still open this long is reported before it ends (`end:
    /// "open"`; its final record follows), so that per-source rules judge
    /// what flows ended only by `idle_timeout` show (DNS names, SYNs
    /// never answered) within a second; 0s: not.
    #[serde(with = "humantime_serde")]
    pub report_open_after: Duration,
    /// And once more at this age, so that long, slow connections are
    /// judged while they last; 0s: not.
    #[serde(with = "humantime_serde")]
    pub report_long_open_after: Duration,
    pub mailbox: MailboxConfig,
}

impl FlowMergeConfig {
    /// The flow table's metadata budget (`None` when off).
    pub fn app_budget(&self) -> Option<crate::flows::app::Budget> {
        (self.app_bytes > 0).then(|| crate::flows::app::Budget {
            bytes: self.app_bytes,
            ..Default::default()
        })
    }
}

impl Default for FlowMergeConfig {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(30),
            active_timeout: Duration::from_secs(1800),
            max_flows: 262_144,
            tick: Duration::from_millis(250),
            max_batch: 256,
            attribute: true,
            attribute_per_second: 2000,
            app_bytes: 4096,
            report_open_after: Duration::from_millis(500),
            report_long_open_after: Duration::from_secs(15),
            mailbox: MailboxConfig {
                capacity: 16,
                ..Default::default()
            },
        }
    }
}

impl Validate for FlowMergeConfig {
    fn validate(&self, path: &str, errors: &mut Vec<ConfigError>) {
        for (k, d) in [
            ("idle_timeout", self.idle_timeout),
            ("active_timeout", self.active_timeout),
            ("tick", self.tick),
        ] {
            if d.is_zero() {
                errors.push(ConfigError::new(format!("{path}.{k}"), "must be above 0"));
            }
        }
        for (k, v) in [("max_flows", self.max_flows), ("max_batch", self.max_batch)] {
            if v == 0 {
                errors.push(ConfigError::new(
                    format!("{path}.{k}"),
                    "must be at least 1",
                ));
            }
        }
        self.mailbox.validate(&format!("{path}.mailbox"), errors);
    }
}

/// The one conversion from the flow table's type to the wire type.
pub fn to_record(f: FinishedFlow, owner: Option<Owner>) -> FlowRecord {
    FlowRecord {
        src: f.src.0.to_string(),
        dst: f.dst.0.to_string(),
        src_port: f.src.1,
        dst_port: f.dst.1,
        proto: f.proto,
        first_ns: f.stats.first_ns,
        last_ns: f.stats.last_ns,
        features: f.stats.features(),
        end: f.end.into(),
        pid: owner.as_ref().map(|o| o.pid),
        exe: owner.and_then(|o| o.exe),
        app: f.app,
    }
}

/// The flow-merge actor.
pub struct FlowMerge {
    /// Secrets out of HTTP request targets before they leave the host.
    redaction: crate::redact::Redaction,
    redacted: Counter,
    cfg: FlowMergeConfig,
    node: NodeInfo,
    /// Live capture (wall clock) or a file (packet clock).
    live: bool,
    table: FlowTable,
    latest_ns: u64,
    done: Vec<FinishedFlow>,
    /// Socket owners of open flows (live capture with `attribute`).
    owners: Option<(SocketOwners, lru::LruCache<Key, Owner>)>,
    /// Attribution budget of the current second.
    budget: (Instant, u32),
    out: Edge<Publish>,
    restarts: Restarts,
    flows: Counter,
    reported_open: Counter,
    evicted: Counter,
    absorbed: Counter,
    app_cut: Counter,
    attributed: Counter,
    unattributed: Counter,
    open: Gauge,
}

impl FlowMerge {
    pub fn new(
        cfg: FlowMergeConfig,
        node: NodeInfo,
        (live, redaction): (bool, crate::redact::Redaction),
        out: Edge<Publish>,
    ) -> Self {
        let m = &node.metrics;
        Self {
            redaction,
            redacted: m.counter("flow_merge.redacted"),
            table: FlowTable::new(FlowLimits {
                idle_timeout_ns: cfg.idle_timeout.as_nanos() as u64,
                active_timeout_ns: cfg.active_timeout.as_nanos() as u64,
                max_flows: cfg.max_flows,
                app: cfg.app_budget(),
                report_open_ns: [cfg.report_open_after, cfg.report_long_open_after]
                    .map(|d| d.as_nanos() as u64),
            }),
            restarts: Restarts::new(Self::NAME, m),
            flows: m.counter("flow_merge.flows"),
            reported_open: m.counter("flow_merge.reported_open"),
            evicted: m.counter("flow_merge.evicted"),
            absorbed: m.counter("flow_merge.absorbed"),
            app_cut: m.counter("flow_merge.app_cut"),
            attributed: m.counter("flow_merge.attributed"),
            unattributed: m.counter("flow_merge.unattributed"),
            owners: (live && cfg.attribute).then(|| {
                (
                    SocketOwners::new(Duration::from_millis(100)),
                    lru::LruCache::new(
                        std::num::NonZeroUsize::new(cfg.max_flows.max(1)).expect("≥ 1"),
                    ),
                )
            }),
            budget: (Instant::now(), 0),
            open: m.gauge("flow_merge.open"),
            latest_ns: 0,
            done: Vec::new(),
            live,
            cfg,
            node,
            out,
        }
    }

    /// Looks up the local process of a new flow, within the budget.
    fn attribute(&mut self, p: &PacketMeta) {
        let Some((sockets, owners)) = self.owners.as_mut() else {
            return;
        };
        if self.budget.0.elapsed() >= Duration::from_secs(1) {
            self.budget = (Instant::now(), 0);
        }
        if self.budget.1 >= self.cfg.attribute_per_second {
            self.unattributed.inc();
            return;
        }
        self.budget.1 += 1;
        match sockets.owner(p.proto, p.src, p.dst) {
            Some(o) => {
                self.attributed.inc();
                owners.put(flow_key(p.src, p.dst, p.proto), o);
            }
            None => self.unattributed.inc(),
        }
    }

    /// Sends the finished flows on (waiting for room: backpressure).
    fn send_done(&mut self, ctx: &mut Context<Self>) {
        let handoff = self.handoff();
        ctx.wait(handoff);
    }

    /// Hands the finished flows to the outbound actor, in batches.
    fn handoff(&mut self) -> impl ActorFuture<Self, Output = ()> {
        self.open.set(self.table.len() as u64);
        // The table counts; the node's counters follow it.
        for (total, counter) in [
            (self.table.evicted, &self.evicted),
            (self.table.absorbed, &self.absorbed),
            (self.table.app_cut, &self.app_cut),
        ] {
            let counted = counter.get();
            if total > counted {
                counter.add(total - counted);
            }
        }
        let open = self
            .done
            .iter()
            .filter(|f| f.end == EndReason::Open)
            .count() as u64;
        self.flows.add(self.done.len() as u64 - open);
        self.reported_open.add(open);
        let mut batches = Vec::new();
        let owners = &mut self.owners;
        let mut records: Vec<FlowRecord> = self
            .done
            .drain(..)
            .map(|f| {
                let key = flow_key(f.src, f.dst, f.proto);
                // A snapshot's owner stays for its final record.
                let o = owners.as_mut().and_then(|(_, m)| match f.end {
                    EndReason::Open => m.get(&key).cloned(),
                    _ => m.pop(&key),
                });
                to_record(f, o)
            })
            .collect();
        // Secrets in request targets stay on this host.
        for r in &mut records {
            let uri = r
                .app
                .as_mut()
                .and_then(|a| a.http.as_mut())
                .and_then(|h| h.uri.as_mut());
            if let Some(uri) = uri {
                if self.redaction.text(uri) {
                    self.redacted.inc();
                }
            }
        }
        while !records.is_empty() {
            let rest = records.split_off(records.len().min(self.cfg.max_batch));
            batches.push(std::mem::replace(&mut records, rest));
        }
        let out = self.out.clone();
        let host = self.node.host.clone();
        async move {
            for flows in batches {
                let b = FlowBatch {
                    host: host.clone(),
                    flows,
                };
                out.push(Publish(Payload::FlowBatch(b))).await?;
            }
            Ok::<(), crate::actors::runtime::mailbox::EdgeClosed>(())
        }
        .into_actor(self)
        .map(|r, _, ctx| {
            if let Err(e) = r {
                fail(Self::NAME, ctx, e);
            }
        })
    }
}

impl NodeActor for FlowMerge {
    const NAME: &'static str = "flow_merge";
    type Config = FlowMergeConfig;
    /// Live capture (wall clock, attribution) or a file (packet clock);
    /// the patterns secrets in request targets are found by (the
    /// collector's `[syscall_source] redact`).
    type Prepared = (bool, crate::redact::Redaction);
    type Links = Edge<Publish>;
    type Error = std::convert::Infallible;

    fn section(cfg: &crate::config::Config) -> &FlowMergeConfig {
        &cfg.flow_merge
    }
    async fn prepare(
        cfg: &crate::config::Config,
        _: &NodeInfo,
    ) -> Result<Self::Prepared, Self::Error> {
        Ok((
            cfg.packet_source.kind == PacketSourceKind::Live,
            crate::redact::Redaction::new(&cfg.syscall_source.redact),
        ))
    }
    fn create(
        cfg: FlowMergeConfig,
        node: &NodeInfo,
        prepared: Self::Prepared,
        out: Edge<Publish>,
    ) -> Self {
        Self::new(cfg, node.clone(), prepared, out)
    }
    fn mailbox_capacity(&self) -> usize {
        self.cfg.mailbox.capacity
    }
}

crate::supervised!(FlowMerge);

impl Actor for FlowMerge {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Context<Self>) {
        on_start(self, ctx);
        ctx.run_interval(self.cfg.tick, |a, ctx| {
            let now = if a.live { now_ns() } else { a.latest_ns };
            a.table.expire(now, &mut a.done);
            a.send_done(ctx);
        });
    }
}

impl Handler<Packets> for FlowMerge {
    type Result = ();
    fn handle(&mut self, msg: Packets, ctx: &mut Context<Self>) {
        if let Some((sockets, _)) = self.owners.as_mut() {
            sockets.next_batch();
        }
        for (i, &p) in msg.packets.iter().enumerate() {
            self.latest_ns = self.latest_ns.max(p.ts_ns);
            if self.owners.is_some()
                && matches!(p.proto, 6 | 17)
                && !self.table.contains(p.src, p.dst, p.proto)
            {
                self.attribute(&p);
            }
            self.table
                .packet_with_payload(p, msg.payload_of(i), &mut self.done);
        }
        if msg.end {
            self.table.flush(&mut self.done);
        }
        self.send_done(ctx);
    }
}

/// Graceful stop: every open flow ends (as `end_of_input`) and leaves.
/// Replies once the outbound actor took them.
impl Handler<Drain> for FlowMerge {
    type Result = DrainReply<Self>;
    fn handle(&mut self, _: Drain, _: &mut Context<Self>) -> Self::Result {
        self.table.flush(&mut self.done);
        drained_after(self.handoff())
    }
}
