//! Network alerts: one per malicious flow the classifier hands over (once
//! its source is confirmed), and one per source and pattern.

use crate::actors::network::flow_classifier::FlowDetection;
use crate::messages::{
    Alert, AlertModule, Endpoint, FeatureFields, FlowFields, ProcessFields, Severity,
};

/// The alert for one flow the model judged malicious (id, time and node
/// are the alert actor's to set).
pub fn flow_alert(host: &str, d: &FlowDetection, threshold: f64, model: &str) -> Alert {
    let f = &d.flow;
    let get = |k: &str| f.features.get(k).copied().unwrap_or(0.0);
    let flow = FlowFields {
        transport: crate::flows::proto_name(f.proto).to_ascii_lowercase(),
        packets: get("flowLength") as u64,
        bytes: get("packetSizeTotal") as u64,
        duration_ns: get("flowDuration") as u64,
        end: f.end,
        app: f.app.clone(),
    };
    let features: Vec<FeatureFields> = d
        .top
        .iter()
        .map(|e| FeatureFields {
            name: e.name.clone(),
            value: e.value,
            z: e.z,
            contribution: e.contribution,
        })
        .collect();
    let process = f.pid.map(|pid| ProcessFields {
        pid,
        executable: f.exe.clone(),
        ..Default::default()
    });
    let summary = format!(
        "{} flow {}:{} -> {}:{} ({} packets, {} bytes in {:.3} s, ended by {}){}{}: malicious with p = {:.3} > {:.3}{}",
        crate::flows::proto_name(f.proto),
        f.src,
        f.src_port,
        f.dst,
        f.dst_port,
        flow.packets,
        flow.bytes,
        flow.duration_ns as f64 / 1e9,
        flow.end,
        process
            .as_ref()
            .map(|p| format!(
                " of process {} ({})",
                p.pid,
                p.executable.as_deref().unwrap_or("executable unknown")
            ))
            .unwrap_or_default(),
        f.app
            .as_ref()
            .map(|a| a.describe())
            .filter(|d| !d.is_empty())
            .map(|d| format!(", {d}"))
            .unwrap_or_default(),
        d.score,
        threshold,
        features
            .first()
            .map(|e| format!("; raised most by {} = {} ({:+.1} σ from normal)", e.name, e.value, e.z))
            .unwrap_or_default(),
    );
    let severity = if d.score > 0.99 {
        Severity::High
    } else {
        Severity::Medium
    };
    Alert {
        summary,
        process,
        score: d.score,
        threshold,
        model: model.to_string(),
        source: Some(Endpoint {
            ip: f.src.clone(),
            port: f.src_port,
        }),
        destination: Some(Endpoint {
            ip: f.dst.clone(),
            port: f.dst_port,
        }),
        flow: Some(flow),
        features,
        observed_ns: Some(f.last_ns),
        ..Alert::new(
            AlertModule::Network,
            host,
            format!("flow:{}->{}", f.src, f.dst),
            severity,
        )
    }
}

/// The alert for a pattern one source showed across its flows
/// (`flows::behaviour`): one per source and pattern, folding while it goes
/// on.
pub fn pattern_alert(host: &str, p: &crate::flows::behaviour::Finding) -> Alert {
    use crate::flows::behaviour::Pattern;
    let severity = match p.pattern {
        Pattern::ConnectionFlood
        | Pattern::SshGuessing
        | Pattern::DnsTunnelling
        | Pattern::SlowConnections
        | Pattern::LoginGuessing => Severity::High,
        Pattern::PortScan | Pattern::HostSweep | Pattern::WebProbing => Severity::Medium,
    };
    let mut a = Alert::new(
        AlertModule::Network,
        host,
        format!("source:{}:{}", p.source, p.pattern.name()),
        severity,
    );
    a.summary = format!("{} (threshold {})", p.summary, p.threshold);
    a.score = p.value;
    a.threshold = p.threshold;
    a.model = "per-source rules".into();
    a.source = Some(Endpoint {
        ip: p.source.to_string(),
        port: 0,
    });
    a.rule = Some(crate::messages::RuleFields {
        name: format!("network.{}", p.pattern.name()),
        ..Default::default()
    });
    a.observed_ns = Some(p.at_ns);
    a
}
