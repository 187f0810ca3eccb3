//! Moving envelopes between nodes.
//!
//! [`Outbound`] turns payloads into sequenced [`Envelope`]s and delivers them
//! either in-process (role `both`: straight into the local [`Inbound`]'s
//! mailbox, no serialization) or over NATS. The NATS route keeps a bounded
//! buffer of encoded messages; a pump publishes them in groups and only counts
//! a group as sent once the server confirms it (a flush round trip). While
//! the broker is unreachable the buffer fills, its overflow policy applies
//! (`drop_oldest` by default) and every drop is counted, so at any quiet
//! moment `outbound.sent + outbound.dropped == outbound.produced`.
//! A group that was not confirmed is published again after reconnecting;
//! receivers drop the duplicates by `(node_id, seq)`.
//!
//! Over JetStream ([`stream`], the default) the stream acknowledges each
//! publish, so a batch counts as sent once it is stored; compute nodes read
//! it from a partition they hold and acknowledge it once its work is done.
//!
//! [`Inbound`] receives envelopes (from NATS subscriptions it decodes and
//! bounds, or in-process), drops duplicates, and dispatches each payload kind
//! to the actor that handles it.

pub mod inbound;
pub mod outbound;
pub mod queue;
pub mod stream;
pub mod subscription;

pub use inbound::{Dispatch, Inbound, InboundConfig};
pub use outbound::{NatsRoute, Outbound, OutboundConfig, Route};

use crate::messages::{Envelope, Payload};
use actix::prelude::*;

/// Send this payload to the compute side.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct Publish(pub Payload);

/// An envelope that arrived (decoded and size-checked when from the
/// network), with its claim on the durable stream when it came from one.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct Deliver(pub Envelope, pub Option<subscription::Durable>);
