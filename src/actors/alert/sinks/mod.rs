//! Where alerts go. Every sink implements [`Sink`]; the alert actor hands
//! each alert to all of them in turn. A sink never blocks the actor: the
//! console and the file write at once, JetStream and the webhook queue
//! (bounded, counted) for a task or thread of their own. A sink that fails
//! is counted (`alert.sink_errors`) and logged; the others go on.
//!
//! A remote sink retries transient failures with backoff; an alert its
//! receiver refuses for good (an HTTP 4xx other than 408/429, a stream
//! that will not store it) goes to the [`DeadLetters`] file with the
//! reason, counted (`alert.<sink>.dead_letters`) and logged, and delivery
//! goes on with the next alert.

pub mod console;
pub mod jetstream;
pub mod jsonl;
pub mod webhook;

use super::AlertConfig;
use crate::actors::runtime::receipt::Receipt;
use crate::actors::runtime::NodeInfo;
use crate::config::Config;
use crate::messages::Alert;
use crate::metrics::{Counter, Gauge, Metrics};
use std::path::PathBuf;
use std::sync::Arc;

pub use console::{coloured, console_line, ConsoleSink};
pub use jetstream::JetStreamSink;
pub use jsonl::JsonlSink;
pub use webhook::WebhookSink;

/// Why a sink could not take an alert.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("queue full ({0} alerts waiting)")]
    Full(u64),
}

/// The alerts a remote sink has taken but not yet delivered: the gauge
/// `alert.<sink>.queued`, the counter `alert.<sink>.dropped`, and a signal
/// when it empties (the drain waits for it; no polling).
#[derive(Clone)]
pub struct Backlog {
    name: &'static str,
    queued: Gauge,
    dropped: Counter,
    emptied: Arc<tokio::sync::Notify>,
}

impl Backlog {
    pub fn new(name: &'static str, metrics: &Metrics) -> Self {
        Self {
            name,
            queued: metrics.gauge(&format!("alert.{name}.queued")),
            dropped: metrics.counter(&format!("alert.{name}.dropped")),
            emptied: Arc::new(tokio::sync::Notify::new()),
        }
    }

    /// An alert taken earlier was delivered.
    pub fn delivered(&self) {
        self.queued.dec();
        if self.queued.get() == 0 {
            self.emptied.notify_waiters();
        }
    }

    /// Takes an alert through `try_queue` (true when it fit): counted
    /// before it is queued, so its delivery can never be counted first; a
    /// full queue counts it as dropped here (the other sinks have it).
    pub fn take(&self, try_queue: impl FnOnce() -> bool) -> Result<(), SinkError> {
        self.queued.inc();
        if try_queue() {
            return Ok(());
        }
        self.dropped.inc();
        self.delivered();
        Err(SinkError::Full(self.len()))
    }

    pub fn len(&self) -> u64 {
        self.queued.get()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Resolves once everything taken was delivered.
    pub async fn emptied(&self) {
        loop {
            let emptied = self.emptied.notified();
            if self.is_empty() {
                return;
            }
            emptied.await;
        }
    }

    /// The shutdown deadline passed: what is still held is lost; counts it
    /// as dropped and logs it. Returns how many.
    pub fn abandon(&self) -> u64 {
        let left = self.queued.get();
        if left > 0 {
            self.dropped.add(left);
            self.queued.set(0);
            tracing::error!(
                sink = self.name,
                alerts = left,
                "alerts not delivered to this sink before exit"
            );
        }
        left
    }
}

/// The file of alerts a remote sink's receiver refused for good: one JSON
/// line each, `{"ts_ns", "sink", "reason", "alert"}`. Without a file (no
/// `[alert] dead_letters` and no `jsonl`), the alert is logged in full.
#[derive(Clone)]
pub struct DeadLetters {
    file: Option<Arc<parking_lot::Mutex<std::fs::File>>>,
    path: Option<PathBuf>,
}

impl DeadLetters {
    /// Opens (appends to) `path`, when given.
    pub fn open(path: Option<&std::path::Path>) -> std::io::Result<DeadLetters> {
        let file = match path {
            Some(p) => Some(Arc::new(parking_lot::Mutex::new(crate::files::append(p)?))),
            None => None,
        };
        Ok(DeadLetters {
            file,
            path: path.map(|p| p.to_path_buf()),
        })
    }

