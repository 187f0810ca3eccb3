//! `daisi alerts list` and `daisi alerts tail`: alerts for people without a
//! SIEM, read from the JSON Lines sink (`[alert] jsonl`, rotated files
//! included, oldest first). An update of a folded alert (same id, higher
//! count) replaces the alert it updates in `list`.

use crate::messages::{Alert, Severity};
use anyhow::Context;
use clap::Args;
use std::io::{BufRead, Seek};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Args, Debug, Clone)]
pub struct AlertsSource {
    /// The alert file; default: `[alert] jsonl` of the configuration.
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// Configuration file to find the alert file in.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Only alerts at least this severe: low, medium, high, critical.
    #[arg(long, value_parser = parse_severity)]
    pub severity: Option<Severity>,
    /// Only this module: syscall or network.
    #[arg(long)]
    pub module: Option<String>,
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

fn alert_file(src: &AlertsSource) -> anyhow::Result<PathBuf> {
    if let Some(f) = &src.file {
        return Ok(f.clone());
    }
    let cfg = crate::config::Config::load(src.config.as_deref(), None)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    cfg.alert
        .jsonl
        .context("no alert file: pass --file, or set [alert] jsonl in the configuration")
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
        && src.module.as_ref().is_none_or(|m| &a.module == m)
}

fn show(src: &AlertsSource, a: &Alert) {
    if src.json {
        println!("{}", serde_json::to_string(a).expect("alert serializes"));
    } else {
        let when = humantime::format_rfc3339_seconds(
            std::time::UNIX_EPOCH + Duration::from_nanos(a.ts_ns),
        );
        println!("{when} {}", crate::actors::alert::console_line(a));
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
    let path = alert_file(&args.source)?;
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
    let mut alerts: Vec<Alert> = Vec::new();
    let mut index = std::collections::HashMap::new();
    let mut bad = 0;
    for f in files(&path) {
        let file = std::fs::File::open(&f).with_context(|| format!("reading {}", f.display()))?;
        for line in std::io::BufReader::new(file).lines() {
            let Some(a) = parse(&line?, &mut bad) else {
                continue;
            };
            match index.get(&a.id) {
                Some(&i) => alerts[i] = a,
                None => {
                    index.insert(a.id.clone(), alerts.len());
                    alerts.push(a);
                }
            }
        }
    }
    let mut n = 0;
    for a in alerts
        .iter()
        .filter(|a| a.last_seen_ns.max(a.ts_ns) >= since_ns && keep(&args.source, a))
    {
        show(&args.source, a);
        n += 1;
    }
    if bad > 0 {
        eprintln!("warning: {bad} lines of {} are not alerts", path.display());
    }
    Ok(n)
}

/// `daisi alerts tail`: the last alerts, then new ones as they are written
/// (follows rotation).
pub fn tail(args: &TailArgs) -> anyhow::Result<()> {
    let path = alert_file(&args.source)?;
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
