//! Live syscall capture with eBPF: loads `src/bpf/capture.bpf.c`, sets its
//! filters, and drains its ring buffer on a thread of its own.
//!
//! This is the kernel boundary: the kernel's event layouts are parsed here
//! into [`CaptureEvent`]s and nothing past this file sees them. The ring
//! buffer callback runs inside C code, so it never panics; parsing errors
//! are counted. User space hands events on through a bounded channel and
//! counts what it must drop (`capture.userspace_dropped`); the kernel counts
//! failed ring-buffer reservations (`capture.kernel_dropped`).

use crate::metrics::{Counter, Metrics};
use libbpf_rs::skel::{OpenSkel, Skel, SkelBuilder};
use libbpf_rs::{MapCore, MapFlags, RingBufferBuilder};
use std::collections::BTreeMap;
use std::mem::MaybeUninit;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[allow(clippy::all, unsafe_op_in_unsafe_fn, non_camel_case_types, dead_code)]
mod skel {
    include!(concat!(env!("OUT_DIR"), "/capture.skel.rs"));
}
use skel::CaptureSkelBuilder;

/// What the kernel reported, in our own terms.
#[derive(Debug, Clone, PartialEq)]
pub enum CaptureEvent {
    Syscall {
        pid: u32,
        tid: u32,
        nr: u32,
        ts_ns: u64,
    },
    Exec {
        pid: u32,
        tid: u32,
        ts_ns: u64,
        comm: String,
    },
    Exit {
        pid: u32,
        ts_ns: u64,
    },
}

/// Which processes to watch.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Targets {
    /// Every process (but daisi itself).
    pub all: bool,
    /// These processes and, from now on, their children.
    pub pids: Vec<u32>,
    /// Processes with these names (kernel `comm`, at most 15 bytes), found
    /// at start and at every exec, and their children.
    pub comms: Vec<String>,
    /// Processes in these cgroup (v2) directories, e.g. a container's.
    pub cgroups: Vec<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("eBPF capture needs root, or the capabilities CAP_BPF and CAP_PERFMON (plus a readable /sys/kernel/btf/vmlinux): {0}")]
    Permission(String),
    #[error("cannot load the eBPF capture program: {0}")]
    Load(String),
    #[error("cgroup {path}: {source}")]
    Cgroup {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("process name {0:?} is longer than the kernel's 15-byte comm")]
    Comm(String),
}

fn classify(e: libbpf_rs::Error) -> CaptureError {
    let text = e.to_string();
    if matches!(e.kind(), libbpf_rs::ErrorKind::PermissionDenied)
        || text.contains("Operation not permitted")
        || text.contains("EPERM")
    {
        CaptureError::Permission(text)
    } else {
        CaptureError::Load(text)
    }
}

/// Events held in user space while the pipeline is behind (about 32 MiB).
const MAX_PENDING: usize = 1 << 20;

const EV_SYSCALL: u32 = 0;
const EV_EXEC: u32 = 1;
const EV_EXIT: u32 = 2;

fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_ne_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

fn u64_at(b: &[u8], i: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[i..i + 8]);
    u64::from_ne_bytes(a)
}

/// Parses one ring-buffer record (layouts of `capture.bpf.c`).
pub fn parse(b: &[u8]) -> Option<CaptureEvent> {
    if b.len() < 24 {
        return None;
    }
    let (kind, pid, tid) = (u32_at(b, 0), u32_at(b, 4), u32_at(b, 8));
    let ts_ns = u64_at(b, 16);
    match kind {
        EV_SYSCALL => Some(CaptureEvent::Syscall {
            pid,
            tid,
            nr: u32_at(b, 12),
            ts_ns,
        }),
        EV_EXEC if b.len() >= 40 => {
            let comm = &b[24..40];
            let end = comm.iter().position(|&c| c == 0).unwrap_or(16);
            Some(CaptureEvent::Exec {
                pid,
                tid,
                ts_ns,
                comm: String::from_utf8_lossy(&comm[..end]).into_owned(),
            })
        }
        EV_EXIT => Some(CaptureEvent::Exit { pid, ts_ns }),
        _ => None,
    }
}

