//! The ATT&CK lab's two commands.
//!
//! - `daisi eval atomics --atomics DIR`: the Linux tests of an Atomic Red
//!   Team `atomics/` folder as JSON Lines, their inputs filled with their
//!   defaults, each either runnable (`sh` or `bash`) or with why it is not
//!   run here (another executor, a kernel module: not contained).
//!   `lab/attack.sh` runs what it lists.
//! - `daisi eval attack --alerts A --phases P`: scores a run. A test is
//!   detected only by an alert line about one of its processes (the
//!   process the harness started it as, or one below it, found through the
//!   alert's process, parent, ancestry or incident tree); alert lines in
//!   its window about anything else are coincident, counted apart. Being
//!   started is the harness's doing, not the technique's: a `new_child`
//!   finding about the harness's own processes (the test's first process
//!   and the executor shell below it) does not count.

use crate::commands::eval_host::{counts, read_lines};
use crate::messages::{Alert, AlertModule};
use anyhow::{bail, Context};
use clap::Args;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

#[derive(Args, Debug, Clone)]
pub struct EvalAtomicsArgs {
    /// An Atomic Red Team `atomics/` folder (`T<id>/T<id>.yaml` in it).
    #[arg(long)]
    pub atomics: PathBuf,
    /// Only these techniques or tests (e.g. `T1053.003,T1046-1`); all when
    /// empty.
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// What `PathToAtomicsFolder` becomes in the commands (where the
    /// victim sees its copy of the folder); the folder itself by default.
    #[arg(long)]
    pub path_in_victim: Option<String>,
}

#[derive(Args, Debug, Clone)]
pub struct EvalAttackArgs {
    /// The node's alerts (JSON Lines: every line, updates included).
    #[arg(long)]
    pub alerts: PathBuf,
    /// The run's phases (JSON Lines, `lab/attack.sh` writes them): the
    /// learning and benign phases, and one line per test.
    #[arg(long)]
    pub phases: PathBuf,
    /// Write the report (JSON) here.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Write the tables (Markdown) here.
    #[arg(long)]
    pub markdown: Option<PathBuf>,
    /// An atomics folder whose techniques count as "shown" (the one the
    /// detectors were developed beside): the report gives detection on the
    /// others apart.
    #[arg(long)]
    pub shown: Option<PathBuf>,
}

// ---------------------------------------------------------------- atomics

#[derive(Debug, Deserialize)]
struct AtomicFile {
    attack_technique: String,
    #[serde(default)]
    atomic_tests: Vec<AtomicTest>,
}

#[derive(Debug, Deserialize)]
struct AtomicTest {
    name: String,
    #[serde(default)]
    auto_generated_guid: Option<String>,
    #[serde(default)]
    supported_platforms: Vec<String>,
    #[serde(default)]
    input_arguments: BTreeMap<String, InputArgument>,
    #[serde(default)]
    dependency_executor_name: Option<String>,
    #[serde(default)]
    dependencies: Vec<Dependency>,
    executor: Executor,
}

#[derive(Debug, Deserialize)]
struct InputArgument {
    #[serde(default)]
    default: Option<serde_norway::Value>,
}

#[derive(Debug, Deserialize)]
struct Dependency {
    #[serde(default)]
    description: String,
    #[serde(default)]
    prereq_command: String,
    #[serde(default)]
    get_prereq_command: String,
}

#[derive(Debug, Deserialize)]
struct Executor {
    name: String,
    #[serde(default)]
    elevation_required: bool,
    #[serde(default)]
    command: Option<String>,
    #[serde(default)]
    cleanup_command: Option<String>,
}

/// One test, ready for the harness.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedTest {
    /// e.g. `T1053.003`.
    pub technique: String,
    /// Its place among the technique's tests, from 1 (`T1053.003-2`).
    pub number: usize,
    pub id: String,
    pub name: String,
    pub guid: Option<String>,
    /// `sh` or `bash`.
    pub executor: String,
    pub elevation_required: bool,
    pub command: String,
    pub cleanup: String,
    pub prerequisites: Vec<Prerequisite>,
    /// The shell the prerequisites run in.
    pub prerequisite_executor: String,
    /// Set when the harness must not run it.
    pub why_not_run: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prerequisite {
    pub description: String,
    pub check: String,
    pub get: String,
}

/// What a command does that no namespace holds: it reaches the machine.
const NOT_CONTAINED: &[(&str, &str)] = &[
    ("insmod", "loads a kernel module"),
    ("modprobe", "loads a kernel module"),
    ("rmmod", "unloads a kernel module"),
    ("/lib/modules", "installs a kernel module"),
    ("kexec", "loads a kernel"),
];

