//! Syscall capture: the first stage of the collector.
//!
//! Sources produce [`ProcessCalls`] (internal type: one process's new calls)
//! into the batcher's mailbox through a blocking edge, so a slow pipeline
//! slows capture down instead of growing memory. Kinds:
//!
//! - `ebpf`: live, system-wide capture in the kernel (`crate::capture::ebpf`)
//!   of the processes named by `all`, `pids`, `comms` or `cgroups`; children
//!   of watched processes are watched too.
//! - `replay`: ADFA-LD-style trace files (a directory or zip), each file
//!   replayed as one process that exits at the end of its file. Used for
//!   evaluation, demos and tests, through the same actors as live capture.
//! - `none`: no syscall capture on this node.

use super::processes::{ProcessTable, Redaction};
use crate::actors::runtime::mailbox::Edge;
use crate::actors::runtime::supervision::Restarts;
use crate::actors::runtime::{drained_when, on_start, until_done, Drain, NodeActor, NodeInfo};
use crate::capture::ebpf::{
    ArgCall, Args, Capture, CaptureError, CaptureEvent, Chunk, Dir, Targets,
};
use crate::config::validate::{ConfigError, Validate};
use crate::messages::{Activity, ActivityEvent, ProcessInfo, SyscallAbi, SyscallEvent};
use crate::traces::{for_each_trace, Trace};
use actix::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

/// Which capture source runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// No syscall capture.
    #[default]
    None,
    /// Replay trace files (`path`).
    Replay,
    /// Live capture with eBPF (needs root or CAP_BPF + CAP_PERFMON).
    Ebpf,
}

/// `[syscall_source]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SyscallSourceConfig {
    /// `ebpf`, `replay` or `none`.
    pub kind: SourceKind,
    /// ebpf: watch every process (but daisi itself).
    pub all: bool,
    /// ebpf: watch these processes and their children.
    pub pids: Vec<u32>,
    /// ebpf: watch processes with these names (kernel comm, ≤ 15 bytes),
    /// running or started later, and their children.
    pub comms: Vec<String>,
    /// ebpf: watch processes in these cgroup v2 directories (containers).
    pub cgroups: Vec<PathBuf>,
    /// ebpf: chunks of events buffered between the kernel reader and this
    /// actor; beyond it chunks are dropped and counted.
    pub channel: usize,
    /// replay: directory or `.zip` of trace files.
    pub path: Option<PathBuf>,
    /// replay: only files whose path contains this text (e.g.
    /// `Attack_Data_Master/`); empty = all.
    pub filter: String,
    /// replay: ABI of the numbers in the files (`i386` for ADFA-LD).
    pub abi: SyscallAbi,
    /// replay: stop after this many traces (0 = all).
    pub max_traces: usize,
    /// replay: start over at the end (until the node stops).
    pub repeat: bool,
    /// replay: traces per second (0 = as fast as the pipeline takes them).
    pub traces_per_second: f64,
    /// Calls per message handed to the batcher.
    pub chunk: usize,
    /// ebpf: processes the collector's table remembers (name, executable,
    /// arguments, user, parent), least recently seen forgotten first.
    pub processes: usize,
    /// ebpf: ancestors each batch names (parent, grandparent...).
    pub ancestors: usize,
    /// ebpf: arguments that hold secrets, rewritten to `<redacted>` before
    /// they leave the host: `NAME=*` redacts the value of `NAME=...` (an
    /// argument, or a URL query parameter); `NAME` redacts the argument
    /// after it. A URL's `user:password@` password always is.
    pub redact: Vec<String>,
    /// ebpf: the calls whose arguments are captured for host baselines
    /// (`open`, `connect`, `bind`, `accept`, `setuid`, `ptrace`, `modules`,
    /// `mount`, `memfd`, `unlink`, `rename`); every call is counted either
    /// way. Default: all of them.
    pub arguments: Vec<ArgCall>,
    /// ebpf: `unlink` and `rename` are reported under these directories
    /// only (deleting logs, replacing binaries, planting cron jobs).
    pub watched_paths: Vec<PathBuf>,
    /// ebpf: container engines' stores, where a container's image is
    /// looked up (podman's containers/storage root, docker's data root;
    /// alerts carry `container.image.name`, baselines key a container's
    /// programs by image).
    pub container_stores: Vec<PathBuf>,
}

