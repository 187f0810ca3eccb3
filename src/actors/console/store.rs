//! What the console shows, kept in memory: the newest alerts (a bounded
//! ring; a folded alert's update replaces it) and each node's recent
//! heartbeats. The alert actor writes alerts through [`WebSink`]; the
//! heartbeat monitor writes heartbeats.

use crate::actors::alert::sinks::{Sink, SinkError};
use crate::messages::{Alert, Heartbeat, Severity};
use crate::metrics::Counter;
use parking_lot::RwLock;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, VecDeque};

/// Heartbeats kept per node for the charts.
const POINTS: usize = 120;

/// Which alerts a page asks for.
#[derive(Debug, Default, Clone, serde::Deserialize)]
pub struct Filter {
    pub host: Option<String>,
    pub module: Option<String>,
    /// The lowest severity shown (`low`, `medium`, `high`, `critical`).
    pub severity: Option<Severity>,
    /// Only alerts at or after this time, ns since the Unix epoch.
    pub since_ns: Option<u64>,
    /// Only alerts indicating this ATT&CK technique (or a sub-technique
    /// of it) and tactic (`crate::attack::matches`).
    #[serde(default)]
    pub technique: String,
    #[serde(default)]
    pub tactic: String,
    pub limit: Option<usize>,
}

impl Filter {
    fn keeps(&self, a: &Alert) -> bool {
        self.host
            .as_ref()
            .is_none_or(|h| h.is_empty() || *h == a.host)
            && self
                .module
                .as_ref()
                .is_none_or(|m| m.is_empty() || m == a.module.as_str())
            && self.severity.is_none_or(|s| a.severity >= s)
            && self.since_ns.is_none_or(|t| a.ts_ns >= t)
            && crate::attack::matches(a.threat.as_ref(), &self.technique, &self.tactic)
    }
}

/// What the alerts page's filters offer.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Facets {
    pub hosts: Vec<String>,
    pub modules: Vec<String>,
    pub tactics: Vec<String>,
}

/// One node's recent heartbeats.
#[derive(Debug, Clone, Serialize)]
pub struct NodeSeries {
    pub node_id: String,
    pub host: String,
    pub last: Heartbeat,
    /// When the last heartbeat came, ns since the Unix epoch.
    pub heard_ns: u64,
    /// (time ns, events handled in all, dropped in all), oldest first.
    pub points: VecDeque<(u64, u64, u64)>,
}

#[derive(Debug, Default)]
struct Ring {
    /// Alert ids, oldest first.
    order: VecDeque<String>,
    by_id: HashMap<String, Alert>,
}

/// The console's memory.
#[derive(Debug)]
pub struct ConsoleState {
    keep: usize,
    alerts: RwLock<Ring>,
    fleet: RwLock<BTreeMap<String, NodeSeries>>,
    evicted: Counter,
}

impl ConsoleState {
    pub fn new(keep: usize, evicted: Counter) -> Self {
        Self {
            keep: keep.max(1),
            alerts: RwLock::default(),
            fleet: RwLock::default(),
            evicted,
        }
    }

    /// Adds an alert, or replaces the alert of that id (a fold update).
    pub fn insert(&self, a: Alert) {
        let id = a.id.clone();
        let mut ring = self.alerts.write();
        if ring.by_id.insert(id.clone(), a).is_some() {
            return;
        }
        ring.order.push_back(id);
        while ring.order.len() > self.keep {
            if let Some(old) = ring.order.pop_front() {
                ring.by_id.remove(&old);
                self.evicted.inc();
            }
        }
    }

    /// The alerts `f` keeps, newest first, at most `f.limit` (default 200).
    pub fn alerts(&self, f: &Filter) -> Vec<Alert> {
        let ring = self.alerts.read();
        ring.order
            .iter()
            .rev()
            .filter_map(|id| ring.by_id.get(id))
            .filter(|a| f.keeps(a))
            .take(f.limit.unwrap_or(200).min(5000))
            .cloned()
            .collect()
    }

    pub fn alert(&self, id: &str) -> Option<Alert> {
        self.alerts.read().by_id.get(id).cloned()
    }

