//! The log detector (compute side): parses each line a collector sent
//! (`crate::logs::parse`, the boundary where its bytes come in) and judges
//! it with the explicit rules (`crate::logs::rules`), per collector host.
//! Each finding becomes an alert of module `log` with the lines that
//! raised it; the alert actor folds it and joins it to incidents (the same
//! remote address as a network alert, the same process as a tree).

use crate::actors::runtime::mailbox::{Edge, MailboxConfig};
use crate::actors::runtime::receipt::Receipt;
use crate::actors::runtime::supervision::{fail, Restarts};
use crate::actors::runtime::{drained, on_start, Drain, DrainReply, NodeActor, NodeInfo};
use crate::config::validate::{ConfigError, Validate};
use crate::logs::parse::{parse_from, LogFormat};
use crate::logs::rules::{Finding, Line, Rules, Subject, Thresholds};
use crate::messages::{
    Alert, AlertModule, Endpoint, LogBatch, LogFields, ProcessFields, RuleFields, UserFields,
};
use crate::metrics::Counter;
use actix::prelude::*;
use chrono::Datelike;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// `[log_detector]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LogDetectorConfig {
    /// Judge the log lines collectors send (else they are counted only).
    pub enabled: bool,
    /// The rules' thresholds (`[log_detector.rules]`).
    pub rules: Thresholds,
    pub mailbox: MailboxConfig,
}

impl Default for LogDetectorConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            rules: Thresholds::default(),
            mailbox: MailboxConfig {
                capacity: 64,
                ..Default::default()
            },
        }
    }
}

impl Validate for LogDetectorConfig {
    fn validate(&self, path: &str, errors: &mut Vec<ConfigError>) {
        let r = &self.rules;
        if r.window.is_zero() {
            errors.push(ConfigError::new(
                format!("{path}.rules.window"),
                "must be above 0",
            ));
        }
        for (k, v) in [
            ("ssh_failures", r.ssh_failures),
            ("failures_before_success", r.failures_before_success),
            ("web_errors", r.web_errors),
            ("web_distinct_urls", r.web_distinct_urls),
            ("web_posts", r.web_posts),
            ("max_keys", r.max_keys),
        ] {
            if v == 0 {
                errors.push(ConfigError::new(
                    format!("{path}.rules.{k}"),
                    "must be at least 1",
                ));
            }
        }
        self.mailbox.validate(&format!("{path}.mailbox"), errors);
    }
}

/// Lines from one collector, with the broker's receipt when they came from
/// the durable stream.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct ScoreLogs(pub LogBatch, pub Option<Receipt>);

/// Alerts from log lines, for the alert actor.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct LogAlerts {
    pub alerts: Vec<Alert>,
    /// Done once the alert actor took them.
    pub receipt: Option<Receipt>,
}

/// The log-judging actor.
pub struct LogDetector {
    cfg: LogDetectorConfig,
    out: Edge<LogAlerts>,
    restarts: Restarts,
    /// Each collector host's rule state.
    hosts: HashMap<String, Rules>,
    lines: Counter,
    raw: Counter,
    cut: Counter,
    findings: Counter,
    evicted: Counter,
}

impl LogDetector {
    pub fn new(cfg: LogDetectorConfig, node: &NodeInfo, out: Edge<LogAlerts>) -> Self {
        let m = &node.metrics;
        Self {
            restarts: Restarts::new(Self::NAME, m),
            hosts: HashMap::new(),
            lines: m.counter("log_detector.lines"),
            raw: m.counter("log_detector.unparsed"),
            cut: m.counter("log_detector.cut_lines"),
            findings: m.counter("log_detector.findings"),
            evicted: m.counter("log_detector.evicted"),
            cfg,
            out,
        }
    }

