//! The traffic lab against the real thing: network namespaces of our own
//! (`lab/lab.sh`), real services and real attack tools, live libpcap
//! capture by `daisi run` inside the victim's namespace, the committed
//! network model. Needs root and the lab's Debian packages (installed by
//! `scripts/setup.sh`); skips with a message otherwise, fails under
//! `DAISI_REQUIRE` (see `tests/common`).
//!
//! All traffic stays inside namespaces these tests create (private
//! addresses, no default route); every tool is bounded in count and time.

mod common;

use common::{read_alerts as alerts, wait_for_alert, Daisi, Prereq};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const LAB: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/lab/lab.sh");

fn root_for_live_capture() -> bool {
    common::root("live capture needs root")
}

fn installed(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn lab_ready() -> bool {
    if !common::root("the traffic lab needs root (network namespaces)") {
        return false;
    }
    ["nmap", "hping3", "hydra", "dirb", "tcpdump", "socat", "nft"]
        .into_iter()
        .all(|t| {
            common::require(
                Prereq::Lab,
                installed(t),
                &format!("{t} is not installed (run scripts/setup.sh)"),
            )
        })
}

/// A lab of its own (namespace prefix and subnet), torn down on drop.
struct Lab {
    prefix: String,
    net: String,
}

impl Lab {
    fn new(prefix: &str, net: u8) -> Lab {
        Lab {
            prefix: prefix.into(),
            net: net.to_string(),
        }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(LAB);
        c.args(args)
            .env("DAISI_LAB_PREFIX", &self.prefix)
            .env("DAISI_LAB_NET", &self.net);
        c
    }

    fn run(&self, args: &[&str]) -> String {
        let out = self.cmd(args).output().expect("running lab/lab.sh");
        assert!(
            out.status.success(),
            "lab/lab.sh {args:?} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn addr(&self, role: &str) -> String {
        self.run(&["addr", role])
    }

    fn ns(&self, role: &str) -> String {
        format!("{}-{role}", self.prefix)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = self.cmd(&["down"]).status();
    }
}

fn node_toml(alerts: &Path) -> String {
    format!(
        r#"
[node]
role = "both"
host = "victim"
shutdown_deadline = "5s"
[heartbeat]
interval = "1s"
[syscall_source]
kind = "none"
[packet_source]
kind = "live"
interface = "eth0"
[flow_merge]
idle_timeout = "2s"
tick = "100ms"
[alert]
console = false
jsonl = "{}"
cooldown = "1h"
"#,
        alerts.display()
    )
}

/// Live capture on the victim's interface: benign client traffic raises no
/// alert; an nmap SYN scan from the attacker raises alerts naming the
/// attacker's address, each with its flow's last-packet time.
#[test]
fn live_capture_alerts_on_a_scan_and_not_on_benign_traffic() {
    if !lab_ready() {
        return;
    }
    let lab = Lab::new("dtlive", 214);
    lab.run(&["up"]);
    let (victim, attacker) = (lab.addr("victim"), lab.addr("attacker"));
    let dir = tempfile::tempdir().unwrap();
    let alerts_file = dir.path().join("alerts.jsonl");
    let ns = lab.ns("victim");
    let mut node = Daisi::spawn_with(&["ip", "netns", "exec", &ns], &node_toml(&alerts_file), &[]);
    node.wait_running();

    // Benign: page views, downloads, echo exchanges from the client.
    let script = format!(
        "for i in $(seq 1 40); do curl -s -o /dev/null --max-time 5 http://{victim}:8000/docs/page$(( (i % 20) + 1 )).html; \
         [ $((i % 10)) -eq 0 ] && curl -s -o /dev/null --max-time 10 http://{victim}:8000/download.bin; \
         [ $((i % 4)) -eq 0 ] && printf 'hi\\n' | socat -t 1 - TCP:{victim}:7 >/dev/null; \
         [ $((i % 3)) -eq 0 ] && curl -s -o /dev/null --max-time 5 http://{victim}:8000/; \
         [ $((i % 7)) -eq 0 ] && curl -s -o /dev/null --max-time 5 http://{victim}:8000/favicon.ico; sleep 0.05; done"
    );
    let ok = lab
        .cmd(&["exec", "client", "timeout", "60", "bash", "-c", &script])
        .status()
        .unwrap();
    assert!(ok.success(), "benign client traffic failed");
    // Every benign flow has ended (FIN, or the 2 s idle timeout) and been scored.
    std::thread::sleep(Duration::from_secs(4));
    let benign_alerts = alerts(&alerts_file);
    assert!(
        benign_alerts.is_empty(),
        "benign traffic raised alerts: {benign_alerts:#?}"
    );

    // Attack: a bounded SYN scan.
    let started = Instant::now();
    let ok = lab
        .cmd(&[
            "exec", "attacker", "timeout", "60", "nmap", "-n", "-Pn", "-sS", "-T4", "-p", "1-300",
            &victim,
        ])
        .output()
        .unwrap();
    assert!(ok.status.success(), "nmap failed: {ok:?}");
    let until = Instant::now() + Duration::from_secs(15);
    let found = loop {
        let a = alerts(&alerts_file);
        let hits: Vec<_> = a
            .iter()
            .filter(|x| x["entity"].as_str().is_some_and(|e| e.contains(&attacker)))
            .cloned()
            .collect();
        let flows = hits
            .iter()
            .any(|x| x["entity"].as_str().is_some_and(|e| e.starts_with("flow:")));
        let scan = hits
            .iter()
            .any(|x| x["rule"]["name"] == "network.port_scan");
        if (flows && scan) || Instant::now() > until {
            break hits;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        !found.is_empty(),
        "no alert for the attacker {attacker} within 15 s of the scan; log:\n{}",
        node.log()
    );
    // The scan as a whole: one alert for the source, naming the pattern.
    let scan: Vec<_> = found
        .iter()
        .filter(|x| x["rule"]["name"] == "network.port_scan")
        .collect();
    assert_eq!(
        scan.len(),
        1,
        "one port_scan alert for the attacker: {found:#?}"
    );
    assert_eq!(scan[0]["source"]["ip"], attacker.as_str());
    assert!(
        scan[0]["summary"].as_str().unwrap().contains("ports of"),
        "{}",
        scan[0]
    );
    for a in found
        .iter()
        .filter(|x| x["rule"]["name"] != "network.port_scan")
    {
        assert_eq!(a["module"], "network");
        assert_eq!(a["flow"]["transport"], "tcp", "{a}");
        assert!(a["features"][0]["z"].is_number(), "{a}");
        assert_eq!(a["source"]["ip"], attacker.as_str(), "{a}");
        let summary = a["summary"].as_str().unwrap();
        assert!(
            summary.contains("TCP") && summary.contains("σ from normal"),
            "summary: {summary}"
        );
        let (ts, seen) = (
            a["ts_ns"].as_u64().unwrap(),
            a["observed_ns"].as_u64().unwrap(),
        );
        assert!(ts >= seen, "alert before its flow's last packet: {a}");
        eprintln!(
            "alert {} after {:.1} ms from the flow's last packet ({:.1} s after the scan began)",
            a["entity"],
            (ts - seen) as f64 / 1e6,
            started.elapsed().as_secs_f64()
        );
    }
    assert!(
        alerts(&alerts_file)
            .iter()
            .all(|a| a["entity"].as_str().is_some_and(|e| e.contains(&attacker))),
        "an alert not about the attacker: {:#?}",
        alerts(&alerts_file)
    );
    let status = node.stop(Duration::from_secs(10));
    assert!(
        status.success(),
        "daisi exited with {status}:\n{}",
        node.log()
    );
    let log = node.log();
    assert!(log.contains("packet capture stopped"), "{log}");
}

/// One lab run for the tests below (generated once per test process, in
/// Cargo's scratch directory), or `None` when the lab cannot run here.
fn fresh_lab() -> Option<&'static Path> {
    static LAB: OnceLock<Option<PathBuf>> = OnceLock::new();
    LAB.get_or_init(|| {
        if !lab_ready() {
            return None;
        }
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fresh-lab");
        let _ = std::fs::remove_dir_all(&out);
        Lab::new("dteval", 215).run(&["generate", out.to_str().unwrap(), "--scale", "small"]);
        Some(out)
    })
    .as_deref()
}

/// The committed model on a freshly generated lab run (new captures, never
/// seen in training): issue #4's targets recomputed: F1 ≥ 0.95 and benign
/// false positives ≤ 1 % on the kinds seen in training, recall ≥ 0.80 on
/// the kind held out of training (nmap_connect).
#[test]
fn committed_model_on_a_fresh_lab_run() {
    let Some(lab) = fresh_lab() else { return };
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let status = Command::new(common::daisi_bin())
        .args(["eval", "network", "--labels"])
        .arg(lab.join("labels.csv"))
        .arg("--report")
        .arg(&report)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .unwrap();
    assert!(status.success());
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let seen = &r["seen"];
    assert!(seen["f1"].as_f64().unwrap() >= 0.95, "seen kinds: {seen}");
    assert!(seen["fpr"].as_f64().unwrap() <= 0.01, "seen kinds: {seen}");
    // The kind held out of training to measure an unseen attack.
    let held = &r["per_kind"]["nmap_connect"];
    assert!(
        held["recall"].as_f64().unwrap() >= 0.80,
        "nmap_connect: {held}"
    );
}

/// daisi's flows against NFStream's on the same lab captures (without
/// source-port reuse): the same number of flows, and every packet and byte
/// NFStream counts is in a daisi flow or among the stragglers daisi absorbs
/// after a FIN/RST close.
#[test]
fn flows_agree_with_nfstream() {
    let Some(lab) = fresh_lab() else { return };
    let venv = std::env::var("DAISI_NFSTREAM_VENV")
        .unwrap_or_else(|_| "/var/cache/daisi/nfstream-venv".into());
    let python = Path::new(&venv).join("bin/python");
    if !common::require(
        Prereq::Peers,
        python.exists(),
        &format!("NFStream is not installed in {venv} (run scripts/setup.sh)"),
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for pcap in [
        "benign.pcap",
        "nmap_syn.pcap",
        "hping_syn.pcap",
        "nmap_udp.pcap",
    ] {
        let nf_csv = dir.path().join(format!("{pcap}.nfstream.csv"));
        let out = Command::new(&python)
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/scripts/nfstream_flows.py"
            ))
            .arg(lab.join(pcap))
            .arg(&nf_csv)
            .args(["--idle", "30"])
            .output()
            .unwrap();
        assert!(out.status.success(), "nfstream: {out:?}");
        // daisi makes flows of TCP, UDP and ICMP and counts other IP
        // protocols as skipped (an IGMP report may turn up in a capture);
        // NFStream makes flows of everything.
        let (mut nf_flows, mut nf_packets, mut nf_bytes, mut nf_other) = (0u64, 0, 0, 0);
        for r in csv::Reader::from_path(&nf_csv).unwrap().records() {
            let r = r.unwrap();
            let packets: u64 = r[5].parse().unwrap();
            if !["1", "6", "17", "58"].contains(&&r[4]) {
                nf_other += packets;
                continue;
            }
            nf_flows += 1;
            nf_packets += packets;
            nf_bytes += r[6].parse::<u64>().unwrap();
        }
        let ours_csv = dir.path().join(format!("{pcap}.daisi.csv"));
        let s = daisi::commands::flows::flows(&daisi::commands::flows::FlowsArgs {
            pcap: lab.join(pcap),
            csv: Some(ours_csv.clone()),
            idle_timeout: Duration::from_secs(30),
            active_timeout: Duration::from_secs(1800),
            max_flows: 1_000_000,
            app_bytes: 4096,
        })
        .unwrap();
        let mut rdr = csv::Reader::from_path(&ours_csv).unwrap();
        let h = rdr.headers().unwrap().clone();
        let col = |name: &str| h.iter().position(|x| x == name).unwrap();
        let (len, size) = (col("flowLength"), col("packetSizeTotal"));
        let (mut packets, mut bytes) = (0u64, 0u64);
        for r in rdr.records() {
            let r = r.unwrap();
            packets += r[len].parse::<f64>().unwrap() as u64;
            bytes += r[size].parse::<f64>().unwrap() as u64;
        }
        eprintln!(
            "{pcap}: NFStream {nf_flows} flows {nf_packets} packets {nf_bytes} bytes; daisi {} flows {packets} packets {bytes} bytes + {} absorbed ({} bytes)",
            s.flows, s.absorbed_packets, s.absorbed_bytes
        );
        assert_eq!(s.flows, nf_flows, "{pcap}: flow counts");
        assert_eq!(
            s.skipped.get("other_protocol").copied().unwrap_or(0),
            nf_other,
            "{pcap}: other protocols"
        );
        assert_eq!(packets + s.absorbed_packets, nf_packets, "{pcap}: packets");
        assert_eq!(bytes + s.absorbed_bytes, nf_bytes, "{pcap}: bytes");
    }
}

/// The same actors read a capture file (`packet_source.kind = "file"`):
/// every flow `daisi flows` finds in a lab capture crosses the node and is
/// scored, and the alerts name the attacker only.
#[test]
fn a_capture_file_through_the_node() {
    let Some(lab) = fresh_lab() else { return };
    let pcap = lab.join("nmap_syn.pcap");
    let offline = daisi::commands::flows::flows(&daisi::commands::flows::FlowsArgs {
        pcap: pcap.clone(),
        csv: None,
        idle_timeout: Duration::from_secs(30),
        active_timeout: Duration::from_secs(1800),
        max_flows: 262_144,
        app_bytes: 4096,
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let alerts_file = dir.path().join("alerts.jsonl");
    let toml = format!(
        r#"
[node]
role = "both"
host = "replay"
[syscall_source]
kind = "none"
[packet_source]
kind = "file"
path = "{}"
[alert]
console = false
jsonl = "{}"
cooldown = "0s"
"#,
        pcap.display(),
        alerts_file.display()
    );
    let mut node = Daisi::spawn(&toml, &[]);
    let until = Instant::now() + Duration::from_secs(30);
    while !node.log().contains("capture file read") {
        assert!(Instant::now() < until, "file not read:\n{}", node.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    assert!(node.stop(Duration::from_secs(10)).success());
    let log = node.log();
    let counter = |name: &str| common::drained_counter(&log, name);
    assert_eq!(counter("flow_merge.flows"), offline.flows, "{log}");
    assert_eq!(counter("flow_classifier.flows"), offline.flows, "{log}");
    let attacker = std::fs::read_to_string(lab.join("labels.csv"))
        .unwrap()
        .lines()
        .find(|l| l.starts_with("nmap_syn.pcap"))
        .and_then(|l| l.rsplit(',').next())
        .unwrap()
        .to_string();
    let a = alerts(&alerts_file);
    assert!(!a.is_empty(), "no alerts:\n{log}");
    assert_eq!(
        a.len() as u64,
        counter("flow_classifier.malicious") + counter("flow_classifier.patterns")
    );
    assert!(
        a.iter().any(|x| x["rule"]["name"] == "network.port_scan"),
        "the scan as a whole"
    );
    for x in &a {
        assert!(x["entity"].as_str().unwrap().contains(&attacker), "{x}");
    }
}

/// A missing interface and missing privileges stop the node before it
/// starts, with the cause named (exit code 1, no panic).
#[test]
fn capture_errors_are_named_before_the_node_starts() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("node.toml");
    let write = |iface: &str| {
        std::fs::write(
            &cfg,
            format!("[node]\nrole = \"both\"\n[syscall_source]\nkind = \"none\"\n[packet_source]\nkind = \"live\"\ninterface = \"{iface}\"\n"),
        )
        .unwrap();
    };
    write("nosuch0");
    let out = Command::new(common::daisi_bin())
        .args(["run", "--config"])
        .arg(&cfg)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("no network interface named \"nosuch0\""),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");

    if !common::root("the privilege half needs root to drop privileges") {
        return;
    }
    write("lo");
    let out = common::run_unprivileged(&cfg);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("needs CAP_NET_RAW"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// A `both` node capturing live on `lo` for one listening port of this
/// test, every flow scored as malicious (threshold 0) and raised at once
/// (no second flow needed to confirm it), alerts in `alerts.jsonl` of the
/// returned directory; `extra` adds config.
fn lo_node(extra: &str) -> (std::net::TcpListener, Daisi, tempfile::TempDir) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        r#"
[node]
role = "both"
[packet_source]
kind = "live"
interface = "lo"
filter = "tcp port {port}"
[flow_merge]
idle_timeout = "1s"
tick = "100ms"
[flow_classifier]
threshold = 0.0
confirm_flows = 1
[alert]
console = false
jsonl = "{}"
{extra}"#,
        dir.path().join("alerts.jsonl").display()
    );
    let node = Daisi::spawn(&toml, &[]);
    node.wait_running();
    (listener, node, dir)
}

/// Process–flow attribution: a connection this test makes, captured live
/// on `lo`, reaches the alert sink with this process's pid and executable.
#[test]
fn a_flow_carries_the_process_that_made_it() {
    if !root_for_live_capture() {
        return;
    }
    // Threshold 0: every flow becomes an alert, to see what it carries.
    let (listener, node, dir) = lo_node("[syscall_source]\nkind = \"none\"\n");
    let mut node = node;
    let port = listener.local_addr().unwrap().port();
    let alerts_file = dir.path().join("alerts.jsonl");
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = [0u8; 5];
        std::io::Read::read_exact(&mut s, &mut buf).unwrap();
        std::io::Write::write_all(&mut s, &buf).unwrap();
    });
    let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    std::io::Write::write_all(&mut c, b"hello").unwrap();
    let mut buf = [0u8; 5];
    std::io::Read::read_exact(&mut c, &mut buf).unwrap();
    server.join().unwrap();
    drop(c);
    let found = wait_for_alert(
        &alerts_file,
        Duration::from_secs(10),
        |x| x["process"]["pid"].is_number(),
        "no attributed flow",
        || node.log(),
    );
    assert_eq!(
        found["process"]["pid"].as_u64(),
        Some(std::process::id() as u64),
        "{found}"
    );
    let me = std::env::current_exe().unwrap();
    assert_eq!(
        found["process"]["executable"].as_str(),
        me.to_str(),
        "{found}"
    );
    assert!(node.stop(Duration::from_secs(10)).success());
}

/// A `both` node capturing live on `lo` (capture filter `filter`) with the
/// default models and rules, `[flow_merge]` keys `flow_merge`, alerts in
/// `alerts.jsonl` of the returned directory.
fn lo_rules_node(filter: &str, flow_merge: &str) -> (Daisi, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        r#"
[node]
role = "both"
[syscall_source]
kind = "none"
[packet_source]
kind = "live"
interface = "lo"
filter = "{filter}"
[flow_merge]
{flow_merge}
[alert]
console = false
jsonl = "{}"
"#,
        dir.path().join("alerts.jsonl").display()
    );
    let node = Daisi::spawn(&toml, &[]);
    node.wait_running();
    (node, dir)
}

/// Ten connections held open with a trickle, live on `lo`: the
/// per-source rule raises them as slow connections while they are still
/// open (from the flow table's report of long open flows), not only when
/// they end.
#[test]
fn slow_connections_are_raised_while_they_are_open() {
    if !root_for_live_capture() {
        return;
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (mut node, dir) = lo_rules_node(
        &format!("tcp port {port}"),
        "tick = \"100ms\"\nreport_long_open_after = \"11s\"",
    );
    let alerts_file = dir.path().join("alerts.jsonl");
    let server = std::thread::spawn(move || {
        let mut readers = Vec::new();
        for _ in 0..10 {
            let (mut s, _) = listener.accept().unwrap();
            readers.push(std::thread::spawn(move || {
                let mut buf = [0u8; 64];
                while std::io::Read::read(&mut s, &mut buf).is_ok_and(|n| n > 0) {}
            }));
        }
        for r in readers {
            r.join().unwrap();
        }
    });
    let mut conns: Vec<std::net::TcpStream> = (0..10)
        .map(|_| std::net::TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    // A byte per connection every 2 s, at most 24 s.
    let start = Instant::now();
    let slow = |x: &serde_json::Value| x["rule"]["name"] == "network.slow_connections";
    let mut raised = None;
    while raised.is_none() && start.elapsed() < Duration::from_secs(24) {
        for c in &mut conns {
            std::io::Write::write_all(c, b"x").unwrap();
        }
        let tick = Instant::now();
        while raised.is_none() && tick.elapsed() < Duration::from_secs(2) {
            raised = alerts(&alerts_file).into_iter().find(slow);
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let open_for = start.elapsed();
    drop(conns);
    server.join().unwrap();
    let a = raised.unwrap_or_else(|| panic!("no slow_connections alert in 24 s:\n{}", node.log()));
    assert_eq!(a["source"]["ip"], "127.0.0.1", "{a}");
    assert!(
        open_for < Duration::from_secs(20),
        "raised after {open_for:?}, while the connections were open"
    );
    std::thread::sleep(Duration::from_millis(1500));
    assert!(node.stop(Duration::from_secs(10)).success());
    let log = node.log();
    // Each connection at 500ms and at 11s.
    assert_eq!(
        common::drained_counter(&log, "flow_merge.reported_open"),
        20,
        "{log}"
    );
    let all = alerts(&alerts_file);
    assert_eq!(
        all.iter().filter(|x| slow(x)).count(),
        1,
        "raised once: {all:#?}"
    );
}

/// Thirty long, random DNS names looked up over UDP on `lo` (no answer
/// needed): UDP flows end only at `flow_merge.idle_timeout` (30 s here),
/// but the flow table's report of flows open for 500 ms brings the names
/// to the per-source rule well before: `network.dns_tunnelling` raised
/// before any of the flows has ended.
#[test]
fn dns_tunnelling_is_raised_before_its_flows_time_out() {
    if !root_for_live_capture() {
        return;
    }
    let (mut node, dir) = lo_rules_node("udp port 53", "idle_timeout = \"30s\"");
    let alerts_file = dir.path().join("alerts.jsonl");
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    for i in 0..30u16 {
        let label: String = (0..40)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                char::from_digit((x % 16) as u32, 16).unwrap()
            })
            .collect();
        let name = format!("{label}.t.example");
        let mut q = simple_dns::Packet::new_query(i);
        q.questions.push(simple_dns::Question::new(
            simple_dns::Name::new_unchecked(&name),
            simple_dns::QTYPE::TYPE(simple_dns::TYPE::TXT),
            simple_dns::QCLASS::CLASS(simple_dns::CLASS::IN),
            false,
        ));
        // A socket per query: a flow per query, as a tunnel's resolver
        // lookups are.
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.send_to(&q.build_bytes_vec().unwrap(), "127.0.0.1:53")
            .unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    let sent = Instant::now();
    let a = wait_for_alert(
        &alerts_file,
        // Well before the idle timeout, and before the second report (15 s).
        Duration::from_secs(10),
        |x| x["rule"]["name"] == "network.dns_tunnelling",
        "no dns_tunnelling alert before the flows' idle timeout",
        || node.log(),
    );
    let after = sent.elapsed();
    assert_eq!(a["source"]["ip"], "127.0.0.1", "{a}");
    assert!(node.stop(Duration::from_secs(10)).success());
    let log = node.log();
    assert!(
        common::drained_counter(&log, "flow_merge.reported_open") >= 30,
        "raised {after:?} after the last lookup: {log}"
    );
}

/// A process that both has a syscall alert (live eBPF capture) and a network
/// alert (live packet capture, attributed by socket) becomes one incident.
/// Both thresholds are 0 here so every process and flow is "malicious":
/// what is tested is the correlation, not the models.
#[test]
fn a_process_with_syscall_and_network_alerts_is_an_incident() {
    if !root_for_live_capture() {
        return;
    }
    let (listener, node, dir) = lo_node(
        "[syscall_source]\nkind = \"ebpf\"\ncomms = [\"curl\"]\n[syscall_classifier]\nmodel = \"models/syscall\"\nthreshold = 0.0\n",
    );
    let mut node = node;
    let port = listener.local_addr().unwrap().port();
    let alerts_file = dir.path().join("alerts.jsonl");
    // A slow answer keeps curl's socket open while its flow is attributed.
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = [0u8; 1024];
        let _ = std::io::Read::read(&mut s, &mut buf).unwrap();
        std::thread::sleep(Duration::from_millis(500));
        std::io::Write::write_all(&mut s, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            .unwrap();
    });
    let curl = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            &format!("http://127.0.0.1:{port}/"),
        ])
        .spawn()
        .unwrap();
    let pid = curl.id() as u64;
    let out = curl.wait_with_output().unwrap();
    assert!(out.status.success());
    server.join().unwrap();
    // curl's syscall finding opens its process tree (this test, which
    // started it, on top as context); its flow joins the tree, whichever
    // came first.
    let mine = |x: &serde_json::Value| {
        x["module"] == "incident"
            && x["tree"]
                .as_array()
                .is_some_and(|t| t.iter().any(|m| m["pid"].as_u64() == Some(pid)))
    };
    wait_for_alert(
        &alerts_file,
        Duration::from_secs(15),
        mine,
        "no incident",
        || format!("alerts: {:#?}\n{}", alerts(&alerts_file), node.log()),
    );
    // The update with everything joined is written at the latest when the
    // node stops.
    assert!(node.stop(Duration::from_secs(10)).success());
    let incident = alerts(&alerts_file).into_iter().rfind(mine).unwrap();
    assert_eq!(incident["entity"], format!("tree:{pid}"), "{incident}");
    assert_eq!(
        incident["tree"][0]["pid"].as_u64(),
        Some(std::process::id() as u64),
        "{incident}"
    );
    let member = incident["tree"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["pid"].as_u64() == Some(pid))
        .unwrap();
    assert!(
        member["executable"].as_str().unwrap().ends_with("curl"),
        "{incident}"
    );
    let modules: Vec<&str> = member["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["module"].as_str().unwrap())
        .collect();
    assert!(
        modules.contains(&"syscall") && modules.contains(&"network"),
        "both kinds of finding joined: {incident}"
    );
    assert!(incident["window"]["calls"].is_array(), "{incident}");
    assert!(incident["destination"]["port"].is_number(), "{incident}");
    // No separate syscall alert for curl: its finding is in the tree.
    assert!(
        !alerts(&alerts_file)
            .iter()
            .any(|a| a["module"] == "syscall" && a["process"]["pid"].as_u64() == Some(pid)),
        "curl's finding went out alone"
    );
}

fn response_toml(alerts: &Path, dry_run: bool) -> String {
    node_toml(alerts)
        + &format!(
            r#"
[alert.response]
enabled = true
dry_run = {dry_run}
block_for = "3s"
[[alert.response.rules]]
module = "network"
min_severity = "medium"
action = "block"
# A SYN scan's source could be forged: blocked only because this rule says so.
spoofable = true
"#
        )
}

/// Whether the attacker can fetch the victim's front page.
fn attacker_reaches_victim(lab: &Lab, victim: &str) -> bool {
    lab.cmd(&[
        "exec",
        "attacker",
        "curl",
        "-s",
        "-o",
        "/dev/null",
        "--max-time",
        "1",
        &format!("http://{victim}:8000/"),
    ])
    .status()
    .unwrap()
    .success()
}

/// Response, opt-in: a scanning attacker is blocked by an nftables rule in
/// the victim's namespace (the rule allows sources that SYNs alone could
/// forge: `spoofable = true`), which the kernel removes after `block_for`;
/// in dry run the outcome is reported and nothing changes.
#[test]
fn a_scanner_is_blocked_for_a_while_and_dry_run_changes_nothing() {
    if !lab_ready() {
        return;
    }
    let lab = Lab::new("dtresp", 216);
    lab.run(&["up"]);
    let (victim, attacker) = (lab.addr("victim"), lab.addr("attacker"));
    let ns = lab.ns("victim");
    for dry_run in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let alerts_file = dir.path().join("alerts.jsonl");
        let mut node = Daisi::spawn_with(
            &["ip", "netns", "exec", &ns],
            &response_toml(&alerts_file, dry_run),
            &[],
        );
        node.wait_running();
        assert!(attacker_reaches_victim(&lab, &victim));
        let ok = lab
            .cmd(&[
                "exec", "attacker", "timeout", "60", "nmap", "-n", "-Pn", "-sS", "-T4", "-p",
                "1-100", &victim,
            ])
            .output()
            .unwrap();
        assert!(ok.status.success());
        let response = wait_for_alert(
            &alerts_file,
            Duration::from_secs(10),
            |a| a["module"] == "response",
            "no response",
            || node.log(),
        );
        assert_eq!(response["event"]["kind"], "event", "{response}");
        let what = response["response"]["detail"].as_str().unwrap().to_string();
        assert!(what.contains(&attacker), "{response}");
        let table = Command::new("ip")
            .args(["netns", "exec", &ns, "nft", "list", "tables"])
            .output()
            .unwrap();
        let tables = String::from_utf8_lossy(&table.stdout).to_string();
        if dry_run {
            assert!(what.starts_with("dry run: would drop"), "{what}");
            assert!(
                !tables.contains("daisi"),
                "dry run changed nftables: {tables}"
            );
            assert!(attacker_reaches_victim(&lab, &victim));
        } else {
            assert!(what.starts_with("dropping traffic from"), "{what}");
            assert!(
                !attacker_reaches_victim(&lab, &victim),
                "the block does not hold"
            );
            // The client is not blocked.
            assert!(lab
                .cmd(&[
                    "exec",
                    "client",
                    "curl",
                    "-s",
                    "-o",
                    "/dev/null",
                    "--max-time",
                    "1",
                    &format!("http://{victim}:8000/")
                ])
                .status()
                .unwrap()
                .success());
            // block_for = 3 s: then the kernel lifts it.
            let until = Instant::now() + Duration::from_secs(10);
            while !attacker_reaches_victim(&lab, &victim) {
                assert!(Instant::now() < until, "the block did not expire");
                std::thread::sleep(Duration::from_millis(250));
            }
        }
        assert!(node.stop(Duration::from_secs(10)).success());
        // Attempts dropped while the block held do not renew it.
        let responses = std::fs::read_to_string(&alerts_file)
            .unwrap()
            .lines()
            .filter(|l| l.contains("\"module\":\"response\""))
            .count();
        assert_eq!(responses, 1, "{}", node.log());
    }
}

/// Response, opt-in: a watched process with a syscall alert is stopped
/// (SIGSTOP); the same process allowlisted by executable is left alone.
/// The threshold is forced to 0: what is tested is the response.
#[test]
fn a_process_with_a_syscall_alert_is_stopped_unless_allowlisted() {
    if !root_for_live_capture() {
        return;
    }
    let dd = std::fs::canonicalize("/bin/dd").unwrap();
    for allowlisted in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let alerts_file = dir.path().join("alerts.jsonl");
        let allow = if allowlisted {
            format!("allow_exes = [\"{}\"]", dd.display())
        } else {
            String::new()
        };
        let toml = format!(
            r#"
[node]
role = "both"
[syscall_source]
kind = "ebpf"
comms = ["dd"]
[syscall_classifier]
# Live processes are judged by an explicitly configured model only.
model = "models/syscall"
threshold = 0.0
[alert]
console = false
horizon = 200
jsonl = "{}"
[alert.response]
enabled = true
dry_run = false
{allow}
[[alert.response.rules]]
module = "syscall"
min_severity = "medium"
action = "stop"
"#,
            alerts_file.display()
        );
        let mut node = Daisi::spawn(&toml, &[]);
        node.wait_running();
        let mut child = Command::new(&dd)
            .args(["if=/dev/zero", "of=/dev/null", "bs=1", "count=200000000"])
            .spawn()
            .unwrap();
        let pid = child.id();
        let response = wait_for_alert(
            &alerts_file,
            Duration::from_secs(20),
            |a| a["module"] == "response" && a["process"]["pid"].as_u64() == Some(pid as u64),
            "no response",
            || node.log(),
        );
        let what = response["response"]["detail"].as_str().unwrap().to_string();
        if !allowlisted {
            common::wait_stopped(pid);
        }
        let state = common::process_state(pid);
        if allowlisted {
            assert!(what.contains("allowlisted; left alone"), "{what}");
            assert_ne!(state, "T", "an allowlisted process was stopped");
        } else {
            assert!(
                what.starts_with(&format!("stopped process {pid}")),
                "{what}"
            );
            assert_eq!(state, "T", "{what}");
        }
        let _ = child.kill();
        let _ = child.wait();
        assert!(node.stop(Duration::from_secs(10)).success());
    }
}

