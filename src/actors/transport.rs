//! Moving envelopes between nodes.
//!
//! [`Outbound`] turns payloads into sequenced [`Envelope`]s and delivers them
//! either in-process (role `both`: straight into the local [`Inbound`]'s
//! mailbox, no serialization) or over NATS. The NATS route keeps a bounded
//! buffer of encoded messages; a pump publishes them in groups and only counts
//! a group as sent once the server confirms it (a flush round trip). While
//! the broker is unreachable the buffer fills, its overflow policy applies
//! (`drop_oldest` by default) and every drop is counted, so at any quiet
//! moment `outbound.sent + outbound.dropped == outbound.produced`.
//! A group that was not confirmed is published again after reconnecting;
//! receivers drop the duplicates by `(node_id, seq)`.
//!
//! [`Inbound`] receives envelopes (from NATS subscriptions it decodes and
//! bounds, or in-process), drops duplicates, and dispatches each payload kind
//! to the actor that handles it.

use super::heartbeat::HeartbeatSeen;
use super::mailbox::{Edge, MailboxConfig, Overflow};
use super::supervision::{fail, InjectFault, Restarts};
use super::syscall_buffer::ScoreBatch;
use super::{now_ns, Drain, NodeInfo};
use crate::config::{ConfigError, Validate};
use crate::messages::{Envelope, Payload, SCHEMA_VERSION};
use crate::metrics::{Counter, Gauge, Metrics};
use crate::transport::nats::{subject, subject_all, NatsConfig, NatsError};
use actix::prelude::*;
use bytes::Bytes;
use futures::StreamExt;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// `[outbound]`: sending side of every node.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct OutboundConfig {
    /// Messages held for the broker (NATS roles) before `overflow` applies.
    pub buffer: usize,
    /// What a full buffer does: `drop_oldest` (default: keep the newest
    /// data), `drop_newest`, or `block` (capture waits; the kernel side may
    /// then lose events instead).
    pub overflow: Overflow,
    /// Messages published between two server confirmations.
    pub confirm_every: usize,
    /// How long to wait for the server to confirm a group.
    #[serde(with = "humantime_serde")]
    pub confirm_timeout: Duration,
    pub mailbox: MailboxConfig,
}

impl Default for OutboundConfig {
    fn default() -> Self {
        Self {
            buffer: 10_000,
            overflow: Overflow::DropOldest,
            confirm_every: 64,
            confirm_timeout: Duration::from_secs(2),
            mailbox: MailboxConfig::default(),
        }
    }
}

impl Validate for OutboundConfig {
    fn validate(&self, path: &str, errors: &mut Vec<ConfigError>) {
        if self.buffer == 0 {
            errors.push(ConfigError::new(
                format!("{path}.buffer"),
                "must be at least 1",
            ));
        }
        if self.confirm_every == 0 {
            errors.push(ConfigError::new(
                format!("{path}.confirm_every"),
                "must be at least 1",
            ));
        }
        if self.confirm_timeout.is_zero() {
            errors.push(ConfigError::new(
                format!("{path}.confirm_timeout"),
                "must be above 0",
            ));
        }
        self.mailbox.validate(&format!("{path}.mailbox"), errors);
    }
}

/// `[inbound]`: receiving side of compute nodes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct InboundConfig {
    /// Sequence numbers remembered per sender to drop redelivered duplicates.
    pub dedup_window: usize,
    /// Senders remembered for deduplication.
    pub max_senders: usize,
    pub mailbox: MailboxConfig,
}

impl Default for InboundConfig {
    fn default() -> Self {
        Self {
            dedup_window: 65_536,
            max_senders: 4096,
            mailbox: MailboxConfig::default(),
        }
    }
}

impl Validate for InboundConfig {
    fn validate(&self, path: &str, errors: &mut Vec<ConfigError>) {
        if self.dedup_window == 0 {
            errors.push(ConfigError::new(
                format!("{path}.dedup_window"),
                "must be at least 1",
            ));
        }
        if self.max_senders == 0 {
            errors.push(ConfigError::new(
                format!("{path}.max_senders"),
                "must be at least 1",
            ));
        }
        self.mailbox.validate(&format!("{path}.mailbox"), errors);
    }
}

