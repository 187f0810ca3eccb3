//! `daisi train logs` (a template model from recorded logs) and `daisi eval
//! logs` (the log detector on recorded files: per attack kind whether it
//! was found and by which rules; false alarms per host-hour on benign
//! files).

use crate::actors::logs::detector::{Judge, LogDetectorConfig};
use crate::config::Config;
use crate::logs::parse::{parse_from, LogEvent};
use crate::logs::templates::{shape_of, TemplateModel, Trainer};
use crate::messages::{Alert, LogBatch, LogLine};
use anyhow::Context;
use chrono::Datelike;
use clap::Args;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Args, Debug, Clone)]
pub struct TrainLogsArgs {
    /// Recorded logs of normal work (syslog, auth, access or JSON lines).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// The model to write (`[log_detector.templates] model`).
    #[arg(long, default_value = "models/logs/templates.bin")]
    pub out: PathBuf,
    /// Drain's similarity threshold for joining a template.
    #[arg(long, default_value_t = 0.4)]
    pub similarity: f64,
    /// Templates before the one the sequence model predicts (0: no
    /// sequence model).
    #[arg(long, default_value_t = 4)]
    pub context: usize,
    /// A line whose template is not among the model's `top` likeliest
    /// next ones is out of order (DeepLog's g); 0: the fewest that hold
    /// the template of every line trained on.
    #[arg(long, default_value_t = 0)]
    pub top: usize,
    /// Training epochs of the sequence model (the best on held-out lines
    /// is kept).
    #[arg(long, default_value_t = 40)]
    pub epochs: usize,
}

#[derive(Args, Debug, Clone)]
pub struct EvalLogsArgs {
    /// Logs of normal work, one host each (false alarms per host-hour).
    #[arg(long)]
    pub benign: Vec<PathBuf>,
    /// Logs holding an attack, as KIND=FILE (repeatable).
    #[arg(long, value_parser = parse_attack)]
    pub attack: Vec<(String, PathBuf)>,
    /// The node configuration whose `[log_detector]` is judged (default:
    /// the built-in defaults).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// A template model from `daisi train logs`: hosts start knowing it
    /// and are judged from their first line.
    #[arg(long)]
    pub model: Option<PathBuf>,
}

fn parse_attack(s: &str) -> Result<(String, PathBuf), String> {
    match s.split_once('=') {
        Some((k, f)) if !k.is_empty() && !f.is_empty() => Ok((k.to_string(), f.into())),
        _ => Err(format!("expected KIND=FILE, got {s:?}")),
    }
}

/// Reads a file's lines, parsed, with their time (the line's own, else the
/// last one seen, else 0), calling `each` per line.
fn read_lines(path: &Path, mut each: impl FnMut(&str, &LogEvent, u64)) -> anyhow::Result<u64> {
    let f = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let year = chrono::Utc::now().year();
    let mut last = 0u64;
    let mut n = 0;
    let mut buf = Vec::new();
    let mut r = BufReader::new(f);
    loop {
        buf.clear();
        if r.read_until(b'\n', &mut buf)
            .with_context(|| format!("cannot read {}", path.display()))?
            == 0
        {
            break;
        }
        let text = String::from_utf8_lossy(&buf);
        let text = text.trim_end_matches(['\n', '\r']);
        if text.is_empty() {
            continue;
        }
        let ev = parse_from(text, year, None);
        if let Some(t) = ev.timestamp_ns.and_then(|t| u64::try_from(t).ok()) {
            last = t;
        }
        each(text, &ev, last);
        n += 1;
    }
    Ok(n)
}

