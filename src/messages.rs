//! Wire messages: the versioned envelope and its payloads.
//!
//! Everything that crosses a node boundary is an [`Envelope`], serialized with
//! `rmp-serde` as MessagePack *maps with named fields* (`to_vec_named`), so a
//! newer sender can add fields and an older receiver ignores them. The
//! envelope's `schema` is the wire's major version: a receiver rejects a
//! different major version (counted, logged, dropped) instead of guessing.
//!
//! These are wire types: plain data, no behaviour beyond (de)serialization and
//! splitting. Decoding untrusted bytes is bounded by `max_bytes` before any
//! parsing, and only ever produces these plain structs (nothing that can run
//! code, unlike the prototype's pickle).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub mod limits;

/// Major version of the wire schema. Bump only for incompatible changes;
/// adding a field with `#[serde(default)]` is compatible and needs no bump.
pub const SCHEMA_VERSION: u16 = 1;

/// What a node does (its configuration decides; heartbeats report it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Capture on this host and ship batches over NATS.
    Collector,
    /// Receive batches over NATS, score them, raise alerts.
    Compute,
    /// Both in one process, joined in-process (no broker needed).
    #[default]
    Both,
}

impl Role {
    pub fn collects(self) -> bool {
        matches!(self, Role::Collector | Role::Both)
    }
    pub fn computes(self) -> bool {
        matches!(self, Role::Compute | Role::Both)
    }
    pub fn uses_nats(self) -> bool {
        !matches!(self, Role::Both)
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Collector => "collector",
            Role::Compute => "compute",
            Role::Both => "both",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Every message between nodes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// Wire schema major version ([`SCHEMA_VERSION`]).
    pub schema: u16,
    /// Id of the sending node (unique per process).
    pub node_id: String,
    /// Host name the sending node runs on.
    pub host: String,
    /// Per-sender sequence number, strictly increasing; receivers use
    /// `(node_id, seq)` to drop redelivered duplicates.
    pub seq: u64,
    /// Send time, nanoseconds since the Unix epoch.
    pub ts_ns: u64,
    /// What the message carries.
    pub payload: Payload,
}

/// The kinds of payload. Externally tagged, so the kind is explicit on the
/// wire and an unknown kind is a clean decode error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Payload {
    SyscallBatch(SyscallBatch),
    FlowBatch(FlowBatch),
    /// Log lines a collector read (`[[log_source]]`).
    LogBatch(LogBatch),
    Alert(Alert),
    Heartbeat(Heartbeat),
    /// A response a compute node asks one host's collector to carry out.
    Command(Command),
    /// What a collector did about a [`Command`]: an alert of module
    /// `response` (its own subject kind, apart from the alert stream's).
    Outcome(Alert),
}

/// The kind of a payload: its subject token, `daisi.v1.<kind>.<host>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PayloadKind {
    Syscall,
    Flow,
    Log,
    Alert,
    Heartbeat,
    Command,
    Outcome,
}

impl PayloadKind {
    pub const ALL: [PayloadKind; 7] = [
        PayloadKind::Syscall,
        PayloadKind::Flow,
        PayloadKind::Log,
        PayloadKind::Alert,
        PayloadKind::Heartbeat,
        PayloadKind::Command,
        PayloadKind::Outcome,
    ];

    /// Data kinds: batches the durable stream carries and partitions.
    pub fn is_data(self) -> bool {
        matches!(
            self,
            PayloadKind::Syscall | PayloadKind::Flow | PayloadKind::Log
        )
    }

    /// The subject token.
    pub fn as_str(self) -> &'static str {
        match self {
            PayloadKind::Syscall => "syscall",
            PayloadKind::Flow => "flow",
            PayloadKind::Log => "log",
            PayloadKind::Alert => "alert",
            PayloadKind::Heartbeat => "heartbeat",
            PayloadKind::Command => "command",
            PayloadKind::Outcome => "outcome",
        }
    }
}

impl std::fmt::Display for PayloadKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Payload {
    /// What this payload is (its subject token).
    pub fn kind(&self) -> PayloadKind {
        match self {
            Payload::SyscallBatch(_) => PayloadKind::Syscall,
            Payload::FlowBatch(_) => PayloadKind::Flow,
            Payload::LogBatch(_) => PayloadKind::Log,
            Payload::Alert(_) => PayloadKind::Alert,
            Payload::Heartbeat(_) => PayloadKind::Heartbeat,
            Payload::Command(_) => PayloadKind::Command,
            Payload::Outcome(_) => PayloadKind::Outcome,
        }
    }

    /// The host token of this payload's subject: the sender's host, except
    /// for a command, which is addressed to its target host.
    pub fn subject_host<'a>(&'a self, sender_host: &'a str) -> &'a str {
        match self {
            Payload::Command(c) => &c.target_host,
            _ => sender_host,
        }
    }

    /// The partition key of a data payload, the last token of its subject
    /// `daisi.v1.<kind>.<host>.<key>`: a syscall batch's pid (a process's
    /// batches stay together), `0` for flows and logs (a host's lines stay
    /// in order); `None` for other kinds.
    pub fn subject_key(&self) -> Option<u32> {
        match self {
            Payload::SyscallBatch(b) => Some(b.pid),
            Payload::FlowBatch(_) | Payload::LogBatch(_) => Some(0),
            _ => None,
        }
    }

    /// Splits a batch in two halves that can each be processed on their own,
    /// or gives it back when it cannot be split further. Used to stay under
    /// the broker's maximum payload.
    pub fn split(self) -> Result<(Payload, Payload), Box<Payload>> {
        match self {
            Payload::SyscallBatch(b) if b.events.len() >= 2 => {
                let (a, b) = b.split();
                Ok((Payload::SyscallBatch(a), Payload::SyscallBatch(b)))
            }
            Payload::FlowBatch(mut b) if b.flows.len() >= 2 => {
                let rest = b.flows.split_off(b.flows.len() / 2);
                let second = FlowBatch {
                    flows: rest,
                    ..b.clone()
                };
                Ok((Payload::FlowBatch(b), Payload::FlowBatch(second)))
            }
            Payload::LogBatch(mut b) if b.lines.len() >= 2 => {
                let rest = b.lines.split_off(b.lines.len() / 2);
                let second = LogBatch {
                    lines: rest,
                    ..b.clone()
                };
                Ok((Payload::LogBatch(b), Payload::LogBatch(second)))
            }
            other => Err(Box::new(other)),
        }
    }
}

/// System-call ABI that gives meaning to a syscall number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyscallAbi {
    /// 64-bit x86 (live capture on x86_64 hosts).
    X86_64,
    /// 32-bit x86 (ADFA-LD).
    I386,
}

/// One system call of one thread. On the wire a pair `[nr, ts_ns]`: the one
/// positional type of the format, because batches carry millions of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "(u32, u64)", into = "(u32, u64)")]
pub struct SyscallEvent {
    /// Syscall number in the batch's ABI.
    pub nr: u32,
    /// Nanosecond timestamp (CLOCK_BOOTTIME for live capture).
    pub ts_ns: u64,
}

impl From<(u32, u64)> for SyscallEvent {
    fn from((nr, ts_ns): (u32, u64)) -> Self {
        SyscallEvent { nr, ts_ns }
    }
}

impl From<SyscallEvent> for (u32, u64) {
    fn from(e: SyscallEvent) -> Self {
        (e.nr, e.ts_ns)
    }
}

