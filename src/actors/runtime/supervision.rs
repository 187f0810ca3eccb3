//! Restart accounting shared by every supervised actor.
//!
//! An `actix::Supervisor` restarts an actor that *stops*; it does not catch
//! panics. So every handler turns a failure into `ctx.stop()` (see
//! [`fail`]), and each actor's `Supervised::restarting` calls
//! [`Restarts::restarting`], which counts the restart and sets a backoff that
//! the actor's `started` applies with [`Restarts::backoff`] before it handles
//! the next message. Panics are broken invariants and are process-fatal: the
//! panic hook installed by `main` logs them and exits, and the service manager
//! restarts the node.

use crate::metrics::{Counter, Metrics};
use actix::prelude::*;
use std::time::{Duration, Instant};

/// Restart count and backoff of one actor.
#[derive(Debug)]
pub struct Restarts {
    name: &'static str,
    counter: Counter,
    consecutive: u32,
    last: Option<Instant>,
    delay: Duration,
}

/// First backoff after a failure; doubles per consecutive failure.
const BASE: Duration = Duration::from_millis(50);
/// Longest backoff.
const MAX: Duration = Duration::from_secs(5);
/// A restart this long after the previous one starts the backoff afresh.
const RESET_AFTER: Duration = Duration::from_secs(60);

impl Restarts {
    pub fn new(name: &'static str, metrics: &Metrics) -> Self {
        Self {
            name,
            counter: metrics.counter(&format!("actor.{name}.restarts")),
            consecutive: 0,
            last: None,
            delay: Duration::ZERO,
        }
    }

    /// Call from `Supervised::restarting`.
    pub fn restarting(&mut self) {
        let now = Instant::now();
        if self.last.is_some_and(|t| now - t > RESET_AFTER) {
            self.consecutive = 0;
        }
        self.consecutive += 1;
        self.last = Some(now);
        self.counter.inc();
        self.delay = BASE
            .saturating_mul(1 << (self.consecutive - 1).min(16))
            .min(MAX);
        tracing::warn!(
            actor = self.name,
            restarts = self.counter.get(),
            backoff_ms = self.delay.as_millis() as u64,
            "actor restarting"
        );
    }

    /// Call from `Actor::started`: delays message handling after a restart.
    pub fn backoff<A>(&mut self, ctx: &mut A::Context)
    where
        A: Actor<Context = Context<A>>,
    {
        if !self.delay.is_zero() {
            let d = std::mem::take(&mut self.delay);
            ctx.wait(actix::fut::wrap_future::<_, A>(tokio::time::sleep(d)));
        }
    }
}

/// Logs a handler failure and stops the actor so its supervisor restarts it.
/// Hands `msg` on through `out` before the actor takes its next message
/// (a slow receiver slows the actor: backpressure); a closed edge fails
/// the actor, and its supervisor restarts it.
pub fn hand_on<A, M>(ctx: &mut Context<A>, out: crate::actors::runtime::mailbox::Edge<M>, msg: M)
where
    A: crate::actors::runtime::NodeActor,
    M: Message + Send + 'static,
    M::Result: Send,
{
    use actix::fut::ActorFutureExt;
    ctx.wait(
        actix::fut::wrap_future::<_, A>(async move { out.push(msg).await }).map(|r, _, ctx| {
            if let Err(e) = r {
                fail(A::NAME, ctx, e);
            }
        }),
    );
}

pub fn fail<A, E>(actor: &'static str, ctx: &mut Context<A>, err: E)
where
    A: Actor<Context = Context<A>>,
    E: std::fmt::Display,
{
    tracing::error!(actor, error = %err, "handler failed; stopping for restart");
    ctx.stop();
}

/// Test hook: makes the receiving actor fail as a real fault would (the
/// handler returns an error and the actor stops). Only sent in-process.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct InjectFault;