impl Default for SyscallSourceConfig {
    fn default() -> Self {
        Self {
            kind: SourceKind::None,
            all: false,
            pids: Vec::new(),
            comms: Vec::new(),
            cgroups: Vec::new(),
            channel: 1024,
            path: None,
            filter: String::new(),
            abi: SyscallAbi::I386,
            max_traces: 0,
            repeat: false,
            traces_per_second: 0.0,
            chunk: 512,
            processes: 16_384,
            ancestors: 4,
            redact: [
                "--password=*",
                "--password",
                "--passwd=*",
                "--token=*",
                "--token",
                "--secret=*",
                "--api-key=*",
                "--access-key=*",
                "password=*",
                "token=*",
                "access_token=*",
                "api_key=*",
            ]
            .map(String::from)
            .to_vec(),
            arguments: ArgCall::ALL.to_vec(),
            watched_paths: [
                "/etc",
                "/bin",
                "/sbin",
                "/usr",
                "/lib",
                "/boot",
                "/root",
                "/home",
                "/var/log",
                "/var/spool/cron",
            ]
            .map(PathBuf::from)
            .to_vec(),
            container_stores: ["/var/lib/containers/storage", "/var/lib/docker"]
                .map(PathBuf::from)
                .to_vec(),
        }
    }
}

impl Validate for SyscallSourceConfig {
    fn validate(&self, path: &str, errors: &mut Vec<ConfigError>) {
        if self.kind == SourceKind::Replay {
            match &self.path {
                None => errors.push(ConfigError::new(
                    format!("{path}.path"),
                    "replay needs a directory or .zip of trace files",
                )),
                Some(p) if !p.exists() => errors.push(ConfigError::new(
                    format!("{path}.path"),
                    format!("{} does not exist", p.display()),
                )),
                _ => {}
            }
        }
        if self.kind == SourceKind::Ebpf {
            if !self.all && self.pids.is_empty() && self.comms.is_empty() && self.cgroups.is_empty()
            {
                errors.push(ConfigError::new(
                    path,
                    "ebpf needs targets: all = true, or pids, comms or cgroups",
                ));
            }
            for (i, c) in self.comms.iter().enumerate() {
                if c.is_empty() || c.len() > 15 {
                    errors.push(ConfigError::new(
                        format!("{path}.comms.{i}"),
                        "a comm is 1 to 15 bytes",
                    ));
                }
            }
            for (i, c) in self.cgroups.iter().enumerate() {
                if !c.is_dir() {
                    errors.push(ConfigError::new(
                        format!("{path}.cgroups.{i}"),
                        format!("{} is not a cgroup directory", c.display()),
                    ));
                }
            }
            if self.channel == 0 {
                errors.push(ConfigError::new(
                    format!("{path}.channel"),
                    "must be at least 1",
                ));
            }
            if !cfg!(target_arch = "x86_64") {
                errors.push(ConfigError::new(
                    format!("{path}.kind"),
                    "live capture supports x86_64 hosts only",
                ));
            }
        }
        crate::config::validate::at_least_one(
            path,
            &[("chunk", self.chunk), ("processes", self.processes)],
            errors,
        );
        if !(self.traces_per_second >= 0.0 && self.traces_per_second.is_finite()) {
            errors.push(ConfigError::new(
                format!("{path}.traces_per_second"),
                "must be 0 or positive",
            ));
        }
    }
}