/// Consecutive system calls of one process, with the calls that preceded
/// them so that a compute node can score the batch without any other batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyscallBatch {
    /// Host the process runs on.
    pub host: String,
    /// Process id (thread group id).
    pub pid: u32,
    /// Thread id of the first event, for information.
    pub tid: u32,
    /// Process name (kernel `comm`).
    pub comm: String,
    /// Executable path, when known.
    #[serde(default)]
    pub exe: Option<String>,
    /// ABI of the syscall numbers.
    pub abi: SyscallAbi,
    /// Trailing calls of the previous batch of this process (at most window
    /// length − 1), oldest first.
    #[serde(deserialize_with = "limits::vec::<_, _, { limits::CONTEXT }>")]
    pub context: Vec<u32>,
    /// The new calls, oldest first.
    #[serde(deserialize_with = "limits::vec::<_, _, { limits::EVENTS }>")]
    pub events: Vec<SyscallEvent>,
    /// True when the process has exited and this is its last batch.
    #[serde(default)]
    pub last: bool,
    /// The process, then its parent, grandparent... as far as the collector
    /// knows them (bounded).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "limits::vec::<_, _, { limits::LINEAGE }>"
    )]
    pub lineage: Vec<ProcessInfo>,
    /// What the process did since its previous batch that a baseline
    /// judges, each distinct thing once per program run, oldest first.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "limits::vec::<_, _, { limits::ACTIVITY }>"
    )]
    pub activity: Vec<ActivityEvent>,
}

impl SyscallBatch {
    /// From live capture: the collector names the process (its lineage);
    /// replayed traces name none.
    pub fn is_live(&self) -> bool {
        !self.lineage.is_empty()
    }

    /// Splits the events in two; the second half's context is the trailing
    /// calls before it (as many as the batch's own context, and at least
    /// [`SPLIT_CONTEXT`] when there are), so both halves stay
    /// self-contained: no scoring window is lost at the cut, even when the
    /// batch's context was short (a process's first batch).
    pub fn split(mut self) -> (SyscallBatch, SyscallBatch) {
        let ctx_len = self.context.len().max(SPLIT_CONTEXT);
        let rest = self.events.split_off(self.events.len() / 2);
        let mut ctx: Vec<u32> = self
            .context
            .iter()
            .copied()
            .chain(self.events.iter().map(|e| e.nr))
            .collect();
        let keep = ctx.len().saturating_sub(ctx_len);
        ctx.drain(..keep);
        // Activity goes with the half its time falls in.
        let cut_ns = rest.first().map_or(u64::MAX, |e| e.ts_ns);
        let later = self.activity.iter().position(|a| a.ts_ns >= cut_ns);
        let activity = later.map_or_else(Vec::new, |i| self.activity.split_off(i));
        let second = SyscallBatch {
            context: ctx,
            events: rest,
            last: self.last,
            activity,
            ..self.clone()
        };
        self.last = false;
        (self, second)
    }
}

/// Earlier calls the second half of a split batch carries at least: more
/// than any scoring window needs (`syscall_batcher.context` is the model's
/// window − 1: 31 by default).
pub const SPLIT_CONTEXT: usize = 64;

/// Log lines of one collector, in the order they were read (per file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogBatch {
    pub host: String,
    #[serde(deserialize_with = "limits::vec::<_, _, { limits::LINES }>")]
    pub lines: Vec<LogLine>,
}

/// One line of a log, as written (the compute side parses it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogLine {
    /// The `[[log_source]]` it came from (its `name`).
    pub source: String,
    /// The file it was read from; `journal` for the systemd journal.
    pub path: String,
    /// When the collector read it, ns since the Unix epoch.
    pub read_ns: u64,
    /// The line without its newline (a journal entry: its JSON object),
    /// at most the source's `max_line` bytes.
    pub text: String,
    /// It was longer and was cut at `max_line`.
    #[serde(default)]
    pub cut: bool,
    /// The program that writes this source's lines when they carry no
    /// syslog header (the source's `program`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub program: Option<String>,
}

/// Flow records of one collector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowBatch {
    pub host: String,
    #[serde(deserialize_with = "limits::vec::<_, _, { limits::FLOWS }>")]
    pub flows: Vec<FlowRecord>,
}

/// One finished bidirectional flow and its features.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowRecord {
    pub src: String,
    pub dst: String,
    pub src_port: u16,
    pub dst_port: u16,
    /// IP protocol number (6 TCP, 17 UDP, 1 ICMP...).
    pub proto: u8,
    pub first_ns: u64,
    pub last_ns: u64,
    /// Named features (FlowMeter's column names and our own).
    #[serde(deserialize_with = "limits::map::<_, _, _, { limits::FEATURES }>")]
    pub features: BTreeMap<String, f64>,
    /// Why the flow ended.
    #[serde(default)]
    pub end: FlowEnd,
    /// Local process owning the socket, when known.
    #[serde(default)]
    pub pid: Option<u32>,
    #[serde(default)]
    pub exe: Option<String>,
    /// What the flow's first bytes said (HTTP, TLS, SSH, DNS), when the
    /// collector looked (`flows::app`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<AppMeta>,
}

/// Application metadata from the first bytes of a flow (bounded; no
/// reassembly). Strings come from the network: escape them wherever shown.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AppMeta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpMeta>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsMeta>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh: Option<SshMeta>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<DnsMeta>,
    /// The flow went on past the bytes inspected (`flows.app_bytes`).
    #[serde(default)]
    pub cut: bool,
}

impl AppMeta {
    /// One phrase for people (`HTTP GET /admin -> 404 (3 requests)`, `TLS
    /// 1.3 to api.example`...), control characters escaped; empty when
    /// nothing was recognized.
    pub fn describe(&self) -> String {
        let clean = |s: &str| {
            let cut: String = s.chars().take(120).collect();
            cut.chars()
                .flat_map(|c| {
                    if c.is_control() {
                        c.escape_default().collect::<Vec<_>>()
                    } else {
                        vec![c]
                    }
                })
                .collect::<String>()
        };
        let mut parts = Vec::new();
        if let Some(h) = &self.http {
            let mut p = format!(
                "HTTP {} {}",
                clean(h.method.as_deref().unwrap_or("?")),
                clean(h.uri.as_deref().unwrap_or("?"))
            );
            if let Some(host) = &h.host {
                p.push_str(&format!(" (Host {})", clean(host)));
            }
            if let Some(code) = h.status {
                p.push_str(&format!(" -> {code}"));
            }
            if h.requests > 1 {
                p.push_str(&format!(
                    ", {} requests, {} 4xx",
                    h.requests, h.client_errors
                ));
            }
            parts.push(p);
        }
        if let Some(t) = &self.tls {
            parts.push(format!(
                "TLS {}{}",
                t.version,
                t.server_name
                    .as_deref()
                    .map(|n| format!(" to {}", clean(n)))
                    .unwrap_or_default()
            ));
        }
        if let Some(ssh) = &self.ssh {
            let side = |v: &Option<String>| v.as_deref().map(clean).unwrap_or_else(|| "?".into());
            parts.push(format!("SSH {} / {}", side(&ssh.client), side(&ssh.server)));
        }
        if let Some(d) = &self.dns {
            parts.push(format!(
                "DNS {} {}{}",
                d.qtype.as_deref().unwrap_or("?"),
                clean(d.name.as_deref().unwrap_or("?")),
                d.response_code
                    .as_deref()
                    .map(|c| format!(" -> {c}"))
                    .unwrap_or_default()
            ));
        }
        parts.join("; ")
    }
}

/// HTTP: the first request and response, and counts over the flow's
/// inspected segments (keep-alive).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HttpMeta {
    /// ECS `http.request.method`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// ECS `url.original` (the request target).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// ECS `url.domain` (the Host header).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// ECS `user_agent.original`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// ECS `http.response.status_code` (the first response's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    pub requests: u32,
    pub responses: u32,
    /// Responses with a 4xx status.
    pub client_errors: u32,
}

