//! NATS connection from config: servers, authentication, TLS, events.
//!
//! Subjects are `daisi.v1.<kind>.<host>` (kind: `alert`, `heartbeat`,
//! `command`, `outcome`) and, for data, `daisi.v1.<kind>.<host>.<key>`
//! (`syscall` with the process id as key, `flow` with `0`): the key is what
//! the durable stream partitions by ([`DataStreamConfig`]). Heartbeats reach
//! every node.

use crate::config::{check_readable, ConfigError, Validate};
use crate::messages::PayloadKind;
use crate::metrics::Metrics;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// Subject prefix of this wire version.
pub const SUBJECT_PREFIX: &str = "daisi.v1";

/// Subject of a message of `kind` from `host` (without a data key).
pub fn subject(kind: PayloadKind, host: &str) -> String {
    format!("{SUBJECT_PREFIX}.{kind}.{host}")
}

/// The subject `payload` is published on by a node of `sender_host`.
pub fn subject_of(payload: &crate::messages::Payload, sender_host: &str) -> String {
    let s = subject(payload.kind(), payload.subject_host(sender_host));
    match payload.subject_key() {
        Some(key) => format!("{s}.{key}"),
        None => s,
    }
}

/// Subject pattern matching `kind` from every host (and every key).
pub fn subject_all(kind: PayloadKind) -> String {
    if kind.is_data() {
        format!("{SUBJECT_PREFIX}.{kind}.*.*")
    } else {
        format!("{SUBJECT_PREFIX}.{kind}.*")
    }
}

/// Where a batch may go when the stream is full (`[nats.jetstream]
/// discard`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Discard {
    /// The stream refuses new batches; collectors keep them in their
    /// buffer (its overflow policy applies, counted) and retry.
    New,
    /// The stream deletes its oldest batches to make room (the server
    /// counts them, not daisi).
    Old,
}

/// `[nats.jetstream]`: the durable data path. Syscall and flow batches go
/// to one JetStream stream; the server partitions them by `(host, key)`
/// into `partitions` subjects, and each partition has a durable consumer
/// read by exactly one compute node at a time (a pinned client of its
/// priority group), which another node takes over once the holder has not
/// pulled for `failover_after`. See `docs/transport.md`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DataStreamConfig {
    /// Batches through JetStream (acknowledged, durable). `false`: core
    /// NATS (at most once: what is published while no compute node
    /// listens is lost).
    pub enabled: bool,
    /// Stream name (created by the first node that needs it). Dead
    /// letters go to `<stream>_DEAD`.
    pub stream: String,
    /// Largest size of the stream in bytes.
    pub max_bytes: i64,
    /// Batches older than this are deleted.
    #[serde(with = "humantime_serde")]
    pub max_age: Duration,
    /// What a full stream does: `new` (refuse, collectors buffer and
    /// retry) or `old` (delete the oldest).
    pub discard: Discard,
    /// Copies of the stream (1, or 3 on a 3-node JetStream cluster).
    pub replicas: usize,
    /// Partitions (fixed when the stream is created).
    pub partitions: u32,
    /// Durable consumer names are `<consumer>-p<partition>`.
    pub consumer: String,
    /// Batches a compute node holds unacknowledged per partition: the
    /// backpressure bound.
    pub max_ack_pending: i64,
    /// A batch not acknowledged within this time is delivered again.
    #[serde(with = "humantime_serde")]
    pub ack_wait: Duration,
    /// A batch delivered this many times without being finished goes to
    /// the dead-letter stream instead.
    pub max_deliveries: u64,
    /// A partition moves to another compute node once its holder has not
    /// pulled for this long (the priority group's pin timeout).
    #[serde(with = "humantime_serde")]
    pub failover_after: Duration,
    /// Publishes with the same message id within this window are stored
    /// once.
    #[serde(with = "humantime_serde")]
    pub duplicate_window: Duration,
}

impl Default for DataStreamConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            stream: "DAISI_DATA".into(),
            max_bytes: 1 << 30,
            max_age: Duration::from_secs(24 * 3600),
            discard: Discard::New,
            replicas: 1,
            partitions: 16,
            consumer: "daisi-compute".into(),
            max_ack_pending: 64,
            ack_wait: Duration::from_secs(30),
            max_deliveries: 5,
            failover_after: Duration::from_secs(5),
            duplicate_window: Duration::from_secs(120),
        }
    }
}

