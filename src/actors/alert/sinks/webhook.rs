//! The HTTP webhook alert sink: each alert POSTed as JSON to a URL, in
//! order, with an `Idempotency-Key` header (the alert id, or `<id>#<count>`
//! for an update of a folded alert) so a receiver can drop a repeat.
//!
//! The alert actor hands alerts over a bounded queue and never waits; a
//! thread of its own posts them one at a time, each retried with backoff
//! while the failure is transient (no answer, 5xx, 408, 429), so a failing
//! receiver gets every alert once it recovers, in order. An alert the
//! receiver refuses for good (any other 4xx: malformed, too large,
//! forbidden) goes to the dead-letter file and delivery goes on
//! (`alert.webhook.dead_letters`). What does not fit the queue is counted
//! (`alert.webhook.dropped`) and logged.

use super::{Backlog, DeadLetters, Sink, SinkError};
use crate::messages::Alert;
use crate::metrics::Metrics;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// `[alert.webhook]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookConfig {
    /// POST alerts here (http:// or https://); empty = no webhook.
    pub url: String,
    /// Time allowed for one request.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Longest wait between retries (backoff doubles from 100 ms up to this).
    #[serde(with = "humantime_serde")]
    pub max_backoff: Duration,
    /// Alerts waiting for the receiver; beyond this they are dropped, counted.
    pub buffer: usize,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            timeout: Duration::from_secs(5),
            max_backoff: Duration::from_secs(30),
            buffer: 10_000,
        }
    }
}

impl WebhookConfig {
    /// Problems with the settings (the URL's form).
    pub fn problem(&self) -> Option<String> {
        if self.url.is_empty() {
            return None;
        }
        match self.url.parse::<ureq::http::Uri>() {
            Ok(u)
                if matches!(u.scheme_str(), Some("http") | Some("https")) && u.host().is_some() =>
            {
                None
            }
            _ => Some(format!("{:?} is not an http(s) URL", self.url)),
        }
    }
}

/// True for an answer that will not change however often the alert is
/// sent again: a 4xx other than 408 (timeout) and 429 (slow down).
pub fn refused_for_good(status: u16) -> bool {
    (400..500).contains(&status) && status != 408 && status != 429
}

/// The actor's side of the sink.
pub struct WebhookSink {
    tx: std::sync::mpsc::SyncSender<Alert>,
    backlog: Backlog,
}

impl WebhookSink {
    pub fn start(cfg: &WebhookConfig, dead: DeadLetters, metrics: &Metrics) -> Self {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Alert>(cfg.buffer.max(1));
        let sent = metrics.counter("alert.webhook.sent");
        let retries = metrics.counter("alert.webhook.retries");
        let dead_letters = metrics.counter("alert.webhook.dead_letters");
        let backlog = Backlog::new("webhook", metrics);
        let q = backlog.clone();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(cfg.timeout))
            .http_status_as_error(false)
            .build()
            .into();
        let (url, max_backoff) = (cfg.url.clone(), cfg.max_backoff);
        std::thread::Builder::new()
            .name("daisi-webhook".into())
            .spawn(move || {
                while let Ok(a) = rx.recv() {
                    let key = if a.count > 1 {
                        format!("{}#{}", a.id, a.count)
                    } else {
                        a.id.clone()
                    };
                    let body = serde_json::to_vec(&a).expect("alert serializes");
                    let mut backoff = Duration::from_millis(100);
                    loop {
                        let r = agent
                            .post(&url)
                            .header("Content-Type", "application/json")
                            .header("Idempotency-Key", &key)
                            .send(&body[..]);
                        let failure = match r {
                            Ok(resp) if resp.status().is_success() => None,
                            Ok(resp) => Some((
                                format!("HTTP {}", resp.status()),
                                refused_for_good(resp.status().as_u16()),
                            )),
                            Err(e) => Some((e.to_string(), false)),
                        };
                        let Some((why, permanent)) = failure else {
                            sent.inc();
                            break;
                        };
                        if permanent {
                            dead.keep("webhook", &why, &a, &dead_letters);
                            break;
                        }
                        retries.inc();
                        tracing::warn!(alert_id = %a.id, error = %why, retry_in_ms = backoff.as_millis() as u64, "webhook delivery failed");
                        std::thread::sleep(backoff);
                        backoff = (backoff * 2).min(max_backoff);
                    }
                    q.delivered();
                }
            })
            .expect("spawning a thread");
        Self { tx, backlog }
    }
}

impl Sink for WebhookSink {
    fn name(&self) -> &'static str {
        "webhook"
    }
    /// Queues an alert; never waits. A full queue drops it here (counted in
    /// `alert.webhook.dropped`; the other sinks have it).
    fn send(&mut self, a: &Alert) -> Result<(), SinkError> {
        self.backlog.take(|| self.tx.try_send(a.clone()).is_ok())
    }
    fn backlog(&self) -> Option<Backlog> {
        Some(self.backlog.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn which_answers_are_final() {
        for s in [400, 401, 403, 404, 413, 422] {
            assert!(refused_for_good(s), "{s}");
        }
        for s in [200, 408, 429, 500, 502, 503] {
            assert!(!refused_for_good(s), "{s}");
        }
    }
}
