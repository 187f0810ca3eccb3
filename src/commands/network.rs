//! `daisi train network` and `daisi eval network`: the flow classifier on
//! labelled captures.
//!
//! Labelled data is what `lab/lab.sh generate` writes: captures and a
//! `labels.csv` with `pcap,kind,attacker` rows. A flow of a row's capture is
//! of the row's attack kind when one of its ends is the attacker's address,
//! benign otherwise (a row with no attacker is all benign).
//!
//! Training splits every capture's flows deterministically into a training
//! and a test share; kinds named with `--holdout` never reach training, so
//! their figures say how the model does on an attack it has not seen.

use crate::capture::libpcap::file_flows;
use crate::flows::FlowLimits;
use crate::models::network::{FlowModel, Transform, FEATURES};
use crate::models::roc_auc;
use anyhow::{bail, Context};
use clap::Args;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How captures become flows (the node's `[flow_merge]` defaults).
#[derive(Args, Debug, Clone)]
pub struct FlowOptions {
    /// A flow with no packet for this long has ended.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "30s")]
    pub idle_timeout: Duration,
    /// A flow open this long is ended (and a new one begins).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "30m")]
    pub active_timeout: Duration,
}

impl FlowOptions {
    fn limits(&self) -> FlowLimits {
        FlowLimits {
            idle_timeout_ns: self.idle_timeout.as_nanos() as u64,
            active_timeout_ns: self.active_timeout.as_nanos() as u64,
            max_flows: 1_000_000,
            // The flow model reads statistics only.
            app: None,
            // Whole flows only: the model learns and is judged on them.
            report_open_ns: [0, 0],
        }
    }
}

#[derive(Args, Debug, Clone)]
pub struct TrainNetworkArgs {
    /// `labels.csv` from `lab/lab.sh generate` (captures are found beside it).
    #[arg(long)]
    pub labels: PathBuf,
    /// Only these captures of the labels file (file names); default all.
    #[arg(long)]
    pub pcap: Vec<String>,
    /// Attack kinds kept out of training, reported as unseen (repeatable).
    #[arg(long)]
    pub holdout: Vec<String>,
    /// Model directory to write (`model.json`).
    #[arg(long, default_value = "models/network")]
    pub out: PathBuf,
    /// Share of each capture's flows kept for the test figures.
    #[arg(long, default_value_t = 0.3)]
    pub test_share: f64,
    /// The threshold is raised until at most this share of the training
    /// benign flows score above it (never below 0.5).
    #[arg(long, default_value_t = 0.005)]
    pub target_fpr: f64,
    /// Feature transform before standardization: log1p or none.
    #[arg(long, default_value = "log1p", value_parser = parse_transform)]
    pub transform: Transform,
    /// L2 penalty of the logistic regression.
    #[arg(long, default_value_t = 1.0)]
    pub alpha: f64,
    /// Write the figures as JSON here.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Train once per attack kind without it and report each as unseen
    /// (per flow and per source); writes no model.
    #[arg(long)]
    pub leave_one_out: bool,
    #[command(flatten)]
    pub flows: FlowOptions,
}

fn parse_transform(s: &str) -> Result<Transform, String> {
    match s {
        "log1p" => Ok(Transform::Log1p),
        "none" => Ok(Transform::None),
        _ => Err(format!("{s:?}: expected log1p or none")),
    }
}

#[derive(Args, Debug, Clone)]
pub struct EvalNetworkArgs {
    /// `labels.csv` from `lab/lab.sh generate`.
    #[arg(long)]
    pub labels: PathBuf,
    /// Only these captures of the labels file (file names); default all.
    #[arg(long)]
    pub pcap: Vec<String>,
    /// Model directory: `model.json`, or FlowMeter's `lr_*.txt` [default:
    /// the shipped model, models/network where daisi is installed].
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Write the figures as JSON here.
    #[arg(long)]
    pub report: Option<PathBuf>,
    #[command(flatten)]
    pub flows: FlowOptions,
}

/// One flow with its label.
#[derive(Debug, Clone)]
pub struct LabelledFlow {
    pub pcap: String,
    /// Index of the flow within its capture (end order).
    pub index: usize,
    /// `benign` or the attack kind.
    pub kind: String,
    /// Features in [`FEATURES`] order.
    pub x: Vec<f64>,
}

impl LabelledFlow {
    pub fn malicious(&self) -> bool {
        self.kind != BENIGN
    }
}

pub const BENIGN: &str = "benign";

/// One row of `labels.csv`.
#[derive(Debug, Clone, serde::Deserialize)]
struct LabelRow {
    pcap: String,
    kind: String,
    #[serde(default)]
    attacker: Option<String>,
}

/// The rows of `labels` (all, or those naming a capture in `only`), each
/// with its attacker's address.
fn label_rows(labels: &Path, only: &[String]) -> anyhow::Result<Vec<(LabelRow, Option<IpAddr>)>> {
    let mut rdr = csv::Reader::from_path(labels)
        .with_context(|| format!("reading labels {}", labels.display()))?;
    let mut rows = Vec::new();
    for (i, r) in rdr.deserialize::<LabelRow>().enumerate() {
        let r = r.with_context(|| format!("{} row {}", labels.display(), i + 2))?;
        if !(only.is_empty() || only.contains(&r.pcap)) {
            continue;
        }
        let attacker: Option<IpAddr> = match r.attacker.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(a) => Some(a.parse().with_context(|| {
                format!("{}: attacker {a:?} is not an IP address", labels.display())
            })?),
        };
        rows.push((r, attacker));
    }
    if rows.is_empty() {
        bail!("{}: no captures selected", labels.display());
    }
    Ok(rows)
}

