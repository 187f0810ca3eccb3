//! Live eBPF capture (needs root: CI runs as root). A probe program written
//! here performs a known syscall sequence once capture is attached.

mod common;

use daisi::capture::ebpf::{Capture, CaptureEvent, Chunk, Targets};
use daisi::messages::SyscallAbi;
use daisi::metrics::Metrics;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The calls the probe makes, three times over, after reading one byte.
const SEQUENCE: [&str; 6] = [
    "getppid", "getuid", "getgid", "geteuid", "getegid", "getpid",
];

fn root() -> bool {
    common::root("eBPF capture tests need root (CI runs them as root)")
}

/// Compiles the probe into `dir/name`.
fn probe(dir: &Path, name: &str) -> PathBuf {
    compile(
        dir,
        name,
        r#"#include <unistd.h>
#include <sys/syscall.h>
int main(void) {
    char c;
    if (read(0, &c, 1) != 1) return 2;
    for (int i = 0; i < 3; i++) {
        syscall(SYS_getppid); syscall(SYS_getuid); syscall(SYS_getgid);
        syscall(SYS_geteuid); syscall(SYS_getegid); syscall(SYS_getpid);
    }
    return 0;
}
"#,
    )
}

/// Compiles the C program `code` into `dir/name`.
fn compile(dir: &Path, name: &str, code: &str) -> PathBuf {
    let src = dir.join(format!("{name}.c"));
    std::fs::write(&src, code).unwrap();
    let out = dir.join(name);
    let st = Command::new("cc")
        .arg("-O1")
        .arg("-o")
        .arg(&out)
        .arg(&src)
        .status()
        .expect("cc");
    assert!(st.success());
    out
}

fn spawn_blocked(cmd: &mut Command) -> Child {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
}

fn release(c: &mut Child) {
    c.stdin.as_mut().unwrap().write_all(b"x\n").unwrap();
}

fn wait(c: &mut Child) {
    let until = Instant::now() + Duration::from_secs(10);
    while c.try_wait().unwrap().is_none() {
        assert!(Instant::now() < until, "probe did not exit");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A collector's process table, with the default redaction.
fn table(m: &Metrics) -> daisi::actors::syscall::processes::ProcessTable {
    use daisi::actors::syscall::{processes, source};
    let redact = source::SyscallSourceConfig::default().redact;
    processes::ProcessTable::new(64, 4, processes::Redaction::new(&redact), m)
}

/// Starts a capture, runs `work`, stops, and returns every event.
fn capture(targets: Targets, work: impl FnOnce()) -> (Vec<CaptureEvent>, Metrics) {
    let m = Metrics::new();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Chunk>(4096);
    let cap = Capture::start(targets, tx, &m).unwrap_or_else(|e| panic!("{e}"));
    work();
    std::thread::sleep(Duration::from_millis(100));
    cap.stop();
    let mut events = vec![];
    while let Ok(c) = rx.try_recv() {
        events.extend(c);
    }
    (events, m)
}

fn names_of(events: &[CaptureEvent], pid: u32) -> Vec<&'static str> {
    events
        .iter()
        .filter_map(|e| match e {
            CaptureEvent::Syscall { pid: p, nr, .. } if *p == pid => {
                daisi::syscalls::name(SyscallAbi::X86_64, *nr)
            }
            _ => None,
        })
        .collect()
}

/// The pid of the captured exec of `name`.
fn exec_pid(events: &[CaptureEvent], name: &str) -> u32 {
    events
        .iter()
        .find_map(|e| match e {
            CaptureEvent::Exec(e) if e.comm == name => Some(e.pid),
            _ => None,
        })
        .unwrap_or_else(|| panic!("the exec of {name} is captured"))
}

fn contains_sequence(names: &[&str], times: usize) -> bool {
    let seq: Vec<&str> = SEQUENCE
        .iter()
        .copied()
        .cycle()
        .take(SEQUENCE.len() * times)
        .collect();
    names.windows(seq.len()).any(|w| w == seq.as_slice())
}

#[test]
fn watched_pid_is_captured_exactly_and_an_unwatched_one_is_not() {
    if !root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bin = probe(dir.path(), "probe");
    let mut watched = spawn_blocked(&mut Command::new(&bin));
    let mut other = spawn_blocked(&mut Command::new(&bin));
    let (wp, op) = (watched.id(), other.id());
    let (events, m) = capture(
        Targets {
            pids: vec![wp],
            ..Default::default()
        },
        || {
            release(&mut watched);
            release(&mut other);
            wait(&mut watched);
            wait(&mut other);
        },
    );
    let names = names_of(&events, wp);
    assert!(
        contains_sequence(&names, 3),
        "watched probe's calls: {names:?}"
    );
    assert!(
        names_of(&events, op).is_empty(),
        "the unwatched probe must be absent"
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, CaptureEvent::Exit { pid, .. } if *pid == wp)),
        "exit seen"
    );
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, CaptureEvent::Syscall { pid, .. } if *pid == std::process::id())),
        "daisi never watches itself"
    );
    assert_eq!(m.get("capture.kernel_dropped"), 0);
    assert_eq!(m.get("capture.userspace_dropped"), 0);
    assert!(m.get("capture.kernel_submitted") >= events.len() as u64);
}

