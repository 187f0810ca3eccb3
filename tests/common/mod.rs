//! Test harness: real `nats-server` processes on free loopback ports, real
//! `daisi` processes, and a watcher that reads every node's counters from
//! the heartbeats it publishes.
#![allow(dead_code)]

use daisi::messages::{Envelope, Heartbeat, Payload};
use futures::StreamExt;
use std::collections::HashMap;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What a test may need beyond `cargo test` itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prereq {
    /// ADFA-LD in `../shared/datasets/adfa-ld/`.
    Data,
    /// Root (eBPF, live capture, namespaces, cgroups, nftables).
    Root,
    /// The traffic lab's tools (`scripts/setup.sh` installs them).
    Lab,
    /// A peer tool the tests compare against (NFStream).
    Peers,
    /// A container engine (podman, `scripts/setup.sh` installs it).
    Containers,
}

impl Prereq {
    pub fn name(self) -> &'static str {
        match self {
            Prereq::Data => "data",
            Prereq::Root => "root",
            Prereq::Lab => "lab",
            Prereq::Peers => "peers",
            Prereq::Containers => "containers",
        }
    }
}

/// True when the prerequisite is there. When it is not: under
/// `DAISI_REQUIRE` naming it (comma-separated names, or `all`; CI sets
/// `all`) the test fails with `why`; otherwise it prints that it skipped
/// and the caller returns.
pub fn require(p: Prereq, present: bool, why: &str) -> bool {
    if present {
        return true;
    }
    let required = std::env::var("DAISI_REQUIRE").unwrap_or_default();
    if required
        .split(',')
        .map(str::trim)
        .any(|r| r == "all" || r == p.name())
    {
        panic!(
            "missing prerequisite '{}' (DAISI_REQUIRE={required}): {why}",
            p.name()
        );
    }
    eprintln!(
        "skipped: {why} (set DAISI_REQUIRE={} to fail instead)",
        p.name()
    );
    false
}

/// True when this process runs as root (or fails/skips, see [`require`]).
pub fn root(why: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    require(Prereq::Root, unsafe { libc::geteuid() } == 0, why)
}

/// Trace files the tests make themselves, in ADFA-LD's layout
/// (`Training_Data_Master/` 900 traces, `Validation_Data_Master/` 300):
/// i386 numbers of calls common in ADFA-LD, deterministic, 80 to 1,500
/// calls each. For tests that need syscall traffic, not ADFA-LD's content
/// (so they run without the dataset).
pub fn replay_traces() -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("replay-traces-v2");
        let done = root.join("complete");
        if done.exists() {
            return root;
        }
        const CALLS: [u32; 24] = [
            3, 4, 5, 6, 45, 54, 78, 91, 102, 114, 122, 125, 140, 142, 168, 174, 175, 192, 195, 197,
            220, 221, 240, 265,
        ];
        // xorshift64: deterministic, no dependency.
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let tmp = root.with_extension(format!("tmp{}", std::process::id()));
        for (folder, n) in [
            ("Training_Data_Master", 900),
            ("Validation_Data_Master", 300),
        ] {
            let dir = tmp.join(folder);
            std::fs::create_dir_all(&dir).unwrap();
            for i in 0..n {
                let len = 80 + (next() % 1421) as usize;
                // Runs of a few repeated patterns, as real programs have.
                let mut calls = Vec::with_capacity(len);
                while calls.len() < len {
                    let start = (next() % CALLS.len() as u64) as usize;
                    let width = 2 + (next() % 5) as usize;
                    for _ in 0..1 + next() % 6 {
                        calls.extend((0..width).map(|k| CALLS[(start + k) % CALLS.len()]));
                    }
                }
                calls.truncate(len);
                let text: Vec<String> = calls.iter().map(u32::to_string).collect();
                std::fs::write(dir.join(format!("T-{i:04}.txt")), text.join(" ") + "\n").unwrap();
            }
        }
        std::fs::write(tmp.join("complete"), "").unwrap();
        let _ = std::fs::remove_dir_all(&root);
        // Another test binary may have finished first: either copy will do.
        if std::fs::rename(&tmp, &root).is_err() {
            let _ = std::fs::remove_dir_all(&tmp);
        }
        root
    })
    .clone()
}

