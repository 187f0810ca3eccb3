//! Neural syscall models in `tch` (libtorch), over windows of tokens:
//!
//! - `lm`: a next-call model. A window is `context` calls plus the call that
//!   followed them; its score is the negative log-likelihood of that call
//!   given its context (embedding → MLP → softmax over the vocabulary).
//! - `ae`: an autoencoder. A window of calls is embedded, squeezed through a
//!   bottleneck and decoded back to one distribution per position; its score
//!   is the mean cross-entropy of reconstructing the window's own tokens (the
//!   target is the tokens, never the model's own embedding, so training
//!   cannot collapse).
//!
//! Window scores are in [0, 1] ([`NeuralKind::window_score`]); a process's
//! score is their mean. For `lm` a window's score is its loss in nats over
//! [`NLL_CAP`], capped at 1, so the trace score follows the mean loss: on
//! ADFA-LD that ranks traces better at low false-positive rates than a mean
//! of saturating `s / (1 + s)` scores (DR@1% 0.15 vs 0.11). For `ae` the
//! saturating score ranks better (AUC 0.737 vs 0.694) and is kept; both
//! measured in `models/syscall/README.md`. Scoring memoizes window scores
//! (windows repeat heavily in normal behaviour) in a bounded cache.

use super::{read, ModelError, ModelMeta, WindowScorer};
use parking_lot::Mutex;
use rustc_hash::FxHashMap;
use std::path::Path;
use tch::nn::{self, Module, OptimizerConfig};
use tch::{Device, Kind, Tensor};

/// Weights file name inside the model directory.
pub const FILE: &str = "weights.safetensors";

/// Architecture of a neural model (stored in `model.json` via `kind` and
/// these numbers in its metrics block).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Arch {
    pub kind: NeuralKind,
    pub vocab: i64,
    pub window: i64,
    pub embed: i64,
    pub hidden: i64,
    /// Bottleneck width (ae only).
    pub code: i64,
}

