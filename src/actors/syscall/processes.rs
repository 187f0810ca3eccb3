//! The collector's process table: who each watched process is (name,
//! executable, arguments, user, cgroup) and who started it.
//!
//! Filled from the kernel's fork and exec records and, for a process first
//! seen otherwise (running before capture started), from `/proc`. A child
//! forked without exec inherits its parent's identity until it execs, so no
//! process is ever unnamed. Bounded: the least recently seen entry goes
//! first (`processes.evicted`). Exited processes stay until evicted, so a
//! child still names a parent that has already gone.
//!
//! User names come from the C library's user database (`/etc/passwd`,
//! LDAP, sssd: whatever NSS is configured with), looked up once per uid and
//! again after [`UserNames::FRESH`]; a process in a container has none (its
//! uids name the image's users, not the host's).
//!
//! Arguments may hold secrets: [`Redaction`] rewrites them here, on the
//! collector, before anything leaves the host.

use crate::capture::ebpf::Exec;
use crate::messages::{ContainerFields, ProcessInfo};
use crate::metrics::{Counter, Metrics};
use lru::LruCache;
use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

pub use crate::redact::{Redaction, REDACTED};

/// The host's user names by uid, cached (see the module documentation).
#[derive(Default)]
pub struct UserNames {
    known: HashMap<u32, (Option<String>, Instant)>,
}

impl UserNames {
    /// How long a name (or its absence) is trusted before it is looked up
    /// again: users are added and renamed while the collector runs.
    pub const FRESH: Duration = Duration::from_secs(60);
    /// At most this many uids are remembered; past it the cache starts over.
    const CAPACITY: usize = 4096;

    pub fn of(&mut self, uid: u32) -> Option<String> {
        let now = Instant::now();
        if let Some((name, at)) = self.known.get(&uid) {
            if now.duration_since(*at) < Self::FRESH {
                return name.clone();
            }
        }
        let name = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
            .ok()
            .flatten()
            .map(|u| u.name);
        if self.known.len() >= Self::CAPACITY {
            self.known.clear();
        }
        self.known.insert(uid, (name.clone(), now));
        name
    }

    /// The name of a process's user on this host: none in a container.
    fn of_process(
        &mut self,
        uid: Option<u32>,
        container: &Option<ContainerFields>,
    ) -> Option<String> {
        match (uid, container) {
            (Some(uid), None) => self.of(uid),
            _ => None,
        }
    }
}

/// The table (see the module documentation).
pub struct ProcessTable {
    known: LruCache<u32, ProcessInfo>,
    redaction: Redaction,
    ancestors: usize,
    evicted: Counter,
    args_cut: Counter,
    redacted: Counter,
    containers: crate::containers::Containers,
    users: UserNames,
}

