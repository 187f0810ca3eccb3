//! Syscall-name normalization: numbers of any supported ABI become canonical
//! names, and names become model tokens.
//!
//! The tables come from the `syscalls` crate (generated from the kernel's
//! syscall tables), not from a hand-typed list. i386 has variants of many
//! calls (`stat64`, `_llseek`, `mmap2`, `getuid32`...); they are folded onto
//! the x86_64 name of the same operation by rules ([`canonical`]), so a model
//! trained on ADFA-LD (i386) sees the same tokens for a live x86_64 process
//! doing the same thing.

use crate::messages::SyscallAbi;
use std::collections::HashMap;

/// Raw name of `nr` in `abi`'s table.
pub fn raw_name(abi: SyscallAbi, nr: u32) -> Option<&'static str> {
    match abi {
        SyscallAbi::X86_64 => syscalls::x86_64::Sysno::new(nr as usize).map(|s| s.name()),
        SyscallAbi::I386 => syscalls::x86::Sysno::new(nr as usize).map(|s| s.name()),
    }
}

fn is_x86_64_name(name: &str) -> bool {
    x86_64_names().contains_key(name)
}

fn x86_64_names() -> &'static HashMap<&'static str, u32> {
    static NAMES: std::sync::OnceLock<HashMap<&'static str, u32>> = std::sync::OnceLock::new();
    NAMES.get_or_init(|| {
        syscalls::x86_64::Sysno::iter()
            .map(|s| (s.name(), s.id() as u32))
            .collect()
    })
}

/// Canonical name of a syscall name from any supported table: legacy i386
/// variants map to the x86_64 call with the same meaning.
pub fn canonical(name: &'static str) -> &'static str {
    // i386 calls that were renamed when their argument types widened.
    let renamed = match name {
        "_llseek" => Some("lseek"),
        "mmap2" => Some("mmap"),
        "_newselect" => Some("select"),
        "ugetrlimit" => Some("getrlimit"),
        "waitpid" => Some("wait4"),
        "fadvise64_64" => Some("fadvise64"),
        "sigaction" => Some("rt_sigaction"),
        "sigprocmask" => Some("rt_sigprocmask"),
        "sigreturn" => Some("rt_sigreturn"),
        "sigsuspend" => Some("rt_sigsuspend"),
        "sigpending" => Some("rt_sigpending"),
        "oldstat" | "oldlstat" | "oldfstat" => name.strip_prefix("old"),
        "oldolduname" | "olduname" => Some("uname"),
        "readdir" => Some("getdents"),
        "signal" => Some("rt_sigaction"),
        "send" => Some("sendto"),
        "recv" => Some("recvfrom"),
        _ => None,
    };
    if let Some(r) = renamed {
        return r;
    }
    if is_x86_64_name(name) {
        return name;
    }
    // `stat64`, `fcntl64`, `getuid32`, `chown32`...: the width suffix.
    for suffix in ["64", "32"] {
        if let Some(base) = name.strip_suffix(suffix) {
            if is_x86_64_name(base) {
                return base;
            }
        }
    }
    // `clock_gettime64` and friends (time64 variants on 32-bit).
    if let Some(base) = name.strip_suffix("_time64") {
        if is_x86_64_name(base) {
            return base;
        }
    }
    if let Some(base) = name.strip_suffix("64") {
        if is_x86_64_name(base) {
            return base;
        }
    }
    name
}

/// Canonical name of `nr` in `abi`, or `None` for a number the table lacks.
pub fn name(abi: SyscallAbi, nr: u32) -> Option<&'static str> {
    raw_name(abi, nr).map(canonical)
}

/// Token of a name the vocabulary does not know.
pub const OOV: u32 = 0;

/// The model's vocabulary: canonical syscall names, token 0 = out of
/// vocabulary. Lookups per ABI are precomputed tables indexed by number.
#[derive(Debug, Clone)]
pub struct Vocabulary {
    names: Vec<String>,
    x86_64: Vec<u32>,
    i386: Vec<u32>,
}

