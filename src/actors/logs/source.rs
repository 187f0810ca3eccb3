//! Log sources (collector side): every `[[log_source]]` of the config, in
//! one actor.
//!
//! A `file` source follows its glob patterns with a [`Tailer`] (rotation
//! by rename or copytruncate, bounded lines, positions in a registry
//! file). A `journal` source runs `journalctl -o json --follow` (on the
//! system journal, or on the journal files `journal` names) and keeps the
//! cursor of the last entry it handed on. Every `poll`, what the sources
//! gained leaves as `LogBatch`es of at most `max_batch` lines, through the
//! outbound actor with backpressure; only once the outbound actor took a
//! batch are its positions committed, and the registry is written then:
//! a graceful restart neither loses nor repeats a line.

use crate::actors::runtime::mailbox::Edge;
use crate::actors::runtime::supervision::{fail, Restarts};
use crate::actors::runtime::{
    drained_after, now_ns, on_start, Drain, DrainReply, NodeActor, NodeInfo,
};
use crate::actors::transport::Publish;
use crate::config::validate::{ConfigError, Validate};
use crate::logs::tail::{FileId, TailConfig, TailCounters, TailError, Tailer};
use crate::messages::{LogBatch, LogLine, Payload};
use crate::metrics::Counter;
use actix::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

/// What a log source reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LogSourceKind {
    /// Files named by `paths` (globs).
    #[default]
    File,
    /// The systemd journal, through `journalctl`.
    Journal,
}

/// One `[[log_source]]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LogSourceConfig {
    /// Names the source in its lines and its registry file; unique.
    pub name: String,
    /// `file` or `journal`.
    pub kind: LogSourceKind,
    /// `file`: glob patterns of the files to follow.
    pub paths: Vec<String>,
    /// `journal`: a journal file or directory to read instead of the
    /// system journal (`journalctl --file` / `--directory`).
    pub journal: Option<PathBuf>,
    /// The program that writes lines carrying no syslog header (e.g.
    /// `sshd` for sshd's own `-E` log file).
    pub program: Option<String>,
    /// A file (or journal) never read before is read from its start;
    /// else only what is written from now on.
    pub from_start: bool,
    /// Read a file that is a symbolic link out of its directory (off: it
    /// is left alone and counted, `log_source.symlinks_refused`).
    pub follow_symlinks: bool,
    /// Where read positions are kept (`<registry_dir>/<name>.json`, a
    /// journal's cursor in `<name>.cursor`).
    pub registry_dir: PathBuf,
    /// The longest line kept (bytes); longer ones are cut and counted.
    pub max_line: usize,
    /// How often files are looked at.
    #[serde(with = "humantime_serde")]
    pub poll: Duration,
    /// Most lines in one message.
    pub max_batch: usize,
}

impl Default for LogSourceConfig {
    fn default() -> Self {
        Self {
            name: String::new(),
            kind: LogSourceKind::File,
            paths: Vec::new(),
            journal: None,
            program: None,
            from_start: false,
            follow_symlinks: false,
            registry_dir: PathBuf::from("/var/lib/daisi/logs"),
            max_line: 16 * 1024,
            poll: Duration::from_millis(250),
            max_batch: 1000,
        }
    }
}

/// The `[[log_source]]` entries.
pub type LogSourcesConfig = Vec<LogSourceConfig>;

