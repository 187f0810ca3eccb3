//! Compute-side buffer: self-contained `SyscallBatch`es become token windows,
//! gathered from all processes into inference batches of at most
//! `max_batch` windows, sent at the latest `max_wait` after their first
//! window arrived (the latency bound).
//!
//! Syscall numbers are normalized here, at the one boundary between the wire
//! (numbers of some ABI) and the model (tokens of canonical names). Numbers
//! the table lacks become the out-of-vocabulary token and are counted.

use crate::actors::runtime::mailbox::{Edge, MailboxConfig};
use crate::actors::runtime::receipt::Receipt;
use crate::actors::runtime::supervision::{fail, Restarts};
use crate::actors::runtime::{drained_after, on_start, Drain, DrainReply, NodeActor, NodeInfo};
use crate::config::validate::{ConfigError, Validate};
use crate::messages::SyscallBatch;
use crate::metrics::Counter;
use crate::syscalls::{Vocabulary, OOV};
use actix::prelude::*;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `[syscall_buffer]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SyscallBufferConfig {
    /// Score every `stride`-th window of a batch (1 = every window).
    pub stride: usize,
    /// Windows per inference batch at most.
    pub max_batch: usize,
    /// Longest time a window waits for its batch to fill.
    #[serde(with = "humantime_serde")]
    pub max_wait: Duration,
    pub mailbox: MailboxConfig,
}

impl Default for SyscallBufferConfig {
    fn default() -> Self {
        Self {
            stride: 1,
            max_batch: 4096,
            max_wait: Duration::from_millis(50),
            mailbox: MailboxConfig::default(),
        }
    }
}

impl Validate for SyscallBufferConfig {
    fn validate(&self, path: &str, errors: &mut Vec<ConfigError>) {
        for (k, v) in [("stride", self.stride), ("max_batch", self.max_batch)] {
            if v == 0 {
                errors.push(ConfigError::new(
                    format!("{path}.{k}"),
                    "must be at least 1",
                ));
            }
        }
        if self.max_wait.is_zero() {
            errors.push(ConfigError::new(
                format!("{path}.max_wait"),
                "must be above 0",
            ));
        }
        self.mailbox.validate(&format!("{path}.mailbox"), errors);
    }
}

/// A wire batch to be scored, with the broker's receipt when it came from
/// the durable stream (done once the alert actor took its scores).
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct ScoreBatch(pub SyscallBatch, pub Option<Receipt>);

/// Which process a run of windows belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub host: String,
    pub pid: u32,
    pub comm: String,
    pub exe: Option<String>,
    /// The process and its ancestors (live capture).
    pub lineage: Vec<crate::messages::ProcessInfo>,
    /// Windows of this process in the batch (may be 0 for a final batch).
    pub windows: usize,
    /// The process exited after these windows.
    pub last: bool,
    /// The broker's receipt of the batch these windows came from.
    pub receipt: Option<Receipt>,
}

/// Token windows of many processes, ready for the classifier.
#[derive(Message, Debug, Clone, Default)]
#[rtype(result = "()")]
pub struct Windows {
    pub window: usize,
    /// `n × window` tokens, window after window.
    pub tokens: Vec<u32>,
    pub segments: Vec<Segment>,
}

impl Windows {
    pub fn len(&self) -> usize {
        self.tokens.len() / self.window.max(1)
    }
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }
}

/// Appends the windows of `b` to `out`, returning how many, and counting
/// unknown syscall numbers in `oov`. A process shorter than one window that
/// has exited yields one window padded at the front with [`OOV`].
pub fn windows_of(
    b: &SyscallBatch,
    vocab: &Vocabulary,
    window: usize,
    stride: usize,
    out: &mut Vec<u32>,
    oov: &Counter,
) -> usize {
    let mut seq: Vec<u32> = Vec::with_capacity(b.context.len() + b.events.len());
    seq.extend(b.context.iter().map(|&nr| vocab.token(b.abi, nr)));
    let ctx = seq.len();
    let mut unknown = 0u64;
    for e in &b.events {
        let t = vocab.token(b.abi, e.nr);
        if t == OOV && crate::syscalls::name(b.abi, e.nr).is_none() {
            unknown += 1;
        }
        seq.push(t);
    }
    oov.add(unknown);
    if seq.len() < window {
        if b.last && !b.events.is_empty() {
            out.extend(std::iter::repeat_n(OOV, window - seq.len()));
            out.extend_from_slice(&seq);
            return 1;
        }
        return 0;
    }
    let mut n = 0;
    // Windows ending at each new event (index ctx + i).
    let first_end = (ctx + 1).max(window);
    for end in (first_end..=seq.len()).step_by(stride) {
        out.extend_from_slice(&seq[end - window..end]);
        n += 1;
    }
    n
}

/// Gathers windows into inference batches.
pub struct SyscallBuffer {
    cfg: SyscallBufferConfig,
    window: usize,
    vocab: Arc<Vocabulary>,
    out: Edge<Windows>,
    pending: Windows,
    since: Option<Instant>,
    restarts: Restarts,
    windows: Counter,
    events: Counter,
    oov: Counter,
}

impl SyscallBuffer {
    /// `window` is the model's window length.
    pub fn new(
        cfg: SyscallBufferConfig,
        node: &NodeInfo,
        vocab: Arc<Vocabulary>,
        window: usize,
        out: Edge<Windows>,
    ) -> Self {
        let m = &node.metrics;
        Self {
            pending: Windows {
                window,
                ..Default::default()
            },
            window,
            restarts: Restarts::new(Self::NAME, m),
            windows: m.counter("syscall_buffer.windows"),
            events: m.counter("syscall_buffer.events"),
            oov: m.counter("syscall_buffer.unknown_syscalls"),
            since: None,
            cfg,
            vocab,
            out,
        }
    }

    fn flush(&mut self, ctx: &mut Context<Self>) {
        if self.pending.segments.is_empty() {
            return;
        }
        let handoff = self.handoff();
        ctx.wait(handoff);
    }

    /// Hands the pending windows to the classifier (nothing when empty).
    fn handoff(&mut self) -> impl ActorFuture<Self, Output = ()> {
        let batch = std::mem::replace(
            &mut self.pending,
            Windows {
                window: self.window,
                ..Default::default()
            },
        );
        self.since = None;
        let out = self.out.clone();
        async move {
            if batch.segments.is_empty() {
                return Ok(());
            }
            out.push(batch).await
        }
        .into_actor(self)
        .map(|r, _, ctx| {
            if let Err(e) = r {
                fail(Self::NAME, ctx, e);
            }
        })
    }
}

/// What the buffer needs from the model, and where windows go.
pub struct BufferLinks {
    /// The model's vocabulary (numbers to tokens).
    pub vocab: Arc<Vocabulary>,
    /// The model's window length.
    pub window: usize,
    pub to_classifier: Edge<Windows>,
}

impl NodeActor for SyscallBuffer {
    const NAME: &'static str = "syscall_buffer";
    type Config = SyscallBufferConfig;
    type Prepared = ();
    type Links = BufferLinks;
    type Error = std::convert::Infallible;

    fn section(cfg: &crate::config::Config) -> &SyscallBufferConfig {
        &cfg.syscall_buffer
    }
    async fn prepare(_: &crate::config::Config, _: &NodeInfo) -> Result<(), Self::Error> {
        Ok(())
    }
    fn create(cfg: SyscallBufferConfig, node: &NodeInfo, _: (), l: BufferLinks) -> Self {
        Self::new(cfg, node, l.vocab, l.window, l.to_classifier)
    }
    fn mailbox_capacity(&self) -> usize {
        self.cfg.mailbox.capacity
    }
}

crate::supervised!(SyscallBuffer);

impl Actor for SyscallBuffer {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Context<Self>) {
        on_start(self, ctx);
        let tick = (self.cfg.max_wait / 2).max(Duration::from_millis(1));
        ctx.run_interval(tick, |act, ctx| {
            if act.since.is_some_and(|t| t.elapsed() >= act.cfg.max_wait) {
                act.flush(ctx);
            }
        });
    }
}

impl Handler<ScoreBatch> for SyscallBuffer {
    type Result = ();
    fn handle(&mut self, ScoreBatch(b, receipt): ScoreBatch, ctx: &mut Context<Self>) {
        self.events.add(b.events.len() as u64);
        let n = windows_of(
            &b,
            &self.vocab,
            self.window,
            self.cfg.stride,
            &mut self.pending.tokens,
            &self.oov,
        );
        self.windows.add(n as u64);
        if n == 0 && !b.last {
            // Nothing to score yet (its calls are the next batch's context).
            crate::actors::runtime::receipt::all_done([&receipt]);
            return;
        }
        self.pending.segments.push(Segment {
            host: b.host,
            pid: b.pid,
            comm: b.comm,
            exe: b.exe,
            lineage: b.lineage,
            windows: n,
            last: b.last,
            receipt,
        });
        self.since.get_or_insert_with(Instant::now);
        if self.pending.len() >= self.cfg.max_batch {
            self.flush(ctx);
        }
    }
}

/// Sends the windows gathered so far; replies once the classifier took them.
impl Handler<Drain> for SyscallBuffer {
    type Result = DrainReply<Self>;
    fn handle(&mut self, _: Drain, _: &mut Context<Self>) -> Self::Result {
        drained_after(self.handoff())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::{SyscallAbi, SyscallEvent};

    fn batch(ctx: &[u32], ev: &[u32], last: bool) -> SyscallBatch {
        SyscallBatch {
            host: "h".into(),
            pid: 1,
            tid: 1,
            comm: "c".into(),
            exe: None,
            abi: SyscallAbi::X86_64,
            context: ctx.to_vec(),
            events: ev.iter().map(|&nr| SyscallEvent { nr, ts_ns: 0 }).collect(),
            last,
            lineage: vec![],
            activity: vec![],
        }
    }

    proptest::proptest! {
        /// A batch split in two (as the transport does for a server's
        /// small payload limit) gives the same scoring windows as whole:
        /// none lost at the cut, none twice.
        #[test]
        fn a_split_batch_gives_the_windows_of_the_whole(
            ctx in proptest::collection::vec(0u32..400, 0..6),
            ev in proptest::collection::vec(0u32..400, 2..120),
            window in 2usize..8,
        ) {
            let v = Vocabulary::all();
            let c = Counter::default();
            let mut b = batch(&ctx, &ev, false);
            b.context.truncate(window - 1);
            let (mut whole, mut parts) = (vec![], vec![]);
            let n = windows_of(&b, &v, window, 1, &mut whole, &c);
            let (first, second) = b.split();
            let m = windows_of(&first, &v, window, 1, &mut parts, &c)
                + windows_of(&second, &v, window, 1, &mut parts, &c);
            proptest::prop_assert_eq!(n, m);
            proptest::prop_assert_eq!(whole, parts);
        }
    }

    #[test]
    fn windows_end_at_each_new_event() {
        let v = Vocabulary::all();
        let c = Counter::default();
        let mut out = vec![];
        // context read,write; new close,open(2 = open on x86_64)
        let n = windows_of(&batch(&[0, 1], &[3, 2], false), &v, 3, 1, &mut out, &c);
        assert_eq!(n, 2);
        let t = |nr| v.token(SyscallAbi::X86_64, nr);
        assert_eq!(out, vec![t(0), t(1), t(3), t(1), t(3), t(2)]);
    }

    #[test]
    fn short_exited_process_gets_one_padded_window() {
        let v = Vocabulary::all();
        let c = Counter::default();
        let mut out = vec![];
        assert_eq!(
            windows_of(&batch(&[], &[0], false), &v, 3, 1, &mut out, &c),
            0
        );
        assert_eq!(
            windows_of(&batch(&[], &[0], true), &v, 3, 1, &mut out, &c),
            1
        );
        assert_eq!(out[..2], [OOV, OOV]);
    }

    #[test]
    fn unknown_numbers_are_counted() {
        let v = Vocabulary::all();
        let c = Counter::default();
        let mut out = vec![];
        windows_of(&batch(&[], &[0, 4000, 5000], true), &v, 2, 1, &mut out, &c);
        assert_eq!(c.get(), 2);
    }
}