/// New calls of one process (internal; the batcher turns these into wire
/// `SyscallBatch`es).
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct ProcessCalls {
    pub pid: u32,
    pub tid: u32,
    pub comm: String,
    pub exe: Option<String>,
    pub abi: SyscallAbi,
    /// The process and its ancestors, as the collector knows them (live
    /// capture; empty for replay).
    pub lineage: Vec<ProcessInfo>,
    pub calls: Vec<SyscallEvent>,
    /// What the calls did that baselines judge (live capture).
    pub activity: Vec<ActivityEvent>,
    /// The process has exited; no more calls follow.
    pub exited: bool,
}

/// Pseudo-pids of replayed traces start here, far above real pid ranges'
/// usual values, so replay and live capture do not collide in a demo.
const REPLAY_PID_BASE: u32 = 4_000_000;

/// Why a source cannot start.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("replay source {path}: {source}")]
    Replay {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Capture(#[from] CaptureError),
}

/// The live capture and the receiving end of its channel.
struct Live {
    capture: Option<Capture>,
    rx: Rc<tokio::sync::Mutex<tokio::sync::mpsc::Receiver<Chunk>>>,
    /// Turns true when the reader has handed on everything the capture
    /// produced (the channel closed after the capture stopped).
    done: tokio::sync::watch::Receiver<bool>,
}

/// Groups a chunk of kernel events into per-process messages, in order:
/// each process's calls, then its exit.
pub fn group(chunk: Chunk, table: &mut ProcessTable) -> Vec<ProcessCalls> {
    group_with(chunk, table, &mut |_| true)
}

/// [`group`], with each argument event made absolute and judged by
/// `keep` (which may also rewrite it) first.
pub fn group_with(
    chunk: Chunk,
    table: &mut ProcessTable,
    keep: &mut dyn FnMut(&mut Args) -> bool,
) -> Vec<ProcessCalls> {
    let mut out: Vec<ProcessCalls> = Vec::new();
    let mut open: HashMap<u32, usize> = HashMap::new();
    for ev in chunk {
        match ev {
            CaptureEvent::Syscall {
                pid,
                tid,
                nr,
                ts_ns,
            } => {
                let i = slot(&mut out, &mut open, table, pid, tid);
                out[i].calls.push(SyscallEvent { nr, ts_ns });
            }
            CaptureEvent::Args(mut a) => {
                if !keep(&mut a) {
                    continue;
                }
                let i = slot(&mut out, &mut open, table, a.pid, a.tid);
                out[i].activity.push(ActivityEvent {
                    pid: a.pid,
                    ts_ns: a.ts_ns,
                    what: a.what,
                });
            }
            CaptureEvent::Exec(e) => {
                // Calls after the exec belong to the new program.
                open.remove(&e.pid);
                table.exec(e);
            }
            CaptureEvent::Fork {
                pid,
                parent,
                comm,
                ts_ns,
            } => table.fork(pid, parent, comm, ts_ns),
            CaptureEvent::Exit { pid, .. } => match open.remove(&pid) {
                Some(i) => out[i].exited = true,
                None => out.push(process_calls(table, pid, pid, true)),
            },
        }
    }
    out
}

/// The index of the process's message in `out` (`open` maps pids to
/// them), started when it has none yet.
fn slot(
    out: &mut Vec<ProcessCalls>,
    open: &mut HashMap<u32, usize>,
    table: &mut ProcessTable,
    pid: u32,
    tid: u32,
) -> usize {
    *open.entry(pid).or_insert_with(|| {
        out.push(process_calls(table, pid, tid, false));
        out.len() - 1
    })
}

/// A process's next message, named from the table.
fn process_calls(table: &mut ProcessTable, pid: u32, tid: u32, exited: bool) -> ProcessCalls {
    let lineage = table.lineage(pid);
    ProcessCalls {
        pid,
        tid,
        comm: lineage[0].name.clone(),
        exe: lineage[0].executable.clone(),
        abi: SyscallAbi::X86_64,
        lineage,
        calls: Vec::new(),
        activity: Vec::new(),
        exited,
    }
}

/// A path the process gave, made absolute from its working directory or
/// the directory `dir` names (through /proc, when the process is still
/// there; else left as given).
pub fn absolute(pid: u32, dir: Dir, path: &str) -> String {
    if path.starts_with('/') {
        return path.to_string();
    }
    let base = match dir {
        Dir::Cwd => std::fs::read_link(format!("/proc/{pid}/cwd")),
        Dir::Fd(fd) => std::fs::read_link(format!("/proc/{pid}/fd/{fd}")),
    };
    match base {
        Ok(b) => normalize(&b.join(path).to_string_lossy()),
        Err(_) => path.to_string(),
    }
}

/// `.` and `..` resolved lexically (no symlinks followed).
fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for p in path.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

/// Under one of `dirs` (a whole path component at a time).
fn under(path: &str, dirs: &[PathBuf]) -> bool {
    let p = std::path::Path::new(path);
    dirs.iter().any(|d| p.starts_with(d))
}

/// The collector's rules for argument events: paths made absolute;
/// unlink and rename kept under `watched_paths` only. Counts cut strings.
pub fn argument_filter<'a>(
    cfg: &'a SyscallSourceConfig,
    cut: &'a crate::metrics::Counter,
    unwatched: &'a crate::metrics::Counter,
) -> impl FnMut(&mut Args) -> bool + 'a {
    move |a: &mut Args| {
        if a.cut {
            cut.inc();
        }
        let (pid, dir) = (a.pid, a.dir);
        let fix = |p: &mut String| *p = absolute(pid, dir, p);
        match &mut a.what {
            Activity::Open { path, .. } => fix(path),
            Activity::Unlink { path } => {
                fix(path);
                if !under(path, &cfg.watched_paths) {
                    unwatched.inc();
                    return false;
                }
            }
            Activity::Rename { from, to } => {
                fix(from);
                fix(to);
                if !under(from, &cfg.watched_paths) && !under(to, &cfg.watched_paths) {
                    unwatched.inc();
                    return false;
                }
            }
            _ => {}
        }
        true
    }
}

