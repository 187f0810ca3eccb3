//! The durable data path on NATS JetStream (`[nats.jetstream]`): the stream
//! and its partitions, the consumers that read them, and the
//! acknowledgement of each batch once its work is done.
//!
//! - **Stream** `DAISI_DATA` stores `daisi.v1.{syscall,flow,log}.<host>.<key>`.
//!   A subject transform of the server appends a partition token,
//!   `{{partition(N,2,3)}}`: a deterministic hash of host and key (a
//!   process's pid), so every batch of a process lands in one partition.
//!   Publishes carry a message id (`<node>/<seq>`), so a batch published
//!   again after a lost acknowledgement is stored once.
//! - **Consumers**: one durable pull consumer per partition with the
//!   `pinned_client` priority policy. Every compute node pulls every
//!   partition; the server delivers a partition's batches to one of them
//!   (the pinned client) and moves the pin to a standby node once the
//!   holder has not pulled for `failover_after`. What the holder took and
//!   did not acknowledge is delivered again after `ack_wait`.
//! - **Acknowledgement after the work**: each batch travels with a
//!   [`Receipt`]; it is acknowledged when the alert actor took its scores,
//!   delivered again when the work was lost, and after `max_deliveries`
//!   attempts (or when it cannot be decoded) it goes to the dead-letter
//!   stream `<stream>_DEAD` on `daisi.v1.dead.<kind>.<host>...`, counted.

use crate::actors::runtime::receipt::{Receipt, Settle};
use crate::messages::PayloadKind;
use crate::metrics::{Counter, Gauge, Metrics};
use crate::nats::{subject_all, DataStreamConfig, Discard, NatsError, SUBJECT_PREFIX};
use async_nats::jetstream::{self, consumer, stream};
use std::sync::Arc;
use std::time::Duration;

/// The priority group every compute node pulls in.
pub const PRIORITY_GROUP: &str = "compute";

/// Subjects of dead letters: `daisi.v1.dead.` + the batch's own subject
/// after `daisi.v1.`.
pub const DEAD_PREFIX: &str = "daisi.v1.dead";

fn js_error(what: impl Into<String>, e: impl std::fmt::Display) -> NatsError {
    NatsError::JetStream {
        what: what.into(),
        reason: e.to_string(),
    }
}

/// The transform that appends the partition token.
fn partition_transform(partitions: u32) -> stream::SubjectTransform {
    stream::SubjectTransform {
        source: format!("{SUBJECT_PREFIX}.*.*.*"),
        destination: format!(
            "{SUBJECT_PREFIX}.{{{{wildcard(1)}}}}.{{{{wildcard(2)}}}}.{{{{wildcard(3)}}}}.{{{{partition({partitions},2,3)}}}}"
        ),
    }
}

/// The data stream's configuration.
pub fn stream_config(cfg: &DataStreamConfig) -> stream::Config {
    stream::Config {
        name: cfg.stream.clone(),
        subjects: vec![
            subject_all(PayloadKind::Syscall),
            subject_all(PayloadKind::Flow),
            subject_all(PayloadKind::Log),
        ],
        subject_transform: Some(partition_transform(cfg.partitions)),
        max_bytes: cfg.max_bytes,
        max_age: cfg.max_age,
        discard: match cfg.discard {
            Discard::New => stream::DiscardPolicy::New,
            Discard::Old => stream::DiscardPolicy::Old,
        },
        num_replicas: cfg.replicas,
        duplicate_window: cfg.duplicate_window,
        storage: stream::StorageType::File,
        ..Default::default()
    }
}

fn dead_stream_config(cfg: &DataStreamConfig) -> stream::Config {
    stream::Config {
        name: format!("{}_DEAD", cfg.stream),
        subjects: vec![format!("{DEAD_PREFIX}.>")],
        max_age: cfg.max_age.max(Duration::from_secs(7 * 24 * 3600)),
        max_bytes: (cfg.max_bytes / 8).max(1 << 20),
        num_replicas: cfg.replicas,
        storage: stream::StorageType::File,
        ..Default::default()
    }
}

/// Creates the data and dead-letter streams when missing; an existing data
/// stream must partition as configured.
pub async fn ensure_streams(
    client: &async_nats::Client,
    cfg: &DataStreamConfig,
) -> Result<jetstream::Context, NatsError> {
    let js = jetstream::new(client.clone());
    let want = stream_config(cfg);
    let mut s = js
        .get_or_create_stream(want.clone())
        .await
        .map_err(|e| js_error(format!("stream {}", cfg.stream), e))?;
    let info = s
        .info()
        .await
        .map_err(|e| js_error(format!("stream {}", cfg.stream), e))?;
    if info.config.subject_transform != want.subject_transform {
        return Err(js_error(
            format!("stream {}", cfg.stream),
            format!(
                "exists with another partitioning ({:?}); set [nats.jetstream] partitions to match it, or delete the stream",
                info.config.subject_transform.as_ref().map(|t| &t.destination)
            ),
        ));
    }
    // A stream made by an older build lacks later data kinds: added.
    if want
        .subjects
        .iter()
        .any(|s| !info.config.subjects.contains(s))
    {
        let mut config = info.config.clone();
        config.subjects = want.subjects.clone();
        js.update_stream(config)
            .await
            .map_err(|e| js_error(format!("stream {} (adding subjects)", cfg.stream), e))?;
        tracing::info!(stream = %cfg.stream, subjects = ?want.subjects, "data stream subjects updated");
    }
    js.get_or_create_stream(dead_stream_config(cfg))
        .await
        .map_err(|e| js_error(format!("stream {}_DEAD", cfg.stream), e))?;
    Ok(js)
}

