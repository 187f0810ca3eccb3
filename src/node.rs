//! Role registration: which actors a node starts, how their edges are wired,
//! and the order in which they drain on shutdown.
//!
//! [`Node::start`] follows the architecture: first every actor of the role
//! runs its prepare step ([`NodeActor::prepare`]: models, alert sinks,
//! broker connections and subscriptions, capture last), so that nothing
//! starts unless everything can; then the actors start, downstream first,
//! so nothing is ever sent to an actor that does not exist yet: the compute
//! side, the transport, the heartbeat, the collector side with capture
//! last. Adding an actor family is a new folder in `src/actors/`, a config
//! section, and a few lines here.
//!
//! [`Node::shutdown`] sends [`Drain`] to each actor once, in pipeline order
//! (capture first), and each reply says that actor has handed on what it
//! held; the whole drain runs under `node.shutdown_deadline`.

use crate::actors::alert::sinks::{Backlog, Sink};
use crate::actors::alert::AlertActor;
use crate::actors::command::{CommandExecutor, CommandInput};
use crate::actors::console::store::ConsoleState;
use crate::actors::console::ConsoleServer;
use crate::actors::logs::detector::LogDetector;
use crate::actors::logs::source::{LogSource, OpenSources};
use crate::actors::network::flow_classifier::FlowClassifier;
use crate::actors::network::flow_merge::FlowMerge;
use crate::actors::network::packet_source::PacketSource;
use crate::actors::rules::RuleJudge;
use crate::actors::runtime::endpoint::MetricsEndpoint;
use crate::actors::runtime::heartbeat::{HeartbeatActor, HeartbeatMonitor};
use crate::actors::runtime::mailbox::{Edge, Overflow};
use crate::actors::runtime::{launch, launch_in, Drain, NodeActor, NodeInfo};
use crate::actors::syscall::baseline::{BaselineActor, Store};
use crate::actors::syscall::batcher::SyscallBatcher;
use crate::actors::syscall::buffer::{BufferLinks, SyscallBuffer};
use crate::actors::syscall::classifier::SyscallClassifier;
use crate::actors::syscall::source::{SourceInput, SourceKind, SyscallSource};
use crate::actors::transport::queue::NatsQueue;
use crate::actors::transport::stream::Acks;
use crate::actors::transport::subscription::Subscription;
use crate::actors::transport::{Dispatch, Inbound, NatsRoute, Outbound};
use crate::capture::libpcap::PacketReader;
use crate::config::{Config, Role};
use crate::metrics::Metrics;
use crate::models::network::FlowModel;
use crate::models::SyscallModel;
use actix::dev::ToEnvelope;
use actix::prelude::*;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Why a node could not start: the actor whose prepare step failed, and why.
#[derive(Debug, thiserror::Error)]
#[error("{actor} cannot start")]
pub struct StartError {
    pub actor: &'static str,
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

/// Runs one actor's prepare step.
async fn prepare<A: NodeActor>(cfg: &Config, node: &NodeInfo) -> Result<A::Prepared, StartError> {
    A::prepare(cfg, node).await.map_err(|e| StartError {
        actor: A::NAME,
        source: Box::new(e),
    })
}

/// What the compute side's prepare steps opened.
struct ComputeParts {
    sinks: Vec<Box<dyn Sink>>,
    syscall_model: SyscallModel,
    flow_model: FlowModel,
    subscription: Option<Subscription>,
    /// Host baselines, when on and fed by live capture.
    baseline: Option<Store>,
    /// Sigma rules, when any are loaded and live capture feeds them.
    rules: Option<(crate::rules::RuleSet, std::path::PathBuf)>,
    /// The trained log templates, when a model is named.
    log_templates: Option<crate::logs::templates::TemplateModel>,
}

/// What the collector side's prepare steps opened.
struct CollectorParts {
    commands: Option<CommandInput>,
    packets: Option<PacketReader>,
    syscalls: Option<SourceInput>,
    /// The flow merge's: live capture or a file, and the redaction.
    flow_merge: <FlowMerge as NodeActor>::Prepared,
    logs: Option<OpenSources>,
}

/// Everything a role needs, checked and opened before any actor starts.
struct Prepared {
    /// The metrics endpoint's listener (`[metrics] listen`).
    metrics: Option<std::net::TcpListener>,
    /// The console's (`[console] listen`, compute side).
    console: <ConsoleServer as NodeActor>::Prepared,
    compute: Option<ComputeParts>,
    outbound: Option<NatsRoute>,
    collector: Option<CollectorParts>,
}

impl Prepared {
    /// Compute side first (models, sinks), then the broker, then the
    /// collector side with capture last, so that events do not wait on a
    /// slow broker connection.
    async fn for_role(cfg: &Config, node: &NodeInfo) -> Result<Prepared, StartError> {
        let role = node.role;
        let metrics = prepare::<MetricsEndpoint>(cfg, node).await?;
        let console = prepare::<ConsoleServer>(cfg, node).await?;
        let compute = match role.computes() {
            true => Some(ComputeParts {
                syscall_model: prepare::<SyscallClassifier>(cfg, node).await?,
                flow_model: prepare::<FlowClassifier>(cfg, node).await?,
                sinks: prepare::<AlertActor>(cfg, node).await?,
                log_templates: prepare::<LogDetector>(cfg, node).await?,
                subscription: prepare::<Inbound>(cfg, node).await?,
                // In-process, only live capture names processes.
                baseline: match cfg.baseline.enabled
                    && (role == Role::Compute || cfg.syscall_source.kind == SourceKind::Ebpf)
                {
                    true => Some(prepare::<BaselineActor>(cfg, node).await?),
                    false => None,
                },
                rules: match role == Role::Compute || cfg.syscall_source.kind == SourceKind::Ebpf {
                    true => {
                        Some(prepare::<RuleJudge>(cfg, node).await?).filter(|r| !r.0.is_empty())
                    }
                    false => None,
                },
            }),
            false => None,
        };
        let outbound = prepare::<Outbound>(cfg, node).await?;
        let collector = match role.collects() {
            true => Some(CollectorParts {
                commands: match role {
                    Role::Collector => Some(prepare::<CommandExecutor>(cfg, node).await?),
                    _ => None,
                },
                flow_merge: prepare::<FlowMerge>(cfg, node).await?,
                packets: prepare::<PacketSource>(cfg, node).await?,
                logs: match cfg.log_source.is_empty() {
                    true => None,
                    false => Some(prepare::<LogSource>(cfg, node).await?),
                },
                syscalls: match cfg.syscall_source.kind {
                    SourceKind::None => None,
                    _ => Some(prepare::<SyscallSource>(cfg, node).await?),
                },
            }),
            false => None,
        };
        Ok(Prepared {
            metrics,
            console,
            compute,
            outbound,
            collector,
        })
    }
}

/// The compute side's actors.
struct ComputeSide {
    alert: Addr<AlertActor>,
    classifier: Addr<SyscallClassifier>,
    arbiter: Arbiter,
    flow_classifier: Addr<FlowClassifier>,
    log_detector: Addr<LogDetector>,
    buffer: Addr<SyscallBuffer>,
    monitor: Addr<HeartbeatMonitor>,
    inbound: Addr<Inbound>,
    baseline: Option<Addr<BaselineActor>>,
    rules: Option<Addr<RuleJudge>>,
}

/// The collector side's actors.
struct CollectorSide {
    command: Option<Addr<CommandExecutor>>,
    flow_merge: Option<Addr<FlowMerge>>,
    packet_source: Option<Addr<PacketSource>>,
    log_source: Option<Addr<LogSource>>,
    batcher: Addr<SyscallBatcher>,
    source: Option<Addr<SyscallSource>>,
}

/// A running node: its actors' addresses (for tests) and what shutdown needs.
pub struct Node {
    pub info: NodeInfo,
    pub source: Option<Addr<SyscallSource>>,
    pub batcher: Option<Addr<SyscallBatcher>>,
    pub packet_source: Option<Addr<PacketSource>>,
    pub flow_merge: Option<Addr<FlowMerge>>,
    pub log_source: Option<Addr<LogSource>>,
    pub command: Option<Addr<CommandExecutor>>,
    pub outbound: Addr<Outbound>,
    pub heartbeat: Addr<HeartbeatActor>,
    pub metrics: Addr<MetricsEndpoint>,
    pub console: Addr<ConsoleServer>,
    pub inbound: Option<Addr<Inbound>>,
    pub buffer: Option<Addr<SyscallBuffer>>,
    pub classifier: Option<Addr<SyscallClassifier>>,
    pub flow_classifier: Option<Addr<FlowClassifier>>,
    pub log_detector: Option<Addr<LogDetector>>,
    pub monitor: Option<Addr<HeartbeatMonitor>>,
    pub alert: Option<Addr<AlertActor>>,
    pub baseline: Option<Addr<BaselineActor>>,
    pub rules: Option<Addr<RuleJudge>>,
    deadline: Duration,
    /// The actors in drain order.
    drain_order: Vec<(&'static str, Recipient<Drain>)>,
    /// What the deadline abandons: messages the broker has not confirmed,
    /// alerts the remote sinks hold.
    unconfirmed: Option<Arc<NatsQueue>>,
    /// Durable batches this node took: acknowledged before it exits.
    acks: Option<Arc<Acks>>,
    backlogs: Vec<Backlog>,
    classifier_arbiter: Option<Arbiter>,
}

/// Wiring helpers: one named, counted edge to an actor's mailbox.
struct Wiring<'a> {
    cfg: &'a Config,
    node: &'a NodeInfo,
}

impl Wiring<'_> {
    fn edge<M, A>(&self, name: &str, to: &Addr<A>, overflow: Overflow) -> Edge<M>
    where
        M: Message + Send + 'static,
        M::Result: Send,
        A: Actor + Handler<M>,
        A::Context: ToEnvelope<A, M>,
    {
        Edge::new(name, to.clone().recipient(), overflow, &self.node.metrics)
    }

