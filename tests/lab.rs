//! The traffic lab against the real thing: network namespaces of our own
//! (`lab/lab.sh`), real services and real attack tools, live libpcap
//! capture by `daisi run` inside the victim's namespace, the committed
//! network model. Needs root and the lab's Debian packages (installed by
//! `scripts/setup.sh`); skips with a message otherwise.
//!
//! All traffic stays inside namespaces these tests create (private
//! addresses, no default route); every tool is bounded in count and time.

mod common;

use common::Daisi;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const LAB: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/lab/lab.sh");

fn lab_ready() -> bool {
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: the traffic lab needs root (network namespaces)");
        return false;
    }
    for t in ["nmap", "hping3", "hydra", "dirb", "tcpdump", "socat"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {t}")])
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            eprintln!("skipped: {t} is not installed (run scripts/setup.sh)");
            return false;
        }
    }
    true
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

fn alerts(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
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

fn wait_running(d: &Daisi) {
    let until = Instant::now() + Duration::from_secs(20);
    while !d.log().contains("node running") {
        assert!(Instant::now() < until, "node did not start:\n{}", d.log());
        std::thread::sleep(Duration::from_millis(50));
    }
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
    wait_running(&node);

    // Benign: page views, downloads, echo exchanges from the client.
    let script = format!(
        "for i in $(seq 1 40); do curl -s -o /dev/null --max-time 5 http://{victim}:8000/docs/page$(( (i % 20) + 1 )).html; \
         [ $((i % 10)) -eq 0 ] && curl -s -o /dev/null --max-time 10 http://{victim}:8000/download.bin; \
         [ $((i % 4)) -eq 0 ] && printf 'hi\\n' | socat -t 1 - TCP:{victim}:7 >/dev/null; sleep 0.05; done"
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
        if !hits.is_empty() || Instant::now() > until {
            break hits;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        !found.is_empty(),
        "no alert for the attacker {attacker} within 15 s of the scan; log:\n{}",
        node.log()
    );
    for a in &found {
        assert_eq!(a["module"], "network");
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

/// The committed model on a freshly generated lab run (new captures, never
/// seen in training): the figures the README reports, recomputed.
#[test]
fn committed_model_on_a_fresh_lab_run() {
    if !lab_ready() {
        return;
    }
    let _lab = Lab::new("dteval", 215);
    let dir = tempfile::tempdir().unwrap();
    let out: PathBuf = dir.path().join("lab");
    _lab.run(&["generate", out.to_str().unwrap(), "--scale", "small"]);
    let report = dir.path().join("report.json");
    let status = Command::new(common::daisi_bin())
        .args(["eval", "network", "--labels"])
        .arg(out.join("labels.csv"))
        .arg("--report")
        .arg(&report)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .unwrap();
    assert!(status.success());
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    eprintln!("{}", serde_json::to_string_pretty(&r).unwrap());
    let seen = &r["seen"];
    assert!(seen["f1"].as_f64().unwrap() >= 0.95, "seen kinds: {seen}");
    assert!(seen["fpr"].as_f64().unwrap() <= 0.01, "seen kinds: {seen}");
    let held = &r["held_out"];
    assert!(
        held["recall"].as_f64().unwrap() >= 0.80,
        "held-out kinds: {held}"
    );
}
