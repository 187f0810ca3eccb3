//! The `daisi` subcommands.

pub mod alerts;
pub mod baseline;
pub mod eval;
pub mod eval_attack;
pub mod eval_host;
pub mod flows;
pub mod logs;
pub mod network;
pub mod record;
pub mod rules;
pub mod run;
pub mod status;
pub mod train;

use crate::config::LogFormat;
use std::process::ExitCode;
use tracing_subscriber::EnvFilter;

/// Installs the log subscriber: `RUST_LOG` wins over `level`; logs go to
/// standard error so standard output stays for results.
pub fn init_logging(level: &str, format: LogFormat) {
    init_node_logging(level, format, false);
}

/// [`init_logging`] for a node: with `console_prints_alerts` (the console
/// sink is on) and text logs, the alert records' log lines are left out,
/// so each alert is printed once on a terminal (the console sink's line);
/// JSON logs keep them, as structured records.
pub fn init_node_logging(level: &str, format: LogFormat, console_prints_alerts: bool) {
    let mut filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    if console_prints_alerts && format == LogFormat::Text {
        let off = format!("{}=off", crate::actors::alert::RECORD_TARGET);
        filter = filter.add_directive(off.parse().expect("a valid directive"));
    }
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
            eprintln!("error: {}", message(&e));
            ExitCode::FAILURE
        }
    }
}

/// An error and its causes on one line, each cause once: most of daisi's
/// errors already say their cause (`path: No such file or directory`).
pub fn message(e: &anyhow::Error) -> String {
    let mut out = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !out.contains(&c) {
            out.push_str(": ");
            out.push_str(&c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_error_says_each_cause_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file");
        let e = crate::baseline::BaselineError::Io {
            path: "/x/h.json".into(),
            source: io,
        };
        let said = super::message(&anyhow::Error::new(e).context("baseline show"));
        assert_eq!(said, "baseline show: /x/h.json: No such file");
        let plain = anyhow::anyhow!("outer").context("top");
        assert_eq!(super::message(&plain), "top: outer");
    }
}
