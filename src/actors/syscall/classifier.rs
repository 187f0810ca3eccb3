//! Scores token windows with the loaded syscall model.
//!
//! CPU-bound, so it runs on an arbiter (thread) of its own. Unlike a
//! `SyncArbiter`, whose queue is unbounded, this is an ordinary actor with a
//! bounded mailbox: the buffer in front of it waits (`block`) when it falls
//! behind.

use crate::actors::runtime::mailbox::{Edge, MailboxConfig};
use crate::actors::runtime::supervision::{hand_on, Restarts};
use crate::actors::runtime::{drained, on_start, Drain, DrainReply, NodeActor, NodeInfo};
use crate::actors::syscall::buffer::Windows;
use crate::config::validate::{ConfigError, Validate};
use crate::messages::Role;
use crate::metrics::Counter;
use crate::models::{load_syscall_model, ModelError, ModelMeta, SyscallModel, WindowScorer};
use crate::syscalls::Vocabulary;
use actix::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::Arc;

/// `[syscall_classifier]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SyscallClassifierConfig {
    /// Model directory (`model.json` + weights). Unset: the shipped model
    /// (trained on ADFA-LD, a 2011 Ubuntu) judges replayed traces and
    /// nothing judges live processes by their calls (their programs'
    /// baselines do). Set (one trained with `daisi train syscall` on this
    /// fleet's recordings): it judges replayed traces and live processes.
    pub model: Option<PathBuf>,
    /// Overrides the model's calibrated threshold when set.
    pub threshold: Option<f64>,
    pub mailbox: MailboxConfig,
}

impl Default for SyscallClassifierConfig {
    fn default() -> Self {
        Self {
            model: None,
            threshold: None,
            mailbox: MailboxConfig {
                capacity: 8,
                ..Default::default()
            },
        }
    }
}

impl Validate for SyscallClassifierConfig {
    fn validate(&self, path: &str, errors: &mut Vec<ConfigError>) {
        match self.model_dir() {
            Ok(dir) if !dir.join("model.json").is_file() => errors.push(ConfigError::new(
                format!("{path}.model"),
                format!(
                    "{} has no model.json (train one with `daisi train syscall`)",
                    dir.display()
                ),
            )),
            Ok(_) => {}
            Err(e) => errors.push(ConfigError::new(format!("{path}.model"), e.to_string())),
        }
        if self.threshold.is_some_and(|t| !t.is_finite()) {
            errors.push(ConfigError::new(
                format!("{path}.threshold"),
                "must be a finite number",
            ));
        }
        self.mailbox.validate(&format!("{path}.mailbox"), errors);
    }
}

impl SyscallClassifierConfig {
    /// The model directory: the configured one, else the shipped one.
    pub fn model_dir(&self) -> Result<PathBuf, crate::install::NotInstalled> {
        match &self.model {
            Some(m) => Ok(m.clone()),
            None => crate::install::syscall_model(),
        }
    }

    /// Whether the model judges live processes (only one configured
    /// explicitly does).
    pub fn judges_live(&self) -> bool {
        self.model.is_some()
    }
}

/// Windows with their scores.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct Scored {
    pub windows: Windows,
    pub scores: Vec<f32>,
    pub model: Arc<ModelMeta>,
    /// The model's vocabulary, to name the calls in evidence.
    pub vocab: Arc<Vocabulary>,
}

/// The scoring actor.
pub struct SyscallClassifier {
    cfg: SyscallClassifierConfig,
    meta: Arc<ModelMeta>,
    vocab: Arc<Vocabulary>,
    scorer: Box<dyn WindowScorer>,
    out: Edge<Scored>,
    restarts: Restarts,
    scored: Counter,
}

impl SyscallClassifier {
    pub fn new(
        cfg: SyscallClassifierConfig,
        node: &NodeInfo,
        model: SyscallModel,
        out: Edge<Scored>,
    ) -> Self {
        let mut meta = model.meta;
        if let Some(t) = cfg.threshold {
            meta.threshold = t;
        }
        Self {
            restarts: Restarts::new(Self::NAME, &node.metrics),
            scored: node.metrics.counter("syscall_classifier.windows"),
            meta: Arc::new(meta),
            vocab: model.vocab,
            scorer: model.scorer,
            cfg,
            out,
        }
    }
}

/// Why the classifier cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ClassifierError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(
        "syscall_batcher.context ({context}) must be at least the model's window − 1 ({needed})"
    )]
    Context { context: usize, needed: usize },
}

impl NodeActor for SyscallClassifier {
    const NAME: &'static str = "syscall_classifier";
    type Config = SyscallClassifierConfig;
    /// The loaded model.
    type Prepared = SyscallModel;
    type Links = Edge<Scored>;
    type Error = ClassifierError;

    fn section(cfg: &crate::config::Config) -> &SyscallClassifierConfig {
        &cfg.syscall_classifier
    }

    /// Loads the model; in the `both` role also checks that the batcher's
    /// context covers the model's window.
    async fn prepare(
        cfg: &crate::config::Config,
        node: &NodeInfo,
    ) -> Result<SyscallModel, ClassifierError> {
        let mdl = load_syscall_model(
            &cfg.syscall_classifier
                .model_dir()
                .map_err(ModelError::from)?,
        )?;
        if node.role == Role::Both && cfg.syscall_batcher.context + 1 < mdl.meta.window {
            return Err(ClassifierError::Context {
                context: cfg.syscall_batcher.context,
                needed: mdl.meta.window - 1,
            });
        }
        tracing::info!(model = %mdl.meta.name, version = %mdl.meta.version, window = mdl.meta.window, threshold = mdl.meta.threshold, "syscall model loaded");
        Ok(mdl)
    }

    fn create(
        cfg: SyscallClassifierConfig,
        node: &NodeInfo,
        model: SyscallModel,
        out: Edge<Scored>,
    ) -> Self {
        Self::new(cfg, node, model, out)
    }
    fn mailbox_capacity(&self) -> usize {
        self.cfg.mailbox.capacity
    }
}

crate::supervised!(SyscallClassifier);

impl Actor for SyscallClassifier {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Context<Self>) {
        on_start(self, ctx);
    }
}

impl Handler<Windows> for SyscallClassifier {
    type Result = ();
    fn handle(&mut self, windows: Windows, ctx: &mut Context<Self>) {
        let mut scores = Vec::with_capacity(windows.len());
        self.scorer
            .score(&windows.tokens, windows.window, &mut scores);
        self.scored.add(scores.len() as u64);
        let msg = Scored {
            windows,
            scores,
            model: self.meta.clone(),
            vocab: self.vocab.clone(),
        };
        hand_on(ctx, self.out.clone(), msg);
    }
}

/// Holds nothing between messages (each batch is handed on before the next
/// is taken).
impl Handler<Drain> for SyscallClassifier {
    type Result = DrainReply<Self>;
    fn handle(&mut self, _: Drain, _: &mut Context<Self>) -> Self::Result {
        drained()
    }
}
