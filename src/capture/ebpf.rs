//! Live syscall capture with eBPF: loads `src/bpf/capture.bpf.c`, sets its
//! filters, and drains its ring buffer on a thread of its own.
//!
//! This is the kernel boundary: the kernel's event layouts are parsed here
//! into [`CaptureEvent`]s and nothing past this file sees them. The ring
//! buffer callback runs inside C code, so it never panics; parsing errors
//! are counted. User space hands events on through a bounded channel and
//! counts what it must drop (`capture.userspace_dropped`); the kernel counts
//! failed ring-buffer reservations (`capture.kernel_dropped`).

use crate::messages::{Activity, Peer};
use crate::metrics::{Counter, Metrics};
use libbpf_rs::skel::{OpenSkel, Skel, SkelBuilder};
use libbpf_rs::{MapCore, MapFlags, RingBufferBuilder};
use serde::{Deserialize, Serialize};
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
    Exec(Exec),
    Exit {
        pid: u32,
        ts_ns: u64,
    },
    /// A new process (not a thread): `pid` is the child's, `comm` the name
    /// it inherited from `parent`.
    Fork {
        pid: u32,
        parent: u32,
        ts_ns: u64,
        comm: String,
    },
    /// The arguments of a selected call (it also came as a `Syscall`).
    Args(Args),
}

/// A selected call's arguments, typed. Paths are as the process gave them:
/// a relative one is relative to `dir`.
#[derive(Debug, Clone, PartialEq)]
pub struct Args {
    pub pid: u32,
    pub tid: u32,
    pub ts_ns: u64,
    pub what: Activity,
    /// What relative paths start from.
    pub dir: Dir,
    /// A string filled its bounded buffer: it may have been cut.
    pub cut: bool,
}

/// Where a call's relative paths start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// The working directory (`AT_FDCWD`).
    Cwd,
    /// An open directory of the process.
    Fd(i32),
}

/// The calls whose arguments can be captured (`syscall_source.arguments`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArgCall {
    /// `open`, `openat`, `openat2`: path and whether for writing.
    Open,
    /// `connect`: the peer.
    Connect,
    /// `bind`: the local address.
    Bind,
    /// `accept`/`accept4`: the peer (read when the thread next calls).
    Accept,
    /// The `setuid`/`setgid` families: the ids asked for.
    Setuid,
    /// `ptrace`: request and target.
    Ptrace,
    /// `init_module`, `finit_module`.
    Modules,
    /// `mount`: source and target.
    Mount,
    /// `memfd_create`: the name.
    Memfd,
    /// `unlink`, `unlinkat` (reported under `watched_paths`).
    Unlink,
    /// `rename`, `renameat`, `renameat2` (reported under `watched_paths`).
    Rename,
}

impl ArgCall {
    pub const ALL: [ArgCall; 11] = [
        ArgCall::Open,
        ArgCall::Connect,
        ArgCall::Bind,
        ArgCall::Accept,
        ArgCall::Setuid,
        ArgCall::Ptrace,
        ArgCall::Modules,
        ArgCall::Mount,
        ArgCall::Memfd,
        ArgCall::Unlink,
        ArgCall::Rename,
    ];

    /// The x86_64 numbers whose arguments the kernel reads (at the call's
    /// entry; accept's peer at the thread's next call).
    fn numbers(self) -> &'static [ArgsNr] {
        match self {
            ArgCall::Open => &[ArgsNr::NR_OPEN, ArgsNr::NR_OPENAT, ArgsNr::NR_OPENAT2],
            ArgCall::Connect => &[ArgsNr::NR_CONNECT],
            ArgCall::Bind => &[ArgsNr::NR_BIND],
            ArgCall::Accept => &[ArgsNr::NR_ACCEPT, ArgsNr::NR_ACCEPT4],
            ArgCall::Setuid => &[
                ArgsNr::NR_SETUID,
                ArgsNr::NR_SETGID,
                ArgsNr::NR_SETREUID,
                ArgsNr::NR_SETREGID,
                ArgsNr::NR_SETRESUID,
                ArgsNr::NR_SETRESGID,
            ],
            ArgCall::Ptrace => &[ArgsNr::NR_PTRACE],
            ArgCall::Modules => &[ArgsNr::NR_INIT_MODULE, ArgsNr::NR_FINIT_MODULE],
            ArgCall::Mount => &[ArgsNr::NR_MOUNT],
            ArgCall::Memfd => &[ArgsNr::NR_MEMFD_CREATE],
            ArgCall::Unlink => &[ArgsNr::NR_UNLINK, ArgsNr::NR_UNLINKAT],
            ArgCall::Rename => &[ArgsNr::NR_RENAME, ArgsNr::NR_RENAMEAT, ArgsNr::NR_RENAMEAT2],
        }
    }
}

