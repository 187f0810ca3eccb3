//! The network flow classifier: standardize, then logistic regression, over
//! FlowMeter's 39 features (`../shared/datasets/flowmeter/README.md`).
//!
//! This file holds the model and its loading; the flow-merge actor and
//! training (issue #4) build on it. [`FlowModel::from_flowmeter`] reads
//! FlowMeter's published parameters (`lr_weights.txt`, `lr_mean.txt`,
//! `lr_std.txt`, `lr_intercept.txt`: one value per line, feature order as in
//! [`FEATURES`]).

use super::ModelError;
use std::collections::BTreeMap;
use std::path::Path;

/// FlowMeter's feature columns, in its order. The last six are rates: the
/// named column divided by `flowDuration`.
pub const FEATURES: [&str; 39] = [
    "flowDuration",
    "flowLength",
    "fwdFlowLength",
    "bwdFlowLength",
    "packetSizeTotal",
    "packetSizeMean",
    "packetSizeStd",
    "packetSizeMin",
    "packetSizeMax",
    "fwdPacketSizeTotal",
    "bwdPacketSizeTotal",
    "fwdPacketSizeMean",
    "bwdPacketSizeMean",
    "fwdPacketSizeStd",
    "bwdPacketSizeStd",
    "fwdPacketSizeMin",
    "bwdPacketSizeMin",
    "fwdPacketSizeMax",
    "bwdPacketSizeMax",
    "IATMean",
    "IATStd",
    "IATMin",
    "IATMax",
    "fwdIATTotal",
    "bwdIATTotal",
    "fwdIATMean",
    "bwdIATMean",
    "fwdIATStd",
    "bwdIATStd",
    "fwdIATMin",
    "bwdIATMin",
    "fwdIATMax",
    "bwdIATMax",
    "flowLengthPerTime",
    "fwdFlowLengthPerTime",
    "bwdFlowLengthPerTime",
    "packetSizeTotalPerTime",
    "fwdPacketSizeTotalPerTime",
    "bwdPacketSizeTotalPerTime",
];

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

/// Standardize + logistic regression.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowModel {
    pub features: Vec<String>,
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
    pub weights: Vec<f64>,
    pub intercept: f64,
    /// Probability above which a flow is malicious.
    pub threshold: f64,
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
            features: FEATURES.iter().map(|s| s.to_string()).collect(),
            mean,
            std,
            weights,
            intercept,
            threshold: 0.5,
        })
    }

    /// Probability that a flow is malicious. A feature the flow lacks is
    /// an error naming it (never silently zero).
    pub fn probability(&self, f: &BTreeMap<String, f64>) -> Result<f64, String> {
        let mut z = self.intercept;
        for (i, name) in self.features.iter().enumerate() {
            let x = *f
                .get(name)
                .ok_or_else(|| format!("flow lacks feature {name}"))?;
            // A zero standard deviation counts as 1 (FlowMeter's rule).
            let sd = if self.std[i] == 0.0 { 1.0 } else { self.std[i] };
            z += self.weights[i] * (x - self.mean[i]) / sd;
        }
        Ok(1.0 / (1.0 + (-z).exp()))
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
