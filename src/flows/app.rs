//! Application metadata from the first bytes of a flow: what Zeek's logs
//! would say of it, from the payloads of its first packets, without
//! reassembly.
//!
//! Each payload segment is looked at from its start, up to a budget of
//! bytes per flow ([`Budget`]); a flow whose payload goes on past it is
//! marked `cut` (counted by the flow table). Parsing is the crates':
//! `httparse` (HTTP/1 requests and responses), `tls-parser` (the TLS
//! ClientHello, its extensions), `simple-dns` (DNS messages); an SSH
//! identification line is one line of text. A segment none of them
//! recognizes costs one look at its first bytes.
//!
//! - HTTP: a segment starting with a request line (each keep-alive request
//!   starts a segment of its own in practice) counts a request, the first
//!   gives method, target, Host and User-Agent; one starting `HTTP/` counts
//!   a response (4xx counted apart), the first gives the status.
//! - TLS: a handshake record holding a ClientHello gives the server name,
//!   the highest version offered and the JA3 fingerprint (MD5 of
//!   `version,ciphers,extensions,groups,point formats`, GREASE values left
//!   out, as JA3 defines it).
//! - SSH: `SSH-2.0-...` from the flow's initiator is the client's, from the
//!   other side the server's (at most 255 bytes, as RFC 4253 bounds it).
//! - DNS (UDP, port 53 either side): a query counts and gives the first
//!   question's name and type; a response counts and gives its code.

use crate::messages::{AppMeta, DnsMeta, HttpMeta, SshMeta, TlsMeta};

/// Payload bytes looked at per flow, all segments together, and the
/// longest string kept.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Budget {
    pub bytes: usize,
    pub max_string: usize,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            bytes: 4096,
            max_string: 256,
        }
    }
}

/// A flow's metadata so far, and the bytes it may still look at.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AppState {
    pub meta: AppMeta,
    looked: usize,
}

const METHODS: [&[u8]; 9] = [
    b"GET ",
    b"POST ",
    b"HEAD ",
    b"PUT ",
    b"DELETE ",
    b"OPTIONS ",
    b"PATCH ",
    b"CONNECT ",
    b"TRACE ",
];

