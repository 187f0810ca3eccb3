//! What every actor shares: the one actor shape ([`NodeActor`]), the node's
//! identity and counters, bounded edges ([`mailbox`]), restart accounting
//! ([`supervision`]), the graceful stop ([`Drain`]) and the heartbeats every
//! node sends ([`heartbeat`]).
//!
//! # The actor shape
//!
//! Every actor of a node is a [`NodeActor`]:
//!
//! 1. **A typed config section** (`Config`): a serde struct with
//!    `deny_unknown_fields` and documented defaults, in the actor's file,
//!    checked by [`crate::config::Validate`] with every other section.
//! 2. **One prepare step** ([`NodeActor::prepare`]): everything that can fail
//!    (model files, alert files, broker connections and subscriptions,
//!    capture attach) happens here, for every actor of the role, before any
//!    actor starts. Its result (`Prepared`) goes to `create`.
//! 3. **Create and start** ([`NodeActor::create`], then [`launch`]):
//!    cannot fail; the actor gets its config, what prepare opened and its
//!    `Links` (edges to the actors it sends to) and runs under an
//!    `actix::Supervisor` with the mailbox capacity from its config.
//! 4. **Supervised restart with backoff**: a handler that fails calls
//!    [`supervision::fail`], the actor stops, the supervisor restarts it with
//!    the same state; [`supervised!`] counts the restart
//!    (`actor.<name>.restarts`) and [`on_start`] applies the backoff.
//! 5. **Fault injection**: [`supervision::InjectFault`] makes any actor fail
//!    as a real fault would (tests).
//! 6. **Drain with an explicit completion signal**: the reply to [`Drain`]
//!    comes only once the actor has handed on everything it held
//!    ([`DrainReply`]); `crate::node` drains the actors in pipeline order,
//!    one `send(Drain).await` each, under the node's shutdown deadline.

pub mod endpoint;
pub mod heartbeat;
pub mod mailbox;
pub mod receipt;
pub mod supervision;

use crate::config::Config;
use crate::messages::Role;
use crate::metrics::Metrics;
use actix::prelude::*;
use std::future::Future;
use std::time::Instant;
use supervision::{InjectFault, Restarts};

/// The one shape of every actor (see the module documentation).
pub trait NodeActor:
    Actor<Context = Context<Self>> + Supervised + Supervision + Handler<Drain> + Handler<InjectFault>
{
    /// Name in logs and counters (`actor.<NAME>.restarts`).
    const NAME: &'static str;
    /// The actor's config section.
    type Config: Clone;
    /// What [`NodeActor::prepare`] checked and opened.
    type Prepared;
    /// Edges to the actors it sends to.
    type Links;
    /// Why it cannot start.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Its section of the node's configuration.
    fn section(cfg: &Config) -> &Self::Config;

    /// Everything that can fail, before any actor of the node starts.
    fn prepare(
        cfg: &Config,
        node: &NodeInfo,
    ) -> impl Future<Output = Result<Self::Prepared, Self::Error>>;

    /// Builds the actor (cannot fail).
    fn create(
        cfg: Self::Config,
        node: &NodeInfo,
        prepared: Self::Prepared,
        links: Self::Links,
    ) -> Self;

    /// Messages its mailbox holds before senders wait or drop.
    fn mailbox_capacity(&self) -> usize;

    /// What a restart must undo besides the accounting (e.g. end a reader
    /// thread that `started` will start again). Nothing by default.
    fn on_restart(&mut self) {}
}

/// An actor's restart accounting (implemented by [`supervised!`], from the
/// actor's `restarts` field).
pub trait Supervision {
    fn restarts(&mut self) -> &mut Restarts;
}

/// Starts an actor under a supervisor on the current arbiter.
pub fn launch<A: NodeActor>(
    cfg: &Config,
    node: &NodeInfo,
    prepared: A::Prepared,
    links: A::Links,
) -> Addr<A> {
    let a = <A as NodeActor>::create(A::section(cfg).clone(), node, prepared, links);
    Supervisor::start(move |_| a)
}

