//! `daisi baseline show` and `daisi baseline accept`: what host profiles
//! allow each program, and folding a false alarm into them.
//!
//! Accepted behaviours go to `accepted.json` beside the profiles (never
//! into a profile a running node writes); a node picks the file up within
//! seconds. The file is plain JSON, `{"<host or *>": {"<program>":
//! [behaviours]}}`, so configuration management can write it too.

use crate::baseline::{Accepted, Profile};
use crate::commands::alerts::AlertsSource;
use anyhow::Context;
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug, Clone)]
pub struct ShowArgs {
    /// Configuration naming `[baseline] dir`.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Only this host (default: every profile in the directory).
    #[arg(long)]
    pub host: Option<String>,
    /// Only programs whose path contains this text.
    #[arg(long)]
    pub program: Option<String>,
}

#[derive(Args, Debug, Clone)]
pub struct AcceptArgs {
    /// The alert (a baseline finding, or an incident with baseline
    /// findings: all of them are accepted).
    pub alert_id: String,
    #[command(flatten)]
    pub source: AlertsSource,
    /// Accept for every host, not only the alert's.
    #[arg(long)]
    pub all_hosts: bool,
}

fn dir_of(config: Option<&std::path::Path>) -> anyhow::Result<PathBuf> {
    let cfg = crate::config::Config::load(config, None).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(cfg.baseline.dir)
}

/// `daisi baseline show`.
pub fn show(args: &ShowArgs) -> anyhow::Result<()> {
    let dir = dir_of(args.config.as_deref())?;
    let accepted = Accepted::load(&Accepted::path(&dir))?;
    let mut paths: Vec<PathBuf> = match &args.host {
        Some(h) => vec![crate::baseline::profile_path(&dir, h)],
        None => std::fs::read_dir(&dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension().is_some_and(|x| x == "json")
                    && p.file_name().is_some_and(|n| n != "accepted.json")
            })
            .collect(),
    };
    paths.sort();
    if paths.is_empty() {
        println!("no profiles in {}", dir.display());
    }
    let now = crate::actors::runtime::now_ns();
    for path in paths {
        let p = Profile::load(&path)?;
        let state = if p.learning(now) {
            let left = std::time::Duration::from_nanos(p.learning_until_ns - now);
            format!(
                "learning, {} left",
                humantime::format_duration(std::time::Duration::from_secs(left.as_secs()))
            )
        } else {
            "detecting".to_string()
        };
        println!(
            "host {} ({state}; {} programs, {} observations)",
            crate::actors::alert::sinks::console::printable(&p.host),
            p.programs.len(),
            p.observations
        );
        let extra = accepted.for_host(&p.host);
        let programs: std::collections::BTreeSet<&String> =
            p.programs.keys().chain(extra.keys()).collect();
        for program in programs {
            if args
                .program
                .as_ref()
                .is_some_and(|f| !program.contains(f.as_str()))
            {
                continue;
            }
            println!(
                "  {}",
                crate::actors::alert::sinks::console::printable(program)
            );
            if let Some(m) = p.sequences.get(program).and_then(|s| s.lm.as_ref()) {
                println!(
                    "    call sequences: judged by its model ({} calls, trained on {} windows, held-out loss {:.3} nats, a window is a miss above {:.3})",
                    m.vocab.len(),
                    m.trained,
                    m.held_loss,
                    m.threshold
                );
            } else if let Some(s) = p.sequences.get(program) {
                println!(
                    "    call sequences: {} distinct windows from {} learnt ({})",
                    s.ngrams.len(),
                    s.windows,
                    if s.settled() {
                        "settled: judged"
                    } else {
                        "unsettled: not judged"
                    }
                );
            }
            for b in p.programs.get(program).into_iter().flatten() {
                println!(
                    "    {}",
                    crate::actors::alert::sinks::console::printable(&b.to_string())
                );
            }
            for b in extra.get(program).into_iter().flatten() {
                println!(
                    "    {} (accepted)",
                    crate::actors::alert::sinks::console::printable(&b.to_string())
                );
            }
        }
    }
    Ok(())
}

/// `daisi baseline accept <alert-id>`: the count of behaviours added.
pub fn accept(args: &AcceptArgs) -> anyhow::Result<usize> {
    let alerts = crate::commands::alerts::read_all(&args.source)?;
    let alert = alerts
        .iter()
        .find(|a| a.id == args.alert_id)
        .with_context(|| format!("no alert {} in the alerts read", args.alert_id))?;
    anyhow::ensure!(
        !crate::baseline::findings_of(alert).is_empty(),
        "alert {} holds no baseline finding or Sigma match (module {}); only those can be accepted",
        alert.id,
        alert.module
    );
    let config = args.source.config.as_deref();
    let dir = dir_of(config)?;
    let host = if args.all_hosts {
        "*"
    } else {
        alert.host.as_str()
    };
    let mut added = 0;
    for (shown, new) in Accepted::accept_alert(&dir, host, alert)? {
        if new {
            added += 1;
            println!(
                "accepted for {host}: {}",
                crate::actors::alert::sinks::console::printable(&shown)
            );
        } else {
            println!(
                "already accepted for {host}: {}",
                crate::actors::alert::sinks::console::printable(&shown)
            );
        }
    }
    Ok(added)
}
