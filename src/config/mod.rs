//! Node configuration: layered loading and whole-config validation.
//!
//! Layers, lowest first: built-in defaults (each section's `Default`) <
//! `config/default.toml` (when present in the working directory, or
//! `$DAISI_DEFAULT_CONFIG`) < `--config FILE` < environment variables
//! `DAISI__SECTION__KEY` (e.g. `DAISI__NODE__ROLE=compute`).
//!
//! Every section is a typed struct that lives beside the actor it configures,
//! with `deny_unknown_fields`. Loading never stops at the first problem: each
//! error (unreadable file, TOML syntax, unknown key, wrong type, bad value) is
//! collected with its key path and all are reported together.

use crate::actors::alert::AlertConfig;
use crate::actors::command::CommandConfig;
use crate::actors::console::ConsoleConfig;
use crate::actors::logs::detector::LogDetectorConfig;
use crate::actors::logs::source::LogSourcesConfig;
use crate::actors::network::flow_classifier::FlowClassifierConfig;
use crate::actors::network::flow_merge::FlowMergeConfig;
use crate::actors::network::packet_source::PacketSourceConfig;
use crate::actors::rules::RulesConfig;
use crate::actors::runtime::endpoint::MetricsConfig;
use crate::actors::runtime::heartbeat::HeartbeatConfig;
use crate::actors::syscall::baseline::BaselineConfig;
use crate::actors::syscall::batcher::SyscallBatcherConfig;
use crate::actors::syscall::buffer::SyscallBufferConfig;
use crate::actors::syscall::classifier::SyscallClassifierConfig;
use crate::actors::syscall::source::SyscallSourceConfig;
use crate::actors::transport::{InboundConfig, OutboundConfig};
use crate::nats::NatsConfig;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use crate::messages::Role;
pub use validate::{at_least_one, ConfigError, Validate};

pub mod validate;

/// `[node]`: identity, role and shutdown.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct NodeConfig {
    /// `collector`, `compute` or `both`.
    pub role: Role,
    /// Host name reported in messages; empty = the machine's host name.
    pub host: String,
    /// Node id; empty = `<host>-<role>-<pid>-<random nonce>`.
    pub id: String,
    /// How long a graceful shutdown may take before the node exits anyway.
    #[serde(with = "humantime_serde")]
    pub shutdown_deadline: Duration,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            role: Role::Both,
            host: String::new(),
            id: String::new(),
            shutdown_deadline: Duration::from_secs(10),
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// `[log]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// Filter in `RUST_LOG` syntax; `RUST_LOG` itself wins when set.
    pub level: String,
    /// `text` or `json`.
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info".into(),
            format: LogFormat::Text,
        }
    }
}

/// The whole configuration. Adding an actor adds one section here.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub node: NodeConfig,
    pub log: LogConfig,
    pub nats: NatsConfig,
    pub heartbeat: HeartbeatConfig,
    pub metrics: MetricsConfig,
    pub console: ConsoleConfig,
    pub outbound: OutboundConfig,
    pub inbound: InboundConfig,
    pub syscall_source: SyscallSourceConfig,
    pub syscall_batcher: SyscallBatcherConfig,
    pub syscall_buffer: SyscallBufferConfig,
    pub syscall_classifier: SyscallClassifierConfig,
    pub packet_source: PacketSourceConfig,
    pub flow_merge: FlowMergeConfig,
    pub flow_classifier: FlowClassifierConfig,
    /// `[[log_source]]`: any number (none by default).
    pub log_source: LogSourcesConfig,
    pub log_detector: LogDetectorConfig,
    pub alert: AlertConfig,
    pub baseline: BaselineConfig,
    pub rules: RulesConfig,
    pub command: CommandConfig,
}

/// Every problem found, reported together.
#[derive(Debug, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} configuration error(s):", self.0.len())?;
        for e in &self.0 {
            writeln!(f, "  - {e}")?;
        }
        Ok(())
    }
}

/// The default-file layer: `$DAISI_DEFAULT_CONFIG`, else `config/default.toml`
/// in the working directory when it exists.
fn default_file() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("DAISI_DEFAULT_CONFIG") {
        return Some(PathBuf::from(p));
    }
    let p = PathBuf::from("config/default.toml");
    p.exists().then_some(p)
}