/// Reads the labelled flows of the captures listed in `labels` (all, or
/// those named in `only`), with a progress bar on standard error.
pub fn load_labelled(
    labels: &Path,
    only: &[String],
    opts: &FlowOptions,
) -> anyhow::Result<Vec<LabelledFlow>> {
    let dir = labels.parent().unwrap_or(Path::new("."));
    let rows = label_rows(labels, only)?;
    let bar = indicatif::ProgressBar::new(rows.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} reading captures [{bar:30}] {pos}/{len} {msg}",
        )
        .expect("static template")
        .progress_chars("=> "),
    );
    let mut out = Vec::new();
    for (r, attacker) in rows {
        bar.set_message(r.pcap.clone());
        let path = dir.join(&r.pcap);
        let mut index = 0;
        let summary = file_flows(&path, opts.limits(), |f| -> anyhow::Result<()> {
            let is_attack = attacker.is_some_and(|a| f.src.0 == a || f.dst.0 == a);
            out.push(LabelledFlow {
                pcap: r.pcap.clone(),
                index,
                kind: if is_attack {
                    r.kind.clone()
                } else {
                    BENIGN.to_string()
                },
                x: f.stats.feature_values().to_vec(),
            });
            index += 1;
            Ok(())
        })??;
        if let Some(e) = summary.read_error {
            tracing::warn!(pcap = %path.display(), packets = summary.packets, error = %e, "capture ends in a read error; using the flows before it");
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(out)
}

/// What the per-source rules raised on one labelled capture.
#[derive(Debug, Clone, Serialize)]
pub struct SourceFigures {
    pub pcap: String,
    pub kind: String,
    pub attacker: Option<IpAddr>,
    /// Flows of the capture, and its length in seconds.
    pub flows: usize,
    pub seconds: f64,
    /// Patterns raised for the attacker, and for anyone else (false
    /// alarms).
    pub attacker_patterns: Vec<String>,
    pub false_alarms: usize,
    /// Seconds from the attacker's first flow's start to the first finding
    /// about it.
    pub first_finding_s: Option<f64>,
}

/// Runs each capture's flows (application metadata on) through the
/// per-source rules, in the order they end.
pub fn per_source(
    labels: &Path,
    only: &[String],
    opts: &FlowOptions,
) -> anyhow::Result<Vec<SourceFigures>> {
    use crate::flows::behaviour::{Rules, Sources};
    let dir = labels.parent().unwrap_or(Path::new("."));
    let mut out = Vec::new();
    for (r, attacker) in label_rows(labels, only)? {
        let mut limits = opts.limits();
        limits.app = Some(crate::flows::app::Budget::default());
        let mut sources = Sources::new(Rules::default());
        let (mut flows, mut first_ns, mut last_ns) = (0usize, u64::MAX, 0u64);
        let mut attacker_first: Option<u64> = None;
        let mut fig = SourceFigures {
            pcap: r.pcap.clone(),
            kind: r.kind.clone(),
            attacker,
            flows: 0,
            seconds: 0.0,
            attacker_patterns: Vec::new(),
            false_alarms: 0,
            first_finding_s: None,
        };
        let path = dir.join(&r.pcap);
        file_flows(&path, limits, |f| -> anyhow::Result<()> {
            let rec = crate::actors::network::flow_merge::to_record(f, None);
            flows += 1;
            first_ns = first_ns.min(rec.first_ns);
            last_ns = last_ns.max(rec.last_ns);
            if attacker.is_some_and(|a| rec.src.parse() == Ok(a)) {
                attacker_first = Some(attacker_first.map_or(rec.first_ns, |t| t.min(rec.first_ns)));
            }
            for finding in sources.observe(&rec) {
                if Some(finding.source) == attacker {
                    fig.first_finding_s.get_or_insert_with(|| {
                        finding
                            .at_ns
                            .saturating_sub(attacker_first.unwrap_or(finding.at_ns))
                            as f64
                            / 1e9
                    });
                    let name = finding.pattern.name().to_string();
                    if !fig.attacker_patterns.contains(&name) {
                        fig.attacker_patterns.push(name);
                    }
                } else {
                    fig.false_alarms += 1;
                    tracing::info!(pcap = %r.pcap, finding = %finding.summary, "per-source finding about a benign source");
                }
            }
            Ok(())
        })??;
        fig.flows = flows;
        fig.seconds = last_ns.saturating_sub(first_ns.min(last_ns)) as f64 / 1e9;
        out.push(fig);
    }
    Ok(out)
}

/// Prints the per-source figures as a table.
pub fn print_per_source(rows: &[SourceFigures]) {
    println!();
    println!("per source (rules, 60 s window)");
    println!(
        "{:<22} {:>7} {:>9} {:>9} {:>12}  patterns",
        "capture", "flows", "detected", "first (s)", "false alarms"
    );
    for r in rows {
        let detected = match r.attacker {
            None => "-".to_string(),
            Some(_) if r.attacker_patterns.is_empty() => "no".into(),
            Some(_) => "yes".into(),
        };
        println!(
            "{:<22} {:>7} {:>9} {:>9} {:>12}  {}",
            r.kind,
            r.flows,
            detected,
            r.first_finding_s
                .map(|s| format!("{s:.1}"))
                .unwrap_or_else(|| "-".into()),
            r.false_alarms,
            r.attacker_patterns.join(", ")
        );
    }
    let attacks: Vec<_> = rows.iter().filter(|r| r.attacker.is_some()).collect();
    let detected = attacks
        .iter()
        .filter(|r| !r.attacker_patterns.is_empty())
        .count();
    // The client's benign traffic runs through every capture.
    let hours = rows.iter().map(|r| r.seconds).sum::<f64>() / 3600.0;
    let false_alarms: usize = rows.iter().map(|r| r.false_alarms).sum();
    println!(
        "attack kinds detected: {detected} of {}; false alarms {false_alarms} over {hours:.3} hours of benign traffic ({:.2} per hour)",
        attacks.len(),
        if hours > 0.0 { false_alarms as f64 / hours } else { 0.0 }
    );
}

/// Deterministic split: FNV-1a of the capture name and flow index.
fn in_test(f: &LabelledFlow, share: f64) -> bool {
    let h = crate::fnv1a(f.pcap.bytes().chain(f.index.to_le_bytes()));
    ((h >> 11) as f64 / (1u64 << 53) as f64) < share
}

/// Detection figures of one set of flows.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Figures {
    pub flows: usize,
    pub malicious: usize,
    pub tp: usize,
    pub fp: usize,
    pub tn: usize,
    #[serde(rename = "fn")]
    pub fn_: usize,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// False-positive rate on the benign flows.
    pub fpr: f64,
    pub roc_auc: f64,
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        f64::NAN
    } else {
        a as f64 / b as f64
    }
}

