//! The node's actors, one file per family. `crate::node` decides from the
//! role which of them start and wires their edges.
//!
//! Every actor has the same shape: a typed config struct (serde,
//! `deny_unknown_fields`, documented fields, defaults) that lives in its file,
//! a fallible `start` that checks everything it needs before the node runs,
//! `Supervised` restart accounting, and a `Drain` handler for graceful stop.
//!
//! Collector side: `syscall_source` (capture) -> `syscall_batcher` (per-process
//! batches with context) -> `transport::Outbound` (in-process or NATS), and
//! `packet_source` (libpcap) -> `flow_merge` (flow table) -> `Outbound`.
//! Compute side: `transport::Inbound` (NATS subscription or in-process) ->
//! `syscall_buffer` (windows -> inference batches) -> `syscall_classifier`
//! (own thread) -> `alert`, and `Inbound` -> `flow_classifier` -> `alert`.
//! `heartbeat` runs on every node. Response: in the `both` role the alert
//! actor acts itself; a compute node's alert actor sends commands through
//! `Outbound`, and the collector of the alert's host runs them in `command`
//! and sends the outcome back the same way.

pub mod alert;
pub mod command;
pub mod flow_classifier;
pub mod flow_merge;
pub mod heartbeat;
pub mod mailbox;
pub mod packet_source;
pub mod supervision;
pub mod syscall_batcher;
pub mod syscall_buffer;
pub mod syscall_classifier;
pub mod syscall_source;
pub mod transport;

use crate::config::Role;
use crate::metrics::Metrics;
use actix::prelude::*;
use std::time::Instant;

/// Identity and shared counters, handed to every actor.
#[derive(Clone, Debug)]
pub struct NodeInfo {
    pub id: String,
    pub host: String,
    pub role: Role,
    pub metrics: Metrics,
    pub started: Instant,
}

/// Graceful stop: finish what is queued, hand everything held downstream,
/// then reply. Sent in pipeline order (capture first) by `crate::node`.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct Drain;

/// Nanoseconds since the Unix epoch.
pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}
