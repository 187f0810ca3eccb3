//! Opt-in response: rules map an alert's module and severity to an action:
//! stop (SIGSTOP) or kill a process, freeze its cgroup, or drop traffic
//! from a remote address with an nftables set element that the kernel
//! expires after `block_for`. Off by default; `dry_run` reports what would
//! be done and changes nothing. Never acts on daisi itself, PID 1, the
//! allowlists, a cgroup holding any of those, loopback or this host's own
//! addresses. Each outcome (done, refused, failed, or dry run) becomes an
//! alert of module `response` in the sinks.
//!
//! Where the alert is raised on the host it is about (the `both` role) the
//! action runs there. A compute node instead sends a
//! [`Command`](crate::messages::Command) on `daisi.v1.command.<host>`; the
//! collector of that host executes it with its own `[alert.response]`
//! safeguards (see `actors::command`) and sends the outcome back.

use crate::config::validate::{ConfigError, Validate};
use crate::messages::{Alert, AlertModule, ResponseFields, Severity};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::time::Duration;

pub use crate::messages::Action;

/// One rule: alerts of `module` at least `min_severity` get `action`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// `syscall`, `network` or `incident`.
    pub module: AlertModule,
    pub min_severity: Severity,
    pub action: Action,
    /// `block` also the sources of alerts that may rest on packets anyone
    /// can forge (unanswered SYNs, UDP: port scans, host sweeps,
    /// connection floods, DNS tunnelling, flows that carried no payload):
    /// a forged flood "from" a server would get that server blocked.
    #[serde(default)]
    pub spoofable: bool,
}

/// `[alert.response]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ResponseConfig {
    /// Act on alerts at all. On a collector: execute commands from compute
    /// nodes at all (when false, each is answered "refused").
    pub enabled: bool,
    /// Report what would be done; change nothing. A collector also does a
    /// dry run when the command asks for one.
    pub dry_run: bool,
    /// How long a block lasts (the kernel removes it). On a collector: the
    /// longest block a command may ask for.
    #[serde(with = "humantime_serde")]
    pub block_for: Duration,
    /// On a collector: commands sent longer ago than this are refused
    /// (a replayed or long-delayed command acts on a stale alert).
    #[serde(with = "humantime_serde")]
    pub max_command_age: Duration,
    /// Processes never acted on (daisi itself and PID 1 never are).
    pub allow_pids: Vec<u32>,
    /// Executables never acted on.
    pub allow_exes: Vec<String>,
    /// Addresses never blocked (loopback and this host's own never are).
    pub allow_addresses: Vec<IpAddr>,
    /// The first matching rule applies.
    pub rules: Vec<Rule>,
    /// Blocks in force at once at most; past it (and past
    /// `max_blocks_per_minute` new ones) a block is refused and said so.
    pub max_blocks: usize,
    pub max_blocks_per_minute: usize,
    /// Never blocked, found when the config is loaded: the NATS servers'
    /// addresses, the default gateways and the DNS servers this host uses.
    #[serde(skip)]
    pub infrastructure: Vec<IpAddr>,
}

impl Default for ResponseConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            dry_run: true,
            block_for: Duration::from_secs(600),
            max_command_age: Duration::from_secs(60),
            allow_pids: vec![],
            allow_exes: vec![],
            allow_addresses: vec![],
            rules: vec![],
            max_blocks: 64,
            max_blocks_per_minute: 16,
            infrastructure: vec![],
        }
    }
}

