//! Capture files (`daisi flows`, `daisi eval network`, replay): any bytes
//! as a pcap or pcapng file, read through libpcap, the packet parser and
//! the flow table (application metadata on). A corrupt file ends with a read error, never a panic;
//! the counts add up.
#![no_main]
use daisi::capture::libpcap::file_flows;
use daisi::flows::FlowLimits;
use libfuzzer_sys::fuzz_target;
use std::io::Write;

fuzz_target!(|data: &[u8]| {
    let mut f = tempfile::NamedTempFile::new().expect("a temporary file");
    f.write_all(data).expect("written");
    let limits = FlowLimits {
        idle_timeout_ns: 1_000_000_000,
        active_timeout_ns: 10_000_000_000,
        max_flows: 16,
        app: Some(daisi::flows::app::Budget::default()),
        // Ended flows only: each packet is in one record.
        report_open_ns: [0, 0],
    };
    let mut packets_in_flows = 0u64;
    let Ok(r) = file_flows(f.path(), limits, |flow| {
        packets_in_flows += flow.stats.packets();
        Ok::<(), ()>(())
    }) else {
        return; // not a capture file: refused when opened
    };
    let s = r.expect("the callback never fails");
    let skipped: u64 = s.skipped.values().sum();
    assert_eq!(
        packets_in_flows + s.absorbed_packets + skipped,
        s.packets,
        "every packet read is in a flow, absorbed or skipped: {s:?}"
    );
    assert!(s.peak_open <= 16);
});
