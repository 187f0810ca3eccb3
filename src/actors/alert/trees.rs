//! One incident per process tree.
//!
//! An attack on a host is a tree of processes (a server spawns a shell,
//! the shell runs tools), and a per-process detector flags many of them.
//! Findings about processes whose lineage (from the collector's process
//! table) meets an open tree join that tree's incident instead of going
//! out alone: the first finding opens the incident (module `incident`,
//! entity `tree:<root pid>`, out at once); later ones update it (same id,
//! a larger count, the tree grown), written when the tree has been quiet
//! for `alert.cooldown` or the node stops. Network alerts of a process of
//! an open tree join it too.
//!
//! The root is the parent of the first process found (the process that
//! spawned it: the exploited server, the login shell), or that process
//! itself when its parent is PID 1 or unknown, so that unrelated services
//! do not all meet in one tree under init. From there the root climbs
//! through the server's own forks (ancestors with the same executable:
//! sshd's listener, monitor and session processes, PostgreSQL's postmaster
//! and backends, nested shells), so that two sessions of one attack on one
//! service are one incident. A finding about an ancestor of an open tree's
//! root grows that tree up to it.

use crate::messages::{
    Alert, AlertModule, Finding, ProcessFields, ProcessInfo, Severity, TreeMember,
};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::{Duration, Instant};

/// Processes an incident lists at most (later ones still count, in
/// `count` and `related`'s bound).
const MAX_MEMBERS: usize = 256;

/// Shells: a shell started by something that is neither a shell nor a
/// login path is how most attacks on a service begin.
const SHELLS: [&str; 7] = ["sh", "dash", "bash", "zsh", "ash", "ksh", "busybox"];
const LOGIN_PATHS: [&str; 9] = [
    "sshd",
    "login",
    "su",
    "sudo",
    "tmux: server",
    "screen",
    "systemd",
    "cron",
    "agetty",
];

struct Tree {
    host: String,
    /// Every pid of the tree: the root, the processes found and those
    /// between them.
    pids: BTreeSet<u32>,
    /// The root's ancestors, nearest first (to grow the tree up to one
    /// that is found later).
    above: Vec<ProcessInfo>,
    alert: Alert,
    last: Instant,
    /// Joined since it was last written.
    dirty: bool,
    /// The latest log alert joined by its user's name: the user, and the
    /// alert.
    by_user: Option<(String, Alert)>,
}

impl Tree {
    /// The summary and severity again, after the tree or its log grew.
    fn refresh(&mut self) {
        let tree = &self.alert.tree;
        self.alert.summary = summary(tree);
        let mut sev = severity(tree);
        if let Some((user, log)) = &self.by_user {
            self.alert
                .summary
                .push_str(&format!("; its user {user} in the logs: {}", log.summary));
            sev = one_step_up(sev.max(log.severity));
        }
        // Never less severe than it was written.
        self.alert.severity = self.alert.severity.max(sev);
    }

    /// Counts a flow or log alert into the incident; false when it was
    /// already.
    fn take(&mut self, alert: &Alert) -> bool {
        if self.alert.related.contains(&alert.id) {
            return false;
        }
        if self.alert.related.len() < MAX_MEMBERS {
            self.alert.related.push(alert.id.clone());
        }
        self.alert.count += 1;
        self.alert.last_seen_ns = self.alert.last_seen_ns.max(alert.ts_ns);
        true
    }

    /// After it grew: summary and severity again, quiet time from now.
    fn grown(&mut self) {
        self.refresh();
        self.last = Instant::now();
        self.dirty = true;
    }
}

/// The open trees (bounded: the quietest is closed first).
pub struct Trees {
    quiet: Duration,
    max: usize,
    open: Vec<Tree>,
}

/// What became of a detection.
pub enum Outcome {
    /// It opened a tree: raise this incident now.
    Opened(Box<Alert>),
    /// It joined an open tree (the update goes out later); `first` when it
    /// is the first finding about its process.
    Joined { first: bool },
}

impl Trees {
    pub fn new(quiet: Duration, max: usize) -> Self {
        Self {
            quiet,
            max: max.max(1),
            open: Vec::new(),
        }
    }