impl Vocabulary {
    /// Builds a vocabulary from names (order defines tokens 1..).
    pub fn new(names: Vec<String>) -> Self {
        let index: HashMap<&str, u32> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_str(), i as u32 + 1))
            .collect();
        let table = |abi: SyscallAbi| -> Vec<u32> {
            (0..1024u32)
                .map(|nr| {
                    name(abi, nr)
                        .and_then(|n| index.get(n).copied())
                        .unwrap_or(OOV)
                })
                .collect()
        };
        Self {
            x86_64: table(SyscallAbi::X86_64),
            i386: table(SyscallAbi::I386),
            names,
        }
    }

    /// Every canonical name of both tables, sorted: a vocabulary that needs
    /// no training data.
    pub fn all() -> Self {
        let mut names: Vec<String> = syscalls::x86_64::Sysno::iter()
            .map(|s| canonical(s.name()).to_string())
            .chain(syscalls::x86::Sysno::iter().map(|s| canonical(s.name()).to_string()))
            .collect();
        names.sort();
        names.dedup();
        Self::new(names)
    }

    /// Token of `nr` in `abi` ([`OOV`] when unknown).
    #[inline]
    pub fn token(&self, abi: SyscallAbi, nr: u32) -> u32 {
        let t = match abi {
            SyscallAbi::X86_64 => &self.x86_64,
            SyscallAbi::I386 => &self.i386,
        };
        t.get(nr as usize).copied().unwrap_or(OOV)
    }

    /// Name of a token (`"<oov>"` for [`OOV`]).
    pub fn token_name(&self, token: u32) -> &str {
        if token == OOV {
            return "<oov>";
        }
        self.names
            .get(token as usize - 1)
            .map(String::as_str)
            .unwrap_or("<oov>")
    }

    /// Number of tokens including [`OOV`].
    pub fn len(&self) -> usize {
        self.names.len() + 1
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use SyscallAbi::*;

    #[test]
    fn adfa_numbers_match_the_dataset_readme() {
        // ../shared/datasets/adfa-ld/README.md lists these i386 numbers.
        for (nr, n) in [
            (3, "read"),
            (4, "write"),
            (6, "close"),
            (42, "pipe"),
            (63, "dup2"),
            (114, "wait4"),
            (120, "clone"),
            (168, "poll"),
            (195, "stat"),
            (252, "exit_group"),
            (265, "clock_gettime"),
        ] {
            assert_eq!(name(I386, nr), Some(n), "i386 {nr}");
        }
    }

    #[test]
    fn same_operation_same_token_across_abis() {
        let v = Vocabulary::all();
        // (i386 nr, x86_64 nr) of the same operation, e.g. `ls` in both worlds:
        // read, write, open, close, stat64/stat, fstat64/fstat, mmap2/mmap,
        // _llseek/lseek, getuid32/getuid, fcntl64/fcntl, exit_group, getdents64.
        let pairs = [
            (3, 0),
            (4, 1),
            (5, 2),
            (6, 3),
            (195, 4),
            (197, 5),
            (192, 9),
            (140, 8),
            (199, 102),
            (221, 72),
            (252, 231),
            (220, 217),
        ];
        for (a, b) in pairs {
            let (ta, tb) = (v.token(I386, a), v.token(X86_64, b));
            assert_ne!(ta, OOV, "i386 {a}");
            assert_eq!(
                ta,
                tb,
                "i386 {a} ({:?}) vs x86_64 {b} ({:?})",
                raw_name(I386, a),
                raw_name(X86_64, b)
            );
        }
    }

    #[test]
    fn unknown_numbers_are_oov() {
        let v = Vocabulary::all();
        assert_eq!(v.token(X86_64, 999_999), OOV);
        assert_eq!(v.token(I386, 1000), OOV);
        assert_eq!(v.token_name(OOV), "<oov>");
    }

    #[test]
    fn restricted_vocabulary_maps_unseen_names_to_oov() {
        let v = Vocabulary::new(vec!["read".into(), "write".into()]);
        assert_eq!(v.token(X86_64, 0), 1);
        assert_eq!(v.token(I386, 4), 2);
        assert_eq!(v.token(X86_64, 3), OOV);
        assert_eq!(v.len(), 3);
    }
}
