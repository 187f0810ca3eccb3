//! Caps on what one message may hold, checked while it is decoded.
//!
//! A MessagePack element of a few bytes can decode to a struct of a
//! hundred (a lineage entry of 4 bytes is a `ProcessInfo` of ~200), so the
//! message size alone does not bound a receiver's memory: every list a
//! payload carries has a cap, and a list past it refuses the whole message
//! as it is read, before its elements are allocated
//! (`inbound.rejected.too_many`). The caps are far above what a daisi
//! sender writes (its own bounds are in its config: `syscall_batcher`,
//! `flow_merge`, `[[log_source]]`).

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

/// Calls of context a syscall batch carries.
pub const CONTEXT: usize = 4096;
/// Calls in one syscall batch.
pub const EVENTS: usize = 65_536;
/// A process and its ancestors.
pub const LINEAGE: usize = 64;
/// Things a process did in one batch.
pub const ACTIVITY: usize = 16_384;
/// A process's arguments.
pub const ARGS: usize = 1024;
/// Addresses a command protects (a node's interfaces).
pub const ADDRESSES: usize = 64;
/// Flows in one flow batch.
pub const FLOWS: usize = 65_536;
/// Features of one flow.
pub const FEATURES: usize = 256;
/// Lines in one log batch.
pub const LINES: usize = 65_536;

/// The start of the decode error a list past its cap raises (so the
/// receiver can count it apart: [`super::DecodeError::TooMany`]).
pub const TOO_MANY: &str = "too many entries: ";

/// A list of at most `N` elements.
pub fn vec<'de, D, T, const N: usize>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct Bounded<T, const N: usize>(PhantomData<T>);
    impl<'de, T: Deserialize<'de>, const N: usize> Visitor<'de> for Bounded<T, N> {
        type Value = Vec<T>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            write!(f, "a list of at most {N} entries")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
            if seq.size_hint().is_some_and(|n| n > N) {
                return Err(serde::de::Error::custom(format!("{TOO_MANY}more than {N}")));
            }
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(N).min(4096));
            while let Some(x) = seq.next_element()? {
                if out.len() == N {
                    return Err(serde::de::Error::custom(format!("{TOO_MANY}more than {N}")));
                }
                out.push(x);
            }
            Ok(out)
        }
    }
    d.deserialize_seq(Bounded::<T, N>(PhantomData))
}

/// A map of at most `N` entries.
pub fn map<'de, D, K, V, const N: usize>(d: D) -> Result<BTreeMap<K, V>, D::Error>
where
    D: Deserializer<'de>,
    K: Deserialize<'de> + Ord,
    V: Deserialize<'de>,
{
    struct Bounded<K, V, const N: usize>(PhantomData<(K, V)>);
    impl<'de, K: Deserialize<'de> + Ord, V: Deserialize<'de>, const N: usize> Visitor<'de>
        for Bounded<K, V, N>
    {
        type Value = BTreeMap<K, V>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            write!(f, "a map of at most {N} entries")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<BTreeMap<K, V>, A::Error> {
            if m.size_hint().is_some_and(|n| n > N) {
                return Err(serde::de::Error::custom(format!("{TOO_MANY}more than {N}")));
            }
            let mut out = BTreeMap::new();
            while let Some((k, v)) = m.next_entry()? {
                if out.len() == N {
                    return Err(serde::de::Error::custom(format!("{TOO_MANY}more than {N}")));
                }
                out.insert(k, v);
            }
            Ok(out)
        }
    }
    d.deserialize_map(Bounded::<K, V, N>(PhantomData))
}
