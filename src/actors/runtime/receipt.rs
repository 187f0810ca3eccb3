//! [`Receipt`]: the broker's claim on a message, carried with the work it
//! became until that work is finished.
//!
//! A JetStream batch is acknowledged only after its windows were scored and
//! the alert actor took the scores. The receipt travels with the batch
//! (inbound → buffer → classifier → alert actor); whoever finishes the work
//! calls [`Receipt::done`]. When the last copy is dropped the receipt
//! settles: [`Settle::Done`] if the work was finished, else
//! [`Settle::Retry`] (an actor failed or a queue dropped it: the broker
//! delivers the message again, to this node or another). Messages that
//! did not come from a durable stream have no receipt.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// How a receipt settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settle {
    /// The work is finished: acknowledge.
    Done,
    /// The work was not finished: deliver again.
    Retry,
}

type OnSettle = Box<dyn FnOnce(Settle) + Send + Sync>;

struct Inner {
    done: AtomicBool,
    /// Whoever holds the receipt past its work (a process's batches until
    /// its verdict) settles it by then, before the broker would deliver
    /// the message again.
    due: Option<Instant>,
    on_settle: parking_lot::Mutex<Option<OnSettle>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(f) = self.on_settle.get_mut().take() {
            f(if *self.done.get_mut() {
                Settle::Done
            } else {
                Settle::Retry
            });
        }
    }
}

/// A claim on a broker message; cloning shares it (the message settles
/// once, when the last copy goes).
#[derive(Clone)]
pub struct Receipt(Arc<Inner>);

impl Receipt {
    /// `on_settle` runs once, when the last copy is dropped.
    pub fn new(on_settle: impl FnOnce(Settle) + Send + Sync + 'static) -> Receipt {
        Self::due_at(None, on_settle)
    }

    /// A receipt to settle before `due` (see [`Receipt::due`]).
    pub fn due_at(
        due: Option<Instant>,
        on_settle: impl FnOnce(Settle) + Send + Sync + 'static,
    ) -> Receipt {
        Receipt(Arc::new(Inner {
            due,
            done: AtomicBool::new(false),
            on_settle: parking_lot::Mutex::new(Some(Box::new(on_settle))),
        }))
    }

    /// When a holder must settle it at the latest.
    pub fn due(&self) -> Option<Instant> {
        self.0.due
    }

    /// The work this receipt travels with is finished.
    pub fn done(&self) {
        self.0.done.store(true, Ordering::Release);
    }
}

/// Two receipts are equal when they are copies of one claim.
impl PartialEq for Receipt {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl std::fmt::Debug for Receipt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Receipt(done: {})", self.0.done.load(Ordering::Acquire))
    }
}

/// Marks every receipt of `receipts` done.
pub fn all_done<'a>(receipts: impl IntoIterator<Item = &'a Option<Receipt>>) {
    for r in receipts.into_iter().flatten() {
        r.done();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn recorded() -> (Arc<Mutex<Vec<Settle>>>, Receipt) {
        let log = Arc::new(Mutex::new(Vec::new()));
        let l = log.clone();
        (log, Receipt::new(move |s| l.lock().unwrap().push(s)))
    }

    #[test]
    fn settles_once_when_the_last_copy_goes() {
        let (log, r) = recorded();
        let copy = r.clone();
        drop(r);
        assert!(log.lock().unwrap().is_empty(), "a copy still holds it");
        copy.done();
        drop(copy);
        assert_eq!(*log.lock().unwrap(), vec![Settle::Done]);
    }

    #[test]
    fn unfinished_work_is_delivered_again() {
        let (log, r) = recorded();
        drop(r);
        assert_eq!(*log.lock().unwrap(), vec![Settle::Retry]);
    }
}
