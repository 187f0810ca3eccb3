//! Scores finished flows with the network model (standardize + logistic
//! regression, `crate::models::network`) as they arrive, and hands the
//! flows above the threshold to the alert actor as soon as their source
//! is confirmed (`confirm_flows` malicious flows of it within the window,
//! or a per-source pattern; `crate::flows::confirm`): an alert never
//! waits for a buffer to fill.
//!
//! Scoring a flow is a 39-term dot product, so this actor shares the main
//! arbiter; its bounded mailbox pushes back on the inbound side.
//!
//! Each flow also goes to its collector's per-source windows
//! (`flows::behaviour`): a pattern a source completes (a scan, a flood,
//! web probing...) goes to the alert actor with the flow detections.

use crate::actors::runtime::mailbox::{Edge, MailboxConfig};
use crate::actors::runtime::receipt::Receipt;
use crate::actors::runtime::supervision::{hand_on, Restarts};
use crate::actors::runtime::{drained, on_start, Drain, DrainReply, NodeActor, NodeInfo};
use crate::config::validate::{ConfigError, Validate};
use crate::flows::confirm::Confirmations;
use crate::messages::{FlowBatch, FlowRecord};
use crate::metrics::Counter;
use crate::models::network::{FeatureEvidence, FlowModel};
use crate::models::ModelError;
use actix::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::Arc;

/// `[flow_classifier]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FlowClassifierConfig {
    /// Model directory: `model.json` (from `daisi train network`), or
    /// FlowMeter's published `lr_*.txt` files. Unset: the shipped model
    /// (`models/network` where daisi is installed).
    pub model: Option<PathBuf>,
    /// Overrides the model's threshold (a probability) when set.
    pub threshold: Option<f64>,
    /// Features named in each alert's evidence.
    pub top_features: usize,
    /// Judge each source's flows together (scans, floods, web probing,
    /// SSH guessing, DNS tunnelling; the rules in docs/flows.md).
    pub per_source: bool,
    /// The window a source's flows are judged over.
    #[serde(with = "humantime_serde")]
    pub per_source_window: std::time::Duration,
    /// Malicious flows of one source within `per_source_window` before
    /// its flow alerts go out (`flows::confirm`); 1: each at once.
    pub confirm_flows: usize,
    pub mailbox: MailboxConfig,
}

impl Default for FlowClassifierConfig {
    fn default() -> Self {
        Self {
            model: None,
            threshold: None,
            top_features: 3,
            per_source: true,
            per_source_window: std::time::Duration::from_secs(60),
            confirm_flows: 2,
            mailbox: MailboxConfig::default(),
        }
    }
}

impl Validate for FlowClassifierConfig {
    fn validate(&self, path: &str, errors: &mut Vec<ConfigError>) {
        match self.model_dir() {
            Ok(dir)
                if !dir.join("model.json").is_file() && !dir.join("lr_weights.txt").is_file() =>
            {
                errors.push(ConfigError::new(
                    format!("{path}.model"),
                    format!(
                        "{} has no model.json (train one with `daisi train network`)",
                        dir.display()
                    ),
                ))
            }
            Ok(_) => {}
            Err(e) => errors.push(ConfigError::new(format!("{path}.model"), e.to_string())),
        }
        if self.confirm_flows == 0 {
            errors.push(ConfigError::new(
                format!("{path}.confirm_flows"),
                "must be at least 1 (1 raises every malicious flow at once)",
            ));
        }
        if (self.per_source || self.confirm_flows > 1) && self.per_source_window.is_zero() {
            errors.push(ConfigError::new(
                format!("{path}.per_source_window"),
                "must be above 0",
            ));
        }
        if self.threshold.is_some_and(|t| !(0.0..=1.0).contains(&t)) {
            errors.push(ConfigError::new(
                format!("{path}.threshold"),
                "must be a probability in [0, 1]",
            ));
        }
        self.mailbox.validate(&format!("{path}.mailbox"), errors);
    }
}

impl FlowClassifierConfig {
    /// The model directory: the configured one, else the shipped one.
    pub fn model_dir(&self) -> Result<PathBuf, crate::install::NotInstalled> {
        match &self.model {
            Some(m) => Ok(m.clone()),
            None => crate::install::network_model(),
        }
    }
}

/// Flows from one collector, to score, with the broker's receipt when they
/// came from the durable stream.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct ScoreFlows(pub FlowBatch, pub Option<Receipt>);

/// One flow the model judged malicious.
#[derive(Debug, Clone)]
pub struct FlowDetection {
    pub flow: FlowRecord,
    pub score: f64,
    /// Features that raised the score most.
    pub top: Vec<FeatureEvidence>,
}

/// Malicious flows of one batch.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct FlowDetections {
    pub host: String,
    pub detections: Vec<FlowDetection>,
    /// Patterns sources completed with these flows.
    pub patterns: Vec<crate::flows::behaviour::Finding>,
    pub threshold: f64,
    /// Model name and version.
    pub model: Arc<str>,
    /// Done once the alert actor took the detections.
    pub receipt: Option<Receipt>,
}

/// The flow-scoring actor.
pub struct FlowClassifier {
    cfg: FlowClassifierConfig,
    model: FlowModel,
    name: Arc<str>,
    out: Edge<FlowDetections>,
    restarts: Restarts,
    scored: Counter,
    malicious: Counter,
    unscorable: Counter,
    /// Each collector host's sources.
    sources: std::collections::HashMap<String, crate::flows::behaviour::Sources>,
    patterns: Counter,
    sources_evicted: Counter,
    /// Each collector host's malicious flows waiting for confirmation.
    held: std::collections::HashMap<String, Confirmations<FlowDetection>>,
    unconfirmed: Counter,
}

