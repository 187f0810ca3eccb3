//! Opt-in response: rules map an alert's module and severity to an action
//! on this host: stop (SIGSTOP) or kill a process, or drop traffic from a
//! remote address with an nftables set element that the kernel expires
//! after `block_for`. Off by default; `dry_run` reports what would be done
//! and changes nothing. Never acts on daisi itself, PID 1, the allowlists,
//! loopback or this host's own addresses. Each outcome (done, refused,
//! failed, or dry run) becomes an alert of module `response` in the sinks.
//!
//! Runs where the alert is raised, so in the `both` role (the node is the
//! collector of its host). Sending commands from a compute node to the
//! collector of another host is not implemented.

use crate::config::{ConfigError, Validate};
use crate::messages::{Alert, Severity};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::time::Duration;

/// What to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Drop packets from the remote address of a flow (nftables, expiring).
    Block,
    /// SIGSTOP the process (it can be resumed with SIGCONT).
    Stop,
    /// SIGKILL the process.
    Kill,
}

/// One rule: alerts of `module` at least `min_severity` get `action`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// `syscall`, `network` or `incident`.
    pub module: String,
    pub min_severity: Severity,
    pub action: Action,
}

/// `[alert.response]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ResponseConfig {
    /// Act on alerts at all.
    pub enabled: bool,
    /// Report what would be done; change nothing.
    pub dry_run: bool,
    /// How long a block lasts (the kernel removes it).
    #[serde(with = "humantime_serde")]
    pub block_for: Duration,
    /// Processes never acted on (daisi itself and PID 1 never are).
    pub allow_pids: Vec<u32>,
    /// Executables never acted on.
    pub allow_exes: Vec<String>,
    /// Addresses never blocked (loopback and this host's own never are).
    pub allow_addresses: Vec<IpAddr>,
    /// The first matching rule applies.
    pub rules: Vec<Rule>,
}

impl Default for ResponseConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            dry_run: true,
            block_for: Duration::from_secs(600),
            allow_pids: vec![],
            allow_exes: vec![],
            allow_addresses: vec![],
            rules: vec![],
        }
    }
}

impl Validate for ResponseConfig {
    fn validate(&self, path: &str, errors: &mut Vec<ConfigError>) {
        for (i, r) in self.rules.iter().enumerate() {
            if !["syscall", "network", "incident"].contains(&r.module.as_str()) {
                errors.push(ConfigError::new(
                    format!("{path}.rules.{i}.module"),
                    "must be syscall, network or incident",
                ));
            }
            if r.action == Action::Block && r.module == "syscall" {
                errors.push(ConfigError::new(
                    format!("{path}.rules.{i}.action"),
                    "block needs an address: only network and incident alerts have one",
                ));
            }
        }
        if self.block_for.is_zero() {
            errors.push(ConfigError::new(
                format!("{path}.block_for"),
                "must be above 0",
            ));
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

/// Carries out the rules.
pub struct Responder {
    cfg: ResponseConfig,
    table_ready: bool,
}

fn nft(args: &[&str], stdin: Option<&str>) -> Result<(), String> {
    use std::io::Write;
    let mut child = std::process::Command::new("nft")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run nft (install nftables): {e}"))?;
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

/// An address is this host's when a socket can be bound to it.
fn is_local(ip: IpAddr) -> bool {
    ip.is_loopback() || ip.is_unspecified() || std::net::UdpSocket::bind((ip, 0)).is_ok()
}

/// The remote end of a network alert's flow (`flow:<src>-><dst>`).
fn remote_of(a: &Alert) -> Option<IpAddr> {
    let (src, dst) = a.entity.strip_prefix("flow:")?.split_once("->")?;
    let (src, dst): (IpAddr, IpAddr) = (src.parse().ok()?, dst.parse().ok()?);
    match (is_local(src), is_local(dst)) {
        (false, _) => Some(src),
        (true, false) => Some(dst),
        (true, true) => None,
    }
}

impl Responder {
    pub fn new(cfg: ResponseConfig) -> Option<Responder> {
        cfg.enabled.then_some(Responder {
            cfg,
            table_ready: false,
        })
    }

    /// The action for an alert, if a rule matches.
    fn action_for(&self, a: &Alert) -> Option<Action> {
        self.cfg
            .rules
            .iter()
            .find(|r| r.module == a.module && a.severity >= r.min_severity)
            .map(|r| r.action)
    }

    fn block(&mut self, addr: IpAddr) -> Result<String, String> {
        if self.cfg.allow_addresses.contains(&addr) || is_local(addr) {
            return Err(format!(
                "{addr} is allowlisted or this host's own; not blocked"
            ));
        }
        let secs = self.cfg.block_for.as_secs().max(1);
        if self.cfg.dry_run {
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

    fn signal(&self, pid: u32, action: Action) -> Result<String, String> {
        let exe = std::fs::read_link(format!("/proc/{pid}/exe"))
            .ok()
            .map(|p| p.to_string_lossy().into_owned());
        if pid <= 1
            || pid == std::process::id()
            || self.cfg.allow_pids.contains(&pid)
            || exe
                .as_ref()
                .is_some_and(|e| self.cfg.allow_exes.contains(e))
        {
            return Err(format!(
                "process {pid} is protected or allowlisted; left alone"
            ));
        }
        let (sig, verb) = match action {
            Action::Stop => (libc::SIGSTOP, "stopped"),
            _ => (libc::SIGKILL, "killed"),
        };
        let what = format!("process {pid} ({})", exe.as_deref().unwrap_or("?"));
        if self.cfg.dry_run {
            return Ok(format!("dry run: would have {verb} {what}"));
        }
        // SAFETY: kill(2) with a checked pid and a valid signal number.
        if unsafe { libc::kill(pid as libc::pid_t, sig) } != 0 {
            return Err(format!("{what}: {}", std::io::Error::last_os_error()));
        }
        Ok(format!("{verb} {what}"))
    }

    /// Acts on an alert when a rule matches; the outcome, as an alert.
    pub fn respond(&mut self, a: &Alert, id: String, ts_ns: u64) -> Option<Alert> {
        let action = self.action_for(a)?;
        let r = match action {
            Action::Block => match remote_of(a) {
                Some(addr) => self.block(addr),
                None => Err("no remote address to block".into()),
            },
            Action::Stop | Action::Kill => match a.pid {
                Some(pid) => self.signal(pid, action),
                None => Err("no process to act on".into()),
            },
        };
        let (ok, text) = match r {
            Ok(t) => (true, t),
            Err(t) => (false, t),
        };
        if ok {
            tracing::warn!(alert_id = %a.id, action = ?action, outcome = %text, "response");
        } else {
            tracing::error!(alert_id = %a.id, action = ?action, outcome = %text, "response not carried out");
        }
        Some(Alert {
            id,
            ts_ns,
            node_id: a.node_id.clone(),
            host: a.host.clone(),
            module: "response".into(),
            severity: a.severity,
            entity: a.entity.clone(),
            pid: a.pid,
            exe: a.exe.clone(),
            score: a.score,
            threshold: a.threshold,
            model: a.model.clone(),
            count: 1,
            evidence: vec![
                format!("{}{text}", if ok { "" } else { "not done: " }),
                format!("in response to alert {}", a.id),
            ],
            observed_ns: a.observed_ns,
            first_seen_ns: ts_ns,
            last_seen_ns: ts_ns,
        })
    }
}
