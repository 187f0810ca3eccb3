//! Trace files and recordings (ADFA-LD style text, `daisi record`'s
//! output): any text. Every token is a call or counted as bad.
#![no_main]
use daisi::traces::Trace;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let t = Trace::parse("fuzz", &text);
    let tokens = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .flat_map(str::split_ascii_whitespace)
        .count();
    assert_eq!(t.calls.len() + t.bad_tokens, tokens);
    let _ = t.family();
});
