//! Following log files as they grow, across rotation and restarts.
//!
//! A file is known by its device and inode, not its name, as Filebeat's
//! registry knows it: a file renamed by rotation (`auth.log` to
//! `auth.log.1`) is read to its end through the handle already open, and
//! the new file at the old name is read from its start. A file that
//! shrinks below the position read, or whose first bytes changed
//! (copytruncate, then written past the old position before the next
//! poll), is read again from its start, counted. The position of every file is kept in a registry file,
//! written (atomically: a new file renamed over the old) only when the
//! caller says the lines before it were delivered ([`Tailer::commit`]), so
//! a restart neither loses nor repeats a delivered line.
//!
//! Lines are bounded ([`TailConfig::max_line`] bytes): a longer one is cut
//! there, counted, and the rest of it skipped up to its newline. A last
//! line without its newline waits until the newline comes.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// A tailer's errors.
#[derive(Debug, thiserror::Error)]
pub enum TailError {
    #[error("pattern {pattern:?}: {source}")]
    Pattern {
        pattern: String,
        source: glob::PatternError,
    },
    #[error("registry {path}: {source}")]
    Registry {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("registry {path}: not a registry ({source})")]
    RegistryFormat {
        path: PathBuf,
        source: serde_json::Error,
    },
}

/// What a tailer follows and how.
#[derive(Debug, Clone)]
pub struct TailConfig {
    /// Glob patterns of the files to follow.
    pub paths: Vec<String>,
    /// Where the read positions are kept.
    pub registry: PathBuf,
    /// The longest line kept (bytes).
    pub max_line: usize,
    /// At most this many bytes read per file per poll.
    pub read_chunk: usize,
    /// A file never seen before is read from its start (else from its end).
    pub from_start: bool,
    /// Follow a file that is a symbolic link out of its directory (else it
    /// is left alone and counted: a user who can write the log directory
    /// cannot have root read `/etc/shadow` into the logs).
    pub follow_symlinks: bool,
}

/// A file's identity: device and inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FileId {
    pub dev: u64,
    pub ino: u64,
}

/// One line read.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub file: FileId,
    /// The name the file had when the line was read.
    pub path: PathBuf,
    pub text: String,
    /// The file position after this line (and its newline).
    pub end: u64,
    /// The line was longer than `max_line` and was cut.
    pub cut: bool,
}

/// What the tailer has counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TailCounters {
    pub lines: u64,
    pub bytes: u64,
    pub cut: u64,
    pub truncations: u64,
    pub rotations: u64,
    pub read_errors: u64,
    /// Files that are links out of their directory, left alone.
    pub symlinks_refused: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    path: PathBuf,
    offset: u64,
    /// The file's first bytes (up to [`HEAD`]), hex: a file truncated and
    /// written again while the node was away is known by them.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    head: String,
}

/// How many of a file's first bytes identify its content.
const HEAD: usize = 64;

fn to_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn from_hex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .filter_map(|i| u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok())
        .collect()
}

/// A delivered position.
#[derive(Debug, Clone)]
struct Pos {
    path: PathBuf,
    offset: u64,
    head: Vec<u8>,
}

/// The registry on disk: a position per file.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Registry {
    files: BTreeMap<String, Entry>,
}

fn key(id: FileId) -> String {
    format!("{}:{}", id.dev, id.ino)
}

struct Open {
    file: File,
    path: PathBuf,
    /// Position read up to (the start of `pending`).
    read: u64,
    /// Bytes of a line whose newline has not come yet.
    pending: Vec<u8>,
    /// Skipping the rest of a line already cut...
    skipping: bool,
    /// ...whose kept part goes out with its end, when its newline comes.
    cut_line: Option<Vec<u8>>,
    /// Its name no longer leads to it (rotated or removed).
    gone: bool,
    /// Its first bytes as read (up to [`HEAD`]).
    head: Vec<u8>,
    /// Its length at the last poll.
    seen_len: u64,
}

