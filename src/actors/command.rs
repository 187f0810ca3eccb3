//! Collector side of response: executes the commands compute nodes address
//! to this host (`daisi.v1.command.<host>`) and sends each outcome back.
//!
//! The collector does not take the compute node's word for what is safe.
//! Its own `[alert.response]` decides: `enabled` (else every command is
//! answered "refused"), `dry_run`, the allowlists, the longest `block_for`
//! and `max_command_age`. Daisi itself and PID 1 are never acted on. Each
//! command is executed at most once (ids remembered), and every command,
//! carried out or not, gets an outcome: an alert of module `response`
//! published as [`Payload::Outcome`], which the compute nodes write to
//! their sinks. Who may publish commands at all is the broker's job: give
//! collectors subscribe-only permission on their command subject and only
//! compute nodes publish permission (README, "Response").

use crate::actors::runtime::mailbox::{Edge, MailboxConfig};
use crate::actors::runtime::supervision::Restarts;
use crate::actors::runtime::{drained_when, now_ns, on_start, Drain, NodeActor, NodeInfo};
use crate::actors::transport::subscription::{self, Receiving, Subscription};
use crate::actors::transport::Publish;
use crate::config::validate::{ConfigError, Validate};
use crate::messages::{Command, Payload};
use crate::metrics::Counter;
use crate::nats::NatsError;
use crate::response::{outcome, Responder, ResponseConfig};
use actix::prelude::*;
use serde::{Deserialize, Serialize};
use std::num::NonZeroUsize;
use std::time::Duration;

/// `[command]`: the collector's command executor (NATS collectors only;
/// what it may do is `[alert.response]`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CommandConfig {
    /// Command ids remembered, so that a redelivered command runs once.
    pub remembered: usize,
    /// Commands queued for the executor before the subscription waits.
    pub mailbox: MailboxConfig,
}

impl Default for CommandConfig {
    fn default() -> Self {
        Self {
            remembered: 4096,
            mailbox: MailboxConfig::default(),
        }
    }
}

impl Validate for CommandConfig {
    fn validate(&self, path: &str, errors: &mut Vec<ConfigError>) {
        crate::config::validate::at_least_one(path, &[("remembered", self.remembered)], errors);
        self.mailbox.validate(&format!("{path}.mailbox"), errors);
    }
}

/// A command that arrived for this host.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct Execute {
    pub command: Command,
    /// The sending node.
    pub from: String,
    /// When the sender sent it (its clock).
    pub sent_ns: u64,
}

pub struct CommandExecutor {
    cfg: CommandConfig,
    node: NodeInfo,
    /// Subscribed in the prepare step, read from `started` on.
    subscription: Option<Subscription>,
    receiving: Option<Receiving>,
    not_command: Counter,
    responder: Responder,
    seen: lru::LruCache<String, ()>,
    out: Edge<Publish>,
    restarts: Restarts,
    received: Counter,
    executed: Counter,
    refused: Counter,
    duplicates: Counter,
}

impl CommandExecutor {
    /// `rules`: this host's `[alert.response]`; `out`: to the outbound
    /// actor; `subscription`: the command subject of this host (none in
    /// tests that send [`Execute`] themselves).
    pub fn new(
        cfg: CommandConfig,
        rules: ResponseConfig,
        node: NodeInfo,
        out: Edge<Publish>,
        subscription: Option<Subscription>,
    ) -> Self {
        let m = &node.metrics;
        Self {
            restarts: Restarts::new(Self::NAME, m),
            not_command: m.counter("command.rejected.not_a_command"),
            subscription,
            receiving: None,
            received: m.counter("command.received"),
            executed: m.counter("command.executed"),
            refused: m.counter("command.refused"),
            duplicates: m.counter("command.duplicates"),
            responder: Responder::new(rules),
            seen: lru::LruCache::new(
                NonZeroUsize::new(cfg.remembered).unwrap_or(NonZeroUsize::MIN),
            ),
            out,
            node,
            cfg,
        }
    }

