//! The attacker's test suite: each test plays one attack on the fleet's
//! trust boundaries against real `daisi` nodes and a real `nats-server`,
//! and checks that the attack fails *and* that the legitimate traffic
//! beside it still gets through (docs/security.md says what each proves).

mod common;

use common::{compute_toml, drained_counter, Daisi, NatsServer};
use daisi::messages::{
    Activity, ActivityEvent, Envelope, FlowBatch, LogBatch, LogLine, Payload, ProcessInfo,
    SyscallAbi, SyscallBatch, SyscallEvent, SCHEMA_VERSION,
};
use std::path::Path;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(20);

fn envelope(host: &str, node_id: &str, seq: u64, payload: Payload) -> Vec<u8> {
    Envelope {
        schema: SCHEMA_VERSION,
        node_id: node_id.into(),
        host: host.into(),
        seq,
        ts_ns: 1,
        payload,
    }
    .encode()
}

/// A live batch of process 4242 (`sh`, child of PID 1) on `host` that
/// read `/etc/shadow`.
fn live_batch(host: &str) -> SyscallBatch {
    SyscallBatch {
        host: host.into(),
        pid: 4242,
        tid: 4242,
        comm: "sh".into(),
        exe: Some("/usr/bin/dash".into()),
        abi: SyscallAbi::X86_64,
        context: vec![],
        events: (0..16)
            .map(|i| SyscallEvent {
                nr: i % 4,
                ts_ns: i as u64,
            })
            .collect(),
        last: false,
        lineage: vec![
            ProcessInfo {
                pid: 4242,
                ppid: Some(1),
                name: "sh".into(),
                executable: Some("/usr/bin/dash".into()),
                uid: Some(0),
                ..Default::default()
            },
            ProcessInfo {
                pid: 1,
                name: "init".into(),
                ..Default::default()
            },
        ],
        activity: vec![ActivityEvent {
            pid: 4242,
            ts_ns: 1,
            what: Activity::Open {
                path: "/etc/shadow".into(),
                write: false,
            },
        }],
    }
}

fn log_batch(host: &str, text: &str) -> LogBatch {
    LogBatch {
        host: host.into(),
        lines: vec![LogLine {
            source: "auth".into(),
            path: "/var/log/auth.log".into(),
            read_ns: 1,
            text: text.into(),
            cut: false,
            program: None,
        }],
    }
}

/// Publishes to the data stream and waits for the server's acknowledgement.
async fn publish(js: &async_nats::jetstream::Context, subject: String, bytes: Vec<u8>) {
    js.publish(subject, bytes.into())
        .await
        .unwrap()
        .await
        .expect("the stream stored it");
}

/// A compute node on `url` whose profiles go to `baselines`; learning for
/// a second, alerts to `alerts`.
fn compute(url: &str, baselines: &Path, alerts: &Path, extra: &str, env: &[(&str, &str)]) -> Daisi {
    let mut env: Vec<(&str, &str)> = env.to_vec();
    let dir = baselines.to_str().unwrap();
    env.push(("DAISI__BASELINE__DIR", dir));
    let d = Daisi::spawn(
        &compute_toml(
            "compute-hostile",
            url,
            &format!(
                "jsonl = \"{}\"\n[baseline]\nlearn_for = \"1s\"\nsave_every = \"1s\"\n{extra}",
                alerts.display()
            ),
        ),
        &env,
    );
    d.wait_running();
    d
}

