//! The order of log lines: a next-template model, the DeepLog idea
//! (Du et al., CCS 2017) in `tch`.
//!
//! Each log stream (one program's lines in one file of one host, per
//! session where the lines name one: `crate::logs::templates::Stream`) is
//! a sequence of template ids, begun by [`SequenceMeta::context`] tokens
//! 0 (no line): a session's first lines are judged too, against how
//! sessions begin.
//! `daisi train logs` learns, from recorded normal logs, which template
//! follows the last [`SequenceMeta::context`] ones: the `lm` network of
//! `crate::models::neural` (embedding → MLP → softmax over the templates),
//! trained as that module trains it, keeping the weights best on held-out
//! windows (the last tenth of each stream). Judging a line, the templates
//! are ranked by the model's probability of coming next; a line whose
//! template is not among the top likeliest of its program
//! ([`SequenceMeta::tops`], calibrated per program: a chatty service's
//! fixed order is judged as strictly as it is kept, whatever another
//! program's order tolerates) is out of order (`log.template_sequence`).
//! DeepLog's network is an LSTM; a window
//! of ten templates through an MLP is what the syscall model already runs
//! fast, and the criterion (top g) is DeepLog's.
//!
//! The model knows the [`MAX_TEMPLATES`] most common templates of its
//! training logs that have at least [`MIN_LINES`] lines there (a template
//! seen a few times, a daily rotation, has no order to learn); any other
//! is left out of its stream, judged by the template rules (a new
//! template, its rate), never by its order (token 0, in the network's
//! vocabulary, is no line's). Streams are an LRU of [`MAX_STREAMS`]; ranks of windows seen before come from a bounded
//! cache.

use logdrain::ClusterId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Templates a sequence model tells apart (the network's vocabulary
/// besides token 0).
pub const MAX_TEMPLATES: usize = 500;

/// Lines a template needs in the training logs to be judged by its
/// order (rarer ones are left out of their streams: their order is not
/// learnt).
pub const MIN_LINES: u64 = 10;

/// Streams whose last templates are kept.
pub const MAX_STREAMS: usize = 4096;

/// What the template model says of its sequence model.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SequenceMeta {
    /// The weights, beside the template model.
    pub file: String,
    /// Token `i + 1` is `templates[i]`.
    pub templates: Vec<ClusterId>,
    /// Templates before the one judged.
    pub context: usize,
    pub embed: i64,
    pub hidden: i64,
    /// A next template outside the `top` likeliest is out of order
    /// (for a program not in `tops`).
    pub top: usize,
    /// The top of each program whose streams were trained on (`""`: lines
    /// without a program).
    #[serde(default)]
    pub tops: BTreeMap<String, usize>,
    /// The tokens each program wrote in the training logs: a line is
    /// ranked among its program's (a program not here: among all).
    #[serde(default)]
    pub own: BTreeMap<String, Vec<u32>>,
    /// Held-out windows, and the share whose next template was in its
    /// program's top.
    pub held_out: usize,
    pub held_out_in_top: f64,
}

#[cfg(feature = "torch")]
pub use model::{train, SequenceModel, TrainedSequence};

#[cfg(feature = "torch")]
mod model {
    use super::*;
    use crate::models::neural::{self, Arch, Neural, NeuralKind, TrainSettings};
    use crate::models::ModelError;
    use lru::LruCache;
    use rustc_hash::FxHashMap;
    use std::collections::{HashMap, VecDeque};
    use std::path::Path;

    fn arch(meta: &SequenceMeta) -> Arch {
        Arch {
            kind: NeuralKind::Lm,
            vocab: meta.templates.len() as i64 + 1,
            window: meta.context as i64 + 1,
            embed: meta.embed,
            hidden: meta.hidden,
            code: 0,
        }
    }

    /// A loaded sequence model and the streams it follows.
    pub struct SequenceModel {
        pub meta: SequenceMeta,
        net: Neural,
        tokens: HashMap<ClusterId, u32>,
        /// Each program's rivals (a mask over the tokens) and its number,
        /// [`SequenceMeta::own`].
        own: HashMap<String, (Vec<bool>, u32)>,
        streams: LruCache<String, VecDeque<u32>>,
        /// Rank of a window's last token, by program number and window.
        ranks: FxHashMap<(u32, Vec<u32>), u32>,
    }