fn fill(text: &str, inputs: &BTreeMap<String, String>, atomics: &str) -> String {
    // `#{name}` placeholders, as the Invoke-AtomicTest runner fills them
    // (names are case-insensitive there); then the folder, which defaults
    // name too.
    let mut out = text.to_string();
    for (k, v) in inputs {
        out = replace_ci(&out, &format!("#{{{k}}}"), v);
    }
    out.replace("PathToAtomicsFolder", atomics)
}

fn replace_ci(text: &str, pat: &str, with: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let p = pat.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    while let Some(i) = lower[at..].find(&p) {
        out.push_str(&text[at..at + i]);
        out.push_str(with);
        at += i + p.len();
    }
    out.push_str(&text[at..]);
    out
}

fn value_text(v: &serde_norway::Value) -> String {
    match v {
        serde_norway::Value::String(s) => s.clone(),
        serde_norway::Value::Bool(b) => b.to_string(),
        serde_norway::Value::Number(n) => n.to_string(),
        serde_norway::Value::Null => String::new(),
        other => serde_norway::to_string(other)
            .unwrap_or_default()
            .trim()
            .to_string(),
    }
}

/// The Linux tests of an atomics folder, in technique order.
pub fn plan(dir: &Path, only: &[String], path_in_victim: &str) -> anyhow::Result<Vec<PlannedTest>> {
    let mut folders: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading the atomics folder {}", dir.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.is_dir()
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with('T'))
        })
        .collect();
    folders.sort();
    if folders.is_empty() {
        bail!(
            "{} holds no technique folders (T<id>/T<id>.yaml): give an Atomic Red Team atomics/ folder",
            dir.display()
        );
    }
    let only: BTreeSet<String> = only.iter().map(|s| s.trim().to_uppercase()).collect();
    let mut out = Vec::new();
    for folder in folders {
        let name = folder.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let technique = name.to_uppercase();
        let prefix = format!("{technique}-");
        if !only.is_empty()
            && !only.contains(&technique)
            && !only.iter().any(|o| o.starts_with(&prefix))
        {
            continue;
        }
        let yaml = folder.join(format!("{name}.yaml"));
        let Ok(text) = std::fs::read_to_string(&yaml) else {
            continue;
        };
        let file: AtomicFile = serde_norway::from_str(&text)
            .with_context(|| format!("{}: not an atomic test file", yaml.display()))?;
        for (i, t) in file.atomic_tests.into_iter().enumerate() {
            if !t.supported_platforms.iter().any(|p| p == "linux") {
                continue;
            }
            let id = format!("{}-{}", file.attack_technique.trim().to_uppercase(), i + 1);
            if !only.is_empty() && !only.contains(&technique) && !only.contains(&id) {
                continue;
            }
            let inputs: BTreeMap<String, String> = t
                .input_arguments
                .iter()
                .map(|(k, a)| {
                    (
                        k.clone(),
                        a.default.as_ref().map(value_text).unwrap_or_default(),
                    )
                })
                .collect();
            let command = fill(
                t.executor.command.as_deref().unwrap_or(""),
                &inputs,
                path_in_victim,
            );
            let cleanup = fill(
                t.executor.cleanup_command.as_deref().unwrap_or(""),
                &inputs,
                path_in_victim,
            );
            let executor = t.executor.name.clone();
            let why_not_run = if executor != "sh" && executor != "bash" {
                Some(format!("executor {executor}: not sh or bash"))
            } else if command.trim().is_empty() {
                Some("no command".to_string())
            } else {
                let all = format!(
                    "{command}\n{}",
                    t.dependencies
                        .iter()
                        .map(|d| d.get_prereq_command.as_str())
                        .collect::<Vec<_>>()
                        .join("\n")
                );
                NOT_CONTAINED
                    .iter()
                    .find(|(p, _)| all.contains(p))
                    .map(|(p, why)| format!("not contained: {why} ({p})"))
            };
            out.push(PlannedTest {
                technique: file.attack_technique.trim().to_uppercase(),
                number: i + 1,
                id,
                name: t.name,
                guid: t.auto_generated_guid,
                executor,
                elevation_required: t.executor.elevation_required,
                command,
                cleanup,
                prerequisites: t
                    .dependencies
                    .iter()
                    .map(|d| Prerequisite {
                        description: fill(&d.description, &inputs, path_in_victim),
                        check: fill(&d.prereq_command, &inputs, path_in_victim),
                        get: fill(&d.get_prereq_command, &inputs, path_in_victim),
                    })
                    .collect(),
                prerequisite_executor: t
                    .dependency_executor_name
                    .filter(|e| e == "sh" || e == "bash")
                    .unwrap_or_else(|| "sh".to_string()),
                why_not_run,
            });
        }
    }
    Ok(out)
}