/// A collector's side of the data stream: it only publishes (compute nodes
/// or an operator create the streams; the broker's permissions let a
/// collector do nothing else). A stream not there yet is said once; the
/// batches wait in the outbound buffer and are published again.
pub async fn publisher(client: &async_nats::Client, cfg: &DataStreamConfig) -> jetstream::Context {
    let js = jetstream::new(client.clone());
    if let Err(e) = js.get_stream(&cfg.stream).await {
        tracing::warn!(stream = %cfg.stream, error = %e, "the data stream is not there (yet): a compute node creates it; batches wait in the outbound buffer");
    }
    js
}

/// The consumer of one partition.
pub fn consumer_config(cfg: &DataStreamConfig, partition: u32) -> consumer::pull::Config {
    let name = format!("{}-p{partition}", cfg.consumer);
    consumer::pull::Config {
        durable_name: Some(name.clone()),
        name: Some(name),
        description: Some(format!("daisi compute, partition {partition}")),
        filter_subject: format!("{SUBJECT_PREFIX}.*.*.*.{partition}"),
        ack_policy: consumer::AckPolicy::Explicit,
        ack_wait: cfg.ack_wait,
        // Redelivery is bounded by daisi (dead letters), not by the server,
        // which would stop delivering without a word.
        max_deliver: -1,
        max_ack_pending: cfg.max_ack_pending,
        priority_policy: consumer::PriorityPolicy::PinnedClient,
        priority_groups: vec![PRIORITY_GROUP.into()],
        priority_timeout: cfg.failover_after,
        ..Default::default()
    }
}

/// The consumers of every partition, created when missing.
pub async fn consumers(
    js: &jetstream::Context,
    cfg: &DataStreamConfig,
) -> Result<Vec<consumer::PullConsumer>, NatsError> {
    let s = js
        .get_stream(&cfg.stream)
        .await
        .map_err(|e| js_error(format!("stream {}", cfg.stream), e))?;
    let mut out = Vec::with_capacity(cfg.partitions as usize);
    for p in 0..cfg.partitions {
        let c = consumer_config(cfg, p);
        let name = c.durable_name.clone().unwrap_or_default();
        out.push(
            s.get_or_create_consumer(&name, c)
                .await
                .map_err(|e| js_error(format!("consumer {name}"), e))?,
        );
    }
    Ok(out)
}

/// How long a pull waits: well below `failover_after`, so the holder keeps
/// its pin while it runs.
pub fn pull_expiry(cfg: &DataStreamConfig) -> Duration {
    (cfg.failover_after / 4).clamp(Duration::from_millis(250), Duration::from_secs(5))
}

/// When a node starting now begins to pull `partition`: after a delay in
/// `[0, failover_after / 2)` drawn from a hash of the node's name and the
/// partition. The first node to pull a partition holds it, so nodes that
/// start together each take a share instead of the quickest taking all.
pub fn join_after(node: &str, partition: u32, cfg: &DataStreamConfig) -> Duration {
    // FNV-1a: stable across builds and machines.
    let h = crate::fnv1a(node.bytes().chain(partition.to_le_bytes()));
    (cfg.failover_after / 2).mul_f64((h % 1000) as f64 / 1000.0)
}

/// What a batch's receipt settled to, sent to the acknowledging task.
enum Settlement {
    Ack(jetstream::Message),
    Retry(jetstream::Message),
    Dead(jetstream::Message, DeadReason),
}

/// Why a batch went to the dead-letter stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadReason {
    /// It could not be decoded or did not match its subject.
    Rejected,
    /// It was delivered `max_deliveries` times without being finished.
    Deliveries,
}

impl DeadReason {
    fn as_str(self) -> &'static str {
        match self {
            DeadReason::Rejected => "rejected",
            DeadReason::Deliveries => "max_deliveries",
        }
    }
}

/// Acknowledgements of durable batches: receipts settle into a channel, a
/// task acknowledges, asks for redelivery or moves to dead letters, and
/// counts (`inbound.acked`, `inbound.retried`, `inbound.dead_letters`;
/// `inbound.unacked`: batches held by this node).
pub struct Acks {
    tx: tokio::sync::mpsc::UnboundedSender<Settlement>,
    unacked: Gauge,
    idle: tokio::sync::Notify,
    client: async_nats::Client,
    ack_wait: Duration,
}