/// The ADFA-LD archive, or `None` (see [`require`]).
pub fn adfa() -> Option<PathBuf> {
    let p = daisi::traces::shared_adfa_zip();
    require(
        Prereq::Data,
        p.is_some(),
        "../shared/datasets/adfa-ld/ADFA-LD.zip is absent",
    );
    p
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The NATS server tests run: `$NATS_SERVER`, else the recent server
/// `scripts/setup.sh` installs (`$DAISI_NATS_SERVER`, default
/// /var/cache/daisi/nats-server: the durable data path needs >= 2.11).
fn nats_server_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("NATS_SERVER") {
        return p.into();
    }
    let recent = std::env::var_os("DAISI_NATS_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/var/cache/daisi/nats-server".into());
    if recent.exists() {
        return recent;
    }
    for dir in std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .chain(["/usr/sbin", "/usr/local/bin"])
    {
        let p = Path::new(dir).join("nats-server");
        if p.exists() {
            return p;
        }
    }
    panic!("nats-server not found: run scripts/setup.sh (installs a recent nats-server)");
}

/// A nats-server on 127.0.0.1 with JetStream on (its store in a directory
/// of its own, kept across restarts), killed on drop.
pub struct NatsServer {
    pub port: u16,
    args: Vec<String>,
    child: Option<Child>,
    pub log: PathBuf,
    _dir: tempfile::TempDir,
}

impl NatsServer {
    pub fn start(extra: &[&str]) -> NatsServer {
        let dir = tempfile::tempdir().unwrap();
        let mut s = NatsServer {
            port: free_port(),
            args: extra.iter().map(|s| s.to_string()).collect(),
            child: None,
            log: dir.path().join("nats.log"),
            _dir: dir,
        };
        s.spawn();
        s
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(nats_server_bin())
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string()])
            .arg("-js")
            .arg("-sd")
            .arg(self._dir.path().join("js"))
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting nats-server");
        self.child = Some(child);
        let until = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < until,
                "nats-server did not start: {}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Creates the data streams as a compute node does (collectors only
    /// publish), for tests that run collectors alone.
    pub fn create_data_stream(&self) {
        tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(self.create_data_stream_async());
    }

    /// [`NatsServer::create_data_stream`] from async tests.
    pub async fn create_data_stream_async(&self) {
        let client = async_nats::connect(self.url()).await.unwrap();
        daisi::actors::transport::stream::ensure_streams(
            &client,
            &daisi::nats::DataStreamConfig::default(),
        )
        .await
        .unwrap();
    }

    /// SIGKILL: the broker vanishes mid-stream.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A JetStream cluster of `n` nats-servers on loopback ports (each with
/// its own store), for replication tests.
#[allow(dead_code)]
pub struct NatsCluster {
    pub servers: Vec<NatsServer>,
}