/// TLS ClientHello.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TlsMeta {
    /// ECS `tls.client.server_name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    /// The highest version offered (`1.3` from supported_versions, else the
    /// hello's own), ECS `tls.version`.
    pub version: String,
    /// ECS `tls.client.ja3`: MD5 of the JA3 string.
    pub ja3: String,
    /// `tls.client.ja4`: the JA4 fingerprint (none from a sender of an
    /// older version).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ja4: Option<String>,
}

/// SSH identification lines (`SSH-2.0-OpenSSH_9.2p1`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SshMeta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
}

/// DNS over UDP: the first question, the first response code, counts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DnsMeta {
    /// ECS `dns.question.name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// ECS `dns.question.type` (`A`, `TXT`...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qtype: Option<String>,
    /// ECS `dns.response_code` (`NOERROR`, `NXDOMAIN`...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_code: Option<String>,
    pub queries: u32,
    pub responses: u32,
}

/// Why a flow ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum FlowEnd {
    /// TCP FIN from both sides.
    Fin,
    /// TCP reset.
    Rst,
    /// No packet for `flow_merge.idle_timeout`.
    Idle,
    /// Open for `flow_merge.active_timeout`.
    Active,
    /// The flow table was full.
    Evicted,
    /// The capture ended (end of a file, or the node stopping).
    EndOfInput,
    /// Not ended: a snapshot of a flow open for
    /// `flow_merge.report_open_after`, sent once so that per-source rules
    /// see long, slow connections while they last; its final record (same
    /// endpoints and `first_ns`) follows. Not scored by the flow model.
    /// A receiver of an older version reads it as `unknown`.
    Open,
    /// Not said (a sender of an older version).
    #[default]
    #[serde(other)]
    Unknown,
}

impl FlowEnd {
    pub fn as_str(self) -> &'static str {
        match self {
            FlowEnd::Fin => "fin",
            FlowEnd::Rst => "rst",
            FlowEnd::Idle => "idle",
            FlowEnd::Active => "active",
            FlowEnd::Evicted => "evicted",
            FlowEnd::EndOfInput => "end_of_input",
            FlowEnd::Open => "open",
            FlowEnd::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for FlowEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Severity of an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

/// A response action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Drop packets from the remote address of a flow (nftables, expiring).
    Block,
    /// SIGSTOP the process (it can be resumed with SIGCONT).
    Stop,
    /// SIGKILL the process.
    Kill,
    /// Freeze the process's whole cgroup (a container, a service).
    Freeze,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::Block => "block",
            Action::Stop => "stop",
            Action::Kill => "kill",
            Action::Freeze => "freeze",
        }
    }
}

/// A response a compute node asks the collector of `target_host` to carry
/// out, published on `daisi.v1.command.<target_host>`. The collector applies
/// its own safeguards (opt-in, allowlists, dry run) and answers with an
/// alert of module `response` whose id is this command's id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Command {
    /// Unique id; the outcome alert carries it.
    pub id: String,
    /// The only host whose collector may execute it.
    pub target_host: String,
    pub action: Action,
    /// Report what would be done, change nothing (the collector also does
    /// a dry run when its own config says so).
    pub dry_run: bool,
    /// How long a block lasts, in seconds.
    pub block_for_s: u64,
    /// The alert the command answers: its entity, pid and flow name the target.
    pub alert: Alert,
    /// Addresses the command must never block: the sending compute node's
    /// own (its interfaces), beside the collector's own never-block list.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "limits::vec::<_, _, { limits::ADDRESSES }>"
    )]
    pub protect: Vec<String>,
}

/// What the collector knows of a process: who it is, what it runs, who
/// started it. Arguments are redacted on the collector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ProcessInfo {
    pub pid: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ppid: Option<u32>,
    /// Kernel name (`comm`).
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executable: Option<String>,
    /// Arguments, `argv[0]` first (bounded by the capture; redacted).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "limits::vec::<_, _, { limits::ARGS }>"
    )]
    pub args: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    /// The user name of `uid` on its host (ECS `user.name`); none for a
    /// process in a container, whose names are the image's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
    /// cgroup v2 id (a container, a service).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<u64>,
    /// When the process started (its fork, or exec when the fork was not
    /// seen), Unix ns: a pid is only an identity together with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_ns: Option<u64>,
    /// The container it runs in (none on the host).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<ContainerFields>,
}

/// A container (ECS `container.id`, `container.image.name`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerFields {
    pub id: String,
    /// The image, when the container engine's store says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ContainerImage>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerImage {
    pub name: String,
}

/// One thing a process did that host baselines judge, from the capture's
/// argument events (collector side, paths made absolute, secrets redacted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivityEvent {
    pub pid: u32,
    /// The same clock as the batch's calls (CLOCK_BOOTTIME).
    pub ts_ns: u64,
    pub what: Activity,
}

/// The security-relevant calls whose arguments are captured.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Activity {
    /// `open`/`openat`/`openat2`; `write` when opened for writing,
    /// creating or truncating.
    Open {
        path: String,
        write: bool,
    },
    Connect {
        peer: Peer,
    },
    Bind {
        peer: Peer,
    },
    Accept {
        peer: Peer,
    },
    /// The `setuid` family: the effective user id asked for.
    SetUid {
        uid: u32,
    },
    /// The `setgid` family: the effective group id asked for.
    SetGid {
        gid: u32,
    },
    Ptrace {
        target: u32,
        request: u32,
    },
    /// `init_module`/`finit_module`, with the module's parameters.
    LoadModule {
        params: String,
    },
    Mount {
        source: String,
        target: String,
    },
    /// A file in memory: the usual first step of fileless execution.
    MemfdCreate {
        name: String,
    },
    Unlink {
        path: String,
    },
    Rename {
        from: String,
        to: String,
    },
    /// A kind this build does not know (a newer collector's).
    #[serde(other)]
    Unknown,
}

/// What a program did, as a host baseline holds it (generalized: numeric
/// path parts become `*`, ordinary files their directory's `*`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum Behaviour {
    /// Starts this program (by executable path).
    Child(String),
    /// Runs as this user id.
    RunsAs(u32),
    /// Reads files matching this pattern.
    Reads(String),
    /// Writes, creates or truncates files matching this pattern.
    Writes(String),
    /// Connects to this peer (`ip:port`, `*:port` once many addresses on
    /// one port were seen, `unix:path`).
    Connects(String),
    /// Listens on this local address (bind).
    Listens(String),
    /// Accepts connections.
    Accepts,
    /// Asks for this effective user id (setuid family).
    SetsUid(u32),
    /// Asks for this effective group id.
    SetsGid(u32),
    /// Creates files in memory (`memfd_create`).
    MemoryFiles,
    /// Traces other processes.
    Traces,
    /// Loads kernel modules.
    LoadsModules,
    /// Mounts file systems.
    Mounts,
    /// Deletes or renames files matching this pattern (under watched
    /// paths).
    Removes(String),
    /// Makes calls in orders its learnt sequences do not hold (accepted
    /// by an operator: the program's sequences are no longer judged).
    UnusualSequences,
    /// Matches this Sigma rule (its id, else its title): accepted by an
    /// operator, the rule no longer raises for the program on the host.
    MatchesRule(String),
    #[serde(other)]
    Unknown,
}