/// Application metadata from real tools' traffic (a fresh lab run): dirb's
/// web probing is HTTP requests answered 404, hydra's SSH brute force names
/// both SSH programs; the CSV carries them in ECS-named columns.
#[test]
fn lab_captures_carry_application_metadata() {
    let Some(lab) = fresh_lab() else { return };
    let dir = tempfile::tempdir().unwrap();
    let rows = |pcap: &str| -> Vec<std::collections::HashMap<String, String>> {
        let csv = dir.path().join(format!("{pcap}.csv"));
        daisi::commands::flows::flows(&daisi::commands::flows::FlowsArgs {
            pcap: lab.join(pcap),
            csv: Some(csv.clone()),
            idle_timeout: Duration::from_secs(30),
            active_timeout: Duration::from_secs(1800),
            max_flows: 1_000_000,
            app_bytes: 4096,
        })
        .unwrap();
        let mut rdr = csv::Reader::from_path(&csv).unwrap();
        let h = rdr.headers().unwrap().clone();
        rdr.records()
            .map(|r| {
                let r = r.unwrap();
                h.iter()
                    .zip(r.iter())
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect()
            })
            .collect()
    };
    let web = rows("web_probe.pcap");
    let http: Vec<_> = web
        .iter()
        .filter(|r| r["http.request.method"] == "GET")
        .collect();
    assert!(!http.is_empty(), "no HTTP metadata in dirb's flows");
    let not_found = http
        .iter()
        .filter(|r| r["http.response.status_code"] == "404")
        .count();
    assert!(
        not_found * 2 > http.len(),
        "{not_found} of {} HTTP flows answered 404",
        http.len()
    );
    // dirb presents itself as an old browser.
    assert!(
        http.iter()
            .any(|r| r["user_agent.original"].starts_with("Mozilla/4.0 (compatible; MSIE")),
        "{:?}",
        http.first()
    );
    assert!(http.iter().all(|r| r["url.original"].starts_with('/')));
    let requests: u64 = http
        .iter()
        .map(|r| r["daisi.http.requests"].parse::<u64>().unwrap())
        .sum();
    assert!(requests >= http.len() as u64);
    let ssh = rows("hydra_ssh.pcap");
    let banners: Vec<_> = ssh
        .iter()
        .filter(|r| !r["daisi.ssh.server"].is_empty())
        .collect();
    assert!(!banners.is_empty(), "no SSH banners in hydra's flows");
    assert!(
        banners
            .iter()
            .all(|r| r["daisi.ssh.server"].starts_with("SSH-2.0-OpenSSH")),
        "{:?}",
        banners[0]
    );
    assert!(banners
        .iter()
        .any(|r| r["daisi.ssh.client"].starts_with("SSH-2.0-")));
}