/// Counters of the capture layer.
#[derive(Clone)]
struct Stats {
    userspace_dropped: Counter,
    kernel_dropped: Counter,
    kernel_submitted: Counter,
    malformed: Counter,
}

/// A running capture; dropping it (or [`Capture::stop`]) detaches the
/// programs and ends the thread.
pub struct Capture {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Events arrive in chunks (one per ring-buffer drain).
pub type Chunk = Vec<CaptureEvent>;

impl Capture {
    /// Loads and attaches the programs; returns once they are attached, so
    /// a workload started afterwards is captured from its first call.
    /// `out` receives chunks; when it is full, chunks are dropped and
    /// counted, the kernel side never waits.
    pub fn start(
        targets: Targets,
        out: tokio::sync::mpsc::Sender<Chunk>,
        metrics: &Metrics,
    ) -> Result<Capture, CaptureError> {
        for c in &targets.comms {
            if c.len() > 15 {
                return Err(CaptureError::Comm(c.clone()));
            }
        }
        let mut cgroup_ids = Vec::new();
        for p in &targets.cgroups {
            let md = std::fs::metadata(p).map_err(|source| CaptureError::Cgroup {
                path: p.clone(),
                source,
            })?;
            cgroup_ids.push(md.ino());
        }
        let stats = Stats {
            userspace_dropped: metrics.counter("capture.userspace_dropped"),
            kernel_dropped: metrics.counter("capture.kernel_dropped"),
            kernel_submitted: metrics.counter("capture.kernel_submitted"),
            malformed: metrics.counter("capture.malformed"),
        };
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let stop2 = stop.clone();
        let thread = std::thread::Builder::new()
            .name("daisi-ebpf".into())
            .spawn(move || {
                if let Err(e) = run(targets, cgroup_ids, out, stats, stop2, &ready_tx) {
                    let _ = ready_tx.send(Err(e));
                }
            })
            .map_err(|e| CaptureError::Load(e.to_string()))?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(Capture {
                stop,
                thread: Some(thread),
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => Err(CaptureError::Load(
                "capture thread ended during start".into(),
            )),
        }
    }

    /// Detaches and waits for the last drain.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The words of the kernel's watched-process bitmap (`watched` in
/// capture.bpf.c: word pid / 64, bit pid % 64) that hold `pids`, never
/// `exclude` (daisi itself).
fn bitmap_words(pids: impl IntoIterator<Item = u32>, exclude: u32) -> BTreeMap<u32, u64> {
    let mut words = BTreeMap::new();
    for pid in pids.into_iter().filter(|&p| p != exclude) {
        *words.entry(pid / 64).or_insert(0u64) |= 1 << (pid % 64);
    }
    words
}

/// Processes already running that the targets name: the listed pids and
/// processes with a listed comm, and all their descendants.
fn initial_pids(targets: &Targets) -> Vec<u32> {
    use sysinfo::{ProcessRefreshKind, ProcessesToUpdate, System, UpdateKind};
    let mut pids: Vec<u32> = targets.pids.clone();
    let Ok(mut sys) = System::new() else {
        return pids;
    };
    sys.refresh_processes_specifics(
        ProcessesToUpdate::All,
        true,
        ProcessRefreshKind::nothing().with_exe(UpdateKind::Never),
    );
    let procs = sys.processes();
    for (pid, p) in procs {
        let name = p.name().to_string_lossy();
        if targets.comms.iter().any(|c| *c == name) {
            pids.push(pid.as_u32());
        }
    }
    // Descendants: repeat until no new child is found.
    loop {
        let before = pids.len();
        for (pid, p) in procs {
            if let Some(parent) = p.parent() {
                if pids.contains(&parent.as_u32())
                    && !pids.contains(&pid.as_u32())
                    && p.thread_kind().is_none()
                {
                    pids.push(pid.as_u32());
                }
            }
        }
        if pids.len() == before {
            return pids;
        }
    }
}

/// libbpf's own messages go to the log instead of raw standard error.
fn route_libbpf_logs() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        libbpf_rs::set_print(Some((libbpf_rs::PrintLevel::Info, |level, msg| {
            let msg = msg.trim_end();
            match level {
                libbpf_rs::PrintLevel::Warn => tracing::warn!(target: "libbpf", "{msg}"),
                libbpf_rs::PrintLevel::Info => tracing::debug!(target: "libbpf", "{msg}"),
                libbpf_rs::PrintLevel::Debug => tracing::trace!(target: "libbpf", "{msg}"),
            }
        })));
    });
}

