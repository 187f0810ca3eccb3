//! The web console in a real browser: headless Chromium (Debian's) driven
//! over WebDriver (Debian's chromedriver, the `fantoccini` client). A
//! compute node with the console hears two collectors over NATS: one
//! replays ADFA-LD attack traces, one captures live (eBPF, as root) a
//! process whose command line holds a `<script>`. Screenshots of each page
//! go to `target/tmp/console/`.

mod common;

use common::*;
use fantoccini::{Client, ClientBuilder};
use serde_json::{json, Value};
use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(60);

/// chromedriver on a free loopback port, killed on drop.
struct Driver(Child, u16);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn driver() -> Driver {
    let port = free_port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver (scripts/setup.sh installs chromium-driver)");
    let until = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < until, "chromedriver did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Driver(child, port)
}

async fn browser(d: &Driver) -> Client {
    tls_provider();
    let caps = json!({
        "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1280,900"],
        }
    });
    ClientBuilder::rustls()
        .unwrap()
        .capabilities(caps.as_object().unwrap().clone())
        .connect(&format!("http://127.0.0.1:{}", d.1))
        .await
        .expect("a browser session")
}

/// Runs `script` until `done` holds for what it returns.
async fn wait_js(c: &Client, what: &str, script: &str, done: impl Fn(&Value) -> bool) -> Value {
    let until = Instant::now() + T;
    loop {
        let v = c.execute(script, vec![]).await.unwrap_or(Value::Null);
        if done(&v) {
            return v;
        }
        assert!(
            Instant::now() < until,
            "timed out waiting for {what}; last: {v}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn screenshot(c: &Client, name: &str) {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("console");
    std::fs::create_dir_all(&dir).unwrap();
    let png = c.screenshot().await.unwrap();
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
}

const PROBE_ARGS: &str = "<script>window.pwned=1</script>";

fn compute_with_console(url: &str, console: u16, token: Option<&str>) -> String {
    let token = token.map_or(String::new(), |t| format!("token = \"{t}\"\n"));
    compute_toml(
        "con-cmp",
        url,
        &format!(
            "[console]\nlisten = \"127.0.0.1:{console}\"\n{token}[syscall_classifier]\nmodel = \"models/syscall\"\nthreshold = 0.0\n"
        ),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn the_console_shows_alerts_incidents_and_nodes_in_a_browser() {
    if !root("live capture of the probe needs eBPF") {
        return;
    }
    let Some(adfa) = adfa() else { return };
    let nats = NatsServer::start(&[]);
    let port = free_port();
    let mut compute = Daisi::spawn(&compute_with_console(&nats.url(), port, None), &[]);
    compute.wait_running();
    let mut replay = Daisi::spawn(
        &format!(
            "[node]\nrole = \"collector\"\nid = \"con-replay\"\nhost = \"replayhost\"\n\
             [nats]\nservers = [\"{}\"]\n[heartbeat]\ninterval = \"200ms\"\nsilence_after = \"2s\"\n\
             [syscall_source]\nkind = \"replay\"\npath = \"{}\"\nfilter = \"Attack_Data_Master/\"\n\
             abi = \"i386\"\nmax_traces = 30\n",
            nats.url(),
            adfa.display()
        ),
        &[],
    );
    let mut live = Daisi::spawn(
        &format!(
            "[node]\nrole = \"collector\"\nid = \"con-live\"\nhost = \"livehost\"\n\
             [nats]\nservers = [\"{}\"]\n[heartbeat]\ninterval = \"200ms\"\nsilence_after = \"2s\"\n\
             [syscall_source]\nkind = \"ebpf\"\ncomms = [\"daisiprobe\"]\n",
            nats.url()
        ),
        &[],
    );
    live.wait_running();
    let dir = tempfile::tempdir().unwrap();
    let probe = dir.path().join("daisiprobe");
    // `true` takes any argument.
    std::fs::copy("/bin/true", &probe).unwrap();
    // `; true`: the shell forks the probe, which joins the shell's tree.
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!("{} '{PROBE_ARGS}'; true", probe.display()))
        .status()
        .unwrap();
    assert!(status.success());

    let d = driver();
    let c = browser(&d).await;
    c.goto(&format!("http://127.0.0.1:{port}/")).await.unwrap();
    // Alerts from the replay, newest first, and the live incident.
    let hosts = wait_js(
        &c,
        "alerts from both collectors",
        "return [...document.querySelectorAll('#alerts tr.alert-row')].map(r => r.children[2].textContent)",
        |v| {
            let hosts: Vec<&str> = v.as_array().map_or(vec![], |a| a.iter().filter_map(Value::as_str).collect());
            hosts.iter().filter(|h| **h == "replayhost").count() >= 30 && hosts.contains(&"livehost")
        },
    )
    .await;
    assert!(hosts.as_array().unwrap().len() >= 31);
    screenshot(&c, "alerts").await;

    // The host filter keeps only that host's alerts.
    c.execute(
        "const s = document.getElementById('f-host'); s.value = 'livehost'; s.dispatchEvent(new Event('change'));",
        vec![],
    )
    .await
    .unwrap();
    wait_js(
        &c,
        "only livehost's alerts",
        "return [...document.querySelectorAll('#alerts tr.alert-row')].map(r => r.children[2].textContent)",
        |v| v.as_array().is_some_and(|a| !a.is_empty() && a.iter().all(|h| h == "livehost")),
    )
    .await;
    screenshot(&c, "alerts-filtered").await;

    // The incident page: the tree, the probe under its shell, its command
    // line shown as text and never run.
    c.execute(
        "[...document.querySelectorAll('#alerts tr.alert-row')].find(r => r.textContent.includes('daisiprobe')).click()",
        vec![],
    )
    .await
    .unwrap();
    let page = wait_js(
        &c,
        "the incident's tree",
        "const t = document.getElementById('tree'); if (!t) return null;
         return { names: [...t.querySelectorAll('.proc-name')].map(e => e.textContent),
                  args: [...t.querySelectorAll('.args')].map(e => e.textContent),
                  nested: !!t.querySelector('li > ul .proc'),
                  scripts: document.querySelectorAll('script').length,
                  pwned: window.pwned === undefined ? null : window.pwned }",
        |v| {
            v["names"]
                .as_array()
                .is_some_and(|n| n.iter().any(|x| x == "daisiprobe"))
        },
    )
    .await;
    assert!(
        page["nested"].as_bool().unwrap(),
        "the probe sits under its shell: {page}"
    );
    let args = page["args"].to_string();
    assert!(args.contains(PROBE_ARGS), "{args}");
    assert_eq!(page["scripts"], 1, "only the console's own script: {page}");
    assert_eq!(page["pwned"], Value::Null, "{page}");
    screenshot(&c, "incident").await;

    // The nodes page: every node, with its charts.
    c.goto(&format!("http://127.0.0.1:{port}/#/nodes"))
        .await
        .unwrap();
    let nodes = wait_js(
        &c,
        "three nodes",
        "return [...document.querySelectorAll('#nodes tr.node-row')].map(r => [r.children[0].textContent, r.querySelectorAll('svg.spark polyline').length])",
        |v| v.as_array().is_some_and(|a| a.len() >= 3),
    )
    .await;
    for n in nodes.as_array().unwrap() {
        assert_eq!(n[1], 2, "two charts per node: {nodes}");
    }
    screenshot(&c, "nodes").await;
    c.close().await.unwrap();
    // Without a token the console is read-only.
    let write = ureq::post(&format!("http://127.0.0.1:{port}/api/alerts/any/accept")).send_empty();
    assert!(
        matches!(write, Err(ureq::Error::StatusCode(403))),
        "{write:?}"
    );
    for n in [&mut replay, &mut live, &mut compute] {
        assert!(n.stop(T).success(), "{}", n.log());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_console_with_a_token_asks_for_it() {
    let nats = NatsServer::start(&[]);
    let port = free_port();
    let token = "console-test-token-0123456789";
    let mut compute = Daisi::spawn(&compute_with_console(&nats.url(), port, Some(token)), &[]);
    compute.wait_running();
    let api = format!("http://127.0.0.1:{port}/api/alerts");
    let refused = ureq::get(&api).call();
    assert!(
        matches!(refused, Err(ureq::Error::StatusCode(401))),
        "{refused:?}"
    );
    let wrong = ureq::get(&api)
        .header("Authorization", "Bearer console-test-token-XXXXXXXXXX")
        .call();
    assert!(
        matches!(wrong, Err(ureq::Error::StatusCode(401))),
        "{wrong:?}"
    );
    let ok = ureq::get(&api)
        .header("Authorization", &format!("Bearer {token}"))
        .call()
        .unwrap();
    assert_eq!(ok.status(), 200);

    let d = driver();
    let c = browser(&d).await;
    c.goto(&format!("http://127.0.0.1:{port}/")).await.unwrap();
    wait_js(
        &c,
        "the token form",
        "return !!document.getElementById('token-form')",
        |v| v == true,
    )
    .await;
    screenshot(&c, "token").await;
    c.execute(
        &format!(
            "document.getElementById('token').value = '{token}';
             document.getElementById('token-form').requestSubmit();"
        ),
        vec![],
    )
    .await
    .unwrap();
    wait_js(
        &c,
        "the alerts page",
        "return !!(document.getElementById('alerts') || document.getElementById('no-alerts'))",
        |v| v == true,
    )
    .await;
    c.close().await.unwrap();
    let _ = std::io::stdout().flush();
    assert!(compute.stop(T).success());
}
