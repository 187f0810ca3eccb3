//! A program's own sequence model: a small next-call network (the `lm` of
//! [`crate::models::neural`]) trained on the program's sample of calls
//! when the host's learning ends, and judging its batches with the same
//! locality frame as the learnt windows ([`super::sequences`]).
//!
//! A window is [`CONTEXT`] calls and the call that followed them; its score
//! is that call's loss (nats over 24, at most 1). The last fifth of the
//! sample's windows is held out: the miss threshold is the 99.9th
//! percentile of their scores, at least [`MIN_THRESHOLD`] (a call the model
//! gives at least 5 % is never a miss), raised until no frame of the held-out
//! windows comes within half of [`FRAME_MISSES`]. A call the program never
//! made while learning is token 0, which the model never saw: always a
//! miss.

use super::sequences::{
    unusual, windows_of, CallModel, LmState, Sequences, Unusual, FRAME_MISSES, NGRAM, SIGNAL,
};
use crate::models::neural::{self, Arch, Neural, NeuralKind, TrainSettings};
use crate::models::{ModelError, WindowScorer};
use std::path::Path;

/// Calls of context before the predicted one.
pub const CONTEXT: usize = NGRAM;
/// Tokens per window: the context and the next call.
pub const WINDOW: usize = CONTEXT + 1;
/// Windows a program's sample must give before a model is trained.
pub const MIN_WINDOWS: usize = 2_000;
/// The lowest miss threshold: a loss of 3 nats (the call had under 5 %).
pub const MIN_THRESHOLD: f32 = 3.0 / neural::NLL_CAP;
/// Window scores each program's model caches.
const CACHE: usize = 16_384;

const EMBED: i64 = 16;
const HIDDEN: i64 = 64;

#[derive(Debug, thiserror::Error)]
pub enum LmError {
    #[error("training: {0}")]
    Train(#[from] tch::TchError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("{0}: {1} calls, at most 510 distinct ones fit a model")]
    Vocabulary(String, usize),
}

/// A trained program model and what its profile records of it.
pub struct ProgramLm {
    pub state: LmState,
    net: Neural,
}

fn arch(vocab: usize) -> Arch {
    Arch {
        kind: NeuralKind::Lm,
        vocab: vocab as i64 + 1,
        window: WINDOW as i64,
        embed: EMBED,
        hidden: HIDDEN,
        code: 0,
    }
}

/// `calls` as tokens of `vocab` (0: not in it; [`SIGNAL`] kept).
fn tokens(vocab: &[u32], calls: &[u32]) -> Vec<u32> {
    calls
        .iter()
        .map(|&c| {
            if c == SIGNAL {
                SIGNAL
            } else {
                vocab.binary_search(&c).map_or(0, |i| i as u32 + 1)
            }
        })
        .collect()
}

/// The windows of a token sequence, flattened.
fn flat_windows(tokens: &[u32], context: usize) -> Vec<u32> {
    windows_of(tokens, context, WINDOW)
        .flatten()
        .copied()
        .collect()
}

impl ProgramLm {
    /// Trains on a program's sample; `None` when it gives too few windows.
    /// `file` names the weights file the state will record.
    pub fn train(
        program: &str,
        sample: &[u32],
        file: String,
    ) -> Result<Option<ProgramLm>, LmError> {
        let mut vocab: Vec<u32> = sample.iter().copied().filter(|&c| c != SIGNAL).collect();
        vocab.sort_unstable();
        vocab.dedup();
        if vocab.len() >= 511 {
            return Err(LmError::Vocabulary(program.to_string(), vocab.len()));
        }
        let all = flat_windows(&tokens(&vocab, sample), 0);
        let n = all.len() / WINDOW;
        if n < MIN_WINDOWS {
            return Ok(None);
        }
        let held_n = n / 5;
        let (fit, held) = all.split_at((n - held_n) * WINDOW);
        let settings = TrainSettings {
            epochs: 12,
            batch: 256,
            lr: 5e-3,
            seed: 1,
            patience: 2,
        };
        let (net, held_loss) =
            neural::train(arch(vocab.len()), fit, held, &settings, |_, _, _, _, _| {})?;
        let net = net.with_cache_limit(CACHE);
        let mut scores = Vec::with_capacity(held_n);
        net.score(held, WINDOW, &mut scores);
        let threshold = calibrate(&scores);
        Ok(Some(ProgramLm {
            state: LmState {
                file,
                vocab,
                threshold,
                trained: (n - held_n) as u64,
                held_out: held_n as u64,
                held_loss,
            },
            net,
        }))
    }

    /// The model a profile records, its weights read from `path`.
    pub fn load(path: &Path, state: LmState) -> Result<ProgramLm, LmError> {
        if state.vocab.len() >= 511 {
            return Err(LmError::Vocabulary(
                path.display().to_string(),
                state.vocab.len(),
            ));
        }
        let net = Neural::load_file(path, arch(state.vocab.len()))?.with_cache_limit(CACHE);
        Ok(ProgramLm { state, net })
    }

