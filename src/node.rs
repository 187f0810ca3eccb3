//! Role registration: which actors a node starts, how their edges are wired,
//! and the order in which they drain on shutdown.
//!
//! Actors start downstream first (alerts before classifiers before buffers
//! before flow merge and batching before capture), each under an `actix::Supervisor`, so nothing is ever
//! sent to an actor that does not exist yet. Every fallible step (model
//! files, broker connection, alert files, capture source) happens here,
//! before the node reports itself running. Adding an actor family is a new
//! file in `src/actors/`, a config section, and a few lines here.

use crate::actors::alert::jetstream::ensure_stream;
use crate::actors::alert::{AlertActor, AlertError, CommandRoute};
use crate::actors::command::CommandExecutor;
use crate::actors::flow_classifier::FlowClassifier;
use crate::actors::flow_merge::FlowMerge;
use crate::actors::heartbeat::{HeartbeatActor, HeartbeatMonitor};
use crate::actors::mailbox::{Edge, Overflow};
use crate::actors::packet_source::{PacketSource, PacketSourceKind};
use crate::actors::syscall_batcher::SyscallBatcher;
use crate::actors::syscall_buffer::SyscallBuffer;
use crate::actors::syscall_classifier::SyscallClassifier;
use crate::actors::syscall_source::{SourceInput, SourceKind, SyscallSource};
use crate::actors::transport::{self, Dispatch, Flush, Inbound, Outbound, Route};
use crate::actors::{Drain, NodeInfo};
use crate::config::{Config, Role};
use crate::metrics::Metrics;
use crate::models::network::FlowModel;
use crate::models::{load_syscall_model, ModelError};
use crate::transport::nats::{self, NatsError};
use actix::prelude::*;
use std::time::{Duration, Instant};

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Nats(#[from] NatsError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Alert(#[from] AlertError),
    #[error(transparent)]
    JetStream(#[from] crate::actors::alert::jetstream::JetStreamError),
    #[error("syscall capture cannot start")]
    Source(#[from] crate::actors::syscall_source::SourceError),
    #[error("packet capture cannot start")]
    Packets(#[from] crate::capture::libpcap::CaptureError),
    #[error(
        "syscall_batcher.context ({context}) must be at least the model's window − 1 ({needed})"
    )]
    Context { context: usize, needed: usize },
}

/// Addresses of a running node's actors, for draining (and for tests).
pub struct Node {
    pub info: NodeInfo,
    cfg: Config,
    pub source: Option<Addr<SyscallSource>>,
    pub batcher: Option<Addr<SyscallBatcher>>,
    pub packet_source: Option<Addr<PacketSource>>,
    pub flow_merge: Option<Addr<FlowMerge>>,
    pub outbound: Addr<Outbound>,
    pub heartbeat: Addr<HeartbeatActor>,
    pub inbound: Option<Addr<Inbound>>,
    pub buffer: Option<Addr<SyscallBuffer>>,
    pub classifier: Option<Addr<SyscallClassifier>>,
    pub flow_classifier: Option<Addr<FlowClassifier>>,
    pub alert: Option<Addr<AlertActor>>,
    classifier_arbiter: Option<Arbiter>,
    nats_in: Option<(async_nats::Client, tokio::task::JoinHandle<()>)>,
    /// Collector on NATS: the command subscription and its executor.
    commands: Option<(
        async_nats::Client,
        tokio::task::JoinHandle<()>,
        Addr<CommandExecutor>,
    )>,
}

impl Node {
    /// Starts every actor of `cfg.node.role`. Must run inside an actix system.
    pub async fn start(cfg: Config, metrics: Metrics) -> Result<Node, StartError> {
        let role = cfg.node.role;
        let info = NodeInfo {
            id: cfg.node.id.clone(),
            host: cfg.node.host.clone(),
            role,
            metrics: metrics.clone(),
            started: Instant::now(),
        };
        let m = &metrics;

        // 1. Everything that can fail, before any actor exists: model and
        //    alert files, broker connections, capture attach (last, so that
        //    events do not wait on a slow broker connection).
        let mut model = None;
        let mut flow_model = None;
        let mut alert_actor = None;
        if role.computes() {
            let mdl = load_syscall_model(&cfg.syscall_classifier.model)?;
            if role == Role::Both && cfg.syscall_batcher.context + 1 < mdl.meta.window {
                return Err(StartError::Context {
                    context: cfg.syscall_batcher.context,
                    needed: mdl.meta.window - 1,
                });
            }
            tracing::info!(model = %mdl.meta.name, version = %mdl.meta.version, window = mdl.meta.window, threshold = mdl.meta.threshold, "syscall model loaded");
            let fm = FlowModel::load(&cfg.flow_classifier.model)?;
            tracing::info!(model = %fm.name, version = %fm.version, threshold = fm.threshold, "network model loaded");
            flow_model = Some(fm);
            let js = match cfg.alert.jetstream.enabled {
                true => {
                    let client =
                        nats::connect(&cfg.nats, &format!("{} (alerts)", info.id), m).await?;
                    Some(ensure_stream(&client, &cfg.alert.jetstream).await?)
                }
                false => None,
            };
            alert_actor = Some(AlertActor::new(cfg.alert.clone(), info.clone(), js)?);
            model = Some(mdl);
        }
        let nats_out = match role.uses_nats() {
            true => Some(nats::connect(&cfg.nats, &format!("{} (out)", info.id), m).await?),
            false => None,
        };
        let nats_in_client = match role.uses_nats() && role.computes() {
            true => Some(nats::connect(&cfg.nats, &format!("{} (in)", info.id), m).await?),
            false => None,
        };
        // A collector on NATS answers the response commands addressed to its host.
        let commands_client = match role {
            Role::Collector => {
                Some(nats::connect(&cfg.nats, &format!("{} (commands)", info.id), m).await?)
            }
            _ => None,
        };
        let source_input = match role.collects() {
            true => Some(SourceInput::prepare(&cfg.syscall_source, m)?),
            false => None,
        };
        let packet_reader = match role.collects() {
            true => cfg.packet_source.open()?,
            false => None,
        };

        // 2. The actors, downstream first; nothing here can fail.
        let mut compute = None;
        if let (Some(model), Some(flow_model), Some(alert_actor)) = (model, flow_model, alert_actor)
        {
            let window = model.meta.window;
            let alert = Supervisor::start(move |_| alert_actor);
            let arbiter = Arbiter::new();
            let to_alert = Edge::new(
                "alert",
                alert.clone().recipient(),
                cfg.alert.mailbox.overflow,
                m,
            );
            let vocab = model.vocab.clone();
            let classifier = {
                let c =
                    SyscallClassifier::new(cfg.syscall_classifier.clone(), &info, model, to_alert);
                Supervisor::start_in_arbiter(&arbiter.handle(), move |_| c)
            };
            let flow_classifier = Supervisor::start({
                let c = FlowClassifier::new(
                    cfg.flow_classifier.clone(),
                    &info,
                    flow_model,
                    Edge::new(
                        "alert_flows",
                        alert.clone().recipient(),
                        cfg.alert.mailbox.overflow,
                        m,
                    ),
                );
                move |_| c
            });
            let to_classifier = Edge::new(
                "syscall_classifier",
                classifier.clone().recipient(),
                cfg.syscall_classifier.mailbox.overflow,
                m,
            );
            let buffer = Supervisor::start({
                let b = SyscallBuffer::new(
                    cfg.syscall_buffer.clone(),
                    &info,
                    vocab,
                    window,
                    to_classifier,
                );
                move |_| b
            });
            let monitor = Supervisor::start({
                let h = HeartbeatMonitor::new(cfg.heartbeat.clone(), info.clone());
                move |_| h
            });
            let dispatch = Dispatch {
                syscalls: Some(Edge::new(
                    "syscall_buffer",
                    buffer.clone().recipient(),
                    cfg.syscall_buffer.mailbox.overflow,
                    m,
                )),
                flows: Some(Edge::new(
                    "flow_classifier",
                    flow_classifier.clone().recipient(),
                    cfg.flow_classifier.mailbox.overflow,
                    m,
                )),
                heartbeats: Some(Edge::new(
                    "heartbeat_monitor",
                    monitor.recipient(),
                    Overflow::DropNewest,
                    m,
                )),
                outcomes: Some(Edge::new(
                    "alert_outcomes",
                    alert.clone().recipient(),
                    cfg.alert.mailbox.overflow,
                    m,
                )),
            };
            let inbound = Supervisor::start({
                let i = Inbound::new(cfg.inbound.clone(), info.clone(), dispatch);
                move |_| i
            });
            compute = Some((alert, arbiter, classifier, flow_classifier, buffer, inbound));
        }

        // Outbound: in-process to our own inbound, or NATS.
        let route = match (&compute, nats_out) {
            (_, Some(client)) => Route::Nats(client),
            (Some((.., inbound)), None) => Route::InProcess(Edge::new(
                "inbound",
                inbound.clone().recipient(),
                cfg.inbound.mailbox.overflow,
                m,
            )),
            (None, None) => unreachable!("a role without compute uses NATS"),
        };
        let outbound = Supervisor::start({
            let o = Outbound::new(
                cfg.outbound.clone(),
                info.clone(),
                route,
                cfg.nats.max_message_bytes,
            );
            move |_| o
        });

        if let (Some((alert, ..)), Role::Compute) = (&compute, role) {
            let route = Edge::new(
                "commands_out",
                outbound.clone().recipient(),
                cfg.outbound.mailbox.overflow,
                m,
            );
            let _ = alert.send(CommandRoute(route)).await;
        }
        let mut commands = None;
        if let Some(client) = commands_client {
            let executor = Supervisor::start({
                let e = CommandExecutor::new(
                    cfg.alert.response.clone(),
                    info.clone(),
                    Edge::new(
                        "outcomes_out",
                        outbound.clone().recipient(),
                        cfg.outbound.mailbox.overflow,
                        m,
                    ),
                );
                move |_| e
            });
            let task = transport::subscribe_commands(
                client.clone(),
                &cfg.nats,
                &info.host,
                executor.clone(),
                metrics.clone(),
            )
            .await?;
            commands = Some((client, task, executor));
        }

        let mut nats_in = None;
        if let (Some((.., inbound)), Some(client)) = (&compute, nats_in_client) {
            let task =
                transport::subscribe(client.clone(), &cfg.nats, inbound.clone(), metrics.clone())
                    .await?;
            nats_in = Some((client, task));
        }

        let heartbeat = Supervisor::start({
            let h = HeartbeatActor::new(
                cfg.heartbeat.clone(),
                info.clone(),
                Edge::new(
                    "heartbeat_out",
                    outbound.clone().recipient(),
                    Overflow::DropNewest,
                    m,
                ),
            );
            move |_| h
        });

        // Collector side, capture last.
        let (mut batcher, mut source) = (None, None);
        let (mut flow_merge, mut packet_source) = (None, None);
        if let Some(reader) = packet_reader {
            let fm = FlowMerge::new(
                cfg.flow_merge.clone(),
                info.clone(),
                cfg.packet_source.kind == PacketSourceKind::Live,
                Edge::new(
                    "outbound_flows",
                    outbound.clone().recipient(),
                    cfg.outbound.mailbox.overflow,
                    m,
                ),
            );
            let fm = Supervisor::start(move |_| fm);
            let ps = PacketSource::new(
                cfg.packet_source.clone(),
                info.clone(),
                Edge::new(
                    "flow_merge",
                    fm.clone().recipient(),
                    cfg.flow_merge.mailbox.overflow,
                    m,
                ),
                reader,
            );
            packet_source = Some(Supervisor::start(move |_| ps));
            flow_merge = Some(fm);
        }
        if role.collects() {
            let b = SyscallBatcher::new(
                cfg.syscall_batcher.clone(),
                info.clone(),
                Edge::new(
                    "outbound",
                    outbound.clone().recipient(),
                    cfg.outbound.mailbox.overflow,
                    m,
                ),
            );
            let b = Supervisor::start(move |_| b);
            if let Some(input) =
                source_input.filter(|_| cfg.syscall_source.kind != SourceKind::None)
            {
                let s = SyscallSource::new(
                    cfg.syscall_source.clone(),
                    info.clone(),
                    Edge::new(
                        "syscall_batcher",
                        b.clone().recipient(),
                        cfg.syscall_batcher.mailbox.overflow,
                        m,
                    ),
                    input,
                );
                source = Some(Supervisor::start(move |_| s));
            }
            batcher = Some(b);
        }

        tracing::info!(node = %info.id, host = %info.host, role = role.as_str(), "node running");
        let (alert, classifier_arbiter, classifier, flow_classifier, buffer, inbound) =
            match compute {
                Some((a, arb, c, fc, b, i)) => {
                    (Some(a), Some(arb), Some(c), Some(fc), Some(b), Some(i))
                }
                None => (None, None, None, None, None, None),
            };
        Ok(Node {
            info,
            cfg,
            source,
            batcher,
            packet_source,
            flow_merge,
            outbound,
            heartbeat,
            inbound,
            buffer,
            classifier,
            flow_classifier,
            alert,
            classifier_arbiter,
            nats_in,
            commands,
        })
    }

    /// Graceful stop: capture first, then each stage in pipeline order hands
    /// on what it holds, within `node.shutdown_deadline`. Returns false when
    /// the deadline cut the drain short (what was left is counted dropped).
    pub async fn shutdown(self) -> bool {
        let deadline = self.cfg.node.shutdown_deadline;
        let started = Instant::now();
        let left = move || deadline.saturating_sub(started.elapsed());
        let ok = tokio::time::timeout(deadline, self.drain(left))
            .await
            .is_ok();
        if !ok {
            tracing::warn!(
                deadline_ms = deadline.as_millis() as u64,
                "shutdown deadline passed; exiting anyway"
            );
            // Alerts the remote sinks still hold are lost now: count them.
            let m = &self.info.metrics;
            for sink in ["jetstream", "webhook"] {
                let left = m.gauge(&format!("alert.{sink}.queued")).get();
                if left > 0 {
                    m.counter(&format!("alert.{sink}.dropped")).add(left);
                    tracing::error!(
                        sink,
                        alerts = left,
                        "alerts not delivered to this sink before exit"
                    );
                }
            }
            // So are the messages the broker has not confirmed (queued, or
            // sent without an acknowledgement).
            let unsent = m.gauge("outbound.queued").get() + m.gauge("outbound.in_flight").get();
            if unsent > 0 {
                m.counter("outbound.dropped").add(unsent);
                tracing::error!(
                    messages = unsent,
                    "messages not confirmed by the broker before exit"
                );
            }
        }
        let counters = self.info.metrics.counters();
        tracing::info!(
            drained = ok,
            counters = %serde_json::to_string(&counters).unwrap_or_default(),
            "node stopped"
        );
        ok
    }

    async fn drain(&self, left: impl Fn() -> Duration) {
        // Sending Drain twice: the second is handled only once the first
        // one's hand-off downstream has completed (it holds the mailbox), so
        // when it returns the actor holds nothing any more.
        async fn drain_actor<A>(addr: &Addr<A>)
        where
            A: Actor<Context = Context<A>> + Handler<Drain>,
        {
            let _ = addr.send(Drain).await;
            let _ = addr.send(Drain).await;
        }
        if let Some((client, task, executor)) = &self.commands {
            // No new commands; those already taken finish and report.
            let _ = client.drain().await;
            while !task.is_finished() && left() > Duration::ZERO {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            drain_actor(executor).await;
        }
        if let Some(s) = &self.source {
            drain_actor(s).await;
        }
        if let Some(s) = &self.packet_source {
            drain_actor(s).await;
        }
        if let Some((client, task)) = &self.nats_in {
            // Stop taking new work; what the client already holds is delivered.
            let _ = client.drain().await;
            while !task.is_finished() && left() > Duration::ZERO {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        if let Some(b) = &self.batcher {
            drain_actor(b).await;
        }
        if let Some(f) = &self.flow_merge {
            drain_actor(f).await;
        }
        drain_actor(&self.heartbeat).await;
        let _ = self.outbound.send(Flush { deadline: left() }).await;
        if let Some(i) = &self.inbound {
            drain_actor(i).await;
        }
        if let Some(b) = &self.buffer {
            drain_actor(b).await;
        }
        if let Some(c) = &self.classifier {
            drain_actor(c).await;
        }
        if let Some(c) = &self.flow_classifier {
            drain_actor(c).await;
        }
        if let Some(a) = &self.alert {
            drain_actor(a).await;
        }
        if let Some(arb) = &self.classifier_arbiter {
            arb.stop();
        }
    }
}