#[test]
fn children_of_a_watched_process_are_watched() {
    if !root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bin = probe(dir.path(), "childprobe");
    // The shell waits for a line, then runs the probe as its child.
    let script = format!("read line; echo x | {}", bin.display());
    let mut sh = spawn_blocked(Command::new("sh").args(["-c", &script]));
    let shp = sh.id();
    let (events, _) = capture(
        Targets {
            pids: vec![shp],
            ..Default::default()
        },
        || {
            release(&mut sh);
            wait(&mut sh);
        },
    );
    let child = exec_pid(&events, "childprobe");
    assert_ne!(child, shp);
    assert!(contains_sequence(&names_of(&events, child), 3));
}

/// A child forked without exec (gone before anyone could read `/proc`)
/// is named after its parent, never "?": the fork event carries the
/// parent, whose identity the child inherits until it execs.
#[test]
fn a_forked_child_without_exec_is_named_after_its_parent() {
    if !root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bin = compile(
        dir.path(),
        "forkprobe",
        r#"#include <unistd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
int main(void) {
    char c;
    if (read(0, &c, 1) != 1) return 2;
    pid_t p = fork();
    if (p == 0) {
        for (int i = 0; i < 3; i++) {
            syscall(SYS_getppid); syscall(SYS_getuid); syscall(SYS_getgid);
            syscall(SYS_geteuid); syscall(SYS_getegid); syscall(SYS_getpid);
        }
        _exit(0);
    }
    waitpid(p, 0, 0);
    return 0;
}
"#,
    );
    let mut parent = spawn_blocked(&mut Command::new(&bin));
    let pp = parent.id();
    let (events, _) = capture(
        Targets {
            pids: vec![pp],
            ..Default::default()
        },
        || {
            release(&mut parent);
            wait(&mut parent);
        },
    );
    let child = events
        .iter()
        .find_map(|e| match e {
            CaptureEvent::Fork { pid, parent, .. } if *parent == pp => Some(*pid),
            _ => None,
        })
        .expect("the fork is captured with its parent");
    assert!(contains_sequence(&names_of(&events, child), 3));
    let mut table = table(&Metrics::new());
    let calls = daisi::actors::syscall::source::group(events, &mut table);
    let of_child: Vec<_> = calls.iter().filter(|c| c.pid == child).collect();
    assert!(!of_child.is_empty());
    // Grouped after both exited (so `/proc` has nothing): the name comes
    // from the fork event alone.
    for c in of_child {
        assert_eq!(c.comm, "forkprobe", "{c:?}");
    }
}

/// An exec record names the program, its arguments, its user and its
/// parent; the collector's table redacts secrets in the arguments and
/// gives each batch the process's lineage.
#[test]
fn exec_records_carry_the_program_its_arguments_and_its_parent() {
    if !root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bin = probe(dir.path(), "argprobe");
    let mut pid = 0;
    let (events, m) = capture(
        Targets {
            comms: vec!["argprobe".into()],
            ..Default::default()
        },
        || {
            let mut p = spawn_blocked(Command::new(&bin).args(["--password=hunter2", "plain"]));
            pid = p.id();
            release(&mut p);
            wait(&mut p);
        },
    );
    let exec = events
        .iter()
        .find_map(|e| match e {
            CaptureEvent::Exec(x) if x.pid == pid => Some(x),
            _ => None,
        })
        .expect("the exec is captured");
    assert_eq!(exec.path.as_deref(), bin.to_str());
    assert_eq!(
        exec.args[1..],
        ["--password=hunter2", "plain"],
        "raw in the kernel record"
    );
    assert!(!exec.args_cut);
    assert_eq!(exec.ppid, std::process::id(), "the test started it");
    assert_eq!(exec.uid, 0);

    let mut table = table(&m);
    let calls = daisi::actors::syscall::source::group(events, &mut table);
    let mine = calls.iter().find(|c| c.pid == pid).expect("its calls");
    let lineage = &mine.lineage;
    assert_eq!(lineage[0].args[1..], ["--password=<redacted>", "plain"]);
    assert_eq!(lineage[0].executable.as_deref(), bin.to_str());
    assert_eq!(lineage[0].uid, Some(0));
    assert_eq!(lineage[1].pid, std::process::id(), "its parent, from /proc");
    assert_eq!(m.get("processes.args_redacted"), 1);
}

