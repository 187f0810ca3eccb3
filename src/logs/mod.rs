//! System and application logs: one line into named fields ([`parse`]),
//! files followed across rotation and restarts ([`tail`]).
//!
//! These are the log sensor's boundary parts; the collector's log sources
//! and the compute side's detections build on them.

pub mod parse;
pub mod tail;