/// `daisi train logs`.
pub fn train(args: &TrainLogsArgs) -> anyhow::Result<TemplateModel> {
    anyhow::ensure!(
        (0.0..=1.0).contains(&args.similarity),
        "--similarity must be between 0 and 1"
    );
    let mut t = Trainer::new(args.similarity);
    for path in &args.files {
        let n = read_lines(path, |_, ev, ts| t.line(&shape_of(ev), ts))?;
        let (lines, templates) = t.progress();
        tracing::info!(file = %path.display(), lines = n, total = lines, templates, "read");
    }
    anyhow::ensure!(t.progress().0 > 0, "no lines in the given files");
    // Each program's lines of each file, per session, as their final
    // templates, in order: the sequence model's streams (as a node
    // follows them: `templates::Stream`).
    let mut streams = Vec::new();
    if args.context > 0 {
        for path in &args.files {
            type Key = (Option<String>, Option<u32>);
            let mut ids: std::collections::BTreeMap<Key, Vec<_>> = Default::default();
            read_lines(path, |_, ev, _| {
                ids.entry((ev.program.clone(), ev.pid))
                    .or_default()
                    .extend(t.template_of(&shape_of(ev)))
            })?;
            streams.extend(
                ids.into_iter()
                    .map(|((p, _), s)| (p.unwrap_or_default(), s)),
            );
        }
    }
    let mut model = t.finish();
    if let Some(dir) = args.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    if args.context > 0 {
        train_sequence(args, &streams, &mut model)?;
    }
    model.save(&args.out)?;
    println!(
        "{} lines over {} minutes: {} templates, written to {}",
        model.lines,
        model.minutes,
        model.templates.len(),
        args.out.display()
    );
    println!("{:>9}  {:>7}  template", "lines", "max/min");
    for s in model.templates.iter().take(15) {
        println!(
            "{:>9}  {:>7}  {}",
            s.lines,
            s.max_per_minute,
            crate::logs::rules::shown(&s.template)
        );
    }
    if model.templates.len() > 15 {
        println!("… {} more", model.templates.len() - 15);
    }
    Ok(model)
}

/// The sequence model of `daisi train logs`, written beside the template
/// model (`<name>.sequence.safetensors`) and described in it.
#[cfg(feature = "torch")]
fn train_sequence(
    args: &TrainLogsArgs,
    streams: &[(String, Vec<logdrain::ClusterId>)],
    model: &mut TemplateModel,
) -> anyhow::Result<()> {
    use crate::logs::sequence::MAX_TEMPLATES;
    anyhow::ensure!(
        args.context >= 1 && args.context < crate::models::neural::MAX_WINDOW,
        "--context must be 1..{}",
        crate::models::neural::MAX_WINDOW - 1
    );
    anyhow::ensure!(
        args.top <= MAX_TEMPLATES,
        "--top must be 0 (calibrated) to {MAX_TEMPLATES}"
    );
    const MIN_WINDOWS: usize = 200;
    let trained = crate::logs::sequence::train(
        streams,
        args.context,
        args.top,
        args.epochs,
        MIN_WINDOWS,
        |epoch, held| tracing::info!(epoch, held_out_loss = held, "sequence model"),
    )?;
    let Some(mut t) = trained else {
        println!(
            "no sequence model: fewer than {MIN_WINDOWS} windows of {} lines of one program in one file",
            args.context + 1
        );
        return Ok(());
    };
    let stem = args
        .out
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "templates".into());
    t.meta.file = format!("{stem}.sequence.safetensors");
    let path = args.out.with_file_name(&t.meta.file);
    t.net
        .save_file(&path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    println!(
        "sequence model: {} templates, context {}, next template in its program's top for {:.1} % of {} held-out lines; written to {}",
        t.meta.templates.len(),
        t.meta.context,
        t.meta.held_out_in_top * 100.0,
        t.meta.held_out,
        path.display()
    );
    let tops: Vec<String> = if t.meta.tops.is_empty() {
        vec![format!("every program {}", t.meta.top)]
    } else {
        t.meta
            .tops
            .iter()
            .map(|(p, top)| {
                format!(
                    "{} {top}",
                    if p.is_empty() {
                        "-".into()
                    } else {
                        crate::logs::rules::shown(p)
                    }
                )
            })
            .collect()
    };
    println!("  top per program: {}", tops.join(", "));
    model.sequence = Some(t.meta);
    Ok(())
}

#[cfg(not(feature = "torch"))]
fn train_sequence(
    _: &TrainLogsArgs,
    _: &[(String, Vec<logdrain::ClusterId>)],
    _: &mut TemplateModel,
) -> anyhow::Result<()> {
    println!("no sequence model: this build has no libtorch (--context 0 skips it)");
    Ok(())
}

/// One file's result.
#[derive(Debug, Clone, PartialEq)]
pub struct FileResult {
    pub kind: String,
    pub file: PathBuf,
    pub lines: u64,
    pub alerts: usize,
    /// `rule.name`s of its alerts.
    pub rules: BTreeSet<String>,
    /// From its first to its last line's time.
    pub span: Duration,
    /// The alerts' summaries (benign files: the false alarms).
    pub summaries: Vec<String>,
}

impl FileResult {
    pub fn hours(&self) -> f64 {
        self.span.as_secs_f64() / 3600.0
    }
}

