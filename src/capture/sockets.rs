//! Which local process owns a flow's socket, from `/proc` (the collector's
//! process–flow attribution): `/proc/net/{tcp,tcp6,udp,udp6}` give the
//! socket's inode for a local address and port, and the `socket:[inode]`
//! links under `/proc/<pid>/fd` give its process. The fd scan is the costly
//! part, so its result is cached and redone at most every `rescan` when an
//! inode is not found. The socket tables are read and indexed once per
//! batch of packets ([`SocketOwners::next_batch`]), not once per new flow:
//! a scan or a SYN flood starts thousands of flows a second and fills the
//! tables with half-open connections, and reading them per flow would
//! delay every flow behind it. A batch's packets were sent before it was
//! read, so their sockets are in tables read after. Only sockets of the
//! network namespace daisi runs in are visible.

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

/// One protocol's socket tables (v4 and v6), indexed.
#[derive(Default)]
struct Table {
    /// Connected sockets by (local, remote) end.
    exact: HashMap<(Endpoint, Endpoint), u64>,
    /// Listening (or unconnected UDP) sockets by local port: address and
    /// inode, in table order.
    listeners: HashMap<u16, Vec<(IpAddr, u64)>>,
}

impl Table {
    fn read(paths: &[&str]) -> Table {
        let mut t = Table::default();
        for p in paths {
            if let Ok(text) = std::fs::read_to_string(p) {
                t.add(&text);
            }
        }
        t
    }

    fn add(&mut self, text: &str) {
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 10 {
                continue;
            }
            let (Some(l), Some(r), Ok(inode)) =
                (parse_addr(f[1]), parse_addr(f[2]), f[9].parse::<u64>())
            else {
                continue;
            };
            if inode == 0 {
                continue;
            }
            self.exact.entry((l, r)).or_insert(inode);
            if r.1 == 0 {
                self.listeners.entry(l.1).or_default().push((l.0, inode));
            }
        }
    }

    /// The socket whose local end is `local` and remote end `remote`, else
    /// the last listener on `local`'s port (its address or any).
    fn inode(&self, local: Endpoint, remote: Endpoint) -> Option<u64> {
        if let Some(&i) = self.exact.get(&(local, remote)) {
            return Some(i);
        }
        self.listeners
            .get(&local.1)?
            .iter()
            .rev()
            .find(|(ip, _)| *ip == local.0 || ip.is_unspecified())
            .map(|&(_, i)| i)
    }
}

/// Cached socket → process lookups.
pub struct SocketOwners {
    /// The TCP and UDP tables as read for the current batch.
    tcp: Option<Table>,
    udp: Option<Table>,
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

impl SocketOwners {
    pub fn new(rescan: Duration) -> Self {
        Self {
            tcp: None,
            udp: None,
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

    /// A new batch of packets: the socket tables are read again at the
    /// next lookup.
    pub fn next_batch(&mut self) {
        self.tcp = None;
        self.udp = None;
    }

    /// The local process of a flow between `a` and `b` (either may be the
    /// local end), if its socket is still open (in the tables as read for
    /// this batch).
    pub fn owner(&mut self, proto: u8, a: Endpoint, b: Endpoint) -> Option<Owner> {
        let table = match proto {
            6 => self
                .tcp
                .get_or_insert_with(|| Table::read(&["/proc/net/tcp", "/proc/net/tcp6"])),
            17 => self
                .udp
                .get_or_insert_with(|| Table::read(&["/proc/net/udp", "/proc/net/udp6"])),
            _ => return None,
        };
        let inode = table.inode(a, b).or_else(|| table.inode(b, a))?;
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
        // A socket opened since the tables were read: seen from the next
        // batch on.
        let later = std::net::TcpStream::connect(server).unwrap();
        let (_accepted2, _) = listener.accept().unwrap();
        let l = later.local_addr().unwrap();
        let l = (l.ip(), l.port());
        let to_server = (server.ip(), server.port());
        let connected =
            |o: &SocketOwners| o.tcp.as_ref().unwrap().exact.contains_key(&(l, to_server));
        owners.owner(6, l, to_server);
        assert!(
            !connected(&owners),
            "not in the tables read before it opened"
        );
        owners.next_batch();
        // Past the rescan interval (10 ms): the new socket's owner may be
        // looked up in /proc again (on a fast machine this test reached
        // here within 10 ms of the first scan and failed).
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(
            owners.owner(6, l, to_server).map(|o| o.pid),
            Some(std::process::id())
        );
        assert!(connected(&owners), "read again for the new batch");
    }

    /// Rows of a socket table: a connection found by both ends, a
    /// listener on any address by its port, malformed rows skipped.
    #[test]
    fn socket_tables_are_indexed_by_ends_and_listening_port() {
        let mut t = Table::default();
        t.add(concat!(
            "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n",
            "   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 111 1\n",
            "   1: 0100007F:1F90 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 222 1\n",
            "   2: 0100007F:1F91 0100007F:9C41 01 00000000:00000000 00:00000000 00000000     0        0 bad 1\n",
            "   3: short row\n",
        ));
        let lo = |port| (IpAddr::V4(Ipv4Addr::LOCALHOST), port);
        assert_eq!(t.inode(lo(8080), lo(40000)), Some(222));
        assert_eq!(t.inode(lo(22), lo(50000)), Some(111), "the listener on :22");
        assert_eq!(t.inode(lo(8081), lo(40001)), None, "a bad inode is skipped");
        assert_eq!(t.inode(lo(9), lo(1)), None);
    }
}