/// What a source needs that can fail to get: checked (and, for live
/// capture, attached) before any actor starts.
pub enum SourceInput {
    None,
    Replay,
    Live {
        capture: Capture,
        rx: tokio::sync::mpsc::Receiver<Chunk>,
    },
}

impl SourceInput {
    /// Checks the replay path, or attaches the live capture.
    pub fn prepare(
        cfg: &SyscallSourceConfig,
        metrics: &crate::metrics::Metrics,
    ) -> Result<SourceInput, SourceError> {
        Ok(match cfg.kind {
            SourceKind::None => SourceInput::None,
            SourceKind::Replay => {
                let p = cfg.path.clone().unwrap_or_default();
                std::fs::metadata(&p).map_err(|source| SourceError::Replay { path: p, source })?;
                SourceInput::Replay
            }
            SourceKind::Ebpf => {
                let (tx, rx) = tokio::sync::mpsc::channel(cfg.channel.max(1));
                let targets = Targets {
                    all: cfg.all,
                    pids: cfg.pids.clone(),
                    comms: cfg.comms.clone(),
                    cgroups: cfg.cgroups.clone(),
                    arguments: cfg.arguments.clone(),
                };
                SourceInput::Live {
                    capture: Capture::start(targets, tx, metrics)?,
                    rx,
                }
            }
        })
    }
}

/// Produces process calls from live capture or replay.
pub struct SyscallSource {
    cfg: SyscallSourceConfig,
    node: NodeInfo,
    out: Edge<ProcessCalls>,
    restarts: Restarts,
    stopped: bool,
    replaying: Option<SpawnHandle>,
    live: Option<Live>,
    /// Traces handed on (`syscall_source.traces`); a replay resumes after
    /// them when the actor restarts.
    traces: crate::metrics::Counter,
}