    /// Keeps `alert`, refused by `sink` for `reason`.
    pub fn keep(&self, sink: &str, reason: &str, alert: &Alert, counter: &Counter) {
        use std::io::Write;
        counter.inc();
        let line = serde_json::json!({
            "ts_ns": crate::actors::runtime::now_ns(),
            "sink": sink,
            "reason": reason,
            "alert": alert,
        });
        let written = self.file.as_ref().map(|f| {
            let mut f = f.lock();
            writeln!(f, "{line}").and_then(|_| f.flush())
        });
        match (written, &self.path) {
            (Some(Ok(())), Some(p)) => {
                tracing::error!(sink, reason, alert_id = %alert.id, file = %p.display(), "alert refused for good; kept in the dead-letter file")
            }
            (Some(Err(e)), _) => {
                tracing::error!(sink, reason, error = %e, alert = %line, "alert refused for good; dead-letter file not written")
            }
            _ => {
                tracing::error!(sink, reason, alert = %line, "alert refused for good (no dead-letter file configured)")
            }
        }
    }
}

/// Why the sinks cannot open.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot open alert file {path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Nats(#[from] crate::nats::NatsError),
    #[error(transparent)]
    JetStream(#[from] jetstream::JetStreamError),
    #[error("cannot open dead-letter file {path}: {source}")]
    DeadLetters {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The dead-letter file: `[alert] dead_letters`, else `<jsonl>.dead`.
fn dead_letters(a: &AlertConfig) -> Result<DeadLetters, OpenError> {
    let path = a.dead_letters.clone().or_else(|| {
        a.jsonl.as_ref().map(|j| {
            let mut p = j.clone().into_os_string();
            p.push(".dead");
            PathBuf::from(p)
        })
    });
    DeadLetters::open(path.as_deref()).map_err(|source| OpenError::DeadLetters {
        path: path.unwrap_or_default(),
        source,
    })
}

/// Opens every configured sink (the alert actor's prepare step): the file,
/// the broker connection and JetStream stream, the webhook's thread.
pub async fn open(cfg: &Config, node: &NodeInfo) -> Result<Vec<Box<dyn Sink>>, OpenError> {
    let (a, m) = (&cfg.alert, &node.metrics);
    let mut sinks = open_local(a, m)?;
    if let Some(state) = &node.console {
        sinks.push(Box::new(crate::actors::console::store::WebSink(
            state.clone(),
        )));
    }
    if a.jetstream.enabled {
        let client = crate::nats::connect(&cfg.nats, &format!("{} (alerts)", node.id), m).await?;
        let js = jetstream::ensure_stream(&client, &a.jetstream).await?;
        sinks.push(Box::new(JetStreamSink::start(
            js,
            &a.jetstream,
            dead_letters(a)?,
            m,
        )));
    }
    Ok(sinks)
}

/// The sinks that need no broker: console, file, webhook.
pub fn open_local(a: &AlertConfig, m: &Metrics) -> Result<Vec<Box<dyn Sink>>, OpenError> {
    let mut sinks: Vec<Box<dyn Sink>> = Vec::new();
    if a.console {
        sinks.push(Box::new(ConsoleSink::new()));
    }
    if let Some(p) = &a.jsonl {
        let file = JsonlSink::open(p, a.jsonl_max_bytes, a.jsonl_keep).map_err(|source| {
            OpenError::File {
                path: p.clone(),
                source,
            }
        })?;
        sinks.push(Box::new(file));
    }
    if !a.webhook.url.is_empty() {
        sinks.push(Box::new(WebhookSink::start(
            &a.webhook,
            dead_letters(a)?,
            m,
        )));
    }
    Ok(sinks)
}

/// One destination of alerts.
pub trait Sink: Send {
    /// Name in logs and counters (`alert.<name>.*`).
    fn name(&self) -> &'static str;
    /// Takes one alert; never waits for a remote end.
    fn send(&mut self, alert: &Alert) -> Result<(), SinkError>;
    /// [`Sink::send`], for an alert raised from durable batches: a remote
    /// sink holds their receipts until the alert is delivered, so the
    /// batches are acknowledged only then (a sink that writes at once
    /// needs not).
    fn send_claimed(&mut self, alert: &Alert, _claims: &[Receipt]) -> Result<(), SinkError> {
        self.send(alert)
    }
    /// Alerts taken but not yet delivered (remote sinks).
    fn backlog(&self) -> Option<Backlog> {
        None
    }
    /// Makes what was written durable (at drain).
    fn sync(&mut self) {}
}
