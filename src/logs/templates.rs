//! Log templates: each line's shape, mined online with the Drain algorithm
//! (the `logdrain` crate), and per-host baselines of those shapes.
//!
//! A line's program and message (the syslog header dropped, addresses,
//! UUIDs and long hex masked) go to one [`logdrain::Miner`]; the cluster it
//! lands in is its template. Each host keeps the templates it has shown
//! and, per template, the most lines it wrote in one minute. After the
//! host's learning period two things are findings:
//!
//! - **a new template**: a shape this host never wrote (nor the trained
//!   model knows), once per template and host;
//! - **a rate far outside its range**: more lines of one template in one
//!   minute than `rate_factor` × its largest minute so far (and at least
//!   `min_rate`), once per template, host and minute.
//!
//! `daisi train logs` mines recorded logs into a [`TemplateModel`] so a
//! node starts knowing them; without one each host learns for
//! `learn_for` first.

use crate::logs::parse::{LogEvent, Outcome};
use crate::logs::sequence::SequenceMeta;
use logdrain::{builtin_masks, ClusterId, Miner, MinerBuilder};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The lines whose order is judged together: one program's lines in one
/// file, per session where the line names one (the writing process's pid:
/// an sshd connection, a PostgreSQL backend), so that concurrent sessions
/// do not interleave.
#[derive(Debug, Clone, Copy)]
pub struct Stream<'a> {
    pub file: &'a str,
    pub program: Option<&'a str>,
    pub session: Option<u32>,
}

impl<'a> Stream<'a> {
    /// The stream of a parsed line of `file`.
    pub fn of(file: &'a str, ev: &'a crate::logs::parse::LogEvent) -> Self {
        Stream {
            file,
            program: ev.program.as_deref(),
            session: ev.pid,
        }
    }

    /// Its key among `host`'s streams.
    pub fn key(&self, host: &str) -> String {
        format!(
            "{host}\u{0}{}\u{0}{}\u{0}{}",
            self.file,
            self.program.unwrap_or(""),
            self.session.map_or(String::new(), |p| p.to_string())
        )
    }
}

/// `[log_detector.templates]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TemplateConfig {
    /// Mine templates and judge them (else only the rules run).
    pub enabled: bool,
    /// A model from `daisi train logs` (templates and their rates); none:
    /// every host learns its own first.
    pub model: Option<PathBuf>,
    /// How long each host's lines are learnt before they are judged, in
    /// the node's own time from the host's first line (a file read from
    /// its start is learnt whole)...
    #[serde(with = "humantime_serde")]
    pub learn_for: Duration,
    /// ...and at least this many of the host's lines.
    pub learn_lines: u64,
    /// A new shape is `log.new_template` only when its program rarely
    /// writes new shapes: the share of its lines so far whose shape it
    /// wrote once only (Good–Turing's chance that its next line is of a
    /// new shape) is at most this. A program with none before is new.
    pub new_shape_chance: f64,
    /// At most one `log.new_template` per host and program this often;
    /// later new shapes in the period are learnt and counted
    /// (`log_detector.new_templates_folded`).
    #[serde(with = "humantime_serde")]
    pub new_template_every: Duration,
    /// A minute with more than this × the template's largest minute...
    pub rate_factor: f64,
    /// ...and at least this many of its lines is out of range.
    pub min_rate: u32,
    /// Templates kept (past it lines are matched, not learnt; counted:
    /// `log_detector.templates_full`).
    pub max_templates: usize,
    /// Drain's similarity threshold for joining a template.
    pub similarity: f64,
    /// Judge the order of each program's lines in each file with the
    /// model's sequence model, when it has one (`log.template_sequence`;
    /// `crate::logs::sequence`).
    pub sequence: bool,
}

impl Default for TemplateConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            model: None,
            learn_for: Duration::from_secs(3600),
            learn_lines: 1000,
            new_shape_chance: 0.01,
            new_template_every: Duration::from_secs(86_400),
            rate_factor: 10.0,
            min_rate: 30,
            max_templates: 10_000,
            similarity: 0.4,
            sequence: true,
        }
    }
}