/// Waits until the node's log holds `text`.
fn wait_log(node: &Daisi, text: &str) {
    let until = Instant::now() + T;
    while !node.log().contains(text) {
        assert!(Instant::now() < until, "no {text:?} in:\n{}", node.log());
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A collector speaks only for its own host: a batch published on its
/// own subject that says it is db1's (to poison db1's profile, raise
/// alerts for db1 and have db1 commanded) is refused and counted; the
/// same collector's batches about itself go through.
#[tokio::test(flavor = "multi_thread")]
async fn a_collector_cannot_speak_for_another_host() {
    let nats = NatsServer::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let (baselines, alerts) = (
        dir.path().join("baselines"),
        dir.path().join("alerts.jsonl"),
    );
    let mut node = compute(&nats.url(), &baselines, &alerts, "", &[]);
    let client = async_nats::connect(nats.url()).await.unwrap();
    let mut commands = client.subscribe("daisi.v1.command.>").await.unwrap();
    let js = async_nats::jetstream::new(client.clone());
    // The forgery: web1's subject and envelope, db1 inside.
    for seq in 1..=3 {
        let bytes = envelope(
            "web1",
            "web1-c",
            seq,
            Payload::SyscallBatch(live_batch("db1")),
        );
        publish(&js, "daisi.v1.syscall.web1.4242".into(), bytes).await;
        let bytes = envelope(
            "web1",
            "web1-c",
            10 + seq,
            Payload::LogBatch(log_batch("db1", "x")),
        );
        publish(&js, "daisi.v1.log.web1.0".into(), bytes).await;
    }
    // web1 about itself: taken.
    let bytes = envelope(
        "web1",
        "web1-c",
        100,
        Payload::SyscallBatch(live_batch("web1")),
    );
    publish(&js, "daisi.v1.syscall.web1.4242".into(), bytes).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(node.stop(T).success(), "{}", node.log());
    let log = node.log();
    assert_eq!(
        drained_counter(&log, "inbound.rejected.forged_host"),
        6,
        "{log}"
    );
    assert_eq!(
        drained_counter(&log, "inbound.received.syscall"),
        1,
        "{log}"
    );
    assert!(
        baselines.join("web1.json").exists(),
        "web1's own batch is learnt"
    );
    assert!(
        !baselines.join("db1.json").exists(),
        "db1's profile was touched"
    );
    let text = std::fs::read_to_string(&alerts).unwrap_or_default();
    assert!(!text.contains("\"db1\""), "an alert about db1: {text}");
    assert!(
        tokio::time::timeout(
            Duration::from_millis(300),
            futures::StreamExt::next(&mut commands)
        )
        .await
        .is_err(),
        "a command was sent"
    );
}

/// One host cannot blind another through duplicate detection: envelopes
/// on web1's subject claiming db1's node id with the highest sequence
/// numbers do not make db1's own envelopes duplicates.
#[tokio::test(flavor = "multi_thread")]
async fn claimed_node_ids_and_sequences_do_not_blind_another_host() {
    let nats = NatsServer::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let mut node = compute(
        &nats.url(),
        &dir.path().join("baselines"),
        &dir.path().join("alerts.jsonl"),
        "",
        &[],
    );
    let client = async_nats::connect(nats.url()).await.unwrap();
    let js = async_nats::jetstream::new(client.clone());
    let db1_node = "db1-collector-1234-0123456789abcdef";
    for seq in [u64::MAX, u64::MAX - 1, 1, 2] {
        let bytes = envelope(
            "web1",
            db1_node,
            seq,
            Payload::LogBatch(log_batch("web1", "x")),
        );
        publish(&js, "daisi.v1.log.web1.0".into(), bytes).await;
    }
    for seq in [1, 2, 3] {
        let bytes = envelope(
            "db1",
            db1_node,
            seq,
            Payload::LogBatch(log_batch("db1", "y")),
        );
        publish(&js, "daisi.v1.log.db1.0".into(), bytes).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(node.stop(T).success());
    let log = node.log();
    assert_eq!(drained_counter(&log, "inbound.received.log"), 7, "{log}");
    assert_eq!(drained_counter(&log, "inbound.duplicates"), 0, "{log}");
}

/// With `config/nats-permissions.conf` a collector's credentials reach
/// only its own host's subjects and inboxes: reading every inbox (where
/// compute nodes' pulled batches arrive), other hosts' data or creating a
/// stream is refused by the broker, while its own node's batches reach
/// the compute node.
#[tokio::test(flavor = "multi_thread")]
async fn a_collector_cannot_read_other_hosts_data_or_create_streams() {
    let conf = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/nats-permissions.conf");
    let nats = NatsServer::start(&["-c", conf.to_str().unwrap()]);
    let dir = tempfile::tempdir().unwrap();
    let mut node = compute(
        &nats.url(),
        &dir.path().join("baselines"),
        &dir.path().join("alerts.jsonl"),
        "",
        &[
            ("DAISI__NATS__USER", "compute"),
            ("DAISI__NATS__PASSWORD", "change-me-compute"),
        ],
    );
    // The spy: web1's collector credentials.
    let (tx, mut errors) = tokio::sync::mpsc::unbounded_channel::<String>();
    let spy = async_nats::ConnectOptions::with_user_and_password(
        "collector-web1".into(),
        "change-me-web1".into(),
    )
    .custom_inbox_prefix("_INBOX_web1")
    .event_callback(move |e| {
        let tx = tx.clone();
        async move {
            if let async_nats::Event::ServerError(e) = e {
                let _ = tx.send(e.to_string());
            }
        }
    })
    .connect(nats.url())
    .await
    .unwrap();
    let mut every_inbox = spy.subscribe("_INBOX.>").await.unwrap();
    let mut others_data = spy.subscribe("daisi.v1.syscall.>").await.unwrap();
    let mut db1_inbox = spy.subscribe("_INBOX_db1.>").await.unwrap();
    spy.flush().await.unwrap();
    let created = tokio::time::timeout(
        Duration::from_secs(3),
        spy.request(
            "$JS.API.STREAM.CREATE.EVIL",
            r#"{"name":"EVIL","subjects":["evil.>"]}"#.into(),
        ),
    )
    .await;
    assert!(
        !matches!(created, Ok(Ok(_))),
        "a collector created a stream: {created:?}"
    );
    // The real collector of web1 replays traces to the compute node.
    let traces = common::replay_traces();
    let mut collector = Daisi::spawn(
        &common::collector_toml("web1-collector", "web1", &nats.url(), &traces, 20, ""),
        &[
            ("DAISI__NATS__USER", "collector-web1"),
            ("DAISI__NATS__PASSWORD", "change-me-web1"),
        ],
    );
    collector.wait_running();
    wait_log(&collector, "replay finished");
    tokio::time::sleep(Duration::from_secs(3)).await;
    for (what, sub) in [
        ("every inbox", &mut every_inbox),
        ("other hosts' data", &mut others_data),
        ("db1's inbox", &mut db1_inbox),
    ] {
        let got =
            tokio::time::timeout(Duration::from_millis(500), futures::StreamExt::next(sub)).await;
        assert!(
            !matches!(got, Ok(Some(_))),
            "the spy read {what}: {:?}",
            got.map(|m| m.map(|m| m.subject))
        );
    }
    let mut said = Vec::new();
    while let Ok(e) = errors.try_recv() {
        said.push(e);
    }
    for subject in ["_INBOX.>", "daisi.v1.syscall.>", "_INBOX_db1.>"] {
        assert!(
            said.iter()
                .any(|e| e.contains("ermissions") && e.contains(subject)),
            "no permissions violation for {subject}: {said:?}"
        );
    }
    assert!(collector.stop(T).success(), "{}", collector.log());
    assert!(node.stop(T).success(), "{}", node.log());
    let received = drained_counter(&node.log(), "inbound.received.syscall");
    assert!(
        received > 0,
        "web1's batches did not get through:\n{}",
        node.log()
    );
}

/// The resident memory of a process, bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    kb * 1024
}

/// 5,000 host names claimed from one connection (a broker without
/// permissions): a compute node takes the first `inbound.max_hosts`
/// (4,096, its own among them), refuses the rest and counts them (durable
/// ones to the dead-letter stream), and its memory stays under
/// 256 MiB; a host it took still gets through.
#[tokio::test(flavor = "multi_thread")]
async fn thousands_of_claimed_hosts_stay_within_the_cap() {
    let nats = NatsServer::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let mut node = compute(
        &nats.url(),
        &dir.path().join("baselines"),
        &dir.path().join("alerts.jsonl"),
        "",
        &[],
    );
    let before = rss(node.pid());
    let client = async_nats::connect(nats.url()).await.unwrap();
    let js = async_nats::jetstream::new(client.clone());
    const HOSTS: usize = 5000;
    let mut acks = Vec::new();
    for i in 0..HOSTS {
        let host = format!("h{i}");
        let node_id = format!("{host}-c");
        let flows = FlowBatch {
            host: host.clone(),
            flows: vec![],
        };
        for (seq, subject, payload) in [
            (
                1,
                format!("daisi.v1.syscall.{host}.4242"),
                Payload::SyscallBatch(live_batch(&host)),
            ),
            (
                2,
                format!("daisi.v1.log.{host}.0"),
                Payload::LogBatch(log_batch(
                    &host,
                    "sshd[1]: Failed password for root from 10.0.0.1 port 1 ssh2",
                )),
            ),
            (
                3,
                format!("daisi.v1.flow.{host}.0"),
                Payload::FlowBatch(flows.clone()),
            ),
        ] {
            acks.push(
                js.publish(subject, envelope(&host, &node_id, seq, payload).into())
                    .await
                    .unwrap(),
            );
        }
        if acks.len() >= 512 {
            for a in acks.drain(..) {
                a.await.unwrap();
            }
        }
    }
    for a in acks {
        a.await.unwrap();
    }
    // Until the node has taken everything in.
    let until = Instant::now() + Duration::from_secs(120);
    let mut stream = js.get_stream("DAISI_DATA").await.unwrap();
    loop {
        let messages = stream.info().await.unwrap().state.messages;
        let pending: u64 = {
            let mut n = 0;
            let mut consumers = stream.consumers();
            while let Some(c) = futures::StreamExt::next(&mut consumers).await {
                let c = c.unwrap();
                n += c.num_pending + c.num_ack_pending as u64;
            }
            n
        };
        if pending == 0 && messages > 0 {
            break;
        }
        assert!(
            Instant::now() < until,
            "the node did not take the batches in: {pending} pending"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rss(node.pid());
    println!(
        "compute RSS: {:.1} MiB before, {:.1} MiB after {HOSTS} claimed hosts",
        before as f64 / (1 << 20) as f64,
        after as f64 / (1 << 20) as f64
    );
    // A host it took still gets through.
    let bytes = envelope("h7", "h7-c", 10, Payload::LogBatch(log_batch("h7", "x")));
    publish(&js, "daisi.v1.log.h7.0".into(), bytes).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(node.stop(T).success(), "{}", node.log());
    let log = node.log();
    // The node's own host (its heartbeats) holds one of the 4,096 places.
    let taken = 4096 - 1;
    let refused = drained_counter(&log, "inbound.rejected.too_many_hosts");
    assert_eq!(refused, ((HOSTS - taken) * 3) as u64, "{log}");
    assert_eq!(
        drained_counter(&log, "inbound.received.log"),
        taken as u64 + 1,
        "{log}"
    );
    assert!(
        after <= 256 << 20,
        "compute RSS {after} bytes after {HOSTS} claimed hosts"
    );
}

/// Without a token the console answers only requests addressed to it: a
/// page that rebinds its own name to 127.0.0.1 (DNS rebinding) gets 421;
/// the console's own address gets the alerts.
#[test]
fn the_console_refuses_a_rebound_host() {
    let port = common::free_port();
    let mut node = Daisi::spawn(
        &format!("[node]\nrole = \"both\"\n[console]\nlisten = \"127.0.0.1:{port}\"\n[alert]\nconsole = false\n"),
        &[],
    );
    node.wait_running();
    let get = |host: &str| {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        write!(
            s,
            "GET /api/alerts HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    };
    let rebound = get(&format!("evil.example:{port}"));
    assert!(rebound.starts_with("HTTP/1.1 421"), "{rebound}");
    assert!(!rebound.contains("\"alerts\""), "{rebound}");
    let own = get(&format!("127.0.0.1:{port}"));
    assert!(own.starts_with("HTTP/1.1 200"), "{own}");
    let named = get(&format!("localhost:{port}"));
    assert!(named.starts_with("HTTP/1.1 200"), "{named}");
    assert!(node.stop(T).success());
}
