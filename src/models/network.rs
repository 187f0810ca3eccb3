//! The network flow classifier: standardize, then logistic regression, over
//! FlowMeter's 39 features (`crate::flows::FEATURES`).
//!
//! This file holds the model and its loading; the flow classifier actor
//! and `daisi train network` build on it. [`FlowModel::from_flowmeter`] reads
//! FlowMeter's published parameters (`lr_weights.txt`, `lr_mean.txt`,
//! `lr_std.txt`, `lr_intercept.txt`: one value per line, feature order as in
//! [`FEATURES`]).

use super::ModelError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

pub use crate::flows::FEATURES;

/// Adds the six `...PerTime` rates (column / flowDuration; 0 for a flow of
/// zero duration) to a flow's features.
pub fn add_rates(f: &mut BTreeMap<String, f64>) {
    let d = f.get("flowDuration").copied().unwrap_or(0.0);
    for base in [
        "flowLength",
        "fwdFlowLength",
        "bwdFlowLength",
        "packetSizeTotal",
        "fwdPacketSizeTotal",
        "bwdPacketSizeTotal",
    ] {
        let v = f.get(base).copied().unwrap_or(0.0);
        f.insert(format!("{base}PerTime"), if d > 0.0 { v / d } else { 0.0 });
    }
}

/// How raw feature values are transformed before standardization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Transform {
    /// Used as they are (FlowMeter's published model).
    #[default]
    None,
    /// `ln(1 + x)`: FlowMeter's features span nanoseconds to packet
    /// counts, heavy-tailed; the log tames them for a linear model.
    Log1p,
}

/// Standardize + logistic regression; the contents of `model.json` in a
/// network model directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowModel {
    /// Name and version, copied into alerts.
    #[serde(default = "flowmeter_name")]
    pub name: String,
    #[serde(default)]
    pub version: String,
    /// Feature names, in weight order.
    pub features: Vec<String>,
    #[serde(default)]
    pub transform: Transform,
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
    pub weights: Vec<f64>,
    pub intercept: f64,
    /// Probability above which a flow is malicious.
    pub threshold: f64,
    /// What it was trained on (labels file, kinds, held-out kinds, counts).
    #[serde(default)]
    pub trained_on: serde_json::Value,
    /// Figures measured at training time on its test split.
    #[serde(default)]
    pub metrics: serde_json::Value,
}

/// How one feature of a flow weighed in its score.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureEvidence {
    pub name: String,
    /// The flow's value.
    pub value: f64,
    /// How far it is from normal: standard deviations from the training
    /// mean (after the model's transform).
    pub z: f64,
    /// Its share of the log-odds (weight × z).
    pub contribution: f64,
}

fn flowmeter_name() -> String {
    "flowmeter".into()
}

fn read_column(path: &Path) -> Result<Vec<f64>, ModelError> {
    let text = std::fs::read_to_string(path).map_err(|source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| {
            l.trim().parse::<f64>().map_err(|e| ModelError::Invalid {
                path: path.to_path_buf(),
                reason: format!("line {}: {e}", i + 1),
            })
        })
        .collect()
}

impl FlowModel {
    /// FlowMeter's published parameters from a directory of `lr_*.txt`.
    pub fn from_flowmeter(dir: &Path) -> Result<FlowModel, ModelError> {
        let weights = read_column(&dir.join("lr_weights.txt"))?;
        let mean = read_column(&dir.join("lr_mean.txt"))?;
        let std = read_column(&dir.join("lr_std.txt"))?;
        let intercept = read_column(&dir.join("lr_intercept.txt"))?;
        for (name, v) in [
            ("lr_weights.txt", &weights),
            ("lr_mean.txt", &mean),
            ("lr_std.txt", &std),
        ] {
            if v.len() != FEATURES.len() {
                return Err(ModelError::Invalid {
                    path: dir.join(name),
                    reason: format!("{} values, expected {}", v.len(), FEATURES.len()),
                });
            }
        }
        let [intercept] = intercept[..] else {
            return Err(ModelError::Invalid {
                path: dir.join("lr_intercept.txt"),
                reason: "expected one value".into(),
            });
        };
        Ok(FlowModel {
            name: flowmeter_name(),
            version: "published".into(),
            features: FEATURES.iter().map(|s| s.to_string()).collect(),
            transform: Transform::None,
            mean,
            std,
            weights,
            intercept,
            threshold: 0.5,
            trained_on: serde_json::Value::Null,
            metrics: serde_json::Value::Null,
        })
    }