impl Acks {
    /// Starts the acknowledging task (inside a runtime).
    pub fn start(
        js: jetstream::Context,
        client: async_nats::Client,
        ack_wait: Duration,
        metrics: &Metrics,
    ) -> Arc<Acks> {
        // Unbounded, yet never more than `partitions × max_ack_pending`
        // entries: the server stops delivering at that many unacknowledged.
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Settlement>();
        let acks = Arc::new(Acks {
            tx,
            unacked: metrics.gauge("inbound.unacked"),
            idle: tokio::sync::Notify::new(),
            client,
            ack_wait,
        });
        let (acked, retried, dead, errors) = (
            metrics.counter("inbound.acked"),
            metrics.counter("inbound.retried"),
            metrics.counter("inbound.dead_letters"),
            metrics.counter("inbound.ack_errors"),
        );
        let me = Arc::downgrade(&acks);
        tokio::spawn(async move {
            while let Some(s) = rx.recv().await {
                let r = match s {
                    Settlement::Ack(m) => {
                        acked.inc();
                        m.ack().await
                    }
                    Settlement::Retry(m) => {
                        retried.inc();
                        m.ack_with(jetstream::AckKind::Nak(Some(Duration::from_millis(200))))
                            .await
                    }
                    Settlement::Dead(m, why) => {
                        dead.inc();
                        dead_letter(&js, &m, why).await;
                        m.ack_with(jetstream::AckKind::Term).await
                    }
                };
                if let Err(e) = r {
                    errors.inc();
                    tracing::warn!(error = %e, "acknowledgement not sent; the batch will be delivered again");
                }
                let Some(me) = me.upgrade() else { break };
                me.unacked.dec();
                if me.unacked.get() == 0 {
                    me.idle.notify_waiters();
                }
            }
        });
        acks
    }

    /// A receipt for a batch this node took; `on_done` runs when the work
    /// was finished (before the acknowledgement is sent).
    pub fn receipt(
        self: &Arc<Self>,
        msg: jetstream::Message,
        on_done: impl FnOnce() + Send + Sync + 'static,
    ) -> Receipt {
        self.unacked.inc();
        let tx = self.tx.clone();
        let due = std::time::Instant::now() + self.ack_wait / 2;
        Receipt::due_at(Some(due), move |s| {
            let settled = match s {
                Settle::Done => {
                    on_done();
                    Settlement::Ack(msg)
                }
                Settle::Retry => Settlement::Retry(msg),
            };
            let _ = tx.send(settled);
        })
    }

    /// Sends a batch that cannot be handled to the dead-letter stream.
    pub fn dead(&self, msg: jetstream::Message, why: DeadReason) {
        self.unacked.inc();
        let _ = self.tx.send(Settlement::Dead(msg, why));
    }

    /// Resolves once every batch this node took was settled and the
    /// acknowledgements reached the server.
    pub async fn settled(&self) {
        loop {
            let idle = self.idle.notified();
            if self.unacked.get() == 0 {
                break;
            }
            idle.await;
        }
        let _ = self.client.flush().await;
    }
}

async fn dead_letter(js: &jetstream::Context, m: &jetstream::Message, why: DeadReason) {
    let tail = m
        .subject
        .as_str()
        .strip_prefix(&format!("{SUBJECT_PREFIX}."))
        .unwrap_or("unknown");
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Daisi-Dead-Reason", why.as_str());
    headers.insert("Daisi-Original-Subject", m.subject.as_str());
    let delivered = m.info().map(|i| i.delivered).unwrap_or(0);
    headers.insert("Daisi-Deliveries", delivered.to_string().as_str());
    let r = match js
        .publish_with_headers(format!("{DEAD_PREFIX}.{tail}"), headers, m.payload.clone())
        .await
    {
        Ok(ack) => ack.await.map(|_| ()).map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    match r {
        Ok(()) => {
            tracing::warn!(subject = %m.subject, reason = why.as_str(), delivered, "batch moved to the dead-letter stream")
        }
        Err(e) => {
            tracing::error!(subject = %m.subject, reason = why.as_str(), error = %e, "dead letter not stored; batch discarded")
        }
    }
}

/// Counters of the durable receiving side, made once.
#[derive(Clone)]
pub struct DurableCounters {
    pub redelivered: Counter,
    pub pull_errors: Counter,
}

impl DurableCounters {
    pub fn new(metrics: &Metrics) -> Self {
        Self {
            redelivered: metrics.counter("inbound.redelivered"),
            pull_errors: metrics.counter("inbound.pull_errors"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_by_host_and_key() {
        let t = partition_transform(16);
        assert_eq!(t.source, "daisi.v1.*.*.*");
        assert_eq!(
            t.destination,
            "daisi.v1.{{wildcard(1)}}.{{wildcard(2)}}.{{wildcard(3)}}.{{partition(16,2,3)}}"
        );
        let c = consumer_config(&DataStreamConfig::default(), 3);
        assert_eq!(c.filter_subject, "daisi.v1.*.*.*.3");
        assert_eq!(c.durable_name.as_deref(), Some("daisi-compute-p3"));
    }
}