/// Checks every source (names unique, what each kind needs).
pub fn validate_sources(sources: &[LogSourceConfig], errors: &mut Vec<ConfigError>) {
    let mut names = HashSet::new();
    for (i, s) in sources.iter().enumerate() {
        let path = format!("log_source.{i}");
        if s.name.is_empty()
            || !s
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            errors.push(ConfigError::new(
                format!("{path}.name"),
                "must be set, with letters, digits, '-' and '_' only",
            ));
        } else if !names.insert(&s.name) {
            errors.push(ConfigError::new(
                format!("{path}.name"),
                format!("{:?} names two sources", s.name),
            ));
        }
        match s.kind {
            LogSourceKind::File if s.paths.is_empty() => errors.push(ConfigError::new(
                format!("{path}.paths"),
                "a file source needs at least one path",
            )),
            LogSourceKind::Journal if !s.paths.is_empty() => errors.push(ConfigError::new(
                format!("{path}.paths"),
                "a journal source reads `journal`, not paths",
            )),
            _ => {}
        }
        if s.max_line < 64 {
            errors.push(ConfigError::new(
                format!("{path}.max_line"),
                "must be at least 64",
            ));
        }
        if s.max_batch == 0 {
            errors.push(ConfigError::new(
                format!("{path}.max_batch"),
                "must be at least 1",
            ));
        }
        if s.poll.is_zero() {
            errors.push(ConfigError::new(format!("{path}.poll"), "must be above 0"));
        }
    }
}

impl Validate for LogSourcesConfig {
    fn validate(&self, _: &str, errors: &mut Vec<ConfigError>) {
        validate_sources(self, errors);
    }
}

/// Why a log source cannot start.
#[derive(Debug, thiserror::Error)]
pub enum LogSourceError {
    #[error("log source {name}: {source}")]
    Tail { name: String, source: TailError },
    #[error("log source {name}: registry directory {dir}: {source}")]
    RegistryDir {
        name: String,
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "log source {name}: journalctl cannot run ({source}); install systemd or remove the source"
    )]
    Journalctl {
        name: String,
        source: std::io::Error,
    },
    #[error("log source {name}: journal {path} does not exist")]
    NoJournal { name: String, path: PathBuf },
}

/// Secrets out of a journal entry (JSON): its message and the command
/// line journald recorded, the fields a process controls. True when
/// something was redacted.
fn redact_journal(r: &crate::redact::Redaction, entry: &mut String) -> bool {
    let Ok(serde_json::Value::Object(mut fields)) = serde_json::from_str(entry) else {
        return false;
    };
    let mut changed = false;
    for key in ["MESSAGE", "_CMDLINE"] {
        if let Some(serde_json::Value::String(v)) = fields.get_mut(key) {
            changed |= r.text(v);
        }
    }
    if changed {
        *entry = serde_json::Value::Object(fields).to_string();
    }
    changed
}

/// A journal source's state: its reader feeds lines through a bounded
/// channel; the cursor of the last entry handed on is saved.
struct Journal {
    cursor_file: PathBuf,
    /// The cursor saved (or to save).
    cursor: Option<String>,
    rx: Option<tokio::sync::mpsc::Receiver<String>>,
    child: Option<tokio::process::Child>,
}

/// One source, opened.
struct Source {
    cfg: LogSourceConfig,
    tailer: Option<Tailer>,
    journal: Option<Journal>,
    /// Tail counters already added to the node's counters.
    counted: TailCounters,
}

/// What `prepare` opened: every source.
pub struct OpenSources(Vec<Source>, crate::redact::Redaction);