/// Template errors (loading and writing models).
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a log template model: {reason}")]
    Format { path: PathBuf, reason: String },
}

/// What a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TemplateKind {
    NewTemplate,
    TemplateRate,
    /// A line whose template the sequence model did not expect next.
    TemplateSequence,
}

impl TemplateKind {
    pub fn name(self) -> &'static str {
        match self {
            TemplateKind::NewTemplate => "new_template",
            TemplateKind::TemplateRate => "template_rate",
            TemplateKind::TemplateSequence => "template_sequence",
        }
    }
}

/// A template finding for one host.
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateFinding {
    pub kind: TemplateKind,
    pub template_id: ClusterId,
    /// The template as mined (`<*>` for variables).
    pub template: String,
    /// Lines this minute (rate) or 1 (new).
    pub value: f64,
    /// The largest minute before (rate) or 0 (new).
    pub normal: f64,
    pub threshold: f64,
}

/// One template of a model.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TemplateStat {
    pub id: ClusterId,
    pub template: String,
    pub lines: u64,
    /// The most lines in one minute of the recorded logs.
    pub max_per_minute: u32,
}

/// What `daisi train logs` writes: the miner's state and each template's
/// rate (MessagePack; data only).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateModel {
    pub version: u32,
    pub similarity: f64,
    /// `logdrain::Miner::snapshot`.
    pub miner: Vec<u8>,
    pub templates: Vec<TemplateStat>,
    /// Lines and minutes the model was trained on.
    pub lines: u64,
    pub minutes: u64,
    /// The order of lines (`crate::logs::sequence`), when trained.
    #[serde(default)]
    pub sequence: Option<SequenceMeta>,
    /// The sequence model's weights, read and checked by [`TemplateModel::load`].
    #[serde(skip)]
    pub sequence_weights: Option<std::sync::Arc<Vec<u8>>>,
}

const MODEL_VERSION: u32 = 1;

impl TemplateModel {
    pub fn load(path: &Path) -> Result<Self, TemplateError> {
        let bytes = std::fs::read(path).map_err(|source| TemplateError::Io {
            path: path.into(),
            source,
        })?;
        let m: TemplateModel =
            rmp_serde::from_slice(&bytes).map_err(|e| TemplateError::Format {
                path: path.into(),
                reason: e.to_string(),
            })?;
        if m.version != MODEL_VERSION {
            return Err(TemplateError::Format {
                path: path.into(),
                reason: format!("version {} (this build reads {MODEL_VERSION})", m.version),
            });
        }
        // Checked here so a node never starts on a miner it cannot restore.
        let miner = new_miner(m.similarity);
        miner.restore(&m.miner).map_err(|e| TemplateError::Format {
            path: path.into(),
            reason: e.to_string(),
        })?;
        #[cfg_attr(not(feature = "torch"), allow(unused_mut))]
        let mut m = m;
        #[cfg(feature = "torch")]
        if let Some(meta) = &m.sequence {
            let bytes = crate::logs::sequence::SequenceModel::read(path, meta).map_err(|e| {
                TemplateError::Format {
                    path: path.into(),
                    reason: format!("its sequence model: {e}"),
                }
            })?;
            m.sequence_weights = Some(std::sync::Arc::new(bytes));
        }
        #[cfg(not(feature = "torch"))]
        if m.sequence.is_some() {
            tracing::warn!(model = %path.display(), "this build has no libtorch: the model's sequence model is not used");
        }
        Ok(m)
    }

    pub fn save(&self, path: &Path) -> Result<(), TemplateError> {
        let bytes = rmp_serde::to_vec_named(self).expect("a template model serializes");
        crate::files::write_atomic(path, &bytes).map_err(|source| TemplateError::Io {
            path: path.into(),
            source,
        })
    }
}

fn new_miner(similarity: f64) -> Miner {
    MinerBuilder::new()
        .sim_threshold(similarity)
        .masks([
            builtin_masks::ipv4(),
            builtin_masks::uuid(),
            builtin_masks::hex32(),
        ])
        .build()
        .expect("the miner's options are valid (similarity checked by the config)")
}

