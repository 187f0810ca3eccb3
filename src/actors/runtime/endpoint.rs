//! The metrics endpoint (`[metrics] listen`): every counter and gauge the
//! node keeps, in the Prometheus/OpenMetrics text format written by
//! `prometheus-client`, on `GET /metrics`; with build information and
//! process metrics. Off by default.
//!
//! Names follow the Prometheus conventions: `daisi_` + the counter's
//! dotted name with underscores, counters ending in `_total`, and the
//! varying part of a name as a label: `edge.<to>.sent` is
//! `daisi_edge_sent_total{edge="<to>"}`, `actor.<name>.restarts` is
//! `daisi_actor_restarts_total{actor="<name>"}`,
//! `inbound.received.<kind>` is `daisi_inbound_received_total{kind=…}`,
//! `<side>.rejected.<reason>` is `daisi_<side>_rejected_total{reason=…}`,
//! `packet_source.skipped.<reason>` likewise, and
//! `alert.<sink>.<what>` of a remote sink is
//! `daisi_alert_sink_<what>_total{sink=…}`.

use super::supervision::Restarts;
use super::{drained_when, on_start, Drain, NodeActor, NodeInfo};
use crate::config::validate::{ConfigError, Validate};
use crate::metrics::Metrics;
use actix::prelude::*;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Instant;

/// `[metrics]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Serve `GET /metrics` here (e.g. `127.0.0.1:9464`); unset = off. An
    /// address other than loopback exposes the node's counters to that
    /// network.
    pub listen: Option<SocketAddr>,
}

impl Validate for MetricsConfig {
    fn validate(&self, path: &str, errors: &mut Vec<ConfigError>) {
        if self.listen.is_some_and(|a| a.port() == 0) {
            errors.push(ConfigError::new(
                format!("{path}.listen"),
                "needs a port other than 0",
            ));
        }
    }
}

/// Why the endpoint cannot start.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr} for metrics: {source}")]
pub struct EndpointError {
    pub addr: SocketAddr,
    pub source: std::io::Error,
}

