//! NATS subscriptions: bytes from the network become envelopes here, and
//! only here. Each message is bounded, decoded, checked against its subject
//! and handed on with backpressure; everything rejected is counted.

use crate::messages::{DecodeError, Envelope, PayloadKind};
use crate::metrics::{Counter, Metrics};
use crate::nats::{subject, subject_all, NatsConfig, NatsError};
use futures::StreamExt;

/// Counters of a NATS receiving side (`prefix`: `inbound` or `command`),
/// made once.
#[derive(Clone)]
struct RxCounters {
    prefix: &'static str,
    bytes: Counter,
    oversized: Counter,
    bad_version: Counter,
    malformed: Counter,
    subject_mismatch: Counter,
}

impl RxCounters {
    fn new(prefix: &'static str, metrics: &Metrics) -> Self {
        let rejected = |why: &str| metrics.counter(&format!("{prefix}.rejected.{why}"));
        Self {
            prefix,
            bytes: metrics.counter(&format!("{prefix}.bytes")),
            oversized: rejected("oversized"),
            bad_version: rejected("bad_version"),
            malformed: rejected("malformed"),
            subject_mismatch: rejected("subject_mismatch"),
        }
    }

    fn rejected(&self, e: &DecodeError) -> &Counter {
        match e {
            DecodeError::TooLarge { .. } => &self.oversized,
            DecodeError::Version { .. } => &self.bad_version,
            DecodeError::Malformed(_) => &self.malformed,
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
                    rx.rejected(&e).inc();
                    tracing::warn!(subject = %msg.subject, bytes = msg.payload.len(), error = %e, "message rejected");
                    continue;
                }
            };
            // The subject names the sender's host (a command's: its target);
            // a mismatch is a forgery or a bug.
            let expected = subject(env.payload.kind(), env.payload.subject_host(&env.host));
            if msg.subject.as_str() != expected {
                rx.subject_mismatch.inc();
                tracing::warn!(subject = %msg.subject, host = %env.host, kind = %env.payload.kind(), "message does not match its subject; rejected");
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

/// Subscriptions made by a prepare step: the server knows them, nothing
/// is read yet.
pub struct Subscription {
    client: async_nats::Client,
    subs: Vec<async_nats::Subscriber>,
    max_bytes: usize,
    rx: RxCounters,
}

impl Subscription {
    /// Reads the subscriptions in a task of their own, handing each envelope
    /// to `forward` (which waits for room and says whether its receiver is
    /// still there).
    pub fn start<F, Fut>(self, forward: F) -> Receiving
    where
        F: FnMut(Envelope) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = bool> + Send,
    {
        Receiving {
            task: receive(self.subs, self.max_bytes, self.rx, forward),
            client: self.client,
        }
    }
}

/// Subscriptions being read.
pub struct Receiving {
    client: async_nats::Client,
    task: tokio::task::JoinHandle<()>,
}

impl Receiving {
    /// Stops taking new messages; resolves once every message the client
    /// already held was handed on (at once for `None`).
    pub async fn drain(this: Option<Receiving>) {
        if let Some(r) = this {
            let _ = r.client.drain().await;
            let _ = r.task.await;
        }
    }
}

/// Compute side: connects and subscribes to the data subjects and response
/// outcomes (in the queue group) and to heartbeats (outside it: every
/// compute node hears every node).
pub async fn data(
    cfg: &NatsConfig,
    name: &str,
    metrics: &Metrics,
) -> Result<Subscription, NatsError> {
    let client = crate::nats::connect(cfg, name, metrics).await?;
    let mut subs = Vec::new();
    for kind in [
        PayloadKind::Syscall,
        PayloadKind::Flow,
        PayloadKind::Outcome,
    ] {
        subs.push(subscribe_to(&client, subject_all(kind), Some(cfg.queue_group.clone())).await?);
    }
    subs.push(subscribe_to(&client, subject_all(PayloadKind::Heartbeat), None).await?);
    // Make sure the server has registered the subscriptions before senders start.
    let _ = client.flush().await;
    Ok(Subscription {
        client,
        subs,
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
        subs,
        max_bytes: cfg.max_message_bytes,
        rx: RxCounters::new("command", metrics),
    })
}
