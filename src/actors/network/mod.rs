//! The network pipeline. Collector: [`packet_source`] (libpcap, live or a
//! file) -> [`flow_merge`] (bounded flow table, process attribution).
//! Compute: [`flow_classifier`] (a score per flow) -> alert.

pub mod flow_classifier;
pub mod flow_merge;
pub mod packet_source;