/// The kernel's argument mask for `calls`: one bit per syscall number.
fn argmask(calls: &[ArgCall]) -> [u64; 8] {
    let mut mask = [0u64; 8];
    for nr in calls.iter().flat_map(|c| c.numbers()) {
        let nr = nr.0 as usize;
        mask[nr / 64] |= 1 << (nr % 64);
    }
    mask
}

/// A new program: its name, executable, arguments (bounded by the record;
/// `args_cut` when they were longer), who runs it and where.
#[derive(Debug, Clone, PartialEq)]
pub struct Exec {
    pub pid: u32,
    pub tid: u32,
    pub ts_ns: u64,
    pub comm: String,
    pub ppid: u32,
    /// The parent's name at the exec (it may be gone before anyone looks).
    pub parent_comm: String,
    pub path: Option<String>,
    pub args: Vec<String>,
    pub args_cut: bool,
    pub uid: u32,
    pub gid: u32,
    pub cgroup: u64,
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
    /// The calls whose arguments are captured.
    pub arguments: Vec<ArgCall>,
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

// The kernel's record layouts: generated by the skeleton from the BTF of
// `capture.bpf.c`, where they are defined (the one definition).
use skel::types::{
    args_event as ArgsRecord, args_nr as ArgsNr, config as ConfigRecord, exec_event as ExecRecord,
    kind as Kind, mode as Mode, proc_event as ProcRecord, syscall_event as SyscallRecord,
};

/// Reads one of the skeleton's record types from the front of `b`.
fn record<T: Copy>(b: &[u8]) -> Option<T> {
    if b.len() < std::mem::size_of::<T>() {
        return None;
    }
    // SAFETY: the length is checked above; `T` is one of the skeleton's
    // `#[repr(C)]` records of integers and byte arrays, for which every bit
    // pattern is a valid value; `read_unaligned` needs no alignment.
    Some(unsafe { std::ptr::read_unaligned(b.as_ptr().cast::<T>()) })
}

/// The bytes of a record, as the kernel reads them.
fn bytes_of<T: Copy>(r: &T) -> &[u8] {
    // SAFETY: `T` is one of the skeleton's `#[repr(C)]` records of 32- and
    // 64-bit integers and byte arrays, laid out without padding (the sizes
    // are checked in the tests): all of its bytes are initialized.
    unsafe { std::slice::from_raw_parts((r as *const T).cast::<u8>(), std::mem::size_of::<T>()) }
}

/// A NUL-terminated kernel string, as text (invalid UTF-8 replaced).
fn text_of(chars: &[i8]) -> String {
    let bytes: Vec<u8> = chars
        .iter()
        .map(|&c| c as u8)
        .take_while(|&c| c != 0)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The exec record, with its bounded strings cut to what was read.
fn exec_of(e: &ExecRecord) -> CaptureEvent {
    let path_len = (e.path_len as usize).min(e.path.len());
    let args_len = (e.args_len as usize).min(e.args.len());
    let args: Vec<u8> = e.args[..args_len].iter().map(|&c| c as u8).collect();
    let mut args = crate::procfs::split_args(&args);
    let args_cut = e.args_full > e.args_len;
    if args_cut {
        // The last argument read may be cut anywhere.
        if let Some(last) = args.last_mut() {
            last.push('…');
        }
    }
    CaptureEvent::Exec(Exec {
        pid: e.tgid,
        tid: e.tid,
        ts_ns: e.ts,
        comm: text_of(&e.comm),
        ppid: e.ppid,
        parent_comm: text_of(&e.parent_comm),
        path: (path_len > 0).then(|| text_of(&e.path[..path_len])),
        args,
        args_cut,
        uid: e.uid,
        gid: e.gid,
        cgroup: e.cgroup,
    })
}

/// A bounded string of an argument record (`None` when unreadable), and
/// whether it filled its buffer.
fn arg_text(chars: &[i8], len: u32) -> (Option<String>, bool) {
    let len = (len as usize).min(chars.len());
    (
        (len > 0).then(|| text_of(&chars[..len])),
        len == chars.len(),
    )
}

/// A `struct sockaddr` as the process passed it.
fn peer_of(b: &[u8]) -> Option<Peer> {
    let family = u16::from_ne_bytes([*b.first()?, *b.get(1)?]);
    let port = |b: &[u8]| u16::from_be_bytes([b[2], b[3]]);
    Some(match i32::from(family) {
        libc::AF_INET if b.len() >= 8 => Peer::Inet {
            ip: std::net::Ipv4Addr::new(b[4], b[5], b[6], b[7]).into(),
            port: port(b),
        },
        libc::AF_INET6 if b.len() >= 24 => {
            let ip: [u8; 16] = b[8..24].try_into().ok()?;
            Peer::Inet {
                ip: std::net::Ipv6Addr::from(ip).into(),
                port: port(b),
            }
        }
        libc::AF_UNIX => {
            // Abstract names start with a NUL; shown with a leading @.
            let path = &b[2..];
            let (at, path) = match path.first() {
                Some(0) => ("@", &path[1..]),
                _ => ("", path),
            };
            let end = path.iter().position(|&c| c == 0).unwrap_or(path.len());
            Peer::Unix {
                path: format!("{at}{}", String::from_utf8_lossy(&path[..end])),
            }
        }
        _ => Peer::Other,
    })
}

/// The argument record, typed by its call. `None` for a call this reader
/// does not know or a record without what its call needs.
fn args_of(e: &ArgsRecord) -> Option<CaptureEvent> {
    let (str1, cut1) = arg_text(&e.str, e.str_len);
    let (str2, cut2) = arg_text(&e.str2, e.str2_len);
    let addr = &e.addr[..(e.addr_len as usize).min(e.addr.len())];
    let [n0, n1] = e.num;
    // Open flags: O_WRONLY | O_RDWR, O_CREAT, O_TRUNC.
    let writes = |flags: u64| flags & 0o3 != 0 || flags & 0o1000 != 0 || flags & 0o100 != 0;
    // Ids are 32-bit; -1 means "unchanged".
    let id = |v: u64| (v as u32 != u32::MAX).then_some(v as u32);
    let nr = ArgsNr(e.nr as _);
    let what = match nr {
        ArgsNr::NR_OPEN | ArgsNr::NR_OPENAT | ArgsNr::NR_OPENAT2 => Activity::Open {
            path: str1?,
            write: writes(n0),
        },
        ArgsNr::NR_CONNECT => Activity::Connect {
            peer: peer_of(addr)?,
        },
        ArgsNr::NR_BIND => Activity::Bind {
            peer: peer_of(addr)?,
        },
        ArgsNr::NR_ACCEPT | ArgsNr::NR_ACCEPT4 => Activity::Accept {
            peer: peer_of(addr)?,
        },
        ArgsNr::NR_SETUID | ArgsNr::NR_SETREUID | ArgsNr::NR_SETRESUID => Activity::SetUid {
            uid: id(n1).or(id(n0))?,
        },
        ArgsNr::NR_SETGID | ArgsNr::NR_SETREGID | ArgsNr::NR_SETRESGID => Activity::SetGid {
            gid: id(n1).or(id(n0))?,
        },
        ArgsNr::NR_PTRACE => Activity::Ptrace {
            request: n0 as u32,
            target: n1 as u32,
        },
        ArgsNr::NR_INIT_MODULE | ArgsNr::NR_FINIT_MODULE => Activity::LoadModule {
            params: str1.unwrap_or_default(),
        },
        ArgsNr::NR_MOUNT => Activity::Mount {
            source: str1.unwrap_or_default(),
            target: str2?,
        },
        ArgsNr::NR_MEMFD_CREATE => Activity::MemfdCreate {
            name: str1.unwrap_or_default(),
        },
        ArgsNr::NR_UNLINK | ArgsNr::NR_UNLINKAT => Activity::Unlink { path: str1? },
        ArgsNr::NR_RENAME | ArgsNr::NR_RENAMEAT | ArgsNr::NR_RENAMEAT2 => Activity::Rename {
            from: str1?,
            to: str2?,
        },
        _ => return None,
    };
    // Calls with paths carry their directory fd in num[1].
    let has_dir = matches!(
        what,
        Activity::Open { .. } | Activity::Unlink { .. } | Activity::Rename { .. }
    );
    let dir = match n1 as i32 {
        fd if has_dir && fd >= 0 => Dir::Fd(fd),
        _ => Dir::Cwd,
    };
    let cut = cut1 || cut2;
    Some(CaptureEvent::Args(Args {
        pid: e.tgid,
        tid: e.tid,
        ts_ns: e.ts,
        what,
        dir,
        cut,
    }))
}

/// Whether a record is an argument event (whatever its contents).
fn is_args(b: &[u8]) -> bool {
    record::<SyscallRecord>(b).is_some_and(|h| Kind(h.kind) == Kind::EV_ARGS)
}

/// Parses one ring-buffer record (the kernel event layout ends here: what
/// leaves is a [`CaptureEvent`]). Short or unknown records are `None`.
pub fn parse(b: &[u8]) -> Option<CaptureEvent> {
    // Every record starts with the syscall record's fields.
    let head: SyscallRecord = record(b)?;
    match Kind(head.kind) {
        Kind::EV_SYSCALL => Some(CaptureEvent::Syscall {
            pid: head.tgid,
            tid: head.tid,
            nr: head.nr,
            ts_ns: head.ts,
        }),
        Kind::EV_EXEC => Some(exec_of(&record::<ExecRecord>(b)?)),
        Kind::EV_FORK => {
            let e: ProcRecord = record(b)?;
            Some(CaptureEvent::Fork {
                pid: e.tgid,
                parent: e.ppid,
                ts_ns: e.ts,
                comm: text_of(&e.comm),
            })
        }
        Kind::EV_EXIT => Some(CaptureEvent::Exit {
            pid: head.tgid,
            ts_ns: head.ts,
        }),
        Kind::EV_ARGS => args_of(&record::<ArgsRecord>(b)?),
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
    /// Argument events whose string or address could not be read (a page
    /// not yet in memory at the call's entry).
    args_unreadable: Counter,
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
            args_unreadable: metrics.counter("capture.args_unreadable"),
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

    let cfg = ConfigRecord {
        mode: if targets.all {
            Mode::MODE_ALL.0
        } else {
            Mode::MODE_FILTERED.0
        },
        self_tgid: std::process::id(),
        has_cgroups: u32::from(!cgroup_ids.is_empty()),
        pad: 0,
        argmask: argmask(&targets.arguments),
    };
    skel.maps
        .cfg
        .update(&0u32.to_ne_bytes(), bytes_of(&cfg), MapFlags::ANY)
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
    let unreadable = stats.args_unreadable.clone();
    let mut builder = RingBufferBuilder::new();
    builder
        .add(&skel.maps.events, move |data: &[u8]| -> i32 {
            // Runs inside libbpf's C callback: must not panic.
            match parse(data) {
                Some(e) => sink.borrow_mut().push(e),
                None if is_args(data) => unreadable.inc(),
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
            let total: u64 = per_cpu.iter().filter_map(|v| record::<u64>(v)).sum();
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

    /// Socket addresses as processes pass them: IPv4, IPv6, Unix paths and
    /// abstract names; an address cut short is of no known family, and a
    /// record without even a family is none.
    #[test]
    fn socket_addresses_are_typed() {
        let mut v4 = vec![0u8; 16];
        v4[..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
        v4[2..4].copy_from_slice(&8080u16.to_be_bytes());
        v4[4..8].copy_from_slice(&[10, 1, 2, 3]);
        assert_eq!(peer_of(&v4).unwrap().to_string(), "10.1.2.3:8080");
        let mut v6 = vec![0u8; 28];
        v6[..2].copy_from_slice(&(libc::AF_INET6 as u16).to_ne_bytes());
        v6[2..4].copy_from_slice(&443u16.to_be_bytes());
        v6[23] = 1;
        assert_eq!(peer_of(&v6).unwrap().to_string(), "[::1]:443");
        let mut unix = (libc::AF_UNIX as u16).to_ne_bytes().to_vec();
        unix.extend_from_slice(b"/run/x.sock\0junk");
        assert_eq!(peer_of(&unix).unwrap().to_string(), "unix:/run/x.sock");
        let mut abs = (libc::AF_UNIX as u16).to_ne_bytes().to_vec();
        abs.extend_from_slice(b"\0hidden");
        assert_eq!(peer_of(&abs).unwrap().to_string(), "unix:@hidden");
        assert_eq!(peer_of(&v4[..6]), Some(Peer::Other), "cut: no address");
        assert_eq!(peer_of(&[2]), None);
    }

    /// Copies bytes into a kernel record's `char` array.
    fn fill(dst: &mut [i8], src: &[u8]) {
        for (d, s) in dst.iter_mut().zip(src) {
            *d = *s as i8;
        }
    }

    /// An exec record: pid 5 (parent 4, uid 33) runs `bash -c id`.
    fn bash_exec() -> ExecRecord {
        let mut exec = ExecRecord {
            kind: Kind::EV_EXEC.0,
            tgid: 5,
            ppid: 4,
            uid: 33,
            path_len: 10,
            args_len: 11,
            args_full: 11,
            ..Default::default()
        };
        fill(&mut exec.comm, b"bash");
        fill(&mut exec.path, b"/bin/bash\0");
        fill(&mut exec.args, b"bash\0-c\0id\0");
        exec
    }

    #[test]
    fn parses_kernel_layouts_and_rejects_short_records() {
        // The hot path's record stays 24 bytes; exec/exit carry the comm.
        assert_eq!(std::mem::size_of::<SyscallRecord>(), 24);
        assert_eq!(std::mem::size_of::<ProcRecord>(), 40);
        assert_eq!(std::mem::size_of::<ConfigRecord>(), 80);
        assert_eq!(std::mem::size_of::<ArgsRecord>(), 600);
        assert_eq!(std::mem::size_of::<ExecRecord>(), 856);
        let b = bytes_of(&SyscallRecord {
            kind: Kind::EV_SYSCALL.0,
            tgid: 42,
            tid: 43,
            nr: 59,
            ts: 7,
        });
        assert_eq!(
            parse(b),
            Some(CaptureEvent::Syscall {
                pid: 42,
                tid: 43,
                nr: 59,
                ts_ns: 7
            })
        );
        let exec = bash_exec();
        let mut e = bytes_of(&exec).to_vec();
        match parse(&e) {
            Some(CaptureEvent::Exec(x)) => {
                assert_eq!((x.pid, x.ppid, x.uid, x.args_cut), (5, 4, 33, false));
                assert_eq!(x.comm, "bash");
                assert_eq!(x.path.as_deref(), Some("/bin/bash"));
                assert_eq!(x.args, ["bash", "-c", "id"]);
            }
            other => panic!("{other:?}"),
        }
        // Longer arguments than the record holds: cut, and said so.
        let mut long = exec;
        long.args_full = 4000;
        match parse(bytes_of(&long)) {
            Some(CaptureEvent::Exec(x)) if x.args_cut => {
                assert_eq!(x.args.last().map(String::as_str), Some("id…"))
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(parse(&b[..10]), None);
        assert_eq!(parse(&e[..300]), None, "a cut exec record");
        e[0..4].copy_from_slice(&9u32.to_ne_bytes());
        assert_eq!(parse(&e), None);
    }

    /// Seeds for `fuzz/fuzz_targets/ebpf_event.rs`: one record of each kind.
    #[test]
    fn fuzz_seeds_are_current() {
        let seed = |name: &str, b: &[u8]| {
            assert!(parse(b).is_some(), "{name} parses");
            crate::fuzz_seeds::check("ebpf_event", name, b)
        };
        seed(
            "syscall",
            bytes_of(&SyscallRecord {
                kind: Kind::EV_SYSCALL.0,
                tgid: 42,
                tid: 43,
                nr: 59,
                ts: 7,
            }),
        );
        seed("exec", bytes_of(&bash_exec()));
        seed(
            "exit",
            bytes_of(&ProcRecord {
                kind: Kind::EV_EXIT.0,
                tgid: 5,
                ..Default::default()
            }),
        );
        seed(
            "fork",
            bytes_of(&ProcRecord {
                kind: Kind::EV_FORK.0,
                tgid: 6,
                ppid: 5,
                ..Default::default()
            }),
        );
        let mut open = ArgsRecord {
            kind: Kind::EV_ARGS.0,
            tgid: 5,
            nr: ArgsNr::NR_OPENAT.0,
            num: [0o1101, 0],
            str_len: 12,
            ..Default::default()
        };
        fill(&mut open.str, b"/etc/shadow\0");
        seed("args_open", bytes_of(&open));
        let mut connect = ArgsRecord {
            kind: Kind::EV_ARGS.0,
            tgid: 5,
            nr: ArgsNr::NR_CONNECT.0,
            addr_len: 16,
            ..Default::default()
        };
        connect.addr[..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
        connect.addr[2..4].copy_from_slice(&4444u16.to_be_bytes());
        connect.addr[4..8].copy_from_slice(&[10, 9, 8, 7]);
        seed("args_connect", bytes_of(&connect));
    }
}
