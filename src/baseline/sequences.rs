//! Per-program call sequences: the sequence part of a program's profile.
//!
//! Each program's profile holds the distinct runs of [`NGRAM`] consecutive
//! system calls its processes made while the host learnt (stide's model,
//! per program instead of per host: a web server and a shell are judged
//! against their own normal, not each other's). After learning, a batch of
//! a program's calls is judged by locality: a finding when at least
//! [`FRAME_MISSES`] of [`FRAME`] consecutive windows are not in the profile
//! (isolated misses, which every program makes now and then, are not).
//!
//! A program is judged only once its sequences are *settled*: learnt from
//! at least [`MIN_WINDOWS`] windows, with no new one in the second half of
//! them. A program seen briefly, or still showing new sequences when
//! learning ended, is not judged (its other behaviours still are): no
//! finding from a profile that had not seen enough.
//!
//! A signal's handler runs wherever the signal happened to arrive: a
//! window holding a signal return (`rt_sigreturn`) is timing, not the
//! program's order (a shell loop's `SIGCHLD` lands at a different point
//! each time), and is neither learnt nor judged.
//!
//! A batch's calls up to and including an `execve` belong to the program
//! the process ran before it (a shell's fork, say, before it became `ls`):
//! only the calls after the batch's last exec are the new program's.
//!
//! With libtorch built in, a settled program's sequences are also judged
//! by a small next-call model trained on its own calls when learning ends
//! ([`super::lm`]; `baseline.sequence_model`): the same locality frame, a
//! window counting as a miss only when the program never made it while
//! learning *and* the model finds its last call unlikely, so that an order
//! close to learnt ones is not a miss. The model can only remove misses:
//! it never judges what the learnt windows would not. Each program keeps
//! a bounded sample of its calls ([`MAX_SAMPLE`]) to train on; until its
//! model is trained (or when it has too few calls for one), the learnt
//! windows judge.
//!
//! Host-wide sequence scoring with a trained model (`lm`, `stide`) is the
//! syscall classifier's (`daisi train syscall`); this is the part learnt
//! per program, live, with the rest of the baseline.

use crate::messages::SyscallAbi;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Calls per window.
pub const NGRAM: usize = 6;
/// Windows a program's profile holds at most (past it, its sequences are
/// full: no longer learnt, and not judged).
pub const MAX_NGRAMS: usize = 16_384;
/// Windows a program must have been learnt from before it is judged.
pub const MIN_WINDOWS: u64 = 2_000;
/// The locality frame: consecutive windows looked at together.
pub const FRAME: usize = 32;
/// Windows of a frame not in the profile that make a finding.
pub const FRAME_MISSES: usize = 12;
/// Calls a program's sample holds at most (its first ones while learning).
pub const MAX_SAMPLE: usize = 32_768;

/// Stands for a signal return in [`own_calls`]' output, and for the gap
/// between two batches in a sample: windows holding it are skipped.
pub const SIGNAL: u32 = u32::MAX;

/// A program's learnt call sequences.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sequences {
    /// Windows learnt from.
    pub windows: u64,
    /// `windows` when the last new one was learnt.
    pub last_new_at: u64,
    /// The distinct windows (a stable 64-bit hash of each: FNV-1a over the
    /// call numbers).
    pub ngrams: BTreeSet<u64>,
    /// Calls to train the program's model on: its batches' own calls,
    /// [`SIGNAL`] between batches (at most [`MAX_SAMPLE`]; emptied once the
    /// model is trained).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sample: Vec<u32>,
    /// The program's trained model, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lm: Option<LmState>,
}

/// A program's trained sequence model, as its profile records it (the
/// weights are a file of their own, `<dir>/<host>.lm/<file>`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LmState {
    /// The weights' file name.
    pub file: String,
    /// The calls it knows, as call numbers (token = position + 1; 0 is a
    /// call it never saw).
    pub vocab: Vec<u32>,
    /// A window's score (its last call's loss in nats over 24, at most 1)
    /// above which it counts as a miss.
    pub threshold: f32,
    /// Windows trained on, and held out to calibrate `threshold`.
    pub trained: u64,
    pub held_out: u64,
    /// Mean loss (nats) of the held-out windows.
    pub held_loss: f64,
}

