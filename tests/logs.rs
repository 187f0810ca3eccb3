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
    let mut want = numbered(0..300);
    want.push(format!("app[7]: long {}", "x".repeat(64 - 13)));
    want.extend(numbered(300..450));
    let texts: Vec<&str> = got.iter().map(|(_, t)| t.as_str()).collect();
    let want: Vec<&str> = want.iter().map(String::as_str).collect();
    assert_eq!(texts.len(), want.len(), "lost or repeated lines");
    assert_eq!(texts, want);
    assert!(got.iter().all(|(s, _)| s == "app"));
}