    /// inbound → buffer → classifier (own thread) → alert, inbound →
    /// flow_classifier → alert, inbound → heartbeat_monitor.
    fn compute_side(&self, parts: ComputeParts, outbound: Option<&Addr<Outbound>>) -> ComputeSide {
        let (cfg, node) = (self.cfg, self.node);
        let commands = outbound
            .filter(|_| node.role == Role::Compute)
            .map(|o| self.edge("commands_out", o, cfg.outbound.mailbox.overflow));
        let alert = launch::<AlertActor>(cfg, node, parts.sinks, commands);
        let to_alert = cfg.alert.mailbox.overflow;
        let (vocab, window) = (
            parts.syscall_model.vocab.clone(),
            parts.syscall_model.meta.window,
        );
        let arbiter = Arbiter::new();
        let classifier = launch_in::<SyscallClassifier>(
            &arbiter.handle(),
            cfg,
            node,
            parts.syscall_model,
            self.edge("alert", &alert, to_alert),
        );
        let flow_classifier = launch::<FlowClassifier>(
            cfg,
            node,
            parts.flow_model,
            self.edge("alert_flows", &alert, to_alert),
        );
        let buffer = launch::<SyscallBuffer>(
            cfg,
            node,
            (),
            BufferLinks {
                vocab,
                window,
                to_classifier: self.edge(
                    "syscall_classifier",
                    &classifier,
                    cfg.syscall_classifier.mailbox.overflow,
                ),
            },
        );
        let log_detector = launch::<LogDetector>(
            cfg,
            node,
            parts.log_templates,
            self.edge("alert_logs", &alert, to_alert),
        );
        let monitor = launch::<HeartbeatMonitor>(cfg, node, (), ());
        let baseline = parts.baseline.map(|store| {
            launch::<BaselineActor>(
                cfg,
                node,
                store,
                self.edge("alert_baseline", &alert, to_alert),
            )
        });
        let rules = parts.rules.map(|set| {
            launch::<RuleJudge>(cfg, node, set, self.edge("alert_rules", &alert, to_alert))
        });
        let dispatch = Dispatch {
            rules: rules
                .as_ref()
                .map(|r| self.edge("rules", r, cfg.rules.mailbox.overflow)),
            baseline: baseline
                .as_ref()
                .map(|b| self.edge("baseline", b, cfg.baseline.mailbox.overflow)),
            score_live: cfg.syscall_classifier.judges_live(),
            syscalls: Some(self.edge(
                "syscall_buffer",
                &buffer,
                cfg.syscall_buffer.mailbox.overflow,
            )),
            flows: Some(self.edge(
                "flow_classifier",
                &flow_classifier,
                cfg.flow_classifier.mailbox.overflow,
            )),
            logs: Some(self.edge(
                "log_detector",
                &log_detector,
                cfg.log_detector.mailbox.overflow,
            )),
            heartbeats: Some(self.edge("heartbeat_monitor", &monitor, Overflow::DropNewest)),
            outcomes: Some(self.edge("alert_outcomes", &alert, to_alert)),
        };
        let inbound = launch::<Inbound>(cfg, node, parts.subscription, dispatch);
        ComputeSide {
            alert,
            classifier,
            arbiter,
            flow_classifier,
            log_detector,
            buffer,
            monitor,
            inbound,
            baseline,
            rules,
        }
    }

