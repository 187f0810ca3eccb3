//! Where daisi's shipped files are: the install location, never the
//! current directory.
//!
//! The shipped models (`models/syscall`, `models/network`) live under a
//! share directory: `$DAISI_SHARE_DIR` when set; else `../share/daisi`
//! beside the binary (`/usr/bin/daisi` → `/usr/share/daisi`, as the
//! packages and images install it); else the source tree the binary was
//! built from (`cargo run`). A path a user writes in a config or on the
//! command line is taken as written.

use std::path::{Path, PathBuf};

/// No share directory holds a shipped file.
#[derive(Debug, thiserror::Error)]
#[error("the shipped {what} is not installed: tried {}", tried.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "))]
pub struct NotInstalled {
    pub what: String,
    pub tried: Vec<PathBuf>,
}

/// The share directories, in the order they are tried.
pub fn share_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(d) = std::env::var_os("DAISI_SHARE_DIR").filter(|d| !d.is_empty()) {
        dirs.push(PathBuf::from(d));
    }
    if let Some(bin) = std::env::current_exe()
        .ok()
        .and_then(|e| e.canonicalize().ok())
    {
        if let Some(prefix) = bin.parent().and_then(Path::parent) {
            dirs.push(prefix.join("share").join("daisi"));
        }
    }
    dirs.push(PathBuf::from("/usr/share/daisi"));
    dirs.push(PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    dirs.dedup();
    dirs
}

/// The shipped model `models/<name>` (a directory holding `marker`), from
/// the first share directory that has it.
pub fn shipped_model(name: &str, marker: &str) -> Result<PathBuf, NotInstalled> {
    let tried: Vec<PathBuf> = share_dirs()
        .into_iter()
        .map(|d| d.join("models").join(name))
        .collect();
    tried
        .iter()
        .find(|p| p.join(marker).is_file())
        .cloned()
        .ok_or_else(|| NotInstalled {
            what: format!("{name} model"),
            tried,
        })
}

/// The shipped syscall model (trained on ADFA-LD; for replayed traces).
pub fn syscall_model() -> Result<PathBuf, NotInstalled> {
    shipped_model("syscall", "model.json")
}

/// The shipped flow model.
pub fn network_model() -> Result<PathBuf, NotInstalled> {
    shipped_model("network", "model.json")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shipped models are found at absolute paths (so from any working
    /// directory: this test binary lives in the source tree's target/,
    /// whose `../share` does not exist, and the source tree answers); a
    /// name nobody ships says every path it tried.
    #[test]
    fn shipped_models_are_found_from_anywhere_and_a_missing_one_names_the_paths_tried() {
        let (s, n) = (syscall_model().unwrap(), network_model().unwrap());
        assert!(s.is_absolute() && s.join("model.json").is_file(), "{s:?}");
        assert!(n.is_absolute() && n.join("model.json").is_file(), "{n:?}");
        let e = shipped_model("nothing", "model.json").unwrap_err();
        let text = e.to_string();
        assert!(text.contains("models/nothing"), "{text}");
        assert_eq!(e.tried.len(), share_dirs().len());
    }
}
