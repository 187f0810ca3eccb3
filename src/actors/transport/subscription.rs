//! NATS subscriptions: bytes from the network become envelopes here, and
//! only here. Each message is bounded, decoded, checked against its subject
//! and handed on with backpressure; everything rejected is counted.

use super::stream::{self, Acks, DeadReason, DurableCounters, PRIORITY_GROUP};
use crate::actors::runtime::receipt::Receipt;
use crate::messages::{DecodeError, Envelope, PayloadKind};
use crate::metrics::{Counter, Metrics};
use crate::nats::{subject, subject_all, subject_of, NatsConfig, NatsError};
use async_nats::jetstream::consumer::PullConsumer;
use futures::StreamExt;
use std::sync::Arc;
use std::time::Duration;

/// Counters of a NATS receiving side (`prefix`: `inbound` or `command`),
/// made once.
#[derive(Clone)]
struct RxCounters {
    prefix: &'static str,
    bytes: Counter,
    /// `<prefix>.rejected.<reason>`, by [`DecodeError::reason`].
    rejected: std::collections::BTreeMap<&'static str, Counter>,
    subject_mismatch: Counter,
}

impl RxCounters {
    fn new(prefix: &'static str, metrics: &Metrics) -> Self {
        let rejected = |why: &str| metrics.counter(&format!("{prefix}.rejected.{why}"));
        Self {
            prefix,
            bytes: metrics.counter(&format!("{prefix}.bytes")),
            rejected: DecodeError::REASONS
                .iter()
                .map(|&r| (r, rejected(r)))
                .collect(),
            subject_mismatch: rejected("subject_mismatch"),
        }
    }

