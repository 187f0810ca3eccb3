//! `daisi status`: the fleet from its heartbeats. Over NATS (a collector's
//! or compute node's configuration) it listens to every node's heartbeats
//! for a while; for the `both` role it reads the local node's health file.
//! What it saw is remembered (`--state`), so the next look shows the drops
//! since this one, and nodes heard before but silent now.

use super::run::ConfigArgs;
use crate::actors::alert::sinks::console::printable;
use crate::actors::runtime::heartbeat::Health;
use crate::actors::runtime::now_ns;
use crate::config::Config;
use crate::messages::{Envelope, Heartbeat, Payload, PayloadKind};
use anyhow::Context as _;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// One JSON object per node, for scripts.
    #[arg(long)]
    pub json: bool,
    /// How long to listen for heartbeats (default: `heartbeat.interval`
    /// and a second).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub wait: Option<Duration>,
    /// Where the last look is kept (default:
    /// `$XDG_STATE_HOME/daisi/status.json`, else
    /// `~/.local/state/daisi/status.json`).
    #[arg(long)]
    pub state: Option<PathBuf>,
}

/// One node as `daisi status` shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NodeStatus {
    pub node_id: String,
    pub host: String,
    pub role: String,
    pub version: String,
    pub uptime_s: u64,
    /// Seconds since its last heartbeat.
    pub last_heartbeat_s: f64,
    pub cpu_percent: f32,
    pub rss_bytes: u64,
    /// Messages waiting in its queues (buffers, mailboxes, unacknowledged).
    pub queued: u64,
    /// Everything it counted as dropped, in all.
    pub dropped: u64,
    /// Dropped since the last look (all of it for a node not seen before).
    pub dropped_since_last_look: u64,
    /// Heard before, not during this look.
    pub silent: bool,
    /// Its last heartbeat said it was stopping.
    pub stopping: bool,
}

/// The last look, kept between runs.
#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    nodes: BTreeMap<String, Seen>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Seen {
    host: String,
    role: String,
    version: String,
    /// When its last heartbeat was heard, ns since the Unix epoch.
    heard_ns: u64,
    dropped: u64,
}

/// Nodes not heard from for this long are forgotten.
const FORGET_AFTER: Duration = Duration::from_secs(7 * 24 * 3600);

fn default_state() -> PathBuf {
    let base = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(|| PathBuf::from("/var/lib/daisi"));
    base.join("daisi/status.json")
}

/// Everything the node counts as dropped, and what waits in its queues.
fn totals(hb: &Heartbeat) -> (u64, u64) {
    let dropped = hb
        .counters
        .iter()
        .filter(|(k, _)| k.split('.').any(|p| p == "dropped" || p == "dead_letters"))
        .map(|(_, v)| v)
        .sum();
    let queued = hb
        .queue_depths
        .iter()
        .filter(|(k, _)| {
            k.ends_with(".queued")
                || k.ends_with(".waiting")
                || k.ends_with(".in_flight")
                || k.ends_with(".unacked")
        })
        .map(|(_, v)| v)
        .sum();
    (dropped, queued)
}

/// The latest heartbeat of every node heard, with when it was heard.
type Heard = BTreeMap<String, (String, Heartbeat, u64)>;

async fn listen_nats(cfg: &Config, wait: Duration) -> anyhow::Result<Heard> {
    let metrics = crate::metrics::Metrics::new();
    let client = crate::nats::connect(&cfg.nats, "daisi status", &metrics).await?;
    let mut sub = client
        .subscribe(crate::nats::subject_all(PayloadKind::Heartbeat))
        .await
        .context("subscribing to heartbeats")?;
    let mut heard = Heard::new();
    let until = tokio::time::Instant::now() + wait;
    while let Ok(Some(m)) = tokio::time::timeout_at(until, sub.next()).await {
        let Ok(env) = Envelope::decode(&m.payload, cfg.nats.max_message_bytes) else {
            continue;
        };
        if let Payload::Heartbeat(hb) = env.payload {
            heard.insert(env.node_id, (env.host, hb, now_ns()));
        }
    }
    Ok(heard)
}

fn read_local(cfg: &Config) -> anyhow::Result<Heard> {
    let path = cfg.heartbeat.health_file.as_ref().context(
        "the both role has no broker to listen to: set heartbeat.health_file to see the local node",
    )?;
    let h = Health::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(Heard::from([(h.node_id, (h.host, h.heartbeat, h.ts_ns))]))
}