pub fn run_atomics(args: EvalAtomicsArgs) -> anyhow::Result<()> {
    let abs = std::fs::canonicalize(&args.atomics)
        .with_context(|| format!("the atomics folder {}", args.atomics.display()))?;
    let inside = args
        .path_in_victim
        .clone()
        .unwrap_or_else(|| abs.display().to_string());
    let tests = plan(&abs, &args.only, &inside)?;
    let mut out = std::io::stdout().lock();
    for t in &tests {
        use std::io::Write;
        serde_json::to_writer(&mut out, t)?;
        writeln!(out)?;
    }
    Ok(())
}

// ---------------------------------------------------------------- scoring

/// One line of `phases.jsonl`: a learning or benign phase, or a test.
#[derive(Debug, Clone, Deserialize)]
pub struct AttackPhase {
    pub phase: String,
    pub kind: crate::commands::eval_host::PhaseKind,
    pub start_ns: u64,
    pub end_ns: u64,
    /// Tests: the technique, e.g. `T1053.003`, or `control` (an empty
    /// command through the same harness).
    #[serde(default)]
    pub technique: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    /// The host pids the harness started the test as.
    #[serde(default)]
    pub pids: Vec<u32>,
    #[serde(default = "yes")]
    pub ran: bool,
    #[serde(default)]
    pub why_not_run: Option<String>,
}

fn yes() -> bool {
    true
}

