//! Turns scores into alerts, per process and per flow, and writes them to
//! the sinks.
//!
//! A process's score is the mean window score over its last `horizon`
//! windows: the same window-to-trace aggregation `daisi eval syscall`
//! measures. It is decided when the process exits (over its whole life when
//! that is shorter than the horizon, exactly as evaluated), and for a
//! long-lived process each time a full horizon of new windows has passed.
//!
//! Repeats for the same entity within `cooldown` are folded, never silently
//! dropped: the first alert goes out at once; later ones are counted
//! (`alert.folded`) into it, and when the cooldown ends (or the node stops)
//! an update with the same id, the count and first/last seen goes to the
//! sinks (`alert.updates`).

use crate::actors::network::flow_classifier::FlowDetections;
pub mod sinks;
use crate::response;
use sinks::{jetstream, webhook, Sink};

use crate::actors::runtime::mailbox::Edge;
use crate::actors::runtime::mailbox::MailboxConfig;
use crate::actors::runtime::supervision::Restarts;
use crate::actors::runtime::{now_ns, Drain, NodeInfo};
use crate::actors::runtime::{on_start, NodeActor};
use crate::actors::syscall::classifier::Scored;
use crate::actors::transport::Publish;
use crate::config::Role;
use crate::config::{ConfigError, Validate};
use crate::messages::{Alert, Command, Payload, Severity};
use crate::metrics::Counter;
use actix::prelude::*;
use lru::LruCache;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// `[alert]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AlertConfig {
    /// Windows per process the score is computed over; a live process is
    /// judged each time this many new windows have passed.
    pub horizon: usize,
    /// Repeats for the same entity within this time are folded.
    #[serde(with = "humantime_serde")]
    pub cooldown: Duration,
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
            max_processes: 16_384,
            console: true,
            jsonl: None,
            jsonl_max_bytes: 64 << 20,
            jsonl_keep: 5,
            jetstream: Default::default(),
            webhook: Default::default(),
            response: Default::default(),
            mailbox: MailboxConfig::default(),
        }
    }
}