    /// Capture → batcher → outbound, libpcap → flow_merge → outbound, and
    /// (NATS collectors) commands → executor → outbound. Capture starts last.
    fn collector_side(&self, parts: CollectorParts, outbound: &Addr<Outbound>) -> CollectorSide {
        let (cfg, node) = (self.cfg, self.node);
        let to_outbound = cfg.outbound.mailbox.overflow;
        let command = parts.commands.map(|input| {
            launch::<CommandExecutor>(
                cfg,
                node,
                input,
                self.edge("outcomes_out", outbound, to_outbound),
            )
        });
        let (mut flow_merge, mut packet_source) = (None, None);
        if let Some(reader) = parts.packets {
            let fm = launch::<FlowMerge>(
                cfg,
                node,
                parts.flow_merge,
                self.edge("outbound_flows", outbound, to_outbound),
            );
            packet_source = Some(launch::<PacketSource>(
                cfg,
                node,
                Some(reader),
                self.edge("flow_merge", &fm, cfg.flow_merge.mailbox.overflow),
            ));
            flow_merge = Some(fm);
        }
        let log_source = parts.logs.map(|open| {
            launch::<LogSource>(
                cfg,
                node,
                open,
                self.edge("outbound_logs", outbound, to_outbound),
            )
        });
        let batcher =
            launch::<SyscallBatcher>(cfg, node, (), self.edge("outbound", outbound, to_outbound));
        let source = parts.syscalls.map(|input| {
            launch::<SyscallSource>(
                cfg,
                node,
                input,
                self.edge(
                    "syscall_batcher",
                    &batcher,
                    cfg.syscall_batcher.mailbox.overflow,
                ),
            )
        });
        CollectorSide {
            command,
            flow_merge,
            packet_source,
            log_source,
            batcher,
            source,
        }
    }
}

