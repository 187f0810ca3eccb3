//! The logs module end to end: real `daisi` processes follow real files
//! (renamed and copytruncated under them, stopped and started again) and
//! real journal files, ship the lines over a real `nats-server`, and the
//! compute side turns them into alerts.

mod common;

use common::{Daisi, NatsServer, Prereq};
use daisi::messages::{Envelope, Payload};
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn append(path: &Path, lines: impl IntoIterator<Item = String>) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    for l in lines {
        writeln!(f, "{l}").unwrap();
    }
}

/// Every log line in the stream, in stream order: (source, text).
fn stream_lines(nats: &NatsServer) -> Vec<(String, String)> {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let client = async_nats::connect(nats.url()).await.unwrap();
        let js = async_nats::jetstream::new(client);
        let mut stream = js.get_stream("DAISI_DATA").await.unwrap();
        let n = stream.info().await.unwrap().state.last_sequence;
        let mut out = Vec::new();
        for seq in 1..=n {
            let Ok(m) = stream.get_raw_message(seq).await else {
                continue;
            };
            if !m.subject.starts_with("daisi.v1.log.") {
                continue;
            }
            let env = Envelope::decode(&m.payload, 1 << 20).unwrap();
            let Payload::LogBatch(b) = env.payload else {
                panic!("{}: not a log batch", m.subject)
            };
            // The stream appends the partition token.
            assert!(
                m.subject.starts_with("daisi.v1.log.loghost.0."),
                "{}",
                m.subject
            );
            out.extend(b.lines.into_iter().map(|l| (l.source, l.text)));
        }
        out
    })
}

fn wait_lines(nats: &NatsServer, n: usize, node: &Daisi) -> Vec<(String, String)> {
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let got = stream_lines(nats);
        if got.len() >= n {
            return got;
        }
        assert!(
            Instant::now() < until,
            "{} of {n} lines arrived:\n{}",
            got.len(),
            node.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn collector(nats: &NatsServer, sources: &str) -> String {
    format!(
        r#"
[node]
role = "collector"
host = "loghost"
shutdown_deadline = "10s"
[nats]
servers = ["{}"]
{sources}
"#,
        nats.url()
    )
}

fn numbered(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("app[7]: line {i}")).collect()
}

#[test]
fn file_lines_arrive_once_in_order_across_rotation_and_restarts() {
    let nats = NatsServer::start(&[]);
    // A compute node (or an operator) creates the stream; here, the test.
    nats.create_data_stream();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let toml = collector(
        &nats,
        &format!(
            r#"
[[log_source]]
name = "app"
kind = "file"
paths = ["{}"]
from_start = true
registry_dir = "{}"
poll = "50ms"
max_line = 64
"#,
            log.display(),
            dir.path().join("registry").display()
        ),
    );
    // Written before the node ever ran: read from the start.
    append(&log, numbered(0..100));
    let mut node = Daisi::spawn(&toml, &[]);
    node.wait_running();
    wait_lines(&nats, 100, &node);

    // Rotation by rename: the writer finishes the old file, then opens a
    // new one at the old name.
    std::fs::rename(&log, dir.path().join("app.log.1")).unwrap();
    append(&dir.path().join("app.log.1"), numbered(100..150));
    append(&log, numbered(150..200));
    wait_lines(&nats, 200, &node);

    // copytruncate: copied away, emptied in place, written again.
    std::fs::copy(&log, dir.path().join("app.log.2")).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&log)
        .unwrap();
    append(&log, numbered(200..300));
    // A line longer than max_line is cut, not lost.
    append(&log, [format!("app[7]: long {}", "x".repeat(200))]);
    wait_lines(&nats, 301, &node);

    // A graceful stop, lines written while the node is away, a new start.
    assert!(node.stop(Duration::from_secs(15)).success());
    let first = node.log();
    assert_eq!(common::drained_counter(&first, "log_source.rotations"), 1);
    assert_eq!(common::drained_counter(&first, "log_source.truncations"), 1);
    assert_eq!(common::drained_counter(&first, "log_source.cut_lines"), 1);
    append(&log, numbered(300..400));
    let mut node = Daisi::spawn(&toml, &[]);
    node.wait_running();
    append(&log, numbered(400..450));
    wait_lines(&nats, 451, &node);
    std::thread::sleep(Duration::from_millis(500));
    assert!(node.stop(Duration::from_secs(15)).success());

    let got = stream_lines(&nats);
    let texts: Vec<&str> = got.iter().map(|(_, t)| t.as_str()).collect();
    // The renamed file and the new one are read side by side: each file's
    // lines in its order, every line once.
    let long = format!("app[7]: long {}", "x".repeat(64 - 13));
    let old_file = numbered(0..150);
    let mut new_file = numbered(150..300);
    new_file.push(long);
    new_file.extend(numbered(300..450));
    for (name, file) in [("app.log.1", &old_file), ("app.log", &new_file)] {
        let seen: Vec<&str> = texts
            .iter()
            .copied()
            .filter(|t| file.iter().any(|l| l == t))
            .collect();
        let want: Vec<&str> = file.iter().map(String::as_str).collect();
        assert!(
            seen == want,
            "{name}: {} lines arrived for {} written; first difference at {:?}",
            seen.len(),
            want.len(),
            seen.iter().zip(&want).position(|(a, b)| a != b)
        );
    }
    assert_eq!(
        texts.len(),
        old_file.len() + new_file.len(),
        "lines repeated or foreign"
    );
    assert!(got.iter().all(|(s, _)| s == "app"));
}

