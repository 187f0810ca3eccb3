//! One log line into named fields, at the boundary where it comes in.
//!
//! The line's frame is recognised first: RFC 5424 or RFC 3164 syslog
//! (`syslog_loose`, the parser Vector uses), a web server's access log
//! (Common or Combined Log Format, as nginx and Apache write them), a JSON
//! object per line, sudo's and dpkg's own log files; anything else is raw
//! text. Then, whatever the frame,
//! the message of a program daisi knows is read for what happened: `sshd`
//! logins, `sudo` and `su`, account changes (`useradd`, `userdel`,
//! `usermod`, `passwd`). Field names follow the Elastic Common Schema
//! (`source.ip`, `user.name`, `url.original`, `http.response.status_code`,
//! `event.action`, `event.outcome`).
//!
//! Nothing here trusts the line: every field is bounded ([`MAX_FIELD`]),
//! and a line that matches no shape is kept whole as raw text.

use regex::Regex;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::sync::LazyLock;

/// The longest a parsed field is kept (bytes, cut at a character boundary).
pub const MAX_FIELD: usize = 1024;

/// The frame a line came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Rfc5424,
    Rfc3164,
    Access,
    Json,
    /// dpkg's log (`/var/log/dpkg.log`): package runs.
    Dpkg,
    Raw,
}

/// What an event was (ECS `event.action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// An SSH login attempt (`event.outcome` says how it went).
    SshLogin,
    /// A login attempt for a user that does not exist (sshd logs the
    /// attempt's own `Failed ...` line too).
    SshInvalidUser,
    /// Another line about an SSH attempt sshd's own `Failed password`
    /// line counts: PAM's, and the `none` method a client tries first.
    SshAttemptNoise,
    /// A database login attempt (PostgreSQL's own log).
    DbLogin,
    /// `sudo`: a command run as another user, or refused.
    Sudo,
    /// `su`: a switch of user, or a refused one.
    Su,
    UserAdded,
    UserDeleted,
    /// A user added to a group.
    GroupChanged,
    PasswordChanged,
}

/// ECS `event.outcome`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Success,
    Failure,
}

/// An access log's request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HttpFields {
    /// `http.request.method`
    pub method: String,
    /// `url.original`
    pub url: String,
    /// `http.response.status_code`
    pub status: u16,
    /// `http.response.body.bytes`
    pub bytes: Option<u64>,
    /// `http.request.referrer`
    pub referrer: Option<String>,
    /// `user_agent.original`
    pub user_agent: Option<String>,
}

/// A parsed line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogEvent {
    pub format: LogFormat,
    /// `@timestamp` as the line wrote it, ns since the epoch, when it had one.
    pub timestamp_ns: Option<i64>,
    /// `host.hostname`
    pub hostname: Option<String>,
    /// `process.name`
    pub program: Option<String>,
    /// `process.pid`
    pub pid: Option<u32>,
    /// `message`: the text after the frame.
    pub message: String,
    /// `event.action`
    pub action: Option<Action>,
    /// `event.outcome`
    pub outcome: Option<Outcome>,
    /// `user.name`: who acted (or was acted for, at a login).
    pub user: Option<String>,
    /// `user.target.name`: whom `sudo`/`su` ran as, the account changed.
    pub target_user: Option<String>,
    /// `source.ip`, `source.port`
    pub source_ip: Option<IpAddr>,
    pub source_port: Option<u16>,
    /// `process.command_line` of a `sudo` command.
    pub command: Option<String>,
    pub http: Option<HttpFields>,
}

impl LogEvent {
    fn raw(format: LogFormat, message: &str) -> LogEvent {
        LogEvent {
            format,
            timestamp_ns: None,
            hostname: None,
            program: None,
            pid: None,
            message: bounded(message),
            action: None,
            outcome: None,
            user: None,
            target_user: None,
            source_ip: None,
            source_port: None,
            command: None,
            http: None,
        }
    }
}

