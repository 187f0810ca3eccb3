//! The bounded buffer between [`super::Outbound`] and its NATS pump, and
//! the pump that publishes from it with confirmation: each batch stored and
//! acknowledged by the stream (JetStream), or each group confirmed by a
//! flush round trip (core NATS).

use super::outbound::OutboundConfig;
use crate::actors::runtime::mailbox::Overflow;
use crate::metrics::{Counter, Gauge, Metrics};
use async_nats::jetstream::{self, context::PublishErrorKind, message::PublishMessage};
use bytes::Bytes;
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::future::IntoFuture;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// Counters of the pump, made once by [`super::Outbound`].
#[derive(Clone)]
pub(super) struct PumpCounters {
    pub sent: Counter,
    pub retries: Counter,
    /// Publishes the stream refused because it was full.
    pub stream_full: Counter,
    /// Publishes the stream had stored before (a lost acknowledgement).
    pub stored_before: Counter,
}

/// An encoded message waiting for the broker.
pub(super) struct Pending {
    pub subject: String,
    /// JetStream message id (`<node>/<seq>`): stored once however often
    /// it is published.
    pub id: String,
    /// A data batch (the durable stream takes it); heartbeats and
    /// outcomes go over core NATS either way.
    pub data: bool,
    pub bytes: Bytes,
}

/// The bounded buffer between [`super::Outbound`] and its NATS pump.
pub struct NatsQueue {
    items: Mutex<VecDeque<Pending>>,
    capacity: usize,
    overflow: Overflow,
    /// Signalled when items are added.
    added: Notify,
    /// Signalled when items are taken or confirmed (room, or idle).
    changed: Notify,
    /// Items taken by the pump but not yet confirmed.
    in_flight: Gauge,
    depth: Gauge,
    dropped: Counter,
    /// The pump, so that the shutdown deadline can stop it.
    pump: Mutex<Option<tokio::task::AbortHandle>>,
}

impl NatsQueue {
    pub(super) fn new(cfg: &OutboundConfig, metrics: &Metrics) -> Arc<Self> {
        Arc::new(NatsQueue {
            items: Mutex::new(VecDeque::new()),
            capacity: cfg.buffer,
            overflow: cfg.overflow,
            added: Notify::new(),
            changed: Notify::new(),
            in_flight: metrics.gauge("outbound.in_flight"),
            depth: metrics.gauge("outbound.queued"),
            dropped: metrics.counter("outbound.dropped"),
            pump: Mutex::new(None),
        })
    }

    /// Adds an item, applying the overflow policy. `block` waits for room.
    pub(super) async fn push(&self, p: Pending) {
        let mut p = Some(p);
        loop {
            let room = self.changed.notified();
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
            room.await;
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
                    self.changed.notify_waiters();
                    return out;
                }
            }
            notified.await;
        }
    }

    /// The pump's group was confirmed by the server.
    fn confirmed(&self) {
        self.in_flight.set(0);
        self.changed.notify_waiters();
    }

    fn is_idle(&self) -> bool {
        self.items.lock().is_empty() && self.in_flight.get() == 0
    }

    /// Resolves once everything queued was confirmed by the server.
    pub(super) async fn idle(&self) {
        loop {
            let changed = self.changed.notified();
            if self.is_idle() {
                return;
            }
            changed.await;
        }
    }

    /// The shutdown deadline passed: stops the pump (so nothing counted
    /// here can still be confirmed later) and counts everything still held
    /// (queued, or sent without confirmation) as dropped. Returns how many.
    pub fn abandon(&self) -> u64 {
        if let Some(p) = self.pump.lock().take() {
            p.abort();
        }
        let mut q = self.items.lock();
        let n = q.len() as u64 + self.in_flight.get();
        q.clear();
        self.depth.set(0);
        self.in_flight.set(0);
        self.dropped.add(n);
        n
    }

    /// Starts the pump unless it runs already (it outlives actor restarts:
    /// nothing buffered is lost).
    pub(super) fn start_pump(
        self: &Arc<Self>,
        client: async_nats::Client,
        js: Option<jetstream::Context>,
        cfg: OutboundConfig,
        counters: PumpCounters,
    ) {
        let mut slot = self.pump.lock();
        if slot.as_ref().is_some_and(|p| !p.is_finished()) {
            return;
        }
        let task = match js {
            Some(js) => tokio::spawn(pump_durable(client, js, self.clone(), cfg, counters)),
            None => tokio::spawn(pump(client, self.clone(), cfg, counters)),
        };
        *slot = Some(task.abort_handle());
    }
}