/// A both-role node that reads only logs, writing alerts to `jsonl`.
fn log_node(sources: &str, jsonl: &Path) -> String {
    format!(
        r#"
[node]
role = "both"
host = "loghost"
shutdown_deadline = "10s"
[alert]
console = false
jsonl = "{}"
{sources}
"#,
        jsonl.display()
    )
}

fn rule_of(a: &serde_json::Value) -> &str {
    a["rule"]["name"].as_str().unwrap_or("")
}

/// The first alert of `rule` in `jsonl`, within `secs` (else the node's
/// log and the alerts so far).
fn wait_rule(jsonl: &Path, node: &Daisi, rule: &str, secs: u64) -> serde_json::Value {
    common::wait_for_alert(
        jsonl,
        Duration::from_secs(secs),
        |a| rule_of(a) == rule,
        &format!("no {rule} alert"),
        || {
            format!(
                "{}\nalerts:\n{}",
                node.log(),
                std::fs::read_to_string(jsonl).unwrap_or_default()
            )
        },
    )
}

#[test]
fn auth_and_access_logs_raise_named_alerts_with_their_lines() {
    let dir = tempfile::tempdir().unwrap();
    let (auth, access) = (dir.path().join("auth.log"), dir.path().join("access.log"));
    let jsonl = dir.path().join("alerts.jsonl");
    let toml = log_node(
        &format!(
            r#"
[[log_source]]
name = "auth"
kind = "file"
paths = ["{}"]
registry_dir = "{reg}"
poll = "50ms"
[[log_source]]
name = "web"
kind = "file"
paths = ["{}"]
registry_dir = "{reg}"
poll = "50ms"
"#,
            auth.display(),
            access.display(),
            reg = dir.path().join("registry").display()
        ),
        &jsonl,
    );
    // History before the node starts is not read (from_start = false).
    append(
        &auth,
        (0..12).map(|i| format!("Jan  1 00:00:{i:02} old sshd[9]: Failed password for root from 10.66.0.99 port 1 ssh2")),
    );
    std::fs::write(&access, "").unwrap();
    let node = Daisi::spawn(&toml, &[]);
    node.wait_running();
    std::thread::sleep(Duration::from_millis(300));

    let now = chrono::Local::now();
    let stamp = now.format("%b %e %H:%M:%S");
    // An SSH password guesser that gets in, and an ordinary admin.
    append(&auth, (0..12).map(|i| format!(
        "{stamp} victim sshd[{}]: Failed password for invalid user admin{i} from 10.66.0.7 port {} ssh2",
        100 + i, 40000 + i
    )));
    append(&auth, [
        format!("{stamp} victim sshd[200]: Accepted password for alice from 10.66.0.7 port 41000 ssh2"),
        format!("{stamp} victim sshd[201]: Accepted publickey for bob from 10.66.0.9 port 41001 ssh2"),
        format!("{stamp} victim sudo:      bob : TTY=pts/0 ; PWD=/home/bob ; USER=root ; COMMAND=/usr/bin/apt update"),
    ]);
    // A web scanner, and a reader of ordinary pages.
    let web = now.format("%d/%b/%Y:%H:%M:%S %z");
    append(
        &access,
        (0..30).map(|i| {
            format!(
                r#"10.66.0.8 - - [{web}] "GET /admin{i}.php HTTP/1.1" 404 153 "-" "gobuster/3.6""#
            )
        }),
    );
    append(
        &access,
        (0..10).map(|i| {
            format!(
                r#"10.66.0.9 - - [{web}] "GET /page{i}.html HTTP/1.1" 200 5120 "-" "Mozilla/5.0""#
            )
        }),
    );
    let brute = wait_rule(&jsonl, &node, "log.ssh_brute_force", 10);
    let inside = wait_rule(&jsonl, &node, "log.login_after_failures", 10);
    let scan = wait_rule(&jsonl, &node, "log.web_scanning", 10);

    assert_eq!(brute["source"]["ip"], "10.66.0.7", "{brute}");
    assert_eq!(brute["module"], "log");
    assert_eq!(brute["host"], "loghost");
    assert_eq!(brute["log"]["file"].as_str(), Some(auth.to_str().unwrap()));
    let lines = brute["log"]["lines"].as_array().unwrap();
    assert!(!lines.is_empty() && lines.len() <= 8, "{brute}");
    assert!(
        lines
            .iter()
            .all(|l| l.as_str().unwrap().contains("Failed password")),
        "{brute}"
    );
    assert!(
        brute["summary"].as_str().unwrap().contains("10.66.0.7"),
        "{brute}"
    );

    assert_eq!(inside["severity"], "critical", "{inside}");
    assert_eq!(inside["user"]["name"], "alice", "{inside}");
    assert_eq!(inside["source"]["ip"], "10.66.0.7");
    assert!(
        brute.get("user").is_none(),
        "many users tried, none named: {brute}"
    );
    assert!(
        inside["log"]["lines"]
            .to_string()
            .contains("Accepted password for alice"),
        "{inside}"
    );

    assert_eq!(scan["source"]["ip"], "10.66.0.8", "{scan}");
    assert!(
        scan["log"]["lines"].to_string().contains("/admin"),
        "{scan}"
    );

    // Nothing about the admin, the page reader or the old history.
    std::thread::sleep(Duration::from_secs(1));
    let all = common::read_alerts(&jsonl);
    for a in &all {
        let s = a.to_string();
        assert!(
            !s.contains("10.66.0.9") && !s.contains("10.66.0.99") && !s.contains("\"bob\""),
            "cried wolf: {a}"
        );
    }
}

