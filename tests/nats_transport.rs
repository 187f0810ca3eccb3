//! Collector and compute processes of the real binary talking through a
//! real nats-server on a loopback port. Counters are read from the nodes'
//! own heartbeats.

mod common;

use common::*;
use daisi::messages::{Envelope, Payload, SyscallAbi, SyscallBatch, SyscallEvent, SCHEMA_VERSION};
use std::time::Duration;

const T: Duration = Duration::from_secs(60);

async fn client(url: &str) -> async_nats::Client {
    async_nats::connect(url)
        .await
        .expect("test client connects")
}

/// Waits until a collector has replayed `traces` and has nothing left to send.
async fn collector_done(hb: &Heartbeats, id: &str, traces: u64) {
    hb.wait_for(id, "replay finished and sent", T, |h| {
        h.counters.get("syscall_source.traces") == Some(&traces)
            && h.queue_depths.get("outbound.queued") == Some(&0)
            && h.queue_depths.get("outbound.in_flight") == Some(&0)
            && h.counters.get("outbound.sent").copied().unwrap_or(0)
                + h.counters.get("outbound.dropped").copied().unwrap_or(0)
                == h.counters.get("outbound.produced").copied().unwrap_or(0)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn batches_cross_and_counters_match_at_both_ends() {
    batches_cross(&[]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn batches_cross_and_counters_match_at_both_ends_over_core_nats() {
    batches_cross(&[("DAISI__NATS__JETSTREAM__ENABLED", "false")]).await;
}

/// A collector's replay crosses to one compute node (`env`: both nodes').
async fn batches_cross(env: &[(&str, &str)]) {
    let adfa = replay_traces();
    let nats = NatsServer::start(&[]);
    let c = client(&nats.url()).await;
    let hb = Heartbeats::watch(&c).await;

    let mut compute = Daisi::spawn(&compute_toml("cmp-1", &nats.url(), ""), env);
    hb.wait_for("cmp-1", "compute up", T, |_| true).await;
    let mut collector = Daisi::spawn(
        &collector_toml("col-1", "web1", &nats.url(), &adfa, 150, ""),
        env,
    );
    collector_done(&hb, "col-1", 150).await;

    assert!(
        collector.stop(T).success(),
        "collector exit: {}",
        collector.log()
    );
    let col = hb.final_of("col-1", T).await;
    let batches = col.counters["syscall_batcher.batches"];
    let events = col.counters["syscall_source.events"];
    assert!(batches >= 150, "one batch per trace at least: {batches}");
    assert_eq!(col.counters["outbound.dropped"], 0);
    assert_eq!(
        col.counters["outbound.sent"],
        col.counters["outbound.produced"]
    );

    let cmp = hb
        .wait_for("cmp-1", "all batches received", T, |h| {
            h.counters.get("syscall_buffer.events") == Some(&events)
        })
        .await;
    assert_eq!(cmp.counters["inbound.received.syscall"], batches);
    // Through the stream each batch is acknowledged once scored.
    let acked = if env.is_empty() { batches } else { 0 };
    hb.wait_for("cmp-1", "batches acknowledged", T, |h| {
        h.counters.get("inbound.acked").copied().unwrap_or(0) == acked
    })
    .await;
    assert_eq!(
        cmp.counters.get("inbound.duplicates").copied().unwrap_or(0),
        0
    );
    // Compute logs the collector it hears from.
    assert!(
        compute.log().contains("new node heard"),
        "{}",
        compute.log()
    );
    assert!(compute.stop(T).success());
}

#[tokio::test(flavor = "multi_thread")]
async fn two_compute_nodes_share_the_stream_without_loss_or_duplicates() {
    let adfa = replay_traces();
    let nats = NatsServer::start(&[]);
    let c = client(&nats.url()).await;
    let hb = Heartbeats::watch(&c).await;

    let mut c1 = Daisi::spawn(&compute_toml("cmp-a", &nats.url(), ""), &[]);
    let mut c2 = Daisi::spawn(&compute_toml("cmp-b", &nats.url(), ""), &[]);
    hb.wait_for("cmp-a", "up", T, |_| true).await;
    hb.wait_for("cmp-b", "up", T, |_| true).await;
    let mut col = Daisi::spawn(
        &collector_toml("col-q", "web2", &nats.url(), &adfa, 400, ""),
        &[],
    );
    collector_done(&hb, "col-q", 400).await;
    assert!(col.stop(T).success());
    let f = hb.final_of("col-q", T).await;
    let (batches, events) = (
        f.counters["syscall_batcher.batches"],
        f.counters["syscall_source.events"],
    );

    let until = std::time::Instant::now() + T;
    loop {
        let got = hb.counter("cmp-a", "syscall_buffer.events")
            + hb.counter("cmp-b", "syscall_buffer.events");
        if got == events {
            break;
        }
        assert!(
            got < events,
            "more events than sent: duplicates ({got} > {events})"
        );
        assert!(
            std::time::Instant::now() < until,
            "events lost: {got} of {events}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (a, b) = (
        hb.counter("cmp-a", "inbound.received.syscall"),
        hb.counter("cmp-b", "inbound.received.syscall"),
    );
    assert_eq!(a + b, batches, "each batch exactly once across the group");
    assert!(a > 0 && b > 0, "the queue group shares the work: {a} / {b}");
    assert!(c1.stop(T).success());
    assert!(c2.stop(T).success());
}

#[tokio::test(flavor = "multi_thread")]
async fn broker_restart_collector_reconnects_and_accounts_for_everything() {
    let adfa = replay_traces();
    let mut nats = NatsServer::start(&[]);
    let c = client(&nats.url()).await;
    let hb = Heartbeats::watch(&c).await;
    let mut compute = Daisi::spawn(&compute_toml("cmp-r", &nats.url(), ""), &[]);
    hb.wait_for("cmp-r", "up", T, |_| true).await;

    // Paced replay so the stream is running when the broker dies; a small
    // buffer so the outage overflows it.
    let extra = "traces_per_second = 100.0\n[outbound]\nbuffer = 40\n";
    let mut col = Daisi::spawn(
        &collector_toml("col-r", "web3", &nats.url(), &adfa, 600, extra),
        &[],
    );
    hb.wait_for("col-r", "streaming", T, |h| {
        h.counters
            .get("syscall_source.traces")
            .is_some_and(|&n| n >= 100)
    })
    .await;
    let before = hb.counter("cmp-r", "inbound.received.syscall");
    assert!(before > 0);

    nats.kill();
    tokio::time::sleep(Duration::from_secs(2)).await;
    nats.restart();

    // Everyone reconnects (the test client too) and the stream resumes.
    collector_done(&hb, "col-r", 600).await;
    assert!(col.stop(T).success(), "{}", col.log());
    let f = hb.final_of("col-r", T).await;
    let (produced, sent, dropped) = (
        f.counters["outbound.produced"],
        f.counters["outbound.sent"],
        f.counters["outbound.dropped"],
    );
    assert_eq!(
        sent + dropped,
        produced,
        "every message is sent or counted as dropped"
    );
    assert!(
        dropped > 0,
        "a 2 s outage at 100 traces/s overflows a 40-message buffer"
    );
    assert!(f.counters["nats.disconnects"] >= 1);
    assert!(f.counters["outbound.retries"] >= 1 || f.counters["nats.reconnects"] >= 2);
    let after = hb
        .wait_for("cmp-r", "receiving after restart", T, |h| {
            h.counters
                .get("inbound.received.syscall")
                .is_some_and(|&n| n > before + 100)
        })
        .await;
    // Nothing arrives twice or out of nowhere: retried groups are de-duplicated.
    let received = after.counters["inbound.received.syscall"];
    let batches = f.counters["syscall_batcher.batches"];
    assert!(
        received <= batches,
        "received {received} unique batches > {batches} made"
    );
    let events = hb.counter("cmp-r", "syscall_buffer.events");
    assert!(events <= f.counters["syscall_source.events"]);
    assert!(compute.stop(T).success());
}

/// The broker is gone for good when the collector is told to stop: it
/// exits at its shutdown deadline and counts what it could not send, so
/// the final counters still account for every message.
#[tokio::test(flavor = "multi_thread")]
async fn stopping_without_a_broker_exits_at_the_deadline_and_counts_the_unsent() {
    let adfa = replay_traces();
    let mut nats = NatsServer::start(&[]);
    // The stream a compute node would have made (collectors only publish).
    nats.create_data_stream_async().await;
    let c = client(&nats.url()).await;
    let hb = Heartbeats::watch(&c).await;
    let extra = "traces_per_second = 100.0\n";
    let toml = collector_toml("col-gone", "web4", &nats.url(), &adfa, 600, extra)
        .replace("shutdown_deadline = \"10s\"", "shutdown_deadline = \"2s\"");
    let mut col = Daisi::spawn(&toml, &[]);
    hb.wait_for("col-gone", "streaming", T, |h| {
        h.counters
            .get("syscall_source.traces")
            .is_some_and(|&n| n >= 50)
    })
    .await;
    nats.kill();
    // Batches pile up while the broker is away.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let t0 = std::time::Instant::now();
    let status = col.stop(Duration::from_secs(30));
    let took = t0.elapsed();
    let log = col.log();
    assert!(
        took < Duration::from_secs(10),
        "stopped {took:?} after SIGTERM; the deadline is 2 s:\n{log}"
    );
    assert!(
        !status.success(),
        "a drain cut short is a failed exit:\n{log}"
    );
    assert!(log.contains("shutdown deadline passed"), "{log}");
    assert!(
        log.contains("messages not confirmed by the broker before exit"),
        "{log}"
    );
    let produced = drained_counter(&log, "outbound.produced");
    let sent = drained_counter(&log, "outbound.sent");
    let dropped = drained_counter(&log, "outbound.dropped");
    assert!(dropped > 0, "{log}");
    assert_eq!(
        sent + dropped,
        produced,
        "every message sent or counted:\n{log}"
    );
}

fn envelope(schema: u16, host: &str) -> Envelope {
    Envelope {
        schema,
        node_id: "forger".into(),
        host: host.into(),
        seq: 1,
        ts_ns: 0,
        payload: Payload::SyscallBatch(SyscallBatch {
            host: host.into(),
            pid: 1,
            tid: 1,
            comm: "x".into(),
            exe: None,
            abi: SyscallAbi::X86_64,
            context: vec![],
            events: vec![SyscallEvent { nr: 0, ts_ns: 0 }],
            last: true,
            lineage: vec![],
            activity: vec![],
        }),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_is_counted_and_the_node_keeps_running() {
    let adfa = replay_traces();
    let nats = NatsServer::start(&[]);
    let c = client(&nats.url()).await;
    let hb = Heartbeats::watch(&c).await;
    let mut compute = Daisi::spawn(
        &compute_toml("cmp-x", &nats.url(), ""),
        &[("DAISI__NATS__MAX_MESSAGE_BYTES", "65536")],
    );
    hb.wait_for("cmp-x", "up", T, |_| true).await;

    c.publish(
        "daisi.v1.syscall.evil.1",
        b"\xc1\xc1 not msgpack".to_vec().into(),
    )
    .await
    .unwrap();
    c.publish(
        "daisi.v1.syscall.evil.1",
        envelope(SCHEMA_VERSION + 1, "evil").encode().into(),
    )
    .await
    .unwrap();
    c.publish("daisi.v1.syscall.evil.1", vec![0x90u8; 100_000].into())
        .await
        .unwrap();
    // Claims another host than its subject names.
    c.publish(
        "daisi.v1.syscall.evil.1",
        envelope(SCHEMA_VERSION, "victim").encode().into(),
    )
    .await
    .unwrap();
    // Valid map, wrong shape.
    c.publish(
        "daisi.v1.syscall.evil.1",
        rmp_serde::to_vec_named(&serde_json::json!({"schema": 1, "x": [1, 2]}))
            .unwrap()
            .into(),
    )
    .await
    .unwrap();
    c.flush().await.unwrap();
    let h = hb
        .wait_for("cmp-x", "rejections counted", T, |h| {
            h.counters.get("inbound.rejected.oversized") == Some(&1)
                && h.counters.get("inbound.rejected.bad_version") == Some(&1)
                && h.counters.get("inbound.rejected.malformed") == Some(&2)
                && h.counters.get("inbound.rejected.subject_mismatch") == Some(&1)
        })
        .await;
    assert_eq!(h.counters.get("inbound.received.syscall"), Some(&0));
    // Each went to the dead-letter stream, with its reason.
    hb.wait_for("cmp-x", "dead letters stored", T, |h| {
        h.counters.get("inbound.dead_letters") == Some(&5)
    })
    .await;
    let js = async_nats::jetstream::new(c.clone());
    let mut dead = js.get_stream("DAISI_DATA_DEAD").await.unwrap();
    assert_eq!(dead.info().await.unwrap().state.messages, 5);
    let m = dead.get_raw_message(1).await.unwrap();
    assert!(
        m.subject
            .as_str()
            .starts_with("daisi.v1.dead.syscall.evil.1."),
        "{}",
        m.subject
    );
    assert_eq!(
        m.headers.get("Daisi-Dead-Reason").map(|v| v.as_str()),
        Some("rejected")
    );
    assert!(compute.try_wait().is_none(), "compute must keep running");

    // Real traffic is still processed.
    let mut col = Daisi::spawn(
        &collector_toml("col-x", "web4", &nats.url(), &adfa, 10, ""),
        &[],
    );
    collector_done(&hb, "col-x", 10).await;
    hb.wait_for("cmp-x", "valid batches processed", T, |h| {
        h.counters
            .get("inbound.received.syscall")
            .is_some_and(|&n| n >= 10)
    })
    .await;
    assert!(compute.log().contains("message rejected"));
    assert!(col.stop(T).success());
    assert!(compute.stop(T).success());
}

/// Generates a CA and a server certificate for 127.0.0.1 with openssl.
fn make_certs(dir: &std::path::Path) {
    let run = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=daisi-test-ca",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
}

#[tokio::test(flavor = "multi_thread")]
async fn batches_are_split_under_the_servers_max_payload() {
    let adfa = replay_traces();
    let conf = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(conf.path(), "max_payload: 4096\n").unwrap();
    let nats = NatsServer::start(&["-c", conf.path().to_str().unwrap()]);
    let c = client(&nats.url()).await;
    assert_eq!(c.server_info().max_payload, 4096);
    let hb = Heartbeats::watch(&c).await;
    let mut compute = Daisi::spawn(&compute_toml("cmp-s", &nats.url(), ""), &[]);
    hb.wait_for("cmp-s", "up", T, |_| true).await;
    // Batches of up to 1024 calls (several KiB) must be split to fit.
    let mut col = Daisi::spawn(
        &collector_toml("col-s", "web7", &nats.url(), &adfa, 30, ""),
        &[],
    );
    collector_done(&hb, "col-s", 30).await;
    assert!(col.stop(T).success());
    let f = hb.final_of("col-s", T).await;
    let events = f.counters["syscall_source.events"];
    let cmp = hb
        .wait_for("cmp-s", "all events", T, |h| {
            h.counters.get("syscall_buffer.events") == Some(&events)
        })
        .await;
    assert!(
        cmp.counters["inbound.received.syscall"] > f.counters["syscall_batcher.batches"],
        "more messages than batches: batches were split"
    );
    assert_eq!(f.counters["outbound.dropped"], 0);
    assert_eq!(f.counters["outbound.oversized"], 0);
    assert!(compute.stop(T).success());
}

#[tokio::test(flavor = "multi_thread")]
async fn compute_warns_when_a_collector_goes_silent() {
    let adfa = replay_traces();
    let nats = NatsServer::start(&[]);
    let c = client(&nats.url()).await;
    let hb = Heartbeats::watch(&c).await;
    let mut compute = Daisi::spawn(&compute_toml("cmp-w", &nats.url(), ""), &[]);
    hb.wait_for("cmp-w", "up", T, |_| true).await;
    let mut col = Daisi::spawn(
        &collector_toml("col-w", "web9", &nats.url(), &adfa, 1, ""),
        &[],
    );
    hb.wait_for("col-w", "up", T, |_| true).await;
    let until = std::time::Instant::now() + T;
    while !compute.log().contains("new node heard") {
        assert!(std::time::Instant::now() < until, "{}", compute.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Killed: no farewell heartbeat. silence_after is 2 s in these configs.
    col.stop_hard();
    while !compute.log().contains("node went silent") {
        assert!(std::time::Instant::now() < until, "{}", compute.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(compute.log().contains("col-w"));
    hb.wait_for("cmp-w", "silent gauge", T, |h| {
        h.queue_depths.get("heartbeat.silent_nodes") == Some(&1)
    })
    .await;
    assert!(compute.stop(T).success());
}

/// Over a secured server: a compute node and a collector configured with
/// `good` (environment) exchange batches; a collector with `bad` is refused
/// with an error containing `refusal`. `c` is the test's own client.
async fn secured_round_trip(
    c: async_nats::Client,
    url: &str,
    tag: &str,
    good: &[(&str, &str)],
    bad: &[(&str, &str)],
    refusal: &str,
) {
    let adfa = replay_traces();
    let hb = Heartbeats::watch(&c).await;
    let (cmp, col, rejected) = (
        format!("cmp-{tag}"),
        format!("col-{tag}"),
        format!("col-{tag}-bad"),
    );
    let mut compute = Daisi::spawn(&compute_toml(&cmp, url, ""), good);
    hb.wait_for(&cmp, "up", T, |_| true).await;

    let mut refused = Daisi::spawn(&collector_toml(&rejected, "web5", url, &adfa, 5, ""), bad);
    assert!(!refused.wait_exit(T).success());
    let log = refused.log();
    assert!(log.contains(refusal), "error names the cause: {log}");

    let mut collector = Daisi::spawn(&collector_toml(&col, "web5", url, &adfa, 5, ""), good);
    collector_done(&hb, &col, 5).await;
    hb.wait_for(&cmp, "batches from the authenticated collector", T, |h| {
        h.counters
            .get("inbound.received.syscall")
            .is_some_and(|&n| n >= 5)
    })
    .await;
    assert!(collector.stop(T).success());
    assert!(compute.stop(T).success());
}

#[tokio::test(flavor = "multi_thread")]
async fn user_password_auth_and_a_clear_error_for_wrong_credentials() {
    let nats = NatsServer::start(&["--user", "daisi", "--pass", "s3cret"]);
    let c = async_nats::ConnectOptions::with_user_and_password("daisi".into(), "s3cret".into())
        .connect(nats.url())
        .await
        .unwrap();
    let good = [
        ("DAISI__NATS__USER", "daisi"),
        ("DAISI__NATS__PASSWORD", "s3cret"),
    ];
    let bad = [
        ("DAISI__NATS__USER", "daisi"),
        ("DAISI__NATS__PASSWORD", "wrong"),
    ];
    secured_round_trip(c, &nats.url(), "auth", &good, &bad, "authorization failed").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn token_auth() {
    let nats = NatsServer::start(&["--auth", "t0ken"]);
    let c = async_nats::ConnectOptions::with_token("t0ken".into())
        .connect(nats.url())
        .await
        .unwrap();
    secured_round_trip(
        c,
        &nats.url(),
        "tok",
        &[("DAISI__NATS__TOKEN", "t0ken")],
        &[],
        "authorization failed",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn nkey_auth() {
    let user = nkeys::KeyPair::new_user();
    let seed = user.seed().unwrap();
    let conf = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        conf.path(),
        format!(
            "authorization {{ users = [ {{ nkey: \"{}\" }} ] }}\n",
            user.public_key()
        ),
    )
    .unwrap();
    let nats = NatsServer::start(&["-c", conf.path().to_str().unwrap()]);
    let c = async_nats::ConnectOptions::with_nkey(seed.clone())
        .connect(nats.url())
        .await
        .unwrap();
    // Another key is refused.
    let other = nkeys::KeyPair::new_user().seed().unwrap();
    let good = [("DAISI__NATS__NKEY_SEED", seed.as_str())];
    let bad = [("DAISI__NATS__NKEY_SEED", other.as_str())];
    secured_round_trip(c, &nats.url(), "nk", &good, &bad, "authorization failed").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_with_generated_certificates() {
    tls_provider();
    let certs = tempfile::tempdir().unwrap();
    make_certs(certs.path());
    let p = |f: &str| certs.path().join(f).display().to_string();
    let nats = NatsServer::start(&[
        "--tls",
        "--tlscert",
        &p("server.pem"),
        "--tlskey",
        &p("server.key"),
    ]);
    let url = format!("tls://127.0.0.1:{}", nats.port);
    let c = async_nats::ConnectOptions::new()
        .add_root_certificates(certs.path().join("ca.pem"))
        .connect(&url)
        .await
        .unwrap();
    // Without the CA the server certificate is not trusted: a clear error.
    let ca = p("ca.pem");
    secured_round_trip(
        c,
        &url,
        "tls",
        &[("DAISI__NATS__TLS__CA_FILE", ca.as_str())],
        &[],
        "TLS failed",
    )
    .await;
}
