//! Turns per-process calls into self-contained wire `SyscallBatch`es.
//!
//! Each batch carries the `window − 1` calls that preceded it in the same
//! process, so any compute node of the queue group can score it alone. A
//! batch is sent when it holds `max_events` calls, when its oldest call has
//! waited `max_wait`, or when the process exits. Per-process state is freed
//! on exit and bounded by `max_processes` (least recently seen evicted first,
//! after its pending calls are sent; counted).

use crate::actors::runtime::mailbox::{Edge, MailboxConfig};
use crate::actors::runtime::supervision::{fail, Restarts};
use crate::actors::runtime::{drained_after, on_start, DrainReply, NodeActor};
use crate::actors::runtime::{Drain, NodeInfo};
use crate::actors::syscall::source::ProcessCalls;
use crate::actors::transport::Publish;
use crate::config::validate::{ConfigError, Validate};
use crate::messages::{Activity, ActivityEvent, Payload, SyscallAbi, SyscallBatch, SyscallEvent};
use crate::metrics::Counter;
use actix::prelude::*;
use lru::LruCache;
use serde::{Deserialize, Serialize};
use std::collections::{HashSet, VecDeque};
use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

/// `[syscall_batcher]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SyscallBatcherConfig {
    /// Calls of the process's past each batch carries, so compute nodes can
    /// score it alone; at least the syscall model's window − 1.
    pub context: usize,
    /// Calls per batch at most.
    pub max_events: usize,
    /// Longest time a call waits before its batch is sent.
    #[serde(with = "humantime_serde")]
    pub max_wait: Duration,
    /// Processes tracked at once.
    pub max_processes: usize,
    pub mailbox: MailboxConfig,
}

impl Default for SyscallBatcherConfig {
    fn default() -> Self {
        Self {
            context: 31,
            max_events: 1024,
            max_wait: Duration::from_millis(200),
            max_processes: 65_536,
            mailbox: MailboxConfig::default(),
        }
    }
}

impl Validate for SyscallBatcherConfig {
    fn validate(&self, path: &str, errors: &mut Vec<ConfigError>) {
        crate::config::validate::at_least_one(
            path,
            &[
                ("max_events", self.max_events),
                ("max_processes", self.max_processes),
            ],
            errors,
        );
        if self.max_wait.is_zero() {
            errors.push(ConfigError::new(
                format!("{path}.max_wait"),
                "must be above 0",
            ));
        }
        self.mailbox.validate(&format!("{path}.mailbox"), errors);
    }
}

struct ProcState {
    comm: String,
    exe: Option<String>,
    /// The process and its ancestors, as of its latest message.
    lineage: Vec<crate::messages::ProcessInfo>,
    abi: SyscallAbi,
    tid: u32,
    context: VecDeque<u32>,
    pending: Vec<SyscallEvent>,
    /// Activity not yet sent.
    activity: Vec<ActivityEvent>,
    /// What this program run already reported (each distinct thing goes
    /// once; forgotten at exec, bounded by MAX_SEEN).
    seen: HashSet<Activity>,
    since: Instant,
}

/// Distinct activities remembered per process; past it, repeats are sent
/// again (nothing is lost, the compute side dedups once more).
const MAX_SEEN: usize = 4096;

/// Per-process batching.
pub struct SyscallBatcher {
    cfg: SyscallBatcherConfig,
    node: NodeInfo,
    out: Edge<Publish>,
    procs: LruCache<u32, ProcState>,
    restarts: Restarts,
    evicted: Counter,
    batches: Counter,
    /// Activity a process had already reported (not sent again).
    repeats: Counter,
    tracked: crate::metrics::Gauge,
}

impl SyscallBatcher {
    pub fn new(cfg: SyscallBatcherConfig, node: NodeInfo, out: Edge<Publish>) -> Self {
        let cap = NonZeroUsize::new(cfg.max_processes).unwrap_or(NonZeroUsize::MIN);
        Self {
            restarts: Restarts::new(Self::NAME, &node.metrics),
            evicted: node.metrics.counter("syscall_batcher.evicted_processes"),
            batches: node.metrics.counter("syscall_batcher.batches"),
            repeats: node.metrics.counter("syscall_batcher.activity_repeats"),
            tracked: node.metrics.gauge("syscall_batcher.processes"),
            procs: LruCache::new(cap),
            cfg,
            node,
            out,
        }
    }

