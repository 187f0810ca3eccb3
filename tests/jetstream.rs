//! The durable data path against real `nats-server`s (JetStream on): a
//! collector replays ADFA-LD attack traces to compute nodes, which are
//! killed (`kill -9`) mid-replay, or whose broker restarts, or whose
//! 3-node broker cluster loses a node. Every stored batch must be
//! acknowledged (scored), and the processes alerted on (with their scores)
//! must be those of one compute node that ran undisturbed.

mod common;

use async_nats::jetstream;
use common::*;
use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(90);
/// Attack traces replayed, and how fast: the replay lasts 6 s.
const TRACES: usize = 300;
const PER_SECOND: f64 = 50.0;

/// Test timings: a partition moves after 2 s, a batch not acknowledged
/// within 3 s is delivered again.
const JETSTREAM: &str = r#"
[nats.jetstream]
failover_after = "2s"
ack_wait = "3s"
"#;

fn collector(id: &str, urls: &str, adfa: &std::path::Path) -> String {
    format!(
        r#"
[node]
role = "collector"
id = "{id}"
host = "replayhost"
shutdown_deadline = "10s"
[nats]
servers = [{urls}]
[heartbeat]
interval = "200ms"
silence_after = "2s"
[syscall_source]
kind = "replay"
path = "{adfa}"
filter = "Attack_Data_Master/"
abi = "i386"
max_traces = {TRACES}
traces_per_second = {PER_SECOND}
{JETSTREAM}
"#,
        adfa = adfa.display()
    )
}

fn compute(id: &str, urls: &str, extra: &str) -> String {
    format!(
        r#"
[node]
role = "compute"
id = "{id}"
host = "computehost"
shutdown_deadline = "10s"
[nats]
servers = [{urls}]
{JETSTREAM}
{extra}
[heartbeat]
interval = "200ms"
silence_after = "2s"
[alert]
console = false
[alert.jetstream]
enabled = true
"#
    )
}

fn url(s: &NatsServer) -> String {
    format!("\"{}\"", s.url())
}

/// What the data stream's consumers still hold: (not yet delivered,
/// delivered and not acknowledged), and the batches stored.
/// `None` while the server cannot say (a cluster electing leaders).
async fn backlog(js: &jetstream::Context) -> Option<(u64, u64, u64)> {
    let mut stream = js.get_stream("DAISI_DATA").await.ok()?;
    let stored = stream.info().await.ok()?.state.messages;
    let (mut pending, mut unacked) = (0, 0);
    for p in 0..16 {
        let mut c: jetstream::consumer::PullConsumer = stream
            .get_consumer(&format!("daisi-compute-p{p}"))
            .await
            .ok()?;
        let info = c.info().await.ok()?;
        pending += info.num_pending;
        unacked += info.num_ack_pending as u64;
    }
    Some((pending, unacked, stored))
}