/// At most [`MAX_FIELD`] bytes of `s`.
fn bounded(s: &str) -> String {
    if s.len() <= MAX_FIELD {
        return s.to_string();
    }
    let mut end = MAX_FIELD;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// Parses one line (without its newline). `year` completes RFC 3164
/// timestamps, which have none.
pub fn parse(line: &str, year: i32) -> LogEvent {
    parse_from(line, year, None)
}

/// [`parse`] for a source whose lines, when they carry no header naming
/// their program, are written by `program` (sshd's own log file, `-E`).
pub fn parse_from(line: &str, year: i32, program: Option<&str>) -> LogEvent {
    let line = line.trim_end_matches(['\r', '\n']);
    let mut ev = if line.starts_with('{') {
        json(line).unwrap_or_else(|| LogEvent::raw(LogFormat::Raw, line))
    } else if let Some(ev) = access(line) {
        ev
    } else if let Some(ev) = sudo_logfile(line, year) {
        ev
    } else if let Some(ev) = dpkg_log(line) {
        ev
    } else if let Some(ev) = syslog(line, year) {
        ev
    } else {
        LogEvent::raw(LogFormat::Raw, line)
    };
    if ev.program.is_none() {
        ev.program = program.map(bounded);
    }
    if ev.http.is_none() {
        program_message(&mut ev);
    }
    ev
}

fn syslog(line: &str, year: i32) -> Option<LogEvent> {
    use syslog_loose::{parse_message_with_year_exact, ProcId, Protocol, Variant};
    let m = parse_message_with_year_exact(line, |_| year, Variant::Either).ok()?;
    // The loose parser accepts nearly anything as RFC 3164; a syslog line
    // has at least a timestamp or a priority.
    if m.timestamp.is_none() && m.facility.is_none() {
        return None;
    }
    let mut ev = LogEvent::raw(
        match m.protocol {
            Protocol::RFC5424(_) => LogFormat::Rfc5424,
            Protocol::RFC3164 => LogFormat::Rfc3164,
        },
        m.msg,
    );
    ev.timestamp_ns = m.timestamp.and_then(|t| t.timestamp_nanos_opt());
    ev.hostname = m.hostname.map(bounded);
    ev.program = m.appname.map(bounded);
    ev.pid = match m.procid {
        Some(ProcId::PID(p)) => u32::try_from(p).ok(),
        Some(ProcId::Name(n)) => n.parse().ok(),
        None => None,
    };
    Some(ev)
}

static SUDO_LOGFILE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^([A-Z][a-z]{2} [ \d]\d \d{2}:\d{2}:\d{2}) : (\S+ : .*)$")
        .expect("a valid pattern")
});

/// sudo's own log file (`Defaults logfile=...`, sudoers(5)): `Dec  2
/// 15:00:00 : alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=...`,
/// the time in local time without a year, as syslog's.
fn sudo_logfile(line: &str, year: i32) -> Option<LogEvent> {
    let c = SUDO_LOGFILE.captures(line)?;
    let mut ev = LogEvent::raw(LogFormat::Rfc3164, &c[2]);
    ev.timestamp_ns = Some(local_ns(&format!("{year} {}", &c[1]), "%Y %b %e %H:%M:%S")?);
    ev.program = Some("sudo".into());
    Some(ev)
}

/// A local time written as `format`, in ns since the epoch.
fn local_ns(text: &str, format: &str) -> Option<i64> {
    use chrono::TimeZone;
    let at = chrono::NaiveDateTime::parse_from_str(text, format).ok()?;
    chrono::Local
        .from_local_datetime(&at)
        .earliest()
        .and_then(|t| t.timestamp_nanos_opt())
}

static DPKG_LOG: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}) ((?:startup|install|upgrade|remove|purge|configure|trigproc|status|conffile) .*)$",
    )
    .expect("a valid pattern")
});

/// dpkg's log (dpkg(1), `--log`): `2026-12-02 15:00:00 install
/// nginx:amd64 <none> 1.22.1-9`, the time in local time.
fn dpkg_log(line: &str) -> Option<LogEvent> {
    let c = DPKG_LOG.captures(line)?;
    let mut ev = LogEvent::raw(LogFormat::Dpkg, &c[2]);
    ev.timestamp_ns = Some(local_ns(&c[1], "%Y-%m-%d %H:%M:%S")?);
    ev.program = Some("dpkg".into());
    Some(ev)
}