/// Figures of scored flows `(malicious, probability)` at `threshold`.
pub fn figures(scored: &[(bool, f64)], threshold: f64) -> Figures {
    let (mut tp, mut fp, mut tn, mut fn_) = (0, 0, 0, 0);
    let (mut normal, mut attack) = (Vec::new(), Vec::new());
    for &(m, p) in scored {
        let flagged = p > threshold;
        match (m, flagged) {
            (true, true) => tp += 1,
            (true, false) => fn_ += 1,
            (false, true) => fp += 1,
            (false, false) => tn += 1,
        }
        if m {
            attack.push(p)
        } else {
            normal.push(p)
        }
    }
    let precision = ratio(tp, tp + fp);
    let recall = ratio(tp, tp + fn_);
    Figures {
        flows: scored.len(),
        malicious: tp + fn_,
        tp,
        fp,
        tn,
        fn_,
        precision,
        recall,
        f1: 2.0 * precision * recall / (precision + recall),
        fpr: ratio(fp, fp + tn),
        roc_auc: roc_auc(&normal, &attack),
    }
}

/// Figures overall and per attack kind (each kind's flows against all the
/// benign flows), with which kinds the model saw in training.
#[derive(Debug, Clone, Serialize)]
pub struct NetworkReport {
    /// Per-source behaviour rules, per capture (`flows::behaviour`).
    pub per_source: Vec<SourceFigures>,
    pub model: String,
    pub threshold: f64,
    pub overall: Figures,
    /// Benign flows with the attack kinds seen in training.
    pub seen: Option<Figures>,
    /// Benign flows with the held-out attack kinds.
    pub held_out: Option<Figures>,
    pub per_kind: BTreeMap<String, Figures>,
    pub held_out_kinds: Vec<String>,
}

