//! [`Inbound`]: receives envelopes (decoded and bounded by
//! [`super::subscription`], or in-process), drops duplicates by `(node_id,
//! seq)` and dispatches each payload kind to the actor that handles it.

use super::subscription::{self, Receiving, Subscription};
use super::Deliver;
use crate::actors::runtime::heartbeat::HeartbeatSeen;
use crate::actors::runtime::mailbox::{Edge, MailboxConfig};
use crate::actors::runtime::supervision::Restarts;
use crate::actors::runtime::{drained_when, on_start, Drain, NodeActor, NodeInfo};
use crate::actors::syscall::buffer::ScoreBatch;
use crate::config::validate::{ConfigError, Validate};
use crate::messages::Payload;
use crate::messages::PayloadKind;
use crate::metrics::Counter;
use crate::nats::NatsError;
use actix::prelude::*;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::sync::Arc;

/// `[inbound]`: receiving side of compute nodes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct InboundConfig {
    /// Sequence numbers remembered per sender to drop redelivered duplicates.
    pub dedup_window: usize,
    /// Senders remembered for deduplication.
    pub max_senders: usize,
    /// Hosts this node takes messages from; past it a new host's messages
    /// are refused (counted as `inbound.rejected.too_many_hosts`; durable
    /// ones go to the dead-letter stream), so that what a compute node
    /// keeps per host stays bounded whatever names senders claim.
    pub max_hosts: usize,
    pub mailbox: MailboxConfig,
}

impl Default for InboundConfig {
    fn default() -> Self {
        Self {
            dedup_window: 65_536,
            max_senders: 4096,
            max_hosts: 4096,
            mailbox: MailboxConfig::default(),
        }
    }
}

impl Validate for InboundConfig {
    fn validate(&self, path: &str, errors: &mut Vec<ConfigError>) {
        crate::config::validate::at_least_one(
            path,
            &[
                ("dedup_window", self.dedup_window),
                ("max_senders", self.max_senders),
                ("max_hosts", self.max_hosts),
            ],
            errors,
        );
        self.mailbox.validate(&format!("{path}.mailbox"), errors);
    }
}

/// Recent sequence numbers of one sender.
#[derive(Default)]
struct Seen {
    seqs: BTreeSet<u64>,
}

impl Seen {
    fn contains(&self, seq: u64) -> bool {
        self.seqs.contains(&seq)
    }

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

/// Whose sequence numbers an envelope's are: its node's on its host (the
/// subject pins the host, so no host can reach another's numbers by
/// claiming its node id).
fn sender_key(env: &crate::messages::Envelope) -> String {
    format!("{}/{}", env.host, env.node_id)
}

/// Where [`Inbound`] hands each payload kind.
pub struct Dispatch {
    pub syscalls: Option<Edge<ScoreBatch>>,
    /// Live batches (those that name their process) are scored by the
    /// syscall model too; else only replayed traces are
    /// (`syscall_classifier.model` set explicitly).
    pub score_live: bool,
    /// Live batches' processes and activity, for host baselines.
    pub baseline: Option<Edge<crate::actors::syscall::baseline::Observe>>,
    /// Live batches' processes, for Sigma rules (when any are loaded).
    pub rules: Option<Edge<crate::actors::rules::JudgeProcess>>,
    pub flows: Option<Edge<crate::actors::network::flow_classifier::ScoreFlows>>,
    pub logs: Option<Edge<crate::actors::logs::detector::ScoreLogs>>,
    pub heartbeats: Option<Edge<HeartbeatSeen>>,
    /// What collectors did about this node's response commands.
    pub outcomes: Option<Edge<crate::actors::alert::RemoteOutcome>>,
}

/// The receiving actor of compute nodes.
pub struct Inbound {
    cfg: InboundConfig,
    to: Dispatch,
    /// Shared with the receipts of durable batches, which are remembered
    /// once their work is done (a batch delivered again because its work
    /// was lost is not a duplicate).
    seen: Arc<Mutex<lru::LruCache<String, Seen>>>,
    /// NATS: subscribed in the prepare step, read from `started` on.
    subscription: Option<Subscription>,
    receiving: Option<Receiving>,
    /// The hosts taken (at most `max_hosts`).
    hosts: std::collections::HashSet<String>,
    too_many_hosts: Counter,
    restarts: Restarts,
    duplicates: Counter,
    unhandled: Counter,
    /// `inbound.received.<kind>`, by [`PayloadKind`] (unique envelopes).
    received: [Counter; PayloadKind::ALL.len()],
}

impl Inbound {
    pub fn new(
        cfg: InboundConfig,
        node: NodeInfo,
        to: Dispatch,
        subscription: Option<Subscription>,
    ) -> Self {
        let m = &node.metrics;
        Self {
            restarts: Restarts::new(Self::NAME, m),
            duplicates: m.counter("inbound.duplicates"),
            hosts: Default::default(),
            too_many_hosts: m.counter("inbound.rejected.too_many_hosts"),
            unhandled: m.counter("inbound.unhandled"),
            received: PayloadKind::ALL.map(|k| m.counter(&format!("inbound.received.{k}"))),
            subscription,
            receiving: None,
            seen: Arc::new(Mutex::new(lru::LruCache::new(
                std::num::NonZeroUsize::new(cfg.max_senders).unwrap_or(std::num::NonZeroUsize::MIN),
            ))),
            cfg,
            to,
        }
    }
}

impl NodeActor for Inbound {
    const NAME: &'static str = "inbound";
    type Config = InboundConfig;
    /// NATS roles: the data subscriptions, made before the node runs.
    type Prepared = Option<Subscription>;
    type Links = Dispatch;
    type Error = NatsError;

