//! One incident per attack chain.
//!
//! An attack on a host is a chain of processes (a server spawns a shell,
//! the shell runs tools), and a per-process detector flags many of them.
//! Findings about processes whose lineage (from the collector's process
//! table) meets an open chain join that chain's incident instead of going
//! out alone: the first finding opens the incident (module `incident`,
//! entity `tree:<pid of the first process found>`, out at once); later
//! ones update it (same id, a larger count, the chain grown).
//!
//! **The service is context.** An incident's tree starts at the process
//! that spawned the first process found (the exploited server, the login
//! shell; none when that is PID 1), shown on top but never a member: a
//! later finding joins the incident only when its lineage holds one of the
//! chain's own processes (a process found, or one between the found
//! ones). So two chains a busy service spawned, with no process in common,
//! are two incidents; the later one names the earlier in `related`. A
//! process found more than [`SERVICE_AGE`] after it started (a long-lived
//! server, an init-like parent, the script that started a service) is a
//! service too: its findings join its own incident, and its children never
//! join through it.
//!
//! **Updates go out as the attack goes on.** A joined finding that adds a
//! process of a program not found before in the incident, a rule or a
//! higher severity is news (a loop's next subshell or a scan's next child
//! is counted, not news): the update goes out
//! within `alert.update_after` of the last write, its summary ending with
//! what is new; each next update of the incident waits twice as long (a
//! busy chain, a compiler's many programs, stays a few lines). A tree quiet for
//! `alert.cooldown` closes (a last update when it grew since it was
//! written), and a tree open longer than `alert.incident_max_span` closes
//! at its next finding: a new incident opens and names the old one in
//! `related`. Network alerts of a chain's process and log alerts about the
//! user of a chain's process join it too.

use crate::messages::{
    Alert, AlertModule, Finding, ProcessFields, ProcessInfo, Severity, TreeMember,
};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

/// Processes an incident lists at most (later ones still count, in
/// `count` and `related`'s bound).
const MAX_MEMBERS: usize = 256;

/// A process found this long after it started is a service: context, not
/// a chain process others join through.
pub const SERVICE_AGE: Duration = Duration::from_secs(60);

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

/// How a process belongs to a chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Membership {
    /// Its descendants' findings join through it.
    Chain,
    /// A service found itself: only its own findings join.
    Own,
}

/// The timing of incidents (from `[alert]`).
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// A tree quiet this long closes (`alert.cooldown`).
    pub quiet: Duration,
    /// News goes out within this, at most once per this per incident
    /// (`alert.update_after`).
    pub update_after: Duration,
    /// A tree open this long closes at its next finding
    /// (`alert.incident_max_span`).
    pub max_span: Duration,
}

struct Tree {
    host: String,
    /// The process that spawned the chain (context; none under init).
    service: Option<u32>,
    /// The chain's processes.
    members: BTreeMap<u32, Membership>,
    /// The service's ancestors, nearest first (the tree grows up to one
    /// found later, while it is no service).
    above: Vec<ProcessInfo>,
    alert: Alert,
    opened: Instant,
    /// Last joined: the quiet time runs from here.
    last: Instant,
    /// Last written.
    written: Instant,
    /// Updates written for news: each waits twice as long as the one
    /// before it (`update_after`, then 2×, 4×... up to 64×).
    updates: u32,
    /// Joined since it was last written.
    dirty: bool,
    /// What is new since it was last written (processes, rules, severity).
    news: Vec<String>,
    /// Rules its findings named.
    rules: HashSet<String>,
    /// Programs (kernel names) of the processes found: another process of
    /// one of them (a loop's subshells, a scan's children) is counted,
    /// not news.
    programs: HashSet<String>,
    /// The latest log alert joined by its user's name: the user, and the
    /// alert.
    by_user: Option<(String, Alert)>,
}

