//! The web console (`[console]`, compute and `both` nodes): incidents and
//! alerts newest first with filters and live updates, an incident's page
//! (its process tree, each process's findings, files and connections, the
//! flows joined to it), and the nodes with charts of their recent
//! heartbeats. Its assets are in the binary (no CDN: it works offline).
//!
//! The page renders every value with `textContent`, never as HTML (alert
//! fields come from monitored processes), and the server sends a content
//! security policy that allows only its own script. Bound to loopback by
//! default; anywhere else a token is required (`Authorization: Bearer`).
//! Without a token the console is read-only; with one, an incident's
//! baseline findings can be accepted into the host's baseline.

pub mod store;

use crate::actors::runtime::endpoint::{serve, stop};
use crate::actors::runtime::supervision::Restarts;
use crate::actors::runtime::{drained_when, on_start, Drain, NodeActor, NodeInfo};
use crate::config::validate::{ConfigError, Validate};
use actix::prelude::*;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::sync::Arc;
use store::{ConsoleState, Filter};

/// `[console]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleConfig {
    /// Serve the console here (compute and `both` nodes), e.g.
    /// `127.0.0.1:8470`; unset = off.
    pub listen: Option<SocketAddr>,
    /// Required on every request when set (`Authorization: Bearer
    /// <token>`; the page asks for it once). Must be set to listen beyond
    /// loopback.
    pub token: Option<String>,
    /// Alerts kept for the console (the oldest go first, counted as
    /// `console.evicted`).
    pub keep: usize,
    /// Without a token, the API answers only requests whose `Host` is the
    /// listen address (`127.0.0.1:8470`, `localhost:8470` on loopback) or
    /// one of these (`name:port`): a web page that rebinds its own name
    /// to 127.0.0.1 cannot read it.
    pub hosts: Vec<String>,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        Self {
            listen: None,
            token: None,
            keep: 10_000,
            hosts: vec![],
        }
    }
}

impl Validate for ConsoleConfig {
    fn validate(&self, path: &str, errors: &mut Vec<ConfigError>) {
        if let Some(a) = self.listen {
            if !a.ip().is_loopback() && self.token.is_none() {
                errors.push(ConfigError::new(
                    format!("{path}.token"),
                    format!("the console listens on {a}, beyond loopback: set a token"),
                ));
            }
            if a.port() == 0 {
                errors.push(ConfigError::new(
                    format!("{path}.listen"),
                    "needs a port other than 0",
                ));
            }
        }
        if self.token.as_ref().is_some_and(|t| t.len() < 16) {
            errors.push(ConfigError::new(
                format!("{path}.token"),
                "must be at least 16 characters",
            ));
        }
        if self.keep == 0 {
            errors.push(ConfigError::new(
                format!("{path}.keep"),
                "must be at least 1",
            ));
        }
    }
}

/// Why the console cannot start.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr} for the console: {source}")]
pub struct ConsoleError {
    pub addr: SocketAddr,
    pub source: std::io::Error,
}

const INDEX: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const APP_CSS: &str = include_str!("assets/app.css");
/// Only the console's own script and style; nothing inline, nothing
/// framed.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn asset(body: &'static str, content_type: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header(("Content-Security-Policy", CSP))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header(("Cache-Control", "no-cache"))
        .body(body)
}

/// What every API handler shares.
struct Api {
    state: Arc<ConsoleState>,
    token: Option<String>,
    /// `Host` headers answered without a token.
    hosts: Vec<String>,
    /// Where accepted baseline findings go (`[baseline] dir`).
    baselines: std::path::PathBuf,
}

