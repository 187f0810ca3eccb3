//! `daisi record syscalls`: writes what live capture sees, one file per
//! process, so a user can train on their own hosts' normal behaviour.
//!
//! Format (readable by `daisi train syscall --abi x86_64` and the replay
//! source): a header line `# daisi-trace v1 abi=x86_64 pid=.. comm=.. exe=..`,
//! then the syscall numbers, whitespace-separated. Files are appended to as
//! calls arrive, so memory stays bounded however long the recording runs.

use crate::capture::ebpf::{Capture, CaptureEvent, Chunk, Targets};
use crate::metrics::Metrics;
use anyhow::Context;
use clap::Args;
use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Args, Debug, Clone)]
pub struct RecordSyscallsArgs {
    /// Watch every process (but daisi).
    #[arg(long)]
    pub all: bool,
    /// Watch this process and its children (repeatable).
    #[arg(long = "pid")]
    pub pids: Vec<u32>,
    /// Watch processes with this name (repeatable).
    #[arg(long = "comm")]
    pub comms: Vec<String>,
    /// Watch processes in this cgroup v2 directory (repeatable).
    #[arg(long = "cgroup")]
    pub cgroups: Vec<PathBuf>,
    /// How long to record ("30s", "10m").
    #[arg(long, value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Output directory.
    #[arg(long)]
    pub out: PathBuf,
}

/// Pending calls per process, written out in blocks.
struct Writer {
    dir: PathBuf,
    files: HashMap<u32, (std::fs::File, usize)>,
    comms: HashMap<u32, String>,
    seq: usize,
}

impl Writer {
    fn file(&mut self, pid: u32) -> anyhow::Result<&mut (std::fs::File, usize)> {
        if !self.files.contains_key(&pid) {
            self.seq += 1;
            let comm =
                self.comms.get(&pid).cloned().unwrap_or_else(|| {
                    crate::procfs::comm(pid).unwrap_or_else(|| "unknown".into())
                });
            let exe = crate::procfs::exe(pid).unwrap_or_default();
            let safe: String = comm
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            let path = self.dir.join(format!("{:06}-{pid}-{safe}.trace", self.seq));
            let mut f = std::fs::File::create(&path)
                .with_context(|| format!("creating {}", path.display()))?;
            writeln!(
                f,
                "# daisi-trace v1 abi=x86_64 pid={pid} comm={comm} exe={exe}"
            )?;
            self.files.insert(pid, (f, 0));
        }
        Ok(self.files.get_mut(&pid).expect("inserted above"))
    }

    fn write(&mut self, chunk: Chunk) -> anyhow::Result<u64> {
        let mut n = 0;
        for ev in chunk {
            match ev {
                CaptureEvent::Syscall { pid, nr, .. } => {
                    let (f, col) = self.file(pid)?;
                    write!(f, "{nr}{}", if *col % 32 == 31 { "\n" } else { " " })?;
                    *col += 1;
                    n += 1;
                }
                CaptureEvent::Exec(e) => {
                    self.comms.insert(e.pid, e.comm);
                }
                CaptureEvent::Fork { pid, comm, .. } => {
                    self.comms.insert(pid, comm);
                }
                // Traces hold call numbers only.
                CaptureEvent::Args(_) => {}
                CaptureEvent::Exit { pid, .. } => {
                    if let Some((mut f, _)) = self.files.remove(&pid) {
                        writeln!(f)?;
                    }
                    self.comms.remove(&pid);
                }
            }
        }
        Ok(n)
    }
}

pub fn record_syscalls(args: &RecordSyscallsArgs) -> anyhow::Result<()> {
    if !args.all && args.pids.is_empty() && args.comms.is_empty() && args.cgroups.is_empty() {
        anyhow::bail!("name what to record: --all, --pid, --comm or --cgroup");
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let metrics = Metrics::new();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Chunk>(4096);
    let targets = Targets {
        all: args.all,
        pids: args.pids.clone(),
        comms: args.comms.clone(),
        cgroups: args.cgroups.clone(),
        arguments: Vec::new(),
    };
    let capture = Capture::start(targets, tx, &metrics)?;
    let mut w = Writer {
        dir: args.out.clone(),
        files: HashMap::new(),
        comms: HashMap::new(),
        seq: 0,
    };
    let started = Instant::now();
    let mut last = Instant::now();
    let mut events = 0u64;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?;
    rt.block_on(async {
        while started.elapsed() < args.duration {
            if let Ok(Some(chunk)) =
                tokio::time::timeout(Duration::from_millis(100), rx.recv()).await
            {
                events += w.write(chunk)?;
            }
            if last.elapsed() >= Duration::from_secs(1) {
                last = Instant::now();
                eprintln!(
                    "recording: {:>4}s  {events} calls  {} processes",
                    started.elapsed().as_secs(),
                    w.seq
                );
            }
        }
        anyhow::Ok(())
    })?;
    capture.stop();
    while let Ok(chunk) = rx.try_recv() {
        events += w.write(chunk)?;
    }
    let lost = metrics.get("capture.kernel_dropped") + metrics.get("capture.userspace_dropped");
    println!(
        "recorded {events} calls of {} processes into {} ({lost} lost)",
        w.seq,
        args.out.display()
    );
    Ok(())
}