/// Publishes groups from the queue, each confirmed by a flush; an
/// unconfirmed group is retried once the connection is back.
async fn pump(
    client: async_nats::Client,
    q: Arc<NatsQueue>,
    cfg: OutboundConfig,
    PumpCounters { sent, retries, .. }: PumpCounters,
) {
    loop {
        let group = q.take(cfg.confirm_every).await;
        let mut attempt = 0u32;
        loop {
            if attempt > 0 {
                retries.inc();
                // Wait for the connection before publishing again.
                connected(&client).await;
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
                        q.confirmed();
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

/// Waits until the client is connected again.
async fn connected(client: &async_nats::Client) {
    while client.connection_state() != async_nats::connection::State::Connected {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// True when the stream refused a publish because it is full
/// (`discard = "new"`).
fn stream_full(e: &jetstream::context::PublishError) -> bool {
    let text = e.to_string().to_lowercase();
    e.kind() == PublishErrorKind::Other && (text.contains("maximum") || text.contains("resource"))
}

/// Publishes groups from the queue to the stream; a batch counts as sent
/// once the stream acknowledged it. What was not acknowledged (the broker
/// away, the stream full, a timeout) is published again with the same
/// message id after a pause: the stream stores it once. Meanwhile the
/// queue fills and its overflow policy applies, counted.
async fn pump_durable(
    client: async_nats::Client,
    js: jetstream::Context,
    q: Arc<NatsQueue>,
    cfg: OutboundConfig,
    c: PumpCounters,
) {
    loop {
        let group = q.take(cfg.confirm_every).await;
        let mut acked = vec![false; group.len()];
        let mut pause = Duration::from_millis(100);
        loop {
            let mut waiting = Vec::new();
            let mut core = Vec::new();
            for (i, p) in group.iter().enumerate().filter(|(i, _)| !acked[*i]) {
                if !p.data {
                    match client.publish(p.subject.clone(), p.bytes.clone()).await {
                        Ok(()) => core.push(i),
                        Err(e) => {
                            tracing::warn!(error = %e, "publish failed; will retry");
                            break;
                        }
                    }
                    continue;
                }
                let m = PublishMessage::build()
                    .payload(p.bytes.clone())
                    .message_id(&p.id);
                match js.send_publish(p.subject.clone(), m).await {
                    Ok(f) => waiting.push((i, f)),
                    Err(e) => {
                        tracing::warn!(error = %e, "publish failed; will retry");
                        break;
                    }
                }
            }
            for (i, f) in waiting {
                match tokio::time::timeout(cfg.confirm_timeout, f.into_future()).await {
                    Ok(Ok(ack)) => {
                        acked[i] = true;
                        if ack.duplicate {
                            c.stored_before.inc();
                        }
                    }
                    Ok(Err(e)) if stream_full(&e) => {
                        c.stream_full.inc();
                        tracing::warn!(error = %e, "stream full; batch kept and retried");
                    }
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "stream did not store the batch; will retry")
                    }
                    Err(_) => tracing::warn!("stream acknowledgement timed out; will retry"),
                }
            }
            if !core.is_empty()
                && matches!(
                    tokio::time::timeout(cfg.confirm_timeout, client.flush()).await,
                    Ok(Ok(()))
                )
            {
                for i in core {
                    acked[i] = true;
                }
            }
            if acked.iter().all(|a| *a) {
                c.sent.add(group.len() as u64);
                q.confirmed();
                break;
            }
            c.retries.inc();
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(2));
            connected(&client).await;
        }
    }
}
