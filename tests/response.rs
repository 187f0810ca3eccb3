//! Response across NATS: compute nodes send commands on
//! `daisi.v1.command.<host>`, only that host's collector executes them, with
//! its own safeguards, and every command gets an outcome back.

mod common;

use common::*;
use daisi::messages::{Action, Alert, Command, Envelope, Payload, Severity, SCHEMA_VERSION};
use futures::StreamExt;
use std::path::{Path, PathBuf};
use std::process::Command as Proc;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(30);

fn alert_about(host: &str, pid: u32) -> Alert {
    Alert {
        id: format!("alert-{pid}"),
        ts_ns: 1,
        node_id: "compute-test".into(),
        process: Some(daisi::messages::ProcessFields {
            pid,
            ..Default::default()
        }),
        score: 9.0,
        threshold: 1.0,
        model: "test".into(),
        first_seen_ns: 1,
        last_seen_ns: 1,
        ..Alert::new(
            daisi::messages::AlertModule::Syscall,
            host,
            format!("pid:{pid}"),
            Severity::High,
        )
    }
}

/// A command envelope as a compute node would send it (`age`: how long ago).
fn command(
    id: &str,
    target: &str,
    about: &str,
    pid: u32,
    action: Action,
    age: Duration,
) -> Vec<u8> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    Envelope {
        schema: SCHEMA_VERSION,
        node_id: "compute-test".into(),
        host: "computehost".into(),
        seq: 1,
        ts_ns: now - age.as_nanos() as u64,
        payload: Payload::Command(Command {
            id: id.into(),
            target_host: target.into(),
            action,
            dry_run: false,
            block_for_s: 60,
            alert: alert_about(about, pid),
            protect: vec![],
        }),
    }
    .encode()
}

/// The collector of host `web1`, response enabled and acting;
/// `nats`: more `[nats]` keys; `extra`: more of `[alert.response]`, then
/// further sections.
/// The broker's token in the tests whose nodes act on commands.
const TOKEN: &str = "response-test-token";

fn web1_collector(url: &str, nats: &str, extra: &str) -> Daisi {
    let d = Daisi::spawn(
        &format!(
            r#"
[node]
role = "collector"
id = "web1-collector"
host = "web1"
[nats]
servers = ["{url}"]
{nats}
[alert.response]
enabled = true
dry_run = false
{extra}
"#
        ),
        &[],
    );
    d.wait_running();
    d
}

/// A collector of host `web1`: a command to stop a process is carried out
/// once (a redelivery is not), an allowlisted process, PID 1 and a stale
/// command are refused with a reason, a command for another host published
/// on web1's subject is rejected, and each executed or refused command is
/// answered on `daisi.v1.outcome.web1`.
#[tokio::test(flavor = "multi_thread")]
async fn a_collector_runs_only_its_own_commands_and_answers_each() {
    // A node that acts on commands needs broker authentication.
    let nats = NatsServer::start(&["--auth", TOKEN]);
    let c = async_nats::ConnectOptions::with_token(TOKEN.into())
        .connect(nats.url())
        .await
        .unwrap();
    let mut outcomes = c.subscribe("daisi.v1.outcome.web1").await.unwrap();
    let mut target = Proc::new("sleep").arg("300").spawn().unwrap();
    let mut allowed = Proc::new("sleep").arg("300").spawn().unwrap();
    let (tp, ap) = (target.id(), allowed.id());
    let mut collector = web1_collector(
        &nats.url(),
        &format!("token = \"{TOKEN}\""),
        &format!("allow_pids = [{ap}]"),
    );
    let subject = "daisi.v1.command.web1";
    let now = Duration::ZERO;
    let sends = [
        command("k1", "web1", "web1", tp, Action::Stop, now),
        command("k1", "web1", "web1", tp, Action::Stop, now), // redelivered
        command("k2", "web1", "web1", ap, Action::Kill, now),
        command("k3", "web1", "web1", 1, Action::Kill, now),
        command(
            "k4",
            "web1",
            "web1",
            tp,
            Action::Kill,
            Duration::from_secs(600),
        ),
        command("k5", "db1", "db1", tp, Action::Kill, now), // not web1's
    ];
    for bytes in sends {
        c.publish(subject, bytes.into()).await.unwrap();
    }
    c.flush().await.unwrap();
    let mut got = std::collections::BTreeMap::new();
    while got.len() < 4 {
        let m = tokio::time::timeout(T, outcomes.next())
            .await
            .expect("an outcome for every command")
            .unwrap();
        let env = Envelope::decode(&m.payload, 1 << 20).unwrap();
        let Payload::Outcome(o) = env.payload else {
            panic!("not an outcome: {env:?}")
        };
        assert_eq!(o.module, daisi::messages::AlertModule::Response);
        assert_eq!((o.host.as_str(), env.host.as_str()), ("web1", "web1"));
        let detail = o.response.as_ref().expect("what was done").detail.clone();
        assert!(got.insert(o.id.clone(), detail).is_none(), "{got:?}");
    }
    assert!(
        got["k1"].starts_with(&format!("stopped process {tp}")),
        "{got:?}"
    );
    assert!(got["k2"].contains("allowlisted; left alone"), "{got:?}");
    assert!(got["k3"].contains("process 1 is protected"), "{got:?}");
    assert!(got["k4"].contains("longer than max_command_age"), "{got:?}");
    assert!(
        wait_stopped(tp),
        "the target is stopped: {}",
        process_state(tp)
    );
    assert_ne!(process_state(ap), "T", "the allowlisted process runs");
    // Nothing else arrives: not the duplicate, not the other host's command.
    assert!(
        tokio::time::timeout(Duration::from_millis(500), outcomes.next())
            .await
            .is_err()
    );
    assert!(collector.stop(T).success());
    let log = collector.log();
    assert_eq!(drained_counter(&log, "command.received"), 5, "{log}");
    assert_eq!(drained_counter(&log, "command.duplicates"), 1);
    assert_eq!(drained_counter(&log, "command.executed"), 1);
    assert_eq!(drained_counter(&log, "command.refused"), 3);
    assert_eq!(
        drained_counter(&log, "command.rejected.subject_mismatch"),
        1
    );
    for p in [&mut target, &mut allowed] {
        let _ = p.kill();
        let _ = p.wait();
    }
}