impl Validate for DataStreamConfig {
    fn validate(&self, path: &str, errors: &mut Vec<ConfigError>) {
        for (key, name) in [("stream", &self.stream), ("consumer", &self.consumer)] {
            if name.is_empty() || name.contains([' ', '.', '*', '>', '/', '\\']) {
                errors.push(ConfigError::new(
                    format!("{path}.{key}"),
                    "must be a name without spaces, dots, wildcards or slashes",
                ));
            }
        }
        if self.max_bytes < 1 << 20 {
            errors.push(ConfigError::new(
                format!("{path}.max_bytes"),
                "must be at least 1 MiB",
            ));
        }
        if !(1..=5).contains(&self.replicas) {
            errors.push(ConfigError::new(
                format!("{path}.replicas"),
                "must be between 1 and 5",
            ));
        }
        if !(1..=1024).contains(&self.partitions) {
            errors.push(ConfigError::new(
                format!("{path}.partitions"),
                "must be between 1 and 1024",
            ));
        }
        if self.max_ack_pending < 1 {
            errors.push(ConfigError::new(
                format!("{path}.max_ack_pending"),
                "must be at least 1",
            ));
        }
        if self.max_deliveries < 1 {
            errors.push(ConfigError::new(
                format!("{path}.max_deliveries"),
                "must be at least 1",
            ));
        }
        for (key, d, min) in [
            ("max_age", self.max_age, Duration::from_secs(1)),
            ("ack_wait", self.ack_wait, Duration::from_secs(1)),
            (
                "failover_after",
                self.failover_after,
                Duration::from_secs(1),
            ),
            (
                "duplicate_window",
                self.duplicate_window,
                Duration::from_secs(1),
            ),
        ] {
            if d < min {
                errors.push(ConfigError::new(
                    format!("{path}.{key}"),
                    "must be at least 1s",
                ));
            }
        }
        if self.duplicate_window > self.max_age {
            errors.push(ConfigError::new(
                format!("{path}.duplicate_window"),
                "must not exceed max_age",
            ));
        }
    }
}

/// `[nats.tls]`: TLS to the broker.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// Require TLS even when the URL is `nats://`.
    pub required: bool,
    /// PEM file of the CA that signed the server's certificate.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate, for servers that verify clients.
    pub cert_file: Option<PathBuf>,
    /// PEM private key of `cert_file`.
    pub key_file: Option<PathBuf>,
}

/// `[nats]`: the broker connection (roles `collector` and `compute`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct NatsConfig {
    /// Server URLs, tried in turn (`nats://host:4222`, `tls://...`).
    pub servers: Vec<String>,
    /// Token authentication.
    pub token: Option<String>,
    /// User name (with `password`).
    pub user: Option<String>,
    pub password: Option<String>,
    /// NKey seed (`SU...`).
    pub nkey_seed: Option<String>,
    /// Credentials file (JWT + NKey) as issued by `nsc`.
    pub credentials_file: Option<PathBuf>,
    pub tls: TlsConfig,
    /// Queue group shared by compute nodes.
    pub queue_group: String,
    /// Largest message this node accepts; larger ones are counted and dropped.
    pub max_message_bytes: usize,
    /// Time allowed for the first connection.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Messages the client library holds per subscription before it reports
    /// a slow consumer (and drops, counted).
    pub subscription_capacity: usize,
    /// Subject prefix of this node's reply inboxes (where the stream's
    /// acknowledgements and pulled batches arrive). Empty: `_INBOX_<host>`
    /// on collectors (so the broker can let each read its own inboxes
    /// only: `config/nats-permissions.conf`), `_INBOX` on compute nodes.
    pub inbox_prefix: String,
    pub jetstream: DataStreamConfig,
}

impl Default for NatsConfig {
    fn default() -> Self {
        Self {
            servers: vec!["nats://127.0.0.1:4222".into()],
            token: None,
            user: None,
            password: None,
            nkey_seed: None,
            credentials_file: None,
            tls: TlsConfig::default(),
            queue_group: "daisi-compute".into(),
            max_message_bytes: 8 << 20,
            connect_timeout: Duration::from_secs(5),
            subscription_capacity: 8192,
            inbox_prefix: String::new(),
            jetstream: DataStreamConfig::default(),
        }
    }
}