/// A Prometheus family name and the label its varying part becomes.
fn family(name: &str) -> (String, Option<(&'static str, String)>) {
    let parts: Vec<&str> = name.split('.').collect();
    let plain = |s: &str| format!("daisi_{}", s.replace(['.', '-'], "_"));
    match parts.as_slice() {
        ["edge", to @ .., what] if !to.is_empty() => {
            (plain(&format!("edge_{what}")), Some(("edge", to.join("."))))
        }
        ["actor", actor @ .., "restarts"] if !actor.is_empty() => {
            (plain("actor_restarts"), Some(("actor", actor.join("."))))
        }
        ["inbound", "received", kind] => {
            (plain("inbound_received"), Some(("kind", kind.to_string())))
        }
        [side, why @ ("rejected" | "skipped"), reason] => (
            plain(&format!("{side}_{why}")),
            Some(("reason", reason.to_string())),
        ),
        ["alert", sink @ ("jetstream" | "webhook"), what] => (
            plain(&format!("alert_sink_{what}")),
            Some(("sink", sink.to_string())),
        ),
        _ => (plain(name), None),
    }
}

type Families = BTreeMap<String, Vec<(Option<(&'static str, String)>, u64)>>;

fn group(values: BTreeMap<String, u64>) -> Families {
    let mut out: Families = BTreeMap::new();
    for (name, v) in values {
        let (f, label) = family(&name);
        out.entry(f).or_default().push((label, v));
    }
    out
}

/// One family's series: a single value without labels, or each labelled.
fn encode_series<M: EncodeMetric>(
    mut fam: prometheus_client::encoding::MetricEncoder,
    series: Vec<(Option<(&'static str, String)>, u64)>,
    metric: impl Fn(u64) -> M,
) -> Result<(), std::fmt::Error> {
    if let [(None, v)] = series.as_slice() {
        return metric(*v).encode(fam);
    }
    for (label, v) in series {
        let labels: Vec<(&str, String)> = label.into_iter().collect();
        metric(v).encode(fam.encode_family(&labels)?)?;
    }
    Ok(())
}

/// What a scrape reads: the node's metrics, its build, its process.
#[derive(Debug)]
struct Exposition {
    metrics: Metrics,
    started: Instant,
    start_unix: f64,
    role: &'static str,
}

impl prometheus_client::collector::Collector for Exposition {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let help = "a daisi node's counter (docs/metrics.md)";
        for (name, series) in group(self.metrics.counters()) {
            let fam = encoder.encode_descriptor(&name, help, None, MetricType::Counter)?;
            encode_series(fam, series, ConstCounter::new)?;
        }
        let help = "a daisi node's gauge (docs/metrics.md)";
        for (name, series) in group(self.metrics.gauges()) {
            let fam = encoder.encode_descriptor(&name, help, None, MetricType::Gauge)?;
            encode_series(fam, series, |v| ConstGauge::new(v as i64))?;
        }
        let build = [
            ("version", env!("CARGO_PKG_VERSION").to_string()),
            ("schema", crate::messages::SCHEMA_VERSION.to_string()),
            ("torch", cfg!(feature = "torch").to_string()),
            ("role", self.role.to_string()),
        ];
        encoder
            .encode_descriptor("daisi_build", "this build", None, MetricType::Info)?
            .encode_info(&build)?;
        let (cpu_s, rss) = process_usage();
        ConstCounter::new(cpu_s).encode(encoder.encode_descriptor(
            "process_cpu_seconds",
            "CPU time of the process, user and system",
            None,
            MetricType::Counter,
        )?)?;
        ConstGauge::new(rss as i64).encode(encoder.encode_descriptor(
            "process_resident_memory_bytes",
            "resident memory of the process",
            None,
            MetricType::Gauge,
        )?)?;
        ConstGauge::new(self.start_unix).encode(encoder.encode_descriptor(
            "process_start_time_seconds",
            "when the process started, Unix time",
            None,
            MetricType::Gauge,
        )?)?;
        ConstGauge::new(self.started.elapsed().as_secs() as i64).encode(
            encoder.encode_descriptor(
                "daisi_uptime_seconds",
                "time since the node started",
                None,
                MetricType::Gauge,
            )?,
        )?;
        Ok(())
    }
}

/// CPU seconds (user + system) and resident bytes of this process, from
/// `/proc/self/stat` (0 when unreadable).
fn process_usage() -> (f64, u64) {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return (0.0, 0);
    };
    // Fields after the command name (which may hold spaces), from 3 on.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    // SAFETY: sysconf has no preconditions.
    let (hz, page) = unsafe {
        (
            libc::sysconf(libc::_SC_CLK_TCK).max(1) as f64,
            libc::sysconf(libc::_SC_PAGESIZE).max(1) as u64,
        )
    };
    let num = |i: usize| f.get(i).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
    // utime 14, stime 15, rss 24 (1-based) → 11, 12, 21 after `)`.
    ((num(11) + num(12)) as f64 / hz, num(21) * page)
}

/// The exposition text of `metrics` (what `GET /metrics` answers).
pub fn exposition(metrics: &Metrics, role: &'static str, started: Instant) -> String {
    let mut registry = prometheus_client::registry::Registry::default();
    let start_unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
        - started.elapsed().as_secs_f64();
    registry.register_collector(Box::new(Exposition {
        metrics: metrics.clone(),
        started,
        start_unix,
        role,
    }));
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &registry)
        .expect("writing to a String cannot fail");
    out
}

/// Serves the metrics.
pub struct MetricsEndpoint {
    node: NodeInfo,
    listener: Option<std::net::TcpListener>,
    server: Option<actix_web::dev::ServerHandle>,
    restarts: Restarts,
}

impl NodeActor for MetricsEndpoint {
    const NAME: &'static str = "metrics";
    type Config = MetricsConfig;
    /// The bound listener, when `listen` is set.
    type Prepared = Option<std::net::TcpListener>;
    type Links = ();
    type Error = EndpointError;

    fn section(cfg: &crate::config::Config) -> &MetricsConfig {
        &cfg.metrics
    }
    /// Binds the address (so a port in use stops the node before it runs).
    async fn prepare(
        cfg: &crate::config::Config,
        _: &NodeInfo,
    ) -> Result<Option<std::net::TcpListener>, EndpointError> {
        let Some(addr) = cfg.metrics.listen else {
            return Ok(None);
        };
        let l =
            std::net::TcpListener::bind(addr).map_err(|source| EndpointError { addr, source })?;
        l.set_nonblocking(true)
            .map_err(|source| EndpointError { addr, source })?;
        Ok(Some(l))
    }
    fn create(_: MetricsConfig, node: &NodeInfo, listener: Self::Prepared, _: ()) -> Self {
        Self {
            restarts: Restarts::new(Self::NAME, &node.metrics),
            node: node.clone(),
            listener,
            server: None,
        }
    }
    fn mailbox_capacity(&self) -> usize {
        16
    }
}

crate::supervised!(MetricsEndpoint);

impl Actor for MetricsEndpoint {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Context<Self>) {
        on_start(self, ctx);
        // Once: the server outlives restarts.
        let Some(listener) = self.listener.take() else {
            return;
        };
        let addr = listener.local_addr().ok();
        let (metrics, role, started) = (
            self.node.metrics.clone(),
            self.node.role.as_str(),
            self.node.started,
        );
        let server = actix_web::HttpServer::new(move || {
            let metrics = metrics.clone();
            actix_web::App::new().route(
                "/metrics",
                actix_web::web::get().to(move || {
                    let body = exposition(&metrics, role, started);
                    async move {
                        actix_web::HttpResponse::Ok()
                            .content_type(
                                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                            )
                            .body(body)
                    }
                }),
            )
        })
        .workers(1)
        .disable_signals()
        .shutdown_timeout(2)
        .listen(listener)
        .map(|s| s.run());
        self.server = serve(server, "metrics endpoint", addr);
    }
}

/// Runs an HTTP server of the node (the metrics endpoint, the console) in
/// the actor system: one worker, no signal handling of its own (the node
/// drains on its signals). Returns its handle, to stop it at drain.
pub fn serve(
    server: std::io::Result<actix_web::dev::Server>,
    what: &'static str,
    addr: Option<std::net::SocketAddr>,
) -> Option<actix_web::dev::ServerHandle> {
    match server {
        Ok(s) => {
            let handle = s.handle();
            actix::spawn(async move {
                if let Err(e) = s.await {
                    tracing::error!(error = %e, server = what, "stopped");
                }
            });
            tracing::info!(addr = ?addr, server = what, "listening");
            Some(handle)
        }
        Err(e) => {
            tracing::error!(error = %e, server = what, "not started");
            None
        }
    }
}

/// Stops a server started by [`serve`], finishing the requests under way.
pub async fn stop(server: Option<actix_web::dev::ServerHandle>) {
    if let Some(s) = server {
        s.stop(true).await;
    }
}

/// Stops serving (the last scrape may see the drained counters).
impl Handler<Drain> for MetricsEndpoint {
    type Result = ResponseActFuture<Self, ()>;
    fn handle(&mut self, _: Drain, _: &mut Context<Self>) -> Self::Result {
        drained_when(stop(self.server.take()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_families_and_labels() {
        assert_eq!(
            family("edge.syscall_buffer.sent"),
            (
                "daisi_edge_sent".into(),
                Some(("edge", "syscall_buffer".into()))
            )
        );
        assert_eq!(
            family("actor.flow_merge.restarts"),
            (
                "daisi_actor_restarts".into(),
                Some(("actor", "flow_merge".into()))
            )
        );
        assert_eq!(
            family("inbound.rejected.subject_mismatch"),
            (
                "daisi_inbound_rejected".into(),
                Some(("reason", "subject_mismatch".into()))
            )
        );
        assert_eq!(
            family("alert.webhook.dead_letters"),
            (
                "daisi_alert_sink_dead_letters".into(),
                Some(("sink", "webhook".into()))
            )
        );
        assert_eq!(
            family("outbound.sent"),
            ("daisi_outbound_sent".into(), None)
        );
    }

    #[test]
    fn the_text_has_every_counter() {
        let m = Metrics::new();
        m.counter("outbound.sent").add(7);
        m.counter("edge.alert.dropped").add(2);
        m.gauge("outbound.queued").set(3);
        let text = exposition(&m, "collector", Instant::now());
        assert!(text.contains("daisi_outbound_sent_total 7"), "{text}");
        assert!(
            text.contains("daisi_edge_dropped_total{edge=\"alert\"} 2"),
            "{text}"
        );
        assert!(text.contains("daisi_outbound_queued 3"), "{text}");
        assert!(text.contains("daisi_build_info{"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
