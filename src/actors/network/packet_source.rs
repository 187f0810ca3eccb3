//! Packet capture: the first stage of the collector's network side.
//!
//! A reader thread owns the libpcap handle (`crate::capture::libpcap`),
//! parses headers at that boundary and hands batches of [`PacketMeta`] over
//! a bounded channel; the actor pushes them into the flow merge through a
//! blocking edge. When the pipeline is slow the thread waits, the kernel
//! buffer fills and the kernel drops: those drops are read from `pcap_stats`
//! every second and reported as `packet_source.kernel_dropped` and
//! `packet_source.interface_dropped`, so no loss goes uncounted. Kinds:
//!
//! - `live`: an interface (or `any`), with a BPF filter, snap length,
//!   promiscuous flag and kernel buffer size from config;
//! - `file`: a capture file, read once at full speed (tests, forensics);
//! - `none`: no packet capture on this node.

use crate::actors::runtime::mailbox::Edge;
use crate::actors::runtime::supervision::{fail, Restarts};
use crate::actors::runtime::{drained_when, on_start, until_done, Drain, NodeActor, NodeInfo};
use crate::capture::libpcap::{CaptureError, LiveOptions, Next, PacketReader};
use crate::capture::packets::Skip;
use crate::config::validate::{ConfigError, Validate};
use crate::flows::PacketMeta;
use actix::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Which packet source runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum PacketSourceKind {
    /// No packet capture.
    #[default]
    None,
    /// Capture on `interface` (needs root or CAP_NET_RAW).
    Live,
    /// Read the capture file `path` once.
    File,
}

/// `[packet_source]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PacketSourceConfig {
    /// `live`, `file` or `none`.
    pub kind: PacketSourceKind,
    /// live: interface name, or `any` for all of them.
    pub interface: String,
    /// live: BPF capture filter (tcpdump syntax); empty = everything.
    pub filter: String,
    /// live: bytes kept of each packet: the headers, and as much of the
    /// payload as application metadata reads (a TLS ClientHello is 200 to
    /// 600 bytes; larger ones, with post-quantum key shares, are cut and
    /// give no TLS metadata).
    pub snaplen: u32,
    /// live: put the interface in promiscuous mode.
    pub promiscuous: bool,
    /// live: kernel capture buffer in bytes; when it is full the kernel
    /// drops (counted as packet_source.kernel_dropped).
    pub buffer_bytes: u32,
    /// file: the capture file.
    pub path: Option<PathBuf>,
    /// Packets per batch handed to the flow merge.
    pub batch: usize,
    /// A partly filled batch is handed on after this long.
    #[serde(with = "humantime_serde")]
    pub flush_every: Duration,
    /// Bytes of each packet's payload handed to the flow merge for
    /// application metadata (`flow_merge.app_bytes`); 0: none.
    pub payload_bytes: usize,
}

impl Default for PacketSourceConfig {
    fn default() -> Self {
        Self {
            kind: PacketSourceKind::None,
            interface: "any".into(),
            filter: String::new(),
            snaplen: 1024,
            promiscuous: false,
            buffer_bytes: 16 << 20,
            path: None,
            batch: 512,
            flush_every: Duration::from_millis(50),
            payload_bytes: 1024,
        }
    }
}

impl Validate for PacketSourceConfig {
    fn validate(&self, path: &str, errors: &mut Vec<ConfigError>) {
        match self.kind {
            PacketSourceKind::File => match &self.path {
                None => errors.push(ConfigError::new(
                    format!("{path}.path"),
                    "kind = \"file\" needs a capture file",
                )),
                Some(p) if !p.is_file() => errors.push(ConfigError::new(
                    format!("{path}.path"),
                    format!("{} is not a readable file", p.display()),
                )),
                _ => {}
            },
            PacketSourceKind::Live if self.interface.trim().is_empty() => {
                errors.push(ConfigError::new(
                    format!("{path}.interface"),
                    "must name an interface or \"any\"",
                ))
            }
            _ => {}
        }
        if self.snaplen < 64 {
            errors.push(ConfigError::new(
                format!("{path}.snaplen"),
                "must be at least 64 (bytes of headers)",
            ));
        }
        crate::config::validate::at_least_one(path, &[("batch", self.batch)], errors);
        if self.flush_every.is_zero() {
            errors.push(ConfigError::new(
                format!("{path}.flush_every"),
                "must be above 0",
            ));
        }
    }
}

impl PacketSourceConfig {
    /// Opens the capture (fallible start: a missing interface, missing
    /// privileges or a bad filter are reported before the node runs).
    pub fn open(&self) -> Result<Option<PacketReader>, CaptureError> {
        match self.kind {
            PacketSourceKind::None => Ok(None),
            PacketSourceKind::File => {
                let p = self.path.clone().unwrap_or_default();
                PacketReader::open_file(&p).map(Some)
            }
            PacketSourceKind::Live => PacketReader::open_live(&LiveOptions {
                interface: self.interface.clone(),
                filter: self.filter.clone(),
                snaplen: self.snaplen as i32,
                promiscuous: self.promiscuous,
                buffer_bytes: self.buffer_bytes.min(i32::MAX as u32) as i32,
                timeout_ms: self.flush_every.as_millis().clamp(1, 1000) as i32,
            })
            .map(Some),
        }
    }
}

