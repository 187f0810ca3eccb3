//! Turns scores into alerts and writes them to the sinks.
//!
//! - [`scoring`]: per-process decisions on syscall scores;
//! - [`network`]: an alert per malicious flow;
//! - [`correlation`]: a process with both kinds of alert becomes an incident;
//! - [`folding`]: repeats within `cooldown` are counted into the first
//!   alert (`alert.folded`) and sent again as an update when it ends
//!   (`alert.updates`);
//! - response routing: a matching `[alert.response]` rule acts here (role
//!   `both`) or becomes a command to the collector of the alert's host
//!   (role `compute`), whose outcome comes back as a [`RemoteOutcome`];
//! - [`sinks`]: where alerts go.

pub mod correlation;
pub mod folding;
pub mod network;
pub mod scoring;
pub mod sinks;
pub mod trees;

use crate::actors::network::flow_classifier::FlowDetections;
use crate::actors::runtime::receipt::Receipt;
use crate::response;
use correlation::Correlator;
use folding::Folds;
use scoring::ProcessScores;
use sinks::{jetstream, webhook, Sink};
use trees::{Outcome, Trees};

use crate::actors::runtime::mailbox::Edge;
use crate::actors::runtime::mailbox::MailboxConfig;
use crate::actors::runtime::supervision::Restarts;
use crate::actors::runtime::{now_ns, Drain, NodeInfo};
use crate::actors::runtime::{on_start, NodeActor};
use crate::actors::syscall::classifier::Scored;
use crate::actors::transport::Publish;
use crate::config::validate::{ConfigError, Validate};
use crate::messages::Role;
use crate::messages::{Alert, AlertModule, Command, Payload, ProcessInfo};
use crate::metrics::Counter;
use actix::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// The log target of alert records (`alert`, `alert repeated`): left out
/// of text logs when the console sink prints the alerts
/// (`crate::commands::init_node_logging`).
pub const RECORD_TARGET: &str = "daisi_alert";

/// `[alert]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AlertConfig {
    /// Windows per process the score is computed over; a live process is
    /// judged each time this many new windows have passed.
    pub horizon: usize,
    /// Repeats for the same entity within this time are folded; an
    /// incident quiet this long closes.
    #[serde(with = "humantime_serde")]
    pub cooldown: Duration,
    /// An incident's news (a process, a rule or a severity it did not
    /// have) goes out as an update within this, at most once per this per
    /// incident.
    #[serde(with = "humantime_serde")]
    pub update_after: Duration,
    /// An incident open this long closes at its next finding; a new one
    /// opens and names it in `related`.
    #[serde(with = "humantime_serde")]
    pub incident_max_span: Duration,
    /// Processes tracked at once (least recently seen forgotten first, counted).
    pub max_processes: usize,
    /// Print alerts on standard output.
    pub console: bool,
    /// Append alerts as JSON lines to this file.
    pub jsonl: Option<PathBuf>,
    /// Rotate the file when it would grow past this many bytes (0 = never).
    pub jsonl_max_bytes: u64,
    /// Rotated files kept (`FILE.1` newest … `FILE.<n>` oldest).
    pub jsonl_keep: usize,
    /// Alerts a remote sink's receiver refused for good, one JSON line
    /// each with the reason (default: `<jsonl>.dead` when `jsonl` is set,
    /// else they are logged in full).
    pub dead_letters: Option<PathBuf>,
    pub jetstream: jetstream::JetStreamConfig,
    pub webhook: webhook::WebhookConfig,
    /// Opt-in response actions (off by default).
    pub response: response::ResponseConfig,
    pub mailbox: MailboxConfig,
}

impl Default for AlertConfig {
    fn default() -> Self {
        Self {
            horizon: 2000,
            cooldown: Duration::from_secs(60),
            update_after: Duration::from_secs(2),
            incident_max_span: Duration::from_secs(3600),
            max_processes: 16_384,
            console: true,
            jsonl: None,
            jsonl_max_bytes: 64 << 20,
            jsonl_keep: 5,
            dead_letters: None,
            jetstream: Default::default(),
            webhook: Default::default(),
            response: Default::default(),
            mailbox: MailboxConfig::default(),
        }
    }
}

