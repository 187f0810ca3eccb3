//! Host baselines: what each program on a host does, learnt during a
//! learning period, and the findings when it then does something else.
//!
//! A profile maps each program (executable path) to its [`Behaviour`]s: the
//! programs it starts, the users it runs as, the files it reads and writes
//! (generalized), the peers it connects to, whether it listens, accepts,
//! changes ids, creates in-memory files, traces, loads modules or mounts.
//! Observations come from the collector's batches: the process's lineage
//! (parent → child edges, user) and its activity (argument events), and
//! each program's call sequences ([`sequences`]).
//!
//! After learning, a behaviour the profile does not hold is a finding only
//! when it matters (no alert for an ordinary file a program had not opened
//! before): a new child program, a sensitive file, a new peer, listening or
//! accepting, an id change, in-memory files, tracing, modules, mounts,
//! deletions under watched paths, a new user. Each finding says what was
//! seen and what the profile holds.
//!
//! Profiles are saved per host as versioned JSON; behaviours accepted by an
//! operator (`daisi baseline accept`) live in a file of their own beside
//! them, which configuration management can also write.

#[cfg(feature = "torch")]
pub mod lm;
pub mod sequences;

use crate::messages::{Activity, Behaviour, Peer, ProcessInfo, Severity};
pub use sequences::Sequences;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The profile file format this build reads and writes.
pub const FORMAT: u32 = 1;

/// Behaviours a program's profile holds at most (past it, new ones are
/// not learnt: `baseline.not_learnt`).
pub const MAX_BEHAVIOURS: usize = 4096;

/// Programs a profile holds at most (past it, new programs are not learnt).
pub const MAX_PROGRAMS: usize = 16_384;

/// Distinct addresses on one port before a program's peers on that port
/// generalize to `*:port` (clients of many servers: package mirrors, APIs).
const PEERS_PER_PORT: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a daisi profile: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{path}: profile format {found}, this build reads format {FORMAT}")]
    Format { path: PathBuf, found: u32 },
}

/// One host's profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub format: u32,
    pub host: String,
    /// Learning started (Unix ns).
    pub learning_since_ns: u64,
    /// Learning ends, then findings start (Unix ns).
    pub learning_until_ns: u64,
    /// Observations learnt from.
    #[serde(default)]
    pub observations: u64,
    pub programs: BTreeMap<String, BTreeSet<Behaviour>>,
    /// Each program's call sequences (programs as in `programs`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sequences: BTreeMap<String, Sequences>,
}

impl Profile {
    pub fn new(host: &str, since_ns: u64, learn_for_ns: u64) -> Profile {
        Profile {
            format: FORMAT,
            host: host.to_string(),
            learning_since_ns: since_ns,
            learning_until_ns: since_ns.saturating_add(learn_for_ns),
            observations: 0,
            programs: BTreeMap::new(),
            sequences: BTreeMap::new(),
        }
    }

    pub fn learning(&self, now_ns: u64) -> bool {
        now_ns < self.learning_until_ns
    }

    /// Whether `program` may do `b` (learnt, or accepted).
    pub fn allows(&self, program: &str, b: &Behaviour) -> bool {
        let Some(set) = self.programs.get(program) else {
            return false;
        };
        if set.contains(b) {
            return true;
        }
        match b {
            // A peer on a port the program reaches many addresses on.
            Behaviour::Connects(p) => port_of(p)
                .is_some_and(|port| set.contains(&Behaviour::Connects(format!("*:{port}")))),
            _ => false,
        }
    }

    /// Whether `program` can learn more (the profile and its entry have
    /// room).
    pub fn has_room(&self, program: &str) -> bool {
        match self.programs.get(program) {
            Some(set) => set.len() < MAX_BEHAVIOURS,
            None => self.programs.len() < MAX_PROGRAMS,
        }
    }

    /// Adds `b` to `program`; false when it was there or there is no room.
    pub fn learn(&mut self, program: &str, b: Behaviour) -> bool {
        if self.programs.len() >= MAX_PROGRAMS && !self.programs.contains_key(program) {
            return false;
        }
        let set = self.programs.entry(program.to_string()).or_default();
        if set.len() >= MAX_BEHAVIOURS || set.contains(&b) {
            return false;
        }
        if let Behaviour::Connects(p) = &b {
            if let Some(port) = port_of(p) {
                let wide = Behaviour::Connects(format!("*:{port}"));
                if set.contains(&wide) {
                    return false;
                }
                let same_port =
                    |x: &Behaviour| matches!(x, Behaviour::Connects(q) if port_of(q) == Some(port));
                if set.iter().filter(|x| same_port(x)).count() + 1 >= PEERS_PER_PORT {
                    set.retain(|x| !same_port(x));
                    set.insert(wide);
                    return true;
                }
            }
        }
        set.insert(b);
        true
    }