static ACCESS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"^(\S+) \S+ (\S+) \[([^\]]+)\] "(\S+) (\S+)(?: \S+)?" (\d{3}) (\d+|-)(?: "((?:[^"\\]|\\.)*)" "((?:[^"\\]|\\.)*)")?"#,
    )
    .expect("a valid pattern")
});

/// Common or Combined Log Format.
fn access(line: &str) -> Option<LogEvent> {
    let c = ACCESS.captures(line)?;
    let ip: IpAddr = c[1].parse().ok()?;
    let mut ev = LogEvent::raw(LogFormat::Access, line);
    ev.source_ip = Some(ip);
    ev.user = Some(&c[2]).filter(|u| *u != "-").map(bounded);
    ev.timestamp_ns = chrono::DateTime::parse_from_str(&c[3], "%d/%b/%Y:%H:%M:%S %z")
        .ok()
        .and_then(|t| t.timestamp_nanos_opt());
    let text = |i: usize| {
        c.get(i)
            .map(|m| m.as_str())
            .filter(|s| !s.is_empty() && *s != "-")
            .map(bounded)
    };
    ev.http = Some(HttpFields {
        method: bounded(&c[4]),
        url: bounded(&c[5]),
        status: c[6].parse().ok()?,
        bytes: c[7].parse().ok(),
        referrer: text(8),
        user_agent: text(9),
    });
    Some(ev)
}

/// A JSON object: its message (`message`, `msg` or `MESSAGE`, the
/// journal's), program and pid (the journal's `SYSLOG_IDENTIFIER`/`_COMM`
/// and `_PID`), and ECS fields it already names.
fn json(line: &str) -> Option<LogEvent> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    let o = v.as_object()?;
    let s = |keys: &[&str]| {
        keys.iter()
            .find_map(|k| o.get(*k).and_then(|x| x.as_str()))
            .map(bounded)
    };
    let message = s(&["message", "msg", "MESSAGE"]).unwrap_or_default();
    let mut ev = LogEvent::raw(LogFormat::Json, &message);
    ev.program = s(&["SYSLOG_IDENTIFIER", "_COMM", "process.name"]);
    // PostgreSQL's own JSON log (`log_destination = jsonlog`).
    let postgres = o.contains_key("backend_type") && o.contains_key("error_severity");
    if postgres && ev.program.is_none() {
        ev.program = Some("postgres".into());
    }
    ev.pid = s(&["_PID", "SYSLOG_PID"])
        .and_then(|p| p.parse().ok())
        .or_else(|| {
            // PostgreSQL's jsonlog: the backend's pid (one per session).
            ["process.pid", "pid"]
                .iter()
                .find_map(|k| o.get(*k).and_then(|p| p.as_u64()))
                .and_then(|p| u32::try_from(p).ok())
        });
    ev.hostname = s(&["_HOSTNAME", "host.hostname"]);
    ev.user = s(&["user.name"]);
    ev.source_ip = s(&["source.ip", "remote_host"]).and_then(|ip| ip.parse().ok());
    ev.timestamp_ns = s(&["__REALTIME_TIMESTAMP"])
        .and_then(|t| t.parse::<i64>().ok())
        .map(|us| us.saturating_mul(1000))
        .or_else(|| {
            let t = s(&["@timestamp", "timestamp", "time"])?;
            chrono::DateTime::parse_from_rfc3339(&t)
                .ok()
                .and_then(|t| t.timestamp_nanos_opt())
                .or_else(|| {
                    // PostgreSQL's: `2026-12-02 16:00:00.123 UTC`.
                    let utc = t.strip_suffix(" UTC")?;
                    chrono::NaiveDateTime::parse_from_str(utc, "%Y-%m-%d %H:%M:%S%.f")
                        .ok()?
                        .and_utc()
                        .timestamp_nanos_opt()
                })
        });
    Some(ev)
}

