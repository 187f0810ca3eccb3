//! Incidents: a process with both a syscall and a network alert within the
//! cooldown becomes one combined alert, one step more severe.

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

/// Per (host, pid): the latest alert of each module (bounded).
pub struct Correlator {
    cooldown: Duration,
    by_process: LruCache<(String, u32), ProcessAlerts>,
}

impl Correlator {
    pub fn new(cooldown: Duration, max_processes: usize) -> Self {
        Self {
            cooldown: cooldown.max(Duration::from_secs(1)),
            by_process: LruCache::new(
                NonZeroUsize::new(max_processes).unwrap_or(NonZeroUsize::MIN),
            ),
        }
    }

    /// Records `a`; the incident (without id, time and node) when its
    /// process now has both kinds of alert within the cooldown.
    pub fn correlate(&mut self, a: &Alert) -> Option<Alert> {
        let pid = a.pid()?;
        let now = Instant::now();
        let entry = self
            .by_process
            .get_or_insert_mut((a.host.clone(), pid), ProcessAlerts::default);
        let slot = match a.module {
            AlertModule::Syscall => &mut entry.syscall,
            AlertModule::Network => &mut entry.network,
            AlertModule::Incident | AlertModule::Response | AlertModule::Baseline => return None,
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
}

fn incident(pid: u32, sys: &Alert, net: &Alert) -> Alert {
    let severity = match sys.severity.max(net.severity) {
        Severity::Low => Severity::Medium,
        Severity::Medium => Severity::High,
        Severity::High | Severity::Critical => Severity::Critical,
    };
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