/// Per-source rules on a fresh lab run (real tools): the scans, the SYN
/// flood, dirb's web probing, slowhttptest's slow POSTs, hydra's login form
/// and SSH guessing (failed and successful) and DNS tunnelling-like lookups
/// are raised for the attacker; the varied benign traffic raises nothing.
#[test]
fn per_source_rules_catch_what_single_flows_miss() {
    let Some(lab) = fresh_lab() else { return };
    let rows = daisi::commands::network::per_source(
        &lab.join("labels.csv"),
        &[],
        &daisi::commands::network::FlowOptions {
            idle_timeout: Duration::from_secs(30),
            active_timeout: Duration::from_secs(1800),
        },
    )
    .unwrap();
    daisi::commands::network::print_per_source(&rows);
    let patterns = |kind: &str| {
        rows.iter()
            .find(|r| r.kind == kind)
            .unwrap_or_else(|| panic!("no {kind} capture"))
            .attacker_patterns
            .clone()
    };
    for (kind, pattern) in [
        ("nmap_syn", "port_scan"),
        ("nmap_connect", "port_scan"),
        ("nmap_udp", "port_scan"),
        ("hping_syn", "connection_flood"),
        ("web_probe", "web_probing"),
        ("slow_http", "slow_connections"),
        ("hydra_http", "login_guessing"),
        ("hydra_ssh", "ssh_guessing"),
        ("ssh_success", "ssh_guessing"),
        ("dns_tunnel", "dns_tunnelling"),
    ] {
        assert!(
            patterns(kind).iter().any(|p| p == pattern),
            "{kind}: {rows:#?}"
        );
    }
    assert!(rows.iter().all(|r| r.false_alarms == 0), "{rows:#?}");
}