/// The auth messages daisi reads, in the order tried: (program, pattern,
/// what a match means).
struct Shape {
    programs: &'static [&'static str],
    re: Regex,
    action: Action,
    outcome: Option<Outcome>,
}

static SHAPES: LazyLock<Vec<Shape>> = LazyLock::new(|| {
    let shape = |programs, re: &str, action, outcome| Shape {
        programs,
        re: Regex::new(re).expect("a valid pattern"),
        action,
        outcome,
    };
    use Action::*;
    use Outcome::*;
    const SSHD: &[&str] = &["sshd", "sshd-session"];
    vec![
        shape(
            SSHD,
            r"^Failed (?:password|publickey|keyboard-interactive/pam) for (?:invalid user )?(?P<user>\S*) from (?P<ip>\S+) port (?P<port>\d+)",
            SshLogin,
            Some(Failure),
        ),
        shape(
            SSHD,
            r"^Failed none for (?:invalid user )?(?P<user>\S*) from (?P<ip>\S+) port (?P<port>\d+)",
            SshAttemptNoise,
            Some(Failure),
        ),
        shape(
            SSHD,
            r"^Accepted (?:password|publickey|keyboard-interactive/pam|gssapi-with-mic) for (?P<user>\S+) from (?P<ip>\S+) port (?P<port>\d+)",
            SshLogin,
            Some(Success),
        ),
        shape(
            SSHD,
            r"^Invalid user (?P<user>\S*) from (?P<ip>\S+)(?: port (?P<port>\d+))?",
            SshInvalidUser,
            Some(Failure),
        ),
        shape(
            SSHD,
            r"authentication failure;.*\brhost=(?P<ip>\S+)(?:\s+user=(?P<user>\S+))?",
            SshAttemptNoise,
            Some(Failure),
        ),
        shape(
            &["postgres"],
            r#"password authentication failed for user "(?P<user>[^"]*)""#,
            DbLogin,
            Some(Failure),
        ),
        shape(
            &["postgres"],
            r"connection authorized: user=(?P<user>\S+)",
            DbLogin,
            Some(Success),
        ),
        shape(
            &["sudo"],
            r"^\s*(?P<user>\S+) : (?:\d+ incorrect password attempts?|user NOT in sudoers|command not allowed|a password is required) ; .*?USER=(?P<target>\S+) ; COMMAND=(?P<command>.*)$",
            Sudo,
            Some(Failure),
        ),
        shape(
            &["sudo"],
            r"^\s*(?P<user>\S+) : (?:[^;]*; )*?USER=(?P<target>\S+) ; COMMAND=(?P<command>.*)$",
            Sudo,
            Some(Success),
        ),
        shape(
            &["sudo"],
            // A mistyped password, not (yet) a refusal: no outcome.
            r"pam_unix\(sudo:auth\): authentication failure;.*\bruser=(?P<user>\S*)",
            Sudo,
            None,
        ),
        shape(
            &["su"],
            r"^(?:FAILED SU|FAILED su) (?:\(to (?P<target>\S+)\) )?(?P<user>\S+)",
            Su,
            Some(Failure),
        ),
        shape(
            &["su"],
            // su's own `FAILED SU` line follows: that one is the refusal.
            r"pam_unix\(su(?:-l)?:auth\): authentication failure;.*\bruser=(?P<user>\S*).*\buser=(?P<target>\S+)",
            Su,
            None,
        ),
        shape(
            &["su"],
            r"^(?:Successful su for (?P<target>\S+) by (?P<user>\S+)|\(to (?P<target2>\S+)\) (?P<user2>\S+) on)",
            Su,
            Some(Success),
        ),
        shape(
            &["useradd"],
            r"^new user: name=(?P<target>[^,\s]+)",
            UserAdded,
            Some(Success),
        ),
        shape(
            &["userdel"],
            r"^delete user '(?P<target>[^']+)'",
            UserDeleted,
            Some(Success),
        ),
        shape(
            &["usermod", "gpasswd", "useradd"],
            r"^add '(?P<target>[^']+)' to (?:shadow )?group '(?P<group>[^']+)'",
            GroupChanged,
            Some(Success),
        ),
        shape(
            &["passwd", "chpasswd"],
            r"password changed for (?P<target>\S+)",
            PasswordChanged,
            Some(Success),
        ),
    ]
});

