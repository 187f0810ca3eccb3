//! Bounded edges between actors, each with an explicit overflow policy.
//!
//! actix's `do_send` ignores mailbox capacity, so the pipeline never uses it:
//! every edge is an [`Edge`], which either waits for room (`block`, real
//! backpressure through `send().await`) or drops the message it cannot place
//! (`drop_newest`, via `try_send`) and counts it. Every edge reports
//! `edge.<name>.sent`, `edge.<name>.dropped` and its queue depth.

use crate::metrics::{Counter, Gauge, Metrics};
use actix::prelude::*;
use serde::{Deserialize, Serialize};

/// What an edge does when the receiving actor's mailbox is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Overflow {
    /// Wait for room: the sender slows down (backpressure). Nothing is lost.
    #[default]
    Block,
    /// Drop the message that does not fit and count it.
    DropNewest,
    /// Drop the oldest queued message and count it. Only offered where the
    /// queue is ours (the outbound network buffer); actor mailboxes cannot
    /// remove their oldest entry.
    DropOldest,
}

/// Mailbox settings of one actor.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MailboxConfig {
    /// Messages the actor's mailbox holds before the overflow policy applies.
    pub capacity: usize,
    /// `block` (backpressure) or `drop_newest` (count and drop).
    pub overflow: Overflow,
}

impl Default for MailboxConfig {
    fn default() -> Self {
        Self {
            capacity: 64,
            overflow: Overflow::Block,
        }
    }
}

impl MailboxConfig {
    pub fn validate(&self, path: &str, errors: &mut Vec<crate::config::validate::ConfigError>) {
        if self.capacity == 0 {
            errors.push(crate::config::validate::ConfigError::new(
                format!("{path}.capacity"),
                "must be at least 1",
            ));
        }
        if self.overflow == Overflow::DropOldest {
            errors.push(crate::config::validate::ConfigError::new(
                format!("{path}.overflow"),
                "drop_oldest is not available for actor mailboxes; use block or drop_newest",
            ));
        }
    }
}

/// The receiving actor is gone for good (only happens during shutdown).
#[derive(Debug, thiserror::Error)]
#[error("edge {0}: receiver has stopped")]
pub struct EdgeClosed(pub String);

/// A typed, counted connection to another actor's mailbox.
pub struct Edge<M>
where
    M: Message + Send,
    M::Result: Send,
{
    name: String,
    to: Recipient<M>,
    overflow: Overflow,
    sent: Counter,
    dropped: Counter,
    in_flight: Gauge,
}

impl<M> Clone for Edge<M>
where
    M: Message + Send,
    M::Result: Send,
{
    fn clone(&self) -> Self {
        Self {
            name: self.name.clone(),
            to: self.to.clone(),
            overflow: self.overflow,
            sent: self.sent.clone(),
            dropped: self.dropped.clone(),
            in_flight: self.in_flight.clone(),
        }
    }
}

impl<M> Edge<M>
where
    M: Message + Send + 'static,
    M::Result: Send,
{
    pub fn new(name: &str, to: Recipient<M>, overflow: Overflow, metrics: &Metrics) -> Self {
        Self {
            name: name.to_string(),
            to,
            overflow,
            sent: metrics.counter(&format!("edge.{name}.sent")),
            dropped: metrics.counter(&format!("edge.{name}.dropped")),
            in_flight: metrics.gauge(&format!("edge.{name}.waiting")),
        }
    }

    /// Delivers `msg` according to the edge's policy. With `block` this
    /// waits until the receiver has room *and* has handled the message, so a
    /// slow stage slows its producers down.
    pub async fn push(&self, msg: M) -> Result<(), EdgeClosed> {
        match self.overflow {
            Overflow::Block => {
                self.in_flight.inc();
                let r = self.to.send(msg).await;
                self.in_flight.dec();
                match r {
                    Ok(_) => {
                        self.sent.inc();
                        Ok(())
                    }
                    Err(_) => {
                        self.dropped.inc();
                        Err(EdgeClosed(self.name.clone()))
                    }
                }
            }
            Overflow::DropNewest | Overflow::DropOldest => match self.to.try_send(msg) {
                Ok(()) => {
                    self.sent.inc();
                    Ok(())
                }
                Err(SendError::Full(_)) => {
                    self.dropped.inc();
                    tracing::debug!(edge = %self.name, "mailbox full, message dropped");
                    Ok(())
                }
                Err(SendError::Closed(_)) => {
                    self.dropped.inc();
                    Err(EdgeClosed(self.name.clone()))
                }
            },
        }
    }
}
