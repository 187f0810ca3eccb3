//! [`Outbound`]: turns payloads into sequenced envelopes and delivers them
//! in-process or over NATS (through the bounded [`super::queue`]).

use super::queue::{NatsQueue, Pending, PumpCounters};
use super::{Deliver, Publish};
use crate::actors::runtime::mailbox::{Edge, MailboxConfig, Overflow};
use crate::actors::runtime::supervision::Restarts;
use crate::actors::runtime::{drained, now_ns, on_start, Drain, DrainReply, NodeActor, NodeInfo};
use crate::config::validate::{ConfigError, Validate};
use crate::messages::{Envelope, Payload, SCHEMA_VERSION};
use crate::metrics::Counter;
use crate::nats::{subject_of, NatsError};
use actix::prelude::*;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

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
        crate::config::validate::at_least_one(
            path,
            &[
                ("buffer", self.buffer),
                ("confirm_every", self.confirm_every),
            ],
            errors,
        );
        if self.confirm_timeout.is_zero() {
            errors.push(ConfigError::new(
                format!("{path}.confirm_timeout"),
                "must be above 0",
            ));
        }
        self.mailbox.validate(&format!("{path}.mailbox"), errors);
    }
}

/// Where [`Outbound`] sends.
pub enum Route {
    /// Role `both`: straight to the local [`super::Inbound`].
    InProcess(Edge<Deliver>),
    /// Over NATS, through the bounded queue.
    Nats(Box<NatsRoute>),
}

/// The NATS side of [`Outbound`], made by its prepare step.
pub struct NatsRoute {
    pub client: async_nats::Client,
    /// The durable stream's context, when batches go through JetStream.
    pub js: Option<async_nats::jetstream::Context>,
    /// Shared with the node, which abandons what it holds at the shutdown
    /// deadline ([`NatsQueue::abandon`]).
    pub queue: Arc<NatsQueue>,
    /// The largest message: the server's `max_payload`, at most
    /// `nats.max_message_bytes`.
    pub max_payload: usize,
}

/// The sending actor of every node.
pub struct Outbound {
    cfg: OutboundConfig,
    node: NodeInfo,
    route: Route,
    max_payload: usize,
    seq: u64,
    restarts: Restarts,
    produced: Counter,
    sent: Counter,
    dropped: Counter,
    oversized: Counter,
    pump: PumpCounters,
}

impl Outbound {
    /// `max_payload`: the largest message the route takes.
    pub fn new(cfg: OutboundConfig, node: NodeInfo, route: Route, max_payload: usize) -> Self {
        let m = &node.metrics;
        Self {
            restarts: Restarts::new(Self::NAME, m),
            produced: m.counter("outbound.produced"),
            sent: m.counter("outbound.sent"),
            dropped: m.counter("outbound.dropped"),
            oversized: m.counter("outbound.oversized"),
            pump: PumpCounters {
                sent: m.counter("outbound.sent"),
                retries: m.counter("outbound.retries"),
                stream_full: m.counter("outbound.stream_full"),
                stored_before: m.counter("outbound.stored_before"),
            },
            max_payload,
            // Starts at the start time in microseconds: a restarted node
            // (same id) goes on above what it sent before, so receivers
            // and the stream's message ids never mistake its new batches
            // for old ones.
            seq: now_ns() / 1000,
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
                subject: subject_of(&env.payload, &self.node.host),
                id: format!("{}/{}", env.node_id, env.seq),
                data: env.payload.kind().is_data(),
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
                    kind = %p.kind(),
                    bytes = bytes.len(),
                    limit = self.max_payload,
                    "single item exceeds the broker's max payload; dropped"
                );
            }
        }
    }
}

impl NodeActor for Outbound {
    const NAME: &'static str = "outbound";
    type Config = OutboundConfig;
    /// The broker connection and queue (NATS roles), else `None`.
    type Prepared = Option<NatsRoute>;
    /// The local inbound actor (role `both`), else `None`.
    type Links = Option<Edge<Deliver>>;
    type Error = NatsError;

    fn section(cfg: &crate::config::Config) -> &OutboundConfig {
        &cfg.outbound
    }
    /// Connects to the broker when the role uses NATS.
    async fn prepare(
        cfg: &crate::config::Config,
        node: &NodeInfo,
    ) -> Result<Option<NatsRoute>, NatsError> {
        if !node.role.uses_nats() {
            return Ok(None);
        }
        let client =
            crate::nats::connect(&cfg.nats, &format!("{} (out)", node.id), &node.metrics).await?;
        // Only collectors send batches (to streams they do not create);
        // compute nodes send commands.
        let js = if cfg.nats.jetstream.enabled && node.role.collects() {
            Some(super::stream::publisher(&client, &cfg.nats.jetstream).await)
        } else {
            None
        };
        Ok(Some(NatsRoute {
            js,
            max_payload: client
                .server_info()
                .max_payload
                .min(cfg.nats.max_message_bytes),
            client,
            queue: NatsQueue::new(&cfg.outbound, &node.metrics),
        }))
    }
    fn create(
        cfg: OutboundConfig,
        node: &NodeInfo,
        nats: Option<NatsRoute>,
        local: Option<Edge<Deliver>>,
    ) -> Self {
        let (route, max_payload) = match (nats, local) {
            (Some(n), _) => {
                let max = n.max_payload;
                (Route::Nats(Box::new(n)), max)
            }
            (None, Some(edge)) => (Route::InProcess(edge), usize::MAX),
            (None, None) => unreachable!("a role without NATS has a local inbound actor"),
        };
        Self::new(cfg, node.clone(), route, max_payload)
    }
    fn mailbox_capacity(&self) -> usize {
        self.cfg.mailbox.capacity
    }
}

crate::supervised!(Outbound);

impl Actor for Outbound {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        on_start(self, ctx);
        if let Route::Nats(n) = &self.route {
            n.queue.start_pump(
                n.client.clone(),
                n.js.clone(),
                self.cfg.clone(),
                self.pump.clone(),
            );
        }
    }
}

impl Handler<Publish> for Outbound {
    type Result = ();

    fn handle(&mut self, Publish(payload): Publish, ctx: &mut Context<Self>) {
        match &self.route {
            Route::InProcess(edge) => {
                let edge = edge.clone();
                let env = self.envelope(payload);
                self.produced.inc();
                let (sent, dropped) = (self.sent.clone(), self.dropped.clone());
                ctx.wait(
                    async move {
                        match edge.push(Deliver(env, None)).await {
                            Ok(()) => sent.inc(),
                            Err(_) => dropped.inc(),
                        }
                    }
                    .into_actor(self),
                );
            }
            Route::Nats(n) => {
                let q = n.queue.clone();
                let mut items = Vec::new();
                self.encode_fitting(payload, &mut items);
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

/// Replies once the broker confirmed everything queued (NATS) or at once
/// (in-process: each envelope was handed on before the next was taken).
/// The node's shutdown deadline bounds the wait; past it the node calls
/// [`NatsQueue::abandon`].
impl Handler<Drain> for Outbound {
    type Result = DrainReply<Self>;

    fn handle(&mut self, _: Drain, _: &mut Context<Self>) -> Self::Result {
        match &self.route {
            Route::InProcess(_) => drained(),
            Route::Nats(n) => {
                let q = n.queue.clone();
                AtomicResponse::new(Box::pin(async move { q.idle().await }.into_actor(self)))
            }
        }
    }
}