impl Validate for AlertConfig {
    fn validate(&self, path: &str, errors: &mut Vec<ConfigError>) {
        for (k, v) in [
            ("horizon", self.horizon),
            ("max_processes", self.max_processes),
        ] {
            if v == 0 {
                errors.push(ConfigError::new(
                    format!("{path}.{k}"),
                    "must be at least 1",
                ));
            }
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

/// Rolling state of one process.
struct ProcScore {
    comm: String,
    exe: Option<String>,
    recent: VecDeque<f32>,
    sum: f64,
    since_judged: usize,
    /// The highest-scoring recent window's tokens, for evidence.
    worst: Option<(f32, Vec<u32>)>,
}

/// The latest alert of each module for one process.
#[derive(Default)]
struct ProcessAlerts {
    syscall: Option<(Instant, Alert)>,
    network: Option<(Instant, Alert)>,
}

/// The first alert of an entity within its cooldown, with what was folded
/// into it.
struct Folded {
    at: Instant,
    alert: Alert,
    /// When a response rule last acted on this entity.
    responded: Option<Instant>,
}

/// Alert decisions and sinks.
pub struct AlertActor {
    cfg: AlertConfig,
    node: NodeInfo,
    procs: LruCache<(String, u32), ProcScore>,
    recent_alerts: HashMap<String, Folded>,
    /// Per (host, pid): the latest alert of each module, for incidents.
    by_process: LruCache<(String, u32), ProcessAlerts>,
    sinks: Vec<Box<dyn Sink>>,
    responder: Option<response::Responder>,
    /// Compute role: where response commands to collectors go.
    commands: Option<Edge<Publish>>,
    seq: u64,
    restarts: Restarts,
    raised: Counter,
    folded: Counter,
    updates: Counter,
    incidents: Counter,
    responses: Counter,
    commands_sent: Counter,
    outcomes: Counter,
    forgotten: Counter,
    sink_errors: Counter,
    tracked: crate::metrics::Gauge,
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
            procs: LruCache::new(NonZeroUsize::new(cfg.max_processes).unwrap_or(NonZeroUsize::MIN)),
            recent_alerts: HashMap::new(),
            by_process: LruCache::new(
                NonZeroUsize::new(cfg.max_processes).unwrap_or(NonZeroUsize::MIN),
            ),
            restarts: Restarts::new(Self::NAME, m),
            raised: m.counter("alert.raised"),
            folded: m.counter("alert.folded"),
            updates: m.counter("alert.updates"),
            incidents: m.counter("alert.incidents"),
            responses: m.counter("alert.responses"),
            forgotten: m.counter("alert.forgotten_processes"),
            sink_errors: m.counter("alert.sink_errors"),
            tracked: m.gauge("alert.processes"),
            sinks,
            responder: cfg
                .response
                .enabled
                .then(|| response::Responder::new(cfg.response.clone())),
            commands,
            commands_sent: m.counter("alert.commands_sent"),
            outcomes: m.counter("alert.response_outcomes"),
            seq: 0,
            cfg,
            node,
        }
    }

    fn judge(
        &mut self,
        key: &(String, u32),
        model: &crate::models::ModelMeta,
        vocab: &crate::syscalls::Vocabulary,
    ) -> Option<Alert> {
        let st = self.procs.get_mut(key)?;
        st.since_judged = 0;
        if st.recent.is_empty() {
            return None;
        }
        let score = st.sum / st.recent.len() as f64;
        if score <= model.threshold {
            return None;
        }
        let entity = format!("pid:{}", key.1);
        let evidence = st
            .worst
            .as_ref()
            .map(|(s, w)| {
                let names: Vec<&str> = w.iter().map(|&t| vocab.token_name(t)).collect();
                vec![format!(
                    "most anomalous window (score {s:.2}): {}",
                    names.join(" ")
                )]
            })
            .unwrap_or_default();
        let severity = if score > 3.0 * model.threshold.max(1e-9) {
            Severity::High
        } else {
            Severity::Medium
        };
        self.seq += 1;
        let mut evidence = evidence;
        evidence.insert(
            0,
            format!(
                "process {} ({}), {} recent windows, mean score {score:.3} > threshold {:.3}",
                st.comm,
                st.exe.as_deref().unwrap_or("?"),
                st.recent.len(),
                model.threshold
            ),
        );
        Some(Alert {
            id: format!("{}-{:x}-{}", self.node.id, now_ns(), self.seq),
            ts_ns: now_ns(),
            node_id: self.node.id.clone(),
            host: key.0.clone(),
            module: "syscall".into(),
            severity,
            entity,
            pid: Some(key.1),
            exe: st.exe.clone(),
            score,
            threshold: model.threshold,
            model: format!("{} {}", model.name, model.version),
            count: 1,
            evidence,
            observed_ns: None,
            first_seen_ns: 0,
            last_seen_ns: 0,
        })
    }

    /// A process with both a syscall and a network alert within the
    /// cooldown: the combined incident (severity one step up), once per
    /// process and cooldown (later ones fold into it).
    fn correlate(&mut self, a: &Alert) -> Option<Alert> {
        let pid = a.pid?;
        let now = Instant::now();
        let cooldown = self.cfg.cooldown;
        let entry = self
            .by_process
            .get_or_insert_mut((a.host.clone(), pid), ProcessAlerts::default);
        let slot = match a.module.as_str() {
            "syscall" => &mut entry.syscall,
            "network" => &mut entry.network,
            _ => return None,
        };
        *slot = Some((now, a.clone()));
        let fresh = |s: &Option<(Instant, Alert)>| {
            s.as_ref()
                .filter(|(at, _)| now - *at < cooldown.max(Duration::from_secs(1)))
                .map(|(_, a)| a.clone())
        };
        let (Some(sys), Some(net)) = (fresh(&entry.syscall), fresh(&entry.network)) else {
            return None;
        };
        self.seq += 1;
        let ts = now_ns();
        let severity = match sys.severity.max(net.severity) {
            Severity::Low => Severity::Medium,
            Severity::Medium => Severity::High,
            Severity::High | Severity::Critical => Severity::Critical,
        };
        let mut evidence = vec![format!(
            "process {pid} ({}) has both syscall alert {} and network alert {}",
            sys.exe.as_deref().or(net.exe.as_deref()).unwrap_or("?"),
            sys.id,
            net.id
        )];
        evidence.extend(sys.evidence.iter().take(2).map(|e| format!("syscall: {e}")));
        evidence.extend(net.evidence.iter().take(2).map(|e| format!("network: {e}")));
        Some(Alert {
            id: format!("{}-{:x}-{}", self.node.id, ts, self.seq),
            ts_ns: ts,
            node_id: self.node.id.clone(),
            host: a.host.clone(),
            module: "incident".into(),
            severity,
            entity: format!("pid:{pid}"),
            pid: Some(pid),
            exe: sys.exe.clone().or(net.exe.clone()),
            score: sys.score.max(net.score),
            threshold: 0.0,
            model: format!("{} + {}", sys.model, net.model),
            count: 1,
            evidence,
            observed_ns: net.observed_ns,
            first_seen_ns: 0,
            last_seen_ns: 0,
        })
    }

    fn emit(&mut self, alert: Alert) {
        let incident = self.correlate(&alert);
        self.emit_one(alert);
        if let Some(i) = incident {
            self.incidents.inc();
            self.emit_one(i);
        }
    }

    /// Response rules act on new alerts (not on folded repeats): here in
    /// the `both` role, else by a command to the collector of the alert's
    /// host, whose outcome comes back as a [`RemoteOutcome`].
    /// True when a rule matched.
    fn respond(&mut self, alert: &Alert) -> bool {
        let Some(r) = self.responder.as_mut() else {
            return false;
        };
        self.seq += 1;
        let ts = now_ns();
        let id = format!("{}-{:x}-{}", self.node.id, ts, self.seq);
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

    fn emit_one(&mut self, mut alert: Alert) {
        self.sweep(false);
        let fold_key = format!("{}/{}/{}", alert.module, alert.host, alert.entity);
        if let Some(f) = self.recent_alerts.get_mut(&fold_key) {
            f.alert.count += 1;
            f.alert.last_seen_ns = alert.ts_ns;
            f.alert.score = f.alert.score.max(alert.score);
            self.folded.inc();
            // A block has lapsed but the remote keeps attacking: block it
            // again (the repeat itself stays folded).
            let again = self.responder.as_ref().is_some_and(|r| {
                r.rule_for(&alert) == Some(response::Action::Block)
                    && f.responded
                        .is_some_and(|t| t.elapsed() >= r.config().block_for)
            });
            if again {
                f.responded = Some(Instant::now());
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
            alert_id = %alert.id,
            host = %alert.host,
            entity = %alert.entity,
            severity = ?alert.severity,
            score = alert.score,
            threshold = alert.threshold,
            latency_ms = alert.observed_ns.map(|o| alert.ts_ns.saturating_sub(o) / 1_000_000),
            "alert"
        );
        self.write(&alert);
        let responded = self.respond(&alert).then(Instant::now);
        self.recent_alerts.insert(
            fold_key,
            Folded {
                at: Instant::now(),
                alert,
                responded,
            },
        );
    }

    /// Ends the fold windows whose cooldown is over (all of them with
    /// `all`), sending an update for each that folded repeats.
    fn sweep(&mut self, all: bool) {
        let cooldown = self.cfg.cooldown;
        let ended: Vec<String> = self
            .recent_alerts
            .iter()
            .filter(|(_, f)| all || f.at.elapsed() >= cooldown)
            .map(|(k, _)| k.clone())
            .collect();
        for k in ended {
            if let Some(f) = self.recent_alerts.remove(&k) {
                if f.alert.count > 1 {
                    self.updates.inc();
                    tracing::warn!(alert_id = %f.alert.id, entity = %f.alert.entity, count = f.alert.count, "alert repeated");
                    self.write(&f.alert);
                }
            }
        }
    }

    fn write(&mut self, alert: &Alert) {
        for sink in &mut self.sinks {
            if let Err(e) = sink.send(alert) {
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
    fn restarts(&mut self) -> &mut Restarts {
        &mut self.restarts
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
        ctx.run_interval(Duration::from_secs(1), |a, _| a.sweep(false));
    }
}

impl Handler<Scored> for AlertActor {
    type Result = ();
    fn handle(&mut self, msg: Scored, _: &mut Context<Self>) {
        let w = msg.windows.window;
        let mut at = 0usize;
        for seg in &msg.windows.segments {
            let key = (seg.host.clone(), seg.pid);
            if !self.procs.contains(&key) {
                let st = ProcScore {
                    comm: seg.comm.clone(),
                    exe: seg.exe.clone(),
                    recent: VecDeque::new(),
                    sum: 0.0,
                    since_judged: 0,
                    worst: None,
                };
                if self.procs.push(key.clone(), st).is_some() {
                    self.forgotten.inc();
                }
            }
            let horizon = self.cfg.horizon;
            let judge_now = {
                let st = self.procs.get_mut(&key).expect("just inserted");
                for i in at..at + seg.windows {
                    let s = msg.scores[i];
                    st.recent.push_back(s);
                    st.sum += s as f64;
                    if st.recent.len() > horizon {
                        st.sum -= st.recent.pop_front().unwrap_or(0.0) as f64;
                    }
                    if st.worst.as_ref().is_none_or(|(ws, _)| s >= *ws) {
                        st.worst = Some((s, msg.windows.tokens[i * w..(i + 1) * w].to_vec()));
                    }
                }
                st.since_judged += seg.windows;
                seg.last || st.since_judged >= horizon
            };
            at += seg.windows;
            if judge_now {
                if let Some(a) = self.judge(&key, &msg.model, &msg.vocab) {
                    self.emit(a);
                }
            }
            if seg.last {
                self.procs.pop(&key);
            }
        }
        self.tracked.set(self.procs.len() as u64);
    }
}

/// Network detections: an alert per malicious flow as soon as it is
/// scored (repeats between the same two addresses fold within `cooldown`).
impl Handler<FlowDetections> for AlertActor {
    type Result = ();
    fn handle(&mut self, msg: FlowDetections, _: &mut Context<Self>) {
        for d in msg.detections {
            let f = &d.flow;
            let get = |k: &str| f.features.get(k).copied().unwrap_or(0.0);
            let mut evidence = vec![format!(
                "{} {}:{} -> {}:{}: {} packets, {} bytes in {:.3} s, ended by {}",
                crate::flows::proto_name(f.proto),
                f.src,
                f.src_port,
                f.dst,
                f.dst_port,
                get("flowLength"),
                get("packetSizeTotal"),
                get("flowDuration") / 1e9,
                if f.end.is_empty() { "?" } else { &f.end }
            )];
            if let Some(pid) = f.pid {
                evidence.push(format!(
                    "local process {pid} ({})",
                    f.exe.as_deref().unwrap_or("?")
                ));
            }
            if !d.top.is_empty() {
                let top: Vec<String> = d
                    .top
                    .iter()
                    .map(|e| {
                        format!(
                            "{} = {} ({:+.1} σ from normal; {:+.2} to the log-odds)",
                            e.name, e.value, e.z, e.contribution
                        )
                    })
                    .collect();
                evidence.push(format!("raised most by {}", top.join(", ")));
            }
            self.seq += 1;
            let now = now_ns();
            let alert = Alert {
                id: format!("{}-{:x}-{}", self.node.id, now, self.seq),
                ts_ns: now,
                node_id: self.node.id.clone(),
                host: msg.host.clone(),
                module: "network".into(),
                severity: if d.score > 0.99 {
                    Severity::High
                } else {
                    Severity::Medium
                },
                entity: format!("flow:{}->{}", f.src, f.dst),
                pid: f.pid,
                exe: f.exe.clone(),
                score: d.score,
                threshold: msg.threshold,
                model: msg.model.to_string(),
                count: 1,
                evidence,
                observed_ns: Some(f.last_ns),
                first_seen_ns: 0,
                last_seen_ns: 0,
            };
            self.emit(alert);
        }
    }
}

/// What a collector did about one of this node's commands: to the sinks.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct RemoteOutcome(pub Alert);

impl Handler<RemoteOutcome> for AlertActor {
    type Result = ();
    fn handle(&mut self, RemoteOutcome(a): RemoteOutcome, _: &mut Context<Self>) {
        if a.module != "response" {
            tracing::warn!(alert_id = %a.id, module = %a.module, "outcome that is not a response; ignored");
            return;
        }
        self.outcomes.inc();
        self.responses.inc();
        self.write(&a);
    }
}

/// Ends every fold window, syncs the file and replies once the remote
/// sinks delivered what they were handed (the node's deadline bounds it).
impl Handler<Drain> for AlertActor {
    type Result = crate::actors::runtime::DrainReply<Self>;
    fn handle(&mut self, _: Drain, _: &mut Context<Self>) -> Self::Result {
        // Stopping ends every fold window: no folded count is lost.
        self.sweep(true);
        for sink in &mut self.sinks {
            sink.sync();
        }
        // Wait (within the node's shutdown deadline) for JetStream and the
        // webhook to accept what they were handed.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actors::network::flow_classifier::FlowDetection;
    use crate::messages::FlowRecord;
    use crate::metrics::Metrics;

    fn detection(port: u16) -> FlowDetection {
        FlowDetection {
            flow: FlowRecord {
                src: "10.0.0.66".into(),
                dst: "10.0.0.10".into(),
                src_port: 40000,
                dst_port: port,
                proto: 6,
                first_ns: 1,
                last_ns: 2,
                features: Default::default(),
                end: "rst".into(),
                pid: None,
                exe: None,
            },
            score: 0.9,
            top: vec![],
        }
    }

    fn actor(metrics: &Metrics, cfg: AlertConfig) -> AlertActor {
        let node = NodeInfo {
            id: "n1".into(),
            host: "h".into(),
            role: crate::config::Role::Both,
            metrics: metrics.clone(),
            started: Instant::now(),
        };
        let sinks = sinks::open_local(&cfg, metrics).unwrap();
        AlertActor::new(cfg, node, sinks, None)
    }

    fn process_alert(module: &str, pid: u32, sev: Severity) -> Alert {
        Alert {
            id: format!("{module}-{pid}"),
            ts_ns: 1,
            node_id: "n1".into(),
            host: "h".into(),
            module: module.into(),
            severity: sev,
            entity: format!("x:{pid}"),
            pid: Some(pid),
            exe: Some("/usr/bin/victim".into()),
            score: 0.9,
            threshold: 0.5,
            model: format!("{module}-model"),
            count: 1,
            evidence: vec![format!("{module} evidence")],
            observed_ns: None,
            first_seen_ns: 0,
            last_seen_ns: 0,
        }
    }

    /// Syscall and network alerts of the same process make one incident,
    /// one step more severe; other processes do not.
    #[test]
    fn a_process_with_both_kinds_of_alert_is_an_incident() {
        let metrics = Metrics::new();
        let cfg = AlertConfig {
            console: false,
            ..Default::default()
        };
        let mut a = actor(&metrics, cfg);
        assert!(a
            .correlate(&process_alert("syscall", 7, Severity::Medium))
            .is_none());
        assert!(a
            .correlate(&process_alert("network", 8, Severity::High))
            .is_none());
        let i = a
            .correlate(&process_alert("network", 7, Severity::Medium))
            .expect("incident");
        assert_eq!(
            (i.module.as_str(), i.pid, i.severity),
            ("incident", Some(7), Severity::High)
        );
        assert_eq!(i.entity, "pid:7");
        assert!(i.evidence[0].contains("syscall-7") && i.evidence[0].contains("network-7"));
        assert!(i.evidence.iter().any(|e| e == "syscall: syscall evidence"));
        assert!(i.evidence.iter().any(|e| e == "network: network evidence"));
    }

    /// A flood of identical detections: one alert at once, then one update
    /// with the same id and the full count; nothing dropped.
    #[test]
    fn a_flood_of_detections_folds_into_one_alert_with_its_count() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alerts.jsonl");
        let metrics = Metrics::new();
        let cfg = AlertConfig {
            console: false,
            jsonl: Some(path.clone()),
            cooldown: Duration::from_secs(3600),
            ..Default::default()
        };
        actix::System::new().block_on(async {
            let a = actor(&metrics, cfg).start();
            for chunk in 0..10 {
                let msg = FlowDetections {
                    host: "h".into(),
                    detections: (0..100).map(|i| detection(chunk * 100 + i)).collect(),
                    threshold: 0.5,
                    model: "m".into(),
                };
                a.send(msg).await.unwrap();
            }
            a.send(Drain).await.unwrap();
        });
        let lines: Vec<Alert> = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2, "{lines:#?}");
        assert_eq!((lines[0].count, lines[1].count), (1, 1000));
        assert_eq!(lines[0].id, lines[1].id);
        assert!(lines[1].last_seen_ns >= lines[1].first_seen_ns);
        assert_eq!(lines[1].first_seen_ns, lines[0].ts_ns);
        assert_eq!(metrics.get("alert.raised"), 1);
        assert_eq!(metrics.get("alert.folded"), 999);
        assert_eq!(metrics.get("alert.updates"), 1);
    }

    /// A remote that keeps attacking after its block lapsed is blocked
    /// again, although its detections stay folded into one alert.
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
                    module: "network".into(),
                    min_severity: Severity::Medium,
                    action: response::Action::Block,
                }],
                ..Default::default()
            },
            ..Default::default()
        };
        actix::System::new().block_on(async {
            let a = actor(&metrics, cfg).start();
            let one = |port| FlowDetections {
                host: "h".into(),
                detections: vec![detection(port)],
                threshold: 0.5,
                model: "m".into(),
            };
            a.send(one(1)).await.unwrap();
            a.send(one(2)).await.unwrap(); // block still on: nothing new
            assert_eq!(metrics.get("alert.responses"), 1);
            tokio::time::sleep(Duration::from_millis(350)).await;
            a.send(one(3)).await.unwrap(); // lapsed: block again
            a.send(one(4)).await.unwrap();
            a.send(Drain).await.unwrap();
        });
        assert_eq!(metrics.get("alert.raised"), 1);
        assert_eq!(metrics.get("alert.folded"), 3);
        assert_eq!(metrics.get("alert.responses"), 2);
    }
}
