//! Heartbeats: every node reports its counters, queue depths, CPU and memory
//! at a fixed interval (and once more when it stops). Compute nodes log
//! which nodes they hear from and warn when one goes silent.

use super::mailbox::Edge;
use super::supervision::Restarts;
use super::{drained, drained_after, on_start, Drain, DrainReply, NodeActor, NodeInfo};
use crate::actors::transport::Publish;
use crate::config::validate::{ConfigError, Validate};
use crate::messages::Role;
use crate::messages::{Heartbeat, Payload};
use crate::metrics::Gauge;
use actix::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};

/// Nodes a compute node follows (heartbeats, the console's fleet): node
/// ids are what senders claim, so the tables are bounded; past it, the
/// node heard from least recently is forgotten.
pub const MAX_NODES: usize = 4096;

/// `[heartbeat]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HeartbeatConfig {
    /// Time between two heartbeats.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// Compute nodes warn when a node was not heard from for this long.
    #[serde(with = "humantime_serde")]
    pub silence_after: Duration,
    /// Also write each heartbeat's gist (node, role, time, `stopping`) to
    /// this file, replaced atomically, for `daisi health` (container health
    /// checks, service monitors).
    pub health_file: Option<PathBuf>,
}

impl Default for HeartbeatConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(5),
            silence_after: Duration::from_secs(20),
            health_file: None,
        }
    }
}

impl Validate for HeartbeatConfig {
    fn validate(&self, path: &str, errors: &mut Vec<ConfigError>) {
        if self.interval.is_zero() {
            errors.push(ConfigError::new(
                format!("{path}.interval"),
                "must be above 0",
            ));
        }
        if self.silence_after <= self.interval {
            errors.push(ConfigError::new(
                format!("{path}.silence_after"),
                "must be longer than heartbeat.interval",
            ));
        }
    }
}

/// What the health file holds: the node's latest heartbeat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Health {
    pub node_id: String,
    pub host: String,
    /// When it was written, ns since the Unix epoch.
    pub ts_ns: u64,
    pub heartbeat: Heartbeat,
}

impl Health {
    /// Replaces `path` atomically (a file beside it, then a rename).
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        crate::files::write_atomic(
            path,
            &serde_json::to_vec(self).map_err(std::io::Error::other)?,
        )
    }

    pub fn read(path: &Path) -> std::io::Result<Health> {
        let bytes = std::fs::read(path)?;
        serde_json::from_slice(&bytes).map_err(std::io::Error::other)
    }

    /// Why the node is not healthy `now_ns`, given its heartbeat interval:
    /// it is stopping, or its last heartbeat is older than three intervals.
    pub fn problem(&self, now_ns: u64, interval: Duration) -> Option<String> {
        if self.heartbeat.stopping {
            return Some(format!("node {} is stopping", self.node_id));
        }
        let age = Duration::from_nanos(now_ns.saturating_sub(self.ts_ns));
        let limit = interval * 3 + Duration::from_secs(1);
        (age > limit).then(|| {
            format!(
                "node {}: last heartbeat {:.1} s ago (more than {:.1} s)",
                self.node_id,
                age.as_secs_f64(),
                limit.as_secs_f64()
            )
        })
    }
}

/// Builds this node's heartbeats.
pub struct Reporter {
    node: NodeInfo,
    /// `None` when process statistics are unavailable (reported as 0).
    sys: Option<System>,
    pid: Pid,
}

impl Reporter {
    pub fn new(node: NodeInfo) -> Self {
        Self {
            node,
            sys: System::new()
                .map_err(|e| tracing::warn!(error = %e, "process statistics unavailable"))
                .ok(),
            pid: Pid::from_u32(std::process::id()),
        }
    }