/// Reads what happened from the message of a program daisi knows.
fn program_message(ev: &mut LogEvent) {
    let Some(program) = ev.program.as_deref() else {
        return;
    };
    let Some((shape, c)) = SHAPES
        .iter()
        .filter(|s| s.programs.contains(&program))
        .find_map(|s| s.re.captures(&ev.message).map(|c| (s, c)))
    else {
        return;
    };
    let field = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| c.name(n))
            .map(|m| m.as_str())
            .filter(|s| !s.is_empty())
            .map(bounded)
    };
    let (user, target, command) = (
        field(&["user", "user2"]),
        field(&["target", "target2"]),
        field(&["command"]),
    );
    let ip = field(&["ip"]).and_then(|ip| ip.parse().ok());
    let port = field(&["port"]).and_then(|p| p.parse().ok());
    ev.action = Some(shape.action);
    ev.outcome = shape.outcome;
    ev.user = user.or(ev.user.take());
    ev.target_user = target;
    ev.command = command;
    ev.source_ip = ip.or(ev.source_ip);
    ev.source_port = port;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(line: &str) -> LogEvent {
        parse(line, 2026)
    }

    #[test]
    fn rfc3164_auth_log_lines_name_what_happened() {
        let e = p("Dec  1 09:57:43 victim sshd[4211]: Failed password for invalid user admin from 10.213.0.66 port 51234 ssh2");
        assert_eq!(e.format, LogFormat::Rfc3164);
        assert_eq!(e.program.as_deref(), Some("sshd"));
        assert_eq!(e.pid, Some(4211));
        assert_eq!(e.hostname.as_deref(), Some("victim"));
        assert_eq!(e.action, Some(Action::SshLogin));
        assert_eq!(e.outcome, Some(Outcome::Failure));
        assert_eq!(e.user.as_deref(), Some("admin"));
        assert_eq!(e.source_ip, Some("10.213.0.66".parse().unwrap()));
        assert_eq!(e.source_port, Some(51234));
        assert!(e.timestamp_ns.is_some());

        let e = p("Dec  1 09:58:01 victim sshd[4300]: Accepted password for alice from 10.213.0.66 port 51300 ssh2");
        assert_eq!(
            (e.action, e.outcome),
            (Some(Action::SshLogin), Some(Outcome::Success))
        );
        assert_eq!(e.user.as_deref(), Some("alice"));

        let e = p(
            "Dec  1 09:58:02 victim sshd[4301]: Invalid user oracle from 10.213.0.66 port 40000",
        );
        assert_eq!(e.action, Some(Action::SshInvalidUser));
        assert_eq!(e.user.as_deref(), Some("oracle"));

        let e = p("Dec  1 10:00:00 victim sudo:    alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/apt update");
        assert_eq!(
            (e.action, e.outcome),
            (Some(Action::Sudo), Some(Outcome::Success))
        );
        assert_eq!(e.user.as_deref(), Some("alice"));
        assert_eq!(e.target_user.as_deref(), Some("root"));
        assert_eq!(e.command.as_deref(), Some("/usr/bin/apt update"));

        let e = p("Dec  1 10:00:05 victim sudo:      bob : user NOT in sudoers ; TTY=pts/1 ; PWD=/tmp ; USER=root ; COMMAND=/bin/sh");
        assert_eq!(
            (e.action, e.outcome),
            (Some(Action::Sudo), Some(Outcome::Failure))
        );
        assert_eq!(e.user.as_deref(), Some("bob"));

        let e = p("Dec  1 10:00:09 victim sudo:      bob : 3 incorrect password attempts ; TTY=pts/1 ; PWD=/tmp ; USER=root ; COMMAND=/bin/sh");
        assert_eq!(e.outcome, Some(Outcome::Failure));

        let e = p("Dec  1 10:01:00 victim su[512]: FAILED SU (to root) bob on pts/1");
        assert_eq!(
            (e.action, e.outcome),
            (Some(Action::Su), Some(Outcome::Failure))
        );
        assert_eq!(
            (e.user.as_deref(), e.target_user.as_deref()),
            (Some("bob"), Some("root"))
        );

        let e = p("Dec  1 10:02:00 victim useradd[700]: new user: name=backdoor, UID=1001, GID=1001, home=/home/backdoor, shell=/bin/bash, from=/dev/pts/0");
        assert_eq!(e.action, Some(Action::UserAdded));
        assert_eq!(e.target_user.as_deref(), Some("backdoor"));

        let e = p("Dec  1 10:02:01 victim usermod[701]: add 'backdoor' to group 'sudo'");
        assert_eq!(e.action, Some(Action::GroupChanged));
    }

    #[test]
    fn postgresqls_json_log() {
        let e = p(
            r#"{"timestamp":"2026-12-02 16:00:00.123 UTC","user":"postgres","dbname":"postgres","pid":4242,"remote_host":"127.0.0.1","remote_port":50412,"session_id":"1","line_num":1,"ps":"authentication","session_start":"2026-12-02 16:00:00 UTC","vxid":"3/1","txid":0,"error_severity":"FATAL","state_code":"28P01","message":"password authentication failed for user \"postgres\"","detail":"Connection matched pg_hba.conf line 1","backend_type":"client backend","query_id":0}"#,
        );
        assert_eq!(e.program.as_deref(), Some("postgres"));
        assert_eq!(
            (e.action, e.outcome),
            (Some(Action::DbLogin), Some(Outcome::Failure))
        );
        assert_eq!(e.user.as_deref(), Some("postgres"));
        assert_eq!(e.source_ip, Some("127.0.0.1".parse().unwrap()));
        assert_eq!(e.timestamp_ns, Some(1_796_227_200_123_000_000));
        let e = p(
            r#"{"timestamp":"2026-12-02 16:00:01.000 UTC","pid":4243,"remote_host":"127.0.0.1","error_severity":"LOG","message":"connection authorized: user=postgres database=postgres application_name=psql","backend_type":"client backend"}"#,
        );
        assert_eq!(
            (e.action, e.outcome),
            (Some(Action::DbLogin), Some(Outcome::Success))
        );
        // Its stderr log, with the source naming the program.
        let e = parse_from(
            r#"2026-12-02 16:00:02.000 UTC [4244] FATAL:  password authentication failed for user "admin""#,
            2026,
            Some("postgres"),
        );
        assert_eq!(e.action, Some(Action::DbLogin));
        assert_eq!(e.user.as_deref(), Some("admin"));
    }

    #[test]
    fn sudos_own_log_file() {
        let e = p("Dec  2 15:00:07 : support : user NOT in sudoers ; TTY=unknown ; PWD=/home/support ; USER=root ; COMMAND=/usr/bin/id");
        assert_eq!(e.program.as_deref(), Some("sudo"));
        assert_eq!(
            (e.action, e.outcome),
            (Some(Action::Sudo), Some(Outcome::Failure))
        );
        assert_eq!(e.user.as_deref(), Some("support"));
        assert_eq!(e.target_user.as_deref(), Some("root"));
        assert_eq!(e.command.as_deref(), Some("/usr/bin/id"));
        let t = chrono::DateTime::from_timestamp_nanos(e.timestamp_ns.unwrap())
            .with_timezone(&chrono::Local);
        assert_eq!(t.format("%m-%d %H:%M:%S").to_string(), "12-02 15:00:07");
        let e = p("Dec 12 09:01:00 : labadmin : TTY=unknown ; PWD=/home/labadmin ; USER=root ; COMMAND=/usr/bin/uptime");
        assert_eq!(
            (e.action, e.outcome),
            (Some(Action::Sudo), Some(Outcome::Success))
        );
        assert_eq!(e.user.as_deref(), Some("labadmin"));
        // A syslog line is not taken for one.
        let e = p("Dec  1 10:00:00 victim sudo:    alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/apt update");
        assert_eq!(e.hostname.as_deref(), Some("victim"));
    }

    #[test]
    fn dpkg_log() {
        let e = p("2026-12-02 18:49:33 install daisi-lab-report:all <none> 1.0");
        assert_eq!(e.format, LogFormat::Dpkg);
        assert_eq!(e.program.as_deref(), Some("dpkg"));
        assert_eq!(e.message, "install daisi-lab-report:all <none> 1.0");
        let t = chrono::DateTime::from_timestamp_nanos(e.timestamp_ns.unwrap())
            .with_timezone(&chrono::Local);
        assert_eq!(t.format("%m-%d %H:%M:%S").to_string(), "12-02 18:49:33");
        // Another program's line with such a time is not taken for dpkg's.
        assert_eq!(p("2026-12-02 18:49:33 app started").format, LogFormat::Raw);
    }

    #[test]
    fn rfc5424_and_json_and_raw() {
        let e = p("<38>1 2026-12-01T10:00:00.123Z victim sshd 4211 - - Failed password for root from 10.0.0.9 port 22 ssh2");
        assert_eq!(e.format, LogFormat::Rfc5424);
        assert_eq!(e.timestamp_ns, Some(1_796_119_200_123_000_000));
        assert_eq!(e.outcome, Some(Outcome::Failure));
        assert_eq!(e.user.as_deref(), Some("root"));

        // The journal's export (journalctl -o json).
        let e = p(
            r#"{"__REALTIME_TIMESTAMP":"1796119200000000","_HOSTNAME":"victim","SYSLOG_IDENTIFIER":"sshd","_PID":"99","MESSAGE":"Accepted publickey for deploy from 10.0.0.7 port 4000 ssh2"}"#,
        );
        assert_eq!(e.format, LogFormat::Json);
        assert_eq!(e.pid, Some(99));
        assert_eq!(e.timestamp_ns, Some(1_796_119_200_000_000_000));
        assert_eq!(
            (e.action, e.outcome),
            (Some(Action::SshLogin), Some(Outcome::Success))
        );
        assert_eq!(e.user.as_deref(), Some("deploy"));

        let e = p("just some text from an application");
        assert_eq!(e.format, LogFormat::Raw);
        assert_eq!(e.message, "just some text from an application");
        assert_eq!(e.action, None);
        // Not JSON after all.
        assert_eq!(p("{not json").format, LogFormat::Raw);
    }

    #[test]
    fn access_logs_common_combined_and_python() {
        let e = p(
            r#"10.213.0.66 - - [01/Dec/2026:09:57:43 +0000] "GET /.git/config HTTP/1.1" 404 153 "-" "DirBuster-1.0-RC1 (http://www.owasp.org)""#,
        );
        assert_eq!(e.format, LogFormat::Access);
        assert_eq!(e.source_ip, Some("10.213.0.66".parse().unwrap()));
        let h = e.http.unwrap();
        assert_eq!(
            (h.method.as_str(), h.url.as_str(), h.status),
            ("GET", "/.git/config", 404)
        );
        assert_eq!(h.bytes, Some(153));
        assert_eq!(h.referrer, None);
        assert_eq!(
            h.user_agent.as_deref(),
            Some("DirBuster-1.0-RC1 (http://www.owasp.org)")
        );
        assert!(e.timestamp_ns.is_some());
        // Python's http.server: its own date format, no size.
        let e = p(r#"10.213.0.20 - - [01/Dec/2026 09:57:43] "GET /docs/ HTTP/1.1" 200 -"#);
        assert_eq!(e.http.unwrap().status, 200);
        assert_eq!(e.timestamp_ns, None);
    }

    #[test]
    fn fields_are_bounded_and_hostile_bytes_kept_as_text() {
        let long = format!("Dec  1 09:57:43 victim app[1]: {}", "é".repeat(5000));
        let e = p(&long);
        assert!(e.message.len() <= MAX_FIELD);
        let e = p("\u{1b}[31mred\u{0} and \"quotes\"");
        assert_eq!(e.format, LogFormat::Raw);
    }
}