/// Send this payload to the compute side.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct Publish(pub Payload);

/// An envelope that arrived (decoded and size-checked when from the network).
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct Deliver(pub Envelope);

/// Where [`Outbound`] sends.
pub enum Route {
    /// Role `both`: straight to the local [`Inbound`].
    InProcess(Edge<Deliver>),
    /// Over NATS.
    Nats(async_nats::Client),
}

/// An encoded message waiting for the broker.
struct Pending {
    subject: String,
    bytes: Bytes,
}

/// The bounded buffer between [`Outbound`] and its NATS pump.
struct NatsQueue {
    items: Mutex<VecDeque<Pending>>,
    capacity: usize,
    overflow: Overflow,
    /// Signalled when items are added.
    added: Notify,
    /// Signalled when items are taken.
    taken: Notify,
    /// Items taken by the pump but not yet confirmed.
    in_flight: Gauge,
    depth: Gauge,
    dropped: Counter,
}

impl NatsQueue {
    /// Adds an item, applying the overflow policy. `block` waits for room.
    async fn push(&self, p: Pending) {
        let mut p = Some(p);
        loop {
            {
                let mut q = self.items.lock();
                if q.len() < self.capacity {
                    q.push_back(p.take().expect("item present until pushed"));
                    self.depth.set(q.len() as u64);
                    self.added.notify_one();
                    return;
                }
                match self.overflow {
                    Overflow::DropOldest => {
                        q.pop_front();
                        q.push_back(p.take().expect("item present until pushed"));
                        self.dropped.inc();
                        self.added.notify_one();
                        return;
                    }
                    Overflow::DropNewest => {
                        self.dropped.inc();
                        return;
                    }
                    Overflow::Block => {}
                }
            }
            self.taken.notified().await;
        }
    }

    /// Takes up to `n` items, waiting until there is at least one.
    async fn take(&self, n: usize) -> Vec<Pending> {
        loop {
            let notified = self.added.notified();
            {
                let mut q = self.items.lock();
                if !q.is_empty() {
                    let k = n.min(q.len());
                    let out: Vec<Pending> = q.drain(..k).collect();
                    self.depth.set(q.len() as u64);
                    self.in_flight.set(out.len() as u64);
                    self.taken.notify_waiters();
                    return out;
                }
            }
            notified.await;
        }
    }

    fn idle(&self) -> bool {
        self.items.lock().is_empty() && self.in_flight.get() == 0
    }

    /// Drops everything still held (shutdown deadline passed); returns how many.
    fn abandon(&self) -> usize {
        let mut q = self.items.lock();
        let n = q.len() + self.in_flight.get() as usize;
        q.clear();
        self.depth.set(0);
        self.in_flight.set(0);
        n
    }
}

