//! [`RuleJudge`]: Sigma rules on the compute side (`crate::rules`).
//!
//! Every live batch names its process's lineage; the judge builds each
//! process's `process_creation` event once (a process is known by host,
//! pid and start time, an LRU of [`SEEN`]), and a `file_event` or
//! `network_connection` event of each file the batch wrote, renamed or
//! deleted and each connection it made or took (only when rules of that
//! category are loaded), and hands the rules that match
//! to the alert actor with the lineage, so a rule's alert joins its
//! process-tree incident like a baseline finding.

use crate::actors::runtime::mailbox::{Edge, MailboxConfig};
use crate::actors::runtime::supervision::{hand_on, Restarts};
use crate::actors::runtime::{drained, on_start, Drain, DrainReply, NodeActor, NodeInfo};
use crate::actors::syscall::baseline::BaselineFindings;
use crate::config::validate::{ConfigError, Validate};
use crate::messages::ProcessInfo;
use crate::metrics::Counter;
use crate::rules::sigma::{
    activity_event, alert_about, alert_of, process_creation, Category, RuleSet,
};
use actix::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Processes remembered as judged.
const SEEN: usize = 65_536;
/// Verdicts remembered for events alike.
const VERDICTS: usize = 16_384;

/// `[rules]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct RulesConfig {
    /// Sigma rule files or directories (e.g. a checkout of SigmaHQ's
    /// `rules/linux`); none by default. Rules whose log source or fields
    /// daisi does not fill are listed at start and by `daisi rules
    /// check`, not judged.
    pub paths: Vec<PathBuf>,
    /// Rules below this level are not judged (listed with why):
    /// SigmaHQ writes `informational` and `low` rules for hunting, and
    /// they match everyday administration.
    pub min_level: crate::rules::sigma::Level,
    /// Rules not judged, by id or title (listed with why).
    pub disabled: Vec<String>,
    pub mailbox: MailboxConfig,
}

impl Validate for RulesConfig {
    fn validate(&self, path: &str, errors: &mut Vec<ConfigError>) {
        for (i, p) in self.paths.iter().enumerate() {
            if !p.exists() {
                errors.push(ConfigError::new(
                    format!("{path}.paths.{i}"),
                    format!("{} does not exist", p.display()),
                ));
            }
        }
        self.mailbox.validate(&format!("{path}.mailbox"), errors);
    }
}

/// A live batch's process (its start judged once) and what it did since
/// its previous batch (files written, connections).
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct JudgeProcess {
    pub host: String,
    pub lineage: Vec<ProcessInfo>,
    pub activity: Vec<crate::messages::Activity>,
}

/// The actor.
pub struct RuleJudge {
    cfg: RulesConfig,
    rules: RuleSet,
    /// Operators' exceptions (`daisi baseline accept` on a rule's alert:
    /// the program may match the rule on the host), reloaded when the
    /// file changes.
    accepted: crate::baseline::Accepted,
    accepted_at: Option<std::time::SystemTime>,
    accepted_path: PathBuf,
    excepted: Counter,
    /// Verdicts of events alike, by [`RuleSet::verdict_key`].
    verdicts: lru::LruCache<u64, Vec<usize>>,
    remembered: Counter,
    seen: lru::LruCache<(String, u32, Option<u64>), ()>,
    out: Edge<BaselineFindings>,
    restarts: Restarts,
    judged: Counter,
    activities: Counter,
    matched: Counter,
}

