//! `daisi rules check PATH…`: which Sigma rules a node would judge, and
//! why the others are not (per category and field).

use crate::rules::RuleSet;
use clap::Args;
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Args, Debug, Clone)]
pub struct CheckArgs {
    /// Rule files or directories.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Rules below this level are not judged (as `[rules] min_level`).
    #[arg(long, value_enum, default_value_t = crate::rules::sigma::Level::Medium)]
    pub min_level: crate::rules::sigma::Level,
    /// Also list every rule not judged, with its reason.
    #[arg(long)]
    pub verbose: bool,
}

/// Prints the loaded rules per category and the rest grouped by log
/// source and reason.
pub fn check(args: &CheckArgs) -> anyhow::Result<()> {
    let (rules, unsupported) = RuleSet::load(&args.paths, args.min_level)?;
    println!("loaded: {} rule(s)", rules.len());
    for (c, n) in rules.counts() {
        println!("  {:<20} {n}", c.name());
    }
    println!("not judged: {} rule(s)", unsupported.len());
    let mut by: BTreeMap<(String, String), usize> = BTreeMap::new();
    for u in &unsupported {
        let reason = match &u.reason {
            crate::rules::sigma::Reason::Fields(f) => {
                format!("fields not filled: {}", f.join(", "))
            }
            crate::rules::sigma::Reason::Disabled => "disabled".to_string(),
            crate::rules::sigma::Reason::Level(_, min) => {
                format!("level below {}", min.name())
            }
            r => r.to_string(),
        };
        *by.entry((u.logsource.clone(), reason)).or_default() += 1;
    }
    for ((logsource, reason), n) in &by {
        println!("  {n:>4}  {logsource:<34} {reason}");
    }
    if args.verbose {
        for u in &unsupported {
            println!("  {}: {} ({})", u.path.display(), u.title, u.reason);
        }
    }
    Ok(())
}