    /// Carried out, or why not.
    fn decide(&mut self, c: &Command, sent_ns: u64) -> Result<String, String> {
        let cfg = self.responder.config();
        if c.target_host != self.node.host {
            return Err(format!(
                "addressed to host {}, not this one ({})",
                c.target_host, self.node.host
            ));
        }
        if !cfg.enabled {
            return Err(
                "response is not enabled on this host's collector ([alert.response] enabled = false)"
                    .into(),
            );
        }
        let age = Duration::from_nanos(now_ns().saturating_sub(sent_ns));
        if age > cfg.max_command_age {
            return Err(format!(
                "command sent {:.0} s ago, longer than max_command_age ({} s)",
                age.as_secs_f64(),
                cfg.max_command_age.as_secs()
            ));
        }
        let block_for = Duration::from_secs(c.block_for_s).min(cfg.block_for);
        let protect: Vec<std::net::IpAddr> =
            c.protect.iter().filter_map(|p| p.parse().ok()).collect();
        self.responder
            .execute_protecting(c.action, &c.alert, c.dry_run, block_for, &protect)
    }
}

/// What the executor's prepare step gets: this host's rules and its
/// command subscription.
pub struct CommandInput {
    pub rules: ResponseConfig,
    pub subscription: Subscription,
}

impl NodeActor for CommandExecutor {
    const NAME: &'static str = "command";
    type Config = CommandConfig;
    type Prepared = CommandInput;
    type Links = Edge<Publish>;
    type Error = NatsError;

    fn section(cfg: &crate::config::Config) -> &CommandConfig {
        &cfg.command
    }
    /// Subscribes to `daisi.v1.command.<this host>`.
    async fn prepare(
        cfg: &crate::config::Config,
        node: &NodeInfo,
    ) -> Result<CommandInput, NatsError> {
        let name = format!("{} (commands)", node.id);
        Ok(CommandInput {
            rules: cfg.alert.response.clone(),
            subscription: subscription::commands(&cfg.nats, &name, &node.host, &node.metrics)
                .await?,
        })
    }
    fn create(
        cfg: CommandConfig,
        node: &NodeInfo,
        input: CommandInput,
        out: Edge<Publish>,
    ) -> Self {
        Self::new(
            cfg,
            input.rules,
            node.clone(),
            out,
            Some(input.subscription),
        )
    }
    fn mailbox_capacity(&self) -> usize {
        self.cfg.mailbox.capacity
    }
}

crate::supervised!(CommandExecutor);

impl Actor for CommandExecutor {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Context<Self>) {
        on_start(self, ctx);
        // Once: the reading task outlives restarts.
        if let Some(sub) = self.subscription.take() {
            let (me, not_command) = (ctx.address(), self.not_command.clone());
            self.receiving = Some(sub.start(move |env, _| {
                let (me, not_command) = (me.clone(), not_command.clone());
                async move {
                    let Payload::Command(command) = env.payload else {
                        not_command.inc();
                        return true;
                    };
                    let msg = Execute {
                        command,
                        from: env.node_id,
                        sent_ns: env.ts_ns,
                    };
                    me.send(msg).await.is_ok()
                }
            }));
        }
    }
}

impl Handler<Execute> for CommandExecutor {
    type Result = ();

    fn handle(&mut self, msg: Execute, ctx: &mut Context<Self>) {
        self.received.inc();
        let c = msg.command;
        if self.seen.put(c.id.clone(), ()).is_some() {
            self.duplicates.inc();
            tracing::info!(command_id = %c.id, "command already handled; ignored");
            return;
        }
        tracing::info!(command_id = %c.id, from = %msg.from, action = c.action.name(), alert_id = %c.alert.id, "command received");
        let r = self.decide(&c, msg.sent_ns);
        match r {
            Ok(_) => self.executed.inc(),
            Err(_) => self.refused.inc(),
        }
        let mut o = outcome(&c.alert, c.action, r, c.id.clone(), now_ns(), &self.node.id);
        o.host = self.node.host.clone();
        let out = self.out.clone();
        ctx.wait(
            async move {
                let _ = out.push(Publish(Payload::Outcome(o))).await;
            }
            .into_actor(self),
        );
    }
}

/// Takes no new commands; replies once those already received were carried
/// out and answered (not atomic: they come through this actor's mailbox,
/// and each answer is handed to the outbound actor before the next).
impl Handler<Drain> for CommandExecutor {
    type Result = ResponseActFuture<Self, ()>;
    fn handle(&mut self, _: Drain, _: &mut Context<Self>) -> Self::Result {
        drained_when(Receiving::drain(self.receiving.take()))
    }
}
