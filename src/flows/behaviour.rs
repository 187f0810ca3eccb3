//! Per-source behaviour: what one address does across its flows, within a
//! sliding window, judged by explicit rules. Attacks whose single flows
//! look ordinary (many requests that all get 404, a scan of one port on
//! many hosts) show here.
//!
//! A flow still open (`end: open`, a snapshot the flow table sends at
//! set ages) counts like an ended one until its next snapshot or its final
//! record arrives and takes its place, so a flow is never counted twice.
//!
//! Each source keeps its flows of the last [`Rules::window_ns`] (at most
//! [`Rules::flows_per_source`], oldest dropped first); sources are an LRU
//! of [`Rules::max_sources`] (evictions counted). A pattern is raised once
//! per source and window. The rules and why each threshold:
//!
//! | pattern | raised when, within the window | why |
//! | --- | --- | --- |
//! | `port_scan` | ≥ `ports` distinct ports of one host, at least half of those flows failed (reset, or never answered) | a client talks to a few services of a host; a scan tries many and most are closed |
//! | `host_sweep` | ≥ `hosts` distinct hosts on one port, at least half failed | the same service looked for across a network |
//! | `web_probing` | ≥ `http_requests` HTTP requests, at least `http_errors` of the responses 4xx, ≥ `uris` distinct targets | browsing gets some 404s; guessing paths gets mostly 404s over many paths |
//! | `connection_flood` | ≥ `flood` flows to one host and port, at least half failed | a SYN flood or a hammering client; a busy client's connections are answered |
//! | `ssh_guessing` | ≥ `ssh_connections` SSH connections (banners seen) to one host | password guessing opens a connection per few tries; people and tools reuse one |
//! | `slow_connections` | ≥ `slow` connections to one host and port, each open ≥ `slow_seconds` at ≤ `slow_rate` bytes/s | a slow HTTP attack holds many connections open, sending or reading a trickle to tie up the server; a client's long connection moves data, and it keeps one or two |
//! | `login_guessing` | ≥ `logins` HTTP POST requests to one target | a form is posted once per login; guessing posts it once per password |
//! | `dns_tunnelling` | ≥ `dns_queries` queries whose names average ≥ `dns_length` characters and ≥ `dns_entropy` bits per character | data encoded into names is long and random; everyday names are short and wordy |

use crate::messages::{FlowEnd, FlowRecord};
use serde::Serialize;
use std::collections::{HashMap, HashSet, VecDeque};
use std::net::IpAddr;

/// The rules' thresholds (module documentation).
#[derive(Debug, Clone, PartialEq)]
pub struct Rules {
    pub window_ns: u64,
    pub max_sources: usize,
    pub flows_per_source: usize,
    pub ports: usize,
    pub hosts: usize,
    pub http_requests: u32,
    pub http_errors: f64,
    pub uris: usize,
    pub dns_queries: usize,
    pub dns_length: f64,
    pub dns_entropy: f64,
    pub flood: usize,
    pub ssh_connections: usize,
    pub slow: usize,
    pub slow_seconds: f64,
    pub slow_rate: f64,
    pub logins: u32,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            window_ns: 60_000_000_000,
            max_sources: 65_536,
            flows_per_source: 2048,
            ports: 20,
            hosts: 20,
            http_requests: 20,
            http_errors: 0.5,
            uris: 10,
            dns_queries: 30,
            dns_length: 30.0,
            dns_entropy: 3.5,
            flood: 100,
            ssh_connections: 10,
            slow: 10,
            slow_seconds: 10.0,
            slow_rate: 200.0,
            logins: 20,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Pattern {
    PortScan,
    HostSweep,
    WebProbing,
    DnsTunnelling,
    ConnectionFlood,
    SshGuessing,
    SlowConnections,
    LoginGuessing,
}

impl Pattern {
    pub fn name(self) -> &'static str {
        match self {
            Pattern::PortScan => "port_scan",
            Pattern::HostSweep => "host_sweep",
            Pattern::WebProbing => "web_probing",
            Pattern::DnsTunnelling => "dns_tunnelling",
            Pattern::ConnectionFlood => "connection_flood",
            Pattern::SshGuessing => "ssh_guessing",
            Pattern::SlowConnections => "slow_connections",
            Pattern::LoginGuessing => "login_guessing",
        }
    }
}