impl Validate for NatsConfig {
    fn validate(&self, path: &str, errors: &mut Vec<ConfigError>) {
        if self.servers.is_empty() {
            errors.push(ConfigError::new(
                format!("{path}.servers"),
                "at least one server is needed",
            ));
        }
        for (i, s) in self.servers.iter().enumerate() {
            if let Err(e) = async_nats::ServerAddr::from_str(s) {
                errors.push(ConfigError::new(
                    format!("{path}.servers.{i}"),
                    format!("{:?}: {e}", without_credentials(s)),
                ));
            }
        }
        let methods = [
            self.token.is_some(),
            self.user.is_some() || self.password.is_some(),
            self.nkey_seed.is_some(),
            self.credentials_file.is_some(),
        ];
        if methods.iter().filter(|m| **m).count() > 1 {
            errors.push(ConfigError::new(
                path,
                "choose one of token, user/password, nkey_seed, credentials_file",
            ));
        }
        if self.user.is_some() != self.password.is_some() {
            errors.push(ConfigError::new(
                format!("{path}.password"),
                "user and password go together",
            ));
        }
        check_readable(
            &format!("{path}.credentials_file"),
            &self.credentials_file,
            errors,
        );
        check_readable(&format!("{path}.tls.ca_file"), &self.tls.ca_file, errors);
        check_readable(
            &format!("{path}.tls.cert_file"),
            &self.tls.cert_file,
            errors,
        );
        check_readable(&format!("{path}.tls.key_file"), &self.tls.key_file, errors);
        if self.tls.cert_file.is_some() != self.tls.key_file.is_some() {
            errors.push(ConfigError::new(
                format!("{path}.tls.key_file"),
                "cert_file and key_file go together",
            ));
        }
        if self.queue_group.is_empty() || self.queue_group.contains([' ', '.']) {
            errors.push(ConfigError::new(
                format!("{path}.queue_group"),
                "must be a single subject token",
            ));
        }
        if self.max_message_bytes < 1024 {
            errors.push(ConfigError::new(
                format!("{path}.max_message_bytes"),
                "must be at least 1024",
            ));
        }
        self.jetstream
            .validate(&format!("{path}.jetstream"), errors);
        if self.subscription_capacity == 0 {
            errors.push(ConfigError::new(
                format!("{path}.subscription_capacity"),
                "must be at least 1",
            ));
        }
    }
}

/// Why the broker connection failed.
#[derive(Debug, thiserror::Error)]
pub enum NatsError {
    #[error("cannot read NATS credentials file {path}: {source}")]
    Credentials {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot connect to NATS {servers:?}: {reason}")]
    Connect {
        servers: Vec<String>,
        reason: String,
    },
    #[error("NATS subscribe to {subject} failed: {reason}")]
    Subscribe { subject: String, reason: String },
    #[error("JetStream {what}: {reason} (is JetStream on? nats-server -js, or [nats.jetstream] enabled = false for core NATS)")]
    JetStream { what: String, reason: String },
}

/// Connects with the configured authentication and TLS. The client then
/// reconnects by itself forever; connection events are logged and counted
/// (`nats.disconnects`, `nats.reconnects`, `nats.slow_consumer_drops`).
pub async fn connect(
    cfg: &NatsConfig,
    name: &str,
    metrics: &Metrics,
) -> Result<async_nats::Client, NatsError> {
    // rustls picks its crypto provider by itself only when exactly one is
    // compiled in; choose ring (what async-nats uses) explicitly.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut opts = async_nats::ConnectOptions::new();
    if let Some(t) = &cfg.token {
        opts = opts.token(t.clone());
    }
    if let (Some(u), Some(p)) = (&cfg.user, &cfg.password) {
        opts = opts.user_and_password(u.clone(), p.clone());
    }
    if let Some(seed) = &cfg.nkey_seed {
        opts = opts.nkey(seed.clone());
    }
    if let Some(path) = &cfg.credentials_file {
        opts = opts
            .credentials_file(path)
            .await
            .map_err(|source| NatsError::Credentials {
                path: path.clone(),
                source,
            })?;
    }
    if cfg.tls.required {
        opts = opts.require_tls(true);
    }
    if let Some(ca) = &cfg.tls.ca_file {
        opts = opts.add_root_certificates(ca.clone());
    }
    if let (Some(c), Some(k)) = (&cfg.tls.cert_file, &cfg.tls.key_file) {
        opts = opts.add_client_certificate(c.clone(), k.clone());
    }
    let disconnects = metrics.counter("nats.disconnects");
    let reconnects = metrics.counter("nats.reconnects");
    let slow = metrics.counter("nats.slow_consumer_drops");
    let server_errors = metrics.counter("nats.server_errors");
    if !cfg.inbox_prefix.is_empty() {
        opts = opts.custom_inbox_prefix(cfg.inbox_prefix.clone());
    }
    opts = opts
        .name(name)
        .connection_timeout(cfg.connect_timeout)
        .subscription_capacity(cfg.subscription_capacity)
        .max_reconnects(None)
        .reconnect_delay_callback(|attempts| {
            Duration::from_millis((100 * attempts as u64).min(2000))
        })
        .event_callback(move |event| {
            let (disconnects, reconnects, slow, server_errors) = (
                disconnects.clone(),
                reconnects.clone(),
                slow.clone(),
                server_errors.clone(),
            );
            async move {
                match event {
                    async_nats::Event::Disconnected => {
                        disconnects.inc();
                        tracing::warn!("NATS disconnected; reconnecting");
                    }
                    async_nats::Event::Connected => {
                        reconnects.inc();
                        tracing::info!("NATS connected");
                    }
                    async_nats::Event::SlowConsumer(sid) => {
                        slow.inc();
                        tracing::warn!(sid, "NATS slow consumer: message dropped by client");
                    }
                    async_nats::Event::ServerError(e) => {
                        server_errors.inc();
                        tracing::error!(error = %e, "NATS server error");
                    }
                    other => tracing::info!(event = %other, "NATS event"),
                }
            }
        });
    let addrs: Vec<async_nats::ServerAddr> = cfg
        .servers
        .iter()
        .filter_map(|s| async_nats::ServerAddr::from_str(s).ok())
        .collect();
    opts.connect(addrs).await.map_err(|e| NatsError::Connect {
        servers: cfg.servers.iter().map(|s| without_credentials(s)).collect(),
        reason: describe_connect_error(&e),
    })
}

impl NatsConfig {
    /// Whether the broker is told who this node is.
    pub fn authenticates(&self) -> bool {
        self.token.is_some()
            || (self.user.is_some() && self.password.is_some())
            || self.nkey_seed.is_some()
            || self.credentials_file.is_some()
    }
}

/// A server URL as it may be shown: its user info (`user:password@`,
/// `token@`) replaced.
pub fn without_credentials(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.split_once('@') {
            Some((_, host)) if !rest[..rest.find('@').unwrap_or(0)].contains('/') => {
                format!("{scheme}://<credentials>@{host}")
            }
            _ => url.to_string(),
        },
        None => match url.split_once('@') {
            Some((_, host)) => format!("<credentials>@{host}"),
            None => url.to_string(),
        },
    }
}

