//! STIDE (Forrest et al.): a window is anomalous when its exact call
//! sequence never occurred in normal training data. The trace score is the
//! fraction of such windows. The classic baseline on ADFA-LD, and a model
//! that needs no libtorch.

use super::{read, ModelError, ModelMeta, WindowScorer};
use std::collections::HashSet;
use std::path::Path;

/// Weights file name inside the model directory.
pub const FILE: &str = "stide.msgpack";

/// Bits per token when packing a window into a u64.
const BITS: u32 = 9;
/// Longest window that packs exactly.
pub const MAX_WINDOW: usize = (64 / BITS) as usize;

/// Set of normal windows.
pub struct Stide {
    grams: HashSet<u64>,
}

/// Packs a window of tokens (< 2^9 each) into one u64, exactly.
#[inline]
pub fn pack(w: &[u32]) -> u64 {
    w.iter()
        .fold(0u64, |h, &t| (h << BITS) | (t as u64 & ((1 << BITS) - 1)))
}

impl Stide {
    /// Learns the normal windows of token sequences.
    pub fn train<'a>(seqs: impl IntoIterator<Item = &'a [u32]>, window: usize) -> Self {
        let mut grams = HashSet::new();
        for s in seqs {
            if s.len() >= window {
                grams.extend(s.windows(window).map(pack));
            }
        }
        Self { grams }
    }

    pub fn len(&self) -> usize {
        self.grams.len()
    }

    pub fn is_empty(&self) -> bool {
        self.grams.is_empty()
    }

    pub fn save(&self, dir: &Path) -> std::io::Result<()> {
        let mut v: Vec<u64> = self.grams.iter().copied().collect();
        v.sort_unstable();
        let bytes = rmp_serde::to_vec(&v).map_err(std::io::Error::other)?;
        std::fs::write(dir.join(FILE), bytes)
    }

    pub fn load(dir: &Path, meta: &ModelMeta) -> Result<Self, ModelError> {
        let path = dir.join(FILE);
        if meta.window > MAX_WINDOW || meta.vocabulary.len() >= (1 << BITS) {
            return Err(ModelError::Invalid {
                path,
                reason: format!("stide needs window ≤ {MAX_WINDOW} and < 512 names"),
            });
        }
        let v: Vec<u64> =
            rmp_serde::from_slice(&read(&path)?).map_err(|e| ModelError::Invalid {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        Ok(Self {
            grams: v.into_iter().collect(),
        })
    }

    /// Score of one window: 1 when never seen in training.
    #[inline]
    pub fn window_score(&self, w: &[u32]) -> f32 {
        if self.grams.contains(&pack(w)) {
            0.0
        } else {
            1.0
        }
    }
}

impl WindowScorer for Stide {
    fn score(&self, tokens: &[u32], window: usize, out: &mut Vec<f32>) {
        out.extend(tokens.chunks_exact(window).map(|w| self.window_score(w)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unseen_windows_score_one() {
        let s = Stide::train([&[1u32, 2, 3, 4][..]], 3);
        assert_eq!(s.len(), 2);
        let mut out = vec![];
        s.score(&[1, 2, 3, 2, 3, 4, 4, 3, 2], 3, &mut out);
        assert_eq!(out, vec![0.0, 0.0, 1.0]);
    }

    #[test]
    fn packing_is_exact() {
        assert_ne!(pack(&[1, 0]), pack(&[0, 1]));
        assert_ne!(pack(&[511, 1]), pack(&[1, 511]));
    }
}