/// Why the rules cannot be loaded.
#[derive(Debug, thiserror::Error)]
#[error("rules.paths: {0}")]
pub struct RulesError(#[from] std::io::Error);

impl NodeActor for RuleJudge {
    const NAME: &'static str = "rules";
    type Config = RulesConfig;
    /// The loaded rules, and where operators' exceptions are kept
    /// (`[baseline] dir`'s accepted file).
    type Prepared = (RuleSet, PathBuf);
    /// The alert actor.
    type Links = Edge<BaselineFindings>;
    type Error = RulesError;

    fn section(cfg: &crate::config::Config) -> &RulesConfig {
        &cfg.rules
    }
    /// Loads every rule and says what is judged and what is not.
    async fn prepare(
        cfg: &crate::config::Config,
        _: &NodeInfo,
    ) -> Result<(RuleSet, PathBuf), RulesError> {
        let (rules, unsupported) =
            RuleSet::load_without(&cfg.rules.paths, cfg.rules.min_level, &cfg.rules.disabled)?;
        if !cfg.rules.paths.is_empty() {
            for (c, n) in rules.counts() {
                tracing::info!(category = c.name(), rules = n, "Sigma rules loaded");
            }
            tracing::info!(
                not_judged = unsupported.len(),
                "Sigma rules not judged (their log source or fields are not daisi's, their level, rules.disabled: `daisi rules check` lists them)"
            );
        }
        Ok((rules, crate::baseline::Accepted::path(&cfg.baseline.dir)))
    }
    fn create(
        cfg: RulesConfig,
        node: &NodeInfo,
        (rules, accepted_path): (RuleSet, PathBuf),
        out: Edge<BaselineFindings>,
    ) -> Self {
        let m = &node.metrics;
        Self {
            cfg,
            rules,
            accepted: crate::baseline::Accepted::default(),
            accepted_at: None,
            accepted_path,
            excepted: m.counter("rules.accepted"),
            verdicts: lru::LruCache::new(
                std::num::NonZeroUsize::new(VERDICTS).expect("VERDICTS is not zero"),
            ),
            remembered: m.counter("rules.remembered"),
            seen: lru::LruCache::unbounded(),
            out,
            restarts: Restarts::new(Self::NAME, m),
            judged: m.counter("rules.processes"),
            activities: m.counter("rules.activities"),
            matched: m.counter("rules.matched"),
        }
    }
    fn mailbox_capacity(&self) -> usize {
        self.cfg.mailbox.capacity
    }
}

crate::supervised!(RuleJudge);

impl Actor for RuleJudge {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Context<Self>) {
        on_start(self, ctx);
        self.reload_accepted();
        ctx.run_interval(std::time::Duration::from_secs(2), |a, _| {
            a.reload_accepted()
        });
    }
}

impl RuleJudge {
    /// The rules `event` matches: remembered for events alike
    /// ([`RuleSet::verdict_key`]), at most [`VERDICTS`] verdicts.
    fn verdict(&mut self, category: Category, event: &sigma_rust::Event) -> Vec<usize> {
        let key = self.rules.verdict_key(category, event);
        if let Some(v) = self.verdicts.get(&key) {
            self.remembered.inc();
            return v.clone();
        }
        let v = self.rules.matching_indices(category, event);
        self.verdicts.put(key, v.clone());
        v
    }

    /// Picks up exceptions accepted since the last look.
    fn reload_accepted(&mut self) {
        let at = std::fs::metadata(&self.accepted_path)
            .and_then(|m| m.modified())
            .ok();
        if at == self.accepted_at {
            return;
        }
        match crate::baseline::Accepted::load(&self.accepted_path) {
            Ok(a) => {
                self.accepted = a;
                self.accepted_at = at;
            }
            Err(e) => {
                tracing::error!(error = %e, "accepted exceptions unreadable; keeping the previous ones")
            }
        }
    }

    /// Whether an operator accepted that the alert's program matches its
    /// rule on its host.
    fn is_accepted(&self, a: &crate::messages::Alert) -> bool {
        let Some(b) = &a.baseline else { return false };
        self.accepted
            .for_host(&a.host)
            .get(&b.program)
            .is_some_and(|set| set.contains(&b.behaviour))
    }
}

impl Handler<JudgeProcess> for RuleJudge {
    type Result = ();
    fn handle(&mut self, msg: JudgeProcess, ctx: &mut Context<Self>) {
        let Some(me) = msg.lineage.first() else {
            return;
        };
        let key = (msg.host.clone(), me.pid, me.start_ns);
        let mut found = Vec::new();
        if self.seen.put(key, ()).is_none() {
            if self.seen.len() > SEEN {
                self.seen.pop_lru();
            }
            self.judged.inc();
            if let Some(event) = process_creation(&msg.lineage) {
                let c = Category::ProcessCreation;
                for i in self.verdict(c, &event) {
                    if let Some(l) = self.rules.rule(c, i) {
                        found.push((alert_of(&msg.host, &msg.lineage, l), msg.lineage.clone()));
                    }
                }
            }
        }
        // What it did, judged only by the rules of its category (none
        // loaded: nothing built).
        for what in &msg.activity {
            let Some((category, event, about)) = activity_event(&msg.lineage, what) else {
                continue;
            };
            if !self.rules.has(category) {
                continue;
            }
            self.activities.inc();
            for i in self.verdict(category, &event) {
                if let Some(l) = self.rules.rule(category, i) {
                    found.push((
                        alert_about(&msg.host, &msg.lineage, l, Some(&about)),
                        msg.lineage.clone(),
                    ));
                }
            }
        }
        let before = found.len();
        found.retain(|(a, _)| !self.is_accepted(a));
        self.excepted.add((before - found.len()) as u64);
        if found.is_empty() {
            return;
        }
        self.matched.add(found.len() as u64);
        hand_on(ctx, self.out.clone(), BaselineFindings(found));
    }
}

/// Holds nothing between messages.
impl Handler<Drain> for RuleJudge {
    type Result = DrainReply<Self>;
    fn handle(&mut self, _: Drain, _: &mut Context<Self>) -> Self::Result {
        drained()
    }
}