impl ProcessTable {
    /// `capacity` processes; lineages of at most `ancestors` ancestors.
    pub fn new(capacity: usize, ancestors: usize, redaction: Redaction, m: &Metrics) -> Self {
        Self {
            known: LruCache::new(NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN)),
            redaction,
            ancestors,
            evicted: m.counter("processes.evicted"),
            args_cut: m.counter("processes.args_cut"),
            redacted: m.counter("processes.args_redacted"),
            containers: crate::containers::Containers::new(&[]),
            users: UserNames::default(),
        }
    }

    /// Container images are looked up in these stores (podman's or
    /// docker's roots; `crate::containers`).
    pub fn with_container_stores(mut self, stores: &[std::path::PathBuf]) -> Self {
        self.containers = crate::containers::Containers::new(stores);
        self
    }

    fn put(&mut self, info: ProcessInfo) {
        if let Some((old, _)) = self.known.push(info.pid, info) {
            // `push` hands back the entry it replaced too: only a different
            // pid is an eviction.
            if !self.known.contains(&old) {
                self.evicted.inc();
            }
        }
    }

    fn redact(&self, args: &mut [String]) {
        if self.redaction.apply(args) {
            self.redacted.inc();
        }
    }

    /// What `/proc` says of a process first seen by its system calls;
    /// `name` when it is gone already (else `pid <pid>`).
    fn read_proc(&mut self, pid: u32, name: Option<&str>) -> ProcessInfo {
        let ids = crate::procfs::status_ids(pid);
        let mut args = crate::procfs::cmdline(pid).unwrap_or_default();
        self.redact(&mut args);
        let container = self.containers.of_pid(pid);
        let uid = ids.map(|i| i.uid);
        ProcessInfo {
            pid,
            ppid: ids.map(|i| i.ppid),
            name: crate::procfs::comm(pid)
                .or_else(|| name.map(str::to_string))
                .unwrap_or_else(|| format!("pid {pid}")),
            executable: crate::procfs::exe(pid),
            args,
            uid,
            user_name: self.users.of_process(uid, &container),
            gid: ids.map(|i| i.gid),
            cgroup: None,
            start_ns: crate::procfs::start_boot_ns(pid).map(crate::procfs::unix_ns_of_boot),
            container,
        }
    }

    /// The process, learnt from `/proc` when not known yet.
    pub fn get(&mut self, pid: u32) -> &ProcessInfo {
        if !self.known.contains(&pid) {
            let info = self.read_proc(pid, None);
            self.put(info);
        }
        self.known.get(&pid).expect("just inserted")
    }

    /// A new program in `pid`: everything but the pid is new.
    pub fn exec(&mut self, e: Exec) {
        if e.args_cut {
            self.args_cut.inc();
        }
        // The parent may be gone before anyone reads `/proc`: its name
        // from the kernel, unless the table knows it already.
        if e.ppid > 1 && !self.known.contains(&e.ppid) {
            let parent = self.read_proc(e.ppid, Some(&e.parent_comm));
            self.put(parent);
        }
        let mut args = e.args;
        self.redact(&mut args);
        // The process started at its fork, when the table saw it.
        let before = self.known.peek(&e.pid);
        let start_ns = before
            .and_then(|p| p.start_ns)
            .or(Some(crate::procfs::unix_ns_of_boot(e.ts_ns)));
        // A process gone before `/proc` is read stays in its fork's
        // container.
        let inherited = before.and_then(|p| p.container.clone());
        let container = self.containers.of_pid(e.pid).or(inherited);
        let user_name = self.users.of_process(Some(e.uid), &container);
        self.put(ProcessInfo {
            pid: e.pid,
            ppid: Some(e.ppid).filter(|&p| p != 0),
            name: e.comm,
            // One name per program: the path as invoked may be a symlink
            // (`/bin/sh`, `python3`), /proc names the file itself.
            executable: e
                .path
                .map(|p| crate::procfs::resolved(&p))
                .or_else(|| crate::procfs::exe(e.pid)),
            args,
            uid: Some(e.uid),
            user_name,
            gid: Some(e.gid),
            cgroup: Some(e.cgroup),
            start_ns,
            container,
        });
    }

    /// A new process: its parent's identity until it execs.
    pub fn fork(&mut self, pid: u32, parent: u32, comm: String, ts_ns: u64) {
        let mut info = self.get(parent).clone();
        info.pid = pid;
        info.ppid = Some(parent);
        info.name = comm;
        info.start_ns = Some(crate::procfs::unix_ns_of_boot(ts_ns));
        self.put(info);
    }

    /// The process, then its parent, grandparent... (at most the table's
    /// `ancestors`), as far as they are known or readable.
    pub fn lineage(&mut self, pid: u32) -> Vec<ProcessInfo> {
        let mut out = vec![self.get(pid).clone()];
        while out.len() <= self.ancestors {
            let Some(ppid) = out.last().and_then(|p| p.ppid).filter(|&p| p > 1) else {
                break;
            };
            if out.iter().any(|p| p.pid == ppid) {
                break; // a cycle from a reused pid: stop
            }
            out.push(self.get(ppid).clone());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_forked_child_inherits_its_parents_identity_and_lineage_is_bounded() {
        let m = Metrics::new();
        let mut t = ProcessTable::new(16, 2, Redaction::default(), &m);
        let exec = |pid, ppid, name: &str| Exec {
            pid,
            tid: pid,
            ts_ns: 0,
            ppid,
            parent_comm: "init".into(),
            comm: name.into(),
            path: Some(format!("/opt/daisi-test/{name}")),
            args: args(&[name, "-c", "x"]),
            args_cut: false,
            uid: 33,
            gid: 33,
            cgroup: 7,
        };
        t.exec(exec(4_000_010, 4_000_001, "python3"));
        t.fork(4_000_011, 4_000_010, "python3".into(), 0);
        t.exec(exec(4_000_011, 4_000_010, "sh"));
        t.fork(4_000_012, 4_000_011, "sh".into(), 0);
        let child = t.get(4_000_012).clone();
        assert_eq!(child.name, "sh");
        assert_eq!(child.executable.as_deref(), Some("/opt/daisi-test/sh"));
        assert_eq!(child.uid, Some(33));
        // Debian's base-passwd fixes uid 33.
        assert_eq!(child.user_name.as_deref(), Some("www-data"));
        let l = t.lineage(4_000_012);
        let pids: Vec<u32> = l.iter().map(|p| p.pid).collect();
        assert_eq!(
            pids,
            [4_000_012, 4_000_011, 4_000_010],
            "itself and 2 ancestors"
        );
        assert_eq!(l[2].name, "python3");
    }

    #[test]
    fn user_names_come_from_the_user_database_and_none_in_containers() {
        let mut u = UserNames::default();
        assert_eq!(u.of(0).as_deref(), Some("root"));
        assert_eq!(u.of(65534).as_deref(), Some("nobody"));
        assert_eq!(u.of(3_999_999_999), None, "no such user");
        let c = Some(ContainerFields {
            id: "c".into(),
            image: None,
        });
        assert_eq!(u.of_process(Some(0), &c), None);
        assert_eq!(u.of_process(None, &None), None);
        assert_eq!(u.of_process(Some(0), &None).as_deref(), Some("root"));
    }

    #[test]
    fn the_table_is_bounded_and_counts_evictions() {
        let m = Metrics::new();
        let mut t = ProcessTable::new(2, 4, Redaction::default(), &m);
        for pid in [4_100_001, 4_100_002, 4_100_003] {
            t.fork(pid, 1, "x".into(), 0);
        }
        assert_eq!(m.get("processes.evicted"), 2, "the first two children went");
        t.fork(4_100_003, 1, "y".into(), 0);
        assert_eq!(t.get(4_100_003).name, "y");
    }
}
