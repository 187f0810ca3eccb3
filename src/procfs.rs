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

/// The process's arguments (`/proc/<pid>/cmdline`, NUL separated).
pub fn cmdline(pid: u32) -> Option<Vec<String>> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(split_args(&raw))
}

/// Arguments as the kernel keeps them: NUL-separated, NUL-terminated
/// (invalid UTF-8 replaced).
pub fn split_args(raw: &[u8]) -> Vec<String> {
    let raw = raw.strip_suffix(&[0]).unwrap_or(raw);
    if raw.is_empty() {
        return Vec::new();
    }
    raw.split(|&b| b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

/// A process's parent and real user and group ids (`/proc/<pid>/status`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ids {
    pub ppid: u32,
    pub uid: u32,
    pub gid: u32,
}

pub fn status_ids(pid: u32) -> Option<Ids> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
    };
    Some(Ids {
        ppid: field("PPid:")?,
        uid: field("Uid:")?,
        gid: field("Gid:")?,
    })
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

/// An executable's path with symlinks resolved, as `/proc/<pid>/exe`
/// shows it (the path as given when it cannot be resolved: a deleted
/// file, another mount namespace).
pub fn resolved(path: &str) -> String {
    std::fs::canonicalize(path)
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|_| path.to_string())
}

/// When the process started, CLOCK_BOOTTIME ns (`/proc/<pid>/stat`,
/// field 22, in clock ticks).
pub fn start_boot_ns(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The name may hold spaces and parentheses: fields follow its last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let ticks: u64 = rest.split_whitespace().nth(19)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let hz = u64::try_from(hz).ok().filter(|&h| h > 0)?;
    Some(ticks.saturating_mul(1_000_000_000) / hz)
}

/// A CLOCK_BOOTTIME time (the kernel's event clock) as Unix ns.
pub fn unix_ns_of_boot(boot_ns: u64) -> u64 {
    let now = |clock| {
        let mut t = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `t` is a valid timespec to write to.
        unsafe { libc::clock_gettime(clock, &mut t) };
        t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
    };
    let offset = now(libc::CLOCK_REALTIME).saturating_sub(now(libc::CLOCK_BOOTTIME));
    boot_ns + offset
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
        let ids = super::status_ids(me).unwrap();
        // SAFETY: getuid/getppid have no preconditions.
        assert_eq!(ids.uid, unsafe { libc::getuid() });
        assert_eq!(ids.ppid, unsafe { libc::getppid() } as u32);
        let args = super::cmdline(me).unwrap();
        assert_eq!(args, std::env::args().collect::<Vec<_>>());
        assert_eq!(super::split_args(b"sh\0-c\0id\0"), ["sh", "-c", "id"]);
        assert!(super::split_args(b"").is_empty());
        let _socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        assert!(!super::socket_inodes(me).is_empty());
        assert_eq!(super::exe(u32::MAX), None);
    }
}
