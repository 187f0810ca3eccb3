//! `daisi eval syscall`: the ADFA-LD standard protocol.
//!
//! Normal = every trace of `Validation_Data_Master`, attack = every trace of
//! `Attack_Data_Master`, one score per trace (the same window-to-trace
//! aggregation as the live alert actor). Reports, for the model and for a
//! STIDE baseline (n = 7) trained by the same command on
//! `Training_Data_Master`: ROC AUC and detection rate at 1 %, 5 %, 10 %
//! false-positive rate, overall and per attack family, plus windows/s.

use crate::actors::syscall::buffer::SyscallBufferConfig;
use crate::messages::SyscallAbi;
use crate::models::stide::Stide;
use crate::models::{
    detection_at_fpr, load_syscall_model, mean, roc_auc, trace_windows, WindowScorer,
};
use crate::syscalls::Vocabulary;
use crate::traces::{read_traces, Trace};
use anyhow::{bail, Context};
use clap::Args;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Args, Debug, Clone)]
pub struct EvalSyscallArgs {
    /// ADFA-LD (zip or directory).
    #[arg(long)]
    pub data: PathBuf,
    /// Model directory [default: the shipped model, models/syscall where
    /// daisi is installed].
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Write the figures as JSON here.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Draw both ROC curves into this PNG file.
    #[arg(long)]
    pub plot: Option<PathBuf>,
}

/// Figures of one detector.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Figures {
    pub auc: f64,
    pub dr_at_1pct: f64,
    pub dr_at_5pct: f64,
    pub dr_at_10pct: f64,
    /// Detection rate of each attack family at 5 % FPR, and its AUC.
    pub families: BTreeMap<String, FamilyFigures>,
    /// Normal traces above the model's own threshold (its deployed FPR).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fpr_at_threshold: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dr_at_threshold: Option<f64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FamilyFigures {
    pub traces: usize,
    pub auc: f64,
    pub dr_at_5pct: f64,
}

/// Points of a ROC curve: (false-positive rate, detection rate), from the
/// strictest threshold to the loosest.
pub fn roc_curve(normal: &[f64], attack: &[f64]) -> Vec<(f64, f64)> {
    let mut all: Vec<(f64, bool)> = normal
        .iter()
        .map(|&s| (s, false))
        .chain(attack.iter().map(|&s| (s, true)))
        .collect();
    all.sort_by(|a, b| b.0.total_cmp(&a.0));
    let (n, a) = (normal.len().max(1) as f64, attack.len().max(1) as f64);
    let (mut fp, mut tp) = (0.0, 0.0);
    let mut points = vec![(0.0, 0.0)];
    let mut i = 0;
    while i < all.len() {
        let s = all[i].0;
        while i < all.len() && all[i].0 == s {
            if all[i].1 {
                tp += 1.0;
            } else {
                fp += 1.0;
            }
            i += 1;
        }
        points.push((fp / n, tp / a));
    }
    points
}

/// DejaVu Sans from Debian's fonts-dejavu-core (installed by setup.sh).
const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

type Curve<'a> = (&'a str, f64, Vec<(f64, f64)>);

fn plot_roc(path: &std::path::Path, curves: &[Curve]) -> anyhow::Result<()> {
    use plotters::prelude::*;
    let font = std::fs::read(FONT)
        .with_context(|| format!("reading the font {FONT} (install fonts-dejavu-core)"))?;
    // plotters keeps registered fonts for the life of the process.
    plotters::style::register_font(
        "sans-serif",
        FontStyle::Normal,
        Box::leak(font.into_boxed_slice()),
    )
    .map_err(|_| anyhow::anyhow!("{FONT} is not a usable font"))?;
    let root = BitMapBackend::new(path, (720, 640)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption("ADFA-LD: trace-level ROC", ("sans-serif", 24))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..1.0, 0.0..1.0)?;
    chart
        .configure_mesh()
        .x_desc("false-positive rate (normal traces)")
        .y_desc("detection rate (attack traces)")
        .draw()?;
    for ((name, auc, pts), colour) in curves.iter().zip([RED, BLUE, GREEN]) {
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), colour.stroke_width(2)))?
            .label(format!("{name} (AUC {auc:.3})"))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
            });
    }
    chart
        .draw_series(LineSeries::new([(0.0, 0.0), (1.0, 1.0)], BLACK.mix(0.3)))?
        .label("chance")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.mix(0.3)));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub normal_traces: usize,
    pub attack_traces: usize,
    pub model: Figures,
    pub stide: Figures,
    pub windows_per_s: f64,
}