impl std::fmt::Display for Behaviour {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Behaviour::Child(e) => write!(f, "starts {e}"),
            Behaviour::RunsAs(u) => write!(f, "runs as uid {u}"),
            Behaviour::Reads(p) => write!(f, "reads {p}"),
            Behaviour::Writes(p) => write!(f, "writes {p}"),
            Behaviour::Connects(p) => write!(f, "connects to {p}"),
            Behaviour::Listens(p) => write!(f, "listens on {p}"),
            Behaviour::Accepts => write!(f, "accepts connections"),
            Behaviour::UnusualSequences => write!(f, "makes calls in unusual orders"),
            Behaviour::SetsUid(u) => write!(f, "sets uid {u}"),
            Behaviour::SetsGid(g) => write!(f, "sets gid {g}"),
            Behaviour::MemoryFiles => write!(f, "creates in-memory files"),
            Behaviour::Traces => write!(f, "traces processes"),
            Behaviour::LoadsModules => write!(f, "loads kernel modules"),
            Behaviour::Mounts => write!(f, "mounts file systems"),
            Behaviour::Removes(p) => write!(f, "deletes or renames {p}"),
            Behaviour::MatchesRule(r) => write!(f, "matches Sigma rule {r}"),
            Behaviour::Unknown => write!(f, "(unknown behaviour)"),
        }
    }
}

/// A socket address.
#[serde_with::serde_as]
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "family", rename_all = "snake_case")]
pub enum Peer {
    Inet {
        /// As text (`10.0.0.1`, `::1`) in every format: an internally
        /// tagged enum buffers its fields, and an address buffered from
        /// MessagePack is not one serde can read back as binary.
        #[serde_as(as = "serde_with::DisplayFromStr")]
        ip: std::net::IpAddr,
        port: u16,
    },
    Unix {
        path: String,
    },
    #[serde(other)]
    Other,
}

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Peer::Inet { ip, port } => write!(f, "{}", std::net::SocketAddr::new(*ip, *port)),
            Peer::Unix { path } if path.is_empty() => write!(f, "unix:(unnamed)"),
            Peer::Unix { path } => write!(f, "unix:{path}"),
            Peer::Other => write!(f, "(other family)"),
        }
    }
}

/// What raised an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum AlertModule {
    /// A process's system calls (the syscall model).
    Syscall,
    /// A network flow (the flow model).
    Network,
    /// A process with both a syscall and a network alert, or a process
    /// tree's findings.
    Incident,
    /// A program did what its host profile does not hold.
    Baseline,
    /// System or application log lines (`[log_detector]`).
    Log,
    /// What a response did about another alert.
    Response,
    /// A Sigma rule matched (`[rules] paths`).
    Sigma,
}

impl AlertModule {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertModule::Syscall => "syscall",
            AlertModule::Network => "network",
            AlertModule::Incident => "incident",
            AlertModule::Response => "response",
            AlertModule::Baseline => "baseline",
            AlertModule::Log => "log",
            AlertModule::Sigma => "sigma",
        }
    }
}

impl std::fmt::Display for AlertModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The process an alert is about (ECS `process.*`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ProcessFields {
    pub pid: u32,
    /// Kernel name (`comm`), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Executable path, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executable: Option<String>,
    /// Arguments, `argv[0]` first (redacted on the collector).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// The process that started it (ECS `process.parent.*`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<Box<ProcessFields>>,
    /// When it started, Unix ns (with the pid, its identity: a response
    /// acts only on the process that started then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_ns: Option<u64>,
    /// The pids above the parent, nearest first, as far as the collector
    /// knew them (`[syscall_source] ancestors`): Elastic Defend's
    /// `process.Ext.ancestry`, as pids.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "limits::vec::<_, _, { limits::ARGS }>"
    )]
    pub ancestry: Vec<u32>,
}

impl ProcessFields {
    /// From what the collector knew; the parent from the next in line.
    pub fn from_lineage(lineage: &[ProcessInfo]) -> Option<ProcessFields> {
        let (me, rest) = lineage.split_first()?;
        Some(ProcessFields {
            pid: me.pid,
            name: Some(me.name.clone()),
            executable: me.executable.clone(),
            args: me.args.clone(),
            parent: rest
                .first()
                .and_then(|p| ProcessFields::from_lineage(std::slice::from_ref(p)))
                .map(Box::new),
            start_ns: me.start_ns,
            ancestry: rest.iter().skip(1).map(|p| p.pid).collect(),
        })
    }
}

impl ProcessFields {
    /// One phrase for people: name, executable, pid, command line (cut at
    /// 160 characters) and who started it.
    pub fn describe(&self) -> String {
        let mut out = format!(
            "{} ({}) pid {}",
            self.name.as_deref().unwrap_or("?"),
            self.executable.as_deref().unwrap_or("executable unknown"),
            self.pid
        );
        if !self.args.is_empty() {
            let line = self.args.join(" ");
            let cut: String = line.chars().take(160).collect();
            let more = if cut.len() < line.len() { "…" } else { "" };
            out.push_str(&format!(" `{cut}{more}`"));
        }
        if let Some(p) = &self.parent {
            out.push_str(&format!(
                ", started by {} ({}) pid {}",
                p.name.as_deref().unwrap_or("?"),
                p.executable.as_deref().unwrap_or("executable unknown"),
                p.pid
            ));
        }
        out
    }
}

/// One process of an incident's process tree (its fields inline: `pid`,
/// `ppid`, `name`, ...), with what was found about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct TreeMember {
    #[serde(flatten)]
    pub process: ProcessInfo,
    /// What was found about this process (none for the root and the
    /// processes between it and the ones found).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<Finding>,
}

/// One detection joined into an incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub module: AlertModule,
    pub severity: Severity,
    pub score: f64,
    pub threshold: f64,
    /// The detection's one-line summary.
    pub summary: String,
    /// Baseline findings: the rule, and what the program did (the entry
    /// `daisi baseline accept` adds to the profile).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<RuleFields>,
    /// The ATT&CK tactics and techniques it indicates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threat: Option<ThreatFields>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<BaselineFields>,
}

impl Finding {
    /// A detection, as its process tree's incident lists it.
    pub fn of(a: &Alert) -> Finding {
        Finding {
            module: a.module,
            severity: a.severity,
            score: a.score,
            threshold: a.threshold,
            summary: a.summary.clone(),
            rule: a.rule.clone(),
            threat: a.threat.clone(),
            baseline: a.baseline.clone(),
        }
    }
}

/// What kind of record an alert is (ECS `event.*`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct EventFields {
    pub kind: EventKind,
}

/// ECS `event.kind` values daisi writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A detection, or an incident joining detections.
    #[default]
    Alert,
    /// Something done (a response's outcome).
    Event,
    /// A kind this build does not know.
    #[serde(other)]
    Unknown,
}

/// The rule that raised a detection (ECS `rule.*`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct RuleFields {
    /// e.g. `baseline.new_child`, `sigma.<title>`.
    pub name: String,
    /// A shared rule's id (Sigma's UUID).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license: Option<String>,
    /// Where the rule comes from (`sigma`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ruleset: Option<String>,
}

/// MITRE ATT&CK (ECS `threat.*`): the tactics and techniques a detection
/// indicates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ThreatFields {
    #[serde(default)]
    pub tactic: ThreatTactic,
    #[serde(default)]
    pub technique: ThreatTechnique,
}

/// ECS `threat.tactic.*`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ThreatTactic {
    /// e.g. `credential-access`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub name: Vec<String>,
}

/// ECS `threat.technique.*`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ThreatTechnique {
    /// e.g. `T1552.001`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub id: Vec<String>,
    /// Each id's name in ATT&CK, e.g. `Private Keys` (empty for an id
    /// ATT&CK does not have).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "limits::vec::<_, _, { limits::ARGS }>"
    )]
    pub name: Vec<String>,
}

