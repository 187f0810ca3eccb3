//! `daisi eval host`: the host lab's figures from a run's alerts and its
//! phases (`lab/host.sh` writes both): per attack scenario, whether it was
//! detected, the seconds from its first step to its first alert and the
//! alert lines it produced; false alarms per host-hour over the benign
//! phase, with their 95 % upper bound; alerts that name an unknown
//! process.
//!
//! **Attributed.** A scenario's phase names what identifies the attack:
//! `markers` (text of the attacker's command lines, e.g. the command sent
//! through the flaw; its first 32 characters are matched) and `users` (accounts only the attacker uses). An
//! alert counts for the scenario only when one of its processes (the
//! process, its parent, an incident's members) has a marker in its
//! command line or runs as one of the users, or its user is one of them;
//! the other alerts first raised in its window are coincident. A phase
//! with neither counts every alert in its window (older phase files).

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

#[derive(Debug, Clone, Deserialize, Default)]
pub struct Phase {
    pub phase: String,
    pub kind: PhaseKind,
    pub start_ns: u64,
    pub end_ns: u64,
    /// Text of the attacker's command lines.
    #[serde(default)]
    pub markers: Vec<String>,
    /// Accounts only the attacker uses.
    #[serde(default)]
    pub users: Vec<String>,
}