impl Validate for ResponseConfig {
    fn validate(&self, path: &str, errors: &mut Vec<ConfigError>) {
        for (i, r) in self.rules.iter().enumerate() {
            if r.module == AlertModule::Response {
                errors.push(ConfigError::new(
                    format!("{path}.rules.{i}.module"),
                    "must be syscall, network or incident",
                ));
            }
            if r.action == Action::Block && r.module == AlertModule::Syscall {
                errors.push(ConfigError::new(
                    format!("{path}.rules.{i}.action"),
                    "block needs an address: only network and incident alerts have one",
                ));
            }
            if r.action != Action::Block && r.module == AlertModule::Network {
                errors.push(ConfigError::new(
                    format!("{path}.rules.{i}.action"),
                    "kill, stop and freeze act on a process: a network alert's process is the service the traffic reached, not the sender (block its source instead)",
                ));
            }
        }
        if self.max_blocks == 0 || self.max_blocks_per_minute == 0 {
            errors.push(ConfigError::new(
                format!("{path}.max_blocks"),
                "max_blocks and max_blocks_per_minute must be at least 1",
            ));
        }
        for (name, d) in [
            ("block_for", self.block_for),
            ("max_command_age", self.max_command_age),
        ] {
            if d.is_zero() {
                errors.push(ConfigError::new(
                    format!("{path}.{name}"),
                    "must be above 0",
                ));
            }
        }
    }
}

const NFT_TABLE: &str = "table inet daisi {
  set blocked4 { type ipv4_addr; flags timeout; }
  set blocked6 { type ipv6_addr; flags timeout; }
  chain input {
    type filter hook input priority -10; policy accept;
    ip saddr @blocked4 drop
    ip6 saddr @blocked6 drop
  }
}
";

/// Carries out actions on this host, within the safeguards of its config.
pub struct Responder {
    cfg: ResponseConfig,
    table_ready: bool,
    /// Blocks made: when, nanoseconds since the Unix epoch (pruned as they
    /// lapse).
    blocks: std::collections::VecDeque<u64>,
}

/// Where `nft` is looked for (never through `PATH`).
const NFT_PATHS: [&str; 3] = ["/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft"];

/// Tolerance between a process's start time as the collector saw it and
/// as `/proc` says (clock ticks, clock conversions).
const START_TOLERANCE_NS: u64 = 250_000_000;