    /// A detection about the process `lineage[0]` (its ancestors after
    /// it). `alert` has its id, time and node already.
    pub fn add(&mut self, alert: Alert, lineage: &[ProcessInfo]) -> Outcome {
        let pid = lineage[0].pid;
        let finding = Finding::of(&alert);
        let host = alert.host.clone();
        if let Some(t) = self.open.iter_mut().find(|t| {
            t.host == host
                && (lineage.iter().any(|p| t.pids.contains(&p.pid))
                    || t.above.iter().any(|p| p.pid == pid))
        }) {
            // An ancestor of the root found: the tree grows up to it.
            if let Some(up) = t.above.iter().position(|p| p.pid == pid) {
                for p in t.above.drain(..=up) {
                    t.pids.insert(p.pid);
                    t.alert.tree.insert(0, member(&p));
                }
                t.alert.process = ProcessFields::from_lineage(lineage);
            }
            // The root itself found: the tree grows up to its parent (the
            // service that started it), unless that is init.
            let is_root = t.alert.tree.first().is_some_and(|m| m.process.pid == pid);
            if let Some(parent) = lineage.get(1).filter(|p| is_root && p.pid > 1) {
                if t.pids.insert(parent.pid) {
                    t.alert.tree.insert(0, member(parent));
                    t.alert.process = ProcessFields::from_lineage(&lineage[1..]);
                    t.above = ancestors(&lineage[2..]);
                }
            }
            // The chain from the tree down to this process.
            let known = lineage
                .iter()
                .position(|p| t.pids.contains(&p.pid))
                .unwrap_or(0);
            for p in lineage[..known].iter().rev() {
                t.pids.insert(p.pid);
                if t.alert.tree.len() < MAX_MEMBERS {
                    t.alert.tree.push(member(p));
                }
            }
            let first = match t.alert.tree.iter_mut().find(|m| m.process.pid == pid) {
                Some(m) => {
                    let first = m.findings.is_empty();
                    m.findings.push(finding);
                    first
                }
                None => true, // past MAX_MEMBERS: counted, not listed
            };
            t.alert.count += 1;
            t.alert.last_seen_ns = alert.ts_ns;
            t.alert.score = t.alert.score.max(alert.score);
            if t.alert.related.len() < MAX_MEMBERS {
                t.alert.related.push(alert.id);
            }
            t.refresh();
            t.last = Instant::now();
            t.dirty = true;
            return Outcome::Joined { first };
        }
        // A new tree, rooted at the process's parent unless that is init,
        // then up through the server's own forks.
        let mut root_at = match lineage.get(1) {
            Some(parent) if parent.pid > 1 => 1,
            _ => 0,
        };
        while let Some(up) = lineage.get(root_at + 1) {
            let same_program =
                up.executable.is_some() && up.executable == lineage[root_at].executable;
            if up.pid <= 1 || !same_program {
                break;
            }
            root_at += 1;
        }
        let chain = &lineage[..=root_at];
        let mut tree: Vec<TreeMember> = chain.iter().rev().map(member).collect();
        tree.last_mut().expect("the process").findings.push(finding);
        let root = chain[root_at].pid;
        let incident = Alert {
            id: alert.id.clone(),
            ts_ns: alert.ts_ns,
            node_id: alert.node_id.clone(),
            summary: summary(&tree),
            severity: severity(&tree),
            process: ProcessFields::from_lineage(&lineage[root_at..]),
            user: alert.user.clone(),
            container: alert.container.clone(),
            score: alert.score,
            threshold: alert.threshold,
            model: alert.model.clone(),
            window: alert.window.clone(),
            related: vec![alert.id.clone()],
            first_seen_ns: alert.ts_ns,
            last_seen_ns: alert.ts_ns,
            tree,
            ..Alert::new(
                AlertModule::Incident,
                &alert.host,
                format!("tree:{root}"),
                alert.severity,
            )
        };
        if self.open.len() >= self.max {
            // The quietest tree closes early (its update goes out first).
            if let Some(i) = (0..self.open.len()).min_by_key(|&i| self.open[i].last) {
                self.open[i].last = Instant::now() - self.quiet;
            }
        }
        self.open.push(Tree {
            host,
            pids: chain.iter().map(|p| p.pid).collect(),
            above: ancestors(&lineage[root_at + 1..]),
            alert: incident.clone(),
            last: Instant::now(),
            dirty: false,
            by_user: None,
        });
        Outcome::Opened(Box::new(incident))
    }

    /// A network alert of a process of an open tree joins it (once).
    pub fn join_flow(&mut self, alert: &Alert) -> bool {
        let Some(pid) = alert.pid() else {
            return false;
        };
        let Some(t) = self
            .open
            .iter_mut()
            .find(|t| t.host == alert.host && t.pids.contains(&pid))
        else {
            return false;
        };
        if !t.take(alert) {
            return true;
        }
        if let Some(m) = t.alert.tree.iter_mut().find(|m| m.process.pid == pid) {
            m.findings.push(Finding::of(alert));
        }
        if t.alert.destination.is_none() {
            t.alert.source = alert.source.clone();
            t.alert.destination = alert.destination.clone();
            t.alert.flow = alert.flow.clone();
        }
        t.grown();
        true
    }