/// The text a line is mined as. A line the parser understood (an SSH
/// login, a sudo run, an account change, a web request) is its program,
/// action and outcome (or method and status): its variable parts (the
/// user, the command, the URL) are the parser's fields, and the rules
/// judge them. Any other line is its program and message.
pub fn shape_of(ev: &LogEvent) -> String {
    let program = ev.program.as_deref();
    if let Some(a) = ev.action {
        let outcome = match ev.outcome {
            Some(Outcome::Success) => "success",
            Some(Outcome::Failure) => "failure",
            None => "-",
        };
        return mined_text(program, &format!("{a:?} {outcome}"));
    }
    if let Some(h) = &ev.http {
        return mined_text(
            Some(program.unwrap_or("http")),
            &format!("{} {}", h.method, h.status),
        );
    }
    mined_text(program, &ev.message)
}

/// A program and message as mined text.
pub fn mined_text(program: Option<&str>, message: &str) -> String {
    match program {
        Some(p) => format!("{p}: {message}"),
        None => message.to_string(),
    }
}

/// Minute of a timestamp.
fn minute_of(ts_ns: u64) -> u64 {
    ts_ns / 60_000_000_000
}

/// Streams that begin within this of a host's first line are not judged
/// at their start by the sequence model (they may have begun before).
#[cfg(feature = "torch")]
const STREAM_WARMUP_NS: u64 = 60_000_000_000;

/// Programs whose shapes a host's state follows; lines of further ones
/// are followed as one.
const MAX_PROGRAMS: usize = 1024;

/// One program's lines on a host, by shape.
#[derive(Default)]
struct ProgramShapes {
    lines: u64,
    by_shape: HashMap<ClusterId, u32>,
    /// Shapes written once only.
    once: u64,
    /// When its last `log.new_template` was raised (node time).
    raised_ns: Option<u64>,
}

impl ProgramShapes {
    /// Good–Turing's chance that the next line is of a shape not written
    /// before: the share of lines whose shape was written once only.
    fn new_shape_chance(&self) -> f64 {
        match self.lines {
            0 => 1.0,
            n => self.once as f64 / n as f64,
        }
    }

    /// Counts a line of shape `id`; a shape the model knows is never one
    /// written once only.
    fn count(&mut self, id: ClusterId, known: bool, max_templates: usize) {
        self.lines += 1;
        if known || (!self.by_shape.contains_key(&id) && self.by_shape.len() >= max_templates) {
            return;
        }
        let n = self.by_shape.entry(id).or_default();
        *n += 1;
        match *n {
            1 => self.once += 1,
            2 => self.once -= 1,
            _ => {}
        }
    }
}

/// One host's templates.
#[derive(Default)]
struct HostState {
    /// The node's time at the host's first line, and the lines since.
    first_read_ns: Option<u64>,
    lines: u64,
    programs: HashMap<String, ProgramShapes>,
    seen: HashSet<ClusterId>,
    minute: u64,
    this_minute: HashMap<ClusterId, u32>,
    max_per_minute: HashMap<ClusterId, u32>,
    /// Templates whose rate alert was raised this minute.
    raised: HashSet<ClusterId>,
    /// Templates raised as out of order this minute.
    raised_order: HashSet<ClusterId>,
}

impl HostState {
    /// Closes the minute: its counts become the largest seen.
    fn roll(&mut self, minute: u64, learning: bool, max_templates: usize) {
        if minute == self.minute {
            return;
        }
        for (id, n) in self.this_minute.drain() {
            // Minutes that raised an alert are not normal.
            if learning || !self.raised.contains(&id) {
                let m = self.max_per_minute.entry(id).or_default();
                *m = (*m).max(n);
            }
        }
        if self.max_per_minute.len() > max_templates {
            self.max_per_minute.clear();
        }
        self.raised.clear();
        self.raised_order.clear();
        self.minute = minute;
    }
}