    /// Takes a finished batch out of a process's state.
    fn take_batch(&self, pid: u32, st: &mut ProcState, last: bool) -> SyscallBatch {
        let events = std::mem::take(&mut st.pending);
        let context: Vec<u32> = st.context.iter().copied().collect();
        let keep = self.cfg.context;
        for e in &events {
            st.context.push_back(e.nr);
            if st.context.len() > keep {
                st.context.pop_front();
            }
        }
        st.since = Instant::now();
        SyscallBatch {
            host: self.node.host.clone(),
            pid,
            tid: st.tid,
            comm: st.comm.clone(),
            exe: st.exe.clone(),
            abi: st.abi,
            context,
            events,
            last,
            lineage: st.lineage.clone(),
            activity: std::mem::take(&mut st.activity),
        }
    }

    /// Batches that are ready after `msg`, in order.
    fn accept(&mut self, msg: ProcessCalls) -> Vec<SyscallBatch> {
        let mut ready = Vec::new();
        let pid = msg.pid;
        let mut st = self.procs.pop(&pid).unwrap_or_else(|| ProcState {
            comm: String::new(),
            exe: None,
            lineage: Vec::new(),
            abi: msg.abi,
            tid: msg.tid,
            context: VecDeque::new(),
            pending: Vec::new(),
            activity: Vec::new(),
            seen: HashSet::new(),
            since: Instant::now(),
        });
        st.comm = msg.comm; // exec may have changed it
        if msg.exe.is_some() && msg.exe != st.exe {
            st.seen.clear(); // a new program
            st.exe = msg.exe;
        }
        for a in msg.activity {
            if st.seen.len() >= MAX_SEEN {
                st.seen.clear();
            }
            if st.seen.insert(a.what.clone()) {
                st.activity.push(a);
            } else {
                self.repeats.inc();
            }
        }
        if !msg.lineage.is_empty() {
            st.lineage = msg.lineage;
        }
        if st.pending.is_empty() {
            st.since = Instant::now();
        }
        for e in msg.calls {
            st.pending.push(e);
            if st.pending.len() == self.cfg.max_events {
                ready.push(self.take_batch(pid, &mut st, false));
            }
        }
        if msg.exited {
            ready.push(self.take_batch(pid, &mut st, true));
        } else if let Some((old_pid, mut old)) = self.procs.push(pid, st) {
            // The table was full: the least recently seen process goes, its
            // pending calls are sent first.
            self.evicted.inc();
            tracing::debug!(pid = old_pid, "process state evicted (max_processes)");
            if !old.pending.is_empty() {
                ready.push(self.take_batch(old_pid, &mut old, false));
            }
        }
        self.tracked.set(self.procs.len() as u64);
        ready
    }

    /// Batches whose oldest call waited `max_wait` (all when `all`).
    fn due(&mut self, all: bool) -> Vec<SyscallBatch> {
        let now = Instant::now();
        let pids: Vec<u32> = self
            .procs
            .iter()
            .filter(|(_, st)| {
                !st.pending.is_empty() && (all || now - st.since >= self.cfg.max_wait)
            })
            .map(|(pid, _)| *pid)
            .collect();
        let mut out = Vec::new();
        for pid in pids {
            if let Some(mut st) = self.procs.pop(&pid) {
                out.push(self.take_batch(pid, &mut st, false));
                self.procs.push(pid, st);
            }
        }
        out
    }

    /// Hands batches to the outbound actor, in order.
    fn handoff(&mut self, batches: Vec<SyscallBatch>) -> impl ActorFuture<Self, Output = ()> {
        self.batches.add(batches.len() as u64);
        let out = self.out.clone();
        async move {
            for b in batches {
                out.push(Publish(Payload::SyscallBatch(b))).await?;
            }
            Ok::<(), crate::actors::runtime::mailbox::EdgeClosed>(())
        }
        .into_actor(self)
        .map(|r, _, ctx| {
            if let Err(e) = r {
                fail(Self::NAME, ctx, e);
            }
        })
    }

    fn send(&mut self, batches: Vec<SyscallBatch>, ctx: &mut Context<Self>) {
        if batches.is_empty() {
            return;
        }
        // Wait for downstream before the next message: backpressure.
        let handoff = self.handoff(batches);
        ctx.wait(handoff);
    }
}

impl NodeActor for SyscallBatcher {
    const NAME: &'static str = "syscall_batcher";
    type Config = SyscallBatcherConfig;
    type Prepared = ();
    type Links = Edge<Publish>;
    type Error = std::convert::Infallible;

