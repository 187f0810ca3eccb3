//! Trained models and their files.
//!
//! A model directory (`models/syscall/`) holds `model.json` (metadata:
//! kind, window, vocabulary, threshold, training-data fingerprint, metrics)
//! and the kind's weights file. [`load_syscall_model`] checks everything and
//! returns a scorer; a broken or missing model is a start-up error, not a
//! crash later.

pub mod network;
#[cfg(feature = "torch")]
pub mod neural;
pub mod stide;

use crate::syscalls::Vocabulary;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Scores token windows: higher = more anomalous, in `[0, 1]`.
pub trait WindowScorer: Send {
    /// Appends one score per window of `tokens` (`window` tokens each).
    fn score(&self, tokens: &[u32], window: usize, out: &mut Vec<f32>);
}

/// Contents of `model.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelMeta {
    /// Model kind (`stide`, ...); selects the weights format.
    pub kind: String,
    /// Human-readable name and version, copied into alerts.
    pub name: String,
    pub version: String,
    /// Window length in calls.
    pub window: usize,
    /// Canonical syscall names; token i+1 = vocabulary[i], 0 = unknown.
    pub vocabulary: Vec<String>,
    /// Version of the syscall tables the vocabulary was mapped with.
    pub abi_tables: String,
    /// Trace-level decision: a process whose aggregated score exceeds this
    /// is anomalous.
    pub threshold: f64,
    /// How window scores become a process score (`mean`).
    pub aggregation: String,
    /// False-positive rate on held-out normal traces the threshold targets.
    pub target_fpr: f64,
    /// What the model was trained on.
    pub trained_on: DataFingerprint,
    /// Figures measured at training time.
    #[serde(default)]
    pub metrics: BTreeMap<String, f64>,
}

/// Identifies training data: where, how much, and a content hash.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct DataFingerprint {
    pub source: String,
    pub traces: usize,
    pub calls: usize,
    /// FNV-1a over every trace's name and calls, hex.
    pub hash: String,
}

impl DataFingerprint {
    pub fn of(source: &str, traces: &[crate::traces::Trace]) -> Self {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut mix = |b: u8| {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        };
        let mut calls = 0;
        for t in traces {
            t.name.bytes().for_each(&mut mix);
            for c in &t.calls {
                c.to_le_bytes().into_iter().for_each(&mut mix);
            }
            calls += t.calls.len();
        }
        Self {
            source: source.to_string(),
            traces: traces.len(),
            calls,
            hash: format!("{h:016x}"),
        }
    }
}

/// Tables version recorded in model files.
pub const ABI_TABLES: &str = "syscalls-crate-0.8";

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("cannot read model file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("model file {path} is invalid: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error("model kind {0:?} is not supported by this build")]
    Kind(String),
    #[error(transparent)]
    NotInstalled(#[from] crate::install::NotInstalled),
}

/// A loaded syscall model.
pub struct SyscallModel {
    pub meta: ModelMeta,
    pub vocab: Arc<Vocabulary>,
    pub scorer: Box<dyn WindowScorer>,
}

pub(crate) fn read(path: &Path) -> Result<Vec<u8>, ModelError> {
    std::fs::read(path).map_err(|source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Loads `dir/model.json` and its weights.
pub fn load_syscall_model(dir: &Path) -> Result<SyscallModel, ModelError> {
    let meta_path = dir.join("model.json");
    let meta: ModelMeta =
        serde_json::from_slice(&read(&meta_path)?).map_err(|e| ModelError::Invalid {
            path: meta_path.clone(),
            reason: e.to_string(),
        })?;
    if meta.window == 0 || !(meta.threshold.is_finite()) {
        return Err(ModelError::Invalid {
            path: meta_path,
            reason: "window must be ≥ 1 and threshold finite".into(),
        });
    }
    let vocab = Arc::new(Vocabulary::new(meta.vocabulary.clone()));
    let scorer: Box<dyn WindowScorer> = match meta.kind.as_str() {
        "stide" => Box::new(stide::Stide::load(dir, &meta)?),
        #[cfg(feature = "torch")]
        "lm" => Box::new(neural::Neural::load(dir, &meta, neural::NeuralKind::Lm)?),
        #[cfg(feature = "torch")]
        "ae" => Box::new(neural::Neural::load(dir, &meta, neural::NeuralKind::Ae)?),
        other => return Err(ModelError::Kind(other.to_string())),
    };
    Ok(SyscallModel {
        meta,
        vocab,
        scorer,
    })
}

/// The windows of a whole trace, exactly as the live pipeline forms them
/// (`actors::syscall_buffer::windows_of`): one ending at each call from the
/// `window`-th on; a shorter trace gives one window padded at the front with
/// the unknown token.
pub fn trace_windows(tokens: &[u32], window: usize) -> Vec<u32> {
    if tokens.is_empty() {
        return Vec::new();
    }
    if tokens.len() < window {
        let mut w = vec![crate::syscalls::OOV; window - tokens.len()];
        w.extend_from_slice(tokens);
        return w;
    }
    let mut out = Vec::with_capacity((tokens.len() - window + 1) * window);
    for w in tokens.windows(window) {
        out.extend_from_slice(w);
    }
    out
}

/// Mean of window scores: the trace-level aggregation.
pub fn mean(scores: &[f32]) -> f64 {
    if scores.is_empty() {
        0.0
    } else {
        scores.iter().map(|&s| s as f64).sum::<f64>() / scores.len() as f64
    }
}

/// The threshold that flags at most `fpr` of `normal_scores` (strictly
/// greater than the threshold is anomalous).
pub fn threshold_at_fpr(normal_scores: &[f64], fpr: f64) -> f64 {
    let mut s: Vec<f64> = normal_scores.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    if s.is_empty() {
        return 0.0;
    }
    let allowed = (fpr * s.len() as f64).floor() as usize;
    // Everything at or below s[k] passes; k leaves `allowed` scores above.
    let k = s.len() - 1 - allowed.min(s.len() - 1);
    s[k]
}

/// ROC AUC by the rank statistic (ties count half).
pub fn roc_auc(normal: &[f64], attack: &[f64]) -> f64 {
    if normal.is_empty() || attack.is_empty() {
        return f64::NAN;
    }
    let mut all: Vec<(f64, bool)> = normal
        .iter()
        .map(|&s| (s, false))
        .chain(attack.iter().map(|&s| (s, true)))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Average ranks for ties.
    let mut rank_sum_attack = 0.0;
    let mut i = 0;
    while i < all.len() {
        let mut j = i;
        while j + 1 < all.len() && all[j + 1].0 == all[i].0 {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        rank_sum_attack += all[i..=j].iter().filter(|x| x.1).count() as f64 * avg;
        i = j + 1;
    }
    let (n, a) = (normal.len() as f64, attack.len() as f64);
    (rank_sum_attack - a * (a + 1.0) / 2.0) / (n * a)
}

/// Share of attacks detected with a threshold that flags at most `fpr` of
/// the normal traces (strictly above the threshold).
pub fn detection_at_fpr(normal: &[f64], attack: &[f64], fpr: f64) -> f64 {
    let t = threshold_at_fpr(normal, fpr);
    attack.iter().filter(|&&s| s > t).count() as f64 / attack.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threshold_respects_fpr() {
        let s: Vec<f64> = (0..100).map(|i| i as f64).collect();
        let t = threshold_at_fpr(&s, 0.05);
        let flagged = s.iter().filter(|&&x| x > t).count();
        assert_eq!(flagged, 5);
        assert_eq!(threshold_at_fpr(&s, 0.0), 99.0);
    }
}