impl Validate for AlertConfig {
    fn validate(&self, path: &str, errors: &mut Vec<ConfigError>) {
        crate::config::validate::at_least_one(
            path,
            &[
                ("horizon", self.horizon),
                ("max_processes", self.max_processes),
            ],
            errors,
        );
        if self.incident_max_span.is_zero() {
            errors.push(ConfigError::new(
                format!("{path}.incident_max_span"),
                "must be above 0",
            ));
        }
        if let Some(p) = &self.jsonl {
            let dir = p.parent().filter(|d| !d.as_os_str().is_empty());
            if dir.is_some_and(|d| !d.is_dir()) {
                errors.push(ConfigError::new(
                    format!("{path}.jsonl"),
                    format!("directory of {} does not exist", p.display()),
                ));
            }
        }
        self.response.validate(&format!("{path}.response"), errors);
        if let Some(p) = self.webhook.problem() {
            errors.push(ConfigError::new(format!("{path}.webhook.url"), p));
        }
        self.mailbox.validate(&format!("{path}.mailbox"), errors);
    }
}

/// Alert decisions and sinks.
pub struct AlertActor {
    cfg: AlertConfig,
    node: NodeInfo,
    scores: ProcessScores,
    /// Receipts of the durable batches behind the alert being raised:
    /// remote sinks hold them until it is delivered.
    claims: Vec<Receipt>,
    folds: Folds,
    incidents: Correlator,
    trees: Trees,
    sinks: Vec<Box<dyn Sink>>,
    responder: Option<response::Responder>,
    /// Remotes this node blocked, and when (bounded).
    /// Keyed by whether the alert rested on forgeable packets: a refused
    /// block of a forged-looking source does not hold back the block of
    /// the same address for an alert it could not have forged.
    blocked: std::collections::HashMap<(std::net::IpAddr, bool), u64>,
    /// Compute role: where response commands to collectors go.
    commands: Option<Edge<Publish>>,
    seq: u64,
    restarts: Restarts,
    raised: Counter,
    folded: Counter,
    updates: Counter,
    incident_count: Counter,
    trees_opened: Counter,
    joined: Counter,
    responses: Counter,
    commands_sent: Counter,
    /// This node's interface addresses: its commands protect them.
    own_addresses: Vec<std::net::IpAddr>,
    outcomes: Counter,
    sink_errors: Counter,
}

impl AlertActor {
    /// `sinks`: from [`sinks::open`]; `commands`: where a compute node's
    /// response commands go (the outbound actor).
    pub fn new(
        cfg: AlertConfig,
        node: NodeInfo,
        sinks: Vec<Box<dyn Sink>>,
        commands: Option<Edge<Publish>>,
    ) -> Self {
        let m = &node.metrics;
        Self {
            claims: Vec::new(),
            scores: ProcessScores::new(
                cfg.horizon,
                cfg.max_processes,
                m.counter("alert.forgotten_processes"),
                m.gauge("alert.processes"),
            ),
            folds: Folds::new(cfg.cooldown),
            incidents: Correlator::new(cfg.cooldown, cfg.max_processes),
            trees: Trees::new(
                trees::Timing {
                    quiet: cfg.cooldown,
                    update_after: cfg.update_after,
                    max_span: cfg.incident_max_span,
                },
                cfg.max_processes,
            ),
            trees_opened: m.counter("alert.trees"),
            joined: m.counter("alert.joined"),
            restarts: Restarts::new(Self::NAME, m),
            raised: m.counter("alert.raised"),
            folded: m.counter("alert.folded"),
            updates: m.counter("alert.updates"),
            incident_count: m.counter("alert.incidents"),
            responses: m.counter("alert.responses"),
            commands_sent: m.counter("alert.commands_sent"),
            own_addresses: if node.role == Role::Compute {
                response::own_addresses()
            } else {
                vec![]
            },
            outcomes: m.counter("alert.response_outcomes"),
            sink_errors: m.counter("alert.sink_errors"),
            sinks,
            blocked: Default::default(),
            responder: cfg
                .response
                .enabled
                .then(|| response::Responder::new(cfg.response.clone())),
            commands,
            seq: 0,
            cfg,
            node,
        }
    }

