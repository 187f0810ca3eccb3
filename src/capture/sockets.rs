//! Which local process owns a flow's socket, from `/proc` (the collector's
//! process–flow attribution): `/proc/net/{tcp,tcp6,udp,udp6}` give the
//! socket's inode for a local address and port, and the `socket:[inode]`
//! links under `/proc/<pid>/fd` give its process. The fd scan is the costly
//! part, so its result is cached and redone at most every `rescan` when an
//! inode is not found. Only sockets of the network namespace daisi runs in
//! are visible.

use crate::flows::Endpoint;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

/// A process owning a socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub pid: u32,
    pub exe: Option<String>,
}

/// Cached socket → process lookups.
pub struct SocketOwners {
    by_inode: HashMap<u64, Owner>,
    scanned: Option<Instant>,
    rescan: Duration,
    /// fd scans done (for cost accounting).
    pub scans: u64,
}

/// Parses a `/proc/net/tcp`-style address (`0100007F:1F90`, host byte order
/// per 32-bit word) into an endpoint.
fn parse_addr(s: &str) -> Option<Endpoint> {
    let (ip, port) = s.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let ip = match ip.len() {
        8 => IpAddr::V4(Ipv4Addr::from(
            u32::from_str_radix(ip, 16).ok()?.swap_bytes(),
        )),
        32 => {
            let mut b = [0u8; 16];
            for w in 0..4 {
                let word = u32::from_str_radix(&ip[w * 8..w * 8 + 8], 16).ok()?;
                b[w * 4..w * 4 + 4].copy_from_slice(&word.to_le_bytes());
            }
            IpAddr::V6(Ipv6Addr::from(b))
        }
        _ => return None,
    };
    Some((ip, port))
}

/// The inode of the socket in a `/proc/net` table whose local end is
/// `local` (and, when the table row has one, remote end `remote`).
fn inode_in(table: &str, local: Endpoint, remote: Endpoint) -> Option<u64> {
    let mut listener = None;
    for line in table.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 10 {
            continue;
        }
        let (Some(l), Some(r)) = (parse_addr(f[1]), parse_addr(f[2])) else {
            continue;
        };
        let inode: u64 = f[9].parse().ok()?;
        if inode == 0 || l.1 != local.1 {
            continue;
        }
        let ip_ok = l.0 == local.0 || l.0.is_unspecified();
        if !ip_ok {
            continue;
        }
        if r == remote {
            return Some(inode);
        }
        if r.1 == 0 {
            // A listening (or unconnected UDP) socket on that port.
            listener = Some(inode);
        }
    }
    listener
}

impl SocketOwners {
    pub fn new(rescan: Duration) -> Self {
        Self {
            by_inode: HashMap::new(),
            scanned: None,
            rescan,
            scans: 0,
        }
    }

    fn scan(&mut self) {
        self.scans += 1;
        self.by_inode.clear();
        for pid in crate::procfs::pids() {
            let inodes = crate::procfs::socket_inodes(pid);
            if inodes.is_empty() {
                continue;
            }
            let exe = crate::procfs::exe(pid);
            for inode in inodes {
                self.by_inode.entry(inode).or_insert(Owner {
                    pid,
                    exe: exe.clone(),
                });
            }
        }
        self.scanned = Some(Instant::now());
    }

    /// The local process of a flow between `a` and `b` (either may be the
    /// local end), if its socket is still open.
    pub fn owner(&mut self, proto: u8, a: Endpoint, b: Endpoint) -> Option<Owner> {
        let tables: &[&str] = match proto {
            6 => &["/proc/net/tcp", "/proc/net/tcp6"],
            17 => &["/proc/net/udp", "/proc/net/udp6"],
            _ => return None,
        };
        let mut inode = None;
        'found: for t in tables {
            let Ok(text) = std::fs::read_to_string(t) else {
                continue;
            };
            for (local, remote) in [(a, b), (b, a)] {
                if let Some(i) = inode_in(&text, local, remote) {
                    inode = Some(i);
                    break 'found;
                }
            }
        }
        let inode = inode?;
        if let Some(o) = self.by_inode.get(&inode) {
            return Some(o.clone());
        }
        if self.scanned.is_none_or(|t| t.elapsed() >= self.rescan) {
            self.scan();
        }
        self.by_inode.get(&inode).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_net_addresses_parse() {
        assert_eq!(
            parse_addr("0100007F:1F90"),
            Some((IpAddr::V4(Ipv4Addr::LOCALHOST), 8080))
        );
        assert_eq!(
            parse_addr("00000000000000000000000001000000:0016"),
            Some((IpAddr::V6(Ipv6Addr::LOCALHOST), 22))
        );
        assert_eq!(parse_addr("zz:1"), None);
    }

    /// A real socket of this test process is found, with its pid and exe.
    #[test]
    fn finds_the_owner_of_a_live_connection() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let server = listener.local_addr().unwrap();
        let client = std::net::TcpStream::connect(server).unwrap();
        let (_accepted, _) = listener.accept().unwrap();
        let c = client.local_addr().unwrap();
        let mut owners = SocketOwners::new(Duration::from_millis(10));
        let o = owners
            .owner(6, (c.ip(), c.port()), (server.ip(), server.port()))
            .expect("owner found");
        assert_eq!(o.pid, std::process::id());
        let me = std::env::current_exe().unwrap();
        assert_eq!(o.exe.as_deref(), Some(me.to_str().unwrap()));
        assert_eq!(owners.scans, 1);
        // A second lookup is served from the cache.
        owners.owner(6, (server.ip(), server.port()), (c.ip(), c.port()));
        assert_eq!(owners.scans, 1);
        // No socket: nothing.
        assert!(owners.owner(6, (c.ip(), 1), (server.ip(), 2)).is_none());
    }
}