    impl SequenceModel {
        /// Reads and checks the weights `meta.file` beside `model` (the
        /// template model's path): their bytes, for [`SequenceModel::new`].
        pub fn read(model: &Path, meta: &SequenceMeta) -> Result<Vec<u8>, ModelError> {
            let path = model.with_file_name(&meta.file);
            if meta.context == 0
                || meta.context + 1 > neural::MAX_WINDOW
                || meta.templates.len() > MAX_TEMPLATES
                || meta.top == 0
                || meta.tops.values().any(|&t| t == 0)
                || meta
                    .own
                    .values()
                    .flatten()
                    .any(|&t| t as usize > meta.templates.len())
            {
                return Err(ModelError::Invalid {
                    path,
                    reason: format!(
                        "a sequence model has 1..{} templates of context, at most {MAX_TEMPLATES} templates and top ≥ 1",
                        neural::MAX_WINDOW - 1
                    ),
                });
            }
            let bytes = crate::models::read(&path)?;
            Neural::from_bytes(&bytes, arch(meta)).map_err(|e| ModelError::Invalid {
                path,
                reason: e.to_string(),
            })?;
            Ok(bytes)
        }

        /// The model of `meta` with the weights [`SequenceModel::read`] checked.
        pub fn from_bytes(meta: &SequenceMeta, bytes: &[u8]) -> Result<Self, tch::TchError> {
            Ok(Self::new(
                meta.clone(),
                Neural::from_bytes(bytes, arch(meta))?,
            ))
        }

        fn new(meta: SequenceMeta, net: Neural) -> Self {
            let tokens = meta
                .templates
                .iter()
                .enumerate()
                .map(|(i, id)| (*id, i as u32 + 1))
                .collect();
            let own = meta
                .own
                .iter()
                .enumerate()
                .map(|(i, (p, t))| (p.clone(), (mask(t, meta.templates.len()), i as u32 + 1)))
                .collect();
            Self {
                meta,
                net,
                tokens,
                own,
                streams: LruCache::unbounded(),
                ranks: FxHashMap::default(),
            }
        }

        /// The top of `program`'s lines: a rank at or past it is out of order.
        pub fn top(&self, program: &str) -> usize {
            self.meta
                .tops
                .get(program)
                .copied()
                .unwrap_or(self.meta.top)
        }

        /// The next line of `stream` is of template `id`: its rank among
        /// the model's predictions (0: the likeliest), when the model
        /// knows the template (a new stream's context is `context` tokens
        /// 0, as in training).
        ///
        /// `judge_start`: a stream new now began here (the reader saw its
        /// file from before it); else its first lines, whose context is
        /// partly "no line", are not judged.
        pub fn next(
            &mut self,
            stream: &str,
            program: &str,
            id: ClusterId,
            judge_start: bool,
        ) -> Option<u32> {
            // A template the model does not know has no order: it is left
            // out of its stream (judged by the template rules alone).
            let token = self.tokens.get(&id).copied()?;
            let context = self.meta.context;
            if !self.streams.contains(stream) {
                if self.streams.len() >= MAX_STREAMS {
                    self.streams.pop_lru();
                }
                let mut begun = VecDeque::with_capacity(context + 1);
                begun.extend(std::iter::repeat_n(0, context));
                self.streams.put(stream.to_string(), begun);
            }
            let h = self.streams.get_mut(stream)?;
            h.push_back(token);
            if h.len() > context + 1 {
                h.pop_front();
            }
            let window: Vec<u32> = h.iter().copied().collect();
            if !judge_start && window[0] == 0 {
                // The stream's start (its context holds "no line"): not
                // judged when it may have begun before it was seen.
                return None;
            }
            let (among, n) = match self.own.get(program) {
                Some((m, n)) => (Some(m.as_slice()), *n),
                None => (None, 0),
            };
            let key = (n, window);
            if let Some(&r) = self.ranks.get(&key) {
                return Some(r);
            }
            let r = *self.net.next_ranks(&key.1, among).first()?;
            if self.ranks.len() >= 1 << 16 {
                self.ranks.clear();
            }
            self.ranks.insert(key, r);
            Some(r)
        }
    }