impl Node {
    /// Starts every actor of `cfg.node.role`. Must run inside an actix system.
    pub async fn start(cfg: Config, metrics: Metrics) -> Result<Node, StartError> {
        let console = (cfg.console.listen.is_some() && cfg.node.role.computes()).then(|| {
            Arc::new(ConsoleState::new(
                cfg.console.keep,
                metrics.counter("console.evicted"),
            ))
        });
        let info = NodeInfo {
            id: cfg.node.id.clone(),
            host: cfg.node.host.clone(),
            role: cfg.node.role,
            metrics,
            started: Instant::now(),
            console,
        };
        // 1. Everything that can fail, before any actor exists.
        let mut p = Prepared::for_role(&cfg, &info).await?;
        let backlogs: Vec<Backlog> = p
            .compute
            .iter()
            .flat_map(|c| c.sinks.iter().filter_map(|s| s.backlog()))
            .collect();
        let unconfirmed = p.outbound.as_ref().map(|r| r.queue.clone());
        let acks = p
            .compute
            .as_ref()
            .and_then(|c| c.subscription.as_ref())
            .and_then(|s| s.acks());

        // 2. The actors, downstream first; nothing here can fail.
        let w = Wiring {
            cfg: &cfg,
            node: &info,
        };
        // Over NATS the outbound actor needs nothing local, and the compute
        // side sends its response commands through it; in-process it
        // delivers to the local inbound actor, so it starts after it.
        let nats_outbound = p
            .outbound
            .take()
            .map(|route| launch::<Outbound>(&cfg, &info, Some(route), None));
        let compute = p
            .compute
            .map(|parts| w.compute_side(parts, nats_outbound.as_ref()));
        let outbound = match (nats_outbound, &compute) {
            (Some(o), _) => o,
            (None, Some(c)) => {
                let local = w.edge("inbound", &c.inbound, cfg.inbound.mailbox.overflow);
                launch::<Outbound>(&cfg, &info, None, Some(local))
            }
            (None, None) => unreachable!("a role without compute uses NATS"),
        };
        let heartbeat = launch::<HeartbeatActor>(
            &cfg,
            &info,
            (),
            w.edge("heartbeat_out", &outbound, Overflow::DropNewest),
        );
        let metrics = launch::<MetricsEndpoint>(&cfg, &info, p.metrics.take(), ());
        let console = launch::<ConsoleServer>(&cfg, &info, p.console.take(), ());
        let collector = p.collector.map(|parts| w.collector_side(parts, &outbound));
        tracing::info!(node = %info.id, host = %info.host, role = %info.role, "node running");

        let mut node = Node {
            info,
            source: None,
            batcher: None,
            packet_source: None,
            flow_merge: None,
            log_source: None,
            command: None,
            outbound,
            heartbeat,
            metrics,
            console,
            inbound: None,
            buffer: None,
            classifier: None,
            flow_classifier: None,
            log_detector: None,
            monitor: None,
            alert: None,
            baseline: None,
            rules: None,
            deadline: cfg.node.shutdown_deadline,
            drain_order: Vec::new(),
            unconfirmed,
            acks,
            backlogs,
            classifier_arbiter: None,
        };
        if let Some(c) = collector {
            node.command = c.command;
            node.source = c.source;
            node.packet_source = c.packet_source;
            node.batcher = Some(c.batcher);
            node.flow_merge = c.flow_merge;
            node.log_source = c.log_source;
        }
        if let Some(c) = compute {
            node.inbound = Some(c.inbound);
            node.buffer = Some(c.buffer);
            node.classifier = Some(c.classifier);
            node.flow_classifier = Some(c.flow_classifier);
            node.log_detector = Some(c.log_detector);
            node.monitor = Some(c.monitor);
            node.alert = Some(c.alert);
            node.baseline = c.baseline;
            node.rules = c.rules;
            node.classifier_arbiter = Some(c.arbiter);
        }
        node.drain_order = node.drain_order();
        Ok(node)
    }

