//! Loading Sigma rules, classifying them, and judging events with them
//! (matching is `sigma-rust`'s).

use crate::messages::{
    Activity, Alert, AlertModule, BaselineFields, Behaviour, FileFields, Peer, ProcessFields,
    ProcessInfo, RuleFields, Severity, ThreatFields, UserFields,
};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The log sources daisi fills.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Category {
    /// A process started (its exec).
    ProcessCreation,
    /// A file opened for writing, created, truncated, renamed or deleted.
    FileEvent,
    /// A connection made (`Initiated: 'true'`) or taken.
    NetworkConnection,
}

impl Category {
    pub fn name(self) -> &'static str {
        match self {
            Category::ProcessCreation => "process_creation",
            Category::FileEvent => "file_event",
            Category::NetworkConnection => "network_connection",
        }
    }

    /// The fields daisi fills for events of this category.
    pub fn fields(self) -> &'static [&'static str] {
        match self {
            Category::ProcessCreation => &[
                "Image",
                "CommandLine",
                "ParentImage",
                "ParentCommandLine",
                "User",
                "ProcessId",
                "ParentProcessId",
            ],
            Category::FileEvent => &["TargetFilename", "Image", "User", "ProcessId"],
            Category::NetworkConnection => &[
                "Image",
                "User",
                "ProcessId",
                "Initiated",
                "DestinationIp",
                "DestinationPort",
                "SourceIp",
                "SourcePort",
            ],
        }
    }
}

/// A Sigma rule's `level`, in order. SigmaHQ means `informational` and
/// `low` for hunting and baselining, `medium` and above for alerts.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Default,
    serde::Serialize,
    serde::Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Informational,
    Low,
    #[default]
    Medium,
    High,
    Critical,
}

impl Level {
    pub fn name(self) -> &'static str {
        match self {
            Level::Informational => "informational",
            Level::Low => "low",
            Level::Medium => "medium",
            Level::High => "high",
            Level::Critical => "critical",
        }
    }

    /// The alert's severity (`informational` alerts as `low`).
    pub fn severity(self) -> Severity {
        match self {
            Level::Informational | Level::Low => Severity::Low,
            Level::Medium => Severity::Medium,
            Level::High => Severity::High,
            Level::Critical => Severity::Critical,
        }
    }
}

/// A rule daisi judges.
pub struct Loaded {
    pub path: PathBuf,
    pub category: Category,
    pub meta: RuleMeta,
    rule: sigma_rust::Rule,
    /// It names a process id, or matches keywords over every field: its
    /// verdict depends on the ids, so verdicts cannot be remembered
    /// without them.
    needs_ids: bool,
}

/// What an alert says of its rule.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleMeta {
    /// How operators name it: its id, else its title.
    pub key: String,
    pub title: String,
    pub id: Option<String>,
    pub author: Option<String>,
    pub license: Option<String>,
    pub level: Severity,
    pub tags: Vec<String>,
}

/// A rule daisi does not judge, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Unsupported {
    pub path: PathBuf,
    pub title: String,
    /// `logsource` as `product/category/service`.
    pub logsource: String,
    pub reason: Reason,
}

/// Why a rule is not judged.
#[derive(Debug, Clone, PartialEq)]
pub enum Reason {
    /// Not a rule daisi can read (YAML, detection, condition).
    Parse(String),
    /// A log source daisi has no events of (yet).
    LogSource,
    /// Fields daisi does not fill for its log source.
    Fields(Vec<String>),
    /// Deprecated or unsupported by its authors.
    Status,
    /// Its level is below `rules.min_level`.
    Level(Level, Level),
    /// Named in `rules.disabled`.
    Disabled,
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::Parse(e) => write!(f, "not readable: {e}"),
            Reason::LogSource => write!(f, "no events of this log source"),
            Reason::Fields(fs) => write!(f, "fields not filled: {}", fs.join(", ")),
            Reason::Status => write!(f, "deprecated or unsupported by its authors"),
            Reason::Disabled => write!(f, "disabled in rules.disabled"),
            Reason::Level(l, min) => {
                write!(
                    f,
                    "level {} below rules.min_level ({})",
                    l.name(),
                    min.name()
                )
            }
        }
    }
}