    pub fn save(&self, path: &Path) -> Result<(), LmError> {
        Ok(self.net.save_file(path)?)
    }
}

impl CallModel for ProgramLm {
    /// Misses: windows the program never made while learning (`learnt`)
    /// whose last call the model finds unlikely, or that hold a call it
    /// never made.
    fn judge(&self, calls: &[u32], context: usize, learnt: &Sequences) -> Option<Unusual> {
        let t = tokens(&self.state.vocab, calls);
        let flat = flat_windows(&t, context);
        if flat.is_empty() {
            return None;
        }
        let mut scores = Vec::with_capacity(flat.len() / WINDOW);
        self.net.score(&flat, WINDOW, &mut scores);
        // The raw windows, in the same order as the token windows.
        let missed: Vec<bool> = scores
            .iter()
            .zip(flat.chunks_exact(WINDOW))
            .zip(windows_of(calls, context, WINDOW))
            .map(|((&s, w), raw)| {
                !learnt.knows(&raw[1..]) && (w.contains(&0) || s > self.state.threshold)
            })
            .collect();
        unusual(&missed, calls, context, WINDOW)
    }

    fn describe(&self) -> String {
        format!(
            "a next-call model of its {} calls, trained on {} of its windows",
            self.state.vocab.len(),
            self.state.trained
        )
    }
}

/// The miss threshold from the held-out windows' scores (module docs).
fn calibrate(held: &[f32]) -> f32 {
    let mut sorted = held.to_vec();
    sorted.sort_unstable_by(f32::total_cmp);
    let q = sorted
        .get(((sorted.len() as f64) * 0.999) as usize)
        .or(sorted.last())
        .copied()
        .unwrap_or(1.0);
    let mut t = q.max(MIN_THRESHOLD);
    while t < 1.0 {
        let missed: Vec<bool> = held.iter().map(|&s| s > t).collect();
        if super::sequences::worst_frame(&missed) * 2 < FRAME_MISSES {
            break;
        }
        t = (t * 1.25).min(1.0);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A program's everyday work: a loop with a little variety (two kinds
    /// of request), as a sample of batches.
    fn everyday(n: usize, seed: u64) -> Vec<u32> {
        let a = [0u32, 1, 3, 9, 232, 0, 1, 3];
        let b = [0u32, 257, 5, 0, 3, 232];
        let mut x = seed;
        let mut out = Vec::new();
        while out.len() < n {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            out.extend(if x >> 63 == 0 { &a[..] } else { &b[..] });
        }
        out.truncate(n);
        out
    }

    #[test]
    fn a_programs_model_judges_its_own_calls_and_flags_a_run_of_odd_ones() {
        let mut sample = everyday(6_000, 1);
        sample.push(SIGNAL);
        sample.extend(everyday(6_000, 2));
        assert!(
            ProgramLm::train("p", &everyday(500, 1), "x".into())
                .unwrap()
                .is_none(),
            "too few windows: no model"
        );
        let m = ProgramLm::train("p", &sample, "p.safetensors".into())
            .unwrap()
            .expect("enough windows");
        let mut learnt = Sequences::default();
        learnt.learn(&sample, 0);
        assert!(m.state.threshold >= MIN_THRESHOLD && m.state.threshold <= 1.0);
        assert_eq!(m.state.vocab, vec![0, 1, 3, 5, 9, 232, 257]);
        assert!(m.state.held_loss < 1.0, "{:?}", m.state);
        // Its everyday work in an order never sampled: nothing.
        assert_eq!(m.judge(&everyday(800, 99), 0, &learnt), None);
        // A run of calls it never made (and one it did, out of place).
        let mut attack = everyday(100, 5);
        attack.extend([33, 33, 33, 42, 41, 49, 50, 43, 2, 257, 257, 57, 61, 62, 59]);
        attack.extend(everyday(100, 6));
        let u = m.judge(&attack, 0, &learnt).expect("a frame of misses");
        assert!(u.misses >= FRAME_MISSES, "{u:?}");
        assert_eq!(u.example.len(), WINDOW);
        // Every window unknown (nothing learnt): the model alone decides,
        // and everyday orders are likely to it.
        let nothing = Sequences::default();
        assert_eq!(m.judge(&everyday(800, 99), 0, &nothing), None);
        assert!(m.judge(&attack, 0, &nothing).is_some());
        // Saved and loaded: the same judgement.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.safetensors");
        m.save(&path).unwrap();
        let again = ProgramLm::load(&path, m.state.clone()).unwrap();
        assert_eq!(again.judge(&attack, 0, &learnt), Some(u));
        assert_eq!(again.judge(&everyday(800, 99), 0, &learnt), None);
    }

    #[test]
    fn calibration_keeps_held_out_frames_well_under_a_finding() {
        // Held-out scores with a burst of high ones: raised above them.
        let mut held = vec![0.01f32; 5_000];
        for s in held.iter_mut().skip(100).take(10) {
            *s = 0.3;
        }
        let t = calibrate(&held);
        assert!(t >= 0.3, "{t}");
        assert_eq!(calibrate(&[0.0; 100]), MIN_THRESHOLD);
    }
}
