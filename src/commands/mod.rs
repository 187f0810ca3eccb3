//! The `daisi` subcommands.

pub mod alerts;
pub mod baseline;
pub mod eval;
pub mod eval_host;
pub mod flows;
pub mod network;
pub mod record;
pub mod run;
pub mod status;
pub mod train;

use crate::config::LogFormat;
use std::process::ExitCode;
use tracing_subscriber::EnvFilter;

/// Installs the log subscriber: `RUST_LOG` wins over `level`; logs go to
/// standard error so standard output stays for results.
pub fn init_logging(level: &str, format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Panics are broken invariants: log them and exit, so the service manager
/// restarts a clean process (see `actors::supervision`).
pub fn install_panic_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        tracing::error!(panic = %info, "panic: broken invariant; exiting");
        default(info);
        std::process::exit(101);
    }));
}

/// Prints an error chain and maps it to an exit code.
pub fn report(r: anyhow::Result<()>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
