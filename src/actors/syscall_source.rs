//! Syscall capture: the first stage of the collector.
//!
//! Sources produce [`ProcessCalls`] (internal type: one process's new calls)
//! into the batcher's mailbox through a blocking edge, so a slow pipeline
//! slows capture down instead of growing memory. Kinds:
//!
//! - `replay`: ADFA-LD-style trace files (a directory or zip), each file
//!   replayed as one process that exits at the end of its file. Used for
//!   evaluation, demos and tests, through the same actors as live capture.
//! - `none`: no syscall capture on this node.

use super::mailbox::Edge;
use super::supervision::{InjectFault, Restarts};
use super::{Drain, NodeInfo};
use crate::config::{ConfigError, Validate};
use crate::messages::{SyscallAbi, SyscallEvent};
use crate::traces::{for_each_trace, Trace};
use actix::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
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
}

/// `[syscall_source]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SyscallSourceConfig {
    /// `replay` or `none`.
    pub kind: SourceKind,
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
}

impl Default for SyscallSourceConfig {
    fn default() -> Self {
        Self {
            kind: SourceKind::None,
            path: None,
            filter: String::new(),
            abi: SyscallAbi::I386,
            max_traces: 0,
            repeat: false,
            traces_per_second: 0.0,
            chunk: 512,
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
        if self.chunk == 0 {
            errors.push(ConfigError::new(
                format!("{path}.chunk"),
                "must be at least 1",
            ));
        }
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
    pub calls: Vec<SyscallEvent>,
    /// The process has exited; no more calls follow.
    pub exited: bool,
}

/// Pseudo-pids of replayed traces start here, far above real pid ranges'
/// usual values, so replay and live capture do not collide in a demo.
const REPLAY_PID_BASE: u32 = 4_000_000;

/// Replays trace files as processes.
pub struct SyscallSource {
    cfg: SyscallSourceConfig,
    node: NodeInfo,
    out: Edge<ProcessCalls>,
    restarts: Restarts,
    /// Traces handed downstream so far (resumes there after a restart).
    done: usize,
    stopped: bool,
    finished: bool,
    replaying: Option<SpawnHandle>,
}

impl SyscallSource {
    /// Checks the source can run (fallible start).
    pub fn new(
        cfg: SyscallSourceConfig,
        node: NodeInfo,
        out: Edge<ProcessCalls>,
    ) -> Result<Self, std::io::Error> {
        if cfg.kind == SourceKind::Replay {
            let p = cfg.path.clone().unwrap_or_default();
            std::fs::metadata(&p)
                .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", p.display())))?;
        }
        Ok(Self {
            restarts: Restarts::new("syscall_source", &node.metrics),
            cfg,
            node,
            out,
            done: 0,
            stopped: false,
            finished: false,
            replaying: None,
        })
    }

    fn replay(&mut self, ctx: &mut Context<Self>) {
        let Some(path) = self.cfg.path.clone() else {
            return;
        };
        let filter = self.cfg.filter.clone();
        // After a restart, resume after the traces already handed on.
        let skip = self.node.metrics.get("syscall_source.traces") as usize;
        self.done = skip;
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
            m.counter("syscall_source.traces"),
            m.counter("syscall_source.events"),
            m.counter("syscall_source.bad_tokens"),
            m.counter("syscall_source.empty_traces"),
        );
        let abi = self.cfg.abi;
        let chunk = self.cfg.chunk;
        let pace = (self.cfg.traces_per_second > 0.0)
            .then(|| Duration::from_secs_f64(1.0 / self.cfg.traces_per_second));
        let mut pid = REPLAY_PID_BASE + self.done as u32;
        let fut = async move {
            let mut sent = 0usize;
            while let Some(t) = rx.recv().await {
                pid = pid.wrapping_add(1);
                bad.add(t.bad_tokens as u64);
                if t.calls.is_empty() {
                    empty.inc();
                }
                let comm = t.name.rsplit('/').next().unwrap_or(&t.name).to_string();
                let mut ts = super::now_ns();
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
                        calls,
                        exited: i + 1 == n_chunks,
                    };
                    if out.push(msg).await.is_err() {
                        return sent;
                    }
                }
                traces.inc();
                sent += 1;
                if let Some(p) = pace {
                    tokio::time::sleep(p).await;
                }
            }
            sent
        };
        self.replaying = Some(ctx.spawn(fut.into_actor(self).map(|sent, act, _| {
            act.done += sent;
            act.finished = true;
            tracing::info!(traces = act.done, "replay finished");
        })));
    }
}

impl Actor for SyscallSource {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.restarts.backoff::<Self>(ctx);
        if self.stopped {
            return;
        }
        tracing::info!(node = %self.node.id, kind = ?self.cfg.kind, path = ?self.cfg.path, "syscall source started");
        if self.cfg.kind == SourceKind::Replay {
            self.replay(ctx);
        }
    }
}

impl Supervised for SyscallSource {
    fn restarting(&mut self, _: &mut Context<Self>) {
        self.restarts.restarting();
    }
}

/// Stop capturing: in-flight work is abandoned at a message boundary; what
/// was already handed downstream is drained by the next stages.
impl Handler<Drain> for SyscallSource {
    type Result = ();
    fn handle(&mut self, _: Drain, ctx: &mut Context<Self>) {
        self.stopped = true;
        if let Some(h) = self.replaying.take() {
            ctx.cancel_future(h);
        }
        tracing::info!(
            traces = self.done,
            finished = self.finished,
            "syscall capture stopped"
        );
    }
}

impl Handler<InjectFault> for SyscallSource {
    type Result = ();
    fn handle(&mut self, _: InjectFault, ctx: &mut Context<Self>) {
        super::supervision::fail("syscall_source", ctx, "injected fault");
    }
}