impl OpenSources {
    /// Opens the sources: registries loaded, patterns checked, journal
    /// reader present.
    /// `redact`: the patterns secrets in lines are found by (the
    /// collector's `[syscall_source] redact`, `crate::redact`).
    pub fn open(
        cfgs: &[LogSourceConfig],
        redact: &[String],
    ) -> Result<OpenSources, LogSourceError> {
        let mut out = Vec::new();
        for cfg in cfgs {
            crate::files::create_dir(&cfg.registry_dir).map_err(|source| {
                LogSourceError::RegistryDir {
                    name: cfg.name.clone(),
                    dir: cfg.registry_dir.clone(),
                    source,
                }
            })?;
            let mut s = Source {
                cfg: cfg.clone(),
                tailer: None,
                journal: None,
                counted: TailCounters::default(),
            };
            match cfg.kind {
                LogSourceKind::File => {
                    s.tailer = Some(
                        Tailer::new(TailConfig {
                            paths: cfg.paths.clone(),
                            registry: cfg.registry_dir.join(format!("{}.json", cfg.name)),
                            max_line: cfg.max_line,
                            read_chunk: 1 << 20,
                            from_start: cfg.from_start,
                            follow_symlinks: cfg.follow_symlinks,
                        })
                        .map_err(|source| LogSourceError::Tail {
                            name: cfg.name.clone(),
                            source,
                        })?,
                    );
                }
                LogSourceKind::Journal => {
                    if let Some(p) = &cfg.journal {
                        if !p.exists() {
                            return Err(LogSourceError::NoJournal {
                                name: cfg.name.clone(),
                                path: p.clone(),
                            });
                        }
                    }
                    std::process::Command::new("journalctl")
                        .arg("--version")
                        .stdout(std::process::Stdio::null())
                        .status()
                        .map_err(|source| LogSourceError::Journalctl {
                            name: cfg.name.clone(),
                            source,
                        })?;
                    let cursor_file = cfg.registry_dir.join(format!("{}.cursor", cfg.name));
                    let cursor = std::fs::read_to_string(&cursor_file)
                        .ok()
                        .map(|c| c.trim().to_string())
                        .filter(|c| !c.is_empty());
                    s.journal = Some(Journal {
                        cursor_file,
                        cursor,
                        rx: None,
                        child: None,
                    });
                }
            }
            out.push(s);
        }
        Ok(OpenSources(out, crate::redact::Redaction::new(redact)))
    }
}

/// Lines taken from one source, and the positions they reach.
struct Taken {
    source: usize,
    lines: Vec<LogLine>,
    /// Files: the last line's position per file.
    files: HashMap<FileId, crate::logs::tail::Line>,
    /// Journal: the last entry's cursor.
    cursor: Option<String>,
}

/// The log-source actor.
pub struct LogSource {
    sources: Vec<Source>,
    /// Secrets out of file lines before they leave the host.
    redaction: crate::redact::Redaction,
    redacted: Counter,
    node: NodeInfo,
    out: Edge<Publish>,
    restarts: Restarts,
    lines: Counter,
    bytes: Counter,
    cut: Counter,
    truncations: Counter,
    rotations: Counter,
    read_errors: Counter,
    registry_errors: Counter,
    journal_restarts: Counter,
    symlinks_refused: Counter,
}

/// The longest a journal entry's line may be before it is dropped whole
/// (a JSON object cut in the middle says nothing), counted as cut.
const JOURNAL_LINE_MAX: usize = 64 * 1024;

impl LogSource {
    pub fn new(node: NodeInfo, out: Edge<Publish>, open: OpenSources) -> Self {
        let m = &node.metrics;
        Self {
            sources: open.0,
            redaction: open.1,
            redacted: m.counter("log_source.redacted"),
            restarts: Restarts::new(Self::NAME, m),
            lines: m.counter("log_source.lines"),
            bytes: m.counter("log_source.bytes"),
            cut: m.counter("log_source.cut_lines"),
            truncations: m.counter("log_source.truncations"),
            rotations: m.counter("log_source.rotations"),
            read_errors: m.counter("log_source.read_errors"),
            registry_errors: m.counter("log_source.registry_errors"),
            journal_restarts: m.counter("log_source.journal_restarts"),
            symlinks_refused: m.counter("log_source.symlinks_refused"),
            node,
            out,
        }
    }