    /// A new alert id: `<node>-<time hex>-<seq>`, with its time.
    fn next_id(&mut self) -> (String, u64) {
        self.seq += 1;
        let ts = now_ns();
        (format!("{}-{:x}-{}", self.node.id, ts, self.seq), ts)
    }

    /// Gives a detection its id, time and node, then raises it: into its
    /// process tree's incident when the collector named the process's
    /// lineage (or, for a flow, when its process is in an open tree), else
    /// alone (with the incident it completes, if any).
    fn emit(&mut self, mut alert: Alert, lineage: &[ProcessInfo]) {
        if alert.threat.is_none() {
            alert.threat = alert
                .rule
                .as_ref()
                .and_then(|r| crate::attack::of_rule(&r.name));
        }
        let (id, ts) = self.next_id();
        alert.id = id;
        alert.ts_ns = ts;
        alert.node_id = self.node.id.clone();
        if !lineage.is_empty() {
            let finding = alert.clone();
            let (host, pid) = (alert.host.clone(), lineage[0].pid);
            match self.trees.add(alert, lineage) {
                Outcome::Opened(incident) => {
                    self.trees_opened.inc();
                    self.raise(*incident);
                    // Rules about the process found still act on it.
                    self.respond(&finding);
                }
                Outcome::Joined { first } => {
                    self.joined.inc();
                    if first {
                        self.respond(&finding);
                    }
                }
            }
            // Its flow, or a log alert about its user, may have been
            // raised before the tree opened.
            if let Some(net) = self.incidents.recent_network(&host, pid) {
                self.trees.join_flow(&net);
            }
            let mut users: Vec<&str> = lineage
                .iter()
                .filter(|p| p.uid != Some(0))
                .filter_map(|p| p.user_name.as_deref())
                .collect();
            users.dedup();
            for user in users {
                if let Some(log) = self.incidents.recent_log_of_user(&host, user) {
                    self.trees.join_log(&log);
                }
            }
            return;
        }
        // A flow or a log alert is remembered (for a tree that opens later)
        // either way.
        let incident = self.incidents.correlate(&alert);
        let joined = match alert.module {
            AlertModule::Network => self.trees.join_flow(&alert),
            AlertModule::Log => self.trees.join_flow(&alert) || self.trees.join_log(&alert),
            _ => false,
        };
        if joined {
            self.joined.inc();
            return;
        }
        self.raise(alert);
        if let Some(mut i) = incident {
            let (id, ts) = self.next_id();
            i.id = id;
            i.ts_ns = ts;
            i.node_id = self.node.id.clone();
            self.incident_count.inc();
            self.raise(i);
        }
    }

    /// Response rules act on new alerts (not on folded repeats): here in
    /// the `both` role, else by a command to the collector of the alert's
    /// host, whose outcome comes back as a [`RemoteOutcome`].
    /// True when a rule matched.
    fn respond(&mut self, alert: &Alert) -> bool {
        if self.responder.is_none() {
            return false;
        }
        // One block per remote at a time: a flow alert and the per-source
        // alert about the same scanner, or two of its flows, block it once.
        let block = self.responder.as_ref().and_then(|r| {
            (r.rule_for(alert) == Some(response::Action::Block))
                .then(|| response::remote_of(alert))
                .flatten()
                .map(|addr| {
                    (
                        (addr, r.refuses_as_forged(alert)),
                        r.config().block_for.as_nanos() as u64,
                    )
                })
        });
        if let Some((addr, block_for)) = block {
            let now = now_ns();
            if self
                .blocked
                .get(&addr)
                .is_some_and(|&at| now < at.saturating_add(block_for))
            {
                return false;
            }
            if self.blocked.len() >= 65_536 {
                self.blocked
                    .retain(|_, at| now < at.saturating_add(block_for));
            }
            self.blocked.insert(addr, now);
        }
        let (id, ts) = self.next_id();
        let Some(r) = self.responder.as_mut() else {
            return false;
        };
        if self.node.role != Role::Compute {
            let Some(outcome) = r.respond(alert, id, ts) else {
                return false;
            };
            self.responses.inc();
            self.write(&outcome);
            return true;
        }
        let Some(action) = r.rule_for(alert) else {
            return false;
        };
        let command = Command {
            id,
            target_host: alert.host.clone(),
            action,
            dry_run: r.config().dry_run,
            block_for_s: r.config().block_for.as_secs().max(1),
            alert: alert.clone(),
            protect: self.own_addresses.iter().map(|a| a.to_string()).collect(),
        };
        let Some(edge) = self.commands.clone() else {
            let text = "no route to collectors (the node has no outbound connection)";
            let o = response::outcome(
                alert,
                action,
                Err(text.into()),
                command.id,
                ts,
                &self.node.id,
            );
            self.write(&o);
            return true;
        };
        self.commands_sent.inc();
        tracing::info!(alert_id = %alert.id, command_id = %command.id, host = %alert.host, action = action.name(), "response command sent");
        actix::spawn(async move {
            let _ = edge.push(Publish(Payload::Command(command))).await;
        });
        true
    }

