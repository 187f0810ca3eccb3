//! Log lines: any bytes a monitored program writes to a log, as one line
//! (lossy UTF-8, as a log source reads it) through `logs::parse`: the
//! syslog, access-log, JSON, sudo's and dpkg's log-file and auth-message
//! parsers. Every kept field within its bound.
#![no_main]
use daisi::logs::parse::{parse, MAX_FIELD};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let line = String::from_utf8_lossy(data);
    let e = parse(&line, 2026);
    let http = e.http.as_ref();
    for v in [
        Some(&e.message),
        e.hostname.as_ref(),
        e.program.as_ref(),
        e.user.as_ref(),
        e.target_user.as_ref(),
        e.command.as_ref(),
        http.map(|h| &h.url),
        http.map(|h| &h.method),
        http.and_then(|h| h.user_agent.as_ref()),
        http.and_then(|h| h.referrer.as_ref()),
    ]
    .into_iter()
    .flatten()
    {
        assert!(v.len() <= MAX_FIELD, "a field past the bound: {} bytes", v.len());
    }
});