#[allow(dead_code)]
impl NatsCluster {
    pub fn start(n: usize) -> NatsCluster {
        let cluster_ports: Vec<u16> = (0..n).map(|_| free_port()).collect();
        let routes = cluster_ports
            .iter()
            .map(|p| format!("nats://127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",");
        let servers = cluster_ports
            .iter()
            .enumerate()
            .map(|(i, cp)| {
                NatsServer::start(&[
                    "-n",
                    &format!("n{i}"),
                    "--cluster_name",
                    "daisi-test",
                    "--cluster",
                    &format!("nats://127.0.0.1:{cp}"),
                    "--routes",
                    &routes,
                ])
            })
            .collect();
        NatsCluster { servers }
    }

    /// Every server's URL, as a TOML list's items.
    pub fn urls_toml(&self) -> String {
        self.servers
            .iter()
            .map(|s| format!("\"{}\"", s.url()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A `daisi` process with a config file written for it.
pub struct Daisi {
    child: Option<Child>,
    pub stderr: PathBuf,
    pub stdout: PathBuf,
    _dir: tempfile::TempDir,
}

pub fn daisi_bin() -> &'static str {
    env!("CARGO_BIN_EXE_daisi")
}

impl Daisi {
    /// Starts `daisi run` with `toml` as its config file, from the crate root
    /// (so `models/syscall` resolves).
    pub fn spawn(toml: &str, env: &[(&str, &str)]) -> Daisi {
        Self::spawn_with(&[], toml, env)
    }

    /// [`Daisi::spawn`] behind a wrapper that execs it, such as
    /// `ip netns exec NS` (so the pid is still daisi's).
    pub fn spawn_with(wrapper: &[&str], toml: &str, env: &[(&str, &str)]) -> Daisi {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("node.toml");
        std::fs::File::create(&cfg)
            .unwrap()
            .write_all(toml.as_bytes())
            .unwrap();
        let stderr = dir.path().join("stderr.log");
        let stdout = dir.path().join("stdout.log");
        let mut argv: Vec<&str> = wrapper.to_vec();
        argv.push(daisi_bin());
        let child = Command::new(argv[0])
            .args(&argv[1..])
            .args(["run", "--config"])
            .arg(&cfg)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("RUST_LOG", "info")
            // Host profiles stay in the test's directory.
            .env("DAISI__BASELINE__DIR", dir.path().join("baselines"))
            .envs(env.iter().copied())
            .stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .expect("starting daisi");
        Daisi {
            child: Some(child),
            stderr,
            stdout,
            _dir: dir,
        }
    }

    /// Waits until the node reports itself running (panics after 20 s).
    pub fn wait_running(&self) {
        let until = Instant::now() + Duration::from_secs(20);
        while !self.log().contains("node running") {
            assert!(
                Instant::now() < until,
                "node did not start:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Exit status if it has exited.
    pub fn try_wait(&mut self) -> Option<std::process::ExitStatus> {
        self.child.as_mut().and_then(|c| c.try_wait().unwrap())
    }

    /// SIGTERM, then waits for the exit (panics after `timeout`).
    pub fn stop(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("running");
        let _ = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status();
        let until = Instant::now() + timeout;
        loop {
            if let Some(s) = c.try_wait().unwrap() {
                return s;
            }
            if Instant::now() > until {
                let _ = c.kill();
                panic!("daisi did not stop within {timeout:?}:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: the node vanishes without a word.
    pub fn stop_hard(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Waits for the process to exit by itself.
    pub fn wait_exit(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let until = Instant::now() + timeout;
        loop {
            if let Some(s) = self.try_wait() {
                return s;
            }
            assert!(
                Instant::now() < until,
                "daisi did not exit:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daisi {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Latest heartbeat of every node, kept up to date from NATS.
#[derive(Clone, Default)]
pub struct Heartbeats {
    latest: Arc<Mutex<HashMap<String, Heartbeat>>>,
}

impl Heartbeats {
    pub async fn watch(client: &async_nats::Client) -> Heartbeats {
        let hb = Heartbeats::default();
        let mut sub = client.subscribe("daisi.v1.heartbeat.*").await.unwrap();
        client.flush().await.unwrap();
        let latest = hb.latest.clone();
        tokio::spawn(async move {
            while let Some(m) = sub.next().await {
                if let Ok(env) = Envelope::decode(&m.payload, 8 << 20) {
                    if let Payload::Heartbeat(h) = env.payload {
                        latest.lock().unwrap().insert(env.node_id, h);
                    }
                }
            }
        });
        hb
    }

    /// Latest heartbeat of the node whose id starts with `prefix`.
    pub fn get(&self, prefix: &str) -> Option<Heartbeat> {
        self.latest
            .lock()
            .unwrap()
            .iter()
            .find(|(k, _)| k.starts_with(prefix))
            .map(|(_, v)| v.clone())
    }

    pub fn counter(&self, prefix: &str, name: &str) -> u64 {
        self.get(prefix)
            .and_then(|h| h.counters.get(name).copied())
            .unwrap_or(0)
    }

    /// Waits until `pred` holds for the node's latest heartbeat.
    pub async fn wait_for(
        &self,
        prefix: &str,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&Heartbeat) -> bool,
    ) -> Heartbeat {
        let until = Instant::now() + timeout;
        loop {
            if let Some(h) = self.get(prefix) {
                if pred(&h) {
                    return h;
                }
            }
            if Instant::now() > until {
                panic!(
                    "timed out waiting for {prefix}: {what}; last heartbeat: {:?}",
                    self.get(prefix)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The final heartbeat a node sends when it stops.
    pub async fn final_of(&self, prefix: &str, timeout: Duration) -> Heartbeat {
        self.wait_for(prefix, "final heartbeat", timeout, |h| h.stopping)
            .await
    }
}

/// Config of a collector replaying `traces` ADFA-LD training traces.
pub fn collector_toml(
    id: &str,
    host: &str,
    url: &str,
    replay: &Path,
    traces: usize,
    extra: &str,
) -> String {
    format!(
        r#"
[node]
role = "collector"
id = "{id}"
host = "{host}"
shutdown_deadline = "10s"
[nats]
servers = ["{url}"]
[heartbeat]
interval = "200ms"
silence_after = "2s"
[syscall_source]
kind = "replay"
path = "{replay}"
filter = "Training_Data_Master/"
abi = "i386"
max_traces = {traces}
{extra}
"#,
        replay = replay.display()
    )
}

/// Config of a compute node.
pub fn compute_toml(id: &str, url: &str, extra: &str) -> String {
    format!(
        r#"
[node]
role = "compute"
id = "{id}"
host = "computehost"
[nats]
servers = ["{url}"]
[heartbeat]
interval = "200ms"
silence_after = "2s"
[alert]
console = false
{extra}
"#
    )
}

/// A counter from the "node stopped" line a stopping node logs (0 when the
/// node never counted it).
#[allow(dead_code)]
pub fn drained_counter(log: &str, name: &str) -> u64 {
    let at = log
        .rfind("node stopped")
        .expect("the node logged its counters");
    let key = format!("\"{name}\":");
    let Some(i) = log[at..].find(&key) else {
        return 0;
    };
    let rest = &log[at + i + key.len()..];
    rest[..rest.find([',', '}']).unwrap()].parse().unwrap()
}

/// Runs `daisi run --config CFG` as nobody, with no capabilities (the
/// config's directory is made readable to it).
#[allow(dead_code)]
pub fn run_unprivileged(cfg: &Path) -> std::process::Output {
    let dir = cfg.parent().unwrap();
    let mut perms = std::fs::metadata(dir).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(dir, perms).unwrap();
    Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
        ])
        .arg(daisi_bin())
        .args(["run", "--config"])
        .arg(cfg)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("setpriv (util-linux)")
}

/// The alerts of a JSON Lines alert file (a line still being written is
/// skipped; a missing file is no alerts).
pub fn read_alerts(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Polls the alert file until an alert matches `pred` and returns it;
/// panics after `timeout` with `what` and `context()` (the nodes' logs).
pub fn wait_for_alert(
    path: &Path,
    timeout: Duration,
    pred: impl Fn(&serde_json::Value) -> bool,
    what: &str,
    context: impl Fn() -> String,
) -> serde_json::Value {
    let until = Instant::now() + timeout;
    loop {
        if let Some(a) = read_alerts(path).into_iter().find(|a| pred(a)) {
            return a;
        }
        assert!(Instant::now() < until, "{what}:\n{}", context());
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The process state letter from `/proc/<pid>/stat` (`T` = stopped).
pub fn process_state(pid: u32) -> String {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    stat.rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// Waits (up to 5 s) until the process is stopped: a signal is delivered
/// asynchronously, so right after kill(2) the state may still be `R`.
pub fn wait_stopped(pid: u32) -> bool {
    let until = Instant::now() + Duration::from_secs(5);
    while process_state(pid) != "T" {
        if Instant::now() > until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// Both of rustls's crypto providers are in the tests' dependencies
/// (async-nats brings ring, the WebDriver client aws-lc-rs), so rustls
/// cannot pick one by itself: a test that makes TLS clients chooses ring.
#[allow(dead_code)]
pub fn tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