/// Parsed packets, in capture order. `end` marks the end of a capture
/// file: everything still open then is finished.
#[derive(Message, Debug, Clone, Default)]
#[rtype(result = "()")]
pub struct Packets {
    pub packets: Vec<PacketMeta>,
    /// With application metadata on: the first bytes of each packet's
    /// payload, one after another; packet `i`'s end at `payload_ends[i]`
    /// (empty when off).
    pub payload: Vec<u8>,
    pub payload_ends: Vec<u32>,
    pub end: bool,
}

impl Packets {
    fn with_capacity(n: usize) -> Packets {
        Packets {
            packets: Vec::with_capacity(n),
            ..Default::default()
        }
    }

    /// Packet `i`'s payload bytes (empty when none were kept).
    pub fn payload_of(&self, i: usize) -> &[u8] {
        let end = self.payload_ends.get(i).copied().unwrap_or(0) as usize;
        let start = match i {
            0 => 0,
            _ => self.payload_ends.get(i - 1).copied().unwrap_or(0) as usize,
        };
        self.payload.get(start..end).unwrap_or(&[])
    }
}

/// The packet-capture actor.
pub struct PacketSource {
    cfg: PacketSourceConfig,
    node: NodeInfo,
    out: Edge<Packets>,
    restarts: Restarts,
    reader: Option<PacketReader>,
    stop: Arc<AtomicBool>,
    stopped: bool,
    /// Turns true once everything the reader produced was handed on.
    forwarding: Option<tokio::sync::watch::Receiver<bool>>,
    /// Packets read (`packet_source.packets`); a capture file resumes
    /// after them when the actor restarts.
    packets: crate::metrics::Counter,
}

impl PacketSource {
    /// `reader` comes from [`PacketSourceConfig::open`].
    pub fn new(
        cfg: PacketSourceConfig,
        node: NodeInfo,
        out: Edge<Packets>,
        reader: Option<PacketReader>,
    ) -> Self {
        Self {
            restarts: Restarts::new(Self::NAME, &node.metrics),
            packets: node.metrics.counter("packet_source.packets"),
            cfg,
            node,
            out,
            reader,
            stop: Arc::new(AtomicBool::new(false)),
            stopped: false,
            forwarding: None,
        }
    }

