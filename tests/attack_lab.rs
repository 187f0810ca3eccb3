//! The ATT&CK lab, short: `lab/attack.sh` runs the host lab's services in
//! a contained victim (new mount, PID, UTS, IPC and network namespaces on
//! a scratch copy of the root file system), a `daisi run` node with
//! SigmaHQ's Linux rules learns it for 30 s, judges 30 s of varied benign
//! work, then a dozen Atomic Red Team tests across eight tactics (from
//! `../shared/datasets/atomic-red-team`) run through the web
//! application's flaw. Scored by `daisi eval attack`: a test is detected
//! only by an alert about its own processes. Needs root (eBPF,
//! namespaces) and the shared datasets; skips with a message otherwise,
//! fails under `DAISI_REQUIRE`. The full run (every test, 30 minutes of
//! benign work) is `scripts/bench-attack.sh`.

mod common;

use common::Prereq;
use std::path::PathBuf;
use std::process::Command;

/// A dozen tests across credential access, defense evasion, persistence,
/// discovery, privilege escalation and collection.
const TESTS: &str = "T1003.008-1,T1027.001-2,T1037.004-3,T1046-1,T1057-1,T1069.001-1,\
T1070.003-1,T1136.001-1,T1548.001-3,T1560.001-8,T1564.001-1,T1018-14";

fn shared(p: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/datasets")).join(p)
}

#[test]
fn atomic_red_team_tests_are_detected_by_alerts_about_their_own_processes() {
    if !common::root("the ATT&CK lab needs root (eBPF, namespaces)") {
        return;
    }
    let atomics = shared("atomic-red-team/atomics");
    let sigma = shared("sigma/rules/linux");
    if !common::require(
        Prereq::Data,
        atomics.is_dir() && sigma.is_dir(),
        "Atomic Red Team and SigmaHQ in ../shared/datasets",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/lab/attack.sh"))
        .arg("run")
        .arg(dir.path())
        .arg("--atomics")
        .arg(&atomics)
        .arg("--rules")
        .arg(&sigma)
        .args([
            "--learn",
            "30s",
            "--benign",
            "30s",
            "--test-timeout",
            "30s",
            "--only",
            TESTS,
        ])
        .env("DAISI_BIN", common::daisi_bin())
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&out.stdout).into_owned();
    let log = std::fs::read_to_string(dir.path().join("node.log")).unwrap_or_default();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{printed}\n{stderr}\n{log}");
    println!("{printed}\n{stderr}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).unwrap())
            .unwrap();
    let shown = format!("{printed}\n{stderr}");
    let tests = report["tests"].as_array().unwrap();
    assert_eq!(tests.len(), 12, "{shown}");
    // The harness alone (an empty command through the flaw) is not a
    // detection.
    let control = &report["control"];
    assert_eq!(control["ran"], true, "{shown}");
    assert_eq!(control["detected"], false, "{shown}");
    let ran: Vec<_> = tests.iter().filter(|t| t["ran"] == true).collect();
    assert!(ran.len() >= 10, "{} of 12 ran: {shown}", ran.len());
    for t in tests.iter().filter(|t| t["ran"] == false) {
        assert!(
            t["why_not_run"].as_str().is_some_and(|w| !w.is_empty()),
            "{t:#}"
        );
    }
    // The floor: at least 60 % of the techniques that ran.
    let share = &report["techniques_detected"];
    assert!(
        share["ratio"].as_f64().unwrap() >= 0.6,
        "{share:#}\n{shown}"
    );
    for t in ran.iter().filter(|t| t["detected"] == true) {
        assert!(t["latency_s"].as_f64().unwrap() <= 5.0, "{t:#}");
        assert!(t["alert_lines"].as_u64().unwrap() <= 3, "{t:#}\n{shown}");
    }
    assert_eq!(
        report["false_alarms"], 0,
        "the varied benign work alerted: {shown}"
    );
    // Nothing of the victim is left.
    let left = Command::new("pgrep")
        .arg("-f")
        .arg(dir.path().join("lab"))
        .output()
        .unwrap();
    assert!(
        left.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&left.stdout)
    );
}