    fn section(cfg: &crate::config::Config) -> &InboundConfig {
        &cfg.inbound
    }
    async fn prepare(
        cfg: &crate::config::Config,
        node: &NodeInfo,
    ) -> Result<Option<Subscription>, NatsError> {
        if !node.role.uses_nats() {
            return Ok(None);
        }
        let name = format!("{} (in)", node.id);
        Ok(Some(
            subscription::data(&cfg.nats, &name, &node.metrics).await?,
        ))
    }
    fn create(
        cfg: InboundConfig,
        node: &NodeInfo,
        subscription: Option<Subscription>,
        to: Dispatch,
    ) -> Self {
        Self::new(cfg, node.clone(), to, subscription)
    }
    fn mailbox_capacity(&self) -> usize {
        self.cfg.mailbox.capacity
    }
}

crate::supervised!(Inbound);

impl Actor for Inbound {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Context<Self>) {
        on_start(self, ctx);
        // Once: the reading task outlives restarts (it sends to this
        // actor's address, which the supervisor keeps).
        if let Some(sub) = self.subscription.take() {
            let me = ctx.address();
            self.receiving = Some(sub.start(move |env, durable| {
                let me = me.clone();
                async move { me.send(Deliver(env, durable)).await.is_ok() }
            }));
        }
    }
}

impl Handler<Deliver> for Inbound {
    type Result = ();

    fn handle(&mut self, Deliver(env, durable): Deliver, ctx: &mut Context<Self>) {
        if !self.hosts.contains(&env.host) {
            if self.hosts.len() >= self.cfg.max_hosts {
                self.too_many_hosts.inc();
                let n = self.too_many_hosts.get();
                if n.is_power_of_two() {
                    tracing::warn!(host = %crate::actors::alert::sinks::console::printable(&env.host), refused = n, max_hosts = self.cfg.max_hosts, "a new host past inbound.max_hosts; its messages are refused");
                }
                if let Some(d) = durable {
                    d.reject();
                }
                return;
            }
            self.hosts.insert(env.host.clone());
        }
        let kind = env.payload.kind();
        let received = &self.received[kind as usize];
        let window = self.cfg.dedup_window;
        let (fresh, receipt) = match durable {
            None => (
                self.seen
                    .lock()
                    .get_or_insert_mut(sender_key(&env), Seen::default)
                    .first_time(env.seq, window),
                None,
            ),
            Some(d) => {
                let done_before = self
                    .seen
                    .lock()
                    .get(&sender_key(&env))
                    .is_some_and(|s| s.contains(env.seq));
                let (seen, node, seq) = (self.seen.clone(), sender_key(&env), env.seq);
                let r = d.receipt(move || {
                    seen.lock()
                        .get_or_insert_mut(node, Seen::default)
                        .first_time(seq, window);
                });
                (!done_before, Some(r))
            }
        };
        if !fresh {
            self.duplicates.inc();
            crate::actors::runtime::receipt::all_done([&receipt]);
            return;
        }
        // Unique envelopes only; duplicates are counted above.
        received.inc();
        match env.payload {
            Payload::SyscallBatch(mut b) => {
                if let Some(edge) = self.to.syscalls.clone() {
                    // Rules judge what it did (before the baseline takes
                    // the activity).
                    let judge = self.to.rules.clone().filter(|_| b.is_live()).map(|e| {
                        let j = crate::actors::rules::JudgeProcess {
                            host: b.host.clone(),
                            lineage: b.lineage.clone(),
                            activity: b.activity.iter().map(|a| a.what.clone()).collect(),
                        };
                        (e, j)
                    });
                    // Live batches name their process: baselines see it.
                    let observe = self.to.baseline.clone().filter(|_| b.is_live()).map(|e| {
                        let o = crate::actors::syscall::baseline::Observe {
                            host: b.host.clone(),
                            lineage: b.lineage.clone(),
                            activity: std::mem::take(&mut b.activity),
                            calls: b
                                .context
                                .iter()
                                .copied()
                                .chain(b.events.iter().map(|e| e.nr))
                                .collect(),
                            context: b.context.len(),
                            abi: b.abi,
                        };
                        (e, o)
                    });
                    let score = self.to.score_live || !b.is_live();
                    ctx.wait(
                        async move {
                            if let Some((e, o)) = observe {
                                let _ = e.push(o).await;
                            }
                            if let Some((e, j)) = judge {
                                let _ = e.push(j).await;
                            }
                            match score {
                                true => {
                                    let _ = edge.push(ScoreBatch(b, receipt)).await;
                                }
                                false => crate::actors::runtime::receipt::all_done([&receipt]),
                            }
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
            Payload::LogBatch(b) => {
                if let Some(edge) = self.to.logs.clone() {
                    ctx.wait(
                        async move {
                            let _ = edge
                                .push(crate::actors::logs::detector::ScoreLogs(b, receipt))
                                .await;
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
                            let _ = edge
                                .push(crate::actors::network::flow_classifier::ScoreFlows(
                                    b, receipt,
                                ))
                                .await;
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
                            let _ = edge.push(crate::actors::alert::RemoteOutcome(a)).await;
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
        // Nothing on this node will ever handle it: not worth a redelivery.
        crate::actors::runtime::receipt::all_done([&receipt]);
        tracing::debug!(%kind, "no handler for this payload kind on this node");
    }
}

/// NATS: stops taking new messages and replies once every message the
/// client held was handed on (not atomic: those messages come through this
/// actor's mailbox). In-process: holds nothing.
impl Handler<Drain> for Inbound {
    type Result = ResponseActFuture<Self, ()>;
    fn handle(&mut self, _: Drain, _: &mut Context<Self>) -> Self::Result {
        drained_when(Receiving::drain(self.receiving.take()))
    }
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