    /// Loads `dir/model.json`, or FlowMeter's `lr_*.txt` when the directory
    /// holds those instead; checks that every vector has one entry per
    /// feature.
    pub fn load(dir: &Path) -> Result<FlowModel, ModelError> {
        let file = dir.join("model.json");
        if !file.exists() && dir.join("lr_weights.txt").exists() {
            return Self::from_flowmeter(dir);
        }
        let text = std::fs::read_to_string(&file).map_err(|source| ModelError::Io {
            path: file.clone(),
            source,
        })?;
        let m: FlowModel = serde_json::from_str(&text).map_err(|e| ModelError::Invalid {
            path: file.clone(),
            reason: e.to_string(),
        })?;
        let n = m.features.len();
        if n == 0 || [m.mean.len(), m.std.len(), m.weights.len()] != [n, n, n] {
            return Err(ModelError::Invalid {
                path: file,
                reason: format!(
                    "{n} features but {} means, {} stds, {} weights",
                    m.mean.len(),
                    m.std.len(),
                    m.weights.len()
                ),
            });
        }
        if !(0.0..=1.0).contains(&m.threshold) {
            return Err(ModelError::Invalid {
                path: file,
                reason: format!("threshold {} is not a probability", m.threshold),
            });
        }
        Ok(m)
    }