/// Publishes groups from the queue, each confirmed by a flush; an
/// unconfirmed group is retried once the connection is back.
async fn pump(
    client: async_nats::Client,
    q: Arc<NatsQueue>,
    cfg: OutboundConfig,
    sent: Counter,
    retries: Counter,
) {
    loop {
        let group = q.take(cfg.confirm_every).await;
        let mut attempt = 0u32;
        loop {
            if attempt > 0 {
                retries.inc();
                // Wait for the connection before publishing again.
                while client.connection_state() != async_nats::connection::State::Connected {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
            attempt += 1;
            let mut ok = true;
            for p in &group {
                if let Err(e) = client.publish(p.subject.clone(), p.bytes.clone()).await {
                    tracing::warn!(error = %e, "publish failed; will retry");
                    ok = false;
                    break;
                }
            }
            if ok {
                match tokio::time::timeout(cfg.confirm_timeout, client.flush()).await {
                    Ok(Ok(())) => {
                        sent.add(group.len() as u64);
                        q.in_flight.set(0);
                        break;
                    }
                    Ok(Err(e)) => tracing::warn!(error = %e, "server did not confirm; will retry"),
                    Err(_) => tracing::warn!("server confirmation timed out; will retry"),
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The sending actor of every node.
pub struct Outbound {
    cfg: OutboundConfig,
    node: NodeInfo,
    route: Route,
    queue: Option<Arc<NatsQueue>>,
    pump: Option<tokio::task::JoinHandle<()>>,
    max_payload: usize,
    seq: u64,
    restarts: Restarts,
    produced: Counter,
    sent: Counter,
    dropped: Counter,
    oversized: Counter,
}

impl Outbound {
    pub fn new(
        cfg: OutboundConfig,
        node: NodeInfo,
        route: Route,
        max_message_bytes: usize,
    ) -> Self {
        let m = &node.metrics;
        let max_payload = match &route {
            Route::Nats(c) => (c.server_info().max_payload).min(max_message_bytes),
            Route::InProcess(_) => usize::MAX,
        };
        Self {
            restarts: Restarts::new("outbound", m),
            produced: m.counter("outbound.produced"),
            sent: m.counter("outbound.sent"),
            dropped: m.counter("outbound.dropped"),
            oversized: m.counter("outbound.oversized"),
            queue: None,
            pump: None,
            max_payload,
            seq: 0,
            cfg,
            node,
            route,
        }
    }

    fn envelope(&mut self, payload: Payload) -> Envelope {
        self.seq += 1;
        Envelope {
            schema: SCHEMA_VERSION,
            node_id: self.node.id.clone(),
            host: self.node.host.clone(),
            seq: self.seq,
            ts_ns: now_ns(),
            payload,
        }
    }

    /// Encodes a payload, splitting batches that exceed the broker's limit.
    /// Only what is queued counts as produced; an item too large to send
    /// even alone counts as produced and dropped.
    fn encode_fitting(&mut self, payload: Payload, out: &mut Vec<Pending>) {
        let env = self.envelope(payload);
        let bytes = env.encode();
        if bytes.len() <= self.max_payload {
            self.produced.inc();
            out.push(Pending {
                subject: subject(
                    env.payload.kind(),
                    env.payload.subject_host(&self.node.host),
                ),
                bytes: Bytes::from(bytes),
            });
            return;
        }
        match env.payload.split() {
            Ok((a, b)) => {
                self.encode_fitting(a, out);
                self.encode_fitting(b, out);
            }
            Err(p) => {
                self.produced.inc();
                self.dropped.inc();
                self.oversized.inc();
                tracing::error!(
                    kind = p.kind(),
                    bytes = bytes.len(),
                    limit = self.max_payload,
                    "single item exceeds the broker's max payload; dropped"
                );
            }
        }
    }
}

impl Actor for Outbound {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(self.cfg.mailbox.capacity);
        self.restarts.backoff::<Self>(ctx);
        if let Route::Nats(client) = &self.route {
            // The queue outlives restarts: nothing buffered is lost.
            let q = self
                .queue
                .get_or_insert_with(|| {
                    let m = &self.node.metrics;
                    Arc::new(NatsQueue {
                        items: Mutex::new(VecDeque::new()),
                        capacity: self.cfg.buffer,
                        overflow: self.cfg.overflow,
                        added: Notify::new(),
                        taken: Notify::new(),
                        in_flight: m.gauge("outbound.in_flight"),
                        depth: m.gauge("outbound.queued"),
                        dropped: self.dropped.clone(),
                    })
                })
                .clone();
            if self.pump.is_none() {
                self.pump = Some(tokio::spawn(pump(
                    client.clone(),
                    q,
                    self.cfg.clone(),
                    self.sent.clone(),
                    self.node.metrics.counter("outbound.retries"),
                )));
            }
        }
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        if let Some(p) = self.pump.take() {
            p.abort();
        }
    }
}

impl Supervised for Outbound {
    fn restarting(&mut self, _: &mut Context<Self>) {
        self.restarts.restarting();
    }
}

impl Handler<Publish> for Outbound {
    type Result = ();

    fn handle(&mut self, Publish(payload): Publish, ctx: &mut Context<Self>) {
        let in_process = match &self.route {
            Route::InProcess(edge) => Some(edge.clone()),
            Route::Nats(_) => None,
        };
        match in_process {
            Some(edge) => {
                let env = self.envelope(payload);
                self.produced.inc();
                let (sent, dropped) = (self.sent.clone(), self.dropped.clone());
                ctx.wait(
                    async move {
                        match edge.push(Deliver(env)).await {
                            Ok(()) => sent.inc(),
                            Err(_) => dropped.inc(),
                        }
                    }
                    .into_actor(self),
                );
            }
            None => {
                let mut items = Vec::new();
                self.encode_fitting(payload, &mut items);
                let Some(q) = self.queue.clone() else {
                    return fail("outbound", ctx, "NATS queue missing");
                };
                ctx.wait(
                    async move {
                        for p in items {
                            q.push(p).await;
                        }
                    }
                    .into_actor(self),
                );
            }
        }
    }
}

/// Waits until everything queued is confirmed or `deadline` passes; what is
/// left is counted as dropped.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct Flush {
    pub deadline: Duration,
}

impl Handler<Flush> for Outbound {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, msg: Flush, _: &mut Context<Self>) -> Self::Result {
        let q = self.queue.clone();
        let dropped = self.dropped.clone();
        Box::pin(
            async move {
                let Some(q) = q else { return };
                let until = tokio::time::Instant::now() + msg.deadline;
                while !q.idle() && tokio::time::Instant::now() < until {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
            .into_actor(self)
            .map(move |_, act, _| {
                // Stop the pump first, so nothing counted as dropped below
                // can still be confirmed (and counted as sent) later.
                if let Some(p) = act.pump.take() {
                    p.abort();
                }
                let left = act.queue.as_ref().map_or(0, |q| q.abandon());
                if left > 0 {
                    dropped.add(left as u64);
                    tracing::warn!(left, "shutdown deadline: undelivered messages dropped");
                }
            }),
        )
    }
}

impl Handler<InjectFault> for Outbound {
    type Result = ();
    fn handle(&mut self, _: InjectFault, ctx: &mut Context<Self>) {
        fail("outbound", ctx, "injected fault");
    }
}

/// Recent sequence numbers of one sender.
#[derive(Default)]
struct Seen {
    seqs: BTreeSet<u64>,
}

impl Seen {
    /// True when `seq` is new; remembers it within `window`.
    fn first_time(&mut self, seq: u64, window: usize) -> bool {
        if let Some(&lowest) = self.seqs.first() {
            if self.seqs.len() >= window && seq < lowest {
                return false; // older than anything remembered: a late duplicate
            }
        }
        if !self.seqs.insert(seq) {
            return false;
        }
        while self.seqs.len() > window {
            self.seqs.pop_first();
        }
        true
    }
}

/// Where [`Inbound`] hands each payload kind.
pub struct Dispatch {
    pub syscalls: Option<Edge<ScoreBatch>>,
    pub flows: Option<Edge<super::flow_classifier::ScoreFlows>>,
    pub heartbeats: Option<Edge<HeartbeatSeen>>,
    /// What collectors did about this node's response commands.
    pub outcomes: Option<Edge<super::alert::RemoteOutcome>>,
}

/// The receiving actor of compute nodes.
pub struct Inbound {
    cfg: InboundConfig,
    node: NodeInfo,
    to: Dispatch,
    seen: lru::LruCache<String, Seen>,
    restarts: Restarts,
    duplicates: Counter,
    unhandled: Counter,
}

impl Inbound {
    pub fn new(cfg: InboundConfig, node: NodeInfo, to: Dispatch) -> Self {
        let m = &node.metrics;
        Self {
            restarts: Restarts::new("inbound", m),
            duplicates: m.counter("inbound.duplicates"),
            unhandled: m.counter("inbound.unhandled"),
            seen: lru::LruCache::new(
                std::num::NonZeroUsize::new(cfg.max_senders).unwrap_or(std::num::NonZeroUsize::MIN),
            ),
            cfg,
            node,
            to,
        }
    }
}

impl Actor for Inbound {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(self.cfg.mailbox.capacity);
        self.restarts.backoff::<Self>(ctx);
    }
}

impl Supervised for Inbound {
    fn restarting(&mut self, _: &mut Context<Self>) {
        self.restarts.restarting();
    }
}

impl Handler<Deliver> for Inbound {
    type Result = ();

    fn handle(&mut self, Deliver(env): Deliver, ctx: &mut Context<Self>) {
        let kind = env.payload.kind();
        let window = self.cfg.dedup_window;
        let fresh = self
            .seen
            .get_or_insert_mut(env.node_id.clone(), Seen::default)
            .first_time(env.seq, window);
        if !fresh {
            self.duplicates.inc();
            return;
        }
        // Unique envelopes only; duplicates are counted above.
        self.node
            .metrics
            .counter(&format!("inbound.received.{kind}"))
            .inc();
        match env.payload {
            Payload::SyscallBatch(b) => {
                if let Some(edge) = self.to.syscalls.clone() {
                    ctx.wait(
                        async move {
                            let _ = edge.push(ScoreBatch(b)).await;
                        }
                        .into_actor(self),
                    );
                    return;
                }
            }
            Payload::Heartbeat(hb) => {
                if let Some(edge) = self.to.heartbeats.clone() {
                    let seen = HeartbeatSeen {
                        node_id: env.node_id,
                        host: env.host,
                        heartbeat: hb,
                    };
                    ctx.wait(
                        async move {
                            let _ = edge.push(seen).await;
                        }
                        .into_actor(self),
                    );
                    return;
                }
            }
            Payload::FlowBatch(b) => {
                if let Some(edge) = self.to.flows.clone() {
                    ctx.wait(
                        async move {
                            let _ = edge.push(super::flow_classifier::ScoreFlows(b)).await;
                        }
                        .into_actor(self),
                    );
                    return;
                }
            }
            // An outcome is about the sending collector's own host.
            Payload::Outcome(a) if a.host == env.host => {
                if let Some(edge) = self.to.outcomes.clone() {
                    ctx.wait(
                        async move {
                            let _ = edge.push(super::alert::RemoteOutcome(a)).await;
                        }
                        .into_actor(self),
                    );
                    return;
                }
            }
            // Alerts travel to people through the alert sinks, and commands
            // to collectors on their own subscription, never through here.
            Payload::Alert(_) | Payload::Command(_) | Payload::Outcome(_) => {}
        }
        self.unhandled.inc();
        tracing::debug!(kind, "no handler for this payload kind on this node");
    }
}

impl Handler<Drain> for Inbound {
    type Result = ();
    fn handle(&mut self, _: Drain, _: &mut Context<Self>) {}
}

impl Handler<InjectFault> for Inbound {
    type Result = ();
    fn handle(&mut self, _: InjectFault, ctx: &mut Context<Self>) {
        fail("inbound", ctx, "injected fault");
    }
}

/// Counters of a NATS receiving side (`prefix`: `inbound` or `command`).
#[derive(Clone)]
struct RxCounters {
    prefix: &'static str,
    bytes: Counter,
    rejected: Metrics,
    subject_mismatch: Counter,
}

impl RxCounters {
    fn new(prefix: &'static str, metrics: &Metrics) -> Self {
        Self {
            prefix,
            bytes: metrics.counter(&format!("{prefix}.bytes")),
            rejected: metrics.clone(),
            subject_mismatch: metrics.counter(&format!("{prefix}.rejected.subject_mismatch")),
        }
    }
}

async fn subscribe_to(
    client: &async_nats::Client,
    subject: String,
    queue_group: Option<String>,
) -> Result<async_nats::Subscriber, NatsError> {
    let r = match queue_group {
        Some(g) => client.queue_subscribe(subject.clone(), g).await,
        None => client.subscribe(subject.clone()).await,
    };
    r.map_err(|e| NatsError::Subscribe {
        subject,
        reason: e.to_string(),
    })
}

/// Reads the subscriptions until they close: decodes each message within
/// `max` bytes, checks that its subject names the right host, and hands it
/// to `forward` (which waits for room: backpressure). Stops early when
/// `forward` reports its receiver gone.
fn receive<F, Fut>(
    subs: Vec<async_nats::Subscriber>,
    max: usize,
    rx: RxCounters,
    mut forward: F,
) -> tokio::task::JoinHandle<()>
where
    F: FnMut(Envelope) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let mut all = futures::stream::select_all(subs);
    tokio::spawn(async move {
        while let Some(msg) = all.next().await {
            rx.bytes.add(msg.payload.len() as u64);
            let env = match Envelope::decode(&msg.payload, max) {
                Ok(env) => env,
                Err(e) => {
                    rx.rejected
                        .counter(&format!("{}.rejected.{}", rx.prefix, e.reason()))
                        .inc();
                    tracing::warn!(subject = %msg.subject, bytes = msg.payload.len(), error = %e, "message rejected");
                    continue;
                }
            };
            // The subject names the sender's host (a command's: its target);
            // a mismatch is a forgery or a bug.
            let expected = subject(env.payload.kind(), env.payload.subject_host(&env.host));
            if msg.subject.as_str() != expected {
                rx.subject_mismatch.inc();
                tracing::warn!(subject = %msg.subject, host = %env.host, kind = env.payload.kind(), "message does not match its subject; rejected");
                continue;
            }
            if !forward(env).await {
                tracing::error!(
                    receiver = rx.prefix,
                    "receiving actor gone; stopping subscription"
                );
                return;
            }
        }
        tracing::info!(receiver = rx.prefix, "subscriptions closed");
    })
}

/// Compute side: subscribes to the data subjects and response outcomes (in
/// the queue group) and to heartbeats, and forwards to `inbound`. The task
/// ends when the client is drained (shutdown).
pub async fn subscribe(
    client: async_nats::Client,
    cfg: &NatsConfig,
    inbound: Addr<Inbound>,
    metrics: Metrics,
) -> Result<tokio::task::JoinHandle<()>, NatsError> {
    let mut subs = Vec::new();
    for kind in ["syscall", "flow", "outcome"] {
        subs.push(subscribe_to(&client, subject_all(kind), Some(cfg.queue_group.clone())).await?);
    }
    subs.push(subscribe_to(&client, subject_all("heartbeat"), None).await?);
    // Make sure the server has registered the subscriptions before senders start.
    let _ = client.flush().await;
    let rx = RxCounters::new("inbound", &metrics);
    Ok(receive(subs, cfg.max_message_bytes, rx, move |env| {
        let inbound = inbound.clone();
        async move { inbound.send(Deliver(env)).await.is_ok() }
    }))
}

/// Collector side: subscribes to the commands addressed to `host` and
/// forwards them to the executor. Anything else on that subject is counted
/// (`command.rejected.*`) and dropped.
pub async fn subscribe_commands(
    client: async_nats::Client,
    cfg: &NatsConfig,
    host: &str,
    executor: Addr<super::command::CommandExecutor>,
    metrics: Metrics,
) -> Result<tokio::task::JoinHandle<()>, NatsError> {
    let subs = vec![
        subscribe_to(
            &client,
            subject("command", host),
            Some(format!("{}-collectors-{host}", cfg.queue_group)),
        )
        .await?,
    ];
    let _ = client.flush().await;
    let rx = RxCounters::new("command", &metrics);
    let not_command = metrics.counter("command.rejected.not_a_command");
    Ok(receive(subs, cfg.max_message_bytes, rx, move |env| {
        let executor = executor.clone();
        let not_command = not_command.clone();
        async move {
            let Payload::Command(command) = env.payload else {
                not_command.inc();
                return true;
            };
            let msg = super::command::Execute {
                command,
                from: env.node_id,
                sent_ns: env.ts_ns,
            };
            executor.send(msg).await.is_ok()
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedup_remembers_a_window() {
        let mut s = Seen::default();
        assert!(s.first_time(5, 3));
        assert!(!s.first_time(5, 3));
        assert!(s.first_time(3, 3));
        assert!(s.first_time(9, 3));
        assert!(s.first_time(10, 3)); // window now {5, 9, 10}
        assert!(
            !s.first_time(3, 3),
            "older than the window counts as duplicate"
        );
        assert!(!s.first_time(9, 3));
    }
}