/// The loaded rules, by category (an event is judged by its category's
/// rules only).
#[derive(Default)]
pub struct RuleSet {
    by_category: BTreeMap<Category, Vec<Loaded>>,
}

impl RuleSet {
    /// Every `.yml`/`.yaml` file under `paths` (files or directories),
    /// loaded or set aside with its reason (a level below `min_level`
    /// among them). A path that does not exist is an error.
    pub fn load(
        paths: &[PathBuf],
        min_level: Level,
    ) -> std::io::Result<(RuleSet, Vec<Unsupported>)> {
        Self::load_without(paths, min_level, &[])
    }

    /// [`RuleSet::load`], leaving out the rules `disabled` names (by id or
    /// title).
    pub fn load_without(
        paths: &[PathBuf],
        min_level: Level,
        disabled: &[String],
    ) -> std::io::Result<(RuleSet, Vec<Unsupported>)> {
        let mut files = Vec::new();
        for p in paths {
            collect(p, &mut files)?;
        }
        files.sort();
        let mut set = RuleSet::default();
        let mut unsupported = Vec::new();
        for path in files {
            let text = std::fs::read_to_string(&path)?;
            match classify(&text, min_level) {
                Ok((_, meta, _, _))
                    if disabled.iter().any(|d| *d == meta.key || *d == meta.title) =>
                {
                    unsupported.push(Unsupported {
                        path,
                        title: meta.title,
                        logsource: String::new(),
                        reason: Reason::Disabled,
                    })
                }
                Ok((category, meta, rule, needs_ids)) => {
                    set.by_category.entry(category).or_default().push(Loaded {
                        path,
                        category,
                        meta,
                        rule,
                        needs_ids,
                    })
                }
                Err((title, logsource, reason)) => unsupported.push(Unsupported {
                    path,
                    title,
                    logsource,
                    reason,
                }),
            }
        }
        Ok((set, unsupported))
    }

    pub fn len(&self) -> usize {
        self.by_category.values().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether any rule of `category` is loaded.
    pub fn has(&self, category: Category) -> bool {
        self.by_category
            .get(&category)
            .is_some_and(|r| !r.is_empty())
    }

    /// Loaded rules per category.
    pub fn counts(&self) -> BTreeMap<Category, usize> {
        self.by_category
            .iter()
            .map(|(c, r)| (*c, r.len()))
            .collect()
    }

    /// The indices (in `category`'s rules) of the rules that match
    /// `event`.
    pub fn matching_indices(&self, category: Category, event: &sigma_rust::Event) -> Vec<usize> {
        self.by_category
            .get(&category)
            .into_iter()
            .flatten()
            .enumerate()
            .filter(|(_, l)| l.rule.is_match(event))
            .map(|(i, _)| i)
            .collect()
    }

    /// A rule of `category` by its index.
    pub fn rule(&self, category: Category, i: usize) -> Option<&Loaded> {
        self.by_category.get(&category)?.get(i)
    }

    /// What decides `event`'s verdict: a hash of its category and fields
    /// (the process ids left out when no rule of the category needs
    /// them), so that events alike (the same program, command line,
    /// parent, user, file) share one remembered verdict.
    pub fn verdict_key(&self, category: Category, event: &sigma_rust::Event) -> u64 {
        let ids = self
            .by_category
            .get(&category)
            .is_some_and(|r| r.iter().any(|l| l.needs_ids));
        let mut pairs: Vec<(&String, String)> = event
            .iter()
            .filter(|(k, _)| ids || !matches!(k.as_str(), "ProcessId" | "ParentProcessId"))
            .map(|(k, v)| (k, v.value_to_string()))
            .collect();
        pairs.sort();
        let mut bytes = category.name().as_bytes().to_vec();
        for (k, v) in pairs {
            bytes.push(0);
            bytes.extend_from_slice(k.as_bytes());
            bytes.push(0);
            bytes.extend_from_slice(v.as_bytes());
        }
        crate::fnv1a(bytes.iter().copied())
    }

    /// The rules of `category` that match `event`.
    pub fn matching<'a>(
        &'a self,
        category: Category,
        event: &'a sigma_rust::Event,
    ) -> impl Iterator<Item = &'a Loaded> + 'a {
        self.by_category
            .get(&category)
            .into_iter()
            .flatten()
            .filter(move |l| l.rule.is_match(event))
    }
}

