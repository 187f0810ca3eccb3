//! Flow payloads: any bytes a monitored host sends or receives, through the
//! application metadata parsers (HTTP, TLS, SSH, DNS). Input: a flags byte
//! (bit 0 from the initiator, bit 1 UDP, bit 2 DNS port), then segments,
//! each a length byte and its bytes. Metadata strings stay within the
//! budget's bound.
#![no_main]
use daisi::flows::app::{AppState, Budget};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, mut rest)) = data.split_first() else {
        return;
    };
    let b = Budget {
        bytes: 1024,
        max_string: 64,
    };
    let mut s = AppState::default();
    let mut forward = flags & 1 == 1;
    while let Some((&len, tail)) = rest.split_first() {
        let seg = &tail[..(len as usize).min(tail.len())];
        rest = &tail[seg.len()..];
        s.segment(seg, forward, flags & 2 == 2, flags & 4 == 4, b);
        forward = !forward;
    }
    let m = s.meta;
    for v in [
        m.http.as_ref().and_then(|h| h.uri.as_ref()),
        m.http.as_ref().and_then(|h| h.user_agent.as_ref()),
        m.tls.as_ref().and_then(|t| t.server_name.as_ref()),
        m.dns.as_ref().and_then(|d| d.name.as_ref()),
        m.ssh.as_ref().and_then(|x| x.client.as_ref()),
    ]
    .into_iter()
    .flatten()
    {
        assert!(v.len() <= 64, "a string past the bound: {} bytes", v.len());
    }
    let _ = m.describe();
});
