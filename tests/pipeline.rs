//! The `both` role in-process: supervision, backpressure and detection,
//! through the same actors a deployed node runs.

mod common;

use actix::prelude::*;
use daisi::actors::runtime::mailbox::{Edge, Overflow};
use daisi::actors::runtime::supervision::InjectFault;
use daisi::config::Config;
use daisi::metrics::Metrics;
use daisi::node::Node;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn config(toml: &str) -> Config {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(toml.as_bytes()).unwrap();
    Config::load_from(None, Some(f.path()), &[], None).unwrap_or_else(|e| panic!("{e}"))
}

fn replay_toml(adfa: &Path, filter: &str, traces: usize, extra: &str) -> String {
    format!(
        r#"
[node]
role = "both"
[heartbeat]
interval = "200ms"
silence_after = "1s"
[syscall_source]
kind = "replay"
path = "{}"
filter = "{filter}"
max_traces = {traces}
{extra}
"#,
        adfa.display()
    )
}

async fn wait_until(what: &str, timeout: Duration, f: impl Fn() -> bool) {
    let until = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[test]
fn failed_actors_are_restarted_and_processing_goes_on() {
    let adfa = common::replay_traces();
    let cfg = config(&replay_toml(
        &adfa,
        "Training_Data_Master/",
        300,
        "[alert]\nconsole = false\n",
    ));
    actix::System::new().block_on(async move {
        let m = Metrics::new();
        let node = Node::start(cfg, m.clone()).await.unwrap();
        wait_until("some progress", Duration::from_secs(30), || {
            m.get("syscall_source.traces") >= 30
        })
        .await;
        node.batcher
            .as_ref()
            .unwrap()
            .send(InjectFault)
            .await
            .unwrap();
        node.buffer
            .as_ref()
            .unwrap()
            .send(InjectFault)
            .await
            .unwrap();
        node.classifier
            .as_ref()
            .unwrap()
            .send(InjectFault)
            .await
            .unwrap();
        node.inbound
            .as_ref()
            .unwrap()
            .send(InjectFault)
            .await
            .unwrap();
        node.alert
            .as_ref()
            .unwrap()
            .send(InjectFault)
            .await
            .unwrap();
        wait_until("replay done", Duration::from_secs(60), || {
            m.get("syscall_source.traces") == 300
        })
        .await;
        assert!(node.shutdown().await, "drained within the deadline");
        for a in [
            "syscall_batcher",
            "syscall_buffer",
            "syscall_classifier",
            "inbound",
            "alert",
        ] {
            assert_eq!(
                m.get(&format!("actor.{a}.restarts")),
                1,
                "{a} restarted once"
            );
        }
        // Nothing was lost across the restarts.
        assert_eq!(
            m.get("syscall_buffer.events"),
            m.get("syscall_source.events")
        );
        assert_eq!(
            m.get("syscall_classifier.windows"),
            m.get("syscall_buffer.windows")
        );
        assert!(m.get("syscall_source.events") > 50_000);
    });
}

/// A consumer that takes `delay` per message.
struct Slow {
    delay: Duration,
    capacity: usize,
    handled: Arc<AtomicU64>,
}

impl Actor for Slow {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(self.capacity);
    }
}

