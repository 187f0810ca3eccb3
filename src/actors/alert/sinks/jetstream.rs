//! The NATS JetStream alert sink: alerts (JSON) on `daisi.v1.alert.<host>`
//! into a stream created if missing, with [`Alert::dedup_key`] as JetStream
//! message id, so a publish repeated after a lost acknowledgement, or the
//! same detection raised again by the compute node that took a partition
//! over, is stored once (`alert.jetstream.duplicates`).
//!
//! The alert actor hands alerts over a bounded queue and never waits; a
//! task publishes them in order, each until the server acknowledges it,
//! retrying with backoff while the server is away. What does not fit the
//! queue is counted (`alert.jetstream.dropped`) and logged.

use super::{Backlog, DeadLetters, Sink, SinkError};
use crate::actors::runtime::receipt::Receipt;
use crate::messages::Alert;
use crate::metrics::Metrics;
use async_nats::jetstream::{self, message::PublishMessage};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// `[alert.jetstream]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct JetStreamConfig {
    /// Send alerts to JetStream (uses the `[nats]` connection settings).
    pub enabled: bool,
    /// Stream name; created with subjects `daisi.v1.alert.>` if missing.
    pub stream: String,
    /// Alerts kept in the stream this long (when it is created).
    #[serde(with = "humantime_serde")]
    pub max_age: Duration,
    /// Alerts waiting for the server; beyond this they are dropped, counted.
    pub buffer: usize,
}

impl Default for JetStreamConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            stream: "DAISI_ALERTS".into(),
            max_age: Duration::from_secs(30 * 24 * 3600),
            buffer: 10_000,
        }
    }
}

/// The subjects alerts are published on.
pub const ALERT_SUBJECTS: &str = "daisi.v1.alert.>";

#[derive(Debug, thiserror::Error)]
#[error("JetStream stream {stream}: {reason}")]
pub struct JetStreamError {
    pub stream: String,
    pub reason: String,
}

/// Creates the stream when it is missing (fallible start).
pub async fn ensure_stream(
    client: &async_nats::Client,
    cfg: &JetStreamConfig,
) -> Result<jetstream::Context, JetStreamError> {
    let js = jetstream::new(client.clone());
    js.get_or_create_stream(jetstream::stream::Config {
        name: cfg.stream.clone(),
        subjects: vec![ALERT_SUBJECTS.into()],
        max_age: cfg.max_age,
        ..Default::default()
    })
    .await
    .map_err(|e| JetStreamError {
        stream: cfg.stream.clone(),
        reason: e.to_string(),
    })?;
    Ok(js)
}

/// True when the stream will never store this alert: larger than the
/// server takes, or refused by the stream's own limits on a message.
fn refused_for_good(e: &jetstream::context::PublishError) -> bool {
    use jetstream::context::PublishErrorKind as K;
    let text = e.to_string().to_lowercase();
    e.kind() == K::MaxPayloadExceeded || text.contains("message size exceeds")
}

/// The actor's side of the sink.
pub struct JetStreamSink {
    tx: tokio::sync::mpsc::Sender<(Alert, Vec<Receipt>)>,
    backlog: Backlog,
}

impl JetStreamSink {
    /// Starts the publishing task (inside the actix system).
    pub fn start(
        js: jetstream::Context,
        cfg: &JetStreamConfig,
        dead: DeadLetters,
        metrics: &Metrics,
    ) -> Self {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<(Alert, Vec<Receipt>)>(cfg.buffer.max(1));
        let sent = metrics.counter("alert.jetstream.sent");
        let retries = metrics.counter("alert.jetstream.retries");
        let duplicates = metrics.counter("alert.jetstream.duplicates");
        let dead_letters = metrics.counter("alert.jetstream.dead_letters");
        let backlog = Backlog::new("jetstream", metrics);
        let q = backlog.clone();
        actix::spawn(async move {
            // The claims are dropped (the batches acknowledged) once the
            // stream stored the alert.
            while let Some((a, _claims)) = rx.recv().await {
                let id = a.dedup_key();
                let subject = crate::nats::subject(crate::messages::PayloadKind::Alert, &a.host);
                let payload = bytes::Bytes::from(serde_json::to_vec(&a).expect("alert serializes"));
                let mut backoff = Duration::from_millis(100);
                loop {
                    let publish = PublishMessage::build()
                        .payload(payload.clone())
                        .message_id(&id);
                    let r = match js.send_publish(subject.clone(), publish).await {
                        Ok(ack) => ack.await,
                        Err(e) => Err(e),
                    };
                    match r {
                        Ok(ack) => {
                            if ack.duplicate {
                                duplicates.inc();
                            }
                            sent.inc();
                            break;
                        }
                        Err(e) if refused_for_good(&e) => {
                            dead.keep("jetstream", &e.to_string(), &a, &dead_letters);
                            break;
                        }
                        Err(e) => {
                            retries.inc();
                            tracing::warn!(alert_id = %a.id, error = %e, retry_in_ms = backoff.as_millis() as u64, "JetStream publish failed");
                            tokio::time::sleep(backoff).await;
                            backoff = (backoff * 2).min(Duration::from_secs(5));
                        }
                    }
                }
                q.delivered();
            }
        });
        Self { tx, backlog }
    }
}

impl Sink for JetStreamSink {
    fn name(&self) -> &'static str {
        "jetstream"
    }
    /// Queues an alert; never waits. A full queue drops it here (counted in
    /// `alert.jetstream.dropped`; the other sinks have it).
    fn send(&mut self, a: &Alert) -> Result<(), SinkError> {
        self.send_claimed(a, &[])
    }
    fn send_claimed(&mut self, a: &Alert, claims: &[Receipt]) -> Result<(), SinkError> {
        self.backlog
            .take(|| self.tx.try_send((a.clone(), claims.to_vec())).is_ok())
    }
    fn backlog(&self) -> Option<Backlog> {
        Some(self.backlog.clone())
    }
}