/// One test's figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TestResult {
    pub id: String,
    pub technique: String,
    pub technique_name: String,
    pub name: String,
    pub ran: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why_not_run: Option<String>,
    pub detected: bool,
    /// Which detectors: `baseline`, `sequence model`, `syscall model`,
    /// `logs`, `network`, `sigma`.
    pub detectors: Vec<String>,
    /// Start of the test to its first attributed alert line.
    pub latency_s: Option<f64>,
    /// Lines of the alerts attributed to it (openings and updates).
    pub alert_lines: usize,
    /// Alerts raised in its window about something else.
    pub coincident: usize,
    /// The Sigma rules and daisi rules that matched its processes.
    pub rules: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TechniqueResult {
    pub technique: String,
    pub name: String,
    pub tactics: Vec<String>,
    pub tests: usize,
    pub ran: usize,
    pub detected: usize,
    /// In the folder the detectors were developed beside (`--shown`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shown: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TacticResult {
    pub tactic: String,
    /// Techniques with a test that ran.
    pub techniques: usize,
    pub detected: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Share {
    pub of: usize,
    pub detected: usize,
    pub ratio: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttackReport {
    pub attack_version: String,
    pub tests: Vec<TestResult>,
    pub techniques: Vec<TechniqueResult>,
    pub tactics: Vec<TacticResult>,
    /// Techniques with a test that ran: how many were detected.
    pub techniques_detected: Share,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub techniques_not_shown_detected: Option<Share>,
    /// The control (an empty command through the harness): what the
    /// harness alone raises.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub control: Option<TestResult>,
    pub benign_hours: f64,
    pub false_alarms: usize,
    pub false_alarms_per_host_hour: f64,
    /// The one-sided 95 % upper bound of the rate (exact, Poisson).
    pub false_alarms_upper_95: f64,
    /// False alarms per detector.
    pub false_alarms_by_detector: BTreeMap<String, usize>,
}

/// The exact one-sided upper bound at `confidence` of a Poisson mean
/// after `k` events: the mean at which seeing `k` or fewer has
/// probability `1 - confidence` (bisection on the CDF).
pub fn poisson_upper(k: usize, confidence: f64) -> f64 {
    let cdf = |mean: f64| {
        let (mut term, mut sum) = ((-mean).exp(), 0.0);
        for i in 0..=k {
            if i > 0 {
                term *= mean / i as f64;
            }
            sum += term;
        }
        sum
    };
    let (mut lo, mut hi) = (0.0f64, 10.0 + 10.0 * k as f64);
    for _ in 0..200 {
        let mid = (lo + hi) / 2.0;
        if cdf(mid) > 1.0 - confidence {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    (lo + hi) / 2.0
}

fn detector(module: AlertModule, rule: Option<&str>) -> &'static str {
    match module {
        AlertModule::Baseline if rule == Some("baseline.sequence") => "sequence model",
        AlertModule::Baseline => "baseline",
        AlertModule::Syscall => "syscall model",
        AlertModule::Network => "network",
        AlertModule::Log => "logs",
        AlertModule::Sigma => "sigma",
        AlertModule::Incident | AlertModule::Response => "incident",
    }
}

/// A finding of one alert line: about which process, by which detector
/// and rule.
struct Found {
    pid: Option<u32>,
    detector: &'static str,
    rule: Option<String>,
}

/// Every finding a line carries: an incident's per member, else the alert
/// itself.
fn findings(a: &Alert) -> Vec<Found> {
    if !a.tree.is_empty() {
        return a
            .tree
            .iter()
            .flat_map(|m| {
                m.findings.iter().map(|f| Found {
                    pid: Some(m.process.pid),
                    detector: detector(f.module, f.rule.as_ref().map(|r| r.name.as_str())),
                    rule: f.rule.as_ref().map(|r| r.name.clone()),
                })
            })
            .collect();
    }
    vec![Found {
        pid: a.process.as_ref().map(|p| p.pid),
        detector: detector(a.module, a.rule.as_ref().map(|r| r.name.as_str())),
        rule: a.rule.as_ref().map(|r| r.name.clone()),
    }]
}

/// Parent links a line knows: its process's, parent's, ancestry and its
/// tree's.
fn parents(a: &Alert, into: &mut HashMap<u32, u32>) {
    for m in &a.tree {
        if let Some(pp) = m.process.ppid {
            into.entry(m.process.pid).or_insert(pp);
        }
    }
    if let Some(p) = &a.process {
        let mut chain = vec![p.pid];
        if let Some(pp) = &p.parent {
            chain.push(pp.pid);
        }
        chain.extend(&p.ancestry);
        for w in chain.windows(2) {
            into.entry(w[0]).or_insert(w[1]);
        }
    }
}

/// How far below `root` a process is (0: itself), within a few steps.
fn depth_below(pid: u32, root: u32, up: &HashMap<u32, u32>) -> Option<usize> {
    let mut at = pid;
    for d in 0..32 {
        if at == root {
            return Some(d);
        }
        at = *up.get(&at)?;
    }
    None
}

/// Scores a run's alert lines against its phases.
pub fn evaluate(
    lines: &[Alert],
    phases: &[AttackPhase],
    shown: Option<&BTreeSet<String>>,
) -> AttackReport {
    let lines: Vec<&Alert> = lines.iter().filter(|a| counts(a)).collect();
    let mut tests = Vec::new();
    let mut control = None;
    let mut benign_hours = 0.0;
    let mut false_alarm_ids = BTreeSet::new();
    let mut by_detector: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
    for p in phases {
        let window: Vec<&Alert> = lines
            .iter()
            .copied()
            .filter(|a| a.ts_ns >= p.start_ns && a.ts_ns < p.end_ns)
            .collect();
        match p.kind {
            crate::commands::eval_host::PhaseKind::Learning => {}
            crate::commands::eval_host::PhaseKind::Benign => {
                benign_hours += p.end_ns.saturating_sub(p.start_ns) as f64 / 3.6e12;
                // An alert first raised in the phase (its updates are the
                // same false alarm).
                for a in &window {
                    let first = if a.first_seen_ns > 0 {
                        a.first_seen_ns
                    } else {
                        a.ts_ns
                    };
                    if first >= p.start_ns && false_alarm_ids.insert(a.id.as_str()) {
                        for f in findings(a) {
                            by_detector
                                .entry(f.detector.to_string())
                                .or_default()
                                .insert(a.id.as_str());
                        }
                    }
                }
            }
            crate::commands::eval_host::PhaseKind::Attack => {
                let r = score_test(p, &window);
                if p.technique.as_deref() == Some("control") {
                    control = Some(r);
                } else {
                    tests.push(r);
                }
            }
        }
    }
    // Techniques and tactics.
    let mut techniques: BTreeMap<String, TechniqueResult> = BTreeMap::new();
    for t in &tests {
        let e = techniques.entry(t.technique.clone()).or_insert_with(|| {
            let (name, tactics) = crate::attack::technique(&t.technique)
                .or_else(|| crate::attack::technique(t.technique.split('.').next().unwrap_or("")))
                .map(|(n, ts)| (n.to_string(), ts.iter().map(|s| s.to_string()).collect()))
                .unwrap_or_default();
            TechniqueResult {
                technique: t.technique.clone(),
                name,
                tactics,
                tests: 0,
                ran: 0,
                detected: 0,
                shown: shown.map(|s| s.contains(&t.technique)),
            }
        });
        e.tests += 1;
        e.ran += usize::from(t.ran);
        e.detected += usize::from(t.detected);
    }
    let mut tactics: BTreeMap<String, TacticResult> = BTreeMap::new();
    for t in techniques.values().filter(|t| t.ran > 0) {
        for tactic in &t.tactics {
            let e = tactics
                .entry(tactic.clone())
                .or_insert_with(|| TacticResult {
                    tactic: tactic.clone(),
                    techniques: 0,
                    detected: 0,
                });
            e.techniques += 1;
            e.detected += usize::from(t.detected > 0);
        }
    }
    let share = |f: &dyn Fn(&TechniqueResult) -> bool| {
        let of: Vec<_> = techniques.values().filter(|t| t.ran > 0 && f(t)).collect();
        let detected = of.iter().filter(|t| t.detected > 0).count();
        Share {
            of: of.len(),
            detected,
            ratio: if of.is_empty() {
                0.0
            } else {
                detected as f64 / of.len() as f64
            },
        }
    };
    let techniques_detected = share(&|_| true);
    let techniques_not_shown_detected = shown.map(|_| share(&|t| t.shown == Some(false)));
    let false_alarms = false_alarm_ids.len();
    let rate = |n: f64| {
        if benign_hours > 0.0 {
            n / benign_hours
        } else {
            0.0
        }
    };
    AttackReport {
        attack_version: crate::attack::ATTACK_VERSION.to_string(),
        tests,
        techniques_detected,
        techniques_not_shown_detected,
        tactics: tactics.into_values().collect(),
        techniques: techniques.into_values().collect(),
        control,
        benign_hours,
        false_alarms,
        false_alarms_per_host_hour: rate(false_alarms as f64),
        false_alarms_upper_95: rate(poisson_upper(false_alarms, 0.95)),
        false_alarms_by_detector: by_detector.into_iter().map(|(k, v)| (k, v.len())).collect(),
    }
}

fn score_test(p: &AttackPhase, window: &[&Alert]) -> TestResult {
    let technique = p.technique.clone().unwrap_or_else(|| p.phase.clone());
    let mut up = HashMap::new();
    for a in window {
        parents(a, &mut up);
    }
    let mut detectors = BTreeSet::new();
    let mut rules = BTreeSet::new();
    let mut attributed: BTreeSet<&str> = BTreeSet::new();
    let mut first: Option<u64> = None;
    for a in window {
        let mut mine = false;
        for f in findings(a) {
            let Some(pid) = f.pid else { continue };
            let Some(depth) = p
                .pids
                .iter()
                .filter_map(|&root| depth_below(pid, root, &up))
                .min()
            else {
                continue;
            };
            // The test's first process and the executor below it were
            // started by the harness: that they are new is not the
            // technique's doing.
            if depth <= 1 && f.rule.as_deref() == Some("baseline.new_child") {
                continue;
            }
            mine = true;
            detectors.insert(f.detector.to_string());
            if let Some(r) = f.rule {
                rules.insert(r);
            }
        }
        if mine {
            attributed.insert(a.id.as_str());
            first = Some(first.map_or(a.ts_ns, |f| f.min(a.ts_ns)));
        }
    }
    let ids: BTreeSet<&str> = window.iter().map(|a| a.id.as_str()).collect();
    let alert_lines = window
        .iter()
        .filter(|a| attributed.contains(a.id.as_str()))
        .count();
    TestResult {
        id: p.phase.clone(),
        technique_name: crate::attack::technique(&technique)
            .map(|(n, _)| n.to_string())
            .unwrap_or_default(),
        technique,
        name: p.name.clone().unwrap_or_default(),
        ran: p.ran,
        why_not_run: p.why_not_run.clone(),
        detected: p.ran && !attributed.is_empty(),
        detectors: detectors.into_iter().collect(),
        latency_s: first.map(|f| f.saturating_sub(p.start_ns) as f64 / 1e9),
        alert_lines,
        coincident: ids.len() - attributed.len(),
        rules: rules.into_iter().collect(),
    }
}

fn pct(s: &Share) -> String {
    format!("{}/{} ({:.0} %)", s.detected, s.of, 100.0 * s.ratio)
}

/// The report as Markdown tables (per technique, per tactic, the figures).
pub fn markdown(r: &AttackReport) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "Techniques detected (attributed): {}",
        pct(&r.techniques_detected)
    ));
    if let Some(s) = r
        .techniques_not_shown_detected
        .as_ref()
        .filter(|s| s.of > 0)
    {
        out.push_str(&format!("; on techniques not shown: {}", pct(s)));
    }
    out.push_str(&format!(
        ".\nFalse alarms: {} over {:.3} host-hours = {:.2} per host-hour (95 % upper bound {:.2}).\n\n",
        r.false_alarms, r.benign_hours, r.false_alarms_per_host_hour, r.false_alarms_upper_95
    ));
    out.push_str("| test | technique | ran | detected | detectors | first alert (s) | lines | coincident |\n");
    out.push_str("| --- | --- | --- | --- | --- | --- | --- | --- |\n");
    for t in r.tests.iter().chain(r.control.iter()) {
        let cell = |s: &str| s.replace('|', "\\|");
        out.push_str(&format!(
            "| {} {} | {} {} | {} | {} | {} | {} | {} | {} |\n",
            t.id,
            cell(&t.name),
            t.technique,
            cell(&t.technique_name),
            if t.ran {
                "yes".to_string()
            } else {
                format!("no: {}", cell(t.why_not_run.as_deref().unwrap_or("")))
            },
            if !t.ran {
                "–"
            } else if t.detected {
                "yes"
            } else {
                "no"
            },
            t.detectors.join(", "),
            t.latency_s.map_or("–".to_string(), |l| format!("{l:.2}")),
            t.alert_lines,
            t.coincident,
        ));
    }
    out.push_str("\n| tactic | techniques run | detected |\n| --- | --- | --- |\n");
    for t in &r.tactics {
        out.push_str(&format!(
            "| {} | {} | {} |\n",
            crate::attack::tactic_title(&t.tactic),
            t.techniques,
            t.detected
        ));
    }
    out
}

