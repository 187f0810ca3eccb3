//! Confirmation of the flow model's detections by their source.
//!
//! One flow the model scores as malicious, alone, is more often a benign
//! client's odd flow (a short connection ended by a reset) than an attack:
//! the attacks the model knows (scans, floods, guessing) are many flows.
//! So a source's malicious flows are held until it has
//! [`Confirmations::needed`] of them within the window, or it shows a
//! per-source pattern; then the held ones go out together, and the
//! source's further malicious flows go out at once while it keeps
//! sending them within the window. Held flows that no second one confirms
//! are dropped when the window passes and counted
//! (`flow_classifier.unconfirmed`).
//!
//! Sources are an LRU of [`Confirmations::max_sources`]; an evicted
//! source's held flows count as unconfirmed.

use lru::LruCache;
use std::net::IpAddr;

/// One source's state.
#[derive(Debug)]
struct Suspect<T> {
    /// The source's latest malicious flow or pattern (ns).
    last_ns: u64,
    /// Confirmed: its malicious flows go out at once.
    confirmed: bool,
    held: Vec<T>,
}

/// Held detections per source (module documentation).
#[derive(Debug)]
pub struct Confirmations<T> {
    /// Malicious flows of one source, within the window, that raise
    /// alerts (1: every one at once).
    pub needed: usize,
    pub window_ns: u64,
    pub max_sources: usize,
    sources: LruCache<IpAddr, Suspect<T>>,
    /// Held detections dropped unconfirmed so far.
    pub unconfirmed: u64,
}

impl<T> Confirmations<T> {
    pub fn new(needed: usize, window_ns: u64, max_sources: usize) -> Self {
        Self {
            needed: needed.max(1),
            window_ns,
            max_sources,
            sources: LruCache::unbounded(),
            unconfirmed: 0,
        }
    }

    /// Held detections now.
    #[cfg(test)]
    fn held(&self) -> usize {
        self.sources.iter().map(|(_, s)| s.held.len()).sum()
    }

    fn suspect(&mut self, src: IpAddr, at_ns: u64) -> &mut Suspect<T> {
        let window = self.window_ns;
        if let Some(s) = self.sources.get_mut(&src) {
            if s.last_ns.saturating_add(window) < at_ns {
                self.unconfirmed += s.held.len() as u64;
                s.held.clear();
                s.confirmed = false;
            }
        } else if self.sources.len() >= self.max_sources.max(1) {
            if let Some((_, old)) = self.sources.pop_lru() {
                self.unconfirmed += old.held.len() as u64;
            }
        }
        let s = self.sources.get_or_insert_mut(src, || Suspect {
            last_ns: at_ns,
            confirmed: false,
            held: Vec::new(),
        });
        s.last_ns = s.last_ns.max(at_ns);
        s
    }

    /// A malicious flow of `src` ending at `at_ns`: what goes out now
    /// (nothing while it waits for confirmation).
    pub fn observe(&mut self, src: IpAddr, at_ns: u64, detection: T) -> Vec<T> {
        let needed = self.needed;
        let s = self.suspect(src, at_ns);
        if s.confirmed || needed <= 1 {
            s.confirmed = true;
            return vec![detection];
        }
        s.held.push(detection);
        if s.held.len() >= needed {
            s.confirmed = true;
            return std::mem::take(&mut s.held);
        }
        Vec::new()
    }

    /// `src` showed a per-source pattern at `at_ns`: its held flows go
    /// out, and its next malicious ones at once.
    pub fn confirm(&mut self, src: IpAddr, at_ns: u64) -> Vec<T> {
        let s = self.suspect(src, at_ns);
        s.confirmed = true;
        std::mem::take(&mut s.held)
    }

    /// Forgets sources quiet for a window before `now_ns` (their held
    /// flows counted unconfirmed).
    pub fn expire(&mut self, now_ns: u64) {
        let window = self.window_ns;
        while let Some((_, s)) = self.sources.peek_lru() {
            if s.last_ns.saturating_add(window) >= now_ns {
                break;
            }
            if let Some((_, s)) = self.sources.pop_lru() {
                self.unconfirmed += s.held.len() as u64;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    #[test]
    fn a_lone_malicious_flow_is_held_and_dropped_unconfirmed() {
        let mut c = Confirmations::new(2, 60 * S, 100);
        assert!(c.observe(ip(1), S, "a").is_empty());
        assert_eq!(c.held(), 1);
        c.expire(30 * S);
        assert_eq!(c.held(), 1, "still within the window");
        c.expire(62 * S);
        assert_eq!((c.held(), c.unconfirmed), (0, 1));
    }

    #[test]
    fn a_second_flow_within_the_window_releases_both_and_opens_the_gate() {
        let mut c = Confirmations::new(2, 60 * S, 100);
        assert!(c.observe(ip(1), S, "a").is_empty());
        assert!(c.observe(ip(2), S, "other source").is_empty());
        assert_eq!(c.observe(ip(1), 10 * S, "b"), vec!["a", "b"]);
        assert_eq!(c.observe(ip(1), 20 * S, "c"), vec!["c"]);
        // Quiet for longer than the window: held again.
        assert!(c.observe(ip(1), 90 * S, "d").is_empty());
        assert_eq!(c.unconfirmed, 0);
    }

    #[test]
    fn flows_further_apart_than_the_window_do_not_confirm_each_other() {
        let mut c = Confirmations::new(2, 60 * S, 100);
        assert!(c.observe(ip(1), S, "a").is_empty());
        assert!(c.observe(ip(1), 70 * S, "b").is_empty());
        assert_eq!(c.unconfirmed, 1);
        assert_eq!(c.held(), 1);
    }

    #[test]
    fn a_pattern_of_the_source_confirms_its_flows() {
        let mut c = Confirmations::new(2, 60 * S, 100);
        assert!(c.observe(ip(1), S, "a").is_empty());
        assert_eq!(c.confirm(ip(1), 2 * S), vec!["a"]);
        assert_eq!(c.observe(ip(1), 3 * S, "b"), vec!["b"]);
        // A pattern before any flow: the first flow goes out at once.
        assert!(c.confirm(ip(3), 3 * S).is_empty());
        assert_eq!(c.observe(ip(3), 4 * S, "x"), vec!["x"]);
    }

    #[test]
    fn one_needed_raises_every_flow_at_once() {
        let mut c = Confirmations::new(1, 60 * S, 100);
        assert_eq!(c.observe(ip(1), S, "a"), vec!["a"]);
        assert_eq!(c.held(), 0);
    }

    #[test]
    fn sources_are_bounded_and_an_evicted_ones_held_flows_counted() {
        let mut c = Confirmations::new(2, 60 * S, 2);
        for i in 0..5 {
            assert!(c.observe(ip(i), S, i).is_empty());
        }
        assert_eq!(c.held(), 2);
        assert_eq!(c.unconfirmed, 3);
    }
}