impl Arch {
    /// Input positions the first layer sees: the context (lm) or the whole
    /// window (ae).
    pub fn inputs(&self) -> i64 {
        match self.kind {
            NeuralKind::Lm => self.window - 1,
            NeuralKind::Ae => self.window,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NeuralKind {
    Lm,
    Ae,
}

impl NeuralKind {
    /// A window's score in [0, 1] from its loss in nats (see the module
    /// documentation for why the kinds differ).
    pub fn window_score(self, loss: f32) -> f32 {
        let l = if loss.is_nan() {
            f32::INFINITY
        } else {
            loss.max(0.0)
        };
        match self {
            NeuralKind::Lm => (l / NLL_CAP).min(1.0),
            NeuralKind::Ae if l.is_infinite() => 1.0,
            NeuralKind::Ae => l / (1.0 + l),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            NeuralKind::Lm => "lm",
            NeuralKind::Ae => "ae",
        }
    }
}

/// The network; built the same way for training and loading. Both kinds
/// start with one linear layer over the concatenated embeddings of their
/// input positions (`first`), then the rest of the layers.
pub struct Net {
    arch: Arch,
    emb: nn::Embedding,
    first: nn::Linear,
    rest: nn::Sequential,
}

impl Net {
    pub fn new(vs: &nn::Path, arch: Arch) -> Net {
        let e = arch.embed;
        let emb = nn::embedding(vs / "emb", arch.vocab, e, Default::default());
        let h = arch.hidden;
        let inp = arch.inputs() * e;
        let (first, rest) = match arch.kind {
            NeuralKind::Lm => (
                nn::linear(vs / "l1", inp, h, Default::default()),
                nn::seq()
                    .add_fn(|x| x.relu())
                    .add(nn::linear(vs / "l2", h, h, Default::default()))
                    .add_fn(|x| x.relu())
                    .add(nn::linear(vs / "out", h, arch.vocab, Default::default())),
            ),
            NeuralKind::Ae => (
                nn::linear(vs / "enc1", inp, h, Default::default()),
                nn::seq()
                    .add_fn(|x| x.relu())
                    .add(nn::linear(vs / "code", h, arch.code, Default::default()))
                    .add_fn(|x| x.relu())
                    .add(nn::linear(vs / "dec1", arch.code, h, Default::default()))
                    .add_fn(|x| x.relu())
                    .add(nn::linear(
                        vs / "out",
                        h,
                        arch.window * arch.vocab,
                        Default::default(),
                    )),
            ),
        };
        Net {
            arch,
            emb,
            first,
            rest,
        }
    }

    /// The first layer's contribution of every (input position, token):
    /// `[inputs × vocab, hidden]`, row `p × vocab + t`. Summing one row per
    /// position (plus the bias) equals the first layer over the
    /// concatenated embeddings, without its matrix product; scoring uses
    /// it. Computed from the current weights (recompute after training).
    pub fn projection(&self) -> Tensor {
        tch::no_grad(|| {
            let e = self.arch.embed;
            let parts: Vec<Tensor> = (0..self.arch.inputs())
                .map(|p| self.emb.ws.matmul(&self.first.ws.narrow(1, p * e, e).tr()))
                .collect();
            Tensor::cat(&parts, 0)
        })
    }

    /// The last layer's output (logits) for `tokens` ([n, window] int64):
    /// `[n, vocab]` (lm) or `[n, window × vocab]` (ae); with the
    /// [`Net::projection`] table when given (same result, faster).
    fn output(&self, tokens: &Tensor, projection: Option<&Tensor>) -> Tensor {
        let n = tokens.size()[0];
        let inputs = match self.arch.kind {
            NeuralKind::Lm => tokens.narrow(1, 0, self.arch.window - 1),
            NeuralKind::Ae => tokens.shallow_clone(),
        };
        let p = self.arch.inputs();
        let hidden = match projection {
            Some(table) => {
                let offsets = Tensor::arange(p, (Kind::Int64, Device::Cpu)) * self.arch.vocab;
                let rows = (&inputs + offsets.unsqueeze(0)).view([-1]);
                let bags = Tensor::arange_start_step(0, n * p, p, (Kind::Int64, Device::Cpu));
                // One bag of `p` rows per window, summed (mode 0).
                let (sum, _, _, _) = Tensor::embedding_bag::<Tensor>(
                    table, &rows, &bags, false, 0, false, None, false,
                );
                match &self.first.bs {
                    Some(b) => sum + b,
                    None => sum,
                }
            }
            None => self
                .first
                .forward(&self.emb.forward(&inputs).view([n, p * self.arch.embed])),
        };
        self.rest.forward(&hidden)
    }

    /// Per-window loss (nats) of `tokens` ([n, window] int64); with the
    /// [`Net::projection`] table when given (same result, faster).
    pub fn window_loss(&self, tokens: &Tensor, projection: Option<&Tensor>) -> Tensor {
        let n = tokens.size()[0];
        let w = self.arch.window;
        let v = self.arch.vocab;
        let out = self.output(tokens, projection);
        match self.arch.kind {
            NeuralKind::Lm => {
                let target = tokens.narrow(1, w - 1, 1);
                let logp = out.log_softmax(-1, Kind::Float);
                -logp.gather(1, &target, false).squeeze_dim(1)
            }
            NeuralKind::Ae => {
                let logp = out.view([n, w, v]).log_softmax(-1, Kind::Float);
                -logp
                    .gather(2, &tokens.unsqueeze(2), false)
                    .squeeze_dim(2)
                    .mean_dim(1, false, Kind::Float)
            }
        }
    }
}

fn to_tensor(tokens: &[u32], window: usize) -> Tensor {
    let v: Vec<i64> = tokens.iter().map(|&t| t as i64).collect();
    Tensor::from_slice(&v).view([(tokens.len() / window) as i64, window as i64])
}

/// Training settings.
#[derive(Debug, Clone)]
pub struct TrainSettings {
    pub epochs: usize,
    pub batch: usize,
    pub lr: f64,
    pub seed: i64,
    /// Epochs without held-out improvement before stopping.
    pub patience: usize,
}

/// Trains on `fit` windows, keeping the weights with the lowest mean loss on
/// `held` (held-out *normal* windows; early stopping). `progress` is told
/// (epoch, fit loss, held-out loss).
pub fn train(
    arch: Arch,
    fit: &[u32],
    held: &[u32],
    s: &TrainSettings,
    mut progress: impl FnMut(usize, f64, f64, usize, usize),
) -> Result<(Neural, f64), tch::TchError> {
    tch::manual_seed(s.seed);
    let vs = nn::VarStore::new(Device::Cpu);
    let net = Net::new(&vs.root(), arch);
    let mut opt = nn::Adam::default().build(&vs, s.lr)?;
    let w = arch.window as usize;
    let x = to_tensor(fit, w);
    let held_x = to_tensor(held, w);
    let n = x.size()[0];
    let mut best = f64::INFINITY;
    let mut best_weights: Option<Vec<u8>> = None;
    let mut since_best = 0;
    let batches = (n as usize).div_ceil(s.batch);
    for epoch in 0..s.epochs {
        let perm = Tensor::randperm(n, (Kind::Int64, Device::Cpu));
        let mut total = 0.0;
        for b in 0..batches {
            let lo = (b * s.batch) as i64;
            let len = (s.batch as i64).min(n - lo);
            let idx = perm.narrow(0, lo, len);
            let loss = net
                .window_loss(&x.index_select(0, &idx), None)
                .mean(Kind::Float);
            opt.backward_step(&loss);
            total += loss.double_value(&[]) * len as f64;
            progress(epoch, f64::NAN, f64::NAN, b + 1, batches);
        }
        let held_loss = tch::no_grad(|| mean_loss(&net, &held_x, 8192));
        progress(epoch, total / n as f64, held_loss, batches, batches);
        if held_loss < best {
            best = held_loss;
            since_best = 0;
            let mut buf = Vec::new();
            vs.save_to_stream(std::io::Cursor::new(&mut buf))?;
            best_weights = Some(buf);
        } else {
            since_best += 1;
            if since_best >= s.patience {
                break;
            }
        }
    }
    let mut vs = vs;
    if let Some(buf) = best_weights {
        vs.load_from_stream(std::io::Cursor::new(buf))?;
    }
    Ok((Neural::new(net, vs), best))
}

fn mean_loss(net: &Net, x: &Tensor, chunk: i64) -> f64 {
    let n = x.size()[0];
    let mut total = 0.0;
    let mut lo = 0;
    while lo < n {
        let len = chunk.min(n - lo);
        total += net
            .window_loss(&x.narrow(0, lo, len), None)
            .sum(Kind::Float)
            .double_value(&[]);
        lo += len;
    }
    total / n.max(1) as f64
}

/// Loss (nats) that maps to the highest `lm` window score, 1. Above every loss a
/// normal ADFA-LD window reaches but its rarest (99.9th percentile 20 nats).
pub const NLL_CAP: f32 = 24.0;

/// Largest number of cached window scores; the cache is emptied when full.
const CACHE: usize = 1 << 20;

/// Longest window whose tokens (9 bits each, vocabulary < 512) pack into
/// the cache's 128-bit key.
pub const MAX_WINDOW: usize = 14;

#[inline]
fn key(w: &[u32]) -> u128 {
    w.iter().fold(0u128, |k, &t| (k << 9) | (t as u128 & 511))
}

/// A loaded neural model.
pub struct Neural {
    net: Net,
    /// [`Net::projection`] of the loaded weights.
    projection: Tensor,
    vs: nn::VarStore,
    window: usize,
    cache: Mutex<FxHashMap<u128, f32>>,
    /// Window scores the cache holds at most ([`CACHE`] unless set).
    cache_limit: usize,
}

impl Neural {
    pub fn load(dir: &Path, meta: &ModelMeta, kind: NeuralKind) -> Result<Neural, ModelError> {
        let path = dir.join(FILE);
        let get = |k: &str| meta.metrics.get(k).copied().unwrap_or(0.0) as i64;
        let arch = Arch {
            kind,
            vocab: meta.vocabulary.len() as i64 + 1,
            window: meta.window as i64,
            embed: get("arch_embed"),
            hidden: get("arch_hidden"),
            code: get("arch_code"),
        };
        if arch.embed <= 0 || arch.hidden <= 0 || (kind == NeuralKind::Ae && arch.code <= 0) {
            return Err(ModelError::Invalid {
                path: dir.join("model.json"),
                reason: "metrics must give arch_embed, arch_hidden (and arch_code for ae)".into(),
            });
        }
        if meta.window > MAX_WINDOW || meta.vocabulary.len() >= 511 {
            return Err(ModelError::Invalid {
                path: dir.join("model.json"),
                reason: format!("neural models take windows of at most {MAX_WINDOW} calls and fewer than 511 names"),
            });
        }
        Neural::load_file(&path, arch)
    }

    /// The weights in `path`, for a network of `arch`.
    pub fn load_file(path: &Path, arch: Arch) -> Result<Neural, ModelError> {
        let bytes = read(path)?;
        Neural::from_bytes(&bytes, arch).map_err(|e| ModelError::Invalid {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
    }

    /// Weights as [`Neural::to_bytes`] wrote them, for a network of `arch`.
    pub fn from_bytes(bytes: &[u8], arch: Arch) -> Result<Neural, tch::TchError> {
        let mut vs = nn::VarStore::new(Device::Cpu);
        let net = Net::new(&vs.root(), arch);
        vs.load_from_stream(std::io::Cursor::new(bytes))?;
        Ok(Neural::new(net, vs))
    }

    /// The weights, as written to a weights file.
    pub fn to_bytes(&self) -> Result<Vec<u8>, tch::TchError> {
        let mut buf = Vec::new();
        self.vs.save_to_stream(std::io::Cursor::new(&mut buf))?;
        Ok(buf)
    }

    /// Writes the weights to `path`.
    pub fn save_file(&self, path: &Path) -> Result<(), tch::TchError> {
        std::fs::write(path, self.to_bytes()?).map_err(tch::TchError::Io)
    }

    /// Keeps at most `n` window scores in the cache (many small models).
    pub fn with_cache_limit(mut self, n: usize) -> Neural {
        self.cache_limit = n;
        self
    }

    fn new(net: Net, vs: nn::VarStore) -> Neural {
        Neural {
            projection: net.projection(),
            window: net.arch.window as usize,
            net,
            vs,
            cache: Mutex::new(FxHashMap::default()),
            cache_limit: CACHE,
        }
    }

    pub fn save(&self, dir: &Path) -> Result<(), tch::TchError> {
        self.save_file(&dir.join(FILE))
    }

    /// For `lm` models: per window (`window` tokens each, `tokens` holding
    /// whole windows), the rank of its last token among the model's
    /// predictions for what follows the others (0: the likeliest; DeepLog
    /// calls a next token outside the top g an anomaly); `among`: only the
    /// tokens it marks count as rivals (a vocabulary-long mask).
    pub fn next_ranks(&self, tokens: &[u32], among: Option<&[bool]>) -> Vec<u32> {
        debug_assert_eq!(self.net.arch.kind, NeuralKind::Lm);
        let w = self.window;
        if tokens.len() < w {
            return Vec::new();
        }
        tch::no_grad(|| {
            let t = to_tensor(&tokens[..tokens.len() / w * w], w);
            let logits = self.net.output(&t, Some(&self.projection));
            let target = t.narrow(1, w as i64 - 1, 1);
            let own = logits.gather(1, &target, false);
            let mut above = logits.gt_tensor(&own);
            if let Some(among) = among {
                let mask = Tensor::from_slice(among).to_device(above.device());
                above = above.logical_and(&mask);
            }
            let ranks = above.sum_dim_intlist(1, false, Kind::Int64);
            Vec::<i64>::try_from(ranks)
                .unwrap_or_default()
                .into_iter()
                .map(|r| r as u32)
                .collect()
        })
    }
}

impl WindowScorer for Neural {
    fn score(&self, tokens: &[u32], window: usize, out: &mut Vec<f32>) {
        debug_assert_eq!(window, self.window);
        let mut cache = self.cache.lock();
        let start = out.len();
        // Windows not in the cache, each distinct one computed once:
        // (position in `out`, row of `flat`), and the rows' keys.
        let mut missing: Vec<(usize, usize)> = Vec::new();
        let mut rows: FxHashMap<u128, usize> = FxHashMap::default();
        let mut flat: Vec<u32> = Vec::new();
        for (i, w) in tokens.chunks_exact(window).enumerate() {
            let k = key(w);
            match cache.get(&k) {
                Some(&s) => out.push(s),
                None => {
                    out.push(f32::NAN);
                    let row = *rows.entry(k).or_insert_with(|| {
                        flat.extend_from_slice(w);
                        flat.len() / window - 1
                    });
                    missing.push((start + i, row));
                }
            }
        }
        if missing.is_empty() {
            return;
        }
        let losses: Vec<f32> = tch::no_grad(|| {
            let t = self
                .net
                .window_loss(&to_tensor(&flat, window), Some(&self.projection));
            Vec::<f32>::try_from(t.to_kind(Kind::Float)).unwrap_or_default()
        });
        let scores: Vec<f32> = (0..rows.len())
            .map(|r| {
                let l = losses.get(r).copied().unwrap_or(f32::INFINITY);
                self.net.arch.kind.window_score(l)
            })
            .collect();
        for (i, row) in missing {
            out[i] = scores[row];
        }
        if cache.len() + rows.len() > self.cache_limit {
            cache.clear();
        }
        for (k, row) in rows {
            cache.insert(k, scores[row]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_scores_stay_in_range_and_keep_the_order() {
        for kind in [NeuralKind::Lm, NeuralKind::Ae] {
            let s: Vec<f32> = [0.0, 0.5, 3.0, 23.0, 100.0, f32::INFINITY, f32::NAN, -1.0]
                .iter()
                .map(|&l| kind.window_score(l))
                .collect();
            assert!(s.iter().all(|x| (0.0..=1.0).contains(x)), "{kind:?}: {s:?}");
            assert!(s[0] < s[1] && s[1] < s[2] && s[2] < s[3], "{kind:?}: {s:?}");
            assert_eq!((s[5], s[6], s[7]), (1.0, 1.0, 0.0), "{kind:?}");
        }
        assert_eq!(NeuralKind::Lm.window_score(12.0), 0.5);
        assert_eq!(NeuralKind::Ae.window_score(1.0), 0.5);
    }

    /// Trains both kinds for real on a tiny language (1 2 3 4 repeated) and
    /// checks that a window breaking the pattern scores higher.
    #[test]
    fn learned_models_score_unseen_patterns_higher() {
        let normal: Vec<u32> = (0..4000).map(|i| (i % 4) as u32 + 1).collect();
        let windows = crate::models::trace_windows(&normal, 4);
        for kind in [NeuralKind::Lm, NeuralKind::Ae] {
            let arch = Arch {
                kind,
                vocab: 6,
                window: 4,
                embed: 8,
                hidden: 32,
                code: 4,
            };
            let s = TrainSettings {
                epochs: 30,
                batch: 256,
                lr: 1e-2,
                seed: 1,
                patience: 30,
            };
            let (m, best) = train(arch, &windows, &windows[..400], &s, |_, _, _, _, _| {}).unwrap();
            assert!(
                best < 0.5,
                "{kind:?} learns the pattern: held-out loss {best}"
            );
            let mut out = vec![];
            m.score(&[1, 2, 3, 4, 1, 3, 2, 5], 4, &mut out);
            assert!(out[1] > out[0] + 0.1, "{kind:?}: {out:?}");
            // Scoring through the projection table computes what the
            // network computes.
            let t = to_tensor(&windows[..400], 4);
            let direct = tch::no_grad(|| m.net.window_loss(&t, None));
            let table = tch::no_grad(|| m.net.window_loss(&t, Some(&m.projection)));
            let gap = (direct - table).abs().max().double_value(&[]);
            assert!(gap < 1e-4, "{kind:?}: projection differs by {gap}");
            // Cached scores are the same scores.
            let mut again = vec![];
            m.score(&[1, 2, 3, 4, 1, 3, 2, 5], 4, &mut again);
            assert_eq!(out, again);
            if kind == NeuralKind::Lm {
                // The learned next call ranks first; a wrong one does not.
                let r = m.next_ranks(&[1, 2, 3, 4, 2, 3, 4, 2], None);
                assert_eq!(r.len(), 2);
                assert_eq!(r[0], 0, "{r:?}");
                assert!(r[1] >= 1, "{r:?}");
                // Counted among itself alone, the wrong call ranks first.
                let mut only = vec![false; m.net.arch.vocab as usize];
                only[2] = true;
                let r = m.next_ranks(&[1, 2, 3, 4, 2, 3, 4, 2], Some(&only));
                assert_eq!(r[1], 0, "{r:?}");
            }
        }
    }
}
