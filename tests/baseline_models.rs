//! Per-program sequence models on a real compute node (real nats-server):
//! a program's batches, as a collector with live capture sends them, are
//! learnt; when learning ends the node trains the program's model, judges
//! the program's next batches by it, saves it beside the profile and loads
//! it again at its next start instead of training anew.

mod common;

use common::*;
use daisi::messages::{
    Envelope, Payload, ProcessInfo, SyscallAbi, SyscallBatch, SyscallEvent, SCHEMA_VERSION,
};
use std::time::Duration;

const T: Duration = Duration::from_secs(60);
const HOST: &str = "svc-host";
const EXE: &str = "/usr/bin/fakesvc";

/// The program's everyday work: two kinds of request in a random order
/// (x86_64 numbers: read, write, close, mmap, epoll_wait, openat, fstat).
fn everyday(n: usize, seed: u64) -> Vec<u32> {
    let a = [0u32, 1, 3, 9, 232, 0, 1, 3];
    let b = [0u32, 257, 5, 0, 3, 232];
    let mut x = seed;
    let mut out = Vec::new();
    while out.len() < n {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        out.extend(if x >> 63 == 0 { &a[..] } else { &b[..] });
    }
    out.truncate(n);
    out
}

/// A shell's worth of calls the program never makes (dup2, connect,
/// socket, bind, listen, accept, fork, wait4, kill...), and one it makes
/// (openat) out of its place.
const ODD: [u32; 15] = [33, 33, 33, 42, 41, 49, 50, 43, 2, 257, 257, 57, 61, 62, 56];

struct Sender {
    client: async_nats::Client,
    seq: u64,
}

impl Sender {
    /// One batch of process `pid` of the program (context: the previous
    /// batch's last calls).
    async fn batch(&mut self, pid: u32, context: &[u32], calls: &[u32]) {
        self.seq += 1;
        let env = Envelope {
            schema: SCHEMA_VERSION,
            node_id: "test-collector".into(),
            host: HOST.into(),
            seq: self.seq,
            ts_ns: 0,
            payload: Payload::SyscallBatch(SyscallBatch {
                host: HOST.into(),
                pid,
                tid: pid,
                comm: "fakesvc".into(),
                exe: Some(EXE.into()),
                abi: SyscallAbi::X86_64,
                context: context.to_vec(),
                events: calls
                    .iter()
                    .map(|&nr| SyscallEvent { nr, ts_ns: 0 })
                    .collect(),
                last: false,
                lineage: vec![
                    ProcessInfo {
                        pid,
                        ppid: Some(1),
                        name: "fakesvc".into(),
                        executable: Some(EXE.into()),
                        uid: Some(33),
                        ..Default::default()
                    },
                    ProcessInfo {
                        pid: 1,
                        name: "init".into(),
                        executable: Some("/sbin/init".into()),
                        uid: Some(0),
                        ..Default::default()
                    },
                ],
                activity: vec![],
            }),
        };
        self.client
            .publish(
                format!("daisi.v1.syscall.{HOST}.{pid}"),
                env.encode().into(),
            )
            .await
            .unwrap();
        self.client.flush().await.unwrap();
    }