    /// Raises an alert, or folds it into the open one for its entity.
    fn raise(&mut self, mut alert: Alert) {
        self.sweep(false);
        let block_for = self.responder.as_ref().map(|r| r.config().block_for);
        let rule = self.responder.as_ref().and_then(|r| r.rule_for(&alert));
        if let Some(f) = self.folds.repeat(&alert) {
            self.folded.inc();
            // A block has lapsed and the remote attacks again: block it
            // again (the repeat itself stays folded). Only traffic that
            // began after the block lapsed counts: attempts made while it
            // held were dropped and are no new evidence (else the block
            // would renew itself for as long as the remote retries).
            let lapsed = rule == Some(response::Action::Block)
                && f.responded_ns
                    .zip(block_for)
                    .is_some_and(|(t, b)| began_ns(&alert) >= t + b.as_nanos() as u64);
            if lapsed {
                f.responded_ns = Some(now_ns());
                // Name the alert the sinks hold (the repeat has no line).
                let folded = f.alert.clone();
                self.respond(&folded);
            }
            return;
        }
        alert.first_seen_ns = alert.ts_ns;
        alert.last_seen_ns = alert.ts_ns;
        self.raised.inc();
        tracing::warn!(
            target: "daisi_alert",
            alert_id = %alert.id,
            host = %alert.host,
            module = %alert.module,
            entity = %sinks::console::printable(&alert.entity),
            severity = ?alert.severity,
            score = alert.score,
            threshold = alert.threshold,
            latency_ms = alert.observed_ns.map(|o| alert.ts_ns.saturating_sub(o) / 1_000_000),
            "alert"
        );
        self.write(&alert);
        let responded = self.respond(&alert).then(now_ns);
        self.folds.open(alert, responded);
    }

    /// Ends the fold windows whose cooldown is over (all of them with
    /// `all`), sending an update for each that folded repeats, and writes
    /// the incidents' updates that are due.
    fn sweep(&mut self, all: bool) {
        let grown = self.trees.due(all);
        for a in self.folds.ended(all).into_iter().chain(grown) {
            self.updates.inc();
            tracing::warn!(target: "daisi_alert", alert_id = %a.id, entity = %sinks::console::printable(&a.entity), count = a.count, "alert repeated");
            self.write(&a);
        }
    }

    fn write(&mut self, alert: &Alert) {
        for sink in &mut self.sinks {
            if let Err(e) = sink.send_claimed(alert, &self.claims) {
                self.sink_errors.inc();
                tracing::error!(sink = sink.name(), alert_id = %alert.id, error = %e, "alert not written to this sink (the others have it)");
            }
        }
    }
}

impl NodeActor for AlertActor {
    const NAME: &'static str = "alert";
    type Config = AlertConfig;
    /// The open sinks.
    type Prepared = Vec<Box<dyn Sink>>;
    /// Compute role: the outbound actor, for response commands.
    type Links = Option<Edge<Publish>>;
    type Error = sinks::OpenError;

    fn section(cfg: &crate::config::Config) -> &AlertConfig {
        &cfg.alert
    }
    async fn prepare(
        cfg: &crate::config::Config,
        node: &NodeInfo,
    ) -> Result<Vec<Box<dyn Sink>>, sinks::OpenError> {
        sinks::open(cfg, node).await
    }
    fn create(
        cfg: AlertConfig,
        node: &NodeInfo,
        sinks: Vec<Box<dyn Sink>>,
        commands: Option<Edge<Publish>>,
    ) -> Self {
        Self::new(cfg, node.clone(), sinks, commands)
    }
    fn mailbox_capacity(&self) -> usize {
        self.cfg.mailbox.capacity
    }
}