fn figures(normal: &[f64], attacks: &[(String, f64)], threshold: Option<f64>) -> Figures {
    let all: Vec<f64> = attacks.iter().map(|a| a.1).collect();
    let mut fam: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for (f, s) in attacks {
        fam.entry(f.clone()).or_default().push(*s);
    }
    Figures {
        auc: roc_auc(normal, &all),
        dr_at_1pct: detection_at_fpr(normal, &all, 0.01),
        dr_at_5pct: detection_at_fpr(normal, &all, 0.05),
        dr_at_10pct: detection_at_fpr(normal, &all, 0.10),
        families: fam
            .into_iter()
            .map(|(f, s)| {
                let ff = FamilyFigures {
                    traces: s.len(),
                    auc: roc_auc(normal, &s),
                    dr_at_5pct: detection_at_fpr(normal, &s, 0.05),
                };
                (f, ff)
            })
            .collect(),
        fpr_at_threshold: threshold
            .map(|t| normal.iter().filter(|&&s| s > t).count() as f64 / normal.len().max(1) as f64),
        dr_at_threshold: threshold
            .map(|t| all.iter().filter(|&&s| s > t).count() as f64 / all.len().max(1) as f64),
    }
}

/// Trace scores of a scorer: mean window score per trace. Windows go to the
/// scorer in batches that span traces, of the size the live buffer actor
/// hands the classifier by default (`[syscall_buffer] max_batch`).
fn scores(
    scorer: &dyn WindowScorer,
    vocab: &Vocabulary,
    window: usize,
    traces: &[Trace],
) -> (Vec<f64>, usize) {
    let mut all: Vec<f32> = Vec::new();
    let mut counts: Vec<usize> = Vec::with_capacity(traces.len());
    let batch = SyscallBufferConfig::default().max_batch * window;
    let mut pending: Vec<u32> = Vec::new();
    let flush = |pending: &mut Vec<u32>, all: &mut Vec<f32>| {
        for chunk in pending.chunks(batch) {
            scorer.score(chunk, window, all);
        }
        pending.clear();
    };
    for t in traces {
        let tokens: Vec<u32> = t
            .calls
            .iter()
            .map(|&nr| vocab.token(SyscallAbi::I386, nr))
            .collect();
        let w = trace_windows(&tokens, window);
        counts.push(w.len() / window);
        pending.extend_from_slice(&w);
        if pending.len() >= batch {
            flush(&mut pending, &mut all);
        }
    }
    flush(&mut pending, &mut all);
    let mut at = 0;
    let s = counts
        .iter()
        .map(|&n| {
            let m = mean(&all[at..at + n]);
            at += n;
            m
        })
        .collect();
    (s, all.len())
}

pub fn evaluate(args: &EvalSyscallArgs) -> anyhow::Result<Report> {
    let dir = match &args.model {
        Some(m) => m.clone(),
        None => crate::install::syscall_model()?,
    };
    let model = load_syscall_model(&dir).with_context(|| format!("loading {}", dir.display()))?;
    // One pass over the archive, split by folder.
    let (mut normal, mut attack, mut train) = (Vec::new(), Vec::new(), Vec::new());
    for t in read_traces(&args.data, "_Data_Master/")? {
        if t.name.contains("Validation_Data_Master/") {
            normal.push(t);
        } else if t.name.contains("Attack_Data_Master/") {
            attack.push(t);
        } else if t.name.contains("Training_Data_Master/") {
            train.push(t);
        }
    }
    if normal.is_empty() || attack.is_empty() || train.is_empty() {
        bail!("{} does not look like ADFA-LD (needs Training_Data_Master, Validation_Data_Master, Attack_Data_Master)", args.data.display());
    }
    let families: Vec<String> = attack
        .iter()
        .map(|t| t.family().unwrap_or("?").to_string())
        .collect();

    let started = Instant::now();
    let (model_normal, w1) = scores(
        model.scorer.as_ref(),
        &model.vocab,
        model.meta.window,
        &normal,
    );
    let (model_attack, w2) = scores(
        model.scorer.as_ref(),
        &model.vocab,
        model.meta.window,
        &attack,
    );
    let windows_per_s = (w1 + w2) as f64 / started.elapsed().as_secs_f64();

    // STIDE baseline, n = 7, on the whole training folder, all names known.
    let vocab = Vocabulary::all();
    let n = 7;
    let train_tokens: Vec<Vec<u32>> = train
        .iter()
        .map(|t| {
            t.calls
                .iter()
                .map(|&nr| vocab.token(SyscallAbi::I386, nr))
                .collect()
        })
        .collect();
    let stide = Stide::train(train_tokens.iter().map(Vec::as_slice), n);
    let (stide_normal, _) = scores(&stide, &vocab, n, &normal);
    let (stide_attack, _) = scores(&stide, &vocab, n, &attack);

    if let Some(p) = &args.plot {
        let curves = [
            (
                model.meta.name.as_str(),
                roc_auc(&model_normal, &model_attack),
                roc_curve(&model_normal, &model_attack),
            ),
            (
                "stide-7",
                roc_auc(&stide_normal, &stide_attack),
                roc_curve(&stide_normal, &stide_attack),
            ),
        ];
        plot_roc(p, &curves).with_context(|| format!("drawing {}", p.display()))?;
    }
    let tag = |s: Vec<f64>| families.iter().cloned().zip(s).collect::<Vec<_>>();
    Ok(Report {
        normal_traces: normal.len(),
        attack_traces: attack.len(),
        model: figures(
            &model_normal,
            &tag(model_attack),
            Some(model.meta.threshold),
        ),
        stide: figures(&stide_normal, &tag(stide_attack), None),
        windows_per_s,
    })
}

