//! Captured frames: any bytes on the wire, through the packet parser and
//! the flow table (with application metadata, timeouts and reports of
//! open flows). Every packet parsed goes to exactly one ended flow or is
//! absorbed by a closed one; the table never holds more than its limit.
#![no_main]
use daisi::capture::packets::{parse_with_payload, LinkKind};
use daisi::flows::{FlowLimits, FlowTable};
use libfuzzer_sys::fuzz_target;

const MAX_FLOWS: usize = 8;

fuzz_target!(|data: &[u8]| {
    let Some((&first, mut rest)) = data.split_first() else {
        return;
    };
    let link = match first % 4 {
        0 => LinkKind::Ethernet,
        1 => LinkKind::LinuxSll,
        2 => LinkKind::LinuxSll2,
        _ => LinkKind::RawIp,
    };
    let mut table = FlowTable::new(FlowLimits {
        idle_timeout_ns: 1_000_000,
        active_timeout_ns: 5_000_000,
        max_flows: MAX_FLOWS,
        app: Some(daisi::flows::app::Budget {
            bytes: 512,
            max_string: 64,
        }),
        report_open_ns: [300_000, 2_000_000],
    });
    let (mut parsed, mut done) = (0u64, Vec::new());
    let mut ts = 0u64;
    // Frames: a length byte, a time step byte, then the frame.
    while rest.len() >= 2 {
        let (len, step) = (rest[0] as usize, rest[1] as u64);
        rest = &rest[2..];
        let frame = &rest[..len.min(rest.len())];
        rest = &rest[frame.len()..];
        ts += step * 100_000;
        if let Ok((p, payload)) = parse_with_payload(link, frame, ts, frame.len() as u32 + 4) {
            parsed += 1;
            table.packet_with_payload(p, payload, &mut done);
            table.expire(ts, &mut done);
            assert!(
                table.len() <= MAX_FLOWS,
                "the table holds at most its limit"
            );
        }
    }
    table.flush(&mut done);
    // Reports of open flows are snapshots: their packets come again when
    // the flow ends.
    let in_flows: u64 = done
        .iter()
        .filter(|f| f.end != daisi::flows::EndReason::Open)
        .map(|f| f.stats.packets())
        .sum();
    assert_eq!(
        in_flows + table.absorbed,
        parsed,
        "every packet counted once"
    );
    assert!(table.is_empty());
});
