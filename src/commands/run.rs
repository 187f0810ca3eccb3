//! `daisi run` and `daisi check-config`.

use crate::config::{Config, LogFormat, Role};
use crate::metrics::Metrics;
use crate::node::Node;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

/// Exit code for configuration errors.
pub const EXIT_CONFIG: u8 = 2;

/// Which configuration, and which role.
#[derive(Args, Debug, Clone)]
pub struct ConfigArgs {
    /// Configuration file (layered over config/default.toml).
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Role (overrides `node.role`).
    #[arg(long, value_enum)]
    pub role: Option<Role>,
}

fn load(args: &ConfigArgs) -> Result<Config, ExitCode> {
    match Config::load(args.config.as_deref(), args.role) {
        Ok(cfg) => Ok(cfg),
        Err(errors) => {
            eprint!("{errors}");
            Err(ExitCode::from(EXIT_CONFIG))
        }
    }
}

/// Validates the whole configuration; prints every error.
pub fn check_config(args: &ConfigArgs) -> ExitCode {
    match load(args) {
        Ok(cfg) => {
            println!("configuration is valid (role {})", cfg.node.role.as_str());
            for w in cfg.warnings() {
                println!("  warning: {w}");
            }
            for (what, by) in judges(&cfg) {
                println!("  {what}: {by}");
            }
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

/// What judges what on this node, one line per kind of input, as
/// `check-config` prints it.
pub fn judges(cfg: &Config) -> Vec<(&'static str, String)> {
    use crate::actors::syscall::source::SourceKind;
    if !cfg.node.role.computes() {
        return vec![(
            "judges",
            "none here: a collector ships to compute nodes".into(),
        )];
    }
    let live = cfg.node.role == Role::Compute || cfg.syscall_source.kind == SourceKind::Ebpf;
    let shipped = |m: &Option<PathBuf>| match m {
        Some(p) => p.display().to_string(),
        None => "the shipped model".into(),
    };
    let mut out = Vec::new();
    if live {
        let b = &cfg.baseline;
        out.push((
            "live processes",
            match b.enabled {
                true => format!(
                    "host baselines per program (learning for {}, nothing judged meanwhile; call order: {:?})",
                    humantime::format_duration(b.learn_for),
                    b.sequence_model
                ),
                false => "no baseline (baseline.enabled = false)".into(),
            },
        ));
        out.push((
            "live processes' calls",
            match &cfg.syscall_classifier.model {
                Some(m) => format!("syscall model {}", m.display()),
                None => "no syscall model (set syscall_classifier.model to one trained with `daisi train syscall` on your hosts)".into(),
            },
        ));
    }
    if cfg.node.role == Role::Compute || cfg.syscall_source.kind == SourceKind::Replay {
        out.push((
            "replayed traces",
            format!("syscall model {}", shipped(&cfg.syscall_classifier.model)),
        ));
    }
    let f = &cfg.flow_classifier;
    out.push((
        "flows",
        format!(
            "flow model {}{}",
            shipped(&f.model),
            if f.per_source {
                ", per-source rules"
            } else {
                ""
            }
        ),
    ));
    let l = &cfg.log_detector;
    out.push((
        "log lines",
        match (l.enabled, l.templates.enabled) {
            (false, _) => "not judged (log_detector.enabled = false)".into(),
            (true, false) => "log rules".into(),
            (true, true) => format!(
                "log rules, line shapes (learning for {}){}",
                humantime::format_duration(l.templates.learn_for),
                match (&l.templates.model, l.templates.sequence) {
                    (Some(_), true) => ", line order (the model's sequence model)",
                    _ => "",
                }
            ),
        },
    ));
    out
}

/// Runs the node until SIGINT or SIGTERM, then drains and exits: status 0
/// when everything was handed on, 1 when the shutdown deadline cut the
/// drain short.
pub fn run(args: &ConfigArgs, log_format: Option<LogFormat>) -> ExitCode {
    let cfg = match load(args) {
        Ok(c) => c,
        Err(code) => return code,
    };
    super::init_node_logging(
        &cfg.log.level,
        log_format.unwrap_or(cfg.log.format),
        cfg.alert.console && cfg.node.role.computes(),
    );
    super::install_panic_hook();
    for w in cfg.warnings() {
        tracing::warn!(warning = %w, "configuration");
    }
    let sys = actix::System::new();
    let r = sys.block_on(async move {
        let metrics = Metrics::new();
        let node = Node::start(cfg, metrics).await?;
        wait_for_signal().await;
        tracing::info!("stopping: draining the pipeline");
        if !node.shutdown().await {
            anyhow::bail!(
                "the shutdown deadline cut the drain short; what was left is counted as dropped"
            );
        }
        Ok::<(), anyhow::Error>(())
    });
    // Stop the actor system (arbiters, timers) before it is dropped.
    actix::System::current().stop();
    if let Err(e) = sys.run() {
        tracing::warn!(error = %e, "actor system did not stop cleanly");
    }
    super::report(r)
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (mut int, mut term) = match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(i), Ok(t)) => (i, t),
        _ => {
            tracing::error!("cannot install signal handlers; stopping");
            return;
        }
    };
    tokio::select! {
        _ = int.recv() => tracing::info!(signal = "SIGINT", "signal received"),
        _ = term.recv() => tracing::info!(signal = "SIGTERM", "signal received"),
    }
}

/// `daisi health`: whether the node whose configuration this is runs.
#[derive(clap::Args, Debug)]
pub struct HealthArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// The health file (default: the configuration's
    /// `heartbeat.health_file`).
    #[arg(long)]
    pub file: Option<PathBuf>,
}

/// Exit 0 when the node's last heartbeat is fresh (within three
/// `heartbeat.interval`s) and it is not stopping, else 1 with the reason.
pub fn health(args: &HealthArgs) -> ExitCode {
    use crate::actors::runtime::heartbeat::Health;
    let cfg = match load(&args.config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let Some(path) = args.file.clone().or(cfg.heartbeat.health_file.clone()) else {
        eprintln!("unhealthy: no health file (set heartbeat.health_file, or --file)");
        return ExitCode::FAILURE;
    };
    let h = match Health::read(&path) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("unhealthy: cannot read {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    };
    match h.problem(crate::actors::runtime::now_ns(), cfg.heartbeat.interval) {
        Some(why) => {
            eprintln!("unhealthy: {why}");
            ExitCode::FAILURE
        }
        None => {
            println!(
                "healthy: node {} ({}), up {} s",
                h.node_id,
                h.heartbeat.role.as_str(),
                h.heartbeat.uptime_s
            );
            ExitCode::SUCCESS
        }
    }
}