/// A cgroup of our own for a test process, on the cgroup v2 hierarchy when
/// there is one, else under the v1 freezer; removed on drop.
struct TestCgroup {
    dir: PathBuf,
    /// Control file, frozen value, thawed value.
    control: (&'static str, &'static str, &'static str),
}

impl TestCgroup {
    fn create(name: &str) -> Option<TestCgroup> {
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
        let mount = |want: &dyn Fn(&str, &str) -> bool| {
            mounts.lines().find_map(|l| {
                let (pre, post) = l.split_once(" - ")?;
                let point = pre.split_whitespace().nth(4)?;
                let mut post = post.split_whitespace();
                let (t, opts) = (post.next()?, post.nth(1).unwrap_or(""));
                want(t, opts).then(|| PathBuf::from(point))
            })
        };
        let (base, control) = match mount(&|t, _| t == "cgroup2") {
            Some(p) => (p, ("cgroup.freeze", "1", "0")),
            None => (
                mount(&|t, o| t == "cgroup" && o.split(',').any(|o| o == "freezer"))?,
                ("freezer.state", "FROZEN", "THAWED"),
            ),
        };
        let dir = base.join(name);
        let _ = std::fs::remove_dir(&dir);
        std::fs::create_dir(&dir).ok()?;
        Some(TestCgroup { dir, control })
    }

    fn frozen(&self) -> bool {
        let v = std::fs::read_to_string(self.dir.join(self.control.0)).unwrap_or_default();
        v.trim() == self.control.1
    }