impl Config {
    /// Loads and validates the layered configuration; `role` (from the
    /// command line) overrides `node.role`.
    pub fn load(file: Option<&Path>, role: Option<Role>) -> Result<Config, ConfigErrors> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        Self::load_from(default_file().as_deref(), file, &env, role)
    }

    /// [`Config::load`] with explicit inputs (testable without touching the
    /// process environment).
    pub fn load_from(
        default_file: Option<&Path>,
        file: Option<&Path>,
        env: &[(String, String)],
        role: Option<Role>,
    ) -> Result<Config, ConfigErrors> {
        let mut errors = Vec::new();
        let mut builder = config::Config::builder();
        for path in default_file.into_iter().chain(file) {
            let shown = path.display().to_string();
            match std::fs::read_to_string(path) {
                Err(e) => errors.push(ConfigError::new("", format!("cannot read {shown}: {e}"))),
                Ok(text) => {
                    // Parse each file alone first, so a syntax error names its file.
                    let one = config::Config::builder()
                        .add_source(config::File::from_str(&text, config::FileFormat::Toml))
                        .build();
                    match one {
                        Err(e) => errors.push(ConfigError::new("", format!("{shown}: {e}"))),
                        Ok(_) => {
                            builder = builder.add_source(config::File::from_str(
                                &text,
                                config::FileFormat::Toml,
                            ));
                        }
                    }
                }
            }
        }
        let env_map: std::collections::HashMap<String, String> = env
            .iter()
            .filter(|(k, _)| k.starts_with("DAISI__"))
            .cloned()
            .collect();
        builder = builder.add_source(
            config::Environment::with_prefix("DAISI")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true)
                // Lists from the environment are comma-separated.
                .list_separator(",")
                .with_list_parse_key("nats.servers")
                .source(Some(env_map)),
        );
        let mut value: serde_json::Value = match builder.build().and_then(|c| c.try_deserialize()) {
            Ok(v) => v,
            Err(e) => {
                errors.push(ConfigError::new("", e.to_string()));
                serde_json::Value::Object(Default::default())
            }
        };
        if let Some(r) = role {
            if let Some(obj) = value.as_object_mut() {
                let node = obj.entry("node").or_insert_with(|| serde_json::json!({}));
                if let Some(node) = node.as_object_mut() {
                    node.insert("role".into(), serde_json::json!(r.as_str()));
                }
            }
        }
        let cfg = deserialize_collecting(value, &mut errors);
        let mut cfg = cfg.unwrap_or_default();
        cfg.fill_identity();
        cfg.validate("", &mut errors);
        if cfg.alert.response.enabled {
            cfg.alert.response.infrastructure = crate::response::infrastructure(&cfg.nats.servers);
        }
        if errors.is_empty() {
            Ok(cfg)
        } else {
            Err(ConfigErrors(errors))
        }
    }

    /// The host name, when unset: the machine's, up to its first dot; the
    /// node id, when unset: `<host>-<role>-<pid>-<nonce>`, the nonce random
    /// per start (another host cannot guess it, so it cannot claim this
    /// node's message ids).
    fn fill_identity(&mut self) {
        if self.node.host.is_empty() {
            let name = gethostname::gethostname().to_string_lossy().into_owned();
            self.node.host = name.split('.').next().unwrap_or_default().to_string();
        }
        if self.nats.inbox_prefix.is_empty() && self.node.role == Role::Collector {
            self.nats.inbox_prefix = format!("_INBOX_{}", self.node.host);
        }
        if self.node.id.is_empty() {
            let mut nonce = [0u8; 8];
            getrandom::fill(&mut nonce).expect("the kernel's random numbers");
            self.node.id = format!(
                "{}-{}-{}-{:016x}",
                self.node.host,
                self.node.role.as_str(),
                std::process::id(),
                u64::from_le_bytes(nonce)
            );
        }
    }
}

impl Config {
    /// What is allowed but unwise, said by `check-config` and at start.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.node.role.uses_nats() {
            let beyond_loopback = self.nats.servers.iter().any(|s| {
                <async_nats::ServerAddr as std::str::FromStr>::from_str(s)
                    .map(|a| {
                        let h = a.host().trim_start_matches('[').trim_end_matches(']');
                        !(h == "localhost"
                            || h.parse::<std::net::IpAddr>()
                                .is_ok_and(|ip| ip.is_loopback()))
                    })
                    .unwrap_or(false)
            });
            let tls =
                self.nats.tls.required || self.nats.servers.iter().all(|s| s.starts_with("tls://"));
            if beyond_loopback && !tls {
                out.push("nats: a server beyond loopback without TLS (nats.tls.required or tls:// URLs): batches, alerts and credentials cross the network in clear".into());
            }
            if !self.nats.authenticates() {
                out.push("nats: no authentication: any client of the broker can publish as any host and read every host's data (config/nats-permissions.conf, docs/security.md)".into());
            }
        }
        out
    }
}