/// What a baseline finding is about: the program and what it did that its
/// profile does not hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BaselineFields {
    pub program: String,
    pub behaviour: Behaviour,
}

/// A file an alert is about (ECS `file.*`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileFields {
    pub path: String,
}

/// The user a process ran as (ECS `user.*`, `group.*`: ids as text).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserFields {
    /// `user.id` (text; empty, and left out, when only the name is known).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    /// `user.name`: the user a log line named, or the host's name of the
    /// process's uid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl UserFields {
    /// The user of a process, when its uid is known.
    pub fn of_process(p: &ProcessInfo) -> Option<Self> {
        p.uid.map(|uid| UserFields {
            id: uid.to_string(),
            name: p.user_name.clone(),
        })
    }
}

/// The log lines an alert is about (ECS `log.*`; the lines themselves as
/// `event.original` would hold them, the last few).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogFields {
    /// `log.file.path`: where the lines were read (`journal`).
    pub file: String,
    /// The lines that raised the alert, oldest first, bounded in number
    /// and length; shown escaped (a monitored program wrote them).
    pub lines: Vec<String>,
}

/// One end of a flow (ECS `source.*`, `destination.*`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Endpoint {
    pub ip: String,
    pub port: u16,
}

/// The flow a network alert is about (ECS `network.*` plus its ending).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowFields {
    /// `tcp`, `udp`, `icmp`, ...
    pub transport: String,
    pub packets: u64,
    pub bytes: u64,
    pub duration_ns: u64,
    pub end: FlowEnd,
    /// What the flow's first bytes said (HTTP, TLS, SSH, DNS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<AppMeta>,
}

/// The most anomalous window of a process (syscall alerts).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowFields {
    /// The window's calls, by canonical name (`<oov>` for unknown ones).
    pub calls: Vec<String>,
    /// Its score.
    pub score: f64,
    /// Windows the process's score was computed over.
    pub windows: u64,
}

/// A flow feature that raised a network alert's score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureFields {
    /// FlowMeter's feature name.
    pub name: String,
    pub value: f64,
    /// Distance from normal: standard deviations from the training mean.
    pub z: f64,
    /// Its share of the log-odds.
    pub contribution: f64,
}

/// What a response did (module `response`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResponseFields {
    pub action: Action,
    /// Carried out (or, in a dry run, what would have been).
    pub done: bool,
    /// What was done, or why not.
    pub detail: String,
    /// The alert it answers.
    pub answers: String,
}

/// A detection, with what it was based on: typed fields a SIEM can query
/// (named as the Elastic Common Schema names them where one applies), and
/// a one-line summary for people.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Stable id (unique per alert).
    pub id: String,
    pub ts_ns: u64,
    /// Node that raised it.
    pub node_id: String,
    /// Host the observed entity lives on.
    pub host: String,
    pub module: AlertModule,
    pub severity: Severity,
    /// Entity the alert is about, e.g. `pid:1234` or `flow:1.2.3.4->5.6.7.8`
    /// (repeats for the same entity fold).
    pub entity: String,
    /// One line for people: what was seen, where, how far from normal.
    #[serde(default)]
    pub summary: String,
    /// ECS `event.kind`: `alert` for detections and incidents, `event` for
    /// a response's outcome.
    #[serde(default)]
    pub event: EventFields,
    /// The process (syscall alerts; network alerts attributed to one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<ProcessFields>,
    /// The user the process ran as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<UserFields>,
    /// The container the process ran in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<ContainerFields>,
    pub score: f64,
    pub threshold: f64,
    pub model: String,
    /// How many detections were folded into this alert.
    #[serde(default = "one")]
    pub count: u64,
    /// Syscall alerts: the most anomalous window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<WindowFields>,
    /// Network alerts: the flow's ends and the flow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Endpoint>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<Endpoint>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flow: Option<FlowFields>,
    /// The file a finding is about (ECS `file.path`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<FileFields>,
    /// The rule that raised it (ECS `rule.name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<RuleFields>,
    /// The ATT&CK tactics and techniques it indicates (ECS `threat.*`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threat: Option<ThreatFields>,
    /// Baseline findings: the program and what it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<BaselineFields>,
    /// Log alerts: the lines that raised it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<LogFields>,
    /// Network alerts: the features that raised the score most.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub features: Vec<FeatureFields>,
    /// Incidents: the alerts joined.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub related: Vec<String>,
    /// Process-tree incidents: the root process and each process below it
    /// with what was found, parents before children.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tree: Vec<TreeMember>,
    /// Response outcomes: what was done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<ResponseFields>,
    /// When the detected activity was last observed (a flow's last
    /// packet), so that `ts_ns - observed_ns` is the detection latency.
    #[serde(default)]
    pub observed_ns: Option<u64>,
    /// First and last time this alert's entity was detected within the
    /// cooldown (equal for a first alert; an update of a folded alert,
    /// same id, carries the count and the span).
    #[serde(default)]
    pub first_seen_ns: u64,
    #[serde(default)]
    pub last_seen_ns: u64,
}

fn one() -> u64 {
    1
}

impl Alert {
    /// A key for stores that keep one copy of each detection: the same
    /// detection raised by any node (again, by the node that took a
    /// partition over) gives the same key, a fold update (its count) or a
    /// later detection of the same entity another. FNV-1a of what the
    /// detection is about, in hex.
    pub fn dedup_key(&self) -> String {
        let what = format!(
            "{}\u{0}{}\u{0}{}\u{0}{}\u{0}{:x}\u{0}{}",
            self.host,
            self.module,
            self.entity,
            self.rule.as_ref().map_or("", |r| r.name.as_str()),
            self.score.to_bits(),
            self.count,
        );
        let h = crate::fnv1a(what.bytes());
        format!("{h:016x}")
    }

    /// An alert with its kind and subject and nothing else yet: the alert
    /// actor gives it an id, a time and its node; the detector fills in
    /// the score and the fields that apply (`..Alert::new(..)`).
    pub fn new(module: AlertModule, host: &str, entity: String, severity: Severity) -> Alert {
        Alert {
            id: String::new(),
            ts_ns: 0,
            node_id: String::new(),
            host: host.to_string(),
            module,
            severity,
            entity,
            summary: String::new(),
            event: EventFields {
                kind: match module {
                    AlertModule::Response => EventKind::Event,
                    _ => EventKind::Alert,
                },
            },
            process: None,
            user: None,
            container: None,
            score: 0.0,
            threshold: 0.0,
            model: String::new(),
            count: 1,
            window: None,
            source: None,
            destination: None,
            flow: None,
            file: None,
            rule: None,
            threat: None,
            baseline: None,
            log: None,
            features: vec![],
            related: vec![],
            tree: vec![],
            response: None,
            observed_ns: None,
            first_seen_ns: 0,
            last_seen_ns: 0,
        }
    }

    /// The process id, when the alert is about a process.
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(|p| p.pid)
    }

    /// The process's executable, when known.
    pub fn exe(&self) -> Option<&str> {
        self.process.as_ref().and_then(|p| p.executable.as_deref())
    }
}

/// A node's periodic status report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Heartbeat {
    pub role: Role,
    /// The sending build's version (`CARGO_PKG_VERSION`).
    #[serde(default)]
    pub version: String,
    pub uptime_s: u64,
    /// Counters by name (received, sent, dropped per edge, restarts...).
    pub counters: BTreeMap<String, u64>,
    /// Current queue depths by edge name.
    pub queue_depths: BTreeMap<String, u64>,
    /// CPU use of this process, percent of one core.
    pub cpu_percent: f32,
    /// Resident memory of this process.
    pub rss_bytes: u64,
    /// True in the last heartbeat a node sends before it exits.
    #[serde(default)]
    pub stopping: bool,
}

