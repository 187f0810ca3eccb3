//! A busy web service whose first finding is benign, then attack chains
//! through its flaw: each chain must be visible within seconds as an
//! incident of its own (or an update naming its processes), whatever the
//! service's earlier incident and the traffic it goes on serving.
//!
//! The shape a responder meets with the README's quick start: a `both`
//! node watching the service live (eBPF, `pids = [server]`, baselines
//! learning for 20 s, every other key the default), benign requests all
//! the time (`lab/host/victim.py`: its files, the time, pings), one benign
//! request the baseline never saw (`/report`, which runs `uptime`: a
//! finding, the false alarm that used to swallow every later attack),
//! then five distinct post-exploitation chains through `/ping?host=`,
//! five seconds apart. Needs root (eBPF); fails under `DAISI_REQUIRE`.
//! Traffic stays on 127.0.0.1, bounded in count and time.

mod common;

use serde_json::Value;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// One GET to the service on loopback, bounded; the body.
fn get(port: u16, target: &str) -> String {
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = write!(s, "GET {target} HTTP/1.0\r\nHost: localhost\r\n\r\n");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

fn quote(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

struct Victim(Child);

impl Drop for Victim {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Pids of the chain: the injected shell and every process below it
/// that an alert's tree lists.
fn chain_members(a: &Value, shell: u64) -> Vec<u64> {
    let tree = a["tree"].as_array().cloned().unwrap_or_default();
    let mut pids = vec![shell];
    let mut grew = true;
    while grew {
        grew = false;
        for m in &tree {
            let (pid, ppid) = (m["pid"].as_u64(), m["ppid"].as_u64());
            if let (Some(pid), Some(ppid)) = (pid, ppid) {
                if pids.contains(&ppid) && !pids.contains(&pid) {
                    pids.push(pid);
                    grew = true;
                }
            }
        }
    }
    pids
}

/// An alert line about the chain: its tree lists a process of the chain
/// with a finding.
fn names_chain(a: &Value, shell: u64) -> bool {
    let pids = chain_members(a, shell);
    a["tree"].as_array().is_some_and(|t| {
        t.iter().any(|m| {
            m["pid"].as_u64().is_some_and(|p| pids.contains(&p))
                && m["findings"].as_array().is_some_and(|f| !f.is_empty())
        })
    })
}

#[test]
fn every_attack_chain_through_a_busy_service_is_seen_within_seconds() {
    if !common::root("live eBPF capture needs root") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("www");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("index.html"), "<h1>hello</h1>\n").unwrap();
    std::fs::write(root.join("about.html"), "<p>about</p>\n").unwrap();
    let port = common::free_port();
    let victim = Victim(
        Command::new("/usr/bin/python3")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/lab/host/victim.py"))
            .arg(port.to_string())
            .arg(&root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3"),
    );
    let until = Instant::now() + Duration::from_secs(10);
    while get(port, "/").is_empty() {
        assert!(Instant::now() < until, "the service did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    let alerts = dir.path().join("alerts.jsonl");
    // The README's "One host" quick start, with a short learning phase.
    let mut node = common::Daisi::spawn(
        &format!(
            "[node]\nrole = \"both\"\nhost = \"busy\"\n\
             [syscall_source]\nkind = \"ebpf\"\npids = [{}]\n\
             [baseline]\nlearn_for = \"20s\"\n\
             [alert]\nconsole = false\njsonl = \"{}\"\n",
            victim.0.id(),
            alerts.display()
        ),
        &[],
    );
    node.wait_running();

    // Busy the whole time: the service's everyday requests, every 50 ms,
    // until the test ends (at most 10 minutes, 12,000 requests).
    let stop = Arc::new(AtomicBool::new(false));
    let busy = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let pages = [
                "/",
                "/list",
                "/time",
                "/page?name=index.html",
                "/page?name=about.html",
            ];
            let end = Instant::now() + Duration::from_secs(600);
            for i in 0..12_000usize {
                if stop.load(Ordering::Relaxed) || Instant::now() > end {
                    break;
                }
                match i % 6 {
                    5 => get(port, &format!("/ping?host=host{}.example", i % 50)),
                    n => get(port, pages[n]),
                };
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    // Learning (20 s from the first batch), then benign only.
    std::thread::sleep(Duration::from_secs(35));
    let learnt = common::read_alerts(&alerts);
    assert!(
        learnt.is_empty(),
        "the service's everyday work alerted: {learnt:#?}\n{}",
        node.log()
    );

    // A benign request the baseline never saw: a finding (uptime).
    let t0 = now_ns();
    get(port, "/report");
    common::wait_for_alert(
        &alerts,
        Duration::from_secs(10),
        |a| {
            a["tree"]
                .as_array()
                .is_some_and(|t| t.iter().any(|m| m["name"] == "uptime"))
        },
        "no finding for the service's new benign child",
        || node.log(),
    );
    let benign_incident = common::read_alerts(&alerts)
        .into_iter()
        .find(|a| {
            a["tree"]
                .as_array()
                .is_some_and(|t| t.iter().any(|m| m["name"] == "uptime"))
        })
        .unwrap();
    assert!(benign_incident["ts_ns"].as_u64().unwrap() >= t0);

    // Five post-exploitation chains through the flaw, five seconds apart.
    let dropped = dir.path().join(".cache-x");
    let chains = [
        "cat /etc/shadow > /dev/null".to_string(),
        "id; uname -a".to_string(),
        format!("cp /bin/true {0}; {0}", dropped.display()),
        "/usr/bin/python3 -c 'import os; print(os.getuid())'".to_string(),
        "ls -la /root > /dev/null".to_string(),
    ];
    let mut seen = Vec::new();
    for (i, payload) in chains.iter().enumerate() {
        let start = now_ns();
        let body = get(
            port,
            &format!(
                "/ping?host={}",
                quote(&format!("x; echo CHAIN $$; {payload}"))
            ),
        );
        let shell: u64 = body
            .split_whitespace()
            .skip_while(|w| *w != "CHAIN")
            .nth(1)
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("chain {i}: no shell pid in {body:?}"));
        let a = common::wait_for_alert(
            &alerts,
            Duration::from_secs(8),
            |a| names_chain(a, shell),
            &format!("chain {i} ({payload}) raised nothing"),
            || format!("{:#?}\n{}", common::read_alerts(&alerts), node.log()),
        );
        let after = a["ts_ns"].as_u64().unwrap().saturating_sub(start) as f64 / 1e9;
        println!(
            "chain {i} ({payload}): {} {} after {after:.2} s",
            a["module"], a["entity"]
        );
        assert!(
            after <= 5.0,
            "chain {i} seen {after:.2} s after it started: {a:#}"
        );
        seen.push((shell, payload.clone()));
        std::thread::sleep(Duration::from_secs(5));
    }
    stop.store(true, Ordering::Relaxed);
    busy.join().unwrap();
    assert!(
        node.stop(Duration::from_secs(20)).success(),
        "{}",
        node.log()
    );

    let all = common::read_alerts(&alerts);
    for (shell, payload) in &seen {
        let lines: Vec<&Value> = all.iter().filter(|a| names_chain(a, *shell)).collect();
        assert!(
            lines.len() <= 3,
            "{payload}: {} alert lines: {lines:#?}",
            lines.len()
        );
        for a in lines {
            // The chain's incident holds the chain and its service, not
            // the service's benign children (or the earlier chains).
            let chain = chain_members(a, *shell);
            for m in a["tree"].as_array().unwrap() {
                let pid = m["pid"].as_u64().unwrap();
                let found = m["findings"].as_array().is_some_and(|f| !f.is_empty());
                assert!(
                    !found || chain.contains(&pid),
                    "{payload}: a process of another chain or a benign child in its incident: {a:#}"
                );
            }
        }
    }
    write_out(dir.path(), &all);
}

/// Keeps the alert lines where a failing run can be read (`target/`).
fn write_out(_dir: &Path, all: &[Value]) {
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("busy_service_alerts.jsonl");
    let text: Vec<String> = all.iter().map(|a| a.to_string()).collect();
    let _ = std::fs::write(out, text.join("\n"));
}
