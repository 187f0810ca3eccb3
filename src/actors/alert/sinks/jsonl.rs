//! The JSON Lines alert file, rotated by size.

use super::{Sink, SinkError};
use crate::messages::Alert;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// An append-only JSON Lines file, rotated by size: `alerts.jsonl` →
/// `alerts.jsonl.1` → … → `alerts.jsonl.<keep>` (the oldest is removed).
pub struct JsonlSink {
    path: PathBuf,
    file: File,
    size: u64,
    max_bytes: u64,
    keep: usize,
}

fn open(path: &Path) -> std::io::Result<(File, u64)> {
    let file = crate::files::append(path)?;
    let size = file.metadata()?.len();
    Ok((file, size))
}

impl JsonlSink {
    /// Opens (or creates) the file; `max_bytes` 0 never rotates.
    pub fn open(path: &Path, max_bytes: u64, keep: usize) -> std::io::Result<JsonlSink> {
        let (file, size) = open(path)?;
        Ok(JsonlSink {
            path: path.to_path_buf(),
            file,
            size,
            max_bytes,
            keep,
        })
    }

    fn rotated(&self, n: usize) -> PathBuf {
        let mut p = self.path.clone().into_os_string();
        p.push(format!(".{n}"));
        PathBuf::from(p)
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        self.file.sync_all()?;
        if self.keep == 0 {
            std::fs::remove_file(&self.path)?;
        } else {
            let _ = std::fs::remove_file(self.rotated(self.keep));
            for n in (1..self.keep).rev() {
                let from = self.rotated(n);
                if from.exists() {
                    std::fs::rename(&from, self.rotated(n + 1))?;
                }
            }
            std::fs::rename(&self.path, self.rotated(1))?;
        }
        (self.file, self.size) = open(&self.path)?;
        Ok(())
    }

    /// Appends one alert as a line (rotating first when it would not fit)
    /// and flushes it to the OS.
    pub fn write(&mut self, alert: &Alert) -> std::io::Result<()> {
        let mut line = serde_json::to_string(alert).expect("alert serializes");
        line.push('\n');
        if self.max_bytes > 0 && self.size > 0 && self.size + line.len() as u64 > self.max_bytes {
            self.rotate()?;
        }
        self.file.write_all(line.as_bytes())?;
        self.file.flush()?;
        self.size += line.len() as u64;
        Ok(())
    }
}

impl Sink for JsonlSink {
    fn name(&self) -> &'static str {
        "jsonl"
    }
    fn send(&mut self, alert: &Alert) -> Result<(), SinkError> {
        self.write(alert).map_err(SinkError::Io)
    }
    fn sync(&mut self) {
        let _ = self.file.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(i: u64) -> Alert {
        let mut a = crate::messages::sample_alert();
        a.id = format!("a{i}");
        a.ts_ns = i;
        a.first_seen_ns = i;
        a.last_seen_ns = i;
        a
    }

    #[test]
    fn rotates_by_size_and_keeps_the_newest_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alerts.jsonl");
        let one = serde_json::to_string(&alert(1)).unwrap().len() as u64 + 1;
        // Room for three lines per file, two rotated files kept.
        let mut s = JsonlSink::open(&path, 3 * one + 2, 2).unwrap();
        for i in 1..=10 {
            s.write(&alert(i)).unwrap();
        }
        let ids = |p: &Path| -> Vec<String> {
            std::fs::read_to_string(p)
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str::<Alert>(l).unwrap().id)
                .collect()
        };
        // 10 alerts: a1..a3 (dropped), a4..a6, a7..a9, a10.
        assert_eq!(ids(&path), ["a10"]);
        assert_eq!(ids(&dir.path().join("alerts.jsonl.1")), ["a7", "a8", "a9"]);
        assert_eq!(ids(&dir.path().join("alerts.jsonl.2")), ["a4", "a5", "a6"]);
        assert!(!dir.path().join("alerts.jsonl.3").exists());
        // Reopening appends to the current file and knows its size.
        let mut s = JsonlSink::open(&path, 3 * one + 2, 2).unwrap();
        s.write(&alert(11)).unwrap();
        assert_eq!(ids(&path), ["a10", "a11"]);
    }
}