fn collect(p: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let meta = std::fs::metadata(p)
        .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", p.display())))?;
    if meta.is_file() {
        out.push(p.to_path_buf());
        return Ok(());
    }
    for entry in std::fs::read_dir(p)? {
        let path = entry?.path();
        if path.is_dir() {
            collect(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "yml" || e == "yaml") {
            out.push(path);
        }
    }
    Ok(())
}

/// A rule's category, what its alerts say of it, its parsed form and
/// whether its verdict depends on process ids.
type Classified = (Category, RuleMeta, sigma_rust::Rule, bool);
/// A rule's title, log source and why it is not judged.
type Refused = (String, String, Reason);

/// A rule's category, what its alerts say of it and its parsed form, or
/// its title, log source and why it is not judged.
fn classify(text: &str, min_level: Level) -> Result<Classified, Refused> {
    use serde_norway::Value;
    let raw: Value = serde_norway::from_str(text)
        .map_err(|e| (String::new(), String::new(), Reason::Parse(e.to_string())))?;
    let s = |v: &Value, k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
    let title = s(&raw, "title").unwrap_or_default();
    let ls = raw.get("logsource").cloned().unwrap_or(Value::Null);
    let (product, category, service) = (s(&ls, "product"), s(&ls, "category"), s(&ls, "service"));
    let logsource = [&product, &category, &service]
        .iter()
        .map(|x| x.as_deref().unwrap_or("-"))
        .collect::<Vec<_>>()
        .join("/");
    let err = |reason| (title.clone(), logsource.clone(), reason);
    if matches!(
        s(&raw, "status").as_deref(),
        Some("deprecated" | "unsupported")
    ) {
        return Err(err(Reason::Status));
    }
    let cat = match (product.as_deref(), category.as_deref()) {
        (Some("linux"), Some("process_creation")) => Category::ProcessCreation,
        (Some("linux"), Some("file_event")) => Category::FileEvent,
        (Some("linux"), Some("network_connection")) => Category::NetworkConnection,
        _ => return Err(err(Reason::LogSource)),
    };
    // The fields its selections name (`Field|modifier: ...`).
    let mut missing: BTreeSet<String> = BTreeSet::new();
    let mut needs_ids = false;
    let mut field = |k: &Value| {
        if let Some(name) = k.as_str().and_then(|k| k.split('|').next()) {
            needs_ids |= matches!(name, "ProcessId" | "ParentProcessId");
            if !cat.fields().contains(&name) {
                missing.insert(name.to_string());
            }
        }
    };
    let mut keywords = false;
    if let Some(Value::Mapping(det)) = raw.get("detection") {
        for (name, sel) in det {
            if matches!(name.as_str(), Some("condition" | "timeframe")) {
                continue;
            }
            match sel {
                Value::Mapping(m) => m.keys().for_each(&mut field),
                Value::Sequence(items) => {
                    for i in items {
                        match i {
                            Value::Mapping(m) => m.keys().for_each(&mut field),
                            _ => keywords = true,
                        }
                    }
                }
                _ => keywords = true,
            }
        }
    }
    if !missing.is_empty() {
        return Err(err(Reason::Fields(missing.into_iter().collect())));
    }
    let level = match s(&raw, "level").as_deref() {
        Some("critical") => Level::Critical,
        Some("high") => Level::High,
        Some("medium") => Level::Medium,
        Some("low") => Level::Low,
        _ => Level::Informational,
    };
    if level < min_level {
        return Err(err(Reason::Level(level, min_level)));
    }
    let rule: sigma_rust::Rule =
        serde_norway::from_str(text).map_err(|e| err(Reason::Parse(e.to_string())))?;
    let meta = RuleMeta {
        key: s(&raw, "id").unwrap_or_else(|| title.clone()),
        title: title.clone(),
        id: s(&raw, "id"),
        author: s(&raw, "author"),
        license: s(&raw, "license"),
        level: level.severity(),
        tags: match raw.get("tags") {
            Some(Value::Sequence(t)) => t
                .iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect(),
            _ => vec![],
        },
    };
    Ok((cat, meta, rule, needs_ids || keywords))
}

/// The `process_creation` event of a process (its lineage: it, then its
/// parent).
pub fn process_creation(lineage: &[ProcessInfo]) -> Option<sigma_rust::Event> {
    let me = lineage.first()?;
    let mut e = base(me);
    e.insert("CommandLine", me.args.join(" "));
    if let Some(p) = lineage.get(1) {
        if let Some(exe) = &p.executable {
            e.insert("ParentImage", exe.as_str());
        }
        e.insert("ParentCommandLine", p.args.join(" "));
        e.insert("ParentProcessId", p.pid.to_string());
    }
    Some(e)
}

/// The process's own fields every category has.
fn base(me: &ProcessInfo) -> sigma_rust::Event {
    let mut e = sigma_rust::Event::new();
    if let Some(exe) = &me.executable {
        e.insert("Image", exe.as_str());
    }
    e.insert("ProcessId", me.pid.to_string());
    if let Some(u) = &me.user_name {
        e.insert("User", u.as_str());
    }
    e
}

/// What a process did, as the event of its category: a file written,
/// created, renamed (its new name) or deleted is a `file_event`; a
/// connection made or taken (internet addresses) a `network_connection`.
/// With the file or peer, for the alert's summary.
pub fn activity_event(
    lineage: &[ProcessInfo],
    what: &Activity,
) -> Option<(Category, sigma_rust::Event, String)> {
    let me = lineage.first()?;
    let mut e = base(me);
    match what {
        Activity::Open { path, write: true }
        | Activity::Unlink { path }
        | Activity::Rename { to: path, .. } => {
            e.insert("TargetFilename", path.as_str());
            Some((Category::FileEvent, e, path.clone()))
        }
        Activity::Connect {
            peer: Peer::Inet { ip, port },
        } => {
            e.insert("Initiated", "true");
            e.insert("DestinationIp", ip.to_string());
            e.insert("DestinationPort", i64::from(*port));
            Some((
                Category::NetworkConnection,
                e,
                format!("connected to {ip}:{port}"),
            ))
        }
        Activity::Accept {
            peer: Peer::Inet { ip, port },
        } => {
            e.insert("Initiated", "false");
            e.insert("SourceIp", ip.to_string());
            e.insert("SourcePort", i64::from(*port));
            Some((
                Category::NetworkConnection,
                e,
                format!("accepted from {ip}:{port}"),
            ))
        }
        _ => None,
    }
}

/// ATT&CK from a rule's tags: `attack.t1552.001` is technique
/// `T1552.001`, `attack.credential-access` the tactic `credential-access`
/// (group and software tags, `attack.g…`/`attack.s…` with digits, are
/// neither).
pub fn threat_of(tags: &[String]) -> Option<ThreatFields> {
    let (mut tactics, mut techniques) = (Vec::new(), Vec::new());
    for tag in tags {
        let Some(rest) = tag.strip_prefix("attack.") else {
            continue;
        };
        let numbered = |p: char| {
            rest.starts_with(p) && rest[1..].chars().next().is_some_and(|c| c.is_ascii_digit())
        };
        if numbered('t') {
            techniques.push(rest);
        } else if !numbered('g') && !numbered('s') {
            tactics.push(rest);
        }
    }
    let t = crate::attack::threat(tactics, techniques);
    (!t.technique.id.is_empty() || !t.tactic.name.is_empty()).then_some(t)
}

/// The alert for a rule that matched a process's event.
pub fn alert_of(host: &str, lineage: &[ProcessInfo], l: &Loaded) -> Alert {
    alert_about(host, lineage, l, None)
}

/// The alert for a rule that matched what a process did (`what`: the file
/// or the connection), or its start (`None`).
pub fn alert_about(host: &str, lineage: &[ProcessInfo], l: &Loaded, what: Option<&str>) -> Alert {
    let m = &l.meta;
    let me = &lineage[0];
    let mut a = Alert::new(
        AlertModule::Sigma,
        host,
        format!(
            "pid:{} sigma:{}",
            me.pid,
            m.id.as_deref().unwrap_or(&m.title)
        ),
        m.level,
    );
    a.summary = format!(
        "Sigma rule \"{}\" on process {} ({}): {}",
        m.title,
        me.pid,
        me.executable.as_deref().unwrap_or(&me.name),
        match (l.category, what) {
            (Category::FileEvent, Some(path)) => format!("wrote {path}"),
            (_, Some(w)) => w.to_string(),
            (_, None) => me.args.join(" "),
        }
    );
    // What `daisi baseline accept` adds: the program may match the rule.
    a.baseline = Some(BaselineFields {
        program: me.executable.clone().unwrap_or_else(|| me.name.clone()),
        behaviour: Behaviour::MatchesRule(m.key.clone()),
    });
    if let (Category::FileEvent, Some(path)) = (l.category, what) {
        a.file = Some(FileFields {
            path: path.to_string(),
        });
    }
    a.rule = Some(RuleFields {
        name: format!("sigma.{}", m.title),
        id: m.id.clone(),
        author: m.author.clone(),
        license: Some(m.license.clone().unwrap_or_else(|| "DRL-1.1".into())),
        ruleset: Some("sigma".into()),
    });
    a.threat = threat_of(&m.tags);
    a.process = ProcessFields::from_lineage(lineage);
    a.user = me.user_name.as_ref().map(|n| UserFields {
        id: me.uid.map(|u| u.to_string()).unwrap_or_default(),
        name: Some(n.clone()),
    });
    a.model = "sigma".into();
    a.score = 1.0;
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    const COPY_SHADOW: &str = r#"title: Copy Passwd Or Shadow From TMP Path
id: fa4aaed5-4fe0-498d-bbc0-08e3346387ba
status: test
author: Joseliyo Sanchez
tags:
    - attack.credential-access
    - attack.t1552.001
logsource:
    product: linux
    category: process_creation
detection:
    selection_img:
        Image|endswith: '/cp'
    selection_path:
        CommandLine|contains: '/tmp/'
    selection_file:
        CommandLine|contains:
            - 'passwd'
            - 'shadow'
    condition: all of selection_*
level: high
"#;

    const CWD: &str = r#"title: Needs the working directory
logsource:
    product: linux
    category: process_creation
detection:
    selection:
        CurrentDirectory|startswith: '/tmp'
        Image|endswith: '/sh'
    condition: selection
"#;

    const AUDITD: &str = r#"title: An auditd rule
logsource:
    product: linux
    service: auditd
detection:
    selection:
        type: EXECVE
    condition: selection
"#;

    fn cp(args: &[&str]) -> Vec<ProcessInfo> {
        vec![
            ProcessInfo {
                pid: 300,
                ppid: Some(200),
                name: "cp".into(),
                executable: Some("/usr/bin/cp".into()),
                args: args.iter().map(|a| a.to_string()).collect(),
                user_name: Some("www-data".into()),
                uid: Some(33),
                ..Default::default()
            },
            ProcessInfo {
                pid: 200,
                name: "sh".into(),
                executable: Some("/usr/bin/dash".into()),
                ..Default::default()
            },
        ]
    }

    /// Rules are loaded or set aside with their reason; a loaded rule
    /// matches the process it describes and not another; its alert names
    /// the rule, its level and its ATT&CK tags.
    #[test]
    fn a_rule_is_loaded_or_said_why_not_and_matches_its_process() {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in [
            ("a.yml", COPY_SHADOW),
            ("b.yml", CWD),
            ("c.yaml", AUDITD),
            ("d.yml", "not: [yaml"),
        ] {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        let (set, unsupported) = RuleSet::load(&[dir.path().to_path_buf()], Level::Low).unwrap();
        assert_eq!(set.len(), 1);
        let reasons: Vec<String> = unsupported.iter().map(|u| u.reason.to_string()).collect();
        assert_eq!(unsupported.len(), 3, "{reasons:?}");
        assert!(
            reasons.contains(&"fields not filled: CurrentDirectory".to_string()),
            "{reasons:?}"
        );
        assert!(
            reasons.contains(&"no events of this log source".to_string()),
            "{reasons:?}"
        );
        assert!(
            reasons.iter().any(|r| r.starts_with("not readable")),
            "{reasons:?}"
        );

        let hit = cp(&["cp", "/tmp/shadow", "/var/www/s"]);
        let e = process_creation(&hit).unwrap();
        let found: Vec<&Loaded> = set.matching(Category::ProcessCreation, &e).collect();
        assert_eq!(found.len(), 1);
        let a = alert_of("web1", &hit, found[0]);
        assert_eq!(a.module, AlertModule::Sigma);
        assert_eq!(a.severity, Severity::High);
        let r = a.rule.as_ref().unwrap();
        assert_eq!(
            r.id.as_deref(),
            Some("fa4aaed5-4fe0-498d-bbc0-08e3346387ba")
        );
        assert_eq!(r.ruleset.as_deref(), Some("sigma"));
        assert_eq!(r.author.as_deref(), Some("Joseliyo Sanchez"));
        let t = a.threat.as_ref().unwrap();
        assert_eq!(t.technique.id, ["T1552.001"]);
        assert_eq!(t.tactic.name, ["credential-access"]);
        assert_eq!(
            a.user.as_ref().and_then(|u| u.name.as_deref()),
            Some("www-data")
        );

        let miss = cp(&["cp", "/var/www/a", "/var/www/b"]);
        let e = process_creation(&miss).unwrap();
        assert_eq!(set.matching(Category::ProcessCreation, &e).count(), 0);
    }

    const SUDOERS: &str = r#"title: Persistence Via Sudoers Files
id: ddb26b76-4447-4807-871f-1b035b2bfa5d
level: medium
tags:
    - attack.persistence
    - attack.t1053.003
logsource:
    product: linux
    category: file_event
detection:
    selection:
        TargetFilename|startswith: '/etc/sudoers.d/'
    condition: selection
"#;

    const CALLBACK: &str = r#"title: Malware Callback Port
level: high
logsource:
    product: linux
    category: network_connection
detection:
    selection:
        Initiated: 'true'
        DestinationPort:
            - 4444
            - 1337
    filter:
        DestinationIp|cidr: '10.0.0.0/8'
    condition: selection and not filter
"#;

    const HOSTNAME: &str = r#"title: Ngrok Tunnel
logsource:
    product: linux
    category: network_connection
detection:
    selection:
        DestinationHostname|contains: 'ngrok.io'
    condition: selection
"#;

    /// What a process does is judged by the rules of its category: a file
    /// written (renamed, deleted) by file_event rules, a connection by
    /// network_connection rules; a rule naming a field daisi does not fill
    /// (a connection's host name) is set aside with why.
    #[test]
    fn files_written_and_connections_are_judged_by_their_categorys_rules() {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in [("s.yml", SUDOERS), ("c.yml", CALLBACK), ("h.yml", HOSTNAME)] {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        let (set, unsupported) = RuleSet::load(&[dir.path().to_path_buf()], Level::Low).unwrap();
        assert_eq!(set.len(), 2);
        assert_eq!(
            unsupported[0].reason,
            Reason::Fields(vec!["DestinationHostname".into()])
        );
        let me = cp(&["sh"]);
        let judge = |what: Activity| {
            let (c, e, about) = activity_event(&me, &what).unwrap();
            set.matching(c, &e)
                .map(|l| alert_about("web1", &me, l, Some(&about)))
                .collect::<Vec<_>>()
        };
        let write = |path: &str| Activity::Open {
            path: path.into(),
            write: true,
        };
        let hits = judge(write("/etc/sudoers.d/backdoor"));
        assert_eq!(hits.len(), 1);
        assert_eq!(
            hits[0].file.as_ref().unwrap().path,
            "/etc/sudoers.d/backdoor"
        );
        assert!(
            hits[0].summary.ends_with("wrote /etc/sudoers.d/backdoor"),
            "{}",
            hits[0].summary
        );
        assert_eq!(hits[0].threat.as_ref().unwrap().technique.name, ["Cron"]);
        assert_eq!(
            judge(Activity::Rename {
                from: "/tmp/x".into(),
                to: "/etc/sudoers.d/y".into()
            })
            .len(),
            1
        );
        assert!(judge(write("/etc/sudoers")).is_empty());
        assert!(activity_event(
            &me,
            &Activity::Open {
                path: "/etc/sudoers.d/x".into(),
                write: false
            }
        )
        .is_none());
        let connect = |ip: &str, port| Activity::Connect {
            peer: Peer::Inet {
                ip: ip.parse().unwrap(),
                port,
            },
        };
        let hits = judge(connect("203.0.113.9", 4444));
        assert_eq!(hits.len(), 1);
        assert!(hits[0].summary.ends_with("connected to 203.0.113.9:4444"));
        assert!(judge(connect("10.1.2.3", 4444)).is_empty(), "the filter");
        assert!(judge(connect("203.0.113.9", 443)).is_empty());
        assert!(judge(Activity::Accept {
            peer: Peer::Inet {
                ip: "203.0.113.9".parse().unwrap(),
                port: 4444
            }
        })
        .is_empty());
    }

    /// A rule an operator disabled is listed with why; an alert names what
    /// `daisi baseline accept` adds (the program may match the rule), which
    /// the judge then finds accepted for that host and program only.
    #[test]
    fn rules_can_be_disabled_and_their_matches_accepted() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("s.yml"), SUDOERS).unwrap();
        std::fs::write(dir.path().join("c.yml"), CALLBACK).unwrap();
        let (set, unsupported) = RuleSet::load_without(
            &[dir.path().to_path_buf()],
            Level::Low,
            &["Malware Callback Port".into()],
        )
        .unwrap();
        assert_eq!(set.len(), 1);
        assert_eq!(unsupported[0].reason, Reason::Disabled);
        let me = cp(&["sh"]);
        let what = Activity::Open {
            path: "/etc/sudoers.d/x".into(),
            write: true,
        };
        let (c, e, about) = activity_event(&me, &what).unwrap();
        let a = alert_about(
            "web1",
            &me,
            set.matching(c, &e).next().unwrap(),
            Some(&about),
        );
        let b = a.baseline.clone().unwrap();
        assert_eq!(b.program, "/usr/bin/cp");
        assert_eq!(
            b.behaviour,
            Behaviour::MatchesRule("ddb26b76-4447-4807-871f-1b035b2bfa5d".into())
        );
        assert_eq!(crate::baseline::findings_of(&a), std::slice::from_ref(&b));
        let mut accepted = crate::baseline::Accepted::default();
        accepted.add("web1", &b.program, b.behaviour.clone());
        assert!(accepted.for_host("web1")[&b.program].contains(&b.behaviour));
        assert!(!accepted.for_host("db1").contains_key(&b.program));
    }

    /// Events alike share a remembered verdict: two processes of the same
    /// program, command line and parent (their ids aside), unless a rule
    /// of the category names a process id.
    #[test]
    fn events_alike_share_a_verdict_key() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.yml"), COPY_SHADOW).unwrap();
        let (set, _) = RuleSet::load(&[dir.path().to_path_buf()], Level::Low).unwrap();
        let c = Category::ProcessCreation;
        let mut one = cp(&["cp", "/tmp/shadow", "/x"]);
        let key = |l: &[ProcessInfo]| set.verdict_key(c, &process_creation(l).unwrap());
        let first = key(&one);
        one[0].pid = 301;
        assert_eq!(key(&one), first, "another pid, the same verdict");
        one[0].args[2] = "/y".into();
        assert_ne!(key(&one), first);
        assert_eq!(
            set.matching_indices(
                c,
                &process_creation(&cp(&["cp", "/tmp/shadow", "/x"])).unwrap()
            ),
            [0]
        );
        let by_pid = "title: A pid\nlogsource:\n    product: linux\n    category: process_creation\ndetection:\n    selection:\n        ProcessId: '300'\n    condition: selection\nlevel: high\n";
        std::fs::write(dir.path().join("b.yml"), by_pid).unwrap();
        let (set, _) = RuleSet::load(&[dir.path().to_path_buf()], Level::Low).unwrap();
        let k = |pid: u32| {
            let mut l = cp(&["cp", "a", "b"]);
            l[0].pid = pid;
            set.verdict_key(c, &process_creation(&l).unwrap())
        };
        assert_ne!(k(300), k(301), "a rule names the pid");
    }

    #[test]
    fn attack_tags_are_tactics_and_techniques() {
        let tags: Vec<String> = [
            "attack.persistence",
            "attack.t1053.003",
            "attack.g0032",
            "attack.s0002",
            "car.2013-05-002",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let t = threat_of(&tags).unwrap();
        assert_eq!(t.technique.id, ["T1053.003"]);
        assert_eq!(t.tactic.name, ["persistence"]);
        assert!(threat_of(&[]).is_none());
    }
}