/// A program's trained sequence model (`super::lm` with libtorch).
pub trait CallModel {
    /// A batch of the program's own calls (`calls[..context]` the
    /// previous batch's tail): `Some` when a frame of it has
    /// [`FRAME_MISSES`] misses: windows whose last [`NGRAM`] calls `learnt`
    /// does not hold and whose last call the model finds unlikely.
    fn judge(&self, calls: &[u32], context: usize, learnt: &Sequences) -> Option<Unusual>;
    /// What the model is, for a finding's text.
    fn describe(&self) -> String;
}

/// What a batch showed that the profile does not hold.
#[derive(Debug, Clone, PartialEq)]
pub struct Unusual {
    /// Windows of the worst frame counted as misses.
    pub misses: usize,
    /// Windows judged in the batch.
    pub windows: usize,
    /// The first missed window.
    pub example: Vec<u32>,
}

impl Unusual {
    /// The example window as call names.
    pub fn example_names(&self, abi: SyscallAbi) -> String {
        self.example
            .iter()
            .map(|&nr| {
                crate::syscalls::name(abi, nr).map_or_else(|| nr.to_string(), str::to_string)
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// The part of a batch that is its executable's own: after the last
/// `execve`/`execveat` in it, if any, signal returns marked (their windows
/// are skipped); with how many of those calls are context (the previous
/// batch's tail).
pub fn own_calls(calls: &[u32], context: usize, abi: SyscallAbi) -> (Vec<u32>, usize) {
    let (exec, sigreturn): (&[u32], &[u32]) = match abi {
        SyscallAbi::X86_64 => (&[59, 322], &[15]),
        SyscallAbi::I386 => (&[11, 358], &[119, 173]),
    };
    let (own, context) = match calls.iter().rposition(|nr| exec.contains(nr)) {
        Some(at) => (&calls[at + 1..], context.saturating_sub(at + 1)),
        None => (calls, context),
    };
    let marked = own
        .iter()
        .map(|nr| if sigreturn.contains(nr) { SIGNAL } else { *nr })
        .collect();
    (marked, context)
}

/// The worst frame's misses (a batch shorter than a frame is one frame).
pub fn worst_frame(missed: &[bool]) -> usize {
    if missed.len() <= FRAME {
        missed.iter().filter(|&&m| m).count()
    } else {
        missed
            .windows(FRAME)
            .map(|f| f.iter().filter(|&&m| m).count())
            .max()
            .unwrap_or(0)
    }
}

/// `Some` when a frame of the batch's windows (`missed`: one per window of
/// [`windows_of`] `size`) has [`FRAME_MISSES`] misses.
pub fn unusual(missed: &[bool], calls: &[u32], context: usize, size: usize) -> Option<Unusual> {
    let worst = worst_frame(missed);
    if worst < FRAME_MISSES {
        return None;
    }
    let first = missed.iter().position(|&m| m)?;
    let example = windows_of(calls, context, size).nth(first)?.to_vec();
    Some(Unusual {
        misses: worst,
        windows: missed.len(),
        example,
    })
}

fn hash(window: &[u32]) -> u64 {
    crate::fnv1a(window.iter().flat_map(|nr| nr.to_le_bytes()))
}

/// The windows of [`NGRAM`] calls of `calls` that end in its new part
/// (`calls[context..]`: the first `context` calls are the previous batch's
/// tail, whose own windows were looked at with it).
pub fn windows(calls: &[u32], context: usize) -> impl Iterator<Item = &[u32]> {
    windows_of(calls, context, NGRAM)
}

/// The windows of `size` calls that end in the new part, skipping those
/// holding a [`SIGNAL`].
pub fn windows_of(calls: &[u32], context: usize, size: usize) -> impl Iterator<Item = &[u32]> {
    let first = context.saturating_sub(size - 1);
    calls[first.min(calls.len())..]
        .windows(size)
        .filter(|w| !w.contains(&SIGNAL))
}

impl Sequences {
    /// Learns the windows of a batch; the number of new ones (none past
    /// [`MAX_NGRAMS`]).
    pub fn learn(&mut self, calls: &[u32], context: usize) -> usize {
        let fresh = &calls[context.min(calls.len())..];
        if !fresh.is_empty() && self.lm.is_none() && self.sample.len() < MAX_SAMPLE {
            if !self.sample.is_empty() {
                self.sample.push(SIGNAL);
            }
            let room = MAX_SAMPLE - self.sample.len();
            self.sample
                .extend_from_slice(&fresh[..fresh.len().min(room)]);
        }
        let mut new = 0;
        for w in windows(calls, context) {
            self.windows += 1;
            if self.ngrams.len() < MAX_NGRAMS && self.ngrams.insert(hash(w)) {
                self.last_new_at = self.windows;
                new += 1;
            }
        }
        new
    }

    /// Whether the program made this window of [`NGRAM`] calls while
    /// learning.
    pub fn knows(&self, window: &[u32]) -> bool {
        self.ngrams.contains(&hash(window))
    }

    /// Whether the program is judged: learnt from enough windows, not
    /// full, no new window in the second half.
    pub fn settled(&self) -> bool {
        self.windows >= MIN_WINDOWS
            && self.ngrams.len() < MAX_NGRAMS
            && self.last_new_at.saturating_mul(2) <= self.windows
    }

    /// A settled program's batch: `Some` when a frame of it has too many
    /// windows the profile does not hold.
    pub fn judge(&self, calls: &[u32], context: usize) -> Option<Unusual> {
        if !self.settled() {
            return None;
        }
        let missed: Vec<bool> = windows(calls, context)
            .map(|w| !self.ngrams.contains(&hash(w)))
            .collect();
        unusual(&missed, calls, context, NGRAM)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A program's everyday loop, repeated.
    fn everyday(n: usize) -> Vec<u32> {
        [0u32, 1, 3, 9, 10, 11, 12, 0, 1, 3]
            .into_iter()
            .cycle()
            .take(n)
            .collect()
    }

    #[test]
    fn a_settled_program_is_judged_by_frames_of_windows_and_an_unsettled_one_is_not() {
        let mut s = Sequences::default();
        let normal = everyday(3_000);
        assert!(s.learn(&normal, 0) > 0);
        assert!(!s.settled() || s.windows >= MIN_WINDOWS);
        assert!(
            s.settled(),
            "{} windows, last new at {}",
            s.windows,
            s.last_new_at
        );
        // Its everyday calls, and a few isolated odd ones: nothing.
        assert_eq!(s.judge(&everyday(500), 0), None);
        let mut odd = everyday(500);
        odd[100] = 59;
        assert_eq!(
            s.judge(&odd, 0),
            None,
            "one odd call is six windows, under the frame's bound"
        );
        // A run of calls it never made: a finding naming the first window.
        let mut attack = everyday(100);
        attack.extend([33, 33, 33, 42, 41, 49, 50, 43, 2, 257, 0, 1, 57, 61, 62]);
        attack.extend(everyday(100));
        let u = s.judge(&attack, 0).expect("a frame of unknown windows");
        assert!(u.misses >= FRAME_MISSES, "{u:?}");
        assert_eq!(
            u.example_names(SyscallAbi::X86_64).split(' ').count(),
            NGRAM
        );
        // The previous batch's tail is context, not judged again.
        assert_eq!(s.judge(&attack, attack.len() - 10), None);

        // Learnt from too little: never judged.
        let mut brief = Sequences::default();
        brief.learn(&everyday(200), 0);
        assert!(!brief.settled());
        assert_eq!(brief.judge(&attack, 0), None);
        // Still finding new windows late in learning: not judged either.
        let mut drifting = Sequences::default();
        let mut calls = everyday(3_000);
        calls.extend((0..40).map(|i| 100 + i));
        drifting.learn(&calls, 0);
        assert!(
            !drifting.settled(),
            "{:?}",
            (drifting.windows, drifting.last_new_at)
        );
    }

    proptest::proptest! {
        /// A process's calls cut into batches, each with the previous
        /// one's tail as context (as the collector sends them), learn the
        /// same windows as the whole run, each window once.
        #[test]
        fn batches_with_context_learn_as_the_whole_run(
            calls in proptest::collection::vec(0u32..12, 0..400),
            cuts in proptest::collection::vec(1usize..50, 1..20),
        ) {
            let mut whole = Sequences::default();
            whole.learn(&calls, 0);
            let mut split = Sequences::default();
            let mut at = 0;
            let mut cuts = cuts.into_iter().cycle();
            while at < calls.len() {
                let end = (at + cuts.next().expect("cycles")).min(calls.len());
                let from = at.saturating_sub(NGRAM - 1);
                split.learn(&calls[from..end], at - from);
                at = end;
            }
            proptest::prop_assert_eq!(&split.ngrams, &whole.ngrams);
            proptest::prop_assert_eq!(split.windows, whole.windows);
            proptest::prop_assert_eq!(whole.windows as usize, calls.len().saturating_sub(NGRAM - 1));
        }
    }

    #[test]
    fn an_exec_starts_the_new_programs_calls() {
        let x = SyscallAbi::X86_64;
        let calls = [1, 2, 59, 3, 4, 5];
        assert_eq!(own_calls(&calls, 0, x), (vec![3, 4, 5], 0));
        assert_eq!(
            own_calls(&calls, 4, x),
            (vec![3, 4, 5], 1),
            "one call of context left"
        );
        assert_eq!(own_calls(&[1, 2, 3], 2, x), (vec![1, 2, 3], 2));
        assert_eq!(own_calls(&[9, 11, 1], 0, SyscallAbi::I386), (vec![1], 0));
    }

    /// A signal arriving at new points of a settled program's loop (the
    /// handler's calls, then `rt_sigreturn`) is not a finding; another
    /// program's calls before an exec are not judged; the same unknown
    /// calls as the program's own are.
    #[test]
    fn signals_and_the_previous_image_are_not_findings() {
        let x = SyscallAbi::X86_64;
        let mut s = Sequences::default();
        let (normal, _) = own_calls(&everyday(3_000), 0, x);
        s.learn(&normal, 0);
        assert!(s.settled());
        let mut batch = everyday(100);
        // SIGCHLD: the handler reaps (wait4 = 61) and returns (15).
        for at in [23, 57, 81] {
            batch.splice(at..at, [14, 61, 61, 14, 15]);
        }
        let (own, ctx) = own_calls(&batch, 0, x);
        assert_eq!(s.judge(&own, ctx), None);
        let unknown = [33, 33, 33, 42, 41, 49, 50, 43, 2, 257, 0, 1, 57, 61, 62];
        let mut exec = unknown.to_vec();
        exec.push(59);
        exec.extend(everyday(60));
        let (own, ctx) = own_calls(&exec, 0, x);
        assert_eq!(s.judge(&own, ctx), None);
        let mut attack = everyday(100);
        attack.extend(unknown);
        attack.extend(everyday(30));
        let (own, ctx) = own_calls(&attack, 0, x);
        assert!(s.judge(&own, ctx).is_some());
    }

    #[test]
    fn windows_hash_stably_and_profiles_are_bounded() {
        // The hash is part of the saved format: it must never change.
        assert_eq!(hash(&[0, 1, 2, 3, 4, 5]), 0xac63_13d9_7a44_af34);
        let mut s = Sequences::default();
        let calls: Vec<u32> = (0..(MAX_NGRAMS as u32 + 100)).collect();
        s.learn(&calls, 0);
        assert_eq!(s.ngrams.len(), MAX_NGRAMS);
        assert!(!s.settled(), "a full profile is not judged");
    }
}