/// Whether `path` is a symbolic link to something outside its own
/// directory.
fn leaves_its_directory(path: &Path) -> bool {
    let is_link = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    if !is_link {
        return false;
    }
    let dir = path.parent().and_then(|d| std::fs::canonicalize(d).ok());
    match (std::fs::canonicalize(path), dir) {
        (Ok(target), Some(dir)) => !target.starts_with(dir),
        _ => true,
    }
}

/// Follows the files of one [`TailConfig`].
pub struct Tailer {
    cfg: TailConfig,
    patterns: Vec<glob::Pattern>,
    open: HashMap<FileId, Open>,
    /// Delivered positions (what the registry holds, or will at the next save).
    committed: BTreeMap<FileId, Pos>,
    dirty: bool,
    /// The last poll left bytes unread (it read a chunk's worth).
    behind: bool,
    /// Links refused (each said once).
    refused: std::collections::HashSet<PathBuf>,
    pub counters: TailCounters,
}

impl Tailer {
    /// Checks the patterns and loads the registry (an absent one is empty).
    pub fn new(cfg: TailConfig) -> Result<Tailer, TailError> {
        let patterns = cfg
            .paths
            .iter()
            .map(|p| {
                glob::Pattern::new(p).map_err(|source| TailError::Pattern {
                    pattern: p.clone(),
                    source,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let registry = match std::fs::read(&cfg.registry) {
            Ok(bytes) => serde_json::from_slice::<Registry>(&bytes).map_err(|source| {
                TailError::RegistryFormat {
                    path: cfg.registry.clone(),
                    source,
                }
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Registry::default(),
            Err(source) => {
                return Err(TailError::Registry {
                    path: cfg.registry.clone(),
                    source,
                })
            }
        };
        let committed = registry
            .files
            .into_iter()
            .filter_map(|(k, e)| {
                let (dev, ino) = k.split_once(':')?;
                Some((
                    FileId {
                        dev: dev.parse().ok()?,
                        ino: ino.parse().ok()?,
                    },
                    Pos {
                        head: from_hex(&e.head),
                        path: e.path,
                        offset: e.offset,
                    },
                ))
            })
            .collect();
        let mut t = Tailer {
            cfg,
            patterns,
            open: HashMap::new(),
            committed,
            dirty: false,
            behind: false,
            refused: Default::default(),
            counters: TailCounters::default(),
        };
        // Where reading starts in files never seen, fixed now (the node is
        // not running yet): a line written after the node started is read
        // even if it comes before the first poll.
        for (id, path, len) in t.scan() {
            if let std::collections::btree_map::Entry::Vacant(e) = t.committed.entry(id) {
                e.insert(Pos {
                    path,
                    offset: if t.cfg.from_start { 0 } else { len },
                    head: Vec::new(),
                });
                t.dirty = true;
            }
        }
        Ok(t)
    }

    /// The files the patterns name now, with their identities.
    fn scan(&mut self) -> Vec<(FileId, PathBuf, u64)> {
        let mut out = Vec::new();
        for p in &self.patterns {
            let Ok(paths) = glob::glob(p.as_str()) else {
                continue;
            };
            for path in paths.flatten() {
                if !self.cfg.follow_symlinks && leaves_its_directory(&path) {
                    if self.refused.insert(path.clone()) {
                        self.counters.symlinks_refused += 1;
                        tracing::warn!(path = %path.display(), "a log file that is a link out of its directory; not read (follow_symlinks = true reads it)");
                    }
                    continue;
                }
                if let Ok(m) = std::fs::metadata(&path) {
                    if m.is_file() {
                        out.push((
                            FileId {
                                dev: m.dev(),
                                ino: m.ino(),
                            },
                            path,
                            m.len(),
                        ));
                    }
                }
            }
        }
        out
    }

    /// Reads what every file gained since the last poll: complete lines,
    /// in file order per file.
    pub fn poll(&mut self) -> Vec<Line> {
        let found = self.scan();
        let named: HashMap<FileId, &PathBuf> = found.iter().map(|(id, p, _)| (*id, p)).collect();
        // Files whose names now lead elsewhere: read to their end, then close.
        for (id, o) in self.open.iter_mut() {
            if !named.contains_key(id) && !o.gone {
                o.gone = true;
                self.counters.rotations += 1;
            }
        }
        for (id, path, _) in &found {
            if self.open.contains_key(id) {
                let o = self.open.get_mut(id).expect("present");
                o.path = path.clone();
                continue;
            }
            let Ok(mut file) = File::open(path) else {
                self.counters.read_errors += 1;
                continue;
            };
            let (start, mut head) = match self.committed.get(id) {
                Some(p) => (p.offset, p.head.clone()),
                None if self.cfg.from_start => (0, Vec::new()),
                None => (file.seek(SeekFrom::End(0)).unwrap_or(0), Vec::new()),
            };
            if head.is_empty() && start > 0 {
                // Known from here on by what it holds now.
                head = vec![0; HEAD.min(start as usize)];
                if std::os::unix::fs::FileExt::read_exact_at(&file, &mut head, 0).is_err() {
                    head.clear();
                }
            }
            if !self.committed.contains_key(id) {
                self.committed.insert(
                    *id,
                    Pos {
                        path: path.clone(),
                        offset: start,
                        head: head.clone(),
                    },
                );
                self.dirty = true;
            }
            self.open.insert(
                *id,
                Open {
                    file,
                    path: path.clone(),
                    read: start,
                    pending: Vec::new(),
                    skipping: false,
                    cut_line: None,
                    gone: false,
                    head,
                    seen_len: 0,
                },
            );
        }
        let mut lines = Vec::new();
        let mut closed = Vec::new();
        self.behind = false;
        let ids: Vec<FileId> = self.open.keys().copied().collect();
        for id in ids {
            let o = self.open.get_mut(&id).expect("present");
            let at_end = read_lines(id, o, &self.cfg, &mut self.counters, &mut lines);
            self.behind |= !at_end;
            if o.gone && at_end {
                closed.push(id);
            }
        }
        for id in closed {
            self.open.remove(&id);
        }
        lines
    }

    /// Lines up to `end` of `file` were delivered: their position may be saved.
    pub fn commit(&mut self, line: &Line) {
        let e = self.committed.entry(line.file).or_insert_with(|| Pos {
            path: line.path.clone(),
            offset: 0,
            head: Vec::new(),
        });
        // Lines are committed in file order; after a truncation the
        // position starts again from the file's start.
        if line.end != e.offset || e.path != line.path {
            e.path = line.path.clone();
            e.offset = line.end;
            self.dirty = true;
        }
        if let Some(o) = self.open.get(&line.file) {
            if o.head != e.head {
                e.head = o.head.clone();
                self.dirty = true;
            }
        }
    }

    /// Writes the registry when a position moved since the last save.
    /// Files neither open nor named any more are forgotten.
    pub fn save(&mut self) -> Result<(), TailError> {
        if !self.dirty {
            return Ok(());
        }
        let live: Vec<FileId> = self.scan().into_iter().map(|(id, _, _)| id).collect();
        self.committed
            .retain(|id, _| self.open.contains_key(id) || live.contains(id));
        let reg = Registry {
            files: self
                .committed
                .iter()
                .map(|(id, p)| {
                    (
                        key(*id),
                        Entry {
                            path: p.path.clone(),
                            offset: p.offset,
                            head: to_hex(&p.head),
                        },
                    )
                })
                .collect(),
        };
        let err = |source| TailError::Registry {
            path: self.cfg.registry.clone(),
            source,
        };
        let bytes = serde_json::to_vec_pretty(&reg).expect("a registry serializes");
        crate::files::write_atomic(&self.cfg.registry, &bytes).map_err(err)?;
        self.dirty = false;
        Ok(())
    }

    /// True when the last poll left bytes unread in a file (it read at
    /// most `read_chunk` of each): poll again at once.
    pub fn behind(&self) -> bool {
        self.behind
    }

    /// Files open now.
    pub fn files(&self) -> usize {
        self.open.len()
    }

    /// The registry's path.
    pub fn registry(&self) -> &Path {
        &self.cfg.registry
    }
}

/// Reads one file's new bytes into lines; true when it read to its end.
fn read_lines(
    id: FileId,
    o: &mut Open,
    cfg: &TailConfig,
    counters: &mut TailCounters,
    out: &mut Vec<Line>,
) -> bool {
    let len = match o.file.metadata() {
        Ok(m) => m.len(),
        Err(_) => {
            counters.read_errors += 1;
            return true;
        }
    };
    let position = o.read + o.pending.len() as u64;
    let changed = len != o.seen_len && !o.head.is_empty() && !head_matches(o);
    o.seen_len = len;
    if len < position || changed {
        // Truncated in place (copytruncate): read it again from its start.
        counters.truncations += 1;
        o.read = 0;
        o.pending.clear();
        o.skipping = false;
        o.cut_line = None;
        o.head.clear();
    }
    let from = o.read + o.pending.len() as u64;
    if o.file.seek(SeekFrom::Start(from)).is_err() {
        counters.read_errors += 1;
        return true;
    }
    let mut buf = vec![0u8; cfg.read_chunk.min((len - from.min(len)) as usize)];
    let n = match o.file.read(&mut buf) {
        Ok(n) => n,
        Err(_) => {
            counters.read_errors += 1;
            return true;
        }
    };
    buf.truncate(n);
    counters.bytes += n as u64;
    if o.head.len() < HEAD && from <= o.head.len() as u64 {
        let skip = o.head.len() - from as usize;
        if let Some(more) = buf.get(skip..) {
            let take = more.len().min(HEAD - o.head.len());
            o.head.extend_from_slice(&more[..take]);
        }
    }
    let mut rest = &buf[..];
    while let Some(nl) = rest.iter().position(|&b| b == b'\n') {
        let (part, tail) = (&rest[..nl], &rest[nl + 1..]);
        let consumed = o.pending.len() as u64 + part.len() as u64 + 1;
        if o.skipping {
            o.skipping = false;
            if let Some(kept) = o.cut_line.take() {
                o.pending = kept;
                emit(id, o, consumed, true, counters, out);
            }
        } else {
            o.pending.extend_from_slice(part);
            // CRLF line ends (sshd's -E file, Windows tools) end at the LF.
            if o.pending.last() == Some(&b'\r') {
                o.pending.pop();
            }
            let cut = o.pending.len() > cfg.max_line;
            o.pending.truncate(cfg.max_line);
            emit(id, o, consumed, cut, counters, out);
        }
        o.read += consumed;
        o.pending.clear();
        rest = tail;
    }
    if !rest.is_empty() {
        if o.skipping {
            o.read += rest.len() as u64;
        } else {
            o.pending.extend_from_slice(rest);
            if o.pending.len() > cfg.max_line {
                // Too long to keep: cut now, skip the rest of it, and send
                // the kept part when its newline comes, with the position
                // after it (a restart before then reads the line again).
                o.read += o.pending.len() as u64;
                o.pending.truncate(cfg.max_line);
                o.cut_line = Some(std::mem::take(&mut o.pending));
                o.skipping = true;
            }
        }
    }
    o.read + o.pending.len() as u64 >= len
}

/// True when the file still starts with the bytes first read from it.
fn head_matches(o: &Open) -> bool {
    let mut now = vec![0; o.head.len()];
    match std::os::unix::fs::FileExt::read_exact_at(&o.file, &mut now, 0) {
        Ok(()) => now == o.head,
        Err(_) => false,
    }
}

fn emit(
    id: FileId,
    o: &Open,
    consumed: u64,
    cut: bool,
    counters: &mut TailCounters,
    out: &mut Vec<Line>,
) {
    counters.lines += 1;
    counters.cut += u64::from(cut);
    out.push(Line {
        file: id,
        path: o.path.clone(),
        text: String::from_utf8_lossy(&o.pending).into_owned(),
        end: o.read + consumed,
        cut,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn cfg(dir: &Path, pattern: &str) -> TailConfig {
        TailConfig {
            paths: vec![dir.join(pattern).to_string_lossy().into_owned()],
            registry: dir.join("registry.json"),
            max_line: 64,
            read_chunk: 1 << 20,
            from_start: true,
            follow_symlinks: false,
        }
    }

    /// A log file that is a link out of its directory (a user who can
    /// write the log directory points it at /etc/shadow) is not read, and
    /// counted once; a link within the directory is read.
    #[test]
    fn a_link_out_of_the_directory_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let logs = dir.path().join("logs");
        std::fs::create_dir(&logs).unwrap();
        let secret = dir.path().join("shadow");
        std::fs::write(&secret, "root:$6$hash\n").unwrap();
        std::os::unix::fs::symlink(&secret, logs.join("evil.log")).unwrap();
        std::fs::write(logs.join("real.log.1"), "rotated line\n").unwrap();
        std::os::unix::fs::symlink(logs.join("real.log.1"), logs.join("real.log")).unwrap();
        let mut t = Tailer::new(cfg(&logs, "*.log")).unwrap();
        let text: Vec<String> = t.poll().into_iter().map(|l| l.text).collect();
        assert_eq!(text, ["rotated line"]);
        t.poll();
        assert_eq!(t.counters.symlinks_refused, 1);
    }

    fn append(path: &Path, text: &str) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    /// Polls, delivers (commits) every line, saves; the lines' texts.
    fn drain(t: &mut Tailer) -> Vec<String> {
        let lines = t.poll();
        for l in &lines {
            t.commit(l);
        }
        t.save().unwrap();
        lines.into_iter().map(|l| l.text).collect()
    }

    #[test]
    fn partial_lines_wait_and_long_lines_are_cut() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("app.log");
        append(&log, "one\ntw");
        let mut t = Tailer::new(cfg(dir.path(), "*.log")).unwrap();
        assert_eq!(drain(&mut t), ["one"]);
        append(&log, "o\n");
        assert_eq!(drain(&mut t), ["two"]);
        append(&log, &format!("{}\nthree\n", "x".repeat(100)));
        assert_eq!(drain(&mut t), ["x".repeat(64), "three".into()]);
        // A long line whose end has not come: cut now, its rest skipped,
        // sent when its newline comes (with the position after it).
        append(&log, &"y".repeat(80));
        assert!(drain(&mut t).is_empty());
        append(&log, "yyy\nfour\n");
        assert_eq!(drain(&mut t), ["y".repeat(64), "four".into()]);
        assert_eq!(t.counters.cut, 2);
    }

    #[test]
    fn rotation_by_rename_and_copytruncate_lose_and_repeat_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("auth.log");
        append(&log, "a1\na2\r\n");
        let mut t = Tailer::new(cfg(dir.path(), "auth.log")).unwrap();
        assert_eq!(drain(&mut t), ["a1", "a2"], "a CRLF line ends at its LF");
        // Written just before the rename, then renamed; a new file begins.
        append(&log, "a3\n");
        std::fs::rename(&log, dir.path().join("auth.log.1")).unwrap();
        append(&dir.path().join("auth.log.1"), "a4\n");
        append(&log, "b1\n");
        let mut got = drain(&mut t);
        got.sort();
        assert_eq!(got, ["a3", "a4", "b1"]);
        assert_eq!(t.counters.rotations, 1);
        // copytruncate: copied away, emptied in place, written again.
        append(&log, "b2\n");
        assert_eq!(drain(&mut t), ["b2"]);
        std::fs::copy(&log, dir.path().join("auth.log.2")).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&log)
            .unwrap();
        append(&log, "c1\n");
        assert_eq!(drain(&mut t), ["c1"]);
        assert_eq!(t.counters.truncations, 1);
    }

    #[test]
    fn a_file_emptied_and_written_past_its_old_position_is_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("app.log");
        append(&log, "old 1\nold 2\n");
        let mut t = Tailer::new(cfg(dir.path(), "app.log")).unwrap();
        assert_eq!(drain(&mut t), ["old 1", "old 2"]);
        // Emptied and written longer than before between two polls: its
        // length alone does not tell, its first bytes do.
        std::fs::write(&log, "new 1\nnew 2\nnew 3\n").unwrap();
        assert_eq!(drain(&mut t), ["new 1", "new 2", "new 3"]);
        assert_eq!(t.counters.truncations, 1);
        // The same while the tailer is away: the registry knows the head.
        drop(t);
        std::fs::write(&log, "again 1\nagain 2\nagain 3\nagain 4\n").unwrap();
        let mut t = Tailer::new(cfg(dir.path(), "app.log")).unwrap();
        assert_eq!(drain(&mut t), ["again 1", "again 2", "again 3", "again 4"]);
        // And a restart after a truncation resumes where the new content
        // was delivered up to, not at the old position.
        drop(t);
        append(&log, "again 5\n");
        let mut t = Tailer::new(cfg(dir.path(), "app.log")).unwrap();
        assert_eq!(drain(&mut t), ["again 5"]);
    }

    #[test]
    fn a_backlog_is_read_a_chunk_at_a_time_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("big.log");
        let text: String = (0..100).map(|i| format!("line {i:03}\n")).collect();
        append(&log, &text);
        let mut c = cfg(dir.path(), "big.log");
        c.read_chunk = 300; // 900 bytes: three reads
        let mut t = Tailer::new(c).unwrap();
        let mut got = Vec::new();
        let mut polls = 0;
        loop {
            got.extend(drain(&mut t));
            polls += 1;
            if !t.behind() {
                break;
            }
        }
        assert_eq!(polls, 3);
        assert_eq!(got.len(), 100);
        assert_eq!(got[99], "line 099");
        append(&log, "more\n");
        assert_eq!(drain(&mut t), ["more"]);
        assert!(!t.behind());
    }

    #[test]
    fn a_restart_resumes_at_the_delivered_position() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("app.log");
        append(&log, "1\n2\n3\n");
        let mut t = Tailer::new(cfg(dir.path(), "*.log")).unwrap();
        let lines = t.poll();
        // Only the first two were delivered before the stop.
        t.commit(&lines[1]);
        t.save().unwrap();
        drop(t);
        append(&log, "4\n");
        let mut t = Tailer::new(cfg(dir.path(), "*.log")).unwrap();
        assert_eq!(drain(&mut t), ["3", "4"]);
        drop(t);
        let mut t = Tailer::new(cfg(dir.path(), "*.log")).unwrap();
        assert!(drain(&mut t).is_empty());
        // A file first seen when not reading from the start: from its end.
        let mut c = cfg(dir.path(), "*.txt");
        c.from_start = false;
        append(&dir.path().join("old.txt"), "history\n");
        let mut t = Tailer::new(c).unwrap();
        assert!(drain(&mut t).is_empty());
        append(&dir.path().join("old.txt"), "new\n");
        assert_eq!(drain(&mut t), ["new"]);
    }

    #[test]
    fn a_broken_registry_or_pattern_is_a_named_error() {
        let dir = tempfile::tempdir().unwrap();
        let c = cfg(dir.path(), "*.log");
        std::fs::write(&c.registry, "not json").unwrap();
        let e = Tailer::new(c).err().unwrap();
        assert!(e.to_string().contains("not a registry"), "{e}");
        let mut c = cfg(dir.path(), "[.log");
        c.registry = dir.path().join("r2.json");
        assert!(Tailer::new(c)
            .err()
            .unwrap()
            .to_string()
            .contains("pattern"));
    }
}