/// Waits until the collector sent its whole replay (the stream acknowledged
/// every batch) and the compute nodes acknowledged every stored batch.
/// Returns the batches the collector produced.
async fn all_scored(hb: &Heartbeats, collector: &str, js: &jetstream::Context) -> u64 {
    let col = hb
        .wait_for(collector, "replay stored", T, |h| {
            h.counters.get("syscall_source.traces") == Some(&(TRACES as u64))
                && h.queue_depths.get("outbound.queued") == Some(&0)
                && h.queue_depths.get("outbound.in_flight") == Some(&0)
                && h.counters
                    .get("syscall_batcher.batches")
                    .is_some_and(|&b| b > 0)
        })
        .await;
    assert_eq!(col.counters["outbound.dropped"], 0, "{col:?}");
    let batches = col.counters["syscall_batcher.batches"];
    let until = Instant::now() + T;
    loop {
        let state = backlog(js).await;
        if state == Some((0, 0, batches)) {
            return batches;
        }
        assert!(
            Instant::now() < until,
            "not every batch was scored: (pending, unacknowledged, stored) {state:?} of {batches}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The syscall alerts in the alert stream: process → (score, copies).
/// Fold updates (count > 1) are not new alerts.
async fn alerted(js: &jetstream::Context) -> BTreeMap<String, (f64, usize)> {
    // The last alert may still be on its way to the stream.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut stream = js.get_stream("DAISI_ALERTS").await.unwrap();
    let info = stream.info().await.unwrap().state.clone();
    let mut out: BTreeMap<String, (f64, usize)> = BTreeMap::new();
    for seq in info.first_sequence..=info.last_sequence {
        let Ok(m) = stream.get_raw_message(seq).await else {
            continue;
        };
        let a: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
        if a["module"] != "syscall" || a["count"].as_u64() != Some(1) {
            continue;
        }
        let e = out
            .entry(a["entity"].as_str().unwrap().to_string())
            .or_insert((a["score"].as_f64().unwrap(), 0));
        e.1 += 1;
    }
    out
}

/// One compute node, undisturbed: the alerts every other run must match.
fn reference(adfa: &std::path::Path) -> &'static BTreeMap<String, (f64, usize)> {
    static REF: OnceLock<BTreeMap<String, (f64, usize)>> = OnceLock::new();
    REF.get_or_init(|| {
        let adfa = adfa.to_path_buf();
        std::thread::spawn(move || {
            tokio::runtime::Runtime::new().unwrap().block_on(async {
                let nats = NatsServer::start(&[]);
                let c = async_nats::connect(nats.url()).await.unwrap();
                let js = jetstream::new(c.clone());
                let hb = Heartbeats::watch(&c).await;
                let mut cmp = Daisi::spawn(&compute("ref-cmp", &url(&nats), ""), &[]);
                hb.wait_for("ref-cmp", "up", T, |_| true).await;
                let mut col = Daisi::spawn(&collector("ref-col", &url(&nats), &adfa), &[]);
                all_scored(&hb, "ref-col", &js).await;
                let alerts = alerted(&js).await;
                assert!(col.stop(T).success());
                assert!(cmp.stop(T).success());
                alerts
            })
        })
        .join()
        .unwrap()
    })
}

/// Same processes alerted, each once, with the same scores.
fn assert_same(got: &BTreeMap<String, (f64, usize)>, want: &BTreeMap<String, (f64, usize)>) {
    assert!(
        want.len() >= 50,
        "the reference run alerted on {} processes",
        want.len()
    );
    let twice: Vec<_> = got.iter().filter(|(_, (_, n))| *n > 1).collect();
    assert!(twice.is_empty(), "alerted more than once: {twice:?}");
    let missing: Vec<_> = want.keys().filter(|k| !got.contains_key(*k)).collect();
    let extra: Vec<_> = got.keys().filter(|k| !want.contains_key(*k)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "alerted processes differ: {} missing {missing:?}, {} extra {extra:?}",
        missing.len(),
        extra.len()
    );
    for (k, (s, _)) in want {
        assert!(
            (got[k].0 - s).abs() < 1e-9,
            "{k}: score {} vs {s} undisturbed",
            got[k].0
        );
    }
}

/// The compute node that has taken the most batches so far.
fn busiest<'a>(hb: &Heartbeats, ids: &[&'a str]) -> &'a str {
    ids.iter()
        .copied()
        .max_by_key(|id| hb.counter(id, "inbound.received.syscall"))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn one_of_three_compute_nodes_killed_mid_replay_loses_nothing() {
    let Some(adfa) = adfa() else { return };
    let want = reference(&adfa);
    let nats = NatsServer::start(&[]);
    let c = async_nats::connect(nats.url()).await.unwrap();
    let js = jetstream::new(c.clone());
    let hb = Heartbeats::watch(&c).await;
    let ids = ["k3-a", "k3-b", "k3-c"];
    let mut nodes: Vec<Daisi> = ids
        .iter()
        .map(|id| Daisi::spawn(&compute(id, &url(&nats), ""), &[]))
        .collect();
    for id in ids {
        hb.wait_for(id, "up", T, |_| true).await;
    }
    let mut col = Daisi::spawn(&collector("k3-col", &url(&nats), &adfa), &[]);
    hb.wait_for("k3-col", "replay under way", T, |h| {
        h.counters
            .get("syscall_source.traces")
            .is_some_and(|&n| n >= 100)
    })
    .await;
    let victim = busiest(&hb, &ids);
    let i = ids.iter().position(|id| *id == victim).unwrap();
    nodes[i].stop_hard();

    all_scored(&hb, "k3-col", &js).await;
    let got = alerted(&js).await;
    assert_same(&got, want);
    let survivors: Vec<&str> = ids.iter().copied().filter(|id| *id != victim).collect();
    for id in &survivors {
        assert_eq!(hb.counter(id, "inbound.dead_letters"), 0);
    }
    assert!(col.stop(T).success());
    for (n, id) in nodes.iter_mut().zip(ids) {
        if id != victim {
            assert!(n.stop(T).success(), "{}", n.log());
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_only_compute_node_killed_and_started_again_loses_nothing() {
    let Some(adfa) = adfa() else { return };
    let want = reference(&adfa);
    let nats = NatsServer::start(&[]);
    let c = async_nats::connect(nats.url()).await.unwrap();
    let js = jetstream::new(c.clone());
    let hb = Heartbeats::watch(&c).await;
    let mut cmp = Daisi::spawn(&compute("k1-cmp", &url(&nats), ""), &[]);
    hb.wait_for("k1-cmp", "up", T, |_| true).await;
    let mut col = Daisi::spawn(&collector("k1-col", &url(&nats), &adfa), &[]);
    hb.wait_for("k1-col", "replay under way", T, |h| {
        h.counters
            .get("syscall_source.traces")
            .is_some_and(|&n| n >= 100)
    })
    .await;
    cmp.stop_hard();
    // The collector goes on storing while no compute node runs.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut again = Daisi::spawn(&compute("k1-cmp", &url(&nats), ""), &[]);

    all_scored(&hb, "k1-col", &js).await;
    let got = alerted(&js).await;
    assert_same(&got, want);
    assert!(col.stop(T).success());
    assert!(again.stop(T).success(), "{}", again.log());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broker_restart_mid_replay_loses_nothing() {
    let Some(adfa) = adfa() else { return };
    let want = reference(&adfa);
    let mut nats = NatsServer::start(&[]);
    let c = async_nats::connect(nats.url()).await.unwrap();
    let hb = Heartbeats::watch(&c).await;
    let mut cmp = Daisi::spawn(&compute("br-cmp", &url(&nats), ""), &[]);
    hb.wait_for("br-cmp", "up", T, |_| true).await;
    let mut col = Daisi::spawn(&collector("br-col", &url(&nats), &adfa), &[]);
    hb.wait_for("br-col", "replay under way", T, |h| {
        h.counters
            .get("syscall_source.traces")
            .is_some_and(|&n| n >= 100)
    })
    .await;
    nats.kill();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    nats.restart();
    let c = async_nats::connect(nats.url()).await.unwrap();
    let js = jetstream::new(c.clone());
    let hb = Heartbeats::watch(&c).await;

    let batches = all_scored(&hb, "br-col", &js).await;
    let got = alerted(&js).await;
    assert_same(&got, want);
    assert!(col.stop(T).success());
    let col_log = col.log();
    assert!(col_log.contains("NATS disconnected"), "no outage seen");
    assert!(cmp.stop(T).success(), "{}", cmp.log());
    let cmp_log = cmp.log();
    let received = drained_counter(&cmp_log, "inbound.received.syscall");
    let duplicates = drained_counter(&cmp_log, "inbound.duplicates");
    assert!(
        received + duplicates >= batches,
        "{received} + {duplicates} of {batches}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_stream_goes_on_when_a_broker_of_a_three_node_cluster_is_killed() {
    let Some(adfa) = adfa() else { return };
    let want = reference(&adfa);
    let mut cluster = NatsCluster::start(3);
    let urls = cluster.urls_toml();
    // The cluster elects its JetStream leader.
    let c = async_nats::connect(cluster.servers[0].url()).await.unwrap();
    let js = jetstream::new(c.clone());
    let until = Instant::now() + T;
    while js.query_account().await.is_err() {
        assert!(Instant::now() < until, "the cluster has no JetStream");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let hb = Heartbeats::watch(&c).await;
    let replicas = "[nats.jetstream]\nreplicas = 3\n";
    let with_replicas = |s: String| s.replace("[nats.jetstream]\n", replicas);
    let mut cmp = Daisi::spawn(&with_replicas(compute("cl-cmp", &urls, "")), &[]);
    hb.wait_for("cl-cmp", "up", T, |_| true).await;
    let mut stream = js.get_stream("DAISI_DATA").await.unwrap();
    assert_eq!(stream.info().await.unwrap().config.num_replicas, 3);
    let mut col = Daisi::spawn(&with_replicas(collector("cl-col", &urls, &adfa)), &[]);
    hb.wait_for("cl-col", "replay under way", T, |h| {
        h.counters
            .get("syscall_source.traces")
            .is_some_and(|&n| n >= 100)
    })
    .await;
    // Not the one the test's own client uses.
    cluster.servers[2].kill();

    all_scored(&hb, "cl-col", &js).await;
    let got = alerted(&js).await;
    assert_same(&got, want);
    let info = stream.info().await.unwrap();
    let cl = info.cluster.as_ref().expect("a clustered stream");
    assert_eq!(cl.replicas.len(), 2, "{cl:?}");
    assert!(col.stop(T).success());
    assert!(cmp.stop(T).success(), "{}", cmp.log());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_delivered_too_often_goes_to_the_dead_letter_stream() {
    let Some(adfa) = adfa() else { return };
    let nats = NatsServer::start(&[]);
    let c = async_nats::connect(nats.url()).await.unwrap();
    let js = jetstream::new(c.clone());
    let hb = Heartbeats::watch(&c).await;
    // One delivery only: whatever the killed node took and did not finish
    // is not tried again but kept aside.
    let once = "max_deliveries = 1";
    // The first node's buffer scores nothing for minutes: every batch it
    // takes stays unacknowledged until it is killed.
    let holding = format!("{once}\n[syscall_buffer]\nmax_wait = \"10m\"\nmax_batch = 100000000");
    let mut first = Daisi::spawn(&compute("dl-a", &url(&nats), &holding), &[]);
    hb.wait_for("dl-a", "up", T, |_| true).await;
    let mut col = Daisi::spawn(&collector("dl-col", &url(&nats), &adfa), &[]);
    hb.wait_for("dl-a", "batches held", T, |h| {
        h.queue_depths
            .get("inbound.unacked")
            .is_some_and(|&n| n > 0)
    })
    .await;
    first.stop_hard();
    let mut second = Daisi::spawn(&compute("dl-b", &url(&nats), once), &[]);
    hb.wait_for("dl-col", "replay stored", T, |h| {
        h.counters.get("syscall_source.traces") == Some(&(TRACES as u64))
            && h.queue_depths.get("outbound.queued") == Some(&0)
    })
    .await;
    let h = hb
        .wait_for("dl-b", "dead letters", T, |h| {
            h.counters
                .get("inbound.dead_letters")
                .is_some_and(|&n| n > 0)
        })
        .await;
    let dead = h.counters["inbound.dead_letters"];
    let mut s = js.get_stream("DAISI_DATA_DEAD").await.unwrap();
    let stored = s.info().await.unwrap().state.messages;
    assert_eq!(stored, dead, "each dead letter stored once");
    let m = s.get_raw_message(1).await.unwrap();
    assert_eq!(
        m.headers.get("Daisi-Dead-Reason").map(|v| v.as_str()),
        Some("max_deliveries")
    );
    assert!(m
        .subject
        .as_str()
        .starts_with("daisi.v1.dead.syscall.replayhost."));
    assert!(col.stop(T).success());
    assert!(second.stop(T).success(), "{}", second.log());
}