    /// Writes `dir/model.json`.
    pub fn save(&self, dir: &Path) -> Result<(), ModelError> {
        std::fs::create_dir_all(dir).map_err(|source| ModelError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = dir.join("model.json");
        let text = serde_json::to_string_pretty(self).expect("model serializes");
        std::fs::write(&path, text + "\n").map_err(|source| ModelError::Io { path, source })
    }

    /// The model's input vector of a flow's named features. A feature the
    /// flow lacks is an error naming it (never silently zero).
    pub fn vector(&self, f: &BTreeMap<String, f64>) -> Result<Vec<f64>, String> {
        self.features
            .iter()
            .map(|name| {
                f.get(name)
                    .copied()
                    .ok_or_else(|| format!("flow lacks feature {name}"))
            })
            .collect()
    }

    /// Standardized (and transformed) value of feature `i`.
    fn z(&self, i: usize, x: f64) -> f64 {
        let x = match self.transform {
            Transform::None => x,
            Transform::Log1p => x.max(0.0).ln_1p(),
        };
        // A zero standard deviation counts as 1 (FlowMeter's rule).
        let sd = if self.std[i] == 0.0 { 1.0 } else { self.std[i] };
        (x - self.mean[i]) / sd
    }

    /// Probability of a feature vector (in [`FlowModel::features`] order).
    pub fn probability_of(&self, x: &[f64]) -> f64 {
        let z: f64 = self.intercept
            + x.iter()
                .enumerate()
                .map(|(i, &v)| self.weights[i] * self.z(i, v))
                .sum::<f64>();
        1.0 / (1.0 + (-z).exp())
    }

    /// Probability that a flow is malicious.
    pub fn probability(&self, f: &BTreeMap<String, f64>) -> Result<f64, String> {
        Ok(self.probability_of(&self.vector(f)?))
    }

    /// The `k` features that pushed this flow's score up the most.
    pub fn top_features(&self, x: &[f64], k: usize) -> Vec<FeatureEvidence> {
        let mut c: Vec<FeatureEvidence> = x
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                let z = self.z(i, v);
                FeatureEvidence {
                    name: self.features[i].clone(),
                    value: v,
                    z,
                    contribution: self.weights[i] * z,
                }
            })
            .collect();
        c.sort_by(|a, b| b.contribution.total_cmp(&a.contribution));
        c.truncate(k);
        c
    }

    /// Fits standardization and a logistic regression (linfa-logistic, L2
    /// penalty `alpha`) to feature vectors `x` with labels `y` (true =
    /// malicious). The threshold is left at 0.5; callers calibrate it.
    pub fn fit(
        features: Vec<String>,
        transform: Transform,
        x: &[Vec<f64>],
        y: &[bool],
        alpha: f64,
        max_iterations: u64,
    ) -> Result<FlowModel, String> {
        use linfa::prelude::*;
        let n = features.len();
        if x.is_empty() || y.iter().all(|&b| b) || y.iter().all(|&b| !b) {
            return Err("training needs both benign and malicious flows".into());
        }
        let mut m = FlowModel {
            name: "daisi-flow-lr".into(),
            version: String::new(),
            features,
            transform,
            mean: vec![0.0; n],
            std: vec![1.0; n],
            weights: vec![0.0; n],
            intercept: 0.0,
            threshold: 0.5,
            trained_on: serde_json::Value::Null,
            metrics: serde_json::Value::Null,
        };
        // Standardization over the transformed training values.
        let mut stats = vec![crate::flows::RunningStats::default(); n];
        for row in x {
            for (i, &v) in row.iter().enumerate() {
                stats[i].push(m.z(i, v));
            }
        }
        for (i, s) in stats.iter().enumerate() {
            m.mean[i] = s.mean();
            m.std[i] = s.std();
        }
        let mut data = ndarray::Array2::<f64>::zeros((x.len(), n));
        for (r, row) in x.iter().enumerate() {
            for (i, &v) in row.iter().enumerate() {
                data[[r, i]] = m.z(i, v);
            }
        }
        let targets = ndarray::Array1::from_iter(y.iter().copied());
        let fitted = linfa_logistic::LogisticRegression::default()
            .alpha(alpha)
            .max_iterations(max_iterations)
            .fit(&Dataset::new(data, targets))
            .map_err(|e| e.to_string())?;
        // linfa's probabilities are of its "positive" class, the larger one.
        let sign = if fitted.labels().pos.class { 1.0 } else { -1.0 };
        m.weights = fitted.params().iter().map(|w| sign * w).collect();
        m.intercept = sign * fitted.intercept();
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared() -> Option<std::path::PathBuf> {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/datasets/flowmeter");
        if !p.exists() {
            eprintln!("skipped: ../shared/datasets/flowmeter is absent");
            return None;
        }
        Some(p)
    }

    /// FlowMeter's own parameters mark 94.4 % of the WebGoat flows malicious.
    #[test]
    fn flowmeter_parameters_on_webgoat_flows() {
        let Some(dir) = shared() else { return };
        let model = FlowModel::from_flowmeter(&dir).unwrap();
        let mut rdr = csv::Reader::from_path(dir.join("webgoat_flow_stats.csv")).unwrap();
        let headers = rdr.headers().unwrap().clone();
        let (mut flows, mut malicious) = (0, 0);
        for rec in rdr.records() {
            let rec = rec.unwrap();
            let mut f: BTreeMap<String, f64> = headers
                .iter()
                .zip(rec.iter())
                .filter_map(|(h, v)| v.parse::<f64>().ok().map(|v| (h.to_string(), v)))
                .collect();
            add_rates(&mut f);
            flows += 1;
            if model.probability(&f).unwrap() > model.threshold {
                malicious += 1;
            }
        }
        assert_eq!(flows, 249);
        let share = malicious as f64 / flows as f64;
        assert!(
            (share - 0.944).abs() < 0.0005,
            "{malicious}/{flows} = {share:.4}"
        );
    }

    #[test]
    fn missing_features_are_named() {
        let Some(dir) = shared() else { return };
        let model = FlowModel::from_flowmeter(&dir).unwrap();
        let err = model.probability(&BTreeMap::new()).unwrap_err();
        assert!(err.contains("flowDuration"));
    }
}