impl Validate for Config {
    fn validate(&self, _: &str, errors: &mut Vec<ConfigError>) {
        if self.node.shutdown_deadline.is_zero() {
            errors.push(ConfigError::new(
                "node.shutdown_deadline",
                "must be above 0",
            ));
        }
        if let Some(problem) = crate::messages::host_name_problem(&self.node.host) {
            errors.push(ConfigError::new(
                "node.host",
                format!(
                    "{:?} {problem} (it is a NATS subject token, a file name and a key)",
                    self.node.host
                ),
            ));
        }
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log.level) {
            errors.push(ConfigError::new("log.level", e.to_string()));
        }
        let role = self.node.role;
        if role.computes() && !cfg!(feature = "torch") {
            errors.push(ConfigError::new(
                "node.role",
                format!(
                    "{} needs the compute side, which this collector-only build lacks (build with default features)",
                    role.as_str()
                ),
            ));
        }
        if role.uses_nats() || (role.computes() && self.alert.jetstream.enabled) {
            self.nats.validate("nats", errors);
        }
        if role.uses_nats() && self.alert.response.enabled && !self.nats.authenticates() {
            errors.push(ConfigError::new(
                "alert.response.enabled",
                "a node on NATS acts on commands only with broker authentication (nats.token, user/password, nkey_seed or credentials_file, and config/nats-permissions.conf): without it anyone who reaches the broker commands it",
            ));
        }
        self.heartbeat.validate("heartbeat", errors);
        self.metrics.validate("metrics", errors);
        if role.computes() {
            self.console.validate("console", errors);
        }
        if role == Role::Collector {
            self.command.validate("command", errors);
        }
        if role.collects() {
            self.outbound.validate("outbound", errors);
            self.syscall_source.validate("syscall_source", errors);
            self.syscall_batcher.validate("syscall_batcher", errors);
            self.packet_source.validate("packet_source", errors);
            self.flow_merge.validate("flow_merge", errors);
            self.log_source.validate("log_source", errors);
        }
        if role.computes() {
            self.inbound.validate("inbound", errors);
            self.syscall_buffer.validate("syscall_buffer", errors);
            self.syscall_classifier
                .validate("syscall_classifier", errors);
            self.flow_classifier.validate("flow_classifier", errors);
            self.log_detector.validate("log_detector", errors);
            self.alert.validate("alert", errors);
            self.baseline.validate("baseline", errors);
            self.rules.validate("rules", errors);
        }
    }
}

/// Deserializes the config, collecting every error: each failing key is
/// reported with its path and removed (so its default applies), then
/// deserialization is retried, until it succeeds.
fn deserialize_collecting(
    mut value: serde_json::Value,
    errors: &mut Vec<ConfigError>,
) -> Option<Config> {
    for _ in 0..256 {
        let r: Result<Config, _> = serde_path_to_error::deserialize(&value);
        match r {
            Ok(c) => return Some(c),
            Err(e) => {
                let path: Vec<String> = e
                    .path()
                    .iter()
                    .filter_map(|s| match s {
                        serde_path_to_error::Segment::Map { key } => Some(key.clone()),
                        serde_path_to_error::Segment::Seq { index } => Some(index.to_string()),
                        _ => None,
                    })
                    .collect();
                let mut message = e.inner().to_string();
                let mut key_path = path.clone();
                // Unknown fields: serde names the field in the message.
                if let Some(field) = unknown_field(&message) {
                    if key_path.last().map(String::as_str) != Some(field.as_str()) {
                        key_path.push(field);
                    }
                    message = "unknown key".into();
                    if let Some(expected) = e.inner().to_string().split("expected ").nth(1) {
                        message = format!("unknown key (expected {expected})");
                    }
                }
                errors.push(ConfigError::new(key_path.join("."), message));
                if !remove_path(&mut value, &key_path) {
                    return None;
                }
            }
        }
    }
    None
}

fn unknown_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    Some(rest.split('`').next()?.to_string())
}

fn remove_path(value: &mut serde_json::Value, path: &[String]) -> bool {
    let Some((last, parents)) = path.split_last() else {
        return false;
    };
    let mut cur = value;
    for p in parents {
        cur = match cur.get_mut(p.as_str()) {
            Some(v) => v,
            None => return false,
        };
    }
    cur.as_object_mut()
        .map(|o| o.remove(last.as_str()).is_some())
        .unwrap_or(false)
}

