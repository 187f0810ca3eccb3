//! The console sink: one line per alert on standard output, coloured by
//! severity when it is a terminal.

use super::{Sink, SinkError};
use crate::messages::Alert;

/// Prints alerts on standard output.
pub struct ConsoleSink {
    colour: bool,
}

impl ConsoleSink {
    pub fn new() -> Self {
        Self {
            colour: std::io::IsTerminal::is_terminal(&std::io::stdout()),
        }
    }
}

impl Default for ConsoleSink {
    fn default() -> Self {
        Self::new()
    }
}

impl Sink for ConsoleSink {
    fn name(&self) -> &'static str {
        "console"
    }
    fn send(&mut self, alert: &Alert) -> Result<(), SinkError> {
        let line = console_line(alert);
        if self.colour {
            println!("{}", coloured(alert.severity, &line));
        } else {
            println!("{line}");
        }
        Ok(())
    }
}

/// The console line of an alert (an update of a folded alert says how many
/// times it was seen).
pub fn console_line(a: &Alert) -> String {
    let repeated = if a.count > 1 {
        format!(
            " [seen {} times over {:.1} s]",
            a.count,
            a.last_seen_ns.saturating_sub(a.first_seen_ns) as f64 / 1e9
        )
    } else {
        String::new()
    };
    format!(
        "ALERT [{:?}] {} {} on {}: score {:.3} > {:.3}{repeated} ({})",
        a.severity,
        a.module,
        a.entity,
        a.host,
        a.score,
        a.threshold,
        a.evidence.join("; ")
    )
}

/// A console line in its severity's colour (ANSI), for terminals.
pub fn coloured(severity: crate::messages::Severity, line: &str) -> String {
    use crate::messages::Severity::*;
    let code = match severity {
        Low => "36",        // cyan
        Medium => "33",     // yellow
        High => "31",       // red
        Critical => "1;31", // bold red
    };
    format!("\x1b[{code}m{line}\x1b[0m")
}