impl Tree {
    /// The summary and severity again, after the tree or its log grew.
    fn refresh(&mut self) {
        let before = self.alert.severity;
        let mut threat = None;
        for f in self.alert.tree.iter().flat_map(|m| &m.findings) {
            crate::attack::merge(&mut threat, f.threat.as_ref());
        }
        if let Some((_, log)) = &self.by_user {
            crate::attack::merge(&mut threat, log.threat.as_ref());
        }
        self.alert.threat = threat;
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
        if self.alert.severity > before {
            self.news
                .push(format!("severity {:?}", self.alert.severity).to_lowercase());
        }
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

    /// A rule not named before in this incident is news.
    fn note_rule(&mut self, a: &Alert) {
        let rule = match &a.rule {
            Some(r) => r.name.clone(),
            None => a.module.to_string(),
        };
        if self.rules.insert(rule.clone()) {
            self.news.push(format!("rule {rule}"));
        }
    }

    /// Whether `lineage` (a process, then its ancestors) meets the chain.
    fn holds(&self, lineage: &[ProcessInfo]) -> bool {
        self.members.contains_key(&lineage[0].pid)
            || lineage[1..]
                .iter()
                .any(|p| self.members.get(&p.pid) == Some(&Membership::Chain))
    }

    /// The update to write: the incident, its summary ending with what is
    /// new since it was last written.
    fn update(&mut self, now: Instant) -> Alert {
        let mut a = self.alert.clone();
        if !self.news.is_empty() {
            a.summary
                .push_str(&format!("; new: {}", self.news.join(", ")));
        }
        self.news.clear();
        self.dirty = false;
        self.written = now;
        self.updates += 1;
        a
    }
}

/// The open trees (bounded: the quietest is closed first).
pub struct Trees {
    timing: Timing,
    max: usize,
    open: Vec<Tree>,
    /// Closed early (a full table, a tree past its span): their last
    /// updates, for the next [`Trees::due`].
    closing: Vec<Alert>,
}

/// What became of a detection.
pub enum Outcome {
    /// It opened a tree: raise this incident now.
    Opened(Box<Alert>),
    /// It joined an open tree (its update goes out within
    /// `update_after`); `first` when it is the first finding about its
    /// process.
    Joined { first: bool },
}

/// Whether a process is a service at `now_ns`: it was found long after it
/// started (unknown start: not).
fn is_service(p: &ProcessInfo, now_ns: u64) -> bool {
    p.start_ns
        .is_some_and(|s| now_ns.saturating_sub(s) > SERVICE_AGE.as_nanos() as u64)
}

impl Trees {
    pub fn new(timing: Timing, max: usize) -> Self {
        Self {
            timing,
            max: max.max(1),
            open: Vec::new(),
            closing: Vec::new(),
        }
    }