    /// Pipeline order: commands stop being taken, capture stops, each stage
    /// hands on what it holds, the broker confirms, the compute side
    /// finishes, the alert sinks deliver.
    fn drain_order(&self) -> Vec<(&'static str, Recipient<Drain>)> {
        fn entry<A>(a: &Option<Addr<A>>) -> Option<(&'static str, Recipient<Drain>)>
        where
            A: NodeActor,
        {
            a.as_ref().map(|a| (A::NAME, a.clone().recipient()))
        }
        [
            entry(&self.command),
            entry(&self.source),
            entry(&self.packet_source),
            entry(&self.log_source),
            entry(&self.batcher),
            entry(&self.flow_merge),
            entry(&Some(self.heartbeat.clone())),
            entry(&Some(self.outbound.clone())),
            entry(&self.inbound),
            entry(&self.buffer),
            entry(&self.classifier),
            entry(&self.flow_classifier),
            entry(&self.log_detector),
            entry(&self.baseline),
            entry(&self.rules),
            entry(&self.monitor),
            entry(&self.alert),
            entry(&Some(self.console.clone())),
            entry(&Some(self.metrics.clone())),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    /// Graceful stop within `node.shutdown_deadline`: one [`Drain`] per
    /// actor, in pipeline order. Returns false when the deadline cut the
    /// drain short; what was left is then counted as dropped.
    pub async fn shutdown(self) -> bool {
        let until = tokio::time::Instant::now() + self.deadline;
        let mut drained = true;
        for (actor, to) in &self.drain_order {
            match tokio::time::timeout_at(until, to.send(Drain)).await {
                Ok(_) => tracing::debug!(actor, "drained"),
                Err(_) => {
                    tracing::warn!(
                        actor,
                        deadline_ms = self.deadline.as_millis() as u64,
                        "shutdown deadline passed; exiting anyway"
                    );
                    drained = false;
                    break;
                }
            }
        }
        // The compute side finished: its batches are acknowledged (those
        // not acknowledged by the deadline are delivered again, elsewhere).
        if let Some(acks) = self.acks.as_ref().filter(|_| drained) {
            if tokio::time::timeout_at(until, acks.settled())
                .await
                .is_err()
            {
                tracing::warn!("shutdown deadline passed before every batch was acknowledged; the broker delivers them again");
                drained = false;
            }
        }
        if !drained {
            // Alerts the remote sinks still hold are lost now, and so are
            // the messages the broker has not confirmed (queued, or sent
            // without an acknowledgement).
            for b in &self.backlogs {
                b.abandon();
            }
            let unsent = self.unconfirmed.as_ref().map_or(0, |q| q.abandon());
            if unsent > 0 {
                tracing::error!(
                    messages = unsent,
                    "messages not confirmed by the broker before exit"
                );
            }
        }
        if let Some(arb) = &self.classifier_arbiter {
            arb.stop();
        }
        let counters = self.info.metrics.counters();
        tracing::info!(
            drained,
            counters = %serde_json::to_string(&counters).unwrap_or_default(),
            "node stopped"
        );
        drained
    }
}
