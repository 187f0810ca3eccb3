//! daisi: a distributed, AI-driven intrusion detection system for Linux.
//!
//! - [`config`]: layered, validated configuration.
//! - [`messages`]: the versioned wire format.
//! - [`actors`]: capture, batching, transport, buffering, scoring, alerts.
//! - [`node`]: which actors a role starts, and the ordered shutdown.
//! - [`transport`]: the NATS connection.
//! - [`syscalls`], [`traces`], [`models`]: syscall normalization, trace
//!   files, trained models.
//! - [`capture`]: the kernel boundary (eBPF); [`flows`]: FlowMeter-compatible
//!   flow features.
//! - [`commands`]: the `daisi` subcommands; [`cli`] parses the command line.

pub mod actors;
pub mod capture;
pub mod cli;
pub mod commands;
pub mod config;
pub mod flows;
pub mod messages;
pub mod metrics;
pub mod models;
pub mod node;
pub mod syscalls;
pub mod traces;
pub mod transport;