    pub fn heartbeat(&mut self, stopping: bool) -> Heartbeat {
        let (cpu, rss) = match self.sys.as_mut() {
            Some(sys) => {
                sys.refresh_processes_specifics(
                    ProcessesToUpdate::Some(&[self.pid]),
                    true,
                    ProcessRefreshKind::nothing().with_cpu().with_memory(),
                );
                sys.process(self.pid)
                    .map_or((0.0, 0), |p| (p.cpu_usage(), p.memory()))
            }
            None => (0.0, 0),
        };
        Heartbeat {
            role: self.node.role,
            version: env!("CARGO_PKG_VERSION").into(),
            uptime_s: self.node.started.elapsed().as_secs(),
            counters: self.node.metrics.counters(),
            queue_depths: self.node.metrics.gauges(),
            cpu_percent: cpu,
            rss_bytes: rss,
            stopping,
        }
    }
}

/// Publishes heartbeats through the node's outbound route.
pub struct HeartbeatActor {
    cfg: HeartbeatConfig,
    reporter: Reporter,
    out: Edge<Publish>,
    restarts: Restarts,
    timer: Option<SpawnHandle>,
}

impl HeartbeatActor {
    pub fn new(cfg: HeartbeatConfig, node: NodeInfo, out: Edge<Publish>) -> Self {
        Self {
            restarts: Restarts::new(Self::NAME, &node.metrics),
            reporter: Reporter::new(node),
            cfg,
            out,
            timer: None,
        }
    }

    /// Builds a heartbeat and hands it to the outbound actor (and writes
    /// the health file).
    fn beat(&mut self, stopping: bool) -> impl ActorFuture<Self, Output = ()> {
        let hb = self.reporter.heartbeat(stopping);
        if let Some(path) = &self.cfg.health_file {
            let h = Health {
                node_id: self.reporter.node.id.clone(),
                host: self.reporter.node.host.clone(),
                ts_ns: super::now_ns(),
                heartbeat: hb.clone(),
            };
            if let Err(e) = h.write(path) {
                tracing::warn!(file = %path.display(), error = %e, "health file not written");
            }
        }
        tracing::debug!(cpu = hb.cpu_percent, rss = hb.rss_bytes, "heartbeat");
        let out = self.out.clone();
        async move {
            let _ = out.push(Publish(Payload::Heartbeat(hb))).await;
        }
        .into_actor(self)
    }
}

impl NodeActor for HeartbeatActor {
    const NAME: &'static str = "heartbeat";
    type Config = HeartbeatConfig;
    type Prepared = ();
    type Links = Edge<Publish>;
    type Error = std::convert::Infallible;

    fn section(cfg: &crate::config::Config) -> &HeartbeatConfig {
        &cfg.heartbeat
    }
    async fn prepare(_: &crate::config::Config, _: &NodeInfo) -> Result<(), Self::Error> {
        Ok(())
    }
    fn create(cfg: HeartbeatConfig, node: &NodeInfo, _: (), out: Edge<Publish>) -> Self {
        Self::new(cfg, node.clone(), out)
    }
    fn mailbox_capacity(&self) -> usize {
        16
    }
}

crate::supervised!(HeartbeatActor);

impl Actor for HeartbeatActor {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Context<Self>) {
        on_start(self, ctx);
        let first = self.beat(false);
        ctx.wait(first);
        self.timer = Some(ctx.run_interval(self.cfg.interval, |act, ctx| {
            let beat = act.beat(false);
            ctx.wait(beat);
        }));
    }
}

/// Stops the timer and sends the last heartbeat (with `stopping = true`);
/// replies once the outbound actor took it.
impl Handler<Drain> for HeartbeatActor {
    type Result = DrainReply<Self>;
    fn handle(&mut self, _: Drain, ctx: &mut Context<Self>) -> Self::Result {
        match self.timer.take() {
            Some(t) => {
                ctx.cancel_future(t);
                drained_after(self.beat(true))
            }
            None => drained(),
        }
    }
}

/// A heartbeat that arrived from some node.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct HeartbeatSeen {
    pub node_id: String,
    pub host: String,
    pub heartbeat: Heartbeat,
}

struct Peer {
    host: String,
    role: Role,
    last: Instant,
    silent: bool,
}

/// Tracks the nodes a compute node hears from.
pub struct HeartbeatMonitor {
    cfg: HeartbeatConfig,
    node: NodeInfo,
    /// At most [`MAX_NODES`].
    peers: HashMap<String, Peer>,
    restarts: Restarts,
    silent_nodes: Gauge,
}

