//! Alert delivery against a real `nats-server` with JetStream (`-js`).

mod common;

use common::{Daisi, NatsServer};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// Waits for the replay to end, stops the node gracefully, returns its log.
fn finish_replay(node: &mut Daisi) -> String {
    let until = Instant::now() + Duration::from_secs(60);
    while !node.log().contains("replay finished") {
        assert!(
            Instant::now() < until,
            "replay did not finish:\n{}",
            node.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        node.stop(Duration::from_secs(40)).success(),
        "{}",
        node.log()
    );
    node.log()
}

/// The delivery keys of the file's alerts, in order: the id, or
/// `<id>#<count>` for an update of a folded alert.
fn delivery_keys(path: &std::path::Path) -> Vec<String> {
    jsonl_ids(path)
        .into_iter()
        .map(|(id, n)| if n > 1 { format!("{id}#{n}") } else { id })
        .collect()
}

fn jsonl_ids(path: &std::path::Path) -> Vec<(String, u64)> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["id"].as_str().unwrap().to_string(),
                v["count"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// The ADFA-LD attack replay end to end in the `both` role: alerts with
/// evidence land in the JSON Lines file and in the JetStream stream; the
/// broker is killed and restarted mid-run, and no alert is lost or stored
/// twice (the stream holds exactly the file's alerts; counters agree).
#[test]
fn alerts_reach_jetstream_across_a_broker_restart() {
    let Some(adfa) = common::adfa() else { return };
    // JetStream's store outlives the restart (see NatsServer).
    let mut nats = NatsServer::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let jsonl = dir.path().join("alerts.jsonl");
    let toml = format!(
        r#"
[node]
role = "both"
host = "replayhost"
shutdown_deadline = "20s"
[nats]
servers = ["{}"]
[syscall_source]
kind = "replay"
path = "{}"
filter = "Attack_Data_Master/"
abi = "i386"
max_traces = 120
traces_per_second = 40.0
[alert]
console = false
jsonl = "{}"
[alert.jetstream]
enabled = true
stream = "TEST_ALERTS"
"#,
        nats.url(),
        adfa.display(),
        jsonl.display()
    );
    let mut node = Daisi::spawn(&toml, &[]);
    // Let alerts flow, then take the broker away for a while.
    let until = Instant::now() + Duration::from_secs(30);
    while jsonl_ids(&jsonl).len() < 5 {
        assert!(Instant::now() < until, "no alerts:\n{}", node.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    nats.kill();
    std::thread::sleep(Duration::from_millis(1500));
    nats.restart();
    let log = finish_replay(&mut node);
    assert!(log.contains("NATS disconnected"), "no outage seen:\n{log}");

    let file = delivery_keys(&jsonl);
    assert!(file.len() >= 10, "{file:?}");
    let expected: BTreeSet<String> = file.iter().cloned().collect();
    // Read the stream back.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let stored: Vec<serde_json::Value> = rt.block_on(async {
        let client = async_nats::connect(nats.url()).await.unwrap();
        let js = async_nats::jetstream::new(client);
        let mut stream = js.get_stream("TEST_ALERTS").await.unwrap();
        let n = stream.info().await.unwrap().state.messages;
        let mut out = Vec::new();
        for seq in 1..=n {
            let m = stream.get_raw_message(seq).await.unwrap();
            assert!(m.subject.starts_with("daisi.v1.alert."), "{}", m.subject);
            out.push(serde_json::from_slice(&m.payload).unwrap());
        }
        out
    });
    let got: BTreeSet<String> = stored
        .iter()
        .map(|v| {
            let (id, n) = (v["id"].as_str().unwrap(), v["count"].as_u64().unwrap());
            if n > 1 {
                format!("{id}#{n}")
            } else {
                id.to_string()
            }
        })
        .collect();
    assert_eq!(stored.len(), file.len(), "stream and file differ in size");
    assert_eq!(got, expected);
    for v in &stored {
        assert_eq!(v["module"], "syscall");
        assert!(!v["window"]["calls"].as_array().unwrap().is_empty(), "{v}");
        assert!(!v["summary"].as_str().unwrap().is_empty(), "{v}");
    }
    // `daisi alerts list` reads the stream back (updates merged into
    // their alerts) when the configuration enables JetStream.
    let cfg = dir.path().join("node.toml");
    std::fs::write(&cfg, &toml).unwrap();
    let out = std::process::Command::new(common::daisi_bin())
        .args(["alerts", "list", "--json", "--config"])
        .arg(&cfg)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let listed: BTreeSet<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let ids: BTreeSet<String> = jsonl_ids(&jsonl).into_iter().map(|(id, _)| id).collect();
    assert_eq!(listed, ids);
    let counter = |name: &str| common::drained_counter(&log, name);
    assert_eq!(counter("alert.jetstream.sent"), file.len() as u64, "{log}");
    assert_eq!(counter("alert.jetstream.dropped"), 0);
}

/// A webhook receiver on loopback that fails the first `fail` requests with
/// HTTP 500, then accepts (checking each body is an alert), except the
/// requests numbered in `refuse` (from 1), answered 413 (too large).
/// Idempotency-Keys of the requests a receiver accepted, in order.
type Accepted = std::sync::Arc<std::sync::Mutex<Vec<String>>>;

fn webhook_receiver(fail: usize, refuse: &'static [usize]) -> (u16, Accepted) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let acc = accepted.clone();
    std::thread::spawn(move || {
        let mut seen = 0usize;
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            // Requests on this (keep-alive) connection, one after another.
            loop {
                let mut len = 0usize;
                let mut key = String::new();
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                loop {
                    line.clear();
                    reader.read_line(&mut line).unwrap();
                    let l = line.trim_end();
                    if l.is_empty() {
                        break;
                    }
                    let (name, value) = l.split_once(':').unwrap();
                    match name.to_ascii_lowercase().as_str() {
                        "content-length" => len = value.trim().parse().unwrap(),
                        "idempotency-key" => key = value.trim().to_string(),
                        _ => {}
                    }
                }
                let mut body = vec![0u8; len];
                reader.read_exact(&mut body).unwrap();
                seen += 1;
                let status = if seen <= fail {
                    "500 Internal Server Error"
                } else if refuse.contains(&seen) {
                    "413 Payload Too Large"
                } else {
                    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
                    assert!(v["id"].is_string(), "not an alert: {v}");
                    acc.lock().unwrap().push(key);
                    "200 OK"
                };
                let _ = write!(conn, "HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n");
            }
        }
    });
    (port, accepted)
}

/// A webhook that fails, then recovers, gets every alert, in order, once.
#[test]
fn a_failing_webhook_gets_every_alert_in_order_once_it_recovers() {
    let Some(adfa) = common::adfa() else { return };
    let (port, accepted) = webhook_receiver(8, &[]);
    let dir = tempfile::tempdir().unwrap();
    let jsonl = dir.path().join("alerts.jsonl");
    let toml = format!(
        r#"
[node]
role = "both"
shutdown_deadline = "30s"
[syscall_source]
kind = "replay"
path = "{}"
filter = "Attack_Data_Master/"
abi = "i386"
max_traces = 80
[alert]
console = false
jsonl = "{}"
[alert.webhook]
url = "http://127.0.0.1:{port}/alerts"
max_backoff = "200ms"
"#,
        adfa.display(),
        jsonl.display()
    );
    let mut node = Daisi::spawn(&toml, &[]);
    let log = finish_replay(&mut node);
    assert!(log.contains("webhook delivery failed"), "{log}");
    let file = delivery_keys(&jsonl);
    assert!(file.len() >= 5, "{file:?}");
    let got: Vec<String> = accepted.lock().unwrap().clone();
    assert_eq!(
        got, file,
        "the receiver got exactly the file's alerts, in order"
    );
    assert_eq!(common::drained_counter(&log, "alert.webhook.retries"), 8);
    assert_eq!(common::drained_counter(&log, "alert.webhook.dropped"), 0);
}

/// Alerts a webhook refuses for good (413) go to the dead-letter file with
/// the reason; the ones behind them are delivered, in order, at once.
#[test]
fn alerts_a_webhook_refuses_for_good_go_to_dead_letters_and_the_rest_go_on() {
    let Some(adfa) = common::adfa() else { return };
    let (port, accepted) = webhook_receiver(0, &[2, 4]);
    let dir = tempfile::tempdir().unwrap();
    let jsonl = dir.path().join("alerts.jsonl");
    let toml = format!(
        r#"
[node]
role = "both"
shutdown_deadline = "30s"
[syscall_source]
kind = "replay"
path = "{}"
filter = "Attack_Data_Master/"
abi = "i386"
max_traces = 80
[alert]
console = false
jsonl = "{}"
[alert.webhook]
url = "http://127.0.0.1:{port}/alerts"
max_backoff = "30s"
"#,
        adfa.display(),
        jsonl.display()
    );
    let mut node = Daisi::spawn(&toml, &[]);
    let log = finish_replay(&mut node);
    let file = delivery_keys(&jsonl);
    assert!(file.len() >= 5, "{file:?}");
    let dead: Vec<serde_json::Value> =
        std::fs::read_to_string(dir.path().join("alerts.jsonl.dead"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
    assert_eq!(dead.len(), 2, "{dead:?}");
    for d in &dead {
        assert_eq!(d["sink"], "webhook");
        assert_eq!(d["reason"], "HTTP 413 Payload Too Large");
    }
    let refused: Vec<String> = vec![file[1].clone(), file[3].clone()];
    let dead_ids: Vec<String> = dead
        .iter()
        .map(|d| d["alert"]["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(dead_ids, refused, "the 2nd and 4th alerts were refused");
    let rest: Vec<String> = file
        .iter()
        .filter(|k| !refused.contains(k))
        .cloned()
        .collect();
    assert_eq!(
        *accepted.lock().unwrap(),
        rest,
        "every other alert, in order"
    );
    assert_eq!(
        common::drained_counter(&log, "alert.webhook.dead_letters"),
        2
    );
    assert_eq!(common::drained_counter(&log, "alert.webhook.retries"), 0);
    assert!(log.contains("alert refused for good"), "{log}");
}

/// Alerts larger than the broker takes go to the dead-letter file with the
/// reason; the stream gets every other alert, and nothing waits on them.
#[test]
fn alerts_the_stream_cannot_store_go_to_dead_letters() {
    let Some(adfa) = common::adfa() else { return };
    let dir = tempfile::tempdir().unwrap();
    // Some of these alerts (about 930 to 1,000 bytes, with the message id
    // header) are above 1,000 bytes, some below.
    let conf = dir.path().join("nats.conf");
    std::fs::write(&conf, "max_payload: 1000\n").unwrap();
    let nats = NatsServer::start(&["-c", conf.to_str().unwrap()]);
    let jsonl = dir.path().join("alerts.jsonl");
    let toml = format!(
        r#"
[node]
role = "both"
# A short node id: the alerts' sizes around the server's max_payload.
id = "dl"
shutdown_deadline = "20s"
[nats]
servers = ["{}"]
[syscall_source]
kind = "replay"
path = "{}"
filter = "Attack_Data_Master/"
abi = "i386"
max_traces = 80
[alert]
console = false
jsonl = "{}"
[alert.jetstream]
enabled = true
stream = "TEST_ALERTS"
"#,
        nats.url(),
        adfa.display(),
        jsonl.display()
    );
    let mut node = Daisi::spawn(&toml, &[]);
    let log = finish_replay(&mut node);
    let file = jsonl_ids(&jsonl);
    let dead = std::fs::read_to_string(dir.path().join("alerts.jsonl.dead")).unwrap_or_default();
    let dead: Vec<serde_json::Value> = dead
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let counter = |name: &str| common::drained_counter(&log, name);
    let sent = counter("alert.jetstream.sent");
    assert!(
        !dead.is_empty() && sent > 0,
        "dead {} sent {sent}",
        dead.len()
    );
    assert_eq!(dead.len() as u64, counter("alert.jetstream.dead_letters"));
    assert_eq!(sent + dead.len() as u64, file.len() as u64, "{log}");
    assert_eq!(counter("alert.jetstream.retries"), 0, "{log}");
    for d in &dead {
        assert_eq!(d["sink"], "jetstream");
        assert!(d["reason"].as_str().unwrap().contains("payload"), "{d}");
        assert!(serde_json::to_vec(&d["alert"]).unwrap().len() > 900);
    }
}
