//! Turns scores into alerts, per process and per flow, and writes them to
//! the sinks.
//!
//! A process's score is the mean window score over its last `horizon`
//! windows: the same window-to-trace aggregation `daisi eval syscall`
//! measures. It is decided when the process exits (over its whole life when
//! that is shorter than the horizon, exactly as evaluated), and for a
//! long-lived process each time a full horizon of new windows has passed. Repeats for the same entity
//! within `cooldown` are folded into the first alert's count (counted as
//! `alert.folded`), never silently dropped.

use super::flow_classifier::FlowDetections;
use super::mailbox::MailboxConfig;
use super::supervision::{fail, InjectFault, Restarts};
use super::syscall_classifier::Scored;
use super::{now_ns, Drain, NodeInfo};
use crate::config::{ConfigError, Validate};
use crate::messages::{Alert, Severity};
use crate::metrics::Counter;
use actix::prelude::*;
use lru::LruCache;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::io::Write;
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

/// The first alert of an entity within its cooldown.
struct Folded {
    at: Instant,
    count: u64,
}

/// Alert decisions and sinks.
pub struct AlertActor {
    cfg: AlertConfig,
    node: NodeInfo,
    procs: LruCache<(String, u32), ProcScore>,
    recent_alerts: HashMap<String, Folded>,
    jsonl: Option<std::fs::File>,
    seq: u64,
    restarts: Restarts,
    raised: Counter,
    folded: Counter,
    forgotten: Counter,
    sink_errors: Counter,
    tracked: crate::metrics::Gauge,
}

#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    #[error("cannot open alert file {path}: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl AlertActor {
    /// Opens the sinks (fallible start).
    pub fn new(cfg: AlertConfig, node: NodeInfo) -> Result<Self, AlertError> {
        let jsonl = match &cfg.jsonl {
            Some(p) => Some(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .map_err(|source| AlertError::Open {
                        path: p.clone(),
                        source,
                    })?,
            ),
            None => None,
        };
        let m = &node.metrics;
        Ok(Self {
            procs: LruCache::new(NonZeroUsize::new(cfg.max_processes).unwrap_or(NonZeroUsize::MIN)),
            recent_alerts: HashMap::new(),
            restarts: Restarts::new("alert", m),
            raised: m.counter("alert.raised"),
            folded: m.counter("alert.folded"),
            forgotten: m.counter("alert.forgotten_processes"),
            sink_errors: m.counter("alert.sink_errors"),
            tracked: m.gauge("alert.processes"),
            jsonl,
            seq: 0,
            cfg,
            node,
        })
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
        })
    }

    fn emit(&mut self, alert: Alert) {
        let fold_key = format!("{}/{}/{}", alert.module, alert.host, alert.entity);
        let now = Instant::now();
        self.recent_alerts
            .retain(|_, f| now - f.at < self.cfg.cooldown);
        if let Some(f) = self.recent_alerts.get_mut(&fold_key) {
            f.count += 1;
            self.folded.inc();
            return;
        }
        self.recent_alerts
            .insert(fold_key, Folded { at: now, count: 1 });
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
        if self.cfg.console {
            println!(
                "ALERT [{:?}] {} {} on {}: score {:.3} > {:.3} ({})",
                alert.severity,
                alert.module,
                alert.entity,
                alert.host,
                alert.score,
                alert.threshold,
                alert.evidence.join("; ")
            );
        }
        if let Some(f) = self.jsonl.as_mut() {
            let line = serde_json::to_string(&alert).expect("alert serializes");
            if let Err(e) = writeln!(f, "{line}").and_then(|_| f.flush()) {
                self.sink_errors.inc();
                tracing::error!(error = %e, "alert file write failed");
            }
        }
    }
}

impl Actor for AlertActor {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(self.cfg.mailbox.capacity);
        self.restarts.backoff::<Self>(ctx);
    }
}

impl Supervised for AlertActor {
    fn restarting(&mut self, _: &mut Context<Self>) {
        self.restarts.restarting();
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

fn proto_name(p: u8) -> String {
    match p {
        6 => "TCP".into(),
        17 => "UDP".into(),
        1 => "ICMP".into(),
        58 => "ICMPv6".into(),
        n => format!("proto {n}"),
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
                proto_name(f.proto),
                f.src,
                f.src_port,
                f.dst,
                f.dst_port,
                get("flowLength"),
                get("packetSizeTotal"),
                get("flowDuration") / 1e9,
                if f.end.is_empty() { "?" } else { &f.end }
            )];
            if !d.top.is_empty() {
                let top: Vec<String> = d
                    .top
                    .iter()
                    .map(|(k, c)| format!("{k} ({c:+.2})"))
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
            };
            self.emit(alert);
        }
    }
}

impl Handler<Drain> for AlertActor {
    type Result = ();
    fn handle(&mut self, _: Drain, _: &mut Context<Self>) {
        if let Some(f) = self.jsonl.as_mut() {
            let _ = f.sync_all();
        }
    }
}

impl Handler<InjectFault> for AlertActor {
    type Result = ();
    fn handle(&mut self, _: InjectFault, ctx: &mut Context<Self>) {
        fail("alert", ctx, "injected fault");
    }
}
