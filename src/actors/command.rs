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

use super::alert::response::{outcome, Responder, ResponseConfig};
use super::mailbox::Edge;
use super::supervision::{fail, InjectFault, Restarts};
use super::transport::Publish;
use super::{now_ns, Drain, NodeInfo};
use crate::messages::{Command, Payload};
use crate::metrics::Counter;
use actix::prelude::*;
use std::num::NonZeroUsize;
use std::time::Duration;

/// Commands queued for the executor before the subscription waits.
const MAILBOX: usize = 64;
/// Command ids remembered, so that a redelivered command runs once.
const REMEMBERED: usize = 4096;

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
    node: NodeInfo,
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
    /// `cfg`: this host's `[alert.response]`; `out`: to the outbound actor.
    pub fn new(cfg: ResponseConfig, node: NodeInfo, out: Edge<Publish>) -> Self {
        let m = &node.metrics;
        Self {
            restarts: Restarts::new("command", m),
            received: m.counter("command.received"),
            executed: m.counter("command.executed"),
            refused: m.counter("command.refused"),
            duplicates: m.counter("command.duplicates"),
            responder: Responder::new(cfg),
            seen: lru::LruCache::new(NonZeroUsize::new(REMEMBERED).expect("non-zero")),
            out,
            node,
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
        self.responder
            .execute(c.action, &c.alert, c.dry_run, block_for)
    }
}

impl Actor for CommandExecutor {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(MAILBOX);
        self.restarts.backoff::<Self>(ctx);
    }
}

impl Supervised for CommandExecutor {
    fn restarting(&mut self, _: &mut Context<Self>) {
        self.restarts.restarting();
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

impl Handler<Drain> for CommandExecutor {
    type Result = ();
    fn handle(&mut self, _: Drain, _: &mut Context<Self>) {}
}

impl Handler<InjectFault> for CommandExecutor {
    type Result = ();
    fn handle(&mut self, _: InjectFault, ctx: &mut Context<Self>) {
        fail("command", ctx, "injected fault");
    }
}