/// Scores `flows` with `model` and gathers the figures.
pub fn evaluate(model: &FlowModel, flows: &[LabelledFlow], held_out: &[String]) -> NetworkReport {
    let scored: Vec<(&LabelledFlow, f64)> = flows
        .iter()
        .map(|f| (f, model.probability_of(&f.x)))
        .collect();
    let t = model.threshold;
    let subset = |keep: &dyn Fn(&str) -> bool| -> Vec<(bool, f64)> {
        scored
            .iter()
            .filter(|(f, _)| !f.malicious() || keep(&f.kind))
            .map(|(f, p)| (f.malicious(), *p))
            .collect()
    };
    let kinds: BTreeSet<&str> = flows
        .iter()
        .filter(|f| f.malicious())
        .map(|f| f.kind.as_str())
        .collect();
    let is_held = |k: &str| held_out.iter().any(|h| h == k);
    let seen_kinds = kinds.iter().any(|k| !is_held(k));
    let held_kinds = kinds.iter().any(|k| is_held(k));
    NetworkReport {
        model: format!("{} {}", model.name, model.version),
        threshold: t,
        overall: figures(&subset(&|_| true), t),
        seen: (seen_kinds && !held_out.is_empty()).then(|| figures(&subset(&|k| !is_held(k)), t)),
        held_out: held_kinds.then(|| figures(&subset(&|k| is_held(k)), t)),
        per_kind: kinds
            .iter()
            .map(|k| (k.to_string(), figures(&subset(&|x| x == *k), t)))
            .collect(),
        held_out_kinds: held_out.to_vec(),
        per_source: Vec::new(),
    }
}

/// Prints a report as a table.
pub fn print_report(r: &NetworkReport) {
    println!("model {} (threshold {:.3})", r.model, r.threshold);
    println!(
        "{:<22} {:>7} {:>7} {:>6} {:>6} {:>6} {:>7} {:>9} {:>7} {:>7} {:>7} {:>7}",
        "set", "flows", "attack", "TP", "FN", "FP", "TN", "precision", "recall", "F1", "FPR", "AUC"
    );
    let row = |name: &str, f: &Figures| {
        println!(
            "{:<22} {:>7} {:>7} {:>6} {:>6} {:>6} {:>7} {:>9.3} {:>7.3} {:>7.3} {:>7.4} {:>7.3}",
            name,
            f.flows,
            f.malicious,
            f.tp,
            f.fn_,
            f.fp,
            f.tn,
            f.precision,
            f.recall,
            f.f1,
            f.fpr,
            f.roc_auc
        )
    };
    row("all", &r.overall);
    if let Some(f) = &r.seen {
        row("seen kinds", f);
    }
    if let Some(f) = &r.held_out {
        row("held-out kinds", f);
    }
    for (k, f) in &r.per_kind {
        let tag = if r.held_out_kinds.contains(k) {
            " (held out)"
        } else {
            ""
        };
        row(&format!("{k}{tag}"), f);
    }
}

fn write_report(path: &Path, value: &impl Serialize) -> anyhow::Result<()> {
    std::fs::write(path, serde_json::to_string_pretty(value)? + "\n")
        .with_context(|| format!("writing {}", path.display()))
}

