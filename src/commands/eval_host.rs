//! `daisi eval host`: the host lab's figures from a run's alerts and its
//! phases (`lab/host.sh` writes both): per attack scenario, whether it was
//! detected, the seconds from its first step to its first alert and the
//! alert lines it produced; false alarms per host-hour over the benign
//! phase; alerts that name an unknown process.

use crate::messages::{Alert, AlertModule};
use anyhow::Context;
use clap::Args;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Args, Debug, Clone)]
pub struct EvalHostArgs {
    /// The node's alerts (JSON Lines: every line, updates included).
    #[arg(long)]
    pub alerts: PathBuf,
    /// The run's phases (JSON Lines: `phase`, `kind` = learning, benign or
    /// attack, `start_ns`, `end_ns`).
    #[arg(long)]
    pub phases: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Phase {
    pub phase: String,
    pub kind: PhaseKind,
    pub start_ns: u64,
    pub end_ns: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PhaseKind {
    Learning,
    Benign,
    Attack,
}

/// One scenario's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct ScenarioResult {
    pub name: String,
    pub detected: bool,
    /// First step to first alert.
    pub latency_s: Option<f64>,
    /// Alert lines of the alerts first raised in its phase (incident and
    /// updates).
    pub alert_lines: usize,
}

/// The whole run's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct HostEval {
    pub scenarios: Vec<ScenarioResult>,
    pub benign_hours: f64,
    pub false_alarms: usize,
    pub unknown_process: usize,
}

/// What people act on: everything but response outcomes.
fn counts(a: &Alert) -> bool {
    a.module != AlertModule::Response
}

/// Figures from the alert lines and phases.
pub fn evaluate(lines: &[Alert], phases: &[Phase]) -> HostEval {
    // Each alert: when it was first raised, and its lines.
    let mut first: BTreeMap<&str, (u64, usize)> = BTreeMap::new();
    for a in lines.iter().filter(|a| counts(a)) {
        let at = if a.first_seen_ns > 0 {
            a.first_seen_ns
        } else {
            a.ts_ns
        };
        let e = first.entry(a.id.as_str()).or_insert((at, 0));
        e.0 = e.0.min(at);
        e.1 += 1;
    }
    let within = |p: &Phase| {
        first
            .values()
            .filter(|(at, _)| *at >= p.start_ns && *at < p.end_ns)
            .copied()
            .collect::<Vec<_>>()
    };
    let mut out = HostEval {
        scenarios: Vec::new(),
        benign_hours: 0.0,
        false_alarms: 0,
        unknown_process: lines
            .iter()
            .filter(|a| {
                a.process.as_ref().is_some_and(|p| {
                    p.name
                        .as_deref()
                        .is_none_or(|n| n.starts_with("pid ") || n == "?")
                })
            })
            .count(),
    };
    for p in phases {
        let hits = within(p);
        match p.kind {
            PhaseKind::Learning => {}
            PhaseKind::Benign => {
                out.benign_hours += (p.end_ns - p.start_ns) as f64 / 3.6e12;
                out.false_alarms += hits.len();
            }
            PhaseKind::Attack => out.scenarios.push(ScenarioResult {
                name: p.phase.clone(),
                detected: !hits.is_empty(),
                latency_s: hits
                    .iter()
                    .map(|(at, _)| *at)
                    .min()
                    .map(|at| at.saturating_sub(p.start_ns) as f64 / 1e9),
                alert_lines: hits.iter().map(|(_, n)| n).sum(),
            }),
        }
    }
    out
}

fn read_lines<T: serde::de::DeserializeOwned>(path: &PathBuf) -> anyhow::Result<Vec<T>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l).with_context(|| format!("{} line {}", path.display(), i + 1))
        })
        .collect()
}

/// `daisi eval host`: prints the table; the figures.
pub fn eval_host(args: &EvalHostArgs) -> anyhow::Result<HostEval> {
    let alerts: Vec<Alert> = if args.alerts.exists() {
        read_lines(&args.alerts)?
    } else {
        Vec::new() // a run without a single alert
    };
    let phases: Vec<Phase> = read_lines(&args.phases)?;
    let e = evaluate(&alerts, &phases);
    println!(
        "{:<28} {:>8} {:>12} {:>12}",
        "scenario", "detected", "first alert", "alert lines"
    );
    for s in &e.scenarios {
        println!(
            "{:<28} {:>8} {:>12} {:>12}",
            s.name,
            if s.detected { "yes" } else { "no" },
            s.latency_s.map_or("-".into(), |l| format!("{l:.2} s")),
            s.alert_lines
        );
    }
    let detected = e.scenarios.iter().filter(|s| s.detected).count();
    println!(
        "detected {detected} of {} scenarios; false alarms {} over {:.3} host-hours of benign workload ({:.2} per host-hour); alerts naming an unknown process: {}",
        e.scenarios.len(),
        e.false_alarms,
        e.benign_hours,
        if e.benign_hours > 0.0 { e.false_alarms as f64 / e.benign_hours } else { 0.0 },
        e.unknown_process
    );
    Ok(e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::Severity;

    fn alert(id: &str, at: u64) -> Alert {
        let mut a = Alert::new(AlertModule::Incident, "h", "tree:1".into(), Severity::High);
        a.id = id.into();
        a.ts_ns = at;
        a.first_seen_ns = at;
        a
    }

    #[test]
    fn scenarios_are_scored_by_their_phase() {
        let s = 1_000_000_000u64;
        let phases = [
            Phase {
                phase: "learning".into(),
                kind: PhaseKind::Learning,
                start_ns: 0,
                end_ns: 10 * s,
            },
            Phase {
                phase: "benign".into(),
                kind: PhaseKind::Benign,
                start_ns: 10 * s,
                end_ns: 46 * s,
            },
            Phase {
                phase: "a".into(),
                kind: PhaseKind::Attack,
                start_ns: 50 * s,
                end_ns: 60 * s,
            },
            Phase {
                phase: "b".into(),
                kind: PhaseKind::Attack,
                start_ns: 60 * s,
                end_ns: 70 * s,
            },
        ];
        let lines = [
            alert("learnt", 5 * s),
            alert("fp", 20 * s),
            alert("x", 51 * s + s / 2),
            alert("x", 51 * s + s / 2), // its update
        ];
        let e = evaluate(&lines, &phases);
        assert_eq!(e.false_alarms, 1);
        assert!((e.benign_hours - 0.01).abs() < 1e-9);
        assert_eq!(
            e.scenarios[0],
            ScenarioResult {
                name: "a".into(),
                detected: true,
                latency_s: Some(1.5),
                alert_lines: 2
            }
        );
        assert!(!e.scenarios[1].detected);
        assert_eq!(e.unknown_process, 0);
    }
}