/// A pattern one source showed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub source: IpAddr,
    pub pattern: Pattern,
    /// The aggregate that crossed its threshold, and the threshold.
    pub value: f64,
    pub threshold: f64,
    /// Flows of the source in the window.
    pub flows: usize,
    /// When (the last flow's end, ns).
    pub at_ns: u64,
    pub summary: String,
}

/// What a source's window keeps of one flow.
#[derive(Debug, Clone)]
struct Seen {
    end_ns: u64,
    dst: IpAddr,
    port: u16,
    failed: bool,
    http_requests: u32,
    http_responses: u32,
    http_errors: u32,
    uri: Option<u64>,
    /// The target of a flow whose first request is a POST.
    post: Option<u64>,
    /// Open for (s), and bytes per second both ways.
    seconds: f64,
    rate: f64,
    /// DNS: name length and bits per character.
    dns: Option<(f64, f64)>,
    ssh: bool,
    /// The flow's identity (ports, destination, protocol, start) and
    /// whether this is a snapshot of it still open.
    id: u64,
    open: bool,
}

/// Shannon entropy of the name's characters, dots left out (bits per
/// character).
pub fn entropy(name: &str) -> f64 {
    let mut counts: HashMap<char, usize> = HashMap::new();
    let mut n = 0usize;
    for c in name.chars().filter(|&c| c != '.') {
        *counts.entry(c.to_ascii_lowercase()).or_default() += 1;
        n += 1;
    }
    if n == 0 {
        return 0.0;
    }
    counts
        .values()
        .map(|&k| {
            let p = k as f64 / n as f64;
            -p * p.log2()
        })
        .sum()
}

impl Seen {
    fn of(f: &FlowRecord) -> Seen {
        let backward = f.features.get("bwdFlowLength").copied().unwrap_or(0.0);
        let app = f.app.as_ref();
        let http = app.and_then(|a| a.http.as_ref());
        let uri = http
            .and_then(|h| h.uri.as_deref())
            .map(|u| crate::fnv1a(u.bytes()));
        let seconds = f.last_ns.saturating_sub(f.first_ns) as f64 / 1e9;
        let bytes = f.features.get("packetSizeTotal").copied().unwrap_or(0.0);
        Seen {
            end_ns: f.last_ns,
            dst: f.dst.parse().unwrap_or(IpAddr::from([0, 0, 0, 0])),
            port: f.dst_port,
            failed: f.end == FlowEnd::Rst || backward == 0.0,
            http_requests: http.map_or(0, |h| h.requests),
            http_responses: http.map_or(0, |h| h.responses),
            http_errors: http.map_or(0, |h| h.client_errors),
            uri,
            post: uri.filter(|_| http.is_some_and(|h| h.method.as_deref() == Some("POST"))),
            seconds,
            rate: if seconds > 0.0 {
                bytes / seconds
            } else {
                bytes
            },
            dns: app
                .and_then(|a| a.dns.as_ref())
                .and_then(|d| d.name.as_deref())
                .map(|n| (n.len() as f64, entropy(n))),
            ssh: app.is_some_and(|a| a.ssh.is_some()),
            id: crate::fnv1a(
                [
                    &f.src_port.to_le_bytes()[..],
                    f.dst.as_bytes(),
                    &f.dst_port.to_le_bytes(),
                    &[f.proto],
                    &f.first_ns.to_le_bytes(),
                ]
                .concat(),
            ),
            open: f.end == FlowEnd::Open,
        }
    }
}

#[derive(Default)]
struct Source {
    flows: VecDeque<Seen>,
    /// When each pattern was last raised.
    raised: HashMap<Pattern, u64>,
    /// Snapshots of open flows among `flows`.
    open: usize,
}

/// Every source's window.
pub struct Sources {
    rules: Rules,
    sources: lru::LruCache<IpAddr, Source>,
    /// Sources forgotten because the table was full.
    pub evicted: u64,
}

impl Sources {
    pub fn new(rules: Rules) -> Sources {
        Sources {
            // Grown as sources come (a host's table is not allocated
            // whole), bounded by `max_sources`.
            sources: lru::LruCache::unbounded(),
            rules,
            evicted: 0,
        }
    }