    fn procs(&self) -> Vec<u32> {
        std::fs::read_to_string(self.dir.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        let _ = std::fs::write(self.dir.join(self.control.0), self.control.2);
        for p in self.procs() {
            let _ = Proc::new("kill").args(["-KILL", &p.to_string()]).status();
        }
        let until = Instant::now() + Duration::from_secs(5);
        while std::fs::remove_dir(&self.dir).is_err() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// End to end over NATS, as root: a collector on host `web1` captures a
/// process with eBPF; a compute node scores it (threshold forced to 0: what
/// is tested is the response), its rule says `freeze`, it sends the command
/// to web1, web1's collector freezes the process's cgroup and the outcome
/// lands in the compute node's alert file.
#[test]
fn a_compute_node_has_a_collector_freeze_a_process_cgroup() {
    if !root("needs root (eBPF capture, cgroups)") {
        return;
    }
    let Some(cg) = TestCgroup::create(&format!("daisi-test-{}", std::process::id())) else {
        require(
            Prereq::Root,
            false,
            "no writable cgroup hierarchy with a freezer",
        );
        return;
    };
    let nats = NatsServer::start(&["--auth", TOKEN]);
    let dir = tempfile::tempdir().unwrap();
    let alerts = dir.path().join("alerts.jsonl");
    let mut compute = Daisi::spawn(
        &compute_toml(
            "compute1",
            &nats.url(),
            &format!(
                r#"horizon = 200
jsonl = "{}"
[alert.response]
enabled = true
dry_run = false
[[alert.response.rules]]
module = "syscall"
min_severity = "medium"
action = "freeze"
[syscall_classifier]
# Live processes are judged by an explicitly configured model only.
model = "models/syscall"
threshold = 0.0
"#,
                alerts.display()
            ),
        ),
        &[("DAISI__NATS__TOKEN", TOKEN)],
    );
    let mut collector = web1_collector(
        &nats.url(),
        &format!("token = \"{TOKEN}\""),
        "[syscall_source]\nkind = \"ebpf\"\ncomms = [\"dd\"]",
    );
    compute.wait_running();
    // dd joins the test cgroup before it execs, so all of it is watched there.
    let mut dd = Proc::new("sh")
        .arg("-c")
        .arg(format!(
            "echo $$ > {}/cgroup.procs && exec dd if=/dev/zero of=/dev/null bs=1 count=200000000",
            cg.dir.display()
        ))
        .spawn()
        .unwrap();
    let pid = dd.id();
    let response = wait_for_alert(
        &alerts,
        T,
        |a| a["module"] == "response" && a["process"]["pid"].as_u64() == Some(pid as u64),
        "no response",
        || {
            format!(
                "compute:\n{}\ncollector:\n{}",
                compute.log(),
                collector.log()
            )
        },
    );
    let what = response["response"]["detail"].as_str().unwrap().to_string();
    assert_eq!(response["host"], "web1", "{response}");
    assert_eq!(response["node_id"], "web1-collector", "the collector acted");
    assert!(what.starts_with("froze cgroup"), "{what}");
    assert!(what.contains(&cg.dir.display().to_string()), "{what}");
    assert!(cg.frozen(), "{what}");
    assert!(cg.procs().contains(&pid));
    assert!(collector.stop(T).success());
    assert!(compute.stop(T).success());
    let (clog, mlog) = (collector.log(), compute.log());
    assert!(drained_counter(&clog, "command.executed") >= 1, "{clog}");
    assert_eq!(drained_counter(&clog, "command.refused"), 0, "{clog}");
    assert!(drained_counter(&mlog, "alert.commands_sent") >= 1, "{mlog}");
    assert_eq!(
        drained_counter(&mlog, "alert.response_outcomes"),
        drained_counter(&clog, "command.received"),
        "every command the collector took was answered"
    );
    drop(cg); // thaws and kills dd
    let _ = dd.wait();
}

/// The broker enforces who may command: with `config/nats-permissions.conf`
/// a collector's credentials cannot publish a command (not even for its own
/// host), a compute node's can, and the collector runs with its own
/// restricted user.
#[tokio::test(flavor = "multi_thread")]
async fn only_compute_credentials_can_send_commands() {
    let conf = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/nats-permissions.conf");
    let nats = NatsServer::start(&["-c", conf.to_str().unwrap()]);
    let url = nats.url();
    let connect = |user: &'static str, password: &'static str| {
        let url = url.clone();
        async move {
            async_nats::ConnectOptions::with_user_and_password(user.into(), password.into())
                .connect(url)
                .await
                .unwrap()
        }
    };
    let compute = connect("compute", "change-me-compute").await;
    let mut outcomes = compute.subscribe("daisi.v1.outcome.web1").await.unwrap();
    compute.flush().await.unwrap();
    let mut target = Proc::new("sleep").arg("300").spawn().unwrap();
    let tp = target.id();
    let mut collector = web1_collector(
        &url,
        "user = \"collector-web1\"\npassword = \"change-me-web1\"",
        "",
    );
    let subject = "daisi.v1.command.web1";
    // With a collector's credentials: refused by the broker.
    let forger = connect("collector-web1", "change-me-web1").await;
    let bytes = command("f1", "web1", "web1", tp, Action::Stop, Duration::ZERO);
    forger.publish(subject, bytes.into()).await.unwrap();
    let _ = forger.flush().await;
    assert!(
        tokio::time::timeout(Duration::from_secs(1), outcomes.next())
            .await
            .is_err(),
        "a command sent with collector credentials was delivered"
    );
    assert_ne!(process_state(tp), "T");
    // With compute credentials: carried out and answered.
    let bytes = command("c1", "web1", "web1", tp, Action::Stop, Duration::ZERO);
    compute.publish(subject, bytes.into()).await.unwrap();
    compute.flush().await.unwrap();
    let m = tokio::time::timeout(T, outcomes.next())
        .await
        .expect("the outcome of the compute node's command")
        .unwrap();
    let Payload::Outcome(o) = Envelope::decode(&m.payload, 1 << 20).unwrap().payload else {
        panic!("not an outcome")
    };
    assert_eq!(o.id, "c1");
    let r = o.response.as_ref().expect("what was done");
    assert!(r.done && r.detail.starts_with("stopped process"), "{r:?}");
    assert!(wait_stopped(tp), "{}", process_state(tp));
    assert!(collector.stop(T).success());
    assert_eq!(drained_counter(&collector.log(), "command.received"), 1);
    let _ = target.kill();
    let _ = target.wait();
}