/// Mines lines and judges them against each host's baseline.
pub struct Templates {
    cfg: TemplateConfig,
    miner: Miner,
    /// The model's templates and rates (every host starts with them).
    known: HashMap<ClusterId, u32>,
    hosts: HashMap<String, HostState>,
    /// Lines matched, not learnt, because `max_templates` was reached.
    pub full: u64,
    /// New shapes not raised: their program writes new shapes often, or
    /// it was raised within `new_template_every`.
    pub folded: u64,
    #[cfg(feature = "torch")]
    sequence: Option<crate::logs::sequence::SequenceModel>,
}

impl Templates {
    pub fn new(cfg: TemplateConfig, model: Option<TemplateModel>) -> Self {
        let similarity = model.as_ref().map_or(cfg.similarity, |m| m.similarity);
        let miner = new_miner(similarity);
        let mut known = HashMap::new();
        #[cfg(feature = "torch")]
        let sequence = match (&model, cfg.sequence) {
            (Some(m), true) => {
                m.sequence
                    .as_ref()
                    .zip(m.sequence_weights.as_ref())
                    .map(|(meta, w)| {
                        crate::logs::sequence::SequenceModel::from_bytes(meta, w)
                            .expect("the weights were checked when the model was loaded")
                    })
            }
            _ => None,
        };
        if let Some(m) = model {
            miner
                .restore(&m.miner)
                .expect("the model was checked when it was loaded");
            known = m
                .templates
                .iter()
                .map(|t| (t.id, t.max_per_minute))
                .collect();
        }
        Self {
            cfg,
            miner,
            known,
            hosts: HashMap::new(),
            full: 0,
            folded: 0,
            #[cfg(feature = "torch")]
            sequence,
        }
    }

    /// The template a line belongs to, learning it when there is room.
    fn template_of(&mut self, text: &str) -> Option<ClusterId> {
        if self.miner.len() < self.cfg.max_templates {
            return Some(self.miner.add(text).cluster_id);
        }
        let id = self.miner.match_only(text);
        self.full += u64::from(id.is_none());
        id
    }

    /// Judges one line of `host` written at `ts_ns` (the line's own time:
    /// rates per minute) and read at `read_ns` (the node's: learning);
    /// `stream` (its file, program and session) is the sequence its order
    /// is judged in.
    pub fn line(
        &mut self,
        host: &str,
        stream: Stream<'_>,
        text: &str,
        ts_ns: u64,
        read_ns: u64,
    ) -> Option<TemplateFinding> {
        let id = self.template_of(text)?;
        // A stream that begins in the host's first minute may have begun
        // before the reader saw it (a node starting, a file cut at a
        // phase): its first lines are not judged by their order.
        #[cfg(feature = "torch")]
        let order = {
            let judge_start = self
                .hosts
                .get(host)
                .and_then(|h| h.first_read_ns)
                .is_some_and(|first| read_ns.saturating_sub(first) >= STREAM_WARMUP_NS);
            self.sequence.as_mut().and_then(|s| {
                let program = stream.program.unwrap_or("");
                let key = stream.key(host);
                Some((s.next(&key, program, id, judge_start)?, s.top(program)))
            })
        };
        #[cfg(not(feature = "torch"))]
        let order: Option<(u32, usize)> = {
            let _ = stream;
            None
        };
        if !self.hosts.contains_key(host) && self.hosts.len() >= 65_536 {
            self.hosts.clear();
        }
        let h = self.hosts.entry(host.to_string()).or_default();
        let first = *h.first_read_ns.get_or_insert(read_ns);
        h.lines += 1;
        let learning = read_ns.saturating_sub(first) < self.cfg.learn_for.as_nanos() as u64
            || h.lines <= self.cfg.learn_lines;
        h.roll(minute_of(ts_ns), learning, self.cfg.max_templates);
        let name = match h.programs.len() < MAX_PROGRAMS {
            true => stream.program.unwrap_or(""),
            false => "",
        };
        let program = h.programs.entry(name.to_string()).or_default();
        let chance = program.new_shape_chance();
        program.count(id, self.known.contains_key(&id), self.cfg.max_templates);
        let n = {
            let c = h.this_minute.entry(id).or_default();
            *c += 1;
            *c
        };
        let new = h.seen.len() < self.cfg.max_templates && h.seen.insert(id);
        if learning {
            return None;
        }
        let known = self.known.get(&id).copied();
        if new && known.is_none() {
            // Unusual for its program (or a program not seen before), and
            // none raised for it within the period: raised.
            let every = self.cfg.new_template_every.as_nanos() as u64;
            let due = program
                .raised_ns
                .is_none_or(|at| read_ns.saturating_sub(at) >= every);
            if (chance <= self.cfg.new_shape_chance || program.lines == 1) && due {
                program.raised_ns = Some(read_ns);
                return Some(TemplateFinding {
                    kind: TemplateKind::NewTemplate,
                    template_id: id,
                    template: self.template_text(id),
                    value: chance,
                    normal: 0.0,
                    threshold: self.cfg.new_shape_chance,
                });
            }
            self.folded += 1;
            return None;
        }
        let normal = h
            .max_per_minute
            .get(&id)
            .copied()
            .unwrap_or(0)
            .max(known.unwrap_or(0));
        let threshold = (normal as f64 * self.cfg.rate_factor).max(self.cfg.min_rate as f64);
        if n as f64 > threshold && h.raised.insert(id) {
            return Some(TemplateFinding {
                kind: TemplateKind::TemplateRate,
                template_id: id,
                template: self.template_text(id),
                value: n as f64,
                normal: normal as f64,
                threshold,
            });
        }
        if let Some((rank, top)) = order {
            if rank as usize >= top && h.raised_order.insert(id) {
                return Some(TemplateFinding {
                    kind: TemplateKind::TemplateSequence,
                    template_id: id,
                    template: self.template_text(id),
                    value: f64::from(rank),
                    normal: 0.0,
                    threshold: top as f64,
                });
            }
        }
        None
    }