/// Checks that a file configured at `key` can be read.
pub fn check_readable(key: &str, path: &Option<PathBuf>, errors: &mut Vec<ConfigError>) {
    if let Some(p) = path {
        if let Err(e) = std::fs::File::open(p) {
            errors.push(ConfigError::new(
                key,
                format!("cannot read {}: {e}", p.display()),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn load(toml: &str, env: &[(&str, &str)]) -> Result<Config, ConfigErrors> {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(toml.as_bytes()).unwrap();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::load_from(None, Some(f.path()), &env, None)
    }

    #[test]
    fn defaults_are_valid() {
        let c = load("", &[]).unwrap();
        assert_eq!(c.node.role, Role::Both);
        assert!(!c.node.id.is_empty());
    }

    #[test]
    fn every_error_is_reported_with_its_key() {
        let errs = load(
            r#"
            [node]
            role = "sideways"
            bogus = 1
            [nats]
            servers = ["nats://ok:4222", "bad url ::"]
            [syscall_buffer]
            max_batch = 0
            [syscall_batcher]
            max_events = "many"
            [nope]
            x = 1
            "#,
            &[("DAISI__NODE__ROLE", "collector")],
        )
        .unwrap_err()
        .0;
        let keys: Vec<&str> = errs.iter().map(|e| e.key.as_str()).collect();
        // env overrides the file's bad role, so role is valid and the collector
        // sections are checked.
        assert!(keys.contains(&"node.bogus"), "{errs:?}");
        assert!(keys.contains(&"nope"), "{errs:?}");
        assert!(keys.contains(&"syscall_batcher.max_events"), "{errs:?}");
        assert!(keys.contains(&"nats.servers.1"), "{errs:?}");
        assert!(!keys.contains(&"node.role"), "{errs:?}");
    }

    #[test]
    fn bad_role_is_reported() {
        let errs = load("[node]\nrole = \"sideways\"\n[log]\nformat=\"xml\"", &[])
            .unwrap_err()
            .0;
        let mut keys: Vec<&str> = errs.iter().map(|e| e.key.as_str()).collect();
        keys.sort();
        assert_eq!(keys, vec!["log.format", "node.role"], "{errs:?}");
    }

    #[test]
    fn env_overrides_file_and_parses_numbers() {
        let c = load(
            "[syscall_buffer]\nmax_batch = 10",
            &[("DAISI__SYSCALL_BUFFER__MAX_BATCH", "20")],
        )
        .unwrap();
        assert_eq!(c.syscall_buffer.max_batch, 20);
    }

    #[test]
    fn unreadable_and_unparsable_files_are_errors() {
        let env = vec![];
        let e = Config::load_from(None, Some(Path::new("/nonexistent/x.toml")), &env, None)
            .unwrap_err();
        assert!(e.to_string().contains("cannot read /nonexistent/x.toml"));
        let e = load("[node\nrole=", &[]).unwrap_err();
        assert_eq!(e.0.len(), 1, "{e}");
    }

    fn leaves(prefix: &str, v: &serde_json::Value, out: &mut Vec<(String, bool)>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, v) in m {
                    let p = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    leaves(&p, v, out);
                }
            }
            // Unset options and lists of tables empty by default
            // (`[[log_source]]`) are shown commented.
            other => out.push((
                prefix.to_string(),
                other.is_null() || other.as_array().is_some_and(|a| a.is_empty()),
            )),
        }
    }

    #[test]
    fn default_toml_documents_every_key() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/default.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let file: serde_json::Value = config::Config::builder()
            .add_source(config::File::from_str(&text, config::FileFormat::Toml))
            .build()
            .unwrap()
            .try_deserialize()
            .unwrap();
        let mut in_file = vec![];
        leaves("", &file, &mut in_file);
        let in_file: Vec<String> = in_file.into_iter().map(|(k, _)| k).collect();
        let mut defaults = vec![];
        leaves(
            "",
            &serde_json::to_value(Config::default()).unwrap(),
            &mut defaults,
        );
        for (key, optional) in defaults {
            let last = key.rsplit('.').next().unwrap();
            if optional && !in_file.contains(&key) {
                assert!(
                    text.contains(&format!("# {last} = "))
                        || text.contains(&format!("# [[{last}]]")),
                    "optional key {key} is not shown (commented) in default.toml"
                );
            } else {
                assert!(
                    in_file.contains(&key),
                    "key {key} is missing from default.toml"
                );
            }
        }
        // And the file's values are the built-in defaults.
        let mut from_file = Config::load_from(Some(&path), None, &[], None).unwrap();
        let builtin = Config::load_from(None, None, &[], None).unwrap();
        // The node id's nonce is new at each load.
        from_file.node.id = builtin.node.id.clone();
        assert_eq!(from_file, builtin);
    }

    #[test]
    fn shipped_config_files_are_valid() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
        for name in [
            "default.toml",
            "collector.toml",
            "compute.toml",
            "both.toml",
        ] {
            let p = dir.join(name);
            let r = Config::load_from(Some(&dir.join("default.toml")), Some(&p), &[], None);
            if let Err(e) = r {
                panic!("{name}: {e}");
            }
            // The shipped files seed the `config` fuzz target.
            crate::fuzz_seeds::check("config", name, &std::fs::read(&p).unwrap());
        }
    }
}
