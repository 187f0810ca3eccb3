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
    /// Payload bytes each flow's application metadata may look at (HTTP,
    /// TLS, SSH, DNS); 0: statistics only.
    #[arg(long, default_value_t = 4096)]
    pub app_bytes: usize,
}

/// The application metadata columns, after FlowMeter's and ours: ECS's
/// names where ECS has the field, `daisi.*` for the rest.
pub const APP_COLUMNS: [&str; 19] = [
    "http.request.method",
    "url.original",
    "url.domain",
    "user_agent.original",
    "http.response.status_code",
    "daisi.http.requests",
    "daisi.http.responses",
    "daisi.http.client_errors",
    "tls.client.server_name",
    "tls.version",
    "tls.client.ja3",
    "tls.client.ja4",
    "daisi.ssh.client",
    "daisi.ssh.server",
    "dns.question.name",
    "dns.question.type",
    "dns.response_code",
    "daisi.dns.queries",
    "daisi.app.cut",
];

/// A flow's application metadata as [`APP_COLUMNS`] (empty when absent).
pub fn app_fields(app: Option<&crate::messages::AppMeta>) -> [String; 19] {
    let s = |v: Option<&String>| v.cloned().unwrap_or_default();
    let n = |v: Option<String>| v.unwrap_or_default();
    let a = app.cloned().unwrap_or_default();
    let h = a.http.unwrap_or_default();
    let t = a.tls.unwrap_or_default();
    let ssh = a.ssh.unwrap_or_default();
    let d = a.dns.unwrap_or_default();
    let has_http = h.requests + h.responses > 0;
    [
        s(h.method.as_ref()),
        s(h.uri.as_ref()),
        s(h.host.as_ref()),
        s(h.user_agent.as_ref()),
        n(h.status.map(|c| c.to_string())),
        n(has_http.then(|| h.requests.to_string())),
        n(has_http.then(|| h.responses.to_string())),
        n(has_http.then(|| h.client_errors.to_string())),
        s(t.server_name.as_ref()),
        t.version,
        t.ja3,
        s(t.ja4.as_ref()),
        s(ssh.client.as_ref()),
        s(ssh.server.as_ref()),
        s(d.name.as_ref()),
        s(d.qtype.as_ref()),
        s(d.response_code.as_ref()),
        n((d.queries > 0).then(|| d.queries.to_string())),
        if a.cut { "1".into() } else { String::new() },
    ]
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
    h.extend(APP_COLUMNS.iter().map(|s| s.to_string()));
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
    for v in app_fields(f.app.as_ref()) {
        w.write_field(v)?;
    }
    w.write_record(None::<&[u8]>)
}

pub fn flows(args: &FlowsArgs) -> anyhow::Result<FlowsSummary> {
    let limits = FlowLimits {
        idle_timeout_ns: args.idle_timeout.as_nanos() as u64,
        active_timeout_ns: args.active_timeout.as_nanos() as u64,
        max_flows: args.max_flows.max(1),
        app: (args.app_bytes > 0).then(|| crate::flows::app::Budget {
            bytes: args.app_bytes,
            ..Default::default()
        }),
        // A flow file holds each flow once, ended.
        report_open_ns: [0, 0],
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
