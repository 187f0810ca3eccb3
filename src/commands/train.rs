//! `daisi train syscall`: learn a syscall model from normal traces only.
//!
//! Training data: `Training_Data_Master` when given ADFA-LD (zip or
//! directory), otherwise every trace file under the path. One trace in five
//! (by name order) is held out to calibrate the threshold at the target
//! false-positive rate; attack data is never read.

use crate::messages::SyscallAbi;
use crate::models::stide::{self, Stide};
use crate::models::{
    mean, threshold_at_fpr, trace_windows, DataFingerprint, ModelMeta, WindowScorer, ABI_TABLES,
};
use crate::syscalls::{self, Vocabulary};
use crate::traces::read_traces;
use anyhow::{bail, Context};
use clap::Args;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

#[derive(Args, Debug, Clone)]
pub struct TrainSyscallArgs {
    /// ADFA-LD (zip or directory) or a directory of recorded traces.
    #[arg(long)]
    pub data: PathBuf,
    /// Output model directory.
    #[arg(long, default_value = "models/syscall")]
    pub out: PathBuf,
    /// Window length in calls.
    #[arg(long, default_value_t = 6)]
    pub window: usize,
    /// ABI of the numbers in the trace files.
    #[arg(long, value_parser = parse_abi, default_value = "i386")]
    pub abi: SyscallAbi,
    /// Share of held-out normal traces the threshold may flag.
    #[arg(long, default_value_t = 0.01)]
    pub target_fpr: f64,
}

fn parse_abi(s: &str) -> Result<SyscallAbi, String> {
    match s {
        "i386" => Ok(SyscallAbi::I386),
        "x86_64" => Ok(SyscallAbi::X86_64),
        _ => Err(format!("unknown ABI {s:?} (i386 or x86_64)")),
    }
}

/// The normal training traces: ADFA-LD's training folder when present.
fn normal_filter(data: &std::path::Path) -> anyhow::Result<&'static str> {
    let adfa = read_traces(data, "Training_Data_Master/")
        .with_context(|| format!("reading {}", data.display()))?;
    Ok(if adfa.is_empty() {
        ""
    } else {
        "Training_Data_Master/"
    })
}

pub fn train_syscall(args: &TrainSyscallArgs) -> anyhow::Result<()> {
    if args.window == 0 || args.window > stide::MAX_WINDOW {
        bail!("--window must be between 1 and {}", stide::MAX_WINDOW);
    }
    let filter = normal_filter(&args.data)?;
    let traces = read_traces(&args.data, filter)?;
    if traces.len() < 5 {
        bail!(
            "{} normal trace(s) under {}: at least 5 are needed (one in five is held out to calibrate the threshold)",
            traces.len(),
            args.data.display()
        );
    }
    let bad: usize = traces.iter().map(|t| t.bad_tokens).sum();
    // Vocabulary: the canonical names that occur in training.
    let mut names = BTreeSet::new();
    let mut unknown = 0usize;
    for t in &traces {
        for &nr in &t.calls {
            match syscalls::name(args.abi, nr) {
                Some(n) => {
                    names.insert(n.to_string());
                }
                None => unknown += 1,
            }
        }
    }
    let vocab = Vocabulary::new(names.into_iter().collect());
    let tokens: Vec<Vec<u32>> = traces
        .iter()
        .map(|t| {
            t.calls
                .iter()
                .map(|&nr| vocab.token(args.abi, nr))
                .collect()
        })
        .collect();
    let (fit, held): (Vec<usize>, Vec<usize>) = (0..traces.len()).partition(|i| i % 5 != 4);
    tracing::info!(
        traces = traces.len(),
        fit = fit.len(),
        held_out = held.len(),
        vocabulary = vocab.len(),
        bad_tokens = bad,
        unknown_syscalls = unknown,
        "training STIDE"
    );
    let model = Stide::train(fit.iter().map(|&i| tokens[i].as_slice()), args.window);
    let mut scores = Vec::new();
    let held_scores: Vec<f64> = held
        .iter()
        .map(|&i| {
            scores.clear();
            model.score(
                &trace_windows(&tokens[i], args.window),
                args.window,
                &mut scores,
            );
            mean(&scores)
        })
        .collect();
    let threshold = threshold_at_fpr(&held_scores, args.target_fpr);
    let flagged = held_scores.iter().filter(|&&s| s > threshold).count();
    let heldout_fpr = flagged as f64 / held_scores.len().max(1) as f64;
    let meta = ModelMeta {
        kind: "stide".into(),
        name: "stide".into(),
        version: format!(
            "w{}-{}",
            args.window,
            &DataFingerprint::of("", &traces).hash[..8]
        ),
        window: args.window,
        vocabulary: vocab.names().to_vec(),
        abi_tables: ABI_TABLES.into(),
        threshold,
        aggregation: "mean".into(),
        target_fpr: args.target_fpr,
        trained_on: DataFingerprint::of(
            &format!(
                "{} ({})",
                args.data.display(),
                if filter.is_empty() { "all" } else { filter }
            ),
            &traces,
        ),
        metrics: BTreeMap::from([
            ("normal_windows".to_string(), model.len() as f64),
            ("heldout_fpr".to_string(), heldout_fpr),
        ]),
    };
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    model.save(&args.out).context("writing the model weights")?;
    let json = serde_json::to_string_pretty(&meta)?;
    std::fs::write(args.out.join("model.json"), json + "\n").context("writing model.json")?;
    println!(
        "trained stide (window {}) on {} traces: {} normal windows; threshold {:.4} flags {:.2}% of {} held-out normal traces; written to {}",
        args.window,
        fit.len(),
        model.len(),
        threshold,
        heldout_fpr * 100.0,
        held.len(),
        args.out.display()
    );
    Ok(())
}