    fn template_text(&self, id: ClusterId) -> String {
        self.miner
            .cluster(id)
            .map(|c| c.template().to_string())
            .unwrap_or_default()
    }
}

/// Builds a model from lines `(mined text, timestamp ns)`, in any order
/// (several files may interleave in time).
pub struct Trainer {
    miner: Miner,
    similarity: f64,
    lines: u64,
    /// Lines per (minute, template).
    counts: HashMap<(u64, ClusterId), u32>,
}

impl Trainer {
    pub fn new(similarity: f64) -> Self {
        Self {
            miner: new_miner(similarity),
            similarity,
            lines: 0,
            counts: HashMap::new(),
        }
    }

    /// The template a line mined so far belongs to (a second pass over
    /// the lines gives each its final template).
    pub fn template_of(&self, text: &str) -> Option<ClusterId> {
        self.miner.match_only(text)
    }

    pub fn line(&mut self, text: &str, ts_ns: u64) {
        let id = self.miner.add(text).cluster_id;
        *self.counts.entry((minute_of(ts_ns), id)).or_default() += 1;
        self.lines += 1;
    }

    /// Lines and templates so far.
    pub fn progress(&self) -> (u64, usize) {
        (self.lines, self.miner.len())
    }

    pub fn finish(self) -> TemplateModel {
        let minutes: HashSet<u64> = self.counts.keys().map(|(m, _)| *m).collect();
        let mut max_per_minute: HashMap<ClusterId, u32> = HashMap::new();
        for ((_, id), n) in &self.counts {
            let m = max_per_minute.entry(*id).or_default();
            *m = (*m).max(*n);
        }
        let mut templates: Vec<TemplateStat> = self
            .miner
            .clusters()
            .into_iter()
            .map(|c| TemplateStat {
                id: c.id(),
                template: c.template().to_string(),
                lines: c.size(),
                max_per_minute: max_per_minute.get(&c.id()).copied().unwrap_or(0),
            })
            .collect();
        templates.sort_by(|a, b| b.lines.cmp(&a.lines).then(a.id.cmp(&b.id)));
        TemplateModel {
            version: MODEL_VERSION,
            similarity: self.similarity,
            miner: self.miner.snapshot(),
            templates,
            lines: self.lines,
            minutes: minutes.len() as u64,
            sequence: None,
            sequence_weights: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One file's lines, no program or session named.
    const LOG: Stream<'static> = Stream {
        file: "log",
        program: None,
        session: None,
    };

    const MIN: u64 = 60_000_000_000;

    fn cfg(learn_for: Duration) -> TemplateConfig {
        TemplateConfig {
            learn_for,
            learn_lines: 0,
            min_rate: 5,
            ..Default::default()
        }
    }

    fn sshd(user: &str, ip: &str, port: u16) -> String {
        mined_text(
            Some("sshd"),
            &format!("Accepted publickey for {user} from {ip} port {port} ssh2"),
        )
    }

    #[test]
    fn a_host_learns_then_a_new_shape_is_one_finding() {
        let mut t = Templates::new(cfg(Duration::from_secs(60)), None);
        for i in 0..20u64 {
            let l = sshd("alice", "10.0.0.1", 40000 + i as u16);
            assert_eq!(
                t.line("h1", LOG, &l, i * 1_000_000_000, i * 1_000_000_000),
                None
            );
        }
        // After learning: the same shape with other values is nothing...
        let l = sshd("bob", "10.9.9.9", 5555);
        assert_eq!(t.line("h1", LOG, &l, 2 * MIN, 2 * MIN), None);
        // ...a new one is found once.
        let odd = mined_text(
            Some("kernel"),
            "segfault at 0 ip 00007f sp 00007ffd error 4 in libc.so.6",
        );
        let f = t
            .line("h1", LOG, &odd, 2 * MIN + 1, 2 * MIN + 1)
            .expect("a new template");
        assert_eq!(f.kind, TemplateKind::NewTemplate);
        assert!(f.template.starts_with("kernel: segfault"), "{}", f.template);
        assert_eq!(t.line("h1", LOG, &odd, 2 * MIN + 2, 2 * MIN + 2), None);
        // Another host is learning still.
        assert_eq!(t.line("h2", LOG, &odd, 2 * MIN + 3, 2 * MIN + 3), None);
    }

    #[test]
    fn a_minute_far_above_the_largest_is_one_finding() {
        let mut t = Templates::new(cfg(Duration::from_secs(120)), None);
        // Two learning minutes with 3 lines each.
        for m in 0..2 {
            for i in 0..3 {
                t.line(
                    "h",
                    LOG,
                    &sshd("alice", "10.0.0.1", 1000 + i),
                    m * MIN + i as u64,
                    m * MIN + i as u64,
                );
            }
        }
        // 30 = 10 × 3 is in range; the 31st is not, and raises once.
        let mut found = vec![];
        for i in 0..40u64 {
            if let Some(f) = t.line(
                "h",
                LOG,
                &sshd("eve", "10.0.0.7", 2000),
                3 * MIN + i,
                3 * MIN + i,
            ) {
                found.push((i, f));
            }
        }
        assert_eq!(found.len(), 1, "{found:?}");
        let (i, f) = &found[0];
        assert_eq!(*i, 30);
        assert_eq!(f.kind, TemplateKind::TemplateRate);
        assert_eq!((f.value, f.normal, f.threshold), (31.0, 3.0, 30.0));
    }

    /// After learning, a new shape is raised when its program rarely
    /// writes new ones (cron's three shapes), not when it often does (a
    /// kernel's one-off messages); a program's new shapes are one alert per
    /// `new_template_every`; a program never seen before is new. Learning
    /// lasts `learn_for` of the node's time and `learn_lines` lines.
    #[test]
    fn a_new_shape_is_judged_by_how_often_its_program_writes_new_ones() {
        const DAY: u64 = 86_400_000_000_000;
        let mut t = Templates::new(
            TemplateConfig {
                learn_lines: 300,
                ..cfg(Duration::from_secs(60))
            },
            None,
        );
        let of = |program| Stream {
            program: Some(program),
            ..LOG
        };
        let cron = |i: u64| {
            let what = ["backup started", "backup finished", "rotating the logs"][i as usize % 3];
            mined_text(Some("cron"), &format!("({}) job {what}", i % 7))
        };
        // One-off messages: each of its own length, so its own shape.
        let kernel = |i: u64| mined_text(Some("kernel"), &"x ".repeat(i as usize + 1));
        // Learning: 10 minutes of the node's time (> 60 s), 300 lines.
        for i in 0..150u64 {
            let at = i * 4_000_000_000;
            assert_eq!(t.line("h", of("cron"), &cron(i), at, at), None);
            assert_eq!(t.line("h", of("kernel"), &kernel(i), at, at), None);
        }
        let at = 11 * MIN;
        let novel = mined_text(Some("kernel"), &"y ".repeat(400));
        assert_eq!(
            t.line("h", of("kernel"), &novel, at, at),
            None,
            "kernel writes new shapes all the time"
        );
        let odd = mined_text(
            Some("cron"),
            "pam_unix(crond:auth): authentication failure; logname= uid=0",
        );
        let f = t
            .line("h", of("cron"), &odd, at + 1, at + 1)
            .expect("cron rarely writes a new shape");
        assert_eq!(f.kind, TemplateKind::NewTemplate);
        assert!(f.value <= 0.01, "{f:?}");
        let odd2 = mined_text(Some("cron"), "ORPHAN (no passwd entry) for user zz");
        assert_eq!(
            t.line("h", of("cron"), &odd2, at + 2, at + 2),
            None,
            "one per day per program"
        );
        // A day of cron's usual lines; then another new shape.
        for i in 0..100u64 {
            let at = at + 3 + i * 600_000_000_000;
            assert_eq!(t.line("h", of("cron"), &cron(i), at, at), None);
        }
        let odd3 = mined_text(Some("cron"), "error: cannot open spool directory now");
        assert!(
            t.line("h", of("cron"), &odd3, at + 1 + DAY, at + 1 + DAY)
                .is_some(),
            "a day later"
        );
        let ftp = mined_text(Some("ftpd"), "connection from 10.0.0.9 at Sun Jul 24");
        assert!(
            t.line("h", of("ftpd"), &ftp, at + 3, at + 3).is_some(),
            "a new program"
        );
        assert_eq!(t.folded, 2);
    }

    #[test]
    fn a_trained_model_is_known_from_the_start_and_round_trips() {
        let mut tr = Trainer::new(0.4);
        for i in 0..100u64 {
            tr.line(&sshd("alice", "10.0.0.1", i as u16), i * 10_000_000_000);
        }
        let model = tr.finish();
        assert_eq!(model.lines, 100);
        assert_eq!(model.minutes, 17);
        assert_eq!(model.templates.len(), 1);
        assert_eq!(model.templates[0].max_per_minute, 6);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.bin");
        model.save(&p).unwrap();
        let back = TemplateModel::load(&p).unwrap();
        let mut t = Templates::new(cfg(Duration::ZERO), Some(back));
        let sshd_stream = Stream {
            program: Some("sshd"),
            ..LOG
        };
        let carol = sshd("carol", "10.1.1.1", 9);
        assert_eq!(t.line("h", sshd_stream, &carol, 0, 0), None);
        let odd = mined_text(Some("useradd"), "new user: name=backdoor, UID=0, GID=0");
        let useradd = Stream {
            program: Some("useradd"),
            ..LOG
        };
        assert_eq!(
            t.line("h", useradd, &odd, 1, 1).map(|f| f.kind),
            Some(TemplateKind::NewTemplate)
        );
        std::fs::write(&p, b"\x93garbage").unwrap();
        assert!(matches!(
            TemplateModel::load(&p),
            Err(TemplateError::Format { .. })
        ));
    }

    #[test]
    fn the_miner_is_bounded() {
        let mut t = Templates::new(
            TemplateConfig {
                max_templates: 3,
                learn_for: Duration::ZERO,
                ..Default::default()
            },
            None,
        );
        for i in 0..10 {
            let words: String = (0..=i).map(|k| format!("w{k}x ")).collect();
            t.line("h", LOG, &words, i, i);
        }
        assert!(t.miner.len() <= 3);
        assert_eq!(t.full, 7);
    }
}