impl Api {
    /// `None` when the request may go on, else the refusal.
    fn refuse(&self, req: &HttpRequest) -> Option<HttpResponse> {
        let Some(want) = self.token.as_ref() else {
            let host = req
                .headers()
                .get("Host")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if self.hosts.iter().any(|h| h.eq_ignore_ascii_case(host)) {
                return None;
            }
            return Some(HttpResponse::MisdirectedRequest().json(serde_json::json!({
                "error": "this console answers its own address only (Host); add the name to [console] hosts, or set a token"
            })));
        };
        let got = req
            .headers()
            .get("Authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        // Compared in constant time: the token is a secret.
        let ok = got.is_some_and(|g| {
            g.len() == want.len()
                && g.bytes()
                    .zip(want.bytes())
                    .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                    == 0
        });
        (!ok).then(|| {
            HttpResponse::Unauthorized()
                .insert_header(("WWW-Authenticate", "Bearer"))
                .json(serde_json::json!({"error": "a token is required"}))
        })
    }
}

async fn alerts(api: web::Data<Api>, req: HttpRequest, q: web::Query<Filter>) -> HttpResponse {
    if let Some(r) = api.refuse(&req) {
        return r;
    }
    let f = api.state.facets();
    HttpResponse::Ok().json(serde_json::json!({
        "alerts": api.state.alerts(&q),
        "hosts": f.hosts,
        "modules": f.modules,
        "tactics": f.tactics,
    }))
}

async fn alert(api: web::Data<Api>, req: HttpRequest, id: web::Path<String>) -> HttpResponse {
    if let Some(r) = api.refuse(&req) {
        return r;
    }
    match api.state.alert(&id) {
        Some(a) => {
            let related: Vec<_> = a
                .related
                .iter()
                .filter(|r| **r != a.id)
                .filter_map(|r| api.state.alert(r))
                .collect();
            HttpResponse::Ok().json(serde_json::json!({"alert": a, "related": related}))
        }
        None => HttpResponse::NotFound().json(serde_json::json!({"error": "no such alert"})),
    }
}

/// Accepts an alert's baseline findings for its host (running nodes
/// reload them): only with a token, which makes the console writable.
async fn accept(api: web::Data<Api>, req: HttpRequest, id: web::Path<String>) -> HttpResponse {
    if api.token.is_none() {
        return HttpResponse::Forbidden().json(serde_json::json!({
            "error": "this console is read-only: set [console] token to accept findings"
        }));
    }
    if let Some(r) = api.refuse(&req) {
        return r;
    }
    let Some(a) = api.state.alert(&id) else {
        return HttpResponse::NotFound().json(serde_json::json!({"error": "no such alert"}));
    };
    if crate::baseline::findings_of(&a).is_empty() {
        return HttpResponse::BadRequest()
            .json(serde_json::json!({"error": "this alert holds no baseline finding"}));
    }
    match crate::baseline::Accepted::accept_alert(&api.baselines, &a.host, &a) {
        Ok(done) => {
            for (shown, new) in &done {
                tracing::info!(alert_id = %a.id, host = %a.host, finding = %shown, new, "accepted into the baseline from the console");
            }
            let (new, already): (Vec<_>, Vec<_>) = done.into_iter().partition(|(_, n)| *n);
            HttpResponse::Ok().json(serde_json::json!({
                "accepted": new.into_iter().map(|(s, _)| s).collect::<Vec<_>>(),
                "already": already.into_iter().map(|(s, _)| s).collect::<Vec<_>>(),
            }))
        }
        Err(e) => {
            HttpResponse::InternalServerError().json(serde_json::json!({"error": e.to_string()}))
        }
    }
}

async fn nodes(api: web::Data<Api>, req: HttpRequest) -> HttpResponse {
    if let Some(r) = api.refuse(&req) {
        return r;
    }
    HttpResponse::Ok().json(serde_json::json!({
        "now_ns": crate::actors::runtime::now_ns(),
        "nodes": api.state.nodes(),
    }))
}

/// Serves the console.
pub struct ConsoleServer {
    cfg: ConsoleConfig,
    state: Option<Arc<ConsoleState>>,
    listener: Option<(std::net::TcpListener, std::path::PathBuf)>,
    server: Option<actix_web::dev::ServerHandle>,
    restarts: Restarts,
}

impl NodeActor for ConsoleServer {
    const NAME: &'static str = "console";
    type Config = ConsoleConfig;
    /// The bound listener, when the console is on, and the baselines'
    /// directory.
    type Prepared = Option<(std::net::TcpListener, std::path::PathBuf)>;
    type Links = ();
    type Error = ConsoleError;

    fn section(cfg: &crate::config::Config) -> &ConsoleConfig {
        &cfg.console
    }
    /// Binds the address (a port in use stops the node before it runs).
    async fn prepare(
        cfg: &crate::config::Config,
        node: &NodeInfo,
    ) -> Result<Self::Prepared, ConsoleError> {
        let Some(addr) = cfg.console.listen.filter(|_| node.role.computes()) else {
            return Ok(None);
        };
        let l =
            std::net::TcpListener::bind(addr).map_err(|source| ConsoleError { addr, source })?;
        l.set_nonblocking(true)
            .map_err(|source| ConsoleError { addr, source })?;
        Ok(Some((l, cfg.baseline.dir.clone())))
    }
    fn create(cfg: ConsoleConfig, node: &NodeInfo, listener: Self::Prepared, _: ()) -> Self {
        Self {
            restarts: Restarts::new(Self::NAME, &node.metrics),
            state: node.console.clone(),
            cfg,
            listener,
            server: None,
        }
    }
    fn mailbox_capacity(&self) -> usize {
        16
    }
}

crate::supervised!(ConsoleServer);

impl Actor for ConsoleServer {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Context<Self>) {
        on_start(self, ctx);
        // Once: the server outlives restarts.
        let (Some((listener, baselines)), Some(state)) = (self.listener.take(), self.state.clone())
        else {
            return;
        };
        let addr = listener.local_addr().ok();
        let mut hosts = self.cfg.hosts.clone();
        if let Some(a) = addr {
            hosts.push(a.to_string());
            if a.ip().is_loopback() {
                hosts.push(format!("localhost:{}", a.port()));
            }
        }
        let api = web::Data::new(Api {
            state,
            hosts,
            token: self.cfg.token.clone(),
            baselines,
        });
        let server = actix_web::HttpServer::new(move || {
            actix_web::App::new()
                .app_data(api.clone())
                .route(
                    "/",
                    web::get().to(|| async { asset(INDEX, "text/html; charset=utf-8") }),
                )
                .route(
                    "/app.js",
                    web::get().to(|| async { asset(APP_JS, "text/javascript; charset=utf-8") }),
                )
                .route(
                    "/app.css",
                    web::get().to(|| async { asset(APP_CSS, "text/css; charset=utf-8") }),
                )
                .route("/api/alerts", web::get().to(alerts))
                .route("/api/alerts/{id}", web::get().to(alert))
                .route("/api/alerts/{id}/accept", web::post().to(accept))
                .route("/api/nodes", web::get().to(nodes))
        })
        .workers(1)
        .disable_signals()
        .shutdown_timeout(2)
        .listen(listener)
        .map(|s| s.run());
        self.server = serve(server, "console", addr);
    }
}

/// Stops serving.
impl Handler<Drain> for ConsoleServer {
    type Result = ResponseActFuture<Self, ()>;
    fn handle(&mut self, _: Drain, _: &mut Context<Self>) -> Self::Result {
        drained_when(stop(self.server.take()))
    }
}
