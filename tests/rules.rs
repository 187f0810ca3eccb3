//! Sigma rules nobody here wrote (SigmaHQ's Linux and web rules, from
//! `../shared/datasets/sigma`): which a node judges, and a rule's alert
//! from a live batch through a real broker and compute node.

mod common;

use common::{compute_toml, drained_counter, Daisi, NatsServer, Prereq};
use daisi::messages::{
    Activity, ActivityEvent, Envelope, Payload, ProcessInfo, SyscallAbi, SyscallBatch,
    SCHEMA_VERSION,
};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

fn sigma() -> Option<PathBuf> {
    let p = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/datasets/sigma/rules"
    ));
    common::require(
        Prereq::Data,
        p.is_dir(),
        "SigmaHQ's rules in ../shared/datasets/sigma",
    )
    .then_some(p)
}

/// `daisi rules check` on SigmaHQ's Linux and web rules: the
/// process_creation, file_event and network_connection rules that use only
/// the fields daisi fills are loaded, every other rule is listed with its
/// reason.
#[test]
fn sigmahqs_rules_are_loaded_or_listed_with_a_reason() {
    let Some(rules) = sigma() else { return };
    let out = Command::new(common::daisi_bin())
        .args(["rules", "check", "--min-level", "informational"])
        .arg(rules.join("linux"))
        .arg(rules.join("web"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{text}");
    let count = |prefix: &str| -> usize {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix))
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no {prefix:?} in {text}"))
    };
    let (loaded, not) = (count("loaded:"), count("not judged:"));
    let files = walk(&rules);
    assert_eq!(
        loaded + not,
        files,
        "every rule is loaded or listed: {text}"
    );
    let pc = count("process_creation");
    assert!(pc >= 80, "process_creation rules loaded: {pc}\n{text}");
    assert!(text.contains("linux/process_creation/-"), "{text}");
    // Every file_event rule (their fields are all filled); the
    // network_connection rules that do not need a host name.
    let on_disk = |dir: &str| walk(&rules.join("linux").join(dir));
    assert_eq!(count("file_event"), on_disk("file_event"), "{text}");
    assert!(count("network_connection") >= 2, "{text}");
    assert!(
        text.contains("fields not filled: DestinationHostname"),
        "{text}"
    );
}

fn walk(p: &std::path::Path) -> usize {
    std::fs::read_dir(p)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| match p.is_dir() {
            true => walk(&p),
            false => usize::from(p.extension().is_some_and(|e| e == "yml" || e == "yaml")),
        })
        .sum()
}