crate::supervised!(AlertActor);

impl Actor for AlertActor {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Context<Self>) {
        on_start(self, ctx);
        // Fold windows end on time even when no new alert comes.
        ctx.run_interval(Duration::from_secs(1), |a, _| {
            a.sweep(false);
            a.scores.release_due(std::time::Instant::now());
        });
    }
}

/// Syscall scores: each process's windows go to its rolling score.
impl Handler<Scored> for AlertActor {
    type Result = ();
    fn handle(&mut self, msg: Scored, _: &mut Context<Self>) {
        let w = msg.windows.window;
        let mut at = 0usize;
        for seg in &msg.windows.segments {
            let scores = &msg.scores[at..at + seg.windows];
            let tokens = &msg.windows.tokens[at * w..(at + seg.windows) * w];
            at += seg.windows;
            if let Some((a, lineage, claims)) = self
                .scores
                .add(seg, scores, tokens, w, &msg.model, &msg.vocab)
            {
                self.claims = claims;
                self.emit(a, &lineage);
                self.claims.clear();
            }
        }
    }
}

/// Baseline findings: into their process tree's incident.
impl Handler<crate::actors::syscall::baseline::BaselineFindings> for AlertActor {
    type Result = ();
    fn handle(
        &mut self,
        msg: crate::actors::syscall::baseline::BaselineFindings,
        _: &mut Context<Self>,
    ) {
        for (alert, lineage) in msg.0 {
            self.emit(alert, &lineage);
        }
    }
}

/// Network detections: an alert per malicious flow the classifier hands
/// over (repeats between the same two addresses fold within `cooldown`)
/// and per source pattern.
impl Handler<FlowDetections> for AlertActor {
    type Result = ();
    fn handle(&mut self, msg: FlowDetections, _: &mut Context<Self>) {
        for d in &msg.detections {
            let a = network::flow_alert(&msg.host, d, msg.threshold, &msg.model);
            self.claims.extend(msg.receipt.clone());
            self.emit(a, &[]);
            self.claims.clear();
        }
        for p in &msg.patterns {
            let a = network::pattern_alert(&msg.host, p);
            self.claims.extend(msg.receipt.clone());
            self.emit(a, &[]);
            self.claims.clear();
        }
        crate::actors::runtime::receipt::all_done([&msg.receipt]);
    }
}

/// Log detections: alerts as they are (folded per subject and rule),
/// joined to incidents by address and process.
impl Handler<crate::actors::logs::detector::LogAlerts> for AlertActor {
    type Result = ();
    fn handle(&mut self, msg: crate::actors::logs::detector::LogAlerts, _: &mut Context<Self>) {
        for a in msg.alerts {
            self.claims.extend(msg.receipt.clone());
            self.emit(a, &[]);
            self.claims.clear();
        }
        crate::actors::runtime::receipt::all_done([&msg.receipt]);
    }
}

/// What a collector did about one of this node's commands: to the sinks.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct RemoteOutcome(pub Alert);

impl Handler<RemoteOutcome> for AlertActor {
    type Result = ();
    fn handle(&mut self, RemoteOutcome(a): RemoteOutcome, _: &mut Context<Self>) {
        if a.module != AlertModule::Response {
            tracing::warn!(alert_id = %a.id, module = %a.module, "outcome that is not a response; ignored");
            return;
        }
        self.outcomes.inc();
        self.responses.inc();
        self.write(&a);
    }
}

/// Ends every fold window (no folded count is lost), gives the durable
/// batches of processes not yet judged back to the broker, syncs the file
/// and replies once the remote sinks delivered what they were handed (the
/// node's deadline bounds the wait).
impl Handler<Drain> for AlertActor {
    type Result = crate::actors::runtime::DrainReply<Self>;
    fn handle(&mut self, _: Drain, _: &mut Context<Self>) -> Self::Result {
        self.sweep(true);
        self.scores.give_back();
        for sink in &mut self.sinks {
            sink.sync();
        }
        let backlogs: Vec<_> = self.sinks.iter().filter_map(|s| s.backlog()).collect();
        AtomicResponse::new(Box::pin(
            async move {
                for b in backlogs {
                    b.emptied().await;
                }
            }
            .into_actor(self),
        ))
    }
}

