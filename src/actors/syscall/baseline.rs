//! Host baselines on the compute side (`crate::baseline` holds the logic):
//! each live batch's process, lineage and activity are learnt into its
//! host's profile during the learning period, then judged against it; the
//! findings go to the alert actor, where they join their process tree's
//! incident. Profiles are saved per host (`baseline.dir`) every
//! `save_every`, when learning ends and at drain, and reloaded at start;
//! behaviours accepted with `daisi baseline accept` are picked up while
//! the node runs.
//!
//! With libtorch built in, each program's sequence model is trained when
//! its host's learning ends (and at load, for a profile that has samples
//! and no models yet), on a thread of its own, one host at a time: the
//! actor goes on judging by the learnt windows until a program's model
//! arrives. Weights are saved beside the profile (`<host>.lm/`).

use crate::actors::runtime::mailbox::{Edge, MailboxConfig};
use crate::actors::runtime::supervision::{hand_on, Restarts};
use crate::actors::runtime::{drained, now_ns, on_start, Drain, DrainReply, NodeActor, NodeInfo};
use crate::baseline::sequences::own_calls;
use crate::baseline::{self, Accepted, BaselineError, Profile, Sensitive};
use crate::config::validate::{ConfigError, Validate};
use crate::messages::{
    ActivityEvent, Alert, AlertModule, BaselineFields, Endpoint, FileFields, Peer, ProcessFields,
    ProcessInfo, RuleFields, SyscallAbi, UserFields,
};
use crate::metrics::Counter;
use actix::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

/// `[baseline]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BaselineConfig {
    /// Learn per-program profiles from live capture and raise findings.
    /// Needs live capture (`syscall_source.kind = "ebpf"` on the
    /// collectors); a node that receives none learns nothing.
    pub enabled: bool,
    /// Where profiles (`<host>.json`) and accepted behaviours
    /// (`accepted.json`) live.
    pub dir: PathBuf,
    /// How long a host's profile learns before findings start (from the
    /// first batch of a host without a profile).
    #[serde(with = "humantime_serde")]
    pub learn_for: Duration,
    /// Learning profiles are saved this often.
    #[serde(with = "humantime_serde")]
    pub save_every: Duration,
    /// A program repeating the same new behaviour raises it again after
    /// this long.
    #[serde(with = "humantime_serde")]
    pub repeat_after: Duration,
    /// Files whose access is a finding unless the program's profile holds
    /// it (globs; `*` stays within a directory, `**` crosses them).
    pub sensitive: Vec<String>,
    /// Hosts with a profile in memory at once.
    pub max_hosts: usize,
    /// What judges a program's call order: `lm`, a next-call model per
    /// program trained when learning ends (needs a build with libtorch);
    /// `windows`, the windows of calls it made while learning; `auto`, `lm`
    /// when built with libtorch. Programs with too few calls for a model
    /// are judged by their windows either way.
    pub sequence_model: SequenceModel,
    pub mailbox: MailboxConfig,
}

/// `baseline.sequence_model`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SequenceModel {
    Auto,
    Lm,
    Windows,
}

impl SequenceModel {
    /// Whether programs get models in this build.
    pub fn trains(self) -> bool {
        match self {
            SequenceModel::Auto => cfg!(feature = "torch"),
            SequenceModel::Lm => true,
            SequenceModel::Windows => false,
        }
    }
}

impl Default for BaselineConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            dir: PathBuf::from("/var/lib/daisi/baselines"),
            learn_for: Duration::from_secs(24 * 3600),
            save_every: Duration::from_secs(300),
            repeat_after: Duration::from_secs(3600),
            sensitive: baseline::default_sensitive(),
            max_hosts: 4096,
            sequence_model: SequenceModel::Auto,
            mailbox: MailboxConfig::default(),
        }
    }
}

impl Validate for BaselineConfig {
    fn validate(&self, path: &str, errors: &mut Vec<ConfigError>) {
        if let Err(e) = Sensitive::new(&self.sensitive) {
            errors.push(ConfigError::new(format!("{path}.sensitive"), e.to_string()));
        }
        if self.save_every.is_zero() {
            errors.push(ConfigError::new(
                format!("{path}.save_every"),
                "must be above 0",
            ));
        }
        crate::config::validate::at_least_one(path, &[("max_hosts", self.max_hosts)], errors);
        if self.sequence_model == SequenceModel::Lm && !cfg!(feature = "torch") {
            errors.push(ConfigError::new(
                format!("{path}.sequence_model"),
                "\"lm\" needs a build with libtorch (the torch feature); use \"auto\" or \"windows\"",
            ));
        }
        self.mailbox.validate(&format!("{path}.mailbox"), errors);
    }
}

