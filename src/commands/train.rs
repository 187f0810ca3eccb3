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
use crate::traces::{read_traces, Trace};
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
    /// Window length in calls [default: 9 for lm and ae, 6 for stide].
    #[arg(long)]
    pub window: Option<usize>,
    /// ABI of the numbers in the trace files.
    #[arg(long, value_parser = parse_abi, default_value = "i386")]
    pub abi: SyscallAbi,
    /// Share of held-out normal traces the threshold may flag.
    #[arg(long, default_value_t = 0.01)]
    pub target_fpr: f64,
    /// Model kind: `lm` (next-call model) and `ae` (windowed autoencoder)
    /// need libtorch; `stide` (known windows) does not. Default: `lm` when
    /// this build has libtorch, else `stide`.
    #[arg(long, value_enum, default_value_t = Method::for_this_build())]
    pub method: Method,
    /// lm/ae: most training epochs (early stopping on held-out normal windows).
    #[arg(long, default_value_t = 12)]
    pub epochs: usize,
    /// lm/ae: embedding width.
    #[arg(long, default_value_t = 32)]
    pub embed: i64,
    /// lm/ae: hidden width.
    #[arg(long, default_value_t = 256)]
    pub hidden: i64,
    /// ae: bottleneck width.
    #[arg(long, default_value_t = 16)]
    pub code: i64,
    /// lm/ae: random seed.
    #[arg(long, default_value_t = 7)]
    pub seed: i64,
}

/// What `daisi train syscall` builds.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Next-call model (tch): each window's last call given the ones before.
    Lm,
    /// Windowed autoencoder (tch).
    Ae,
    /// Sequence time-delay embedding: the set of normal windows.
    Stide,
}

impl Method {
    /// `lm` when the build has libtorch: on a host's own recording it learns
    /// how likely each call is, where `stide`'s threshold calibrates to 0
    /// (every held-out window was seen) and any unseen window alerts.
    pub fn for_this_build() -> Method {
        if cfg!(feature = "torch") {
            Method::Lm
        } else {
            Method::Stide
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Method::Lm => "lm",
            Method::Ae => "ae",
            Method::Stide => "stide",
        }
    }