/// `daisi train network`.
/// Fits the logistic regression on `train`; threshold 0.5, raised until
/// at most `target_fpr` of the training benign flows score above it.
fn fit(train: &[LabelledFlow], args: &TrainNetworkArgs) -> anyhow::Result<FlowModel> {
    let x: Vec<Vec<f64>> = train.iter().map(|f| f.x.clone()).collect();
    let y: Vec<bool> = train.iter().map(|f| f.malicious()).collect();
    let features = FEATURES.iter().map(|s| s.to_string()).collect();
    let mut model = FlowModel::fit(features, args.transform, &x, &y, args.alpha, 500)
        .map_err(|e| anyhow::anyhow!("fitting the logistic regression: {e}"))?;
    let benign: Vec<f64> = train
        .iter()
        .filter(|f| !f.malicious())
        .map(|f| model.probability_of(&f.x))
        .collect();
    model.threshold = crate::models::threshold_at_fpr(&benign, args.target_fpr).max(0.5);
    Ok(model)
}

/// One attack kind left out of training.
#[derive(Debug, Clone, Serialize)]
pub struct LeftOut {
    pub kind: String,
    /// The kind's flows against the test share of the benign flows, by a
    /// model that never saw the kind.
    pub per_flow: Figures,
    /// Whether the per-source rules raised its attacker, and how.
    pub per_source: bool,
    pub patterns: Vec<String>,
}

/// Leave-one-kind-out: for every attack kind, a model trained without it
/// scores it; with what the per-source rules (which learn nothing) say of
/// the same capture. Writes no model.
pub fn leave_one_out(args: &TrainNetworkArgs) -> anyhow::Result<Vec<LeftOut>> {
    let flows = load_labelled(&args.labels, &args.pcap, &args.flows)?;
    let sources = per_source(&args.labels, &args.pcap, &args.flows)?;
    let kinds: BTreeSet<String> = flows
        .iter()
        .filter(|f| f.malicious())
        .map(|f| f.kind.clone())
        .collect();
    let mut out = Vec::new();
    for kind in &kinds {
        let (mut train, mut test) = (Vec::new(), Vec::new());
        for f in &flows {
            if &f.kind == kind || (!f.malicious() && in_test(f, args.test_share)) {
                test.push(f.clone());
            } else if f.malicious() || !in_test(f, args.test_share) {
                train.push(f.clone());
            }
        }
        eprintln!("without {kind}: training on {} flows", train.len());
        let model = fit(&train, args)?;
        let scored: Vec<(bool, f64)> = test
            .iter()
            .map(|f| (f.malicious(), model.probability_of(&f.x)))
            .collect();
        let rows: Vec<&SourceFigures> = sources.iter().filter(|r| &r.kind == kind).collect();
        let mut patterns: Vec<String> = rows
            .iter()
            .flat_map(|r| r.attacker_patterns.iter().cloned())
            .collect();
        patterns.dedup();
        out.push(LeftOut {
            kind: kind.clone(),
            per_flow: figures(&scored, model.threshold),
            per_source: !patterns.is_empty(),
            patterns,
        });
    }
    println!("leave one kind out: each kind scored by a model trained without it");
    println!(
        "{:<22} {:>7} {:>7} {:>7} {:>7} {:>7}  {:<10} patterns",
        "kind", "flows", "recall", "F1", "FPR", "AUC", "per source"
    );
    for l in &out {
        let f = &l.per_flow;
        println!(
            "{:<22} {:>7} {:>7.3} {:>7.3} {:>7.4} {:>7.3}  {:<10} {}",
            l.kind,
            f.malicious,
            f.recall,
            f.f1,
            f.fpr,
            f.roc_auc,
            if l.per_source { "yes" } else { "no" },
            l.patterns.join(", ")
        );
    }
    let caught = out.iter().filter(|l| l.per_source).count();
    println!(
        "per-source recall over the kinds, each unseen: {caught} of {} ({:.2})",
        out.len(),
        caught as f64 / out.len().max(1) as f64
    );
    if let Some(p) = &args.report {
        write_report(p, &out)?;
    }
    Ok(out)
}