impl HeartbeatMonitor {
    pub fn new(cfg: HeartbeatConfig, node: NodeInfo) -> Self {
        Self {
            restarts: Restarts::new(Self::NAME, &node.metrics),
            silent_nodes: node.metrics.gauge("heartbeat.silent_nodes"),
            cfg,
            node,
            peers: HashMap::new(),
        }
    }
}

impl NodeActor for HeartbeatMonitor {
    const NAME: &'static str = "heartbeat_monitor";
    type Config = HeartbeatConfig;
    type Prepared = ();
    type Links = ();
    type Error = std::convert::Infallible;

    fn section(cfg: &crate::config::Config) -> &HeartbeatConfig {
        &cfg.heartbeat
    }
    async fn prepare(_: &crate::config::Config, _: &NodeInfo) -> Result<(), Self::Error> {
        Ok(())
    }
    fn create(cfg: HeartbeatConfig, node: &NodeInfo, _: (), _: ()) -> Self {
        Self::new(cfg, node.clone())
    }
    /// Heartbeats of many nodes may arrive at once; they are dropped (and
    /// counted on the edge) beyond this.
    fn mailbox_capacity(&self) -> usize {
        256
    }
}

crate::supervised!(HeartbeatMonitor);

/// Holds nothing to hand on.
impl Handler<Drain> for HeartbeatMonitor {
    type Result = DrainReply<Self>;
    fn handle(&mut self, _: Drain, _: &mut Context<Self>) -> Self::Result {
        drained()
    }
}

impl Actor for HeartbeatMonitor {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Context<Self>) {
        on_start(self, ctx);
        ctx.run_interval(self.cfg.interval, |act, _| {
            let mut silent = 0;
            for (id, p) in act.peers.iter_mut() {
                if p.last.elapsed() > act.cfg.silence_after {
                    silent += 1;
                    if !p.silent {
                        p.silent = true;
                        tracing::warn!(node = %id, host = %p.host, role = %p.role, silent_s = p.last.elapsed().as_secs(), "node went silent");
                    }
                }
            }
            act.silent_nodes.set(silent);
        });
    }
}

impl Handler<HeartbeatSeen> for HeartbeatMonitor {
    type Result = ();
    fn handle(&mut self, msg: HeartbeatSeen, _: &mut Context<Self>) {
        if let Some(console) = &self.node.console {
            console.heartbeat(&msg.node_id, &msg.host, &msg.heartbeat, super::now_ns());
        }
        if msg.node_id == self.node.id {
            return;
        }
        let hb = &msg.heartbeat;
        let dropped: u64 = hb
            .counters
            .iter()
            .filter(|(k, _)| k.ends_with("dropped"))
            .map(|(_, v)| v)
            .sum();
        match self.peers.get_mut(&msg.node_id) {
            None => {
                tracing::info!(node = %msg.node_id, host = %msg.host, role = %hb.role, "new node heard");
            }
            Some(p) if p.silent => {
                tracing::info!(node = %msg.node_id, host = %msg.host, "node heard again");
            }
            _ => {}
        }
        if hb.stopping {
            tracing::info!(node = %msg.node_id, host = %msg.host, "node is stopping");
            self.peers.remove(&msg.node_id);
            return;
        }
        tracing::debug!(node = %msg.node_id, cpu = hb.cpu_percent, rss = hb.rss_bytes, dropped, "heartbeat received");
        if !self.peers.contains_key(&msg.node_id) && self.peers.len() >= MAX_NODES {
            // Node ids are the senders' claims: the table stays bounded,
            // the node heard from least recently leaves it.
            if let Some(oldest) = self
                .peers
                .iter()
                .min_by_key(|(_, p)| p.last)
                .map(|(id, _)| id.clone())
            {
                self.peers.remove(&oldest);
            }
        }
        self.peers.insert(
            msg.node_id,
            Peer {
                host: msg.host,
                role: hb.role,
                last: Instant::now(),
                silent: false,
            },
        );
    }
}