/// Why bytes from the network were rejected.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("message of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error("unsupported schema version {found} (this node speaks {SCHEMA_VERSION})")]
    Version { found: u16 },
    #[error("malformed message: {0}")]
    Malformed(rmp_serde::decode::Error),
    /// A list past its cap ([`limits`]).
    #[error("refused: {0}")]
    TooMany(String),
    /// The sender's host name is not one ([`host_name_problem`]).
    #[error("sender host {host:?} {problem}")]
    HostName { host: String, problem: &'static str },
    /// The payload speaks for another host than its sender's (which the
    /// subject pins).
    #[error("sent by {sender:?} on its subject, the payload claims host {claimed:?}")]
    ForgedHost { sender: String, claimed: String },
}

impl From<rmp_serde::decode::Error> for DecodeError {
    fn from(e: rmp_serde::decode::Error) -> Self {
        match &e {
            rmp_serde::decode::Error::Syntax(m) if m.contains(limits::TOO_MANY) => {
                DecodeError::TooMany(m.clone())
            }
            _ => DecodeError::Malformed(e),
        }
    }
}

/// Longest host name on the wire.
pub const MAX_HOST_NAME: usize = 64;

/// Names that mean something else where host names are keys: the accepted
/// behaviours' file (`accepted.json`).
const RESERVED_HOST_NAMES: [&str; 1] = ["accepted"];

/// What is wrong with a host name, if anything: it is a NATS subject
/// token, a file name and a key, so 1 to [`MAX_HOST_NAME`] letters, digits,
/// `-` and `_`, and none of the reserved names.
pub fn host_name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        return Some("is empty");
    }
    if name.len() > MAX_HOST_NAME {
        return Some("is longer than 64 bytes");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Some("may hold letters, digits, '-' and '_' only");
    }
    if RESERVED_HOST_NAMES.contains(&name) {
        return Some("is reserved");
    }
    None
}

impl DecodeError {
    /// Every [`DecodeError::reason`].
    pub const REASONS: [&'static str; 6] = [
        "oversized",
        "bad_version",
        "malformed",
        "too_many",
        "bad_host",
        "forged_host",
    ];

    /// Counter suffix for this error.
    pub fn reason(&self) -> &'static str {
        match self {
            DecodeError::TooLarge { .. } => "oversized",
            DecodeError::Version { .. } => "bad_version",
            DecodeError::Malformed(_) => "malformed",
            DecodeError::TooMany(_) => "too_many",
            DecodeError::HostName { .. } => "bad_host",
            DecodeError::ForgedHost { .. } => "forged_host",
        }
    }
}

/// Only the version field, read before decoding the rest.
#[derive(Deserialize)]
struct VersionProbe {
    schema: u16,
}

impl Envelope {
    /// Serializes as a MessagePack map with named fields.
    pub fn encode(&self) -> Vec<u8> {
        // Serializing plain structs into a Vec cannot fail.
        rmp_serde::to_vec_named(self).expect("envelope serialization is infallible")
    }

    /// Decodes untrusted bytes: size first, then version, then the rest.
    pub fn decode(bytes: &[u8], max_bytes: usize) -> Result<Envelope, DecodeError> {
        if bytes.len() > max_bytes {
            return Err(DecodeError::TooLarge {
                size: bytes.len(),
                limit: max_bytes,
            });
        }
        let probe: VersionProbe = rmp_serde::from_slice(bytes)?;
        if probe.schema != SCHEMA_VERSION {
            return Err(DecodeError::Version {
                found: probe.schema,
            });
        }
        let env: Envelope = rmp_serde::from_slice(bytes)?;
        env.vet()?;
        Ok(env)
    }

    /// A sender speaks only for itself: its host name is one, and every
    /// host its payload names is its own (a command's alert names the
    /// command's target).
    pub fn vet(&self) -> Result<(), DecodeError> {
        if let Some(problem) = host_name_problem(&self.host) {
            return Err(DecodeError::HostName {
                host: self.host.clone(),
                problem,
            });
        }
        let (expected, claimed) = match &self.payload {
            Payload::SyscallBatch(b) => (&self.host, &b.host),
            Payload::FlowBatch(b) => (&self.host, &b.host),
            Payload::LogBatch(b) => (&self.host, &b.host),
            Payload::Outcome(a) => (&self.host, &a.host),
            Payload::Command(c) => (&c.target_host, &c.alert.host),
            Payload::Alert(_) | Payload::Heartbeat(_) => return Ok(()),
        };
        if expected != claimed {
            return Err(DecodeError::ForgedHost {
                sender: expected.clone(),
                claimed: claimed.clone(),
            });
        }
        Ok(())
    }
}

