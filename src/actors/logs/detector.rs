//! The log detector (compute side): parses each line a collector sent
//! (`crate::logs::parse`, the boundary where its bytes come in) and judges
//! it with the explicit rules (`crate::logs::rules`), per collector host.
//! Each finding becomes an alert of module `log` with the lines that
//! raised it; the alert actor folds it and joins it to incidents (the same
//! remote address as a network alert, the same process as a tree).

use crate::actors::runtime::mailbox::{Edge, MailboxConfig};
use crate::actors::runtime::receipt::Receipt;
use crate::actors::runtime::supervision::{hand_on, Restarts};
use crate::actors::runtime::{drained, on_start, Drain, DrainReply, NodeActor, NodeInfo};
use crate::config::validate::{ConfigError, Validate};
use crate::logs::parse::{parse_from, LogFormat};
use crate::logs::rules::{shown, Finding, Line, Rules, Subject, Thresholds};
use crate::logs::templates::{
    shape_of, TemplateConfig, TemplateError, TemplateFinding, TemplateKind, TemplateModel,
    Templates,
};
use crate::messages::{
    Alert, AlertModule, Endpoint, LogBatch, LogFields, ProcessFields, RuleFields, Severity,
    UserFields,
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
    /// Line shapes and their rates per host (`[log_detector.templates]`).
    pub templates: TemplateConfig,
    pub mailbox: MailboxConfig,
}

impl Default for LogDetectorConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            rules: Thresholds::default(),
            templates: TemplateConfig::default(),
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
            ("db_failures", r.db_failures),
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
        let t = &self.templates;
        if !(0.0..=1.0).contains(&t.similarity) {
            errors.push(ConfigError::new(
                format!("{path}.templates.similarity"),
                "must be between 0 and 1",
            ));
        }
        if t.rate_factor.is_nan() || t.rate_factor < 1.0 {
            errors.push(ConfigError::new(
                format!("{path}.templates.rate_factor"),
                "must be at least 1",
            ));
        }
        if !(0.0..=1.0).contains(&t.new_shape_chance) {
            errors.push(ConfigError::new(
                format!("{path}.templates.new_shape_chance"),
                "must be between 0 and 1",
            ));
        }
        if t.max_templates == 0 {
            errors.push(ConfigError::new(
                format!("{path}.templates.max_templates"),
                "must be at least 1",
            ));
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
    judge: Judge,
    lines: Counter,
    raw: Counter,
    cut: Counter,
    findings: Counter,
    evicted: Counter,
    templates_full: Counter,
    new_templates_folded: Counter,
}

impl LogDetector {
    /// `model`: the trained templates (`templates.model`, loaded by `prepare`).
    pub fn new(
        cfg: LogDetectorConfig,
        node: &NodeInfo,
        model: Option<TemplateModel>,
        out: Edge<LogAlerts>,
    ) -> Self {
        let m = &node.metrics;
        Self {
            restarts: Restarts::new(Self::NAME, m),
            judge: Judge::new(&cfg, model),
            templates_full: m.counter("log_detector.templates_full"),
            new_templates_folded: m.counter("log_detector.new_templates_folded"),
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
        let before = self.judge.stats;
        let out = self.judge.batch(batch);
        let after = self.judge.stats;
        self.lines.add(after.lines - before.lines);
        self.raw.add(after.unparsed - before.unparsed);
        self.cut.add(after.cut - before.cut);
        self.evicted.add(after.evicted - before.evicted);
        self.templates_full
            .add(after.templates_full - before.templates_full);
        self.new_templates_folded
            .add(after.new_templates_folded - before.new_templates_folded);
        self.findings.add(out.len() as u64);
        out
    }
}

/// Rules and templates over lines, per collector host (the detector's
/// work, without the actor: `daisi eval logs` runs it on files).
pub struct Judge {
    rules: Thresholds,
    hosts: HashMap<String, Rules>,
    templates: Option<Templates>,
    pub stats: JudgeStats,
}

/// What a [`Judge`] saw, totals.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct JudgeStats {
    pub lines: u64,
    pub unparsed: u64,
    pub cut: u64,
    pub evicted: u64,
    pub templates_full: u64,
    /// New shapes not raised (`Templates::folded`).
    pub new_templates_folded: u64,
}

impl Judge {
    pub fn new(cfg: &LogDetectorConfig, model: Option<TemplateModel>) -> Self {
        Self {
            rules: cfg.rules.clone(),
            hosts: HashMap::new(),
            templates: cfg
                .templates
                .enabled
                .then(|| Templates::new(cfg.templates.clone(), model)),
            stats: JudgeStats::default(),
        }
    }

    /// Judges a batch: the alerts it raised.
    pub fn batch(&mut self, batch: &LogBatch) -> Vec<Alert> {
        let year = chrono::Utc::now().year();
        let rules = self
            .hosts
            .entry(batch.host.clone())
            .or_insert_with(|| Rules::new(self.rules.clone()));
        let before = rules.evicted;
        let mut out = Vec::new();
        for l in &batch.lines {
            self.stats.lines += 1;
            if l.cut {
                self.stats.cut += 1;
            }
            let ev = parse_from(&l.text, year, l.program.as_deref());
            if ev.format == LogFormat::Raw && ev.action.is_none() {
                self.stats.unparsed += 1;
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
            if let Some(t) = self.templates.as_mut() {
                let text = shape_of(&ev);
                let stream = crate::logs::templates::Stream::of(&l.path, &ev);
                if let Some(f) = t.line(&batch.host, stream, &text, ts_ns, l.read_ns) {
                    out.push(template_alert(
                        &batch.host,
                        &l.path,
                        l.read_ns,
                        &ev,
                        &l.text,
                        f,
                    ));
                }
            }
        }
        if let Some(t) = self.templates.as_mut() {
            self.stats.templates_full += std::mem::take(&mut t.full);
            self.stats.new_templates_folded += std::mem::take(&mut t.folded);
        }
        self.stats.evicted += rules.evicted - before;
        out
    }
}

/// What every log alert carries besides its summary and figures.
struct LogAlert<'a> {
    host: &'a str,
    path: &'a str,
    read_ns: u64,
    entity: String,
    severity: Severity,
    rule: String,
    model: &'static str,
    source_ip: Option<std::net::IpAddr>,
    user: Option<String>,
    program: Option<String>,
    pid: Option<u32>,
    lines: Vec<String>,
}

