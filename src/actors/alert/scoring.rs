//! Per-process decisions on syscall scores.
//!
//! A process's score is the mean window score over its last `horizon`
//! windows: the same window-to-trace aggregation `daisi eval syscall`
//! measures. It is decided when the process exits (over its whole life when
//! that is shorter than the horizon, exactly as evaluated), and for a
//! long-lived process each time a full horizon of new windows has passed.
//!
//! Batches from the durable stream are acknowledged at a process's
//! verdicts: its receipts are held until it is judged (or, at the latest,
//! when the first is due). When a compute node dies, a process it had not
//! judged is delivered again from its first batch to the node that takes
//! the partition over, which then judges it on all of it.

use crate::actors::runtime::receipt::Receipt;
use crate::actors::syscall::buffer::Segment;
use crate::messages::{
    Alert, AlertModule, ProcessFields, ProcessInfo, Severity, UserFields, WindowFields,
};
use crate::metrics::{Counter, Gauge};
use crate::models::ModelMeta;
use crate::syscalls::Vocabulary;
use lru::LruCache;
use std::collections::VecDeque;
use std::num::NonZeroUsize;

/// Rolling state of one process.
struct ProcScore {
    comm: String,
    exe: Option<String>,
    /// The process and its ancestors (live capture), latest known.
    lineage: Vec<ProcessInfo>,
    recent: VecDeque<f32>,
    sum: f64,
    since_judged: usize,
    /// The highest-scoring recent window's tokens, for evidence.
    worst: Option<(f32, Vec<u32>)>,
    /// Receipts of the batches since the last verdict.
    held: Vec<Receipt>,
}

impl ProcScore {
    /// The batches held are done with; their receipts settle when the
    /// caller drops them.
    fn release(&mut self) -> Vec<Receipt> {
        for r in &self.held {
            r.done();
        }
        std::mem::take(&mut self.held)
    }
}

/// The rolling scores of every tracked process (bounded: the least
/// recently seen is forgotten first, counted).
pub struct ProcessScores {
    horizon: usize,
    procs: LruCache<(String, u32), ProcScore>,
    forgotten: Counter,
    tracked: Gauge,
}

/// A process whose score is above the model's threshold.
pub struct Anomalous {
    pub host: String,
    pub pid: u32,
    pub score: f64,
}

impl ProcessScores {
    pub fn new(horizon: usize, max_processes: usize, forgotten: Counter, tracked: Gauge) -> Self {
        Self {
            horizon,
            procs: LruCache::new(NonZeroUsize::new(max_processes).unwrap_or(NonZeroUsize::MIN)),
            forgotten,
            tracked,
        }
    }

    /// Adds one process's window scores (and their tokens, `window` per
    /// score); judges it when it exited or a horizon passed, and builds the
    /// alert when its score is above the threshold, with the process's
    /// lineage (empty when the collector sent none).
    pub fn add(
        &mut self,
        seg: &Segment,
        scores: &[f32],
        tokens: &[u32],
        window: usize,
        model: &ModelMeta,
        vocab: &Vocabulary,
    ) -> Option<(Alert, Vec<ProcessInfo>, Vec<Receipt>)> {
        let key = (seg.host.clone(), seg.pid);
        if !self.procs.contains(&key) {
            let st = ProcScore {
                comm: seg.comm.clone(),
                exe: seg.exe.clone(),
                lineage: Vec::new(),
                recent: VecDeque::new(),
                sum: 0.0,
                since_judged: 0,
                worst: None,
                held: Vec::new(),
            };
            if let Some((_, mut old)) = self.procs.push(key.clone(), st) {
                self.forgotten.inc();
                old.release();
            }
        }
        let st = self.procs.get_mut(&key).expect("just inserted");
        if !seg.lineage.is_empty() {
            st.lineage = seg.lineage.clone();
        }
        for (i, &s) in scores.iter().enumerate() {
            st.recent.push_back(s);
            st.sum += s as f64;
            if st.recent.len() > self.horizon {
                st.sum -= st.recent.pop_front().unwrap_or(0.0) as f64;
            }
            if st.worst.as_ref().is_none_or(|(ws, _)| s >= *ws) {
                st.worst = Some((s, tokens[i * window..(i + 1) * window].to_vec()));
            }
        }
        st.since_judged += scores.len();
        st.held.extend(seg.receipt.clone());
        let judge_now = seg.last || st.since_judged >= self.horizon;
        let alert = if judge_now {
            st.since_judged = 0;
            // Judged: its batches are done with (acknowledged once the
            // alert, if any, was delivered).
            let claims = st.release();
            judge(&key, st, model, vocab).map(|a| (a, st.lineage.clone(), claims))
        } else {
            None
        };
        if seg.last {
            self.procs.pop(&key);
        }
        self.tracked.set(self.procs.len() as u64);
        alert
    }
}

impl ProcessScores {
    /// Settles the receipts whose time is up (before the broker would
    /// deliver them again): the process is judged here as before, and a
    /// node taking its partition over starts it from the next batch.
    pub fn release_due(&mut self, now: std::time::Instant) {
        for (_, st) in self.procs.iter_mut() {
            if st
                .held
                .first()
                .and_then(|r| r.due())
                .is_some_and(|d| d <= now)
            {
                st.release();
            }
        }
    }

    /// Stopping: the processes not yet judged go back to the broker
    /// unfinished, to be judged whole by the node that takes over.
    pub fn give_back(&mut self) {
        for (_, st) in self.procs.iter_mut() {
            st.held.clear();
        }
    }
}

/// The alert for a process whose mean score is above the threshold.
fn judge(
    key: &(String, u32),
    st: &ProcScore,
    model: &ModelMeta,
    vocab: &Vocabulary,
) -> Option<Alert> {
    if st.recent.is_empty() {
        return None;
    }
    let score = st.sum / st.recent.len() as f64;
    // The threshold is a held-out normal trace's score, computed in
    // another order (evaluation) than the live rolling sum: a process
    // scoring the same up to rounding (one part in a million) is not
    // above it.
    if score <= model.threshold + model.threshold.abs() * 1e-6 {
        return None;
    }
    let severity = if score > 3.0 * model.threshold.max(1e-9) {
        Severity::High
    } else {
        Severity::Medium
    };
    let window = st.worst.as_ref().map(|(s, w)| WindowFields {
        calls: w.iter().map(|&t| vocab.token_name(t).to_string()).collect(),
        score: *s as f64,
        windows: st.recent.len() as u64,
    });
    let process = ProcessFields::from_lineage(&st.lineage).unwrap_or(ProcessFields {
        pid: key.1,
        name: Some(st.comm.clone()),
        executable: st.exe.clone(),
        ..Default::default()
    });
    let user = st.lineage.first().and_then(UserFields::of_process);
    let summary = format!(
        "process {}: unusual system calls, mean score {score:.3} > {:.3} over {} windows{}",
        process.describe(),
        model.threshold,
        st.recent.len(),
        window
            .as_ref()
            .map(|w| format!("; most unusual: {}", w.calls.join(" ")))
            .unwrap_or_default()
    );
    Some(Alert {
        summary,
        process: Some(process),
        user,
        container: st.lineage.first().and_then(|p| p.container.clone()),
        score,
        threshold: model.threshold,
        model: format!("{} {}", model.name, model.version),
        window,
        ..Alert::new(
            AlertModule::Syscall,
            &key.0,
            format!("pid:{}", key.1),
            severity,
        )
    })
}