    /// Judges a batch: the alerts it raised.
    pub fn judge(&mut self, batch: &LogBatch) -> Vec<Alert> {
        let year = chrono::Utc::now().year();
        let rules = self
            .hosts
            .entry(batch.host.clone())
            .or_insert_with(|| Rules::new(self.cfg.rules.clone()));
        let before = rules.evicted;
        let mut out = Vec::new();
        for l in &batch.lines {
            self.lines.inc();
            if l.cut {
                self.cut.inc();
            }
            let ev = parse_from(&l.text, year, l.program.as_deref());
            if ev.format == LogFormat::Raw && ev.action.is_none() {
                self.raw.inc();
            }
            let ts_ns = ev
                .timestamp_ns
                .and_then(|t| u64::try_from(t).ok())
                .unwrap_or(l.read_ns);
            for f in rules.line(&Line {
                event: &ev,
                text: &l.text,
                ts_ns,
            }) {
                out.push(alert_of(&batch.host, &l.path, l.read_ns, f));
            }
        }
        self.evicted.add(rules.evicted - before);
        self.findings.add(out.len() as u64);
        out
    }
}

/// The alert for a finding.
pub fn alert_of(host: &str, path: &str, read_ns: u64, f: Finding) -> Alert {
    let entity = match &f.subject {
        Subject::Address(ip) => format!("source:{ip}:log.{}", f.rule.name()),
        Subject::User(u) => format!("user:{u}:log.{}", f.rule.name()),
    };
    let mut a = Alert::new(AlertModule::Log, host, entity, f.severity);
    a.summary = f.summary;
    a.score = f.value;
    a.threshold = f.threshold;
    a.model = "log rules".into();
    a.rule = Some(RuleFields {
        name: format!("log.{}", f.rule.name()),
    });
    a.source = f.source_ip.map(|ip| Endpoint {
        ip: ip.to_string(),
        port: 0,
    });
    a.user = f.user.map(|name| UserFields {
        id: String::new(),
        name: Some(name),
    });
    a.process = f.pid.map(|pid| ProcessFields {
        pid,
        name: f.program.clone(),
        executable: None,
        args: vec![],
        parent: None,
    });
    a.log = Some(LogFields {
        file: path.to_string(),
        lines: f.lines,
    });
    // Detection latency: from when the collector read the line.
    a.observed_ns = Some(read_ns);
    a
}

impl NodeActor for LogDetector {
    const NAME: &'static str = "log_detector";
    type Config = LogDetectorConfig;
    type Prepared = ();
    type Links = Edge<LogAlerts>;
    type Error = std::convert::Infallible;

    fn section(cfg: &crate::config::Config) -> &LogDetectorConfig {
        &cfg.log_detector
    }
    async fn prepare(_: &crate::config::Config, _: &NodeInfo) -> Result<(), Self::Error> {
        Ok(())
    }
    fn create(cfg: LogDetectorConfig, node: &NodeInfo, _: (), out: Edge<LogAlerts>) -> Self {
        Self::new(cfg, node, out)
    }
    fn mailbox_capacity(&self) -> usize {
        self.cfg.mailbox.capacity
    }
}

crate::supervised!(LogDetector);

impl Actor for LogDetector {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Context<Self>) {
        on_start(self, ctx);
    }
}

impl Handler<ScoreLogs> for LogDetector {
    type Result = ();
    fn handle(&mut self, ScoreLogs(batch, receipt): ScoreLogs, ctx: &mut Context<Self>) {
        let alerts = match self.cfg.enabled {
            true => self.judge(&batch),
            false => {
                self.lines.add(batch.lines.len() as u64);
                Vec::new()
            }
        };
        if alerts.is_empty() {
            crate::actors::runtime::receipt::all_done([&receipt]);
            return;
        }
        let out = self.out.clone();
        ctx.wait(
            async move { out.push(LogAlerts { alerts, receipt }).await }
                .into_actor(self)
                .map(|r, _, ctx| {
                    if let Err(e) = r {
                        fail(Self::NAME, ctx, e);
                    }
                }),
        );
    }
}

/// Holds nothing between messages but the rules' windows.
impl Handler<Drain> for LogDetector {
    type Result = DrainReply<Self>;
    fn handle(&mut self, _: Drain, _: &mut Context<Self>) -> Self::Result {
        drained()
    }
}