    fn section(cfg: &crate::config::Config) -> &SyscallBatcherConfig {
        &cfg.syscall_batcher
    }
    async fn prepare(_: &crate::config::Config, _: &NodeInfo) -> Result<(), Self::Error> {
        Ok(())
    }
    fn create(cfg: SyscallBatcherConfig, node: &NodeInfo, _: (), out: Edge<Publish>) -> Self {
        Self::new(cfg, node.clone(), out)
    }
    fn mailbox_capacity(&self) -> usize {
        self.cfg.mailbox.capacity
    }
}

crate::supervised!(SyscallBatcher);

impl Actor for SyscallBatcher {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Context<Self>) {
        on_start(self, ctx);
        let tick = (self.cfg.max_wait / 2).max(Duration::from_millis(1));
        ctx.run_interval(tick, |act, ctx| {
            let due = act.due(false);
            act.send(due, ctx);
        });
    }
}

impl Handler<ProcessCalls> for SyscallBatcher {
    type Result = ();
    fn handle(&mut self, msg: ProcessCalls, ctx: &mut Context<Self>) {
        let ready = self.accept(msg);
        self.send(ready, ctx);
    }
}

/// Sends every pending batch; replies once the outbound actor took them.
impl Handler<Drain> for SyscallBatcher {
    type Result = DrainReply<Self>;
    fn handle(&mut self, _: Drain, _: &mut Context<Self>) -> Self::Result {
        let all = self.due(true);
        if !all.is_empty() {
            tracing::info!(batches = all.len(), "batcher flushed pending batches");
        }
        drained_after(self.handoff(all))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calls(pid: u32, nrs: &[u32], exited: bool) -> ProcessCalls {
        ProcessCalls {
            pid,
            tid: pid,
            comm: "t".into(),
            exe: None,
            abi: SyscallAbi::X86_64,
            lineage: vec![],
            activity: vec![],
            calls: nrs
                .iter()
                .map(|&nr| SyscallEvent { nr, ts_ns: 0 })
                .collect(),
            exited,
        }
    }

    fn batcher(context: usize, max_events: usize, max_processes: usize) -> SyscallBatcher {
        // The edge is never used by `accept`, but needs a recipient.
        struct Sink;
        impl Actor for Sink {
            type Context = Context<Self>;
        }
        impl Handler<Publish> for Sink {
            type Result = ();
            fn handle(&mut self, _: Publish, _: &mut Context<Self>) {}
        }
        let node = NodeInfo {
            id: "n".into(),
            host: "h".into(),
            role: crate::messages::Role::Both,
            metrics: Default::default(),
            started: Instant::now(),
            console: None,
        };
        let rt = actix::System::new();
        let addr = rt.block_on(async { Sink.start() });
        let edge = Edge::new("t", addr.recipient(), Default::default(), &node.metrics);
        SyscallBatcher::new(
            SyscallBatcherConfig {
                context,
                max_events,
                max_processes,
                ..Default::default()
            },
            node,
            edge,
        )
    }

    #[test]
    fn batches_carry_context_and_split_at_max_events() {
        let mut b = batcher(3, 3, 10);
        let r = b.accept(calls(1, &[1, 2, 3, 4, 5, 6, 7], false));
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].context, Vec::<u32>::new());
        assert_eq!(
            r[0].events.iter().map(|e| e.nr).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        assert_eq!(r[1].context, vec![1, 2, 3]);
        let r = b.accept(calls(1, &[8], true));
        assert_eq!(r.len(), 1);
        assert!(r[0].last);
        assert_eq!(r[0].context, vec![4, 5, 6]);
        assert_eq!(
            r[0].events.iter().map(|e| e.nr).collect::<Vec<_>>(),
            vec![7, 8]
        );
        assert!(b.procs.is_empty(), "exit frees state");
    }

    #[test]
    fn process_table_is_bounded_and_eviction_loses_nothing() {
        let mut b = batcher(3, 100, 2);
        b.accept(calls(1, &[1], false));
        b.accept(calls(2, &[2], false));
        let r = b.accept(calls(3, &[3], false));
        assert_eq!(b.procs.len(), 2);
        assert_eq!(b.evicted.get(), 1);
        assert_eq!(r.len(), 1, "evicted process's pending calls are sent");
        assert_eq!(r[0].pid, 1);
        let all = b.due(true);
        assert_eq!(all.len(), 2);
    }
}