    /// A log alert naming a user (`user.name`) joins the open tree on its
    /// host, most recently grown, with a process of that user (root
    /// excepted); the incident's severity goes one step above the worse
    /// of the two and its summary quotes the log alert's.
    pub fn join_log(&mut self, alert: &Alert) -> bool {
        let Some(user) = alert.user.as_ref().and_then(|u| u.name.as_deref()) else {
            return false;
        };
        if alert.module != AlertModule::Log || user == "root" {
            return false;
        }
        let runs_as = |m: &TreeMember| {
            m.process.user_name.as_deref() == Some(user) && m.process.uid != Some(0)
        };
        let Some(t) = self
            .open
            .iter_mut()
            .filter(|t| t.host == alert.host && t.alert.tree.iter().any(runs_as))
            .max_by_key(|t| t.last)
        else {
            return false;
        };
        if !t.take(alert) {
            return true;
        }
        t.alert.log = alert.log.clone();
        if t.alert.source.is_none() {
            t.alert.source = alert.source.clone();
        }
        if t.alert
            .user
            .as_ref()
            .and_then(|u| u.name.as_deref())
            .is_none()
        {
            t.alert.user = alert.user.clone();
        }
        t.by_user = Some((user.to_string(), alert.clone()));
        t.grown();
        true
    }

    /// Closes the trees quiet for the window (every one with `all`); the
    /// updates to write: each closed tree that grew since it was written.
    pub fn ended(&mut self, all: bool) -> Vec<Alert> {
        let quiet = self.quiet;
        let (done, open): (Vec<Tree>, Vec<Tree>) = std::mem::take(&mut self.open)
            .into_iter()
            .partition(|t| all || t.last.elapsed() >= quiet);
        self.open = open;
        done.into_iter()
            .filter(|t| t.dirty)
            .map(|t| t.alert)
            .collect()
    }
}

/// A root's ancestors a tree may grow up to (init never).
fn ancestors(above: &[ProcessInfo]) -> Vec<ProcessInfo> {
    above.iter().filter(|p| p.pid > 1).cloned().collect()
}

fn member(p: &ProcessInfo) -> TreeMember {
    TreeMember {
        process: p.clone(),
        findings: Vec::new(),
    }
}

/// The worst finding's severity, one step up when several processes of
/// the tree were found; critical when a shell was started by a service
/// (its parent neither a shell nor a login path) and then found.
fn severity(tree: &[TreeMember]) -> Severity {
    let by_pid: HashMap<u32, &TreeMember> = tree.iter().map(|m| (m.process.pid, m)).collect();
    let found: Vec<&TreeMember> = tree.iter().filter(|m| !m.findings.is_empty()).collect();
    let parents_of_found: HashSet<u32> = found.iter().filter_map(|m| m.process.ppid).collect();
    let worst = found
        .iter()
        .flat_map(|m| m.findings.iter().map(|f| f.severity))
        .max()
        .unwrap_or(Severity::Low);
    let spawned_shell = tree.iter().any(|m| {
        let by_a_service = m
            .process
            .ppid
            .and_then(|pp| by_pid.get(&pp))
            .is_some_and(|p| {
                !SHELLS.contains(&p.process.name.as_str())
                    && !LOGIN_PATHS.contains(&p.process.name.as_str())
            });
        let it_or_a_child_found =
            !m.findings.is_empty() || parents_of_found.contains(&m.process.pid);
        SHELLS.contains(&m.process.name.as_str()) && by_a_service && it_or_a_child_found
    });
    if spawned_shell && found.len() >= 2 {
        return Severity::Critical;
    }
    if found.len() >= 2 {
        return one_step_up(worst);
    }
    worst
}

fn one_step_up(s: Severity) -> Severity {
    match s {
        Severity::Low => Severity::Medium,
        Severity::Medium => Severity::High,
        Severity::High | Severity::Critical => Severity::Critical,
    }
}

