//! Seeing a node from outside: the metrics endpoint scraped over HTTP and
//! parsed by a real Prometheus text parser.

mod common;

use common::*;
use std::time::{Duration, Instant};

/// The samples of one scrape.
fn scrape(port: u16) -> prometheus_parse::Scrape {
    let body = ureq::get(&format!("http://127.0.0.1:{port}/metrics"))
        .call()
        .expect("the endpoint answers")
        .into_body()
        .read_to_string()
        .unwrap();
    prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_string())))
        .expect("the exposition parses")
}

fn value(s: &prometheus_parse::Scrape, name: &str, label: Option<(&str, &str)>) -> Option<f64> {
    s.samples
        .iter()
        .find(|x| x.metric == name && label.is_none_or(|(k, v)| x.labels.get(k) == Some(v)))
        .map(|x| match x.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => f64::NAN,
        })
}

#[test]
fn the_metrics_endpoint_serves_every_counter_in_the_prometheus_format() {
    let traces = replay_traces();
    let port = free_port();
    let toml = format!(
        r#"
[node]
role = "both"
[metrics]
listen = "127.0.0.1:{port}"
[syscall_source]
kind = "replay"
path = "{}"
filter = "Training_Data_Master/"
abi = "i386"
max_traces = 40
[alert]
console = false
"#,
        traces.display()
    );
    let mut node = Daisi::spawn(&toml, &[]);
    node.wait_running();
    let until = Instant::now() + Duration::from_secs(30);
    let s = loop {
        let s = scrape(port);
        if value(&s, "daisi_syscall_source_traces_total", None) == Some(40.0) {
            break s;
        }
        assert!(Instant::now() < until, "replay not seen in the metrics");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(value(&s, "daisi_syscall_buffer_events_total", None).unwrap() > 0.0);
    assert_eq!(
        value(&s, "daisi_actor_restarts_total", Some(("actor", "alert"))),
        Some(0.0)
    );
    assert!(value(
        &s,
        "daisi_edge_sent_total",
        Some(("edge", "syscall_buffer"))
    )
    .is_some());
    assert!(
        value(&s, "daisi_alert_processes", None).is_some(),
        "a gauge"
    );
    let rss = value(&s, "process_resident_memory_bytes", None).unwrap();
    assert!(rss > 1e6, "{rss}");
    let build = s
        .samples
        .iter()
        .find(|x| x.metric == "daisi_build_info")
        .expect("build info");
    assert_eq!(build.labels.get("version"), Some(env!("CARGO_PKG_VERSION")));
    assert_eq!(build.labels.get("role"), Some("both"));
    assert!(node.stop(Duration::from_secs(20)).success());
}

#[test]
fn a_metrics_port_in_use_stops_the_node_before_it_runs() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let toml = format!(
        "[node]\nrole = \"both\"\n[metrics]\nlisten = \"127.0.0.1:{port}\"\n[syscall_source]\nkind = \"none\"\n"
    );
    let mut node = Daisi::spawn(&toml, &[]);
    let status = node.wait_exit(Duration::from_secs(20));
    assert!(!status.success());
    assert!(node.log().contains("cannot listen on"), "{}", node.log());
}

fn status(cfg: &std::path::Path, state: &std::path::Path) -> Vec<serde_json::Value> {
    let out = std::process::Command::new(daisi_bin())
        .args(["status", "--json", "--wait", "1500ms", "--config"])
        .arg(cfg)
        .arg("--state")
        .arg(state)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `daisi status` lists the nodes it hears over NATS, and a node heard
/// before but stopped since as silent.
#[test]
fn status_shows_the_fleet_and_its_silent_nodes() {
    let traces = replay_traces();
    let nats = NatsServer::start(&[]);
    let mut compute = Daisi::spawn(&compute_toml("st-cmp", &nats.url(), ""), &[]);
    compute.wait_running();
    let mut collector = Daisi::spawn(
        &collector_toml("st-col", "web9", &nats.url(), &traces, 20, ""),
        &[],
    );
    collector.wait_running();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("status.toml");
    std::fs::write(&cfg, compute_toml("st-viewer", &nats.url(), "")).unwrap();
    let state = dir.path().join("state.json");
    let nodes = status(&cfg, &state);
    let find = |nodes: &[serde_json::Value], id: &str| {
        nodes
            .iter()
            .find(|n| n["node_id"].as_str().unwrap().starts_with(id))
            .cloned()
            .unwrap_or_else(|| panic!("{id} not listed: {nodes:?}"))
    };
    let col = find(&nodes, "st-col");
    assert_eq!(col["role"], "collector");
    assert_eq!(col["host"], "web9");
    assert_eq!(col["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(col["silent"], false);
    assert!(col["rss_bytes"].as_u64().unwrap() > 0);
    assert_eq!(find(&nodes, "st-cmp")["role"], "compute");

    collector.stop_hard();
    let nodes = status(&cfg, &state);
    assert_eq!(find(&nodes, "st-col")["silent"], true, "{nodes:?}");
    assert_eq!(find(&nodes, "st-cmp")["silent"], false);
    assert!(compute.stop(Duration::from_secs(20)).success());
}