    /// A finished flow of its source (the initiator); the patterns it
    /// completes.
    pub fn observe(&mut self, f: &FlowRecord) -> Vec<Finding> {
        let Ok(src) = f.src.parse::<IpAddr>() else {
            return Vec::new();
        };
        let seen = Seen::of(f);
        let now = seen.end_ns;
        if !self.sources.contains(&src) && self.sources.len() >= self.rules.max_sources.max(1) {
            self.sources.pop_lru();
            self.evicted += 1;
        }
        let r = &self.rules;
        let s = self.sources.get_or_insert_mut(src, Source::default);
        // A flow's later record takes the place of its snapshot.
        if s.open > 0 {
            if let Some(i) = s.flows.iter().position(|x| x.open && x.id == seen.id) {
                s.flows.remove(i);
                s.open -= 1;
            }
        }
        s.open += usize::from(seen.open);
        s.flows.push_back(seen);
        while s
            .flows
            .front()
            .is_some_and(|x| x.end_ns.saturating_add(r.window_ns) < now)
            || s.flows.len() > r.flows_per_source
        {
            if s.flows.pop_front().is_some_and(|x| x.open) {
                s.open -= 1;
            }
        }
        let mut out = Vec::new();
        for (pattern, value, threshold, what) in judge(&s.flows, r) {
            if s.raised
                .get(&pattern)
                .is_some_and(|&at| at.saturating_add(r.window_ns) >= now)
            {
                continue;
            }
            s.raised.insert(pattern, now);
            out.push(Finding {
                source: src,
                pattern,
                value,
                threshold,
                flows: s.flows.len(),
                at_ns: now,
                summary: format!(
                    "{src}: {} ({what}; {} flows in {} s)",
                    pattern.name(),
                    s.flows.len(),
                    r.window_ns / 1_000_000_000
                ),
            });
        }
        out
    }
}

/// Distinct values (ports of a host, hosts on a port) and how many of
/// their flows failed.
struct Spread<T> {
    distinct: HashSet<T>,
    flows: usize,
    failed: usize,
}

impl<T> Default for Spread<T> {
    fn default() -> Self {
        Spread {
            distinct: HashSet::new(),
            flows: 0,
            failed: 0,
        }
    }
}

impl<T: std::hash::Hash + Eq> Spread<T> {
    fn add(&mut self, value: T, failed: bool) {
        self.distinct.insert(value);
        self.flows += 1;
        self.failed += usize::from(failed);
    }
}

/// The entry with the most distinct values among those whose flows mostly
/// failed.
fn widest<K, T>(spreads: &HashMap<K, Spread<T>>) -> Option<(&K, &Spread<T>)> {
    spreads
        .iter()
        .filter(|(_, s)| s.failed * 2 >= s.flows)
        .max_by_key(|(_, s)| s.distinct.len())
}