fn run(
    targets: Targets,
    cgroup_ids: Vec<u64>,
    out: tokio::sync::mpsc::Sender<Chunk>,
    stats: Stats,
    stop: Arc<AtomicBool>,
    ready: &std::sync::mpsc::Sender<Result<(), CaptureError>>,
) -> Result<(), CaptureError> {
    route_libbpf_logs();
    let mut storage = MaybeUninit::uninit();
    let open = CaptureSkelBuilder::default()
        .open(&mut storage)
        .map_err(classify)?;
    let mut skel = open.load().map_err(classify)?;

    let mode: u32 = if targets.all { 0 } else { 1 };
    // struct config { mode, self_tgid, has_cgroups } of capture.bpf.c.
    let mut cfg = [0u8; 12];
    cfg[..4].copy_from_slice(&mode.to_ne_bytes());
    cfg[4..8].copy_from_slice(&std::process::id().to_ne_bytes());
    cfg[8..].copy_from_slice(&u32::from(!cgroup_ids.is_empty()).to_ne_bytes());
    skel.maps
        .cfg
        .update(&0u32.to_ne_bytes(), &cfg, MapFlags::ANY)
        .map_err(classify)?;
    for (word, bits) in bitmap_words(initial_pids(&targets), std::process::id()) {
        skel.maps
            .watched
            .update(&word.to_ne_bytes(), &bits.to_ne_bytes(), MapFlags::ANY)
            .map_err(classify)?;
    }
    let one = [1u8];
    for c in &targets.comms {
        let mut key = [0u8; 16];
        key[..c.len()].copy_from_slice(c.as_bytes());
        skel.maps
            .watched_comms
            .update(&key, &one, MapFlags::ANY)
            .map_err(classify)?;
    }
    for id in &cgroup_ids {
        skel.maps
            .watched_cgroups
            .update(&id.to_ne_bytes(), &one, MapFlags::ANY)
            .map_err(classify)?;
    }
    skel.attach().map_err(classify)?;

    let pending = std::rc::Rc::new(std::cell::RefCell::new(Vec::<CaptureEvent>::with_capacity(
        4096,
    )));
    let sink = pending.clone();
    let malformed = stats.malformed.clone();
    let mut builder = RingBufferBuilder::new();
    builder
        .add(&skel.maps.events, move |data: &[u8]| -> i32 {
            // Runs inside libbpf's C callback: must not panic.
            match parse(data) {
                Some(e) => sink.borrow_mut().push(e),
                None => malformed.inc(),
            }
            0
        })
        .map_err(classify)?;
    let rb = builder.build().map_err(classify)?;
    let _ = ready.send(Ok(()));
    tracing::info!(all = targets.all, pids = ?targets.pids, comms = ?targets.comms, cgroups = ?targets.cgroups, "eBPF syscall capture attached");

    // When the channel is full, events keep accumulating (in order) and are
    // handed on as one larger chunk later; only beyond MAX_PENDING events
    // are they dropped (counted).
    let flush = |pending: &std::cell::RefCell<Vec<CaptureEvent>>| {
        let chunk = std::mem::take(&mut *pending.borrow_mut());
        if chunk.is_empty() {
            return;
        }
        match out.try_send(chunk) {
            Ok(()) => {}
            Err(tokio::sync::mpsc::error::TrySendError::Full(chunk))
                if chunk.len() < MAX_PENDING =>
            {
                *pending.borrow_mut() = chunk;
            }
            Err(e) => {
                let chunk = match e {
                    tokio::sync::mpsc::error::TrySendError::Full(c)
                    | tokio::sync::mpsc::error::TrySendError::Closed(c) => c,
                };
                stats.userspace_dropped.add(chunk.len() as u64);
            }
        }
    };
    let mut last_stats = std::time::Instant::now();
    while !stop.load(Ordering::SeqCst) {
        // Wake-ups are batched in the kernel, so also drain on a timer.
        if let Err(e) = rb.poll(Duration::from_millis(10)) {
            if e.kind() != libbpf_rs::ErrorKind::Interrupted {
                tracing::error!(error = %e, "ring buffer poll failed");
            }
        }
        let _ = rb.consume();
        flush(&pending);
        if last_stats.elapsed() > Duration::from_millis(500) {
            read_kernel_stats(&skel.maps.stats, &stats);
            last_stats = std::time::Instant::now();
        }
    }
    // Detach, then take what the kernel still holds.
    let _ = skel.links.on_sys_enter.take();
    let _ = skel.links.on_fork.take();
    let _ = skel.links.on_exec.take();
    let _ = skel.links.on_exit.take();
    let _ = rb.consume();
    flush(&pending);
    drop(rb);
    read_kernel_stats(&skel.maps.stats, &stats);
    tracing::info!("eBPF syscall capture detached");
    Ok(())
}