#[cfg(test)]
#[test]
fn server_urls_are_shown_without_credentials() {
    assert_eq!(
        without_credentials("nats://alice:s3cret@nats.example:4222"),
        "nats://<credentials>@nats.example:4222"
    );
    assert_eq!(
        without_credentials("tls://tok3n@nats.example"),
        "tls://<credentials>@nats.example"
    );
    assert_eq!(
        without_credentials("nats://127.0.0.1:4222"),
        "nats://127.0.0.1:4222"
    );
}

fn describe_connect_error(e: &async_nats::ConnectError) -> String {
    use async_nats::ConnectErrorKind as K;
    let text = e.to_string().to_lowercase();
    let tls_problem = ["certificate", "tls", "handshake", "unknownissuer"]
        .iter()
        .any(|w| text.contains(w));
    let hint = match e.kind() {
        _ if tls_problem => "TLS failed: check nats.tls.ca_file (the CA that signed the server certificate), nats.tls.cert_file/key_file, and that the certificate matches the URL's host",
        K::AuthorizationViolation => {
            "authorization failed: check nats.token/user/password/nkey_seed/credentials_file"
        }
        K::Tls => {
            "TLS failed: check nats.tls.* and that the server certificate matches the URL's host"
        }
        K::TimedOut => "timed out: is the server running and reachable?",
        K::Io => "I/O error: is the server running at that address?",
        _ => "",
    };
    if hint.is_empty() {
        e.to_string()
    } else {
        format!("{e} ({hint})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects() {
        assert_eq!(
            subject(PayloadKind::Syscall, "web1"),
            "daisi.v1.syscall.web1"
        );
        assert_eq!(subject_all(PayloadKind::Flow), "daisi.v1.flow.*.*");
        assert_eq!(subject_all(PayloadKind::Heartbeat), "daisi.v1.heartbeat.*");
    }

    #[test]
    fn conflicting_auth_is_rejected() {
        let cfg = NatsConfig {
            token: Some("t".into()),
            user: Some("u".into()),
            ..Default::default()
        };
        let mut errs = vec![];
        cfg.validate("nats", &mut errs);
        assert_eq!(errs.len(), 2, "{errs:?}");
    }
}