/// Argument events: the selected calls of a watched process come with
/// their paths, peers and ids, typed; relative paths are made absolute;
/// an unlink outside `watched_paths` is not reported; calls not selected
/// carry nothing.
#[test]
fn argument_events_name_files_peers_and_ids() {
    if !root() {
        return;
    }
    use daisi::capture::ebpf::ArgCall;
    use daisi::messages::{Activity, Peer};
    let dir = tempfile::tempdir().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let bin = compile(
        dir.path(),
        "actprobe",
        &format!(
            r#"#define _GNU_SOURCE
#include <fcntl.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
int main(void) {{
    char c;
    if (read(0, &c, 1) != 1) return 2;
    // On the stack: a string in a page not yet touched cannot be read at
    // the call's entry (counted as unreadable).
    char hostname[] = "/etc/hostname";
    int f = open(hostname, O_RDONLY); if (f >= 0) close(f);
    char made[] = "made-here", payload[] = "payload";
    f = open(made, O_WRONLY | O_CREAT, 0600); if (f >= 0) close(f);
    unlink(made);
    int m = memfd_create(payload, 0); if (m >= 0) close(m);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {{ .sin_family = AF_INET, .sin_port = htons({port}) }};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    connect(s, (struct sockaddr *)&a, sizeof a);
    close(s);
    // A connection to itself, accepted with the peer asked for.
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in la = {{ .sin_family = AF_INET }};
    inet_pton(AF_INET, "127.0.0.1", &la.sin_addr);
    socklen_t ll = sizeof la;
    bind(l, (struct sockaddr *)&la, sizeof la);
    listen(l, 1);
    getsockname(l, (struct sockaddr *)&la, &ll);
    int c2 = socket(AF_INET, SOCK_STREAM, 0);
    connect(c2, (struct sockaddr *)&la, sizeof la);
    struct sockaddr_in pa; socklen_t pl = sizeof pa;
    int acc = accept(l, (struct sockaddr *)&pa, &pl);
    close(acc); close(c2); close(l);
    setuid(getuid());
    return 0;
}}
"#
        ),
    );
    let run = |arguments: Vec<ArgCall>| {
        let mut pid = 0;
        let (events, m) = capture(
            Targets {
                comms: vec!["actprobe".into()],
                arguments,
                ..Default::default()
            },
            || {
                let mut p = spawn_blocked(Command::new(&bin).current_dir(dir.path()));
                pid = p.id();
                release(&mut p);
                wait(&mut p);
            },
        );
        let cfg = daisi::actors::syscall::source::SyscallSourceConfig::default();
        let mut table = table(&m);
        let (cut, unwatched) = (m.counter("cut"), m.counter("unwatched"));
        // Relative paths resolve while the process is there: here it is
        // gone, so resolve against the directory it ran in.
        let mut keep = daisi::actors::syscall::source::argument_filter(&cfg, &cut, &unwatched);
        let base = dir.path().to_path_buf();
        let mut fix = |a: &mut daisi::capture::ebpf::Args| {
            if let Activity::Open { path, .. } | Activity::Unlink { path } = &mut a.what {
                if !path.starts_with('/') {
                    *path = base.join(&*path).to_string_lossy().into_owned();
                }
            }
            keep(a)
        };
        let calls = daisi::actors::syscall::source::group_with(events, &mut table, &mut fix);
        let acts: Vec<Activity> = calls
            .iter()
            .filter(|c| c.pid == pid)
            .flat_map(|c| c.activity.iter().map(|a| a.what.clone()))
            .collect();
        (acts, unwatched.get())
    };
    let (acts, unwatched) = run(ArgCall::ALL.to_vec());
    let has = |a: &Activity| acts.contains(a);
    assert!(
        has(&Activity::Open {
            path: "/etc/hostname".into(),
            write: false
        }),
        "{acts:#?}"
    );
    let made = dir.path().join("made-here").to_string_lossy().into_owned();
    assert!(
        has(&Activity::Open {
            path: made,
            write: true
        }),
        "{acts:#?}"
    );
    assert!(
        has(&Activity::MemfdCreate {
            name: "payload".into()
        }),
        "{acts:#?}"
    );
    assert!(
        has(&Activity::Connect {
            peer: Peer::Inet {
                ip: "127.0.0.1".parse().unwrap(),
                port
            }
        }),
        "{acts:#?}"
    );
    assert!(has(&Activity::SetUid { uid: 0 }), "{acts:#?}");
    assert!(
        acts.iter().any(|a| matches!(
            a,
            Activity::Bind {
                peer: Peer::Inet { port: 0, .. }
            }
        )),
        "{acts:#?}"
    );
    assert!(
        acts.iter().any(|a| matches!(a, Activity::Accept { peer: Peer::Inet { ip, port } } if ip.is_loopback() && *port != 0)),
        "{acts:#?}"
    );
    assert!(
        !acts.iter().any(|a| matches!(a, Activity::Unlink { .. })),
        "a temp dir is not a watched path: {acts:#?}"
    );
    assert_eq!(unwatched, 1);
    // Only memfd selected: nothing else.
    let (acts, _) = run(vec![ArgCall::Memfd]);
    assert_eq!(
        acts,
        [Activity::MemfdCreate {
            name: "payload".into()
        }]
    );
}