pub fn train(args: &TrainNetworkArgs) -> anyhow::Result<NetworkReport> {
    if !(0.0..1.0).contains(&args.test_share) {
        bail!("--test-share must be in [0, 1)");
    }
    let flows = load_labelled(&args.labels, &args.pcap, &args.flows)?;
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for f in flows {
        let held = args.holdout.contains(&f.kind);
        if held || in_test(&f, args.test_share) {
            test.push(f);
        } else {
            train.push(f);
        }
    }
    for h in &args.holdout {
        if !test.iter().any(|f| &f.kind == h) {
            bail!("--holdout {h}: no flows of that kind in the captures");
        }
    }
    eprintln!(
        "training on {} flows ({} malicious), testing on {}",
        train.len(),
        train.iter().filter(|f| f.malicious()).count(),
        test.len()
    );
    let mut model = fit(&train, args)?;
    let kinds: BTreeSet<String> = train
        .iter()
        .filter(|f| f.malicious())
        .map(|f| f.kind.clone())
        .collect();
    model.version = format!("lab-{}", train.len());
    model.trained_on = serde_json::json!({
        "labels": args.labels.display().to_string(),
        "kinds": kinds,
        "held_out": args.holdout,
        "train_flows": train.len(),
        "test_flows": test.len(),
        "test_share": args.test_share,
        "alpha": args.alpha,
        "idle_timeout": humantime::format_duration(args.flows.idle_timeout).to_string(),
    });
    let report = evaluate(&model, &test, &args.holdout);
    model.metrics = serde_json::to_value(&report)?;
    model
        .save(&args.out)
        .with_context(|| format!("saving the model to {}", args.out.display()))?;
    print_report(&report);
    println!("model written to {}", args.out.join("model.json").display());
    if let Some(p) = &args.report {
        write_report(p, &report)?;
    }
    Ok(report)
}

/// `daisi eval network`.
pub fn eval(args: &EvalNetworkArgs) -> anyhow::Result<NetworkReport> {
    let dir = match &args.model {
        Some(m) => m.clone(),
        None => crate::install::network_model()?,
    };
    let model = FlowModel::load(&dir)
        .with_context(|| format!("loading the network model {}", dir.display()))?;
    let flows = load_labelled(&args.labels, &args.pcap, &args.flows)?;
    // Kinds the model never saw in training count as held out.
    let seen: Vec<String> = model.trained_on["kinds"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let held: BTreeSet<String> = flows
        .iter()
        .filter(|f| f.malicious() && !seen.is_empty() && !seen.contains(&f.kind))
        .map(|f| f.kind.clone())
        .collect();
    let mut report = evaluate(&model, &flows, &held.into_iter().collect::<Vec<_>>());
    print_report(&report);
    report.per_source = per_source(&args.labels, &args.pcap, &args.flows)?;
    print_per_source(&report.per_source);
    if let Some(p) = &args.report {
        write_report(p, &report)?;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_of_a_known_case() {
        // 3 attacks (2 caught), 4 benign (1 false alarm).
        let s = [
            (true, 0.9),
            (true, 0.8),
            (true, 0.2),
            (false, 0.7),
            (false, 0.1),
            (false, 0.3),
            (false, 0.4),
        ];
        let f = figures(&s, 0.5);
        assert_eq!((f.tp, f.fn_, f.fp, f.tn), (2, 1, 1, 3));
        assert!((f.precision - 2.0 / 3.0).abs() < 1e-12);
        assert!((f.recall - 2.0 / 3.0).abs() < 1e-12);
        assert!((f.f1 - 2.0 / 3.0).abs() < 1e-12);
        assert!((f.fpr - 0.25).abs() < 1e-12);
        // Pairs ranked right: attack 0.9 and 0.8 beat all 4 benign, 0.2
        // beats 1 of 4: (4 + 4 + 1) / 12.
        assert!((f.roc_auc - 9.0 / 12.0).abs() < 1e-12);
    }

    #[test]
    fn split_is_deterministic_and_near_its_share() {
        let flows: Vec<LabelledFlow> = (0..10_000)
            .map(|i| LabelledFlow {
                pcap: "a.pcap".into(),
                index: i,
                kind: BENIGN.into(),
                x: vec![],
            })
            .collect();
        let n = flows.iter().filter(|f| in_test(f, 0.3)).count();
        assert!((2800..3200).contains(&n), "{n}");
        assert_eq!(n, flows.iter().filter(|f| in_test(f, 0.3)).count());
    }
}