/// Leave-one-kind-out on a fresh lab run: every attack kind is scored by a
/// model that never saw it; the scans still look like scans to the flow
/// model, and the per-source rules raise what it misses (issue #12's
/// target: per-source recall ≥ 0.80 over the kinds, each unseen).
#[test]
fn leave_one_kind_out_scores_every_kind_unseen() {
    let Some(lab) = fresh_lab() else { return };
    let dir = tempfile::tempdir().unwrap();
    let args = daisi::commands::network::TrainNetworkArgs {
        labels: lab.join("labels.csv"),
        pcap: vec![],
        holdout: vec![],
        out: dir.path().join("unused"),
        test_share: 0.3,
        target_fpr: 0.005,
        transform: daisi::models::network::Transform::Log1p,
        alpha: 1.0,
        report: Some(dir.path().join("loo.json")),
        leave_one_out: true,
        flows: daisi::commands::network::FlowOptions {
            idle_timeout: Duration::from_secs(30),
            active_timeout: Duration::from_secs(1800),
        },
    };
    let out = daisi::commands::network::leave_one_out(&args).unwrap();
    let kinds: Vec<&str> = out.iter().map(|l| l.kind.as_str()).collect();
    for k in [
        "hping_syn",
        "nmap_connect",
        "nmap_syn",
        "nmap_udp",
        "hydra_ssh",
        "web_probe",
        "slow_http",
        "hydra_http",
        "ssh_success",
        "dns_tunnel",
    ] {
        assert!(kinds.contains(&k), "{kinds:?}");
    }
    let caught = out.iter().filter(|l| l.per_source).count();
    assert!(
        caught as f64 >= 0.8 * out.len() as f64,
        "per-source recall {caught} of {}: {out:#?}",
        out.len()
    );
    for l in &out {
        if l.kind.starts_with("nmap") {
            assert!(l.per_flow.recall >= 0.9, "{l:?}");
        }
        // Each kind's benign flows are ~160 (one is 0.6 %): per kind at
        // most 5 %, over all kinds together at most 2 %. These models
        // train on the small run's few thousand flows, DNS tunnelling's
        // single lookups among them, which look like the client's own
        // lookups (the committed model leaves that kind to the per-source
        // rules).
        assert!(l.per_flow.fpr <= 0.05, "{l:?}");
    }
    let (fp, negatives) = out.iter().fold((0, 0), |(fp, n), l| {
        (fp + l.per_flow.fp, n + l.per_flow.fp + l.per_flow.tn)
    });
    assert!(
        fp as f64 <= 0.02 * negatives as f64,
        "{fp} false positives of {negatives} benign flows: {out:#?}"
    );
    let web = out.iter().find(|l| l.kind == "web_probe").unwrap();
    assert!(web.per_source, "{web:?}");
    assert!(!dir.path().join("unused").exists(), "no model written");
    assert!(dir.path().join("loo.json").is_file());
}