#[derive(Message)]
#[rtype(result = "()")]
struct Work(#[allow(dead_code)] Vec<u8>);

impl Handler<Work> for Slow {
    type Result = ();
    fn handle(&mut self, _: Work, _: &mut Context<Self>) {
        std::thread::sleep(self.delay);
        self.handled.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn block_policy_holds_the_producer_back_and_loses_nothing() {
    actix::System::new().block_on(async {
        let m = Metrics::new();
        let handled = Arc::new(AtomicU64::new(0));
        let capacity = 4;
        let slow = Arbiter::new();
        let h = handled.clone();
        let addr = Slow::start_in_arbiter(&slow.handle(), move |_| Slow {
            delay: Duration::from_millis(2),
            capacity,
            handled: h,
        });
        let edge = Edge::new("slow", addr.recipient(), Overflow::Block, &m);
        let mut max_ahead = 0;
        for i in 0..300u64 {
            edge.push(Work(vec![0; 4096])).await.unwrap();
            max_ahead = max_ahead.max(i + 1 - handled.load(Ordering::SeqCst));
        }
        // The producer can only be as far ahead as the mailbox holds.
        assert!(
            max_ahead <= capacity as u64 + 2,
            "producer ran {max_ahead} ahead"
        );
        assert_eq!(m.get("edge.slow.sent"), 300);
        assert_eq!(m.get("edge.slow.dropped"), 0);
        assert_eq!(handled.load(Ordering::SeqCst), 300);
        slow.stop();
    });
}

#[test]
fn drop_policy_counts_every_drop() {
    actix::System::new().block_on(async {
        let m = Metrics::new();
        let handled = Arc::new(AtomicU64::new(0));
        let slow = Arbiter::new();
        let h = handled.clone();
        let addr = Slow::start_in_arbiter(&slow.handle(), move |_| Slow {
            delay: Duration::from_millis(2),
            capacity: 4,
            handled: h,
        });
        let edge = Edge::new("lossy", addr.recipient(), Overflow::DropNewest, &m);
        for _ in 0..300 {
            edge.push(Work(vec![0; 4096])).await.unwrap();
        }
        let (sent, dropped) = (m.get("edge.lossy.sent"), m.get("edge.lossy.dropped"));
        assert_eq!(sent + dropped, 300);
        assert!(
            dropped > 0,
            "a 2 ms consumer cannot keep up with a tight loop"
        );
        let until = Instant::now() + Duration::from_secs(10);
        while handled.load(Ordering::SeqCst) < sent {
            assert!(Instant::now() < until);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(
            handled.load(Ordering::SeqCst),
            sent,
            "what was accepted was handled"
        );
        slow.stop();
    });
}

#[test]
fn tiny_mailboxes_slow_the_pipeline_down_without_losing_data() {
    let adfa = common::replay_traces();
    let tiny = "[alert]\nconsole = false\n[alert.mailbox]\ncapacity = 1\n\
                [syscall_batcher.mailbox]\ncapacity = 1\n[syscall_buffer]\nmax_batch = 64\n\
                [syscall_buffer.mailbox]\ncapacity = 1\n[syscall_classifier.mailbox]\ncapacity = 1\n\
                [inbound.mailbox]\ncapacity = 1\n[outbound.mailbox]\ncapacity = 1\n";
    let cfg = config(&replay_toml(&adfa, "Validation_Data_Master/", 200, tiny));
    actix::System::new().block_on(async move {
        let m = Metrics::new();
        let node = Node::start(cfg, m.clone()).await.unwrap();
        wait_until("replay done", Duration::from_secs(60), || {
            m.get("syscall_source.traces") == 200
        })
        .await;
        assert!(node.shutdown().await);
        assert_eq!(
            m.get("syscall_buffer.events"),
            m.get("syscall_source.events")
        );
        let dropped: u64 = m
            .counters()
            .iter()
            .filter(|(k, _)| k.ends_with(".dropped") && !k.contains("heartbeat"))
            .map(|(_, v)| v)
            .sum();
        assert_eq!(dropped, 0, "block edges never drop: {:?}", m.counters());
    });
}

/// Replays ADFA-LD traces through the full pipeline and returns the
/// executables (trace names) the JSON Lines sink alerted on.
fn alerted_traces(adfa: &Path, filter: &str, traces: usize) -> std::collections::BTreeSet<String> {
    let dir = tempfile::tempdir().unwrap();
    let jsonl = dir.path().join("alerts.jsonl");
    let extra = format!(
        "[alert]\nconsole = false\njsonl = \"{}\"\n",
        jsonl.display()
    );
    let cfg = config(&replay_toml(adfa, filter, traces, &extra));
    let m = Metrics::new();
    let m2 = m.clone();
    actix::System::new().block_on(async move {
        let node = Node::start(cfg, m2.clone()).await.unwrap();
        wait_until("replay done", Duration::from_secs(300), || {
            m2.get("syscall_source.traces") == traces as u64
        })
        .await;
        assert!(node.shutdown().await);
    });
    let text = std::fs::read_to_string(&jsonl).unwrap_or_default();
    let mut exes = std::collections::BTreeSet::new();
    let mut ids: std::collections::BTreeMap<String, String> = Default::default();
    for line in text.lines() {
        let a: daisi::messages::Alert =
            serde_json::from_str(line).expect("alert lines are JSON alerts");
        if let Some(exe) = ids.get(&a.id) {
            // The update of a folded alert (a long process judged again
            // within the cooldown): same id and process, its count.
            assert!(a.count > 1, "{a:?}");
            assert_eq!(a.exe(), Some(exe.as_str()));
            continue;
        }
        let exe = a
            .exe()
            .expect("process alerts name the executable")
            .to_string();
        ids.insert(a.id.clone(), exe.clone());
        assert_eq!(a.module, daisi::messages::AlertModule::Syscall);
        assert!(a.score > a.threshold);
        let w = a.window.as_ref().expect("the most anomalous window");
        assert!(!w.calls.is_empty() && w.windows > 0, "{a:?}");
        assert!(a.summary.contains("most unusual"), "{}", a.summary);
        assert!(exes.insert(exe), "one alert per process");
    }
    assert_eq!(exes.len() as u64, m.get("alert.raised"));
    exes
}

/// The decisions `daisi eval syscall` measures: trace score above threshold;
/// and the traces whose score is within float rounding of the threshold
/// (batched and single inference may differ in the last bits).
fn offline_decisions(
    adfa: &Path,
    filter: &str,
) -> (
    std::collections::BTreeSet<String>,
    std::collections::BTreeSet<String>,
) {
    let model = daisi::models::load_syscall_model(Path::new("models/syscall")).unwrap();
    let w = model.meta.window;
    let mut out = std::collections::BTreeSet::new();
    let mut borderline = std::collections::BTreeSet::new();
    for t in daisi::traces::read_traces(adfa, filter).unwrap() {
        let tokens: Vec<u32> = t
            .calls
            .iter()
            .map(|&nr| model.vocab.token(daisi::messages::SyscallAbi::I386, nr))
            .collect();
        let mut s = vec![];
        model
            .scorer
            .score(&daisi::models::trace_windows(&tokens, w), w, &mut s);
        let score = daisi::models::mean(&s);
        if (score - model.meta.threshold).abs() < 1e-5 {
            borderline.insert(t.name.clone());
        }
        if score > model.meta.threshold {
            out.insert(t.name);
        }
    }
    (out, borderline)
}

#[test]
fn live_alerts_match_the_evaluated_decisions_on_all_of_adfa() {
    let Some(adfa) = common::adfa() else { return };
    let mut totals = vec![];
    for (filter, traces) in [
        ("Attack_Data_Master/", 746),
        ("Validation_Data_Master/", 4372),
    ] {
        let live = alerted_traces(&adfa, filter, traces);
        let (offline, borderline) = offline_decisions(&adfa, filter);
        let differ: Vec<_> = live
            .symmetric_difference(&offline)
            .filter(|t| !borderline.contains(*t))
            .collect();
        assert!(
            differ.is_empty(),
            "{filter}: live and evaluated decisions differ on {differ:?}"
        );
        assert!(borderline.len() <= 2, "{borderline:?}");
        totals.push(live.len() as f64 / traces as f64);
    }
    eprintln!("alerted: attacks {:.3}, normal {:.3}", totals[0], totals[1]);
    assert!(
        totals[0] > 2.0 * totals[1],
        "detection well above false alarms: {totals:?}"
    );
}
