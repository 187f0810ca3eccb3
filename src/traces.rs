//! ADFA-LD-style syscall trace files: one process per file, whitespace-
//! separated syscall numbers. Read from a directory tree or a zip archive.
//!
//! Junk is never fatal: a token that is not a number is counted in
//! [`Trace::bad_tokens`] and skipped; an empty trace is returned empty.

use std::io::Read;
use std::path::{Path, PathBuf};

/// One trace file.
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    /// Path of the file inside the directory or archive (`/`-separated).
    pub name: String,
    pub calls: Vec<u32>,
    /// Tokens that were not syscall numbers.
    pub bad_tokens: usize,
}

impl Trace {
    /// Parses the text of one trace.
    pub fn parse(name: &str, text: &str) -> Trace {
        let mut calls = Vec::with_capacity(text.len() / 3);
        let mut bad = 0;
        // `#` lines are headers (daisi's own recordings), not calls.
        let body = text.lines().filter(|l| !l.trim_start().starts_with('#'));
        for tok in body.flat_map(str::split_ascii_whitespace) {
            match tok.parse::<u32>() {
                Ok(n) => calls.push(n),
                Err(_) => bad += 1,
            }
        }
        Trace {
            name: name.to_string(),
            calls,
            bad_tokens: bad,
        }
    }

    /// The ADFA-LD attack family of this trace (`Adduser`, `Hydra_FTP`...),
    /// from its folder name `Attack_Data_Master/<Family>_<n>/`.
    pub fn family(&self) -> Option<&str> {
        let rest = self.name.split("Attack_Data_Master/").nth(1)?;
        let folder = rest.split('/').next()?;
        Some(folder.rsplit_once('_').map_or(folder, |(f, _)| f))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    #[error("cannot read traces at {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read zip archive {path}: {source}")]
    Zip {
        path: PathBuf,
        source: zip::result::ZipError,
    },
}

/// Lists the trace files under `root` (a directory or a `.zip`) whose path
/// contains `filter` (empty = all), sorted by name, and reads them.
pub fn read_traces(root: &Path, filter: &str) -> Result<Vec<Trace>, TraceError> {
    let mut out = Vec::new();
    for_each_trace(root, filter, |t| {
        out.push(t);
        true
    })?;
    Ok(out)
}

/// Calls `f` for each trace in name order, stopping when it returns false.
pub fn for_each_trace(
    root: &Path,
    filter: &str,
    mut f: impl FnMut(Trace) -> bool,
) -> Result<(), TraceError> {
    let io = |source| TraceError::Io {
        path: root.to_path_buf(),
        source,
    };
    if root.is_file() {
        let file = std::fs::File::open(root).map_err(io)?;
        let zerr = |source| TraceError::Zip {
            path: root.to_path_buf(),
            source,
        };
        let mut zip = zip::ZipArchive::new(std::io::BufReader::new(file)).map_err(zerr)?;
        let mut names: Vec<String> = zip
            .file_names()
            .filter(|n| !n.ends_with('/') && n.contains(filter) && is_trace_name(n))
            .map(str::to_string)
            .collect();
        names.sort();
        for n in names {
            let mut entry = zip.by_name(&n).map_err(zerr)?;
            let mut text = String::new();
            // Bounded: a trace file larger than 256 MiB is not a trace.
            (&mut entry)
                .take(256 << 20)
                .read_to_string(&mut text)
                .map_err(io)?;
            if !f(Trace::parse(&n, &text)) {
                break;
            }
        }
        return Ok(());
    }
    let mut files = Vec::new();
    collect_files(root, root, &mut files).map_err(io)?;
    files.sort();
    for rel in files {
        if !rel.contains(filter) || !is_trace_name(&rel) {
            continue;
        }
        let bytes = std::fs::read(root.join(&rel)).map_err(io)?;
        if !f(Trace::parse(&rel, &String::from_utf8_lossy(&bytes))) {
            break;
        }
    }
    Ok(())
}

fn is_trace_name(n: &str) -> bool {
    let base = n.rsplit('/').next().unwrap_or(n);
    !base.starts_with('.') && !base.eq_ignore_ascii_case("readme.md")
}

fn collect_files(root: &Path, dir: &Path, out: &mut Vec<String>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let p = entry.path();
        if entry.file_type()?.is_dir() {
            collect_files(root, &p, out)?;
        } else if let Ok(rel) = p.strip_prefix(root) {
            out.push(rel.to_string_lossy().replace('\\', "/"));
        }
    }
    Ok(())
}

/// `../shared/datasets/adfa-ld/ADFA-LD.zip` relative to the crate, for tests.
pub fn shared_adfa_zip() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/datasets/adfa-ld/ADFA-LD.zip");
    p.exists().then_some(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn junk_is_counted_not_fatal() {
        let t = Trace::parse("x", "# daisi-trace v1 abi=x86_64\n3 4 abc 5\n\n-1 6 7.5");
        assert_eq!(t.calls, vec![3, 4, 5, 6]);
        assert_eq!(t.bad_tokens, 3);
        assert!(Trace::parse("e", "").calls.is_empty());
    }

    #[test]
    fn family_from_folder() {
        let t = Trace::parse(
            "ADFA-LD/Attack_Data_Master/Hydra_FTP_3/UAD-Hydra-FTP-3-1.txt",
            "",
        );
        assert_eq!(t.family(), Some("Hydra_FTP"));
        assert_eq!(
            Trace::parse("ADFA-LD/Training_Data_Master/a.txt", "").family(),
            None
        );
    }

    #[test]
    fn reads_directories() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("a/b")).unwrap();
        std::fs::write(d.path().join("a/b/t1.txt"), "1 2 3").unwrap();
        std::fs::write(d.path().join("a/t0.txt"), "4 x").unwrap();
        let ts = read_traces(d.path(), "").unwrap();
        assert_eq!(ts.len(), 2);
        assert_eq!(ts[0].name, "a/b/t1.txt");
        assert_eq!(ts[1].bad_tokens, 1);
        assert_eq!(read_traces(d.path(), "b/").unwrap().len(), 1);
        assert!(read_traces(Path::new("/nonexistent"), "").is_err());
    }

    #[test]
    fn reads_the_adfa_zip() {
        let Some(zip) = shared_adfa_zip() else {
            eprintln!("skipped: ../shared/datasets/adfa-ld/ADFA-LD.zip is absent");
            return;
        };
        let ts = read_traces(&zip, "Training_Data_Master/").unwrap();
        assert_eq!(ts.len(), 833);
        assert_eq!(ts.iter().map(|t| t.calls.len()).sum::<usize>(), 308_077);
    }

    /// Seeds for the `trace` fuzz target: an ADFA-LD trace and a recording
    /// with its header lines.
    #[test]
    fn fuzz_seeds_are_current() {
        crate::fuzz_seeds::check(
            "trace",
            "adfa",
            b"6 6 63 6 42 120 6 195 120 6 6 114 114 1 1 252 \n",
        );
        crate::fuzz_seeds::check(
            "trace",
            "recording",
            b"# daisi-trace v1 abi=x86_64 pid=4242 comm=python3 exe=/usr/bin/python3.11\n0 1 3 9\n257 0 3\nx 5\n",
        );
    }
}