/// Judges one file as one host, as a compute node would.
fn judge_file(judge: &mut Judge, kind: &str, path: &Path) -> anyhow::Result<FileResult> {
    let host = "host".to_string();
    let mut alerts: Vec<Alert> = Vec::new();
    let (mut first, mut last) = (None, 0u64);
    let mut pending = Vec::new();
    let mut flush = |pending: &mut Vec<LogLine>, alerts: &mut Vec<Alert>| {
        let batch = LogBatch {
            host: host.clone(),
            lines: std::mem::take(pending),
        };
        alerts.extend(judge.batch(&batch));
    };
    let lines = read_lines(path, |text, _, ts| {
        if ts > 0 {
            first.get_or_insert(ts);
            last = ts;
        }
        pending.push(LogLine {
            source: kind.to_string(),
            path: path.display().to_string(),
            read_ns: ts,
            text: text.to_string(),
            cut: false,
            program: None,
        });
        if pending.len() >= 1024 {
            flush(&mut pending, &mut alerts);
        }
    })?;
    flush(&mut pending, &mut alerts);
    Ok(FileResult {
        kind: kind.to_string(),
        file: path.into(),
        lines,
        alerts: alerts.len(),
        rules: alerts
            .iter()
            .filter_map(|a| a.rule.as_ref().map(|r| r.name.clone()))
            .collect(),
        span: Duration::from_nanos(last.saturating_sub(first.unwrap_or(last))),
        summaries: alerts.iter().map(|a| a.summary.clone()).collect(),
    })
}

/// `daisi eval logs`: prints a table per file and the totals.
pub fn eval(args: &EvalLogsArgs) -> anyhow::Result<Vec<FileResult>> {
    anyhow::ensure!(
        !args.benign.is_empty() || !args.attack.is_empty(),
        "give --benign FILE and/or --attack KIND=FILE"
    );
    let mut cfg = match &args.config {
        Some(p) => {
            Config::load(Some(p), None)
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .log_detector
        }
        None => LogDetectorConfig::default(),
    };
    let model = match &args.model {
        Some(p) => {
            cfg.templates.learn_for = Duration::ZERO;
            cfg.templates.learn_lines = 0;
            Some(TemplateModel::load(p)?)
        }
        None => match (&cfg.templates.model, cfg.templates.enabled) {
            (Some(p), true) => Some(TemplateModel::load(p)?),
            _ => None,
        },
    };
    // One detector over the whole timeline, as a node would run: the
    // benign files, then each attack's, in the order given (what one
    // raised stays known to the next).
    let mut judge = Judge::new(&cfg, model);
    let mut results = Vec::new();
    for p in &args.benign {
        results.push(judge_file(&mut judge, "benign", p)?);
    }
    for (kind, p) in &args.attack {
        results.push(judge_file(&mut judge, kind, p)?);
    }
    let w = results
        .iter()
        .map(|r| r.kind.len())
        .max()
        .unwrap_or(0)
        .max(6);
    println!(
        "{:<w$} {:>8} {:>7} {:>9}  {:<28} rules",
        "kind", "lines", "alerts", "detected", "file"
    );
    for r in &results {
        let detected = match r.kind.as_str() {
            "benign" => "-",
            _ if r.alerts > 0 => "yes",
            _ => "no",
        };
        let file = r
            .file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let rules: Vec<&str> = r.rules.iter().map(String::as_str).collect();
        println!(
            "{:<w$} {:>8} {:>7} {:>9}  {:<28} {}",
            r.kind,
            r.lines,
            r.alerts,
            detected,
            file,
            if rules.is_empty() {
                "-".to_string()
            } else {
                rules.join(",")
            }
        );
    }
    let attacks: Vec<&FileResult> = results.iter().filter(|r| r.kind != "benign").collect();
    if !attacks.is_empty() {
        let found = attacks.iter().filter(|r| r.alerts > 0).count();
        println!("attack kinds detected: {found}/{}", attacks.len());
    }
    let benign: Vec<&FileResult> = results.iter().filter(|r| r.kind == "benign").collect();
    if !benign.is_empty() {
        let alarms: usize = benign.iter().map(|r| r.alerts).sum();
        let hours: f64 = benign.iter().map(|r| r.hours()).sum();
        let rate = match hours > 0.0 {
            true => format!("{:.3}", alarms as f64 / hours),
            false => "n/a (no timestamps)".into(),
        };
        let upper = match hours > 0.0 {
            true => format!(
                " (95 % upper bound {:.3})",
                crate::commands::eval_attack::poisson_upper(alarms, 0.95) / hours
            ),
            false => String::new(),
        };
        println!("benign: {alarms} false alarms over {hours:.3} host-hours = {rate} per host-hour{upper}");
        for r in &benign {
            for s in r.summaries.iter().take(20) {
                println!("  false alarm: {s}");
            }
        }
    }
    Ok(results)
}