impl SyscallSource {
    /// `input` comes from [`SourceInput::prepare`].
    pub fn new(
        cfg: SyscallSourceConfig,
        node: NodeInfo,
        out: Edge<ProcessCalls>,
        input: SourceInput,
    ) -> Self {
        let live = match input {
            SourceInput::Live { capture, rx } => Some(Live {
                capture: Some(capture),
                rx: Rc::new(tokio::sync::Mutex::new(rx)),
                done: tokio::sync::watch::channel(false).1,
            }),
            SourceInput::None | SourceInput::Replay => None,
        };
        Self {
            restarts: Restarts::new(Self::NAME, &node.metrics),
            traces: node.metrics.counter("syscall_source.traces"),
            cfg,
            node,
            out,
            stopped: false,
            replaying: None,
            live,
        }
    }

    /// Hands captured chunks on, grouped per process, with backpressure
    /// from the batcher (the kernel side never waits: see `capture::ebpf`).
    fn read_live(&mut self, ctx: &mut Context<Self>) {
        let Some(live) = &mut self.live else { return };
        let (done, done_rx) = tokio::sync::watch::channel(false);
        live.done = done_rx;
        let rx = live.rx.clone();
        let out = self.out.clone();
        let events = self.node.metrics.counter("syscall_source.events");
        let mut table = ProcessTable::new(
            self.cfg.processes,
            self.cfg.ancestors,
            Redaction::new(&self.cfg.redact),
            &self.node.metrics,
        )
        .with_container_stores(&self.cfg.container_stores);
        let cfg = self.cfg.clone();
        let cut = self.node.metrics.counter("capture.args_cut");
        let unwatched = self.node.metrics.counter("syscall_source.unwatched_paths");
        ctx.spawn(
            async move {
                let mut keep = argument_filter(&cfg, &cut, &unwatched);
                loop {
                    let chunk = rx.lock().await.recv().await;
                    let Some(chunk) = chunk else { break };
                    for msg in group_with(chunk, &mut table, &mut keep) {
                        events.add(msg.calls.len() as u64);
                        if out.push(msg).await.is_err() {
                            return;
                        }
                    }
                }
                let _ = done.send(true);
            }
            .into_actor(self),
        );
    }

    fn replay(&mut self, ctx: &mut Context<Self>) {
        let Some(path) = self.cfg.path.clone() else {
            return;
        };
        let filter = self.cfg.filter.clone();
        // After a restart, resume after the traces already handed on.
        let skip = self.traces.get() as usize;
        let max = self.cfg.max_traces;
        // File reading is blocking: a thread reads, a bounded channel hands
        // traces over, the actor pushes them downstream with backpressure.
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Trace>(4);
        let repeat = self.cfg.repeat;
        std::thread::Builder::new()
            .name("daisi-replay".into())
            .spawn(move || loop {
                let mut n = 0usize;
                let r = for_each_trace(&path, &filter, |t| {
                    n += 1;
                    if n <= skip {
                        return true;
                    }
                    if max > 0 && n > max {
                        return false;
                    }
                    tx.blocking_send(t).is_ok()
                });
                if let Err(e) = r {
                    tracing::error!(error = %e, "replay source failed");
                    return;
                }
                if !repeat || tx.is_closed() {
                    return;
                }
            })
            .expect("spawning a thread");
        let out = self.out.clone();
        let m = self.node.metrics.clone();
        let (traces, events, bad, empty) = (
            self.traces.clone(),
            m.counter("syscall_source.events"),
            m.counter("syscall_source.bad_tokens"),
            m.counter("syscall_source.empty_traces"),
        );
        let abi = self.cfg.abi;
        let chunk = self.cfg.chunk;
        let pace = (self.cfg.traces_per_second > 0.0)
            .then(|| Duration::from_secs_f64(1.0 / self.cfg.traces_per_second));
        let mut pid = REPLAY_PID_BASE + skip as u32;
        let fut = async move {
            while let Some(t) = rx.recv().await {
                pid = pid.wrapping_add(1);
                bad.add(t.bad_tokens as u64);
                if t.calls.is_empty() {
                    empty.inc();
                }
                let comm = t.name.rsplit('/').next().unwrap_or(&t.name).to_string();
                let mut ts = crate::actors::runtime::now_ns();
                let chunks: Vec<&[u32]> = if t.calls.is_empty() {
                    vec![&[]]
                } else {
                    t.calls.chunks(chunk).collect()
                };
                let n_chunks = chunks.len();
                for (i, c) in chunks.into_iter().enumerate() {
                    let calls = c
                        .iter()
                        .map(|&nr| {
                            ts += 1000;
                            SyscallEvent { nr, ts_ns: ts }
                        })
                        .collect::<Vec<_>>();
                    events.add(calls.len() as u64);
                    let msg = ProcessCalls {
                        pid,
                        tid: pid,
                        comm: comm.clone(),
                        exe: Some(t.name.clone()),
                        abi,
                        lineage: Vec::new(),
                        calls,
                        activity: Vec::new(),
                        exited: i + 1 == n_chunks,
                    };
                    if out.push(msg).await.is_err() {
                        return;
                    }
                }
                traces.inc();
                if let Some(p) = pace {
                    tokio::time::sleep(p).await;
                }
            }
            tracing::info!(traces = traces.get(), "replay finished");
        };
        self.replaying = Some(ctx.spawn(fut.into_actor(self)));
    }
}

