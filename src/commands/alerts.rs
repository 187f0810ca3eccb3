//! `daisi alerts list` and `daisi alerts tail`: alerts for people without a
//! SIEM, read from the JetStream stream when the configuration enables that
//! sink (`[alert.jetstream]`, connecting with `[nats]`), else from the JSON
//! Lines sink (`[alert] jsonl`, rotated files included, oldest first). An
//! update of a folded alert (same id, higher count) replaces the alert it
//! updates in `list`.

use crate::messages::{Alert, Severity};
use anyhow::Context;
use clap::Args;
use std::io::{BufRead, Seek};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Args, Debug, Clone)]
pub struct AlertsSource {
    /// Read this alert file (instead of JetStream or `[alert] jsonl`).
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// Configuration naming the JetStream stream (`[alert.jetstream]`,
    /// `[nats]`) or the alert file (`[alert] jsonl`).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Only alerts at least this severe: low, medium, high, critical.
    #[arg(long, value_parser = parse_severity)]
    pub severity: Option<Severity>,
    /// Only this module (syscall, network, incident, baseline, log, sigma).
    #[arg(long)]
    #[arg(value_enum)]
    pub module: Option<crate::messages::AlertModule>,
    /// Only alerts indicating this ATT&CK technique (`T1003` takes its
    /// sub-techniques, `T1003.008` only itself).
    #[arg(long, default_value = "")]
    pub technique: String,
    /// Only alerts indicating this ATT&CK tactic (`credential-access`).
    #[arg(long, default_value = "")]
    pub tactic: String,
    /// Print JSON lines instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug, Clone)]
pub struct ListArgs {
    #[command(flatten)]
    pub source: AlertsSource,
    /// Only alerts newer than this: a duration ("10m", "2h") or a time
    /// ("2026-11-26T10:00:00Z").
    #[arg(long)]
    pub since: Option<String>,
}

#[derive(Args, Debug, Clone)]
pub struct TailArgs {
    #[command(flatten)]
    pub source: AlertsSource,
    /// Alerts shown from before (then new ones as they come).
    #[arg(long, short = 'n', default_value_t = 10)]
    pub lines: usize,
    /// Stop after this long (default: until interrupted).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
}

fn parse_severity(s: &str) -> Result<Severity, String> {
    serde_json::from_value(serde_json::Value::String(s.to_lowercase()))
        .map_err(|_| format!("{s:?}: expected low, medium, high or critical"))
}

/// Where the alerts are read from.
enum Source {
    File(PathBuf),
    JetStream(Box<crate::config::Config>),
}

fn source(src: &AlertsSource) -> anyhow::Result<Source> {
    if let Some(f) = &src.file {
        return Ok(Source::File(f.clone()));
    }
    let cfg = crate::config::Config::load(src.config.as_deref(), None)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    if cfg.alert.jetstream.enabled {
        return Ok(Source::JetStream(Box::new(cfg)));
    }
    cfg.alert.jsonl.map(Source::File).context(
        "no alerts to read: pass --file, or enable [alert.jetstream] or set [alert] jsonl in the configuration",
    )
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// Reads the stream from sequence `from` on (1 = all), handing each alert
/// to `each`; returns after the last stored one unless `follow`, then
/// keeps reading until `until` passes.
async fn read_stream(
    cfg: &crate::config::Config,
    from_end: Option<usize>,
    follow: Option<Option<Duration>>,
    mut each: impl FnMut(Alert),
) -> anyhow::Result<()> {
    use async_nats::jetstream::consumer::{pull::OrderedConfig, DeliverPolicy};
    use futures::StreamExt;
    let metrics = crate::metrics::Metrics::new();
    let client = crate::nats::connect(&cfg.nats, "daisi alerts", &metrics).await?;
    let js = async_nats::jetstream::new(client);
    let name = &cfg.alert.jetstream.stream;
    let mut stream = js
        .get_stream(name)
        .await
        .with_context(|| format!("JetStream stream {name}"))?;
    let state = stream.info().await?.state.clone();
    let first = match from_end {
        Some(n) => state
            .last_sequence
            .saturating_sub(n as u64 - 1)
            .max(state.first_sequence),
        None => state.first_sequence,
    }
    .max(1);
    let stored = state.last_sequence.saturating_sub(first - 1);
    let consumer = stream
        .create_consumer(OrderedConfig {
            deliver_policy: DeliverPolicy::ByStartSequence {
                start_sequence: first,
            },
            ..Default::default()
        })
        .await?;
    let mut messages = consumer.messages().await?;
    let started = std::time::Instant::now();
    let mut read = 0u64;
    let mut bad = 0;
    loop {
        if follow.is_none() && read >= stored {
            break;
        }
        let wait = match follow {
            Some(Some(d)) => match d.checked_sub(started.elapsed()) {
                Some(left) => left,
                None => break,
            },
            _ => Duration::from_secs(5),
        };
        match tokio::time::timeout(wait, messages.next()).await {
            Ok(Some(Ok(m))) => {
                read += 1;
                match serde_json::from_slice::<Alert>(&m.payload) {
                    Ok(a) => each(a),
                    Err(_) => bad += 1,
                }
            }
            Ok(Some(Err(e))) => return Err(e.into()),
            Ok(None) => break,
            Err(_) if follow.is_some() => continue,
            Err(_) => break,
        }
    }
    if bad > 0 {
        eprintln!("warning: {bad} messages of stream {name} are not alerts");
    }
    Ok(())
}

/// The file and its rotated predecessors, oldest first.
fn files(path: &Path) -> Vec<PathBuf> {
    let mut rotated = Vec::new();
    for n in 1.. {
        let mut p = path.as_os_str().to_owned();
        p.push(format!(".{n}"));
        let p = PathBuf::from(p);
        if !p.exists() {
            break;
        }
        rotated.push(p);
    }
    rotated.reverse();
    rotated.push(path.to_path_buf());
    rotated
}

fn keep(src: &AlertsSource, a: &Alert) -> bool {
    src.severity.is_none_or(|s| a.severity >= s)
        && src.module.is_none_or(|m| a.module == m)
        && crate::attack::matches(a.threat.as_ref(), &src.technique, &src.tactic)
}

fn show(src: &AlertsSource, a: &Alert) {
    if src.json {
        println!("{}", serde_json::to_string(a).expect("alert serializes"));
    } else {
        let when = humantime::format_rfc3339_seconds(
            std::time::UNIX_EPOCH + Duration::from_nanos(a.ts_ns),
        );
        println!("{when} {}", crate::actors::alert::sinks::console_line(a));
    }
}

/// Parses one line; a line that is not an alert is counted, not fatal.
fn parse(line: &str, bad: &mut u64) -> Option<Alert> {
    if line.trim().is_empty() {
        return None;
    }
    match serde_json::from_str(line) {
        Ok(a) => Some(a),
        Err(_) => {
            *bad += 1;
            None
        }
    }
}

/// `daisi alerts list`: the alerts in the file (folded updates merged).
pub fn list(args: &ListArgs) -> anyhow::Result<usize> {
    let since_ns = match &args.since {
        None => 0,
        Some(s) => {
            let t = match humantime::parse_duration(s) {
                Ok(d) => std::time::SystemTime::now() - d,
                Err(_) => humantime::parse_rfc3339_weak(s).with_context(|| {
                    format!(
                        "--since {s:?}: expected a duration (10m) or a time (2026-11-26T10:00:00Z)"
                    )
                })?,
            };
            t.duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0)
        }
    };
    let alerts = read_all(&args.source)?;
    let mut n = 0;
    for a in alerts
        .iter()
        .filter(|a| a.last_seen_ns.max(a.ts_ns) >= since_ns && keep(&args.source, a))
    {
        show(&args.source, a);
        n += 1;
    }
    Ok(n)
}

/// Every alert of the source, folded updates merged into their alert.
pub fn read_all(src: &AlertsSource) -> anyhow::Result<Vec<Alert>> {
    let source = source(src)?;
    let mut alerts: Vec<Alert> = Vec::new();
    let mut index = std::collections::HashMap::new();
    let mut add = |a: Alert| match index.get(&a.id) {
        Some(&i) => alerts[i] = a,
        None => {
            index.insert(a.id.clone(), alerts.len());
            alerts.push(a);
        }
    };
    let mut bad = 0;
    let mut what = String::new();
    match &source {
        Source::File(path) => {
            what = path.display().to_string();
            for f in files(path) {
                let file =
                    std::fs::File::open(&f).with_context(|| format!("reading {}", f.display()))?;
                for line in std::io::BufReader::new(file).lines() {
                    if let Some(a) = parse(&line?, &mut bad) {
                        add(a);
                    }
                }
            }
        }
        Source::JetStream(cfg) => runtime()?.block_on(read_stream(cfg, None, None, add))?,
    }
    if bad > 0 {
        eprintln!("warning: {bad} lines of {what} are not alerts");
    }
    Ok(alerts)
}

/// `daisi alerts tail`: the last alerts, then new ones as they are written
/// (follows rotation).
pub fn tail(args: &TailArgs) -> anyhow::Result<()> {
    let path = match source(&args.source)? {
        Source::File(p) => p,
        Source::JetStream(cfg) => {
            let src = &args.source;
            return runtime()?.block_on(read_stream(
                &cfg,
                Some(args.lines.max(1)),
                Some(args.duration),
                |a| {
                    if keep(src, &a) {
                        show(src, &a)
                    }
                },
            ));
        }
    };
    let mut bad = 0;
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let last: Vec<Alert> = text
        .lines()
        .filter_map(|l| parse(l, &mut bad))
        .filter(|a| keep(&args.source, a))
        .collect();
    for a in &last[last.len().saturating_sub(args.lines)..] {
        show(&args.source, a);
    }
    let started = std::time::Instant::now();
    let mut offset = text.len() as u64;
    let mut pending = String::new();
    loop {
        if args.duration.is_some_and(|d| started.elapsed() >= d) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(200));
        let Ok(mut f) = std::fs::File::open(&path) else {
            continue;
        };
        let len = f.metadata()?.len();
        if len < offset {
            // Rotated: the new file starts from the beginning.
            offset = 0;
            pending.clear();
        }
        if len == offset {
            continue;
        }
        f.seek(std::io::SeekFrom::Start(offset))?;
        let mut chunk = String::new();
        std::io::Read::read_to_string(&mut f, &mut chunk)?;
        offset += chunk.len() as u64;
        pending.push_str(&chunk);
        while let Some(i) = pending.find('\n') {
            let line: String = pending.drain(..=i).collect();
            if let Some(a) = parse(&line, &mut bad).filter(|a| keep(&args.source, a)) {
                show(&args.source, &a);
            }
        }
    }
}