/// Rows for what was heard and what was remembered; updates the memory.
fn rows(heard: &Heard, state: &mut State, now: u64) -> Vec<NodeStatus> {
    let mut out = Vec::new();
    for (id, (host, hb, at)) in heard {
        let (dropped, queued) = totals(hb);
        let before = state.nodes.get(id).map_or(0, |s| s.dropped.min(dropped));
        out.push(NodeStatus {
            node_id: id.clone(),
            host: host.clone(),
            role: hb.role.as_str().into(),
            version: hb.version.clone(),
            uptime_s: hb.uptime_s,
            last_heartbeat_s: now.saturating_sub(*at) as f64 / 1e9,
            cpu_percent: hb.cpu_percent,
            rss_bytes: hb.rss_bytes,
            queued,
            dropped,
            dropped_since_last_look: dropped - before,
            silent: false,
            stopping: hb.stopping,
        });
        state.nodes.insert(
            id.clone(),
            Seen {
                host: host.clone(),
                role: hb.role.as_str().into(),
                version: hb.version.clone(),
                heard_ns: *at,
                dropped,
            },
        );
    }
    state
        .nodes
        .retain(|_, s| now.saturating_sub(s.heard_ns) < FORGET_AFTER.as_nanos() as u64);
    for (id, s) in &state.nodes {
        if heard.contains_key(id) {
            continue;
        }
        out.push(NodeStatus {
            node_id: id.clone(),
            host: s.host.clone(),
            role: s.role.clone(),
            version: s.version.clone(),
            uptime_s: 0,
            last_heartbeat_s: now.saturating_sub(s.heard_ns) as f64 / 1e9,
            cpu_percent: 0.0,
            rss_bytes: 0,
            queued: 0,
            dropped: s.dropped,
            dropped_since_last_look: 0,
            silent: true,
            stopping: false,
        });
    }
    out.sort_by(|a, b| (a.silent, &a.host, &a.node_id).cmp(&(b.silent, &b.host, &b.node_id)));
    out
}

fn table(rows: &[NodeStatus], colour: bool) -> String {
    let mut lines = vec![format!(
        "{:<28} {:<18} {:<9} {:<8} {:>8} {:>7} {:>6} {:>8} {:>7} {:>10}",
        "NODE",
        "HOST",
        "ROLE",
        "VERSION",
        "UPTIME",
        "LAST",
        "CPU%",
        "RSS MB",
        "QUEUED",
        "DROPS NEW"
    )];
    for r in rows {
        let state = if r.silent {
            "silent"
        } else if r.stopping {
            "stopping"
        } else {
            ""
        };
        let line = format!(
            "{:<28} {:<18} {:<9} {:<8} {:>7}s {:>6.0}s {:>6.1} {:>8} {:>7} {:>10} {state}",
            printable(&r.node_id),
            printable(&r.host),
            r.role,
            printable(&r.version),
            r.uptime_s,
            r.last_heartbeat_s,
            r.cpu_percent,
            r.rss_bytes / 1_000_000,
            r.queued,
            r.dropped_since_last_look,
        );
        lines.push(if colour && (r.silent || r.dropped_since_last_look > 0) {
            format!("\x1b[31m{line}\x1b[0m")
        } else {
            line
        });
    }
    lines.join("\n")
}

/// Runs `daisi status`.
pub fn run(args: &StatusArgs) -> anyhow::Result<()> {
    let cfg = Config::load(args.config.config.as_deref(), args.config.role)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let wait = args
        .wait
        .unwrap_or(cfg.heartbeat.interval + Duration::from_secs(1));
    let heard = if cfg.node.role.uses_nats() {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(listen_nats(&cfg, wait))?
    } else {
        read_local(&cfg)?
    };
    let path = args.state.clone().unwrap_or_else(default_state);
    let mut state: State = std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let rows = rows(&heard, &mut state, now_ns());
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    if let Err(e) = std::fs::write(&path, serde_json::to_vec(&state)?) {
        eprintln!("warning: cannot keep this look in {}: {e}", path.display());
    }
    if args.json {
        for r in &rows {
            println!("{}", serde_json::to_string(r)?);
        }
    } else {
        let colour = std::io::IsTerminal::is_terminal(&std::io::stdout());
        println!("{}", table(&rows, colour));
        if rows.is_empty() {
            println!(
                "(no node heard within {})",
                humantime::format_duration(wait)
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::Role;

    fn hb(dropped: u64) -> Heartbeat {
        Heartbeat {
            role: Role::Collector,
            version: "0.1.0".into(),
            uptime_s: 9,
            counters: [("outbound.dropped".to_string(), dropped)].into(),
            queue_depths: [("outbound.queued".to_string(), 4)].into(),
            cpu_percent: 1.0,
            rss_bytes: 5,
            stopping: false,
        }
    }

    #[test]
    fn drops_since_the_last_look_and_silent_nodes() {
        let mut state = State::default();
        let now = 1_000_000_000_000;
        let first = Heard::from([("c1".to_string(), ("web1".to_string(), hb(3), now))]);
        let r = rows(&first, &mut state, now);
        assert_eq!(
            (r[0].dropped, r[0].dropped_since_last_look, r[0].queued),
            (3, 3, 4)
        );
        let later = Heard::from([("c1".to_string(), ("web1".to_string(), hb(5), now + 10))]);
        let r = rows(&later, &mut state, now + 10);
        assert_eq!(r[0].dropped_since_last_look, 2);
        let r = rows(&Heard::new(), &mut state, now + 20);
        assert!(r[0].silent, "{r:?}");
        assert!(table(&r, false).contains("silent"));
    }

    #[test]
    fn names_from_the_network_are_printed_escaped() {
        let mut state = State::default();
        let heard = Heard::from([("a\x1b[2Jb".to_string(), ("h".to_string(), hb(0), 1))]);
        let t = table(&rows(&heard, &mut state, 1), false);
        assert!(!t.contains('\x1b'), "{t:?}");
    }
}