/// When the traffic or activity behind an alert began (wall clock, ns):
/// a flow's first packet, else the alert's own time.
fn began_ns(a: &Alert) -> u64 {
    match (a.observed_ns, &a.flow) {
        (Some(last), Some(f)) => last.saturating_sub(f.duration_ns),
        _ => a.ts_ns,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actors::network::flow_classifier::FlowDetection;
    use crate::messages::{FlowRecord, Severity};
    use crate::metrics::Metrics;
    use std::time::Instant;

    fn detection(port: u16) -> FlowDetection {
        flow_at(port, 1, 2)
    }

    fn flow_at(port: u16, first_ns: u64, last_ns: u64) -> FlowDetection {
        FlowDetection {
            flow: FlowRecord {
                src: "10.0.0.66".into(),
                dst: "10.0.0.10".into(),
                src_port: 40000,
                dst_port: port,
                proto: 6,
                first_ns,
                last_ns,
                features: [("flowDuration".to_string(), (last_ns - first_ns) as f64)].into(),
                end: crate::messages::FlowEnd::Rst,
                pid: None,
                exe: None,
                app: None,
            },
            score: 0.9,
            top: vec![],
        }
    }

    fn actor(metrics: &Metrics, cfg: AlertConfig) -> AlertActor {
        let node = NodeInfo {
            id: "n1".into(),
            host: "h".into(),
            role: crate::messages::Role::Both,
            metrics: metrics.clone(),
            started: Instant::now(),
            console: None,
        };
        let sinks = sinks::open_local(&cfg, metrics).unwrap();
        AlertActor::new(cfg, node, sinks, None)
    }

    /// Alerts to a JSON Lines file in a new directory, folded for an hour.
    fn to_jsonl() -> (tempfile::TempDir, AlertConfig) {
        let dir = tempfile::tempdir().unwrap();
        let cfg = AlertConfig {
            console: false,
            jsonl: Some(dir.path().join("alerts.jsonl")),
            cooldown: Duration::from_secs(3600),
            ..Default::default()
        };
        (dir, cfg)
    }

    fn written(path: &std::path::Path) -> Vec<Alert> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn process_alert(module: AlertModule, pid: u32, sev: Severity) -> Alert {
        let mut a = crate::messages::sample_alert();
        a.id = format!("{module}-{pid}");
        a.module = module;
        a.severity = sev;
        a.entity = format!("x:{pid}");
        a.process = Some(crate::messages::ProcessFields {
            pid,
            name: None,
            executable: Some("/usr/bin/victim".into()),
            ..Default::default()
        });
        a.model = format!("{module}-model");
        a
    }

    /// Syscall and network alerts of the same process make one incident,
    /// one step more severe, naming both; other processes do not.
    #[test]
    fn a_process_with_both_kinds_of_alert_is_an_incident() {
        let mut c = Correlator::new(Duration::from_secs(60), 16);
        assert!(c
            .correlate(&process_alert(AlertModule::Syscall, 7, Severity::Medium))
            .is_none());
        assert!(c
            .correlate(&process_alert(AlertModule::Network, 8, Severity::High))
            .is_none());
        let i = c
            .correlate(&process_alert(AlertModule::Network, 7, Severity::Medium))
            .expect("incident");
        assert_eq!(
            (i.module, i.pid(), i.severity),
            (AlertModule::Incident, Some(7), Severity::High)
        );
        assert_eq!(i.entity, "pid:7");
        assert_eq!(i.related, ["syscall-7", "network-7"]);
        assert!(i.summary.contains("syscall-7") && i.summary.contains("network-7"));
        assert_eq!(i.exe(), Some("/usr/bin/victim"));
    }

    /// A network and a log alert about one remote address make one
    /// incident by that address; another address's log alert does not.
    #[test]
    fn an_address_on_the_network_and_in_the_logs_is_one_incident() {
        let from = |module, ip: &str, sev| {
            let mut a = crate::messages::sample_alert();
            a.id = format!("{module}-{ip}");
            a.module = module;
            a.severity = sev;
            a.process = None;
            a.source = Some(crate::messages::Endpoint {
                ip: ip.into(),
                port: 0,
            });
            a
        };
        let mut c = Correlator::new(Duration::from_secs(60), 16);
        assert!(c
            .correlate(&from(AlertModule::Network, "10.0.0.66", Severity::Medium))
            .is_none());
        assert!(c
            .correlate(&from(AlertModule::Log, "10.0.0.67", Severity::High))
            .is_none());
        let i = c
            .correlate(&from(AlertModule::Log, "10.0.0.66", Severity::High))
            .expect("incident");
        assert_eq!(i.module, AlertModule::Incident);
        assert_eq!(i.entity, "source:10.0.0.66");
        assert_eq!(i.severity, Severity::Critical);
        assert_eq!(i.related, ["network-10.0.0.66", "log-10.0.0.66"]);
        assert!(i.summary.starts_with("10.0.0.66 was seen on the network"));
    }

    /// A log alert about a user, then a process tree of that user's
    /// processes: the log alert goes out alone at once and then joins the
    /// tree's incident; a later log alert about the user joins the open
    /// tree and does not go out alone.
    #[test]
    fn a_users_log_alert_joins_that_users_process_tree_in_either_order() {
        let (_dir, cfg) = to_jsonl();
        let path = cfg.jsonl.clone().unwrap();
        let metrics = Metrics::new();
        let log = |rule: &str| {
            let mut a = crate::messages::sample_alert();
            a.module = AlertModule::Log;
            a.entity = format!("user:nobody:{rule}");
            a.severity = Severity::Medium;
            a.process = None;
            a.source = None;
            a.summary = format!("{rule} for nobody");
            a.user = Some(crate::messages::UserFields {
                id: String::new(),
                name: Some("nobody".into()),
            });
            a
        };
        let nobody = |pid, ppid, name: &str| ProcessInfo {
            pid,
            ppid: Some(ppid),
            name: name.into(),
            uid: Some(65534),
            user_name: Some("nobody".into()),
            ..Default::default()
        };
        let lineage = [nobody(4200, 4100, "sh"), nobody(4100, 1, "python3")];
        actix::System::new().block_on(async {
            let mut a = actor(&metrics, cfg);
            a.emit(log("sudo_refused"), &[]);
            a.emit(
                process_alert(AlertModule::Syscall, 4200, Severity::Medium),
                &lineage,
            );
            a.emit(log("su_failed"), &[]);
            a.sweep(true);
        });
        let lines = written(&path);
        let modules: Vec<AlertModule> = lines.iter().map(|a| a.module).collect();
        assert_eq!(
            modules,
            [
                AlertModule::Log,
                AlertModule::Incident,
                AlertModule::Incident
            ],
            "the first log alert, the tree, its update: {lines:#?}"
        );
        let (first_log, update) = (&lines[0], &lines[2]);
        assert_eq!(update.id, lines[1].id);
        assert_eq!(update.related.len(), 3, "{:?}", update.related);
        assert!(update.related.contains(&first_log.id));
        assert_eq!(update.severity, Severity::High);
        assert!(
            update
                .summary
                .contains("; its user nobody in the logs: su_failed for nobody"),
            "{}",
            update.summary
        );
        assert_eq!(metrics.get("alert.joined"), 1, "the second log alert");
    }

    /// Every alert names the ATT&CK tactics and techniques of its rule,
    /// and an incident those of all it joins.
    #[test]
    fn alerts_and_incidents_name_their_attack_techniques() {
        let (_dir, cfg) = to_jsonl();
        let path = cfg.jsonl.clone().unwrap();
        let metrics = Metrics::new();
        let found = |pid: u32, rule: &str| {
            let mut a = process_alert(AlertModule::Baseline, pid, Severity::Medium);
            a.rule = Some(crate::messages::RuleFields {
                name: rule.into(),
                ..Default::default()
            });
            a
        };
        let p = |pid, ppid, name: &str| ProcessInfo {
            pid,
            ppid: Some(ppid),
            name: name.into(),
            ..Default::default()
        };
        let shell = [p(200, 100, "sh"), p(100, 1, "python3")];
        let cat = [p(300, 200, "cat"), p(200, 100, "sh"), p(100, 1, "python3")];
        actix::System::new().block_on(async {
            let mut a = actor(&metrics, cfg);
            a.emit(found(200, "baseline.new_child"), &shell);
            a.emit(found(300, "baseline.sensitive_read"), &cat);
            a.sweep(true);
        });
        let lines = written(&path);
        let last = lines.last().unwrap();
        let t = last.threat.as_ref().expect("the incident's ATT&CK");
        assert_eq!(t.technique.id, ["T1059", "T1003.008"]);
        assert_eq!(t.tactic.name, ["execution", "credential-access"]);
        let first = &lines[0];
        assert_eq!(first.threat.as_ref().unwrap().technique.id, ["T1059"]);
    }

    /// A flood of identical detections: one alert at once, then one update
    /// with the same id and the full count; nothing dropped.
    #[test]
    fn a_flood_of_detections_folds_into_one_alert_with_its_count() {
        let (_dir, cfg) = to_jsonl();
        let path = cfg.jsonl.clone().unwrap();
        let metrics = Metrics::new();
        actix::System::new().block_on(async {
            let a = actor(&metrics, cfg).start();
            for chunk in 0..10 {
                let msg = FlowDetections {
                    host: "h".into(),
                    detections: (0..100).map(|i| detection(chunk * 100 + i)).collect(),
                    patterns: vec![],
                    threshold: 0.5,
                    model: "m".into(),
                    receipt: None,
                };
                a.send(msg).await.unwrap();
            }
            a.send(Drain).await.unwrap();
        });
        let lines = written(&path);
        assert_eq!(lines.len(), 2, "{lines:#?}");
        assert_eq!((lines[0].count, lines[1].count), (1, 1000));
        assert_eq!(lines[0].id, lines[1].id);
        assert!(lines[1].last_seen_ns >= lines[1].first_seen_ns);
        assert_eq!(lines[1].first_seen_ns, lines[0].ts_ns);
        assert_eq!(metrics.get("alert.raised"), 1);
        assert_eq!(metrics.get("alert.folded"), 999);
        assert_eq!(metrics.get("alert.updates"), 1);
    }

    /// A remote that attacks again after its block lapsed is blocked
    /// again, although its detections stay folded into one alert; traffic
    /// that began while the block held (dropped attempts, reported late)
    /// does not renew it.
    #[test]
    fn a_lapsed_block_is_renewed_for_a_folded_repeat() {
        let metrics = Metrics::new();
        let cfg = AlertConfig {
            console: false,
            cooldown: Duration::from_secs(3600),
            response: response::ResponseConfig {
                enabled: true,
                dry_run: true,
                block_for: Duration::from_millis(300),
                rules: vec![response::Rule {
                    module: AlertModule::Network,
                    min_severity: Severity::Medium,
                    action: response::Action::Block,
                    spoofable: false,
                }],
                ..Default::default()
            },
            ..Default::default()
        };
        actix::System::new().block_on(async {
            let a = actor(&metrics, cfg).start();
            // A flow of `ms` milliseconds that ended just now.
            let one = |port, ms: u64| {
                let now = now_ns();
                FlowDetections {
                    host: "h".into(),
                    detections: vec![flow_at(port, now - ms * 1_000_000, now)],
                    patterns: vec![],
                    threshold: 0.5,
                    model: "m".into(),
                    receipt: None,
                }
            };
            a.send(one(1, 0)).await.unwrap();
            a.send(one(2, 0)).await.unwrap(); // block still on: nothing new
            assert_eq!(metrics.get("alert.responses"), 1);
            tokio::time::sleep(Duration::from_millis(350)).await;
            // Lapsed, but this flow began while the block held.
            a.send(one(3, 200)).await.unwrap();
            assert_eq!(metrics.get("alert.responses"), 1);
            a.send(one(4, 0)).await.unwrap(); // new traffic: block again
            a.send(one(5, 0)).await.unwrap();
            a.send(Drain).await.unwrap();
        });
        assert_eq!(metrics.get("alert.raised"), 1);
        assert_eq!(metrics.get("alert.folded"), 4);
        assert_eq!(metrics.get("alert.responses"), 2);
    }
}
