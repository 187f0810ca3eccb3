//! `daisi flows FILE.pcap [--csv OUT]`: the flows of a capture file, with
//! FlowMeter's column names first so FlowMeter tooling can read the CSV.
//! Flows are written as they end; memory is bounded by `--max-flows`.

use crate::capture::libpcap::file_flows;
pub use crate::capture::libpcap::FlowsSummary;
use crate::flows::FEATURES;
use crate::flows::{proto_name, FinishedFlow, FlowLimits};
use anyhow::Context;
use clap::Args;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Args, Debug, Clone)]
pub struct FlowsArgs {
    /// A pcap file.
    pub pcap: PathBuf,
    /// Write the flows here as CSV (else a summary only).
    #[arg(long)]
    pub csv: Option<PathBuf>,
    /// A flow with no packet for this long has ended.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "120s")]
    pub idle_timeout: Duration,
    /// A flow open this long is ended (and a new one begins).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "30m")]
    pub active_timeout: Duration,
    /// Flows held at once; the least recently seen is ended early (counted).
    #[arg(long, default_value_t = 1_000_000)]
    pub max_flows: usize,
}

/// The CSV header: FlowMeter's columns, then ours.
pub fn csv_header() -> Vec<String> {
    let mut h: Vec<String> = [
        "fiveTuple",
        "srcIP",
        "dstIP",
        "protocol",
        "srcPort",
        "dstPort",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    h.extend(FEATURES.iter().map(|s| s.to_string()));
    h.push("endReason".into());
    h
}

fn write_row<W: std::io::Write>(w: &mut csv::Writer<W>, f: &FinishedFlow) -> csv::Result<()> {
    let proto = proto_name(f.proto);
    let (src, dst) = (f.src.0.to_string(), f.dst.0.to_string());
    let (sport, dport) = (f.src.1.to_string(), f.dst.1.to_string());
    w.write_field(format!("{src}--{dst}--{proto}--{sport}--{dport}"))?;
    for v in [&src, &dst, &proto, &sport, &dport] {
        w.write_field(v)?;
    }
    // ryu: the shortest representation that reads back exactly, fast.
    let mut buf = ryu::Buffer::new();
    for v in f.stats.feature_values() {
        if v.fract() == 0.0 && v.abs() < 1e15 {
            w.write_field(itoa::Buffer::new().format(v as i64))?;
        } else {
            w.write_field(buf.format(v))?;
        }
    }
    w.write_field(f.end.name())?;
    w.write_record(None::<&[u8]>)
}

pub fn flows(args: &FlowsArgs) -> anyhow::Result<FlowsSummary> {
    let limits = FlowLimits {
        idle_timeout_ns: args.idle_timeout.as_nanos() as u64,
        active_timeout_ns: args.active_timeout.as_nanos() as u64,
        max_flows: args.max_flows.max(1),
    };
    let mut writer = match &args.csv {
        Some(p) => {
            let mut w =
                csv::Writer::from_path(p).with_context(|| format!("creating {}", p.display()))?;
            w.write_record(csv_header())?;
            Some(w)
        }
        None => None,
    };
    let s = file_flows(&args.pcap, limits, |f| -> anyhow::Result<()> {
        if let Some(w) = writer.as_mut() {
            write_row(w, &f)?;
        }
        Ok(())
    })??;
    if let Some(mut w) = writer {
        w.flush()?;
    }
    Ok(s)
}

pub fn run(args: &FlowsArgs) -> anyhow::Result<()> {
    let s = flows(args)?;
    println!(
        "{} packets, {} flows ({} ended early: table full; at most {} open at once, ≈{} KiB of flow table at {} B per flow), {} stragglers after a close absorbed, skipped: {:?}",
        s.packets,
        s.flows,
        s.evicted,
        s.peak_open,
        (s.peak_open * crate::flows::FlowTable::bytes_per_flow()).div_ceil(1024),
        crate::flows::FlowTable::bytes_per_flow(),
        s.absorbed_packets,
        s.skipped
    );
    if let Some(e) = &s.read_error {
        eprintln!("warning: {} ended with a read error after {} packets: {e}; the flows above are what it held", args.pcap.display(), s.packets);
    }
    Ok(())
}