/// Host baselines, live: a service learns what it does (it starts `ls`);
/// after learning, the same service runs a shell that reads /etc/shadow
/// and connects out: one incident whose tree names the shell and `cat`
/// with baseline findings that say what was seen; `ls` again raises
/// nothing. Accepting the incident from the web console (with its token)
/// folds it into the profile, as `daisi baseline accept` does (which then
/// finds them accepted already): a node started again (profile reloaded)
/// stays quiet on the same steps, and `daisi baseline show` lists them as
/// accepted.
#[test]
fn a_learnt_service_that_starts_a_shell_is_one_incident_then_accepted() {
    if !root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let baselines = dir.path().join("baselines");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // A service that runs what it is told (the flaw), and says when done.
    let script = format!(
        "import subprocess, sys\n\
         for line in sys.stdin:\n\
         \x20   if line.startswith('ls'): subprocess.run(['ls', '/usr'], stdout=subprocess.DEVNULL)\n\
         \x20   elif line.startswith('attack'): subprocess.run(['bash', '-c', 'cat /etc/shadow > /dev/null; exec 3<>/dev/tcp/127.0.0.1/{port}; echo hi >&3'])\n\
         \x20   print('done', flush=True)\n"
    );
    let mut svc = Command::new("python3")
        .args(["-u", "-c", &script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let svc_pid = svc.id();
    let mut out = std::io::BufReader::new(svc.stdout.take().unwrap());
    let mut input = svc.stdin.take().unwrap();
    let mut ask = |what: &str| {
        use std::io::BufRead;
        writeln!(input, "{what}").unwrap();
        let mut l = String::new();
        out.read_line(&mut l).unwrap();
        assert_eq!(l.trim(), "done");
    };
    let alerts = dir.path().join("alerts.jsonl");
    let console = common::free_port();
    let token = "svc-host-console-token";
    let toml = format!(
        "[node]\nrole = \"both\"\nhost = \"svc-host\"\n[syscall_source]\nkind = \"ebpf\"\npids = [{}]\n\
         [console]\nlisten = \"127.0.0.1:{console}\"\ntoken = \"{token}\"\n\
         [syscall_batcher]\nmax_wait = \"200ms\"\n\
         [baseline]\nlearn_for = \"3s\"\nsave_every = \"1s\"\n\
         [alert]\nconsole = false\ncooldown = \"2s\"\njsonl = \"{}\"\n",
        svc_pid,
        alerts.display()
    );
    let env = [("DAISI__BASELINE__DIR", baselines.to_str().unwrap())];
    let mut node = common::Daisi::spawn(&toml, &env);
    node.wait_running();
    for _ in 0..3 {
        ask("ls");
        std::thread::sleep(Duration::from_millis(300));
    }
    // Learning ends 3 s after the first batch.
    std::thread::sleep(Duration::from_secs(3));
    ask("ls");
    ask("attack");
    // The incident goes out at the first finding; the rest of the tree
    // joins it and goes out as its update once the tree is quiet for the
    // cooldown (2 s here).
    let rules_of = |a: &serde_json::Value| -> Vec<String> {
        a["tree"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|m| m["findings"].as_array().cloned().unwrap_or_default())
            .filter_map(|f| f["rule"]["name"].as_str().map(String::from))
            .collect()
    };
    common::wait_for_alert(
        &alerts,
        Duration::from_secs(20),
        |a| {
            a["module"] == "incident"
                && [
                    "baseline.new_child",
                    "baseline.sensitive_read",
                    "baseline.new_peer",
                ]
                .iter()
                .all(|r| rules_of(a).iter().any(|x| x == r))
        },
        "no incident update with the shell's child, read and connection",
        || {
            format!(
                "{}\nalerts: {}",
                node.log(),
                std::fs::read_to_string(&alerts).unwrap_or_default()
            )
        },
    );
    // Accepted from the console, with its token.
    let api = format!("http://127.0.0.1:{console}/api");
    let bearer = format!("Bearer {token}");
    let listed: serde_json::Value = ureq::get(&format!("{api}/alerts?module=incident"))
        .header("Authorization", &bearer)
        .call()
        .unwrap()
        .into_body()
        .read_to_string()
        .map(|t| serde_json::from_str(&t).unwrap())
        .unwrap();
    let incident = listed["alerts"][0]["id"].as_str().unwrap().to_string();
    let said: serde_json::Value = ureq::post(&format!("{api}/alerts/{incident}/accept"))
        .header("Authorization", &bearer)
        .send_empty()
        .unwrap()
        .into_body()
        .read_to_string()
        .map(|t| serde_json::from_str(&t).unwrap())
        .unwrap();
    assert!(!said["accepted"].as_array().unwrap().is_empty(), "{said}");
    assert!(node.stop(Duration::from_secs(10)).success());
    let all = common::read_alerts(&alerts);
    let a = all
        .iter()
        .rfind(|a| a["module"] == "incident")
        .unwrap()
        .clone();
    let rules = rules_of(&a);
    for r in [
        "baseline.new_child",
        "baseline.sensitive_read",
        "baseline.new_peer",
    ] {
        assert!(rules.iter().any(|x| x == r), "{r} missing: {a:#}");
    }
    assert_eq!(a["event"]["kind"], "alert", "{a:#}");
    let text = a.to_string();
    assert!(
        text.contains("/etc/shadow") && text.contains(&format!("127.0.0.1:{port}")),
        "{a:#}"
    );
    // One attack, one incident: its first line and its update at most.
    let lines = all.iter().filter(|x| x["id"] == a["id"]).count();
    assert!(lines <= 2, "{all:#?}");
    assert!(
        all.iter().all(|x| x["module"] != "baseline"),
        "findings go into the tree's incident: {all:#?}"
    );
    // ls, learnt, is nowhere; the tree is rooted at the service.
    let tree = a["tree"].as_array().unwrap();
    assert!(!tree.iter().any(|m| m["name"] == "ls"), "{a:#}");
    assert_eq!(tree[0]["pid"].as_u64(), Some(svc_pid as u64), "{a:#}");
    assert!(baselines.join("svc-host.json").is_file());

    // Accept the incident's findings; the next run is quiet on them.
    let id = a["id"].as_str().unwrap();
    let cli = |args: &[&str]| {
        let o = Command::new(common::daisi_bin())
            .args(args)
            .env("DAISI__BASELINE__DIR", &baselines)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let said = cli(&["baseline", "accept", id, "--file", alerts.to_str().unwrap()]);
    assert!(said.contains("already accepted for svc-host"), "{said}");
    let shown = cli(&["baseline", "show", "--host", "svc-host"]);
    assert!(shown.contains("detecting"), "{shown}");
    assert!(shown.contains("starts /usr/bin/bash (accepted)"), "{shown}");
    assert!(shown.contains("starts /usr/bin/ls"), "{shown}");

    let alerts2 = dir.path().join("alerts2.jsonl");
    let toml2 = toml.replace(alerts.to_str().unwrap(), alerts2.to_str().unwrap());
    let mut node = common::Daisi::spawn(&toml2, &env);
    node.wait_running();
    ask("attack");
    std::thread::sleep(Duration::from_secs(3));
    assert!(node.stop(Duration::from_secs(10)).success());
    let again = common::read_alerts(&alerts2);
    assert!(
        !again.iter().any(|x| x.to_string().contains("\"baseline\"")),
        "accepted behaviour raised again: {again:#?}\n{}",
        node.log()
    );
    drop(input); // the service ends at the end of its input
    let _ = svc.wait();
    drop(listener);
}

/// Alerts name the process with its arguments (redacted), its parent and
/// its user, in its process tree's incident. The threshold is forced to 0:
/// what is tested is the naming.
/// `shell -c` runs `command` once the test writes a line (`; true`: the
/// shell forks it instead of exec-ing it last); the shell's pid, after
/// both exited.
fn shell_runs(mut shell: Command, command: &str) -> u32 {
    let script = format!("read line; {command}; true");
    let mut sh = spawn_blocked(shell.args(["-c", &script]));
    let pid = sh.id();
    sh.stdin.as_mut().unwrap().write_all(b"go\nx\n").unwrap();
    wait(&mut sh);
    pid
}

/// An incident whose process tree holds a process named `name`.
fn in_tree_of(name: &str) -> impl Fn(&serde_json::Value) -> bool + '_ {
    move |a| {
        a["tree"]
            .as_array()
            .is_some_and(|t| t.iter().any(|m| m["name"] == name))
    }
}

fn wait_for_tree(alerts: &Path, name: &str, node: &common::Daisi) {
    common::wait_for_alert(
        alerts,
        Duration::from_secs(15),
        in_tree_of(name),
        "no incident for the probe",
        || node.log(),
    );
}

#[test]
fn alerts_name_the_process_its_arguments_parent_and_user() {
    if !root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bin = probe(dir.path(), "nameprobe");
    let alerts = dir.path().join("alerts.jsonl");
    let mut node = common::Daisi::spawn(
        &format!(
            "[node]\nrole = \"both\"\n[syscall_source]\nkind = \"ebpf\"\ncomms = [\"nameprobe\"]\n\
             [syscall_classifier]\nmodel = \"models/syscall\"\nthreshold = 0.0\n[alert]\nconsole = false\njsonl = \"{}\"\n",
            alerts.display()
        ),
        &[],
    );
    node.wait_running();
    let shp = shell_runs(
        Command::new("sh"),
        &format!("{} --token secret-value x", bin.display()),
    );
    // Found processes go into their tree's incident: the probe, under
    // the shell that started it.
    let in_tree = in_tree_of("nameprobe");
    wait_for_tree(&alerts, "nameprobe", &node);
    assert!(node.stop(Duration::from_secs(10)).success());
    let a = common::read_alerts(&alerts)
        .into_iter()
        .rfind(in_tree)
        .unwrap();
    assert_eq!(a["module"], "incident", "{a}");
    let tree = a["tree"].as_array().unwrap();
    let probe = tree.iter().find(|m| m["name"] == "nameprobe").unwrap();
    assert_eq!(probe["executable"], bin.to_str().unwrap(), "{a}");
    assert_eq!(probe["args"][1], "--token", "{a}");
    assert_eq!(probe["args"][2], "<redacted>", "{a}");
    assert_eq!(probe["ppid"].as_u64(), Some(shp as u64), "{a}");
    assert_eq!(probe["uid"], 0, "{a}");
    assert!(!probe["findings"].as_array().unwrap().is_empty(), "{a}");
    // The shell that started the probe (a young shell: the chain's) is in
    // the tree; the incident is named by the probe.
    assert!(
        tree.iter().any(|m| m["pid"].as_u64() == Some(shp as u64)),
        "{a}"
    );
    assert_eq!(a["process"]["name"], "nameprobe", "{a}");
    assert_eq!(a["entity"], format!("tree:{}", probe["pid"]), "{a}");
    let text = a.to_string();
    assert!(!text.contains("secret-value"), "{text}");
}

/// A process tree of user `nobody` is found; then the auth log says
/// `nobody` tried sudo: the log alert joins the tree's incident (by the
/// user name the collector resolved for the tree's processes), which
/// carries the log line and quotes it in its summary.
#[test]
fn a_log_alert_about_a_user_joins_that_users_process_tree() {
    if !root() {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    // nobody runs the probe from here.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let bin = probe(dir.path(), "userprobe");
    let alerts = dir.path().join("alerts.jsonl");
    let auth = dir.path().join("auth.log");
    std::fs::write(&auth, "").unwrap();
    let mut node = common::Daisi::spawn(
        &format!(
            "[node]\nrole = \"both\"\n[syscall_source]\nkind = \"ebpf\"\ncomms = [\"userprobe\"]\n\
             [syscall_classifier]\nmodel = \"models/syscall\"\nthreshold = 0.0\n[alert]\nconsole = false\ncooldown = \"5s\"\njsonl = \"{}\"\n\
             [[log_source]]\nname = \"auth\"\nkind = \"file\"\npaths = [\"{}\"]\n\
             registry_dir = \"{}\"\npoll = \"50ms\"\n",
            alerts.display(),
            auth.display(),
            dir.path().join("registry").display()
        ),
        &[],
    );
    node.wait_running();
    let mut setpriv = Command::new("setpriv");
    setpriv.args(["--reuid=65534", "--regid=65534", "--clear-groups", "sh"]);
    let shp = shell_runs(setpriv, &format!("{} x", bin.display()));
    let in_tree = in_tree_of("userprobe");
    wait_for_tree(&alerts, "userprobe", &node);
    let stamp = chrono::Local::now().format("%b %e %H:%M:%S");
    let line = format!(
        "{stamp} victim sudo:   nobody : user NOT in sudoers ; TTY=pts/0 ; PWD=/ ; USER=root ; COMMAND=/bin/sh"
    );
    std::fs::OpenOptions::new()
        .append(true)
        .open(&auth)
        .unwrap()
        .write_all(format!("{line}\n").as_bytes())
        .unwrap();
    // The joined log alert goes out with the tree's update, when the tree
    // has been quiet for the cooldown (5 s).
    common::wait_for_alert(
        &alerts,
        Duration::from_secs(20),
        |a| in_tree(a) && a["log"]["lines"].is_array(),
        "no incident update with the log line",
        || node.log(),
    );
    assert!(node.stop(Duration::from_secs(10)).success());
    assert_eq!(
        common::drained_counter(&node.log(), "alert.joined"),
        1,
        "{}",
        node.log()
    );
    let all = common::read_alerts(&alerts);
    let a = all.iter().rfind(|a| in_tree(a)).unwrap();
    let tree = a["tree"].as_array().unwrap();
    assert!(
        tree.iter().any(|m| m["pid"].as_u64() == Some(shp as u64)),
        "{a}"
    );
    // The probe runs as nobody (its shell too, unless the capture saw
    // the probe's exec before setpriv's exec of the shell).
    let probe = tree.iter().find(|m| m["name"] == "userprobe").unwrap();
    assert_eq!(a["entity"], format!("tree:{}", probe["pid"]), "{a}");
    assert_eq!(
        (&probe["uid"], &probe["user_name"]),
        (&65534.into(), &"nobody".into()),
        "{a}"
    );
    assert_eq!(a["user"]["name"], "nobody", "{a}");
    assert_eq!(a["log"]["lines"][0], line.as_str(), "{a}");
    let summary = a["summary"].as_str().unwrap();
    assert!(
        summary.contains("; its user nobody in the logs: sudo refused to nobody"),
        "{summary}"
    );
    let related: Vec<&str> = a["related"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r.as_str())
        .collect();
    let logs: Vec<&serde_json::Value> = all.iter().filter(|x| x["module"] == "log").collect();
    assert!(logs.is_empty(), "joined, not raised alone: {logs:?}");
    assert_eq!(
        related.len(),
        2,
        "the probe's finding and the log alert: {a}"
    );
}

#[test]
fn processes_are_found_by_name_at_exec() {
    if !root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bin = probe(dir.path(), "daisiprobe");
    let (events, _) = capture(
        Targets {
            comms: vec!["daisiprobe".into()],
            ..Default::default()
        },
        || {
            // Started after attach: found by its name when it execs.
            let mut p = spawn_blocked(&mut Command::new(&bin));
            release(&mut p);
            wait(&mut p);
        },
    );
    let pid = exec_pid(&events, "daisiprobe");
    assert!(contains_sequence(&names_of(&events, pid), 3));
}

#[test]
fn without_privileges_the_error_names_what_is_missing() {
    if !root() {
        return;
    }
    // Drop to nobody with no capabilities and try to run a capturing node.
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        // Baselines off: what is tested is the capture's privileges.
        "[node]\nrole = \"both\"\n[syscall_source]\nkind = \"ebpf\"\nall = true\n[baseline]\nenabled = false\n",
    )
    .unwrap();
    let out = common::run_unprivileged(&cfg);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("CAP_BPF") && err.contains("CAP_PERFMON"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

/// The full `both` pipeline on live capture (the syscall model named, so
/// live processes are scored too): a storm of short processes, every one
/// watched (by name), leaves no per-process state behind.
#[test]
fn process_storm_through_the_pipeline_frees_all_state() {
    if !root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bin = probe(dir.path(), "daisistorm");
    let jsonl = dir.path().join("alerts.jsonl");
    let toml = format!(
        "[node]\nrole = \"both\"\n[syscall_source]\nkind = \"ebpf\"\ncomms = [\"daisistorm\"]\n\
         [syscall_batcher]\nmax_processes = 256\n\
         [syscall_classifier]\nmodel = \"models/syscall\"\n\
         [alert]\nconsole = false\nmax_processes = 256\njsonl = \"{}\"\n",
        jsonl.display()
    );
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(toml.as_bytes()).unwrap();
    let cfg = daisi::config::Config::load_from(None, Some(f.path()), &[], None)
        .unwrap_or_else(|e| panic!("{e}"));
    let m = Metrics::new();
    let n = 2000;
    let m2 = m.clone();
    actix::System::new().block_on(async move {
        let node = daisi::node::Node::start(cfg, m2.clone()).await.unwrap();
        // 2000 short processes, 8 at a time.
        let script = format!("for i in $(seq 1 {n}); do echo x | {} & if [ $((i % 8)) -eq 0 ]; then wait; fi; done; wait", bin.display());
        let st = tokio::process::Command::new("sh").args(["-c", &script]).status().await.unwrap();
        assert!(st.success());
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(node.shutdown().await);
    });
    let g = m.gauges();
    assert_eq!(
        g["syscall_batcher.processes"], 0,
        "batcher state freed: {g:?}"
    );
    assert_eq!(g["alert.processes"], 0, "alert state freed: {g:?}");
    assert_eq!(m.get("syscall_batcher.evicted_processes"), 0);
    assert_eq!(m.get("alert.forgotten_processes"), 0);
    // Every probe's 18 calls arrived (plus its start-up and exit calls).
    assert!(
        m.get("syscall_buffer.events") >= 18 * n as u64,
        "{}",
        m.get("syscall_buffer.events")
    );
    assert_eq!(
        m.get("syscall_buffer.events"),
        m.get("syscall_source.events")
    );
    assert_eq!(
        m.get("capture.kernel_dropped") + m.get("capture.userspace_dropped"),
        0
    );
}

/// The README's path: `daisi record syscalls` writes per-process traces,
/// `daisi train syscall` with its defaults (`lm`) learns them, and `daisi
/// run` watching the same program live with that model raises no alert on
/// its normal behaviour.
#[test]
fn record_then_train_on_the_recording() {
    if !root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bin = probe(dir.path(), "daisirec");
    let out = dir.path().join("rec");
    let mut rec = Command::new(common::daisi_bin())
        .args([
            "record",
            "syscalls",
            "--comm",
            "daisirec",
            "--duration",
            "3s",
            "--out",
        ])
        .arg(&out)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Start the workload only once the recorder reports it is attached.
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(rec.stderr.take().unwrap()));
    assert!(
        lines.any(|l| l.is_ok_and(|l| l.contains("capture attached"))),
        "recorder did not attach"
    );
    std::thread::spawn(move || lines.for_each(drop));
    let run_probes = |n: usize| {
        for _ in 0..n {
            let mut p = spawn_blocked(&mut Command::new(&bin));
            release(&mut p);
            wait(&mut p);
        }
    };
    run_probes(10);
    let o = rec.wait_with_output().unwrap();
    assert!(o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("of 10 processes"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    let files: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 10);
    // x86_64: getppid 110, getuid 102, getgid 104, geteuid 107, getegid 108, getpid 39.
    let text = std::fs::read_to_string(&files[0]).unwrap();
    assert!(text.starts_with("# daisi-trace v1 abi=x86_64"));
    let calls = daisi::traces::Trace::parse("f", &text).calls;
    let seq = [110u32, 102, 104, 107, 108, 39];
    assert!(calls.windows(6).any(|w| w == seq), "{calls:?}");

    let model = dir.path().join("model");
    let t = Command::new(common::daisi_bin())
        .args(["train", "syscall", "--abi", "x86_64", "--data"])
        .arg(&out)
        .arg("--out")
        .arg(&model)
        .output()
        .unwrap();
    assert!(t.status.success(), "{}", String::from_utf8_lossy(&t.stderr));
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(model.join("model.json")).unwrap()).unwrap();
    assert_eq!(meta["kind"], "lm", "lm is the default with libtorch");

    let alerts = dir.path().join("alerts.jsonl");
    let mut node = common::Daisi::spawn(
        &format!(
            "[node]\nrole = \"both\"\n[syscall_source]\nkind = \"ebpf\"\ncomms = [\"daisirec\"]\n\
             [syscall_classifier]\nmodel = \"{}\"\n[alert]\nconsole = false\njsonl = \"{}\"\n",
            model.display(),
            alerts.display()
        ),
        &[],
    );
    node.wait_running();
    run_probes(10);
    std::thread::sleep(Duration::from_millis(500));
    assert!(node.stop(Duration::from_secs(10)).success());
    let log = node.log();
    assert!(
        common::drained_counter(&log, "syscall_buffer.events") >= 10 * 18,
        "the probes were captured and scored: {log}"
    );
    let raised = common::read_alerts(&alerts);
    assert!(
        raised.is_empty(),
        "the recorded program's normal behaviour raised alerts: {raised:#?}"
    );
}

/// A container's programs are learnt per image: a second container of the
/// image doing what the first did raises nothing (not even the edges from
/// its shell), and its read of `/etc/shadow` is an incident that names the
/// container and its image (ECS `container.id`, `container.image.name`).
#[test]
fn container_programs_are_learnt_per_image_and_alerts_name_the_container() {
    if !root() {
        return;
    }
    let podman = Command::new("podman").arg("--version").output();
    if !common::require(
        common::Prereq::Containers,
        podman.is_ok_and(|o| o.status.success()),
        "podman runs the test's containers (scripts/setup.sh installs it)",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // An image of the host's own dash (as `ctrsh`: the node watches it by
    // name), cat and sleep, with their libraries.
    let rootfs = dir.path().join("rootfs");
    for (from, to) in [
        ("/bin/dash", "bin/ctrsh"),
        ("/bin/cat", "bin/cat"),
        ("/bin/sleep", "bin/sleep"),
    ] {
        let copy = |src: &Path, dst: &Path| {
            std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
            std::fs::copy(src, dst).unwrap();
        };
        copy(Path::new(from), &rootfs.join(to));
        let ldd = Command::new("ldd").arg(from).output().unwrap();
        for lib in String::from_utf8_lossy(&ldd.stdout)
            .split_whitespace()
            .filter(|w| w.starts_with('/'))
        {
            copy(Path::new(lib), &rootfs.join(&lib[1..]));
        }
    }
    std::fs::create_dir_all(rootfs.join("etc")).unwrap();
    std::fs::write(rootfs.join("etc/hostname"), "ctr\n").unwrap();
    std::fs::write(rootfs.join("etc/shadow"), "root:*:1::::::\n").unwrap();
    let image = "localhost/daisi-test-ctr:1";
    let import = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "tar -C {} -c . | podman import -q - {image}",
            rootfs.display()
        ))
        .output()
        .unwrap();
    assert!(
        import.status.success(),
        "{}",
        String::from_utf8_lossy(&import.stderr)
    );
    let run = |script: &str| -> String {
        let o = Command::new("podman")
            .args(["run", "-d", "--network", "none", image, "/bin/ctrsh", "-c"])
            .arg(script)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    let wait = |id: &str| {
        let o = Command::new("podman").args(["wait", id]).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };

    let alerts = dir.path().join("alerts.jsonl");
    let toml = format!(
        "[node]\nrole = \"both\"\nhost = \"ctr-host\"\n\
         [syscall_source]\nkind = \"ebpf\"\ncomms = [\"ctrsh\"]\n\
         [syscall_batcher]\nmax_wait = \"200ms\"\n\
         [baseline]\nlearn_for = \"3s\"\nsave_every = \"1s\"\n\
         [alert]\nconsole = false\njsonl = \"{}\"\n",
        alerts.display()
    );
    let baselines = dir.path().join("baselines");
    let env = [("DAISI__BASELINE__DIR", baselines.to_str().unwrap())];
    let mut node = common::Daisi::spawn(&toml, &env);
    node.wait_running();
    // Learning (3 s from the first batch) then judged: the same everyday
    // work throughout.
    let everyday = "i=0; while [ $i -lt 25 ]; do /bin/cat /etc/hostname >/dev/null; /bin/sleep 0.2; i=$((i+1)); done";
    let first = run(everyday);
    wait(&first);
    let second = run(&format!(
        "{}; /bin/cat /etc/shadow >/dev/null; /bin/sleep 1",
        everyday.replace("25", "5")
    ));
    wait(&second);
    let a = common::wait_for_alert(
        &alerts,
        Duration::from_secs(15),
        |a| a.to_string().contains("baseline.sensitive_read"),
        "no alert for the second container's read of /etc/shadow",
        || node.log(),
    );
    assert!(node.stop(Duration::from_secs(10)).success());
    let _ = Command::new("podman")
        .args(["rm", "-f", &first, &second])
        .output();
    let _ = Command::new("podman").args(["rmi", "-f", image]).output();

    assert_eq!(a["container"]["id"], second.as_str(), "{a:#}");
    assert_eq!(a["container"]["image"]["name"], image, "{a:#}");
    let text = a.to_string();
    assert!(text.contains(&format!("[{image}] ")), "{a:#}");
    assert!(text.contains("/etc/shadow"), "{a:#}");
    let all = common::read_alerts(&alerts);
    assert!(
        !all.iter()
            .any(|x| x.to_string().contains("baseline.new_child")),
        "the second container's programs were judged by the first's: {all:#?}"
    );
    let profile = std::fs::read_to_string(baselines.join("ctr-host.json")).unwrap();
    assert!(profile.contains(&format!("[{image}] ")), "{profile}");
}