    fn default_window(self) -> usize {
        match self {
            Method::Lm | Method::Ae => 9,
            Method::Stide => 6,
        }
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

fn parse_abi(s: &str) -> Result<SyscallAbi, String> {
    match s {
        "i386" => Ok(SyscallAbi::I386),
        "x86_64" => Ok(SyscallAbi::X86_64),
        _ => Err(format!("unknown ABI {s:?} (i386 or x86_64)")),
    }
}

/// The normal training traces and the filter that selected them:
/// ADFA-LD's training folder when the data has one, else every trace file.
fn normal_traces(data: &std::path::Path) -> anyhow::Result<(&'static str, Vec<Trace>)> {
    let adfa = read_traces(data, "Training_Data_Master/")
        .with_context(|| format!("reading {}", data.display()))?;
    if !adfa.is_empty() {
        return Ok(("Training_Data_Master/", adfa));
    }
    Ok(("", read_traces(data, "")?))
}

#[cfg(feature = "torch")]
const NEURAL_MAX_WINDOW: usize = crate::models::neural::MAX_WINDOW;
#[cfg(not(feature = "torch"))]
const NEURAL_MAX_WINDOW: usize = 0;

pub fn train_syscall(args: &TrainSyscallArgs) -> anyhow::Result<()> {
    let max_window = if args.method == Method::Stide {
        stide::MAX_WINDOW
    } else {
        NEURAL_MAX_WINDOW
    };
    let window = args.window.unwrap_or(args.method.default_window());
    if args.method != Method::Stide && !cfg!(feature = "torch") {
        bail!(
            "--method {} needs libtorch; this build has no torch feature",
            args.method
        );
    }
    if window < 2 || window > max_window {
        bail!(
            "--window must be between 2 and {max_window} for {}",
            args.method
        );
    }
    let (filter, traces) = normal_traces(&args.data)?;
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
        method = %args.method,
        "training"
    );
    let mut metrics = BTreeMap::new();
    let model: Box<dyn WindowScorer> = match args.method {
        Method::Stide => {
            let m = Stide::train(fit.iter().map(|&i| tokens[i].as_slice()), window);
            metrics.insert("normal_windows".to_string(), m.len() as f64);
            std::fs::create_dir_all(&args.out)
                .with_context(|| format!("creating {}", args.out.display()))?;
            m.save(&args.out).context("writing the model weights")?;
            Box::new(m)
        }
        #[cfg(feature = "torch")]
        Method::Lm | Method::Ae => train_neural(
            args,
            window,
            &tokens,
            &fit,
            &held,
            vocab.len() as i64,
            &mut metrics,
        )?,
        #[cfg(not(feature = "torch"))]
        _ => unreachable!("checked above"),
    };
    let mut scores = Vec::new();
    let held_scores: Vec<f64> = held
        .iter()
        .map(|&i| {
            scores.clear();
            model.score(&trace_windows(&tokens[i], window), window, &mut scores);
            mean(&scores)
        })
        .collect();
    let threshold = threshold_at_fpr(&held_scores, args.target_fpr);
    let flagged = held_scores.iter().filter(|&&s| s > threshold).count();
    let heldout_fpr = flagged as f64 / held_scores.len().max(1) as f64;
    metrics.insert("heldout_fpr".to_string(), heldout_fpr);
    if threshold <= 0.0 {
        tracing::warn!(
            method = %args.method,
            "threshold calibrated to 0: every held-out window was seen in training, so any unseen window will alert; record more normal behaviour or use --method lm"
        );
    }
    let meta = ModelMeta {
        kind: args.method.name().into(),
        name: args.method.name().into(),
        version: format!(
            "w{}-{}",
            window,
            &DataFingerprint::of("", &traces).hash[..8]
        ),
        window,
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
        metrics,
    };
    let json = serde_json::to_string_pretty(&meta)?;
    std::fs::write(args.out.join("model.json"), json + "\n").context("writing model.json")?;
    println!(
        "trained {} (window {}) on {} traces; threshold {:.4} flags {:.2}% of {} held-out normal traces; written to {}",
        args.method,
        window,
        fit.len(),
        threshold,
        heldout_fpr * 100.0,
        held.len(),
        args.out.display()
    );
    Ok(())
}

/// Trains a tch model (`lm` or `ae`) with a progress bar and early stopping
/// on the held-out normal traces' windows.
#[cfg(feature = "torch")]
fn train_neural(
    args: &TrainSyscallArgs,
    window: usize,
    tokens: &[Vec<u32>],
    fit: &[usize],
    held: &[usize],
    vocab: i64,
    metrics: &mut BTreeMap<String, f64>,
) -> anyhow::Result<Box<dyn WindowScorer>> {
    use crate::models::neural::{self, Arch, NeuralKind, TrainSettings};
    tch::set_num_threads(std::thread::available_parallelism().map_or(2, |n| n.get() as i32));
    let kind = if args.method == Method::Lm {
        NeuralKind::Lm
    } else {
        NeuralKind::Ae
    };
    let arch = Arch {
        kind,
        vocab,
        window: window as i64,
        embed: args.embed,
        hidden: args.hidden,
        code: args.code,
    };
    let windows = |ids: &[usize]| -> Vec<u32> {
        ids.iter()
            .flat_map(|&i| trace_windows(&tokens[i], window))
            .collect()
    };
    let (fit_w, held_w) = (windows(fit), windows(held));
    let settings = TrainSettings {
        epochs: args.epochs,
        batch: 512,
        lr: 1e-3,
        seed: args.seed,
        patience: 2,
    };
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "epoch {prefix} [{bar:30}] {pos}/{len} batches {msg}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    let (model, best) = neural::train(
        arch,
        &fit_w,
        &held_w,
        &settings,
        |epoch, fit_loss, held_loss, done, total| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
            bar.set_prefix(format!("{}/{}", epoch + 1, settings.epochs));
            if held_loss.is_finite() {
                tracing::info!(
                    epoch = epoch + 1,
                    training_loss = fit_loss,
                    heldout_loss = held_loss,
                    "epoch done"
                );
            }
        },
    )?;
    bar.finish_and_clear();
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    model.save(&args.out)?;
    for (k, v) in [
        ("arch_embed", arch.embed),
        ("arch_hidden", arch.hidden),
        ("arch_code", arch.code),
    ] {
        metrics.insert(k.to_string(), v as f64);
    }
    metrics.insert("heldout_window_loss".to_string(), best);
    Ok(Box::new(model))
}