    /// The hosts, modules and ATT&CK tactics of the alerts kept, for the
    /// filters.
    pub fn facets(&self) -> Facets {
        let ring = self.alerts.read();
        let mut f = Facets {
            hosts: ring.by_id.values().map(|a| a.host.clone()).collect(),
            modules: ring
                .by_id
                .values()
                .map(|a| a.module.as_str().to_string())
                .collect(),
            tactics: ring
                .by_id
                .values()
                .filter_map(|a| a.threat.as_ref())
                .flat_map(|t| t.tactic.name.iter().cloned())
                .collect(),
        };
        for v in [&mut f.hosts, &mut f.modules, &mut f.tactics] {
            v.sort();
            v.dedup();
        }
        f
    }

    /// A node's heartbeat.
    pub fn heartbeat(&self, node_id: &str, host: &str, hb: &Heartbeat, now_ns: u64) {
        let sum = |pred: &dyn Fn(&str) -> bool| -> u64 {
            hb.counters
                .iter()
                .filter(|(k, _)| pred(k))
                .map(|(_, v)| v)
                .sum()
        };
        let events = sum(&|k| {
            matches!(
                k,
                "syscall_source.events" | "packet_source.packets" | "inbound.received.syscall"
            )
        });
        let dropped = sum(&|k| k.split('.').any(|p| p == "dropped"));
        let mut fleet = self.fleet.write();
        if !fleet.contains_key(node_id)
            && fleet.len() >= crate::actors::runtime::heartbeat::MAX_NODES
        {
            if let Some(oldest) = fleet
                .iter()
                .min_by_key(|(_, s)| s.heard_ns)
                .map(|(id, _)| id.clone())
            {
                fleet.remove(&oldest);
            }
        }
        let s = fleet
            .entry(node_id.to_string())
            .or_insert_with(|| NodeSeries {
                node_id: node_id.to_string(),
                host: host.to_string(),
                last: hb.clone(),
                heard_ns: now_ns,
                points: VecDeque::new(),
            });
        s.host = host.to_string();
        s.last = hb.clone();
        s.heard_ns = now_ns;
        s.points.push_back((now_ns, events, dropped));
        while s.points.len() > POINTS {
            s.points.pop_front();
        }
    }

    pub fn nodes(&self) -> Vec<NodeSeries> {
        self.fleet.read().values().cloned().collect()
    }
}

/// The alert sink that feeds the console.
pub struct WebSink(pub std::sync::Arc<ConsoleState>);

impl Sink for WebSink {
    fn name(&self) -> &'static str {
        "console_web"
    }
    fn send(&mut self, a: &Alert) -> Result<(), SinkError> {
        self.0.insert(a.clone());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::AlertModule;

    fn alert(id: &str, host: &str, sev: Severity) -> Alert {
        let mut a = Alert::new(AlertModule::Syscall, host, "pid:1".into(), sev);
        a.id = id.into();
        a
    }

    #[test]
    fn newest_first_filtered_bounded_and_updated_in_place() {
        let s = ConsoleState::new(3, Counter::default());
        s.insert(alert("a", "h1", Severity::Medium));
        s.insert(alert("b", "h2", Severity::High));
        s.insert(alert("c", "h1", Severity::Low));
        let ids = |v: Vec<Alert>| v.into_iter().map(|a| a.id).collect::<Vec<_>>();
        assert_eq!(ids(s.alerts(&Filter::default())), ["c", "b", "a"]);
        let f = Filter {
            host: Some("h1".into()),
            severity: Some(Severity::Medium),
            ..Default::default()
        };
        assert_eq!(ids(s.alerts(&f)), ["a"]);
        // By ATT&CK: a technique takes its sub-techniques; the tactics
        // are offered as a filter.
        let mut cred = alert("b", "h2", Severity::High);
        cred.threat = Some(crate::attack::threat(["credential-access"], ["T1003.008"]));
        s.insert(cred);
        let by = |technique: &str, tactic: &str| Filter {
            technique: technique.into(),
            tactic: tactic.into(),
            ..Default::default()
        };
        assert_eq!(ids(s.alerts(&by("T1003", ""))), ["b"]);
        assert_eq!(ids(s.alerts(&by("", "credential-access"))), ["b"]);
        assert!(s.alerts(&by("T1059", "")).is_empty());
        assert_eq!(s.facets().tactics, ["credential-access"]);
        let mut update = alert("a", "h1", Severity::Medium);
        update.count = 5;
        s.insert(update);
        assert_eq!(s.alert("a").unwrap().count, 5);
        s.insert(alert("d", "h3", Severity::Low));
        assert_eq!(ids(s.alerts(&Filter::default())), ["d", "c", "b"]);
        assert_eq!(s.evicted.get(), 1);
    }
}