fn print_figures(name: &str, f: &Figures) {
    println!(
        "{name:<8} AUC {:.3}   DR@1%FPR {:.3}   DR@5%FPR {:.3}   DR@10%FPR {:.3}",
        f.auc, f.dr_at_1pct, f.dr_at_5pct, f.dr_at_10pct
    );
    if let (Some(fpr), Some(dr)) = (f.fpr_at_threshold, f.dr_at_threshold) {
        println!("         at the model's own threshold: FPR {fpr:.3}, DR {dr:.3}");
    }
    for (fam, ff) in &f.families {
        println!(
            "         {fam:<18} {:>4} traces  AUC {:.3}  DR@5%FPR {:.3}",
            ff.traces, ff.auc, ff.dr_at_5pct
        );
    }
}

pub fn eval_syscall(args: &EvalSyscallArgs) -> anyhow::Result<()> {
    let r = evaluate(args)?;
    println!(
        "ADFA-LD: {} normal (Validation_Data_Master), {} attack traces",
        r.normal_traces, r.attack_traces
    );
    print_figures("model", &r.model);
    print_figures("stide-7", &r.stide);
    println!("model scoring: {:.0} windows/s", r.windows_per_s);
    if let Some(p) = &args.report {
        std::fs::write(p, serde_json::to_string_pretty(&r)? + "\n")
            .with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_of_known_cases() {
        assert_eq!(roc_auc(&[0.0, 0.1], &[0.5, 0.6]), 1.0);
        assert_eq!(roc_auc(&[0.5, 0.6], &[0.0, 0.1]), 0.0);
        assert_eq!(roc_auc(&[0.5, 0.5], &[0.5, 0.5]), 0.5);
        // Attack-above-normal pairs: 0.9 beats 4, 0.5 beats 3, 0.3 beats 1: 8 of 12.
        assert!((roc_auc(&[0.1, 0.4, 0.35, 0.8], &[0.9, 0.5, 0.3]) - 8.0 / 12.0).abs() < 1e-9);
    }

    #[test]
    fn roc_curve_ends_at_one_and_matches_auc() {
        let (n, a) = ([0.1, 0.4, 0.35, 0.8], [0.9, 0.5, 0.3]);
        let pts = roc_curve(&n, &a);
        assert_eq!(pts.first(), Some(&(0.0, 0.0)));
        assert_eq!(pts.last(), Some(&(1.0, 1.0)));
        // The trapezoid area under the curve is the rank AUC.
        let area: f64 = pts
            .windows(2)
            .map(|w| (w[1].0 - w[0].0) * (w[1].1 + w[0].1) / 2.0)
            .sum();
        assert!((area - roc_auc(&n, &a)).abs() < 1e-9);
    }

    #[test]
    fn detection_rate_at_fpr() {
        let normal: Vec<f64> = (0..100).map(|i| i as f64 / 100.0).collect();
        assert_eq!(
            detection_at_fpr(&normal, &[0.955, 0.5, 2.0], 0.05),
            2.0 / 3.0
        );
    }
}