impl Phase {
    /// Whether an alert is about this attack (see the module's notes).
    fn attributes(&self, a: &Alert) -> bool {
        if self.markers.is_empty() && self.users.is_empty() {
            return true;
        }
        // A marker's first 32 characters: a capture bounds arguments.
        let marked = |args: &[String]| {
            let line = args.join(" ");
            self.markers.iter().any(|m| {
                let head: String = m.chars().take(32).collect();
                !head.is_empty() && line.contains(&head)
            })
        };
        let user = |name: Option<&str>| name.is_some_and(|n| self.users.iter().any(|u| u == n));
        if user(a.user.as_ref().and_then(|u| u.name.as_deref())) {
            return true;
        }
        let mut p = a.process.as_ref();
        while let Some(x) = p {
            if marked(&x.args) {
                return true;
            }
            p = x.parent.as_deref();
        }
        a.tree
            .iter()
            .any(|m| marked(&m.process.args) || user(m.process.user_name.as_deref()))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum PhaseKind {
    #[default]
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
    /// Lines of the alerts attributed to it (openings and updates).
    pub alert_lines: usize,
    /// Alerts first raised in its window about something else.
    pub coincident: usize,
}

/// The whole run's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct HostEval {
    pub scenarios: Vec<ScenarioResult>,
    pub benign_hours: f64,
    pub false_alarms: usize,
    /// The one-sided 95 % upper bound of false alarms per host-hour.
    pub false_alarms_upper_95: f64,
    pub unknown_process: usize,
}

/// What people act on: everything but response outcomes.
pub(crate) fn counts(a: &Alert) -> bool {
    a.module != AlertModule::Response
}

/// Figures from the alert lines and phases.
pub fn evaluate(lines: &[Alert], phases: &[Phase]) -> HostEval {
    let lines: Vec<&Alert> = lines.iter().filter(|a| counts(a)).collect();
    // Each alert: when it was first raised.
    let mut first: BTreeMap<&str, u64> = BTreeMap::new();
    for a in &lines {
        let at = if a.first_seen_ns > 0 {
            a.first_seen_ns
        } else {
            a.ts_ns
        };
        let e = first.entry(a.id.as_str()).or_insert(at);
        *e = (*e).min(at);
    }
    let mut out = HostEval {
        scenarios: Vec::new(),
        benign_hours: 0.0,
        false_alarms: 0,
        false_alarms_upper_95: 0.0,
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
        let raised = |id: &str| {
            first
                .get(id)
                .is_some_and(|at| *at >= p.start_ns && *at < p.end_ns)
        };
        match p.kind {
            PhaseKind::Learning => {}
            PhaseKind::Benign => {
                out.benign_hours += (p.end_ns - p.start_ns) as f64 / 3.6e12;
                out.false_alarms += first.keys().filter(|id| raised(id)).count();
            }
            PhaseKind::Attack => {
                // Lines written in its window (an earlier incident's
                // update included) that are about the attack.
                let window: Vec<&&Alert> = lines
                    .iter()
                    .filter(|a| a.ts_ns >= p.start_ns && a.ts_ns < p.end_ns)
                    .collect();
                let mine: std::collections::BTreeSet<&str> = window
                    .iter()
                    .filter(|a| p.attributes(a))
                    .map(|a| a.id.as_str())
                    .collect();
                let attributed: Vec<&&&Alert> = window
                    .iter()
                    .filter(|a| mine.contains(a.id.as_str()))
                    .collect();
                let coincident = first
                    .keys()
                    .filter(|id| raised(id) && !mine.contains(*id))
                    .count();
                out.scenarios.push(ScenarioResult {
                    name: p.phase.clone(),
                    detected: !attributed.is_empty(),
                    latency_s: attributed
                        .iter()
                        .map(|a| a.ts_ns)
                        .min()
                        .map(|at| at.saturating_sub(p.start_ns) as f64 / 1e9),
                    alert_lines: attributed.len(),
                    coincident,
                });
            }
        }
    }
    if out.benign_hours > 0.0 {
        out.false_alarms_upper_95 =
            crate::commands::eval_attack::poisson_upper(out.false_alarms, 0.95) / out.benign_hours;
    }
    out
}

/// JSON Lines (blank lines skipped), each error naming its file and line.
pub(crate) fn read_lines<T: serde::de::DeserializeOwned>(
    path: &std::path::Path,
) -> anyhow::Result<Vec<T>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
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
        "{:<28} {:>8} {:>12} {:>12} {:>11}",
        "scenario", "detected", "first alert", "alert lines", "coincident"
    );
    for s in &e.scenarios {
        println!(
            "{:<28} {:>8} {:>12} {:>12} {:>11}",
            s.name,
            if s.detected { "yes" } else { "no" },
            s.latency_s.map_or("-".into(), |l| format!("{l:.2} s")),
            s.alert_lines,
            s.coincident
        );
    }
    let detected = e.scenarios.iter().filter(|s| s.detected).count();
    println!(
        "detected {detected} of {} scenarios (attributed); false alarms {} over {:.3} host-hours of benign workload ({:.2} per host-hour, 95 % upper bound {:.2}); alerts naming an unknown process: {}",
        e.scenarios.len(),
        e.false_alarms,
        e.benign_hours,
        if e.benign_hours > 0.0 { e.false_alarms as f64 / e.benign_hours } else { 0.0 },
        e.false_alarms_upper_95,
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
                ..Default::default()
            },
            Phase {
                phase: "benign".into(),
                kind: PhaseKind::Benign,
                start_ns: 10 * s,
                end_ns: 46 * s,
                ..Default::default()
            },
            Phase {
                phase: "a".into(),
                kind: PhaseKind::Attack,
                start_ns: 50 * s,
                end_ns: 60 * s,
                ..Default::default()
            },
            Phase {
                phase: "b".into(),
                kind: PhaseKind::Attack,
                start_ns: 60 * s,
                end_ns: 70 * s,
                ..Default::default()
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
                alert_lines: 2,
                coincident: 0,
            }
        );
        assert!(!e.scenarios[1].detected);
        assert_eq!(e.unknown_process, 0);
        assert!((e.false_alarms_upper_95 - 474.4).abs() < 0.1);
    }

    /// With markers and users, only alerts about the attack's processes
    /// or accounts count; an administrator's alert in the window is
    /// coincident.
    #[test]
    fn scenarios_with_markers_count_only_their_own_alerts() {
        use crate::messages::{ProcessFields, ProcessInfo, TreeMember, UserFields};
        let s = 1_000_000_000u64;
        let phase = |name: &str, markers: &[&str], users: &[&str]| Phase {
            phase: name.into(),
            kind: PhaseKind::Attack,
            start_ns: 50 * s,
            end_ns: 60 * s,
            markers: markers.iter().map(|m| m.to_string()).collect(),
            users: users.iter().map(|m| m.to_string()).collect(),
        };
        let mut admin = alert("admin", 51 * s);
        admin.process = Some(ProcessFields {
            pid: 7,
            name: Some("df".into()),
            args: vec!["df".into(), "-h".into()],
            ..Default::default()
        });
        let mut shell = alert("shell", 52 * s);
        shell.tree = vec![TreeMember {
            process: ProcessInfo {
                pid: 9,
                name: "sh".into(),
                args: vec![
                    "sh".into(),
                    "-c".into(),
                    "echo pinging localhost; cat /etc/shadow".into(),
                ],
                ..Default::default()
            },
            findings: vec![],
        }];
        let mut login = alert("login", 53 * s);
        login.user = Some(UserFields {
            id: String::new(),
            name: Some("support".into()),
        });
        let lines = [admin, shell, login];
        let e = evaluate(&lines, &[phase("theft", &["cat /etc/shadow"], &[])]);
        let r = &e.scenarios[0];
        assert!(r.detected);
        assert_eq!((r.alert_lines, r.coincident), (1, 2));
        assert!((r.latency_s.unwrap() - 2.0).abs() < 1e-9);
        let e = evaluate(&lines, &[phase("ssh", &[], &["support"])]);
        assert_eq!(
            (e.scenarios[0].alert_lines, e.scenarios[0].coincident),
            (1, 2)
        );
        let e = evaluate(&lines, &[phase("none", &["nc -e"], &["mallory"])]);
        assert!(!e.scenarios[0].detected);
        assert_eq!(e.scenarios[0].coincident, 3);
    }
}