    /// Starts (or restarts) the journal readers that are not running.
    fn start_journals(&mut self) {
        for s in &mut self.sources {
            let Some(j) = s.journal.as_mut() else {
                continue;
            };
            if j.child.is_some() {
                continue;
            }
            let mut cmd = tokio::process::Command::new("journalctl");
            cmd.args(["-o", "json", "--follow", "--no-pager", "--quiet"]);
            match &s.cfg.journal {
                Some(p) if p.is_dir() => {
                    cmd.arg("--directory").arg(p);
                }
                Some(p) => {
                    cmd.arg("--file").arg(p);
                }
                None => {}
            }
            match &j.cursor {
                Some(c) => {
                    cmd.arg(format!("--after-cursor={c}"));
                }
                None if s.cfg.from_start => {
                    cmd.arg("--no-tail");
                }
                None => {
                    cmd.args(["--lines", "0"]);
                }
            }
            cmd.stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null())
                .stdin(std::process::Stdio::null())
                .kill_on_drop(true);
            let mut child = match cmd.spawn() {
                Ok(c) => c,
                Err(e) => {
                    self.read_errors.inc();
                    tracing::error!(source = %s.cfg.name, error = %e, "journalctl did not start");
                    continue;
                }
            };
            let stdout = child.stdout.take().expect("piped");
            let (tx, rx) = tokio::sync::mpsc::channel(4 * s.cfg.max_batch);
            let name = s.cfg.name.clone();
            actix::spawn(async move {
                use tokio::io::{AsyncBufReadExt, AsyncReadExt};
                let mut r = tokio::io::BufReader::new(stdout);
                let mut buf = Vec::new();
                loop {
                    buf.clear();
                    // Bounded: a line past the limit is read and dropped.
                    match (&mut r)
                        .take(JOURNAL_LINE_MAX as u64 + 1)
                        .read_until(b'\n', &mut buf)
                        .await
                    {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {}
                    }
                    if buf.last() != Some(&b'\n') {
                        if buf.len() > JOURNAL_LINE_MAX {
                            tracing::warn!(source = %name, "journal entry too long; skipped");
                            // Skip to the end of this entry.
                            let mut rest = Vec::new();
                            if r.read_until(b'\n', &mut rest).await.unwrap_or(0) == 0 {
                                break;
                            }
                            let _ = tx.send(String::new()).await;
                            continue;
                        }
                        break;
                    }
                    let line = String::from_utf8_lossy(&buf[..buf.len() - 1]).into_owned();
                    if tx.send(line).await.is_err() {
                        break;
                    }
                }
            });
            j.rx = Some(rx);
            j.child = Some(child);
        }
    }

    /// What every source gained, as batches with the positions they reach.
    fn take(&mut self) -> Vec<Taken> {
        let now = now_ns();
        let mut out = Vec::new();
        for (i, s) in self.sources.iter_mut().enumerate() {
            let program = s.cfg.program.clone();
            let mut taken = Taken {
                source: i,
                lines: Vec::new(),
                files: HashMap::new(),
                cursor: None,
            };
            if let Some(t) = s.tailer.as_mut() {
                let mut paths: HashMap<FileId, String> = HashMap::new();
                for mut l in t.poll() {
                    let path = paths
                        .entry(l.file)
                        .or_insert_with(|| l.path.to_string_lossy().into_owned());
                    let mut text = std::mem::take(&mut l.text);
                    if self.redaction.text(&mut text) {
                        self.redacted.inc();
                    }
                    taken.lines.push(LogLine {
                        source: s.cfg.name.clone(),
                        path: path.clone(),
                        read_ns: now,
                        text,
                        cut: l.cut,
                        program: program.clone(),
                    });
                    // The position reached (the text is on its way).
                    taken.files.insert(l.file, l);
                }
                let c = t.counters;
                for (now, before, counter) in [
                    (c.lines, s.counted.lines, &self.lines),
                    (c.bytes, s.counted.bytes, &self.bytes),
                    (c.cut, s.counted.cut, &self.cut),
                    (c.truncations, s.counted.truncations, &self.truncations),
                    (c.rotations, s.counted.rotations, &self.rotations),
                    (c.read_errors, s.counted.read_errors, &self.read_errors),
                    (
                        c.symlinks_refused,
                        s.counted.symlinks_refused,
                        &self.symlinks_refused,
                    ),
                ] {
                    counter.add(now.saturating_sub(before));
                }
                s.counted = c;
            }
            if let Some(j) = s.journal.as_mut() {
                let mut ended = false;
                if let Some(rx) = j.rx.as_mut() {
                    loop {
                        match rx.try_recv() {
                            Ok(text) if text.is_empty() => self.cut.inc(),
                            Ok(mut text) => {
                                self.lines.inc();
                                self.bytes.add(text.len() as u64 + 1);
                                if let Some(c) = cursor_of(&text) {
                                    taken.cursor = Some(c);
                                }
                                if redact_journal(&self.redaction, &mut text) {
                                    self.redacted.inc();
                                }
                                taken.lines.push(LogLine {
                                    source: s.cfg.name.clone(),
                                    path: "journal".into(),
                                    read_ns: now,
                                    text,
                                    cut: false,
                                    program: program.clone(),
                                });
                            }
                            Err(tokio::sync::mpsc::error::TryRecvError::Empty) => break,
                            Err(tokio::sync::mpsc::error::TryRecvError::Disconnected) => {
                                ended = true;
                                break;
                            }
                        }
                    }
                }
                if ended {
                    // journalctl ended: started again (after the cursor
                    // handed on) at the next poll.
                    self.journal_restarts.inc();
                    tracing::warn!(source = %s.cfg.name, "journalctl ended; restarting it");
                    j.rx = None;
                    j.child = None;
                    if let Some(c) = &taken.cursor {
                        j.cursor = Some(c.clone());
                    }
                }
            }
            if !taken.lines.is_empty() {
                out.push(taken);
            }
        }
        out
    }

    /// Hands what the sources gained to the outbound actor, then commits
    /// the positions and writes the registries.
    fn handoff(&mut self) -> impl ActorFuture<Self, Output = ()> {
        let mut taken = self.take();
        let out = self.out.clone();
        let host = self.node.host.clone();
        let mut batches: Vec<Vec<LogLine>> = Vec::new();
        for t in &mut taken {
            let max = self.sources[t.source].cfg.max_batch;
            let mut lines = std::mem::take(&mut t.lines);
            while !lines.is_empty() {
                let rest = lines.split_off(lines.len().min(max));
                batches.push(std::mem::replace(&mut lines, rest));
            }
        }
        async move {
            for lines in batches {
                out.push(Publish(Payload::LogBatch(LogBatch {
                    host: host.clone(),
                    lines,
                })))
                .await?;
            }
            Ok::<(), crate::actors::runtime::mailbox::EdgeClosed>(())
        }
        .into_actor(self)
        .map(move |r, a, ctx| {
            if let Err(e) = r {
                fail(Self::NAME, ctx, e);
                return;
            }
            for t in taken {
                let s = &mut a.sources[t.source];
                if let Some(tailer) = s.tailer.as_mut() {
                    for l in t.files.values() {
                        tailer.commit(l);
                    }
                }
                if let (Some(j), Some(c)) = (s.journal.as_mut(), t.cursor) {
                    j.cursor = Some(c);
                }
            }
            a.save();
        })
    }

    /// Writes the registries (positions moved since the last save).
    fn save(&mut self) {
        for s in &mut self.sources {
            if let Some(t) = s.tailer.as_mut() {
                if let Err(e) = t.save() {
                    self.registry_errors.inc();
                    tracing::error!(source = %s.cfg.name, error = %e, "registry not written");
                }
            }
            if let Some(j) = s.journal.as_ref() {
                if let Some(c) = &j.cursor {
                    let r = crate::files::write_atomic(&j.cursor_file, c.as_bytes());
                    if let Err(e) = r {
                        self.registry_errors.inc();
                        tracing::error!(source = %s.cfg.name, error = %e, "journal cursor not written");
                    }
                }
            }
        }
    }
}

