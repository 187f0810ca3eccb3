//! What daisi reads about a process from `/proc`: one place, so every
//! caller gets the same answer for the same process (and the same failure:
//! `None` when the process is gone or not readable).

use std::path::PathBuf;

/// The process's executable (`/proc/<pid>/exe`), as text.
pub fn exe(pid: u32) -> Option<String> {
    std::fs::read_link(format!("/proc/{pid}/exe"))
        .ok()
        .map(|p| p.to_string_lossy().into_owned())
}

/// The process's kernel name (`/proc/<pid>/comm`, at most 15 bytes).
pub fn comm(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|c| c.trim_end().to_string())
}

/// The process's cgroup list (`/proc/<pid>/cgroup`).
pub fn cgroup(pid: u32) -> std::io::Result<String> {
    std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
}

/// Every process id listed in `/proc`.
pub fn pids() -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse().ok()))
        .collect()
}

/// The socket inodes a process holds open (`socket:[N]` links under
/// `/proc/<pid>/fd`).
pub fn socket_inodes(pid: u32) -> Vec<u64> {
    let Ok(fds) = std::fs::read_dir(PathBuf::from(format!("/proc/{pid}/fd"))) else {
        return Vec::new();
    };
    fds.flatten()
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .filter_map(|t| {
            t.to_str()?
                .strip_prefix("socket:[")?
                .strip_suffix(']')?
                .parse()
                .ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn this_process_is_readable() {
        let me = std::process::id();
        assert_eq!(
            super::exe(me).map(std::path::PathBuf::from),
            std::env::current_exe().ok()
        );
        assert!(super::comm(me).is_some_and(|c| !c.is_empty() && c.len() <= 15));
        assert!(super::pids().contains(&me));
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        drop(l.local_addr());
        assert!(!super::socket_inodes(me).is_empty());
        assert_eq!(super::exe(u32::MAX), None);
    }
}