/// One line: the root, how many processes below it were found, and the
/// most severe finding.
fn summary(tree: &[TreeMember]) -> String {
    let root = &tree[0];
    let found: Vec<&TreeMember> = tree.iter().filter(|m| !m.findings.is_empty()).collect();
    let names: Vec<String> = found
        .iter()
        .take(6)
        .map(|m| format!("{} ({})", m.process.name, m.process.pid))
        .collect();
    let more = if found.len() > 6 {
        format!(" and {} more", found.len() - 6)
    } else {
        String::new()
    };
    format!(
        "process tree of {} ({}) pid {}: {} process(es) found: {}{more}",
        root.process.name,
        root.process
            .executable
            .as_deref()
            .unwrap_or("executable unknown"),
        root.process.pid,
        found.len(),
        names.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proc(pid: u32, ppid: u32, name: &str) -> ProcessInfo {
        ProcessInfo {
            pid,
            ppid: Some(ppid),
            name: name.into(),
            executable: Some(format!("/usr/bin/{name}")),
            ..Default::default()
        }
    }

    fn found(id: &str, lineage: &[ProcessInfo]) -> Alert {
        Alert {
            id: id.into(),
            ts_ns: 1,
            score: 0.5,
            threshold: 0.1,
            summary: format!("{} found", lineage[0].name),
            ..Alert::new(
                AlertModule::Syscall,
                "web1",
                format!("pid:{}", lineage[0].pid),
                Severity::Medium,
            )
        }
    }

    /// A server spawns a shell that runs two tools: one incident rooted at
    /// the server, the tools joined under the shell, critical.
    #[test]
    fn an_attack_chain_is_one_incident_and_unrelated_processes_are_not() {
        let mut t = Trees::new(Duration::from_secs(60), 8);
        let server = proc(100, 1, "python3");
        let shell = proc(200, 100, "sh");
        let cat = proc(300, 200, "cat");
        let curl = proc(301, 200, "curl");
        let other = proc(900, 1, "cron");
        let Outcome::Opened(i) = t.add(
            found("a1", &[shell.clone(), server.clone()]),
            &[shell.clone(), server.clone()],
        ) else {
            panic!("the first finding opens the tree")
        };
        assert_eq!(i.entity, "tree:100");
        assert_eq!(
            i.tree.iter().map(|m| m.process.pid).collect::<Vec<_>>(),
            [100, 200]
        );
        let l = [cat.clone(), shell.clone(), server.clone()];
        assert!(matches!(
            t.add(found("a2", &l), &l),
            Outcome::Joined { first: true }
        ));
        let l = [curl.clone(), shell.clone(), server.clone()];
        assert!(matches!(
            t.add(found("a3", &l), &l),
            Outcome::Joined { first: true }
        ));
        // Not under the tree: its own incident, rooted at itself (init's child).
        let Outcome::Opened(o) = t.add(
            found("b1", std::slice::from_ref(&other)),
            &[other.clone(), proc(1, 0, "systemd")],
        ) else {
            panic!("an unrelated process opens its own tree")
        };
        assert_eq!(o.entity, "tree:900");
        let updates = t.ended(true);
        assert_eq!(updates.len(), 1, "only the tree that grew is written again");
        let u = &updates[0];
        assert_eq!(u.id, i.id);
        assert_eq!(u.count, 3);
        assert_eq!(u.related, ["a1", "a2", "a3"]);
        assert_eq!(
            u.tree.iter().map(|m| m.process.pid).collect::<Vec<_>>(),
            [100, 200, 300, 301]
        );
        assert_eq!(
            u.severity,
            Severity::Critical,
            "a shell spawned by a server, then tools"
        );
        assert!(u.summary.contains("3 process(es) found"), "{}", u.summary);
    }

    /// Two sessions of one service (sshd's listener forks a monitor per
    /// connection, the monitor a session process): one incident rooted at
    /// the listener; a shell's finding that arrives before its session
    /// process's joins when that session process is found.
    #[test]
    fn sessions_of_one_service_meet_at_its_listener_and_a_found_ancestor_grows_the_tree() {
        let mut t = Trees::new(Duration::from_secs(60), 8);
        let svc = proc(10, 1, "supervisor");
        let listener = proc(100, 10, "sshd");
        let monitor = proc(110, 100, "sshd");
        let session = proc(111, 110, "sshd");
        let Outcome::Opened(i) = t.add(
            found("s1", std::slice::from_ref(&session)),
            &[
                session.clone(),
                monitor.clone(),
                listener.clone(),
                svc.clone(),
            ],
        ) else {
            panic!("the first finding opens the tree")
        };
        assert_eq!(i.entity, "tree:100", "rooted at the listener");
        // The second connection: its shell's tool found before its session
        // process is.
        let monitor2 = proc(120, 100, "sshd");
        let session2 = proc(121, 120, "sshd");
        let shell = proc(122, 121, "bash");
        let id = proc(123, 122, "id");
        let l = [
            id.clone(),
            shell.clone(),
            session2.clone(),
            monitor2.clone(),
            listener.clone(),
            svc.clone(),
        ];
        assert!(matches!(
            t.add(found("s2", &l), &l),
            Outcome::Joined { first: true }
        ));
        let l = &l[2..];
        assert!(matches!(
            t.add(found("s3", l), l),
            Outcome::Joined { first: true }
        ));
        let u = t.ended(true);
        assert_eq!(u.len(), 1, "one incident: {u:#?}");
        assert_eq!(u[0].related, ["s1", "s2", "s3"]);

        // Apart from that service: a shell's tool found first (the tree
        // rooted at the shell), then the session that started the shell.
        let mut t = Trees::new(Duration::from_secs(60), 8);
        let l = [
            id.clone(),
            shell.clone(),
            session2.clone(),
            monitor2.clone(),
        ];
        let Outcome::Opened(i) = t.add(found("t1", &l), &l) else {
            panic!("opens")
        };
        assert_eq!(i.entity, "tree:122");
        let l = [session2.clone(), monitor2.clone()];
        assert!(matches!(t.add(found("t2", &l), &l), Outcome::Joined { .. }));
        let u = t.ended(true);
        assert_eq!(u.len(), 1, "{u:#?}");
        let pids: Vec<u32> = u[0].tree.iter().map(|m| m.process.pid).collect();
        assert_eq!(
            pids[..3],
            [120, 121, 122],
            "grown up to the session and its parent: {pids:?}"
        );
    }

    fn log_about(id: &str, user: &str) -> Alert {
        Alert {
            id: id.into(),
            ts_ns: 2,
            summary: format!("sudo refused: {user} is not in sudoers"),
            user: Some(crate::messages::UserFields {
                id: String::new(),
                name: Some(user.into()),
            }),
            log: Some(crate::messages::LogFields {
                file: "/var/log/auth.log".into(),
                lines: vec![format!("sudo: {user} : user NOT in sudoers")],
            }),
            ..Alert::new(
                AlertModule::Log,
                "web1",
                format!("user:{user}"),
                Severity::Medium,
            )
        }
    }

    /// A log alert naming the user a tree's process runs as joins that
    /// tree: one step more severe, its lines and its summary in the
    /// incident. Root and other users' trees are not joined, nor another
    /// host's.
    #[test]
    fn a_log_alert_joins_the_tree_whose_process_runs_as_its_user() {
        let mut t = Trees::new(Duration::from_secs(60), 8);
        let as_user = |p: ProcessInfo, uid: u32, name: &str| ProcessInfo {
            uid: Some(uid),
            user_name: Some(name.into()),
            ..p
        };
        let server = as_user(proc(100, 1, "python3"), 33, "www-data");
        let shell = as_user(proc(200, 100, "sh"), 33, "www-data");
        let daemon = as_user(proc(500, 1, "cron"), 0, "root");
        let job = as_user(proc(501, 500, "backup"), 0, "root");
        let l = [shell.clone(), server.clone()];
        assert!(matches!(t.add(found("a1", &l), &l), Outcome::Opened(_)));
        let l = [job.clone(), daemon.clone()];
        assert!(matches!(t.add(found("r1", &l), &l), Outcome::Opened(_)));

        assert!(!t.join_log(&log_about("l0", "root")), "root names no tree");
        assert!(!t.join_log(&log_about("l1", "alice")), "no tree of alice");
        let mut elsewhere = log_about("l2", "www-data");
        elsewhere.host = "db1".into();
        assert!(!t.join_log(&elsewhere), "another host");
        let mut flow = log_about("l3", "www-data");
        flow.module = AlertModule::Network;
        assert!(!t.join_log(&flow), "only log alerts join by user");

        assert!(t.join_log(&log_about("l4", "www-data")));
        assert!(t.join_log(&log_about("l4", "www-data")), "once");
        let updates = t.ended(true);
        assert_eq!(updates.len(), 1, "only the www-data tree grew");
        let u = &updates[0];
        assert_eq!(u.entity, "tree:100");
        assert_eq!(u.related, ["a1", "l4"]);
        assert_eq!(u.count, 2);
        assert_eq!(u.severity, Severity::High, "medium and medium: one step up");
        assert!(
            u.summary.ends_with(
                "; its user www-data in the logs: sudo refused: www-data is not in sudoers"
            ),
            "{}",
            u.summary
        );
        assert_eq!(
            u.log.as_ref().map(|l| l.lines.clone()),
            Some(vec!["sudo: www-data : user NOT in sudoers".to_string()])
        );
        assert_eq!(
            u.user.as_ref().and_then(|u| u.name.as_deref()),
            Some("www-data")
        );
    }
}