/// The `__CURSOR` of a journal entry's JSON line.
fn cursor_of(line: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Entry {
        #[serde(rename = "__CURSOR")]
        cursor: String,
    }
    serde_json::from_str::<Entry>(line).ok().map(|e| e.cursor)
}

impl NodeActor for LogSource {
    const NAME: &'static str = "log_source";
    type Config = LogSourcesConfig;
    type Prepared = OpenSources;
    type Links = Edge<Publish>;
    type Error = LogSourceError;

    fn section(cfg: &crate::config::Config) -> &LogSourcesConfig {
        &cfg.log_source
    }
    /// Registries loaded, patterns checked, journalctl present.
    async fn prepare(
        cfg: &crate::config::Config,
        _: &NodeInfo,
    ) -> Result<OpenSources, LogSourceError> {
        let open = OpenSources::open(&cfg.log_source, &cfg.syscall_source.redact)?;
        for s in &open.0 {
            tracing::info!(source = %s.cfg.name, kind = ?s.cfg.kind, paths = ?s.cfg.paths, journal = ?s.cfg.journal, "log source open");
        }
        Ok(open)
    }
    fn create(_: LogSourcesConfig, node: &NodeInfo, open: OpenSources, out: Edge<Publish>) -> Self {
        Self::new(node.clone(), out, open)
    }
    /// Nothing is sent to it but control messages.
    fn mailbox_capacity(&self) -> usize {
        16
    }
    /// A restart starts the journal readers again (after the cursor).
    fn on_restart(&mut self) {
        for s in &mut self.sources {
            if let Some(j) = s.journal.as_mut() {
                j.rx = None;
                j.child = None;
            }
        }
    }
}