    /// `calls` as 500-call batches of process `pid`.
    async fn run(&mut self, pid: u32, calls: &[u32]) {
        let mut prev: &[u32] = &[];
        for chunk in calls.chunks(500) {
            let ctx = &prev[prev.len().saturating_sub(6)..];
            self.batch(pid, ctx, chunk).await;
            prev = chunk;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_programs_model_is_trained_when_learning_ends_judges_and_is_loaded_again() {
    let nats = NatsServer::start(&[]);
    let client = async_nats::connect(nats.url()).await.unwrap();
    let hb = Heartbeats::watch(&client).await;
    let dir = tempfile::tempdir().unwrap();
    let baselines = dir.path().join("baselines");
    let alerts = dir.path().join("alerts.jsonl");
    let extra = format!(
        "jsonl = \"{}\"\n[baseline]\nlearn_for = \"3s\"\nsave_every = \"1s\"\n",
        alerts.display(),
    );
    let env = [("DAISI__BASELINE__DIR", baselines.to_str().unwrap())];
    let toml = compute_toml("models-a", &nats.url(), &extra);
    let mut node = Daisi::spawn(&toml, &env);
    hb.wait_for("models-a", "up", T, |_| true).await;
    let mut send = Sender { client, seq: 0 };

    // Learning: two processes of the program, 6,000 calls each.
    send.run(100, &everyday(6_000, 1)).await;
    send.run(101, &everyday(6_000, 2)).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    // The first batch after learning ends starts the training.
    send.run(102, &everyday(500, 3)).await;
    let h = hb
        .wait_for("models-a", "model trained", T, |h| {
            h.counters.get("baseline.models_trained") == Some(&1)
        })
        .await;
    assert_eq!(h.counters.get("baseline.model_errors"), Some(&0));
    // Everyday work in an order never sent: nothing. A run of odd calls:
    // a finding from the program's model.
    send.run(103, &everyday(2_000, 4)).await;
    let mut attack = everyday(100, 5);
    attack.extend(ODD);
    attack.extend(everyday(100, 6));
    send.run(104, &attack).await;
    let a = wait_for_alert(
        &alerts,
        T,
        |a| a.to_string().contains("baseline.sequence"),
        "no finding for the odd calls",
        || node.log(),
    );
    let text = a.to_string();
    assert!(text.contains("its sequence model finds unlikely"), "{a:#}");
    assert!(
        text.contains("pid 104") || a["process"]["pid"] == 104,
        "{a:#}"
    );
    assert!(node.stop(T).success(), "{}", node.log());
    let all = read_alerts(&alerts);
    assert!(
        all.iter().all(|x| !x.to_string().contains("\"pid\":103")),
        "everyday work alerted: {all:#?}"
    );
    let path = baselines.join(format!("{HOST}.json"));
    let profile = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        let listed: Vec<_> = std::fs::read_dir(&baselines)
            .into_iter()
            .flatten()
            .collect();
        panic!("{}: {e}; {listed:?}\n{}", path.display(), node.log())
    });
    let profile: serde_json::Value = serde_json::from_str(&profile).unwrap();
    let lm = &profile["sequences"][EXE]["lm"];
    assert!(lm["trained"].as_u64().unwrap() > 2_000, "{lm}");
    assert!(
        profile["sequences"][EXE].get("sample").is_none(),
        "the sample goes once the model is saved"
    );
    let weights = baselines
        .join(format!("{HOST}.lm"))
        .join(lm["file"].as_str().unwrap());
    assert!(weights.is_file(), "{}", weights.display());

    // Started again: the model is loaded, not trained anew, and judges.
    let alerts2 = dir.path().join("alerts2.jsonl");
    let toml2 = compute_toml(
        "models-b",
        &nats.url(),
        &extra.replace(alerts.to_str().unwrap(), alerts2.to_str().unwrap()),
    );
    let mut node = Daisi::spawn(&toml2, &env);
    hb.wait_for("models-b", "up", T, |_| true).await;
    send.run(105, &attack).await;
    let a = wait_for_alert(
        &alerts2,
        T,
        |a| a.to_string().contains("baseline.sequence"),
        "no finding from the loaded model",
        || node.log(),
    );
    assert!(
        a.to_string().contains("its sequence model finds unlikely"),
        "{a:#}"
    );
    let h = hb
        .wait_for("models-b", "counted", T, |h| {
            h.counters.contains_key("baseline.models_trained")
        })
        .await;
    assert_eq!(
        h.counters["baseline.models_trained"], 0,
        "loaded, not trained"
    );
    assert_eq!(h.counters["baseline.model_errors"], 0);
    assert!(node.stop(T).success(), "{}", node.log());
}