/// The patterns a window shows: (pattern, value, threshold, what).
fn judge(flows: &VecDeque<Seen>, r: &Rules) -> Vec<(Pattern, f64, f64, String)> {
    let mut out = Vec::new();
    // Ports per host, hosts per port, and how many of those flows failed.
    let mut ports: HashMap<IpAddr, Spread<u16>> = HashMap::new();
    let mut hosts: HashMap<u16, Spread<IpAddr>> = HashMap::new();
    let (mut requests, mut responses, mut errors) = (0u32, 0u32, 0u32);
    let mut uris = HashSet::new();
    let (mut dns, mut dns_len, mut dns_bits) = (0usize, 0.0, 0.0);
    // Flows (and failed ones) per service; SSH connections per host.
    let mut services: HashMap<(IpAddr, u16), (usize, usize)> = HashMap::new();
    let mut ssh: HashMap<IpAddr, usize> = HashMap::new();
    // Slow connections per service; POST requests per target.
    let mut slow: HashMap<(IpAddr, u16), usize> = HashMap::new();
    let mut posts: HashMap<u64, u32> = HashMap::new();
    for f in flows {
        if f.seconds >= r.slow_seconds && f.rate <= r.slow_rate {
            *slow.entry((f.dst, f.port)).or_default() += 1;
        }
        if let Some(target) = f.post {
            *posts.entry(target).or_default() += f.http_requests.max(1);
        }
        let sv = services.entry((f.dst, f.port)).or_default();
        sv.0 += 1;
        sv.1 += usize::from(f.failed);
        if f.ssh {
            *ssh.entry(f.dst).or_default() += 1;
        }
        ports.entry(f.dst).or_default().add(f.port, f.failed);
        hosts.entry(f.port).or_default().add(f.dst, f.failed);
        requests += f.http_requests;
        responses += f.http_responses;
        errors += f.http_errors;
        uris.extend(f.uri);
        if let Some((len, bits)) = f.dns {
            dns += 1;
            dns_len += len;
            dns_bits += bits;
        }
    }
    let mostly_failed = |n: usize, failed: usize| failed * 2 >= n;
    if let Some((host, s)) = widest(&ports).filter(|(_, s)| s.distinct.len() >= r.ports) {
        out.push((
            Pattern::PortScan,
            s.distinct.len() as f64,
            r.ports as f64,
            format!(
                "{} ports of {host}, {} of {} flows failed",
                s.distinct.len(),
                s.failed,
                s.flows
            ),
        ));
    }
    if let Some((port, s)) = widest(&hosts).filter(|(_, s)| s.distinct.len() >= r.hosts) {
        out.push((
            Pattern::HostSweep,
            s.distinct.len() as f64,
            r.hosts as f64,
            format!(
                "{} hosts on port {port}, {} of {} flows failed",
                s.distinct.len(),
                s.failed,
                s.flows
            ),
        ));
    }
    if let Some(((host, port), (n, failed))) = services
        .iter()
        .filter(|(_, (n, f))| mostly_failed(*n, *f))
        .max_by_key(|(_, (n, _))| *n)
    {
        if *n >= r.flood {
            out.push((
                Pattern::ConnectionFlood,
                *n as f64,
                r.flood as f64,
                format!("{n} flows to {host}:{port}, {failed} failed"),
            ));
        }
    }
    if let Some((host, n)) = ssh.iter().max_by_key(|(_, n)| **n) {
        if *n >= r.ssh_connections {
            out.push((
                Pattern::SshGuessing,
                *n as f64,
                r.ssh_connections as f64,
                format!("{n} SSH connections to {host}"),
            ));
        }
    }
    if let Some(((host, port), n)) = slow.iter().max_by_key(|(_, n)| **n) {
        if *n >= r.slow {
            out.push((
                Pattern::SlowConnections,
                *n as f64,
                r.slow as f64,
                format!(
                    "{n} connections to {host}:{port} open ≥ {} s at ≤ {} bytes/s",
                    r.slow_seconds, r.slow_rate
                ),
            ));
        }
    }
    if let Some(n) = posts.values().max() {
        if *n >= r.logins {
            out.push((
                Pattern::LoginGuessing,
                f64::from(*n),
                f64::from(r.logins),
                format!("{n} HTTP POST requests to one target"),
            ));
        }
    }
    if requests >= r.http_requests && responses > 0 {
        let share = f64::from(errors) / f64::from(responses);
        if share >= r.http_errors && uris.len() >= r.uris {
            out.push((
                Pattern::WebProbing,
                share,
                r.http_errors,
                format!(
                    "{requests} HTTP requests for {} distinct targets, {errors} of {responses} answers 4xx",
                    uris.len()
                ),
            ));
        }
    }
    if dns >= r.dns_queries {
        let (len, bits) = (dns_len / dns as f64, dns_bits / dns as f64);
        if len >= r.dns_length && bits >= r.dns_entropy {
            out.push((
                Pattern::DnsTunnelling,
                bits,
                r.dns_entropy,
                format!("{dns} DNS names of {len:.0} characters and {bits:.2} bits per character on average"),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::{AppMeta, DnsMeta, HttpMeta};

    fn flow(src: &str, dst: &str, port: u16, end_s: u64, answered: bool) -> FlowRecord {
        FlowRecord {
            src: src.into(),
            dst: dst.into(),
            src_port: 40000,
            dst_port: port,
            proto: 6,
            first_ns: end_s * 1_000_000_000,
            last_ns: end_s * 1_000_000_000,
            features: [(
                "bwdFlowLength".to_string(),
                if answered { 3.0 } else { 0.0 },
            )]
            .into(),
            end: if answered { FlowEnd::Fin } else { FlowEnd::Rst },
            pid: None,
            exe: None,
            app: None,
        }
    }

    #[test]
    fn a_scan_is_raised_once_and_a_busy_client_is_not() {
        let mut s = Sources::new(Rules::default());
        let mut found = Vec::new();
        for port in 1..=40 {
            found.extend(s.observe(&flow("10.0.0.66", "10.0.0.10", port, 1, port == 22)));
        }
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].pattern, Pattern::PortScan);
        assert_eq!(found[0].value, 20.0, "raised as the threshold is crossed");
        // A client making many answered connections to a few services.
        for i in 0..200 {
            let port = [80, 443, 53][i % 3];
            assert!(s
                .observe(&flow(
                    "10.0.0.5",
                    "10.0.0.10",
                    port,
                    1 + i as u64 / 10,
                    true
                ))
                .is_empty());
        }
        // Many hosts on one port, unanswered: a sweep.
        let mut sweep = Vec::new();
        for h in 1..=30 {
            sweep.extend(s.observe(&flow("10.0.0.67", &format!("10.0.1.{h}"), 445, 2, false)));
        }
        assert_eq!(
            sweep.iter().map(|f| f.pattern).collect::<Vec<_>>(),
            [Pattern::HostSweep]
        );
    }

    #[test]
    fn the_window_forgets_and_sources_are_bounded() {
        let rules = Rules {
            max_sources: 2,
            ..Default::default()
        };
        let mut s = Sources::new(rules);
        // 15 ports now and 15 two minutes later: never 20 in one window.
        for port in 1..=15 {
            assert!(s
                .observe(&flow("10.0.0.66", "10.0.0.10", port, 0, false))
                .is_empty());
        }
        for port in 16..=30 {
            assert!(s
                .observe(&flow("10.0.0.66", "10.0.0.10", port, 120, false))
                .is_empty());
        }
        s.observe(&flow("10.0.0.1", "10.0.0.10", 1, 121, true));
        s.observe(&flow("10.0.0.2", "10.0.0.10", 1, 121, true));
        assert_eq!(s.evicted, 1);
    }

    #[test]
    fn a_flood_and_ssh_guessing_are_raised_and_a_busy_service_is_not() {
        let mut s = Sources::new(Rules::default());
        let mut found = Vec::new();
        for i in 0..150 {
            found.extend(s.observe(&flow("10.0.0.66", "10.0.0.10", 80, i / 10, false)));
        }
        assert_eq!(
            found.iter().map(|f| f.pattern).collect::<Vec<_>>(),
            [Pattern::ConnectionFlood]
        );
        for i in 0..300 {
            assert!(s
                .observe(&flow("10.0.0.5", "10.0.0.10", 443, i / 10, true))
                .is_empty());
        }
        let ssh = |t| FlowRecord {
            app: Some(AppMeta {
                ssh: Some(crate::messages::SshMeta {
                    client: Some("SSH-2.0-libssh".into()),
                    server: Some("SSH-2.0-OpenSSH_9.2".into()),
                }),
                ..Default::default()
            }),
            ..flow("10.0.0.67", "10.0.0.10", 22, t, true)
        };
        let found: Vec<_> = (0..12).flat_map(|i| s.observe(&ssh(i))).collect();
        assert_eq!(
            found.iter().map(|f| f.pattern).collect::<Vec<_>>(),
            [Pattern::SshGuessing]
        );
        assert_eq!(found[0].value, 10.0);
    }

    /// Slow connections still open are raised from their snapshots; each
    /// later snapshot, then the final record, takes the earlier one's
    /// place (each flow counted once).
    #[test]
    fn open_slow_connections_are_raised_before_they_end_and_counted_once() {
        let conn = |port: u16, end: u64, open: bool| FlowRecord {
            src_port: port,
            first_ns: 1_000_000_000,
            features: [
                ("bwdFlowLength".to_string(), 0.0),
                ("packetSizeTotal".to_string(), 300.0),
            ]
            .into(),
            end: if open { FlowEnd::Open } else { FlowEnd::Fin },
            ..flow("10.0.0.66", "10.0.0.10", 80, end, true)
        };
        let mut s = Sources::new(Rules::default());
        // Young: not slow yet.
        for i in 0..10 {
            assert!(s.observe(&conn(41000 + i, 2, true)).is_empty());
        }
        let found: Vec<_> = (0..10)
            .flat_map(|i| s.observe(&conn(41000 + i, 13, true)))
            .collect();
        assert_eq!(
            found.iter().map(|f| f.pattern).collect::<Vec<_>>(),
            [Pattern::SlowConnections],
            "raised while they are open"
        );
        let ip: IpAddr = "10.0.0.66".parse().unwrap();
        for i in 0..10 {
            assert!(s.observe(&conn(41000 + i, 40, false)).is_empty());
        }
        let src = s.sources.peek(&ip).unwrap();
        assert_eq!((src.flows.len(), src.open), (10, 0), "each flow once");
        assert!(src.flows.iter().all(|f| f.seconds == 39.0));
    }

    fn web(src: &str, uri: &str, status: u16, t: u64) -> FlowRecord {
        FlowRecord {
            app: Some(AppMeta {
                http: Some(HttpMeta {
                    method: Some("GET".into()),
                    uri: Some(uri.into()),
                    status: Some(status),
                    requests: 1,
                    responses: 1,
                    client_errors: u32::from((400..500).contains(&status)),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..flow(src, "10.0.0.10", 80, t, true)
        }
    }

    #[test]
    fn guessing_paths_is_web_probing_and_browsing_is_not() {
        let mut s = Sources::new(Rules::default());
        let mut found = Vec::new();
        for i in 0..30 {
            found.extend(s.observe(&web("10.0.0.66", &format!("/admin{i}.php"), 404, 1)));
        }
        assert_eq!(
            found.iter().map(|f| f.pattern).collect::<Vec<_>>(),
            [Pattern::WebProbing]
        );
        // A reader: many pages, a few missing.
        for i in 0..60 {
            let status = if i % 10 == 0 { 404 } else { 200 };
            assert!(s
                .observe(&web("10.0.0.5", &format!("/page/{i}"), status, 1))
                .is_empty());
        }
    }

    #[test]
    fn held_open_trickles_are_slow_connections_and_a_download_is_not() {
        // A flow open from `start` to `end` (s) moving `bytes`.
        let open = |src: &str, start: u64, end: u64, bytes: f64| FlowRecord {
            first_ns: start * 1_000_000_000,
            features: [
                ("bwdFlowLength".to_string(), 3.0),
                ("packetSizeTotal".to_string(), bytes),
            ]
            .into(),
            ..flow(src, "10.0.0.10", 80, end, true)
        };
        let mut s = Sources::new(Rules::default());
        // Long downloads and a kept-alive idle connection: not slow enough,
        // or too few.
        for i in 0..20 {
            assert!(s.observe(&open("10.0.0.5", i, i + 12, 5e6)).is_empty());
        }
        for i in 0..9 {
            assert!(s.observe(&open("10.0.0.6", i, i + 30, 600.0)).is_empty());
        }
        let found: Vec<_> = (0..12)
            .flat_map(|i| s.observe(&open("10.0.0.66", 1, 25 + i, 1500.0)))
            .collect();
        assert_eq!(
            found.iter().map(|f| f.pattern).collect::<Vec<_>>(),
            [Pattern::SlowConnections]
        );
        assert_eq!(found[0].value, 10.0);
    }

    #[test]
    fn posting_a_form_per_password_is_login_guessing() {
        let post = |src: &str, t: u64| FlowRecord {
            app: Some(AppMeta {
                http: Some(HttpMeta {
                    method: Some("POST".into()),
                    uri: Some("/login".into()),
                    status: Some(200),
                    requests: 1,
                    responses: 1,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..flow(src, "10.0.0.10", 80, t, true)
        };
        let mut s = Sources::new(Rules::default());
        // A person logging in now and then.
        for t in 0..5 {
            assert!(s.observe(&post("10.0.0.5", t * 20)).is_empty());
        }
        let found: Vec<_> = (0..30)
            .flat_map(|_| s.observe(&post("10.0.0.66", 1)))
            .collect();
        assert_eq!(
            found.iter().map(|f| f.pattern).collect::<Vec<_>>(),
            [Pattern::LoginGuessing]
        );
    }

    #[test]
    fn long_random_names_are_tunnelling_and_everyday_names_are_not() {
        let dns = |src: &str, name: &str| FlowRecord {
            app: Some(AppMeta {
                dns: Some(DnsMeta {
                    name: Some(name.into()),
                    queries: 1,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            proto: 17,
            ..flow(src, "10.0.0.53", 53, 1, true)
        };
        let mut s = Sources::new(Rules::default());
        let mut found = Vec::new();
        let mut x = 7u64;
        for _ in 0..40 {
            let label: String = (0..40)
                .map(|_| {
                    x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                    let c = (x >> 33) % 36;
                    char::from_digit(c as u32, 36).unwrap()
                })
                .collect();
            found.extend(s.observe(&dns("10.0.0.66", &format!("{label}.t.example"))));
        }
        assert_eq!(
            found.iter().map(|f| f.pattern).collect::<Vec<_>>(),
            [Pattern::DnsTunnelling]
        );
        for name in [
            "www.debian.org",
            "deb.debian.org",
            "api.github.com",
            "mail.example.com",
        ]
        .iter()
        .cycle()
        .take(100)
        {
            assert!(s.observe(&dns("10.0.0.5", name)).is_empty());
        }
        assert!(entropy("aaaa") < 0.01 && entropy("abcd") == 2.0);
    }
}
