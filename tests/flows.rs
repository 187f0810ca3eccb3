//! `daisi flows` on pcap files written here with known packets.

use daisi::commands::flows::{flows, FlowsArgs};
use etherparse::PacketBuilder;
use std::path::Path;
use std::time::Duration;

fn args(pcap: &Path, csv: Option<&Path>) -> FlowsArgs {
    FlowsArgs {
        pcap: pcap.to_path_buf(),
        csv: csv.map(Path::to_path_buf),
        idle_timeout: Duration::from_secs(120),
        active_timeout: Duration::from_secs(1800),
        max_flows: 1000,
        app_bytes: 4096,
    }
}

/// Writes frames (ns timestamp, bytes) as a nanosecond pcap of `linktype`.
fn write_pcap(path: &Path, linktype: i32, frames: &[(u64, Vec<u8>)]) {
    let cap = pcap::Capture::dead_with_precision(pcap::Linktype(linktype), pcap::Precision::Nano)
        .unwrap();
    let mut out = cap.savefile(path).unwrap();
    for (ts, data) in frames {
        let header = pcap::PacketHeader {
            ts: libc::timeval {
                tv_sec: (ts / 1_000_000_000) as libc::time_t,
                tv_usec: (ts % 1_000_000_000) as libc::suseconds_t,
            },
            caplen: data.len() as u32,
            len: data.len() as u32,
        };
        out.write(&pcap::Packet::new(&header, data));
    }
    out.flush().unwrap();
}

fn tcp(from_client: bool, fin: bool, payload: usize) -> Vec<u8> {
    let (a, b, pa, pb) = if from_client {
        ([10, 0, 0, 1], [10, 0, 0, 2], 40000, 80)
    } else {
        ([10, 0, 0, 2], [10, 0, 0, 1], 80, 40000)
    };
    let mut builder = PacketBuilder::ethernet2([1; 6], [2; 6])
        .ipv4(a, b, 64)
        .tcp(pa, pb, 1, 1000)
        .ack(1);
    if fin {
        builder = builder.fin();
    }
    let mut buf = Vec::new();
    builder.write(&mut buf, &vec![0u8; payload]).unwrap();
    buf
}

fn udp() -> Vec<u8> {
    let mut buf = Vec::new();
    PacketBuilder::ethernet2([1; 6], [2; 6])
        .ipv4([10, 0, 0, 3], [10, 0, 0, 4], 64)
        .udp(5353, 53)
        .write(&mut buf, &[0u8; 20])
        .unwrap();
    buf
}

fn arp() -> Vec<u8> {
    let mut f = vec![0xffu8; 6];
    f.extend([2u8; 6]);
    f.extend([0x08, 0x06]);
    f.extend([0u8; 28]);
    f
}

fn fragment() -> Vec<u8> {
    let mut f = udp();
    f[14 + 6] |= 0x20; // IPv4 "more fragments"
    f
}

fn frames() -> Vec<(u64, Vec<u8>)> {
    vec![
        (0, tcp(true, false, 10)),
        (1_000, tcp(false, false, 0)),
        (2_000, arp()),
        (2_500, fragment()),
        (3_000, tcp(true, true, 0)),
        (4_000, udp()),
        (6_000, tcp(false, true, 30)),
    ]
}