fn nft(args: &[&str], stdin: Option<&str>) -> Result<(), String> {
    use std::io::Write;
    let Some(bin) = NFT_PATHS.iter().find(|p| std::path::Path::new(p).is_file()) else {
        return Err(format!(
            "cannot run nft: none of {} (install nftables)",
            NFT_PATHS.join(", ")
        ));
    };
    let mut child = std::process::Command::new(bin)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {bin}: {e}"))?;
    if let Some(text) = stdin {
        let _ = child.stdin.take().map(|mut s| s.write_all(text.as_bytes()));
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "nft {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// This host's interface addresses (loopback and link-local left out), at
/// most 64: what a compute node's commands protect.
pub fn own_addresses() -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = nix::ifaddrs::getifaddrs()
        .map(|it| {
            it.filter_map(|i| i.address)
                .filter_map(|a| {
                    a.as_sockaddr_in()
                        .map(|v4| IpAddr::V4(v4.ip()))
                        .or_else(|| a.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip())))
                })
                .filter(|ip| !ip.is_loopback() && !ip.is_unspecified())
                .filter(|ip| !matches!(ip, IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out.dedup();
    out.truncate(crate::messages::limits::ADDRESSES);
    out
}

/// An address is this host's when a socket can be bound to it.
fn is_local(ip: IpAddr) -> bool {
    ip.is_loopback() || ip.is_unspecified() || std::net::UdpSocket::bind((ip, 0)).is_ok()
}

/// The remote end of a network alert: of its flow (`flow:<src>-><dst>`),
/// or the source a per-source alert is about.
pub fn remote_of(a: &Alert) -> Option<IpAddr> {
    let src: IpAddr = a.source.as_ref()?.ip.parse().ok()?;
    let Some(dst) = a.destination.as_ref() else {
        return (!is_local(src)).then_some(src);
    };
    let dst: IpAddr = dst.ip.parse().ok()?;
    match (is_local(src), is_local(dst)) {
        (false, _) => Some(src),
        (true, false) => Some(dst),
        (true, true) => None,
    }
}

/// The freezer of a process's cgroup: cgroup v2 `cgroup.freeze` (preferred)
/// or the cgroup v1 freezer's `freezer.state`; `None` when the process is
/// in a root cgroup (nothing that can be frozen on its own).
#[derive(Debug, Clone, PartialEq)]
pub struct Freezer {
    /// The cgroup's directory.
    pub dir: std::path::PathBuf,
    /// The control file and what freezes / thaws it.
    pub file: &'static str,
    pub frozen: &'static str,
    pub thawed: &'static str,
}

impl Freezer {
    /// Finds the freezer of `pid`'s cgroup from `/proc/<pid>/cgroup` and the
    /// mount table.
    pub fn of(pid: u32) -> Result<Option<Freezer>, String> {
        let groups = crate::procfs::cgroup(pid).map_err(|e| format!("process {pid}: {e}"))?;
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").map_err(|e| e.to_string())?;
        Ok(Self::find(&groups, &mounts))
    }

    /// `groups`: a `/proc/<pid>/cgroup`; `mounts`: a `/proc/self/mountinfo`.
    fn find(groups: &str, mounts: &str) -> Option<Freezer> {
        // (mount point, fstype, super options) of each cgroup mount.
        let cg_mounts: Vec<(&str, &str, &str)> = mounts
            .lines()
            .filter_map(|l| {
                let (pre, post) = l.split_once(" - ")?;
                let point = pre.split_whitespace().nth(4)?;
                let mut post = post.split_whitespace();
                let fstype = post.next()?;
                let opts = post.nth(1).unwrap_or("");
                fstype
                    .starts_with("cgroup")
                    .then_some((point, fstype, opts))
            })
            .collect();
        let path_for = |want: &dyn Fn(&str) -> bool| {
            groups.lines().find_map(|l| {
                let mut it = l.splitn(3, ':');
                let (_, ctrl, path) = (it.next()?, it.next()?, it.next()?);
                want(ctrl).then_some(path.trim())
            })
        };
        let v2 = path_for(&|c| c.is_empty()).filter(|p| *p != "/");
        if let (Some(path), Some((point, ..))) =
            (v2, cg_mounts.iter().find(|(_, t, _)| *t == "cgroup2"))
        {
            let dir = std::path::Path::new(point).join(path.trim_start_matches('/'));
            if dir.join("cgroup.freeze").exists() {
                return Some(Freezer {
                    dir,
                    file: "cgroup.freeze",
                    frozen: "1",
                    thawed: "0",
                });
            }
        }
        let v1 = path_for(&|c| c.split(',').any(|c| c == "freezer")).filter(|p| *p != "/")?;
        let (point, ..) = cg_mounts
            .iter()
            .find(|(_, t, o)| *t == "cgroup" && o.split(',').any(|o| o == "freezer"))?;
        Some(Freezer {
            dir: std::path::Path::new(point).join(v1.trim_start_matches('/')),
            file: "freezer.state",
            frozen: "FROZEN",
            thawed: "THAWED",
        })
    }

    /// Process ids in the cgroup (its own, not its children's).
    pub fn members(&self) -> Result<Vec<u32>, String> {
        let p = self.dir.join("cgroup.procs");
        let text = std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        Ok(text.lines().filter_map(|l| l.trim().parse().ok()).collect())
    }

    pub fn set(&self, frozen: bool) -> Result<(), String> {
        let p = self.dir.join(self.file);
        let v = if frozen { self.frozen } else { self.thawed };
        std::fs::write(&p, v).map_err(|e| format!("{}: {e}", p.display()))
    }
}

impl Responder {
    pub fn new(cfg: ResponseConfig) -> Responder {
        Responder {
            cfg,
            table_ready: false,
            blocks: Default::default(),
        }
    }

    /// The rule that matches an alert.
    fn matching(&self, a: &Alert) -> Option<&Rule> {
        self.cfg
            .rules
            .iter()
            .find(|r| r.module == a.module && a.severity >= r.min_severity)
    }

    /// Why `addr` may not be blocked now, if it may not: infrastructure,
    /// the caps.
    fn block_refused(&mut self, addr: IpAddr, now_ns: u64) -> Option<String> {
        if self.cfg.infrastructure.contains(&addr) {
            return Some(format!(
                "{addr} is infrastructure (a NATS server, a gateway or a DNS server of this host); never blocked"
            ));
        }
        let lapse = self.cfg.block_for.as_nanos() as u64;
        while self
            .blocks
            .front()
            .is_some_and(|&t| now_ns.saturating_sub(t) >= lapse)
        {
            self.blocks.pop_front();
        }
        if self.blocks.len() >= self.cfg.max_blocks {
            return Some(format!(
                "{} blocks in force already (alert.response.max_blocks); {addr} not blocked",
                self.blocks.len()
            ));
        }
        let last_minute = self
            .blocks
            .iter()
            .filter(|&&t| now_ns.saturating_sub(t) < 60_000_000_000)
            .count();
        if last_minute >= self.cfg.max_blocks_per_minute {
            return Some(format!(
                "{last_minute} blocks in the last minute (alert.response.max_blocks_per_minute); {addr} not blocked"
            ));
        }
        None
    }

    pub fn config(&self) -> &ResponseConfig {
        &self.cfg
    }

    /// Whether a block for `a` would be refused as resting on packets
    /// anyone can forge (its rule does not say `spoofable`).
    pub fn refuses_as_forged(&self, a: &Alert) -> bool {
        spoofable(a) && !self.matching(a).is_some_and(|r| r.spoofable)
    }

    /// The action for an alert, if a rule matches.
    pub fn rule_for(&self, a: &Alert) -> Option<Action> {
        self.matching(a).map(|r| r.action)
    }

    fn block(&mut self, addr: IpAddr, dry_run: bool, secs: u64) -> Result<String, String> {
        if self.cfg.allow_addresses.contains(&addr) || is_local(addr) {
            return Err(format!(
                "{addr} is allowlisted or this host's own; not blocked"
            ));
        }
        if dry_run {
            return Ok(format!(
                "dry run: would drop traffic from {addr} for {secs} s"
            ));
        }
        if !self.table_ready {
            if nft(&["list", "table", "inet", "daisi"], None).is_err() {
                nft(&["-f", "-"], Some(NFT_TABLE))?;
            }
            self.table_ready = true;
        }
        let set = if addr.is_ipv4() {
            "blocked4"
        } else {
            "blocked6"
        };
        nft(
            &[
                "add",
                "element",
                "inet",
                "daisi",
                set,
                &format!("{{ {addr} timeout {secs}s }}"),
            ],
            None,
        )?;
        Ok(format!(
            "dropping traffic from {addr} for {secs} s (nftables inet daisi {set})"
        ))
    }

    /// Daisi itself, PID 1, pids no process can have (0, above the
    /// kernel's `pid_max` or `i32::MAX`: `kill` would take them for a
    /// process group or every process) and the allowlists are never acted
    /// on.
    fn protected(&self, pid: u32) -> bool {
        pid <= 1
            || !pid_possible(pid)
            || pid == std::process::id()
            || self.cfg.allow_pids.contains(&pid)
            || crate::procfs::exe(pid).is_some_and(|e| self.cfg.allow_exes.contains(&e))
    }

    fn signal(
        &self,
        pid: u32,
        start_ns: Option<u64>,
        action: Action,
        dry_run: bool,
    ) -> Result<String, String> {
        if self.protected(pid) {
            return Err(format!(
                "process {pid} is protected or allowlisted; left alone"
            ));
        }
        let (sig, verb) = match action {
            Action::Stop => (libc::SIGSTOP, "stopped"),
            _ => (libc::SIGKILL, "killed"),
        };
        let what = format!(
            "process {pid} ({})",
            crate::procfs::exe(pid).as_deref().unwrap_or("?")
        );
        // A handle on the process first, then its identity checked: the
        // signal reaches that process or none (never one that took its pid).
        let fd = pidfd_open(pid).map_err(|e| format!("{what}: {e}"))?;
        same_process(pid, start_ns)?;
        if dry_run {
            return Ok(format!("dry run: would have {verb} {what}"));
        }
        pidfd_send_signal(&fd, sig).map_err(|e| format!("{what}: {e}"))?;
        Ok(format!("{verb} {what}"))
    }

    fn freeze(&self, pid: u32, start_ns: Option<u64>, dry_run: bool) -> Result<String, String> {
        if self.protected(pid) {
            return Err(format!(
                "process {pid} is protected or allowlisted; left alone"
            ));
        }
        same_process(pid, start_ns)?;
        let Some(f) = Freezer::of(pid)? else {
            return Err(format!(
                "process {pid} is in a root cgroup; there is no cgroup of its own to freeze"
            ));
        };
        let members = f.members()?;
        if let Some(p) = members.iter().find(|&&p| self.protected(p)) {
            return Err(format!(
                "cgroup {} also holds protected or allowlisted process {p}; left alone",
                f.dir.display()
            ));
        }
        let what = format!(
            "cgroup {} ({} processes, including process {pid} ({}))",
            f.dir.display(),
            members.len(),
            crate::procfs::exe(pid).as_deref().unwrap_or("?")
        );
        if dry_run {
            return Ok(format!("dry run: would have frozen {what}"));
        }
        f.set(true)?;
        Ok(format!(
            "froze {what}; thaw with: echo {} > {}",
            f.thawed,
            f.dir.join(f.file).display()
        ))
    }

    /// Carries out `action` for alert `a` (the safeguards apply; `dry_run`
    /// adds to the config's own). The outcome text, or why not.
    pub fn execute(
        &mut self,
        action: Action,
        a: &Alert,
        dry_run: bool,
        block_for: Duration,
    ) -> Result<String, String> {
        self.execute_protecting(action, a, dry_run, block_for, &[])
    }

    /// [`Responder::execute`], never blocking `protect` (a command's
    /// sender's own addresses).
    pub fn execute_protecting(
        &mut self,
        action: Action,
        a: &Alert,
        dry_run: bool,
        block_for: Duration,
        protect: &[IpAddr],
    ) -> Result<String, String> {
        let dry_run = dry_run || self.cfg.dry_run;
        match action {
            Action::Block => {
                let Some(addr) = remote_of(a) else {
                    return Err("no remote address to block".into());
                };
                if protect.contains(&addr) {
                    return Err(format!(
                        "{addr} is the commanding compute node's own address; never blocked"
                    ));
                }
                let allowed = self.matching(a).is_some_and(|r| r.spoofable);
                if spoofable(a) && !allowed {
                    return Err(format!(
                        "{addr} may be forged (the alert rests on packets anyone can send: unanswered SYNs or UDP); not blocked unless a rule says spoofable = true"
                    ));
                }
                let now = crate::actors::runtime::now_ns();
                if let Some(why) = self.block_refused(addr, now) {
                    return Err(why);
                }
                let r = self.block(addr, dry_run, block_for.as_secs().max(1));
                // A dry run counts as what would be in force.
                if r.is_ok() {
                    self.blocks.push_back(now);
                }
                r
            }
            Action::Stop | Action::Kill | Action::Freeze if a.module == AlertModule::Network => {
                Err(format!(
                    "{} acts on a process: a network alert's process is the service the traffic reached, not the sender; refused",
                    action.name()
                ))
            }
            Action::Stop | Action::Kill | Action::Freeze => {
                let start = a.process.as_ref().and_then(|p| p.start_ns);
                match a.pid() {
                    Some(pid) if action == Action::Freeze => self.freeze(pid, start, dry_run),
                    Some(pid) => self.signal(pid, start, action, dry_run),
                    None => Err("no process to act on".into()),
                }
            }
        }
    }

    /// Acts on an alert here when a rule matches; the outcome, as an alert.
    pub fn respond(&mut self, a: &Alert, id: String, ts_ns: u64) -> Option<Alert> {
        let action = self.rule_for(a)?;
        let r = self.execute(action, a, false, self.cfg.block_for);
        Some(outcome(a, action, r, id, ts_ns, &a.node_id))
    }
}

/// The alert (module `response`) that reports what was done about `a`,
/// logged here as well.
pub fn outcome(
    a: &Alert,
    action: Action,
    r: Result<String, String>,
    id: String,
    ts_ns: u64,
    node_id: &str,
) -> Alert {
    let (ok, text) = match r {
        Ok(t) => (true, t),
        Err(t) => (false, t),
    };
    // The text names paths a monitored process chose: escaped in logs.
    let shown = crate::actors::alert::sinks::console::printable(&text);
    if ok {
        tracing::warn!(alert_id = %a.id, action = action.name(), outcome = %shown, "response");
    } else {
        tracing::error!(alert_id = %a.id, action = action.name(), outcome = %shown, "response not carried out");
    }
    Alert {
        id,
        ts_ns,
        node_id: node_id.to_string(),
        host: a.host.clone(),
        module: AlertModule::Response,
        event: crate::messages::EventFields {
            kind: crate::messages::EventKind::Event,
        },
        severity: a.severity,
        entity: a.entity.clone(),
        summary: format!(
            "{}{text} ({} in response to alert {})",
            if ok { "" } else { "not done: " },
            action.name(),
            a.id
        ),
        response: Some(ResponseFields {
            action,
            done: ok,
            detail: text,
            answers: a.id.clone(),
        }),
        count: 1,
        related: vec![a.id.clone()],
        first_seen_ns: ts_ns,
        last_seen_ns: ts_ns,
        ..a.clone()
    }
}

/// Whether an alert's source address may be forged: per-source patterns
/// that unanswered SYNs or UDP make, or a flow that carried no payload.
fn spoofable(a: &Alert) -> bool {
    match a.rule.as_ref().map(|r| r.name.as_str()) {
        Some(
            "network.port_scan"
            | "network.host_sweep"
            | "network.connection_flood"
            | "network.dns_tunnelling",
        ) => true,
        Some(name) if name.starts_with("network.") => false,
        _ => a.flow.as_ref().is_some_and(|f| f.app.is_none()),
    }
}

/// The process with `pid` is the one that started at `start_ns` (when the
/// alert says): else a reused pid, refused.
fn same_process(pid: u32, start_ns: Option<u64>) -> Result<(), String> {
    let Some(want) = start_ns else {
        return Ok(());
    };
    let have = crate::procfs::start_boot_ns(pid)
        .map(crate::procfs::unix_ns_of_boot)
        .ok_or_else(|| format!("process {pid} is gone"))?;
    if have.abs_diff(want) > START_TOLERANCE_NS {
        return Err(format!(
            "process {pid} is not the one the alert is about (it started {:.3} s {} that one): a reused pid; left alone",
            have.abs_diff(want) as f64 / 1e9,
            if have > want { "after" } else { "before" }
        ));
    }
    Ok(())
}

fn pidfd_open(pid: u32) -> std::io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    let pid =
        libc::pid_t::try_from(pid).map_err(|_| std::io::Error::from_raw_os_error(libc::ESRCH))?;
    // SAFETY: pidfd_open(2) with a pid and no flags; it returns a new file
    // descriptor we own, or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by the kernel and is ours alone.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) })
}

fn pidfd_send_signal(fd: &std::os::fd::OwnedFd, sig: i32) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: pidfd_send_signal(2) on a pidfd we hold, a valid signal, no
    // siginfo, no flags.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Addresses a response must never block: the NATS servers (`servers`,
/// resolved), this host's default gateways and its DNS servers.
pub fn infrastructure(servers: &[String]) -> Vec<IpAddr> {
    use std::net::ToSocketAddrs;
    let mut out: Vec<IpAddr> = Vec::new();
    for s in servers {
        let Ok(addr) = <async_nats::ServerAddr as std::str::FromStr>::from_str(s) else {
            continue;
        };
        let h = addr.host().trim_start_matches('[').trim_end_matches(']');
        if let Ok(addrs) = (h, addr.port()).to_socket_addrs() {
            out.extend(addrs.map(|a| a.ip()));
        }
    }
    // /proc/net/route: the gateway of each default route (destination 0).
    if let Ok(t) = std::fs::read_to_string("/proc/net/route") {
        for l in t.lines().skip(1) {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.get(1) == Some(&"00000000") {
                if let Some(g) = f.get(2).and_then(|g| u32::from_str_radix(g, 16).ok()) {
                    out.push(IpAddr::from(g.to_le_bytes()));
                }
            }
        }
    }
    if let Ok(t) = std::fs::read_to_string("/etc/resolv.conf") {
        for l in t.lines() {
            if let Some(ip) = l
                .strip_prefix("nameserver")
                .and_then(|r| r.trim().parse::<IpAddr>().ok())
            {
                out.push(ip);
            }
        }
    }
    out.retain(|ip| !ip.is_unspecified());
    out.sort();
    out.dedup();
    out
}

/// Whether `pid` can name a process: positive, within `i32` (else
/// `kill` reads it as a process group, or -1: every process) and at most
/// the kernel's `pid_max`.
fn pid_possible(pid: u32) -> bool {
    let max = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .unwrap_or(1 << 22);
    pid > 0 && pid <= max && libc::pid_t::try_from(pid).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pid from a command that no process can have (0, u32::MAX, which
    /// `kill` would read as -1: every process, a value above pid_max) is
    /// refused before anything is signalled, dry run or not.
    #[test]
    fn pids_no_process_can_have_are_refused() {
        let r = Responder::new(ResponseConfig {
            enabled: true,
            ..Default::default()
        });
        for pid in [0, u32::MAX, 1 << 31, (1 << 31) + 7, 4_194_305 * 2] {
            for action in [Action::Kill, Action::Stop] {
                let e = r.signal(pid, None, action, true).unwrap_err();
                assert!(e.contains("protected"), "{pid}: {e}");
            }
            assert!(r.freeze(pid, None, true).is_err(), "{pid}");
        }
        assert!(pid_possible(std::process::id()));
    }

    const MOUNTS_HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn the_freezer_is_found_in_a_v1_hierarchy_and_a_root_cgroup_has_none() {
        let groups = "6:freezer:/job42\n1:name=systemd:/\n0::/\n";
        let f = Freezer::find(groups, MOUNTS_HYBRID).unwrap();
        assert_eq!(f.dir, std::path::Path::new("/sys/fs/cgroup/freezer/job42"));
        assert_eq!((f.file, f.frozen), ("freezer.state", "FROZEN"));
        assert_eq!(Freezer::find("6:freezer:/\n0::/\n", MOUNTS_HYBRID), None);
    }

    /// A process that took a dead one's pid is not acted on: the alert's
    /// start time must be the process's; the process it names is.
    #[test]
    fn a_reused_pid_is_refused_and_the_named_process_is_acted_on() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id();
        let start = crate::procfs::start_boot_ns(pid)
            .map(crate::procfs::unix_ns_of_boot)
            .unwrap();
        let r = Responder::new(ResponseConfig {
            enabled: true,
            dry_run: false,
            ..Default::default()
        });
        let e = r
            .signal(pid, Some(start - 10_000_000_000), Action::Kill, false)
            .unwrap_err();
        assert!(e.contains("reused pid"), "{e}");
        assert!(child.try_wait().unwrap().is_none(), "still running");
        let done = r.signal(pid, Some(start), Action::Kill, false).unwrap();
        assert!(done.starts_with("killed process"), "{done}");
        assert!(child.wait().unwrap().code().is_none(), "killed by a signal");
    }

    fn network_alert(rule: &str, src: &str) -> Alert {
        let mut a = crate::messages::sample_alert();
        a.module = AlertModule::Network;
        a.severity = Severity::High;
        a.rule = Some(crate::messages::RuleFields {
            name: rule.into(),
            ..Default::default()
        });
        a.source = Some(crate::messages::Endpoint {
            ip: src.into(),
            port: 0,
        });
        a.destination = None;
        a
    }

    /// Blocks: a source that unanswered SYNs may have forged is not
    /// blocked unless a rule says so; infrastructure and the commanding
    /// compute node never; at most
    /// `max_blocks` at once and `max_blocks_per_minute`; a network alert
    /// never kills, stops or freezes (its process is the service).
    /// A host's own interface addresses: no loopback, no link-local.
    #[test]
    fn own_addresses_leave_out_loopback() {
        let a = own_addresses();
        assert!(a.iter().all(|ip| !ip.is_loopback()), "{a:?}");
        assert!(a.len() <= crate::messages::limits::ADDRESSES);
    }

    #[test]
    fn blocks_cannot_be_aimed_and_network_alerts_never_act_on_processes() {
        let rule = |spoofable| Rule {
            module: AlertModule::Network,
            min_severity: Severity::Low,
            action: Action::Block,
            spoofable,
        };
        let mut r = Responder::new(ResponseConfig {
            enabled: true,
            dry_run: true,
            rules: vec![rule(false)],
            max_blocks: 2,
            infrastructure: vec!["192.0.2.53".parse().unwrap()],
            ..Default::default()
        });
        let ten = Duration::from_secs(10);
        let scan = network_alert("network.port_scan", "192.0.2.7");
        let e = r.execute(Action::Block, &scan, true, ten).unwrap_err();
        assert!(e.contains("may be forged"), "{e}");
        let dns = network_alert("network.web_probing", "192.0.2.53");
        let e = r.execute(Action::Block, &dns, true, ten).unwrap_err();
        assert!(e.contains("infrastructure"), "{e}");
        // The commanding compute node's own address.
        let compute = network_alert("network.web_probing", "192.0.2.77");
        let e = r
            .execute_protecting(
                Action::Block,
                &compute,
                true,
                ten,
                &["192.0.2.77".parse().unwrap()],
            )
            .unwrap_err();
        assert!(e.contains("commanding compute node"), "{e}");
        for ip in ["192.0.2.8", "192.0.2.9"] {
            let ok = r
                .execute(
                    Action::Block,
                    &network_alert("network.web_probing", ip),
                    true,
                    ten,
                )
                .unwrap();
            assert!(ok.starts_with("dry run: would drop traffic from"), "{ok}");
        }
        let e = r
            .execute(
                Action::Block,
                &network_alert("network.ssh_guessing", "192.0.2.10"),
                true,
                ten,
            )
            .unwrap_err();
        assert!(e.contains("max_blocks"), "{e}");
        // A rule that says spoofable: blocked.
        let mut r = Responder::new(ResponseConfig {
            enabled: true,
            rules: vec![rule(true)],
            ..Default::default()
        });
        assert!(r.execute(Action::Block, &scan, true, ten).is_ok());
        // Process actions on a network alert: refused (and refused by the
        // config check too).
        let mut a = network_alert("network.web_probing", "192.0.2.11");
        a.process = Some(crate::messages::ProcessFields {
            pid: std::process::id(),
            ..Default::default()
        });
        for action in [Action::Kill, Action::Stop, Action::Freeze] {
            let e = r.execute(action, &a, true, ten).unwrap_err();
            assert!(e.contains("network alert"), "{e}");
        }
        let mut errors = vec![];
        ResponseConfig {
            rules: vec![Rule {
                action: Action::Kill,
                ..rule(false)
            }],
            ..Default::default()
        }
        .validate("alert.response", &mut errors);
        assert_eq!(errors.len(), 1, "{errors:?}");
    }

    #[test]
    fn rules_pick_the_first_match_at_or_above_the_severity() {
        let r = Responder::new(ResponseConfig {
            enabled: true,
            rules: vec![
                Rule {
                    module: AlertModule::Syscall,
                    min_severity: Severity::High,
                    action: Action::Freeze,
                    spoofable: false,
                },
                Rule {
                    module: AlertModule::Syscall,
                    min_severity: Severity::Medium,
                    action: Action::Stop,
                    spoofable: false,
                },
            ],
            ..Default::default()
        });
        let mut a = crate::messages::sample_alert();
        a.severity = Severity::Medium;
        assert_eq!(r.rule_for(&a), Some(Action::Stop));
        a.severity = Severity::Critical;
        assert_eq!(r.rule_for(&a), Some(Action::Freeze));
        a.module = AlertModule::Network;
        assert_eq!(r.rule_for(&a), None);
    }
}
