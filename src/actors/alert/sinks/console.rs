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
    let attack = crate::attack::label(a.threat.as_ref())
        .map(|l| format!(" [{l}]"))
        .unwrap_or_default();
    let line = format!(
        "ALERT [{:?}] {} {} on {}: {}{repeated}{attack}",
        a.severity, a.module, a.entity, a.host, a.summary
    );
    printable(&line)
}

/// The text with every control character escaped (`\u{1b}`, `\n`...):
/// alert fields carry names, paths and arguments that monitored processes
/// control, and a terminal must never interpret them.
pub fn printable(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
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

#[cfg(test)]
mod tests {
    #[test]
    fn control_characters_are_escaped() {
        let mut a = crate::messages::sample_alert();
        a.summary = "process \x1b[2J\x1b]0;pwned\x07evil\nALERT fake".into();
        let line = super::console_line(&a);
        assert!(!line.chars().any(char::is_control), "{line:?}");
        assert!(
            line.contains("\\u{1b}[2J") && line.contains("\\n"),
            "{line}"
        );
    }
}
