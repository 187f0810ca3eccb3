//! Broker connection (NATS). The actors that use it are in
//! `crate::actors::transport`; the in-process transport of the `both` role
//! needs nothing here.
pub mod nats;
