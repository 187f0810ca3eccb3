//! The log tailer: any bytes a monitored program appends to a log file,
//! in any pieces, against any line bound. Every complete line comes out
//! once, in order, as written (its CR dropped, cut at the bound and
//! flagged), with its end position; nothing of an unfinished line.
//!
//! Input: byte 0 the line bound (1..=128), byte 1 the piece size
//! (1..=256), then the file's bytes.
#![no_main]
use daisi::logs::tail::{TailConfig, Tailer};
use libfuzzer_sys::fuzz_target;
use std::io::Write;

fuzz_target!(|data: &[u8]| {
    let [bound, piece, content @ ..] = data else {
        return;
    };
    let max_line = 1 + usize::from(*bound) % 128;
    let piece = 1 + usize::from(*piece);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("app.log");
    let mut file = std::fs::File::create(&path).expect("the log file");
    let mut tailer = Tailer::new(TailConfig {
        paths: vec![path.display().to_string()],
        registry: dir.path().join("registry.json"),
        max_line,
        read_chunk: 64,
        from_start: true,
        follow_symlinks: false,
    })
    .expect("a tailer");
    let mut got = Vec::new();
    for chunk in content.chunks(piece) {
        file.write_all(chunk).expect("appended");
        got.extend(tailer.poll());
    }
    // Read what is left (a poll reads at most read_chunk bytes per file).
    for _ in 0..=content.len() / 64 + 1 {
        got.extend(tailer.poll());
    }
    assert!(!tailer.behind(), "bytes left unread");

    let mut want = Vec::new();
    let mut at = 0u64;
    let mut parts: Vec<&[u8]> = content.split(|&b| b == b'\n').collect();
    parts.pop(); // after the last newline: unfinished
    for p in parts {
        at += p.len() as u64 + 1;
        let p = p.strip_suffix(b"\r").unwrap_or(p);
        let cut = p.len() > max_line;
        let kept = &p[..p.len().min(max_line)];
        want.push((String::from_utf8_lossy(kept).into_owned(), cut, at));
    }
    let got: Vec<(String, bool, u64)> = got.into_iter().map(|l| (l.text, l.cut, l.end)).collect();
    assert_eq!(got, want);
    assert_eq!(tailer.counters.truncations, 0);
});