/// Logs and flows together, with real tools against real services: the
/// victim's sshd log and web access log are log sources of the node that
/// captures its traffic. Benign traffic raises no log alert; hydra's
/// guessing that gets in raises the guessing and the login after failures,
/// naming the attacker and the lab user, and with the flows' own guessing
/// alert makes one incident by the attacker's address; dirb's probing
/// raises web scanning from the access log.
#[test]
fn an_attacker_in_the_logs_and_on_the_wire_is_one_incident() {
    if !lab_ready() {
        return;
    }
    let lab = Lab::new("dtlogs", 219);
    lab.run(&["up"]);
    let attacker = lab.addr("attacker");
    let state = format!("/run/daisi-lab-{}", lab.prefix);
    let dir = tempfile::tempdir().unwrap();
    let alerts_file = dir.path().join("alerts.jsonl");
    let toml = format!(
        r#"{}
[[log_source]]
name = "sshd"
kind = "file"
paths = ["{state}/sshd.log"]
program = "sshd"
registry_dir = "{reg}"
poll = "100ms"
[[log_source]]
name = "web"
kind = "file"
paths = ["{state}/http.log"]
registry_dir = "{reg}"
poll = "100ms"
"#,
        node_toml(&alerts_file),
        reg = dir.path().join("registry").display()
    );
    let ns = lab.ns("victim");
    let mut node = Daisi::spawn_with(&["ip", "netns", "exec", &ns], &toml, &[]);
    node.wait_running();

    // Benign: page views, a login, SSH logins with a key.
    lab.run(&["benign", "3"]);
    std::thread::sleep(Duration::from_secs(2));
    let logs = |a: &serde_json::Value| a["module"] == "log";
    let benign: Vec<_> = alerts(&alerts_file).into_iter().filter(logs).collect();
    assert!(
        benign.is_empty(),
        "benign traffic raised log alerts: {benign:#?}"
    );

    lab.run(&["attack", "ssh_success", "--scale", "small"]);
    let context = || {
        format!(
            "{}\nsshd.log:\n{}\nalerts:\n{}",
            node.log(),
            std::fs::read_to_string(format!("{state}/sshd.log")).unwrap_or_default(),
            std::fs::read_to_string(&alerts_file).unwrap_or_default()
        )
    };
    let from_attacker = |a: &serde_json::Value| a["source"]["ip"] == attacker.as_str();
    let wait = |rule: &str| {
        common::wait_for_alert(
            &alerts_file,
            Duration::from_secs(20),
            |a| a["rule"]["name"] == rule && from_attacker(a),
            &format!("no {rule} alert for the attacker {attacker}"),
            context,
        )
    };
    let brute = wait("log.ssh_brute_force");
    let inside = wait("log.login_after_failures");
    assert_eq!(inside["severity"], "critical", "{inside}");
    assert_eq!(
        inside["user"]["name"],
        format!("{}-u", lab.prefix),
        "{inside}"
    );
    assert_eq!(inside["log"]["file"], format!("{state}/sshd.log"));
    // hydra guesses the lab user's password; sshd's own lines, CRLF gone.
    let first = format!("Failed password for {}-u from {attacker} port ", lab.prefix);
    let lines = brute["log"]["lines"].as_array().unwrap();
    assert!(
        lines
            .iter()
            .all(|l| l.as_str().unwrap().starts_with(&first)
                && l.as_str().unwrap().ends_with(" ssh2")),
        "{brute}"
    );
    let incident = common::wait_for_alert(
        &alerts_file,
        Duration::from_secs(20),
        |a| a["entity"] == format!("source:{attacker}"),
        "no incident joining the attacker's flows and log lines",
        context,
    );
    assert_eq!(incident["module"], "incident");
    assert_eq!(
        incident["related"].as_array().unwrap().len(),
        2,
        "{incident}"
    );

    lab.run(&["attack", "web_probe", "--scale", "small"]);
    let scan = wait("log.web_scanning");
    assert_eq!(scan["log"]["file"], format!("{state}/http.log"));
    eprintln!(
        "{}\n{}\n{}",
        incident["summary"], inside["summary"], scan["summary"]
    );

    // Every log alert is about the attacker.
    let stray: Vec<_> = alerts(&alerts_file)
        .into_iter()
        .filter(|a| logs(a) && !from_attacker(a))
        .collect();
    assert!(stray.is_empty(), "log alerts about others: {stray:#?}");
    assert!(node.stop(Duration::from_secs(10)).success());
    let log = node.log();
    assert!(
        common::drained_counter(&log, "log_detector.lines") > 50,
        "{log}"
    );
}