    /// Learns a batch of `program`'s calls (`calls[..context]` the previous
    /// batch's tail); the new windows (none when the profile has no room
    /// for another program).
    pub fn learn_calls(&mut self, program: &str, calls: &[u32], context: usize) -> usize {
        if !self.sequences.contains_key(program) && self.sequences.len() >= MAX_PROGRAMS {
            return 0;
        }
        self.sequences
            .entry(program.to_string())
            .or_default()
            .learn(calls, context)
    }

    /// Adds everything `other` holds.
    pub fn merge(&mut self, other: &BTreeMap<String, BTreeSet<Behaviour>>) {
        for (program, set) in other {
            for b in set {
                self.learn(program, b.clone());
            }
        }
    }

    /// What `program` is known to do, for a finding's text (bounded).
    pub fn holds(&self, program: &str, like: impl Fn(&Behaviour) -> bool) -> String {
        let Some(set) = self.programs.get(program) else {
            return "the profile has no entry for this program".into();
        };
        let same: Vec<String> = set
            .iter()
            .filter(|b| like(b))
            .map(|b| b.to_string())
            .collect();
        match same.len() {
            0 => format!(
                "the profile holds nothing of this kind for it ({} behaviours)",
                set.len()
            ),
            n if n <= 4 => format!("the profile holds: {}", same.join(", ")),
            n => format!(
                "the profile holds: {}, … ({n} in all)",
                same[..4].join(", ")
            ),
        }
    }

    /// Reads a profile file.
    pub fn load(path: &Path) -> Result<Profile, BaselineError> {
        let text = std::fs::read_to_string(path).map_err(|source| BaselineError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        #[derive(Deserialize)]
        struct Probe {
            format: u32,
        }
        let probe: Probe = serde_json::from_str(&text).map_err(|source| BaselineError::Parse {
            path: path.to_path_buf(),
            source,
        })?;
        if probe.format != FORMAT {
            return Err(BaselineError::Format {
                path: path.to_path_buf(),
                found: probe.format,
            });
        }
        serde_json::from_str(&text).map_err(|source| BaselineError::Parse {
            path: path.to_path_buf(),
            source,
        })
    }

    pub fn save(&self, path: &Path) -> Result<(), BaselineError> {
        write_json(path, self)
    }
}

/// Writes `value` as JSON to a temporary file, then renames it: a reader
/// (a node, `daisi baseline show`) never sees half a file.
fn write_json(path: &Path, value: &impl Serialize) -> Result<(), BaselineError> {
    let io = |source| BaselineError::Io {
        path: path.to_path_buf(),
        source,
    };
    let text = serde_json::to_string_pretty(value).expect("maps of strings serialize");
    crate::files::write_atomic(path, text.as_bytes()).map_err(io)
}

/// The profile file of `host` in `dir`.
pub fn profile_path(dir: &Path, host: &str) -> PathBuf {
    let safe: String = host
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    dir.join(format!("{safe}.json"))
}

/// Where `host`'s program sequence models live in `dir` (`<host>.lm/`).
pub fn models_dir(dir: &Path, host: &str) -> PathBuf {
    profile_path(dir, host).with_extension("lm")
}

/// A program's model file name: a stable hash of the program (its name may
/// hold any character).
pub fn model_file(program: &str) -> String {
    format!("{:016x}.safetensors", crate::fnv1a(program.bytes()))
}

/// Behaviours accepted by operators: `{"<host or *>": {"<program>": [...]}}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Accepted(pub BTreeMap<String, BTreeMap<String, BTreeSet<Behaviour>>>);

impl Accepted {
    pub fn path(dir: &Path) -> PathBuf {
        dir.join("accepted.json")
    }

