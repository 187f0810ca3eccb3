//! Scores token windows with the loaded syscall model.
//!
//! CPU-bound, so it runs on an arbiter (thread) of its own. Unlike a
//! `SyncArbiter`, whose queue is unbounded, this is an ordinary actor with a
//! bounded mailbox: the buffer in front of it waits (`block`) when it falls
//! behind.

use super::mailbox::{Edge, MailboxConfig};
use super::supervision::{fail, InjectFault, Restarts};
use super::syscall_buffer::Windows;
use super::{Drain, NodeInfo};
use crate::config::{ConfigError, Validate};
use crate::metrics::Counter;
use crate::models::{ModelMeta, SyscallModel, WindowScorer};
use crate::syscalls::Vocabulary;
use actix::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::Arc;

/// `[syscall_classifier]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SyscallClassifierConfig {
    /// Model directory (`model.json` + weights).
    pub model: PathBuf,
    /// Overrides the model's calibrated threshold when set.
    pub threshold: Option<f64>,
    pub mailbox: MailboxConfig,
}

impl Default for SyscallClassifierConfig {
    fn default() -> Self {
        Self {
            model: PathBuf::from("models/syscall"),
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
        if !self.model.join("model.json").is_file() {
            errors.push(ConfigError::new(
                format!("{path}.model"),
                format!(
                    "{} has no model.json (train one with `daisi train syscall`)",
                    self.model.display()
                ),
            ));
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
            restarts: Restarts::new("syscall_classifier", &node.metrics),
            scored: node.metrics.counter("syscall_classifier.windows"),
            meta: Arc::new(meta),
            vocab: model.vocab,
            scorer: model.scorer,
            cfg,
            out,
        }
    }
}

impl Actor for SyscallClassifier {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(self.cfg.mailbox.capacity);
        self.restarts.backoff::<Self>(ctx);
    }
}

impl Supervised for SyscallClassifier {
    fn restarting(&mut self, _: &mut Context<Self>) {
        self.restarts.restarting();
    }
}

impl Handler<Windows> for SyscallClassifier {
    type Result = ();
    fn handle(&mut self, windows: Windows, ctx: &mut Context<Self>) {
        let mut scores = Vec::with_capacity(windows.len());
        self.scorer
            .score(&windows.tokens, windows.window, &mut scores);
        self.scored.add(scores.len() as u64);
        let out = self.out.clone();
        let msg = Scored {
            windows,
            scores,
            model: self.meta.clone(),
            vocab: self.vocab.clone(),
        };
        ctx.wait(
            async move { out.push(msg).await }
                .into_actor(self)
                .map(|r, _, ctx| {
                    if let Err(e) = r {
                        fail("syscall_classifier", ctx, e);
                    }
                }),
        );
    }
}

impl Handler<Drain> for SyscallClassifier {
    type Result = ();
    fn handle(&mut self, _: Drain, _: &mut Context<Self>) {}
}

impl Handler<InjectFault> for SyscallClassifier {
    type Result = ();
    fn handle(&mut self, _: InjectFault, ctx: &mut Context<Self>) {
        fail("syscall_classifier", ctx, "injected fault");
    }
}