crate::supervised!(LogSource);

impl Actor for LogSource {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Context<Self>) {
        on_start(self, ctx);
        let poll = self
            .sources
            .iter()
            .map(|s| s.cfg.poll)
            .min()
            .unwrap_or(Duration::from_millis(250));
        self.next(ctx, poll, poll);
    }
}

impl LogSource {
    /// Hands on what the sources gained after `after`, then again: at once
    /// while a file has more than one read took (a backlog is read as
    /// fast as the outbound actor takes it), else after `poll`.
    fn next(&mut self, ctx: &mut Context<Self>, after: Duration, poll: Duration) {
        ctx.run_later(after, move |a, ctx| {
            a.start_journals();
            let handoff = a.handoff().map(move |_, a: &mut Self, ctx| {
                let behind = a
                    .sources
                    .iter()
                    .any(|s| s.tailer.as_ref().is_some_and(Tailer::behind));
                a.next(ctx, if behind { Duration::ZERO } else { poll }, poll);
            });
            ctx.wait(handoff);
        });
    }
}

/// Graceful stop: what the sources hold is handed on and committed; the
/// journal readers end.
impl Handler<Drain> for LogSource {
    type Result = DrainReply<Self>;
    fn handle(&mut self, _: Drain, _: &mut Context<Self>) -> Self::Result {
        let handoff = self.handoff().map(|_, a: &mut Self, _| {
            for s in &mut a.sources {
                if let Some(j) = s.journal.as_mut() {
                    j.rx = None;
                    j.child = None; // kill_on_drop
                }
            }
        });
        drained_after(handoff)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A journal entry's message and command line are redacted (the
    /// shipped patterns and the forms redaction knows by program), its
    /// other fields (the cursor) kept, and it stays JSON.
    #[test]
    fn journal_entries_are_redacted() {
        let r =
            crate::redact::Redaction::new(&crate::config::Config::default().syscall_source.redact);
        let mut e = serde_json::json!({
            "__CURSOR": "s=abc;i=1",
            "MESSAGE": "sudo: alice : COMMAND=/usr/bin/mysql -pSECRET",
            "_CMDLINE": "curl -u admin:hunter2 http://x",
            "_PID": "42",
        })
        .to_string();
        assert!(redact_journal(&r, &mut e));
        assert!(!e.contains("SECRET") && !e.contains("hunter2"), "{e}");
        let v: serde_json::Value = serde_json::from_str(&e).unwrap();
        assert_eq!(v["__CURSOR"], "s=abc;i=1");
        let mut plain = serde_json::json!({"MESSAGE": "started"}).to_string();
        assert!(!redact_journal(&r, &mut plain));
    }
}