pub fn run_attack(args: EvalAttackArgs) -> anyhow::Result<()> {
    let alerts: Vec<Alert> = if args.alerts.exists() {
        read_lines(&args.alerts)?
    } else {
        Vec::new()
    };
    let phases: Vec<AttackPhase> = read_lines(&args.phases)?;
    let shown = match &args.shown {
        Some(dir) => Some(
            plan(dir, &[], "")?
                .into_iter()
                .map(|t| t.technique)
                .collect::<BTreeSet<_>>(),
        ),
        None => None,
    };
    let report = evaluate(&alerts, &phases, shown.as_ref());
    let md = markdown(&report);
    if let Some(path) = &args.report {
        crate::files::write_atomic(path, &serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &args.markdown {
        crate::files::write_atomic(path, md.as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    print!("{md}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::eval_host::PhaseKind;
    use crate::messages::{Finding, ProcessFields, ProcessInfo, RuleFields, Severity, TreeMember};

    #[test]
    fn poisson_upper_bounds_are_the_exact_ones() {
        // The textbook values: 2.996 for none, 4.744 for one, 6.296 for two.
        assert!((poisson_upper(0, 0.95) - 2.996).abs() < 0.001);
        assert!((poisson_upper(1, 0.95) - 4.744).abs() < 0.001);
        assert!((poisson_upper(2, 0.95) - 6.296).abs() < 0.001);
    }

    const ATOMIC: &str = r##"
attack_technique: T1053.003
display_name: 'Scheduled Task/Job: Cron'
atomic_tests:
- name: Cron - Add script to all cron subfolders
  auto_generated_guid: b7d42afa-9086-4c8a-b7b0-8ea3faa6ebb0
  supported_platforms:
  - macos
  - linux
  input_arguments:
    command:
      description: Command to execute
      type: string
      default: echo 'Hello from Atomic Red Team' > /tmp/atomic.log
    source:
      type: path
      default: PathToAtomicsFolder/T1053.003/src/x.sh
    cron_script_name:
      type: string
      default: persistevil
  executor:
    elevation_required: true
    name: bash
    command: |
      for folder in {hourly,daily}; do echo "#{command}" > /etc/cron.$folder/#{cron_script_name}; done
      cat #{source}
    cleanup_command: |
      rm /etc/cron.daily/#{CRON_SCRIPT_NAME} 2>/dev/null
- name: A Windows one
  supported_platforms:
  - windows
  executor:
    name: powershell
    command: Get-Thing
- name: Kernel module
  supported_platforms:
  - linux
  dependencies:
  - description: The module is built
    prereq_command: test -f PathToAtomicsFolder/T1053.003/bin/m.ko
    get_prereq_command: make -C /lib/modules/$(uname -r)/build
  executor:
    name: sh
    command: insmod PathToAtomicsFolder/T1053.003/bin/m.ko
- name: By hand
  supported_platforms:
  - linux
  executor:
    name: manual
    steps: do it
"##;

    /// Linux tests only, inputs filled (names case-insensitive),
    /// PathToAtomicsFolder replaced, and each test not to run with why.
    #[test]
    fn an_atomics_folder_becomes_the_tests_to_run() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("T1053.003")).unwrap();
        std::fs::write(dir.path().join("T1053.003/T1053.003.yaml"), ATOMIC).unwrap();
        std::fs::create_dir(dir.path().join("T1046")).unwrap();
        std::fs::write(
            dir.path().join("T1046/T1046.yaml"),
            "attack_technique: T1046\natomic_tests:\n- name: scan\n  supported_platforms: [linux]\n  executor:\n    name: sh\n    command: nmap localhost\n",
        )
        .unwrap();
        let all = plan(dir.path(), &[], "/opt/atomics").unwrap();
        assert_eq!(all.len(), 4, "{all:#?}");
        assert_eq!(all[0].id, "T1046-1");
        let cron = &all[1];
        assert_eq!(cron.id, "T1053.003-1");
        assert_eq!(cron.executor, "bash");
        assert!(cron.elevation_required);
        assert_eq!(
            cron.command.trim(),
            "for folder in {hourly,daily}; do echo \"echo 'Hello from Atomic Red Team' > /tmp/atomic.log\" > /etc/cron.$folder/persistevil; done\ncat /opt/atomics/T1053.003/src/x.sh"
        );
        assert_eq!(
            cron.cleanup.trim(),
            "rm /etc/cron.daily/persistevil 2>/dev/null"
        );
        assert_eq!(cron.why_not_run, None);
        let module = &all[2];
        assert_eq!(module.id, "T1053.003-3");
        assert_eq!(module.command, "insmod /opt/atomics/T1053.003/bin/m.ko");
        assert_eq!(
            module.prerequisites[0].check,
            "test -f /opt/atomics/T1053.003/bin/m.ko"
        );
        assert!(module
            .why_not_run
            .as_deref()
            .unwrap()
            .starts_with("not contained: loads a kernel module"));
        assert_eq!(
            all[3].why_not_run.as_deref(),
            Some("executor manual: not sh or bash")
        );
        let only = plan(dir.path(), &["t1046".into()], "/x").unwrap();
        assert_eq!(only.len(), 1);
        let only = plan(dir.path(), &["T1053.003-3".into(), "T1046-2".into()], "/x").unwrap();
        assert_eq!(
            only.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(),
            ["T1053.003-3"]
        );
        assert!(plan(&dir.path().join("T1046"), &[], "/x").is_err());
    }

    fn member(pid: u32, ppid: u32, rules: &[&str]) -> TreeMember {
        TreeMember {
            process: ProcessInfo {
                pid,
                ppid: Some(ppid),
                name: format!("p{pid}"),
                ..Default::default()
            },
            findings: rules
                .iter()
                .map(|r| Finding {
                    module: AlertModule::Baseline,
                    severity: Severity::High,
                    score: 1.0,
                    threshold: 0.5,
                    summary: String::new(),
                    rule: Some(RuleFields {
                        name: r.to_string(),
                        ..Default::default()
                    }),
                    threat: None,
                    baseline: None,
                })
                .collect(),
        }
    }

    fn incident(id: &str, ts: u64, tree: Vec<TreeMember>) -> Alert {
        let mut a = Alert::new(
            AlertModule::Incident,
            "h",
            format!("tree:{id}"),
            Severity::High,
        );
        a.id = id.to_string();
        a.ts_ns = ts;
        a.first_seen_ns = ts;
        a.tree = tree;
        a
    }

    fn test_phase(id: &str, technique: &str, start: u64, end: u64, pid: u32) -> AttackPhase {
        AttackPhase {
            phase: id.into(),
            kind: PhaseKind::Attack,
            start_ns: start,
            end_ns: end,
            technique: Some(technique.into()),
            name: Some(id.into()),
            pids: vec![pid],
            ran: true,
            why_not_run: None,
        }
    }

    /// A test is detected by a line about a process below the one the
    /// harness started (through the tree's parents or the process's
    /// ancestry), not by the harness's own processes being new, nor by an
    /// alert about something else in its window (coincident); false alarms
    /// come with their bound; techniques roll up into tactics.
    #[test]
    fn only_alerts_about_a_tests_processes_detect_it() {
        let s = 1_000_000_000u64;
        let phases = vec![
            AttackPhase {
                phase: "benign".into(),
                kind: PhaseKind::Benign,
                start_ns: 0,
                end_ns: 3600 * s,
                technique: None,
                name: None,
                pids: vec![],
                ran: true,
                why_not_run: None,
            },
            test_phase("control", "control", 4000 * s, 4010 * s, 100),
            test_phase("T1003.008-3", "T1003.008", 4010 * s, 4020 * s, 200),
            test_phase("T1046-1", "T1046", 4020 * s, 4030 * s, 300),
            test_phase("T1082-3", "T1082", 4030 * s, 4040 * s, 400),
        ];
        let mut deep = Alert::new(AlertModule::Sigma, "h", "pid:405".into(), Severity::Medium);
        deep.id = "deep".into();
        deep.ts_ns = 4033 * s;
        deep.process = Some(ProcessFields {
            pid: 405,
            parent: Some(Box::new(ProcessFields {
                pid: 404,
                ..Default::default()
            })),
            ancestry: vec![401, 400, 1],
            ..Default::default()
        });
        deep.rule = Some(RuleFields {
            name: "Suspicious uname".into(),
            ..Default::default()
        });
        let lines = vec![
            // One false alarm in the benign hour.
            incident("fa", 100 * s, vec![member(50, 1, &["baseline.new_child"])]),
            // The control and the harness: being started is not a detection.
            incident(
                "c",
                4002 * s,
                vec![
                    member(100, 1, &["baseline.new_child"]),
                    member(101, 100, &["baseline.new_child"]),
                ],
            ),
            // Below the test's first process: detected, with an update.
            incident(
                "t1",
                4012 * s,
                vec![
                    member(200, 1, &[]),
                    member(201, 200, &[]),
                    member(202, 201, &["baseline.sensitive_read"]),
                ],
            ),
            incident(
                "t1",
                4014 * s,
                vec![
                    member(200, 1, &[]),
                    member(201, 200, &[]),
                    member(202, 201, &["baseline.sensitive_read", "baseline.sequence"]),
                ],
            ),
            // In T1046's window but about another process: coincident.
            incident(
                "other",
                4022 * s,
                vec![member(900, 1, &["baseline.new_child"])],
            ),
            deep,
        ];
        let r = evaluate(&lines, &phases, None);
        let by = |id: &str| r.tests.iter().find(|t| t.id == id).unwrap();
        let c = r.control.as_ref().unwrap();
        assert!(!c.detected, "{c:?}");
        assert_eq!(c.coincident, 1);
        let t = by("T1003.008-3");
        assert!(t.detected);
        assert_eq!(t.detectors, ["baseline", "sequence model"]);
        assert_eq!(t.alert_lines, 2);
        assert!((t.latency_s.unwrap() - 2.0).abs() < 1e-9);
        assert_eq!(t.technique_name, "/etc/passwd and /etc/shadow");
        let scan = by("T1046-1");
        assert!(!scan.detected);
        assert_eq!(scan.coincident, 1);
        let d = by("T1082-3");
        assert!(d.detected, "{d:?}");
        assert_eq!(d.detectors, ["sigma"]);
        assert_eq!(d.rules, ["Suspicious uname"]);
        assert_eq!(r.techniques_detected.of, 3);
        assert_eq!(r.techniques_detected.detected, 2);
        assert_eq!(r.false_alarms, 1);
        assert!((r.benign_hours - 1.0).abs() < 1e-9);
        assert!((r.false_alarms_upper_95 - 4.744).abs() < 0.001);
        assert_eq!(r.false_alarms_by_detector.get("baseline"), Some(&1));
        let discovery = r.tactics.iter().find(|t| t.tactic == "discovery").unwrap();
        assert_eq!((discovery.techniques, discovery.detected), (2, 1));
        let md = markdown(&r);
        assert!(md.contains("| T1003.008-3 T1003.008-3 | T1003.008 /etc/passwd and /etc/shadow | yes | yes | baseline, sequence model | 2.00 | 2 | 0 |"), "{md}");
        assert!(md.contains("| Credential Access | 1 | 1 |"), "{md}");
    }
}