    /// The file, or nothing accepted when there is none.
    pub fn load(path: &Path) -> Result<Accepted, BaselineError> {
        match std::fs::read_to_string(path) {
            Ok(text) => serde_json::from_str(&text).map_err(|source| BaselineError::Parse {
                path: path.to_path_buf(),
                source,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Accepted::default()),
            Err(source) => Err(BaselineError::Io {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    pub fn save(&self, path: &Path) -> Result<(), BaselineError> {
        write_json(path, self)
    }

    /// What `host` may do beyond its profile (its own entries and `*`'s).
    pub fn for_host(&self, host: &str) -> BTreeMap<String, BTreeSet<Behaviour>> {
        let mut out: BTreeMap<String, BTreeSet<Behaviour>> = BTreeMap::new();
        for key in ["*", host] {
            for (program, set) in self.0.get(key).into_iter().flatten() {
                out.entry(program.clone())
                    .or_default()
                    .extend(set.iter().cloned());
            }
        }
        out
    }

    /// Adds one behaviour; false when it was there.
    pub fn add(&mut self, host: &str, program: &str, b: Behaviour) -> bool {
        self.0
            .entry(host.to_string())
            .or_default()
            .entry(program.to_string())
            .or_default()
            .insert(b)
    }

    /// Accepts the baseline findings of `alert` for `host` (`*`: every
    /// host) in the file of `dir`, which running nodes reload: each
    /// finding shown (`program: behaviour`) and whether it was new.
    pub fn accept_alert(
        dir: &Path,
        host: &str,
        alert: &crate::messages::Alert,
    ) -> Result<Vec<(String, bool)>, BaselineError> {
        crate::files::create_dir(dir).map_err(|source| BaselineError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = Accepted::path(dir);
        let mut accepted = Accepted::load(&path)?;
        let out = findings_of(alert)
            .into_iter()
            .map(|f| {
                let shown = format!("{}: {}", f.program, f.behaviour);
                (shown, accepted.add(host, &f.program, f.behaviour))
            })
            .collect();
        accepted.save(&path)?;
        Ok(out)
    }
}

/// The findings of an alert an operator can accept: the finding itself,
/// or those of an incident's process tree (baseline findings; Sigma
/// matches, as the program matching the rule).
pub fn findings_of(alert: &crate::messages::Alert) -> Vec<crate::messages::BaselineFields> {
    let mut found: Vec<_> = alert.baseline.iter().cloned().collect();
    found.extend(
        alert
            .tree
            .iter()
            .flat_map(|m| &m.findings)
            .filter(|f| {
                matches!(
                    f.module,
                    crate::messages::AlertModule::Baseline | crate::messages::AlertModule::Sigma
                )
            })
            .filter_map(|f| f.baseline.clone()),
    );
    found
}

/// The port of a `ip:port` / `*:port` / `[v6]:port` peer.
fn port_of(peer: &str) -> Option<u16> {
    if peer.starts_with("unix:") {
        return None;
    }
    peer.rsplit_once(':')?.1.parse().ok()
}

/// Files whose access matters whoever opens them: credentials, keys,
/// persistence, the loader.
#[derive(Debug, Clone)]
pub struct Sensitive {
    globs: globset::GlobSet,
}

impl Sensitive {
    pub fn new(patterns: &[String]) -> Result<Sensitive, globset::Error> {
        let mut b = globset::GlobSetBuilder::new();
        for p in patterns {
            b.add(
                globset::GlobBuilder::new(p)
                    .literal_separator(true)
                    .build()?,
            );
        }
        Ok(Sensitive { globs: b.build()? })
    }

    pub fn matches(&self, path: &str) -> bool {
        self.globs.is_match(path)
    }
}

/// The default sensitive paths.
pub fn default_sensitive() -> Vec<String> {
    [
        "/etc/shadow",
        "/etc/gshadow",
        "/etc/shadow-",
        "/etc/sudoers",
        "/etc/sudoers.d/*",
        "/etc/passwd",
        "/etc/group",
        "/etc/ld.so.preload",
        "/etc/crontab",
        "/etc/cron.*/*",
        "/var/spool/cron/**",
        "/etc/systemd/system/**",
        "/lib/systemd/system/**",
        "/usr/lib/systemd/system/**",
        "/etc/rc.local",
        "/etc/profile.d/*",
        "/root/.ssh/*",
        "/root/.bashrc",
        "/root/.profile",
        "/root/.bash_history",
        "/home/*/.ssh/*",
        "/home/*/.bashrc",
        "/home/*/.profile",
        "/etc/ssh/*_key",
        "/etc/ssh/sshd_config",
        "/etc/pam.d/*",
        "/proc/*/mem",
        "/proc/kcore",
        "/dev/mem",
        "/boot/**",
    ]
    .map(String::from)
    .to_vec()
}

/// A path with numeric parts (pids, fds) made `*`.
fn numeric_free(path: &str) -> String {
    path.split('/')
        .map(|p| {
            if !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit()) {
                "*"
            } else {
                p
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// The pattern a file is learnt as: a sensitive file as itself (numeric
/// parts made `*`), another as its directory's `*`.
pub fn file_pattern(path: &str, sensitive: &Sensitive) -> String {
    let p = numeric_free(path);
    if sensitive.matches(path) {
        return p;
    }
    match p.rsplit_once('/') {
        Some(("", _)) => "/*".into(),
        Some((dir, _)) => format!("{dir}/*"),
        None => p,
    }
}

/// What a finding is, as `rule.name`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    NewChild,
    NewUser,
    SensitiveRead,
    SensitiveWrite,
    NewPeer,
    NewListener,
    PrivilegeChange,
    MemoryFile,
    Tracing,
    ModuleLoad,
    Mount,
    Removal,
    Sequence,
}

impl Rule {
    pub fn name(self) -> &'static str {
        match self {
            Rule::NewChild => "baseline.new_child",
            Rule::NewUser => "baseline.new_user",
            Rule::SensitiveRead => "baseline.sensitive_read",
            Rule::SensitiveWrite => "baseline.sensitive_write",
            Rule::NewPeer => "baseline.new_peer",
            Rule::NewListener => "baseline.new_listener",
            Rule::PrivilegeChange => "baseline.privilege_change",
            Rule::MemoryFile => "baseline.memory_file",
            Rule::Tracing => "baseline.tracing",
            Rule::ModuleLoad => "baseline.module_load",
            Rule::Mount => "baseline.mount",
            Rule::Removal => "baseline.removal",
            Rule::Sequence => "baseline.sequence",
        }
    }
}

/// What a process did that its program's profile does not hold.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub rule: Rule,
    pub severity: Severity,
    pub program: String,
    pub behaviour: Behaviour,
    /// The file or peer concerned, unexpanded (the behaviour may be a
    /// pattern).
    pub file: Option<String>,
    pub peer: Option<Peer>,
    /// One line: what was seen, and what the profile holds.
    pub summary: String,
}

/// Shells and interpreters: a service starting one, or one connecting
/// out, is how most intrusions continue.
const SHELLS: [&str; 7] = ["sh", "dash", "bash", "zsh", "ash", "ksh", "busybox"];
const INTERPRETERS: [&str; 6] = ["python", "perl", "ruby", "php", "node", "lua"];

/// `exe`'s file name is one of `names`, maybe with a version (`python3.13`).
fn named(exe: &str, names: &[&str]) -> bool {
    let base = exe.rsplit('/').next().unwrap_or(exe);
    names.iter().any(|s| {
        base.strip_prefix(s)
            .is_some_and(|v| v.chars().all(|c| c.is_ascii_digit() || c == '.'))
    })
}

/// A shell or an interpreter.
fn is_shell(exe: &str) -> bool {
    named(exe, &SHELLS) || named(exe, &INTERPRETERS)
}

/// The name a process's program has in a profile: its executable, and in
/// a container whose image is known, `[image] executable` (every container
/// of an image shares its programs' profiles; the host's own `nginx` is
/// another program).
pub fn program_of(p: &ProcessInfo) -> Option<String> {
    let exe = p.executable.as_deref()?;
    Some(match p.container.as_ref().and_then(|c| c.image.as_ref()) {
        Some(image) => format!("[{}] {exe}", image.name),
        None => exe.to_string(),
    })
}

/// The behaviours one observation shows: `(program, behaviour, what)` where
/// `what` is the file or peer itself.
pub fn behaviours<'a>(
    lineage: &[ProcessInfo],
    activity: impl IntoIterator<Item = &'a Activity>,
    sensitive: &Sensitive,
) -> Vec<(String, Behaviour, Option<String>, Option<Peer>)> {
    let mut out = Vec::new();
    let Some(me) = lineage.first() else {
        return out;
    };
    let Some(exe) = program_of(me) else {
        return out;
    };
    if let Some(parent_exe) = lineage.get(1).and_then(program_of) {
        // A fork without exec runs its parent's program: no edge.
        if parent_exe != exe {
            out.push((parent_exe, Behaviour::Child(exe.clone()), None, None));
        }
    }
    if let Some(uid) = me.uid {
        out.push((exe.clone(), Behaviour::RunsAs(uid), None, None));
    }
    for a in activity {
        let (b, file, peer) = match a {
            Activity::Open { path, write } => {
                let pat = file_pattern(path, sensitive);
                let b = if *write {
                    Behaviour::Writes(pat)
                } else {
                    Behaviour::Reads(pat)
                };
                (b, Some(path.clone()), None)
            }
            Activity::Connect { peer } => (
                Behaviour::Connects(peer.to_string()),
                None,
                Some(peer.clone()),
            ),
            Activity::Bind { peer } => (
                Behaviour::Listens(peer.to_string()),
                None,
                Some(peer.clone()),
            ),
            Activity::Accept { peer } => (Behaviour::Accepts, None, Some(peer.clone())),
            Activity::SetUid { uid } => (Behaviour::SetsUid(*uid), None, None),
            Activity::SetGid { gid } => (Behaviour::SetsGid(*gid), None, None),
            Activity::Ptrace { .. } => (Behaviour::Traces, None, None),
            Activity::LoadModule { .. } => (Behaviour::LoadsModules, None, None),
            Activity::Mount { .. } => (Behaviour::Mounts, None, None),
            Activity::MemfdCreate { .. } => (Behaviour::MemoryFiles, None, None),
            Activity::Unlink { path } => (
                Behaviour::Removes(file_pattern(path, sensitive)),
                Some(path.clone()),
                None,
            ),
            Activity::Rename { from, to } => (
                Behaviour::Removes(file_pattern(from, sensitive)),
                Some(format!("{from} -> {to}")),
                None,
            ),
            Activity::Unknown => continue,
        };
        out.push((exe.clone(), b, file, peer));
    }
    out
}

/// The finding for a behaviour the profile does not hold, or `None` when
/// it does not matter enough (an ordinary file, a bound port 0...).
pub fn judge(
    profile: &Profile,
    program: &str,
    b: &Behaviour,
    file: Option<&str>,
    peer: Option<&Peer>,
    sensitive: &Sensitive,
) -> Option<Finding> {
    if profile.allows(program, b) {
        return None;
    }
    // The users a program runs as are judged once its profile knows some.
    let known = profile
        .programs
        .get(program)
        .is_some_and(|s| s.iter().any(|x| matches!(x, Behaviour::RunsAs(_))));
    let holds = |like: &dyn Fn(&Behaviour) -> bool| profile.holds(program, like);
    let (rule, severity, what, held) = match b {
        Behaviour::Child(child) => {
            // A shell starting programs is what shells do; anything else
            // starting a shell or an interpreter is not.
            let sev = if is_shell(child) && !named(program, &SHELLS) {
                Severity::High
            } else {
                Severity::Medium
            };
            (
                Rule::NewChild,
                sev,
                format!("{program} started {child}"),
                holds(&|x| matches!(x, Behaviour::Child(_))),
            )
        }
        Behaviour::RunsAs(uid) if known => (
            Rule::NewUser,
            if *uid == 0 {
                Severity::High
            } else {
                Severity::Medium
            },
            format!("{program} runs as uid {uid}"),
            holds(&|x| matches!(x, Behaviour::RunsAs(_))),
        ),
        Behaviour::Reads(_) | Behaviour::Writes(_)
            if file.is_some_and(|f| sensitive.matches(f)) =>
        {
            let write = matches!(b, Behaviour::Writes(_));
            (
                if write {
                    Rule::SensitiveWrite
                } else {
                    Rule::SensitiveRead
                },
                if write {
                    Severity::High
                } else {
                    Severity::Medium
                },
                format!(
                    "{program} {} {}",
                    if write { "wrote" } else { "read" },
                    file.unwrap_or_default()
                ),
                holds(&|x| matches!(x, Behaviour::Reads(_) | Behaviour::Writes(_))),
            )
        }
        Behaviour::Connects(p) => {
            let never = !profile
                .programs
                .get(program)
                .is_some_and(|s| s.iter().any(|x| matches!(x, Behaviour::Connects(_))));
            // Loopback peers of programs that connect anyway: routine.
            let local = peer.is_some_and(|p| match p {
                Peer::Inet { ip, .. } => ip.is_loopback(),
                Peer::Unix { .. } => true,
                Peer::Other => true,
            });
            if local && !never {
                return None;
            }
            let sev = if is_shell(program) || never {
                Severity::High
            } else {
                Severity::Low
            };
            (
                Rule::NewPeer,
                sev,
                format!("{program} connected to {p}"),
                holds(&|x| matches!(x, Behaviour::Connects(_))),
            )
        }
        Behaviour::Listens(p) => (
            Rule::NewListener,
            Severity::Medium,
            format!("{program} listens on {p}"),
            holds(&|x| matches!(x, Behaviour::Listens(_) | Behaviour::Accepts)),
        ),
        Behaviour::Accepts => (
            Rule::NewListener,
            Severity::High,
            format!(
                "{program} accepted a connection{}",
                peer.map(|p| format!(" from {p}")).unwrap_or_default()
            ),
            holds(&|x| matches!(x, Behaviour::Listens(_) | Behaviour::Accepts)),
        ),
        Behaviour::SetsUid(uid) => (
            Rule::PrivilegeChange,
            if *uid == 0 {
                Severity::High
            } else {
                Severity::Medium
            },
            format!("{program} asked for uid {uid}"),
            holds(&|x| matches!(x, Behaviour::SetsUid(_) | Behaviour::RunsAs(_))),
        ),
        Behaviour::SetsGid(gid) => (
            Rule::PrivilegeChange,
            Severity::Medium,
            format!("{program} asked for gid {gid}"),
            holds(&|x| matches!(x, Behaviour::SetsGid(_))),
        ),
        Behaviour::MemoryFiles => (
            Rule::MemoryFile,
            Severity::High,
            format!("{program} created an in-memory file"),
            holds(&|x| matches!(x, Behaviour::MemoryFiles)),
        ),
        Behaviour::Traces => (
            Rule::Tracing,
            Severity::High,
            format!("{program} traced another process"),
            holds(&|x| matches!(x, Behaviour::Traces)),
        ),
        Behaviour::LoadsModules => (
            Rule::ModuleLoad,
            Severity::Critical,
            format!("{program} loaded a kernel module"),
            holds(&|x| matches!(x, Behaviour::LoadsModules)),
        ),
        Behaviour::Mounts => (
            Rule::Mount,
            Severity::Medium,
            format!("{program} mounted a file system"),
            holds(&|x| matches!(x, Behaviour::Mounts)),
        ),
        Behaviour::Removes(_) => (
            Rule::Removal,
            Severity::Medium,
            format!("{program} deleted or renamed {}", file.unwrap_or_default()),
            holds(&|x| matches!(x, Behaviour::Removes(_))),
        ),
        _ => return None,
    };
    Some(Finding {
        rule,
        severity,
        program: program.to_string(),
        behaviour: b.clone(),
        file: file.map(str::to_string),
        peer: peer.cloned(),
        summary: format!("{what}, which its baseline does not hold ({held})"),
    })
}

/// The finding for a batch of `program`'s calls whose order its profile
/// does not hold (see [`sequences`]): by its learnt windows, and with its
/// model (`model`) only the unknown windows the model finds unlikely count;
/// none when the program is unsettled or its order is accepted
/// (`Behaviour::UnusualSequences`).
pub fn judge_calls(
    profile: &Profile,
    program: &str,
    calls: &[u32],
    context: usize,
    abi: crate::messages::SyscallAbi,
    model: Option<&dyn sequences::CallModel>,
) -> Option<Finding> {
    if profile.allows(program, &Behaviour::UnusualSequences) {
        return None;
    }
    let s = profile.sequences.get(program)?;
    let summary = match model {
        None => {
            let u = s.judge(calls, context)?;
            format!(
                "{program} made calls in an order its baseline does not hold: {} of {} consecutive windows of {} calls unknown, the first `{}` (the profile holds {} distinct windows from {} learnt)",
                u.misses,
                u.windows.min(sequences::FRAME),
                sequences::NGRAM,
                u.example_names(abi),
                s.ngrams.len(),
                s.windows
            )
        }
        Some(m) => {
            // Judged where the learnt windows would judge (settled), and
            // only on windows they do not hold: the model removes misses.
            if !s.settled() {
                return None;
            }
            let u = m.judge(calls, context, s)?;
            format!(
                "{program} made calls its sequence model finds unlikely: {} of {} consecutive windows, the first `{}` ({})",
                u.misses,
                u.windows.min(sequences::FRAME),
                u.example_names(abi),
                m.describe()
            )
        }
    };
    Some(Finding {
        rule: Rule::Sequence,
        severity: Severity::Medium,
        program: program.to_string(),
        behaviour: Behaviour::UnusualSequences,
        file: None,
        peer: None,
        summary,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proc_(pid: u32, exe: &str, uid: u32) -> ProcessInfo {
        ProcessInfo {
            pid,
            name: exe.rsplit('/').next().unwrap().into(),
            executable: Some(exe.into()),
            uid: Some(uid),
            ..Default::default()
        }
    }

    fn sensitive() -> Sensitive {
        Sensitive::new(&default_sensitive()).unwrap()
    }

    fn findings(p: &Profile, lineage: &[ProcessInfo], act: &[Activity]) -> Vec<Finding> {
        let s = sensitive();
        behaviours(lineage, act, &s)
            .into_iter()
            .filter_map(|(prog, b, f, peer)| judge(p, &prog, &b, f.as_deref(), peer.as_ref(), &s))
            .collect()
    }

    fn learn(p: &mut Profile, lineage: &[ProcessInfo], act: &[Activity]) {
        for (prog, b, _, _) in behaviours(lineage, act, &sensitive()) {
            p.learn(&prog, b);
        }
    }

    /// What a web server did while learning raises nothing; a shell it
    /// starts, the shell reading /etc/shadow and connecting out are
    /// findings that say what was seen and what the profile holds.
    /// A settled program's unusual calls are one finding naming the first
    /// unknown window; accepted, its sequences are no longer judged.
    #[test]
    fn unusual_call_orders_are_a_finding_until_accepted() {
        use crate::messages::SyscallAbi;
        let exe = "/usr/sbin/nginx";
        let everyday: Vec<u32> = [0u32, 1, 3, 9, 232, 0, 1, 3]
            .into_iter()
            .cycle()
            .take(4_000)
            .collect();
        let mut p = Profile::new("web1", 0, 1);
        assert!(p.learn_calls(exe, &everyday, 0) > 0);
        let mut odd = everyday[..200].to_vec();
        odd.extend([57, 59, 33, 33, 33, 42, 41, 49, 50, 43]);
        odd.extend(&everyday[..200]);
        assert_eq!(
            judge_calls(&p, exe, &everyday[..500], 0, SyscallAbi::X86_64, None),
            None
        );
        let f = judge_calls(&p, exe, &odd, 0, SyscallAbi::X86_64, None).expect("a finding");
        assert_eq!(f.rule.name(), "baseline.sequence");
        assert_eq!(f.behaviour, Behaviour::UnusualSequences);
        assert!(
            f.summary.contains("fork") || f.summary.contains("execve"),
            "{}",
            f.summary
        );
        assert_eq!(
            judge_calls(&p, "/usr/bin/other", &odd, 0, SyscallAbi::X86_64, None),
            None,
            "no profile"
        );
        let mut accepted = Accepted::default();
        accepted.add("web1", exe, Behaviour::UnusualSequences);
        p.merge(&accepted.for_host("web1"));
        assert_eq!(
            judge_calls(&p, exe, &odd, 0, SyscallAbi::X86_64, None),
            None
        );
    }

    /// Containers of one image share their programs' profile; the same
    /// executable on the host, or in another image, is another program.
    #[test]
    fn programs_in_containers_are_keyed_by_their_image() {
        use crate::messages::{ContainerFields, ContainerImage};
        let in_image = |pid, id: &str, image: &str| ProcessInfo {
            container: Some(ContainerFields {
                id: id.into(),
                image: Some(ContainerImage { name: image.into() }),
            }),
            ..proc_(pid, "/usr/sbin/nginx", 33)
        };
        let a = in_image(10, "a", "web:1");
        let b = in_image(20, "b", "web:1");
        let other = in_image(30, "c", "proxy:2");
        let host = proc_(40, "/usr/sbin/nginx", 33);
        let unknown_image = ProcessInfo {
            container: Some(ContainerFields {
                id: "d".into(),
                image: None,
            }),
            ..host.clone()
        };
        assert_eq!(program_of(&a).as_deref(), Some("[web:1] /usr/sbin/nginx"));
        assert_eq!(program_of(&a), program_of(&b));
        assert_ne!(program_of(&a), program_of(&other));
        assert_eq!(program_of(&host).as_deref(), Some("/usr/sbin/nginx"));
        assert_eq!(program_of(&unknown_image), program_of(&host));

        let mut p = Profile::new("h", 0, 10);
        let shadow = [Activity::Open {
            path: "/etc/shadow".into(),
            write: false,
        }];
        learn(&mut p, &[a], &shadow);
        assert!(findings(&p, &[b], &shadow).is_empty(), "same image");
        let f = findings(&p, &[other], &shadow);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].program, "[proxy:2] /usr/sbin/nginx");
        assert_eq!(findings(&p, &[host], &shadow).len(), 1, "the host's nginx");
    }

    #[test]
    fn learnt_behaviour_is_quiet_and_new_behaviour_is_named() {
        let mut p = Profile::new("h", 0, 10);
        let web = proc_(10, "/usr/bin/python3", 33);
        let init = proc_(1, "/sbin/init", 0);
        let ls = proc_(11, "/usr/bin/ls", 33);
        let served = |n: u32| Activity::Open {
            path: format!("/var/www/page{n}.html"),
            write: false,
        };
        learn(
            &mut p,
            &[web.clone(), init.clone()],
            &[served(1), served(2)],
        );
        learn(&mut p, &[ls.clone(), web.clone()], &[]);
        assert!(findings(&p, &[web.clone(), init.clone()], &[served(3)]).is_empty());
        assert!(findings(&p, &[ls.clone(), web.clone()], &[]).is_empty());
        // An ordinary file the program had not opened: not a finding.
        let other = Activity::Open {
            path: "/usr/share/misc/magic".into(),
            write: false,
        };
        assert!(findings(&p, &[web.clone(), init], &[other]).is_empty());

        let sh = proc_(12, "/usr/bin/dash", 33);
        let f = findings(&p, &[sh.clone(), web.clone()], &[]);
        assert_eq!(f.len(), 1, "{f:#?}");
        assert_eq!((f[0].rule, f[0].severity), (Rule::NewChild, Severity::High));
        assert!(
            f[0].summary
                .contains("/usr/bin/python3 started /usr/bin/dash"),
            "{}",
            f[0].summary
        );
        assert!(
            f[0].summary.contains("starts /usr/bin/ls"),
            "{}",
            f[0].summary
        );

        let cat = proc_(13, "/usr/bin/cat", 33);
        let shadow = Activity::Open {
            path: "/etc/shadow".into(),
            write: false,
        };
        let out = Activity::Connect {
            peer: Peer::Inet {
                ip: "10.9.9.9".parse().unwrap(),
                port: 4444,
            },
        };
        let f = findings(&p, &[cat, sh.clone()], &[shadow]);
        let rules: Vec<Rule> = f.iter().map(|x| x.rule).collect();
        assert!(rules.contains(&Rule::SensitiveRead), "{f:#?}");
        assert_eq!(
            f.iter()
                .find(|x| x.rule == Rule::SensitiveRead)
                .unwrap()
                .file
                .as_deref(),
            Some("/etc/shadow")
        );
        let f = findings(&p, &[sh, web], &[out]);
        let peer = f
            .iter()
            .find(|x| x.rule == Rule::NewPeer)
            .expect("new peer");
        assert_eq!(peer.severity, Severity::High);
        assert!(peer.summary.contains("10.9.9.9:4444"));
    }

    /// Many addresses on one port generalize to `*:port`; a loopback peer
    /// of a program that connects anyway is routine.
    #[test]
    fn peers_generalize_per_port() {
        let mut p = Profile::new("h", 0, 10);
        for i in 0..PEERS_PER_PORT {
            p.learn(
                "/usr/bin/apt",
                Behaviour::Connects(format!("10.0.0.{i}:443")),
            );
        }
        assert!(p.allows("/usr/bin/apt", &Behaviour::Connects("192.0.2.1:443".into())));
        assert!(!p.allows("/usr/bin/apt", &Behaviour::Connects("192.0.2.1:22".into())));
        assert_eq!(p.programs["/usr/bin/apt"].len(), 1);
        let local = Peer::Inet {
            ip: "127.0.0.1".parse().unwrap(),
            port: 5432,
        };
        let b = Behaviour::Connects(local.to_string());
        assert!(judge(&p, "/usr/bin/apt", &b, None, Some(&local), &sensitive()).is_none());
    }

    #[test]
    fn patterns_generalize_files_but_keep_sensitive_ones() {
        let s = sensitive();
        assert_eq!(file_pattern("/var/www/html/a.php", &s), "/var/www/html/*");
        assert_eq!(file_pattern("/proc/4242/stat", &s), "/proc/*/*");
        assert_eq!(file_pattern("/etc/shadow", &s), "/etc/shadow");
        assert_eq!(
            file_pattern("/home/alice/.ssh/authorized_keys", &s),
            "/home/alice/.ssh/authorized_keys"
        );
        assert_eq!(file_pattern("/proc/77/mem", &s), "/proc/*/mem");
        assert!(
            is_shell("/usr/bin/python3.13")
                && is_shell("/bin/bash")
                && !is_shell("/usr/sbin/nginx")
        );
    }

    /// Saved and loaded unchanged; a newer format is refused by name;
    /// accepted behaviours apply to their host and to `*`.
    #[test]
    fn profiles_round_trip_and_accepted_behaviours_apply() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = Profile::new("web-1", 5, 10);
        p.learn("/usr/sbin/cron", Behaviour::Child("/bin/sh".into()));
        let path = profile_path(dir.path(), "web-1");
        p.save(&path).unwrap();
        assert_eq!(Profile::load(&path).unwrap(), p);
        std::fs::write(&path, r#"{"format": 9}"#).unwrap();
        let e = Profile::load(&path).unwrap_err().to_string();
        assert!(e.contains("format 9"), "{e}");

        let mut a = Accepted::default();
        assert!(a.add(
            "web-1",
            "/usr/bin/rsync",
            Behaviour::Connects("10.1.1.1:22".into())
        ));
        assert!(a.add("*", "/usr/bin/apt", Behaviour::Connects("*:443".into())));
        assert!(!a.add("*", "/usr/bin/apt", Behaviour::Connects("*:443".into())));
        let ap = Accepted::path(dir.path());
        a.save(&ap).unwrap();
        let back = Accepted::load(&ap).unwrap();
        assert_eq!(back.for_host("web-1").len(), 2);
        assert_eq!(back.for_host("db-1").len(), 1);
        assert_eq!(
            Accepted::load(&dir.path().join("none.json")).unwrap(),
            Accepted::default()
        );
    }
}
