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
pub mod attack;
pub mod baseline;
pub mod capture;
pub mod cli;
pub mod commands;
pub mod config;
pub mod containers;
pub mod files;
pub mod flows;
pub mod install;
pub mod logs;
pub mod messages;
pub mod metrics;
pub mod models;
pub mod nats;
pub mod node;
pub mod procfs;
pub mod redact;
pub mod response;
pub mod rules;
pub mod syscalls;
pub mod traces;

/// FNV-1a (64 bits) of a stream of bytes: stable across builds and
/// machines, for hashes that are saved (profiles, model fingerprints) or
/// compared between nodes (message ids, partition join delays).
pub fn fnv1a(bytes: impl IntoIterator<Item = u8>) -> u64 {
    bytes.into_iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Seed inputs for the fuzz targets (`fuzz/`), made by tests from the
/// project's own encoders: each seed is compared with its committed file
/// under `fuzz/corpus/<target>/`, and written there instead when
/// `DAISI_WRITE_SEEDS=1` (then commit them). A test fails when the
/// committed seeds no longer match what this build makes.
#[doc(hidden)]
pub mod fuzz_seeds {
    use std::path::PathBuf;

    pub fn check(target: &str, name: &str, bytes: &[u8]) {
        let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "fuzz", "corpus", target, name]
            .iter()
            .collect();
        if std::env::var("DAISI_WRITE_SEEDS").as_deref() == Ok("1") {
            std::fs::create_dir_all(path.parent().expect("in a directory")).unwrap();
            std::fs::write(&path, bytes).unwrap();
            return;
        }
        let committed = std::fs::read(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (make the seeds with DAISI_WRITE_SEEDS=1 cargo test)",
                path.display()
            )
        });
        assert!(
            committed == bytes,
            "{} differs from what this build makes (DAISI_WRITE_SEEDS=1 cargo test, then commit)",
            path.display()
        );
    }
}