    /// A mask over a vocabulary of `templates` + 1 tokens marking `tokens`.
    fn mask(tokens: &[u32], templates: usize) -> Vec<bool> {
        let mut m = vec![false; templates + 1];
        for &t in tokens {
            if let Some(b) = m.get_mut(t as usize) {
                *b = true;
            }
        }
        m
    }

    /// A model `daisi train logs` made, and its description.
    pub struct TrainedSequence {
        pub meta: SequenceMeta,
        pub net: Neural,
    }

    /// Learns which template follows `context` others in `streams` (each
    /// a program and the template ids of its lines in one file, in order).
    /// `top` 0: per program, the fewest predictions that hold the template
    /// of every line of it trained on. `None` when the streams hold fewer
    /// than `min_windows` windows.
    pub fn train(
        streams: &[(String, Vec<ClusterId>)],
        context: usize,
        top: usize,
        epochs: usize,
        min_windows: usize,
        mut progress: impl FnMut(usize, f64),
    ) -> Result<Option<TrainedSequence>, tch::TchError> {
        let mut counts: HashMap<ClusterId, u64> = HashMap::new();
        for id in streams.iter().flat_map(|(_, s)| s) {
            *counts.entry(*id).or_default() += 1;
        }
        let mut templates: Vec<(ClusterId, u64)> = counts.into_iter().collect();
        templates.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        // A template seen a few times has no order to learn.
        templates.retain(|(_, n)| *n >= MIN_LINES);
        templates.truncate(MAX_TEMPLATES);
        let token: HashMap<ClusterId, u32> = templates
            .iter()
            .enumerate()
            .map(|(i, (id, _))| (*id, i as u32 + 1))
            .collect();
        let w = context + 1;
        // Windows, and the program of each.
        let (mut fit, mut held) = (Vec::new(), Vec::new());
        let (mut fit_of, mut held_of) = (Vec::new(), Vec::new());
        for (program, s) in streams {
            // Templates the model does not know are left out, as a node
            // leaves them out; the stream begins with `context` tokens 0.
            let t: Vec<u32> = std::iter::repeat_n(0, context)
                .chain(s.iter().filter_map(|id| token.get(id).copied()))
                .collect();
            let n = t.len().saturating_sub(context);
            let cut = n - n / 10;
            for i in 0..n {
                let (out, of) = if i < cut {
                    (&mut fit, &mut fit_of)
                } else {
                    (&mut held, &mut held_of)
                };
                out.extend_from_slice(&t[i..i + w]);
                of.push(program.as_str());
            }
        }
        let windows = (fit.len() + held.len()) / w;
        if windows < min_windows || fit.is_empty() {
            return Ok(None);
        }
        if held.is_empty() {
            held = fit[fit.len() - w..].to_vec();
            held_of = fit_of[fit_of.len() - 1..].to_vec();
        }
        let mut meta = SequenceMeta {
            file: String::new(),
            templates: templates.iter().map(|(id, _)| *id).collect(),
            context,
            embed: 16,
            hidden: 64,
            top,
            tops: BTreeMap::new(),
            own: BTreeMap::new(),
            held_out: held.len() / w,
            held_out_in_top: 0.0,
        };
        let settings = TrainSettings {
            epochs,
            batch: 256,
            lr: 5e-3,
            seed: 1,
            patience: 5,
        };
        let (net, _) = neural::train(
            arch(&meta),
            &fit,
            &held,
            &settings,
            |epoch, _, held_loss, b, of| {
                if b == of && held_loss.is_finite() {
                    progress(epoch, held_loss)
                }
            },
        )?;
        // Each program's own tokens (those it wrote), its rivals.
        let mut own: BTreeMap<String, std::collections::BTreeSet<u32>> = BTreeMap::new();
        for (windows, of) in [(&fit, &fit_of), (&held, &held_of)] {
            for (win, program) in windows.chunks(w).zip(of.iter()) {
                own.entry(program.to_string())
                    .or_default()
                    .extend(win.iter().filter(|&&t| t != 0));
            }
        }
        meta.own = own
            .into_iter()
            .map(|(p, t)| (p, t.into_iter().collect()))
            .collect();
        // Ranks per window among its program's own tokens: one pass of
        // the net per program.
        let ranks_of = |windows: &[u32], of: &[&str]| -> Vec<u32> {
            let mut by: BTreeMap<&str, (Vec<usize>, Vec<u32>)> = BTreeMap::new();
            for (i, (win, p)) in windows.chunks(w).zip(of).enumerate() {
                let (at, flat) = by.entry(*p).or_default();
                at.push(i);
                flat.extend_from_slice(win);
            }
            let mut ranks = vec![0; of.len()];
            for (p, (at, flat)) in by {
                let among = meta.own.get(p).map(|t| mask(t, meta.templates.len()));
                for (i, r) in at.into_iter().zip(net.next_ranks(&flat, among.as_deref())) {
                    ranks[i] = r;
                }
            }
            ranks
        };
        let ranks = ranks_of(&held, &held_of);
        if top == 0 {
            // Calibrated per program: the fewest predictions that hold the
            // template of each of its lines in the training logs (every
            // order seen is normal).
            let fitted = ranks_of(&fit, &fit_of);
            for (r, program) in ranks.iter().zip(&held_of).chain(fitted.iter().zip(&fit_of)) {
                let t = meta.tops.entry(program.to_string()).or_insert(1);
                *t = (*t).max(*r as usize + 1);
            }
            meta.top = meta.tops.values().copied().max().unwrap_or(1);
        }
        let top_of = |program: &str| meta.tops.get(program).copied().unwrap_or(meta.top);
        let in_top = ranks
            .iter()
            .zip(&held_of)
            .filter(|(&r, p)| (r as usize) < top_of(p))
            .count();
        meta.held_out_in_top = in_top as f64 / ranks.len().max(1) as f64;
        Ok(Some(TrainedSequence { meta, net }))
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        /// A service's sessions in a fixed order (connect, auth, query,
        /// close), learned; a session's lines in that order rank first
        /// from its first line on, a session begun or broken out of order
        /// ranks low.
        #[test]
        fn a_learned_order_ranks_its_next_line_first_and_a_break_low() {
            let sessions: Vec<(String, Vec<ClusterId>)> =
                (0..500).map(|_| ("svc".into(), vec![1, 2, 3, 4])).collect();
            let t = train(&sessions, 3, 1, 30, 100, |_, _| {})
                .unwrap()
                .expect("enough windows");
            let mut m = SequenceModel::new(t.meta, t.net);
            let ranks: Vec<_> = [1, 2, 3, 4]
                .into_iter()
                .map(|id| m.next("host/a.log/7", "svc", id, true))
                .collect();
            assert_eq!(ranks, [Some(0); 4]);
            // A session begun with its query: out of order; not judged
            // when it may have begun before it was seen.
            assert!(m.next("host/a.log/8", "svc", 3, true).unwrap() >= 1);
            assert_eq!(m.next("host/a.log/10", "svc", 3, false), None);
            // Close before query: out of order.
            assert!(m.next("host/a.log/9", "svc", 1, true) == Some(0));
            assert!(m.next("host/a.log/9", "svc", 2, true) == Some(0));
            assert!(m.next("host/a.log/9", "svc", 4, true).unwrap() >= 1);
            // Another stream has its own context.
            assert_eq!(m.next("host/b.log/7", "svc", 1, true), Some(0));
            // A template the model never saw is not judged by order.
            assert_eq!(m.next("host/a.log/7", "svc", 99, true), None);
        }

        #[test]
        fn too_few_lines_make_no_model() {
            assert!(
                train(&[(String::new(), vec![1, 2, 3])], 6, 1, 1, 100, |_, _| {})
                    .unwrap()
                    .is_none()
            );
        }
    }
}
