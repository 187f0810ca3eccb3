//! The `daisi` binary's command line: version, config checking, exit codes.

mod common;

use std::process::Command;

fn daisi(args: &[&str]) -> std::process::Output {
    Command::new(common::daisi_bin())
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

#[test]
fn version_names_the_build() {
    let out = daisi(&["--version"]);
    assert!(out.status.success());
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(s.starts_with("daisi "), "{s}");
    let schema = format!("wire schema v{}", daisi::messages::SCHEMA_VERSION);
    assert!(s.contains(&schema), "{s}");
}

#[test]
fn shipped_role_configs_pass_check_config() {
    for f in [
        "config/both.toml",
        "config/collector.toml",
        "config/compute.toml",
        // The compose stack's and the package's collector (the compute
        // nodes' name directories of their images: docker/test.sh and
        // docker/package.sh check those inside them).
        "docker/config/collector.toml",
        "docker/packaging/collector/collector.toml",
    ] {
        let out = daisi(&["check-config", "--config", f]);
        assert!(
            out.status.success(),
            "{f}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn every_config_error_is_printed_and_the_exit_code_is_2() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        r#"
[node]
role = "collector"
colour = "blue"
[nats]
servers = ["::not a url::"]
credentials_file = "/nonexistent/creds"
[outbound]
buffer = 0
[syscall_batcher]
max_events = "lots"
[syscall_source]
kind = "replay"
path = "/nonexistent/traces"
[heartbeat]
interval = "sometimes"
"#,
    )
    .unwrap();
    for cmd in ["check-config", "run"] {
        let out = daisi(&[cmd, "--config", bad.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{cmd}");
        let err = String::from_utf8_lossy(&out.stderr);
        for key in [
            "node.colour",
            "nats.servers.0",
            "nats.credentials_file",
            "outbound.buffer",
            "syscall_batcher.max_events",
            "syscall_source.path",
            "heartbeat.interval",
        ] {
            assert!(err.contains(key), "{cmd}: {key} missing from:\n{err}");
        }
        assert!(err.contains("7 configuration error(s)"), "{err}");
    }
}

#[test]
fn environment_overrides_and_role_flag() {
    let out = Command::new(common::daisi_bin())
        .args(["check-config", "--role", "compute"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("DAISI__NATS__SERVERS", "nats://a:4222,bogus ::")
        .output()
        .unwrap();
    // Lists are comma-separated; the bad second entry is reported.
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("nats.servers.1"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = daisi(&["check-config", "--role", "compute"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("role compute"));
}

#[test]
fn unreadable_config_file_is_a_config_error() {
    let out = daisi(&["check-config", "--config", "/nonexistent/daisi.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read /nonexistent/daisi.toml"));
}

#[test]
fn json_logs_are_structured() {
    let adfa = common::replay_traces();
    let toml = format!(
        "[node]\nrole = \"both\"\nshutdown_deadline = \"5s\"\n[syscall_source]\nkind = \"replay\"\npath = \"{}\"\nfilter = \"Training_Data_Master/\"\nmax_traces = 3\n[alert]\nconsole = false\n",
        adfa.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, &toml).unwrap();
    let child = Command::new(common::daisi_bin())
        .args(["--log-format", "json", "run", "--config"])
        .arg(&cfg)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("RUST_LOG", "info")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<serde_json::Value> = err
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let running = lines
        .iter()
        .find(|l| l["message"] == "node running")
        .expect("a 'node running' event");
    assert_eq!(running["role"], "both", "fields are top-level: {running}");
    let stopped = lines
        .iter()
        .find(|l| l["message"] == "node stopped")
        .expect("a 'node stopped' event");
    assert_eq!(stopped["drained"], true, "{stopped}");
}

/// Each alert is printed once on a terminal: the console sink's `ALERT`
/// line on standard output, and no `alert` record in the text log; JSON
/// logs keep the structured record.
#[test]
fn each_alert_is_printed_once_and_json_logs_keep_the_record() {
    let traces = common::replay_traces();
    let toml = format!(
        "[node]\nrole = \"both\"\nshutdown_deadline = \"5s\"\n[syscall_source]\nkind = \"replay\"\npath = \"{}\"\nfilter = \"Training_Data_Master/\"\nmax_traces = 5\n\
         [syscall_classifier]\nthreshold = 0.0\n[alert]\nconsole = true\n",
        traces.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, &toml).unwrap();
    let run = |format: &str| {
        let child = Command::new(common::daisi_bin())
            .args(["--log-format", format, "run", "--config"])
            .arg(&cfg)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("RUST_LOG", "info")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(2500));
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (stdout, stderr) = run("text");
    let printed = stdout.lines().filter(|l| l.starts_with("ALERT")).count();
    assert!(printed >= 1, "no ALERT line:\n{stdout}\n{stderr}");
    assert!(
        !stderr.lines().any(|l| l.contains("alert_id=")),
        "the text log repeats the alerts:\n{stderr}"
    );
    let (stdout, stderr) = run("json");
    assert!(stdout.lines().any(|l| l.starts_with("ALERT")), "{stdout}");
    let records = stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|l| l["message"] == "alert")
        .count();
    assert!(records >= 1, "no structured alert record:\n{stderr}");
}

/// An alert for the `alerts` command tests.
fn alert(
    id: &str,
    module: &str,
    severity: daisi::messages::Severity,
    ts: u64,
    count: u64,
) -> daisi::messages::Alert {
    let module = serde_json::from_value(serde_json::json!(module)).unwrap();
    daisi::messages::Alert {
        id: id.into(),
        ts_ns: ts,
        node_id: "n".into(),
        score: 0.9,
        threshold: 0.5,
        model: "m".into(),
        count,
        first_seen_ns: ts,
        last_seen_ns: ts,
        ..daisi::messages::Alert::new(module, "h", format!("entity-{id}"), severity)
    }
}

/// `daisi alerts list` reads the JSON Lines sink with its rotated files,
/// merges a folded alert's update into it, filters by severity, module and
/// time, and counts lines that are not alerts.
#[test]
fn alerts_list_filters_and_merges_updates() {
    use daisi::messages::{Alert, Severity};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alerts.jsonl");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let line = |a: &Alert| serde_json::to_string(a).unwrap() + "\n";
    // The rotated file holds the oldest alert; an hour old.
    std::fs::write(
        dir.path().join("alerts.jsonl.1"),
        line(&alert(
            "old",
            "network",
            Severity::High,
            now - 3_600_000_000_000,
            1,
        )),
    )
    .unwrap();
    std::fs::write(
        &path,
        line(&alert("a", "network", Severity::High, now, 1))
            + "not json\n"
            + &line(&Alert {
                threat: Some(daisi::attack::threat(["credential-access"], ["T1003.008"])),
                ..alert("b", "syscall", Severity::Medium, now, 1)
            })
            + &line(&alert("a", "network", Severity::High, now, 7)),
    )
    .unwrap();
    let file = path.to_str().unwrap();
    let out = daisi(&["alerts", "list", "--file", file, "--json"]);
    assert!(out.status.success());
    let got: Vec<Alert> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ids: Vec<(&str, u64)> = got.iter().map(|a| (a.id.as_str(), a.count)).collect();
    assert_eq!(ids, [("old", 1), ("a", 7), ("b", 1)]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("1 lines"));
    let out = daisi(&[
        "alerts",
        "list",
        "--file",
        file,
        "--severity",
        "high",
        "--since",
        "10m",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(
        text.contains("entity-a") && text.contains("seen 7 times"),
        "{text}"
    );
    let out = daisi(&["alerts", "list", "--file", file, "--module", "syscall"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1);
    // By ATT&CK technique (its sub-techniques too) and tactic; each line
    // names its techniques.
    for filter in [["--technique", "T1003"], ["--tactic", "credential-access"]] {
        let out = daisi(&["alerts", "list", "--file", file, filter[0], filter[1]]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(
            text.contains("entity-b") && text.contains("[ATT&CK T1003.008]"),
            "{text}"
        );
    }
    let out = daisi(&["alerts", "list", "--file", file, "--technique", "T1059"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 0);
    let out = daisi(&["alerts", "list", "--file", file, "--since", "yesterday-ish"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--since"));
}

/// `daisi alerts tail` shows the last alerts, then those appended while it
/// runs (and stops after `--duration`).
#[test]
fn alerts_tail_follows_the_file() {
    use daisi::messages::Severity;
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alerts.jsonl");
    let line = |id: &str| {
        serde_json::to_string(&alert(id, "network", Severity::High, 1, 1)).unwrap() + "\n"
    };
    std::fs::write(&path, line("a1") + &line("a2") + &line("a3")).unwrap();
    let mut child = Command::new(common::daisi_bin())
        .args(["alerts", "tail", "-n", "2", "--duration", "3s", "--file"])
        .arg(&path)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The last two first; then an alert appended while it runs.
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut text = String::new();
    for _ in 0..2 {
        std::io::BufRead::read_line(&mut out, &mut text).unwrap();
    }
    std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(line("a4").as_bytes())
        .unwrap();
    std::io::Read::read_to_string(&mut out, &mut text).unwrap();
    assert!(child.wait().unwrap().success());
    let shown: Vec<&str> = ["a1", "a2", "a3", "a4"]
        .into_iter()
        .filter(|id| text.contains(&format!("entity-{id}")))
        .collect();
    assert_eq!(shown, ["a2", "a3", "a4"], "{text}");
}

/// `daisi health` says a running node is healthy, and not once it stopped
/// (or when there is no heartbeat to read).
#[test]
fn health_follows_the_nodes_heartbeats() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("health.json");
    let file_arg = file.to_str().unwrap();
    let missing = daisi(&["health", "--file", file_arg]);
    assert_eq!(missing.status.code(), Some(1), "{missing:?}");
    assert!(String::from_utf8_lossy(&missing.stderr).contains("unhealthy"));
    let toml = format!(
        r#"
[node]
role = "both"
[heartbeat]
interval = "200ms"
silence_after = "1s"
health_file = "{file_arg}"
[syscall_source]
kind = "none"
"#
    );
    let mut node = common::Daisi::spawn(&toml, &[]);
    node.wait_running();
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !file.exists() {
        assert!(std::time::Instant::now() < until, "{}", node.log());
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let cfg = dir.path().join("node.toml");
    std::fs::write(&cfg, &toml).unwrap();
    let ok = daisi(&["health", "--config", cfg.to_str().unwrap()]);
    assert!(ok.status.success(), "{ok:?}");
    assert!(String::from_utf8_lossy(&ok.stdout).contains("healthy: node"));
    assert!(node.stop(std::time::Duration::from_secs(20)).success());
    let stopped = daisi(&["health", "--config", cfg.to_str().unwrap()]);
    assert_eq!(stopped.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&stopped.stderr).contains("stopping"));
}

/// From any working directory a node finds the shipped models (at the
/// install location, here the source tree), and `check-config` says which
/// judges the configuration enables: live processes by their programs'
/// baselines, the shipped syscall model for replayed traces only, a
/// configured model for live processes too.
#[test]
fn check_config_names_the_judges_and_shipped_models_resolve_from_anywhere() {
    let elsewhere = tempfile::tempdir().unwrap();
    let run = |toml: &str| {
        let cfg = elsewhere.path().join("node.toml");
        std::fs::write(&cfg, toml).unwrap();
        let out = Command::new(common::daisi_bin())
            .args(["check-config", "--config"])
            .arg(&cfg)
            .current_dir(elsewhere.path())
            .env_remove("DAISI_DEFAULT_CONFIG")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let text = run("[node]\nrole = \"compute\"\n");
    for line in [
        "live processes: host baselines per program (learning for 1day",
        "live processes' calls: no syscall model",
        "replayed traces: syscall model the shipped model",
        "flows: flow model the shipped model, per-source rules",
        "log lines: log rules, line shapes (learning for 1h)",
    ] {
        assert!(text.contains(line), "{line:?} missing from:\n{text}");
    }
    let model = concat!(env!("CARGO_MANIFEST_DIR"), "/models/syscall");
    let text = run(&format!(
        "[node]\nrole = \"compute\"\n[syscall_classifier]\nmodel = \"{model}\"\n"
    ));
    assert!(
        text.contains(&format!("live processes' calls: syscall model {model}")),
        "{text}"
    );
    // A model directory that is not there names the path it tried.
    let cfg = elsewhere.path().join("bad.toml");
    std::fs::write(
        &cfg,
        "[node]\nrole = \"compute\"\n[flow_classifier]\nmodel = \"no/such/model\"\n",
    )
    .unwrap();
    let out = Command::new(common::daisi_bin())
        .args(["check-config", "--config"])
        .arg(&cfg)
        .current_dir(elsewhere.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("flow_classifier.model") && err.contains("no/such/model"),
        "{err}"
    );
}