    fn rejected(&self, e: &DecodeError) -> &Counter {
        &self.rejected[e.reason()]
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

/// A message as it came from the broker.
enum Incoming {
    /// Core NATS: at most once.
    Core(async_nats::Message),
    /// From the durable stream: acknowledged once its work is done.
    Durable(Box<async_nats::jetstream::Message>),
}

impl Incoming {
    fn subject(&self) -> &str {
        match self {
            Incoming::Core(m) => m.subject.as_str(),
            Incoming::Durable(m) => m.subject.as_str(),
        }
    }
    fn payload(&self) -> &[u8] {
        match self {
            Incoming::Core(m) => &m.payload,
            Incoming::Durable(m) => &m.payload,
        }
    }
}

/// The durable side of a subscription: acknowledgements and limits.
#[derive(Clone)]
struct DurableSide {
    acks: Arc<Acks>,
    max_deliveries: u64,
    counters: DurableCounters,
}

/// Whether `got` is the subject an envelope with `expected` (its
/// [`subject_of`]) arrives on: the same, or (from the durable stream) the
/// same with the partition token after it.
fn subject_matches(got: &str, expected: &str, durable: bool) -> bool {
    if !durable {
        return got == expected;
    }
    got.strip_prefix(expected)
        .and_then(|rest| rest.strip_prefix('.'))
        .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// Reads the messages until they end: decodes each within `max` bytes,
/// checks that its subject names the right host (and key), and hands it to
/// `forward` (which waits for room: backpressure). A durable message that
/// cannot be handled goes to the dead-letter stream, as does one delivered
/// `max_deliveries` times. Stops early when `forward` reports its receiver
/// gone.
fn receive<F, Fut>(
    mut all: futures::stream::BoxStream<'static, Incoming>,
    max: usize,
    rx: RxCounters,
    durable: Option<DurableSide>,
    mut forward: F,
) -> tokio::task::JoinHandle<()>
where
    F: FnMut(Envelope, Option<Durable>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    tokio::spawn(async move {
        while let Some(msg) = all.next().await {
            rx.bytes.add(msg.payload().len() as u64);
            let is_durable = matches!(msg, Incoming::Durable(_));
            if let (Incoming::Durable(m), Some(d)) = (&msg, &durable) {
                let delivered = m.info().map(|i| i.delivered).unwrap_or(1).max(1) as u64;
                if delivered > 1 {
                    d.counters.redelivered.inc();
                }
                if delivered > d.max_deliveries {
                    if let Incoming::Durable(m) = msg {
                        d.acks.dead(*m, DeadReason::Deliveries);
                    }
                    continue;
                }
            }
            let env = match Envelope::decode(msg.payload(), max) {
                Ok(env) => env,
                Err(e) => {
                    rx.rejected(&e).inc();
                    tracing::warn!(subject = %msg.subject(), bytes = msg.payload().len(), error = %e, "message rejected");
                    if let (Incoming::Durable(m), Some(d)) = (msg, &durable) {
                        d.acks.dead(*m, DeadReason::Rejected);
                    }
                    continue;
                }
            };
            // The subject names the sender's host (a command's: its target)
            // and a batch's key; a mismatch is a forgery or a bug.
            let expected = subject_of(&env.payload, &env.host);
            if !subject_matches(msg.subject(), &expected, is_durable) {
                rx.subject_mismatch.inc();
                tracing::warn!(subject = %msg.subject(), host = %env.host, kind = %env.payload.kind(), "message does not match its subject; rejected");
                if let (Incoming::Durable(m), Some(d)) = (msg, &durable) {
                    d.acks.dead(*m, DeadReason::Rejected);
                }
                continue;
            }
            let claim = match (msg, &durable) {
                (Incoming::Durable(m), Some(d)) => Some(Durable {
                    msg: *m,
                    acks: d.acks.clone(),
                }),
                _ => None,
            };
            if !forward(env, claim).await {
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

/// Reads one partition's consumer in the priority group, forever: a pull
/// stream that ends or fails is made again after a pause.
fn pull_partition(
    consumer: PullConsumer,
    join_after: Duration,
    expires: Duration,
    batch: usize,
    to: tokio::sync::mpsc::Sender<Incoming>,
    errors: Counter,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        tokio::time::sleep(join_after).await;
        loop {
            match consumer
                .stream()
                .group(PRIORITY_GROUP)
                .expires(expires)
                .max_messages_per_batch(batch)
                .messages()
                .await
            {
                Ok(mut msgs) => {
                    while let Some(m) = msgs.next().await {
                        match m {
                            Ok(m) => {
                                if to.send(Incoming::Durable(Box::new(m))).await.is_err() {
                                    return;
                                }
                            }
                            Err(e) => {
                                errors.inc();
                                tracing::debug!(consumer = %consumer.cached_info().name, error = %e, "pull error");
                            }
                        }
                    }
                }
                Err(e) => {
                    errors.inc();
                    tracing::warn!(consumer = %consumer.cached_info().name, error = %e, "cannot pull; retrying");
                }
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    })
}

/// A batch from the durable stream and the acknowledgements it settles
/// through.
pub struct Durable {
    msg: async_nats::jetstream::Message,
    acks: Arc<Acks>,
}

impl Durable {
    /// Its receipt; `on_done` runs once the work is finished.
    pub fn receipt(self, on_done: impl FnOnce() + Send + Sync + 'static) -> Receipt {
        self.acks.receipt(self.msg, on_done)
    }

    /// Refused by the receiver: to the dead-letter stream (kept, not lost).
    pub fn reject(self) {
        self.acks
            .dead(self.msg, super::stream::DeadReason::Rejected);
    }
}

impl std::fmt::Debug for Durable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Durable({})", self.msg.subject)
    }
}

/// Subscriptions made by a prepare step: the server knows them, nothing
/// is read yet.
pub struct Subscription {
    client: async_nats::Client,
    incoming: futures::stream::BoxStream<'static, Incoming>,
    pullers: Vec<tokio::task::JoinHandle<()>>,
    durable: Option<DurableSide>,
    max_bytes: usize,
    rx: RxCounters,
}

impl Subscription {
    /// The acknowledgements of the durable stream, when this subscription
    /// reads one (the node waits for them before it exits).
    pub fn acks(&self) -> Option<Arc<Acks>> {
        self.durable.as_ref().map(|d| d.acks.clone())
    }

    /// Reads the subscriptions in a task of their own, handing each envelope
    /// to `forward` (which waits for room and says whether its receiver is
    /// still there).
    pub fn start<F, Fut>(self, forward: F) -> Receiving
    where
        F: FnMut(Envelope, Option<Durable>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = bool> + Send,
    {
        let durable = self.durable.is_some();
        Receiving {
            task: receive(
                self.incoming,
                self.max_bytes,
                self.rx,
                self.durable,
                forward,
            ),
            pullers: self.pullers,
            client: self.client,
            durable,
        }
    }
}

/// Subscriptions being read.
pub struct Receiving {
    client: async_nats::Client,
    task: tokio::task::JoinHandle<()>,
    pullers: Vec<tokio::task::JoinHandle<()>>,
    durable: bool,
}

impl Receiving {
    /// Stops taking new messages; resolves once every message the client
    /// already held was handed on (at once for `None`). From the durable
    /// stream, pulling stops and the connection stays for the
    /// acknowledgements; what was pulled and not handed on is delivered
    /// again after `ack_wait`.
    pub async fn drain(this: Option<Receiving>) {
        let Some(r) = this else { return };
        if r.durable {
            for p in &r.pullers {
                p.abort();
            }
            r.task.abort();
            let _ = r.task.await;
        } else {
            let _ = r.client.drain().await;
            let _ = r.task.await;
        }
    }
}

/// Compute side: connects; reads the data either from the durable stream
/// (one pull consumer per partition, in the priority group) or from core
/// NATS subjects in the queue group; response outcomes in the queue group
/// and heartbeats outside it (every compute node hears every node) come
/// from core NATS either way.
pub async fn data(
    cfg: &NatsConfig,
    name: &str,
    metrics: &Metrics,
) -> Result<Subscription, NatsError> {
    let client = crate::nats::connect(cfg, name, metrics).await?;
    let mut core_kinds = vec![PayloadKind::Outcome];
    let (mut durable, mut pullers, mut pulled) = (None, Vec::new(), None);
    if cfg.jetstream.enabled {
        let js = stream::ensure_streams(&client, &cfg.jetstream).await?;
        let consumers = stream::consumers(&js, &cfg.jetstream).await?;
        let batch = cfg.jetstream.max_ack_pending.clamp(1, 256) as usize;
        let (tx, rx) = tokio::sync::mpsc::channel(batch);
        let counters = DurableCounters::new(metrics);
        let expires = stream::pull_expiry(&cfg.jetstream);
        for (p, c) in consumers.into_iter().enumerate() {
            pullers.push(pull_partition(
                c,
                stream::join_after(name, p as u32, &cfg.jetstream),
                expires,
                batch,
                tx.clone(),
                counters.pull_errors.clone(),
            ));
        }
        pulled = Some(rx);
        durable = Some(DurableSide {
            acks: Acks::start(js, client.clone(), cfg.jetstream.ack_wait, metrics),
            max_deliveries: cfg.jetstream.max_deliveries,
            counters,
        });
    } else {
        core_kinds.extend([PayloadKind::Syscall, PayloadKind::Flow, PayloadKind::Log]);
    }
    let mut subs = Vec::new();
    for kind in core_kinds {
        subs.push(subscribe_to(&client, subject_all(kind), Some(cfg.queue_group.clone())).await?);
    }
    subs.push(subscribe_to(&client, subject_all(PayloadKind::Heartbeat), None).await?);
    // Make sure the server has registered the subscriptions before senders start.
    let _ = client.flush().await;
    let core = futures::stream::select_all(subs)
        .map(Incoming::Core)
        .boxed();
    let incoming =
        match pulled {
            Some(rx) => {
                let durable_msgs = futures::stream::unfold(rx, |mut rx| async move {
                    rx.recv().await.map(|m| (m, rx))
                })
                .boxed();
                futures::stream::select(core, durable_msgs).boxed()
            }
            None => core,
        };
    Ok(Subscription {
        client,
        incoming,
        pullers,
        durable,
        max_bytes: cfg.max_message_bytes,
        rx: RxCounters::new("inbound", metrics),
    })
}

/// Collector side: connects and subscribes to the commands addressed to
/// `host` (anything else on that subject is counted by the receiver).
pub async fn commands(
    cfg: &NatsConfig,
    name: &str,
    host: &str,
    metrics: &Metrics,
) -> Result<Subscription, NatsError> {
    let client = crate::nats::connect(cfg, name, metrics).await?;
    let subs = vec![
        subscribe_to(
            &client,
            subject(PayloadKind::Command, host),
            Some(format!("{}-collectors-{host}", cfg.queue_group)),
        )
        .await?,
    ];
    let _ = client.flush().await;
    Ok(Subscription {
        client,
        incoming: futures::stream::select_all(subs)
            .map(Incoming::Core)
            .boxed(),
        pullers: Vec::new(),
        durable: None,
        max_bytes: cfg.max_message_bytes,
        rx: RxCounters::new("command", metrics),
    })
}

#[cfg(test)]
mod tests {
    use super::subject_matches;

    #[test]
    fn a_stored_batch_carries_its_partition_after_its_subject() {
        let s = "daisi.v1.syscall.web1.42";
        assert!(subject_matches(s, s, false));
        assert!(!subject_matches("daisi.v1.syscall.web1.43", s, false));
        assert!(subject_matches("daisi.v1.syscall.web1.42.7", s, true));
        assert!(!subject_matches(s, s, true), "no partition token");
        assert!(!subject_matches("daisi.v1.syscall.web1.421.7", s, true));
        assert!(!subject_matches("daisi.v1.syscall.web1.42.x", s, true));
    }
}