/// A compute node with SigmaHQ's process_creation and file_event rules: a
/// live batch of `cp /tmp/shadow …` (SigmaHQ's "Copy Passwd Or Shadow From
/// TMP Path") raises the rule's alert, with its id, level and ATT&CK
/// technique, in the process's incident; a process that writes
/// `/etc/sudoers.d/…` raises "Persistence Via Sudoers Files", and once an
/// operator accepts that for the program on the host, no longer; an
/// ordinary `cp` raises nothing.
#[tokio::test(flavor = "multi_thread")]
async fn a_sigma_rule_raises_its_alert_from_a_live_process() {
    let Some(rules) = sigma() else { return };
    let nats = NatsServer::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let alerts = dir.path().join("alerts.jsonl");
    let mut node = Daisi::spawn(
        &compute_toml(
            "compute-rules",
            &nats.url(),
            &format!(
                "jsonl = \"{}\"\n[rules]\npaths = [\"{}\", \"{}\"]\n",
                alerts.display(),
                rules.join("linux/process_creation").display(),
                rules.join("linux/file_event").display()
            ),
        ),
        &[(
            "DAISI__BASELINE__DIR",
            dir.path().join("b").to_str().unwrap(),
        )],
    );
    node.wait_running();
    assert!(node.log().contains("Sigma rules loaded"), "{}", node.log());
    let client = async_nats::connect(nats.url()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let batch = |pid: u32, args: &[&str]| SyscallBatch {
        host: "web1".into(),
        pid,
        tid: pid,
        comm: "cp".into(),
        exe: Some("/usr/bin/cp".into()),
        abi: SyscallAbi::X86_64,
        context: vec![],
        events: vec![],
        last: true,
        lineage: vec![
            ProcessInfo {
                pid,
                ppid: Some(200),
                name: "cp".into(),
                executable: Some("/usr/bin/cp".into()),
                args: args.iter().map(|a| a.to_string()).collect(),
                start_ns: Some(1),
                ..Default::default()
            },
            ProcessInfo {
                pid: 200,
                ppid: Some(1),
                name: "sh".into(),
                executable: Some("/usr/bin/dash".into()),
                ..Default::default()
            },
        ],
        activity: vec![],
    };
    let mut writer = batch(302, &["cp", "/tmp/x", "/var/tmp/y"]);
    writer.activity = vec![ActivityEvent {
        pid: 302,
        ts_ns: 1,
        what: Activity::Open {
            path: "/etc/sudoers.d/backdoor".into(),
            write: true,
        },
    }];
    for (seq, b) in [
        (1, batch(300, &["cp", "/tmp/shadow", "/var/www/s"])),
        (2, batch(301, &["cp", "/var/www/a.html", "/var/www/b.html"])),
        (3, writer),
    ] {
        let env = Envelope {
            schema: SCHEMA_VERSION,
            node_id: "web1-c".into(),
            host: "web1".into(),
            seq,
            ts_ns: 1,
            payload: Payload::SyscallBatch(b.clone()),
        };
        js.publish(
            format!("daisi.v1.syscall.web1.{}", b.pid),
            env.encode().into(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    }
    let a = common::wait_for_alert(
        &alerts,
        Duration::from_secs(20),
        |a| {
            a["tree"]
                .as_array()
                .is_some_and(|t| t.iter().any(|m| m["pid"] == 300))
        },
        "no alert for the copied shadow",
        || node.log(),
    );
    let w = common::wait_for_alert(
        &alerts,
        Duration::from_secs(20),
        |a| {
            a["tree"]
                .as_array()
                .is_some_and(|t| t.iter().any(|m| m["pid"] == 302))
        },
        "no alert for the sudoers file",
        || node.log(),
    );
    // The operator accepts that cp writes sudoers files on web1 (what
    // `daisi baseline accept` writes): the next one raises nothing.
    let b = dir.path().join("b");
    let mut accepted = daisi::baseline::Accepted::default();
    accepted.add(
        "web1",
        "/usr/bin/cp",
        daisi::messages::Behaviour::MatchesRule("ddb26b76-4447-4807-871f-1b035b2bfa5d".into()),
    );
    std::fs::create_dir_all(&b).unwrap();
    accepted.save(&daisi::baseline::Accepted::path(&b)).unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut again = batch(303, &["cp", "/tmp/x", "/var/tmp/y"]);
    again.activity = vec![ActivityEvent {
        pid: 303,
        ts_ns: 1,
        what: Activity::Open {
            path: "/etc/sudoers.d/backdoor".into(),
            write: true,
        },
    }];
    let env = Envelope {
        schema: SCHEMA_VERSION,
        node_id: "web1-c".into(),
        host: "web1".into(),
        seq: 4,
        ts_ns: 1,
        payload: Payload::SyscallBatch(again),
    };
    js.publish("daisi.v1.syscall.web1.303", env.encode().into())
        .await
        .unwrap()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(node.stop(Duration::from_secs(20)).success());
    assert_eq!(
        drained_counter(&node.log(), "rules.accepted"),
        1,
        "{}",
        node.log()
    );
    let member = w["tree"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["pid"] == 302)
        .unwrap();
    assert_eq!(
        member["findings"][0]["rule"]["id"], "ddb26b76-4447-4807-871f-1b035b2bfa5d",
        "{w:#}"
    );
    assert!(
        member["findings"][0]["summary"]
            .as_str()
            .unwrap()
            .ends_with("wrote /etc/sudoers.d/backdoor"),
        "{w:#}"
    );
    let member = a["tree"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["pid"] == 300)
        .unwrap();
    let f = &member["findings"][0];
    assert_eq!(f["module"], "sigma", "{a:#}");
    assert_eq!(
        f["rule"]["id"], "fa4aaed5-4fe0-498d-bbc0-08e3346387ba",
        "{a:#}"
    );
    assert_eq!(f["severity"], "high", "{a:#}");
    let all = common::read_alerts(&alerts);
    assert!(
        !all.iter().any(|a| a.to_string().contains("\"pid\":301")),
        "an ordinary cp alerted: {all:#?}"
    );
    assert_eq!(
        drained_counter(&node.log(), "rules.activities"),
        2,
        "{}",
        node.log()
    );
    assert_eq!(
        drained_counter(&node.log(), "rules.processes"),
        4,
        "{}",
        node.log()
    );
}