/// An alert about process 42 on host `web1`, for tests.
#[cfg(test)]
pub(crate) fn sample_alert() -> Alert {
    Alert {
        id: "a1".into(),
        ts_ns: 1,
        node_id: "c1".into(),
        process: Some(ProcessFields {
            pid: 42,
            ..Default::default()
        }),
        score: 2.0,
        threshold: 1.0,
        model: "m".into(),
        first_seen_ns: 1,
        last_seen_ns: 1,
        ..Alert::new(
            AlertModule::Syscall,
            "web1",
            "pid:42".into(),
            Severity::High,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(n: usize, ctx: Vec<u32>) -> SyscallBatch {
        SyscallBatch {
            host: "h".into(),
            pid: 7,
            tid: 7,
            comm: "sh".into(),
            exe: None,
            abi: SyscallAbi::X86_64,
            context: ctx,
            events: (0..n as u32)
                .map(|i| SyscallEvent {
                    nr: 100 + i,
                    ts_ns: i as u64,
                })
                .collect(),
            last: true,
            lineage: vec![],
            activity: vec![],
        }
    }

    /// An envelope from the host its payload names (`h` for payloads that
    /// name none).
    fn env(payload: Payload) -> Envelope {
        let host = match &payload {
            Payload::SyscallBatch(b) => b.host.clone(),
            Payload::FlowBatch(b) => b.host.clone(),
            Payload::LogBatch(b) => b.host.clone(),
            Payload::Outcome(a) => a.host.clone(),
            _ => "h".into(),
        };
        Envelope {
            schema: SCHEMA_VERSION,
            node_id: "n1".into(),
            host,
            seq: 42,
            ts_ns: 1,
            payload,
        }
    }

    /// Seeds for `fuzz/fuzz_targets/envelope.rs`: an envelope of each
    /// payload kind, with the optional parts filled.
    #[test]
    fn fuzz_seeds_are_current() {
        let mut b = batch(4, vec![1, 2]);
        b.exe = Some("/usr/bin/dash".into());
        b.lineage = vec![
            ProcessInfo {
                pid: 7,
                ppid: Some(1),
                name: "sh".into(),
                executable: Some("/usr/bin/dash".into()),
                args: vec!["sh".into(), "-c".into(), "id".into()],
                uid: Some(33),
                user_name: Some("www-data".into()),
                ..Default::default()
            },
            ProcessInfo {
                pid: 1,
                name: "init".into(),
                ..Default::default()
            },
        ];
        b.activity = vec![
            ActivityEvent {
                pid: 7,
                ts_ns: 3,
                what: Activity::Open {
                    path: "/etc/shadow".into(),
                    write: false,
                },
            },
            ActivityEvent {
                pid: 7,
                ts_ns: 4,
                what: Activity::Connect {
                    peer: Peer::Inet {
                        ip: std::net::IpAddr::from([10, 0, 0, 9]),
                        port: 4444,
                    },
                },
            },
        ];
        let flow = FlowRecord {
            src: "10.0.0.1".into(),
            dst: "10.0.0.2".into(),
            src_port: 40000,
            dst_port: 80,
            proto: 6,
            first_ns: 1,
            last_ns: 9,
            features: [("Flow Duration".to_string(), 8.0)].into(),
            end: FlowEnd::default(),
            pid: Some(7),
            exe: Some("/usr/bin/curl".into()),
            app: Some(AppMeta {
                http: Some(HttpMeta {
                    method: Some("GET".into()),
                    uri: Some("/admin".into()),
                    status: Some(404),
                    requests: 1,
                    responses: 1,
                    client_errors: 1,
                    ..Default::default()
                }),
                ..Default::default()
            }),
        };
        let heartbeat = Heartbeat {
            version: "0.1.0".into(),
            role: Role::Collector,
            uptime_s: 5,
            counters: [("outbound.sent".to_string(), 3)].into(),
            queue_depths: BTreeMap::new(),
            cpu_percent: 1.5,
            rss_bytes: 1 << 20,
            stopping: false,
        };
        let command = Command {
            id: "k1".into(),
            target_host: "web1".into(),
            action: Action::Freeze,
            dry_run: true,
            block_for_s: 60,
            alert: sample_alert(),
            protect: vec![],
        };
        for (name, p) in [
            ("syscall_batch", Payload::SyscallBatch(b)),
            (
                "flow_batch",
                Payload::FlowBatch(FlowBatch {
                    host: "h".into(),
                    flows: vec![flow],
                }),
            ),
            (
                "log_batch",
                Payload::LogBatch(LogBatch {
                    host: "h".into(),
                    lines: vec![LogLine {
                        source: "auth".into(),
                        path: "/var/log/auth.log".into(),
                        read_ns: 1,
                        text: "Dec  1 10:00:00 web1 sshd[42]: Failed password for root from 10.0.0.9 port 5555 ssh2".into(),
                        cut: false,
                        program: None,
                    }],
                }),
            ),
            ("alert", Payload::Alert(sample_alert())),
            ("heartbeat", Payload::Heartbeat(heartbeat)),
            ("command", Payload::Command(command)),
            ("outcome", Payload::Outcome(sample_alert())),
        ] {
            let bytes = env(p).encode();
            if let Err(e) = Envelope::decode(&bytes, 1 << 20) {
                panic!("{name}: {e}");
            }
            crate::fuzz_seeds::check("envelope", name, &bytes);
        }
    }

    /// Found by the envelope fuzz target's seeds: an activity with an IP
    /// peer (connect, bind, accept) did not decode from MessagePack (the
    /// tagged enum's buffered address), so a remote collector's batch
    /// with one was refused as malformed.
    #[test]
    fn activity_with_an_ip_peer_crosses_the_wire() {
        let mut b = batch(1, vec![]);
        for ip in ["10.0.0.9", "::1"] {
            b.activity.push(ActivityEvent {
                pid: 7,
                ts_ns: 1,
                what: Activity::Accept {
                    peer: Peer::Inet {
                        ip: ip.parse().unwrap(),
                        port: 22,
                    },
                },
            });
        }
        let e = env(Payload::SyscallBatch(b));
        assert_eq!(Envelope::decode(&e.encode(), 1 << 20).unwrap(), e);
    }

    proptest::proptest! {
        /// Any syscall batch (strings of any characters, any numbers,
        /// lineage and activity) crosses the wire unchanged.
        #[test]
        fn any_batch_roundtrips(
            host in "[A-Za-z0-9_-]{1,64}",
            pid in proptest::num::u32::ANY,
            events in proptest::collection::vec((proptest::num::u32::ANY, proptest::num::u64::ANY), 0..50),
            context in proptest::collection::vec(proptest::num::u32::ANY, 0..8),
            names in proptest::collection::vec(".{0,30}", 0..4),
            args in proptest::collection::vec(".{0,40}", 0..4),
            paths in proptest::collection::vec(".{0,60}", 0..4),
            ips in proptest::collection::vec((proptest::num::u32::ANY, proptest::num::u128::ANY, proptest::num::u16::ANY), 0..4),
        ) {
            let mut b = batch(0, context);
            b.host = host;
            b.pid = pid;
            b.events = events.into_iter().map(SyscallEvent::from).collect();
            b.lineage = names
                .iter()
                .enumerate()
                .map(|(i, n)| ProcessInfo {
                    pid: i as u32,
                    name: n.clone(),
                    executable: Some(n.clone()),
                    args: args.clone(),
                    ..Default::default()
                })
                .collect();
            for p in paths {
                b.activity.push(ActivityEvent { pid, ts_ns: 1, what: Activity::Open { path: p, write: true } });
            }
            for (v4, v6, port) in ips {
                for ip in [std::net::IpAddr::from(v4.to_be_bytes()), std::net::IpAddr::from(v6.to_be_bytes())] {
                    b.activity.push(ActivityEvent { pid, ts_ns: 2, what: Activity::Connect { peer: Peer::Inet { ip, port } } });
                }
            }
            let e = env(Payload::SyscallBatch(b));
            proptest::prop_assert_eq!(Envelope::decode(&e.encode(), usize::MAX).unwrap(), e);
        }
    }

    #[test]
    fn roundtrip_is_lossless() {
        let e = env(Payload::SyscallBatch(batch(5, vec![1, 2])));
        assert_eq!(Envelope::decode(&e.encode(), 1 << 20).unwrap(), e);
    }

    /// A process-tree incident crosses the wire intact (its members'
    /// process fields inline, in MessagePack as in JSON).
    #[test]
    fn an_incident_with_its_tree_roundtrips() {
        let mut a = sample_alert();
        a.tree = vec![TreeMember {
            process: ProcessInfo {
                pid: 7,
                ppid: Some(1),
                name: "sh".into(),
                args: vec!["sh".into(), "-c".into(), "id".into()],
                ..Default::default()
            },
            findings: vec![Finding {
                module: AlertModule::Syscall,
                severity: Severity::High,
                score: 0.5,
                threshold: 0.1,
                summary: "s".into(),
                rule: None,
                threat: None,
                baseline: None,
            }],
        }];
        let e = env(Payload::Outcome(a));
        assert_eq!(Envelope::decode(&e.encode(), 1 << 20).unwrap(), e);
        let Payload::Outcome(a) = &e.payload else {
            unreachable!()
        };
        let v = serde_json::to_value(a).unwrap();
        assert_eq!(v["tree"][0]["pid"], 7);
        assert_eq!(v["tree"][0]["findings"][0]["module"], "syscall");
    }

    #[test]
    fn a_command_is_addressed_to_its_target_host() {
        let alert = sample_alert();
        let cmd = Payload::Command(Command {
            id: "k1".into(),
            target_host: "web1".into(),
            action: Action::Freeze,
            dry_run: false,
            block_for_s: 60,
            alert: alert.clone(),
            protect: vec![],
        });
        assert_eq!(cmd.kind(), PayloadKind::Command);
        assert_eq!(cmd.subject_host("compute7"), "web1");
        assert_eq!(Payload::Outcome(alert).subject_host("web1"), "web1");
        let e = env(cmd);
        assert_eq!(Envelope::decode(&e.encode(), 1 << 20).unwrap(), e);
        assert!(e.payload.split().is_err(), "a command is never split");
    }

    #[test]
    fn fields_are_named_on_the_wire_and_events_are_pairs() {
        let bytes = env(Payload::SyscallBatch(batch(2, vec![]))).encode();
        let v: serde_json::Value = rmp_serde::from_slice(&bytes).unwrap();
        assert_eq!(v["schema"], 1);
        assert_eq!(v["payload"]["SyscallBatch"]["pid"], 7);
        assert_eq!(
            v["payload"]["SyscallBatch"]["events"][1],
            serde_json::json!([101, 1])
        );
    }

    #[test]
    fn events_cost_a_few_bytes_each() {
        let small = env(Payload::SyscallBatch(batch(0, vec![]))).encode().len();
        let big = env(Payload::SyscallBatch(batch(1000, vec![])))
            .encode()
            .len();
        // [nr, ts]: 1 (array) + 1..5 (nr) + 1..9 (ts) bytes.
        assert!(
            (big - small) / 1000 <= 8,
            "{} bytes per event",
            (big - small) / 1000
        );
    }

    #[test]
    fn newer_sender_with_extra_fields_is_accepted() {
        let bytes = env(Payload::Heartbeat(Heartbeat {
            version: String::new(),
            role: Role::Compute,
            uptime_s: 1,
            counters: BTreeMap::new(),
            queue_depths: BTreeMap::new(),
            cpu_percent: 0.0,
            rss_bytes: 0,
            stopping: false,
        }))
        .encode();
        let mut v: serde_json::Value = rmp_serde::from_slice(&bytes).unwrap();
        v["added_in_a_later_minor"] = serde_json::json!("x");
        v["payload"]["Heartbeat"]["new_field"] = serde_json::json!(3);
        let bytes = rmp_serde::to_vec_named(&v).unwrap();
        assert!(Envelope::decode(&bytes, 1 << 20).is_ok());
    }

    #[test]
    fn bad_inputs_are_classified() {
        let ok = env(Payload::SyscallBatch(batch(3, vec![]))).encode();
        assert_eq!(Envelope::decode(&ok, 4).unwrap_err().reason(), "oversized");
        assert_eq!(
            Envelope::decode(b"\xc1garbage", 100).unwrap_err().reason(),
            "malformed"
        );
        let mut future = env(Payload::SyscallBatch(batch(3, vec![])));
        future.schema = 2;
        assert_eq!(
            Envelope::decode(&future.encode(), 1 << 20)
                .unwrap_err()
                .reason(),
            "bad_version"
        );
        // Truncated message.
        assert_eq!(
            Envelope::decode(&ok[..ok.len() / 2], 1 << 20)
                .unwrap_err()
                .reason(),
            "malformed"
        );
    }

    /// A sender speaks only for its own host: a payload naming another
    /// is refused, as is a sender's host name that is no host name (a
    /// subject wildcard, the accepted behaviours' file, a dot, a newline,
    /// too long); a command's alert must be about its target.
    #[test]
    fn a_payload_speaking_for_another_host_is_refused() {
        let from_h = |payload| Envelope {
            host: "h".into(),
            ..env(payload)
        };
        let mut b = batch(3, vec![]);
        b.host = "db1".into();
        let forged = from_h(Payload::SyscallBatch(b)).encode();
        let e = Envelope::decode(&forged, 1 << 20).unwrap_err();
        assert_eq!(e.reason(), "forged_host", "{e}");
        let flows = FlowBatch {
            host: "db1".into(),
            flows: vec![],
        };
        let e = Envelope::decode(&from_h(Payload::FlowBatch(flows)).encode(), 1 << 20).unwrap_err();
        assert_eq!(e.reason(), "forged_host");
        let logs = LogBatch {
            host: "db1".into(),
            lines: vec![],
        };
        let e = Envelope::decode(&from_h(Payload::LogBatch(logs)).encode(), 1 << 20).unwrap_err();
        assert_eq!(e.reason(), "forged_host");
        let mut outcome = sample_alert();
        outcome.host = "db1".into();
        let e = Envelope::decode(&from_h(Payload::Outcome(outcome)).encode(), 1 << 20).unwrap_err();
        assert_eq!(e.reason(), "forged_host");
        let command = Command {
            id: "c1".into(),
            target_host: "web1".into(),
            action: Action::Kill,
            dry_run: false,
            block_for_s: 1,
            alert: Alert {
                host: "db1".into(),
                ..sample_alert()
            },
            protect: vec![],
        };
        let e = Envelope::decode(&env(Payload::Command(command)).encode(), 1 << 20).unwrap_err();
        assert_eq!(e.reason(), "forged_host");
        for bad in [
            "*",
            ">",
            "accepted",
            "web1.example",
            "a\nb",
            "",
            &"x".repeat(65),
        ] {
            let mut e = env(Payload::SyscallBatch(SyscallBatch {
                host: bad.into(),
                ..batch(1, vec![])
            }));
            e.host = bad.into();
            let err = Envelope::decode(&e.encode(), 1 << 20).unwrap_err();
            assert_eq!(err.reason(), "bad_host", "{bad:?}: {err}");
        }
        // Its own host: taken.
        assert!(Envelope::decode(
            &env(Payload::SyscallBatch(batch(3, vec![]))).encode(),
            1 << 20
        )
        .is_ok());
    }

    /// A list past its cap refuses the message as it is read: a lineage
    /// of two million entries of a few bytes each (which would decode to
    /// ~400 MiB) is refused, not allocated.
    #[test]
    fn a_list_past_its_cap_is_refused_while_decoding() {
        let mut v: serde_json::Value =
            rmp_serde::from_slice(&env(Payload::SyscallBatch(batch(1, vec![]))).encode()).unwrap();
        let entry = serde_json::json!({"pid": 1, "name": ""});
        v["payload"]["SyscallBatch"]["lineage"] = serde_json::Value::Array(vec![entry; 2_000_000]);
        let bytes = rmp_serde::to_vec_named(&v).unwrap();
        let e = Envelope::decode(&bytes, 64 << 20).unwrap_err();
        assert_eq!(e.reason(), "too_many", "{e}");
        assert!(e.to_string().contains("more than 64"), "{e}");
        // At the cap: taken.
        let entry = serde_json::json!({"pid": 1, "name": ""});
        v["payload"]["SyscallBatch"]["lineage"] =
            serde_json::Value::Array(vec![entry; limits::LINEAGE]);
        let bytes = rmp_serde::to_vec_named(&v).unwrap();
        assert!(Envelope::decode(&bytes, 64 << 20).is_ok());
    }

    #[test]
    fn split_keeps_batches_self_contained() {
        let b = batch(6, vec![1, 2, 3]);
        let (a, c) = b.split();
        assert_eq!(a.events.len(), 3);
        assert_eq!(c.events.len(), 3);
        assert_eq!(a.context, vec![1, 2, 3]);
        // Second half: the calls before it, the batch's context and the
        // first half's events (up to SPLIT_CONTEXT).
        assert_eq!(c.context, vec![1, 2, 3, 100, 101, 102]);
        assert!(!a.last);
        assert!(c.last);
    }

    /// A batch with a short context (a process's first) still gives its
    /// second half the calls before it: found by the property test
    /// `a_split_batch_gives_the_windows_of_the_whole` (windows spanning
    /// the cut were lost).
    #[test]
    fn split_with_short_context() {
        let (_, c) = batch(4, vec![]).split();
        assert_eq!(c.context, vec![100, 101]);
        let (_, c) = batch(4, vec![9]).split();
        assert_eq!(c.context, vec![9, 100, 101]);
        let (_, c) = batch(200, vec![]).split();
        assert_eq!(c.context.len(), SPLIT_CONTEXT, "bounded");
        assert_eq!(c.context.last(), Some(&199));
    }
}
