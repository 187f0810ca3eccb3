//! daisi: a distributed, AI-driven intrusion detection system for Linux.
//!
//! - [`config`]: layered, validated configuration.
//! - [`messages`]: the versioned wire format.
//! - [`actors`]: capture, batching, transport, buffering, scoring, alerts.
//! - [`node`]: which actors a role starts, and the ordered shutdown.
//! - [`nats`]: the broker connection.
//! - [`response`]: carrying out response actions (nftables, signals,
//!   cgroup freeze) under this host's rules; used by the alert actor
//!   (`both` role) and the collector's command actor.
//! - [`procfs`]: what daisi reads about a process from `/proc`.
//! - [`syscalls`], [`traces`], [`models`]: syscall normalization, trace
//!   files, trained models.
//! - [`capture`]: the kernel boundary (eBPF); [`flows`]: FlowMeter-compatible
//!   flow features.
//! - [`commands`]: the `daisi` subcommands; [`cli`] parses the command line.

pub mod actors;
pub mod baseline;
pub mod capture;
pub mod cli;
pub mod commands;
pub mod config;
pub mod flows;
pub mod messages;
pub mod metrics;
pub mod models;
pub mod nats;
pub mod node;
pub mod procfs;
pub mod response;
pub mod syscalls;
pub mod traces;
