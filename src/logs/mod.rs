//! System and application logs: one line into named fields ([`parse`]),
//! files followed across rotation and restarts ([`tail`]), explicit
//! detections on parsed lines ([`rules`]).
//!
//! The collector's log sources (`crate::actors::logs::source`) ship lines
//! as written; the compute side (`crate::actors::logs::detector`) parses
//! and judges them.

pub mod parse;
pub mod rules;
pub mod sequence;
pub mod tail;
pub mod templates;