    /// A detection about the process `lineage[0]` (its ancestors after
    /// it). `alert` has its id, time and node already.
    pub fn add(&mut self, alert: Alert, lineage: &[ProcessInfo]) -> Outcome {
        let pid = lineage[0].pid;
        let service = is_service(&lineage[0], alert.ts_ns);
        let host = alert.host.clone();
        let mut related = Vec::new();
        // A chain past its span closes; a new incident takes its members
        // over and names it.
        let mut inherited = BTreeMap::new();
        if let Some(i) = self.open.iter().position(|t| {
            t.host == host && t.holds(lineage) && t.opened.elapsed() >= self.timing.max_span
        }) {
            let mut t = self.open.remove(i);
            related.push(t.alert.id.clone());
            inherited = std::mem::take(&mut t.members);
            if t.dirty {
                self.closing.push(t.update(Instant::now()));
            }
        }
        let joins = |t: &Tree| {
            t.host == host
                && (t.holds(lineage)
                    || (!service
                        && (t.service == Some(pid) || t.above.iter().any(|p| p.pid == pid))))
        };
        if let Some(t) = self.open.iter_mut().find(|t| joins(t)) {
            let first = join(t, alert, lineage, service);
            return Outcome::Joined { first };
        }
        // Chains of the same service, and the incident of a service this
        // chain runs under: named in `related`.
        let parent = lineage.get(1).filter(|p| p.pid > 1);
        for t in self.open.iter().filter(|t| t.host == host) {
            let same_service = lineage[1..]
                .iter()
                .take(2)
                .any(|p| t.service == Some(p.pid));
            let under = lineage[1..].iter().any(|p| t.members.contains_key(&p.pid));
            if (same_service || under) && !related.contains(&t.alert.id) {
                related.push(t.alert.id.clone());
            }
        }
        // A new tree: the service on top (context), the process found.
        // A young shell that started it (a session: an SSH login's shell,
        // the shell an exploit spawned) is the chain's, not a service: its
        // other children join through it; its parent is the service.
        let session =
            parent.filter(|p| SHELLS.contains(&p.name.as_str()) && !is_service(p, alert.ts_ns));
        let (above_chain, chain_top) = match session {
            Some(sh) => (lineage.get(2).filter(|p| p.pid > 1), vec![sh, &lineage[0]]),
            None => (parent, vec![&lineage[0]]),
        };
        let mut tree: Vec<TreeMember> = above_chain
            .into_iter()
            .chain(chain_top)
            .map(member)
            .collect();
        tree.last_mut()
            .expect("the process")
            .findings
            .push(Finding::of(&alert));
        let mut members = inherited;
        if let Some(sh) = session {
            members.insert(sh.pid, Membership::Chain);
        }
        members.insert(
            pid,
            match service {
                true => Membership::Own,
                false => Membership::Chain,
            },
        );
        let mut rules = HashSet::new();
        rules.insert(
            alert
                .rule
                .as_ref()
                .map(|r| r.name.clone())
                .unwrap_or_else(|| alert.module.to_string()),
        );
        related.insert(0, alert.id.clone());
        let incident = Alert {
            id: alert.id.clone(),
            ts_ns: alert.ts_ns,
            node_id: alert.node_id.clone(),
            summary: summary(&tree),
            severity: severity(&tree),
            process: ProcessFields::from_lineage(lineage),
            user: alert.user.clone(),
            container: alert.container.clone(),
            score: alert.score,
            threshold: alert.threshold,
            model: alert.model.clone(),
            window: alert.window.clone(),
            related,
            threat: alert.threat.clone(),
            first_seen_ns: alert.ts_ns,
            last_seen_ns: alert.ts_ns,
            tree,
            ..Alert::new(
                AlertModule::Incident,
                &alert.host,
                format!("tree:{pid}"),
                alert.severity,
            )
        };
        if self.open.len() >= self.max {
            // The quietest tree closes early (its update goes out first).
            if let Some(i) = (0..self.open.len()).min_by_key(|&i| self.open[i].last) {
                let mut t = self.open.remove(i);
                if t.dirty {
                    self.closing.push(t.update(Instant::now()));
                }
            }
        }
        let now = Instant::now();
        self.open.push(Tree {
            host,
            service: above_chain.map(|p| p.pid),
            members,
            above: ancestors(
                lineage
                    .get(if session.is_some() { 3 } else { 2 }..)
                    .unwrap_or_default(),
            ),
            alert: incident.clone(),
            opened: now,
            last: now,
            written: now,
            updates: 0,
            dirty: false,
            news: Vec::new(),
            rules,
            programs: HashSet::from([lineage[0].name.clone()]),
            by_user: None,
        });
        Outcome::Opened(Box::new(incident))
    }

    /// A network alert of a chain's process joins its incident (once).
    pub fn join_flow(&mut self, alert: &Alert) -> bool {
        let Some(pid) = alert.pid() else {
            return false;
        };
        let Some(t) = self
            .open
            .iter_mut()
            .find(|t| t.host == alert.host && t.members.contains_key(&pid))
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
        t.note_rule(alert);
        t.grown();
        true
    }

    /// A log alert naming a user (`user.name`) joins the open tree on its
    /// host, most recently grown, with a chain process of that user (root
    /// excepted); the incident's severity goes one step above the worse
    /// of the two and its summary quotes the log alert's.
    pub fn join_log(&mut self, alert: &Alert) -> bool {
        let Some(user) = alert.user.as_ref().and_then(|u| u.name.as_deref()) else {
            return false;
        };
        if alert.module != AlertModule::Log || user == "root" {
            return false;
        }
        let runs_as = |t: &Tree, m: &TreeMember| {
            t.members.contains_key(&m.process.pid)
                && m.process.user_name.as_deref() == Some(user)
                && m.process.uid != Some(0)
        };
        let Some(t) = self
            .open
            .iter_mut()
            .filter(|t| t.host == alert.host && t.alert.tree.iter().any(|m| runs_as(t, m)))
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
        t.note_rule(alert);
        t.grown();
        true
    }