impl Actor for SyscallSource {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        on_start(self, ctx);
        if self.stopped {
            return;
        }
        tracing::info!(node = %self.node.id, kind = ?self.cfg.kind, path = ?self.cfg.path, "syscall source started");
        match self.cfg.kind {
            SourceKind::Replay => self.replay(ctx),
            SourceKind::Ebpf => self.read_live(ctx),
            SourceKind::None => {}
        }
    }
}

impl NodeActor for SyscallSource {
    const NAME: &'static str = "syscall_source";
    type Config = SyscallSourceConfig;
    type Prepared = SourceInput;
    type Links = Edge<ProcessCalls>;
    type Error = SourceError;

    fn section(cfg: &crate::config::Config) -> &SyscallSourceConfig {
        &cfg.syscall_source
    }
    /// Checks the replay path, or attaches the live capture (last in the
    /// node's prepare step, so events do not wait on a slow broker).
    async fn prepare(
        cfg: &crate::config::Config,
        node: &NodeInfo,
    ) -> Result<SourceInput, SourceError> {
        SourceInput::prepare(&cfg.syscall_source, &node.metrics)
    }
    fn create(
        cfg: SyscallSourceConfig,
        node: &NodeInfo,
        input: SourceInput,
        out: Edge<ProcessCalls>,
    ) -> Self {
        Self::new(cfg, node.clone(), out, input)
    }
    /// Nothing is sent to the source but control messages.
    fn mailbox_capacity(&self) -> usize {
        16
    }
}

crate::supervised!(SyscallSource);

/// Stop capturing. Live: detach from the kernel, then hand on everything
/// already captured. Replay: stop at a message boundary.
///
/// Not a [`crate::actors::runtime::DrainReply`]: the reader that hands the
/// last chunks on is a future of this actor's own context, and an atomic
/// reply would keep it from running.
impl Handler<Drain> for SyscallSource {
    type Result = ResponseActFuture<Self, ()>;
    fn handle(&mut self, _: Drain, ctx: &mut Context<Self>) -> Self::Result {
        if !self.stopped {
            self.stopped = true;
            if let Some(h) = self.replaying.take() {
                ctx.cancel_future(h);
            }
            if let Some(c) = self.live.as_mut().and_then(|l| l.capture.take()) {
                c.stop(); // the channel closes once its last chunk is in
            }
            let traces = self.traces.get();
            tracing::info!(traces, "syscall capture stopped");
        }
        let done = self.live.as_ref().map(|l| l.done.clone());
        drained_when(until_done(done))
    }
}