/// A string from the network: invalid UTF-8 replaced, cut at `max` bytes
/// (on a character boundary).
fn text(bytes: &[u8], max: usize) -> String {
    let s = String::from_utf8_lossy(bytes);
    if s.len() <= max {
        return s.into_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

impl AppState {
    /// Looks at one segment's payload. `forward`: sent by the flow's
    /// initiator; `dns`: a UDP flow on port 53.
    pub fn segment(&mut self, payload: &[u8], forward: bool, udp: bool, dns: bool, b: Budget) {
        if payload.is_empty() {
            return;
        }
        if self.looked >= b.bytes {
            self.meta.cut = true;
            return;
        }
        let take = payload.len().min(b.bytes - self.looked);
        self.looked += take;
        let p = &payload[..take];
        if udp {
            if dns {
                self.dns(p, b);
            }
            return;
        }
        if p.starts_with(b"SSH-") {
            self.ssh(p, forward, b);
        } else if p.starts_with(b"HTTP/") {
            self.http_response(p);
        } else if METHODS.iter().any(|m| p.starts_with(m)) {
            self.http_request(p, b);
        } else if p.len() >= 6 && p[0] == 0x16 && p[1] == 0x03 && forward {
            self.tls(p, b);
        }
    }

    fn http_request(&mut self, p: &[u8], b: Budget) {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        if req.parse(p).is_err() {
            return;
        }
        let Some(method) = req.method else {
            return;
        };
        let http = self.meta.http.get_or_insert_with(HttpMeta::default);
        http.requests += 1;
        if http.method.is_some() {
            return;
        }
        http.method = Some(text(method.as_bytes(), b.max_string));
        http.uri = req.path.map(|u| text(u.as_bytes(), b.max_string));
        let header = |name: &str| {
            req.headers
                .iter()
                .take_while(|h| !h.name.is_empty())
                .find(|h| h.name.eq_ignore_ascii_case(name))
                .map(|h| text(h.value, b.max_string))
        };
        http.host = header("host");
        http.user_agent = header("user-agent");
    }

    fn http_response(&mut self, p: &[u8]) {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut resp = httparse::Response::new(&mut headers);
        if resp.parse(p).is_err() {
            return;
        }
        let Some(code) = resp.code else {
            return;
        };
        let http = self.meta.http.get_or_insert_with(HttpMeta::default);
        http.responses += 1;
        if (400..500).contains(&code) {
            http.client_errors += 1;
        }
        http.status.get_or_insert(code);
    }

    fn ssh(&mut self, p: &[u8], forward: bool, b: Budget) {
        let line = p.split(|&c| c == b'\n').next().unwrap_or(p);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let ssh = self.meta.ssh.get_or_insert_with(SshMeta::default);
        let side = if forward {
            &mut ssh.client
        } else {
            &mut ssh.server
        };
        side.get_or_insert_with(|| text(line, b.max_string.min(255)));
    }

    fn tls(&mut self, p: &[u8], b: Budget) {
        use tls_parser::{
            parse_tls_extensions, parse_tls_plaintext, TlsExtension, TlsExtensionType, TlsMessage,
            TlsMessageHandshake,
        };
        if self.meta.tls.is_some() {
            return;
        }
        let Ok((_, record)) = parse_tls_plaintext(p) else {
            return;
        };
        for m in &record.msg {
            let TlsMessage::Handshake(TlsMessageHandshake::ClientHello(hello)) = m else {
                continue;
            };
            let grease = |v: u16| v & 0x0f0f == 0x0a0a && v >> 8 == v & 0xff;
            let list = |v: &mut dyn Iterator<Item = u16>| {
                v.filter(|&x| !grease(x))
                    .map(|x| x.to_string())
                    .collect::<Vec<_>>()
                    .join("-")
            };
            let (mut exts, mut groups, mut formats) = (Vec::new(), String::new(), String::new());
            let (mut alpn, mut signatures) = (None, Vec::new());
            let mut server_name = None;
            let mut highest = hello.version.0;
            if let Some(Ok((_, parsed))) = hello.ext.map(parse_tls_extensions) {
                for e in &parsed {
                    exts.push(TlsExtensionType::from(e).0);
                    match e {
                        TlsExtension::SNI(names) => {
                            server_name = names.first().map(|(_, n)| text(n, b.max_string));
                        }
                        TlsExtension::EllipticCurves(g) => {
                            groups = list(&mut g.iter().map(|x| x.0));
                        }
                        TlsExtension::EcPointFormats(f) => {
                            formats = list(&mut f.iter().map(|&x| u16::from(x)));
                        }
                        TlsExtension::ALPN(protocols) => {
                            alpn = protocols.first().copied();
                        }
                        TlsExtension::SignatureAlgorithms(s) => signatures.clone_from(s),
                        TlsExtension::SupportedVersions(v) => {
                            if let Some(max) = v.iter().map(|x| x.0).filter(|&x| !grease(x)).max() {
                                highest = highest.max(max);
                            }
                        }
                        _ => {}
                    }
                }
            }
            let ja3 = format!(
                "{},{},{},{},{}",
                hello.version.0,
                list(&mut hello.ciphers.iter().map(|c| c.0)),
                list(&mut exts.iter().copied()),
                groups,
                formats
            );
            let ja4 = ja4(&Ja4Input {
                version: highest,
                ciphers: hello
                    .ciphers
                    .iter()
                    .map(|c| c.0)
                    .filter(|&c| !grease(c))
                    .collect(),
                extensions: exts.iter().copied().filter(|&e| !grease(e)).collect(),
                alpn,
                signatures: signatures.into_iter().filter(|&s| !grease(s)).collect(),
            });
            self.meta.tls = Some(TlsMeta {
                server_name,
                version: version_name(highest),
                ja3: md5_hex(ja3.as_bytes()),
                ja4: Some(ja4),
            });
            return;
        }
    }

    fn dns(&mut self, p: &[u8], b: Budget) {
        let Ok(packet) = simple_dns::Packet::parse(p) else {
            return;
        };
        let dns = self.meta.dns.get_or_insert_with(DnsMeta::default);
        if packet.has_flags(simple_dns::PacketFlag::RESPONSE) {
            dns.responses += 1;
            dns.response_code
                .get_or_insert_with(|| rcode_name(packet.rcode()));
        } else {
            dns.queries += 1;
        }
        if dns.name.is_none() {
            if let Some(q) = packet.questions.first() {
                dns.name = Some(text(q.qname.to_string().as_bytes(), b.max_string));
                dns.qtype = Some(match q.qtype {
                    simple_dns::QTYPE::TYPE(t) => format!("{t:?}"),
                    other => format!("{other:?}"),
                });
            }
        }
    }
}

fn version_name(v: u16) -> String {
    match v {
        0x0300 => "ssl3".into(),
        0x0301 => "1.0".into(),
        0x0302 => "1.1".into(),
        0x0303 => "1.2".into(),
        0x0304 => "1.3".into(),
        other => format!("0x{other:04x}"),
    }
}

fn rcode_name(r: simple_dns::RCODE) -> String {
    format!("{r:?}").to_ascii_uppercase()
}

fn md5_hex(bytes: &[u8]) -> String {
    use md5::{Digest, Md5};
    Md5::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What JA4 reads of a ClientHello, GREASE values left out: the highest
/// version offered, ciphers and extensions in the order sent, the first
/// ALPN protocol, the signature algorithms in the order sent.
struct Ja4Input<'a> {
    version: u16,
    ciphers: Vec<u16>,
    extensions: Vec<u16>,
    alpn: Option<&'a [u8]>,
    signatures: Vec<u16>,
}

/// The JA4 fingerprint (FoxIO's specification, TLS over TCP):
/// `t<version><d|i: SNI><ciphers, 2 digits><extensions, 2 digits><ALPN
/// first and last character>_<sha256 of the sorted ciphers, 12 hex>_<sha256
/// of the sorted extensions but SNI and ALPN, then the signature
/// algorithms, 12 hex>`.
fn ja4(h: &Ja4Input) -> String {
    const SNI: u16 = 0x0000;
    const ALPN: u16 = 0x0010;
    let version = match h.version {
        0x0304 => "13",
        0x0303 => "12",
        0x0302 => "11",
        0x0301 => "10",
        0x0300 => "s3",
        0x0002 => "s2",
        _ => "00",
    };
    let sni = if h.extensions.contains(&SNI) {
        'd'
    } else {
        'i'
    };
    let alpn = match h.alpn.filter(|a| !a.is_empty()) {
        None => "00".to_string(),
        Some(a) => {
            let (first, last) = (a[0], a[a.len() - 1]);
            if first.is_ascii_alphanumeric() && last.is_ascii_alphanumeric() {
                format!("{}{}", first as char, last as char)
            } else {
                // The first and last characters of the value in hex.
                let hex = format!("{first:02x}{last:02x}");
                format!("{}{}", &hex[..1], &hex[3..])
            }
        }
    };
    let hex_list = |v: &[u16]| {
        v.iter()
            .map(|x| format!("{x:04x}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    let sorted = |v: &[u16], without: &[u16]| {
        let mut s: Vec<u16> = v.iter().copied().filter(|x| !without.contains(x)).collect();
        s.sort_unstable();
        s
    };
    let hash12 = |s: &str| {
        use sha2::{Digest, Sha256};
        Sha256::digest(s.as_bytes())
            .iter()
            .take(6)
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    let ciphers = if h.ciphers.is_empty() {
        "000000000000".to_string()
    } else {
        hash12(&hex_list(&sorted(&h.ciphers, &[])))
    };
    let extensions = sorted(&h.extensions, &[SNI, ALPN]);
    let extensions = if extensions.is_empty() {
        "000000000000".to_string()
    } else if h.signatures.is_empty() {
        hash12(&hex_list(&extensions))
    } else {
        hash12(&format!(
            "{}_{}",
            hex_list(&extensions),
            hex_list(&h.signatures)
        ))
    };
    format!(
        "t{version}{sni}{:02}{:02}{alpn}_{ciphers}_{extensions}",
        h.ciphers.len().min(99),
        h.extensions.len().min(99)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(segments: &[(&[u8], bool)], udp: bool, dns: bool, b: Budget) -> AppMeta {
        let mut s = AppState::default();
        for (p, fwd) in segments {
            s.segment(p, *fwd, udp, dns, b);
        }
        s.meta
    }

    #[test]
    fn http_requests_and_responses_are_counted_and_the_first_named() {
        let m = seen(
            &[
                (b"GET /admin/login.php?x=1 HTTP/1.1\r\nHost: shop.example\r\nUser-Agent: curl/8.0\r\n\r\n", true),
                (b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", false),
                (b"GET /b HTTP/1.1\r\nHost: shop.example\r\n\r\n", true),
                (b"HTTP/1.1 200 OK\r\n\r\n", false),
                (b"not http at all", true),
            ],
            false,
            false,
            Budget::default(),
        );
        let h = m.http.unwrap();
        assert_eq!(h.method.as_deref(), Some("GET"));
        assert_eq!(h.uri.as_deref(), Some("/admin/login.php?x=1"));
        assert_eq!(h.host.as_deref(), Some("shop.example"));
        assert_eq!(h.user_agent.as_deref(), Some("curl/8.0"));
        assert_eq!(h.status, Some(404));
        assert_eq!((h.requests, h.responses, h.client_errors), (2, 2, 1));
        assert!(!m.cut);
    }

    #[test]
    fn the_budget_bounds_what_is_looked_at_and_says_so() {
        let req: &[u8] = b"GET /a-very-long-path-indeed HTTP/1.1\r\nHost: h\r\n\r\n";
        let b = Budget {
            bytes: req.len(),
            max_string: 8,
        };
        let m = seen(&[(req, true), (req, true)], false, false, b);
        let h = m.http.unwrap();
        assert_eq!(h.uri.as_deref(), Some("/a-very-"), "strings are cut");
        assert_eq!(h.requests, 1, "the second request is past the budget");
        assert!(m.cut);
    }

    #[test]
    fn ssh_banners_name_each_side() {
        let m = seen(
            &[
                (b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n", false),
                (b"SSH-2.0-libssh_0.10.4\r\n\x00\x00", true),
            ],
            false,
            false,
            Budget::default(),
        );
        let s = m.ssh.unwrap();
        assert_eq!(s.server.as_deref(), Some("SSH-2.0-OpenSSH_9.2p1 Debian-2"));
        assert_eq!(s.client.as_deref(), Some("SSH-2.0-libssh_0.10.4"));
    }

    #[test]
    fn dns_queries_and_responses() {
        use simple_dns::{Packet, PacketFlag};
        let query = dns_query();
        let q = Packet::parse(&query).unwrap();
        let mut r = q.into_reply();
        r.set_flags(PacketFlag::RESPONSE);
        *r.rcode_mut() = simple_dns::RCODE::NameError;
        let response = r.build_bytes_vec().unwrap();
        let m = seen(
            &[(&query, true), (&response, false)],
            true,
            true,
            Budget::default(),
        );
        let d = m.dns.unwrap();
        assert_eq!(d.name.as_deref(), Some("aGVsbG8.tunnel.example"));
        assert_eq!(d.qtype.as_deref(), Some("TXT"));
        assert_eq!(d.response_code.as_deref(), Some("NAMEERROR"));
        assert_eq!((d.queries, d.responses), (1, 1));
        // UDP elsewhere than port 53: not looked at as DNS.
        assert_eq!(
            seen(&[(&query, true)], true, false, Budget::default()).dns,
            None
        );
    }

    /// Seeds for the `app` fuzz target: flags, then length-prefixed
    /// segments (`crate::fuzz_seeds`).
    #[test]
    fn fuzz_seeds_are_current() {
        let seed = |flags: u8, segments: &[&[u8]]| {
            let mut v = vec![flags];
            for s in segments {
                v.push(s.len().min(255) as u8);
                v.extend(&s[..s.len().min(255)]);
            }
            v
        };
        crate::fuzz_seeds::check(
            "app",
            "http",
            &seed(
                1,
                &[
                    b"GET /a?b=c HTTP/1.1\r\nHost: h\r\nUser-Agent: x\r\n\r\n",
                    b"HTTP/1.1 404 Not Found\r\n\r\n",
                ],
            ),
        );
        crate::fuzz_seeds::check(
            "app",
            "ssh",
            &seed(0, &[b"SSH-2.0-OpenSSH_9.2p1\r\n", b"SSH-2.0-client\r\n"]),
        );
        crate::fuzz_seeds::check("app", "tls", &seed(1, &[&client_hello()]));
        crate::fuzz_seeds::check("app", "dns", &seed(7, &[&dns_query()]));
    }

    fn dns_query() -> Vec<u8> {
        use simple_dns::{Name, Packet, Question, CLASS, QCLASS, QTYPE, TYPE};
        let mut q = Packet::new_query(7);
        q.questions.push(Question::new(
            Name::new_unchecked("aGVsbG8.tunnel.example"),
            QTYPE::TYPE(TYPE::TXT),
            QCLASS::CLASS(CLASS::IN),
            false,
        ));
        q.build_bytes_vec().unwrap()
    }

    /// A ClientHello as OpenSSL's `s_client` sends it would be long; this
    /// one is built by hand with what JA3 reads: version, ciphers (one
    /// GREASE), extensions SNI, supported groups, point formats and
    /// supported versions.
    fn client_hello() -> Vec<u8> {
        fn ext(t: u16, body: &[u8]) -> Vec<u8> {
            let mut v = t.to_be_bytes().to_vec();
            v.extend((body.len() as u16).to_be_bytes());
            v.extend(body);
            v
        }
        let name = b"api.example";
        let mut sni = ((name.len() + 3) as u16).to_be_bytes().to_vec();
        sni.push(0);
        sni.extend((name.len() as u16).to_be_bytes());
        sni.extend(name);
        let mut exts = ext(0, &sni);
        exts.extend(ext(10, &[0, 4, 0, 29, 0, 23]));
        exts.extend(ext(11, &[1, 0]));
        exts.extend(ext(43, &[4, 0x03, 0x04, 0x03, 0x03]));
        let mut hello = vec![0x03, 0x03];
        hello.extend([7u8; 32]); // random
        hello.push(0); // session id
        hello.extend([0, 6, 0x0a, 0x0a, 0x13, 0x01, 0xc0, 0x2f]); // ciphers
        hello.extend([1, 0]); // compression
        hello.extend((exts.len() as u16).to_be_bytes());
        hello.extend(&exts);
        let mut hs = vec![1];
        hs.extend(&(hello.len() as u32).to_be_bytes()[1..]);
        hs.extend(&hello);
        let mut rec = vec![0x16, 0x03, 0x01];
        rec.extend((hs.len() as u16).to_be_bytes());
        rec.extend(&hs);
        rec
    }

    /// Chrome's ClientHello as FoxIO's JA4 documentation and fingerprint
    /// services publish it (`t13d1516h2_8daaf6152771_d8a2da3f94cd`), from
    /// its lists in the order sent.
    #[test]
    fn ja4_of_chrome_matches_the_published_fingerprint() {
        let hex = |s: &str| -> Vec<u16> {
            s.split(',')
                .map(|x| u16::from_str_radix(x, 16).unwrap())
                .collect()
        };
        let chrome = Ja4Input {
            version: 0x0304,
            ciphers: hex(
                "1301,1302,1303,c02b,c02f,c02c,c030,cca9,cca8,c013,c014,009c,009d,002f,0035",
            ),
            extensions: hex(
                "002d,0033,0010,fe0d,0017,44cd,0000,000b,000a,002b,ff01,0023,0012,0005,000d,001b",
            ),
            alpn: Some(b"h2"),
            signatures: hex("0403,0804,0401,0503,0805,0501,0806,0601"),
        };
        assert_eq!(ja4(&chrome), "t13d1516h2_8daaf6152771_d8a2da3f94cd");
        // No SNI, an ALPN value that is not alphanumeric, no ciphers.
        let odd = Ja4Input {
            extensions: vec![0x0010],
            alpn: Some(&[0xab, 0x01]),
            ciphers: vec![],
            ..chrome
        };
        assert_eq!(ja4(&odd), "t13i0001a1_000000000000_000000000000");
    }

    #[test]
    fn a_client_hello_gives_server_name_version_and_ja3() {
        let rec = client_hello();
        let m = seen(&[(&rec, true)], false, false, Budget::default());
        let t = m.tls.expect("a ClientHello");
        assert_eq!(t.server_name.as_deref(), Some("api.example"));
        assert_eq!(t.version, "1.3");
        assert_eq!(
            t.ja3,
            md5_hex(b"771,4865-49199,0-10-11-43,29-23,0"),
            "GREASE left out"
        );
        // JA4 of the same hello, worked out by hand: TLS 1.3, SNI, 2
        // ciphers, 4 extensions, no ALPN; sha256("1301,c02f") and
        // sha256("000a,000b,002b"), SNI left out, no signature algorithms.
        assert_eq!(
            t.ja4.as_deref(),
            Some("t13d020400_c1929292aa6b_675b29d69375")
        );
        // From the responder: not a client hello.
        assert_eq!(
            seen(&[(&rec, false)], false, false, Budget::default()).tls,
            None
        );
    }
}