/// Sums the per-CPU counters into the node's metrics (they are totals).
fn read_kernel_stats(map: &impl MapCore, stats: &Stats) {
    for (i, counter) in [
        (0u32, &stats.kernel_dropped),
        (1u32, &stats.kernel_submitted),
    ] {
        if let Ok(Some(per_cpu)) = map.lookup_percpu(&i.to_ne_bytes(), MapFlags::ANY) {
            let total: u64 = per_cpu
                .iter()
                .filter(|v| v.len() >= 8)
                .map(|v| u64_at(v, 0))
                .sum();
            let now = counter.get();
            if total > now {
                counter.add(total - now);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitmap_words_set_one_bit_per_pid_and_skip_daisi() {
        let w = bitmap_words([1, 63, 64, 130, 4_194_303, 777], 777);
        assert_eq!(w[&0], (1 << 1) | (1 << 63));
        assert_eq!(w[&1], 1);
        assert_eq!(w[&2], 1 << 2);
        assert_eq!(w[&65_535], 1 << 63, "the largest pid fits the map");
        assert_eq!(w.len(), 4, "daisi's own pid (777, word 12) is never set");
    }

    #[test]
    fn parses_kernel_layouts_and_rejects_short_records() {
        let mut b = vec![0u8; 24];
        b[4..8].copy_from_slice(&42u32.to_ne_bytes());
        b[8..12].copy_from_slice(&43u32.to_ne_bytes());
        b[12..16].copy_from_slice(&59u32.to_ne_bytes());
        b[16..24].copy_from_slice(&7u64.to_ne_bytes());
        assert_eq!(
            parse(&b),
            Some(CaptureEvent::Syscall {
                pid: 42,
                tid: 43,
                nr: 59,
                ts_ns: 7
            })
        );
        let mut e = vec![0u8; 40];
        e[0..4].copy_from_slice(&EV_EXEC.to_ne_bytes());
        e[24..28].copy_from_slice(b"bash");
        assert!(matches!(parse(&e), Some(CaptureEvent::Exec { ref comm, .. }) if comm == "bash"));
        assert_eq!(parse(&b[..10]), None);
        e[0..4].copy_from_slice(&9u32.to_ne_bytes());
        assert_eq!(parse(&e), None);
    }
}
