//! The node's actors, grouped by family. `crate::node` decides from the
//! role which of them start and wires their edges.
//!
//! - [`syscall`], capture (`source`) -> per-process batches (`batcher`), on
//!   the collector; windows (`buffer`) -> scores (`classifier`), on compute.
//! - [`network`], libpcap (`packet_source`) -> flow table (`flow_merge`), on
//!   the collector; flow scoring (`flow_classifier`), on compute.
//! - [`logs`], log files and the journal (`source`), on the collector;
//!   parsing and rules (`detector`), on compute.
//! - [`transport`], `outbound` (in-process or NATS, behind a bounded queue)
//!   and `inbound` (decode, dedup, dispatch).
//! - [`alert`], decisions, incidents, folding, response routing, sinks.
//! - [`command`], the collector's side of response (commands from compute
//!   nodes, executed under this host's own rules by `crate::response`).
//! - [`console`], the web console of compute nodes (alerts, incidents,
//!   nodes).
//! - [`runtime`], what every actor shares: the actor shape, bounded edges,
//!   supervision, drain, heartbeats, the metrics endpoint.

pub mod alert;
pub mod command;
pub mod console;
pub mod logs;
pub mod network;
pub mod rules;
pub mod runtime;
pub mod syscall;
pub mod transport;
