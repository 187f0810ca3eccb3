//! Incidents: a process with both a syscall and a network alert within the
//! cooldown becomes one combined alert, one step more severe; so does a
//! remote address with both a network alert and a log alert (the SSH
//! guessing the flows showed, and the login the auth log then recorded).
//! It also remembers each user's latest log alert, for a process tree of
//! that user that opens after it (`trees`).

use crate::messages::{Alert, AlertModule, Severity};
use lru::LruCache;
use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

/// The latest alert of each module for one process.
#[derive(Default)]
struct ProcessAlerts {
    syscall: Option<(Instant, Alert)>,
    network: Option<(Instant, Alert)>,
}

/// The latest network and log alert about one remote address.
#[derive(Default)]
struct SourceAlerts {
    network: Option<(Instant, Alert)>,
    log: Option<(Instant, Alert)>,
}

/// Per (host, pid): the latest alert of each module; per (host, source
/// address): the latest network and log alert (both bounded).
pub struct Correlator {
    cooldown: Duration,
    by_process: LruCache<(String, u32), ProcessAlerts>,
    by_source: LruCache<(String, String), SourceAlerts>,
    by_user: LruCache<(String, String), (Instant, Alert)>,
}

impl Correlator {
    pub fn new(cooldown: Duration, max_processes: usize) -> Self {
        Self {
            cooldown: cooldown.max(Duration::from_secs(1)),
            by_process: LruCache::new(
                NonZeroUsize::new(max_processes).unwrap_or(NonZeroUsize::MIN),
            ),
            by_source: LruCache::new(NonZeroUsize::new(max_processes).unwrap_or(NonZeroUsize::MIN)),
            by_user: LruCache::new(NonZeroUsize::new(max_processes).unwrap_or(NonZeroUsize::MIN)),
        }
    }

    /// Records `a`; the incident (without id, time and node) when its
    /// process, or its remote address, now has both kinds of alert within
    /// the cooldown.
    pub fn correlate(&mut self, a: &Alert) -> Option<Alert> {
        if a.module == AlertModule::Log {
            if let Some(user) = a.user.as_ref().and_then(|u| u.name.clone()) {
                self.by_user
                    .put((a.host.clone(), user), (Instant::now(), a.clone()));
            }
        }
        let by_address = self.by_source(a);
        let by_process = self.by_process(a);
        by_address.or(by_process)
    }

    /// A network or log alert about a remote address.
    fn by_source(&mut self, a: &Alert) -> Option<Alert> {
        let ip = a.source.as_ref()?.ip.clone();
        let now = Instant::now();
        let entry = self
            .by_source
            .get_or_insert_mut((a.host.clone(), ip.clone()), SourceAlerts::default);
        let slot = match a.module {
            AlertModule::Network => &mut entry.network,
            AlertModule::Log => &mut entry.log,
            _ => return None,
        };
        *slot = Some((now, a.clone()));
        let cooldown = self.cooldown;
        let fresh = |s: &Option<(Instant, Alert)>| {
            s.as_ref()
                .filter(|(at, _)| now - *at < cooldown)
                .map(|(_, a)| a.clone())
        };
        let (Some(net), Some(log)) = (fresh(&entry.network), fresh(&entry.log)) else {
            return None;
        };
        Some(address_incident(&ip, &net, &log))
    }

    fn by_process(&mut self, a: &Alert) -> Option<Alert> {
        let pid = a.pid()?;
        let now = Instant::now();
        let entry = self
            .by_process
            .get_or_insert_mut((a.host.clone(), pid), ProcessAlerts::default);
        let slot = match a.module {
            AlertModule::Syscall => &mut entry.syscall,
            AlertModule::Network => &mut entry.network,
            AlertModule::Incident
            | AlertModule::Response
            | AlertModule::Baseline
            | AlertModule::Sigma
            | AlertModule::Log => return None,
        };
        *slot = Some((now, a.clone()));
        let cooldown = self.cooldown;
        let fresh = |s: &Option<(Instant, Alert)>| {
            s.as_ref()
                .filter(|(at, _)| now - *at < cooldown)
                .map(|(_, a)| a.clone())
        };
        let (Some(sys), Some(net)) = (fresh(&entry.syscall), fresh(&entry.network)) else {
            return None;
        };
        Some(incident(pid, &sys, &net))
    }

    /// The process's network alert of the last cooldown, if any (for a
    /// process tree that opens after its flow was already raised).
    pub fn recent_network(&mut self, host: &str, pid: u32) -> Option<Alert> {
        let cooldown = self.cooldown;
        self.by_process
            .get(&(host.to_string(), pid))?
            .network
            .as_ref()
            .filter(|(at, _)| at.elapsed() < cooldown)
            .map(|(_, a)| a.clone())
    }

    /// The latest log alert of the last cooldown naming `user`, if any.
    pub fn recent_log_of_user(&mut self, host: &str, user: &str) -> Option<Alert> {
        let cooldown = self.cooldown;
        self.by_user
            .get(&(host.to_string(), user.to_string()))
            .filter(|(at, _)| at.elapsed() < cooldown)
            .map(|(_, a)| a.clone())
    }
}

/// One step more severe than the worse of two alerts.
fn raised(a: &Alert, b: &Alert) -> Severity {
    match a.severity.max(b.severity) {
        Severity::Low => Severity::Medium,
        Severity::Medium => Severity::High,
        Severity::High | Severity::Critical => Severity::Critical,
    }
}

/// A remote address both the network and the logs raised.
fn address_incident(ip: &str, net: &Alert, log: &Alert) -> Alert {
    Alert {
        summary: format!(
            "{ip} was seen on the network ({}) and in the logs ({})",
            net.summary, log.summary
        ),
        process: log.process.clone().or(net.process.clone()),
        user: log.user.clone(),
        score: net.score.max(log.score),
        model: format!("{} + {}", net.model, log.model),
        source: net.source.clone(),
        destination: net.destination.clone(),
        flow: net.flow.clone(),
        log: log.log.clone(),
        related: vec![net.id.clone(), log.id.clone()],
        observed_ns: log.observed_ns.or(net.observed_ns),
        ..Alert::new(
            AlertModule::Incident,
            &log.host,
            format!("source:{ip}"),
            raised(net, log),
        )
    }
}

fn incident(pid: u32, sys: &Alert, net: &Alert) -> Alert {
    let severity = raised(sys, net);
    let process = sys.process.clone().or(net.process.clone());
    let who = process
        .as_ref()
        .map_or_else(|| format!("pid {pid}"), |p| p.describe());
    Alert {
        summary: format!(
            "process {who} has both unusual system calls ({}) and a malicious flow ({})",
            sys.id, net.id
        ),
        process,
        user: sys.user.clone().or(net.user.clone()),
        container: sys.container.clone().or(net.container.clone()),
        score: sys.score.max(net.score),
        model: format!("{} + {}", sys.model, net.model),
        window: sys.window.clone(),
        source: net.source.clone(),
        destination: net.destination.clone(),
        flow: net.flow.clone(),
        features: net.features.clone(),
        related: vec![sys.id.clone(), net.id.clone()],
        observed_ns: net.observed_ns,
        ..Alert::new(
            AlertModule::Incident,
            &sys.host,
            format!("pid:{pid}"),
            severity,
        )
    }
}