/// The journal tools `scripts/setup.sh` installs.
const JOURNAL_REMOTE: &str = "/lib/systemd/systemd-journal-remote";

/// Writes `entries` (program, pid, message) as a journal file at `path`,
/// through systemd-journal-remote's export-format import.
fn write_journal(path: &Path, entries: &[(&str, u32, String)]) {
    let boot = "0123456789abcdef0123456789abcdef";
    let now_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros();
    let mut export = String::new();
    for (i, (prog, pid, msg)) in entries.iter().enumerate() {
        let t = now_us + i as u128;
        export.push_str(&format!(
            "__REALTIME_TIMESTAMP={t}\n__MONOTONIC_TIMESTAMP={t}\n_BOOT_ID={boot}\n\
             _HOSTNAME=victim\nSYSLOG_IDENTIFIER={prog}\n_PID={pid}\nPRIORITY=6\nMESSAGE={msg}\n\n"
        ));
    }
    let src = path.with_extension("export");
    std::fs::write(&src, export).unwrap();
    let out = Command::new(JOURNAL_REMOTE)
        .arg("-o")
        .arg(path)
        .arg(&src)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn journal_entries_are_judged_and_a_restart_reads_only_new_ones() {
    let present = Path::new(JOURNAL_REMOTE).exists()
        && Command::new("journalctl").arg("--version").output().is_ok();
    if !common::require(
        Prereq::Lab,
        present,
        "systemd-journal-remote and journalctl (scripts/setup.sh)",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let journals = dir.path().join("journal");
    std::fs::create_dir(&journals).unwrap();
    let jsonl = dir.path().join("alerts.jsonl");
    let mut first: Vec<(&str, u32, String)> = (0..12)
        .map(|i| {
            (
                "sshd",
                300 + i,
                format!(
                    "Failed password for root from 10.67.0.5 port {} ssh2",
                    50000 + i
                ),
            )
        })
        .collect();
    first.push((
        "sshd",
        400,
        "Accepted password for root from 10.67.0.5 port 50100 ssh2".into(),
    ));
    first.push((
        "cron",
        401,
        "(root) CMD (run-parts /etc/cron.hourly)".into(),
    ));
    write_journal(&journals.join("a.journal"), &first);
    let toml = log_node(
        &format!(
            r#"
[[log_source]]
name = "journal"
kind = "journal"
journal = "{}"
from_start = true
registry_dir = "{}"
"#,
            journals.display(),
            dir.path().join("registry").display()
        ),
        &jsonl,
    );
    let mut node = Daisi::spawn(&toml, &[]);
    node.wait_running();
    let brute = wait_rule(&jsonl, &node, "log.ssh_brute_force", 15);
    wait_rule(&jsonl, &node, "log.login_after_failures", 15);
    assert_eq!(brute["source"]["ip"], "10.67.0.5", "{brute}");
    assert_eq!(brute["process"]["name"], "sshd", "{brute}");
    assert!(brute["process"]["pid"].as_u64().unwrap() >= 300, "{brute}");
    std::thread::sleep(Duration::from_millis(500));
    assert!(node.stop(Duration::from_secs(15)).success());
    let log = node.log();
    assert_eq!(
        common::drained_counter(&log, "log_source.lines"),
        14,
        "{log}"
    );
    assert!(dir.path().join("registry/journal.cursor").exists());

    // More entries while the node is away; the restart reads only those.
    let second: Vec<(&str, u32, String)> = (0..3)
        .map(|i| {
            (
                "sshd",
                500 + i,
                format!(
                    "Failed password for carol from 10.67.0.6 port {} ssh2",
                    51000 + i
                ),
            )
        })
        .collect();
    write_journal(&journals.join("b.journal"), &second);
    let mut node = Daisi::spawn(&toml, &[]);
    node.wait_running();
    std::thread::sleep(Duration::from_secs(3));
    assert!(node.stop(Duration::from_secs(15)).success());
    let log = node.log();
    assert_eq!(
        common::drained_counter(&log, "log_source.lines"),
        3,
        "{log}"
    );
    assert_eq!(
        common::drained_counter(&log, "log_detector.lines"),
        3,
        "{log}"
    );
}

/// A host's auth log of ordinary work, `minutes` long from `start` (a
/// Unix time, s): cron every minute, a deploy key's logins, an admin's
/// sudo runs (package updates, service restarts), logind sessions, a
/// daily logrotate. Deterministic: `seed` picks the varying values.
fn benign_auth_log(start: i64, minutes: i64, seed: u64) -> Vec<String> {
    let mut x = seed;
    let mut rnd = move |n: u64| {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (x >> 33) % n
    };
    let stamp = |t: i64| {
        chrono::DateTime::from_timestamp(t, 0)
            .unwrap()
            .format("%b %e %H:%M:%S")
            .to_string()
    };
    let mut out = Vec::new();
    for m in 0..minutes {
        let t = start + m * 60;
        let pid = 20000 + m * 7;
        out.push(format!("{} web1 CRON[{pid}]: pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)", stamp(t + 1)));
        out.push(format!(
            "{} web1 CRON[{}]: (root) CMD (/usr/local/bin/healthcheck --quiet)",
            stamp(t + 1),
            pid + 1
        ));
        out.push(format!(
            "{} web1 CRON[{pid}]: pam_unix(cron:session): session closed for user root",
            stamp(t + 2)
        ));
        if rnd(4) == 0 {
            let port = 40000 + rnd(20000);
            let ip = format!("10.0.{}.{}", rnd(4), 2 + rnd(200));
            out.push(format!("{} web1 sshd[{}]: Accepted publickey for deploy from {ip} port {port} ssh2: ED25519 SHA256:Zm9vYmFy{}", stamp(t + 10), pid + 2, rnd(1000)));
            out.push(format!("{} web1 sshd[{}]: pam_unix(sshd:session): session opened for user deploy(uid=1001) by (uid=0)", stamp(t + 10), pid + 2));
            out.push(format!(
                "{} web1 systemd-logind[412]: New session {} of user deploy.",
                stamp(t + 10),
                m + 3
            ));
            out.push(format!("{} web1 sshd[{}]: Received disconnect from {ip} port {port}:11: disconnected by user", stamp(t + 40), pid + 2));
            out.push(format!(
                "{} web1 sshd[{}]: pam_unix(sshd:session): session closed for user deploy",
                stamp(t + 40),
                pid + 2
            ));
            out.push(format!("{} web1 systemd-logind[412]: Session {} logged out. Waiting for processes to exit.", stamp(t + 41), m + 3));
        }
        if rnd(10) == 0 {
            let cmd = [
                "/usr/bin/apt-get update",
                "/usr/bin/systemctl restart nginx",
                "/usr/bin/journalctl -u nginx",
                "/usr/bin/apt-get -y upgrade",
            ][rnd(4) as usize];
            out.push(format!("{} web1 sudo[{}]:    admin : TTY=pts/{} ; PWD=/home/admin ; USER=root ; COMMAND={cmd}", stamp(t + 20), pid + 3, rnd(3)));
            out.push(format!("{} web1 sudo[{}]: pam_unix(sudo:session): session opened for user root(uid=0) by admin(uid=1000)", stamp(t + 20), pid + 3));
            out.push(format!(
                "{} web1 sudo[{}]: pam_unix(sudo:session): session closed for user root",
                stamp(t + 25),
                pid + 3
            ));
        }
        if m % 60 == 30 {
            out.push(
                format!(
                    "{} web1 logrotate[{}]: ALERT exited abnormally with [0]",
                    stamp(t + 50),
                    pid + 4
                )
                .replace(
                    "ALERT exited abnormally with [0]",
                    "rotating pattern: /var/log/nginx/*.log  after 1 days (14 rotations)",
                ),
            );
        }
    }
    out
}

/// An attack on the same host at `t`: a password guesser's failures, its
/// login, a refused sudo, a uid-0 account, and a shell line no baseline
/// holds.
fn attack_auth_log(t: i64) -> Vec<String> {
    let stamp = |t: i64| {
        chrono::DateTime::from_timestamp(t, 0)
            .unwrap()
            .format("%b %e %H:%M:%S")
            .to_string()
    };
    let mut out = benign_auth_log(t - 600, 10, 99);
    for i in 0..30 {
        out.push(format!(
            "{} web1 sshd[{}]: Failed password for admin from 203.0.113.9 port {} ssh2",
            stamp(t + i / 3),
            31000 + i,
            50000 + i
        ));
    }
    out.push(format!(
        "{} web1 sshd[31100]: Accepted password for admin from 203.0.113.9 port 50100 ssh2",
        stamp(t + 12)
    ));
    out.push(format!("{} web1 sudo[31200]:    admin : user NOT in sudoers ; TTY=pts/4 ; PWD=/tmp ; USER=root ; COMMAND=/bin/bash", stamp(t + 20)));
    out.push(format!("{} web1 useradd[31300]: new user: name=sysupd, UID=0, GID=0, home=/root, shell=/bin/bash, from=/dev/pts/4", stamp(t + 30)));
    out
}

/// Runs `daisi ARGS`: (it succeeded, stdout, stderr).
fn daisi(args: &[&std::ffi::OsStr]) -> (bool, String, String) {
    let out = Command::new(common::daisi_bin())
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A template model from one hour of a host's ordinary work, then the
/// next hour and an attack judged by `daisi eval logs`: the attack is
/// found (rules and a new template), the ordinary hour raises nothing.
#[test]
fn a_trained_template_model_finds_an_attack_and_stays_quiet_on_ordinary_work() {
    let dir = tempfile::tempdir().unwrap();
    let start = 1_764_547_200; // 2025-12-01 00:00 UTC
    let train = dir.path().join("train-auth.log");
    let benign = dir.path().join("benign-auth.log");
    let attack = dir.path().join("attack-auth.log");
    append(&train, benign_auth_log(start, 60, 1));
    append(&benign, benign_auth_log(start + 3600, 60, 2));
    append(&attack, attack_auth_log(start + 7200));
    let model = dir.path().join("models/templates.bin");
    let (ok, text, err) = daisi(&[
        "train".as_ref(),
        "logs".as_ref(),
        "--out".as_ref(),
        model.as_ref(),
        train.as_ref(),
    ]);
    assert!(ok, "{text}{err}");
    assert!(text.contains("over 60 minutes"), "{text}");
    assert!(text.contains("sequence model: "), "{text}");
    println!("{text}");
    assert!(
        text.contains("CRON: pam_unix(cron:session): session opened"),
        "{text}"
    );

    let attack_arg = format!("brute_force_and_backdoor={}", attack.display());
    let (ok, text, err) = daisi(&[
        "eval".as_ref(),
        "logs".as_ref(),
        "--model".as_ref(),
        model.as_ref(),
        "--benign".as_ref(),
        benign.as_ref(),
        "--attack".as_ref(),
        attack_arg.as_ref(),
    ]);
    assert!(ok, "{text}{err}");
    println!("{text}");
    let row = |kind: &str| {
        text.lines()
            .find(|l| l.starts_with(kind))
            .unwrap_or_else(|| panic!("no {kind} row:\n{text}"))
            .to_string()
    };
    let a = row("brute_force_and_backdoor");
    for rule in [
        "log.ssh_brute_force",
        "log.login_after_failures",
        "log.privilege_escalation",
        "log.account_change",
        "log.new_template",
    ] {
        assert!(a.contains(rule), "{rule} missing: {a}");
    }
    assert!(text.contains("attack kinds detected: 1/1"), "{text}");
    assert!(text.contains("benign: 0 false alarms over 0.98"), "{text}");

    // The order of known lines (the sequence model): an SSH session opened
    // with no login before it (a backdoor that skips sshd's own log) is
    // out of order; the same lines in their order are not.
    let t = start + 7200 + 20 * 60;
    let stamp = |t: i64| {
        chrono::DateTime::from_timestamp(t, 0)
            .unwrap()
            .format("%b %e %H:%M:%S")
            .to_string()
    };
    let mut lines = benign_auth_log(start + 7200, 20, 5);
    lines.push(format!("{} web1 CRON[30000]: pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)", stamp(t + 1)));
    lines.push(format!(
        "{} web1 CRON[30001]: (root) CMD (/usr/local/bin/healthcheck --quiet)",
        stamp(t + 1)
    ));
    lines.push(format!(
        "{} web1 CRON[30000]: pam_unix(cron:session): session closed for user root",
        stamp(t + 2)
    ));
    lines.push(format!("{} web1 sshd[30002]: pam_unix(sshd:session): session opened for user deploy(uid=1001) by (uid=0)", stamp(t + 9)));
    let odd = dir.path().join("odd-order-auth.log");
    append(&odd, lines);
    let odd_arg = format!("session_without_login={}", odd.display());
    let (ok, text, err) = daisi(&[
        "eval".as_ref(),
        "logs".as_ref(),
        "--model".as_ref(),
        model.as_ref(),
        "--attack".as_ref(),
        odd_arg.as_ref(),
    ]);
    assert!(ok, "{text}{err}");
    println!("{text}");
    let a = text
        .lines()
        .find(|l| l.starts_with("session_without_login"))
        .unwrap_or_else(|| panic!("no row:\n{text}"));
    assert!(a.contains("log.template_sequence"), "{text}");
    assert!(
        !a.contains("log.new_template"),
        "only the order is new: {text}"
    );

    // Without the model a host learns first: the attack an hour into
    // nothing is found by the rules alone.
    let early = format!("early={}", attack.display());
    let (_, text, _) = daisi(&[
        "eval".as_ref(),
        "logs".as_ref(),
        "--attack".as_ref(),
        early.as_ref(),
    ]);
    assert!(text.contains("log.account_change"), "{text}");
    assert!(!text.contains("log.new_template"), "{text}");

    // A live node with the model: a shape it never saw is an alert with
    // its line.
    let live = dir.path().join("live-auth.log");
    std::fs::write(&live, "").unwrap();
    let jsonl = dir.path().join("alerts.jsonl");
    let sources = format!(
        r#"
[[log_source]]
name = "auth"
kind = "file"
paths = ["{}"]
registry_dir = "{}"
poll = "50ms"
[log_detector.templates]
model = "{}"
learn_for = "0s"
learn_lines = 0
"#,
        live.display(),
        dir.path().join("registry").display(),
        model.display()
    );
    let mut node = Daisi::spawn(&log_node(&sources, &jsonl), &[]);
    node.wait_running();
    let now = chrono::Utc::now().timestamp();
    append(&live, benign_auth_log(now - 120, 3, 3));
    let stamp = chrono::Utc::now().format("%b %e %H:%M:%S");
    append(
        &live,
        [format!(
            "{stamp} web1 kernel: traps: kworkerd[4242] general protection fault ip:7f00 sp:7ffd error:0 in libc.so.6"
        )],
    );
    let a = wait_rule(&jsonl, &node, "log.new_template", 20);
    assert_eq!(a["severity"], "low", "{a}");
    assert!(
        a["log"]["lines"][0]
            .as_str()
            .unwrap()
            .contains("general protection fault"),
        "{a}"
    );
    let all = common::read_alerts(&jsonl);
    assert_eq!(
        all.iter()
            .filter(|a| rule_of(a) == "log.new_template")
            .count(),
        1,
        "{all:?}"
    );
    node.stop(Duration::from_secs(10));

    // A damaged model is a clear error, at the node's start too.
    std::fs::write(&model, b"not a model").unwrap();
    let mut node = Daisi::spawn(&log_node(&sources, &jsonl), &[]);
    let status = node.wait_exit(Duration::from_secs(20));
    assert!(!status.success());
    assert!(
        node.log().contains("not a log template model"),
        "{}",
        node.log()
    );
    let (ok, _, err) = daisi(&[
        "eval".as_ref(),
        "logs".as_ref(),
        "--model".as_ref(),
        model.as_ref(),
        "--benign".as_ref(),
        benign.as_ref(),
    ]);
    assert!(!ok);
    assert!(err.contains("not a log template model"), "{err}");
}