    /// The updates to write now: each incident with news whose last write
    /// is `update_after` old, then each tree quiet for the cooldown (or
    /// every tree, with `all`), closed, that grew since it was written.
    pub fn due(&mut self, all: bool) -> Vec<Alert> {
        let now = Instant::now();
        let Timing {
            quiet,
            update_after,
            ..
        } = self.timing;
        let mut out = std::mem::take(&mut self.closing);
        for t in &mut self.open {
            let wait = update_after * 2u32.pow(t.updates.min(6));
            if t.dirty && !t.news.is_empty() && now.duration_since(t.written) >= wait {
                out.push(t.update(now));
            }
        }
        let (done, open): (Vec<Tree>, Vec<Tree>) = std::mem::take(&mut self.open)
            .into_iter()
            .partition(|t| all || now.duration_since(t.last) >= quiet);
        self.open = open;
        out.extend(
            done.into_iter()
                .filter(|t| t.dirty)
                .map(|mut t| t.update(now)),
        );
        out
    }
}

/// Joins a finding about `lineage[0]` to the tree `t` its lineage meets;
/// true when it is the first finding about its process.
fn join(t: &mut Tree, alert: Alert, lineage: &[ProcessInfo], service: bool) -> bool {
    let pid = lineage[0].pid;
    // The tree's service, or an ancestor above it, found (and no service
    // itself): the tree grows up to it and its parent becomes the service.
    if !t.holds(lineage) {
        let consumed: Option<Vec<ProcessInfo>> = match t.service == Some(pid) {
            true => Some(Vec::new()),
            false => t
                .above
                .iter()
                .position(|p| p.pid == pid)
                .map(|i| t.above.drain(..=i).collect()),
        };
        if let Some(consumed) = consumed {
            // `consumed`: nearest the old service first, this process last.
            if let Some(old) = t.service {
                t.members.insert(old, Membership::Chain);
            }
            for p in &consumed {
                t.members.insert(p.pid, Membership::Chain);
            }
            t.members.insert(pid, Membership::Chain);
            let parent = lineage.get(1).filter(|p| p.pid > 1);
            let tops: Vec<TreeMember> = parent
                .into_iter()
                .chain(consumed.iter().rev())
                .map(member)
                .collect();
            t.alert.tree.splice(0..0, tops);
            t.service = parent.map(|p| p.pid);
            t.above = ancestors(lineage.get(2..).unwrap_or_default());
            t.alert.process = ProcessFields::from_lineage(lineage);
        }
    }
    // The chain from the tree down to this process.
    let known = lineage
        .iter()
        .position(|p| t.members.contains_key(&p.pid))
        .unwrap_or(0);
    for p in lineage[..known].iter().rev() {
        t.members.insert(p.pid, Membership::Chain);
        if t.alert.tree.len() < MAX_MEMBERS {
            t.alert.tree.push(member(p));
        }
    }
    if service {
        t.members.insert(pid, Membership::Own);
    }
    let first = match t.alert.tree.iter_mut().find(|m| m.process.pid == pid) {
        Some(m) => {
            let first = m.findings.is_empty();
            m.findings.push(Finding::of(&alert));
            first
        }
        None => true, // past MAX_MEMBERS: counted, not listed
    };
    if first && t.programs.insert(lineage[0].name.clone()) {
        t.news.push(format!("{} ({})", lineage[0].name, pid));
    }
    t.note_rule(&alert);
    t.alert.count += 1;
    t.alert.last_seen_ns = alert.ts_ns;
    t.alert.score = t.alert.score.max(alert.score);
    if t.alert.related.len() < MAX_MEMBERS {
        t.alert.related.push(alert.id);
    }
    t.grown();
    first
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

/// One line: the top of the tree, how many processes below it were
/// found, and the first of them.
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

    fn timing(update_after: Duration) -> Timing {
        Timing {
            quiet: Duration::from_secs(60),
            update_after,
            max_span: Duration::from_secs(3600),
        }
    }

    /// A process that started `ago` before now.
    fn started(p: ProcessInfo, ago: Duration) -> ProcessInfo {
        ProcessInfo {
            start_ns: Some(crate::actors::runtime::now_ns() - ago.as_nanos() as u64),
            ..p
        }
    }

    fn found_now(id: &str, lineage: &[ProcessInfo]) -> Alert {
        Alert {
            ts_ns: crate::actors::runtime::now_ns(),
            ..found(id, lineage)
        }
    }

    /// A server spawns a shell that runs two tools: one incident, the
    /// server on top as context, the tools joined under the shell,
    /// critical. Unrelated processes are not in it.
    #[test]
    fn an_attack_chain_is_one_incident_and_unrelated_processes_are_not() {
        let mut t = Trees::new(timing(Duration::from_secs(60)), 8);
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
        assert_eq!(i.entity, "tree:200", "named by the first process found");
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
        // Not under the tree: its own incident, nothing above it (init's child).
        let Outcome::Opened(o) = t.add(
            found("b1", std::slice::from_ref(&other)),
            &[other.clone(), proc(1, 0, "systemd")],
        ) else {
            panic!("an unrelated process opens its own tree")
        };
        assert_eq!(o.entity, "tree:900");
        let updates = t.due(true);
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
        assert!(
            u.summary
                .ends_with("; new: cat (300), severity critical, curl (301)"),
            "{}",
            u.summary
        );
    }

    /// A busy service: a benign child of it found (a false alarm), then
    /// two attack chains through it, minutes apart in life, seconds here.
    /// Each chain is an incident of its own, naming the earlier ones of
    /// the same service in `related`; a chain's next process is news that
    /// goes out within `update_after`, a plain repeat is not.
    #[test]
    fn chains_of_a_busy_service_are_incidents_of_their_own_and_their_news_goes_out_promptly() {
        let mut t = Trees::new(timing(Duration::from_millis(50)), 8);
        let server = started(proc(100, 50, "python3"), Duration::from_secs(3600));
        let boot = started(proc(50, 1, "bash"), Duration::from_secs(3601));
        let benign = started(proc(200, 100, "sh"), Duration::from_millis(5));
        let l = [benign.clone(), server.clone(), boot.clone()];
        let Outcome::Opened(fa) = t.add(found_now("f1", &l), &l) else {
            panic!("opens")
        };
        let attack = started(proc(300, 100, "sh"), Duration::from_millis(5));
        let l = [attack.clone(), server.clone(), boot.clone()];
        let Outcome::Opened(a) = t.add(found_now("a1", &l), &l) else {
            panic!("a chain with no process in common with the first opens its own incident")
        };
        assert_eq!(a.entity, "tree:300");
        assert_eq!(a.related, ["a1", fa.id.as_str()], "names the earlier chain");
        assert_eq!(
            a.tree.iter().map(|m| m.process.pid).collect::<Vec<_>>(),
            [100, 300],
            "the service on top, the benign child not in it"
        );
        // Nothing is news yet; then the attack's next process.
        assert!(t.due(false).is_empty());
        let tool = started(proc(301, 300, "cat"), Duration::from_millis(1));
        let l = [tool.clone(), attack.clone(), server.clone(), boot.clone()];
        assert!(matches!(
            t.add(found_now("a2", &l), &l),
            Outcome::Joined { first: true }
        ));
        assert!(
            t.due(false).is_empty(),
            "at most one write per update_after"
        );
        std::thread::sleep(Duration::from_millis(60));
        let u = t.due(false);
        assert_eq!(u.len(), 1, "{u:#?}");
        assert_eq!(u[0].id, a.id);
        assert!(u[0].summary.contains("new: cat (301)"), "{}", u[0].summary);
        // The same process and rule again: counted, no news.
        assert!(matches!(
            t.add(found_now("a3", &l), &l),
            Outcome::Joined { first: false }
        ));
        std::thread::sleep(Duration::from_millis(60));
        assert!(t.due(false).is_empty(), "a repeat is not news");
        // Another process of a program already found (a loop's next
        // subshell): counted and listed, not news.
        let again = started(proc(302, 300, "cat"), Duration::from_millis(1));
        let l = [again.clone(), attack.clone(), server.clone(), boot.clone()];
        assert!(matches!(
            t.add(found_now("a4", &l), &l),
            Outcome::Joined { first: true }
        ));
        std::thread::sleep(Duration::from_millis(60));
        assert!(t.due(false).is_empty(), "another cat is not news");
        // News again: the second update waits twice update_after (it has).
        let other = started(proc(303, 300, "curl"), Duration::from_millis(1));
        let l = [other.clone(), attack.clone(), server.clone(), boot.clone()];
        t.add(found_now("a5", &l), &l);
        let u = t.due(false);
        assert_eq!(u.len(), 1, "120 ms after the first update: {u:#?}");
        assert!(u[0].summary.contains("new: curl (303)"), "{}", u[0].summary);
        // The third waits four times update_after (200 ms).
        let more = started(proc(304, 300, "nc"), Duration::from_millis(1));
        let l = [more.clone(), attack.clone(), server.clone(), boot.clone()];
        t.add(found_now("a6", &l), &l);
        std::thread::sleep(Duration::from_millis(120));
        assert!(
            t.due(false).is_empty(),
            "120 ms after the second update: not yet"
        );
        std::thread::sleep(Duration::from_millis(100));
        let u = t.due(false);
        assert_eq!(u.len(), 1, "220 ms after the second update: {u:#?}");
        assert!(
            u[0].tree.iter().any(|m| m.process.pid == 302),
            "the second cat is listed"
        );
        assert_eq!(u[0].count, 6);
        let last = t.due(true);
        assert!(
            last.is_empty(),
            "nothing new since the last update: {last:#?}"
        );
        assert_eq!(t.open.len(), 0);
    }

    /// The service itself found (it started long before): an incident of
    /// its own, and its later children are not absorbed by it; a young
    /// process's parent found grows its tree (the found parent becomes a
    /// chain process, its own parent the service).
    #[test]
    fn a_found_service_never_absorbs_its_children_and_a_found_parent_grows_the_tree() {
        let mut t = Trees::new(timing(Duration::from_secs(60)), 8);
        let init = proc(1, 0, "systemd");
        let server = started(proc(100, 1, "nginx"), Duration::from_secs(3600));
        let l = [server.clone(), init.clone()];
        let Outcome::Opened(s) = t.add(found_now("s1", &l), &l) else {
            panic!("opens")
        };
        assert!(matches!(
            t.add(found_now("s2", &l), &l),
            Outcome::Joined { first: false }
        ));
        let shell = started(proc(200, 100, "sh"), Duration::from_millis(5));
        let l = [shell.clone(), server.clone(), init.clone()];
        let Outcome::Opened(c) = t.add(found_now("c1", &l), &l) else {
            panic!("a child of a found service opens its own incident")
        };
        assert_eq!(c.related, ["c1", s.id.as_str()]);

        // A tool found first, then the shell that started it (young).
        let mut t = Trees::new(timing(Duration::from_secs(60)), 8);
        let shell = started(proc(200, 150, "sh"), Duration::from_millis(5));
        let worker = started(proc(150, 100, "nginx"), Duration::from_millis(6));
        let tool = started(proc(201, 200, "id"), Duration::from_millis(1));
        let l = [tool.clone(), shell.clone(), worker.clone(), server.clone()];
        let Outcome::Opened(i) = t.add(found_now("t1", &l), &l) else {
            panic!("opens")
        };
        assert_eq!(i.entity, "tree:201");
        let l = [shell.clone(), worker.clone(), server.clone()];
        assert!(matches!(
            t.add(found_now("t2", &l), &l),
            Outcome::Joined { first: true }
        ));
        let u = t.due(true);
        assert_eq!(u.len(), 1, "{u:#?}");
        let pids: Vec<u32> = u[0].tree.iter().map(|m| m.process.pid).collect();
        assert_eq!(
            pids,
            [150, 200, 201],
            "grown up to the shell; the worker on top"
        );
    }

    /// A session's shell (young: an SSH login's) that starts tools: the
    /// tools are one incident, joined through the shell, with sshd above
    /// as the service; a shell that has run for long (a service's start
    /// script) is a service: its children's findings are apart.
    #[test]
    fn a_young_shells_tools_are_one_chain_and_an_old_shells_are_not() {
        let mut t = Trees::new(timing(Duration::from_secs(60)), 8);
        let sshd = started(proc(100, 1, "sshd"), Duration::from_secs(2));
        let bash = started(proc(110, 100, "bash"), Duration::from_secs(1));
        let l = [proc(111, 110, "id"), bash.clone(), sshd.clone()];
        let Outcome::Opened(i) = t.add(found_now("i1", &l), &l) else {
            panic!("opens")
        };
        let pids: Vec<u32> = i.tree.iter().map(|m| m.process.pid).collect();
        assert_eq!(pids, [100, 110, 111]);
        let l = [proc(112, 110, "uname"), bash.clone(), sshd.clone()];
        assert!(matches!(
            t.add(found_now("i2", &l), &l),
            Outcome::Joined { first: true }
        ));

        let mut t = Trees::new(timing(Duration::from_secs(60)), 8);
        let script = started(proc(50, 1, "bash"), Duration::from_secs(3600));
        let l = [proc(51, 50, "worker"), script.clone()];
        assert!(matches!(t.add(found_now("w1", &l), &l), Outcome::Opened(_)));
        let l = [proc(52, 50, "worker"), script.clone()];
        assert!(matches!(t.add(found_now("w2", &l), &l), Outcome::Opened(_)));
    }

    /// An incident open past `incident_max_span` closes at its next
    /// finding: a new incident opens, names it and keeps the chain.
    #[test]
    fn an_incident_past_its_span_hands_over_to_a_new_one() {
        let mut t = Trees::new(
            Timing {
                max_span: Duration::from_millis(20),
                ..timing(Duration::from_secs(60))
            },
            8,
        );
        let server = proc(100, 1, "python3");
        let shell = proc(200, 100, "sh");
        let l = [shell.clone(), server.clone()];
        let Outcome::Opened(first) = t.add(found("a1", &l), &l) else {
            panic!("opens")
        };
        let l2 = [proc(300, 200, "cat"), shell.clone(), server.clone()];
        assert!(matches!(
            t.add(found("a2", &l2), &l2),
            Outcome::Joined { .. }
        ));
        std::thread::sleep(Duration::from_millis(30));
        let l3 = [proc(301, 200, "curl"), shell.clone(), server.clone()];
        let Outcome::Opened(next) = t.add(found("a3", &l3), &l3) else {
            panic!("past its span, the chain's next finding opens a new incident")
        };
        assert_eq!(next.related, ["a3", first.id.as_str()]);
        let u = t.due(false);
        assert_eq!(u.len(), 1, "the old incident's last update: {u:#?}");
        assert_eq!((u[0].id.as_str(), u[0].count), ("a1", 2));
        let l4 = [proc(302, 200, "nc"), shell.clone(), server.clone()];
        assert!(
            matches!(t.add(found("a4", &l4), &l4), Outcome::Joined { .. }),
            "the new incident keeps the chain"
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
        let mut t = Trees::new(timing(Duration::from_secs(60)), 8);
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
        let updates = t.due(true);
        assert_eq!(updates.len(), 1, "only the www-data tree grew");
        let u = &updates[0];
        assert_eq!(u.entity, "tree:200");
        assert_eq!(u.related, ["a1", "l4"]);
        assert_eq!(u.count, 2);
        assert_eq!(u.severity, Severity::High, "medium and medium: one step up");
        assert!(
            u.summary.contains(
                "; its user www-data in the logs: sudo refused: www-data is not in sudoers; new: "
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
