//! Counters and gauges that a node reports in its heartbeats and at exit.
//!
//! Names are dotted paths: `edge.<edge>.sent`, `edge.<edge>.dropped`,
//! `decode.malformed`, `actor.<actor>.restarts`... Every place that can lose
//! data owns a counter here, so every drop is visible.

use parking_lot::RwLock;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A monotonically increasing counter (cheap to clone, shared).
#[derive(Clone, Debug, Default)]
pub struct Counter(Arc<AtomicU64>);

impl Counter {
    pub fn inc(&self) {
        self.add(1);
    }
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down (queue depths).
#[derive(Clone, Debug, Default)]
pub struct Gauge(Arc<AtomicU64>);

impl Gauge {
    pub fn set(&self, v: u64) {
        self.0.store(v, Ordering::Relaxed);
    }
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    pub fn dec(&self) {
        // Saturating: a gauge never wraps below zero.
        let _ = self
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                Some(v.saturating_sub(1))
            });
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// All counters and gauges of one node.
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    counters: Arc<RwLock<BTreeMap<String, Counter>>>,
    gauges: Arc<RwLock<BTreeMap<String, Gauge>>>,
}

impl Metrics {
    pub fn new() -> Self {
        Self::default()
    }

    /// The counter of that name, created at zero on first use.
    pub fn counter(&self, name: &str) -> Counter {
        if let Some(c) = self.counters.read().get(name) {
            return c.clone();
        }
        self.counters
            .write()
            .entry(name.to_string())
            .or_default()
            .clone()
    }

    /// The gauge of that name, created at zero on first use.
    pub fn gauge(&self, name: &str) -> Gauge {
        if let Some(g) = self.gauges.read().get(name) {
            return g.clone();
        }
        self.gauges
            .write()
            .entry(name.to_string())
            .or_default()
            .clone()
    }

    /// Current value of a counter (0 when it was never created).
    pub fn get(&self, name: &str) -> u64 {
        self.counters.read().get(name).map_or(0, Counter::get)
    }

    pub fn counters(&self) -> BTreeMap<String, u64> {
        self.counters
            .read()
            .iter()
            .map(|(k, v)| (k.clone(), v.get()))
            .collect()
    }

    pub fn gauges(&self) -> BTreeMap<String, u64> {
        self.gauges
            .read()
            .iter()
            .map(|(k, v)| (k.clone(), v.get()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_shared_by_name() {
        let m = Metrics::new();
        m.counter("a.b").add(2);
        m.counter("a.b").inc();
        assert_eq!(m.get("a.b"), 3);
        assert_eq!(m.get("missing"), 0);
        let g = m.gauge("q");
        g.inc();
        g.dec();
        g.dec();
        assert_eq!(m.gauges()["q"], 0);
    }
}