/// A SYN flood forged "from" the NATS server (the client's address here)
/// with `block` on: the flood is detected and named, its block refused
/// (the source may be forged; the address is infrastructure), nothing is
/// added to the firewall against it and the client's traffic still gets
/// through; the attacker's scan is refused as forgeable too, and its real
/// web probing after it is blocked.
#[test]
fn a_flood_forged_from_the_nats_server_blocks_nothing_and_a_real_attacker_is_blocked() {
    if !lab_ready() {
        return;
    }
    let lab = Lab::new("dtspf", 215);
    lab.run(&["up"]);
    let (victim, attacker, client) = (lab.addr("victim"), lab.addr("attacker"), lab.addr("client"));
    let dir = tempfile::tempdir().unwrap();
    let alerts_file = dir.path().join("alerts.jsonl");
    let toml = format!(
        "{}[nats]\nservers = [\"nats://{client}:4222\"]\n\
         [alert.response]\nenabled = true\ndry_run = false\nblock_for = \"2m\"\n\
         rules = [{{ module = \"network\", min_severity = \"low\", action = \"block\" }}]\n",
        node_toml(&alerts_file)
    );
    let ns = lab.ns("victim");
    let mut node = Daisi::spawn_with(&["ip", "netns", "exec", &ns], &toml, &[]);
    node.wait_running();
    let ok = lab
        .cmd(&[
            "exec", "attacker", "timeout", "60", "hping3", "-q", "-S", "-p", "8000", "-i", "u200",
            "-c", "4000", "--spoof", &client, &victim,
        ])
        .output()
        .unwrap();
    assert!(
        ok.status.success() || ok.status.code() == Some(1),
        "hping3: {ok:?}"
    );
    let flood = wait_for_alert(
        &alerts_file,
        Duration::from_secs(20),
        |a| a["rule"]["name"] == "network.connection_flood" && a["source"]["ip"] == client.as_str(),
        "no connection_flood alert for the forged source",
        || node.log(),
    );
    eprintln!("{}", flood["summary"]);
    // The first alert about the forged source (a flow, or the flood)
    // asked for the block: refused, once.
    let refused = wait_for_alert(
        &alerts_file,
        Duration::from_secs(10),
        |a| {
            a["module"] == "response"
                && a["response"]["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains(&client))
        },
        "no response outcome for the forged source",
        || node.log(),
    );
    assert_eq!(refused["response"]["done"], false, "{refused:#}");
    let why = refused["response"]["detail"].as_str().unwrap();
    assert!(
        why.contains("forged") || why.contains("infrastructure"),
        "{why}"
    );
    // The real attacker scans first (SYNs: a forged source could look the
    // same, so that block is refused), then probes the web server, whose
    // handshakes complete: that block is carried out.
    let _ = lab
        .cmd(&[
            "exec", "attacker", "timeout", "60", "nmap", "-n", "-Pn", "-sS", "-T4", "-p", "1-100",
            &victim,
        ])
        .output();
    // A response outcome about `addr`, carried out or not.
    let outcome = |addr: &str, done: bool, missing: &str| {
        wait_for_alert(
            &alerts_file,
            Duration::from_secs(20),
            |a| {
                a["module"] == "response"
                    && a["response"]["done"] == done
                    && a["response"]["detail"]
                        .as_str()
                        .is_some_and(|d| d.contains(addr))
            },
            missing,
            || node.log(),
        )
    };
    outcome(
        &attacker,
        false,
        "the attacker's scan was not refused as forgeable",
    );
    let _ = lab.cmd(&["attack", "web_probe"]).output();
    let blocked = outcome(&attacker, true, "the attacker was not blocked");
    eprintln!("{}", blocked["response"]["detail"]);
    let rules = Command::new("ip")
        .args([
            "netns", "exec", &ns, "nft", "list", "table", "inet", "daisi",
        ])
        .output()
        .unwrap();
    let rules = String::from_utf8_lossy(&rules.stdout);
    assert!(rules.contains(&attacker), "{rules}");
    assert!(!rules.contains(&client), "{rules}");
    assert!(
        !alerts(&alerts_file)
            .iter()
            .any(|a| a["module"] == "response"
                && a["response"]["done"] == true
                && a["response"]["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains(&client))),
        "the forged source was blocked"
    );
    let client_ok = lab
        .cmd(&[
            "exec",
            "client",
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "--max-time",
            "5",
            "-w",
            "%{http_code}",
            &format!("http://{victim}:8000/"),
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&client_ok.stdout),
        "200",
        "the client's traffic"
    );
    assert!(
        !attacker_reaches_victim(&lab, &victim),
        "the blocked attacker got through"
    );
    assert!(
        node.stop(Duration::from_secs(10)).success(),
        "{}",
        node.log()
    );
}