impl FlowClassifier {
    pub fn new(
        cfg: FlowClassifierConfig,
        node: &NodeInfo,
        mut model: FlowModel,
        out: Edge<FlowDetections>,
    ) -> Self {
        if let Some(t) = cfg.threshold {
            model.threshold = t;
        }
        let m = &node.metrics;
        Self {
            name: format!("{} {}", model.name, model.version).into(),
            restarts: Restarts::new(Self::NAME, m),
            scored: m.counter("flow_classifier.flows"),
            malicious: m.counter("flow_classifier.malicious"),
            unscorable: m.counter("flow_classifier.unscorable"),
            sources: Default::default(),
            patterns: m.counter("flow_classifier.patterns"),
            sources_evicted: m.counter("flow_classifier.sources_evicted"),
            held: Default::default(),
            unconfirmed: m.counter("flow_classifier.unconfirmed"),
            cfg,
            model,
            out,
        }
    }
}

impl NodeActor for FlowClassifier {
    const NAME: &'static str = "flow_classifier";
    type Config = FlowClassifierConfig;
    /// The loaded model.
    type Prepared = FlowModel;
    type Links = Edge<FlowDetections>;
    type Error = ModelError;

    fn section(cfg: &crate::config::Config) -> &FlowClassifierConfig {
        &cfg.flow_classifier
    }
    async fn prepare(cfg: &crate::config::Config, _: &NodeInfo) -> Result<FlowModel, ModelError> {
        let fm = FlowModel::load(&cfg.flow_classifier.model_dir()?)?;
        tracing::info!(model = %fm.name, version = %fm.version, threshold = fm.threshold, "network model loaded");
        Ok(fm)
    }
    fn create(
        cfg: FlowClassifierConfig,
        node: &NodeInfo,
        model: FlowModel,
        out: Edge<FlowDetections>,
    ) -> Self {
        Self::new(cfg, node, model, out)
    }
    fn mailbox_capacity(&self) -> usize {
        self.cfg.mailbox.capacity
    }
}

crate::supervised!(FlowClassifier);

impl Actor for FlowClassifier {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Context<Self>) {
        on_start(self, ctx);
    }
}

impl Handler<ScoreFlows> for FlowClassifier {
    type Result = ();
    fn handle(&mut self, ScoreFlows(batch, receipt): ScoreFlows, ctx: &mut Context<Self>) {
        let mut detections = Vec::new();
        let mut patterns = Vec::new();
        let window_ns = self.cfg.per_source_window.as_nanos() as u64;
        if self.cfg.per_source {
            let sources = self.sources.entry(batch.host.clone()).or_insert_with(|| {
                crate::flows::behaviour::Sources::new(crate::flows::behaviour::Rules {
                    window_ns,
                    ..Default::default()
                })
            });
            let before = sources.evicted;
            for flow in &batch.flows {
                patterns.extend(sources.observe(flow));
            }
            self.sources_evicted.add(sources.evicted - before);
            self.patterns.add(patterns.len() as u64);
        }
        let needed = self.cfg.confirm_flows;
        let held = self.held.entry(batch.host.clone()).or_insert_with(|| {
            // As many sources as the per-source rules keep.
            let max_sources = crate::flows::behaviour::Rules::default().max_sources;
            Confirmations::new(needed, window_ns, max_sources)
        });
        let before = held.unconfirmed;
        let newest = batch.flows.iter().map(|f| f.last_ns).max().unwrap_or(0);
        // A snapshot of an open flow is for the per-source rules: the
        // model scores the flow once, when it has ended.
        for flow in batch
            .flows
            .into_iter()
            .filter(|f| f.end != crate::messages::FlowEnd::Open)
        {
            let x = match self.model.vector(&flow.features) {
                Ok(x) => x,
                Err(e) => {
                    // A collector of another version may lack a feature.
                    self.unscorable.inc();
                    tracing::debug!(host = %batch.host, error = %e, "flow not scorable");
                    continue;
                }
            };
            self.scored.inc();
            let score = self.model.probability_of(&x);
            if score > self.model.threshold {
                self.malicious.inc();
                let top = self.model.top_features(&x, self.cfg.top_features);
                let (src, at) = (flow.src.parse().ok(), flow.last_ns);
                let d = FlowDetection { flow, score, top };
                match src {
                    Some(src) => detections.extend(held.observe(src, at, d)),
                    None => detections.push(d),
                }
            }
        }
        // A source's pattern confirms its held flows.
        for p in &patterns {
            detections.extend(held.confirm(p.source, p.at_ns));
        }
        held.expire(newest);
        self.unconfirmed.add(held.unconfirmed - before);
        if detections.is_empty() && patterns.is_empty() {
            crate::actors::runtime::receipt::all_done([&receipt]);
            return;
        }
        let msg = FlowDetections {
            host: batch.host,
            detections,
            patterns,
            threshold: self.model.threshold,
            model: self.name.clone(),
            receipt,
        };
        hand_on(ctx, self.out.clone(), msg);
    }
}

/// Holds nothing between messages.
impl Handler<Drain> for FlowClassifier {
    type Result = DrainReply<Self>;
    fn handle(&mut self, _: Drain, _: &mut Context<Self>) -> Self::Result {
        drained()
    }
}