impl LogAlert<'_> {
    fn alert(self, summary: String, value: f64, threshold: f64) -> Alert {
        let mut a = Alert::new(AlertModule::Log, self.host, self.entity, self.severity);
        a.summary = summary;
        a.score = value;
        a.threshold = threshold;
        a.model = self.model.into();
        a.rule = Some(RuleFields {
            name: self.rule,
            ..Default::default()
        });
        a.source = self.source_ip.map(|ip| Endpoint {
            ip: ip.to_string(),
            port: 0,
        });
        a.user = self.user.map(|name| UserFields {
            id: String::new(),
            name: Some(name),
        });
        a.process = self.pid.map(|pid| ProcessFields {
            pid,
            name: self.program,
            executable: None,
            args: vec![],
            ..Default::default()
        });
        a.log = Some(LogFields {
            file: self.path.to_string(),
            lines: self.lines,
        });
        // Detection latency: from when the collector read the line.
        a.observed_ns = Some(self.read_ns);
        a
    }
}

/// The alert for a finding.
pub fn alert_of(host: &str, path: &str, read_ns: u64, f: Finding) -> Alert {
    let entity = match &f.subject {
        Subject::Address(ip) => format!("source:{ip}:log.{}", f.rule.name()),
        Subject::User(u) => format!("user:{u}:log.{}", f.rule.name()),
    };
    LogAlert {
        host,
        path,
        read_ns,
        entity,
        severity: f.severity,
        rule: format!("log.{}", f.rule.name()),
        model: "log rules",
        source_ip: f.source_ip,
        user: f.user,
        program: f.program,
        pid: f.pid,
        lines: f.lines,
    }
    .alert(f.summary, f.value, f.threshold)
}

/// The alert for a template finding: the line as evidence.
pub fn template_alert(
    host: &str,
    path: &str,
    read_ns: u64,
    ev: &crate::logs::parse::LogEvent,
    line: &str,
    f: TemplateFinding,
) -> Alert {
    let program = ev.program.as_deref().unwrap_or("?");
    let (severity, summary) = match f.kind {
        TemplateKind::NewTemplate => (
            Severity::Low,
            format!(
                "new kind of log line on {} from {}: {}",
                shown(host),
                shown(program),
                shown(&f.template)
            ),
        ),
        TemplateKind::TemplateRate => (
            Severity::Medium,
            format!(
                "{} lines in a minute on {} (at most {} before): {}",
                f.value,
                shown(host),
                f.normal,
                shown(&f.template)
            ),
        ),
        TemplateKind::TemplateSequence => (
            Severity::Low,
            format!(
                "log line out of its usual order on {} in {}: {} (ranked {} of the sequence model's predictions; the first {} are expected)",
                shown(host),
                shown(path),
                shown(&f.template),
                f.value + 1.0,
                f.threshold
            ),
        ),
    };
    LogAlert {
        host,
        path,
        read_ns,
        entity: format!("template:{}:log.{}", f.template_id, f.kind.name()),
        severity,
        rule: format!("log.{}", f.kind.name()),
        model: "log templates",
        source_ip: ev.source_ip,
        user: ev.user.clone(),
        program: ev.program.clone(),
        pid: ev.pid,
        lines: vec![line.to_string()],
    }
    .alert(summary, f.value, f.threshold)
}

impl NodeActor for LogDetector {
    const NAME: &'static str = "log_detector";
    type Config = LogDetectorConfig;
    type Prepared = Option<TemplateModel>;
    type Links = Edge<LogAlerts>;
    type Error = TemplateError;

    fn section(cfg: &crate::config::Config) -> &LogDetectorConfig {
        &cfg.log_detector
    }
    /// Loads the trained templates, when a model is named.
    async fn prepare(
        cfg: &crate::config::Config,
        _: &NodeInfo,
    ) -> Result<Option<TemplateModel>, Self::Error> {
        let t = &cfg.log_detector.templates;
        match (&t.model, t.enabled && cfg.log_detector.enabled) {
            (Some(path), true) => TemplateModel::load(path).map(Some),
            _ => Ok(None),
        }
    }
    fn create(
        cfg: LogDetectorConfig,
        node: &NodeInfo,
        model: Option<TemplateModel>,
        out: Edge<LogAlerts>,
    ) -> Self {
        Self::new(cfg, node, model, out)
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
        hand_on(ctx, self.out.clone(), LogAlerts { alerts, receipt });
    }
}

/// Holds nothing between messages but the rules' windows.
impl Handler<Drain> for LogDetector {
    type Result = DrainReply<Self>;
    fn handle(&mut self, _: Drain, _: &mut Context<Self>) -> Self::Result {
        drained()
    }
}
