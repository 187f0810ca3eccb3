//! Folding: repeats for the same module, host and entity within `cooldown`
//! are counted into the first alert, never silently dropped. When the
//! cooldown ends (or the node stops) an alert that folded repeats goes out
//! again as an update: the same id, the count and first/last seen.

use crate::messages::Alert;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The first alert of an entity within its cooldown, with what was folded
/// into it.
pub struct Folded {
    at: Instant,
    pub alert: Alert,
    /// When a response rule last acted on this entity (wall clock, ns).
    pub responded_ns: Option<u64>,
}

/// The open fold windows, by module, host and entity.
pub struct Folds {
    cooldown: Duration,
    open: HashMap<String, Folded>,
}

fn key(a: &Alert) -> String {
    format!("{}/{}/{}", a.module, a.host, a.entity)
}

impl Folds {
    pub fn new(cooldown: Duration) -> Self {
        Self {
            cooldown,
            open: HashMap::new(),
        }
    }

    /// When `a` repeats an open window's alert: counts it there and returns
    /// that window; else `None` (the caller raises `a` and [`Folds::open`]s).
    pub fn repeat(&mut self, a: &Alert) -> Option<&mut Folded> {
        let f = self.open.get_mut(&key(a))?;
        f.alert.count += 1;
        f.alert.last_seen_ns = a.ts_ns;
        f.alert.score = f.alert.score.max(a.score);
        Some(f)
    }

    /// Opens the fold window of an alert just raised.
    pub fn open(&mut self, alert: Alert, responded_ns: Option<u64>) {
        self.open.insert(
            key(&alert),
            Folded {
                at: Instant::now(),
                alert,
                responded_ns,
            },
        );
    }

    /// Ends the windows whose cooldown is over (every one with `all`); the
    /// updates to send: each ended alert that folded repeats.
    pub fn ended(&mut self, all: bool) -> Vec<Alert> {
        let cooldown = self.cooldown;
        let ended: Vec<String> = self
            .open
            .iter()
            .filter(|(_, f)| all || f.at.elapsed() >= cooldown)
            .map(|(k, _)| k.clone())
            .collect();
        ended
            .into_iter()
            .filter_map(|k| self.open.remove(&k))
            .filter(|f| f.alert.count > 1)
            .map(|f| f.alert)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// Any run of alerts within one cooldown: each entity is raised
        /// once, every repeat is counted into it, and an update goes out
        /// for exactly the entities that repeated.
        #[test]
        fn every_repeat_is_counted_and_nothing_is_lost(
            entities in proptest::collection::vec((0u8..6, 0.0f64..10.0), 1..80),
        ) {
            let mut folds = Folds::new(Duration::from_secs(3600));
            let mut raised = Vec::new();
            for (i, (e, score)) in entities.iter().enumerate() {
                let mut a = crate::messages::sample_alert();
                a.entity = format!("pid:{e}");
                a.id = format!("a{i}");
                a.score = *score;
                a.ts_ns = i as u64;
                if folds.repeat(&a).is_none() {
                    raised.push(a.clone());
                    folds.open(a, None);
                }
            }
            let distinct: std::collections::BTreeSet<u8> = entities.iter().map(|(e, _)| *e).collect();
            proptest::prop_assert_eq!(raised.len(), distinct.len());
            let updates = folds.ended(true);
            let repeated = distinct
                .iter()
                .filter(|d| entities.iter().filter(|(e, _)| e == *d).count() > 1)
                .count();
            proptest::prop_assert_eq!(updates.len(), repeated);
            let counted: u64 = updates.iter().map(|u| u.count).sum::<u64>()
                + (distinct.len() - repeated) as u64;
            proptest::prop_assert_eq!(counted, entities.len() as u64);
            for u in &updates {
                let mine: Vec<&(u8, f64)> = entities.iter().filter(|(e, _)| format!("pid:{e}") == u.entity).collect();
                let best = mine.iter().map(|(_, s)| *s).fold(f64::MIN, f64::max);
                proptest::prop_assert_eq!(u.score, best, "the highest score of its repeats");
            }
            proptest::prop_assert!(folds.ended(true).is_empty());
        }
    }
}