    /// Starts the reader thread and the forwarding task.
    fn run(&mut self, ctx: &mut Context<Self>) {
        let reader = match self.reader.take() {
            Some(r) => Some(r),
            // After a restart: open again (a file resumes after the packets
            // already handed on).
            None => match self.cfg.open() {
                Ok(r) => r,
                Err(e) => {
                    fail(Self::NAME, ctx, e);
                    return;
                }
            },
        };
        let Some(mut reader) = reader else { return };
        let skip = match self.cfg.kind {
            PacketSourceKind::File => self.packets.get(),
            _ => 0,
        };
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Packets>(4);
        let stop = self.stop.clone();
        let m = self.node.metrics.clone();
        let (batch, flush_every) = (self.cfg.batch, self.cfg.flush_every);
        let keep = self.cfg.payload_bytes;
        let file = self.cfg.kind == PacketSourceKind::File;
        let packets = self.packets.clone();
        std::thread::Builder::new()
            .name("daisi-pcap".into())
            .spawn(move || {
                let received = m.gauge("packet_source.kernel_received");
                let dropped = m.gauge("packet_source.kernel_dropped");
                let if_dropped = m.gauge("packet_source.interface_dropped");
                let kernel_counts = |reader: &mut PacketReader| {
                    if let Some((r, d, i)) = reader.kernel_stats() {
                        received.set(r);
                        dropped.set(d);
                        if_dropped.set(i);
                    }
                };
                let mut buf = Packets::with_capacity(batch);
                // Hands over the batch so far.
                let take = |buf: &mut Packets, end: bool| Packets {
                    end,
                    ..std::mem::replace(buf, Packets::with_capacity(batch))
                };
                let mut since = Instant::now();
                let mut stats_at = Instant::now();
                // One counter per reason, looked up once (not per packet).
                let skipped = Skip::ALL
                    .map(|why| m.counter(&format!("packet_source.skipped.{}", why.name())));
                let mut seen = 0u64;
                let mut end = false;
                while !stop.load(Ordering::Relaxed) {
                    match reader.read() {
                        Next::Packet(p) => {
                            seen += 1;
                            if seen <= skip {
                                continue;
                            }
                            packets.inc();
                            match p {
                                Ok((meta, bytes)) => {
                                    buf.packets.push(meta);
                                    if keep > 0 {
                                        buf.payload.extend_from_slice(&bytes[..bytes.len().min(keep)]);
                                        buf.payload_ends.push(buf.payload.len() as u32);
                                    }
                                }
                                Err(why) => skipped[why as usize].inc(),
                            }
                        }
                        Next::Idle => {
                            // Nothing ready: hand on what we hold, then wait.
                            if !buf.packets.is_empty() {
                                let msg = take(&mut buf, false);
                                if tx.blocking_send(msg).is_err() {
                                    return;
                                }
                                since = Instant::now();
                            }
                            reader.wait(flush_every);
                        }
                        Next::End => end = true,
                        Next::Failed(e) if file => {
                            m.counter("packet_source.corrupt_files").inc();
                            tracing::warn!(error = %e, packets = seen, "capture file is truncated or corrupt; keeping what came before");
                            end = true;
                        }
                        Next::Failed(e) => {
                            // Hand on what we hold; the actor stops and its
                            // supervisor opens the capture again.
                            m.counter("packet_source.capture_errors").inc();
                            tracing::error!(error = %e, "live capture failed");
                            let _ = tx.blocking_send(take(&mut buf, false));
                            return;
                        }
                    }
                    if end || buf.packets.len() >= batch || since.elapsed() >= flush_every {
                        if !buf.packets.is_empty() || end {
                            let msg = take(&mut buf, end);
                            if tx.blocking_send(msg).is_err() {
                                return;
                            }
                        }
                        since = Instant::now();
                    }
                    if stats_at.elapsed() >= Duration::from_secs(1) {
                        kernel_counts(&mut reader);
                        stats_at = Instant::now();
                    }
                    if end {
                        tracing::info!(packets = seen, "capture file read");
                        return;
                    }
                }
                // Stopping: hand on what is buffered, and the final counts.
                kernel_counts(&mut reader);
                let _ = tx.blocking_send(take(&mut buf, file));
            })
            .expect("spawning a thread");
        let out = self.out.clone();
        let (done, done_rx) = tokio::sync::watch::channel(false);
        self.forwarding = Some(done_rx);
        ctx.spawn(
            async move {
                while let Some(msg) = rx.recv().await {
                    if out.push(msg).await.is_err() {
                        break;
                    }
                }
                let _ = done.send(true);
            }
            .into_actor(self)
            .map(|_, act, ctx| {
                // A live capture ends only when asked to; anything else is
                // a failure for the supervisor.
                if !act.stopped && act.cfg.kind == PacketSourceKind::Live {
                    fail(Self::NAME, ctx, "live capture ended");
                }
            }),
        );
    }
}

impl Actor for PacketSource {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        on_start(self, ctx);
        if self.stopped {
            return;
        }
        tracing::info!(node = %self.node.id, kind = ?self.cfg.kind, interface = %self.cfg.interface, path = ?self.cfg.path, "packet source started");
        self.run(ctx);
    }
}

impl NodeActor for PacketSource {
    const NAME: &'static str = "packet_source";
    type Config = PacketSourceConfig;
    /// The open capture (`None` for kind `none`: the node starts no source).
    type Prepared = Option<PacketReader>;
    type Links = Edge<Packets>;
    type Error = CaptureError;

    fn section(cfg: &crate::config::Config) -> &PacketSourceConfig {
        &cfg.packet_source
    }
    /// Opens the capture: a missing interface, missing privileges or a bad
    /// filter are reported before the node runs.
    async fn prepare(
        cfg: &crate::config::Config,
        _: &NodeInfo,
    ) -> Result<Option<PacketReader>, CaptureError> {
        cfg.packet_source.open()
    }
    fn create(
        cfg: PacketSourceConfig,
        node: &NodeInfo,
        reader: Option<PacketReader>,
        out: Edge<Packets>,
    ) -> Self {
        Self::new(cfg, node.clone(), out, reader)
    }
    /// Nothing is sent to the source but control messages.
    fn mailbox_capacity(&self) -> usize {
        16
    }
    /// The old reader thread ends; a new one starts in `started`.
    fn on_restart(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.stop = Arc::new(AtomicBool::new(false));
    }
}

crate::supervised!(PacketSource);

/// Stop capturing, then hand on everything already captured. Not atomic:
/// the forwarding task is a future of this actor's own context.
impl Handler<Drain> for PacketSource {
    type Result = ResponseActFuture<Self, ()>;
    fn handle(&mut self, _: Drain, _: &mut Context<Self>) -> Self::Result {
        if !self.stopped {
            self.stopped = true;
            self.stop.store(true, Ordering::Relaxed);
            tracing::info!(packets = self.packets.get(), "packet capture stopped");
        }
        let done = self.forwarding.clone();
        drained_when(until_done(done))
    }
}