/// What a live batch showed of a process (sent by the inbound actor).
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct Observe {
    pub host: String,
    /// The process, then its ancestors.
    pub lineage: Vec<ProcessInfo>,
    pub activity: Vec<ActivityEvent>,
    /// The batch's calls: the previous batch's tail (`context` of them),
    /// then its new ones.
    pub calls: Vec<u32>,
    pub context: usize,
    pub abi: SyscallAbi,
}

/// Baseline findings, each with its process's lineage.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct BaselineFindings(pub Vec<(Alert, Vec<ProcessInfo>)>);

/// Why baselines cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("baseline.dir {path}: {source} (set baseline.dir to a writable directory, or baseline.enabled = false)")]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Baseline(#[from] BaselineError),
    #[error("baseline.sensitive: {0}")]
    Glob(#[from] globset::Error),
}

/// What the prepare step opened.
pub struct Store {
    sensitive: std::sync::Arc<Sensitive>,
    accepted: Accepted,
    accepted_at: Option<SystemTime>,
}

struct Host {
    profile: Profile,
    dirty: bool,
    learning: bool,
    /// After learning: the profile with the accepted behaviours, made once
    /// (again when the accepted file changes).
    judged_by: Option<Profile>,
}

/// The baseline actor.
pub struct BaselineActor {
    cfg: BaselineConfig,
    store: Store,
    hosts: HashMap<String, Host>,
    reported: HashMap<(String, String, crate::messages::Behaviour), Instant>,
    out: Edge<BaselineFindings>,
    restarts: Restarts,
    observations: Counter,
    learnt: Counter,
    findings: Counter,
    save_errors: Counter,
    /// Behaviours not learnt because the profile was full.
    not_learnt: Counter,
    /// Each host's programs' sequence models.
    #[cfg(feature = "torch")]
    models: HashMap<String, HashMap<String, crate::baseline::lm::ProgramLm>>,
    /// Hosts whose models are being trained.
    #[cfg(feature = "torch")]
    training: std::collections::HashSet<String>,
    /// Hosts whose programs may want models (looked at by the handler).
    to_train: Vec<String>,
    #[cfg(feature = "torch")]
    models_trained: Counter,
    #[cfg(feature = "torch")]
    model_errors: Counter,
}

