#!/usr/bin/env python3
"""The flows NFStream finds in a capture file, as CSV (a peer for tests and
benchmarks; run with the NFStream environment scripts/setup.sh creates).

    nfstream_flows.py PCAP OUT.csv [--idle 30] [--active 1800]

Prints `packets flows seconds` on standard output."""
import argparse
import csv
import time

import nfstream

ap = argparse.ArgumentParser()
ap.add_argument("pcap")
ap.add_argument("out")
ap.add_argument("--idle", type=int, default=30)
ap.add_argument("--active", type=int, default=1800)
a = ap.parse_args()

t0 = time.perf_counter()
streamer = nfstream.NFStreamer(
    source=a.pcap,
    idle_timeout=a.idle,
    active_timeout=a.active,
    statistical_analysis=False,
    n_dissections=0,
    accounting_mode=0,  # bytes as frames on the link, like daisi and FlowMeter
)
packets = flows = 0
with open(a.out, "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["srcIP", "srcPort", "dstIP", "dstPort", "protocol", "packets", "bytes"])
    for fl in streamer:
        flows += 1
        packets += fl.bidirectional_packets
        w.writerow([fl.src_ip, fl.src_port, fl.dst_ip, fl.dst_port, fl.protocol,
                    fl.bidirectional_packets, fl.bidirectional_bytes])
print(packets, flows, f"{time.perf_counter() - t0:.3f}")