/// Starts an actor under a supervisor on its own arbiter (CPU-bound work).
pub fn launch_in<A>(
    arbiter: &ArbiterHandle,
    cfg: &Config,
    node: &NodeInfo,
    prepared: A::Prepared,
    links: A::Links,
) -> Addr<A>
where
    A: NodeActor + Send,
{
    let a = <A as NodeActor>::create(A::section(cfg).clone(), node, prepared, links);
    Supervisor::start_in_arbiter(arbiter, move |_| a)
}

/// The first lines of every actor's `started`: mailbox capacity from its
/// config, and the backoff after a restart.
pub fn on_start<A: NodeActor>(actor: &mut A, ctx: &mut Context<A>) {
    ctx.set_mailbox_capacity(actor.mailbox_capacity());
    actor.restarts().backoff::<A>(ctx);
}

/// Implements the shape's restart accounting and fault injection for a
/// [`NodeActor`] with a `restarts: Restarts` field: `Supervised::restarting`
/// counts the restart and sets the backoff; `InjectFault` fails the actor
/// as a real fault would.
#[macro_export]
macro_rules! supervised {
    ($actor:ty) => {
        impl $crate::actors::runtime::Supervision for $actor {
            fn restarts(&mut self) -> &mut $crate::actors::runtime::supervision::Restarts {
                &mut self.restarts
            }
        }
        impl ::actix::Supervised for $actor {
            fn restarting(&mut self, _: &mut ::actix::Context<Self>) {
                $crate::actors::runtime::Supervision::restarts(self).restarting();
                $crate::actors::runtime::NodeActor::on_restart(self);
            }
        }
        impl ::actix::Handler<$crate::actors::runtime::supervision::InjectFault> for $actor {
            type Result = ();
            fn handle(
                &mut self,
                _: $crate::actors::runtime::supervision::InjectFault,
                ctx: &mut ::actix::Context<Self>,
            ) {
                $crate::actors::runtime::supervision::fail(
                    <Self as $crate::actors::runtime::NodeActor>::NAME,
                    ctx,
                    "injected fault",
                );
            }
        }
    };
}
pub use supervised;

/// The reply to [`Drain`]: resolves once the actor has handed on what it
/// held; the actor handles no other message meanwhile.
pub type DrainReply<A> = AtomicResponse<A, ()>;

/// A drain reply that waits for `handoff` (the future that hands on what
/// the actor held).
pub fn drained_after<A, F>(handoff: F) -> DrainReply<A>
where
    A: Actor<Context = Context<A>>,
    F: ActorFuture<A, Output = ()> + 'static,
{
    AtomicResponse::new(Box::pin(handoff))
}

/// A drain reply that waits for `done` while the actor keeps handling its
/// mailbox and its own futures: for actors whose hand-off runs in their own
/// context (capture readers) or comes back through their mailbox (NATS
/// subscriptions), which an atomic reply would block.
pub fn drained_when<A, F>(done: F) -> ResponseActFuture<A, ()>
where
    A: Actor<Context = Context<A>>,
    F: Future<Output = ()> + 'static,
{
    Box::pin(actix::fut::wrap_future(done))
}

/// Resolves once `done` turns true (or its sender is gone: nothing more
/// comes); at once for `None`.
pub async fn until_done(done: Option<tokio::sync::watch::Receiver<bool>>) {
    if let Some(mut done) = done {
        let _ = done.wait_for(|d| *d).await;
    }
}

/// A drain reply for an actor that holds nothing between messages.
pub fn drained<A>() -> DrainReply<A>
where
    A: Actor<Context = Context<A>>,
{
    AtomicResponse::new(Box::pin(actix::fut::ready(())))
}

/// Identity and shared counters, handed to every actor.
#[derive(Clone, Debug)]
pub struct NodeInfo {
    pub id: String,
    pub host: String,
    pub role: Role,
    pub metrics: Metrics,
    pub started: Instant,
    /// What the web console shows (compute nodes with `[console] listen`).
    pub console: Option<std::sync::Arc<crate::actors::console::store::ConsoleState>>,
}

/// Graceful stop: finish what is queued, hand everything held downstream,
/// then reply (see [`DrainReply`]: the reply is the completion signal).
/// Sent once per actor, in pipeline order (capture first), by `crate::node`.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct Drain;

/// Nanoseconds since the Unix epoch.
pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}