#[test]
fn known_packets_give_known_flows() {
    let dir = tempfile::tempdir().unwrap();
    let (pcap_path, csv_path) = (dir.path().join("t.pcap"), dir.path().join("t.csv"));
    write_pcap(&pcap_path, 1, &frames());
    let s = flows(&args(&pcap_path, Some(&csv_path))).unwrap();
    assert_eq!(s.packets, 7);
    assert_eq!(s.flows, 2);
    assert_eq!(s.skipped.get("not_ip"), Some(&1));
    assert_eq!(s.skipped.get("fragment"), Some(&1));
    assert_eq!(s.read_error, None);

    let mut rdr = csv::Reader::from_path(&csv_path).unwrap();
    let headers = rdr.headers().unwrap().clone();
    assert_eq!(&headers[0], "fiveTuple");
    assert_eq!(&headers[6], "flowDuration", "FlowMeter's columns first");
    let rows: Vec<csv::StringRecord> = rdr.records().map(Result::unwrap).collect();
    let get = |r: &csv::StringRecord, k: &str| -> String {
        r[headers.iter().position(|h| h == k).unwrap()].to_string()
    };
    let tcp_row = rows.iter().find(|r| get(r, "protocol") == "TCP").unwrap();
    // Frame sizes: 14 (Ethernet) + 20 (IPv4) + 20 (TCP) + payload.
    let (c1, s1, c2, s2) = (64.0, 54.0, 54.0, 84.0);
    let num = |k: &str| get(tcp_row, k).parse::<f64>().unwrap();
    assert_eq!(get(tcp_row, "srcIP"), "10.0.0.1");
    assert_eq!(
        get(tcp_row, "srcPort"),
        "40000",
        "direction of the first packet"
    );
    assert_eq!(get(tcp_row, "endReason"), "fin");
    assert_eq!(num("flowDuration"), 6000.0);
    assert_eq!(num("flowLength"), 4.0);
    assert_eq!(num("packetSizeTotal"), c1 + s1 + c2 + s2);
    assert_eq!(num("fwdPacketSizeMean"), (c1 + c2) / 2.0);
    assert_eq!(num("bwdPacketSizeMax"), s2);
    assert_eq!(num("fwdIATTotal"), 3000.0);
    assert_eq!(num("bwdIATTotal"), 5000.0);
    assert_eq!(num("IATMean"), 4000.0);
    let udp_row = rows.iter().find(|r| get(r, "protocol") == "UDP").unwrap();
    assert_eq!(get(udp_row, "endReason"), "end_of_input");
}

#[test]
fn truncated_empty_and_unknown_files_are_reported_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("t.pcap");
    write_pcap(&p, 1, &frames());
    // Cut the last packet in half: the earlier flows are still reported.
    let bytes = std::fs::read(&p).unwrap();
    std::fs::write(&p, &bytes[..bytes.len() - 40]).unwrap();
    let s = flows(&args(&p, None)).unwrap();
    assert!(s.read_error.is_some(), "{s:?}");
    assert_eq!(s.packets, 6);
    assert_eq!(s.flows, 2, "the open flows are flushed");

    let empty = dir.path().join("empty.pcap");
    std::fs::write(&empty, b"").unwrap();
    let e = flows(&args(&empty, None)).unwrap_err();
    assert!(format!("{e:#}").contains("cannot read"), "{e:#}");

    let other = dir.path().join("user0.pcap");
    write_pcap(&other, 147, &[(0, vec![1, 2, 3])]);
    let e = flows(&args(&other, None)).unwrap_err();
    assert!(
        format!("{e:#}").contains("unsupported link type 147"),
        "{e:#}"
    );

    let garbage = dir.path().join("garbage.pcap");
    std::fs::write(&garbage, vec![0x42u8; 4096]).unwrap();
    assert!(flows(&args(&garbage, None)).is_err());
}

#[test]
fn raw_ip_captures_parse() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("raw.pcap");
    // Raw IP (DLT_RAW, 12 on Linux; LINKTYPE_RAW in the file): no Ethernet header.
    let raw: Vec<(u64, Vec<u8>)> = frames()
        .into_iter()
        .filter(|(_, f)| f[12..14] == [0x08, 0x00])
        .map(|(t, f)| (t, f[14..].to_vec()))
        .collect();
    write_pcap(&p, 12, &raw);
    let s = flows(&args(&p, None)).unwrap();
    assert_eq!((s.packets, s.flows), (6, 2));
    assert_eq!(s.skipped.get("fragment"), Some(&1));
}

/// Seeds for the `packets` and `capture_file` fuzz targets: this file's
/// frames as the `packets` target reads them (a link byte, then per frame
/// a length byte, a time step byte and the frame) and as pcap files.
#[test]
fn fuzz_seeds_are_current() {
    let mut framed = vec![0u8]; // Ethernet
    for (_, f) in frames() {
        framed.push(u8::try_from(f.len()).expect("small frames"));
        framed.push(1);
        framed.extend(&f);
    }
    daisi::fuzz_seeds::check("packets", "ethernet", &framed);
    let dir = tempfile::tempdir().unwrap();
    for (name, linktype) in [("ethernet.pcap", 1), ("raw.pcap", 12)] {
        let p = dir.path().join(name);
        let frames: Vec<(u64, Vec<u8>)> = if linktype == 1 {
            frames()
        } else {
            frames()
                .into_iter()
                .map(|(t, f)| (t, f[14..].to_vec()))
                .collect()
        };
        write_pcap(&p, linktype, &frames);
        daisi::fuzz_seeds::check("capture_file", name, &std::fs::read(&p).unwrap());
    }
}