fn modified(path: &std::path::Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

impl BaselineActor {
    fn new(
        cfg: BaselineConfig,
        node: &NodeInfo,
        store: Store,
        out: Edge<BaselineFindings>,
    ) -> Self {
        let m = &node.metrics;
        Self {
            restarts: Restarts::new(Self::NAME, m),
            observations: m.counter("baseline.observations"),
            learnt: m.counter("baseline.learnt"),
            findings: m.counter("baseline.findings"),
            save_errors: m.counter("baseline.save_errors"),
            not_learnt: m.counter("baseline.not_learnt"),
            #[cfg(feature = "torch")]
            models: HashMap::new(),
            #[cfg(feature = "torch")]
            training: Default::default(),
            to_train: Vec::new(),
            #[cfg(feature = "torch")]
            models_trained: m.counter("baseline.models_trained"),
            #[cfg(feature = "torch")]
            model_errors: m.counter("baseline.model_errors"),
            hosts: HashMap::new(),
            reported: HashMap::new(),
            cfg,
            store,
            out,
        }
    }

    /// The host's profile: in memory, else its file, else a new one that
    /// starts learning now.
    fn host(&mut self, name: &str) -> &mut Host {
        if !self.hosts.contains_key(name) {
            if self.hosts.len() >= self.cfg.max_hosts {
                self.save(true);
                self.hosts.clear();
                #[cfg(feature = "torch")]
                self.models.clear();
            }
            let path = baseline::profile_path(&self.cfg.dir, name);
            let now = now_ns();
            let profile = match Profile::load(&path) {
                Ok(p) => {
                    tracing::info!(host = name, path = %path.display(), programs = p.programs.len(), learning = p.learning(now), "baseline loaded");
                    p
                }
                Err(BaselineError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound =>
                {
                    tracing::info!(
                        host = name,
                        learn_for_s = self.cfg.learn_for.as_secs(),
                        "baseline learning starts"
                    );
                    Profile::new(name, now, self.cfg.learn_for.as_nanos() as u64)
                }
                Err(e) => {
                    // Never overwrite a profile this build cannot read.
                    tracing::error!(host = name, error = %e, "baseline unreadable; this host learns in memory only");
                    let mut p = Profile::new(name, now, self.cfg.learn_for.as_nanos() as u64);
                    p.host = format!("{name} (unsaved)");
                    p
                }
            };
            let learning = profile.learning(now);
            self.hosts.insert(
                name.to_string(),
                Host {
                    profile,
                    dirty: false,
                    learning,
                    judged_by: None,
                },
            );
            if !learning {
                #[cfg(feature = "torch")]
                self.load_models(name);
                self.to_train.push(name.to_string());
            }
        }
        self.hosts.get_mut(name).expect("just inserted")
    }

    /// Writes the profiles that changed (all learning ones with `all`).
    fn save(&mut self, all: bool) {
        for (name, h) in &mut self.hosts {
            if !(h.dirty || all && h.learning) || h.profile.host.ends_with("(unsaved)") {
                continue;
            }
            let path = baseline::profile_path(&self.cfg.dir, name);
            match h.profile.save(&path) {
                Ok(()) => h.dirty = false,
                Err(e) => {
                    self.save_errors.inc();
                    tracing::error!(host = %name, error = %e, "baseline not saved");
                }
            }
        }
    }

    /// Picks up behaviours accepted since the last look.
    fn reload_accepted(&mut self) {
        let path = Accepted::path(&self.cfg.dir);
        let at = modified(&path);
        if at == self.store.accepted_at {
            return;
        }
        match Accepted::load(&path) {
            Ok(a) => {
                tracing::info!(path = %path.display(), "accepted behaviours reloaded");
                self.store.accepted = a;
                self.store.accepted_at = at;
                for h in self.hosts.values_mut() {
                    h.judged_by = None;
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "accepted behaviours unreadable; keeping the previous ones")
            }
        }
    }

    fn observe(&mut self, o: Observe) -> Vec<(Alert, Vec<ProcessInfo>)> {
        self.observations.inc();
        let now = now_ns();
        let sensitive = self.store.sensitive.clone();
        let seen = baseline::behaviours(&o.lineage, o.activity.iter().map(|a| &a.what), &sensitive);
        self.host(&o.host); // loaded
        let host = self.hosts.get_mut(&o.host).expect("just loaded");
        if host.learning {
            if host.profile.learning(now) {
                host.profile.observations += 1;
                let (mut n, mut full) = (0, 0);
                for (program, b, _, _) in seen {
                    if !host.profile.has_room(&program) {
                        full += 1;
                    } else if host.profile.learn(&program, b) {
                        n += 1;
                    }
                }
                if let Some(program) = baseline::program_of(&o.lineage[0]) {
                    let (calls, context) = own_calls(&o.calls, o.context, o.abi);
                    host.dirty |= host.profile.learn_calls(&program, &calls, context) > 0;
                }
                host.dirty |= n > 0;
                self.not_learnt.add(full);
                self.learnt.add(n);
                return Vec::new();
            }
            host.learning = false;
            host.dirty = true;
            self.to_train.push(o.host.clone());
            tracing::info!(host = %o.host, programs = host.profile.programs.len(), observations = host.profile.observations, "baseline learnt; findings start");
        }
        let accepted = &self.store.accepted;
        let profile = host.judged_by.take().unwrap_or_else(|| {
            let mut p = host.profile.clone();
            p.merge(&accepted.for_host(&o.host));
            p
        });
        let found = seen
            .into_iter()
            .filter_map(|(program, b, file, peer)| {
                baseline::judge(
                    &profile,
                    &program,
                    &b,
                    file.as_deref(),
                    peer.as_ref(),
                    &sensitive,
                )
            })
            .chain(baseline::program_of(&o.lineage[0]).and_then(|program| {
                let (calls, context) = own_calls(&o.calls, o.context, o.abi);
                #[cfg(feature = "torch")]
                let model = self
                    .models
                    .get(&o.host)
                    .and_then(|m| m.get(&program))
                    .map(|m| m as &dyn crate::baseline::sequences::CallModel);
                #[cfg(not(feature = "torch"))]
                let model = None;
                baseline::judge_calls(&profile, &program, &calls, context, o.abi, model)
            }));
        let mut out = Vec::new();
        for f in found {
            let key = (o.host.clone(), f.program.clone(), f.behaviour.clone());
            if self
                .reported
                .get(&key)
                .is_some_and(|t| t.elapsed() < self.cfg.repeat_after)
            {
                continue;
            }
            if self.reported.len() >= 65_536 {
                let horizon = self.cfg.repeat_after;
                self.reported.retain(|_, t| t.elapsed() < horizon);
                if self.reported.len() >= 65_536 {
                    self.reported.clear(); // bounded: repeats may come again
                }
            }
            self.reported.insert(key, Instant::now());
            self.findings.inc();
            out.push((alert_of(&o.host, &o.lineage, f), o.lineage.clone()));
        }
        if let Some(h) = self.hosts.get_mut(&o.host) {
            h.judged_by = Some(profile);
        }
        out
    }
}

/// A program's model, trained off the actor's thread.
#[cfg(feature = "torch")]
#[derive(Message)]
#[rtype(result = "()")]
struct Trained {
    host: String,
    program: String,
    result: Result<Option<crate::baseline::lm::ProgramLm>, crate::baseline::lm::LmError>,
    /// The host's last job.
    last: bool,
}

#[cfg(feature = "torch")]
impl BaselineActor {
    /// The models a loaded profile records; one whose weights cannot be
    /// read is dropped from the profile (the program is judged by its
    /// windows), counted and logged.
    fn load_models(&mut self, name: &str) {
        use crate::baseline::lm::ProgramLm;
        let dir = baseline::models_dir(&self.cfg.dir, name);
        let Some(h) = self.hosts.get_mut(name) else {
            return;
        };
        let models = self.models.entry(name.to_string()).or_default();
        for (program, s) in &mut h.profile.sequences {
            let Some(state) = s.lm.clone() else {
                continue;
            };
            match ProgramLm::load(&dir.join(&state.file), state) {
                Ok(m) => {
                    models.insert(program.clone(), m);
                }
                Err(e) => {
                    self.model_errors.inc();
                    tracing::error!(host = name, program = %program, error = %e, "program sequence model unreadable; judged by its windows");
                    s.lm = None;
                    h.dirty = true;
                }
            }
        }
    }

    /// Starts training the models the hosts in `to_train` lack (programs
    /// with enough sampled calls), one thread per host, one host at most
    /// once at a time.
    fn train_pending(&mut self, ctx: &mut Context<Self>) {
        use crate::baseline::lm::{ProgramLm, MIN_WINDOWS};
        for name in std::mem::take(&mut self.to_train) {
            if !self.cfg.sequence_model.trains() || self.training.contains(&name) {
                continue;
            }
            let Some(h) = self.hosts.get(&name) else {
                continue;
            };
            let jobs: Vec<(String, Vec<u32>)> = h
                .profile
                .sequences
                .iter()
                .filter(|(_, s)| s.lm.is_none() && s.sample.len() > MIN_WINDOWS)
                .map(|(p, s)| (p.clone(), s.sample.clone()))
                .collect();
            if jobs.is_empty() {
                continue;
            }
            tracing::info!(host = %name, programs = jobs.len(), "training program sequence models");
            let addr = ctx.address();
            let host = name.clone();
            let spawned = std::thread::Builder::new()
                .name("baseline-models".into())
                .spawn(move || {
                    let n = jobs.len();
                    for (i, (program, sample)) in jobs.into_iter().enumerate() {
                        let file = baseline::model_file(&program);
                        let result = ProgramLm::train(&program, &sample, file);
                        let msg = Trained {
                            host: host.clone(),
                            program,
                            result,
                            last: i + 1 == n,
                        };
                        // Waits for room in the mailbox; the actor gone
                        // (stopping), the rest is trained at the next start.
                        if futures::executor::block_on(addr.send(msg)).is_err() {
                            return;
                        }
                    }
                });
            match spawned {
                Ok(_) => {
                    self.training.insert(name);
                }
                Err(e) => {
                    self.model_errors.inc();
                    tracing::error!(host = %name, error = %e, "cannot start training program models; judged by their windows");
                }
            }
        }
    }
}

#[cfg(feature = "torch")]
impl Handler<Trained> for BaselineActor {
    type Result = ();
    fn handle(&mut self, t: Trained, _: &mut Context<Self>) {
        if t.last {
            self.training.remove(&t.host);
        }
        let m = match t.result {
            Ok(Some(m)) => m,
            Ok(None) => return, // too few windows: judged by them
            Err(e) => {
                self.model_errors.inc();
                tracing::error!(host = %t.host, program = %t.program, error = %e, "program sequence model not trained; judged by its windows");
                return;
            }
        };
        let Some(h) = self.hosts.get_mut(&t.host) else {
            return; // evicted meanwhile: trained again when next loaded
        };
        // Recorded in the profile once its weights are on disk (else kept
        // in memory only, and the sample stays to train again later).
        if !h.profile.host.ends_with("(unsaved)") {
            let dir = baseline::models_dir(&self.cfg.dir, &t.host);
            let saved = crate::files::create_dir(&dir)
                .map_err(|e| e.to_string())
                .and_then(|()| m.save(&dir.join(&m.state.file)).map_err(|e| e.to_string()));
            match saved {
                Ok(()) => {
                    if let Some(s) = h.profile.sequences.get_mut(&t.program) {
                        s.lm = Some(m.state.clone());
                        s.sample = Vec::new();
                        h.dirty = true;
                        h.judged_by = None;
                    }
                }
                Err(e) => {
                    self.save_errors.inc();
                    tracing::error!(host = %t.host, program = %t.program, error = %e, "program sequence model not saved; kept in memory");
                }
            }
        }
        self.models_trained.inc();
        tracing::info!(host = %t.host, program = %t.program, calls = m.state.vocab.len(), trained = m.state.trained, held_loss = m.state.held_loss, threshold = m.state.threshold, "program sequence model trained");
        self.models.entry(t.host).or_default().insert(t.program, m);
    }
}

/// The alert for one finding (id, time and node are the alert actor's).
fn alert_of(host: &str, lineage: &[ProcessInfo], f: baseline::Finding) -> Alert {
    let me = &lineage[0];
    let mut a = Alert::new(
        AlertModule::Baseline,
        host,
        format!("{} {}", f.program, f.behaviour),
        f.severity,
    );
    a.summary = format!("process {} ({}): {}", me.pid, me.name, f.summary);
    a.score = 1.0;
    a.threshold = 0.0;
    a.model = "baseline".into();
    a.process = ProcessFields::from_lineage(lineage);
    a.user = UserFields::of_process(me);
    a.container = me.container.clone();
    a.file = f.file.map(|path| FileFields { path });
    if let Some(Peer::Inet { ip, port }) = f.peer {
        a.destination = Some(Endpoint {
            ip: ip.to_string(),
            port,
        });
    }
    a.rule = Some(RuleFields {
        name: f.rule.name().into(),
        ..Default::default()
    });
    a.baseline = Some(BaselineFields {
        program: f.program,
        behaviour: f.behaviour,
    });
    a
}

impl NodeActor for BaselineActor {
    const NAME: &'static str = "baseline";
    type Config = BaselineConfig;
    type Prepared = Store;
    type Links = Edge<BaselineFindings>;
    type Error = StoreError;

    fn section(cfg: &crate::config::Config) -> &BaselineConfig {
        &cfg.baseline
    }
    async fn prepare(cfg: &crate::config::Config, _: &NodeInfo) -> Result<Store, StoreError> {
        let c = &cfg.baseline;
        crate::files::create_dir(&c.dir).map_err(|source| StoreError::Dir {
            path: c.dir.clone(),
            source,
        })?;
        // Writable: checked now, not at the first save hours later.
        let probe = c.dir.join(".daisi-write-test");
        std::fs::write(&probe, b"").map_err(|source| StoreError::Dir {
            path: c.dir.clone(),
            source,
        })?;
        let _ = std::fs::remove_file(probe);
        let path = Accepted::path(&c.dir);
        Ok(Store {
            sensitive: std::sync::Arc::new(Sensitive::new(&c.sensitive)?),
            accepted: Accepted::load(&path)?,
            accepted_at: modified(&path),
        })
    }
    fn create(
        cfg: BaselineConfig,
        node: &NodeInfo,
        store: Store,
        out: Edge<BaselineFindings>,
    ) -> Self {
        Self::new(cfg, node, store, out)
    }
    fn mailbox_capacity(&self) -> usize {
        self.cfg.mailbox.capacity
    }
}

crate::supervised!(BaselineActor);

impl Actor for BaselineActor {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Context<Self>) {
        on_start(self, ctx);
        ctx.run_interval(self.cfg.save_every, |a, _| a.save(false));
        ctx.run_interval(Duration::from_secs(2), |a, _| a.reload_accepted());
    }
}

impl Handler<Observe> for BaselineActor {
    type Result = ();
    fn handle(&mut self, o: Observe, ctx: &mut Context<Self>) {
        if o.lineage.is_empty() {
            return;
        }
        let found = self.observe(o);
        #[cfg(feature = "torch")]
        self.train_pending(ctx);
        #[cfg(not(feature = "torch"))]
        self.to_train.clear(); // no models in this build
        if found.is_empty() {
            return;
        }
        hand_on(ctx, self.out.clone(), BaselineFindings(found));
    }
}

/// Saves every changed profile; findings were handed on as they came.
impl Handler<Drain> for BaselineActor {
    type Result = DrainReply<Self>;
    fn handle(&mut self, _: Drain, _: &mut Context<Self>) -> DrainReply<Self> {
        self.save(false);
        drained()
    }
}
